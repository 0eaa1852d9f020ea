"""Fetcher benchmark (run by bench/fetcher.sh): throughput against the
in-flight limit and the rate limit of crm-sim, for 1, 2 and 4 fetchers.
Prints a table; not a timed test. Env: BENCH_DAYS (365), BENCH_CUSTOMERS."""
import os
import time

import ltharness as h
import fetcher_stack as fs


def vmhwm_kb(pid):
    try:
        for line in open("/proc/%d/status" % pid):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def run(n, days, customers, sim_opts, rps, in_flight):
    with h.Stack("fetcher-bench") as st:
        sim = fs.start_stack(st, partitions=8, customers=customers, days=days,
                             start="2023-01-01", **sim_opts)
        fs.add_integration(st, sim, rps=rps, in_flight=in_flight, start="2023-01-01")
        day_list = fs.days("2023-01-01", days)
        procs = fs.start_fetchers(st, n, {"LTVSYNC_FETCH_CONCURRENCY": int(os.environ.get("BENCH_CONCURRENCY", 16)),
                                          "LTVSYNC_LOG_LEVEL": "warn"})
        # Warm-up: one job on a day before the account, so the fetchers have
        # joined their groups before the clock starts.
        fs.produce_jobs(st, fs.backfill_jobs("acme", ["2022-12-31"], ["transactions"]))
        fs.wait_days_done(st, "acme", ["2022-12-31"], ["transactions"], timeout=120, procs=procs)
        s0 = fs.sim_stats(sim)
        t0 = time.monotonic()
        fs.produce_jobs(st, fs.backfill_jobs("acme", day_list, ["transactions"]))
        fs.wait_days_done(st, "acme", day_list, ["transactions"], timeout=3600, procs=procs)
        secs = time.monotonic() - t0
        s1 = fs.sim_stats(sim)
        rows = len(fs.load_dump(sim)["transactions"])
        pages = s1["requests"].get("/transactions/query/", 0) - s0["requests"].get("/transactions/query/", 0)
        rss = [vmhwm_kb(p.pid) for p in procs] + [vmhwm_kb(sim.pid)]
        return {"n": n, "secs": secs, "rows": rows, "requests": s1["total"] - s0["total"],
                "violations": s1["violations"], "peak": s1["peak_in_flight"], "pages": pages,
                "rss": rss}


def main():
    days = int(os.environ.get("BENCH_DAYS", 365))
    customers = int(os.environ.get("BENCH_CUSTOMERS", 20000))
    print("%-28s %3s %8s %9s %10s %9s %6s %5s  %s" % (
        "scenario", "N", "seconds", "rows/s", "vs 8000", "req/s", "goal%", "viol",
        "peak RSS KiB (fetchers..., crm-sim)"))
    for n in (1, 2, 4):
        r = run(n, days, customers, {"latency_ms": 200, "max_in_flight": 8}, 1000, 8)
        rps = r["requests"] / r["secs"]
        print("%-28s %3d %8.1f %9.0f %9.1f%% %9.2f %5.1f%% %5d  %s" % (
            "latency 200ms, in-flight 8", n, r["secs"], r["rows"] / r["secs"],
            100.0 * r["rows"] / r["secs"] / 8000, rps, 100.0 * rps / 40,
            r["violations"], r["rss"]))
    for n in (1, 2, 4):
        r = run(n, min(days, 120), customers // 4, {"max_rps": 5}, 5, 8)
        rps = r["requests"] / r["secs"]
        print("%-28s %3d %8.1f %9.0f %10s %9.2f %5.1f%% %5d  %s" % (
            "max-rps 5", n, r["secs"], r["rows"] / r["secs"], "-", rps, 20.0 * rps,
            r["violations"], r["rss"]))
    print("req/s goal: 40/s (8 in flight / 0.2 s) for the in-flight rows, 5/s for max-rps;"
          " rows/s vs 8000 assumes full 200-row pages, which days of this account do not have")


if __name__ == "__main__":
    main()
