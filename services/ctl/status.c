/* ltvctl status: per integration and stream, days done of total, rows,
 * pages, last error, state, limit usage and the "complete through" day, all
 * read from Redis (the keys: docs/ARCHITECTURE.md "Redis keys", named by
 * lt_rkeys; one command per key, so nothing here crosses slots in a
 * cluster). A progress bar with rate and ETA on a terminal; --json for
 * machines; --watch refreshes until interrupted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "ctl.h"
#include "lt_date.h"
#include "lt_json.h"
#include "lt_redis.h"
#include "lt_registry.h"
#include "lt_rkeys.h"
#include "lt_signal.h"

typedef struct {
    long long days_total, days_done, rows, pages, errors, last_ok_ms;
    char last_error[256];
    char complete_through[11]; /* "" when the first day is not done */
} stream_status_t;

typedef struct {
    char state[16], reason[256];
    long long in_flight, outstanding, started_ms;
    char replay_state[16];
    long long replay_done, replay_total;
    stream_status_t streams[LT_STREAM_COUNT];
    char complete_through[11];
} integ_status_t;

static long long hash_ll(const redisReply *reply, const char *field)
{
    for (size_t i = 0; reply && reply->type == REDIS_REPLY_ARRAY && i + 1 < reply->elements; i += 2)
        if (!strcmp(reply->element[i]->str, field))
            return strtoll(reply->element[i + 1]->str, NULL, 10);
    return 0;
}

static void hash_str(const redisReply *reply, const char *field, char *buf, size_t len)
{
    buf[0] = '\0';
    for (size_t i = 0; reply && reply->type == REDIS_REPLY_ARRAY && i + 1 < reply->elements; i += 2)
        if (!strcmp(reply->element[i]->str, field))
            snprintf(buf, len, "%.*s", (int)reply->element[i + 1]->len, reply->element[i + 1]->str);
}

static int cmp_day(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Days done within [first, last] and the end of the contiguous done prefix. */
static void done_days(const redisReply *reply, const char *first, const char *last,
                      stream_status_t *st)
{
    const char **days;
    size_t n = 0;
    char expect[11];
    st->complete_through[0] = '\0';
    st->days_done = 0;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || !reply->elements)
        return;
    if (!(days = calloc(reply->elements, sizeof(*days))))
        return;
    for (size_t i = 0; i < reply->elements; i++) {
        const char *d = reply->element[i]->str;
        if (reply->element[i]->len == 10 && strcmp(d, first) >= 0 && strcmp(d, last) <= 0)
            days[n++] = d;
    }
    qsort(days, n, sizeof(*days), cmp_day);
    st->days_done = (long long)n;
    memcpy(expect, first, 11);
    for (size_t i = 0; i < n && !strcmp(days[i], expect); i++) {
        memcpy(st->complete_through, expect, 11);
        lt_date_add_days(expect, 10, 1, expect);
    }
    free(days);
}

/* P i:ID:WHAT[:STREAM] */
static void ikey(const char *prefix, const lt_integration_t *in, const char *what,
                 const char *stream, char *buf, size_t len)
{
    char w[64];
    snprintf(w, sizeof(w), "%s%s%s", what, stream ? ":" : "", stream ? stream : "");
    lt_rkey_integ(buf, len, prefix, in->id, w);
}

