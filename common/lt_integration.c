/* lt_integration: parse, validate and serialise integration documents. */
#include "lt_integration.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "lt_config.h"
#include "lt_date.h"
#include "lt_json.h"
#include "lt_tz.h"

#define LT_INTEGRATION_MAX_JSON (64 * 1024)

static const struct {
    const char *name;
    const char *path;
} streams[LT_STREAM_COUNT] = {
    [LT_STREAM_TRANSACTIONS] = {"transactions", "/transactions/query/"},
    [LT_STREAM_ORDERS] = {"orders", "/order/query/"},
    [LT_STREAM_CUSTOMERS] = {"customers", "/customer/query/"},
    [LT_STREAM_PURCHASES] = {"purchases", "/purchase/query/"},
    [LT_STREAM_CAMPAIGNS] = {"campaigns", "/campaign/query/"},
};

const char *lt_stream_name(lt_stream_t s)
{
    return (unsigned)s < LT_STREAM_COUNT ? streams[s].name : "unknown";
}

const char *lt_stream_path(lt_stream_t s)
{
    return (unsigned)s < LT_STREAM_COUNT ? streams[s].path : NULL;
}

int lt_stream_parse(const char *name, size_t len)
{
    for (int i = 0; i < LT_STREAM_COUNT; i++)
        if (strlen(streams[i].name) == len && !memcmp(streams[i].name, name, len))
            return i;
    return -1;
}

static const char *default_base_url(const char *brand)
{
    return strcmp(brand, "checkoutchamp") == 0 ? "https://api.checkoutchamp.com"
                                               : "https://api.konnektive.com";
}

int lt_integration_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n < 1 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)id[i]) || isdigit((unsigned char)id[i]) || id[i] == '-'))
            return 0;
    return 1;
}

/* Strict YYYY-MM-DD with a real calendar day, 1990..2100. */
static int valid_day(const char *s)
{
    lt_datetime_t dt;
    return lt_date_parse_day(s, strlen(s), &dt) == 0 && dt.year >= 1990 && dt.year <= 2100;
}

/* An IANA name that exists as a TZif file in the system tz database. */
static int valid_timezone(const char *tz)
{
    char path[256], magic[4];
    FILE *fp;
    int ok;
    if (!*tz || tz[0] == '/' || strstr(tz, "..") || strlen(tz) > 63)
        return 0;
    for (const char *p = tz; *p; p++)
        if (!(isalnum((unsigned char)*p) || strchr("/_-+", *p)))
            return 0;
    snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", tz);
    if (!(fp = fopen(path, "rb")))
        return 0;
    ok = fread(magic, 1, 4, fp) == 4 && !memcmp(magic, "TZif", 4);
    fclose(fp);
    return ok;
}

/* Collects the problems of one document: the first goes to errstr, each to
 * fn (when set); a field already reported is not reported again (a value
 * that failed to parse is then also invalid). */
typedef struct {
    lt_integration_problem_fn fn;
    void *opaque;
    char *errstr;
    size_t errlen;
    int n;
    char seen[16][32]; /* fields reported */
    int nseen;
} probs_t;

