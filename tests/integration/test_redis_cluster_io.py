"""common/lt_redis's cluster mode against a real Redis Cluster (3 masters,
1 replica each; tests/lib/rcluster.py), through the tests/io/test_redis_io
driver:

- routing: keys of every master written and read through one seed list,
  each found on the master that owns its slot (and only there);
- scripts: EVALSHA on every master (each node loads it on its first
  NOSCRIPT), and again after SCRIPT FLUSH on one node; pipelined
  send/recv on different masters;
- a slot migrating (ASK, followed with ASKING, the map kept) and migrated
  (MOVED, the map refreshed), while the driver keeps its old map;
- a master SIGKILLed: the driver's next commands fail (never answer wrong),
  and once the replica is promoted they succeed again with the data the
  replica had, within RECOVER_S of the kill;
- a password-protected cluster (AUTH on every node) and the URLs a cluster
  refuses, with the password never printed.
"""
import subprocess
import time

from ltharness import HarnessError, Stack, bin_path, wait_until
from test_common_io import RedisRepl, hx

# From a master's SIGKILL to the driver's first good answer: the node
# timeout (2 s) to flag it failed, the replica's election (about 1 s),
# then one slot-map refresh. Measured 3-4 s here; 15 s is the bound stated.
RECOVER_S = 15.0


def keys_per_master(rc, n=1):
    """{master port: [key, ...]}: n keys owned by each master."""
    out = {p: [] for p in rc.masters()}
    i = 0
    while any(len(v) < n for v in out.values()):
        k = "k%d" % i
        port = rc.master_of(k)
        if len(out[port]) < n:
            out[port].append(k)
        i += 1
    return out


def test_routing(rc, r):
    per = keys_per_master(rc, 2)
    for port, keys in per.items():
        for k in keys:
            assert r("set %s %s" % (k, hx(k.encode()))) == "OK", k
    for port, keys in per.items():
        for k in keys:
            assert r("get %s" % k) == hx(k.encode()), k
            assert rc.node(port).get(k) == k.encode(), (k, port)
            slot = rc.keyslot(k)
            for other in rc.masters():
                if other != port:
                    assert rc.cmd(other, "CLUSTER", "COUNTKEYSINSLOT", slot) == 0, (k, other)
    assert r("ping") == "PONG"
    return per


def test_scripts(rc, r, per):
    for port, keys in per.items():
        k = keys[0]
        assert r("eval %s a1" % k) == hx(("%s|a1|1" % k).encode()), k
    # A node that lost its scripts answers NOSCRIPT: loaded there, run again.
    victim = sorted(per)[0]
    rc.node(victim).execute_command("SCRIPT", "FLUSH")
    for port, keys in per.items():
        k = keys[1]
        assert r("eval %s a2" % k) == hx(("%s|a2|1" % k).encode()), k
    # Pipelined calls, one after another, each on its key's master.
    for port, keys in per.items():
        k = keys[0]
        assert r("send %s p" % k) == "SENT", k
        assert r("recv %s p" % k) == hx(("%s|p|1" % k).encode()), k


def node_id(rc, port):
    return next(n.id for n in rc.nodes(port) if "myself" in n.flags)


def in_slot(rc, port, slot):
    return sorted(rc.cmd(port, "CLUSTER", "GETKEYSINSLOT", slot, 100))


def test_migration(rc, r):
    """Moves the slot of key 'mv' from its master A to another master B by
    hand, as redis-cli --cluster reshard does, checking ASK then MOVED."""
    src = rc.master_of("mv")
    dst = next(p for p in rc.masters() if p != src)
    slot = rc.keyslot("mv")
    assert r("set mv %s" % hx(b"before")) == "OK"
    sid, did = node_id(rc, src), node_id(rc, dst)
    rc.cmd(dst, "CLUSTER", "SETSLOT", slot, "IMPORTING", sid)
    rc.cmd(src, "CLUSTER", "SETSLOT", slot, "MIGRATING", did)
    # Migrating: mv is still on A and served there; a key of the same slot
    # that A does not have is answered ASK -> B, where the driver writes it.
    other = "{mv}asked"
    assert r("get mv") == hx(b"before")
    assert r("set %s %s" % (other, hx(b"asked"))) == "OK"
    pipe = rc.node(dst).pipeline(transaction=False)
    pipe.execute_command("ASKING")
    pipe.get(other)
    assert pipe.execute()[1] == b"asked"
    assert in_slot(rc, src, slot) == [b"mv"]
    # Finish: move mv, then give the slot to B everywhere.
    rc.cmd(src, "MIGRATE", "127.0.0.1", dst, "", 0, 5000, "KEYS", "mv")
    for port in rc.masters():
        rc.cmd(port, "CLUSTER", "SETSLOT", slot, "NODE", did)
    wait_until(lambda: all(rc.slot_owner(slot, p) == dst for p in rc.live_ports()), 10,
               "every node to agree slot %d moved" % slot)
    # The driver's map still says A: MOVED, followed, the map refreshed.
    assert r("get mv") == hx(b"before")
    assert r("get %s" % other) == hx(b"asked")
    assert r("eval mv x") == hx(b"mv|x|1")
    assert rc.node(dst).get("mv") == b"before" and in_slot(rc, src, slot) == []


