"""ltvctl against a real devbroker, redis-server and crm-sim: topics create;
integration add (flags and --file), the validation refusals (exit 1 with a
message naming the problem), usage errors (exit 2), list/show (never a
password), update (timezone guard), remove (tombstone); the "Connect" button
`integration test` (OK, bad credentials, IP allow-list with the IP the CRM
saw, endpoint permission); `sync` resync jobs; `status --json`."""
import datetime
import json
import os
import threading
import zoneinfo

import ltharness as h

T_INTEG, T_BACKFILL, T_LIVE = ("ltvsync.integrations", "ltvsync.jobs.backfill",
                               "ltvsync.jobs.live")
PASSWORD = "p+w %=#x y"          # must round-trip through form encoding
STREAMS = ["transactions", "orders", "customers", "purchases", "campaigns"]


def ctl(st, *args, env=None, timeout=60):
    r = st.run("ltvctl", list(args), env=env, timeout=timeout)
    bad = [m for m in h.SANITIZER_MARKS if m in r.stderr]
    assert not bad, "sanitizer report from ltvctl %s:\n%s" % (args, r.stderr)
    return r


def expect(res, code, *needles, where="stderr"):
    """Asserts the exit code and that each needle is in stdout or stderr."""
    out = res.stdout + res.stderr
    assert res.returncode == code, "exit %s, want %s:\n%s" % (res.returncode, code, out)
    for n in needles:
        assert n.lower() in out.lower(), "%r not in output:\n%s" % (n, out)
    return out


def pw_file(st, name, value):
    p = st.path(name)
    with open(p, "w") as f:
        f.write(value + "\n")
    return p


def flags(iid, sim, ref, **over):
    f = {"--id": iid, "--api-username": sim.login_id, "--password-ref": ref,
         "--account-name": "Acme Inc", "--account-username": "acme-owner",
         "--timezone": "America/New_York", "--import-from": "2024-01-01",
         "--base-url": sim.url, "--sync-interval": "1h"}
    f.update(over)
    out = []
    for k, v in f.items():
        if v is not None:
            out += [k, v]
    return out


def doc(iid, sim, ref, **over):
    d = {"id": iid, "brand": "konnektive", "base_url": sim.url,
         "api_username": sim.login_id, "password_ref": ref,
         "account_name": "Beta", "account_username": "beta",
         "timezone": "Asia/Tokyo", "import_from": "2024-01-01",
         "streams": ["transactions", "orders"], "max_requests_per_second": 3}
    d.update(over)
    return d


def write_doc(st, name, d):
    p = st.path(name)
    with open(p, "w") as f:
        json.dump(d, f)
    return p


def latest(st, topic=T_INTEG):
    """{key: latest value (dict, or None for a tombstone)} of a topic."""
    out = {}
    for m in st.consume_all(topic):
        out[m.key.decode()] = json.loads(m.value) if m.value is not None else None
    return out


def redis_commands(st, fn):
    """The commands Redis ran (MONITOR) while fn() ran, in order."""
    got, ready, end = [], threading.Event(), "ltvctl-test-monitor-end"

    def watch():
        with st.redis.client().monitor() as m:
            ready.set()
            for c in m.listen():
                if end in c["command"]:
                    return
                got.append(c["command"])
    t = threading.Thread(target=watch, daemon=True)
    t.start()
    assert ready.wait(10)
    fn()
    st.redis.client().get(end)
    t.join(10)
    assert not t.is_alive()
    return got


def usage_errors(st):
    r = st.run("ltvctl", [])
    assert r.returncode == 2 and "usage" in r.stderr, r
    expect(ctl(st, "frobnicate"), 2, "unknown command")
    expect(ctl(st, "integration", "explode"), 2, "unknown integration command")
    expect(ctl(st, "integration", "show"), 2)
    expect(ctl(st, "integration", "remove"), 2)
    expect(ctl(st, "topics", "delete"), 2)
    expect(ctl(st, "sync"), 2)
    expect(ctl(st, "--brokers"), 2, "needs a value")
    r = ctl(st, "--help")
    assert r.returncode == 0 and "integration add" in r.stdout, r


