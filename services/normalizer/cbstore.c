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
 * in one EVALSHA, in offset order.
 *
 *   P cbp:{topic}:{partition}  STRING "1"
 *     the state of that raw partition exists. A history is only right if
 *     every earlier row of its partition was applied; a Redis that restarted
 *     empty forgets them, and the next row of a charged-back sale would pass
 *     for a first chargeback (rewriting chargeback 1 with another date). So
 *     the script checks each row's partition key first: missing, it is
 *     created only when this consumer read the partition from its first
 *     offset and has used no state of it yet (mode 's'); otherwise the
 *     script writes nothing and answers {"LOST", partition}, and the
 *     normalizer reads that partition again from its first offset
 *     (main.c rebuild), which rebuilds every history in order. A legacy entry the script cannot read
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
              "local nk = #KEYS / 2\n"
              "local ok = {}\n"
              "for i = 1, nk do\n"
              "  local pk = KEYS[nk + i]\n"
              "  if not ok[pk] then\n"
              "    if redis.call('EXISTS', pk) == 1 then ok[pk] = true\n"
              "    elseif ARGV[4 * nk + i] == 's' then redis.call('SET', pk, '1'); ok[pk] = true\n"
              "    else return {'LOST', ARGV[(i - 1) * 4 + 1]} end\n"
              "  end\n"
              "end\n"
              "local out = {}\n"
              "for i = 1, nk do\n"
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

static uint8_t pmode(const norm_t *n, int32_t p)
{
    return p >= 0 && (size_t)p < n->npart ? n->pmode[p] : NORM_P_UNKNOWN;
}

int norm_partition_seen(norm_t *n, const rd_kafka_message_t *rkm)
{
    int32_t p = rkm->partition;
    int64_t lo = 0, hi = 0;
    if (p < 0)
        return 0;
    if ((size_t)p >= n->npart) {
        size_t np = (size_t)p + 1 > 2 * n->npart ? (size_t)p + 1 : 2 * n->npart;
        uint8_t *m = realloc(n->pmode, np), *r;
        if (!m)
            return -1;
        n->pmode = m;
        if (!(r = realloc(n->rewound, np)))
            return -1;
        n->rewound = r;
        memset(n->pmode + n->npart, 0, np - n->npart);
        memset(n->rewound + n->npart, 0, np - n->npart);
        n->npart = np;
    }
    if (n->pmode[p] != NORM_P_UNKNOWN)
        return 0;
    if (n->rewound[p]) {
        n->pmode[p] = NORM_P_START;
        n->rewound[p] = 0;
    } else if (rd_kafka_query_watermark_offsets(lt_consumer_handle(n->cons), n->topic_raw, p, &lo,
                                                &hi, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
               rkm->offset <= lo) {
        n->pmode[p] = NORM_P_START;
    } else {
        n->pmode[p] = NORM_P_KEPT; /* or the low mark is unknown: a lookup tells */
    }
    return 0;
}

void norm_partitions_rewind(norm_t *n)
{
    rd_kafka_t *rk = lt_consumer_handle(n->cons);
    for (int i = 0; i < n->nlost; i++) {
        int32_t p = n->lost[i];
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t err =
            rd_kafka_query_watermark_offsets(rk, n->topic_raw, p, &lo, &hi, 5000);
        if (err) {
            lt_error("partition %d: its first offset is unknown (%s): it restarts from the "
                     "committed offset; its chargeback state stays incomplete",
                     (int)p, rd_kafka_err2str(err));
            continue;
        }
        lt_warn("partition %d: chargeback state lost (Redis restarted empty?): reading it again "
                "from offset %lld to rebuild every history",
                (int)p, (long long)lo);
        lt_consumer_store_offset(n->cons, n->topic_raw, p, lo);
        if ((size_t)p < n->npart)
            n->rewound[p] = 1;
    }
    n->nlost = 0;
    memset(n->pmode, NORM_P_UNKNOWN, n->npart);
}

static void args_release(norm_cb_call_t *a)
{
    for (size_t i = 0; a->keys && i < 2 * a->n; i++)
        free(a->keys[i]);
    free(a->argv);
    free(a->lens);
    free(a->nums);
    free(a->keys);
    free(a->idx);
    memset(a, 0, sizeof(*a));
}

/* KEYS: the entries' keys, then each entry's partition key; ARGV:
 * (partition, offset, flag, dateUpdated) per entry, then each entry's mode
 * ('s' or 'k', see above). */
static size_t args_build(norm_t *n, norm_msg_t *msgs, size_t count, norm_cb_call_t *a)
{
    size_t k = 0, nk = 0;
    for (size_t i = 0; i < count; i++)
        nk += msgs[i].probe.applies && !msgs[i].reason[0];
    a->argv = calloc(nk * 7 + 1, sizeof(*a->argv));
    a->lens = calloc(nk * 7 + 1, sizeof(*a->lens));
    a->nums = calloc(nk + 1, sizeof(*a->nums));
    a->keys = calloc(nk * 2 + 1, sizeof(*a->keys));
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
        if (asprintf(&a->keys[nk + k], "%scbp:%s:%d", n->prefix, n->topic_raw,
                     (int)m->rkm->partition) < 0) {
            a->keys[nk + k] = NULL;
            return (size_t)-1;
        }
        snprintf(a->nums[k][0], sizeof(a->nums[k][0]), "%d", (int)m->rkm->partition);
        snprintf(a->nums[k][1], sizeof(a->nums[k][1]), "%lld", (long long)m->rkm->offset);
        a->argv[k] = a->keys[k];
        a->argv[nk + k] = a->keys[nk + k];
        a->argv[2 * nk + k * 4] = a->nums[k][0];
        a->argv[2 * nk + k * 4 + 1] = a->nums[k][1];
        a->argv[2 * nk + k * 4 + 2] = m->probe.flag ? "1" : "0";
        a->argv[2 * nk + k * 4 + 3] = m->probe.date_updated;
        a->argv[6 * nk + k] = pmode(n, m->rkm->partition) == NORM_P_START ? "s" : "k";
        a->idx[k++] = i;
    }
    for (size_t j = 0; j < nk * 7; j++)
        a->lens[j] = strlen(a->argv[j]);
    return nk;
}

