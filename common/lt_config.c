/* lt_config: the settings table and its loader, validator and printers.
 *
 * Precedence, lowest first: table default, config file, environment, then
 * lt_config_set(). Values are validated when stored, so a loaded config is
 * always within bounds; numbers are parsed once and kept beside the string. */
#include "lt_config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lt_log.h"
#include "lt_rkeys.h"

#define SVC_REDIS     (LT_SVC_SCHEDULER | LT_SVC_FETCHER | LT_SVC_NORMALIZER | LT_SVC_SINK | LT_SVC_CTL)
#define SVC_DAEMONS   (LT_SVC_SCHEDULER | LT_SVC_FETCHER | LT_SVC_NORMALIZER | LT_SVC_SINK)
#define SVC_CONSUMERS SVC_REDIS
#define SVC_CRM       (LT_SVC_FETCHER | LT_SVC_CTL)

#define MS_S 1000LL
#define MS_M (60 * MS_S)
#define MS_H (60 * MS_M)
#define MS_D (24 * MS_H)
#define KIB  1024LL
#define MIB  (1024 * KIB)
#define GIB  (1024 * MIB)

#define ENV_PREFIX    "LTVSYNC_"
#define MAX_VALUE_LEN 4096
#define MASK          "********"

const lt_config_def_t lt_config_defs[] = {
    /* connections */
    {"KAFKA_BOOTSTRAP_SERVERS", LT_CFG_STRING, "127.0.0.1:9092", 0, 0, LT_SVC_ALL,
     "Kafka brokers (host:port,...) of the main cluster"},
    {"DOWNSTREAM_BROKERS", LT_CFG_STRING, NULL, 0, 0, LT_SVC_SINK | LT_SVC_CTL,
     "brokers of the downstream cluster; unset = the main cluster"},
    {"REDIS_URL", LT_CFG_URL, "redis://127.0.0.1:6379/0", 0, 0, SVC_REDIS,
     "Redis: redis://[:password@]host:port[/db]"},
    {"REDIS_PREFIX", LT_CFG_STRING, "ltvsync:", 0, 0, SVC_REDIS,
     "prefix of every Redis key: at most 64 bytes, no '{' or '}'"},
    {"HTTP_PORT", LT_CFG_INT, "8080", 0, 65535, SVC_DAEMONS,
     "port of /healthz, /readyz, /metrics (0 = any free port)"},
    {"HTTP_BIND", LT_CFG_STRING, "0.0.0.0", 0, 0, SVC_DAEMONS,
     "address of that port: an IPv4 or IPv6 literal (:: = IPv6 and IPv4); "
     "probes reach the pod IP, so keep 0.0.0.0 or :: in Kubernetes"},
    {"HTTP_MAX_CONNECTIONS", LT_CFG_INT, "64", 4, 10000, SVC_DAEMONS,
     "open HTTP connections; past it a new connection ends the oldest "
     "(so slow clients cannot lock out the probes)"},
    {"HTTP_TIMEOUT", LT_CFG_DURATION, "5s", 100, 5 * MS_M, SVC_DAEMONS,
     "whole-request deadline of the HTTP port, from connect (or the previous "
     "response) to the response sent; not reset by trickled bytes"},
    {"LOG_LEVEL", LT_CFG_STRING, "info", 0, 0, LT_SVC_ALL, "debug, info, warn or error"},
    {"CONFIG_FILE", LT_CFG_STRING, NULL, 0, 0, LT_SVC_ALL,
     "file of NAME=value lines; the environment wins over it"},
    /* topics */
    {"TOPIC_INTEGRATIONS", LT_CFG_STRING, "ltvsync.integrations", 0, 0,
     LT_SVC_SCHEDULER | LT_SVC_FETCHER | LT_SVC_NORMALIZER | LT_SVC_CTL,
     "compacted topic of integration configs"},
    {"TOPIC_JOBS_LIVE", LT_CFG_STRING, "ltvsync.jobs.live", 0, 0,
     LT_SVC_SCHEDULER | LT_SVC_FETCHER | LT_SVC_CTL, "live and lookback jobs"},
    {"TOPIC_JOBS_BACKFILL", LT_CFG_STRING, "ltvsync.jobs.backfill", 0, 0,
     LT_SVC_SCHEDULER | LT_SVC_FETCHER | LT_SVC_CTL, "backfill and resync jobs"},
    {"TOPIC_RAW", LT_CFG_STRING, "ltvsync.raw", 0, 0,
     LT_SVC_FETCHER | LT_SVC_NORMALIZER | LT_SVC_CTL, "sanitized CRM rows"},
    {"TOPIC_EVENTS", LT_CFG_STRING, "ltvsync.events", 0, 0,
     LT_SVC_NORMALIZER | LT_SVC_SINK | LT_SVC_CTL, "canonical events"},
    {"TOPIC_DOWNSTREAM", LT_CFG_STRING, "ltv.events.v1", 0, 0, LT_SVC_SINK | LT_SVC_CTL,
     "downstream events topic (keyed by event_id)"},
    {"TOPIC_DLQ", LT_CFG_STRING, "ltvsync.dlq", 0, 0,
     LT_SVC_FETCHER | LT_SVC_NORMALIZER | LT_SVC_SINK | LT_SVC_CTL, "dead-letter topic"},
    {"TOPIC_PARTITIONS", LT_CFG_INT, "12", 1, 1024, LT_SVC_ALL,
     "partitions of topics ltvsync creates"},
    /* consumers and shutdown */
    {"GROUP_ID", LT_CFG_STRING, NULL, 0, 0, SVC_DAEMONS,
     "consumer group; unset = \"ltvsync-\" and the service name"},
    {"SHUTDOWN_GRACE", LT_CFG_DURATION, "25s", MS_S, 10 * MS_M, SVC_DAEMONS,
     "time to drain after SIGTERM"},
    {"MEMORY_TRIM_INTERVAL", LT_CFG_DURATION, "60s", 0, MS_H, SVC_DAEMONS | LT_SVC_API,
     "how often memory freed inside the allocator goes back to the OS (malloc_trim); 0 = never"},
    {"MALLOC_ARENAS", LT_CFG_INT, "1", 0, 64, SVC_DAEMONS | LT_SVC_API,
     "glibc malloc arenas, at most (M_ARENA_MAX): 1 keeps every thread in the main heap, whose "
     "free memory malloc_trim gives back; 0 = glibc's default (8 per core)"},
    {"MALLOC_MMAP_THRESHOLD", LT_CFG_SIZE, "0", 0, 32 * MIB, SVC_DAEMONS | LT_SVC_API,
     "glibc malloc blocks this large or larger are mapped on their own and unmapped when freed "
     "(M_MMAP_THRESHOLD; 1M catches librdkafka's 3.6 MiB zstd contexts: flatter RSS, a slower "
     "sink); 0 = glibc's default, a threshold that rises to the largest block freed"},
    {"MAX_MESSAGE_BYTES", LT_CFG_SIZE, "1M", KIB, 64 * MIB, SVC_CONSUMERS,
     "cap on any consumed message"},
    /* fetcher */
    {"FETCH_CONCURRENCY", LT_CFG_INT, "16", 1, 256, LT_SVC_FETCHER,
     "worker threads per fetcher: a cap on its requests in flight (each integration "
     "also keeps to its max_in_flight)"},
    {"FETCH_PAGE_SIZE", LT_CFG_INT, "200", 1, 200, LT_SVC_FETCHER,
     "rows per CRM page (the CRM maximum is 200)"},
    {"FETCH_TIMEOUT", LT_CFG_DURATION, "120s", MS_S, MS_H, SVC_CRM,
     "total time of one CRM request"},
    {"FETCH_CONNECT_TIMEOUT", LT_CFG_DURATION, "10s", 100, 5 * MS_M, SVC_CRM,
     "connect time of one CRM request"},
    {"FETCH_MAX_BODY", LT_CFG_SIZE, "16M", KIB, GIB, SVC_CRM,
     "cap on one CRM response body (which may hold at most 500,000 JSON values)"},
    {"FETCH_MAX_PAGES", LT_CFG_INT, "5000", 1, 1000000, LT_SVC_FETCHER,
     "pages one day window may have; a CRM count beyond it is not trusted"},
    {"FETCH_RETRY_AFTER_MAX", LT_CFG_DURATION, "5m", MS_S, MS_H, LT_SVC_FETCHER,
     "longest CRM Retry-After honoured (longer values are cut to it)"},
    {"FETCH_SPLIT_PAGES", LT_CFG_INT, "10", 1, 100000, LT_SVC_FETCHER,
     "a day with more pages is split into page-range sub-jobs"},
    {"FETCH_MAX_ATTEMPTS", LT_CFG_INT, "8", 1, 100, LT_SVC_FETCHER,
     "attempts of a retriable CRM request before the job is retried later"},
    {"FETCH_BACKOFF_MAX", LT_CFG_DURATION, "60s", 100, MS_H, LT_SVC_FETCHER,
     "cap of the jittered exponential backoff"},
    {"HTTP_CA_FILE", LT_CFG_STRING, NULL, 0, 0, SVC_CRM,
     "CA bundle for CRM TLS; unset = system store (verification stays on)"},
    /* credential policy (common/lt_cred.h) */
    {"CRM_CREDENTIALS_DIR", LT_CFG_STRING, "/var/run/secrets/ltvsync/crm", 0, 0, SVC_CRM,
     "directory of the CRM password files: password_ref file:NAME must resolve inside it "
     "(no \"..\", no symlink out of it)"},
    {"CRM_HOSTS_KONNEKTIVE", LT_CFG_STRING, "api.konnektive.com,api2.konnektive.com", 0, 0, SVC_CRM,
     "hosts a konnektive integration's base_url may name (comma-separated)"},
    {"CRM_HOSTS_CHECKOUTCHAMP", LT_CFG_STRING, "api.checkoutchamp.com", 0, 0, SVC_CRM,
     "hosts a checkoutchamp integration's base_url may name (comma-separated)"},
    {"CRM_ALLOW_INSECURE", LT_CFG_INT, "0", 0, 1, SVC_CRM,
     "1 = base_url may also be http:// and name a loopback host (crm-sim, tests, the demo; "
     "never in production)"},
    {"SEAL_KEY_FILE", LT_CFG_STRING, NULL, 0, 0, SVC_CRM | LT_SVC_API,
     "key ring of sealed passwords (password_ref sealed:v1:KID:...): lines KID BASE64KEY, the "
     "first key seals, every key opens; re-read when the file changes (README: Sealed "
     "passwords)"},
    /* scheduler */
    {"SCHEDULER_TICK", LT_CFG_DURATION, "5s", 100, MS_H, LT_SVC_SCHEDULER, "scheduler loop period"},
    {"LEADER_LEASE", LT_CFG_DURATION, "10s", MS_S, 10 * MS_M, LT_SVC_SCHEDULER,
     "Redis leader lease of the scheduler"},
    {"LIVE_LOOKBACK_DAYS", LT_CFG_INT, "3", 1, 60, LT_SVC_SCHEDULER,
     "days re-fetched by each live sync"},
    {"CHARGEBACK_LOOKBACK_DAYS", LT_CFG_INT, "180", 1, 1000, LT_SVC_SCHEDULER,
     "days re-fetched for late chargebacks"},
    {"CHARGEBACK_LOOKBACK_INTERVAL", LT_CFG_DURATION, "7d", MS_M, 365 * MS_D, LT_SVC_SCHEDULER,
     "period of the chargeback lookback"},
    {"IMPORT_ALL_FROM", LT_CFG_STRING, "2013-01-01", 0, 0, LT_SVC_SCHEDULER | LT_SVC_CTL,
     "first day of import_from \"all\" (YYYY-MM-DD)"},
    {"MAX_OUTSTANDING_JOBS", LT_CFG_INT, "2000", 1, 1000000, LT_SVC_SCHEDULER,
     "backfill and lookback jobs queued but not done, per integration (live jobs never wait on "
     "it)"},
    {"REPLAY_INTEGRATION", LT_CFG_STRING, NULL, 0, 0, LT_SVC_NORMALIZER,
     "replay mode (set by ltvctl replay): normalize only this integration's rows; "
     "\"*\" = all; unset = normal service"},
    /* sink */
    {"DEDUPE_TTL", LT_CFG_DURATION, "400d", MS_H, 3650 * MS_D, LT_SVC_SINK,
     "how long the sink remembers written events"},
    {"SINK_BATCH_SIZE", LT_CFG_INT, "2000", 1, 2000, LT_SVC_SINK,
     "events the sink checks, looks up and writes per batch, at most (one Redis lookup per 250, "
     "one record and one intent per batch)"},
    {"SINK_TAKEOVER_KEEP", LT_CFG_INT, "1000000", 0, 10000000, LT_SVC_SINK,
     "downstream writes a sink taking over after a crash keeps from its reads (32 bytes each), "
     "so that each batch reads only what is new; past it, each batch reads from the dead "
     "sink's bounds again"},
    /* control API (ltvsync-api) */
    {"API_BIND", LT_CFG_STRING, "0.0.0.0", 0, 0, LT_SVC_API,
     "address of the API's port: an IPv4 or IPv6 literal"},
    {"API_PORT", LT_CFG_INT, "8080", 0, 65535, LT_SVC_API,
     "port of the API, the console, /healthz, /readyz and /metrics (0 = any free port)"},
    {"API_TOKENS_FILE", LT_CFG_STRING, NULL, 0, 0, LT_SVC_API,
     "bearer tokens, one per line: NAME SCOPE TOKEN (SCOPE read or admin); required"},
    {"API_MAX_BODY", LT_CFG_SIZE, "64k", 1 * KIB, 1 * MIB, LT_SVC_API,
     "largest request body (larger: 413)"},
    {"API_RATE", LT_CFG_INT, "20", 1, 100000, LT_SVC_API,
     "requests per second per token (bursts of twice that; over it: 429)"},
    {"API_MAX_CONNECTIONS", LT_CFG_INT, "64", 4, 10000, LT_SVC_API,
     "open connections (one thread each) at most"},
    {"API_CORS_ORIGIN", LT_CFG_STRING, NULL, 0, 0, LT_SVC_API,
     "an origin allowed to call the API from a browser; unset = no CORS headers"},
};
const size_t lt_config_ndefs = sizeof(lt_config_defs) / sizeof(lt_config_defs[0]);

