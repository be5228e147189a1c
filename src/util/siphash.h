/*
 * siphash: SipHash, a keyed 64-bit hash of short inputs (Aumasson & Bernstein), for the hash tables that
 * hold client-chosen keys (the memory backend's keyspace, the near tier). Keyed with random bytes per
 * table owner, it makes bucket positions unpredictable to clients, so a client cannot send keys that all
 * collide (hash flooding) and turn O(1) lookups into O(n).
 *
 * Hand-written (small, public-domain algorithm) because no Debian package offers it as a plain C
 * library: libsodium has SipHash-2-4 only behind its own init and types, and the other copies are
 * private to the programs that carry them.
 */
#ifndef CACHETORYD_UTIL_SIPHASH_H
#define CACHETORYD_UTIL_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

#define SIPHASH_KEY_LEN 16

/* SipHash-1-3: one compression round, three finalisation rounds. What the memory backend's tables use
 * (as redis and CPython do): strong enough against flooding, and about twice as fast as 2-4 on short
 * keys. */
uint64_t siphash13(const void *in, size_t len, const uint8_t key[SIPHASH_KEY_LEN]);

/* SipHash-2-4, the paper's recommended parameters; same code with more rounds. The near tier's table
 * uses it, and the reference test vectors check the implementation through it. */
uint64_t siphash24(const void *in, size_t len, const uint8_t key[SIPHASH_KEY_LEN]);

#endif
