/* test_httpd: a real server on a free loopback port, fetched with libcurl
 * and raw sockets (slow clients). */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lt_clock.h"
#include "lt_httpd.h"
#include "lt_metrics.h"
#include "lt_test.h"

typedef struct {
    char buf[65536];
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

/* GETs http://host:port/path; returns the status, 0 on failure. */
static long get_at(const char *host, int port, const char *path, body_t *b)
{
    CURL *curl = curl_easy_init();
    char url[128];
    long status = 0;

    b->len = 0;
    b->buf[0] = '\0';
    snprintf(url, sizeof(url), "http://%s:%d%s", host, port, path);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 5L);
    if (curl_easy_perform(curl) == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(curl);
    return status;
}

static long get(int port, const char *path, body_t *b)
{
    return get_at("127.0.0.1", port, path, b);
}

static lt_httpd_t *start(const char *bind, int port, unsigned max_conns, long long timeout_ms,
                         char *err, size_t errlen)
{
    lt_httpd_opts_t o = {bind, port, max_conns, timeout_ms};

    return lt_httpd_start(&o, NULL, NULL, err, errlen);
}

/* A connected socket to ip:port that sent `partial`; -1 on failure. */
static int slow_client(const char *ip, int port, const char *partial)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    inet_pton(AF_INET, ip, &sin.sin_addr);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
        (partial && send(fd, partial, strlen(partial), MSG_NOSIGNAL) < 0)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* 1 when the server closed fd within ms (end-of-file or a reset). */
static int closed_within(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char buf[512];
    long long end = lt_clock_mono_ms() + ms;

    while (lt_clock_mono_ms() < end) {
        if (poll(&p, 1, 20) == 1 && recv(fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0)
            return 1;
    }
    return 0;
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
    lt_httpd_opts_t o = {NULL, 0, 0, 0}; /* 0.0.0.0, any port, defaults */
    lt_httpd_t *h = lt_httpd_start(&o, is_ready, NULL, err, sizeof(err));
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
    lt_httpd_t *a = start(NULL, 0, 0, 0, err, sizeof(err));
    lt_httpd_t *b;

    CHECK(a != NULL);
    if (!a)
        return;
    b = start(NULL, lt_httpd_port(a), 0, 0, err, sizeof(err));
    CHECK(b == NULL);
    CHECK(strstr(err, "cannot listen on HTTP 0.0.0.0:") != NULL);
    lt_httpd_stop(b);
    lt_httpd_stop(a);
    CHECK(start(NULL, 70000, 0, 0, err, sizeof(err)) == NULL);
}

LT_TEST(bind_parse)
{
    static const char *const good[] = {
        "0.0.0.0", "127.0.0.1", "10.1.2.3", "::", "::1", "fd00::2", "::ffff:127.0.0.1"};
    static const char *const bad[] = {"localhost", "1.2.3",      "127.0.0.1:80", "[::1]",
                                      "::1%lo",    " 127.0.0.1", "256.0.0.1",    "0x7f.0.0.1"};
    struct sockaddr_storage sa;
    char err[256] = "";
    size_t i;

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        CHECK(lt_httpd_parse_bind(good[i], &sa) == 0);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(lt_httpd_parse_bind(bad[i], &sa) == -1);
    CHECK(lt_httpd_parse_bind("::1", &sa) == 0 && sa.ss_family == AF_INET6);
    CHECK(lt_httpd_parse_bind(NULL, &sa) == 0 && sa.ss_family == AF_INET);
    CHECK(start("localhost", 0, 0, 0, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "\"localhost\" is not an IPv4 or IPv6 literal") != NULL);
}

/* The setting is refused at load, with what it expects. */
LT_TEST(bind_setting_validated)
{
    lt_config_t *cfg = lt_config_new(LT_SVC_SINK);
    char err[256] = "";
    lt_httpd_opts_t o;

    CHECK(lt_config_set(cfg, "HTTP_BIND", "localhost", err, sizeof(err)) != LT_OK);
    CHECK(strstr(err, "LTVSYNC_HTTP_BIND: invalid string \"localhost\" (an IPv4 or IPv6") != NULL);
    CHECK(lt_config_set(cfg, "HTTP_BIND", "::", err, sizeof(err)) == LT_OK);
    CHECK(lt_config_set(cfg, "HTTP_MAX_CONNECTIONS", "3", err, sizeof(err)) != LT_OK);
    CHECK(lt_config_set(cfg, "HTTP_TIMEOUT", "250ms", err, sizeof(err)) == LT_OK);
    o = lt_httpd_opts_from_config(cfg);
    CHECK_STR(o.bind, "::");
    CHECK_INT(o.port, 8080);
    CHECK_INT(o.max_conns, 64);
    CHECK_INT(o.timeout_ms, 250);
    lt_config_destroy(cfg);
}

/* Bound to 127.0.0.1, the port is not reachable on 127.0.0.2 (all of
 * 127/8 is local on Linux); bound to ::1, it answers over IPv6. */
LT_TEST(bind_honoured)
{
    char err[256] = "";
    static body_t b;
    lt_httpd_t *h = start("127.0.0.1", 0, 0, 0, err, sizeof(err));
    int fd;

    CHECK(h != NULL);
    if (!h)
        return;
    CHECK_INT(get(lt_httpd_port(h), "/healthz", &b), 200);
    CHECK_INT(get_at("127.0.0.2", lt_httpd_port(h), "/healthz", &b), 0);
    fd = slow_client("127.0.0.2", lt_httpd_port(h), NULL);
    CHECK(fd < 0);
    if (fd >= 0)
        close(fd);
    lt_httpd_stop(h);
    if (!(h = start("::1", 0, 0, 0, err, sizeof(err)))) {
        printf("     (no IPv6 loopback here: %s; ::1 not tried)\n", err);
        return;
    }
    CHECK_INT(get_at("[::1]", lt_httpd_port(h), "/healthz", &b), 200);
    CHECK_INT(get(lt_httpd_port(h), "/healthz", &b), 0); /* IPv6 only */
    lt_httpd_stop(h);
}

/* Past the cap, a new connection ends the oldest: a probe still gets in
 * while the cap is full of clients that never finish their request. */
LT_TEST(cap_evicts_oldest)
{
    char err[256] = "";
    static body_t b;
    lt_httpd_t *h = start("127.0.0.1", 0, 4, 10000, err, sizeof(err));
    int fd[10], i, port = lt_httpd_port(h);
    long long t0;

    CHECK(h != NULL);
    if (!h)
        return;
    for (i = 0; i < 10; i++) {
        fd[i] = slow_client("127.0.0.1", port, "GET /heal");
        CHECK(fd[i] >= 0);
        usleep(20000); /* keeps the accept order */
    }
    for (i = 0; i < 6; i++)
        CHECK(fd[i] < 0 || closed_within(fd[i], 2000));
    for (i = 6; i < 10; i++)
        CHECK(fd[i] < 0 || !closed_within(fd[i], 50));
    CHECK(lt_httpd_connections(h) <= 4);
    t0 = lt_clock_mono_ms();
    CHECK_INT(get(port, "/healthz", &b), 200);
    CHECK(lt_clock_mono_ms() - t0 < 1000);
    CHECK(fd[6] < 0 || closed_within(fd[6], 2000)); /* the oldest made room */
    for (i = 0; i < 10; i++)
        if (fd[i] >= 0)
            close(fd[i]);
    lt_httpd_stop(h);
}

/* The deadline is not an idle timeout: a byte every 50 ms does not extend
 * it. A request sent in two halves within it is answered. */
LT_TEST(deadline_not_idle)
{
    char err[256] = "";
    lt_httpd_t *h = start("127.0.0.1", 0, 0, 300, err, sizeof(err));
    int port = lt_httpd_port(h), fd, closed = 0;
    long long t0, took;
    char buf[512];
    size_t i;

    CHECK(h != NULL);
    if (!h)
        return;
    fd = slow_client("127.0.0.1", port, NULL);
    t0 = lt_clock_mono_ms();
    for (i = 0; i < 40 && !closed; i++) {
        if (send(fd, "GET /healthz HTTP/1.1\r\nX-A: b" + (i % 28), 1, MSG_NOSIGNAL) < 0)
            break;
        closed = closed_within(fd, 50);
    }
    took = lt_clock_mono_ms() - t0;
    CHECK(closed || i < 40);
    CHECK(took >= 250 && took < 1000);
    close(fd);
    /* slow but in time */
    fd = slow_client("127.0.0.1", port, "GET /healthz HTTP/1.1\r\n");
    usleep(150000);
    CHECK(fd >= 0 && send(fd, "Host: x\r\n\r\n", 11, MSG_NOSIGNAL) == 11);
    CHECK(fd >= 0 && recv(fd, buf, sizeof(buf) - 1, 0) >= 12 && !strncmp(buf, "HTTP/1.1 200", 12));
    close(fd);
    lt_httpd_stop(h);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    LT_RUN(endpoints);
    LT_RUN(port_in_use_fails);
    LT_RUN(bind_parse);
    LT_RUN(bind_setting_validated);
    LT_RUN(bind_honoured);
    LT_RUN(cap_evicts_oldest);
    LT_RUN(deadline_not_idle);
    curl_global_cleanup();
    return LT_DONE();
}
