/* Driver of lt_kafka for tests/integration/test_common_io.py (not a ctest
 * test itself). Configuration from the environment (LTVSYNC_KAFKA_*).
 *   test_kafka_io produce TOPIC N TAG   -> "delivered=N failed=F rc=NAME"
 *   test_kafka_io produce-ref TOPIC N TAG  the same, values sent by reference
 *                                          (lt_producer_send_ref), kept until
 *                                          the acks and then overwritten
 *   test_kafka_io consume TOPIC GROUP N -> "msg P O KEY VALUE" lines (stored
 *                                          and committed), then "consumed=N"
 *   test_kafka_io create TOPIC P        -> "rc=NAME err=..."
 *   test_kafka_io readall TOPIC         -> "msg ..." lines, "read=N rc=NAME"
 *   test_kafka_io tunedconf TOPIC       -> "queued.max.messages.kbytes=V" of a
 *                                          consumer made with that property
 *                                          tuned to 131072 (env may override)
 *   test_kafka_io refill TOPIC N MS     -> consumes N messages with a queue of
 *                                          1 message (queued.min.messages=1)
 *                                          and, when MS > 0, the refill thread
 *                                          every MS ms: "consumed=N ms=T", T
 *                                          from the first message to the last
 *   test_kafka_io resend TOPIC R       -> R rounds of 50 messages "resend-I",
 *                                          each with a counter of its own,
 *                                          "fault R" printed mid-round and a
 *                                          stdin line awaited; those reported
 *                                          failed are sent again until all
 *                                          are delivered: "sent=N unverified=U
 *                                          failed=F resent=R undelivered=X"
 *   test_kafka_io late TOPIC N          -> a waiter that gives up: N messages
 *                                          with a first counter, a 50 ms wait
 *                                          (the broker is slowed by the test),
 *                                          the counter released; then N more
 *                                          with a second counter, awaited:
 *                                          "first_pending=P second: rc=NAME
 *                                          pending=P failed=F in_queue=Q" where
 *                                          Q is what the producer still held
 *                                          when the second wait said done */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lt_clock.h"
#include "lt_kafka.h"
#include "lt_log.h"

static int produce(const lt_config_t *cfg, const char *topic, int n, const char *tag, int by_ref)
{
    char errstr[512] = "", key[32], val[128];
    char(*vals)[128] = by_ref ? calloc((size_t)(n > 0 ? n : 1), sizeof(*vals)) : NULL;
    lt_acks_t *acks = lt_acks_new();
    lt_producer_t *p = lt_producer_new(cfg, "KAFKA_", errstr, sizeof(errstr));
    lt_err_t rc = LT_OK;
    int i;

    if (!p || !acks) {
        printf("producer: %s\n", p ? "out of memory" : errstr);
        lt_producer_destroy(p, 0);
        lt_acks_release(acks);
        free(vals);
        return 1;
    }
    for (i = 0; i < n && rc == LT_OK; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        snprintf(val, sizeof(val), "%s-%d", tag, i);
        if (vals) {
            memcpy(vals[i], val, sizeof(val));
            rc = lt_producer_send_ref(p, topic, key, strlen(key), vals[i], strlen(vals[i]), acks,
                                      errstr, sizeof(errstr));
        } else {
            rc = lt_producer_send(p, topic, key, strlen(key), val, strlen(val), acks, errstr,
                                  sizeof(errstr));
        }
    }
    if (rc == LT_OK)
        rc = lt_producer_wait(p, acks, 20000);
    if (vals && lt_acks_pending(acks) == 0) /* acked: no longer read */
        memset(vals, 'X', (size_t)n * sizeof(*vals));
    printf("delivered=%ld failed=%ld pending=%ld rc=%s first_err=%s\n",
           (long)i - lt_acks_failed(acks) - lt_acks_pending(acks), (long)lt_acks_failed(acks),
           (long)lt_acks_pending(acks), lt_err_name(rc),
           rd_kafka_err2name(lt_acks_first_err(acks)));
    lt_producer_destroy(p, 1000);
    lt_acks_release(acks);
    free(vals);
    return rc == LT_OK ? 0 : 1;
}

static void print_msg(const rd_kafka_message_t *rkm, void *opaque)
{
    int *count = opaque;

    printf("msg %d %lld %.*s %.*s\n", (int)rkm->partition, (long long)rkm->offset,
           (int)rkm->key_len, (const char *)rkm->key, (int)rkm->len, (const char *)rkm->payload);
    (*count)++;
}

static int consume(const lt_config_t *cfg, const char *topic, const char *group, int n)
{
    char errstr[512];
    const char *topics[1] = {topic};
    lt_consumer_t *c = lt_consumer_new(cfg, group, topics, 1, errstr, sizeof(errstr));
    rd_kafka_message_t *rkm;
    int got = 0, idle = 0;

    if (!c) {
        printf("consumer: %s\n", errstr);
        return 1;
    }
    while (got < n && idle < 150) { /* 15 s without a message ends it */
        if (!(rkm = lt_consumer_poll(c, 100))) {
            idle++;
            continue;
        }
        idle = 0;
        print_msg(rkm, &got);
        if (lt_consumer_store(c, rkm) != LT_OK)
            printf("store failed\n");
        rd_kafka_message_destroy(rkm);
    }
    lt_consumer_destroy(c);
    printf("consumed=%d\n", got);
    return 0;
}

