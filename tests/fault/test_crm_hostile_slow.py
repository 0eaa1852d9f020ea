"""A CRM that makes the fetchers wait (issue 11): huge Retry-After values,
requests held without an answer, answers dripped a byte a second. The
faulted merchant ("pipe", max_in_flight 3) is faulted on every path from
its first request; a second merchant ("calm", its own crm-sim,
max_in_flight 4) is on the same cluster: 2 fetchers x 4 workers, more than
the sum of the two max_in_flight, as helm/values.yaml tells to size them.

4. retry_after: HTTP 429 with `Retry-After: 999999999`, then HTTP 503 with
   `Retry-After: 9300000000000000000` (past a 64-bit long), RA_HITS
   answers of the 429, then one of each checked for HOLD_MIN_S.
   LTVSYNC_FETCH_RETRY_AFTER_MAX=8s cuts both to 8 s: more than
   DEFER_AFTER_MS (2 s), so, as with the 5 min default, the wait is
   spent in the dispatcher's queue (JOB_DEFER), not in a worker. Asserts
   that calm syncs completely while pipe is refused (bound
   CALM_WHILE_FAULTED_S; measured 8-9 s, as alone), and that a refusal
   holds all of pipe's workers, not just the refused one (HOLD_MIN_S).
5. hang, then drip (1 byte per second), with LTVSYNC_FETCH_TIMEOUT=3s:
   HANG_HITS answers each, the timeout in `ltvctl status` last_error (for
   drip: with some bytes received), then cleared.

Asserts, after the fault is cleared: both merchants synced within
RECOVER_S, downstream equals the oracle of both (latest per id), no
unchanged duplicate, 0 limit violations (a Retry-After answer is not one),
nothing in the DLQ, no secret in any topic or log; one faultrow line per
scenario with the measured recovery.

RECOVER_S = 60 s: once the CRM answers again a deferred job is due within
RETRY_AFTER_MAX (8 s), a request in hand ends within FETCH_TIMEOUT (3 s)
or BACKOFF_MAX (1 s), a requeued job comes back at once; the sync then
takes about 10 s alone (measured after the clear: 6-10 s). An uncapped
Retry-After would not recover in a lifetime, so the bound separates the
two by far.

Starvation (was a known bug): while pipe's CRM hung or dripped, calm's
backfill hardly moved (measured after 90 s: 30-61 CRM requests, 0-14 of 14
days per stream; alone it syncs in ~10 s). Each of pipe's requests held a
worker for FETCH_TIMEOUT, its failed jobs were due again a second later,
and pipe's 15 live jobs, always due, were served before any backfill job
by every free worker. Free workers now go to the integration that runs
the fewest jobs in that fetcher (dispatch.c pick_fair), so calm gets its
share; the scenario asserts calm's sync completes while pipe is still
faulted (bound CALM_WHILE_FAULTED_S; measured: about 20 s after the
start, while pipe's CRM still hung).
"""
import sys
import time

from faultrow import report, run_scenarios
from ltharness import HarnessError, Stack, wait_until
from pipeline import Pipeline, duplicates, latest

RECOVER_S = 60
CALM_WHILE_FAULTED_S = 90   # calm alone syncs in about 10 s
RA_HITS = 3                 # per Retry-After variant (a 429 holds pipe back 8 s)
HANG_HITS = 8               # per variant: one per worker slot of the two fetchers
# A Retry-After holds every worker of the integration, not just the refused
# request: the refusal pushes pipe's rate key (lt_limits) RETRY_AFTER_MAX
# (8 s) ahead. Read from the refusal on, it must be at least HOLD_MIN_S
# ahead within REACT_S (the fetcher's time to read the answer and write the
# key). Before a 503 did this too (only a 429 did), the key was at most one
# request interval ahead (measured: 0.0 s).
HOLD_MIN_S = 4.0
REACT_S = 5.0               # a refusal read, classified and written to Redis within this

ENV = {"LTVSYNC_FETCH_TIMEOUT": "3s", "LTVSYNC_FETCH_BACKOFF_MAX": "1s",
       "LTVSYNC_FETCH_MAX_ATTEMPTS": "3", "LTVSYNC_FETCH_RETRY_AFTER_MAX": "8s"}


def stack(st, crm_limits=True):
    """pipe (faulted, max_in_flight 3) and calm (max_in_flight 4); want.
    crm_limits=False: pipe's crm-sim does not enforce its limits (it counts
    a request it holds as in flight after the fetcher gave up on it)."""
    pl = Pipeline(st, customers=30, days=20, max_in_flight=3, env=ENV, crm_limits=crm_limits)
    calm = pl.add_tenant("calm", customers=21, days=15, max_in_flight=4)
    return pl, calm, dict(pl.expected(), **calm.expected())


def last_errors(pl):
    s = pl.status()
    return {k: v["last_error"] for k, v in s["streams"].items()} if s else {}


def wait_hits(pl, mode, n, err_text, timeout=120, base=None):
    """Waits until crm-sim shaped n more answers with mode (counting from
    base, default: the count at the call) and some stream's last_error
    shows err_text."""
    if base is None:
        base = pl.api.stats()["hostile"][mode]

    def seen():
        pl.check_alive()
        hits = pl.api.stats()["hostile"][mode] - base
        return hits >= n and any(err_text in e for e in last_errors(pl).values()) and hits
    hits = wait_until(seen, timeout, "%d %s answers and %r in status" % (n, mode, err_text),
                      interval=0.5)
    print("%s: %d answers; last errors: %s" % (mode, hits, sorted(set(last_errors(pl).values()))))


