"""The scheduler killed (-9) between its claims and Kafka's acknowledgement
of the jobs: the claims must not keep their days from being emitted again.

The devbroker refuses every Produce (a retriable error, pushed through its
control port) while the scheduler plans, so its jobs wait for an
acknowledgement that does not come and its claims stay in Redis. The
scheduler is killed there, the fault cleared, and the whole pipeline
started. Before the fix those claims looked like jobs in flight for 6 hours
(and the backfill cursor moved past their days): the sync never completed.
Then a claim was "pending" until acknowledged and re-made after
PENDING_CLAIM_MS (45 s): the sync completed 47 s after the restart. Now a
pending claim carries its leader term's fencing token and the next leader
re-makes it at once. Asserts: the sync completes within BOUND_S of the
restart (the old leader's lease, a tick, the sync itself); downstream equals the oracle; no unchanged duplicate; no limit
violation; nothing in the DLQ; no secret leaked.
"""
import signal
import sys
import time

from faultrow import report
from ltharness import Stack, wait_until
from pipeline import Pipeline, duplicates, latest

BOUND_S = 30


def pending_claims(st):
    c = st.redis.client()
    vals = c.hvals(st.prefix + "i:pipe:outstanding")
    return sum(1 for v in vals if b" pending" in v)


def main():
    with Stack("sched-unacked") as st:
        pl = Pipeline(st, customers=30, days=20, latency_ms=5)
        want = pl.expected()
        faults = pl.broker.faults
        for _ in range(20):   # about 2 minutes of refusals at librdkafka's retry pace
            faults.push_errors("Produce", count=256, error="NOT_ENOUGH_REPLICAS")
        sched = st.start_service("ltvsync-scheduler", pl.env)
        n = wait_until(lambda: pending_claims(st), 60, "claims waiting for Kafka")
        print("%d claims pending; kill -9 the scheduler" % n)
        sched.popen.send_signal(signal.SIGKILL)
        sched.popen.wait(10)
        faults.clear()
        t0 = time.monotonic()
        pl.start_services()
        pl.wait_synced(timeout=BOUND_S)
        recover = time.monotonic() - t0
        got = pl.wait_downstream(want, timeout=90)
        msgs = pl.downstream()
        dups = duplicates(msgs)
        dlq = st.consume_all("ltvsync.dlq")
        leaks = pl.leaks()
        violations = pl.api.stats()["violations"]
        print("events %d, duplicates %d, dlq %d, leaks %d, violations %d, synced %.0fs "
              "after the restart" % (len(got), len(dups), len(dlq), len(leaks), violations,
                                     recover))
        report("scheduler -9 before Kafka acked its jobs", trials=1,
               lost=len(set(want) - set(latest(msgs))),
               dups=len(dups), violations=violations, recover_s=recover)
        for p in list(pl.procs.values()):
            st.stop(p, signal.SIGTERM, 30)
        return 1 if dups or dlq or leaks or violations else 0


if __name__ == "__main__":
    sys.exit(main())
