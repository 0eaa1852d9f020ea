"""Chargeback state lost with Redis (issue 11): a sale is charged back,
reverted and charged back again through the live sync (crm-sim
/_sim/mutate, sync every 3 s), so downstream holds chargeback 1, its
reversal and chargeback 2 (event ids .../chargeback and .../chargeback/2).
Then Redis is killed (-9) and restarted EMPTY: the normalizer's memory of
that history (P i:{id}:cb:{txn}) is gone, and the re-sync fetches the row
again (flag 1, the second chargebackDate).

Expected (the oracle fed the row's history, as test_pipeline_e2e.py does):
the latest downstream version of every event is unchanged by the state
loss, chargeback 1 keeps its own date. Before the fix the re-fetched row
was taken for a first chargeback, which rewrote chargeback 1 under its id
with the second chargeback's date (a wrong event downstream, the latest
version wins). Now the script finds the partition's state key
(P cbp:TOPIC:PARTITION) gone and answers LOST without writing; the
normalizer reads that partition again from its first offset, rebuilding
every history in order (services/normalizer/main.c rebuild). Asserted: the
normalizer logged the rebuild, nothing missing, unexpected or different
downstream, at most MAX_COPIES copies of any (event_id, content) (the
re-fetch re-emits events; the sink's dedupe state is gone with Redis),
no event downstream going back to an older version (the rebuild reads rows
whose events are downstream only for their state: their events again put
each event's older versions after its latest, a third copy of the latest
when the re-fetch came first), 0 limit violations.
"""
import datetime
import json
import signal
import sys
import time
import urllib.request

import oracle
from faultrow import report
from ltharness import Stack
from pipeline import Pipeline, content, diff, duplicates, latest, regressions

BOUND_S = 45 + 60
MAX_COPIES = 2   # one extra copy of an event at most


