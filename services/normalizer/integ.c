/* Integrations by id, with their time zone resolved once per change. The
 * shared cache (lt_registry_cache: a live view of the compacted topic)
 * applies every change between batches; rows naming an unknown integration
 * make it read the topic to its end (at most once a second), and so does a
 * new version in Redis (ltvctl bumps it after every write: its change is
 * then certain to be applied before the next batch, not just soon). */
#include <stdlib.h>
#include <string.h>

#include "lt_log.h"
#include "lt_rkeys.h"
#include "normalizer.h"

#define RELOAD_MIN_MS 1000
#define READ_MS       10000

void norm_integ_release(norm_t *n)
{
    free(n->integs);
    n->integs = NULL;
    n->ninteg = 0;
    lt_registry_cache_destroy(n->integ_cache);
    n->integ_cache = NULL;
}

typedef struct {
    norm_integ_t *items;
    size_t count, cap;
    int oom;
} build_t;

static void add_integ(const lt_integration_t *in, void *opaque)
{
    build_t *b = opaque;
    char err[256];
    if (b->count == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        norm_integ_t *items = realloc(b->items, cap * sizeof(*items));
        if (!items) {
            b->oom = 1;
            return;
        }
        b->items = items, b->cap = cap;
    }
    norm_integ_t *x = &b->items[b->count++];
    memcpy(x->id, in->id, sizeof(x->id));
    memcpy(x->brand, in->brand, sizeof(x->brand));
    memcpy(x->currency, in->currency, sizeof(x->currency));
    x->tz = lt_tz_get(in->timezone, err, sizeof(err));
    if (!x->tz)
        lt_warn("integration %s: %s", in->id, err);
}

/* Rebuilds the map (zones resolved) from the cache when it changed, and
 * counts the cache's reads of the topic in the reload metric. */
static int rebuild(norm_t *n)
{
    unsigned long gen = lt_registry_cache_generation(n->integ_cache);
    unsigned long reads = lt_registry_cache_reads(n->integ_cache);
    build_t b = {0};
    lt_metric_add(n->m.integration_reloads, (long long)(reads - n->integ_reads));
    n->integ_reads = reads;
    if (gen == n->integ_gen && n->integs)
        return 0;
    lt_registry_cache_each(n->integ_cache, add_integ, &b);
    if (b.oom) {
        free(b.items);
        return -1;
    }
    free(n->integs);
    n->integs = b.items; /* owned by n now */
    n->ninteg = b.count;
    n->integ_gen = gen;
    return 0;
}

int norm_integ_load(norm_t *n)
{
    char err[256];
    lt_err_t rc;
    if (!n->integ_cache &&
        !(n->integ_cache = lt_registry_cache_new(n->cfg, RELOAD_MIN_MS, err, sizeof(err)))) {
        lt_warn("integrations reader: %s", err);
        return -1;
    }
    if ((rc = lt_registry_cache_sync(n->integ_cache, READ_MS, err, sizeof(err))) != LT_OK)
        lt_warn("reading integrations: %s", err);
    if (rebuild(n) != 0) /* what did arrive still counts */
        return -1;
    return rc == LT_OK ? 0 : -1;
}

static const norm_integ_t *lookup(const norm_t *n, const char *id)
{
    for (size_t i = 0; i < n->ninteg; i++)
        if (strcmp(n->integs[i].id, id) == 0)
            return &n->integs[i];
    return NULL;
}

int norm_integ_find(norm_t *n, const char *id, norm_integ_t *out)
{
    const norm_integ_t *it = lookup(n, id);
    if (!it && n->integ_cache) {
        lt_integration_t in; /* the cache reads the topic at most once a second */
        lt_registry_cache_find(n->integ_cache, id, &in);
        rebuild(n);
        it = lookup(n, id);
    }
    if (!it || !it->tz)
        return -1;
    *out = *it;
    return 0;
}

/* ltvctl increments P integrations:version (lt_rkey_global) after every
 * write, so a changed timezone reaches the very next batch (ltvctl replay
 * relies on it); the periodic refresh remains for other writers. -1 when
 * Redis did not answer. */
static long long version_now(norm_t *n)
{
    char key[256];
    redisReply *reply;
    long long v = -1;
    lt_rkey_global(key, sizeof(key), n->prefix, "integrations:version");
    if (!(reply = lt_redis_cmd(n->redis, "GET %s", key)))
        return -1;
    if (reply->type == REDIS_REPLY_STRING)
        v = strtoll(reply->str, NULL, 10);
    else if (reply->type == REDIS_REPLY_NIL)
        v = 0;
    freeReplyObject(reply);
    return v;
}

int norm_integ_refresh(norm_t *n)
{
    long long v = version_now(n);
    if (v >= 0 && v != n->integ_version) {
        if (norm_integ_load(n) == 0)
            n->integ_version = v;
    } else if (n->integ_cache && lt_registry_cache_poll(n->integ_cache) > 0) {
        rebuild(n);
    }
    return v >= 0;
}
