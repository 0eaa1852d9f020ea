/* lt_event: raw CRM rows to canonical events (see lt_event.h). */
#include "lt_event.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lt_buf.h"
#include "lt_date.h"
#include "lt_json.h"
#include "lt_money.h"
#include "lt_uuid.h"

#define ID_MAX 65

/* ---- JSON output into the list's reused lt_buf_t (fixed key order) ---- */

static void jb_lit(lt_buf_t *b, const char *s)
{
    lt_buf_put(b, s, strlen(s));
}

static void jb_str(lt_buf_t *b, const char *s)
{
    lt_buf_json_str(b, s, strlen(s));
}

/* ,"key": then a string or null; KSTR for a literal key. */
#define KSTR(b, key, val)    jb_val((b), ",\"" key "\":", sizeof(",\"" key "\":") - 1, (val))
#define KINT(b, key, has, v) jb_int((b), ",\"" key "\":", sizeof(",\"" key "\":") - 1, (has), (v))

/* ,"key":"val" for values that never need escaping: ids checked by get_id,
 * dates we formatted, our own names (null when empty). */
#define KRAW(b, key, val) jb_raw((b), ",\"" key "\":", sizeof(",\"" key "\":") - 1, (val))

static void jb_raw(lt_buf_t *b, const char *prefix, size_t plen, const char *val)
{
    size_t n = val ? strlen(val) : 0;
    lt_buf_put(b, prefix, plen);
    if (!n) {
        lt_buf_put(b, "null", 4);
        return;
    }
    lt_buf_put(b, "\"", 1);
    lt_buf_put(b, val, n);
    lt_buf_put(b, "\"", 1);
}

static void jb_val(lt_buf_t *b, const char *prefix, size_t plen, const char *val)
{
    lt_buf_put(b, prefix, plen);
    if (val && *val)
        jb_str(b, val);
    else
        lt_buf_put(b, "null", 4);
}

static size_t utf8_cut(const char *s, size_t max);

/* A CRM text in an event (a reason, a traffic-source value, a coupon): at
 * most TEXT_MAX bytes, cut on a character boundary. */
#define TEXT_MAX  255
#define LABEL_MAX 64 /* order type, status, coupon code */

static void jb_text(lt_buf_t *b, const char *val, size_t max)
{
    if (val && *val)
        lt_buf_json_str(b, val, utf8_cut(val, max));
    else
        lt_buf_put(b, "null", 4);
}

static void jb_kstr(lt_buf_t *b, const char *key, const char *val, size_t max)
{
    lt_buf_put(b, ",\"", 2);
    jb_lit(b, key);
    lt_buf_put(b, "\":", 2);
    jb_text(b, val, max);
}

/* Decimal digits of v into end-backwards storage; returns the start. */
static char *fmt_i64(char *end, int64_t v)
{
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        *--end = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--end = '-';
    return end;
}

static void jb_int(lt_buf_t *b, const char *prefix, size_t plen, int has, int64_t v)
{
    char num[24], *s = fmt_i64(num + sizeof(num), v);
    lt_buf_put(b, prefix, plen);
    if (has)
        lt_buf_put(b, s, (size_t)(num + sizeof(num) - s));
    else
        lt_buf_put(b, "null", 4);
}

/* ---- the record's fields, found in one pass ---- */

enum {
    F_TRANSACTION_ID,
    F_ORDER_ID,
    F_CUSTOMER_ID,
    F_PURCHASE_ID,
    F_CAMPAIGN_ID,
    F_CURRENCY,
    F_AFF_ID,
    F_CYCLE,
    F_DATE_UPDATED,
    F_PRODUCT_ID,
    F_ITEMS,
    F_ORDER_TYPE,
    F_CB_FLAG,
    F_CB_DATE,
    F_CB_AMOUNT,
    F_CB_REASON,
    F_TOTAL,
    F_TXN_TYPE,
    F_RESPONSE,
    F_DATE_CREATED,
    F_PARENT,
    F_STATUS,
    F_NEXT_BILL,
    F_ORDER_STATUS,
    F_COUPON,
    F_RECYCLE,
    F_REFUND_REASON,
    F_SV1,
    F_SV2,
    F_SV3,
    F_SV4,
    F_SV5,
    F_PRICE,
    F_SHIPPING,
    F_TAX,
    F_DISCOUNT,
    F_COUNT
};

#define NAME(s)          \
    {                    \
        s, sizeof(s) - 1 \
    }
static const struct {
    const char *s;
    size_t len;
} field_names[F_COUNT] = {NAME("transactionId"),
                          NAME("orderId"),
                          NAME("customerId"),
                          NAME("purchaseId"),
                          NAME("campaignId"),
                          NAME("currencyCode"),
                          NAME("affId"),
                          NAME("billingCycleNumber"),
                          NAME("dateUpdated"),
                          NAME("productId"),
                          NAME("items"),
                          NAME("orderType"),
                          NAME("isChargedback"),
                          NAME("chargebackDate"),
                          NAME("chargebackAmount"),
                          NAME("chargebackReasonCode"),
                          NAME("totalAmount"),
                          NAME("txnType"),
                          NAME("responseType"),
                          NAME("dateCreated"),
                          NAME("parentTxnId"),
                          NAME("status"),
                          NAME("nextBillDate"),
                          NAME("orderStatus"),
                          NAME("couponCode"),
                          NAME("recycleNumber"),
                          NAME("refundReason"),
                          NAME("sourceValue1"),
                          NAME("sourceValue2"),
                          NAME("sourceValue3"),
                          NAME("sourceValue4"),
                          NAME("sourceValue5"),
                          NAME("price"),
                          NAME("baseShipping"),
                          NAME("salesTax"),
                          NAME("totalDiscount")};
