/* lt_metrics: process-wide Prometheus counters and gauges.
 *
 * Register once at start-up (not thread-safe against concurrent
 * registration); update from any thread (atomic). Rendering produces the
 * Prometheus text exposition format. Never put a secret in a label. */
#ifndef LT_METRICS_H
#define LT_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct lt_metric_s lt_metric_t;

/* name: "ltvsync_fetcher_rows_total"; labels: `stream="orders"` or NULL.
 * Registering the same name+labels twice returns the same metric. */
lt_metric_t *lt_metric_counter(const char *name, const char *help, const char *labels);
lt_metric_t *lt_metric_gauge(const char *name, const char *help, const char *labels);

void lt_metric_add(lt_metric_t *m, int64_t delta);
void lt_metric_set(lt_metric_t *m, int64_t value);
int64_t lt_metric_get(const lt_metric_t *m);

/* Renders every metric; caller frees. */
char *lt_metrics_render(size_t *len);

#endif
