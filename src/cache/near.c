/*
 * The near tier (contract in near.h).
 *
 * Layout. Every entry is one allocation: its header (near_entry_t), then the key bytes, then the value
 * bytes. It sits on two lists at once:
 *   - a bucket chain of the hash table, keyed by the key bytes only (not the db), so that one chain walk
 *     finds a key's entries in every database — what an invalidation, which names no database, needs.
 *     Chains are hlists (next + pointer to the pointer that points here) so that dropping an entry found
 *     through the LRU list costs no chain walk;
 *   - the LRU list, newest at the head; eviction takes the tail.
 * The table doubles when entries outnumber buckets, rehashing at once: the entries are bounded by
 * max_bytes, so the pause is bounded too, and each entry keeps its hash, so no key is hashed again.
 *
 * Tickets. `clock` counts changes. near_invalidate stamps the key's generation bucket
 * (gen[h & (NEAR_GENS - 1)]) with ++clock, near_flush stamps flushed_at; a ticket is the clock's value
 * when it was taken, and it is stale when either stamp is newer. One hash h per call serves both the table
 * and the generation bucket.
 *
 * Expiry. An entry's expiry is absolute (the caller's monotonic ms), 0 for none. near_get drops an expired
 * entry it finds; near_expire_some sweeps a bounded slice of the LRU list per call with a hand that
 * remembers where it stopped.
 */
#include "cache/near.h"

#include <limits.h>
#include <string.h>

#include "util/check.h"
#include "util/mem.h"
#include "util/seed.h"
#include "util/siphash.h"

#define NEAR_MIN_BUCKETS 1024

typedef struct near_entry near_entry_t;
struct near_entry {
    near_entry_t *chain;        /* next entry in the bucket chain, or NULL */
    near_entry_t **pprev;       /* the pointer that points at this entry (bucket slot or a chain field) */
    near_entry_t *newer;        /* towards the LRU head (more recently used), or NULL at the head */
    near_entry_t *older;        /* towards the LRU tail, or NULL at the tail */
    uint64_t hash;              /* siphash24 of the key under the near_t's seed */
    long long expire_at;        /* absolute expiry in the caller's ms, 0 = none */
    size_t klen;                /* key bytes at data */
    size_t vlen;                /* value bytes at data + klen */
    int db;                     /* the database the value was read from */
    char data[];                /* key, then value; neither is terminated */
};

struct near {
    near_entry_t **buckets;     /* nbuckets chain heads */
    size_t nbuckets;            /* a power of two, >= NEAR_MIN_BUCKETS */
    near_entry_t *head;         /* LRU: most recently used */
    near_entry_t *tail;         /* LRU: least recently used, evicted first */
    near_entry_t *hand;         /* near_expire_some's next entry to examine; NULL: start at the tail */
    size_t entries;             /* entries held */
    size_t bytes;               /* sum of entry_cost() over them */
    size_t max_bytes;           /* bound on bytes */
    size_t max_value;           /* values longer are not kept */
    long long ttl_ms;           /* upper bound on an entry's life, 0 = none */
    near_policy_fn *policy;     /* which keys, and their bound, in place of ttl_ms; NULL: all, ttl_ms */
    void *policy_arg;
    uint64_t clock;             /* ticket clock: the latest stamp given out */
    uint64_t flushed_at;        /* stamp of the last near_flush */
    uint64_t *gen;              /* NEAR_GENS stamps: the last invalidation of a key in that bucket */
    bytes_t *prefixes;          /* keys that may be kept start with one of these; points into one block */
    size_t nprefixes;           /* 0: every key may be kept */
    uint8_t seed[SIPHASH_KEY_LEN];   /* random SipHash key, per near_t */
    near_stats_t st;            /* the counters (the sizes and limits are filled in by near_stats) */
};

/* ---- helpers ------------------------------------------------------------------------------------ */

/* A slice with a usable pointer even when it is empty ({NULL, 0}): memcmp, memcpy and the hash take no
 * NULL. */
static inline bytes_t safe_bytes(bytes_t b)
{
    if (b.ptr == NULL) {
        CHECK(b.len == 0);
        b.ptr = "";
    }
    return b;
}

static inline uint64_t key_hash(const near_t *n, bytes_t key)
{
    return siphash24(key.ptr, key.len, n->seed);
}

static inline uint64_t *gen_of(const near_t *n, uint64_t h)
{
    return &n->gen[h & (NEAR_GENS - 1)];
}

static inline size_t entry_cost(size_t klen, size_t vlen)
{
    return sizeof(near_entry_t) + klen + vlen;
}

