"""The sink's dedupe state across the change of Redis layout (issue 14):
state written in the earlier layout (`P dd:<G>:<B>`, 16 id bytes a field)
still makes re-fetched, unchanged events skips, and is copied into the
current one (`P dd2:<G>:<B>`, 4 id bytes a field; services/sink/store.c).

1. 120 events go downstream; the sink stops (SIGTERM).
2. Its state is rewritten by hand into the earlier layout and the current
   one deleted, as a sink of the earlier version would have left it.
3. Restarted, the sink sees re-fetched copies (new fetched_at): nothing is
   written again, every one counts as unchanged, and the current layout
   holds them again.
4. Control: with both layouts deleted the same copies are written again,
   so step 3 could have failed."""
import os
import sys
import uuid

from ltharness import Stack, wait_until

sys.path.insert(0, os.path.join(os.path.dirname(__file__)))
from test_sink import caught_up, encode, key_of, make_event, metric, sink_stack  # noqa: E402

N = 120


def bucket_and_field(event_id):
    """The bucket's 4 hex digits (top 14 bits) and the current layout's
    field (bytes 2..5), as lt_dedupe.h describes them."""
    b = uuid.UUID(event_id).bytes
    return "%04x" % (int.from_bytes(b[0:2], "big") >> 2), b[2:6]


def main():
    with Stack("sink-layout") as st:
        integ, t_events, t_down, t_dlq, group, env = sink_stack(
            st, LTVSYNC_KAFKA_AUTO_COMMIT_INTERVAL_MS="500", LTVSYNC_SHUTDOWN_GRACE="10s")
        r = st.redis.client()
        events = [make_event(i, integ) for i in range(N)]
        st.produce(t_events, [(key_of(e), encode(e)) for e in events])
        sink = st.start_service("ltvsync-sink", env=env)
        wait_until(lambda: len(st.consume_all(t_down)) >= N, 60, "the first %d events" % N)
        wait_until(lambda: caught_up(st, group, t_events), 60, "the sink caught up")
        assert st.stop(sink) == 0

        # 2. the earlier layout, from the current one
        by_slot = {bucket_and_field(e["event_id"]): uuid.UUID(e["event_id"]).bytes
                   for e in events}
        current = r.keys(st.prefix + "dd2:*")
        assert current, "no dedupe state in the current layout"
        moved = 0
        for key in current:
            gen, bucket = key.decode()[len(st.prefix) + 4:].split(":")
            for field, value in r.hgetall(key).items():
                r.hset(st.prefix + "dd:%s:%s" % (gen, bucket), by_slot[(bucket, field)], value)
                moved += 1
            r.delete(key)
        assert moved == N, moved
        assert not r.keys(st.prefix + "dd2:*")

        # 3. re-fetched copies against the earlier layout only
        again = [make_event(i, integ, fetched="2024-03-01T00:00:00Z") for i in range(N)]
        st.produce(t_events, [(key_of(e), encode(e)) for e in again])
        st.restart(sink)
        wait_until(lambda: caught_up(st, group, t_events), 60, "the sink past the copies")
        assert len(st.consume_all(t_down)) == N, "unchanged events written again"
        assert metric(sink, "ltvsync_sink_events_unchanged_total") == N
        copied = sum(r.hlen(k) for k in r.keys(st.prefix + "dd2:*"))
        assert copied == N, "state not copied into the current layout: %d" % copied
        assert st.stop(sink) == 0

        # 4. control: no state at all, the same copies are written again
        for k in r.keys(st.prefix + "dd*"):
            r.delete(k)
        st.produce(t_events, [(key_of(e), encode(e)) for e in again])
        st.restart(sink)
        wait_until(lambda: caught_up(st, group, t_events), 60, "the sink past the control")
        assert len(st.consume_all(t_down)) == 2 * N
        assert st.stop(sink) == 0
        print("ok: %d events skipped from the earlier layout and copied into the current one; "
              "without state all %d written again" % (N, N))


if __name__ == "__main__":
    main()
