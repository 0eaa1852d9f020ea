/* lt_event: raw CRM rows to canonical events (see lt_event.h). */
#include "lt_event.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lt_date.h"
#include "lt_json.h"
#include "lt_money.h"
#include "lt_uuid.h"

#define ID_MAX 65

/* ---- a small append-only JSON writer (deterministic key order) ---- */

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} jbuf_t;

static void jb_put(jbuf_t *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void jb_raw(jbuf_t *b, const char *s)
{
    jb_put(b, s, strlen(s));
}

/* A JSON string: quotes, backslashes and control bytes escaped. */
static void jb_str(jbuf_t *b, const char *s)
{
    const char *run = s;
    jb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        char esc[8];
        jb_put(b, run, (size_t)(s - run));
        snprintf(esc, sizeof(esc), c == '"' || c == '\\' ? "\\%c" : "\\u%04x", c);
        jb_raw(b, esc);
        run = s + 1;
    }
    jb_put(b, run, (size_t)(s - run));
    jb_put(b, "\"", 1);
}

/* ,"key": then a string or null */
static void jb_kstr(jbuf_t *b, const char *key, const char *val)
{
    jb_put(b, ",\"", 2);
    jb_raw(b, key);
    jb_put(b, "\":", 2);
    if (val && *val)
        jb_str(b, val);
    else
        jb_raw(b, "null");
}

static void jb_kint(jbuf_t *b, const char *key, int has, int64_t v)
{
    char num[32];
    snprintf(num, sizeof(num), "%" PRId64, v);
    jb_put(b, ",\"", 2);
    jb_raw(b, key);
    jb_put(b, "\":", 2);
    jb_raw(b, has ? num : "null");
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
static int get_id(const cJSON *rec, const char *key, char out[ID_MAX])
{
    if (lt_json_id(rec, key, out, ID_MAX) != 0 || out[0] == '\0')
        return -1;
    for (const char *s = out; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
              (*s >= '0' && *s <= '9') || *s == '_' || *s == '.' || *s == ':' ||
              *s == '-'))
            return -1;
    return 0;
}

/* Optional id: "" when absent or null; -1 when present but invalid. */
static int opt_id(const cJSON *rec, const char *key, char out[ID_MAX])
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(rec, key);
    out[0] = '\0';
    if (!it || cJSON_IsNull(it) || (cJSON_IsString(it) && it->valuestring[0] == '\0'))
        return 0;
    return get_id(rec, key, out);
}

static const char *opt_str(const cJSON *rec, const char *key)
{
    const char *s = lt_json_str(rec, key);
    return s && *s ? s : NULL;
}

/* A decimal amount: a string, or a JSON number rebuilt exactly from its
 * shortest (<= 15 significant digits) decimal form; a number needing more
 * digits than that is refused rather than rounded. */
