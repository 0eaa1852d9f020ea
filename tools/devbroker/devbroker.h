/* devbroker: the embedded Kafka (librdkafka mock cluster) for dev and tests.
 * main.c owns the mock cluster and the process life cycle; watch.c watches
 * every partition's low watermark, because the mock silently drops the oldest
 * records of a partition past ~5 MiB and ltvsync must never lose data
 * unnoticed. */
#ifndef DEVBROKER_H
#define DEVBROKER_H

#include <stddef.h>

typedef struct db_watch_s db_watch_t;

/* A watcher connected to the cluster at `bootstrap`; status_file may be NULL.
 * NULL with errstr on failure. */
db_watch_t *db_watch_new(const char *bootstrap, const char *status_file,
                         char *errstr, size_t errlen);
/* One pass over every partition of every topic: logs each newly evicted
 * partition once (ERROR) and rewrites the status file. */
void db_watch_check(db_watch_t *w);
/* Number of partitions seen evicted so far. */
size_t db_watch_evictions(const db_watch_t *w);
void db_watch_destroy(db_watch_t *w); /* accepts NULL */

/* Writes data to path atomically (path.tmp, fsync, rename). 0 or -1. */
int db_write_atomic(const char *path, const char *data, size_t len);

#endif
