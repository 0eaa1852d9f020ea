/* arena.c: cJSON nodes of a batch come from a per-thread bump arena.
 *
 * Parsing a batch of envelopes makes hundreds of thousands of small allocations;
 * malloc/free were a third of the normalizer's CPU. While the arena is on
 * (norm_arena_on/off around parsing, on this thread only), cJSON's allocator
 * hands out arena memory; cJSON_Delete of such memory is a no-op, and
 * norm_arena_reset() recycles everything once the batch is freed. Other
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

static _Thread_local chunk_t chunks[MAX_CHUNKS];
static _Thread_local int nchunks, cur, on;

static void *arena_malloc(size_t size) {
    size = (size + 15) & ~(size_t)15;
    if (!on || size > CHUNK_SIZE / 4)
        return malloc(size);
    for (;;) {
        if (cur < nchunks && chunks[cur].used + size <= CHUNK_SIZE) {
            void *p = chunks[cur].base + chunks[cur].used;
            chunks[cur].used += size;
            return p;
        }
        if (cur + 1 < nchunks) {
            cur++;
            continue;
        }
        if (nchunks == MAX_CHUNKS || !(chunks[nchunks].base = malloc(CHUNK_SIZE)))
            return malloc(size);
        chunks[nchunks].used = 0;
        cur = nchunks++;
    }
}

static void arena_free(void *p) {
    for (int i = 0; i < nchunks; i++)
        if ((uintptr_t)p - (uintptr_t)chunks[i].base < CHUNK_SIZE)
            return;
    free(p);
}

void norm_arena_install(void) {
    cJSON_Hooks hooks = {arena_malloc, arena_free};
    cJSON_InitHooks(&hooks);
}

void norm_arena_on(void) { on = 1; }
void norm_arena_off(void) { on = 0; }

void norm_arena_reset(void) {
    for (int i = 0; i < nchunks; i++)
        chunks[i].used = 0;
    cur = 0;
}
