/* page.c: one CRM page under the cluster-wide limits, with retries.
 *
 * Order per attempt: take an in-flight lease and a rate token together
 * (lt_limits; wait when not granted, pause while Redis is down), POST with
 * the grant checked fresh just before the request leaves (grant_gate), give
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

/* The local in-flight gate: before asking Redis for one of an
 * integration's slots a worker takes one of its max_in_flight local places,
 * sleeping on gate_cv while they are all taken, so that waiting workers of
 * this process do not poll Redis; a place is left when the lease is given
 * back or the asking ends without one. 0 in, -2 still full at deadline_ms
 * (monotonic), -1 on shutdown. */
static int gate_enter(worker_ctx_t *w, const lt_integration_t *in, long long deadline_ms)
{
    fetcher_t *f = w->f;
    int rc = -2;
    if (w->gated)
        return 0;
    pthread_mutex_lock(&f->gate_mu);
    while (!lt_signal_stop) {
        struct fetcher_gate_s *mine = NULL, *free_entry = NULL;
        for (int i = 0; i < f->concurrency && !mine; i++) {
            if (f->gate[i].n > 0 && !strcmp(f->gate[i].id, in->id))
                mine = &f->gate[i];
            else if (f->gate[i].n == 0 && !free_entry)
                free_entry = &f->gate[i];
        }
        if (!mine && free_entry) { /* one entry a worker at most: never short */
            mine = free_entry;
            snprintf(mine->id, sizeof(mine->id), "%s", in->id);
        }
        if (mine && mine->n < (in->max_in_flight > 0 ? in->max_in_flight : 1)) {
            mine->n++;
            w->gated = mine;
            rc = 0;
            break;
        }
        long long left = deadline_ms - lt_clock_mono_ms();
        if (left <= 0)
            break;
        struct timespec ts;
        lt_clock_deadline(CLOCK_REALTIME, left < 100 ? left : 100, &ts); /* sees a stop */
        pthread_cond_timedwait(&f->gate_cv, &f->gate_mu, &ts);
    }
    if (lt_signal_stop && rc != 0)
        rc = -1;
    pthread_mutex_unlock(&f->gate_mu);
    return rc;
}

static void gate_leave(worker_ctx_t *w)
{
    fetcher_t *f = w->f;
    if (!w->gated)
        return;
    pthread_mutex_lock(&f->gate_mu);
    w->gated->n--;
    w->gated = NULL;
    pthread_cond_broadcast(&f->gate_cv);
    pthread_mutex_unlock(&f->gate_mu);
}

/* A grant spaces requests by when Redis granted it, the CRM counts them by
 * when they arrive: a request that leaves late bunches up with the next one.
 * LT_LIMITS_RATE_MARGIN absorbs about 100 ms of such lag a second; a thread
 * descheduled on a busy node, a new connection or a TLS handshake can take
 * longer (crm-sim counted 9 starts in 974 ms at max 8 when one request left
 * 154 ms after its grant). So a grant is used only while fresh: at most
 * GRANT_MAX_AGE_MS from asking Redis to the request's first byte; an older
 * one is given back and taken again. Each retake spends a rate token, so after
 * GRANT_RETAKES in a row the next grant is used as it is: a node too slow
 * for any grant to be fresh still makes progress. */
#define GRANT_MAX_AGE_MS 25
#define GRANT_RETAKES    2

/* Blocks until granted; -1 on shutdown; -2 (with *defer_ms) when the
 * integration's limits keep this worker waiting longer than DEFER_AFTER_MS:
 * a rate key pushed far ahead (a Retry-After), or every in-flight slot held
 * by other workers; -3 when Redis is down and wait_redis is 0 (otherwise a
 * Redis outage is waited out here: fail closed). *asked_ms: when the
 * granting call started (monotonic). */
