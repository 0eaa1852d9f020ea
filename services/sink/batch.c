/* batch.c: one batch of ltvsync.events from poll to stored offsets.
 *
 *   check    size cap, JSON, the ltv.event.v1 rules, content hash
 *   lookup   one Redis script call for every distinct event_id
 *   decide   unchanged (same hash as stored, or as earlier in this batch)
 *            -> skip; otherwise write
 *   produce  writes downstream keyed by event_id, refusals to the DLQ
 *   wait     for every acknowledgement (a failed one is sent again)
 *   record   the hashes of what was written or seen again (one script call)
 *   store    per partition, the offset after the last message done
 *
 * Hashes are recorded only after downstream acknowledged, offsets stored only
 * after the hashes are recorded: a crash in between redoes the batch and can
 * only write unchanged content again, never lose an event. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lt_dedupe.h"
#include "lt_json.h"
#include "lt_log.h"
#include "lt_offsets.h"
#include "lt_signal.h"
#include "sink.h"

#define WAIT_SLICE_MS 5000
#define TABLE_SIZE    4096 /* > 2 * SINK_BATCH_MAX, a power of two */

typedef enum { MSG_DLQ, MSG_WRITE, MSG_SKIP } msg_state_t;

typedef struct {
    rd_kafka_message_t *rkm;
    msg_state_t state;
    sink_event_info_t info;
    uint64_t hash;
    int slot;       /* its event's entry in the batch table */
    int sent, done; /* produced / acknowledged (or nothing to produce) */
    lt_acks_t *ack; /* of the last send; a late report lands here, never elsewhere */
    char reason[256];
} msg_t;

/* One distinct event_id of the batch. */
typedef struct {
    int used;
    uint8_t id[16];
    uint64_t hash;   /* the content downstream has after the batch so far */
    int have;        /* hash is known (stored, or written earlier in the batch) */
    int from_prev;   /* known only from the previous generation */
    int need_record; /* written, or seen again and to be refreshed */
    int undone;      /* writes of this id not acknowledged */
} entry_t;

struct sink_batch_s {
    msg_t msgs[SINK_BATCH_MAX];
    size_t n;
    entry_t table[TABLE_SIZE];
    sink_key_t keys[SINK_BATCH_MAX];
    int key_slot[SINK_BATCH_MAX];
    size_t nkeys;
};

sink_batch_t *sink_batch_new(void)
{
    return calloc(1, sizeof(sink_batch_t));
}

static void batch_release(sink_batch_t *b)
{
    for (size_t i = 0; i < b->n; i++) {
        rd_kafka_message_destroy(b->msgs[i].rkm);
        lt_acks_release(b->msgs[i].ack);
        b->msgs[i].ack = NULL;
    }
    b->n = 0;
    b->nkeys = 0;
    memset(b->table, 0, sizeof(b->table));
}

void sink_batch_destroy(sink_batch_t *b)
{
    if (!b)
        return;
    batch_release(b);
    free(b);
}

size_t sink_batch_collect(sink_t *s, sink_batch_t *b)
{
    long long deadline = 0;
    while (b->n < SINK_BATCH_MAX && !lt_signal_stop) {
        long long left = b->n ? deadline - lt_clock_mono_ms() : 100;
        rd_kafka_message_t *rkm;
        if (left <= 0)
            break;
        if (!(rkm = lt_consumer_poll(s->cons, (int)left))) {
            if (!b->n)
                break; /* idle: let the loop serve the producers */
            continue;
        }
        if (!b->n)
            deadline = lt_clock_mono_ms() + SINK_BATCH_WAIT_MS;
        memset(&b->msgs[b->n], 0, sizeof(b->msgs[b->n]));
        b->msgs[b->n++].rkm = rkm;
    }
    lt_metric_add(s->m.in, (int64_t)b->n);
    return b->n;
}

static void to_dlq(msg_t *m, const char *reason)
{
    m->state = MSG_DLQ;
    snprintf(m->reason, sizeof(m->reason), "%s", reason);
}

/* The batch table slot of an id (open addressing on its first bytes). */
static int table_slot(sink_batch_t *b, const uint8_t id[16])
{
    unsigned h = ((unsigned)id[2] << 8 | id[3]) & (TABLE_SIZE - 1);
    while (b->table[h].used && memcmp(b->table[h].id, id, 16) != 0)
        h = (h + 1) & (TABLE_SIZE - 1);
    if (!b->table[h].used) {
        b->table[h].used = 1;
        memcpy(b->table[h].id, id, 16);
        b->key_slot[b->nkeys] = (int)h;
        memcpy(b->keys[b->nkeys++].id, id, 16);
    }
    return (int)h;
}

