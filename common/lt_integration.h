/* lt_integration: one connected CRM account, as stored (JSON) in the
 * compacted topic ltvsync.integrations keyed by id, and validated against
 * schemas/integration.schema.json. The password itself is never in here:
 * password_ref names a file or an environment variable, resolved under the
 * credential policy of lt_cred.h. */
#ifndef LT_INTEGRATION_H
#define LT_INTEGRATION_H

#include <stddef.h>
#include "lt_err.h"

typedef enum {
    LT_STREAM_TRANSACTIONS = 0,
    LT_STREAM_ORDERS,
    LT_STREAM_CUSTOMERS,
    LT_STREAM_PURCHASES,
    LT_STREAM_CAMPAIGNS,
    LT_STREAM_COUNT
} lt_stream_t;

#define LT_STREAMS_DEFAULT 0x1fu /* all five */

/* "transactions", "orders", ... ; lt_stream_parse returns -1 if unknown. */
const char *lt_stream_name(lt_stream_t s);
int lt_stream_parse(const char *name, size_t len);
/* The CRM query path: "/transactions/query/", "/order/query/", ... */
const char *lt_stream_path(lt_stream_t s);

typedef struct {
    char id[65];        /* [a-z0-9-]{1,64} */
    char brand[16];     /* konnektive | checkoutchamp */
    char base_url[512]; /* default by brand */
    char api_username[256];
    char password_ref[512]; /* file:NAME | env:NAME (lt_cred.h) */
    char account_name[256];
    char account_username[256];
    char timezone[64];    /* IANA, must exist in the tz database */
    char currency[4];     /* ISO 4217, default USD */
    char import_from[11]; /* YYYY-MM-DD, or "all" */
    long long sync_interval_ms;
    unsigned streams; /* bit (1u << lt_stream_t) */
    int max_requests_per_second;
    int max_in_flight;
} lt_integration_t;

/* Parses and validates one integration document (bounded: len bytes).
 * Fills defaults (base_url by brand, currency USD, streams all, limits).
 * LT_ERR_PERMANENT with a reason naming the field on any invalid value. */
lt_err_t lt_integration_parse(const void *json, size_t len, lt_integration_t *out, char *errstr,
                              size_t errlen);
/* The same, reporting every problem: fn (when not NULL) gets each one as
 * "field: reason" (or a sentence for the document as a whole), each field
 * once; errstr gets the first. */
typedef void (*lt_integration_problem_fn)(void *opaque, const char *problem);
lt_err_t lt_integration_parse_all(const void *json, size_t len, lt_integration_t *out,
                                  lt_integration_problem_fn fn, void *opaque, char *errstr,
                                  size_t errlen);
/* Validates a filled struct (used after ltvctl flag edits). */
lt_err_t lt_integration_validate(const lt_integration_t *in, char *errstr, size_t errlen);
/* Compact JSON; caller frees. */
char *lt_integration_to_json(const lt_integration_t *in);

/* The account-local calendar day (YYYY-MM-DD) at utc_secs, plus
 * offset_days (-1 = yesterday). 0, or -1 when the zone cannot be loaded. */
int lt_integration_local_day(const lt_integration_t *in, long long utc_secs, int offset_days,
                             char out[11]);
/* The first day to import: import_from, or IMPORT_ALL_FROM for "all". */
const char *lt_integration_first_day(const lt_integration_t *in, const char *import_all_from);

/* An integration id: [a-z0-9-]{1,64}. It becomes part of Redis keys, Kafka
 * keys and event names, so nothing else may pass. 1 when valid. */
int lt_integration_id_valid(const char *id);

#endif
