/* lt_kafka: see lt_kafka.h.
 *
 * Threads: librdkafka logs, errors and delivery reports are all events on the
 * handle's main queue (log.queue + rd_kafka_set_log_queue); they run in
 * whichever thread calls lt_producer_poll/wait/send or lt_consumer_poll,
 * never in librdkafka's internal threads. */
#include "lt_kafka.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "lt_clock.h"
#include "lt_log.h"

#define LT_QUEUE_FULL_WAIT_MS 30000 /* lt_producer_send on a full queue */
#define LT_ADMIN_TIMEOUT_MS   15000

/* Waiters of lt_producer_wait take turns: one polls librdkafka at a time
 * (polling), the others sleep on served until a poll returns. A delivery
 * report goes to whichever thread polls, so a waiter that polled itself
 * could sleep out its whole poll timeout while another thread served its
 * report; with one poller every report wakes its waiter at once. */
struct lt_producer_s {
    rd_kafka_t *rk;
    pthread_mutex_t mu;
    pthread_cond_t served; /* broadcast after every poll (CLOCK_MONOTONIC) */
    int polling;           /* a waiter is in rd_kafka_poll (under mu) */
};

struct lt_acks_s {
    atomic_long pending;
    atomic_long failed;
    atomic_int first_err; /* rd_kafka_resp_err_t of the first failure */
    atomic_int refs;      /* the owner's + one per message not yet reported */
    /* Where the last successful delivery landed (-1: none yet). */
    atomic_int last_partition;
    atomic_llong last_offset;
};

struct lt_consumer_s {
    rd_kafka_t *rk;
    rd_kafka_resp_err_t last_err; /* rate-limits repeated error logs */
    time_t last_err_at;
    atomic_long polled; /* messages returned, for the refill thread */
    atomic_int stop;
    int refill_ms; /* > 0: the refill thread runs */
    pthread_t refill;
    lt_commit_fn on_commit; /* lt_consumer_on_commit */
    void *on_commit_arg;
};

/* syslog levels (0 emerg .. 7 debug) to lt_log levels. */
static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    lt_log_level_t lvl = level <= 3   ? LT_LOG_ERROR
                         : level == 4 ? LT_LOG_WARN
                         : level <= 6 ? LT_LOG_INFO
                                      : LT_LOG_DEBUG;
    LT_LOG(lvl, "kafka %s: %s: %s", rd_kafka_name(rk), fac, buf);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    /* Brokers going up and down are expected; librdkafka reconnects itself. */
    if (err == RD_KAFKA_RESP_ERR__TRANSPORT || err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        lt_warn("kafka %s: %s", rd_kafka_name(rk), reason);
    else
        lt_error("kafka %s: %s: %s", rd_kafka_name(rk), rd_kafka_err2name((rd_kafka_resp_err_t)err),
                 reason);
}

void lt_kafka_conf_set_logging(rd_kafka_conf_t *conf)
{
    char errstr[256];

    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set(conf, "log.queue", "true", errstr, sizeof(errstr));
}

void lt_kafka_route_logs(rd_kafka_t *rk)
{
    /* NULL = the main queue, served by rd_kafka_poll (and by
     * rd_kafka_consumer_poll after rd_kafka_poll_set_consumer). */
    rd_kafka_set_log_queue(rk, NULL);
}

/* Sets name=value or fails with errstr. */
static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *errstr,
                    size_t errlen)
{
    return rd_kafka_conf_set(conf, name, value, errstr, errlen) == RD_KAFKA_CONF_OK ? 0 : -1;
}

static int conf_set_all(rd_kafka_conf_t *conf, const char *const *kv, char *errstr, size_t errlen)
{
    for (; kv[0]; kv += 2)
        if (conf_set(conf, kv[0], kv[1], errstr, errlen) < 0)
            return -1;
    return 0;
}

static int has_brokers(rd_kafka_conf_t *conf)
{
    char buf[16];
    size_t sz = sizeof(buf);

    return rd_kafka_conf_get(conf, "bootstrap.servers", buf, &sz) == RD_KAFKA_CONF_OK && sz > 1;
}

/* Appends the caller's NULL-terminated name, value pairs to defaults[16]
 * after its first `used` entries, keeping a NULL pair at the end (pairs
 * that do not fit are dropped; callers pass at most a few). */
static void add_pairs(const char *defaults[16], size_t used, const char *const *tuning)
{
    for (size_t i = used; tuning && *tuning && i + 2 < 16; i += 2, tuning += 2) {
        defaults[i] = tuning[0];
        defaults[i + 1] = tuning[1];
    }
}

/* A conf with logging, our defaults (kv pairs, NULL-terminated), then the
 * pass-throughs of `prefix` over them, so operators may override defaults.
 * lt_config_apply_kafka picks the brokers (downstream falls back to the main
 * cluster). */
static rd_kafka_conf_t *conf_for(const lt_config_t *cfg, const char *prefix,
                                 const char *const *defaults, char *errstr, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    lt_kafka_conf_set_logging(conf);
    if ((defaults && conf_set_all(conf, defaults, errstr, errlen) < 0) ||
        lt_config_apply_kafka(cfg, prefix, conf, errstr, errlen) != LT_OK)
        goto fail;
    if (!has_brokers(conf)) {
        snprintf(errstr, errlen, "no Kafka brokers: set LTVSYNC_KAFKA_BOOTSTRAP_SERVERS");
        goto fail;
    }
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

lt_acks_t *lt_acks_new(void)
{
    lt_acks_t *a = calloc(1, sizeof(*a));

    if (a) {
        atomic_store(&a->refs, 1);
        atomic_store(&a->last_partition, -1);
        atomic_store(&a->last_offset, -1);
    }
    return a;
}

void lt_acks_release(lt_acks_t *a)
{
    if (a && atomic_fetch_sub(&a->refs, 1) == 1)
        free(a);
}

long lt_acks_pending(const lt_acks_t *a)
{
    return atomic_load(&a->pending);
}

long lt_acks_failed(const lt_acks_t *a)
{
    return atomic_load(&a->failed);
}

int lt_acks_last(const lt_acks_t *a, int32_t *partition, int64_t *offset)
{
    *offset = (int64_t)atomic_load(&a->last_offset);
    *partition = (int32_t)atomic_load(&a->last_partition);
    return *partition >= 0 ? 0 : -1;
}

rd_kafka_resp_err_t lt_acks_first_err(const lt_acks_t *a)
{
    return (rd_kafka_resp_err_t)atomic_load(&a->first_err);
}

const char *lt_kafka_err2str(rd_kafka_resp_err_t err)
{
    return err == LT_KAFKA_ERR_UNVERIFIED ? "reported delivered without an offset (not verified)"
                                          : rd_kafka_err2str(err);
}

/* Wakes the waiters after reports were served outside lt_producer_wait. */
static void served(lt_producer_t *p)
{
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->served);
    pthread_mutex_unlock(&p->mu);
}