static int collect(lt_redis_t *r, const char *prefix, const lt_config_t *cfg,
                   const lt_integration_t *in, integ_status_t *out)
{
    char key[256], what[96];
    const char *first = lt_integration_first_day(in, lt_config_str(cfg, "IMPORT_ALL_FROM"));
    char yesterday[11];
    lt_datetime_t a, b;
    redisReply *reply;
    long long now = (long long)time(NULL) * 1000;

    memset(out, 0, sizeof(*out));
    if (lt_integration_local_day(in, now / 1000, -1, yesterday) < 0)
        return -1;
    ikey(prefix, in, "state", NULL, key, sizeof(key));
    if (!(reply = lt_redis_cmd(r, "HGETALL %s", key)))
        return -1;
    hash_str(reply, "state", out->state, sizeof(out->state));
    hash_str(reply, "reason", out->reason, sizeof(out->reason));
    freeReplyObject(reply);
    if (!out->state[0])
        strcpy(out->state, "ok");
    snprintf(what, sizeof(what), "replay:%s", in->id);
    lt_rkey_global(key, sizeof(key), prefix, what);
    if (!(reply = lt_redis_cmd(r, "HGETALL %s", key)))
        return -1;
    hash_str(reply, "state", out->replay_state, sizeof(out->replay_state));
    out->replay_done = hash_ll(reply, "done");
    out->replay_total = hash_ll(reply, "total");
    freeReplyObject(reply);
    ikey(prefix, in, "inflight", NULL, key, sizeof(key));
    if (!(reply = lt_redis_cmd(r, "ZCOUNT %s %lld +inf", key, now)))
        return -1;
    out->in_flight = reply->type == REDIS_REPLY_INTEGER ? reply->integer : 0;
    freeReplyObject(reply);
    ikey(prefix, in, "outstanding", NULL, key, sizeof(key));
    if (!(reply = lt_redis_cmd(r, "HLEN %s", key)))
        return -1;
    out->outstanding = reply->type == REDIS_REPLY_INTEGER ? reply->integer : 0;
    freeReplyObject(reply);
    lt_date_parse_day(first, strlen(first), &a);
    lt_date_parse_day(yesterday, 10, &b);
    for (int s = 0; s < LT_STREAM_COUNT; s++) {
        stream_status_t *st = &out->streams[s];
        const char *name = lt_stream_name((lt_stream_t)s);
        if (!(in->streams & (1u << s)))
            continue;
        st->days_total = lt_date_days_from_civil(b.year, b.month, b.day) -
                         lt_date_days_from_civil(a.year, a.month, a.day) + 1;
        if (st->days_total < 0)
            st->days_total = 0;
        ikey(prefix, in, "done", name, key, sizeof(key));
        if (!(reply = lt_redis_cmd(r, "HKEYS %s", key)))
            return -1;
        done_days(reply, first, yesterday, st);
        freeReplyObject(reply);
        ikey(prefix, in, "stats", name, key, sizeof(key));
        if (!(reply = lt_redis_cmd(r, "HGETALL %s", key)))
            return -1;
        st->rows = hash_ll(reply, "rows");
        st->pages = hash_ll(reply, "pages");
        st->errors = hash_ll(reply, "errors");
        st->last_ok_ms = hash_ll(reply, "last_ok_ms");
        hash_str(reply, "last_error", st->last_error, sizeof(st->last_error));
        freeReplyObject(reply);
        ikey(prefix, in, "backfill", name, key, sizeof(key));
        if (!(reply = lt_redis_cmd(r, "HGET %s started_ms", key)))
            return -1;
        if (reply->type == REDIS_REPLY_STRING) {
            long long started = strtoll(reply->str, NULL, 10);
            if (!out->started_ms || started < out->started_ms)
                out->started_ms = started;
        }
        freeReplyObject(reply);
        if (!out->complete_through[0] || strcmp(st->complete_through, out->complete_through) < 0)
            memcpy(out->complete_through, st->complete_through, 11);
    }
    return 0;
}

static cJSON *to_json(const lt_integration_t *in, const integ_status_t *st)
{
    cJSON *root = cJSON_CreateObject(), *streams = cJSON_AddObjectToObject(root, "streams");
    cJSON_AddStringToObject(root, "id", in->id);
    cJSON_AddStringToObject(root, "state", st->state);
    cJSON_AddStringToObject(root, "reason", st->reason);
    cJSON_AddStringToObject(root, "complete_through", st->complete_through);
    cJSON_AddNumberToObject(root, "in_flight", (double)st->in_flight);
    cJSON_AddNumberToObject(root, "max_in_flight", in->max_in_flight);
    cJSON_AddNumberToObject(root, "max_requests_per_second", in->max_requests_per_second);
    cJSON_AddNumberToObject(root, "outstanding_jobs", (double)st->outstanding);
    if (st->replay_state[0]) {
        cJSON *rp = cJSON_AddObjectToObject(root, "replay");
        cJSON_AddStringToObject(rp, "state", st->replay_state);
        cJSON_AddNumberToObject(rp, "done", (double)st->replay_done);
        cJSON_AddNumberToObject(rp, "total", (double)st->replay_total);
    }
    for (int s = 0; s < LT_STREAM_COUNT; s++) {
        const stream_status_t *ss = &st->streams[s];
        cJSON *o;
        if (!(in->streams & (1u << s)))
            continue;
        o = cJSON_AddObjectToObject(streams, lt_stream_name((lt_stream_t)s));
        cJSON_AddNumberToObject(o, "days_done", (double)ss->days_done);
        cJSON_AddNumberToObject(o, "days_total", (double)ss->days_total);
        cJSON_AddNumberToObject(o, "rows", (double)ss->rows);
        cJSON_AddNumberToObject(o, "pages", (double)ss->pages);
        cJSON_AddNumberToObject(o, "errors", (double)ss->errors);
        cJSON_AddStringToObject(o, "last_error", ss->last_error);
        cJSON_AddStringToObject(o, "complete_through", ss->complete_through);
    }
    return root;
}

static void bar(char *buf, size_t width, double frac)
{
    size_t fill = (size_t)(frac * (double)width + 0.5);
    for (size_t i = 0; i < width; i++)
        buf[i] = i < fill ? '#' : '.';
    buf[width] = '\0';
}

