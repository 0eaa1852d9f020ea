/* Rows rendered exactly as the API returns them: amounts as decimal strings,
 * wall times "YYYY-MM-DD HH:MM:SS", campaignId an integer on orders and a
 * string on transactions, order items keyed by productId ([] when none).
 * Fields that gen.c does not model (sourceValue1..5, the shape a
 * transaction's product takes, how an upsell is marked) are derived here
 * from ids by a fixed hash: no RNG draw, so money, counts and dates stay
 * exactly those of the seed. */
#include "sim.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const char *const DECLINE_TEXTS[] = {"Insufficient funds", "Do not honor", "Card expired"};
static const char *const REFUND_REASONS[] = {NULL, "Customer request", "Product not received",
                                             "Duplicate charge"};
static const char *const CB_REASONS[] = {"10.4", "13.1", "4837", "4853"};
static const char *const CARD_TYPES[] = {"VISA", "MASTERCARD", "AMEX"};
static const char *const TRAFFIC[] = {"facebook", "google", "tiktok", "bing"};

/* Order index whose source values carry an over-long tag (customer 19, the
 * UTF-8 names case): sourceValue4 is 304 bytes of which byte 255 is inside a
 * two-byte character, so a 255-byte cut must back off to 254. */
enum { LONG_SOURCE_ORDER = 19 };

/* splitmix64's finaliser: a fixed bijection spreading ids over 64 bits. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void cs_money_format(int64_t minor, int decimals, char *out, size_t outlen)
{
    int64_t scale = 1;
    for (int i = 0; i < decimals; i++)
        scale *= 10;
    const char *sign = minor < 0 ? "-" : "";
    int64_t v = minor < 0 ? -minor : minor;
    if (decimals == 0)
        snprintf(out, outlen, "%s%" PRId64, sign, v);
    else
        snprintf(out, outlen, "%s%" PRId64 ".%0*" PRId64, sign, v / scale, decimals, v % scale);
}

static void add_money(cJSON *o, const char *k, const cs_account_t *a, int64_t minor)
{
    char buf[32];
    cs_money_format(minor, a->opts->decimals, buf, sizeof(buf));
    cJSON_AddStringToObject(o, k, buf);
}

static void add_ls(cJSON *o, const char *k, cs_ls_t t)
{
    char buf[20];
    cs_ls_format(t, buf);
    cJSON_AddStringToObject(o, k, buf);
}

static void add_str_or_null(cJSON *o, const char *k, const char *v)
{
    if (v && *v)
        cJSON_AddStringToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

static void add_day_or_null(cJSON *o, const char *k, int64_t day)
{
    char buf[11];
    if (day < 0) {
        cJSON_AddNullToObject(o, k);
        return;
    }
    cs_day_format(day, buf);
    cJSON_AddStringToObject(o, k, buf);
}

static void add_person(cJSON *o, const cs_customer_t *c)
{
    cJSON_AddStringToObject(o, "firstName", c->first);
    cJSON_AddStringToObject(o, "lastName", c->last);
    cJSON_AddStringToObject(o, "address1", c->address1);
    cJSON_AddStringToObject(o, "city", c->city);
    cJSON_AddStringToObject(o, "state", c->state);
    cJSON_AddStringToObject(o, "postalCode", c->postal);
    cJSON_AddStringToObject(o, "country", c->country);
    cJSON_AddStringToObject(o, "emailAddress", c->email);
    cJSON_AddStringToObject(o, "phoneNumber", c->phone);
}

static void add_chargeback(cJSON *o, const cs_account_t *a, const cs_txn_t *t)
{
    char buf[20];
    cJSON_AddNumberToObject(o, "isChargedback", t->cb);
    if (!t->cb_has) {
        cJSON_AddNullToObject(o, "chargebackAmount");
        cJSON_AddNullToObject(o, "chargebackDate");
        cJSON_AddNullToObject(o, "chargebackReasonCode");
        cJSON_AddNullToObject(o, "chargebackNote");
        return;
    }
    add_money(o, "chargebackAmount", a, t->cb_amount);
    cs_ls_format(t->cb_date, buf);
    if (t->cb_date_only)
        buf[10] = '\0';
    cJSON_AddStringToObject(o, "chargebackDate", buf);
    cJSON_AddStringToObject(o, "chargebackReasonCode", CB_REASONS[t->cb_reason % 4]);
    cJSON_AddStringToObject(o, "chargebackNote", t->cb ? "Dispute opened" : "Dispute reversed");
}

static void add_pay_source(cJSON *o, const cs_txn_t *t, const cs_customer_t *c)
{
    cJSON_AddStringToObject(o, "paySource", t->ach ? "CHECKING" : "CREDITCARD");
    add_str_or_null(o, "cardBin", t->ach ? NULL : c->card_bin);
    add_str_or_null(o, "cardLast4", t->ach ? NULL : c->card_last4);
    add_str_or_null(o, "cardType", t->ach ? NULL : CARD_TYPES[c->card_type % 3]);
    add_str_or_null(o, "achRoutingNumber", t->ach ? c->ach_rtn : NULL);
    add_str_or_null(o, "achAccountNumber", t->ach ? c->ach_acct : NULL);
}

/* sourceValue1..5 of order oi (its transactions carry the same): a third of
 * the orders have none (all ""), the rest a traffic source, mostly a
 * campaign tag, sometimes an ad set (with a gap before it when the tag is
 * missing) and a click id in the fifth slot. */
