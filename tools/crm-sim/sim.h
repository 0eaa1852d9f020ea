/* crm-sim: a Konnektive-compatible query API over a seeded synthetic account.
 * Internal header shared by the tool's modules (prefix cs_). The tool is
 * standalone: it links only libmicrohttpd, cJSON, libm and pthreads. */
#ifndef CRMSIM_SIM_H
#define CRMSIM_SIM_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cjson/cJSON.h>

/* Account-local wall time: seconds since 1970-01-01 00:00:00 read as if UTC.
 * Day arithmetic is exact (no DST), which is what a CRM's wall clock shows. */
typedef int64_t cs_ls_t;
#define CS_DAY 86400

/* ---- PRNG (xoshiro256** seeded by splitmix64): never rand() ---- */
typedef struct {
    uint64_t s[4];
} cs_rng_t;
void cs_rng_seed(cs_rng_t *r, uint64_t seed);
uint64_t cs_rng_next(cs_rng_t *r);
uint64_t cs_rng_below(cs_rng_t *r, uint64_t n); /* uniform in [0, n), n > 0 */
double cs_rng_unit(cs_rng_t *r);                /* uniform in [0, 1) */

/* ---- wall time (wtime.c) ---- */
int64_t cs_days_from_civil(int y, int m, int d);
void cs_civil_from_days(int64_t z, int *y, int *m, int *d);
void cs_ls_format(cs_ls_t t, char out[20]);    /* "YYYY-MM-DD HH:MM:SS" */
void cs_day_format(int64_t day, char out[11]); /* "YYYY-MM-DD" */
/* MM/DD/YYYY, M/D/YY, YYYY-MM-DD; anything after a space or 'T' is ignored.
 * Returns 0 and the day number, -1 when invalid. */
int cs_date_parse(const char *s, int64_t *day);
/* "YYYY-MM-DD HH:MM:SS" or "YYYY-MM-DD"; *date_only tells which. 0 / -1. */
int cs_ls_parse(const char *s, cs_ls_t *t, int *date_only);
/* Wall-time DST edges of ZONE between first_day and last_day (inclusive):
 * *gap = a wall time inside a spring-forward gap, *fold = one inside a
 * fall-back repeated hour, each -1 when none. Sets TZ: call single-threaded. */
int cs_tz_edges(const char *zone, int64_t first_day, int64_t last_day, cs_ls_t *gap, cs_ls_t *fold);

/* ---- enums, rendered by name ---- */
enum { CS_SALE, CS_AUTHORIZE, CS_CAPTURE, CS_REFUND, CS_VOID };
enum { CS_SUCCESS, CS_SOFT_DECLINE, CS_HARD_DECLINE };
enum { CS_O_COMPLETE, CS_O_PARTIAL, CS_O_DECLINED, CS_O_REFUNDED, CS_O_CANCELLED };
enum {
    CS_P_ACTIVE,
    CS_P_TRIAL,
    CS_P_PAUSED,
    CS_P_CANCELLED,
    CS_P_COMPLETE,
    CS_P_RECYCLE_BILLING,
    CS_P_RECYCLE_FAILED
};
enum { CS_OT_NEW_SALE, CS_OT_UPSALE, CS_OT_RECURRING };
enum { CS_S_TXN, CS_S_ORDER, CS_S_CUSTOMER, CS_S_PURCHASE, CS_NSTREAMS };
extern const char *const cs_txn_type_names[];
extern const char *const cs_resp_names[];
extern const char *const cs_order_status_names[];
extern const char *const cs_purchase_status_names[];
extern const char *const cs_order_type_names[];
extern const int cs_product_ids[]; /* by catalogue index */
extern const char *const cs_product_names[];

/* ---- options (main.c parses them) ---- */
#define CS_MAX_DENY     16
#define CS_MAX_ACCOUNTS 100000
#define CS_MAX_SIZES    64 /* --account-size options */
typedef struct {
    int port;
    const char *port_file, *timezone, *currency, *login_id, *password, *dump;
    uint64_t seed;
    int customers, days;
    int64_t start_day;
    int latency_ms, max_rps, max_in_flight;
    double fault_rate;
    const char *deny[CS_MAX_DENY];
    int ndeny;
    int ip_deny, counts_as_strings, empty_past_last_page;
    int decimals; /* of the currency's minor unit */
    const char *symbol;
    int accounts; /* --accounts: 1 (one account, --login-id) or more (acct-1..acct-N) */
    int nsizes, size_index[CS_MAX_SIZES], size_customers[CS_MAX_SIZES]; /* --account-size I=C */
} cs_opts_t;

/* cli.c: 0 to run, 1 for --help, -1 on a usage error (errstr set). */
int cs_cli_parse(int argc, char **argv, cs_opts_t *o, char *errstr, size_t errlen);