/* A success report without an offset. With acks=all a broker's answer
 * always carries the batch's base offset; librdkafka 2.0.2's idempotent
 * producer reports a message without one when it "implicitly acks" it: a
 * later request of the partition succeeded, so it assumes this one's did.
 * After a partition leader moves, the old leader's refusal is taken for such
 * a lost answer and its records are reported delivered without ever being
 * written (tests/integration/test_devbroker_faults.py asserts that every
 * record lost so was reported without an offset; in the probes behind it no
 * written record was).
 * Such a report counts as a failure: the caller sends the message again,
 * which may write it twice when the earlier answer was only lost; a
 * duplicate is visible downstream (same event id), a loss is not. */
rd_kafka_resp_err_t lt_kafka_delivery_err(const rd_kafka_message_t *rkm)
{
    if (rkm->err)
        return rkm->err;
    return rkm->offset < 0 ? LT_KAFKA_ERR_UNVERIFIED : RD_KAFKA_RESP_ERR_NO_ERROR;
}

/* Logs an unverified report, at most once a second per process. */
static void log_unverified(rd_kafka_t *rk, const rd_kafka_message_t *rkm)
{
    static atomic_llong last_log;
    long long now = lt_clock_mono_ms(), then = atomic_load(&last_log);

    if (now - then >= 1000 && atomic_compare_exchange_strong(&last_log, &then, now))
        lt_warn("kafka %s: %s [%d] reported delivered without an offset (librdkafka's implicit "
                "ack, as after a leader move); counted as failed, to be sent again",
                rd_kafka_name(rk), rd_kafka_topic_name(rkm->rkt), (int)rkm->partition);
}

/* Delivery report: msg_opaque is the caller's lt_acks_t (or NULL), which
 * holds a reference for this message. The failure is recorded before
 * pending drops, so a waiter that sees 0 pending also sees the failure; the
 * message's reference goes last. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    lt_acks_t *a = rkm->_private;
    rd_kafka_resp_err_t err;
    int zero = 0;

    if (!a)
        return;
    if ((err = lt_kafka_delivery_err(rkm)) == LT_KAFKA_ERR_UNVERIFIED)
        log_unverified(rk, rkm);
    if (err) {
        atomic_fetch_add(&a->failed, 1);
        atomic_compare_exchange_strong(&a->first_err, &zero, (int)err);
    } else {
        atomic_store(&a->last_offset, (long long)rkm->offset);
        atomic_store(&a->last_partition, (int)rkm->partition);
    }
    atomic_fetch_sub(&a->pending, 1);
    lt_acks_release(a);
}

lt_producer_t *lt_producer_new(const lt_config_t *cfg, const char *prefix, char *errstr,
                               size_t errlen)
{
    return lt_producer_new_tuned(cfg, prefix, NULL, errstr, errlen);
}

lt_producer_t *lt_producer_new_tuned(const lt_config_t *cfg, const char *prefix,
                                     const char *const *tuning, char *errstr, size_t errlen)
{
    const char *defaults[16] = {"compression.type", "zstd", "linger.ms", "5"};
    add_pairs(defaults, 4, tuning);
    static const char *const forced[] = {"enable.idempotence", "true", "acks", "all", NULL, NULL};
    rd_kafka_conf_t *conf = conf_for(cfg, prefix, defaults, errstr, errlen);
    lt_producer_t *p = NULL;

    if (!conf)
        return NULL;
    /* Delivery reports drive checkpoints: these are not negotiable. */
    if (conf_set_all(conf, forced, errstr, errlen) < 0)
        goto fail;
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    if (!(p = calloc(1, sizeof(*p)))) {
        snprintf(errstr, errlen, "out of memory");
        goto fail;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->served, &ca);
    pthread_condattr_destroy(&ca);
    if (!(p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errlen)))
        goto fail;
    conf = NULL; /* now owned by rk */
    lt_kafka_route_logs(p->rk);
    return p;
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    if (p) {
        pthread_cond_destroy(&p->served);
        pthread_mutex_destroy(&p->mu);
    }
    free(p);
    return NULL;
}

static lt_err_t produce(lt_producer_t *p, const char *topic, int32_t partition, const void *key,
                        size_t keylen, const void *val, size_t vallen, int msgflags,
                        const char *hname, const void *hval, size_t hlen, lt_acks_t *acks,
                        char *errstr, size_t errlen)
{
    long long deadline = lt_clock_mono_ms() + LT_QUEUE_FULL_WAIT_MS;
    rd_kafka_resp_err_t err;

    if (acks) { /* the message's reference, given back by on_delivery */
        atomic_fetch_add(&acks->refs, 1);
        atomic_fetch_add(&acks->pending, 1);
    }
    for (;;) {
        if (hname)
            err = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                                    RD_KAFKA_V_KEY(key, key ? keylen : 0),
                                    RD_KAFKA_V_VALUE((void *)(uintptr_t)val, vallen),
                                    RD_KAFKA_V_HEADER(hname, hval, (ssize_t)hlen),
                                    RD_KAFKA_V_MSGFLAGS(msgflags), RD_KAFKA_V_OPAQUE(acks),
                                    RD_KAFKA_V_END);
        else
            err = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                                    RD_KAFKA_V_KEY(key, key ? keylen : 0),
                                    RD_KAFKA_V_VALUE((void *)(uintptr_t)val, vallen),
                                    RD_KAFKA_V_MSGFLAGS(msgflags), RD_KAFKA_V_OPAQUE(acks),
                                    RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || lt_clock_mono_ms() >= deadline)
            break;
        if (rd_kafka_poll(p->rk, 100) > 0) /* delivery reports free queue space */
            served(p);
    }
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        return LT_OK;
    if (acks) { /* never reported: the caller's reference keeps refs > 0 */
        atomic_fetch_sub(&acks->pending, 1);
        atomic_fetch_sub(&acks->refs, 1);
    }
    snprintf(errstr, errlen, "produce to %s: %s", topic, rd_kafka_err2str(err));
    /* An idempotent producer's fatal error ends this producer for good; a
     * message over message.max.bytes (or otherwise refused as such) can
     * never be sent. */
    if (err == RD_KAFKA_RESP_ERR__FATAL)
        return LT_ERR_FATAL;
    return err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ? LT_ERR_PERMANENT : LT_ERR_RETRIABLE;
}

