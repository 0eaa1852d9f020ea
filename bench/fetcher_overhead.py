"""The fetcher's own cost per job (issue 13, "Benchmark and docs": goal at
least 2,000 jobs a second per fetcher core), run by bench/fetcher_overhead.sh.

One ltvsync-fetcher with the defaults (FETCH_CONCURRENCY 16, FETCH_PAGE_SIZE
200, log level info; the harness sets only addresses, its HTTP port, a
unique REDIS_PREFIX, LTVSYNC_CRM_CREDENTIALS_DIR and
LTVSYNC_CRM_ALLOW_INSECURE=1 for crm-sim over http), a real redis-server,
the dev broker (TOPIC_PARTITIONS 12, the default), no scheduler, and a CRM
that answers at once: crm-sim --latency-ms 0 serving BENCH_ACCOUNTS (16)
accounts of BENCH_CUSTOMERS (60) customers over BENCH_DAYS (365) days, so a
day's page holds a few rows or none (tiny pages: one request a job), and
limits far above what is used (crm-sim 1,000,000 requests/s and 1,000 in
flight per account; each integration max_requests_per_second 1000, the
schema's maximum, and max_in_flight 64).

Each run, in a fresh stack: the integrations are written to
ltvsync.integrations, one warm-up job per integration (a day before the
accounts) runs to completion (groups joined, registry loaded, connections
open), then BENCH_ACCOUNTS x 5 streams x BENCH_DAYS backfill jobs (the
job the scheduler writes, one per integration, stream and day) are produced
to ltvsync.jobs.backfill and the clock runs until Redis shows every day of
every stream done (polled every 0.2 s, pipelined HLEN). Measured over that
window: jobs a second (wall), the fetcher's CPU seconds (utime + stime of
/proc/PID/stat) and so jobs per fetcher CPU second (= jobs a second per
fetcher core), the fetcher's CPU by thread name (/proc/PID/task/*/stat),
the CPU of crm-sim, Redis and the dev broker beside it (the same 2 cores),
Redis commands a job (INFO commandstats, by command), CRM requests a job,
the fetcher's peak RSS, the load average.

BENCH_REPEAT (3) runs, then medians. BENCH_PERF=FILE records the fetcher
with `perf record` (BENCH_PERF_ARGS, default "-g -F 499"; the Release
build has no frame pointers, so "--call-graph dwarf -F 99" attributes the
system calls to their callers) over the measured window of the first run
(read it with `perf report -i FILE --stdio`). Not a timed test."""
import datetime
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ltharness as h  # noqa: E402
from procstat import cmdstats, cpu_s, loadavg, redis_cpu, status_kb, thread_cpu  # noqa: E402

TZ = "America/New_York"
STREAMS = ["transactions", "orders", "customers", "purchases", "campaigns"]
PASSWORD = "bench-pw"
START = "2024-01-01"
OWN = {"info", "dbsize", "ping", "client", "hello", "command", "config", "memory", "hlen", "hkeys"}


def env_int(name, default):
    return int(os.environ.get(name, default))


def log(msg):
    sys.stderr.write("[overhead] %s\n" % msg)
    sys.stderr.flush()


def sim_stats(sim):
    code, body = h.http_get(sim.url + "/_sim/stats", timeout=30)
    return json.loads(body) if code == 200 else {}


def job(iid, stream, day):
    return {"job_id": str(uuid.uuid4()), "integration_id": iid, "stream": stream,
            "date_range_type": "dateCreated", "day": day, "page_from": 0, "page_to": 0,
            "reason": "backfill", "run_id": str(uuid.uuid4())}


def produce_jobs(st, jobs):
    st.produce("ltvsync.jobs.backfill",
               [("%s/%s/%s" % (j["integration_id"], j["stream"], j["day"]), json.dumps(j))
                for j in jobs], timeout=120)


def days_done(r, prefix, ids, in_range):
    pipe = r.pipeline(transaction=False)
    for iid in ids:
        for s in STREAMS:
            pipe.hkeys("%si:%s:done:%s" % (prefix, iid, s))
    return sum(sum(1 for d in keys if in_range(d.decode())) for keys in pipe.execute())


