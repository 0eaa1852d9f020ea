/* Hostile modes switched at run time (POST /_sim/fault): the settings, their
 * JSON form, the per-request snapshot and the counters shown in /_sim/stats.
 * The process has one set (one account); with --accounts > 1 each account
 * has its own, made by the first POST that names it.
 *
 * One mutex per set guards all of it. A request copies what applies to it once, when
 * it starts (cs_hostile_resolve, which matches "when" on its form and uses up
 * "count"s), and never reads the settings again. A POST is validated whole
 * on a copy and swapped in only when every key is valid, so a bad body
 * changes nothing. */
#include "sim.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_FAULT_BODY 65536
#define MAX_ROW_BYTES  (256ULL << 20)
#define MAX_HUGE_BYTES (64ULL << 30)
#define MAX_DEEP       (1ULL << 30)
#define MAX_WIDE_BYTES (4ULL << 30)
#define MAX_HANG_S     600
#define MAX_SLEEP_MS   600000
#define MAX_COUNT      1000000000000LL
#define MAX_WHEN       4  /* "when": form parameters a request must carry */
#define MAX_WHEN_LEN   64 /* bytes of each name and value */

const char *const cs_hostile_names[CS_H_NMODES] = {
    "oversized_row", "huge_body", "deep_json", "wide_json", "total_results", "retry_after",
    "drip",          "hang",      "latency",   "ip_deny",   "password",      "deny_endpoint"};
static const char *const TOTAL_MODES[] = {NULL, "huge", "missing", "changing"};

typedef struct {
    char name[MAX_WHEN_LEN + 1], val[MAX_WHEN_LEN + 1];
} when_t;

typedef struct {
    int on, path;   /* path: index into cs_api_paths, -1 for every API path */
    long long left; /* requests left, -1 until cleared */
    int nwhen;      /* 0: every request (of that path) */
    when_t when[MAX_WHEN];
} scope_t;

typedef struct {
    scope_t sc[CS_H_NMODES];
    cs_hostile_t p; /* the parameters of every mode, set or not */
} settings_t;

struct cs_hstate {
    pthread_mutex_t mu;
    settings_t s;
    uint64_t hang_epoch;
    long long hits[CS_H_NMODES];
    cs_rng_t rng; /* run-time latency only: the --latency-ms stream is untouched */
};
static cs_hstate_t H = {.mu = PTHREAD_MUTEX_INITIALIZER};
static atomic_int g_stopping;

void cs_hostile_init(uint64_t seed)
{
    cs_rng_seed(&H.rng, seed ^ 0x9FB21C651E98DF25ULL);
}
cs_hstate_t *cs_hostile_default(void)
{
    return &H;
}

cs_hstate_t *cs_hstate_new(uint64_t seed)
{
    cs_hstate_t *st = calloc(1, sizeof(*st));
    if (!st || pthread_mutex_init(&st->mu, NULL) != 0) {
        free(st);
        return NULL;
    }
    cs_rng_seed(&st->rng, seed ^ 0x9FB21C651E98DF25ULL);
    return st;
}

void cs_hstate_free(cs_hstate_t *st)
{
    if (!st || st == &H)
        return;
    pthread_mutex_destroy(&st->mu);
    memset(st, 0, sizeof(*st)); /* a copy of the password */
    free(st);
}
void cs_hostile_stop(void)
{
    atomic_store(&g_stopping, 1);
}
int cs_hostile_stopping(void)
{
    return atomic_load(&g_stopping);
}

/* ---- parsing one POST body ---- */

typedef struct {
    settings_t *s;
    scope_t scope;    /* the body's own "path"/"count"/"when": every mode's default */
    const char *mode; /* for messages */
    char *err;
    size_t errlen;
} pctx_t;