lt_err_t lt_producer_send(lt_producer_t *p, const char *topic, const void *key, size_t keylen,
                          const void *val, size_t vallen, lt_acks_t *acks, char *errstr,
                          size_t errlen)
{
    return produce(p, topic, RD_KAFKA_PARTITION_UA, key, keylen, val, vallen, RD_KAFKA_MSG_F_COPY,
                   NULL, NULL, 0, acks, errstr, errlen);
}

lt_err_t lt_producer_send_owned(lt_producer_t *p, const char *topic, const void *key, size_t keylen,
                                void *val, size_t vallen, lt_acks_t *acks, char *errstr,
                                size_t errlen)
{
    lt_err_t rc = produce(p, topic, RD_KAFKA_PARTITION_UA, key, keylen, val, vallen,
                          RD_KAFKA_MSG_F_FREE, NULL, NULL, 0, acks, errstr, errlen);
    if (rc != LT_OK)
        free(val); /* librdkafka took it only on success */
    return rc;
}

lt_err_t lt_producer_send_ref(lt_producer_t *p, const char *topic, const void *key, size_t keylen,
                              const void *val, size_t vallen, lt_acks_t *acks, char *errstr,
                              size_t errlen)
{
    return produce(p, topic, RD_KAFKA_PARTITION_UA, key, keylen, val, vallen, 0, NULL, NULL, 0,
                   acks, errstr, errlen);
}

lt_err_t lt_producer_send_ref_to(lt_producer_t *p, const char *topic, int32_t partition,
                                 const void *key, size_t keylen, const void *val, size_t vallen,
                                 const char *hname, const void *hval, size_t hlen, lt_acks_t *acks,
                                 char *errstr, size_t errlen)
{
    return produce(p, topic, partition, key, keylen, val, vallen, 0, hname, hval, hlen, acks,
                   errstr, errlen);
}

lt_err_t lt_producer_wait(lt_producer_t *p, lt_acks_t *acks, int timeout_ms)
{
    long long deadline = lt_clock_mono_ms() + timeout_ms;
    long long left;

    pthread_mutex_lock(&p->mu);
    while (atomic_load(&acks->pending) > 0 && (left = deadline - lt_clock_mono_ms()) > 0) {
        if (left > 100)
            left = 100;
        if (!p->polling) {
            p->polling = 1;
            pthread_mutex_unlock(&p->mu);
            rd_kafka_poll(p->rk, (int)left);
            pthread_mutex_lock(&p->mu);
            p->polling = 0;
            pthread_cond_broadcast(&p->served);
        } else {
            struct timespec ts;
            lt_clock_deadline(CLOCK_MONOTONIC, left, &ts);
            pthread_cond_timedwait(&p->served, &p->mu, &ts);
        }
    }
    pthread_mutex_unlock(&p->mu);
    if (atomic_load(&acks->pending) > 0 || atomic_load(&acks->failed) > 0)
        return LT_ERR_RETRIABLE;
    return LT_OK;
}

lt_err_t lt_producer_flush(lt_producer_t *p, int timeout_ms)
{
    rd_kafka_resp_err_t err = rd_kafka_flush(p->rk, timeout_ms);
    served(p);
    return err == RD_KAFKA_RESP_ERR_NO_ERROR ? LT_OK : LT_ERR_RETRIABLE;
}

void lt_producer_warm(lt_producer_t *p, const char *const *topics, size_t n, int timeout_ms)
{
    for (size_t i = 0; i < n; i++) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *rkt;
        rd_kafka_resp_err_t err;
        if (!topics[i] || !*topics[i] || !(rkt = rd_kafka_topic_new(p->rk, topics[i], NULL)))
            continue;
        err = rd_kafka_metadata(p->rk, 0, rkt, &md, timeout_ms);
        if (err)
            lt_warn("kafka: metadata of %s: %s (its first send may wait for it)", topics[i],
                    rd_kafka_err2str(err));
        else
            rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
    }
}

void lt_producer_poll(lt_producer_t *p, int timeout_ms)
{
    if (rd_kafka_poll(p->rk, timeout_ms) > 0)
        served(p);
}

void lt_producer_destroy(lt_producer_t *p, int timeout_ms)
{
    rd_kafka_resp_err_t err;

    if (!p)
        return;
    if (p->rk) {
        err = rd_kafka_flush(p->rk, timeout_ms);
        if (err)
            lt_warn("kafka producer: %d messages not delivered at shutdown: %s",
                    rd_kafka_outq_len(p->rk), rd_kafka_err2str(err));
        rd_kafka_destroy(p->rk);
    }
    pthread_cond_destroy(&p->served);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

rd_kafka_t *lt_producer_handle(lt_producer_t *p)
{
    return p->rk;
}

/* Offset commits (auto or not) of a group consumer: each partition
 * committed goes to its owner's hook. Served where the consumer is polled. */
static void on_offset_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                             rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    lt_consumer_t *c = opaque;
    (void)rk;
    if (err || !offsets || !c || !c->on_commit)
        return;
    for (int i = 0; i < offsets->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &offsets->elems[i];
        if (!tp->err && tp->offset >= 0)
            c->on_commit(c->on_commit_arg, tp->topic, tp->partition, tp->offset);
    }
}

/* owner NULL: a group-less reader of whole partitions (lt_kafka_read_all)
 * that never commits and reports partition EOF; else the group consumer
 * owner whose commits go to its hook. */
