#include "util/clock.h"

#include <time.h>

static long long cached_ms;

long long clock_ms(void)
{
    return cached_ms ? cached_ms : clock_refresh();
}

long long clock_refresh(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    cached_ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    return cached_ms;
}

void clock_set_ms(long long ms)
{
    cached_ms = ms;
}

long long clock_us_monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
