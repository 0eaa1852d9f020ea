/* The scheduler's parts: the leader lease (leader.c) and the job plan for
 * one integration (plan.c). main.c wires them to Kafka and Redis. */
#ifndef LTVSYNC_SCHEDULER_H
#define LTVSYNC_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>
#include "lt_config.h"
#include "lt_integration.h"
#include "lt_kafka.h"
#include "lt_redis.h"

/* Leader lease: "holder token" under P leader with a PX TTL, and a fencing
 * token from INCR P fence at each new term (both lt_rkey_global keys). */
typedef struct {
    char holder[64]; /* this process: host:pid:random */
    long long token; /* fencing token of the current term, 0 when not leader */
    long long ttl_ms;
} sched_lease_t;

/* Acquires or renews; returns 1 while leader, 0 when another holds it,
 * -1 when Redis is unreachable (then the caller must stop emitting). */
int sched_lease_tick(lt_redis_t *r, const char *prefix, sched_lease_t *lease);
void sched_lease_release(lt_redis_t *r, const char *prefix, sched_lease_t *lease);
/* Called when an integration's fence (P i:ID:fence) holds seen, a token
 * above the lease's: while the lease is still this process's, starts a new
 * term with a token above seen and returns it (lease->token updated); 0
 * when another holds the lease (the refusal was right), -1 when Redis did
 * not answer. The fence can be ahead of the holder only when P fence was
 * lost or went back (a Redis restarted empty between a claim and the next
 * lease renewal; in a cluster, the control-plane slot's master failed over
 * without its last writes) while the integration's key kept a later token:
 * without this, the leader would be refused there until its tokens caught
 * up. */
long long sched_lease_raise(lt_redis_t *r, const char *prefix, sched_lease_t *lease,
                            long long seen);

/* The claims a Redis failure left in doubt (doubt.c): a claim script or
 * a release not answered, a mark_queued not answered. Each is settled by
 * its exact claim value once Redis answers again, instead of holding its
 * day until the claim script presumes it lost (45 s) and fetching it again. */
typedef enum { SCHED_DOUBT_RELEASE, SCHED_DOUBT_QUEUED } sched_doubt_kind_t;
typedef struct sched_doubt_s sched_doubt_t;
/* At most max entries (beyond them a claim waits for the claim script's
 * rule, as without this list). */
sched_doubt_t *sched_doubt_new(size_t max);
void sched_doubt_destroy(sched_doubt_t *d); /* accepts NULL */
size_t sched_doubt_count(const sched_doubt_t *d);
/* key: the integration's outstanding hash; value: the claim as written.
 * 0; -2 when full; -1 when a name does not fit (or d is NULL). */
int sched_doubt_add(sched_doubt_t *d, sched_doubt_kind_t kind, const char *key, const char *jobkey,
                    const char *value);
/* Adds refused as full since the list last took one: 1 on the first refusal
 * of each fill, so a caller can warn once per fill. */
unsigned long sched_doubt_refused(const sched_doubt_t *d);
/* Runs one entry's script: 0 when Redis answered, -1 when it did not. */
typedef int (*sched_doubt_apply_fn)(void *arg, sched_doubt_kind_t kind, const char *key,
                                    const char *jobkey, const char *value);
/* Applies every entry once, in order, up to the first failure; an entry is
 * settled after one answered application (queued) or two, in two sweeps
 * (release: see doubt.c). Returns the number settled. */
int sched_doubt_sweep(sched_doubt_t *d, sched_doubt_apply_fn apply, void *arg);

typedef struct {
    const lt_config_t *cfg;
    lt_redis_t *redis;
    lt_producer_t *producer;
    const char *prefix;
    sched_lease_t *lease; /* plan.c raises its token (sched_lease_raise) */
    char run_id[37];
    long long now_ms;
    sched_doubt_t *doubt; /* NULL: claims in doubt wait for PENDING_CLAIM_MS */
} sched_ctx_t;

/* Settles the claims in doubt (sched_doubt_sweep with plan.c's scripts);
 * call it only after a command to Redis was answered. Returns the number
 * settled. */
int sched_settle_doubts(sched_ctx_t *ctx);

/* Emits what is due for one integration: backfill days, the live window and
 * the chargeback lookback. Returns the number of jobs emitted, -1 on a Redis
 * or Kafka failure (retried next tick). *quiet_until_ms: 0 when it must be
 * planned again next pass (a backfill under way, a window held by the cap or
 * an unconfirmed claim, parked, a failure); otherwise the time before which
 * nothing of it can come due while its document and its local day stay the
 * same (the next live run or lookback). */
int sched_plan_integration(sched_ctx_t *ctx, const lt_integration_t *in, long long *quiet_until_ms);

/* The integrations a pass may skip (due.c), so that a pass costs Redis
 * commands only for what is due: caught-up integrations between their live
 * runs cost a table lookup. An entry holds while the integration's
 * document (hash), its local day and the time hold; the caller clears the
 * table at every new leader term and whenever Redis lost its state. */
typedef struct sched_due_s sched_due_t;
sched_due_t *sched_due_new(void);
void sched_due_destroy(sched_due_t *d); /* accepts NULL */
void sched_due_clear(sched_due_t *d);
size_t sched_due_count(const sched_due_t *d);
uint64_t sched_due_doc_hash(const lt_integration_t *in);
/* Starts a pass: every integration of the registry is then looked up once
 * (sched_due_skip), so one absent from a pass is planned when it is back. */
void sched_due_next_pass(sched_due_t *d);
/* 1 when the integration was found quiet until after now_ms, with this
 * document and on this local day, by the previous pass or earlier ones. */
int sched_due_skip(sched_due_t *d, const lt_integration_t *in, uint64_t doc, long long now_ms,
                   const char *day);
/* Records a plan's outcome; until_ms 0: plan it every pass. */
void sched_due_set(sched_due_t *d, const lt_integration_t *in, uint64_t doc, long long until_ms,
                   const char *day);

#endif
