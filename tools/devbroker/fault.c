/* devbroker faults: one JSON request -> one rd_kafka_mock_*() call.
 *
 * Request: {"op":"<name>", ...fields}. Every field is checked (type, range,
 * known name) before the cluster is touched, and a field the op does not take
 * is an error, so a typo never turns into a silent no-op. */
#include "devbroker.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "lt_log.h"

#define DB_MAX_ERRORS    256 /* errors pushed by one request */
#define DB_MAX_RTT_MS    60000
#define DB_MAX_PARTITION 100000
#define DB_NAME_MAX      249 /* Kafka's topic name limit; also group keys */
#define DB_SHOWN_MAX     64  /* longest input echoed in a reason */
#define DB_METADATA_MS   2000

typedef struct {
    const db_fault_target_t *t;
    const cJSON *req;
    const char *op;
    char *errstr;
    size_t errlen;
} db_req_t;

typedef struct {
    const char *name;
    int (*apply)(db_req_t *r);
    const char *fields[5]; /* besides "op"; NULL-terminated */
} db_op_t;

/* Kafka protocol ApiKeys (librdkafka's rdkafka_protocol.h is not installed). */
static const struct {
    const char *name;
    int16_t key;
} apis[] = {
    {"Produce", 0},      {"Fetch", 1},       {"ListOffsets", 2},      {"Metadata", 3},
    {"OffsetCommit", 8}, {"OffsetFetch", 9}, {"FindCoordinator", 10}, {"JoinGroup", 11},
    {"Heartbeat", 12},   {"LeaveGroup", 13}, {"SyncGroup", 14},       {"InitProducerId", 22},
};