size_t near_entry_size(size_t klen, size_t vlen)
{
    return entry_cost(klen, vlen);
}

/* The cost of an entry of klen + vlen bytes, or 0 if it does not fit in a size_t. */
static inline size_t entry_cost_checked(size_t klen, size_t vlen)
{
    if (klen > SIZE_MAX - sizeof(near_entry_t) || vlen > SIZE_MAX - sizeof(near_entry_t) - klen)
        return 0;
    return entry_cost(klen, vlen);
}

static inline int entry_is_key(const near_entry_t *e, uint64_t h, bytes_t key)
{
    return e->hash == h && e->klen == key.len && memcmp(e->data, key.ptr, key.len) == 0;
}

static inline int entry_expired(const near_entry_t *e, long long now_ms)
{
    return e->expire_at != 0 && now_ms >= e->expire_at;
}

static inline near_entry_t **bucket_of(const near_t *n, uint64_t h)
{
    return &n->buckets[h & (n->nbuckets - 1)];
}

/* ---- lists -------------------------------------------------------------------------------------- */

static void chain_link(near_entry_t **slot, near_entry_t *e)
{
    e->chain = *slot;
    if (e->chain)
        e->chain->pprev = &e->chain;
    e->pprev = slot;
    *slot = e;
}

static void chain_unlink(near_entry_t *e)
{
    *e->pprev = e->chain;
    if (e->chain)
        e->chain->pprev = e->pprev;
    e->chain = NULL;
    e->pprev = NULL;
}

static void lru_unlink(near_t *n, near_entry_t *e)
{
    /* The sweep's hand moves on towards the head, where it was going anyway. */
    if (n->hand == e)
        n->hand = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        n->head = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else
        n->tail = e->newer;
    e->newer = e->older = NULL;
}

static void lru_push_head(near_t *n, near_entry_t *e)
{
    e->newer = NULL;
    e->older = n->head;
    if (n->head)
        n->head->newer = e;
    else
        n->tail = e;
    n->head = e;
}

/* Unlink e from both lists, take its cost off, free it. */
static void entry_drop(near_t *n, near_entry_t *e)
{
    size_t cost = entry_cost(e->klen, e->vlen);

    chain_unlink(e);
    lru_unlink(n, e);
    CHECK(n->entries > 0 && n->bytes >= cost);
    n->entries--;
    n->bytes -= cost;
    mem_free(e);
}

/* Evict from the LRU tail until bytes + need <= max_bytes (need <= max_bytes, checked by the caller). */
static void evict_until(near_t *n, size_t need)
{
    CHECK(need <= n->max_bytes);
    while (n->bytes > n->max_bytes - need) {
        CHECK(n->tail != NULL);
        entry_drop(n, n->tail);
        n->st.evictions++;
    }
}

/* Double the bucket array and relink every entry by its stored hash. */
static void table_grow(near_t *n)
{
    size_t nb = n->nbuckets * 2;
    CHECK(nb > n->nbuckets && nb <= SIZE_MAX / sizeof(*n->buckets));
    near_entry_t **old = n->buckets;
    size_t old_nb = n->nbuckets;

    n->buckets = mem_calloc(nb, sizeof(*n->buckets));
    n->nbuckets = nb;
    for (size_t i = 0; i < old_nb; i++) {
        near_entry_t *e = old[i];
        while (e) {
            near_entry_t *next = e->chain;
            chain_link(bucket_of(n, e->hash), e);
            e = next;
        }
    }
    mem_free(old);
}

/* Free every entry and empty the table (counters untouched). */
static void drop_all(near_t *n)
{
    near_entry_t *e = n->head;
    while (e) {
        near_entry_t *next = e->older;
        mem_free(e);
        e = next;
    }
    memset(n->buckets, 0, n->nbuckets * sizeof(*n->buckets));
    n->head = n->tail = n->hand = NULL;
    n->entries = 0;
    n->bytes = 0;
}

/* The entry of (db, key) of hash h, or NULL. */
static near_entry_t *find(const near_t *n, uint64_t h, int db, bytes_t key)
{
    for (near_entry_t *e = *bucket_of(n, h); e; e = e->chain)
        if (e->db == db && entry_is_key(e, h, key))
            return e;
    return NULL;
}

/* ---- create / configure ------------------------------------------------------------------------- */

