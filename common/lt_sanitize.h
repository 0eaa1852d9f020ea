/* lt_sanitize: removes secrets from a CRM row before it leaves the fetcher.
 *
 * Removed at any depth (objects inside objects and arrays, e.g. paySources[],
 * nested transactions[]): eCommercePassword, achAccountNumber,
 * achRoutingNumber, and every key containing "password" in any letter case.
 * Works in place on a cJSON tree the caller owns. */
#ifndef LT_SANITIZE_H
#define LT_SANITIZE_H

#include <cjson/cJSON.h>

/* 1 when an object key must never leave the process. */
int lt_sanitize_is_secret_key(const char *key);
/* Deletes every secret key under item (recursively); returns how many. */
int lt_sanitize_row(cJSON *item);

#endif
