/*
 * The memory backend's keyspace (see store.h for the contract).
 *
 * Layout. Each key is ONE allocation, a store_entry_t: a 32-byte header (chain link, expiry, lengths,
 * LRU/LFU field, index in the volatile array) followed by the key bytes and the value bytes. Each db is
 * an intrusive dict (dict.h) of entries plus a dense array of the entries that have an expiry
 * ("volatile" entries); an entry's vidx is its index there, so adding, removing and sampling volatile
 * keys are all O(1) (removal swaps the last element in). Compared with redis (dictEntry + key sds +
 * robj + value sds, and a second dictEntry in the expires dict), this saves three or four allocations
 * and their allocator overhead per key.
 *
 * References to an entry: its dict chain link, its volatile-array slot (if it has an expiry) and the
 * eviction pool. Every path that frees an entry goes through entry_release(), and the only path that
 * moves one (store_set with a value of another size) retargets all three.
 *
 * Accounting. store_used() is the sum of store_entry_cost() over all keys:
 *     cost = sizeof(store_entry_t) (32) + 8 (the key's share of the bucket array: load <= 1 means at
 *            least one 8-byte slot per key) + 8 (a volatile-array slot, charged to every key so that
 *            setting or removing an expiry never changes the figure) + klen + vlen
 * i.e. 48 bytes of overhead per key on a 64-bit build. It ignores the allocator's own rounding, so it is
 * the same on every machine and for every allocator; RSS is usually a few percent above it.
 *
 * Writes and the limit. A write is charged what it changes: the new entry's cost minus the cost of the
 * entry it replaces (and, for MSET, the sum of that over its keys). Only a write that grows used beyond
 * maxmemory evicts, and the entries it writes are pinned meanwhile (entry->pinned) so that eviction never
 * takes the key being written (which would lose its TTL and count a bogus eviction). If even evicting
 * every key the policy allows cannot make room, the write fails with STORE_OOM and changes nothing — so
 * used never exceeds maxmemory, except after the limit is lowered (store_make_room(s, 0) catches up).
 *
 * Eviction (LRU, LFU, TTL and random, with redis's sampled pool) and active expiry live in evict.c; the
 * layout above is declared in store_int.h, which the two files share. This file is the keyspace itself:
 * entries, lookups, writes under the limit, renames, SCAN, RANDOMKEY, flushes and the figures.
 */
#include "backend/memory/store_int.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "backend/memory/rng.h"
#include "util/check.h"
#include "util/clock.h"
#include "util/mem.h"
#include "util/seed.h"

/* ---- entries ---------------------------------------------------------------------------------- */

static const void *entry_dict_key(const dict_node_t *n, size_t *len)
{
    const store_entry_t *e = ENTRY_OF(n);
    *len = e->klen;
    return e->data;
}

size_t store_entry_cost(size_t klen, size_t vlen)
{
    if (klen > SIZE_MAX - ENTRY_OVERHEAD || vlen > SIZE_MAX - ENTRY_OVERHEAD - klen)
        return SIZE_MAX;
    return ENTRY_OVERHEAD + klen + vlen;
}

/* A new entry holding copies of key and val, with no expiry; the caller sets lru and links it. */
static store_entry_t *entry_create(const char *key, size_t klen, const char *val, size_t vlen)
{
    CHECK(klen <= UINT32_MAX && vlen <= UINT32_MAX);
    store_entry_t *e = mem_alloc(sizeof(*e) + klen + vlen);
    e->node.next = NULL;
    e->expire = -1;
    e->klen = (uint32_t)klen;
    e->vlen = (uint32_t)vlen;
    e->lru = 0;
    e->pinned = 0;
    e->spare = 0;
    e->vidx = 0;
    if (klen)
        memcpy(e->data, key, klen);
    if (vlen)
        memcpy(e->data + klen, val, vlen);
    return e;
}

const char *store_entry_key(const store_entry_t *e, size_t *klen)
{
    *klen = e->klen;
    return e->data;
}

const char *store_entry_value(const store_entry_t *e, size_t *vlen)
{
    *vlen = e->vlen;
    return e->data + e->klen;
}

long long store_entry_expire(const store_entry_t *e)
{
    return e->expire;
}

/* ---- volatile array ----------------------------------------------------------------------------- */

static void vol_add(store_db_t *d, store_entry_t *e)
{
    if (d->nvol == d->volcap) {
        d->volcap = d->volcap ? d->volcap * 2 : 16;
        d->vol = mem_realloc(d->vol, d->volcap * sizeof(*d->vol));
    }
    CHECK(d->nvol < UINT32_MAX);
    e->vidx = (uint32_t)d->nvol;
    d->vol[d->nvol++] = e;
}