/* ---- the account ---- */
typedef struct {
    int id, interval_days; /* 0 = one-off */
    char name[40];
    int64_t price, shipping; /* minor units */
} cs_product_t;

typedef struct {
    int id, nproducts;
    char name[40];
    cs_ls_t created;
    cs_product_t products[3];
} cs_campaign_t;

typedef struct {
    int id, ach, card_type;
    cs_ls_t created, updated;
    char first[32], last[32], email[72], phone[16], address1[48], city[24];
    char state[4], postal[8], country[4], card_bin[8], card_last4[8];
    char ecom_pw[40], ach_acct[40], ach_rtn[40]; /* secrets */
} cs_customer_t;

typedef struct {
    int campaign, product, purchase; /* purchase index or -1 */
    int64_t price, shipping;
} cs_item_t;

typedef struct {
    char id[11];
    int customer, campaign, status, nitems, aff;
    cs_ls_t created, updated;
    int64_t total, price, shipping, refunded;
    char coupon[12];
    cs_item_t items[3];
} cs_order_t;

typedef struct {
    int id, order, customer, campaign, product, status, cycle, interval;
    int64_t price, next_bill_day, billed, refunded; /* next_bill_day -1: none */
    cs_ls_t created, updated;
    int *txns, ntxns, captxns; /* transaction indexes, owned */
} cs_purchase_t;

typedef struct {
    int64_t id, amount, cb_amount;
    int parent, order, customer, campaign, purchase, product; /* indexes, -1 */
    int cycle, recycle, merchant_id;
    cs_ls_t created, updated, cb_date;
    uint8_t type, resp, otype, ach, cb, cb_has, cb_date_only, cb_reason;
    uint8_t refund_reason, declined_text;
} cs_txn_t;

typedef struct {
    int *idx;
    size_t n;
} cs_index_t;

typedef struct {
    const cs_opts_t *opts;
    cs_ls_t now; /* the simulator's clock: last second of the last day */
    cs_campaign_t campaigns[4];
    int ncampaigns;
    cs_customer_t *customers;
    size_t ncustomers;
    cs_order_t *orders;
    size_t norders, caporders;
    cs_purchase_t *purchases;
    size_t npurchases, cappurchases;
    cs_txn_t *txns;
    size_t ntxns, captxns;
    cs_index_t by_created[CS_NSTREAMS], by_updated[CS_NSTREAMS];
    pthread_rwlock_t lock; /* readers: queries; writer: mutations */
} cs_account_t;

/* gen.c: builds the whole account from opts (deterministic in opts->seed). */
cs_account_t *cs_account_new(const cs_opts_t *opts, char *errstr, size_t errlen);
/* The same with the zone's DST edges already found (cs_tz_edges): safe to
 * call from any thread, as cs_tz_edges is not. */
cs_account_t *cs_account_new_at(const cs_opts_t *opts, cs_ls_t gap, cs_ls_t fold, char *errstr,
                                size_t errlen);
void cs_account_destroy(cs_account_t *a);           /* accepts NULL */
int cs_txn_add(cs_account_t *a, const cs_txn_t *t); /* returns index or -1 */
/* Rebuild the sorted (date, id) indexes; caller holds the write lock. */
int cs_account_index(cs_account_t *a);

/* render.c: rows exactly as the API returns them (caller frees). */
cJSON *cs_render_txn(const cs_account_t *a, int i);
cJSON *cs_render_order(const cs_account_t *a, int i);
cJSON *cs_render_customer(const cs_account_t *a, int i);
cJSON *cs_render_purchase(const cs_account_t *a, int i);
cJSON *cs_render_campaign(const cs_account_t *a, int i);
cJSON *cs_render_row(const cs_account_t *a, int stream, int i);
void cs_money_format(int64_t minor, int decimals, char *out, size_t outlen);
/* Daily totals between two days inclusive, as the CRM's summary list. */
cJSON *cs_summary(const cs_account_t *a, int64_t first_day, int64_t last_day);

/* form.c: application/x-www-form-urlencoded parameters, decoded. */
typedef struct {
    char *key, *val;
    size_t klen, vlen;
} cs_param_t;
typedef struct {
    cs_param_t *p;
    size_t n, cap;
} cs_params_t;
/* Appends the pairs of buf[0..len); returns -1 when over the caps. */
int cs_params_parse(cs_params_t *ps, const char *buf, size_t len);
const cs_param_t *cs_params_get(const cs_params_t *ps, const char *key); /* last wins */
void cs_params_free(cs_params_t *ps);

