"""Benchmark of ltvsync-sink (run by bench/sink.sh).

In one devbroker: N canonical events in a topic; then, in the same run,
  - kcat copies the topic to another topic (consume -> produce, zstd),
  - the sink (pinned to one core) writes it downstream with dedupe on,
  - the sink again, under a new consumer group, over the same topic: every
    event is found unchanged (the dedupe read path alone).
Prints events/s of each, Redis bytes per event of the dedupe state
(INFO memory used_memory delta / N), and the sink's peak RSS (VmHWM)."""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "tests", "integration"))
from ltharness import Stack, bin_path, http_get, unique_name, wait_until  # noqa: E402
from test_sink import encode, key_of, make_event  # noqa: E402

N = int(os.environ.get("BENCH_EVENTS", "200000"))
PARTITIONS = 16


def produce(st, topic, n):
    from confluent_kafka import Producer
    pr = Producer({"bootstrap.servers": st.broker.bootstrap, "linger.ms": 20,
                   "compression.type": "zstd", "batch.num.messages": 10000,
                   "queue.buffering.max.messages": 500000})
    for i in range(n):
        ev = make_event(i, "bench")
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
    """Starts the sink on core 0; returns (events/s, peak RSS kB)."""
    e = st.service_env(env)
    port = int(e["LTVSYNC_HTTP_PORT"])
    p = st.start("ltvsync-sink", ["taskset", "-c", "0", bin_path("ltvsync-sink")], env=e)
    t0 = [None]

    def progress():
        p.check_alive()
        got = metric(port, "ltvsync_sink_events_in_total")
        if got and t0[0] is None:
            t0[0] = time.monotonic()
        return metric(port, counter) >= n
    wait_until(progress, 600, "sink to finish %d events" % n, interval=0.05)
    secs = time.monotonic() - t0[0]
    with open("/proc/%d/status" % p.pid) as f:
        hwm = [l.split()[1] for l in f if l.startswith("VmHWM")][0]
    assert st.stop(p, signal.SIGTERM, 30) == 0
    return n / secs, int(hwm), secs


def kcat_copy(st, src, dst):
    t = time.monotonic()
    cons = subprocess.Popen(["kcat", "-C", "-b", st.broker.bootstrap, "-t", src, "-o",
                             "beginning", "-e", "-q", "-f", "%k\t%s\n"],
                            stdout=subprocess.PIPE)
    prod = subprocess.run(["kcat", "-P", "-b", st.broker.bootstrap, "-t", dst, "-K", "\t",
                           "-z", "zstd"], stdin=cons.stdout, check=True)
    cons.wait()
    return time.monotonic() - t


def main():
    with Stack("sinkbench") as st:
        st.start_redis()
        st.start_devbroker(partitions=PARTITIONS)
        events, down, copy, dlq = (unique_name(x) for x in ("events", "down", "copy", "dlq"))
        t = time.monotonic()
        produce(st, events, N)
        print("produced %d events in %.1f s" % (N, time.monotonic() - t))

        secs = kcat_copy(st, events, copy)
        copied = len(st.consume_all(copy, timeout=120))
        print("kcat copy:            %8.0f events/s (%d in %.2f s)" % (copied / secs, copied, secs))

        env = {"LTVSYNC_TOPIC_EVENTS": events, "LTVSYNC_TOPIC_DOWNSTREAM": down,
               "LTVSYNC_TOPIC_DLQ": dlq, "LTVSYNC_GROUP_ID": unique_name("sink"),
               "LTVSYNC_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "warn")}
        mem0 = used_memory(st)
        rate, hwm, secs = run_sink(st, env, events, N, "ltvsync_sink_events_written_total")
        mem1 = used_memory(st)
        r = st.redis.client()
        keys = r.keys(st.prefix + "dd2:*")
        enc = r.object("encoding", keys[0]).decode() if keys else "-"
        print("sink, dedupe on:      %8.0f events/s (%d in %.2f s, one core)" % (rate, N, secs))
        print("dedupe state:         %8.1f bytes/event in Redis (%d bytes, %d keys, %s)"
              % ((mem1 - mem0) / N, mem1 - mem0, len(keys), enc))
        print("sink peak RSS:        %8d kB" % hwm)

        env["LTVSYNC_GROUP_ID"] = unique_name("sink-replay")
        rate2, hwm2, secs2 = run_sink(st, env, events, N, "ltvsync_sink_events_unchanged_total")
        print("sink, replay (all unchanged): %8.0f events/s (%.2f s), peak RSS %d kB"
              % (rate2, secs2, hwm2))
        n_down = len(st.consume_all(down, timeout=120))
        assert n_down == N, "downstream has %d, want %d" % (n_down, N)
        assert st.broker.status()["evicted"] is False, "devbroker evicted records"
        print("downstream: exactly %d events after both runs; no devbroker eviction" % n_down)


if __name__ == "__main__":
    main()
