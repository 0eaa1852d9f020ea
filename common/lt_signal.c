/* lt_signal: SIGTERM/SIGINT request a stop; SIGPIPE is ignored so a closed
 * socket surfaces as EPIPE at the write instead of killing the process. */
#include "lt_signal.h"

#include <string.h>

volatile sig_atomic_t lt_signal_stop = 0;

static void on_stop(int sig)
{
    (void)sig;
    lt_signal_stop = 1;
}

void lt_signal_install(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: blocking calls return EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPIPE, &sa, NULL);
}