/* ---- hostile modes switched at run time (POST /_sim/fault) ---- */
enum {
    CS_H_OVERSIZED_ROW,
    CS_H_HUGE_BODY,
    CS_H_DEEP_JSON,
    CS_H_WIDE_JSON,
    CS_H_TOTAL_RESULTS,
    CS_H_RETRY_AFTER,
    CS_H_DRIP,
    CS_H_HANG,
    CS_H_LATENCY,
    CS_H_IP_DENY,
    CS_H_PASSWORD,
    CS_H_DENY_ENDPOINT, /* account settings: never scoped */
    CS_H_NMODES
};
#define CS_H_BIT(m) (1u << (m))
enum { CS_TOTAL_HUGE = 1, CS_TOTAL_MISSING, CS_TOTAL_CHANGING };
#define CS_H_MAX_PASSWORD 256
extern const char *const cs_hostile_names[CS_H_NMODES];
/* One set of run-time settings with its counters: the process's own (one
 * account) or one account's (--accounts > 1). */
typedef struct cs_hstate cs_hstate_t;

/* What applies to one API request: a copy taken once when it starts, so a
 * change made meanwhile only affects later requests. */
typedef struct {
    unsigned modes; /* CS_H_BIT()s in force for this request */
    unsigned hit;   /* CS_H_BIT()s that shaped its answer (for cs_hostile_tally) */
    uint64_t row_bytes, huge_bytes, deep_depth, wide_items, wide_bytes; /* wide_bytes 0: items */
    int row_index, total_mode, always_full, retry_status;
    int drip_ms, hang_s, latency_min_ms, latency_max_ms, ip_deny;
    unsigned deny_mask;  /* bit i: cs_api_paths[i] denied */
    uint64_t hang_epoch; /* a hung request is released when the epoch moves */
    cs_hstate_t *st;     /* the settings it came from; NULL: none (no mode) */
    char row_field[32], retry_after[128];
    char password[CS_H_MAX_PASSWORD + 1]; /* secret: never printed */
} cs_hostile_t;

/* hostile.c: the settings (one mutex each), their JSON form and the counters. */
void cs_hostile_init(uint64_t seed); /* the process's own settings */
cs_hstate_t *cs_hostile_default(void);
cs_hstate_t *cs_hstate_new(uint64_t seed); /* an account's; NULL when out of memory */
void cs_hstate_free(cs_hstate_t *st);      /* accepts NULL */
/* POST body; returns the JSON answer (caller frees), *http_status 200 or 400. */
char *cs_hostile_set(cs_hstate_t *st, const char *body, size_t len, int *http_status);
char *cs_hostile_get(cs_hstate_t *st); /* GET answer, caller frees; st NULL: {} */
/* The snapshot for a request on path with form ps (NULL: matches no "when");
 * uses up the counts of the modes it gets. st NULL: no mode. */
void cs_hostile_resolve(cs_hstate_t *st, int path, const cs_params_t *ps, cs_hostile_t *h);
void cs_hostile_tally(const cs_hostile_t *h, unsigned bits);        /* one hostile answer per bit */
void cs_hostile_hits(cs_hstate_t *st, long long hits[CS_H_NMODES]); /* adds; st NULL: none */
void cs_hostile_stats(cs_hstate_t *st, cJSON *stats); /* adds "hostile":{mode:n,...} */
uint64_t cs_hostile_epoch(cs_hstate_t *st);
cJSON *cs_hostile_filler(uint64_t bytes, uint64_t seed); /* seeded string item */
/* Sleeps in slices; -1 (early) once the server stops. */
int cs_hostile_sleep_ms(int64_t ms);
int cs_hostile_latency(const cs_hostile_t *h); /* the run-time latency; -1: stopping */
void cs_hostile_stop(void);                    /* before MHD_stop_daemon */
int cs_hostile_stopping(void);

/* hostile_io.c: answers that need libmicrohttpd (generated streams, hang). */
struct MHD_Connection;
struct MHD_Response;
/* huge_body, deep_json or wide_json streamed; NULL when none applies.
 * *mode: the CS_H_* used. */
struct MHD_Response *cs_hostile_body(const cs_hostile_t *h, int *mode);
/* body (malloc'd, now owned by the response) one byte per interval_ms. */
struct MHD_Response *cs_hostile_drip(char *body, size_t len, int interval_ms);
/* Holds the request: 0 when released (answer normally), -1 to drop it
 * (client gone, cap reached, server stopping). */
int cs_hostile_hang(struct MHD_Connection *c, const cs_hostile_t *h);

/* query.c: the API endpoints. Return a malloc'd JSON body (caller frees).
 * h: the request's hostile modes; the ones that shaped the body go to h->hit.
 * The checks before any row is read (IP, loginId + password, endpoint) for
 * API path k under options o: 1 with *body the refusal, 0 to go on.
 * login_id NULL: no loginId matches (an unknown account). */