def test_failover(rc, r):
    key = "fo"
    port = rc.master_of(key)
    assert r("set %s %s" % (key, hx(b"kept"))) == "OK"
    # Acknowledged by the replica before the kill, so it must survive.
    assert rc.node(port).execute_command("WAIT", 1, 5000) >= 1
    others = {p: ks[0] for p, ks in keys_per_master(rc).items() if p != port}
    rc.kill_master(port)
    t0 = time.monotonic()
    answers = []

    def back():
        a = r("get %s" % key, timeout=30)
        answers.append(a)
        return a == hx(b"kept")
    wait_until(back, RECOVER_S, "the driver to read %s again after the failover" % key,
               interval=0.1)
    took = time.monotonic() - t0
    # Until then every answer was an error, never a wrong value.
    wrong = [a for a in answers[:-1] if not a.startswith("ERR")]
    assert not wrong, wrong
    # Writes and scripts work again, on the new master and the others. Each
    # node leaves its "cluster down" state when it hears of the promotion,
    # so another master may still refuse (CLUSTERDOWN) for some
    # milliseconds after the new one answers (seen: 49 ms): an error then,
    # never a wrong answer, and the right one within RECOVER_S of the kill.
    later = [("incr fo:n", "1"), ("eval %s z" % key, hx(("%s|z|1" % key).encode()))]
    later += [("get %s" % k, hx(k.encode())) for k in others.values()]
    refused = 0
    for cmd, want in later:
        seen = []
        try:
            wait_until(lambda: seen.append(r(cmd, timeout=30)) or seen[-1] == want,
                       max(RECOVER_S - (time.monotonic() - t0), 1.0),
                       "%r to answer %r after the failover" % (cmd, want), interval=0.05)
        except HarnessError:
            print("answers to %r: %r" % (cmd, seen[-5:]))
            raise
        wrong = [a for a in seen[:-1] if not a.startswith("ERR")]
        assert not wrong, (cmd, wrong)
        refused += len(seen) - 1
    print("failover: %d failed calls, first good answer %.1f s after the kill; "
          "%d refusals of the later commands" % (len(answers) - 1, took, refused))


def test_auth_and_urls(st):
    pw = "clu+s%ter=pw"
    enc = "clu%2Bs%25ter%3Dpw"
    rc = st.start_redis_cluster(masters=3, replicas=0, password=pw)
    r = RedisRepl(rc.url.replace(pw, enc), timeout_ms=2000)
    try:
        for port, keys in keys_per_master(rc).items():
            assert r("set %s 01" % keys[0]) == "OK"
            assert r("eval %s q" % keys[0]) == hx(("%s|q|1" % keys[0]).encode())
    finally:
        r.close()
    seeds = rc.url.split("@", 1)[1]
    bad = RedisRepl("redis://:wrongSecret99@%s" % seeds, timeout_ms=1000)
    try:
        ans = bad("ping")
        assert ans.startswith("ERR") and "wrongSecret99" not in ans, ans
    finally:
        bad.close()
    for url in ("redis://:hunter2pw@%s/3" % seeds,            # a cluster has db 0 only
                "redis://:hunter2pw@127.0.0.1:1,/0",           # an empty seed
                "redis://:hunter2pw@127.0.0.1:1,127.0.0.1:x"):  # a bad port
        out = subprocess.run([bin_path("test_redis_io"), url, "100"], text=True,
                             capture_output=True, input="")
        assert out.returncode == 2 and out.stdout.startswith("BADURL"), (url, out)
        assert "hunter2pw" not in out.stdout + out.stderr


def main():
    with Stack("redis-cluster-io") as st:
        rc = st.start_redis_cluster(masters=3, replicas=1)
        r = RedisRepl(rc.url, timeout_ms=2000)
        try:
            per = test_routing(rc, r)
            test_scripts(rc, r, per)
            test_migration(rc, r)
            test_failover(rc, r)
        finally:
            r.close()
        test_auth_and_urls(st)
    print("ok")


if __name__ == "__main__":
    try:
        main()
    except HarnessError as e:
        raise SystemExit("FAIL: %s" % e)
