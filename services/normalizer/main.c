/* ltvsync-normalizer: ltvsync.raw -> ltvsync.events (and ltvsync.dlq).
 *
 * Flow: read the integrations, then loop: take up to NORM_BATCH_MAX raw
 * messages, turn them into events (batch.c), then wait until Kafka
 * acknowledged every output of the previous batch and store its offsets,
 * repeat. SIGTERM stops polling, finishes the batches in hand and commits. For a replay, run it under another group
 * (LTVSYNC_GROUP_ID; `ltvctl replay` does this, with REPLAY_INTEGRATION
 * naming the one integration to rebuild): chargeback state in Redis answers
 * old offsets from history, so the replay yields the same events. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_cred.h"
#include "lt_daemon.h"
#include "lt_httpd.h"
#include "lt_log.h"
#include "lt_offsets.h"
#include "lt_signal.h"
#include "normalizer.h"

static int ready(void *opaque)
{
    const norm_t *n = opaque;
    return atomic_load(&n->ready);
}

static void register_metrics(norm_metrics_t *m)
{
    char label[48];
    m->rows = lt_metric_counter("ltvsync_normalizer_rows_total", "raw rows processed", NULL);
    m->rebuilt =
        lt_metric_counter("ltvsync_normalizer_rebuild_rows_total",
                          "raw rows read again only to rebuild lost chargeback state", NULL);
    for (int i = 0; i < LT_EV_COUNT; i++) {
        snprintf(label, sizeof(label), "type=\"%s\"", lt_evtype_name((lt_evtype_t)i));
        m->events[i] =
            lt_metric_counter("ltvsync_normalizer_events_total", "events produced by type", label);
    }
    m->dlq = lt_metric_counter("ltvsync_normalizer_dlq_total", "rows sent to the DLQ", NULL);
    m->partial = lt_metric_counter("ltvsync_normalizer_partial_orders_total",
                                   "PARTIAL orders (no event: no money moved)", NULL);
    m->authorize = lt_metric_counter("ltvsync_normalizer_authorize_only_total",
                                     "AUTHORIZE transactions (no event)", NULL);
    m->reference = lt_metric_counter("ltvsync_normalizer_reference_rows_total",
                                     "campaign rows (no event)", NULL);
    m->redis_pauses = lt_metric_counter("ltvsync_normalizer_redis_pauses_total",
                                        "pauses because Redis was unreachable", NULL);
    m->produce_retries = lt_metric_counter("ltvsync_normalizer_batch_retries_total",
                                           "batches produced again after a failure", NULL);
    m->integration_reloads = lt_metric_counter("ltvsync_normalizer_integration_reloads_total",
                                               "reads of the integrations topic", NULL);
}

/* Takes up to NORM_BATCH_MAX messages or NORM_BATCH_BYTES: waits up to
 * wait_ms for the first, not for the rest. */
static size_t collect(norm_t *n, norm_msg_t *msgs, int wait_ms)
{
    size_t count = 0, bytes = 0;
    while (count < NORM_BATCH_MAX && bytes < NORM_BATCH_BYTES && !lt_signal_stop) {
        rd_kafka_message_t *rkm = lt_consumer_poll(n->cons, count ? 0 : wait_ms);
        if (!rkm)
            break;
        if (rkm->err) {
            rd_kafka_message_destroy(rkm);
            continue;
        }
        if (norm_partition_seen(n, rkm) != 0)
            lt_warn("out of memory noting partition %d", (int)rkm->partition);
        msgs[count].rebuild_only = norm_history_row(n, rkm);
        msgs[count].skip =
            n->replay_prefix[0] && (rkm->key_len < strlen(n->replay_prefix) ||
                                    memcmp(rkm->key, n->replay_prefix, strlen(n->replay_prefix)));
        bytes += rkm->len;
        msgs[count++].rkm = rkm;
    }
    return count;
}

