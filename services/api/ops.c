/* ops.c: each API operation is one of ltvctl's commands (ltctl_core), run
 * with the request's fields as its arguments, --json, and memory streams as
 * its stdout and stderr. Its JSON output is the response body; a failure's
 * kind (ctl_res_t.problem) picks the status, its message the detail. The
 * only things done here and not in ltvctl: a typed-in password is sealed
 * (lt_seal) before the document goes anywhere, a PATCH is merged onto the
 * stored document (RFC 7396), and a sealed password_ref is shown without
 * its blob. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <microhttpd.h>

#include "api.h"
#include "ctl.h"
#include "lt_clock.h"
#include "lt_cred.h"
#include "lt_json.h"
#include "lt_log.h"
#include "lt_seal.h"

#define ARGS_MAX 12

/* One ltvctl command run. */
typedef struct {
    ctl_res_t res;
    ctl_t ctl;
    FILE *fo, *fe;
    char *out, *err;
    size_t outlen, errlen;
    char *argv[ARGS_MAX];
    int rc;
} run_t;

static int run_init(run_t *r, const lt_config_t *cfg)
{
    memset(r, 0, sizeof(*r));
    r->fo = open_memstream(&r->out, &r->outlen);
    r->fe = open_memstream(&r->err, &r->errlen);
    if (!r->fo || !r->fe)
        return -1;
    r->ctl.cfg = (lt_config_t *)(uintptr_t)cfg; /* the commands only read it */
    r->ctl.out = r->fo;
    r->ctl.err = r->fe;
    r->ctl.res = &r->res;
    r->ctl.json = 1;
    r->ctl.argv = r->argv;
    return 0;
}

static void run_arg(run_t *r, const char *a)
{
    if (r->ctl.argc < ARGS_MAX)
        r->argv[r->ctl.argc++] = (char *)(uintptr_t)a;
}

/* Closes the streams: r->out and r->err hold the output. */
static void run_done(run_t *r)
{
    if (r->fo)
        fclose(r->fo);
    if (r->fe)
        fclose(r->fe);
    r->fo = r->fe = NULL;
}

static void run_free(run_t *r)
{
    run_done(r);
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

/* ---- responses ---- */

static void set_body(api_resp_t *resp, unsigned status, const char *type, char *body)
{
    free(resp->body);
    resp->status = status;
    resp->type = type;
    resp->body = body;
    resp->len = body ? strlen(body) : 0;
}

static void set_json(api_resp_t *resp, unsigned status, cJSON *doc)
{
    set_body(resp, status, "application/json", doc ? cJSON_PrintUnformatted(doc) : NULL);
    if (doc && !resp->body)
        api_problem(resp, 500, "internal", "Internal error", "out of memory", NULL);
}

void api_problem(api_resp_t *resp, unsigned status, const char *slug, const char *title,
                 const char *detail, const char *field)
{
    cJSON *p = cJSON_CreateObject();
    char type[96];
    snprintf(type, sizeof(type), "urn:ltvsync:problem:%s", slug);
    cJSON_AddStringToObject(p, "type", type);
    cJSON_AddStringToObject(p, "title", title);
    cJSON_AddNumberToObject(p, "status", status);
    if (detail && *detail)
        cJSON_AddStringToObject(p, "detail", detail);
    if (field && *field && status == 400) { /* field errors are a validation's only */
        cJSON *errs = cJSON_AddArrayToObject(p, "errors"), *e = cJSON_CreateObject();
        const char *msg = detail && *detail ? detail : title;
        size_t n = strlen(field);
        if (!strncmp(msg, field, n) && !strncmp(msg + n, ": ", 2))
            msg += n + 2; /* "timezone: ..." -> "..." beside its field */
        cJSON_AddStringToObject(e, "field", field);
        cJSON_AddStringToObject(e, "message", msg);
        cJSON_AddItemToArray(errs, e);
    }
    set_body(resp, status, "application/problem+json", cJSON_PrintUnformatted(p));
    cJSON_Delete(p);
}

/* Replaces the problem's "errors" by one entry per problem of the document:
 * "field: reason", or 'unknown field "x"' / 'duplicate field "x"' for x; a
 * problem of the whole document is in the detail only. */
static void add_errors(api_resp_t *resp, const ctl_res_t *res)
{
    cJSON *doc = resp->body ? cJSON_Parse(resp->body) : NULL, *errs;
    if (!doc)
        return;
    cJSON_DeleteItemFromObjectCaseSensitive(doc, "errors");
    errs = cJSON_AddArrayToObject(doc, "errors");
    for (int i = 0; i < res->nproblems; i++) {
        const char *pr = res->problems[i], *colon = strstr(pr, ": "), *q;
        size_t n = colon ? (size_t)(colon - pr) : 0;
        char field[72] = "";
        cJSON *e;
        if (n > 0 && n < 32 && strspn(pr, "abcdefghijklmnopqrstuvwxyz_") == n) {
            memcpy(field, pr, n);
        } else if ((!strncmp(pr, "unknown field \"", 15) ||
                    !strncmp(pr, "duplicate field \"", 17)) &&
                   (q = strchr(strchr(pr, '"') + 1, '"'))) {
            const char *f = strchr(pr, '"') + 1;
            snprintf(field, sizeof(field), "%.*s", (int)(q - f), f);
            colon = NULL;
        }
        if (!field[0])
            continue;
        e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "field", field);
        cJSON_AddStringToObject(e, "message", colon ? colon + 2 : pr);
        cJSON_AddItemToArray(errs, e);
    }
    if (!cJSON_GetArraySize(errs)) /* none names a field: the detail says it */
        cJSON_DeleteItemFromObjectCaseSensitive(doc, "errors");
    free(resp->body);
    resp->body = cJSON_PrintUnformatted(doc);
    resp->len = resp->body ? strlen(resp->body) : 0;
    cJSON_Delete(doc);
}

