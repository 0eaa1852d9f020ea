/* store.c: the sink's dedupe state in Redis (layout in lt_dedupe.h).
 *
 * Generations: G = floor(redis TIME / DEDUPE_TTL). Hashes are written to
 * generation G, looked up in G and G-1, and a generation's keys expire at
 * the end of G+1. So an event is remembered for at least DEDUPE_TTL after it
 * was last written or seen again (a hit found only in G-1 is copied into G),
 * Redis holds at most two generations, and nothing needs a sweeper. When the
 * state is lost (flush, expiry, a new Redis), the next sight of each event
 * writes it downstream once more: a duplicate of unchanged content, which
 * the event_id key makes a harmless upsert.
 *
 * One script call per batch (one round trip, atomic). The scripts build
 * their key names from the prefix, which a Redis Cluster would refuse; the
 * sink targets one Redis (or a primary with replicas) like the limiter. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lt_dedupe.h"
#include "lt_log.h"
#include "sink.h"

/* ARGV: prefix, generation ms, then (bucket, field) pairs.
 * Returns per pair "c"..hash (current), "p"..hash (previous) or "". */
static lt_redis_script_t lookup_script = {
    .source =
        "local t = redis.call('TIME')\n"
        "local ms = tonumber(ARGV[2])\n"
        "local g = math.floor((tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)) / ms)\n"
        "local cur = ARGV[1] .. string.format('%d', g) .. ':'\n"
        "local prev = ARGV[1] .. string.format('%d', g - 1) .. ':'\n"
        "local out = {}\n"
        "for i = 3, #ARGV, 2 do\n"
        "  local v = redis.call('HGET', cur .. ARGV[i], ARGV[i + 1])\n"
        "  if v then out[#out + 1] = 'c' .. v else\n"
        "    v = redis.call('HGET', prev .. ARGV[i], ARGV[i + 1])\n"
        "    out[#out + 1] = v and ('p' .. v) or ''\n"
        "  end\n"
        "end\n"
        "return out\n"};

/* ARGV: prefix, generation ms, then (bucket, field, hash) triples. */
static lt_redis_script_t record_script = {
    .source =
        "local t = redis.call('TIME')\n"
        "local ms = tonumber(ARGV[2])\n"
        "local g = math.floor((tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)) / ms)\n"
        "local cur = ARGV[1] .. string.format('%d', g) .. ':'\n"
        "local at = string.format('%.0f', (g + 2) * ms)\n"
        "local seen = {}\n"
        "for i = 3, #ARGV, 3 do\n"
        "  local k = cur .. ARGV[i]\n"
        "  redis.call('HSET', k, ARGV[i + 1], ARGV[i + 2])\n"
        "  if not seen[k] then seen[k] = true; redis.call('PEXPIREAT', k, at) end\n"
        "end\n"
        "return #ARGV\n"};

/* Arguments of one call: pointers into the keys plus per-key buckets. */
typedef struct {
    const char **argv;
    size_t *lens;
    char (*buckets)[8];
    char ttl[24];
    int argc;
} args_t;

static int args_init(args_t *a, sink_t *s, const sink_key_t *keys, size_t n, int per,
                     uint8_t (*hashes)[8])
{
    size_t total = 2 + n * (size_t)per;
    a->argv = calloc(total, sizeof(*a->argv));
    a->lens = calloc(total, sizeof(*a->lens));
    a->buckets = calloc(n ? n : 1, sizeof(*a->buckets));
    if (!a->argv || !a->lens || !a->buckets)
        return -1;
    snprintf(a->ttl, sizeof(a->ttl), "%lld", s->ttl_ms);
    a->argv[0] = s->key_prefix;
    a->lens[0] = strlen(s->key_prefix);
    a->argv[1] = a->ttl;
    a->lens[1] = strlen(a->ttl);
    a->argc = 2;
    for (size_t i = 0; i < n; i++) {
        snprintf(a->buckets[i], sizeof(a->buckets[i]), "%04x", lt_dedupe_bucket(keys[i].id));
        a->argv[a->argc] = a->buckets[i];
        a->lens[a->argc++] = 4;
        a->argv[a->argc] = (const char *)keys[i].id;
        a->lens[a->argc++] = 16;
        if (per == 3) {
            lt_dedupe_hash_bytes(keys[i].hash, hashes[i]);
            a->argv[a->argc] = (const char *)hashes[i];
            a->lens[a->argc++] = 8;
        }
    }
    return 0;
}

static void args_release(args_t *a)
{
    free(a->argv);
    free(a->lens);
    free(a->buckets);
}

/* Runs the script until it answers, pausing while Redis is unreachable or
 * refuses (fail closed: no write downstream without the dedupe verdict). */
static redisReply *eval_retry(sink_t *s, lt_redis_script_t *script, args_t *a)
{
    int paused = 0;
    for (;;) {
        redisReply *reply = lt_redis_eval(s->redis, script, 0, a->argc, a->argv, a->lens);
        if (reply && reply->type != REDIS_REPLY_ERROR) {
            if (paused)
                lt_info("redis is back; resuming");
            atomic_store(&s->redis_ok, 1);
            return reply;
        }
        if (!paused) {
            lt_warn("redis %s: %.200s; pausing (fail closed)", reply ? "error" : "unreachable",
                    reply && reply->str ? reply->str : lt_redis_errstr(s->redis));
            lt_metric_add(s->m.redis_pauses, 1);
        }
        paused = 1;
        atomic_store(&s->redis_ok, 0);
        if (reply)
            freeReplyObject(reply);
        if (sink_give_up(s))
            return NULL;
        sink_sleep_ms(s, 500);
    }
}

lt_err_t sink_store_lookup(sink_t *s, sink_key_t *keys, size_t n)
{
    args_t a = {0};
    redisReply *reply = NULL;
    lt_err_t rc = LT_ERR_RETRIABLE;
    if (n == 0)
        return LT_OK;
    if (args_init(&a, s, keys, n, 2, NULL) < 0 || !(reply = eval_retry(s, &lookup_script, &a)))
        goto end;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != n) {
        lt_error("dedupe lookup: unexpected reply");
        goto end;
    }
    for (size_t i = 0; i < n; i++) {
        const redisReply *e = reply->element[i];
        keys[i].where = 0;
        if (e->type == REDIS_REPLY_STRING && e->len == 9) {
            keys[i].where = e->str[0] == 'c' ? 1 : 2;
            keys[i].hash = lt_dedupe_hash_from_bytes((const uint8_t *)e->str + 1);
        }
    }
    rc = LT_OK;
end:
    if (reply)
        freeReplyObject(reply);
    args_release(&a);
    return rc;
}

lt_err_t sink_store_record(sink_t *s, const sink_key_t *keys, size_t n)
{
    args_t a = {0};
    redisReply *reply = NULL;
    uint8_t(*hashes)[8] = calloc(n ? n : 1, sizeof(*hashes));
    lt_err_t rc = LT_ERR_RETRIABLE;
    if (n == 0) {
        free(hashes);
        return LT_OK;
    }
    if (hashes && args_init(&a, s, keys, n, 3, hashes) == 0 &&
        (reply = eval_retry(s, &record_script, &a)))
        rc = LT_OK;
    if (reply)
        freeReplyObject(reply);
    args_release(&a);
    free(hashes);
    return rc;
}
