/* validate.c: the rules of schemas/event.schema.json in C, field by field,
 * plus what a pattern cannot say: dates exist in the calendar and local_date
 * is within a day of occurred_at's UTC day. Unknown top-level or source keys
 * are refused (the schema's additionalProperties: false), so the downstream
 * contract cannot grow silently. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lt_date.h"
#include "lt_dedupe.h"
#include "lt_integration.h"
#include "lt_json.h"
#include "sink.h"

typedef enum {
    K_SCHEMA,
    K_UUID,
    K_TYPE,
    K_SUBTYPE,
    K_INTEGRATION,
    K_BRAND,
    K_NID,
    K_ID,
    K_UTC,
    K_DAY,
    K_NDAY,
    K_TIME,
    K_NONEMPTY,
    K_PRECISION,
    K_NINT,
    K_INT0,
    K_INT1,
    K_CURRENCY,
    K_IDS,
    K_NSTR,
    K_NTEXT,
    K_NLABEL,
    K_STATUS,
    K_SOURCE,
    K_SVALUES,
    K_BOOL,
    K_ITEMS,
    K_TOTALS,
} kind_t;

typedef struct {
    const char *name;
    kind_t kind;
    int required;
} field_t;

/* Positions in fields[] below, for the checks that name a field. */
enum {
    F_SCHEMA,
    F_EVENT_ID,
    F_TYPE,
    F_SUBTYPE,
    F_INTEGRATION_ID,
    F_BRAND,
    F_CUSTOMER_ID,
    F_ORDER_ID,
    F_TRANSACTION_ID,
    F_OCCURRED_AT,
    F_LOCAL_DATE,
    F_LOCAL_TIME,
    F_TIMEZONE,
    F_DATE_PRECISION,
    F_AMOUNT_MINOR,
    F_ATTEMPTED_MINOR,
    F_CURRENCY,
    F_BILLING_CYCLE,
    F_CAMPAIGN_ID,
    F_PRODUCT_IDS,
    F_AFFILIATE_ID,
    F_RECYCLE_NUMBER,
    F_ORDER_TYPE,
    F_ORDER_STATUS,
    F_COUPON_CODE,
    F_HAS_UPSELL,
    F_ITEMS,
    F_TOTALS,
    F_SOURCE_VALUES,
    F_OCCURRENCE,
    F_CHARGEBACK_REASON_CODE,
    F_PARENT_TRANSACTION_ID,
    F_REFUND_REASON,
    F_SUBSCRIPTION_ID,
    F_STATUS,
    F_NEXT_BILL_DATE,
    F_SOURCE,
    F_COUNT
};

static const field_t fields[] = {
    {"schema", K_SCHEMA, 1},
    {"event_id", K_UUID, 1},
    {"type", K_TYPE, 1},
    {"subtype", K_SUBTYPE, 1},
    {"integration_id", K_INTEGRATION, 1},
    {"brand", K_BRAND, 1},
    {"customer_id", K_NID, 1},
    {"order_id", K_NID, 1},
    {"transaction_id", K_NID, 1},
    {"occurred_at", K_UTC, 1},
    {"local_date", K_DAY, 1},
    {"local_time", K_TIME, 1},
    {"timezone", K_NONEMPTY, 1},
    {"date_precision", K_PRECISION, 1},
    {"amount_minor", K_NINT, 1},
    {"attempted_minor", K_INT0, 0},
    {"currency", K_CURRENCY, 1},
    {"billing_cycle", K_NINT, 1},
    {"campaign_id", K_NID, 1},
    {"product_ids", K_IDS, 1},
    {"affiliate_id", K_NSTR, 1},
    {"recycle_number", K_NINT, 0},
    {"order_type", K_NLABEL, 0},
    {"order_status", K_NLABEL, 0},
    {"coupon_code", K_NLABEL, 0},
    {"has_upsell", K_BOOL, 0},
    {"items", K_ITEMS, 0},
    {"totals", K_TOTALS, 0},
    {"source_values", K_SVALUES, 0},
    {"occurrence", K_INT1, 0},
    {"chargeback_reason_code", K_NTEXT, 0},
    {"parent_transaction_id", K_NID, 0},
    {"refund_reason", K_NTEXT, 0},
    {"subscription_id", K_ID, 0},
    {"status", K_STATUS, 0},
    {"next_bill_date", K_NDAY, 0},
    {"source", K_SOURCE, 1},
};
/* Fields only an order event has (the schema's if/else on type). */
static const int order_only[] = {F_ORDER_TYPE, F_ORDER_STATUS, F_COUPON_CODE,
                                 F_HAS_UPSELL, F_ITEMS,        F_TOTALS};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))
