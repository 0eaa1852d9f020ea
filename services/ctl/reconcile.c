/* ltvctl reconcile ID --from DAY --to DAY [--json]
 *
 * Per account-local day: the CRM's own daily summary (/transactions/summary/)
 * beside ltvsync's totals from ltvsync.events (latest version of each
 * event_id). The CRM counts a chargeback on the ORIGINAL SALE's day; the
 * platform counts it on the day it happened. So ltvsync computes its totals
 * both ways: CRM-style (chargebacks moved to their sale's day), which must
 * equal the CRM exactly, and platform-style. Every difference between the
 * two refund views is explained by the chargebacks that moved; any other
 * difference is unexplained and makes the exit status 1.
 *
 * Then the dimensions at work: the net revenue of the range (payments minus
 * refunds, voids and chargebacks, plus reversals, on the days they
 * happened) by product (the event's one product id; "(several)" or
 * "(none)" otherwise) and by coupon (the coupon of the event's order, from
 * the order events; "(none)" without one, "(order not synced)" when no
 * order event was read). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ctl.h"
#include "lt_cred.h"
#include "lt_crm.h"
#include "lt_date.h"
#include "lt_http.h"
#include "lt_json.h"
#include "lt_kafka.h"
#include "lt_money.h"

enum { K_SALES, K_REBILLS, K_REFUNDS, K_VOIDS, K_CHARGEBACKS, K_NKINDS };
static const char *const kind_names[K_NKINDS] = {"sales", "rebills", "refunds", "voids",
                                                 "chargebacks"};
static const char *const crm_count[K_NKINDS] = {"salesCount", "rebillCount", "refundCount",
                                                "voidCount", "chargebackCount"};
static const char *const crm_total[K_NKINDS] = {"salesTotal", "rebillTotal", "refundTotal",
                                                "voidTotal", "chargebackTotal"};

typedef struct {
    char event_id[37], type[24], subtype[12], local_date[11], txn[65];
    char order[65], product[65], coupon[65];
    long long amount;
    size_t seq; /* read order, so the latest version wins */
} rec_ev_t;

typedef struct {
    char day[11];
    long long crm_n[K_NKINDS], crm_sum[K_NKINDS]; /* the CRM's summary */
    long long our_n[K_NKINDS], our_sum[K_NKINDS]; /* CRM-style from events */
    long long cb_happened_n, cb_happened_sum;     /* platform: chargebacks that day */
    long long reversal_n, reversal_sum;
    int crm_seen;
} rec_day_t;

typedef struct {
    const char *id;
    rec_ev_t *evs;
    size_t n, cap;
} rec_read_t;

static void on_event(const rd_kafka_message_t *rkm, void *opaque)
{
    rec_read_t *rd = opaque;
    char errstr[128];
    cJSON *root = lt_json_parse(rkm->payload, rkm->len, 1 << 20, errstr, sizeof(errstr));
    const char *v;
    long long amt = 0;
    rec_ev_t *e;
    if (!root)
        return;
    if (!(v = lt_json_str(root, "integration_id")) || strcmp(v, rd->id))
        goto end;
    if (rd->n == rd->cap) {
        size_t cap = rd->cap ? rd->cap * 2 : 4096;
        rec_ev_t *evs = realloc(rd->evs, cap * sizeof(*evs));
        if (!evs)
            goto end;
        rd->evs = evs, rd->cap = cap;
    }
    e = &rd->evs[rd->n];
    memset(e, 0, sizeof(*e));
    lt_json_int(root, "amount_minor", &amt);
    e->amount = amt;
    e->seq = rd->n;
#define COPY(field, key) \
    snprintf(e->field, sizeof(e->field), "%s", (v = lt_json_str(root, key)) ? v : "")
    COPY(event_id, "event_id");
    COPY(type, "type");
    COPY(subtype, "subtype");
    COPY(local_date, "local_date");
    COPY(txn, "transaction_id");
    COPY(order, "order_id");
    COPY(coupon, "coupon_code");
#undef COPY
    {
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(root, "product_ids");
        int n = cJSON_GetArraySize(ids);
        const cJSON *one = n == 1 ? cJSON_GetArrayItem(ids, 0) : NULL;
        snprintf(e->product, sizeof(e->product), "%s",
                 n > 1                 ? "(several)"
                 : cJSON_IsString(one) ? one->valuestring
                                       : "(none)");
    }
    if (e->event_id[0] && strlen(e->local_date) == 10)
        rd->n++;
end:
    cJSON_Delete(root);
}

