/* intent.c: what closes the sink's crash window.
 *
 * The sink records an event's hash only after downstream acknowledged the
 * write (so a crash never skips an event). A sink killed after a write and
 * before its record leaves events downstream that no hash covers: the next
 * owner of the input partition, redelivered them, would write them again,
 * unchanged. So before a batch is produced the sink writes an intent for
 * each input partition of the batch into one Redis hash, "P sink:intent"
 * ("P {g}:sink:intent" in a cluster), field "<topic>/<partition>":
 *
 *     "<lo> <hi> <d>:<from> <d>:<from> ..."
 *
 *   lo..hi   the partition's input offsets in the batches not finished yet
 *            (this one and the two before it, whose records may be on the
 *            wire)
 *   d:from   for each downstream partition d those batches write to, an
 *            offset at or before every write of theirs there: the offset
 *            after this sink's last acknowledged write to d, or d's end when
 *            the sink started (one producer's writes to a partition land in
 *            order, so anything not yet acknowledged lands after that)
 *
 * A batch whose offsets of a partition overlap the intent's lo..hi may hold
 * events a dead sink wrote. batch.c reads downstream back, from the
 * intent's bounds to the end (a group-less read, only on such a takeover).
 * Every write carries the input partition and offset of its event in a
 * header (SINK_SRC_HEADER), so a write found there is known by where it
 * came from, whatever batches either sink cut: it is skipped (and
 * recorded) when nothing written after it downstream would then be left
 * last, and so are the earlier versions of its event before it: the latest
 * wins (sink_takeover_skips). The new intent keeps the old range and
 * bounds until batches past it are done, so a crash during a takeover is
 * covered too.
 *
 * The sink picks each write's partition itself (lt_producer_send_ref_to),
 * the way the downstream producer's `partitioner` would (librdkafka's own
 * function of the key, which is the event_id, modulo the partition count
 * read at start; crc32 by default, murmur2 as Java clients do), so it
 * knows where each write lands. Partitions added downstream later are used after
 * a restart; until then an event keeps its partition.
 *
 * One field per input partition, rewritten per batch: the hash holds at
 * most TOPIC_PARTITIONS fields, each about 12 bytes per downstream
 * partition (150 bytes at the default 12), with no expiry. Each batch that
 * writes sends one field per input partition it holds: its cost grows with
 * input partitions x downstream partitions in a batch (2 KB at the
 * defaults; a topic of hundreds of partitions on both sides would want the
 * bounds stored once per batch instead). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lt_dedupe.h"
#include "lt_log.h"
#include "lt_rkeys.h"
#include "sink.h"

#define INTENT_MAX_BYTES (1 << 20) /* a value longer than this is not ours */
#define PARTS_RETRY_MS   10000

