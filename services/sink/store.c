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
 * The earlier layout (`dd:<G>:<B>`, 16-byte id fields) is read while its
 * keys exist: the sink checks for them at start, and when there are some, a
 * lookup that misses in the current layout asks the earlier one too (a hit
 * counts as previous generation, so it is copied into the current layout).
 * Nothing writes it any more; its keys expire as they always did.
 *
 * One script call per chunk of a batch; a lookup can be on the wire while
 * the caller checks the next chunk (sink_store_lookup_send/_recv), and a
 * batch's record, on a connection of its own, while the next batches are
 * made (sink_store_record_send/_recv). The
 * scripts build their key names from the prefix, which a Redis Cluster
 * would refuse; the sink targets one Redis (or a primary with replicas)
 * like the limiter. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lt_dedupe.h"
#include "lt_log.h"
#include "sink.h"

#define GEN_LUA                                                                                \
    "local t = redis.call('TIME')\n"                                                           \
    "local ms = tonumber(ARGV[2])\n"                                                           \
    "local g = math.floor((tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)) / ms)\n" \
    "local cur = ARGV[1] .. string.format('%d', g) .. ':'\n"

/* ARGV: prefix, generation ms, legacy prefix ("" = no legacy lookups), then
 * per key bucket, field and, with a legacy prefix, the 16 id bytes.
 * Returns per key "c"..hash (current), "p"..hash (previous, or the earlier
 * layout) or "". */
static lt_redis_script_t lookup_script = {
    .source = GEN_LUA "local prev = ARGV[1] .. string.format('%d', g - 1) .. ':'\n"
                      "local old = ARGV[3]\n"
                      "local ocur = old .. string.format('%d', g) .. ':'\n"
                      "local oprev = old .. string.format('%d', g - 1) .. ':'\n"
                      "local step = old == '' and 2 or 3\n"
                      "local out = {}\n"
                      "for i = 4, #ARGV, step do\n"
                      "  local v = redis.call('HGET', cur .. ARGV[i], ARGV[i + 1])\n"
                      "  if v then out[#out + 1] = 'c' .. v else\n"
                      "    v = redis.call('HGET', prev .. ARGV[i], ARGV[i + 1])\n"
                      "    if not v and step == 3 then\n"
                      "      v = redis.call('HGET', ocur .. ARGV[i], ARGV[i + 2]) or\n"
                      "          redis.call('HGET', oprev .. ARGV[i], ARGV[i + 2])\n"
                      "    end\n"
                      "    out[#out + 1] = v and ('p' .. v) or ''\n"
                      "  end\n"
                      "end\n"
                      "return out\n"};

/* ARGV: prefix, generation ms, then (bucket, field, hash) triples. */
static lt_redis_script_t record_script = {
    .source = GEN_LUA "local at = string.format('%.0f', (g + 2) * ms)\n"
                      "local seen = {}\n"
                      "for i = 3, #ARGV, 3 do\n"
                      "  local k = cur .. ARGV[i]\n"
                      "  redis.call('HSET', k, ARGV[i + 1], ARGV[i + 2])\n"
                      "  if not seen[k] then seen[k] = true; redis.call('PEXPIREAT', k, at) end\n"
                      "end\n"
                      "return #ARGV\n"};

/* ARGV: legacy prefix, generation ms, bucket count. How many keys of the
 * earlier layout exist in the current and the previous generation. */
static lt_redis_script_t legacy_script = {
    .source = GEN_LUA "local n = 0\n"
                      "for gg = g - 1, g do\n"
                      "  local k = ARGV[1] .. string.format('%d', gg) .. ':'\n"
                      "  for b = 0, tonumber(ARGV[3]) - 1 do\n"
                      "    n = n + redis.call('EXISTS', k .. string.format('%04x', b))\n"
                      "  end\n"
                      "end\n"
                      "return n\n"};

/* The arguments of one call, pointing into the call's own arrays. */
static void args_build(sink_t *s, sink_call_t *c, const sink_key_t *keys, size_t n, int record)
{
    int legacy = !record && s->legacy;
    snprintf(c->ttl, sizeof(c->ttl), "%lld", s->ttl_ms);
    c->argc = 0;
    c->argv[c->argc] = s->key_prefix;
    c->lens[c->argc++] = strlen(s->key_prefix);
    c->argv[c->argc] = c->ttl;
    c->lens[c->argc++] = strlen(c->ttl);
    if (!record) {
        c->argv[c->argc] = legacy ? s->legacy_prefix : "";
        c->lens[c->argc++] = legacy ? strlen(s->legacy_prefix) : 0;
    }
    for (size_t i = 0; i < n; i++) {
        lt_dedupe_bucket_hex(keys[i].id, c->buckets[i]);
        lt_dedupe_field(keys[i].id, c->fields[i]);
        c->argv[c->argc] = c->buckets[i];
        c->lens[c->argc++] = 4;
        c->argv[c->argc] = (const char *)c->fields[i];
        c->lens[c->argc++] = LT_DEDUPE_FIELD_BYTES;
        if (legacy) {
            c->argv[c->argc] = (const char *)keys[i].id;
            c->lens[c->argc++] = 16;
        }
        if (record) {
            lt_dedupe_hash_bytes(keys[i].hash, c->hashes[i]);
            c->argv[c->argc] = (const char *)c->hashes[i];
            c->lens[c->argc++] = 8;
        }
    }
}

/* Runs the script until it answers, pausing while Redis is unreachable or
 * refuses (fail closed: no write downstream without the dedupe verdict). */
