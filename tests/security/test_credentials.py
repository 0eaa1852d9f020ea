"""Credentials (issue 12): an integration may not make ltvsync read a secret
that is not a CRM password, nor send a password to a host that is not the
CRM. Real processes: redis-server, the dev broker, crm-sim, ltvctl and one
fetcher; an "attacker" TCP listener records every connection it gets.

Each attack is tried twice:
  1. through ltvctl (integration add, update, test): refused with a clear
     reason, nothing written to ltvsync.integrations, the secret in no
     output;
  2. written straight to ltvsync.integrations (bypassing ltvctl), with a job
     for it: the fetcher parks the integration with the same reason, and the
     attacker never sees a connection; the secret is in no log, Redis value,
     metric or topic.
A valid integration beside them syncs from crm-sim, so the fetcher is shown
to be working while it refuses the attacks.

The stack runs with LTVSYNC_CRM_ALLOW_INSECURE=1 (crm-sim is http on
loopback), the harder case: the attacks must fail even so. One check runs
without it: then even a loopback host is refused."""
import json
import os
import re
import socket
import socketserver
import threading
import urllib.parse

import ltharness as h
import fetcher_stack as fs

REDIS_SECRET = "REDIS-ONLY-SECRET-7f3a"
OTHER_SECRET = "OTHER-TENANT-SECRET-91c2"
LONG_SECRET = "L" * 600  # ltvctl used to accept 1,023 bytes, the fetcher 511
T_INTEG = fs.TOPIC_INTEGRATIONS
PROBE = b"reachability-probe"


class Attacker:
    """A TCP listener on every interface that records each connection and the
    first bytes it sent, then answers like an HTTP server would."""

    def __init__(self):
        seen = self.seen = []

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                self.request.settimeout(2)
                data = b""
                try:
                    while b"\r\n\r\n" not in data and len(data) < 65536:
                        chunk = self.request.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    data += self.request.recv(4096)
                except OSError:
                    pass
                if data != PROBE:  # remote_host()'s own reachability check
                    seen.append(data)
                try:
                    self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                         b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
                except OSError:
                    pass

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.srv = socketserver.ThreadingTCPServer(("0.0.0.0", 0), Handler)
        self.srv.daemon_threads = True
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def remote_host(port):
    """A host name or address of this machine that is not written as a
    loopback host (so the policy must treat it as a remote host) and that
    reaches the attacker."""
    cands = []
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect(("192.0.2.123", 9))  # no packet is sent; picks the outgoing address
        cands.append(s.getsockname()[0])
        s.close()
    except OSError:
        pass
    cands.append(socket.gethostname())
    for c in cands:
        if c.startswith("127.") or c == "localhost":
            continue
        try:
            with socket.create_connection((c, port), timeout=2) as conn:
                conn.sendall(PROBE)
                conn.shutdown(socket.SHUT_WR)
                conn.recv(100)
            return c
        except OSError:
            continue
    raise AssertionError("no non-loopback address of this machine reaches a local listener")


def flags(iid, url, ref):
    return ["--id", iid, "--brand", "konnektive", "--base-url", url,
            "--api-username", "api-user", "--password-ref", ref,
            "--account-name", "Acme " + iid, "--account-username", "acme",
            "--timezone", "America/New_York", "--import-from", "2024-01-01",
            "--sync-interval", "1h"]


def doc(iid, url, ref):
    return {"id": iid, "brand": "konnektive", "base_url": url, "api_username": "api-user",
            "password_ref": ref, "account_name": "Acme " + iid, "account_username": "acme",
            "timezone": "America/New_York", "import_from": "2024-01-01",
            "sync_interval": "1h", "max_requests_per_second": 5, "max_in_flight": 2}


failures = []


def check(cond, what):
    """Records a failed check and goes on, so one run reports every attack
    that got through (before the fix: all of them)."""
    if not cond:
        failures.append(what)
        print("FAIL:", what[:600], flush=True)
    return cond


