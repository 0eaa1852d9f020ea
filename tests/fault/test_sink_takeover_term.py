"""SIGTERM while a sink reads downstream back in a takeover, and downstream
does not answer: the sink must still exit 0 within LTVSYNC_SHUTDOWN_GRACE
(Kubernetes kills it after terminationGracePeriodSeconds), and the next
sink must finish the takeover: every event downstream once, nothing lost.

Before, the read back waited for its own timeout (120 s for each
partition's watermarks, 120 s for the read), whatever SIGTERM said.

Setup (test_sink_crash_window's layout and its two_brokers()): two
brokers, broker 1 leads the events topic and coordinates the sink's group,
broker 2 leads downstream.
  1. warm-up events, so the sink has its partitions and the leaders move;
  2. broker 2 answers SEND_RTT_MS late; N events go in; once the sink has sent
     all N writes (their acknowledgements RTT_MS away, its intents in
     Redis), it is killed (-9);
  3. a new sink starts with broker 1 alone as its bootstrap (broker 2
     answering again, so it knows downstream's partitions and their ends),
     broker 2 turns slow before its group join ends, and the
     sink gets the batch again, finds the intents and reads downstream back
     (ltvsync_sink_takeover_reads_total), which does not answer: SIGTERM;
  4. the round trip is cleared and a third sink catches up.
Asserts: exit 0 within GRACE_S + EXIT_MARGIN_S of the SIGTERM, no
sanitizer report; then every event exactly once downstream (0 unchanged
copies, 0 lost), within BOUND_S.
"""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

from faultrow import report  # noqa: E402
from ltharness import Stack, wait_until  # noqa: E402
from pipeline import SANITIZER_MARKS, duplicates  # noqa: E402
from test_sink import caught_up, encode, key_of, make_event, metric  # noqa: E402
from test_sink_crash_window import two_brokers  # noqa: E402

N = 100
# Step 2: acknowledgements this late (as test_sink_crash_window; longer holds
# the sink's pipeline of batches back before all N are sent). Step 3: the
# dev broker's most: downstream does not answer for a minute.
SEND_RTT_MS = 10000
READ_RTT_MS = 60000
GRACE_S = 10.0    # the sink's LTVSYNC_SHUTDOWN_GRACE here
# past the grace: the sink's own close (consumers, producers) after it gave up
EXIT_MARGIN_S = 5.0
BOUND_S = 60.0    # the third sink: group join (3 s on the mock), the read back


def main():
    with Stack("sink-takeover-term") as st:
        integ, t_events, t_down, group, sink, warm = two_brokers(
            st, LTVSYNC_SHUTDOWN_GRACE="%ds" % GRACE_S)
        kf = st.broker.faults
        sent0 = metric(sink, "ltvsync_sink_writes_sent_total")

        # 2. writes sent, acknowledgements away: the intents stay
        events = [make_event(i, integ) for i in range(N)]
        kf.rtt(2, SEND_RTT_MS)
        b1 = st.broker.bootstrap.split(",")[0]
        st.produce(t_events, [(key_of(e), encode(e)) for e in events], bootstrap=b1)
        wait_until(lambda: metric(sink, "ltvsync_sink_writes_sent_total") >= sent0 + N, 60,
                   "the sink to send the %d writes" % N)
        st.stop(sink, signal.SIGKILL)

        # 3. the next sink learns downstream's partitions and their ends
        # while broker 2 answers, then gets the batch (after its group join,
        # 2 s or more on the mock) and reads downstream back while broker 2
        # does not. It bootstraps from broker 1 alone: its consumer then
        # never connects to broker 2 (events and the group are on broker 1),
        # so the requests it may send to any broker it is connected to
        # (Metadata, FindCoordinator) cannot meet broker 2 turning slow.
        # With both brokers as its bootstrap, a consumer that had picked
        # broker 2 first sent them there just after the round trip rose, and
        # its group join waited past the wait below (once in about 40 suite
        # rounds, on a busy machine).
        kf.rtt(2, 0)
        sink.env["LTVSYNC_KAFKA_BOOTSTRAP_SERVERS"] = b1
        placed = "writes placed by the event_id"   # the log file goes on across restarts
        n0 = len(sink.log_lines(placed))
        st.restart(sink)
        wait_until(lambda: sink.check_alive() or len(sink.log_lines(placed)) > n0,
                   60, "the new sink knowing downstream's partitions")
        kf.rtt(2, READ_RTT_MS)
        wait_until(lambda: sink.check_alive() or
                   metric(sink, "ltvsync_sink_takeover_reads_total") >= 1, 60,
                   "the new sink reading downstream back")
        time.sleep(1.0)   # well into the read: its first requests are out
        t_term = time.monotonic()
        rc = st.stop(sink, signal.SIGTERM, GRACE_S + EXIT_MARGIN_S)
        took = time.monotonic() - t_term
        print("3. SIGTERM during the read back: exit %s after %.1f s (grace %.0f s)"
              % (rc, took, GRACE_S))
        assert rc == 0, rc
        assert not [m for m in SANITIZER_MARKS if m in sink.log()], "sanitizer report"

        # 4. downstream answers again: the next sink finishes the takeover
        kf.rtt(2, 0)
        t0 = time.monotonic()
        st.restart(sink)
        wait_until(lambda: caught_up(st, group, t_events), BOUND_S, "the third sink caught up")
        recover = time.monotonic() - t0
        down = st.consume_all(t_down)
        copies = duplicates(down)
        ids = {m.key.decode() for m in down}
        want = {e["event_id"] for e in events + warm}
        report("SIGTERM of a sink reading downstream back in a takeover, downstream not "
               "answering", trials=1, lost=len(want - ids),
               dups=sum(n - 1 for _, n in copies), violations=0, recover_s=recover,
               note="exit 0 %.1f s after SIGTERM (grace %.0f s)" % (took, GRACE_S))
        assert not copies, "unchanged copies downstream: %s" % copies[:3]
        assert ids == want, (len(want - ids), len(ids - want))
        print("4. the third sink caught up in %.1f s: %d events downstream once each"
              % (recover, len(want)))
        assert st.stop(sink) == 0


if __name__ == "__main__":
    main()
