"""The scale run of issue 13 ("Benchmark and docs"), run by bench/fleet.sh:
BENCH_INTEGRATIONS (1,000) integrations of BENCH_DAYS (30) days each
imported at once against one crm-sim serving that many accounts, by one
ltvsync-scheduler and BENCH_FETCHERS (4) ltvsync-fetchers, a real
redis-server and the dev broker.

The CRM: crm-sim --accounts N (login ids acct-1..N), BENCH_CUSTOMERS (5)
customers each over BENCH_DAYS + 1 days ending today (small merchants:
a handful of rows a day, most pages one short page or "No ... matching"),
BENCH_LATENCY_MS (50) ms a request (+-25 % jitter), and each account's own
limits BENCH_MAX_IN_FLIGHT (2) in flight and BENCH_MAX_RPS (10) requests a
second, enforced by crm-sim per account (a request over them is a
violation). Each integration declares the same limits (max_in_flight,
max_requests_per_second), so the fetchers must keep to them.

The services run with the defaults a user gets (scheduler: SCHEDULER_TICK
5s, MAX_OUTSTANDING_JOBS 2000, LIVE_LOOKBACK_DAYS 3; fetcher:
FETCH_CONCURRENCY 16, FETCH_PAGE_SIZE 200; log level info). The only
settings made are the harness's (addresses, HTTP ports, a unique
REDIS_PREFIX, LTVSYNC_CRM_CREDENTIALS_DIR = the stack's tmp dir and
LTVSYNC_CRM_ALLOW_INSECURE=1 so a fetcher may call crm-sim over http on
loopback) and the dev broker's partitions per topic: BENCH_PARTITIONS (48)
instead of TOPIC_PARTITIONS 12, because the dev broker keeps only ~5 MiB a
partition (then evicts) and the run leaves N x 165 jobs and every raw row in
it (the script prints partition 0's bytes of the job and raw topics and the
broker's eviction status: it must say no eviction).

The integrations are written to ltvsync.integrations in one batch, each the
document `ltvctl integration add` writes (lt_integration_to_json: 5
streams, import_from BENCH_DAYS days before today in America/New_York,
sync_interval 15m, the account's base_url and login, password_ref a file in
the stack's tmp dir), so every import starts at once (1,000 `ltvctl
integration add` runs would take minutes by themselves; the last
document is read back with `ltvctl integration show` as a check). An
integration's import time runs from its document's Kafka acknowledgement to
the first poll that finds its status complete: every stream's days from
import_from to yesterday done and no outstanding job, what `ltvctl status`
reports (read from Redis directly, pipelined, every BENCH_POLL_S (1.0) s,
only for the integrations not complete yet; one `ltvctl status --json`
for all at the end confirms it).

Printed: the run's wall time, CRM requests and fetcher jobs (done) per
second over it, p50/p99/max import time, the CPU seconds of every process
(scheduler, fetchers, crm-sim, Redis, dev broker), their peak RSS (VmHWM),
Redis used_memory and keys at the end (and per integration, minus before),
crm-sim's limit violations (must be 0) and peaks, the fetchers' job
outcomes, the dev broker's partition sizes and evictions, the load average.
BENCH_FETCHER_ENV and BENCH_SCHEDULER_ENV ("K=V ...") add settings for
comparisons (printed as NOT the defaults). Not a timed test."""
import datetime
import json
import os
import re
import sys
import time
from zoneinfo import ZoneInfo

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ltharness as h  # noqa: E402
from procstat import cpu_s, loadavg, status_kb  # noqa: E402
from scale_bench import partition_bytes  # noqa: E402

TZ = "America/New_York"
STREAMS = ["transactions", "orders", "customers", "purchases", "campaigns"]
PASSWORD = "bench-pw"


def env_int(name, default):
    return int(os.environ.get(name, default))


def log(msg):
    sys.stderr.write("[fleet] %s\n" % msg)
    sys.stderr.flush()


def metrics(proc):
    """{name{labels}: value} of a service's /metrics."""
    status, body = proc.http("/metrics")
    out = {}
    if status != 200:
        return out
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            try:
                out[k] = float(v)
            except ValueError:
                pass
    return out


def fetcher_counters(fetchers):
    """The fetchers' counters summed: jobs by outcome ({outcome: n}) and
    {metric name without ltvsync_fetcher_ and _total: n} of the others."""
    jobs, other = {}, {}
    for p in fetchers:
        for k, v in metrics(p).items():
            m = re.match(r'ltvsync_fetcher_jobs_total\{outcome="(\w+)"\}', k)
            if m:
                jobs[m.group(1)] = jobs.get(m.group(1), 0) + v
            elif k.startswith("ltvsync_fetcher_") and k.split("{")[0].endswith("_total"):
                name = k[len("ltvsync_fetcher_"):].replace("_total", "")
                other[name] = other.get(name, 0) + v
    return jobs, other


