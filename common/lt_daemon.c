#include "lt_daemon.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include "lt_clock.h"
#include "lt_cred.h"
#include "lt_log.h"
#include "lt_signal.h"

static long long trim_every_ms;

/* Gives the pages that are free inside glibc's allocator back to the OS.
 * Each thread that allocates gets an arena of its own (a fetcher has one
 * per worker), and pages freed there stay resident: in the soak a
 * fetcher's RSS grew about 200 KiB a minute while its heap in use stayed
 * flat, and malloc_trim gave back 1 MiB at once. Signals stay with the
 * other threads. */
static void *trimmer(void *arg)
{
    (void)arg;
    while (lt_clock_nap_ms(trim_every_ms) == 0) /* ends at shutdown */
        malloc_trim(0);
    return NULL;
}

static void start_trimmer(long long every_ms)
{
    pthread_t t;
    sigset_t all, old;
    trim_every_ms = every_ms;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&t, NULL, trimmer, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        lt_warn("memory trim thread: %s (freed memory stays resident)", strerror(rc));
    else
        pthread_detach(t);
}

int lt_daemon_start(int argc, char **argv, const char *progname, unsigned service,
                    const char *extra_usage, lt_config_t **cfgp)
{
    int rc = lt_config_from_args(argc, argv, progname, service, extra_usage, cfgp);
    if (rc >= 0)
        return rc;
    lt_signal_install();
    if (lt_cred_no_core_dumps() != 0)
        lt_warn("core dumps could not be turned off: %s", strerror(errno));
    /* Before any thread: one arena (the default) keeps every thread's
     * blocks in the main heap. With glibc's default each thread that
     * allocates gets an arena of its own (a fetcher has 16 workers), pages
     * freed there stay resident. In six soaks with glibc's default one
     * fetcher's RSS grew 12.7-29 % each time; with one arena the larger
     * grew 9.2 and 13.8 % in two, from 1-2 MiB less (README, "Soak"). */
    if (lt_config_int(*cfgp, "MALLOC_ARENAS") > 0 &&
        mallopt(M_ARENA_MAX, (int)lt_config_int(*cfgp, "MALLOC_ARENAS")) != 1)
        lt_debug("MALLOC_ARENAS: not glibc's malloc (a sanitizer build), not applied");
    /* librdkafka's zstd compression makes and frees a 3.6 MiB context for
     * every batch it compresses (heaptrack of a soak's sink: its peak). glibc's
     * default threshold rises to the size of the largest mapped block
     * freed, so from the second batch on the context came from the main
     * heap: 3.7 MiB freed at its top, resident until the next trim, and
     * blocks allocated meanwhile above it could keep the heap from
     * shrinking. A fixed threshold (MALLOC_MMAP_THRESHOLD 1M) maps such
     * blocks on their own and gives them back when freed, at the price of
     * faulting the context in again for every batch (a fifth to a third
     * of the sink's rate in bench/sink.sh): an operator's choice, off by
     * default (README, "Soak"). */
    if (lt_config_int(*cfgp, "MALLOC_MMAP_THRESHOLD") > 0 &&
        mallopt(M_MMAP_THRESHOLD, (int)lt_config_int(*cfgp, "MALLOC_MMAP_THRESHOLD")) != 1)
        lt_debug("MALLOC_MMAP_THRESHOLD: not glibc's malloc (a sanitizer build), not applied");
    if (lt_config_int(*cfgp, "MEMORY_TRIM_INTERVAL") > 0)
        start_trimmer(lt_config_int(*cfgp, "MEMORY_TRIM_INTERVAL"));
    return -1;
}