/* Remove e by moving the last element into its slot; give memory back when the array is mostly idle. */
static void vol_remove(store_db_t *d, store_entry_t *e)
{
    CHECK(e->vidx < d->nvol && d->vol[e->vidx] == e);
    store_entry_t *last = d->vol[--d->nvol];
    d->vol[e->vidx] = last;
    last->vidx = e->vidx;
    if (d->nvol == 0) {
        mem_free(d->vol);
        d->vol = NULL;
        d->volcap = 0;
    } else if (d->volcap > 16 && d->nvol * 4 <= d->volcap) {
        d->volcap /= 2;
        d->vol = mem_realloc(d->vol, d->volcap * sizeof(*d->vol));
    }
}

/* Set or remove (-1) e's expiry, keeping the volatile array in step. */
static void entry_set_expire(store_db_t *d, store_entry_t *e, long long expire)
{
    if (expire < 0)
        expire = -1;
    if (e->expire < 0 && expire >= 0)
        vol_add(d, e);
    else if (e->expire >= 0 && expire < 0)
        vol_remove(d, e);
    e->expire = expire;
}

/* ---- store -------------------------------------------------------------------------------------- */

/* The db, which must exist: callers (SELECT, config) validate indexes, so a bad one here is a bug. */
static inline store_db_t *get_db(const store_t *s, int db)
{
    CHECK(db >= 0 && db < s->ndb);
    return &s->db[db];
}

store_t *store_create(int ndb)
{
    CHECK(ndb > 0);
    store_t *s = mem_calloc(1, sizeof(*s));
    s->ndb = ndb;
    s->db = mem_calloc((size_t)ndb, sizeof(*s->db));
    s->policy = STORE_NOEVICTION;
    seed_bytes(s->seed, sizeof(s->seed));
    seed_bytes(&s->rng, sizeof(s->rng));
    for (int i = 0; i < ndb; i++)
        dict_init(&s->db[i].keys, entry_dict_key, s->seed, rng_next(&s->rng));
    return s;
}

void store_destroy(store_t *s)
{
    if (s == NULL)
        return;
    store_flush(s, -1);
    mem_free(s->db);
    mem_free(s);
}

/*
 * Changing the policy empties the eviction pool (its scores mean something else). Keys keep their
 * LRU/LFU field as it is: after a switch between an LRU and an LFU policy their first scores are
 * meaningless until they are touched again — as in redis.
 */
void store_set_limit(store_t *s, size_t maxmemory, store_policy_t policy)
{
    if (policy != s->policy)
        s->npool = 0;
    s->maxmemory = maxmemory;
    s->policy = policy;
}

/* The "key modified" signal for key in db d (see store_set_notify). */
static void notify_modified(store_t *s, const store_db_t *d, const char *key, size_t klen)
{
    if (s->notify != NULL)
        s->notify(s->notify_ctx, (int)(d - s->db), key, klen);
}

void store_set_notify(store_t *s, store_notify_fn *fn, void *ctx)
{
    s->notify = fn;
    s->notify_ctx = ctx;
}

/* Free e, already unlinked from db d's dict, dropping its other references and its accounting. Every
 * deletion but a flush passes here (DEL, expiry, eviction, a rename's old names): the signal is given
 * here, once the key is gone. */
static void entry_release(store_t *s, store_db_t *d, store_entry_t *e)
{
    size_t cost = entry_cost(e);

    CHECK(!e->pinned);
    if (e->expire >= 0)
        vol_remove(d, e);
    store__pool_forget(s, e);
    CHECK(s->used >= cost);
    s->used -= cost;
    notify_modified(s, d, e->data, e->klen);
    mem_free(e);
}

static void delete_at(store_t *s, store_db_t *d, const dict_pos_t *pos)
{
    store_entry_t *e = ENTRY_OF(*pos->ref);
    dict_remove_at(&d->keys, pos);
    entry_release(s, d, e);
}

void store__delete_entry(store_t *s, store_db_t *d, store_entry_t *e)
{
    dict_unlink_node(&d->keys, &e->node);
    entry_release(s, d, e);
}

/* The live entry for key, with *pos where it is linked; an expired one is deleted (and counted) and
 * NULL returned, as for an absent key. */
static store_entry_t *lookup_live(store_t *s, store_db_t *d, const char *key, size_t klen, dict_pos_t *pos)
{
    if (!dict_locate(&d->keys, key, klen, pos))
        return NULL;
    store_entry_t *e = ENTRY_OF(*pos->ref);
    if (entry_expired(e, clock_ms())) {
        delete_at(s, d, pos);
        s->stats.expired_keys++;
        return NULL;
    }
    return e;
}

