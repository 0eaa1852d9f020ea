"""The sink's crash window (issue 11): a sink killed after its writes reached
downstream and before it recorded their hashes in Redis. The sink that takes
the input partitions over is redelivered those events and finds no hash for
them; before the intents (services/sink/intent.c) it wrote every one of them
again, unchanged.

The window is made deterministic, not hit by chance. The devbroker has two
brokers: broker 1 leads the events topic and coordinates the sink's group,
broker 2 leads the downstream topic.
  1. a warm-up event of another integration goes through, so the sink has
     its partitions;
  2. broker 2's round trip becomes RTT_MS (the sink's writes land at once,
     their acknowledgements wait), then N events are produced;
  3. as soon as the sink has handed all of them to its producer
     (ltvsync_sink_writes_sent_total), Redis is made a replica of a master
     that does not exist (REPLICAOF: read-only, data kept, as after a
     failover demoted it): the acknowledgements are still RTT_MS away, so
     the sink has not recorded a hash, and from now on Redis refuses its
     record. (Freezing Redis instead is no such window: a record already on
     the wire runs when Redis thaws, after the sink died.)
  4. the round trip is cleared; once all N are downstream, the sink is
     killed (-9), Redis made a primary again and the sink started again,
     with batches of TAKEOVER_BATCH events: the takeover spans several
     batches, and the two versions of a changed event come in different
     ones (the earlier version's batch cannot know the later one is
     downstream already; before the writes carried their input
     coordinates, it wrote the earlier version again, and the later one's
     batch then either wrote that again too or, reading downstream before
     the rewrite landed, skipped it and left the earlier version last).

Asserts:
  - the window was hit: the sink's last batch was unrecorded when it was
    killed (a batch before it may have finished: the sink waits for a
    batch's acknowledgements when the next has not come in yet);
  - after the restart: every write exactly once downstream (no unchanged
    copy, nothing lost; of the CHANGED events written in two versions, the
    later one is downstream's last), the restarted sink counts every
    unrecorded write as found downstream (and perhaps a few recorded ones:
    see below) and 0 it could not look for, and it catches up within
    BOUND_S;
  - the takeover's records hold: the latest version of the N events again
    are all skipped as unchanged, and CHANGED changed ones are each written
    once;
  - another integration's events produced after the restart are written;
  - a sink killed after batches finished (recorded, offsets stored) but
    before their offsets were committed: the next sink is redelivered
    them, and the earlier of two versions of an event differs from the
    stored hash (the later one's). The intent covers finished batches
    until they are committed, so both are found, not written again;
  - an event that came again unchanged (outside every intent: that batch
    wrote nothing) and then changed, killed before a commit: the next sink
    finds the change downstream, last, and writes neither again (the
    unchanged version is an earlier one, superseded; it used to be written
    again, and the change after it, as copies).
"""
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

from faultrow import report  # noqa: E402
from ltharness import Stack, free_port, wait_until  # noqa: E402
from pipeline import duplicates  # noqa: E402
from test_sink import caught_up, encode, key_of, make_event, metric, sink_stack  # noqa: E402

N = 300
CHANGED = 10
# Cleared as soon as Redis is read-only: the test's time to react, under
# librdkafka's request.timeout.ms (30 s).
RTT_MS = 10000
BOUND_S = 60.0  # restart to caught up: group join (3 s on the mock) + a read back per batch
TAKEOVER_BATCH = 40  # the restarted sink's SINK_BATCH_SIZE: 8 or more batches
KEEP_SMALL = 100  # step 4's SINK_TAKEOVER_KEEP: fewer than the writes read back


def restart(st, sink, commit_ms, sig=signal.SIGTERM):
    """Stops the sink (SIGTERM: a final commit; SIGKILL: none) and starts it
    again with an auto commit every commit_ms."""
    st.stop(sink, sig)
    sink.env = dict(sink.env, LTVSYNC_KAFKA_AUTO_COMMIT_INTERVAL_MS=str(commit_ms))
    st.restart(sink)


def takeover(st, sink, group, t_events, t_down):
    """kill -9 of the sink, started again (500 ms commits): (seconds until
    it caught up, downstream's messages, their unchanged copies)."""
    t0 = time.monotonic()
    restart(st, sink, 500, signal.SIGKILL)
    wait_until(lambda: caught_up(st, group, t_events), BOUND_S, "the sink caught up")
    took = time.monotonic() - t0
    down = st.consume_all(t_down)
    return took, down, duplicates(down)


