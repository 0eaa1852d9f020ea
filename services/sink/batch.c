/* batch.c: one batch of ltvsync.events from poll to stored offsets.
 *
 *   check    size cap, JSON (lt_jtree: a read-only tree in an arena reset
 *            for each message, so no malloc or free per node and the
 *            same few KiB of memory for every event), the ltv.event.v1
 *            rules, content hash
 *   lookup   one Redis script call per chunk of CHUNK messages for its new
 *            event_ids, on the wire while the next chunk is checked
 *   decide   unchanged (same hash as stored, as written by the batch before
 *            whose acknowledgements are still on their way, or as earlier in
 *            this batch) -> skip; otherwise write
 *   produce  writes downstream keyed by event_id, refusals to the DLQ
 *   --- sink_batch_start returns here; main.c starts the next batch ---
 *   wait     for every acknowledgement (a failed one is sent again, with
 *            every later write of its id, here and in the next batch)
 *            (sink_batch_settle)
 *   record   the hashes of what was written or seen again (one script call,
 *            on the wire while the next batch is made: sink_batch_record)
 *   store    per partition, the offset after the last message done, once
 *            the record is answered (sink_batch_finish)
 *
 * Hashes are recorded only after downstream acknowledged, offsets stored only
 * after the hashes are recorded, and a batch's offsets only after those of
 * the batch before it: a crash in between redoes the batches and can only
 * write unchanged content again, never lose an event. Per id, writes reach
 * the producer in consumption order (the producer keeps the order of one
 * key, which it sends to one partition); a write sent again goes with every
 * later write of its id, in order, once none of them is in flight. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lt_dedupe.h"
#include "lt_jtree.h"
#include "lt_log.h"
#include "lt_offsets.h"
#include "lt_signal.h"
#include "sink.h"

#define WAIT_SLICE_MS 5000
#define TABLE_SIZE    4096 /* > 2 * SINK_BATCH_MAX, a power of two */
#define CHUNK         250  /* messages checked per Redis lookup */

typedef enum { MSG_DLQ, MSG_WRITE, MSG_SKIP } msg_state_t;

typedef struct {
    rd_kafka_message_t *rkm;
    msg_state_t state;
    sink_event_info_t info;
    uint64_t hash;
    int slot;       /* its event's entry in the batch table */
    int sent, done; /* produced / acknowledged (or nothing to produce) */
    int failed;     /* its last send failed: to be sent again */
    lt_acks_t *ack; /* of the last send; a late report lands here, never elsewhere */
    int32_t dpart;  /* its downstream partition (intent.c) */
    int uncertain;  /* a dead sink may have written it (intent.c) */
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
    int resend;      /* a write failed: later writes of the id go again after it */
    int uncertain;   /* a write of the id may have been made by a dead sink */
    int wrote;       /* a write of the id was sent (not found downstream) */
} entry_t;

#define FOUND_MAX 1000000 /* found writes one takeover batch looks at, at most */

struct sink_batch_s {
    msg_t msgs[SINK_BATCH_MAX];
    size_t n;
    entry_t table[TABLE_SIZE];
    sink_key_t keys[SINK_BATCH_MAX];
    int key_slot[SINK_BATCH_MAX];
    size_t nkeys;
    sink_call_t *call;  /* this batch's lookups */
    lt_buf_t scratch;   /* canonical JSON of the event being hashed */
    lt_jarena_t *arena; /* the tree of the event being checked */
    /* The intent (intent.c): the batch's input partitions and their offset
     * ranges; per downstream partition the bound its writes are at or after
     * (-1: none; s->down_parts long once known); writes found downstream
     * after a takeover. */
    int32_t in_part[SINK_BATCH_MAX];
    int64_t in_lo[SINK_BATCH_MAX], in_hi[SINK_BATCH_MAX];
    size_t nin;
    int64_t *bound;
    int32_t nbound;
    sink_found_t *found;
    size_t nfound, capfound;
    int overflow;
    int intent_put; /* its intent was written (it writes) */
};

sink_batch_t *sink_batch_new(void)
{
    sink_batch_t *b = calloc(1, sizeof(sink_batch_t));
    if (b && (!(b->call = sink_call_new()) || !(b->arena = lt_jarena_new()))) {
        sink_call_destroy(b->call);
        free(b);
        return NULL;
    }
    return b;
}

