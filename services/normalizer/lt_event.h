/* lt_event: one raw CRM row -> 0..n canonical events (ltv.event.v1).
 *
 * Pure: no I/O, no clock, no globals besides the read-only tz cache, so the
 * same input always yields byte-identical output (replay, tests). The rules
 * are those of README.md "Canonical events" (docs/ARCHITECTURE.md section 7);
 * schemas/event.schema.json is the contract of the output. Decisions where
 * the README leaves room:
 *  - transactions are the money ledger; an order gives an `order` event (an
 *    update with its dimensions: type, status, coupon, items, totals, no
 *    amount); campaigns give none (PARTIAL orders and AUTHORIZE-only
 *    transactions are reported in `note` so the service can count them);
 *  - payment subtype: billingCycleNumber >= 2 -> rebill, else upsell when
 *    orderType or any item's productType says UPSALE/UPSELL, else initial
 *    (the API sheet does not settle which of the two the CRM sends);
 *  - CRM texts (reasons, traffic-source values) are cut to 255 bytes, order
 *    labels (type, status, coupon) to 64, on a UTF-8 character boundary;
 *  - signs come from the type, not the CRM: payments +|a|; refunds, voids and
 *    chargebacks -|a| (the CRM shows refunds positive, possibly negative);
 *  - occurred_at is the wall time read in the account zone (fold=0);
 *    local_date/local_time are that instant back in the zone;
 *  - a date-only chargebackDate means local midnight of that day with
 *    date_precision "day";
 *  - currency: the row's currencyCode, else the integration's.
 * Chargebacks need memory (a reversal is a 1 -> 0 change of isChargedback),
 * which the caller keeps; see lt_cb_state_t and lt_cb_state_at(). */
#ifndef LT_EVENT_H
#define LT_EVENT_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "lt_buf.h"
#include "lt_err.h"
#include "lt_evtype.h"
#include "lt_integration.h"
#include "lt_tz.h"

#define LT_EVENT_MAX    3 /* per row: payment + chargeback or reversal */
#define LT_EVENT_SCHEMA "ltv.event.v1"

/* Chargeback state of one transaction as of one raw row. */
typedef struct {
    int occurrence;                 /* chargebacks seen so far (1-based count); 0 = never */
    int reverted;                   /* 1 when the latest change reverted chargeback `occurrence` */
    char reversal_date_updated[20]; /* dateUpdated of the row that showed it */
} lt_cb_state_t;

/* What a transaction row says about its chargeback flag. */
typedef struct {
    int applies; /* 1 for SUCCESS SALE/CAPTURE rows with an id */
    int flag;    /* isChargedback */
    char transaction_id[65];
    char date_updated[20]; /* "" when absent */
} lt_cb_probe_t;

/* The record fields lt_event reads (the first item of each name), found in
 * one pass: a caller that probes and then builds indexes once. */
#define LT_EVENT_FIELDS 36
typedef struct {
    const cJSON *f[LT_EVENT_FIELDS];
} lt_event_fields_t;

typedef struct {
    const char *integration_id;
    const char *brand;
    const lt_tz_t *tz;    /* the integration's zone (lt_tz_get) */
    const char *currency; /* integration default, e.g. "USD" */
    lt_stream_t stream;
    const char *fetched_at; /* from the raw envelope, NUL-terminated, <= 64 bytes */
    const cJSON *record;
    const lt_event_fields_t *fields; /* lt_event_index(record), or NULL */
    /* State as of this row, or NULL: then isChargedback=1 yields occurrence
     * 1 and no reversal is ever produced (stateless use). */
    const lt_cb_state_t *cb;
} lt_event_input_t;

typedef enum {
    LT_EVENT_NOTE_NONE = 0,
    LT_EVENT_NOTE_PARTIAL_ORDER, /* orders: orderStatus PARTIAL */
    LT_EVENT_NOTE_AUTHORIZE,     /* transactions: SUCCESS AUTHORIZE, no money moved */
    LT_EVENT_NOTE_REFERENCE,     /* campaigns: reference data, no event */
} lt_event_note_t;

typedef struct {
    lt_evtype_t type;
    char *json; /* compact JSON, NUL-terminated, inside the list's buf */
    size_t len;
} lt_event_t;

typedef struct {
    size_t n;
    lt_event_t ev[LT_EVENT_MAX];
    char key[160]; /* Kafka key "integration/customer_id" */
    size_t keylen;
    lt_event_note_t note;
    lt_buf_t buf; /* the events' bytes; kept from one build to the next */
} lt_event_list_t;

/* Builds the events of one row into out (zero it before the first call;
 * reuse it for the next row: its buffer is kept, so events stay valid only
 * until the next build).
 * LT_ERR_PERMANENT with a reason for a malformed row (missing ids, unknown
 * enums, impossible dates, bad amounts, unknown currency): the row belongs in
 * the DLQ. LT_ERR_FATAL only on allocation failure. out is emptied first. */
lt_err_t lt_event_build(const lt_event_input_t *in, lt_event_list_t *out, char *errstr,
                        size_t errlen);
void lt_event_list_release(lt_event_list_t *out); /* frees the buffer; reusable */

/* Fills out with the fields of record (an object; else all NULL). */
void lt_event_index(const cJSON *record, lt_event_fields_t *out);

/* Inspects a transactions row for the chargeback state machine. Returns 0,
 * or -1 when the row is not a transaction the state applies to. fields may
 * be NULL (the record is indexed here), else lt_event_index(record). */
int lt_event_cb_probe(lt_stream_t stream, const cJSON *record, const lt_event_fields_t *fields,
                      lt_cb_probe_t *out);

/* Chargeback history, as the normalizer stores it (one JSON array per
 * transaction, services/normalizer/cbstore.c): entries ["C","<partition>",
 * "<offset>"] (charged back) and ["R","<partition>","<offset>",
 * "<dateUpdated>"] (reverted), in the order first observed; "" is an empty
 * history. The state as of the raw row at (partition, offset) counts entries
 * of that partition at or below offset, and every entry of another
 * partition (an older topic layout). Returns 0, -1 if malformed. */
int lt_cb_state_at(const char *hist, size_t len, int32_t partition, int64_t offset,
                   lt_cb_state_t *out);

#endif