def run(k, perf_file):
    accounts, days = env_int("BENCH_ACCOUNTS", 16), env_int("BENCH_DAYS", 365)
    customers = env_int("BENCH_CUSTOMERS", 60)
    day_list = [(datetime.date.fromisoformat(START) + datetime.timedelta(days=i)).isoformat()
                for i in range(days)]
    warm_day = (datetime.date.fromisoformat(START) - datetime.timedelta(days=1)).isoformat()
    ids = ["o%03d" % i for i in range(1, accounts + 1)]
    res = {"load0": loadavg()}
    with h.Stack("fetcher-overhead") as st:
        rp = st.start_redis()
        st.start_devbroker()
        sim = st.start_crmsim(accounts=accounts, login_id=None, seed=21, customers=customers,
                              start=START, days=days, timezone=TZ, password=PASSWORD,
                              latency_ms=0, max_rps=1000000, max_in_flight=1000)
        with open(st.path("pw"), "w") as f:
            f.write(PASSWORD)
        docs = []
        for i, iid in enumerate(ids, 1):
            doc = {"id": iid, "brand": "konnektive", "base_url": sim.url,
                   "api_username": "acct-%d" % i, "password_ref": "file:" + st.path("pw"),
                   "account_name": "Overhead %d" % i, "account_username": "owner-%d" % i,
                   "timezone": TZ, "currency": "USD", "import_from": START,
                   "sync_interval": "1h", "streams": STREAMS,
                   "max_requests_per_second": 1000, "max_in_flight": 64}
            docs.append((iid, json.dumps(doc)))
        st.produce("ltvsync.integrations", docs)
        f = st.start_service("ltvsync-fetcher")
        st.wait_ready(f)
        r = rp.client()
        # Warm-up: one job per integration on a day before the accounts.
        produce_jobs(st, [job(iid, "transactions", warm_day) for iid in ids])
        h.wait_until(lambda: f.check_alive() or days_done(
            r, st.prefix, ids, lambda d: d == warm_day) >= len(ids), 120, "the warm-up jobs")
        jobs = [job(iid, s, d) for d in day_list for iid in ids for s in STREAMS]
        want = len(jobs) + len(ids)
        in_range = lambda d: True  # noqa: E731
        perf = None
        if perf_file:
            opts = os.environ.get("BENCH_PERF_ARGS", "-g -F 499").split()
            perf = subprocess.Popen(["perf", "record"] + opts + ["-o", perf_file,
                                                                 "-p", str(f.pid)], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            time.sleep(1.0)
        s0, cs0, rc0 = sim_stats(sim), cmdstats(r), redis_cpu(r)
        c0, th0 = cpu_s(f.pid), thread_cpu(f.pid)
        o0 = {"crm-sim": cpu_s(sim.pid), "devbroker": cpu_s(st.broker.pid)}
        t0 = time.monotonic()
        produce_jobs(st, jobs)
        t_prod = time.monotonic() - t0

        def all_done():
            f.check_alive()
            return days_done(r, st.prefix, ids, in_range) >= want
        h.wait_until(all_done, 1800, "every job done", interval=0.2)
        el = time.monotonic() - t0
        c1, th1 = cpu_s(f.pid), thread_cpu(f.pid)
        o1 = {"crm-sim": cpu_s(sim.pid), "devbroker": cpu_s(st.broker.pid)}
        s1, cs1, rc1 = sim_stats(sim), cmdstats(r), redis_cpu(r)
        if perf:
            perf.send_signal(signal.SIGINT)
            perf.wait(60)
        res.update(jobs=len(jobs), el=el, t_prod=t_prod, cpu=c1 - c0,
                   threads={n: th1.get(n, 0) - th0.get(n, 0) for n in th1},
                   other={n: o1[n] - o0[n] for n in o1}, rcpu=rc1 - rc0,
                   requests=s1["total"] - s0["total"], violations=s1["violations"],
                   peak=s1["peak_in_flight"],
                   cmds={n: cs1[n][0] - cs0.get(n, (0, 0))[0] for n in cs1
                         if cs1[n][0] - cs0.get(n, (0, 0))[0] and n.split("|")[0] not in OWN},
                   hwm=status_kb(f.pid, "VmHWM"), load1=loadavg(),
                   log_lines=len(f.log_lines()))
        st.stop(f)
        time.sleep(1.5)   # the broker's status file is rewritten every second
        res["evicted"] = st.broker.status().get("evicted")
    res["jps"] = res["jobs"] / res["el"]
    res["jpc"] = res["jobs"] / res["cpu"]
    return res


def main():
    repeat = env_int("BENCH_REPEAT", 3)
    perf_file = os.environ.get("BENCH_PERF")
    print("one fetcher, defaults (FETCH_CONCURRENCY 16, FETCH_PAGE_SIZE 200, log level info); "
          "crm-sim latency 0, %s accounts of %s customers over %s days; %d cores"
          % (os.environ.get("BENCH_ACCOUNTS", 16), os.environ.get("BENCH_CUSTOMERS", 60),
             os.environ.get("BENCH_DAYS", 365), os.cpu_count()))
    runs = []
    for k in range(repeat):
        res = run(k, perf_file if k == 0 else None)
        runs.append(res)
        top = sorted(res["threads"].items(), key=lambda kv: -kv[1])
        cmds = sum(res["cmds"].values())
        print("run %d: %d jobs in %.2f s (produced in %.2f s): %.0f jobs/s; fetcher CPU %.2f s "
              "= %.0f jobs per fetcher CPU second (%.0f us a job); CRM requests %.2f a job, "
              "violations %d, peak in flight %d; Redis commands %.1f a job (%s), Redis CPU "
              "%.2f s; crm-sim CPU %.2f s, dev broker %.2f s; fetcher peak RSS %.1f MiB, "
              "%d log lines; dev broker evicted: %s; load %s -> %s"
              % (k + 1, res["jobs"], res["el"], res["t_prod"], res["jps"], res["cpu"],
                 res["jpc"], res["cpu"] / res["jobs"] * 1e6, res["requests"] / res["jobs"],
                 res["violations"], res["peak"], cmds / res["jobs"],
                 ", ".join("%s %.1f" % (n.upper(), v / res["jobs"]) for n, v in
                           sorted(res["cmds"].items(), key=lambda kv: -kv[1])),
                 res["rcpu"], res["other"]["crm-sim"], res["other"]["devbroker"],
                 res["hwm"] / 1024.0, res["log_lines"], res["evicted"], res["load0"], res["load1"]))
        print("  fetcher CPU by thread: %s" % ", ".join(
            "%s %.2f s (%.0f%%)" % (n, v, 100 * v / res["cpu"]) for n, v in top if v > 0))
        sys.stdout.flush()
    if len(runs) > 1:
        def med(key):
            vals = [x[key] for x in runs]
            return statistics.median(vals), min(vals), max(vals)
        print("median of %d: %.0f jobs/s (%.0f-%.0f); %.0f jobs per fetcher CPU second "
              "(%.0f-%.0f); goal 2,000 a core: %s"
              % ((len(runs),) + med("jps") + med("jpc") +
                 ("met" if med("jpc")[0] >= 2000 else "NOT met",)))


if __name__ == "__main__":
    main()