/* The command's messages as one detail text: the CLI's line prefixes
 * ("ltvctl: ", "FAILED: ", "(querying orders)" lines) and surrounding blank
 * space removed. Caller frees. */
static char *detail_of(const char *text)
{
    static const char *const prefixes[] = {"ltvctl: ", "FAILED: "};
    size_t n = text ? strlen(text) : 0, k = 0;
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    for (size_t i = 0; i < n;) {
        int cut = 0;
        if (i == 0 || text[i - 1] == '\n') {
            for (size_t p = 0; p < 2 && !cut; p++)
                if (!strncmp(text + i, prefixes[p], strlen(prefixes[p])))
                    i += strlen(prefixes[p]), cut = 1;
            if (!cut && !strncmp(text + i, "(querying ", 10)) {
                while (i < n && text[i] != '\n')
                    i++;
                i += i < n;
                cut = 1;
            }
        }
        if (cut)
            continue;
        if (text[i] == '\n' && i + 1 < n && text[i + 1] == ' ') {
            /* the CLI's indented continuation lines: one paragraph */
            for (i++; i < n && text[i] == ' '; i++)
                ;
            if (k > 0 && d[k - 1] != ' ')
                d[k++] = ' ';
            continue;
        }
        d[k++] = text[i++];
    }
    while (k > 0 && (d[k - 1] == '\n' || d[k - 1] == ' '))
        k--;
    d[k] = '\0';
    return d;
}

/* Maps a failed command to a problem. text: the messages to show (the
 * test's go to stdout, the others' to stderr). */
static void fail(api_resp_t *resp, const run_t *r, const char *text)
{
    char *detail = detail_of(text);
    const char *field = r->res.field[0] ? r->res.field : NULL;
    switch (r->res.problem) {
    case CTL_P_INVALID:
        api_problem(resp, 400, "validation", "Invalid request", detail, field);
        if (r->res.nproblems > 1)
            add_errors(resp, &r->res);
        break;
    case CTL_P_NOT_FOUND:
        api_problem(resp, 404, "not-found", "No such integration", detail, NULL);
        break;
    case CTL_P_CONFLICT:
        api_problem(resp, 409, "conflict", "The integration exists", detail, NULL);
        break;
    case CTL_P_CONFIRM:
        api_problem(resp, 409, "confirmation-required",
                    "Changing the timezone re-dates every event",
                    "The CRM reports wall times in the account's timezone, so every payment, "
                    "refund and chargeback moves to the day it happened in the new zone. The "
                    "events are rebuilt from ltvsync.raw (no CRM calls). Send the same change "
                    "with \"confirm_redate\": true to proceed.",
                    "timezone");
        break;
    case CTL_P_CRM_REJECTED:
        api_problem(resp, 422, "crm-rejected", "The CRM refused the connection", detail, NULL);
        break;
    case CTL_P_CRM_UNREACHABLE:
        api_problem(resp, 502, "crm-unreachable", "The CRM could not be reached", detail, NULL);
        break;
    default:
        if (r->rc == CTL_USAGE)
            api_problem(resp, 400, "validation", "Invalid request", detail, field);
        else
            api_problem(resp, 503, "unavailable", "A backing service did not answer", detail, NULL);
    }
    free(detail);
}

