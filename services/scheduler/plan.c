/* The job plan of one integration.
 *
 * Backfill: one dateCreated job per account-local day and stream, from
 * import_from to yesterday, oldest first, bounded by MAX_OUTSTANDING_JOBS;
 * P i:ID:backfill:STREAM remembers how far emission got, and days already
 * in P i:ID:done:STREAM are skipped, so restarts never re-emit finished
 * work; every sync_interval a rescan re-emits days neither done nor
 * outstanding (a fetcher dropped them). Live: every sync_interval, dateUpdated jobs for the last
 * LIVE_LOOKBACK_DAYS days, which catches refunds and chargeback marks on old
 * sales. Lookback: every CHARGEBACK_LOOKBACK_INTERVAL, isChargedback=1 jobs
 * over CHARGEBACK_LOOKBACK_DAYS, for marks dateUpdated might miss.
 *
 * Every job is claimed in P i:ID:outstanding by a Lua script, so no job is
 * outstanding twice. Every key named here is the integration's own
 * (lt_rkey_integ: one hash tag in a Redis Cluster), so each script touches
 * one slot. A claim is "<job_id> <ms> pending <token>" until Kafka
 * acknowledged its job, then "<job_id> <ms>". Claims whose jobs Kafka did
 * not acknowledge are released at once. A pending claim made in an earlier
 * leader term (a lower token: its scheduler died or lost its lease before
 * the acknowledgement) is re-made at once by the current leader. When
 * Redis fails to answer a claim, a release or mark_queued, the claim is
 * left in doubt and settled, by its exact value, once Redis answers again
 * (doubt.c). Another pending claim older than PENDING_CLAIM_MS (the
 * current term's, when that list was full) and any claim older than
 * STALE_CLAIM_MS (its job was lost after Kafka took it) are presumed lost
 * and re-made. A former leader still alive
 * may yet get its job into Kafka: the day is then fetched twice, which the
 * sink's dedupe absorbs (the same holds for any claim re-made). Running
 * the claim script twice with the same value (a reply lost with its
 * connection, the command sent again) claims once: it answers 1 again.
 *
 * The claim script is also the fencing check, the classic storage-side one
 * (fencing tokens): each leader term has a token from INCR P fence
 * (leader.c), every claim carries it, and the integration's P i:ID:fence
 * keeps the highest token a claim brought; a claim with a lower one is
 * refused (-1, not leader). The check is made by the storage the claim
 * writes, in the same atomic step as the write, so a leader paused past its
 * lease (GC, SIGSTOP, a slow network) is refused however late its claim
 * arrives: no check the leader makes of its own lease beforehand can
 * promise that, since it may pause between the check and the write. It
 * replaces a read of P leader in the script: in a cluster that key is in
 * the control-plane slot ({g}) and a script may touch one slot only.
 *
 * It is enough: once the new leader claimed anything in an integration,
 * that integration's fence holds the new token and every later claim of the
 * former leader there is refused. Before that, the former leader's claim
 * can only take a jobkey no claim holds (or re-make one presumed lost, by
 * the same rules as anyone's): the outstanding hash, checked in the same
 * script, still lets exactly one claim hold a jobkey, so no job is
 * outstanding twice either way; and the former leader finds its lease gone
 * at its next renewal (before each integration it plans) and stops. A
 * leader refused while its lease is still its own has a token behind the
 * fence because P fence was lost or went back: it takes a higher one
 * (sched_lease_raise) and claims again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_date.h"
#include "lt_job.h"
#include "lt_log.h"
#include "lt_rkeys.h"
#include "lt_uuid.h"
#include "scheduler.h"

#define STALE_CLAIM_MS   (30LL * 60 * 1000)
#define SETTLE_WAIT_MS   30000
#define PENDING_CLAIM_MS (SETTLE_WAIT_MS + 15000) /* settle gave up long ago */

