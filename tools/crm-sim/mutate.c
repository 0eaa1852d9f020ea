/* Late changes (POST /_sim/mutate) and the --dump file. A mutation takes the
 * account's write lock, moves dateUpdated, re-sorts the indexes and rewrites
 * the dump, so a test sees the change both over HTTP and in the file. */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BODY 65536

static char *result(const char *status, const char *message, cJSON *changed)
{
    cJSON *root = cJSON_CreateObject();
    char *out;
    if (!root) {
        cJSON_Delete(changed);
        return NULL;
    }
    cJSON_AddStringToObject(root, "result", status);
    if (message)
        cJSON_AddStringToObject(root, "message", message);
    if (changed)
        cJSON_AddItemToObject(root, "changed", changed);
    out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return out;
}

static int find_txn(const cs_account_t *a, const cJSON *id)
{
    long long want = -1;
    if (cJSON_IsNumber(id))
        want = (long long)id->valuedouble;
    else if (cJSON_IsString(id))
        want = strtoll(id->valuestring, NULL, 10);
    for (size_t i = 0; i < a->ntxns; i++)
        if (a->txns[i].id == want)
            return (int)i;
    return -1;
}

static int is_paid_sale(const cs_txn_t *t)
{
    return t->resp == CS_SUCCESS && (t->type == CS_SALE || t->type == CS_CAPTURE);
}

static cs_ls_t max_ls(cs_ls_t x, cs_ls_t y)
{
    return x > y ? x : y;
}

/* A REFUND transaction for sale si at time t; returns its index or -1. */
static int refund(cs_account_t *a, int si, cs_ls_t t, int64_t amount)
{
    cs_txn_t r = a->txns[si];
    int64_t max_id = 0;
    for (size_t i = 0; i < a->ntxns; i++)
        max_id = a->txns[i].id > max_id ? a->txns[i].id : max_id;
    r.id = max_id + 1, r.parent = si, r.type = CS_REFUND, r.resp = CS_SUCCESS;
    r.amount = amount, r.created = r.updated = t, r.refund_reason = 1;
    r.cb = r.cb_has = 0, r.cb_amount = 0, r.recycle = 0;
    int ri = cs_txn_add(a, &r);
    if (ri < 0)
        return -1;
    a->txns[si].updated = t;
    cs_order_t *o = &a->orders[r.order];
    o->refunded += amount, o->updated = max_ls(o->updated, t);
    if (o->refunded >= o->total)
        o->status = CS_O_REFUNDED;
    if (r.purchase >= 0) {
        cs_purchase_t *p = &a->purchases[r.purchase];
        p->refunded += amount, p->updated = max_ls(p->updated, t);
    }
    cs_customer_t *c = &a->customers[r.customer];
    c->updated = max_ls(c->updated, t);
    return ri;
}

/* Applies one action; returns NULL or the error text. *extra: a new row. */
static const char *apply(cs_account_t *a, const char *action, int si, cs_ls_t t, int date_only,
                         int *extra)
{
    cs_txn_t *s = &a->txns[si];
    *extra = -1;
    if (!is_paid_sale(s))
        return "transaction is not a successful SALE or CAPTURE";
    if (strcmp(action, "chargeback") == 0) {
        if (s->cb)
            return "transaction is already charged back";
        s->cb = s->cb_has = 1, s->cb_amount = s->amount, s->cb_date = t;
        s->cb_date_only = (uint8_t)date_only, s->updated = t;
    } else if (strcmp(action, "revert_chargeback") == 0) {
        if (!s->cb)
            return "transaction is not charged back";
        s->cb = 0, s->updated = t;
    } else if (strcmp(action, "refund") == 0) {
        if ((*extra = refund(a, si, t, s->amount)) < 0)
            return "out of memory";
    } else {
        return "unknown action";
    }
    cs_customer_t *c = &a->customers[a->txns[si].customer];
    c->updated = max_ls(c->updated, t);
    return NULL;
}

static cJSON *changed_rows(const cs_account_t *a, int si, int extra)
{
    cJSON *ch = cJSON_CreateObject(), *txs, *ords, *custs;
    if (!ch)
        return NULL;
    txs = cJSON_AddArrayToObject(ch, "transactions");
    ords = cJSON_AddArrayToObject(ch, "orders");
    /* every mutation moves the customer's dateUpdated too */
    if ((custs = cJSON_AddArrayToObject(ch, "customers")))
        cJSON_AddItemToArray(custs, cs_render_customer(a, a->txns[si].customer));
    if (txs) {
        cJSON_AddItemToArray(txs, cs_render_txn(a, si));
        if (extra >= 0)
            cJSON_AddItemToArray(txs, cs_render_txn(a, extra));
    }
    if (ords)
        cJSON_AddItemToArray(ords, cs_render_order(a, a->txns[si].order));
    return ch;
}

