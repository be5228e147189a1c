/*
 * rng: a small, fast, non-cryptographic pseudo-random generator (splitmix64) for sampling in the
 * keyspace: random buckets, eviction candidates, the LFU counter's coin. Each owner keeps its own
 * 64-bit state, seeded from getrandom(), so nothing is shared between stores and nothing locks.
 * Header-only: two lines of arithmetic used by dict.c and store.c.
 */
#ifndef CACHETORYD_STORE_RNG_H
#define CACHETORYD_STORE_RNG_H

#include <stdint.h>

/* The next 64 random bits; advances *state. Any state value, including 0, is a valid seed. */
static inline uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A uniform double in [0, 1). */
static inline double rng_double(uint64_t *state)
{
    return (double)(rng_next(state) >> 11) * (1.0 / 9007199254740992.0);
}

#endif
