/* Chargeback history in Redis, one hash per charged-back transaction:
 *
 *   P i:{integration}:cb:{transactionId}  HASH
 *     (lt_rkeys: P i:ID:cb:TXN on one Redis, P i:{ID}:cb:TXN in a cluster)
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
 * Transactions never charged back get no key at all.
 *
 * Whether the state exists: a history is only right if every earlier row
 * of its partition was applied; a Redis that restarted empty forgets them,
 * and the next row of a charged-back sale would pass for a first
 * chargeback (rewriting chargeback 1 with another date). So every script
 * call checks a marker per raw partition before any write: missing, it is
 * created only when this consumer read the partition from its first offset
 * and has used no state of it yet (mode 's'); otherwise the script writes
 * nothing and answers {"LOST", partition...}, and the normalizer reads
 * that partition again from its first offset (main.c rebuild), which
 * rebuilds every history in order.
 *
 * One Redis: all rows of a chunk go in one EVALSHA, in offset order, and
 * the marker is
 *
 *   P cbp:{topic}:{partition}  STRING "1"
 *
 * Redis Cluster: a script may touch one slot only, and one master can come
 * back empty while the others keep their data, so a marker in another slot
 * proves nothing about an integration's histories. The rows of a chunk are
 * grouped by integration (its keys share the hash tag {ID}): one EVALSHA
 * per group, its rows in offset order, and the markers are in its slot:
 *
 *   P i:{ID}:cbp  HASH  "{topic}:{partition}" -> "1"
 *
 * Mode 's' is then per (partition, integration): this consumer read the
 * partition from its first offset and has not yet used that integration's
 * state in it. (Per partition, as on one Redis, an integration whose rows
 * come later in the partition than another's would be found "lost" once
 * the other's state was used, in the rebuild too: a rebuild for ever.)
 *
 * A missing marker is ambiguous there: a new integration, or a slot that
 * lost its data. A set per partition, in the control-plane slot, tells:
 *
 *   P {g}:cbp:{topic}:{partition}  SET
 *     ids of the integrations with state in that partition, and
 *     "."      the set exists (never empty)
 *     "#"      it may lack some: made again after it was lost
 *     "@TOKEN" a pass (below) under way (one that stopped leaves its
 *              token: it only costs its bytes)
 *
 * When a group's script finds a marker missing in mode 'k', the normalizer
 * asks the set (cbg_script 'n'): it holds neither the id nor "#": a new
 * integration, the id is added and the group runs again allowed to create
 * that marker; the id is there, or "#", or the set is missing: LOST for
 * that partition. In mode 's' the id is added before the script may create
 * the marker. Orders: the id goes in before the marker is made, so a crash
 * between the two leaves "in the set, no marker", read as LOST: a needless
 * rebuild, never a wrong history; the other order could leave a marker
 * whose id is not in the set, and once its slot lost its data that
 * integration would pass for new and start its histories mid-partition,
 * the very error the markers exist to prevent. The set is asked only after
 * the marker was found missing; a marker made in between (by a consumer of
 * another group) only makes the answer LOST.
 *
 * "Not in the set" means new only if the set holds every integration that
 * has state in the partition. A pass (a consumer reading the partition from
 * its first offset: a rebuild, a first run) adds "@TOKEN" when it begins
 * (the set is made with "#" when missing), adds every integration it meets,
 * its marker found or not, and once it reached the partition's end as of
 * its start removes "#" if "@TOKEN" is still there (the set lived through
 * the whole pass). A set lost and made again, or a pass stopped half way (a
 * restart, a rebalance), leaves "#": then any missing marker or new
 * integration is LOST, and that rebuild is a whole pass, which mends the
 * set. (Were only the ids whose marker was missing added, a set made again
 * after the control-plane slot lost its data would lack every integration
 * whose own slot survived, and a later loss of theirs would pass for new.)
 *
 * A legacy entry the script cannot read answers "!" (never JSON): the
 * caller dead-letters the row as malformed state and the key is left as it
 * is. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_log.h"
#include "lt_rkeys.h"
#include "lt_uuid.h"
#include "normalizer.h"

/* The script's parts: the legacy reader and encoder, the marker check of
 * each layout, and the rows (ARGV (partition, offset, flag, dateUpdated)
 * per row, keys KEYS[1..nk], in both layouts). */