int sink_parts_setup(sink_t *s)
{
    rd_kafka_t *rk = lt_producer_handle(s->down);
    rd_kafka_topic_t *rkt;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_partition_list_t *ends = NULL;
    rd_kafka_resp_err_t err;
    int32_t n = 0;
    int rc = -1;

    if (s->down_parts > 0)
        return 0;
    if (lt_clock_mono_ms() < s->parts_next_try_ms)
        return -1;
    s->parts_next_try_ms = lt_clock_mono_ms() + PARTS_RETRY_MS;
    if (!(rkt = rd_kafka_topic_new(rk, s->topic_down, NULL)))
        return -1;
    if ((err = rd_kafka_metadata(rk, 0, rkt, &md, 5000)) || md->topic_cnt != 1 ||
        md->topics[0].err || md->topics[0].partition_cnt <= 0) {
        lt_warn("%s: partitions not known (%s): writes go where librdkafka puts them, and a "
                "crash before their record cannot tell them apart (tried again in %d s)",
                s->topic_down,
                rd_kafka_err2str(err                  ? err
                                 : md->topic_cnt == 1 ? md->topics[0].err
                                                      : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC),
                PARTS_RETRY_MS / 1000);
        goto done;
    }
    n = md->topics[0].partition_cnt;
    /* The end of every partition in one ListOffsets request per broker. */
    ends = rd_kafka_topic_partition_list_new(n);
    for (int32_t i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(ends, s->topic_down, i)->offset = RD_KAFKA_OFFSET_END;
    if ((err = rd_kafka_offsets_for_times(rk, ends, 5000))) {
        lt_warn("%s: partition ends not known (%s), tried again in %d s", s->topic_down,
                rd_kafka_err2str(err), PARTS_RETRY_MS / 1000);
        goto done;
    }
    free(s->acked_next);
    free(s->old_from);
    free(s->new_from);
    s->acked_next = calloc((size_t)n, sizeof(int64_t));
    s->old_from = calloc((size_t)n, sizeof(int64_t));
    s->new_from = calloc((size_t)n, sizeof(int64_t));
    if (!s->acked_next || !s->old_from || !s->new_from)
        goto done;
    for (int i = 0; i < ends->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &ends->elems[i];
        if (p->err || p->offset < 0 || p->partition < 0 || p->partition >= n) {
            lt_warn("%s[%d]: end not known (%s), tried again in %d s", s->topic_down,
                    (int)p->partition, rd_kafka_err2str(p->err), PARTS_RETRY_MS / 1000);
            goto done;
        }
        s->acked_next[p->partition] = p->offset;
    }
    for (int32_t i = 0; i < n; i++)
        s->old_from[i] = s->new_from[i] = -1;
    s->down_parts = n;
    lt_info("%s: %d partitions; writes placed by the event_id (partitioner %s)", s->topic_down,
            (int)n, s->partitioner_name[0] ? s->partitioner_name : "consistent");
    rc = 0;
done:
    if (ends)
        rd_kafka_topic_partition_list_destroy(ends);
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return rc;
}

void sink_parts_close(sink_t *s)
{
    free(s->acked_next);
    free(s->old_from);
    free(s->new_from);
    s->acked_next = s->old_from = s->new_from = NULL;
    s->down_parts = 0;
}

int32_t sink_partition_of(const sink_t *s, const char event_id[36])
{
    if (s->down_parts <= 0)
        return RD_KAFKA_PARTITION_UA;
    return (s->partitioner ? s->partitioner : rd_kafka_msg_partitioner_consistent)(
        NULL, event_id, 36, s->down_parts, NULL, NULL);
}

sink_partitioner_fn sink_partitioner_named(const char *name)
{
    static const struct {
        const char *name;
        sink_partitioner_fn fn;
    } known[] = {
        {"consistent", rd_kafka_msg_partitioner_consistent},
        {"consistent_random", rd_kafka_msg_partitioner_consistent},
        {"murmur2", rd_kafka_msg_partitioner_murmur2},
        {"murmur2_random", rd_kafka_msg_partitioner_murmur2},
        {"fnv1a", rd_kafka_msg_partitioner_fnv1a},
        {"fnv1a_random", rd_kafka_msg_partitioner_fnv1a},
    };
    for (size_t i = 0; name && i < sizeof(known) / sizeof(known[0]); i++)
        if (!strcmp(name, known[i].name))
            return known[i].fn;
    return NULL;
}

int sink_partitioner_setup(sink_t *s, char *errstr, size_t errlen)
{
    char name[64];
    size_t len = sizeof(name);
    /* Unset: librdkafka has no default topic conf to answer from, and its
     * default is consistent_random. */
    if (rd_kafka_conf_get(rd_kafka_conf(lt_producer_handle(s->down)), "partitioner", name, &len) !=
        RD_KAFKA_CONF_OK)
        snprintf(name, sizeof(name), "consistent_random");
    if (!(s->partitioner = sink_partitioner_named(name))) {
        snprintf(errstr, errlen,
                 "downstream partitioner \"%s\": the sink places each write by its "
                 "event_id itself, so that a sink taking over after a crash can find the "
                 "writes made; use consistent_random (the default), consistent, murmur2, "
                 "murmur2_random, fnv1a or fnv1a_random",
                 name);
        return -1;
    }
    snprintf(s->partitioner_name, sizeof(s->partitioner_name), "%s", name);
    return 0;
}

void sink_acked(sink_t *s, int32_t d, int64_t offset)
{
    if (d >= 0 && d < s->down_parts && offset + 1 > s->acked_next[d])
        s->acked_next[d] = offset + 1;
}

int sink_intent_key(sink_t *s, const char *prefix)
{
    return lt_rkey_global(s->intent_key, sizeof(s->intent_key), prefix, "sink:intent") < 0 ? -1 : 0;
}

static void field_of(const sink_t *s, int32_t partition, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%d", s->topic_in, (int)partition);
}

/* A command of the intent hash: argv[0] the command, argv[1] the key, then
 * per input partition its field (and, for HSET, its value). */
typedef struct {
    const char **argv;
    size_t *lens;
    char (*fields)[300];
} command_t;

static int command_new(command_t *c, const sink_t *s, const char *cmd, const int32_t *parts,
                       char *const *values, size_t n)
{
    size_t per = values ? 2 : 1;
    c->argv = calloc(per * n + 2, sizeof(*c->argv));
    c->lens = calloc(per * n + 2, sizeof(*c->lens));
    c->fields = calloc(n + 1, sizeof(*c->fields));
    if (!c->argv || !c->lens || !c->fields)
        return -1;
    c->argv[0] = cmd;
    c->argv[1] = s->intent_key;
    for (size_t i = 0; i < n; i++) {
        field_of(s, parts[i], c->fields[i], sizeof(c->fields[i]));
        c->argv[per * i + 2] = c->fields[i];
        if (values)
            c->argv[per * i + 3] = values[i];
    }
    for (size_t i = 0; i < per * n + 2; i++)
        c->lens[i] = strlen(c->argv[i]);
    return (int)(per * n + 2);
}

static void command_free(command_t *c)
{
    free(c->argv);
    free(c->lens);
    free(c->fields);
}

lt_err_t sink_intent_get(sink_t *s, const int32_t *parts, size_t n, char **values)
{
    command_t c = {0};
    redisReply *reply = NULL;
    lt_err_t rc = LT_ERR_RETRIABLE;
    int argc = command_new(&c, s, "HMGET", parts, NULL, n);

    for (size_t i = 0; i < n; i++)
        values[i] = NULL;
    if (argc < 0) {
        lt_error("out of memory (intent)");
        rc = LT_ERR_FATAL;
        goto done;
    }
    if (!(reply = sink_redis_retry(s, s->redis, NULL, 0, argc, c.argv, c.lens)))
        goto done; /* shutdown */
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != n) {
        lt_error("intent: unexpected reply");
        rc = LT_ERR_FATAL;
        goto done;
    }
    rc = LT_OK;
    for (size_t i = 0; i < n; i++) {
        const redisReply *e = reply->element[i];
        if (e->type != REDIS_REPLY_STRING)
            continue;
        if (e->len > INTENT_MAX_BYTES) {
            lt_warn("intent %s: %zu bytes, over %d: ignored", c.fields[i], (size_t)e->len,
                    INTENT_MAX_BYTES);
            continue;
        }
        if (!(values[i] = strndup(e->str, e->len))) {
            lt_error("out of memory (intent)");
            rc = LT_ERR_FATAL;
        }
    }
done:
    if (reply)
        freeReplyObject(reply);
    if (rc != LT_OK)
        for (size_t i = 0; i < n; i++) {
            free(values[i]);
            values[i] = NULL;
        }
    command_free(&c);
    return rc;
}

