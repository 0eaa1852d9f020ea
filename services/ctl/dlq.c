/* ltvctl dlq list|retry
 *
 * list: every dead letter with its reason and source coordinates.
 * retry: produces the offending bytes again to their source topic under the
 * source key (after a fix is deployed), once per dead letter: retried DLQ
 * offsets are remembered in P dlq:retried (lt_rkey_global). A truncated
 * record cannot be retried and says so. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ctl.h"
#include "lt_buf.h"
#include "lt_json.h"
#include "lt_kafka.h"
#include "lt_redis.h"
#include "lt_rkeys.h"
#include "lt_uuid.h"

typedef struct {
    const ctl_t *ctl;
    lt_producer_t *producer; /* NULL for list */
    lt_redis_t *redis;
    lt_acks_t *acks; /* of the retry in progress */
    long listed, retried, skipped, failed;
    cJSON *json; /* --json list output */
} dlq_ctx_t;

static size_t b64_decode(const char *in, unsigned char *out, size_t cap)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned acc = 0;
    int bits = 0;
    size_t n = 0;
    for (; *in && *in != '='; in++) {
        const char *p = strchr(tbl, *in);
        if (!p || !*p)
            return (size_t)-1;
        acc = (acc << 6) | (unsigned)(p - tbl);
        if ((bits += 6) >= 8) {
            bits -= 8;
            if (n == cap)
                return (size_t)-1;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    return n;
}

/* 1 when these bytes were retried already (or marks them now when mark). */
static int retried_before(dlq_ctx_t *d, const char *topic, const char *key, const void *val,
                          size_t len, int mark)
{
    char member[37], rkey[256];
    lt_buf_t name = {0};
    redisReply *reply;
    int rc;
    lt_buf_puts(&name, topic);
    lt_buf_put(&name, "", 1);
    lt_buf_puts(&name, key ? key : "");
    lt_buf_put(&name, "", 1);
    lt_buf_put(&name, val, len);
    if (name.oom) {
        lt_buf_release(&name);
        return -1;
    }
    lt_uuid_v5(LT_UUID_NS_LTVSYNC, name.p, name.len, member);
    lt_buf_release(&name);
    lt_rkey_global(rkey, sizeof(rkey), lt_config_str(d->ctl->cfg, "REDIS_PREFIX"), "dlq:retried");
    reply = lt_redis_cmd(d->redis, mark ? "SADD %s %s" : "SISMEMBER %s %s", rkey, member);
    if (!reply)
        return -1;
    rc = reply->type == REDIS_REPLY_INTEGER ? (int)reply->integer : -1;
    freeReplyObject(reply);
    return rc;
}

static void retry_one(dlq_ctx_t *d, const rd_kafka_message_t *rkm, const cJSON *rec)
{
    const char *topic = lt_json_str(rec, "topic"), *key = lt_json_str(rec, "key");
    const char *val = lt_json_str(rec, "value"), *b64 = lt_json_str(rec, "value_base64");
    unsigned char *buf = NULL;
    size_t len = val ? strlen(val) : 0;
    char errstr[256];
    int seen;

    if (!topic || (!val && !b64) ||
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rec, "value_truncated"))) {
        fprintf(d->ctl->json ? d->ctl->err : d->ctl->out,
                "  skip %d:%lld: not retriable (no source topic or value, or truncated)\n",
                (int)rkm->partition, (long long)rkm->offset);
        d->skipped++;
        return;
    }
    if (!val) {
        if (!(buf = malloc(strlen(b64))) ||
            (len = b64_decode(b64, buf, strlen(b64))) == (size_t)-1) {
            free(buf);
            d->failed++;
            return;
        }
        val = (const char *)buf;
    }
    if ((seen = retried_before(d, topic, key, val, len, 0)) != 0) {
        d->skipped += seen > 0;
        d->failed += seen < 0;
        free(buf);
        return;
    }
    lt_acks_release(d->acks);
    if (!(d->acks = lt_acks_new()) ||
        lt_producer_send(d->producer, topic, key, key ? strlen(key) : 0, val, len, d->acks, errstr,
                         sizeof(errstr)) != LT_OK ||
        lt_producer_wait(d->producer, d->acks, 30000) != LT_OK ||
        retried_before(d, topic, key, val, len, 1) < 0) {
        fprintf(d->ctl->err, "ltvctl: retry of %d:%lld failed\n", (int)rkm->partition,
                (long long)rkm->offset);
        d->failed++;
    } else {
        d->retried++;
    }
    free(buf);
}

