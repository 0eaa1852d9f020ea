/* test_config: the settings table, parsers, bounds, precedence, masking and
 * the Kafka pass-through. Each test sets the LTVSYNC_* variables it needs
 * and clears them all afterwards. */
#include <ctype.h>
#include <stdlib.h>
#include <unistd.h>

#include "lt_config.h"
#include "lt_test.h"

static void clear_env(void)
{
    int again = 1;

    while (again) {
        again = 0;
        for (char **e = environ; *e; e++) {
            char name[256];
            size_t n = strcspn(*e, "=");
            if (strncmp(*e, "LTVSYNC_", 8) || n >= sizeof(name))
                continue;
            memcpy(name, *e, n);
            name[n] = '\0';
            unsetenv(name); /* environ changed: rescan */
            again = 1;
            break;
        }
    }
}

static char *write_tmp(const char *text)
{
    static char path[64];
    int fd;

    snprintf(path, sizeof(path), "/tmp/lt_test_config_XXXXXX");
    fd = mkstemp(path);
    if (fd < 0)
        return NULL;
    if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
        close(fd);
        return NULL;
    }
    close(fd);
    return path;
}

/* Runs lt_config_from_args with stdout captured into buf. */
static int run_args(int argc, char **argv, unsigned svc, char *buf, size_t len)
{
    char path[] = "/tmp/lt_test_out_XXXXXX";
    int fd = mkstemp(path), saved = dup(STDOUT_FILENO), rc;
    lt_config_t *cfg = NULL;
    ssize_t n;

    fflush(stdout);
    dup2(fd, STDOUT_FILENO);
    rc = lt_config_from_args(argc, argv, "ltvsync-test", svc, NULL, &cfg);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    lseek(fd, 0, SEEK_SET);
    n = read(fd, buf, len - 1);
    buf[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
    lt_config_destroy(cfg);
    return rc;
}

LT_TEST(table_is_sound)
{
    lt_config_t *cfg = lt_config_new(LT_SVC_ALL);

    CHECK(cfg != NULL); /* every default passes its own validation */
    for (size_t i = 0; i < lt_config_ndefs; i++) {
        const lt_config_def_t *d = &lt_config_defs[i];
        CHECK(d->help && *d->help);
        CHECK(d->services != 0);
        for (const char *p = d->name; *p; p++)
            CHECK(isupper((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_');
        for (size_t j = i + 1; j < lt_config_ndefs; j++)
            CHECK(strcmp(d->name, lt_config_defs[j].name) != 0);
        if (d->type == LT_CFG_INT || d->type == LT_CFG_DURATION || d->type == LT_CFG_SIZE)
            CHECK(d->min <= d->max && d->def != NULL);
    }
    CHECK_INT(lt_config_int(cfg, "SHUTDOWN_GRACE"), 25000);
    CHECK_INT(lt_config_int(cfg, "MAX_MESSAGE_BYTES"), 1024 * 1024);
    CHECK_INT(lt_config_int(cfg, "DEDUPE_TTL"), 400LL * 86400 * 1000);
    CHECK_INT(lt_config_int(cfg, "FETCH_PAGE_SIZE"), 200);
    CHECK_STR(lt_config_str(cfg, "TOPIC_DOWNSTREAM"), "ltv.events.v1");
    CHECK(lt_config_str(cfg, "DOWNSTREAM_BROKERS") == NULL);
    lt_config_destroy(cfg);
    lt_config_destroy(NULL);
}

LT_TEST(durations)
{
    long long ms = -1;

    CHECK_INT(lt_config_parse_duration_ms("250ms", &ms), 0);
    CHECK_INT(ms, 250);
    CHECK_INT(lt_config_parse_duration_ms("30s", &ms), 0);
    CHECK_INT(ms, 30000);
    CHECK_INT(lt_config_parse_duration_ms("15m", &ms), 0);
    CHECK_INT(ms, 900000);
    CHECK_INT(lt_config_parse_duration_ms("1h", &ms), 0);
    CHECK_INT(ms, 3600000);
    CHECK_INT(lt_config_parse_duration_ms("7d", &ms), 0);
    CHECK_INT(ms, 7LL * 86400000);
    CHECK_INT(lt_config_parse_duration_ms("1h30m", &ms), 0);
    CHECK_INT(ms, 5400000);
    CHECK_INT(lt_config_parse_duration_ms("0", &ms), 0);
    CHECK_INT(ms, 0);
    CHECK_INT(lt_config_parse_duration_ms("30", &ms), -1);
    CHECK_INT(lt_config_parse_duration_ms("", &ms), -1);
    CHECK_INT(lt_config_parse_duration_ms("-5s", &ms), -1);
    CHECK_INT(lt_config_parse_duration_ms("5x", &ms), -1);
    CHECK_INT(lt_config_parse_duration_ms("5 s", &ms), -1);
    CHECK_INT(lt_config_parse_duration_ms("1.5s", &ms), -1);
    CHECK_INT(lt_config_parse_duration_ms("5mss", &ms), -1);
    CHECK_INT(lt_config_parse_duration_ms("99999999999999999999d", &ms), -1);
    CHECK_INT(lt_config_parse_duration_ms("999999999999999d", &ms), -1);
}

LT_TEST(sizes)
{
    long long b = -1;

    CHECK_INT(lt_config_parse_size("512", &b), 0);
    CHECK_INT(b, 512);
    CHECK_INT(lt_config_parse_size("64k", &b), 0);
    CHECK_INT(b, 65536);
    CHECK_INT(lt_config_parse_size("16M", &b), 0);
    CHECK_INT(b, 16LL << 20);
    CHECK_INT(lt_config_parse_size("1G", &b), 0);
    CHECK_INT(b, 1LL << 30);
    CHECK_INT(lt_config_parse_size("2MiB", &b), 0);
    CHECK_INT(b, 2LL << 20);
    CHECK_INT(lt_config_parse_size("1T", &b), -1);
    CHECK_INT(lt_config_parse_size("-1k", &b), -1);
    CHECK_INT(lt_config_parse_size("k", &b), -1);
    CHECK_INT(lt_config_parse_size("99999999999999G", &b), -1);
}

LT_TEST(bounds_and_types)
{
    lt_config_t *cfg = lt_config_new(LT_SVC_FETCHER);
    char err[256];

    CHECK_INT(lt_config_set(cfg, "HTTP_PORT", "0", err, sizeof(err)), LT_OK);
    CHECK_INT(lt_config_set(cfg, "HTTP_PORT", "65535", err, sizeof(err)), LT_OK);
    CHECK_INT(lt_config_set(cfg, "HTTP_PORT", "65536", err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK(strstr(err, "LTVSYNC_HTTP_PORT") && strstr(err, "[0, 65535]"));
    CHECK_INT(lt_config_set(cfg, "HTTP_PORT", "-1", err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK_INT(lt_config_set(cfg, "HTTP_PORT", "80a", err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK_INT(lt_config_set(cfg, "HTTP_PORT", "", err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK_INT(lt_config_int(cfg, "HTTP_PORT"), 65535); /* failed sets change nothing */
    CHECK_INT(lt_config_set(cfg, "SHUTDOWN_GRACE", "999ms", err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK(strstr(err, "[1s, 10m]") != NULL);
    CHECK_INT(lt_config_set(cfg, "SHUTDOWN_GRACE", "10m", err, sizeof(err)), LT_OK);
    CHECK_INT(lt_config_set(cfg, "MAX_MESSAGE_BYTES", "1023", err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK_INT(lt_config_set(cfg, "MAX_MESSAGE_BYTES", "64M", err, sizeof(err)), LT_OK);
    CHECK_INT(lt_config_set(cfg, "FETCH_PAGE_SIZE", "201", err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK_INT(lt_config_set(cfg, "LOG_LEVEL", "loud", err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK_INT(lt_config_set(cfg, "LOG_LEVEL", "debug", err, sizeof(err)), LT_OK);
    CHECK_INT(lt_config_set(cfg, "IMPORT_ALL_FROM", "2013-13-01", err, sizeof(err)),
              LT_ERR_PERMANENT);
    CHECK_INT(lt_config_set(cfg, "TOPIC_RAW", "a\nb", err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK_INT(lt_config_set(cfg, "NO_SUCH", "1", err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK_INT(lt_config_set(cfg, "REDIS_URL", "localhost:6379", err, sizeof(err)),
              LT_ERR_PERMANENT);
    /* an invalid URL's error must not quote it: it may carry a password */
    CHECK_INT(lt_config_set(cfg, "REDIS_URL", "redis://:hunter2@", err, sizeof(err)),
              LT_ERR_PERMANENT);
    CHECK(strstr(err, "hunter2") == NULL);
    CHECK_INT(lt_config_set(cfg, "REDIS_URL", "redis://:hunter2@10.0.0.1:6380/2", err, sizeof(err)),
              LT_OK);
    CHECK_STR(lt_config_str(cfg, "REDIS_URL"), "redis://:hunter2@10.0.0.1:6380/2");
    lt_config_destroy(cfg);
}

LT_TEST(redis_prefix)
{
    lt_config_t *cfg = lt_config_new(LT_SVC_SCHEDULER);
    char err[256], long_prefix[66];

    CHECK_STR(lt_config_str(cfg, "REDIS_PREFIX"), "ltvsync:"); /* the default passes */
    CHECK_INT(lt_config_set(cfg, "REDIS_PREFIX", "t-42-ab12:", err, sizeof(err)), LT_OK);
    CHECK_INT(lt_config_set(cfg, "REDIS_PREFIX", "", err, sizeof(err)), LT_OK);
    /* a brace would change the hash tag Redis Cluster reads from each key */
    CHECK_INT(lt_config_set(cfg, "REDIS_PREFIX", "x{y}:", err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK(strstr(err, "LTVSYNC_REDIS_PREFIX") && strstr(err, "x{y}:") && strstr(err, "hash tag"));
    CHECK_INT(lt_config_set(cfg, "REDIS_PREFIX", "ltv{", err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK_INT(lt_config_set(cfg, "REDIS_PREFIX", "ltv}", err, sizeof(err)), LT_ERR_PERMANENT);
    memset(long_prefix, 'p', 64);
    long_prefix[64] = '\0';
    CHECK_INT(lt_config_set(cfg, "REDIS_PREFIX", long_prefix, err, sizeof(err)), LT_OK);
    long_prefix[64] = 'p', long_prefix[65] = '\0';
    CHECK_INT(lt_config_set(cfg, "REDIS_PREFIX", long_prefix, err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK(strstr(err, "64 bytes") != NULL);
    CHECK_INT((int)strlen(lt_config_str(cfg, "REDIS_PREFIX")), 64); /* the failed set: no change */
    lt_config_destroy(cfg);

    /* from the environment, as a service starts: a clear error, no start */
    setenv("LTVSYNC_REDIS_PREFIX", "ltvsync:{prod}:", 1);
    cfg = lt_config_new(LT_SVC_FETCHER);
    CHECK_INT(lt_config_load(cfg, NULL, err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK(strstr(err, "LTVSYNC_REDIS_PREFIX") != NULL);
    lt_config_destroy(cfg);
    clear_env();
}

LT_TEST(group_id_default)
{
    lt_config_t *cfg = lt_config_new(LT_SVC_SINK);

    CHECK_STR(lt_config_str(cfg, "GROUP_ID"), "ltvsync-sink");
    lt_config_destroy(cfg);
    cfg = lt_config_new(LT_SVC_NORMALIZER);
    CHECK_STR(lt_config_str(cfg, "GROUP_ID"), "ltvsync-normalizer");
    lt_config_destroy(cfg);
}

LT_TEST(env_over_file)
{
    const char *file = write_tmp("# a comment\n\n  FETCH_TIMEOUT = 30s\n"
                                 "LTVSYNC_TOPIC_RAW=\"file.raw\"\n"
                                 "KAFKA_CLIENT_ID=from-file\n"
                                 "KAFKA_SOCKET_TIMEOUT_MS=12345\n");
    lt_config_t *cfg = lt_config_new(LT_SVC_FETCHER);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[256], v[64];
    size_t vlen = sizeof(v);

    clear_env();
    CHECK(file != NULL);
    setenv("LTVSYNC_FETCH_TIMEOUT", "45s", 1);
    setenv("LTVSYNC_KAFKA_CLIENT_ID", "from-env", 1);
    CHECK_INT(lt_config_load(cfg, file, err, sizeof(err)), LT_OK);
    CHECK_INT(lt_config_int(cfg, "FETCH_TIMEOUT"), 45000);
    CHECK_STR(lt_config_str(cfg, "TOPIC_RAW"), "file.raw");
    CHECK_STR(lt_config_str(cfg, "CONFIG_FILE"), file);
    CHECK_INT(lt_config_apply_kafka(cfg, "KAFKA_", conf, err, sizeof(err)), LT_OK);
    CHECK_INT(rd_kafka_conf_get(conf, "client.id", v, &vlen), RD_KAFKA_CONF_OK);
    CHECK_STR(v, "from-env");
    vlen = sizeof(v);
    CHECK_INT(rd_kafka_conf_get(conf, "socket.timeout.ms", v, &vlen), RD_KAFKA_CONF_OK);
    CHECK_STR(v, "12345");
    rd_kafka_conf_destroy(conf);
    lt_config_destroy(cfg);
    /* LTVSYNC_CONFIG_FILE names the file when no --config is given */
    setenv("LTVSYNC_CONFIG_FILE", file, 1);
    cfg = lt_config_new(LT_SVC_FETCHER);
    CHECK_INT(lt_config_load(cfg, NULL, err, sizeof(err)), LT_OK);
    CHECK_STR(lt_config_str(cfg, "TOPIC_RAW"), "file.raw");
    lt_config_destroy(cfg);
    unlink(file);
    clear_env();
}

LT_TEST(file_errors)
{
    const char *file = write_tmp("TOPIC_RAW=x\nNOT_A_SETTING=1\n");
    lt_config_t *cfg = lt_config_new(LT_SVC_FETCHER);
    char err[256];

    clear_env();
    CHECK_INT(lt_config_load(cfg, file, err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK(strstr(err, ":2:") && strstr(err, "NOT_A_SETTING"));
    unlink(file);
    file = write_tmp("TOPIC_RAW\n");
    CHECK_INT(lt_config_load(cfg, file, err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK(strstr(err, ":1:") != NULL);
    unlink(file);
    CHECK_INT(lt_config_load(cfg, "/nonexistent/ltvsync.conf", err, sizeof(err)), LT_ERR_PERMANENT);
    setenv("LTVSYNC_HTTP_PORT", "http", 1);
    CHECK_INT(lt_config_load(cfg, NULL, err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK(strstr(err, "LTVSYNC_HTTP_PORT") != NULL);
    lt_config_destroy(cfg);
    clear_env();
}

static const char *conf_get(rd_kafka_conf_t *conf, const char *prop, char *buf, size_t len)
{
    return rd_kafka_conf_get(conf, prop, buf, &len) == RD_KAFKA_CONF_OK ? buf : NULL;
}

LT_TEST(kafka_pass_through)
{
    lt_config_t *cfg = lt_config_new(LT_SVC_SINK);
    rd_kafka_conf_t *conf = rd_kafka_conf_new(), *down = rd_kafka_conf_new();
    char err[256], v[128];

    clear_env();
    setenv("LTVSYNC_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1111", 1);
    setenv("LTVSYNC_KAFKA_CLIENT_ID", "main-id", 1);
    setenv("LTVSYNC_KAFKA_MESSAGE_MAX_BYTES", "2000000", 1);
    setenv("LTVSYNC_DOWNSTREAM_KAFKA_CLIENT_ID", "down-id", 1);
    CHECK_INT(lt_config_load(cfg, NULL, err, sizeof(err)), LT_OK);
    CHECK_INT(lt_config_apply_kafka(cfg, "KAFKA_", conf, err, sizeof(err)), LT_OK);
    CHECK_STR(conf_get(conf, "bootstrap.servers", v, sizeof(v)), "127.0.0.1:1111");
    CHECK_STR(conf_get(conf, "client.id", v, sizeof(v)), "main-id");
    CHECK_STR(conf_get(conf, "message.max.bytes", v, sizeof(v)), "2000000");
    /* no DOWNSTREAM_BROKERS: the main cluster, its properties, then our own */
    CHECK_INT(lt_config_apply_kafka(cfg, "DOWNSTREAM_KAFKA_", down, err, sizeof(err)), LT_OK);
    CHECK_STR(conf_get(down, "bootstrap.servers", v, sizeof(v)), "127.0.0.1:1111");
    CHECK_STR(conf_get(down, "client.id", v, sizeof(v)), "down-id");
    CHECK_STR(conf_get(down, "message.max.bytes", v, sizeof(v)), "2000000");
    rd_kafka_conf_destroy(down);
    lt_config_destroy(cfg);
    /* a separate downstream cluster takes only DOWNSTREAM_KAFKA_ properties */
    setenv("LTVSYNC_DOWNSTREAM_BROKERS", "127.0.0.1:2222", 1);
    cfg = lt_config_new(LT_SVC_SINK);
    down = rd_kafka_conf_new();
    CHECK_INT(lt_config_load(cfg, NULL, err, sizeof(err)), LT_OK);
    CHECK_INT(lt_config_apply_kafka(cfg, "DOWNSTREAM_KAFKA_", down, err, sizeof(err)), LT_OK);
    CHECK_STR(conf_get(down, "bootstrap.servers", v, sizeof(v)), "127.0.0.1:2222");
    CHECK_STR(conf_get(down, "client.id", v, sizeof(v)), "down-id");
    CHECK(strcmp(conf_get(down, "message.max.bytes", v, sizeof(v)), "2000000") != 0);
    rd_kafka_conf_destroy(down);
    rd_kafka_conf_destroy(conf);
    lt_config_destroy(cfg);
    clear_env();
}

LT_TEST(kafka_rejected_secret_not_echoed)
{
    lt_config_t *cfg = lt_config_new(LT_SVC_FETCHER);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[256];

    clear_env();
    setenv("LTVSYNC_KAFKA_SSL_KEY_PASSWORD_TYPO", "s3cr3t-value", 1);
    CHECK_INT(lt_config_load(cfg, NULL, err, sizeof(err)), LT_OK);
    CHECK_INT(lt_config_apply_kafka(cfg, "KAFKA_", conf, err, sizeof(err)), LT_ERR_PERMANENT);
    CHECK(strstr(err, "ssl.key.password.typo") != NULL);
    CHECK(strstr(err, "s3cr3t-value") == NULL);
    rd_kafka_conf_destroy(conf);
    lt_config_destroy(cfg);
    clear_env();
}

LT_TEST(print_config_masks_secrets)
{
    char out[16384];
    char *argv[] = {"ltvsync-test", "--print-config", NULL};

    clear_env();
    setenv("LTVSYNC_REDIS_URL", "redis://user:Pw-redis-1@127.0.0.1:6379/0", 1);
    setenv("LTVSYNC_KAFKA_SASL_PASSWORD", "Pw-sasl-2", 1);
    setenv("LTVSYNC_KAFKA_SASL_JAAS_CONFIG", "Pw-jaas-3", 1);
    setenv("LTVSYNC_KAFKA_SSL_KEY_PEM", "Pw-key-4", 1);
    setenv("LTVSYNC_DOWNSTREAM_KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET", "Pw-oauth-5", 1);
    setenv("LTVSYNC_KAFKA_SASL_OAUTHBEARER_CONFIG", "clientSecret=Pw-6", 1);
    setenv("LTVSYNC_KAFKA_SECURITY_PROTOCOL", "sasl_ssl", 1);
    CHECK_INT(run_args(2, argv, LT_SVC_SINK, out, sizeof(out)), 0);
    CHECK(strstr(out, "Pw-") == NULL);
    CHECK(strstr(out, "LTVSYNC_REDIS_URL=redis://user:********@127.0.0.1:6379/0\n") != NULL);
    CHECK(strstr(out, "LTVSYNC_KAFKA_SASL_PASSWORD=********\n") != NULL);
    CHECK(strstr(out, "LTVSYNC_KAFKA_SSL_KEY_PEM=********\n") != NULL);
    CHECK(strstr(out, "LTVSYNC_KAFKA_SECURITY_PROTOCOL=sasl_ssl\n") != NULL);
    CHECK(strstr(out, "LTVSYNC_DEDUPE_TTL=400d\n") != NULL); /* a sink setting */
    CHECK(strstr(out, "LTVSYNC_FETCH_PAGE_SIZE") == NULL);   /* not a sink setting */
    clear_env();
}

/* Property: for generated Redis URLs in every credential form, with
 * passwords holding '/', '?', '#', '@' and ':', --print-config never shows
 * the password, still shows the host, and the URL is accepted. */
LT_TEST(print_config_masks_every_url_form)
{
    static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "0123456789/?#@:!*-_.~";
    static const char *const hosts[] = {"10.1.2.3", "redis.internal", "[::1]"};
    unsigned seed = 20261203;
    char err[256];
    int failures = 0;

    for (int i = 0; i < 3000; i++) {
        char pw[32], url[160], *out = NULL;
        size_t outlen = 0, n = 12 + (size_t)(rand_r(&seed) % 16);
        int form = (int)(rand_r(&seed) % 3);
        const char *host = hosts[rand_r(&seed) % 3];
        /* "password@" has no user: its password cannot hold ':' (the part
         * before it would be the user, as in any URL). */
        for (size_t k = 0; k < n; k++) {
            char c;
            do
                c = chars[rand_r(&seed) % (sizeof(chars) - 1)];
            while (form == 1 && c == ':');
            pw[k] = c;
        }
        pw[n] = '\0';
        if (form == 0)
            snprintf(url, sizeof(url), "redis://:%s@%s:6380/2", pw, host);
        else if (form == 1)
            snprintf(url, sizeof(url), "redis://%s@%s", pw, host);
        else
            snprintf(url, sizeof(url), "redis://ltv-user:%s@%s:6379", pw, host);
        lt_config_t *cfg = lt_config_new(LT_SVC_ALL);
        FILE *f = open_memstream(&out, &outlen);
        int ok = lt_config_set(cfg, "REDIS_URL", url, err, sizeof(err)) == LT_OK;
        if (ok) {
            lt_config_print(cfg, f);
            fflush(f);
        }
        fclose(f);
        if (!ok || strstr(out, pw) || !strstr(out, host) || strstr(err, pw)) {
            if (failures++ < 5)
                fprintf(stderr, "form %d, password %s: %s\n", form, pw,
                        ok ? "printed or host lost" : "refused");
        }
        free(out);
        lt_config_destroy(cfg);
    }
    CHECK_INT(failures, 0);
}

/* docs/CONFIGURATION.md must be the current --print-config-doc output
 * (tests run in tests/unit). */
static int doc_matches(const char *generated)
{
    static char file[65536];
    FILE *f = fopen("../../docs/CONFIGURATION.md", "r");
    size_t n;

    if (!f)
        return 0;
    n = fread(file, 1, sizeof(file) - 1, f);
    file[n] = '\0';
    fclose(f);
    if (strcmp(file, generated))
        fprintf(stderr, "docs/CONFIGURATION.md is stale: regenerate it with "
                        "--print-config-doc\n");
    return strcmp(file, generated) == 0;
}

LT_TEST(command_line)
{
    char out[65536];
    char *version[] = {"x", "--version", NULL};
    char *bogus[] = {"x", "--bogus", NULL};
    char *missing[] = {"x", "--config", NULL};
    char *help[] = {"x", "--help", NULL};
    char *doc[] = {"x", "--print-config-doc", NULL};
    char *plain[] = {"x", NULL};

    clear_env();
    CHECK_INT(run_args(2, version, LT_SVC_FETCHER, out, sizeof(out)), 0);
    CHECK(strstr(out, LTVSYNC_VERSION) != NULL);
    CHECK_INT(run_args(2, bogus, LT_SVC_FETCHER, out, sizeof(out)), 2);
    CHECK_INT(run_args(2, missing, LT_SVC_FETCHER, out, sizeof(out)), 2);
    CHECK_INT(run_args(2, help, LT_SVC_FETCHER, out, sizeof(out)), 0);
    CHECK(strstr(out, "LTVSYNC_FETCH_CONCURRENCY") != NULL);
    CHECK(strstr(out, "LTVSYNC_DEDUPE_TTL") == NULL);
    CHECK_INT(run_args(2, doc, LT_SVC_FETCHER, out, sizeof(out)), 0);
    for (size_t i = 0; i < lt_config_ndefs; i++) {
        char cell[80];
        snprintf(cell, sizeof(cell), "| `LTVSYNC_%s` |", lt_config_defs[i].name);
        CHECK(strstr(out, cell) != NULL);
    }
    CHECK(doc_matches(out));
    CHECK_INT(run_args(1, plain, LT_SVC_FETCHER, out, sizeof(out)), -1);
    setenv("LTVSYNC_FETCH_CONCURRENCY", "257", 1);
    CHECK_INT(run_args(1, plain, LT_SVC_FETCHER, out, sizeof(out)), 1);
    clear_env();
}

int main(void)
{
    LT_RUN(table_is_sound);
    LT_RUN(durations);
    LT_RUN(sizes);
    LT_RUN(bounds_and_types);
    LT_RUN(redis_prefix);
    LT_RUN(group_id_default);
    LT_RUN(env_over_file);
    LT_RUN(file_errors);
    LT_RUN(kafka_pass_through);
    LT_RUN(kafka_rejected_secret_not_echoed);
    LT_RUN(print_config_masks_secrets);
    LT_RUN(print_config_masks_every_url_form);
    LT_RUN(command_line);
    return LT_DONE();
}
