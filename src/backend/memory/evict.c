/*
 * evict: what the memory backend's store does to stay under maxmemory and to reclaim expired keys —
 * redis's evict.c and activeExpireCycle on the layout of store_int.h.
 *
 * LRU, LFU and volatile-ttl use redis's approximation: sample 5 keys per db, keep the best 16 candidates
 * seen so far in an eviction pool (kept across calls), evict the best. The pool holds entry pointers;
 * store__delete_entry forgets an entry and a moved entry is retargeted, so a pool slot never dangles, and
 * scores are recomputed before each choice, so a key touched since it was pooled is judged by its new
 * idle time. The random policies pick a random key (or volatile key), rotating dbs. Pinned entries (a
 * write in progress) are never picked. Everything here runs on the loop thread, inside one store call.
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "backend/memory/rng.h"
#include "backend/memory/store_int.h"
#include "util/clock.h"

/* ---- LRU / LFU, as redis's evict.c -------------------------------------------------------------- */

#define LRU_CLOCK_MAX ((1u << 24) - 1)
#define LRU_CLOCK_RESOLUTION 1000   /* ms per LRU clock tick */
#define LFU_INIT_VAL 5              /* a new key's counter, so it is not evicted before it is used */
#define LFU_LOG_FACTOR 10           /* lfu-log-factor: ~1M hits to saturate the counter */
#define LFU_DECAY_TIME 1            /* lfu-decay-time: minutes per counter decrement when idle */

static inline int policy_is_lfu(store_policy_t p)
{
    return p == STORE_ALLKEYS_LFU || p == STORE_VOLATILE_LFU;
}

static inline int policy_is_volatile(store_policy_t p)
{
    return p == STORE_VOLATILE_LRU || p == STORE_VOLATILE_LFU || p == STORE_VOLATILE_TTL ||
           p == STORE_VOLATILE_RANDOM;
}

static inline uint32_t lru_clock(void)
{
    return (uint32_t)((unsigned long long)clock_ms() / LRU_CLOCK_RESOLUTION) & LRU_CLOCK_MAX;
}

/* Milliseconds since e was last touched (redis's estimateObjectIdleTime; the clock wraps every 194
 * days, after which idle times are understated, as in redis). */
static unsigned long long lru_idle_ms(const store_entry_t *e)
{
    uint32_t now = lru_clock();
    uint32_t then = e->lru;
    unsigned long long ticks = now >= then ? now - then : (unsigned long long)LRU_CLOCK_MAX - then + now;
    return ticks * LRU_CLOCK_RESOLUTION;
}

static inline uint32_t lfu_minutes(void)
{
    return (uint32_t)(((unsigned long long)clock_ms() / 60000) & 0xFFFF);
}

/* The LFU counter of e after decay: one less per LFU_DECAY_TIME minutes since it was last touched. */
static unsigned lfu_decayed(const store_entry_t *e)
{
    uint32_t ldt = e->lru >> 8, now = lfu_minutes();
    unsigned counter = e->lru & 255;
    unsigned elapsed = now >= ldt ? now - ldt : 65535 - ldt + now;
    unsigned periods = elapsed / LFU_DECAY_TIME;
    return periods > counter ? 0 : counter - periods;
}

/* Logarithmic increment: the higher the counter, the less likely a hit bumps it. */
static unsigned lfu_log_incr(store_t *s, unsigned counter)
{
    if (counter == 255)
        return 255;
    double base = counter > LFU_INIT_VAL ? (double)(counter - LFU_INIT_VAL) : 0.0;
    double p = 1.0 / (base * LFU_LOG_FACTOR + 1);
    return rng_double(&s->rng) < p ? counter + 1 : counter;
}

/* The LRU/LFU field of a key just created. */
void store__init_access(store_t *s, store_entry_t *e)
{
    if (policy_is_lfu(s->policy))
        e->lru = (lfu_minutes() << 8) | LFU_INIT_VAL;
    else
        e->lru = lru_clock();
}

/* Record an access (a read without NOTOUCH, or an overwrite). */
void store__touch(store_t *s, store_entry_t *e)
{
    if (policy_is_lfu(s->policy))
        e->lru = (lfu_minutes() << 8) | lfu_log_incr(s, lfu_decayed(e));
    else
        e->lru = lru_clock();
}

/* ---- eviction pool ------------------------------------------------------------------------------ */

static void pool_drop(store_t *s, int i)
{
    memmove(&s->pool[i], &s->pool[i + 1], (size_t)(s->npool - i - 1) * sizeof(s->pool[0]));
    s->npool--;
}

void store__pool_forget(store_t *s, const store_entry_t *e)
{
    for (int i = s->npool - 1; i >= 0; i--)
        if (s->pool[i].e == e)
            pool_drop(s, i);
}

