/* ltvsync-bench-event: the normalizer's per-row CPU without Kafka or Redis.
 *
 * Reads raw envelopes (one JSON value per line, as bench/normalizer_bench.py
 * --rows-only writes them) and times, over several passes, what batch.c does
 * to each row on the main thread: parse the envelope, index the record's
 * fields and probe the chargeback flag, build the events. Prints nanoseconds
 * per row for each phase and the single-thread rows/s of the best pass. Usage:
 *   ltvsync-bench-event ROWS_FILE [PASSES [cjson]]
 * Parses with lt_jtree into an arena, as the normalizer does; "cjson" parses
 * with cJSON (lt_json_parse + cJSON_Delete) for comparison.
 * Figures only; nothing here asserts a speed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lt_event.h"
#include "lt_json.h"
#include "lt_jtree.h"

typedef struct {
    char *p;
    size_t len;
} line_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static line_t *load(const char *path, size_t *count, size_t *bytes)
{
    FILE *f = fopen(path, "r");
    line_t *lines = NULL;
    size_t n = 0, cap = 0;
    char *buf = NULL;
    size_t bufcap = 0;
    ssize_t got;
    if (!f)
        return NULL;
    *bytes = 0;
    while ((got = getline(&buf, &bufcap, f)) > 0) {
        if (buf[got - 1] == '\n')
            got--;
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            lines = realloc(lines, cap * sizeof(*lines));
        }
        lines[n].p = malloc((size_t)got);
        memcpy(lines[n].p, buf, (size_t)got);
        lines[n++].len = (size_t)got;
        *bytes += (size_t)got;
    }
    free(buf);
    fclose(f);
    *count = n;
    return lines;
}

int main(int argc, char **argv)
{
    char err[256];
    size_t count = 0, bytes = 0;
    int passes = argc > 2 ? atoi(argv[2]) : 5;
    line_t *lines = argc > 1 ? load(argv[1], &count, &bytes) : NULL;
    const lt_tz_t *tz = lt_tz_get("America/New_York", err, sizeof(err));
    lt_event_list_t evs = {0};
    const cJSON **trees;
    lt_event_fields_t *fx = calloc(count ? count : 1, sizeof(*fx));
    int use_cjson = argc > 3 && strcmp(argv[3], "cjson") == 0;
    lt_jarena_t *arena = lt_jarena_new();
    double best[3] = {1e9, 1e9, 1e9};
    size_t events = 0, failed = 0;
    if (!lines || !count || !tz) {
        fprintf(stderr, "usage: %s ROWS_FILE [PASSES]\n", argv[0]);
        return 2;
    }
    trees = calloc(count, sizeof(*trees));
    for (int pass = 0; pass < passes; pass++) {
        double t0 = now_s(), t1, t2, t3;
        events = failed = 0;
        for (size_t i = 0; i < count; i++)
            trees[i] =
                use_cjson
                    ? lt_json_parse(lines[i].p, lines[i].len, 1 << 20, err, sizeof(err))
                    : lt_jtree_parse(arena, lines[i].p, lines[i].len, 1 << 20, err, sizeof(err));
        t1 = now_s();
        lt_cb_probe_t probe[1];
        for (size_t i = 0; i < count; i++) {
            const cJSON *rec = cJSON_GetObjectItemCaseSensitive(trees[i], "record");
            const char *s = lt_json_str(trees[i], "stream");
            int st = s ? lt_stream_parse(s, strlen(s)) : -1;
            lt_event_index(rec, &fx[i]); /* once per row, as the normalizer */
            if (st >= 0)
                lt_event_cb_probe((lt_stream_t)st, rec, &fx[i], probe);
        }
        t2 = now_s();
        for (size_t i = 0; i < count; i++) {
            lt_cb_state_t cb = {0};
            const char *s = lt_json_str(trees[i], "stream");
            int st = s ? lt_stream_parse(s, strlen(s)) : -1;
            lt_event_input_t in = {"bench",
                                   "konnektive",
                                   tz,
                                   "USD",
                                   (lt_stream_t)st,
                                   lt_json_str(trees[i], "fetched_at"),
                                   cJSON_GetObjectItemCaseSensitive(trees[i], "record"),
                                   &fx[i],
                                   &cb};
            if (st < 0 || lt_event_build(&in, &evs, err, sizeof(err)) != LT_OK)
                failed++;
            else
                events += evs.n;
        }
        t3 = now_s();
        if (use_cjson)
            for (size_t i = 0; i < count; i++)
                cJSON_Delete((cJSON *)(uintptr_t)trees[i]);
        else
            lt_jarena_reset(arena);
        double t4 = now_s();
        double ph[3] = {t1 - t0 + (t4 - t3), t2 - t1, t3 - t2};
        for (int k = 0; k < 3; k++)
            best[k] = ph[k] < best[k] ? ph[k] : best[k];
    }
    double total = best[0] + best[1] + best[2];
    printf("rows %zu (%.1f MB of JSON), events %zu, rejected %zu, best of %d passes, "
           "parser %s\n",
           count, (double)bytes / 1e6, events, failed, passes, use_cjson ? "cJSON" : "lt_jtree");
    printf("parse+free %.0f ns/row (%.0f MB/s), probe %.0f ns/row, build %.0f ns/row\n",
           best[0] / (double)count * 1e9, (double)bytes / best[0] / 1e6,
           best[1] / (double)count * 1e9, best[2] / (double)count * 1e9);
    printf("total %.0f ns/row: %.0f rows/s on one thread\n", total / (double)count * 1e9,
           (double)count / total);
    lt_event_list_release(&evs);
    for (size_t i = 0; i < count; i++)
        free(lines[i].p);
    free(lines);
    free(trees);
    free(fx);
    lt_jarena_destroy(arena);
    return 0;
}
