/* page.c: one CRM page under the cluster-wide limits, with retries.
 *
 * Order per attempt: take an in-flight lease and a rate token together
 * (lt_limits; wait when not granted, pause while Redis is down), POST, give
 * the lease back, classify. Transient failures back off with full jitter
 * (AWS architecture blog) capped at FETCH_BACKOFF_MAX, never shorter than
 * Retry-After; a 429 also slows every fetcher of the integration. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "fetcher.h"
#include "lt_log.h"
#include "lt_signal.h"

static void lease_register(worker_ctx_t *w, const lt_lease_t *lease, int on)
{
    fetcher_t *f = w->f;
    pthread_mutex_lock(&f->lease_mu);
    if (on)
        f->leases[w->idx] = *lease;
    f->lease_active[w->idx] = on;
    pthread_mutex_unlock(&f->lease_mu);
}

static void redis_state(worker_ctx_t *w, int down, const char *why)
{
    if (down && !w->redis_was_down) {
        lt_warn("worker %d: redis unavailable, pausing (%s)", w->idx, why);
        lt_metric_add(w->f->m.redis_down, 1);
    } else if (!down && w->redis_was_down) {
        lt_info("worker %d: redis back, resuming", w->idx);
    }
    w->redis_was_down = down;
}

/* Blocks until granted; -1 on shutdown; -2 (with *defer_ms) when the
 * integration's limits keep this worker waiting longer than DEFER_AFTER_MS:
 * a rate key pushed far ahead (a Retry-After), or every in-flight slot held
 * by other workers. Redis being down is waited out here (fail closed). */
static int acquire(worker_ctx_t *w, const lt_integration_t *in, lt_lease_t *lease,
                   long long *defer_ms)
{
    char err[256];
    long long wait = 0, since = lt_clock_mono_ms();
    while (!lt_signal_stop) {
        int rc = lt_limits_try_acquire(w->lim, in->id, in->max_requests_per_second,
                                       in->max_in_flight, LEASE_TTL_MS, lease,
                                       &wait, err, sizeof(err));
        if (rc == 1) {
            redis_state(w, 0, NULL);
            lease_register(w, lease, 1);
            return 0;
        }
        if (rc < 0) {
            redis_state(w, 1, err);
            lt_clock_nap_ms(500);
            continue;
        }
        redis_state(w, 0, NULL);
        lt_metric_add(w->f->m.limiter_waits, 1);
        if (wait > DEFER_AFTER_MS || lt_clock_mono_ms() - since + wait > DEFER_AFTER_MS) {
            *defer_ms = wait > 1000 ? wait : 1000;
            return -2;
        }
        /* all slots busy: poll again in a few ms, jittered so that waiters
         * do not move in lock step */
        lt_clock_nap_ms(wait > 0 ? wait : 2 + (long long)(rand_r(&w->rng) % 4));
    }
    return -1;
}

/* The CRM may count a request as in flight until just after its last byte
 * reached us; hold the slot a moment (1 ms) longer so the next request of any
 * fetcher cannot overlap it there. */
#define RELEASE_DELAY_MS 1

static void release(worker_ctx_t *w, const lt_lease_t *lease)
{
    struct timespec ts = {0, RELEASE_DELAY_MS * 1000000L};
    nanosleep(&ts, NULL);
    lease_register(w, lease, 0);
    if (lt_limits_release(w->lim, lease) != 0)
        lt_debug("worker %d: lease release failed; its TTL frees it", w->idx);
}

/* Retry-After in ms, cut to FETCH_RETRY_AFTER_MAX: a CRM (or a proxy) that
 * answers 999999999 must not park a worker, or push the integration's rate
 * key, for decades. -1 when absent. */
static long long retry_after_ms(const worker_ctx_t *w, long retry_after_s)
{
    if (retry_after_s < 0)
        return -1;
    if (retry_after_s >= w->f->retry_after_max_ms / 1000)
        return w->f->retry_after_max_ms;
    return retry_after_s * 1000LL;
}

