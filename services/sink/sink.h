/* ltvsync-sink internals. main.c sets up and runs the loop: two batch slots,
 * so one batch's acknowledgements are on their way while the next is made;
 * batch.c takes a batch through check -> dedupe lookup -> produce
 * (sink_batch_start), then wait for acks -> record hashes -> store offsets
 * (sink_batch_settle); validate.c holds the ltv.event.v1 rules; store.c the
 * Redis dedupe state; dlq.c the DLQ record. */
#ifndef SINK_H
#define SINK_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>
#include "lt_buf.h"
#include "lt_clock.h"
#include "lt_config.h"
#include "lt_dedupe.h"
#include "lt_err.h"
#include "lt_evtype.h"
#include "lt_kafka.h"
#include "lt_metrics.h"
#include "lt_redis.h"

#define SINK_BATCH_MAX     2000 /* messages per batch */
#define SINK_GROUPS_MAX    16   /* dedupe stems (lt_rkey_dedupe_stem): 1, or 16 in a cluster */
#define SINK_BATCH_WAIT_MS 50   /* collect for at most this long once one came */

/* librdkafka's partitioner signature (rd_kafka_msg_partitioner_*). */
typedef int32_t (*sink_partitioner_fn)(const rd_kafka_topic_t *rkt, const void *key, size_t keylen,
                                       int32_t partition_cnt, void *rkt_opaque, void *msg_opaque);

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
/* sink_validate, then the event's content hash (lt_dedupe_content_hash's
 * value; the members' order is known from the check, so no sort), built in
 * scratch. 0, or -1 with why (a check, or the hash's reason). */
int sink_validate_hash(const cJSON *ev, sink_event_info_t *info, lt_buf_t *scratch, uint64_t *hash,
                       char *why, size_t whylen);

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
    lt_metric_t *produced;    /* writes handed to the producer (sent again: counted again) */
    lt_metric_t *found_again; /* writes a dead sink made, found downstream and not made again */
    lt_metric_t *superseded;  /* earlier versions of those, not made again either */
    lt_metric_t *unresolved;  /* writes maybe made by a dead sink that could not be looked for */
    lt_metric_t *readbacks;   /* reads of downstream after a takeover */
    lt_metric_t *uncommitted; /* finished batches in the intents (sink_done_*) */
    lt_metric_t *written[LT_EV_COUNT], *unchanged[LT_EV_COUNT];
} sink_metrics_t;