lt_err_t sink_intent_put(sink_t *s, const int32_t *parts, char *const *values, size_t n)
{
    command_t c = {0};
    redisReply *reply = NULL;
    int argc = command_new(&c, s, "HSET", parts, values, n);

    if (argc < 0) {
        command_free(&c);
        lt_error("out of memory (intent)");
        return LT_ERR_FATAL;
    }
    reply = sink_redis_retry(s, s->redis, NULL, 0, argc, c.argv, c.lens);
    command_free(&c);
    if (!reply)
        return LT_ERR_RETRIABLE; /* shutdown */
    freeReplyObject(reply);
    return LT_OK;
}

/* A decimal number at *p (digits only: no sign, no space), *p moved past it. */
static int number(const char **p, int64_t *out)
{
    char *end;
    long long v;
    if (**p < '0' || **p > '9')
        return -1;
    v = strtoll(*p, &end, 10);
    *p = end;
    *out = v;
    return 0;
}

int sink_intent_parse(const sink_t *s, const char *v, int64_t *lo, int64_t *hi, int64_t *from)
{
    int64_t a, b;
    if (number(&v, &a) != 0 || *v++ != ' ' || number(&v, &b) != 0 || b < a)
        return -1;
    *lo = a;
    *hi = b;
    while (*v == ' ') {
        int64_t d, o;
        v++;
        if (number(&v, &d) != 0 || *v++ != ':' || number(&v, &o) != 0)
            return -1;
        if (from && d < s->down_parts && (from[d] < 0 || o < from[d]))
            from[d] = o;
    }
    return *v == '\0' ? 0 : -1;
}

