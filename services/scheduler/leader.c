/* Leader lease with fencing. Only the leader emits jobs; every job claim in
 * plan.c re-checks the lease inside the same Lua script, so a paused former
 * leader whose lease expired cannot claim anything. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_log.h"
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

    snprintf(kleader, sizeof(kleader), "%sleader", prefix);
    snprintf(kfence, sizeof(kfence), "%sfence", prefix);
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
    snprintf(kleader, sizeof(kleader), "%sleader", prefix);
    snprintf(value, sizeof(value), "%s %lld", lease->holder, lease->token);
    argv[0] = kleader, argv[1] = value;
    lens[0] = strlen(kleader), lens[1] = strlen(value);
    if ((reply = lt_redis_eval(r, &release_script, 1, 2, argv, lens)))
        freeReplyObject(reply);
    lease->token = 0;
    lt_info("released the leader lease");
}
