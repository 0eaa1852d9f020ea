"""End to end: crm-sim's account -> ltvsync.raw -> ltvsync-normalizer ->
ltvsync.events, checked against tests/lib/oracle.py (zoneinfo, decimal).

The raw envelopes are produced here from crm-sim's --dump (sanitized like
the fetcher does), plus late copies of one sale that is charged back (date
only), seen again stale, reverted, charged back again inside the DST gap and
re-fetched; plus hand-made rows at the corners of the LTV dimensions (issue
17: order items as an array or an object, string and float quantities,
empty and numeric money, cuts at 64 and 255 bytes inside a character,
lower-case upsell marks, a lone sourceValue5); plus malformed rows that
must land in the DLQ. Then:
  - the expected events exercise every event type and every LTV-dimension
    case (oracle.uncovered over crm-sim's rows alone), so the comparison
    cannot pass because a rule never ran;
  - every event matches the oracle exactly (multiset, per key), nothing
    missing or unexpected; every event validates against the schema;
  - the DLQ holds exactly the malformed rows (by key: the oracle's own
    dead letters among them), with reasons;
  - SIGTERM drains and exits 0;
  - two replays of ltvsync.raw under new groups give byte-identical events."""
import copy
import json
import os
import re
import signal
import sys
from collections import Counter

import jsonschema

import oracle
from ltharness import Stack, wait_until

INTEG = oracle.Integration("acme-e2e", "konnektive", "America/New_York", "USD")
FETCHED = "2025-03-24T12:00:00.000Z"
LATE = "2025-03-25T08:00:00.000Z"


def integration_doc():
    return {"id": INTEG.id, "brand": INTEG.brand, "api_username": "u",
            "password_ref": "env:LTV_TEST_PW", "account_name": "acme",
            "account_username": "acme", "timezone": INTEG.tz,
            "currency": INTEG.currency, "import_from": "2024-10-25"}


def late_rows(dump):
    """A charged-back, reverted, re-charged history of one sale."""
    sale = next(t for t in dump["transactions"]
                if t["txnType"] == "SALE" and t["responseType"] == "SUCCESS"
                and not t["isChargedback"])
    base = oracle.sanitize(sale)
    steps = [
        dict(isChargedback=1, chargebackAmount=base["totalAmount"],
             chargebackDate="2025-01-10", chargebackReasonCode="4837",
             dateUpdated="2025-01-11 10:00:00"),
        dict(isChargedback=0, dateUpdated=base["dateUpdated"]),  # stale copy
        dict(isChargedback=0, chargebackAmount=base["totalAmount"],
             chargebackDate="2025-01-10", dateUpdated="2025-02-01 09:15:00"),
        dict(isChargedback=1, chargebackAmount=base["totalAmount"],
             chargebackDate="2025-03-09 02:30:00", chargebackReasonCode="4853",
             dateUpdated="2025-03-10 08:00:00"),
        dict(isChargedback=1, chargebackAmount=base["totalAmount"],
             chargebackDate="2025-03-09 02:30:00", chargebackReasonCode="4853",
             dateUpdated="2025-03-10 08:00:00"),  # fetched again
    ]
    out = []
    for step in steps:
        rec = copy.deepcopy(base)
        rec.update(step)
        env = {"integration_id": INTEG.id, "stream": "transactions", "job_id": "late",
               "page": 1, "fetched_at": LATE, "record": rec}
        out.append(("%s/transactions/%s" % (INTEG.id, rec["transactionId"]), env))
    return out


def envelope(stream, rec, job="edge"):
    env = {"integration_id": INTEG.id, "stream": stream, "job_id": job,
           "page": 1, "fetched_at": FETCHED, "record": rec}
    return ("%s/%s/%s" % (INTEG.id, stream, rec[oracle.RECORD_ID[stream]]), env)


