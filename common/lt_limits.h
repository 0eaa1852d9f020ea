/* lt_limits: per-integration limits shared by every fetcher, in Redis.
 *
 * Requests per second: GCRA (burst 1) on P i:{id}:rate, the theoretical
 * arrival time in microseconds of Redis server TIME, so fetcher clocks never
 * matter. Requests in flight: a ZSET P i:{id}:inflight of lease token ->
 * expiry; expired leases are dropped on every acquire, so a killed fetcher's
 * slots come back after the TTL. Both are taken together in one Lua script:
 * a request is granted only when a slot and a rate token are both free.
 * One lt_limits_t per thread (it borrows that thread's lt_redis_t). */
#ifndef LT_LIMITS_H
#define LT_LIMITS_H

#include <stddef.h>
#include "lt_redis.h"

/* GCRA spacing is 1000/rps ms stretched by this margin so that network and
 * scheduling jitter between grant and arrival (up to 100 ms a second) never
 * lets rps+1 requests land in one second at the CRM. 2.5 % (25 ms) was
 * measured too little: 21 requests in one second at max_rps 20 with two
 * ASan stacks on 2 busy cores. */
#define LT_LIMITS_RATE_MARGIN 0.10

typedef struct lt_limits_s lt_limits_t;

typedef struct {
    char token[40]; /* unique per request */
    char integration_id[65];
} lt_lease_t;

/* prefix: LTVSYNC_REDIS_PREFIX. r is borrowed and must outlive l. */
lt_limits_t *lt_limits_new(lt_redis_t *r, const char *prefix);
void lt_limits_destroy(lt_limits_t *l); /* accepts NULL */

/* One attempt. Returns 1 granted (*lease filled, the caller must release),
 * 0 not granted (*wait_ms: rate wait, or 0 when all slots are taken: poll
 * again soon), -1 Redis unreachable or failing (errstr; fail closed). */
int lt_limits_try_acquire(lt_limits_t *l, const char *id, int rps, int max_in_flight,
                          long long ttl_ms, lt_lease_t *lease, long long *wait_ms, char *errstr,
                          size_t errlen);
/* Gives the slot back. 0, or -1 when Redis is unreachable (the TTL then
 * frees it). */
int lt_limits_release(lt_limits_t *l, const lt_lease_t *lease);
/* Pushes the lease's expiry to now + ttl_ms (keep-alive of a long request).
 * 1 renewed, 0 the lease had expired (not re-added), -1 Redis down. */
int lt_limits_renew(lt_limits_t *l, const lt_lease_t *lease, long long ttl_ms);
/* A 429 from the CRM: no request of the integration starts for penalty_ms
 * (pushes the GCRA arrival time forward, cluster-wide). 0 or -1. */
int lt_limits_slowdown(lt_limits_t *l, const char *id, long long penalty_ms);

#endif