#define CB_LUA_FUNCS                                                          \
    "local function legacy(t)\n"                                              \
    "  local h = {}\n"                                                        \
    "  for e in string.gmatch(t, '[^;]+') do\n"                               \
    "    local k, p, o, rest = string.match(e, '^([CR]),(%d+),(%d+)(.*)$')\n" \
    "    if k == 'C' and rest == '' then h[#h + 1] = {k, p, o}\n"             \
    "    elseif k == 'R' and string.sub(rest, 1, 1) == ',' then\n"            \
    "      h[#h + 1] = {k, p, o, string.sub(rest, 2)}\n"                      \
    "    else return nil end\n"                                               \
    "  end\n"                                                                 \
    "  return h\n"                                                            \
    "end\n"                                                                   \
    "local function enc(h)\n"                                                 \
    "  if #h == 0 then return '[]' end\n"                                     \
    "  return cjson.encode(h)\n"                                              \
    "end\n"

#define CB_LUA_ROWS                                                                 \
    "local out = {}\n"                                                              \
    "for i = 1, nk do\n"                                                            \
    "  local k, a = KEYS[i], (i - 1) * 4\n"                                         \
    "  local p, o, flag, du = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]\n" \
    "  local v = redis.call('HMGET', k, 'p', 'o', 'du', 'j', 'h')\n"                \
    "  local h\n"                                                                   \
    "  if v[4] then\n"                                                              \
    "    local ok, d = pcall(cjson.decode, v[4])\n"                                 \
    "    if ok and type(d) == 'table' then h = d end\n"                             \
    "  else\n"                                                                      \
    "    h = legacy(v[5] or '')\n"                                                  \
    "  end\n"                                                                       \
    "  if not h then\n"                                                             \
    "    out[i] = '!'\n"                                                            \
    "  elseif not v[1] and flag == '0' then\n"                                      \
    "    out[i] = ''\n"                                                             \
    "  elseif v[1] == p and tonumber(v[2]) >= tonumber(o) then\n"                   \
    "    out[i] = enc(h)\n"                                                         \
    "  else\n"                                                                      \
    "    local last = type(h[#h]) == 'table' and h[#h][1]\n"                        \
    "    local cur = v[3] or ''\n"                                                  \
    "    if du >= cur then\n"                                                       \
    "      if flag == '1' and last ~= 'C' then\n"                                   \
    "        h[#h + 1] = {'C', p, o}\n"                                             \
    "      elseif flag == '0' and last == 'C' then\n"                               \
    "        h[#h + 1] = {'R', p, o, du}\n"                                         \
    "      end\n"                                                                   \
    "      cur = du\n"                                                              \
    "    end\n"                                                                     \
    "    out[i] = enc(h)\n"                                                         \
    "    redis.call('HSET', k, 'p', p, 'o', o, 'du', cur, 'j', out[i])\n"           \
    "    if v[5] then redis.call('HDEL', k, 'h') end\n"                             \
    "  end\n"                                                                       \
    "end\n"                                                                         \
    "return out\n"

/* One Redis: every partition key (KEYS[nk + i]) exists, or is made in mode
 * 's' (ARGV[4 * nk + i]), else LOST. */
#define CB_LUA_CHECK_ONE                                                                  \
    "local nk = #KEYS / 2\n"                                                              \
    "local ok = {}\n"                                                                     \
    "for i = 1, nk do\n"                                                                  \
    "  local pk = KEYS[nk + i]\n"                                                         \
    "  if not ok[pk] then\n"                                                              \
    "    if redis.call('EXISTS', pk) == 1 then ok[pk] = true\n"                           \
    "    elseif ARGV[4 * nk + i] == 's' then redis.call('SET', pk, '1'); ok[pk] = true\n" \
    "    else return {'LOST', ARGV[(i - 1) * 4 + 1]} end\n"                               \
    "  end\n"                                                                             \
    "end\n"

/* A cluster: the integration's marker hash (KEYS[nk + 1]) has a field
 * "{topic}:{partition}" (ARGV[5 * nk + 1] .. partition) for every partition
 * of its rows, or gets one in mode 's'. Every partition is checked before
 * anything is written, and the answer names every one missing in mode 'k',
 * so one question to the sets covers them all. */
