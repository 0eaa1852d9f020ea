/* Integrations by id, with their time zone resolved once per change. A live
 * view of the compacted topic (lt_registry_watch) applies every change
 * between batches; rows naming an unknown integration make it read the
 * topic to its end (at most once a second), and so does a new version in
 * Redis (ltvctl bumps it after every write: its change is then certain to
 * be applied before the next batch, not just soon). */
#include <stdlib.h>
#include <string.h>

#include "lt_log.h"
#include "normalizer.h"

#define RELOAD_MIN_MS 1000
#define READ_MS       10000

void norm_integ_release(norm_t *n)
{
    free(n->integs);
    n->integs = NULL;
    n->ninteg = 0;
    lt_registry_watch_destroy(n->regwatch);
    n->regwatch = NULL;
    lt_registry_release(&n->reg);
}

/* Rebuilds the map from n->reg. */
static int rebuild(norm_t *n)
{
    char err[256];
    lt_registry_t *reg = &n->reg;
    norm_integ_t *fresh = calloc(reg->count ? reg->count : 1, sizeof(*fresh));
    if (!fresh)
        return -1;
    for (size_t i = 0; i < reg->count; i++) {
        const lt_integration_t *in = &reg->items[i];
        memcpy(fresh[i].id, in->id, sizeof(fresh[i].id));
        memcpy(fresh[i].brand, in->brand, sizeof(fresh[i].brand));
        memcpy(fresh[i].currency, in->currency, sizeof(fresh[i].currency));
        fresh[i].tz = lt_tz_get(in->timezone, err, sizeof(err));
        if (!fresh[i].tz)
            lt_warn("integration %s: %s", reg->items[i].id, err);
    }
    free(n->integs);
    n->integs = fresh; /* owned by n now */
    n->ninteg = reg->count;
    return 0;
}

int norm_integ_load(norm_t *n)
{
    char err[256];
    n->integ_loaded_ms = lt_clock_mono_ms();
    lt_metric_add(n->m.integration_reloads, 1);
    if (!n->regwatch && !(n->regwatch = lt_registry_watch_new(n->cfg, err, sizeof(err)))) {
        lt_warn("integrations reader: %s", err);
        return -1;
    }
    if (lt_registry_watch_read_to_end(n->regwatch, &n->reg, READ_MS, err, sizeof(err)) != LT_OK) {
        lt_warn("reading integrations: %s", err);
        rebuild(n); /* what did arrive still counts */
        return -1;
    }
    return rebuild(n);
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
    if (!it && lt_clock_mono_ms() - n->integ_loaded_ms >= RELOAD_MIN_MS) {
        norm_integ_load(n);
        it = lookup(n, id);
    }
    if (!it || !it->tz)
        return -1;
    *out = *it;
    return 0;
}

/* ltvctl increments P integrations:version after every write, so a changed
 * timezone reaches the very next batch (ltvctl replay relies on it); the
 * periodic refresh remains for other writers. -1 when Redis did not answer. */
static long long version_now(norm_t *n)
{
    redisReply *reply = lt_redis_cmd(n->redis, "GET %sintegrations:version", n->prefix);
    long long v = -1;
    if (!reply)
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
    } else if (n->regwatch && lt_registry_watch_poll(n->regwatch, &n->reg, 0) > 0) {
        rebuild(n);
    }
    return v >= 0;
}
