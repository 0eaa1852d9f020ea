"""SIGTERM mid-sync, as Kubernetes sends it on a rollout: each service in
turn, then all at once. Every service must drain and exit 0 within
LTVSYNC_SHUTDOWN_GRACE (the default, 25 s; the chart's
terminationGracePeriodSeconds is 40), without a sanitizer report; after the
restarts the sync completes, downstream equals the oracle, no unchanged
duplicate, no limit violation.
"""
import signal
import sys
import time

from faultrow import report
from ltharness import HarnessError, Stack, wait_until
from pipeline import Pipeline, duplicates, latest

GRACE_S = 25.0


def rows_fetched(pl):
    s = pl.status()
    return sum(v["rows"] for v in s["streams"].values()) if s else 0


def term(procs):
    """SIGTERM to every proc at once; {name: (exit code, seconds)}."""
    t0 = time.monotonic()
    for p in procs.values():
        p.popen.send_signal(signal.SIGTERM)
    out = {}
    for name, p in procs.items():
        left = max(0.1, GRACE_S + 5 - (time.monotonic() - t0))
        try:
            rc = p.popen.wait(left)
        except Exception:
            p.popen.kill()
            rc = p.popen.wait(10)
            out[name] = ("killed after the grace period", time.monotonic() - t0)
            continue
        out[name] = (rc, time.monotonic() - t0)
    return out


def main():
    with Stack("sigterm") as st:
        pl = Pipeline(st, days=60, latency_ms=40, max_rps=20, max_in_flight=4)
        want = pl.expected()
        procs = pl.start_services()
        wait_until(lambda: pl.check_alive() or rows_fetched(pl) > 0, 60,
                   "the first rows fetched", interval=0.5)
        slow, bad = 0.0, []
        for name in sorted(procs):
            res = term({name: procs[name]})
            (rc, took), = res.values()
            print("SIGTERM %s: exit %s after %.1f s (rows so far %d)"
                  % (name, rc, took, rows_fetched(pl)))
            slow = max(slow, took)
            if rc != 0 or took > GRACE_S:
                bad.append((name, rc, took))
            st.restart(procs[name])
        for p in procs.values():   # a SIGTERM before main() installs its handler kills
            st.wait_ready(p, timeout=60)
        res = term(procs)
        for name, (rc, took) in sorted(res.items()):
            print("SIGTERM all: %s exit %s after %.1f s" % (name, rc, took))
            slow = max(slow, took)
            if rc != 0 or took > GRACE_S:
                bad.append((name, rc, took))
        for p in procs.values():
            st.restart(p)
        t_last = time.monotonic()
        if bad:
            raise HarnessError("not drained within %.0f s with exit 0: %s" % (GRACE_S, bad))
        pl.wait_synced(timeout=120)
        recover = time.monotonic() - t_last
        got = pl.wait_downstream(want, timeout=90)
        msgs = pl.downstream()
        dups = duplicates(msgs)
        violations = pl.api.stats()["violations"]
        sanitizer = pl.sanitizer_reports()
        print("events %d, duplicates %d, violations %d, slowest drain %.1f s, synced %.0f s "
              "after the last restart, sanitizer reports %s"
              % (len(got), len(dups), violations, slow, recover, sanitizer))
        report("SIGTERM of each service, then of all (drain <= %.0f s, exit 0)" % GRACE_S,
               trials=len(procs) + 1, lost=len(set(want) - set(latest(msgs))),
               dups=len(dups), violations=violations, recover_s=recover,
               note="slowest drain %.1f s" % slow)
        for p in procs.values():
            st.stop(p, signal.SIGTERM, 30)
        return 1 if dups or violations or sanitizer else 0


if __name__ == "__main__":
    sys.exit(main())