def latest_of(down):
    """{event_id: the last version downstream}"""
    return {e["event_id"]: e for e in (json.loads(m.value) for m in down)}


def two_brokers(st, **extra):
    """Step 1 of the layout above (also test_sink_takeover_term's): a sink
    on a 2-broker devbroker, broker 1 leading the events topic and
    coordinating its group, broker 2 leading downstream, with two warm-up
    events of another integration written. Returns (integration id, events
    topic, downstream topic, group, the sink, the warm-up events)."""
    integ, t_events, t_down, t_dlq, group, env = sink_stack(
        st, brokers=2, LTVSYNC_KAFKA_SESSION_TIMEOUT_MS="3000",
        LTVSYNC_KAFKA_HEARTBEAT_INTERVAL_MS="500",
        LTVSYNC_KAFKA_AUTO_COMMIT_INTERVAL_MS="500", **extra)
    kf = st.broker.faults
    kf.coordinator(group, 1)
    sink = st.start_service("ltvsync-sink", env=env)
    warm = [make_event(i, integ + "-b") for i in (1000, 1001)]
    st.produce(t_events, [(key_of(warm[0]), encode(warm[0]))])
    wait_until(lambda: len(st.consume_all(t_down)) == 1, 60, "the first warm-up event")
    for p in range(4):  # the topics exist now
        kf.leader(t_events, p, 1)
        kf.leader(t_down, p, 2)
    st.produce(t_events, [(key_of(warm[1]), encode(warm[1]))])
    wait_until(lambda: len(st.consume_all(t_down)) == 2, 60, "the second warm-up event")
    st.wait_ready(sink)
    return integ, t_events, t_down, group, sink, warm


