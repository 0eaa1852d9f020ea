/* lt_sanitize: keeps only the fields ltvsync needs of a CRM row before it
 * leaves the fetcher (to ltvsync.raw, kept for replay, or to the DLQ).
 *
 * An allow-list per stream, derived from what the code reads: lt_event
 * (ids, dates, amounts, statuses, campaign/product/affiliate, currency,
 * billing cycle, chargeback flags), the fetcher (record ids; dateCreated
 * and dateUpdated, the paging dimensions) and, for campaigns, the labels
 * of the campaign and product dimensions. Everything else is removed at
 * any depth: names, e-mails, phones, addresses (country, state and postal
 * code too), card and bank data, notes, free text, and any field the CRM
 * adds later. Nested containers are filtered by their own lists (an
 * order's items: productId, purchaseId); the rest (paySources[], notes[],
 * a purchase's transactions[], fulfillments[]) is removed whole. A kept
 * scalar field that arrives as an object or array keeps its type but
 * loses its content, so the normalizer still sees it malformed.
 *
 * Second guard: a key that is a known secret (eCommercePassword,
 * achAccountNumber, achRoutingNumber) or contains "password" in any case
 * is removed even if a list names it.
 *
 * README.md "Security" has the data inventory; adding a field means
 * adding it here (and a resync of the days whose raw rows lack it).
 * Works in place on a cJSON tree the caller owns; no globals, thread-safe. */
#ifndef LT_SANITIZE_H
#define LT_SANITIZE_H

#include <cjson/cJSON.h>
#include "lt_integration.h"

/* Called once per removed object key (not for array elements nor for the
 * entries of an id-keyed map: their keys are data). key is the CRM's, any
 * bytes, NUL-terminated: the callee must bound and filter it. */
typedef void (*lt_sanitize_drop_fn)(void *ctx, const char *key);

/* 1 when an object key must never leave the process. */
int lt_sanitize_is_secret_key(const char *key);

/* Removes from row (a record of stream s) everything not allow-listed;
 * returns how many keys and entries were removed (a removed subtree counts
 * once), or -1 if s is not a stream. on_drop may be NULL. */
int lt_sanitize_row(lt_stream_t s, cJSON *row, lt_sanitize_drop_fn on_drop, void *ctx);

#endif