def topics_create(st):
    out = expect(ctl(st, "topics", "create"), 0)
    for t in (T_INTEG, T_LIVE, T_BACKFILL, "ltvsync.raw", "ltvsync.events"):
        assert "topic %s ready" % t in out, out
    # idempotent: a second run finds them and still succeeds
    expect(ctl(st, "topics", "create"), 0, "ready")
    from confluent_kafka.admin import AdminClient
    md = AdminClient({"bootstrap.servers": st.broker.bootstrap}).list_topics(timeout=10)
    for t in (T_INTEG, T_LIVE, T_BACKFILL, "ltvsync.raw", "ltvsync.events"):
        assert t in md.topics, sorted(md.topics)


def add_and_refusals(st, sim):
    good = "file:" + pw_file(st, "pw-good", PASSWORD)
    out = expect(ctl(st, "integration", "add", *flags("acme", sim, good)), 0, "acme added")
    assert PASSWORD not in out
    beta = write_doc(st, "beta.json", doc("beta", sim, good))
    expect(ctl(st, "integration", "add", "--file", beta), 0, "beta added")
    expect(ctl(st, "integration", "add", "--file", beta), 1, "exists")
    before = len(st.consume_all(T_INTEG))

    amp = "file:" + pw_file(st, "pw-amp", "abc&def-TOPSECRET")
    refusals = [
        (flags("Bad_ID", sim, good), "id"),
        (flags("x1", sim, good, **{"--timezone": "Mars/Olympus_Mons"}), "timezone"),
        (flags("x2", sim, good, **{"--import-from": "2024-02-30"}), "import_from"),
        (flags("x3", sim, good, **{"--import-from": None}), "import_from"),
        (flags("x4", sim, good, **{"--max-in-flight": "0"}), "max_in_flight"),
        (flags("x5", sim, amp), "must not have an & sign"),
        (flags("x6", sim, "file:" + st.path("no-such-file")), "no-such-file"),
        (flags("x7", sim, "env:LTVCTL_TEST_NOT_SET"), "LTVCTL_TEST_NOT_SET"),
        (flags("x8", sim, "hunter2"), "password_ref"),
        (["--file", write_doc(st, "unk.json", doc("x9", sim, good, colour="red"))],
         "unknown field \"colour\""),
        (["--file", write_doc(st, "pwf.json", doc("x10", sim, good, password="pw"))],
         "password_ref"),
        (["--file", write_doc(st, "tz.json", doc("x11", sim, good, timezone="Europe/Atlantis"))],
         "timezone"),
        (["--file", write_doc(st, "imp.json", doc("x12", sim, good, import_from="last year"))],
         "import_from"),
        (["--file", st.path("missing.json")], "missing.json"),
    ]
    for args, needle in refusals:
        r = ctl(st, "integration", "add", *args)
        out = expect(r, 1, needle)
        assert "TOPSECRET" not in out and PASSWORD not in out, out
    # '&' is explained with the CRM's own reason
    r = ctl(st, "integration", "add", *flags("x5", sim, amp))
    assert "&" in r.stderr and "password" in r.stderr.lower(), r.stderr
    # usage errors of the flags themselves
    expect(ctl(st, "integration", "add", *flags("x13", sim, good, **{"--streams": "refunds"})),
           2, "refunds")
    expect(ctl(st, "integration", "add", *flags("x14", sim, good,
                                              **{"--sync-interval": "often"})), 2)
    # a mistyped option is a usage error, not silently ignored
    expect(ctl(st, "integration", "add", *flags("x15", sim, good), "--max-rsp", "3"), 2,
           "--max-rsp")
    expect(ctl(st, "integration", "add", *flags("x16", sim, good), "--import-form",
               "2024-01-01"), 2, "--import-form")
    # nothing refused was written
    assert len(st.consume_all(T_INTEG)) == before
    reg = latest(st)
    assert set(reg) == {"acme", "beta"}, reg
    a = reg["acme"]
    assert a["timezone"] == "America/New_York" and a["import_from"] == "2024-01-01", a
    assert a["base_url"] == sim.url and a["password_ref"] == good, a
    assert a["sync_interval"] == "1h" and a["streams"] == STREAMS, a
    assert reg["beta"]["streams"] == ["transactions", "orders"], reg["beta"]
    raw = b"".join(m.value or b"" for m in st.consume_all(T_INTEG))
    assert PASSWORD.encode() not in raw and b'"password"' not in raw
    return good


