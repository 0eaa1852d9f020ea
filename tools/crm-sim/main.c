/* crm-sim: command line, HTTP server (libmicrohttpd, one thread per
 * connection so latency sleeps never block other clients) and dispatch. */
#include "sim.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_URI      16384
#define MAX_REQ_BODY (1 << 20)

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

/* Per-request state, created in the URI log callback, freed when done. */
typedef struct {
    char *uri, *body;
    size_t blen, bcap;
    int seen, sim, path, counted, reject, too_big;
    cs_ledger_t *acct; /* --accounts > 1: the account's ledger it is counted in, until it ends */
} req_t;

typedef struct {
    const cs_opts_t *o;
} server_t;

static const char HTML_503[] =
    "<html><head><title>503 Service Temporarily Unavailable</title></head>"
    "<body><center><h1>503 Service Temporarily Unavailable</h1></center></body></html>";
static const char BUSY[] = "{\"result\":\"ERROR\",\"message\":\"Database busy, try again\"}";
static const char TOO_MANY[] = "{\"result\":\"ERROR\",\"message\":\"Too many requests\"}";

static void usage(FILE *f)
{
    fputs("usage: crm-sim --port N --port-file FILE --seed S --customers C --start YYYY-MM-DD\n"
          "               --days D --timezone ZONE --currency CODE --login-id U --password P\n"
          "               [--latency-ms L] [--max-rps R] [--max-in-flight K] [--fault-rate X]\n"
          "               [--dump FILE] [--deny-endpoint PATH]... [--ip-deny]\n"
          "               [--counts-as-strings] [--empty-past-last-page]\n"
          "               [--accounts N] [--account-size I=C]...\n"
          "A Konnektive-compatible query API on 127.0.0.1 over a seeded synthetic account\n"
          "(with --accounts N > 1: accounts acct-1..acct-N, one password).\n"
          "See tools/crm-sim/README.md.\n",
          f);
}

/* ---- HTTP plumbing ---- */

static enum MHD_Result queue(struct MHD_Connection *c, unsigned status, struct MHD_Response *resp)
{
    if (!resp)
        return MHD_NO;
    enum MHD_Result rc = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result send_body(struct MHD_Connection *c, unsigned status, const char *ctype,
                                 char *body, size_t len, int owned, const char *retry_after)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, body, owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        if (owned)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (retry_after)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, retry_after);
    return queue(c, status, resp);
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, char *body)
{
    if (!body)
        return send_body(c, 500, "text/plain", (char *)(uintptr_t) "out of memory", 13, 0, NULL);
    return send_body(c, status, "application/json", body, strlen(body), 1, NULL);
}

static void peer_of(struct MHD_Connection *c, char *out, size_t len)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(out, len, "unknown");
    if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)ci->client_addr)->sin_addr,
                  out, (socklen_t)len);
}

/* Query string of the raw URI, then a form body: the later value wins. */
static int gather_params(struct MHD_Connection *c, const req_t *r, cs_params_t *ps)
{
    const char *q = strchr(r->uri, '?');
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (q && cs_params_parse(ps, q + 1, strlen(q + 1)) != 0)
        return -1;
    if (r->blen && (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0))
        return cs_params_parse(ps, r->body, r->blen);
    return 0;
}

static int path_index(const char *url)
{
    for (int i = 0; i < CS_NPATHS; i++)
        if (strcmp(url, cs_api_paths[i]) == 0)
            return i;
    return -1;
}

/* Hostile answers that replace the whole answer (POST /_sim/fault); 1 when
 * one was given (*res set). */
static int hostile_answer(struct MHD_Connection *c, const cs_hostile_t *h, enum MHD_Result *res)
{
    int mode;
    struct MHD_Response *resp;
    if (h->modes & CS_H_BIT(CS_H_RETRY_AFTER)) {
        cs_hostile_tally(h, CS_H_BIT(CS_H_RETRY_AFTER));
        if (h->retry_status == 503)
            *res = send_body(c, 503, "text/html", (char *)(uintptr_t)HTML_503, sizeof(HTML_503) - 1,
                             0, h->retry_after);
        else
            *res = send_body(c, (unsigned)h->retry_status, "application/json",
                             (char *)(uintptr_t)TOO_MANY, sizeof(TOO_MANY) - 1, 0, h->retry_after);
        return 1;
    }
    if (!(resp = cs_hostile_body(h, &mode)))
        return 0;
    cs_hostile_tally(h, CS_H_BIT(mode));
    *res = queue(c, 200, resp);
    return 1;
}