#define CB_LUA_CHECK_CLUSTER                                      \
    "local nk = #KEYS - 1\n"                                      \
    "local m, pre = KEYS[nk + 1], ARGV[5 * nk + 1]\n"             \
    "local seen, lost, make = {}, {'LOST'}, {}\n"                 \
    "for i = 1, nk do\n"                                          \
    "  local p = ARGV[(i - 1) * 4 + 1]\n"                         \
    "  if not seen[p] then\n"                                     \
    "    seen[p] = true\n"                                        \
    "    if redis.call('HEXISTS', m, pre .. p) == 0 then\n"       \
    "      if ARGV[4 * nk + i] == 's' then make[#make + 1] = p\n" \
    "      else lost[#lost + 1] = p end\n"                        \
    "    end\n"                                                   \
    "  end\n"                                                     \
    "end\n"                                                       \
    "if #lost > 1 then return lost end\n"                         \
    "for _, p in ipairs(make) do redis.call('HSET', m, pre .. p, '1') end\n"

/* One Redis, a whole chunk. KEYS: the rows' keys, then each row's partition
 * key; ARGV: 4 per row, then each row's mode ('s' or 'k'). */
static lt_redis_script_t cb_script = {.source = CB_LUA_FUNCS CB_LUA_CHECK_ONE CB_LUA_ROWS};

/* A cluster, one integration. KEYS: the rows' keys, then its marker hash;
 * ARGV: 4 per row, then each row's mode, then "{topic}:". */
static lt_redis_script_t cbc_script = {.source = CB_LUA_FUNCS CB_LUA_CHECK_CLUSTER CB_LUA_ROWS};

/* A cluster, the per-partition sets (all in the {g} slot). KEYS: sets;
 * ARGV[1] the operation, ARGV[1 + i] the member for KEYS[i]:
 *   a  add (a set missing is made with "." and "#"): {}
 *   n  a new integration: added to every set only if no set is missing,
 *      holds it or holds "#"; answers the indexes of those that do
 *   e  a pass ends: where the member (its "@TOKEN") is still there, it
 *      and "#" are removed: 1, else 0, per set */
static lt_redis_script_t cbg_script = {
    .source = "local op, out = ARGV[1], {}\n"
              "for i = 1, #KEYS do\n"
              "  local k, v = KEYS[i], ARGV[1 + i]\n"
              "  if op == 'a' then\n"
              "    if redis.call('EXISTS', k) == 0 then redis.call('SADD', k, '.', '#') end\n"
              "    redis.call('SADD', k, v)\n"
              "  elseif op == 'n' then\n"
              "    if redis.call('EXISTS', k) == 0 or redis.call('SISMEMBER', k, v) == 1\n"
              "       or redis.call('SISMEMBER', k, '#') == 1 then out[#out + 1] = i end\n"
              "  elseif redis.call('SREM', k, v) == 1 then\n"
              "    redis.call('SREM', k, '#')\n"
              "    out[i] = 1\n"
              "  else\n"
              "    out[i] = 0\n"
              "  end\n"
              "end\n"
              "if op == 'n' and #out == 0 then\n"
              "  for i = 1, #KEYS do redis.call('SADD', KEYS[i], ARGV[1 + i]) end\n"
              "end\n"
              "return out\n",
};

/* Cluster bookkeeping of this consumer (reset when partitions are
 * rewound): per partition its pass, and per (partition, integration) of a
 * partition read from its first offset whether the id is in the set (then
 * the integration's marker may be made) and whether its state was used
 * since (then the marker must exist). */
#define PASS_NONE  0
#define PASS_BEGIN 1 /* "@TOKEN" being added */
#define PASS_ON    2
#define PASS_NOEND 3 /* the partition's end is unknown: no claim */

typedef struct {
    uint8_t state;
    int64_t hi; /* the partition's high mark when the pass began */
    char tok[38];
} cbc_pass_t;

typedef struct cbc_reg {
    struct cbc_reg *next;
    int32_t p;
    uint8_t used;
    char id[65];
} cbc_reg_t;

struct norm_cbc_s {
    cbc_pass_t *pass;
    size_t npass;
    cbc_reg_t **tab;
    size_t nbuckets, nregs;
};

static uint8_t pmode(const norm_t *n, int32_t p)
{
    return p >= 0 && (size_t)p < n->npart ? n->pmode[p] : NORM_P_UNKNOWN;
}

