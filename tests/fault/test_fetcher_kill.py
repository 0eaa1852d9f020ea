"""Fetcher faults: kill -9 of a fetcher mid-window (the sync completes,
nothing is missing, re-fetched pages are no more than the pages that were in
flight), then Redis stopped ~10 s mid-sync (fetchers pause and resume,
limits still hold, nothing missing)."""
import signal
import time

import ltharness as h
import fetcher_stack as fs

ENV = {"LTVSYNC_FETCH_PAGE_SIZE": 5, "LTVSYNC_FETCH_SPLIT_PAGES": 1000,
       "LTVSYNC_KAFKA_SESSION_TIMEOUT_MS": 6000,
       "LTVSYNC_FETCH_CONCURRENCY": 2}


def requests_total(sim):
    return fs.sim_stats(sim)["total"]


def kill_mid_window():
    with h.Stack("fetcher-kill") as st:
        sim = fs.start_stack(st, customers=80, days=3, latency_ms=60,
                             max_in_flight=2, max_rps=30)
        fs.add_integration(st, sim, rps=30, in_flight=2)
        day_list = fs.days("2024-01-01", 3)
        streams = ["transactions", "orders", "customers"]
        (f1,) = fs.start_fetchers(st, 1, ENV)
        fs.produce_jobs(st, fs.backfill_jobs("acme", day_list, streams))
        h.wait_until(lambda: requests_total(sim) >= 6, 30, "fetching under way")
        f1.popen.send_signal(signal.SIGKILL)
        f1.popen.wait()
        before = requests_total(sim)
        f2 = fs.start_fetchers(st, 1, ENV)[0]
        fs.wait_days_done(st, "acme", day_list, streams, timeout=90, procs=(f2,))
        fs.assert_complete(st, sim, "acme", streams)
        # pages needed once each = requests of a clean run; re-fetches are
        # bounded by the killed fetcher's in-flight requests (2 jobs in hand)
        r = st.redis.client()
        pages = sum(int(r.hget(fs.rkey(st, "i", "acme", "stats", s), "pages") or 0)
                    for s in streams)
        stats = fs.sim_stats(sim)
        empties = stats["total"] - pages
        assert stats["violations"] == 0, stats
        print("kill: requests before kill %d, total %d, pages checkpointed %d, "
              "non-checkpointed requests %d" % (before, stats["total"], pages, empties))
        # each job ends with at most one "No ... matching" request, plus the
        # pages in flight at the kill (ENV concurrency 2)
        assert empties <= len(day_list) * len(streams) + 2, stats
        assert st.stop(f2) == 0


def redis_outage():
    with h.Stack("fetcher-redis") as st:
        sim = fs.start_stack(st, customers=60, days=3, latency_ms=40,
                             max_in_flight=2, max_rps=20)
        fs.add_integration(st, sim, rps=20, in_flight=2)
        day_list = fs.days("2024-01-01", 3)
        streams = ["transactions", "orders", "customers"]
        f1, f2 = fs.start_fetchers(st, 2, ENV)
        fs.produce_jobs(st, fs.backfill_jobs("acme", day_list, streams))
        h.wait_until(lambda: requests_total(sim) >= 4, 30, "fetching under way")
        st.redis.popen.send_signal(signal.SIGSTOP)  # unreachable, data kept
        time.sleep(2)
        paused_at = requests_total(sim)
        time.sleep(8)
        during = requests_total(sim) - paused_at
        st.redis.popen.send_signal(signal.SIGCONT)
        assert during == 0, "%d CRM requests while Redis was down (fail open)" % during
        fs.wait_days_done(st, "acme", day_list, streams, timeout=90, procs=(f1, f2))
        fs.assert_complete(st, sim, "acme", streams)
        stats = fs.sim_stats(sim)
        assert stats["violations"] == 0 and stats["peak_in_flight"] <= 2, stats
        logs = f1.log() + f2.log()
        assert "pausing" in logs, "no fetcher reported the Redis pause"
        for p in (f1, f2):
            assert st.stop(p) == 0


if __name__ == "__main__":
    kill_mid_window()
    redis_outage()
    print("ok")
