/* lt_crm: see lt_crm.h. */
#include "lt_crm.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "lt_json.h"

static void add_field(lt_crm_form_t *f, const char *name, const char *value)
{
    if (f->n < LT_CRM_MAX_FIELDS) {
        f->fields[f->n].name = name;
        f->fields[f->n].value = value;
        f->n++;
    }
}

/* "YYYY-MM-DD" -> "MM/DD/YYYY"; -1 when the day is malformed. */
static int us_date(const char *day, char out[11])
{
    for (int i = 0; i < 10; i++) {
        int want_dash = (i == 4 || i == 7);
        if (want_dash ? day[i] != '-' : !isdigit((unsigned char)day[i]))
            return -1;
    }
    if (day[10] != '\0')
        return -1;
    snprintf(out, 11, "%.2s/%.2s/%.4s", day + 5, day + 8, day);
    return 0;
}

lt_err_t lt_crm_form_build(lt_crm_form_t *f, const char *login_id, const char *password,
                           const lt_job_t *job, int page, int per_page, char *errstr, size_t errlen)
{
    const char *range = job->date_range_type;
    int chargeback = strcmp(range, "chargeback") == 0;
    memset(f, 0, sizeof(*f));
    if (strcmp(range, "dateCreated") != 0 && strcmp(range, "dateUpdated") != 0 && !chargeback) {
        snprintf(errstr, errlen, "unknown date_range_type \"%.20s\"", range);
        return LT_ERR_PERMANENT;
    }
    if (us_date(job->day, f->start) != 0 || page < 1 || per_page < 1 ||
        per_page > LT_CRM_PAGE_SIZE) {
        snprintf(errstr, errlen, "invalid day, page or page size");
        return LT_ERR_PERMANENT;
    }
    memcpy(f->end, f->start, sizeof(f->end));
    snprintf(f->page, sizeof(f->page), "%d", page);
    snprintf(f->per_page, sizeof(f->per_page), "%d", per_page);
    add_field(f, "loginId", login_id);
    add_field(f, "password", password);
    add_field(f, "startDate", f->start);
    add_field(f, "endDate", f->end);
    add_field(f, "dateRangeType", chargeback ? "dateUpdated" : range);
    add_field(f, "resultsPerPage", f->per_page);
    add_field(f, "page", f->page);
    add_field(f, "sortDir", "1");
    if (chargeback && job->stream == LT_STREAM_TRANSACTIONS)
        add_field(f, "isChargedback", "1");
    return LT_OK;
}

int lt_crm_url(const char *base_url, lt_stream_t s, char *buf, size_t buflen)
{
    const char *path = lt_stream_path(s);
    size_t blen = strlen(base_url);
    while (blen > 0 && base_url[blen - 1] == '/')
        blen--;
    if (!path)
        return -1;
    int n = snprintf(buf, buflen, "%.*s%s", (int)blen, base_url, path);
    return (n < 0 || (size_t)n >= buflen) ? -1 : 0;
}

/* Lower-cased, NUL-terminated copy of at most cap-1 bytes. */
static void lower_copy(const char *s, size_t len, char *out, size_t cap)
{
    size_t n = len < cap - 1 ? len : cap - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[n] = '\0';
}

/* Words of credential, IP allow-list and permission failures. The exact
 * bad-credentials text is unknown (API sheet), so match broadly: an auth
 * failure must never be retried or read as an empty window. */
static const char *const auth_words[] = {
    "login",          "password",     "credential",   "whitelist",     "allow-list",  "allowlist",
    "not authorized", "unauthorized", "permission",   "access denied", "have access", "no access",
    "forbidden",      "api user",     "invalid user", "user not",      "ip must",     "ip address",
};

lt_err_t lt_crm_classify_message(const char *msg, size_t len)
{
    char low[512];
    lower_copy(msg, len, low, sizeof(low));
    for (size_t i = 0; i < sizeof(auth_words) / sizeof(auth_words[0]); i++)
        if (strstr(low, auth_words[i]))
            return LT_ERR_AUTH;
    if (strncmp(low, "no ", 3) == 0 && strstr(low, " matching") && strstr(low, "could be found"))
        return LT_ERR_EMPTY;
    return LT_ERR_RETRIABLE;
}

int lt_crm_page_count(long long total, int per_page)
{
    if (total <= 0 || per_page <= 0)
        return 0;
    long long pages = (total + per_page - 1) / per_page;
    return pages > 1000000 ? 1000000 : (int)pages;
}

static lt_err_t parse_error(lt_crm_page_t *out, const cJSON *msg, char *errstr, size_t errlen)
{
    const char *text = cJSON_IsString(msg) ? msg->valuestring : "";
    size_t tlen = strnlen(text, sizeof(out->message) - 1);
    memcpy(out->message, text, tlen);
    out->message[tlen] = '\0';
    lt_err_t err = lt_crm_classify_message(text, tlen);
    snprintf(errstr, errlen, "CRM ERROR: %s", out->message);
    return err;
}

