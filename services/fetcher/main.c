/* ltvsync-fetcher: consumes sync jobs (live before backfill), fetches CRM
 * pages within the cluster-wide limits, writes sanitized rows to
 * ltvsync.raw, checkpoints pages in Redis and commits a job only when all
 * its rows are acknowledged. The flow: main() sets up, dispatch.c runs the
 * consumers and workers, job.c walks one job, page.c does one request. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "fetcher.h"
#include "lt_cred.h"
#include "lt_daemon.h"
#include "lt_httpd.h"
#include "lt_log.h"
#include "lt_signal.h"

static atomic_int ready_redis; /* written by the main loop, read by the HTTP thread */

redisReply *fetcher_redis(worker_ctx_t *w, int argc, const char **argv)
{
    size_t lens[16];
    for (int i = 0; i < argc && i < 16; i++)
        lens[i] = strlen(argv[i]);
    for (;;) {
        redisReply *reply = lt_redis_argv(w->redis, argc, argv, lens);
        if (reply && reply->type != REDIS_REPLY_ERROR)
            return reply;
        if (!w->redis_was_down)
            lt_warn("worker %d: redis %s; pausing", w->idx,
                    reply ? "error reply" : lt_redis_errstr(w->redis));
        w->redis_was_down = 1;
        if (reply)
            freeReplyObject(reply);
        if (lt_clock_nap_ms(500) != 0)
            return NULL;
    }
}

int fetcher_integration(fetcher_t *f, const char *id, lt_integration_t *out)
{
    /* an unknown id is read for every time: its job may have come first */
    return lt_registry_cache_find(f->integs, id, out);
}

/* Keeps the leases of requests in progress alive; refreshes readiness. */
static void *keeper_main(void *arg)
{
    fetcher_t *f = arg;
    char err[256];
    lt_redis_t *r = lt_redis_new(f->redis_url, 2000, err, sizeof(err));
    lt_limits_t *lim = r ? lt_limits_new(r, f->prefix) : NULL;
    while (lim && !lt_signal_stop) {
        for (int i = 0; i < f->concurrency; i++) {
            lt_lease_t lease;
            pthread_mutex_lock(&f->lease_mu);
            int active = f->lease_active[i];
            lease = f->leases[i];
            pthread_mutex_unlock(&f->lease_mu);
            if (active)
                lt_limits_renew(lim, &lease, LEASE_TTL_MS);
        }
        atomic_store(&ready_redis, lt_redis_ping(r));
        lt_clock_nap_ms(LEASE_RENEW_MS);
    }
    lt_limits_destroy(lim);
    lt_redis_destroy(r);
    return NULL;
}

static int ready(void *opaque)
{
    (void)opaque;
    return atomic_load(&ready_redis) && fetcher_dispatch_healthy();
}

static void register_metrics(fetcher_metrics_t *m)
{
    const char *req = "ltvsync_fetcher_requests_total", *jobs = "ltvsync_fetcher_jobs_total";
    const char *rh = "CRM requests by outcome", *jh = "jobs by outcome";
    m->req_ok = lt_metric_counter(req, rh, "outcome=\"ok\"");
    m->req_empty = lt_metric_counter(req, rh, "outcome=\"empty\"");
    m->req_auth = lt_metric_counter(req, rh, "outcome=\"auth\"");
    m->req_retry = lt_metric_counter(req, rh, "outcome=\"retriable\"");
    m->rows = lt_metric_counter("ltvsync_fetcher_rows_total", "rows written to raw", NULL);
    m->pages = lt_metric_counter("ltvsync_fetcher_pages_total", "pages checkpointed", NULL);
    m->limiter_waits = lt_metric_counter("ltvsync_fetcher_limiter_waits_total",
                                         "limit checks that had to wait", NULL);
    m->grants_retaken = lt_metric_counter(
        "ltvsync_fetcher_limiter_grants_retaken_total",
        "grants given back and taken again: too old by the time the request left", NULL);
    m->redis_down = lt_metric_counter("ltvsync_fetcher_redis_pauses_total",
                                      "pauses because Redis was unreachable", NULL);
    m->parked = lt_metric_counter("ltvsync_fetcher_parked_total",
                                  "integrations parked (auth, IP, permission)", NULL);
    m->job_done = lt_metric_counter(jobs, jh, "outcome=\"done\"");
    m->job_dropped = lt_metric_counter(jobs, jh, "outcome=\"dropped\"");
    m->job_requeued = lt_metric_counter(jobs, jh, "outcome=\"requeued\"");
    m->job_abandoned = lt_metric_counter(jobs, jh, "outcome=\"abandoned\"");
    m->job_deferred = lt_metric_counter(jobs, jh, "outcome=\"deferred\"");
    m->job_retried = lt_metric_counter("ltvsync_fetcher_job_retries_total",
                                       "abandoned jobs run again in-process", NULL);
    m->job_skipped =
        lt_metric_counter("ltvsync_fetcher_jobs_skipped_total",
                          "jobs redelivered by a rebalance that this process had finished", NULL);
    m->jobs_held = lt_metric_gauge("ltvsync_fetcher_jobs_uncommitted",
                                   "jobs taken whose offsets are not stored yet", NULL);
    m->jobs_active = lt_metric_gauge("ltvsync_fetcher_jobs_active", "jobs in hand", NULL);
    m->rows_dead = lt_metric_counter("ltvsync_fetcher_rows_dead_lettered_total",
                                     "rows Kafka can never take, sent to the DLQ", NULL);
    m->split_jobs =
        lt_metric_counter("ltvsync_fetcher_split_jobs_total", "page-range sub-jobs emitted", NULL);
    m->recount_rewalks = lt_metric_counter("ltvsync_fetcher_recount_rewalks_total",
                                           "dateUpdated days walked again", NULL);
    for (int s = 0; s < LT_STREAM_COUNT; s++) {
        char label[48];
        snprintf(label, sizeof(label), "stream=\"%s\"", lt_stream_name((lt_stream_t)s));
        m->fields_dropped[s] = lt_metric_counter(
            "ltvsync_fetcher_fields_dropped_total",
            "CRM row fields and entries removed by the allow-list (lt_sanitize)", label);
    }
}

