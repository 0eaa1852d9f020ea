/* lt_clock: the clocks and the interruptible sleep every service uses. */
#ifndef LT_CLOCK_H
#define LT_CLOCK_H

/* Wall-clock milliseconds since the epoch (timestamps, Redis-stored times). */
long long lt_clock_now_ms(void);
/* Monotonic milliseconds (intervals and deadlines). */
long long lt_clock_mono_ms(void);
/* Sleeps ms in steps of at most 100 ms; returns -1 as soon as lt_signal_stop
 * is set (shutdown), else 0. */
int lt_clock_nap_ms(long long ms);

#endif
