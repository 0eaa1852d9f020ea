/* lt_http: libcurl easy handle per lt_http_t; see lt_http.h.
 *
 * The handle is reset (curl_easy_reset keeps the connection cache) and fully
 * re-configured before each request, so one request's options never leak into
 * the next while keep-alive connections are reused. */
#include "lt_http.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <curl/curl.h>

#define LT_HTTP_DEF_CONNECT_MS 10000L
#define LT_HTTP_DEF_TIMEOUT_MS 120000L
#define LT_HTTP_DEF_MAX_BODY   ((size_t)64 << 20)

struct lt_http_s {
    CURL *curl;
    long connect_timeout_ms;
    long timeout_ms;
    size_t max_body;
    char *ca_file;    /* owned copy or NULL */
    char *user_agent; /* owned copy */
    char errbuf[CURL_ERROR_SIZE];
};

/* Per-request receive state, filled by the write and header callbacks. */
typedef struct {
    char *buf;
    size_t len, cap, max;
    int too_big;
    long retry_after_s;
} lt_http_rx_t;

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_OK;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

lt_http_t *lt_http_new(const lt_http_opts_t *opts)
{
    lt_http_t *h = NULL;

    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return NULL;
    h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->connect_timeout_ms = LT_HTTP_DEF_CONNECT_MS;
    h->timeout_ms = LT_HTTP_DEF_TIMEOUT_MS;
    h->max_body = LT_HTTP_DEF_MAX_BODY;
    if (opts && opts->connect_timeout_ms > 0)
        h->connect_timeout_ms = opts->connect_timeout_ms;
    if (opts && opts->timeout_ms > 0)
        h->timeout_ms = opts->timeout_ms;
    if (opts && opts->max_body > 0)
        h->max_body = opts->max_body;
    if (opts && opts->ca_file && !(h->ca_file = strdup(opts->ca_file)))
        goto fail;
    h->user_agent =
        strdup(opts && opts->user_agent ? opts->user_agent : "ltvsync/" LTVSYNC_VERSION);
    if (!h->user_agent)
        goto fail;
    if (!(h->curl = curl_easy_init()))
        goto fail;
    return h;
fail:
    lt_http_destroy(h);
    return NULL;
}

void lt_http_destroy(lt_http_t *h)
{
    if (!h)
        return;
    if (h->curl)
        curl_easy_cleanup(h->curl);
    free(h->ca_file);
    free(h->user_agent);
    free(h);
}

void lt_http_resp_release(lt_http_resp_t *resp)
{
    if (!resp)
        return;
    free(resp->body);
    resp->body = NULL;
    resp->len = 0;
}

/* Appends body bytes; returning less than n makes curl abort the transfer
 * with CURLE_WRITE_ERROR, which is how max_body is enforced. */
static size_t on_body(char *ptr, size_t size, size_t nmemb, void *opaque)
{
    lt_http_rx_t *rx = opaque;
    size_t n = size * nmemb;
    size_t need;
    char *nb;

    if (n > rx->max - rx->len) {
        rx->too_big = 1;
        return 0;
    }
    need = rx->len + n + 1;
    if (need > rx->cap) {
        size_t cap = rx->cap ? rx->cap : 4096;
        while (cap < need)
            cap *= 2;
        if (!(nb = realloc(rx->buf, cap)))
            return 0;
        rx->buf = nb;
        rx->cap = cap;
    }
    memcpy(rx->buf + rx->len, ptr, n);
    rx->len += n;
    rx->buf[rx->len] = '\0';
    return n;
}

/* Retry-After value: delay-seconds, or an HTTP-date turned into seconds from
 * now (never negative). -1 when unparsable. */
static long parse_retry_after(const char *v, size_t len)
{
    char tmp[64];
    char *end;
    long secs;
    time_t when;

    while (len && isspace((unsigned char)v[len - 1]))
        len--;
    while (len && isspace((unsigned char)*v)) {
        v++;
        len--;
    }
    if (len == 0 || len >= sizeof(tmp))
        return -1;
    memcpy(tmp, v, len);
    tmp[len] = '\0';
    if (isdigit((unsigned char)tmp[0])) {
        secs = strtol(tmp, &end, 10);
        return (*end == '\0' && secs >= 0) ? secs : -1;
    }
    when = curl_getdate(tmp, NULL);
    if (when == (time_t)-1)
        return -1;
    secs = (long)(when - time(NULL));
    return secs > 0 ? secs : 0;
}

/* Header lines arrive one at a time, not NUL-terminated. A status line
 * starts a new response (after 100-continue), so it resets the state. */
static size_t on_header(char *ptr, size_t size, size_t nmemb, void *opaque)
{
    lt_http_rx_t *rx = opaque;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";

    if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0)
        rx->retry_after_s = -1;
    else if (n > sizeof(name) - 1 && strncasecmp(ptr, name, sizeof(name) - 1) == 0)
        rx->retry_after_s = parse_retry_after(ptr + sizeof(name) - 1, n - (sizeof(name) - 1));
    return n;
}

/* Options common to every request; the handle was just reset. */
static void set_common(lt_http_t *h, const char *url, lt_http_rx_t *rx)
{
    CURL *curl = h->curl;

    h->errbuf[0] = '\0';
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, h->errbuf);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, h->connect_timeout_ms);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, h->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    if (h->ca_file)
        curl_easy_setopt(curl, CURLOPT_CAINFO, h->ca_file);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, h->user_agent);
    curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)h->max_body);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, rx);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, rx);
}

