/* lt_seal: sealed CRM passwords (see lt_seal.h). */
#include "lt_seal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lt_cred.h"
#include "lt_integration.h"
#include "lt_log.h"

#define NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_BYTES   crypto_aead_xchacha20poly1305_ietf_ABYTES
#define PAD_BYTES   (LT_CRM_PASSWORD_MAX + 1)
#define AD_LABEL    "ltvsync-seal-v1"

_Static_assert(LT_SEAL_KEY_BYTES == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "key size");
_Static_assert(LT_SEAL_BLOB_BYTES == NONCE_BYTES + PAD_BYTES + TAG_BYTES, "blob size");
_Static_assert(LT_SEAL_BLOB_B64 == (LT_SEAL_BLOB_BYTES / 3) * 4, "blob is whole base64 groups");
_Static_assert(LT_SEAL_REF_LEN < sizeof(((lt_integration_t *)0)->password_ref),
               "a sealed ref fits password_ref");

struct lt_seal_ring_s {
    size_t n;
    char kid[LT_SEAL_MAX_KEYS][LT_SEAL_KID_MAX + 1];
    unsigned char *keys; /* n * LT_SEAL_KEY_BYTES, sodium_malloc'd */
};

#define FAIL(...)                              \
    do {                                       \
        snprintf(errstr, errlen, __VA_ARGS__); \
        err = LT_ERR_PERMANENT;                \
        goto end;                              \
    } while (0)

/* ---- libsodium ---- */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc = -1;

static void init_sodium(void)
{
    init_rc = sodium_init() < 0 ? -1 : 0;
}

static lt_err_t ready(char *errstr, size_t errlen)
{
    pthread_once(&init_once, init_sodium);
    if (init_rc != 0) {
        snprintf(errstr, errlen, "libsodium could not be initialised");
        return LT_ERR_FATAL;
    }
    return LT_OK;
}

/* ---- KIDs and refs ---- */

