"""Normalizer throughput beside a plain kcat copy of the same raw topic.

Fills ltvsync.raw on a devbroker with ROWS envelopes (crm-sim rows of every
stream, replicated with fresh ids), then in the same run:
  1. kcat consume | kcat produce of ltvsync.raw into another topic, pinned
     to one core (the copy's rate: the ceiling of any consume+produce);
  2. ltvsync-normalizer pinned to the same core, from the beginning.
Prints rows/s of both, their ratio and the normalizer's peak RSS.
Env: LTVSYNC_BIN_DIR (a Release build), BENCH_ROWS (default 200000),
BENCH_CORE (default 1; redis-server and the devbroker are pinned to the other
cores, so neither side of the comparison shares its core with them), BENCH_REPEAT (default 3: copy and normalizer run in
turn that many times, medians reported), BENCH_COPY_CODEC (the copy's output
codec, default lz4 as the normalizer), BENCH_NORM_ENV / BENCH_NORM_ENV_ALT (NAME=VALUE for the
normalizer, several separated by spaces; ALT on every second run, an A/B in one stack), BENCH_NORM_BIN_ALT (another
build's ltvsync-normalizer for every second run: two builds A/B in one stack), BENCH_DUMP (a path: the
events, key TAB value, sorted, to compare two builds byte for byte), BENCH_PERF (a path: `perf record -g` of the
normalizer while timed, written there), BENCH_RSS_TRACE (print the normalizer's RSS and rows done
while timed).
With --rows-only PATH it only writes the raw values, one per line, to PATH
(the input of bench/event_cpu.sh) and exits."""
import json
import os
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oracle  # noqa: E402
from procstat import pin_elsewhere  # noqa: E402
from ltharness import Stack, wait_until  # noqa: E402

ROWS = int(os.environ.get("BENCH_ROWS", "200000"))
CORE = os.environ.get("BENCH_CORE", "1")
INTEG = oracle.Integration("bench", "konnektive", "America/New_York", "USD")
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
# the copy writes with the codec the normalizer's events producer uses
COPY_CODEC = os.environ.get("BENCH_COPY_CODEC", "lz4")
COPY_TOPIC = "ltv.events.v1"  # exists on the devbroker and is unused here


def make_rows(dump):
    """ROWS (key, value) pairs; each round shifts every id so rows are unique
    (transactions dominate, as in a real account)."""
    base = oracle.envelopes_from_dump(dump, INTEG, "2025-03-24T12:00:00.000Z")
    out, rnd = [], 0
    while len(out) < ROWS:
        for key, env in base:
            rec = dict(env["record"])
            for k in ("transactionId", "customerId", "purchaseId"):
                if isinstance(rec.get(k), int):
                    rec[k] = rec[k] + rnd * 10_000_000
            stream = env["stream"]
            rid = rec.get(oracle.RECORD_ID[stream])
            e = dict(env, record=rec)
            out.append(("%s/%s/%s-%d" % (INTEG.id, stream, rid, rnd),
                        json.dumps(e, separators=(",", ":"), ensure_ascii=False)))
            if len(out) >= ROWS:
                break
        rnd += 1
    return out


def metric(proc, name):
    status, body = proc.http("/metrics")
    m = re.search(r"^%s (\d+)$" % re.escape(name), body.decode(), re.M) if status == 200 else None
    return int(m.group(1)) if m else 0


