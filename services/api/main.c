/* ltvsync-api: the control API behind "Connect with Konnektive" and the
 * operator console (README "Control API"). SIGTERM: stop accepting, let
 * running requests and replays end (up to 30 s), exit 0. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "api.h"
#include "lt_daemon.h"
#include "lt_log.h"
#include "lt_signal.h"

#define REPLAY_GRACE_MS 30000

int main(int argc, char **argv)
{
    static api_tokens_t tokens = {.mu = PTHREAD_MUTEX_INITIALIZER};
    lt_config_t *cfg = NULL;
    api_t *api;
    char errstr[512];
    int rc = lt_daemon_start(argc, argv, "ltvsync-api", LT_SVC_API,
                             "The control API and the operator console.", &cfg);
    if (rc >= 0)
        return rc;
    api_tokens_set_rate(&tokens, (double)lt_config_int(cfg, "API_RATE"));
    if (api_tokens_load(&tokens, lt_config_str(cfg, "API_TOKENS_FILE"), errstr, sizeof(errstr)) !=
        LT_OK) {
        lt_error("%s", errstr);
        lt_config_destroy(cfg);
        return 1;
    }
    if (!(api = api_start(cfg, &tokens, errstr, sizeof(errstr)))) {
        lt_error("%s", errstr);
        api_tokens_destroy(&tokens);
        lt_config_destroy(cfg);
        return 1;
    }
    lt_info("listening on port %d (%zu tokens); console at /", api_port(api), tokens.count);
    while (!lt_signal_stop) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    lt_info("stopping: finishing requests and replays");
    api_stop(api);
    api_ops_wait_replays(REPLAY_GRACE_MS);
    api_tokens_destroy(&tokens);
    lt_config_destroy(cfg);
    return 0;
}
