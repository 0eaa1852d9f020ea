/* Unit tests of lt_seal: sealed CRM passwords. Round trip, the integration
 * binding, tampering, unknown and rotated keys, garbled refs, strict key
 * files (errors with line numbers and never a key), the size bound of a
 * 256-byte password, lt_cred_password on a sealed ref, the cached ring that
 * follows the file, lt_seal_password_ref's rules, and concurrent opens
 * while the file is replaced. No error text may hold a password or a key. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lt_cred.h"
#include "lt_seal.h"
#include "lt_test.h"

/* Two fixed keys (32 bytes each, standard base64). */
#define KEY_A "q83vEjRWeJq8ZK3vASNFZ4mrze8BI0VniavN7wEjRWc="
#define KEY_B "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="
#define PW    "s3cret+pw%= #x"

static char tmpdir[] = "/tmp/test_seal.XXXXXX";

static lt_seal_ring_t *ring_of(const char *text)
{
    lt_seal_ring_t *r = NULL;
    char err[512];
    if (lt_seal_ring_parse(text, strlen(text), "ring", &r, err, sizeof(err)) != LT_OK)
        fprintf(stderr, "ring_of: %s\n", err);
    return r;
}

static void no_secret(const char *err)
{
    CHECK(!strstr(err, PW));
    CHECK(!strstr(err, KEY_A));
    CHECK(!strstr(err, KEY_B));
    CHECK(!strstr(err, "q83vEjRW")); /* not even a piece of a key */
    CHECK(!strstr(err, "ZmVkY2Jh"));
}

/* Writes text to dir/name through a rename (as Kubernetes swaps a Secret). */
static void write_ring(const char *path, const char *text)
{
    char tmp[512];
    FILE *f;
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    fputs(text, f);
    fclose(f);
    CHECK(rename(tmp, path) == 0);
}

LT_TEST(round_trip)
{
    lt_seal_ring_t *r = ring_of("# ring\n\nk1 " KEY_A "\nk0\t" KEY_B "  \r\n");
    char ref[512], pw[LT_CRM_PASSWORD_MAX + 1], err[512], ref2[512];
    CHECK(r != NULL);
    if (!r)
        return;
    CHECK_INT(lt_seal_ring_size(r), 2);
    CHECK_STR(lt_seal_ring_kid(r, 0), "k1");
    CHECK_STR(lt_seal_ring_kid(r, 1), "k0");
    CHECK(lt_seal_ring_has(r, "k0") && !lt_seal_ring_has(r, "k2"));
    CHECK_INT(lt_seal(r, "acme", PW, ref, sizeof(ref), err, sizeof(err)), LT_OK);
    CHECK(!strncmp(ref, "sealed:v1:k1:", 13));
    CHECK(!strstr(ref, PW));
    CHECK_INT(lt_seal_check_ref(ref, err, sizeof(err)), LT_OK);
    CHECK_INT(lt_cred_check_ref(ref, err, sizeof(err)), LT_OK);
    CHECK_INT(lt_seal_open(r, "acme", ref, pw, sizeof(pw), err, sizeof(err)), LT_OK);
    CHECK_STR(pw, PW);
    /* a random nonce: the same password seals differently each time */
    CHECK_INT(lt_seal(r, "acme", PW, ref2, sizeof(ref2), err, sizeof(err)), LT_OK);
    CHECK(strcmp(ref, ref2) != 0);
    lt_seal_redact(ref, err, sizeof(err));
    CHECK_STR(err, "sealed:v1:k1");
    lt_seal_redact("file:acme", err, sizeof(err));
    CHECK_STR(err, "file:acme");
    lt_seal_redact("sealed:v1:k1:short", err, sizeof(err));
    CHECK_STR(err, "sealed:invalid");
    lt_seal_ring_free(r);
}

