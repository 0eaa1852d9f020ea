/* lt_http: a libcurl client for the CRM: keep-alive, connect and total
 * timeouts, a cap on body size, form POST with every parameter encoded, TLS
 * verification always on. The first (root-cause) curl error is kept.
 *
 * One lt_http_t per thread. Error texts never contain the request body, so a
 * password in the form cannot leak through them. */
#ifndef LT_HTTP_H
#define LT_HTTP_H

#include <stddef.h>
#include "lt_err.h"

typedef struct {
    long connect_timeout_ms; /* default 10000 */
    long timeout_ms;         /* total, default 120000 */
    size_t max_body;         /* bytes; larger bodies fail, default 64 MiB */
    const char *ca_file;     /* optional extra CA bundle; NULL = system */
    const char *user_agent;  /* NULL = "ltvsync/<version>" */
} lt_http_opts_t;

typedef struct {
    const char *name;
    const char *value;
} lt_form_field_t;

typedef struct {
    long status; /* HTTP status, 0 when no response */
    char *body;  /* NUL-terminated copy, caller frees via lt_http_resp_release */
    size_t len;
    long retry_after_s; /* from Retry-After (seconds form), -1 when absent */
    char content_type[64];
} lt_http_resp_t;

typedef struct lt_http_s lt_http_t;

lt_http_t *lt_http_new(const lt_http_opts_t *opts);
void lt_http_destroy(lt_http_t *h); /* accepts NULL */

/* POSTs fields as application/x-www-form-urlencoded (each name and value
 * percent-encoded). Returns LT_OK when a response arrived (any status; the
 * caller classifies), LT_ERR_RETRIABLE for transport failures, timeouts and
 * bodies over max_body, with curl's first error in errstr. */
lt_err_t lt_http_post_form(lt_http_t *h, const char *url, const lt_form_field_t *fields,
                           size_t nfields, lt_http_resp_t *resp, char *errstr, size_t errlen);
/* A gate runs once the connection is ready (connected or reused, TLS done)
 * and just before the request's first byte is written; curl calls it again
 * if it retries on a fresh connection. Non-zero aborts the transfer (the
 * call then fails with LT_ERR_RETRIABLE; the gate's owner knows why). The
 * fetcher takes its CRM limit grant here, so that connecting and the TLS
 * handshake never sit between a grant and the request it paid for. */
typedef int (*lt_http_gate_fn)(void *arg);
lt_err_t lt_http_post_form_gated(lt_http_t *h, const char *url, const lt_form_field_t *fields,
                                 size_t nfields, lt_http_gate_fn gate, void *gate_arg,
                                 lt_http_resp_t *resp, char *errstr, size_t errlen);
/* Plain GET (for /_sim/ endpoints and tests). */
lt_err_t lt_http_get(lt_http_t *h, const char *url, lt_http_resp_t *resp, char *errstr,
                     size_t errlen);
void lt_http_resp_release(lt_http_resp_t *resp);

/* Encodes fields into an x-www-form-urlencoded string; caller frees. */
char *lt_http_form_encode(const lt_form_field_t *fields, size_t nfields);

#endif
