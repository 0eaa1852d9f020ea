"""End to end: crm-sim -> scheduler -> 2 fetchers -> normalizer -> sink ->
ltv.events.v1, every service a separate process (tests/lib/pipeline.py).

Checks:
  - the latest version of every event_id downstream equals the oracle's
    event (tests/lib/oracle.py over crm-sim's --dump): nothing missing,
    nothing unexpected, same content (occurred_at, local_date, sign, amount
    and every other field; source.fetched_at aside);
  - no duplicate downstream by (event_id, identical content);
  - every downstream message validates against schemas/event.schema.json;
  - no secret of the dump (eCommercePassword, achAccountNumber,
    achRoutingNumber values) nor the CRM password in any topic or log;
  - the data set exercises every event type and the edge cases of
    customers 0..20, and every LTV-dimension case of issue 17
    (oracle.uncovered: order coupons, upsells and items, product_ids from
    either row shape, upsells by either mark, source_values present, absent
    and cut, refund reasons, recycles, chargeback reason codes), so the
    comparison means something;
  - live changes (sync every 3 s, so unchanged rows are re-fetched again and
    again): a chargeback made in crm-sim after the backfill, then its
    reversal, arrive downstream as the oracle fed the row's history expects
    (a new chargeback event, then a chargeback_reversal), still without a
    duplicate of unchanged content;
  - SIGTERM stops every service with exit 0.
"""
import collections
import json
import signal
import sys
import time
import urllib.request

from ltharness import Stack
import oracle
from pipeline import Pipeline, content, duplicates


def mutate(pl, action, tid, date):
    body = json.dumps({"action": action, "transactionId": str(tid), "date": date}).encode()
    req = urllib.request.Request(pl.sim.url + "/_sim/mutate", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        out = json.loads(resp.read())
    assert out.get("result") == "SUCCESS", out
    return out


def expected_after(pl, dump0, changed_rows):
    """The oracle over the backfilled dump, then the rows each mutation
    changed, in order (the history the live sync sees)."""
    integ = pl.integ()
    envs = oracle.envelopes_from_dump(dump0, integ, "1970-01-01T00:00:00.000Z")
    for stream, row in changed_rows:
        rid = row[oracle.RECORD_ID[stream]]
        envs.append(("%s/%s/%s" % (integ.id, stream, rid),
                     {"integration_id": integ.id, "stream": stream, "fetched_at": "x",
                      "record": oracle.sanitize(row)}))
    return oracle.Oracle(integ).run(envs)


def versions(pairs):
    """How many versions of events a sink writes for this sequence: each
    event_id once, plus once more each time its content changes."""
    last, n = {}, 0
    for _, ev in pairs:
        c = content(ev)
        if last.get(ev["event_id"]) != c:
            n += 1
        last[ev["event_id"]] = c
    return n


def changed_rows(old, new):
    """[(stream, row)] of the rows of dump `new` that are new or differ in
    dump `old` (crm-sim rewrites its dump before answering a mutation)."""
    out = []
    for stream in ("transactions", "orders", "customers", "purchases"):
        key = oracle.RECORD_ID[stream]
        was = {str(r[key]): r for r in old[stream]}
        out += [(stream, r) for r in new[stream] if was.get(str(r[key])) != r]
    return out


def live_changes(st, pl):
    """Chargeback then reversal of an untouched sale, through the live sync."""
    dump0 = json.load(open(pl.dump_path))
    touched = {str(t.get("parentTxnId")) for t in dump0["transactions"]}
    sale = next(t for t in dump0["transactions"]
                if t["txnType"] == "SALE" and t["responseType"] == "SUCCESS"
                and not t.get("chargebackDate") and str(t["transactionId"]) not in touched)
    today = pl.today.isoformat()
    history = []
    for action, hhmm in (("chargeback", "00:10:00"), ("revert_chargeback", "00:20:00")):
        before = json.load(open(pl.dump_path))
        mutate(pl, action, sale["transactionId"], "%s %s" % (today, hhmm))
        history += changed_rows(before, json.load(open(pl.dump_path)))
        pairs = expected_after(pl, dump0, history)
        want = oracle.latest_by_id(pairs)
        kinds = {e["type"] for e in want.values() if e["transaction_id"] == str(sale["transactionId"])}
        print("after %s of %s: expected types %s" % (action, sale["transactionId"], sorted(kinds)))
        assert "chargeback" in kinds
        got = pl.wait_downstream(want, timeout=60)
    return got, want, versions(pairs)


def main():
    t0 = time.monotonic()
    with Stack("pipe-e2e") as st:
        pl = Pipeline(st, sync_interval="3s")
        want = pl.expected()
        types = collections.Counter(e["type"] for e in want.values())
        print("expected events %d: %s" % (len(want), dict(types)))
        for t in ("payment", "refund", "void", "decline", "chargeback", "customer",
                  "subscription", "order"):
            assert types[t] > 0, "the account must exercise %s" % t
        gaps = oracle.uncovered(want.values(), pl.dump)
        assert not gaps, "the account must exercise %s" % gaps
        txns = {str(t["transactionId"]): t for t in pl.dump["transactions"]}
        cb_days = [(t["dateCreated"][:10], str(t.get("chargebackDate"))[:10])
                   for t in txns.values() if str(t.get("isChargedback")) == "1"]
        assert any(a != b for a, b in cb_days), "a chargeback weeks after its sale"
        assert any(e["local_date"] != e["occurred_at"][:10] for e in want.values()), \
            "an event whose local day differs from its UTC day"

        pl.start_services()
        pl.wait_synced(timeout=90)
        print("synced after %.0fs" % (time.monotonic() - t0))
        got = pl.wait_downstream(want, timeout=60)
        got, want, n_versions = live_changes(st, pl)
        assert "chargeback_reversal" in {e["type"] for e in got.values()}
        msgs = pl.downstream()
        print("downstream: %d messages (%d versions expected), %d event ids"
              % (len(msgs), n_versions, len(got)))

        bad = int(len(msgs) != n_versions)
        dups = duplicates(msgs)
        for d in dups[:10]:
            print("DUPLICATE", d)
        bad += len(dups)

        validator = pl.validator()
        invalid = [(json.loads(m.value)["event_id"], err.message)
                   for m in msgs for err in validator.iter_errors(json.loads(m.value))]
        for x in invalid[:10]:
            print("SCHEMA", x)
        bad += len(invalid)
        assert all(m.key and m.key.decode() == json.loads(m.value)["event_id"] for m in msgs), \
            "downstream is keyed by event_id"

        dlq = st.consume_all("ltvsync.dlq")
        for m in dlq[:5]:
            print("DLQ", m.value[:300])
        bad += len(dlq)

        leaks = pl.leaks()
        for where, secret in leaks[:10]:
            print("LEAK of a secret (%d chars) in %s" % (len(secret), where))
        bad += len(leaks)
        assert len(pl.secrets()) > 50, "the dump carries secrets to look for"

        for name, p in pl.procs.items():
            rc = st.stop(p, signal.SIGTERM, 30)
            if rc != 0:
                print("%s exited %s on SIGTERM" % (name, rc))
                bad += 1
        print("events %d, problems %d, %.0fs" % (len(got), bad, time.monotonic() - t0))
        return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
