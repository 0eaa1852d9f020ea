/* dispatch.c: consumers, worker threads, offsets and in-process retries.
 *
 * The main thread polls the live consumer before the backfill consumer and
 * hands each job to an idle worker. lt_offsets stores a partition's offset
 * only up to its first unfinished job (the contiguous finished prefix), so a
 * crash redelivers every unfinished job.
 *
 * A job abandoned while the service runs (its rows or sub-jobs could not be
 * written to Kafka, the integrations could not be read) goes back to the head
 * of its class's queue and runs again after RETRY_BASE_MS, doubling up to
 * RETRY_MAX_MS: its partition's prefix resumes as soon as it succeeds, and
 * nothing is dropped while the process lives. At shutdown an abandoned job
 * is left unstored for redelivery. The one back-pressure is the consumers'
 * pause: a class whose queue (waiting retries included) holds `concurrency`
 * jobs that could run now is paused, so polling (and group membership) goes
 * on while long jobs run and while retries wait.
 *
 * Each integration runs at most fetcher_jobs_cap(max_in_flight) jobs at a
 * time in this process (a job has one request in flight at a time; the
 * extra quarter covers jobs waiting for their rows' acknowledgements, and
 * page.c's local gate keeps the requests themselves to max_in_flight): its
 * further jobs wait in the queue, where they count against DEFERRED_MAX but
 * not against the pause, and the workers take the next integration's jobs
 * meanwhile. So the workers are a cap (FETCH_CONCURRENCY), not the
 * throttle: one integration's import fills its own limit, not every worker,
 * and the others do not wait behind it. Across fetchers the Redis limiter
 * (lt_limits) decides. A free worker takes a job of the integration that
 * runs the fewest jobs here (live before backfill among equals), so the
 * workers are shared among the integrations with work (pick_fair).
 *
 * A rebalance that gives a partition back to this process redelivers the
 * jobs finished here since the last auto commit, and those still in hand:
 * they are skipped, not run again (finished_here, in_hand).
 *
 * fetcher_dispatch_healthy() (part of /readyz) turns false when the loop
 * has not turned for LOOP_STALL_MS or a job has kept failing for STUCK_MS:
 * its partition commits nothing meanwhile. */
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "fetcher.h"
#include "lt_log.h"
#include "lt_offsets.h"
#include "lt_signal.h"

#define RETRY_BASE_MS    1000LL
#define RETRY_MAX_MS     60000LL
#define STUCK_MS         (5 * 60000LL) /* ~10 runs at the delays above */
#define LOOP_STALL_MS    30000LL
#define ASSIGN_CHECK_MS  1000LL
#define DEFERRED_MAX     8192 /* jobs held in a queue at most (about 6 MB), deferred ones included */
#define FINISHED_KEEP_MS (5 * 60000LL) /* how long a partition's finished mark skips jobs */

/* One job message from poll to stored offset; owned by the main thread,
 * lent to one worker while it runs. */
typedef struct job_s {
    struct job_s *next;
    rd_kafka_message_t *rkm;
    int cls;                    /* 0 live, 1 backfill */
    int attempts;               /* runs abandoned so far */
    int page_attempts;          /* of its next page, carried across deferrals */
    int deferred;               /* waiting out a deferral (not counted as queued) */
    long long due_ms;           /* monotonic: not run before */
    long long failing_since_ms; /* first abandoned run; 0 never */
    unsigned long seq;          /* order taken (test hook) */
    char integration_id[65];    /* from the payload; "" when it cannot be read */
    uint64_t integration_hash;  /* of integration_id: the queue is scanned every turn */
    int max_in_flight;          /* the integration's; 0 not known (yet) */
    long long looked_ms;        /* monotonic: when max_in_flight was last looked up */
} job_t;

typedef struct {
    job_t *head, *tail;
    size_t len;
} jobq_t;

/* A worker slot's life: the dispatcher hands a job to an idle slot, the
 * worker runs it and marks it finished, the dispatcher collects the outcome
 * (offsets, commit) and makes the slot idle again. */
typedef enum {
    SLOT_IDLE,     /* no job */
    SLOT_ASSIGNED, /* a job handed over, the worker runs it */
    SLOT_FINISHED, /* outcome set, waiting for the dispatcher */
} slot_state_t;

