/* The synthetic account: customers, orders, transactions, purchases and
 * campaigns, generated in memory from --seed. Every event is dated at or
 * before the simulator's clock (a->now). Customers 0..NSCEN-1 each carry one
 * deliberate edge case; the rest follow a seeded random mix. */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const cs_txn_type_names[] = {"SALE", "AUTHORIZE", "CAPTURE", "REFUND", "VOID"};
const char *const cs_resp_names[] = {"SUCCESS", "SOFT_DECLINE", "HARD_DECLINE"};
const char *const cs_order_status_names[] = {"COMPLETE", "PARTIAL", "DECLINED", "REFUNDED",
                                             "CANCELLED"};
const char *const cs_purchase_status_names[] = {
    "ACTIVE", "TRIAL", "PAUSED", "CANCELLED", "COMPLETE", "RECYCLE_BILLING", "RECYCLE_FAILED"};
const char *const cs_order_type_names[] = {"NEW_SALE", "UPSALE", "RECURRING"};

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void cs_rng_seed(cs_rng_t *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t cs_rng_next(cs_rng_t *r)
{
    uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

uint64_t cs_rng_below(cs_rng_t *r, uint64_t n)
{
    return cs_rng_next(r) % n;
}
double cs_rng_unit(cs_rng_t *r)
{
    return (double)(cs_rng_next(r) >> 11) * 0x1.0p-53;
}

/* Catalogue; prices in minor units for 2-, 0- and 3-decimal currencies. */
typedef struct {
    int campaign, id, interval;
    const char *name;
    int64_t p[3], ship[3];
} prod_def_t;

static const prod_def_t PRODUCTS[] = {
    {0, 101, 30, "Glow Serum 30ml", {4995, 4980, 15490}, {495, 480, 1500}},
    {0, 102, 0, "Glow Eye Cream", {2999, 2980, 9250}, {0, 0, 0}},
    {1, 201, 30, "Keto Boost 60ct", {3999, 3980, 12300}, {495, 480, 1500}},
    {1, 202, 0, "Keto Shaker", {1499, 1480, 4600}, {0, 0, 0}},
    {2, 301, 0, "Sample Pack", {1, 1, 1}, {0, 0, 0}},
    {2, 302, 30, "Sampler Club", {1999, 1980, 6150}, {0, 0, 0}},
    {3, 401, 0, "Lifetime Licence", {999999, 999999, 3099999}, {0, 0, 0}},
};
const int cs_product_ids[] = {101, 102, 201, 202, 301, 302, 401};
const char *const cs_product_names[] = {"Glow Serum 30ml", "Glow Eye Cream", "Keto Boost 60ct",
                                        "Keto Shaker",     "Sample Pack",    "Sampler Club",
                                        "Lifetime Licence"};
static const char *const CAMPAIGNS[] = {"Glow Serum Trial", "Keto Boost", "Penny Sampler",
                                        "Enterprise Lifetime"};
static const char *const FIRSTS[] = {"James", "Mary",   "Olivia", "Liam",  "José", "Renée",
                                     "Noah",  "Emma",   "Chloé",  "Björn", "Aiko", "Priya",
                                     "Omar",  "Fatima", "Connor", "Ava"};
static const char *const LASTS[] = {"Smith",  "Johnson",  "Müller", "O'Brien", "García",
                                    "Nguyễn", "Kowalski", "Rossi",  "Dubois",  "Tanaka",
                                    "Patel",  "Haddad",   "Brown",  "Silva"};
static const char *const CITIES[][2] = {{"Austin", "TX"}, {"Denver", "CO"},  {"Miami", "FL"},
                                        {"Boston", "MA"}, {"Seattle", "WA"}, {"Reno", "NV"}};

/* What happens to one customer. */
typedef struct {
    int partial, partial_empty, decline, hard, authcap, upsell, product, refund;
    int refund_half, refund_next_day, voided, chargeback, cb_date_only, revert;
    int ach, force_recycle, at_gap, at_fold, at_midnight, at_last_second;
    const char *first, *last;
} plan_t;

enum { NSCEN = 21 };

typedef struct {
    cs_account_t *a;
    const cs_opts_t *o;
    int scheme; /* 0: 2 decimals, 1: 0, 2: 3 */
    cs_ls_t gap, fold;
    cs_rng_t r;
} gen_t;

static void plan_scenario(plan_t *p, int i)
{
    memset(p, 0, sizeof(*p));
    p->product = 0; /* recurring Glow Serum unless changed */
    switch (i) {
    case 1: p->partial = p->partial_empty = 1; break;
    case 2: p->partial = 1; break;
    case 3: p->decline = p->hard = 1; break;
    case 4: p->authcap = 1; break;
    case 5: p->upsell = 1; break;
    case 6: p->at_last_second = p->refund = p->refund_next_day = 1; break;
    case 7: p->voided = 1; break;
    case 8: p->chargeback = p->cb_date_only = 1; break;
    case 9: p->chargeback = p->revert = 1; break;
    case 10: p->at_gap = 1; break;
    case 11: p->at_fold = 1; break;
    case 12: p->at_midnight = 1; break;
    case 13: p->product = 4; break; /* 0.01 */
    case 14: p->product = 6; break; /* 9999.99 */
    case 15: p->force_recycle = 1; break;
    case 16: p->decline = 1; break;
    case 17:
        p->refund = p->refund_half = 1;
        p->product = 2;
        break;
    case 18: p->ach = 1; break;
    case 19:
        p->first = "Zoë";
        p->last = "Ångström";
        break;
    case 20:
        p->first = "雷";
        p->last = "李";
        p->upsell = 1;
        break;
    default: break;
    }
}

static void plan_random(plan_t *p, cs_rng_t *r)
{
    static const int mains[] = {0, 0, 2, 2, 5, 1, 3, 4};
    memset(p, 0, sizeof(*p));
    double u = cs_rng_unit(r);
    p->product = mains[cs_rng_below(r, 8)];
    if (u < 0.10) {
        p->partial = 1;
        p->partial_empty = cs_rng_below(r, 2) == 0;
    } else if (u < 0.15) {
        p->decline = 1;
        p->hard = cs_rng_below(r, 5) < 3;
    } else {
        p->authcap = cs_rng_unit(r) < 0.10;
        p->upsell = cs_rng_unit(r) < 0.25;
        p->ach = cs_rng_unit(r) < 0.15;
        double e = cs_rng_unit(r);
        if (e < 0.06) {
            p->refund = 1;
            p->refund_half = cs_rng_below(r, 3) == 0;
        } else if (e < 0.08) {
            p->voided = 1;
        } else if (e < 0.105) {
            p->chargeback = 1;
            p->cb_date_only = cs_rng_below(r, 2) == 0;
        }
    }
    if (cs_rng_below(r, 40) == 0)
        p->first = "Zoë", p->last = "Ångström";
}

static const prod_def_t *product_def(int k)
{
    return &PRODUCTS[k];
}

static int64_t price_of(const gen_t *g, int k)
{
    return product_def(k)->p[g->scheme];
}
static int64_t ship_of(const gen_t *g, int k)
{
    return product_def(k)->ship[g->scheme];
}

static void *grow(void *arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return arr;
    size_t ncap = *cap ? *cap * 2 : 256;
    while (ncap < need)
        ncap *= 2;
    void *p = realloc(arr, ncap * elem);
    if (!p)
        return NULL;
    memset((char *)p + *cap * elem, 0, (ncap - *cap) * elem);
    *cap = ncap;
    return p;
}

/* Gives back the capacity grow() left unused (a small account would keep
 * 256 of each); a later cs_txn_add grows again. */
static void *shrink(void *arr, size_t *cap, size_t n, size_t elem)
{
    void *p = n ? realloc(arr, n * elem) : NULL;
    if (!p)
        return arr;
    *cap = n;
    return p;
}

int cs_txn_add(cs_account_t *a, const cs_txn_t *t)
{
    cs_txn_t *txns = grow(a->txns, &a->captxns, a->ntxns + 1, sizeof(*txns));
    if (!txns)
        return -1;
    a->txns = txns;
    int i = (int)a->ntxns++;
    txns[i] = *t;
    if (t->purchase >= 0) {
        cs_purchase_t *p = &a->purchases[t->purchase];
        if (p->ntxns == p->captxns) {
            int ncap = p->captxns ? p->captxns * 2 : 8;
            int *n = realloc(p->txns, (size_t)ncap * sizeof(int));
            if (!n)
                return -1;
            p->txns = n, p->captxns = ncap;
        }
        p->txns[p->ntxns++] = i;
    }
    return i;
}

static cs_ls_t day_end(cs_ls_t t)
{
    return t / CS_DAY * CS_DAY + CS_DAY - 1;
}
static cs_ls_t min_ls(cs_ls_t x, cs_ls_t y)
{
    return x < y ? x : y;
}
static cs_ls_t max_ls(cs_ls_t x, cs_ls_t y)
{
    return x > y ? x : y;
}

static void fill_customer(gen_t *g, cs_customer_t *c, int i, const plan_t *p, cs_ls_t t)
{
    cs_rng_t *r = &g->r;
    const char *const *city = CITIES[cs_rng_below(r, 6)];
    c->id = 30001 + i;
    c->created = c->updated = t;
    snprintf(c->first, sizeof(c->first), "%s", p->first ? p->first : FIRSTS[cs_rng_below(r, 16)]);
    snprintf(c->last, sizeof(c->last), "%s", p->last ? p->last : LASTS[cs_rng_below(r, 14)]);
    snprintf(c->email, sizeof(c->email), "customer%d@example.com", c->id);
    snprintf(c->phone, sizeof(c->phone), "555%07d", (int)cs_rng_below(r, 10000000));
    snprintf(c->address1, sizeof(c->address1), "%d Elm Street", 1 + (int)cs_rng_below(r, 999));
    snprintf(c->city, sizeof(c->city), "%s", city[0]);
    snprintf(c->state, sizeof(c->state), "%s", city[1]);
    snprintf(c->postal, sizeof(c->postal), "%05u",
             10000u + (unsigned)cs_rng_below(r, 89999) % 90000u);
    snprintf(c->country, sizeof(c->country), "US");
    c->card_type = (int)cs_rng_below(r, 3);
    snprintf(c->card_bin, sizeof(c->card_bin), "%s",
             c->card_type == 0   ? "411111"
             : c->card_type == 1 ? "545454"
                                 : "371449");
    snprintf(c->card_last4, sizeof(c->card_last4), "%04d", (int)cs_rng_below(r, 10000));
    snprintf(c->ecom_pw, sizeof(c->ecom_pw), "SECRET-PW-%d-%08llx", c->id,
             (unsigned long long)(cs_rng_next(r) & 0xffffffffULL));
    c->ach = p->ach;
    if (p->ach) {
        snprintf(c->ach_acct, sizeof(c->ach_acct), "SECRET-ACH-%d-%08llx", c->id,
                 (unsigned long long)(cs_rng_next(r) & 0xffffffffULL));
        snprintf(c->ach_rtn, sizeof(c->ach_rtn), "SECRET-RTN-%d-%08llx", c->id,
                 (unsigned long long)(cs_rng_next(r) & 0xffffffffULL));
    }
}

static int new_order(gen_t *g, int ci, int campaign, cs_ls_t t)
{
    cs_account_t *a = g->a;
    cs_order_t *orders = grow(a->orders, &a->caporders, a->norders + 1, sizeof(*orders));
    if (!orders)
        return -1;
    a->orders = orders;
    int oi = (int)a->norders++;
    cs_order_t *o = &orders[oi];
    uint64_t x = g->o->seed ^ (0xD1B54A32D192ED03ULL * (uint64_t)(oi + 1));
    snprintf(o->id, sizeof(o->id), "%010llX", (unsigned long long)(splitmix(&x) & 0xFFFFFFFFFFULL));
    o->customer = ci, o->campaign = campaign, o->created = o->updated = t;
    o->aff = (int)cs_rng_below(&g->r, 4);
    if (cs_rng_below(&g->r, 8) == 0)
        snprintf(o->coupon, sizeof(o->coupon), "SAVE%d", 5 * (1 + (int)cs_rng_below(&g->r, 4)));
    return oi;
}

static int new_purchase(gen_t *g, int oi, int k, cs_ls_t t)
{
    cs_account_t *a = g->a;
    cs_purchase_t *ps = grow(a->purchases, &a->cappurchases, a->npurchases + 1, sizeof(*ps));
    if (!ps)
        return -1;
    a->purchases = ps;
    int pi = (int)a->npurchases++;
    cs_purchase_t *p = &ps[pi];
    p->id = 7001 + pi, p->order = oi, p->customer = a->orders[oi].customer;
    p->campaign = product_def(k)->campaign, p->product = k, p->status = CS_P_ACTIVE;
    p->cycle = 1, p->interval = product_def(k)->interval, p->price = price_of(g, k);
    p->created = p->updated = t, p->next_bill_day = -1;
    return pi;
}

/* A transaction on order oi; returns its index or -1. */
static int txn(gen_t *g, int oi, int pi, int k, int type, int resp, int otype, int cycle, cs_ls_t t,
               int64_t amount)
{
    cs_txn_t x;
    memset(&x, 0, sizeof(x));
    x.parent = -1, x.order = oi, x.purchase = pi, x.product = k;
    x.customer = g->a->orders[oi].customer, x.campaign = g->a->orders[oi].campaign;
    x.type = (uint8_t)type, x.resp = (uint8_t)resp, x.otype = (uint8_t)otype;
    x.cycle = cycle, x.created = x.updated = t, x.amount = amount;
    x.ach = (uint8_t)g->a->customers[x.customer].ach;
    x.merchant_id = 1 + (int)cs_rng_below(&g->r, 3);
    x.declined_text = (uint8_t)cs_rng_below(&g->r, 3);
    int i = cs_txn_add(g->a, &x);
    if (i >= 0 && pi >= 0 && resp == CS_SUCCESS && (type == CS_SALE || type == CS_CAPTURE)) {
        cs_purchase_t *p = &g->a->purchases[pi];
        p->billed += amount;
        p->updated = max_ls(p->updated, t);
    }
    return i;
}

/* Rebills every interval until stop (exclusive) or now; recycles declines. */
static int rebills(gen_t *g, const plan_t *pl, int oi, int pi, cs_ls_t t0, cs_ls_t stop)
{
    cs_account_t *a = g->a;
    cs_rng_t *r = &g->r;
    cs_purchase_t *p = &a->purchases[pi];
    int interval = p->interval, k = p->product;
    for (int n = 1;; n++) {
        cs_ls_t due = t0 + (cs_ls_t)n * interval * CS_DAY;
        a->purchases[pi].next_bill_day = due / CS_DAY;
        if (due > a->now || due >= stop)
            return 0;
        if (cs_rng_unit(r) < 0.06) {
            p = &a->purchases[pi];
            p->status = CS_P_CANCELLED, p->next_bill_day = -1;
            p->updated = max_ls(p->created, due - 3 * CS_DAY);
            return 0;
        }
        int ok = !(pl->force_recycle && n == 1) && cs_rng_unit(r) < 0.85;
        if (txn(g, oi, pi, k, CS_SALE, ok ? CS_SUCCESS : CS_SOFT_DECLINE, CS_OT_RECURRING, n + 1,
                due, price_of(g, k)) < 0)
            return -1;
        for (int rc = 1; !ok && rc <= 2; rc++) {
            cs_ls_t rt = due + (cs_ls_t)rc * 3 * CS_DAY;
            if (rt > a->now || rt >= stop) {
                a->purchases[pi].status = CS_P_RECYCLE_BILLING;
                return 0;
            }
            ok = (pl->force_recycle && n == 1) || cs_rng_below(r, 2) == 0;
            int resp = ok ? CS_SUCCESS : rc == 2 ? CS_HARD_DECLINE : CS_SOFT_DECLINE;
            int ti = txn(g, oi, pi, k, CS_SALE, resp, CS_OT_RECURRING, n + 1, rt, price_of(g, k));
            if (ti < 0)
                return -1;
            a->txns[ti].recycle = rc;
        }
        p = &a->purchases[pi];
        if (!ok) {
            p->status = CS_P_RECYCLE_FAILED, p->next_bill_day = -1;
            return 0;
        }
        p->cycle = n + 1;
    }
}

static void apply_refund(gen_t *g, const plan_t *pl, int si)
{
    cs_account_t *a = g->a;
    cs_txn_t s = a->txns[si];
    cs_ls_t rt = pl->refund_next_day ? day_end(s.created) + 31
                                     : s.created + 3600 + (cs_ls_t)cs_rng_below(&g->r, 10 * CS_DAY);
    if (rt > a->now)
        return;
    int64_t amt = pl->refund_half ? s.amount / 2 : s.amount;
    int ri =
        txn(g, s.order, s.purchase, s.product, CS_REFUND, CS_SUCCESS, s.otype, s.cycle, rt, amt);
    if (ri < 0)
        return;
    a->txns[ri].parent = si;
    a->txns[ri].refund_reason = (uint8_t)(1 + cs_rng_below(&g->r, 3));
    a->txns[si].updated = rt;
    cs_order_t *o = &a->orders[s.order];
    o->refunded += amt, o->updated = max_ls(o->updated, rt);
    if (o->refunded >= o->total)
        o->status = CS_O_REFUNDED;
    if (s.purchase >= 0) {
        cs_purchase_t *p = &a->purchases[s.purchase];
        p->refunded += amt, p->updated = max_ls(p->updated, rt);
    }
}

static void apply_chargeback(gen_t *g, const plan_t *pl, int si, cs_ls_t cbt)
{
    cs_account_t *a = g->a;
    cs_txn_t *s = &a->txns[si];
    s->cb = s->cb_has = 1;
    s->cb_amount = s->amount;
    s->cb_date_only = (uint8_t)pl->cb_date_only;
    s->cb_date = pl->cb_date_only ? cbt / CS_DAY * CS_DAY : cbt;
    s->cb_reason = (uint8_t)cs_rng_below(&g->r, 4);
    s->updated = cbt;
    if (!pl->revert)
        return;
    cs_ls_t rv = cbt + (7 + (cs_ls_t)cs_rng_below(&g->r, 8)) * CS_DAY;
    if (rv > a->now)
        rv = a->now - cbt > 7200 ? cbt + (a->now - cbt) / 2 : -1;
    if (rv > 0)
        s->cb = 0, s->updated = rv;
}

/* Initial sale (or authorize + capture) and upsell; returns the sale index. */
static int initial(gen_t *g, const plan_t *pl, int oi, int pi, cs_ls_t t)
{
    cs_account_t *a = g->a;
    int k = pl->product, si;
    int64_t amt = price_of(g, k) + ship_of(g, k);
    if (pl->authcap) {
        int ai = txn(g, oi, pi, k, CS_AUTHORIZE, CS_SUCCESS, CS_OT_NEW_SALE, 1, t, amt);
        cs_ls_t ct = min_ls(t + 3600 + (cs_ls_t)cs_rng_below(&g->r, 5 * 3600), a->now);
        si = ai < 0 ? -1 : txn(g, oi, pi, k, CS_CAPTURE, CS_SUCCESS, CS_OT_NEW_SALE, 1, ct, amt);
        if (si >= 0)
            a->txns[si].parent = ai;
    } else {
        si = txn(g, oi, pi, k, CS_SALE, CS_SUCCESS, CS_OT_NEW_SALE, 1, t, amt);
    }
    cs_order_t *o = &a->orders[oi];
    o->items[0] = (cs_item_t){o->campaign, k, pi, price_of(g, k), ship_of(g, k)};
    o->nitems = 1, o->total = amt, o->price = price_of(g, k), o->shipping = ship_of(g, k);
    if (si >= 0 && pl->upsell) {
        int u = k == 4 || k == 5 ? 4 : k <= 1 ? 1 : 3; /* the campaign's one-off product */
        if (product_def(k)->campaign == 3)
            u = 6;
        if (u == k) /* one product per items key: no upsell of the same product */
            return si;
        cs_ls_t ut = min_ls(min_ls(t + 60 + (cs_ls_t)cs_rng_below(&g->r, 900), day_end(t)), a->now);
        if (txn(g, oi, -1, u, CS_SALE, CS_SUCCESS, CS_OT_UPSALE, 1, ut, price_of(g, u)) < 0)
            return -1;
        o = &a->orders[oi];
        o->items[o->nitems++] = (cs_item_t){o->campaign, u, -1, price_of(g, u), 0};
        o->total += price_of(g, u), o->price += price_of(g, u), o->updated = ut;
    }
    return si;
}

static cs_ls_t acquisition(gen_t *g, const plan_t *pl, int i)
{
    const cs_opts_t *o = g->o;
    int64_t day = o->start_day + (int64_t)i * o->days / o->customers;
    cs_ls_t t = day * CS_DAY + (cs_ls_t)cs_rng_below(&g->r, CS_DAY);
    if (pl->at_gap && g->gap >= 0)
        t = g->gap;
    if (pl->at_fold && g->fold >= 0)
        t = g->fold;
    if (pl->at_midnight)
        t = day * CS_DAY;
    if (pl->at_last_second)
        t = day * CS_DAY + CS_DAY - 1;
    return t;
}

static int gen_customer(gen_t *g, int i)
{
    cs_account_t *a = g->a;
    plan_t pl;
    cs_rng_seed(&g->r, g->o->seed ^ (0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1)));
    if (i < NSCEN)
        plan_scenario(&pl, i);
    else
        plan_random(&pl, &g->r);
    cs_ls_t t = acquisition(g, &pl, i);
    fill_customer(g, &a->customers[i], i, &pl, t);
    int k = pl.product;
    int oi = new_order(g, i, product_def(k)->campaign, t);
    if (oi < 0)
        return -1;
    cs_order_t *o = &a->orders[oi];
    if (pl.partial) {
        o->status = CS_O_PARTIAL;
        o->updated = min_ls(t + 60 + (cs_ls_t)cs_rng_below(&g->r, 600), a->now);
        if (!pl.partial_empty) {
            o->items[0] = (cs_item_t){o->campaign, k, -1, price_of(g, k), ship_of(g, k)};
            o->nitems = 1, o->price = price_of(g, k), o->shipping = ship_of(g, k);
            o->total = o->price + o->shipping;
        }
        return 0;
    }
    if (pl.decline) {
        o->status = CS_O_DECLINED, o->price = price_of(g, k), o->shipping = ship_of(g, k);
        o->total = o->price + o->shipping;
        o->items[0] = (cs_item_t){o->campaign, k, -1, price_of(g, k), ship_of(g, k)};
        o->nitems = 1;
        return txn(g, oi, -1, k, CS_SALE, pl.hard ? CS_HARD_DECLINE : CS_SOFT_DECLINE,
                   CS_OT_NEW_SALE, 1, t, o->total) < 0
                   ? -1
                   : 0;
    }
    int pi = product_def(k)->interval ? new_purchase(g, oi, k, t) : -1;
    int si = initial(g, &pl, oi, pi, t);
    if (si < 0)
        return -1;
    cs_ls_t stop = a->now + 1, sale_t = a->txns[si].created;
    if (pl.voided) {
        cs_ls_t vt = min_ls(
            min_ls(sale_t + 600 + (cs_ls_t)cs_rng_below(&g->r, 2400), day_end(sale_t)), a->now);
        int vi = txn(g, oi, pi, k, CS_VOID, CS_SUCCESS, CS_OT_NEW_SALE, 1, vt, a->txns[si].amount);
        if (vi < 0)
            return -1;
        a->txns[vi].parent = si, a->txns[si].updated = vt;
        o = &a->orders[oi];
        o->status = CS_O_CANCELLED, o->updated = max_ls(o->updated, vt);
        if (pi >= 0) {
            a->purchases[pi].status = CS_P_CANCELLED, a->purchases[pi].updated = vt;
            a->purchases[pi].billed -= a->txns[si].amount;
        }
        return 0;
    }
    cs_ls_t cbt = -1;
    if (pl.chargeback) {
        cbt = sale_t + (21 + (cs_ls_t)cs_rng_below(&g->r, 25)) * CS_DAY +
              (cs_ls_t)cs_rng_below(&g->r, 7200);
        if (cbt > a->now)
            cbt = a->now - (cs_ls_t)cs_rng_below(&g->r, 3600);
        if (cbt <= sale_t + 3600)
            cbt = -1;
        else
            stop = cbt;
    }
    if (pi >= 0 && rebills(g, &pl, oi, pi, t, stop) < 0)
        return -1;
    if (cbt > 0) {
        apply_chargeback(g, &pl, si, cbt);
        if (pi >= 0) {
            cs_purchase_t *p = &a->purchases[pi];
            p->status = CS_P_CANCELLED, p->next_bill_day = -1, p->updated = max_ls(p->updated, cbt);
        }
    }
    if (pl.refund)
        apply_refund(g, &pl, si);
    return 0;
}

/* Customer dateUpdated: their most recent activity. */
static void settle_customers(cs_account_t *a)
{
    for (size_t i = 0; i < a->ntxns; i++) {
        cs_customer_t *c = &a->customers[a->txns[i].customer];
        c->updated = max_ls(c->updated, a->txns[i].updated);
    }
    for (size_t i = 0; i < a->norders; i++) {
        cs_customer_t *c = &a->customers[a->orders[i].customer];
        c->updated = max_ls(c->updated, a->orders[i].updated);
    }
}

static int cmp_created(const void *x, const void *y, void *ctx)
{
    const cs_txn_t *t = ctx;
    int i = *(const int *)x, j = *(const int *)y;
    if (t[i].created != t[j].created)
        return t[i].created < t[j].created ? -1 : 1;
    return i < j ? -1 : i > j;
}

/* Transaction ids grow with time, as a CRM's sequence would. */
static int number_txns(cs_account_t *a)
{
    int *ord = malloc((a->ntxns + 1) * sizeof(int));
    if (!ord)
        return -1;
    for (size_t i = 0; i < a->ntxns; i++)
        ord[i] = (int)i;
    qsort_r(ord, a->ntxns, sizeof(int), cmp_created, a->txns);
    for (size_t r = 0; r < a->ntxns; r++)
        a->txns[ord[r]].id = 4100001 + (int64_t)r;
    free(ord);
    return 0;
}

static void make_campaigns(gen_t *g)
{
    cs_account_t *a = g->a;
    a->ncampaigns = 4;
    for (int c = 0; c < 4; c++) {
        cs_campaign_t *cp = &a->campaigns[c];
        cp->id = c + 1;
        snprintf(cp->name, sizeof(cp->name), "%s", CAMPAIGNS[c]);
        cp->created = (g->o->start_day - 30 + c) * CS_DAY + 9 * 3600;
    }
    for (int k = 0; k < (int)(sizeof(PRODUCTS) / sizeof(PRODUCTS[0])); k++) {
        cs_campaign_t *cp = &a->campaigns[PRODUCTS[k].campaign];
        cs_product_t *p = &cp->products[cp->nproducts++];
        p->id = PRODUCTS[k].id, p->interval_days = PRODUCTS[k].interval;
        snprintf(p->name, sizeof(p->name), "%s", PRODUCTS[k].name);
        p->price = price_of(g, k), p->shipping = ship_of(g, k);
    }
}

cs_account_t *cs_account_new(const cs_opts_t *opts, char *errstr, size_t errlen)
{
    cs_ls_t gap, fold;
    cs_tz_edges(opts->timezone, opts->start_day, opts->start_day + opts->days - 1, &gap, &fold);
    return cs_account_new_at(opts, gap, fold, errstr, errlen);
}

cs_account_t *cs_account_new_at(const cs_opts_t *opts, cs_ls_t gap, cs_ls_t fold, char *errstr,
                                size_t errlen)
{
    gen_t g;
    cs_account_t *a = calloc(1, sizeof(*a));
    if (!a || pthread_rwlock_init(&a->lock, NULL) != 0) {
        snprintf(errstr, errlen, "out of memory");
        free(a);
        return NULL;
    }
    memset(&g, 0, sizeof(g));
    g.a = a, g.o = opts, g.scheme = opts->decimals == 0 ? 1 : opts->decimals == 3 ? 2 : 0;
    a->opts = opts;
    a->now = (opts->start_day + opts->days) * CS_DAY - 1;
    g.gap = gap, g.fold = fold;
    make_campaigns(&g);
    a->ncustomers = (size_t)opts->customers;
    a->customers = calloc(a->ncustomers, sizeof(cs_customer_t));
    if (!a->customers)
        goto fail;
    for (int i = 0; i < opts->customers; i++)
        if (gen_customer(&g, i) != 0)
            goto fail;
    settle_customers(a);
    a->txns = shrink(a->txns, &a->captxns, a->ntxns, sizeof(*a->txns));
    a->orders = shrink(a->orders, &a->caporders, a->norders, sizeof(*a->orders));
    a->purchases = shrink(a->purchases, &a->cappurchases, a->npurchases, sizeof(*a->purchases));
    if (number_txns(a) != 0 || cs_account_index(a) != 0)
        goto fail;
    return a;
fail:
    snprintf(errstr, errlen, "out of memory while generating the account");
    cs_account_destroy(a);
    return NULL;
}

void cs_account_destroy(cs_account_t *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->npurchases; i++)
        free(a->purchases[i].txns);
    for (int s = 0; s < CS_NSTREAMS; s++) {
        free(a->by_created[s].idx);
        free(a->by_updated[s].idx);
    }
    free(a->purchases);
    free(a->txns);
    free(a->orders);
    free(a->customers);
    pthread_rwlock_destroy(&a->lock);
    free(a);
}
