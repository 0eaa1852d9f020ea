"""Reproduction (not a ctest test) of the wedge the soak found under ASan:
after a consumer-group rebalance, a fetcher's job partition can stay paused
forever, so its jobs are never run, their days never complete and the sync
never finishes (ltvctl status: N jobs outstanding, days_done stuck).

1. librdkafka (Debian's 2.0.2) keeps an application pause on a partition
   across revoke and re-assignment: consumer A pauses its 4 partitions, B
   joins (A keeps 2), A resumes its assignment of the moment, B leaves, A
   gets all 4 back and consumes only from the 2 it resumed.
2. services/fetcher/dispatch.c pauses a class's whole assignment while its
   queue is full and set_paused() resumes only the assignment of the moment
   (none during a rebalance), then trusts d->paused[cls] == 0: a partition
   paused before it was revoked and assigned again later is never resumed.
   Here: fetcher A backfills alone until its queues are full (paused); a
   second fetcher joins and leaves a few times (each time both groups
   rebalance while A is paused: what two fetchers starting together, a
   restart, or a broker outage longer than the session timeout do); then
   the sync should complete. A race: it does not wedge every time. Seen in
   tests/fault/test_redis_faults_freeze.py (one fetcher silent from the
   start-up rebalance on) and the soak (after a broker_down).

Run: LTVSYNC_BIN_DIR=build/bin PYTHONPATH=tests/lib python3 tests/soak/repro_paused_partition.py
Exit 0 when neither reproduces, 1 when one does."""
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition, libversion
from ltharness import HarnessError, Stack, wait_until
from pipeline import Pipeline


def librdkafka_keeps_pause():
    """1 when A never consumes from the partitions it paused before losing them."""
    with Stack("pause-exp") as st:
        br = st.start_devbroker(partitions=4)
        p = Producer({"bootstrap.servers": br.bootstrap})
        for i in range(80):
            p.produce("t", b"x%d" % i, partition=i % 4)
        p.flush(10)
        conf = {"bootstrap.servers": br.bootstrap, "group.id": "g",
                "auto.offset.reset": "earliest", "enable.auto.commit": False,
                "session.timeout.ms": 6000, "heartbeat.interval.ms": 500}
        a = Consumer(dict(conf, **{"client.id": "A"}))
        a.subscribe(["t"])
        wait_until(lambda: a.poll(0.2) is not None and len(a.assignment()) == 4, 30,
                   "A assigned 4 partitions and a message")
        a.pause(a.assignment())
        b = Consumer(dict(conf, **{"client.id": "B"}))
        b.subscribe(["t"])
        wait_until(lambda: (a.poll(0.1), b.poll(0.1)) and len(a.assignment()) == 2
                   and len(b.assignment()) == 2, 60, "A and B with 2 partitions each")
        kept = sorted(x.partition for x in a.assignment())
        a.resume(a.assignment())
        b.close()
        seen = set()

        def poll():
            m = a.poll(0.2)
            if m is not None and not m.error():
                seen.add(m.partition())
            return len(a.assignment()) == 4
        wait_until(poll, 60, "A with all 4 again")
        t = time.monotonic()
        while time.monotonic() - t < 8:
            poll()
        a.close()
        print("librdkafka %s: A paused 0-3, kept %s, resumed them, got 0-3 back, consumed "
              "from %s" % (libversion()[0], kept, sorted(seen)))
        return int(len(seen) < 4)


def backfill_group_lag(st):
    c = Consumer({"bootstrap.servers": st.broker.bootstrap,
                  "group.id": "ltvsync-fetcher-backfill", "enable.auto.commit": False})
    try:
        t = "ltvsync.jobs.backfill"
        parts = c.list_topics(t, timeout=10).topics[t].partitions
        return {tp.partition: (tp.offset, c.get_watermark_offsets(tp, timeout=10)[1])
                for tp in c.committed([TopicPartition(t, q) for q in parts], timeout=10)}
    finally:
        c.close()


def days_done(pl):
    s = pl.status()
    return sum(v["days_done"] for v in s["streams"].values()) if s else 0


def pipeline_wedges(rounds=6):
    """1 when the backfill never completes. Fetcher A runs alone until its
    queues are full (paused); then fetcher B joins and leaves ROUNDS times
    (each time the groups rebalance while A is paused), then joins for good."""
    with Stack("pause-pipe", keep=True) as st:
        pl = Pipeline(st, customers=300, days=120, latency_ms=20, max_rps=20, max_in_flight=4)
        for name in ("ltvsync-scheduler", "ltvsync-normalizer", "ltvsync-sink"):
            pl.procs[name] = st.start_service(name, pl.env)
        a = pl.procs["ltvsync-fetcher.1"] = st.start_service("ltvsync-fetcher", pl.env)
        wait_until(lambda: pl.check_alive() or days_done(pl) >= 30, 90, "fetcher A under way")
        b = None
        for i in range(rounds):
            b = st.start_service("ltvsync-fetcher", pl.env) if b is None else st.restart(b)
            time.sleep(6.0)
            st.stop(b)
            time.sleep(6.0)
            print("round %d: B joined and left, %d stream-days done" % (i + 1, days_done(pl)))
        pl.procs["ltvsync-fetcher.2"] = st.restart(b)
        try:
            pl.wait_synced(timeout=240)
            print("synced: not reproduced this time")
            return 0
        except HarnessError as e:
            s = pl.status()
            print("WEDGED: %s; outstanding %s; days %s; backfill group (committed, end) %s; "
                  "fetcher A's last log line: %s; logs in %s"
                  % (e, s["outstanding_jobs"],
                     {k: "%d/%d" % (v["days_done"], v["days_total"])
                      for k, v in s["streams"].items()},
                     backfill_group_lag(st), (a.log_lines() or [""])[-1][:160], st.tmp))
            return 1


if __name__ == "__main__":
    rc = librdkafka_keeps_pause()
    rc |= pipeline_wedges()
    sys.exit(rc)
