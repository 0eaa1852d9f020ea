/* lt_offsets: per-partition finished prefixes (see lt_offsets.h).
 *
 * Layout: classes[cls].parts[partition] points to a part_t, made on first
 * use; a part_t holds its messages in a power-of-two ring, oldest at head,
 * offsets strictly increasing. Partitions whose prefix advanced are listed
 * once in `ready` until taken; room for every partition in that list is made
 * when the partition is, so lt_offsets_done never allocates. */
#include "lt_offsets.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define RING_MIN  16
#define RING_KEEP 4096 /* an emptied ring bigger than this goes back to malloc */

typedef struct {
    int64_t offset;
    int done;
} held_t;

typedef struct {
    held_t *ring;
    size_t head, len, cap;
    int64_t last; /* last offset added; -1 none */
    int64_t next; /* advance waiting for lt_offsets_take; -1 none */
    int listed;   /* in the ready list */
} part_t;

typedef struct {
    part_t **parts;
    size_t nparts;
} class_t;

typedef struct {
    int cls;
    int32_t partition;
} ref_t;

struct lt_offsets_s {
    class_t *classes;
    size_t nclasses;
    ref_t *ready; /* room for every part made (readycap >= nparts) */
    size_t nready, readycap, nparts;
    size_t pending;
    int broken; /* an add failed: nothing is released any more */
};

lt_offsets_t *lt_offsets_new(void)
{
    return calloc(1, sizeof(lt_offsets_t));
}

static void ring_release(part_t *p)
{
    free(p->ring);
    p->ring = NULL;
    p->head = p->len = p->cap = 0;
}

void lt_offsets_destroy(lt_offsets_t *t)
{
    if (!t)
        return;
    for (size_t c = 0; c < t->nclasses; c++) {
        for (size_t i = 0; i < t->classes[c].nparts; i++) {
            if (t->classes[c].parts[i])
                ring_release(t->classes[c].parts[i]);
            free(t->classes[c].parts[i]);
        }
        free(t->classes[c].parts);
    }
    free(t->classes);
    free(t->ready);
    free(t);
}

static held_t *at(const part_t *p, size_t i)
{
    return &p->ring[(p->head + i) & (p->cap - 1)];
}

/* Grows *arr of *n elements of size sz to at least want, zeroing the new
 * ones (doubling, so growing one by one stays amortised O(1)). 0 or -1. */
static int grow_zeroed(void **arr, size_t *n, size_t want, size_t sz)
{
    size_t cap = *n ? *n : 8;
    void *p;
    while (cap < want)
        cap = cap > SIZE_MAX / 2 ? want : cap * 2;
    if (cap > SIZE_MAX / sz || !(p = realloc(*arr, cap * sz)))
        return -1;
    memset((char *)p + *n * sz, 0, (cap - *n) * sz);
    *arr = p;
    *n = cap;
    return 0;
}

/* The part of cls/partition; made (with its room in ready) when create. */
static part_t *part_get(lt_offsets_t *t, int cls, int32_t partition, int create)
{
    size_t c = (size_t)cls, i = (size_t)partition;
    part_t *p;
    if (cls < 0 || partition < 0)
        return NULL;
    if (c < t->nclasses && i < t->classes[c].nparts && t->classes[c].parts[i])
        return t->classes[c].parts[i];
    if (!create)
        return NULL;
    if (c >= t->nclasses &&
        grow_zeroed((void **)&t->classes, &t->nclasses, c + 1, sizeof(class_t)) != 0)
        return NULL;
    class_t *k = &t->classes[c];
    if (i >= k->nparts && grow_zeroed((void **)&k->parts, &k->nparts, i + 1, sizeof(part_t *)) != 0)
        return NULL;
    if (t->nparts == t->readycap &&
        grow_zeroed((void **)&t->ready, &t->readycap, t->nparts + 1, sizeof(ref_t)) != 0)
        return NULL;
    if (!(p = calloc(1, sizeof(*p))))
        return NULL;
    p->last = p->next = -1;
    t->nparts++;
    return k->parts[i] = p;
}

/* Doubles the ring, oldest message first again. 0 or -1. */
static int ring_grow(part_t *p)
{
    size_t cap = p->cap ? p->cap * 2 : RING_MIN;
    held_t *ring;
    if (cap > SIZE_MAX / sizeof(held_t) || !(ring = malloc(cap * sizeof(held_t))))
        return -1;
    for (size_t i = 0; i < p->len; i++)
        ring[i] = *at(p, i);
    free(p->ring);
    p->ring = ring;
    p->head = 0;
    p->cap = cap;
    return 0;
}

static void forget(lt_offsets_t *t, part_t *p)
{
    t->pending -= p->len;
    p->head = p->len = 0;
    if (p->cap > RING_KEEP)
        ring_release(p);
    p->last = p->next = -1; /* a listed part stays listed; take skips it */
}

int lt_offsets_add(lt_offsets_t *t, int cls, int32_t partition, int64_t offset)
{
    part_t *p;
    if (t->broken || offset < 0 || !(p = part_get(t, cls, partition, 1)))
        goto fail;
    if (p->last >= 0 && offset <= p->last)
        forget(t, p); /* the consumer went back: these come again */
    if (p->len == p->cap && ring_grow(p) != 0)
        goto fail;
    *at(p, p->len) = (held_t){offset, 0};
    p->len++;
    p->last = offset;
    t->pending++;
    return 0;
fail:
    t->broken = 1;
    return -1;
}

/* Index of offset among p's held messages, or -1. */
static long find(const part_t *p, int64_t offset)
{
    size_t lo = 0, hi = p->len;
    if (p->len && at(p, 0)->offset == offset)
        return 0; /* the usual case: finished in order */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int64_t o = at(p, mid)->offset;
        if (o == offset)
            return (long)mid;
        if (o < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

int lt_offsets_done(lt_offsets_t *t, int cls, int32_t partition, int64_t offset)
{
    part_t *p = part_get(t, cls, partition, 0);
    long i = p ? find(p, offset) : -1;
    if (i < 0 || at(p, (size_t)i)->done)
        return -1;
    at(p, (size_t)i)->done = 1;
    if (i > 0)
        return 0;
    while (p->len && at(p, 0)->done) {
        p->next = at(p, 0)->offset + 1;
        p->head = (p->head + 1) & (p->cap - 1);
        p->len--;
        t->pending--;
    }
    if (!p->len) {
        p->head = 0;
        if (p->cap > RING_KEEP)
            ring_release(p);
    }
    if (!p->listed) {
        t->ready[t->nready++] = (ref_t){cls, partition};
        p->listed = 1;
    }
    return t->broken ? 0 : 1;
}

int lt_offsets_take(lt_offsets_t *t, int *cls, int32_t *partition, int64_t *next)
{
    while (!t->broken && t->nready) {
        ref_t r = t->ready[--t->nready];
        part_t *p = part_get(t, r.cls, r.partition, 0);
        p->listed = 0;
        if (p->next < 0)
            continue; /* forgotten since it advanced */
        *cls = r.cls;
        *partition = r.partition;
        *next = p->next;
        p->next = -1;
        return 1;
    }
    return 0;
}

size_t lt_offsets_pending(const lt_offsets_t *t)
{
    return t->pending;
}

void lt_offsets_forget_partition(lt_offsets_t *t, int cls, int32_t partition)
{
    part_t *p = part_get(t, cls, partition, 0);
    if (p)
        forget(t, p);
}
