/* ltvsync-sink: ltvsync.events -> ltv.events.v1, exactly once, effectively.
 *
 * Validates each event (ltv.event.v1), routes refusals to ltvsync.dlq, skips
 * events whose content the downstream already has (dedupe state in Redis,
 * see store.c) and writes the others keyed by event_id. The pipeline of one
 * batch is in batch.c. SIGTERM: stop polling, finish the batch in hand
 * within SHUTDOWN_GRACE, flush, commit, exit 0. */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "lt_cred.h"
#include "lt_daemon.h"
#include "lt_httpd.h"
#include "lt_log.h"
#include "lt_signal.h"
#include "sink.h"

#define STATS_EVERY_MS  10000
#define GRACE_MARGIN_MS 3000 /* kept for flush, commit and close */

int sink_give_up(sink_t *s)
{
    long long budget =
        s->grace_ms > 2 * GRACE_MARGIN_MS ? s->grace_ms - GRACE_MARGIN_MS : s->grace_ms / 2;
    if (!lt_signal_stop)
        return 0;
    if (!s->stop_at_ms)
        s->stop_at_ms = lt_clock_mono_ms();
    return lt_clock_mono_ms() - s->stop_at_ms >= budget;
}

void sink_sleep_ms(sink_t *s, long long ms)
{
    while (ms > 0 && !sink_give_up(s)) {
        long long step = ms < 50 ? ms : 50;
        struct timespec ts = {0, (long)step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

#define SINK_SLOTS 3
static sink_batch_t *slots[SINK_SLOTS]; /* see run() */

static int ready(void *opaque)
{
    sink_t *s = opaque;
    return atomic_load(&s->redis_ok);
}

static void register_metrics(sink_metrics_t *m)
{
    const char *w = "ltvsync_sink_events_written_total";
    const char *u = "ltvsync_sink_events_unchanged_total";
    char label[64];
    m->in = lt_metric_counter("ltvsync_sink_events_in_total", "events consumed", NULL);
    m->dlq = lt_metric_counter("ltvsync_sink_events_dlq_total",
                               "events refused and sent to the DLQ", NULL);
    m->redis_pauses = lt_metric_counter("ltvsync_sink_redis_pauses_total",
                                        "pauses because Redis was unreachable", NULL);
    m->retries =
        lt_metric_counter("ltvsync_sink_write_retries_total", "failed writes sent again", NULL);
    m->batches = lt_metric_counter("ltvsync_sink_batches_total", "batches done", NULL);
    m->produced = lt_metric_counter("ltvsync_sink_writes_sent_total",
                                    "writes handed to the downstream producer", NULL);
    m->found_again =
        lt_metric_counter("ltvsync_sink_takeover_found_total",
                          "writes of a sink that died before its record, found downstream "
                          "and not written again",
                          NULL);
    m->superseded = lt_metric_counter(
        "ltvsync_sink_takeover_superseded_total",
        "earlier versions of an event whose later version such a sink wrote and left last "
        "downstream, not written again (the latest wins)",
        NULL);
    m->unresolved = lt_metric_counter("ltvsync_sink_takeover_unresolved_total",
                                      "writes a sink that died may have made, that could not "
                                      "be looked for downstream (written again)",
                                      NULL);
    m->readbacks = lt_metric_counter("ltvsync_sink_takeover_reads_total",
                                     "reads of downstream after a takeover", NULL);
    m->uncommitted =
        lt_metric_gauge("ltvsync_sink_intent_finished_batches",
                        "finished batches the intents cover until a commit does", NULL);
    for (int i = 0; i < LT_EV_COUNT; i++) {
        snprintf(label, sizeof(label), "type=\"%s\"", lt_evtype_name((lt_evtype_t)i));
        m->written[i] = lt_metric_counter(w, "events written downstream", label);
        m->unchanged[i] = lt_metric_counter(u, "events skipped: content unchanged", label);
    }
}

/* Commits of the input topic: the finished batches they cover leave the
 * intent (intent.c). */
static void on_commit(void *arg, const char *topic, int32_t partition, int64_t offset)
{
    sink_t *s = arg;
    if (!strcmp(topic, s->topic_in))
        sink_committed(s, partition, offset);
}

static int setup(sink_t *s, const lt_config_t *cfg, char *err, size_t errlen)
{
    const char *topics[1];
    s->cfg = cfg;
    s->topic_down = lt_config_str(cfg, "TOPIC_DOWNSTREAM");
    s->topic_dlq = lt_config_str(cfg, "TOPIC_DLQ");
    s->max_bytes = (size_t)lt_config_int(cfg, "MAX_MESSAGE_BYTES");
    s->ttl_ms = lt_config_int(cfg, "DEDUPE_TTL");
    s->batch_size = (size_t)lt_config_int(cfg, "SINK_BATCH_SIZE");
    s->seen_max = (size_t)lt_config_int(cfg, "SINK_TAKEOVER_KEEP");
    s->seen_full = s->seen_max == 0;
    s->grace_ms = lt_config_int(cfg, "SHUTDOWN_GRACE");
    topics[0] = s->topic_in = lt_config_str(cfg, "TOPIC_EVENTS");
    snprintf(s->legacy_prefix, sizeof(s->legacy_prefix),
             "%sdd:", lt_config_str(cfg, "REDIS_PREFIX"));
    register_metrics(&s->m);
    if (!(s->record_call = sink_call_new())) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int k = 0; k < SINK_SLOTS; k++)
        if (!(slots[k] = sink_batch_new())) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    if (!(s->redis = lt_redis_new(lt_config_str(cfg, "REDIS_URL"), 2000, err, errlen)) ||
        !(s->redis_rec = lt_redis_new(lt_config_str(cfg, "REDIS_URL"), 2000, err, errlen)) ||
        sink_store_setup(s, lt_config_str(cfg, "REDIS_URL"), lt_config_str(cfg, "REDIS_PREFIX"),
                         err, errlen) < 0)
        return -1;
    if (sink_intent_key(s, lt_config_str(cfg, "REDIS_PREFIX")) < 0) {
        snprintf(err, errlen, "LTVSYNC_REDIS_PREFIX too long");
        return -1;
    }
    atomic_store(&s->redis_ok, lt_redis_ping(s->redis));
    /* Unknown (Redis not reachable yet): read the earlier layout too. */
    if (sink_store_legacy_check(s) != 0)
        s->legacy = 1;
    if (!(s->down = lt_producer_new(cfg, "DOWNSTREAM_KAFKA_", err, errlen)) ||
        !(s->local = lt_producer_new(cfg, "KAFKA_", err, errlen)))
        return -1;
    if (sink_partitioner_setup(s, err, errlen) < 0)
        return -1;
    lt_producer_warm(s->down, &s->topic_down, 1, 1000);
    lt_producer_warm(s->local, &s->topic_dlq, 1, 1000);
    sink_parts_setup(s); /* a failure is logged; batches try again */
    /* An 8 MiB queue (about 0.1 s of events) refilled at once, as in the
     * normalizer (see lt_consumer_refill_every): peak RSS 50 MiB, was 139
     * with librdkafka's 64 MiB, at the same speed (bench/sink.sh). */
    static const char *const cons_tuning[] = {"queued.max.messages.kbytes", "8192", NULL};
    if (!(s->cons = lt_consumer_new_tuned(cfg, lt_config_str(cfg, "GROUP_ID"), topics, 1,
                                          cons_tuning, err, errlen)))
        return -1;
    lt_consumer_refill_every(s->cons, 20);
    lt_consumer_on_commit(s->cons, on_commit, s);
    return 0;
}

/* One line every STATS_EVERY_MS while there is traffic. */
static void log_stats(sink_t *s, long long *last_ms, int64_t *last_in)
{
    int64_t in = lt_metric_get(s->m.in), w = 0, u = 0;
    if (lt_clock_mono_ms() - *last_ms < STATS_EVERY_MS)
        return;
    *last_ms = lt_clock_mono_ms();
    if (in == *last_in)
        return;
    *last_in = in;
    for (int i = 0; i < LT_EV_COUNT; i++) {
        w += lt_metric_get(s->m.written[i]);
        u += lt_metric_get(s->m.unchanged[i]);
    }
    lt_info("events in %lld, written %lld, unchanged %lld, dlq %lld", (long long)in, (long long)w,
            (long long)u, (long long)lt_metric_get(s->m.dlq));
}

/* Three slots in turn. While batch N+2 is collected, checked, looked up
 * and produced, N+1's acknowledgements are on their way and N's record is
 * on the wire; then N is finished (its offsets stored), N+1 settled and its
 * record sent. Offsets are stored batch after batch, each only once its
 * hashes are recorded. Returns 0, or 1 when a producer died. On shutdown
 * with a batch given up, the slots keep their messages (a producer may
 * still hold them by reference): main destroys the slots after the
 * producers. */
static int run(sink_t *s)
{
    sink_batch_t *prev = NULL, *rec = NULL; /* produced; settled, record on the wire */
    long long last_ms = lt_clock_mono_ms();
    int64_t last_in = 0;
    int rc = 0;
    for (int k = 0; !lt_signal_stop || prev || rec; k = (k + 1) % SINK_SLOTS) {
        sink_batch_t *cur = slots[k];
        size_t n = lt_signal_stop ? 0 : sink_batch_collect(s, cur, prev || rec ? 0 : 100);
        lt_err_t st = n ? sink_batch_start(s, cur, prev, rec) : LT_OK, sr = LT_OK;
        if (st == LT_ERR_RETRIABLE) /* shutdown in a Redis outage: nothing of cur was produced */
            sink_batch_release(cur);
        sink_batch_t *next = n && st == LT_OK ? cur : NULL;
        if (prev && st != LT_ERR_FATAL)
            sr = sink_batch_settle(s, prev, next);
        if (rec) { /* before prev's record: one in flight, offsets in batch order */
            if (sink_batch_finish(s, rec) != LT_OK)
                break;
            sink_batch_release(rec);
            rec = NULL;
        }
        if (st == LT_ERR_FATAL || sr == LT_ERR_FATAL) {
            rc = 1;
            break;
        }
        if (prev) {
            sink_batch_record(s, prev);
            rec = prev;
        }
        prev = next;
        if (sr != LT_OK) { /* shutdown gave up on part of rec: store what is done */
            if (sink_batch_finish(s, rec) == LT_OK)
                rec = NULL;
            break;
        }
        lt_producer_poll(s->down, 0);
        lt_producer_poll(s->local, 0);
        log_stats(s, &last_ms, &last_in);
    }
    log_stats(s, &last_ms, &last_in);
    return rc;
}

int main(int argc, char **argv)
{
    static sink_t s;
    lt_config_t *cfg = NULL;
    lt_httpd_t *httpd = NULL;
    lt_httpd_opts_t hopts;
    char err[512];
    int rc;
    /* librdkafka compresses and decompresses each message set with a fresh
     * zstd context and buffer (MiBs): above glibc's mmap threshold each was
     * a new mapping, every page of it a fault (a quarter of the sink's CPU
     * in bench/sink.sh). Keep such blocks in the heap, and the heap. */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    rc = lt_daemon_start(argc, argv, "ltvsync-sink", LT_SVC_SINK, NULL, &cfg);
    if (rc >= 0)
        return rc;
    rc = 1;
    if (setup(&s, cfg, err, sizeof(err)) < 0) {
        lt_error("start-up: %s", err);
        goto end;
    }
    hopts = lt_httpd_opts_from_config(cfg);
    if (!(httpd = lt_httpd_start(&hopts, ready, &s, err, sizeof(err)))) {
        lt_error("http endpoint: %s", err);
        goto end;
    }
    lt_info("consuming %s -> %s (dlq %s), dedupe ttl %lld ms", lt_config_str(cfg, "TOPIC_EVENTS"),
            s.topic_down, s.topic_dlq, s.ttl_ms);
    rc = run(&s);
end:
    /* Producers first: they may hold messages of the slots by reference.
     * Then the slots, whose consumed messages go back before the consumer
     * closes and commits the stored offsets. */
    lt_producer_destroy(s.down, 5000);
    lt_producer_destroy(s.local, 5000);
    for (int k = 0; k < SINK_SLOTS; k++)
        sink_batch_destroy(slots[k]);
    sink_call_destroy(s.record_call);
    lt_consumer_destroy(s.cons); /* commits the stored offsets */
    sink_store_close(&s);
    sink_parts_close(&s);
    sink_done_close(&s);
    sink_seen_drop(&s);
    lt_redis_destroy(s.redis);
    lt_redis_destroy(s.redis_rec);
    lt_httpd_stop(httpd);
    lt_config_destroy(cfg);
    lt_info("stopped");
    return rc;
}