static void on_letter(const rd_kafka_message_t *rkm, void *opaque)
{
    dlq_ctx_t *d = opaque;
    char errstr[128];
    cJSON *rec = lt_json_parse(rkm->payload, rkm->len, 4u << 20, errstr, sizeof(errstr));
    const char *reason, *topic;
    long long part = -1, off = -1;
    if (!rec)
        return;
    reason = lt_json_str(rec, "reason");
    topic = lt_json_str(rec, "topic");
    lt_json_int(rec, "partition", &part);
    lt_json_int(rec, "offset", &off);
    d->listed++;
    if (d->producer) {
        retry_one(d, rkm, rec);
    } else if (d->json) {
        cJSON_AddNumberToObject(rec, "dlq_partition", rkm->partition);
        cJSON_AddNumberToObject(rec, "dlq_offset", (double)rkm->offset);
        cJSON_AddItemToArray(d->json, cJSON_Duplicate(rec, 1));
    } else {
        const char *v = lt_json_str(rec, "value");
        fprintf(d->ctl->out, "%d:%-8lld %s[%lld]@%lld  %s\n    %.100s\n", (int)rkm->partition,
                (long long)rkm->offset, topic ? topic : "?", part, off,
                reason ? reason : "(no reason)", v ? v : "(binary: value_base64)");
    }
    cJSON_Delete(rec);
}

int ctl_dlq(ctl_t *ctl, const char *verb)
{
    dlq_ctx_t d = {.ctl = ctl};
    char errstr[512];
    int rc = CTL_FAIL, retry = !strcmp(verb, "retry");
    if (!retry && strcmp(verb, "list")) {
        fprintf(ctl->err, "ltvctl: dlq list | dlq retry\n");
        return CTL_USAGE;
    }
    if (retry && (!(d.redis = lt_redis_new(lt_config_str(ctl->cfg, "REDIS_URL"), 3000, errstr,
                                           sizeof(errstr))) ||
                  !(d.producer = lt_producer_new(ctl->cfg, "KAFKA_", errstr, sizeof(errstr))))) {
        fprintf(ctl->err, "ltvctl: %s\n", errstr);
        goto end;
    }
    if (!retry && ctl->json)
        d.json = cJSON_CreateArray();
    if (lt_kafka_read_all(ctl->cfg, lt_config_str(ctl->cfg, "TOPIC_DLQ"), on_letter, &d, 60000,
                          errstr, sizeof(errstr)) != LT_OK) {
        fprintf(ctl->err, "ltvctl: reading the DLQ: %s\n", errstr);
        goto end;
    }
    if (d.json) {
        char *s = lt_json_print(d.json);
        fprintf(ctl->out, "%s\n", s ? s : "[]");
        free(s);
    } else if (retry && ctl->json) {
        fprintf(ctl->out, "{\"listed\":%ld,\"retried\":%ld,\"skipped\":%ld,\"failed\":%ld}\n",
                d.listed, d.retried, d.skipped, d.failed);
    } else if (retry) {
        fprintf(ctl->out,
                "%ld dead letters: %ld retried, %ld skipped (retried before or not retriable), %ld "
                "failed\n",
                d.listed, d.retried, d.skipped, d.failed);
    } else {
        fprintf(ctl->out, "%ld dead letters\n", d.listed);
    }
    rc = d.failed ? CTL_FAIL : CTL_OK;
end:
    cJSON_Delete(d.json);
    lt_producer_destroy(d.producer, 5000);
    lt_acks_release(d.acks);
    lt_redis_destroy(d.redis);
    return rc;
}
