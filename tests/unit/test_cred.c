/* Unit tests of lt_cred: base_url allow-list, password_ref forms, file
 * resolution inside the credentials directory (.., symlinks), and reading
 * the password (length cap, NUL, '&', errors without the password). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lt_cred.h"
#include "lt_test.h"

static const lt_cred_policy_t strict = {.dir = "/nonexistent",
                                        .hosts_konnektive =
                                            "api.konnektive.com,api2.konnektive.com",
                                        .hosts_checkoutchamp = "api.checkoutchamp.com",
                                        .allow_insecure = 0};

static lt_err_t url_ok(const lt_cred_policy_t *p, const char *brand, const char *url, char *err,
                       size_t errlen)
{
    return lt_cred_check_url(p, brand, url, err, errlen);
}

LT_TEST(url_allow_list)
{
    lt_cred_policy_t insecure = strict;
    char err[512];
    insecure.allow_insecure = 1;
    static const struct {
        const char *brand, *url;
        int strict_ok, insecure_ok;
        const char *why;
    } cases[] = {
        {"konnektive", "https://api.konnektive.com", 1, 1, NULL},
        {"konnektive", "https://API.Konnektive.com/", 1, 1, NULL},
        {"konnektive", "https://api2.konnektive.com:443/base", 1, 1, NULL},
        {"checkoutchamp", "https://api.checkoutchamp.com", 1, 1, NULL},
        /* a brand's hosts only */
        {"checkoutchamp", "https://api.konnektive.com", 0, 0, "not an allowed checkoutchamp"},
        {"konnektive", "https://api.checkoutchamp.com", 0, 0, "not an allowed konnektive"},
        /* http only when allowed, and then still only to listed or loopback hosts */
        {"konnektive", "http://api.konnektive.com", 0, 1, "https"},
        {"konnektive", "http://attacker:8000", 0, 0, "attacker"},
        {"konnektive", "https://attacker.example", 0, 0, "not an allowed"},
        {"konnektive", "https://api.konnektive.com.attacker.example", 0, 0, "not an allowed"},
        {"konnektive", "https://api.konnektive.com.", 0, 0, "not an allowed"},
        /* loopback: only with allow_insecure */
        {"konnektive", "http://127.0.0.1:8081", 0, 1, "LTVSYNC_CRM_ALLOW_INSECURE"},
        {"konnektive", "https://127.0.0.1:8081", 0, 1, "LTVSYNC_CRM_ALLOW_INSECURE"},
        {"konnektive", "http://127.255.0.9", 0, 1, "LTVSYNC_CRM_ALLOW_INSECURE"},
        {"konnektive", "http://localhost:9", 0, 1, "LTVSYNC_CRM_ALLOW_INSECURE"},
        {"konnektive", "http://[::1]:9/", 0, 1, "LTVSYNC_CRM_ALLOW_INSECURE"},
        {"konnektive", "http://128.0.0.1", 0, 0, "not an allowed"},
        {"konnektive", "http://127.0.0.1.attacker.example", 0, 0, "not an allowed"},
        {"konnektive", "http://127.0.0", 0, 0, "not an allowed"},
        {"konnektive", "http://127.0.0.256", 0, 0, "not an allowed"},
        {"konnektive", "http://0127.0.0.1", 0, 0, "not an allowed"},
        /* what curl would read differently from a plain host */
        {"konnektive", "https://api.konnektive.com@attacker.example", 0, 0, "host part"},
        {"konnektive", "https://api.konnektive.com\\@attacker.example", 0, 0, "host part"},
        {"konnektive", "https://127.0.0.1%2eattacker", 0, 0, "host part"},
        {"konnektive", "https://api.konnektive.com:99999", 0, 0, "port"},
        {"konnektive", "https://api.konnektive.com:", 0, 0, "port"},
        {"konnektive", "https://api.konnektive.com?x=1", 0, 0, "host part"},
        {"konnektive", "https://api.konnektive.com/a?x=1", 0, 0, "plain path"},
        {"konnektive", "https://api.konnektive.com/a#f", 0, 0, "plain path"},
        {"konnektive", "https://api.konnektive.com/a b", 0, 0, "plain path"},
        {"konnektive", "https://[::1", 0, 0, "IPv6"},
        {"konnektive", "https://", 0, 0, "host part"},
        {"konnektive", "ftp://api.konnektive.com", 0, 0, "https://"},
        {"konnektive", "HTTPS://api.konnektive.com", 0, 0, "https://"},
        {"sticky", "https://api.konnektive.com", 0, 0, "brand"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        lt_err_t a = url_ok(&strict, cases[i].brand, cases[i].url, err, sizeof(err));
        if ((a == LT_OK) != cases[i].strict_ok)
            fprintf(stderr, "strict: %s %s -> %d (%s)\n", cases[i].brand, cases[i].url, a, err);
        CHECK_INT(a == LT_OK, cases[i].strict_ok);
        if (a != LT_OK && cases[i].why && !strstr(err, cases[i].why))
            fprintf(stderr, "strict: %s: \"%s\" lacks \"%s\"\n", cases[i].url, err, cases[i].why);
        CHECK(a == LT_OK || !cases[i].why || strstr(err, cases[i].why));
        lt_err_t b = url_ok(&insecure, cases[i].brand, cases[i].url, err, sizeof(err));
        if ((b == LT_OK) != cases[i].insecure_ok)
            fprintf(stderr, "insecure: %s %s -> %d (%s)\n", cases[i].brand, cases[i].url, b, err);
        CHECK_INT(b == LT_OK, cases[i].insecure_ok);
    }
    /* the lists are settings */
    lt_cred_policy_t custom = strict;
    custom.hosts_konnektive = " crm.internal , api.konnektive.com";
    CHECK_INT(url_ok(&custom, "konnektive", "https://crm.internal", err, sizeof(err)), LT_OK);
    CHECK_INT(url_ok(&custom, "konnektive", "https://api2.konnektive.com", err, sizeof(err)),
              LT_ERR_PERMANENT);
    custom.hosts_konnektive = "";
    CHECK_INT(url_ok(&custom, "konnektive", "https://api.konnektive.com", err, sizeof(err)),
              LT_ERR_PERMANENT);
    CHECK(strstr(err, "LTVSYNC_CRM_HOSTS_KONNEKTIVE") != NULL);
}