char *sink_intent_format(const sink_t *s, int64_t lo, int64_t hi, const int64_t *from)
{
    lt_buf_t b = {0};
    char item[48];
    int len = snprintf(item, sizeof(item), "%" PRId64 " %" PRId64, lo, hi);
    lt_buf_put(&b, item, (size_t)len);
    for (int32_t d = 0; d < s->down_parts; d++) {
        if (from[d] < 0)
            continue;
        len = snprintf(item, sizeof(item), " %d:%" PRId64, (int)d, from[d]);
        lt_buf_put(&b, item, (size_t)len);
    }
    lt_buf_put(&b, "", 1);
    if (b.oom) {
        lt_buf_release(&b);
        return NULL;
    }
    return b.p;
}

/* A read back gives up once a shutdown's budget is spent (sink_give_up),
 * not after its own timeout: a downstream that does not answer must not
 * hold a SIGTERM past terminationGracePeriodSeconds. What it leaves is
 * read again by the next sink, whose batch overlaps the same intents. */
static int readback_stop(void *arg)
{
    return sink_give_up(arg);
}

lt_err_t sink_readback(sink_t *s, const int32_t *parts, const int64_t *from, int n,
                       lt_kafka_read_fn fn, void *opaque, void (*restart)(void *opaque))
{
    char err[512];
    for (int attempt = 0;; attempt++) {
        lt_err_t rc = lt_kafka_read_from(s->cfg, "DOWNSTREAM_KAFKA_", s->topic_down, parts, from, n,
                                         fn, opaque, readback_stop, s, 120000, err, sizeof(err));
        if (rc == LT_OK)
            return LT_OK;
        lt_warn("reading %s back after a takeover: %s (attempt %d)", s->topic_down, err,
                attempt + 1);
        if (sink_give_up(s))
            return LT_ERR_RETRIABLE;
        restart(opaque);
        sink_sleep_ms(s, 1000);
    }
}

/* ---- downstream as read back in a takeover ---- */

typedef struct {
    sink_t *s;
    size_t n0;    /* kept before this read */
    int64_t *at0; /* seen_next before this read */
    int full;
} seen_read_t;