char *cs_mutate(cs_account_t *a, const char *body, size_t len, int *http_status)
{
    cJSON *root = NULL, *changed = NULL;
    const char *err = NULL;
    char errbuf[160];
    cs_ls_t t = 0;
    int date_only = 0, extra = -1, si;
    *http_status = 400;
    if (len > MAX_BODY || !(root = cJSON_ParseWithLength(body, len)))
        return result("ERROR", "body must be a JSON object", NULL);
    const cJSON *action = cJSON_GetObjectItemCaseSensitive(root, "action");
    const cJSON *date = cJSON_GetObjectItemCaseSensitive(root, "date");
    if (!cJSON_IsString(action) || !cJSON_IsString(date) ||
        cs_ls_parse(date->valuestring, &t, &date_only) != 0) {
        cJSON_Delete(root);
        return result("ERROR", "need action and date (YYYY-MM-DD[ HH:MM:SS])", NULL);
    }
    pthread_rwlock_wrlock(&a->lock);
    si = find_txn(a, cJSON_GetObjectItemCaseSensitive(root, "transactionId"));
    err =
        si < 0 ? "unknown transactionId" : apply(a, action->valuestring, si, t, date_only, &extra);
    if (!err && cs_account_index(a) != 0)
        err = "out of memory";
    if (!err && a->opts->dump && cs_dump_write(a, a->opts->dump, errbuf, sizeof(errbuf)) != 0)
        err = errbuf;
    if (!err) {
        changed = changed_rows(a, si, extra);
        *http_status = 200;
    }
    pthread_rwlock_unlock(&a->lock);
    cJSON_Delete(root);
    return result(err ? "ERROR" : "SUCCESS", err, changed);
}

/* ---- dump: one JSON document, rows streamed one at a time ---- */

static int put_json(FILE *f, cJSON *item)
{
    char *s = item ? cJSON_PrintUnformatted(item) : NULL;
    int rc = s && fputs(s, f) >= 0 ? 0 : -1;
    free(s);
    cJSON_Delete(item);
    return rc;
}

static int dump_stream(FILE *f, const cs_account_t *a, int s, const char *name, size_t n)
{
    if (fprintf(f, ",\n\"%s\":[", name) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if ((i && fputs(",\n", f) < 0) || put_json(f, cs_render_row(a, s, (int)i)) != 0)
            return -1;
    }
    return fputs("]", f) < 0 ? -1 : 0;
}

static int dump_head(FILE *f, const cs_account_t *a)
{
    const cs_opts_t *o = a->opts;
    char start[11], now[20];
    cJSON *acct = cJSON_CreateObject();
    if (!acct)
        return -1;
    cs_day_format(o->start_day, start);
    cs_ls_format(a->now, now);
    cJSON_AddStringToObject(acct, "timezone", o->timezone);
    cJSON_AddStringToObject(acct, "currency", o->currency);
    cJSON_AddNumberToObject(acct, "decimals", o->decimals);
    cJSON_AddStringToObject(acct, "login_id", o->login_id);
    cJSON_AddStringToObject(acct, "start", start);
    cJSON_AddNumberToObject(acct, "days", o->days);
    cJSON_AddNumberToObject(acct, "customers", o->customers);
    cJSON_AddNumberToObject(acct, "seed", (double)o->seed);
    cJSON_AddStringToObject(acct, "now", now);
    if (fputs("{\"account\":", f) < 0)
        return -1;
    return put_json(f, acct);
}

static int dump_tail(FILE *f, const cs_account_t *a)
{
    char key[16];
    cJSON *camps = cJSON_CreateObject();
    if (!camps)
        return -1;
    for (int i = 0; i < a->ncampaigns; i++) {
        snprintf(key, sizeof(key), "%d", a->campaigns[i].id);
        cJSON_AddItemToObject(camps, key, cs_render_campaign(a, i));
    }
    if (fputs(",\n\"campaigns\":", f) < 0 || put_json(f, camps) != 0)
        return -1;
    if (fputs(",\n\"summary\":", f) < 0 || put_json(f, cs_summary(a, -1000000, 10000000)) != 0)
        return -1;
    return fputs("}\n", f) < 0 ? -1 : 0;
}

int cs_dump_to(cs_account_t *a, FILE *f)
{
    if (dump_head(f, a) != 0 || dump_stream(f, a, CS_S_TXN, "transactions", a->ntxns) != 0 ||
        dump_stream(f, a, CS_S_ORDER, "orders", a->norders) != 0 ||
        dump_stream(f, a, CS_S_CUSTOMER, "customers", a->ncustomers) != 0 ||
        dump_stream(f, a, CS_S_PURCHASE, "purchases", a->npurchases) != 0 || dump_tail(f, a) != 0)
        return -1;
    return 0;
}

/* Caller holds a lock on the account. Written to FILE.tmp, then renamed. */
int cs_dump_write(cs_account_t *a, const char *path, char *errstr, size_t errlen)
{
    char tmp[4096];
    FILE *f = NULL;
    int rc = -1;
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        snprintf(errstr, errlen, "dump path too long");
        return -1;
    }
    if (!(f = fopen(tmp, "w"))) {
        snprintf(errstr, errlen, "cannot write %s", tmp);
        return -1;
    }
    rc = cs_dump_to(a, f);
    if (fclose(f) != 0)
        rc = -1;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -1;
    if (rc != 0)
        snprintf(errstr, errlen, "cannot write the dump %s", path);
    return rc;
}
