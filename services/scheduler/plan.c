/* The job plan of one integration.
 *
 * Backfill: one dateCreated job per account-local day and stream, from
 * import_from to yesterday, oldest first, bounded by MAX_OUTSTANDING_JOBS;
 * P i:{id}:backfill:{stream} remembers how far emission got, and days already
 * in P i:{id}:done:{stream} are skipped, so restarts never re-emit finished
 * work. Live: every sync_interval, dateUpdated jobs for the last
 * LIVE_LOOKBACK_DAYS days, which catches refunds and chargeback marks on old
 * sales. Lookback: every CHARGEBACK_LOOKBACK_INTERVAL, isChargedback=1 jobs
 * over CHARGEBACK_LOOKBACK_DAYS, for marks dateUpdated might miss.
 *
 * Every job is claimed in P i:{id}:outstanding by a Lua script that also
 * checks the leader lease (fencing), so no job is outstanding twice. A claim
 * older than STALE_CLAIM_MS is presumed lost (a fetcher gave up) and re-made. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_date.h"
#include "lt_job.h"
#include "lt_log.h"
#include "lt_uuid.h"
#include "scheduler.h"

#define STALE_CLAIM_MS (6LL * 3600 * 1000)

static lt_redis_script_t claim_script = {
    .source =
        "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end\n"
        "local cur = redis.call('HGET', KEYS[2], ARGV[2])\n"
        "if cur then\n"
        "  local ms = tonumber(string.match(cur, ' (%d+)$'))\n"
        "  if ms and tonumber(ARGV[4]) - ms < tonumber(ARGV[5]) then return 0 end\n"
        "elseif redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[6]) then return -2 end\n"
        "redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])\n"
        "return 1\n",
};

/* Claims jobkey for job; 1 claimed, 0 already outstanding, -1 not leader,
 * -2 outstanding cap reached, -3 Redis unreachable. */
static int claim(sched_ctx_t *ctx, const lt_integration_t *in, const lt_job_t *job) {
    char kleader[256], kout[256], lease[128], jobkey[128], value[80], now[24], stale[24], cap[24];
    const char *argv[8];
    size_t lens[8];
    redisReply *reply;
    int rc;

    snprintf(kleader, sizeof(kleader), "%sleader", ctx->prefix);
    snprintf(kout, sizeof(kout), "%si:%s:outstanding", ctx->prefix, in->id);
    snprintf(lease, sizeof(lease), "%s %lld", ctx->lease->holder, ctx->lease->token);
    lt_job_key(job, jobkey, sizeof(jobkey));
    snprintf(value, sizeof(value), "%s %lld", job->job_id, ctx->now_ms);
    snprintf(now, sizeof(now), "%lld", ctx->now_ms);
    snprintf(stale, sizeof(stale), "%lld", STALE_CLAIM_MS);
    snprintf(cap, sizeof(cap), "%lld", lt_config_int(ctx->cfg, "MAX_OUTSTANDING_JOBS"));
    argv[0] = kleader, argv[1] = kout, argv[2] = lease, argv[3] = jobkey;
    argv[4] = value, argv[5] = now, argv[6] = stale, argv[7] = cap;
    for (int i = 0; i < 8; i++)
        lens[i] = strlen(argv[i]);
    if (!(reply = lt_redis_eval(ctx->redis, &claim_script, 2, 8, argv, lens)))
        return -3;
    rc = reply->type == REDIS_REPLY_INTEGER ? (int)reply->integer : -3;
    freeReplyObject(reply);
    return rc;
}


/* Claims and produces one job. Returns the claim result (see claim()). */
static int emit(sched_ctx_t *ctx, const lt_integration_t *in, lt_job_t *job,
                const char *topic, lt_batch_t *batch) {
    char key[160], errstr[256], *json;
    size_t klen;
    int rc;

    lt_uuid_v4(job->job_id);
    snprintf(job->integration_id, sizeof(job->integration_id), "%s", in->id);
    snprintf(job->run_id, sizeof(job->run_id), "%s", ctx->run_id);
    if ((rc = claim(ctx, in, job)) != 1)
        return rc;
    klen = lt_job_kafka_key(job, key, sizeof(key));
    if (!(json = lt_job_encode(job)))
        return -3;
    if (lt_producer_send(ctx->producer, topic, key, klen, json, strlen(json), batch,
                         errstr, sizeof(errstr)) != LT_OK) {
        lt_warn("job %s: produce failed: %s", job->job_id, errstr);
        rc = -3;
    }
    free(json);
    return rc;
}

