/* job.c: one job from its message to its commit.
 *
 * Walks the window page by page; a page's rows go to ltvsync.raw and only
 * after Kafka acknowledged all of them is the page checkpointed in Redis
 * (P i:ID:ckpt:JOBKEY next_page rows pages total split), so a
 * redelivered job resumes there. A whole day with more than
 * FETCH_SPLIT_PAGES pages is split into page-range sub-jobs; the ranges
 * report into P i:ID:parts:DAYKEY and the last one to finish records
 * the day. A job that still fails after FETCH_MAX_ATTEMPTS is produced
 * again to its topic (requeued, its checkpoint kept) and committed, so a
 * bad CRM hour neither loses the day nor blocks the partition. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fetcher.h"
#include "lt_cred.h"
#include "lt_dlq.h"
#include "lt_log.h"
#include "lt_rkeys.h"
#include "lt_sanitize.h"
#include "lt_signal.h"
#include "lt_uuid.h"

/* How long a page's acknowledgements are awaited before the page is sent
 * again; librdkafka's message.timeout.ms (300 s) may report later, into the
 * abandoned page's own counter. */
#define EMIT_WAIT_MS 60000
/* Attempts to emit one page before the job is requeued (its checkpoint
 * stays before the page). */
#define EMIT_ATTEMPTS 5

typedef struct {
    worker_ctx_t *w;
    const char *topic;
    lt_job_t job;
    lt_integration_t in;
    char password[LT_CRM_PASSWORD_MAX + 1];
    char jobkey[160], daykey[160];
    char err[512];
    long long next_page, rows, pages, total, split;
} run_t;

/* Room for the longest key: a 64-byte prefix, "i:{ID}:" with a 64-byte
 * id, "ckpt:" and a jobkey (under 160 bytes). */
#define RKEY_LEN 320

/* P i:ID:WHAT[:SUB] (lt_rkeys): every key a job touches is its
 * integration's, so each script here names keys of one slot in a cluster. */
static void rkey(const run_t *r, const char *what, const char *sub, char *buf, size_t len)
{
    char w[200];
    snprintf(w, sizeof(w), "%s%s%s", what, sub ? ":" : "", sub ? sub : "");
    lt_rkey_integ(buf, len, r->w->f->prefix, r->job.integration_id, w);
}

/* Runs a command; -1 on shutdown. */
static int rdo(run_t *r, int argc, const char **argv)
{
    redisReply *reply = fetcher_redis(r->w, argc, argv);
    if (!reply)
        return -1;
    freeReplyObject(reply);
    return 0;
}

void fetcher_stats_error(worker_ctx_t *w, const lt_job_t *job, const char *err)
{
    char key[RKEY_LEN], what[64], ms[24];
    snprintf(what, sizeof(what), "stats:%s", lt_stream_name(job->stream));
    lt_rkey_integ(key, sizeof(key), w->f->prefix, job->integration_id, what);
    snprintf(ms, sizeof(ms), "%lld", lt_clock_now_ms());
    const char *a1[] = {"HINCRBY", key, "errors", "1"};
    const char *a2[] = {"HSET", key, "last_error", err, "last_error_ms", ms};
    redisReply *reply = fetcher_redis(w, 4, a1);
    if (reply)
        freeReplyObject(reply);
    reply = fetcher_redis(w, 6, a2);
    if (reply)
        freeReplyObject(reply);
}

static void load_ckpt(run_t *r)
{
    char key[RKEY_LEN];
    rkey(r, "ckpt", r->jobkey, key, sizeof(key));
    const char *argv[] = {"HMGET", key, "next_page", "rows", "pages", "total", "split"};
    long long *dst[] = {&r->next_page, &r->rows, &r->pages, &r->total, &r->split};
    long long defs[] = {0, 0, 0, -1, 0};
    redisReply *reply = fetcher_redis(r->w, 7, argv);
    for (size_t i = 0; i < 5; i++) {
        *dst[i] = defs[i];
        if (reply && reply->type == REDIS_REPLY_ARRAY && i < reply->elements &&
            reply->element[i]->type == REDIS_REPLY_STRING)
            *dst[i] = strtoll(reply->element[i]->str, NULL, 10);
    }
    if (reply)
        freeReplyObject(reply);
}