static void add_source_values(cJSON *o, int oi)
{
    char v[5][320];
    uint64_t h = mix64(0x50C3A11DULL + (uint64_t)oi);
    memset(v, 0, sizeof(v));
    if (h % 3 != 0) {
        snprintf(v[0], sizeof(v[0]), "%s", TRAFFIC[(h >> 8) % 4]);
        if ((h >> 12) % 5 != 0)
            snprintf(v[1], sizeof(v[1]), "cmp-%d", 10 + (int)((h >> 16) % 90));
        if ((h >> 24) % 3 == 0)
            snprintf(v[2], sizeof(v[2]), "adset-%d", 1 + (int)((h >> 28) % 20));
        if ((h >> 34) % 6 == 0)
            snprintf(v[4], sizeof(v[4]), "clk-%08x", (unsigned)(h >> 40));
    }
    if (oi == LONG_SOURCE_ORDER) {
        size_t n = (size_t)snprintf(v[3], sizeof(v[3]), "utm-");
        for (int k = 0; k < 150; k++, n += 2)
            memcpy(v[3] + n, "\xc3\xab", 3); /* U+00EB, with the NUL */
    }
    for (int k = 0; k < 5; k++) {
        char key[16];
        snprintf(key, sizeof(key), "sourceValue%d", k + 1);
        cJSON_AddStringToObject(o, key, v[k]);
    }
}

/* The catalogue price of product k (its campaign's product list). */
static int64_t product_price(const cs_account_t *a, int k)
{
    for (int c = 0; c < a->ncampaigns; c++)
        for (int j = 0; j < a->campaigns[c].nproducts; j++)
            if (a->campaigns[c].products[j].id == cs_product_ids[k])
                return a->campaigns[c].products[j].price;
    return 0;
}

/* orderType and the product of transaction t (a refund, void or chargeback
 * carries the product of the sale it reverses: gen.c copies it). The CRM
 * may send the product either as a top-level productId or as an items[]
 * list: half the rows take each shape (a hash of the transaction id). An
 * upsell is marked either by orderType UPSALE (with a top-level productId)
 * or, under orderType NEW_SALE, only by its item's productType UPSALE: the
 * order's parity picks which, so customers 5 and 20 show one each. */
static void add_order_type_and_product(cJSON *o, const cs_account_t *a, const cs_txn_t *t)
{
    int upsell = t->otype == CS_OT_UPSALE;
    int as_items = upsell ? (t->order & 1) == 0 : (mix64((uint64_t)t->id) >> 7 & 1) != 0;
    cJSON_AddStringToObject(o, "orderType",
                            cs_order_type_names[upsell && as_items ? CS_OT_NEW_SALE : t->otype]);
    if (t->product < 0)
        return;
    if (!as_items) {
        cJSON_AddNumberToObject(o, "productId", cs_product_ids[t->product]);
        return;
    }
    cJSON *items = cJSON_AddArrayToObject(o, "items"), *x = cJSON_CreateObject();
    if (!items || !x) {
        cJSON_Delete(x);
        return;
    }
    cJSON_AddItemToArray(items, x);
    cJSON_AddNumberToObject(x, "productId", cs_product_ids[t->product]);
    cJSON_AddStringToObject(x, "name", cs_product_names[t->product]);
    cJSON_AddNumberToObject(x, "qty", 1);
    add_money(x, "price", a, product_price(a, t->product));
    cJSON_AddStringToObject(x, "productType", upsell ? "UPSALE" : "OFFER");
}