def edge_rows(dump):
    """Valid rows at the corners of the issue-17 rules, crm-sim never sends."""
    sale = next(t for t in dump["transactions"]
                if t["txnType"] == "SALE" and t["responseType"] == "SUCCESS"
                and not t["isChargedback"] and not t["chargebackDate"])
    base = oracle.sanitize(sale)
    for k in ("productId", "items"):
        base.pop(k, None)
    base.update({"sourceValue%d" % n: "" for n in range(1, 6)})
    txns = [
        # upsell only by an object-form item's lower-case productType; a
        # recycleNumber as a string; only sourceValue5
        dict(transactionId="EDGE-TXN-1", orderType="NEW_SALE", recycleNumber="2",
             items={"55": {"productId": 55, "productType": "Upsell"}}, sourceValue5="only-five"),
        # a refund without a reason (""), recycleNumber null
        dict(transactionId="EDGE-TXN-2", txnType="REFUND", parentTxnId=sale["transactionId"],
             refundReason="", recycleNumber=None, productId="88"),
        # a 601-byte reason: byte 255 inside "é", cut to 254 bytes
        dict(transactionId="EDGE-TXN-3", txnType="REFUND", parentTxnId=sale["transactionId"],
             refundReason="x" + "Ré" * 200, recycleNumber="abc", sourceValue1="A" * 300),
        # a recycled soft decline
        dict(transactionId="EDGE-TXN-4", responseType="SOFT_DECLINE", recycleNumber=1,
             billingCycleNumber=2, sourceValue1="google", sourceValue3="adset-1"),
        # cycle 3 outranks UPSALE; a non-object item is skipped
        dict(transactionId="EDGE-TXN-5", orderType="UPSALE", billingCycleNumber=3, productId="5",
             items=["junk", {"productId": "77", "productType": "UPSALE"}]),
    ]
    out = [envelope("transactions", dict(base, **t)) for t in txns]
    orders = [
        dict(orderId="EDGE-ORDER-1", customerId=sale["customerId"], campaignId=2, affId="AFF9",
             dateCreated="2025-01-05 10:00:00", dateUpdated="2025-01-06",
             orderType="Upsell-Flow", orderStatus="COMPLETE",
             couponCode="CPN-X" + "ü" * 40,  # 85 bytes, byte 64 inside "ü"
             currencyCode="EUR", totalAmount="12.50", price=None, baseShipping="",
             salesTax="0.75", sourceValue1="", sourceValue3=None,
             items=[{"productId": "SKU-9", "qty": "2", "price": "", "productType": "addon"},
                    {"productId": 12, "qty": 1.0, "price": 3, "productType": None}]),
        dict(orderId="EDGE-ORDER-2", customerId=str(sale["customerId"]),
             dateCreated="2025-01-07 08:00:00", orderType="NEW_SALE", orderStatus="DECLINED",
             couponCode="", items={}, currencyCode="JPY", totalAmount="0", totalDiscount="5",
             sourceValue2="x" * 300, sourceValue5="  "),
        dict(orderId="EDGE-ORDER-3", customerId=sale["customerId"],
             dateCreated="2025-01-08 09:00:00", dateUpdated="2025-01-08 09:30:00",
             orderStatus="COMPLETE", couponCode="SAVE5", totalAmount="10.00",
             items={"20": {"productId": 20, "price": "6.00", "productType": "OFFER"},
                    "10": {"productId": 10, "qty": 3, "price": "4.00", "productType": "upsale"}}),
        dict(orderId="EDGE-ORDER-4", customerId=sale["customerId"], orderStatus="PARTIAL",
             dateCreated="2025-01-09 09:00:00", items=[{"productId": 1}]),
    ]
    return out + [envelope("orders", o) for o in orders]


def bad_order_rows(dump):
    """Order rows the rules dead-letter: {key: word the reason must hold}."""
    o = oracle.sanitize(next(o for o in dump["orders"] if o["orderStatus"] == "COMPLETE"))
    item = {"productId": 101, "qty": 1, "price": "1.00"}
    cases = [("BAD-ORDER-1", {"items": [{"qty": 1}]}, "items"),
             ("BAD-ORDER-2", {"items": [dict(item, productId=n) for n in range(65)]}, "items"),
             ("BAD-ORDER-3", {"totalAmount": "abc"}, "totalAmount"),
             ("BAD-ORDER-4", {"customerId": None}, "customerId"),
             ("BAD-ORDER-5", {"items": {"x": {"productId": "bad id"}}}, "items")]
    rows, words = [], {}
    for oid, change, word in cases:
        key, env = envelope("orders", dict(o, orderId=oid, **change), job="bad")
        rows.append((key, env))
        words[key] = word
    return rows, words