static void cbc_clear(struct norm_cbc_s *c)
{
    if (!c)
        return;
    for (size_t b = 0; b < c->nbuckets; b++)
        while (c->tab[b]) {
            cbc_reg_t *e = c->tab[b];
            c->tab[b] = e->next;
            free(e);
        }
    c->nregs = 0;
    if (c->pass)
        memset(c->pass, 0, c->npass * sizeof(*c->pass));
}

void norm_cb_release(norm_t *n)
{
    struct norm_cbc_s *c = n->cbc;
    free(n->pmode);
    free(n->rewound);
    free(n->history_end);
    n->pmode = n->rewound = NULL;
    n->history_end = NULL;
    n->npart = 0;
    if (!c)
        return;
    cbc_clear(c);
    free(c->tab);
    free(c->pass);
    free(c);
    n->cbc = NULL;
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
        int64_t *e = realloc(n->history_end, np * sizeof(*e));
        if (!e)
            return -1;
        n->history_end = e;
        memset(n->pmode + n->npart, 0, np - n->npart);
        memset(n->rewound + n->npart, 0, np - n->npart);
        memset(n->history_end + n->npart, 0, (np - n->npart) * sizeof(*e));
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

int norm_history_row(const norm_t *n, const rd_kafka_message_t *rkm)
{
    int32_t p = rkm->partition;
    return p >= 0 && (size_t)p < n->npart && rkm->offset < n->history_end[p];
}

void norm_partitions_rewind(norm_t *n, rd_kafka_topic_partition_list_t *back)
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
        rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(back, n->topic_raw, p);
        /* Every row before the dropped batch's first was produced and
         * acknowledged with the state it had: read again, it rebuilds that
         * state and produces nothing (its events again would only be
         * copies, and each event's older versions after its latest). */
        if (tp && (size_t)p < n->npart && tp->offset > n->history_end[p])
            n->history_end[p] = tp->offset;
        lt_warn("partition %d: chargeback state lost (Redis restarted empty?): reading it again "
                "from offset %lld to rebuild every history (rows before %lld produce nothing: "
                "their outputs are downstream)",
                (int)p, (long long)lo, (size_t)p < n->npart ? (long long)n->history_end[p] : 0LL);
        lt_consumer_store_offset(n->cons, n->topic_raw, p, lo);
        if (!tp)
            tp = rd_kafka_topic_partition_list_add(back, n->topic_raw, p);
        tp->offset = lo;
        if ((size_t)p < n->npart)
            n->rewound[p] = 1;
    }
    n->nlost = 0;
    memset(n->pmode, NORM_P_UNKNOWN, n->npart);
    cbc_clear(n->cbc); /* the passes start afresh */
}

static void note_lost(norm_t *n, int32_t p)
{
    int seen = 0;
    for (int i = 0; i < n->nlost; i++)
        seen |= n->lost[i] == p;
    if (!seen && n->nlost < (int)(sizeof(n->lost) / sizeof(n->lost[0])))
        n->lost[n->nlost++] = p;
}

static int set_history(norm_msg_t *m, const redisReply *el)
{
    if (el->type != REDIS_REPLY_STRING)
        return -1;
    free(m->history);
    m->history = malloc(el->len + 1);
    if (!m->history)
        return -1;
    memcpy(m->history, el->str, el->len);
    m->history[el->len] = '\0';
    m->history_len = el->len;
    return 0;
}

static void warn_reply(norm_t *n, const redisReply *reply)
{
    lt_warn("chargeback state: %s", !reply                             ? lt_redis_errstr(n->redis)
                                    : reply->type == REDIS_REPLY_ERROR ? reply->str
                                                                       : "unexpected reply");
}

/* P i:ID:cb:TXN (malloc'd), or NULL. */
static char *cb_key(const norm_t *n, const norm_msg_t *m)
{
    char what[80], key[320];
    snprintf(what, sizeof(what), "cb:%s", m->probe.transaction_id);
    if (lt_rkey_integ(key, sizeof(key), n->prefix, m->integ.id, what) < 0)
        return NULL;
    return strdup(key);
}