static void setup(fetcher_t *f, const lt_config_t *cfg)
{
    f->cfg = cfg;
    f->prefix = lt_config_str(cfg, "REDIS_PREFIX");
    f->topic_raw = lt_config_str(cfg, "TOPIC_RAW");
    f->topic_dlq = lt_config_str(cfg, "TOPIC_DLQ");
    f->redis_url = lt_config_str(cfg, "REDIS_URL");
    f->concurrency = (int)lt_config_int(cfg, "FETCH_CONCURRENCY");
    f->page_size = (int)lt_config_int(cfg, "FETCH_PAGE_SIZE");
    f->split_pages = (int)lt_config_int(cfg, "FETCH_SPLIT_PAGES");
    f->max_attempts = (int)lt_config_int(cfg, "FETCH_MAX_ATTEMPTS");
    f->backoff_max_ms = lt_config_int(cfg, "FETCH_BACKOFF_MAX");
    f->max_body = (size_t)lt_config_int(cfg, "FETCH_MAX_BODY");
    f->max_pages = (int)lt_config_int(cfg, "FETCH_MAX_PAGES");
    f->retry_after_max_ms = lt_config_int(cfg, "FETCH_RETRY_AFTER_MAX");
    f->http_opts.connect_timeout_ms = (long)lt_config_int(cfg, "FETCH_CONNECT_TIMEOUT");
    f->http_opts.timeout_ms = (long)lt_config_int(cfg, "FETCH_TIMEOUT");
    f->http_opts.max_body = f->max_body;
    f->http_opts.ca_file = lt_config_str(cfg, "HTTP_CA_FILE");
    lt_cred_policy_init(&f->cred, cfg);
    pthread_mutex_init(&f->lease_mu, NULL);
    pthread_mutex_init(&f->drop_mu, NULL);
    pthread_mutex_init(&f->gate_mu, NULL);
    pthread_cond_init(&f->gate_cv, NULL);
    f->gate = calloc((size_t)f->concurrency, sizeof(*f->gate));
    f->leases = calloc((size_t)f->concurrency, sizeof(*f->leases));
    f->lease_active = calloc((size_t)f->concurrency, sizeof(*f->lease_active));
    register_metrics(&f->m);
}

int main(int argc, char **argv)
{
    static fetcher_t f;
    lt_config_t *cfg = NULL;
    lt_httpd_t *httpd = NULL;
    lt_httpd_opts_t hopts;
    pthread_t keeper;
    char err[512];
    int rc = lt_daemon_start(argc, argv, "ltvsync-fetcher", LT_SVC_FETCHER, NULL, &cfg);
    if (rc >= 0)
        return rc;
    rc = 1;
    setup(&f, cfg);
    if (!f.leases || !f.lease_active || !f.gate)
        goto end;
    if (!(f.prod = lt_producer_new(cfg, "KAFKA_", err, sizeof(err)))) {
        lt_error("producer: %s", err);
        goto end;
    }
    const char *out_topics[] = {f.topic_raw, f.topic_dlq,
                                lt_config_str(cfg, "TOPIC_JOBS_BACKFILL")};
    lt_producer_warm(f.prod, out_topics, 3, 1000);
    if (!(f.integs = lt_registry_cache_new(cfg, 0, err, sizeof(err)))) {
        lt_error("integrations reader: %s", err);
        goto end;
    }
    if (lt_registry_cache_sync(f.integs, REGISTRY_READ_MS, err, sizeof(err)) != LT_OK)
        lt_warn("reading integrations: %s (retrying per job)", err);
    hopts = lt_httpd_opts_from_config(cfg);
    httpd = lt_httpd_start(&hopts, ready, NULL, err, sizeof(err));
    if (!httpd) {
        lt_error("http endpoint: %s", err);
        goto end;
    }
    if (pthread_create(&keeper, NULL, keeper_main, &f) != 0)
        goto end;
    rc = fetcher_dispatch_run(&f);
    if (atomic_load(&f.fatal))
        rc = 1; /* restart with a new producer */
    lt_signal_stop = 1;
    pthread_join(keeper, NULL);
end:
    lt_httpd_stop(httpd);
    lt_producer_destroy(f.prod, 10000);
    lt_registry_cache_destroy(f.integs);
    free(f.leases);
    free(f.gate);
    free(f.lease_active);
    lt_config_destroy(cfg);
    lt_info("stopped");
    return rc;
}