def list_show_update_remove(st, sim, good):
    out = expect(ctl(st, "integration", "list"), 0, "acme", "beta", "Asia/Tokyo")
    rows = json.loads(ctl(st, "--json", "integration", "list").stdout)
    assert sorted(r["id"] for r in rows) == ["acme", "beta"], rows
    r = ctl(st, "integration", "show", "acme")
    shown = json.loads(expect(r, 0) and r.stdout)
    assert shown["id"] == "acme" and shown["password_ref"] == good, shown
    assert PASSWORD not in r.stdout + r.stderr and "password\"" not in r.stdout
    expect(ctl(st, "integration", "show", "nope"), 1, "no integration")

    # a timezone change re-dates every event: refused without --yes
    n = len(st.consume_all(T_INTEG))
    out = expect(ctl(st, "integration", "update", "acme", "--timezone", "Europe/Berlin"),
                 1, "--yes", "America/New_York", "Europe/Berlin")
    assert "re-dates" in out or "moves" in out, out
    assert len(st.consume_all(T_INTEG)) == n
    assert latest(st)["acme"]["timezone"] == "America/New_York"
    # an ordinary change goes through and clears a parked state
    r = st.redis.client()
    state = st.prefix + "i:acme:state"
    r.hset(state, mapping={"state": "parked", "reason": "Invalid login credentials"})
    cmds = redis_commands(st, lambda: expect(
        ctl(st, "integration", "update", "acme", "--sync-interval", "30m", "--max-rps", "9"),
        0, "updated"))
    # un-parked last: a scheduler tick that sees the parked state gone must
    # also see last_run_ms and the backfill cursors gone (else it planned no
    # live window and stayed quiet for sync_interval)
    resets = [i for i, c in enumerate(cmds) if c.startswith("HDEL " + st.prefix + "i:acme:")]
    unpark = [i for i, c in enumerate(cmds) if c == "DEL " + state]
    assert len(resets) == 6 and len(unpark) == 1 and max(resets) < unpark[0], cmds
    a = latest(st)["acme"]
    assert a["sync_interval"] == "30m" and a["max_requests_per_second"] == 9, a
    assert a["timezone"] == "America/New_York" and a["import_from"] == "2024-01-01", a
    assert not r.exists(state)
    expect(ctl(st, "integration", "update", "acme", "--import-from", "01/02/2024"), 1,
           "import_from")
    expect(ctl(st, "integration", "update", "ghost", "--max-rps", "2"), 1, "no integration")

    expect(ctl(st, "integration", "remove", "beta"), 0, "removed")
    assert latest(st)["beta"] is None            # a tombstone
    out = expect(ctl(st, "integration", "list"), 0, "acme")
    assert "beta" not in out, out
    expect(ctl(st, "integration", "show", "beta"), 1, "no integration")
    expect(ctl(st, "integration", "remove", "beta"), 1, "no integration")
    # the id is free again
    beta = write_doc(st, "beta2.json", doc("beta", sim, good))
    expect(ctl(st, "integration", "add", "--file", beta), 0, "added")
    expect(ctl(st, "integration", "remove", "beta"), 0)