_Static_assert(NFIELDS == F_COUNT, "fields[] and the F_ positions differ");

/* An event's top-level members by field: f[i] is the first member named
 * fields[i].name (as cJSON_GetObjectItemCaseSensitive finds), NULL when
 * absent. Built in one pass over the members. */
typedef struct {
    const cJSON *f[F_COUNT];
    int dup; /* some name came twice */
} ev_index_t;

/* Name -> position: open addressing on FNV-1a, built once; and the
 * positions in bytewise name order (the canonical JSON's member order). */
#define NAME_SLOTS 128
static signed char name_slot[NAME_SLOTS];
static int by_name[F_COUNT];
/* `"name":` of each field, as the canonical JSON writes it, and its length. */
static char key_text[F_COUNT][32];
static size_t key_len[F_COUNT];
/* 1 for the bytes of an id: [A-Za-z0-9_.:-]. */
static unsigned char id_byte[256];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static unsigned name_hash(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(fields[*(const int *)a].name, fields[*(const int *)b].name);
}

static void tables_init(void)
{
    static const char id_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                   "0123456789_.:-";
    for (const char *c = id_chars; *c; c++)
        id_byte[(unsigned char)*c] = 1;
    memset(name_slot, -1, sizeof(name_slot));
    for (int i = 0; i < F_COUNT; i++) {
        unsigned h = name_hash(fields[i].name) & (NAME_SLOTS - 1);
        while (name_slot[h] >= 0)
            h = (h + 1) & (NAME_SLOTS - 1);
        name_slot[h] = (signed char)i;
        by_name[i] = i;
        key_len[i] = (size_t)snprintf(key_text[i], sizeof(key_text[i]), "\"%s\":", fields[i].name);
    }
    qsort(by_name, F_COUNT, sizeof(by_name[0]), name_cmp);
}

static const char *const subtypes[] = {"initial", "rebill", "upsell", "soft", "hard"};
static const char *const brands[] = {"konnektive", "checkoutchamp"};
static const char *const precisions[] = {"second", "day"};
static const char *const statuses[] = {"ACTIVE",   "TRIAL",           "PAUSED",        "CANCELLED",
                                       "COMPLETE", "RECYCLE_BILLING", "RECYCLE_FAILED"};
static const char *const streams[] = {"transactions", "orders", "customers", "purchases"};

#define IN(s, list) (lt_str_index((s), (list), sizeof(list) / sizeof((list)[0])) >= 0)

/* ^[A-Za-z0-9_.:-]{1,64}$ (one pass, no strlen) */
static int is_id(const char *s)
{
    size_t n = 0;
    if (!s)
        return 0;
    while (id_byte[(unsigned char)s[n]] && n <= 64)
        n++;
    return s[n] == '\0' && n >= 1 && n <= 64;
}

/* An integer in the I-JSON safe range (what every consumer reads exactly). */
static int is_int(const cJSON *it, long long *v)
{
    double d;
    if (!cJSON_IsNumber(it))
        return 0;
    d = it->valuedouble;
    if (!isfinite(d) || d != floor(d) || fabs(d) > 9007199254740991.0)
        return 0;
    *v = (long long)d;
    return 1;
}

/* YYYY-MM-DDTHH:MM:SSZ, a real instant. */
static int utc_secs(const char *s, int64_t *secs)
{
    lt_datetime_t dt;
    if (!s || strlen(s) != 20 || s[10] != 'T' || s[19] != 'Z' ||
        lt_date_parse_datetime(s, 19, &dt) != 0)
        return 0;
    *secs = lt_date_to_seconds(&dt);
    return 1;
}

static int is_day(const char *s)
{
    lt_datetime_t dt;
    return s && strlen(s) == 10 && lt_date_parse_day(s, 10, &dt) == 0;
}

/* Two decimal digits at s, or -1. */
static int two_digits(const char *s)
{
    if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
        return -1;
    return (s[0] - '0') * 10 + (s[1] - '0');
}

/* HH:MM:SS, 00:00:00 .. 23:59:59 (lt_date_parse_datetime's time rules;
 * no copy into a whole date-time first) */
