/* dispatch.c: consumers, worker threads and offset bookkeeping.
 *
 * The main thread polls the live consumer before the backfill consumer and
 * hands each job to an idle worker. A partition's offset is stored only up
 * to its first unfinished job (a contiguous prefix), so a crash redelivers
 * every unfinished job. When the local queues are full the consumers'
 * partitions are paused, so polling (and group membership) continues while
 * long jobs run. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "fetcher.h"
#include "lt_log.h"
#include "lt_signal.h"

#define QCAP 256

typedef struct {
    int cls;          /* 0 live, 1 backfill */
    int32_t partition;
    int64_t offset;
    int done, commit;
} track_t;

typedef struct slot_s {
    pthread_t th;
    worker_ctx_t w;
    int state; /* 0 idle, 1 assigned, 2 finished */
    rd_kafka_message_t *rkm;
    int cls;
    job_outcome_t outcome;
    struct disp_s *d;
} slot_t;

typedef struct disp_s {
    fetcher_t *f;
    lt_consumer_t *cons[2];
    const char *topics[2];
    rd_kafka_message_t *queue[2][QCAP];
    size_t qlen[2];
    int paused[2];
    track_t track[2 * QCAP + 64];
    size_t ntrack;
    slot_t *slots;
    int nstarted;
    pthread_mutex_t mu;
    pthread_cond_t work, idle;
    int quit;
} disp_t;