/* Late delivery reports of an abandoned wait must land in their own
 * counter: the second counter may say "done" only once its own N messages
 * are acknowledged (nothing left in the producer's queue), and never goes
 * below 0. */
static int late_reports(const lt_config_t *cfg, const char *topic, int n)
{
    char errstr[512] = "", key[32], val[64];
    lt_producer_t *p = lt_producer_new(cfg, "KAFKA_", errstr, sizeof(errstr));
    lt_acks_t *first = lt_acks_new(), *second = NULL;
    lt_err_t rc = LT_ERR_RETRIABLE;
    long first_pending = -1;
    int i, in_queue = -1;

    if (!p || !first) {
        printf("producer: %s\n", p ? "out of memory" : errstr);
        goto done;
    }
    for (i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "a%d", i);
        snprintf(val, sizeof(val), "first-%d", i);
        if (lt_producer_send(p, topic, key, strlen(key), val, strlen(val), first, errstr,
                             sizeof(errstr)) != LT_OK)
            goto done;
    }
    lt_producer_wait(p, first, 50); /* gives up, as a page's wait may */
    first_pending = lt_acks_pending(first);
    lt_acks_release(first);
    first = NULL;
    if (!(second = lt_acks_new()))
        goto done;
    for (i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "b%d", i);
        snprintf(val, sizeof(val), "second-%d", i);
        if (lt_producer_send(p, topic, key, strlen(key), val, strlen(val), second, errstr,
                             sizeof(errstr)) != LT_OK)
            goto done;
    }
    rc = lt_producer_wait(p, second, 30000);
    in_queue = rd_kafka_outq_len(lt_producer_handle(p));
done:
    printf("first_pending=%ld second: rc=%s pending=%ld failed=%ld in_queue=%d\n", first_pending,
           lt_err_name(rc), second ? lt_acks_pending(second) : -1L,
           second ? lt_acks_failed(second) : -1L, in_queue);
    lt_producer_destroy(p, 5000);
    lt_acks_release(first);
    lt_acks_release(second);
    return rc == LT_OK ? 0 : 1;
}

static int tuned_conf(const lt_config_t *cfg, const char *topic)
{
    static const char *const tuning[] = {"queued.max.messages.kbytes", "131072", NULL};
    const char *topics[1] = {topic};
    char errstr[512], val[64];
    size_t n = sizeof(val);
    lt_consumer_t *c =
        lt_consumer_new_tuned(cfg, "tuned-conf", topics, 1, tuning, errstr, sizeof(errstr));

    if (!c) {
        printf("consumer: %s\n", errstr);
        return 1;
    }
    if (rd_kafka_conf_get(rd_kafka_conf(lt_consumer_handle(c)), "queued.max.messages.kbytes", val,
                          &n) != RD_KAFKA_CONF_OK)
        snprintf(val, sizeof(val), "?");
    printf("queued.max.messages.kbytes=%s\n", val);
    lt_consumer_destroy(c);
    return 0;
}

static int refill(const lt_config_t *cfg, const char *topic, int n, int interval_ms)
{
    static const char *const tuning[] = {"queued.min.messages", "1", NULL};
    const char *topics[1] = {topic};
    char errstr[512];
    lt_consumer_t *c =
        lt_consumer_new_tuned(cfg, "refill", topics, 1, tuning, errstr, sizeof(errstr));
    long long first = 0, deadline = lt_clock_mono_ms() + 120000;
    int got = 0;

    if (!c) {
        printf("consumer: %s\n", errstr);
        return 1;
    }
    if (interval_ms > 0 && lt_consumer_refill_every(c, interval_ms) != 0)
        printf("refill thread not started\n");
    while (got < n && lt_clock_mono_ms() < deadline) {
        rd_kafka_message_t *rkm = lt_consumer_poll(c, 100);

        if (!rkm)
            continue;
        if (!got++)
            first = lt_clock_mono_ms();
        rd_kafka_message_destroy(rkm);
    }
    printf("consumed=%d ms=%lld\n", got, got ? lt_clock_mono_ms() - first : 0LL);
    lt_consumer_destroy(c);
    return got == n ? 0 : 1;
}

/* Sends message i of "resend" with a counter of its own; 0 if queued. */
static int send_one(lt_producer_t *p, const char *topic, int i, lt_acks_t **acks)
{
    char errstr[512], val[32];

    lt_acks_release(*acks);
    if (!(*acks = lt_acks_new()))
        return -1;
    snprintf(val, sizeof(val), "resend-%d", i);
    if (lt_producer_send(p, topic, NULL, 0, val, strlen(val), *acks, errstr, sizeof(errstr)) !=
        LT_OK) {
        printf("send %d: %s\n", i, errstr);
        return -1;
    }
    return 0;
}

