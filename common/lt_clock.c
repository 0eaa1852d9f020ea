/* lt_clock: clocks and an interruptible sleep. */
#include "lt_clock.h"

#include <time.h>

#include "lt_signal.h"

static long long clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long lt_clock_now_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

long long lt_clock_mono_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

int lt_clock_nap_ms(long long ms)
{
    while (ms > 0 && !lt_signal_stop) {
        long long step = ms < 100 ? ms : 100;
        struct timespec ts = {0, (long)step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
    return lt_signal_stop ? -1 : 0;
}

void lt_clock_deadline(clockid_t clk, long long ms, struct timespec *ts)
{
    clock_gettime(clk, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}