/* The steps of api_request after the form is read; ps NULL: too large.
 * t: the account (NULL with --accounts > 1 when the loginId names none: no
 * hostile mode, the process's counters only, an auth failure). */
static enum MHD_Result api_answer(server_t *sv, struct MHD_Connection *c, int path,
                                  const cs_params_t *ps, cs_tenant_t *t)
{
    cs_hostile_t h;
    enum MHD_Result res;
    char peer[64];
    int auth_failed = 0;
    cs_ledger_t *acct = cs_tenant_ledger(t);
    const cs_opts_t *o = t ? &t->o : sv->o;
    char *body = NULL;
    cs_hostile_resolve(t ? cs_tenant_hostile(t, 0) : NULL, path, ps, &h);
    if ((h.modes & CS_H_BIT(CS_H_HANG)) && cs_hostile_hang(c, &h) != 0)
        return MHD_NO; /* client gone, cap reached or stopping: close, no answer */
    cs_limits_sleep();
    if (cs_hostile_latency(&h) != 0)
        return MHD_NO;
    int fault = cs_limits_fault(acct);
    if (fault == CS_FAULT_RESET)
        return MHD_NO; /* MHD closes the connection without a response */
    if (fault == CS_FAULT_503)
        return send_body(c, 503, "text/html", (char *)(uintptr_t)HTML_503, sizeof(HTML_503) - 1, 0,
                         NULL);
    if (fault == CS_FAULT_BUSY)
        return send_body(c, 200, "application/json", (char *)(uintptr_t)BUSY, sizeof(BUSY) - 1, 0,
                         NULL);
    if (hostile_answer(c, &h, &res))
        return res;
    if (!ps)
        return send_body(c, 413, "text/plain", (char *)(uintptr_t) "request too large", 17, 0,
                         NULL);
    peer_of(c, peer, sizeof(peer));
    if (!cs_api_check(o, t ? o->login_id : NULL, path, ps, peer, &h, &auth_failed, &body)) {
        cs_account_t *a = cs_tenant_account(t); /* generated here on first use */
        if (!a)
            return send_body(c, 500, "text/plain", (char *)(uintptr_t) "out of memory", 13, 0,
                             NULL);
        body = cs_api_query(a, path, ps, &h);
    }
    if (auth_failed)
        cs_limits_auth_failure(acct);
    size_t len = body ? strlen(body) : 0;
    if (body && fault == CS_FAULT_TRUNCATE)
        len = len > 1 ? len / 2 : len;
    if (body && (h.modes & CS_H_BIT(CS_H_DRIP))) {
        cs_hostile_tally(&h, h.hit | CS_H_BIT(CS_H_DRIP));
        return queue(c, 200, cs_hostile_drip(body, len, h.drip_ms));
    }
    cs_hostile_tally(&h, h.hit);
    if (!body)
        return send_json(c, 200, body);
    return send_body(c, 200, "application/json", body, len, 1, NULL);
}

/* Order: --max-rps / --max-in-flight 429; the form is read (a "when" scope
 * is matched on it; a request too large matches none); hang; --latency-ms,
 * then the run-time latency; --fault-rate; retry_after, huge_body,
 * deep_json, wide_json; 413 for a request too large; the real answer
 * (account settings, total_results, oversized_row), cut by a truncate
 * fault; drip. With --accounts > 1 the form is read first: its loginId
 * names the account whose limits give the 429. */
static enum MHD_Result api_request(server_t *sv, struct MHD_Connection *c, req_t *r)
{
    cs_params_t ps = {0};
    cs_tenant_t *t = cs_tenant_first();
    enum MHD_Result res;
    if (r->reject)
        return send_body(c, 429, "application/json", (char *)(uintptr_t)TOO_MANY,
                         sizeof(TOO_MANY) - 1, 0, "1");
    int too_big = r->too_big || gather_params(c, r, &ps) != 0;
    if (cs_tenants_n() > 1) {
        t = too_big ? NULL : cs_tenant_login(&ps);
        r->acct = cs_tenant_ledger(t);
        if (r->acct && cs_ledger_begin(r->acct, r->path, t->login)) {
            cs_params_free(&ps);
            return send_body(c, 429, "application/json", (char *)(uintptr_t)TOO_MANY,
                             sizeof(TOO_MANY) - 1, 0, "1");
        }
    }
    res = api_answer(sv, c, r->path, too_big ? NULL : &ps, t);
    cs_params_free(&ps);
    return res;
}

static enum MHD_Result sim_error(struct MHD_Connection *c, unsigned status, const char *msg)
{
    cJSON *root = cJSON_CreateObject();
    char *out = NULL;
    if (root) {
        cJSON_AddStringToObject(root, "result", "ERROR");
        cJSON_AddStringToObject(root, "message", msg);
        out = cJSON_PrintUnformatted(root);
        cJSON_Delete(root);
    }
    return send_json(c, status, out);
}