static int save_ckpt(run_t *r)
{
    char key[RKEY_LEN], np[24], rows[24], pages[24], total[24], split[24];
    rkey(r, "ckpt", r->jobkey, key, sizeof(key));
    snprintf(np, sizeof(np), "%lld", r->next_page);
    snprintf(rows, sizeof(rows), "%lld", r->rows);
    snprintf(pages, sizeof(pages), "%lld", r->pages);
    snprintf(total, sizeof(total), "%lld", r->total);
    snprintf(split, sizeof(split), "%lld", r->split);
    const char *argv[] = {"HSET",  key,   "next_page", np,    "rows",  rows,
                          "pages", pages, "total",     total, "split", split};
    const char *exp[] = {"PEXPIRE", key, "1209600000"}; /* 14 days */
    return rdo(r, 12, argv) == 0 && rdo(r, 3, exp) == 0 ? 0 : -1;
}

/* Runs a script until Redis answers it (every script here is safe to run
 * twice); -1 on shutdown. result, when given, gets an integer reply. */
static int rscript(run_t *r, lt_redis_script_t *script, const char *source, int nkeys, int argc,
                   const char **argv, long long *result)
{
    size_t lens[16];
    for (int i = 0; i < argc && i < 16; i++)
        lens[i] = strlen(argv[i]);
    script->source = source;
    for (;;) {
        redisReply *reply = lt_redis_eval(r->w->redis, script, nkeys, argc, argv, lens);
        int ok = reply && reply->type != REDIS_REPLY_ERROR;
        if (ok && result)
            *result = reply->type == REDIS_REPLY_INTEGER ? reply->integer : 0;
        if (reply)
            freeReplyObject(reply);
        if (ok)
            return 0;
        if (lt_clock_nap_ms(500) != 0)
            return -1;
    }
}

/* Parks the integration unless it already is, in one step: two jobs of one
 * integration failing their login at once log it once. Safe to run twice: a
 * run re-sent after a lost reply finds its own `since` and answers 1 again. */
static const char park_lua[] = "local s = redis.call('HMGET', KEYS[1], 'state', 'since')\n"
                               "if s[1] == 'parked' then\n"
                               "  if s[2] == ARGV[2] then return 1 end\n"
                               "  return 0\n"
                               "end\n"
                               "redis.call('HSET', KEYS[1], 'state', 'parked', 'reason', ARGV[1], "
                               "'since', ARGV[2])\n"
                               "return 1\n";

/* The integration is parked: state says why; logged once per parking. */
static void park(run_t *r, const char *reason)
{
    char key[RKEY_LEN], ms[24];
    rkey(r, "state", NULL, key, sizeof(key));
    snprintf(ms, sizeof(ms), "%lld", lt_clock_now_ms());
    const char *argv[] = {key, reason, ms};
    long long parked_here = 0;
    if (rscript(r, &r->w->park_script, park_lua, 1, 3, argv, &parked_here) != 0 || !parked_here)
        return;
    lt_metric_add(r->w->f->m.parked, 1);
    lt_error("integration %s parked: %s (fix it, check with `ltvctl integration test`, "
             "then un-park with `ltvctl integration update`)",
             r->job.integration_id, reason);
}

static int is_parked(run_t *r)
{
    char key[RKEY_LEN];
    rkey(r, "state", NULL, key, sizeof(key));
    const char *argv[] = {"HGET", key, "state"};
    redisReply *reply = fetcher_redis(r->w, 3, argv);
    int parked = reply && reply->type == REDIS_REPLY_STRING && strcmp(reply->str, "parked") == 0;
    if (reply)
        freeReplyObject(reply);
    return parked;
}

static void forget_outstanding(run_t *r, const char *jobkey)
{
    char key[RKEY_LEN];
    rkey(r, "outstanding", NULL, key, sizeof(key));
    const char *argv[] = {"HDEL", key, jobkey};
    rdo(r, 3, argv);
}

/* A row Kafka can never take (over message.max.bytes) goes to the DLQ with
 * its coordinates and the reason (the record keeps the first
 * LT_DLQ_VALUE_MAX bytes of the sanitized envelope); the rest of the page
 * still lands. Returns what sending the dead letter returned. */