__attribute__((format(printf, 2, 3))) static int fail(pctx_t *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->err, x->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static int is_int(const cJSON *v, double lo, double hi)
{
    return cJSON_IsNumber(v) && v->valuedouble >= lo && v->valuedouble <= hi &&
           v->valuedouble == (double)(long long)v->valuedouble;
}

/* v[k] when v is an object and has it; absent keeps *out (the default). */
static int get_u64(pctx_t *x, const cJSON *v, const char *k, uint64_t lo, uint64_t hi,
                   uint64_t *out)
{
    const cJSON *n = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, k) : NULL;
    if (!n)
        return 0;
    if (!is_int(n, (double)lo, (double)hi))
        return fail(x, "%s.%s: an integer in %llu..%llu", x->mode, k, (unsigned long long)lo,
                    (unsigned long long)hi);
    *out = (uint64_t)n->valuedouble;
    return 0;
}

static int get_int(pctx_t *x, const cJSON *v, const char *k, int lo, int hi, int *out)
{
    uint64_t u = (uint64_t)*out;
    if (get_u64(x, v, k, (uint64_t)lo, (uint64_t)hi, &u) != 0)
        return -1;
    *out = (int)u;
    return 0;
}

static int api_path(pctx_t *x, const cJSON *v, int *path)
{
    for (int i = 0; cJSON_IsString(v) && i < CS_NPATHS; i++)
        if (strcmp(v->valuestring, cs_api_paths[i]) == 0) {
            *path = i;
            return 0;
        }
    return fail(x, "%s: path must be one of the six API paths", x->mode);
}

/* "when": {"name": "value", ...}, parsed whole before *sc changes. Empty
 * values are refused: the API reads an empty parameter as an absent one. */
static int get_when(pctx_t *x, const cJSON *w, scope_t *sc)
{
    when_t when[MAX_WHEN];
    int n = 0;
    if (cJSON_IsNull(w)) {
        sc->nwhen = 0;
        return 0;
    }
    if (!cJSON_IsObject(w))
        return fail(x, "%s: when must be an object of form parameters", x->mode);
    for (const cJSON *k = w->child; k; k = k->next, n++) {
        size_t kl = strlen(k->string);
        if (n == MAX_WHEN)
            return fail(x, "%s: when: at most %d parameters", x->mode, MAX_WHEN);
        if (!kl || kl > MAX_WHEN_LEN)
            return fail(x, "%s: when: a parameter name of 1-%d bytes", x->mode, MAX_WHEN_LEN);
        if (!cJSON_IsString(k) || !*k->valuestring || strlen(k->valuestring) > MAX_WHEN_LEN)
            return fail(x, "%s: when.%.64s: a string of 1-%d bytes", x->mode, k->string,
                        MAX_WHEN_LEN);
        for (int i = 0; i < n; i++)
            if (strcmp(when[i].name, k->string) == 0)
                return fail(x, "%s: when.%.64s: named twice", x->mode, k->string);
        snprintf(when[n].name, sizeof(when[n].name), "%s", k->string);
        snprintf(when[n].val, sizeof(when[n].val), "%s", k->valuestring);
    }
    memcpy(sc->when, when, (size_t)n * sizeof(when[0]));
    sc->nwhen = n;
    return 0;
}

/* "path", "count" and "when" of an object (the body itself or one mode's
 * value). */
static int get_scope(pctx_t *x, const cJSON *o, scope_t *sc)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "path");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "count");
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(o, "when");
    if (cJSON_IsNull(p))
        sc->path = -1;
    else if (p && api_path(x, p, &sc->path) != 0)
        return -1;
    if (cJSON_IsNull(c))
        sc->left = -1;
    else if (c && !is_int(c, 1, (double)MAX_COUNT))
        return fail(x, "%s: count must be a positive integer", x->mode);
    else if (c)
        sc->left = (long long)c->valuedouble;
    return w ? get_when(x, w, sc) : 0;
}

static int keys_ok(pctx_t *x, const cJSON *o, const char *const *allowed)
{
    for (const cJSON *k = o->child; k; k = k->next) {
        int ok = strcmp(k->string, "path") == 0 || strcmp(k->string, "count") == 0 ||
                 strcmp(k->string, "when") == 0;
        for (int i = 0; !ok && allowed[i]; i++)
            ok = strcmp(k->string, allowed[i]) == 0;
        if (!ok)
            return fail(x, "%s: unknown key %.64s", x->mode, k->string);
    }
    return 0;
}

