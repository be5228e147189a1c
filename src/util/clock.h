/*
 * Wall-clock time in milliseconds, cached.
 *
 * The server refreshes the cache once per loop iteration (before it handles a batch of input), so every
 * command of a batch sees one "now" — as redis does with its command time — and the hot path makes no
 * clock system call per key. Unit tests set the clock by hand.
 */
#ifndef CACHETORYD_UTIL_CLOCK_H
#define CACHETORYD_UTIL_CLOCK_H

long long clock_ms(void);           /* the cached time */
long long clock_refresh(void);      /* read the system clock into the cache; returns it */
void clock_set_ms(long long ms);    /* for tests: freeze the cache at ms */
long long clock_us_monotonic(void); /* for durations */

#endif