static void prob(probs_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void prob(probs_t *p, const char *fmt, ...)
{
    char msg[512], field[32] = "";
    const char *colon;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if ((colon = strstr(msg, ": ")) && (size_t)(colon - msg) < sizeof(field) &&
        strspn(msg, "abcdefghijklmnopqrstuvwxyz_") == (size_t)(colon - msg)) {
        memcpy(field, msg, (size_t)(colon - msg));
        for (int i = 0; i < p->nseen; i++)
            if (!strcmp(p->seen[i], field))
                return;
        if (p->nseen < 16)
            memcpy(p->seen[p->nseen++], field, sizeof(field));
    }
    if (!p->n && p->errstr)
        snprintf(p->errstr, p->errlen, "%s", msg);
    if (p->fn)
        p->fn(p->opaque, msg);
    p->n++;
}

static void validate_all(const lt_integration_t *in, probs_t *p)
{
    if (!lt_integration_id_valid(in->id))
        prob(p, "id: must match [a-z0-9-]{1,64}");
    if (strcmp(in->brand, "konnektive") && strcmp(in->brand, "checkoutchamp"))
        prob(p, "brand: must be \"konnektive\" or \"checkoutchamp\"");
    if (strncmp(in->base_url, "https://", 8) && strncmp(in->base_url, "http://", 7))
        prob(p, "base_url: must be an http:// or https:// URL");
    if (!in->api_username[0])
        prob(p, "api_username: required (the CRM API user's login id)");
    if (strncmp(in->password_ref, "file:", 5) && strncmp(in->password_ref, "env:", 4) &&
        strncmp(in->password_ref, "sealed:", 7))
        prob(p,
             "password_ref: must be file:NAME, env:NAME or sealed:v1:KID:... (the clear password "
             "is never stored)");
    if (!in->account_name[0])
        prob(p, "account_name: required");
    if (!in->account_username[0])
        prob(p, "account_username: required");
    if (!valid_timezone(in->timezone))
        prob(p, "timezone: \"%s\" is not an IANA zone of the system tz database", in->timezone);
    if (strlen(in->currency) != 3 || !isupper((unsigned char)in->currency[0]) ||
        !isupper((unsigned char)in->currency[1]) || !isupper((unsigned char)in->currency[2]))
        prob(p, "currency: must be an ISO 4217 code such as USD");
    if (strcmp(in->import_from, "all") && !valid_day(in->import_from))
        prob(p, "import_from: must be YYYY-MM-DD or \"all\"");
    if (in->sync_interval_ms < 1000 || in->sync_interval_ms > 7LL * 86400 * 1000)
        prob(p, "sync_interval: must be between 1s and 7d");
    if (!in->streams || (in->streams & ~LT_STREAMS_DEFAULT))
        prob(p, "streams: must name at least one of transactions, orders, customers, purchases, "
                "campaigns");
    if (in->max_requests_per_second < 1 || in->max_requests_per_second > 1000)
        prob(p, "max_requests_per_second: must be 1..1000");
    if (in->max_in_flight < 1 || in->max_in_flight > 256)
        prob(p, "max_in_flight: must be 1..256");
}

lt_err_t lt_integration_validate(const lt_integration_t *in, char *errstr, size_t errlen)
{
    probs_t p = {.errstr = errstr, .errlen = errlen};
    validate_all(in, &p);
    return p.n ? LT_ERR_PERMANENT : LT_OK;
}

/* Copies a string field into dst; absent keeps dst. -1 when too long or
 * not a string. */
static int copy_str(const cJSON *root, const char *key, char *dst, size_t dstlen)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!item || cJSON_IsNull(item))
        return 0;
    if (!cJSON_IsString(item) || strlen(item->valuestring) >= dstlen)
        return -1;
    memcpy(dst, item->valuestring, strlen(item->valuestring) + 1);
    return 0;
}

static int parse_streams(const cJSON *arr, unsigned *out)
{
    const cJSON *item;
    unsigned mask = 0;
    if (!cJSON_IsArray(arr))
        return -1;
    cJSON_ArrayForEach(item, arr)
    {
        int s;
        if (!cJSON_IsString(item) ||
            (s = lt_stream_parse(item->valuestring, strlen(item->valuestring))) < 0)
            return -1;
        mask |= 1u << s;
    }
    *out = mask;
    return 0;
}

static int get_limit(const cJSON *root, const char *key, int *out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!item)
        return 0;
    /* range first: converting an out-of-range double to int is undefined */
    if (!cJSON_IsNumber(item) || item->valuedouble < -1e6 || item->valuedouble > 1e6 ||
        item->valuedouble != (double)(int)item->valuedouble)
        return -1;
    *out = (int)item->valuedouble;
    return 0;
}

static const char *const known_keys[] = {"id",
                                         "brand",
                                         "base_url",
                                         "api_username",
                                         "password_ref",
                                         "account_name",
                                         "account_username",
                                         "timezone",
                                         "currency",
                                         "import_from",
                                         "sync_interval",
                                         "streams",
                                         "max_requests_per_second",
                                         "max_in_flight",
                                         NULL};

static int known_key(const char *k)
{
    for (int i = 0; known_keys[i]; i++)
        if (!strcmp(known_keys[i], k))
            return 1;
    return 0;
}

lt_err_t lt_integration_parse(const void *json, size_t len, lt_integration_t *out, char *errstr,
                              size_t errlen)
{
    return lt_integration_parse_all(json, len, out, NULL, NULL, errstr, errlen);
}