/* The claims of one plan call, released when their jobs were not
 * acknowledged, so a lost job is re-emitted next tick instead of blocking
 * its day until a claim goes stale. acks is the plan's own counter: a
 * report after settle gave up lands there, never in a later plan's. */
typedef struct {
    lt_acks_t *acks;
    struct plan_claim {
        char key[128], value[96];
    } * claims;
    size_t n, cap;
} plan_t;

/* KEYS fence, outstanding, done (of the stream), all the integration's;
 * ARGV token (the lease's fencing token), jobkey, value, now, stale, cap
 * (0 = none), day ("" = no done check), pending stale. The fence is stored
 * before the claim's own checks: the integration has seen the token even
 * when nothing is claimed. */
static lt_redis_script_t claim_script = {
    .source =
        "local fence = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
        "local token = tonumber(ARGV[1])\n"
        "if fence > token then return -1 end\n"
        "if token > fence then redis.call('SET', KEYS[1], ARGV[1]) end\n"
        "if ARGV[7] ~= '' and redis.call('HEXISTS', KEYS[3], ARGV[7]) == 1 then return 0 end\n"
        "local cur = redis.call('HGET', KEYS[2], ARGV[2])\n"
        "if cur == ARGV[3] then return 1 end\n"
        "if cur then\n"
        "  local ms = tonumber(string.match(cur, '^%S+ (%d+)'))\n"
        "  local ptok = string.match(cur, ' pending ?(%d*)$')\n"
        "  local pending = ptok ~= nil\n"
        "  local stale = pending and ARGV[8] or ARGV[5]\n"
        "  local former = pending and ptok ~= '' and tonumber(ptok) < token\n"
        "  if ms and not former and tonumber(ARGV[4]) - ms < tonumber(stale) then\n"
        "    return pending and 2 or 0\n"
        "  end\n"
        "elseif tonumber(ARGV[6]) > 0 and redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[6]) then\n"
        "  return -2\n"
        "end\n"
        "redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])\n"
        "return 1\n",
};

/* KEYS outstanding; ARGV (jobkey, pending value, queued value) triples:
 * each claim still pending as ours becomes queued. */
static lt_redis_script_t queued_script = {
    .source = "for i = 1, #ARGV, 3 do\n"
              "  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then\n"
              "    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])\n"
              "  end\n"
              "end\n"
              "return 1\n",
};

/* KEYS outstanding; ARGV jobkey, value: deletes the claim if still ours. */
static lt_redis_script_t release_script = {
    .source = "if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then\n"
              "  return redis.call('HDEL', KEYS[1], ARGV[1])\n"
              "end\n"
              "return 0\n",
};

/* P i:ID:WHAT (lt_rkeys); what may be "done:STREAM" and the like. */
static void key_of(const sched_ctx_t *ctx, const lt_integration_t *in, const char *what, char *buf,
                   size_t len)
{
    lt_rkey_integ(buf, len, ctx->prefix, in->id, what);
}

/* P i:ID:WHAT:STREAM */
static void stream_key(const sched_ctx_t *ctx, const lt_integration_t *in, const char *what,
                       lt_stream_t s, char *buf, size_t len)
{
    char w[64];
    snprintf(w, sizeof(w), "%s:%s", what, lt_stream_name(s));
    key_of(ctx, in, w, buf, len);
}