/* Stores, per partition, the offset after the batch's last message: the
 * batch is acknowledged as a whole and batches are stored in order, so every
 * message is finished (lt_offsets then keeps one offset per partition, for
 * any number of partitions). Out of memory: nothing is stored; the next
 * batch's offsets cover this one's. */
static void store_offsets(norm_t *n, const norm_msg_t *msgs, size_t count)
{
    lt_offsets_t *t = lt_offsets_new();
    int ok = t != NULL, cls;
    int32_t partition;
    int64_t next;
    for (size_t i = 0; ok && i < count; i++) {
        const rd_kafka_message_t *rkm = msgs[i].rkm;
        if ((ok = lt_offsets_add(t, 0, rkm->partition, rkm->offset) == 0))
            lt_offsets_done(t, 0, rkm->partition, rkm->offset);
    }
    while (ok && lt_offsets_take(t, &cls, &partition, &next))
        lt_consumer_store_offset(n->cons, rd_kafka_topic_name(msgs[0].rkm->rkt), partition, next);
    if (!ok)
        lt_warn("out of memory: offsets of a batch of %zu rows not stored", count);
    lt_offsets_destroy(t);
}

static void store_and_free(norm_t *n, norm_batch_t *b)
{
    store_offsets(n, b->msgs, b->count);
    norm_batch_release(b);
}

/* Two slots in turn: batch N+1 is made and produced while N's acks are on
 * their way; N's offsets are stored once N is acknowledged, N+1's only after
 * that. prev is the batch awaiting its acks. */
static norm_batch_t slots[NORM_SLOTS];

static lt_consumer_t *consumer_new(const lt_config_t *cfg, char *err, size_t errlen);

/* Adds to back, per partition, the offset of b's first row there (the
 * lowest wins). */
static void note_first(rd_kafka_topic_partition_list_t *back, const norm_batch_t *b)
{
    for (size_t i = 0; i < b->count; i++) {
        const rd_kafka_message_t *rkm = b->msgs[i].rkm;
        const char *topic = rd_kafka_topic_name(rkm->rkt);
        rd_kafka_topic_partition_t *tp =
            rd_kafka_topic_partition_list_find(back, topic, rkm->partition);
        if (!tp) {
            tp = rd_kafka_topic_partition_list_add(back, topic, rkm->partition);
            tp->offset = rkm->offset;
        } else if (rkm->offset < tp->offset) {
            tp->offset = rkm->offset;
        }
    }
}

/* Sends the consumer back to back's offsets (seek purges what it fetched
 * past them). 0, or -1 when a partition could not be sought (revoked
 * meanwhile, the seek timed out). */