/* ---- integrations as shown ---- */

/* The stored document without the sealed blob. */
static void redact(cJSON *doc)
{
    const char *ref = lt_json_str(doc, "password_ref");
    char shown[64];
    if (ref && lt_seal_is_sealed(ref)) {
        lt_seal_redact(ref, shown, sizeof(shown));
        cJSON_ReplaceItemInObjectCaseSensitive(doc, "password_ref", cJSON_CreateString(shown));
    }
}

static cJSON *shown(const lt_integration_t *in)
{
    char *json = lt_integration_to_json(in);
    cJSON *doc = json ? cJSON_Parse(json) : NULL;
    free(json);
    if (doc)
        redact(doc);
    return doc;
}

/* Sets up a run of an ltvctl integration command with ID (or NULL) as its
 * argument and doc (or NULL) as its document: 0, or -1 with resp filled
 * (then r holds nothing). The caller may set more of r->ctl and r->res. */
static int run_prepare(run_t *r, const lt_config_t *cfg, const char *id, const char *doc,
                       api_resp_t *resp)
{
    if (run_init(r, cfg) < 0) {
        run_free(r);
        api_problem(resp, 500, "internal", "Internal error", "out of memory", NULL);
        return -1;
    }
    if (id)
        run_arg(r, id);
    if (doc) {
        r->res.doc = doc;
        r->res.doclen = strlen(doc);
    }
    return 0;
}

/* Runs `integration VERB` as prepared; its exit code. */
static int run_exec(run_t *r, const char *verb)
{
    r->rc = ctl_integration(&r->ctl, verb);
    run_done(r);
    return r->rc;
}

/* Runs `integration VERB [ID]`: 0, or -1 with resp filled when the run
 * could not be set up. */
static int run_verb(run_t *r, const lt_config_t *cfg, const char *verb, const char *id,
                    api_resp_t *resp)
{
    if (run_prepare(r, cfg, id, NULL, resp) < 0)
        return -1;
    run_exec(r, verb);
    return 0;
}

/* Runs `integration show ID`: the stored document, parsed (NULL and resp
 * filled when it fails). */
static cJSON *stored_doc(const lt_config_t *cfg, const char *id, api_resp_t *resp)
{
    run_t r;
    cJSON *doc = NULL;
    if (run_verb(&r, cfg, "show", id, resp) < 0)
        return NULL;
    if (r.rc != CTL_OK)
        fail(resp, &r, r.err);
    else if (!(doc = cJSON_Parse(r.out)))
        api_problem(resp, 500, "internal", "Internal error", "unreadable document", NULL);
    run_free(&r);
    return doc;
}

/* Replaces a "password" member by the password_ref that seals it for id;
 * the clear text is wiped. 0, or -1 with resp filled. */
static int seal_password(const lt_config_t *cfg, cJSON *doc, const char *id, api_resp_t *resp)
{
    cJSON *pw = cJSON_GetObjectItemCaseSensitive(doc, "password");
    char ref[LT_SEAL_REF_LEN + 1], errstr[512];
    lt_err_t err;
    if (!pw)
        return 0;
    if (!cJSON_IsString(pw) || !pw->valuestring) {
        api_problem(resp, 400, "validation", "Invalid request", "password: must be a string",
                    "password");
        return -1;
    }
    if (cJSON_GetObjectItemCaseSensitive(doc, "password_ref")) {
        lt_cred_wipe(pw->valuestring, strlen(pw->valuestring));
        api_problem(resp, 400, "validation", "Invalid request",
                    "password: give either password or password_ref, not both", "password");
        return -1;
    }
    err = lt_seal_password_ref(cfg, id, pw->valuestring, ref, sizeof(ref), errstr, sizeof(errstr));
    lt_cred_wipe(pw->valuestring, strlen(pw->valuestring));
    cJSON_DeleteItemFromObjectCaseSensitive(doc, "password");
    if (err != LT_OK) {
        if (!strncmp(errstr, "SEAL_KEY_FILE", 13)) {
            lt_error("cannot seal a password: %s", errstr);
            api_problem(resp, 503, "unavailable", "Passwords cannot be stored now",
                        "the API's seal key is not readable; an operator must fix "
                        "LTVSYNC_SEAL_KEY_FILE (see the API's log)",
                        NULL);
        } else {
            const char *colon = strstr(errstr, ": ");
            char field[32] = "password";
            if (colon && (size_t)(colon - errstr) < sizeof(field) && !strncmp(errstr, "id:", 3))
                snprintf(field, sizeof(field), "id");
            api_problem(resp, 400, "validation", "Invalid request", errstr, field);
        }
        return -1;
    }
    cJSON_AddStringToObject(doc, "password_ref", ref);
    lt_cred_wipe(ref, sizeof(ref));
    return 0;
}