static int cmp_event_id(const void *a, const void *b)
{
    const rec_ev_t *x = a, *y = b;
    int c = strcmp(x->event_id, y->event_id);
    return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

/* Keeps the latest version of each event_id (read order = offset order per
 * partition, and an event_id always lands in one partition). */
static size_t latest_only(rec_ev_t *evs, size_t n)
{
    size_t out = 0;
    if (n < 2) /* no events yet: evs may be NULL, which qsort must not get */
        return n;
    qsort(evs, n, sizeof(*evs), cmp_event_id);
    for (size_t i = 0; i < n; i++) {
        if (out && !strcmp(evs[out - 1].event_id, evs[i].event_id))
            evs[out - 1] = evs[i];
        else
            evs[out++] = evs[i];
    }
    return out;
}

static rec_day_t *day_at(rec_day_t *days, size_t ndays, const char *first, const char *day)
{
    lt_datetime_t a, b;
    long long i;
    if (lt_date_parse_day(first, 10, &a) || lt_date_parse_day(day, strlen(day), &b))
        return NULL;
    i = lt_date_days_from_civil(b.year, b.month, b.day) -
        lt_date_days_from_civil(a.year, a.month, a.day);
    return i >= 0 && (size_t)i < ndays ? &days[i] : NULL;
}

static int cmp_txn(const void *a, const void *b)
{
    return strcmp((*(const rec_ev_t *const *)a)->txn, (*(const rec_ev_t *const *)b)->txn);
}

/* The local day of the payment with transaction id txn, or NULL. */
static const char *sale_day(rec_ev_t **pay, size_t npay, const char *txn)
{
    rec_ev_t key, *kp = &key;
    rec_ev_t **hit;
    snprintf(key.txn, sizeof(key.txn), "%s", txn);
    hit = bsearch(&kp, pay, npay, sizeof(*pay), cmp_txn);
    return hit ? (*hit)->local_date : NULL;
}

/* Tallies events into days, CRM-style and platform-style; appends the
 * chargebacks whose two days differ to `moved` (one line each). */
static void tally(rec_ev_t *evs, size_t n, rec_day_t *days, size_t ndays, const char *first,
                  cJSON *moved, long long *unmatched)
{
    rec_ev_t **pay = calloc(n ? n : 1, sizeof(*pay));
    size_t npay = 0;
    for (size_t i = 0; i < n && pay; i++)
        if (!strcmp(evs[i].type, "payment"))
            pay[npay++] = &evs[i];
    if (pay)
        qsort(pay, npay, sizeof(*pay), cmp_txn);
    for (size_t i = 0; i < n; i++) {
        rec_ev_t *e = &evs[i];
        rec_day_t *d = day_at(days, ndays, first, e->local_date), *sd;
        long long a = e->amount < 0 ? -e->amount : e->amount;
        int k = -1;
        if (!strcmp(e->type, "payment"))
            k = !strcmp(e->subtype, "rebill") ? K_REBILLS : K_SALES;
        else if (!strcmp(e->type, "refund"))
            k = K_REFUNDS;
        else if (!strcmp(e->type, "void"))
            k = K_VOIDS;
        if (k >= 0 && d)
            d->our_n[k]++, d->our_sum[k] += a;
        if (!strcmp(e->type, "chargeback_reversal") && d)
            d->reversal_n++, d->reversal_sum += a;
        if (strcmp(e->type, "chargeback"))
            continue;
        if (d)
            d->cb_happened_n++, d->cb_happened_sum += a;
        {
            const char *sday = pay ? sale_day(pay, npay, e->txn) : NULL;
            int reverted = 0;
            /* A chargeback later reverted is not in the CRM's current totals. */
            for (size_t j = 0; j < n; j++)
                if (!strcmp(evs[j].type, "chargeback_reversal") && !strcmp(evs[j].txn, e->txn))
                    reverted = 1;
            if (!sday) {
                (*unmatched)++;
                continue;
            }
            if (!reverted && (sd = day_at(days, ndays, first, sday)))
                sd->our_n[K_CHARGEBACKS]++, sd->our_sum[K_CHARGEBACKS] += a;
            if (strcmp(sday, e->local_date)) {
                char line[200];
                snprintf(line, sizeof(line),
                         "chargeback of transaction %s: sale %s, charged back %s%s", e->txn, sday,
                         e->local_date, reverted ? " (later reverted)" : "");
                cJSON_AddItemToArray(moved, cJSON_CreateString(line));
            }
        }
    }
    free(pay);
}

/* Fetches the CRM's daily summary into days. CTL_OK or CTL_FAIL. */
static int fetch_summary(const ctl_t *ctl, const lt_cred_policy_t *pol, const lt_integration_t *in,
                         const char *from, const char *to, rec_day_t *days, size_t ndays,
                         int exponent)
{
    lt_http_opts_t opts = {
        .connect_timeout_ms = 10000, .timeout_ms = 120000, .max_body = 64u << 20};
    char password[LT_CRM_PASSWORD_MAX + 1], url[600], start[11], end[11], errstr[512];
    lt_form_field_t f[6];
    lt_http_resp_t resp = {0};
    lt_http_t *http = NULL;
    lt_datetime_t dt;
    cJSON *root = NULL, *row;
    const cJSON *msg;
    ctl_crm_slots_t slots = {0};
    lt_err_t err;
    int rc = CTL_FAIL;

    if (lt_cred_password(pol, in, password, sizeof(password), errstr, sizeof(errstr)) != LT_OK) {
        fprintf(ctl->err, "ltvctl: %s\n", errstr);
        return CTL_FAIL;
    }
    lt_date_parse_day(from, 10, &dt);
    lt_date_fmt_crm(&dt, start, sizeof(start));
    lt_date_parse_day(to, 10, &dt);
    lt_date_fmt_crm(&dt, end, sizeof(end));
    f[0] = (lt_form_field_t){"loginId", in->api_username};
    f[1] = (lt_form_field_t){"password", password};
    f[2] = (lt_form_field_t){"reportType", "date"};
    f[3] = (lt_form_field_t){"dateRangeType", "txnDate"};
    f[4] = (lt_form_field_t){"startDate", start};
    f[5] = (lt_form_field_t){"endDate", end};
    snprintf(url, sizeof(url), "%.*s/transactions/summary/",
             (int)(strlen(in->base_url) - (in->base_url[strlen(in->base_url) - 1] == '/')),
             in->base_url);
    if (!(http = lt_http_new(&opts)))
        goto end;
    ctl_crm_slots_open(ctl, in, &slots);
    if (ctl_crm_slot_acquire(&slots, in, ctl->err) != 0)
        goto end;
    err = lt_http_post_form(http, url, f, 6, &resp, errstr, sizeof(errstr));
    ctl_crm_slot_release(&slots);
    if (err != LT_OK) {
        fprintf(ctl->err, "ltvctl: CRM summary: %s\n", errstr);
        goto end;
    }
    if (resp.status != 200 ||
        !(root = lt_json_parse(resp.body, resp.len, opts.max_body, errstr, sizeof(errstr)))) {
        fprintf(ctl->err, "ltvctl: CRM summary: HTTP %ld, not a JSON answer\n", resp.status);
        goto end;
    }
    msg = cJSON_GetObjectItemCaseSensitive(root, "message");
    if (!cJSON_IsArray(msg)) {
        const char *text = cJSON_IsString(msg) ? msg->valuestring : "unexpected answer";
        if (lt_crm_classify_message(text, strlen(text)) == LT_ERR_EMPTY)
            rc = CTL_OK; /* no activity in the range */
        else
            fprintf(ctl->err, "ltvctl: CRM summary: %.200s\n", text);
        goto end;
    }
    cJSON_ArrayForEach(row, msg)
    {
        const char *date = lt_json_str(row, "date");
        rec_day_t *d = date ? day_at(days, ndays, from, date) : NULL;
        if (!d)
            continue;
        d->crm_seen = 1;
        for (int k = 0; k < K_NKINDS; k++) {
            const char *t = lt_json_str(row, crm_total[k]);
            int64_t minor = 0;
            lt_json_int(row, crm_count[k], &d->crm_n[k]);
            if (t &&
                lt_money_parse(t, strlen(t), exponent, &minor, errstr, sizeof(errstr)) == LT_OK)
                d->crm_sum[k] = minor < 0 ? -minor : minor;
        }
    }
    rc = CTL_OK;
end:
    ctl_crm_slots_close(&slots);
    lt_cred_wipe(password, sizeof(password));
    memset(f, 0, sizeof(f));
    cJSON_Delete(root);
    lt_http_resp_release(&resp);
    lt_http_destroy(http);
    return rc;
}

static void money(long long minor, int exponent, char *buf, size_t len)
{
    lt_money_format(minor, exponent, buf, len);
}

/* ---- net revenue by product and by coupon ---- */

typedef struct {
    const char *key;
    long long net, payments;
} rev_row_t;

static int cmp_order(const void *a, const void *b)
{
    return strcmp((*(const rec_ev_t *const *)a)->order, (*(const rec_ev_t *const *)b)->order);
}

static int cmp_rev_key(const void *a, const void *b)
{
    return strcmp(((const rev_row_t *)a)->key, ((const rev_row_t *)b)->key);
}

static int is_money_type(const char *t)
{
    return !strcmp(t, "payment") || !strcmp(t, "refund") || !strcmp(t, "void") ||
           !strcmp(t, "chargeback") || !strcmp(t, "chargeback_reversal");
}

/* The coupon of e's order: its order event's, "(none)", or "(order not synced)". */
static const char *coupon_of(rec_ev_t **orders, size_t norders, const rec_ev_t *e)
{
    rec_ev_t key, *kp = &key, **hit;
    snprintf(key.order, sizeof(key.order), "%s", e->order);
    hit = e->order[0] && orders ? bsearch(&kp, orders, norders, sizeof(*orders), cmp_order) : NULL;
    if (!hit)
        return "(order not synced)";
    return (*hit)->coupon[0] ? (*hit)->coupon : "(none)";
}

/* Sums the money events of [from, to] by key (by_coupon: the order's coupon,
 * else the product); rows sorted by key, *nrows set. NULL when out of memory. */
static rev_row_t *revenue_by(rec_ev_t *evs, size_t n, const char *from, const char *to,
                             int by_coupon, size_t *nrows)
{
    rec_ev_t **orders = calloc(n ? n : 1, sizeof(*orders));
    rev_row_t *rows = calloc(n ? n : 1, sizeof(*rows));
    size_t norders = 0, m = 0, out = 0;
    if (!orders || !rows) {
        free(orders);
        free(rows);
        return NULL;
    }
    for (size_t i = 0; by_coupon && i < n; i++) /* the order index serves coupons only */
        if (!strcmp(evs[i].type, "order"))
            orders[norders++] = &evs[i];
    qsort(orders, norders, sizeof(*orders), cmp_order);
    for (size_t i = 0; i < n; i++) {
        const rec_ev_t *e = &evs[i];
        if (!is_money_type(e->type) || strcmp(e->local_date, from) < 0 ||
            strcmp(e->local_date, to) > 0)
            continue;
        rows[m].key = by_coupon ? coupon_of(orders, norders, e) : e->product;
        rows[m].net = e->amount;
        rows[m++].payments = !strcmp(e->type, "payment");
    }
    qsort(rows, m, sizeof(*rows), cmp_rev_key);
    for (size_t i = 0; i < m; i++) {
        if (out && !strcmp(rows[out - 1].key, rows[i].key)) {
            rows[out - 1].net += rows[i].net;
            rows[out - 1].payments += rows[i].payments;
        } else {
            rows[out++] = rows[i];
        }
    }
    free(orders);
    *nrows = out;
    return rows;
}

/* Adds the revenue lines of one dimension to out as `name`: [{key, payments,
 * net}] sorted by key. */
static int revenue_json(cJSON *out, const char *name, const char *key, rec_ev_t *evs, size_t n,
                        const char *from, const char *to, int by_coupon, int exponent)
{
    size_t nrows = 0;
    rev_row_t *rows = revenue_by(evs, n, from, to, by_coupon, &nrows);
    cJSON *arr = cJSON_AddArrayToObject(out, name);
    char buf[32];
    if (!rows || !arr) {
        free(rows);
        return CTL_FAIL;
    }
    for (size_t i = 0; i < nrows; i++) {
        cJSON *o = cJSON_CreateObject();
        money(rows[i].net, exponent, buf, sizeof(buf));
        cJSON_AddStringToObject(o, key, rows[i].key);
        cJSON_AddNumberToObject(o, "payments", (double)rows[i].payments);
        cJSON_AddStringToObject(o, "net", buf);
        cJSON_AddItemToArray(arr, o);
    }
    free(rows);
    return CTL_OK;
}

static void revenue_print(const ctl_t *ctl, const cJSON *out, const char *name, const char *key,
                          const char *label, const char *from, const char *to)
{
    const cJSON *o;
    fprintf(ctl->out,
            "\nNet revenue by %s, %s..%s (payments - refunds - voids - chargebacks"
            " + reversals, on the days they happened):\n  %-20s %9s %13s\n",
            label, from, to, label, "PAYMENTS", "NET");
    cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(out, name)) fprintf(
        ctl->out, "  %-20s %9.0f %13s\n", lt_json_str(o, key),
        cJSON_GetObjectItemCaseSensitive(o, "payments")->valuedouble, lt_json_str(o, "net"));
}