static int fail(db_req_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes the reason for a 400 into r->errstr; returns 400. */
static int fail(db_req_t *r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(r->errstr, r->errlen, fmt, ap);
    va_end(ap);
    return 400;
}

/* s itself when short and plain printable ASCII, else a placeholder: input
 * echoed in replies and log lines can neither forge lines nor flood them. */
static const char *shown(const char *s)
{
    size_t i;

    for (i = 0; s[i]; i++)
        if (i >= DB_SHOWN_MAX || s[i] < 0x20 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\')
            return "(not shown)";
    return s;
}

static const cJSON *field(const db_req_t *r, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(r->req, name);
}

/* An integer field in [min, max]; 0 or 400. */
static int get_int(db_req_t *r, const char *name, int min, int max, int *out)
{
    const cJSON *v = field(r, name);

    if (!v)
        return fail(r, "%s: missing \"%s\"", r->op, name);
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < min ||
        v->valuedouble > max)
        return fail(r, "%s: \"%s\" must be an integer in %d..%d", r->op, name, min, max);
    *out = (int)v->valuedouble;
    return 0;
}

/* A string field of 1..maxlen printable ASCII bytes; NULL after fail(). */
static const char *get_str(db_req_t *r, const char *name, size_t maxlen)
{
    const cJSON *v = field(r, name);
    size_t i;

    if (!v || !cJSON_IsString(v)) {
        fail(r, "%s: \"%s\" must be a string", r->op, name);
        return NULL;
    }
    for (i = 0; v->valuestring[i]; i++)
        if (i >= maxlen || v->valuestring[i] < 0x21 || v->valuestring[i] > 0x7e)
            break;
    if (i == 0 || v->valuestring[i]) {
        fail(r, "%s: \"%s\" must be 1..%zu printable characters", r->op, name, maxlen);
        return NULL;
    }
    return v->valuestring;
}

/* A broker id of the cluster, or -1 (all / none) when allow_minus1. */
static int get_broker(db_req_t *r, int allow_minus1, int *out)
{
    const char *alt = allow_minus1 ? ", or -1" : "";
    int rc = get_int(r, "broker", -(1 << 20), 1 << 20, out);

    if (rc == 400 && field(r, "broker"))
        return fail(r, "%s: \"broker\" must be a broker id (1..%d%s)", r->op, r->t->brokers, alt);
    if (rc == 0 &&
        (*out < -1 || *out == 0 || (*out == -1 && !allow_minus1) || *out > r->t->brokers))
        return fail(r, "%s: unknown broker %d (brokers are 1..%d%s)", r->op, *out, r->t->brokers,
                    alt);
    return rc;
}

/* 400 naming the librdkafka error of a mock call that refused the fault. */
static int mock_err(db_req_t *r, rd_kafka_resp_err_t err)
{
    return fail(r, "%s: mock cluster: %s", r->op, rd_kafka_err2str(err));
}

static int op_updown(db_req_t *r)
{
    int up = !strcmp(r->op, "broker_up"), broker, rc;
    rd_kafka_resp_err_t err;

    if ((rc = get_broker(r, 1, &broker)))
        return rc;
    err = up ? rd_kafka_mock_broker_set_up(r->t->mc, broker)
             : rd_kafka_mock_broker_set_down(r->t->mc, broker);
    if (err)
        return mock_err(r, err);
    lt_info("fault: broker %d %s", broker, up ? "up" : "down");
    return 200;
}

static int op_rtt(db_req_t *r)
{
    int broker = 0, ms = 0, rc;
    rd_kafka_resp_err_t err;

    if ((rc = get_broker(r, 1, &broker)) || (rc = get_int(r, "ms", 0, DB_MAX_RTT_MS, &ms)))
        return rc;
    if ((err = rd_kafka_mock_broker_set_rtt(r->t->mc, broker, ms)))
        return mock_err(r, err);
    lt_info("fault: broker %d rtt %d ms", broker, ms);
    return 200;
}

/* Error name as rd_kafka_err2name() spells it (no RD_KAFKA_RESP_ERR_ prefix):
 * a broker error (code > 0), or _TRANSPORT (the mock drops the connection). */
static int err_code(db_req_t *r, const cJSON *v, rd_kafka_resp_err_t *out)
{
    const struct rd_kafka_err_desc *descs;
    size_t i, n;

    if (!cJSON_IsString(v))
        return fail(r, "%s: error names must be strings", r->op);
    rd_kafka_get_err_descs(&descs, &n);
    for (i = 0; i < n; i++)
        if (descs[i].name && !strcmp(descs[i].name, v->valuestring) &&
            (descs[i].code > 0 || descs[i].code == RD_KAFKA_RESP_ERR__TRANSPORT)) {
            *out = descs[i].code;
            return 0;
        }
    return fail(r, "%s: unknown error \"%s\"", r->op, shown(v->valuestring));
}

/* Fills errs from "errors":[...] or from "count" and "error"; 0 or 400. */
static int get_errors(db_req_t *r, rd_kafka_resp_err_t *errs, int *n)
{
    const cJSON *arr = field(r, "errors"), *one = field(r, "error"), *v;
    int rc, i;

    if (arr && !one && !field(r, "count")) {
        *n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : 0;
        if (*n < 1 || *n > DB_MAX_ERRORS)
            return fail(r, "%s: \"errors\" must be an array of 1..%d names", r->op, DB_MAX_ERRORS);
        i = 0;
        cJSON_ArrayForEach(v, arr) if ((rc = err_code(r, v, &errs[i++]))) return rc;
        return 0;
    }
    if (arr || !one)
        return fail(r, "%s: give \"errors\":[...] or \"count\" and \"error\"", r->op);
    if ((rc = get_int(r, "count", 1, DB_MAX_ERRORS, n)) || (rc = err_code(r, one, &errs[0])))
        return rc;
    for (i = 1; i < *n; i++)
        errs[i] = errs[0];
    return 0;
}

static int op_push(db_req_t *r)
{
    rd_kafka_resp_err_t errs[DB_MAX_ERRORS];
    const char *api;
    size_t i;
    int n = 0, rc;

    if (!(api = get_str(r, "api", DB_NAME_MAX)))
        return 400;
    for (i = 0; i < sizeof(apis) / sizeof(apis[0]); i++)
        if (!strcmp(apis[i].name, api))
            break;
    if (i == sizeof(apis) / sizeof(apis[0]))
        return fail(r, "%s: unknown api \"%s\"", r->op, shown(api));
    if ((rc = get_errors(r, errs, &n)))
        return rc;
    rd_kafka_mock_push_request_errors_array(r->t->mc, apis[i].key, (size_t)n, errs);
    lt_info("fault: %d %s errors pushed, first %s", n, api, rd_kafka_err2name(errs[0]));
    /* The mock checks sequence numbers only for transactional producers: an
     * idempotent one with a later request of the partition in flight takes
     * its success as an ack of the failed one (rd_kafka_dr_implicit_ack),
     * for records never written. README: "What ... does not". */
    if (apis[i].key == 0) /* Produce */
        lt_warn("fault: Produce errors and idempotent producers: with more "
                "than one request in flight per connection, a failed request's "
                "records can be acknowledged without being written; give the "
                "clients under test max.in.flight=1");
    return 200;
}

/* Kafka's legal topic characters. */
static int topic_name_ok(const char *s)
{
    for (; *s; s++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                    "0123456789._-",
                    *s))
            return 0;
    return 1;
}

/* The partition count of an existing topic: 200, 400 (no such topic) or 503.
 * Asked first because the mock would create a missing topic. */
static int topic_partitions(db_req_t *r, const char *topic, int *cnt)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err;
    int i, rc = 400;

    if ((err = rd_kafka_metadata(r->t->client, 1, NULL, &md, DB_METADATA_MS))) {
        snprintf(r->errstr, r->errlen, "%s: cannot list topics: %s", r->op, rd_kafka_err2str(err));
        return 503;
    }
    for (i = 0; i < md->topic_cnt; i++)
        if (!strcmp(md->topics[i].topic, topic) &&
            md->topics[i].err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
            *cnt = md->topics[i].partition_cnt;
            rc = 200;
        }
    rd_kafka_metadata_destroy(md);
    if (rc != 200)
        fail(r, "%s: unknown topic \"%s\"", r->op, topic);
    return rc;
}

