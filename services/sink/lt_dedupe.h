/* lt_dedupe: the pure parts of the sink's "exactly once, effectively":
 * the content hash of a canonical event and the compact Redis layout.
 *
 * Content hash: XXH64 (seed 0, our own code from the public algorithm) of the
 * event's canonical JSON: object keys sorted bytewise, no whitespace, strings
 * with only `"`, `\` and control bytes escaped, integers (|n| <= 2^53) in
 * decimal, other numbers as %.17g; volatile fields left out. Volatile means
 * "changes on a mere re-fetch": source.fetched_at. source.date_updated stays
 * (a CRM update is a change). Two events with equal canonical JSON are the
 * same content whatever their key order or escaping.
 *
 * Redis layout (the sink's store.c does the I/O): per generation G and
 * bucket B a hash `<prefix>dd:<G>:<B>` whose fields are the 16 raw bytes of
 * an event_id and whose values are the 8 raw bytes of its content hash
 * (little endian). B is the top LT_DEDUPE_BUCKET_BITS of the UUID (uniform:
 * UUIDv5 bytes are SHA-1 output), so up to 2^bits * 128 events per
 * generation stay in Redis' compact listpack encoding. */
#ifndef LT_DEDUPE_H
#define LT_DEDUPE_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#define LT_DEDUPE_BUCKET_BITS 14
#define LT_DEDUPE_BUCKETS     (1u << LT_DEDUPE_BUCKET_BITS)

/* XXH64 of len bytes with seed. */
uint64_t lt_dedupe_xxh64(const void *data, size_t len, uint64_t seed);

/* Canonical JSON of an event without its volatile fields (see above), NUL
 * terminated; caller frees. NULL with errstr when the value cannot be
 * canonicalised (duplicate object key, non-finite number, out of memory). */
char *lt_dedupe_canonical(const cJSON *event, size_t *len, char *errstr, size_t errlen);
/* The content hash: XXH64 of lt_dedupe_canonical(). 0 or -1 with errstr. */
int lt_dedupe_content_hash(const cJSON *event, uint64_t *out, char *errstr, size_t errlen);

/* A canonical lower-case UUID (8-4-4-4-12, exactly 36 bytes) into its 16
 * bytes. 0, or -1 for anything else (upper case included). */
int lt_dedupe_uuid_parse(const char *s, size_t len, uint8_t out[16]);
/* The bucket (0 .. LT_DEDUPE_BUCKETS-1) of an event id. */
unsigned lt_dedupe_bucket(const uint8_t id[16]);
/* 8 bytes, little endian, and back: the stored form of a hash. */
void lt_dedupe_hash_bytes(uint64_t h, uint8_t out[8]);
uint64_t lt_dedupe_hash_from_bytes(const uint8_t in[8]);

#endif
