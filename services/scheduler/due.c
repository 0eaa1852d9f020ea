/* due.c: which integrations a pass can skip (see scheduler.h). An
 * open-addressing table keyed by integration id (FNV-1a, linear probing,
 * at most half full), rebuilt when it grows; entries are never removed one
 * by one (a removed integration's entry is dead weight until the next
 * clear, which every new term and every lost Redis state makes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler.h"

typedef struct {
    char id[65];        /* "" = empty slot */
    uint64_t doc;       /* hash of the integration's document when planned */
    long long until_ms; /* nothing due before, if the doc and the day hold */
    char day[11];       /* its local day when planned */
    unsigned long pass; /* the last pass that saw it in the registry */
} due_entry_t;

struct sched_due_s {
    due_entry_t *slots;
    size_t cap, n;
    unsigned long pass; /* the pass under way */
};

static uint64_t fnv(const void *p, size_t len, uint64_t h)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < len; i++)
        h = (h ^ c[i]) * 1099511628211ULL;
    return h;
}

#define FNV_BASIS 14695981039346656037ULL

static due_entry_t *find(const sched_due_t *d, const char *id)
{
    if (!d->cap)
        return NULL;
    for (size_t i = fnv(id, strlen(id), FNV_BASIS) & (d->cap - 1);; i = (i + 1) & (d->cap - 1)) {
        due_entry_t *e = &d->slots[i];
        if (!e->id[0] || !strcmp(e->id, id))
            return e;
    }
}

static int grow(sched_due_t *d)
{
    size_t cap = d->cap ? d->cap * 2 : 64;
    due_entry_t *old = d->slots, *slots = calloc(cap, sizeof(*slots));
    size_t oldcap = d->cap;
    if (!slots)
        return -1;
    d->slots = slots, d->cap = cap, d->n = 0;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].id[0]) {
            *find(d, old[i].id) = old[i];
            d->n++;
        }
    free(old);
    return 0;
}

sched_due_t *sched_due_new(void)
{
    return calloc(1, sizeof(sched_due_t));
}

void sched_due_destroy(sched_due_t *d)
{
    if (d)
        free(d->slots);
    free(d);
}

void sched_due_clear(sched_due_t *d)
{
    if (d->slots)
        memset(d->slots, 0, d->cap * sizeof(*d->slots));
    d->n = 0;
}

void sched_due_next_pass(sched_due_t *d)
{
    d->pass++;
}

size_t sched_due_count(const sched_due_t *d)
{
    return d->n;
}

uint64_t sched_due_doc_hash(const lt_integration_t *in)
{
    char *json = lt_integration_to_json(in);
    uint64_t h = json ? fnv(json, strlen(json), FNV_BASIS) : 0;
    free(json);
    return h;
}

int sched_due_skip(sched_due_t *d, const lt_integration_t *in, uint64_t doc, long long now_ms,
                   const char *day)
{
    due_entry_t *e = find(d, in->id);
    if (!e || !e->id[0])
        return 0;
    /* absent from a pass since (removed, maybe added again): plan it */
    int skip =
        e->pass + 1 == d->pass && e->doc == doc && now_ms < e->until_ms && !strcmp(e->day, day);
    e->pass = d->pass;
    return skip;
}

void sched_due_set(sched_due_t *d, const lt_integration_t *in, uint64_t doc, long long until_ms,
                   const char *day)
{
    due_entry_t *e = find(d, in->id);
    if (!e || !e->id[0]) {
        if (!until_ms)
            return; /* nothing to remember: planned every pass */
        if ((d->n + 1) * 2 > d->cap && grow(d) != 0)
            return; /* out of memory: it is planned every pass */
        e = find(d, in->id);
        snprintf(e->id, sizeof(e->id), "%s", in->id);
        d->n++;
    }
    e->doc = doc;
    e->until_ms = until_ms;
    e->pass = d->pass;
    snprintf(e->day, sizeof(e->day), "%s", day);
}