int ctl_reconcile(ctl_t *ctl)
{
    lt_integration_t in;
    rec_read_t rd = {0};
    rec_day_t *days = NULL;
    cJSON *out = cJSON_CreateObject(), *jdays, *moved;
    const char *id = ctl_arg(ctl, 0), *from = ctl_opt(ctl, "--from"), *to = ctl_opt(ctl, "--to");
    char errstr[512];
    lt_datetime_t a, b;
    long long unmatched = 0, unexplained = 0, nd;
    int exponent, rc;

    if (!id || !from || !to || lt_date_parse_day(from, strlen(from), &a) ||
        lt_date_parse_day(to, strlen(to), &b) || strcmp(from, to) > 0) {
        fprintf(ctl->err, "ltvctl: reconcile ID --from YYYY-MM-DD --to YYYY-MM-DD [--json]\n");
        cJSON_Delete(out);
        return CTL_USAGE;
    }
    if ((rc = ctl_find_integration(ctl, id, &in)) != CTL_OK)
        goto end;
    rc = CTL_FAIL;
    exponent = lt_money_exponent(in.currency, strlen(in.currency));
    nd = lt_date_days_from_civil(b.year, b.month, b.day) -
         lt_date_days_from_civil(a.year, a.month, a.day) + 1;
    if (exponent < 0 || nd > 3660) {
        fprintf(ctl->err, "ltvctl: reconcile takes at most 3660 days of a known currency (%s)\n",
                in.currency);
        goto end;
    }
    if (!(days = calloc((size_t)nd, sizeof(*days))))
        goto end;
    for (long long i = 0; i < nd; i++)
        lt_date_add_days(from, 10, (int)i, days[i].day);
    rd.id = in.id;
    if (lt_kafka_read_all(ctl->cfg, lt_config_str(ctl->cfg, "TOPIC_EVENTS"), on_event, &rd, 60000,
                          errstr, sizeof(errstr)) != LT_OK) {
        fprintf(ctl->err, "ltvctl: reading events: %s\n", errstr);
        goto end;
    }
    rd.n = latest_only(rd.evs, rd.n);
    moved = cJSON_AddArrayToObject(out, "moved_chargebacks");
    tally(rd.evs, rd.n, days, (size_t)nd, from, moved, &unmatched);
    lt_cred_policy_t pol;
    lt_cred_policy_init(&pol, ctl->cfg);
    if (fetch_summary(ctl, &pol, &in, from, to, days, (size_t)nd, exponent) != CTL_OK)
        goto end;
    jdays = cJSON_AddArrayToObject(out, "days");
    if (!ctl->json)
        fprintf(ctl->out, "%-10s %-11s %9s %9s %9s %9s %9s  %13s %13s  %s\n", "DAY", "", "SALES",
                "REBILLS", "REFUNDS", "VOIDS", "CB", "REF+CB (CRM)", "REF+CB (LTV)", "CHECK");
    for (long long i = 0; i < nd; i++) {
        rec_day_t *d = &days[i];
        cJSON *jd = cJSON_CreateObject();
        long long crm_view = d->crm_sum[K_REFUNDS] + d->crm_sum[K_CHARGEBACKS];
        long long ltv_view = d->our_sum[K_REFUNDS] + d->cb_happened_sum;
        char cbuf[K_NKINDS][32], obuf[K_NKINDS][32], v1[32], v2[32];
        int ok = 1, any = 0;
        for (int k = 0; k < K_NKINDS; k++) {
            ok &= d->crm_n[k] == d->our_n[k] && d->crm_sum[k] == d->our_sum[k];
            any |= d->crm_n[k] || d->our_n[k];
            money(d->crm_sum[k], exponent, cbuf[k], sizeof(cbuf[k]));
            money(d->our_sum[k], exponent, obuf[k], sizeof(obuf[k]));
            cJSON *o = cJSON_AddObjectToObject(jd, kind_names[k]);
            cJSON_AddNumberToObject(o, "crm_count", (double)d->crm_n[k]);
            cJSON_AddStringToObject(o, "crm_total", cbuf[k]);
            cJSON_AddNumberToObject(o, "ltvsync_count", (double)d->our_n[k]);
            cJSON_AddStringToObject(o, "ltvsync_total", obuf[k]);
        }
        any |= d->cb_happened_n != 0;
        unexplained += !ok;
        money(crm_view, exponent, v1, sizeof(v1));
        money(ltv_view, exponent, v2, sizeof(v2));
        cJSON_AddStringToObject(jd, "day", d->day);
        cJSON_AddStringToObject(jd, "refunds_plus_chargebacks_crm", v1);
        cJSON_AddStringToObject(jd, "refunds_plus_chargebacks_ltvsync", v2);
        cJSON_AddNumberToObject(jd, "chargebacks_happened", (double)d->cb_happened_n);
        cJSON_AddBoolToObject(jd, "matches", ok);
        cJSON_AddItemToArray(jdays, jd);
        if (ctl->json || !any)
            continue;
        fprintf(ctl->out, "%-10s %-11s %9s %9s %9s %9s %9s  %13s %13s  %s\n", d->day, "CRM",
                cbuf[0], cbuf[1], cbuf[2], cbuf[3], cbuf[4], v1, v2,
                !ok                    ? "UNEXPLAINED"
                : crm_view != ltv_view ? "chargeback dating"
                                       : "ok");
        if (!ok)
            fprintf(ctl->out, "%-10s %-11s %9s %9s %9s %9s %9s\n", "", "ltvsync", obuf[0], obuf[1],
                    obuf[2], obuf[3], obuf[4]);
    }
    cJSON_AddNumberToObject(out, "unexplained_days", (double)unexplained);
    cJSON_AddNumberToObject(out, "chargebacks_without_sale", (double)unmatched);
    if (revenue_json(out, "by_product", "product_id", rd.evs, rd.n, from, to, 0, exponent) ||
        revenue_json(out, "by_coupon", "coupon_code", rd.evs, rd.n, from, to, 1, exponent)) {
        fprintf(ctl->err, "ltvctl: out of memory\n");
        goto end;
    }
    if (ctl->json) {
        char *s = lt_json_print(out);
        fprintf(ctl->out, "%s\n", s ? s : "null");
        free(s);
    } else {
        const cJSON *line;
        fprintf(ctl->out,
                "\nREF+CB (CRM): refunds on their day + chargebacks on the original sale's day.\n"
                "REF+CB (LTV): refunds + chargebacks on the day they happened.\n"
                "Differences between the two, explained (%d):\n",
                cJSON_GetArraySize(moved));
        cJSON_ArrayForEach(line, moved) fprintf(ctl->out, "  %s\n", line->valuestring);
        fprintf(
            ctl->out,
            "%lld day(s) with unexplained differences; %lld chargeback(s) whose sale is outside "
            "the events read\n",
            unexplained, unmatched);
        revenue_print(ctl, out, "by_product", "product_id", "product", from, to);
        revenue_print(ctl, out, "by_coupon", "coupon_code", "coupon", from, to);
    }
    /* exit 1 for a script, but the report is complete: a finding, not a failure */
    ctl->res->finding = unexplained > 0;
    rc = unexplained ? CTL_FAIL : CTL_OK;
end:
    free(days);
    free(rd.evs);
    cJSON_Delete(out);
    return rc;
}