static int acquire_gated(worker_ctx_t *w, const lt_integration_t *in, int wait_redis,
                         lt_lease_t *lease, long long *asked_ms, long long *defer_ms,
                         long long since)
{
    char err[256];
    long long wait = 0;
    int retakes = 0;
    while (!lt_signal_stop) {
        long long asked = lt_clock_mono_ms();
        int rc =
            lt_limits_try_acquire(w->lim, in->id, in->max_requests_per_second, in->max_in_flight,
                                  LEASE_TTL_MS, lease, &wait, err, sizeof(err));
        if (rc == 1 && lt_clock_mono_ms() - asked > GRANT_MAX_AGE_MS && retakes++ < GRANT_RETAKES) {
            lt_metric_add(w->f->m.grants_retaken, 1);
            lt_limits_release(w->lim, lease); /* nothing was sent on it */
            continue;
        }
        if (rc == 1) {
            redis_state(w, 0, NULL);
            lease_register(w, lease, 1);
            *asked_ms = asked;
            return 0;
        }
        if (rc < 0) {
            redis_state(w, 1, err);
            if (!wait_redis)
                return -3;
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

static int acquire(worker_ctx_t *w, const lt_integration_t *in, int wait_redis, lt_lease_t *lease,
                   long long *asked_ms, long long *defer_ms)
{
    long long since = lt_clock_mono_ms();
    int rc = gate_enter(w, in, since + DEFER_AFTER_MS);
    if (rc == -2) { /* this process's own requests hold every slot */
        lt_metric_add(w->f->m.limiter_waits, 1);
        *defer_ms = 1000;
    }
    if (rc == 0 && (rc = acquire_gated(w, in, wait_redis, lease, asked_ms, defer_ms, since)) != 0)
        gate_leave(w);
    return rc;
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
    gate_leave(w);
}

/* The grant of one attempt, checked by curl's pre-request gate. */
typedef struct {
    worker_ctx_t *w;
    const lt_integration_t *in;
    lt_lease_t lease;
    int held;           /* a lease to give back */
    long long asked_ms; /* when the held lease was asked for */
    int rc;             /* the gate's acquire(): 0, -1, -2 or -3 */
    long long defer_ms; /* with -2 */
} grant_t;

/* Runs just before the request is written (lt_http_post_form_gated): keeps
 * a fresh grant, retakes a stale one (the connection or its TLS handshake
 * was slow, or curl retries on a fresh connection). Never waits out a Redis
 * outage with the connection open: the caller does that. */
static int grant_gate(void *arg)
{
    grant_t *g = arg;
    if (g->held && lt_clock_mono_ms() - g->asked_ms <= GRANT_MAX_AGE_MS)
        return 0;
    if (g->held) {
        lt_metric_add(g->w->f->m.grants_retaken, 1);
        lease_register(g->w, &g->lease, 0);
        lt_limits_release(g->w->lim, &g->lease);
        gate_leave(g->w);
        g->held = 0;
    }
    g->rc = acquire(g->w, g->in, 0, &g->lease, &g->asked_ms, &g->defer_ms);
    g->held = g->rc == 0;
    return g->rc;
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
    lt_metric_add(err == LT_OK          ? m->req_ok
                  : err == LT_ERR_EMPTY ? m->req_empty
                  : err == LT_ERR_AUTH  ? m->req_auth
                                        : m->req_retry,
                  1);
}

/* One HTTP exchange under grant g; fills *status and *retry_after. */
static lt_err_t exchange(worker_ctx_t *w, const char *url, const lt_crm_form_t *form, grant_t *g,
                         lt_crm_page_t *out, long *status, long *retry_after, char *errstr,
                         size_t errlen)
{
    lt_http_resp_t resp;
    memset(&resp, 0, sizeof(resp));
    lt_err_t err = lt_http_post_form_gated(w->http, url, form->fields, form->n, grant_gate, g,
                                           &resp, errstr, errlen);
    *status = resp.status;
    *retry_after = resp.retry_after_s;
    if (err == LT_OK)
        err = lt_crm_parse(resp.status, resp.body, resp.len, w->f->max_body, out, errstr, errlen);
    lt_http_resp_release(&resp);
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

lt_err_t fetcher_page(worker_ctx_t *w, const lt_integration_t *in, const char *password,
                      const lt_job_t *job, int page, int per_page, lt_crm_page_t *out, char *errstr,
                      size_t errlen)
{
    lt_crm_form_t form;
    char url[600];
    lt_err_t err =
        lt_crm_form_build(&form, in->api_username, password, job, page, per_page, errstr, errlen);
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
        grant_t g = {.w = w, .in = in};
        long status = 0, retry_after = -1;
        /* Wait here (no connection open) until the limits would grant;
         * the gate retakes the grant if it is stale by the time the
         * request leaves. */
        g.rc = acquire(w, in, 1, &g.lease, &g.asked_ms, &g.defer_ms);
        g.held = g.rc == 0;
        if (g.rc == 0)
            err = exchange(w, url, &form, &g, out, &status, &retry_after, errstr, errlen);
        if (g.held)
            release(w, &g.lease);
        if (g.rc == -2) {
            lt_crm_page_release(out);
            snprintf(errstr, errlen, "waiting %lld ms for the integration's limits", g.defer_ms);
            return defer(w, attempt - 1, g.defer_ms);
        }
        if (g.rc == -3) { /* Redis went down at the gate: wait, no attempt spent */
            lt_crm_page_release(out);
            attempt--;
            if (lt_clock_nap_ms(500) != 0)
                return LT_ERR_FATAL;
            continue;
        }
        if (g.rc != 0) {
            lt_crm_page_release(out);
            return LT_ERR_FATAL;
        }
        count_outcome(w, err);
        if (err != LT_ERR_RETRIABLE)
            return err;
        lt_crm_page_release(out);
        long long after = retry_after_ms(w, retry_after);
        /* The CRM asked the integration, not this request, to wait: a 429,
         * or a 503 naming a Retry-After, holds its every worker that long. */
        if (status == 429 || (status == 503 && after > 0))
            lt_limits_slowdown(w->lim, in->id, after > 0 ? after : 1000);
        fetcher_stats_error(w, job, errstr);
        if (attempt >= w->f->max_attempts)
            return LT_ERR_RETRIABLE;
        lt_debug("%s %s %s p%d attempt %d: %s", job->integration_id, lt_stream_name(job->stream),
                 job->day, page, attempt, errstr);
        long long pause = backoff_ms(w, attempt, after);
        if (pause > DEFER_AFTER_MS)
            return defer(w, attempt, pause);
        if (lt_clock_nap_ms(pause) != 0)
            return LT_ERR_FATAL;
    }
}
