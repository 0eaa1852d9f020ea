/* One batch of raw messages, NORM_CHUNK rows at a time: parse the envelopes,
 * fetch their chargeback state in one Redis call, build the events, produce
 * events and dead letters (norm_batch_start); later wait until Kafka
 * acknowledged all of them (norm_batch_settle), meanwhile the next batch is
 * made. Only then may the caller store the offsets. A failed produce is
 * retried for the whole batch, and for the one started after it: event ids
 * are deterministic, so duplicates are harmless and the sink drops them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_json.h"
#include "lt_jtree.h"
#include "lt_log.h"
#include "lt_signal.h"
#include "normalizer.h"

#define ACK_TIMEOUT_MS 30000

static void set_reason(norm_msg_t *m, const char *what, const char *detail)
{
    snprintf(m->reason, sizeof(m->reason), "%s%s%s", what, detail ? ": " : "",
             detail ? detail : "");
}

static void parse_msg(norm_t *n, lt_jarena_t *arena, norm_msg_t *m)
{
    char err[160];
    const char *iid, *stream;
    m->env = NULL;
    m->record = NULL;
    m->fetched_at = NULL;
    m->reason[0] = '\0';
    m->has_integ = 0;
    memset(&m->probe, 0, sizeof(m->probe));
    if (m->skip)
        return;
    if (!m->rkm->payload) {
        set_reason(m, "empty value", NULL);
        return;
    }
    m->env = lt_jtree_parse(arena, m->rkm->payload, m->rkm->len, n->max_message, err, sizeof(err));
    if (!m->env) {
        set_reason(m, "invalid JSON", err);
        return;
    }
    iid = lt_json_str(m->env, "integration_id");
    stream = lt_json_str(m->env, "stream");
    m->fetched_at = lt_json_str(m->env, "fetched_at");
    m->record = cJSON_GetObjectItemCaseSensitive(m->env, "record");
    if (!iid || !stream || !lt_j_is_object(m->record))
        set_reason(m, "envelope: integration_id, stream and record are required", NULL);
    else if ((int)(m->stream = (lt_stream_t)lt_stream_parse(stream, strlen(stream))) < 0)
        set_reason(m, "envelope: unknown stream", NULL);
    else if (m->fetched_at && strlen(m->fetched_at) > 64)
        set_reason(m, "envelope: fetched_at too long", NULL);
    else if (norm_integ_find(n, iid, &m->integ) != 0)
        set_reason(m, "unknown integration (or invalid timezone)", NULL);
    else
        m->has_integ = 1;
    if (!m->reason[0]) {
        lt_event_index(m->record, &m->fields); /* once, for the probe and the build */
        lt_event_cb_probe(m->stream, m->record, &m->fields, &m->probe);
    }
}

static lt_err_t send_events(norm_t *n, norm_batch_t *b, norm_msg_t *m, lt_event_list_t *evs)
{
    char err[256];
    lt_cb_state_t st;
    lt_event_input_t in = {m->integ.id,       m->integ.brand, m->integ.tz,
                           m->integ.currency, m->stream,      m->fetched_at,
                           m->record,         &m->fields,     NULL};
    if (m->probe.applies) {
        if (lt_cb_state_at(m->history ? m->history : "", m->history_len, m->rkm->partition,
                           m->rkm->offset, &st) != 0) {
            set_reason(m, "chargeback history in Redis is malformed", NULL);
            return LT_ERR_PERMANENT;
        }
        in.cb = &st;
    }
    lt_err_t rc = lt_event_build(&in, evs, err, sizeof(err));
    if (rc != LT_OK) {
        set_reason(m, "record", err);
        return rc;
    }
    norm_counts_t *c = &b->c;
    c->partial += evs->note == LT_EVENT_NOTE_PARTIAL_ORDER;
    c->authorize += evs->note == LT_EVENT_NOTE_AUTHORIZE;
    c->reference += evs->note == LT_EVENT_NOTE_REFERENCE;
    for (size_t i = 0; i < evs->n; i++) {
        /* Copied into the batch's output arena and sent by reference: it
         * outlives the acks (reset only once they are all in), and no
         * malloc/free per event. */
        char *val = lt_jarena_alloc(b->event_arena, evs->ev[i].len);
        if (!val)
            return LT_ERR_RETRIABLE;
        memcpy(val, evs->ev[i].json, evs->ev[i].len);
        rc = lt_producer_send_ref(n->prod, n->topic_events, evs->key, evs->keylen, val,
                                  evs->ev[i].len, n->cur_acks, err, sizeof(err));
        if (rc != LT_OK) {
            lt_warn("produce event: %s", err);
            return LT_ERR_RETRIABLE;
        }
        c->events[evs->ev[i].type]++;
    }
    return LT_OK;
}

