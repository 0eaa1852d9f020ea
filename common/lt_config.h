/* lt_config: every setting of every ltvsync binary, from one table.
 *
 * A setting NAME is read from the environment variable LTVSYNC_NAME; an
 * optional file (LTVSYNC_CONFIG_FILE or --config FILE, lines `NAME=value`,
 * `#` comments) adds values the environment does not set (environment wins).
 * Any LTVSYNC_KAFKA_<PROP> is passed to librdkafka as <prop> (lower case,
 * '_' -> '.'), likewise LTVSYNC_DOWNSTREAM_KAFKA_<PROP> for the downstream
 * cluster. The table (lt_config_defs[] in lt_config.c) also drives --help and
 * --print-config (secrets masked) and is mirrored by the Helm values. */
#ifndef LT_CONFIG_H
#define LT_CONFIG_H

#include <stddef.h>
#include <stdio.h>
#include <librdkafka/rdkafka.h>
#include "lt_err.h"

/* Which binaries read a setting (bit mask). */
#define LT_SVC_SCHEDULER  0x01u
#define LT_SVC_FETCHER    0x02u
#define LT_SVC_NORMALIZER 0x04u
#define LT_SVC_SINK       0x08u
#define LT_SVC_CTL        0x10u
#define LT_SVC_DEVBROKER  0x20u
#define LT_SVC_API        0x40u /* also reads every ctl setting: it runs ltvctl's commands */
#define LT_SVC_ALL        0xffu

typedef enum {
    LT_CFG_STRING,
    LT_CFG_INT,      /* integer within [min, max] */
    LT_CFG_DURATION, /* "250ms", "30s", "15m", "1h", "7d"; stored in milliseconds */
    LT_CFG_SIZE,     /* "512", "64k", "16M", "1G" (binary units); stored in bytes */
    LT_CFG_SECRET,   /* a string never printed */
    LT_CFG_URL,      /* a URL whose password part (":pw@") is masked when printed */
} lt_cfg_type_t;

typedef struct {
    const char *name; /* "REDIS_URL" -> env LTVSYNC_REDIS_URL */
    lt_cfg_type_t type;
    const char *def;    /* default, as a string; NULL = unset */
    long long min, max; /* bounds for INT, DURATION (ms), SIZE (bytes) */
    unsigned services;  /* LT_SVC_* mask */
    const char *help;
} lt_config_def_t;

extern const lt_config_def_t lt_config_defs[];
extern const size_t lt_config_ndefs;

typedef struct lt_config_s lt_config_t;

/* Handles the common command line of every service binary:
 * --help (usage + the settings of `service` from the table), --version,
 * --print-config (effective values, secrets masked), --config FILE.
 * On success *cfgp is a loaded config and the return is -1 ("continue").
 * Otherwise returns the exit code for main(): 0 after --help/--version/
 * --print-config, 2 for a usage error, 1 for an invalid setting (the error is
 * printed on stderr). `extra_usage` is printed under --help, may be NULL.
 * On success it also calls lt_log_init() with the service name ("fetcher")
 * and LOG_LEVEL. Hidden: --print-config-doc prints the markdown table of
 * docs/CONFIGURATION.md. GROUP_ID defaults to "ltvsync-<service>". */
int lt_config_from_args(int argc, char **argv, const char *progname, unsigned service,
                        const char *extra_usage, lt_config_t **cfgp);

/* Lower level: lt_config_new() gives every default; lt_config_load() adds
 * the file (`file`, else LTVSYNC_CONFIG_FILE; NULL/unset = none), then the
 * environment over it. Load before any lt_config_set(): a load overwrites.
 * Unknown names in the file are errors; in the environment they are ignored. */
lt_config_t *lt_config_new(unsigned service);
lt_err_t lt_config_load(lt_config_t *cfg, const char *file, char *errstr, size_t errlen);
/* Sets one value programmatically (tests, ltvctl flags), validated. */
lt_err_t lt_config_set(lt_config_t *cfg, const char *name, const char *value, char *errstr,
                       size_t errlen);
void lt_config_destroy(lt_config_t *cfg);

/* The string value of a setting (NULL if unset). Aborts on a name not in the
 * table: that is a programming error, caught by the tests. */
const char *lt_config_str(const lt_config_t *cfg, const char *name);
/* INT as is, DURATION in ms, SIZE in bytes. */
long long lt_config_int(const lt_config_t *cfg, const char *name);

void lt_config_print(const lt_config_t *cfg, FILE *out);

/* Sets bootstrap.servers, then applies every LTVSYNC_<prefix><PROP>
 * pass-through (prefix "KAFKA_" or "DOWNSTREAM_KAFKA_") to conf. For
 * "DOWNSTREAM_KAFKA_" the brokers are DOWNSTREAM_BROKERS; when that is unset
 * the downstream is the main cluster and the KAFKA_ properties (TLS, SASL)
 * apply first, the DOWNSTREAM_KAFKA_ ones over them. Errors never quote the
 * value of a secret-looking property. */
lt_err_t lt_config_apply_kafka(const lt_config_t *cfg, const char *prefix, rd_kafka_conf_t *conf,
                               char *errstr, size_t errlen);

/* Parsers shared with other modules; return 0 on success, -1 on error. */
int lt_config_parse_duration_ms(const char *s, long long *ms);
int lt_config_parse_size(const char *s, long long *bytes);

#endif