def connect_button(st, sim, good):
    out = expect(ctl(st, "integration", "test", "acme"), 0, "OK")
    assert PASSWORD not in out
    # a candidate that is not stored yet (flags), wrong password
    bad = "file:" + pw_file(st, "pw-bad", "not-the-password")
    out = expect(ctl(st, "integration", "test", *flags("cand", sim, bad)), 1,
                 "credentials", "Invalid login")
    assert "not-the-password" not in out
    # IP allow-list: shows the address the CRM saw
    ipsim = st.start_crmsim(password=PASSWORD, args=["--ip-deny"])
    out = expect(ctl(st, "integration", "test", *flags("cand", ipsim, good)), 1,
                 "IP", "allow-list", "request come from 127.0.0.1.")
    # endpoint permission: every stream is queried, the last one is refused
    psim = st.start_crmsim(password=PASSWORD, args=["--deny-endpoint", "/campaign/query/"])
    expect(ctl(st, "integration", "test", *flags("cand", psim, good)), 1, "permission",
           "does not have access", "querying campaigns")
    # the '&' refusal reaches the Connect button too, without a CRM call
    amp = "file:" + pw_file(st, "pw-amp2", "x&y")
    expect(ctl(st, "integration", "test", *flags("cand", sim, amp)), 1, "& sign")
    # nothing listens: explained, exit 1
    dead = "http://127.0.0.1:%d" % h.free_port()
    r = ctl(st, "integration", "test", *flags("cand", sim, good, **{"--base-url": dead}))
    expect(r, 1, "could not reach")
    assert "cand" not in latest(st)       # test never writes


def resync(st):
    r = st.redis.client()
    live = st.prefix + "i:acme:live"
    bf = st.prefix + "i:acme:backfill:orders"
    r.hset(live, mapping={"last_run_ms": "12345", "last_lookback_ms": "678"})
    r.hset(bf, mapping={"from": "2024-01-01", "through": "2024-01-09"})
    snap = (r.hgetall(live), r.hgetall(bf), r.hgetall(st.prefix + "i:acme:outstanding"))
    n0 = len(st.consume_all(T_BACKFILL))
    expect(ctl(st, "sync", "acme", "--from", "2024-01-02", "--to", "2024-01-04",
               "--streams", "orders,transactions"), 0, "6 jobs")
    msgs = st.consume_all(T_BACKFILL)[n0:] if n0 else st.consume_all(T_BACKFILL)
    jobs = [json.loads(m.value) for m in msgs]
    assert len(jobs) == 6, jobs
    got = sorted((j["stream"], j["day"]) for j in jobs)
    assert got == sorted((s, d) for s in ("orders", "transactions")
                         for d in ("2024-01-02", "2024-01-03", "2024-01-04")), got
    for m, j in zip(msgs, jobs):
        assert j["reason"] == "resync" and j["date_range_type"] == "dateCreated", j
        assert j["integration_id"] == "acme" and j["page_from"] == j["page_to"] == 0, j
        assert m.key.decode() == "acme/%s/%s" % (j["stream"], j["day"])
    assert len({j["job_id"] for j in jobs}) == 6 and len({j["run_id"] for j in jobs}) == 1
    assert (r.hgetall(live), r.hgetall(bf),
            r.hgetall(st.prefix + "i:acme:outstanding")) == snap
    assert len(st.consume_all(T_LIVE)) == 0
    expect(ctl(st, "sync", "acme", "--from", "2024-01-05", "--to", "2024-01-01"), 2, "from")
    expect(ctl(st, "sync", "acme", "--from", "2024-02-30"), 2)
    expect(ctl(st, "sync", "acme", "--streams", "refunds"), 2, "refunds")
    expect(ctl(st, "sync", "ghost"), 1, "no integration")
    expect(ctl(st, "sync", "acme", "--form", "2024-01-01"), 2, "--form")
    today = datetime.datetime.now(zoneinfo.ZoneInfo("America/New_York")).date().isoformat()
    expect(ctl(st, "sync", "acme", "--from", "2024-01-01", "--to", today), 2, "yesterday")
    # without --from/--to: import_from .. yesterday, every stream
    n1 = len(st.consume_all(T_BACKFILL))
    expect(ctl(st, "sync", "acme", "--to", "2024-01-02"), 0, "10 jobs")
    assert len(st.consume_all(T_BACKFILL)) == n1 + 10