typedef struct {
    char *name; /* setting name without LTVSYNC_, e.g. "KAFKA_SASL_PASSWORD" */
    char *value;
} pass_t;

struct lt_config_s {
    unsigned service;
    char **val;     /* per def, owned; NULL = unset */
    long long *num; /* per def: INT, DURATION (ms), SIZE (bytes) */
    pass_t *pass;   /* Kafka pass-through settings */
    size_t npass;
};

static const struct {
    unsigned bit;
    const char *name;
} svc_names[] = {
    {LT_SVC_SCHEDULER, "scheduler"},
    {LT_SVC_FETCHER, "fetcher"},
    {LT_SVC_NORMALIZER, "normalizer"},
    {LT_SVC_SINK, "sink"},
    {LT_SVC_CTL, "ctl"},
    {LT_SVC_DEVBROKER, "devbroker"},
    {LT_SVC_API, "api"},
};

/* The services a setting applies to: the API runs ltvctl's commands, so
 * it reads every ctl setting too. */
static unsigned def_services(const lt_config_def_t *d)
{
    return d->services & LT_SVC_CTL ? d->services | LT_SVC_API : d->services;
}

/* The name of a single-service mask, NULL for a combination. */
static const char *service_name(unsigned service)
{
    for (size_t i = 0; i < sizeof(svc_names) / sizeof(svc_names[0]); i++)
        if (svc_names[i].bit == service)
            return svc_names[i].name;
    return NULL;
}

