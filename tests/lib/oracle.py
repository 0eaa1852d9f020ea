"""oracle: the expected canonical events of CRM rows, computed independently
of ltvsync's C code (Python's zoneinfo for time zones, decimal for money).

It reads crm-sim's --dump (or any sequence of raw envelopes) and applies the
rules of README.md "Canonical events" as stated in services/normalizer/lt_event.h and
schemas/event.schema.json, with the LTV dimensions of issue 17:
  - every transaction-stream event carries recycle_number and, when any of
    sourceValue1..5 is set, source_values (5 entries, each cut to 255 bytes);
    refunds carry refund_reason; a payment is an upsell by orderType or by
    an item's productType;
  - a non-PARTIAL order row gives an `order` event (order_type,
    order_status, coupon_code, has_upsell, items, totals, source_values).

    integ = Integration("acme", "konnektive", "America/New_York", "USD")
    envs = envelopes_from_dump(json.load(open(dump)), integ, fetched_at)
    want = Oracle(integ).run(envs)     # [(key, event dict)] in raw order

Used by tests/integration/test_normalizer_e2e.py and by the sink's tests.
"""
import re
import uuid
from datetime import datetime, timezone
from decimal import Decimal, localcontext
from zoneinfo import ZoneInfo

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "ltvsync.events")
SECRET_KEYS = ("ecommercepassword", "achaccountnumber", "achroutingnumber")
EXPONENT = {"USD": 2, "EUR": 2, "GBP": 2, "CAD": 2, "AUD": 2, "BRL": 2, "MXN": 2,
            "JPY": 0, "KRW": 0, "KWD": 3, "BHD": 3, "JOD": 3, "OMR": 3}
ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}\Z")
AMOUNT_RE = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?\Z")
TXN_TYPES = ("SALE", "AUTHORIZE", "CAPTURE", "REFUND", "VOID")
RESPONSES = ("SUCCESS", "SOFT_DECLINE", "HARD_DECLINE")
PURCHASE_STATUS = ("ACTIVE", "TRIAL", "PAUSED", "CANCELLED", "COMPLETE",
                   "RECYCLE_BILLING", "RECYCLE_FAILED")
RECORD_ID = {"transactions": "transactionId", "orders": "orderId",
             "customers": "customerId", "purchases": "purchaseId",
             "campaigns": "campaignId"}


class Malformed(Exception):
    """The row belongs in the DLQ."""


class Integration:
    def __init__(self, id, brand, tz, currency="USD"):
        self.id, self.brand, self.tz, self.currency = id, brand, tz, currency
        self.zone = ZoneInfo(tz)


def event_id(name):
    return str(uuid.uuid5(NAMESPACE, name))


def sanitize(obj):
    """A copy without secrets. The fetcher writes less to ltvsync.raw (only
    its allow-list, common/lt_sanitize.c); events depend on no field it
    drops, so a raw row made here yields the same events."""
    if isinstance(obj, dict):
        return {k: sanitize(v) for k, v in obj.items()
                if k.lower() not in SECRET_KEYS and "password" not in k.lower()}
    if isinstance(obj, list):
        return [sanitize(v) for v in obj]
    return obj


def envelopes_from_dump(dump, integ, fetched_at, job_id="oracle"):
    """[(key, envelope)] for every row of a crm-sim dump, streams in order."""
    out = []
    for stream in ("transactions", "orders", "customers", "purchases", "campaigns"):
        rows = dump.get(stream) or []
        if isinstance(rows, dict):
            rows = list(rows.values())
        for row in rows:
            rid = the_id(row.get(RECORD_ID[stream]))
            env = {"integration_id": integ.id, "stream": stream, "job_id": job_id,
                   "page": 1, "fetched_at": fetched_at, "record": sanitize(row)}
            out.append(("%s/%s/%s" % (integ.id, stream, rid), env))
    return out


# ---- field helpers ----

def the_id(v):
    """Ids arrive as strings or integers; None when absent/empty."""
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        raise Malformed("id is a boolean")
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, str):
        return v
    raise Malformed("id of another type")


def checked_id(v, what, required=True):
    s = the_id(v)
    if s is None:
        if required:
            raise Malformed("%s missing" % what)
        return None
    if not ID_RE.match(s):
        raise Malformed("%s invalid" % what)
    return s


