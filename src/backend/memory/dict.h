/*
 * dict: an intrusive hash table with incremental rehashing, after redis's dict.c.
 *
 * Intrusive: the table stores pointers to caller-owned nodes that embed a dict_node_t (the chain link),
 * and reads a node's key through a callback. A key then costs one allocation (the caller's, holding
 * link + key + value together) instead of redis's three (dictEntry, key sds, value object).
 *
 * Incremental rehashing: growing or shrinking allocates a second table and moves a bucket or so per
 * operation (and more from dict_rehash(), which a timer may call), so no single call pays for the whole
 * table. During a rehash lookups look in both tables and inserts go to the new one. The table grows when
 * it holds as many nodes as buckets (load 1) and shrinks when at most one bucket in 8 is used.
 *
 * Keys are hashed with SipHash-1-3 under a per-dict random seed (see siphash.h). The dict never copies
 * keys, never frees nodes except through dict_clear's callback, and is not thread-safe.
 */
#ifndef CACHETORYD_STORE_DICT_H
#define CACHETORYD_STORE_DICT_H

#include <stddef.h>
#include <stdint.h>

#include "util/siphash.h"

typedef struct dict_node {
    struct dict_node *next;         /* next node in the same bucket, or NULL */
} dict_node_t;

/* The key bytes of node n (stored in n's owner); *len receives their length. */
typedef const void *dict_key_fn(const dict_node_t *n, size_t *len);

/* Called for each node by dict_scan (must not modify the dict) and dict_clear (may free the node). */
typedef void dict_node_fn(void *priv, dict_node_t *n);

typedef struct dict {
    dict_key_fn *key;               /* reads a node's key */
    dict_node_t **table[2];         /* [0] the table; [1] the table being filled while rehashing */
    size_t size[2];                 /* buckets in each table: 0 or a power of two */
    size_t used[2];                 /* nodes in each table */
    size_t rehashidx;               /* next bucket of table[0] to move, or DICT_NOT_REHASHING */
    uint64_t rng;                   /* state for dict_random / dict_sample */
    uint8_t seed[SIPHASH_KEY_LEN];  /* SipHash key */
} dict_t;

#define DICT_NOT_REHASHING SIZE_MAX
#define DICT_MIN_SIZE 4             /* smallest table, in buckets */

/* Where a node sits: the link that points to it, and which table holds that link. Valid until the
 * next call that modifies the dict (any call but dict_scan and the size queries). */
typedef struct dict_pos {
    dict_node_t **ref;
    int table;
    uint64_t hash;          /* of the key looked up, found or not: dict_add_located reuses it */
} dict_pos_t;

/* Set up an empty dict (no memory is allocated until the first insert). */
void dict_init(dict_t *d, dict_key_fn *key, const uint8_t seed[SIPHASH_KEY_LEN], uint64_t rng_seed);

/* Remove every node, calling free_fn (if not NULL) on each after it is unlinked, and free the tables.
 * The dict is then empty, holds no memory and may be used again: this is also its deinit. */
void dict_clear(dict_t *d, dict_node_fn *free_fn, void *priv);

static inline size_t dict_size(const dict_t *d) { return d->used[0] + d->used[1]; }
static inline size_t dict_buckets(const dict_t *d) { return d->size[0] + d->size[1]; }
static inline int dict_is_rehashing(const dict_t *d) { return d->rehashidx != DICT_NOT_REHASHING; }

/* The node with this key, or NULL. */
dict_node_t *dict_find(dict_t *d, const void *key, size_t len);

/* Find key's node and where it is linked: 1 and *pos filled, or 0 if absent. For callers that decide
 * after looking whether to unlink or replace the node without hashing the key again. */
int dict_locate(dict_t *d, const void *key, size_t len, dict_pos_t *pos);

/* Unlink the node at pos (from dict_locate, with no modifying call since). The caller owns it again. */
void dict_remove_at(dict_t *d, const dict_pos_t *pos);

/* Put n in place of the node at pos; n must have the same key. The old node is unlinked, not freed:
 * the caller frees it (after copying from it if it wants). */
void dict_replace_at(dict_t *d, const dict_pos_t *pos, dict_node_t *n);

/* Insert n, whose key must not be in the dict (checked: a duplicate aborts). */
void dict_add(dict_t *d, dict_node_t *n);
/* The same for a key dict_locate just did not find (pos from it, with only dict_remove_at since): the
 * key is not hashed again. */
void dict_add_located(dict_t *d, dict_node_t *n, const dict_pos_t *pos);

/* Unlink and return the node with this key, or NULL. */
dict_node_t *dict_unlink(dict_t *d, const void *key, size_t len);

/* Unlink n, which must be in the dict (checked). */
void dict_unlink_node(dict_t *d, dict_node_t *n);

/* Move up to n buckets of a rehash in progress (visiting at most 10n empty ones), first starting a
 * shrink if the table has become sparse (like redis's cron does). Returns 1 if a rehash is still in
 * progress, 0 if there is none now. For a timer; operations already rehash a bucket each. */
int dict_rehash(dict_t *d, size_t n);

/*
 * One step of redis's SCAN: call fn on the nodes of the bucket(s) at cursor and return the next cursor,
 * 0 when the walk is complete. Start with 0. Every node present during the whole walk is visited at
 * least once, even if the table grows, shrinks or rehashes between steps (some may be visited twice).
 * fn must not modify the dict.
 */
uint64_t dict_scan(const dict_t *d, uint64_t cursor, dict_node_fn *fn, void *priv);

/* A random node, or NULL if the dict is empty: a random non-empty bucket, then a random node of its
 * chain (nodes in longer chains are a little less likely; with load <= 1 chains are short). */
dict_node_t *dict_random(dict_t *d);

/* Up to count nodes from a random stretch of buckets, into out; returns how many. Cheap (no per-node
 * random draw) and meant for eviction sampling: the nodes are not independent, and if the walk wraps
 * around a small table a node may appear twice. */
size_t dict_sample(dict_t *d, dict_node_t **out, size_t count);

#endif