static rd_kafka_t *consumer_new(const lt_config_t *cfg, const char *prefix, const char *group_id,
                                lt_consumer_t *owner, const char *const *tuning, char *errstr,
                                size_t errlen)
{
    int reader = owner == NULL;
    /* session.timeout.ms: librdkafka's 45 s default also delays a restarted
     * member's assignment that long on the devbroker's mock coordinator.
     * fetch.wait.max.ms: the mock answers a Fetch only when this wait ends,
     * even when data came meanwhile (a job waited 360 ms at the 500 ms
     * default, 65 ms at 100), and every hop of the pipeline (integrations,
     * jobs, raw, events) pays it; a real broker answers as data comes either
     * way, so the cost there is at most 10 empty fetches a second per idle
     * partition leader. */
    const char *defaults[16] = {"enable.auto.commit", "true",  "auto.offset.reset", "earliest",
                                "session.timeout.ms", "10000", "fetch.wait.max.ms", "100"};
    add_pairs(defaults, 8, tuning);
    rd_kafka_conf_t *conf = conf_for(cfg, prefix, defaults, errstr, errlen);
    rd_kafka_t *rk;

    if (!conf)
        return NULL;
    /* Offsets are stored only once output is acknowledged. */
    if (conf_set(conf, "enable.auto.offset.store", "false", errstr, errlen) ||
        conf_set(conf, "enable.partition.eof", reader ? "true" : "false", errstr, errlen) ||
        (reader && conf_set(conf, "enable.auto.commit", "false", errstr, errlen)) ||
        /* librdkafka's assign() needs a group.id even for a reader that
         * never joins a group or commits. */
        conf_set(conf, "group.id", group_id ? group_id : "ltvsync-reader", errstr, errlen)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    if (owner) {
        rd_kafka_conf_set_offset_commit_cb(conf, on_offset_commit);
        rd_kafka_conf_set_opaque(conf, owner);
    }
    if (!(rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errlen))) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    lt_kafka_route_logs(rk);
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

lt_consumer_t *lt_consumer_new(const lt_config_t *cfg, const char *group_id,
                               const char *const *topics, size_t ntopics, char *errstr,
                               size_t errlen)
{
    return lt_consumer_new_tuned(cfg, group_id, topics, ntopics, NULL, errstr, errlen);
}

lt_consumer_t *lt_consumer_new_tuned(const lt_config_t *cfg, const char *group_id,
                                     const char *const *topics, size_t ntopics,
                                     const char *const *tuning, char *errstr, size_t errlen)
{
    lt_consumer_t *c = calloc(1, sizeof(*c));
    rd_kafka_topic_partition_list_t *subs = NULL;
    rd_kafka_resp_err_t err;
    size_t i;

    if (!c) {
        snprintf(errstr, errlen, "out of memory");
        return NULL;
    }
    if (!(c->rk = consumer_new(cfg, "KAFKA_", group_id, c, tuning, errstr, errlen)))
        goto fail;
    subs = rd_kafka_topic_partition_list_new((int)ntopics);
    for (i = 0; i < ntopics; i++)
        rd_kafka_topic_partition_list_add(subs, topics[i], RD_KAFKA_PARTITION_UA);
    if ((err = rd_kafka_subscribe(c->rk, subs))) {
        snprintf(errstr, errlen, "subscribe: %s", rd_kafka_err2str(err));
        goto fail;
    }
    rd_kafka_topic_partition_list_destroy(subs);
    return c;
fail:
    if (subs)
        rd_kafka_topic_partition_list_destroy(subs);
    if (c->rk)
        rd_kafka_destroy(c->rk);
    free(c);
    return NULL;
}

/* librdkafka 2.0.2 stops fetching a partition while the consumer's queue is
 * over queued.min.messages or queued.max.messages.kbytes and decides again
 * only when its broker thread wakes: an op, I/O on that connection, or after
 * 1 s (fetch.queue.backoff.ms, 2.2, made that wait settable). A consumer
 * whose queue drains in less than 1 s then sits idle for the rest of it,
 * unless the queue is made large enough to hold 1 s of work. A request to
 * the leaders wakes their threads: while the application consumes, this
 * thread sends one ListOffsets (offsets_for_times, "latest") to every
 * leader of the assignment each refill_ms, and the next refill starts
 * within that time of the queue falling below its bounds. The answer is
 * not used. */
static void *refill_main(void *arg)
{
    lt_consumer_t *c = arg;
    long seen = 0, polled;
    rd_kafka_topic_partition_list_t *parts;
    struct timespec nap = {c->refill_ms / 1000, (long)(c->refill_ms % 1000) * 1000000L};

    while (!atomic_load(&c->stop)) {
        nanosleep(&nap, NULL);
        if ((polled = atomic_load(&c->polled)) == seen || atomic_load(&c->stop))
            continue;
        seen = polled;
        if (rd_kafka_assignment(c->rk, &parts))
            continue;
        for (int i = 0; i < parts->cnt; i++)
            parts->elems[i].offset = RD_KAFKA_OFFSET_END;
        if (parts->cnt > 0)
            rd_kafka_offsets_for_times(c->rk, parts, 200);
        rd_kafka_topic_partition_list_destroy(parts);
    }
    return NULL;
}

int lt_consumer_refill_every(lt_consumer_t *c, int interval_ms)
{
    sigset_t all, old;
    int rc;

    if (c->refill_ms > 0 || interval_ms <= 0)
        return 0;
    c->refill_ms = interval_ms;
    /* Signals stay with the threads that wait for them. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&c->refill, NULL, refill_main, c);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        c->refill_ms = 0;
        lt_warn("kafka consumer: refill thread: %s", strerror(rc));
        return -1;
    }
    return 0;
}

rd_kafka_message_t *lt_consumer_poll(lt_consumer_t *c, int timeout_ms)
{
    rd_kafka_message_t *rkm = rd_kafka_consumer_poll(c->rk, timeout_ms);
    time_t now;

    if (rkm && !rkm->err)
        atomic_fetch_add_explicit(&c->polled, 1, memory_order_relaxed);
    if (!rkm || !rkm->err)
        return rkm;
    now = time(NULL);
    /* The same error at most once every 10 s; partition EOF is no error. */
    if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF &&
        (rkm->err != c->last_err || now - c->last_err_at >= 10)) {
        lt_warn("kafka consumer: %s", rd_kafka_message_errstr(rkm));
        c->last_err = rkm->err;
        c->last_err_at = now;
    }
    rd_kafka_message_destroy(rkm);
    return NULL;
}

