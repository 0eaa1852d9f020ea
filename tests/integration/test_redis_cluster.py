"""The whole pipeline on a Redis Cluster (issue 13): 3 masters with one
replica each (tests/lib/rcluster.py, 6 redis-server processes), every
service and ltvctl given the seed list as LTVSYNC_REDIS_URL
(Pipeline(redis_cluster=True)). Two merchants: the main integration
("pipe", 60 days) and a small second one whose id is picked so that its
hash tag {ID} lands on another master than {pipe} (CLUSTER KEYSLOT).

Plain part, no fault: the second merchant, alone at first, syncs on the
cluster and its events downstream equal the oracle's. (Alone: its backfill
jobs queued behind the main one's wait for most of them, so "completes
first" would depend on the order of the scheduler's first pass.) Then the
main integration is added, and a quarter into its backfill the master
serving {pipe}'s slot is killed with SIGKILL and its replica takes over
(node timeout 2 s); the second merchant's live runs (every 5 s) go on
before and after.
Asserts:
  - fail closed: from GRACE_S after the kill until a surviving node flags
    the master failed, the main merchant's crm-sim receives no request (no
    CRM call without a lease; its lease and rate keys are on that slot);
  - both syncs complete within BOUND_S of the failover, and the latest
    downstream version of every event_id equals the oracle's for both
    merchants (rows lost = 0); the second merchant keeps syncing after the
    failover (its live runs, every 5 s, reach its crm-sim again);
  - no unchanged duplicate downstream (same event_id and content,
    fetched_at aside): the sink's dedupe state survived on the replicas;
  - 0 limit violations (crm-sim's 429s, peaks within the limits); nothing
    in the DLQ; no secret in any topic or log (redis logs included);
  - the cluster layout (common/lt_rkeys.h): every key of the run carries a
    hash tag, none has the one-Redis name P i:ID:..., and the main
    merchant's keys are on the promoted replica;
  - every service runs throughout and exits 0 on SIGTERM.
"""
import signal
import sys
import time

from faultrow import report
from ltharness import HarnessError, Stack, wait_until
from redisfault import IN_FLIGHT, RPS, peaks, totals, violations, wait_both_synced
from pipeline import INTEG_ID, Pipeline, content, duplicates, latest

GRACE_S = 1.0      # after the kill: a request granted just before it may still land
FAILOVER_S = 20    # node timeout 2 s: flagged after 2-4 s, a replica elected within 2 s more
# After the failover: a scheduler claim whose confirmation the kill cut off
# is settled once its master answers (45 s, PENDING_CLAIM_MS, only past
# 8,192 claims in doubt: the bound keeps that case), then
# the rest of the backfill.
BOUND_S = 45 + 30
# Ids for the second merchant, the first whose slot is on another master.
CANDIDATES = ("other", "calm", "second", "tenant", "acme", "shop", "beta", "zeta")


def days(tenant):
    """(days done, days total) over the streams of ltvctl status."""
    s = tenant.status()
    if not s:
        return 0, 0
    return (sum(v["days_done"] for v in s["streams"].values()),
            sum(v["days_total"] for v in s["streams"].values()))


def matches(want, got):
    return got.keys() == want.keys() and all(content(want[i]) == content(got[i]) for i in want)


