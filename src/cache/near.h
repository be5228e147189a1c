/*
 * near: the near tier's data structure — decoded values of hot keys kept in the daemon's memory, in
 * front of an upstream Redis, and dropped when Redis's client-side-caching invalidation messages name
 * their key.
 *
 * Only the data structure: no I/O, no event loop, no clock. The caller passes now_ms, a monotonic
 * millisecond clock, to the calls that look at expiry. Synchronous and single-threaded: every call
 * finishes before it returns; nothing locks.
 *
 * Keys are (db, key) pairs, but Redis's invalidations name keys only: near_invalidate(key) drops the
 * key's entries in every database. Keys and values are binary-safe bytes of any length (empty and
 * NUL-containing keys included). near_put copies both; near_get returns a slice into the tier's own
 * copy, valid until the next call that changes the tier (near_put, near_get, near_invalidate,
 * near_flush, near_expire_some, near_configure, near_set_prefixes, near_destroy).
 *
 * Tickets close the race between a read and an invalidation that crosses it: take near_ticket() before
 * the read leaves for the upstream and pass it to near_put with the reply. When the key was invalidated
 * (or the tier flushed) after the ticket was taken, the reply may be older than the invalidation, and
 * near_put refuses it. Generations are kept per bucket of keys (NEAR_GENS of them), not per key, so an
 * invalidation also makes tickets stale for the keys sharing its bucket: a refusal too many, never a
 * stale value kept.
 *
 * Memory: stats.bytes counts, for every entry, the size of its header + key length + value length, and
 * never exceeds max_bytes after near_put or near_configure: least recently used entries are evicted
 * first. Besides that, a near_t holds a fixed generation array (NEAR_GENS * 8 bytes = 512 KiB), its
 * prefix list, and a bucket array of 1024 pointers, doubled whenever the entries outnumber them (it does
 * not shrink); the number of entries is itself bounded by max_bytes.
 *
 * Hash flooding: keys are hashed with SipHash-2-4 under a random key drawn per near_t, so clients cannot
 * choose keys that collide.
 *
 * Errors: there are none to report. Allocation failure aborts (util/mem.h); a broken invariant or a
 * caller's bug (a negative db or ttl_ms, an unknown flush cause) stops the process through CHECK.
 */
#ifndef CACHETORYD_CACHE_NEAR_H
#define CACHETORYD_CACHE_NEAR_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* Generation buckets of the tickets: a power of two. */
#define NEAR_GENS 65536

typedef struct near near_t;

enum near_flush_cause {
    NEAR_FLUSH_UPSTREAM,    /* an invalidation with no keys: FLUSHDB / FLUSHALL upstream */
    NEAR_FLUSH_TRACKING,    /* tracking lost or uncertain (connection lost, PING unanswered, refused) */
    NEAR_FLUSH_CLIENT,      /* a client's FLUSHDB / FLUSHALL through this daemon */
    NEAR_FLUSH_WRITE,       /* a forwarded write whose keys are not known */
    NEAR_FLUSH_CONFIG,      /* a reload changed what may be kept */
    NEAR_FLUSH_NCAUSES
};

typedef struct near_stats {
    size_t entries;                       /* entries held */
    size_t bytes;                         /* their cost: header + key + value bytes each */
    size_t max_bytes;                     /* the bound on bytes */
    unsigned long long hits;              /* near_get found a live entry */
    unsigned long long misses;            /* near_get did not (an expired entry included) */
    unsigned long long invalidations;     /* keys named by invalidation messages (near_invalidate from_upstream=1) */
    unsigned long long invalidated;       /* entries those dropped */
    unsigned long long writes;            /* near_invalidate from_upstream=0 calls (this daemon's own writes) */
    unsigned long long flushes[NEAR_FLUSH_NCAUSES];   /* near_flush calls, by cause */
    unsigned long long evictions;         /* entries dropped to stay within max_bytes */
    unsigned long long expired;           /* entries dropped because their TTL passed */
    unsigned long long stored;            /* near_put that kept the value */
    unsigned long long races;             /* near_put refused: the key changed after the ticket */
    unsigned long long too_large;         /* near_put refused: value over max_value, or the entry alone
                                             over max_bytes */
    unsigned long long reconfigured;      /* entries dropped by near_configure / near_set_prefixes because
                                             the new max_value or prefixes exclude them */
    size_t buckets;                       /* hash table slots (not in bytes): 1024, doubled whenever the
                                             entries outnumber them, never shrunk */
} near_stats_t;