static int find_def(const char *name)
{
    for (size_t i = 0; i < lt_config_ndefs; i++)
        if (!strcmp(lt_config_defs[i].name, name))
            return (int)i;
    return -1;
}

static const char *type_name(lt_cfg_type_t t)
{
    static const char *const names[] = {"string", "int", "duration", "size", "secret", "url"};
    return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t] : "?";
}

static int is_numeric(lt_cfg_type_t t)
{
    return t == LT_CFG_INT || t == LT_CFG_DURATION || t == LT_CFG_SIZE;
}

/* ---- parsers ---- */

/* Leading decimal digits of *s into *v (no sign); advances *s. */
static int parse_digits(const char **s, long long *v)
{
    const char *p = *s;
    long long n = 0;

    if (!isdigit((unsigned char)*p))
        return -1;
    for (; isdigit((unsigned char)*p); p++) {
        if (n > (INT64_MAX - 9) / 10)
            return -1;
        n = n * 10 + (*p - '0');
    }
    *s = p;
    *v = n;
    return 0;
}

static int parse_int(const char *s, long long *out)
{
    int neg = (*s == '-');
    long long v;

    if (*s == '-' || *s == '+')
        s++;
    if (parse_digits(&s, &v) || *s)
        return -1;
    *out = neg ? -v : v;
    return 0;
}

static long long duration_unit(const char **s)
{
    static const struct {
        const char *u;
        long long ms;
    } units[] = {
        {"ms", 1}, {"s", MS_S}, {"m", MS_M}, {"h", MS_H}, {"d", MS_D},
    };
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        size_t n = strlen(units[i].u);
        /* "m" must not swallow the "m" of "ms" */
        if (!strncmp(*s, units[i].u, n) && !isalpha((unsigned char)(*s)[n])) {
            *s += n;
            return units[i].ms;
        }
    }
    return -1;
}