def sim_stats(sim):
    code, body = h.http_get(sim.url + "/_sim/stats", timeout=30)
    return json.loads(body) if code == 200 else {}


def extra_env(name):
    """BENCH_FETCHER_ENV / BENCH_SCHEDULER_ENV="K=V K2=V2": settings on top of
    the defaults, for comparisons (printed; empty by default)."""
    return dict(kv.split("=", 1) for kv in os.environ.get(name, "").split())


def documents(n, days, sim, pwfile, rps, in_flight, today):
    start = (today - datetime.timedelta(days=days)).isoformat()
    out = []
    for i in range(1, n + 1):
        iid = "m%05d" % i
        doc = {"id": iid, "brand": "konnektive", "base_url": sim.url,
               "api_username": "acct-%d" % i, "password_ref": "file:" + pwfile,
               "account_name": "Fleet merchant %d" % i, "account_username": "owner-%05d" % i,
               "timezone": TZ, "currency": "USD", "import_from": start,
               "sync_interval": "15m", "streams": STREAMS,
               "max_requests_per_second": rps, "max_in_flight": in_flight}
        out.append((iid, json.dumps(doc, separators=(",", ":"))))
    return out


def produce_timed(st, items):
    """Produces (key, value) pairs; returns {key: monotonic time of its
    acknowledgement}."""
    from confluent_kafka import Producer
    pr = Producer({"bootstrap.servers": st.broker.bootstrap, "enable.idempotence": True,
                   "linger.ms": 5})
    acked, errors = {}, []

    def dr(err, msg):
        if err:
            errors.append(err)
        else:
            acked[msg.key().decode()] = time.monotonic()
    for key, value in items:
        while True:
            try:
                pr.produce("ltvsync.integrations", key=key, value=value, on_delivery=dr)
                break
            except BufferError:
                pr.poll(0.1)
        pr.poll(0)
    left = pr.flush(120)
    if left or errors:
        raise h.HarnessError("integrations: %d undelivered, errors %s" % (left, errors[:3]))
    return acked


class Progress:
    """What `ltvctl status` calls complete, read from Redis: every stream's
    done days within [import_from, yesterday] and HLEN outstanding 0."""

    def __init__(self, r, prefix, first, yesterday, days_total):
        self.r, self.prefix = r, prefix
        self.first, self.last, self.total = first, yesterday, days_total

    def complete(self, ids):
        pipe = self.r.pipeline(transaction=False)
        for iid in ids:
            for s in STREAMS:
                pipe.hkeys("%si:%s:done:%s" % (self.prefix, iid, s))
            pipe.hlen("%si:%s:outstanding" % (self.prefix, iid))
        res = pipe.execute()
        out, k, days_done = [], 0, 0
        for iid in ids:
            ok = True
            for _ in STREAMS:
                n = sum(1 for d in res[k] if self.first <= d.decode() <= self.last)
                days_done += n
                ok = ok and n >= self.total
                k += 1
            ok = ok and res[k] == 0
            k += 1
            if ok:
                out.append(iid)
        return out, days_done