/* ?account=ID of a /_sim/ URI: 0 with *t the account it names, or when
 * absent the one account (N = 1) or NULL (N > 1: the process); -1 when it
 * names no account. */
static int selector(const req_t *r, cs_tenant_t **t)
{
    cs_params_t ps = {0};
    const char *q = strchr(r->uri, '?');
    const cs_param_t *p;
    int rc = 0;
    *t = cs_tenants_n() == 1 ? cs_tenant_first() : NULL;
    if (q && cs_params_parse(&ps, q + 1, strlen(q + 1)) == 0 &&
        (p = cs_params_get(&ps, "account")) && !(*t = cs_tenant_named(p->val, p->vlen)))
        rc = -1;
    cs_params_free(&ps);
    return rc;
}

/* GET /_sim/dump: the account's dump document (generated first if need be). */
static enum MHD_Result sim_dump(struct MHD_Connection *c, cs_tenant_t *t)
{
    cs_account_t *a = cs_tenant_account(t);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = a ? open_memstream(&buf, &len) : NULL;
    int rc = -1;
    if (f) {
        pthread_rwlock_rdlock(&a->lock);
        rc = cs_dump_to(a, f);
        pthread_rwlock_unlock(&a->lock);
        if (fclose(f) != 0)
            rc = -1;
    }
    if (rc != 0) {
        free(buf);
        return send_body(c, 500, "text/plain", (char *)(uintptr_t) "out of memory", 13, 0, NULL);
    }
    return send_body(c, 200, "application/json", buf, len, 1, NULL);
}

/* Every /_sim/ endpoint takes ?account=ID; with --accounts > 1 all but
 * stats need it (stats without it: the process's counters). */
static enum MHD_Result sim_request(server_t *sv, struct MHD_Connection *c, const char *url,
                                   const char *method, req_t *r)
{
    int status = 200;
    cs_tenant_t *t;
    (void)sv;
    int get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
    int stats = get && strcmp(url, "/_sim/stats") == 0;
    int fault = (get || post) && strcmp(url, "/_sim/fault") == 0;
    int mutate = post && strcmp(url, "/_sim/mutate") == 0;
    int dump = get && strcmp(url, "/_sim/dump") == 0;
    if (!stats && !fault && !mutate && !dump)
        return send_body(c, 404, "text/plain", (char *)(uintptr_t) "not found", 9, 0, NULL);
    if (selector(r, &t) != 0)
        return sim_error(c, 404, "unknown account");
    if (stats)
        return send_json(c, 200, cs_tenants_stats(t));
    if (!t)
        return sim_error(c, 400, "which account? add ?account=acct-1..acct-N");
    if (dump)
        return sim_dump(c, t);
    if (fault && get)
        return send_json(c, 200, cs_hostile_get(cs_tenant_hostile(t, 0)));
    if (r->too_big)
        return send_body(c, 413, "text/plain", (char *)(uintptr_t) "request too large", 17, 0,
                         NULL);
    if (fault) {
        cs_hstate_t *hs = cs_tenant_hostile(t, 1);
        if (!hs)
            return send_body(c, 500, "text/plain", (char *)(uintptr_t) "out of memory", 13, 0,
                             NULL);
        char *body = cs_hostile_set(hs, r->body ? r->body : "", r->blen, &status);
        return send_json(c, (unsigned)status, body);
    }
    cs_account_t *a = cs_tenant_account(t);
    if (!a)
        return send_body(c, 500, "text/plain", (char *)(uintptr_t) "out of memory", 13, 0, NULL);
    char *body = cs_mutate(a, r->body ? r->body : "", r->blen, &status);
    return send_json(c, (unsigned)status, body);
}

