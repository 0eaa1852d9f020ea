"""Control-plane cost at scale (run by bench/scale.sh; issue 13, "Control
plane at scale"). For each N in BENCH_SIZES ("1000 10000"), in a fresh
Stack: a real redis-server, the dev broker, one ltvsync-scheduler with the
defaults a user gets (SCHEDULER_TICK 5s, LEADER_LEASE 10s,
MAX_OUTSTANDING_JOBS 2000, LIVE_LOOKBACK_DAYS 3, log level info) and no
fetcher, so every job stays outstanding. The only setting made is
LTVSYNC_REDIS_PREFIX=ltvsync: (the default, which the harness replaces by a
longer unique prefix; the Redis is the stack's own) besides the addresses
and the HTTP port.

N integrations are written straight to ltvsync.integrations, each the
document `ltvctl integration add` writes (lt_integration_to_json: 5 streams,
import_from BENCH_DAYS (30) days before today in America/New_York,
sync_interval 15m, base_url an unused loopback URL, password_ref a file in
the stack's tmp dir). Each plans 5 x BENCH_DAYS backfill jobs and 5 x 3 live
jobs (the chargeback lookback first runs 7 days later).

Job topic size: the 10,000 x 150 backfill jobs stay in ltvsync.jobs.backfill
(no fetcher takes them; 150 outstanding is far below MAX_OUTSTANDING_JOBS
2000, so the cap never holds a job back). A plan's jobs leave in small zstd
batches (linger.ms 5), measured on partition 0: 79 B a job in batches of ~6
with 12 partitions, 165 B in batches of ~2 with 48. At 10,000 integrations
that is ~9.9 MB a partition with the default 12 (the dev broker keeps 5 MiB,
then evicts), ~5.2 MB with 48, ~3.2 MB with 96 (205 B a job). The dev broker therefore
runs BENCH_PARTITIONS (96) partitions per topic (nothing reads the jobs
here; the partition count does not change what the scheduler does per
integration); the script prints partition 0's bytes, the broker's eviction
status and the jobs found in both topics.

Printed per N:
- first pass: seconds from the last integration acknowledged by Kafka until
  ltvsync_scheduler_jobs_emitted_total reached N x jobs per integration (the
  scheduler runs, and starts passes, while the integrations are written);
  scheduler, Redis and dev broker CPU and Redis commands per integration;
  what the scheduler's main thread was doing (/proc/PID/task/PID/syscall at
  100 Hz: waiting for Kafka's acks, for Redis, on CPU);
- an idle baseline (leader, no integration, 10 s), subtracted from the CPU
  figures below;
- steady state over BENCH_WINDOW_S (60) once a whole tick ran after the first
  pass (nothing is due: no live window before 15m, no new backfill day):
  ticks (integrations planned or skipped by passes, from the scheduler's
  metrics, / N), how many a tick planned (read Redis) rather than skipped,
  scheduler CPU per tick
  (/proc/PID/stat utime+stime), a tick's wall time (the share of the window
  with HMGET calls going on, sampled at 10 Hz, over the ticks: 0 when every
  integration is skipped), Redis
  commands per tick, total and per command (INFO commandstats; Redis counts
  commands run inside Lua scripts too, e.g. the lease script's GET and
  PEXPIRE), Redis CPU per tick (INFO cpu);
- Redis used_memory and keys (DBSIZE) per integration (after the first pass
  minus before the integrations, divided by N), the keys of one integration
  with their MEMORY USAGE, and the scheduler's peak RSS (VmHWM).
Sanity checks only (jobs emitted and found in Kafka, ltvctl reads the same
document back); not a timed test."""
import datetime
import json
import os
import re
import sys
import time
from zoneinfo import ZoneInfo

import ltharness as h
from procstat import cmdstats, cpu_s, redis_cpu, status_kb  # noqa: E402

TZ = "America/New_York"
STREAMS = ["transactions", "orders", "customers", "purchases", "campaigns"]
LIVE_DAYS = 3            # LIVE_LOOKBACK_DAYS default
PREFIX = "ltvsync:"      # REDIS_PREFIX default
# The bench's own commands, left out of the counts.
OWN = {"info", "dbsize", "ping", "client", "hello", "command", "config", "memory"}
BASE_S = 10              # idle baseline before the integrations


def log(msg):
    sys.stderr.write("[scale] %s\n" % msg)
    sys.stderr.flush()


def cmd_delta(a, b):
    d = {}
    for name, (calls, _) in b.items():
        n = calls - a.get(name, (0, 0))[0]
        if n and name.split("|")[0] not in OWN:
            d[name] = n
    return d