/* ---- one Redis: one script call per chunk ------------------------------ */

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
        char what[300], pkey[400];
        if (!m->probe.applies || m->reason[0])
            continue;
        snprintf(what, sizeof(what), "cbp:%s:%d", n->topic_raw, (int)m->rkm->partition);
        if (!(a->keys[k] = cb_key(n, m)) ||
            lt_rkey_global(pkey, sizeof(pkey), n->prefix, what) < 0 ||
            !(a->keys[nk + k] = strdup(pkey)))
            return (size_t)-1;
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
        note_lost(n, (int32_t)atoi(reply->element[1]->str));
        return NORM_LOST;
    }
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != nk)
        return -1;
    for (size_t k = 0; k < nk; k++) {
        norm_msg_t *m = &msgs[a->idx[k]];
        if (set_history(m, reply->element[k]) != 0)
            return -1;
        /* its state exists now: from here on, missing means lost */
        if ((size_t)m->rkm->partition < n->npart)
            n->pmode[m->rkm->partition] = NORM_P_KEPT;
    }
    return 0;
}

/* ---- a cluster: one script call per integration ----------------------- */

static size_t reg_hash(int32_t p, const char *id, size_t nbuckets)
{
    uint32_t h = 2166136261u ^ (uint32_t)p;
    for (const unsigned char *s = (const unsigned char *)id; *s; s++)
        h = (h ^ *s) * 16777619u;
    return h & (nbuckets - 1);
}

static cbc_reg_t *reg_find(const struct norm_cbc_s *c, int32_t p, const char *id)
{
    for (cbc_reg_t *e = c->tab[reg_hash(p, id, c->nbuckets)]; e; e = e->next)
        if (e->p == p && !strcmp(e->id, id))
            return e;
    return NULL;
}

/* Notes (p, id) with used; -1 out of memory. */
static int reg_put(struct norm_cbc_s *c, int32_t p, const char *id, int used)
{
    cbc_reg_t *e = reg_find(c, p, id);
    if (e) {
        e->used = (uint8_t)used;
        return 0;
    }
    if (c->nregs >= 2 * c->nbuckets) {
        size_t nb = 2 * c->nbuckets;
        cbc_reg_t **t = calloc(nb, sizeof(*t));
        if (!t)
            return -1;
        for (size_t b = 0; b < c->nbuckets; b++)
            while (c->tab[b]) {
                cbc_reg_t *x = c->tab[b];
                size_t h = reg_hash(x->p, x->id, nb);
                c->tab[b] = x->next;
                x->next = t[h];
                t[h] = x;
            }
        free(c->tab);
        c->tab = t;
        c->nbuckets = nb;
    }
    if (!(e = calloc(1, sizeof(*e))))
        return -1;
    e->p = p;
    e->used = (uint8_t)used;
    snprintf(e->id, sizeof(e->id), "%s", id);
    size_t h = reg_hash(p, id, c->nbuckets);
    e->next = c->tab[h];
    c->tab[h] = e;
    c->nregs++;
    return 0;
}

static void reg_drop_partition(struct norm_cbc_s *c, int32_t p)
{
    for (size_t b = 0; b < c->nbuckets; b++)
        for (cbc_reg_t **pe = &c->tab[b]; *pe;) {
            cbc_reg_t *e = *pe;
            if (e->p == p) {
                *pe = e->next;
                free(e);
                c->nregs--;
            } else {
                pe = &e->next;
            }
        }
}

static struct norm_cbc_s *cbc_get(norm_t *n)
{
    struct norm_cbc_s *c = n->cbc;
    if (!c) {
        if (!(c = calloc(1, sizeof(*c))) || !(c->tab = calloc(256, sizeof(*c->tab)))) {
            free(c);
            return NULL;
        }
        c->nbuckets = 256;
        n->cbc = c;
    }
    if (c->npass < n->npart) {
        cbc_pass_t *ps = realloc(c->pass, n->npart * sizeof(*ps));
        if (!ps)
            return NULL;
        memset(ps + c->npass, 0, (n->npart - c->npass) * sizeof(*ps));
        c->pass = ps;
        c->npass = n->npart;
    }
    return c;
}

/* The set of partition p: P {g}:cbp:{topic}:{p}. */
static int set_key(const norm_t *n, int32_t p, char *buf, size_t len)
{
    char what[300];
    snprintf(what, sizeof(what), "cbp:%s:%d", n->topic_raw, (int)p);
    return lt_rkey_global(buf, len, n->prefix, what);
}

#define SET_KEY_MAX 400

/* cbg_script over the sets of parts[0..np-1], one member each (members, or
 * member for all). The reply (caller frees), or NULL after a warning. */