/* What a service does with its delivery reports: a message reported failed
 * is sent again, until every one is delivered (up to 20 rounds). Each of
 * `rounds` sends 50 messages without waiting: 25, then "fault R" on stdout
 * and a line read from stdin (the test injects its fault meanwhile), then
 * 25 more, and waits for the round's reports. */
static int resend(const lt_config_t *cfg, const char *topic, int rounds)
{
    char errstr[512], line[16];
    int n = rounds > 0 ? rounds * 50 : 0;
    lt_acks_t **acks = calloc((size_t)(n > 0 ? n : 1), sizeof(*acks));
    lt_producer_t *p = lt_producer_new(cfg, "KAFKA_", errstr, sizeof(errstr));
    int unverified = 0, failed = 0, resent = 0, left = n, round, i;

    if (!p || !acks) {
        printf("producer: %s\n", p ? "out of memory" : errstr);
        lt_producer_destroy(p, 0);
        free(acks);
        return 1;
    }
    for (i = 0; i < n; i++) {
        if (send_one(p, topic, i, &acks[i]) != 0)
            goto done;
        lt_producer_poll(p, 0);
        if (i % 50 == 24) {
            printf("fault %d\n", i / 50);
            fflush(stdout);
            if (!fgets(line, sizeof(line), stdin))
                goto done;
        }
        if (i % 50 == 49)
            for (int j = i - 49; j <= i; j++)
                lt_producer_wait(p, acks[j], 30000);
    }
    for (round = 0; round < 20 && left > 0; round++) {
        left = 0;
        for (i = 0; i < n; i++) {
            lt_producer_wait(p, acks[i], 30000);
            if (lt_acks_pending(acks[i]) || !lt_acks_failed(acks[i]))
                continue;
            if (lt_acks_first_err(acks[i]) == LT_KAFKA_ERR_UNVERIFIED)
                unverified++;
            else
                failed++;
            if (round == 0 && unverified + failed == 1)
                printf("first failure: %s\n", lt_kafka_err2str(lt_acks_first_err(acks[i])));
            resent++, left++;
            if (send_one(p, topic, i, &acks[i]) != 0)
                goto done;
        }
    }
    for (i = 0, left = 0; i < n; i++)
        left += lt_producer_wait(p, acks[i], 30000) != LT_OK;
done:
    printf("sent=%d unverified=%d failed=%d resent=%d undelivered=%d\n", n, unverified, failed,
           resent, left);
    lt_producer_destroy(p, 1000);
    for (i = 0; i < n; i++)
        lt_acks_release(acks[i]);
    free(acks);
    return left == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    lt_config_t *cfg = lt_config_new(LT_SVC_CTL);
    char errstr[512] = "";
    int rc = 2, count = 0;
    lt_err_t err;

    lt_log_init("kafka-io", LT_LOG_INFO);
    if (!cfg || lt_config_load(cfg, NULL, errstr, sizeof(errstr)) != LT_OK) {
        printf("config: %s\n", errstr);
        goto done;
    }
    if (lt_log_level_parse(lt_config_str(cfg, "LOG_LEVEL")) >= 0)
        lt_log_init("kafka-io",
                    (lt_log_level_t)lt_log_level_parse(lt_config_str(cfg, "LOG_LEVEL")));
    if (argc == 5 && (!strcmp(argv[1], "produce") || !strcmp(argv[1], "produce-ref"))) {
        rc = produce(cfg, argv[2], atoi(argv[3]), argv[4], !strcmp(argv[1], "produce-ref"));
    } else if (argc == 5 && !strcmp(argv[1], "consume")) {
        rc = consume(cfg, argv[2], argv[3], atoi(argv[4]));
    } else if (argc == 4 && !strcmp(argv[1], "create")) {
        err = lt_kafka_create_topic(cfg, argv[2], atoi(argv[3]), NULL, errstr, sizeof(errstr));
        printf("rc=%s err=%s\n", lt_err_name(err), err ? errstr : "");
        rc = err != LT_OK;
    } else if (argc == 4 && !strcmp(argv[1], "late")) {
        rc = late_reports(cfg, argv[2], atoi(argv[3]));
    } else if (argc == 5 && !strcmp(argv[1], "refill")) {
        rc = refill(cfg, argv[2], atoi(argv[3]), atoi(argv[4]));
    } else if (argc == 4 && !strcmp(argv[1], "resend")) {
        rc = resend(cfg, argv[2], atoi(argv[3]));
    } else if (argc == 3 && !strcmp(argv[1], "tunedconf")) {
        rc = tuned_conf(cfg, argv[2]);
    } else if (argc == 3 && !strcmp(argv[1], "readall")) {
        err = lt_kafka_read_all(cfg, argv[2], print_msg, &count, 20000, errstr, sizeof(errstr));
        printf("read=%d rc=%s err=%s\n", count, lt_err_name(err), err ? errstr : "");
        rc = err != LT_OK;
    } else {
        fprintf(stderr, "usage: see the comment at the top of test_kafka_io.c\n");
    }
done:
    fflush(stdout);
    lt_config_destroy(cfg);
    return rc;
}