/* "250ms", "30s", "15m", "1h", "7d", sums like "1h30m"; "0" alone. */
int lt_config_parse_duration_ms(const char *s, long long *ms)
{
    long long total = 0, n, unit;

    if (!s || !*s)
        return -1;
    if (!strcmp(s, "0")) {
        *ms = 0;
        return 0;
    }
    while (*s) {
        if (parse_digits(&s, &n) || (unit = duration_unit(&s)) < 0)
            return -1;
        if (n > (INT64_MAX - total) / unit)
            return -1;
        total += n * unit;
    }
    *ms = total;
    return 0;
}

/* "512", "64k", "16M", "1G"; k/M/G are binary, optional "B"/"iB". */
int lt_config_parse_size(const char *s, long long *bytes)
{
    static const struct {
        const char *u;
        long long mul;
    } units[] = {
        {"", 1},     {"b", 1},     {"k", KIB}, {"kb", KIB}, {"kib", KIB}, {"m", MIB},
        {"mb", MIB}, {"mib", MIB}, {"g", GIB}, {"gb", GIB}, {"gib", GIB},
    };
    long long n;

    if (!s || parse_digits(&s, &n))
        return -1;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (!strcasecmp(s, units[i].u)) {
            if (n > INT64_MAX / units[i].mul)
                return -1;
            *bytes = n * units[i].mul;
            return 0;
        }
    }
    return -1;
}

/* scheme://[userinfo@]host...: the host part must not be empty. The
 * userinfo ends at the last '@', as lt_redis parses it and mask_url masks
 * it (a password may hold '/', '?', '#' or '@'). */
static int url_valid(const char *s)
{
    const char *sep = strstr(s, "://"), *host, *at;

    if (!sep || sep == s)
        return 0;
    host = sep + 3;
    at = strrchr(host, '@');
    if (at)
        host = at + 1;
    return strcspn(host, "/?#") > 0 && *host != ':';
}

/* An address literal inet_pton takes: no host names, no brackets. */
static int ip_literal_valid(const char *s)
{
    unsigned char buf[16];

    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static int date_valid(const char *s)
{
    int y, m, d, n = 0;

    if (strlen(s) != 10 || sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || n != 10)
        return 0;
    return y >= 1970 && m >= 1 && m <= 12 && d >= 1 && d <= 31;
}

/* ---- formatting ---- */

static void format_duration(long long ms, char *buf, size_t len)
{
    static const struct {
        const char *u;
        long long ms;
    } units[] = {
        {"d", MS_D},
        {"h", MS_H},
        {"m", MS_M},
        {"s", MS_S},
    };
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (ms != 0 && ms % units[i].ms == 0) {
            snprintf(buf, len, "%lld%s", ms / units[i].ms, units[i].u);
            return;
        }
    }
    snprintf(buf, len, "%lldms", ms);
}

static void format_size(long long b, char *buf, size_t len)
{
    if (b != 0 && b % GIB == 0)
        snprintf(buf, len, "%lldG", b / GIB);
    else if (b != 0 && b % MIB == 0)
        snprintf(buf, len, "%lldM", b / MIB);
    else if (b != 0 && b % KIB == 0)
        snprintf(buf, len, "%lldk", b / KIB);
    else
        snprintf(buf, len, "%lld", b);
}

static void format_bound(const lt_config_def_t *d, long long v, char *buf, size_t len)
{
    if (d->type == LT_CFG_DURATION)
        format_duration(v, buf, len);
    else if (d->type == LT_CFG_SIZE)
        format_size(v, buf, len);
    else
        snprintf(buf, len, "%lld", v);
}

/* Copies url with its credentials replaced by MASK. The userinfo ends at
 * the last '@' of the URL, as lt_redis parses it (a password may hold '@',
 * '/', '?' or '#'); "user:password@" keeps the user, "password@" (Redis's
 * AUTH without a user) masks it whole. */
static void mask_url(const char *url, char *buf, size_t len)
{
    const char *sep = strstr(url, "://"), *auth, *at, *colon;

    if (!sep || !(at = strrchr(auth = sep + 3, '@'))) {
        snprintf(buf, len, "%s", url);
        return;
    }
    colon = memchr(auth, ':', (size_t)(at - auth));
    if (colon)
        snprintf(buf, len, "%.*s%s%s", (int)(colon + 1 - url), url, MASK, at);
    else
        snprintf(buf, len, "%.*s%s%s", (int)(auth - url), url, MASK, at);
}

static int prop_is_secret(const char *name)
{
    /* oauthbearer.config can carry a client secret in its free text */
    static const char *const words[] = {"password", "secret", "sasl.jaas", "key",
                                        "oauthbearer.config"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strcasestr(name, words[i]))
            return 1;
    return 0;
}

/* ---- validation and storage ---- */

