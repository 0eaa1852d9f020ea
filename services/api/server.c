/* server.c: the API's HTTP side (libmicrohttpd, a thread per connection).
 *
 * Each request is checked before its body is read: route and method (404,
 * 405), bearer token and scope (401, 403), the token's rate (429),
 * Content-Type (415) and Content-Length (413). The body is then collected
 * up to API_MAX_BODY (413 past it) and the operation runs on the
 * connection's own thread (ops.c), so a slow operation (a CRM test, a Kafka
 * write) holds its connection only. Connections are capped
 * (API_MAX_CONNECTIONS) and an idle one is closed after 30 s.
 *
 * Every request is logged (method, path without the query, status, time,
 * token name), never a header or a body: a body may carry a password. The
 * body buffer is wiped before it is freed for the same reason. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "api.h"
#include "lt_clock.h"
#include "lt_cred.h"
#include "lt_httpd.h"
#include "lt_log.h"
#include "lt_metrics.h"
#include "lt_redis.h"

#define IDLE_TIMEOUT_S 30
#define CONN_MEMORY    (32 * 1024) /* request line and headers */

struct api_s {
    struct MHD_Daemon *d;
    const lt_config_t *cfg;
    api_tokens_t *tokens;
    size_t max_body;
    const char *cors; /* "" = none */
    int port;
};

typedef struct {
    long long t0;
    char *body;
    size_t len, cap;
    int answered; /* a response was queued */
    int collecting;
    unsigned status;
    char token[API_TOKEN_NAME_MAX + 1];
    char path[96]; /* for the log: the path (ids only), never the query */
    api_req_t req;
} req_t;

static lt_metric_t *m_req[6]; /* by status class 1xx..5xx; [0] unused */

static void count(unsigned status)
{
    unsigned c = status / 100;
    if (c >= 1 && c <= 5 && m_req[c])
        lt_metric_add(m_req[c], 1);
}

static enum MHD_Result send_resp(api_t *api, struct MHD_Connection *conn, req_t *rq,
                                 api_resp_t *resp, const char *allow, const char *www)
{
    struct MHD_Response *r;
    enum MHD_Result ret;
    const char *origin;
    char num[32];

    r = MHD_create_response_from_buffer(resp->len, resp->body ? resp->body : (void *)"",
                                        resp->body ? MHD_RESPMEM_MUST_FREE
                                                   : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(resp->body);
        return MHD_NO;
    }
    resp->body = NULL; /* the response owns it */
    if (resp->type)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp->type);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    /* the console loads only its own files and is never framed */
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
                            "base-uri 'none'");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (resp->location[0])
        MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, resp->location);
    if (resp->retry_after_s > 0) {
        snprintf(num, sizeof(num), "%lld", resp->retry_after_s);
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, num);
    }
    if (allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    if (www)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, www);
    if (api->cors[0] && (origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin")) &&
        !strcmp(origin, api->cors)) {
        MHD_add_response_header(r, "Access-Control-Allow-Origin", api->cors);
        MHD_add_response_header(r, "Vary", "Origin");
    }
    ret = MHD_queue_response(conn, resp->status, r);
    MHD_destroy_response(r);
    rq->answered = 1;
    rq->status = resp->status;
    return ret;
}

static enum MHD_Result problem(api_t *api, struct MHD_Connection *conn, req_t *rq, unsigned status,
                               const char *slug, const char *title, const char *detail)
{
    api_resp_t resp = {0};
    api_problem(&resp, status, slug, title, detail, NULL);
    return send_resp(api, conn, rq, &resp, NULL, NULL);
}

/* ---- unauthenticated paths ---- */

static int redis_answers(const api_t *api)
{
    char errstr[256];
    lt_redis_t *r =
        lt_redis_new(lt_config_str(api->cfg, "REDIS_URL"), 1000, errstr, sizeof(errstr));
    redisReply *reply = r ? lt_redis_cmd(r, "PING") : NULL;
    int ok = reply && reply->type == REDIS_REPLY_STATUS;
    if (reply)
        freeReplyObject(reply);
    lt_redis_destroy(r);
    return ok;
}

