/* Command-line options of crm-sim. */
#include "sim.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum {
    O_PORT = 256,
    O_PORT_FILE,
    O_SEED,
    O_CUSTOMERS,
    O_START,
    O_DAYS,
    O_TZ,
    O_CURRENCY,
    O_LOGIN,
    O_PASSWORD,
    O_LATENCY,
    O_RPS,
    O_IN_FLIGHT,
    O_FAULT,
    O_DUMP,
    O_DENY,
    O_IP_DENY,
    O_COUNTS_STR,
    O_EMPTY_PAST,
    O_HELP,
    O_VERSION,
    O_ACCOUNTS,
    O_ACCOUNT_SIZE
};

static const struct option OPTIONS[] = {{"port", required_argument, NULL, O_PORT},
                                        {"port-file", required_argument, NULL, O_PORT_FILE},
                                        {"seed", required_argument, NULL, O_SEED},
                                        {"customers", required_argument, NULL, O_CUSTOMERS},
                                        {"start", required_argument, NULL, O_START},
                                        {"days", required_argument, NULL, O_DAYS},
                                        {"timezone", required_argument, NULL, O_TZ},
                                        {"currency", required_argument, NULL, O_CURRENCY},
                                        {"login-id", required_argument, NULL, O_LOGIN},
                                        {"password", required_argument, NULL, O_PASSWORD},
                                        {"latency-ms", required_argument, NULL, O_LATENCY},
                                        {"max-rps", required_argument, NULL, O_RPS},
                                        {"max-in-flight", required_argument, NULL, O_IN_FLIGHT},
                                        {"fault-rate", required_argument, NULL, O_FAULT},
                                        {"dump", required_argument, NULL, O_DUMP},
                                        {"deny-endpoint", required_argument, NULL, O_DENY},
                                        {"ip-deny", no_argument, NULL, O_IP_DENY},
                                        {"counts-as-strings", no_argument, NULL, O_COUNTS_STR},
                                        {"empty-past-last-page", no_argument, NULL, O_EMPTY_PAST},
                                        {"accounts", required_argument, NULL, O_ACCOUNTS},
                                        {"account-size", required_argument, NULL, O_ACCOUNT_SIZE},
                                        {"help", no_argument, NULL, O_HELP},
                                        {"version", no_argument, NULL, O_VERSION},
                                        {NULL, 0, NULL, 0}};

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static void set_currency(cs_opts_t *o)
{
    static const struct {
        const char *code, *symbol;
        int dec;
    } T[] = {{"USD", "$", 2}, {"CAD", "$", 2}, {"AUD", "$", 2},  {"EUR", "€", 2}, {"GBP", "£", 2},
             {"JPY", "¥", 0}, {"KRW", "₩", 0}, {"KWD", "KD", 3}, {"BHD", "BD", 3}};
    o->decimals = 2;
    o->symbol = o->currency;
    for (size_t i = 0; i < sizeof(T) / sizeof(T[0]); i++)
        if (strcmp(T[i].code, o->currency) == 0)
            o->symbol = T[i].symbol, o->decimals = T[i].dec;
}

static int zone_ok(const char *z)
{
    char path[512];
    struct stat st;
    if (!*z || strstr(z, "..") || z[0] == '/')
        return 0;
    snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", z);
    return strcmp(z, "UTC") == 0 || (stat(path, &st) == 0 && S_ISREG(st.st_mode));
}

