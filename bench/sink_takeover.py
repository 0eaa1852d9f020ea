"""The cost of a sink takeover at full speed (run by bench/sink_takeover.sh).

A sink whose offsets are never committed (LTVSYNC_KAFKA_AUTO_COMMIT_INTERVAL_MS
10 minutes) writes N events (BENCH_EVENTS, 50,000) downstream, then a second
version of each (a re-dated replay), every batch finished and recorded;
then it is killed (-9) and started again with the defaults. Its intent
covers every finished batch not committed (services/sink/intent.c). The
first versions differ from the stored hashes (the second versions'), so
every batch the new sink is redelivered holds writes a dead sink made: it
reads downstream back and finds them. This is a takeover's worst case: with
one version of each event only the dead sink's last batches (its
unrecorded writes) are looked for. Prints the first sink's rate, then the
takeover's: seconds from the restart until the group's offsets are
committed at the end (the rebalance after the kill and the auto commit
included), the time from its first batch that looked for writes to its
last (the sink's log), downstream reads (ltvsync_sink_takeover_reads_total),
writes found and superseded, and the downstream count (2N: nothing written
twice). BENCH_BATCH sets SINK_BATCH_SIZE of both sinks (default: the
sink's own, 2000)."""
import datetime
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "tests", "integration"))
from ltharness import Stack, unique_name, wait_until  # noqa: E402
from sink_bench import produce  # noqa: E402
from test_sink import caught_up, metric  # noqa: E402

N = int(os.environ.get("BENCH_EVENTS", "50000"))
BATCH = os.environ.get("BENCH_BATCH")
PARTITIONS = 12


def main():
    with Stack("bench-sink-takeover") as st:
        st.start_redis()
        st.start_devbroker(partitions=PARTITIONS)
        events, down, group = unique_name("events"), unique_name("down"), unique_name("sink")
        env = {"LTVSYNC_TOPIC_EVENTS": events, "LTVSYNC_TOPIC_DOWNSTREAM": down,
               "LTVSYNC_TOPIC_DLQ": unique_name("dlq"), "LTVSYNC_GROUP_ID": group,
               "LTVSYNC_LOG_LEVEL": "info",  # the takeover's lines, timed below
               "LTVSYNC_KAFKA_AUTO_COMMIT_INTERVAL_MS": "600000"}
        if BATCH:
            env["LTVSYNC_SINK_BATCH_SIZE"] = BATCH
        produce(st, events, N)
        produce(st, events, N, shift_days=1)
        sink = st.start_service("ltvsync-sink", env=env)
        t0 = time.monotonic()
        wait_until(lambda: metric(sink, "ltvsync_sink_events_written_total") >= 2 * N, 600,
                   "the first sink's %d writes" % (2 * N))
        first_s = time.monotonic() - t0
        batches = metric(sink, "ltvsync_sink_batches_total")
        kept = metric(sink, "ltvsync_sink_intent_finished_batches")
        st.stop(sink, signal.SIGKILL)
        sink.env = dict(sink.env)
        del sink.env["LTVSYNC_KAFKA_AUTO_COMMIT_INTERVAL_MS"]
        t1 = time.monotonic()
        st.restart(sink)
        wait_until(lambda: caught_up(st, group, events), 1800, "the takeover caught up")
        took = time.monotonic() - t1
        reads = metric(sink, "ltvsync_sink_takeover_reads_total")
        found = metric(sink, "ltvsync_sink_takeover_found_total")
        sup = metric(sink, "ltvsync_sink_takeover_superseded_total")
        n_down = len(st.consume_all(down, timeout=300))
        # from its first batch that looked for writes to its last one
        stamps = [datetime.datetime.fromisoformat(l.split()[0].replace("Z", "+00:00"))
                  for l in sink.log_lines("INFO sink: takeover: ")]
        work = (stamps[-1] - stamps[0]).total_seconds() if stamps else 0.0
        print("first sink: %d events in two versions, %d writes in %.1f s (%.0f/s), %d batches, "
              "%d kept in the intent, none committed"
              % (N, 2 * N, first_s, 2 * N / first_s, batches, kept))
        print("takeover: caught up %.1f s after the restart (the group's rebalance and the "
              "commit included); its batches that looked for writes took %.2f s: %d reads of "
              "downstream, %d writes found, %d superseded; %d messages downstream for %d writes"
              % (took, work, reads, found, sup, n_down, 2 * N))
        assert n_down == 2 * N, (n_down, 2 * N)


if __name__ == "__main__":
    main()