void sink_batch_release(sink_batch_t *b)
{
    for (size_t i = 0; i < b->n; i++) {
        rd_kafka_message_destroy(b->msgs[i].rkm);
        lt_acks_release(b->msgs[i].ack);
        b->msgs[i].ack = NULL;
    }
    b->n = 0;
    b->nkeys = 0;
    b->nin = 0;
    b->intent_put = 0;
    for (int32_t d = 0; d < b->nbound; d++)
        b->bound[d] = -1;
    memset(b->table, 0, sizeof(b->table));
}

void sink_batch_destroy(sink_batch_t *b)
{
    if (!b)
        return;
    sink_batch_release(b);
    sink_call_destroy(b->call);
    free(b->bound);
    free(b->found);
    lt_buf_release(&b->scratch);
    lt_jarena_destroy(b->arena);
    free(b);
}

size_t sink_batch_collect(sink_t *s, sink_batch_t *b, int first_wait_ms)
{
    long long deadline = 0;
    size_t max = s->batch_size && s->batch_size < SINK_BATCH_MAX ? s->batch_size : SINK_BATCH_MAX;
    while (b->n < max && !lt_signal_stop) {
        /* What is queued already is taken without a wait and without
         * reading the clock (a poll with a timeout reads it too); the clock
         * and the deadline only when the queue is empty. */
        rd_kafka_message_t *rkm = b->n ? lt_consumer_poll(s->cons, 0) : NULL;
        if (!rkm) {
            long long left = b->n ? deadline - lt_clock_mono_ms() : first_wait_ms;
            if (b->n && left <= 0)
                break;
            rkm = lt_consumer_poll(s->cons, (int)left);
        }
        if (!rkm) {
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

static unsigned table_hash(const uint8_t id[16])
{
    return ((unsigned)id[2] << 8 | id[3]) & (TABLE_SIZE - 1);
}

/* The batch table slot of an id (open addressing on its first bytes). */
static int table_slot(sink_batch_t *b, const uint8_t id[16])
{
    unsigned h = table_hash(id);
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

/* The entry of an id, or NULL. */
static int table_index(const sink_batch_t *b, const uint8_t id[16])
{
    unsigned h = table_hash(id);
    for (; b->table[h].used; h = (h + 1) & (TABLE_SIZE - 1))
        if (memcmp(b->table[h].id, id, 16) == 0)
            return (int)h;
    return -1;
}

static entry_t *table_find(sink_batch_t *b, const uint8_t id[16])
{
    int h = table_index(b, id);
    return h < 0 ? NULL : &b->table[h];
}

/* Parses an event into b's arena (the tree of the message before is done
 * with: its arena memory is this one's, still in cache), checks it and
 * hashes it. 0, or -1 with the reason in err. */
static int event_hash(const sink_t *s, sink_batch_t *b, const void *payload, size_t len,
                      sink_event_info_t *info, uint64_t *hash, char *err, size_t errlen)
{
    const cJSON *root;
    lt_jarena_reset(b->arena);
    if (!(root = lt_jtree_parse(b->arena, payload, len, s->max_bytes, err, errlen)))
        return -1;
    return sink_validate_hash(root, info, &b->scratch, hash, err, errlen);
}

static void check_one(sink_t *s, sink_batch_t *b, msg_t *m)
{
    const rd_kafka_message_t *rkm = m->rkm;
    char err[256];
    if (!rkm->payload) {
        to_dlq(m, "empty value (tombstone)");
        return;
    }
    if (rkm->len > s->max_bytes) {
        snprintf(err, sizeof(err), "value of %zu bytes over MAX_MESSAGE_BYTES", rkm->len);
        to_dlq(m, err);
        return;
    }
    if (event_hash(s, b, rkm->payload, rkm->len, &m->info, &m->hash, err, sizeof(err)) != 0) {
        to_dlq(m, err);
    } else {
        m->state = MSG_WRITE;
        m->slot = table_slot(b, m->info.id);
    }
}

/* Check in chunks, each chunk's lookup on the wire while the next is
 * checked. LT_ERR_RETRIABLE: shutdown during a Redis outage. */
static lt_err_t check_and_lookup(sink_t *s, sink_batch_t *b)
{
    size_t from = 0, kfrom = 0;
    int in_flight = 0;
    lt_err_t rc = LT_OK;
    while (from < b->n) {
        size_t to = from + CHUNK < b->n ? from + CHUNK : b->n;
        for (size_t i = from; i < to; i++)
            check_one(s, b, &b->msgs[i]);
        if (in_flight && (rc = sink_store_lookup_recv(s, b->call)) != LT_OK)
            return rc;
        sink_store_lookup_send(s, b->call, b->keys + kfrom, b->nkeys - kfrom);
        in_flight = 1;
        kfrom = b->nkeys;
        from = to;
    }
    return in_flight ? sink_store_lookup_recv(s, b->call) : LT_OK;
}

/* Verdicts in batch order, so A, A, B, A of one id writes A, B, A. An id
 * one of the two batches before wrote or saw again starts from what the
 * later of them leaves downstream (their hashes may not be recorded yet). */
static void decide(sink_batch_t *b, sink_batch_t *prev, sink_batch_t *prev2)
{
    for (size_t i = 0; i < b->nkeys; i++) {
        entry_t *e = &b->table[b->key_slot[i]];
        const entry_t *p = prev ? table_find(prev, e->id) : NULL;
        if (!(p && p->need_record) && prev2)
            p = table_find(prev2, e->id);
        if (p && p->need_record) {
            e->have = 1;
            e->from_prev = 0;
            e->hash = p->hash;
            continue;
        }
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

/* Sends what is neither in flight nor done, in batch order. LT_ERR_FATAL
 * when a producer is dead. */
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
            /* By reference: the message outlives its delivery (released
             * after the acks, or after the producer on shutdown). */
            char src[SINK_SRC_MAX];
            size_t srclen = sink_src_format(src, m->rkm->partition, m->rkm->offset);
            rc = lt_producer_send_ref_to(s->down, s->topic_down, m->dpart, m->info.event_id, 36,
                                         m->rkm->payload, m->rkm->len, SINK_SRC_HEADER, src, srclen,
                                         m->ack, err, sizeof(err));
            if (rc == LT_OK) {
                lt_metric_add(s->m.produced, 1);
                b->table[m->slot].wrote = 1;
            }
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
        m->failed = 0;
    }
    return LT_OK;
}

/* A downstream refusal no retry can fix goes to the DLQ instead. */
static int permanent(int kafka_err)
{
    return kafka_err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
           kafka_err == RD_KAFKA_RESP_ERR_INVALID_RECORD;
}

/* Collects acknowledgements until none of b is in flight (or the shutdown
 * budget is used up); returns how many messages failed or were never sent. */
static size_t wait_acks(sink_t *s, sink_batch_t *b)
{
    size_t bad = 0;
    for (size_t i = 0; i < b->n; i++) {
        msg_t *m = &b->msgs[i];
        if (m->done)
            continue;
        if (!m->sent) {
            bad++;
            continue;
        }
        while (lt_acks_pending(m->ack) > 0 && !sink_give_up(s))
            lt_producer_wait(m->state == MSG_WRITE ? s->down : s->local, m->ack, WAIT_SLICE_MS);
        if (lt_acks_pending(m->ack) > 0) {
            bad++;
            continue;
        }
        if (lt_acks_failed(m->ack) == 0) {
            int32_t d;
            int64_t off;
            m->done = 1;
            if (m->state == MSG_WRITE) {
                b->table[m->slot].undone--;
                if (lt_acks_last(m->ack, &d, &off) == 0)
                    sink_acked(s, d, off);
            }
            continue;
        }
        bad++;
        m->sent = 0; /* failed: send again */
        m->failed = 1;
        lt_warn("%s write failed: %s", m->state == MSG_WRITE ? "downstream" : "dlq",
                lt_kafka_err2str(lt_acks_first_err(m->ack)));
        lt_metric_add(s->m.retries, 1);
        if (m->state == MSG_WRITE && permanent(lt_acks_first_err(m->ack))) {
            b->table[m->slot].undone--;
            to_dlq(m, "downstream refused the event (too large or invalid)");
        } else if (m->state == MSG_WRITE) {
            b->table[m->slot].resend = 1;
        }
    }
    return bad;
}

/* After a failed write of an id, its later writes of b (from the failed one
 * on, in batch order) and of next go again, so the last one sent is the
 * last one consumed. Called when nothing of b or next is in flight. */
static void mark_resends(sink_batch_t *b, sink_batch_t *next)
{
    for (size_t i = 0; i < b->n; i++) {
        msg_t *m = &b->msgs[i];
        entry_t *e = &b->table[m->slot];
        if (m->state != MSG_WRITE)
            continue;
        if (m->failed) {
            e->resend = 2; /* from here on */
            continue;
        }
        if (e->resend == 2 && m->done) {
            m->done = m->sent = 0;
            e->undone++;
        }
    }
    for (size_t i = 0; next && i < next->n; i++) {
        msg_t *m = &next->msgs[i];
        const entry_t *p;
        if (m->state != MSG_WRITE || !m->done || !(p = table_find(b, m->info.id)) || !p->resend)
            continue;
        m->done = m->sent = 0;
        next->table[m->slot].undone++;
    }
    for (size_t i = 0; i < b->nkeys; i++)
        b->table[b->key_slot[i]].resend = 0;
}

/* Produce and wait until everything of b is acknowledged, retrying failures;
 * gives up only at the end of the shutdown grace. */
static lt_err_t deliver(sink_t *s, sink_batch_t *b, sink_batch_t *next)
{
    for (;;) {
        if (wait_acks(s, b) == 0)
            return LT_OK;
        if (sink_give_up(s))
            return LT_ERR_RETRIABLE;
        if (next && wait_acks(s, next) > 0 && sink_give_up(s))
            return LT_ERR_RETRIABLE;
        mark_resends(b, next);
        sink_sleep_ms(s, 200);
        if (produce(s, b) == LT_ERR_FATAL || (next && produce(s, next) == LT_ERR_FATAL))
            return LT_ERR_FATAL;
    }
}

/* Hashes of ids whose writes are all acknowledged (or seen again). */
void sink_batch_record(sink_t *s, sink_batch_t *b)
{
    size_t n = 0;
    for (size_t i = 0; i < b->nkeys; i++) {
        entry_t *e = &b->table[b->key_slot[i]];
        if (!e->need_record || e->undone)
            continue;
        memcpy(b->keys[n].id, e->id, 16);
        b->keys[n++].hash = e->hash;
    }
    sink_store_record_send(s, s->record_call, b->keys, n);
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

/* ---- the intent (intent.c): takeovers of a dead sink's batches ---- */

typedef struct {
    sink_t *s;
    sink_batch_t *b;
} readback_t;

static void found_add(sink_batch_t *b, int slot, int32_t part, int64_t off)
{
    if (b->nfound == b->capfound) {
        size_t cap = b->capfound ? 2 * b->capfound : 256;
        sink_found_t *f = cap <= FOUND_MAX ? realloc(b->found, cap * sizeof(*f)) : NULL;
        if (!f) {
            b->overflow = 1;
            return;
        }
        b->found = f;
        b->capfound = cap;
    }
    b->found[b->nfound++] = (sink_found_t){slot, part, off};
}

/* A message read back: kept when its key is an uncertain id of the batch,
 * with the input coordinates its header names (-1, -1 without a valid one:
 * a write made by no sink of this version, or by something else). */
static void on_readback(const rd_kafka_message_t *rkm, void *opaque)
{
    readback_t *rb = opaque;
    sink_batch_t *b = rb->b;
    uint8_t id[16];
    int32_t part;
    int64_t off;
    entry_t *e;
    if (sink_read_write(rkm, id, &part, &off) == 0 && (e = table_find(b, id)) && e->uncertain)
        found_add(b, (int)(e - b->table), part, off);
}

/* The writes kept from this takeover's reads (sink_seen) of b's uncertain
 * ids, in the order read. */
static void found_from_seen(const sink_t *s, sink_batch_t *b)
{
    size_t n;
    const sink_seen_t *w = sink_seen(s, &n);
    for (size_t i = 0; i < n && !b->overflow; i++) {
        int h = table_index(b, w[i].id);
        if (h >= 0 && b->table[h].uncertain)
            found_add(b, h, w[i].part, w[i].off);
    }
}

static void readback_restart(void *opaque)
{
    readback_t *rb = opaque;
    rb->b->nfound = 0;
    rb->b->overflow = 0;
}

/* first[slot .. slot + 1) of a stable counting sort by table slot:
 * first has TABLE_SIZE + 1 entries, filled from the slots of n items. */
static void slot_ranges(size_t *first, const int *slots, size_t n)
{
    memset(first, 0, (TABLE_SIZE + 1) * sizeof(size_t));
    for (size_t i = 0; i < n; i++)
        first[slots[i] + 1]++;
    for (size_t k = 1; k <= TABLE_SIZE; k++)
        first[k] += first[k - 1];
}

/* Did prev or prev2 (this sink's batches not finished) send a write of id? */
static int wrote_before(const sink_batch_t *prev, const sink_batch_t *prev2, const uint8_t id[16])
{
    const sink_batch_t *bs[2] = {prev, prev2};
    for (int j = 0; j < 2; j++) {
        int h = bs[j] ? table_index(bs[j], id) : -1;
        if (h >= 0 && bs[j]->table[h].wrote)
            return 1;
    }
    return 0;
}

/* Per uncertain id, sink_takeover_skips on all its writes in the batch
 * (uncertain or not) and its writes found downstream: those found, and the
 * earlier versions before them, are not written. Both are grouped by
 * id with a counting sort, so the cost is linear in both. An id whose
 * writes come from more than one input partition (not keyed by event_id)
 * is written again. */
static void match_found(sink_t *s, sink_batch_t *b, const sink_batch_t *prev,
                        const sink_batch_t *prev2)
{
    size_t nu = 0, skipped = 0, superseded = 0;
    size_t *ffirst = malloc((TABLE_SIZE + 1) * sizeof(size_t));
    size_t *mfirst = malloc((TABLE_SIZE + 1) * sizeof(size_t));
    size_t *at = malloc(TABLE_SIZE * sizeof(size_t));
    int *slots = malloc((b->nfound + b->n + 1) * sizeof(int));
    sink_found_t *d = malloc((b->nfound + 1) * sizeof(sink_found_t));
    int *mu = malloc((b->n + 1) * sizeof(int)), *idx = malloc((b->n + 1) * sizeof(int));
    int64_t *w_off = malloc((b->n + 1) * sizeof(int64_t));
    uint8_t *skip = malloc(b->n + 1), *w_unc = malloc(b->n + 1);
    if (!ffirst || !mfirst || !at || !slots || !d || !mu || !idx || !w_off || !skip || !w_unc) {
        lt_warn("out of memory: writes found after a takeover are written again");
        goto done;
    }
    /* found writes by id, in the order read (per partition, so per id) */
    for (size_t i = 0; i < b->nfound; i++)
        slots[i] = b->found[i].slot;
    slot_ranges(ffirst, slots, b->nfound);
    memcpy(at, ffirst, TABLE_SIZE * sizeof(size_t));
    for (size_t i = 0; i < b->nfound; i++)
        d[at[b->found[i].slot]++] = b->found[i];
    /* every write of an uncertain id, by id, in batch order */
    for (size_t i = 0; i < b->n; i++)
        if (b->msgs[i].state == MSG_WRITE && b->table[b->msgs[i].slot].uncertain) {
            mu[nu] = (int)i;
            slots[nu++] = b->msgs[i].slot;
        }
    slot_ranges(mfirst, slots, nu);
    memcpy(at, mfirst, TABLE_SIZE * sizeof(size_t));
    for (size_t k = 0; k < nu; k++)
        idx[at[b->msgs[mu[k]].slot]++] = mu[k];
    for (size_t k = 0; k < b->nkeys; k++) {
        int slot = b->key_slot[k];
        entry_t *e = &b->table[slot];
        const int *ms = idx + mfirst[slot];
        size_t nm = mfirst[slot + 1] - mfirst[slot], j;
        int32_t part;
        if (!e->uncertain || nm == 0)
            continue;
        part = b->msgs[ms[0]].rkm->partition;
        for (j = 0; j < nm && b->msgs[ms[j]].rkm->partition == part; j++) {
            w_off[j] = b->msgs[ms[j]].rkm->offset;
            w_unc[j] = (uint8_t)b->msgs[ms[j]].uncertain;
        }
        if (j < nm)
            continue;
        if (!sink_takeover_skips(part, w_off, w_unc, nm, d + ffirst[slot],
                                 ffirst[slot + 1] - ffirst[slot], wrote_before(prev, prev2, e->id),
                                 skip))
            continue;
        for (j = 0; j < nm; j++) {
            msg_t *m = &b->msgs[ms[j]];
            if (!skip[j])
                continue;
            m->state = MSG_SKIP;
            m->done = 1;
            e->undone--;
            skipped += skip[j] == 1;
            superseded += skip[j] == 2;
        }
    }
done:
    if (skipped)
        lt_info("takeover: %zu writes of a sink that stopped before recording them found in %s, "
                "and %zu earlier versions of their events: not written again",
                skipped, s->topic_down, superseded);
    lt_metric_add(s->m.found_again, (int64_t)skipped);
    lt_metric_add(s->m.superseded, (int64_t)superseded);
    free(ffirst);
    free(mfirst);
    free(at);
    free(slots);
    free(d);
    free(mu);
    free(idx);
    free(w_off);
    free(skip);
    free(w_unc);
}

/* Looks downstream for the uncertain writes of b, from the bounds in
 * s->old_from, and skips those found. */
static lt_err_t resolve(sink_t *s, sink_batch_t *b, const sink_batch_t *prev,
                        const sink_batch_t *prev2)
{
    int32_t *parts = calloc((size_t)s->down_parts + 1, sizeof(int32_t));
    int64_t *from = calloc((size_t)s->down_parts + 1, sizeof(int64_t));
    uint8_t *want = calloc((size_t)s->down_parts + 1, 1);
    readback_t rb = {s, b};
    size_t unresolved = 0;
    int n = 0;
    lt_err_t rc = LT_OK;
    if (!parts || !from || !want) {
        rc = LT_ERR_FATAL;
        lt_error("out of memory");
        goto done;
    }
    for (size_t i = 0; i < b->n; i++) {
        msg_t *m = &b->msgs[i];
        if (!m->uncertain)
            continue;
        if (m->dpart < 0 || m->dpart >= s->down_parts || s->old_from[m->dpart] < 0) {
            m->uncertain = 0; /* nowhere to look: written again */
            unresolved++;
            continue;
        }
        want[m->dpart] = 1;
    }
    for (int32_t d = 0; d < s->down_parts; d++)
        if (want[d]) {
            parts[n] = d;
            from[n++] = s->old_from[d];
        }
    if (unresolved) {
        lt_warn("takeover: %zu writes a stopped sink may have made cannot be looked for (no "
                "bound): written again",
                unresolved);
        lt_metric_add(s->m.unresolved, (int64_t)unresolved);
    }
    if (!n)
        goto done;
    b->nfound = 0;
    b->overflow = 0;
    lt_metric_add(s->m.readbacks, 1);
    /* What this takeover's earlier batches read is kept: only what was
     * written since is read. Past SINK_TAKEOVER_KEEP, each batch reads from
     * the bounds and keeps only its own ids' writes. */
    if (!s->seen_full) {
        if ((rc = sink_seen_read(s, parts, from, n)) != LT_OK)
            goto done;
        if (!s->seen_full)
            found_from_seen(s, b);
    }
    if (s->seen_full &&
        (rc = sink_readback(s, parts, from, n, on_readback, &rb, readback_restart)) != LT_OK)
        goto done;
    if (b->overflow) {
        lt_warn("takeover: over %d writes of these ids downstream: all written again", FOUND_MAX);
        goto done;
    }
    match_found(s, b, prev, prev2);
done:
    free(parts);
    free(from);
    free(want);
    return rc;
}

/* The range of partition p over the batch (0 when p is not in it). */
static int in_range(const sink_batch_t *b, int32_t p, int64_t *lo, int64_t *hi)
{
    for (size_t k = 0; b && k < b->nin; k++)
        if (b->in_part[k] == p) {
            *lo = b->in_lo[k];
            *hi = b->in_hi[k];
            return 1;
        }
    return 0;
}

/* Between decide and produce: reads the intents of b's input partitions,
 * resolves what a dead sink may have written, then writes b's intents
 * (which also cover prev and prev2, not finished yet). Nothing when b writes
 * nothing. LT_ERR_RETRIABLE only once sink_give_up() (nothing produced);
 * LT_ERR_FATAL when out of memory. */
static lt_err_t intent_step(sink_t *s, sink_batch_t *b, sink_batch_t *prev, sink_batch_t *prev2)
{
    char **vals = NULL;
    int64_t *rel = NULL; /* per input partition: the old intent's lo, hi (-1: none) */
    size_t writes = 0, uncertain = 0;
    lt_err_t rc = LT_ERR_FATAL;
    int any_old = 0;
    long long now = lt_clock_mono_ms();

    sink_parts_setup(s);
    b->nin = 0;
    for (size_t i = 0; i < b->n; i++) {
        msg_t *m = &b->msgs[i];
        int32_t p = m->rkm->partition;
        int64_t off = m->rkm->offset;
        size_t k;
        m->uncertain = 0;
        m->dpart =
            m->state == MSG_DLQ ? RD_KAFKA_PARTITION_UA : sink_partition_of(s, m->info.event_id);
        writes += m->state == MSG_WRITE;
        for (k = 0; k < b->nin && b->in_part[k] != p; k++)
            ;
        if (k == b->nin) {
            b->in_part[b->nin] = p;
            b->in_lo[b->nin] = b->in_hi[b->nin] = off;
            b->nin++;
        }
        if (off < b->in_lo[k])
            b->in_lo[k] = off;
        if (off > b->in_hi[k])
            b->in_hi[k] = off;
    }
    if (s->down_parts > 0 && b->nbound != s->down_parts) {
        free(b->bound);
        b->nbound = 0;
        if (!(b->bound = malloc((size_t)s->down_parts * sizeof(int64_t))))
            goto oom;
        b->nbound = s->down_parts;
        for (int32_t d = 0; d < b->nbound; d++)
            b->bound[d] = -1;
    }
    if (!writes)
        return LT_OK;
    if (!(vals = calloc(b->nin, sizeof(char *))) || !(rel = malloc(2 * b->nin * sizeof(int64_t))))
        goto oom;
    if ((rc = sink_intent_get(s, b->in_part, b->nin, vals)) != LT_OK)
        goto done;
    for (int32_t d = 0; d < s->down_parts; d++)
        s->old_from[d] = -1;
    for (size_t k = 0; k < b->nin; k++) {
        int64_t lo, hi;
        rel[2 * k] = rel[2 * k + 1] = -1;
        if (!vals[k])
            continue;
        if (sink_intent_parse(s, vals[k], &lo, &hi, NULL) != 0) {
            lt_warn("intent %s/%d: malformed, ignored", s->topic_in, (int)b->in_part[k]);
            continue;
        }
        if (lo > b->in_hi[k] || hi < b->in_lo[k])
            continue; /* finished batches (ours, or before a restart) */
        sink_intent_parse(s, vals[k], &lo, &hi, s->old_from);
        rel[2 * k] = lo;
        rel[2 * k + 1] = hi;
        any_old = 1;
        for (size_t i = 0; i < b->n; i++) {
            msg_t *m = &b->msgs[i];
            if (m->state == MSG_WRITE && m->rkm->partition == b->in_part[k] &&
                m->rkm->offset >= lo && m->rkm->offset <= hi) {
                m->uncertain = 1;
                b->table[m->slot].uncertain = 1;
                uncertain++;
            }
        }
    }
    if (uncertain) {
        lt_info("takeover: %zu writes in offsets a stopped sink had not finished; looking for "
                "them in %s",
                uncertain, s->topic_down);
        if ((rc = resolve(s, b, prev, prev2)) != LT_OK)
            goto done;
    } else if (s->seen_start) {
        sink_seen_drop(s); /* the takeover is over */
    }
    /* b's bounds: where its writes go, and the old intents' (their writes
     * are unrecorded until b is finished). */
    for (size_t i = 0; i < b->n && b->nbound; i++) {
        const msg_t *m = &b->msgs[i];
        int32_t d = m->dpart;
        if (m->state != MSG_WRITE || d < 0 || d >= b->nbound)
            continue;
        if (b->bound[d] < 0 || s->acked_next[d] < b->bound[d])
            b->bound[d] = s->acked_next[d];
    }
    for (int32_t d = 0; any_old && d < b->nbound; d++)
        if (s->old_from[d] >= 0 && (b->bound[d] < 0 || s->old_from[d] < b->bound[d]))
            b->bound[d] = s->old_from[d];
    /* The intents: b's and those of the batches before it, unfinished. */
    for (int32_t d = 0; d < s->down_parts; d++) {
        int64_t v = -1;
        const sink_batch_t *bs[3] = {b, prev, prev2};
        for (int j = 0; j < 3; j++)
            if (bs[j] && bs[j]->nbound == s->down_parts && bs[j]->bound[d] >= 0 &&
                (v < 0 || bs[j]->bound[d] < v))
                v = bs[j]->bound[d];
        s->new_from[d] = v;
    }
    /* and those of the batches finished but not committed */
    sink_done_cover(s, -1, NULL, s->new_from, now);
    for (size_t k = 0; k < b->nin; k++) {
        int64_t lo, hi, plo, phi;
        /* b's own range takes in the old intent's: until b is committed,
         * a crash redelivers what the dead sink wrote too */
        if (rel[2 * k] >= 0 && rel[2 * k] < b->in_lo[k])
            b->in_lo[k] = rel[2 * k];
        if (rel[2 * k + 1] > b->in_hi[k])
            b->in_hi[k] = rel[2 * k + 1];
        lo = b->in_lo[k];
        hi = b->in_hi[k];
        if (in_range(prev, b->in_part[k], &plo, &phi) && plo < lo)
            lo = plo;
        if (in_range(prev2, b->in_part[k], &plo, &phi) && plo < lo)
            lo = plo;
        sink_done_cover(s, b->in_part[k], &lo, NULL, now);
        free(vals[k]);
        if (!(vals[k] = sink_intent_format(s, lo, hi, s->new_from)))
            goto oom;
    }
    if ((rc = sink_intent_put(s, b->in_part, vals, b->nin)) == LT_OK)
        b->intent_put = 1;
    goto done;
oom:
    lt_error("out of memory (sink intent)");
    rc = LT_ERR_FATAL;
done:
    for (size_t k = 0; vals && k < b->nin; k++)
        free(vals[k]);
    free(vals);
    free(rel);
    return rc;
}

lt_err_t sink_batch_start(sink_t *s, sink_batch_t *b, sink_batch_t *prev, sink_batch_t *prev2)
{
    long long t0 = lt_clock_mono_ms(), t1;
    lt_err_t rc;
    if (check_and_lookup(s, b) != LT_OK) {
        lt_warn("shutdown during a Redis outage: %zu messages left for redelivery", b->n);
        return LT_ERR_RETRIABLE;
    }
    decide(b, prev, prev2);
    if ((rc = intent_step(s, b, prev, prev2)) != LT_OK) {
        if (rc == LT_ERR_RETRIABLE)
            lt_warn("shutdown before the batch could be produced (Redis or downstream out): %zu "
                    "messages left for redelivery",
                    b->n);
        return rc;
    }
    t1 = lt_clock_mono_ms();
    if (produce(s, b) == LT_ERR_FATAL)
        return LT_ERR_FATAL;
    lt_debug("batch of %zu: check and lookup %lld ms, produce %lld ms", b->n, t1 - t0,
             lt_clock_mono_ms() - t1);
    return LT_OK;
}

lt_err_t sink_batch_settle(sink_t *s, sink_batch_t *b, sink_batch_t *next)
{
    long long t0 = lt_clock_mono_ms();
    lt_err_t rc = deliver(s, b, next);
    lt_debug("batch of %zu: acknowledged in %lld ms", b->n, lt_clock_mono_ms() - t0);
    if (rc == LT_ERR_RETRIABLE)
        lt_warn("shutdown before a batch of %zu was acknowledged: the rest is left for "
                "redelivery",
                b->n);
    return rc;
}

lt_err_t sink_batch_finish(sink_t *s, sink_batch_t *b)
{
    if (sink_store_record_recv(s, s->record_call) != LT_OK) {
        lt_warn("shutdown before dedupe state was recorded: batch left for redelivery");
        return LT_ERR_RETRIABLE;
    }
    count(s, b); /* before its offsets: a group committed past it has counted it */
    store_offsets(s, b);
    if (b->intent_put &&
        sink_done_add(s, b->in_part, b->in_lo, b->in_hi, b->nin,
                      b->nbound == s->down_parts ? b->bound : NULL, lt_clock_mono_ms()) != 0)
        lt_warn("out of memory: a finished batch is not covered by the intent until committed");
    return LT_OK;
}
