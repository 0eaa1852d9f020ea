/* lt_registry: integrations from the compacted topic. */
#include "lt_registry.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_clock.h"
#include "lt_kafka.h"
#include "lt_log.h"

static void remove_at(lt_registry_t *reg, size_t i)
{
    memmove(&reg->items[i], &reg->items[i + 1], (reg->count - i - 1) * sizeof(*reg->items));
    reg->count--;
}

void lt_registry_apply(lt_registry_t *reg, const void *key, size_t keylen, const void *value,
                       size_t len)
{
    lt_integration_t in;
    char errstr[256];
    for (size_t i = 0; i < reg->count; i++) {
        if (strlen(reg->items[i].id) == keylen && !memcmp(reg->items[i].id, key, keylen)) {
            remove_at(reg, i);
            break;
        }
    }
    if (!value)
        return;
    if (lt_integration_parse(value, len, &in, errstr, sizeof(errstr)) != LT_OK) {
        lt_warn("integration %.*s: skipped: %s", (int)(keylen > 64 ? 64 : keylen),
                (const char *)key, errstr);
        return;
    }
    if (strlen(in.id) != keylen || memcmp(in.id, key, keylen)) {
        /* a tombstone of the key could never remove it */
        lt_warn("integration %.*s: skipped: its id is \"%s\", not the message key",
                (int)(keylen > 64 ? 64 : keylen), (const char *)key, in.id);
        return;
    }
    if (reg->count == reg->cap) {
        size_t cap = reg->cap ? reg->cap * 2 : 16;
        lt_integration_t *items = realloc(reg->items, cap * sizeof(*items));
        if (!items)
            return;
        reg->items = items;
        reg->cap = cap;
    }
    reg->items[reg->count++] = in;
}

static void on_message(const rd_kafka_message_t *rkm, void *opaque)
{
    if (!rkm->key)
        return;
    lt_registry_apply(opaque, rkm->key, rkm->key_len, rkm->payload, rkm->len);
}

lt_err_t lt_registry_load(lt_registry_t *reg, const lt_config_t *cfg, char *errstr, size_t errlen)
{
    lt_registry_t fresh = {0};
    lt_err_t err = lt_kafka_read_all(cfg, lt_config_str(cfg, "TOPIC_INTEGRATIONS"), on_message,
                                     &fresh, 10000, errstr, errlen);
    if (err != LT_OK) {
        lt_registry_release(&fresh);
        return err;
    }
    lt_registry_release(reg);
    *reg = fresh;
    return LT_OK;
}

const lt_integration_t *lt_registry_find(const lt_registry_t *reg, const char *id)
{
    for (size_t i = 0; i < reg->count; i++)
        if (!strcmp(reg->items[i].id, id))
            return &reg->items[i];
    return NULL;
}

struct lt_registry_watch_s {
    lt_tail_t *tail;
};

lt_registry_watch_t *lt_registry_watch_new(const lt_config_t *cfg, char *errstr, size_t errlen)
{
    lt_registry_watch_t *w = calloc(1, sizeof(*w));
    if (!w) {
        snprintf(errstr, errlen, "out of memory");
        return NULL;
    }
    if (!(w->tail = lt_tail_new(cfg, lt_config_str(cfg, "TOPIC_INTEGRATIONS"), errstr, errlen))) {
        free(w);
        return NULL;
    }
    return w;
}

int lt_registry_watch_poll(lt_registry_watch_t *w, lt_registry_t *reg, int timeout_ms)
{
    return lt_tail_poll(w->tail, on_message, reg, timeout_ms);
}

lt_err_t lt_registry_watch_read_to_end(lt_registry_watch_t *w, lt_registry_t *reg, int timeout_ms,
                                       char *errstr, size_t errlen)
{
    return lt_tail_read_to_end(w->tail, on_message, reg, timeout_ms, errstr, errlen) == 0
               ? LT_OK
               : LT_ERR_RETRIABLE;
}

int lt_registry_watch_synced(const lt_registry_watch_t *w)
{
    return lt_tail_caught_up(w->tail);
}

void lt_registry_watch_destroy(lt_registry_watch_t *w)
{
    if (w) {
        lt_tail_destroy(w->tail);
        free(w);
    }
}

void lt_registry_release(lt_registry_t *reg)
{
    free(reg->items);
    memset(reg, 0, sizeof(*reg));
}