def main():
    with Stack("sink-crash-window") as st:
        integ, t_events, t_down, group, sink, warm = two_brokers(st)
        other = integ + "-b"
        kf = st.broker.faults
        sent0 = metric(sink, "ltvsync_sink_writes_sent_total")
        written0 = metric(sink, "ltvsync_sink_events_written_total")

        # 2-3: writes on their way, Redis read-only before any record. CHANGED
        # of the events come twice, a changed version right after the first
        # (same key, so in order): both are written, and both must be found.
        events = [make_event(i, integ) for i in range(N)]
        twice = [make_event(i, integ, shift_days=1) for i in range(0, N, N // CHANGED)]
        writes = N + len(twice)
        kf.rtt(2, RTT_MS)
        # through broker 1 only: broker 2 now answers RTT_MS late
        b1 = st.broker.bootstrap.split(",")[0]
        st.produce(t_events, [(key_of(e), encode(e)) for e in events + twice], bootstrap=b1)
        wait_until(lambda: metric(sink, "ltvsync_sink_writes_sent_total") >= sent0 + writes, 60,
                   "the sink to send the %d writes" % writes)
        r = st.redis.client()
        r.execute_command("REPLICAOF", "127.0.0.1", str(free_port()))
        t_stop = time.monotonic()
        kf.rtt(2, 0)
        try:
            wait_until(lambda: len(st.consume_all(t_down)) >= writes + 2, 60,
                       "the %d writes downstream" % writes)
            # Batches the sink finished before (it waits for a batch's
            # acknowledgements when the next has not come in yet) are
            # recorded; the last batch cannot have been.
            early = metric(sink, "ltvsync_sink_events_written_total") - written0
            assert early < writes, "every batch finished before Redis turned read-only"
            st.stop(sink, signal.SIGKILL)
        finally:
            r.execute_command("REPLICAOF", "NO", "ONE")
        print("1. %d writes downstream, the sink killed %.1f s after Redis turned read-only; "
              "%d of them unrecorded" % (writes, time.monotonic() - t_stop, writes - early))

        # the takeover
        t0 = time.monotonic()
        sink.env = dict(sink.env, LTVSYNC_SINK_BATCH_SIZE=str(TAKEOVER_BATCH))
        st.restart(sink)
        wait_until(lambda: caught_up(st, group, t_events), BOUND_S, "the sink caught up")
        took = time.monotonic() - t0
        down = st.consume_all(t_down)
        ids = {json.loads(m.value)["event_id"] for m in down}
        copies = duplicates(down)
        found = metric(sink, "ltvsync_sink_takeover_found_total")
        unresolved = metric(sink, "ltvsync_sink_takeover_unresolved_total")
        want = {e["event_id"] for e in events} | {w["event_id"] for w in warm}
        report("sink kill -9 after its writes reached downstream, before their record "
               "(Redis read-only, downstream acks 10 s late)", trials=1,
               lost=len(want - ids), dups=sum(n - 1 for _, n in copies), violations=0,
               recover_s=took, note="%d writes found downstream by the next sink (%d of them "
               "unrecorded), %d it could not look for" % (found, writes - early, unresolved))
        assert not copies, "unchanged copies downstream: %s" % copies[:3]
        assert len(down) == writes + 2, (len(down), writes + 2)
        assert ids == want
        latest = latest_of(down)
        for e in twice:  # the later version is the one downstream ends with
            assert latest[e["event_id"]]["local_date"] == e["local_date"], e["event_id"]
        # Every unrecorded write is found. So may be recorded ones: a batch
        # that finished just before the freeze, with both versions of an
        # id, comes again if its offsets were not committed yet; the stored
        # hash is the later version's, so the earlier one would be written
        # again (and the later after it) had the read back not found both.
        assert writes - early <= found <= writes and unresolved == 0, \
            (found, writes - early, unresolved)
        reads = metric(sink, "ltvsync_sink_takeover_reads_total")
        assert reads >= 2, reads  # the takeover spanned batches
        # each batch read only what was new: the writes read are kept
        assert not sink.log_lines("(SINK_TAKEOVER_KEEP)"), "read per batch with the default"
        print("2. restarted: %d writes found downstream in %d reads, not written again; 0 "
              "copies; caught up in %.1f s" % (found, reads, took))

        # the takeover's records hold; the other integration is written
        now = {e["event_id"]: e for e in events}
        now.update((e["event_id"], e) for e in twice)
        changed = [make_event(i, integ, shift_days=2) for i in range(0, N, N // CHANGED)]
        late = [make_event(i, other) for i in range(1, 21)]
        again = list(now.values()) + changed + late
        st.produce(t_events, [(key_of(e), encode(e)) for e in again])
        wait_until(lambda: caught_up(st, group, t_events), 60, "the sink caught up again")
        down = st.consume_all(t_down)
        assert len(down) == writes + 2 + len(changed) + len(late), len(down)
        assert not duplicates(down), duplicates(down)[:3]
        assert metric(sink, "ltvsync_sink_events_unchanged_total") >= N
        # Commits reach the sink: once one covers them, finished batches
        # leave the intent (the next batch that writes prunes them).
        time.sleep(1.5)  # three 500 ms auto-commit intervals
        one = make_event(99, other)
        st.produce(t_events, [(key_of(one), encode(one))])
        wait_until(lambda: len(st.consume_all(t_down)) == len(down) + 1, 30, "one more write")
        wait_until(lambda: metric(sink, "ltvsync_sink_events_written_total") >= 1 + len(changed)
                   + len(late), 30, "the write finished")
        kept = metric(sink, "ltvsync_sink_intent_finished_batches")
        assert kept <= 2, kept  # the last batch and perhaps one before it
        print("3. the latest %d again: skipped; %d changed and %d of the other integration "
              "written once; %d finished batches left in the intent" % (N, len(changed),
                                                                       len(late), kept))

        # 4. batches finished (written, recorded, offsets stored) but not
        # committed: a sink whose auto commit never comes is killed. Each
        # of CHANGED events comes in two versions; redelivered, the earlier
        # differs from the stored hash (the later one's).
        # The next sink keeps KEEP_SMALL of the writes it reads back: past
        # them, each batch reads from the bounds again (the fallback).
        sink.env["LTVSYNC_SINK_TAKEOVER_KEEP"] = str(KEEP_SMALL)
        restart(st, sink, 600000)
        st.wait_ready(sink)
        v3 = [make_event(i, integ, shift_days=3) for i in range(0, N, N // CHANGED)]
        v4 = [make_event(i, integ, shift_days=4) for i in range(0, N, N // CHANGED)]
        more = [make_event(i, other) for i in range(21, 41)]
        st.produce(t_events, [(key_of(e), encode(e)) for e in v3 + more + v4])
        n4 = len(v3) + len(more) + len(v4)
        wait_until(lambda: metric(sink, "ltvsync_sink_events_written_total") == n4, 60,
                   "the sink to finish the %d writes" % n4)
        # later batches that write to every partition move the intents'
        # ranges past that batch (it is no longer one of the last three)
        for r in range(4):
            batch = [make_event(i, other) for i in range(100 + 40 * r, 140 + 40 * r)]
            st.produce(t_events, [(key_of(e), encode(e)) for e in batch])
            n4 += len(batch)
            wait_until(lambda: metric(sink, "ltvsync_sink_events_written_total") == n4, 60,
                       "the sink to finish the %d writes" % n4)
        took, down, copies = takeover(st, sink, group, t_events, t_down)
        found = metric(sink, "ltvsync_sink_takeover_found_total")
        report("sink kill -9 after batches finished, before their offsets were committed "
               "(two versions of %d events)" % CHANGED, trials=1, lost=0,
               dups=sum(n - 1 for _, n in copies), violations=0, recover_s=took,
               note="%d writes found downstream by the next sink" % found)
        assert not copies, "unchanged copies downstream: %s" % copies[:3]
        assert len(down) == writes + 2 + len(changed) + len(late) + 1 + n4, len(down)
        latest = latest_of(down)
        for e in v4:
            assert latest[e["event_id"]]["local_date"] == e["local_date"], e["event_id"]
        assert found == len(v3) + len(v4), (found, len(v3) + len(v4))
        assert sink.log_lines("(SINK_TAKEOVER_KEEP); each batch reads from the bounds"), \
            "the fallback past SINK_TAKEOVER_KEEP was not taken"
        del sink.env["LTVSYNC_SINK_TAKEOVER_KEEP"]
        print("4. killed with finished batches uncommitted: %d writes found downstream, not "
              "written again; caught up in %.1f s" % (found, took))

        # 5. an event comes again unchanged (the sink writes nothing, so no
        # intent covers it), then changes (B, recorded), and the sink is
        # killed before a commit. The next sink starts from B's stored hash,
        # so the unchanged version looks changed; but B, found downstream
        # and last there, supersedes it: neither is written again (before,
        # both were: A, B copied).
        ys = [make_event(i, integ, shift_days=5) for i in (1, 2, 3)]
        zs = [make_event(i, integ, shift_days=6) for i in (1, 2, 3)]
        st.produce(t_events, [(key_of(e), encode(e)) for e in ys])
        wait_until(lambda: caught_up(st, group, t_events), 60, "the versions A written")
        restart(st, sink, 600000)
        st.wait_ready(sink)
        st.produce(t_events, [(key_of(e), encode(e)) for e in ys])
        wait_until(lambda: metric(sink, "ltvsync_sink_events_unchanged_total") == len(ys), 60,
                   "A again, unchanged")
        st.produce(t_events, [(key_of(e), encode(e)) for e in zs])
        wait_until(lambda: metric(sink, "ltvsync_sink_events_written_total") == len(zs), 60,
                   "the versions B written")
        n_down = len(st.consume_all(t_down))
        took, down, copies = takeover(st, sink, group, t_events, t_down)
        found = metric(sink, "ltvsync_sink_takeover_found_total")
        superseded = metric(sink, "ltvsync_sink_takeover_superseded_total")
        report("sink kill -9 before a commit, after an event came again unchanged (no intent: "
               "nothing written) and then changed (%d events)" % len(zs), trials=1, lost=0,
               dups=sum(n - 1 for _, n in copies), violations=0, recover_s=took,
               note="%d changes found downstream, %d unchanged versions before them superseded"
               % (found, superseded))
        assert not copies, "unchanged copies downstream: %s" % copies[:3]
        assert len(down) == n_down, (len(down), n_down)
        latest = latest_of(down)
        for e in zs:
            assert latest[e["event_id"]]["local_date"] == e["local_date"], \
                ("an older version left last", e["event_id"])
        assert (found, superseded) == (len(zs), len(ys)), (found, superseded)
        print("5. an unchanged version outside every intent, then a change: the change found, "
              "the unchanged version superseded, neither written again")
        st.stop(sink)


if __name__ == "__main__":
    main()