def pct(sorted_vals, q):
    """Nearest-rank percentile."""
    if not sorted_vals:
        return float("nan")
    k = max(0, min(len(sorted_vals) - 1, int(-(-q * len(sorted_vals) // 100)) - 1))
    return sorted_vals[k]


def run():
    n = env_int("BENCH_INTEGRATIONS", 1000)
    days = env_int("BENCH_DAYS", 30)
    nf = env_int("BENCH_FETCHERS", 4)
    customers = env_int("BENCH_CUSTOMERS", 5)
    latency = env_int("BENCH_LATENCY_MS", 50)
    in_flight, rps = env_int("BENCH_MAX_IN_FLIGHT", 2), env_int("BENCH_MAX_RPS", 10)
    partitions = env_int("BENCH_PARTITIONS", 48)
    timeout = float(os.environ.get("BENCH_TIMEOUT_S", 3600))
    poll = float(os.environ.get("BENCH_POLL_S", 1.0))
    today = datetime.datetime.now(ZoneInfo(TZ)).date()
    first = (today - datetime.timedelta(days=days)).isoformat()
    yesterday = (today - datetime.timedelta(days=1)).isoformat()
    res = {"n": n, "days": days, "nf": nf, "customers": customers, "latency": latency,
           "in_flight": in_flight, "rps": rps, "partitions": partitions,
           "load0": loadavg()}
    with h.Stack("fleet-bench") as st:
        rp = st.start_redis()
        st.start_devbroker(partitions=partitions)
        sim = st.start_crmsim(accounts=n, login_id=None, seed=13, customers=customers,
                              start=first, days=days + 1, timezone=TZ, password=PASSWORD,
                              latency_ms=latency, max_in_flight=in_flight, max_rps=rps)
        pw = st.path("pw")
        with open(pw, "w") as f:
            f.write(PASSWORD)
        sch = st.start_service("ltvsync-scheduler", extra_env("BENCH_SCHEDULER_ENV"))
        fetchers = [st.start_service("ltvsync-fetcher", extra_env("BENCH_FETCHER_ENV"))
                    for _ in range(nf)]
        for p in [sch] + fetchers:
            st.wait_ready(p)
        time.sleep(3)  # the fetchers join their groups, as long-running ones have
        r = rp.client()
        procs = [("scheduler", sch)] + [("fetcher.%d" % (i + 1), p)
                                        for i, p in enumerate(fetchers)] + \
            [("crm-sim", sim), ("redis", rp), ("devbroker", st.broker)]
        cpu0 = {name: cpu_s(p.pid) for name, p in procs}
        mem0, keys0 = r.info("memory")["used_memory"], r.dbsize()
        docs = documents(n, days, sim, pw, rps, in_flight, today)

        t0 = time.monotonic()
        acked = produce_timed(st, docs)
        t_written = time.monotonic()
        log("N=%d: %d integrations written in %.2f s (load %s)"
            % (n, len(acked), t_written - t0, loadavg()))
        prog = Progress(r, st.prefix, first, yesterday, days)
        pending, done_at, last_note = [iid for iid, _ in docs], {}, t0
        while pending:
            for p in [sch] + fetchers:
                p.check_alive()
            now = time.monotonic()
            newly, days_done = prog.complete(pending)
            for iid in newly:
                done_at[iid] = now
            if newly:
                gone = set(newly)
                pending = [i for i in pending if i not in gone]
            if now - t0 > timeout:
                break
            if now - last_note >= 15:
                s = sim_stats(sim)
                log("  %.0f s: %d of %d complete; %d requests, %d violations; load %s"
                    % (now - t0, len(done_at), n, s.get("total", 0), s.get("violations", 0),
                       loadavg()))
                last_note = now
            time.sleep(poll)
        t_end = time.monotonic()
        res["load1"] = loadavg()
        res["cpu"] = {name: cpu_s(p.pid) - cpu0[name] for name, p in procs}
        res["hwm"] = {name: status_kb(p.pid, "VmHWM") for name, p in procs}
        res["complete"] = len(done_at)
        res["wall"] = t_end - t0
        res["last_done"] = max(done_at.values()) - t0 if done_at else float("nan")
        res["times"] = sorted(done_at[i] - acked[i] for i in done_at)
        res["outcomes"], res["counters"] = fetcher_counters(fetchers)
        res["sim"] = sim_stats(sim)
        res["sch_metrics"] = {k: v for k, v in metrics(sch).items()
                              if k.startswith("ltvsync_scheduler_jobs_emitted_total")}
        mi = r.info("memory")
        res["mem"], res["mem_peak"], res["keys"] = mi["used_memory"], mi["used_memory_peak"], \
            r.dbsize()
        res["mem_per"] = (res["mem"] - mem0) / n
        res["keys_per"] = (res["keys"] - keys0) / n
        res["one"] = []
        for k in sorted(r.scan_iter(match="%si:m00001:*" % st.prefix, count=1000)):
            t = r.type(k).decode()
            res["one"].append((k.decode()[len(st.prefix):], t,
                               r.hlen(k) if t == "hash" else None, r.memory_usage(k)))
        # ltvctl's own view, once, for all.
        t_s = time.monotonic()
        q = st.run("ltvctl", ["status", "--json"], timeout=300)
        res["status_s"] = time.monotonic() - t_s
        try:
            sts = json.loads(q.stdout)
            res["status_complete"] = sum(
                1 for s in sts if s["outstanding_jobs"] == 0 and all(
                    v["days_done"] >= v["days_total"] > 0 for v in s["streams"].values()))
            res["status_rows"] = sum(v["rows"] for s in sts for v in s["streams"].values())
        except (ValueError, KeyError, TypeError):
            res["status_complete"], res["status_rows"] = "unreadable: %s" % q.stderr[:200], 0
        q = st.run("ltvctl", ["integration", "show", docs[-1][0]], timeout=120)
        res["doc_same"] = q.returncode == 0 and json.loads(q.stdout) == json.loads(docs[-1][1])
        for topic in ("ltvsync.jobs.backfill", "ltvsync.raw"):
            res["p0_" + topic] = partition_bytes(st, topic, 0)
        time.sleep(1.5)   # the broker's status file is rewritten every second
        res["broker"] = st.broker.status()
    return res


def report(res):
    n, t = res["n"], res["times"]
    sim, oc = res["sim"], res["outcomes"]
    print()
    print("== %d integrations x %d days (5 streams), %d fetchers, 1 scheduler; crm-sim %d "
          "accounts of %d customers, %d ms a request, per account %d in flight and %d requests/s; "
          "dev broker %d partitions a topic; %d cores; load before %s, after %s =="
          % (n, res["days"], res["nf"], n, res["customers"], res["latency"], res["in_flight"],
             res["rps"], res["partitions"], os.cpu_count(), res["load0"], res["load1"]))
    for name in ("BENCH_SCHEDULER_ENV", "BENCH_FETCHER_ENV"):
        if extra_env(name):
            print("NOT the defaults: %s %s" % (name, " ".join(
                "%s=%s" % kv for kv in sorted(extra_env(name).items()))))
    if res["complete"] < n:
        print("INCOMPLETE: %d of %d integrations complete after %.0f s"
              % (res["complete"], n, res["wall"]))
    wall = res["last_done"]
    print("all complete %.1f s after the first write; CRM requests %d (%.0f/s); fetcher jobs "
          "done %d (%.0f/s); job outcomes %s"
          % (wall, sim.get("total", 0), sim.get("total", 0) / wall, oc.get("done", 0),
             oc.get("done", 0) / wall, ", ".join("%s %d" % kv for kv in sorted(oc.items()))))
    print("fetcher counters: %s" % ", ".join("%s %d" % kv for kv in sorted(res["counters"].items())
                                             if kv[1]))
    print("import time per integration (Kafka ack of its document -> status complete, polled "
          "every %.1f s): p50 %.1f s, p99 %.1f s, max %.1f s, min %.1f s"
          % (float(os.environ.get("BENCH_POLL_S", 1.0)), pct(t, 50), pct(t, 99),
             t[-1] if t else float("nan"), t[0] if t else float("nan")))
    print("crm-sim: violations %s (rejected 429: %s), peak in flight %s (all accounts), busiest "
          "1 s window %s requests; requests by path %s"
          % (sim.get("violations"), sim.get("rejected_429"), sim.get("peak_in_flight"),
             sim.get("max_rps_window"), json.dumps(sim.get("requests", {}), sort_keys=True)))
    print("%-12s %10s %12s %14s" % ("process", "CPU s", "CPU/wall", "peak RSS MiB"))
    for name in res["cpu"]:
        print("%-12s %10.1f %11.0f%% %14.1f" % (name, res["cpu"][name],
                                                 100 * res["cpu"][name] / res["wall"],
                                                 res["hwm"][name] / 1024.0))
    fcpu = sum(v for k, v in res["cpu"].items() if k.startswith("fetcher"))
    print("fetchers together: %.1f CPU s, %.0f jobs per fetcher CPU second; scheduler %.2f CPU s "
          "(%.1f ms an integration)" % (fcpu, oc.get("done", 0) / fcpu if fcpu else 0,
                                        res["cpu"]["scheduler"],
                                        res["cpu"]["scheduler"] / n * 1e3))
    print("Redis at the end: used_memory %.1f MiB (%.0f B an integration), %d keys (%.2f an "
          "integration); used_memory_peak %.1f MiB (during the import: claims, checkpoints)"
          % (res["mem"] / 1048576.0, res["mem_per"], res["keys"], res["keys_per"],
             res["mem_peak"] / 1048576.0))
    print("keys of one integration at the end:")
    for k, typ, fields, mem in res["one"]:
        print("  %-40s %-6s %5s fields %7s B" % (k, typ, fields if fields is not None else "-",
                                                 mem))
    for topic in ("ltvsync.jobs.backfill", "ltvsync.raw"):
        recs, size = res["p0_" + topic]
        print("dev broker: partition 0 of %s holds %d records in %.2f MiB (%.0f B a record; "
              "the broker evicts past ~5 MiB a partition)"
              % (topic, recs, size / 1048576.0, size / max(recs, 1)))
    b = res["broker"]
    print("dev broker evicted: %s (%s); `ltvctl status --json` (one call, %.1f s): %s of %d "
          "complete, %d rows; ltvctl reads the last document back: %s; scheduler %s"
          % (b.get("evicted"), b.get("evictions"), res["status_s"], res["status_complete"], n,
             res["status_rows"], res["doc_same"],
             ", ".join("%s %d" % kv for kv in sorted(res["sch_metrics"].items()))))


def main():
    for i in range(env_int("BENCH_REPEAT", 1)):
        report(run())
        sys.stdout.flush()


if __name__ == "__main__":
    main()