int cs_api_check(const cs_opts_t *o, const char *login_id, int k, const cs_params_t *ps,
                 const char *peer, cs_hostile_t *h, int *auth_failed, char **body);
/* The answer of API path k once the checks passed. */
char *cs_api_query(cs_account_t *a, int k, const cs_params_t *ps, cs_hostile_t *h);
int cs_api_known(const char *path); /* 1 for the six API paths */
extern const char *const cs_api_paths[];
#define CS_NPATHS 6

/* mutate.c: late changes and the dump file. */
char *cs_mutate(cs_account_t *a, const char *body, size_t len, int *http_status);
int cs_dump_write(cs_account_t *a, const char *path, char *errstr, size_t errlen);
/* The dump document into f; caller holds the account's lock (either kind). */
int cs_dump_to(cs_account_t *a, FILE *f);

/* limits.c: accounting, limits, latency and faults (thread-safe). A ledger
 * is one set of counters with its 1-second window: the process has one, and
 * with --accounts > 1 each account has its own, where the limits apply. */
enum { CS_FAULT_NONE, CS_FAULT_503, CS_FAULT_BUSY, CS_FAULT_TRUNCATE, CS_FAULT_RESET };
typedef struct {
    pthread_mutex_t mu;
    long long requests[CS_NPATHS], total, violations, rejected, faults, auth_failures;
    int in_flight, peak_in_flight, max_window;
    int64_t *starts; /* ring of request start times (ns) within the last second */
    size_t head, n, cap;
} cs_ledger_t;
void cs_ledger_init(cs_ledger_t *l);
void cs_ledger_destroy(cs_ledger_t *l);
/* An API request of an account starts: counted there and checked against
 * --max-rps / --max-in-flight; 1 when it must get 429 (also counted in the
 * process's violations). who names the account in the log line. */
int cs_ledger_begin(cs_ledger_t *l, int path_index, const char *who);
void cs_ledger_end(cs_ledger_t *l);
cJSON *cs_ledger_json(cs_ledger_t *l); /* the counters of /_sim/stats, no "hostile" */
void cs_limits_init(const cs_opts_t *opts);
/* Call when a request to an API path starts; returns 1 when it must get 429
 * (the limits apply here only with one account). */
int cs_limits_begin(int path_index);
void cs_limits_end(void);
void cs_limits_auth_failure(cs_ledger_t *acct); /* acct: also counted there; may be NULL */
void cs_limits_sleep(void);                     /* the configured latency with +/-25 % jitter */
int cs_limits_fault(cs_ledger_t *acct);         /* CS_FAULT_*, counted (in acct too) */
char *cs_limits_stats(void);                    /* JSON body, caller frees */
cJSON *cs_limits_json(void);                    /* the process's counters, no "hostile" */
void cs_limits_shutdown(void);

/* accounts.c: the accounts one process serves. --accounts 1: one account,
 * the command line's login id and seed, generated at start-up. N > 1:
 * acct-1..acct-N, each with its own seed (cs_account_seed), size, limits,
 * counters and hostile settings, generated on first use (or at start-up
 * with --dump). */
typedef struct {
    cs_opts_t o;        /* the command line's, with this account's seed, login id, size, dump */
    char login[24];     /* acct-i (N > 1; empty with one account: o.login_id) */
    char *dump_path;    /* DIR/acct-i.json (N > 1 with --dump) */
    int index;          /* 1-based */
    pthread_mutex_t mu; /* guards a and hs, each set once */
    cs_account_t *a;    /* NULL until first needed */
    cs_hstate_t *hs;    /* N > 1: NULL until a POST /_sim/fault names the account */
    cs_ledger_t ledger; /* N > 1: the account's limits and counters */
} cs_tenant_t;
uint64_t cs_account_seed(uint64_t seed, int index); /* acct-index's seed */
int cs_tenants_init(const cs_opts_t *o, char *errstr, size_t errlen);
void cs_tenants_destroy(void);
int cs_tenants_n(void);
cs_tenant_t *cs_tenant_first(void);
/* The account a request's loginId names (N = 1: always the one); NULL: none. */
cs_tenant_t *cs_tenant_login(const cs_params_t *ps);
/* The account an ?account= selector names; NULL: none. */
cs_tenant_t *cs_tenant_named(const char *name, size_t len);
cs_account_t *cs_tenant_account(cs_tenant_t *t); /* generates it first if needed; NULL: OOM */
cs_hstate_t *cs_tenant_hostile(cs_tenant_t *t, int create);
cs_ledger_t *cs_tenant_ledger(cs_tenant_t *t); /* NULL with one account (the process's is it) */
/* /_sim/stats: N = 1 as always; N > 1, t NULL: the process's counters (the
 * hostile counts summed) with "accounts" and "generated"; t: the account's. */
char *cs_tenants_stats(cs_tenant_t *t);

#endif