def metric(proc, name):
    status, body = proc.http("/metrics")
    if status != 200:
        return None
    m = re.search(rb"^%s(?:\{[^}]*\})? (\S+)$" % re.escape(name.encode()), body, re.M)
    return float(m.group(1)) if m else None


def high_watermarks(st, topic):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": st.broker.bootstrap, "group.id": h.unique_name("scale")})
    try:
        md = c.list_topics(topic, timeout=10)
        return sum(c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                   for p in md.topics[topic].partitions)
    finally:
        c.close()


def extra_env():
    """BENCH_SCHEDULER_ENV="K=V K2=V2": settings on top of the defaults, for
    comparisons (printed; empty by default)."""
    return dict(kv.split("=", 1) for kv in os.environ.get("BENCH_SCHEDULER_ENV", "").split())


def partition_bytes(st, topic, partition):
    """(records, bytes of record batches) in one partition: read from offset
    0 with librdkafka's protocol debug log, each FetchResponse's size minus
    that of an empty one (the dev broker has no other way to tell)."""
    import logging
    from confluent_kafka import Consumer, TopicPartition
    sizes = []

    class Grab(logging.Handler):
        def emit(self, rec):
            m = re.search(r"Received FetchResponse \(v\d+, (\d+) bytes", rec.getMessage())
            if m:
                sizes.append(int(m.group(1)))
    lg = logging.getLogger(h.unique_name("fetchsize"))
    lg.propagate = False
    lg.setLevel(logging.DEBUG)
    lg.addHandler(Grab())
    c = Consumer({"bootstrap.servers": st.broker.bootstrap, "group.id": h.unique_name("scale"),
                  "enable.auto.commit": False, "debug": "protocol", "logger": lg})
    try:
        tp = TopicPartition(topic, partition, 0)
        hi = c.get_watermark_offsets(tp, timeout=10)[1]
        c.assign([tp])
        pos, deadline = 0, time.monotonic() + 300
        while pos < hi and time.monotonic() < deadline:
            m = c.poll(1.0)
            if m is not None and not m.error():
                pos = m.offset() + 1
        c.poll(1.5)   # empty responses past the end
    finally:
        c.close()
    if not sizes:
        return hi, 0
    empty = min(sizes)
    return hi, sum(x - empty for x in sizes if x > empty)


def documents(n, days, pwfile):
    """The documents `ltvctl integration add` would write (key, JSON)."""
    today = datetime.datetime.now(ZoneInfo(TZ)).date()
    start = (today - datetime.timedelta(days=days)).isoformat()
    out = []
    for i in range(n):
        iid = "bench-%05d" % i
        doc = {"id": iid, "brand": "konnektive", "base_url": "http://127.0.0.1:9",
               "api_username": "api-%05d" % i, "password_ref": "file:" + pwfile,
               "account_name": "Bench merchant %d" % i, "account_username": "owner-%05d" % i,
               "timezone": TZ, "currency": "USD", "import_from": start,
               "sync_interval": "15m", "streams": STREAMS,
               "max_requests_per_second": 5, "max_in_flight": 4}
        out.append((iid, json.dumps(doc, separators=(",", ":"))))
    return out


def hmget_calls(r):
    return r.info("commandstats").get("cmdstat_hmget", {}).get("calls", 0)


def observe(r, pid, seconds):
    """Scheduler CPU, Redis CPU and commands over seconds, with the HMGET
    count sampled at 10 Hz (the baseline is sampled the same way, so the
    bench's own INFO load cancels out)."""
    cs, cpu, rcpu = cmdstats(r), cpu_s(pid), redis_cpu(r)
    t0 = time.monotonic()
    samples = []
    while time.monotonic() - t0 < seconds:
        samples.append((time.monotonic(), hmget_calls(r)))
        time.sleep(0.1)
    samples.append((time.monotonic(), hmget_calls(r)))
    el = time.monotonic() - t0
    return {"el": el, "cpu": cpu_s(pid) - cpu, "rcpu": redis_cpu(r) - rcpu,
            "cmds": cmd_delta(cs, cmdstats(r)), "samples": samples}