def minor_units(v, currency, what):
    """Exact |amount| in minor units."""
    if currency not in EXPONENT:
        raise Malformed("unknown currency %s" % currency)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        v = repr(v)
    if not isinstance(v, str) or not AMOUNT_RE.match(v):
        raise Malformed("%s not a decimal" % what)
    with localcontext() as ctx:
        ctx.prec = 100
        scaled = Decimal(v).scaleb(EXPONENT[currency])
        if scaled != scaled.to_integral_value():
            raise Malformed("%s too precise" % what)
        n = abs(int(scaled))
    if n >= 2 ** 63:
        raise Malformed("%s out of range" % what)
    return n


def parse_wall(s, what):
    """(naive datetime, day_only) from YYYY-MM-DD[ HH:MM:SS]."""
    if not isinstance(s, str):
        raise Malformed("%s missing" % what)
    try:
        if len(s) == 10:
            return datetime.strptime(s, "%Y-%m-%d"), True
        if len(s) == 19:
            return datetime.strptime(s.replace("T", " "), "%Y-%m-%d %H:%M:%S"), False
    except ValueError:
        pass
    raise Malformed("%s invalid" % what)


def int_or_none(v):
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str) and re.fullmatch(r"-?[0-9]+", v):
        return int(v)
    return None


def utf8_cut(v, limit):
    """v if a non-empty string, at most `limit` bytes of UTF-8 without
    splitting a character; else None."""
    if not isinstance(v, str) or v == "":
        return None
    b = v.encode("utf-8")
    if len(b) <= limit:
        return v
    cut = limit
    while cut > 0 and (b[cut] & 0xC0) == 0x80:
        cut -= 1
    return b[:cut].decode("utf-8")


def str255(v):
    return utf8_cut(v, 255)


def str64(v):
    return utf8_cut(v, 64)


def ascii_upper(s):
    """Upper case of ASCII letters only (what a byte-wise CRM text compare
    sees; str.upper() would also turn U+017F into 'S')."""
    return "".join(chr(ord(c) - 32) if "a" <= c <= "z" else c for c in s)


def upsell_text(v):
    if not isinstance(v, str):
        return False
    u = ascii_upper(v)
    return "UPSALE" in u or "UPSELL" in u


def entries(items):
    """The entries of an items value: object values in key order, array
    elements in order; [] for absent/null/empty. The issue-17 text does not
    say what a scalar (a string, a number) is: like product_ids and the
    upsell mark, which skip it, it counts as no items."""
    if isinstance(items, dict):
        return list(items.values())
    if isinstance(items, list):
        return list(items)
    return []


def has_upsell(rec):
    """orderType says UPSALE/UPSELL, or an item's productType does."""
    if upsell_text(rec.get("orderType")):
        return True
    items = rec.get("items")
    values = items.values() if isinstance(items, dict) else items if isinstance(items, list) else []
    return any(isinstance(it, dict) and upsell_text(it.get("productType")) for it in values)


def source_values(rec):
    """[str255(sourceValue1..5)] when any is set, else None (key absent)."""
    vals = [str255(rec.get("sourceValue%d" % n)) for n in range(1, 6)]
    return vals if any(v is not None for v in vals) else None


def flag(v):
    if isinstance(v, bool):
        return v
    n = int_or_none(v)
    return bool(n)


