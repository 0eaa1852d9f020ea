"""The sink's crash window, measured: ltvsync-sink is killed with SIGKILL
at seeded random moments while events stream into its input, and
restarted at once. Prints, per kill, how many writes the next sink found
downstream after the takeover instead of making them again
(ltvsync_sink_takeover_found_total), and how many events were written
twice with unchanged content; checks that nothing was lost and that
nothing was written twice.

Why a kill can leave writes behind: the sink records an event's content
hash in Redis only after downstream acknowledged the write
(services/sink/batch.c), so that a crash can never skip an event; a sink
killed between the two leaves that batch unrecorded. Its intent
(services/sink/intent.c) lets the next sink find those writes downstream;
before the intents it wrote them again (README "The sink's crash window").

Environment: KILLS (10), SEED (7), RATE (events/s asked for, 400; the
feeder's own pace makes it less, the rate reached is printed)."""
import os
import random
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.environ["LTVSYNC_SRC_DIR"], "tests", "integration"))
import test_sink as ts  # noqa: E402  sink_stack, make_event, key_of, encode, caught_up
from ltharness import Stack, wait_until  # noqa: E402
from pipeline import duplicates  # noqa: E402

KILLS = int(os.environ.get("KILLS", "10"))
SEED = int(os.environ.get("SEED", "7"))
RATE = int(os.environ.get("RATE", "400"))
# Between kills: longer than a restarted sink takes to get its partitions
# back (the dead member's 6 s session, then the mock's rebalance delay).
GAP_S = (9.0, 13.0)


def main():
    rng = random.Random(SEED)
    with Stack("bench-sink-crash") as st:
        integ, t_events, t_down, _, group, env = ts.sink_stack(
            st, LTVSYNC_KAFKA_SESSION_TIMEOUT_MS="6000")
        stop, sent = threading.Event(), [0]

        def feed():
            step = max(1, RATE // 20)
            while not stop.is_set():
                evs = [ts.make_event(sent[0] + k, integ) for k in range(step)]
                st.produce(t_events, [(ts.key_of(e), ts.encode(e)) for e in evs])
                sent[0] += step
                time.sleep(0.05)

        sink = st.start_service("ltvsync-sink", env=env)
        feeder = threading.Thread(target=feed)
        feeder.start()
        kills, found = [], []
        t_start = time.monotonic()
        try:
            time.sleep(3)
            for _ in range(KILLS):
                time.sleep(rng.uniform(*GAP_S))
                found.append(ts.metric(sink, "ltvsync_sink_takeover_found_total"))
                kills.append(st.kill_restart(sink))
            time.sleep(2)
        finally:
            stop.set()
            feeder.join()
        rate = sent[0] / (time.monotonic() - t_start)
        wait_until(lambda: ts.caught_up(st, group, t_events), 120, "the sink caught up",
                   interval=1.0)
        found.append(ts.metric(sink, "ltvsync_sink_takeover_found_total"))
        msgs = st.consume_all(t_down)
        ids = {ts.json.loads(m.value)["event_id"] for m in msgs}
        lost = sent[0] - len(ids)
        copies = duplicates(msgs)
        print("seed %d, %d kills, %d events sent at %.0f/s, %d downstream messages"
              % (SEED, KILLS, sent[0], rate, len(msgs)))
        # found[i] is what the sink started after kill i found (found[0]: the
        # first sink, never a takeover of a killed one)
        for i in range(KILLS):
            print("kill %2d: the next sink found %4d writes downstream" % (i + 1, found[i + 1]))
        hit = sum(1 for f in found[1:] if f)
        print("events lost %d; writes found after a takeover %d, after %d of %d kills; "
              "events written twice %d" % (lost, sum(found[1:]), hit, KILLS,
                                            sum(n - 1 for _, n in copies)))
        for x in copies[:5]:
            print("COPY", x)
        for p in (sink,):
            st.stop(p, signal.SIGTERM, 30)
        return 1 if lost or copies else 0


if __name__ == "__main__":
    sys.exit(main())
