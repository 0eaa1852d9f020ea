/* The accounts one crm-sim serves (--accounts N). With one, the command
 * line's login id and seed, generated at start-up: crm-sim as it always was.
 * With N > 1, acct-1..acct-N share the password and every other option, and
 * each has its own seed (cs_account_seed), size (--account-size), request
 * counters and limits (a cs_ledger_t) and hostile settings (a cs_hstate_t,
 * made by the first POST /_sim/fault that names it).
 *
 * An account is generated on first use, under its own mutex, from its seed
 * and options only (the zone's DST edges are found once, at start-up:
 * cs_tz_edges sets TZ and is not thread-safe), so it is the same account
 * whichever request comes first, and the same as --accounts 1 --seed
 * <its seed> --login-id acct-i gives. With --dump DIR every account is
 * generated and written to DIR/acct-i.json before the port file is. */
#include "sim.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static struct {
    cs_tenant_t *t;
    int n;
    cs_ls_t gap, fold; /* of the shared zone and window */
    atomic_size_t generated;
} T;

/* splitmix64's first output for state seed + index, cut to 53 bits so the
 * dump's "seed" (a JSON number) is exact and can be passed to --seed. */
uint64_t cs_account_seed(uint64_t seed, int index)
{
    uint64_t z = seed + (uint64_t)index + 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return (z ^ (z >> 31)) >> 11;
}

static int make_dump_dir(const char *dir, char *errstr, size_t errlen)
{
    struct stat st;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        snprintf(errstr, errlen, "cannot create the dump directory %s", dir);
        return -1;
    }
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(errstr, errlen, "--dump %s: with --accounts > 1 it must be a directory", dir);
        return -1;
    }
    return 0;
}

static int setup(cs_tenant_t *t, const cs_opts_t *o, int index)
{
    t->o = *o;
    t->index = index;
    cs_ledger_init(&t->ledger);
    if (pthread_mutex_init(&t->mu, NULL) != 0)
        return -1;
    if (o->accounts == 1) { /* o.login_id is its login; t->login stays empty */
        t->hs = cs_hostile_default();
        return 0;
    }
    snprintf(t->login, sizeof(t->login), "acct-%d", index);
    t->o.login_id = t->login;
    t->o.seed = cs_account_seed(o->seed, index);
    for (int i = 0; i < o->nsizes; i++)
        if (o->size_index[i] == index)
            t->o.customers = o->size_customers[i];
    t->o.dump = NULL;
    if (o->dump) {
        size_t len = strlen(o->dump) + sizeof(t->login) + 8;
        if (!(t->dump_path = malloc(len)))
            return -1;
        snprintf(t->dump_path, len, "%s/%s.json", o->dump, t->login);
        t->o.dump = t->dump_path;
    }
    return 0;
}

