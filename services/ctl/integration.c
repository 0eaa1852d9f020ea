/* ltvctl integration add|update|remove|list|show|test */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "lt_cred.h"
#include "lt_crm.h"
#include "lt_date.h"
#include "lt_http.h"
#include "lt_clock.h"
#include "lt_kafka.h"
#include "lt_limits.h"
#include "lt_redis.h"
#include "lt_registry.h"
#include "lt_rkeys.h"

#define CTL_MAX_FILE (64 * 1024)

int ctl_find_integration(const ctl_t *ctl, const char *id, lt_integration_t *out)
{
    lt_registry_t reg = {0};
    const lt_integration_t *in;
    char errstr[512];
    if (lt_registry_load(&reg, ctl->cfg, errstr, sizeof(errstr)) != LT_OK) {
        fprintf(ctl->err, "ltvctl: reading integrations: %s\n", errstr);
        return CTL_FAIL;
    }
    if (!(in = lt_registry_find(&reg, id))) {
        fprintf(ctl->err, "ltvctl: no integration \"%s\"\n", id);
        lt_registry_release(&reg);
        return ctl_fail(ctl, CTL_P_NOT_FOUND, NULL);
    }
    *out = *in;
    lt_registry_release(&reg);
    return CTL_OK;
}

/* Tells running normalizers to re-read the integrations before their next
 * batch (they poll P integrations:version, lt_rkey_global). */
static int bump_version(const ctl_t *ctl)
{
    char errstr[256], key[256];
    lt_redis_t *r =
        lt_redis_new(lt_config_str(ctl->cfg, "REDIS_URL"), 3000, errstr, sizeof(errstr));
    lt_rkey_global(key, sizeof(key), lt_config_str(ctl->cfg, "REDIS_PREFIX"),
                   "integrations:version");
    redisReply *reply = r ? lt_redis_cmd(r, "INCR %s", key) : NULL;
    int rc = reply && reply->type == REDIS_REPLY_INTEGER ? 0 : -1;
    if (reply)
        freeReplyObject(reply);
    lt_redis_destroy(r);
    return rc;
}

int ctl_write_integration(const ctl_t *ctl, const char *id, const char *json)
{
    lt_producer_t *p;
    lt_acks_t *acks = lt_acks_new();
    char errstr[512];
    int rc = CTL_FAIL;
    if (!acks || !(p = lt_producer_new(ctl->cfg, "KAFKA_", errstr, sizeof(errstr)))) {
        fprintf(ctl->err, "ltvctl: kafka: %s\n", acks ? errstr : "out of memory");
        lt_acks_release(acks);
        return CTL_FAIL;
    }
    const char *topic = lt_config_str(ctl->cfg, "TOPIC_INTEGRATIONS");
    lt_producer_warm(p, &topic, 1, 5000);
    if (lt_producer_send(p, topic, id, strlen(id), json, json ? strlen(json) : 0, acks, errstr,
                         sizeof(errstr)) != LT_OK)
        fprintf(ctl->err, "ltvctl: kafka: %s\n", errstr);
    else if (lt_producer_wait(p, acks, 30000) != LT_OK)
        fprintf(ctl->err, "ltvctl: kafka did not acknowledge the write\n");
    else
        rc = CTL_OK;
    lt_producer_destroy(p, 5000);
    lt_acks_release(acks);
    if (rc == CTL_OK && bump_version(ctl) < 0)
        fprintf(ctl->err, "ltvctl: warning: Redis unreachable: running services apply the "
                          "change when their view of the integrations topic delivers it\n");
    return rc;
}