cJSON *cs_render_txn(const cs_account_t *a, int i)
{
    const cs_txn_t *t = &a->txns[i];
    const cs_customer_t *c = &a->customers[t->customer];
    const cs_campaign_t *cp = &a->campaigns[t->campaign];
    cJSON *o = cJSON_CreateObject();
    char buf[32];
    if (!o)
        return NULL;
    cJSON_AddNumberToObject(o, "transactionId", (double)t->id);
    if (t->parent >= 0)
        cJSON_AddNumberToObject(o, "parentTxnId", (double)a->txns[t->parent].id);
    else
        cJSON_AddNullToObject(o, "parentTxnId");
    snprintf(buf, sizeof(buf), "mt_%08" PRIx64, (uint64_t)t->id * 2654435761u % 0xFFFFFFFFu);
    cJSON_AddStringToObject(o, "merchantTxnId", buf);
    add_ls(o, "dateCreated", t->created);
    add_ls(o, "dateUpdated", t->updated);
    cJSON_AddStringToObject(o, "txnType", cs_txn_type_names[t->type]);
    cJSON_AddStringToObject(o, "responseType", cs_resp_names[t->resp]);
    cJSON_AddStringToObject(o, "responseText",
                            t->resp == CS_SUCCESS ? "Approved"
                                                  : DECLINE_TEXTS[t->declined_text % 3]);
    add_money(o, "totalAmount", a, t->amount);
    cJSON_AddStringToObject(o, "currencyCode", a->opts->currency);
    cJSON_AddStringToObject(o, "currencySymbol", a->opts->symbol);
    cJSON_AddStringToObject(o, "orderId", a->orders[t->order].id);
    add_order_type_and_product(o, a, t);
    cJSON_AddNumberToObject(o, "billingCycleNumber", t->cycle);
    cJSON_AddNumberToObject(o, "recycleNumber", t->recycle);
    snprintf(buf, sizeof(buf), "%d", cp->id);
    cJSON_AddStringToObject(o, "campaignId", buf);
    cJSON_AddStringToObject(o, "campaignName", cp->name);
    cJSON_AddNumberToObject(o, "customerId", c->id);
    if (t->purchase >= 0)
        cJSON_AddNumberToObject(o, "purchaseId", a->purchases[t->purchase].id);
    else
        cJSON_AddNullToObject(o, "purchaseId");
    add_person(o, c);
    add_pay_source(o, t, c);
    cJSON_AddNumberToObject(o, "merchantId", t->merchant_id);
    snprintf(buf, sizeof(buf), "AFF%d", a->orders[t->order].aff);
    cJSON_AddStringToObject(o, "affId", buf);
    add_source_values(o, t->order);
    add_chargeback(o, a, t);
    add_str_or_null(o, "refundReason", REFUND_REASONS[t->refund_reason % 4]);
    cJSON_AddNullToObject(o, "3DTxnResult");
    return o;
}