static void *worker_main(void *arg)
{
    slot_t *s = arg;
    disp_t *d = s->d;
    pthread_mutex_lock(&d->mu);
    for (;;) {
        while (s->state != 1 && !d->quit)
            pthread_cond_wait(&d->work, &d->mu);
        if (s->state != 1)
            break;
        pthread_mutex_unlock(&d->mu);
        lt_metric_add(d->f->m.jobs_active, 1);
        job_outcome_t o = fetcher_job_run(&s->w, d->topics[s->cls], s->rkm->payload,
                                          s->rkm->len);
        lt_metric_add(d->f->m.jobs_active, -1);
        pthread_mutex_lock(&d->mu);
        s->outcome = o;
        s->state = 2;
        pthread_cond_broadcast(&d->idle);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

/* Marks a job finished and stores the partition's contiguous prefix. */
static void track_finish(disp_t *d, int cls, const rd_kafka_message_t *rkm, int commit)
{
    int64_t store = -1;
    for (size_t i = 0; i < d->ntrack; i++)
        if (d->track[i].cls == cls && d->track[i].partition == rkm->partition &&
            d->track[i].offset == rkm->offset) {
            d->track[i].done = 1;
            d->track[i].commit = commit;
        }
    size_t j = 0;
    int blocked = 0;
    for (size_t i = 0; i < d->ntrack; i++) {
        track_t *t = &d->track[i];
        int mine = t->cls == cls && t->partition == rkm->partition;
        if (mine && !blocked && t->done && t->commit) {
            store = t->offset + 1;
            continue; /* popped */
        }
        if (mine)
            blocked = 1;
        d->track[j++] = *t;
    }
    d->ntrack = j;
    if (store >= 0)
        lt_consumer_store_offset(d->cons[cls], d->topics[cls], rkm->partition, store);
}

static void collect(disp_t *d)
{
    for (int i = 0; i < d->f->concurrency; i++) {
        slot_t *s = &d->slots[i];
        if (s->state != 2)
            continue;
        track_finish(d, s->cls, s->rkm, s->outcome == JOB_COMMIT);
        rd_kafka_message_destroy(s->rkm);
        s->rkm = NULL;
        s->state = 0;
    }
}

static int dispatch_one(disp_t *d)
{
    int cls = d->qlen[0] ? 0 : d->qlen[1] ? 1 : -1;
    if (cls < 0)
        return 0;
    for (int i = 0; i < d->f->concurrency; i++) {
        slot_t *s = &d->slots[i];
        if (s->state != 0)
            continue;
        s->rkm = d->queue[cls][0];
        memmove(&d->queue[cls][0], &d->queue[cls][1],
                (--d->qlen[cls]) * sizeof(d->queue[cls][0]));
        s->cls = cls;
        s->state = 1;
        pthread_cond_broadcast(&d->work);
        return 1;
    }
    return 0;
}

static void set_paused(disp_t *d, int cls, int pause)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    rd_kafka_t *rk = lt_consumer_handle(d->cons[cls]);
    if (d->paused[cls] == pause || rd_kafka_assignment(rk, &parts) != 0)
        return;
    if (pause)
        rd_kafka_pause_partitions(rk, parts);
    else
        rd_kafka_resume_partitions(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    d->paused[cls] = pause;
}

/* Polls one consumer into its queue; 1 when a message arrived. */
static int fill(disp_t *d, int cls, int timeout_ms)
{
    size_t cap = (size_t)d->f->concurrency;
    set_paused(d, cls, d->qlen[cls] >= cap);
    rd_kafka_message_t *rkm = lt_consumer_poll(d->cons[cls], timeout_ms);
    if (!rkm)
        return 0;
    if (rkm->err || d->qlen[cls] >= QCAP ||
        d->ntrack >= sizeof(d->track) / sizeof(d->track[0])) {
        rd_kafka_message_destroy(rkm); /* not tracked: redelivered later */
        return 0;
    }
    d->track[d->ntrack++] = (track_t){cls, rkm->partition, rkm->offset, 0, 0};
    d->queue[cls][d->qlen[cls]++] = rkm;
    return 1;
}

static int idle_slots(const disp_t *d)
{
    int n = 0;
    for (int i = 0; i < d->f->concurrency; i++)
        n += d->slots[i].state == 0;
    return n;
}

static void loop(disp_t *d)
{
    while (!lt_signal_stop) {
        pthread_mutex_lock(&d->mu);
        collect(d);
        while (dispatch_one(d))
            ;
        int idle = idle_slots(d);
        pthread_mutex_unlock(&d->mu);
        /* live first: drain it before waiting on backfill */
        if (fill(d, 0, 0))
            continue;
        fill(d, 1, idle && !d->qlen[1] ? 50 : 0);
        if (!idle) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 20 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_mutex_lock(&d->mu);
            pthread_cond_timedwait(&d->idle, &d->mu, &ts);
            pthread_mutex_unlock(&d->mu);
        }
    }
}

/* Waits for workers until the grace deadline; 1 if all stopped. */
static int drain(disp_t *d, long long deadline_ms)
{
    pthread_mutex_lock(&d->mu);
    d->quit = 1;
    pthread_cond_broadcast(&d->work);
    pthread_mutex_unlock(&d->mu);
    for (int i = 0; i < d->nstarted; i++) {
        struct timespec ts = {deadline_ms / 1000, (deadline_ms % 1000) * 1000000L};
        if (pthread_timedjoin_np(d->slots[i].th, NULL, &ts) != 0)
            return 0;
    }
    pthread_mutex_lock(&d->mu);
    collect(d);
    pthread_mutex_unlock(&d->mu);
    return 1;
}

static int start_workers(disp_t *d)
{
    fetcher_t *f = d->f;
    d->slots = calloc((size_t)f->concurrency, sizeof(slot_t));
    if (!d->slots)
        return -1;
    for (int i = 0; i < f->concurrency; i++) {
        slot_t *s = &d->slots[i];
        char err[256];
        s->d = d;
        s->w.f = f;
        s->w.idx = i;
        s->w.rng = (unsigned)(lt_clock_now_ms() * 2654435761u) ^ (unsigned)i;
        s->w.http = lt_http_new(&f->http_opts);
        s->w.redis = lt_redis_new(f->redis_url, 2000, err, sizeof(err));
        s->w.lim = s->w.redis ? lt_limits_new(s->w.redis, f->prefix) : NULL;
        if (!s->w.http || !s->w.lim) {
            lt_error("worker %d: %s", i, s->w.redis ? "out of memory" : err);
            return -1;
        }
        if (pthread_create(&s->th, NULL, worker_main, s) != 0)
            return -1;
        d->nstarted++;
    }
    return 0;
}

static int open_consumers(disp_t *d)
{
    const char *group = lt_config_str(d->f->cfg, "GROUP_ID");
    const char *suffix[2] = {"-live", "-backfill"};
    d->topics[0] = lt_config_str(d->f->cfg, "TOPIC_JOBS_LIVE");
    d->topics[1] = lt_config_str(d->f->cfg, "TOPIC_JOBS_BACKFILL");
    for (int cls = 0; cls < 2; cls++) {
        char gid[300], err[512];
        snprintf(gid, sizeof(gid), "%s%s", group ? group : "ltvsync-fetcher", suffix[cls]);
        d->cons[cls] = lt_consumer_new(d->f->cfg, gid, &d->topics[cls], 1, err, sizeof(err));
        if (!d->cons[cls]) {
            lt_error("consumer %s: %s", gid, err);
            return -1;
        }
    }
    return 0;
}

int fetcher_dispatch_run(fetcher_t *f)
{
    static disp_t d; /* one per process; large queues stay off the stack */
    int rc = 1;
    d.f = f;
    pthread_mutex_init(&d.mu, NULL);
    pthread_cond_init(&d.work, NULL);
    pthread_cond_init(&d.idle, NULL);
    if (open_consumers(&d) != 0 || start_workers(&d) != 0) {
        lt_signal_stop = 1;
        drain(&d, lt_clock_now_ms() + 5000);
        goto end;
    }
    lt_info("fetching with %d workers", f->concurrency);
    loop(&d);
    lt_info("shutting down: finishing or abandoning jobs in hand");
    long long grace = lt_config_int(f->cfg, "SHUTDOWN_GRACE");
    if (!drain(&d, lt_clock_now_ms() + grace - grace / 5)) {
        lt_warn("workers still busy at the grace deadline; exiting without them");
        for (int c = 0; c < 2; c++)
            lt_consumer_destroy(d.cons[c]);
        lt_producer_destroy(f->prod, 2000);
        _exit(0);
    }
    rc = 0;
end:
    for (int c = 0; c < 2; c++) {
        for (size_t i = 0; i < d.qlen[c]; i++)
            rd_kafka_message_destroy(d.queue[c][i]);
        lt_consumer_destroy(d.cons[c]);
    }
    for (int i = 0; d.slots && i < f->concurrency; i++) {
        lt_limits_destroy(d.slots[i].w.lim);
        lt_redis_destroy(d.slots[i].w.redis);
        lt_http_destroy(d.slots[i].w.http);
    }
    free(d.slots);
    return rc;
}