/* One run of the claim script; claim()'s return values. */
static int claim_once(sched_ctx_t *ctx, const lt_integration_t *in, const lt_job_t *job, int capped,
                      const char *jobkey, const char *value)
{
    char kfence[256], kout[256], kdone[256], token[24], now[24], stale[24], cap[24];
    char pstale[24];
    int backfill = !strcmp(job->reason, "backfill");
    const char *argv[11];
    size_t lens[11];
    redisReply *reply;
    int rc;

    key_of(ctx, in, "fence", kfence, sizeof(kfence));
    key_of(ctx, in, "outstanding", kout, sizeof(kout));
    stream_key(ctx, in, "done", job->stream, kdone, sizeof(kdone));
    snprintf(token, sizeof(token), "%lld", ctx->lease->token);
    snprintf(now, sizeof(now), "%lld", ctx->now_ms);
    snprintf(stale, sizeof(stale), "%lld", STALE_CLAIM_MS);
    snprintf(pstale, sizeof(pstale), "%d", PENDING_CLAIM_MS);
    snprintf(cap, sizeof(cap), "%lld",
             capped ? lt_config_int(ctx->cfg, "MAX_OUTSTANDING_JOBS") : 0);
    argv[0] = kfence, argv[1] = kout, argv[2] = kdone, argv[3] = token, argv[4] = jobkey;
    argv[5] = value, argv[6] = now, argv[7] = stale, argv[8] = cap;
    argv[9] = backfill ? job->day : "";
    argv[10] = pstale;
    for (int i = 0; i < 11; i++)
        lens[i] = strlen(argv[i]);
    if (!(reply = lt_redis_eval(ctx->redis, &claim_script, 3, 11, argv, lens)))
        return -3;
    rc = reply->type == REDIS_REPLY_INTEGER ? (int)reply->integer : -3;
    if (reply->type == REDIS_REPLY_ERROR)
        lt_error("claim script: %.*s", (int)reply->len, reply->str);
    freeReplyObject(reply);
    return rc;
}

/* The token P i:ID:fence holds (0 when none); -1 when Redis did not answer. */
static long long fence_of(sched_ctx_t *ctx, const lt_integration_t *in)
{
    char kfence[256];
    long long seen = -1;
    redisReply *reply;
    key_of(ctx, in, "fence", kfence, sizeof(kfence));
    if (!(reply = lt_redis_cmd(ctx->redis, "GET %s", kfence)))
        return -1;
    if (reply->type == REDIS_REPLY_STRING)
        seen = strtoll(reply->str, NULL, 10);
    else if (reply->type == REDIS_REPLY_NIL)
        seen = 0;
    freeReplyObject(reply);
    return seen;
}

/* Claims jobkey for job; 1 claimed, 0 already outstanding or (backfill) done,
 * 2 claimed by a plan not yet acknowledged (its scheduler may have died: the
 * claim is re-made after PENDING_CLAIM_MS), -1 not leader (the integration's
 * fence holds a later token), -2 outstanding cap reached, -3 Redis
 * unreachable. A refusal while the lease is still ours means P fence went
 * back (see the file comment): the term is raised above the fence and the
 * claim made once more. */
static int claim(sched_ctx_t *ctx, const lt_integration_t *in, const lt_job_t *job, int capped,
                 const char *jobkey, const char *value)
{
    long long seen, raised;
    int rc = claim_once(ctx, in, job, capped, jobkey, value);
    if (rc != -1)
        return rc;
    if ((seen = fence_of(ctx, in)) < 0)
        return -3;
    if (seen <= ctx->lease->token)
        return -1; /* the fence moved meanwhile: the next tick tries again */
    if ((raised = sched_lease_raise(ctx->redis, ctx->prefix, ctx->lease, seen)) <= 0)
        return raised < 0 ? -3 : -1;
    return claim_once(ctx, in, job, capped, jobkey, value);
}

/* A claim whose state Redis left unknown, for sched_settle_doubts. */
static void doubt(sched_ctx_t *ctx, const lt_integration_t *in, sched_doubt_kind_t kind,
                  const char *jobkey, const char *value)
{
    char kout[256];
    int rc;
    if (!ctx->doubt)
        return;
    key_of(ctx, in, "outstanding", kout, sizeof(kout));
    if ((rc = sched_doubt_add(ctx->doubt, kind, kout, jobkey, value)) == -2 &&
        sched_doubt_refused(ctx->doubt) == 1) /* once each time the list fills */
        lt_warn("integration %s: the list of claims in doubt is full (%zu): %s and those after "
                "it wait %d ms",
                in->id, sched_doubt_count(ctx->doubt), jobkey, PENDING_CLAIM_MS);
    else if (rc == -1)
        lt_warn("integration %s: %s cannot be kept in doubt (a name too long): it waits %d ms",
                in->id, jobkey, PENDING_CLAIM_MS);
}

