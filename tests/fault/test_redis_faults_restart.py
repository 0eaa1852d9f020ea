"""Redis killed (-9) in the middle of a sync, down for DOWN_S, and restarted
on the same port with its data: an append-only file fsynced on every write
(ltharness start_redis(appendonly=True)), so every acknowledged write
survives (issue 11). Two merchants sync on the cluster (tests/lib/pipeline.py).

test_redis_faults_lost.py runs the same scenario with a Redis that comes back
EMPTY (run(persist=False) below): every checkpoint, claim, done day,
chargeback state and dedupe hash is gone.

Asserts (both):
  - fail closed: from GRACE_S after the kill until the restart, neither
    crm-sim receives a request (no CRM call without a lease);
  - both syncs complete within BOUND_S of the restart, and the latest
    downstream version of every event_id equals the oracle's for both
    merchants (rows lost = oracle events missing downstream = 0); nothing
    in the DLQ; every service runs throughout and exits 0 on SIGTERM;
  - 0 limit violations: crm-sim's 429s, and its peak in flight / busiest 1 s
    window within the integration's limits (the Pipeline's crm-sims
    enforce them);
  - with its data: the state survived (the scheduler's fencing token did not
    go back, no done day was forgotten) and no unchanged duplicate
    downstream;
  - EMPTY: unchanged duplicates are expected (the sink's dedupe state is
    gone): they are counted and bounded by MAX_COPIES copies of any
    (event_id, content), i.e. at most one extra copy per event.
When a sync does not complete, the job partitions left behind are printed:
a partition behind with its fetcher silent was the fetcher's paused-partition
wedge after a rebalance (tests/soak/repro_paused_partition.py, fixed in
services/fetcher/dispatch.c; it hit test_redis_faults_freeze.py once in
about ten runs).
"""
import collections
import json
import signal
import sys
import time

from faultrow import report
from ltharness import HarnessError, Stack, wait_until
from redisfault import (IN_FLIGHT, RPS, peaks, rows_fetched, totals, violations,
                        wait_both_synced)
from pipeline import Pipeline, content, duplicates, latest

DOWN_S = 5.0
GRACE_S = 1.0     # after the kill: a request granted just before it may still land
# After the restart: a claim whose confirmation the kill cut off is settled
# once Redis answers (the scheduler's claims in doubt; 45 s, PENDING_CLAIM_MS,
# only past 8,192 of them: the bound keeps that case); EMPTY
# re-syncs both accounts from scratch.
BOUND_S = 45 + 60
MAX_COPIES = 2


def redis_state(st):
    """(fencing token, done days over every integration and stream, keys)."""
    c = st.redis.client()
    fence = int(c.get(st.prefix + "fence") or 0)
    done = sum(c.hlen(k) for k in c.scan_iter(st.prefix + "i:*:done:*", count=1000))
    return fence, done, c.dbsize()


def copies(msgs):
    """Counter of how many downstream messages each (event_id, content) has."""
    c = collections.Counter()
    for m in msgs:
        ev = json.loads(m.value)
        c[(ev["event_id"], content(ev))] += 1
    return c