static int obj_or_true(pctx_t *x, const cJSON *v)
{
    return cJSON_IsObject(v) || cJSON_IsTrue(v) ? 0 : fail(x, "%s: true or an object", x->mode);
}

static int p_oversized(pctx_t *x, const cJSON *v, cs_hostile_t *p)
{
    const cJSON *f = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, "field") : NULL;
    p->row_bytes = 1100000, p->row_index = 0;
    snprintf(p->row_field, sizeof(p->row_field), "custom1");
    if (obj_or_true(x, v) || get_u64(x, v, "bytes", 1, MAX_ROW_BYTES, &p->row_bytes) ||
        get_int(x, v, "index", 0, 199, &p->row_index))
        return -1;
    if (!f)
        return 0;
    if (!cJSON_IsString(f) || !*f->valuestring || strlen(f->valuestring) >= sizeof(p->row_field) ||
        strspn(f->valuestring, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") !=
            strlen(f->valuestring))
        return fail(x, "oversized_row.field: 1-31 letters, digits or _");
    snprintf(p->row_field, sizeof(p->row_field), "%s", f->valuestring);
    return 0;
}

static int p_huge(pctx_t *x, const cJSON *v, cs_hostile_t *p)
{
    p->huge_bytes = 64ULL << 20;
    return obj_or_true(x, v) || get_u64(x, v, "bytes", 1, MAX_HUGE_BYTES, &p->huge_bytes);
}

static int p_deep(pctx_t *x, const cJSON *v, cs_hostile_t *p)
{
    p->deep_depth = 100000;
    return obj_or_true(x, v) || get_u64(x, v, "depth", 1, MAX_DEEP, &p->deep_depth);
}

static int p_wide(pctx_t *x, const cJSON *v, cs_hostile_t *p)
{
    p->wide_items = 1000000, p->wide_bytes = 0;
    return obj_or_true(x, v) || get_u64(x, v, "items", 1, MAX_WIDE_BYTES / 3, &p->wide_items) ||
           get_u64(x, v, "bytes", 1, MAX_WIDE_BYTES, &p->wide_bytes);
}

static int p_total(pctx_t *x, const cJSON *v, cs_hostile_t *p)
{
    const cJSON *m = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, "mode") : v;
    const cJSON *full =
        cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, "always_full") : NULL;
    p->total_mode = 0;
    for (int i = 1; cJSON_IsString(m) && i < 4; i++)
        if (strcmp(m->valuestring, TOTAL_MODES[i]) == 0)
            p->total_mode = i;
    if (!p->total_mode)
        return fail(x, "total_results: mode must be huge, missing or changing");
    if (full && !cJSON_IsBool(full))
        return fail(x, "total_results.always_full: true or false");
    p->always_full = cJSON_IsTrue(full);
    return 0;
}

/* A header value: printable ASCII, so no CR/LF can split the answer. */
static int p_retry(pctx_t *x, const cJSON *v, cs_hostile_t *p)
{
    const cJSON *s = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, "seconds") : NULL;
    p->retry_status = 429;
    snprintf(p->retry_after, sizeof(p->retry_after), "999999999");
    if (obj_or_true(x, v) || get_int(x, v, "status", 400, 599, &p->retry_status))
        return -1;
    if (cJSON_IsNumber(s) && s->valuedouble >= 0 && s->valuedouble < 1e100)
        snprintf(p->retry_after, sizeof(p->retry_after), "%.0f", s->valuedouble);
    else if (cJSON_IsString(s) && *s->valuestring &&
             strlen(s->valuestring) < sizeof(p->retry_after)) {
        for (const char *c = s->valuestring; *c; c++)
            if (*c < 0x20 || *c > 0x7e)
                return fail(x, "retry_after.seconds: printable ASCII only");
        snprintf(p->retry_after, sizeof(p->retry_after), "%s", s->valuestring);
    } else if (s) {
        return fail(x, "retry_after.seconds: a number >= 0 or a string of 1-127 bytes");
    }
    return 0;
}