/* The queued form of a pending claim value: "<job_id> <ms>". */
static void queued_value(const char *pending, char *buf, size_t len)
{
    const char *p = strstr(pending, " pending");
    snprintf(buf, len, "%.*s", (int)(p ? (size_t)(p - pending) : strlen(pending)), pending);
}

static int apply_doubt(void *arg, sched_doubt_kind_t kind, const char *key, const char *jobkey,
                       const char *value)
{
    sched_ctx_t *ctx = arg;
    char queued[96];
    const char *argv[4] = {key, jobkey, value, queued};
    redisReply *reply;
    if (kind == SCHED_DOUBT_QUEUED) {
        queued_value(value, queued, sizeof(queued));
        reply = lt_redis_eval(ctx->redis, &queued_script, 1, 4, argv, NULL);
    } else {
        reply = lt_redis_eval(ctx->redis, &release_script, 1, 3, argv, NULL);
    }
    if (!reply)
        return -1;
    if (reply->type == REDIS_REPLY_ERROR) /* answered, but not settled: the claim script's rule */
        lt_error("settling the claim %s: %.*s", jobkey, (int)reply->len, reply->str);
    freeReplyObject(reply);
    return 0;
}

/* Releases a claim if still ours: 0 when Redis answered, -1 when not. */
static int release(sched_ctx_t *ctx, const lt_integration_t *in, const char *jobkey,
                   const char *value)
{
    char kout[256];
    key_of(ctx, in, "outstanding", kout, sizeof(kout));
    return apply_doubt(ctx, SCHED_DOUBT_RELEASE, kout, jobkey, value);
}

int sched_settle_doubts(sched_ctx_t *ctx)
{
    size_t before = sched_doubt_count(ctx->doubt);
    int settled = before ? sched_doubt_sweep(ctx->doubt, apply_doubt, ctx) : 0;
    if (settled)
        lt_info("settled %d claims a Redis failure had left in doubt (%zu left)", settled,
                sched_doubt_count(ctx->doubt));
    return settled;
}

/* Remembers a claim; without memory it just cannot be released early. */
static void remember(plan_t *plan, const char *jobkey, const char *value)
{
    if (plan->n == plan->cap) {
        size_t cap = plan->cap ? plan->cap * 2 : 64;
        struct plan_claim *c = realloc(plan->claims, cap * sizeof(*c));
        if (!c)
            return;
        plan->claims = c, plan->cap = cap;
    }
    snprintf(plan->claims[plan->n].key, sizeof(plan->claims[0].key), "%s", jobkey);
    snprintf(plan->claims[plan->n].value, sizeof(plan->claims[0].value), "%s", value);
    plan->n++;
}

/* Claims and produces one job. Returns the claim result (see claim()). */
static int emit(sched_ctx_t *ctx, const lt_integration_t *in, lt_job_t *job, const char *topic,
                plan_t *plan, int capped)
{
    char key[160], jobkey[128], value[96], errstr[256], *json;
    size_t klen;
    int rc;

    lt_uuid_v4(job->job_id);
    snprintf(job->integration_id, sizeof(job->integration_id), "%s", in->id);
    snprintf(job->run_id, sizeof(job->run_id), "%s", ctx->run_id);
    lt_job_key(job, jobkey, sizeof(jobkey));
    snprintf(value, sizeof(value), "%s %lld pending %lld", job->job_id, ctx->now_ms,
             ctx->lease->token);
    if (!plan->acks && !(plan->acks = lt_acks_new()))
        return -3;
    if ((rc = claim(ctx, in, job, capped, jobkey, value)) == -3)
        doubt(ctx, in, SCHED_DOUBT_RELEASE, jobkey, value); /* it may yet run */
    if (rc != 1)
        return rc;
    klen = lt_job_kafka_key(job, key, sizeof(key));
    json = lt_job_encode(job);
    if (!json || lt_producer_send(ctx->producer, topic, key, klen, json, strlen(json), plan->acks,
                                  errstr, sizeof(errstr)) != LT_OK) {
        lt_warn("job %s: produce failed: %s", job->job_id, json ? errstr : "out of memory");
        if (release(ctx, in, jobkey, value) < 0)
            doubt(ctx, in, SCHED_DOUBT_RELEASE, jobkey, value);
        free(json);
        return -3;
    }
    free(json);
    remember(plan, jobkey, value);
    return rc;
}