#undef NAME

/* The first item of each known name (as cJSON_GetObjectItemCaseSensitive). */
typedef lt_event_fields_t fields_t;
_Static_assert(F_COUNT == LT_EVENT_FIELDS, "LT_EVENT_FIELDS is the number of fields");

/* Candidates by first letter (a record has ~45 keys, up to 36 known). */
static int field_of(const char *key)
{
    /* Field + 1 (0 ends a list). */
#define L(c) [(c) - 'a']
    static const unsigned char by_letter[][7] = {
        L('a') = {F_AFF_ID + 1},
        L('b') = {F_CYCLE + 1, F_SHIPPING + 1},
        L('c') = {F_CUSTOMER_ID + 1, F_CAMPAIGN_ID + 1, F_CURRENCY + 1, F_CB_DATE + 1,
                  F_CB_AMOUNT + 1, F_CB_REASON + 1, F_COUPON + 1},
        L('d') = {F_DATE_UPDATED + 1, F_DATE_CREATED + 1},
        L('i') = {F_ITEMS + 1, F_CB_FLAG + 1},
        L('n') = {F_NEXT_BILL + 1},
        L('o') = {F_ORDER_ID + 1, F_ORDER_TYPE + 1, F_ORDER_STATUS + 1},
        L('p') = {F_PURCHASE_ID + 1, F_PRODUCT_ID + 1, F_PARENT + 1, F_PRICE + 1},
        L('r') = {F_RESPONSE + 1, F_RECYCLE + 1, F_REFUND_REASON + 1},
        L('s') = {F_STATUS + 1, F_SV1 + 1, F_SV2 + 1, F_SV3 + 1, F_SV4 + 1, F_SV5 + 1, F_TAX + 1},
        L('t') = {F_TRANSACTION_ID + 1, F_TOTAL + 1, F_TXN_TYPE + 1, F_DISCOUNT + 1},
    };
#undef L
    unsigned c = (unsigned char)key[0] - 'a';
    if (c >= sizeof(by_letter) / sizeof(by_letter[0]))
        return -1;
    for (const unsigned char *k = by_letter[c]; k < by_letter[c] + 7 && *k; k++) {
        const char *name = field_names[*k - 1].s; /* key[0] == name[0] */
        if (key[1] == name[1] && strcmp(key + 1, name + 1) == 0)
            return *k - 1;
    }
    return -1;
}

void lt_event_index(const cJSON *rec, fields_t *fx)
{
    const cJSON *it;
    memset(fx, 0, sizeof(*fx));
    if (!lt_j_is_object(rec))
        return;
    cJSON_ArrayForEach(it, rec)
    {
        int k = it->string ? field_of(it->string) : -1;
        if (k >= 0 && !fx->f[k])
            fx->f[k] = it;
    }
}

/* ---- record fields ---- */

static lt_err_t fail(char *errstr, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static lt_err_t fail(char *errstr, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (errstr && errlen)
        vsnprintf(errstr, errlen, fmt, ap);
    va_end(ap);
    return LT_ERR_PERMANENT;
}

/* Ids become parts of keys and event names: 1..64 of [A-Za-z0-9_.:-]. */
static int get_id(const cJSON *it, char out[ID_MAX])
{
    if (lt_json_item_id(it, out, ID_MAX) != 0 || out[0] == '\0')
        return -1;
    for (const char *s = out; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '.' || *s == ':' || *s == '-'))
            return -1;
    return 0;
}

/* Optional id: "" when absent or null; -1 when present but invalid. */
static int opt_id(const cJSON *it, char out[ID_MAX])
{
    out[0] = '\0';
    if (!it || lt_j_is_null(it) || (lt_j_is_string(it) && it->valuestring[0] == '\0'))
        return 0;
    return get_id(it, out);
}

/* A non-empty string value, else NULL. */
static const char *opt_str(const cJSON *it)
{
    return lt_j_is_string(it) && it->valuestring && it->valuestring[0] ? it->valuestring : NULL;
}

/* A decimal amount: a string, or a JSON number rebuilt exactly from its
 * shortest (<= 15 significant digits) decimal form; a number needing more
 * digits than that is refused rather than rounded. */
static lt_err_t get_amount(const cJSON *it, const char *key, int exponent, int64_t *minor,
                           char *errstr, size_t errlen)
{
    char num[40], why[96];
    const char *s = num;
    if (lt_j_is_string(it) && it->valuestring) {
        s = it->valuestring;
    } else if (lt_j_is_number(it) && isfinite(it->valuedouble)) {
        snprintf(num, sizeof(num), "%.15g", it->valuedouble);
        if (strtod(num, NULL) != it->valuedouble || strchr(num, 'e'))
            return fail(errstr, errlen, "%s: number not exactly decimal", key);
    } else {
        return fail(errstr, errlen, "%s: missing", key);
    }
    if (lt_money_parse(s, strlen(s), exponent, minor, why, sizeof(why)) != LT_OK)
        return fail(errstr, errlen, "%s: %s", key, why);
    if (*minor == INT64_MIN)
        return fail(errstr, errlen, "%s: amount out of range", key);
    *minor = *minor < 0 ? -*minor : *minor;
    return LT_OK;
}

