/* ltvsync-fetcher internals: the shared context, worker context and the
 * functions main.c, dispatch.c, job.c and page.c call across files. */
#ifndef FETCHER_H
#define FETCHER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include "lt_clock.h"
#include "lt_config.h"
#include "lt_cred.h"
#include "lt_crm.h"
#include "lt_http.h"
#include "lt_integration.h"
#include "lt_job.h"
#include "lt_kafka.h"
#include "lt_limits.h"
#include "lt_metrics.h"
#include "lt_redis.h"
#include "lt_registry.h"

/* In-flight leases live this long unless renewed by the keeper thread, so a
 * killed fetcher's slots come back within LEASE_TTL_MS. */
#define LEASE_TTL_MS   10000LL
#define LEASE_RENEW_MS 2500LL
/* How long start-up may read the integrations topic to its end. */
#define REGISTRY_READ_MS 10000

typedef struct {
    lt_metric_t *req_ok, *req_empty, *req_auth, *req_retry;
    lt_metric_t *rows, *pages, *limiter_waits, *grants_retaken, *redis_down, *parked;
    lt_metric_t *job_done, *job_dropped, *job_requeued, *job_abandoned;
    lt_metric_t *jobs_active, *split_jobs, *recount_rewalks, *rows_dead, *job_deferred;
    lt_metric_t *job_retried, *jobs_held, *job_skipped; /* dispatch.c */
    lt_metric_t *fields_dropped[LT_STREAM_COUNT];       /* not allow-listed, by stream */
} fetcher_metrics_t;

/* Distinct names of dropped fields logged per process: the CRM names them,
 * so the log is bounded in count and length (job.c). */
#define DROPPED_NAMES_MAX 32
#define DROPPED_NAME_LEN  64

/* Process-wide state; fields are read-only after start-up except where a
 * mutex is named. */
typedef struct {
    const lt_config_t *cfg;
    lt_producer_t *prod; /* shared by all workers (thread-safe) */
    const char *prefix, *topic_raw, *topic_dlq, *redis_url;
    int concurrency, page_size, split_pages, max_attempts, max_pages;
    long long backoff_max_ms, retry_after_max_ms;
    atomic_int fatal; /* the producer failed for good: exit 1 */
    size_t max_body;
    lt_http_opts_t http_opts;
    lt_cred_policy_t cred;       /* where passwords come from and may go */
    lt_registry_cache_t *integs; /* the integrations (thread-safe) */
    pthread_mutex_t lease_mu;    /* guards leases and lease_active */
    lt_lease_t *leases;          /* one slot per worker, renewed by the keeper */
    int *lease_active;
    /* The local in-flight gate (page.c): per integration, the workers of
     * this process that hold or are asking for one of its slots, at most
     * its max_in_flight; the others sleep on gate_cv, not on Redis. One
     * entry per worker at most (an entry with n 0 is free). */
    pthread_mutex_t gate_mu;
    pthread_cond_t gate_cv;
    struct fetcher_gate_s {
        char id[65];
        int n;
    } * gate;
    pthread_mutex_t drop_mu; /* guards dropped and writes of ndropped */
    char dropped[DROPPED_NAMES_MAX][DROPPED_NAME_LEN + 1];
    atomic_int ndropped; /* read without the lock: full means nothing to log */
    fetcher_metrics_t m;
} fetcher_t;

/* One worker thread's own connections. */
typedef struct {
    fetcher_t *f;
    int idx;
    lt_http_t *http;
    lt_redis_t *redis;
    lt_limits_t *lim;
    unsigned rng;
    int redis_was_down;
    lt_redis_script_t parts_script, finish_script, stats_script, park_script;
    /* Set by the dispatcher before a run: attempts already spent on the
     * job's next page in earlier, deferred runs. Set by fetcher_page when it
     * defers: the attempts so far and how long to wait (ms). */
    int attempts_carried;
    long long defer_ms;
    struct fetcher_gate_s *gated; /* its entry while inside the local gate */
} worker_ctx_t;

/* A wait longer than this (a Retry-After, a backoff, an integration at its
 * limits) is not spent in a worker: the job is deferred and the worker
 * takes other work meanwhile. */
#define DEFER_AFTER_MS 2000LL

/* Jobs of one integration a fetcher runs at once: its max_in_flight and a
 * quarter more, so that a job waiting for its rows' acknowledgements (its
 * request done, its slot given back) does not hold a slot's next request
 * back; the local gate keeps requests to max_in_flight. */
static inline int fetcher_jobs_cap(int max_in_flight)
{
    return max_in_flight + max_in_flight / 4 + 1;
}

typedef enum {
    JOB_COMMIT,  /* finished, dropped, parked or requeued: store the offset */
    JOB_ABANDON, /* shutting down mid-job: leave it for redelivery */
    JOB_DEFER,   /* run again after w->defer_ms from its checkpoint; offset not stored */
} job_outcome_t;

/* A copy of the integration from the live view of ltvsync.integrations
 * (every change applied as it arrives); an id not in it is looked for by
 * reading the topic to its current end. 0 found, -1 unknown, -2 the topic
 * could not be read (not known to be absent: try again later). */
int fetcher_integration(fetcher_t *f, const char *id, lt_integration_t *out);

/* Runs one job message to its end. */
job_outcome_t fetcher_job_run(worker_ctx_t *w, const char *topic, const void *payload, size_t len);

/* One page with the shared limits and retries. LT_OK / LT_ERR_EMPTY /
 * LT_ERR_AUTH (out->message says why) / LT_ERR_PERMANENT / LT_ERR_RETRIABLE
 * after FETCH_MAX_ATTEMPTS, or with w->defer_ms > 0 when the next attempt
 * is more than DEFER_AFTER_MS away (the job is deferred, not failed) /
 * LT_ERR_FATAL on shutdown. */
lt_err_t fetcher_page(worker_ctx_t *w, const lt_integration_t *in, const char *password,
                      const lt_job_t *job, int page, int per_page, lt_crm_page_t *out, char *errstr,
                      size_t errlen);
/* A Redis command retried until it succeeds (Redis down: pause, fail
 * closed). NULL only on shutdown. The caller frees the reply. */
redisReply *fetcher_redis(worker_ctx_t *w, int argc, const char **argv);
/* Records a failure in P i:{id}:stats:{stream} (errors, last_error). */
void fetcher_stats_error(worker_ctx_t *w, const lt_job_t *job, const char *err);

/* Dispatcher: consumes both job topics and runs workers until shutdown.
 * Returns the process exit code. */
int fetcher_dispatch_run(fetcher_t *f);
/* 1 while the dispatcher makes progress: its loop turned within 30 s and no
 * job has kept failing (abandoned and retried) for 5 minutes. 0 before it
 * starts and once it stops. Any thread (readiness). */
int fetcher_dispatch_healthy(void);

#endif
