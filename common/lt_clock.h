/* lt_clock: the clocks and the interruptible sleep every service uses. */
#ifndef LT_CLOCK_H
#define LT_CLOCK_H

#include <time.h>

/* Wall-clock milliseconds since the epoch (timestamps, Redis-stored times). */
long long lt_clock_now_ms(void);
/* Monotonic milliseconds (intervals and deadlines). */
long long lt_clock_mono_ms(void);
/* The absolute time ms from now on clock clk (CLOCK_REALTIME for a default
 * condition variable, CLOCK_MONOTONIC for one set to it): the deadline of a
 * pthread_cond_timedwait. */
void lt_clock_deadline(clockid_t clk, long long ms, struct timespec *ts);
/* Sleeps ms in steps of at most 100 ms; returns -1 as soon as lt_signal_stop
 * is set (shutdown), else 0. */
int lt_clock_nap_ms(long long ms);

#endif
