/*
 * util/seed: random bytes for hash-table keys (siphash) and generator seeds, so that a client cannot
 * precompute a set of keys that collide. getrandom(), else /dev/urandom, else (a sandbox that forbids
 * both) a mix of the pid and addresses: weak, but still different per process.
 */
#ifndef CACHETORYD_UTIL_SEED_H
#define CACHETORYD_UTIL_SEED_H

#include <stddef.h>

void seed_bytes(void *buf, size_t len);

#endif
