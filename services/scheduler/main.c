/* ltvsync-scheduler: turns integrations into sync-window jobs.
 *
 * Each tick: hold (or wait for) the leader lease, read the integrations, and
 * emit what is due for each (plan.c). Two replicas are safe: only the lease
 * holder emits, and every claim carries the lease's fencing token, which an
 * integration refuses once a later leader's claim reached it. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lt_clock.h"
#include "lt_cred.h"
#include "lt_config.h"
#include "lt_daemon.h"
#include "lt_httpd.h"
#include "lt_log.h"
#include "lt_metrics.h"
#include "lt_registry.h"
#include "lt_rkeys.h"
#include "lt_signal.h"
#include "lt_uuid.h"
#include "scheduler.h"

/* Claims in doubt kept at most (about 0.5 KiB each): a plan of thousands
 * of jobs whose mark_queued failed fits; beyond, a claim waits for the
 * claim script's rule (PENDING_CLAIM_MS). */
#define DOUBT_MAX 8192

static atomic_int ready; /* written by the main loop, read by the HTTP thread */
static lt_redis_t *_Atomic ready_redis;

/* Ready while the last lease tick reached Redis and no call failed since:
 * a Redis that stops answering mid-pass turns the scheduler unready at its
 * first timeout, not after the pass and the next lease tick timed out too. */
static int is_ready(void *opaque)
{
    lt_redis_t *r = atomic_load(&ready_redis);
    (void)opaque;
    return atomic_load(&ready) && r && !lt_redis_down(r);
}

/* 1 when nothing changed in Redis behind the planner's back since the last
 * pass: P sched:epoch is set once (a random value) and a Redis restarted
 * empty, or flushed, lost it; P integrations:version is bumped by ltvctl
 * after every write, including those that also reset state (un-parking
 * forgets last_run_ms and the backfill cursors). 0 otherwise (the caller
 * forgets what it may skip), -1 when Redis cannot be read. Both are
 * control-plane keys (lt_rkey_global), so the MGET names one slot in a
 * cluster. */
static int state_kept(sched_ctx_t *ctx, char epoch[37], char version[24])
{
    char kepoch[256], kversion[256], mine[37], ver[24] = "";
    redisReply *reply;
    lt_rkey_global(kepoch, sizeof(kepoch), ctx->prefix, "sched:epoch");
    lt_rkey_global(kversion, sizeof(kversion), ctx->prefix, "integrations:version");
    if (!(reply = lt_redis_cmd(ctx->redis, "MGET %s %s", kepoch, kversion)))
        return -1;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
        freeReplyObject(reply);
        return -1;
    }
    const redisReply *e = reply->element[0], *v = reply->element[1];
    int kept = e->type == REDIS_REPLY_STRING && !strcmp(e->str, epoch);
    if (e->type == REDIS_REPLY_STRING)
        snprintf(epoch, 37, "%s", e->str);
    else
        epoch[0] = '\0';
    if (v->type == REDIS_REPLY_STRING)
        snprintf(ver, sizeof(ver), "%s", v->str);
    kept &= !strcmp(ver, version);
    memcpy(version, ver, sizeof(ver));
    freeReplyObject(reply);
    if (!epoch[0]) { /* missing: set one; another replica may race (NX) */
        lt_uuid_v4(mine);
        if (!(reply = lt_redis_cmd(ctx->redis, "SET %s %s NX", kepoch, mine)))
            return -1;
        if (reply->type == REDIS_REPLY_STATUS)
            memcpy(epoch, mine, 37);
        freeReplyObject(reply);
    }
    return kept;
}

/* One planning pass over the live registry. An integration found quiet by
 * an earlier pass of this term (sched_due_skip) costs no Redis command; the
 * lease is renewed before each one planned, so a slow pass (many
 * integrations, a slow broker) never outlives it. */
typedef struct {
    lt_metric_t *jobs, *planned, *skipped;
} sched_metrics_t;