lt_err_t lt_consumer_store_offset(lt_consumer_t *c, const char *topic, int32_t partition,
                                  int64_t next_offset)
{
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_resp_err_t err;

    rd_kafka_topic_partition_list_add(parts, topic, partition)->offset = next_offset;
    err = rd_kafka_offsets_store(c->rk, parts);
    if (!err)
        err = parts->elems[0].err;
    rd_kafka_topic_partition_list_destroy(parts);
    if (err) {
        /* Typically the partition was revoked: its message will be redone. */
        lt_warn("kafka consumer: store offset %s[%d]@%lld: %s", topic, (int)partition,
                (long long)next_offset, rd_kafka_err2str(err));
        return LT_ERR_RETRIABLE;
    }
    return LT_OK;
}

void lt_consumer_on_commit(lt_consumer_t *c, lt_commit_fn fn, void *arg)
{
    c->on_commit = fn;
    c->on_commit_arg = arg;
}

lt_err_t lt_consumer_store(lt_consumer_t *c, const rd_kafka_message_t *rkm)
{
    return lt_consumer_store_offset(c, rd_kafka_topic_name(rkm->rkt), rkm->partition,
                                    rkm->offset + 1);
}

void lt_consumer_destroy(lt_consumer_t *c)
{
    rd_kafka_resp_err_t err;

    if (!c)
        return;
    if (c->refill_ms > 0) {
        atomic_store(&c->stop, 1);
        pthread_join(c->refill, NULL);
    }
    if (c->rk) {
        err = rd_kafka_commit(c->rk, NULL, 0);
        if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
            lt_warn("kafka consumer: final commit: %s", rd_kafka_err2str(err));
        rd_kafka_consumer_close(c->rk);
        rd_kafka_destroy(c->rk);
    }
    free(c);
}

rd_kafka_t *lt_consumer_handle(lt_consumer_t *c)
{
    return c->rk;
}

/* Waits for the CreateTopics result and checks the one topic's error. */
static lt_err_t create_topic_result(rd_kafka_queue_t *q, const char *topic, char *errstr,
                                    size_t errlen)
{
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, LT_ADMIN_TIMEOUT_MS + 1000);
    const rd_kafka_CreateTopics_result_t *res;
    const rd_kafka_topic_result_t **tres;
    rd_kafka_resp_err_t err;
    const char *msg;
    size_t n = 0;
    lt_err_t rc = LT_OK;

    if (!ev) {
        snprintf(errstr, errlen, "create topic %s: timed out", topic);
        return LT_ERR_RETRIABLE;
    }
    if ((err = rd_kafka_event_error(ev))) {
        msg = rd_kafka_event_error_string(ev);
    } else {
        res = rd_kafka_event_CreateTopics_result(ev);
        tres = res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
        err = n == 1 ? rd_kafka_topic_result_error(tres[0]) : RD_KAFKA_RESP_ERR__BAD_MSG;
        msg = n == 1 ? rd_kafka_topic_result_error_string(tres[0]) : NULL;
    }
    if (err && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        snprintf(errstr, errlen, "create topic %s: %s: %s", topic, rd_kafka_err2name(err),
                 msg ? msg : rd_kafka_err2str(err));
        rc = LT_ERR_RETRIABLE;
    }
    rd_kafka_event_destroy(ev);
    return rc;
}

/* 1 when the cluster already has the topic. Asked first because
 * CreateTopics needs a controller, which the devbroker's mock cluster does
 * not provide; the mock instead creates topics on a metadata request (with
 * its default partition count), so on the devbroker this always says yes. */
static int topic_exists(rd_kafka_t *rk, const char *topic)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int yes;

    if (!rkt)
        return 0;
    yes = rd_kafka_metadata(rk, 0, rkt, &md, LT_ADMIN_TIMEOUT_MS) == 0 && md->topic_cnt == 1 &&
          (md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR ||
           md->topics[0].err == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE);
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return yes;
}

lt_err_t lt_kafka_create_topic(const lt_config_t *cfg, const char *topic, int partitions,
                               const char *const *configs, char *errstr, size_t errlen)
{
    /* Asking whether the topic exists must not create it. */
    static const char *const defaults[] = {"allow.auto.create.topics", "false", NULL, NULL};
    rd_kafka_conf_t *conf = conf_for(cfg, "KAFKA_", defaults, errstr, errlen);
    rd_kafka_t *rk = NULL;
    rd_kafka_NewTopic_t *nt = NULL;
    rd_kafka_AdminOptions_t *opts = NULL;
    rd_kafka_queue_t *q = NULL;
    lt_err_t rc = LT_ERR_RETRIABLE;
    char tmp[256];

    if (!conf)
        return LT_ERR_PERMANENT;
    if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errlen)))
        goto done;
    conf = NULL; /* now owned by rk */
    lt_kafka_route_logs(rk);
    if (topic_exists(rk, topic)) {
        rc = LT_OK;
        goto done;
    }
    /* -1: the broker's default replication factor. */
    if (!(nt = rd_kafka_NewTopic_new(topic, partitions, -1, tmp, sizeof(tmp)))) {
        snprintf(errstr, errlen, "create topic %s: %s", topic, tmp);
        rc = LT_ERR_PERMANENT;
        goto done;
    }
    for (; configs && configs[0] && configs[1]; configs += 2)
        rd_kafka_NewTopic_set_config(nt, configs[0], configs[1]);
    opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(opts, LT_ADMIN_TIMEOUT_MS, tmp, sizeof(tmp));
    q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, opts, q);
    rc = create_topic_result(q, topic, errstr, errlen);
    rd_kafka_poll(rk, 0); /* serve queued log lines */
done:
    if (q)
        rd_kafka_queue_destroy(q);
    if (opts)
        rd_kafka_AdminOptions_destroy(opts);
    if (nt)
        rd_kafka_NewTopic_destroy(nt);
    if (conf)
        rd_kafka_conf_destroy(conf);
    if (rk)
        rd_kafka_destroy(rk);
    return rc;
}

/* One partition of a read_all: its end at the start, and whether it is done. */
typedef struct {
    int32_t partition;
    int64_t high;
    int done;
} lt_read_part_t;

/* The caller's stop (lt_kafka_read_from): asked between slices of a
 * second at most, so a shutdown never waits for a read's whole timeout. */
typedef struct {
    lt_kafka_stop_fn fn;
    void *arg;
} read_stop_t;

static int read_stopped(const read_stop_t *stop, char *errstr, size_t errlen)
{
    if (!stop || !stop->fn || !stop->fn(stop->arg))
        return 0;
    snprintf(errstr, errlen, "read stopped: shutting down");
    return 1;
}

