/* lt_httpd: /healthz, /readyz and /metrics on one server thread.
 *
 * The probes must answer while slow clients hold connections (issue 12).
 * libmicrohttpd runs without its own thread, on epoll: its select() thread
 * closed every connection whose descriptor passed FD_SETSIZE (1024), the
 * probe's included. serve() drives it and, between two MHD_run_wait()
 * turns, enforces what MHD does not offer:
 *  - a whole-request deadline: MHD_OPTION_CONNECTION_TIMEOUT is an idle
 *    timeout that each received byte restarts, so a client sending a byte
 *    a second holds its connection for ever. Our clock starts at accept
 *    and restarts when a response is complete (keep-alive);
 *  - eviction, not refusal, past max_conns: a cap that refuses lets
 *    max_conns slow clients lock the kubelet out, and an attacker
 *    reconnects faster than a probe comes back. A new connection ends the
 *    oldest one instead, so a probe, always the newest, gets in.
 * No per-IP limit: every probe comes from the kubelet's node address,
 * which is also the source of whatever is SNATed through a NodePort; a
 * per-IP cap would let those connections refuse the probes.
 * Connections are ended with shutdown(2), never close(2): MHD still owns
 * the descriptor, reads end-of-file on its next turn and frees it. Open
 * descriptors stay below max_conns + EVICT_SLACK. */
#include "lt_httpd.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <linux/tcp.h> /* struct tcp_info with tcpi_bytes_received */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "lt_clock.h"
#include "lt_log.h"
#include "lt_metrics.h"

#define TICK_MS 100 /* deadline precision and stop latency */
#define EVICT_SLACK \
    32                            /* MHD's hard cap above max_conns: evicted
                                    sockets not yet freed, accepts of one turn */
#define REQUEST_MEM   (16 * 1024) /* per connection: a request line and headers */
#define LOG_WINDOW_MS 10000       /* at most one MHD message per window */

/* One open connection; owned by the server thread. */
typedef struct conn_s {
    struct conn_s *prev, *next;
    int fd;
    int ended;          /* shut down, out of the list, MHD frees it soon */
    int answering;      /* its request is in: a response is on its way */
    long long start_ms; /* accept, or the end of the last response */
} conn_t;

struct lt_httpd_s {
    struct MHD_Daemon *d;
    lt_httpd_ready_fn ready;
    void *opaque;
    int port;
    unsigned max_conns;
    long long timeout_ms;
    pthread_t thread;
    int running; /* the thread was started */
    atomic_int stop;
    atomic_uint nopen; /* connections MHD holds */
    /* Server thread only (the stopping thread once it has joined it): */
    conn_t *head, *tail; /* live connections, oldest first */
    unsigned nlive;
    long long log_ms;     /* when the last MHD message was logged */
    unsigned log_dropped; /* messages dropped since */
};

static lt_metric_t *m_evicted, *m_deadline;

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
                             void *body, size_t len, enum MHD_ResponseMemoryMode mode)
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

static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
    /* PERSISTENT: the static string outlives the response; never written. */
    return reply(conn, status, "text/plain", (void *)(uintptr_t)text, strlen(text),
                 MHD_RESPMEM_PERSISTENT);
}

static enum MHD_Result reply_metrics(struct MHD_Connection *conn)
{
    size_t len = 0;
    char *text = lt_metrics_render(&len);

    if (!text)
        return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "metrics unavailable\n");
    /* MUST_FREE: the response owns text now */
    return reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4", text, len, MHD_RESPMEM_MUST_FREE);
}

/* libmicrohttpd's own messages, routed to our log, at most one per
 * LOG_WINDOW_MS: each connection a slow client drops or we end logs one,
 * and 1,000 of them must not flood the log. Server thread (or the starting
 * and stopping thread while it does not run). */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    lt_httpd_t *h = cls;
    long long now = lt_clock_mono_ms();
    char msg[512];
    size_t n;

    if (h->log_ms && now - h->log_ms < LOG_WINDOW_MS) {
        h->log_dropped++;
        return;
    }
    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n')
        msg[--n] = '\0';
    if (h->log_dropped)
        lt_warn("httpd: %s (%u more messages in the last %d s)", msg, h->log_dropped,
                LOG_WINDOW_MS / 1000);
    else
        lt_warn("httpd: %s", msg);
    h->log_ms = now;
    h->log_dropped = 0;
}

static void list_append(lt_httpd_t *h, conn_t *c)
{
    c->prev = h->tail;
    c->next = NULL;
    if (h->tail)
        h->tail->next = c;
    else
        h->head = c;
    h->tail = c;
    h->nlive++;
}