void store__pool_retarget(store_t *s, const store_entry_t *old, store_entry_t *e)
{
    for (int i = 0; i < s->npool; i++)
        if (s->pool[i].e == old)
            s->pool[i].e = e;
}

void store__pool_forget_db(store_t *s, int db)
{
    for (int i = s->npool - 1; i >= 0; i--)
        if (s->pool[i].db == db)
            pool_drop(s, i);
}

/* How much e deserves eviction under the current policy; expired keys first of all. */
static unsigned long long evict_score(const store_t *s, const store_entry_t *e, long long now)
{
    if (entry_expired(e, now))
        return ULLONG_MAX;
    switch (s->policy) {
    case STORE_ALLKEYS_LFU:
    case STORE_VOLATILE_LFU:
        return 255 - lfu_decayed(e);
    case STORE_VOLATILE_TTL:
        return ULLONG_MAX - 1 - (unsigned long long)e->expire;
    default:
        return lru_idle_ms(e);
    }
}

/* Insert a candidate, keeping the pool sorted and its best EVPOOL_SIZE members; a key already pooled
 * takes its new score. */
static void pool_consider(store_t *s, int db, store_entry_t *e, unsigned long long score)
{
    store__pool_forget(s, e);
    if (e->pinned)
        return;                 /* being written: not a candidate (and dropped if it was one) */
    if (s->npool == EVPOOL_SIZE) {
        if (score <= s->pool[0].score)
            return;
        pool_drop(s, 0);
    }
    int k = s->npool;
    while (k > 0 && s->pool[k - 1].score > score) {
        s->pool[k] = s->pool[k - 1];
        k--;
    }
    s->pool[k] = (evict_cand_t){ .e = e, .db = db, .score = score };
    s->npool++;
}

/* Rescore the pooled candidates (they may have been touched, or lost their expiry) and re-sort. */
static void pool_refresh(store_t *s, long long now)
{
    int n = s->npool;
    evict_cand_t old[EVPOOL_SIZE];

    memcpy(old, s->pool, (size_t)n * sizeof(old[0]));
    s->npool = 0;
    for (int i = 0; i < n; i++) {
        if (policy_is_volatile(s->policy) && old[i].e->expire < 0)
            continue;
        pool_consider(s, old[i].db, old[i].e, evict_score(s, old[i].e, now));
    }
}

/* Add up to EVICT_SAMPLES keys of db (volatile keys only under a volatile-* policy) to the pool. */
static void pool_populate(store_t *s, int db, long long now)
{
    store_db_t *d = &s->db[db];
    store_entry_t *cand[EVICT_SAMPLES];
    size_t n = 0;

    if (policy_is_volatile(s->policy)) {
        /* Independent random slots (not a run: slot order follows insertion order, which often
         * follows access patterns), distinct, and all of them when there are few. */
        if (d->nvol <= EVICT_SAMPLES) {
            for (; n < d->nvol; n++)
                cand[n] = d->vol[n];
        } else {
            for (int tries = 0; n < EVICT_SAMPLES && tries < 4 * EVICT_SAMPLES; tries++) {
                store_entry_t *e = d->vol[rng_next(&s->rng) % d->nvol];
                size_t j = 0;
                while (j < n && cand[j] != e)
                    j++;
                if (j == n)
                    cand[n++] = e;
            }
        }
    } else {
        dict_node_t *nodes[EVICT_SAMPLES];
        n = dict_sample(&d->keys, nodes, EVICT_SAMPLES);
        for (size_t i = 0; i < n; i++)
            cand[i] = ENTRY_OF(nodes[i]);
    }
    for (size_t i = 0; i < n; i++)
        pool_consider(s, db, cand[i], evict_score(s, cand[i], now));
}

/* ---- eviction ----------------------------------------------------------------------------------- */

/* Remove e to make room: counted as an expiry if it had expired anyway, else as an eviction. */
static void evict_entry(store_t *s, int db, store_entry_t *e)
{
    if (entry_expired(e, clock_ms()))
        s->stats.expired_keys++;
    else
        s->stats.evicted_keys++;
    store__delete_entry(s, &s->db[db], e);
}

static void unpinned_cb(void *priv, dict_node_t *n)
{
    store_entry_t **found = priv;

    if (*found == NULL && !ENTRY_OF(n)->pinned)
        *found = ENTRY_OF(n);
}

/* The first key of d the policy may evict (a volatile one under a volatile-* policy) that is not pinned,
 * or NULL: a walk of the db, for when sampling met only pinned keys (a write pinning most of them). */
static store_entry_t *first_unpinned(const store_t *s, store_db_t *d)
{
    store_entry_t *found = NULL;
    uint64_t cursor = 0;

    if (policy_is_volatile(s->policy)) {
        for (size_t i = 0; i < d->nvol; i++)
            if (!d->vol[i]->pinned)
                return d->vol[i];
        return NULL;
    }
    if (dict_size(&d->keys) == 0)
        return NULL;
    do
        cursor = dict_scan(&d->keys, cursor, unpinned_cb, &found);
    while (cursor != 0 && found == NULL);
    return found;
}