static char *read_file(const ctl_t *ctl, const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    char *buf = NULL;
    if (!fp) {
        fprintf(ctl->err, "ltvctl: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    if ((buf = malloc(CTL_MAX_FILE + 1))) {
        *len = fread(buf, 1, CTL_MAX_FILE + 1, fp);
        if (*len > CTL_MAX_FILE) {
            fprintf(ctl->err, "ltvctl: %s: larger than %d bytes\n", path, CTL_MAX_FILE);
            free(buf);
            buf = NULL;
        }
    }
    fclose(fp);
    return buf;
}

static const char *const field_flags[] = {"--id",
                                          "--brand",
                                          "--base-url",
                                          "--api-username",
                                          "--password-ref",
                                          "--account-name",
                                          "--account-username",
                                          "--timezone",
                                          "--currency",
                                          "--import-from",
                                          "--sync-interval",
                                          "--streams",
                                          "--max-rps",
                                          "--max-in-flight",
                                          "--file",
                                          NULL};

/* CTL_USAGE (with a message) when an option is not one of the field flags
 * or lacks its value: a mistyped flag must not be silently ignored. */
static int check_flags(const ctl_t *ctl)
{
    for (int i = 0; i < ctl->argc; i++) {
        const char *a = ctl->argv[i];
        int known = 0;
        if (strncmp(a, "--", 2))
            continue;
        for (int k = 0; field_flags[k] && !known; k++)
            known = !strcmp(a, field_flags[k]);
        if (!known) {
            fprintf(ctl->err, "ltvctl: unknown option %s\n", a);
            return CTL_USAGE;
        }
        if (++i >= ctl->argc) {
            fprintf(ctl->err, "ltvctl: %s needs a value\n", a);
            return CTL_USAGE;
        }
    }
    return CTL_OK;
}

/* A whole decimal number; -1 otherwise (the validation then names it). */
static int flag_int(const char *v)
{
    char *end;
    long n = strtol(v, &end, 10);
    return *v && !*end && n >= -1000000 && n <= 1000000 ? (int)n : -1;
}

/* Applies the field flags onto in. CTL_USAGE on a malformed flag value. */
static int apply_flags(const ctl_t *ctl, lt_integration_t *in)
{
    static const struct {
        const char *flag;
        size_t off, size;
    } strs[] = {
#define F(flag, k) {flag, offsetof(lt_integration_t, k), sizeof(((lt_integration_t *)0)->k)}
        F("--id", id),
        F("--brand", brand),
        F("--base-url", base_url),
        F("--api-username", api_username),
        F("--password-ref", password_ref),
        F("--account-name", account_name),
        F("--account-username", account_username),
        F("--timezone", timezone),
        F("--currency", currency),
        F("--import-from", import_from),
#undef F
    };
    const char *v;
    if (check_flags(ctl) != CTL_OK)
        return CTL_USAGE;
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        if (!(v = ctl_opt(ctl, strs[i].flag)))
            continue;
        if (strlen(v) >= strs[i].size) {
            fprintf(ctl->err, "ltvctl: %s: longer than %zu bytes\n", strs[i].flag,
                    strs[i].size - 1);
            return CTL_USAGE;
        }
        memcpy((char *)in + strs[i].off, v, strlen(v) + 1);
    }
    if (ctl_opt(ctl, "--brand") && !ctl_opt(ctl, "--base-url"))
        in->base_url[0] = '\0'; /* re-derived from the brand */
    if ((v = ctl_opt(ctl, "--sync-interval")) &&
        lt_config_parse_duration_ms(v, &in->sync_interval_ms) < 0) {
        fprintf(ctl->err, "ltvctl: --sync-interval: a duration such as 30s, 15m, 1h\n");
        return CTL_USAGE;
    }
    if ((v = ctl_opt(ctl, "--streams"))) {
        unsigned mask = 0;
        if (ctl_parse_streams(ctl, v, &mask) < 0)
            return CTL_USAGE;
        in->streams = mask;
    }
    if ((v = ctl_opt(ctl, "--max-rps")))
        in->max_requests_per_second = flag_int(v);
    if ((v = ctl_opt(ctl, "--max-in-flight")))
        in->max_in_flight = flag_int(v);
    return CTL_OK;
}

static void add_problem(void *opaque, const char *problem)
{
    ctl_res_t *res = opaque;
    if (res->nproblems < (int)(sizeof(res->problems) / sizeof(res->problems[0])))
        snprintf(res->problems[res->nproblems++], sizeof(res->problems[0]), "%s", problem);
}

/* Builds the integration from --file and/or flags, validated, its base_url
 * and password_ref within the credential policy (lt_cred.h), the password
 * readable. */