static int hash_get_int(sched_ctx_t *ctx, const char *key, const char *field, long long *out)
{
    redisReply *reply = lt_redis_cmd(ctx->redis, "HGET %s %s", key, field);
    if (!reply)
        return -1;
    *out = reply->type == REDIS_REPLY_STRING ? strtoll(reply->str, NULL, 10) : 0;
    freeReplyObject(reply);
    return 0;
}

static int hash_set(sched_ctx_t *ctx, const char *key, const char *field, const char *value)
{
    redisReply *reply = lt_redis_cmd(ctx->redis, "HSET %s %s %s", key, field, value);
    if (!reply)
        return -1;
    freeReplyObject(reply);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The done days of a stream, sorted (pointers into *reply, which the caller
 * frees). NULL with *reply NULL when Redis is unreachable. */
static const char **done_days(sched_ctx_t *ctx, const lt_integration_t *in, lt_stream_t s,
                              redisReply **reply, size_t *n)
{
    const char **days;
    char kdone[256];
    *n = 0;
    stream_key(ctx, in, "done", s, kdone, sizeof(kdone));
    if (!(*reply = lt_redis_cmd(ctx->redis, "HKEYS %s", kdone)))
        return NULL;
    if ((*reply)->type != REDIS_REPLY_ARRAY ||
        !(days = calloc((*reply)->elements + 1, sizeof(*days))))
        return NULL;
    for (size_t i = 0; i < (*reply)->elements; i++)
        if ((*reply)->element[i]->type == REDIS_REPLY_STRING)
            days[(*n)++] = (*reply)->element[i]->str;
    qsort(days, *n, sizeof(*days), cmp_str);
    return days;
}

static int is_done(const char **days, size_t n, const char *day)
{
    return days && bsearch(&day, days, n, sizeof(*days), cmp_str) != NULL;
}

/* Backfill of one stream, oldest first, up to yesterday. A regular tick
 * walks the days after emitted_through (the first day is import_from, or
 * IMPORT_ALL_FROM for "all"; if it moves, emission restarts there). A
 * rescan (every sync_interval) walks from the first day again, re-emitting
 * days neither done nor outstanding: those a fetcher dropped (parked, a
 * permanent error) or whose job was lost. The claim skips done days
 * atomically; through never moves back. stored[] gets the value read, so
 * the caller writes through only when it moved. */
static int plan_backfill(sched_ctx_t *ctx, const lt_integration_t *in, lt_stream_t s,
                         const char *yesterday, plan_t *plan, int rescan, char through[11],
                         char stored[11])
{
    char key[256], day[11];
    const char *first = lt_integration_first_day(in, lt_config_str(ctx->cfg, "IMPORT_ALL_FROM"));
    const char **done = NULL;
    redisReply *reply, *done_reply = NULL;
    size_t ndone = 0;
    int n = 0, rc = 0, hold = 0;

    stream_key(ctx, in, "backfill", s, key, sizeof(key));
    if (!(reply = lt_redis_cmd(ctx->redis, "HMGET %s from through", key)))
        return -1;
    through[0] = '\0';
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_STRING &&
        reply->element[1]->type == REDIS_REPLY_STRING && !strcmp(reply->element[0]->str, first) &&
        reply->element[1]->len == 10)
        memcpy(through, reply->element[1]->str, 11);
    freeReplyObject(reply);
    memcpy(stored, through, 11);
    if (through[0] && !rescan) {
        if (lt_date_add_days(through, 10, 1, day) < 0)
            return -1;
    } else {
        memcpy(day, first, 11);
        if (!through[0] &&
            (hash_set(ctx, key, "from", first) < 0 ||
             !(reply = lt_redis_cmd(ctx->redis, "HSETNX %s started_ms %lld", key, ctx->now_ms))))
            return -1;
        if (!through[0])
            freeReplyObject(reply);
        if (rescan && through[0] && !(done = done_days(ctx, in, s, &done_reply, &ndone)) &&
            !done_reply)
            return -1;
    }
    for (; strcmp(day, yesterday) <= 0; lt_date_add_days(day, 10, 1, day)) {
        lt_job_t job = {.stream = s, .date_range_type = "dateCreated", .reason = "backfill"};
        if (!is_done(done, ndone, day)) {
            memcpy(job.day, day, 11);
            rc = emit(ctx, in, &job, lt_config_str(ctx->cfg, "TOPIC_JOBS_BACKFILL"), plan, 1);
            if (rc < 0)
                break; /* -2: the outstanding cap; continue next tick */
            n += rc == 1;
            /* A claim another plan never confirmed: through stays before
             * it, so the next ticks come back and re-make it once stale,
             * instead of leaving the day to the next rescan. */
            hold |= rc == 2;
        }
        if (!hold && strcmp(day, through) > 0)
            memcpy(through, day, 11);
    }
    free(done);
    if (done_reply)
        freeReplyObject(done_reply);
    return rc < 0 && rc != -2 ? -1 : n;
}

