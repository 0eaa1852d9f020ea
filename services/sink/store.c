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
 * Nothing writes it any more; its keys expire as they always did. It only
 * ever existed on one Redis: in a cluster there is no check and no such
 * lookup.
 *
 * One Redis (or a primary with replicas): one script call per chunk of a
 * batch, with no declared key (the scripts build their key names from the
 * stem "P dd2:" in ARGV[1]); a lookup can be on the wire while the caller
 * checks the next chunk (sink_store_lookup_send/_recv), and a batch's
 * record, on a connection of its own, while the next batches are made
 * (sink_store_record_send/_recv).
 *
 * Redis Cluster: a script may touch keys of its declared KEYS' slot only.
 * lt_rkey_dedupe_stem gives the buckets 16 stems "P dd2:{N}:" (N = bucket
 * >> 10), so the keys of a chunk (or record) are grouped by stem and each
 * group is one script call of the same scripts: ARGV[1] is the group's
 * stem, and KEYS[1] the stem itself, an anchor never written that lt_redis
 * routes the call by and that declares the slot; every key the script
 * builds, "P dd2:{N}:G:BBBB", shares its hash tag. The calls stay
 * pipelined as on one Redis: each group has a lookup and a record
 * connection of its own (lt_redis holds one call in flight a connection),
 * so all of a chunk's calls are on the wire at once, while the caller
 * works; that costs 2 x 16 lt_redis handles a sink, each connected to the
 * master of its group's slot (and to a seed for the slot map). The state
 * spreads over up to 16 masters.
 *
 * Each call's node computes G from its own TIME. A group's keys live on
 * one node, so its generations follow one clock; after a failover or a
 * resharding another node's clock takes over, off by far less than
 * DEDUPE_TTL (NTP: milliseconds, against hours), which the lookup of G-1
 * covers: at worst an event is remembered that much less long. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lt_dedupe.h"
#include "lt_log.h"
#include "lt_rkeys.h"
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

/* Key position i of the call: grouped in a cluster, as given otherwise. */
static size_t key_at(const sink_call_t *c, size_t i)
{
    return c->ordered ? c->order[i] : i;
}

/* Splits keys[0..n) into parts, one per tag group that has keys. One
 * Redis: a single part of every key, in order, as ever. */
static void parts_build(sink_t *s, sink_call_t *c, const sink_key_t *keys, size_t n)
{
    size_t count[SINK_GROUPS_MAX] = {0}, at[SINK_GROUPS_MAX];
    uint8_t group[SINK_BATCH_MAX];
    c->nparts = 0;
    c->ordered = s->ngroups > 1;
    if (!c->ordered) {
        c->parts[c->nparts++] = (sink_part_t){.group = 0, .from = 0, .n = n};
        return;
    }
    for (size_t i = 0; i < n; i++)
        count[group[i] = s->group_of[lt_dedupe_bucket(keys[i].id)]]++;
    for (int g = 0; g < s->ngroups; g++) {
        at[g] = g ? at[g - 1] + count[g - 1] : 0;
        if (count[g])
            c->parts[c->nparts++] = (sink_part_t){.group = g, .from = at[g], .n = count[g]};
    }
    for (size_t i = 0; i < n; i++) /* stable: a group keeps the keys' order */
        c->order[at[group[i]]++] = (uint16_t)i;
}

/* The arguments of each part, pointing into the call's own arrays: in a
 * cluster KEYS[1] = the stem, then (as on one Redis) ARGV = stem,
 * generation ms, [legacy prefix,] per key bucket, field, [id | hash]. */
static void args_build(sink_t *s, sink_call_t *c, const sink_key_t *keys, size_t n, int record)
{
    int legacy = !record && s->legacy;
    int argc = 0;
    size_t ttl_len = (size_t)snprintf(c->ttl, sizeof(c->ttl), "%lld", s->ttl_ms);
    parts_build(s, c, keys, n);
    for (int k = 0; k < c->nparts; k++) {
        sink_part_t *p = &c->parts[k];
        const char *stem = s->stems[p->group];
        size_t stem_len = strlen(stem);
        p->off = argc;
        p->sent = 0;
        if (s->cluster) {
            c->argv[argc] = stem;
            c->lens[argc++] = stem_len;
        }
        c->argv[argc] = stem;
        c->lens[argc++] = stem_len;
        c->argv[argc] = c->ttl;
        c->lens[argc++] = ttl_len;
        if (!record) {
            c->argv[argc] = legacy ? s->legacy_prefix : "";
            c->lens[argc++] = legacy ? strlen(s->legacy_prefix) : 0;
        }
        for (size_t i = p->from; i < p->from + p->n; i++) {
            const sink_key_t *key = &keys[key_at(c, i)];
            lt_dedupe_bucket_hex(key->id, c->buckets[i]);
            lt_dedupe_field(key->id, c->fields[i]);
            c->argv[argc] = c->buckets[i];
            c->lens[argc++] = 4;
            c->argv[argc] = (const char *)c->fields[i];
            c->lens[argc++] = LT_DEDUPE_FIELD_BYTES;
            if (legacy) {
                c->argv[argc] = (const char *)key->id;
                c->lens[argc++] = 16;
            }
            if (record) {
                lt_dedupe_hash_bytes(key->hash, c->hashes[i]);
                c->argv[argc] = (const char *)c->hashes[i];
                c->lens[argc++] = 8;
            }
        }
        p->argc = argc - p->off;
    }
}

