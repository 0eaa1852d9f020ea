"""One fetcher with the default FETCH_CONCURRENCY, two integrations on two
accounts of one crm-sim (300 ms a request, 2 in flight each). A's import
(60 days, 300 day-jobs) is under way when B's (3 days, 15 day-jobs) is
queued behind it in the same job topic. B must finish while most of A is
still to do: the dispatcher runs at most an integration's share of jobs
(services/fetcher/dispatch.c `saturated`) and passes A's further jobs over
for B's, instead of a FIFO in which B waits for all of A (about 45 s here).
Each account stays within its own limits (crm-sim counts 0 violations and
a peak of at most 2 in flight), and B's rows reach ltvsync.raw."""
import json

import ltharness as h
import fetcher_stack as fs

DAYS_A, DAYS_B, IN_FLIGHT = 60, 3, 2


def integration(st, sim, iid, account):
    pw_file = st.path("pw-" + iid)
    with open(pw_file, "w") as f:
        f.write(sim.password)
    doc = {"id": iid, "brand": "konnektive", "base_url": sim.url, "api_username": account,
           "password_ref": "file:" + pw_file, "account_name": iid, "account_username": iid,
           "timezone": "America/New_York", "import_from": "2024-01-01",
           "sync_interval": "1h", "max_requests_per_second": 50, "max_in_flight": IN_FLIGHT}
    st.produce(fs.TOPIC_INTEGRATIONS, [(iid, json.dumps(doc))])


def days_done(r, st, iid):
    return {s: r.hlen(fs.rkey(st, "i", iid, "done", s)) for s in fs.STREAMS}


def main():
    with h.Stack("fetcher-fair") as st:
        st.start_redis()
        st.start_devbroker(partitions=4)
        sim = st.start_crmsim(accounts=2, login_id=None, customers=30, days=DAYS_A,
                              latency_ms=300, max_rps=50, max_in_flight=IN_FLIGHT,
                              dump=st.path("dump"), password="s3cret+pw%= #x")
        integration(st, sim, "a", "acct-1")
        integration(st, sim, "b", "acct-2")
        (f,) = fs.start_fetchers(st, 1, {"LTVSYNC_FETCH_CONCURRENCY": 16})
        r = st.redis.client()
        fs.produce_jobs(st, fs.backfill_jobs("a", fs.days("2024-01-01", DAYS_A)))

        def a_started():
            f.check_alive()
            return sum(days_done(r, st, "a").values()) >= 4
        h.wait_until(a_started, 60, "A's import to get going")
        fs.produce_jobs(st, fs.backfill_jobs("b", fs.days("2024-01-01", DAYS_B)))

        def b_done():
            f.check_alive()
            return all(n >= DAYS_B for n in days_done(r, st, "b").values())
        h.wait_until(b_done, 120, "B's import to complete")
        a_left = DAYS_A * len(fs.STREAMS) - sum(days_done(r, st, "a").values())
        assert a_left >= DAYS_A * len(fs.STREAMS) // 2, (
            "B finished only after half of A (%d of %d day-jobs of A left): "
            "A's queue held B back" % (a_left, DAYS_A * len(fs.STREAMS)))
        for account in ("acct-1", "acct-2"):
            code, body = h.http_get(sim.url + "/_sim/stats?account=" + account)
            assert code == 200, (account, code)
            stats = json.loads(body)
            assert stats["violations"] == 0, (account, stats)
            assert stats["peak_in_flight"] <= IN_FLIGHT, (account, stats)
        rows_b = sum(int(v.split()[0]) for s in fs.STREAMS
                     for v in r.hvals(fs.rkey(st, "i", "b", "done", s)))
        raw_b = [m for m in st.consume_all(fs.TOPIC_RAW) if m.key.startswith(b"b/")]
        assert len(raw_b) >= rows_b > 0, (rows_b, len(raw_b))  # every row counted done is in raw
        assert st.stop(f) == 0, "fetcher did not exit 0 on SIGTERM"
        print("ok: B's %d day-jobs done with %d of A's %d still to do; %d rows of B in raw"
              % (DAYS_B * len(fs.STREAMS), a_left, DAYS_A * len(fs.STREAMS), rows_b))


if __name__ == "__main__":
    main()