static int p_drip(pctx_t *x, const cJSON *v, cs_hostile_t *p)
{
    p->drip_ms = 1000;
    return obj_or_true(x, v) || get_int(x, v, "interval_ms", 1, 60000, &p->drip_ms);
}

static int p_hang(pctx_t *x, const cJSON *v, cs_hostile_t *p)
{
    p->hang_s = MAX_HANG_S;
    return obj_or_true(x, v) || get_int(x, v, "max_s", 1, MAX_HANG_S, &p->hang_s);
}

static int p_latency(pctx_t *x, const cJSON *v, cs_hostile_t *p)
{
    p->latency_min_ms = 20000, p->latency_max_ms = -1;
    if (obj_or_true(x, v) || get_int(x, v, "min_ms", 0, MAX_SLEEP_MS, &p->latency_min_ms) ||
        get_int(x, v, "max_ms", 0, MAX_SLEEP_MS, &p->latency_max_ms))
        return -1;
    if (p->latency_max_ms < 0) /* absent: 20-30 s as the API sheet's slow pages, or min */
        p->latency_max_ms = cJSON_IsTrue(v) ? 30000 : p->latency_min_ms;
    if (p->latency_max_ms < p->latency_min_ms)
        return fail(x, "latency: max_ms below min_ms");
    return 0;
}

static int p_ip_deny(pctx_t *x, const cJSON *v, cs_hostile_t *p)
{
    if (!cJSON_IsBool(v))
        return fail(x, "ip_deny: true or false (null restores --ip-deny)");
    p->ip_deny = cJSON_IsTrue(v);
    return 0;
}

static int p_password(pctx_t *x, const cJSON *v, cs_hostile_t *p)
{
    if (!cJSON_IsString(v) || !*v->valuestring || strlen(v->valuestring) > CS_H_MAX_PASSWORD)
        return fail(x, "password: a string of 1-%d bytes", CS_H_MAX_PASSWORD);
    snprintf(p->password, sizeof(p->password), "%s", v->valuestring);
    return 0;
}

static int p_deny(pctx_t *x, const cJSON *v, cs_hostile_t *p)
{
    int path = 0;
    p->deny_mask = 0;
    if (cJSON_IsString(v)) {
        if (api_path(x, v, &path) != 0)
            return -1;
        p->deny_mask = 1u << path;
        return 0;
    }
    if (!cJSON_IsArray(v))
        return fail(x, "deny_endpoint: a list of API paths");
    for (const cJSON *e = v->child; e; e = e->next) {
        if (api_path(x, e, &path) != 0)
            return -1;
        p->deny_mask |= 1u << path;
    }
    return 0;
}

typedef int (*parse_fn)(pctx_t *x, const cJSON *v, cs_hostile_t *p);
static const struct {
    parse_fn parse;
    const char *keys[4]; /* of the object form, besides path and count */
} MODES[CS_H_NMODES] = {
    [CS_H_OVERSIZED_ROW] = {p_oversized, {"bytes", "index", "field"}},
    [CS_H_HUGE_BODY] = {p_huge, {"bytes"}},
    [CS_H_DEEP_JSON] = {p_deep, {"depth"}},
    [CS_H_WIDE_JSON] = {p_wide, {"items", "bytes"}},
    [CS_H_TOTAL_RESULTS] = {p_total, {"mode", "always_full"}},
    [CS_H_RETRY_AFTER] = {p_retry, {"seconds", "status"}},
    [CS_H_DRIP] = {p_drip, {"interval_ms"}},
    [CS_H_HANG] = {p_hang, {"max_s"}},
    [CS_H_LATENCY] = {p_latency, {"min_ms", "max_ms"}},
    [CS_H_IP_DENY] = {p_ip_deny, {NULL}},
    [CS_H_PASSWORD] = {p_password, {NULL}},
    [CS_H_DENY_ENDPOINT] = {p_deny, {NULL}},
};