static int has_control_chars(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

static lt_err_t check_bounds(const lt_config_def_t *d, long long v, char *errstr, size_t errlen)
{
    char lo[32], hi[32];

    if (v >= d->min && v <= d->max)
        return LT_OK;
    format_bound(d, d->min, lo, sizeof(lo));
    format_bound(d, d->max, hi, sizeof(hi));
    snprintf(errstr, errlen, "%s%s: out of range [%s, %s]", ENV_PREFIX, d->name, lo, hi);
    return LT_ERR_PERMANENT;
}

/* Settings with a closed vocabulary beyond their type. */
static int special_valid(const lt_config_def_t *d, const char *value)
{
    if (!strcmp(d->name, "LOG_LEVEL"))
        return lt_log_level_parse(value) >= 0;
    if (!strcmp(d->name, "IMPORT_ALL_FROM"))
        return date_valid(value);
    if (!strcmp(d->name, "HTTP_BIND") || !strcmp(d->name, "API_BIND"))
        return ip_literal_valid(value);
    /* A brace would change the hash tag Redis Cluster reads from every key
     * (lt_rkeys puts {ID} or {g} there): with "x{y}:" every key would share
     * one slot. Checked on one Redis too, so a prefix that works today keeps
     * working in a cluster. */
    if (!strcmp(d->name, "REDIS_PREFIX"))
        return lt_rkey_prefix_ok(value);
    return 1;
}

/* What a setting with a closed vocabulary expects, for its error. */
static const char *special_hint(const lt_config_def_t *d)
{
    if (!strcmp(d->name, "HTTP_BIND") || !strcmp(d->name, "API_BIND"))
        return " (an IPv4 or IPv6 address literal, e.g. 0.0.0.0, 127.0.0.1 or ::; no host name)";
    if (!strcmp(d->name, "REDIS_PREFIX"))
        return " (at most 64 bytes, without '{' or '}': Redis Cluster reads braces in a key as "
               "its hash tag)";
    return "";
}

/* Parses value per the def's type into *num. Errors never quote a SECRET
 * or URL value, which may hold a password. */
static lt_err_t validate(const lt_config_def_t *d, const char *value, long long *num, char *errstr,
                         size_t errlen)
{
    int quote = d->type != LT_CFG_SECRET && d->type != LT_CFG_URL;
    int ok = 1;

    *num = 0;
    if (strlen(value) > MAX_VALUE_LEN || has_control_chars(value))
        ok = 0;
    else if (d->type == LT_CFG_INT)
        ok = parse_int(value, num) == 0;
    else if (d->type == LT_CFG_DURATION)
        ok = lt_config_parse_duration_ms(value, num) == 0;
    else if (d->type == LT_CFG_SIZE)
        ok = lt_config_parse_size(value, num) == 0;
    else if (d->type == LT_CFG_URL)
        ok = url_valid(value);
    if (ok)
        ok = special_valid(d, value);
    if (!ok) {
        snprintf(errstr, errlen, "%s%s: invalid %s%s%.64s%s%s", ENV_PREFIX, d->name,
                 type_name(d->type), quote ? " \"" : "", quote ? value : "", quote ? "\"" : "",
                 special_hint(d));
        return LT_ERR_PERMANENT;
    }
    return is_numeric(d->type) ? check_bounds(d, *num, errstr, errlen) : LT_OK;
}

static lt_err_t store(lt_config_t *cfg, int idx, const char *value, long long num)
{
    char *copy = value ? strdup(value) : NULL;

    if (value && !copy)
        return LT_ERR_FATAL;
    free(cfg->val[idx]);
    cfg->val[idx] = copy;
    cfg->num[idx] = num;
    return LT_OK;
}

lt_err_t lt_config_set(lt_config_t *cfg, const char *name, const char *value, char *errstr,
                       size_t errlen)
{
    int idx = find_def(name);
    long long num = 0;
    lt_err_t err;

    if (idx < 0) {
        snprintf(errstr, errlen, "unknown setting %s%s", ENV_PREFIX, name);
        return LT_ERR_PERMANENT;
    }
    if (value && (err = validate(&lt_config_defs[idx], value, &num, errstr, errlen)) != LT_OK)
        return err;
    if (store(cfg, idx, value, num) != LT_OK) {
        snprintf(errstr, errlen, "out of memory");
        return LT_ERR_FATAL;
    }
    return LT_OK;
}

/* ---- pass-through ---- */

static int is_pass_name(const char *name)
{
    static const char *const prefixes[] = {"KAFKA_", "DOWNSTREAM_KAFKA_"};

    if (find_def(name) >= 0)
        return 0;
    for (size_t i = 0; i < 2; i++) {
        size_t n = strlen(prefixes[i]);
        if (!strncmp(name, prefixes[i], n) && name[n])
            return 1;
    }
    return 0;
}

static lt_err_t pass_set(lt_config_t *cfg, const char *name, const char *value)
{
    pass_t *grown;
    char *n = NULL, *v = strdup(value);

    for (size_t i = 0; i < cfg->npass; i++) {
        if (!strcmp(cfg->pass[i].name, name)) {
            if (!v)
                return LT_ERR_FATAL;
            free(cfg->pass[i].value);
            cfg->pass[i].value = v;
            return LT_OK;
        }
    }
    n = strdup(name);
    grown = realloc(cfg->pass, (cfg->npass + 1) * sizeof(*grown));
    if (!n || !v || !grown) {
        free(n);
        free(v);
        if (grown)
            cfg->pass = grown;
        return LT_ERR_FATAL;
    }
    cfg->pass = grown;
    cfg->pass[cfg->npass].name = n;
    cfg->pass[cfg->npass].value = v;
    cfg->npass++;
    return LT_OK;
}

/* One NAME=value from the file or the environment; NAME may carry the
 * LTVSYNC_ prefix. */
static lt_err_t apply_pair(lt_config_t *cfg, const char *name, const char *value, char *errstr,
                           size_t errlen)
{
    if (!strncmp(name, ENV_PREFIX, strlen(ENV_PREFIX)))
        name += strlen(ENV_PREFIX);
    if (is_pass_name(name)) {
        if (strlen(value) > MAX_VALUE_LEN || has_control_chars(value)) {
            snprintf(errstr, errlen, "%s%s: invalid value", ENV_PREFIX, name);
            return LT_ERR_PERMANENT;
        }
        if (pass_set(cfg, name, value) == LT_OK)
            return LT_OK;
        snprintf(errstr, errlen, "out of memory");
        return LT_ERR_FATAL;
    }
    return lt_config_set(cfg, name, value, errstr, errlen);
}

/* ---- lifecycle ---- */

lt_config_t *lt_config_new(unsigned service)
{
    lt_config_t *cfg = calloc(1, sizeof(*cfg));
    const char *svc = service_name(service);
    char group[64], errstr[256];

    if (!cfg)
        return NULL;
    cfg->service = service;
    cfg->val = calloc(lt_config_ndefs, sizeof(*cfg->val));
    cfg->num = calloc(lt_config_ndefs, sizeof(*cfg->num));
    if (!cfg->val || !cfg->num)
        goto fail;
    for (size_t i = 0; i < lt_config_ndefs; i++) {
        const lt_config_def_t *d = &lt_config_defs[i];
        if (d->def && lt_config_set(cfg, d->name, d->def, errstr, sizeof(errstr)) != LT_OK)
            goto fail; /* a bad default: caught by the unit tests */
    }
    snprintf(group, sizeof(group), "ltvsync-%s", svc ? svc : "client");
    if (lt_config_set(cfg, "GROUP_ID", group, errstr, sizeof(errstr)) != LT_OK)
        goto fail;
    return cfg;
fail:
    lt_config_destroy(cfg);
    return NULL;
}

void lt_config_destroy(lt_config_t *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; cfg->val && i < lt_config_ndefs; i++)
        free(cfg->val[i]);
    for (size_t i = 0; i < cfg->npass; i++) {
        free(cfg->pass[i].name);
        free(cfg->pass[i].value);
    }
    free(cfg->pass);
    free(cfg->val);
    free(cfg->num);
    free(cfg);
}