static int load_candidate(const ctl_t *ctl, lt_integration_t *in, const lt_integration_t *base)
{
    char errstr[512], password[LT_CRM_PASSWORD_MAX + 1], *json;
    lt_cred_policy_t pol;
    const char *file = ctl_opt(ctl, "--file");
    size_t len;
    lt_err_t err;
    int rc;

    if (ctl->res->doc) {
        if (lt_integration_parse_all(ctl->res->doc, ctl->res->doclen, in, add_problem, ctl->res,
                                     errstr, sizeof(errstr)) != LT_OK) {
            fprintf(ctl->err, "%s\n", errstr);
            return ctl_fail_errstr(ctl, CTL_P_INVALID, errstr);
        }
    } else if (file) {
        char *buf = read_file(ctl, file, &len);
        if (!buf)
            return CTL_FAIL;
        err = lt_integration_parse(buf, len, in, errstr, sizeof(errstr));
        free(buf);
        if (err != LT_OK) {
            fprintf(ctl->err, "ltvctl: %s: %s\n", file, errstr);
            return ctl_fail_errstr(ctl, CTL_P_INVALID, errstr);
        }
    } else if (base) {
        *in = *base;
    } else {
        /* Flags only: start from the defaults of an empty document. */
        static const char empty[] = "{\"import_from\":\"all\"}";
        lt_integration_parse(empty, sizeof(empty) - 1, in, errstr, sizeof(errstr));
        in->import_from[0] = '\0';
    }
    if ((rc = apply_flags(ctl, in)) != CTL_OK)
        return rc;
    /* Round-trip through JSON so defaults (base_url by brand) are applied. */
    if (!(json = lt_integration_to_json(in)))
        return CTL_FAIL;
    err = lt_integration_parse(json, strlen(json), in, errstr, sizeof(errstr));
    free(json);
    if (err != LT_OK) {
        fprintf(ctl->err, "ltvctl: invalid integration: %s\n", errstr);
        return ctl_fail_errstr(ctl, CTL_P_INVALID, errstr);
    }
    lt_cred_policy_init(&pol, ctl->cfg);
    err = lt_cred_password(&pol, in, password, sizeof(password), errstr, sizeof(errstr));
    lt_cred_wipe(password, sizeof(password));
    if (err != LT_OK) {
        fprintf(ctl->err, "ltvctl: %s\n", errstr);
        return ctl_fail_errstr(ctl, CTL_P_INVALID, errstr);
    }
    return CTL_OK;
}

/* P i:ID:WHAT (lt_rkeys) */
static void ikey(const ctl_t *ctl, const char *id, const char *what, char *buf, size_t len)
{
    lt_rkey_integ(buf, len, lt_config_str(ctl->cfg, "REDIS_PREFIX"), id, what);
}

static int clear_parking(const ctl_t *ctl, const char *id)
{
    char errstr[256], key[256], what[64];
    lt_redis_t *r =
        lt_redis_new(lt_config_str(ctl->cfg, "REDIS_URL"), 3000, errstr, sizeof(errstr));
    redisReply *reply;
    if (!r)
        return -1;
    /* Unparked: the jobs dropped while parked are re-emitted because the
     * scheduler rescans the backfill from the first day (done days skip)
     * and plans the live window at its next tick (last_run_ms forgotten).
     * The parked state goes last: a scheduler tick between the two that
     * saw it gone with last_run_ms still set planned no live window and
     * then stayed quiet until that window's next interval (the version
     * bump came before), so today's rows waited up to sync_interval. */
    ikey(ctl, id, "live", key, sizeof(key));
    reply = lt_redis_cmd(r, "HDEL %s last_run_ms", key);
    for (int s = 0; reply && s < LT_STREAM_COUNT; s++) {
        freeReplyObject(reply);
        snprintf(what, sizeof(what), "backfill:%s", lt_stream_name((lt_stream_t)s));
        ikey(ctl, id, what, key, sizeof(key));
        reply = lt_redis_cmd(r, "HDEL %s through", key);
    }
    if (reply) {
        freeReplyObject(reply);
        ikey(ctl, id, "state", key, sizeof(key));
        reply = lt_redis_cmd(r, "DEL %s", key);
    }
    if (reply)
        freeReplyObject(reply);
    lt_redis_destroy(r);
    return reply ? 0 : -1;
}

