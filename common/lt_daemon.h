/* lt_daemon: what every ltvsync daemon does before its own start-up. */
#ifndef LT_DAEMON_H
#define LT_DAEMON_H

#include "lt_config.h"

/* lt_config_from_args (the common command line, the config, lt_log), then
 * SIGTERM/SIGINT handlers (lt_signal), no core dumps (lt_cred: a dump
 * would hold passwords), at most MALLOC_ARENAS malloc arenas, blocks of
 * MALLOC_MMAP_THRESHOLD or more mapped on their own and, every
 * MEMORY_TRIM_INTERVAL until shutdown, a
 * malloc_trim (a thread of its own, with every signal blocked). Returns -1
 * to go on with *cfgp loaded, or the exit code for main() as
 * lt_config_from_args does. */
int lt_daemon_start(int argc, char **argv, const char *progname, unsigned service,
                    const char *extra_usage, lt_config_t **cfgp);

#endif