def mutate(pl, action, tid, date):
    body = json.dumps({"action": action, "transactionId": str(tid), "date": date}).encode()
    req = urllib.request.Request(pl.sim.url + "/_sim/mutate", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        out = json.loads(resp.read())
    assert out.get("result") == "SUCCESS", out
    return out


def changed_rows(old, new):
    out = []
    for stream in ("transactions", "orders", "customers", "purchases"):
        key = oracle.RECORD_ID[stream]
        was = {str(r[key]): r for r in old[stream]}
        out += [(stream, r) for r in new[stream] if was.get(str(r[key])) != r]
    return out


def expected_after(pl, dump0, history):
    integ = pl.integ()
    envs = oracle.envelopes_from_dump(dump0, integ, "1970-01-01T00:00:00.000Z")
    for stream, row in history:
        rid = row[oracle.RECORD_ID[stream]]
        envs.append(("%s/%s/%s" % (integ.id, stream, rid),
                     {"integration_id": integ.id, "stream": stream, "fetched_at": "x",
                      "record": oracle.sanitize(row)}))
    return oracle.latest_by_id(oracle.Oracle(integ).run(envs))


def untouched_sales(dump):
    touched = {str(t.get("parentTxnId")) for t in dump["transactions"]}
    return [str(t["transactionId"]) for t in dump["transactions"]
            if t["txnType"] == "SALE" and t["responseType"] == "SUCCESS"
            and not t.get("chargebackDate") and str(t["transactionId"]) not in touched]


def cb_events(want, tids):
    return {i: e for i, e in want.items()
            if e["transaction_id"] in tids and e["type"].startswith("chargeback")}


def show(want, tid):
    return sorted("%s %s/%s %s" % (e["event_id"][:8], e["type"], e.get("occurrence"),
                                   e["occurred_at"])
                  for e in cb_events(want, {tid}).values())


def main():
    t0 = time.monotonic()
    with Stack("redis-cbstate") as st:
        pl = Pipeline(st, customers=30, days=20, sync_interval="3s")
        pl.start_services()
        pl.wait_synced(timeout=90)
        pl.wait_downstream(pl.expected(), timeout=60)
        dump0 = json.load(open(pl.dump_path))
        a, b = untouched_sales(dump0)[:2]
        today = pl.today.isoformat()
        yesterday = (pl.today - datetime.timedelta(days=1)).isoformat()
        history = []

        def step(action, tid, when, wait=True):
            """One mutation; waits until the live sync has carried it (the
            sync polls: a state it never saw has no event)."""
            before = json.load(open(pl.dump_path))
            mutate(pl, action, tid, when)
            history.extend(changed_rows(before, json.load(open(pl.dump_path))))
            want = expected_after(pl, dump0, history)
            print("%5.1fs %s of %s at %s: expect %s" % (time.monotonic() - t0, action, tid,
                                                         when, show(want, tid)))
            if wait:
                pl.wait_downstream(want, timeout=60)
            return want

        # A: charged back, reverted and charged back again before the loss.
        step("chargeback", a, yesterday + " 10:00:00")
        step("revert_chargeback", a, yesterday + " 20:00:00")
        step("chargeback", a, today + " 00:30:00")
        # B: charged back before the loss, reverted while Redis is down.
        step("chargeback", b, today + " 00:10:00")

        redis = st.redis
        n_before = len(pl.downstream())
        redis.popen.send_signal(signal.SIGKILL)
        redis.popen.wait(10)
        want = step("revert_chargeback", b, today + " 00:40:00", wait=False)
        st.restart(redis)
        st.wait_redis(redis)
        t_up = time.monotonic()
        print("%5.1fs redis restarted EMPTY" % (t_up - t0))
        pl.wait_synced(timeout=BOUND_S)
        recover = time.monotonic() - t_up
        mine = cb_events(want, {a, b})
        assert len(mine) == 5, mine
        # Every row has been fetched again, B's reversal with them: give the
        # live sync time to carry it, then wait for the pipeline to settle.
        try:
            pl.wait_downstream(want, timeout=30)
        except AssertionError as e:
            print("downstream never matched: %s" % e)
        pl.wait_quiet("ltv.events.v1", settle=5.0, timeout=120)
        msgs = pl.downstream()
        got = latest(msgs)
        print("%5.1fs re-synced %.1fs after the restart; downstream %d -> %d messages"
              % (time.monotonic() - t0, recover, n_before, len(msgs)))
        for m in msgs:
            ev = json.loads(m.value)
            if ev["event_id"] in mine:
                print("  %d/%-3d %s %s/%s %s" % (m.partition, m.offset, ev["event_id"][:8],
                                                 ev["type"], ev.get("occurrence"),
                                                 ev["occurred_at"]))
        missing, unexpected, changed = diff(want, got)
        wrong = [i for i in set(changed) | set(missing) if i in mine]
        dups = duplicates(msgs)
        print("after the state loss: %d missing, %d unexpected, %d different (%d of them "
              "chargeback events of A and B), %d unchanged duplicates"
              % (len(missing), len(unexpected), len(changed), len(wrong), len(dups)))
        report("redis restarted EMPTY: chargeback history lost", trials=1, lost=len(missing),
               dups=len(dups), violations=pl.api.stats()["violations"], recover_s=recover,
               note="%d missing, %d rewritten chargeback events" % (len(missing), len(changed)))
        worst = max([n for _, n in dups] or [1])
        for eid, n in dups:
            if n > MAX_COPIES:  # where each copy sits, to tell the writers apart
                evs = [(m, json.loads(m.value)) for m in msgs]
                at = ["%d/%d %s" % (m.partition, m.offset, content(ev))
                      for m, ev in evs if ev["event_id"] == eid]
                print("%d copies of %s:\n  %s" % (n, eid, "\n  ".join(at)))
        rebuilt = pl.procs["ltvsync-normalizer"].log_lines("chargeback state lost")
        back = regressions(msgs)
        print("normalizer: %d partition(s) read again; at most %d copies of one event; "
              "%d event(s) went back to an older version" % (len(rebuilt), worst, len(back)))
        for p in pl.procs.values():
            st.stop(p, signal.SIGTERM, 30)
        assert rebuilt, "the normalizer never noticed the lost chargeback state"
        assert worst <= MAX_COPIES, worst
        assert not back, back
        assert pl.api.stats()["violations"] == 0
        return 1 if missing or unexpected or changed else 0


if __name__ == "__main__":
    sys.exit(main())