static int cmd_add(ctl_t *ctl)
{
    lt_integration_t in, existing;
    lt_registry_t reg = {0};
    char errstr[512], *json;
    int rc;
    if ((rc = load_candidate(ctl, &in, NULL)) != CTL_OK)
        return rc;
    if (lt_registry_load(&reg, ctl->cfg, errstr, sizeof(errstr)) != LT_OK) {
        fprintf(ctl->err, "ltvctl: reading integrations: %s\n", errstr);
        return CTL_FAIL;
    }
    if (lt_registry_find(&reg, in.id)) {
        existing = *lt_registry_find(&reg, in.id);
        lt_registry_release(&reg);
        fprintf(ctl->err,
                "ltvctl: integration \"%s\" exists (account %s); use `integration update`\n",
                existing.id, existing.account_name);
        return ctl_fail(ctl, CTL_P_CONFLICT, "id");
    }
    lt_registry_release(&reg);
    if (!(json = lt_integration_to_json(&in)))
        return CTL_FAIL;
    rc = ctl_write_integration(ctl, in.id, json);
    free(json);
    if (rc == CTL_OK)
        ctl->res->stored = in, ctl->res->stored_set = 1;
    if (rc == CTL_OK)
        fprintf(ctl->out,
                "integration %s added: importing from %s, syncing every %llds, timezone %s\n",
                in.id, in.import_from, in.sync_interval_ms / 1000, in.timezone);
    return rc;
}

static int cmd_update(ctl_t *ctl)
{
    lt_integration_t old, in;
    const char *id = ctl_arg(ctl, 0);
    char *json;
    int rc, tz_changed;
    if (!id)
        return CTL_USAGE;
    if ((rc = ctl_find_integration(ctl, id, &old)) != CTL_OK)
        return rc;
    if ((rc = load_candidate(ctl, &in, &old)) != CTL_OK)
        return rc;
    if (strcmp(in.id, old.id)) {
        fprintf(ctl->err, "ltvctl: the id of an integration cannot change\n");
        ctl_fail(ctl, CTL_P_INVALID, "id");
        return CTL_USAGE;
    }
    tz_changed = strcmp(in.timezone, old.timezone) != 0;
    if (tz_changed && !ctl->yes) {
        fprintf(ctl->err,
                "ltvctl: changing the timezone from %s to %s re-dates every event of %s:\n"
                "  the CRM reports wall times in the account's timezone, so every payment,\n"
                "  refund and chargeback moves. The events are rebuilt by replaying\n"
                "  ltvsync.raw (no CRM calls); downstream receives new versions of the\n"
                "  events whose dating changes. Run again with --yes to proceed.\n",
                old.timezone, in.timezone, id);
        return ctl_fail(ctl, CTL_P_CONFIRM, "timezone");
    }
    if (!(json = lt_integration_to_json(&in)))
        return CTL_FAIL;
    rc = ctl_write_integration(ctl, in.id, json);
    free(json);
    if (rc != CTL_OK)
        return rc;
    ctl->res->stored = in, ctl->res->stored_set = 1;
    if (clear_parking(ctl, id) < 0)
        fprintf(ctl->err, "ltvctl: warning: could not clear the parked state in Redis\n");
    fprintf(ctl->out, "integration %s updated\n", id);
    if (tz_changed) {
        fprintf(ctl->out,
                "timezone changed %s -> %s: replaying ltvsync.raw to re-date every event\n",
                old.timezone, in.timezone);
        if (ctl->res->replay_later) {
            ctl->res->replay_due = 1;
            return CTL_OK;
        }
        return ctl_replay_start(ctl, id);
    }
    return CTL_OK;
}

static int cmd_remove(ctl_t *ctl)
{
    lt_integration_t in;
    const char *id = ctl_arg(ctl, 0);
    int rc;
    if (!id)
        return CTL_USAGE;
    if ((rc = ctl_find_integration(ctl, id, &in)) != CTL_OK)
        return rc;
    if ((rc = ctl_write_integration(ctl, id, NULL)) == CTL_OK)
        fprintf(ctl->out, "integration %s removed (no new jobs; its events stay downstream)\n", id);
    return rc;
}

