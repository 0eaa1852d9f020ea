/* ltvctl: operator CLI for ltvsync (see README "ltvctl"). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "lt_cred.h"
#include "lt_log.h"

static const char usage[] =
    "usage: ltvctl [--brokers HOSTS] [--redis URL] [--json] [--yes] COMMAND ...\n"
    "\n"
    "  integration add (--file FILE | --id ID --api-username U --password-ref REF\n"
    "                  --account-name N --account-username U --timezone ZONE\n"
    "                  --import-from DAY|all [--brand B] [--base-url URL] [--currency C]\n"
    "                  [--sync-interval 15m] [--streams a,b] [--max-rps N] [--max-in-flight N])\n"
    "  integration update ID [same flags]   (a timezone change needs --yes: it re-dates all "
    "events)\n"
    "  integration remove ID | list | show ID\n"
    "  integration test (ID | --file FILE | flags)   one CRM call, explains failures\n"
    "  sync ID [--from DAY --to DAY] [--streams a,b]  resync a range (live cursor untouched)\n"
    "  status [ID] [--json] [--watch]\n"
    "  replay ID | --all                      rebuild events from ltvsync.raw (no CRM calls)\n"
    "  reconcile ID --from DAY --to DAY [--json]  CRM daily summary beside ltvsync's totals\n"
    "  dlq list [--json] | dlq retry           dead letters; retry re-sends each one once\n"
    "  secrets keygen [--kid K]              print a new seal key line (KID BASE64KEY)\n"
    "  secrets seal ID < PASSWORD_FILE       print password_ref sealed:v1:... for ID\n"
    "  secrets rotate [--json]               re-seal passwords of older keys with the first "
    "key\n"
    "                                        of LTVSYNC_SEAL_KEY_FILE\n"
    "  topics create                         create every ltvsync topic\n"
    "\n"
    "Settings come from LTVSYNC_* (see docs/CONFIGURATION.md); --brokers sets\n"
    "LTVSYNC_KAFKA_BOOTSTRAP_SERVERS and --redis LTVSYNC_REDIS_URL.\n"
    "Exit codes: 0 ok, 1 failure, 2 usage.\n";

/* Pulls the global options out of argv wherever they stand. */
static int global_opts(ctl_t *ctl, int *argc, char **argv)
{
    char errstr[256];
    int out = 0;
    for (int i = 0; i < *argc; i++) {
        const char *setting = NULL;
        if (!strcmp(argv[i], "--brokers"))
            setting = "KAFKA_BOOTSTRAP_SERVERS";
        else if (!strcmp(argv[i], "--redis"))
            setting = "REDIS_URL";
        if (setting) {
            if (i + 1 >= *argc) {
                fprintf(stderr, "ltvctl: %s needs a value\n", argv[i]);
                return -1;
            }
            if (lt_config_set(ctl->cfg, setting, argv[++i], errstr, sizeof(errstr)) != LT_OK) {
                fprintf(stderr, "ltvctl: %s\n", errstr);
                return -1;
            }
            continue;
        }
        /* global flags are taken out too, so they may precede the command */
        if (!strcmp(argv[i], "--json"))
            ctl->json = 1;
        else if (!strcmp(argv[i], "--yes"))
            ctl->yes = 1;
        else
            argv[out++] = argv[i];
    }
    *argc = out;
    return 0;
}

int main(int argc, char **argv)
{
    ctl_res_t res = {0};
    ctl_t ctl = {.out = stdout, .err = stderr, .res = &res};
    char errstr[512];
    const char *cmd;
    int rc = CTL_USAGE;

    if (lt_cred_no_core_dumps() != 0) /* it reads CRM passwords (integration test) */
        fprintf(stderr, "ltvctl: core dumps could not be turned off: %s\n", strerror(errno));
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CTL_USAGE : CTL_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("ltvctl %s\n", LTVSYNC_VERSION);
        return CTL_OK;
    }
    /* Library and module logs (warn and up) go to stderr: stdout is the
     * command's output, which scripts parse (--json). */
    lt_log_init("ltvctl", LT_LOG_WARN);
    lt_log_to(stderr);
    ctl.cfg = lt_config_new(LT_SVC_CTL);
    if (!ctl.cfg ||
        lt_config_load(ctl.cfg, getenv("LTVSYNC_CONFIG_FILE"), errstr, sizeof(errstr)) != LT_OK) {
        fprintf(stderr, "ltvctl: %s\n", ctl.cfg ? errstr : "out of memory");
        rc = CTL_FAIL;
        goto end;
    }
    argc--, argv++;
    if (global_opts(&ctl, &argc, argv) < 0 || argc < 1)
        goto end;
    cmd = argv[0];
    if (!strcmp(cmd, "integration") && argc >= 2) {
        ctl.argc = argc - 2, ctl.argv = argv + 2;
        rc = ctl_integration(&ctl, argv[1]);
    } else if (!strcmp(cmd, "topics") && argc >= 2) {
        ctl.argc = argc - 2, ctl.argv = argv + 2;
        rc = ctl_topics(&ctl, argv[1]);
    } else if (!strcmp(cmd, "sync")) {
        ctl.argc = argc - 1, ctl.argv = argv + 1;
        rc = ctl_sync(&ctl);
    } else if (!strcmp(cmd, "dlq") && argc >= 2) {
        ctl.argc = argc - 2, ctl.argv = argv + 2;
        rc = ctl_dlq(&ctl, argv[1]);
    } else if (!strcmp(cmd, "secrets") && argc >= 2) {
        ctl.argc = argc - 2, ctl.argv = argv + 2;
        rc = ctl_secrets(&ctl, argv[1]);
    } else if (!strcmp(cmd, "replay")) {
        ctl.argc = argc - 1, ctl.argv = argv + 1;
        rc = ctl_replay(&ctl);
    } else if (!strcmp(cmd, "reconcile")) {
        ctl.argc = argc - 1, ctl.argv = argv + 1;
        rc = ctl_reconcile(&ctl);
    } else if (!strcmp(cmd, "status")) {
        ctl.argc = argc - 1, ctl.argv = argv + 1;
        rc = ctl_status(&ctl);
    } else {
        fprintf(stderr, "ltvctl: unknown command \"%s\"\n\n%s", cmd, usage);
    }
end:
    if (rc == CTL_USAGE && argc >= 1)
        fprintf(stderr, "(ltvctl --help for usage)\n");
    lt_config_destroy(ctl.cfg);
    return rc;
}