class MainThreadSampler:
    """Samples what the scheduler's main thread is doing at ~100 Hz
    (/proc/PID/task/PID/syscall): on CPU, in futex (rd_kafka_poll waiting
    for delivery reports in settle), in read (hiredis waiting for Redis),
    other."""

    NAMES = {"202": "futex (Kafka acks)", "0": "read (Redis replies)",
             "running": "on CPU", "7": "poll", "232": "epoll_wait"}

    def __init__(self, pid):
        import threading
        self.path = "/proc/%d/task/%d/syscall" % (pid, pid)
        self.counts = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            try:
                with open(self.path) as f:
                    nr = f.read().split()[0]
            except (OSError, IndexError):
                nr = "?"
            name = self.NAMES.get(nr, "other")
            self.counts[name] = self.counts.get(name, 0) + 1
            time.sleep(0.01)

    def finish(self):
        self.stop.set()
        self.thread.join()
        total = float(sum(self.counts.values())) or 1.0
        return {k: v / total for k, v in self.counts.items()}


def busy_segments(samples):
    """(start, end) of the runs where the HMGET count rose between samples
    (ticks running back to back make one run)."""
    segs, cur = [], None
    for (t0, c0), (t1, c1) in zip(samples, samples[1:]):
        if c1 > c0:
            cur = [t0, t1] if cur is None else [cur[0], t1]
        elif cur is not None:
            segs.append(tuple(cur))
            cur = None
    if cur is not None:
        segs.append(tuple(cur))
    return segs


