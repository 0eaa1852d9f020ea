"""Benchmark of ltvsync-sink (run by bench/sink.sh).

In one devbroker: N canonical events in a topic; then, BENCH_REPEAT (5)
times in turn, in the same stack:
  - kcat copies the topic to another topic (consume | produce, zstd as the
    sink's downstream producer), both kcat processes on core 0, the sink's
    core: the ratio is taken against this copy, as bench/normalizer.sh does;
  - the same copy unpinned (two processes free to use both cores), printed
    beside it;
  - the sink, every thread on core 0, writes the topic downstream with
    dedupe on, under a fresh Redis key prefix and downstream topic.
Redis and the devbroker run on the other cores (when there are). Then the
sink once more under a new consumer group over the last run's state: every
event is found unchanged (the dedupe read path alone). Prints events/s of
each, medians and spreads, Redis bytes per event of the dedupe state
(INFO used_memory delta / N) and the sink's peak RSS (VmHWM)."""
import os
import statistics
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "tests", "integration"))
from ltharness import Stack, bin_path, http_get, unique_name, wait_until  # noqa: E402
from test_sink import encode, key_of, make_event  # noqa: E402
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from procstat import cores_except, pin_elsewhere, status_kb  # noqa: E402

N = int(os.environ.get("BENCH_EVENTS", "200000"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "5"))
CORE = "0"
PARTITIONS = 16


def produce(st, topic, n, shift_days=0):
    from confluent_kafka import Producer
    pr = Producer({"bootstrap.servers": st.broker.bootstrap, "linger.ms": 20,
                   "compression.type": "zstd", "batch.num.messages": 10000,
                   "queue.buffering.max.messages": 500000})
    for i in range(n):
        ev = make_event(i, "bench", shift_days=shift_days)
        ev["customer_id"] = "c%d" % (i % 5000)
        while True:
            try:
                pr.produce(topic, key=key_of(ev), value=encode(ev))
                break
            except BufferError:
                pr.poll(0.05)
    assert pr.flush(120) == 0


def metric(port, name):
    status, body = http_get("http://127.0.0.1:%d/metrics" % port)
    return sum(int(float(l.rsplit(" ", 1)[1])) for l in body.decode().splitlines()
               if l.startswith(name))


def used_memory(st):
    return int(st.redis.client().info("memory")["used_memory"])


def run_sink(st, env, topic, n, counter):
    """Starts the sink on CORE; returns (events/s, peak RSS kB, seconds)."""
    e = st.service_env(env)
    port = int(e["LTVSYNC_HTTP_PORT"])
    p = st.start("ltvsync-sink", ["taskset", "-c", CORE, bin_path("ltvsync-sink")], env=e)
    t0 = [None]

    def progress():
        p.check_alive()
        got = metric(port, "ltvsync_sink_events_in_total")
        if got and t0[0] is None:
            t0[0] = time.monotonic()
        return metric(port, counter) >= n
    wait_until(progress, 600, "sink to finish %d events" % n, interval=0.05)
    secs = time.monotonic() - t0[0]
    hwm = status_kb(p.pid, "VmHWM")
    assert st.stop(p, signal.SIGTERM, 30) == 0
    return n / secs, hwm, secs


def kcat_copy(st, src, dst, core=None):
    """Copies src to dst with kcat; on `core` when given. Returns seconds,
    from the start of both processes to the end of both."""
    pre = ["taskset", "-c", core] if core else []
    t = time.monotonic()
    cons = subprocess.Popen(pre + ["kcat", "-C", "-b", st.broker.bootstrap, "-t", src, "-o",
                                   "beginning", "-e", "-q", "-f", "%k\t%s\n"],
                            stdout=subprocess.PIPE)
    prod = subprocess.Popen(pre + ["kcat", "-P", "-b", st.broker.bootstrap, "-t", dst, "-K",
                                   "\t", "-z", "zstd"], stdin=cons.stdout)
    cons.stdout.close()
    assert prod.wait() == 0 and cons.wait() == 0
    secs = time.monotonic() - t
    copied = len(st.consume_all(dst, timeout=120))
    assert copied == N, "kcat copied %d of %d" % (copied, N)
    return secs


