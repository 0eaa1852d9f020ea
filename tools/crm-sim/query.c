/* The API: credentials, permissions, date windows, filters, paging and the
 * envelope. Rows are found through per-stream indexes sorted by (date, id),
 * one per date type, and rendered only for the page asked for. */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const cs_api_paths[CS_NPATHS] = {"/transactions/query/", "/order/query/",
                                             "/customer/query/",     "/purchase/query/",
                                             "/campaign/query/",     "/transactions/summary/"};
static const char *const NOUNS[] = {"transactions", "orders",    "customers",
                                    "purchases",    "campaigns", "transactions"};
#define MAX_CAMPAIGN_FILTER 16

typedef struct {
    const char *txn_type, *resp_type, *order_id, *order_status, *status;
    long long customer_id, purchase_id;
    int chargedback, ncampaigns, active;
    long long campaigns[MAX_CAMPAIGN_FILTER];
} filt_t;

typedef struct {
    int64_t first_day, last_day;
    int updated, page, rpp, sort_dir;
    const char *drt;
    filt_t f;
} query_t;

int cs_api_known(const char *path)
{
    for (int i = 0; i < CS_NPATHS; i++)
        if (strcmp(path, cs_api_paths[i]) == 0)
            return 1;
    return 0;
}

/* ---- indexes ---- */

static cs_ls_t row_date(const cs_account_t *a, int s, int du, int i)
{
    switch (s) {
    case CS_S_TXN: return du ? a->txns[i].updated : a->txns[i].created;
    case CS_S_ORDER: return du ? a->orders[i].updated : a->orders[i].created;
    case CS_S_CUSTOMER: return du ? a->customers[i].updated : a->customers[i].created;
    default: return du ? a->purchases[i].updated : a->purchases[i].created;
    }
}

static int row_id_cmp(const cs_account_t *a, int s, int i, int j)
{
    long long x, y;
    switch (s) {
    case CS_S_TXN: x = a->txns[i].id, y = a->txns[j].id; break;
    case CS_S_ORDER: return strcmp(a->orders[i].id, a->orders[j].id);
    case CS_S_CUSTOMER: x = a->customers[i].id, y = a->customers[j].id; break;
    default: x = a->purchases[i].id, y = a->purchases[j].id; break;
    }
    return x < y ? -1 : x > y;
}

typedef struct {
    const cs_account_t *a;
    int s, du;
} keyctx_t;

static int cmp_rows(const void *x, const void *y, void *ctx)
{
    const keyctx_t *k = ctx;
    int i = *(const int *)x, j = *(const int *)y;
    cs_ls_t di = row_date(k->a, k->s, k->du, i), dj = row_date(k->a, k->s, k->du, j);
    if (di != dj)
        return di < dj ? -1 : 1;
    return row_id_cmp(k->a, k->s, i, j);
}

static size_t stream_len(const cs_account_t *a, int s)
{
    return s == CS_S_TXN        ? a->ntxns
           : s == CS_S_ORDER    ? a->norders
           : s == CS_S_CUSTOMER ? a->ncustomers
                                : a->npurchases;
}

int cs_account_index(cs_account_t *a)
{
    for (int s = 0; s < CS_NSTREAMS; s++) {
        size_t n = stream_len(a, s);
        for (int du = 0; du < 2; du++) {
            cs_index_t *ix = du ? &a->by_updated[s] : &a->by_created[s];
            int *idx = realloc(ix->idx, (n + 1) * sizeof(int));
            if (!idx)
                return -1;
            for (size_t i = 0; i < n; i++)
                idx[i] = (int)i;
            keyctx_t k = {a, s, du};
            qsort_r(idx, n, sizeof(int), cmp_rows, &k);
            ix->idx = idx, ix->n = n;
        }
    }
    return 0;
}

