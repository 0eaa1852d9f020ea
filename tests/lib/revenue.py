"""Net revenue by product and by coupon over canonical events, by the rules
`ltvctl reconcile` documents (services/ctl/reconcile.c): the money events of
[frm, to] (local days), signed amounts summed; a product is the event's one
product id ("(several)", "(none)"); a coupon is the one of the event's
order event ("(none)", "(order not synced)"). Used by test_reconcile and the
demo to check reconcile's lines; computed here independently of the C."""
import collections
from decimal import Decimal

MONEY_TYPES = ("payment", "refund", "void", "chargeback", "chargeback_reversal")


def revenue_by(events, frm, to):
    """{"by_product": {product: (payments, net minor)}, "by_coupon": {...}}."""
    events = list(events)
    coupons = {e["order_id"]: e.get("coupon_code") for e in events if e["type"] == "order"}
    net = {"by_product": collections.Counter(), "by_coupon": collections.Counter()}
    pays = {"by_product": collections.Counter(), "by_coupon": collections.Counter()}
    for e in events:
        if e["type"] not in MONEY_TYPES or not frm <= e["local_date"] <= to:
            continue
        ids = e["product_ids"]
        keys = {"by_product": ids[0] if len(ids) == 1 else "(several)" if ids else "(none)",
                "by_coupon": (coupons[e["order_id"]] or "(none)") if e["order_id"] in coupons
                else "(order not synced)"}
        for dim, k in keys.items():
            net[dim][k] += e["amount_minor"]
            pays[dim][k] += e["type"] == "payment"
    return {dim: {k: (pays[dim][k], net[dim][k]) for k in net[dim]} for dim in net}


def lines_of(rows, key):
    """reconcile --json's rows of one dimension as {key: (payments, net minor)}
    (the account's currency has 2 decimals)."""
    return {r[key]: (r["payments"], int(Decimal(r["net"]) * 100)) for r in rows}