static void tick(sched_ctx_t *ctx, sched_lease_t *lease, lt_registry_t *reg, sched_due_t *due,
                 sched_metrics_t *m)
{
    size_t planned = 0;
    sched_due_next_pass(due);
    for (size_t i = 0; i < reg->count && !lt_signal_stop; i++) {
        const lt_integration_t *in = &reg->items[i];
        long long quiet;
        char day[11] = "";
        uint64_t doc = sched_due_doc_hash(in);
        ctx->now_ms = lt_clock_now_ms();
        lt_integration_local_day(in, ctx->now_ms / 1000, 0, day);
        if (sched_due_skip(due, in, doc, ctx->now_ms, day))
            continue;
        if (sched_lease_tick(ctx->redis, ctx->prefix, lease) != 1)
            return;
        int n = sched_plan_integration(ctx, in, &quiet);
        sched_due_set(due, in, doc, n < 0 ? 0 : quiet, day);
        planned++;
        if (n > 0)
            lt_metric_add(m->jobs, n);
        if (lt_redis_down(ctx->redis))
            break; /* each integration left would wait for its own timeout */
    }
    lt_metric_add(m->planned, (int64_t)planned);
    lt_metric_add(m->skipped, (int64_t)(reg->count - planned));
}

/* Waits up to ms (in slices, so SIGTERM is seen) while applying changes of
 * ltvsync.integrations to reg; returns early, with 1, once one arrived. */
static int watch(lt_registry_watch_t *w, lt_registry_t *reg, long long ms)
{
    long long until = lt_clock_mono_ms() + ms, left = ms;
    do { /* at least once: what already arrived is applied, even with ms 0 */
        if (lt_registry_watch_poll(w, reg, (int)(left > 200 ? 200 : left > 0 ? left : 0)) > 0)
            return 1;
        left = until - lt_clock_mono_ms();
    } while (left > 0 && !lt_signal_stop);
    return 0;
}