class Oracle:
    """Expected events of a sequence of raw envelopes of one integration, in
    raw order, with its own chargeback memory (per transaction)."""

    def __init__(self, integ):
        self.integ = integ
        self.cb = {}  # transaction id -> {"n", "reverted", "rev_du", "du"}

    def run(self, envelopes):
        """[(key, event)] for every envelope that yields events; envelopes
        whose row is malformed are collected in self.dlq."""
        out, self.dlq = [], []
        for key, env in envelopes:
            try:
                evs = self.row(env["stream"], env["record"], env.get("fetched_at"))
            except Malformed as e:
                self.dlq.append((key, str(e)))
                continue
            out += evs
        return out

    # ---- per stream ----

    def row(self, stream, rec, fetched_at):
        if not isinstance(rec, dict):
            raise Malformed("record not an object")
        ctx = self.context(stream, rec, fetched_at)
        if stream == "transactions":
            evs = self.transaction(ctx, rec)
        elif stream == "customers":
            evs = [self.event(ctx, "customer", None, self.updated_at(rec))]
        elif stream == "purchases":
            evs = [self.purchase(ctx, rec)]
        elif stream == "orders":
            evs = self.order(ctx, rec)
        else:
            evs = []
        key = "%s/%s" % (self.integ.id, ctx["customer_id"])
        return [(key, e) for e in evs]

    def context(self, stream, rec, fetched_at):
        rid = checked_id(rec.get(RECORD_ID[stream]), RECORD_ID[stream])
        ctx = {"stream": stream, "record_id": rid, "fetched_at": fetched_at,
               "customer_id": checked_id(rec.get("customerId"), "customerId", False),
               "order_id": checked_id(rec.get("orderId"), "orderId", False),
               "campaign_id": checked_id(rec.get("campaignId"), "campaignId", False),
               "transaction_id": rid if stream == "transactions" else None,
               "currency": rec.get("currencyCode") or self.integ.currency,
               "billing_cycle": int_or_none(rec.get("billingCycleNumber")),
               "affiliate_id": rec.get("affId") if isinstance(rec.get("affId"), str) and rec.get("affId") else None,
               "date_updated": rec.get("dateUpdated") if isinstance(rec.get("dateUpdated"), str) and rec.get("dateUpdated") else None,
               "product_ids": self.products(rec),
               "source_values": source_values(rec),
               "recycle_number": int_or_none(rec.get("recycleNumber"))}
        return ctx

    @staticmethod
    def products(rec):
        out = []
        pid = rec.get("productId")
        if pid not in (None, ""):
            s = the_id(pid)
            if s and ID_RE.match(s):
                out.append(s)
        items = rec.get("items")
        values = items.values() if isinstance(items, dict) else items if isinstance(items, list) else []
        for it in values:
            if len(out) >= 8 or not isinstance(it, dict):
                continue
            try:
                s = the_id(it.get("productId"))
            except Malformed:
                continue
            if s and ID_RE.match(s):
                out.append(s)
        return out

    def transaction(self, ctx, rec):
        ttype, resp = rec.get("txnType"), rec.get("responseType")
        if ttype not in TXN_TYPES:
            raise Malformed("txnType")
        if resp not in RESPONSES:
            raise Malformed("responseType")
        if ctx["customer_id"] is None:
            raise Malformed("customerId missing")
        if ctx["currency"] not in EXPONENT:
            raise Malformed("currency")
        created, day_only = parse_wall(rec.get("dateCreated"), "dateCreated")
        if day_only:
            raise Malformed("dateCreated without time")
        if ttype == "AUTHORIZE" and resp == "SUCCESS":
            return []
        amount = minor_units(rec.get("totalAmount"), ctx["currency"], "totalAmount")
        if resp != "SUCCESS":
            ev = self.event(ctx, "decline", "soft" if resp == "SOFT_DECLINE" else "hard",
                            (created, False), amount=0)
            ev["attempted_minor"] = amount
            return [self.order_keys(ev)]
        if ttype in ("REFUND", "VOID"):
            ev = self.event(ctx, ttype.lower(), None, (created, False), amount=-amount)
            ev["parent_transaction_id"] = checked_id(rec.get("parentTxnId"), "parentTxnId", False)
            if ttype == "REFUND":
                ev["refund_reason"] = str255(rec.get("refundReason"))
            return [self.order_keys(ev)]
        cycle = ctx["billing_cycle"]
        sub = ("rebill" if cycle is not None and cycle >= 2 else
               "upsell" if has_upsell(rec) else "initial")
        evs = [self.event(ctx, "payment", sub, (created, False), amount=amount)]
        cb = self.chargeback(ctx, rec)
        return evs + ([self.order_keys(cb)] if cb else [])

    def chargeback(self, ctx, rec):
        """The chargeback memory: transitions on fresh rows only."""
        tid, on = ctx["record_id"], flag(rec.get("isChargedback"))
        du = ctx["date_updated"] or ""
        st = self.cb.get(tid)
        if st is None and on:
            st = self.cb[tid] = {"n": 0, "reverted": False, "rev_du": None, "du": ""}
        if st is not None and du >= st["du"]:
            charged = st["n"] > 0 and not st["reverted"]
            if on and not charged:
                st["n"] += 1
                st["reverted"] = False
            elif not on and charged:
                st["reverted"], st["rev_du"] = True, du
            st["du"] = du
        if st is None:
            return None
        cb_key = "chargebackAmount" if rec.get("chargebackAmount") not in (None, "") else "totalAmount"
        if on and st["n"] > 0 and not st["reverted"]:
            src = rec.get("chargebackDate") or ctx["date_updated"]
            wall = parse_wall(src, "chargebackDate")
            amount = minor_units(rec.get(cb_key), ctx["currency"], cb_key)
            ev = self.event(ctx, "chargeback", None, wall, amount=-amount, occurrence=st["n"])
            ev["chargeback_reason_code"] = rec.get("chargebackReasonCode") or None
            return ev
        if not on and st["reverted"] and st["n"] > 0:
            wall = parse_wall(st["rev_du"], "dateUpdated")
            amount = minor_units(rec.get(cb_key), ctx["currency"], cb_key)
            return self.event(ctx, "chargeback_reversal", None, wall, amount=amount,
                              occurrence=st["n"])
        return None

    def order(self, ctx, rec):
        """The order event (none for a PARTIAL order: no money moved)."""
        if rec.get("orderStatus") == "PARTIAL":
            return []
        if ctx["customer_id"] is None:
            raise Malformed("customerId missing")
        cur = ctx["currency"]
        if cur not in EXPONENT:
            raise Malformed("unknown currency %s" % cur)

        def money(key, obj=rec):
            v = obj.get(key)
            if v is None or v == "":
                return None
            return minor_units(v, cur, key)

        ents = entries(rec.get("items"))
        if len(ents) > 64:
            raise Malformed("items: more than 64")
        items = []
        for it in ents:
            if not isinstance(it, dict):
                raise Malformed("items: productId missing or invalid")
            try:
                pid = checked_id(it.get("productId"), "productId")
            except Malformed:
                raise Malformed("items: productId missing or invalid")
            items.append({"product_id": pid, "quantity": int_or_none(it.get("qty")),
                          "price_minor": money("price", it)})
        totals = {"total_minor": money("totalAmount"), "price_minor": money("price"),
                  "shipping_minor": money("baseShipping"), "tax_minor": money("salesTax"),
                  "discount_minor": money("totalDiscount")}
        ev = self.event(ctx, "order", None, self.updated_at(rec))
        ev.update({"order_type": str64(rec.get("orderType")),
                   "order_status": str64(rec.get("orderStatus")),
                   "coupon_code": str64(rec.get("couponCode")),
                   "has_upsell": has_upsell(rec), "items": items, "totals": totals})
        return [self.order_keys(ev)]

    def purchase(self, ctx, rec):
        if ctx["customer_id"] is None:
            raise Malformed("customerId missing")
        status = rec.get("status")
        if status not in PURCHASE_STATUS:
            raise Malformed("status")
        nbd = rec.get("nextBillDate") or None
        if nbd is not None:
            d, day_only = parse_wall(nbd, "nextBillDate")
            if not day_only:
                raise Malformed("nextBillDate")
        ev = self.event(ctx, "subscription", None, self.updated_at(rec))
        ev.update({"subscription_id": ctx["record_id"], "status": status,
                   "next_bill_date": nbd})
        return self.order_keys(ev)

    def updated_at(self, rec):
        s = rec.get("dateUpdated") or rec.get("dateCreated")
        return parse_wall(s, "dateUpdated")

    # ---- the event itself ----

    def event(self, ctx, etype, subtype, wall, amount=None, occurrence=None):
        naive, day_only = wall
        zi = self.integ.zone
        utc = naive.replace(tzinfo=zi).astimezone(timezone.utc)  # fold=0
        local = utc.astimezone(zi)
        name = "%s/%s/%s/%s" % (self.integ.id, ctx["stream"], ctx["record_id"], etype)
        if occurrence and occurrence > 1:
            name += "/%d" % occurrence
        money = etype not in ("customer", "subscription")
        ev = {
            "schema": "ltv.event.v1", "event_id": event_id(name), "type": etype,
            "subtype": subtype, "integration_id": self.integ.id, "brand": self.integ.brand,
            "customer_id": ctx["customer_id"], "order_id": ctx["order_id"],
            "transaction_id": ctx["transaction_id"],
            "occurred_at": utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "local_date": local.strftime("%Y-%m-%d"),
            "local_time": local.strftime("%H:%M:%S"),
            "timezone": self.integ.tz,
            "date_precision": "day" if day_only else "second",
            "amount_minor": amount if money else None,
            "currency": ctx["currency"] if money else None,
            "billing_cycle": ctx["billing_cycle"], "campaign_id": ctx["campaign_id"],
            "product_ids": ctx["product_ids"], "affiliate_id": ctx["affiliate_id"],
        }
        if occurrence:
            ev["occurrence"] = occurrence
        if ctx["stream"] == "transactions":
            ev["recycle_number"] = ctx["recycle_number"]
        if ctx["stream"] in ("transactions", "orders") and ctx["source_values"] is not None:
            ev["source_values"] = list(ctx["source_values"])
        ev["source"] = {"stream": ctx["stream"], "record_id": ctx["record_id"],
                        "fetched_at": ctx["fetched_at"], "date_updated": ctx["date_updated"]}
        return ev

    @staticmethod
    def order_keys(ev):
        """Key order does not matter to JSON equality; kept for readability."""
        return ev