/* The offsets at `which` (RD_KAFKA_OFFSET_BEGINNING or _END) of n
 * partitions, in out[], asked in slices of a second so that stop is asked
 * between them, until deadline. rd_kafka_offsets_for_times keeps to its
 * timeout; rd_kafka_query_watermark_offsets waits for its request's own
 * (socket.timeout.ms), whatever timeout it is given. */
static rd_kafka_resp_err_t offsets_at(rd_kafka_t *rk, const char *topic, const int32_t *partitions,
                                      int n, int64_t which, int64_t *out, const read_stop_t *stop,
                                      long long deadline, char *errstr, size_t errlen)
{
    for (;;) {
        long long left = deadline - lt_clock_mono_ms();
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
        rd_kafka_resp_err_t err;
        for (int i = 0; i < n; i++)
            rd_kafka_topic_partition_list_add(l, topic, partitions[i])->offset = which;
        err = rd_kafka_offsets_for_times(rk, l, left > 1000 ? 1000 : left > 0 ? (int)left : 0);
        for (int i = 0; i < n && !err; i++) { /* updated in place, in order */
            if (l->elems[i].err)
                err = l->elems[i].err;
            out[i] = l->elems[i].offset;
        }
        rd_kafka_topic_partition_list_destroy(l);
        if (err != RD_KAFKA_RESP_ERR__TIMED_OUT || left <= 1000)
            return err;
        if (read_stopped(stop, errstr, errlen))
            return err;
    }
}

rd_kafka_resp_err_t lt_kafka_end_offsets(rd_kafka_t *rk, const char *topic,
                                         const int32_t *partitions, int n, int64_t *ends,
                                         int timeout_ms)
{
    return offsets_at(rk, topic, partitions, n, RD_KAFKA_OFFSET_END, ends, NULL,
                      lt_clock_mono_ms() + timeout_ms, NULL, 0);
}

/* Both ends of n partitions: the log start in los[], the end in his[]. */
static rd_kafka_resp_err_t ends_of(rd_kafka_t *rk, const char *topic, const int32_t *partitions,
                                   int n, int64_t *los, int64_t *his, const read_stop_t *stop,
                                   long long deadline, char *errstr, size_t errlen)
{
    rd_kafka_resp_err_t err = offsets_at(rk, topic, partitions, n, RD_KAFKA_OFFSET_BEGINNING, los,
                                         stop, deadline, errstr, errlen);
    return err ? err
               : offsets_at(rk, topic, partitions, n, RD_KAFKA_OFFSET_END, his, stop, deadline,
                            errstr, errlen);
}

int lt_kafka_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms, int32_t **ids,
                        rd_kafka_resp_err_t *err)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int cnt = -1;

    *ids = NULL;
    if ((*err = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms)))
        goto done;
    if (md->topic_cnt != 1 || md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        cnt = 0; /* no such topic */
        goto done;
    }
    if ((*err = md->topics[0].err))
        goto done;
    if (!(*ids = calloc((size_t)md->topics[0].partition_cnt + 1, sizeof(**ids)))) {
        *err = RD_KAFKA_RESP_ERR__FAIL;
        goto done;
    }
    for (cnt = 0; cnt < md->topics[0].partition_cnt; cnt++)
        (*ids)[cnt] = md->topics[0].partitions[cnt].id;
done:
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return cnt;
}

/* Fetches the partitions of topic and their high watermarks. Returns the
 * count (0 for a missing or empty topic), -1 on error. */
static int read_plan(rd_kafka_t *rk, const char *topic, lt_read_part_t **out, int timeout_ms,
                     char *errstr, size_t errlen)
{
    rd_kafka_resp_err_t err;
    long long deadline = lt_clock_mono_ms() + timeout_ms;
    int32_t *ids = NULL;
    int64_t *los = NULL, *his = NULL;
    int i, cnt, n = -1;

    *out = NULL;
    if ((cnt = lt_kafka_partitions(rk, topic, timeout_ms, &ids, &err)) <= 0) {
        if (cnt < 0)
            snprintf(errstr, errlen, "metadata %s: %s", topic, rd_kafka_err2str(err));
        free(ids);
        return cnt;
    }
    *out = calloc((size_t)cnt + 1, sizeof(**out));
    los = calloc((size_t)cnt + 1, sizeof(*los));
    his = calloc((size_t)cnt + 1, sizeof(*his));
    if (!*out || !los || !his) {
        snprintf(errstr, errlen, "out of memory");
        goto done;
    }
    if ((err = ends_of(rk, topic, ids, cnt, los, his, NULL, deadline, errstr, errlen))) {
        snprintf(errstr, errlen, "watermarks of %s: %s", topic, rd_kafka_err2str(err));
        goto done;
    }
    for (i = 0, n = 0; i < cnt; i++)
        if (his[i] > los[i])
            (*out)[n++] = (lt_read_part_t){ids[i], his[i], 0};
done:
    if (n < 0) {
        free(*out);
        *out = NULL;
    }
    free(ids);
    free(los);
    free(his);
    return n;
}

/* Hands each message below its partition's end to fn; marks partitions done. */
static int read_one(rd_kafka_message_t *rkm, lt_read_part_t *parts, int n, lt_kafka_read_fn fn,
                    void *opaque)
{
    int i;

    for (i = 0; i < n && parts[i].partition != rkm->partition; i++)
        ;
    if (i == n || parts[i].done)
        return 0;
    if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        parts[i].done = 1;
        return 1;
    }
    if (rkm->offset < parts[i].high)
        fn(rkm, opaque);
    if (rkm->offset + 1 >= parts[i].high) {
        parts[i].done = 1;
        return 1;
    }
    return 0;
}

static lt_err_t read_loop(rd_kafka_t *rk, const char *topic, lt_read_part_t *parts, int n, int left,
                          lt_kafka_read_fn fn, void *opaque, const read_stop_t *stop,
                          int timeout_ms, char *errstr, size_t errlen)
{
    long long deadline = lt_clock_mono_ms() + timeout_ms;
    rd_kafka_message_t *rkm;

    while (left > 0) {
        if (read_stopped(stop, errstr, errlen))
            return LT_ERR_RETRIABLE;
        if (lt_clock_mono_ms() >= deadline) {
            snprintf(errstr, errlen,
                     "read %s: timed out with %d partitions "
                     "unfinished",
                     topic, left);
            return LT_ERR_RETRIABLE;
        }
        if (!(rkm = rd_kafka_consumer_poll(rk, 100)))
            continue;
        if (rkm->err && rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            snprintf(errstr, errlen, "read %s: %s", topic, rd_kafka_message_errstr(rkm));
            rd_kafka_message_destroy(rkm);
            return LT_ERR_RETRIABLE;
        }
        left -= read_one(rkm, parts, n, fn, opaque);
        rd_kafka_message_destroy(rkm);
    }
    return LT_OK;
}