/* The declared keys of a part's call: its anchor in a cluster. */
static int nkeys(const sink_t *s)
{
    return s->cluster ? 1 : 0;
}

redisReply *sink_redis_retry(sink_t *s, lt_redis_t *r, lt_redis_script_t *script, int nkeys,
                             int argc, const char **argv, const size_t *lens)
{
    int paused = 0;
    for (;;) {
        redisReply *reply = script ? lt_redis_eval(r, script, nkeys, argc, argv, lens)
                                   : lt_redis_argv(r, argc, argv, lens);
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

/* Runs a part's script until it answers (sink_redis_retry). */
static redisReply *eval_retry(sink_t *s, lt_redis_t *r, lt_redis_script_t *script, sink_call_t *c,
                              const sink_part_t *p)
{
    return sink_redis_retry(s, r, script, nkeys(s), p->argc, c->argv + p->off, c->lens + p->off);
}

/* Fills a part's keys from its lookup reply; -1 when it is not one. */
static int take_lookup(sink_call_t *c, const sink_part_t *p, const redisReply *reply)
{
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != p->n)
        return -1;
    for (size_t i = 0; i < p->n; i++) {
        const redisReply *e = reply->element[i];
        sink_key_t *key = &c->keys[key_at(c, p->from + i)];
        key->where = 0;
        if (e->type == REDIS_REPLY_STRING && e->len == 9) {
            key->where = e->str[0] == 'c' ? 1 : 2;
            key->hash = lt_dedupe_hash_from_bytes((const uint8_t *)e->str + 1);
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

/* A part's lookup, blocking. */
static lt_err_t lookup_part(sink_t *s, sink_call_t *c, const sink_part_t *p)
{
    redisReply *reply;
    lt_err_t rc = LT_ERR_RETRIABLE;
    if (!(reply = eval_retry(s, s->look[p->group], &lookup_script, c, p)))
        return LT_ERR_RETRIABLE;
    if (take_lookup(c, p, reply) == 0)
        rc = LT_OK;
    else
        lt_error("dedupe lookup: unexpected reply");
    freeReplyObject(reply);
    return rc;
}

lt_err_t sink_store_lookup(sink_t *s, sink_call_t *c, sink_key_t *keys, size_t n)
{
    lt_err_t rc = LT_OK;
    c->keys = keys;
    c->n = n;
    c->nparts = 0;
    if (n == 0)
        return LT_OK;
    args_build(s, c, keys, n, 0);
    for (int k = 0; k < c->nparts && rc == LT_OK; k++)
        rc = lookup_part(s, c, &c->parts[k]);
    return rc;
}

/* Puts every part's call on the wire, each on its group's connection of
 * handles (one call in flight a connection). */
static void send_parts(sink_t *s, sink_call_t *c, lt_redis_t **handles, lt_redis_script_t *script)
{
    for (int k = 0; k < c->nparts; k++) {
        sink_part_t *p = &c->parts[k];
        p->sent = lt_redis_eval_send(handles[p->group], script, nkeys(s), p->argc, c->argv + p->off,
                                     c->lens + p->off) == 0;
    }
}

/* Takes every answer on the wire before anything else is sent on those
 * connections; done[k] = part k answered (and, for a lookup, its answer
 * was read into the keys). 1 when every part is done. */
static int recv_parts(sink_t *s, sink_call_t *c, lt_redis_t **handles, lt_redis_script_t *script,
                      int lookup, int done[SINK_GROUPS_MAX])
{
    int all = 1;
    for (int k = 0; k < c->nparts; k++) {
        sink_part_t *p = &c->parts[k];
        if (p->sent) {
            redisReply *reply = lt_redis_eval_recv(handles[p->group], script, nkeys(s), p->argc,
                                                   c->argv + p->off, c->lens + p->off);
            done[k] = reply && reply->type != REDIS_REPLY_ERROR &&
                      (!lookup || take_lookup(c, p, reply) == 0);
            p->sent = 0;
            if (reply)
                freeReplyObject(reply);
        }
        all &= done[k];
    }
    if (all)
        atomic_store(&s->redis_ok, 1);
    return all;
}

void sink_store_lookup_send(sink_t *s, sink_call_t *c, sink_key_t *keys, size_t n)
{
    c->keys = keys;
    c->n = n;
    c->nparts = 0;
    if (n == 0)
        return;
    args_build(s, c, keys, n, 0);
    send_parts(s, c, s->look, &lookup_script);
}

lt_err_t sink_store_lookup_recv(sink_t *s, sink_call_t *c)
{
    int done[SINK_GROUPS_MAX] = {0};
    lt_err_t rc = LT_OK;
    if (c->nparts == 0) /* nothing to look up */
        return LT_OK;
    if (recv_parts(s, c, s->look, &lookup_script, 1, done))
        return LT_OK;
    /* Not sent, or no usable answer: the blocking path pauses, warns and
     * counts (the script only reads, so running it again is safe). */
    for (int k = 0; k < c->nparts && rc == LT_OK; k++)
        if (!done[k])
            rc = lookup_part(s, c, &c->parts[k]);
    return rc;
}

void sink_store_record_send(sink_t *s, sink_call_t *c, const sink_key_t *keys, size_t n)
{
    c->keys = NULL;
    c->n = n;
    c->nparts = 0;
    if (n == 0)
        return;
    args_build(s, c, keys, n, 1);
    send_parts(s, c, s->rec, &record_script);
}

lt_err_t sink_store_record_recv(sink_t *s, sink_call_t *c)
{
    int done[SINK_GROUPS_MAX] = {0};
    if (c->nparts == 0) /* nothing to record */
        return LT_OK;
    if (recv_parts(s, c, s->rec, &record_script, 0, done))
        return LT_OK;
    /* Not sent, or no answer: again, blocking (HSET and PEXPIREAT of the
     * same values: safe to run twice). */
    for (int k = 0; k < c->nparts; k++) {
        redisReply *reply;
        if (done[k])
            continue;
        if (!(reply = eval_retry(s, s->rec[c->parts[k].group], &record_script, c, &c->parts[k])))
            return LT_ERR_RETRIABLE;
        freeReplyObject(reply);
    }
    return LT_OK;
}

int sink_store_setup(sink_t *s, const char *url, const char *prefix, char *err, size_t errlen)
{
    s->cluster = lt_redis_is_cluster(s->redis);
    if (s->cluster != lt_rkeys_cluster()) { /* lt_redis_new sets the layout */
        snprintf(err, errlen, "Redis key layout (lt_rkeys) does not match the Redis URL");
        return -1;
    }
    /* The groups are whatever distinct stems lt_rkeys gives the buckets
     * (consecutive buckets share one), so the naming stays in one place. */
    s->ngroups = 0;
    for (unsigned b = 0; b < LT_DEDUPE_BUCKETS; b++) {
        char stem[sizeof(s->stems[0])];
        int g = s->ngroups - 1;
        if (lt_rkey_dedupe_stem(stem, sizeof(stem), prefix, b) < 0) {
            snprintf(err, errlen, "LTVSYNC_REDIS_PREFIX too long");
            return -1;
        }
        if (g < 0 || strcmp(stem, s->stems[g]) != 0) {
            for (g = 0; g < s->ngroups && strcmp(stem, s->stems[g]) != 0; g++)
                ;
            if (g == s->ngroups) {
                if (g == SINK_GROUPS_MAX) {
                    snprintf(err, errlen, "more than %d dedupe stems", SINK_GROUPS_MAX);
                    return -1;
                }
                memcpy(s->stems[s->ngroups++], stem, sizeof(stem));
            }
        }
        s->group_of[b] = (uint8_t)g;
    }
    s->look[0] = s->redis;
    s->rec[0] = s->redis_rec;
    for (int g = 1; g < s->ngroups; g++)
        if (!(s->look[g] = lt_redis_new(url, 2000, err, errlen)) ||
            !(s->rec[g] = lt_redis_new(url, 2000, err, errlen)))
            return -1;
    if (s->cluster)
        lt_info("dedupe: Redis Cluster, %d tag groups (%s .. %s)", s->ngroups, s->stems[0],
                s->stems[s->ngroups - 1]);
    return 0;
}

void sink_store_close(sink_t *s)
{
    for (int g = 1; g < SINK_GROUPS_MAX; g++) {
        lt_redis_destroy(s->look[g]);
        lt_redis_destroy(s->rec[g]);
        s->look[g] = s->rec[g] = NULL;
    }
}

int sink_store_legacy_check(sink_t *s)
{
    char ttl[24], buckets[16];
    const char *argv[3] = {s->legacy_prefix, ttl, buckets};
    size_t lens[3];
    redisReply *reply;
    if (s->cluster) {
        s->legacy = 0;
        return 0;
    }
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