static int hash_get_int(sched_ctx_t *ctx, const char *key, const char *field, long long *out) {
    redisReply *reply = lt_redis_cmd(ctx->redis, "HGET %s %s", key, field);
    if (!reply)
        return -1;
    *out = reply->type == REDIS_REPLY_STRING ? strtoll(reply->str, NULL, 10) : 0;
    freeReplyObject(reply);
    return 0;
}

static int hash_set(sched_ctx_t *ctx, const char *key, const char *field, const char *value) {
    redisReply *reply = lt_redis_cmd(ctx->redis, "HSET %s %s %s", key, field, value);
    if (!reply)
        return -1;
    freeReplyObject(reply);
    return 0;
}

/* 1 when the day of the stream is recorded done, 0 when not, -1 on error. */
static int day_done(sched_ctx_t *ctx, const lt_integration_t *in, lt_stream_t s, const char *day) {
    redisReply *reply = lt_redis_cmd(ctx->redis, "HEXISTS %si:%s:done:%s %s", ctx->prefix,
                                     in->id, lt_stream_name(s), day);
    int rc;
    if (!reply)
        return -1;
    rc = reply->type == REDIS_REPLY_INTEGER ? (int)reply->integer : -1;
    freeReplyObject(reply);
    return rc;
}

/* Backfill of one stream: days after emitted_through up to yesterday. The
 * first day is import_from (or IMPORT_ALL_FROM for "all"); if import_from
 * moves earlier, emission restarts there and done days are skipped. */
static int plan_backfill(sched_ctx_t *ctx, const lt_integration_t *in, lt_stream_t s,
                         const char *yesterday, lt_batch_t *batch, char through[11]) {
    char key[256], from[11], day[11], last[11];
    const char *first = lt_integration_first_day(in, lt_config_str(ctx->cfg, "IMPORT_ALL_FROM"));
    redisReply *reply;
    int n = 0, rc;

    snprintf(key, sizeof(key), "%si:%s:backfill:%s", ctx->prefix, in->id, lt_stream_name(s));
    if (!(reply = lt_redis_cmd(ctx->redis, "HMGET %s from through", key)))
        return -1;
    snprintf(from, sizeof(from), "%s", first);
    last[0] = '\0';
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_STRING &&
        reply->element[1]->type == REDIS_REPLY_STRING &&
        !strcmp(reply->element[0]->str, first) && reply->element[1]->len == 10)
        memcpy(last, reply->element[1]->str, 11);
    freeReplyObject(reply);
    if (last[0]) {
        if (lt_date_add_days(last, 10, 1, day) < 0)
            return -1;
    } else {
        memcpy(day, from, 11);
        if (hash_set(ctx, key, "from", first) < 0 ||
            !(reply = lt_redis_cmd(ctx->redis, "HSETNX %s started_ms %lld", key, ctx->now_ms)))
            return -1;
        freeReplyObject(reply);
    }
    through[0] = '\0';
    for (; strcmp(day, yesterday) <= 0; lt_date_add_days(day, 10, 1, day)) {
        lt_job_t job = {.stream = s, .page_from = 0, .page_to = 0};
        if ((rc = day_done(ctx, in, s, day)) < 0)
            return -1;
        if (!rc) {
            memcpy(job.day, day, 11);
            strcpy(job.date_range_type, "dateCreated");
            strcpy(job.reason, "backfill");
            rc = emit(ctx, in, &job, lt_config_str(ctx->cfg, "TOPIC_JOBS_BACKFILL"), batch);
            if (rc == -2)
                break; /* outstanding cap: continue next tick */
            if (rc < 0)
                return -1;
            n += rc;
        }
        memcpy(through, day, 11);
    }
    return n;
}

/* Jobs of one range type for the last ndays days (today included). */
static int plan_window(sched_ctx_t *ctx, const lt_integration_t *in, unsigned streams,
                       const char *range_type, const char *reason, const char *topic,
                       const char *today, int ndays, lt_batch_t *batch) {
    int n = 0, rc;
    for (int back = ndays - 1; back >= 0; back--) {
        char day[11];
        if (lt_date_add_days(today, 10, -back, day) < 0)
            return -1;
        for (int s = 0; s < LT_STREAM_COUNT; s++) {
            lt_job_t job = {.stream = (lt_stream_t)s};
            if (!(streams & (1u << s)))
                continue;
            memcpy(job.day, day, 11);
            snprintf(job.date_range_type, sizeof(job.date_range_type), "%s", range_type);
            snprintf(job.reason, sizeof(job.reason), "%s", reason);
            rc = emit(ctx, in, &job, topic, batch);
            if (rc == -2)
                return n;
            if (rc < 0)
                return -1;
            n += rc;
        }
    }
    return n;
}

