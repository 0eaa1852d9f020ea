/* dlq.c: the DLQ record of a message the sink refuses. The offending bytes
 * are kept as they came: as a JSON string when they are valid UTF-8 (the
 * usual case: bad JSON, a wrong field), else base64, so `kcat -f '%s\n'`
 * still prints one JSON object per line. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sink.h"

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} dbuf_t;

static void put(dbuf_t *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 512;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(dbuf_t *b, const char *s)
{
    put(b, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at p (RFC 3629: no overlongs, no
 * surrogates, <= U+10FFFF), or 0. */
static size_t utf8_seq(const unsigned char *p, size_t left)
{
    unsigned c = p[0];
    size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
                        : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (n == 0 || n > left || (n == 2 && c < 0xc2) || (n == 4 && c > 0xf4))
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if (n == 3 && ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0)))
        return 0;
    if (n == 4 && ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90)))
        return 0;
    return n;
}

static int is_utf8(const unsigned char *p, size_t len)
{
    size_t i = 0, n;
    while (i < len) {
        if (!(n = utf8_seq(p + i, len - i)))
            return 0;
        i += n;
    }
    return 1;
}

/* Cuts len back so a multi-byte sequence is not split. */
static size_t utf8_cut(const unsigned char *p, size_t len)
{
    while (len > 0 && (p[len] & 0xc0) == 0x80)
        len--;
    return len;
}

static void json_bytes(dbuf_t *b, const unsigned char *p, size_t len)
{
    size_t run = 0, i;
    char esc[8];
    put(b, "\"", 1);
    for (i = 0; i < len; i++) {
        unsigned char c = p[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put(b, (const char *)p + run, i - run);
        snprintf(esc, sizeof(esc), c == '"' || c == '\\' ? "\\%c" : "\\u%04x", c);
        puts_(b, esc);
        run = i + 1;
    }
    put(b, (const char *)p + run, i - run);
    put(b, "\"", 1);
}

static void base64(dbuf_t *b, const unsigned char *p, size_t len)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char q[4];
    put(b, "\"", 1);
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        size_t n = len - i < 3 ? len - i : 3;
        if (n > 1)
            v |= (uint32_t)p[i + 1] << 8;
        if (n > 2)
            v |= p[i + 2];
        q[0] = tab[v >> 18 & 63];
        q[1] = tab[v >> 12 & 63];
        q[2] = n > 1 ? tab[v >> 6 & 63] : '=';
        q[3] = n > 2 ? tab[v & 63] : '=';
        put(b, q, 4);
    }
    put(b, "\"", 1);
}

/* ,"name":"..." or ,"name":null,"name_base64":"..." */
static void field_bytes(dbuf_t *b, const char *name, const void *data, size_t len)
{
    const unsigned char *p = data;
    put(b, ",\"", 2);
    puts_(b, name);
    put(b, "\":", 2);
    if (!p) {
        puts_(b, "null");
    } else if (is_utf8(p, len)) {
        json_bytes(b, p, len);
    } else {
        puts_(b, "null,\"");
        puts_(b, name);
        puts_(b, "_base64\":");
        base64(b, p, len);
    }
}

char *sink_dlq_record(const rd_kafka_message_t *rkm, const char *reason,
                      size_t *len)
{
    dbuf_t b = {0};
    char num[96], why[512];
    const char *topic = rd_kafka_topic_name(rkm->rkt);
    size_t vlen = rkm->len, cut = vlen;
    if (rkm->payload && cut > SINK_DLQ_VALUE_MAX)
        cut = utf8_cut(rkm->payload, SINK_DLQ_VALUE_MAX);
    /* Reasons may quote a cut field name: keep them plain ASCII. */
    snprintf(why, sizeof(why), "%s", reason);
    for (char *c = why; *c; c++)
        *c = (unsigned char)*c >= 0x80 ? '?' : *c;
    puts_(&b, "{\"reason\":");
    json_bytes(&b, (const unsigned char *)why, strlen(why));
    puts_(&b, ",\"topic\":");
    json_bytes(&b, (const unsigned char *)topic, strlen(topic));
    snprintf(num, sizeof(num), ",\"partition\":%" PRId32 ",\"offset\":%" PRId64,
             rkm->partition, rkm->offset);
    puts_(&b, num);
    field_bytes(&b, "key", rkm->key, rkm->key_len);
    field_bytes(&b, "value", rkm->payload, cut);
    if (cut < vlen) {
        snprintf(num, sizeof(num), ",\"value_truncated\":true,\"value_len\":%zu", vlen);
        puts_(&b, num);
    }
    puts_(&b, "}");
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}
