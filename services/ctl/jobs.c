/* ltvctl sync (resync a range) and topics create. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "ctl.h"
#include "lt_date.h"
#include "lt_job.h"
#include "lt_kafka.h"
#include "lt_uuid.h"

int ctl_parse_streams(const ctl_t *ctl, const char *v, unsigned *mask)
{
    *mask = 0;
    for (const char *p = v; *p;) {
        size_t n = strcspn(p, ",");
        int s = lt_stream_parse(p, n);
        if (s < 0) {
            fprintf(ctl->err, "ltvctl: --streams: unknown stream \"%.*s\"\n", (int)n, p);
            ctl_fail(ctl, CTL_P_INVALID, "streams");
            return -1;
        }
        *mask |= 1u << s;
        p += n + (p[n] == ',');
    }
    return 0;
}

/* CTL_OK when every option is --from, --to or --streams with a value. */
static int check_sync_opts(const ctl_t *ctl)
{
    for (int i = 0; i < ctl->argc; i++) {
        const char *a = ctl->argv[i];
        if (strncmp(a, "--", 2))
            continue;
        if (strcmp(a, "--from") && strcmp(a, "--to") && strcmp(a, "--streams")) {
            fprintf(ctl->err, "ltvctl: sync: unknown option %s\n", a);
            return CTL_USAGE;
        }
        if (++i >= ctl->argc) {
            fprintf(ctl->err, "ltvctl: sync: %s needs a value\n", a);
            return CTL_USAGE;
        }
    }
    return CTL_OK;
}

static int valid_day(const char *s)
{
    lt_datetime_t dt;
    return s && lt_date_parse_day(s, strlen(s), &dt) == 0;
}

static void print_sync_json(const ctl_t *ctl, const char *id, const char *from, const char *to,
                            unsigned streams, int jobs, const char *run_id)
{
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "streams");
    char *text;
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "from", from);
    cJSON_AddStringToObject(o, "to", to);
    for (int s = 0; s < LT_STREAM_COUNT; s++)
        if (streams & (1u << s))
            cJSON_AddItemToArray(arr, cJSON_CreateString(lt_stream_name((lt_stream_t)s)));
    cJSON_AddNumberToObject(o, "jobs", jobs);
    cJSON_AddStringToObject(o, "run", run_id);
    if ((text = cJSON_PrintUnformatted(o)))
        fprintf(ctl->out, "%s\n", text);
    free(text);
    cJSON_Delete(o);
}

/* Resync jobs go to the backfill topic with reason "resync": they never
 * touch the live cursor or the backfill progress. */