static int get_flag(const cJSON *it)
{
    long long v;
    if (lt_j_is_bool(it))
        return lt_j_is_true(it);
    return lt_json_item_int(it, &v) == 0 && v != 0;
}

/* ---- one row, one event ---- */

typedef struct {
    const lt_event_input_t *in;
    fields_t fx;
    const char *stream;
    char record_id[ID_MAX], customer_id[ID_MAX], order_id[ID_MAX];
    char transaction_id[ID_MAX], campaign_id[ID_MAX], affiliate_id[ID_MAX];
    char currency[4];
    int exponent, has_cycle, has_recycle, has_sv;
    long long cycle, recycle;
    const char *date_updated;
    const char *sv[5];  /* sourceValue1..5: non-empty strings, else NULL */
    char products[256]; /* JSON array text */
} row_t;

/* An order event's own fields (build_order). */
#define ORDER_ITEMS_MAX 64
typedef struct {
    char product_id[ID_MAX];
    int has_qty, has_price;
    long long qty;
    int64_t price;
} item_t;

enum { TOT_TOTAL, TOT_PRICE, TOT_SHIPPING, TOT_TAX, TOT_DISCOUNT, TOT_COUNT };

typedef struct {
    const char *type, *status, *coupon;
    int upsell;
    size_t n;
    item_t items[ORDER_ITEMS_MAX];
    int has_tot[TOT_COUNT];
    int64_t tot[TOT_COUNT];
} order_t;

#define FX(r, k) ((r)->fx.f[k])

typedef struct {
    lt_evtype_t type;
    const char *subtype;
    int64_t utc;
    int day_precision, has_amount, has_attempted, occurrence, with_money;
    int64_t amount, attempted;
    const char *extra_keys[4], *extra_vals[4]; /* optional type-specific fields */
    int from_txn;         /* a transactions row: recycle_number, source_values */
    const order_t *order; /* an order event's fields, else NULL */
} ev_t;

/* Wall time in the account zone -> UTC (fold=0). */
static int wall_to_utc(const row_t *r, const char *s, int *day_only, int64_t *utc)
{
    lt_datetime_t dt;
    int has_time;
    if (!s || lt_date_parse_any(s, strlen(s), &dt, &has_time) != 0)
        return -1;
    *day_only = !has_time;
    *utc = lt_tz_local_to_utc(r->in->tz, lt_date_to_seconds(&dt));
    return 0;
}

static void write_dates(lt_buf_t *b, const row_t *r, const ev_t *e)
{
    char at[32], day[16], tod[16];
    lt_tz_local_t loc;
    lt_datetime_t dt;
    lt_date_fmt_rfc3339(e->utc, at, sizeof(at));
    lt_tz_utc_to_local(r->in->tz, e->utc, &loc);
    lt_date_from_seconds(loc.local_secs, &dt);
    lt_date_fmt_day(&dt, day, sizeof(day));
    lt_date_fmt_time(&dt, tod, sizeof(tod));
    KRAW(b, "occurred_at", at);
    KRAW(b, "local_date", day);
    KRAW(b, "local_time", tod);
    KSTR(b, "timezone", lt_tz_name(r->in->tz));
    KRAW(b, "date_precision", e->day_precision ? "day" : "second");
}

static void write_order(lt_buf_t *b, const order_t *o)
{
    static const char *const tot_keys[TOT_COUNT] = {
        "\"total_minor\":", "\"price_minor\":", "\"shipping_minor\":", "\"tax_minor\":",
        "\"discount_minor\":"};
    jb_kstr(b, "order_type", o->type, LABEL_MAX);
    jb_kstr(b, "order_status", o->status, LABEL_MAX);
    jb_kstr(b, "coupon_code", o->coupon, LABEL_MAX);
    jb_lit(b, o->upsell ? ",\"has_upsell\":true" : ",\"has_upsell\":false");
    jb_lit(b, ",\"items\":[");
    for (size_t i = 0; i < o->n; i++) {
        const item_t *it = &o->items[i];
        jb_lit(b, i ? ",{\"product_id\":\"" : "{\"product_id\":\"");
        jb_lit(b, it->product_id); /* an id: nothing to escape */
        lt_buf_put(b, "\"", 1);
        KINT(b, "quantity", it->has_qty, it->qty);
        KINT(b, "price_minor", it->has_price, it->price);
        lt_buf_put(b, "}", 1);
    }
    jb_lit(b, "],\"totals\":{");
    for (int i = 0; i < TOT_COUNT; i++) {
        if (i)
            lt_buf_put(b, ",", 1);
        jb_int(b, tot_keys[i], strlen(tot_keys[i]), o->has_tot[i], o->tot[i]);
    }
    lt_buf_put(b, "}", 1);
}