static int kid_valid(const char *s, size_t n)
{
    if (n < 1 || n > LT_SEAL_KID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
    return 1;
}

int lt_seal_is_sealed(const char *ref)
{
    return ref && !strncmp(ref, "sealed:", 7);
}

/* Splits a sealed ref into its KID and blob text; LT_OK or the reason. */
static lt_err_t split_ref(const char *ref, const char **kid, size_t *kidlen, const char **blob,
                          char *errstr, size_t errlen)
{
    size_t plen = sizeof(LT_SEAL_PREFIX) - 1, n, blen;
    const char *p;

    if (!lt_seal_is_sealed(ref)) {
        snprintf(errstr, errlen, "password_ref: not a sealed ref");
        return LT_ERR_PERMANENT;
    }
    if (strncmp(ref, LT_SEAL_PREFIX, plen)) {
        snprintf(errstr, errlen,
                 "password_ref sealed: unsupported version (this ltvsync reads " LT_SEAL_PREFIX
                 "KID:BLOB only)");
        return LT_ERR_PERMANENT;
    }
    p = ref + plen;
    n = strcspn(p, ":");
    if (!kid_valid(p, n) || p[n] != ':') {
        snprintf(errstr, errlen,
                 "password_ref " LT_SEAL_PREFIX "...: the key id must be 1-%d characters of "
                 "a-z, 0-9 and - followed by ':' and the sealed blob",
                 LT_SEAL_KID_MAX);
        return LT_ERR_PERMANENT;
    }
    *kid = p;
    *kidlen = n;
    *blob = p + n + 1;
    blen = strnlen(*blob, LT_SEAL_BLOB_B64 + 1);
    if (blen != LT_SEAL_BLOB_B64 ||
        strspn(*blob, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") !=
            LT_SEAL_BLOB_B64) {
        snprintf(errstr, errlen,
                 "password_ref " LT_SEAL_PREFIX "%.*s: the sealed blob is garbled or truncated "
                 "(want %d base64url characters; seal the password again)",
                 (int)n, p, LT_SEAL_BLOB_B64);
        return LT_ERR_PERMANENT;
    }
    return LT_OK;
}

lt_err_t lt_seal_check_ref(const char *ref, char *errstr, size_t errlen)
{
    const char *kid, *blob;
    size_t kidlen;
    return split_ref(ref, &kid, &kidlen, &blob, errstr, errlen);
}

int lt_seal_ref_kid(const char *ref, char kid[LT_SEAL_KID_MAX + 1])
{
    const char *k, *blob;
    size_t n;
    char err[256]; /* unused, but snprintf into a short buffer fails -Wformat-truncation at -O2 */
    if (split_ref(ref, &k, &n, &blob, err, sizeof(err)) != LT_OK)
        return -1;
    memcpy(kid, k, n);
    kid[n] = '\0';
    return 0;
}

void lt_seal_redact(const char *ref, char *out, size_t outlen)
{
    char kid[LT_SEAL_KID_MAX + 1];
    if (!outlen)
        return;
    if (!lt_seal_is_sealed(ref))
        snprintf(out, outlen, "%s", ref ? ref : "");
    else if (lt_seal_ref_kid(ref, kid) == 0)
        snprintf(out, outlen, LT_SEAL_PREFIX "%s", kid);
    else
        snprintf(out, outlen, "sealed:invalid");
}

/* ---- the key ring ---- */

void lt_seal_ring_free(lt_seal_ring_t *ring)
{
    if (!ring)
        return;
    if (ring->keys)
        sodium_free(ring->keys); /* wipes */
    sodium_memzero(ring, sizeof(*ring));
    free(ring);
}

size_t lt_seal_ring_size(const lt_seal_ring_t *ring)
{
    return ring ? ring->n : 0;
}

const char *lt_seal_ring_kid(const lt_seal_ring_t *ring, size_t i)
{
    return ring && i < ring->n ? ring->kid[i] : NULL;
}

static long find_kid(const lt_seal_ring_t *ring, const char *kid, size_t n)
{
    for (size_t i = 0; i < ring->n; i++)
        if (strlen(ring->kid[i]) == n && !memcmp(ring->kid[i], kid, n))
            return (long)i;
    return -1;
}

int lt_seal_ring_has(const lt_seal_ring_t *ring, const char *kid)
{
    return ring && kid && find_kid(ring, kid, strlen(kid)) >= 0;
}

/* One line (not NUL-terminated, without its '\n'): "KID BASE64KEY", a
 * comment or blank. Decodes the key straight into the ring's memory. */
static lt_err_t parse_line(lt_seal_ring_t *ring, const char *s, size_t len, int *lines, char *why,
                           size_t whylen)
{
    const char *kid, *key, *end = s + len;
    size_t kidlen, keylen, got = 0;
    const char *b64end = NULL;
    unsigned char *slot;
    long dup;

    while (end > s && (end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    if (s == end || *s == '#')
        return LT_OK;
    kid = s;
    kidlen = strcspn(kid, " \t");
    if (kid + kidlen >= end) {
        snprintf(why, whylen, "expected \"KID BASE64KEY\" (two fields)");
        return LT_ERR_PERMANENT;
    }
    if (!kid_valid(kid, kidlen)) {
        snprintf(why, whylen, "the key id (first field) must be 1-%d characters of a-z, 0-9 and -",
                 LT_SEAL_KID_MAX);
        return LT_ERR_PERMANENT;
    }
    key = kid + kidlen;
    while (key < end && (*key == ' ' || *key == '\t'))
        key++;
    keylen = (size_t)(end - key);
    if (memchr(key, ' ', keylen) || memchr(key, '\t', keylen)) {
        snprintf(why, whylen, "key %.*s: expected \"KID BASE64KEY\" (two fields)", (int)kidlen,
                 kid);
        return LT_ERR_PERMANENT;
    }
    if ((dup = find_kid(ring, kid, kidlen)) >= 0) {
        snprintf(why, whylen, "key %.*s: the key id appears twice (first on line %d)", (int)kidlen,
                 kid, lines[dup]);
        return LT_ERR_PERMANENT;
    }
    if (ring->n >= LT_SEAL_MAX_KEYS) {
        snprintf(why, whylen, "more than %d keys", LT_SEAL_MAX_KEYS);
        return LT_ERR_PERMANENT;
    }
    slot = ring->keys + ring->n * LT_SEAL_KEY_BYTES;
    if (sodium_base642bin(slot, LT_SEAL_KEY_BYTES, key, keylen, NULL, &got, &b64end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        b64end != key + keylen || got != LT_SEAL_KEY_BYTES) {
        sodium_memzero(slot, LT_SEAL_KEY_BYTES);
        snprintf(why, whylen,
                 "key %.*s: the key must be 32 bytes in standard base64 (44 characters; "
                 "`ltvctl secrets keygen` prints a line)",
                 (int)kidlen, kid);
        return LT_ERR_PERMANENT;
    }
    if (sodium_is_zero(slot, LT_SEAL_KEY_BYTES)) {
        snprintf(why, whylen, "key %.*s: the key is all zero bytes (a placeholder?)", (int)kidlen,
                 kid);
        return LT_ERR_PERMANENT;
    }
    memcpy(ring->kid[ring->n], kid, kidlen);
    ring->kid[ring->n][kidlen] = '\0';
    ring->n++;
    return LT_OK;
}

lt_err_t lt_seal_ring_parse(const char *text, size_t len, const char *name, lt_seal_ring_t **out,
                            char *errstr, size_t errlen)
{
    lt_seal_ring_t *ring = NULL;
    lt_err_t err;
    char why[256];
    int lineno = 0, lines[LT_SEAL_MAX_KEYS];
    const char *p = text, *end = text + len;

    *out = NULL;
    if ((err = ready(errstr, errlen)) != LT_OK)
        return err;
    if (len > LT_SEAL_FILE_MAX)
        FAIL("seal key file %.200s: larger than %d bytes", name, LT_SEAL_FILE_MAX);
    if (memchr(text, '\0', len))
        FAIL("seal key file %.200s: contains a NUL byte (not a text file)", name);
    if (!(ring = calloc(1, sizeof(*ring))) ||
        !(ring->keys = sodium_malloc(LT_SEAL_MAX_KEYS * LT_SEAL_KEY_BYTES))) {
        snprintf(errstr, errlen, "out of memory");
        err = LT_ERR_FATAL;
        goto end;
    }
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        size_t before;
        lineno++;
        if (n > LT_SEAL_LINE_MAX)
            FAIL("seal key file %.200s line %d: longer than %d bytes", name, lineno,
                 LT_SEAL_LINE_MAX);
        before = ring->n;
        if (parse_line(ring, p, n, lines, why, sizeof(why)) != LT_OK)
            FAIL("seal key file %.200s line %d: %s", name, lineno, why);
        if (ring->n > before)
            lines[before] = lineno;
        p += n + (nl != NULL);
    }
    if (!ring->n)
        FAIL("seal key file %.200s: no key (want lines \"KID BASE64KEY\"; the first one seals; "
             "`ltvctl secrets keygen` prints one)",
             name);
    sodium_mprotect_readonly(ring->keys);
    *out = ring;
    ring = NULL;
    err = LT_OK;
end:
    lt_seal_ring_free(ring);
    return err;
}

typedef struct {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
} file_sig_t;

static void sig_of(const struct stat *st, file_sig_t *s)
{
    memset(s, 0, sizeof(*s));
    s->dev = st->st_dev;
    s->ino = st->st_ino;
    s->size = st->st_size;
    s->mtime = st->st_mtim;
    s->ctime = st->st_ctim;
}

static int sig_eq(const file_sig_t *a, const file_sig_t *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
           a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

/* Loads path; *sig (when not NULL) is the signature of what was read. */
static lt_err_t load_file(const char *path, lt_seal_ring_t **ring, file_sig_t *sig, char *errstr,
                          size_t errlen)
{
    char *buf = NULL;
    size_t n = 0;
    ssize_t got = 0;
    struct stat st;
    lt_err_t err;
    int fd = -1;

    *ring = NULL;
    if ((err = ready(errstr, errlen)) != LT_OK)
        return err;
    if (!path || !*path)
        FAIL("SEAL_KEY_FILE: not set (LTVSYNC_SEAL_KEY_FILE names the key ring that seals "
             "typed-in passwords)");
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0)
        FAIL("seal key file %.200s: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        FAIL("seal key file %.200s: not a regular file", path);
    if (st.st_size > LT_SEAL_FILE_MAX)
        FAIL("seal key file %.200s: larger than %d bytes", path, LT_SEAL_FILE_MAX);
    if (!(buf = sodium_malloc(LT_SEAL_FILE_MAX + 1))) {
        snprintf(errstr, errlen, "out of memory");
        err = LT_ERR_FATAL;
        goto end;
    }
    while (n <= LT_SEAL_FILE_MAX && (got = read(fd, buf + n, LT_SEAL_FILE_MAX + 1 - n)) > 0)
        n += (size_t)got;
    if (got < 0)
        FAIL("seal key file %.200s: %s", path, strerror(errno));
    if (sig)
        sig_of(&st, sig);
    err = lt_seal_ring_parse(buf, n, path, ring, errstr, errlen);
end:
    if (buf)
        sodium_free(buf); /* wipes */
    if (fd >= 0)
        close(fd);
    return err;
}

lt_err_t lt_seal_ring_load(const char *path, lt_seal_ring_t **ring, char *errstr, size_t errlen)
{
    return load_file(path, ring, NULL, errstr, errlen);
}

/* ---- seal and open ---- */

/* "ltvsync-seal-v1" NUL KID NUL integration_id */
static size_t make_ad(unsigned char *ad, size_t adlen, const char *kid, size_t kidlen,
                      const char *iid)
{
    size_t ilen = strlen(iid), n = sizeof(AD_LABEL);
    if (n + kidlen + 1 + ilen > adlen)
        return 0;
    memcpy(ad, AD_LABEL, n);
    memcpy(ad + n, kid, kidlen);
    ad[n + kidlen] = '\0';
    memcpy(ad + n + kidlen + 1, iid, ilen);
    return n + kidlen + 1 + ilen;
}

static int iid_ok(const char *iid)
{
    return iid && lt_integration_id_valid(iid);
}

lt_err_t lt_seal(const lt_seal_ring_t *ring, const char *integration_id, const char *password,
                 char *ref, size_t reflen, char *errstr, size_t errlen)
{
    unsigned char pad[PAD_BYTES], blob[LT_SEAL_BLOB_BYTES], ad[128];
    char b64[LT_SEAL_BLOB_B64 + 1];
    size_t plen, padded = 0, adlen;
    unsigned long long clen = 0;
    const char *kid;
    lt_err_t err;

    if ((err = ready(errstr, errlen)) != LT_OK)
        return err;
    if (!ring || !ring->n)
        FAIL("seal: no key ring");
    if (!iid_ok(integration_id))
        FAIL("id: must match [a-z0-9-]{1,64}");
    plen = password ? strnlen(password, LT_CRM_PASSWORD_MAX + 1) : 0;
    if (!plen || plen > LT_CRM_PASSWORD_MAX)
        FAIL("password: must be 1 to %d bytes", LT_CRM_PASSWORD_MAX);
    kid = ring->kid[0];
    if (reflen <= sizeof(LT_SEAL_PREFIX) - 1 + strlen(kid) + 1 + LT_SEAL_BLOB_B64)
        FAIL("seal: ref buffer too small");
    adlen = make_ad(ad, sizeof(ad), kid, strlen(kid), integration_id);
    memcpy(pad, password, plen);
    if (sodium_pad(&padded, pad, plen, PAD_BYTES, PAD_BYTES) != 0 || padded != PAD_BYTES)
        FAIL("seal: padding failed");
    randombytes_buf(blob, NONCE_BYTES);
    crypto_aead_xchacha20poly1305_ietf_encrypt(blob + NONCE_BYTES, &clen, pad, PAD_BYTES, ad, adlen,
                                               NULL, blob, ring->keys);
    if (clen != PAD_BYTES + TAG_BYTES)
        FAIL("seal: encryption failed");
    sodium_bin2base64(b64, sizeof(b64), blob, sizeof(blob),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    snprintf(ref, reflen, LT_SEAL_PREFIX "%s:%s", kid, b64);
    err = LT_OK;
end:
    sodium_memzero(pad, sizeof(pad));
    return err;
}

lt_err_t lt_seal_open(const lt_seal_ring_t *ring, const char *integration_id, const char *ref,
                      char *buf, size_t buflen, char *errstr, size_t errlen)
{
    unsigned char blob[LT_SEAL_BLOB_BYTES], pad[PAD_BYTES], ad[128];
    const char *kid, *b64, *b64end = NULL;
    size_t kidlen, got = 0, plen = 0, adlen;
    unsigned long long mlen = 0;
    long idx;
    lt_err_t err;

    if (buf && buflen)
        sodium_memzero(buf, buflen);
    if ((err = ready(errstr, errlen)) != LT_OK)
        return err;
    if (!ring || !ring->n)
        FAIL("open: no key ring");
    if ((err = split_ref(ref, &kid, &kidlen, &b64, errstr, errlen)) != LT_OK)
        goto end;
    if (!iid_ok(integration_id))
        FAIL("id: must match [a-z0-9-]{1,64}");
    if ((idx = find_kid(ring, kid, kidlen)) < 0)
        FAIL("password_ref " LT_SEAL_PREFIX "%.*s: no key %.*s in the seal key file (the key "
             "was removed before `ltvctl secrets rotate` re-sealed this password, or the file "
             "is another cluster's)",
             (int)kidlen, kid, (int)kidlen, kid);
    if (sodium_base642bin(blob, sizeof(blob), b64, LT_SEAL_BLOB_B64, NULL, &got, &b64end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        got != sizeof(blob) || b64end != b64 + LT_SEAL_BLOB_B64)
        FAIL("password_ref " LT_SEAL_PREFIX "%.*s: the sealed blob is garbled (seal the "
             "password again)",
             (int)kidlen, kid);
    adlen = make_ad(ad, sizeof(ad), kid, kidlen, integration_id);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            pad, &mlen, NULL, blob + NONCE_BYTES, sizeof(blob) - NONCE_BYTES, ad, adlen, blob,
            ring->keys + (size_t)idx * LT_SEAL_KEY_BYTES) != 0 ||
        mlen != PAD_BYTES)
        FAIL("password_ref " LT_SEAL_PREFIX "%.*s: does not open with key %.*s for integration "
             "%s (sealed for another integration, altered, or a different key under the same "
             "id)",
             (int)kidlen, kid, (int)kidlen, kid, integration_id);
    if (sodium_unpad(&plen, pad, PAD_BYTES, PAD_BYTES) != 0 || plen > LT_CRM_PASSWORD_MAX)
        FAIL("password_ref " LT_SEAL_PREFIX "%.*s: bad padding inside the sealed blob", (int)kidlen,
             kid);
    if (!buf || buflen <= plen)
        FAIL("open: password buffer too small");
    memcpy(buf, pad, plen);
    buf[plen] = '\0';
    err = LT_OK;
end:
    sodium_memzero(pad, sizeof(pad));
    if (err != LT_OK && buf && buflen)
        sodium_memzero(buf, buflen);
    return err;
}

/* ---- keygen ---- */

lt_err_t lt_seal_keygen(const char *kid, char *line, size_t linelen, char *errstr, size_t errlen)
{
    unsigned char key[LT_SEAL_KEY_BYTES];
    char b64[sodium_base64_ENCODED_LEN(LT_SEAL_KEY_BYTES, sodium_base64_VARIANT_ORIGINAL)];
    char autokid[LT_SEAL_KID_MAX + 1];
    lt_err_t err;

    if ((err = ready(errstr, errlen)) != LT_OK)
        return err;
    if (!kid) {
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        if (!strftime(autokid, 10, "k%Y%m%d", &tm))
            snprintf(autokid, 10, "k");
        snprintf(autokid + strlen(autokid), sizeof(autokid) - strlen(autokid), "-%04x",
                 (unsigned)(randombytes_random() & 0xffff));
        kid = autokid;
    }
    if (!kid_valid(kid, strlen(kid)))
        FAIL("--kid: the key id must be 1-%d characters of a-z, 0-9 and -", LT_SEAL_KID_MAX);
    if (linelen < strlen(kid) + 1 + sizeof(b64) + 1)
        FAIL("keygen: line buffer too small");
    randombytes_buf(key, sizeof(key));
    sodium_bin2base64(b64, sizeof(b64), key, sizeof(key), sodium_base64_VARIANT_ORIGINAL);
    snprintf(line, linelen, "%s %s\n", kid, b64);
    err = LT_OK;
end:
    sodium_memzero(key, sizeof(key));
    sodium_memzero(b64, sizeof(b64));
    return err;
}

/* ---- the process's cached ring ---- */

static struct {
    pthread_mutex_t mu;
    char path[PATH_MAX];
    lt_seal_ring_t *ring; /* last good ring of path */
    file_sig_t sig;       /* what it was read from */
    file_sig_t bad;       /* a state of the file that did not load */
    int have_bad;
    char bad_err[384];
} cache = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* With cache.mu held: the current ring of path into *ring. */
static lt_err_t cached_ring(const char *path, lt_seal_ring_t **ring, char *errstr, size_t errlen)
{
    struct stat st;
    file_sig_t now, sig;
    lt_seal_ring_t *fresh = NULL;
    lt_err_t err;
    int same_path;

    *ring = NULL;
    if (!path || !*path) {
        snprintf(errstr, errlen,
                 "SEAL_KEY_FILE: not set (LTVSYNC_SEAL_KEY_FILE names the key ring that seals "
                 "typed-in passwords)");
        return LT_ERR_PERMANENT;
    }
    if (strlen(path) >= sizeof(cache.path)) {
        snprintf(errstr, errlen, "SEAL_KEY_FILE: path too long");
        return LT_ERR_PERMANENT;
    }
    same_path = cache.ring && !strcmp(cache.path, path);
    if (stat(path, &st) != 0) {
        memset(&now, 0, sizeof(now));
        now.size = -1 - errno; /* a distinct "state" per error */
    } else {
        sig_of(&st, &now);
    }
    if (same_path && sig_eq(&now, &cache.sig)) {
        *ring = cache.ring;
        return LT_OK;
    }
    if (!(cache.have_bad && !strcmp(cache.path, path) && sig_eq(&now, &cache.bad))) {
        err = load_file(path, &fresh, &sig, errstr, errlen);
        if (err == LT_OK) {
            lt_seal_ring_free(cache.ring);
            cache.ring = fresh;
            cache.sig = sig;
            cache.have_bad = 0;
            snprintf(cache.path, sizeof(cache.path), "%s", path);
            if (same_path)
                lt_info("seal key file %s re-read: %zu keys, current %s", path, fresh->n,
                        fresh->kid[0]);
            *ring = fresh;
            return LT_OK;
        }
        if (!same_path) {
            lt_seal_ring_free(cache.ring);
            cache.ring = NULL;
            memset(&cache.sig, 0, sizeof(cache.sig));
        }
        snprintf(cache.path, sizeof(cache.path), "%s", path);
        cache.bad = now;
        cache.have_bad = 1;
        snprintf(cache.bad_err, sizeof(cache.bad_err), "%s", errstr);
        if (same_path)
            lt_warn("%s; keeping the %zu keys read before until the file changes", errstr,
                    cache.ring->n);
    }
    if (same_path) {
        *ring = cache.ring;
        return LT_OK;
    }
    snprintf(errstr, errlen, "%s", cache.bad_err);
    return LT_ERR_PERMANENT;
}

lt_err_t lt_seal_file(const char *path, const char *integration_id, const char *password, char *ref,
                      size_t reflen, char *errstr, size_t errlen)
{
    lt_seal_ring_t *ring;
    lt_err_t err;
    pthread_mutex_lock(&cache.mu);
    if ((err = cached_ring(path, &ring, errstr, errlen)) == LT_OK)
        err = lt_seal(ring, integration_id, password, ref, reflen, errstr, errlen);
    pthread_mutex_unlock(&cache.mu);
    return err;
}

lt_err_t lt_seal_open_file(const char *path, const char *integration_id, const char *ref, char *buf,
                           size_t buflen, char *errstr, size_t errlen)
{
    lt_seal_ring_t *ring;
    lt_err_t err;
    pthread_mutex_lock(&cache.mu);
    if ((err = cached_ring(path, &ring, errstr, errlen)) == LT_OK)
        err = lt_seal_open(ring, integration_id, ref, buf, buflen, errstr, errlen);
    pthread_mutex_unlock(&cache.mu);
    if (err != LT_OK && buf && buflen)
        lt_cred_wipe(buf, buflen);
    return err;
}

lt_err_t lt_seal_password_ref(const lt_config_t *cfg, const char *integration_id,
                              const char *password, char *ref, size_t reflen, char *errstr,
                              size_t errlen)
{
    lt_err_t err;
    if (!iid_ok(integration_id)) {
        snprintf(errstr, errlen, "id: must match [a-z0-9-]{1,64}");
        return LT_ERR_PERMANENT;
    }
    if (!password) {
        snprintf(errstr, errlen, "password: required");
        return LT_ERR_PERMANENT;
    }
    if ((err = lt_cred_check_password(password, strnlen(password, LT_CRM_PASSWORD_MAX + 1),
                                      "password", errstr, errlen)) != LT_OK)
        return err;
    return lt_seal_file(lt_config_str(cfg, "SEAL_KEY_FILE"), integration_id, password, ref, reflen,
                        errstr, errlen);
}