def bad_rows(dump):
    t = oracle.sanitize(dump["transactions"][0])
    rows = []
    for tid, change in (("bad-type", {"txnType": "GIFT"}),
                        ("bad-date", {"dateCreated": "2024-02-30 10:00:00"}),
                        ("bad-amount", {"totalAmount": "1.005"})):
        rec = dict(t, transactionId=tid, **change)
        env = {"integration_id": INTEG.id, "stream": "transactions", "job_id": "bad",
               "page": 1, "fetched_at": FETCHED, "record": rec}
        rows.append(("%s/transactions/%s" % (INTEG.id, tid), json.dumps(env)))
    rows.append(("%s/transactions/broken" % INTEG.id, '{"integration_id": "acme-e2e", "stre'))
    env = {"integration_id": "nobody", "stream": "customers", "fetched_at": FETCHED,
           "record": {"customerId": 1, "dateUpdated": "2024-01-01 00:00:00"}}
    rows.append(("nobody/customers/1", json.dumps(env)))
    return rows


def metric(proc, name):
    status, body = proc.http("/metrics")
    if status != 200:
        return -1
    m = re.search(r"^%s(?:\{\})? (\d+)$" % re.escape(name), body.decode(), re.M)
    return int(m.group(1)) if m else -1


def run_normalizer(st, n_rows, env):
    p = st.start_service("ltvsync-normalizer", env=env)
    st.wait_ready(p, 30)
    wait_until(lambda: p.check_alive() or metric(p, "ltvsync_normalizer_rows_total") >= n_rows,
               120, "normalizer to process %d rows" % n_rows, interval=0.3)
    return p


def canonical(pairs):
    return Counter((k, json.dumps(e, sort_keys=True)) for k, e in pairs)


def compare(want_pairs, got_pairs):
    want, got = canonical(want_pairs), canonical(got_pairs)
    missing, unexpected = want - got, got - want
    if not missing and not unexpected:
        return 0
    by_id = {}
    for (k, s), _ in unexpected.items():
        by_id.setdefault(json.loads(s)["event_id"], [None, None])[1] = json.loads(s)
    for (k, s), _ in missing.items():
        by_id.setdefault(json.loads(s)["event_id"], [None, None])[0] = json.loads(s)
    for eid, (w, g) in list(by_id.items())[:15]:
        if w and g:
            diff = {f: (w.get(f), g.get(f)) for f in set(w) | set(g) if w.get(f) != g.get(f)}
            print("DIFF %s %s: %s" % (eid, w["type"], diff))
        else:
            print("%s %s" % ("MISSING" if w else "UNEXPECTED", json.dumps(w or g)))
    print("%d missing, %d unexpected" % (sum(missing.values()), sum(unexpected.values())))
    return 1