def main():
    attacker = Attacker()
    try:
        with h.Stack("security-credentials") as st:
            run(st, attacker)
    finally:
        attacker.close()
    assert not failures, "%d failed checks:\n  %s" % (len(failures), "\n  ".join(
        f[:300] for f in failures))
    print("ok")


def run(st, attacker):
    sim = fs.start_stack(st, customers=10, days=2)
    creds = st.path("creds")
    os.mkdir(creds)
    with open(os.path.join(creds, "acme"), "w") as f:
        f.write(sim.password + "\n")
    with open(st.path("other-tenant"), "w") as f:  # beside the credentials dir, not in it
        f.write(OTHER_SECRET)
    os.symlink("../other-tenant", os.path.join(creds, "evil"))
    with open(os.path.join(creds, "long"), "w") as f:
        f.write(LONG_SECRET)
    # absolute paths inside the directory (also what the code before the
    # policy understood, so this test shows what that code did)
    acme = "file:%s/acme" % creds
    env = {"LTVSYNC_CRM_CREDENTIALS_DIR": creds, "REDIS_PASSWORD": REDIS_SECRET}
    remote = remote_host(attacker.port)
    loop_url = "http://127.0.0.1:%d" % attacker.port
    secrets = [REDIS_SECRET, OTHER_SECRET, LONG_SECRET, sim.password]

    # (id, base_url, password_ref, words of the reason)
    attacks = [
        ("env-redis", loop_url, "env:REDIS_PASSWORD", "LTVSYNC_CRM_PASSWORD_"),
        ("dotdot", loop_url, "file:%s/../other-tenant" % creds, '".." is not allowed'),
        ("symlink", loop_url, "file:%s/evil" % creds, "resolves outside"),
        ("http-remote", "http://%s:%d" % (remote, attacker.port), acme,
         "not an allowed konnektive API host"),
        ("https-unlisted", "https://%s:%d" % (remote, attacker.port), acme,
         "not an allowed konnektive API host"),
        ("too-long", loop_url, "file:%s/long" % creds, "longer than 256 bytes"),
    ]

    def ctl(*args, extra=None):
        return st.run("ltvctl", list(args), env=dict(env, **(extra or {})), timeout=120)

    def no_secret(text, where):
        for s in secrets:
            check(s not in text, "a secret (%.12s...) in %s" % (s, where))

    # -- 0. the integration schema says what the code enforces ---------------
    schema = json.load(open(os.path.join(os.environ["LTVSYNC_SRC_DIR"], "schemas",
                                         "integration.schema.json")))
    pattern = re.compile(schema["properties"]["password_ref"]["pattern"])
    for ref in ("env:REDIS_PASSWORD", "file:%s/../other-tenant" % creds, "file:..",
                "env:LTVSYNC_CRM_PASSWORD_", "env:LTVSYNC_CRM_PASSWORD_acme"):
        check(not pattern.search(ref), "the schema accepts password_ref %s" % ref)
    for ref in (acme, "file:acme", "file:a..b", "env:LTVSYNC_CRM_PASSWORD_ACME_2"):
        check(pattern.search(ref), "the schema refuses password_ref %s" % ref)

    r = ctl("topics", "create")
    assert r.returncode == 0, r.stderr
    for iid in ("good", "victim"):
        r = ctl("integration", "add", *flags(iid, sim.url, acme))
        assert r.returncode == 0, r.stdout + r.stderr
    before = len(st.consume_all(T_INTEG))

    # -- 1. ltvctl refuses every attack, with its reason ------------------------
    for iid, url, ref, why in attacks:
        for verb, args in (("add", flags(iid, url, ref)), ("test", flags(iid, url, ref)),
                           ("update", ["victim", "--base-url", url, "--password-ref", ref])):
            r = ctl("integration", verb, *args)
            out = r.stdout + r.stderr
            check(r.returncode == 1 and why in out,
                  "ltvctl integration %s (%s): exit %s, want 1 and %r: %s"
                  % (verb, iid, r.returncode, why, out.strip()[-300:]))
            no_secret(out, "the output of ltvctl integration %s (%s)" % (verb, iid))
    # without CRM_ALLOW_INSECURE even the loopback simulator is refused
    r = ctl("integration", "add", *flags("strict", sim.url, acme),
            extra={"LTVSYNC_CRM_ALLOW_INSECURE": "0"})
    check(r.returncode == 1 and "LTVSYNC_CRM_ALLOW_INSECURE" in r.stderr,
          "strict mode: ltvctl accepted http://127.0.0.1: " + r.stdout + r.stderr)
    n = len(st.consume_all(T_INTEG))
    check(n == before, "%d refused integrations were written to %s" % (n - before, T_INTEG))
    check(attacker.seen == [], "ltvctl connected to the attacker %d times" % len(attacker.seen))
    attacker.seen.clear()

    # -- 2. written straight to the topic: the fetcher parks them ---------------
    st.produce(T_INTEG, [(iid, json.dumps(doc(iid, url, ref))) for iid, url, ref, _ in attacks]
               + [("victim", json.dumps(doc("victim", sim.url, acme)))])
    # ltvctl integration test ID reads the stored document: refused the same way
    r = ctl("integration", "test", "env-redis")
    check(r.returncode == 1 and "LTVSYNC_CRM_PASSWORD_" in r.stdout + r.stderr,
          "ltvctl integration test env-redis (stored): " + (r.stdout + r.stderr)[-300:])
    attacker.seen.clear()
    (f1,) = fs.start_fetchers(st, 1, env=dict(env, LTVSYNC_FETCH_MAX_ATTEMPTS=2))
    day = "2024-01-01"
    fs.produce_jobs(st, [fs.job(iid, "transactions", day) for iid in
                         ["good"] + [a[0] for a in attacks]])
    rc = st.redis.client()
    fs.wait_days_done(st, "good", [day], streams=["transactions"], procs=[f1])
    keys = {iid: fs.rkey(st, "i", iid, "state") for iid, _, _, _ in attacks}
    try:
        h.wait_until(lambda: all(rc.hget(k, "state") == b"parked" for k in keys.values()),
                     40, "every attack parked")
    except Exception as e:  # reported per attack below
        print("note:", e)
    for iid, _, _, why in attacks:
        reason = (rc.hget(keys[iid], "reason") or b"(not parked)").decode()
        check(rc.hget(keys[iid], "state") == b"parked" and why in reason,
              "fetcher: %s: parked with %r, want %r" % (iid, reason[:200], why))
    check(attacker.seen == [], "the fetcher connected to the attacker %d times; first: %r"
          % (len(attacker.seen), [d[:120] for d in attacker.seen[:2]]))
    for s in secrets:  # as is, or form-encoded
        forms = {s.encode(), urllib.parse.quote_plus(s).encode(), urllib.parse.quote(s).encode()}
        check(not any(f in d for f in forms for d in attacker.seen),
              "the attacker received a secret (%.12s...)" % s)
    # the secrets are nowhere: logs, Redis, metrics, topics
    no_secret(f1.log(), "the fetcher's log")
    no_secret(f1.http("/metrics")[1].decode(), "/metrics")
    for k in rc.scan_iter(st.prefix + "*"):
        t = rc.type(k)
        vals = (rc.hvals(k) if t == b"hash" else [rc.get(k)] if t == b"string" else [])
        no_secret(b" ".join(v for v in vals if v).decode(errors="replace"), k.decode())
    for topic in (T_INTEG, fs.TOPIC_RAW, "ltvsync.dlq"):
        no_secret(" ".join((m.value or b"").decode(errors="replace")
                           for m in st.consume_all(topic)), topic)
    stats = fs.sim_stats(sim)
    check(stats["total"] >= 1 and stats["auth_failures"] == 0, "crm-sim saw %r" % stats)
    assert st.stop(f1) == 0


if __name__ == "__main__":
    main()