lt_err_t lt_integration_parse_all(const void *json, size_t len, lt_integration_t *out,
                                  lt_integration_problem_fn fn, void *opaque, char *errstr,
                                  size_t errlen)
{
    static const struct {
        const char *key;
        size_t off, size;
    } strs[] = {
#define F(k) {#k, offsetof(lt_integration_t, k), sizeof(((lt_integration_t *)0)->k)}
        F(id),           F(brand),        F(base_url),         F(api_username),
        F(password_ref), F(account_name), F(account_username), F(timezone),
        F(currency),     F(import_from),
#undef F
    };
    probs_t p = {.fn = fn, .opaque = opaque, .errstr = errstr, .errlen = errlen};
    cJSON *root = NULL;
    const cJSON *item;

    memset(out, 0, sizeof(*out));
    strcpy(out->brand, "konnektive");
    strcpy(out->currency, "USD");
    out->streams = LT_STREAMS_DEFAULT;
    out->max_requests_per_second = 5;
    out->max_in_flight = 4;
    out->sync_interval_ms = 15 * 60 * 1000;

    if (!(root = lt_json_parse(json, len, LT_INTEGRATION_MAX_JSON, errstr, errlen))) {
        if (fn)
            fn(opaque, errstr);
        return LT_ERR_PERMANENT;
    }
    if (!cJSON_IsObject(root)) {
        prob(&p, "integration must be a JSON object");
        goto end;
    }
    cJSON_ArrayForEach(item, root)
    {
        if (known_key(item->string) && cJSON_GetObjectItemCaseSensitive(root, item->string) != item)
            prob(&p, "duplicate field \"%s\"", item->string);
        else if (!known_key(item->string))
            prob(&p, "unknown field \"%.64s\"%s", item->string,
                 strstr(item->string, "password") && strcmp(item->string, "password_ref")
                     ? " (give the password by password_ref: file:NAME or env:NAME)"
                     : "");
    }
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
        if (copy_str(root, strs[i].key, (char *)out + strs[i].off, strs[i].size) < 0)
            prob(&p, "%s: must be a string of at most %zu bytes", strs[i].key, strs[i].size - 1);
    if (!out->base_url[0])
        snprintf(out->base_url, sizeof(out->base_url), "%s", default_base_url(out->brand));
    if (!out->import_from[0])
        prob(&p,
             "import_from: required (YYYY-MM-DD or \"all\"; at least a year back is recommended)");
    if ((item = cJSON_GetObjectItemCaseSensitive(root, "sync_interval")) &&
        (!cJSON_IsString(item) ||
         lt_config_parse_duration_ms(item->valuestring, &out->sync_interval_ms) < 0))
        prob(&p, "sync_interval: must be a duration such as 30s, 15m, 1h");
    if ((item = cJSON_GetObjectItemCaseSensitive(root, "streams")) &&
        parse_streams(item, &out->streams) < 0)
        prob(&p, "streams: must be a list of transactions, orders, customers, purchases, "
                 "campaigns");
    if (get_limit(root, "max_requests_per_second", &out->max_requests_per_second) < 0)
        prob(&p, "max_requests_per_second: must be an integer");
    if (get_limit(root, "max_in_flight", &out->max_in_flight) < 0)
        prob(&p, "max_in_flight: must be an integer");
    validate_all(out, &p);
end:
    cJSON_Delete(root);
    return p.n ? LT_ERR_PERMANENT : LT_OK;
}

static void duration_string(long long ms, char *buf, size_t len)
{
    if (ms % 3600000 == 0)
        snprintf(buf, len, "%lldh", ms / 3600000);
    else if (ms % 60000 == 0)
        snprintf(buf, len, "%lldm", ms / 60000);
    else if (ms % 1000 == 0)
        snprintf(buf, len, "%llds", ms / 1000);
    else
        snprintf(buf, len, "%lldms", ms);
}

char *lt_integration_to_json(const lt_integration_t *in)
{
    cJSON *root = cJSON_CreateObject(), *arr;
    char dur[32], *out = NULL;
    if (!root)
        return NULL;
    duration_string(in->sync_interval_ms, dur, sizeof(dur));
    cJSON_AddStringToObject(root, "id", in->id);
    cJSON_AddStringToObject(root, "brand", in->brand);
    cJSON_AddStringToObject(root, "base_url", in->base_url);
    cJSON_AddStringToObject(root, "api_username", in->api_username);
    cJSON_AddStringToObject(root, "password_ref", in->password_ref);
    cJSON_AddStringToObject(root, "account_name", in->account_name);
    cJSON_AddStringToObject(root, "account_username", in->account_username);
    cJSON_AddStringToObject(root, "timezone", in->timezone);
    cJSON_AddStringToObject(root, "currency", in->currency);
    cJSON_AddStringToObject(root, "import_from", in->import_from);
    cJSON_AddStringToObject(root, "sync_interval", dur);
    if ((arr = cJSON_AddArrayToObject(root, "streams")))
        for (int s = 0; s < LT_STREAM_COUNT; s++)
            if (in->streams & (1u << s))
                cJSON_AddItemToArray(arr, cJSON_CreateString(lt_stream_name((lt_stream_t)s)));
    cJSON_AddNumberToObject(root, "max_requests_per_second", in->max_requests_per_second);
    cJSON_AddNumberToObject(root, "max_in_flight", in->max_in_flight);
    out = lt_json_print(root);
    cJSON_Delete(root);
    return out;
}

int lt_integration_local_day(const lt_integration_t *in, long long utc_secs, int offset_days,
                             char out[11])
{
    char errstr[128];
    const lt_tz_t *tz = lt_tz_get(in->timezone, errstr, sizeof(errstr));
    lt_tz_local_t local;
    lt_datetime_t dt;
    if (!tz)
        return -1;
    lt_tz_utc_to_local(tz, utc_secs, &local);
    lt_date_from_seconds(local.local_secs + (long long)offset_days * 86400, &dt);
    lt_date_fmt_day(&dt, out, 11);
    return 0;
}

const char *lt_integration_first_day(const lt_integration_t *in, const char *import_all_from)
{
    return strcmp(in->import_from, "all") ? in->import_from : import_all_from;
}