static int is_parked(sched_ctx_t *ctx, const lt_integration_t *in) {
    redisReply *reply = lt_redis_cmd(ctx->redis, "HGET %si:%s:state state", ctx->prefix, in->id);
    int parked;
    if (!reply)
        return -1;
    parked = reply->type == REDIS_REPLY_STRING && !strcmp(reply->str, "parked");
    freeReplyObject(reply);
    return parked;
}

int sched_plan_integration(sched_ctx_t *ctx, const lt_integration_t *in) {
    char today[11], yesterday[11], klive[256], key[256];
    char through[LT_STREAM_COUNT][11];
    long long last_live = 0, last_lookback = 0;
    long long lookback_every = lt_config_int(ctx->cfg, "CHARGEBACK_LOOKBACK_INTERVAL");
    int n = 0, rc, live_due, lookback_due;
    lt_batch_t batch = {0};

    if ((rc = is_parked(ctx, in)) != 0)
        return rc < 0 ? -1 : 0;
    if (lt_integration_local_day(in, ctx->now_ms / 1000, 0, today) < 0 ||
        lt_date_add_days(today, 10, -1, yesterday) < 0) {
        lt_error("integration %s: cannot compute the local day in %s", in->id, in->timezone);
        return 0;
    }
    snprintf(klive, sizeof(klive), "%si:%s:live", ctx->prefix, in->id);
    if (hash_get_int(ctx, klive, "last_run_ms", &last_live) < 0 ||
        hash_get_int(ctx, klive, "last_lookback_ms", &last_lookback) < 0)
        return -1;
    if (!last_lookback) {
        /* The backfill covers the first interval; the sweep starts after it. */
        char ms[24];
        snprintf(ms, sizeof(ms), "%lld", ctx->now_ms);
        if (hash_set(ctx, klive, "last_lookback_ms", ms) < 0)
            return -1;
        last_lookback = ctx->now_ms;
    }
    live_due = ctx->now_ms - last_live >= in->sync_interval_ms;
    lookback_due = (in->streams & (1u << LT_STREAM_TRANSACTIONS)) &&
                   ctx->now_ms - last_lookback >= lookback_every;

    if (live_due) {
        rc = plan_window(ctx, in, in->streams, "dateUpdated", "live",
                         lt_config_str(ctx->cfg, "TOPIC_JOBS_LIVE"), today,
                         (int)lt_config_int(ctx->cfg, "LIVE_LOOKBACK_DAYS"), &batch);
        if (rc < 0)
            return -1;
        n += rc;
    }
    if (lookback_due) {
        rc = plan_window(ctx, in, 1u << LT_STREAM_TRANSACTIONS, "chargeback", "lookback",
                         lt_config_str(ctx->cfg, "TOPIC_JOBS_BACKFILL"), today,
                         (int)lt_config_int(ctx->cfg, "CHARGEBACK_LOOKBACK_DAYS"), &batch);
        if (rc < 0)
            return -1;
        n += rc;
    }
    for (int s = 0; s < LT_STREAM_COUNT; s++) {
        through[s][0] = '\0';
        if (!(in->streams & (1u << s)))
            continue;
        if ((rc = plan_backfill(ctx, in, (lt_stream_t)s, yesterday, &batch, through[s])) < 0)
            return -1;
        n += rc;
    }
    /* Progress is recorded only once Kafka acknowledged every job. */
    if (lt_producer_wait(ctx->producer, &batch, 30000) != LT_OK) {
        lt_warn("integration %s: jobs not acknowledged; retrying next tick", in->id);
        return -1;
    }
    for (int s = 0; s < LT_STREAM_COUNT; s++) {
        if (!through[s][0])
            continue;
        snprintf(key, sizeof(key), "%si:%s:backfill:%s", ctx->prefix, in->id,
                 lt_stream_name((lt_stream_t)s));
        if (hash_set(ctx, key, "through", through[s]) < 0)
            return -1;
    }
    if (live_due) {
        char ms[24];
        snprintf(ms, sizeof(ms), "%lld", ctx->now_ms);
        if (hash_set(ctx, klive, "last_run_ms", ms) < 0)
            return -1;
    }
    if (lookback_due) {
        char ms[24];
        snprintf(ms, sizeof(ms), "%lld", ctx->now_ms);
        if (hash_set(ctx, klive, "last_lookback_ms", ms) < 0)
            return -1;
    }
    if (n)
        lt_info("integration %s: emitted %d jobs (live %s, lookback %s)", in->id, n,
                live_due ? "yes" : "no", lookback_due ? "yes" : "no");
    return n;
}