/* The body as a JSON object (NULL and resp filled otherwise). */
static cJSON *body_object(const api_req_t *req, api_resp_t *resp, int empty_ok)
{
    char errstr[256];
    cJSON *doc;
    if (!req->body_len && empty_ok)
        return cJSON_CreateObject();
    if (!(doc =
              lt_json_parse(req->body, req->body_len, req->body_len + 1, errstr, sizeof(errstr)))) {
        api_problem(resp, 400, "validation", "The body is not JSON", errstr, NULL);
        return NULL;
    }
    if (!cJSON_IsObject(doc)) {
        api_problem(resp, 400, "validation", "The body must be a JSON object", NULL, NULL);
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}

static void op_create(const lt_config_t *cfg, const api_req_t *req, api_resp_t *resp)
{
    cJSON *doc = body_object(req, resp, 0), *probe;
    const char *id, *test = MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, "test");
    char *text = NULL;
    run_t r;

    if (!doc)
        return;
    if (!(id = lt_json_str(doc, "id")) || !lt_integration_id_valid(id)) {
        api_problem(resp, 400, "validation", "Invalid request", "id: must match [a-z0-9-]{1,64}",
                    "id");
        goto end;
    }
    if (test && strcmp(test, "true") && strcmp(test, "false")) {
        api_problem(resp, 400, "validation", "Invalid request", "test: true or false", "test");
        goto end;
    }
    if ((probe = stored_doc(cfg, id, resp))) {
        cJSON_Delete(probe);
        api_problem(resp, 409, "conflict", "The integration exists",
                    "an integration with this id exists; change it with PATCH", "id");
        goto end;
    }
    if (resp->status != 404)
        goto end; /* the registry could not be read */
    if (seal_password(cfg, doc, id, resp) < 0)
        goto end;
    if (!(text = cJSON_PrintUnformatted(doc)))
        goto end;
    if (!test || !strcmp(test, "true")) {
        if (run_prepare(&r, cfg, NULL, text, resp) < 0)
            goto end;
        if (run_exec(&r, "test") != CTL_OK) {
            fail(resp, &r,
                 r.res.problem == CTL_P_CRM_REJECTED || r.res.problem == CTL_P_CRM_UNREACHABLE
                     ? r.out
                 : r.err && *r.err ? r.err
                                   : r.out);
            run_free(&r);
            goto end;
        }
        run_free(&r);
    }
    if (run_prepare(&r, cfg, NULL, text, resp) < 0)
        goto end;
    if (run_exec(&r, "add") != CTL_OK) {
        fail(resp, &r, r.err);
    } else {
        cJSON *out = shown(&r.res.stored);
        set_json(resp, 201, out);
        snprintf(resp->location, sizeof(resp->location), "/v1/integrations/%s", r.res.stored.id);
        cJSON_Delete(out);
    }
    run_free(&r);
end:
    free(text);
    cJSON_Delete(doc);
}