def held_back(pl, label):
    """Seconds pipe's rate key stands ahead of Redis's clock after its CRM's
    next refusal: at least HOLD_MIN_S, written within REACT_S of it.

    crm-sim counts the refusal when it sends it; the fetcher moves the key
    only once it has read and classified the answer, so the key is read
    until it moves (a read right after the count can come first on a busy
    machine: 0.003 s ahead, the ordinary rate spacing)."""
    base = pl.api.stats()["hostile"]["retry_after"]
    wait_until(lambda: pl.check_alive() or pl.api.stats()["hostile"]["retry_after"] > base,
               60, "a %s refusal" % label, interval=0.05)
    r = pl.st.redis.client()
    t0 = time.monotonic()
    while True:
        tat = int(r.get(pl.st.prefix + "i:pipe:rate") or 0)
        sec, usec = r.time()
        hold = (tat - (sec * 1000000 + usec)) / 1e6
        if hold >= HOLD_MIN_S or time.monotonic() - t0 > REACT_S:
            break
        time.sleep(0.02)
    print("%s: pipe's rate key %.1f s ahead %.2f s after a refusal was sent (at least %.0f s)"
          % (label, hold, time.monotonic() - t0, HOLD_MIN_S))
    assert hold >= HOLD_MIN_S, (label, hold)
    return hold


def calm_while_faulted(pl, calm, t_start):
    """calm must sync completely while pipe is faulted; returns the time
    from t_start."""
    t0 = time.monotonic()
    try:
        wait_until(lambda: pl.check_alive() or calm.synced(), CALM_WHILE_FAULTED_S,
                   "calm's sync while pipe is faulted", interval=1.0)
    finally:
        s = calm.status()
        print("calm while pipe faulted, after %.0f s: %d CRM requests, days done %s"
              % (time.monotonic() - t0, calm.api.stats()["total"],
                 {k: v["days_done"] for k, v in s["streams"].items()} if s else None))
    assert not pl.synced(), "pipe synced through its faults?"
    return time.monotonic() - t_start


def recover_and_check(pl, calm, want, scenario, note):
    pl.api.clear_faults()
    t0 = time.monotonic()

    def both():
        pl.check_alive()
        s = pl.status()
        if s and s["state"] != "ok":
            raise HarnessError("pipe parked: %s" % s["reason"])
        return pl.synced(s) and calm.synced()
    wait_until(both, RECOVER_S, "both merchants synced after the fault cleared", interval=0.5)
    recover = time.monotonic() - t0
    print("both synced %.1f s after the fault cleared (bound %d s)" % (recover, RECOVER_S))
    got = pl.wait_downstream(want, timeout=90)
    msgs = pl.downstream()
    dups = duplicates(msgs)
    for d in dups[:10]:
        print("DUPLICATE", d)
    violations = pl.api.stats()["violations"] + calm.api.stats()["violations"]
    dlq = pl.st.consume_all("ltvsync.dlq")
    for m in dlq[:5]:
        print("DLQ", m.value[:300])
    leaks = pl.leaks()
    for where, secret in leaks[:10]:
        print("LEAK of a secret (%d chars) in %s" % (len(secret), where))
    print("events %d, duplicates %d, violations %d, dlq %d, leaks %d; crm-sim: %s"
          % (len(got), len(dups), violations, len(dlq), len(leaks),
             {k: v for k, v in pl.api.stats()["hostile"].items() if v}))
    report(scenario, trials=1, lost=len(set(want) - set(latest(msgs))), dups=len(dups),
           violations=violations, recover_s=recover, note=note)
    if dups or violations or dlq or leaks:
        raise HarnessError("duplicates %d, violations %d, dlq %d, leaks %d"
                           % (len(dups), violations, len(dlq), len(leaks)))
    for p in list(pl.procs.values()):
        pl.st.stop(p)


def scenario_retry_after():
    with Stack("crm-hostile-retry-after") as st:
        pl, calm, want = stack(st)
        pl.api.fault(retry_after={"seconds": 999999999, "status": 429})
        t0 = time.monotonic()
        pl.start_services()
        calm_s = calm_while_faulted(pl, calm, t0)
        wait_hits(pl, "retry_after", RA_HITS, "HTTP 429", base=0)
        held = [held_back(pl, "HTTP 429")]
        pl.api.fault(retry_after={"seconds": "9300000000000000000", "status": 503})
        held.append(held_back(pl, "HTTP 503"))
        wait_hits(pl, "retry_after", 1, "HTTP 503")
        recover_and_check(pl, calm, want,
                          "CRM Retry-After 999999999 (429) and 9300000000000000000 (503)",
                          "RETRY_AFTER_MAX 8s; rate key %.0f s / %.0f s ahead after a refusal; "
                          "calm synced %.0f s after the start while refused"
                          % (held[0], held[1], calm_s))


def scenario_hang_drip():
    with Stack("crm-hostile-hang") as st:
        pl, calm, want = stack(st, crm_limits=False)
        pl.api.fault(hang={"max_s": 600})
        t0 = time.monotonic()
        pl.start_services()
        wait_hits(pl, "hang", HANG_HITS, "timed out")
        calm_s = calm_while_faulted(pl, calm, t0)
        pl.api.fault(hang=None, drip={"interval_ms": 1000})
        # curl: "... timed out after 3001 milliseconds with 2 out of 1190 bytes received"
        wait_hits(pl, "drip", HANG_HITS, "out of")
        recover_and_check(pl, calm, want, "CRM holds requests (hang), then drips 1 byte/s",
                          "FETCH_TIMEOUT 3s; %d+ answers each; calm synced %.0f s after the "
                          "start while pipe hung" % (HANG_HITS, calm_s))


def main():
    return run_scenarios([scenario_retry_after, scenario_hang_drip])


if __name__ == "__main__":
    sys.exit(main())
