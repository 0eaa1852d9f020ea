/* devbroker watcher: low watermarks of every partition, the status file. */
#include "devbroker.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "lt_kafka.h"
#include "lt_log.h"

#define DB_QUERY_TIMEOUT_MS 2000

typedef struct {
    char *topic;
    int32_t partition;
    int64_t low;
} db_eviction_t;

struct db_watch_s {
    rd_kafka_t *rk; /* a plain client of the mock's brokers */
    char *bootstrap;
    char *status_file;
    db_eviction_t *ev;
    size_t nev, capev;
};

db_watch_t *db_watch_new(const char *bootstrap, const char *status_file, char *errstr,
                         size_t errlen)
{
    db_watch_t *w = calloc(1, sizeof(*w));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    if (!w)
        goto fail;
    lt_kafka_conf_set_logging(conf);
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, errlen) ||
        rd_kafka_conf_set(conf, "client.id", "devbroker-watch", errstr, errlen))
        goto fail;
    w->bootstrap = strdup(bootstrap);
    w->status_file = status_file ? strdup(status_file) : NULL;
    if (!w->bootstrap || (status_file && !w->status_file))
        goto fail;
    if (!(w->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errlen)))
        goto fail;
    conf = NULL; /* now owned by rk */
    lt_kafka_route_logs(w->rk);
    return w;
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    db_watch_destroy(w);
    return NULL;
}

void db_watch_destroy(db_watch_t *w)
{
    size_t i;

    if (!w)
        return;
    if (w->rk)
        rd_kafka_destroy(w->rk);
    for (i = 0; i < w->nev; i++)
        free(w->ev[i].topic);
    free(w->ev);
    free(w->bootstrap);
    free(w->status_file);
    free(w);
}

rd_kafka_t *db_watch_client(const db_watch_t *w)
{
    return w->rk;
}

size_t db_watch_evictions(const db_watch_t *w)
{
    return w->nev;
}

static int known(const db_watch_t *w, const char *topic, int32_t partition)
{
    size_t i;

    for (i = 0; i < w->nev; i++)
        if (w->ev[i].partition == partition && !strcmp(w->ev[i].topic, topic))
            return 1;
    return 0;
}

/* Records (once) and logs an evicted partition. */
static void note(db_watch_t *w, const char *topic, int32_t partition, int64_t low)
{
    db_eviction_t *nev;

    if (known(w, topic, partition))
        return;
    lt_error("evicted records: topic %s partition %d low watermark %lld", topic, (int)partition,
             (long long)low);
    if (w->nev == w->capev) {
        size_t cap = w->capev ? w->capev * 2 : 8;
        if (!(nev = realloc(w->ev, cap * sizeof(*nev))))
            return;
        w->ev = nev;
        w->capev = cap;
    }
    w->ev[w->nev] = (db_eviction_t){strdup(topic), partition, low};
    if (w->ev[w->nev].topic)
        w->nev++;
}

static void check_topic(db_watch_t *w, const rd_kafka_metadata_topic_t *t)
{
    int64_t lo, hi;
    int i;

    if (t->err)
        return;
    for (i = 0; i < t->partition_cnt; i++) {
        if (rd_kafka_query_watermark_offsets(w->rk, t->topic, t->partitions[i].id, &lo, &hi,
                                             DB_QUERY_TIMEOUT_MS))
            continue; /* a transient failure: the next pass retries */
        if (lo > 0)
            note(w, t->topic, t->partitions[i].id, lo);
    }
}

static void write_status(const db_watch_t *w)
{
    cJSON *root = cJSON_CreateObject(), *arr, *e;
    char *txt = NULL;
    size_t i;

    if (!root)
        return;
    cJSON_AddStringToObject(root, "bootstrap", w->bootstrap);
    cJSON_AddBoolToObject(root, "evicted", w->nev > 0);
    arr = cJSON_AddArrayToObject(root, "evictions");
    for (i = 0; arr && i < w->nev; i++) {
        if (!(e = cJSON_CreateObject()))
            break;
        cJSON_AddStringToObject(e, "topic", w->ev[i].topic);
        cJSON_AddNumberToObject(e, "partition", w->ev[i].partition);
        cJSON_AddNumberToObject(e, "low_watermark", (double)w->ev[i].low);
        cJSON_AddItemToArray(arr, e);
    }
    if ((txt = cJSON_PrintUnformatted(root)) &&
        db_write_atomic(w->status_file, txt, strlen(txt)) < 0)
        lt_warn("cannot write status file %s", w->status_file);
    free(txt);
    cJSON_Delete(root);
}

void db_watch_check(db_watch_t *w)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err;
    int i;

    rd_kafka_poll(w->rk, 0); /* serve log lines */
    if ((err = rd_kafka_metadata(w->rk, 1, NULL, &md, DB_QUERY_TIMEOUT_MS))) {
        lt_warn("watermark check: metadata: %s", rd_kafka_err2str(err));
        return;
    }
    for (i = 0; i < md->topic_cnt; i++)
        check_topic(w, &md->topics[i]);
    rd_kafka_metadata_destroy(md);
    if (w->status_file)
        write_status(w);
}

int db_write_atomic(const char *path, const char *data, size_t len)
{
    char tmp[4096];
    int fd, rc = -1;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp))
        return -1;
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
        return -1;
    if (write(fd, data, len) == (ssize_t)len && fsync(fd) == 0)
        rc = 0;
    if (close(fd) != 0)
        rc = -1;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -1;
    if (rc != 0)
        unlink(tmp);
    return rc;
}
