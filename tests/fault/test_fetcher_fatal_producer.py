"""A fatal error of the fetcher's idempotent producer (issue 11, defect 1,
second trigger): the fetcher stops with exit code 1 and never checkpoints
past a row Kafka did not take.

Before the fix every send failed at once after such an error, every page was
"emitted" with 0 rows and every backfill day was marked done: the sync
"completed" with the rest of the account missing.

How the fatal error is provoked (librdkafka 2.0.2, from the mock cluster):
one Produce answered OUT_OF_ORDER_SEQUENCE_NUMBER. For the request at the
head of a partition's in-flight queue (base sequence == next expected ack)
rd_kafka_handle_idempotent_Produce_error() calls
rd_kafka_idemp_set_fatal_error(): "sequence desynchronization with broker".
Tried against the devbroker with an idempotent confluent_kafka producer:
OUT_OF_ORDER_SEQUENCE_NUMBER is fatal at once; InitProducerId answered
PRODUCER_FENCED (or INVALID_PRODUCER_EPOCH) is fatal too
(rd_kafka_idemp_check_error: "_FENCED"), but a running non-transactional
producer never asks for a producer id again (its epoch bumps are local);
Produce answered UNKNOWN_PRODUCER_ID (epoch bump and retry),
INVALID_PRODUCER_EPOCH or PRODUCER_FENCED (that batch fails, the producer
goes on) or DUPLICATE_SEQUENCE_NUMBER (taken as delivered) are not fatal.

The pushed error goes to the next Produce request of any client, so only the
scheduler (idle once its jobs are acknowledged: the sync interval is 1 h)
and ONE fetcher run when it is pushed; the normalizer and the sink start
afterwards.

  1. Fatal mid-fetch: while the fetcher writes rows, one Produce gets
     OUT_OF_ORDER_SEQUENCE_NUMBER. The fetcher must exit 1 within EXIT_S,
     having logged the fatal error; at that moment days are still left
     (the old code marked them all done) and every (stream, day) recorded
     done has every CRM row of that day in ltvsync.raw (campaigns aside:
     crm-sim returns every campaign for every day).
  2. Fatal at start: the fetcher restarted while InitProducerId answers
     PRODUCER_FENCED must exit 1 as well, with no more day that has rows
     recorded done (a day without CRM rows needs no producer and may
     finish before the exit).
  3. Recovery: the fetcher restarted with a healthy cluster, the normalizer
     and the sink started: the sync completes within BOUND_S and the latest
     downstream version of every event equals the oracle (nothing missing);
     no unchanged duplicate, no dead letter, no CRM limit violation, no
     secret in a topic or log, no sanitizer report.
"""
import signal
import sys
import time

from faultrow import report
from ltharness import HarnessError, Stack, wait_until
from pipeline import INTEG_ID, Pipeline, duplicates
import oracle

EXIT_S = 60      # from the pushed error to the fetcher's exit
BOUND_S = 90     # from the last restart to downstream == oracle
STREAMS = ("transactions", "orders", "customers", "purchases", "campaigns")


def rows_fetched(pl):
    s = pl.status()
    return sum(v["rows"] for v in s["streams"].values()) if s else 0


def done_days(st):
    """{(stream, day): rows} recorded done in Redis."""
    r = st.redis.client()
    out = {}
    for s in STREAMS:
        for day, val in r.hgetall("%si:%s:done:%s" % (st.prefix, INTEG_ID, s)).items():
            out[(s, day.decode())] = int(val.split()[0])
    return out


def crm_ids_by_day(dump):
    """{(stream, day): {record ids}} of the CRM's rows by dateCreated day
    (CRM wall times are the account's local time)."""
    out = {}
    for stream in STREAMS:
        rows = dump.get(stream) or []
        if isinstance(rows, dict):
            rows = list(rows.values())
        for row in rows:
            rid = oracle.the_id(row.get(oracle.RECORD_ID[stream]))
            day = (row.get("dateCreated") or "")[:10]
            out.setdefault((stream, day), set()).add(rid)
    return out


def raw_ids(st):
    """{stream: {record ids}} in ltvsync.raw (keys integration/stream/id)."""
    out = {}
    for m in st.consume_all("ltvsync.raw"):
        integ, stream, rid = m.key.decode().split("/", 2)
        if integ == INTEG_ID:
            out.setdefault(stream, set()).add(rid)
    return out


def check_done_days_written(st, pl, what):
    """Every (stream, day) recorded done has all its CRM rows in raw.
    Returns (days done, days in total)."""
    done = done_days(st)
    crm = crm_ids_by_day(pl.dump)
    raw = raw_ids(st)
    bad = []
    for (stream, day), rows in sorted(done.items()):
        if stream == "campaigns":
            continue
        want = crm.get((stream, day), set())
        missing = want - raw.get(stream, set())
        if missing:
            bad.append("%s %s: %d of %d rows not in raw (recorded done with %d)"
                       % (stream, day, len(missing), len(want), rows))
    for b in bad[:10]:
        print("DONE BUT NOT WRITTEN", b)
    if bad:
        raise HarnessError("%s: %d days recorded done with rows missing from ltvsync.raw"
                           % (what, len(bad)))
    s = pl.status()
    total = sum(v["days_total"] for v in s["streams"].values())
    return len(done), total


def wait_exit(proc, timeout, what):
    try:
        return proc.popen.wait(timeout)
    except Exception:
        raise HarnessError("%s: the fetcher did not exit within %.0f s; log tail:\n%s"
                           % (what, timeout, "\n".join(proc.log().splitlines()[-30:])))