/* A random key of d that the random policy may evict and that is not pinned, or NULL. */
static store_entry_t *random_victim(store_t *s, store_db_t *d)
{
    for (int tries = 0; tries < PINNED_REDRAWS; tries++) {
        store_entry_t *e;
        if (s->policy == STORE_VOLATILE_RANDOM) {
            if (d->nvol == 0)
                return NULL;
            e = d->vol[rng_next(&s->rng) % d->nvol];
        } else {
            dict_node_t *n = dict_random(&d->keys);
            if (n == NULL)
                return NULL;
            e = ENTRY_OF(n);
        }
        if (!e->pinned)
            return e;
    }
    return first_unpinned(s, d);
}

/* allkeys-random / volatile-random: a random key of the next db that has one. */
static int evict_random(store_t *s)
{
    for (int i = 0; i < s->ndb; i++) {
        int db = (s->evict_db + i) % s->ndb;
        store_entry_t *e = random_victim(s, &s->db[db]);
        if (e) {
            s->evict_db = (db + 1) % s->ndb;
            evict_entry(s, db, e);
            return 0;
        }
    }
    return -1;
}

/* LRU / LFU / TTL: refresh the pool, add samples from every db, evict the best candidate. When the
 * samples held only pinned keys, any key the policy allows goes instead. */
static int evict_pooled(store_t *s)
{
    long long now = clock_ms();

    pool_refresh(s, now);
    for (int db = 0; db < s->ndb; db++)
        pool_populate(s, db, now);
    if (s->npool == 0) {
        for (int db = 0; db < s->ndb; db++) {
            store_entry_t *e = first_unpinned(s, &s->db[db]);
            if (e) {
                evict_entry(s, db, e);
                return 0;
            }
        }
        return -1;
    }
    evict_cand_t best = s->pool[--s->npool];
    evict_entry(s, best.db, best.e);
    return 0;
}

/*
 * Evict one unpinned key at a time until needed more bytes fit; kept is what the pinned entries cost
 * (they stay whatever happens). A request that could not fit even with every other key gone fails at
 * once rather than emptying the store for nothing. Each round removes one key or fails, so this ends.
 */
int store__make_room(store_t *s, size_t needed, size_t kept)
{
    if (s->maxmemory == 0)
        return 0;
    if (needed > s->maxmemory || kept > s->maxmemory - needed)
        return -1;
    while (!store__fits(s, needed)) {
        int rc;
        switch (s->policy) {
        case STORE_NOEVICTION:
            return -1;
        case STORE_ALLKEYS_RANDOM:
        case STORE_VOLATILE_RANDOM:
            rc = evict_random(s);
            break;
        default:
            rc = evict_pooled(s);
            break;
        }
        if (rc < 0)
            return -1;
    }
    return 0;
}

int store_make_room(store_t *s, size_t needed)
{
    return store__make_room(s, needed, 0);
}

/*
 * redis's activeExpireCycle, simplified: for each db in turn (continuing across calls from where the
 * last one stopped), draw EXPIRE_SAMPLES random volatile keys, delete the expired ones, and draw again
 * while more than 25% of a draw had expired — the sign that many more are waiting. Stops when the budget
 * is spent (checked after each draw, so every call makes some progress). Also moves a few buckets of any
 * pending rehash, like redis's activerehashing, so an idle table does not keep two tables forever.
 */
size_t store_expire_cycle(store_t *s, long long budget_us)
{
    long long start = clock_us_monotonic();
    long long now = clock_ms();
    size_t removed = 0;

    if (budget_us <= 0)
        return 0;
    for (int i = 0; i < s->ndb; i++) {
        int db = s->expire_db;
        store_db_t *d = &s->db[db];

        /* Advance first, as redis does: a db full of expired keys cannot starve the next ones. */
        s->expire_db = (db + 1) % s->ndb;
        dict_rehash(&d->keys, ACTIVE_REHASH_BUCKETS);
        for (;;) {
            size_t sampled = 0, expired = 0;
            while (sampled < EXPIRE_SAMPLES && d->nvol > 0) {
                store_entry_t *e = d->vol[rng_next(&s->rng) % d->nvol];
                sampled++;
                if (entry_expired(e, now)) {
                    store__delete_entry(s, d, e);
                    s->stats.expired_keys++;
                    expired++;
                }
            }
            removed += expired;
            if (clock_us_monotonic() - start >= budget_us)
                return removed;
            if (sampled == 0 || expired * 100 <= sampled * EXPIRE_REPEAT_PERCENT)
                break;
        }
    }
    return removed;
}