/* Jobs of one range type for the last ndays days (today included). Live
 * jobs ignore the outstanding cap (at most LIVE_LOOKBACK_DAYS x streams of
 * them exist, and a large import must never delay freshness); a capped
 * window stops at the cap and sets *full. *full is also set when a day is
 * held by a claim another plan never confirmed: the window is not done, and
 * is planned again next tick (the claim is re-made once stale). */
static int plan_window(sched_ctx_t *ctx, const lt_integration_t *in, unsigned streams,
                       const char *range_type, const char *reason, const char *topic,
                       const char *today, int ndays, plan_t *plan, int *full)
{
    int n = 0, rc, capped = strcmp(reason, "live") != 0;
    *full = 0;
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
            rc = emit(ctx, in, &job, topic, plan, capped);
            if (rc == -2) {
                *full = 1;
                return n;
            }
            if (rc < 0)
                return -1;
            n += rc == 1;
            *full |= rc == 2; /* unconfirmed claim: plan the window again */
        }
    }
    return n;
}

static int is_parked(sched_ctx_t *ctx, const lt_integration_t *in)
{
    char kstate[256];
    redisReply *reply;
    int parked;
    key_of(ctx, in, "state", kstate, sizeof(kstate));
    if (!(reply = lt_redis_cmd(ctx->redis, "HGET %s state", kstate)))
        return -1;
    parked = reply->type == REDIS_REPLY_STRING && !strcmp(reply->str, "parked");
    freeReplyObject(reply);
    return parked;
}

static int set_ms(sched_ctx_t *ctx, const char *key, const char *field)
{
    char ms[24];
    snprintf(ms, sizeof(ms), "%lld", ctx->now_ms);
    return hash_set(ctx, key, field, ms);
}

/* Turns the plan's pending claims into queued ones (one script call).
 * Failing leaves them in doubt (sched_settle_doubts). */
