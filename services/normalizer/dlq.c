/* Dead letters: {"reason","topic","partition","offset","key","value"} keyed
 * by the source key. The offending bytes travel as a JSON string: valid
 * UTF-8 as is, any other byte as \u00XX, so the record is always valid JSON.
 * Raw rows are already sanitized by the fetcher, so no secret can reach the
 * DLQ through them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "normalizer.h"

typedef struct {
    char *p;
    size_t len, cap;
} sbuf_t;

static int sb_put(sbuf_t *b, const void *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap : 256) * 2;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np)
            return -1;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

/* Length of the valid UTF-8 sequence at s (at most left bytes), or 0. */
static size_t utf8_len(const unsigned char *s, size_t left)
{
    size_t n = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
    if (n == 0 || s[0] >= 0xf5 || n > left)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

static int sb_json_bytes(sbuf_t *b, const void *data, size_t len)
{
    const unsigned char *s = data;
    int rc = sb_put(b, "\"", 1);
    for (size_t i = 0; i < len && rc == 0;) {
        size_t u = s[i] >= 0x80 ? utf8_len(s + i, len - i) : 0;
        char esc[8];
        if (u) {
            rc = sb_put(b, s + i, u);
            i += u;
            continue;
        }
        if (s[i] >= 0x20 && s[i] < 0x80 && s[i] != '"' && s[i] != '\\') {
            rc = sb_put(b, s + i, 1);
        } else {
            int n = snprintf(esc, sizeof(esc), s[i] == '"' || s[i] == '\\' ? "\\%c" : "\\u%04x", s[i]);
            rc = sb_put(b, esc, (size_t)n);
        }
        i++;
    }
    return rc ? rc : sb_put(b, "\"", 1);
}

lt_err_t norm_dlq_send(norm_t *n, const norm_msg_t *msg, char *errstr, size_t errlen)
{
    const rd_kafka_message_t *rkm = msg->rkm;
    sbuf_t b = {0};
    char num[96];
    lt_err_t err = LT_ERR_FATAL;
    int bad = sb_put(&b, "{\"reason\":", 10) || sb_json_bytes(&b, msg->reason, strlen(msg->reason)) ||
              sb_put(&b, ",\"topic\":", 9) ||
              sb_json_bytes(&b, rd_kafka_topic_name(rkm->rkt), strlen(rd_kafka_topic_name(rkm->rkt)));
    snprintf(num, sizeof(num), ",\"partition\":%d,\"offset\":%lld,\"key\":", (int)rkm->partition,
             (long long)rkm->offset);
    bad = bad || sb_put(&b, num, strlen(num)) ||
          (rkm->key ? sb_json_bytes(&b, rkm->key, rkm->key_len) : sb_put(&b, "null", 4)) ||
          sb_put(&b, ",\"value\":", 9) ||
          (rkm->payload ? sb_json_bytes(&b, rkm->payload, rkm->len) : sb_put(&b, "null", 4)) ||
          sb_put(&b, "}", 1);
    if (!bad)
        err = lt_producer_send(n->prod, n->topic_dlq, rkm->key, rkm->key_len, b.p, b.len,
                               &n->batch, errstr, errlen);
    else
        snprintf(errstr, errlen, "out of memory");
    free(b.p);
    if (err == LT_OK)
        lt_metric_add(n->m.dlq, 1);
    return err;
}