LT_TEST(bound_to_integration_and_tamper_proof)
{
    lt_seal_ring_t *r = ring_of("k1 " KEY_A "\nk0 " KEY_B "\n");
    char ref[512], bad[512], pw[LT_CRM_PASSWORD_MAX + 1], err[512];
    size_t n;
    if (!r)
        return;
    CHECK_INT(lt_seal(r, "acme", PW, ref, sizeof(ref), err, sizeof(err)), LT_OK);
    /* copied into another integration: does not open */
    memset(pw, 'x', sizeof(pw));
    CHECK_INT(lt_seal_open(r, "evil", ref, pw, sizeof(pw), err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK(strstr(err, "does not open with key k1 for integration evil") != NULL);
    CHECK(pw[0] == '\0' && pw[LT_CRM_PASSWORD_MAX] == '\0'); /* wiped */
    no_secret(err);
    /* one character of the blob changed, at the start, middle and end */
    n = strlen(ref);
    for (size_t at = 13; at < n; at += 97) {
        snprintf(bad, sizeof(bad), "%s", ref);
        bad[at] = bad[at] == 'A' ? 'B' : 'A';
        CHECK_INT(lt_seal_open(r, "acme", bad, pw, sizeof(pw), err, sizeof(err)), LT_ERR_PERMANENT);
        CHECK(strstr(err, "k1") != NULL);
        no_secret(err);
    }
    snprintf(bad, sizeof(bad), "%s", ref);
    bad[n - 1] = bad[n - 1] == 'A' ? 'Q' : 'A';
    CHECK_INT(lt_seal_open(r, "acme", bad, pw, sizeof(pw), err, sizeof(err)), LT_ERR_PERMANENT);
    /* relabelled with the other key's id: does not open either */
    snprintf(bad, sizeof(bad), "sealed:v1:k0:%s", ref + 13);
    CHECK_INT(lt_seal_open(r, "acme", bad, pw, sizeof(pw), err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK(strstr(err, "does not open with key k0") != NULL);
    no_secret(err);
    lt_seal_ring_free(r);
}

LT_TEST(unknown_kid_and_rotation)
{
    lt_seal_ring_t *old = ring_of("old " KEY_A "\n");
    lt_seal_ring_t *both = ring_of("new " KEY_B "\nold " KEY_A "\n");
    lt_seal_ring_t *fresh = ring_of("new " KEY_B "\n");
    char ref[512], ref2[512], pw[LT_CRM_PASSWORD_MAX + 1], err[512];
    if (!old || !both || !fresh)
        return;
    CHECK_INT(lt_seal(old, "acme", PW, ref, sizeof(ref), err, sizeof(err)), LT_OK);
    /* the new key first, the old one still in the ring: the old blob opens */
    CHECK_INT(lt_seal_open(both, "acme", ref, pw, sizeof(pw), err, sizeof(err)), LT_OK);
    CHECK_STR(pw, PW);
    /* and re-sealing uses the new key */
    CHECK_INT(lt_seal(both, "acme", pw, ref2, sizeof(ref2), err, sizeof(err)), LT_OK);
    CHECK(!strncmp(ref2, "sealed:v1:new:", 14));
    /* the old key removed: the old blob names the missing key, the new opens */
    CHECK_INT(lt_seal_open(fresh, "acme", ref, pw, sizeof(pw), err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK(strstr(err, "no key old in the seal key file") != NULL);
    no_secret(err);
    CHECK_INT(lt_seal_open(fresh, "acme", ref2, pw, sizeof(pw), err, sizeof(err)), LT_OK);
    CHECK_STR(pw, PW);
    /* the new blob needs the new key */
    CHECK_INT(lt_seal_open(old, "acme", ref2, pw, sizeof(pw), err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK(strstr(err, "no key new") != NULL);
    lt_seal_ring_free(old);
    lt_seal_ring_free(both);
    lt_seal_ring_free(fresh);
}

LT_TEST(garbled_refs)
{
    lt_seal_ring_t *r = ring_of("k1 " KEY_A "\n");
    char ref[512], bad[600], pw[LT_CRM_PASSWORD_MAX + 1], err[512];
    if (!r)
        return;
    CHECK_INT(lt_seal(r, "acme", PW, ref, sizeof(ref), err, sizeof(err)), LT_OK);
    const char *blob = ref + 13;
    struct {
        const char *fmt; /* %s = the good blob */
        const char *why;
    } cases[] = {
        {"sealed:v1:k1:%.300s", "garbled or truncated"},  /* truncated */
        {"sealed:v1:k1:%sAAAA", "garbled or truncated"},  /* longer */
        {"sealed:v1:k1:", "garbled or truncated"},        /* no blob */
        {"sealed:v1:k1", "key id"},                       /* no ':' */
        {"sealed:v1::%s", "key id"},                      /* empty KID */
        {"sealed:v1:K1:%s", "key id"},                    /* upper case */
        {"sealed:v1:abcdefghijklmnopq:%s", "key id"},     /* 17 characters */
        {"sealed:v2:k1:%s", "unsupported version"},       /* a later format */
        {"sealed:%s", "unsupported version"},             /* no version */
        {"sealed:v1:k1:+%.395s", "garbled or truncated"}, /* not base64url */
        {"sealed:v1:k1:%.395s=", "garbled or truncated"}, /* padding */
        {"sealed:v1:k1:%.200s\n%.195s", "garbled or truncated"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(bad, sizeof(bad), cases[i].fmt, blob, blob + 200);
#pragma GCC diagnostic pop
        memset(pw, 'x', sizeof(pw));
        CHECK_INT(lt_seal_check_ref(bad, err, sizeof(err)), LT_ERR_PERMANENT);
        CHECK(strstr(err, cases[i].why) != NULL);
        CHECK_INT(lt_cred_check_ref(bad, err, sizeof(err)), LT_ERR_PERMANENT);
        CHECK_INT(lt_seal_open(r, "acme", bad, pw, sizeof(pw), err, sizeof(err)), LT_ERR_PERMANENT);
        if (!strstr(err, cases[i].why))
            fprintf(stderr, "case %zu: %s\n", i, err);
        CHECK(strstr(err, cases[i].why) != NULL);
        CHECK(!strstr(err, blob + 20)); /* the blob is not echoed */
        CHECK(pw[0] == '\0');
    }
    /* the last base64 character carries 2 unused bits: a different value
     * there is caught by the decoder or the tag, never accepted */
    snprintf(bad, sizeof(bad), "%s", ref);
    bad[strlen(bad) - 1] = bad[strlen(bad) - 1] == 'B' ? 'C' : 'B';
    CHECK(lt_seal_open(r, "acme", bad, pw, sizeof(pw), err, sizeof(err)) != LT_OK);
    /* refs that are not sealed ones keep their own rules */
    CHECK_INT(lt_cred_check_ref("sealedv1:x", err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK(strstr(err, "sealed password") != NULL);
    CHECK_INT(lt_cred_check_ref("file:acme", err, sizeof(err)), LT_OK);
    CHECK(!lt_seal_is_sealed("file:acme") && lt_seal_is_sealed("sealed:"));
    lt_seal_ring_free(r);
}

LT_TEST(bad_key_files)
{
    char big[LT_SEAL_FILE_MAX + 64], many[64 * 40], err[512];
    lt_seal_ring_t *r = NULL;
    struct {
        const char *text;
        const char *why;
    } cases[] = {
        {"", "no key"},
        {"# only a comment\n\n", "no key"},
        {KEY_A "\n", "line 1: expected \"KID BASE64KEY\""}, /* a key without its id */
        {"k1 " KEY_A "\n" KEY_B "\n", "line 2: expected"},
        {"K1 " KEY_A "\n", "line 1: the key id"},
        {"k_1 " KEY_A "\n", "line 1: the key id"},
        {"abcdefghijklmnopq " KEY_A "\n", "line 1: the key id"},
        {KEY_A " k1\n", "line 1: the key id"}, /* swapped: the key is not echoed */
        {"k1 " KEY_A " extra\n", "line 1: key k1: expected"},
        {"k1 q83vEjRWeJq8ZK3vASNFZ4mrze8BI0VniavN7wEjRQ==\n", "line 1: key k1: the key must be 32"},
        {"k1 " KEY_A "AAAA\n", "line 1: key k1: the key must be 32"},
        {"k1 q83vEjRWeJq8ZK3vASNFZ4mrze8BI0VniavN7wEjRWc\n", "key k1: the key must be 32"},
        {"k1 q83vEjRW-Jq8ZK3vASNFZ4mrze8BI0VniavN7wEjRWc=\n", "key k1: the key must be 32"},
        {"k1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", "key k1: the key is all zero"},
        {"k1 " KEY_A "\n# c\nk1 " KEY_B "\n", "line 3: key k1: the key id appears twice (first "
                                              "on line 1)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CHECK_INT(lt_seal_ring_parse(cases[i].text, strlen(cases[i].text), "/k/ring", &r, err,
                                     sizeof(err)),
                  LT_ERR_PERMANENT);
        CHECK(r == NULL);
        if (!strstr(err, cases[i].why))
            fprintf(stderr, "case %zu: %s\n", i, err);
        CHECK(strstr(err, cases[i].why) != NULL);
        CHECK(strstr(err, "seal key file /k/ring") != NULL);
        no_secret(err);
    }
    /* a NUL byte, an overlong line, too many keys, a file too big */
    CHECK_INT(lt_seal_ring_parse("k1 " KEY_A "\0\n", 48, "f", &r, err, sizeof(err)),
              LT_ERR_PERMANENT);
    CHECK(strstr(err, "NUL") != NULL);
    memset(big, '#', sizeof(big));
    CHECK_INT(lt_seal_ring_parse(big, LT_SEAL_LINE_MAX + 1, "f", &r, err, sizeof(err)),
              LT_ERR_PERMANENT);
    CHECK(strstr(err, "line 1: longer than 256 bytes") != NULL);
    CHECK_INT(lt_seal_ring_parse(big, sizeof(big), "f", &r, err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK(strstr(err, "larger than 16384 bytes") != NULL);
    many[0] = '\0';
    for (int i = 0; i <= LT_SEAL_MAX_KEYS; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "k%d %s\n", i,
                 i % 2 ? KEY_A : KEY_B);
    CHECK_INT(lt_seal_ring_parse(many, strlen(many), "f", &r, err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK(strstr(err, "line 33: more than 32 keys") != NULL);
    no_secret(err);
    /* files: missing, a directory */
    CHECK_INT(lt_seal_ring_load("/nonexistent/ring", &r, err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK(strstr(err, "/nonexistent/ring") != NULL);
    CHECK_INT(lt_seal_ring_load(tmpdir, &r, err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK(strstr(err, "not a regular file") != NULL);
    CHECK_INT(lt_seal_ring_load(NULL, &r, err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK(strstr(err, "SEAL_KEY_FILE") != NULL);
}

LT_TEST(size_bound)
{
    lt_seal_ring_t *r = ring_of("abcdefghijklmnop " KEY_A "\n");
    char longest[LT_CRM_PASSWORD_MAX + 2], ref[512], ref1[512], pw[LT_CRM_PASSWORD_MAX + 1],
        err[512];
    lt_integration_t in;
    if (!r)
        return;
    memset(longest, 'p', sizeof(longest));
    longest[LT_CRM_PASSWORD_MAX] = '\0';
    CHECK_INT(lt_seal(r, "acme", longest, ref, sizeof(ref), err, sizeof(err)), LT_OK);
    CHECK_INT(strlen(ref), LT_SEAL_REF_LEN);
    CHECK(strlen(ref) < sizeof(in.password_ref));
    CHECK_INT(lt_seal_open(r, "acme", ref, pw, sizeof(pw), err, sizeof(err)), LT_OK);
    CHECK_STR(pw, longest);
    /* every ref has the same length: the password's length does not show */
    CHECK_INT(lt_seal(r, "acme", "x", ref1, sizeof(ref1), err, sizeof(err)), LT_OK);
    CHECK_INT(strlen(ref1), strlen(ref));
    /* 257 bytes, an empty password, a short buffer: refused */
    longest[LT_CRM_PASSWORD_MAX] = 'p';
    longest[LT_CRM_PASSWORD_MAX + 1] = '\0';
    CHECK_INT(lt_seal(r, "acme", longest, ref, sizeof(ref), err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK_INT(lt_seal(r, "acme", "", ref, sizeof(ref), err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK_INT(lt_seal(r, "acme", "x", ref, 100, err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK_INT(lt_seal(r, "Bad_Id", "x", ref, sizeof(ref), err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK(strstr(err, "id: ") == err);
    lt_seal_ring_free(r);
}

LT_TEST(keygen)
{
    char l1[128], l2[128], err[256], both[300];
    lt_seal_ring_t *r;
    CHECK_INT(lt_seal_keygen("k2", l1, sizeof(l1), err, sizeof(err)), LT_OK);
    CHECK(!strncmp(l1, "k2 ", 3) && strlen(l1) == 3 + 44 + 1);
    CHECK_INT(lt_seal_keygen(NULL, l2, sizeof(l2), err, sizeof(err)), LT_OK);
    CHECK(l2[0] == 'k' && strcmp(l1 + 3, l2 + strcspn(l2, " ") + 1) != 0);
    snprintf(both, sizeof(both), "%s%s", l1, l2);
    r = ring_of(both);
    CHECK(r && lt_seal_ring_size(r) == 2);
    lt_seal_ring_free(r);
    CHECK_INT(lt_seal_keygen("Bad", l1, sizeof(l1), err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK(strstr(err, "--kid") != NULL);
}

/* The cached ring follows the file: a new first key seals, the old one
 * still opens, a broken file keeps the last good ring. */
LT_TEST(file_cache_follows_rotation)
{
    char path[256], ref_old[512], ref_new[512], pw[LT_CRM_PASSWORD_MAX + 1], err[512];
    snprintf(path, sizeof(path), "%s/ring", tmpdir);
    CHECK_INT(lt_seal_file(path, "acme", PW, ref_old, sizeof(ref_old), err, sizeof(err)),
              LT_ERR_PERMANENT); /* no file yet */
    CHECK(strstr(err, path) != NULL);
    write_ring(path, "old " KEY_A "\n");
    CHECK_INT(lt_seal_file(path, "acme", PW, ref_old, sizeof(ref_old), err, sizeof(err)), LT_OK);
    CHECK(!strncmp(ref_old, "sealed:v1:old:", 14));
    write_ring(path, "new " KEY_B "\nold " KEY_A "\n");
    CHECK_INT(lt_seal_file(path, "acme", PW, ref_new, sizeof(ref_new), err, sizeof(err)), LT_OK);
    CHECK(!strncmp(ref_new, "sealed:v1:new:", 14));
    CHECK_INT(lt_seal_open_file(path, "acme", ref_old, pw, sizeof(pw), err, sizeof(err)), LT_OK);
    CHECK_STR(pw, PW);
    write_ring(path, "new " KEY_B "\n");
    CHECK_INT(lt_seal_open_file(path, "acme", ref_old, pw, sizeof(pw), err, sizeof(err)),
              LT_ERR_PERMANENT);
    CHECK(strstr(err, "no key old") != NULL);
    CHECK_INT(lt_seal_open_file(path, "acme", ref_new, pw, sizeof(pw), err, sizeof(err)), LT_OK);
    /* a broken file: the last good ring stays in use (with a warning) */
    write_ring(path, "new not-base64\n");
    CHECK_INT(lt_seal_open_file(path, "acme", ref_new, pw, sizeof(pw), err, sizeof(err)), LT_OK);
    CHECK_STR(pw, PW);
    unlink(path);
    CHECK_INT(lt_seal_open_file(path, "acme", ref_new, pw, sizeof(pw), err, sizeof(err)), LT_OK);
    /* another path that does not load: its error */
    CHECK_INT(
        lt_seal_open_file("/nonexistent/ring", "acme", ref_new, pw, sizeof(pw), err, sizeof(err)),
        LT_ERR_PERMANENT);
    CHECK(pw[0] == '\0');
}

LT_TEST(cred_password_sealed)
{
    char path[256], ref[512], pw[LT_CRM_PASSWORD_MAX + 1], err[512];
    lt_cred_policy_t p = {.dir = "/nonexistent",
                          .hosts_konnektive = "api.konnektive.com",
                          .hosts_checkoutchamp = "api.checkoutchamp.com",
                          .allow_insecure = 1};
    lt_integration_t in = {.id = "acme", .brand = "konnektive", .base_url = "http://127.0.0.1:9"};
    snprintf(path, sizeof(path), "%s/cred-ring", tmpdir);
    write_ring(path, "c1 " KEY_A "\n");
    p.seal_key_file = path;
    CHECK_INT(lt_seal_file(path, "acme", PW, ref, sizeof(ref), err, sizeof(err)), LT_OK);
    snprintf(in.password_ref, sizeof(in.password_ref), "%s", ref);
    CHECK_INT(lt_cred_password(&p, &in, pw, sizeof(pw), err, sizeof(err)), LT_OK);
    CHECK_STR(pw, PW);
    /* another integration's id: refused, pw wiped, no blob in the error */
    snprintf(in.id, sizeof(in.id), "other");
    CHECK_INT(lt_cred_password(&p, &in, pw, sizeof(pw), err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK(pw[0] == '\0' && strstr(err, "for integration other") && !strstr(err, ref + 13));
    no_secret(err);
    /* no SEAL_KEY_FILE */
    snprintf(in.id, sizeof(in.id), "acme");
    p.seal_key_file = NULL;
    CHECK_INT(lt_cred_password(&p, &in, pw, sizeof(pw), err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK(strstr(err, "SEAL_KEY_FILE") != NULL);
    /* a sealed password with '&' (sealed by something that skipped the
     * rules) is refused when opened, the CRM's reason given */
    p.seal_key_file = path;
    CHECK_INT(lt_seal_file(path, "acme", "a&b", ref, sizeof(ref), err, sizeof(err)), LT_OK);
    snprintf(in.password_ref, sizeof(in.password_ref), "%s", ref);
    CHECK_INT(lt_cred_password(&p, &in, pw, sizeof(pw), err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK(strstr(err, "password_ref sealed:v1:c1: the API password contains '&'") != NULL);
    CHECK(!strstr(err, "a&b"));
}

LT_TEST(password_ref_helper)
{
    char path[256], ref[512], pw[LT_CRM_PASSWORD_MAX + 1], err[512], big[300];
    lt_config_t *cfg = lt_config_new(LT_SVC_FETCHER);
    CHECK(cfg != NULL);
    if (!cfg)
        return;
    CHECK_INT(lt_seal_password_ref(cfg, "acme", PW, ref, sizeof(ref), err, sizeof(err)),
              LT_ERR_PERMANENT);
    CHECK(strstr(err, "SEAL_KEY_FILE: not set") == err);
    snprintf(path, sizeof(path), "%s/helper-ring", tmpdir);
    write_ring(path, "h1 " KEY_B "\n");
    CHECK_INT(lt_config_set(cfg, "SEAL_KEY_FILE", path, err, sizeof(err)), LT_OK);
    CHECK_INT(lt_seal_password_ref(cfg, "acme", PW, ref, sizeof(ref), err, sizeof(err)), LT_OK);
    CHECK(!strncmp(ref, "sealed:v1:h1:", 13));
    CHECK_INT(lt_seal_open_file(path, "acme", ref, pw, sizeof(pw), err, sizeof(err)), LT_OK);
    CHECK_STR(pw, PW);
    CHECK_INT(lt_seal_password_ref(cfg, "acme", "a&" PW, ref, sizeof(ref), err, sizeof(err)),
              LT_ERR_PERMANENT);
    CHECK(strstr(err, "password: ") == err && strstr(err, "must not have an & sign"));
    no_secret(err);
    CHECK_INT(lt_seal_password_ref(cfg, "acme", "", ref, sizeof(ref), err, sizeof(err)),
              LT_ERR_PERMANENT);
    CHECK(strstr(err, "password: the password is empty") == err);
    memset(big, 'x', sizeof(big));
    big[LT_CRM_PASSWORD_MAX + 1] = '\0';
    CHECK_INT(lt_seal_password_ref(cfg, "acme", big, ref, sizeof(ref), err, sizeof(err)),
              LT_ERR_PERMANENT);
    CHECK(strstr(err, "password: the password is longer than 256 bytes") == err);
    CHECK_INT(lt_seal_password_ref(cfg, "../x", PW, ref, sizeof(ref), err, sizeof(err)),
              LT_ERR_PERMANENT);
    CHECK(strstr(err, "id: ") == err);
    lt_config_destroy(cfg);
}

/* Worker threads open through the cache while the file is replaced. */
static const char *thread_path;
static const char *thread_ref;
static int thread_failures;
static pthread_mutex_t thread_mu = PTHREAD_MUTEX_INITIALIZER;

static void *opener(void *arg)
{
    char pw[LT_CRM_PASSWORD_MAX + 1], err[512];
    (void)arg;
    for (int i = 0; i < 300; i++) {
        if (lt_seal_open_file(thread_path, "acme", thread_ref, pw, sizeof(pw), err, sizeof(err)) !=
                LT_OK ||
            strcmp(pw, PW)) {
            pthread_mutex_lock(&thread_mu);
            thread_failures++;
            pthread_mutex_unlock(&thread_mu);
        }
    }
    return NULL;
}

LT_TEST(concurrent_opens_during_rotation)
{
    char path[256], ref[512], err[512];
    pthread_t t[4];
    snprintf(path, sizeof(path), "%s/mt-ring", tmpdir);
    write_ring(path, "m1 " KEY_A "\n");
    CHECK_INT(lt_seal_file(path, "acme", PW, ref, sizeof(ref), err, sizeof(err)), LT_OK);
    thread_path = path;
    thread_ref = ref;
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, opener, NULL);
    for (int i = 0; i < 40; i++)
        write_ring(path, i % 2 ? "m1 " KEY_A "\n" : "m2 " KEY_B "\nm1 " KEY_A "\n");
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    CHECK_INT(thread_failures, 0);
}

int main(void)
{
    char cmd[64];
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    LT_RUN(round_trip);
    LT_RUN(bound_to_integration_and_tamper_proof);
    LT_RUN(unknown_kid_and_rotation);
    LT_RUN(garbled_refs);
    LT_RUN(bad_key_files);
    LT_RUN(size_bound);
    LT_RUN(keygen);
    LT_RUN(file_cache_follows_rotation);
    LT_RUN(cred_password_sealed);
    LT_RUN(password_ref_helper);
    LT_RUN(concurrent_opens_during_rotation);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return LT_DONE();
}