/* Trims spaces at both ends in place; strips one pair of matching quotes. */
static char *trim(char *s)
{
    char *end;
    size_t n;

    while (isspace((unsigned char)*s))
        s++;
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    n = strlen(s);
    if (n >= 2 && (s[0] == '"' || s[0] == '\'') && s[n - 1] == s[0]) {
        s[n - 1] = '\0';
        s++;
    }
    return s;
}

static lt_err_t load_line(lt_config_t *cfg, char *line, char *errstr, size_t errlen)
{
    char *eq, *name;

    line = trim(line);
    if (!*line || *line == '#')
        return LT_OK;
    eq = strchr(line, '=');
    if (!eq) {
        snprintf(errstr, errlen, "expected NAME=value");
        return LT_ERR_PERMANENT;
    }
    *eq = '\0';
    name = trim(line);
    return apply_pair(cfg, name, trim(eq + 1), errstr, errlen);
}

static lt_err_t load_file(lt_config_t *cfg, const char *path, char *errstr, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char line[MAX_VALUE_LEN + 256], why[256];
    lt_err_t err = LT_OK;
    int lineno = 0;

    if (!f) {
        snprintf(errstr, errlen, "config file %s: %s", path, strerror(errno));
        return LT_ERR_PERMANENT;
    }
    while (err == LT_OK && fgets(line, sizeof(line), f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            snprintf(why, sizeof(why), "line too long");
            err = LT_ERR_PERMANENT;
        } else {
            err = load_line(cfg, line, why, sizeof(why));
        }
    }
    if (err != LT_OK)
        snprintf(errstr, errlen, "config file %s:%d: %s", path, lineno, why);
    fclose(f);
    return err;
}

/* Table settings from LTVSYNC_<NAME>, then every pass-through variable. */
static lt_err_t load_env(lt_config_t *cfg, char *errstr, size_t errlen)
{
    char var[128];
    lt_err_t err;

    for (size_t i = 0; i < lt_config_ndefs; i++) {
        const char *v;
        snprintf(var, sizeof(var), ENV_PREFIX "%s", lt_config_defs[i].name);
        if ((v = getenv(var)) &&
            (err = lt_config_set(cfg, lt_config_defs[i].name, v, errstr, errlen)) != LT_OK)
            return err;
    }
    for (char **e = environ; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        size_t n = eq ? (size_t)(eq - *e) : 0;
        if (!eq || n >= sizeof(var) || strncmp(*e, ENV_PREFIX, strlen(ENV_PREFIX)))
            continue;
        memcpy(var, *e, n);
        var[n] = '\0';
        if (is_pass_name(var + strlen(ENV_PREFIX)) &&
            (err = apply_pair(cfg, var, eq + 1, errstr, errlen)) != LT_OK)
            return err;
    }
    return LT_OK;
}

lt_err_t lt_config_load(lt_config_t *cfg, const char *file, char *errstr, size_t errlen)
{
    lt_err_t err;

    if (!file)
        file = getenv(ENV_PREFIX "CONFIG_FILE");
    if (file && *file) {
        if ((err = load_file(cfg, file, errstr, errlen)) != LT_OK)
            return err;
    }
    if ((err = load_env(cfg, errstr, errlen)) != LT_OK)
        return err;
    /* --config FILE beats LTVSYNC_CONFIG_FILE: record the file used. */
    return (file && *file) ? lt_config_set(cfg, "CONFIG_FILE", file, errstr, errlen) : LT_OK;
}

/* ---- access ---- */

static int must_find(const char *name)
{
    int idx = find_def(name);

    if (idx < 0) {
        fprintf(stderr, "lt_config: unknown setting %s\n", name);
        abort();
    }
    return idx;
}

const char *lt_config_str(const lt_config_t *cfg, const char *name)
{
    return cfg->val[must_find(name)];
}

long long lt_config_int(const lt_config_t *cfg, const char *name)
{
    int idx = must_find(name);

    if (!is_numeric(lt_config_defs[idx].type)) {
        fprintf(stderr, "lt_config: %s is not numeric\n", name);
        abort();
    }
    return cfg->num[idx];
}

/* ---- Kafka ---- */

/* Maps "KAFKA_SASL_USERNAME" with prefix "KAFKA_" to "sasl.username". */
static void prop_name(const char *name, size_t skip, char *buf, size_t len)
{
    size_t i = 0;

    for (name += skip; *name && i + 1 < len; name++, i++)
        buf[i] = *name == '_' ? '.' : (char)tolower((unsigned char)*name);
    buf[i] = '\0';
}

