"""Redis frozen (SIGSTOP) for FREEZE_S = 15 s in the middle of a sync, longer
than every lease (a fetcher's in-flight lease is 10 s, the scheduler's
leader lease 2 s in tests), then SIGCONT (issue 11). Two merchants sync on
the cluster (tests/lib/pipeline.py), so a wedge of either integration shows.

Asserts:
  - fail closed: once GRACE_S has passed after the SIGSTOP (requests granted
    just before it may still land), neither crm-sim receives a request until
    the SIGCONT: no CRM call without a lease;
  - the fetchers', the scheduler's and the normalizer's /readyz turn 503
    during the freeze (the normalizer reads Redis between batches when idle; the
    sink's is only reported: it reflects Redis only when a batch needs it)
    and every service is ready again after it;
  - after the SIGCONT both syncs complete within BOUND_S; the latest
    downstream version of every event_id equals the oracle's for both
    merchants; no unchanged duplicate downstream; nothing in the DLQ;
  - 0 limit violations: crm-sim's 429 count, and its peak in flight and
    busiest 1 s window within each integration's max_in_flight / max_rps
    (the Pipeline's crm-sims enforce them);
  - every service still runs and exits 0 on SIGTERM.
When a sync does not complete, the job partitions left behind are printed:
a partition behind with its fetcher silent was the fetcher's paused-partition
wedge after a rebalance (tests/soak/repro_paused_partition.py, fixed in
services/fetcher/dispatch.c; it hit this file once in about ten runs).
"""
import os
import signal
import sys
import time

from faultrow import report
from ltharness import HarnessError, Stack, wait_until
from redisfault import (IN_FLIGHT, RPS, peaks, rows_fetched, totals, violations,
                        wait_both_synced)
from pipeline import Pipeline, duplicates, latest

FREEZE_S = 15.0
GRACE_S = 2.0     # after the SIGSTOP: requests granted before it may still land
# After the SIGCONT: fetchers' leases granted by scripts queued during the
# freeze block their slots up to 10 s, a scheduler command sent into the
# freeze runs when Redis resumes (and a claim left in doubt is settled once
# it answers; 45 s, PENDING_CLAIM_MS, only past 8,192 of them: the bound
# keeps that case), plus the rest of the sync.
BOUND_S = 45 + 60


def readyz(p):
    try:
        return p.http("/readyz")[0]
    except OSError:
        return None


def main():
    t0 = time.monotonic()
    with Stack("redis-freeze") as st:
        pl = Pipeline(st, days=60, latency_ms=20, max_rps=RPS, max_in_flight=IN_FLIGHT)
        other = pl.add_tenant("other", max_rps=RPS, max_in_flight=IN_FLIGHT)
        sims = [pl.api, other.api]
        want = dict(pl.expected(), **other.expected())
        procs = pl.start_services()
        wait_until(lambda: pl.check_alive() or (rows_fetched(pl) > 0 and rows_fetched(other) > 0),
                   60, "the first rows of both merchants", interval=0.5)
        for p in procs.values():
            st.wait_ready(p, 30)
        rows0 = (rows_fetched(pl), rows_fetched(other))
        if pl.synced() or other.synced():
            raise HarnessError("a sync finished before the freeze: slow it down")

        redis = st.redis
        print("%5.1fs SIGSTOP redis (rows so far %s)" % (time.monotonic() - t0, rows0))
        os.kill(redis.pid, signal.SIGSTOP)
        t_stop = time.monotonic()
        try:
            start = totals(sims)
            unready = {n: None for n in procs}   # first 503, seconds after the SIGSTOP
            base = None
            while time.monotonic() - t_stop < FREEZE_S:
                el = time.monotonic() - t_stop
                for n, p in procs.items():
                    if unready[n] is None and readyz(p) == 503:
                        unready[n] = el
                if base is None and el >= GRACE_S:
                    base = totals(sims)
                time.sleep(0.25)
            end = totals(sims)
        finally:
            os.kill(redis.pid, signal.SIGCONT)
        t_cont = time.monotonic()
        frozen_reqs = [e - b for e, b in zip(end, base)]
        print("%5.1fs SIGCONT after %.1fs; CRM requests in the first %.0fs of the freeze: %s, "
              "after them: %s" % (t_cont - t0, t_cont - t_stop, GRACE_S,
                                  [b - a for a, b in zip(start, base)], frozen_reqs))
        for n in sorted(procs):
            print("  %-20s /readyz 503 %s" % (n, "after %.1fs" % unready[n]
                                             if unready[n] is not None else "never"))

        def crm_called():
            pl.check_alive()
            return sum(totals(sims)) > sum(end)
        wait_until(crm_called, BOUND_S, "a CRM request after the SIGCONT", interval=0.1)
        resumed = time.monotonic() - t_cont
        ready_again = {}
        for n, p in procs.items():
            wait_until(lambda: readyz(p) == 200, BOUND_S, "%s /readyz 200 again" % n,
                       interval=0.1)
            ready_again[n] = time.monotonic() - t_cont
        wait_both_synced(st, pl, other, BOUND_S)
        recover = time.monotonic() - t_cont
        print("%5.1fs both synced, %.1fs after the SIGCONT (first CRM request after %.1fs; "
              "ready again after %s)" % (time.monotonic() - t0, recover, resumed,
                                          {n: round(v, 1) for n, v in ready_again.items()}))
        got = pl.wait_downstream(want, timeout=90)
        msgs = pl.downstream()
        dups = duplicates(msgs)
        for d in dups[:10]:
            print("DUPLICATE", d)
        dlq = st.consume_all("ltvsync.dlq")
        for m in dlq[:5]:
            print("DLQ", m.value[:300])
        viol = violations(sims)
        print("stats main %s\nstats other %s" % (pl.api.stats(), other.api.stats()))
        lost = len(set(want) - set(latest(msgs)))
        print("events %d, downstream messages %d, duplicates %d, dlq %d, violations %d, "
              "lost %d, %.0fs" % (len(got), len(msgs), len(dups), len(dlq), viol, lost,
                                  time.monotonic() - t0))
        report("redis SIGSTOP %.0fs mid-sync (longer than every lease)" % FREEZE_S, trials=1,
               lost=lost, dups=len(dups), violations=viol, recover_s=recover,
               note="CRM requests while frozen %d; first request %.1fs after SIGCONT; "
                    "readyz 503: %s; peaks %s"
                    % (sum(frozen_reqs), resumed,
                       ",".join(sorted(n.replace("ltvsync-", "") for n, v in unready.items()
                                       if v is not None)) or "none", peaks(sims)))
        bad = []
        if any(frozen_reqs):
            bad.append("CRM requests while Redis was frozen: %s" % frozen_reqs)
        for n in procs:
            if n != "ltvsync-sink" and unready[n] is None:
                bad.append("%s stayed ready while Redis was frozen" % n)
        if dups or dlq or viol or lost:
            bad.append("dups %d dlq %d violations %d lost %d" % (len(dups), len(dlq), viol, lost))
        for n, p in procs.items():
            rc = st.stop(p, signal.SIGTERM, 30)
            if rc != 0:
                bad.append("%s exited %s on SIGTERM" % (n, rc))
        for b in bad:
            print("FAIL:", b)
        return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