def uncovered(events, dump):
    """The LTV-dimension cases (issue 17) that none of `events` (expected
    event dicts) exercises, as a list of names; [] when all are there. Rows
    of `dump` tell which shape of a CRM row gave an event, so that a
    comparison with ltvsync's events cannot pass while a rule never ran."""
    txns = {str(t.get("transactionId")): t for t in dump.get("transactions") or []}

    def row(ev):
        return txns.get(ev.get("transaction_id")) or {}

    def item_upsell_only(r):
        return not upsell_text(r.get("orderType")) and has_upsell(r)

    cases = {
        "order with coupon_code": lambda e: e["type"] == "order" and e["coupon_code"],
        "order with has_upsell": lambda e: e["type"] == "order" and e["has_upsell"],
        "order without upsell": lambda e: e["type"] == "order" and e["has_upsell"] is False,
        "order item with quantity and price_minor": lambda e: e["type"] == "order" and any(
            i["quantity"] is not None and i["price_minor"] is not None for i in e["items"]),
        "order totals": lambda e: e["type"] == "order" and e["totals"]["total_minor"],
        "payment with product_ids from productId": lambda e: e["type"] == "payment" and
            e["product_ids"] and "productId" in row(e) and "items" not in row(e),
        "payment with product_ids from items": lambda e: e["type"] == "payment" and
            e["product_ids"] and row(e).get("items") and "productId" not in row(e),
        "upsell payment by orderType": lambda e: e.get("subtype") == "upsell" and
            e["type"] == "payment" and upsell_text(row(e).get("orderType")),
        "upsell payment by an item's productType only": lambda e: e.get("subtype") == "upsell"
            and e["type"] == "payment" and item_upsell_only(row(e)),
        "payment with source_values": lambda e: e["type"] == "payment" and "source_values" in e,
        "payment without source_values": lambda e: e["type"] == "payment" and
            "source_values" not in e,
        "source value cut at 255 bytes": lambda e: any(
            v and len(v.encode()) < len((row(e).get("sourceValue%d" % (n + 1)) or "").encode())
            for n, v in enumerate(e.get("source_values") or [])),
        "refund with refund_reason": lambda e: e["type"] == "refund" and e["refund_reason"],
        "payment or decline with recycle_number > 0": lambda e: e["type"] in (
            "payment", "decline") and (e["recycle_number"] or 0) > 0,
        "chargeback with chargeback_reason_code": lambda e: e["type"] == "chargeback" and
            e["chargeback_reason_code"],
    }
    return [name for name, hit in cases.items() if not any(hit(e) for e in events)]


def latest_by_id(pairs):
    """{event_id: event} keeping the last version of each id (latest wins)."""
    out = {}
    for _, ev in pairs:
        out[ev["event_id"]] = ev
    return out
