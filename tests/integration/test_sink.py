"""ltvsync-sink against a real devbroker and redis-server, as a separate process.

Checks, in one stack:
  1. valid events of every type go downstream keyed by event_id, bytes intact;
  2. the same events produced again (re-fetched: new fetched_at), with the
     sink killed by SIGKILL in between, are not written again; changed
     events (another local_date) are written again under the same id;
  3. malformed JSON, missing fields, wrong signs, bad dates, non-UTF-8 bytes,
     tombstones and schema mutations (verdict from python3-jsonschema on
     schemas/event.schema.json) go to the DLQ with a reason; the sink goes on;
  4. Redis killed: the sink pauses (not ready, nothing written), and after
     Redis is back everything produced meanwhile arrives;
  5. SIGTERM drains: exit 0 with the group's offsets at the end of the topic.
Throughout: no duplicate downstream by (event_id, content without fetched_at).
"""
import copy
import json
import os
import signal
import sys
import time
import uuid

from ltharness import HarnessError, SRC_DIR, Stack, unique_name, wait_until

NS = uuid.UUID("6ba7b810-9dad-11d1-80b4-00c04fd430c8")
TYPES = ["payment", "refund", "void", "chargeback", "chargeback_reversal",
         "decline", "customer", "subscription", "order"]