static void write_event(lt_buf_t *b, const row_t *r, const ev_t *e, const char *event_id)
{
    jb_lit(b, "{\"schema\":\"" LT_EVENT_SCHEMA "\"");
    KRAW(b, "event_id", event_id);
    KRAW(b, "type", lt_evtype_name(e->type));
    KRAW(b, "subtype", e->subtype);
    KSTR(b, "integration_id", r->in->integration_id);
    KSTR(b, "brand", r->in->brand);
    KRAW(b, "customer_id", r->customer_id);
    KRAW(b, "order_id", r->order_id);
    KRAW(b, "transaction_id", r->transaction_id);
    write_dates(b, r, e);
    KINT(b, "amount_minor", e->has_amount, e->amount);
    if (e->has_attempted)
        KINT(b, "attempted_minor", 1, e->attempted);
    KSTR(b, "currency", e->with_money ? r->currency : NULL);
    KINT(b, "billing_cycle", r->has_cycle, r->cycle);
    KRAW(b, "campaign_id", r->campaign_id);
    jb_lit(b, ",\"product_ids\":");
    jb_lit(b, r->products);
    KSTR(b, "affiliate_id", r->affiliate_id);
    if (e->from_txn)
        KINT(b, "recycle_number", r->has_recycle, r->recycle);
    if (e->order)
        write_order(b, e->order);
    if ((e->from_txn || e->order) && r->has_sv) {
        jb_lit(b, ",\"source_values\":[");
        for (int i = 0; i < 5; i++) {
            if (i)
                lt_buf_put(b, ",", 1);
            jb_text(b, r->sv[i], TEXT_MAX);
        }
        lt_buf_put(b, "]", 1);
    }
    if (e->occurrence)
        KINT(b, "occurrence", 1, e->occurrence);
    for (int i = 0; i < 4 && e->extra_keys[i]; i++)
        jb_kstr(b, e->extra_keys[i], e->extra_vals[i], TEXT_MAX);
    jb_lit(b, ",\"source\":{\"stream\":");
    jb_str(b, r->stream);
    KRAW(b, "record_id", r->record_id);
    KSTR(b, "fetched_at", r->in->fetched_at);
    KSTR(b, "date_updated", r->date_updated);
    jb_lit(b, "}}");
}

/* event_id = UUIDv5(ns, "integration/stream/record_id/type[/occurrence]"),
 * the occurrence only from the second chargeback of a transaction on.
 * Events follow each other in out->buf, each NUL-terminated. */
static lt_err_t emit(const row_t *r, const ev_t *e, lt_event_list_t *out)
{
    char name[320], num[24], *occ = fmt_i64(num + sizeof(num), e->occurrence), id[37];
    const char *parts[5] = {r->in->integration_id, r->stream, r->record_id, lt_evtype_name(e->type),
                            occ};
    size_t lens[5] = {strlen(parts[0]), strlen(parts[1]), strlen(parts[2]), strlen(parts[3]),
                      (size_t)(num + sizeof(num) - occ)};
    size_t start = out->buf.len, n = 0;
    int nparts = e->occurrence > 1 ? 5 : 4;
    for (int i = 0; i < nparts; i++) {
        if (n + lens[i] + 1 >= sizeof(name) || out->n >= LT_EVENT_MAX)
            return LT_ERR_PERMANENT;
        if (i)
            name[n++] = '/';
        memcpy(name + n, parts[i], lens[i]);
        n += lens[i];
    }
    lt_uuid_v5(LT_UUID_NS_LTVSYNC, name, n, id);
    write_event(&out->buf, r, e, id);
    if (out->buf.oom)
        return LT_ERR_FATAL;
    out->ev[out->n++] = (lt_event_t){e->type, NULL, out->buf.len - start};
    lt_buf_put(&out->buf, "", 1); /* the NUL separator */
    return out->buf.oom ? LT_ERR_FATAL : LT_OK;
}

/* Appends ,"id" (or "id" first) to the product list; 0 while it fits. */
static int product_add(char *list, size_t *len, size_t cap, const char *id)
{
    size_t n = strlen(id), need = *len + (*len > 1) + n + 2;
    if (need + 2 > cap) /* room for "]" and the NUL */
        return -1;
    if (*len > 1)
        list[(*len)++] = ',';
    list[(*len)++] = '"';
    memcpy(list + *len, id, n); /* ids are [A-Za-z0-9_.:-]: nothing to escape */
    *len += n;
    list[(*len)++] = '"';
    return 0;
}

/* product_ids: "productId", or the entries of "items" (at most 8; "[]" when
 * the list would not fit in 255 bytes). */
static void collect_products(row_t *r)
{
    char id[ID_MAX];
    const cJSON *items = FX(r, F_ITEMS), *it;
    const cJSON *list = lt_j_is_object(items) || lt_j_is_array(items) ? items : NULL;
    size_t len = 1;
    int n = 0, fits = 1;
    r->products[0] = '[';
    if (opt_id(FX(r, F_PRODUCT_ID), id) == 0 && id[0]) {
        fits = product_add(r->products, &len, sizeof(r->products), id) == 0;
        n++;
    }
    cJSON_ArrayForEach(it, list)
    {
        if (n >= 8 || opt_id(cJSON_GetObjectItemCaseSensitive(it, "productId"), id) != 0 || !id[0])
            continue;
        fits = fits && product_add(r->products, &len, sizeof(r->products), id) == 0;
        n++;
    }
    if (!fits)
        len = 1;
    r->products[len++] = ']';
    r->products[len] = '\0';
}