/* ---- the services' cache ---- */

#define CACHE_READ_MS 10000 /* a read to the topic's end on an unknown id */

struct lt_registry_cache_s {
    pthread_mutex_t mu;
    lt_registry_watch_t *watch;
    lt_registry_t reg;
    int min_reread_ms;
    long long last_read_ms; /* monotonic; 0: never read to the end */
    unsigned long generation, reads;
};

lt_registry_cache_t *lt_registry_cache_new(const lt_config_t *cfg, int min_reread_ms, char *errstr,
                                           size_t errlen)
{
    lt_registry_cache_t *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(errstr, errlen, "out of memory");
        return NULL;
    }
    if (!(c->watch = lt_registry_watch_new(cfg, errstr, errlen))) {
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    c->min_reread_ms = min_reread_ms;
    return c;
}

/* Reads to the end; the caller holds mu. */
static lt_err_t cache_read(lt_registry_cache_t *c, int timeout_ms, char *errstr, size_t errlen)
{
    lt_err_t err = lt_registry_watch_read_to_end(c->watch, &c->reg, timeout_ms, errstr, errlen);
    c->last_read_ms = lt_clock_mono_ms();
    c->generation++; /* what did arrive counts, even on a timeout */
    c->reads++;
    return err;
}

/* Applies what the view has received; returns the number of changes.
 * Caller holds c->mu. */
static int apply_arrived(lt_registry_cache_t *c)
{
    int n = lt_registry_watch_poll(c->watch, &c->reg, 0);
    if (n > 0)
        c->generation++;
    return n;
}

int lt_registry_cache_find(lt_registry_cache_t *c, const char *id, lt_integration_t *out)
{
    char err[256];
    const lt_integration_t *in;
    int rc = -1;
    pthread_mutex_lock(&c->mu);
    apply_arrived(c);
    in = lt_registry_find(&c->reg, id);
    if (!in && (c->min_reread_ms == 0 || c->last_read_ms == 0 ||
                lt_clock_mono_ms() - c->last_read_ms >= c->min_reread_ms)) {
        if (cache_read(c, CACHE_READ_MS, err, sizeof(err)) != LT_OK) {
            lt_warn("reading integrations: %s", err);
            rc = -2;
        }
        in = lt_registry_find(&c->reg, id);
    }
    if (in) {
        *out = *in;
        rc = 0;
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int lt_registry_cache_peek(lt_registry_cache_t *c, const char *id, lt_integration_t *out)
{
    const lt_integration_t *in;
    int rc = -1;
    if (pthread_mutex_trylock(&c->mu) != 0)
        return -1;
    apply_arrived(c);
    if ((in = lt_registry_find(&c->reg, id))) {
        *out = *in;
        rc = 0;
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int lt_registry_cache_poll(lt_registry_cache_t *c)
{
    pthread_mutex_lock(&c->mu);
    int n = apply_arrived(c);
    pthread_mutex_unlock(&c->mu);
    return n;
}

lt_err_t lt_registry_cache_sync(lt_registry_cache_t *c, int timeout_ms, char *errstr, size_t errlen)
{
    pthread_mutex_lock(&c->mu);
    lt_err_t err = cache_read(c, timeout_ms, errstr, errlen);
    pthread_mutex_unlock(&c->mu);
    return err;
}

unsigned long lt_registry_cache_generation(lt_registry_cache_t *c)
{
    pthread_mutex_lock(&c->mu);
    unsigned long g = c->generation;
    pthread_mutex_unlock(&c->mu);
    return g;
}

unsigned long lt_registry_cache_reads(lt_registry_cache_t *c)
{
    pthread_mutex_lock(&c->mu);
    unsigned long n = c->reads;
    pthread_mutex_unlock(&c->mu);
    return n;
}

void lt_registry_cache_each(lt_registry_cache_t *c,
                            void (*fn)(const lt_integration_t *in, void *opaque), void *opaque)
{
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->reg.count; i++)
        fn(&c->reg.items[i], opaque);
    pthread_mutex_unlock(&c->mu);
}

void lt_registry_cache_destroy(lt_registry_cache_t *c)
{
    if (!c)
        return;
    lt_registry_watch_destroy(c->watch);
    lt_registry_release(&c->reg);
    pthread_mutex_destroy(&c->mu);
    free(c);
}
