"""Fetcher dispatcher: a job abandoned while the service runs (JOB_ABANDON
outside shutdown: a failed emit_split or Kafka send, an integrations topic
that cannot be read) runs again in-process after a backoff, so its day
completes and its partition's offsets move on; /readyz turns 503 while a job
keeps failing and 200 once it succeeds; and jobs held behind a stuck one are
never dropped, however many (the old table dropped every message past 576).

Abandonment comes from the dispatcher's test hook (LTVSYNC_TEST_ABANDON_EVERY
/ _TIMES, LTVSYNC_TEST_STUCK_MS): the real causes need a Kafka or registry
failure at one exact point of a job, which no outside fault hits on cue.
Before the retry, the abandoned jobs' days never completed (timeout here)
and their partitions' offsets stayed behind them."""
import json
import threading
import time

import ltharness as h
import fetcher_stack as fs

GROUP = "fetcher-abandon"
ENV = {"LTVSYNC_GROUP_ID": GROUP, "LTVSYNC_FETCH_CONCURRENCY": 4,
       "LTVSYNC_FETCH_PAGE_SIZE": 10}


class Watch(threading.Thread):
    """Polls /readyz and the uncommitted-jobs gauge of a fetcher every 50 ms:
    records 503s and the gauge's peak."""

    def __init__(self, proc):
        super().__init__(daemon=True)
        self.proc, self.unready, self.peak_held = proc, 0, 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                if self.proc.http("/readyz")[0] == 503:
                    self.unready += 1
                self.peak_held = max(self.peak_held,
                                     h.metric(self.proc, "ltvsync_fetcher_jobs_uncommitted"))
            except Exception:  # the process is stopping
                pass
            time.sleep(0.05)


def committed_at_end(st, topic, group):
    """{partition: (committed, high watermark)} of the group on topic."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": st.broker.bootstrap, "group.id": group,
                  "enable.auto.commit": False})
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        tps = c.committed([TopicPartition(topic, p) for p in parts], timeout=10)
        return {tp.partition: (tp.offset, c.get_watermark_offsets(tp, timeout=10)[1])
                for tp in tps}
    finally:
        c.close()


def assert_all_committed(st):
    for p, (got, end) in committed_at_end(st, fs.TOPIC_BACKFILL,
                                          GROUP + "-backfill").items():
        assert end == 0 or got == end, "partition %d committed %d of %d" % (p, got, end)


def retried_jobs_complete(st, sim):
    """Every 5th job abandoned on its first 3 runs (at t, ~t+1 s, ~t+3 s):
    every day still completes, /readyz goes 503 past 2.5 s of failing and
    200 again, and the offsets reach the end of every partition."""
    day_list = fs.days("2024-01-01", 3)
    env = dict(ENV, LTVSYNC_TEST_ABANDON_EVERY=5, LTVSYNC_TEST_ABANDON_TIMES=3,
               LTVSYNC_TEST_STUCK_MS=2500)
    (f,) = fs.start_fetchers(st, 1, env)
    watch = Watch(f)
    watch.start()
    fs.produce_jobs(st, fs.backfill_jobs("acme", day_list))  # 15 jobs
    fs.wait_days_done(st, "acme", day_list, timeout=40, procs=(f,))
    h.wait_until(lambda: f.http("/readyz")[0] == 200, 10, "/readyz 200 again")
    watch.stop.set()
    watch.join()
    fs.assert_complete(st, sim, "acme")
    assert watch.unready > 0, "/readyz never reported the failing jobs"
    assert h.metric(f, "ltvsync_fetcher_job_retries_total") == 9  # 3 jobs x 3
    assert len(f.log_lines("finished after 3 abandoned runs")) == 3, f.log()
    assert st.stop(f) == 0
    assert_all_committed(st)
    print("retried: /readyz 503 seen %d times" % watch.unready)


def many_held_behind_one(st):
    """1200 jobs in one partition, the 500th and 1000th abandoned 3 times:
    the 1000+ behind the 500th finish meanwhile and are held (more than
    the old 576), none dropped; the offset then jumps to the end."""
    r = st.redis.client()
    r.hset(fs.rkey(st, "i", "acme", "state"), mapping={"state": "parked",
                                                        "reason": "test"})
    env = dict(ENV, LTVSYNC_TEST_ABANDON_EVERY=500, LTVSYNC_TEST_ABANDON_TIMES=3)
    (f,) = fs.start_fetchers(st, 1, env)
    watch = Watch(f)
    watch.start()
    jobs = [fs.job("acme", "orders", "2024-02-%02d" % (1 + i % 28)) for i in range(1200)]
    st.produce(fs.TOPIC_BACKFILL, [("acme/orders/x", json.dumps(j)) for j in jobs],
               partition=0)

    def all_dropped():
        f.check_alive()
        return h.metric(f, 'ltvsync_fetcher_jobs_total{outcome="dropped"}') >= 1200
    h.wait_until(all_dropped, 40, "1200 jobs of a parked integration dropped")
    h.wait_until(lambda: h.metric(f, "ltvsync_fetcher_jobs_uncommitted") == 0, 10,
                 "nothing held")
    watch.stop.set()
    watch.join()
    assert h.metric(f, 'ltvsync_fetcher_jobs_total{outcome="dropped"}') == 1200
    assert h.metric(f, "ltvsync_fetcher_job_retries_total") == 6
    assert watch.peak_held > 576, "peak held %d" % watch.peak_held
    assert st.stop(f) == 0
    assert_all_committed(st)
    print("held: peak %d jobs behind the stuck one" % watch.peak_held)


def main():
    with h.Stack("fetcher-abandon") as st:
        sim = fs.start_stack(st, customers=20, days=3)
        fs.add_integration(st, sim)
        retried_jobs_complete(st, sim)
        many_held_behind_one(st)
    print("ok")


if __name__ == "__main__":
    main()