def main():
    t0 = time.monotonic()
    bad = []
    with Stack("redis-cluster") as st:
        pl = Pipeline(st, days=60, latency_ms=20, max_rps=RPS, max_in_flight=IN_FLIGHT,
                      redis_cluster=True, add_integration=False)
        rc = pl.cluster
        print("%5.1fs cluster up in %.1fs: %s\n%s" % (time.monotonic() - t0, rc.startup_s,
                                                     rc.url, rc.describe()))
        victim = rc.master_of(pl.integ_key("rate"))
        tid = next((c for c in CANDIDATES if rc.master_of("{%s}" % c) != victim), None)
        if tid is None:
            raise HarnessError("no candidate id off master %d" % victim)
        print("{%s} slot %d on %d; {%s} slot %d on %d; {g} on %d; dedupe tags {0}..{f} on %s"
              % (INTEG_ID, rc.keyslot("{%s}" % INTEG_ID), victim, tid, rc.keyslot("{%s}" % tid),
                 rc.master_of("{%s}" % tid), rc.master_of("{g}"),
                 sorted({rc.master_of("{%x}" % n) for n in range(16)})))
        other = pl.add_tenant(tid, customers=15, days=14, max_rps=RPS, max_in_flight=IN_FLIGHT,
                              sync_interval="5s")
        sims = [pl.api, other.api]
        want_main, want_other = pl.expected(), other.expected()
        want = dict(want_main, **want_other)
        procs = pl.start_services()

        # Plain part: the second merchant alone syncs on the cluster, no fault.
        def other_done():
            pl.check_alive()
            return other.synced() and matches(want_other, latest(pl.downstream()))
        wait_until(other_done, 60, "the second merchant synced, downstream == its oracle",
                   interval=0.5)
        plain_dups = duplicates(pl.downstream())
        print("%5.1fs plain part: %s synced on the cluster, %d events == oracle, %d duplicates"
              % (time.monotonic() - t0, tid, len(want_other), len(plain_dups)))
        if plain_dups:
            bad.append("%d duplicates without a fault" % len(plain_dups))

        pl.add_integration()

        def quarter():
            pl.check_alive()
            d, t = days(pl)
            return t > 0 and d >= t // 4
        wait_until(quarter, 60, "a quarter of the main merchant's days done", interval=0.5)
        if pl.synced():
            raise HarnessError("the main sync finished before the fault: slow it down")

        done, total = days(pl)
        print("%5.1fs kill -9 master %d (main %d/%d days done, downstream %d messages)"
              % (time.monotonic() - t0, victim, done, total, len(pl.downstream())))
        rc.kill_master(victim)
        t_kill = time.monotonic()
        time.sleep(GRACE_S)   # the grace window itself, not a wait for a condition
        base = totals(sims)
        at_fail = []
        fo = rc.wait_failover(victim, FAILOVER_S, on_fail=lambda: at_fail.append(totals(sims)))
        t_fo = t_kill + fo.ok_s
        down = [f - b for f, b in zip(at_fail[0], base)]
        print("%5.1fs failover: %d flagged failed %.1fs after the kill, %d serves its slots, "
              "cluster ok %.1fs after the kill; CRM requests from %.0fs after the kill until "
              "flagged: main %d, %s %d\n%s"
              % (t_fo - t0, victim, fo.fail_s, fo.new_port, fo.ok_s, GRACE_S, down[0], tid,
                 down[1], rc.describe()))
        print("%5.1fs main %d/%d days done after the failover (%d at the last status "
              "before the kill)" % ((time.monotonic() - t0,) + days(pl) + (done,)))
        if down[0]:
            bad.append("%d CRM requests of %s while its slot had no master" % (down[0], INTEG_ID))

        wait_both_synced(st, pl, other, BOUND_S)
        recover = time.monotonic() - t_fo
        print("%5.1fs both synced, %.1fs after the failover (bound %d s)"
              % (time.monotonic() - t0, recover, BOUND_S))
        after_fo = totals(sims)[1]
        wait_until(lambda: pl.check_alive() or totals(sims)[1] > after_fo, 30,
                   "the second merchant's live sync to reach its CRM after the failover",
                   interval=0.5)
        got = pl.wait_downstream(want, timeout=60)
        msgs = pl.downstream()
        dups = duplicates(msgs)
        for d in dups[:10]:
            print("DUPLICATE", d)
        lost = len(set(want) - set(latest(msgs)))
        dlq = st.consume_all("ltvsync.dlq")
        for m in dlq[:5]:
            print("DLQ", m.value[:300])
        leaks = pl.leaks()
        for where, secret in leaks[:10]:
            print("LEAK of a secret (%d chars) in %s" % (len(secret), where))
        viol = violations(sims)

        keys = pl.redis_keys()
        untagged = sorted(k for k in keys if "{" not in k)
        one_redis = sorted(k for k in keys if k.startswith(st.prefix + "i:")
                           and not k.startswith(st.prefix + "i:{"))
        mine = [k for k in keys if k.startswith(pl.integ_key(""))]
        here = rc.node(fo.new_port).exists(*mine) if mine else 0
        print("keys %d (on masters %s): untagged %d %s, one-Redis names %d %s; %s's %d, on %d: %d"
              % (len(keys), {p: rc.node(p).dbsize() for p in rc.masters()}, len(untagged),
                 untagged[:5], len(one_redis), one_redis[:5], INTEG_ID, len(mine), fo.new_port,
                 here))
        if untagged or one_redis:
            bad.append("keys outside the cluster layout: %d untagged, %d one-Redis names"
                       % (len(untagged), len(one_redis)))
        if not mine or here != len(mine):
            bad.append("%s's keys: %d, %d of them on the promoted replica %d"
                       % (INTEG_ID, len(mine), here, fo.new_port))

        print("stats main %s\nstats %s %s" % (pl.api.stats(), tid, other.api.stats()))
        print("events %d, downstream messages %d, duplicates %d, lost %d, dlq %d, leaks %d, "
              "violations %d, %.0fs" % (len(got), len(msgs), len(dups), lost, len(dlq),
                                        len(leaks), viol, time.monotonic() - t0))
        report("Redis Cluster master kill -9 mid-sync, replica promoted", trials=1, lost=lost,
               dups=len(dups), violations=viol, recover_s=recover,
               note="failover %.1f s (flagged %.1f s); peaks %s" % (fo.ok_s, fo.fail_s,
                                                                   peaks(sims)))
        if dups or lost or dlq or leaks or viol:
            bad.append("duplicates %d lost %d dlq %d leaks %d violations %d"
                       % (len(dups), lost, len(dlq), len(leaks), viol))
        for name, p in procs.items():
            rc_ = st.stop(p, signal.SIGTERM, 30)
            if rc_ != 0:
                bad.append("%s exited %s on SIGTERM" % (name, rc_))
        for b in bad:
            print("FAIL:", b)
        print("%s in %.0f s" % ("FAILED" if bad else "passed", time.monotonic() - t0))
        return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