/* The URL without its query string, for error texts. */
static int url_shown_len(const char *url)
{
    size_t n = strcspn(url, "?#");
    return n > 200 ? 200 : (int)n;
}

/* Runs the configured transfer and fills resp. Takes ownership of rx->buf. */
static lt_err_t perform(lt_http_t *h, const char *method, const char *url, lt_http_rx_t *rx,
                        lt_http_resp_t *resp, char *errstr, size_t errlen)
{
    CURLcode rc = curl_easy_perform(h->curl);
    const char *ct = NULL;

    memset(resp, 0, sizeof(*resp));
    resp->retry_after_s = rx->retry_after_s;
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &resp->status);
    if (curl_easy_getinfo(h->curl, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
        snprintf(resp->content_type, sizeof(resp->content_type), "%s", ct);
    if (rc != CURLE_OK || rx->too_big) {
        if (rx->too_big || rc == CURLE_FILESIZE_EXCEEDED)
            snprintf(errstr, errlen, "%s %.*s: response body exceeds %zu bytes", method,
                     url_shown_len(url), url, rx->max);
        else
            snprintf(errstr, errlen, "%s %.*s: %s (curl %d)", method, url_shown_len(url), url,
                     h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc), (int)rc);
        free(rx->buf);
        return LT_ERR_RETRIABLE;
    }
    resp->body = rx->buf ? rx->buf : calloc(1, 1);
    resp->len = rx->len;
    if (!resp->body) {
        snprintf(errstr, errlen, "%s: out of memory", method);
        return LT_ERR_RETRIABLE;
    }
    return LT_OK;
}

char *lt_http_form_encode(const lt_form_field_t *fields, size_t nfields)
{
    size_t cap = 1, len = 0, i, k;
    char *out = NULL, *enc[2] = {NULL, NULL};

    pthread_once(&global_once, global_init);
    for (i = 0; i < nfields; i++)
        cap += 3 * (strlen(fields[i].name) + strlen(fields[i].value)) + 2;
    if (!(out = malloc(cap)))
        return NULL;
    for (i = 0; i < nfields; i++) {
        enc[0] = curl_easy_escape(NULL, fields[i].name, 0);
        enc[1] = curl_easy_escape(NULL, fields[i].value, 0);
        if (!enc[0] || !enc[1])
            goto fail;
        len += (size_t)snprintf(out + len, cap - len, "%s%s=%s", i ? "&" : "", enc[0], enc[1]);
        for (k = 0; k < 2; k++) { /* a value may be the escaped password */
            explicit_bzero(enc[k], strlen(enc[k]));
            curl_free(enc[k]);
            enc[k] = NULL;
        }
    }
    out[len] = '\0';
    return out;
fail:
    for (k = 0; k < 2; k++)
        if (enc[k]) {
            explicit_bzero(enc[k], strlen(enc[k]));
            curl_free(enc[k]);
        }
    explicit_bzero(out, cap);
    free(out);
    return NULL;
}

typedef struct {
    lt_http_gate_fn fn;
    void *arg;
} gate_t;

static int on_prereq(void *opaque, char *primary_ip, char *local_ip, int primary_port,
                     int local_port)
{
    gate_t *g = opaque;
    (void)primary_ip, (void)local_ip, (void)primary_port, (void)local_port;
    return g->fn(g->arg) == 0 ? CURL_PREREQFUNC_OK : CURL_PREREQFUNC_ABORT;
}

lt_err_t lt_http_post_form_gated(lt_http_t *h, const char *url, const lt_form_field_t *fields,
                                 size_t nfields, lt_http_gate_fn gate, void *gate_arg,
                                 lt_http_resp_t *resp, char *errstr, size_t errlen)
{
    lt_http_rx_t rx = {.max = h->max_body, .retry_after_s = -1};
    gate_t g = {gate, gate_arg};
    char *form = lt_http_form_encode(fields, nfields);
    lt_err_t err;

    memset(resp, 0, sizeof(*resp));
    if (!form) {
        snprintf(errstr, errlen, "POST: cannot encode form");
        return LT_ERR_RETRIABLE;
    }
    curl_easy_reset(h->curl);
    set_common(h, url, &rx);
    if (gate) {
        curl_easy_setopt(h->curl, CURLOPT_PREREQFUNCTION, on_prereq);
        curl_easy_setopt(h->curl, CURLOPT_PREREQDATA, &g);
    }
    /* The form holds the CRM password: curl reads it in place (no copy), and
     * we wipe it once the transfer is over. */
    curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(form));
    curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, form);
    err = perform(h, "POST", url, &rx, resp, errstr, errlen);
    curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(h->curl, CURLOPT_PREREQFUNCTION, NULL);
    curl_easy_setopt(h->curl, CURLOPT_PREREQDATA, NULL);
    explicit_bzero(form, strlen(form));
    free(form);
    return err;
}

lt_err_t lt_http_post_form(lt_http_t *h, const char *url, const lt_form_field_t *fields,
                           size_t nfields, lt_http_resp_t *resp, char *errstr, size_t errlen)
{
    return lt_http_post_form_gated(h, url, fields, nfields, NULL, NULL, resp, errstr, errlen);
}

lt_err_t lt_http_get(lt_http_t *h, const char *url, lt_http_resp_t *resp, char *errstr,
                     size_t errlen)
{
    lt_http_rx_t rx = {.max = h->max_body, .retry_after_s = -1};

    memset(resp, 0, sizeof(*resp));
    curl_easy_reset(h->curl);
    set_common(h, url, &rx);
    curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L);
    return perform(h, "GET", url, &rx, resp, errstr, errlen);
}