static int take_reply(norm_t *n, norm_msg_t *msgs, const norm_cb_call_t *a, size_t nk,
                      redisReply *reply)
{
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_STRING && !strcmp(reply->element[0]->str, "LOST") &&
        reply->element[1]->type == REDIS_REPLY_STRING) {
        int32_t p = (int32_t)atoi(reply->element[1]->str);
        int seen = 0;
        for (int i = 0; i < n->nlost; i++)
            seen |= n->lost[i] == p;
        if (!seen && n->nlost < (int)(sizeof(n->lost) / sizeof(n->lost[0])))
            n->lost[n->nlost++] = p;
        return NORM_LOST;
    }
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
        /* its state exists now: from here on, missing means lost */
        if ((size_t)m->rkm->partition < n->npart)
            n->pmode[m->rkm->partition] = NORM_P_KEPT;
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
    redisReply *reply =
        lt_redis_eval(n->redis, &cb_script, (int)(2 * nk), (int)(nk * 7), a.argv, a.lens);
    rc = take_reply(n, msgs, &a, nk, reply);
    if (rc == -1)
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
        (nk > 0 && lt_redis_eval_send(n->redis, &cb_script, (int)(2 * nk), (int)(nk * 7),
                                      call->argv, call->lens) != 0)) {
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
        redisReply *reply = lt_redis_eval_recv(n->redis, &cb_script, (int)(2 * call->n),
                                               (int)(call->n * 7), call->argv, call->lens);
        rc = take_reply(n, call->msgs, call, call->n, reply);
        if (rc == -1)
            warn_reply(n, reply);
        if (reply)
            freeReplyObject(reply);
    }
    args_release(call);
    return rc;
}