static lt_err_t dead_letter(run_t *r, int page, lt_acks_t *acks, const char *key, size_t klen,
                            const char *env, size_t envlen, const char *why)
{
    fetcher_t *f = r->w->f;
    char reason[512], err[256];
    size_t len;
    snprintf(reason, sizeof(reason),
             "raw row not sent: %s (%zu bytes; job %s, %s %s day %s, page %d)", why, envlen,
             r->job.job_id, lt_stream_name(r->job.stream), r->job.date_range_type, r->job.day,
             page);
    char *rec = lt_dlq_record(reason, f->topic_raw, -1, -1, key, klen, env, envlen, &len);
    if (!rec)
        return LT_ERR_RETRIABLE;
    lt_err_t e =
        lt_producer_send_owned(f->prod, f->topic_dlq, key, klen, rec, len, acks, err, sizeof(err));
    if (e == LT_OK) {
        lt_warn("%s/%s: %s", r->job.integration_id, key, reason);
        lt_metric_add(f->m.rows_dead, 1);
    }
    return e == LT_ERR_PERMANENT ? LT_ERR_RETRIABLE : e;
}

/* A field name fit for a log line: letters, digits and _, at most
 * DROPPED_NAME_LEN bytes and 4 digits (a key could be an e-mail address, a
 * card or phone number, a date). */
static int plain_name(const char *key)
{
    size_t n = strspn(key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                           "0123456789_");
    int digits = 0;
    for (size_t i = 0; i < n; i++)
        digits += key[i] >= '0' && key[i] <= '9';
    return n > 0 && n <= DROPPED_NAME_LEN && key[n] == '\0' && digits <= 4;
}

/* Logs each distinct name of a dropped field once per process, for the
 * first DROPPED_NAMES_MAX names (the CRM names fields: unbounded); never a
 * value. */
static void note_dropped(void *ctx, const char *key)
{
    const run_t *r = ctx;
    fetcher_t *f = r->w->f;
    int fresh = 1;
    if (atomic_load(&f->ndropped) >= DROPPED_NAMES_MAX)
        return;
    if (!plain_name(key))
        key = "(a name not shown: not plain letters, digits, _)";
    pthread_mutex_lock(&f->drop_mu);
    int n = atomic_load(&f->ndropped);
    for (int i = 0; i < n && fresh; i++)
        fresh = strcmp(f->dropped[i], key) != 0;
    if (fresh && n < DROPPED_NAMES_MAX) {
        snprintf(f->dropped[n], sizeof(f->dropped[0]), "%s", key);
        atomic_store(&f->ndropped, n + 1);
    } else {
        fresh = 0;
    }
    pthread_mutex_unlock(&f->drop_mu);
    if (fresh)
        lt_info("%s row field %s not allow-listed: dropped before ltvsync.raw (logged "
                "once; counted in ltvsync_fetcher_fields_dropped_total)",
                lt_stream_name(r->job.stream), key);
}

/* The producer failed for good: every later send fails too, so stop the
 * process (exit code 1); Kubernetes restarts it with a new producer and the
 * unfinished jobs, never checkpointed, are redelivered. */
static void producer_dead(fetcher_t *f, const char *why)
{
    if (atomic_exchange(&f->fatal, 1) == 0)
        lt_error("kafka producer failed fatally (%s): stopping so the service restarts "
                 "with a new producer; unfinished jobs are redelivered",
                 why);
    lt_signal_stop = 1;
}

/* Produces every row of the page and waits for all acknowledgements. LT_OK:
 * every row is in raw (or, if it can never be, in the DLQ), *n rows in raw.
 * LT_ERR_RETRIABLE: a send or a delivery failed or timed out; the caller
 * sends the page again (rows already sent come again: same keys, same
 * content). LT_ERR_FATAL: the producer is dead (the process stops). Late
 * reports of an abandoned wait land in this call's own counter (lt_acks_t). */
