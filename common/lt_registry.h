/* lt_registry: the current set of integrations, read from the compacted
 * topic ltvsync.integrations (latest value per key wins; a tombstone removes
 * the integration). Invalid documents are skipped with one log line each. */
#ifndef LT_REGISTRY_H
#define LT_REGISTRY_H

#include <stddef.h>
#include "lt_config.h"
#include "lt_integration.h"

typedef struct {
    lt_integration_t *items;
    size_t count, cap;
} lt_registry_t;

/* Replaces reg's content with a fresh read of the whole topic. On failure
 * reg is left as it was. */
lt_err_t lt_registry_load(lt_registry_t *reg, const lt_config_t *cfg, char *errstr, size_t errlen);
const lt_integration_t *lt_registry_find(const lt_registry_t *reg, const char *id);
/* Applies one message (value NULL = tombstone). */
void lt_registry_apply(lt_registry_t *reg, const void *key, size_t keylen, const void *value,
                       size_t len);
void lt_registry_release(lt_registry_t *reg);

/* A live registry: one long-lived reader of the topic (lt_tail) applies
 * every change as it arrives, instead of a fresh read per use. */
typedef struct lt_registry_watch_s lt_registry_watch_t;
lt_registry_watch_t *lt_registry_watch_new(const lt_config_t *cfg, char *errstr, size_t errlen);
/* Applies to reg what arrives within timeout_ms (returns at the first
 * change, with what came with it). Returns the number of messages applied. */
int lt_registry_watch_poll(lt_registry_watch_t *w, lt_registry_t *reg, int timeout_ms);
/* Applies everything up to the topic's end as of now: afterwards reg is
 * what lt_registry_load would read (an id still missing is not there). */
lt_err_t lt_registry_watch_read_to_end(lt_registry_watch_t *w, lt_registry_t *reg, int timeout_ms,
                                       char *errstr, size_t errlen);
/* 1 once reg holds the whole topic as it was when the watch began. */
int lt_registry_watch_synced(const lt_registry_watch_t *w);
void lt_registry_watch_destroy(lt_registry_watch_t *w); /* accepts NULL */

/* The services' lookup of an integration: a live view and the registry it
 * keeps current, under one lock (any thread may call). A lookup first
 * applies what the view has received; an id still unknown makes it read the
 * topic to its end (written a moment ago, or really absent), at most once
 * per min_reread_ms (0: every time). A caller that knows a change was
 * written (ltvctl bumps P integrations:version) calls _sync. */
typedef struct lt_registry_cache_s lt_registry_cache_t;
lt_registry_cache_t *lt_registry_cache_new(const lt_config_t *cfg, int min_reread_ms, char *errstr,
                                           size_t errlen);
/* 0 and a copy in *out; -1 unknown; -2 the topic could not be read now. */
int lt_registry_cache_find(lt_registry_cache_t *c, const char *id, lt_integration_t *out);
/* Like _find without reading the topic and without waiting for the lock:
 * for a caller that must not block (the fetcher's dispatcher). 0 found, -1
 * not known now (unknown, or the lock is busy: ask again later). */
int lt_registry_cache_peek(lt_registry_cache_t *c, const char *id, lt_integration_t *out);
/* Applies what the view has received; returns the number of changes. */
int lt_registry_cache_poll(lt_registry_cache_t *c);
/* Reads the topic to its end within timeout_ms. */
lt_err_t lt_registry_cache_sync(lt_registry_cache_t *c, int timeout_ms, char *errstr,
                                size_t errlen);
/* Changes whenever the set may have changed: data derived from it (the
 * normalizer's resolved zones) is rebuilt when it moves. */
unsigned long lt_registry_cache_generation(lt_registry_cache_t *c);
/* The number of reads to the topic's end so far (a metric). */
unsigned long lt_registry_cache_reads(lt_registry_cache_t *c);
/* Calls fn on every integration, under the lock (fn must not call back). */
void lt_registry_cache_each(lt_registry_cache_t *c,
                            void (*fn)(const lt_integration_t *in, void *opaque), void *opaque);
void lt_registry_cache_destroy(lt_registry_cache_t *c); /* accepts NULL */

#endif
