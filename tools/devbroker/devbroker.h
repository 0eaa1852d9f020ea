/* devbroker: the embedded Kafka (librdkafka mock cluster) for dev and tests.
 * main.c owns the mock cluster and the process life cycle; watch.c watches
 * every partition's low watermark, because the mock silently drops the oldest
 * records of a partition past ~5 MiB and ltvsync must never lose data
 * unnoticed; control.c serves the fault-injection HTTP port and fault.c turns
 * one request into one rd_kafka_mock_*() call. */
#ifndef DEVBROKER_H
#define DEVBROKER_H

#include <stddef.h>
#include <time.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

/* librdkafka 2.0.2's mock thread serves its op queue before it drains its
 * wake-up pipe, so an op posted in between (the second of two back-to-back
 * rd_kafka_mock_*() calls, posted as soon as the first is answered) loses
 * its wake-up and waits for the thread's poll timeout: up to 1 s (creating
 * the seven topics hit it in 6 of 10 starts; README). A short pause after
 * each such call lets the thread drain the pipe first. */
static inline void db_mock_pause(void)
{
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

typedef struct db_watch_s db_watch_t;

/* A watcher connected to the cluster at `bootstrap`; status_file may be NULL.
 * NULL with errstr on failure. */
db_watch_t *db_watch_new(const char *bootstrap, const char *status_file, char *errstr,
                         size_t errlen);
/* One pass over every partition of every topic: logs each newly evicted
 * partition once (ERROR) and rewrites the status file. */
void db_watch_check(db_watch_t *w);
/* Number of partitions seen evicted so far. */
size_t db_watch_evictions(const db_watch_t *w);
void db_watch_destroy(db_watch_t *w); /* accepts NULL */
/* The watcher's client of the cluster, owned by w; thread-safe to use for
 * metadata requests from any thread until db_watch_destroy. */
rd_kafka_t *db_watch_client(const db_watch_t *w);

/* What a fault acts on. Broker ids are 1..brokers (the mock's numbering).
 * client is a plain client of the cluster, used to check topics. */
typedef struct {
    rd_kafka_mock_cluster_t *mc;
    rd_kafka_t *client;
    int brokers;
} db_fault_target_t;

/* Applies the fault described by body (len bytes of JSON; need not be
 * NUL-terminated; the caller caps len). Returns the HTTP status: 200, 400
 * (bad request: errstr says why), 503 (the cluster could not be asked, e.g.
 * metadata timed out). errstr never echoes unprintable or long input. Logs
 * one line per applied or rejected fault. Thread-safe: librdkafka 2.0.2's
 * mock setters post an op to the mock cluster's thread and wait for its
 * reply, or take the cluster's mutex. */
int db_fault_apply(const db_fault_target_t *t, const char *body, size_t len, char *errstr,
                   size_t errlen);

typedef struct db_control_s db_control_t;

/* Serves POST /fault on 127.0.0.1, any free port, on one libmicrohttpd
 * thread (so faults apply one at a time, in arrival order). *t is copied;
 * t->mc and t->client must outlive the server. The port accepts connections
 * when this returns. NULL with errstr on failure. */
db_control_t *db_control_start(const db_fault_target_t *t, char *errstr, size_t errlen);
int db_control_port(const db_control_t *c);
/* Stops serving and waits for a request in hand; accepts NULL. */
void db_control_stop(db_control_t *c);

/* Writes data to path atomically (path.tmp, fsync, rename). 0 or -1. */
int db_write_atomic(const char *path, const char *data, size_t len);

#endif