static enum MHD_Result open_path(api_t *api, struct MHD_Connection *conn, req_t *rq,
                                 const char *url, int *handled)
{
    api_resp_t resp = {0};
    const api_asset_t *a;
    *handled = 1;
    if (!strcmp(url, "/healthz")) {
        resp = (api_resp_t){.status = 200, .type = "text/plain", .body = strdup("ok\n")};
    } else if (!strcmp(url, "/readyz")) {
        int ok = redis_answers(api);
        resp = (api_resp_t){.status = ok ? 200 : 503,
                            .type = "text/plain",
                            .body = strdup(ok ? "ready\n" : "not ready: Redis does not answer\n")};
    } else if (!strcmp(url, "/metrics")) {
        size_t len = 0;
        char *text = lt_metrics_render(&len);
        resp = (api_resp_t){.status = text ? 200 : 500,
                            .type = "text/plain; version=0.0.4",
                            .body = text ? text : strdup("metrics unavailable\n")};
    } else if ((a = api_asset(url))) {
        resp =
            (api_resp_t){.status = 200, .type = a->type, .body = malloc(a->len + 1), .len = a->len};
        if (resp.body) {
            memcpy(resp.body, a->data, a->len);
            resp.body[a->len] = '\0';
        }
    } else {
        *handled = 0;
        return MHD_YES;
    }
    if (!resp.body)
        api_problem(&resp, 500, "internal", "Internal error", "out of memory", NULL);
    else if (!resp.len)
        resp.len = strlen(resp.body);
    return send_resp(api, conn, rq, &resp, NULL, NULL);
}

/* ---- the request's first call: everything but the body ---- */

static int json_type(const char *ct, int patch)
{
    size_t n = strcspn(ct, ";");
    while (n > 0 && ct[n - 1] == ' ')
        n--;
    return (n == 16 && !strncasecmp(ct, "application/json", 16)) ||
           (patch && n == 28 && !strncasecmp(ct, "application/merge-patch+json", 28));
}

static enum MHD_Result first_call(api_t *api, struct MHD_Connection *conn, req_t *rq,
                                  const char *url, const char *method)
{
    const char *auth, *tok, *ct, *cl;
    const api_token_t *t;
    size_t toklen;
    long long wait;
    int handled, write;
    api_resp_t resp = {0};

    if (!strcmp(method, "GET") || !strcmp(method, "HEAD")) {
        enum MHD_Result ret = open_path(api, conn, rq, url, &handled);
        if (handled)
            return ret;
    }
    rq->req.route = api_route(url, rq->req.id);
    if (rq->req.route == API_R_NONE || rq->req.route == API_R_V1_UNKNOWN)
        return problem(api, conn, rq, 404, "not-found", "Not found", NULL);
    if (rq->req.route == API_R_OPENAPI && !strcmp(method, "GET")) {
        const api_asset_t *a = api_asset("/v1/openapi.yaml");
        if (!a)
            return problem(api, conn, rq, 404, "not-found", "Not found", NULL);
        resp =
            (api_resp_t){.status = 200, .type = a->type, .body = malloc(a->len + 1), .len = a->len};
        if (!resp.body)
            return problem(api, conn, rq, 500, "internal", "Internal error", "out of memory");
        memcpy(resp.body, a->data, a->len);
        resp.body[a->len] = '\0';
        return send_resp(api, conn, rq, &resp, NULL, NULL);
    }
    if (!api_route_allows(rq->req.route, method)) {
        api_problem(&resp, 405, "method-not-allowed", "Method not allowed", NULL, NULL);
        return send_resp(api, conn, rq, &resp, api_route_allow(rq->req.route), NULL);
    }
    auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (api_bearer(auth, &tok, &toklen) < 0 || !(t = api_tokens_find(api->tokens, tok, toklen))) {
        api_problem(&resp, 401, "unauthorized", "A valid bearer token is required",
                    auth ? "the token is not one of the API's tokens"
                         : "send Authorization: Bearer TOKEN",
                    NULL);
        return send_resp(api, conn, rq, &resp, NULL, "Bearer realm=\"ltvsync\"");
    }
    snprintf(rq->token, sizeof(rq->token), "%s", t->name);
    write = strcmp(method, "GET") != 0;
    if (write && t->scope != API_SCOPE_ADMIN)
        return problem(api, conn, rq, 403, "forbidden", "This token may only read",
                       "the token's scope is read; changes need an admin token");
    if ((wait = api_tokens_take(api->tokens, t, lt_clock_mono_ms())) > 0) {
        api_problem(&resp, 429, "rate-limited", "Too many requests",
                    "this token's rate limit (API_RATE) is exceeded", NULL);
        resp.retry_after_s = (wait + 999) / 1000;
        return send_resp(api, conn, rq, &resp, NULL, NULL);
    }
    if (write &&
        (cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH)) &&
        strtoull(cl, NULL, 10) > api->max_body)
        return problem(api, conn, rq, 413, "too-large", "The body is too large",
                       "the API takes bodies of at most API_MAX_BODY bytes");
    if (write &&
        (ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE)) &&
        !json_type(ct, !strcmp(method, "PATCH")))
        return problem(api, conn, rq, 415, "unsupported-media-type",
                       "The body must be application/json", NULL);
    rq->collecting = 1;
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    api_t *api = cls;
    req_t *rq = *con_cls;
    api_resp_t resp = {0};
    (void)version;

    if (!rq) {
        if (!(rq = calloc(1, sizeof(*rq))))
            return MHD_NO;
        rq->t0 = lt_clock_mono_ms();
        rq->req.method = method;
        snprintf(rq->path, sizeof(rq->path), "%s", url);
        *con_cls = rq;
        return first_call(api, conn, rq, url, method);
    }
    if (rq->answered) { /* answered early: the body is not read */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (rq->len + n > api->max_body) {
            return problem(api, conn, rq, 413, "too-large", "The body is too large",
                           "the API takes bodies of at most API_MAX_BODY bytes");
        }
        if (rq->len + n + 1 > rq->cap) {
            size_t cap = rq->cap ? rq->cap : 1024;
            char *b;
            while (cap < rq->len + n + 1)
                cap *= 2;
            if (!(b = malloc(cap)))
                return MHD_NO;
            if (rq->body) {
                memcpy(b, rq->body, rq->len);
                lt_cred_wipe(rq->body, rq->cap);
                free(rq->body);
            }
            rq->body = b, rq->cap = cap;
        }
        memcpy(rq->body + rq->len, upload_data, n);
        rq->len += n;
        return MHD_YES;
    }
    rq->req.method = method;
    rq->req.body = rq->body ? rq->body : "";
    if (rq->body)
        rq->body[rq->len] = '\0';
    rq->req.body_len = rq->len;
    rq->req.conn = conn;
    api_ops_run(api->cfg, &rq->req, &resp);
    if (!resp.status)
        api_problem(&resp, 500, "internal", "Internal error", NULL, NULL);
    return send_resp(api, conn, rq, &resp, NULL, NULL);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    req_t *rq = *con_cls;
    (void)cls;
    (void)toe;
    if (!rq)
        return;
    (void)conn;
    count(rq->status);
    lt_info("%s %s %u %lld ms token=%s", rq->req.method ? rq->req.method : "-", rq->path,
            rq->status, lt_clock_mono_ms() - rq->t0, rq->token[0] ? rq->token : "-");
    if (rq->body) {
        lt_cred_wipe(rq->body, rq->cap);
        free(rq->body);
    }
    free(rq);
    *con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    size_t n;
    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n')
        msg[--n] = '\0';
    lt_warn("httpd: %s", msg);
}