static int is_time(const char *s)
{
    int h, m, sec;
    if (!s || strlen(s) != 8 || s[2] != ':' || s[5] != ':')
        return 0;
    h = two_digits(s);
    m = two_digits(s + 3);
    sec = two_digits(s + 6);
    return h >= 0 && h <= 23 && m >= 0 && m <= 59 && sec >= 0 && sec <= 59;
}

static int is_currency(const char *s)
{
    return s && strlen(s) == 3 && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == 3;
}

/* ^[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9]{2}:[0-9]{2}:[0-9]{2})?$ */
static int is_wall(const char *s)
{
    lt_datetime_t dt;
    int has_time;
    size_t n = s ? strlen(s) : 0;
    return (n == 10 || n == 19) && lt_date_parse_any(s, n, &dt, &has_time) == 0;
}

static int check_ids(const cJSON *it)
{
    const cJSON *c;
    if (!cJSON_IsArray(it))
        return 0;
    cJSON_ArrayForEach(c, it)
    {
        if (!is_id(lt_json_item_str(c)))
            return 0;
    }
    return 1;
}

/* A string of at most max characters (the schema's maxLength counts code
 * points, not bytes), or null. */
static int is_text(const cJSON *it, size_t max)
{
    const char *s = lt_json_item_str(it);
    size_t chars = 0;
    if (cJSON_IsNull(it))
        return 1;
    for (; s && *s; s++)
        chars += ((unsigned char)*s & 0xC0) != 0x80;
    return s && chars <= max;
}

/* source_values: exactly 5 strings or nulls. */
static int check_svalues(const cJSON *it)
{
    const cJSON *c;
    if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) != 5)
        return 0;
    cJSON_ArrayForEach(c, it) if (!is_text(c, 255)) return 0;
    return 1;
}

/* An integer >= 0 or null (an order's totals and item prices). */
static int is_nminor(const cJSON *it)
{
    long long v;
    return it && (cJSON_IsNull(it) || (is_int(it, &v) && v >= 0));
}

/* items: at most 64 of {product_id, quantity, price_minor}, nothing else. */
static int check_items(const cJSON *it)
{
    const cJSON *c, *k;
    long long v;
    if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) > 64)
        return 0;
    cJSON_ArrayForEach(c, it)
    {
        const cJSON *q = cJSON_GetObjectItemCaseSensitive(c, "quantity");
        if (!cJSON_IsObject(c) || cJSON_GetArraySize(c) != 3 ||
            !is_id(lt_json_item_str(cJSON_GetObjectItemCaseSensitive(c, "product_id"))) || !q ||
            !(cJSON_IsNull(q) || is_int(q, &v)) ||
            !is_nminor(cJSON_GetObjectItemCaseSensitive(c, "price_minor")))
            return 0;
        cJSON_ArrayForEach(k, c) /* three distinct known keys */
            if (!k->string || (strcmp(k->string, "product_id") && strcmp(k->string, "quantity") &&
                               strcmp(k->string, "price_minor"))) return 0;
    }
    return 1;
}

/* totals: the five amounts, nothing else. */
static int check_totals(const cJSON *it)
{
    static const char *const keys[] = {"total_minor", "price_minor", "shipping_minor", "tax_minor",
                                       "discount_minor"};
    const cJSON *c;
    if (!cJSON_IsObject(it) || cJSON_GetArraySize(it) != 5)
        return 0;
    for (size_t i = 0; i < 5; i++)
        if (!is_nminor(cJSON_GetObjectItemCaseSensitive(it, keys[i])))
            return 0;
    cJSON_ArrayForEach(c, it) if (!c->string || !IN(c->string, keys)) return 0;
    return 1;
}