static redisReply *eval_retry(sink_t *s, lt_redis_t *r, lt_redis_script_t *script, sink_call_t *c)
{
    int paused = 0;
    for (;;) {
        redisReply *reply = lt_redis_eval(r, script, 0, c->argc, c->argv, c->lens);
        if (reply && reply->type != REDIS_REPLY_ERROR) {
            if (paused)
                lt_info("redis is back; resuming");
            atomic_store(&s->redis_ok, 1);
            return reply;
        }
        if (!paused) {
            lt_warn("redis %s: %.200s; pausing (fail closed)", reply ? "error" : "unreachable",
                    reply && reply->str ? reply->str : lt_redis_errstr(r));
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

/* Fills keys from a lookup reply; -1 when it is not one. */
static int take_lookup(sink_key_t *keys, size_t n, const redisReply *reply)
{
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const redisReply *e = reply->element[i];
        keys[i].where = 0;
        if (e->type == REDIS_REPLY_STRING && e->len == 9) {
            keys[i].where = e->str[0] == 'c' ? 1 : 2;
            keys[i].hash = lt_dedupe_hash_from_bytes((const uint8_t *)e->str + 1);
        }
    }
    return 0;
}

sink_call_t *sink_call_new(void)
{
    return calloc(1, sizeof(sink_call_t));
}

void sink_call_destroy(sink_call_t *c)
{
    free(c);
}

lt_err_t sink_store_lookup(sink_t *s, sink_call_t *c, sink_key_t *keys, size_t n)
{
    redisReply *reply;
    lt_err_t rc = LT_ERR_RETRIABLE;
    if (n == 0)
        return LT_OK;
    args_build(s, c, keys, n, 0);
    if (!(reply = eval_retry(s, s->redis, &lookup_script, c)))
        return LT_ERR_RETRIABLE;
    if (take_lookup(keys, n, reply) == 0)
        rc = LT_OK;
    else
        lt_error("dedupe lookup: unexpected reply");
    freeReplyObject(reply);
    return rc;
}

void sink_store_lookup_send(sink_t *s, sink_call_t *c, sink_key_t *keys, size_t n)
{
    c->keys = keys;
    c->n = n;
    c->sent = 0;
    if (n == 0)
        return;
    args_build(s, c, keys, n, 0);
    c->sent = lt_redis_eval_send(s->redis, &lookup_script, 0, c->argc, c->argv, c->lens) == 0;
}

lt_err_t sink_store_lookup_recv(sink_t *s, sink_call_t *c)
{
    if (c->n == 0)
        return LT_OK;
    if (c->sent) {
        redisReply *reply =
            lt_redis_eval_recv(s->redis, &lookup_script, 0, c->argc, c->argv, c->lens);
        int ok =
            reply && reply->type != REDIS_REPLY_ERROR && take_lookup(c->keys, c->n, reply) == 0;
        c->sent = 0;
        if (reply)
            freeReplyObject(reply);
        if (ok) {
            atomic_store(&s->redis_ok, 1);
            return LT_OK;
        }
    }
    /* Not sent, or no usable answer: the blocking path pauses, warns and
     * counts (the script only reads, so running it again is safe). */
    return sink_store_lookup(s, c, c->keys, c->n);
}

void sink_store_record_send(sink_t *s, sink_call_t *c, const sink_key_t *keys, size_t n)
{
    c->keys = NULL;
    c->n = n;
    c->sent = 0;
    if (n == 0)
        return;
    args_build(s, c, keys, n, 1);
    c->sent = lt_redis_eval_send(s->redis_rec, &record_script, 0, c->argc, c->argv, c->lens) == 0;
}

lt_err_t sink_store_record_recv(sink_t *s, sink_call_t *c)
{
    redisReply *reply;
    if (c->n == 0)
        return LT_OK;
    if (c->sent) {
        reply = lt_redis_eval_recv(s->redis_rec, &record_script, 0, c->argc, c->argv, c->lens);
        c->sent = 0;
        if (reply && reply->type != REDIS_REPLY_ERROR) {
            freeReplyObject(reply);
            atomic_store(&s->redis_ok, 1);
            return LT_OK;
        }
        if (reply)
            freeReplyObject(reply);
    }
    /* Not sent, or no answer: again, blocking (HSET and PEXPIREAT of the
     * same values: safe to run twice). */
    if (!(reply = eval_retry(s, s->redis_rec, &record_script, c)))
        return LT_ERR_RETRIABLE;
    freeReplyObject(reply);
    return LT_OK;
}

int sink_store_legacy_check(sink_t *s)
{
    char ttl[24], buckets[16];
    const char *argv[3] = {s->legacy_prefix, ttl, buckets};
    size_t lens[3];
    redisReply *reply;
    snprintf(ttl, sizeof(ttl), "%lld", s->ttl_ms);
    snprintf(buckets, sizeof(buckets), "%u", LT_DEDUPE_BUCKETS);
    for (int i = 0; i < 3; i++)
        lens[i] = strlen(argv[i]);
    reply = lt_redis_eval(s->redis, &legacy_script, 0, 3, argv, lens);
    if (!reply || reply->type != REDIS_REPLY_INTEGER) {
        if (reply)
            freeReplyObject(reply);
        return -1;
    }
    s->legacy = reply->integer > 0;
    if (s->legacy)
        lt_info("dedupe: %lld keys of the earlier layout (%s*) are read until they expire",
                (long long)reply->integer, s->legacy_prefix);
    freeReplyObject(reply);
    return 0;
}