static void check_one(sink_t *s, sink_batch_t *b, msg_t *m)
{
    const rd_kafka_message_t *rkm = m->rkm;
    char err[256];
    cJSON *root;
    if (!rkm->payload) {
        to_dlq(m, "empty value (tombstone)");
        return;
    }
    if (rkm->len > s->max_bytes) {
        snprintf(err, sizeof(err), "value of %zu bytes over MAX_MESSAGE_BYTES", rkm->len);
        to_dlq(m, err);
        return;
    }
    if (!(root = lt_json_parse(rkm->payload, rkm->len, s->max_bytes, err, sizeof(err)))) {
        to_dlq(m, err);
        return;
    }
    if (sink_validate(root, &m->info, err, sizeof(err)) != 0 ||
        lt_dedupe_content_hash(root, &m->hash, err, sizeof(err)) != 0) {
        to_dlq(m, err);
    } else {
        m->state = MSG_WRITE;
        m->slot = table_slot(b, m->info.id);
    }
    cJSON_Delete(root);
}

/* Verdicts in batch order, so A, A, B, A of one id writes A, B, A. */
static void decide(sink_batch_t *b)
{
    for (size_t i = 0; i < b->nkeys; i++) {
        entry_t *e = &b->table[b->key_slot[i]];
        e->have = b->keys[i].where != 0;
        e->from_prev = b->keys[i].where == 2;
        e->hash = b->keys[i].hash;
    }
    for (size_t i = 0; i < b->n; i++) {
        msg_t *m = &b->msgs[i];
        entry_t *e = &b->table[m->slot];
        if (m->state != MSG_WRITE)
            continue;
        if (e->have && e->hash == m->hash) {
            m->state = MSG_SKIP;
            m->done = 1;
            e->need_record |= e->from_prev;
            continue;
        }
        e->have = e->need_record = 1;
        e->from_prev = 0;
        e->hash = m->hash;
        e->undone++;
    }
}

/* Sends what is not in flight. LT_ERR_FATAL when a producer is dead. */
static lt_err_t produce(sink_t *s, sink_batch_t *b)
{
    char err[256];
    for (size_t i = 0; i < b->n; i++) {
        msg_t *m = &b->msgs[i];
        lt_err_t rc = LT_OK;
        if (m->done || m->sent || m->state == MSG_SKIP)
            continue;
        lt_acks_release(m->ack);
        if (!(m->ack = lt_acks_new())) {
            rc = LT_ERR_RETRIABLE;
        } else if (m->state == MSG_WRITE) {
            rc = lt_producer_send(s->down, s->topic_down, m->info.event_id, 36, m->rkm->payload,
                                  m->rkm->len, m->ack, err, sizeof(err));
        } else {
            size_t len;
            char *rec = sink_dlq_record(m->rkm, m->reason, &len);
            rc = !rec ? LT_ERR_RETRIABLE
                      : lt_producer_send(s->local, s->topic_dlq, m->rkm->key, m->rkm->key_len, rec,
                                         len, m->ack, err, sizeof(err));
            free(rec);
        }
        if (rc == LT_ERR_FATAL) {
            lt_error("%s", err);
            return LT_ERR_FATAL;
        }
        if (rc == LT_ERR_PERMANENT && m->state == MSG_WRITE) { /* over message.max.bytes */
            b->table[m->slot].undone--;
            to_dlq(m, "downstream refused the event (too large)");
        }
        m->sent = rc == LT_OK;
    }
    return LT_OK;
}

/* A downstream refusal no retry can fix goes to the DLQ instead. */
static int permanent(int kafka_err)
{
    return kafka_err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
           kafka_err == RD_KAFKA_RESP_ERR_INVALID_RECORD;
}

/* Collects acknowledgements; returns how many messages are not done. */
static size_t wait_acks(sink_t *s, sink_batch_t *b)
{
    size_t undone = 0;
    long long deadline = lt_clock_mono_ms() + WAIT_SLICE_MS;
    for (size_t i = 0; i < b->n; i++) {
        msg_t *m = &b->msgs[i];
        long long left = deadline - lt_clock_mono_ms();
        if (m->done || !m->sent)
            continue;
        lt_producer_wait(m->state == MSG_WRITE ? s->down : s->local, m->ack,
                         left > 0 ? (int)left : 0);
        if (lt_acks_pending(m->ack) > 0)
            continue;
        if (lt_acks_failed(m->ack) == 0) {
            m->done = 1;
            if (m->state == MSG_WRITE)
                b->table[m->slot].undone--;
            continue;
        }
        m->sent = 0; /* failed: send again */
        lt_warn("%s write failed: %s", m->state == MSG_WRITE ? "downstream" : "dlq",
                rd_kafka_err2str(lt_acks_first_err(m->ack)));
        lt_metric_add(s->m.retries, 1);
        if (m->state == MSG_WRITE && permanent(lt_acks_first_err(m->ack))) {
            b->table[m->slot].undone--;
            to_dlq(m, "downstream refused the event (too large or invalid)");
        }
    }
    for (size_t i = 0; i < b->n; i++)
        undone += !b->msgs[i].done;
    return undone;
}