static redisReply *sets_call(norm_t *n, const char *op, const int32_t *parts, size_t np,
                             const char *const *members, const char *member)
{
    size_t argc = 2 * np + 1;
    const char **argv = calloc(argc, sizeof(*argv));
    size_t *lens = calloc(argc, sizeof(*lens));
    char(*keys)[SET_KEY_MAX] = calloc(np ? np : 1, sizeof(*keys));
    redisReply *reply = NULL;
    int ok = argv && lens && keys;
    for (size_t i = 0; ok && i < np; i++) {
        ok = set_key(n, parts[i], keys[i], sizeof(keys[i])) >= 0;
        argv[i] = keys[i];
        argv[np + 1 + i] = members ? members[i] : member;
    }
    if (ok) {
        argv[np] = op;
        for (size_t i = 0; i < argc; i++)
            lens[i] = strlen(argv[i]);
        reply = lt_redis_eval(n->redis, &cbg_script, (int)np, (int)argc, argv, lens);
        if (!reply || reply->type != REDIS_REPLY_ARRAY) {
            warn_reply(n, reply);
            if (reply)
                freeReplyObject(reply);
            reply = NULL;
        }
    }
    free(argv);
    free(lens);
    free(keys);
    return reply;
}

/* Passes that begin in this chunk: partitions read from their first offset
 * whose pass has not begun. 0, or -1 (Redis failed: run again, the same
 * tokens are added again). */
static int passes_begin(norm_t *n, struct norm_cbc_s *c, norm_msg_t *msgs, size_t count)
{
    int32_t *parts = calloc(count + 1, sizeof(*parts));
    const char **toks = calloc(count + 1, sizeof(*toks));
    size_t np = 0;
    int rc = -1;
    if (!parts || !toks)
        goto end;
    for (size_t i = 0; i < count; i++) {
        int32_t p = msgs[i].rkm->partition;
        int64_t lo = 0, hi = 0;
        if (n->replay_prefix[0] || pmode(n, p) != NORM_P_START || (size_t)p >= c->npass)
            continue;
        cbc_pass_t *ps = &c->pass[p];
        if (ps->state == PASS_NONE) {
            /* A replay of one integration meets only its rows: it claims
             * nothing about the others (skipped above). */
            rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
                lt_consumer_handle(n->cons), n->topic_raw, p, &lo, &hi, 5000);
            if (err) {
                lt_warn("partition %d: its end is unknown (%s): this pass over it will not "
                        "vouch for its set of integrations with chargeback state",
                        (int)p, rd_kafka_err2str(err));
                ps->state = PASS_NOEND;
                continue;
            }
            char u[37];
            lt_uuid_v4(u);
            snprintf(ps->tok, sizeof(ps->tok), "@%s", u);
            ps->hi = hi;
            ps->state = PASS_BEGIN;
        }
        if (ps->state == PASS_BEGIN) {
            ps->state = PASS_ON; /* until the call below fails */
            parts[np] = p;
            toks[np++] = ps->tok;
        }
    }
    if (np == 0) {
        rc = 0;
        goto end;
    }
    redisReply *reply = sets_call(n, "a", parts, np, toks, NULL);
    rc = reply ? 0 : -1;
    for (size_t i = 0; !reply && i < np; i++)
        c->pass[parts[i]].state = PASS_BEGIN;
    if (reply)
        freeReplyObject(reply);
end:
    free(parts);
    free(toks);
    return rc;
}

/* Passes that reached the partition's end as of their start: "#" goes
 * (when the set lived through the pass), and the partition is like any
 * other from here on: a marker missing is asked about. */
static int passes_end(norm_t *n, struct norm_cbc_s *c, norm_msg_t *msgs, size_t count)
{
    int32_t *parts = calloc(count + 1, sizeof(*parts));
    const char **toks = calloc(count + 1, sizeof(*toks));
    size_t np = 0;
    int rc = -1;
    if (!parts || !toks)
        goto end;
    for (size_t i = 0; i < count; i++) {
        int32_t p = msgs[i].rkm->partition;
        if ((size_t)p >= c->npass || c->pass[p].state != PASS_ON ||
            msgs[i].rkm->offset < c->pass[p].hi - 1)
            continue;
        int dup = 0;
        for (size_t j = 0; j < np; j++)
            dup |= parts[j] == p;
        if (!dup) {
            parts[np] = p;
            toks[np++] = c->pass[p].tok;
        }
    }
    rc = 0;
    if (np == 0)
        goto end;
    redisReply *reply = sets_call(n, "e", parts, np, toks, NULL);
    if (!reply || reply->elements != np) {
        if (reply)
            freeReplyObject(reply);
        rc = -1;
        goto end;
    }
    for (size_t j = 0; j < np; j++) {
        int32_t p = parts[j];
        if (reply->element[j]->type == REDIS_REPLY_INTEGER && reply->element[j]->integer == 1)
            lt_info("partition %d: read from its first offset to %lld: its set of integrations "
                    "with chargeback state is whole",
                    (int)p, (long long)c->pass[p].hi);
        else
            lt_warn("partition %d: its set of integrations with chargeback state was lost while "
                    "it was read from its first offset; a chargeback state found missing there "
                    "will rebuild the partition",
                    (int)p);
        c->pass[p].state = PASS_NONE;
        reg_drop_partition(c, p);
        n->pmode[p] = NORM_P_KEPT;
    }
    freeReplyObject(reply);
end:
    free(parts);
    free(toks);
    return rc;
}