def cpu_seconds(pid):
    """user+system CPU of every thread of pid so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def produce_compressed(bootstrap, rows):
    """The devbroker keeps ~5 MiB per partition: compress like the fetcher."""
    from confluent_kafka import Producer
    pr = Producer({"bootstrap.servers": bootstrap, "compression.codec": "zstd",
                   "linger.ms": 50, "batch.num.messages": 10000,
                   "queue.buffering.max.messages": 500000})
    for k, v in rows:
        while True:
            try:
                pr.produce("ltvsync.raw", key=k, value=v)
                break
            except BufferError:
                pr.poll(0.05)
    assert pr.flush(120) == 0


def kcat_copy(bootstrap):
    common = ["-b", bootstrap, "-X", "compression.codec=" + COPY_CODEC]
    t0 = time.monotonic()
    cons = subprocess.Popen(["taskset", "-c", CORE, "kcat", "-C", "-b", bootstrap, "-t", "ltvsync.raw",
                             "-o", "beginning", "-e", "-q", "-K", "\t", "-f", "%k\t%s\n"],
                            stdout=subprocess.PIPE)
    prod = subprocess.Popen(["taskset", "-c", CORE, "kcat", "-P", "-t", COPY_TOPIC, "-K", "\t"] + common,
                            stdin=cons.stdout)
    cons.stdout.close()
    prod.wait()
    cons.wait()
    return time.monotonic() - t0


def run_normalizer(st, run, infra):
    env = {"LTVSYNC_GROUP_ID": "bench-norm-%d" % run}
    # NAME=VALUE for experiments; BENCH_NORM_ENV_ALT instead on odd runs (A/B in one stack)
    spec = os.environ.get("BENCH_NORM_ENV_ALT") if run % 2 else None
    spec = spec or os.environ.get("BENCH_NORM_ENV")
    for item in (spec or "").split():  # NAME=VALUE, several separated by spaces
        k, v = item.split("=", 1)
        env[k] = v
    alt = os.environ.get("BENCH_NORM_BIN_ALT") if run % 2 else None
    p = st.start_service(os.path.abspath(alt) if alt else "ltvsync-normalizer", env=env)
    # every thread: librdkafka's may exist already
    p_set = subprocess.run(["taskset", "-apc", CORE, str(p.pid)], capture_output=True)
    assert p_set.returncode == 0, p_set.stderr
    # the clock starts at the first processed row (group join excluded) ...
    wait_until(lambda: p.check_alive() or metric(p, "ltvsync_normalizer_rows_total") > 0, 60,
               "first rows", interval=0.01)
    perf = None
    if os.environ.get("BENCH_PERF"):
        perf = subprocess.Popen(["perf", "record", "--call-graph", os.environ.get("BENCH_PERF_CG", "fp"),
                                 "-F", "999", "-o", os.environ["BENCH_PERF"],
                                 "-p", str(p.pid)], stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    cpu0 = cpu_seconds(p.pid)
    infra0 = sum(cpu_seconds(q.pid) for q in infra)
    first = metric(p, "ltvsync_normalizer_rows_total")
    trace = []  # BENCH_RSS_TRACE: (s, VmRSS MiB, rows) every 20 ms or so

    def done():
        rows = metric(p, "ltvsync_normalizer_rows_total")
        if os.environ.get("BENCH_RSS_TRACE"):
            with open("/proc/%d/status" % p.pid) as f:
                rss = int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))
            trace.append((time.monotonic() - t0, rss / 1024, rows))
        return p.check_alive() or rows >= ROWS
    wait_until(done, 240, "all rows", interval=0.01)
    if trace:
        print("rss trace (s MiB rows): " + " ".join("%.2f:%.0f:%d" % x for x in trace[::5]))
    dt = time.monotonic() - t0
    cpu = cpu_seconds(p.pid) - cpu0
    infra_cpu = sum(cpu_seconds(q.pid) for q in infra) - infra0
    if perf:
        perf.send_signal(2)
        perf.wait(30)
    with open("/proc/%d/status" % p.pid) as f:
        hwm = int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1))
    events = sum(int(x) for x in re.findall(r'^ltvsync_normalizer_events_total\{[^}]*\} (\d+)$',
                                            p.http("/metrics")[1].decode(), re.M))
    st.stop(p)
    return (ROWS - first) / dt, dt, hwm, events, cpu, infra_cpu


def dump_events(bootstrap, path):
    out = subprocess.run(["kcat", "-C", "-b", bootstrap, "-t", "ltvsync.events", "-o", "beginning",
                          "-e", "-q", "-f", "%k\t%s\n"], capture_output=True, check=True).stdout
    with open(path, "wb") as f:
        f.write(b"\n".join(sorted(out.splitlines())) + b"\n")


def main():
    others = os.sched_getaffinity(0) - {int(CORE)}
    if others:
        os.sched_setaffinity(0, others)  # this process's polling stays off CORE too
    rows_only = sys.argv[2] if len(sys.argv) > 2 and sys.argv[1] == "--rows-only" else None
    with Stack("bench-norm") as st:
        sim = st.start_crmsim(customers=400, start="2024-10-25", days=150, seed=11,
                              dump=st.path("dump.json"))
        dump = wait_until(lambda: json.load(open(st.path("dump.json"))), 30, "dump")
        sim.check_alive()
        if rows_only:  # the raw values, one per line, for ltvsync-bench-event
            with open(rows_only, "w") as f:
                f.writelines(v + "\n" for _, v in make_rows(dump))
            return
        redis = st.start_redis()
        broker = st.start_devbroker(partitions=32)
        pin_elsewhere(redis.pid, CORE)
        pin_elsewhere(broker.pid, CORE)
        doc = {"id": INTEG.id, "brand": INTEG.brand, "api_username": "u",
               "password_ref": "env:X", "account_name": "b", "account_username": "b",
               "timezone": INTEG.tz, "currency": "USD", "import_from": "2024-10-25"}
        st.produce("ltvsync.integrations", [(INTEG.id, json.dumps(doc))])
        rows = make_rows(dump)
        mb = sum(len(v) for _, v in rows) / 1e6
        t = time.monotonic()
        produce_compressed(broker.bootstrap, rows)
        print("raw: %d rows, %.1f MB of JSON, produced in %.1fs" % (len(rows), mb, time.monotonic() - t))
        copies, norms = [], []
        for run in range(REPEAT):
            copy_s = kcat_copy(broker.bootstrap)
            copies.append(ROWS / copy_s)
            print("run %d: kcat copy (consume | produce %s, core %s): %.2fs, %.0f rows/s"
                  % (run + 1, COPY_CODEC, CORE, copy_s, ROWS / copy_s))
            rate, dt, hwm, events, cpu, infra_cpu = run_normalizer(st, run, (broker, redis))
            norms.append(rate)
            print("run %d: normalizer%s (core %s): %.2fs, %.0f rows/s, %d events, peak RSS %.1f MiB, "
                  "CPU %.2fs (all threads; devbroker + redis %.2fs); ratio %.2f"
                  % (run + 1, " ALT" if run % 2 and os.environ.get("BENCH_NORM_BIN_ALT") else "",
                     CORE, dt, rate, events, hwm / 1024, cpu, infra_cpu,
                     rate * copy_s / ROWS))
            if run == 0 and os.environ.get("BENCH_DUMP"):
                dump_events(broker.bootstrap, os.environ["BENCH_DUMP"])
                cut = [e for e in broker.status().get("evictions", [])
                       if e["topic"] == "ltvsync.events"]
                assert not cut, "devbroker evicted events before the dump: %s" % cut[:3]
        mc, mn = statistics.median(copies), statistics.median(norms)
        print("median of %d runs: kcat copy %.0f rows/s, normalizer %.0f rows/s, ratio %.2f"
              % (REPEAT, mc, mn, mn / mc))
        status = broker.status()
        print("devbroker status: %s" % json.dumps(status)[:300])
        # Only the input must stay whole: the copy's topic is write-only, and
        # ltvsync.events is read once, for the dump, and checked then (many
        # repeats overflow the devbroker's 5 MiB per partition on both).
        lost = [e for e in status.get("evictions", []) if e["topic"] == "ltvsync.raw"]
        assert not lost, "devbroker evicted records: results invalid: %s" % lost[:3]


if __name__ == "__main__":
    main()
