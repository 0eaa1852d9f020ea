/* Driver of lt_http for tests/integration/test_common_io.py (not a ctest
 * test itself). Usage:
 *   test_http_io [-m MAX_BODY] [-t TIMEOUT_MS] [-c CA_FILE] get URL [URL...]
 *   test_http_io [-m MAX_BODY] [-t TIMEOUT_MS] [-c CA_FILE] post URL NAME VALUE
 *                [NAME VALUE ...]
 *   test_http_io encode NAME VALUE [...]
 * For each request prints one line
 *   <err-name> status=<n> len=<n> retry_after=<n> ctype=<type> ms=<elapsed>
 * then "err: <errstr>" or "body: <body, first 200 bytes>". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "lt_http.h"

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void report(lt_err_t rc, const lt_http_resp_t *resp, const char *errstr, long long ms)
{
    printf("%s status=%ld len=%zu retry_after=%ld ctype=%s ms=%lld\n", lt_err_name(rc),
           resp->status, resp->len, resp->retry_after_s,
           resp->content_type[0] ? resp->content_type : "-", ms);
    if (rc != LT_OK)
        printf("err: %s\n", errstr);
    else
        printf("body: %.*s\n", (int)(resp->len > 200 ? 200 : resp->len), resp->body);
}

/* argv pairs to fields; caller frees. */
static lt_form_field_t *fields_of(int n, char **argv)
{
    lt_form_field_t *f = calloc((size_t)n / 2 + 1, sizeof(*f));
    int i;

    for (i = 0; f && i + 1 < n; i += 2)
        f[i / 2] = (lt_form_field_t){argv[i], argv[i + 1]};
    return f;
}

int main(int argc, char **argv)
{
    lt_http_opts_t opts = {0};
    lt_http_resp_t resp;
    lt_form_field_t *f = NULL;
    lt_http_t *h = NULL;
    char errstr[512], *enc;
    long long t0;
    lt_err_t rc;
    int i = 1;

    for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
        if (!strcmp(argv[i], "-m"))
            opts.max_body = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "-t"))
            opts.timeout_ms = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "-c"))
            opts.ca_file = argv[i + 1];
    }
    if (i + 1 >= argc)
        return 2;
    if (!strcmp(argv[i], "encode")) {
        f = fields_of(argc - i - 1, argv + i + 1);
        enc = lt_http_form_encode(f, (size_t)(argc - i - 1) / 2);
        printf("%s\n", enc ? enc : "(null)");
        free(enc);
        free(f);
        return 0;
    }
    if (!(h = lt_http_new(&opts)))
        return 1;
    if (!strcmp(argv[i], "post")) {
        f = fields_of(argc - i - 2, argv + i + 2);
        t0 = now_ms();
        rc = lt_http_post_form(h, argv[i + 1], f, (size_t)(argc - i - 2) / 2, &resp, errstr,
                               sizeof(errstr));
        report(rc, &resp, errstr, now_ms() - t0);
        lt_http_resp_release(&resp);
    } else {
        for (i++; i < argc; i++) {
            t0 = now_ms();
            rc = lt_http_get(h, argv[i], &resp, errstr, sizeof(errstr));
            report(rc, &resp, errstr, now_ms() - t0);
            lt_http_resp_release(&resp);
        }
    }
    free(f);
    lt_http_destroy(h);
    return 0;
}
