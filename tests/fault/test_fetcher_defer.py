"""One merchant's CRM answers every request with 429 and a long Retry-After;
another merchant on the same cluster must sync as if alone.

Before: a worker slept out each Retry-After (and its backoff) itself, so
the faulted merchant's jobs held every worker and the other merchant's jobs
waited behind them for minutes. Now a wait longer than DEFER_AFTER_MS is
spent in the dispatcher's queue, not in a worker (JOB_DEFER). Asserts: the
calm merchant syncs within CALM_BOUND_S while the other is refused; the
refused one syncs within RECOVER_BOUND_S once its CRM answers again;
oracle-equal downstream for both, no unchanged duplicate, and 429s were
answered only to the faulted account (no limit violation of the calm one).
"""
import signal
import sys
import time

from faultrow import report
from ltharness import wait_until
from ltharness import Stack
from pipeline import Pipeline, duplicates, latest

RETRY_AFTER_S = 20
CALM_BOUND_S = 75       # alone it takes ~15-25 s under ASan on 2 busy cores
RECOVER_BOUND_S = 120   # the last deferral (<= Retry-After) plus the sync


def main():
    env = {"LTVSYNC_FETCH_CONCURRENCY": "2", "LTVSYNC_FETCH_RETRY_AFTER_MAX": "60s"}
    with Stack("fetcher-defer") as st:
        pl = Pipeline(st, customers=30, days=20, env=env)
        pl.api.fault(retry_after={"seconds": RETRY_AFTER_S, "status": 429})
        calm = pl.add_tenant("calm", customers=30, days=20)
        want = dict(pl.expected(), **calm.expected())
        t0 = time.monotonic()
        procs = pl.start_services()
        wait_until(calm.synced, CALM_BOUND_S, "the calm merchant's sync", interval=1.0)
        calm_s = time.monotonic() - t0
        refused = pl.api.stats()["hostile"]["retry_after"]
        print("calm merchant synced in %.0f s while the other got %d refusals" % (calm_s, refused))
        assert refused > 0, "the faulted merchant's CRM was never asked"
        assert not pl.synced(), "the faulted merchant synced through its 429s?"
        pl.api.clear_faults()
        t1 = time.monotonic()
        pl.wait_synced(timeout=RECOVER_BOUND_S)
        recover = time.monotonic() - t1
        got = pl.wait_downstream(want, timeout=90)
        msgs = pl.downstream()
        dups = duplicates(msgs)
        violations = calm.api.stats()["violations"]
        print("events %d, duplicates %d, calm violations %d, faulted merchant synced %.0f s "
              "after its CRM recovered" % (len(got), len(dups), violations, recover))
        report("CRM 429 + Retry-After %d s on one merchant (2 workers x 2 fetchers)"
               % RETRY_AFTER_S, trials=1, lost=len(set(want) - set(latest(msgs))),
               dups=len(dups), violations=violations, recover_s=recover,
               note="other merchant synced in %.0f s meanwhile" % calm_s)
        for p in procs.values():
            st.stop(p, signal.SIGTERM, 30)
        return 1 if dups or violations else 0


if __name__ == "__main__":
    sys.exit(main())