static void op_patch(const lt_config_t *cfg, const api_req_t *req, api_resp_t *resp)
{
    cJSON *patch = body_object(req, resp, 0), *doc = NULL, *item, *confirm;
    const char *pid, *ref;
    char *text = NULL, *stored_ref = NULL;
    int yes = 0;
    run_t r;

    if (!patch || !(doc = stored_doc(cfg, req->id, resp)))
        goto end;
    if ((ref = lt_json_str(doc, "password_ref")) && !(stored_ref = strdup(ref)))
        goto end;
    if ((confirm = cJSON_GetObjectItemCaseSensitive(patch, "confirm_redate"))) {
        if (!cJSON_IsBool(confirm)) {
            api_problem(resp, 400, "validation", "Invalid request",
                        "confirm_redate: must be true or false", "confirm_redate");
            goto end;
        }
        yes = cJSON_IsTrue(confirm);
        cJSON_DeleteItemFromObjectCaseSensitive(patch, "confirm_redate");
    }
    if ((pid = lt_json_str(patch, "id")) && strcmp(pid, req->id)) {
        api_problem(resp, 400, "validation", "Invalid request",
                    "id: the id of an integration cannot change", "id");
        goto end;
    }
    /* a new password replaces the stored reference, whatever its form */
    if (cJSON_GetObjectItemCaseSensitive(patch, "password"))
        cJSON_DeleteItemFromObjectCaseSensitive(doc, "password_ref");
    if (seal_password(cfg, patch, req->id, resp) < 0)
        goto end;
    /* RFC 7396: a member replaces the stored one, null removes it */
    while ((item = patch->child)) {
        char key[64];
        cJSON_DetachItemViaPointer(patch, item);
        /* cJSON renames the item it inserts: the key must not be its own */
        snprintf(key, sizeof(key), "%s", item->string ? item->string : "");
        if (cJSON_IsNull(item)) {
            cJSON_DeleteItemFromObjectCaseSensitive(doc, key);
            cJSON_Delete(item);
        } else if (cJSON_GetObjectItemCaseSensitive(doc, key)) {
            cJSON_ReplaceItemInObjectCaseSensitive(doc, key, item);
        } else {
            cJSON_AddItemToObject(doc, key, item);
        }
    }
    /* a sealed reference sent back as it is shown (redacted) keeps the
     * stored one */
    ref = lt_json_str(doc, "password_ref");
    if (ref && stored_ref && lt_seal_is_sealed(ref) && strlen(ref) < 32)
        cJSON_ReplaceItemInObjectCaseSensitive(doc, "password_ref", cJSON_CreateString(stored_ref));
    if (!(text = cJSON_PrintUnformatted(doc)) || run_prepare(&r, cfg, req->id, text, resp) < 0)
        goto end;
    r.res.replay_later = 1;
    r.ctl.yes = yes;
    if (run_exec(&r, "update") != CTL_OK) {
        fail(resp, &r, r.err);
    } else {
        /* the replay's progress is in GET .../status ("replay") */
        cJSON *out = shown(&r.res.stored);
        if (r.res.replay_due && api_ops_replay_async(cfg, req->id) < 0)
            api_problem(resp, 503, "unavailable", "The re-dating replay could not start",
                        "the change is stored; start the replay with POST .../replay", NULL);
        else
            set_json(resp, 200, out);
        cJSON_Delete(out);
    }
    run_free(&r);
end:
    free(text);
    free(stored_ref);
    cJSON_Delete(doc);
    cJSON_Delete(patch);
}

/* A command whose JSON output is the body as it is (or wrapped in
 * {"items": ...} with wrap); ok_status on success. */
static void op_json(const lt_config_t *cfg, api_resp_t *resp, unsigned ok_status,
                    int (*cmd)(ctl_t *), int (*cmd_verb)(ctl_t *, const char *), const char *verb,
                    const char *const *args, int nargs)
{
    run_t r;
    if (run_init(&r, cfg) < 0) {
        run_free(&r);
        api_problem(resp, 500, "internal", "Internal error", "out of memory", NULL);
        return;
    }
    for (int i = 0; i < nargs; i++)
        run_arg(&r, args[i]);
    r.rc = cmd ? cmd(&r.ctl) : cmd_verb(&r.ctl, verb);
    run_done(&r);
    if (r.rc != CTL_OK && !r.res.finding) {
        fail(resp, &r, r.err);
    } else {
        cJSON *doc = cJSON_Parse(r.out);
        if (!doc)
            api_problem(resp, 500, "internal", "Internal error", "the command printed no JSON",
                        NULL);
        else
            set_json(resp, ok_status, doc);
        cJSON_Delete(doc);
    }
    run_free(&r);
}