static int check_source(const cJSON *src, char *why, size_t whylen)
{
    static const char *const keys[] = {"stream", "record_id", "fetched_at", "date_updated"};
    const cJSON *c, *v[4] = {NULL, NULL, NULL, NULL}; /* the first member of each key */
    const char *du;
    if (!cJSON_IsObject(src))
        return snprintf(why, whylen, "source: not an object"), 0;
    cJSON_ArrayForEach(c, src) /* one pass: which key, and its first member */
    {
        int k = c->string ? lt_str_index(c->string, keys, 4) : -1;
        if (k < 0)
            return snprintf(why, whylen, "source.%.64s: unknown field",
                            c->string ? c->string : "?"),
                   0;
        if (!v[k])
            v[k] = c;
    }
    for (size_t i = 0; i < 4; i++)
        if (!v[i])
            return snprintf(why, whylen, "source.%s: missing", keys[i]), 0;
    if (!IN(lt_json_item_str(v[0]), streams))
        return snprintf(why, whylen, "source.stream: not a known stream"), 0;
    if (!is_id(lt_json_item_str(v[1])))
        return snprintf(why, whylen, "source.record_id: not an id"), 0;
    if (!cJSON_IsNull(v[2]) && !cJSON_IsString(v[2]))
        return snprintf(why, whylen, "source.fetched_at: not a string or null"), 0;
    du = lt_json_item_str(v[3]);
    if (!cJSON_IsNull(v[3]) && !is_wall(du))
        return snprintf(why, whylen, "source.date_updated: not a wall time"), 0;
    return 1;
}

/* One field against its kind; 1 = fine. */
static int check_kind(const cJSON *it, kind_t kind)
{
    const char *s = lt_json_item_str(it);
    long long v;
    int null = cJSON_IsNull(it);
    switch (kind) {
    case K_SCHEMA: return s && strcmp(s, "ltv.event.v1") == 0;
    case K_UUID: return 1; /* checked with the version bits below */
    case K_TYPE: return lt_evtype_parse(s) >= 0;
    case K_SUBTYPE: return null || IN(s, subtypes);
    case K_INTEGRATION: return s && lt_integration_id_valid(s);
    case K_BRAND: return IN(s, brands);
    case K_NID: return null || is_id(s);
    case K_ID: return is_id(s);
    case K_UTC: {
        int64_t t;
        return utc_secs(s, &t);
    }
    case K_DAY: return is_day(s);
    case K_NDAY: return null || is_day(s);
    case K_TIME: return is_time(s);
    case K_NONEMPTY: return s && *s;
    case K_PRECISION: return IN(s, precisions);
    case K_NINT: return null || is_int(it, &v);
    case K_INT0: return is_int(it, &v) && v >= 0;
    case K_INT1: return is_int(it, &v) && v >= 1;
    case K_CURRENCY: return null || is_currency(s);
    case K_IDS: return check_ids(it);
    case K_NSTR: return null || s;
    case K_NTEXT: return is_text(it, 255);
    case K_NLABEL: return is_text(it, 64);
    case K_SVALUES: return check_svalues(it);
    case K_BOOL: return cJSON_IsBool(it);
    case K_ITEMS: return check_items(it);
    case K_TOTALS: return check_totals(it);
    case K_STATUS: return IN(s, statuses);
    case K_SOURCE: return 1; /* check_source */
    }
    return 0;
}

/* The position of a member name, or -1. */
static int field_index(const char *name)
{
    unsigned h;
    if (!name)
        return -1;
    for (h = name_hash(name) & (NAME_SLOTS - 1); name_slot[h] >= 0; h = (h + 1) & (NAME_SLOTS - 1))
        if (strcmp(name, fields[name_slot[h]].name) == 0)
            return name_slot[h];
    return -1;
}

/* Indexes the members and checks each against its kind, in member order,
 * then the required ones and source. */
static int check_fields(const cJSON *ev, ev_index_t *ix, char *why, size_t whylen)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, ev)
    {
        int i = field_index(c->string);
        if (i < 0)
            return snprintf(why, whylen, "%.64s: unknown field", c->string ? c->string : "?"), 0;
        if (!check_kind(c, fields[i].kind))
            return snprintf(why, whylen, "%s: invalid value", fields[i].name), 0;
        if (ix->f[i])
            ix->dup = 1;
        else
            ix->f[i] = c;
    }
    for (size_t i = 0; i < NFIELDS; i++)
        if (fields[i].required && !ix->f[i])
            return snprintf(why, whylen, "%s: missing", fields[i].name), 0;
    return check_source(ix->f[F_SOURCE], why, whylen);
}

/* UUIDv5 in canonical lower case: version 5, RFC 4122 variant. */
static int check_event_id(const ev_index_t *ix, sink_event_info_t *info)
{
    const char *s = lt_json_item_str(ix->f[F_EVENT_ID]);
    if (!s || lt_dedupe_uuid_parse(s, strlen(s), info->id) != 0 || (info->id[6] >> 4) != 5 ||
        (info->id[8] & 0xc0) != 0x80)
        return 0;
    memcpy(info->event_id, s, 37);
    return 1;
}

