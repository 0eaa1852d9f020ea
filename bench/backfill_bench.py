"""Import speed from the defaults (run by bench/backfill.sh): one account
(BENCH_CUSTOMERS 500, BENCH_DAYS 120 ending yesterday, 5 streams), CRM
latency 200 ms and 8 requests in flight allowed, so the bound is 40
requests a second. The scheduler and one fetcher run with the defaults a
user gets (nothing tuned); the clock starts at `ltvctl integration add`.

Prints requests/s beside the bound, their ratio, the time to the first and
to the last row in ltvsync.raw (Kafka's timestamps of the rows), the peak
in flight crm-sim saw and its limit violations. Not a timed test."""
import datetime
import json
import os
import time
from zoneinfo import ZoneInfo

import ltharness as h
from crmsim import CrmSim

LATENCY_MS, IN_FLIGHT = 200, 8
TZ = "America/New_York"


class Sim(CrmSim):
    def __init__(self, proc):
        self.port = proc.port


def raw_times(st):
    """Kafka timestamps (ms) of every row in ltvsync.raw."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": st.broker.bootstrap, "group.id": h.unique_name("bf"),
                  "enable.auto.commit": False})
    try:
        md = c.list_topics("ltvsync.raw", timeout=10)
        parts = [TopicPartition("ltvsync.raw", p, 0) for p in md.topics["ltvsync.raw"].partitions]
        ends = {p.partition: c.get_watermark_offsets(p, timeout=10)[1] for p in parts}
        c.assign(parts)
        ts, pos = [], {p: 0 for p in ends}
        deadline = time.monotonic() + 60
        while any(pos[p] < ends[p] for p in ends) and time.monotonic() < deadline:
            for m in c.consume(1000, timeout=1.0):
                if m.error():
                    continue
                ts.append(m.timestamp()[1])
                pos[m.partition()] = m.offset() + 1
        return ts
    finally:
        c.close()


def main():
    customers = int(os.environ.get("BENCH_CUSTOMERS", 500))
    days = int(os.environ.get("BENCH_DAYS", 120))
    today = datetime.datetime.now(ZoneInfo(TZ)).date()
    start = today - datetime.timedelta(days=days)
    with h.Stack("backfill-bench") as st:
        st.start_redis()
        st.start_devbroker()
        proc = st.start_crmsim(seed=7, customers=customers, start=start.isoformat(),
                               days=days + 1, timezone=TZ, login_id="bench-api",
                               password="bench-pw", latency_ms=LATENCY_MS,
                               max_in_flight=IN_FLIGHT, max_rps=1000)
        sim = Sim(proc)
        st.run("ltvctl", ["topics", "create"], timeout=60)
        env = {"LTVSYNC_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "warn")}
        procs = [st.start_service("ltvsync-scheduler", env), st.start_service("ltvsync-fetcher", env)]
        for p in procs:
            st.wait_ready(p)
        # Warm-up: a job of an unknown integration on each job topic, so the
        # fetcher has joined its group and holds its partitions before the
        # clock starts (a long-running fetcher has; a join takes seconds).
        st.produce("ltvsync.jobs.live", [("warmup/x/y", json.dumps(
            {"job_id": "00000000-0000-4000-8000-000000000000", "integration_id": "warmup",
             "stream": "transactions", "date_range_type": "dateUpdated", "day": "2020-01-01",
             "page_from": 0, "page_to": 0, "reason": "live",
             "run_id": "00000000-0000-4000-8000-000000000001"}))])

        def dropped():
            status, body = procs[1].http("/metrics")
            return status == 200 and b'ltvsync_fetcher_jobs_total{outcome="dropped"} 1' in body
        h.wait_until(dropped, 60, "the fetcher to take its warm-up job", interval=0.2)
        with open(st.path("pw"), "w") as f:
            f.write("bench-pw")
        s0 = sim.stats()
        t0 = time.time()
        print("integration add at %.3f (tmp %s)" % (t0, st.tmp))
        r = st.run("ltvctl", ["integration", "add", "--id", "bench", "--brand", "konnektive",
                              "--base-url", proc.url, "--api-username", "bench-api",
                              "--password-ref", "file:" + st.path("pw"),
                              "--account-name", "Bench", "--account-username", "bench",
                              "--timezone", TZ, "--import-from", start.isoformat(),
                              "--sync-interval", "1h", "--max-rps", "1000",
                              "--max-in-flight", str(IN_FLIGHT)], timeout=60)
        if r.returncode:
            raise h.HarnessError("integration add: %s%s" % (r.stdout, r.stderr))
        t_added = time.time() - t0

        def synced():
            for p in procs:
                p.check_alive()
            q = st.run("ltvctl", ["status", "bench", "--json"], timeout=30)
            s = json.loads(q.stdout) if q.returncode == 0 else None
            return s and s["outstanding_jobs"] == 0 and all(
                v["days_done"] >= v["days_total"] > 0 for v in s["streams"].values()) and s
        h.wait_until(synced, 1800, "the import to complete", interval=0.5)
        complete = time.time() - t0
        s1 = sim.stats()
        ts = raw_times(st)
        first, last = (min(ts) / 1000.0 - t0, max(ts) / 1000.0 - t0) if ts else (0, 0)
        reqs = s1["total"] - s0["total"]
        # A large account's raw rows outgrow the dev broker's 5 MiB a
        # partition (the oldest are evicted): then the time to complete
        # (ltvctl status, polled every 0.5 s) stands in for the last row.
        evicted = len(ts) == 0 or st.broker.status().get("evicted")
        span = complete if evicted else last
        rps = reqs / span if span > 0 else 0
        bound = IN_FLIGHT * 1000.0 / LATENCY_MS
        print("account: %d customers, %d days ending yesterday, 5 streams; CRM latency %d ms, "
              "%d in flight (bound %.0f requests/s)" % (customers, days, LATENCY_MS, IN_FLIGHT, bound))
        print("defaults: 1 fetcher, scheduler and fetcher untuned")
        print("requests:        %d (%d rows in ltvsync.raw)" % (reqs, len(ts)))
        print("time to first row: %.2f s after integration add (ltvctl itself took %.2f s)"
              % (first, t_added))
        print("time to last row:  %.2f s" % last)
        print("time to complete:  %.2f s (ltvctl status: every day done, nothing outstanding)%s"
              % (complete, "; raw rows evicted by the dev broker: requests/s from this"
                 if evicted else ""))
        print("requests/s:      %.1f of %.0f bound: ratio %.2f" % (rps, bound, rps / bound))
        print("peak in flight:  %s of %d; limit violations: %s"
              % (s1.get("peak_in_flight"), IN_FLIGHT, s1.get("violations")))


if __name__ == "__main__":
    main()