api_t *api_start(const lt_config_t *cfg, api_tokens_t *tokens, char *errstr, size_t errlen)
{
    api_t *api = calloc(1, sizeof(*api));
    const union MHD_DaemonInfo *info;
    struct sockaddr_storage sa;
    const char *bind = lt_config_str(cfg, "API_BIND");
    int port = (int)lt_config_int(cfg, "API_PORT");
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG;
    static const char *const classes[] = {"", "1xx", "2xx", "3xx", "4xx", "5xx"};

    if (!api) {
        snprintf(errstr, errlen, "out of memory");
        return NULL;
    }
    for (int c = 1; c <= 5; c++) {
        char labels[32];
        snprintf(labels, sizeof(labels), "class=\"%s\"", classes[c]);
        m_req[c] = lt_metric_counter("ltvsync_api_requests_total",
                                     "API requests answered, by status class", labels);
    }
    api->cfg = cfg;
    api->tokens = tokens;
    api->max_body = (size_t)lt_config_int(cfg, "API_MAX_BODY");
    api->cors = lt_config_str(cfg, "API_CORS_ORIGIN") ? lt_config_str(cfg, "API_CORS_ORIGIN") : "";
    if (lt_httpd_parse_bind(bind, &sa) != 0) {
        snprintf(errstr, errlen, "API_BIND \"%.64s\" is not an IPv4 or IPv6 literal", bind);
        free(api);
        return NULL;
    }
    if (sa.ss_family == AF_INET) {
        ((struct sockaddr_in *)&sa)->sin_port = htons((uint16_t)port);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&sa;
        in6->sin6_port = htons((uint16_t)port);
        flags |= IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr) ? MHD_USE_DUAL_STACK : MHD_USE_IPv6;
    }
    api->d = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, api, MHD_OPTION_SOCK_ADDR, &sa,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)lt_config_int(cfg, "API_MAX_CONNECTIONS"),
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)CONN_MEMORY, MHD_OPTION_NOTIFY_COMPLETED, on_completed, api,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, api, MHD_OPTION_END);
    if (!api->d) {
        snprintf(errstr, errlen, "cannot listen on %s port %d", bind, port);
        free(api);
        return NULL;
    }
    info = MHD_get_daemon_info(api->d, MHD_DAEMON_INFO_BIND_PORT);
    api->port = info ? info->port : port;
    return api;
}

int api_port(const api_t *api)
{
    return api->port;
}

void api_stop(api_t *api)
{
    if (!api)
        return;
    MHD_stop_daemon(api->d);
    free(api);
}