static void print_human(const ctl_t *ctl, const lt_integration_t *in, const integ_status_t *st,
                        int tty)
{
    long long done = 0, total = 0;
    char b[41];
    fprintf(ctl->out, "%s  state: %s", in->id, st->state);
    if (st->reason[0])
        fprintf(ctl->out, " (%s)", st->reason);
    fprintf(ctl->out, "  complete through: %s\n",
            st->complete_through[0] ? st->complete_through : "-");
    fprintf(ctl->out,
            "  limits: %lld of %d requests in flight, %d requests/s; %lld jobs outstanding\n",
            st->in_flight, in->max_in_flight, in->max_requests_per_second, st->outstanding);
    if (st->replay_state[0])
        fprintf(ctl->out, "  replay: %s, %lld of %lld raw rows\n", st->replay_state,
                st->replay_done, st->replay_total);
    fprintf(ctl->out, "  %-13s %15s %10s %8s %7s  %s\n", "STREAM", "DAYS", "ROWS", "PAGES",
            "ERRORS", "LAST ERROR");
    for (int s = 0; s < LT_STREAM_COUNT; s++) {
        const stream_status_t *ss = &st->streams[s];
        char days[32];
        if (!(in->streams & (1u << s)))
            continue;
        snprintf(days, sizeof(days), "%lld/%lld", ss->days_done, ss->days_total);
        fprintf(ctl->out, "  %-13s %15s %10lld %8lld %7lld  %s\n", lt_stream_name((lt_stream_t)s),
                days, ss->rows, ss->pages, ss->errors, ss->last_error[0] ? ss->last_error : "-");
        done += ss->days_done, total += ss->days_total;
    }
    if (total > 0) {
        double frac = (double)done / (double)total;
        long long elapsed = (long long)time(NULL) * 1000 - st->started_ms;
        bar(b, tty ? 40 : 20, frac);
        fprintf(ctl->out, "  backfill [%s] %5.1f%%", b, frac * 100);
        if (st->started_ms && done > 0 && elapsed > 0 && done < total) {
            double rate = (double)done / ((double)elapsed / 60000.0);
            fprintf(ctl->out, "  %.1f stream-days/min, ETA %.0f min", rate,
                    (double)(total - done) / rate);
        }
        fprintf(ctl->out, "\n");
    }
}

int ctl_status(ctl_t *ctl)
{
    lt_registry_t reg = {0};
    lt_redis_t *r = NULL;
    const char *id = ctl_arg(ctl, 0), *prefix = lt_config_str(ctl->cfg, "REDIS_PREFIX");
    char errstr[512];
    int rc = CTL_FAIL, tty = ctl->out == stdout && isatty(1), watch = ctl_flag(ctl, "--watch");
    integ_status_t st;

    lt_signal_install();
    if (!(r = lt_redis_new(lt_config_str(ctl->cfg, "REDIS_URL"), 3000, errstr, sizeof(errstr)))) {
        fprintf(ctl->err, "ltvctl: redis: %s\n", errstr);
        return CTL_FAIL;
    }
    do {
        cJSON *arr = cJSON_CreateArray();
        int shown = 0;
        if (lt_registry_load(&reg, ctl->cfg, errstr, sizeof(errstr)) != LT_OK) {
            fprintf(ctl->err, "ltvctl: reading integrations: %s\n", errstr);
            cJSON_Delete(arr);
            goto end;
        }
        if (watch && tty && !ctl->json)
            fprintf(ctl->out, "\033[H\033[2J");
        for (size_t i = 0; i < reg.count; i++) {
            if (id && strcmp(id, reg.items[i].id))
                continue;
            if (collect(r, prefix, ctl->cfg, &reg.items[i], &st) < 0) {
                fprintf(ctl->err, "ltvctl: redis: %s\n", lt_redis_errstr(r));
                cJSON_Delete(arr);
                goto end;
            }
            shown++;
            if (ctl->json)
                cJSON_AddItemToArray(arr, to_json(&reg.items[i], &st));
            else
                print_human(ctl, &reg.items[i], &st, tty);
        }
        if (ctl->json) {
            char *out = lt_json_print(id && shown ? arr->child : arr);
            fprintf(ctl->out, "%s\n", out ? out : "null");
            free(out);
        }
        cJSON_Delete(arr);
        fflush(ctl->out);
        if (id && !shown) {
            fprintf(ctl->err, "ltvctl: no integration \"%s\"\n", id);
            ctl_fail(ctl, CTL_P_NOT_FOUND, NULL);
            goto end;
        }
        for (int i = 0; watch && i < 20 && !lt_signal_stop; i++)
            usleep(100000);
    } while (watch && !lt_signal_stop);
    rc = CTL_OK;
end:
    lt_registry_release(&reg);
    lt_redis_destroy(r);
    return rc;
}
