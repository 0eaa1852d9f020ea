/* Chargeback history in Redis, one hash per charged-back transaction:
 *
 *   P i:{integration}:cb:{transactionId}  HASH
 *     j   history, a JSON array of entries, oldest first:
 *         ["C","<partition>","<offset>"]                 charged back
 *         ["R","<partition>","<offset>","<dateUpdated>"] reverted
 *         (see lt_cb_state_at; numbers as strings so that no offset ever
 *         passes through a Lua double or cjson's %.14g)
 *     p,o partition and offset of the last raw row applied
 *     du  the newest dateUpdated applied
 *     h   (before 2026-12) the same history as text "C,p,o;R,p,o,du;...":
 *         converted to j by the first write, and read as j before that
 *
 * The history is built with cjson in the script, never by splicing text:
 * a dateUpdated holding ';' or '"' cannot add or change an entry.
 *
 * Replay safety: a row at an offset at or below the last applied one (same
 * partition) is a replay or a redelivery: the script answers with the
 * history and changes nothing, and the caller reads the state as of that
 * offset, so replaying ltvsync.raw from the start yields the same events.
 * A new row changes the state only when its flag differs from the current
 * state and its dateUpdated is not older than the newest applied (a stale
 * copy fetched earlier but written later must not fake a reversal).
 * Transactions never charged back get no key at all. All rows of a batch go
 * in one EVALSHA, in offset order. A legacy entry the script cannot read
 * answers "!" (never JSON): the caller dead-letters the row as malformed
 * state and the key is left as it is. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_log.h"
#include "normalizer.h"

static lt_redis_script_t cb_script = {
    .source = "local function legacy(t)\n"
              "  local h = {}\n"
              "  for e in string.gmatch(t, '[^;]+') do\n"
              "    local k, p, o, rest = string.match(e, '^([CR]),(%d+),(%d+)(.*)$')\n"
              "    if k == 'C' and rest == '' then h[#h + 1] = {k, p, o}\n"
              "    elseif k == 'R' and string.sub(rest, 1, 1) == ',' then\n"
              "      h[#h + 1] = {k, p, o, string.sub(rest, 2)}\n"
              "    else return nil end\n"
              "  end\n"
              "  return h\n"
              "end\n"
              "local function enc(h)\n"
              "  if #h == 0 then return '[]' end\n"
              "  return cjson.encode(h)\n"
              "end\n"
              "local out = {}\n"
              "for i = 1, #KEYS do\n"
              "  local k, a = KEYS[i], (i - 1) * 4\n"
              "  local p, o, flag, du = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]\n"
              "  local v = redis.call('HMGET', k, 'p', 'o', 'du', 'j', 'h')\n"
              "  local h\n"
              "  if v[4] then\n"
              "    local ok, d = pcall(cjson.decode, v[4])\n"
              "    if ok and type(d) == 'table' then h = d end\n"
              "  else\n"
              "    h = legacy(v[5] or '')\n"
              "  end\n"
              "  if not h then\n"
              "    out[i] = '!'\n"
              "  elseif not v[1] and flag == '0' then\n"
              "    out[i] = ''\n"
              "  elseif v[1] == p and tonumber(v[2]) >= tonumber(o) then\n"
              "    out[i] = enc(h)\n"
              "  else\n"
              "    local last = type(h[#h]) == 'table' and h[#h][1]\n"
              "    local cur = v[3] or ''\n"
              "    if du >= cur then\n"
              "      if flag == '1' and last ~= 'C' then\n"
              "        h[#h + 1] = {'C', p, o}\n"
              "      elseif flag == '0' and last == 'C' then\n"
              "        h[#h + 1] = {'R', p, o, du}\n"
              "      end\n"
              "      cur = du\n"
              "    end\n"
              "    out[i] = enc(h)\n"
              "    redis.call('HSET', k, 'p', p, 'o', o, 'du', cur, 'j', out[i])\n"
              "    if v[5] then redis.call('HDEL', k, 'h') end\n"
              "  end\n"
              "end\n"
              "return out\n",
};

static void args_release(norm_cb_call_t *a)
{
    for (size_t i = 0; a->keys && i < a->n; i++)
        free(a->keys[i]);
    free(a->argv);
    free(a->lens);
    free(a->nums);
    free(a->keys);
    free(a->idx);
    memset(a, 0, sizeof(*a));
}

/* KEYS then (partition, offset, flag, dateUpdated) per entry. */
static size_t args_build(norm_t *n, norm_msg_t *msgs, size_t count, norm_cb_call_t *a)
{
    size_t k = 0, nk = 0;
    for (size_t i = 0; i < count; i++)
        nk += msgs[i].probe.applies && !msgs[i].reason[0];
    a->argv = calloc(nk * 5 + 1, sizeof(*a->argv));
    a->lens = calloc(nk * 5 + 1, sizeof(*a->lens));
    a->nums = calloc(nk + 1, sizeof(*a->nums));
    a->keys = calloc(nk + 1, sizeof(*a->keys));
    a->idx = calloc(nk + 1, sizeof(*a->idx));
    a->n = nk;
    if (!a->argv || !a->lens || !a->nums || !a->keys || !a->idx)
        return (size_t)-1;
    for (size_t i = 0; i < count; i++) {
        norm_msg_t *m = &msgs[i];
        if (!m->probe.applies || m->reason[0])
            continue;
        if (asprintf(&a->keys[k], "%si:%s:cb:%s", n->prefix, m->integ.id, m->probe.transaction_id) <
            0) {
            a->keys[k] = NULL;
            return (size_t)-1;
        }
        snprintf(a->nums[k][0], sizeof(a->nums[k][0]), "%d", (int)m->rkm->partition);
        snprintf(a->nums[k][1], sizeof(a->nums[k][1]), "%lld", (long long)m->rkm->offset);
        a->argv[k] = a->keys[k];
        a->argv[nk + k * 4] = a->nums[k][0];
        a->argv[nk + k * 4 + 1] = a->nums[k][1];
        a->argv[nk + k * 4 + 2] = m->probe.flag ? "1" : "0";
        a->argv[nk + k * 4 + 3] = m->probe.date_updated;
        a->idx[k++] = i;
    }
    for (size_t j = 0; j < nk * 5; j++)
        a->lens[j] = strlen(a->argv[j]);
    return nk;
}