static int mode_index(const char *name)
{
    for (int m = 0; m < CS_H_NMODES; m++)
        if (strcmp(name, cs_hostile_names[m]) == 0)
            return m;
    return -1;
}

/* One "mode": value pair. null (or false, but for ip_deny) clears the mode. */
static int apply_mode(pctx_t *x, int m, const cJSON *v)
{
    scope_t sc = m < CS_H_IP_DENY ? x->scope : (scope_t){.on = 1, .path = -1, .left = -1};
    x->mode = cs_hostile_names[m];
    if (cJSON_IsNull(v) || (cJSON_IsFalse(v) && m != CS_H_IP_DENY)) {
        x->s->sc[m].on = 0;
        return 0;
    }
    if (cJSON_IsObject(v) && (keys_ok(x, v, MODES[m].keys) != 0 || get_scope(x, v, &sc) != 0))
        return -1;
    if (MODES[m].parse(x, v, &x->s->p) != 0)
        return -1;
    sc.on = 1;
    x->s->sc[m] = sc;
    return 0;
}

/* Applies root to s; returns 1 when the hang setting was touched, -1 on error. */
static int apply(pctx_t *x, const cJSON *root)
{
    const cJSON *clear = cJSON_GetObjectItemCaseSensitive(root, "clear");
    int hang = 0;
    x->scope = (scope_t){.on = 1, .path = -1, .left = -1};
    x->mode = "fault";
    if (clear && !cJSON_IsBool(clear))
        return fail(x, "clear: true or false");
    if (cJSON_IsTrue(clear)) {
        memset(x->s->sc, 0, sizeof(x->s->sc));
        memset(x->s->p.password, 0, sizeof(x->s->p.password));
        hang = 1;
    }
    if (get_scope(x, root, &x->scope) != 0)
        return -1;
    for (const cJSON *k = root->child; k; k = k->next) {
        if (!strcmp(k->string, "clear") || !strcmp(k->string, "path") ||
            !strcmp(k->string, "count") || !strcmp(k->string, "when"))
            continue;
        int m = mode_index(k->string);
        if (m < 0)
            return fail(x, "unknown mode %.64s", k->string);
        if (apply_mode(x, m, k) != 0)
            return -1;
        hang |= m == CS_H_HANG;
    }
    return hang;
}

/* ---- the JSON form (GET, and the answer to a POST) ---- */

static cJSON *mode_json(int m, const cs_hostile_t *p)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    switch (m) {
    case CS_H_OVERSIZED_ROW:
        cJSON_AddNumberToObject(o, "bytes", (double)p->row_bytes);
        cJSON_AddNumberToObject(o, "index", p->row_index);
        cJSON_AddStringToObject(o, "field", p->row_field);
        break;
    case CS_H_HUGE_BODY: cJSON_AddNumberToObject(o, "bytes", (double)p->huge_bytes); break;
    case CS_H_DEEP_JSON: cJSON_AddNumberToObject(o, "depth", (double)p->deep_depth); break;
    case CS_H_WIDE_JSON:
        if (p->wide_bytes)
            cJSON_AddNumberToObject(o, "bytes", (double)p->wide_bytes);
        else
            cJSON_AddNumberToObject(o, "items", (double)p->wide_items);
        break;
    case CS_H_TOTAL_RESULTS:
        cJSON_AddStringToObject(o, "mode", TOTAL_MODES[p->total_mode]);
        cJSON_AddBoolToObject(o, "always_full", p->always_full);
        break;
    case CS_H_RETRY_AFTER:
        cJSON_AddStringToObject(o, "seconds", p->retry_after);
        cJSON_AddNumberToObject(o, "status", p->retry_status);
        break;
    case CS_H_DRIP: cJSON_AddNumberToObject(o, "interval_ms", p->drip_ms); break;
    case CS_H_HANG: cJSON_AddNumberToObject(o, "max_s", p->hang_s); break;
    case CS_H_LATENCY:
        cJSON_AddNumberToObject(o, "min_ms", p->latency_min_ms);
        cJSON_AddNumberToObject(o, "max_ms", p->latency_max_ms);
        break;
    }
    return o;
}