typedef struct {
    const char *id;
    size_t i;
} row_ref_t;

static int row_cmp(const void *a, const void *b)
{
    const row_ref_t *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c ? c : x->i < y->i ? -1 : x->i > y->i;
}

/* One integration's rows (msgs[rows[k].i], k < nr, in offset order per
 * partition): its script, asking the sets about missing markers. 0,
 * -1 (Redis failed or out of memory: run again), NORM_LOST. */
static int group_fetch(norm_t *n, struct norm_cbc_s *c, norm_msg_t *msgs, const row_ref_t *rows,
                       size_t nr)
{
    const char *id = rows[0].id;
    size_t argc = 6 * nr + 2, np = 0;
    const char **argv = calloc(argc, sizeof(*argv));
    size_t *lens = calloc(argc, sizeof(*lens));
    char(*nums)[2][24] = calloc(nr, sizeof(*nums));
    char **keys = calloc(nr + 1, sizeof(*keys));
    int32_t *parts = calloc(nr, sizeof(*parts)), *ask = calloc(nr, sizeof(*ask));
    uint8_t *isnew = calloc(nr, 1);
    char mkey[320], pre[300];
    int rc = -1;
    if (!argv || !lens || !nums || !keys || !parts || !ask || !isnew)
        goto end;
    snprintf(pre, sizeof(pre), "%s:", n->topic_raw);
    if (lt_rkey_integ(mkey, sizeof(mkey), n->prefix, id, "cbp") < 0)
        goto end;
    for (size_t k = 0; k < nr; k++) {
        const norm_msg_t *m = &msgs[rows[k].i];
        int32_t p = m->rkm->partition;
        size_t j = 0;
        while (j < np && parts[j] != p)
            j++;
        if (j == np)
            parts[np++] = p;
        if (!(keys[k] = cb_key(n, m)))
            goto end;
        snprintf(nums[k][0], sizeof(nums[k][0]), "%d", (int)p);
        snprintf(nums[k][1], sizeof(nums[k][1]), "%lld", (long long)m->rkm->offset);
        argv[k] = keys[k];
        argv[nr + 1 + 4 * k] = nums[k][0];
        argv[nr + 1 + 4 * k + 1] = nums[k][1];
        argv[nr + 1 + 4 * k + 2] = m->probe.flag ? "1" : "0";
        argv[nr + 1 + 4 * k + 3] = m->probe.date_updated;
    }
    argv[nr] = mkey;
    argv[argc - 1] = pre;
    /* Partitions read from their first offset: the id goes in their sets
     * before the script may make the marker (see the top). */
    size_t na = 0;
    for (size_t j = 0; j < np; j++)
        if (pmode(n, parts[j]) == NORM_P_START && !reg_find(c, parts[j], id))
            ask[na++] = parts[j];
    if (na) {
        redisReply *reply = sets_call(n, "a", ask, na, NULL, id);
        if (!reply)
            goto end;
        freeReplyObject(reply);
        for (size_t j = 0; j < na; j++)
            if (reg_put(c, ask[j], id, 0) != 0)
                goto end;
    }
    /* At most once per partition: a new one's marker is made by the run
     * after the sets answered. */
    for (size_t round = 0; round <= np; round++) {
        for (size_t k = 0; k < nr; k++) {
            int32_t p = msgs[rows[k].i].rkm->partition;
            const cbc_reg_t *e = pmode(n, p) == NORM_P_START ? reg_find(c, p, id) : NULL;
            size_t j = 0;
            while (parts[j] != p)
                j++;
            argv[5 * nr + 1 + k] = (e && !e->used) || isnew[j] ? "s" : "k";
        }
        for (size_t a = 0; a < argc; a++)
            lens[a] = strlen(argv[a]);
        redisReply *reply =
            lt_redis_eval(n->redis, &cbc_script, (int)nr + 1, (int)argc, argv, lens);
        if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 2 &&
            reply->element[0]->type == REDIS_REPLY_STRING &&
            !strcmp(reply->element[0]->str, "LOST")) {
            na = 0;
            for (size_t x = 1; x < reply->elements && na < np; x++)
                if (reply->element[x]->type == REDIS_REPLY_STRING)
                    ask[na++] = (int32_t)atoi(reply->element[x]->str);
            freeReplyObject(reply);
            if (!(reply = sets_call(n, "n", ask, na, NULL, id)))
                goto end;
            if (reply->elements == 0) {
                for (size_t x = 0; x < na; x++)
                    for (size_t j = 0; j < np; j++)
                        isnew[j] |= parts[j] == ask[x];
                for (size_t x = 0; x < na; x++)
                    lt_info("integration %s: its first chargeback state on partition %d", id,
                            (int)ask[x]);
                freeReplyObject(reply);
                continue;
            }
            for (size_t x = 0; x < reply->elements; x++) {
                long long at = reply->element[x]->integer;
                if (reply->element[x]->type != REDIS_REPLY_INTEGER || at < 1 || (size_t)at > na)
                    continue;
                lt_warn("integration %s: chargeback state lost on partition %d (its Redis "
                        "Cluster slot came back empty?)",
                        id, (int)ask[at - 1]);
                note_lost(n, ask[at - 1]);
                rc = NORM_LOST;
            }
            freeReplyObject(reply);
            goto end;
        }
        if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != nr) {
            warn_reply(n, reply);
            if (reply)
                freeReplyObject(reply);
            goto end;
        }
        int bad = 0;
        for (size_t k = 0; k < nr && !bad; k++)
            bad = set_history(&msgs[rows[k].i], reply->element[k]) != 0;
        freeReplyObject(reply);
        if (bad)
            goto end;
        /* Its state exists now: from here on, missing means lost. */
        for (size_t j = 0; j < np; j++)
            if (pmode(n, parts[j]) == NORM_P_START && reg_put(c, parts[j], id, 1) != 0)
                goto end;
        rc = 0;
        goto end;
    }
    lt_warn("integration %s: its chargeback markers are still missing after they were made", id);
