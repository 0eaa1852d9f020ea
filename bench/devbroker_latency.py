"""Latencies of the dev broker as ltvsync's clients meet them (run by
bench/devbroker_latency.sh), measured with confluent-kafka (the same
librdkafka 2.0.2) so they are the broker's, not ltvsync's code:

- produce: a page of N keyed messages (1 and 5) to ltvsync.raw, acks=all,
  idempotent, linger.ms 5, until every delivery report (p50/p90 of 50);
  before the devbroker set TCP_NODELAY, 5 messages took 48 ms, 1 took 5.5;
- consume: a message produced to an idle topic until a subscribed consumer
  has it, with fetch.wait.max.ms 500 (librdkafka's default) and 100
  (ltvsync's consumers), p50/p90 of 20;
- first send: 615 messages to ltvsync.jobs.backfill by a new producer idle
  for BENCH_IDLE_S (3) s, without and with asking for the topic's metadata
  first (what lt_producer_warm does), until every delivery report; 5
  trials each, as the cold wait depends on where librdkafka's once-a-second
  topic scan is (0 to about 1 s).
Not a timed test."""
import os
import time

import ltharness as h
from confluent_kafka import Consumer, Producer


IDLE_S = float(os.environ.get("BENCH_IDLE_S", 3))


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def producer(st, **extra):
    conf = {"bootstrap.servers": st.broker.bootstrap, "enable.idempotence": True,
            "acks": "all", "linger.ms": 5, "compression.type": "zstd"}
    conf.update(extra)
    return Producer(conf)


def produce_page(p, topic, n, tag):
    left = [n]

    def dr(err, msg):
        left[0] -= 1
    t = time.monotonic()
    for i in range(n):
        p.produce(topic, b"x" * 500, key=b"%s-%d-%f" % (tag, i, t), on_delivery=dr)
    while left[0] > 0:
        p.poll(0.001)
    return (time.monotonic() - t) * 1000


def consume_latency(st, p, wait_ms):
    topic = h.unique_name("lat")
    p.produce(topic, b"warm")
    p.flush(10)
    c = Consumer({"bootstrap.servers": st.broker.bootstrap, "group.id": topic,
                  "auto.offset.reset": "latest", "fetch.wait.max.ms": wait_ms})
    c.subscribe([topic])
    deadline = time.time() + 15
    while time.time() < deadline and not c.assignment():
        c.poll(0.1)
    time.sleep(1)
    lats = []
    for _ in range(20):
        time.sleep(0.137)
        t = time.monotonic()
        p.produce(topic, b"y")
        p.flush(5)
        while True:
            m = c.poll(1)
            if m and not m.error():
                break
        lats.append((time.monotonic() - t) * 1000)
    c.close()
    return lats


def first_send(st, warm):
    p = producer(st)
    time.sleep(IDLE_S)
    if warm:
        p.list_topics("ltvsync.jobs.backfill", timeout=5)
    left = [615]

    def dr(err, msg):
        left[0] -= 1
    t = time.monotonic()
    for i in range(615):
        p.produce("ltvsync.jobs.backfill", b'{"n":%d}' % i, key=b"bench/orders/%d" % i,
                  on_delivery=dr)
    while left[0] > 0:
        p.poll(0.1)
    return (time.monotonic() - t) * 1000


def main():
    with h.Stack("devbroker-latency") as st:
        st.start_devbroker()
        st.run("ltvctl", ["topics", "create"], timeout=60)
        p = producer(st)
        produce_page(p, "ltvsync.raw", 1, b"warm")
        for n in (1, 5):
            lats = [produce_page(p, "ltvsync.raw", n, b"p%d" % n) for _ in range(50)]
            print("produce %d message%s, acks=all: p50 %.1f ms, p90 %.1f ms"
                  % (n, "s" if n > 1 else "", pct(lats, 0.5), pct(lats, 0.9)))
        for wait in (500, 100):
            lats = consume_latency(st, p, wait)
            print("produce -> consume, fetch.wait.max.ms %d: p50 %.0f ms, p90 %.0f ms"
                  % (wait, pct(lats, 0.5), pct(lats, 0.9)))
        # the cold wait depends on where librdkafka's 1 s topic scan is: trials
        cold = [first_send(st, False) for _ in range(5)]
        warm = [first_send(st, True) for _ in range(5)]
        print("first send of 615 jobs by a new producer after %.0f s: cold p50 %.0f ms, max "
              "%.0f ms; after a metadata request p50 %.0f ms, max %.0f ms (5 trials each)"
              % (IDLE_S, pct(cold, 0.5), max(cold), pct(warm, 0.5), max(warm)))


if __name__ == "__main__":
    main()