static lt_err_t emit_rows(run_t *r, int page, lt_crm_page_t *pg, long long *n)
{
    fetcher_t *f = r->w->f;
    lt_acks_t *acks = lt_acks_new();
    char ts[32], id[128], key[256], err[256] = "";
    int objkeys = cJSON_IsObject(pg->data);
    lt_err_t e = acks ? LT_OK : LT_ERR_RETRIABLE;
    lt_crm_format_time(lt_clock_now_ms(), ts, sizeof(ts));
    *n = 0;
    for (cJSON *row = pg->data->child; row && e == LT_OK; row = row->next) {
        if (!cJSON_IsObject(row))
            continue;
        /* before anything else sees the row: raw, the DLQ, a log line */
        int dropped = lt_sanitize_row(r->job.stream, row, note_dropped, r);
        if (dropped > 0)
            lt_metric_add(f->m.fields_dropped[r->job.stream], dropped);
        if (lt_crm_record_id(r->job.stream, row, objkeys ? row->string : NULL, id, sizeof(id)) != 0)
            snprintf(id, sizeof(id), "unknown");
        int klen = snprintf(key, sizeof(key), "%s/%s/%s", r->job.integration_id,
                            lt_stream_name(r->job.stream), id);
        char *env = lt_crm_envelope(&r->job, page, ts, row);
        size_t envlen = env ? strlen(env) : 0;
        e = env ? lt_producer_send(f->prod, f->topic_raw, key, (size_t)klen, env, envlen, acks, err,
                                   sizeof(err))
                : LT_ERR_RETRIABLE;
        if (e == LT_ERR_PERMANENT)
            e = dead_letter(r, page, acks, key, (size_t)klen, env, envlen, err);
        else if (e == LT_OK)
            (*n)++;
        if (e != LT_OK)
            lt_warn("produce %s: %s", key, env ? err : "out of memory");
        free(env);
    }
    if (e == LT_OK && lt_producer_wait(f->prod, acks, EMIT_WAIT_MS) != LT_OK) {
        rd_kafka_resp_err_t first = lt_acks_first_err(acks);
        e = first == RD_KAFKA_RESP_ERR__FATAL ? LT_ERR_FATAL : LT_ERR_RETRIABLE;
        snprintf(err, sizeof(err), "%s",
                 lt_acks_pending(acks) ? "acknowledgements timed out" : lt_kafka_err2str(first));
        lt_warn("job %s page %d: %s; sending the page again", r->job.job_id, page, err);
    }
    lt_acks_release(acks);
    if (e == LT_ERR_FATAL)
        producer_dead(f, err);
    return e;
}

/* Emits page-range sub-jobs for pages split+1..last of a whole day. */
static int emit_split(run_t *r, int last)
{
    fetcher_t *f = r->w->f;
    int per = f->split_pages;
    char parts[RKEY_LEN], outkey[RKEY_LEN], range[32], kkey[200], sub_jobkey[160], err[256];
    rkey(r, "parts", r->daykey, parts, sizeof(parts));
    rkey(r, "outstanding", NULL, outkey, sizeof(outkey));
    snprintf(range, sizeof(range), "1-%d", per);
    const char *own[] = {"HSETNX", parts, range, "pending"};
    if (rdo(r, 4, own) != 0)
        return -1;
    for (int from = per + 1; from <= last; from += per) {
        lt_job_t sub = r->job;
        lt_uuid_v4(sub.job_id);
        sub.page_from = from;
        sub.page_to = from + per - 1 < last ? from + per - 1 : last;
        snprintf(range, sizeof(range), "%d-%d", sub.page_from, sub.page_to);
        lt_job_key(&sub, sub_jobkey, sizeof(sub_jobkey));
        const char *p[] = {"HSETNX", parts, range, "pending"};
        const char *o[] = {"HSET", outkey, sub_jobkey, sub.job_id};
        if (rdo(r, 4, p) != 0 || rdo(r, 4, o) != 0)
            return -1;
        char *json = lt_job_encode(&sub);
        size_t klen = lt_job_kafka_key(&sub, kkey, sizeof(kkey));
        lt_acks_t *acks = lt_acks_new();
        lt_err_t e = json && acks ? lt_producer_send(f->prod, r->topic, kkey, klen, json,
                                                     strlen(json), acks, err, sizeof(err))
                                  : LT_ERR_RETRIABLE;
        free(json);
        if (e == LT_OK)
            e = lt_producer_wait(f->prod, acks, EMIT_WAIT_MS);
        lt_acks_release(acks);
        if (e == LT_ERR_FATAL)
            producer_dead(f, err);
        if (e != LT_OK)
            return -1;
        lt_metric_add(f->m.split_jobs, 1);
    }
    return 0;
}