def spread(xs):
    return "%.0f (%.0f-%.0f)" % (statistics.median(xs), min(xs), max(xs))


def main():
    with Stack("sinkbench") as st:
        redis = st.start_redis()
        broker = st.start_devbroker(partitions=PARTITIONS)
        pin_elsewhere(redis.pid, CORE)
        pin_elsewhere(broker.pid, CORE)
        events, dlq = unique_name("events"), unique_name("dlq")
        t = time.monotonic()
        produce(st, events, N)
        print("produced %d events in %.1f s; sink and pinned kcat on core %s, Redis and the "
              "devbroker on cores %s" % (N, time.monotonic() - t, CORE, cores_except(CORE)))

        pinned, free, sink, ratios, per_event, rss = [], [], [], [], [], []
        env = {}
        for run in range(1, REPEAT + 1):
            pinned.append(N / kcat_copy(st, events, unique_name("copy"), CORE))
            free.append(N / kcat_copy(st, events, unique_name("copyfree")))
            down = unique_name("down")
            env = {"LTVSYNC_TOPIC_EVENTS": events, "LTVSYNC_TOPIC_DOWNSTREAM": down,
                   "LTVSYNC_TOPIC_DLQ": dlq, "LTVSYNC_GROUP_ID": unique_name("sink"),
                   "LTVSYNC_REDIS_PREFIX": unique_name("b") + ":",
                   "LTVSYNC_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "warn")}
            mem0 = used_memory(st)
            rate, hwm, secs = run_sink(st, env, events, N, "ltvsync_sink_events_written_total")
            per_event.append((used_memory(st) - mem0) / N)
            sink.append(rate)
            rss.append(hwm)
            ratios.append(rate / pinned[-1])
            n_down = len(st.consume_all(down, timeout=120))
            assert n_down == N, "downstream has %d, want %d" % (n_down, N)
            print("run %d: kcat copy on core %s %7.0f events/s, unpinned %7.0f; sink, dedupe on, "
                  "core %s: %7.0f events/s (%.2f s), ratio %.2f (%.2f of the unpinned copy); "
                  "dedupe state %.1f bytes/event; peak RSS %d kB"
                  % (run, CORE, pinned[-1], free[-1], CORE, rate, secs, ratios[-1],
                     rate / free[-1], per_event[-1], hwm))
        r = st.redis.client()
        keys = r.keys(env["LTVSYNC_REDIS_PREFIX"] + "dd2:*")
        enc = r.object("encoding", keys[0]).decode() if keys else "-"
        print("medians of %d (min-max): kcat copy on core %s %s events/s, unpinned %s; "
              "sink %s events/s; ratio %.2f (%.2f-%.2f), %.2f of the unpinned copy; "
              "dedupe state %.1f bytes/event (%d keys, %s); sink peak RSS %s kB"
              % (REPEAT, CORE, spread(pinned), spread(free), spread(sink),
                 statistics.median(ratios), min(ratios), max(ratios),
                 statistics.median(sink) / statistics.median(free),
                 statistics.median(per_event), len(keys), enc, spread(rss)))

        env["LTVSYNC_GROUP_ID"] = unique_name("sink-replay")
        rate2, hwm2, secs2 = run_sink(st, env, events, N, "ltvsync_sink_events_unchanged_total")
        print("sink, replay (all unchanged): %8.0f events/s (%.2f s), peak RSS %d kB"
              % (rate2, secs2, hwm2))
        n_down = len(st.consume_all(env["LTVSYNC_TOPIC_DOWNSTREAM"], timeout=120))
        assert n_down == N, "downstream has %d after the replay, want %d" % (n_down, N)
        assert st.broker.status()["evicted"] is False, "devbroker evicted records"
        print("downstream: exactly %d events in each run's topic, none added by the replay; "
              "no devbroker eviction" % N)


if __name__ == "__main__":
    main()
