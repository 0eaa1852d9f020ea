/* ltvctl: the operator CLI. main.c parses the global options and dispatches
 * to one file per command group. Exit codes: 0 ok, 1 failure, 2 usage. */
#ifndef LTVCTL_H
#define LTVCTL_H

#include "lt_config.h"
#include "lt_integration.h"

#define CTL_OK    0
#define CTL_FAIL  1
#define CTL_USAGE 2

typedef struct {
    lt_config_t *cfg;
    int json; /* --json */
    int yes;  /* --yes */
    int argc; /* the command's own arguments (after the command words) */
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

int ctl_integration(ctl_t *ctl, const char *verb);
int ctl_sync(ctl_t *ctl);
int ctl_topics(ctl_t *ctl, const char *verb);
int ctl_status(ctl_t *ctl);
int ctl_reconcile(ctl_t *ctl);
int ctl_replay(ctl_t *ctl);
int ctl_dlq(ctl_t *ctl, const char *verb);
int ctl_replay_start(ctl_t *ctl, const char *id);

/* "a,b,c" stream names to a mask of 1 << lt_stream_t; -1 (and a message on
 * stderr) on an unknown name. jobs.c. */
int ctl_parse_streams(const char *v, unsigned *mask);

#endif