static int cmd_list(ctl_t *ctl)
{
    lt_registry_t reg = {0};
    char errstr[512];
    if (lt_registry_load(&reg, ctl->cfg, errstr, sizeof(errstr)) != LT_OK) {
        fprintf(ctl->err, "ltvctl: reading integrations: %s\n", errstr);
        return CTL_FAIL;
    }
    if (ctl->json) {
        fprintf(ctl->out, "[");
        for (size_t i = 0; i < reg.count; i++) {
            char *json = lt_integration_to_json(&reg.items[i]);
            fprintf(ctl->out, "%s%s", i ? "," : "", json ? json : "null");
            free(json);
        }
        fprintf(ctl->out, "]\n");
    } else {
        fprintf(ctl->out, "%-24s %-14s %-22s %-11s %-8s %s\n", "ID", "BRAND", "TIMEZONE",
                "IMPORT FROM", "EVERY", "ACCOUNT");
        for (size_t i = 0; i < reg.count; i++) {
            const lt_integration_t *in = &reg.items[i];
            char every[24];
            snprintf(every, sizeof(every), "%llds", in->sync_interval_ms / 1000);
            fprintf(ctl->out, "%-24s %-14s %-22s %-11s %-8s %s\n", in->id, in->brand, in->timezone,
                    in->import_from, every, in->account_name);
        }
    }
    lt_registry_release(&reg);
    return CTL_OK;
}

static int cmd_show(ctl_t *ctl)
{
    lt_integration_t in;
    const char *id = ctl_arg(ctl, 0);
    char *json;
    int rc;
    if (!id)
        return CTL_USAGE;
    if ((rc = ctl_find_integration(ctl, id, &in)) != CTL_OK)
        return rc;
    if (!(json = lt_integration_to_json(&in)))
        return CTL_FAIL;
    fprintf(ctl->out, "%s\n", json);
    free(json);
    return CTL_OK;
}

/* Explains a CRM refusal in the words an operator needs. */
static void explain(const ctl_t *ctl, const char *msg)
{
    const char *ip = strstr(msg, "whitelisted");
    if (ip) {
        const char *dash = strrchr(msg, '-');
        while (dash && (dash[1] == ' ' || dash[1] == '\t'))
            dash++;
        fprintf(ctl->out,
                "FAILED: the CRM refused this caller's IP address.\n"
                "  CRM said: %s\n"
                "  The CRM saw the request come from %s. Add that address (or the cluster's\n"
                "  stable egress IPs) to the API user's IP allow-list in the CRM.\n",
                msg, dash ? dash + 1 : "(not given)");
    } else if (strstr(msg, "access") || strstr(msg, "permission")) {
        fprintf(ctl->out,
                "FAILED: the API user lacks a permission.\n"
                "  CRM said: %s\n"
                "  Tick the query permissions (Query Transactions, Query Orders, Query\n"
                "  Customers, Query Purchases, Query Campaigns) on the API user.\n",
                msg);
    } else {
        fprintf(ctl->out,
                "FAILED: the CRM rejected the API credentials.\n"
                "  CRM said: %s\n"
                "  Check api_username (the API user's login id, not the account owner's)\n"
                "  and its password (password_ref; it must not contain '&').\n",
                msg);
    }
}