def make_event(i, integration, shift_days=0, fetched="2024-02-01T00:00:00Z"):
    """Event i (type cycles), shaped like the normalizer's output."""
    typ = TYPES[i % len(TYPES)]
    day = 1 + (i // 60) % 27 + shift_days
    hh, mm = 6 + (i % 60) // 10, (i * 7) % 60  # 06:00Z .. 11:59Z, New York -5h
    ev = {
        "schema": "ltv.event.v1",
        "event_id": str(uuid.uuid5(NS, "%s/%d/%s" % (integration, i, typ))),
        "type": typ, "subtype": None, "integration_id": integration,
        "brand": "konnektive", "customer_id": "c%d" % (i % 40),
        "order_id": "o%d" % i, "transaction_id": "t%d" % i,
        "occurred_at": "2024-01-%02dT%02d:%02d:00Z" % (day, hh, mm),
        "local_date": "2024-01-%02d" % day,
        "local_time": "%02d:%02d:00" % (hh - 5, mm),
        "timezone": "America/New_York", "date_precision": "second",
        "amount_minor": 1000 + i, "currency": "USD", "billing_cycle": 1,
        "campaign_id": "3", "product_ids": ["7"], "affiliate_id": None,
        "source": {"stream": "transactions", "record_id": "t%d" % i,
                   "fetched_at": fetched, "date_updated": "2024-01-%02d 01:00:00" % day},
    }
    if typ == "payment":
        ev["subtype"] = "initial"
    if typ in ("refund", "void", "chargeback"):
        ev["amount_minor"] = -ev["amount_minor"]
    if typ in ("chargeback", "chargeback_reversal"):
        ev["occurrence"] = 1
    if typ == "decline":
        ev.update(subtype="soft", amount_minor=0, attempted_minor=1000 + i)
    if typ in ("customer", "subscription"):
        ev.update(amount_minor=None, currency=None, transaction_id=None)
        ev["source"]["stream"] = "customers" if typ == "customer" else "purchases"
    if typ == "subscription":
        ev.update(subscription_id="p%d" % i, status="ACTIVE", next_bill_date=None)
    if typ not in ("customer", "subscription", "order"):
        ev["recycle_number"] = i % 3
    if typ == "refund":
        ev["refund_reason"] = "Customer request"
    if typ == "order":
        ev.update(amount_minor=None, transaction_id=None, order_type="NEW_SALE",
                  order_status="COMPLETE", coupon_code="SAVE%d" % (i % 4) if i % 2 else None,
                  has_upsell=bool(i % 3 == 0),
                  items=[{"product_id": "7", "quantity": 1, "price_minor": 1000 + i}],
                  totals={"total_minor": 1000 + i, "price_minor": 1000 + i, "shipping_minor": 0,
                          "tax_minor": 0, "discount_minor": None},
                  source_values=["google", None, None, None, None])
        ev["source"]["stream"] = "orders"
        ev["source"]["record_id"] = "o%d" % i
    return ev


def encode(ev):
    return json.dumps(ev, separators=(",", ":")).encode()


def key_of(ev):
    return ("%s/%s" % (ev["integration_id"], ev["customer_id"])).encode()


def content(value):
    d = json.loads(value)
    d["source"].pop("fetched_at", None)
    return json.dumps(d, sort_keys=True)


def schema_validator():
    import jsonschema
    with open(os.path.join(SRC_DIR, "schemas", "event.schema.json")) as f:
        schema = json.load(f)
    return jsonschema.Draft202012Validator(schema)


def caught_up(st, group, topic):
    """The group's committed offsets equal every partition's end."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": st.broker.bootstrap, "group.id": group,
                  "enable.auto.commit": False})
    try:
        md = c.list_topics(topic, timeout=10).topics[topic]
        tps = [TopicPartition(topic, p) for p in md.partitions]
        committed = {tp.partition: tp.offset for tp in c.committed(tps, timeout=10)}
        for tp in tps:
            hi = c.get_watermark_offsets(tp, timeout=10)[1]
            if hi > 0 and committed.get(tp.partition, -1) != hi:
                return False
        return True
    finally:
        c.close()


def metric(proc, name):
    status, body = proc.http("/metrics")
    total = 0
    for line in body.decode().splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def check_no_duplicates(msgs):
    seen = set()
    for m in msgs:
        ev = json.loads(m.value)
        assert m.key.decode() == ev["event_id"], (m.key, ev["event_id"])
        k = (ev["event_id"], content(m.value))
        assert k not in seen, "duplicate downstream: %s" % ev["event_id"]
        seen.add(k)


def to_order(e):
    """The payment e made into an order event (the normalizer's shape)."""
    e.pop("recycle_number", None)
    e.update(type="order", subtype=None, amount_minor=None, transaction_id=None,
             order_type="NEW_SALE", order_status="COMPLETE", coupon_code="SAVE5",
             has_upsell=False, items=[{"product_id": "7", "quantity": 1, "price_minor": 1999}],
             totals={"total_minor": 1999, "price_minor": 1999, "shipping_minor": 0,
                     "tax_minor": None, "discount_minor": 0})
    e["source"].update(stream="orders", record_id=e["order_id"])
    return e


def mutations(valid):
    """(name, bytes, must_dlq) cases: JSON-level breakage, then mutations
    whose verdict comes from the JSON Schema (must_dlq=None)."""
    v = schema_validator()
    out = [("malformed", b'{"schema":"ltv.event.v1",', True),
           ("not-json", b"<html>502 Bad Gateway</html>", True),
           ("non-utf8", b'{"schema":"\xff\xfe"}', True),
           ("array", b"[1,2,3]", True),
           ("bad-calendar-date", None, True),   # pattern-valid, not a real day
           ("local-date-far", None, True)]
    cases = [
        ("missing-currency", lambda e: e.pop("currency")),
        ("payment-negative", lambda e: e.update(amount_minor=-5)),
        ("refund-positive", lambda e: e.update(type="refund", subtype=None, amount_minor=5)),
        ("decline-nonzero", lambda e: e.update(type="decline", subtype="soft",
                                                amount_minor=3, attempted_minor=3)),
        ("bad-date-format", lambda e: e.update(local_date="2024/01/05")),
        ("occurred-at-offset", lambda e: e.update(occurred_at="2024-01-05T10:00:00+00:00")),
        ("type-unknown", lambda e: e.update(type="gift")),
        ("currency-lower", lambda e: e.update(currency="usd")),
        ("extra-field", lambda e: e.update(extra=1)),
        ("event-id-upper", lambda e: e.update(event_id=e["event_id"].upper())),
        ("amount-fraction", lambda e: e.update(amount_minor=10.5)),
        ("source-missing", lambda e: e.pop("source")),
        ("subtype-on-payment-ok", lambda e: e.update(subtype="rebill")),
        ("affiliate-string-ok", lambda e: e.update(affiliate_id="aff 1")),
        ("product-ids-empty-ok", lambda e: e.update(product_ids=[])),
        # the dimensions (issue 17): the C rules must agree with the schema's
        ("recycle-missing", lambda e: e.pop("recycle_number")),
        ("recycle-null-ok", lambda e: e.update(recycle_number=None)),
        ("source-values-ok", lambda e: e.update(source_values=["fb", None, None, None, "x"])),
        ("source-values-short", lambda e: e.update(source_values=["fb"])),
        ("refund-reason-on-payment", lambda e: e.update(refund_reason="x")),
        ("coupon-on-payment", lambda e: e.update(coupon_code="SAVE5")),
        ("order-ok", to_order),
        ("order-with-amount", lambda e: to_order(e).update(amount_minor=5)),
        ("order-item-extra", lambda e: to_order(e)["items"][0].update(name="x")),
        ("order-tax-negative", lambda e: to_order(e)["totals"].update(tax_minor=-1)),
        ("order-no-currency", lambda e: to_order(e).update(currency=None)),
        ("order-recycle", lambda e: to_order(e).update(recycle_number=0)),
        ("order-no-items", lambda e: to_order(e).pop("items")),
    ]
    for name, fn in cases:
        e = copy.deepcopy(valid)
        e["event_id"] = str(uuid.uuid5(NS, "mut/" + name))
        fn(e)
        out.append((name, encode(e), not v.is_valid(e)))
    e = copy.deepcopy(valid)
    e["event_id"] = str(uuid.uuid5(NS, "mut/cal"))
    e.update(local_date="2023-02-29", occurred_at="2023-02-28T10:00:00Z")
    assert v.is_valid(e)  # the schema's pattern accepts it; the sink does not
    out[4] = ("bad-calendar-date", encode(e), True)
    e = copy.deepcopy(valid)
    e["event_id"] = str(uuid.uuid5(NS, "mut/far"))
    e["local_date"] = "2024-03-01"
    out[5] = ("local-date-far", encode(e), True)
    return out


def sink_stack(st, brokers=1, **extra):
    """Redis and a 4-partition devbroker (of brokers brokers) in st, and a
    sink's own names: (integration id, events topic, downstream topic, DLQ
    topic, group, the sink's env with extra on top)."""
    st.start_redis()
    st.start_devbroker(partitions=4, brokers=brokers)
    integ = "it-%s" % uuid.uuid4().hex[:8]
    t_events, t_down, t_dlq = (unique_name(x) for x in ("events", "down", "dlq"))
    group = unique_name("sink")
    env = {"LTVSYNC_TOPIC_EVENTS": t_events, "LTVSYNC_TOPIC_DOWNSTREAM": t_down,
           "LTVSYNC_TOPIC_DLQ": t_dlq, "LTVSYNC_GROUP_ID": group}
    env.update(extra)
    return integ, t_events, t_down, t_dlq, group, env


def main():
    with Stack("sink") as st:
        integ, t_events, t_down, t_dlq, group, env = sink_stack(
            st, LTVSYNC_KAFKA_SESSION_TIMEOUT_MS="6000",
            LTVSYNC_KAFKA_HEARTBEAT_INTERVAL_MS="500",
            LTVSYNC_KAFKA_AUTO_COMMIT_INTERVAL_MS="500", LTVSYNC_SHUTDOWN_GRACE="10s")
        v = schema_validator()
        n = 240
        events = [make_event(i, integ) for i in range(n)]
        for ev in events:
            assert v.is_valid(ev), list(v.iter_errors(ev))[:1]
        st.produce(t_events, [(key_of(e), encode(e)) for e in events])

        # 1. everything downstream, keyed by event_id, bytes as produced
        sink = st.start_service("ltvsync-sink", env=env)
        wait_until(lambda: len(st.consume_all(t_down)) >= n, 60, "first %d events" % n)
        st.wait_ready(sink)
        down = st.consume_all(t_down)
        assert len(down) == n, len(down)
        assert sorted(m.value for m in down) == sorted(encode(e) for e in events)
        check_no_duplicates(down)
        # a batch is counted once its writes are acknowledged and recorded,
        # after they can be read downstream
        wait_until(lambda: sink.check_alive() or
                   metric(sink, "ltvsync_sink_events_written_total") >= n, 20,
                   "the sink's count of its writes")
        assert metric(sink, "ltvsync_sink_events_written_total") == n
        print("1. %d events downstream, keyed by event_id" % n)

        # 2. kill -9, re-fetched copies (new fetched_at) and 8 changed events
        assert st.stop(sink, signal.SIGKILL) == -signal.SIGKILL
        again = [make_event(i, integ, fetched="2024-03-01T00:00:00Z") for i in range(n)]
        changed = [make_event(i, integ, shift_days=1) for i in range(0, n, 30)]
        st.produce(t_events, [(key_of(e), encode(e)) for e in again + changed])
        st.restart(sink)
        wait_until(lambda: caught_up(st, group, t_events), 90, "sink caught up after restart")
        down = st.consume_all(t_down)
        assert len(down) == n + len(changed), (len(down), n + len(changed))
        check_no_duplicates(down)
        last = {}
        for m in down:
            last[json.loads(m.value)["event_id"]] = json.loads(m.value)
        for e in changed:
            assert last[e["event_id"]]["local_date"] == e["local_date"], e["event_id"]
        assert metric(sink, "ltvsync_sink_events_unchanged_total") >= n - len(changed)
        print("2. after kill -9 and a re-fetch: %d unchanged skipped, %d changed written again"
              % (n - len(changed), len(changed)))

        # 3. the DLQ, and the sink keeps going
        bad = mutations(events[0])
        tail = make_event(n + 1, integ)
        items = [(b"bad/%d" % i, val) for i, (_, val, _) in enumerate(bad)]
        items += [(b"bad/tomb", None), (key_of(tail), encode(tail))]
        st.produce(t_events, items)
        want_dlq = sum(1 for _, _, must in bad if must) + 1
        wait_until(lambda: len(st.consume_all(t_dlq)) >= want_dlq, 60, "dlq records")
        wait_until(lambda: caught_up(st, group, t_events), 60, "sink past the bad messages")
        dlq = {m.key: json.loads(m.value) for m in st.consume_all(t_dlq)}
        assert len(dlq) == want_dlq, (len(dlq), want_dlq)
        for i, (name, val, must) in enumerate(bad):
            key = b"bad/%d" % i
            assert (key in dlq) == must, (name, must, dlq.get(key))
            if must:
                rec = dlq[key]
                assert rec["reason"] and rec["topic"] == t_events, rec
                assert isinstance(rec["partition"], int) and isinstance(rec["offset"], int)
                got = (rec["value"].encode() if rec["value"] is not None else
                       __import__("base64").b64decode(rec["value_base64"]))
                assert got == val, (name, got)
        assert dlq[b"bad/tomb"]["value"] is None
        reasons = {name: dlq[b"bad/%d" % i]["reason"] for i, (name, _, m) in enumerate(bad) if m}
        assert "amount_minor" in reasons["payment-negative"], reasons
        assert "local_date" in reasons["bad-calendar-date"], reasons
        down = st.consume_all(t_down)
        ids = {json.loads(m.value)["event_id"] for m in down}
        assert tail["event_id"] in ids
        oks = [name for name, _, must in bad if not must]
        assert len(oks) == 6, oks
        check_no_duplicates(down)
        print("3. %d refused to the DLQ with reasons (e.g. %r); %d schema-valid mutations written"
              % (want_dlq, reasons["payment-negative"], len(oks)))

        # 4. Redis outage: pause, then complete with nothing lost
        before = len(down)
        st.stop(st.redis, signal.SIGKILL)
        fresh = [make_event(i, integ) for i in range(1000, 1100)]
        st.produce(t_events, [(key_of(e), encode(e)) for e in fresh])
        wait_until(lambda: sink.http("/readyz")[0] == 503, 20, "sink not ready without redis")
        time.sleep(2)
        assert len(st.consume_all(t_down)) == before, "wrote downstream without dedupe"
        sink.check_alive()
        st.restart(st.redis)
        st.wait_redis(st.redis)
        wait_until(lambda: caught_up(st, group, t_events), 60, "sink after redis came back")
        st.wait_ready(sink)
        down = st.consume_all(t_down)
        ids = {json.loads(m.value)["event_id"] for m in down}
        assert all(e["event_id"] in ids for e in fresh)
        assert len(down) == before + len(fresh), (len(down), before + len(fresh))
        check_no_duplicates(down)
        assert metric(sink, "ltvsync_sink_redis_pauses_total") >= 1
        print("4. redis outage: paused (readyz 503, nothing written), then all %d arrived"
              % len(fresh))

        # 5. SIGTERM drains with a batch in hand
        more = [make_event(i, integ) for i in range(2000, 2300)]
        st.produce(t_events, [(key_of(e), encode(e)) for e in more])
        time.sleep(0.3)
        assert st.stop(sink, signal.SIGTERM, 20) == 0
        assert "stopped" in sink.log()
        down = st.consume_all(t_down)
        written = {json.loads(m.value)["event_id"] for m in down}
        done = sum(1 for e in more if e["event_id"] in written)
        st.restart(sink)
        wait_until(lambda: caught_up(st, group, t_events), 60, "sink after SIGTERM restart")
        down = st.consume_all(t_down)
        check_no_duplicates(down)
        assert len(down) == before + len(fresh) + len(more), len(down)
        st.stop(sink, signal.SIGTERM, 20)
        print("5. SIGTERM: exit 0 (%d of %d written before it); the rest after restart, "
              "no duplicates" % (done, len(more)))
        assert st.broker.status()["evicted"] is False


if __name__ == "__main__":
    try:
        main()
    except HarnessError as e:
        print("FAIL: %s" % e)
        sys.exit(1)
    print("ok")
