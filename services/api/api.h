/* ltvsync-api: the control API (JSON over HTTP) and the operator console.
 *
 * Every operation runs one of ltvctl's commands (services/ctl, ltctl_core)
 * with the request's fields as its arguments and memory streams as its
 * output, so validation and effects are ltvctl's own (see ops.c). The HTTP
 * side (server.c) is libmicrohttpd with a thread per connection: an
 * operation may wait for Kafka, Redis or one CRM call, and a blocked
 * operation must not hold up the others or the probes. */
#ifndef LT_API_H
#define LT_API_H

#include <pthread.h>
#include <stddef.h>

#include "lt_config.h"
#include "lt_err.h"

/* ---- tokens (auth.c) ---- */

#define API_TOKENS_MAX      64
#define API_TOKEN_NAME_MAX  32
#define API_TOKEN_MIN       16 /* characters: shorter tokens are refused */
#define API_TOKEN_MAX       256
#define API_TOKENS_FILE_MAX 65536

typedef enum { API_SCOPE_READ = 1, API_SCOPE_ADMIN = 2 } api_scope_t;

typedef struct {
    char name[API_TOKEN_NAME_MAX + 1];
    api_scope_t scope;
    unsigned char token[API_TOKEN_MAX];
    size_t len;
    /* token bucket (under api_tokens_t.mu) */
    double tokens;
    long long refilled_ms;
} api_token_t;

typedef struct {
    api_token_t items[API_TOKENS_MAX];
    size_t count;
    double rate, burst; /* requests per second; bucket size */
    pthread_mutex_t mu;
} api_tokens_t;

/* Parses a tokens file's text: lines "NAME SCOPE TOKEN" (NAME
 * [A-Za-z0-9_.-]{1,32}, SCOPE read or admin, TOKEN 16..256 printable
 * non-space characters), '#' comment lines and blank lines. Names and tokens
 * must be unique. Errors name the line, never a token. Pure. */
lt_err_t api_tokens_parse(api_tokens_t *t, const char *text, size_t len, char *errstr,
                          size_t errlen);
/* Reads the file (at most API_TOKENS_FILE_MAX bytes) and parses it. */
lt_err_t api_tokens_load(api_tokens_t *t, const char *path, char *errstr, size_t errlen);
void api_tokens_set_rate(api_tokens_t *t, double per_second);
void api_tokens_destroy(api_tokens_t *t);

/* The token whose value equals the given one, or NULL. Every token is
 * compared in full in constant time (no early exit on a match or on the
 * first differing byte), so timing tells nothing about any token. */
const api_token_t *api_tokens_find(const api_tokens_t *t, const char *value, size_t len);
/* Takes one request from tok's bucket at now_ms: 0, or the milliseconds
 * until one is available (for Retry-After). Thread-safe. */
long long api_tokens_take(api_tokens_t *t, const api_token_t *tok, long long now_ms);

/* The token of an "Authorization: Bearer TOKEN" header value: *out points
 * into header, *len its length; -1 when the header is not of that form. */
int api_bearer(const char *header, const char **out, size_t *len);

/* ---- routes (route.c) ---- */

typedef enum {
    API_R_NONE = 0,
    API_R_INTEGRATIONS, /* /v1/integrations */
    API_R_INTEGRATION,  /* /v1/integrations/{id} */
    API_R_TEST,         /* /v1/integrations/{id}/test */
    API_R_SYNC,         /* /v1/integrations/{id}/sync */
    API_R_REPLAY,       /* /v1/integrations/{id}/replay */
    API_R_STATUS_ONE,   /* /v1/integrations/{id}/status */
    API_R_RECONCILE,    /* /v1/integrations/{id}/reconcile */
    API_R_STATUS,       /* /v1/status */
    API_R_DLQ,          /* /v1/dlq */
    API_R_DLQ_RETRY,    /* /v1/dlq/retry */
    API_R_OPENAPI,      /* /v1/openapi.yaml */
    API_R_V1_UNKNOWN,   /* any other /v1/... path */
} api_route_t;

/* Matches url (the path, without the query) to a route; for the
 * {id} routes copies the id into id (which must satisfy
 * lt_integration_id_valid and not start with '-', else API_R_V1_UNKNOWN).
 * Pure. */
api_route_t api_route(const char *url, char id[65]);
/* The methods a route allows, as "GET, POST" (for 405's Allow header);
 * 1 when method is one of them. */
const char *api_route_allow(api_route_t r);
int api_route_allows(api_route_t r, const char *method);

/* ---- server and operations ---- */

typedef struct api_s api_t;

/* server.c: listens on API_BIND:API_PORT (a thread per connection). */
api_t *api_start(const lt_config_t *cfg, api_tokens_t *tokens, char *errstr, size_t errlen);
int api_port(const api_t *api);
void api_stop(api_t *api); /* accepts NULL */

/* One request as the operations see it. */
typedef struct {
    const char *method;
    api_route_t route;
    char id[65];
    const char *body; /* NUL-terminated; "" when none */
    size_t body_len;
    void *conn; /* struct MHD_Connection *, for query arguments */
} api_req_t;

/* One response: status, content type, body (malloc'd, owned), and an
 * optional Location. */
typedef struct {
    unsigned status;
    const char *type;
    char *body;
    size_t len;
    char location[128];
    long long retry_after_s; /* > 0: a Retry-After header */
} api_resp_t;

/* ops.c: runs the operation of req into resp (always filled). */
void api_ops_run(const lt_config_t *cfg, const api_req_t *req, api_resp_t *resp);
/* A problem details document (RFC 9457) into resp; field may be NULL. */
void api_problem(api_resp_t *resp, unsigned status, const char *slug, const char *title,
                 const char *detail, const char *field);
/* Starts a replay of id in the background (a thread that supervises the
 * normalizer child, as `ltvctl replay` does); 0, or -1 when it could not
 * start. api_ops_wait_replays waits up to timeout_ms for them to end. */
int api_ops_replay_async(const lt_config_t *cfg, const char *id);
void api_ops_wait_replays(long long timeout_ms);

/* Embedded files (console, OpenAPI document): NULL when absent. */
typedef struct {
    const char *path; /* "/", "/console.js", ... */
    const char *type;
    const unsigned char *data;
    size_t len;
} api_asset_t;
const api_asset_t *api_asset(const char *path);

#endif