near_t *near_create(size_t max_bytes, size_t max_value, long long ttl_ms)
{
    CHECK(ttl_ms >= 0);
    near_t *n = mem_calloc(1, sizeof(*n));
    n->nbuckets = NEAR_MIN_BUCKETS;
    n->buckets = mem_calloc(n->nbuckets, sizeof(*n->buckets));
    n->gen = mem_calloc(NEAR_GENS, sizeof(*n->gen));
    n->max_bytes = max_bytes;
    n->max_value = max_value;
    n->ttl_ms = ttl_ms;
    seed_bytes(n->seed, sizeof(n->seed));
    return n;
}

void near_destroy(near_t *n)
{
    if (!n)
        return;
    drop_all(n);
    mem_free(n->buckets);
    mem_free(n->gen);
    mem_free(n->prefixes);
    mem_free(n);
}

/*
 * Entries the limits no longer allow (a value over max_value, a key the prefixes do not cover) are
 * dropped by one walk of the LRU list, then the tail is evicted down to max_bytes.
 */
static void drop_excluded(near_t *n)
{
    near_entry_t *e = n->head;
    while (e) {
        near_entry_t *next = e->older;
        if (e->vlen > n->max_value || !near_covers(n, (bytes_t){ e->data, e->klen })) {
            entry_drop(n, e);
            n->st.reconfigured++;
        }
        e = next;
    }
    evict_until(n, 0);
}

void near_configure(near_t *n, size_t max_bytes, size_t max_value, long long ttl_ms)
{
    CHECK(ttl_ms >= 0);
    n->max_bytes = max_bytes;
    n->max_value = max_value;
    n->ttl_ms = ttl_ms;
    drop_excluded(n);
}

/* The prefixes are copied into one block: the bytes_t array, then their bytes. */
void near_set_prefixes(near_t *n, const bytes_t *prefixes, size_t count)
{
    mem_free(n->prefixes);
    n->prefixes = NULL;
    n->nprefixes = 0;
    if (count > 0) {
        CHECK(count <= SIZE_MAX / sizeof(bytes_t));
        size_t size = count * sizeof(bytes_t);
        for (size_t i = 0; i < count; i++) {
            CHECK(prefixes[i].len <= SIZE_MAX - size);
            size += prefixes[i].len;
        }
        bytes_t *v = mem_alloc(size);
        char *p = (char *)(v + count);
        for (size_t i = 0; i < count; i++) {
            bytes_t src = safe_bytes(prefixes[i]);
            memcpy(p, src.ptr, src.len);
            v[i] = (bytes_t){ p, src.len };
            p += src.len;
        }
        n->prefixes = v;
        n->nprefixes = count;
    }
    drop_excluded(n);
}

/* The upper bound on key's entry's life (ms, 0 = none), or -1 when the key may not be kept. */
static long long key_bound(const near_t *n, bytes_t key)
{
    if (n->nprefixes > 0) {
        size_t i = 0;
        while (i < n->nprefixes && !(key.len >= n->prefixes[i].len &&
                                     memcmp(key.ptr, n->prefixes[i].ptr, n->prefixes[i].len) == 0))
            i++;
        if (i == n->nprefixes)
            return -1;
    }
    return n->policy != NULL ? n->policy(n->policy_arg, key) : n->ttl_ms;
}

int near_covers(const near_t *n, bytes_t key)
{
    return key_bound(n, safe_bytes(key)) >= 0;
}

void near_set_policy(near_t *n, near_policy_fn *fn, void *arg)
{
    n->policy = fn;
    n->policy_arg = arg;
    drop_excluded(n);
}

void near_refilter(near_t *n)
{
    drop_excluded(n);
}

/* ---- lookups and stores ------------------------------------------------------------------------- */

int near_get(near_t *n, int db, bytes_t key, long long now_ms, bytes_t *val)
{
    CHECK(db >= 0);
    key = safe_bytes(key);
    uint64_t h = key_hash(n, key);
    near_entry_t *e = find(n, h, db, key);

    if (e && entry_expired(e, now_ms)) {
        entry_drop(n, e);
        n->st.expired++;
        e = NULL;
    }
    if (!e) {
        n->st.misses++;
        return 0;
    }
    n->st.hits++;
    if (n->head != e) {
        lru_unlink(n, e);
        lru_push_head(n, e);
    }
    *val = (bytes_t){ e->data + e->klen, e->vlen };
    return 1;
}

uint64_t near_ticket(const near_t *n)
{
    return n->clock;
}

/* now_ms + add, saturated at LLONG_MAX (add >= 0), and never 0, which means "no expiry". */
static long long expiry_after(long long now_ms, long long add)
{
    long long at = now_ms > LLONG_MAX - add ? LLONG_MAX : now_ms + add;
    return at == 0 ? 1 : at;
}

