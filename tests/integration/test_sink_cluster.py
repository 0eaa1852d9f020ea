"""ltvsync-sink against a real 3-master Redis Cluster (issue 13).

In a cluster a Lua script may touch keys of its declared KEYS' slot only, so
the sink groups each chunk's dedupe keys by tag group (`P dd2:{N}:`,
common/lt_rkeys.h) and makes one script call per group
(services/sink/store.c).
The cluster: tests/lib/rcluster.py, 3 masters, no replicas. Checks:
  1. every event of a first feed goes downstream exactly once, and the sink
     never paused (a CROSSSLOT or non-local key error would pause it);
  2. a second feed of the same events (re-fetched: new fetched_at) writes
     nothing: every one is found unchanged;
  3. the dedupe hashes are `P dd2:{N}:G:BBBB` with N = bucket >> 10, hold
     every event once, nothing else matches `P dd2:*` (so the anchors,
     `P dd2:{N}:`, were never written), and the keys are spread over more
     than one master (counted per node).
"""
import os
import re
import sys
import uuid

from ltharness import HarnessError, Stack, unique_name, wait_until
from rcluster import RedisCluster

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_sink import caught_up, check_no_duplicates, encode, key_of, make_event, metric  # noqa: E402

N = 1200   # several batches and chunks; about 75 events a tag group
MASTERS = 3


def dedupe_keys(rc, port, prefix):
    """The sink's keys on one node: {key: hlen}."""
    r = rc.node(port)
    return {k.decode(): r.hlen(k) for k in r.scan_iter(match=prefix + "dd2:*", count=1000)}


def bucket(event_id):
    return int.from_bytes(uuid.UUID(event_id).bytes[0:2], "big") >> 2


def main():
    with Stack("sink-cluster") as st:
        rc = RedisCluster(st, masters=MASTERS, replicas=0)
        ports = rc.masters()
        assert len(ports) == MASTERS, rc.describe()
        st.start_devbroker(partitions=4)
        integ = "it-%s" % uuid.uuid4().hex[:8]
        t_events, t_down, t_dlq = (unique_name(x) for x in ("events", "down", "dlq"))
        group = unique_name("sink")
        env = {"LTVSYNC_REDIS_URL": rc.url,
               "LTVSYNC_TOPIC_EVENTS": t_events, "LTVSYNC_TOPIC_DOWNSTREAM": t_down,
               "LTVSYNC_TOPIC_DLQ": t_dlq, "LTVSYNC_GROUP_ID": group,
               "LTVSYNC_KAFKA_AUTO_COMMIT_INTERVAL_MS": "500",
               "LTVSYNC_SHUTDOWN_GRACE": "10s"}
        events = [make_event(i, integ) for i in range(N)]

        # 1. the first feed: every event downstream once
        st.produce(t_events, [(key_of(e), encode(e)) for e in events])
        sink = st.start_service("ltvsync-sink", env=env)
        wait_until(lambda: caught_up(st, group, t_events), 90, "the sink past the first feed")
        st.wait_ready(sink)
        down = st.consume_all(t_down)
        assert len(down) == N, (len(down), N)
        assert sorted(m.value for m in down) == sorted(encode(e) for e in events)
        check_no_duplicates(down)
        assert metric(sink, "ltvsync_sink_events_written_total") == N
        assert metric(sink, "ltvsync_sink_redis_pauses_total") == 0, sink.log()[-3000:]
        print("1. %d events downstream once, no Redis pause" % N)

        # 2. the same events again: nothing written
        again = [make_event(i, integ, fetched="2024-03-01T00:00:00Z") for i in range(N)]
        st.produce(t_events, [(key_of(e), encode(e)) for e in again])
        wait_until(lambda: caught_up(st, group, t_events), 90, "the sink past the second feed")
        assert len(st.consume_all(t_down)) == N, "unchanged events written again"
        assert metric(sink, "ltvsync_sink_events_unchanged_total") == N
        assert metric(sink, "ltvsync_sink_redis_pauses_total") == 0, sink.log()[-3000:]
        assert st.stop(sink) == 0
        print("2. the same %d events again: all unchanged, none written" % N)

        # 3. the keys: their form, their content, their spread
        per_node = {p: dedupe_keys(rc, p, st.prefix) for p in ports}
        form = re.compile(r"^%sdd2:\{([0-9a-f])\}:(\d+):([0-9a-f]{4})$" % re.escape(st.prefix))
        fields = 0
        for keys in per_node.values():
            for k, hlen in keys.items():
                m = form.match(k)
                assert m, "not a dedupe hash of the cluster layout: %r" % k
                assert int(m.group(1), 16) == int(m.group(3), 16) >> 10, k
                fields += hlen
        # A field per event, unless two ids of one bucket share their 4
        # field bytes (lt_dedupe.h; checked here rather than assumed).
        slots = {(bucket(e["event_id"]), uuid.UUID(e["event_id"]).bytes[2:6]) for e in events}
        assert fields == len(slots), (fields, len(slots))
        groups = {bucket(e["event_id"]) >> 10 for e in events}
        tags = {form.match(k).group(1) for keys in per_node.values() for k in keys}
        assert tags == {"%x" % g for g in groups}, (sorted(tags), sorted(groups))
        counts = {p: len(keys) for p, keys in per_node.items()}
        assert sum(1 for c in counts.values() if c) > 1, "all dedupe keys on one master: %s" % counts
        print("3. %d dedupe hashes in %d tag groups, keys per master %s"
              % (sum(counts.values()), len(tags), sorted(counts.values())))
        assert "tag groups" in sink.log(), "the sink did not report cluster mode"


if __name__ == "__main__":
    try:
        main()
    except HarnessError as e:
        print("FAIL: %s" % e)
        sys.exit(1)
    print("ok")