static lt_err_t get_amount(const cJSON *rec, const char *key, int exponent,
                           int64_t *minor, char *errstr, size_t errlen)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(rec, key);
    char num[40], why[96];
    const char *s = num;
    if (cJSON_IsString(it) && it->valuestring) {
        s = it->valuestring;
    } else if (cJSON_IsNumber(it) && isfinite(it->valuedouble)) {
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

static int get_flag(const cJSON *rec, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(rec, key);
    long long v;
    if (cJSON_IsBool(it))
        return cJSON_IsTrue(it);
    return lt_json_int(rec, key, &v) == 0 && v != 0;
}

/* ---- one row, one event ---- */

typedef struct {
    const lt_event_input_t *in;
    const char *stream;
    char record_id[ID_MAX], customer_id[ID_MAX], order_id[ID_MAX];
    char transaction_id[ID_MAX], campaign_id[ID_MAX], affiliate_id[ID_MAX];
    char currency[4];
    int exponent, has_cycle;
    long long cycle;
    const char *date_updated;
    char products[256]; /* JSON array text */
} row_t;

typedef struct {
    const char *type, *subtype;
    int64_t utc;
    int day_precision, has_amount, has_attempted, occurrence, with_money;
    int64_t amount, attempted;
    const char *extra_keys[4], *extra_vals[4]; /* optional type-specific fields */
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

static void write_dates(jbuf_t *b, const row_t *r, const ev_t *e)
{
    char at[32], day[16], tod[16];
    lt_tz_local_t loc;
    lt_datetime_t dt;
    lt_date_fmt_rfc3339(e->utc, at, sizeof(at));
    lt_tz_utc_to_local(r->in->tz, e->utc, &loc);
    lt_date_from_seconds(loc.local_secs, &dt);
    lt_date_fmt_day(&dt, day, sizeof(day));
    lt_date_fmt_time(&dt, tod, sizeof(tod));
    jb_kstr(b, "occurred_at", at);
    jb_kstr(b, "local_date", day);
    jb_kstr(b, "local_time", tod);
    jb_kstr(b, "timezone", lt_tz_name(r->in->tz));
    jb_kstr(b, "date_precision", e->day_precision ? "day" : "second");
}

static void write_event(jbuf_t *b, const row_t *r, const ev_t *e, const char *event_id)
{
    jb_raw(b, "{\"schema\":\"" LT_EVENT_SCHEMA "\"");
    jb_kstr(b, "event_id", event_id);
    jb_kstr(b, "type", e->type);
    jb_kstr(b, "subtype", e->subtype);
    jb_kstr(b, "integration_id", r->in->integration_id);
    jb_kstr(b, "brand", r->in->brand);
    jb_kstr(b, "customer_id", r->customer_id);
    jb_kstr(b, "order_id", r->order_id);
    jb_kstr(b, "transaction_id", r->transaction_id);
    write_dates(b, r, e);
    jb_kint(b, "amount_minor", e->has_amount, e->amount);
    if (e->has_attempted)
        jb_kint(b, "attempted_minor", 1, e->attempted);
    jb_kstr(b, "currency", e->with_money ? r->currency : NULL);
    jb_kint(b, "billing_cycle", r->has_cycle, r->cycle);
    jb_kstr(b, "campaign_id", r->campaign_id);
    jb_raw(b, ",\"product_ids\":");
    jb_raw(b, r->products);
    jb_kstr(b, "affiliate_id", r->affiliate_id);
    if (e->occurrence)
        jb_kint(b, "occurrence", 1, e->occurrence);
    for (int i = 0; i < 4 && e->extra_keys[i]; i++)
        jb_kstr(b, e->extra_keys[i], e->extra_vals[i]);
    jb_raw(b, ",\"source\":{\"stream\":");
    jb_str(b, r->stream);
    jb_kstr(b, "record_id", r->record_id);
    jb_kstr(b, "fetched_at", r->in->fetched_at);
    jb_kstr(b, "date_updated", r->date_updated);
    jb_raw(b, "}}");
}

/* event_id = UUIDv5(ns, "integration/stream/record_id/type[/occurrence]"),
 * the occurrence only from the second chargeback of a transaction on. */
static lt_err_t emit(const row_t *r, const ev_t *e, lt_event_list_t *out)
{
    char name[320], id[37];
    jbuf_t b = {0};
    int n = snprintf(name, sizeof(name), "%s/%s/%s/%s", r->in->integration_id,
                     r->stream, r->record_id, e->type);
    if (e->occurrence > 1 && n > 0 && (size_t)n < sizeof(name))
        n += snprintf(name + n, sizeof(name) - (size_t)n, "/%d", e->occurrence);
    if (n < 0 || (size_t)n >= sizeof(name) || out->n >= LT_EVENT_MAX)
        return LT_ERR_PERMANENT;
    lt_uuid_v5(LT_UUID_NS_LTVSYNC, name, (size_t)n, id);
    write_event(&b, r, e, id);
    if (b.oom) {
        free(b.p);
        return LT_ERR_FATAL;
    }
    out->ev[out->n++] = (lt_event_t){e->type, b.p, b.len};
    return LT_OK;
}

/* product_ids: "productId", or the keys/entries of "items". */
static void collect_products(row_t *r, const cJSON *rec)
{
    jbuf_t b = {0};
    char id[ID_MAX];
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(rec, "items"), *it;
    const cJSON *list = cJSON_IsObject(items) || cJSON_IsArray(items) ? items : NULL;
    int n = 0;
    jb_raw(&b, "[");
    if (opt_id(rec, "productId", id) == 0 && id[0]) {
        jb_str(&b, id);
        n++;
    }
    cJSON_ArrayForEach(it, list) {
        if (n >= 8 || opt_id(it, "productId", id) != 0 || !id[0])
            continue;
        jb_raw(&b, n++ ? "," : "");
        jb_str(&b, id);
    }
    jb_raw(&b, "]");
    snprintf(r->products, sizeof(r->products), "%s",
             !b.oom && b.len < sizeof(r->products) ? b.p : "[]");
    free(b.p);
}

static const char *const record_id_key[LT_STREAM_COUNT] = {
    "transactionId", "orderId", "customerId", "purchaseId", "campaignId"};

static lt_err_t row_init(row_t *r, const lt_event_input_t *in, char *errstr, size_t errlen)
{
    const char *cur = opt_str(in->record, "currencyCode");
    memset(r, 0, sizeof(*r));
    r->in = in;
    r->stream = lt_stream_name(in->stream);
    if (get_id(in->record, record_id_key[in->stream], r->record_id) != 0)
        return fail(errstr, errlen, "%s: missing or invalid", record_id_key[in->stream]);
    if (in->stream == LT_STREAM_TRANSACTIONS)
        memcpy(r->transaction_id, r->record_id, sizeof(r->record_id));
    if (opt_id(in->record, "customerId", r->customer_id) != 0)
        return fail(errstr, errlen, "customerId: invalid");
    if (opt_id(in->record, "orderId", r->order_id) != 0)
        return fail(errstr, errlen, "orderId: invalid");
    if (opt_id(in->record, "campaignId", r->campaign_id) != 0)
        return fail(errstr, errlen, "campaignId: invalid");
    snprintf(r->affiliate_id, sizeof(r->affiliate_id), "%s",
             opt_str(in->record, "affId") ? opt_str(in->record, "affId") : "");
    snprintf(r->currency, sizeof(r->currency), "%s", cur ? cur : in->currency);
    r->exponent = lt_money_exponent(r->currency, strlen(r->currency));
    if (cur && strlen(cur) != 3)
        r->exponent = -1;
    r->has_cycle = lt_json_int(in->record, "billingCycleNumber", &r->cycle) == 0;
    r->date_updated = opt_str(in->record, "dateUpdated");
    collect_products(r, in->record);
    return LT_OK;
}

static int name_is(const char *s, const char *const *names, size_t n)
{
    for (size_t i = 0; s && i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return (int)i;
    return -1;
}

static const char *payment_subtype(const row_t *r)
{
    const char *ot = opt_str(r->in->record, "orderType");
    if (r->has_cycle && r->cycle >= 2)
        return "rebill";
    if (ot && (strcasestr(ot, "UPSALE") || strcasestr(ot, "UPSELL")))
        return "upsell";
    return "initial";
}

/* The chargeback or its reversal carried by a SUCCESS SALE/CAPTURE row. */
static lt_err_t chargeback_event(const row_t *r, ev_t *e, int *has, char *errstr,
                                 size_t errlen)
{
    const lt_cb_state_t *st = r->in->cb;
    const cJSON *rec = r->in->record;
    int flag = get_flag(rec, "isChargedback"), day_only = 0;
    const char *cbdate = opt_str(rec, "chargebackDate");
    const char *amount_key = opt_str(rec, "chargebackAmount") ||
        cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(rec, "chargebackAmount"))
        ? "chargebackAmount" : "totalAmount";
    *has = 0;
    if (flag) {
        e->occurrence = !st ? 1 : st->occurrence > 0 && !st->reverted ? st->occurrence : 0;
        if (!e->occurrence)
            return LT_OK; /* a stale row: the state has moved on */
        e->type = "chargeback";
        if (wall_to_utc(r, cbdate ? cbdate : r->date_updated, &day_only, &e->utc) != 0)
            return fail(errstr, errlen, "chargebackDate: missing or invalid");
        e->day_precision = day_only;
        e->extra_keys[0] = "chargeback_reason_code";
        e->extra_vals[0] = opt_str(rec, "chargebackReasonCode");
    } else {
        if (!st || !st->reverted || st->occurrence < 1)
            return LT_OK;
        e->type = "chargeback_reversal";
        e->occurrence = st->occurrence;
        if (wall_to_utc(r, st->reversal_date_updated, &day_only, &e->utc) != 0)
            return fail(errstr, errlen, "reversal dateUpdated invalid");
        e->day_precision = day_only;
    }
    if (get_amount(rec, amount_key, r->exponent, &e->amount, errstr, errlen) != LT_OK)
        return LT_ERR_PERMANENT;
    e->amount = flag ? -e->amount : e->amount;
    e->has_amount = e->with_money = 1;
    *has = 1;
    return LT_OK;
}

static const char *const txn_types[] = {"SALE", "AUTHORIZE", "CAPTURE", "REFUND", "VOID"};
static const char *const resp_types[] = {"SUCCESS", "SOFT_DECLINE", "HARD_DECLINE"};

static lt_err_t build_transaction(const row_t *r, lt_event_list_t *out, char *errstr,
                                  size_t errlen)
{
    const cJSON *rec = r->in->record;
    int type = name_is(lt_json_str(rec, "txnType"), txn_types, 5);
    int resp = name_is(lt_json_str(rec, "responseType"), resp_types, 3);
    int day_only, has_cb = 0;
    char parent[ID_MAX];
    ev_t e = {0}, cb = {0};
    lt_err_t err;
    if (type < 0)
        return fail(errstr, errlen, "txnType: unknown or missing");
    if (resp < 0)
        return fail(errstr, errlen, "responseType: unknown or missing");
    if (!r->customer_id[0])
        return fail(errstr, errlen, "customerId: missing");
    if (r->exponent < 0)
        return fail(errstr, errlen, "currency %s: unknown", r->currency);
    if (wall_to_utc(r, opt_str(rec, "dateCreated"), &day_only, &e.utc) != 0 || day_only)
        return fail(errstr, errlen, "dateCreated: missing or invalid");
    if (type == 1 && resp == 0) {
        out->note = LT_EVENT_NOTE_AUTHORIZE;
        return LT_OK;
    }
    if (get_amount(rec, "totalAmount", r->exponent, &e.amount, errstr, errlen) != LT_OK)
        return LT_ERR_PERMANENT;
    e.has_amount = e.with_money = 1;
    if (resp != 0) {
        e.type = "decline";
        e.subtype = resp == 1 ? "soft" : "hard";
        e.attempted = e.amount;
        e.has_attempted = 1;
        e.amount = 0;
    } else if (type == 0 || type == 2) {
        e.type = "payment";
        e.subtype = payment_subtype(r);
        if ((err = chargeback_event(r, &cb, &has_cb, errstr, errlen)) != LT_OK)
            return err;
    } else {
        e.type = type == 3 ? "refund" : "void";
        e.amount = -e.amount;
        e.extra_keys[0] = "parent_transaction_id";
        e.extra_vals[0] = opt_id(rec, "parentTxnId", parent) == 0 ? parent : NULL;
    }
    if ((err = emit(r, &e, out)) != LT_OK || !has_cb)
        return err;
    return emit(r, &cb, out);
}

/* customer and subscription updates: dated dateUpdated (else dateCreated). */
static lt_err_t dated_update(const row_t *r, ev_t *e, char *errstr, size_t errlen)
{
    const char *s = r->date_updated ? r->date_updated : opt_str(r->in->record, "dateCreated");
    if (wall_to_utc(r, s, &e->day_precision, &e->utc) != 0)
        return fail(errstr, errlen, "dateUpdated: missing or invalid");
    return LT_OK;
}

static const char *const purchase_status[] = {
    "ACTIVE", "TRIAL", "PAUSED", "CANCELLED", "COMPLETE", "RECYCLE_BILLING",
    "RECYCLE_FAILED"};

static lt_err_t build_purchase(const row_t *r, lt_event_list_t *out, char *errstr,
                               size_t errlen)
{
    const char *status = lt_json_str(r->in->record, "status");
    const char *next = opt_str(r->in->record, "nextBillDate");
    lt_datetime_t dt;
    ev_t e = {.type = "subscription"};
    if (!r->customer_id[0])
        return fail(errstr, errlen, "customerId: missing");
    if (name_is(status, purchase_status, 7) < 0)
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

static lt_err_t build_customer(const row_t *r, lt_event_list_t *out, char *errstr,
                               size_t errlen)
{
    ev_t e = {.type = "customer"};
    if (dated_update(r, &e, errstr, errlen) != LT_OK)
        return LT_ERR_PERMANENT;
    return emit(r, &e, out);
}

static lt_err_t build_order(const row_t *r, lt_event_list_t *out)
{
    const char *status = lt_json_str(r->in->record, "orderStatus");
    out->note = status && strcmp(status, "PARTIAL") == 0 ? LT_EVENT_NOTE_PARTIAL_ORDER
                                                         : LT_EVENT_NOTE_REFERENCE;
    return LT_OK;
}

lt_err_t lt_event_build(const lt_event_input_t *in, lt_event_list_t *out,
                        char *errstr, size_t errlen)
{
    row_t r;
    lt_err_t err;
    lt_event_list_clear(out);
    if (!cJSON_IsObject(in->record) || (unsigned)in->stream >= LT_STREAM_COUNT || !in->tz)
        return fail(errstr, errlen, "record is not an object");
    if ((err = row_init(&r, in, errstr, errlen)) != LT_OK)
        return err;
    switch (in->stream) {
    case LT_STREAM_TRANSACTIONS: err = build_transaction(&r, out, errstr, errlen); break;
    case LT_STREAM_CUSTOMERS:    err = build_customer(&r, out, errstr, errlen); break;
    case LT_STREAM_PURCHASES:    err = build_purchase(&r, out, errstr, errlen); break;
    case LT_STREAM_ORDERS:       err = build_order(&r, out); break;
    default:                     out->note = LT_EVENT_NOTE_REFERENCE; break;
    }
    if (err == LT_OK && out->n > 0) {
        int n = snprintf(out->key, sizeof(out->key), "%s/%s", in->integration_id,
                         r.customer_id);
        out->keylen = n > 0 && (size_t)n < sizeof(out->key) ? (size_t)n : 0;
    }
    if (err != LT_OK) {
        if (err == LT_ERR_FATAL)
            fail(errstr, errlen, "out of memory");
        lt_event_list_clear(out);
    }
    return err;
}

void lt_event_list_clear(lt_event_list_t *out)
{
    for (size_t i = 0; i < out->n; i++)
        free(out->ev[i].json);
    memset(out, 0, sizeof(*out));
}

int lt_event_cb_probe(lt_stream_t stream, const cJSON *record, lt_cb_probe_t *out)
{
    int type = name_is(lt_json_str(record, "txnType"), txn_types, 5);
    const char *du = opt_str(record, "dateUpdated");
    memset(out, 0, sizeof(*out));
    if (stream != LT_STREAM_TRANSACTIONS || !cJSON_IsObject(record) ||
        (type != 0 && type != 2) ||
        name_is(lt_json_str(record, "responseType"), resp_types, 3) != 0 ||
        get_id(record, "transactionId", out->transaction_id) != 0)
        return -1;
    out->applies = 1;
    out->flag = get_flag(record, "isChargedback");
    snprintf(out->date_updated, sizeof(out->date_updated), "%s",
             du && strlen(du) < sizeof(out->date_updated) ? du : "");
    return 0;
}

/* One history entry "K,p,o[,date]" of n bytes at s. */
static int cb_entry(const char *s, size_t n, lt_cb_state_t *st, int32_t partition,
                    int64_t offset)
{
    char buf[64], kind, date[20] = "";
    long long p, o;
    int used = 0;
    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (sscanf(buf, "%c,%lld,%lld%n", &kind, &p, &o, &used) != 3)
        return -1;
    if (kind == 'R' && (buf[used] != ',' || strlen(buf + used + 1) >= sizeof(date)))
        return -1;
    if (kind == 'R')
        memcpy(date, buf + used + 1, strlen(buf + used + 1) + 1);
    else if (kind != 'C' || buf[used] != '\0')
        return -1;
    if (p == partition && o > offset)
        return 0; /* observed after the row asked about */
    if (kind == 'C') {
        st->occurrence++;
        st->reverted = 0;
    } else {
        st->reverted = 1;
        memcpy(st->reversal_date_updated, date, sizeof(date));
    }
    return 0;
}

int lt_cb_state_at(const char *hist, size_t len, int32_t partition,
                   int64_t offset, lt_cb_state_t *out)
{
    size_t i = 0;
    memset(out, 0, sizeof(*out));
    while (i < len) {
        const char *semi = memchr(hist + i, ';', len - i);
        size_t n = semi ? (size_t)(semi - hist - i) : len - i;
        if (cb_entry(hist + i, n, out, partition, offset) != 0)
            return -1;
        i += n + 1;
    }
    return 0;
}