/* One query of stream for yesterday; CTL_OK when the CRM answered it. */
static int test_stream(const ctl_t *ctl, lt_http_t *http, const lt_http_opts_t *opts,
                       const lt_integration_t *in, const char *password, lt_stream_t stream,
                       ctl_crm_slots_t *tl)
{
    lt_job_t job = {.stream = stream, .date_range_type = "dateCreated"};
    lt_crm_form_t form;
    lt_http_resp_t resp = {0};
    lt_crm_page_t page = {0};
    char errstr[512], url[600];
    lt_datetime_t dt;
    int rc = CTL_FAIL;
    lt_err_t err;

    lt_date_from_seconds((long long)time(NULL) - 86400, &dt);
    lt_date_fmt_day(&dt, job.day, sizeof(job.day));
    if (lt_crm_form_build(&form, in->api_username, password, &job, 1, 1, errstr, sizeof(errstr)) ||
        lt_crm_url(in->base_url, stream, url, sizeof(url)) < 0) {
        fprintf(ctl->out, "FAILED: %s\n", errstr);
        goto end;
    }
    if (ctl_crm_slot_acquire(tl, in, ctl->out) != 0)
        goto end;
    err = lt_http_post_form(http, url, form.fields, form.n, &resp, errstr, sizeof(errstr));
    ctl_crm_slot_release(tl);
    if (err != LT_OK) {
        fprintf(ctl->out, "FAILED: could not reach the CRM at %s: %s\n", in->base_url, errstr);
        ctl_fail(ctl, CTL_P_CRM_UNREACHABLE, NULL);
        goto end;
    }
    err = lt_crm_parse(resp.status, resp.body, resp.len, opts->max_body, &page, errstr,
                       sizeof(errstr));
    if (err == LT_OK || err == LT_ERR_EMPTY) {
        rc = CTL_OK;
    } else if (err == LT_ERR_AUTH) {
        fprintf(ctl->out, "(querying %s)\n", lt_stream_name(stream));
        explain(ctl, page.message);
        ctl_fail(ctl, CTL_P_CRM_REJECTED, NULL);
    } else {
        fprintf(ctl->out,
                "FAILED: the CRM answered a %s query with a transient error: %s\n"
                "  (retry later; the sync would back off and retry on its own)\n",
                lt_stream_name(stream), errstr);
        ctl_fail(ctl, CTL_P_CRM_UNREACHABLE, NULL);
    }
end:
    memset(&form, 0, sizeof(form));
    lt_crm_page_release(&page);
    lt_http_resp_release(&resp);
    return rc;
}

/* Queries every stream the sync reads (one request each, in order), so a
 * permission missing on any of them is found before the sync parks. */
static int cmd_test(ctl_t *ctl)
{
    lt_integration_t in;
    lt_http_opts_t opts = {
        .connect_timeout_ms = 10000, .timeout_ms = 120000, .max_body = 64u << 20};
    lt_http_t *http = NULL;
    char errstr[512], password[LT_CRM_PASSWORD_MAX + 1];
    const char *id = ctl_arg(ctl, 0);
    lt_cred_policy_t pol;
    int rc;

    if (id && !ctl_opt(ctl, "--file") && !ctl->res->doc)
        rc = ctl_find_integration(ctl, id, &in);
    else
        rc = load_candidate(ctl, &in, NULL);
    if (rc != CTL_OK)
        return rc;
    lt_cred_policy_init(&pol, ctl->cfg);
    if (lt_cred_password(&pol, &in, password, sizeof(password), errstr, sizeof(errstr)) != LT_OK) {
        fprintf(ctl->out, "FAILED: %s\n", errstr);
        return ctl_fail_errstr(ctl, CTL_P_INVALID, errstr);
    }
    if (!(http = lt_http_new(&opts))) {
        lt_cred_wipe(password, sizeof(password));
        return CTL_FAIL;
    }
    ctl_crm_slots_t tl;
    ctl_crm_slots_open(ctl, &in, &tl);
    for (int s = 0; s < LT_STREAM_COUNT && rc == CTL_OK; s++)
        rc = test_stream(ctl, http, &opts, &in, password, (lt_stream_t)s, &tl);
    if (rc == CTL_OK)
        fprintf(ctl->out,
                "OK: connected to %s as API user %s (%s, account %s); every query "
                "endpoint answered\n",
                in.base_url, in.api_username, in.brand, in.account_name);
    lt_cred_wipe(password, sizeof(password));
    ctl_crm_slots_close(&tl);
    lt_http_destroy(http);
    return rc;
}

int ctl_integration(ctl_t *ctl, const char *verb)
{
    if (!strcmp(verb, "add"))
        return cmd_add(ctl);
    if (!strcmp(verb, "update"))
        return cmd_update(ctl);
    if (!strcmp(verb, "remove"))
        return cmd_remove(ctl);
    if (!strcmp(verb, "list"))
        return cmd_list(ctl);
    if (!strcmp(verb, "show"))
        return cmd_show(ctl);
    if (!strcmp(verb, "test"))
        return cmd_test(ctl);
    fprintf(ctl->err, "ltvctl: unknown integration command \"%s\"\n", verb);
    return CTL_USAGE;
}