typedef struct {
    const lt_config_t *cfg;
    lt_consumer_t *cons;
    lt_producer_t *down;   /* downstream cluster: TOPIC_DOWNSTREAM */
    lt_producer_t *local;  /* ltvsync cluster: TOPIC_DLQ */
    lt_redis_t *redis;     /* lookups */
    lt_redis_t *redis_rec; /* records: one can be on the wire beside a lookup */
    const char *topic_down, *topic_dlq, *topic_in;
    int cluster; /* a Redis Cluster (store.c) */
    /* The dedupe hashes' stems, "<REDIS_PREFIX>dd2:" or, in a cluster, one a
     * tag group, "<REDIS_PREFIX>dd2:{N}:"; a bucket's is stems[group_of[B]]. */
    int ngroups;
    char stems[SINK_GROUPS_MAX][272];
    uint8_t group_of[LT_DEDUPE_BUCKETS];
    /* A group's calls go on look[g] and rec[g] ([0] = redis and redis_rec):
     * in a cluster, a connection of its own per group, so each group's call
     * can be on the wire at once (lt_redis holds one in flight). */
    lt_redis_t *look[SINK_GROUPS_MAX], *rec[SINK_GROUPS_MAX];
    char legacy_prefix[256]; /* "<REDIS_PREFIX>dd:": the earlier layout */
    int legacy;              /* its keys exist: lookups ask it on a miss */
    size_t max_bytes;
    size_t batch_size; /* SINK_BATCH_SIZE, at most SINK_BATCH_MAX */
    long long ttl_ms, grace_ms;
    long long stop_at_ms; /* when the stop flag was first seen; 0 = running */
    atomic_int redis_ok;
    struct sink_call_s *record_call; /* the record script's arguments */
    /* intent.c: the downstream partitions (0 while not known), per
     * partition the offset after our last acknowledged write there (or its
     * end at start), and two scratch maps of bounds (-1: none). */
    int32_t down_parts;
    int64_t *acked_next, *old_from, *new_from;
    sink_partitioner_fn partitioner; /* NULL: consistent (crc32) */
    char partitioner_name[64];
    long long parts_next_try_ms;
    char intent_key[320];
    /* intent.c: per input partition the offset last committed (-1: none
     * seen), and the batches that wrote and finished since, oldest first:
     * redelivered after a crash, they are covered by the intent too. */
    int64_t *committed;
    int32_t ncommitted;
    struct sink_done_s *done;
    size_t ndone;
    /* intent.c: downstream read back in this takeover (sink_seen_read):
     * per downstream partition where the kept writes start and the next
     * offset to read (-1: not kept). */
    struct sink_seen_s *seen;
    size_t nseen, capseen;
    int64_t *seen_start, *seen_next;
    size_t seen_max; /* SINK_TAKEOVER_KEEP */
    int seen_full;   /* past seen_max in this takeover: read per batch */
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

/* One script call of a sink_call_t: the keys of one tag group. */
typedef struct {
    int group;      /* its stem and connections */
    int off, argc;  /* its arguments: argv[off .. off + argc) */
    size_t from, n; /* its keys: positions from .. from + n of the call */
    int sent;       /* on the wire, its answer not taken yet */
} sink_part_t;

/* The script calls of one lookup or record (and, for a lookup on the wire,
 * its keys): one part on one Redis, one per tag group in a cluster. Key
 * position i is keys[order[i]] in a cluster (grouped), keys[i] otherwise. */
typedef struct sink_call_s {
    const char *argv[4 * SINK_GROUPS_MAX + 3 * SINK_BATCH_MAX];
    size_t lens[4 * SINK_GROUPS_MAX + 3 * SINK_BATCH_MAX];
    char buckets[SINK_BATCH_MAX][4];
    uint8_t fields[SINK_BATCH_MAX][4];
    uint8_t hashes[SINK_BATCH_MAX][8];
    uint16_t order[SINK_BATCH_MAX];
    int ordered; /* order[] applies */
    sink_part_t parts[SINK_GROUPS_MAX];
    int nparts;
    char ttl[24];
    sink_key_t *keys;
    size_t n;
} sink_call_t;

sink_call_t *sink_call_new(void); /* NULL on OOM */
void sink_call_destroy(sink_call_t *c);

/* Fills where/hash of keys[0..n) (n <= SINK_BATCH_MAX). Pauses while Redis
 * is unreachable (fail closed). LT_OK, or LT_ERR_RETRIABLE once
 * sink_give_up(). */
lt_err_t sink_store_lookup(sink_t *s, sink_call_t *c, sink_key_t *keys, size_t n);
/* The same in two halves: _send puts the lookup on the wire and returns;
 * _recv takes its answer (or, when the send or the answer failed, runs
 * sink_store_lookup). One call in flight on s->redis, nothing in between. */
void sink_store_lookup_send(sink_t *s, sink_call_t *c, sink_key_t *keys, size_t n);
lt_err_t sink_store_lookup_recv(sink_t *s, sink_call_t *c);
/* Stores the hashes of keys[0..n) in the current generation, in two
 * halves on s->redis_rec (one record in flight): _send puts it on the wire
 * (keys are copied into c), _recv takes the answer, or runs it again until
 * Redis answers. LT_OK, or LT_ERR_RETRIABLE once sink_give_up(). */
void sink_store_record_send(sink_t *s, sink_call_t *c, const sink_key_t *keys, size_t n);
lt_err_t sink_store_record_recv(sink_t *s, sink_call_t *c);
/* Runs script (NULL: the command argv) on r until Redis answers without
 * an error, pausing while it is unreachable or refuses (fail closed: warns
 * once, counts a pause, retries every 500 ms, keeps s->redis_ok). NULL
 * once sink_give_up(). */
redisReply *sink_redis_retry(sink_t *s, lt_redis_t *r, lt_redis_script_t *script, int nkeys,
                             int argc, const char **argv, const size_t *lens);
/* After s->redis and s->redis_rec exist: the stems of the layout lt_redis
 * chose (lt_rkeys) and, in a cluster, a lookup and a record connection per
 * further tag group (url: the Redis URL). 0, or -1 with err. */
int sink_store_setup(sink_t *s, const char *url, const char *prefix, char *err, size_t errlen);
/* Destroys what sink_store_setup made (not redis and redis_rec). */
void sink_store_close(sink_t *s);
/* Sets s->legacy: do keys of the earlier layout exist (current or previous
 * generation)? 0, or -1 when Redis did not answer (s->legacy unchanged).
 * The earlier layout never existed in a cluster: there, s->legacy = 0. */
int sink_store_legacy_check(sink_t *s);

/* ---- intent.c: the crash window's intents (see there) ---- */

/* The function a librdkafka `partitioner` value names. Every write has
 * its event_id as key, so each "_random" name places as its keyed half.
 * NULL for "random" (the key unused: a takeover could not know where a
 * write went) and for names librdkafka does not know. */
sink_partitioner_fn sink_partitioner_named(const char *name);
/* s->partitioner from the downstream producer's `partitioner`
 * (DOWNSTREAM_KAFKA_PARTITIONER, or KAFKA_PARTITIONER when downstream is
 * the main cluster): 0, or -1 with errstr for one the sink cannot use. */
int sink_partitioner_setup(sink_t *s, char *errstr, size_t errlen);

/* Reads the downstream partition count and ends (s->down_parts > 0 after);
 * 0, or -1 (logged; tried again at most every 10 s). */
int sink_parts_setup(sink_t *s);
void sink_parts_close(sink_t *s);
/* The downstream partition of an event (RD_KAFKA_PARTITION_UA while the
 * partitions are not known). */
int32_t sink_partition_of(const sink_t *s, const char event_id[36]);
/* A write to d acknowledged at offset. */
void sink_acked(sink_t *s, int32_t d, int64_t offset);
/* Builds s->intent_key; -1 when the prefix is too long. */
int sink_intent_key(sink_t *s, const char *prefix);
/* The intents of input partitions parts[0..n): values[i] malloc'd, or NULL
 * (none). LT_OK; LT_ERR_RETRIABLE once sink_give_up() (a Redis outage at
 * shutdown); LT_ERR_FATAL out of memory or on a reply that is no answer
 * to HMGET. _put the same. */
lt_err_t sink_intent_get(sink_t *s, const int32_t *parts, size_t n, char **values);
lt_err_t sink_intent_put(sink_t *s, const int32_t *parts, char *const *values, size_t n);
/* Parses an intent value: its range, and its bounds merged into from[]
 * (minimum; partitions >= s->down_parts ignored). 0, or -1 if malformed. */
int sink_intent_parse(const sink_t *s, const char *v, int64_t *lo, int64_t *hi, int64_t *from);
/* The value of lo..hi with the bounds of from[] (-1 = none); NULL on OOM. */
char *sink_intent_format(const sink_t *s, int64_t lo, int64_t hi, const int64_t *from);
/* Reads partitions parts[i] of the downstream topic from from[i] to their
 * ends, handing each message to fn; on a failed read calls restart(opaque)
 * and reads again (each read given 120 s), until sink_give_up()
 * (LT_ERR_RETRIABLE). */
lt_err_t sink_readback(sink_t *s, const int32_t *parts, const int64_t *from, int n,
                       lt_kafka_read_fn fn, void *opaque, void (*restart)(void *opaque));

/* Downstream as read back during a takeover, kept across its batches:
 * every write read (its event_id and input coordinates, -1/-1 without a
 * valid header), in the order read (per downstream partition, so per id).
 * Each batch reads only what was appended since; the first batch that
 * holds no uncertain write drops it. */
typedef struct sink_seen_s {
    uint8_t id[16];
    int32_t part;
    int64_t off;
} sink_seen_t;
/* Brings the kept writes of downstream partitions parts[0..n) up to their
 * ends, each kept from from[i] or earlier (a partition kept from later
 * than from[i] is read again, and the others with it). Past s->seen_max
 * (SINK_TAKEOVER_KEEP) nothing is kept any more and s->seen_full is set
 * (LT_OK). Else as sink_readback, or LT_ERR_FATAL out of memory. */
lt_err_t sink_seen_read(sink_t *s, const int32_t *parts, const int64_t *from, int n);
const sink_seen_t *sink_seen(const sink_t *s, size_t *n);
void sink_seen_drop(sink_t *s);

/* A commit of input partition p confirmed, up to offset (the next to take). */
void sink_committed(sink_t *s, int32_t p, int64_t offset);
/* A batch that wrote finished: its input partitions part[0..n), the
 * offsets lo..hi its intent covered for each, and its bounds bound[0..
 * s->down_parts) (-1: none). Kept until every partition of it is committed
 * past hi, or for SINK_DONE_AGE_MS (commits failing that long: a crash
 * then may write its events again); at most SINK_DONE_MAX batches, the
 * oldest two merged when full. 0, or -1 when out of memory (not kept). */
#define SINK_DONE_MAX    1024
#define SINK_DONE_AGE_MS 60000
int sink_done_add(sink_t *s, const int32_t *part, const int64_t *lo, const int64_t *hi, size_t n,
                  const int64_t *bound, long long now_ms);
/* Drops the finished batches committed, or older than SINK_DONE_AGE_MS,
 * then lowers *lo to the lowest offset of input partition p they still
 * cover (untouched when none) and merges their bounds into from[] (minimum). */
void sink_done_cover(sink_t *s, int32_t p, int64_t *lo, int64_t *from, long long now_ms);
void sink_done_close(sink_t *s);

/* Every downstream write carries its input coordinates in this header,
 * "<partition>/<offset>" of the event in the events topic: a takeover finds
 * the writes of a dead sink by where they came from, not by content. */
#define SINK_SRC_HEADER "ltvsync-src"
#define SINK_SRC_MAX    32 /* bytes of a value, with its NUL */
/* Formats a value into buf (SINK_SRC_MAX); returns its length. */
size_t sink_src_format(char *buf, int32_t partition, int64_t offset);
/* A downstream message read back: its event_id (the key) into id and the
 * input coordinates its header names (-1, -1 without a valid one: a write
 * made by no sink of this version, or by something else). 0, or -1 when
 * its key is not an event_id. */
int sink_read_write(const rd_kafka_message_t *rkm, uint8_t id[16], int32_t *part, int64_t *off);
/* Parses a value of len bytes (not NUL-terminated). 0, or -1 if malformed. */
int sink_src_parse(const void *v, size_t len, int32_t *partition, int64_t *offset);

/* A write of an uncertain id read back downstream: its batch table slot and
 * its input coordinates (partition -1, offset -1: no valid header). */
typedef struct {
    int slot;
    int32_t part;
    int64_t off;
} sink_found_t;

/* One uncertain event_id of a takeover batch: which of its writes not to
 * write again. w_off[0..nw): the input offsets of all its writes in batch
 * order, all from input partition part, w_unc[k] 1 for those in an
 * intent's range (a dead sink may have made them); f[0..nf): its writes
 * read back downstream, in order. A write is found when downstream holds a
 * write from its coordinates; it is safe to skip when every later write of
 * the id downstream comes from a later offset of part (the dead sink's
 * writes of later events, which this sink takes after it and decides
 * again). A later write from the same or an earlier offset (this sink
 * wrote the id again) or from unknown coordinates makes it unsafe: it
  * would stay last. The last uncertain write found and safe is skipped,
 * and so is every write of the id before it in the batch: skip[k] = 1 for
 * those uncertain, found and safe, 2 for the others (superseded). Those are earlier versions: the latest wins,
 * and the dead sink left it last downstream. Whether such a version was
 * written once (not found: the dead sink had it as unchanged) or is
 * downstream already, writing it again would only add a copy, and then the
 * later one would have to go again too. None when prev_wrote (a batch of
 * this sink not finished wrote the id: that write may land after what was
 * read). Returns how many are skipped. */
size_t sink_takeover_skips(int32_t part, const int64_t *w_off, const uint8_t *w_unc, size_t nw,
                           const sink_found_t *f, size_t nf, int prev_wrote, uint8_t *skip);

/* ---- batch.c ---- */

typedef struct sink_batch_s sink_batch_t;

sink_batch_t *sink_batch_new(void);
/* Accepts NULL. Only once nothing of b can be in a producer any more
 * (its messages are sent by reference). */
void sink_batch_destroy(sink_batch_t *b);
/* Polls up to SINK_BATCH_MAX messages: waits up to first_wait_ms for the
 * first, then SINK_BATCH_WAIT_MS at most for the rest. Returns the count; 0
 * after an idle poll or when stopping. */
size_t sink_batch_collect(sink_t *s, sink_batch_t *b, int first_wait_ms);
/* Checks the collected batch, looks its hashes up and produces it. prev
 * and prev2 are the two batches before it (either may be NULL) whose hashes
 * may not be recorded yet: what they write counts as what downstream has,
 * prev's before prev2's. LT_OK; LT_ERR_RETRIABLE when shutdown came during
 * a Redis outage (nothing was produced: release it with
 * sink_batch_release); LT_ERR_FATAL (a producer cannot continue). */
lt_err_t sink_batch_start(sink_t *s, sink_batch_t *b, sink_batch_t *prev, sink_batch_t *prev2);
/* Waits for every acknowledgement of b, sending failures again (next, the
 * batch started after b, gets its writes of those ids sent again after
 * them). LT_OK; LT_ERR_RETRIABLE when shutdown gave up on part of b (record
 * and finish it all the same: what was done is stored, the rest holds its
 * partition back; next must not be stored, whose offsets would pass b's);
 * LT_ERR_FATAL. After an error, b and next may still be in a producer:
 * release them only after the producers are destroyed. */
lt_err_t sink_batch_settle(sink_t *s, sink_batch_t *b, sink_batch_t *next);
/* Puts the record of b's hashes on the wire (s->record_call: the record of
 * the batch before must be finished). */
void sink_batch_record(sink_t *s, sink_batch_t *b);
/* Takes the record's answer, then stores b's offsets and counts it; the
 * caller then releases b. LT_OK, or LT_ERR_RETRIABLE when shutdown came
 * during a Redis outage (nothing stored). */
lt_err_t sink_batch_finish(sink_t *s, sink_batch_t *b);
/* Forgets the batch's messages without storing anything (redelivered).
 * Only when none of them is in a producer (see sink_batch_destroy). */
void sink_batch_release(sink_batch_t *b);

#endif