/*
 * Checks in the order of the contract: coverage (nothing counted), the ticket (races), the TTL and the
 * size (the entry held for the key, if any, goes: the read shows it out of date). Then the old entry is
 * replaced: dropped first, so that eviction never counts it against the new one, and never evicts the
 * key being written.
 */
int near_put(near_t *n, uint64_t ticket, int db, bytes_t key, bytes_t val, long long ttl_left_ms, long long now_ms)
{
    CHECK(db >= 0);
    key = safe_bytes(key);
    val = safe_bytes(val);
    long long bound_ms = key_bound(n, key);
    if (bound_ms < 0)
        return 0;

    uint64_t h = key_hash(n, key);
    if (*gen_of(n, h) > ticket || n->flushed_at > ticket) {
        n->st.races++;
        return 0;
    }

    near_entry_t *old = find(n, h, db, key);
    size_t cost = entry_cost_checked(key.len, val.len);
    int too_large = val.len > n->max_value || cost == 0 || cost > n->max_bytes;
    if (ttl_left_ms == 0 || ttl_left_ms < -1 || too_large) {
        if (too_large)
            n->st.too_large++;
        if (old)
            entry_drop(n, old);
        return 0;
    }

    long long expire_at = 0;
    if (ttl_left_ms > 0)
        expire_at = expiry_after(now_ms, ttl_left_ms);
    if (bound_ms > 0) {
        long long bound = expiry_after(now_ms, bound_ms);
        if (expire_at == 0 || bound < expire_at)
            expire_at = bound;
    }

    if (old)
        entry_drop(n, old);
    evict_until(n, cost);

    near_entry_t *e = mem_alloc(cost);
    e->hash = h;
    e->expire_at = expire_at;
    e->klen = key.len;
    e->vlen = val.len;
    e->db = db;
    memcpy(e->data, key.ptr, key.len);
    memcpy(e->data + key.len, val.ptr, val.len);
    chain_link(bucket_of(n, h), e);
    lru_push_head(n, e);
    n->entries++;
    n->bytes += cost;
    CHECK(n->bytes <= n->max_bytes);
    if (n->entries > n->nbuckets)
        table_grow(n);
    n->st.stored++;
    return 1;
}

/* ---- invalidation, flush, expiry ---------------------------------------------------------------- */

void near_invalidate(near_t *n, bytes_t key, int from_upstream)
{
    key = safe_bytes(key);
    uint64_t h = key_hash(n, key);
    size_t dropped = 0;

    *gen_of(n, h) = ++n->clock;
    near_entry_t *e = *bucket_of(n, h);
    while (e) {
        near_entry_t *next = e->chain;
        if (entry_is_key(e, h, key)) {
            entry_drop(n, e);
            dropped++;
        }
        e = next;
    }
    if (from_upstream) {
        n->st.invalidations++;
        n->st.invalidated += dropped;
    } else {
        n->st.writes++;
    }
}

void near_flush(near_t *n, enum near_flush_cause cause)
{
    CHECK((unsigned)cause < NEAR_FLUSH_NCAUSES);
    n->flushed_at = ++n->clock;
    drop_all(n);
    n->st.flushes[cause]++;
}

size_t near_expire_some(near_t *n, long long now_ms, size_t budget)
{
    near_entry_t *e = n->hand ? n->hand : n->tail;
    size_t dropped = 0;

    for (size_t seen = 0; e && seen < budget; seen++) {
        near_entry_t *next = e->newer;
        if (entry_expired(e, now_ms)) {
            entry_drop(n, e);
            n->st.expired++;
            dropped++;
        }
        e = next;
    }
    n->hand = e;
    return dropped;
}

/* ---- stats -------------------------------------------------------------------------------------- */

void near_stats(const near_t *n, near_stats_t *st)
{
    *st = n->st;
    st->entries = n->entries;
    st->bytes = n->bytes;
    st->max_bytes = n->max_bytes;
    st->buckets = n->nbuckets;
}

void near_stats_reset(near_t *n)
{
    memset(&n->st, 0, sizeof(n->st));
}

const char *near_flush_cause_name(enum near_flush_cause c)
{
    static const char *const names[NEAR_FLUSH_NCAUSES] = {
        [NEAR_FLUSH_UPSTREAM] = "upstream",
        [NEAR_FLUSH_TRACKING] = "tracking",
        [NEAR_FLUSH_CLIENT] = "client",
        [NEAR_FLUSH_WRITE] = "write",
        [NEAR_FLUSH_CONFIG] = "config",
    };
    if ((unsigned)c >= NEAR_FLUSH_NCAUSES)
        return "unknown";
    return names[c];
}