/* Produce and wait until everything is acknowledged, retrying failures;
 * gives up only at the end of the shutdown grace. */
static lt_err_t deliver(sink_t *s, sink_batch_t *b)
{
    for (;;) {
        if (produce(s, b) == LT_ERR_FATAL)
            return LT_ERR_FATAL;
        if (wait_acks(s, b) == 0)
            return LT_OK;
        if (sink_give_up(s))
            return LT_ERR_RETRIABLE;
        sink_sleep_ms(s, 200);
    }
}

/* Hashes of ids whose writes are all acknowledged (or seen again). */
static lt_err_t record(sink_t *s, sink_batch_t *b)
{
    size_t n = 0;
    for (size_t i = 0; i < b->nkeys; i++) {
        entry_t *e = &b->table[b->key_slot[i]];
        if (!e->need_record || e->undone)
            continue;
        memcpy(b->keys[n].id, e->id, 16);
        b->keys[n++].hash = e->hash;
    }
    return sink_store_record(s, b->keys, n);
}

/* Per partition, the offset after the longest done prefix of the batch: a
 * message left undone (shutdown gave up on it) holds back every later one
 * of its partition, for any number of partitions. Out of memory: nothing is
 * stored (the batch is redelivered; dedupe skips what was written). */
static void store_offsets(sink_t *s, sink_batch_t *b)
{
    lt_offsets_t *t = lt_offsets_new();
    int ok = t != NULL, cls;
    int32_t partition;
    int64_t next;
    for (size_t i = 0; ok && i < b->n; i++) {
        const rd_kafka_message_t *rkm = b->msgs[i].rkm;
        if ((ok = lt_offsets_add(t, 0, rkm->partition, rkm->offset) == 0) && b->msgs[i].done)
            lt_offsets_done(t, 0, rkm->partition, rkm->offset);
    }
    while (ok && lt_offsets_take(t, &cls, &partition, &next))
        lt_consumer_store_offset(s->cons, rd_kafka_topic_name(b->msgs[0].rkm->rkt), partition,
                                 next);
    if (!ok)
        lt_warn("out of memory: offsets of a batch of %zu events not stored", b->n);
    lt_offsets_destroy(t);
}

static void count(sink_t *s, const sink_batch_t *b)
{
    for (size_t i = 0; i < b->n; i++) {
        const msg_t *m = &b->msgs[i];
        if (!m->done)
            continue;
        if (m->state == MSG_DLQ) {
            lt_warn("dlq %s[%d]@%lld: %.200s", rd_kafka_topic_name(m->rkm->rkt),
                    (int)m->rkm->partition, (long long)m->rkm->offset, m->reason);
            lt_metric_add(s->m.dlq, 1);
        } else {
            lt_metric_add(m->state == MSG_WRITE ? s->m.written[m->info.type]
                                                : s->m.unchanged[m->info.type],
                          1);
        }
    }
    lt_metric_add(s->m.batches, 1);
}

lt_err_t sink_batch_process(sink_t *s, sink_batch_t *b)
{
    lt_err_t rc = LT_OK;
    long long t[5];
    t[0] = lt_clock_mono_ms();
    for (size_t i = 0; i < b->n; i++)
        check_one(s, b, &b->msgs[i]);
    t[1] = lt_clock_mono_ms();
    if (sink_store_lookup(s, b->keys, b->nkeys) != LT_OK) {
        lt_warn("shutdown during a Redis outage: %zu messages left for redelivery", b->n);
        goto end;
    }
    decide(b);
    t[2] = lt_clock_mono_ms();
    if ((rc = deliver(s, b)) == LT_ERR_FATAL)
        goto end;
    rc = LT_OK;
    t[3] = lt_clock_mono_ms();
    if (record(s, b) != LT_OK) {
        lt_warn("shutdown before dedupe state was recorded: batch left for redelivery");
        goto end;
    }
    store_offsets(s, b);
    count(s, b);
    t[4] = lt_clock_mono_ms();
    lt_debug("batch of %zu: check %lld ms, lookup %lld ms, deliver %lld ms, record %lld ms", b->n,
             t[1] - t[0], t[2] - t[1], t[3] - t[2], t[4] - t[3]);
end:
    batch_release(b);
    return rc;
}