def main():
    t0 = time.monotonic()

    def log(msg):
        print("%6.1fs %s" % (time.monotonic() - t0, msg))
        sys.stdout.flush()

    with Stack("fetcher-fatal") as st:
        # 20 days x 5 streams at 6 CRM requests/s: the backfill lasts ~20 s.
        pl = Pipeline(st, customers=30, days=20, max_rps=6, max_in_flight=4)
        want = pl.expected()
        faults = pl.broker.faults
        sched = st.start_service("ltvsync-scheduler", pl.env)
        pl.procs["ltvsync-scheduler"] = sched
        wait_until(lambda: sched.check_alive() or sched.log_lines("emitted"), 60,
                   "the scheduler's jobs acknowledged")
        fetcher = st.start_service("ltvsync-fetcher", pl.env)
        wait_until(lambda: fetcher.check_alive() or rows_fetched(pl) > 0, 60,
                   "the first rows fetched", interval=0.2)
        log("fetching (%d rows); one Produce gets OUT_OF_ORDER_SEQUENCE_NUMBER"
            % rows_fetched(pl))

        # 1. fatal mid-fetch
        faults.push_errors("Produce", ["OUT_OF_ORDER_SEQUENCE_NUMBER"])
        t_push = time.monotonic()
        rc = wait_exit(fetcher, EXIT_S, "fatal mid-fetch")
        exit_s = time.monotonic() - t_push
        faults.clear()
        text = fetcher.log()
        log("fetcher exited %s, %.1f s after the push" % (rc, exit_s))
        for line in text.splitlines():
            if "fatal" in line.lower():
                print("  |", line[:300])
        if rc != 1:
            raise HarnessError("fatal mid-fetch: the fetcher exited %s, not 1" % rc)
        if "kafka producer failed fatally" not in text or \
                "out of order sequence number" not in text.lower():
            raise HarnessError("fatal mid-fetch: the fetcher did not log the fatal error")
        ndone, total = check_done_days_written(st, pl, "after the fatal error")
        done_before = done_days(st)
        log("at exit: %d of %d stream-days recorded done, each with all its rows in raw"
            % (ndone, total))
        if ndone >= total:
            raise HarnessError("every day was recorded done before the sync could finish")

        # 2. fatal at start: the producer id is refused with PRODUCER_FENCED
        faults.push_errors("InitProducerId", ["PRODUCER_FENCED"])
        st.restart(fetcher)
        t_start = time.monotonic()
        rc2 = wait_exit(fetcher, EXIT_S, "fatal at start")
        start_s = time.monotonic() - t_start
        faults.clear()
        text2 = fetcher.log()[len(text):]
        log("restarted into a fenced producer id: exited %s after %.1f s" % (rc2, start_s))
        for line in text2.splitlines():
            if "fatal" in line.lower() or "fenced" in line.lower():
                print("  |", line[:300])
        if rc2 != 1:
            raise HarnessError("fatal at start: the fetcher exited %s, not 1" % rc2)
        check_done_days_written(st, pl, "after the fatal start")
        # A job whose day has no CRM rows needs no producer: it may finish
        # before the fenced producer id stops the fetcher (seen in CI: one
        # transactions day, rows=0 pages=0). A day with rows may not.
        crm = crm_ids_by_day(pl.dump)
        done2 = done_days(st)
        fresh = sorted(set(done2) - set(done_before))
        with_rows = [(s, d) for s, d in fresh if done2[(s, d)] or crm.get((s, d))]
        log("fatal at start: %d more stream-days recorded done, %d of them with CRM rows"
            % (len(fresh), len(with_rows)))
        if with_rows:
            raise HarnessError("fatal at start: days with rows recorded done: %s"
                               % with_rows[:5])

        # 3. recovery with a healthy cluster
        st.restart(fetcher)
        pl.procs["ltvsync-fetcher.1"] = fetcher
        for name in ("ltvsync-normalizer", "ltvsync-sink"):
            pl.procs[name] = st.start_service(name, pl.env)
        t_restart = time.monotonic()
        pl.wait_synced(timeout=BOUND_S)
        got = pl.wait_downstream(want, timeout=max(BOUND_S - (time.monotonic() - t_restart), 10))
        recover = time.monotonic() - t_restart - 2.0   # wait_downstream's 2 s check
        check_done_days_written(st, pl, "after the sync")
        msgs = pl.downstream()
        dups = duplicates(msgs)
        dlq = st.consume_all("ltvsync.dlq")
        leaks = pl.leaks()
        violations = pl.api.stats()["violations"]
        san = pl.sanitizer_reports()
        log("synced and downstream == oracle %.1f s after the restart: events %d, "
            "duplicates %d, dlq %d, leaks %d, violations %d, sanitizer reports %s"
            % (recover, len(got), len(dups), len(dlq), len(leaks), violations, san))
        report("fetcher producer fatal error (OUT_OF_ORDER_SEQUENCE_NUMBER mid-fetch, "
               "PRODUCER_FENCED at start)", trials=2, lost=0, dups=len(dups),
               violations=violations, recover_s=recover,
               note="exit 1 after %.1f s and %.1f s; %d of %d stream-days done at the fatal "
               "error" % (exit_s, start_s, ndone, total))
        for name, p in pl.procs.items():
            rc = st.stop(p, signal.SIGTERM, 30)
            if rc != 0:
                raise HarnessError("%s exited %s after SIGTERM" % (name, rc))
        if dups or dlq or leaks or violations or san:
            raise HarnessError("duplicates %d, dlq %d, leaks %d, violations %d, sanitizer %s"
                               % (len(dups), len(dlq), len(leaks), violations, san))
    return 0


if __name__ == "__main__":
    sys.exit(main())
