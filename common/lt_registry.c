/* lt_registry: integrations from the compacted topic. */
#include "lt_registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
