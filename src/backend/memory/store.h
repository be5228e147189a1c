/*
 * store: the memory backend's keyspace — numbered databases of string keys with millisecond expiry,
 * bounded by maxmemory with redis's eviction policies.
 *
 * Synchronous and single-threaded: every call finishes before it returns. backend/memory.c wraps it in
 * the asynchronous backend interface. Values are opaque bytes (already encoded by the codec chain).
 *
 * Time is clock_ms() (util/clock.h). A key whose expiry is <= now does not exist: lookups delete it
 * lazily (counted in expired_keys), and store_expire_cycle() reclaims expired keys that are never read,
 * a bounded slice at a time, as redis's active expire cycle does.
 *
 * Memory accounting (store_used): for every key, its key and value bytes (as stored, i.e. encoded) plus a
 * fixed per-key overhead (the entry header, its share of the hash table) — a deterministic figure
 * reported in INFO memory and compared with maxmemory. The writes (store_set, store_mset, store_rename)
 * enforce the limit themselves: a write is charged the difference between the cost of what it stores and
 * of what it replaces; when that does not fit, other keys are evicted by the policy — never a key being
 * written — and if it still cannot fit (noeviction, nothing evictable left, or more than the whole limit)
 * the write returns STORE_OOM having changed nothing but the evictions, and the caller answers redis's
 * OOM error. So store_used() <= maxmemory always holds, except after the limit was lowered:
 * store_make_room(s, 0) evicts down to it (redis's check before a denyoom command).
 *
 * Layout, costs and the eviction method are described at the top of store.c.
 */
#ifndef CACHETORYD_STORE_STORE_H
#define CACHETORYD_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

typedef struct store store_t;
typedef struct store_entry store_entry_t;   /* a key with its value; private layout */

typedef enum store_policy {
    STORE_NOEVICTION,
    STORE_ALLKEYS_LRU,
    STORE_VOLATILE_LRU,
    STORE_ALLKEYS_LFU,
    STORE_VOLATILE_LFU,
    STORE_VOLATILE_TTL,
    STORE_ALLKEYS_RANDOM,
    STORE_VOLATILE_RANDOM,
} store_policy_t;

typedef struct store_stats {
    unsigned long long expired_keys;    /* keys removed because their TTL passed (lazy or active) */
    unsigned long long evicted_keys;    /* keys removed by the maxmemory policy */
    unsigned long long keyspace_hits;   /* store_lookup found the key */
    unsigned long long keyspace_misses; /* store_lookup did not */
} store_stats_t;

/* Lookup flags. */
#define STORE_LOOKUP_NOTOUCH  1     /* do not update LRU/LFU (TYPE, TTL, EXISTS: Redis's LOOKUP_NOTOUCH) */
#define STORE_LOOKUP_NOSTATS  2     /* do not count a hit or miss (a write's lookup: Redis's lookupKeyWrite) */

/* store_set flags. */
#define STORE_SET_KEEPTTL     1     /* an existing key keeps its expiry; expire_at is ignored if so */

/* A write that does not fit under maxmemory even after evicting (see the top of this file). */
#define STORE_OOM             (-2)

/*
 * The "key modified" signal (what WATCH listens to, as redis's signalModifiedKey): fn(ctx, db, key, klen)
 * is called after every change of a key — a write (even of the same value), a deletion, an expiry (lazy
 * or active), an eviction, an expiry set or removed, both names of a rename — with the key's bytes, valid
 * only during the call. Not for flushes: store_flush says nothing per key (whoever listens checks what
 * existed before flushing, store_peek). fn is called from inside the store's operations and must not
 * call the store. NULL: no signal (the default).
 */
typedef void store_notify_fn(void *ctx, int db, const char *key, size_t klen);
void store_set_notify(store_t *s, store_notify_fn *fn, void *ctx);

/* ndb >= 1 databases, numbered 0..ndb-1. Every call taking a db aborts on an index out of range (the
 * command layer validates SELECT). Seeds the hash tables from getrandom(). */
store_t *store_create(int ndb);
void store_destroy(store_t *s);                                             /* NULL is fine */
/* 0 = no limit. Takes effect at the next write or store_make_room (lowering it evicts nothing by itself). */
void store_set_limit(store_t *s, size_t maxmemory, store_policy_t policy);
const char *store_policy_name(store_policy_t p);

/* The entry for key in db, or NULL if absent or expired. The pointer is valid until the next call that
 * modifies the store. */
store_entry_t *store_lookup(store_t *s, int db, const char *key, size_t klen, int flags);
/* The entry for key in db as it is stored, expired or not, with no side effect at all (no lazy deletion,
 * no LRU/LFU, no hit or miss counted): for checks that must not change the store (WATCH's). Valid as
 * store_lookup's. */
const store_entry_t *store_peek(store_t *s, int db, const char *key, size_t klen);
/* 1 when the entry's expiry is at or before now: it exists no longer, though not yet reclaimed. */
int store_entry_expired(const store_entry_t *e);
/* The entry's bytes, owned by the store; not NUL-terminated. */
const char *store_entry_key(const store_entry_t *e, size_t *klen);
const char *store_entry_value(const store_entry_t *e, size_t *vlen);
long long store_entry_expire(const store_entry_t *e);     /* absolute ms, or -1 for none */