static long long backoff_ms(worker_ctx_t *w, int attempt, long long retry_after)
{
    long long cap = 500LL << (attempt < 16 ? attempt : 16);
    if (cap > w->f->backoff_max_ms)
        cap = w->f->backoff_max_ms;
    long long ms = (long long)(rand_r(&w->rng) % (unsigned)(cap + 1));
    if (retry_after > 0 && ms < retry_after)
        ms = retry_after;
    return ms;
}

static void count_outcome(worker_ctx_t *w, lt_err_t err)
{
    fetcher_metrics_t *m = &w->f->m;
    lt_metric_add(err == LT_OK ? m->req_ok : err == LT_ERR_EMPTY ? m->req_empty
                  : err == LT_ERR_AUTH ? m->req_auth : m->req_retry, 1);
}

/* One HTTP exchange; fills *status and *retry_after. */
static lt_err_t exchange(worker_ctx_t *w, const char *url, const lt_crm_form_t *form,
                         lt_crm_page_t *out, long *status, long *retry_after,
                         char *errstr, size_t errlen)
{
    lt_http_resp_t resp;
    memset(&resp, 0, sizeof(resp));
    lt_err_t err = lt_http_post_form(w->http, url, form->fields, form->n, &resp,
                                     errstr, errlen);
    *status = resp.status;
    *retry_after = resp.retry_after_s;
    if (err == LT_OK)
        err = lt_crm_parse(resp.status, resp.body, resp.len, w->f->max_body, out,
                           errstr, errlen);
    lt_http_resp_free(&resp);
    return err;
}

/* The next attempt is ms away: hand the job back instead of sleeping in
 * this worker (other integrations' jobs run meanwhile); the attempts made
 * so far go with it, so FETCH_MAX_ATTEMPTS still ends a failing page. */
static lt_err_t defer(worker_ctx_t *w, int attempts, long long ms)
{
    w->attempts_carried = attempts;
    w->defer_ms = ms;
    return LT_ERR_RETRIABLE;
}

lt_err_t fetcher_page(worker_ctx_t *w, const lt_integration_t *in,
                      const char *password, const lt_job_t *job, int page,
                      int per_page, lt_crm_page_t *out, char *errstr,
                      size_t errlen)
{
    lt_crm_form_t form;
    char url[600];
    lt_err_t err = lt_crm_form_build(&form, in->api_username, password, job, page,
                                     per_page, errstr, errlen);
    memset(out, 0, sizeof(*out));
    if (err != LT_OK)
        return err;
    if (lt_crm_url(in->base_url, job->stream, url, sizeof(url)) != 0) {
        snprintf(errstr, errlen, "base_url too long");
        return LT_ERR_PERMANENT;
    }
    int carried = w->attempts_carried;
    w->attempts_carried = 0; /* for the first page of a run only */
    w->defer_ms = 0;
    for (int attempt = carried + 1;; attempt++) {
        lt_lease_t lease;
        long status = 0, retry_after = -1;
        long long wait = 0;
        int got = acquire(w, in, &lease, &wait);
        if (got == -2) {
            snprintf(errstr, errlen, "waiting %lld ms for the integration's limits", wait);
            return defer(w, attempt - 1, wait);
        }
        if (got != 0)
            return LT_ERR_FATAL;
        err = exchange(w, url, &form, out, &status, &retry_after, errstr, errlen);
        release(w, &lease);
        count_outcome(w, err);
        if (err != LT_ERR_RETRIABLE)
            return err;
        lt_crm_page_free(out);
        long long after = retry_after_ms(w, retry_after);
        /* The CRM asked the integration, not this request, to wait: a 429,
         * or a 503 naming a Retry-After, holds its every worker that long. */
        if (status == 429 || (status == 503 && after > 0))
            lt_limits_slowdown(w->lim, in->id, after > 0 ? after : 1000);
        fetcher_stats_error(w, job, errstr);
        if (attempt >= w->f->max_attempts)
            return LT_ERR_RETRIABLE;
        lt_debug("%s %s %s p%d attempt %d: %s", job->integration_id,
                 lt_stream_name(job->stream), job->day, page, attempt, errstr);
        long long pause = backoff_ms(w, attempt, after);
        if (pause > DEFER_AFTER_MS)
            return defer(w, attempt, pause);
        if (lt_clock_nap_ms(pause) != 0)
            return LT_ERR_FATAL;
    }
}