int sink_read_write(const rd_kafka_message_t *rkm, uint8_t id[16], int32_t *part, int64_t *off)
{
    rd_kafka_headers_t *hdrs;
    const void *v;
    size_t vlen;
    if (!rkm->key || rkm->key_len != 36 || lt_dedupe_uuid_parse(rkm->key, 36, id) != 0)
        return -1;
    if (rd_kafka_message_headers(rkm, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(hdrs, SINK_SRC_HEADER, &v, &vlen) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        sink_src_parse(v, vlen, part, off) != 0)
        *part = -1, *off = -1;
    return 0;
}

static void seen_add(const rd_kafka_message_t *rkm, void *opaque)
{
    seen_read_t *r = opaque;
    sink_t *s = r->s;
    sink_seen_t w;
    if (rkm->partition < 0 || rkm->partition >= s->down_parts || r->full)
        return;
    s->seen_next[rkm->partition] = rkm->offset + 1;
    if (sink_read_write(rkm, w.id, &w.part, &w.off) != 0)
        return; /* not an event of ours */
    if (s->nseen == s->capseen) {
        size_t cap = s->capseen ? 2 * s->capseen : 4096;
        sink_seen_t *g;
        if (cap > s->seen_max)
            cap = s->seen_max;
        g = cap > s->capseen ? realloc(s->seen, cap * sizeof(*g)) : NULL;
        if (!g) {
            r->full = 1;
            return;
        }
        s->seen = g;
        s->capseen = cap;
    }
    s->seen[s->nseen++] = w;
}

static void seen_restart(void *opaque)
{
    seen_read_t *r = opaque;
    r->s->nseen = r->n0;
    memcpy(r->s->seen_next, r->at0, (size_t)r->s->down_parts * sizeof(int64_t));
    r->full = 0;
}

void sink_seen_drop(sink_t *s)
{
    free(s->seen);
    free(s->seen_start);
    free(s->seen_next);
    s->seen = NULL;
    s->seen_start = s->seen_next = NULL;
    s->nseen = s->capseen = 0;
    s->seen_full = s->seen_max == 0;
}

const sink_seen_t *sink_seen(const sink_t *s, size_t *n)
{
    *n = s->nseen;
    return s->seen;
}

lt_err_t sink_seen_read(sink_t *s, const int32_t *parts, const int64_t *from, int n)
{
    size_t np = (size_t)s->down_parts;
    int32_t *rp = malloc((size_t)n * sizeof(int32_t) + 1);
    int64_t *rf = malloc((size_t)n * sizeof(int64_t) + 1);
    seen_read_t r = {s, 0, malloc(np * sizeof(int64_t) + 1), 0};
    int m = 0;
    lt_err_t rc = LT_ERR_FATAL;
    if (!rp || !rf || !r.at0)
        goto done;
    if (!s->seen_start) {
        int64_t *start = malloc(np * sizeof(int64_t) + 1), *next = malloc(np * sizeof(int64_t) + 1);
        if (!start || !next) {
            free(start);
            free(next);
            goto done;
        }
        for (size_t d = 0; d < np; d++)
            start[d] = next[d] = -1;
        s->seen_start = start;
        s->seen_next = next;
    }
    for (int i = 0; i < n; i++)
        if (s->seen_start[parts[i]] > from[i]) { /* kept from too late: read all again */
            for (size_t d = 0; d < np; d++)
                s->seen_start[d] = s->seen_next[d] = -1;
            s->nseen = 0;
            break;
        }
    for (int i = 0; i < n; i++) {
        int32_t d = parts[i];
        if (s->seen_start[d] < 0)
            s->seen_start[d] = s->seen_next[d] = from[i];
        rp[m] = d;
        rf[m++] = s->seen_next[d];
    }
    r.n0 = s->nseen;
    memcpy(r.at0, s->seen_next, np * sizeof(int64_t));
    if ((rc = sink_readback(s, rp, rf, m, seen_add, &r, seen_restart)) == LT_OK && r.full) {
        lt_warn("takeover: over %zu writes read back from %s (SINK_TAKEOVER_KEEP); each batch "
                "reads from the bounds from now on",
                s->seen_max, s->topic_down);
        free(s->seen);
        s->seen = NULL;
        s->nseen = s->capseen = 0;
        s->seen_full = 1;
    }
done:
    if (rc == LT_ERR_FATAL)
        lt_error("out of memory (sink read back)");
    free(rp);
    free(rf);
    free(r.at0);
    return rc;
}

size_t sink_src_format(char *buf, int32_t partition, int64_t offset)
{
    int n = snprintf(buf, SINK_SRC_MAX, "%" PRId32 "/%" PRId64, partition, offset);
    return n > 0 && n < SINK_SRC_MAX ? (size_t)n : 0;
}

/* Digits only, at most 18 of them, so the value fits an int64_t. */
static int parse_digits(const char *s, size_t len, int64_t *out)
{
    int64_t v = 0;
    if (len == 0 || len > 18)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int sink_src_parse(const void *v, size_t len, int32_t *partition, int64_t *offset)
{
    const char *s = v, *slash = v && len < SINK_SRC_MAX ? memchr(s, '/', len) : NULL;
    int64_t p, o;
    if (!slash || parse_digits(s, (size_t)(slash - s), &p) != 0 || p > INT32_MAX ||
        parse_digits(slash + 1, len - (size_t)(slash - s) - 1, &o) != 0)
        return -1;
    *partition = (int32_t)p;
    *offset = o;
    return 0;
}

/* The index of offset off in w_off[0..n) (increasing), or n. */
static size_t find_offset(const int64_t *w_off, size_t n, int64_t off)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (w_off[mid] < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && w_off[lo] == off ? lo : n;
}

size_t sink_takeover_skips(int32_t part, const int64_t *w_off, const uint8_t *w_unc, size_t nw,
                           const sink_found_t *f, size_t nf, int prev_wrote, uint8_t *skip)
{
    int64_t min_after = INT64_MAX; /* lowest offset of part written after, downstream */
    size_t n = 0;
    memset(skip, 0, nw);
    /* From the end back: a write's last copy downstream decides (skip 1:
     * found and safe, 2: found and unsafe). */
    for (size_t t = nf; t-- > 0;) {
        size_t k;
        if (f[t].part != part || f[t].off < 0) {
            min_after = -1; /* unknown coordinates: everything before is unsafe */
            continue;
        }
        if ((k = find_offset(w_off, nw, f[t].off)) < nw && !skip[k])
            skip[k] = min_after > f[t].off ? 1 : 2;
        if (f[t].off < min_after)
            min_after = f[t].off;
    }
    for (size_t k = 0; k < nw; k++)
        if (w_unc[k] && skip[k] == 1)
            n = k + 1; /* the last found and safe, and all before it */
    if (prev_wrote)
        n = 0;
    for (size_t k = 0; k < nw; k++)
        skip[k] = k >= n ? 0 : w_unc[k] && skip[k] == 1 ? 1 : 2;
    return n;
}

/* ---- finished batches not committed yet ---- */

struct sink_done_s {
    long long at_ms; /* when it finished (the older of two merged) */
    size_t n;
    int32_t *part;
    int64_t *lo, *hi, *bound; /* bound: s->down_parts long when made */
    int32_t nbound;
};

void sink_committed(sink_t *s, int32_t p, int64_t offset)
{
    if (p < 0 || p >= 1 << 20)
        return;
    if (p >= s->ncommitted) {
        int32_t n = p + 1;
        int64_t *c = realloc(s->committed, (size_t)n * sizeof(int64_t));
        if (!c)
            return; /* not known committed: kept longer, the safe side */
        for (int32_t i = s->ncommitted; i < n; i++)
            c[i] = -1;
        s->committed = c;
        s->ncommitted = n;
    }
    if (offset > s->committed[p])
        s->committed[p] = offset;
}

static void done_free(struct sink_done_s *d)
{
    free(d->part);
    free(d->lo);
    free(d->hi);
    free(d->bound);
}

/* Every partition of d committed past its hi? */
static int done_committed(const sink_t *s, const struct sink_done_s *d)
{
    for (size_t k = 0; k < d->n; k++) {
        int32_t p = d->part[k];
        if (p >= s->ncommitted || s->committed[p] <= d->hi[k])
            return 0;
    }
    return 1;
}

/* Folds done[1] into done[0] (ranges and bounds widened). 0, or -1 (OOM). */
static int done_merge(struct sink_done_s *a, const struct sink_done_s *b)
{
    size_t n = a->n;
    int32_t *part = realloc(a->part, (a->n + b->n) * sizeof(int32_t));
    if (part)
        a->part = part;
    int64_t *lo = part ? realloc(a->lo, (a->n + b->n) * sizeof(int64_t)) : NULL;
    if (lo)
        a->lo = lo;
    int64_t *hi = lo ? realloc(a->hi, (a->n + b->n) * sizeof(int64_t)) : NULL;
    if (!hi)
        return -1;
    a->hi = hi;
    for (size_t j = 0; j < b->n; j++) {
        size_t k;
        for (k = 0; k < n && a->part[k] != b->part[j]; k++)
            ;
        if (k == n) {
            a->part[n] = b->part[j];
            a->lo[n] = b->lo[j];
            a->hi[n++] = b->hi[j];
            continue;
        }
        if (b->lo[j] < a->lo[k])
            a->lo[k] = b->lo[j];
        if (b->hi[j] > a->hi[k])
            a->hi[k] = b->hi[j];
    }
    a->n = n;
    for (int32_t d = 0; d < a->nbound && d < b->nbound; d++)
        if (b->bound[d] >= 0 && (a->bound[d] < 0 || b->bound[d] < a->bound[d]))
            a->bound[d] = b->bound[d];
    return 0;
}

static void done_prune(sink_t *s, long long now_ms)
{
    size_t k = 0;
    while (k < s->ndone &&
           (done_committed(s, &s->done[k]) || now_ms - s->done[k].at_ms > SINK_DONE_AGE_MS))
        done_free(&s->done[k++]);
    if (k) {
        memmove(s->done, s->done + k, (s->ndone - k) * sizeof(*s->done));
        s->ndone -= k;
    }
    lt_metric_set(s->m.uncommitted, (int64_t)s->ndone);
}

int sink_done_add(sink_t *s, const int32_t *part, const int64_t *lo, const int64_t *hi, size_t n,
                  const int64_t *bound, long long now_ms)
{
    struct sink_done_s d = {
        now_ms, n, NULL, NULL, NULL, NULL, s->down_parts > 0 ? s->down_parts : 0};
    done_prune(s, now_ms);
    if (!s->done && !(s->done = calloc(SINK_DONE_MAX, sizeof(*s->done))))
        return -1;
    if (s->ndone == SINK_DONE_MAX) {
        if (done_merge(&s->done[0], &s->done[1]) != 0)
            return -1;
        done_free(&s->done[1]);
        memmove(s->done + 1, s->done + 2, (s->ndone - 2) * sizeof(*s->done));
        s->ndone--;
    }
    d.part = malloc((n ? n : 1) * sizeof(int32_t));
    d.lo = malloc((n ? n : 1) * sizeof(int64_t));
    d.hi = malloc((n ? n : 1) * sizeof(int64_t));
    d.bound = malloc((d.nbound ? (size_t)d.nbound : 1) * sizeof(int64_t));
    if (!d.part || !d.lo || !d.hi || !d.bound) {
        done_free(&d);
        return -1;
    }
    memcpy(d.part, part, n * sizeof(int32_t));
    memcpy(d.lo, lo, n * sizeof(int64_t));
    memcpy(d.hi, hi, n * sizeof(int64_t));
    for (int32_t i = 0; i < d.nbound; i++)
        d.bound[i] = bound ? bound[i] : -1;
    s->done[s->ndone++] = d;
    lt_metric_set(s->m.uncommitted, (int64_t)s->ndone);
    return 0;
}

void sink_done_cover(sink_t *s, int32_t p, int64_t *lo, int64_t *from, long long now_ms)
{
    done_prune(s, now_ms);
    for (size_t i = 0; i < s->ndone; i++) {
        const struct sink_done_s *d = &s->done[i];
        for (size_t k = 0; k < d->n; k++)
            if (lo && d->part[k] == p && d->lo[k] < *lo &&
                (p >= s->ncommitted || s->committed[p] <= d->hi[k]))
                *lo = d->lo[k];
        for (int32_t j = 0; from && j < d->nbound && j < s->down_parts; j++)
            if (d->bound[j] >= 0 && (from[j] < 0 || d->bound[j] < from[j]))
                from[j] = d->bound[j];
    }
}

void sink_done_close(sink_t *s)
{
    for (size_t i = 0; i < s->ndone; i++)
        done_free(&s->done[i]);
    free(s->done);
    free(s->committed);
    s->done = NULL;
    s->committed = NULL;
    s->ndone = 0;
    s->ncommitted = 0;
}