/* Sign of amount_minor: +1 >= 0, -1 <= 0, 0 == 0, 2 null, 3 null with a
 * currency (an order: its totals are in that currency). */
static const int type_sign[LT_EV_COUNT] = {[LT_EV_PAYMENT] = 1,
                                           [LT_EV_REFUND] = -1,
                                           [LT_EV_VOID] = -1,
                                           [LT_EV_CHARGEBACK] = -1,
                                           [LT_EV_CHARGEBACK_REVERSAL] = 1,
                                           [LT_EV_DECLINE] = 0,
                                           [LT_EV_CUSTOMER] = 2,
                                           [LT_EV_SUBSCRIPTION] = 2,
                                           [LT_EV_ORDER] = 3};

static int check_money(const ev_index_t *ix, lt_evtype_t type, char *why, size_t whylen)
{
    const cJSON *amt = ix->f[F_AMOUNT_MINOR];
    const cJSON *cur = ix->f[F_CURRENCY];
    const char *t = lt_evtype_name(type);
    int sign = type_sign[type];
    long long v = 0;
    if (sign == 2) {
        if (!cJSON_IsNull(amt) || !cJSON_IsNull(cur))
            return snprintf(why, whylen, "amount_minor, currency: must be null for %s", t), 0;
        return 1;
    }
    if (sign == 3) {
        if (!cJSON_IsNull(amt))
            return snprintf(why, whylen, "amount_minor: must be null for %s", t), 0;
        if (!is_currency(lt_json_item_str(cur)))
            return snprintf(why, whylen, "currency: required for %s", t), 0;
        return 1;
    }
    if (!is_int(amt, &v))
        return snprintf(why, whylen, "amount_minor: must be an integer for %s", t), 0;
    if ((sign == 1 && v < 0) || (sign == -1 && v > 0) || (sign == 0 && v != 0))
        return snprintf(why, whylen, "amount_minor: must be %s for %s",
                        sign == 1    ? ">= 0"
                        : sign == -1 ? "<= 0"
                                     : "0",
                        t),
               0;
    if (!is_currency(lt_json_item_str(cur)))
        return snprintf(why, whylen, "currency: required for %s", t), 0;
    return 1;
}

#define has(ix, pos) ((ix)->f[pos] != NULL)

/* The schema's allOf: per-type subtype, ids and required extras. */
static int check_type_rules(const ev_index_t *ix, lt_evtype_t type, char *why, size_t whylen)
{
    const char *sub = lt_json_item_str(ix->f[F_SUBTYPE]);
    const char *t = lt_evtype_name(type);
    int money = lt_evtype_is_transaction(type);
    int ok_sub = type == LT_EV_PAYMENT   ? sub && lt_str_index(sub, subtypes, 3) >= 0
                 : type == LT_EV_DECLINE ? sub && lt_str_index(sub, subtypes + 3, 2) >= 0
                 : type == LT_EV_CHARGEBACK_REVERSAL ? 1
                                                     : sub == NULL;
    if (!ok_sub)
        return snprintf(why, whylen, "subtype: not valid for %s", t), 0;
    if ((type == LT_EV_CHARGEBACK || type == LT_EV_CHARGEBACK_REVERSAL) && !has(ix, F_OCCURRENCE))
        return snprintf(why, whylen, "occurrence: missing for %s", t), 0;
    if (type == LT_EV_DECLINE && !has(ix, F_ATTEMPTED_MINOR))
        return snprintf(why, whylen, "attempted_minor: missing for decline"), 0;
    if (type == LT_EV_SUBSCRIPTION &&
        (!has(ix, F_SUBSCRIPTION_ID) || !has(ix, F_STATUS) || !has(ix, F_NEXT_BILL_DATE)))
        return snprintf(why, whylen,
                        "subscription_id, status, next_bill_date: "
                        "required for subscription"),
               0;
    if (money && (!is_id(lt_json_item_str(ix->f[F_TRANSACTION_ID])) ||
                  !is_id(lt_json_item_str(ix->f[F_CUSTOMER_ID]))))
        return snprintf(why, whylen, "transaction_id, customer_id: required for %s", t), 0;
    if (money != has(ix, F_RECYCLE_NUMBER))
        return snprintf(why, whylen, "recycle_number: %s for %s",
                        money ? "required" : "not allowed", t),
               0;
    if ((type == LT_EV_REFUND) != has(ix, F_REFUND_REASON))
        return snprintf(why, whylen, "refund_reason: %s for %s",
                        type == LT_EV_REFUND ? "required" : "not allowed", t),
               0;
    if ((type == LT_EV_CUSTOMER || type == LT_EV_SUBSCRIPTION) && has(ix, F_SOURCE_VALUES))
        return snprintf(why, whylen, "source_values: not allowed for %s", t), 0;
    for (size_t i = 0; i < sizeof(order_only) / sizeof(order_only[0]); i++)
        if ((type == LT_EV_ORDER) != has(ix, order_only[i]))
            return snprintf(why, whylen, "%s: %s for %s", fields[order_only[i]].name,
                            type == LT_EV_ORDER ? "required" : "not allowed", t),
                   0;
    if (type == LT_EV_ORDER &&
        (!cJSON_IsNull(ix->f[F_TRANSACTION_ID]) || !is_id(lt_json_item_str(ix->f[F_ORDER_ID])) ||
         !is_id(lt_json_item_str(ix->f[F_CUSTOMER_ID]))))
        return snprintf(why, whylen,
                        "order_id, customer_id: required, transaction_id: "
                        "null for order"),
               0;
    return check_money(ix, type, why, whylen);
}

