/* Request accounting, --max-rps / --max-in-flight, latency and seeded faults.
 * All state sits behind one mutex; handlers run on MHD's per-connection
 * threads. /_sim/ endpoints never come here. */
#include "sim.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct {
  pthread_mutex_t mu;
  const cs_opts_t *opts;
  long long requests[CS_NPATHS], total, violations, rejected, faults, auth_failures;
  int in_flight, peak_in_flight, max_window;
  int64_t *starts; /* ring of request start times (ns) within the last second */
  size_t head, n, cap;
  cs_rng_t latency_rng, fault_rng;
} L = {.mu = PTHREAD_MUTEX_INITIALIZER};

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

/* Records a start at t; returns the starts within the last second, t included. */
static int window_push(int64_t t)
{
  while (L.n > 0 && L.starts[L.head] <= t - 1000000000)
    L.head = (L.head + 1) % L.cap, L.n--;
  if (L.n == L.cap) {
    size_t ncap = L.cap ? L.cap * 2 : 256;
    int64_t *ns = malloc(ncap * sizeof(*ns));
    if (!ns)
      return (int)L.n + 1;
    for (size_t i = 0; i < L.n; i++)
      ns[i] = L.starts[(L.head + i) % L.cap];
    free(L.starts);
    L.starts = ns, L.cap = ncap, L.head = 0;
  }
  L.starts[(L.head + L.n) % L.cap] = t;
  L.n++;
  return (int)L.n;
}

int cs_limits_begin(int path_index)
{
  int reject = 0;
  pthread_mutex_lock(&L.mu);
  if (path_index >= 0 && path_index < CS_NPATHS)
    L.requests[path_index]++;
  L.total++;
  L.in_flight++;
  if (L.in_flight > L.peak_in_flight)
    L.peak_in_flight = L.in_flight;
  int window = window_push(now_ns());
  if (window > L.max_window)
    L.max_window = window;
  char why[512] = "";
  if ((L.opts->max_in_flight > 0 && L.in_flight > L.opts->max_in_flight) ||
      (L.opts->max_rps > 0 && window > L.opts->max_rps)) {
    reject = 1;
    L.violations++;
    L.rejected++;
    /* Which limit, and when the starts of the last second came (ms before
     * this one): a test that sees a violation can tell a burst from jitter. */
    int n = snprintf(why, sizeof(why), "crm-sim: 429: %d in flight (max %d), %d started in 1 s "
                     "(max %d), ms ago:", L.in_flight, L.opts->max_in_flight, window,
                     L.opts->max_rps);
    int64_t last = L.n ? L.starts[(L.head + L.n - 1) % L.cap] : 0;
    for (size_t i = L.n; i-- > 0 && n > 0 && (size_t)n < sizeof(why) - 8;)
      n += snprintf(why + n, sizeof(why) - (size_t)n, " %lld",
                    (long long)((last - L.starts[(L.head + i) % L.cap]) / 1000000));
  }
  pthread_mutex_unlock(&L.mu);
  if (why[0])
    fprintf(stderr, "%s\n", why);
  return reject;
}

void cs_limits_end(void)
{
  pthread_mutex_lock(&L.mu);
  L.in_flight--;
  pthread_mutex_unlock(&L.mu);
}

void cs_limits_auth_failure(void)
{
  pthread_mutex_lock(&L.mu);
  L.auth_failures++;
  pthread_mutex_unlock(&L.mu);
}

void cs_limits_sleep(void)
{
  if (L.opts->latency_ms <= 0)
    return;
  pthread_mutex_lock(&L.mu);
  double f = 0.75 + 0.5 * cs_rng_unit(&L.latency_rng);
  pthread_mutex_unlock(&L.mu);
  int64_t ns = (int64_t)(L.opts->latency_ms * f * 1e6);
  struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

int cs_limits_fault(void)
{
  int kind = CS_FAULT_NONE;
  if (L.opts->fault_rate <= 0)
    return kind;
  pthread_mutex_lock(&L.mu);
  if (cs_rng_unit(&L.fault_rng) < L.opts->fault_rate)
    kind = CS_FAULT_503 + (int)(L.faults++ % 4); /* every kind in turn */
  pthread_mutex_unlock(&L.mu);
  return kind;
}

char *cs_limits_stats(void)
{
  cJSON *root = cJSON_CreateObject(), *req;
  char *out = NULL;
  if (!root)
    return NULL;
  pthread_mutex_lock(&L.mu);
  req = cJSON_AddObjectToObject(root, "requests");
  for (int i = 0; req && i < CS_NPATHS; i++)
    cJSON_AddNumberToObject(req, cs_api_paths[i], (double)L.requests[i]);
  cJSON_AddNumberToObject(root, "total", (double)L.total);
  cJSON_AddNumberToObject(root, "in_flight", L.in_flight);
  cJSON_AddNumberToObject(root, "peak_in_flight", L.peak_in_flight);
  cJSON_AddNumberToObject(root, "max_rps_window", L.max_window);
  cJSON_AddNumberToObject(root, "violations", (double)L.violations);
  cJSON_AddNumberToObject(root, "rejected_429", (double)L.rejected);
  cJSON_AddNumberToObject(root, "faults", (double)L.faults);
  cJSON_AddNumberToObject(root, "auth_failures", (double)L.auth_failures);
  pthread_mutex_unlock(&L.mu);
  cs_hostile_stats(root); /* its own lock, never taken under this one */
  out = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  return out;
}

void cs_limits_shutdown(void)
{
  pthread_mutex_lock(&L.mu);
  free(L.starts);
  L.starts = NULL;
  L.n = L.cap = L.head = 0;
  pthread_mutex_unlock(&L.mu);
}
