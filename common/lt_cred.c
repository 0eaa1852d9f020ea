/* lt_cred: the credential policy (see lt_cred.h). */
#include "lt_cred.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lt_seal.h"

void lt_cred_wipe(void *buf, size_t n)
{
    if (buf)
        explicit_bzero(buf, n);
}

int lt_cred_no_core_dumps(void)
{
    struct rlimit none = {0, 0};
    int rc = setrlimit(RLIMIT_CORE, &none);
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        rc = -1;
    return rc;
}

void lt_cred_policy_init(lt_cred_policy_t *p, const lt_config_t *cfg)
{
    p->dir = lt_config_str(cfg, "CRM_CREDENTIALS_DIR");
    p->hosts_konnektive = lt_config_str(cfg, "CRM_HOSTS_KONNEKTIVE");
    p->hosts_checkoutchamp = lt_config_str(cfg, "CRM_HOSTS_CHECKOUTCHAMP");
    p->allow_insecure = lt_config_int(cfg, "CRM_ALLOW_INSECURE") != 0;
    p->seal_key_file = lt_config_str(cfg, "SEAL_KEY_FILE");
}

/* ---- base_url ---- */

/* Whether host (hlen bytes) is one of the comma-separated names of list. */
static int host_listed(const char *list, const char *host, size_t hlen)
{
    const char *p = list ? list : "";
    while (*p) {
        size_t n;
        while (*p == ' ' || *p == ',')
            p++;
        n = strcspn(p, ", ");
        if (n && n == hlen && !strncasecmp(p, host, n))
            return 1;
        p += n;
    }
    return 0;
}

/* 127.0.0.0/8 in dotted-quad form, "localhost" or "[::1]". */
static int host_loopback(const char *host, size_t hlen)
{
    int parts = 0, first = -1;
    const char *p = host, *end = host + hlen;
    if ((hlen == 9 && !strncasecmp(host, "localhost", 9)) ||
        (hlen == 5 && !memcmp(host, "[::1]", 5)))
        return 1;
    while (p < end) {
        int v = 0, digits = 0;
        while (p < end && isdigit((unsigned char)*p) && digits < 4)
            v = v * 10 + (*p++ - '0'), digits++;
        if (!digits || digits > 3 || v > 255)
            return 0;
        if (first < 0)
            first = v;
        parts++;
        if (p == end)
            break;
        if (*p++ != '.' || p == end)
            return 0;
    }
    return parts == 4 && first == 127;
}

