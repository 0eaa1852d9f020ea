/* lt_rkeys: the name of every Redis key of ltvsync, built in one place.
 * The table of keys (type, fields, writers, readers, bound or expiry, what
 * losing one does) is docs/ARCHITECTURE.md "Redis keys"; a key not built
 * here does not exist.
 *
 * Two layouts, chosen once per process by the Redis URL (lt_redis_new):
 *
 *   one Redis      P i:ID:WHAT        P WHAT
 *   Redis Cluster  P i:{ID}:WHAT      P {g}:WHAT
 *
 * P is LTVSYNC_REDIS_PREFIX (never holding '{' or '}'). In a cluster every
 * key of one integration shares the hash tag {ID}, so each script of an
 * integration touches one slot; the control-plane keys (leader lease,
 * fence, scheduler epoch, integrations version, dead-letter retries) share
 * {g}. A single Redis keeps the names it always had, so an upgrade moves
 * nothing. The sink's dedupe hashes have a builder of their own below. */
#ifndef LT_RKEYS_H
#define LT_RKEYS_H

#include <stddef.h>

/* Set by lt_redis_new from the URL (a seed list = cluster); tests of pure
 * logic may set it. */
void lt_rkeys_set_cluster(int on);
int lt_rkeys_cluster(void);

/* P i:ID:WHAT, or P i:{ID}:WHAT in a cluster. what may be "" (then the
 * trailing ':' is kept: a prefix for WHAT appended by the caller). Returns
 * the length, or -1 when buf is too small (buf then holds ""). */
int lt_rkey_integ(char *buf, size_t len, const char *prefix, const char *id, const char *what);

/* P WHAT, or P {g}:WHAT in a cluster. Same return. */
int lt_rkey_global(char *buf, size_t len, const char *prefix, const char *what);

/* The stem of the sink's dedupe hashes, to which its scripts append
 * "G:BBBB" (generation, bucket in 4 hex digits; services/sink/lt_dedupe.h):
 * "P dd2:" for every bucket on one Redis; "P dd2:{N}:" in a cluster, N the
 * bucket's top 4 of 14 bits in hex (0-f). So the state spreads over 16
 * slots (up to 16 masters) and one batch costs at most 16 script calls.
 * bucket < 16384. Same return as above. */
int lt_rkey_dedupe_stem(char *buf, size_t len, const char *prefix, unsigned bucket);

/* 1 when prefix can prefix keys (no '{' or '}', at most 64 bytes). */
int lt_rkey_prefix_ok(const char *prefix);

#endif