/* Marks this range done in the day's parts; returns 1 with the day's sums
 * when every range is done. */
static const char parts_lua[] = "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
                                "local rows, pages = 0, 0\n"
                                "local all = redis.call('HVALS', KEYS[1])\n"
                                "for _, v in ipairs(all) do\n"
                                "  if v == 'pending' then return {0, 0, 0} end\n"
                                "  local a, b = string.match(v, '(%d+) (%d+)')\n"
                                "  rows = rows + tonumber(a); pages = pages + tonumber(b)\n"
                                "end\n"
                                "redis.call('DEL', KEYS[1])\n"
                                "return {1, rows, pages}\n";

static int part_done(run_t *r, long long *rows, long long *pages)
{
    char parts[RKEY_LEN], range[32], val[64];
    int from = r->job.page_from > 0 ? r->job.page_from : 1;
    int to = r->job.page_from > 0 ? r->job.page_to : r->w->f->split_pages;
    rkey(r, "parts", r->daykey, parts, sizeof(parts));
    snprintf(range, sizeof(range), "%d-%d", from, to);
    snprintf(val, sizeof(val), "%lld %lld", r->rows, r->pages);
    const char *argv[] = {parts, range, val};
    size_t lens[] = {strlen(parts), strlen(range), strlen(val)};
    for (;;) {
        r->w->parts_script.source = parts_lua;
        redisReply *reply = lt_redis_eval(r->w->redis, &r->w->parts_script, 1, 3, argv, lens);
        if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 3) {
            int all = (int)reply->element[0]->integer;
            *rows = reply->element[1]->integer;
            *pages = reply->element[2]->integer;
            freeReplyObject(reply);
            return all;
        }
        if (reply)
            freeReplyObject(reply);
        if (lt_clock_nap_ms(500) != 0)
            return -1;
    }
}

static void drop_ckpt(run_t *r)
{
    char key[RKEY_LEN];
    rkey(r, "ckpt", r->jobkey, key, sizeof(key));
    const char *del[] = {"DEL", key};
    rdo(r, 2, del);
}

/* A finished job's bookkeeping in one round trip (it was five commands,
 * about a sixth of a one-page job's cost: bench/fetcher_overhead.sh): the
 * day done (dateCreated days, when the whole day is), the outstanding
 * entries gone, the checkpoint gone, the stream's last success. */
static const char finish_lua[] = "if ARGV[1] == '1' then\n"
                                 "  if ARGV[2] ~= '' then redis.call('HSET', KEYS[4], ARGV[2], "
                                 "ARGV[3]) end\n"
                                 "  redis.call('HDEL', KEYS[1], ARGV[4])\n"
                                 "end\n"
                                 "if ARGV[5] ~= '' then redis.call('HDEL', KEYS[1], ARGV[5]) end\n"
                                 "redis.call('DEL', KEYS[2])\n"
                                 "redis.call('HSET', KEYS[3], 'last_ok_ms', ARGV[6])\n"
                                 "return 1\n";

static void finish(run_t *r)
{
    char outstanding[RKEY_LEN], ckpt[RKEY_LEN], stats[RKEY_LEN], done[RKEY_LEN], val[96],
        wholekey[160], ms[24];
    long long rows = r->rows, pages = r->pages;
    int whole = r->job.page_from == 0 && !r->split;
    int complete = whole || part_done(r, &rows, &pages) == 1;
    int created = strcmp(r->job.date_range_type, "dateCreated") == 0;
    lt_job_t w = r->job;
    w.page_from = w.page_to = 0;
    lt_job_key(&w, wholekey, sizeof(wholekey));
    rkey(r, "outstanding", NULL, outstanding, sizeof(outstanding));
    rkey(r, "ckpt", r->jobkey, ckpt, sizeof(ckpt));
    rkey(r, "stats", lt_stream_name(r->job.stream), stats, sizeof(stats));
    rkey(r, "done", lt_stream_name(r->job.stream), done, sizeof(done));
    snprintf(val, sizeof(val), "%lld %lld %lld", rows, pages, lt_clock_now_ms());
    snprintf(ms, sizeof(ms), "%lld", lt_clock_now_ms());
    const char *argv[] = {outstanding,
                          ckpt,
                          stats,
                          done,
                          complete ? "1" : "0",
                          created ? r->job.day : "",
                          val,
                          wholekey,
                          r->job.page_from > 0 ? r->jobkey : "",
                          ms};
    rscript(r, &r->w->finish_script, finish_lua, 4, 10, argv, NULL);
}

