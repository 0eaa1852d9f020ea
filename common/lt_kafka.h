/* lt_kafka: producer and consumer set-up shared by every service.
 *
 * Producers are idempotent (acks=all), compress with zstd, and report every
 * delivery into an lt_acks_t so a caller can wait for "all rows of this page
 * are acknowledged" before it checkpoints. Consumers never auto-store
 * offsets: the caller stores a message's offset only after its output is
 * acknowledged (enable.auto.offset.store=false, auto commit of stored
 * offsets). librdkafka's own log lines go through a queue into lt_log, served
 * by the poll calls, never from librdkafka's internal threads. */
#ifndef LT_KAFKA_H
#define LT_KAFKA_H

#include <stdatomic.h>
#include <stddef.h>
#include <librdkafka/rdkafka.h>
#include "lt_config.h"
#include "lt_err.h"

/* Acknowledgement counter of a group of produced messages ("all rows of
 * this page"). Reference counted: the owner holds one reference from
 * lt_acks_new until lt_acks_release, and every message produced with it holds
 * one until its delivery report, so a report that comes after its owner gave
 * up waiting (a timeout, a shutdown) still lands in memory that belongs to
 * this counter, never in a later caller's. Counts are atomic: any thread may
 * poll the producer. Not reusable: one counter per group. */
typedef struct lt_acks_s lt_acks_t;

/* NULL when out of memory. */
lt_acks_t *lt_acks_new(void);
/* Drops the owner's reference; accepts NULL. */
void lt_acks_release(lt_acks_t *a);
/* Messages produced and not yet reported / reported as failed. */
long lt_acks_pending(const lt_acks_t *a);
long lt_acks_failed(const lt_acks_t *a);
/* Where the last successful delivery counted by a landed: 0, or -1 when
 * none has (yet). With one message per counter, where that message is. */
int lt_acks_last(const lt_acks_t *a, int32_t *partition, int64_t *offset);
/* The error of the first failed delivery (RD_KAFKA_RESP_ERR_NO_ERROR if none). */
rd_kafka_resp_err_t lt_acks_first_err(const lt_acks_t *a);
/* A delivery reported successful without an offset is counted as failed
 * with this error (librdkafka's implicit ack: maybe never written; see
 * lt_kafka.c). Retriable: send the message again. Outside librdkafka's
 * codes (-200..-100 local, >= -1 from brokers). */
#define LT_KAFKA_ERR_UNVERIFIED ((rd_kafka_resp_err_t)-1000)
/* The error a delivery report counts as: rkm->err, else
 * LT_KAFKA_ERR_UNVERIFIED when it has no offset, else none. */
rd_kafka_resp_err_t lt_kafka_delivery_err(const rd_kafka_message_t *rkm);
/* rd_kafka_err2str, naming LT_KAFKA_ERR_UNVERIFIED for what it is. */
const char *lt_kafka_err2str(rd_kafka_resp_err_t err);

typedef struct lt_producer_s lt_producer_t;

/* prefix: "KAFKA_" (the ltvsync cluster) or "DOWNSTREAM_KAFKA_". Brokers come
 * from <prefix>BOOTSTRAP_SERVERS pass-through (for the downstream prefix,
 * DOWNSTREAM_BROKERS, falling back to the main cluster). */
lt_producer_t *lt_producer_new(const lt_config_t *cfg, const char *prefix, char *errstr,
                               size_t errlen);
/* The same with other defaults than compression.type=zstd, linger.ms=5:
 * tuning is up to 6 name/value pairs ending with NULL, applied over those defaults
 * (pass-through settings still override both). */
lt_producer_t *lt_producer_new_tuned(const lt_config_t *cfg, const char *prefix,
                                     const char *const *tuning, char *errstr, size_t errlen);
/* Copies key and value. acks may be NULL. On a full local queue it polls and
 * retries for up to 30 s. Returns LT_OK, or with errstr: LT_ERR_PERMANENT
 * for a message this producer can never send (over message.max.bytes),
 * LT_ERR_FATAL after an idempotent producer's fatal error (every later send
 * fails too: recreate the producer or exit), else LT_ERR_RETRIABLE. */
lt_err_t lt_producer_send(lt_producer_t *p, const char *topic, const void *key, size_t keylen,
                          const void *val, size_t vallen, lt_acks_t *acks, char *errstr,
                          size_t errlen);
/* As lt_producer_send, but takes val (from malloc) instead of copying it:
 * librdkafka frees it after delivery; freed here when the send fails. */
lt_err_t lt_producer_send_owned(lt_producer_t *p, const char *topic, const void *key, size_t keylen,
                                void *val, size_t vallen, lt_acks_t *acks, char *errstr,
                                size_t errlen);
