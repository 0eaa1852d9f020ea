/* devbroker control port: POST /fault on 127.0.0.1 (libmicrohttpd).
 *
 * Not lt_httpd: that one listens on every interface and ignores request
 * bodies; this port must stay on loopback and read a small JSON body.
 * Replies are JSON: 200 {"ok":true}, else {"error":"<reason>"} with 400
 * (bad fault), 404, 405, 413 (body over DB_BODY_MAX) or 503. */
#include "devbroker.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "lt_log.h"

#define DB_BODY_MAX 4096
#define DB_TOO_BIG  "body over 4096 bytes"

struct db_control_s {
    struct MHD_Daemon *d;
    db_fault_target_t t;
    int port;
};

/* One request's body; owned by MHD's per-request pointer, freed when the
 * request completes. */
typedef struct {
    size_t len;
    int too_big;
    char buf[DB_BODY_MAX];
} db_body_t;

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, void *body, size_t len,
                             enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, mode);
    enum MHD_Result ret;

    if (!resp) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result reply_ok(struct MHD_Connection *conn)
{
    static const char ok[] = "{\"ok\":true}\n";

    /* PERSISTENT: the static string outlives the response; never written. */
    return reply(conn, MHD_HTTP_OK, (void *)(uintptr_t)ok, sizeof(ok) - 1, MHD_RESPMEM_PERSISTENT);
}

/* {"error":reason}; reason is printable text (fault.c never echoes raw
 * input), escaped by cJSON all the same. */
static enum MHD_Result reply_error(struct MHD_Connection *conn, unsigned status, const char *reason)
{
    cJSON *root = cJSON_CreateObject();
    char *txt = NULL;

    if (root && cJSON_AddStringToObject(root, "error", reason))
        txt = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!txt)
        return MHD_NO;
    /* MUST_FREE: the response owns txt now */
    return reply(conn, status, txt, strlen(txt), MHD_RESPMEM_MUST_FREE);
}

/* 1 when the client announced a body larger than the cap. */
static int declared_too_big(struct MHD_Connection *conn)
{
    const char *v =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    char *end;
    unsigned long long n;

    if (!v)
        return 0;
    n = strtoull(v, &end, 10);
    return end == v || *end || n > DB_BODY_MAX;
}

/* Keeps at most DB_BODY_MAX bytes; past that only remembers it overflowed. */
static void append(db_body_t *b, const char *data, size_t len)
{
    if (b->too_big || len > DB_BODY_MAX - b->len) {
        b->too_big = 1;
        return;
    }
    memcpy(b->buf + b->len, data, len);
    b->len += len;
}

/* Runs on the server's one thread: first call (headers) checks the route,
 * later calls collect the body, the last one applies the fault. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    db_control_t *c = cls;
    db_body_t *b = *con_cls;
    char errstr[512];
    int status;

    if (!b) {
        if (strcmp(url, "/fault"))
            return reply_error(conn, MHD_HTTP_NOT_FOUND, "not found: POST /fault");
        if (strcmp(method, "POST"))
            return reply_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                               "method not allowed: POST /fault");
        if (declared_too_big(conn))
            return reply_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, DB_TOO_BIG);
        if (!(b = calloc(1, sizeof(*b))))
            return MHD_NO;
        *con_cls = b; /* freed by on_completed */
        return MHD_YES;
    }
    if (*upload_data_size) {
        append(b, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (b->too_big)
        return reply_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, DB_TOO_BIG);
    status = db_fault_apply(&c->t, b->buf, b->len, errstr, sizeof(errstr));
    return status == 200 ? reply_ok(conn) : reply_error(conn, (unsigned)status, errstr);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    free(*con_cls);
    *con_cls = NULL;
}

/* libmicrohttpd's own errors, routed to our log (thread-safe). */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    size_t n;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n')
        msg[--n] = '\0';
    lt_warn("control: %s", msg);
}

db_control_t *db_control_start(const db_fault_target_t *t, char *errstr, size_t errlen)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = 0};
    const union MHD_DaemonInfo *info;
    db_control_t *c = calloc(1, sizeof(*c));

    if (!c) {
        snprintf(errstr, errlen, "out of memory");
        return NULL;
    }
    c->t = *t;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* MHD_USE_ITC: MHD_stop_daemon wakes the polling thread at once; without
     * it, a devbroker that had served a request took 1.1 s more to exit. */
    c->d =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG, 0, NULL,
                         NULL, on_request, c, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin, MHD_OPTION_NOTIFY_COMPLETED,
                         on_completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)32, MHD_OPTION_END);
    if (!c->d) {
        snprintf(errstr, errlen, "cannot listen on 127.0.0.1");
        goto fail;
    }
    info = MHD_get_daemon_info(c->d, MHD_DAEMON_INFO_BIND_PORT);
    if (!info || !(c->port = info->port)) {
        snprintf(errstr, errlen, "cannot read the bound control port");
        goto fail;
    }
    return c;
fail:
    db_control_stop(c);
    return NULL;
}

int db_control_port(const db_control_t *c)
{
    return c ? c->port : 0;
}

void db_control_stop(db_control_t *c)
{
    if (!c)
        return;
    if (c->d)
        MHD_stop_daemon(c->d);
    free(c);
}
