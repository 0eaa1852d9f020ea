/* lt_signal: SIGTERM and SIGINT set a flag; SIGPIPE is ignored.
 * Handlers only write a volatile sig_atomic_t; loops poll lt_signal_stop. */
#ifndef LT_SIGNAL_H
#define LT_SIGNAL_H

#include <signal.h>

extern volatile sig_atomic_t lt_signal_stop;

/* Installs the handlers (sigaction, SA_RESTART off so blocking calls wake). */
void lt_signal_install(void);

#endif