typedef struct slot_s {
    pthread_t th;
    worker_ctx_t w;
    slot_state_t state; /* guarded by disp_t.mu */
    job_t *job;
    job_outcome_t outcome;
    struct disp_s *d;
} slot_t;

/* What the dispatcher knows of a partition, kept across revocations (see
 * finished_here and in_hand). */
typedef struct {
    int64_t finished; /* the offset after the last finished prefix stored */
    long long finished_ms;
    int64_t taken; /* the offset after the last message taken */
} part_t;

typedef struct disp_s {
    fetcher_t *f;
    lt_consumer_t *cons[2];
    const char *topics[2];
    /* main thread only: */
    jobq_t q[2];
    size_t deferred[2]; /* jobs of q[] waiting out a deferral */
    size_t blocked[2];  /* jobs of q[] whose integration is at max_in_flight */
    int paused[2];
    /* The partitions this process has paused and not yet resumed: exactly
     * those carrying librdkafka's application pause. */
    rd_kafka_topic_partition_list_t *pausedset[2];
    rd_kafka_topic_partition_list_t *assigned[2];
    long long assign_checked_ms;
    lt_offsets_t *offsets;
    part_t *parts[2]; /* per class and partition, grown as they appear */
    size_t nparts[2];
    unsigned long taken;
    unsigned rng;
    int failed; /* a job could not be tracked: stop, exit 1 */
    int unhealthy;
    /* shared with the workers: */
    slot_t *slots;
    int nstarted;
    pthread_mutex_t mu;
    pthread_cond_t work, idle;
    int quit;
} disp_t;

/* Readiness, read by the HTTP thread: the loop's last turn (0 = not
 * running) and the first failure of the longest-failing job (0 = none). */
static atomic_llong beat_ms, failing_since_ms;
static atomic_llong stuck_ms = STUCK_MS;

/* Test hook for tests/fault/test_fetcher_abandon.py, off unless its
 * variables are set (the real causes, a Kafka write or a registry read
 * failing mid-job, cannot be provoked on cue): every
 * LTVSYNC_TEST_ABANDON_EVERY-th job taken is abandoned, without running, on
 * its first LTVSYNC_TEST_ABANDON_TIMES runs (default 1);
 * LTVSYNC_TEST_STUCK_MS replaces STUCK_MS. Read once, before the workers. */
static unsigned long test_abandon_every;
static int test_abandon_times = 1;

static long long env_num(const char *name, long long min, long long max)
{
    const char *s = getenv(name);
    char *end;
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || !*s || *end || v < min || v > max)
        return -1;
    return v;
}

static void test_hook_init(void)
{
    long long every = env_num("LTVSYNC_TEST_ABANDON_EVERY", 1, 1000000);
    long long times = env_num("LTVSYNC_TEST_ABANDON_TIMES", 1, 1000);
    long long stuck = env_num("LTVSYNC_TEST_STUCK_MS", 100, STUCK_MS);
    if (every > 0) {
        test_abandon_every = (unsigned long)every;
        test_abandon_times = times > 0 ? (int)times : 1;
        lt_warn("TEST HOOK: jobs taken whose number is a multiple of %lu are abandoned "
                "on their first %d runs",
                test_abandon_every, test_abandon_times);
    }
    if (stuck > 0) {
        atomic_store(&stuck_ms, stuck);
        lt_warn("TEST HOOK: unhealthy after a job fails for %lld ms", stuck);
    }
}

static int test_abandon(const job_t *job)
{
    return test_abandon_every && job->seq % test_abandon_every == 0 &&
           job->attempts < test_abandon_times;
}

int fetcher_dispatch_healthy(void)
{
    long long now = lt_clock_mono_ms();
    long long beat = atomic_load(&beat_ms), since = atomic_load(&failing_since_ms);
    return beat > 0 && now - beat < LOOP_STALL_MS &&
           (!since || now - since < atomic_load(&stuck_ms));
}

static void q_push_back(jobq_t *q, job_t *job)
{
    job->next = NULL;
    if (q->tail)
        q->tail->next = job;
    else
        q->head = job;
    q->tail = job;
    q->len++;
}