static const char *const record_id_key[LT_STREAM_COUNT] = {"transactionId", "orderId", "customerId",
                                                           "purchaseId", "campaignId"};
static const int record_id_field[LT_STREAM_COUNT] = {F_TRANSACTION_ID, F_ORDER_ID, F_CUSTOMER_ID,
                                                     F_PURCHASE_ID, F_CAMPAIGN_ID};

/* The length of s cut to at most max bytes on a UTF-8 character boundary
 * (never inside a multi-byte character: a cut one is invalid JSON text for
 * whoever reads the event). */
static size_t utf8_cut(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max)
        return n;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return max;
}

static lt_err_t row_init(row_t *r, const lt_event_input_t *in, char *errstr, size_t errlen)
{
    const char *cur, *aff;
    size_t n;
    memset(r, 0, sizeof(*r));
    r->in = in;
    if (in->fields)
        r->fx = *in->fields;
    else
        lt_event_index(in->record, &r->fx);
    cur = opt_str(FX(r, F_CURRENCY));
    aff = opt_str(FX(r, F_AFF_ID));
    r->stream = lt_stream_name(in->stream);
    if (get_id(FX(r, record_id_field[in->stream]), r->record_id) != 0)
        return fail(errstr, errlen, "%s: missing or invalid", record_id_key[in->stream]);
    if (in->stream == LT_STREAM_TRANSACTIONS)
        memcpy(r->transaction_id, r->record_id, sizeof(r->record_id));
    if (opt_id(FX(r, F_CUSTOMER_ID), r->customer_id) != 0)
        return fail(errstr, errlen, "customerId: invalid");
    if (opt_id(FX(r, F_ORDER_ID), r->order_id) != 0)
        return fail(errstr, errlen, "orderId: invalid");
    if (opt_id(FX(r, F_CAMPAIGN_ID), r->campaign_id) != 0)
        return fail(errstr, errlen, "campaignId: invalid");
    n = aff ? utf8_cut(aff, sizeof(r->affiliate_id) - 1) : 0;
    memcpy(r->affiliate_id, aff ? aff : "", n);
    r->affiliate_id[n] = '\0';
    n = utf8_cut(cur ? cur : in->currency, sizeof(r->currency) - 1);
    memcpy(r->currency, cur ? cur : in->currency, n);
    r->currency[n] = '\0';
    r->exponent = lt_money_exponent(r->currency, strlen(r->currency));
    if (cur && strlen(cur) != 3)
        r->exponent = -1;
    r->has_cycle = lt_json_item_int(FX(r, F_CYCLE), &r->cycle) == 0;
    r->has_recycle = lt_json_item_int(FX(r, F_RECYCLE), &r->recycle) == 0;
    for (int i = 0; i < 5; i++) {
        r->sv[i] = opt_str(FX(r, F_SV1 + i));
        r->has_sv |= r->sv[i] != NULL;
    }
    r->date_updated = opt_str(FX(r, F_DATE_UPDATED));
    collect_products(r);
    return LT_OK;
}

static int upsell_text(const char *s)
{
    return s && (strcasestr(s, "UPSALE") || strcasestr(s, "UPSELL"));
}

/* The CRM may mark an upsell by the order type or by an item's product type
 * (the API sheet does not settle which): either one counts. */
static int has_upsell(const row_t *r)
{
    const cJSON *items = FX(r, F_ITEMS), *it;
    if (upsell_text(lt_json_item_str(FX(r, F_ORDER_TYPE))))
        return 1;
    if (!lt_j_is_object(items) && !lt_j_is_array(items))
        return 0;
    cJSON_ArrayForEach(it, items) if (lt_j_is_object(it) &&
                                      upsell_text(lt_json_item_str(cJSON_GetObjectItemCaseSensitive(
                                          it, "productType")))) return 1;
    return 0;
}

static const char *payment_subtype(const row_t *r)
{
    if (r->has_cycle && r->cycle >= 2)
        return "rebill";
    return has_upsell(r) ? "upsell" : "initial";
}

/* An optional amount: *has 0 when absent, null or ""; else it must parse. */
static lt_err_t opt_amount(const cJSON *it, const char *key, int exponent, int *has, int64_t *minor,
                           char *errstr, size_t errlen)
{
    *has = 0;
    *minor = 0;
    if (!it || lt_j_is_null(it) || (lt_j_is_string(it) && it->valuestring[0] == '\0'))
        return LT_OK;
    if (get_amount(it, key, exponent, minor, errstr, errlen) != LT_OK)
        return LT_ERR_PERMANENT;
    *has = 1;
    return LT_OK;
}

