/* Request accounting, --max-rps / --max-in-flight, latency and seeded faults.
 * The process's state sits behind one mutex, each account's ledger (with
 * --accounts > 1) behind its own; handlers run on MHD's per-connection
 * threads. /_sim/ endpoints never come here. Lock order: an account's
 * ledger is never held while the process's is taken. */
#include "sim.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct {
    cs_ledger_t g; /* the process's; g.mu also guards the rest */
    const cs_opts_t *opts;
    cs_rng_t latency_rng, fault_rng;
} L = {.g = {.mu = PTHREAD_MUTEX_INITIALIZER}};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void cs_limits_init(const cs_opts_t *opts)
{
    L.opts = opts;
    cs_rng_seed(&L.latency_rng, opts->seed ^ 0x6C8E9CF570932BD5ULL);
    cs_rng_seed(&L.fault_rng, opts->seed ^ 0x2545F4914F6CDD1DULL);
}

void cs_ledger_init(cs_ledger_t *l)
{
    memset(l, 0, sizeof(*l));
    pthread_mutex_init(&l->mu, NULL);
}

void cs_ledger_destroy(cs_ledger_t *l)
{
    free(l->starts);
    l->starts = NULL;
    pthread_mutex_destroy(&l->mu);
}

/* Records a start at t; returns the starts within the last second, t included. */
static int window_push(cs_ledger_t *l, int64_t t)
{
    while (l->n > 0 && l->starts[l->head] <= t - 1000000000)
        l->head = (l->head + 1) % l->cap, l->n--;
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 256;
        int64_t *ns = malloc(ncap * sizeof(*ns));
        if (!ns)
            return (int)l->n + 1;
        for (size_t i = 0; i < l->n; i++)
            ns[i] = l->starts[(l->head + i) % l->cap];
        free(l->starts);
        l->starts = ns, l->cap = ncap, l->head = 0;
    }
    l->starts[(l->head + l->n) % l->cap] = t;
    l->n++;
    return (int)l->n;
}

/* Counts a start in l; enforce: apply the limits. who: the account, for the
 * log line (NULL with one account). */
static int ledger_begin(cs_ledger_t *l, int path_index, int enforce, const char *who)
{
    int reject = 0;
    pthread_mutex_lock(&l->mu);
    if (path_index >= 0 && path_index < CS_NPATHS)
        l->requests[path_index]++;
    l->total++;
    l->in_flight++;
    if (l->in_flight > l->peak_in_flight)
        l->peak_in_flight = l->in_flight;
    int window = window_push(l, now_ns());
    if (window > l->max_window)
        l->max_window = window;
    char why[512] = "";
    if (enforce && ((L.opts->max_in_flight > 0 && l->in_flight > L.opts->max_in_flight) ||
                    (L.opts->max_rps > 0 && window > L.opts->max_rps))) {
        reject = 1;
        l->violations++;
        l->rejected++;
        /* Which limit, and when the starts of the last second came (ms before
     * this one): a test that sees a violation can tell a burst from jitter. */
        int n = snprintf(why, sizeof(why),
                         "crm-sim: 429%s%s: %d in flight (max %d), %d started "
                         "in 1 s (max %d), ms ago:",
                         who ? " " : "", who ? who : "", l->in_flight, L.opts->max_in_flight,
                         window, L.opts->max_rps);
        int64_t last = l->n ? l->starts[(l->head + l->n - 1) % l->cap] : 0;
        for (size_t i = l->n; i-- > 0 && n > 0 && (size_t)n < sizeof(why) - 8;)
            n += snprintf(why + n, sizeof(why) - (size_t)n, " %lld",
                          (long long)((last - l->starts[(l->head + i) % l->cap]) / 1000000));
    }
    pthread_mutex_unlock(&l->mu);
    if (why[0])
        fprintf(stderr, "%s\n", why);
    return reject;
}

void cs_ledger_end(cs_ledger_t *l)
{
    pthread_mutex_lock(&l->mu);
    l->in_flight--;
    pthread_mutex_unlock(&l->mu);
}

