"""Helpers of the Redis fault tests (tests/fault/test_redis_faults_*.py):
two merchants at RPS / IN_FLIGHT, their crm-sims' limit checks, and the
job partitions left behind when a sync does not complete."""
import json

from ltharness import wait_until

RPS, IN_FLIGHT = 20, 4


def rows_fetched(tenant):
    s = tenant.status()
    return sum(v["rows"] for v in s["streams"].values()) if s else 0


def violations(sims):
    """crm-sim's 429s (it enforces the integration's limits) plus any excess
    of its peaks over them."""
    n = 0
    for sim in sims:
        s = sim.stats()
        n += s["violations"] + int(s["peak_in_flight"] > IN_FLIGHT) + \
            int(s["max_rps_window"] > RPS)
    return n


def peaks(sims):
    """Busiest 1 s window and peak in flight per crm-sim, for the report."""
    out = []
    for sim in sims:
        s = sim.stats()
        out.append("%d/%d rps %d/%d in flight" % (s["max_rps_window"], RPS,
                                                   s["peak_in_flight"], IN_FLIGHT))
    return ", ".join(out)


def job_lag(st):
    """{group: {partition: (committed, end)}} of the fetchers' job consumers
    where a partition is behind: printed when a sync does not complete."""
    from confluent_kafka import Consumer, TopicPartition
    out = {}
    for cls in ("live", "backfill"):
        topic, group = "ltvsync.jobs." + cls, "ltvsync-fetcher-" + cls
        c = Consumer({"bootstrap.servers": st.broker.bootstrap, "group.id": group,
                      "enable.auto.commit": False})
        try:
            parts = c.list_topics(topic, timeout=10).topics[topic].partitions
            for tp in c.committed([TopicPartition(topic, q) for q in parts], timeout=10):
                end = c.get_watermark_offsets(tp, timeout=10)[1]
                if end > max(tp.offset, 0):
                    out.setdefault(group, {})[tp.partition] = (tp.offset, end)
        finally:
            c.close()
    return out


def wait_both_synced(st, pl, other, timeout):
    try:
        pl.wait_synced(timeout=timeout)
        wait_until(other.synced, timeout, "the second merchant's sync", interval=1.0)
    except AssertionError:
        print("not synced: status %s / %s; job partitions behind (committed, end): %s"
              % (json.dumps(pl.status()), json.dumps(other.status()), job_lag(st)))
        raise


def totals(sims):
    return [sim.stats()["total"] for sim in sims]