/* The chargeback or its reversal carried by a SUCCESS SALE/CAPTURE row. */
static lt_err_t chargeback_event(const row_t *r, ev_t *e, int *has, char *errstr, size_t errlen)
{
    const lt_cb_state_t *st = r->in->cb;
    int flag = get_flag(FX(r, F_CB_FLAG)), day_only = 0;
    const char *cbdate = opt_str(FX(r, F_CB_DATE));
    int by_cb = opt_str(FX(r, F_CB_AMOUNT)) || lt_j_is_number(FX(r, F_CB_AMOUNT));
    const char *amount_key = by_cb ? "chargebackAmount" : "totalAmount";
    *has = 0;
    if (flag) {
        e->occurrence = !st ? 1 : st->occurrence > 0 && !st->reverted ? st->occurrence : 0;
        if (!e->occurrence)
            return LT_OK; /* a stale row: the state has moved on */
        e->type = LT_EV_CHARGEBACK;
        if (wall_to_utc(r, cbdate ? cbdate : r->date_updated, &day_only, &e->utc) != 0)
            return fail(errstr, errlen, "chargebackDate: missing or invalid");
        e->day_precision = day_only;
        e->extra_keys[0] = "chargeback_reason_code";
        e->extra_vals[0] = opt_str(FX(r, F_CB_REASON));
    } else {
        if (!st || !st->reverted || st->occurrence < 1)
            return LT_OK;
        e->type = LT_EV_CHARGEBACK_REVERSAL;
        e->occurrence = st->occurrence;
        if (wall_to_utc(r, st->reversal_date_updated, &day_only, &e->utc) != 0)
            return fail(errstr, errlen, "reversal dateUpdated invalid");
        e->day_precision = day_only;
    }
    if (get_amount(FX(r, by_cb ? F_CB_AMOUNT : F_TOTAL), amount_key, r->exponent, &e->amount,
                   errstr, errlen) != LT_OK)
        return LT_ERR_PERMANENT;
    e->amount = flag ? -e->amount : e->amount;
    e->has_amount = e->with_money = 1;
    *has = 1;
    return LT_OK;
}

static const char *const txn_types[] = {"SALE", "AUTHORIZE", "CAPTURE", "REFUND", "VOID"};
static const char *const resp_types[] = {"SUCCESS", "SOFT_DECLINE", "HARD_DECLINE"};

static lt_err_t build_transaction(const row_t *r, lt_event_list_t *out, char *errstr, size_t errlen)
{
    int type = lt_str_index(lt_json_item_str(FX(r, F_TXN_TYPE)), txn_types, 5);
    int resp = lt_str_index(lt_json_item_str(FX(r, F_RESPONSE)), resp_types, 3);
    int day_only, has_cb = 0;
    char parent[ID_MAX];
    ev_t e = {.from_txn = 1}, cb = {.from_txn = 1};
    lt_err_t err;
    if (type < 0)
        return fail(errstr, errlen, "txnType: unknown or missing");
    if (resp < 0)
        return fail(errstr, errlen, "responseType: unknown or missing");
    if (!r->customer_id[0])
        return fail(errstr, errlen, "customerId: missing");
    if (r->exponent < 0)
        return fail(errstr, errlen, "currency %s: unknown", r->currency);
    if (wall_to_utc(r, opt_str(FX(r, F_DATE_CREATED)), &day_only, &e.utc) != 0 || day_only)
        return fail(errstr, errlen, "dateCreated: missing or invalid");
    if (type == 1 && resp == 0) {
        out->note = LT_EVENT_NOTE_AUTHORIZE;
        return LT_OK;
    }
    if (get_amount(FX(r, F_TOTAL), "totalAmount", r->exponent, &e.amount, errstr, errlen) != LT_OK)
        return LT_ERR_PERMANENT;
    e.has_amount = e.with_money = 1;
    if (resp != 0) {
        e.type = LT_EV_DECLINE;
        e.subtype = resp == 1 ? "soft" : "hard";
        e.attempted = e.amount;
        e.has_attempted = 1;
        e.amount = 0;
    } else if (type == 0 || type == 2) {
        e.type = LT_EV_PAYMENT;
        e.subtype = payment_subtype(r);
        if ((err = chargeback_event(r, &cb, &has_cb, errstr, errlen)) != LT_OK)
            return err;
    } else {
        e.type = type == 3 ? LT_EV_REFUND : LT_EV_VOID;
        e.amount = -e.amount;
        e.extra_keys[0] = "parent_transaction_id";
        e.extra_vals[0] = opt_id(FX(r, F_PARENT), parent) == 0 ? parent : NULL;
        if (type == 3) {
            e.extra_keys[1] = "refund_reason";
            e.extra_vals[1] = opt_str(FX(r, F_REFUND_REASON));
        }
    }
    if ((err = emit(r, &e, out)) != LT_OK || !has_cb)
        return err;
    return emit(r, &cb, out);
}

/* customer and subscription updates: dated dateUpdated (else dateCreated). */
static lt_err_t dated_update(const row_t *r, ev_t *e, char *errstr, size_t errlen)
{
    const char *s = r->date_updated ? r->date_updated : opt_str(FX(r, F_DATE_CREATED));
    if (wall_to_utc(r, s, &e->day_precision, &e->utc) != 0)
        return fail(errstr, errlen, "dateUpdated: missing or invalid");
    return LT_OK;
}

static const char *const purchase_status[] = {
    "ACTIVE", "TRIAL", "PAUSED", "CANCELLED", "COMPLETE", "RECYCLE_BILLING", "RECYCLE_FAILED"};