static void mark_queued(sched_ctx_t *ctx, const lt_integration_t *in, plan_t *plan)
{
    char kout[256];
    size_t argc = 1 + 3 * plan->n;
    const char **argv = calloc(argc, sizeof(*argv));
    char(*queued)[96] = calloc(plan->n, sizeof(*queued));
    redisReply *reply;
    key_of(ctx, in, "outstanding", kout, sizeof(kout));
    if (argv && queued) {
        argv[0] = kout;
        for (size_t i = 0; i < plan->n; i++) {
            queued_value(plan->claims[i].value, queued[i], sizeof(queued[i]));
            argv[1 + 3 * i] = plan->claims[i].key;
            argv[2 + 3 * i] = plan->claims[i].value;
            argv[3 + 3 * i] = queued[i];
        }
        reply = lt_redis_eval(ctx->redis, &queued_script, 1, (int)argc, argv, NULL);
    } else {
        reply = NULL;
    }
    if (!reply || reply->type == REDIS_REPLY_ERROR)
        for (size_t i = 0; i < plan->n; i++)
            doubt(ctx, in, SCHED_DOUBT_QUEUED, plan->claims[i].key, plan->claims[i].value);
    if (reply)
        freeReplyObject(reply);
    free(argv);
    free(queued);
}

/* Waits for every job of the plan; on any failure releases its claims so
 * the next tick emits them again. 0 when all were acknowledged. */
static int settle(sched_ctx_t *ctx, const lt_integration_t *in, plan_t *plan)
{
    int rc = 0;
    if (plan->n && lt_producer_wait(ctx->producer, plan->acks, SETTLE_WAIT_MS) != LT_OK) {
        lt_warn("integration %s: jobs not acknowledged; retrying next tick", in->id);
        /* Redis gone: the claims left are settled once it answers again,
         * rather than each waiting for a timeout now. */
        for (size_t i = 0; i < plan->n; i++)
            if (lt_redis_down(ctx->redis) ||
                release(ctx, in, plan->claims[i].key, plan->claims[i].value) < 0)
                doubt(ctx, in, SCHED_DOUBT_RELEASE, plan->claims[i].key, plan->claims[i].value);
        rc = -1;
    } else if (plan->n) {
        mark_queued(ctx, in, plan);
    }
    lt_acks_release(plan->acks);
    plan->acks = NULL;
    free(plan->claims);
    plan->claims = NULL, plan->n = plan->cap = 0;
    return rc;
}

/* Emits the live window, the lookback and the backfill; records progress
 * in through[] (beside the stored[] values read), *live_full and
 * *lookback_full. */
static int plan_all(sched_ctx_t *ctx, const lt_integration_t *in, int live_due, int lookback_due,
                    plan_t *plan, char through[][11], char stored[][11], int *live_full,
                    int *lookback_full)
{
    char today[11], yesterday[11];
    int n = 0, rc;

    if (lt_integration_local_day(in, ctx->now_ms / 1000, 0, today) < 0 ||
        lt_date_add_days(today, 10, -1, yesterday) < 0) {
        lt_error("integration %s: cannot compute the local day in %s", in->id, in->timezone);
        return -1;
    }
    if (live_due) {
        if ((rc = plan_window(ctx, in, in->streams, "dateUpdated", "live",
                              lt_config_str(ctx->cfg, "TOPIC_JOBS_LIVE"), today,
                              (int)lt_config_int(ctx->cfg, "LIVE_LOOKBACK_DAYS"), plan,
                              live_full)) < 0)
            return -1;
        n += rc;
    }
    if (lookback_due) {
        if ((rc = plan_window(ctx, in, 1u << LT_STREAM_TRANSACTIONS, "chargeback", "lookback",
                              lt_config_str(ctx->cfg, "TOPIC_JOBS_BACKFILL"), today,
                              (int)lt_config_int(ctx->cfg, "CHARGEBACK_LOOKBACK_DAYS"), plan,
                              lookback_full)) < 0)
            return -1;
        n += rc;
    }
    for (int s = 0; s < LT_STREAM_COUNT; s++) {
        through[s][0] = stored[s][0] = '\0';
        if (!(in->streams & (1u << s)))
            continue;
        /* the rescan runs at the live cadence */
        if ((rc = plan_backfill(ctx, in, (lt_stream_t)s, yesterday, plan, live_due, through[s],
                                stored[s])) < 0)
            return -1;
        n += rc;
    }
    return n;
}

