/* ltvsync-normalizer internals (prefix norm_). main.c sets up and runs the
 * loop; batch.c turns a batch of raw messages into events; cbstore.c keeps
 * chargeback history in Redis; integ.c caches integrations; dlq.c writes
 * dead letters. One thread does all of it: the producer, consumer and Redis
 * handles are used only from the main loop. */
#ifndef NORMALIZER_H
#define NORMALIZER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "lt_clock.h"
#include "lt_config.h"
#include "lt_event.h"
#include "lt_jtree.h"
#include "lt_kafka.h"
#include "lt_metrics.h"
#include "lt_redis.h"
#include "lt_registry.h"

#define NORM_BATCH_MAX   10000       /* rows per batch: the ack wait is per batch */
#define NORM_BATCH_BYTES (32u << 20) /* and at most this much raw JSON */
#define NORM_SLOTS       2 /* batches alive: one awaiting its acks while the next is made */
/* Rows of a batch looked up in Redis together: chunk k's lookup runs while
 * chunk k+1 is parsed, k+1's while k is produced. */
#define NORM_CHUNK 2000

typedef struct {
    lt_metric_t *rows, *rebuilt, *dlq, *partial, *authorize, *reference, *redis_pauses;
    lt_metric_t *produce_retries, *integration_reloads;
    lt_metric_t *events[LT_EV_COUNT]; /* by lt_evtype_t */
} norm_metrics_t;

typedef struct {
    char id[65], brand[16], currency[4];
    const lt_tz_t *tz; /* from the process-wide cache, never freed */
} norm_integ_t;

typedef struct {
    const lt_config_t *cfg;
    const char *topic_raw, *topic_events, *topic_dlq, *prefix;
    size_t max_message;
    lt_producer_t *prod;
    lt_consumer_t *cons;
    lt_redis_t *redis;
    lt_acks_t *cur_acks; /* acks of the batch being produced (its slot's) */
    /* Parse trees (lt_jtree) of chunks 2k and 2k+1 of the batch being
     * produced. One pair for both slots: a batch is produced (and its trees
     * reset) before the next one starts, so per-slot pairs only doubled the
     * memory (about 19 MiB of peak RSS in bench/normalizer.sh). */
    lt_jarena_t *parse_arena[2];
    norm_integ_t *integs; /* built from reg (zones resolved) */
    size_t ninteg;
    lt_registry_cache_t *integ_cache;     /* the integrations topic's live view */
    unsigned long integ_gen, integ_reads; /* the cache's, when integs was built */
    long long integ_version;              /* P integrations:version at the last load, -1 unknown */
    char replay_prefix[80];               /* "id/" in a one-integration replay, else "" */
    /* Chargeback state per raw partition (cbstore.c): whether this
     * consumer read partition p from its first offset and has not yet
     * used its state (NORM_P_START: the state may be created), or its state
     * must exist in Redis (NORM_P_KEPT); NORM_P_UNKNOWN before its first
     * message. rewound: partitions this process sent back to their first
     * offset. lost: partitions whose
     * state was found missing by the last lookup. history_end: per
     * partition, the offset below which every row's outputs were
     * acknowledged before its state was found lost (0: none); read again,
     * those rows only rebuild the state and produce nothing. */
    uint8_t *pmode, *rewound;
    int64_t *history_end;
    size_t npart;
    int32_t lost[64];
    int nlost;
    /* Redis Cluster only (cbstore.c): per partition read from its first
     * offset, its pass and which integrations' state it used. */
    struct norm_cbc_s *cbc;
    norm_metrics_t m;
    atomic_int ready; /* main loop writes, the HTTP thread reads */
} norm_t;

/* One raw message in a batch, parsed once. */
typedef struct {
    rd_kafka_message_t *rkm;
    const cJSON *env;         /* parsed envelope (a chunk arena), only while its chunk is made */
    const cJSON *record;      /* inside env */
    lt_event_fields_t fields; /* of record */
    norm_integ_t integ;       /* a copy: the map may reload mid-batch */
    int has_integ;
    lt_stream_t stream;
    const char *fetched_at;
    char reason[320]; /* non-empty: goes to the DLQ */
    lt_cb_probe_t probe;
    int skip;         /* replay of another integration: only the offset is stored */
    int rebuild_only; /* read again to rebuild chargeback state: its outputs are downstream */
    char *history;    /* chargeback history from Redis, owned */
    size_t history_len;
} norm_msg_t;

typedef struct {
    long rows, rebuilt, dlq, partial, authorize, reference, events[LT_EV_COUNT];
} norm_counts_t;