static void list_remove(lt_httpd_t *h, conn_t *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        h->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        h->tail = c->prev;
    c->prev = c->next = NULL;
    h->nlive--;
}

/* MHD reads end-of-file on its next turn, closes the socket and calls
 * on_connection(CLOSED), which frees c. */
static void end_conn(lt_httpd_t *h, conn_t *c, lt_metric_t *why)
{
    list_remove(h, c);
    c->ended = 1;
    shutdown(c->fd, SHUT_RDWR);
    lt_metric_add(why, 1);
}

/* What the client has sent: 2 bytes, all read by MHD (a request begun
 * and stalled, or not yet whole), 1 nothing yet, 0 bytes still unread (a
 * request on its way in). */
static int sent_kind(const conn_t *c)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    int unread = 0;
    if (ioctl(c->fd, FIONREAD, &unread) == 0 && unread > 0)
        return 0;
    if (getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
        len >= offsetof(struct tcp_info, tcpi_bytes_received) + sizeof(ti.tcpi_bytes_received) &&
        ti.tcpi_bytes_received == 0)
        return 1;
    return 2;
}

/* The connection a new one ends past max_conns, among those whose request
 * has not come in: the oldest that sent part of a request, all of it read
 * (a slow client); else the oldest that sent nothing; else the oldest.
 * One that is being answered is left to finish: ending it lost a probe
 * whose request was read, when enough slow clients connected before its
 * response was written (1 of 30 probes in security/test_endpoints under
 * load). A new connection that has not sent yet is left too: under a
 * flood of slow clients a connection lives about max_conns / (their
 * connects a second), 6 ms at 10,000, and a probe whose process waited
 * for a CPU between its connect and its send was ended (1 of 30 probes in
 * 1 of 10 runs beside two busy loops). All answering: the new one. */
static conn_t *victim(lt_httpd_t *h)
{
    conn_t *silent = NULL, *unread = NULL;
    for (conn_t *c = h->head; c; c = c->next) {
        if (c->answering)
            continue;
        switch (sent_kind(c)) {
        case 2: return c;
        case 1:
            if (!silent)
                silent = c;
            break;
        default:
            if (!unread)
                unread = c;
        }
    }
    return silent ? silent : unread ? unread : h->tail;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    lt_httpd_t *h = cls;
    conn_t *c = *socket_context;
    const union MHD_ConnectionInfo *info;

    if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        atomic_fetch_sub(&h->nopen, 1);
        if (c && !c->ended)
            list_remove(h, c);
        free(c);
        *socket_context = NULL;
        return;
    }
    atomic_fetch_add(&h->nopen, 1);
    info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!info || !(c = calloc(1, sizeof(*c))))
        return; /* untracked: MHD's idle timeout and hard cap still apply */
    c->fd = info->connect_fd;
    c->start_ms = lt_clock_mono_ms();
    list_append(h, c);
    *socket_context = c;
    if (h->nlive > h->max_conns)
        end_conn(h, victim(h), m_evicted);
}

/* A response went out: a kept-alive connection's next request gets a whole
 * deadline of its own (and moves to the young end of the list). MHD 0.9.75
 * answers our responses with "Connection: close", so this serves a
 * libmicrohttpd that keeps them alive. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    lt_httpd_t *h = cls;
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn_t *c = info ? info->socket_context : NULL;

    if (c)
        c->answering = 0;
    if (!c || c->ended || toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
        return;
    list_remove(h, c);
    c->start_ms = lt_clock_mono_ms();
    list_append(h, c);
}

/* The server thread. The list is oldest first, so the deadline check stops
 * at the first connection still within it. */
static void *serve(void *arg)
{
    lt_httpd_t *h = arg;
    long long now;

    while (!atomic_load(&h->stop)) {
        if (MHD_run_wait(h->d, TICK_MS) != MHD_YES)
            usleep(TICK_MS * 1000); /* logged by MHD; do not spin */
        now = lt_clock_mono_ms();
        while (h->head && now - h->head->start_ms >= h->timeout_ms)
            end_conn(h, h->head, m_deadline);
    }
    return NULL;
}

/* Runs on the server thread; bodies of requests are ignored. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    lt_httpd_t *h = cls;
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn_t *c = info ? info->socket_context : NULL;

    if (c)
        c->answering = 1; /* not to be evicted now (victim) */
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

lt_httpd_opts_t lt_httpd_opts_from_config(const lt_config_t *cfg)
{
    lt_httpd_opts_t o;

    o.bind = lt_config_str(cfg, "HTTP_BIND");
    o.port = (int)lt_config_int(cfg, "HTTP_PORT");
    o.max_conns = (unsigned)lt_config_int(cfg, "HTTP_MAX_CONNECTIONS");
    o.timeout_ms = lt_config_int(cfg, "HTTP_TIMEOUT");
    return o;
}

