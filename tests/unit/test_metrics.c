/* test_metrics: registration, atomic updates across threads and the
 * Prometheus text format (HELP/TYPE once per name). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_jtree.h"
#include "lt_metrics.h"
#include "lt_test.h"

static int count(const char *hay, const char *needle)
{
    int n = 0;

    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

LT_TEST(register_and_update)
{
    lt_metric_t *a = lt_metric_counter("t_rows_total", "rows", "stream=\"orders\"");
    lt_metric_t *b = lt_metric_counter("t_rows_total", "rows", "stream=\"orders\"");
    lt_metric_t *c = lt_metric_counter("t_rows_total", "rows", "stream=\"customers\"");
    lt_metric_t *g = lt_metric_gauge("t_inflight", "in flight", NULL);

    CHECK(a == b);
    CHECK(a != c);
    lt_metric_add(a, 5);
    lt_metric_add(b, 2);
    lt_metric_add(c, 1);
    CHECK_INT(lt_metric_get(a), 7);
    CHECK_INT(lt_metric_get(c), 1);
    lt_metric_set(g, 42);
    lt_metric_add(g, -2);
    CHECK_INT(lt_metric_get(g), 40);
    lt_metric_add(NULL, 1); /* harmless */
}

LT_TEST(bad_names_get_scratch)
{
    lt_metric_t *bad = lt_metric_counter("1bad-name", "x", NULL);
    lt_metric_t *clash = lt_metric_gauge("t_rows_total", "now a gauge", NULL);
    char *text;

    CHECK(bad != NULL);
    CHECK(clash != NULL);
    lt_metric_add(bad, 1);
    lt_metric_set(clash, 99);
    text = lt_metrics_render(NULL);
    CHECK(text && strstr(text, "1bad-name") == NULL);
    CHECK(text && strstr(text, "t_rows_total 99") == NULL);
    CHECK(text && count(text, "# TYPE t_rows_total counter\n") == 1);
    free(text);
}

static void *adder(void *arg)
{
    for (int i = 0; i < 100000; i++)
        lt_metric_add(arg, 1);
    return NULL;
}

LT_TEST(atomic_across_threads)
{
    lt_metric_t *m = lt_metric_counter("t_race_total", "race", NULL);
    pthread_t th[4];

    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, adder, m);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    CHECK_INT(lt_metric_get(m), 400000);
}

LT_TEST(text_format)
{
    lt_metric_t *h = lt_metric_gauge("t_help_escape", "line1\nback\\slash", NULL);
    size_t len = 0;
    char *text;

    lt_metric_set(h, -3);
    text = lt_metrics_render(&len);
    CHECK(text != NULL);
    if (!text)
        return;
    CHECK_INT(len, strlen(text));
    CHECK(len > 0 && text[len - 1] == '\n');
    CHECK_INT(count(text, "# HELP t_rows_total rows\n"), 1);
    CHECK_INT(count(text, "# TYPE t_rows_total counter\n"), 1);
    CHECK(strstr(text, "t_rows_total{stream=\"orders\"} 7\n") != NULL);
    CHECK(strstr(text, "t_rows_total{stream=\"customers\"} 1\n") != NULL);
    CHECK(strstr(text, "# TYPE t_inflight gauge\nt_inflight 40\n") != NULL);
    CHECK(strstr(text, "# HELP t_help_escape line1\\nback\\\\slash\n") != NULL);
    CHECK(strstr(text, "t_help_escape -3\n") != NULL);
    /* HELP/TYPE directly precede the family's samples */
    CHECK(strstr(text, "# HELP t_rows_total rows\n# TYPE t_rows_total counter\n"
                       "t_rows_total{stream=\"orders\"} 7\n"
                       "t_rows_total{stream=\"customers\"} 1\n") != NULL);
    free(text);
}

LT_TEST(registry_is_bounded)
{
    char name[64];
    lt_metric_t *last = NULL, *first_scratch = NULL;
    char *text;

    for (int i = 0; i < 600; i++) {
        snprintf(name, sizeof(name), "t_fill_%d", i);
        last = lt_metric_gauge(name, "fill", NULL);
        CHECK(last != NULL);
        if (i == 599)
            first_scratch = last;
    }
    lt_metric_set(first_scratch, 5);
    /* earlier metrics keep working once the registry is full */
    CHECK_INT(lt_metric_get(lt_metric_gauge("t_inflight", "in flight", NULL)), 40);
    text = lt_metrics_render(NULL);
    CHECK(text && strstr(text, "\nt_fill_0 0\n") != NULL);
    CHECK(text && strstr(text, "t_fill_599") == NULL);
    free(text);
}

LT_TEST(process_memory)
{
    char *text = lt_metrics_render(NULL), *p;
    CHECK(text != NULL);
    p = strstr(text, "\nprocess_resident_memory_bytes ");
    CHECK(p != NULL && strtoll(p + 31, NULL, 10) > 1024 * 1024); /* a process is > 1 MiB */
    CHECK(strstr(text, "\nltvsync_process_heap_inuse_bytes ") != NULL);
    free(text);
}

static long long heap_inuse(void)
{
    char *text = lt_metrics_render(NULL);
    const char *p = text ? strstr(text, "\nltvsync_process_heap_inuse_bytes ") : NULL;
    long long v = p ? strtoll(p + 34, NULL, 10) : -1;
    free(text);
    return v;
}

/* The JSON arenas' chunks are mappings malloc does not count: the heap in
 * use adds them, and gives them back with the arena. */
LT_TEST(heap_counts_arenas)
{
    const long long mib = 1 << 20;
    size_t mapped0 = lt_jarena_mapped_bytes();
    long long before = heap_inuse(), during, after;
    lt_jarena_t *a = lt_jarena_new();
    CHECK(a && lt_jarena_alloc(a, 100) != NULL);
    CHECK(lt_jarena_mapped_bytes() - mapped0 == lt_jarena_bytes(a));
    during = heap_inuse();
    lt_jarena_destroy(a);
    after = heap_inuse();
    printf("heap in use %lld, with a 1 MiB arena %lld, after it %lld\n", before, during, after);
    CHECK(before >= 0 && during - before > mib - mib / 16);
    CHECK(during - after > mib - mib / 16);
    CHECK(lt_jarena_mapped_bytes() == mapped0);
}

int main(void)
{
    LT_RUN(register_and_update);
    LT_RUN(bad_names_get_scratch);
    LT_RUN(atomic_across_threads);
    LT_RUN(text_format);
    LT_RUN(registry_is_bounded);
    LT_RUN(process_memory);
    LT_RUN(heap_counts_arenas);
    return LT_DONE();
}