static const char stats_lua[] = "redis.call('HINCRBY', KEYS[1], 'rows', ARGV[1])\n"
                                "redis.call('HINCRBY', KEYS[1], 'pages', 1)\n"
                                "return 1\n";

/* Not safe to run twice (counters): a page counted twice after a lost
 * reply shows in `ltvctl status` only. */
static void stats_page(run_t *r, long long n)
{
    char key[RKEY_LEN], rows[24];
    rkey(r, "stats", lt_stream_name(r->job.stream), key, sizeof(key));
    snprintf(rows, sizeof(rows), "%lld", n);
    const char *argv[] = {key, rows};
    rscript(r, &r->w->stats_script, stats_lua, 1, 2, argv, NULL);
    lt_metric_add(r->w->f->m.rows, n);
    lt_metric_add(r->w->f->m.pages, 1);
}

/* Produces the job again to its topic (its checkpoint stays). */
static int requeue(run_t *r, const void *payload, size_t len)
{
    fetcher_t *f = r->w->f;
    char kkey[200], err[256] = "";
    size_t klen = lt_job_kafka_key(&r->job, kkey, sizeof(kkey));
    while (!lt_signal_stop) {
        lt_acks_t *acks = lt_acks_new();
        lt_err_t e = acks ? lt_producer_send(f->prod, r->topic, kkey, klen, payload, len, acks, err,
                                             sizeof(err))
                          : LT_ERR_RETRIABLE;
        if (e == LT_OK)
            e = lt_producer_wait(f->prod, acks, EMIT_WAIT_MS);
        lt_acks_release(acks);
        if (e == LT_OK)
            return 0;
        if (e == LT_ERR_FATAL)
            producer_dead(f, err);
        lt_clock_nap_ms(1000);
    }
    return -1;
}

/* Fetches one page and emits its rows; *total is the CRM's count. */
static lt_err_t do_page(run_t *r, int page, long long *n, long long *total)
{
    lt_crm_page_t pg;
    lt_err_t e = fetcher_page(r->w, &r->in, r->password, &r->job, page, r->w->f->page_size, &pg,
                              r->err, sizeof(r->err));
    if (e == LT_OK) {
        *total = pg.total_results;
        for (int attempt = 1; (e = emit_rows(r, page, &pg, n)) == LT_ERR_RETRIABLE; attempt++) {
            if (attempt >= EMIT_ATTEMPTS) {
                snprintf(r->err, sizeof(r->err), "page %d could not be written to Kafka", page);
                break; /* requeued; the checkpoint stays before this page */
            }
            if (lt_clock_nap_ms(1000LL << (attempt < 5 ? attempt : 5)) != 0) {
                e = LT_ERR_FATAL;
                break;
            }
        }
    } else if (e == LT_ERR_AUTH) {
        park(r, pg.message[0] ? pg.message : r->err);
    }
    lt_crm_page_release(&pg);
    return e;
}

/* The CRM's count, unless it is beyond what one day may hold
 * (FETCH_MAX_PAGES): then it is not trusted (-1, walk until a short page)
 * rather than turned into thousands of sub-jobs. */
static long long plausible_total(run_t *r, long long total)
{
    fetcher_t *f = r->w->f;
    if (total <= (long long)f->max_pages * f->page_size)
        return total;
    lt_warn("job %s %s: the CRM counts %lld rows, more than %d pages of %d; "
            "walking until a short page instead",
            r->job.job_id, r->jobkey, total, f->max_pages, f->page_size);
    return -1;
}

