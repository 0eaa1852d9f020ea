/* lt_job: sync-window jobs on ltvsync.jobs.live / ltvsync.jobs.backfill,
 * and the jobkey by which the scheduler, fetchers and ltvctl name a job in
 * Redis.
 *
 * Job JSON: {"job_id","integration_id","stream","date_range_type","day",
 *   "page_from","page_to" (0,0 = the whole day),"reason","run_id"}
 * Kafka key: "integration/stream/day".
 *
 * The Redis keys, their names on one Redis and in a cluster (built only by
 * lt_rkeys.h), types, writers, readers and what losing one does:
 * docs/ARCHITECTURE.md "Redis keys". A jobkey names a job in those keys
 * (a field of P i:ID:outstanding, whose value the scheduler writes as
 * "<job_id> <ms>[ pending <token>]" and a fetcher as "<job_id>" for the page-range
 * sub-jobs it adds; part of the ckpt key):
 * jobkey = "STREAM/DATE_RANGE_TYPE/DAY[/PAGE_FROM-PAGE_TO]" */
#ifndef LT_JOB_H
#define LT_JOB_H

#include <stddef.h>
#include "lt_err.h"
#include "lt_integration.h"

typedef struct {
    char job_id[37];
    char integration_id[65];
    lt_stream_t stream;
    char date_range_type
        [16];     /* dateCreated | dateUpdated | chargeback (isChargedback=1 by dateUpdated) */
    char day[11]; /* account-local YYYY-MM-DD */
    int page_from, page_to; /* 1-based inclusive page range; 0,0 = whole day */
    char reason[16];        /* backfill | live | lookback | resync */
    char run_id[37];
} lt_job_t;

lt_err_t lt_job_decode(const void *json, size_t len, lt_job_t *out, char *errstr, size_t errlen);
char *lt_job_encode(const lt_job_t *job); /* caller frees */
/* Kafka key "integration/stream/day" into buf; returns its length. */
size_t lt_job_kafka_key(const lt_job_t *job, char *buf, size_t buflen);
/* jobkey as documented above into buf; returns its length. */
size_t lt_job_key(const lt_job_t *job, char *buf, size_t buflen);

#endif