const store_entry_t *store_peek(store_t *s, int db, const char *key, size_t klen)
{
    dict_node_t *n = dict_find(&get_db(s, db)->keys, key, klen);
    return n ? ENTRY_OF(n) : NULL;
}

int store_entry_expired(const store_entry_t *e)
{
    return entry_expired(e, clock_ms());
}

store_entry_t *store_lookup(store_t *s, int db, const char *key, size_t klen, int flags)
{
    dict_pos_t pos;
    store_entry_t *e = lookup_live(s, get_db(s, db), key, klen, &pos);

    if (e && !(flags & STORE_LOOKUP_NOTOUCH))
        store__touch(s, e);
    if (!(flags & STORE_LOOKUP_NOSTATS)) {
        if (e)
            s->stats.keyspace_hits++;
        else
            s->stats.keyspace_misses++;
    }
    return e;
}

/*
 * Room for a write that replaces entries costing have bytes (pinned by the caller, 0 for a new key) with
 * entries costing need bytes. 0 when it store__fits (at once, or after evicting other keys), -1 when it cannot.
 * The fast path is a comparison: no limit, a write that does not grow, or one that store__fits.
 */
static int room_for(store_t *s, size_t need, size_t have)
{
    if (s->maxmemory == 0 || need <= have || store__fits(s, need - have))
        return 0;
    return store__make_room(s, need - have, have);
}

/*
 * store_set's body. With room set, a write that grows used beyond the limit first evicts other keys,
 * with this key pinned; without, the caller has made room for it (store_mset). Clears the key's pin.
 */
static int set_key(store_t *s, store_db_t *d, const char *key, size_t klen, const char *val, size_t vlen,
                   long long expire_at, int flags, int room)
{
    dict_pos_t pos;
    store_entry_t *e = lookup_live(s, d, key, klen, &pos);
    int keep = e && (flags & STORE_SET_KEEPTTL);

    if (!keep && expire_at >= 0 && expire_at <= clock_ms()) {
        if (e) {
            e->pinned = 0;
            delete_at(s, d, &pos);
        } else {
            notify_modified(s, d, key, klen);   /* written, expired at once: Redis signals it all the same */
        }
        return 0;
    }
    if (room && s->maxmemory != 0) {
        size_t need = store_entry_cost(klen, vlen), have = e ? entry_cost(e) : 0;
        if (need > have && !store__fits(s, need - have)) {
            /* The slow path: evict with this key pinned, then find its link again (evicting moves
             * other nodes of its chain, and may resize the table). */
            if (e)
                e->pinned = 1;
            int rc = store__make_room(s, need - have, have);
            if (e)
                e->pinned = 0;
            if (rc < 0)
                return STORE_OOM;
            CHECK(dict_locate(&d->keys, key, klen, &pos) == (e != NULL));
        }
    }

    if (e == NULL) {
        e = entry_create(key, klen, val, vlen);
        store__init_access(s, e);
        entry_set_expire(d, e, expire_at);
        dict_add_located(&d->keys, &e->node, &pos);
        s->used += entry_cost(e);
        notify_modified(s, d, key, klen);
        return 0;
    }

    long long expire = keep ? e->expire : expire_at;
    e->pinned = 0;
    if (e->vlen == vlen) {
        if (vlen)
            memmove(e->data + e->klen, val, vlen);   /* val may alias the old value */
    } else {
        store_entry_t *n = entry_create(e->data, e->klen, val, vlen);
        n->lru = e->lru;
        n->expire = e->expire;
        n->vidx = e->vidx;
        dict_replace_at(&d->keys, &pos, &n->node);
        if (e->expire >= 0)
            d->vol[e->vidx] = n;
        store__pool_retarget(s, e, n);
        s->used = s->used - entry_cost(e) + entry_cost(n);
        mem_free(e);
        e = n;
    }
    entry_set_expire(d, e, expire);
    store__touch(s, e);
    notify_modified(s, d, e->data, e->klen);
    return 0;
}

/*
 * Insert or replace. An overwrite with a value of the same length is done in place; otherwise a new
 * entry replaces the old one in its chain, volatile slot and pool slot (one allocation either way, and
 * never a realloc of a block still referenced). An overwrite counts as an access (redis's SET goes
 * through lookupKeyWrite): the LRU clock is refreshed, the LFU counter kept and bumped. An expire_at
 * already in the past deletes the key instead, as redis's SET ... PXAT <past> does (not counted as an
 * expiry). The key is hashed once, unless the write has to evict.
 */