/* A batch slot: its messages, and the acks of its outputs (a new counter
 * per produce; the previous one is released once settled, and a report
 * after that still lands in it: lt_acks_t is reference counted). */
typedef struct {
    norm_msg_t msgs[NORM_BATCH_MAX];
    size_t count;
    lt_jarena_t *event_arena; /* events sent by reference: kept until acknowledged */
    lt_acks_t *acks;
    lt_err_t produced; /* LT_OK when every output was handed to the producer */
    norm_counts_t c;   /* of the last produce, applied once acknowledged */
} norm_batch_t;

#define NORM_P_UNKNOWN 0
#define NORM_P_START   1
#define NORM_P_KEPT    2
#define NORM_LOST      (-2) /* a lookup found a partition's chargeback state gone */

/* cbstore.c: notes the first message of each partition in this consumer's
 * life: NORM_P_START when it is the partition's first offset (or the
 * partition was rewound), else NORM_P_KEPT. -1 out of memory. */
int norm_partition_seen(norm_t *n, const rd_kafka_message_t *rkm);
/* 1 when rkm was read again only to rebuild chargeback state: below its
 * partition's history_end. */
int norm_history_row(const norm_t *n, const rd_kafka_message_t *rkm);
/* After the chargeback state of n->lost[] was found gone (Redis restarted
 * empty): stores each such partition's first offset (for a process that
 * starts after a crash), sets it in back (the offsets the consumer is sent
 * back to; on the way in, back holds the first row of each partition in
 * the dropped batches, which becomes its history_end) and marks the
 * partition rewound. */
void norm_partitions_rewind(norm_t *n, rd_kafka_topic_partition_list_t *back);
/* Frees n->cbc and the per-partition arrays. */
void norm_cb_release(norm_t *n);

/* integ.c */
int norm_integ_load(norm_t *n);
/* Copies the integration into out; re-reads the topic for an unknown id.
 * 0, or -1 when unknown (or its zone is invalid). */
int norm_integ_find(norm_t *n, const char *id, norm_integ_t *out);
/* Between batches: re-reads the integrations when ltvctl bumped their
 * version (or periodically). 1 when Redis answered. */
int norm_integ_refresh(norm_t *n);
void norm_integ_release(norm_t *n);

/* cbstore.c: fills msgs[i].history for every message whose probe applies;
 * 0 on success, -1 when Redis failed (nothing may be stored then),
 * NORM_LOST when a partition's state is gone (n->lost; nothing written). */
int norm_cb_fetch(norm_t *n, norm_msg_t *msgs, size_t count);

/* The same in two halves (one call in flight at a time): norm_cb_send puts
 * the lookup on the wire; norm_cb_recv takes its reply into the messages and
 * frees the call. Either returns -1 when Redis failed: then norm_cb_fetch
 * (the script is idempotent for rows it has seen, so running it again is
 * safe). In a Redis Cluster norm_cb_send sends nothing and returns -1: the
 * lookup is several calls, each after the last one's answer, all made by
 * norm_cb_fetch. */
typedef struct {
    const char **argv;
    size_t *lens;
    char (*nums)[2][24];
    char **keys;
    size_t *idx; /* message index of each script entry */
    size_t n;    /* entries */
    norm_msg_t *msgs;
    int sent; /* a reply is awaited */
} norm_cb_call_t;
int norm_cb_send(norm_t *n, norm_msg_t *msgs, size_t count, norm_cb_call_t *call);
int norm_cb_recv(norm_t *n, norm_cb_call_t *call);

/* dlq.c: sends one dead letter for msg with its reason. */
lt_err_t norm_dlq_send(norm_t *n, const norm_msg_t *msg, char *errstr, size_t errlen);

/* batch.c: parses b, fetches its chargeback state and produces its outputs
 * (NORM_CHUNK rows at a time) without waiting for acks; -1 on shutdown while
 * Redis was unavailable, NORM_LOST when a partition's chargeback state is
 * gone (n->lost); either way part of b may be in flight: store nothing. */
int norm_batch_start(norm_t *n, norm_batch_t *b);
/* Waits for b's acks (next, if not NULL, is the batch started after b). 0: b
 * is acknowledged, next still in flight. If b failed, produces b and then
 * next again (per-key order) until both are acknowledged: 1. -1 on shutdown
 * before that (store nothing). */
int norm_batch_settle(norm_t *n, norm_batch_t *b, norm_batch_t *next);
void norm_batch_release(norm_batch_t *b);

#endif