static void q_push_front(jobq_t *q, job_t *job)
{
    job->next = q->head;
    q->head = job;
    if (!q->tail)
        q->tail = job;
    q->len++;
}

/* Unlinks job from q; prev is the job before it (NULL at the head). */
static void q_unlink(jobq_t *q, job_t *prev, job_t *job)
{
    if (prev)
        prev->next = job->next;
    else
        q->head = job->next;
    if (q->tail == job)
        q->tail = prev;
    q->len--;
    job->next = NULL;
}

/* Unlinks the first job for which keep() is 0 (with arg), or NULL. */
static job_t *q_unlink_first(jobq_t *q, int (*keep)(const job_t *, const void *), const void *arg)
{
    job_t *prev = NULL;
    for (job_t *job = q->head; job; prev = job, job = job->next) {
        if (keep(job, arg))
            continue;
        q_unlink(q, prev, job);
        return job;
    }
    return NULL;
}

static void job_free(job_t *job)
{
    if (job)
        rd_kafka_message_destroy(job->rkm);
    free(job);
}

static void *worker_main(void *arg)
{
    slot_t *s = arg;
    disp_t *d = s->d;
    pthread_mutex_lock(&d->mu);
    for (;;) {
        while (s->state != SLOT_ASSIGNED && !d->quit)
            pthread_cond_wait(&d->work, &d->mu);
        if (s->state != SLOT_ASSIGNED)
            break;
        const job_t *job = s->job;
        pthread_mutex_unlock(&d->mu);
        lt_metric_add(d->f->m.jobs_active, 1);
        job_outcome_t o = test_abandon(job) ? JOB_ABANDON
                                            : fetcher_job_run(&s->w, d->topics[job->cls],
                                                              job->rkm->payload, job->rkm->len);
        lt_metric_add(d->f->m.jobs_active, -1);
        pthread_mutex_lock(&d->mu);
        s->outcome = o;
        s->state = SLOT_FINISHED;
        pthread_cond_broadcast(&d->idle);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

/* A partition's record; NULL when out of memory (which only costs the
 * skips below). */
static part_t *part_of(disp_t *d, int cls, int32_t partition)
{
    size_t p = (size_t)partition;
    if (partition < 0)
        return NULL;
    if (p >= d->nparts[cls]) {
        size_t n = d->nparts[cls] ? d->nparts[cls] : 16;
        while (n <= p)
            n *= 2;
        part_t *grown = realloc(d->parts[cls], n * sizeof(*grown));
        if (!grown)
            return NULL;
        memset(grown + d->nparts[cls], 0, (n - d->nparts[cls]) * sizeof(*grown));
        d->parts[cls] = grown;
        d->nparts[cls] = n;
    }
    return &d->parts[cls][p];
}

static void note_finished(disp_t *d, int cls, int32_t partition, int64_t next)
{
    part_t *p = part_of(d, cls, partition);
    if (!p)
        return;
    if (next > p->finished)
        p->finished = next;
    p->finished_ms = lt_clock_mono_ms();
}

/* Stores every partition whose finished prefix advanced. */
static void store_ready(disp_t *d)
{
    int cls;
    int32_t partition;
    int64_t next;
    while (lt_offsets_take(d->offsets, &cls, &partition, &next)) {
        lt_consumer_store_offset(d->cons[cls], d->topics[cls], partition, next);
        note_finished(d, cls, partition, next);
    }
}

/* Whether a polled job is one this process finished already. A rebalance
 * returns a partition from its committed offset, and librdkafka 2.0.2's
 * auto commit runs every auto.commit.interval.ms: the offsets stored since
 * the last commit were not committed (the dev broker also refuses the
 * commit librdkafka makes when it gives partitions up). Every offset below
 * a partition's finished mark was finished here (the mark only ever comes
 * from a finished prefix of jobs taken here, or a job finishing right
 * after it), so those jobs are not run again, only their offsets stored. A
 * mark older than FINISHED_KEEP_MS skips nothing: by then auto commit has
 * covered it, and a topic deleted and created again (its offsets restart)
 * cannot lose jobs to a mark of the old one after that. */
static int finished_here(const disp_t *d, int cls, const rd_kafka_message_t *rkm, long long now)
{
    size_t p = (size_t)rkm->partition;
    return rkm->partition >= 0 && p < d->nparts[cls] && rkm->offset < d->parts[cls][p].finished &&
           now - d->parts[cls][p].finished_ms < FINISHED_KEEP_MS;
}

static int same_message(const job_t *job, int cls, const rd_kafka_message_t *rkm)
{
    return job->cls == cls && job->rkm->partition == rkm->partition &&
           job->rkm->offset == rkm->offset;
}

/* Whether a polled job is the same message as one in hand (queued or
 * running): its partition went back (revoked and given back between two
 * assignment checks, so the queue kept it) and redelivers it. Looked for
 * only when the partition went back, so the queue is walked rarely. */
static int in_hand(const disp_t *d, int cls, const rd_kafka_message_t *rkm)
{
    size_t p = (size_t)rkm->partition;
    if (rkm->partition < 0 || p >= d->nparts[cls] || rkm->offset >= d->parts[cls][p].taken)
        return 0;
    for (const job_t *job = d->q[cls].head; job; job = job->next)
        if (same_message(job, cls, rkm))
            return 1;
    /* slots[].job is written by this (the main) thread only */
    for (int i = 0; i < d->f->concurrency; i++)
        if (d->slots[i].job && same_message(d->slots[i].job, cls, rkm))
            return 1;
    return 0;
}

static void finish(disp_t *d, job_t *job)
{
    const rd_kafka_message_t *rkm = job->rkm;
    if (lt_offsets_done(d->offsets, job->cls, rkm->partition, rkm->offset) < 0) {
        /* its partition was revoked while it ran: nothing is stored, but
         * a mark it continues still skips it if the partition comes back */
        part_t *p = part_of(d, job->cls, rkm->partition);
        if (p && p->finished == rkm->offset)
            note_finished(d, job->cls, rkm->partition, rkm->offset + 1);
    }
    store_ready(d);
    if (job->attempts)
        lt_info("job %s[%d]@%lld finished after %d abandoned run%s", d->topics[job->cls],
                (int)rkm->partition, (long long)rkm->offset, job->attempts,
                job->attempts > 1 ? "s" : "");
    job_free(job);
}

/* Puts an abandoned job back at the head of its queue, due after a capped
 * exponential delay with jitter (up to a quarter earlier), so failures that
 * came together do not retry together. */
static void retry(disp_t *d, job_t *job, long long now)
{
    const rd_kafka_message_t *rkm = job->rkm;
    long long delay = RETRY_BASE_MS << (job->attempts < 6 ? job->attempts : 6);
    if (delay > RETRY_MAX_MS)
        delay = RETRY_MAX_MS;
    delay -= (long long)(rand_r(&d->rng) % (unsigned)(delay / 4 + 1));
    job->attempts++;
    if (!job->failing_since_ms)
        job->failing_since_ms = now;
    job->due_ms = now + delay;
    q_push_front(&d->q[job->cls], job);
    lt_metric_add(d->f->m.job_retried, 1);
    lt_warn("job %s[%d]@%lld abandoned (run %d, failing for %.1f s): running it again "
            "in %lld ms; its partition commits nothing past it meanwhile",
            d->topics[job->cls], (int)rkm->partition, (long long)rkm->offset, job->attempts,
            (double)(now - job->failing_since_ms) / 1000, delay);
}

/* A job whose integration asked for a wait (Retry-After, its limits busy)
 * waits in its queue, not in a worker; it does not count against the
 * queue's back-pressure (up to DEFERRED_MAX), so other integrations' jobs
 * keep coming in and running meanwhile. Its partition stores nothing past
 * it until it is done. */
static void defer(disp_t *d, job_t *job, long long now, long long ms, int attempts)
{
    job->due_ms = now + ms;
    job->page_attempts = attempts;
    job->deferred = 1;
    d->deferred[job->cls]++;
    q_push_front(&d->q[job->cls], job);
}

/* Takes finished jobs back from the workers. Caller holds d->mu. */
static void collect(disp_t *d, long long now)
{
    for (int i = 0; i < d->f->concurrency; i++) {
        slot_t *s = &d->slots[i];
        job_t *job = s->job;
        if (s->state != SLOT_FINISHED)
            continue;
        s->job = NULL;
        s->state = SLOT_IDLE;
        if (s->outcome == JOB_COMMIT)
            finish(d, job);
        else if (s->outcome == JOB_DEFER && !lt_signal_stop)
            defer(d, job, now, s->w.defer_ms, s->w.attempts_carried);
        else if (!lt_signal_stop)
            retry(d, job, now);
        else
            job_free(job); /* shutting down: unstored, redelivered */
    }
}

/* The jobs of job's integration that workers run now. */
static int running(const disp_t *d, const job_t *job)
{
    int n = 0;
    for (int i = 0; i < d->f->concurrency; i++) {
        const job_t *other = d->slots[i].job;
        n += other && other->integration_hash == job->integration_hash &&
             !strcmp(other->integration_id, job->integration_id);
    }
    return n;
}

/* 1 when the job's integration already runs its share of jobs here. */
static int saturated(const disp_t *d, const job_t *job)
{
    return job->max_in_flight > 0 && running(d, job) >= fetcher_jobs_cap(job->max_in_flight);
}

static void look_up_limit(const disp_t *d, job_t *job, long long now);

/* Counts each class's queued jobs that wait for their integration's slots
 * (not for a deferral or a retry delay); looks again, once a second, for the
 * limit of an integration that was not known when its job came. Caller
 * holds d->mu. */
static void count_blocked(disp_t *d, long long now)
{
    for (int c = 0; c < 2; c++) {
        d->blocked[c] = 0;
        for (job_t *job = d->q[c].head; job; job = job->next) {
            if (!job->max_in_flight && now - job->looked_ms >= 1000)
                look_up_limit(d, job, now);
            d->blocked[c] += !job->deferred && job->due_ms <= now && saturated(d, job);
        }
    }
}

/* Unlinks the runnable job (due, its integration below its cap here) whose
 * integration runs the fewest jobs here; among equals the live one first,
 * then the one queued first. So the workers are shared among the
 * integrations that have work, whatever its class: an integration whose
 * CRM holds every request to the timeout keeps due live jobs in the queue
 * all the time, and "live first" alone gave it every free worker while
 * another integration's import waited (test_crm_hostile_slow). The scan
 * stops at a job of an integration that runs nothing here. */
static job_t *pick_fair(disp_t *d, long long now)
{
    job_t *best = NULL, *best_prev = NULL;
    int best_cls = 0, best_n = INT_MAX;
    for (int c = 0; c < 2 && best_n > 0; c++) {
        job_t *prev = NULL;
        for (job_t *job = d->q[c].head; job && best_n > 0; prev = job, job = job->next) {
            if (job->due_ms > now)
                continue;
            int n = running(d, job);
            if ((job->max_in_flight > 0 && n >= fetcher_jobs_cap(job->max_in_flight)) ||
                n >= best_n)
                continue;
            best = job, best_prev = prev, best_cls = c, best_n = n;
        }
    }
    if (best)
        q_unlink(&d->q[best_cls], best_prev, best);
    return best;
}

/* Gives the fairest runnable job (pick_fair) to an idle worker; 1 when one
 * was given. Caller holds d->mu. */
static int dispatch_one(disp_t *d, long long now)
{
    for (int i = 0; i < d->f->concurrency; i++) {
        slot_t *s = &d->slots[i];
        job_t *job;
        if (s->state != SLOT_IDLE)
            continue;
        if (!(job = pick_fair(d, now)))
            return 0;
        d->deferred[job->cls] -= job->deferred;
        job->deferred = 0;
        s->w.attempts_carried = job->page_attempts;
        job->page_attempts = 0;
        s->job = job;
        s->state = SLOT_ASSIGNED;
        pthread_cond_broadcast(&d->work);
        return 1;
    }
    return 0;
}

static long long oldest_failure(long long oldest, const job_t *job)
{
    if (job && job->failing_since_ms && (!oldest || job->failing_since_ms < oldest))
        return job->failing_since_ms;
    return oldest;
}

/* Publishes readiness; logs when it changes. Caller holds d->mu. */
static void update_health(disp_t *d, long long now)
{
    long long oldest = 0;
    for (int c = 0; c < 2; c++)
        for (const job_t *job = d->q[c].head; job; job = job->next)
            oldest = oldest_failure(oldest, job);
    for (int i = 0; i < d->f->concurrency; i++)
        oldest = oldest_failure(oldest, d->slots[i].job);
    atomic_store(&failing_since_ms, oldest);
    atomic_store(&beat_ms, now);
    lt_metric_set(d->f->m.jobs_held, (int64_t)lt_offsets_pending(d->offsets));
    int unhealthy = oldest && now - oldest >= atomic_load(&stuck_ms);
    if (unhealthy && !d->unhealthy)
        lt_error("not ready: a job has failed for %.1f s; its partition commits "
                 "nothing until it succeeds",
                 (double)(now - oldest) / 1000);
    else if (!unhealthy && d->unhealthy)
        lt_info("ready again: no job has failed for long");
    d->unhealthy = unhealthy;
}

/* Pauses the partitions of parts not paused yet and records them. */
static void pause_more(disp_t *d, int cls, const rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_topic_partition_list_t *set = d->pausedset[cls], *add;
    add = rd_kafka_topic_partition_list_new(parts->cnt > 0 ? parts->cnt : 1);
    for (int i = 0; i < parts->cnt; i++)
        if (!rd_kafka_topic_partition_list_find(set, parts->elems[i].topic,
                                                parts->elems[i].partition)) {
            rd_kafka_topic_partition_list_add(add, parts->elems[i].topic,
                                              parts->elems[i].partition);
            rd_kafka_topic_partition_list_add(set, parts->elems[i].topic,
                                              parts->elems[i].partition);
        }
    if (add->cnt > 0)
        rd_kafka_pause_partitions(lt_consumer_handle(d->cons[cls]), add);
    rd_kafka_topic_partition_list_destroy(add);
}

/* Pausing covers the assignment and any partition assigned later
 * (check_assignment); resuming resumes exactly the partitions paused, even
 * those lost since: librdkafka 2.0.2 keeps an application pause across
 * losing a partition and getting it back, and resuming a partition that is
 * not paused can rewind its fetch position (librdkafka #4637), redelivering
 * jobs already taken. */
static void set_paused(disp_t *d, int cls, int pause)
{
    rd_kafka_t *rk = lt_consumer_handle(d->cons[cls]);
    if (d->paused[cls] == pause)
        return;
    if (pause) {
        rd_kafka_topic_partition_list_t *parts = NULL;
        if (rd_kafka_assignment(rk, &parts) != 0)
            return;
        pause_more(d, cls, parts);
        rd_kafka_topic_partition_list_destroy(parts);
    } else if (d->pausedset[cls]->cnt > 0) {
        rd_kafka_resume_partitions(rk, d->pausedset[cls]);
        rd_kafka_topic_partition_list_destroy(d->pausedset[cls]);
        d->pausedset[cls] = rd_kafka_topic_partition_list_new(4);
    }
    d->paused[cls] = pause;
}

static int other_partition(const job_t *job, const void *rktpar)
{
    return job->rkm->partition != ((const rd_kafka_topic_partition_t *)rktpar)->partition;
}

/* A partition no longer assigned is another consumer's now: its offsets are
 * forgotten (a job of it finishing here stores nothing) and its queued jobs
 * are left to the new owner, which starts at the first one not stored. */
static void revoked(disp_t *d, int cls, const rd_kafka_topic_partition_t *rktpar)
{
    size_t n = 0;
    job_t *job;
    lt_offsets_forget_partition(d->offsets, cls, rktpar->partition);
    while ((job = q_unlink_first(&d->q[cls], other_partition, rktpar))) {
        d->deferred[cls] -= job->deferred;
        job_free(job);
        n++;
    }
    if (n)
        lt_info("%s[%d] revoked: %zu queued job%s left to its new owner", rktpar->topic,
                (int)rktpar->partition, n, n > 1 ? "s" : "");
}

static void check_assignment(disp_t *d, int cls)
{
    rd_kafka_topic_partition_list_t *now = NULL, *old = d->assigned[cls];
    if (rd_kafka_assignment(lt_consumer_handle(d->cons[cls]), &now) != 0)
        return;
    int changed = !old || old->cnt != now->cnt;
    for (int i = 0; old && i < old->cnt; i++)
        if (!rd_kafka_topic_partition_list_find(now, old->elems[i].topic,
                                                old->elems[i].partition)) {
            revoked(d, cls, &old->elems[i]);
            changed = 1;
        }
    /* A partition assigned while the class is paused is paused too; one
     * paused before it was lost stays recorded, so resuming reaches it. */
    if (changed && d->paused[cls])
        pause_more(d, cls, now);
    if (old)
        rd_kafka_topic_partition_list_destroy(old);
    d->assigned[cls] = now;
}

/* Reads the job's integration and its max_in_flight, without blocking: a
 * job whose payload or integration is not readable now runs ungated (its
 * worker reports or retries it; the Redis limiter still holds). */
static void look_up_limit(const disp_t *d, job_t *job, long long now)
{
    lt_integration_t in;
    job->looked_ms = now;
    if (job->integration_id[0] &&
        lt_registry_cache_peek(d->f->integs, job->integration_id, &in) == 0)
        job->max_in_flight = in.max_in_flight;
}

static void note_integration(disp_t *d, job_t *job)
{
    lt_job_t parsed;
    char err[128];
    if (lt_job_decode(job->rkm->payload, job->rkm->len, &parsed, err, sizeof(err)) != LT_OK)
        return;
    memcpy(job->integration_id, parsed.integration_id, sizeof(job->integration_id));
    job->integration_hash = 14695981039346656037ULL; /* FNV-1a */
    for (const char *c = job->integration_id; *c; c++)
        job->integration_hash = (job->integration_hash ^ (unsigned char)*c) * 1099511628211ULL;
    look_up_limit(d, job, lt_clock_mono_ms());
}

/* Polls one consumer into its queue; 1 when a job arrived. */
static int fill(disp_t *d, int cls, int timeout_ms)
{
    size_t held = d->deferred[cls] + d->blocked[cls];
    size_t waiting = d->q[cls].len > held ? d->q[cls].len - held : 0;
    set_paused(d, cls, waiting >= (size_t)d->f->concurrency || d->q[cls].len >= DEFERRED_MAX);
    rd_kafka_message_t *rkm = lt_consumer_poll(d->cons[cls], timeout_ms);
    job_t *job = NULL;
    if (!rkm)
        return 0;
    if (rkm->err) {
        rd_kafka_message_destroy(rkm);
        return 0;
    }
    if (d->paused[cls]) { /* assigned since the last check: pause it too */
        const char *topic = rd_kafka_topic_name(rkm->rkt);
        rd_kafka_topic_partition_list_t *one = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(one, topic, rkm->partition);
        rd_kafka_pause_partitions(lt_consumer_handle(d->cons[cls]), one);
        if (!rd_kafka_topic_partition_list_find(d->pausedset[cls], topic, rkm->partition))
            rd_kafka_topic_partition_list_add(d->pausedset[cls], topic, rkm->partition);
        rd_kafka_topic_partition_list_destroy(one);
    }
    int skip = finished_here(d, cls, rkm, lt_clock_mono_ms()) ? 1 : in_hand(d, cls, rkm) ? 2 : 0;
    if ((!skip && !(job = calloc(1, sizeof(*job)))) ||
        lt_offsets_add(d->offsets, cls, rkm->partition, rkm->offset) != 0) {
        lt_error("out of memory tracking a job: stopping (unfinished jobs are redelivered)");
        free(job);
        rd_kafka_message_destroy(rkm);
        d->failed = 1;
        lt_signal_stop = 1;
        return 0;
    }
    part_t *p = part_of(d, cls, rkm->partition);
    if (p)
        p->taken = rkm->offset + 1;
    if (skip == 1) {
        lt_offsets_done(d->offsets, cls, rkm->partition, rkm->offset);
        store_ready(d);
    }
    if (skip) {
        /* skip 2: the job in hand finishes this offset (it is held again) */
        lt_metric_add(d->f->m.job_skipped, 1);
        lt_info("job %s[%d]@%lld %s before its partition came back: not run again", d->topics[cls],
                (int)rkm->partition, (long long)rkm->offset,
                skip == 1 ? "was finished here" : "is in hand here");
        rd_kafka_message_destroy(rkm);
        return 1;
    }
    job->rkm = rkm;
    job->cls = cls;
    job->seq = ++d->taken;
    note_integration(d, job);
    q_push_back(&d->q[cls], job);
    return 1;
}

static int idle_slots(const disp_t *d)
{
    int n = 0;
    for (int i = 0; i < d->f->concurrency; i++)
        n += d->slots[i].state == SLOT_IDLE;
    return n;
}

/* Sleeps until a worker finishes a job or ms pass; returns at once when
 * one finished since the last collect (its broadcast may have come before
 * this wait). */
static void wait_finished(disp_t *d, long ms)
{
    struct timespec ts;
    lt_clock_deadline(CLOCK_REALTIME, ms, &ts);
    pthread_mutex_lock(&d->mu);
    int finished = 0;
    for (int i = 0; i < d->f->concurrency; i++)
        finished |= d->slots[i].state == SLOT_FINISHED;
    if (!finished)
        pthread_cond_timedwait(&d->idle, &d->mu, &ts);
    pthread_mutex_unlock(&d->mu);
}

static void loop(disp_t *d)
{
    while (!lt_signal_stop) {
        long long now = lt_clock_mono_ms();
        if (now - d->assign_checked_ms >= ASSIGN_CHECK_MS) {
            check_assignment(d, 0);
            check_assignment(d, 1);
            d->assign_checked_ms = now;
        }
        pthread_mutex_lock(&d->mu);
        collect(d, now);
        while (dispatch_one(d, now))
            ;
        count_blocked(d, now);
        int idle = idle_slots(d); /* > 0: no job can run now */
        /* queued jobs that wait only for a slot of their integration: a
         * finishing job of it lets the next one run */
        int blocked = d->blocked[0] + d->blocked[1] > 0;
        update_health(d, now);
        pthread_mutex_unlock(&d->mu);
        /* live first: drain it before waiting on backfill */
        if (fill(d, 0, 0))
            continue;
        /* Idle workers wait for a new job from Kafka (the poll returns as
         * one comes), unless queued jobs wait for a running job of their
         * integration to finish; busy workers are waited for. Taking one
         * job a turn keeps the queue under the pause threshold while the
         * workers keep up: pausing drops what librdkafka has prefetched
         * and resuming fetches it again (a parked integration's 1,200 jobs
         * were dropped at 70 a second when each taken job was followed by
         * another at once). */
        fill(d, 1, idle && !blocked ? 50 : 0);
        if (!idle || blocked)
            wait_finished(d, idle ? 5 : 20);
    }
    atomic_store(&beat_ms, 0); /* not ready while shutting down */
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
    if (d->slots)
        collect(d, lt_clock_mono_ms());
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
    disp_t d;
    int rc = 1;
    memset(&d, 0, sizeof(d));
    d.f = f;
    d.rng = (unsigned)lt_clock_now_ms();
    pthread_mutex_init(&d.mu, NULL);
    pthread_cond_init(&d.work, NULL);
    pthread_cond_init(&d.idle, NULL);
    test_hook_init();
    d.pausedset[0] = rd_kafka_topic_partition_list_new(4);
    d.pausedset[1] = rd_kafka_topic_partition_list_new(4);
    if (!(d.offsets = lt_offsets_new()) || open_consumers(&d) != 0 || start_workers(&d) != 0) {
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
        _exit(d.failed || atomic_load(&f->fatal) ? 1 : 0);
    }
    rc = d.failed ? 1 : 0;
end:
    for (int c = 0; c < 2; c++) {
        job_t *job;
        while ((job = d.q[c].head)) {
            d.q[c].head = job->next;
            job_free(job);
        }
        if (d.assigned[c])
            rd_kafka_topic_partition_list_destroy(d.assigned[c]);
        rd_kafka_topic_partition_list_destroy(d.pausedset[c]);
        lt_consumer_destroy(d.cons[c]);
    }
    for (int i = 0; d.slots && i < f->concurrency; i++) {
        lt_limits_destroy(d.slots[i].w.lim);
        lt_redis_destroy(d.slots[i].w.redis);
        lt_http_destroy(d.slots[i].w.http);
    }
    free(d.slots);
    free(d.parts[0]);
    free(d.parts[1]);
    lt_offsets_destroy(d.offsets);
    return rc;
}