static void op_list(const lt_config_t *cfg, api_resp_t *resp)
{
    run_t r;
    cJSON *arr, *it, *wrap;
    if (run_verb(&r, cfg, "list", NULL, resp) < 0)
        return;
    if (r.rc != CTL_OK) {
        fail(resp, &r, r.err);
    } else if (!(arr = cJSON_Parse(r.out))) {
        api_problem(resp, 500, "internal", "Internal error", "unreadable list", NULL);
    } else {
        cJSON_ArrayForEach(it, arr) redact(it);
        wrap = cJSON_CreateObject();
        cJSON_AddItemToObject(wrap, "items", arr);
        set_json(resp, 200, wrap);
        cJSON_Delete(wrap);
    }
    run_free(&r);
}

static void op_show(const lt_config_t *cfg, const api_req_t *req, api_resp_t *resp)
{
    cJSON *doc = stored_doc(cfg, req->id, resp);
    if (doc) {
        redact(doc);
        set_json(resp, 200, doc);
        cJSON_Delete(doc);
    }
}

static void op_delete(const lt_config_t *cfg, const api_req_t *req, api_resp_t *resp)
{
    run_t r;
    if (run_verb(&r, cfg, "remove", req->id, resp) < 0)
        return;
    if (r.rc != CTL_OK)
        fail(resp, &r, r.err);
    else
        set_body(resp, 204, NULL, NULL);
    run_free(&r);
}

static void op_test(const lt_config_t *cfg, const api_req_t *req, api_resp_t *resp)
{
    run_t r;
    if (run_verb(&r, cfg, "test", req->id, resp) < 0)
        return;
    if (r.rc != CTL_OK) {
        fail(resp, &r, r.res.problem == CTL_P_NOT_FOUND ? r.err : r.out);
    } else {
        cJSON *o = cJSON_CreateObject();
        char *msg = detail_of(r.out);
        cJSON_AddBoolToObject(o, "ok", 1);
        cJSON_AddStringToObject(o, "message", msg ? msg : "");
        set_json(resp, 200, o);
        cJSON_Delete(o);
        free(msg);
    }
    run_free(&r);
}

static void op_sync(const lt_config_t *cfg, const api_req_t *req, api_resp_t *resp)
{
    cJSON *body = body_object(req, resp, 1), *streams, *s;
    const char *args[8];
    char list[128] = "";
    int n = 0;
    if (!body)
        return;
    args[n++] = req->id;
    static const char *const keys[] = {"from", "to"};
    for (int k = 0; k < 2; k++) {
        cJSON *v = cJSON_GetObjectItemCaseSensitive(body, keys[k]);
        if (!v)
            continue;
        if (!cJSON_IsString(v) || strlen(v->valuestring) != 10) {
            api_problem(resp, 400, "validation", "Invalid request", "a day: YYYY-MM-DD", keys[k]);
            goto end;
        }
        args[n++] = k ? "--to" : "--from";
        args[n++] = v->valuestring;
    }
    if ((streams = cJSON_GetObjectItemCaseSensitive(body, "streams"))) {
        size_t used = 0;
        if (!cJSON_IsArray(streams) || !cJSON_GetArraySize(streams)) {
            api_problem(resp, 400, "validation", "Invalid request",
                        "streams: an array of stream names", "streams");
            goto end;
        }
        cJSON_ArrayForEach(s, streams)
        {
            if (!cJSON_IsString(s) || lt_stream_parse(s->valuestring, strlen(s->valuestring)) < 0) {
                api_problem(resp, 400, "validation", "Invalid request",
                            "streams: transactions, orders, customers, purchases or campaigns",
                            "streams");
                goto end;
            }
            used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", used ? "," : "",
                                     s->valuestring);
            if (used >= sizeof(list)) {
                api_problem(resp, 400, "validation", "Invalid request", "streams: too many",
                            "streams");
                goto end;
            }
        }
        args[n++] = "--streams";
        args[n++] = list;
    }
    for (cJSON *it = body->child; it; it = it->next)
        if (strcmp(it->string, "from") && strcmp(it->string, "to") &&
            strcmp(it->string, "streams")) {
            api_problem(resp, 400, "validation", "Invalid request",
                        "unknown field (from, to and streams are known)", it->string);
            goto end;
        }
    op_json(cfg, resp, 202, ctl_sync, NULL, NULL, args, n);
end:
    cJSON_Delete(body);
}