static lt_err_t parse_success(lt_crm_page_t *out, cJSON *msg, char *errstr, size_t errlen)
{
    long long total;
    if (!cJSON_IsObject(msg)) {
        snprintf(errstr, errlen, "SUCCESS without a message object");
        return LT_ERR_RETRIABLE;
    }
    out->total_results = lt_json_int(msg, "totalResults", &total) == 0 ? total : -1;
    cJSON *data = cJSON_GetObjectItemCaseSensitive(msg, "data");
    if (cJSON_IsArray(data) || cJSON_IsObject(data)) {
        out->data = data;
        return cJSON_GetArraySize(data) > 0 ? LT_OK : LT_ERR_EMPTY;
    }
    if (cJSON_IsNull(data) || !data)
        return LT_ERR_EMPTY;
    snprintf(errstr, errlen, "SUCCESS with data of an unexpected type");
    return LT_ERR_RETRIABLE;
}

/* An upper bound on the values of a JSON text: every value but the root
 * follows a '[', '{' or ',' outside strings. Stops counting past max. */
static size_t json_values_bound(const char *p, size_t len, size_t max)
{
    size_t n = 1;
    int in_str = 0;
    for (size_t i = 0; i < len && n <= max; i++) {
        char c = p[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{' || c == ',') {
            n++;
        }
    }
    return n;
}

lt_err_t lt_crm_parse(long status, const char *body, size_t len, size_t max_len, lt_crm_page_t *out,
                      char *errstr, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    out->total_results = -1;
    if (status == 429 || status >= 500 || status < 200) {
        snprintf(errstr, errlen, "HTTP %ld", status);
        return LT_ERR_RETRIABLE;
    }
    char perr[160];
    if (body && json_values_bound(body, len, LT_CRM_MAX_VALUES) > LT_CRM_MAX_VALUES) {
        snprintf(errstr, errlen,
                 "HTTP %ld, body of %zu bytes holds more than %d JSON "
                 "values (LT_CRM_MAX_VALUES): refused unparsed",
                 status, len, LT_CRM_MAX_VALUES);
        return LT_ERR_RETRIABLE;
    }
    out->root = lt_json_parse(body, len, max_len, perr, sizeof(perr));
    if (!out->root) {
        snprintf(errstr, errlen, "HTTP %ld, unreadable body (%zu bytes): %s", status, len, perr);
        return LT_ERR_RETRIABLE;
    }
    const char *result = lt_json_str(out->root, "result");
    cJSON *msg = cJSON_GetObjectItemCaseSensitive(out->root, "message");
    if (result && strcmp(result, "ERROR") == 0)
        return parse_error(out, msg, errstr, errlen);
    if (status != 200 || !result || strcmp(result, "SUCCESS") != 0) {
        snprintf(errstr, errlen, "HTTP %ld, unexpected result", status);
        return LT_ERR_RETRIABLE;
    }
    return parse_success(out, msg, errstr, errlen);
}

void lt_crm_page_release(lt_crm_page_t *p)
{
    if (p) {
        cJSON_Delete(p->root);
        p->root = NULL;
        p->data = NULL;
    }
}

static const char *const id_keys[LT_STREAM_COUNT] = {
    "transactionId", "orderId", "customerId", "purchaseId", "campaignId",
};

int lt_crm_record_id(lt_stream_t s, const cJSON *row, const char *objkey, char *buf, size_t buflen)
{
    if ((unsigned)s >= LT_STREAM_COUNT || buflen == 0)
        return -1;
    if (lt_json_id(row, id_keys[s], buf, buflen) == 0 && buf[0])
        return 0;
    if (objkey && objkey[0] && strlen(objkey) < buflen) {
        memcpy(buf, objkey, strlen(objkey) + 1);
        return 0;
    }
    return -1;
}

void lt_crm_format_time(long long epoch_ms, char *buf, size_t buflen)
{
    time_t secs = (time_t)(epoch_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(buf, buflen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(epoch_ms % 1000));
}

char *lt_crm_envelope(const lt_job_t *job, int page, const char *fetched_at, const cJSON *row)
{
    char *out = NULL;
    cJSON *env = cJSON_CreateObject();
    if (!env)
        return NULL;
    if (cJSON_AddStringToObject(env, "integration_id", job->integration_id) &&
        cJSON_AddStringToObject(env, "stream", lt_stream_name(job->stream)) &&
        cJSON_AddStringToObject(env, "job_id", job->job_id) &&
        cJSON_AddNumberToObject(env, "page", page) &&
        cJSON_AddStringToObject(env, "fetched_at", fetched_at) &&
        cJSON_AddItemReferenceToObject(env, "record", (cJSON *)(uintptr_t)row))
        out = lt_json_print(env);
    cJSON_Delete(env); /* a reference does not free the row */
    return out;
}