/* As lt_producer_send, but neither copies nor frees val: the caller keeps it
 * unchanged until the message's delivery report (lt_acks_pending has
 * counted it down) or until this producer is destroyed, whichever comes first. */
lt_err_t lt_producer_send_ref(lt_producer_t *p, const char *topic, const void *key, size_t keylen,
                              const void *val, size_t vallen, lt_acks_t *acks, char *errstr,
                              size_t errlen);
/* As lt_producer_send_ref, to one partition (RD_KAFKA_PARTITION_UA: the
 * partitioner's choice), with one header when hname is not NULL (its value
 * copied). */
lt_err_t lt_producer_send_ref_to(lt_producer_t *p, const char *topic, int32_t partition,
                                 const void *key, size_t keylen, const void *val, size_t vallen,
                                 const char *hname, const void *hval, size_t hlen, lt_acks_t *acks,
                                 char *errstr, size_t errlen);
/* Serves delivery reports until acks has nothing pending or timeout_ms passes.
 * LT_OK when all delivered; LT_ERR_RETRIABLE on failures or timeout. */
lt_err_t lt_producer_wait(lt_producer_t *p, lt_acks_t *acks, int timeout_ms);
/* Asks the brokers for these topics' metadata now (up to timeout_ms each;
 * a failure is only logged). Without it the first send to a topic waits for
 * librdkafka's once-a-second topic scan to learn its leaders (measured: 615
 * jobs acknowledged in 1,006 ms cold, 12 ms warm): services call it at
 * start-up, ltvctl before its first send. */
void lt_producer_warm(lt_producer_t *p, const char *const *topics, size_t n, int timeout_ms);
/* Serves delivery reports and logs once. */
void lt_producer_poll(lt_producer_t *p, int timeout_ms);
/* Sends what linger.ms holds back now and waits (up to timeout_ms) until
 * every message is acknowledged, serving delivery reports: for the last
 * batch before the input goes idle. LT_OK when nothing is left in flight. */
lt_err_t lt_producer_flush(lt_producer_t *p, int timeout_ms);
/* Flushes (up to timeout_ms) and destroys; accepts NULL. */
void lt_producer_destroy(lt_producer_t *p, int timeout_ms);
rd_kafka_t *lt_producer_handle(lt_producer_t *p);

typedef struct lt_consumer_s lt_consumer_t;

/* Subscribes group_id to the topics; auto.offset.reset=earliest. */
lt_consumer_t *lt_consumer_new(const lt_config_t *cfg, const char *group_id,
                               const char *const *topics, size_t ntopics, char *errstr,
                               size_t errlen);
/* As lt_consumer_new with property defaults of the caller's (NULL-terminated
 * name, value pairs, at most 4); <prefix>* pass-through settings override. */
lt_consumer_t *lt_consumer_new_tuned(const lt_config_t *cfg, const char *group_id,
                                     const char *const *topics, size_t ntopics,
                                     const char *const *tuning, char *errstr, size_t errlen);
/* Returns a message (caller destroys with rd_kafka_message_destroy) or NULL
 * on timeout. Consumer errors are logged (rate-limited) and return NULL;
 * partition EOF is not an error. */
rd_kafka_message_t *lt_consumer_poll(lt_consumer_t *c, int timeout_ms);
/* For a consumer that must keep up a backlog with a queue smaller than
 * 1 s of its work: a thread wakes the fetchers of its partitions' leaders
 * every interval_ms while messages are polled (see lt_kafka.c). Call once,
 * after lt_consumer_new; lt_consumer_destroy stops it. -1 if the thread
 * could not start (the consumer works, only slower). */
int lt_consumer_refill_every(lt_consumer_t *c, int interval_ms);
/* Stores offset+1 of rkm for the next commit. */
lt_err_t lt_consumer_store(lt_consumer_t *c, const rd_kafka_message_t *rkm);
/* Stores an explicit next offset for topic/partition. */
lt_err_t lt_consumer_store_offset(lt_consumer_t *c, const char *topic, int32_t partition,
                                  int64_t next_offset);
/* Called for each partition a commit (auto or final) confirmed, with the
 * offset committed (the next to consume), in the thread that polls the
 * consumer (or destroys it). Set before the first poll; fn NULL: none. */
typedef void (*lt_commit_fn)(void *arg, const char *topic, int32_t partition, int64_t offset);
void lt_consumer_on_commit(lt_consumer_t *c, lt_commit_fn fn, void *arg);
/* Commits stored offsets synchronously, closes and destroys; accepts NULL. */
void lt_consumer_destroy(lt_consumer_t *c);
rd_kafka_t *lt_consumer_handle(lt_consumer_t *c);