/* Pages first..last (the range, or the day as counted by page 1), never
 * past FETCH_MAX_PAGES: a window that would go on (a CRM whose pages stay
 * full) fails with LT_ERR_PERMANENT and a reason. */
static lt_err_t walk(run_t *r)
{
    fetcher_t *f = r->w->f;
    int whole = r->job.page_from == 0;
    int first = whole ? 1 : r->job.page_from;
    int last = whole ? f->max_pages : r->job.page_to;
    if (whole && r->split)
        last = f->split_pages;
    else if (whole && r->total >= 0)
        last = lt_crm_page_count(r->total, f->page_size);
    int page = r->next_page > first ? (int)r->next_page : first;
    while (page <= last) {
        long long n = 0, total = -1;
        lt_err_t e = do_page(r, page, &n, &total);
        if (e == LT_ERR_EMPTY)
            break; /* "No ... matching": the window (or its rest) is empty */
        if (e != LT_OK)
            return e;
        if (whole && !r->split && r->total < 0 && total >= 0 &&
            (total = plausible_total(r, total)) >= 0) {
            r->total = total;
            last = lt_crm_page_count(total, f->page_size);
            if (last > f->split_pages) {
                if (emit_split(r, last) != 0)
                    return LT_ERR_FATAL;
                r->split = 1;
                last = f->split_pages;
            }
        }
        r->rows += n;
        r->pages++;
        r->next_page = ++page;
        if (save_ckpt(r) != 0)
            return LT_ERR_FATAL;
        stats_page(r, n);
        if (r->total < 0 && n < f->page_size)
            return LT_OK; /* no count from the CRM: a short page is the last */
    }
    if (whole && r->total < 0 && !r->split && page > f->max_pages) {
        snprintf(r->err, sizeof(r->err),
                 "day %s has more than %d full pages "
                 "(FETCH_MAX_PAGES) without a count from the CRM; stopped there",
                 r->job.day, f->max_pages);
        return LT_ERR_PERMANENT;
    }
    return LT_OK;
}

/* dateUpdated walks: rows updated mid-walk shift between pages; if page 1's
 * count changed, *changed = 1 and the day is walked again. */
static lt_err_t recount(run_t *r, int *changed)
{
    lt_crm_page_t pg;
    lt_err_t e =
        fetcher_page(r->w, &r->in, r->password, &r->job, 1, 1, &pg, r->err, sizeof(r->err));
    long long now = e == LT_OK ? pg.total_results : 0;
    if (e == LT_ERR_AUTH)
        park(r, pg.message[0] ? pg.message : r->err);
    lt_crm_page_release(&pg);
    *changed = 0;
    if (e != LT_OK && e != LT_ERR_EMPTY)
        return e;
    *changed = now >= 0 && now != (r->total < 0 ? 0 : r->total);
    return LT_OK;
}

static lt_err_t walk_window(run_t *r)
{
    int updated = strcmp(r->job.date_range_type, "dateCreated") != 0;
    for (int round = 0;; round++) {
        int changed = 0;
        lt_err_t e = walk(r);
        if (e != LT_OK || !updated || r->job.page_from > 0 || r->split || round >= 2)
            return e;
        if ((e = recount(r, &changed)) != LT_OK || !changed)
            return e;
        lt_metric_add(r->w->f->m.recount_rewalks, 1);
        r->total = -1;
        r->next_page = 1;
    }
}

/* Decides whether the job can run at all. 0 run, -1 drop (committed), -2
 * not now (left for a later attempt). */
