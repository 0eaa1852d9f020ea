/* lt_dlq: dead-letter records (see lt_dlq.h). */
#include "lt_dlq.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_buf.h"

/* Length of the valid UTF-8 sequence at p (RFC 3629: no overlongs, no
 * surrogates, <= U+10FFFF), or 0. */
static size_t utf8_seq(const unsigned char *p, size_t left)
{
    unsigned c = p[0];
    size_t n = c < 0x80             ? 1
               : (c & 0xe0) == 0xc0 ? 2
               : (c & 0xf0) == 0xe0 ? 3
               : (c & 0xf8) == 0xf0 ? 4
                                    : 0;
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

static void base64(lt_buf_t *b, const unsigned char *p, size_t len)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char q[4];
    lt_buf_put(b, "\"", 1);
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
        lt_buf_put(b, q, 4);
    }
    lt_buf_put(b, "\"", 1);
}

/* ,"name":"..." or ,"name":null,"name_base64":"..." */
static void field_bytes(lt_buf_t *b, const char *name, const void *data, size_t len)
{
    const unsigned char *p = data;
    lt_buf_put(b, ",\"", 2);
    lt_buf_puts(b, name);
    lt_buf_put(b, "\":", 2);
    if (!p) {
        lt_buf_puts(b, "null");
    } else if (is_utf8(p, len)) {
        lt_buf_json_str(b, p, len);
    } else {
        lt_buf_puts(b, "null,\"");
        lt_buf_puts(b, name);
        lt_buf_puts(b, "_base64\":");
        base64(b, p, len);
    }
}

char *lt_dlq_record(const char *reason, const char *topic, int32_t partition, int64_t offset,
                    const void *key, size_t keylen, const void *value, size_t len, size_t *outlen)
{
    lt_buf_t b = {0};
    char num[96], why[512];
    size_t cut = len;
    if (value && cut > LT_DLQ_VALUE_MAX)
        cut = utf8_cut(value, LT_DLQ_VALUE_MAX);
    /* Reasons may quote a cut field name: keep them plain ASCII. */
    snprintf(why, sizeof(why), "%s", reason ? reason : "");
    for (char *c = why; *c; c++)
        *c = (unsigned char)*c >= 0x80 ? '?' : *c;
    lt_buf_puts(&b, "{\"reason\":");
    lt_buf_json_str(&b, why, strlen(why));
    lt_buf_puts(&b, ",\"topic\":");
    lt_buf_json_str(&b, topic, strlen(topic));
    snprintf(num, sizeof(num), ",\"partition\":%" PRId32 ",\"offset\":%" PRId64, partition, offset);
    lt_buf_puts(&b, num);
    field_bytes(&b, "key", key, keylen);
    field_bytes(&b, "value", value, cut);
    if (cut < len) {
        snprintf(num, sizeof(num), ",\"value_truncated\":true,\"value_len\":%zu", len);
        lt_buf_puts(&b, num);
    }
    lt_buf_puts(&b, "}");
    if (b.oom) {
        lt_buf_release(&b);
        return NULL;
    }
    *outlen = b.len;
    return b.p;
}