lt_err_t lt_kafka_read_all(const lt_config_t *cfg, const char *topic, lt_kafka_read_fn fn,
                           void *opaque, int timeout_ms, char *errstr, size_t errlen)
{
    rd_kafka_t *rk = consumer_new(cfg, "KAFKA_", NULL, NULL, NULL, errstr, errlen);
    rd_kafka_topic_partition_list_t *assign = NULL;
    lt_read_part_t *parts = NULL;
    lt_err_t rc = LT_ERR_RETRIABLE;
    int i, n;

    if (!rk)
        return LT_ERR_PERMANENT;
    if ((n = read_plan(rk, topic, &parts, timeout_ms, errstr, errlen)) <= 0) {
        rc = n == 0 ? LT_OK : LT_ERR_RETRIABLE;
        goto done;
    }
    assign = rd_kafka_topic_partition_list_new(n);
    for (i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(assign, topic, parts[i].partition)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    if (rd_kafka_assign(rk, assign)) {
        snprintf(errstr, errlen, "read %s: assign failed", topic);
        goto done;
    }
    rc = read_loop(rk, topic, parts, n, n, fn, opaque, NULL, timeout_ms, errstr, errlen);
done:
    if (assign)
        rd_kafka_topic_partition_list_destroy(assign);
    free(parts);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}

lt_err_t lt_kafka_read_from(const lt_config_t *cfg, const char *prefix, const char *topic,
                            const int32_t *partitions, const int64_t *from, int n,
                            lt_kafka_read_fn fn, void *opaque, lt_kafka_stop_fn stop_fn,
                            void *stop_arg, int timeout_ms, char *errstr, size_t errlen)
{
    rd_kafka_t *rk = consumer_new(cfg, prefix, NULL, NULL, NULL, errstr, errlen);
    rd_kafka_topic_partition_list_t *assign = NULL;
    lt_read_part_t *parts = calloc((size_t)n + 1, sizeof(*parts));
    int64_t *los = calloc((size_t)n + 1, sizeof(*los)), *his = calloc((size_t)n + 1, sizeof(*his));
    lt_err_t rc = LT_ERR_RETRIABLE;
    read_stop_t stop = {stop_fn, stop_arg};
    long long deadline = lt_clock_mono_ms() + timeout_ms;
    int left = 0;

    if (!rk || !parts || !los || !his) {
        if (rk)
            snprintf(errstr, errlen, "out of memory");
        rc = rk ? LT_ERR_RETRIABLE : LT_ERR_PERMANENT;
        goto done;
    }
    assign = rd_kafka_topic_partition_list_new(n);
    rd_kafka_resp_err_t err =
        ends_of(rk, topic, partitions, n, los, his, &stop, deadline, errstr, errlen);
    if (err) {
        if (!read_stopped(&stop, errstr, errlen))
            snprintf(errstr, errlen, "watermarks of %s: %s", topic, rd_kafka_err2str(err));
        goto done;
    }
    for (int i = 0; i < n; i++) {
        /* An offset before the log's start (deleted by retention) reads
         * from the start. */
        parts[i] = (lt_read_part_t){partitions[i], his[i], from[i] >= his[i]};
        if (!parts[i].done) {
            rd_kafka_topic_partition_list_add(assign, topic, partitions[i])->offset =
                from[i] > los[i] ? from[i] : los[i];
            left++;
        }
    }
    if (left && rd_kafka_assign(rk, assign)) {
        snprintf(errstr, errlen, "read %s: assign failed", topic);
        goto done;
    }
    /* read_loop counts every part as unfinished: the done ones are skipped
     * by read_one, so count only the assigned ones. */
    rc = left ? read_loop(rk, topic, parts, n, left, fn, opaque, &stop,
                          (int)(deadline > lt_clock_mono_ms() ? deadline - lt_clock_mono_ms() : 0),
                          errstr, errlen)
              : LT_OK;
done:
    if (assign)
        rd_kafka_topic_partition_list_destroy(assign);
    free(parts);
    free(los);
    free(his);
    if (rk) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    return rc;
}

/* ---- lt_tail: a whole topic, then whatever is appended -------------------- */

struct lt_tail_s {
    rd_kafka_t *rk;
    char *topic;
    int planned;            /* assigned; 0 while the topic is unknown */
    long long next_plan_ms; /* when to look for the topic again */
    lt_read_part_t *parts;  /* end of each partition at assignment */
    int64_t *pos;           /* next offset to read, per part */
    int nparts, left;       /* partitions not yet read to that end */
    rd_kafka_resp_err_t last_err;
    time_t last_err_at;
};

lt_tail_t *lt_tail_new(const lt_config_t *cfg, const char *topic, char *errstr, size_t errlen)
{
    lt_tail_t *t = calloc(1, sizeof(*t));
    if (!t || !(t->topic = strdup(topic))) {
        snprintf(errstr, errlen, "out of memory");
        free(t);
        return NULL;
    }
    if (!(t->rk = consumer_new(cfg, "KAFKA_", NULL, NULL, NULL, errstr, errlen))) {
        free(t->topic);
        free(t);
        return NULL;
    }
    return t;
}

/* Every partition (empty ones too) from the beginning; the ends known now
 * are what "caught up" means. Partitions added to the topic later are not
 * followed (a compacted control topic keeps its partition count). */
static int tail_plan(lt_tail_t *t, int timeout_ms)
{
    rd_kafka_topic_partition_list_t *assign = NULL;
    rd_kafka_resp_err_t err;
    long long deadline = lt_clock_mono_ms() + timeout_ms;
    int32_t *ids = NULL;
    int64_t *los = NULL, *his = NULL;
    int i, cnt, n = 0, ok = 0;

    if ((cnt = lt_kafka_partitions(t->rk, t->topic, timeout_ms, &ids, &err)) <= 0) {
        if (cnt < 0)
            lt_warn("tail %s: metadata: %s", t->topic, rd_kafka_err2str(err));
        goto done;
    }
    t->parts = calloc((size_t)cnt, sizeof(*t->parts));
    t->pos = calloc((size_t)cnt, sizeof(*t->pos));
    los = calloc((size_t)cnt, sizeof(*los));
    his = calloc((size_t)cnt, sizeof(*his));
    assign = rd_kafka_topic_partition_list_new(cnt);
    if (!t->parts || !t->pos || !los || !his)
        goto done;
    if ((err = ends_of(t->rk, t->topic, ids, cnt, los, his, NULL, deadline, NULL, 0))) {
        lt_warn("tail %s: watermarks: %s", t->topic, rd_kafka_err2str(err));
        goto done;
    }
    for (i = 0; i < cnt; i++) {
        t->parts[n++] = (lt_read_part_t){ids[i], his[i], his[i] <= los[i]};
        rd_kafka_topic_partition_list_add(assign, t->topic, ids[i])->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    }
    if ((err = rd_kafka_assign(t->rk, assign))) {
        lt_warn("tail %s: assign: %s", t->topic, rd_kafka_err2str(err));
        goto done;
    }
    t->nparts = n;
    t->left = 0;
    for (i = 0; i < n; i++)
        t->left += !t->parts[i].done;
    lt_debug("tail %s: %d partitions, %d to read to their end", t->topic, n, t->left);
    ok = 1;
done:
    if (!ok) {
        free(t->parts);
        free(t->pos);
        t->parts = NULL;
        t->pos = NULL;
    }
    free(ids);
    free(los);
    free(his);
    if (assign)
        rd_kafka_topic_partition_list_destroy(assign);
    return ok;
}

/* Follows one message or partition EOF: positions, "caught up". */
static void tail_track(lt_tail_t *t, const rd_kafka_message_t *rkm)
{
    for (int k = 0; k < t->nparts; k++) {
        if (t->parts[k].partition != rkm->partition)
            continue;
        int64_t next = rkm->err ? rkm->offset : rkm->offset + 1;
        if (next > t->pos[k])
            t->pos[k] = next;
        if (!t->parts[k].done && t->pos[k] >= t->parts[k].high) {
            t->parts[k].done = 1;
            t->left--;
        }
    }
}

int lt_tail_poll(lt_tail_t *t, lt_kafka_read_fn fn, void *opaque, int timeout_ms)
{
    long long deadline = lt_clock_mono_ms() + timeout_ms;
    int handed = 0;

    if (!t->planned) {
        if (lt_clock_mono_ms() < t->next_plan_ms || !(t->planned = tail_plan(t, 5000))) {
            t->next_plan_ms = lt_clock_mono_ms() + 1000;
            long long left = deadline - lt_clock_mono_ms();
            /* Wait as asked, so a caller's loop does not spin; nothing is
             * assigned, so this serves only errors and logs (the main queue
             * is the consumer's: rd_kafka_poll is not allowed here). */
            rd_kafka_message_t *rkm = rd_kafka_consumer_poll(t->rk, left > 1000 ? 1000
                                                                    : left > 0  ? (int)left
                                                                                : 0);
            if (rkm)
                rd_kafka_message_destroy(rkm);
            return 0;
        }
    }
    /* Wait up to timeout_ms for the first message, then take what is
     * already there without waiting (at most 10,000 a call). */
    for (int i = 0; i < 10000; i++) {
        long long left = handed ? 0 : deadline - lt_clock_mono_ms();
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(t->rk, left > 0 ? (int)left : 0);
        if (!rkm)
            break;
        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            tail_track(t, rkm);
        } else if (!rkm->err) {
            tail_track(t, rkm);
            fn(rkm, opaque);
            handed++;
        } else {
            time_t now = time(NULL);
            if (rkm->err != t->last_err || now - t->last_err_at >= 10) {
                lt_warn("tail %s: %s", t->topic, rd_kafka_message_errstr(rkm));
                t->last_err = rkm->err;
                t->last_err_at = now;
            }
        }
        rd_kafka_message_destroy(rkm);
    }
    return handed;
}