lt_err_t lt_cred_check_url(const lt_cred_policy_t *p, const char *brand, const char *url,
                           char *errstr, size_t errlen)
{
#define FAIL(...)                              \
    do {                                       \
        snprintf(errstr, errlen, __VA_ARGS__); \
        return LT_ERR_PERMANENT;               \
    } while (0)
    int https = !strncmp(url, "https://", 8);
    const char *auth = url + (https ? 8 : 7), *host = auth, *path, *list, *env;
    size_t alen, hlen;

    if (!https && strncmp(url, "http://", 7))
        FAIL("base_url: must start with https://");
    alen = strcspn(auth, "/");
    path = auth + alen;
    /* No user info, percent-encoding or backslash: the host curl connects to
     * must be the host checked here. */
    if (!alen || strspn(auth, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                              "0123456789.-:[]") != alen)
        FAIL("base_url: the host part of \"%.200s\" is not a plain host[:port]", url);
    if (strspn(path, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789-._~/") != strlen(path))
        FAIL("base_url: only a plain path may follow the host (no query, fragment or spaces)");
    if (*host == '[') {
        const char *close = memchr(host, ']', alen);
        if (!close)
            FAIL("base_url: unterminated [IPv6] host");
        hlen = (size_t)(close - host) + 1;
    } else {
        hlen = strcspn(host, ":/");
    }
    if (hlen < alen) { /* a port */
        const char *port = host + hlen;
        size_t plen = alen - hlen - 1;
        if (*port != ':' || plen < 1 || plen > 5 || strspn(port + 1, "0123456789") < plen ||
            atoi(port + 1) > 65535)
            FAIL("base_url: bad port in \"%.200s\"", url);
    }
    if (!hlen)
        FAIL("base_url: no host in \"%.200s\"", url);
    if (!strcmp(brand, "konnektive")) {
        list = p->hosts_konnektive;
        env = "LTVSYNC_CRM_HOSTS_KONNEKTIVE";
    } else if (!strcmp(brand, "checkoutchamp")) {
        list = p->hosts_checkoutchamp;
        env = "LTVSYNC_CRM_HOSTS_CHECKOUTCHAMP";
    } else {
        FAIL("brand: must be \"konnektive\" or \"checkoutchamp\"");
    }
    if (p->allow_insecure && host_loopback(host, hlen))
        return LT_OK;
    if (!host_listed(list, host, hlen)) {
        if (host_loopback(host, hlen))
            FAIL("base_url: the loopback host %.*s is allowed only with "
                 "LTVSYNC_CRM_ALLOW_INSECURE=1 (simulators and tests)",
                 (int)hlen, host);
        FAIL("base_url: host %.*s is not an allowed %s API host (allowed: %s; set by %s)",
             (int)(hlen > 200 ? 200 : hlen), host, brand, list && *list ? list : "none", env);
    }
    if (!https && !p->allow_insecure)
        FAIL("base_url: must be https:// (the password travels in every request; "
             "LTVSYNC_CRM_ALLOW_INSECURE=1 allows http:// for simulators and tests only)");
    return LT_OK;
#undef FAIL
}

/* ---- password_ref ---- */

static int has_dotdot(const char *path)
{
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return 1;
        p += n + (p[n] == '/');
    }
    return 0;
}

lt_err_t lt_cred_check_ref(const char *ref, char *errstr, size_t errlen)
{
    size_t plen = strlen(LT_CRED_ENV_PREFIX);
    if (!strncmp(ref, "file:", 5)) {
        if (!ref[5]) {
            snprintf(errstr, errlen, "password_ref file: needs a file name");
            return LT_ERR_PERMANENT;
        }
        if (has_dotdot(ref + 5)) {
            snprintf(errstr, errlen,
                     "password_ref %.200s: \"..\" is not allowed (the file "
                     "must be inside LTVSYNC_CRM_CREDENTIALS_DIR)",
                     ref);
            return LT_ERR_PERMANENT;
        }
        return LT_OK;
    }
    if (!strncmp(ref, "env:", 4)) {
        const char *name = ref + 4;
        if (strncmp(name, LT_CRED_ENV_PREFIX, plen) || !name[plen] ||
            strspn(name + plen, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != strlen(name + plen)) {
            snprintf(errstr, errlen,
                     "password_ref env:%.64s: only variables named " LT_CRED_ENV_PREFIX
                     "<NAME> (A-Z, 0-9, _) may hold a CRM password; "
                     "other variables hold the service's own secrets",
                     name);
            return LT_ERR_PERMANENT;
        }
        return LT_OK;
    }
    if (lt_seal_is_sealed(ref))
        return lt_seal_check_ref(ref, errstr, errlen);
    snprintf(errstr, errlen,
             "password_ref: must be file:NAME (inside "
             "LTVSYNC_CRM_CREDENTIALS_DIR), env:" LT_CRED_ENV_PREFIX "<NAME> or a sealed "
             "password (" LT_SEAL_PREFIX "KID:..., made with the seal key); the clear "
             "password itself is never stored");
    return LT_ERR_PERMANENT;
}

lt_err_t lt_cred_resolve_file(const char *dir, const char *name, char *out, size_t outlen,
                              char *errstr, size_t errlen)
{
    char rdir[PATH_MAX], joined[PATH_MAX], rp[PATH_MAX];
    size_t dlen;

    if (!dir || !*dir) {
        snprintf(errstr, errlen,
                 "password_ref file:%.200s: LTVSYNC_CRM_CREDENTIALS_DIR "
                 "is not set",
                 name);
        return LT_ERR_PERMANENT;
    }
    if (!realpath(dir, rdir)) {
        snprintf(errstr, errlen, "LTVSYNC_CRM_CREDENTIALS_DIR %.200s: %s", dir, strerror(errno));
        return LT_ERR_PERMANENT;
    }
    errno = 0;
    if ((size_t)snprintf(joined, sizeof(joined), "%s%s%s", name[0] == '/' ? "" : rdir,
                         name[0] == '/' ? "" : "/", name) >= sizeof(joined) ||
        !realpath(joined, rp)) {
        snprintf(errstr, errlen,
                 "password_ref file:%.200s: %s (looked in "
                 "LTVSYNC_CRM_CREDENTIALS_DIR %.200s)",
                 name, errno ? strerror(errno) : "path too long", dir);
        return LT_ERR_PERMANENT;
    }
    /* Inside: rdir itself is "/" or rp continues it with a '/'. */
    dlen = strlen(rdir);
    if (!(dlen == 1 || (!strncmp(rp, rdir, dlen) && rp[dlen] == '/'))) {
        snprintf(errstr, errlen,
                 "password_ref file:%.200s: resolves outside "
                 "LTVSYNC_CRM_CREDENTIALS_DIR %.200s (a name or symlink may not lead out "
                 "of it)",
                 name, dir);
        return LT_ERR_PERMANENT;
    }
    if (strlen(rp) >= outlen) {
        snprintf(errstr, errlen, "password_ref file:%.200s: path too long", name);
        return LT_ERR_PERMANENT;
    }
    memcpy(out, rp, strlen(rp) + 1);
    return LT_OK;
}

/* Reads up to LT_CRM_PASSWORD_MAX bytes (plus a trailing newline) of the
 * already resolved path. O_NOFOLLOW: a symlink swapped in after the check
 * is not followed. */
static lt_err_t read_file(const char *path, const char *ref, char *tmp, size_t tmplen, size_t *n,
                          char *errstr, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    ssize_t got;
    *n = 0;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(errstr, errlen, "password_ref %.200s: %s", ref,
                 fd < 0 ? strerror(errno) : "not a regular file");
        if (fd >= 0)
            close(fd);
        return LT_ERR_PERMANENT;
    }
    while (*n < tmplen && (got = read(fd, tmp + *n, tmplen - *n)) > 0)
        *n += (size_t)got;
    close(fd);
    return LT_OK;
}

lt_err_t lt_cred_check_password(const char *pw, size_t n, const char *what, char *errstr,
                                size_t errlen)
{
    if (n > LT_CRM_PASSWORD_MAX)
        snprintf(errstr, errlen, "%s: the password is longer than %d bytes", what,
                 LT_CRM_PASSWORD_MAX);
    else if (!n)
        snprintf(errstr, errlen, "%s: the password is empty", what);
    else if (memchr(pw, '\0', n))
        snprintf(errstr, errlen, "%s: the password contains a NUL byte", what);
    else if (memchr(pw, '&', n))
        snprintf(errstr, errlen,
                 "%s: the API password contains '&', which the CRM cannot accept (vendor: the "
                 "password \"must not have an & sign\"); set a new password without '&' on the "
                 "API user",
                 what);
    else
        return LT_OK;
    return LT_ERR_PERMANENT;
}

lt_err_t lt_cred_password(const lt_cred_policy_t *p, const lt_integration_t *in, char *buf,
                          size_t buflen, char *errstr, size_t errlen)
{
    /* Room for the longest password, "\r\n", and one byte to see more. */
    char tmp[LT_CRM_PASSWORD_MAX + 3], path[PATH_MAX], shown[256], what[256];
    const char *ref = in->password_ref;
    size_t n = 0;
    lt_err_t err;

    if (buflen <= LT_CRM_PASSWORD_MAX) {
        snprintf(errstr, errlen, "password buffer smaller than LT_CRM_PASSWORD_MAX");
        return LT_ERR_FATAL;
    }
    lt_cred_wipe(buf, buflen);
    if ((err = lt_cred_check_url(p, in->brand, in->base_url, errstr, errlen)) ||
        (err = lt_cred_check_ref(ref, errstr, errlen)))
        return err;
    lt_seal_redact(ref, shown, sizeof(shown)); /* a sealed ref's blob stays out of errors */
    if (lt_seal_is_sealed(ref)) {
        if ((err = lt_seal_open_file(p->seal_key_file, in->id, ref, tmp, sizeof(tmp), errstr,
                                     errlen)))
            goto end;
        n = strnlen(tmp, sizeof(tmp));
    } else if (!strncmp(ref, "file:", 5)) {
        if ((err = lt_cred_resolve_file(p->dir, ref + 5, path, sizeof(path), errstr, errlen)) ||
            (err = read_file(path, ref, tmp, sizeof(tmp), &n, errstr, errlen)))
            goto end;
        while (n > 0 && (tmp[n - 1] == '\n' || tmp[n - 1] == '\r'))
            n--; /* Kubernetes Secret files and `echo` add a newline */
    } else {
        const char *v = getenv(ref + 4);
        if (!v) {
            snprintf(errstr, errlen, "password_ref %.200s: variable not set", ref);
            err = LT_ERR_PERMANENT;
            goto end;
        }
        n = strnlen(v, sizeof(tmp));
        memcpy(tmp, v, n);
    }
    snprintf(what, sizeof(what), "password_ref %.200s", shown);
    if ((err = lt_cred_check_password(tmp, n, what, errstr, errlen)) == LT_OK) {
        memcpy(buf, tmp, n);
        buf[n] = '\0';
        err = LT_OK;
    }
end:
    lt_cred_wipe(tmp, sizeof(tmp));
    if (err != LT_OK)
        lt_cred_wipe(buf, buflen);
    return err;
}