LT_TEST(ref_forms)
{
    char err[512];
    static const struct {
        const char *ref;
        int ok;
        const char *why;
    } cases[] = {
        {"file:acme", 1, NULL},
        {"file:tenants/acme", 1, NULL},
        {"file:/var/run/secrets/ltvsync/crm/acme", 1, NULL},
        {"file:..data/acme", 1, NULL}, /* Kubernetes' own ..data link is a name, not ".." */
        {"file:../other-tenant", 0, "\"..\" is not allowed"},
        {"file:a/../../etc/passwd", 0, "\"..\""},
        {"file:/run/secrets/ltvsync/crm/..", 0, "\"..\""},
        {"file:", 0, "needs a file name"},
        {"env:LTVSYNC_CRM_PASSWORD_ACME", 1, NULL},
        {"env:LTVSYNC_CRM_PASSWORD_ACME_2", 1, NULL},
        {"env:REDIS_PASSWORD", 0, "LTVSYNC_CRM_PASSWORD_"},
        {"env:LTVSYNC_REDIS_URL", 0, "LTVSYNC_CRM_PASSWORD_"},
        {"env:LTVSYNC_CRM_PASSWORD_", 0, "LTVSYNC_CRM_PASSWORD_"},
        {"env:LTVSYNC_CRM_PASSWORD_acme", 0, "LTVSYNC_CRM_PASSWORD_"},
        {"env:LTVSYNC_CRM_PASSWORD_A-B", 0, "LTVSYNC_CRM_PASSWORD_"},
        {"hunter2", 0, "password_ref"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        lt_err_t e = lt_cred_check_ref(cases[i].ref, err, sizeof(err));
        if ((e == LT_OK) != cases[i].ok)
            fprintf(stderr, "%s -> %d (%s)\n", cases[i].ref, e, err);
        CHECK_INT(e == LT_OK, cases[i].ok);
        CHECK(e == LT_OK || strstr(err, cases[i].why));
    }
}

/* A temp tree: DIR/{acme, sub/beta, ..data/gamma, gamma -> ..data/gamma,
 * out -> ../other/secret, loop -> loop}, OTHER/secret. */
static char root[] = "/tmp/lt-cred-XXXXXX";
static char dir[PATH_MAX], other[PATH_MAX];

static void put(const char *path, const void *data, size_t n)
{
    FILE *fp = fopen(path, "wb");
    if (fp) {
        fwrite(data, 1, n, fp);
        fclose(fp);
    }
}

/* base/name, in a static buffer. */
static const char *at(const char *base, const char *name)
{
    static char p[PATH_MAX + 64];
    snprintf(p, sizeof(p), "%s/%s", base, name);
    return p;
}

static void make_tree(void)
{
    if (!mkdtemp(root))
        abort();
    snprintf(dir, sizeof(dir), "%s/dir", root);
    snprintf(other, sizeof(other), "%s/other", root);
    mkdir(dir, 0700);
    mkdir(other, 0700);
    mkdir(at(dir, "sub"), 0700);
    mkdir(at(dir, "..data"), 0700);
    put(at(dir, "acme"), "acme-pw\n", 8);
    put(at(dir, "sub/beta"), "beta-pw", 7);
    put(at(dir, "..data/gamma"), "gamma-pw\r\n", 10);
    CHECK_INT(symlink("..data/gamma", at(dir, "gamma")), 0);
    put(at(other, "secret"), "OTHER-TENANT-SECRET", 19);
    CHECK_INT(symlink("../other/secret", at(dir, "out")), 0);
    CHECK_INT(symlink(other, at(dir, "outdir")), 0);
}

static void remove_tree(void)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", root);
}