static void op_replay(const lt_config_t *cfg, const api_req_t *req, api_resp_t *resp)
{
    cJSON *doc = stored_doc(cfg, req->id, resp), *o;
    if (!doc)
        return;
    cJSON_Delete(doc);
    if (api_ops_replay_async(cfg, req->id) < 0) {
        api_problem(resp, 503, "unavailable", "The replay could not start", "see the API's log",
                    NULL);
        return;
    }
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", req->id);
    cJSON_AddStringToObject(o, "replay", "started");
    set_json(resp, 202, o);
    cJSON_Delete(o);
}

static void op_reconcile(const lt_config_t *cfg, const api_req_t *req, api_resp_t *resp)
{
    const char *from = MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, "from");
    const char *to = MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, "to");
    if (!from || !to || strlen(from) != 10 || strlen(to) != 10) {
        api_problem(resp, 400, "validation", "Invalid request",
                    "from and to: query parameters, days YYYY-MM-DD", from ? "to" : "from");
        return;
    }
    const char *args[] = {req->id, "--from", from, "--to", to};
    op_json(cfg, resp, 200, ctl_reconcile, NULL, NULL, args, 5);
}

void api_ops_run(const lt_config_t *cfg, const api_req_t *req, api_resp_t *resp)
{
    const char *m = req->method;
    int get = !strcmp(m, "GET"), post = !strcmp(m, "POST");
    switch (req->route) {
    case API_R_INTEGRATIONS:
        if (get)
            op_list(cfg, resp);
        else
            op_create(cfg, req, resp);
        return;
    case API_R_INTEGRATION:
        if (get)
            op_show(cfg, req, resp);
        else if (!strcmp(m, "PATCH"))
            op_patch(cfg, req, resp);
        else
            op_delete(cfg, req, resp);
        return;
    case API_R_TEST: op_test(cfg, req, resp); return;
    case API_R_SYNC: op_sync(cfg, req, resp); return;
    case API_R_REPLAY: op_replay(cfg, req, resp); return;
    case API_R_STATUS_ONE: {
        const char *args[] = {req->id};
        op_json(cfg, resp, 200, ctl_status, NULL, NULL, args, 1);
        return;
    }
    case API_R_RECONCILE: op_reconcile(cfg, req, resp); return;
    case API_R_STATUS: op_json(cfg, resp, 200, ctl_status, NULL, NULL, NULL, 0); return;
    case API_R_DLQ: op_json(cfg, resp, 200, NULL, ctl_dlq, "list", NULL, 0); return;
    case API_R_DLQ_RETRY:
        if (post)
            op_json(cfg, resp, 200, NULL, ctl_dlq, "retry", NULL, 0);
        return;
    default: api_problem(resp, 404, "not-found", "Not found", NULL, NULL);
    }
}

/* ---- replays in the background ---- */

static atomic_int replays_running;

typedef struct {
    const lt_config_t *cfg;
    char id[65];
} replay_arg_t;

static void *replay_main(void *p)
{
    replay_arg_t *a = p;
    run_t r;
    if (run_init(&r, a->cfg) == 0) {
        r.ctl.json = 0;
        r.rc = ctl_replay_start(&r.ctl, a->id);
        run_done(&r);
        if (r.rc == CTL_OK)
            lt_info("replay of %s done", a->id);
        else
            lt_warn("replay of %s failed: %.300s", a->id, r.err ? r.err : "");
    }
    run_free(&r);
    free(a);
    atomic_fetch_sub(&replays_running, 1);
    return NULL;
}

int api_ops_replay_async(const lt_config_t *cfg, const char *id)
{
    replay_arg_t *a = calloc(1, sizeof(*a));
    pthread_attr_t attr;
    pthread_t t;
    int rc;
    if (!a)
        return -1;
    a->cfg = cfg;
    snprintf(a->id, sizeof(a->id), "%s", id);
    atomic_fetch_add(&replays_running, 1);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&t, &attr, replay_main, a);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        atomic_fetch_sub(&replays_running, 1);
        free(a);
        lt_error("cannot start a replay thread for %s", id);
        return -1;
    }
    lt_info("replay of %s started", id);
    return 0;
}

void api_ops_wait_replays(long long timeout_ms)
{
    long long end = lt_clock_mono_ms() + timeout_ms;
    while (atomic_load(&replays_running) > 0 && lt_clock_mono_ms() < end)
        usleep(50000);
}