static lt_err_t conf_set(rd_kafka_conf_t *conf, const char *prop, const char *value, char *errstr,
                         size_t errlen)
{
    char why[256];

    if (rd_kafka_conf_set(conf, prop, value, why, sizeof(why)) == RD_KAFKA_CONF_OK)
        return LT_OK;
    /* librdkafka quotes the value in its message: not for a secret. */
    if (prop_is_secret(prop))
        snprintf(errstr, errlen, "kafka property %s: rejected", prop);
    else
        snprintf(errstr, errlen, "kafka property %s: %s", prop, why);
    return LT_ERR_PERMANENT;
}

static lt_err_t apply_pass(const lt_config_t *cfg, const char *prefix, rd_kafka_conf_t *conf,
                           char *errstr, size_t errlen)
{
    size_t plen = strlen(prefix);
    char prop[256];
    lt_err_t err;

    for (size_t i = 0; i < cfg->npass; i++) {
        if (strncmp(cfg->pass[i].name, prefix, plen))
            continue;
        prop_name(cfg->pass[i].name, plen, prop, sizeof(prop));
        if ((err = conf_set(conf, prop, cfg->pass[i].value, errstr, errlen)) != LT_OK)
            return err;
    }
    return LT_OK;
}

/* Downstream without DOWNSTREAM_BROKERS is the main cluster, so it takes
 * the main cluster's KAFKA_ properties (TLS, SASL) under its own. */
lt_err_t lt_config_apply_kafka(const lt_config_t *cfg, const char *prefix, rd_kafka_conf_t *conf,
                               char *errstr, size_t errlen)
{
    const char *main_brokers = lt_config_str(cfg, "KAFKA_BOOTSTRAP_SERVERS");
    const char *down = lt_config_str(cfg, "DOWNSTREAM_BROKERS");
    int downstream = !strcmp(prefix, "DOWNSTREAM_KAFKA_");
    const char *brokers = (downstream && down) ? down : main_brokers;
    lt_err_t err;

    if (!downstream && strcmp(prefix, "KAFKA_")) {
        snprintf(errstr, errlen, "unknown kafka prefix %s", prefix);
        return LT_ERR_PERMANENT;
    }
    if (brokers && (err = conf_set(conf, "bootstrap.servers", brokers, errstr, errlen)) != LT_OK)
        return err;
    if ((!downstream || !down) && (err = apply_pass(cfg, "KAFKA_", conf, errstr, errlen)) != LT_OK)
        return err;
    return downstream ? apply_pass(cfg, prefix, conf, errstr, errlen) : LT_OK;
}

/* ---- printing ---- */

static void value_for_print(const lt_config_def_t *d, const char *v, char *buf, size_t len)
{
    if (d->type == LT_CFG_SECRET)
        snprintf(buf, len, "%s", MASK);
    else if (d->type == LT_CFG_URL)
        mask_url(v, buf, len);
    else
        snprintf(buf, len, "%s", v);
}

void lt_config_print(const lt_config_t *cfg, FILE *out)
{
    char buf[MAX_VALUE_LEN + 64], prop[256];

    for (size_t i = 0; i < lt_config_ndefs; i++) {
        const lt_config_def_t *d = &lt_config_defs[i];
        if (!(def_services(d) & cfg->service))
            continue;
        if (!cfg->val[i]) {
            fprintf(out, "# %s%s is unset\n", ENV_PREFIX, d->name);
            continue;
        }
        value_for_print(d, cfg->val[i], buf, sizeof(buf));
        fprintf(out, "%s%s=%s\n", ENV_PREFIX, d->name, buf);
    }
    for (size_t i = 0; i < cfg->npass; i++) {
        prop_name(cfg->pass[i].name, 0, prop, sizeof(prop));
        fprintf(out, "%s%s=%s\n", ENV_PREFIX, cfg->pass[i].name,
                prop_is_secret(prop) ? MASK : cfg->pass[i].value);
    }
}

/* "[1s, 10m]" for a bounded type, "" otherwise. */
static void format_range(const lt_config_def_t *d, char *buf, size_t len)
{
    char lo[32], hi[32];

    buf[0] = '\0';
    if (!is_numeric(d->type))
        return;
    format_bound(d, d->min, lo, sizeof(lo));
    format_bound(d, d->max, hi, sizeof(hi));
    snprintf(buf, len, "[%s, %s]", lo, hi);
}

static void print_help(const char *progname, unsigned service, const char *extra_usage)
{
    char range[80];

    printf("Usage: %s [--config FILE] [--print-config] [--help] [--version]\n", progname);
    if (extra_usage)
        printf("%s\n", extra_usage);
    printf("\nSettings (environment variables; a config file may add to them):\n");
    for (size_t i = 0; i < lt_config_ndefs; i++) {
        const lt_config_def_t *d = &lt_config_defs[i];
        if (!(def_services(d) & service))
            continue;
        format_range(d, range, sizeof(range));
        printf("  %s%-28s %s; %s (default %s%s%s)\n", ENV_PREFIX, d->name, d->help,
               type_name(d->type), d->def ? d->def : "unset", *range ? ", range " : "", range);
    }
    printf("  %sKAFKA_<PROP>, %sDOWNSTREAM_KAFKA_<PROP>: passed to librdkafka "
           "as <prop> (lower case, '_' -> '.')\n",
           ENV_PREFIX, ENV_PREFIX);
}

static void services_list(unsigned mask, char *buf, size_t len)
{
    size_t used = 0;

    buf[0] = '\0';
    if (mask == LT_SVC_ALL) {
        snprintf(buf, len, "all");
        return;
    }
    for (size_t i = 0; i < sizeof(svc_names) / sizeof(svc_names[0]); i++) {
        if (!(mask & svc_names[i].bit) || used >= len)
            continue;
        used +=
            (size_t)snprintf(buf + used, len - used, "%s%s", used ? ", " : "", svc_names[i].name);
    }
}