int ctl_sync(ctl_t *ctl)
{
    lt_integration_t in;
    lt_producer_t *p = NULL;
    lt_acks_t *acks = NULL;
    const char *id = ctl_arg(ctl, 0), *from = ctl_opt(ctl, "--from"), *to = ctl_opt(ctl, "--to");
    char day[11], run_id[37], errstr[512], yesterday[11];
    unsigned streams;
    int rc, n = 0;

    if (!id || check_sync_opts(ctl) != CTL_OK) {
        ctl_fail(ctl, CTL_P_INVALID, NULL);
        return CTL_USAGE;
    }
    if ((rc = ctl_find_integration(ctl, id, &in)) != CTL_OK)
        return rc;
    streams = in.streams;
    if (ctl_opt(ctl, "--streams") &&
        ctl_parse_streams(ctl, ctl_opt(ctl, "--streams"), &streams) < 0)
        return CTL_USAGE;
    if (lt_integration_local_day(&in, (long long)time(NULL), -1, yesterday) < 0) {
        fprintf(ctl->err, "ltvctl: cannot load timezone %s\n", in.timezone);
        return CTL_FAIL;
    }
    if (!from)
        from = lt_integration_first_day(&in, lt_config_str(ctl->cfg, "IMPORT_ALL_FROM"));
    if (!to)
        to = yesterday;
    if (!valid_day(from) || !valid_day(to) || strcmp(from, to) > 0) {
        fprintf(ctl->err, "ltvctl: --from and --to must be days YYYY-MM-DD with from <= to\n");
        ctl_fail(ctl, CTL_P_INVALID, !valid_day(from) ? "from" : "to");
        return CTL_USAGE;
    }
    /* A finished resync marks its day done: today is still changing. */
    if (strcmp(to, yesterday) > 0) {
        fprintf(ctl->err,
                "ltvctl: --to %s is after yesterday (%s in %s): a day can be resynced "
                "once it is over; the live sync covers today\n",
                to, yesterday, in.timezone);
        ctl_fail(ctl, CTL_P_INVALID, "to");
        return CTL_USAGE;
    }
    if (!(acks = lt_acks_new()) ||
        !(p = lt_producer_new(ctl->cfg, "KAFKA_", errstr, sizeof(errstr)))) {
        lt_acks_release(acks);
        fprintf(ctl->err, "ltvctl: kafka: %s\n", errstr);
        return CTL_FAIL;
    }
    const char *job_topics[] = {lt_config_str(ctl->cfg, "TOPIC_JOBS_LIVE"),
                                lt_config_str(ctl->cfg, "TOPIC_JOBS_BACKFILL")};
    lt_producer_warm(p, job_topics, 2, 5000);
    lt_uuid_v4(run_id);
    rc = CTL_OK;
    for (memcpy(day, from, 11); strcmp(day, to) <= 0 && rc == CTL_OK;
         lt_date_add_days(day, 10, 1, day)) {
        for (int s = 0; s < LT_STREAM_COUNT && rc == CTL_OK; s++) {
            lt_job_t job = {
                .stream = (lt_stream_t)s, .date_range_type = "dateCreated", .reason = "resync"};
            char key[160], *json;
            if (!(streams & (1u << s)))
                continue;
            lt_uuid_v4(job.job_id);
            snprintf(job.integration_id, sizeof(job.integration_id), "%s", in.id);
            memcpy(job.day, day, 11);
            memcpy(job.run_id, run_id, sizeof(run_id));
            if (!(json = lt_job_encode(&job))) {
                rc = CTL_FAIL;
                break;
            }
            if (lt_producer_send(p, lt_config_str(ctl->cfg, "TOPIC_JOBS_BACKFILL"), key,
                                 lt_job_kafka_key(&job, key, sizeof(key)), json, strlen(json), acks,
                                 errstr, sizeof(errstr)) != LT_OK) {
                fprintf(ctl->err, "ltvctl: kafka: %s\n", errstr);
                rc = CTL_FAIL;
            }
            free(json);
            n++;
        }
    }
    if (rc == CTL_OK && lt_producer_wait(p, acks, 60000) != LT_OK) {
        fprintf(ctl->err, "ltvctl: kafka did not acknowledge every job\n");
        rc = CTL_FAIL;
    }
    lt_producer_destroy(p, 5000);
    lt_acks_release(acks);
    if (rc == CTL_OK && ctl->json)
        print_sync_json(ctl, id, from, to, streams, n, run_id);
    else if (rc == CTL_OK)
        fprintf(ctl->out, "resync of %s from %s to %s: %d jobs queued (run %s)\n", id, from, to, n,
                run_id);
    return rc;
}

int ctl_topics(ctl_t *ctl, const char *verb)
{
    static const char *const names[] = {
        "TOPIC_INTEGRATIONS", "TOPIC_JOBS_LIVE", "TOPIC_JOBS_BACKFILL", "TOPIC_RAW", "TOPIC_EVENTS",
        "TOPIC_DOWNSTREAM",   "TOPIC_DLQ"};
    static const char *const compacted[] = {"cleanup.policy", "compact", NULL};
    char errstr[512];
    int partitions = (int)lt_config_int(ctl->cfg, "TOPIC_PARTITIONS");
    if (strcmp(verb, "create")) {
        fprintf(ctl->err, "ltvctl: unknown topics command \"%s\"\n", verb);
        return CTL_USAGE;
    }
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *topic = lt_config_str(ctl->cfg, names[i]);
        if (lt_kafka_create_topic(ctl->cfg, topic, i == 0 ? 1 : partitions,
                                  i == 0 ? compacted : NULL, errstr, sizeof(errstr)) != LT_OK) {
            fprintf(ctl->err, "ltvctl: creating %s: %s\n", topic, errstr);
            return CTL_FAIL;
        }
        fprintf(ctl->out, "topic %s ready\n", topic);
    }
    return CTL_OK;
}