/* One option; returns 0 or -1 with errstr set. */
static int set_opt(cs_opts_t *o, int c, const char *arg, char *errstr, size_t errlen)
{
    long v = 0;
    char *end;
    switch (c) {
    case O_PORT:
        if (parse_long(arg, 0, 65535, &v))
            goto bad;
        o->port = (int)v;
        break;
    case O_PORT_FILE: o->port_file = arg; break;
    case O_SEED:
        errno = 0;
        o->seed = strtoull(arg, &end, 10);
        if (errno || *end || end == arg)
            goto bad;
        break;
    case O_CUSTOMERS:
        if (parse_long(arg, 1, 1000000, &v))
            goto bad;
        o->customers = (int)v;
        break;
    case O_START:
        if (strlen(arg) != 10 || cs_date_parse(arg, &o->start_day))
            goto bad;
        break;
    case O_DAYS:
        if (parse_long(arg, 1, 3660, &v))
            goto bad;
        o->days = (int)v;
        break;
    case O_TZ:
        if (!zone_ok(arg))
            goto bad;
        o->timezone = arg;
        break;
    case O_CURRENCY:
        if (strlen(arg) != 3 || !isupper((unsigned char)arg[0]) ||
            !isupper((unsigned char)arg[1]) || !isupper((unsigned char)arg[2]))
            goto bad;
        o->currency = arg;
        break;
    case O_LOGIN: o->login_id = arg; break;
    case O_PASSWORD: o->password = arg; break;
    case O_LATENCY:
        if (parse_long(arg, 0, 600000, &v))
            goto bad;
        o->latency_ms = (int)v;
        break;
    case O_RPS:
        if (parse_long(arg, 0, INT_MAX, &v))
            goto bad;
        o->max_rps = (int)v;
        break;
    case O_IN_FLIGHT:
        if (parse_long(arg, 0, INT_MAX, &v))
            goto bad;
        o->max_in_flight = (int)v;
        break;
    case O_FAULT:
        o->fault_rate = strtod(arg, &end);
        if (*end || end == arg || !(o->fault_rate >= 0 && o->fault_rate <= 1))
            goto bad;
        break;
    case O_DUMP: o->dump = arg; break;
    case O_DENY:
        if (o->ndeny >= CS_MAX_DENY || !cs_api_known(arg))
            goto bad;
        o->deny[o->ndeny++] = arg;
        break;
    case O_IP_DENY: o->ip_deny = 1; break;
    case O_COUNTS_STR: o->counts_as_strings = 1; break;
    case O_EMPTY_PAST: o->empty_past_last_page = 1; break;
    case O_ACCOUNTS:
        if (parse_long(arg, 1, CS_MAX_ACCOUNTS, &v))
            goto bad;
        o->accounts = (int)v;
        break;
    case O_ACCOUNT_SIZE: { /* I=C: account acct-I gets C customers */
        const char *eq = strchr(arg, '=');
        char idx[16];
        long n = 0;
        if (!eq || eq == arg || (size_t)(eq - arg) >= sizeof(idx) || o->nsizes >= CS_MAX_SIZES)
            goto bad;
        snprintf(idx, sizeof(idx), "%.*s", (int)(eq - arg), arg);
        if (parse_long(idx, 1, CS_MAX_ACCOUNTS, &v) || parse_long(eq + 1, 1, 1000000, &n))
            goto bad;
        o->size_index[o->nsizes] = (int)v, o->size_customers[o->nsizes++] = (int)n;
        break;
    }
    default: goto bad;
    }
    return 0;
bad:
    snprintf(errstr, errlen, "invalid value for an option: %s", arg ? arg : "");
    return -1;
}

/* Returns 0 to run, 1 when --help was asked, 2 for --version, -1 on a
 * usage error. */
int cs_cli_parse(int argc, char **argv, cs_opts_t *o, char *errstr, size_t errlen)
{
    int c;
    memset(o, 0, sizeof(*o));
    o->timezone = "America/New_York", o->currency = "USD", o->seed = 1, o->start_day = -1;
    o->accounts = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", OPTIONS, NULL)) != -1) {
        if (c == O_HELP)
            return 1;
        if (c == O_VERSION)
            return 2;
        if (c == '?') {
            snprintf(errstr, errlen, "unknown option %s", argv[optind - 1]);
            return -1;
        }
        if (set_opt(o, c, optarg, errstr, errlen) != 0)
            return -1;
    }
    if (optind < argc || !o->customers || !o->days || o->start_day < 0 ||
        (!o->login_id && o->accounts == 1) || !o->password) {
        snprintf(errstr, errlen,
                 "--customers, --start, --days, --login-id and --password are required");
        return -1;
    }
    for (int i = 0; i < o->nsizes; i++)
        if (o->size_index[i] > o->accounts || o->accounts == 1) {
            snprintf(errstr, errlen, "--account-size %d=...: needs --accounts >= %d and > 1",
                     o->size_index[i], o->size_index[i]);
            return -1;
        }
    set_currency(o);
    return 0;
}
