/* The scheduler's parts: the leader lease (leader.c) and the job plan for
 * one integration (plan.c). main.c wires them to Kafka and Redis. */
#ifndef LTVSYNC_SCHEDULER_H
#define LTVSYNC_SCHEDULER_H

#include "lt_config.h"
#include "lt_integration.h"
#include "lt_kafka.h"
#include "lt_redis.h"

/* Leader lease: "holder token" under P leader with a PX TTL, and a fencing
 * token from INCR P fence at each new term. */
typedef struct {
    char holder[64]; /* this process: host:pid:random */
    long long token; /* fencing token of the current term, 0 when not leader */
    long long ttl_ms;
} sched_lease_t;

/* Acquires or renews; returns 1 while leader, 0 when another holds it,
 * -1 when Redis is unreachable (then the caller must stop emitting). */
int sched_lease_tick(lt_redis_t *r, const char *prefix, sched_lease_t *lease);
void sched_lease_release(lt_redis_t *r, const char *prefix, sched_lease_t *lease);

typedef struct {
    const lt_config_t *cfg;
    lt_redis_t *redis;
    lt_producer_t *producer;
    const char *prefix;
    const sched_lease_t *lease;
    char run_id[37];
    long long now_ms;
} sched_ctx_t;

/* Emits what is due for one integration: backfill days, the live window and
 * the chargeback lookback. Returns the number of jobs emitted, -1 on a Redis
 * or Kafka failure (retried next tick). */
int sched_plan_integration(sched_ctx_t *ctx, const lt_integration_t *in);

#endif
