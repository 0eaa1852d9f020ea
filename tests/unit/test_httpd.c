/* test_httpd: a real server on a free loopback port, fetched with libcurl. */
#include <curl/curl.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "lt_httpd.h"
#include "lt_metrics.h"
#include "lt_test.h"

typedef struct {
    char   buf[65536];
    size_t len;
} body_t;

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    body_t *b = arg;
    size_t len = size * n;

    if (len > sizeof(b->buf) - 1 - b->len)
        return 0;
    memcpy(b->buf + b->len, p, len);
    b->len += len;
    b->buf[b->len] = '\0';
    return len;
}

/* GETs http://127.0.0.1:port/path; returns the status, 0 on failure. */
static long get(int port, const char *path, body_t *b)
{
    CURL *curl = curl_easy_init();
    char url[128];
    long status = 0;

    b->len = 0;
    b->buf[0] = '\0';
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 5L);
    if (curl_easy_perform(curl) == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(curl);
    return status;
}

static atomic_int ready_flag;

static int is_ready(void *opaque)
{
    (void)opaque;
    return atomic_load(&ready_flag);
}

LT_TEST(endpoints)
{
    char err[256];
    static body_t b;
    lt_metric_t *m = lt_metric_counter("t_httpd_hits_total", "hits", NULL);
    lt_httpd_t *h = lt_httpd_start(0, is_ready, NULL, err, sizeof(err));
    int port = lt_httpd_port(h);

    CHECK(h != NULL);
    CHECK(port > 0 && port <= 65535);
    if (!h)
        return;
    CHECK_INT(get(port, "/healthz", &b), 200);
    CHECK_INT(get(port, "/readyz", &b), 503);
    atomic_store(&ready_flag, 1);
    CHECK_INT(get(port, "/readyz", &b), 200);
    lt_metric_add(m, 3);
    CHECK_INT(get(port, "/metrics", &b), 200);
    CHECK(strstr(b.buf, "# TYPE t_httpd_hits_total counter\nt_httpd_hits_total 3\n") != NULL);
    CHECK_INT(get(port, "/nope", &b), 404);
    CHECK_INT(get(port, "/healthz/x", &b), 404);
    lt_httpd_stop(h);
    CHECK_INT(get(port, "/healthz", &b), 0); /* stopped: connection refused */
    lt_httpd_stop(NULL);
}

LT_TEST(port_in_use_fails)
{
    char err[256] = "";
    lt_httpd_t *a = lt_httpd_start(0, NULL, NULL, err, sizeof(err));
    lt_httpd_t *b;

    CHECK(a != NULL);
    if (!a)
        return;
    b = lt_httpd_start(lt_httpd_port(a), NULL, NULL, err, sizeof(err));
    CHECK(b == NULL);
    CHECK(strstr(err, "cannot listen") != NULL);
    lt_httpd_stop(b);
    lt_httpd_stop(a);
    CHECK(lt_httpd_start(70000, NULL, NULL, err, sizeof(err)) == NULL);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    LT_RUN(endpoints);
    LT_RUN(port_in_use_fails);
    curl_global_cleanup();
    return LT_DONE();
}
