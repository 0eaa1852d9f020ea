/* ltvsync-sink internals. main.c sets up and runs the loop; batch.c takes a
 * batch of ltvsync.events through check -> dedupe lookup -> produce -> wait
 * for acks -> record hashes -> store offsets; validate.c holds the
 * ltv.event.v1 rules; store.c the Redis dedupe state; dlq.c the DLQ record. */
#ifndef SINK_H
#define SINK_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>
#include "lt_clock.h"
#include "lt_config.h"
#include "lt_err.h"
#include "lt_evtype.h"
#include "lt_kafka.h"
#include "lt_metrics.h"
#include "lt_redis.h"

#define SINK_BATCH_MAX     2000 /* messages per batch */
#define SINK_BATCH_WAIT_MS 50   /* collect for at most this long once one came */

/* ---- validate.c ---- */

typedef struct {
    lt_evtype_t type;
    uint8_t id[16]; /* event_id */
    char event_id[37];
} sink_event_info_t;

/* Checks one parsed event against the ltv.event.v1 rules (those of
 * schemas/event.schema.json, plus calendar validity and local_date within a
 * day of occurred_at). 0 and *info filled, or -1 with the first violation
 * in why ("amount_minor: must be <= 0 for refund"). */
int sink_validate(const cJSON *ev, sink_event_info_t *info, char *why, size_t whylen);

/* ---- dlq.c ---- */

/* The DLQ record of a consumed message, compact JSON:
 * {"reason","topic","partition","offset","key","value"}. key and value are
 * JSON strings when their bytes are valid UTF-8, else null with the bytes in
 * "key_base64"/"value_base64"; a value over SINK_DLQ_VALUE_MAX is cut
 * ("value_truncated":true, "value_len": the original length). Caller frees;
 * NULL on allocation failure. */
#define SINK_DLQ_VALUE_MAX (256 * 1024)
char *sink_dlq_record(const rd_kafka_message_t *rkm, const char *reason, size_t *len);

/* ---- the service ---- */

typedef struct {
    lt_metric_t *in, *dlq, *redis_pauses, *retries, *batches;
    lt_metric_t *written[LT_EV_COUNT], *unchanged[LT_EV_COUNT];
} sink_metrics_t;

typedef struct {
    const lt_config_t *cfg;
    lt_consumer_t *cons;
    lt_producer_t *down;  /* downstream cluster: TOPIC_DOWNSTREAM */
    lt_producer_t *local; /* ltvsync cluster: TOPIC_DLQ */
    lt_redis_t *redis;
    const char *topic_down, *topic_dlq;
    char key_prefix[256]; /* "<REDIS_PREFIX>dd:" */
    size_t max_bytes;
    long long ttl_ms, grace_ms;
    long long stop_at_ms; /* when the stop flag was first seen; 0 = running */
    atomic_int redis_ok;
    sink_metrics_t m;
} sink_t;

/* 1 once SIGTERM's grace (minus a margin for the final commit) is used up:
 * retry loops give up and the batch in hand is abandoned (redelivered). */
int sink_give_up(sink_t *s);
/* Sleeps up to ms, in short steps, returning early when sink_give_up(). */
void sink_sleep_ms(sink_t *s, long long ms);

/* ---- store.c: dedupe state in Redis ---- */

typedef struct {
    uint8_t id[16];
    uint64_t hash; /* lookup: the stored hash; record: the one to store */
    int where;     /* lookup result: 0 unknown, 1 current, 2 previous generation */
} sink_key_t;

/* Fills where/hash of keys[0..n). Pauses while Redis is unreachable (fail
 * closed). LT_OK, or LT_ERR_RETRIABLE once sink_give_up(). */
lt_err_t sink_store_lookup(sink_t *s, sink_key_t *keys, size_t n);
/* Stores the hashes of keys[0..n) in the current generation. Same errors. */
lt_err_t sink_store_record(sink_t *s, const sink_key_t *keys, size_t n);

/* ---- batch.c ---- */

typedef struct sink_batch_s sink_batch_t;

sink_batch_t *sink_batch_new(void);
void sink_batch_destroy(sink_batch_t *b); /* accepts NULL */
/* Polls up to SINK_BATCH_MAX messages (SINK_BATCH_WAIT_MS after the first).
 * Returns the count; 0 after an idle poll or when stopping. */
size_t sink_batch_collect(sink_t *s, sink_batch_t *b);
/* Takes the collected batch all the way to stored offsets, then empties it.
 * LT_OK (also when shutdown abandoned part of it: those offsets stay
 * unstored), or LT_ERR_FATAL (a producer cannot continue). */
lt_err_t sink_batch_process(sink_t *s, sink_batch_t *b);

#endif