int lt_tail_read_to_end(lt_tail_t *t, lt_kafka_read_fn fn, void *opaque, int timeout_ms,
                        char *errstr, size_t errlen)
{
    long long deadline = lt_clock_mono_ms() + timeout_ms;
    int64_t *end = NULL;
    int32_t *ids = NULL;
    int rc = -1;

    while (!t->planned && lt_clock_mono_ms() < deadline)
        lt_tail_poll(t, fn, opaque, (int)(deadline - lt_clock_mono_ms()));
    if (!t->planned) {
        snprintf(errstr, errlen, "read %s: its partitions cannot be listed", t->topic);
        return -1;
    }
    end = calloc((size_t)t->nparts + 1, sizeof(*end));
    ids = calloc((size_t)t->nparts + 1, sizeof(*ids));
    if (!end || !ids) {
        snprintf(errstr, errlen, "out of memory");
        goto done;
    }
    for (int k = 0; k < t->nparts; k++)
        ids[k] = t->parts[k].partition;
    rd_kafka_resp_err_t err = offsets_at(t->rk, t->topic, ids, t->nparts, RD_KAFKA_OFFSET_END, end,
                                         NULL, deadline, NULL, 0);
    if (err) {
        snprintf(errstr, errlen, "read %s: watermarks: %s", t->topic, rd_kafka_err2str(err));
        goto done;
    }
    for (;;) {
        int behind = 0;
        for (int k = 0; k < t->nparts; k++)
            behind += t->pos[k] < end[k];
        if (!behind) {
            rc = 0;
            break;
        }
        if (lt_clock_mono_ms() >= deadline) {
            snprintf(errstr, errlen, "read %s: timed out with %d partitions behind", t->topic,
                     behind);
            break;
        }
        lt_tail_poll(t, fn, opaque, 100);
    }
done:
    free(end);
    free(ids);
    return rc;
}

int lt_tail_caught_up(const lt_tail_t *t)
{
    return t->planned && t->left == 0;
}

void lt_tail_destroy(lt_tail_t *t)
{
    if (!t)
        return;
    rd_kafka_consumer_close(t->rk);
    rd_kafka_destroy(t->rk);
    free(t->parts);
    free(t->pos);
    free(t->topic);
    free(t);
}