static lt_err_t build_purchase(const row_t *r, lt_event_list_t *out, char *errstr, size_t errlen)
{
    const char *status = lt_json_item_str(FX(r, F_STATUS));
    const char *next = opt_str(FX(r, F_NEXT_BILL));
    lt_datetime_t dt;
    ev_t e = {.type = LT_EV_SUBSCRIPTION};
    if (!r->customer_id[0])
        return fail(errstr, errlen, "customerId: missing");
    if (lt_str_index(status, purchase_status, 7) < 0)
        return fail(errstr, errlen, "status: unknown or missing");
    if (next && lt_date_parse_day(next, strlen(next), &dt) != 0)
        return fail(errstr, errlen, "nextBillDate: invalid");
    if (dated_update(r, &e, errstr, errlen) != LT_OK)
        return LT_ERR_PERMANENT;
    e.extra_keys[0] = "subscription_id";
    e.extra_vals[0] = r->record_id;
    e.extra_keys[1] = "status";
    e.extra_vals[1] = status;
    e.extra_keys[2] = "next_bill_date";
    e.extra_vals[2] = next;
    return emit(r, &e, out);
}

static lt_err_t build_customer(const row_t *r, lt_event_list_t *out, char *errstr, size_t errlen)
{
    ev_t e = {.type = LT_EV_CUSTOMER};
    if (dated_update(r, &e, errstr, errlen) != LT_OK)
        return LT_ERR_PERMANENT;
    return emit(r, &e, out);
}

/* The order's items, in the row's order: an object keyed by product id or
 * an array; anything else counts as none. */
static lt_err_t order_items(const row_t *r, order_t *o, char *errstr, size_t errlen)
{
    const cJSON *items = FX(r, F_ITEMS), *it;
    if (!lt_j_is_object(items) && !lt_j_is_array(items))
        return LT_OK;
    cJSON_ArrayForEach(it, items)
    {
        item_t *x = &o->items[o->n];
        if (o->n >= ORDER_ITEMS_MAX)
            return fail(errstr, errlen, "items: more than %d", ORDER_ITEMS_MAX);
        if (!lt_j_is_object(it) ||
            get_id(cJSON_GetObjectItemCaseSensitive(it, "productId"), x->product_id) != 0)
            return fail(errstr, errlen, "items: productId missing or invalid");
        x->has_qty = lt_json_item_int(cJSON_GetObjectItemCaseSensitive(it, "qty"), &x->qty) == 0;
        if (opt_amount(cJSON_GetObjectItemCaseSensitive(it, "price"), "items: price", r->exponent,
                       &x->has_price, &x->price, errstr, errlen) != LT_OK)
            return LT_ERR_PERMANENT;
        o->n++;
    }
    return LT_OK;
}

/* An order update (no amount: its money moves in its transactions), with
 * the dimensions a cohort is cut by. PARTIAL orders are abandoned
 * checkouts: no event. */
static lt_err_t build_order(const row_t *r, lt_event_list_t *out, char *errstr, size_t errlen)
{
    static const int tot_field[TOT_COUNT] = {F_TOTAL, F_PRICE, F_SHIPPING, F_TAX, F_DISCOUNT};
    static const char *const tot_name[TOT_COUNT] = {"totalAmount", "price", "baseShipping",
                                                    "salesTax", "totalDiscount"};
    const char *status = lt_json_item_str(FX(r, F_ORDER_STATUS));
    order_t o;
    ev_t e = {.type = LT_EV_ORDER, .with_money = 1, .order = &o};
    if (status && strcmp(status, "PARTIAL") == 0) {
        out->note = LT_EVENT_NOTE_PARTIAL_ORDER;
        return LT_OK;
    }
    if (!r->customer_id[0])
        return fail(errstr, errlen, "customerId: missing");
    if (r->exponent < 0)
        return fail(errstr, errlen, "currency %s: unknown", r->currency);
    if (dated_update(r, &e, errstr, errlen) != LT_OK)
        return LT_ERR_PERMANENT;
    o.type = opt_str(FX(r, F_ORDER_TYPE));
    o.status = opt_str(FX(r, F_ORDER_STATUS));
    o.coupon = opt_str(FX(r, F_COUPON));
    o.upsell = has_upsell(r);
    o.n = 0;
    if (order_items(r, &o, errstr, errlen) != LT_OK)
        return LT_ERR_PERMANENT;
    for (int i = 0; i < TOT_COUNT; i++)
        if (opt_amount(FX(r, tot_field[i]), tot_name[i], r->exponent, &o.has_tot[i], &o.tot[i],
                       errstr, errlen) != LT_OK)
            return LT_ERR_PERMANENT;
    return emit(r, &e, out);
}

/* Empties the list but keeps its buffer (a failed one is dropped). */
static void list_reset(lt_event_list_t *out)
{
    lt_buf_t keep = out->buf;
    if (keep.oom)
        lt_buf_release(&keep);
    keep.len = 0;
    memset(out, 0, sizeof(*out));
    out->buf = keep;
}

/* Points each event at its bytes, now that the buffer stopped moving. */
static void list_finish(lt_event_list_t *out)
{
    size_t off = 0;
    for (size_t i = 0; i < out->n; i++) {
        out->ev[i].json = out->buf.p + off;
        off += out->ev[i].len + 1;
    }
}

