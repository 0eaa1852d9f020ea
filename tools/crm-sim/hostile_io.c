/* Hostile answers that need libmicrohttpd: bodies generated while they are
 * sent (huge_body, deep_json, wide_json: a few segments, each one unit
 * repeated, never the whole body in memory), the drip of a real body, and a
 * request held without an answer (hang). All of it runs on the connection's
 * own thread (MHD_USE_THREAD_PER_CONNECTION), so blocking here stalls no
 * other client; every wait polls cs_hostile_stopping() so the daemon stops. */
#include "sim.h"

#include <microhttpd.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NSEG  5
#define BLOCK (64 * 1024)

static const char HUGE_HEAD[] =
    "{\"result\":\"SUCCESS\",\"message\":{\"totalResults\":1,\"resultsPerPage\":25,\"page\":1,"
    "\"data\":[{\"transactionId\":4100001,\"notes\":\"";
static const char HUGE_TAIL[] = "\"}],\"params\":null,\"errors\":null}}";
static const char WIDE_HEAD[] =
    "{\"result\":\"SUCCESS\",\"message\":{\"totalResults\":1,\"data\":[";
static const char WIDE_TAIL[] = "]}}";
#define LEN(s) (sizeof(s) - 1)

typedef struct {
    const char *unit;
    size_t ulen;
    uint64_t reps;
} seg_t;

typedef struct {
    seg_t seg[NSEG];
    int nseg, cur;
    uint64_t off; /* within seg[cur] */
    int drip_ms;  /* > 0: one byte per call, after that long */
    char *owned;  /* freed with the stream */
} stream_t;

static uint64_t seg_len(const seg_t *s)
{
    return (uint64_t)s->ulen * s->reps;
}

static void seg_add(stream_t *st, const char *unit, size_t ulen, uint64_t reps)
{
    st->seg[st->nseg++] = (seg_t){unit, ulen, reps};
}

static size_t seg_copy(const seg_t *s, uint64_t off, char *buf, size_t max)
{
    uint64_t left = seg_len(s) - off;
    size_t n = left < max ? (size_t)left : max;
    if (s->ulen == 1)
        memset(buf, s->unit[0], n);
    else if (s->reps == 1)
        memcpy(buf, s->unit + off, n);
    else
        for (size_t i = 0; i < n; i++)
            buf[i] = s->unit[(off + i) % s->ulen];
    return n;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    stream_t *st = cls;
    size_t n = 0;
    (void)pos; /* the response is never reused: pos is our own cursor */
    if (st->drip_ms > 0) {
        if (cs_hostile_sleep_ms(st->drip_ms) != 0)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        max = max < 1 ? max : 1;
    } else if (cs_hostile_stopping()) {
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    while (n < max && st->cur < st->nseg) {
        const seg_t *s = &st->seg[st->cur];
        size_t k = seg_copy(s, st->off, buf + n, max - n);
        n += k, st->off += k;
        if (st->off == seg_len(s))
            st->cur++, st->off = 0;
    }
    return n ? (ssize_t)n : MHD_CONTENT_READER_END_OF_STREAM;
}

static void stream_free(void *cls)
{
    stream_t *st = cls;
    if (st)
        free(st->owned);
    free(st);
}

/* Takes st (freed on failure too). Content-Length is the segments' sum. */
static struct MHD_Response *stream_response(stream_t *st)
{
    uint64_t total = 0;
    for (int i = 0; i < st->nseg; i++)
        total += seg_len(&st->seg[i]);
    struct MHD_Response *resp = MHD_create_response_from_callback(total, st->drip_ms ? 64 : BLOCK,
                                                                  stream_read, st, stream_free);
    if (!resp) {
        stream_free(st);
        return NULL;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    return resp;
}

/* The real envelope around one row whose "notes" fill the body to exactly
 * bytes (or the bare envelope when bytes is smaller than that). */
static void huge(stream_t *st, uint64_t bytes)
{
    uint64_t frame = LEN(HUGE_HEAD) + LEN(HUGE_TAIL);
    seg_add(st, HUGE_HEAD, LEN(HUGE_HEAD), 1);
    seg_add(st, "x", 1, bytes > frame ? bytes - frame : 0);
    seg_add(st, HUGE_TAIL, LEN(HUGE_TAIL), 1);
}

/* data: [[],[],...] of items, or as many as fit bytes, padded to exactly
 * bytes with blanks inside the array (still valid JSON). */
static void wide(stream_t *st, uint64_t items, uint64_t bytes)
{
    uint64_t frame = LEN(WIDE_HEAD) + LEN(WIDE_TAIL), pad = 0;
    if (bytes) {
        items = bytes > frame + 2 ? (bytes - frame + 1) / 3 : 1;
        pad = bytes > frame + 3 * items - 1 ? bytes - frame - (3 * items - 1) : 0;
    }
    seg_add(st, WIDE_HEAD, LEN(WIDE_HEAD), 1);
    seg_add(st, "[],", 3, items - 1);
    seg_add(st, "[]", 2, 1);
    seg_add(st, " ", 1, pad);
    seg_add(st, WIDE_TAIL, LEN(WIDE_TAIL), 1);
}

struct MHD_Response *cs_hostile_body(const cs_hostile_t *h, int *mode)
{
    stream_t *st;
    *mode = h->modes & CS_H_BIT(CS_H_HUGE_BODY)   ? CS_H_HUGE_BODY
            : h->modes & CS_H_BIT(CS_H_DEEP_JSON) ? CS_H_DEEP_JSON
            : h->modes & CS_H_BIT(CS_H_WIDE_JSON) ? CS_H_WIDE_JSON
                                                  : -1;
    if (*mode < 0 || !(st = calloc(1, sizeof(*st))))
        return NULL;
    if (*mode == CS_H_HUGE_BODY)
        huge(st, h->huge_bytes);
    else if (*mode == CS_H_DEEP_JSON) {
        seg_add(st, "[", 1, h->deep_depth);
        seg_add(st, "]", 1, h->deep_depth);
    } else {
        wide(st, h->wide_items, h->wide_bytes);
    }
    return stream_response(st);
}

struct MHD_Response *cs_hostile_drip(char *body, size_t len, int interval_ms)
{
    stream_t *st = calloc(1, sizeof(*st));
    if (!st) {
        free(body);
        return NULL;
    }
    st->owned = body, st->drip_ms = interval_ms;
    seg_add(st, body, len, 1);
    return stream_response(st);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Nothing is read or written meanwhile: the peer's FIN or RST shows as
 * POLLRDHUP / POLLHUP / POLLERR on the connection's socket. */
int cs_hostile_hang(struct MHD_Connection *c, const cs_hostile_t *h)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    int64_t deadline = now_ms() + (int64_t)h->hang_s * 1000;
    cs_hostile_tally(h, CS_H_BIT(CS_H_HANG));
    while (!cs_hostile_stopping() && cs_hostile_epoch(h->st) == h->hang_epoch) {
        if (now_ms() >= deadline)
            return -1;
        struct pollfd p = {ci ? ci->connect_fd : -1, POLLRDHUP, 0};
        if (poll(&p, 1, 100) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)))
            return -1;
    }
    return cs_hostile_stopping() ? -1 : 0;
}
