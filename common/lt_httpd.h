/* lt_httpd: the small HTTP endpoint of every service (libmicrohttpd):
 * GET /healthz (200 while the process runs), GET /readyz (200 when the
 * ready callback says so, else 503), GET /metrics (lt_metrics text).
 *
 * Slow clients cannot starve the probes: one server thread polls every
 * connection (epoll), each request has a whole-request deadline (not an
 * idle timeout: a byte now and then does not extend it), and when
 * max_conns connections are open a new one closes the oldest instead of
 * waiting for a free slot. See lt_httpd.c for the reasoning. */
#ifndef LT_HTTPD_H
#define LT_HTTPD_H

#include <stddef.h>
#include <sys/socket.h>

#include "lt_config.h"

#define LT_HTTPD_DEFAULT_MAX_CONNS  64
#define LT_HTTPD_DEFAULT_TIMEOUT_MS 5000

typedef struct lt_httpd_s lt_httpd_t;
/* Called from the server thread: return 1 when ready. Must be thread-safe. */
typedef int (*lt_httpd_ready_fn)(void *opaque);

typedef struct {
    const char *bind;     /* IPv4 or IPv6 literal; NULL or "" = 0.0.0.0.
                               "::" listens on IPv6 and IPv4 (dual stack) */
    int port;             /* 0 = any free port */
    unsigned max_conns;   /* open connections; 0 = LT_HTTPD_DEFAULT_MAX_CONNS */
    long long timeout_ms; /* from accept (or the previous response) to the
                               response sent; 0 = LT_HTTPD_DEFAULT_TIMEOUT_MS */
} lt_httpd_opts_t;

/* HTTP_BIND, HTTP_PORT, HTTP_MAX_CONNECTIONS and HTTP_TIMEOUT of cfg; the
 * bind string stays owned by cfg. */
lt_httpd_opts_t lt_httpd_opts_from_config(const lt_config_t *cfg);

/* 0 and *sa filled (port 0) when s is an IPv4 or IPv6 literal, else -1. */
int lt_httpd_parse_bind(const char *s, struct sockaddr_storage *sa);

/* Starts the server thread. NULL with errstr on failure. */
lt_httpd_t *lt_httpd_start(const lt_httpd_opts_t *opts, lt_httpd_ready_fn ready, void *opaque,
                           char *errstr, size_t errlen);
int lt_httpd_port(const lt_httpd_t *h);
/* Connections open now (any thread). */
unsigned lt_httpd_connections(const lt_httpd_t *h);
void lt_httpd_stop(lt_httpd_t *h); /* accepts NULL; joins the thread */

#endif
