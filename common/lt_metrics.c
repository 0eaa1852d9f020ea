/* lt_metrics: a fixed registry of atomic counters and gauges.
 *
 * Slots are never freed, so a metric pointer stays valid for the life of
 * the process. A full registry or a bad name yields a shared scratch metric
 * that is never rendered: callers need no NULL checks. */
#include "lt_metrics.h"

#include <ctype.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lt_jtree.h"
#include "lt_log.h"

#define METRICS_MAX   512
#define NAME_MAX_LEN  128
#define HELP_MAX_LEN  256
#define LABEL_MAX_LEN 256

struct lt_metric_s {
    char name[NAME_MAX_LEN];
    char help[HELP_MAX_LEN];
    char labels[LABEL_MAX_LEN]; /* "" = none */
    int gauge;
    _Atomic int64_t value;
};

static lt_metric_t registry[METRICS_MAX];
static size_t registered;
static lt_metric_t scratch;
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int warned; /* one warning, not one per failed registration */

static void warn_once(const char *what, const char *name)
{
    if (!atomic_exchange(&warned, 1))
        lt_warn("metrics: %s %.64s (further failures not logged)", what, name);
}

/* Prometheus metric name: [a-zA-Z_:][a-zA-Z0-9_:]* */
static int name_valid(const char *name)
{
    if (!name || !*name || strlen(name) >= NAME_MAX_LEN || isdigit((unsigned char)*name))
        return 0;
    for (; *name; name++)
        if (!isalnum((unsigned char)*name) && *name != '_' && *name != ':')
            return 0;
    return 1;
}

/* Caller holds reg_lock. */
static lt_metric_t *find(const char *name, const char *labels)
{
    for (size_t i = 0; i < registered; i++)
        if (!strcmp(registry[i].name, name) && !strcmp(registry[i].labels, labels))
            return &registry[i];
    return NULL;
}

/* Caller holds reg_lock: 1 when the name is known with the other type. */
static int type_conflict(const char *name, int gauge)
{
    for (size_t i = 0; i < registered; i++)
        if (!strcmp(registry[i].name, name) && registry[i].gauge != gauge)
            return 1;
    return 0;
}

static lt_metric_t *add(const char *name, const char *help, const char *labels, int gauge)
{
    lt_metric_t *m;

    if (!labels)
        labels = "";
    if (!name_valid(name) || strlen(labels) >= LABEL_MAX_LEN) {
        warn_once("invalid metric", name ? name : "(null)");
        return &scratch;
    }
    pthread_mutex_lock(&reg_lock);
    m = find(name, labels);
    if (!m && !type_conflict(name, gauge) && registered < METRICS_MAX) {
        m = &registry[registered];
        snprintf(m->name, sizeof(m->name), "%s", name);
        snprintf(m->help, sizeof(m->help), "%s", help ? help : "");
        snprintf(m->labels, sizeof(m->labels), "%s", labels);
        m->gauge = gauge;
        atomic_store(&m->value, 0);
        registered++;
    }
    pthread_mutex_unlock(&reg_lock);
    if (!m || m->gauge != gauge) {
        warn_once("registry full or type conflict at", name);
        return &scratch;
    }
    return m;
}

lt_metric_t *lt_metric_counter(const char *name, const char *help, const char *labels)
{
    return add(name, help, labels, 0);
}

lt_metric_t *lt_metric_gauge(const char *name, const char *help, const char *labels)
{
    return add(name, help, labels, 1);
}

void lt_metric_add(lt_metric_t *m, int64_t delta)
{
    if (m)
        atomic_fetch_add(&m->value, delta);
}

void lt_metric_set(lt_metric_t *m, int64_t value)
{
    if (m)
        atomic_store(&m->value, value);
}

int64_t lt_metric_get(const lt_metric_t *m)
{
    return m ? atomic_load(&m->value) : 0;
}

/* HELP text escapes backslash and newline (text format 0.0.4). */
static void put_help(FILE *out, const char *help)
{
    for (; *help; help++) {
        if (*help == '\\')
            fputs("\\\\", out);
        else if (*help == '\n')
            fputs("\\n", out);
        else
            fputc(*help, out);
    }
}

static int seen_before(size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (!strcmp(registry[j].name, registry[i].name))
            return 1;
    return 0;
}

/* One family: HELP and TYPE once, then every label set of the name. */
static void render_family(FILE *out, size_t first)
{
    const lt_metric_t *f = &registry[first];

    fprintf(out, "# HELP %s ", f->name);
    put_help(out, f->help);
    fprintf(out, "\n# TYPE %s %s\n", f->name, f->gauge ? "gauge" : "counter");
    for (size_t i = first; i < registered; i++) {
        const lt_metric_t *m = &registry[i];
        if (strcmp(m->name, f->name))
            continue;
        if (m->labels[0])
            fprintf(out, "%s{%s} %lld\n", m->name, m->labels, (long long)atomic_load(&m->value));
        else
            fprintf(out, "%s %lld\n", m->name, (long long)atomic_load(&m->value));
    }
}

/* Memory of the whole process, read at each scrape: resident set (the
 * standard name), and what the process holds on purpose: what malloc has
 * handed out and not got back (mallinfo2: arena in use plus mmapped
 * chunks) and the JSON arenas' chunks (mappings of their own). RSS growing
 * while the heap in use stays flat is allocator retention, not a leak.
 * Under ASan mallinfo2 reports 0. */
static void render_process(FILE *out)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    struct mallinfo2 mi = mallinfo2();
    fprintf(out,
            "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
            "# TYPE process_resident_memory_bytes gauge\n"
            "process_resident_memory_bytes %lld\n",
            (long long)resident * (long long)sysconf(_SC_PAGESIZE));
    fprintf(out,
            "# HELP ltvsync_process_heap_inuse_bytes Bytes malloc has handed out "
            "and not got back (mallinfo2 uordblks + hblkhd), plus the JSON arenas' "
            "chunks.\n"
            "# TYPE ltvsync_process_heap_inuse_bytes gauge\n"
            "ltvsync_process_heap_inuse_bytes %zu\n",
            mi.uordblks + mi.hblkhd + lt_jarena_mapped_bytes());
}

char *lt_metrics_render(size_t *len)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&buf, &size);

    if (!out)
        return NULL;
    pthread_mutex_lock(&reg_lock);
    for (size_t i = 0; i < registered; i++)
        if (!seen_before(i))
            render_family(out, i);
    pthread_mutex_unlock(&reg_lock);
    render_process(out);
    if (fclose(out) != 0) {
        free(buf);
        return NULL;
    }
    if (len)
        *len = size;
    return buf;
}