static cJSON *render_items(const cs_account_t *a, const cs_order_t *o, int oi)
{
    char key[16];
    if (o->nitems == 0)
        return cJSON_CreateArray();
    cJSON *items = cJSON_CreateObject();
    for (int j = 0; items && j < o->nitems; j++) {
        const cs_item_t *it = &o->items[j];
        const cs_purchase_t *pu = it->purchase >= 0 ? &a->purchases[it->purchase] : NULL;
        cJSON *x = cJSON_CreateObject();
        if (!x)
            break;
        snprintf(key, sizeof(key), "%d", cs_product_ids[it->product]);
        cJSON_AddItemToObject(items, key, x);
        cJSON_AddNumberToObject(x, "productId", cs_product_ids[it->product]);
        cJSON_AddStringToObject(x, "name", cs_product_names[it->product]);
        cJSON_AddNumberToObject(x, "qty", 1);
        add_money(x, "price", a, it->price);
        add_money(x, "shipping", a, it->shipping);
        /* items[0] is the order's offer; a second item is always its upsell */
        cJSON_AddStringToObject(x, "productType", j == 0 ? "OFFER" : "UPSALE");
        if (pu) {
            cJSON_AddNumberToObject(x, "purchaseId", pu->id);
            cJSON_AddStringToObject(x, "purchaseStatus", cs_purchase_status_names[pu->status]);
            add_day_or_null(x, "nextBillDate", pu->next_bill_day);
        } else {
            cJSON_AddNullToObject(x, "purchaseId");
            cJSON_AddNullToObject(x, "purchaseStatus");
            cJSON_AddNullToObject(x, "nextBillDate");
        }
        cJSON_AddNumberToObject(x, "orderItemId", oi * 10 + j + 1);
    }
    return items;
}

cJSON *cs_render_order(const cs_account_t *a, int i)
{
    const cs_order_t *o = &a->orders[i];
    const cs_customer_t *c = &a->customers[o->customer];
    cJSON *r = cJSON_CreateObject();
    char buf[16];
    if (!r)
        return NULL;
    int paid = o->status != CS_O_PARTIAL && o->status != CS_O_DECLINED;
    cJSON_AddStringToObject(r, "orderId", o->id);
    add_ls(r, "dateCreated", o->created);
    add_ls(r, "dateUpdated", o->updated);
    cJSON_AddStringToObject(r, "orderType", "NEW_SALE");
    cJSON_AddStringToObject(r, "orderStatus", cs_order_status_names[o->status]);
    add_money(r, "totalAmount", a, o->total);
    add_money(r, "price", a, o->price);
    add_money(r, "baseShipping", a, o->shipping);
    add_money(r, "salesTax", a, 0);
    add_money(r, "totalDiscount", a, 0);
    add_money(r, "refundRemaining", a,
              paid && o->status != CS_O_CANCELLED ? o->total - o->refunded : 0);
    cJSON_AddStringToObject(r, "currencyCode", a->opts->currency);
    cJSON_AddStringToObject(r, "currencySymbol", a->opts->symbol);
    cJSON_AddNumberToObject(r, "campaignId", a->campaigns[o->campaign].id);
    cJSON_AddStringToObject(r, "campaignName", a->campaigns[o->campaign].name);
    cJSON_AddNumberToObject(r, "customerId", c->id);
    add_person(r, c);
    cJSON_AddStringToObject(r, "shipAddress1", c->address1);
    cJSON_AddStringToObject(r, "shipCity", c->city);
    cJSON_AddStringToObject(r, "shipState", c->state);
    cJSON_AddStringToObject(r, "shipPostalCode", c->postal);
    cJSON_AddStringToObject(r, "shipCountry", c->country);
    add_str_or_null(r, "couponCode", o->coupon);
    snprintf(buf, sizeof(buf), "AFF%d", o->aff);
    cJSON_AddStringToObject(r, "affId", buf);
    add_source_values(r, i);
    cJSON_AddItemToObject(r, "items", render_items(a, o, i));
    cJSON_AddItemToObject(r, "fulfillments", cJSON_CreateArray());
    return r;
}

cJSON *cs_render_customer(const cs_account_t *a, int i)
{
    const cs_customer_t *c = &a->customers[i];
    cJSON *r = cJSON_CreateObject(), *ps, *p;
    if (!r)
        return NULL;
    cJSON_AddNumberToObject(r, "customerId", c->id);
    add_ls(r, "dateCreated", c->created);
    add_ls(r, "dateUpdated", c->updated);
    add_person(r, c);
    cJSON_AddItemToObject(r, "notes", cJSON_CreateArray());
    ps = cJSON_AddArrayToObject(r, "paySources");
    if (ps && (p = cJSON_CreateObject()) != NULL) {
        cJSON_AddItemToArray(ps, p);
        cJSON_AddNumberToObject(p, "paySourceId", c->id * 10 + 1);
        cJSON_AddStringToObject(p, "paySource", c->ach ? "CHECKING" : "CREDITCARD");
        add_str_or_null(p, "cardBin", c->ach ? NULL : c->card_bin);
        add_str_or_null(p, "cardLast4", c->ach ? NULL : c->card_last4);
    }
    cJSON_AddStringToObject(r, "eCommercePassword", c->ecom_pw);
    add_str_or_null(r, "achAccountNumber", c->ach_acct);
    add_str_or_null(r, "achRoutingNumber", c->ach_rtn);
    return r;
}