LT_TEST(resolve_inside_dir)
{
    char out[PATH_MAX], err[512], abs[PATH_MAX + 16];
    CHECK_INT(lt_cred_resolve_file(dir, "acme", out, sizeof(out), err, sizeof(err)), LT_OK);
    CHECK(strstr(out, "/dir/acme") != NULL);
    CHECK_INT(lt_cred_resolve_file(dir, "sub/beta", out, sizeof(out), err, sizeof(err)), LT_OK);
    CHECK_INT(lt_cred_resolve_file(dir, "gamma", out, sizeof(out), err, sizeof(err)), LT_OK);
    CHECK(strstr(out, "/dir/..data/gamma") != NULL); /* a link that stays inside */
    snprintf(abs, sizeof(abs), "%s/acme", dir);
    CHECK_INT(lt_cred_resolve_file(dir, abs, out, sizeof(out), err, sizeof(err)), LT_OK);
    /* escapes */
    CHECK_INT(lt_cred_resolve_file(dir, "out", out, sizeof(out), err, sizeof(err)),
              LT_ERR_PERMANENT);
    CHECK(strstr(err, "resolves outside") != NULL);
    CHECK_INT(lt_cred_resolve_file(dir, "outdir/secret", out, sizeof(out), err, sizeof(err)),
              LT_ERR_PERMANENT);
    CHECK(strstr(err, "resolves outside") != NULL);
    snprintf(abs, sizeof(abs), "%s/secret", other);
    CHECK_INT(lt_cred_resolve_file(dir, abs, out, sizeof(out), err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK(strstr(err, "resolves outside") != NULL);
    CHECK_INT(lt_cred_resolve_file(dir, "/etc/passwd", out, sizeof(out), err, sizeof(err)),
              LT_ERR_PERMANENT);
    CHECK_INT(lt_cred_resolve_file(dir, ".", out, sizeof(out), err, sizeof(err)),
              LT_ERR_PERMANENT); /* the directory itself is not inside it */
    CHECK_INT(lt_cred_resolve_file(dir, "missing", out, sizeof(out), err, sizeof(err)),
              LT_ERR_PERMANENT);
    CHECK(strstr(err, "missing") && strstr(err, "No such file"));
    CHECK_INT(lt_cred_resolve_file("/nonexistent-dir", "acme", out, sizeof(out), err, sizeof(err)),
              LT_ERR_PERMANENT);
    CHECK(strstr(err, "LTVSYNC_CRM_CREDENTIALS_DIR") != NULL);
    CHECK_INT(lt_cred_resolve_file(NULL, "acme", out, sizeof(out), err, sizeof(err)),
              LT_ERR_PERMANENT);
}

static lt_integration_t integ(const char *ref, const char *url)
{
    lt_integration_t in;
    memset(&in, 0, sizeof(in));
    strcpy(in.brand, "konnektive");
    snprintf(in.base_url, sizeof(in.base_url), "%s", url);
    snprintf(in.password_ref, sizeof(in.password_ref), "%s", ref);
    return in;
}

static lt_err_t pw(const char *ref, char *buf, char *err, size_t errlen)
{
    lt_cred_policy_t p = strict;
    lt_integration_t in = integ(ref, "https://api.konnektive.com");
    p.dir = dir;
    return lt_cred_password(&p, &in, buf, LT_CRM_PASSWORD_MAX + 1, err, errlen);
}

LT_TEST(read_password)
{
    char buf[LT_CRM_PASSWORD_MAX + 1], err[512], path[PATH_MAX + 16], big[LT_CRM_PASSWORD_MAX + 2];
    CHECK_INT(pw("file:acme", buf, err, sizeof(err)), LT_OK);
    CHECK_STR(buf, "acme-pw"); /* the trailing newline is not part of it */
    CHECK_INT(pw("file:gamma", buf, err, sizeof(err)), LT_OK);
    CHECK_STR(buf, "gamma-pw");
    CHECK_INT(pw("file:out", buf, err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK(!strstr(err, "OTHER-TENANT-SECRET") && buf[0] == '\0');
    CHECK_INT(pw("file:../other/secret", buf, err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK(strstr(err, "..") != NULL);
    CHECK_INT(pw("file:sub", buf, err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK(strstr(err, "not a regular file") != NULL);

    /* the one maximum: LT_CRM_PASSWORD_MAX bytes pass, one more is refused */
    memset(big, 'p', sizeof(big));
    snprintf(path, sizeof(path), "%s/max", dir);
    put(path, big, LT_CRM_PASSWORD_MAX);
    CHECK_INT(pw("file:max", buf, err, sizeof(err)), LT_OK);
    CHECK_INT(strlen(buf), LT_CRM_PASSWORD_MAX);
    put(path, big, LT_CRM_PASSWORD_MAX + 1);
    CHECK_INT(pw("file:max", buf, err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK(strstr(err, "longer than 256 bytes") && !strstr(err, "ppp") && buf[0] == '\0');

    put(path, "abc\0def", 7); /* a NUL would cut the password short */
    CHECK_INT(pw("file:max", buf, err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK(strstr(err, "NUL") != NULL);
    put(path, "\n", 1);
    CHECK_INT(pw("file:max", buf, err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK(strstr(err, "empty") != NULL);
    put(path, "abc&def-SECRETPART", 18);
    CHECK_INT(pw("file:max", buf, err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK(strstr(err, "must not have an & sign") && !strstr(err, "SECRETPART"));
    CHECK(!strstr(buf, "SECRETPART")); /* wiped */

    setenv("LTVSYNC_CRM_PASSWORD_T1", "p+w %=# x", 1);
    CHECK_INT(pw("env:LTVSYNC_CRM_PASSWORD_T1", buf, err, sizeof(err)), LT_OK);
    CHECK_STR(buf, "p+w %=# x");
    unsetenv("LTVSYNC_CRM_PASSWORD_T1");
    CHECK_INT(pw("env:LTVSYNC_CRM_PASSWORD_T1", buf, err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK(strstr(err, "not set") != NULL);
    setenv("REDIS_PASSWORD", "REDIS-SECRET", 1);
    CHECK_INT(pw("env:REDIS_PASSWORD", buf, err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK(!strstr(err, "REDIS-SECRET") && buf[0] == '\0');
    big[LT_CRM_PASSWORD_MAX + 1] = '\0';
    setenv("LTVSYNC_CRM_PASSWORD_BIG", big, 1);
    CHECK_INT(pw("env:LTVSYNC_CRM_PASSWORD_BIG", buf, err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK(strstr(err, "longer than") != NULL);

    /* the URL is checked before anything is read */
    lt_cred_policy_t p = strict;
    lt_integration_t in = integ("file:acme", "http://attacker:8000");
    p.dir = dir;
    CHECK_INT(lt_cred_password(&p, &in, buf, sizeof(buf), err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK(strstr(err, "base_url") && buf[0] == '\0');
    /* a buffer smaller than the shared maximum is a programming error */
    in = integ("file:acme", "https://api.konnektive.com");
    CHECK_INT(lt_cred_password(&p, &in, buf, 16, err, sizeof(err)), LT_ERR_FATAL);
}

int main(void)
{
    make_tree();
    LT_RUN(url_allow_list);
    LT_RUN(ref_forms);
    LT_RUN(resolve_inside_dir);
    LT_RUN(read_password);
    remove_tree();
    return LT_DONE();
}
