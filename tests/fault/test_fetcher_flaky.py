"""crm-sim --fault-rate 0.2 (503 HTML pages, bare ERRORs, truncated JSON,
reset connections): the fetchers back off, retry and still land every row
of the dump, with no secret anywhere."""

import ltharness as h
import fetcher_stack as fs


def main():
    with h.Stack("fetcher-flaky") as st:
        sim = fs.start_stack(st, customers=40, days=3, fault_rate=0.2, seed=7)
        fs.add_integration(st, sim, rps=50, in_flight=4)
        day_list = fs.days("2024-01-01", 3)
        env = {"LTVSYNC_FETCH_PAGE_SIZE": 10, "LTVSYNC_FETCH_BACKOFF_MAX": "300ms",
               "LTVSYNC_FETCH_TIMEOUT": "5s"}
        f1, f2 = fs.start_fetchers(st, 2, env)
        fs.produce_jobs(st, fs.backfill_jobs("acme", day_list))
        fs.wait_days_done(st, "acme", day_list, timeout=120, procs=(f1, f2))
        msgs = fs.assert_complete(st, sim, "acme")
        stats = fs.sim_stats(sim)
        assert stats["faults"] > 0, stats
        fs.assert_no_secrets(st, fs.load_dump(sim), msgs, sim.password)
        for p in (f1, f2):
            assert st.stop(p) == 0
        print("ok: faults %d of %d requests" % (stats["faults"], stats["total"]))


if __name__ == "__main__":
    main()
