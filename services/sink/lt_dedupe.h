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
 * bucket B a hash `<prefix>dd2:<G>:<B>` (in a Redis Cluster
 * `<prefix>dd2:{N}:<G>:<B>`, N = B >> 10: lt_rkey_dedupe_stem) whose fields are
 * LT_DEDUPE_FIELD_BYTES raw bytes of the event_id (bytes 2..5, the 32 bits
 * after the bucket's) and whose values are the 8 raw bytes of its content
 * hash (little endian). B is the top LT_DEDUPE_BUCKET_BITS of the UUID
 * (uniform: UUIDv5 bytes are SHA-1 output), so up to 2^bits * 128 events
 * per generation stay in Redis' compact listpack encoding (128 is Redis'
 * default hash-max-listpack-entries), at 6 + 10 bytes a pair there.
 *
 * Two ids of one bucket sharing the 4 field bytes share an entry. That can
 * only cost a write: the stored value is the content hash of one of them,
 * and the content includes the event_id, so the other's content matches it
 * only on an XXH64 collision (the same odds as any skip). A lookup that
 * finds the other's hash writes the event again (unchanged content, an
 * upsert downstream) and records its own. Expected pairs: n^2 / 2^33 per
 * bucket of n entries, 2e-6 at 128.
 *
 * The earlier layout, `<prefix>dd:<G>:<B>` with the 16 id bytes as field,
 * is still read (store.c) until its keys expire. */
#ifndef LT_DEDUPE_H
#define LT_DEDUPE_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "lt_buf.h"

#define LT_DEDUPE_BUCKET_BITS 14
#define LT_DEDUPE_BUCKETS     (1u << LT_DEDUPE_BUCKET_BITS)
#define LT_DEDUPE_FIELD_BYTES 4

/* XXH64 of len bytes with seed. */
uint64_t lt_dedupe_xxh64(const void *data, size_t len, uint64_t seed);

/* Canonical JSON of an event without its volatile fields (see above), NUL
 * terminated; caller frees. NULL with errstr when the value cannot be
 * canonicalised (duplicate object key, non-finite number, out of memory). */
char *lt_dedupe_canonical(const cJSON *event, size_t *len, char *errstr, size_t errlen);
/* The content hash: XXH64 of lt_dedupe_canonical(). 0 or -1 with errstr. */
int lt_dedupe_content_hash(const cJSON *event, uint64_t *out, char *errstr, size_t errlen);
/* The same hash, of an event given as its members (each with its key in
 * ->string) in strictly increasing bytewise key order, built in scratch
 * (reused: no allocation once it is big enough). The caller that already
 * knows the order (the sink's validator) skips the sort. 0, or -1 when the
 * members are not in that order or anything else fails: the caller then
 * takes lt_dedupe_content_hash, which says why. */
int lt_dedupe_members_hash(const cJSON *const *members, size_t n, lt_buf_t *scratch, uint64_t *out);
/* The same hash again, of an event given as the values of its members with
 * their keys already in canonical form: keys[i] is `"<key>":` as the
 * canonical JSON writes it (a plain ASCII key between quotes), klens[i] its
 * length, in strictly increasing bytewise key order, which the caller
 * guarantees (the sink's validator: its field table, built once); source is
 * the position of the "source" member (its fetched_at is left out), or n.
 * No comparison of key strings at all. 0, or -1 when a value cannot be
 * canonicalised (lt_dedupe_content_hash then says why). */
int lt_dedupe_keyed_hash(const char *const *keys, const size_t *klens, const cJSON *const *vals,
                         size_t n, size_t source, lt_buf_t *scratch, uint64_t *out);

/* A canonical lower-case UUID (8-4-4-4-12, exactly 36 bytes) into its 16
 * bytes. 0, or -1 for anything else (upper case included). */
int lt_dedupe_uuid_parse(const char *s, size_t len, uint8_t out[16]);
/* The bucket (0 .. LT_DEDUPE_BUCKETS-1) of an event id. */
unsigned lt_dedupe_bucket(const uint8_t id[16]);
/* The bucket as the 4 lower-case hex digits of its key name. */
void lt_dedupe_bucket_hex(const uint8_t id[16], char out[4]);
/* The field of an event id within its bucket. */
void lt_dedupe_field(const uint8_t id[16], uint8_t out[LT_DEDUPE_FIELD_BYTES]);
/* 8 bytes, little endian, and back: the stored form of a hash. */
void lt_dedupe_hash_bytes(uint64_t h, uint8_t out[8]);
uint64_t lt_dedupe_hash_from_bytes(const uint8_t in[8]);

#endif