/* local_date is occurred_at in the account zone: within a day of UTC. */
static int check_dates(const ev_index_t *ix, char *why, size_t whylen)
{
    const char *at = lt_json_item_str(ix->f[F_OCCURRED_AT]);
    const char *day = lt_json_item_str(ix->f[F_LOCAL_DATE]);
    lt_datetime_t dt;
    int64_t secs, d_utc, d_loc;
    if (!utc_secs(at, &secs) || lt_date_parse_day(day, 10, &dt) != 0)
        return snprintf(why, whylen, "occurred_at, local_date: invalid"), 0;
    d_utc = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    d_loc = lt_date_days_from_civil(dt.year, dt.month, dt.day);
    if (d_loc < d_utc - 1 || d_loc > d_utc + 1)
        return snprintf(why, whylen, "local_date: more than a day from occurred_at"), 0;
    return 1;
}

static int validate(const cJSON *ev, ev_index_t *ix, sink_event_info_t *info, char *why,
                    size_t whylen)
{
    pthread_once(&tables_once, tables_init);
    memset(ix, 0, sizeof(*ix));
    if (!cJSON_IsObject(ev))
        return snprintf(why, whylen, "not a JSON object"), -1;
    if (!check_fields(ev, ix, why, whylen))
        return -1;
    if (!check_event_id(ix, info))
        return snprintf(why, whylen, "event_id: not a lower-case UUIDv5"), -1;
    info->type = (lt_evtype_t)lt_evtype_parse(lt_json_item_str(ix->f[F_TYPE]));
    if (!check_type_rules(ix, info->type, why, whylen) || !check_dates(ix, why, whylen))
        return -1;
    return 0;
}

int sink_validate(const cJSON *ev, sink_event_info_t *info, char *why, size_t whylen)
{
    ev_index_t ix;
    return validate(ev, &ix, info, why, whylen);
}

int sink_validate_hash(const cJSON *ev, sink_event_info_t *info, lt_buf_t *scratch, uint64_t *hash,
                       char *why, size_t whylen)
{
    ev_index_t ix;
    const cJSON *sorted[F_COUNT];
    const char *keys[F_COUNT];
    size_t klens[F_COUNT], n = 0, source = F_COUNT;
    if (validate(ev, &ix, info, why, whylen) != 0)
        return -1;
    /* Every member is a known field, so the index in name order is the
     * canonical member order (no sort), and each key's canonical text is
     * the field's (no key compared or escaped). A repeated name takes the
     * general path, which refuses it with its reason. */
    for (int i = 0; i < F_COUNT && !ix.dup; i++) {
        int f = by_name[i];
        if (!ix.f[f])
            continue;
        if (f == F_SOURCE)
            source = n;
        keys[n] = key_text[f];
        klens[n] = key_len[f];
        sorted[n++] = ix.f[f];
    }
    if (!ix.dup && lt_dedupe_keyed_hash(keys, klens, sorted, n, source, scratch, hash) == 0)
        return 0;
    return lt_dedupe_content_hash(ev, hash, why, whylen) == 0 ? 0 : -1;
}