static void append_body(req_t *r, const char *data, size_t n)
{
    if (r->too_big || r->blen + n > MAX_REQ_BODY) {
        r->too_big = 1;
        return;
    }
    if (r->blen + n + 1 > r->bcap) {
        size_t ncap = (r->blen + n + 1) * 2;
        char *nb = realloc(r->body, ncap);
        if (!nb) {
            r->too_big = 1;
            return;
        }
        r->body = nb, r->bcap = ncap;
    }
    memcpy(r->body + r->blen, data, n);
    r->blen += n;
    r->body[r->blen] = '\0';
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    server_t *sv = cls;
    req_t *r = *con_cls;
    (void)version;
    if (!r)
        return MHD_NO;
    if (!r->seen) {
        r->seen = 1;
        r->sim = strncmp(url, "/_sim/", 6) == 0;
        r->path = path_index(url);
        if (!r->sim && r->path >= 0) {
            r->counted = 1;
            r->reject = cs_limits_begin(r->path);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        append_body(r, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->sim)
        return sim_request(sv, c, url, method, r);
    if (r->path < 0)
        return send_body(c, 404, "text/html", (char *)(uintptr_t) "<html>Not Found</html>", 22, 0,
                         NULL);
    /* A request stops counting as in flight once its answer is handed to the
   * server, not when the last byte has left: a client may already have the
   * answer (and start its next request) before MHD reports completion. */
    enum MHD_Result res = api_request(sv, c, r);
    if (r->counted) {
        cs_limits_end();
        r->counted = 0;
    }
    if (r->acct) {
        cs_ledger_end(r->acct);
        r->acct = NULL;
    }
    return res;
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    req_t *r = calloc(1, sizeof(*r));
    (void)cls, (void)c;
    if (!r)
        return NULL;
    size_t n = strnlen(uri, MAX_URI);
    r->too_big = n >= MAX_URI;
    r->uri = strndup(uri, n);
    if (!r->uri) {
        free(r);
        return NULL;
    }
    return r;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    req_t *r = *con_cls;
    (void)cls, (void)c, (void)toe;
    if (!r)
        return;
    if (r->counted)
        cs_limits_end();
    if (r->acct)
        cs_ledger_end(r->acct);
    free(r->uri);
    free(r->body);
    free(r);
    *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    (void)cls, (void)socket_context;
    if (toe != MHD_CONNECTION_NOTIFY_STARTED)
        return;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    int one = 1;
    if (ci)
        setsockopt(ci->connect_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int write_port_file(const char *path, int port)
{
    char tmp[4096];
    FILE *f;
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp) || !(f = fopen(tmp, "w")))
        return -1;
    int ok = fprintf(f, "%d\n", port) > 0;
    if (fclose(f) != 0 || !ok)
        return -1;
    return rename(tmp, path);
}

static struct MHD_Daemon *start_server(server_t *sv, int port)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG,
        (uint16_t)port, NULL, NULL, on_request, sv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)1000, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)300,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)512, MHD_OPTION_END);
}

static int run(const cs_opts_t *o)
{
    char err[256];
    server_t sv = {o};
    struct MHD_Daemon *d = NULL;
    int rc = 1;
    if (cs_tenants_init(o, err, sizeof(err)) != 0) {
        fprintf(stderr, "crm-sim: %s\n", err);
        goto end;
    }
    cs_limits_init(o);
    cs_hostile_init(o->seed);
    if (!(d = start_server(&sv, o->port))) {
        fprintf(stderr, "crm-sim: cannot listen on 127.0.0.1:%d\n", o->port);
        goto end;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    int port = di ? di->port : o->port;
    if (o->port_file && write_port_file(o->port_file, port) != 0) {
        fprintf(stderr, "crm-sim: cannot write the port file %s\n", o->port_file);
        goto end;
    }
    cs_account_t *a = cs_tenants_n() == 1 ? cs_tenant_first()->a : NULL;
    if (a)
        printf("crm-sim: listening on 127.0.0.1:%d customers=%zu orders=%zu transactions=%zu "
               "purchases=%zu timezone=%s currency=%s\n",
               port, a->ncustomers, a->norders, a->ntxns, a->npurchases, o->timezone, o->currency);
    else
        printf("crm-sim: listening on 127.0.0.1:%d accounts=%d (acct-1..acct-%d, generated %s) "
               "customers=%d days=%d timezone=%s currency=%s\n",
               port, o->accounts, o->accounts, o->dump ? "at start-up" : "on first use",
               o->customers, o->days, o->timezone, o->currency);
    fflush(stdout);
    while (!g_stop) {
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
    }
    rc = 0;
end:
    cs_hostile_stop(); /* ends hung, dripping and slowed requests first */
    if (d)
        MHD_stop_daemon(d);
    cs_limits_shutdown();
    cs_tenants_destroy();
    return rc;
}

int main(int argc, char **argv)
{
    cs_opts_t o;
    char err[256];
    struct sigaction sa;
    int p = cs_cli_parse(argc, argv, &o, err, sizeof(err));
    if (p == 2) {
        printf("crm-sim %s\n", LTVSYNC_VERSION);
        return 0;
    }
    if (p != 0) {
        if (p < 0)
            fprintf(stderr, "crm-sim: %s\n", err);
        usage(p < 0 ? stderr : stdout);
        return p < 0 ? 2 : 0;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return run(&o);
}
