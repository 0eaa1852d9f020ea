"""Where the sink's writes land downstream (services/sink/intent.c): it
places each write itself, so that a sink taking over after a crash knows
where to look, and it places them as the downstream producer's
`partitioner` says (DOWNSTREAM_KAFKA_PARTITIONER), not only as librdkafka's
default does.

1. Two sinks read the same events topic, each with its own group, Redis
   prefix and downstream topic (4 partitions): one with the defaults, one
   with LTVSYNC_DOWNSTREAM_KAFKA_PARTITIONER=murmur2_random (the Java
   client's). Every write of the first lands in crc32(event_id) mod 4, every
   write of the second in murmur2(event_id) mod 4, computed here by Python
   code of its own. The two placements differ for most events, so either
   check fails if the setting is ignored or misread.
2. LTVSYNC_DOWNSTREAM_KAFKA_PARTITIONER=random (the key unused) is refused
   at start: exit 1, an error that names the setting's value and the ones
   accepted."""
import os
import sys
import zlib

from ltharness import Stack, unique_name, wait_until

sys.path.insert(0, os.path.join(os.path.dirname(__file__)))
from test_sink import caught_up, encode, key_of, make_event, sink_stack  # noqa: E402

N = 120
PARTS = 4


def murmur2(data):
    """Kafka's murmur2 (the Java client's Utils.murmur2, seed 0x9747b28c)."""
    m, h = 0x5BD1E995, (0x9747B28C ^ len(data)) & 0xFFFFFFFF
    whole = len(data) // 4 * 4
    for i in range(0, whole, 4):
        k = (int.from_bytes(data[i:i + 4], "little") * m) & 0xFFFFFFFF
        k = ((k ^ (k >> 24)) * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = data[whole:]
    if len(tail) == 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if tail:
        h = ((h ^ tail[0]) * m) & 0xFFFFFFFF
    h = ((h ^ (h >> 13)) * m) & 0xFFFFFFFF
    return h ^ (h >> 15)


def placement(msgs, where):
    """(messages, how many are not in the partition where(key) names)."""
    wrong = [(m.key, m.partition) for m in msgs if m.partition != where(m.key)]
    return len(msgs), wrong


def main():
    with Stack("sink-partitioner") as st:
        integ, t_events, t_down, t_dlq, group, env = sink_stack(st)
        events = [make_event(i, integ) for i in range(N)]
        st.produce(t_events, [(key_of(e), encode(e)) for e in events])

        # 1. the default and murmur2, side by side on the same input
        t_mm2 = unique_name("down-mm2")
        env_mm2 = dict(env, LTVSYNC_TOPIC_DOWNSTREAM=t_mm2,
                       LTVSYNC_GROUP_ID=unique_name("sink-mm2"),
                       LTVSYNC_REDIS_PREFIX=st.prefix + "mm2:",
                       LTVSYNC_DOWNSTREAM_KAFKA_PARTITIONER="murmur2_random")
        sinks = [st.start_service("ltvsync-sink", env=env),
                 st.start_service("ltvsync-sink", env=env_mm2)]
        for topic in (t_down, t_mm2):
            wait_until(lambda: len(st.consume_all(topic)) >= N, 60,
                       "%d events in %s" % (N, topic))
        wait_until(lambda: caught_up(st, group, t_events), 60, "the default sink caught up")
        crc = lambda key: zlib.crc32(key) % PARTS  # noqa: E731
        mm2 = lambda key: (murmur2(key) & 0x7FFFFFFF) % PARTS  # noqa: E731
        differ = sum(1 for e in events if crc(key_of(e)) != mm2(key_of(e)))
        assert differ >= N // 2, "the two placements agree for %d of %d" % (N - differ, N)
        n, wrong = placement(st.consume_all(t_down), crc)
        assert n == N and not wrong, ("default", n, wrong[:5])
        n, wrong = placement(st.consume_all(t_mm2), mm2)
        assert n == N and not wrong, ("murmur2_random", n, wrong[:5])
        for s in sinks:
            assert st.stop(s) == 0, s.name

        # 2. a partitioner that ignores the key: refused at start
        res = st.run("ltvsync-sink", env=dict(env, LTVSYNC_DOWNSTREAM_KAFKA_PARTITIONER="random",
                                              LTVSYNC_GROUP_ID=unique_name("sink-random")),
                     timeout=30)
        assert res.returncode == 1, (res.returncode, res.stderr[-2000:])
        assert 'downstream partitioner "random"' in res.stdout, res.stdout[-2000:]
        assert "murmur2_random" in res.stdout, res.stdout[-2000:]
        print("placement: %d events by crc32 and by murmur2 (%d placed apart); random refused"
              % (N, differ))


if __name__ == "__main__":
    main()
