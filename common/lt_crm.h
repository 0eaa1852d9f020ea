/* lt_crm: Konnektive / Checkout Champ query requests and responses, pure.
 *
 * Builds the form of one page of a job's window, classifies a response in
 * the order of the API sheet (auth/IP/permission, then "No ... matching",
 * then everything else transient) and wraps each row in the ltvsync.raw
 * envelope. No I/O here: the fetcher does the HTTP, Redis and Kafka. */
#ifndef LT_CRM_H
#define LT_CRM_H

#include <stddef.h>
#include <cjson/cJSON.h>
#include "lt_err.h"
#include "lt_http.h"
#include "lt_job.h"

#define LT_CRM_PAGE_SIZE  200 /* the CRM maximum; never send more */
#define LT_CRM_MAX_FIELDS 12
/* Values one CRM reply may hold before it is parsed. A page of 200 rows of
 * about 100 fields (nested purchase transactions included) holds well under
 * 100,000; at 64 bytes a cJSON node, the cap bounds a reply's tree near
 * 32 MiB however small its values are (8 MiB of "[]," would be 180 MiB). */
#define LT_CRM_MAX_VALUES 500000

/* One request's form. Field values point into the struct or at the
 * borrowed login/password, which must outlive it. */
typedef struct {
    lt_form_field_t fields[LT_CRM_MAX_FIELDS];
    size_t n;
    char start[11], end[11], page[16], per_page[8];
} lt_crm_form_t;

/* Form for page `page` of the job's day: loginId, password, startDate and
 * endDate (MM/DD/YYYY), dateRangeType, resultsPerPage, page, sortDir=1; for
 * date_range_type "chargeback": dateUpdated plus isChargedback=1.
 * LT_ERR_PERMANENT when the job's day or range type is invalid. */
lt_err_t lt_crm_form_build(lt_crm_form_t *f, const char *login_id, const char *password,
                           const lt_job_t *job, int page, int per_page, char *errstr,
                           size_t errlen);

/* base_url (trailing '/' dropped) + the stream's path. 0, or -1 if too long. */
int lt_crm_url(const char *base_url, lt_stream_t s, char *buf, size_t buflen);

/* Classifies an ERROR message text: LT_ERR_AUTH (credentials, IP allow-list,
 * endpoint permission), LT_ERR_EMPTY ("No ... matching ... could be found"),
 * else LT_ERR_RETRIABLE. Bounded by len. */
lt_err_t lt_crm_classify_message(const char *msg, size_t len);

/* One parsed response page. */
typedef struct {
    cJSON *root;             /* owned; freed by lt_crm_page_release */
    cJSON *data;             /* array, or object keyed by id (campaigns) */
    long long total_results; /* -1 when absent or unreadable */
    char message[256];       /* the CRM's ERROR text (bounded), else "" */
} lt_crm_page_t;

/* Classifies and parses one HTTP response (status, body of len bytes).
 * LT_OK with rows in out->data; LT_ERR_EMPTY; LT_ERR_AUTH with the CRM text
 * in out->message and errstr; LT_ERR_RETRIABLE for 429/5xx/other statuses,
 * HTML, invalid or truncated JSON, bodies over max_len and other ERROR texts.
 * Always call lt_crm_page_release afterwards. */
lt_err_t lt_crm_parse(long status, const char *body, size_t len, size_t max_len, lt_crm_page_t *out,
                      char *errstr, size_t errlen);
void lt_crm_page_release(lt_crm_page_t *p);

/* Pages needed for total rows at per_page (ceil); 0 for total <= 0. */
int lt_crm_page_count(long long total, int per_page);

/* The row's record id (transactionId, orderId, customerId, purchaseId,
 * campaignId; for a campaign keyed by id, `objkey` is the fallback).
 * 0, or -1 when absent. */
int lt_crm_record_id(lt_stream_t s, const cJSON *row, const char *objkey, char *buf, size_t buflen);

/* UTC RFC 3339 with milliseconds and "Z" into buf (>= 25 bytes). */
void lt_crm_format_time(long long epoch_ms, char *buf, size_t buflen);

/* The ltvsync.raw envelope of one (already sanitized) row, compact JSON;
 * caller frees. The row is only borrowed. */
char *lt_crm_envelope(const lt_job_t *job, int page, const char *fetched_at, const cJSON *row);

#endif