static int prepare(run_t *r, const void *payload, size_t len)
{
    char err[512];
    if (lt_job_decode(payload, len, &r->job, err, sizeof(err)) != LT_OK) {
        lt_warn("dropping invalid job message (%zu bytes): %s", len, err);
        lt_metric_add(r->w->f->m.job_dropped, 1);
        return -1;
    }
    lt_job_t whole = r->job;
    whole.page_from = whole.page_to = 0;
    lt_job_key(&r->job, r->jobkey, sizeof(r->jobkey));
    lt_job_key(&whole, r->daykey, sizeof(r->daykey));
    int found = fetcher_integration(r->w->f, r->job.integration_id, &r->in);
    if (found == -2) {
        lt_warn("job %s: integration %s cannot be read now; retried later", r->job.job_id,
                r->job.integration_id);
        return -2;
    }
    if (found != 0) {
        lt_warn("dropping job %s: integration %s unknown (removed?)", r->job.job_id,
                r->job.integration_id);
        lt_metric_add(r->w->f->m.job_dropped, 1);
        forget_outstanding(r, r->jobkey);
        return -1;
    }
    if (is_parked(r)) {
        lt_metric_add(r->w->f->m.job_dropped, 1);
        forget_outstanding(r, r->jobkey);
        return -1;
    }
    /* The credential policy before any request: an integration whose
     * base_url or password_ref breaks it is never called, only parked. */
    if (lt_cred_password(&r->w->f->cred, &r->in, r->password, sizeof(r->password), err,
                         sizeof(err)) != LT_OK) {
        park(r, err);
        forget_outstanding(r, r->jobkey);
        return -1;
    }
    return 0;
}

static job_outcome_t conclude(run_t *r, lt_err_t e, long long t0, const void *payload, size_t len)
{
    const char *id = r->job.integration_id, *s = lt_stream_name(r->job.stream);
    fetcher_metrics_t *m = &r->w->f->m;
    switch (e) {
    case LT_OK:
        finish(r);
        lt_metric_add(m->job_done, 1);
        lt_info("job %s done: %s %s %s %s rows=%lld pages=%lld %lldms", r->job.job_id, id, s,
                r->job.date_range_type, r->jobkey, r->rows, r->pages, lt_clock_now_ms() - t0);
        return JOB_COMMIT;
    case LT_ERR_FATAL:
        lt_metric_add(m->job_abandoned, 1);
        lt_info("job %s abandoned (%s), checkpoint at page %lld", r->job.job_id,
                lt_signal_stop ? "shutting down" : "Kafka refused its sub-jobs; run again later",
                r->next_page);
        return JOB_ABANDON;
    case LT_ERR_RETRIABLE:
        if (r->w->defer_ms > 0) {
            lt_metric_add(m->job_deferred, 1);
            lt_debug("job %s %s %s deferred %lld ms at page %lld: %s", r->job.job_id, id, r->jobkey,
                     r->w->defer_ms, r->next_page, r->err);
            return JOB_DEFER;
        }
        lt_warn("job %s %s %s: giving up after %d attempts (%s); requeued", r->job.job_id, id,
                r->jobkey, r->w->f->max_attempts, r->err);
        if (requeue(r, payload, len) != 0)
            return JOB_ABANDON;
        lt_metric_add(m->job_requeued, 1);
        return JOB_COMMIT;
    default: /* AUTH (parked above) or PERMANENT */
        if (e == LT_ERR_PERMANENT)
            fetcher_stats_error(r->w, &r->job, r->err);
        lt_warn("job %s %s %s dropped: %s", r->job.job_id, id, r->jobkey, r->err);
        forget_outstanding(r, r->jobkey);
        drop_ckpt(r); /* a later job of the day starts from page 1, not here */
        lt_metric_add(m->job_dropped, 1);
        return JOB_COMMIT;
    }
}

job_outcome_t fetcher_job_run(worker_ctx_t *w, const char *topic, const void *payload, size_t len)
{
    job_outcome_t out = JOB_COMMIT;
    run_t *r = calloc(1, sizeof(*r));
    if (!r)
        return JOB_ABANDON;
    r->w = w;
    r->topic = topic;
    w->defer_ms = 0;
    int ready = prepare(r, payload, len);
    if (ready == 0) {
        long long t0 = lt_clock_now_ms();
        load_ckpt(r);
        lt_debug("job %s start: %s %s %s %s (%s) from page %lld", r->job.job_id,
                 r->job.integration_id, lt_stream_name(r->job.stream), r->job.date_range_type,
                 r->jobkey, r->job.reason, r->next_page > 0 ? r->next_page : 1);
        out = conclude(r, walk_window(r), t0, payload, len);
    } else if (ready == -2 || lt_signal_stop) {
        out = JOB_ABANDON;
    }
    lt_cred_wipe(r->password, sizeof(r->password));
    free(r);
    return out;
}
