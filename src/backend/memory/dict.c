/*
 * Intrusive hash table with incremental rehashing; see dict.h for the model. The algorithms (rehash
 * step, reverse-binary scan cursor, random bucket walk) follow redis's dict.c so its guarantees carry
 * over; the difference is that nodes are the caller's and keys are read through a callback.
 */
#include "backend/memory/dict.h"

#include <stdlib.h>
#include <string.h>

#include "backend/memory/rng.h"
#include "util/check.h"
#include "util/mem.h"

/* A shrink happens when at most 1 bucket in DICT_MIN_FILL holds a node (redis 7.4's HASHTABLE_MIN_FILL);
 * growing at load 1 and shrinking at load 1/8 leaves room enough that a table never flaps. */
#define DICT_MIN_FILL 8

static inline uint64_t dict_hash(const dict_t *d, const void *key, size_t len)
{
    return siphash13(key, len, d->seed);
}

static inline int node_has_key(const dict_t *d, const dict_node_t *n, const void *key, size_t len)
{
    size_t nlen;
    const void *nkey = d->key(n, &nlen);
    return nlen == len && memcmp(nkey, key, len) == 0;
}

static inline uint64_t node_hash(const dict_t *d, const dict_node_t *n)
{
    size_t len;
    const void *key = d->key(n, &len);
    return dict_hash(d, key, len);
}

void dict_init(dict_t *d, dict_key_fn *key, const uint8_t seed[SIPHASH_KEY_LEN], uint64_t rng_seed)
{
    memset(d, 0, sizeof(*d));
    d->key = key;
    d->rehashidx = DICT_NOT_REHASHING;
    d->rng = rng_seed;
    memcpy(d->seed, seed, SIPHASH_KEY_LEN);
}

void dict_clear(dict_t *d, dict_node_fn *free_fn, void *priv)
{
    for (int t = 0; t < 2; t++) {
        for (size_t i = 0; i < d->size[t] && d->used[t] > 0; i++) {
            dict_node_t *n = d->table[t][i];
            while (n) {
                dict_node_t *next = n->next;
                n->next = NULL;
                d->used[t]--;
                if (free_fn)
                    free_fn(priv, n);
                n = next;
            }
            d->table[t][i] = NULL;
        }
        CHECK(d->used[t] == 0);
        mem_free(d->table[t]);
        d->table[t] = NULL;
        d->size[t] = 0;
    }
    d->rehashidx = DICT_NOT_REHASHING;
}

/* Smallest power of two >= n, and at least DICT_MIN_SIZE. */
static size_t next_pow2(size_t n)
{
    size_t s = DICT_MIN_SIZE;
    while (s < n) {
        CHECK(s <= SIZE_MAX / 2);
        s <<= 1;
    }
    return s;
}

/* Table 1 has become the table: make it table 0. */
static void finish_rehash(dict_t *d)
{
    CHECK(d->used[0] == 0);
    mem_free(d->table[0]);
    d->table[0] = d->table[1];
    d->size[0] = d->size[1];
    d->used[0] = d->used[1];
    d->table[1] = NULL;
    d->size[1] = 0;
    d->used[1] = 0;
    d->rehashidx = DICT_NOT_REHASHING;
}

/*
 * Start moving to a table of next_pow2(target) buckets (the first table is simply allocated). Does
 * nothing while a rehash is in progress or if the size would not change. An empty dict switches at once.
 */
static void start_resize(dict_t *d, size_t target)
{
    size_t size = next_pow2(target);

    if (dict_is_rehashing(d) || size == d->size[0])
        return;
    CHECK(size <= SIZE_MAX / sizeof(dict_node_t *));
    if (d->table[0] == NULL) {
        d->table[0] = mem_calloc(size, sizeof(dict_node_t *));
        d->size[0] = size;
        return;
    }
    d->table[1] = mem_calloc(size, sizeof(dict_node_t *));
    d->size[1] = size;
    d->rehashidx = 0;
    if (d->used[0] == 0)
        finish_rehash(d);
}

/* Shrink after a removal if the table has become sparse (redis 7.4 does it there too, rather than
 * waiting for a timer). */
static void shrink_if_needed(dict_t *d)
{
    if (dict_is_rehashing(d) || d->size[0] <= DICT_MIN_SIZE)
        return;
    if (d->used[0] * DICT_MIN_FILL <= d->size[0])
        start_resize(d, d->used[0]);
}

