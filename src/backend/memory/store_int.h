/*
 * store_int: the memory backend's keyspace from the inside — the layout of an entry, a db and the store
 * (see the top of store.c), shared by store.c (the keyspace: entries, reads, writes, SCAN, flush) and
 * evict.c (LRU/LFU, the eviction pool, eviction under maxmemory, active expiry). Private to those two:
 * everyone else uses store.h. Functions named store__ are internal to them; a call that breaks the
 * invariants below aborts (util/check.h).
 *
 * Ownership: the store owns every entry; an entry is referenced by its dict chain link, its volatile-array
 * slot (when it has an expiry) and at most one eviction-pool slot, and is freed only by store.c's
 * entry_release (evict.c reaches it through store__delete_entry), which drops all three and its
 * accounting.
 */
#ifndef CACHETORYD_BACKEND_MEMORY_STORE_INT_H
#define CACHETORYD_BACKEND_MEMORY_STORE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "backend/memory/dict.h"
#include "util/siphash.h"
#include "backend/memory/store.h"

struct store_entry {
    dict_node_t node;           /* chain link in the db's dict */
    int64_t expire;             /* absolute unix time in ms, or -1 for none */
    uint32_t klen;              /* key bytes at data[0] */
    uint32_t vlen;              /* value bytes at data[klen] */
    uint32_t lru : 24;          /* LRU: clock in seconds mod 2^24; LFU: minutes mod 2^16 << 8 | counter */
    uint32_t pinned : 1;        /* being written: eviction must not pick it (set only inside one call) */
    uint32_t spare : 7;         /* unused */
    uint32_t vidx;              /* index in the db's volatile array while expire >= 0 */
    char data[];                /* key, then value; neither is NUL-terminated */
};

_Static_assert(sizeof(struct store_entry) <= 32, "store_entry header grew beyond 32 bytes");

#define ENTRY_OF(n) ((store_entry_t *)(void *)((char *)(n) - offsetof(store_entry_t, node)))

/* Per-key overhead counted by store_entry_cost (see the top of the file). */
#define ENTRY_OVERHEAD (sizeof(store_entry_t) + 2 * sizeof(void *))

typedef struct store_db {
    dict_t keys;                /* every key of the db */
    store_entry_t **vol;        /* the keys with an expiry, in no order (entry->vidx is the index) */
    size_t nvol;                /* entries in vol */
    size_t volcap;              /* slots allocated in vol */
} store_db_t;

/* redis's defaults: maxmemory-samples 5, EVPOOL_SIZE 16. */
#define EVICT_SAMPLES 5
#define EVPOOL_SIZE 16

typedef struct evict_cand {
    store_entry_t *e;           /* candidate entry (never dangling: entry_release forgets it) */
    int db;                     /* its db */
    unsigned long long score;   /* higher = evict sooner */
} evict_cand_t;

/* Active expiry, as redis's activeExpireCycle: sample 20 volatile keys, repeat while more than 25% were
 * expired. */
#define EXPIRE_SAMPLES 20
#define EXPIRE_REPEAT_PERCENT 25
#define ACTIVE_REHASH_BUCKETS 100   /* buckets of a pending rehash moved per db per expire cycle */
#define RANDOM_TRIES 100            /* store_random gives up after this many expired keys */
#define SCAN_RECLAIM_MAX 64         /* expired keys a scan step can reclaim */
#define PINNED_REDRAWS 4            /* random draws that met a pinned key before walking the db */

struct store {
    store_db_t *db;             /* ndb databases */
    int ndb;
    size_t used;                /* sum of store_entry_cost over all keys */
    size_t maxmemory;           /* 0 = no limit */
    store_policy_t policy;
    store_stats_t stats;
    uint64_t rng;               /* sampling, LFU coin */
    int expire_db;              /* db where the next expire cycle starts */
    int evict_db;               /* db where the next random eviction looks first */
    int npool;                  /* candidates in pool */
    evict_cand_t pool[EVPOOL_SIZE]; /* sorted by ascending score: the best candidate is last */
    uint8_t seed[SIPHASH_KEY_LEN];  /* SipHash key shared by the dbs' dicts */
    store_notify_fn *notify;    /* the "key modified" signal (store_set_notify), or NULL */
    void *notify_ctx;
};

/* e has an expiry that is at or before now (ms). */
static inline int entry_expired(const store_entry_t *e, long long now)
{
    return e->expire >= 0 && e->expire <= now;
}

/* What e counts for in store_used() (store_entry_cost of its lengths). */
static inline size_t entry_cost(const store_entry_t *e)
{
    return ENTRY_OVERHEAD + e->klen + e->vlen;
}

/* needed more bytes fit under maxmemory (which is not 0) as things are. */
static inline int store__fits(const store_t *s, size_t needed)
{
    return s->used <= s->maxmemory && needed <= s->maxmemory - s->used;
}

/* ---- store.c ---- */

/* Unlink e from db d and free it, dropping every reference and its accounting (not counted in stats). */
void store__delete_entry(store_t *s, store_db_t *d, store_entry_t *e);

/* ---- evict.c ---- */

/* The LRU/LFU field of a key just created; of a key accessed (a read without NOTOUCH, or an overwrite). */
void store__init_access(store_t *s, store_entry_t *e);
void store__touch(store_t *s, store_entry_t *e);

/* The eviction pool: forget e (it is being freed), point old's slot at e (it moved), forget a db's
 * candidates (it is being flushed). */
void store__pool_forget(store_t *s, const store_entry_t *e);
void store__pool_retarget(store_t *s, const store_entry_t *old, store_entry_t *e);
void store__pool_forget_db(store_t *s, int db);

/* Evict by the policy until needed more bytes fit; kept is what the caller's pinned entries cost. 0, or
 * -1 when even evicting every key the policy allows would not make room. */
int store__make_room(store_t *s, size_t needed, size_t kept);

#endif