/* The prose of docs/CONFIGURATION.md; the table follows it. */
static const char doc_intro[] =
    "# Configuration\n\n"
    "Generated by `ltvsync-<service> --print-config-doc` from the table\n"
    "`lt_config_defs[]` in `common/lt_config.c`; change the table, then\n"
    "regenerate this file (a unit test fails while they differ).\n\n"
    "Every setting `NAME` is read from the environment variable `LTVSYNC_NAME`.\n"
    "An optional file (`--config FILE` or `LTVSYNC_CONFIG_FILE`) holds\n"
    "`NAME=value` lines (`LTVSYNC_` prefix optional, `#` comments, one pair of\n"
    "surrounding quotes stripped); the environment wins over the file. A name in\n"
    "the file that is neither a setting nor a Kafka pass-through is an error.\n\n"
    "- Durations: `250ms`, `30s`, `15m`, `1h`, `7d`, sums such as `1h30m`, or `0`.\n"
    "- Sizes: `512`, `64k`, `16M`, `1G` (binary units; `KiB`, `MB` also accepted).\n"
    "- A value outside its range stops the binary with exit code 1 and names the\n"
    "  variable (never the value of a URL or a secret).\n"
    "- `--help` lists the settings of one binary; `--print-config` prints its\n"
    "  effective values with secrets masked (`********`): the password of a URL,\n"
    "  and every Kafka pass-through whose property name contains `password`,\n"
    "  `secret`, `sasl.jaas`, `key` or `oauthbearer.config`.\n\n"
    "## Kafka pass-through\n\n"
    "Any `LTVSYNC_KAFKA_<PROP>` is passed to librdkafka as `<prop>` in lower case\n"
    "with `_` turned into `.` (`LTVSYNC_KAFKA_SECURITY_PROTOCOL=sasl_ssl` gives\n"
    "`security.protocol=sasl_ssl`); `LTVSYNC_KAFKA_BOOTSTRAP_SERVERS` is the\n"
    "`bootstrap.servers` of the main cluster. `LTVSYNC_DOWNSTREAM_KAFKA_<PROP>`\n"
    "does the same for the downstream producer, whose `bootstrap.servers` is\n"
    "`LTVSYNC_DOWNSTREAM_BROKERS`. When that is unset the downstream is the main\n"
    "cluster: it takes the `KAFKA_` properties first, the `DOWNSTREAM_KAFKA_`\n"
    "ones over them.\n\n"
    "The sink places each downstream write itself, by its `event_id`, as the\n"
    "downstream `partitioner` names (`LTVSYNC_DOWNSTREAM_KAFKA_PARTITIONER`):\n"
    "librdkafka's default `consistent_random` (crc32), `murmur2_random` as the\n"
    "Java client places keys, or `consistent`, `murmur2`, `fnv1a`,\n"
    "`fnv1a_random`. `random` ignores the key, so a sink taking over after a\n"
    "crash could not find the writes made; the sink refuses it at start.\n\n"
    "## Settings\n\n";

static void print_doc(FILE *out)
{
    char range[80], svcs[128];

    fputs(doc_intro, out);
    fprintf(out, "| variable | type | default | range | services | meaning |\n"
                 "| --- | --- | --- | --- | --- | --- |\n");
    for (size_t i = 0; i < lt_config_ndefs; i++) {
        const lt_config_def_t *d = &lt_config_defs[i];
        format_range(d, range, sizeof(range));
        services_list(d->services, svcs, sizeof(svcs));
        fprintf(out, "| `%s%s` | %s | %s%s%s | %s | %s | %s |\n", ENV_PREFIX, d->name,
                type_name(d->type), d->def ? "`" : "", d->def ? d->def : "unset", d->def ? "`" : "",
                range, svcs, d->help);
    }
}

/* ---- command line ---- */

typedef struct {
    int help, version, print, doc;
    const char *file;
} args_t;

static int parse_args(int argc, char **argv, args_t *a)
{
    memset(a, 0, sizeof(*a));
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "--help") || !strcmp(s, "-h"))
            a->help = 1;
        else if (!strcmp(s, "--version") || !strcmp(s, "-V"))
            a->version = 1;
        else if (!strcmp(s, "--print-config"))
            a->print = 1;
        else if (!strcmp(s, "--print-config-doc"))
            a->doc = 1;
        else if (!strncmp(s, "--config=", 9) && s[9])
            a->file = s + 9;
        else if (!strcmp(s, "--config") && i + 1 < argc)
            a->file = argv[++i];
        else
            return -1;
    }
    return 0;
}

int lt_config_from_args(int argc, char **argv, const char *progname, unsigned service,
                        const char *extra_usage, lt_config_t **cfgp)
{
    lt_config_t *cfg = NULL;
    const char *svc = service_name(service);
    char errstr[512];
    args_t a;

    *cfgp = NULL;
    if (parse_args(argc, argv, &a) < 0) {
        fprintf(stderr, "%s: bad arguments; see %s --help\n", progname, progname);
        return 2;
    }
    if (a.help || a.version || a.doc) {
        if (a.help)
            print_help(progname, service, extra_usage);
        else if (a.version)
            printf("%s %s\n", progname, LTVSYNC_VERSION);
        else
            print_doc(stdout);
        return 0;
    }
    if (!(cfg = lt_config_new(service))) {
        fprintf(stderr, "%s: out of memory\n", progname);
        return 1;
    }
    if (lt_config_load(cfg, a.file, errstr, sizeof(errstr)) != LT_OK) {
        fprintf(stderr, "%s: %s\n", progname, errstr);
        lt_config_destroy(cfg);
        return 1;
    }
    if (a.print) {
        lt_config_print(cfg, stdout);
        lt_config_destroy(cfg);
        return 0;
    }
    lt_log_init(svc ? svc : progname,
                (lt_log_level_t)lt_log_level_parse(lt_config_str(cfg, "LOG_LEVEL")));
    *cfgp = cfg;
    return -1;
}