def main():
    schema = json.load(open(os.path.join(os.environ["LTVSYNC_SRC_DIR"],
                                         "schemas", "event.schema.json")))
    validator = jsonschema.Draft202012Validator(schema)
    with Stack("norm-e2e") as st:
        st.start_redis()
        st.start_devbroker(partitions=4)
        sim = st.start_crmsim(customers=60, start="2024-10-25", days=150, seed=7,
                              dump=st.path("dump.json"))
        dump = wait_until(lambda: json.load(open(st.path("dump.json"))), 20, "crm-sim dump")
        sim.check_alive()

        sim_envs = oracle.envelopes_from_dump(dump, INTEG, FETCHED)
        gaps = oracle.uncovered([e for _, e in oracle.Oracle(INTEG).run(sim_envs)], dump)
        assert not gaps, "crm-sim's rows must exercise %s" % gaps
        bad_orders, bad_words = bad_order_rows(dump)
        envs = sim_envs + late_rows(dump) + edge_rows(dump) + bad_orders
        raw = [(k, json.dumps(e, ensure_ascii=False)) for k, e in envs] + bad_rows(dump)
        st.produce("ltvsync.integrations", [(INTEG.id, json.dumps(integration_doc()))])
        st.produce("ltvsync.raw", raw)
        orc = oracle.Oracle(INTEG)
        want = orc.run(envs)
        assert sorted(k for k, _ in orc.dlq) == sorted(bad_words), orc.dlq
        types = Counter(e["type"] for _, e in want)
        print("raw rows %d, expected events %s" % (len(raw), dict(types)))
        for t in ("payment", "refund", "void", "decline", "chargeback", "chargeback_reversal",
                  "customer", "subscription", "order"):
            assert types[t] > 0, "the data set must exercise %s" % t

        p = run_normalizer(st, len(raw), {"LTVSYNC_GROUP_ID": "norm-main"})
        got_msgs = st.consume_all("ltvsync.events")
        got = [(m.key.decode(), json.loads(m.value)) for m in got_msgs]
        bad = compare(want, got)
        invalid = [(e["event_id"], err.message) for _, e in got
                   for err in validator.iter_errors(e)]
        for x in invalid[:10]:
            print("SCHEMA", x)
        bad += len(invalid)
        assert all(b"\n" not in m.value for m in got_msgs)

        dlq = st.consume_json("ltvsync.dlq")
        reasons = sorted(d["reason"] for d in dlq)
        print("dlq:", reasons)
        n_dlq = 5 + len(bad_words)
        assert len(dlq) == n_dlq, reasons
        assert all(d["topic"] == "ltvsync.raw" and d["offset"] >= 0 and d["value"] for d in dlq)
        for word in ("txnType", "dateCreated", "totalAmount", "invalid JSON", "unknown integration"):
            assert any(word in r for r in reasons), (word, reasons)
        by_key = {d["key"]: d["reason"] for d in dlq}
        for key, word in bad_words.items():
            assert key in by_key and word in by_key[key], (key, word, by_key.get(key))
        assert metric(p, "ltvsync_normalizer_dlq_total") == n_dlq
        assert st.stop(p, signal.SIGTERM, 30) == 0, "SIGTERM must drain and exit 0"

        # Each replay appends to ltvsync.events: compare what it appended.
        first = Counter((m.key, m.value) for m in got_msgs)
        seen = {(m.partition, m.offset) for m in got_msgs}
        for n in (1, 2):
            def appended():
                return [m for m in st.consume_all("ltvsync.events")
                        if (m.partition, m.offset) not in seen]
            env = {"LTVSYNC_GROUP_ID": "norm-replay-%d" % n}
            if n == 1:
                r = run_normalizer(st, len(raw), env)
            else:
                # Redis frozen from the start: the normalizer waits (its
                # pipelined lookup times out, it pauses and retries) and
                # produces nothing; once Redis runs again, the lookups that
                # were queued run too, and the retries must not change a thing.
                os.kill(st.redis.pid, signal.SIGSTOP)
                try:
                    r = st.start_service("ltvsync-normalizer", env=env)
                    wait_until(lambda: r.check_alive() or
                               metric(r, "ltvsync_normalizer_redis_pauses_total") >= 1,
                               30, "normalizer to pause without Redis", interval=0.3)
                    assert r.http("/readyz")[0] == 503
                    assert not appended(), "produced events without chargeback state"
                finally:
                    os.kill(st.redis.pid, signal.SIGCONT)
            wait_until(lambda: len(appended()) >= len(got_msgs), 60, "replayed events")
            new = appended()
            seen |= {(m.partition, m.offset) for m in new}
            again = Counter((m.key, m.value) for m in new)
            if again != first:
                print("replay %d differs: %d missing, %d extra" % (
                    n, sum((first - again).values()), sum((again - first).values())))
                bad += 1
            assert st.stop(r, signal.SIGTERM, 30) == 0
        print("events %d, mismatches %d" % (len(got), bad))
        return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
