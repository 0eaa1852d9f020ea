#include "lt_daemon.h"

#include <errno.h>
#include <string.h>
#include "lt_cred.h"
#include "lt_log.h"
#include "lt_signal.h"

int lt_daemon_start(int argc, char **argv, const char *progname, unsigned service,
                    const char *extra_usage, lt_config_t **cfgp)
{
    int rc = lt_config_from_args(argc, argv, progname, service, extra_usage, cfgp);
    if (rc >= 0)
        return rc;
    lt_signal_install();
    if (lt_cred_no_core_dumps() != 0)
        lt_warn("core dumps could not be turned off: %s", strerror(errno));
    return -1;
}