/* First position in ix whose date is >= t (upper: > t). */
static size_t bound(const cs_account_t *a, int s, int du, const cs_index_t *ix, cs_ls_t t,
                    int upper)
{
    size_t lo = 0, hi = ix->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        cs_ls_t d = row_date(a, s, du, ix->idx[mid]);
        if (d < t || (upper && d == t))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---- envelope ---- */

static char *error_body(const char *msg)
{
    cJSON *root = cJSON_CreateObject();
    char *out = NULL;
    if (!root)
        return NULL;
    cJSON_AddStringToObject(root, "result", "ERROR");
    cJSON_AddStringToObject(root, "message", msg);
    out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return out;
}

static char *no_rows(int path)
{
    char msg[96];
    snprintf(msg, sizeof(msg), "No %s matching those parameters could be found", NOUNS[path]);
    return error_body(msg);
}

static void add_count(cJSON *o, const char *k, long long v, int as_string)
{
    char buf[24];
    if (!as_string) {
        cJSON_AddNumberToObject(o, k, (double)v);
        return;
    }
    snprintf(buf, sizeof(buf), "%lld", v);
    cJSON_AddStringToObject(o, k, buf);
}

/* message{} of a success; data is added by the caller. total < 0: no
 * totalResults key at all (hostile total_results "missing"). */
static cJSON *envelope(const cs_account_t *a, const query_t *q, long long total, cJSON **data,
                       int data_object)
{
    const char *sort_by = q->updated ? "dateUpdated" : "dateCreated";
    int str = a->opts->counts_as_strings;
    cJSON *root = cJSON_CreateObject(), *qa, *msg;
    if (!root)
        return NULL;
    cJSON_AddStringToObject(root, "result", "SUCCESS");
    msg = cJSON_AddObjectToObject(root, "message");
    if (!msg) {
        cJSON_Delete(root);
        return NULL;
    }
    if (total >= 0)
        add_count(msg, "totalResults", total, str);
    add_count(msg, "resultsPerPage", q->rpp, str);
    add_count(msg, "page", q->page, str);
    *data =
        data_object ? cJSON_AddObjectToObject(msg, "data") : cJSON_AddArrayToObject(msg, "data");
    cJSON_AddNullToObject(msg, "params");
    cJSON_AddNullToObject(msg, "errors");
    cJSON_AddStringToObject(msg, "sortBy", sort_by);
    cJSON_AddNumberToObject(msg, "sortDir", q->sort_dir);
    qa = cJSON_AddObjectToObject(msg, "queryArgs");
    if (qa) {
        cJSON_AddNumberToObject(qa, "page", q->page);
        cJSON_AddNumberToObject(qa, "sortDir", q->sort_dir);
        cJSON_AddNumberToObject(qa, "resultsPerPage", q->rpp);
        cJSON_AddStringToObject(qa, "sortBy", sort_by);
        cJSON_AddStringToObject(qa, "dateRangeType", q->drt);
    }
    return root;
}

static char *print_free(cJSON *root)
{
    char *out = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return out;
}

/* ---- parameters ---- */

static const char *pval(const cs_params_t *ps, const char *k)
{
    const cs_param_t *p = cs_params_get(ps, k);
    return p && p->vlen > 0 ? p->val : NULL;
}

static long long pnum(const cs_params_t *ps, const char *k, long long dflt)
{
    const char *v = pval(ps, k);
    char *end;
    if (!v)
        return dflt;
    long long n = strtoll(v, &end, 10);
    return *end == '\0' ? n : -2; /* -2: matches no row */
}

static void parse_filters(const cs_params_t *ps, filt_t *f)
{
    memset(f, 0, sizeof(*f));
    f->txn_type = pval(ps, "txnType");
    f->resp_type = pval(ps, "responseType");
    f->order_id = pval(ps, "orderId");
    f->order_status = pval(ps, "orderStatus");
    f->status = pval(ps, "status");
    f->customer_id = pnum(ps, "customerId", -1);
    f->purchase_id = pnum(ps, "purchaseId", -1);
    f->chargedback = (int)pnum(ps, "isChargedback", -1);
    const char *c = pval(ps, "campaignId");
    while (c && *c && f->ncampaigns < MAX_CAMPAIGN_FILTER) {
        char *end;
        f->campaigns[f->ncampaigns++] = strtoll(c, &end, 10);
        c = *end == ',' ? end + 1 : NULL;
    }
    f->active = f->txn_type || f->resp_type || f->order_id || f->order_status || f->status ||
                f->customer_id != -1 || f->purchase_id != -1 || f->chargedback != -1 ||
                f->ncampaigns;
}

/* Returns NULL or the error text. */
static const char *parse_query(const cs_params_t *ps, int path, query_t *q)
{
    const char *sd = pval(ps, "startDate"), *ed = pval(ps, "endDate");
    const char *drt = pval(ps, "dateRangeType");
    memset(q, 0, sizeof(*q));
    q->first_day = -1000000, q->last_day = 10000000;
    if (sd && cs_date_parse(sd, &q->first_day) != 0)
        return "Invalid startDate";
    if (ed && cs_date_parse(ed, &q->last_day) != 0)
        return "Invalid endDate";
    q->drt = drt ? drt : "dateCreated";
    if (strcmp(q->drt, "dateUpdated") == 0 ||
        (path == CS_S_CUSTOMER && strcmp(q->drt, "mostRecentActivity") == 0))
        q->updated = 1;
    else if (strcmp(q->drt, "dateCreated") != 0)
        return "Invalid dateRangeType";
    q->rpp = (int)pnum(ps, "resultsPerPage", 25);
    q->rpp = q->rpp < 1 ? 25 : q->rpp > 200 ? 200 : q->rpp;
    long long page = pnum(ps, "page", 1);
    q->page = page < 1 ? 1 : page > 1000000 ? 1000000 : (int)page;
    q->sort_dir = pnum(ps, "sortDir", 1) == 0 ? 0 : 1;
    parse_filters(ps, &q->f);
    return NULL;
}

static int campaign_listed(const filt_t *f, long long id)
{
    if (!f->ncampaigns)
        return 1;
    for (int i = 0; i < f->ncampaigns; i++)
        if (f->campaigns[i] == id)
            return 1;
    return 0;
}

static int str_is(const char *want, const char *have)
{
    return !want || strcmp(want, have) == 0;
}

static int match(const cs_account_t *a, int s, int i, const filt_t *f)
{
    if (s == CS_S_TXN) {
        const cs_txn_t *t = &a->txns[i];
        return str_is(f->txn_type, cs_txn_type_names[t->type]) &&
               str_is(f->resp_type, cs_resp_names[t->resp]) &&
               str_is(f->order_id, a->orders[t->order].id) &&
               (f->chargedback == -1 || f->chargedback == t->cb) &&
               (f->customer_id == -1 || f->customer_id == a->customers[t->customer].id) &&
               (f->purchase_id == -1 ||
                (t->purchase >= 0 && f->purchase_id == a->purchases[t->purchase].id)) &&
               campaign_listed(f, a->campaigns[t->campaign].id);
    }
    if (s == CS_S_ORDER) {
        const cs_order_t *o = &a->orders[i];
        return str_is(f->order_status, cs_order_status_names[o->status]) &&
               str_is(f->order_id, o->id) && campaign_listed(f, a->campaigns[o->campaign].id) &&
               (f->customer_id == -1 || f->customer_id == a->customers[o->customer].id);
    }
    if (s == CS_S_CUSTOMER)
        return f->customer_id == -1 || f->customer_id == a->customers[i].id;
    const cs_purchase_t *p = &a->purchases[i];
    return str_is(f->status, cs_purchase_status_names[p->status]) &&
           str_is(f->order_id, a->orders[p->order].id) &&
           (f->customer_id == -1 || f->customer_id == a->customers[p->customer].id) &&
           (f->purchase_id == -1 || f->purchase_id == p->id) &&
           campaign_listed(f, a->campaigns[p->campaign].id);
}

/* ---- hostile pages (POST /_sim/fault) ---- */

/* totalResults as reported: the true count unless total_results is set. */
static long long reported_total(const query_t *q, size_t total, cs_hostile_t *h)
{
    if (!(h->modes & CS_H_BIT(CS_H_TOTAL_RESULTS)))
        return (long long)total;
    h->hit |= CS_H_BIT(CS_H_TOTAL_RESULTS);
    switch (h->total_mode) {
    case CS_TOTAL_HUGE: return 200000000;
    case CS_TOTAL_MISSING: return -1;
    default: return (long long)total + 7LL * q->page; /* changing */
    }
}

/* Position j >= total of an always-full stream repeats row j % total (the
 * account's row ri) under an id no real row has, the same wherever that row
 * is repeated on that lap (one id, one content: orders give events too):
 * numbers + 1e9 per lap, orders "FF" + 8 hex of lap << 20 | ri. */
static void fresh_id(cJSON *row, int s, size_t j, size_t total, int ri)
{
    static const char *const ID[] = {"transactionId", "orderId", "customerId", "purchaseId"};
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(row, ID[s]);
    char buf[16];
    if (!id)
        return;
    if (s == CS_S_ORDER) {
        unsigned long long lap = j / total;
        snprintf(buf, sizeof(buf), "FF%08llX",
                 (lap << 20 | ((unsigned long long)ri & 0xFFFFFULL)) & 0xFFFFFFFFULL);
        cJSON_ReplaceItemInObjectCaseSensitive(row, ID[s], cJSON_CreateString(buf));
    } else {
        double lap = (double)(j / total);
        cJSON_ReplaceItemInObjectCaseSensitive(row, ID[s],
                                               cJSON_CreateNumber(id->valuedouble + 1e9 * lap));
    }
}

/* Row k of the page gets field = a seeded string of row_bytes (replacing
 * the field if the row has one). */
static void oversize(cJSON *row, size_t k, cs_hostile_t *h)
{
    cJSON *big;
    if (!(h->modes & CS_H_BIT(CS_H_OVERSIZED_ROW)) || k != (size_t)h->row_index ||
        !(big = cs_hostile_filler(h->row_bytes, 0x0B5E55EDULL + k)))
        return;
    cJSON_DeleteItemFromObjectCaseSensitive(row, h->row_field);
    cJSON_AddItemToObject(row, h->row_field, big);
    h->hit |= CS_H_BIT(CS_H_OVERSIZED_ROW);
}

/* Rows of one page; caller holds the read lock. */
static char *page_body(const cs_account_t *a, int s, const query_t *q, const int *rows,
                       size_t total, cs_hostile_t *h)
{
    size_t first = (size_t)(q->page - 1) * (size_t)q->rpp;
    int full = (h->modes & CS_H_BIT(CS_H_TOTAL_RESULTS)) && h->always_full;
    size_t end = first + (size_t)q->rpp;
    cJSON *root, *data = NULL;
    if (total == 0 || (first >= total && !full && !a->opts->empty_past_last_page))
        return no_rows(s);
    if (!full && end > total)
        end = total;
    root = envelope(a, q, reported_total(q, total, h), &data, 0);
    for (size_t j = first; data && j < end; j++) {
        size_t k = j % total;
        int ri = rows[q->sort_dir ? k : total - 1 - k];
        cJSON *row = cs_render_row(a, s, ri);
        if (row && j >= total)
            fresh_id(row, s, j, total, ri);
        if (row)
            oversize(row, j - first, h);
        cJSON_AddItemToArray(data, row);
    }
    return print_free(root);
}

static char *query_stream(cs_account_t *a, int s, const cs_params_t *ps, cs_hostile_t *h)
{
    query_t q;
    const char *err = parse_query(ps, s, &q);
    char *out = NULL;
    int *rows = NULL;
    size_t total = 0;
    if (err)
        return error_body(err);
    pthread_rwlock_rdlock(&a->lock);
    const cs_index_t *ix = q.updated ? &a->by_updated[s] : &a->by_created[s];
    size_t lo = bound(a, s, q.updated, ix, q.first_day * CS_DAY, 0);
    size_t hi = bound(a, s, q.updated, ix, q.last_day * CS_DAY + CS_DAY - 1, 1);
    if (hi < lo)
        hi = lo;
    if (!q.f.active) {
        out = page_body(a, s, &q, ix->idx + lo, hi - lo, h);
        goto end;
    }
    rows = malloc((hi - lo + 1) * sizeof(int));
    if (!rows)
        goto end;
    for (size_t j = lo; j < hi; j++)
        if (match(a, s, ix->idx[j], &q.f))
            rows[total++] = ix->idx[j];
    out = page_body(a, s, &q, rows, total, h);
end:
    pthread_rwlock_unlock(&a->lock);
    free(rows);
    return out;
}

static char *query_campaigns(cs_account_t *a, const cs_params_t *ps)
{
    query_t q;
    int rows[8];
    size_t total = 0;
    const char *err = parse_query(ps, CS_S_ORDER, &q);
    cJSON *root, *data = NULL;
    char key[16];
    if (err)
        return error_body(err);
    for (int i = 0; i < a->ncampaigns; i++)
        if (campaign_listed(&q.f, a->campaigns[i].id))
            rows[total++] = i;
    size_t first = (size_t)(q.page - 1) * (size_t)q.rpp;
    if (total == 0 || first >= total)
        return no_rows(4);
    root = envelope(a, &q, (long long)total, &data, 1);
    for (size_t j = first; data && j < total && j < first + (size_t)q.rpp; j++) {
        snprintf(key, sizeof(key), "%d", a->campaigns[rows[j]].id);
        cJSON_AddItemToObject(data, key, cs_render_campaign(a, rows[j]));
    }
    return print_free(root);
}

/* ---- summary: the CRM's own daily totals ---- */

typedef struct {
    int64_t day;
    long long n[6]; /* sales, rebills, refunds, voids, chargebacks, declines */
    int64_t sum[5];
} day_tot_t;

static void flush_day(const cs_account_t *a, cJSON *list, const day_tot_t *d)
{
    static const char *const CK[] = {"salesCount", "rebillCount",     "refundCount",
                                     "voidCount",  "chargebackCount", "declineCount"};
    static const char *const TK[] = {"salesTotal", "rebillTotal", "refundTotal", "voidTotal",
                                     "chargebackTotal"};
    char buf[32];
    cJSON *o;
    if (d->day < 0 || !(o = cJSON_CreateObject()))
        return;
    cs_day_format(d->day, buf);
    cJSON_AddStringToObject(o, "date", buf);
    for (int k = 0; k < 6; k++) {
        cJSON_AddNumberToObject(o, CK[k], (double)d->n[k]);
        if (k < 5) {
            cs_money_format(d->sum[k], a->opts->decimals, buf, sizeof(buf));
            cJSON_AddStringToObject(o, TK[k], buf);
        }
    }
    cJSON_AddItemToArray(list, o);
}

static void tally(const cs_txn_t *t, day_tot_t *d)
{
    int k = -1;
    if (t->resp != CS_SUCCESS)
        d->n[5]++;
    else if (t->type == CS_SALE || t->type == CS_CAPTURE)
        k = t->cycle >= 2 ? 1 : 0;
    else if (t->type == CS_REFUND)
        k = 2;
    else if (t->type == CS_VOID)
        k = 3;
    if (k >= 0)
        d->n[k]++, d->sum[k] += t->amount;
    if (t->cb) /* on the original sale's day: this row's own day */
        d->n[4]++, d->sum[4] += t->cb_amount;
}

cJSON *cs_summary(const cs_account_t *a, int64_t first_day, int64_t last_day)
{
    const cs_index_t *ix = &a->by_created[CS_S_TXN];
    cJSON *list = cJSON_CreateArray();
    day_tot_t d;
    if (!list)
        return NULL;
    memset(&d, 0, sizeof(d));
    d.day = -1;
    size_t lo = bound(a, CS_S_TXN, 0, ix, first_day * CS_DAY, 0);
    size_t hi = bound(a, CS_S_TXN, 0, ix, last_day * CS_DAY + CS_DAY - 1, 1);
    for (size_t j = lo; j < hi; j++) {
        const cs_txn_t *t = &a->txns[ix->idx[j]];
        if (t->created / CS_DAY != d.day) {
            flush_day(a, list, &d);
            memset(&d, 0, sizeof(d));
            d.day = t->created / CS_DAY;
        }
        tally(t, &d);
    }
    flush_day(a, list, &d);
    return list;
}

static char *query_summary(cs_account_t *a, const cs_params_t *ps)
{
    const char *sd = pval(ps, "startDate"), *ed = pval(ps, "endDate");
    const char *rt = pval(ps, "reportType"), *drt = pval(ps, "dateRangeType");
    int64_t first = -1000000, last = 10000000;
    if (sd && cs_date_parse(sd, &first) != 0)
        return error_body("Invalid startDate");
    if (ed && cs_date_parse(ed, &last) != 0)
        return error_body("Invalid endDate");
    if (rt && strcmp(rt, "date") != 0)
        return error_body("Invalid reportType");
    if (drt && strcmp(drt, "txnDate") != 0)
        return error_body("Invalid dateRangeType");
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return NULL;
    cJSON_AddStringToObject(root, "result", "SUCCESS");
    pthread_rwlock_rdlock(&a->lock);
    cJSON_AddItemToObject(root, "message", cs_summary(a, first, last));
    pthread_rwlock_unlock(&a->lock);
    return print_free(root);
}

/* ---- dispatch ---- */

static int same(const cs_param_t *p, const char *want)
{
    size_t n = strlen(want);
    return p && p->vlen == n && memcmp(p->val, want, n) == 0;
}

/* The command line's --deny-endpoint, or the run-time list when one is set. */
static int denied(const cs_opts_t *o, int k, cs_hostile_t *h)
{
    if (h->modes & CS_H_BIT(CS_H_DENY_ENDPOINT)) {
        if (!(h->deny_mask & (1u << k)))
            return 0;
        h->hit |= CS_H_BIT(CS_H_DENY_ENDPOINT);
        return 1;
    }
    for (int i = 0; i < o->ndeny; i++)
        if (strcmp(o->deny[i], cs_api_paths[k]) == 0)
            return 1;
    return 0;
}

/* Run-time ip_deny and password (POST /_sim/fault) replace the command
 * line's while set; the answers stay the ones the CRM gives. */
int cs_api_check(const cs_opts_t *o, const char *login_id, int k, const cs_params_t *ps,
                 const char *peer, cs_hostile_t *h, int *auth_failed, char **body)
{
    unsigned ip_rt = h->modes & CS_H_BIT(CS_H_IP_DENY);
    unsigned pw_rt = h->modes & CS_H_BIT(CS_H_PASSWORD);
    char msg[96];
    *auth_failed = 0;
    *body = NULL;
    if (ip_rt ? h->ip_deny : o->ip_deny) {
        h->hit |= ip_rt;
        snprintf(msg, sizeof(msg), "IP must be whitelisted - %s", peer);
        *body = error_body(msg);
        return 1;
    }
    if (!login_id || !same(cs_params_get(ps, "loginId"), login_id) ||
        !same(cs_params_get(ps, "password"), pw_rt ? h->password : o->password)) {
        h->hit |= pw_rt;
        *auth_failed = 1;
        *body = error_body("Invalid login credentials");
        return 1;
    }
    if (k >= 0 && k < CS_NPATHS && denied(o, k, h)) {
        *body = error_body("API user does not have access to this endpoint");
        return 1;
    }
    return 0;
}

char *cs_api_query(cs_account_t *a, int k, const cs_params_t *ps, cs_hostile_t *h)
{
    if (k < 4)
        return query_stream(a, k, ps, h);
    return k == 4 ? query_campaigns(a, ps) : query_summary(a, ps);
}