/* When the plan just made leaves nothing to do before the next live run or
 * lookback: every stream's backfill emitted through yesterday, no window
 * held. 0 otherwise. */
static long long quiet_until(const sched_ctx_t *ctx, const lt_integration_t *in, char through[][11],
                             int live_due, long long last_live, int lookback_due,
                             long long last_lookback, long long lookback_every, int live_full,
                             int lookback_full)
{
    char yesterday[11];
    if (live_full || lookback_full ||
        lt_integration_local_day(in, ctx->now_ms / 1000, -1, yesterday) < 0)
        return 0;
    for (int s = 0; s < LT_STREAM_COUNT; s++)
        if ((in->streams & (1u << s)) && strcmp(through[s], yesterday) != 0)
            return 0;
    long long until = (live_due ? ctx->now_ms : last_live) + in->sync_interval_ms;
    if (in->streams & (1u << LT_STREAM_TRANSACTIONS)) {
        long long lookback = (lookback_due ? ctx->now_ms : last_lookback) + lookback_every;
        if (lookback < until)
            until = lookback;
    }
    return until > ctx->now_ms ? until : 0;
}

int sched_plan_integration(sched_ctx_t *ctx, const lt_integration_t *in, long long *quiet_until_ms)
{
    char klive[256], key[256], through[LT_STREAM_COUNT][11], stored[LT_STREAM_COUNT][11];
    long long last_live = 0, last_lookback = 0;
    long long lookback_every = lt_config_int(ctx->cfg, "CHARGEBACK_LOOKBACK_INTERVAL");
    int n, rc, live_due, lookback_due, live_full = 0, lookback_full = 0;
    plan_t plan = {0};

    *quiet_until_ms = 0;
    if ((rc = is_parked(ctx, in)) != 0)
        return rc < 0 ? -1 : 0;
    key_of(ctx, in, "live", klive, sizeof(klive));
    if (hash_get_int(ctx, klive, "last_run_ms", &last_live) < 0 ||
        hash_get_int(ctx, klive, "last_lookback_ms", &last_lookback) < 0)
        return -1;
    if (!last_lookback) {
        /* The backfill covers the first interval; the sweep starts after it. */
        if (set_ms(ctx, klive, "last_lookback_ms") < 0)
            return -1;
        last_lookback = ctx->now_ms;
    }
    live_due = ctx->now_ms - last_live >= in->sync_interval_ms;
    lookback_due = (in->streams & (1u << LT_STREAM_TRANSACTIONS)) &&
                   ctx->now_ms - last_lookback >= lookback_every;

    n = plan_all(ctx, in, live_due, lookback_due, &plan, through, stored, &live_full,
                 &lookback_full);
    /* Progress is recorded only once Kafka acknowledged every job. */
    if (settle(ctx, in, &plan) < 0 || n < 0)
        return -1;
    for (int s = 0; s < LT_STREAM_COUNT; s++) {
        if (!through[s][0] || !strcmp(through[s], stored[s]))
            continue; /* unchanged: no write (a tick of a caught-up integration writes nothing) */
        stream_key(ctx, in, "backfill", (lt_stream_t)s, key, sizeof(key));
        if (hash_set(ctx, key, "through", through[s]) < 0)
            return -1;
    }
    if ((live_due && !live_full && set_ms(ctx, klive, "last_run_ms") < 0) ||
        (lookback_due && !lookback_full && set_ms(ctx, klive, "last_lookback_ms") < 0))
        return -1;
    if (n)
        lt_info("integration %s: emitted %d jobs (live %s, lookback %s)", in->id, n,
                live_due ? "yes" : "no", lookback_due ? "yes" : "no");
    *quiet_until_ms = quiet_until(ctx, in, through, live_due, last_live, lookback_due,
                                  last_lookback, lookback_every, live_full, lookback_full);
    return n;
}