static int seek_back(norm_t *n, rd_kafka_topic_partition_list_t *back)
{
    rd_kafka_error_t *error;
    int rc = 0;
    if (!back->cnt)
        return 0;
    if ((error = rd_kafka_seek_partitions(lt_consumer_handle(n->cons), back, 5000))) {
        lt_warn("chargeback state rebuild: seek: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        return -1;
    }
    for (int i = 0; i < back->cnt; i++) {
        if (back->elems[i].err) {
            lt_warn("chargeback state rebuild: seek of partition %d to offset %lld: %s",
                    (int)back->elems[i].partition, (long long)back->elems[i].offset,
                    rd_kafka_err2str(back->elems[i].err));
            rc = -1;
        }
    }
    return rc;
}

/* The chargeback state of n->lost[] is gone: the batch before cur is
 * settled and stored, cur is dropped unstored (its rows come again, and
 * what it produced already is the same events again: the sink's dedupe
 * keeps them from downstream), the lost partitions' first offsets are
 * stored, and the consumer is sent back, without leaving its group, to
 * each lost partition's first offset and to the first row of every other
 * partition in a dropped batch: every row of a lost partition runs through
 * the script again, in order, and nothing dropped is skipped; the rows
 * before a dropped batch only rebuild their state (norm_partitions_rewind
 * sets history_end: their events are downstream already). A new
 * consumer cost a rejoin, a rebalance of the whole group (9 s on the dev
 * broker); it is the fallback when a seek fails: it starts from the
 * committed offsets, which the same rules set. 0, or -1 when no consumer
 * could be made (the process exits; restarted, it finds the state missing
 * again and does the same). */
static int rebuild(norm_t *n, norm_batch_t *prev, norm_batch_t *cur)
{
    char err[512];
    rd_kafka_topic_partition_list_t *back = rd_kafka_topic_partition_list_new(8);
    if (prev && norm_batch_settle(n, prev, NULL) == 0) {
        store_and_free(n, prev);
    } else if (prev) {
        note_first(back, prev);
        norm_batch_release(prev);
    }
    /* cur's events are sent by reference into its arena: wait them out */
    while (lt_producer_flush(n->prod, 1000) != LT_OK && !lt_signal_stop)
        ;
    note_first(back, cur);
    norm_batch_release(cur);
    norm_partitions_rewind(n, back);
    int sought = seek_back(n, back);
    rd_kafka_topic_partition_list_destroy(back);
    if (sought == 0)
        return 0;
    lt_consumer_destroy(n->cons); /* commits what is stored */
    if (!(n->cons = consumer_new(n->cfg, err, sizeof(err)))) {
        lt_error("chargeback state rebuild: a new consumer: %s", err);
        return -1;
    }
    return 0;
}

static int run(norm_t *n)
{
    norm_batch_t *prev = NULL;
    for (int k = 0; !lt_signal_stop || prev; k = (k + 1) % NORM_SLOTS) {
        norm_batch_t *cur = &slots[k];
        int started;
        /* With a batch awaiting acks, no input right now means idle: settle
         * it at once (norm_batch_settle flushes) rather than after a wait. */
        cur->count = lt_signal_stop ? 0 : collect(n, cur->msgs, prev ? 0 : 100);
        /* Readiness follows this Redis read too: a batch of rows without
         * chargeback state never asks Redis, so without it /readyz stayed
         * 200 through a 15 s Redis freeze. */
        atomic_store(&n->ready, norm_integ_refresh(n));
        started = cur->count ? norm_batch_start(n, cur) : 0;
        if (started == NORM_LOST) {
            if (rebuild(n, prev, cur) != 0)
                return 1;
            prev = NULL;
            continue;
        }
        if (started != 0) {
            lt_info("shutdown before a batch of %zu rows was produced; it will be redelivered",
                    cur->count);
            norm_batch_release(cur);
        }
        norm_batch_t *next = cur->count ? cur : NULL;
        if (!prev) {
            prev = next;
            continue;
        }
        int rc = norm_batch_settle(n, prev, next);
        if (rc < 0) {
            lt_info("shutdown with batches unacknowledged; they will be redelivered");
            norm_batch_release(prev);
            if (next)
                norm_batch_release(next);
            break;
        }
        store_and_free(n, prev);
        if (rc == 1)
            store_and_free(n, next);
        prev = rc == 1 ? NULL : next;
    }
    return 0;
}

static int setup(norm_t *n, const lt_config_t *cfg, char *err, size_t errlen)
{
    const char *replay;
    n->cfg = cfg;
    n->topic_raw = lt_config_str(cfg, "TOPIC_RAW");
    n->topic_events = lt_config_str(cfg, "TOPIC_EVENTS");
    n->topic_dlq = lt_config_str(cfg, "TOPIC_DLQ");
    n->prefix = lt_config_str(cfg, "REDIS_PREFIX");
    n->max_message = (size_t)lt_config_int(cfg, "MAX_MESSAGE_BYTES");
    if ((replay = lt_config_str(cfg, "REPLAY_INTEGRATION")) && strcmp(replay, "*")) {
        snprintf(n->replay_prefix, sizeof(n->replay_prefix), "%.64s/", replay);
        lt_info("replay of integration %s", replay);
    }
    register_metrics(&n->m);
    if (!(n->redis = lt_redis_new(lt_config_str(cfg, "REDIS_URL"), 5000, err, errlen)))
        return -1;
    /* ltvsync.events is a hop the sink reads at once: lz4 (zstd cost a third
     * of the CPU per row) and fuller produce requests (linger 50 ms: 8-22 %
     * more rows/s than 5 ms; the two batch slots hide the wait). Measured by
     * bench/normalizer.sh; LTVSYNC_KAFKA_* still override. */
    static const char *const tuning[] = {"compression.type", "lz4", "linger.ms", "50", NULL};
    if (!(n->prod = lt_producer_new_tuned(cfg, "KAFKA_", tuning, err, errlen)))
        return -1;
    const char *out_topics[] = {n->topic_events, n->topic_dlq};
    lt_producer_warm(n->prod, out_topics, 2, 1000);
    if (norm_integ_load(n) != 0)
        lt_warn("integrations not readable yet; retrying when rows arrive");
    n->cons = consumer_new(cfg, err, errlen);
    if (n->cons)
        lt_consumer_refill_every(n->cons, 20);
    atomic_store(&n->ready, n->cons != NULL && lt_redis_ping(n->redis));
    return n->cons ? 0 : -1;
}

static lt_consumer_t *consumer_new(const lt_config_t *cfg, char *err, size_t errlen)
{
    const char *group = lt_config_str(cfg, "GROUP_ID"),
               *topics[] = {lt_config_str(cfg, "TOPIC_RAW")};
    /* librdkafka 2.0.2 stops fetching once its queue holds queued.min.messages
     * (100,000) or queued.max.messages.kbytes and looks again only when its
     * broker thread wakes, after up to 1 s (fetch.queue.backoff.ms came in
     * 2.2). Without help the queue had to hold 1 s of work (128 MiB; with
     * 16 MiB the loop sat idle 0.85 s per refill). The refill thread (setup)
     * wakes the fetchers every 20 ms while rows flow, so 4 MiB, 27 ms of
     * rows at 150,000 a second, keeps the loop fed: peak RSS 108 MiB, was
     * 249 (bench/normalizer.sh). */
    static const char *const cons_tuning[] = {"queued.max.messages.kbytes", "4096", NULL};
    return lt_consumer_new_tuned(cfg, group && *group ? group : "ltvsync-normalizer", topics, 1,
                                 cons_tuning, err, errlen);
}

int main(int argc, char **argv)
{
    static norm_t n;
    lt_config_t *cfg = NULL;
    lt_httpd_t *httpd = NULL;
    lt_httpd_opts_t hopts;
    char err[512] = "";
    int rc = lt_daemon_start(argc, argv, "ltvsync-normalizer", LT_SVC_NORMALIZER,
                             "Turns ltvsync.raw rows into canonical events.\n", &cfg);
    if (rc >= 0)
        return rc;
    rc = 1;
    n.integ_version = -1;
    if (setup(&n, cfg, err, sizeof(err)) != 0) {
        lt_error("start-up: %s", err);
        goto end;
    }
    hopts = lt_httpd_opts_from_config(cfg);
    httpd = lt_httpd_start(&hopts, ready, &n, err, sizeof(err));
    if (!httpd) {
        lt_error("http endpoint: %s", err);
        goto end;
    }
    lt_info("consuming %s", n.topic_raw);
    rc = run(&n);
end:
    lt_httpd_stop(httpd);
    lt_consumer_destroy(n.cons); /* commits the stored offsets */
    lt_producer_destroy(n.prod, 10000);
    /* Only now: unacknowledged events still point into the slots' arenas. */
    lt_jarena_destroy(n.parse_arena[0]);
    lt_jarena_destroy(n.parse_arena[1]);
    for (int k = 0; k < NORM_SLOTS; k++) {
        lt_jarena_destroy(slots[k].event_arena);
        lt_acks_release(slots[k].acks);
    }
    lt_redis_destroy(n.redis);
    norm_cb_release(&n);
    norm_integ_release(&n);
    lt_config_destroy(cfg);
    lt_info("stopped");
    return rc;
}