lt_err_t lt_event_build(const lt_event_input_t *in, lt_event_list_t *out, char *errstr,
                        size_t errlen)
{
    row_t r;
    lt_err_t err;
    list_reset(out);
    if (!lt_j_is_object(in->record) || (unsigned)in->stream >= LT_STREAM_COUNT || !in->tz)
        return fail(errstr, errlen, "record is not an object");
    if ((err = row_init(&r, in, errstr, errlen)) != LT_OK)
        return err;
    switch (in->stream) {
    case LT_STREAM_TRANSACTIONS: err = build_transaction(&r, out, errstr, errlen); break;
    case LT_STREAM_CUSTOMERS: err = build_customer(&r, out, errstr, errlen); break;
    case LT_STREAM_PURCHASES: err = build_purchase(&r, out, errstr, errlen); break;
    case LT_STREAM_ORDERS: err = build_order(&r, out, errstr, errlen); break;
    default: out->note = LT_EVENT_NOTE_REFERENCE; break;
    }
    if (err == LT_OK && out->n > 0) {
        size_t a = strlen(in->integration_id), c = strlen(r.customer_id);
        out->keylen = 0;
        if (a + 1 + c < sizeof(out->key)) {
            memcpy(out->key, in->integration_id, a);
            out->key[a] = '/';
            memcpy(out->key + a + 1, r.customer_id, c + 1);
            out->keylen = a + 1 + c;
        }
    }
    if (err != LT_OK) {
        if (err == LT_ERR_FATAL)
            fail(errstr, errlen, "out of memory");
        list_reset(out);
    }
    list_finish(out);
    return err;
}

void lt_event_list_release(lt_event_list_t *out)
{
    lt_buf_release(&out->buf);
    memset(out, 0, sizeof(*out));
}

int lt_event_cb_probe(lt_stream_t stream, const cJSON *record, const lt_event_fields_t *fields,
                      lt_cb_probe_t *out)
{
    fields_t fx;
    const char *du;
    int type;
    memset(out, 0, sizeof(*out));
    if (stream != LT_STREAM_TRANSACTIONS || !lt_j_is_object(record))
        return -1;
    if (fields)
        fx = *fields;
    else
        lt_event_index(record, &fx);
    type = lt_str_index(lt_json_item_str(fx.f[F_TXN_TYPE]), txn_types, 5);
    du = opt_str(fx.f[F_DATE_UPDATED]);
    if ((type != 0 && type != 2) ||
        lt_str_index(lt_json_item_str(fx.f[F_RESPONSE]), resp_types, 3) != 0 ||
        get_id(fx.f[F_TRANSACTION_ID], out->transaction_id) != 0)
        return -1;
    out->applies = 1;
    out->flag = get_flag(fx.f[F_CB_FLAG]);
    /* Stored in the Redis history (a JSON array built by cjson, so no text
     * can add an entry) and compared as text with the newest applied: only
     * a date's characters are passed on. */
    if (du && strlen(du) < sizeof(out->date_updated) && strspn(du, "0123456789-: T") == strlen(du))
        memcpy(out->date_updated, du, strlen(du) + 1);
    return 0;
}

/* A decimal int64 string, all digits. */
static int cb_num(const cJSON *j, long long *out)
{
    const char *s = cJSON_IsString(j) ? j->valuestring : NULL;
    if (!s || !*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 18)
        return -1;
    *out = strtoll(s, NULL, 10);
    return 0;
}

/* One history entry ["C",p,o] or ["R",p,o,date]. */
static int cb_entry(const cJSON *e, lt_cb_state_t *st, int32_t partition, int64_t offset)
{
    int n = cJSON_GetArraySize(e);
    const cJSON *k = cJSON_GetArrayItem(e, 0), *d = cJSON_GetArrayItem(e, 3);
    long long p, o;
    if (!cJSON_IsArray(e) || !cJSON_IsString(k) || k->valuestring[0] == '\0' ||
        k->valuestring[1] != '\0' || cb_num(cJSON_GetArrayItem(e, 1), &p) != 0 ||
        cb_num(cJSON_GetArrayItem(e, 2), &o) != 0)
        return -1;
    if (k->valuestring[0] == 'C' ? n != 3
                                 : k->valuestring[0] != 'R' || n != 4 || !cJSON_IsString(d) ||
                                       strlen(d->valuestring) >= sizeof(st->reversal_date_updated))
        return -1;
    if (p == partition && o > offset)
        return 0; /* observed after the row asked about */
    if (k->valuestring[0] == 'C') {
        st->occurrence++;
        st->reverted = 0;
    } else {
        st->reverted = 1;
        memcpy(st->reversal_date_updated, d->valuestring, strlen(d->valuestring) + 1);
    }
    return 0;
}

int lt_cb_state_at(const char *hist, size_t len, int32_t partition, int64_t offset,
                   lt_cb_state_t *out)
{
    memset(out, 0, sizeof(*out));
    if (len == 0)
        return 0;
    const char *end = NULL;
    cJSON *h = cJSON_ParseWithLengthOpts(hist, len, &end, 0);
    const cJSON *e;
    int rc = cJSON_IsArray(h) && end == hist + len ? 0 : -1; /* nothing after it */
    cJSON_ArrayForEach(e, h) if (rc == 0 && cb_entry(e, out, partition, offset) != 0) rc = -1;
    cJSON_Delete(h);
    return rc;
}