int cs_ledger_begin(cs_ledger_t *l, int path_index, const char *who)
{
    if (!ledger_begin(l, path_index, 1, who))
        return 0;
    pthread_mutex_lock(&L.g.mu);
    L.g.violations++;
    L.g.rejected++;
    pthread_mutex_unlock(&L.g.mu);
    return 1;
}

/* With one account its limits are the process's; with more, each account's
 * ledger applies them and the process's only counts. */
int cs_limits_begin(int path_index)
{
    return ledger_begin(&L.g, path_index, L.opts->accounts <= 1, NULL);
}

void cs_limits_end(void)
{
    cs_ledger_end(&L.g);
}

void cs_limits_auth_failure(cs_ledger_t *acct)
{
    pthread_mutex_lock(&L.g.mu);
    L.g.auth_failures++;
    pthread_mutex_unlock(&L.g.mu);
    if (!acct)
        return;
    pthread_mutex_lock(&acct->mu);
    acct->auth_failures++;
    pthread_mutex_unlock(&acct->mu);
}

void cs_limits_sleep(void)
{
    if (L.opts->latency_ms <= 0)
        return;
    pthread_mutex_lock(&L.g.mu);
    double f = 0.75 + 0.5 * cs_rng_unit(&L.latency_rng);
    pthread_mutex_unlock(&L.g.mu);
    int64_t ns = (int64_t)(L.opts->latency_ms * f * 1e6);
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* The draws are the process's (one stream, kinds in turn across accounts);
 * acct also counts the faults its requests got. */
int cs_limits_fault(cs_ledger_t *acct)
{
    int kind = CS_FAULT_NONE;
    if (L.opts->fault_rate <= 0)
        return kind;
    pthread_mutex_lock(&L.g.mu);
    if (cs_rng_unit(&L.fault_rng) < L.opts->fault_rate)
        kind = CS_FAULT_503 + (int)(L.g.faults++ % 4); /* every kind in turn */
    pthread_mutex_unlock(&L.g.mu);
    if (kind != CS_FAULT_NONE && acct) {
        pthread_mutex_lock(&acct->mu);
        acct->faults++;
        pthread_mutex_unlock(&acct->mu);
    }
    return kind;
}

cJSON *cs_ledger_json(cs_ledger_t *l)
{
    cJSON *root = cJSON_CreateObject(), *req;
    if (!root)
        return NULL;
    pthread_mutex_lock(&l->mu);
    req = cJSON_AddObjectToObject(root, "requests");
    for (int i = 0; req && i < CS_NPATHS; i++)
        cJSON_AddNumberToObject(req, cs_api_paths[i], (double)l->requests[i]);
    cJSON_AddNumberToObject(root, "total", (double)l->total);
    cJSON_AddNumberToObject(root, "in_flight", l->in_flight);
    cJSON_AddNumberToObject(root, "peak_in_flight", l->peak_in_flight);
    cJSON_AddNumberToObject(root, "max_rps_window", l->max_window);
    cJSON_AddNumberToObject(root, "violations", (double)l->violations);
    cJSON_AddNumberToObject(root, "rejected_429", (double)l->rejected);
    cJSON_AddNumberToObject(root, "faults", (double)l->faults);
    cJSON_AddNumberToObject(root, "auth_failures", (double)l->auth_failures);
    pthread_mutex_unlock(&l->mu);
    return root;
}

cJSON *cs_limits_json(void)
{
    return cs_ledger_json(&L.g);
}

char *cs_limits_stats(void)
{
    cJSON *root = cs_ledger_json(&L.g);
    char *out = NULL;
    if (!root)
        return NULL;
    cs_hostile_stats(cs_hostile_default(), root); /* its own lock, never taken under this one */
    out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return out;
}

void cs_limits_shutdown(void)
{
    pthread_mutex_lock(&L.g.mu);
    free(L.g.starts);
    L.g.starts = NULL;
    L.g.n = L.g.cap = L.g.head = 0;
    pthread_mutex_unlock(&L.g.mu);
}