/* Creates topics that do not exist (admin API), with `partitions` each and
 * optional config pairs ("cleanup.policy", "compact", ...) via NULL-terminated
 * list. Existing topics are fine. */
lt_err_t lt_kafka_create_topic(const lt_config_t *cfg, const char *topic, int partitions,
                               const char *const *configs, char *errstr, size_t errlen);

/* Reads a whole topic from the beginning to its current end (every
 * partition's high watermark at the call), calling fn for each message; used
 * for compacted state like ltvsync.integrations. Order holds per partition
 * only. A topic that does not exist reads as empty (LT_OK). Returns LT_OK or
 * an error. */
typedef void (*lt_kafka_read_fn)(const rd_kafka_message_t *rkm, void *opaque);
lt_err_t lt_kafka_read_all(const lt_config_t *cfg, const char *topic, lt_kafka_read_fn fn,
                           void *opaque, int timeout_ms, char *errstr, size_t errlen);

/* Reads partitions[i] of topic, on the cluster of prefix ("KAFKA_" or
 * "DOWNSTREAM_KAFKA_", as lt_producer_new), from offset from[i] up to the
 * high watermark it has at the call, handing each message to fn (in order
 * per partition). LT_OK, or an error with errstr (unreachable, not done
 * within timeout_ms, or stopped). stop (may be NULL) is asked at least
 * once a second: when it answers 1 the read gives up (LT_ERR_RETRIABLE),
 * so a shutdown never waits for a slow cluster's timeout. */
typedef int (*lt_kafka_stop_fn)(void *arg);

/* The end offsets (high watermarks) of n partitions of topic, in ends[],
 * within timeout_ms (rd_kafka_offsets_for_times: one request per leader;
 * rd_kafka_query_watermark_offsets would wait for its request's own
 * timeout, 60 s, when a broker does not answer). */
rd_kafka_resp_err_t lt_kafka_end_offsets(rd_kafka_t *rk, const char *topic,
                                         const int32_t *partitions, int n, int64_t *ends,
                                         int timeout_ms);
/* The partition ids of topic, from its metadata, in *ids (the caller frees
 * it). Returns the count, 0 when the topic does not exist, -1 on error
 * (*err says which; RD_KAFKA_RESP_ERR__FAIL when out of memory). */
int lt_kafka_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms, int32_t **ids,
                        rd_kafka_resp_err_t *err);
lt_err_t lt_kafka_read_from(const lt_config_t *cfg, const char *prefix, const char *topic,
                            const int32_t *partitions, const int64_t *from, int n,
                            lt_kafka_read_fn fn, void *opaque, lt_kafka_stop_fn stop,
                            void *stop_arg, int timeout_ms, char *errstr, size_t errlen);

/* A group-less reader that keeps a whole topic: every partition from the
 * beginning, then each message appended, for the life of the process (a
 * live view of a compacted control topic such as ltvsync.integrations,
 * without a new client per read). A topic that does not exist yet is looked
 * for again every second. Partitions added later are not followed. One
 * thread. */
typedef struct lt_tail_s lt_tail_t;
lt_tail_t *lt_tail_new(const lt_config_t *cfg, const char *topic, char *errstr, size_t errlen);
/* Hands the messages that arrive within timeout_ms to fn: waits for the
 * first, then takes what is already there. Returns the count handed (0
 * when none came; consumer errors are logged, at most once per 10 s each). */
int lt_tail_poll(lt_tail_t *t, lt_kafka_read_fn fn, void *opaque, int timeout_ms);
/* Reads (handing each message to fn) until every partition reached the end
 * it has now: what a fresh read of the whole topic would see. 0, or -1 with
 * errstr (unreachable, or not done within timeout_ms). */
int lt_tail_read_to_end(lt_tail_t *t, lt_kafka_read_fn fn, void *opaque, int timeout_ms,
                        char *errstr, size_t errlen);
/* 1 once every partition was read to the end it had when first assigned. */
int lt_tail_caught_up(const lt_tail_t *t);
void lt_tail_destroy(lt_tail_t *t); /* accepts NULL */

/* For handles made outside this module (the devbroker, tests): routes
 * librdkafka's log lines and errors into lt_log. Call set_logging on the conf
 * before rd_kafka_new and route_logs on the new handle; the lines are then
 * served by rd_kafka_poll (or rd_kafka_consumer_poll after
 * rd_kafka_poll_set_consumer) in the caller's thread. */
void lt_kafka_conf_set_logging(rd_kafka_conf_t *conf);
void lt_kafka_route_logs(rd_kafka_t *rk);

#endif