int store_set(store_t *s, int db, const char *key, size_t klen, const char *val, size_t vlen,
              long long expire_at, int flags)
{
    return set_key(s, get_db(s, db), key, klen, val, vlen, expire_at, flags, 1);
}

/* Pin (on) or unpin the live entries of keys; returns the cost of those it pinned (a key given twice
 * is pinned, and counted, once). */
static size_t pin_keys(store_t *s, store_db_t *d, const bytes_t *keys, size_t n, int on)
{
    size_t cost = 0;
    dict_pos_t pos;

    for (size_t i = 0; i < n; i++) {
        store_entry_t *e = lookup_live(s, d, keys[i].ptr, keys[i].len, &pos);
        if (e == NULL || e->pinned == (unsigned)on)
            continue;
        e->pinned = on ? 1 : 0;
        cost += entry_cost(e);
    }
    return cost;
}

/*
 * All or nothing: the whole batch is charged first, then written without further checks. When the new
 * entries' total cost store__fits as it is (the common case) no key is looked up twice; otherwise the present
 * keys are pinned and their cost subtracted, eviction runs once for the difference, and the writes
 * clear the pins. A key given twice is charged for both values (never less than the truth).
 */
int store_mset(store_t *s, int db, const bytes_t *keys, const bytes_t *vals, size_t n, long long expire_at,
               const long long *expires, int nx)
{
    store_db_t *d = get_db(s, db);
    dict_pos_t pos;

    if (nx) {
        for (size_t i = 0; i < n; i++)
            if (lookup_live(s, d, keys[i].ptr, keys[i].len, &pos))
                return 0;
    }
    if (s->maxmemory != 0 && (expires != NULL || !(expire_at >= 0 && expire_at <= clock_ms()))) {
        size_t need = 0;
        for (size_t i = 0; i < n; i++) {
            size_t c = store_entry_cost(keys[i].len, vals[i].len);
            need = need > SIZE_MAX - c ? SIZE_MAX : need + c;
        }
        if (!store__fits(s, need)) {
            size_t have = pin_keys(s, d, keys, n, 1);
            if (room_for(s, need, have) < 0) {
                pin_keys(s, d, keys, n, 0);
                return STORE_OOM;
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        set_key(s, d, keys[i].ptr, keys[i].len, vals[i].ptr, vals[i].len, expires ? expires[i] : expire_at, 0, 0);
    return 1;
}

int store_delete(store_t *s, int db, const char *key, size_t klen)
{
    store_db_t *d = get_db(s, db);
    dict_pos_t pos;

    if (lookup_live(s, d, key, klen, &pos) == NULL)
        return 0;
    delete_at(s, d, &pos);
    return 1;
}

int store_set_expire(store_t *s, int db, const char *key, size_t klen, long long expire_at)
{
    store_db_t *d = get_db(s, db);
    dict_pos_t pos;
    store_entry_t *e = lookup_live(s, d, key, klen, &pos);

    if (e == NULL)
        return 0;
    if (expire_at >= 0 && expire_at <= clock_ms()) {
        delete_at(s, d, &pos);
    } else if (expire_at >= 0 || e->expire >= 0) {
        /* removing an expiry the key does not have changes nothing: no signal (redis's PERSIST) */
        entry_set_expire(d, e, expire_at);
        notify_modified(s, d, e->data, e->klen);
    }
    return 1;
}

/*
 * The renamed key is a new entry (the key is inline, so its size changes) carrying the value, expiry
 * and LRU/LFU field of src. RENAME k k succeeds without change, RENAMENX k k answers 0, as redis does.
 * A longer name to a new dst is charged dlen - slen, evicting (never src) if needed.
 */
int store_rename(store_t *s, int db, const char *src, size_t slen, const char *dst, size_t dlen, int nx)
{
    store_db_t *d = get_db(s, db);
    dict_pos_t pos;
    store_entry_t *e = lookup_live(s, d, src, slen, &pos);

    if (e == NULL)
        return -1;
    if (slen == dlen && memcmp(src, dst, slen) == 0)
        return nx ? 0 : 1;
    /* pos (src's) is stale after the next dict call: src (and dst) are unlinked by pointer below. */
    store_entry_t *old = lookup_live(s, d, dst, dlen, &pos);
    if (old && nx)
        return 0;
    /* Replacing dst always frees more than the longer name costs; only a new dst may need room. */
    if (old == NULL) {
        e->pinned = 1;
        int rc = room_for(s, store_entry_cost(dlen, e->vlen), entry_cost(e));
        e->pinned = 0;
        if (rc < 0)
            return STORE_OOM;
    } else {
        store__delete_entry(s, d, old);
    }

    store_entry_t *n = entry_create(dst, dlen, e->data + e->klen, e->vlen);
    long long expire = e->expire;
    n->lru = e->lru;
    store__delete_entry(s, d, e);
    entry_set_expire(d, n, expire);
    dict_add(&d->keys, &n->node);
    s->used += entry_cost(n);
    notify_modified(s, d, dst, dlen);
    return 1;
}

typedef struct scan_ctx {
    store_scan_fn *fn;
    void *priv;
    long long now;
    size_t emitted;                             /* live keys given to fn */
    size_t nexpired;
    store_entry_t *expired[SCAN_RECLAIM_MAX];   /* expired keys met in this step, deleted after it */
} scan_ctx_t;

static void scan_node_cb(void *priv, dict_node_t *n)
{
    scan_ctx_t *c = priv;
    store_entry_t *e = ENTRY_OF(n);

    if (entry_expired(e, c->now)) {
        if (c->nexpired < SCAN_RECLAIM_MAX)
            c->expired[c->nexpired++] = e;
        return;
    }
    c->fn(c->priv, e);
    c->emitted++;
}

/*
 * As redis's SCAN: dict_scan steps until count live keys were emitted, the walk is complete, or 10 *
 * count steps were taken (so a sparse table cannot make one call long). Expired keys are not emitted;
 * those met are deleted after each step (deleting between steps keeps the SCAN guarantee: it only holds
 * for keys present throughout anyway).
 */
uint64_t store_scan(store_t *s, int db, uint64_t cursor, size_t count, store_scan_fn *fn, void *priv)
{
    store_db_t *d = get_db(s, db);
    scan_ctx_t ctx = { .fn = fn, .priv = priv, .now = clock_ms() };

    if (count == 0)
        count = 1;
    if (count > SIZE_MAX / 10)
        count = SIZE_MAX / 10;
    size_t steps = count * 10;
    do {
        ctx.nexpired = 0;
        cursor = dict_scan(&d->keys, cursor, scan_node_cb, &ctx);
        for (size_t i = 0; i < ctx.nexpired; i++) {
            store__delete_entry(s, d, ctx.expired[i]);
            s->stats.expired_keys++;
        }
    } while (cursor != 0 && --steps > 0 && ctx.emitted < count);
    return cursor;
}

/*
 * A random key; an expired one drawn is deleted (counted) and another drawn, RANDOM_TRIES times at most
 * — so a db made almost only of expired keys may answer NULL (as if empty) until active expiry has
 * cleaned it, rather than stalling the server.
 */
store_entry_t *store_random(store_t *s, int db)
{
    store_db_t *d = get_db(s, db);
    long long now = clock_ms();

    for (int tries = 0; tries < RANDOM_TRIES; tries++) {
        dict_node_t *n = dict_random(&d->keys);
        if (n == NULL)
            return NULL;
        store_entry_t *e = ENTRY_OF(n);
        if (!entry_expired(e, now))
            return e;
        store__delete_entry(s, d, e);
        s->stats.expired_keys++;
    }
    return NULL;
}

size_t store_dbsize(const store_t *s, int db)
{
    return dict_size(&get_db(s, db)->keys);
}

size_t store_expires(const store_t *s, int db)
{
    return get_db(s, db)->nvol;
}

static void flush_free_cb(void *priv, dict_node_t *n)
{
    store_t *s = priv;
    store_entry_t *e = ENTRY_OF(n);
    size_t cost = entry_cost(e);

    CHECK(s->used >= cost);
    s->used -= cost;
    mem_free(e);
}

/* Free every entry of one db and its tables; the volatile array and pool slots go wholesale. */
static void flush_db(store_t *s, int db)
{
    store_db_t *d = &s->db[db];

    store__pool_forget_db(s, db);
    dict_clear(&d->keys, flush_free_cb, s);
    mem_free(d->vol);
    d->vol = NULL;
    d->nvol = 0;
    d->volcap = 0;
}

void store_flush(store_t *s, int db)
{
    if (db >= 0) {
        (void)get_db(s, db);    /* bounds check */
        flush_db(s, db);
        return;
    }
    for (int i = 0; i < s->ndb; i++)
        flush_db(s, i);
    CHECK(s->used == 0 && s->npool == 0);
}

size_t store_used(const store_t *s)
{
    return s->used;
}

size_t store_maxmemory(const store_t *s)
{
    return s->maxmemory;
}

store_policy_t store_policy(const store_t *s)
{
    return s->policy;
}

const store_stats_t *store_stats(const store_t *s)
{
    return &s->stats;
}

void store_stats_reset(store_t *s)
{
    memset(&s->stats, 0, sizeof(s->stats));
}