int dict_rehash(dict_t *d, size_t n)
{
    size_t empty_visits = n * 10;

    /* A table left sparse by removals made while a rehash was running has not shrunk yet. */
    if (!dict_is_rehashing(d))
        shrink_if_needed(d);
    if (!dict_is_rehashing(d))
        return 0;
    while (n-- > 0 && d->used[0] > 0) {
        /* used[0] > 0 means a non-empty bucket remains at or after rehashidx. */
        while (d->table[0][d->rehashidx] == NULL) {
            d->rehashidx++;
            CHECK(d->rehashidx < d->size[0]);
            if (--empty_visits == 0)
                return 1;
        }
        dict_node_t *node = d->table[0][d->rehashidx];
        while (node) {
            dict_node_t *next = node->next;
            size_t idx = (size_t)node_hash(d, node) & (d->size[1] - 1);
            node->next = d->table[1][idx];
            d->table[1][idx] = node;
            d->used[0]--;
            d->used[1]++;
            node = next;
        }
        d->table[0][d->rehashidx] = NULL;
        d->rehashidx++;
    }
    if (d->used[0] == 0) {
        finish_rehash(d);
        /* Removals during the rehash may already call for the next shrink. */
        shrink_if_needed(d);
        return dict_is_rehashing(d);
    }
    return 1;
}

/* One bucket of rehash per operation, as redis does when no safe iterator is open. */
static inline void rehash_step(dict_t *d)
{
    if (dict_is_rehashing(d))
        dict_rehash(d, 1);
}

/* Look key up (hash h) in both tables without a rehash step; fills pos if found. */
static int locate_hashed(dict_t *d, uint64_t h, const void *key, size_t len, dict_pos_t *pos)
{
    for (int t = 0; t < 2; t++) {
        if (d->size[t] == 0)
            continue;
        size_t idx = (size_t)h & (d->size[t] - 1);
        /* Buckets below rehashidx of table 0 are already moved: skip them. */
        if (t == 0 && dict_is_rehashing(d) && idx < d->rehashidx)
            continue;
        for (dict_node_t **ref = &d->table[t][idx]; *ref; ref = &(*ref)->next) {
            if (node_has_key(d, *ref, key, len)) {
                pos->ref = ref;
                pos->table = t;
                return 1;
            }
        }
        if (!dict_is_rehashing(d))
            break;
    }
    return 0;
}

int dict_locate(dict_t *d, const void *key, size_t len, dict_pos_t *pos)
{
    pos->hash = dict_hash(d, key, len);
    if (dict_size(d) == 0)
        return 0;
    rehash_step(d);
    return locate_hashed(d, pos->hash, key, len, pos);
}

dict_node_t *dict_find(dict_t *d, const void *key, size_t len)
{
    dict_pos_t pos;
    return dict_locate(d, key, len, &pos) ? *pos.ref : NULL;
}

void dict_remove_at(dict_t *d, const dict_pos_t *pos)
{
    dict_node_t *n = *pos->ref;

    CHECK(n != NULL && d->used[pos->table] > 0);
    *pos->ref = n->next;
    n->next = NULL;
    d->used[pos->table]--;
    shrink_if_needed(d);
}

void dict_replace_at(dict_t *d, const dict_pos_t *pos, dict_node_t *n)
{
    dict_node_t *old = *pos->ref;

    CHECK(old != NULL);
    if (n == old)
        return;
    n->next = old->next;
    *pos->ref = n;
    old->next = NULL;
}

/*
 * Insert n. Grows the table first when it is full (load 1): to twice the node count, rounded to a power
 * of two. During a rehash the node goes to the new table, so the old one only ever empties.
 */
static void add_hashed(dict_t *d, dict_node_t *n, uint64_t h)
{
    size_t len;
    const void *key = d->key(n, &len);
    dict_pos_t pos;

    rehash_step(d);
    if (d->size[0] == 0)
        start_resize(d, DICT_MIN_SIZE);
    else if (!dict_is_rehashing(d) && d->used[0] >= d->size[0])
        start_resize(d, d->used[0] + 1);

    CHECK(!locate_hashed(d, h, key, len, &pos));
    int t = dict_is_rehashing(d) ? 1 : 0;
    size_t idx = (size_t)h & (d->size[t] - 1);
    n->next = d->table[t][idx];
    d->table[t][idx] = n;
    d->used[t]++;
}

void dict_add(dict_t *d, dict_node_t *n)
{
    size_t len;
    const void *key = d->key(n, &len);
    add_hashed(d, n, dict_hash(d, key, len));
}

void dict_add_located(dict_t *d, dict_node_t *n, const dict_pos_t *pos)
{
    add_hashed(d, n, pos->hash);
}

dict_node_t *dict_unlink(dict_t *d, const void *key, size_t len)
{
    dict_pos_t pos;

    if (!dict_locate(d, key, len, &pos))
        return NULL;
    dict_node_t *n = *pos.ref;
    dict_remove_at(d, &pos);
    return n;
}

void dict_unlink_node(dict_t *d, dict_node_t *n)
{
    size_t len;
    const void *key = d->key(n, &len);
    dict_pos_t pos;

    CHECK(dict_locate(d, key, len, &pos) && *pos.ref == n);
    dict_remove_at(d, &pos);
}

