"""The fetchers cannot read ltvsync.integrations for a while (its partitions
have no leader, set through the devbroker's control port) when their jobs
arrive. Before: each job was committed as "integration unknown" and its
claim kept, so those days were not emitted again for hours and the sync
never completed. Now a job whose integration cannot be read is left for a
later attempt (in-process retry with backoff), and a job of an integration
really removed releases its claim. Asserts: the sync completes within
BOUND_S of the topic becoming readable; downstream equals the oracle; no
unchanged duplicate; no limit violation."""
import signal
import sys
import time

from faultrow import report
from ltharness import Stack, wait_until
from pipeline import Pipeline, duplicates, latest

BOUND_S = 120
PARTITIONS = 4


def outstanding(st):
    return st.redis.client().hlen(st.prefix + "i:pipe:outstanding")


def main():
    with Stack("registry-unreadable") as st:
        pl = Pipeline(st, customers=30, days=20, partitions=PARTITIONS)
        want = pl.expected()
        faults = pl.broker.faults
        # The scheduler plans every job, then stops: the jobs wait in Kafka.
        sched = st.start_service("ltvsync-scheduler", pl.env)
        wait_until(lambda: pl.status() and pl.status()["outstanding_jobs"] > 0, 60,
                   "jobs emitted")
        st.stop(sched, signal.SIGTERM, 30)
        claims = outstanding(st)
        for p in range(PARTITIONS):
            faults.leader("ltvsync.integrations", p, -1)
        f1 = st.start_service("ltvsync-fetcher", pl.env)
        f2 = st.start_service("ltvsync-fetcher", pl.env)
        # The fetchers take jobs they cannot resolve (nothing fetched yet).
        wait_until(lambda: "cannot be read now" in f1.log() + f2.log(), 90,
                   "a job whose integration cannot be read")
        unread = sum(l.count("cannot be read now") for l in (f1.log(), f2.log()))
        for p in range(PARTITIONS):
            faults.leader("ltvsync.integrations", p, 1)
        t0 = time.monotonic()
        st.restart(sched)
        norm = st.start_service("ltvsync-normalizer", pl.env)
        sink = st.start_service("ltvsync-sink", pl.env)
        pl.procs = {"ltvsync-scheduler": sched, "ltvsync-fetcher.1": f1,
                    "ltvsync-fetcher.2": f2, "ltvsync-normalizer": norm, "ltvsync-sink": sink}
        pl.wait_synced(timeout=BOUND_S)
        recover = time.monotonic() - t0
        got = pl.wait_downstream(want, timeout=90)
        msgs = pl.downstream()
        dups = duplicates(msgs)
        violations = pl.api.stats()["violations"]
        print("%d claims, %d lookups failed while unreadable; events %d, duplicates %d, "
              "violations %d, synced %.0f s after the topic became readable"
              % (claims, unread, len(got), len(dups), violations, recover))
        report("ltvsync.integrations unreadable when jobs arrive", trials=1,
               lost=len(set(want) - set(latest(msgs))), dups=len(dups),
               violations=violations, recover_s=recover)
        for p in pl.procs.values():
            st.stop(p, signal.SIGTERM, 30)
        return 1 if dups or violations else 0


if __name__ == "__main__":
    sys.exit(main())
