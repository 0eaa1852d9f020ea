/* lt_limits: see lt_limits.h. Times in the scripts are microseconds of
 * Redis TIME (doubles are exact up to 2^53 us, centuries away). */
#include "lt_limits.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lt_rkeys.h"
#include "lt_uuid.h"

struct lt_limits_s {
    lt_redis_t *r;
    char prefix[128];
    lt_redis_script_t acquire, renew, slowdown;
};

/* KEYS: rate, inflight. ARGV: interval_us, max_in_flight, ttl_ms, token.
 * Returns {1,0} granted, {0,wait_ms} rate-limited, {0,0} no free slot. */
static const char acquire_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now / 1000)\n"
    "if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[2]) then return {0, 0} end\n"
    "local interval = tonumber(ARGV[1])\n"
    "local tat = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
    "if tat > now then return {0, math.ceil((tat - now) / 1000)} end\n"
    "redis.call('SET', KEYS[1], string.format('%.0f', now + interval),\n"
    "           'PX', math.ceil(interval / 1000) + 60000)\n"
    "local ttl = tonumber(ARGV[3])\n"
    "redis.call('ZADD', KEYS[2], math.floor(now / 1000) + ttl, ARGV[4])\n"
    "redis.call('PEXPIRE', KEYS[2], ttl + 60000)\n"
    "return {1, 0}\n";

/* KEYS: inflight. ARGV: token, ttl_ms. */
static const char renew_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local ttl = tonumber(ARGV[2])\n"
    "local n = redis.call('ZADD', KEYS[1], 'XX', 'CH', now + ttl, ARGV[1])\n"
    "if n == 1 then redis.call('PEXPIRE', KEYS[1], ttl + 60000) end\n"
    "return n\n";

/* KEYS: rate. ARGV: penalty_us. Not before now + penalty: 429s that come
 * together (every request in flight answered at once) do not add up. */
static const char slowdown_lua[] = "local t = redis.call('TIME')\n"
                                   "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
                                   "local tat = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
                                   "local pen = tonumber(ARGV[1])\n"
                                   "if tat >= now + pen then return 0 end\n"
                                   "redis.call('SET', KEYS[1], string.format('%.0f', now + pen),\n"
                                   "           'PX', math.ceil(pen / 1000) + 60000)\n"
                                   "return 1\n";

lt_limits_t *lt_limits_new(lt_redis_t *r, const char *prefix)
{
    lt_limits_t *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->r = r;
    snprintf(l->prefix, sizeof(l->prefix), "%s", prefix ? prefix : "ltvsync:");
    l->acquire.source = acquire_lua;
    l->renew.source = renew_lua;
    l->slowdown.source = slowdown_lua;
    return l;
}

void lt_limits_destroy(lt_limits_t *l)
{
    free(l);
}

/* P i:ID:rate or P i:ID:inflight (lt_rkeys): both of one integration, so
 * acquire_lua, which takes both, touches one slot in a cluster. */
static void key_of(const lt_limits_t *l, const char *id, const char *what, char *buf, size_t buflen)
{
    lt_rkey_integ(buf, buflen, l->prefix, id, what);
}

/* Reply must be an array of two integers; -1 otherwise (errstr). */
static int read_pair(redisReply *reply, long long *a, long long *b, char *errstr, size_t errlen)
{
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_INTEGER &&
        reply->element[1]->type == REDIS_REPLY_INTEGER) {
        *a = reply->element[0]->integer;
        *b = reply->element[1]->integer;
        return 0;
    }
    if (reply && reply->type == REDIS_REPLY_ERROR)
        snprintf(errstr, errlen, "redis: %.200s", reply->str);
    else
        snprintf(errstr, errlen, "redis unreachable");
    return -1;
}

int lt_limits_try_acquire(lt_limits_t *l, const char *id, int rps, int max_in_flight,
                          long long ttl_ms, lt_lease_t *lease, long long *wait_ms, char *errstr,
                          size_t errlen)
{
    char rate[256], inflight[256], interval[32], maxs[16], ttl[24];
    long long granted = 0, wait = 0;
    lt_uuid_v4(lease->token);
    snprintf(lease->integration_id, sizeof(lease->integration_id), "%s", id);
    key_of(l, id, "rate", rate, sizeof(rate));
    key_of(l, id, "inflight", inflight, sizeof(inflight));
    snprintf(interval, sizeof(interval), "%.0f",
             1e6 / (rps > 0 ? rps : 1) * (1.0 + LT_LIMITS_RATE_MARGIN));
    snprintf(maxs, sizeof(maxs), "%d", max_in_flight > 0 ? max_in_flight : 1);
    snprintf(ttl, sizeof(ttl), "%lld", ttl_ms);
    const char *argv[] = {rate, inflight, interval, maxs, ttl, lease->token};
    size_t lens[6];
    for (int i = 0; i < 6; i++)
        lens[i] = strlen(argv[i]);
    redisReply *reply = lt_redis_eval(l->r, &l->acquire, 2, 6, argv, lens);
    int rc = read_pair(reply, &granted, &wait, errstr, errlen);
    if (reply)
        freeReplyObject(reply);
    if (rc != 0)
        return -1;
    *wait_ms = wait;
    return granted == 1 ? 1 : 0;
}

int lt_limits_release(lt_limits_t *l, const lt_lease_t *lease)
{
    char inflight[256];
    key_of(l, lease->integration_id, "inflight", inflight, sizeof(inflight));
    redisReply *reply = lt_redis_cmd(l->r, "ZREM %s %s", inflight, lease->token);
    int ok = reply && reply->type == REDIS_REPLY_INTEGER;
    if (reply)
        freeReplyObject(reply);
    return ok ? 0 : -1;
}

int lt_limits_renew(lt_limits_t *l, const lt_lease_t *lease, long long ttl_ms)
{
    char inflight[256], ttl[24];
    key_of(l, lease->integration_id, "inflight", inflight, sizeof(inflight));
    snprintf(ttl, sizeof(ttl), "%lld", ttl_ms);
    const char *argv[] = {inflight, lease->token, ttl};
    size_t lens[] = {strlen(inflight), strlen(lease->token), strlen(ttl)};
    redisReply *reply = lt_redis_eval(l->r, &l->renew, 1, 3, argv, lens);
    int rc = -1;
    if (reply && reply->type == REDIS_REPLY_INTEGER)
        rc = reply->integer == 1 ? 1 : 0;
    if (reply)
        freeReplyObject(reply);
    return rc;
}

int lt_limits_slowdown(lt_limits_t *l, const char *id, long long penalty_ms)
{
    char rate[256], pen[32];
    key_of(l, id, "rate", rate, sizeof(rate));
    snprintf(pen, sizeof(pen), "%lld", penalty_ms * 1000);
    const char *argv[] = {rate, pen};
    size_t lens[] = {strlen(rate), strlen(pen)};
    redisReply *reply = lt_redis_eval(l->r, &l->slowdown, 1, 2, argv, lens);
    int ok = reply && reply->type == REDIS_REPLY_INTEGER;
    if (reply)
        freeReplyObject(reply);
    return ok ? 0 : -1;
}
