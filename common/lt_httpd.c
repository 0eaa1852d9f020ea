/* lt_httpd: /healthz, /readyz and /metrics on libmicrohttpd's own thread. */
#include "lt_httpd.h"

#include <microhttpd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_log.h"
#include "lt_metrics.h"

struct lt_httpd_s {
    struct MHD_Daemon *d;
    lt_httpd_ready_fn  ready;
    void              *opaque;
    int                port;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status,
                             const char *type, void *body, size_t len,
                             enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, mode);
    enum MHD_Result ret;

    if (!resp) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned status,
                                  const char *text)
{
    /* PERSISTENT: the static string outlives the response; never written. */
    return reply(conn, status, "text/plain", (void *)(uintptr_t)text,
                 strlen(text), MHD_RESPMEM_PERSISTENT);
}

static enum MHD_Result reply_metrics(struct MHD_Connection *conn)
{
    size_t len = 0;
    char *text = lt_metrics_render(&len);

    if (!text)
        return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "metrics unavailable\n");
    /* MUST_FREE: the response owns text now */
    return reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4", text, len,
                 MHD_RESPMEM_MUST_FREE);
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
    lt_warn("httpd: %s", msg);
}

/* Runs on the server thread; bodies of requests are ignored. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    lt_httpd_t *h = cls;

    if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
    if (!strcmp(url, "/healthz"))
        return reply_text(conn, MHD_HTTP_OK, "ok\n");
    if (!strcmp(url, "/readyz")) {
        if (!h->ready || h->ready(h->opaque))
            return reply_text(conn, MHD_HTTP_OK, "ready\n");
        return reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "not ready\n");
    }
    if (!strcmp(url, "/metrics"))
        return reply_metrics(conn);
    return reply_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
}

lt_httpd_t *lt_httpd_start(int port, lt_httpd_ready_fn ready, void *opaque,
                           char *errstr, size_t errlen)
{
    lt_httpd_t *h = NULL;
    const union MHD_DaemonInfo *info;

    if (port < 0 || port > 65535) {
        snprintf(errstr, errlen, "http port %d out of range", port);
        return NULL;
    }
    if (!(h = calloc(1, sizeof(*h)))) {
        snprintf(errstr, errlen, "out of memory");
        return NULL;
    }
    h->ready = ready;
    h->opaque = opaque;
    h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
                            (uint16_t)port, NULL, NULL, on_request, h,
                            MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                            MHD_OPTION_END);
    if (!h->d) {
        snprintf(errstr, errlen, "cannot listen on HTTP port %d", port);
        goto fail;
    }
    info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : port;
    if (h->port == 0) {
        snprintf(errstr, errlen, "cannot read the bound HTTP port");
        goto fail;
    }
    return h;
fail:
    lt_httpd_stop(h);
    return NULL;
}

int lt_httpd_port(const lt_httpd_t *h)
{
    return h ? h->port : 0;
}

void lt_httpd_stop(lt_httpd_t *h)
{
    if (!h)
        return;
    if (h->d)
        MHD_stop_daemon(h->d);
    free(h);
}