static cJSON *account_json(int m, const cs_hostile_t *p)
{
    if (m == CS_H_IP_DENY)
        return cJSON_CreateBool(p->ip_deny);
    if (m == CS_H_PASSWORD)
        return cJSON_CreateString("(hidden)"); /* the password is never shown */
    cJSON *list = cJSON_CreateArray();
    for (int i = 0; list && i < CS_NPATHS; i++)
        if (p->deny_mask & (1u << i))
            cJSON_AddItemToArray(list, cJSON_CreateString(cs_api_paths[i]));
    return list;
}

static cJSON *settings_json(const settings_t *s)
{
    cJSON *root = cJSON_CreateObject();
    for (int m = 0; root && m < CS_H_NMODES; m++) {
        const scope_t *sc = &s->sc[m];
        if (!sc->on)
            continue;
        cJSON *o = m < CS_H_IP_DENY ? mode_json(m, &s->p) : account_json(m, &s->p);
        if (o && sc->path >= 0)
            cJSON_AddStringToObject(o, "path", cs_api_paths[sc->path]);
        if (o && sc->left >= 0)
            cJSON_AddNumberToObject(o, "count", (double)sc->left);
        cJSON *w = o && sc->nwhen ? cJSON_AddObjectToObject(o, "when") : NULL;
        for (int i = 0; w && i < sc->nwhen; i++)
            cJSON_AddStringToObject(w, sc->when[i].name, sc->when[i].val);
        cJSON_AddItemToObject(root, cs_hostile_names[m], o);
    }
    return root;
}

static char *answer(const char *result, const char *message, cJSON *faults)
{
    cJSON *root = cJSON_CreateObject();
    char *out = NULL;
    if (root) {
        cJSON_AddStringToObject(root, "result", result);
        if (message)
            cJSON_AddStringToObject(root, "message", message);
        if (faults)
            cJSON_AddItemToObject(root, "faults", faults);
        faults = NULL;
        out = cJSON_PrintUnformatted(root);
    }
    cJSON_Delete(faults);
    cJSON_Delete(root);
    return out;
}

char *cs_hostile_set(cs_hstate_t *st, const char *body, size_t len, int *http_status)
{
    cJSON *root = NULL, *faults = NULL;
    char err[160] = "";
    settings_t next;
    *http_status = 400;
    if (len > MAX_FAULT_BODY || !(root = cJSON_ParseWithLength(body, len)) ||
        !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return answer("ERROR", "body must be a JSON object", NULL);
    }
    pctx_t x = {.s = &next, .err = err, .errlen = sizeof(err)};
    pthread_mutex_lock(&st->mu);
    next = st->s;
    int hang = apply(&x, root);
    if (hang >= 0) {
        st->s = next;
        st->hang_epoch += (uint64_t)hang;
        faults = settings_json(&st->s);
        *http_status = 200;
    }
    pthread_mutex_unlock(&st->mu);
    memset(&next, 0, sizeof(next)); /* a copy of the password */
    cJSON_Delete(root);
    return *http_status == 200 ? answer("SUCCESS", NULL, faults) : answer("ERROR", err, NULL);
}

char *cs_hostile_get(cs_hstate_t *st)
{
    static const settings_t none;
    if (!st)
        return answer("SUCCESS", NULL, settings_json(&none));
    pthread_mutex_lock(&st->mu);
    cJSON *faults = settings_json(&st->s);
    pthread_mutex_unlock(&st->mu);
    return answer("SUCCESS", NULL, faults);
}

/* ---- requests ---- */

/* Every "when" pair is in ps with exactly that value, read as query.c reads
 * its parameters (cs_params_get: the last one wins). ps NULL: none is. */
static int when_holds(const scope_t *sc, const cs_params_t *ps)
{
    for (int i = 0; i < sc->nwhen; i++) {
        const cs_param_t *p = ps ? cs_params_get(ps, sc->when[i].name) : NULL;
        size_t n = strlen(sc->when[i].val);
        if (!p || p->vlen != n || memcmp(p->val, sc->when[i].val, n) != 0)
            return 0;
    }
    return 1;
}