int lt_httpd_parse_bind(const char *s, struct sockaddr_storage *sa)
{
    struct sockaddr_in *in4 = (struct sockaddr_in *)sa;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;

    memset(sa, 0, sizeof(*sa));
    if (!s || !*s)
        s = "0.0.0.0";
    if (inet_pton(AF_INET, s, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, s, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        return 0;
    }
    memset(sa, 0, sizeof(*sa));
    return -1;
}

/* Fills sa with bind:port and returns the MHD flags the family needs. */
static unsigned listen_addr(int port, struct sockaddr_storage *sa)
{
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;

    if (sa->ss_family == AF_INET) {
        ((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)port);
        return 0;
    }
    in6->sin6_port = htons((uint16_t)port);
    /* "::" serves IPv4 too (IPV6_V6ONLY off); another address is IPv6 only */
    return IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr) ? MHD_USE_DUAL_STACK : MHD_USE_IPv6;
}

lt_httpd_t *lt_httpd_start(const lt_httpd_opts_t *opts, lt_httpd_ready_fn ready, void *opaque,
                           char *errstr, size_t errlen)
{
    lt_httpd_t *h = NULL;
    const union MHD_DaemonInfo *info;
    const char *bind = opts->bind && *opts->bind ? opts->bind : "0.0.0.0";
    struct sockaddr_storage sa;
    unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    unsigned idle_s;

    if (opts->port < 0 || opts->port > 65535) {
        snprintf(errstr, errlen, "http port %d out of range", opts->port);
        return NULL;
    }
    if (lt_httpd_parse_bind(bind, &sa) != 0) {
        snprintf(errstr, errlen, "http bind address \"%.64s\" is not an IPv4 or IPv6 literal",
                 bind);
        return NULL;
    }
    flags |= listen_addr(opts->port, &sa);
    if (!(h = calloc(1, sizeof(*h)))) {
        snprintf(errstr, errlen, "out of memory");
        return NULL;
    }
    h->ready = ready;
    h->opaque = opaque;
    h->max_conns = opts->max_conns ? opts->max_conns : LT_HTTPD_DEFAULT_MAX_CONNS;
    h->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : LT_HTTPD_DEFAULT_TIMEOUT_MS;
    /* MHD's idle timeout only backs up the deadline (untracked connections) */
    idle_s = (unsigned)((h->timeout_ms + 999) / 1000) + 1;
    m_evicted = lt_metric_counter("ltvsync_http_connections_ended_total",
                                  "HTTP connections the endpoint ended", "reason=\"evicted\"");
    m_deadline = lt_metric_counter("ltvsync_http_connections_ended_total",
                                   "HTTP connections the endpoint ended", "reason=\"deadline\"");
    /* the logger first, or MHD prints the options' errors on stderr */
    h->d = MHD_start_daemon(
        flags, (uint16_t)opts->port, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER,
        on_mhd_log, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_CONNECTION,
        on_connection, h, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_CONNECTION_LIMIT,
        h->max_conns + EVICT_SLACK, MHD_OPTION_CONNECTION_TIMEOUT, idle_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)REQUEST_MEM, MHD_OPTION_END);
    if (!h->d) {
        snprintf(errstr, errlen, "cannot listen on HTTP %s%s%s:%d",
                 sa.ss_family == AF_INET6 ? "[" : "", bind, sa.ss_family == AF_INET6 ? "]" : "",
                 opts->port);
        goto fail;
    }
    info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : opts->port;
    if (h->port == 0) {
        snprintf(errstr, errlen, "cannot read the bound HTTP port");
        goto fail;
    }
    if (pthread_create(&h->thread, NULL, serve, h) != 0) {
        snprintf(errstr, errlen, "cannot start the HTTP thread");
        goto fail;
    }
    h->running = 1;
    return h;
fail:
    lt_httpd_stop(h);
    return NULL;
}

int lt_httpd_port(const lt_httpd_t *h)
{
    return h ? h->port : 0;
}

unsigned lt_httpd_connections(const lt_httpd_t *h)
{
    return h ? atomic_load(&h->nopen) : 0;
}

void lt_httpd_stop(lt_httpd_t *h)
{
    if (!h)
        return;
    if (h->running) {
        atomic_store(&h->stop, 1);
        pthread_join(h->thread, NULL);
    }
    if (h->d)
        MHD_stop_daemon(h->d); /* closes the rest: on_connection frees them */
    free(h);
}