/* max_bytes: memory bound (entries' keys + values + per-entry overhead, counted like Redis's maxmemory
 * roughly: count sizeof(entry) + key len + value len); max_value: values longer are not kept; ttl_ms: an
 * upper bound on an entry's life (0 = none). */
near_t *near_create(size_t max_bytes, size_t max_value, long long ttl_ms);
void near_destroy(near_t *n);                      /* NULL ok */
/* What an entry of a klen-byte key and a vlen-byte value counts against max_bytes: its header + klen +
 * vlen (so a caller can size max_bytes, and tests can fill it exactly). */
size_t near_entry_size(size_t klen, size_t vlen);
/* New limits (a reload); entries over the new max_bytes are evicted (LRU), entries longer than max_value
 * dropped; ttl_ms applies to entries kept from now on. */
void near_configure(near_t *n, size_t max_bytes, size_t max_value, long long ttl_ms);
/* Only keys starting with one of these prefixes may be kept (n == 0: any key). Copies them. Entries of
 * keys the new list does not cover are dropped (counted in reconfigured). An empty prefix covers every
 * key. */
void near_set_prefixes(near_t *n, const bytes_t *prefixes, size_t count);
int near_covers(const near_t *n, bytes_t key);    /* 1 if the key may be kept (prefixes, policy) */
/* Which of the keys the prefixes cover may be kept, and for how long at most: fn(arg, key) is -1 for a key
 * not to keep, else the upper bound on its entry's life in ms (0: none), in place of ttl_ms. NULL: every
 * key, ttl_ms. Entries the policy excludes are dropped now (counted in reconfigured). */
typedef long long near_policy_fn(void *arg, bytes_t key);
void near_set_policy(near_t *n, near_policy_fn *fn, void *arg);
/* The policy changed its mind (a reload): drop the entries it excludes now. */
void near_refilter(near_t *n);

/* Lookup of (db, key): 1 with *val pointing at the stored bytes (valid until the next call that changes
 * the near tier), or 0. An entry past its expiry (now_ms) is dropped and counted as expired, and is a
 * miss. Counts hits and misses. A hit moves the entry to the LRU head. An entry expires when now_ms
 * reaches its expiry (now_ms >= expiry). */
int near_get(near_t *n, int db, bytes_t key, long long now_ms, bytes_t *val);

/* A ticket taken before a read leaves for the upstream. */
uint64_t near_ticket(const near_t *n);
/* Keep val for (db, key), read upstream with a ticket: refused (0) if the key was invalidated or the
 * tier flushed after the ticket was taken (counted as races), if val is over max_value (too_large),
 * if the key is not covered, or if ttl_left_ms == -2 or 0. ttl_left_ms: the key's remaining TTL upstream
 * in ms (-1: none). The entry expires at now_ms + min(ttl_left_ms if >= 0, ttl_ms if > 0). Replaces an
 * existing entry for (db, key). Evicts least recently used entries to stay within max_bytes (an entry
 * bigger than max_bytes is not kept). Returns 1 when kept.
 * Any other negative ttl_left_ms is refused like -2. When a covered key is refused for its value or its
 * TTL (too large, -2, 0), an entry held for (db, key) is dropped too: the read shows it out of date. A
 * race refusal leaves the entry alone: the refused reply may be older than what is held. */
int near_put(near_t *n, uint64_t ticket, int db, bytes_t key, bytes_t val, long long ttl_left_ms, long long now_ms);

/* The key changed upstream (from_upstream = 1, an invalidation message) or this daemon writes it
 * (0): its entries in EVERY database go, and every ticket taken before this call becomes stale for that
 * key (and, harmlessly, for keys sharing its generation bucket). */
void near_invalidate(near_t *n, bytes_t key, int from_upstream);
/* Drop every entry; every ticket taken before is stale for every key. Counts the cause. */
void near_flush(near_t *n, enum near_flush_cause cause);
/* Drop up to `budget` expired entries (call it from a timer); returns how many were dropped.
 * It examines at most `budget` entries, walking from the LRU tail towards the head; the next call goes
 * on where this one stopped (from the tail again once the head was reached), so that expired entries
 * behind a run of live ones are reached too. */
size_t near_expire_some(near_t *n, long long now_ms, size_t budget);

void near_stats(const near_t *n, near_stats_t *st);
void near_stats_reset(near_t *n);                  /* counters to 0 (not entries/bytes/max_bytes/buckets) */
const char *near_flush_cause_name(enum near_flush_cause c);   /* "upstream", "tracking", "client", "write", "config" */

#endif