static int take_reply(norm_msg_t *msgs, const norm_cb_call_t *a, size_t nk, redisReply *reply)
{
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != nk)
        return -1;
    for (size_t k = 0; k < nk; k++) {
        const redisReply *el = reply->element[k];
        norm_msg_t *m = &msgs[a->idx[k]];
        if (el->type != REDIS_REPLY_STRING)
            return -1;
        free(m->history);
        m->history = malloc(el->len + 1);
        if (!m->history)
            return -1;
        memcpy(m->history, el->str, el->len);
        m->history[el->len] = '\0';
        m->history_len = el->len;
    }
    return 0;
}

static void warn_reply(norm_t *n, const redisReply *reply)
{
    lt_warn("chargeback state: %s", !reply                             ? lt_redis_errstr(n->redis)
                                    : reply->type == REDIS_REPLY_ERROR ? reply->str
                                                                       : "unexpected reply");
}

int norm_cb_fetch(norm_t *n, norm_msg_t *msgs, size_t count)
{
    norm_cb_call_t a = {0};
    size_t nk = args_build(n, msgs, count, &a);
    int rc = -1;
    if (nk == (size_t)-1)
        goto end;
    if (nk == 0) {
        rc = 0;
        goto end;
    }
    redisReply *reply = lt_redis_eval(n->redis, &cb_script, (int)nk, (int)(nk * 5), a.argv, a.lens);
    rc = take_reply(msgs, &a, nk, reply);
    if (rc != 0)
        warn_reply(n, reply);
    if (reply)
        freeReplyObject(reply);
end:
    args_release(&a);
    return rc;
}

int norm_cb_send(norm_t *n, norm_msg_t *msgs, size_t count, norm_cb_call_t *call)
{
    size_t nk = args_build(n, msgs, count, call);
    call->msgs = msgs;
    if (nk == (size_t)-1 ||
        (nk > 0 && lt_redis_eval_send(n->redis, &cb_script, (int)nk, (int)(nk * 5), call->argv,
                                      call->lens) != 0)) {
        args_release(call);
        return -1;
    }
    call->sent = nk > 0;
    return 0;
}

int norm_cb_recv(norm_t *n, norm_cb_call_t *call)
{
    int rc = 0;
    if (call->sent) {
        redisReply *reply = lt_redis_eval_recv(n->redis, &cb_script, (int)call->n,
                                               (int)(call->n * 5), call->argv, call->lens);
        rc = take_reply(call->msgs, call, call->n, reply);
        if (rc != 0)
            warn_reply(n, reply);
        if (reply)
            freeReplyObject(reply);
    }
    args_release(call);
    return rc;
}