void cs_hostile_resolve(cs_hstate_t *st, int path, const cs_params_t *ps, cs_hostile_t *h)
{
    if (!st) {
        memset(h, 0, sizeof(*h));
        return;
    }
    pthread_mutex_lock(&st->mu);
    *h = st->s.p;
    h->modes = h->hit = 0;
    h->hang_epoch = st->hang_epoch;
    h->st = st;
    for (int m = 0; m < CS_H_NMODES; m++) {
        scope_t *sc = &st->s.sc[m];
        if (!sc->on || (sc->path >= 0 && sc->path != path) || !when_holds(sc, ps))
            continue; /* a request not in scope leaves the count alone */
        h->modes |= CS_H_BIT(m);
        if (sc->left > 0 && --sc->left == 0)
            sc->on = 0;
    }
    pthread_mutex_unlock(&st->mu);
}

void cs_hostile_tally(const cs_hostile_t *h, unsigned bits)
{
    cs_hstate_t *st = h->st;
    if (!bits || !st)
        return;
    pthread_mutex_lock(&st->mu);
    for (int m = 0; m < CS_H_NMODES; m++)
        if (bits & CS_H_BIT(m))
            st->hits[m]++;
    pthread_mutex_unlock(&st->mu);
}

void cs_hostile_hits(cs_hstate_t *st, long long hits[CS_H_NMODES])
{
    if (!st)
        return;
    pthread_mutex_lock(&st->mu);
    for (int m = 0; m < CS_H_NMODES; m++)
        hits[m] += st->hits[m];
    pthread_mutex_unlock(&st->mu);
}

void cs_hostile_stats(cs_hstate_t *st, cJSON *stats)
{
    long long hits[CS_H_NMODES] = {0};
    cJSON *o = cJSON_AddObjectToObject(stats, "hostile");
    cs_hostile_hits(st, hits);
    for (int m = 0; o && m < CS_H_NMODES; m++)
        cJSON_AddNumberToObject(o, cs_hostile_names[m], (double)hits[m]);
}

uint64_t cs_hostile_epoch(cs_hstate_t *st)
{
    pthread_mutex_lock(&st->mu);
    uint64_t e = st->hang_epoch;
    pthread_mutex_unlock(&st->mu);
    return e;
}

/* Letters and digits from a seeded stream: deterministic, and not the kind
 * of run a compressor folds away (the row must stay big on the wire). */
cJSON *cs_hostile_filler(uint64_t bytes, uint64_t seed)
{
    static const char ALPHA[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *buf = malloc(bytes + 1);
    cs_rng_t r;
    if (!buf)
        return NULL;
    cs_rng_seed(&r, seed);
    for (uint64_t i = 0; i < bytes; i += 10) {
        uint64_t x = cs_rng_next(&r);
        for (uint64_t k = i; k < i + 10 && k < bytes; k++, x >>= 6)
            buf[k] = ALPHA[x & 63];
    }
    buf[bytes] = '\0';
    cJSON *s = cJSON_CreateString(buf);
    free(buf);
    return s;
}

int cs_hostile_sleep_ms(int64_t ms)
{
    while (ms > 0 && !cs_hostile_stopping()) {
        int64_t step = ms < 100 ? ms : 100;
        struct timespec ts = {0, (long)(step * 1000000)};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
        ms -= step;
    }
    return cs_hostile_stopping() ? -1 : 0;
}

int cs_hostile_latency(const cs_hostile_t *h)
{
    cs_hstate_t *st = h->st;
    if (!(h->modes & CS_H_BIT(CS_H_LATENCY)) || !st)
        return 0;
    pthread_mutex_lock(&st->mu);
    int64_t span = (int64_t)h->latency_max_ms - h->latency_min_ms + 1;
    int64_t ms = h->latency_min_ms + (int64_t)cs_rng_below(&st->rng, (uint64_t)span);
    st->hits[CS_H_LATENCY]++;
    pthread_mutex_unlock(&st->mu);
    return cs_hostile_sleep_ms(ms);
}