int main(int argc, char **argv)
{
    lt_config_t *cfg = NULL;
    lt_redis_t *redis = NULL;
    lt_producer_t *producer = NULL;
    lt_httpd_t *httpd = NULL;
    lt_httpd_opts_t hopts;
    lt_registry_t reg = {0};
    lt_registry_watch_t *regwatch = NULL;
    sched_lease_t lease = {0};
    sched_ctx_t ctx = {0};
    lt_metric_t *m_leader, *m_doubt;
    sched_metrics_t m;
    sched_due_t *due = NULL;
    long long term = 0;
    char errstr[512], host[64] = "host", rnd[37], epoch[37] = "", version[24] = "";
    long long period, wait, last_tick = 0;
    int rc = lt_daemon_start(argc, argv, "ltvsync-scheduler", LT_SVC_SCHEDULER, NULL, &cfg);
    if (rc >= 0)
        return rc;
    rc = 1;

    m_leader =
        lt_metric_gauge("ltvsync_scheduler_leader", "1 while this replica holds the lease", NULL);
    m.jobs = lt_metric_counter("ltvsync_scheduler_jobs_emitted_total", "Jobs emitted", NULL);
    m.planned =
        lt_metric_counter("ltvsync_scheduler_integrations_planned_total",
                          "Integrations planned by a pass (Redis read, jobs due emitted)", NULL);
    m.skipped = lt_metric_counter("ltvsync_scheduler_integrations_skipped_total",
                                  "Integrations a pass skipped: nothing due before their next "
                                  "live run or lookback",
                                  NULL);
    m_doubt =
        lt_metric_gauge("ltvsync_scheduler_claims_in_doubt",
                        "claims a Redis failure left unsettled, settled once it answers", NULL);
    if (!(due = sched_due_new()) || !(ctx.doubt = sched_doubt_new(DOUBT_MAX))) {
        lt_error("out of memory");
        goto end;
    }
    hopts = lt_httpd_opts_from_config(cfg);
    if (!(httpd = lt_httpd_start(&hopts, is_ready, NULL, errstr, sizeof(errstr)))) {
        lt_error("http endpoint: %s", errstr);
        goto end;
    }
    if (!(redis = lt_redis_new(lt_config_str(cfg, "REDIS_URL"), 5000, errstr, sizeof(errstr)))) {
        lt_error("redis: %s", errstr);
        goto end;
    }
    if (!(producer = lt_producer_new(cfg, "KAFKA_", errstr, sizeof(errstr)))) {
        lt_error("kafka producer: %s", errstr);
        goto end;
    }
    const char *job_topics[] = {lt_config_str(cfg, "TOPIC_JOBS_LIVE"),
                                lt_config_str(cfg, "TOPIC_JOBS_BACKFILL")};
    lt_producer_warm(producer, job_topics, 2, 1000);
    if (!(regwatch = lt_registry_watch_new(cfg, errstr, sizeof(errstr)))) {
        lt_error("integrations reader: %s", errstr);
        goto end;
    }
    gethostname(host, sizeof(host) - 1);
    lt_uuid_v4(rnd);
    snprintf(lease.holder, sizeof(lease.holder), "%.30s:%d:%.8s", host, (int)getpid(), rnd);
    lease.ttl_ms = lt_config_int(cfg, "LEADER_LEASE");
    ctx.cfg = cfg, ctx.redis = redis, ctx.producer = producer, ctx.lease = &lease;
    ctx.prefix = lt_config_str(cfg, "REDIS_PREFIX");
    lt_uuid_v4(ctx.run_id);
    atomic_store(&ready_redis, redis);
    lt_info("started (holder %s, http port %d)", lease.holder, lt_httpd_port(httpd));

    /* A pass runs every SCHEDULER_TICK, and at once when an integration is
     * added or changed (the live view of ltvsync.integrations), so a new
     * integration's first jobs never wait for the next tick. No pass runs
     * before the view holds the whole topic: a removed integration must not
     * be planned from a half-read registry. */
    period = lt_config_int(cfg, "SCHEDULER_TICK");
    int changed = 0;
    while (!lt_signal_stop) {
        long long started = lt_clock_now_ms();
        int leader = sched_lease_tick(redis, ctx.prefix, &lease);
        atomic_store(&ready, leader >= 0);
        lt_metric_set(m_leader, leader == 1);
        if (leader >= 0) /* Redis answered: what a failure left in doubt can be settled */
            sched_settle_doubts(&ctx);
        lt_metric_set(m_doubt, (int64_t)sched_doubt_count(ctx.doubt));
        if (leader == 1 && lt_registry_watch_synced(regwatch) &&
            (changed || started - last_tick >= period)) {
            last_tick = started;
            changed = 0;
            /* what an earlier term (another leader may have come between),
             * a Redis that lost its state or an ltvctl write (P
             * integrations:version) may have changed */
            int kept = state_kept(&ctx, epoch, version);
            if (lease.token != term || kept != 1) {
                sched_due_clear(due);
                term = lease.token;
            }
            tick(&ctx, &lease, &reg, due, &m);
        }
        lt_producer_poll(producer, 0);
        /* The lease is renewed (and a follower retries) at a third of its
         * TTL, whatever SCHEDULER_TICK is, so takeover is quick and a long
         * tick period never lets the lease lapse. */
        wait = lease.ttl_ms / 3 - (lt_clock_now_ms() - started);
        if (leader == 1 && period - (lt_clock_now_ms() - last_tick) < wait)
            wait = period - (lt_clock_now_ms() - last_tick);
        if (!lt_registry_watch_synced(regwatch))
            wait = 200; /* reading the topic: no pass can run before */
        changed |= watch(regwatch, &reg, wait > 0 ? wait : 0);
    }
    lt_info("stopping");
    sched_lease_release(redis, ctx.prefix, &lease);
    rc = 0;
end:
    lt_producer_destroy(producer, 10000);
    lt_httpd_stop(httpd); /* before the Redis handle its readiness reads */
    lt_redis_destroy(redis);
    lt_registry_watch_destroy(regwatch);
    lt_registry_release(&reg);
    sched_due_destroy(due);
    sched_doubt_destroy(ctx.doubt);
    lt_config_destroy(cfg);
    return rc;
}