cJSON *cs_render_purchase(const cs_account_t *a, int i)
{
    const cs_purchase_t *p = &a->purchases[i];
    cJSON *r = cJSON_CreateObject(), *txs;
    if (!r)
        return NULL;
    cJSON_AddNumberToObject(r, "purchaseId", p->id);
    cJSON_AddStringToObject(r, "orderId", a->orders[p->order].id);
    cJSON_AddNumberToObject(r, "customerId", a->customers[p->customer].id);
    cJSON_AddNumberToObject(r, "campaignId", a->campaigns[p->campaign].id);
    cJSON_AddNumberToObject(r, "productId", cs_product_ids[p->product]);
    cJSON_AddStringToObject(r, "productName", cs_product_names[p->product]);
    cJSON_AddStringToObject(r, "status", cs_purchase_status_names[p->status]);
    add_money(r, "price", a, p->price);
    cJSON_AddNumberToObject(r, "billingCycleNumber", p->cycle);
    cJSON_AddNumberToObject(r, "billingIntervalDays", p->interval);
    add_day_or_null(r, "nextBillDate", p->status == CS_P_ACTIVE ? p->next_bill_day : -1);
    add_money(r, "totalBilled", a, p->billed);
    add_money(r, "totalRefunded", a, p->refunded);
    add_ls(r, "dateCreated", p->created);
    add_ls(r, "dateUpdated", p->updated);
    txs = cJSON_AddArrayToObject(r, "transactions");
    for (int k = 0; txs && k < p->ntxns; k++) {
        const cs_txn_t *t = &a->txns[p->txns[k]];
        cJSON *x = cJSON_CreateObject();
        if (!x)
            break;
        cJSON_AddItemToArray(txs, x);
        cJSON_AddNumberToObject(x, "transactionId", (double)t->id);
        add_ls(x, "dateCreated", t->created);
        cJSON_AddStringToObject(x, "txnType", cs_txn_type_names[t->type]);
        cJSON_AddStringToObject(x, "responseType", cs_resp_names[t->resp]);
        add_money(x, "totalAmount", a, t->amount);
        cJSON_AddNumberToObject(x, "billingCycleNumber", t->cycle);
        cJSON_AddNumberToObject(x, "recycleNumber", t->recycle);
    }
    return r;
}

cJSON *cs_render_campaign(const cs_account_t *a, int i)
{
    const cs_campaign_t *cp = &a->campaigns[i];
    cJSON *r = cJSON_CreateObject(), *ps;
    if (!r)
        return NULL;
    cJSON_AddNumberToObject(r, "campaignId", cp->id);
    cJSON_AddStringToObject(r, "campaignName", cp->name);
    cJSON_AddStringToObject(r, "currency", a->opts->currency);
    add_ls(r, "dateCreated", cp->created);
    ps = cJSON_AddArrayToObject(r, "products");
    for (int k = 0; ps && k < cp->nproducts; k++) {
        const cs_product_t *p = &cp->products[k];
        cJSON *x = cJSON_CreateObject();
        if (!x)
            break;
        cJSON_AddItemToArray(ps, x);
        cJSON_AddNumberToObject(x, "productId", p->id);
        cJSON_AddStringToObject(x, "productName", p->name);
        add_money(x, "price", a, p->price);
        add_money(x, "shipping", a, p->shipping);
        cJSON_AddNumberToObject(x, "billingIntervalDays", p->interval_days);
        cJSON_AddStringToObject(x, "productType", p->interval_days ? "RECURRING" : "ONE_TIME");
    }
    return r;
}

cJSON *cs_render_row(const cs_account_t *a, int stream, int i)
{
    switch (stream) {
    case CS_S_TXN: return cs_render_txn(a, i);
    case CS_S_ORDER: return cs_render_order(a, i);
    case CS_S_CUSTOMER: return cs_render_customer(a, i);
    default: return cs_render_purchase(a, i);
    }
}
