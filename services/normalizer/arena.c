/* arena.c: cJSON nodes of a batch come from a per-thread bump arena, one per
 * batch slot (NORM_SLOTS batches are alive at once).
 *
 * Parsing a batch of envelopes makes hundreds of thousands of small allocations;
 * malloc/free were a third of the normalizer's CPU. While the arena is on
 * (norm_arena_on/off around parsing, on this thread only), cJSON's allocator
 * hands out memory of the slot's arena; cJSON_Delete of such memory is a
 * no-op, and norm_arena_reset(slot) recycles it once that slot's batch is freed. Other
 * threads, and this thread with the arena off, get plain malloc/free. Only
 * cJSON parse trees are made while it is on: never anything a caller frees
 * with free(). */
#include <stdint.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "normalizer.h"

#define CHUNK_SIZE (8u << 20)
#define MAX_CHUNKS 64

typedef struct {
    char *base;
    size_t used;
} chunk_t;

typedef struct {
    chunk_t chunks[MAX_CHUNKS];
    int nchunks, cur;
} arena_t;

static _Thread_local arena_t arenas[NORM_SLOTS];
static _Thread_local arena_t *on; /* the arena in use, or NULL */

static void *arena_malloc(size_t size) {
    arena_t *a = on;
    size = (size + 15) & ~(size_t)15;
    if (!a || size > CHUNK_SIZE / 4)
        return malloc(size);
    for (;;) {
        chunk_t *c = &a->chunks[a->cur];
        if (a->cur < a->nchunks && c->used + size <= CHUNK_SIZE) {
            c->used += size;
            return c->base + c->used - size;
        }
        if (a->cur + 1 < a->nchunks) {
            a->cur++;
            continue;
        }
        if (a->nchunks == MAX_CHUNKS || !(a->chunks[a->nchunks].base = malloc(CHUNK_SIZE)))
            return malloc(size);
        a->chunks[a->nchunks].used = 0;
        a->cur = a->nchunks++;
    }
}

static void arena_free(void *p) {
    for (int a = 0; a < NORM_SLOTS; a++)
        for (int i = 0; i < arenas[a].nchunks; i++)
            if ((uintptr_t)p - (uintptr_t)arenas[a].chunks[i].base < CHUNK_SIZE)
                return;
    free(p);
}

void norm_arena_install(void) {
    cJSON_Hooks hooks = {arena_malloc, arena_free};
    cJSON_InitHooks(&hooks);
}

void norm_arena_on(int slot) { on = &arenas[slot]; }
void norm_arena_off(void) { on = NULL; }

void norm_arena_reset(int slot) {
    arena_t *a = &arenas[slot];
    for (int i = 0; i < a->nchunks; i++)
        a->chunks[i].used = 0;
    a->cur = 0;
}
