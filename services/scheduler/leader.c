/* Leader lease with fencing. Only the leader emits jobs. Each term gets a
 * fencing token (INCR P fence); every job claim in plan.c carries it into
 * the integration's own keys (P i:ID:fence), where a token older than one
 * already seen is refused, so a paused former leader whose lease expired
 * cannot claim in an integration the new leader touched. Both keys here are
 * control-plane keys (lt_rkey_global: one hash tag in a cluster), so each
 * script below touches one slot. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_log.h"
#include "lt_rkeys.h"
#include "scheduler.h"

static lt_redis_script_t lease_script = {
    .source = "local cur = redis.call('GET', KEYS[1])\n"
              "if cur then\n"
              "  local holder, token = string.match(cur, '^(%S+) (%d+)$')\n"
              "  if holder == ARGV[1] then\n"
              "    redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
              "    return tonumber(token)\n"
              "  end\n"
              "  return 0\n"
              "end\n"
              "local token = redis.call('INCR', KEYS[2])\n"
              "redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. token, 'PX', ARGV[2])\n"
              "return token\n",
};

/* KEYS leader, fence; ARGV "holder token" (the lease as held), holder,
 * seen, ttl_ms. While the caller still holds the lease, starts a new term
 * whose token is above both the counter and seen (a token an integration's
 * fence holds), and returns it; 0 when the lease is no longer the caller's. */
static lt_redis_script_t raise_script = {
    .source = "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
              "local token = redis.call('INCR', KEYS[2])\n"
              "if token <= tonumber(ARGV[3]) then\n"
              "  token = tonumber(ARGV[3]) + 1\n"
              "  redis.call('SET', KEYS[2], token)\n"
              "end\n"
              "redis.call('SET', KEYS[1], ARGV[2] .. ' ' .. token, 'PX', ARGV[4])\n"
              "return token\n",
};

static lt_redis_script_t release_script = {
    .source = "local cur = redis.call('GET', KEYS[1])\n"
              "if cur == ARGV[1] then return redis.call('DEL', KEYS[1]) end\n"
              "return 0\n",
};

int sched_lease_tick(lt_redis_t *r, const char *prefix, sched_lease_t *lease)
{
    char kleader[256], kfence[256], ttl[32];
    const char *argv[4];
    size_t lens[4];
    redisReply *reply;
    long long token;

    lt_rkey_global(kleader, sizeof(kleader), prefix, "leader");
    lt_rkey_global(kfence, sizeof(kfence), prefix, "fence");
    snprintf(ttl, sizeof(ttl), "%lld", lease->ttl_ms);
    argv[0] = kleader, argv[1] = kfence, argv[2] = lease->holder, argv[3] = ttl;
    for (int i = 0; i < 4; i++)
        lens[i] = strlen(argv[i]);
    if (!(reply = lt_redis_eval(r, &lease_script, 2, 4, argv, lens))) {
        if (lease->token)
            lt_warn("redis unreachable, stepping down as leader: %s", lt_redis_errstr(r));
        lease->token = 0;
        return -1;
    }
    token = reply->type == REDIS_REPLY_INTEGER ? reply->integer : 0;
    if (reply->type == REDIS_REPLY_ERROR)
        lt_error("lease script: %.*s", (int)reply->len, reply->str);
    freeReplyObject(reply);
    if (token && token != lease->token)
        lt_info("became leader (fencing token %lld)", token);
    else if (!token && lease->token)
        lt_warn("lost the leader lease");
    lease->token = token;
    return token ? 1 : 0;
}

void sched_lease_release(lt_redis_t *r, const char *prefix, sched_lease_t *lease)
{
    char kleader[256], value[128];
    const char *argv[2];
    size_t lens[2];
    redisReply *reply;
    if (!lease->token)
        return;
    lt_rkey_global(kleader, sizeof(kleader), prefix, "leader");
    snprintf(value, sizeof(value), "%s %lld", lease->holder, lease->token);
    argv[0] = kleader, argv[1] = value;
    lens[0] = strlen(kleader), lens[1] = strlen(value);
    if ((reply = lt_redis_eval(r, &release_script, 1, 2, argv, lens)))
        freeReplyObject(reply);
    lease->token = 0;
    lt_info("released the leader lease");
}

long long sched_lease_raise(lt_redis_t *r, const char *prefix, sched_lease_t *lease, long long seen)
{
    char kleader[256], kfence[256], held[128], above[24], ttl[24];
    const char *argv[6];
    size_t lens[6];
    redisReply *reply;
    long long token = 0;

    if (!lease->token)
        return 0;
    lt_rkey_global(kleader, sizeof(kleader), prefix, "leader");
    lt_rkey_global(kfence, sizeof(kfence), prefix, "fence");
    snprintf(held, sizeof(held), "%s %lld", lease->holder, lease->token);
    snprintf(above, sizeof(above), "%lld", seen);
    snprintf(ttl, sizeof(ttl), "%lld", lease->ttl_ms);
    argv[0] = kleader, argv[1] = kfence, argv[2] = held, argv[3] = lease->holder;
    argv[4] = above, argv[5] = ttl;
    for (int i = 0; i < 6; i++)
        lens[i] = strlen(argv[i]);
    if (!(reply = lt_redis_eval(r, &raise_script, 2, 6, argv, lens)))
        return -1;
    if (reply->type == REDIS_REPLY_INTEGER)
        token = reply->integer;
    else
        token = -1;
    if (reply->type == REDIS_REPLY_ERROR)
        lt_error("raise script: %.*s", (int)reply->len, reply->str);
    freeReplyObject(reply);
    if (token <= 0)
        return token;
    lt_warn("fencing token %lld was behind one an integration had seen (%lld): the counter "
            "was lost or went back; new term with token %lld",
            lease->token, seen, token);
    lease->token = token;
    return token;
}
