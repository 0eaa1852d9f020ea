/* Integrations by id, with their time zone resolved once per load. Rows name
 * their integration; an unknown one triggers a re-read of the compacted
 * topic (at most once a second); the map is re-read between batches when
 * ltvctl has written an integration (a version in Redis), and every 30 s. */
#include <stdlib.h>
#include <string.h>

#include "lt_log.h"
#include "normalizer.h"

#define RELOAD_MIN_MS 1000
#define REFRESH_MS 30000

void norm_integ_clear(norm_t *n)
{
    free(n->integs);
    n->integs = NULL;
    n->ninteg = 0;
}

int norm_integ_load(norm_t *n)
{
    lt_registry_t reg = {0};
    char err[256];
    norm_integ_t *fresh;
    n->integ_loaded_ms = lt_clock_mono_ms();
    lt_metric_add(n->m.integration_reloads, 1);
    if (lt_registry_load(&reg, n->cfg, err, sizeof(err)) != LT_OK) {
        lt_warn("reading integrations: %s", err);
        return -1;
    }
    fresh = calloc(reg.count ? reg.count : 1, sizeof(*fresh));
    if (!fresh) {
        lt_registry_clear(&reg);
        return -1;
    }
    for (size_t i = 0; i < reg.count; i++) {
        const lt_integration_t *in = &reg.items[i];
        memcpy(fresh[i].id, in->id, sizeof(fresh[i].id));
        memcpy(fresh[i].brand, in->brand, sizeof(fresh[i].brand));
        memcpy(fresh[i].currency, in->currency, sizeof(fresh[i].currency));
        fresh[i].tz = lt_tz_get(in->timezone, err, sizeof(err));
        if (!fresh[i].tz)
            lt_warn("integration %s: %s", reg.items[i].id, err);
    }
    norm_integ_clear(n);
    n->integs = fresh; /* owned by n now */
    n->ninteg = reg.count;
    lt_registry_clear(&reg);
    return 0;
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
    if ((v >= 0 && v != n->integ_version) ||
        lt_clock_mono_ms() - n->integ_loaded_ms >= REFRESH_MS) {
        if (norm_integ_load(n) == 0 && v >= 0)
            n->integ_version = v;
    }
    return v >= 0;
}