int cs_tenants_init(const cs_opts_t *o, char *errstr, size_t errlen)
{
    T.n = o->accounts;
    if (!(T.t = calloc((size_t)T.n, sizeof(*T.t)))) {
        snprintf(errstr, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < T.n; i++)
        if (setup(&T.t[i], o, i + 1) != 0) {
            snprintf(errstr, errlen, "out of memory");
            return -1;
        }
    if (T.n == 1) { /* as crm-sim always did: generated and dumped at start-up */
        cs_tenant_t *t = &T.t[0];
        if (!(t->a = cs_account_new(&t->o, errstr, errlen)))
            return -1;
        atomic_store(&T.generated, 1);
        return o->dump ? cs_dump_write(t->a, o->dump, errstr, errlen) : 0;
    }
    cs_tz_edges(o->timezone, o->start_day, o->start_day + o->days - 1, &T.gap, &T.fold);
    if (!o->dump)
        return 0;
    if (make_dump_dir(o->dump, errstr, errlen) != 0)
        return -1;
    for (int i = 0; i < T.n; i++) {
        cs_tenant_t *t = &T.t[i];
        if (!cs_tenant_account(t)) {
            snprintf(errstr, errlen, "out of memory while generating %s", t->login);
            return -1;
        }
        if (cs_dump_write(t->a, t->o.dump, errstr, errlen) != 0)
            return -1;
    }
    return 0;
}

void cs_tenants_destroy(void)
{
    for (int i = 0; T.t && i < T.n; i++) {
        cs_tenant_t *t = &T.t[i];
        cs_account_destroy(t->a);
        cs_hstate_free(t->hs); /* the process's own set is not freed */
        cs_ledger_destroy(&t->ledger);
        pthread_mutex_destroy(&t->mu);
        free(t->dump_path);
    }
    free(T.t);
    T.t = NULL;
    T.n = 0;
}

int cs_tenants_n(void)
{
    return T.n;
}
cs_tenant_t *cs_tenant_first(void)
{
    return T.n ? &T.t[0] : NULL;
}

/* "acct-<i>", i in 1..N without leading zeros; 0 when it is not one. */
static int acct_index(const char *s, size_t len)
{
    long v = 0;
    if (len < 6 || len > 11 || memcmp(s, "acct-", 5) != 0 || s[5] == '0')
        return 0;
    for (size_t i = 5; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    return v <= T.n ? (int)v : 0;
}

cs_tenant_t *cs_tenant_login(const cs_params_t *ps)
{
    if (T.n == 1)
        return &T.t[0]; /* its own check tells a wrong login id */
    const cs_param_t *p = cs_params_get(ps, "loginId");
    int i = p ? acct_index(p->val, p->vlen) : 0;
    return i ? &T.t[i - 1] : NULL;
}

cs_tenant_t *cs_tenant_named(const char *name, size_t len)
{
    if (T.n == 1) {
        const char *id = T.t[0].o.login_id;
        return strlen(id) == len && memcmp(id, name, len) == 0 ? &T.t[0] : NULL;
    }
    int i = acct_index(name, len);
    return i ? &T.t[i - 1] : NULL;
}

cs_account_t *cs_tenant_account(cs_tenant_t *t)
{
    char err[256] = "";
    pthread_mutex_lock(&t->mu);
    if (!t->a && (t->a = cs_account_new_at(&t->o, T.gap, T.fold, err, sizeof(err))))
        atomic_fetch_add(&T.generated, 1);
    cs_account_t *a = t->a;
    pthread_mutex_unlock(&t->mu);
    if (!a)
        fprintf(stderr, "crm-sim: %s: %s\n", t->login, err);
    return a;
}

cs_hstate_t *cs_tenant_hostile(cs_tenant_t *t, int create)
{
    pthread_mutex_lock(&t->mu);
    if (!t->hs && create)
        t->hs = cs_hstate_new(t->o.seed);
    cs_hstate_t *hs = t->hs;
    pthread_mutex_unlock(&t->mu);
    return hs;
}

cs_ledger_t *cs_tenant_ledger(cs_tenant_t *t)
{
    return t && T.n > 1 ? &t->ledger : NULL;
}

static char *print_free(cJSON *root)
{
    char *out = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return out;
}

char *cs_tenants_stats(cs_tenant_t *t)
{
    cJSON *root;
    if (T.n == 1)
        return cs_limits_stats();
    if (t) {
        if ((root = cs_ledger_json(&t->ledger))) {
            cs_hostile_stats(cs_tenant_hostile(t, 0), root);
            cJSON_AddStringToObject(root, "account", t->login);
            pthread_mutex_lock(&t->mu);
            cJSON_AddBoolToObject(root, "generated", t->a != NULL);
            pthread_mutex_unlock(&t->mu);
        }
        return print_free(root);
    }
    long long hits[CS_H_NMODES] = {0};
    cJSON *o;
    if (!(root = cs_limits_json()))
        return NULL;
    for (int i = 0; i < T.n; i++)
        cs_hostile_hits(cs_tenant_hostile(&T.t[i], 0), hits);
    if ((o = cJSON_AddObjectToObject(root, "hostile")))
        for (int m = 0; m < CS_H_NMODES; m++)
            cJSON_AddNumberToObject(o, cs_hostile_names[m], (double)hits[m]);
    cJSON_AddNumberToObject(root, "accounts", T.n);
    cJSON_AddNumberToObject(root, "generated", (double)atomic_load(&T.generated));
    return print_free(root);
}