end:
    for (size_t k = 0; keys && k < nr; k++)
        free(keys[k]);
    free(keys);
    free(argv);
    free(lens);
    free(nums);
    free(parts);
    free(ask);
    free(isnew);
    return rc;
}

static int cluster_fetch(norm_t *n, norm_msg_t *msgs, size_t count)
{
    struct norm_cbc_s *c = cbc_get(n);
    row_ref_t *rows = calloc(count + 1, sizeof(*rows));
    size_t nr = 0;
    int rc = -1;
    if (!c || !rows) {
        lt_warn("chargeback state: out of memory");
        goto end;
    }
    if (passes_begin(n, c, msgs, count) != 0)
        goto end;
    for (size_t i = 0; i < count; i++)
        if (msgs[i].probe.applies && !msgs[i].reason[0])
            rows[nr++] = (row_ref_t){msgs[i].integ.id, i};
    qsort(rows, nr, sizeof(*rows), row_cmp);
    for (size_t g = 0, h; g < nr; g = h) {
        for (h = g + 1; h < nr && !strcmp(rows[h].id, rows[g].id); h++)
            ;
        if ((rc = group_fetch(n, c, msgs, rows + g, h - g)) != 0)
            goto end;
    }
    rc = passes_end(n, c, msgs, count);
end:
    free(rows);
    return rc;
}

int norm_cb_fetch(norm_t *n, norm_msg_t *msgs, size_t count)
{
    if (lt_rkeys_cluster())
        return cluster_fetch(n, msgs, count);
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
    /* A cluster: several calls, to several masters, each depending on the
     * last one's answer: the caller's synchronous norm_cb_fetch does them. */
    if (lt_rkeys_cluster()) {
        memset(call, 0, sizeof(*call));
        return -1;
    }
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