def status(st):
    r = st.redis.client()
    p = st.prefix + "i:acme:"
    for d in ("2024-01-01", "2024-01-02", "2024-01-04"):
        r.hset(p + "done:transactions", d, "10 1 1700000000000")
    r.hset(p + "done:orders", "2024-01-01", "3 1 1700000000000")
    r.hset(p + "stats:transactions", mapping={"rows": 30, "pages": 3, "errors": 1,
                                              "last_error": "HTTP 503"})
    r.hset(p + "state", mapping={"state": "parked", "reason": "IP must be whitelisted - 1.2.3.4"})
    r.hset(p + "outstanding", mapping={"orders/dateCreated/2024-01-02": "j 1",
                                       "orders/dateCreated/2024-01-03": "k 1"})
    res = ctl(st, "status", "acme", "--json")
    s = json.loads(expect(res, 0) and res.stdout)
    tz = zoneinfo.ZoneInfo("America/New_York")
    yday = datetime.datetime.now(tz).date() - datetime.timedelta(days=1)
    total = (yday - datetime.date(2024, 1, 1)).days + 1
    assert s["id"] == "acme" and s["state"] == "parked", s
    assert "whitelisted" in s["reason"], s
    assert s["outstanding_jobs"] == 2 and s["in_flight"] == 0, s
    assert s["max_requests_per_second"] == 9 and s["max_in_flight"] >= 1, s
    assert set(s["streams"]) == set(STREAMS), s
    t, o = s["streams"]["transactions"], s["streams"]["orders"]
    assert (t["days_done"], t["days_total"], t["rows"], t["pages"], t["errors"]) == \
        (3, total, 30, 3, 1), t
    assert t["last_error"] == "HTTP 503" and t["complete_through"] == "2024-01-02", t
    assert o["days_done"] == 1 and o["complete_through"] == "2024-01-01", o
    assert s["streams"]["customers"]["complete_through"] == "", s
    assert s["complete_through"] == "", s      # the slowest stream has nothing
    arr = json.loads(expect(ctl(st, "status", "--json"), 0) and
                     ctl(st, "status", "--json").stdout)
    assert [x["id"] for x in arr] == ["acme"], arr
    # Logs go to stderr: a librdkafka warning (a producer property given to
    # ltvctl's consumer) must not end up inside the JSON on stdout.
    res = ctl(st, "status", "acme", "--json", env={"LTVSYNC_KAFKA_COMPRESSION_TYPE": "none"})
    assert "CONFWARN" in res.stderr and json.loads(res.stdout)["id"] == "acme", res
    out = expect(ctl(st, "status", "acme"), 0, "parked", "3/%d" % total, "HTTP 503",
                 "backfill [")
    assert PASSWORD not in out
    expect(ctl(st, "status", "ghost"), 1, "no integration")


def main():
    with h.Stack("ltvctl") as st:
        st.start_redis()
        st.start_devbroker(partitions=2)
        sim = st.start_crmsim(password=PASSWORD)
        usage_errors(st)
        topics_create(st)
        good = add_and_refusals(st, sim)
        list_show_update_remove(st, sim, good)
        connect_button(st, sim, good)
        resync(st)
        status(st)
    print("ok")


if __name__ == "__main__":
    os.environ.pop("LTVCTL_TEST_NOT_SET", None)
    main()