/* Bytes that a key of klen with a value of vlen counts for in store_used():
 * klen + vlen + a fixed overhead (48 on 64-bit: the 32-byte entry header, one hash-bucket slot, one
 * volatile-array slot; the same whether or not the key has an expiry). Saturates at SIZE_MAX. */
size_t store_entry_cost(size_t klen, size_t vlen);

/* Insert or replace key (the bytes are copied; val may point into the key's current value). expire_at:
 * absolute ms, or -1 for none (removes an existing expiry unless STORE_SET_KEEPTTL). An expire_at at or
 * before now deletes the key instead, like redis's SET ... PXAT <past> (not counted in expired_keys).
 * An overwrite counts as an access for LRU/LFU. Key and value must each be shorter than 4 GiB (aborts
 * otherwise; proto-max-bulk-len keeps them far below). Returns 0, or STORE_OOM when the growth
 * (store_entry_cost(klen, vlen) minus the cost of the entry replaced) does not fit even after evicting
 * other keys: the key is then as it was (value and expiry). */
int store_set(store_t *s, int db, const char *key, size_t klen, const char *val, size_t vlen,
              long long expire_at, int flags);

/* Set n keys (keys[i] to vals[i], expire_at as for store_set — or expires[i] when expires is not NULL —,
 * no flags) as one write: charged the sum of the differences (a key given twice counts both values), all
 * written or none. nx: only if none of the keys exists. Returns 1 written, 0 (nx) a key exists, STORE_OOM
 * as store_set (nothing written). */
int store_mset(store_t *s, int db, const bytes_t *keys, const bytes_t *vals, size_t n, long long expire_at,
               const long long *expires, int nx);

/* Remove key; returns 1 if it existed (and was not expired), 0 otherwise. */
int store_delete(store_t *s, int db, const char *key, size_t klen);

/* Set (expire_at >= 0) or remove (-1) the expiry of an existing key. Returns 1 if the key exists. An
 * expire_at at or before now deletes the key, as redis does (a deletion, not counted in expired_keys). */
int store_set_expire(store_t *s, int db, const char *key, size_t klen, long long expire_at);

/* Rename src to dst within db, keeping the value, the expiry and the LRU/LFU data; dst is replaced
 * unless nx. Returns 1 renamed, 0 dst exists and nx, -1 src does not exist, STORE_OOM a longer name does
 * not fit (as store_set; only possible when dst does not exist). src == dst: 1 (0 if nx), nothing
 * changes. */
int store_rename(store_t *s, int db, const char *src, size_t slen, const char *dst, size_t dlen, int nx);

/* Evict until store_used() + needed fits in maxmemory. 0 on success (always with no limit), -1 if it
 * cannot (noeviction, no key the policy may evict, or needed > maxmemory: then nothing is evicted).
 * Expired keys met while sampling go first and count as expired_keys; the rest count as evicted_keys.
 * The writes call it themselves; needed = 0 asks whether the store is within its limit, evicting to get
 * there if it is not (the check before a command that may grow memory, as redis's denyoom). */
int store_make_room(store_t *s, size_t needed);

/* Redis's SCAN contract: start with cursor 0; every key present for the whole scan is returned at
 * least once; returns the next cursor, 0 when done. fn is called for roughly count buckets' worth of
 * live keys; it must not modify the store. Expired keys are not passed to fn; those met are deleted
 * (counted) after fn has run, which the contract allows. */
typedef void store_scan_fn(void *priv, const store_entry_t *e);
uint64_t store_scan(store_t *s, int db, uint64_t cursor, size_t count, store_scan_fn *fn, void *priv);

/* A random live key, or NULL when db is empty. Expired keys drawn are deleted (counted) and another is
 * drawn, 100 times at most: a db of almost only expired keys may answer NULL until they are reclaimed. */
store_entry_t *store_random(store_t *s, int db);

size_t store_dbsize(const store_t *s, int db);          /* keys, may include expired ones not yet reclaimed */
size_t store_expires(const store_t *s, int db);         /* keys with an expiry */
void store_flush(store_t *s, int db);                   /* db < 0: all; frees now, O(keys) */
size_t store_used(const store_t *s);                    /* accounted bytes, see above */
size_t store_maxmemory(const store_t *s);
store_policy_t store_policy(const store_t *s);
const store_stats_t *store_stats(const store_t *s);
void store_stats_reset(store_t *s);

/* One slice of active expiry: sample keys with an expiry in every db and delete expired ones, for at
 * most budget_us microseconds (checked after each sample of 20, so a call always makes some progress;
 * budget_us <= 0 does nothing). Called from a timer (10 times a second). Also advances pending hash
 * table resizes a little. Returns keys removed. */
size_t store_expire_cycle(store_t *s, long long budget_us);

#endif