/* Produces the outputs of messages [from, to); LT_ERR_RETRIABLE when a send
 * failed. */
static lt_err_t produce_range(norm_t *n, norm_batch_t *b, size_t from, size_t to)
{
    norm_counts_t *c = &b->c;
    lt_event_list_t evs = {0};
    lt_err_t rc = LT_OK;
    char err[256];
    for (size_t i = from; i < to && rc == LT_OK; i++) {
        norm_msg_t *m = &b->msgs[i];
        if (m->skip)
            continue;
        c->rows++;
        if (m->rebuild_only) { /* its state is rebuilt (the script ran); its outputs are downstream */
            c->rebuilt++;
            continue;
        }
        if (!m->reason[0])
            rc = send_events(n, b, m, &evs);
        if (rc == LT_ERR_PERMANENT || (rc == LT_OK && m->reason[0])) {
            rc = norm_dlq_send(n, m, err, sizeof(err));
            c->dlq++;
            if (rc != LT_OK) {
                lt_warn("produce dead letter: %s", err);
                rc = LT_ERR_RETRIABLE;
            }
        }
    }
    lt_event_list_release(&evs);
    return rc;
}

static void apply_counts(norm_t *n, const norm_counts_t *c)
{
    lt_metric_add(n->m.rows, c->rows);
    lt_metric_add(n->m.rebuilt, c->rebuilt);
    lt_metric_add(n->m.partial, c->partial);
    lt_metric_add(n->m.authorize, c->authorize);
    lt_metric_add(n->m.reference, c->reference);
    for (int t = 0; t < LT_EV_COUNT; t++)
        lt_metric_add(n->m.events[t], c->events[t]);
}

/* Waits out every delivery report of b (so its counters can be reset);
 * 0 when all were delivered. */
static int settle(norm_t *n, norm_batch_t *b)
{
    if (!b->acks)
        return b->produced == LT_OK ? 0 : -1;
    lt_err_t rc = lt_producer_wait(n->prod, b->acks, ACK_TIMEOUT_MS);
    while (lt_acks_pending(b->acks) > 0)
        lt_producer_wait(n->prod, b->acks, 1000);
    return rc == LT_OK && lt_acks_failed(b->acks) == 0 && b->produced == LT_OK ? 0 : -1;
}

static int fetch_state(norm_t *n, norm_msg_t *msgs, size_t count)
{
    int rc;
    while ((rc = norm_cb_fetch(n, msgs, count)) != 0) {
        if (rc == NORM_LOST)
            return NORM_LOST;
        atomic_store(&n->ready, 0);
        lt_metric_add(n->m.redis_pauses, 1);
        if (lt_clock_nap_ms(500) != 0)
            return -1;
    }
    atomic_store(&n->ready, 1);
    return 0;
}

/* Parses chunk [from, to) into arena (reset first: the chunk it held two
 * chunks ago is produced). */
static void parse_chunk(norm_t *n, norm_batch_t *b, lt_jarena_t *arena, size_t from, size_t to)
{
    lt_jarena_reset(arena);
    for (size_t i = from; i < to; i++)
        parse_msg(n, arena, &b->msgs[i]);
}

/* One attempt: every output of b handed to the producer (or a failure noted
 * in b->produced), NORM_CHUNK rows at a time with Redis overlapped: chunk
 * k's chargeback lookup is on the wire while chunk k+1 is parsed, and k+1's
 * while k is produced. A failed lookup falls back to fetch_state (the script
 * is idempotent for rows it has seen, so a retry may run it again). Chunk k's
 * trees are in n->parse_arena[k % 2], alive until k is produced: two chunks
 * of trees at a time, small enough to stay in cache. -1 on shutdown while Redis was
 * unavailable, NORM_LOST when a partition's chargeback state is gone (the
 * chunks before it may be produced; nothing may be stored). */