def run(n, days, window, partitions, pass_timeout):
    per = len(STREAMS) * (days + LIVE_DAYS)
    expected = n * per
    res = {"n": n}
    with h.Stack("scale-bench") as st:
        rp = st.start_redis()
        st.start_devbroker(partitions=partitions)
        r = rp.client()
        pw = st.path("pw")
        with open(pw, "w") as f:
            f.write("bench-pw")
        env = {"LTVSYNC_REDIS_PREFIX": PREFIX,
               "LTVSYNC_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "info")}
        env.update(extra_env())
        sch = st.start_service("ltvsync-scheduler", env)
        st.wait_ready(sch)
        h.wait_until(lambda: metric(sch, "ltvsync_scheduler_leader") == 1, 30,
                     "the scheduler to lead")
        pid, bpid = sch.pid, st.broker.pid
        # Idle baseline (leader, no integration), sampled as the window is.
        res["base"] = observe(r, pid, BASE_S)
        docs = documents(n, days, pw)
        mem0, keys0 = r.info("memory")["used_memory"], r.dbsize()
        cs0, cpu0, rcpu0, bcpu0 = cmdstats(r), cpu_s(pid), redis_cpu(r), cpu_s(bpid)
        brss0 = status_kb(bpid, "VmRSS")

        sampler = MainThreadSampler(pid)
        t_w0 = time.monotonic()
        st.produce("ltvsync.integrations", docs, timeout=120)
        t_w1 = time.monotonic()
        res["write_s"] = t_w1 - t_w0
        log("N=%d: %d integrations written in %.2f s; waiting for %d jobs"
            % (n, n, t_w1 - t_w0, expected))

        last_note, emitted = t_w1, 0
        while True:
            sch.check_alive()
            emitted = metric(sch, "ltvsync_scheduler_jobs_emitted_total") or 0
            now = time.monotonic()
            if emitted >= expected:
                break
            if now - t_w1 > pass_timeout:
                break
            if now - last_note >= 30:
                log("  %.0f s: %d of %d jobs emitted (%.0f integrations)"
                    % (now - t_w1, emitted, expected, emitted / per))
                last_note = now
            time.sleep(0.2)
        t_done = time.monotonic()
        res["main_thread"] = sampler.finish()
        cs1, cpu1, rcpu1, bcpu1 = cmdstats(r), cpu_s(pid), redis_cpu(r), cpu_s(bpid)
        res.update(first_pass_s=t_done - t_w1, emitted=int(emitted), expected=expected,
                   complete=emitted >= expected, pass_wall=t_done - t_w0,
                   pass_cpu=cpu1 - cpu0, pass_rcpu=rcpu1 - rcpu0, pass_bcpu=bcpu1 - bcpu0,
                   pass_cmds=sum(cmd_delta(cs0, cs1).values()),
                   pass_cmd_detail=cmd_delta(cs0, cs1))
        if not res["complete"]:
            res.update(hwm_kb=status_kb(pid, "VmHWM"), rss_kb=status_kb(pid, "VmRSS"))
            log("N=%d: first pass incomplete after %.0f s" % (n, t_done - t_w1))
            return res

        # One whole tick after the first pass before the window: the pass
        # that emitted the last jobs still writes its cursors.
        def looked_at():  # integrations planned or skipped by passes so far
            return sum(metric(sch, "ltvsync_scheduler_integrations_%s_total" % k) or 0
                       for k in ("planned", "skipped"))
        seen0 = looked_at()
        h.wait_until(lambda: looked_at() >= seen0 + n, 600, "a steady tick", interval=0.2)
        res["mem_after"], res["keys_after"] = r.info("memory")["used_memory"], r.dbsize()
        res["broker_rss_delta"] = (status_kb(bpid, "VmRSS") - brss0) * 1024
        res["mem_per"] = (res["mem_after"] - mem0) / n
        res["keys_per"] = (res["keys_after"] - keys0) / n

        log("N=%d: first pass done in %.1f s; steady window %d s" % (n, t_done - t_w1, window))
        seen1 = looked_at()
        planned1 = metric(sch, "ltvsync_scheduler_integrations_planned_total") or 0
        o = observe(r, pid, window)
        ticks = (looked_at() - seen1) / n
        res["planned_per_tick"] = (((metric(sch, "ltvsync_scheduler_integrations_planned_total")
                                     or 0) - planned1) / ticks if ticks else 0)
        busy = sum(b - a for a, b in busy_segments(o["samples"]))
        res.update(window_s=o["el"], ticks=ticks, cpu=o["cpu"], rcpu=o["rcpu"], cmds=o["cmds"],
                   busy_frac=busy / o["el"],
                   emitted_after=int(metric(sch, "ltvsync_scheduler_jobs_emitted_total") or 0))
        res.update(hwm_kb=status_kb(pid, "VmHWM"), rss_kb=status_kb(pid, "VmRSS"))

        # One integration's keys.
        keys = []
        for k in sorted(r.scan_iter(match="%si:bench-00000:*" % PREFIX, count=1000)):
            t = r.type(k).decode()
            fields = r.hlen(k) if t == "hash" else None
            keys.append((k.decode(), t, fields, r.memory_usage(k)))
        res["keys"] = keys

        # Sanity: jobs in Kafka, the broker kept them, ltvctl reads the same
        # document back.
        res["kafka_backfill"] = high_watermarks(st, "ltvsync.jobs.backfill")
        res["kafka_live"] = high_watermarks(st, "ltvsync.jobs.live")
        res["p0_jobs"], res["p0_bytes"] = partition_bytes(st, "ltvsync.jobs.backfill", 0)
        q = st.run("ltvctl", ["integration", "show", docs[-1][0]],
                   env={"LTVSYNC_REDIS_PREFIX": PREFIX}, timeout=120)
        res["doc_same"] = q.returncode == 0 and json.loads(q.stdout) == json.loads(docs[-1][1])
        time.sleep(1.5)   # the broker's status file is rewritten every second
        res["broker"] = st.broker.status()
    return res


def report(res, days, partitions):
    n = res["n"]
    print()
    print("== N = %d integrations (%d days x 5 streams backfill + 3 live days each; "
          "dev broker %d partitions) ==" % (n, days, partitions))
    print("written to ltvsync.integrations in %.2f s" % res["write_s"])
    if not res["complete"]:
        print("first pass INCOMPLETE: %d of %d jobs (%.0f of %d integrations) after %.0f s "
              "(%.1f integrations/s); scheduler CPU %.1f s, peak RSS %.1f MiB"
              % (res["emitted"], res["expected"], res["emitted"] / (res["expected"] / n), n,
                 res["first_pass_s"], res["emitted"] / (res["expected"] / n) / res["first_pass_s"],
                 res["pass_cpu"], res["hwm_kb"] / 1024.0))
        return
    print("first pass: %.1f s after the last write (%.0f jobs/s, %.1f ms/integration from the "
          "first write); CPU from the first write: scheduler %.2f s (%.0f us/integration), Redis "
          "%.2f s, dev broker %.2f s; Redis commands %d (%.1f/integration)"
          % (res["first_pass_s"], res["expected"] / res["first_pass_s"],
             res["pass_wall"] / n * 1e3, res["pass_cpu"], res["pass_cpu"] / n * 1e6,
             res["pass_rcpu"], res["pass_bcpu"], res["pass_cmds"], res["pass_cmds"] / n))
    print("first pass, the scheduler's main thread (sampled at 100 Hz): %s" % ", ".join(
        "%s %.0f%%" % (k, 100 * v) for k, v in sorted(res["main_thread"].items(),
                                                     key=lambda kv: -kv[1])))
    t = res["ticks"]
    print("steady state, %.0f s window: %.2f ticks (SCHEDULER_TICK 5s), scheduler busy %.0f%% "
          "of the window; jobs emitted in the window: %d; integrations planned a tick: %.1f "
          "of %d (the rest skipped: nothing due)"
          % (res["window_s"], t, 100 * res["busy_frac"], res["emitted_after"] - res["expected"],
             res["planned_per_tick"], n))
    base = res["base"]
    b_cpu, b_rcpu = base["cpu"] / base["el"], base["rcpu"] / base["el"]
    print("idle baseline (leader, no integration, %.0f s): scheduler CPU %.1f ms/s, Redis CPU "
          "%.1f ms/s (the bench's 10 Hz INFO included), %d scheduler commands"
          % (base["el"], b_cpu * 1e3, b_rcpu * 1e3, sum(base["cmds"].values())))
    rows = []
    if t > 0:
        total = sum(res["cmds"].values())
        cpu = (res["cpu"] - b_cpu * res["window_s"]) / t
        rcpu = (res["rcpu"] - b_rcpu * res["window_s"]) / t
        rows += [("scheduler CPU per tick, minus idle", "%.3f s" % cpu, "%.1f us" % (cpu / n * 1e6)),
                 ("  (raw, idle included)", "%.3f s" % (res["cpu"] / t),
                  "%.1f us" % (res["cpu"] / t / n * 1e6)),
                 ("tick wall time (busy share / ticks)",
                  "%.2f s" % (res["busy_frac"] * res["window_s"] / t), "-"),
                 ("Redis CPU per tick, minus idle", "%.3f s" % rcpu, "%.1f us" % (rcpu / n * 1e6)),
                 ("Redis commands per tick", "%.0f" % (total / t), "%.2f" % (total / t / n))]
        for name, calls in sorted(res["cmds"].items(), key=lambda kv: -kv[1]):
            rows.append(("  " + name.upper(), "%.0f" % (calls / t), "%.2f" % (calls / t / n)))
    rows += [("Redis used_memory", "%.1f MiB" % (res["mem_after"] / 1048576.0),
              "%.0f B" % res["mem_per"]),
             ("Redis keys (DBSIZE)", "%d" % res["keys_after"], "%.2f" % res["keys_per"]),
             ("scheduler peak RSS (VmHWM)", "%.1f MiB" % (res["hwm_kb"] / 1024.0),
              "%.0f B" % (res["hwm_kb"] * 1024.0 / n))]
    w = max(len(r[0]) for r in rows)
    print("%-*s  %22s  %16s" % (w, "", "total", "per integration"))
    for a, b, c in rows:
        print("%-*s  %22s  %16s" % (w, a, b, c))
    print("first-pass commands by name: %s" % ", ".join(
        "%s %d" % (k.upper(), v) for k, v in sorted(res["pass_cmd_detail"].items(),
                                                    key=lambda kv: -kv[1])))
    print("keys of one integration:")
    for k, typ, fields, mem in res["keys"]:
        print("  %-44s %-6s %5s fields %7s B" % (k, typ, fields if fields is not None else "-",
                                                 mem))
    b = res["broker"]
    print("dev broker: partition 0 of ltvsync.jobs.backfill holds %d jobs in %.2f MiB of record "
          "batches (%.0f B a job; it evicts past 5 MiB a partition); the broker's RSS grew "
          "%.1f MiB" % (res["p0_jobs"], res["p0_bytes"] / 1048576.0,
                        res["p0_bytes"] / max(res["p0_jobs"], 1),
                        res["broker_rss_delta"] / 1048576.0))
    print("sanity: jobs emitted %d of %d; in Kafka backfill %d, live %d; dev broker evicted: %s "
          "(%s); ltvctl reads the same document: %s"
          % (res["emitted"], res["expected"], res["kafka_backfill"], res["kafka_live"],
             b.get("evicted"), b.get("evictions"), res["doc_same"]))


def main():
    sizes = [int(x) for x in os.environ.get("BENCH_SIZES", "1000 10000").split()]
    days = int(os.environ.get("BENCH_DAYS", 30))
    window = float(os.environ.get("BENCH_WINDOW_S", 60))
    partitions = int(os.environ.get("BENCH_PARTITIONS", 96))
    pass_timeout = float(os.environ.get("BENCH_PASS_TIMEOUT_S", 900))
    print("scheduler defaults (SCHEDULER_TICK 5s, LEADER_LEASE 10s, MAX_OUTSTANDING_JOBS 2000, "
          "LIVE_LOOKBACK_DAYS 3), REDIS_PREFIX ltvsync:, no fetcher; sync_interval 15m, "
          "import_from %d days ago, %s; %d cores" % (days, TZ, os.cpu_count()))
    if extra_env():
        print("NOT the defaults: the scheduler also runs with %s" % " ".join(
            "%s=%s" % kv for kv in sorted(extra_env().items())))
    for n in sizes:
        res = run(n, days, window, partitions, pass_timeout)
        report(res, days, partitions)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
