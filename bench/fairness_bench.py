"""Fairness of one fetcher between a large import and a small one (issue 13,
run by bench/fairness.sh). crm-sim serves two accounts, each 200 ms a
request and 4 in flight (so 20 requests a second each): A imports
BENCH_A_DAYS (365) days of BENCH_A_CUSTOMERS (2,000) customers, B imports
BENCH_B_DAYS (30) days of BENCH_B_CUSTOMERS (200), added BENCH_B_AFTER (5)
seconds after A. The scheduler and one fetcher run with the defaults.

Prints B's time to complete (from its `ltvctl integration add` until
`ltvctl status` shows every stream's days done and no outstanding job)
beside B's time alone on a fresh stack, their ratio (the issue's goal: at
most 1.5), A's progress when B completed, and each account's peak in
flight and limit violations. Not a timed test."""
import datetime
import json
import os
import time
from zoneinfo import ZoneInfo

import ltharness as h

LATENCY_MS, IN_FLIGHT, TZ, PASSWORD = 200, 4, "America/New_York", "bench-pw"


def env_int(name, default):
    return int(os.environ.get(name, default))


def add(st, proc, iid, account, days, today):
    start = today - datetime.timedelta(days=days)
    t0 = time.time()
    r = st.run("ltvctl", ["integration", "add", "--id", iid, "--brand", "konnektive",
                          "--base-url", proc.url, "--api-username", account,
                          "--password-ref", "file:" + st.path("pw"),
                          "--account-name", iid, "--account-username", iid,
                          "--timezone", TZ, "--import-from", start.isoformat(),
                          "--sync-interval", "1h", "--max-rps", "1000",
                          "--max-in-flight", str(IN_FLIGHT)], timeout=60)
    if r.returncode:
        raise h.HarnessError("integration add %s: %s%s" % (iid, r.stdout, r.stderr))
    return t0


def status(st, iid):
    q = st.run("ltvctl", ["status", iid, "--json"], timeout=30)
    return json.loads(q.stdout) if q.returncode == 0 else None


def complete(s):
    return bool(s) and s["outstanding_jobs"] == 0 and all(
        v["days_done"] >= v["days_total"] > 0 for v in s["streams"].values())


def days_done(s):
    return sum(v["days_done"] for v in s["streams"].values()) if s else 0


def days_total(s):
    return sum(v["days_total"] for v in s["streams"].values()) if s else 0


def account_stats(proc, account):
    code, body = h.http_get(proc.url + "/_sim/stats?account=" + account)
    return json.loads(body) if code == 200 else {}


def run(with_a):
    a_days, b_days = env_int("BENCH_A_DAYS", 365), env_int("BENCH_B_DAYS", 30)
    a_cust, b_cust = env_int("BENCH_A_CUSTOMERS", 2000), env_int("BENCH_B_CUSTOMERS", 200)
    today = datetime.datetime.now(ZoneInfo(TZ)).date()
    with h.Stack("fairness-bench") as st:
        st.start_redis()
        st.start_devbroker()
        proc = st.start_crmsim(args=["--account-size", "2=%d" % b_cust], accounts=2,
                               login_id=None, seed=7, customers=a_cust,
                               start=(today - datetime.timedelta(days=a_days)).isoformat(),
                               days=a_days + 1, timezone=TZ, password=PASSWORD,
                               latency_ms=LATENCY_MS, max_in_flight=IN_FLIGHT, max_rps=1000)
        with open(st.path("pw"), "w") as f:
            f.write(PASSWORD)
        st.run("ltvctl", ["topics", "create"], timeout=60)
        env = {"LTVSYNC_LOG_LEVEL": "warn"}
        procs = [st.start_service("ltvsync-scheduler", env), st.start_service("ltvsync-fetcher", env)]
        for p in procs:
            st.wait_ready(p)
        time.sleep(3)  # the fetcher joins its groups, as a long-running one has
        if with_a:
            add(st, proc, "a", "acct-1", a_days, today)
            time.sleep(env_int("BENCH_B_AFTER", 5))
        tb = add(st, proc, "b", "acct-2", b_days, today)

        def b_complete():
            for p in procs:
                p.check_alive()
            return complete(status(st, "b"))
        h.wait_until(b_complete, 1800, "B's import to complete", interval=0.25)
        took = time.time() - tb
        sa = status(st, "a") if with_a else None
        stats = {acct: account_stats(proc, acct) for acct in ("acct-1", "acct-2")}
        return took, sa, stats


def main():
    alone, _, stats_alone = run(False)
    shared, sa, stats = run(True)
    print("one fetcher and one scheduler, defaults; crm-sim %d ms a request, %d in flight "
          "per account" % (LATENCY_MS, IN_FLIGHT))
    print("A: %s days of %s customers; B: %s days of %s customers, added %s s after A"
          % (os.environ.get("BENCH_A_DAYS", 365), os.environ.get("BENCH_A_CUSTOMERS", 2000),
             os.environ.get("BENCH_B_DAYS", 30), os.environ.get("BENCH_B_CUSTOMERS", 200),
             os.environ.get("BENCH_B_AFTER", 5)))
    print("B alone:           %.1f s" % alone)
    print("B beside A:        %.1f s (ratio %.2f; goal <= 1.5)" % (shared, shared / alone))
    print("A when B was done: %d of %d stream-days" % (days_done(sa), days_total(sa)))
    for acct, s in sorted(stats.items()):
        print("%s: peak in flight %s of %d, violations %s"
              % (acct, s.get("peak_in_flight"), IN_FLIGHT, s.get("violations")))
    print("(B alone: acct-2 peak %s, violations %s)"
          % (stats_alone["acct-2"].get("peak_in_flight"), stats_alone["acct-2"].get("violations")))


if __name__ == "__main__":
    main()
