/* lt_job: job messages on the job topics. */
#include "lt_job.h"

#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "lt_date.h"
#include "lt_integration.h"
#include "lt_json.h"

#define LT_JOB_MAX_JSON 4096

static const char *const range_types[] = {"dateCreated", "dateUpdated", "chargeback", NULL};
static const char *const reasons[] = {"backfill", "live", "lookback", "resync", NULL};

static int one_of(const char *s, const char *const *set)
{
    for (int i = 0; set[i]; i++)
        if (!strcmp(s, set[i]))
            return 1;
    return 0;
}

static int copy_field(const cJSON *root, const char *key, char *dst, size_t len)
{
    const char *v = lt_json_str(root, key);
    if (!v || strlen(v) >= len)
        return -1;
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

lt_err_t lt_job_decode(const void *json, size_t len, lt_job_t *out, char *errstr, size_t errlen)
{
    cJSON *root = NULL;
    const char *stream;
    long long pf = 0, pt = 0;
    lt_err_t err = LT_ERR_PERMANENT;
    lt_datetime_t dt;
    int s;

    memset(out, 0, sizeof(*out));
    if (!(root = lt_json_parse(json, len, LT_JOB_MAX_JSON, errstr, errlen)))
        goto end;
    if (copy_field(root, "job_id", out->job_id, sizeof(out->job_id)) ||
        copy_field(root, "integration_id", out->integration_id, sizeof(out->integration_id)) ||
        copy_field(root, "date_range_type", out->date_range_type, sizeof(out->date_range_type)) ||
        copy_field(root, "day", out->day, sizeof(out->day)) ||
        copy_field(root, "reason", out->reason, sizeof(out->reason))) {
        snprintf(errstr, errlen, "job: missing or oversized field");
        goto end;
    }
    if (!out->job_id[0] || !lt_integration_id_valid(out->integration_id)) {
        snprintf(errstr, errlen, "job: empty job_id or invalid integration_id");
        goto end;
    }
    copy_field(root, "run_id", out->run_id, sizeof(out->run_id));
    stream = lt_json_str(root, "stream");
    if (!stream || (s = lt_stream_parse(stream, strlen(stream))) < 0) {
        snprintf(errstr, errlen, "job: unknown stream");
        goto end;
    }
    out->stream = (lt_stream_t)s;
    if (!one_of(out->date_range_type, range_types) || !one_of(out->reason, reasons)) {
        snprintf(errstr, errlen, "job: unknown date_range_type or reason");
        goto end;
    }
    if (lt_date_parse_day(out->day, strlen(out->day), &dt) != 0) {
        snprintf(errstr, errlen, "job: day must be YYYY-MM-DD");
        goto end;
    }
    if ((lt_json_int(root, "page_from", &pf) == 0) != (lt_json_int(root, "page_to", &pt) == 0) ||
        pf < 0 || pt < pf || pt > 1000000 || (pf == 0 && pt != 0)) {
        snprintf(errstr, errlen, "job: invalid page range");
        goto end;
    }
    out->page_from = (int)pf;
    out->page_to = (int)pt;
    err = LT_OK;
end:
    cJSON_Delete(root);
    return err;
}

char *lt_job_encode(const lt_job_t *job)
{
    cJSON *root = cJSON_CreateObject();
    char *out;
    if (!root)
        return NULL;
    cJSON_AddStringToObject(root, "job_id", job->job_id);
    cJSON_AddStringToObject(root, "integration_id", job->integration_id);
    cJSON_AddStringToObject(root, "stream", lt_stream_name(job->stream));
    cJSON_AddStringToObject(root, "date_range_type", job->date_range_type);
    cJSON_AddStringToObject(root, "day", job->day);
    cJSON_AddNumberToObject(root, "page_from", job->page_from);
    cJSON_AddNumberToObject(root, "page_to", job->page_to);
    cJSON_AddStringToObject(root, "reason", job->reason);
    cJSON_AddStringToObject(root, "run_id", job->run_id);
    out = lt_json_print(root);
    cJSON_Delete(root);
    return out;
}

static size_t bounded(int n, size_t buflen)
{
    if (n < 0)
        return 0;
    return (size_t)n < buflen ? (size_t)n : buflen - 1;
}

size_t lt_job_kafka_key(const lt_job_t *job, char *buf, size_t buflen)
{
    return bounded(snprintf(buf, buflen, "%s/%s/%s", job->integration_id,
                            lt_stream_name(job->stream), job->day),
                   buflen);
}

size_t lt_job_key(const lt_job_t *job, char *buf, size_t buflen)
{
    if (job->page_from)
        return bounded(snprintf(buf, buflen, "%s/%s/%s/%d-%d", lt_stream_name(job->stream),
                                job->date_range_type, job->day, job->page_from, job->page_to),
                       buflen);
    return bounded(snprintf(buf, buflen, "%s/%s/%s", lt_stream_name(job->stream),
                            job->date_range_type, job->day),
                   buflen);
}
