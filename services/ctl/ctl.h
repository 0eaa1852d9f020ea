/* ltvctl: the operator CLI. main.c parses the global options and dispatches
 * to one file per command group. Exit codes: 0 ok, 1 failure, 2 usage.
 *
 * The commands are also the control API's operations (services/api): they
 * write to ctl->out and ctl->err (stdout and stderr in ltvctl, memory
 * streams in the API), and a failure records what kind it is in
 * ctl->res->problem so the API can answer with the right status. */
#ifndef LTVCTL_H
#define LTVCTL_H

#include <stdio.h>

#include "lt_config.h"
#include "lt_integration.h"
#include "lt_limits.h"
#include "lt_redis.h"

#define CTL_OK    0
#define CTL_FAIL  1
#define CTL_USAGE 2

/* What went wrong, for a caller that must tell the kinds apart. */
typedef enum {
    CTL_P_NONE = 0,
    CTL_P_INVALID,        /* a field or argument is wrong: res->field names it when known */
    CTL_P_NOT_FOUND,      /* no such integration */
    CTL_P_CONFLICT,       /* the integration exists already */
    CTL_P_CONFIRM,        /* a timezone change without confirmation (--yes) */
    CTL_P_CRM_REJECTED,   /* the CRM refused the credentials, the IP or a permission */
    CTL_P_CRM_UNREACHABLE /* the CRM could not be reached or answered an error */
    /* anything else failing (Kafka, Redis): CTL_P_NONE with CTL_FAIL */
} ctl_problem_t;

typedef struct {
    ctl_problem_t problem;
    char field[32];          /* with CTL_P_INVALID, when one field is at fault */
    lt_integration_t stored; /* integration add/update: the document written */
    int stored_set;
    const char *doc;       /* integration add/update/test: the document to use */
    size_t doclen;         /*   instead of --file (the API's request body) */
    int replay_later;      /* integration update: when the timezone changes, set */
    int replay_due;        /*   replay_due instead of replaying before returning */
    int finding;           /* CTL_FAIL with the report complete (reconcile: unexplained days) */
    char problems[8][256]; /* CTL_P_INVALID from a document: each problem, */
    int nproblems;         /*   "field: reason" (lt_integration_parse_all) */
} ctl_res_t;

typedef struct {
    lt_config_t *cfg;
    FILE *out, *err; /* stdout and stderr in ltvctl */
    ctl_res_t *res;  /* never NULL */
    int json;        /* --json */
    int yes;         /* --yes */
    int argc;        /* the command's own arguments (after the command words) */
    char **argv;
} ctl_t;

/* Finds "--name value" in the command's arguments; NULL when absent. */
const char *ctl_opt(const ctl_t *ctl, const char *name);
/* 1 when the flag "--name" is present. */
int ctl_flag(const ctl_t *ctl, const char *name);
/* The n-th positional argument (not an option or an option's value). */
const char *ctl_arg(const ctl_t *ctl, int n);

/* Reads the integration id from the topic into out; CTL_FAIL with a message
 * when it does not exist. */
int ctl_find_integration(const ctl_t *ctl, const char *id, lt_integration_t *out);
/* Writes (or with json NULL, deletes) an integration and waits for the ack. */
int ctl_write_integration(const ctl_t *ctl, const char *id, const char *json);
/* Records the kind of a failure (and the field at fault, or NULL); returns
 * CTL_FAIL. An errstr of the form "field: reason" names its field. */
int ctl_fail(const ctl_t *ctl, ctl_problem_t p, const char *field);
int ctl_fail_errstr(const ctl_t *ctl, ctl_problem_t p, const char *errstr);

int ctl_integration(ctl_t *ctl, const char *verb);
int ctl_sync(ctl_t *ctl);
int ctl_topics(ctl_t *ctl, const char *verb);
int ctl_status(ctl_t *ctl);
int ctl_reconcile(ctl_t *ctl);
int ctl_replay(ctl_t *ctl);
int ctl_dlq(ctl_t *ctl, const char *verb);
/* secrets keygen | seal ID | rotate: the seal key ring (secrets.c). */
int ctl_secrets(ctl_t *ctl, const char *verb);
int ctl_replay_start(ctl_t *ctl, const char *id);

/* Request slots of an integration's limits for the CRM calls ltvctl makes
 * itself (crmslot.c): open connects to the limiter (a note on ctl->err
 * without Redis: requests are then spaced by max_rps), acquire waits up to
 * 60 s for a slot (0, or -1 with a "FAILED: ..." line on msgs), release
 * gives it back, close releases and disconnects. */
typedef struct {
    lt_redis_t *redis;
    lt_limits_t *lim;
    lt_lease_t lease;
    int leased;
} ctl_crm_slots_t;
void ctl_crm_slots_open(const ctl_t *ctl, const lt_integration_t *in, ctl_crm_slots_t *s);
int ctl_crm_slot_acquire(ctl_crm_slots_t *s, const lt_integration_t *in, FILE *msgs);
void ctl_crm_slot_release(ctl_crm_slots_t *s);
void ctl_crm_slots_close(ctl_crm_slots_t *s);

/* "a,b,c" stream names to a mask of 1 << lt_stream_t; -1 (and a message on
 * stderr) on an unknown name. jobs.c. */
int ctl_parse_streams(const ctl_t *ctl, const char *v, unsigned *mask);

#endif
