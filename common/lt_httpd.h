/* lt_httpd: the small HTTP endpoint of every service (libmicrohttpd):
 * GET /healthz (200 while the process runs), GET /readyz (200 when the
 * ready callback says so, else 503), GET /metrics (lt_metrics text). */
#ifndef LT_HTTPD_H
#define LT_HTTPD_H

#include <stddef.h>

typedef struct lt_httpd_s lt_httpd_t;
/* Called from the server thread: return 1 when ready. Must be thread-safe. */
typedef int (*lt_httpd_ready_fn)(void *opaque);

/* Listens on 0.0.0.0:port (0 = any free port). NULL with errstr on failure. */
lt_httpd_t *lt_httpd_start(int port, lt_httpd_ready_fn ready, void *opaque,
                           char *errstr, size_t errlen);
int lt_httpd_port(const lt_httpd_t *h);
void lt_httpd_stop(lt_httpd_t *h); /* accepts NULL */

#endif