static int op_leader(db_req_t *r)
{
    const char *topic;
    int partition, broker, cnt = 0, rc;
    rd_kafka_resp_err_t err;

    if (!(topic = get_str(r, "topic", DB_NAME_MAX)))
        return 400;
    if (!topic_name_ok(topic))
        return fail(r, "%s: \"%s\" is not a legal topic name", r->op, shown(topic));
    if ((rc = get_int(r, "partition", 0, DB_MAX_PARTITION, &partition)) ||
        (rc = get_broker(r, 1, &broker)))
        return rc;
    if ((rc = topic_partitions(r, topic, &cnt)) != 200)
        return rc;
    if (partition >= cnt)
        return fail(r, "%s: topic %s has partitions 0..%d", r->op, topic, cnt - 1);
    if ((err = rd_kafka_mock_partition_set_leader(r->t->mc, topic, partition, broker)))
        return mock_err(r, err);
    lt_info("fault: topic %s partition %d leader %d", topic, partition, broker);
    return 200;
}

static int op_coordinator(db_req_t *r)
{
    const char *type, *key;
    int broker, rc;
    rd_kafka_resp_err_t err;

    if (!(type = get_str(r, "type", DB_NAME_MAX)))
        return 400;
    if (strcmp(type, "group") && strcmp(type, "transaction"))
        return fail(r, "%s: \"type\" must be \"group\" or \"transaction\"", r->op);
    if (!(key = get_str(r, "key", DB_NAME_MAX)))
        return 400;
    if ((rc = get_broker(r, 0, &broker)))
        return rc;
    if ((err = rd_kafka_mock_coordinator_set(r->t->mc, type, key, broker)))
        return mock_err(r, err);
    lt_info("fault: %s coordinator of %s is broker %d", type, shown(key), broker);
    return 200;
}

/* Undoes what can be undone: pushed request errors, rtt, downed brokers.
 * Leaders and coordinators stay as set (the mock keeps no defaults to go
 * back to). */
static int op_clear(db_req_t *r)
{
    rd_kafka_resp_err_t err;
    size_t i;

    for (i = 0; i < sizeof(apis) / sizeof(apis[0]); i++)
        rd_kafka_mock_clear_request_errors(r->t->mc, apis[i].key);
    if (!(err = rd_kafka_mock_broker_set_rtt(r->t->mc, -1, 0))) {
        db_mock_pause(); /* two ops back to back */
        err = rd_kafka_mock_broker_set_up(r->t->mc, -1);
    }
    if (err)
        return mock_err(r, err);
    lt_info("fault: cleared (request errors, rtt 0, all brokers up)");
    return 200;
}

static const db_op_t ops[] = {
    {"broker_down", op_updown, {"broker", NULL}},
    {"broker_up", op_updown, {"broker", NULL}},
    {"rtt", op_rtt, {"broker", "ms", NULL}},
    {"push_errors", op_push, {"api", "errors", "count", "error", NULL}},
    {"leader", op_leader, {"topic", "partition", "broker", NULL}},
    {"coordinator", op_coordinator, {"type", "key", "broker", NULL}},
    {"clear", op_clear, {NULL}},
};

/* 0 when every member of the request is "op" or a field of o; else 400. */
static int check_fields(db_req_t *r, const db_op_t *o)
{
    const cJSON *v;
    size_t i;

    cJSON_ArrayForEach(v, r->req)
    {
        if (!strcmp(v->string, "op"))
            continue;
        for (i = 0; o->fields[i] && strcmp(o->fields[i], v->string); i++)
            ;
        if (!o->fields[i])
            return fail(r, "%s: unknown field \"%s\"", r->op, shown(v->string));
    }
    return 0;
}

/* Finds the op and applies it; 200, 400 or 503. */
static int dispatch(db_req_t *r)
{
    const cJSON *op = field(r, "op");
    size_t i;
    int rc;

    if (!cJSON_IsString(op))
        return fail(r, "\"op\" must be a string");
    for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        if (!strcmp(ops[i].name, op->valuestring))
            break;
    if (i == sizeof(ops) / sizeof(ops[0]))
        return fail(r, "unknown op \"%s\"", shown(op->valuestring));
    r->op = ops[i].name;
    if ((rc = check_fields(r, &ops[i])))
        return rc;
    return ops[i].apply(r);
}

int db_fault_apply(const db_fault_target_t *t, const char *body, size_t len, char *errstr,
                   size_t errlen)
{
    db_req_t r = {t, NULL, "request", errstr, errlen};
    const char *rest = NULL;
    cJSON *root = NULL;
    int rc = 400;

    if (memchr(body, '\0', len)) {
        fail(&r, "body is not JSON text");
        goto end;
    }
    root = cJSON_ParseWithLengthOpts(body, len, &rest, 0);
    while (root && rest < body + len && strchr(" \t\r\n", *rest))
        rest++;
    if (!root || !cJSON_IsObject(root) || rest != body + len) {
        fail(&r, "body must be one JSON object");
        goto end;
    }
    r.req = root;
    rc = dispatch(&r);
end:
    if (rc != 200)
        lt_warn("fault rejected (%d): %s", rc, errstr);
    cJSON_Delete(root);
    return rc;
}