static inline uint64_t rev64(uint64_t v)
{
    v = ((v >> 1) & 0x5555555555555555ULL) | ((v & 0x5555555555555555ULL) << 1);
    v = ((v >> 2) & 0x3333333333333333ULL) | ((v & 0x3333333333333333ULL) << 2);
    v = ((v >> 4) & 0x0F0F0F0F0F0F0F0FULL) | ((v & 0x0F0F0F0F0F0F0F0FULL) << 4);
    v = ((v >> 8) & 0x00FF00FF00FF00FFULL) | ((v & 0x00FF00FF00FF00FFULL) << 8);
    v = ((v >> 16) & 0x0000FFFF0000FFFFULL) | ((v & 0x0000FFFF0000FFFFULL) << 16);
    return (v >> 32) | (v << 32);
}

static void emit_bucket(dict_node_t *n, dict_node_fn *fn, void *priv)
{
    while (n) {
        dict_node_t *next = n->next;
        fn(priv, n);
        n = next;
    }
}

/*
 * redis's reverse-binary cursor. The cursor counts up in bit-reversed order over the bucket index, so
 * that for tables of 2^k buckets, all buckets with the same low bits are visited consecutively. When the
 * table grows, a bucket b splits into b and b + size (high bit added) — both still ahead of the cursor
 * if b was; when it shrinks, buckets merge into ones whose higher-order cursor bits were already
 * covered. Hence no key present throughout is skipped. While rehashing, the cursor's bucket in the
 * smaller table is emitted, then all buckets of the larger table that expand it.
 */
uint64_t dict_scan(const dict_t *d, uint64_t v, dict_node_fn *fn, void *priv)
{
    if (dict_size(d) == 0)
        return 0;

    if (!dict_is_rehashing(d)) {
        uint64_t m0 = d->size[0] - 1;
        emit_bucket(d->table[0][v & m0], fn, priv);
        v |= ~m0;
        v = rev64(v);
        v++;
        return rev64(v);
    }

    int small = d->size[0] <= d->size[1] ? 0 : 1, large = 1 - small;
    uint64_t m0 = d->size[small] - 1, m1 = d->size[large] - 1;

    emit_bucket(d->table[small][v & m0], fn, priv);
    do {
        emit_bucket(d->table[large][v & m1], fn, priv);
        v |= ~m1;
        v = rev64(v);
        v++;
        v = rev64(v);
    } while (v & (m0 ^ m1));
    return v;
}

/*
 * Random node: random buckets until a non-empty one (expected tries <= size/used, at most 8 outside a
 * rehash given the shrink rule), then a random node of its chain. During a rehash, buckets below
 * rehashidx of table 0 are known empty and are not drawn.
 */
dict_node_t *dict_random(dict_t *d)
{
    dict_node_t *n;

    if (dict_size(d) == 0)
        return NULL;
    rehash_step(d);
    if (dict_is_rehashing(d)) {
        size_t span = d->size[0] + d->size[1] - d->rehashidx;
        do {
            size_t h = d->rehashidx + (size_t)(rng_next(&d->rng) % span);
            n = h >= d->size[0] ? d->table[1][h - d->size[0]] : d->table[0][h];
        } while (n == NULL);
    } else {
        do {
            n = d->table[0][rng_next(&d->rng) & (d->size[0] - 1)];
        } while (n == NULL);
    }

    size_t chain = 0;
    for (dict_node_t *p = n; p; p = p->next)
        chain++;
    for (size_t k = (size_t)(rng_next(&d->rng) % chain); k > 0; k--)
        n = n->next;
    return n;
}

/*
 * redis's dictGetSomeKeys: walk buckets from a random one, collecting nodes, for at most 10 * count
 * bucket visits; after a run of empty buckets longer than count (and 5), jump to a new random place.
 */
size_t dict_sample(dict_t *d, dict_node_t **out, size_t count)
{
    size_t stored = 0;

    if (count > dict_size(d))
        count = dict_size(d);
    if (count == 0)
        return 0;
    for (size_t j = 0; j < count && dict_is_rehashing(d); j++)
        dict_rehash(d, 1);

    int tables = dict_is_rehashing(d) ? 2 : 1;
    size_t maxmask = d->size[0] - 1;
    if (tables > 1 && d->size[1] - 1 > maxmask)
        maxmask = d->size[1] - 1;

    size_t i = (size_t)rng_next(&d->rng) & maxmask;
    size_t emptylen = 0;
    size_t maxsteps = count * 10;
    while (stored < count && maxsteps-- > 0) {
        for (int t = 0; t < tables; t++) {
            /* Table 0 below rehashidx is empty: skip ahead, or to the part of table 1 beyond it. */
            if (tables == 2 && t == 0 && i < d->rehashidx) {
                if (i >= d->size[1])
                    i = d->rehashidx;
                else
                    continue;
            }
            if (i >= d->size[t])
                continue;
            dict_node_t *n = d->table[t][i];
            if (n == NULL) {
                emptylen++;
                if (emptylen >= 5 && emptylen > count) {
                    i = (size_t)rng_next(&d->rng) & maxmask;
                    emptylen = 0;
                }
                continue;
            }
            emptylen = 0;
            for (; n && stored < count; n = n->next)
                out[stored++] = n;
            if (stored == count)
                return stored;
        }
        i = (i + 1) & maxmask;
    }
    return stored;
}