static int produce(norm_t *n, norm_batch_t *b)
{
    norm_cb_call_t call = {0};
    int sent, rc = 0;
    memset(&b->c, 0, sizeof(b->c));
    lt_acks_release(b->acks); /* settled: nothing pending in it */
    if (!(b->acks = lt_acks_new())) {
        lt_error("out of memory for acknowledgements");
        return -1;
    }
    n->cur_acks = b->acks;
    b->produced = LT_OK;
    for (int k = 0; k < 2; k++)
        if (!n->parse_arena[k] && !(n->parse_arena[k] = lt_jarena_new())) {
            lt_error("out of memory for parse trees");
            return -1;
        }
    if (!b->event_arena && !(b->event_arena = lt_jarena_new())) {
        lt_error("out of memory for events");
        return -1;
    }
    lt_jarena_reset(b->event_arena); /* every ack of the last attempt is in (settle) */
    size_t from = 0, to = b->count < NORM_CHUNK ? b->count : NORM_CHUNK, k = 0;
    parse_chunk(n, b, n->parse_arena[0], 0, to);
    sent = norm_cb_send(n, b->msgs, to, &call) == 0;
    while (from < b->count) {
        size_t next = to + NORM_CHUNK < b->count ? to + NORM_CHUNK : b->count;
        parse_chunk(n, b, n->parse_arena[(k + 1) % 2], to, next);
        int got = sent ? norm_cb_recv(n, &call) : -1;
        if (got == -1)
            got = fetch_state(n, b->msgs + from, to - from);
        if (got != 0) {
            rc = got; /* NORM_LOST, or -1: shutdown */
            break;
        }
        sent = next > to && norm_cb_send(n, b->msgs + to, next - to, &call) == 0;
        if (b->produced == LT_OK)
            b->produced = produce_range(n, b, from, to);
        from = to;
        to = next;
        k++;
    }
    if (sent)
        norm_cb_recv(n, &call); /* shutdown: drain the one in flight */
    for (size_t i = 0; i < b->count; i++) {
        b->msgs[i].env = b->msgs[i].record = NULL;
        b->msgs[i].fetched_at = NULL;
    }
    lt_jarena_reset(n->parse_arena[0]);
    lt_jarena_reset(n->parse_arena[1]);
    return rc;
}

int norm_batch_start(norm_t *n, norm_batch_t *b)
{
    return produce(n, b);
}

int norm_batch_settle(norm_t *n, norm_batch_t *b, norm_batch_t *next)
{
    /* The input is idle: do not let linger.ms hold back b's last messages.
     * A nudge: whatever is still in flight after it, settle() waits for. */
    if (!next)
        lt_producer_flush(n->prod, 1000);
    if (settle(n, b) == 0) {
        apply_counts(n, &b->c);
        return 0;
    }
    if (next)
        settle(n, next); /* its reports too, before its counters are reset */
    for (;;) {
        lt_metric_add(n->m.produce_retries, 1);
        lt_warn("batch of %zu rows not acknowledged (%s); producing it%s again", b->count,
                lt_kafka_err2str(b->acks ? lt_acks_first_err(b->acks) : RD_KAFKA_RESP_ERR_NO_ERROR),
                next ? " and the next one" : "");
        if (lt_clock_nap_ms(1000) != 0 || produce(n, b) != 0 || (next && produce(n, next) != 0))
            return -1;
        int bad = settle(n, b);
        if (next)
            bad |= settle(n, next);
        if (!bad)
            break;
    }
    apply_counts(n, &b->c);
    if (next)
        apply_counts(n, &next->c);
    return next ? 1 : 0;
}

void norm_batch_release(norm_batch_t *b)
{
    for (size_t i = 0; i < b->count; i++) {
        norm_msg_t *m = &b->msgs[i];
        free(m->history);
        if (m->rkm)
            rd_kafka_message_destroy(m->rkm);
        memset(m, 0, sizeof(*m));
    }
    b->count = 0;
}
