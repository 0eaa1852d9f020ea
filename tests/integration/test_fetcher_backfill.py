"""Two fetchers backfill a crm-sim account: every row of the dump lands in
ltvsync.raw (record-id sets per stream), the shared limits hold (zero
crm-sim violations of --max-rps and --max-in-flight), big days are split
into page-range sub-jobs, and no secret of the dump reaches a topic or log."""

import ltharness as h
import fetcher_stack as fs


def main():
    with h.Stack("fetcher-backfill") as st:
        sim = fs.start_stack(st, customers=60, days=4, latency_ms=20,
                             max_rps=40, max_in_flight=3)
        fs.add_integration(st, sim, rps=40, in_flight=3)
        day_list = fs.days("2024-01-01", 4)
        # small pages force multi-page days; split beyond 2 pages
        env = {"LTVSYNC_FETCH_PAGE_SIZE": 7, "LTVSYNC_FETCH_SPLIT_PAGES": 2}
        f1, f2 = fs.start_fetchers(st, 2, env)
        fs.produce_jobs(st, fs.backfill_jobs("acme", day_list))
        fs.wait_days_done(st, "acme", day_list, timeout=120, procs=(f1, f2))
        msgs = fs.assert_complete(st, sim, "acme")
        stats = fs.sim_stats(sim)
        assert stats["violations"] == 0, stats
        assert stats["peak_in_flight"] <= 3, stats
        assert stats["max_rps_window"] <= 40, stats
        fs.assert_no_secrets(st, fs.load_dump(sim), msgs, sim.password)
        metrics = b"".join(p.http("/metrics")[1] for p in (f1, f2)).decode()
        assert "ltvsync_fetcher_split_jobs_total" in metrics
        split = sum(float(l.split()[-1]) for l in metrics.splitlines()
                    if l.startswith("ltvsync_fetcher_split_jobs_total"))
        assert split > 0, "no day was split although pages > FETCH_SPLIT_PAGES"
        r = st.redis.client()
        # the day is done once its last range is: another range's job may
        # still be deleting its own checkpoint
        h.wait_until(lambda: not r.keys(st.prefix + "i:acme:ckpt:*"), 10,
                     "no checkpoint left behind")
        for p in (f1, f2):
            assert st.stop(p) == 0, "fetcher did not exit 0 on SIGTERM"
        print("ok: %d raw rows, stats %s" % (len(msgs), stats))


if __name__ == "__main__":
    main()