def run(persist):
    what = "with its data (AOF)" if persist else "EMPTY (state lost)"
    t0 = time.monotonic()
    with Stack("redis-restart" if persist else "redis-lost") as st:
        if persist:
            # The Pipeline starts st.start_redis(): make that one persistent.
            plain = st.start_redis
            st.start_redis = lambda **kw: plain(appendonly=True, **kw)
        pl = Pipeline(st, days=60, latency_ms=20, max_rps=RPS, max_in_flight=IN_FLIGHT)
        other = pl.add_tenant("other", max_rps=RPS, max_in_flight=IN_FLIGHT)
        sims = [pl.api, other.api]
        want = dict(pl.expected(), **other.expected())
        procs = pl.start_services()
        # Far enough that some days are done, some dedupe state exists.
        wait_until(lambda: pl.check_alive() or (redis_state(st)[1] >= 20 and
                                                len(st.consume_all("ltv.events.v1")) > 0),
                   60, "some days done and events downstream", interval=0.5)
        if pl.synced() or other.synced():
            raise HarnessError("a sync finished before the fault: slow it down")
        before = redis_state(st)
        down_before = len(st.consume_all("ltv.events.v1"))
        redis = st.redis
        print("%5.1fs kill -9 redis (fence %d, done days %d, keys %d, downstream %d, rows %d/%d)"
              % ((time.monotonic() - t0,) + before + (down_before, rows_fetched(pl),
                                                      rows_fetched(other))))
        redis.popen.send_signal(signal.SIGKILL)
        redis.popen.wait(10)
        t_kill = time.monotonic()
        time.sleep(GRACE_S)
        base = totals(sims)
        while time.monotonic() - t_kill < DOWN_S:
            pl.check_alive()
            time.sleep(0.2)
        down_reqs = [e - b for e, b in zip(totals(sims), base)]
        st.restart(redis)
        st.wait_redis(redis)
        t_up = time.monotonic()
        after = redis_state(st)
        print("%5.1fs redis restarted %s after %.1fs down (fence %d, done days %d, keys %d); "
              "CRM requests while down past %.0fs: %s"
              % ((t_up - t0, what, t_up - t_kill) + after + (GRACE_S, down_reqs)))

        wait_both_synced(st, pl, other, BOUND_S)
        recover = time.monotonic() - t_up
        print("%5.1fs both synced, %.1fs after the restart" % (time.monotonic() - t0, recover))
        got = pl.wait_downstream(want, timeout=90)
        msgs = pl.downstream()
        dups = duplicates(msgs)
        cp = copies(msgs)
        extra = sum(n - 1 for n in cp.values())
        worst = max(cp.values())
        by_type = collections.Counter(json.loads(k[1])["type"] for k, n in cp.items() if n > 1)
        print("downstream messages %d for %d events: %d unchanged duplicates (%d extra copies, "
              "at most %d copies of one), by type %s"
              % (len(msgs), len(got), len(dups), extra, worst, dict(by_type)))
        dlq = st.consume_all("ltvsync.dlq")
        for m in dlq[:5]:
            print("DLQ", m.value[:300])
        viol = violations(sims)
        lost = len(set(want) - set(latest(msgs)))
        print("stats main %s\nstats other %s" % (pl.api.stats(), other.api.stats()))
        print("events %d, dlq %d, violations %d, lost %d, %.0fs"
              % (len(got), len(dlq), viol, lost, time.monotonic() - t0))
        report("redis kill -9, %.0fs down, restarted %s mid-sync" % (DOWN_S, what), trials=1,
               lost=lost, dups=len(dups), violations=viol, recover_s=recover,
               note="CRM requests while down %d; %d extra copies downstream (max %d of one) "
                    "of %d events; peaks %s" % (sum(down_reqs), extra, worst, len(got),
                                                peaks(sims)))
        bad = []
        if any(down_reqs):
            bad.append("CRM requests while Redis was down: %s" % down_reqs)
        if persist and (after[0] < before[0] or after[1] < before[1]):
            bad.append("state lost across the AOF restart: %s -> %s" % (before, after))
        if not persist and after[1] >= before[1]:
            bad.append("the restarted Redis kept its done days: %s -> %s" % (before, after))
        if persist and dups:
            for d in dups[:10]:
                print("DUPLICATE", d)
            bad.append("%d unchanged duplicates" % len(dups))
        if worst > MAX_COPIES:
            bad.append("%d copies of one event (bound %d)" % (worst, MAX_COPIES))
        if dlq or viol or lost:
            bad.append("dlq %d violations %d lost %d" % (len(dlq), viol, lost))
        for n, p in procs.items():
            rc = st.stop(p, signal.SIGTERM, 30)
            if rc != 0:
                bad.append("%s exited %s on SIGTERM" % (n, rc))
        for b in bad:
            print("FAIL:", b)
        return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(run(persist=True))
