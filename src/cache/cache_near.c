/*
 * cache/cache_near: the near cache — decoded values of hot keys served from this process, in front of an
 * upstream Redis that tells which keys change (backend_track: CLIENT TRACKING, backend/redis/tracking.c).
 *
 * Reads. A GET or MGET of a covered key (near-cache-prefixes) is looked up first; a hit answers at once,
 * without the upstream or the codec chain. A miss goes through the chain as usual, with BE_WITHTTL so that
 * the backend also brings each key's remaining TTL and says whether the read was tracked. MGET sends only
 * the keys it lacks, in one MGET, and merges. Inside EXEC (may_offload 0) nothing is served or kept.
 *
 * What is kept, and when not. A read takes a ticket (near_ticket) before it leaves. Its value is kept
 * only if (1) the backend says the read was tracked: the connection it came on had tracking confirmed and
 * nothing since made tracking uncertain, (2) no invalidation, write of this daemon or flush touched the
 * key after the ticket (an invalidation that arrives while the read is in flight wins), (3) the key
 * exists and its TTL has not run out, and (4) it fits near-cache-max-value-size. It expires when its TTL
 * upstream would, counted from when the read was sent (never later than Redis expires it), or after
 * near-cache-ttl.
 *
 * Writes of this daemon (SET, DEL, EXPIRE, the read-modify-writes, MSET, RENAME, GETDEL / GETEX,
 * forwarded commands whose keys are known...) drop the keys they change before they leave and again when
 * they answer, so that a read racing the write is not kept either; FLUSHDB / FLUSHALL empty the near
 * cache. Forwarded commands whose keys are not known (scripts) are followed by Redis's invalidations
 * only.
 *
 * Tracking lost (the invalidation connection closed, its PING unanswered, a pool connection whose reads
 * were tracked gone): everything kept is dropped, and nothing is kept until tracking is back.
 */
#include "cache/cache_int.h"

#include <stdio.h>
#include <string.h>

#include "cache/near.h"
#include "util/log.h"
#include "util/mem.h"

#define NEAR_PREFIXES_MAX 64
#define NEAR_EXPIRE_BUDGET 4        /* expired entries looked at per miss or write (lookups drop the rest) */

enum near_state { NEAR_STARTING, NEAR_ON, NEAR_OFF };

/* One op through the near cache: where its result goes and what it must do on the way back. */
typedef struct ncall {
    struct ncall *next;             /* free list */
    cache_near_t *nc;
    backend_cb *cb;                 /* the command's callback */
    void *ctx;
    int code;                       /* the op's opcode */
    int db;
    int write;                      /* drop the keys again when it answers */
    int flush;                      /* empty the near cache again when it answers: NEAR_FLUSH_* + 1, 0 not */
    uint64_t ticket;                /* reads: taken before the read left */
    long long sent_ms;              /* reads: monotonic ms when it left (expiries count from it) */
    buf_t keybytes;                 /* the keys, copied */
    bytes_t *keys;                  /* slices into keybytes, nkeys of them */
    size_t nkeys, keys_cap;
    /* MGET with some keys at hand: */
    buf_t hitbytes;                 /* the values found, copied */
    size_t *hit;                    /* per key: offset into hitbytes, SIZE_MAX missing, SIZE_MAX - 1 fetched */
    size_t *hitlen;
    size_t hit_cap;
    bytes_t *fetch;                 /* the keys sent upstream */
    size_t nfetch;
} ncall_t;

struct cache_near {
    cache_t *cache;
    uv_loop_t *loop;                /* its clock */
    backend_t *backend;             /* the backend tracked */
    near_t *near;                   /* the table */
    int state;                      /* enum near_state */
    char why[256];                  /* why it is off */
    bytes_t prefixes[NEAR_PREFIXES_MAX];
    size_t nprefixes;
    char *prefix_text;              /* the option's text; prefixes point into it */
    int ping_ms;
    unsigned long long lost;        /* times tracking was lost or uncertain */
    ncall_t *free_calls;
};

/*
 * The loop's clock (uv_now: monotonic, read once per loop turn), not a clock call per GET: a hit costs
 * what a memory:// GET costs. It lags real time by at most the turn's work, so entries are kept
 * NEAR_CLOCK_SLACK_MS less than the key's TTL said (and a key with less left than that is not kept):
 * an entry still never outlives its key upstream.
 */
#define NEAR_CLOCK_SLACK_MS 5

static long long now_ms(const cache_near_t *nc)
{
    return (long long)uv_now(nc->loop);
}

/* ---- calls --------------------------------------------------------------------------------------- */

static ncall_t *ncall_get(cache_near_t *nc, backend_cb *cb, void *ctx, const backend_op_t *op)
{
    ncall_t *k = nc->free_calls;
    if (k != NULL) {
        nc->free_calls = k->next;
    } else {
        k = mem_calloc(1, sizeof(*k));
        buf_init(&k->keybytes);
        buf_init(&k->hitbytes);
    }
    k->nc = nc;
    k->cb = cb;
    k->ctx = ctx;
    k->code = op->code;
    k->db = op->db;
    k->write = k->flush = 0;
    k->nkeys = k->nfetch = 0;
    buf_reset(&k->keybytes);
    buf_reset(&k->hitbytes);
    return k;
}

static void ncall_put(ncall_t *k)
{
    cache_near_t *nc = k->nc;
    if (k->fetch != NULL && k->fetch != k->keys)
        mem_free(k->fetch);
    k->fetch = NULL;
    if (k->keybytes.cap > (64u << 10))
        buf_deinit(&k->keybytes);
    if (k->hitbytes.cap > (256u << 10))
        buf_deinit(&k->hitbytes);
    k->next = nc->free_calls;
    nc->free_calls = k;
}

static void *grow(void *p, size_t *cap, size_t n, size_t elem)
{
    if (n <= *cap)
        return p;
    *cap = n < 16 ? 16 : n;
    return mem_realloc(p, *cap * elem);
}

/* Copy n keys into the call (k->keys). */
static void ncall_keys(ncall_t *k, const bytes_t *keys, size_t n)
{
    size_t cap = k->keys_cap;
    k->keys = grow(k->keys, &cap, n, sizeof(*k->keys));
    k->keys_cap = cap;
    buf_reset(&k->keybytes);
    for (size_t i = 0; i < n; i++)
        buf_append(&k->keybytes, keys[i].ptr ? keys[i].ptr : "", keys[i].len);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        k->keys[i] = (bytes_t){ k->keybytes.data ? k->keybytes.data + off : "", keys[i].len };
        off += keys[i].len;
    }
    k->nkeys = n;
}

/* ---- writes -------------------------------------------------------------------------------------- */

/* The keys an op changes (n of them into *keys, pointing into op or two), 0 if it changes none, -1 if
 * it empties databases (FLUSH). */
static int op_writes(const backend_op_t *op, const bytes_t **keys, size_t *n, bytes_t two[2])
{
    switch (op->code) {
    case BE_GET:
        if (!(op->flags & (BE_GETDEL | BE_SETTTL)))
            return 0;
        *keys = &op->key;       /* GETDEL, GETEX change the key */
        *n = 1;
        return 1;
    case BE_SET:
    case BE_EXPIRE:
    case BE_UPDATE:
        *keys = &op->key;
        *n = 1;
        return 1;
    case BE_RENAME:
        two[0] = op->key;
        two[1] = op->key2;
        *keys = two;
        *n = 2;
        return 1;
    case BE_MSET:
    case BE_DEL:
        *keys = op->keys;
        *n = op->nkeys;
        return 1;
    case BE_COMMAND:
        if (op->flags & BE_READONLY)
            return 0;
        if (!(op->flags & BE_KEYSKNOWN))
            return -1;      /* a script, COPY, MOVE...: any key may have changed */
        *keys = op->keys;
        *n = op->nkeys;
        return 1;
    case BE_FLUSH:
        return -1;
    default:
        return 0;
    }
}

static void write_done_cb(void *ctx, const backend_result_t *res)
{
    ncall_t *k = ctx;
    cache_near_t *nc = k->nc;

    if (k->flush)
        near_flush(nc->near, (enum near_flush_cause)(k->flush - 1));
    for (size_t i = 0; i < k->nkeys; i++)
        near_invalidate(nc->near, k->keys[i], 0);
    k->cb(k->ctx, res);
    ncall_put(k);
}

/* ---- reads --------------------------------------------------------------------------------------- */

/* Keep what a tracked read brought: values[i] of keys[i], with ttls[i]. */
static void keep_values(cache_near_t *nc, ncall_t *k, const bytes_t *keys, const bytes_t *values, size_t n,
                        const backend_result_t *res)
{
    if (!res->tracked || res->ttls == NULL || nc->state != NEAR_ON)
        return;
    for (size_t i = 0; i < n; i++) {
        long long ttl = res->ttls[i];
        if (ttl >= 0)
            ttl = ttl > NEAR_CLOCK_SLACK_MS ? ttl - NEAR_CLOCK_SLACK_MS : -2;
        if (values[i].ptr != NULL)
            near_put(nc->near, k->ticket, k->db, keys[i], values[i], ttl, k->sent_ms);
    }
}

static void get_done_cb(void *ctx, const backend_result_t *res)
{
    ncall_t *k = ctx;

    if (res->status == BE_OK && res->has_value)
        keep_values(k->nc, k, k->keys, &res->value, 1, res);
    k->cb(k->ctx, res);
    ncall_put(k);
}

static void mget_done_cb(void *ctx, const backend_result_t *res)
{
    ncall_t *k = ctx;
    cache_near_t *nc = k->nc;

    if (res->status != BE_OK || res->values == NULL || res->nvalues != k->nfetch) {
        k->cb(k->ctx, res);
        ncall_put(k);
        return;
    }
    keep_values(nc, k, k->fetch, res->values, k->nfetch, res);
    if (k->nfetch == k->nkeys) {           /* nothing was at hand */
        k->cb(k->ctx, res);
        ncall_put(k);
        return;
    }
    bytes_t *vals = mem_alloc(k->nkeys * sizeof(*vals));
    size_t j = 0;
    for (size_t i = 0; i < k->nkeys; i++) {
        if (k->hit[i] == SIZE_MAX - 1)
            vals[i] = res->values[j++];
        else
            vals[i] = (bytes_t){ k->hitbytes.data ? k->hitbytes.data + k->hit[i] : "", k->hitlen[i] };
    }
    backend_result_t out = *res;
    out.values = vals;
    out.nvalues = k->nkeys;
    out.ttls = NULL;
    k->cb(k->ctx, &out);
    mem_free(vals);
    ncall_put(k);
}

/* GET of a covered key: from the near cache, or through the chain and kept. */
static int near_get_op(cache_near_t *nc, const backend_op_t *op, backend_cb *cb, void *ctx, int may_offload)
{
    bytes_t val;

    if (near_get(nc->near, op->db, op->key, now_ms(nc), &val)) {
        backend_result_t res = { .status = BE_OK, .value = val, .has_value = 1 };
        cb(ctx, &res);
        return 0;
    }
    ncall_t *k = ncall_get(nc, cb, ctx, op);
    ncall_keys(k, &op->key, 1);
    k->ticket = near_ticket(nc->near);
    k->sent_ms = now_ms(nc);
    near_expire_some(nc->near, k->sent_ms, NEAR_EXPIRE_BUDGET);
    backend_op_t op2 = *op;
    op2.flags |= BE_WITHTTL;
    return cache_chain_submit(nc->cache, &op2, get_done_cb, k, may_offload);
}

/* MGET: the keys at hand from the near cache, the others in one MGET through the chain. */
static int near_mget_op(cache_near_t *nc, const backend_op_t *op, backend_cb *cb, void *ctx, int may_offload)
{
    ncall_t *k = ncall_get(nc, cb, ctx, op);
    size_t n = op->nkeys, cap = k->hit_cap, cap2 = k->hit_cap;
    long long now = now_ms(nc);

    ncall_keys(k, op->keys, n);
    k->hit = grow(k->hit, &cap, n, sizeof(*k->hit));
    k->hitlen = grow(k->hitlen, &cap2, n, sizeof(*k->hitlen));
    k->hit_cap = cap;
    size_t nfetch = 0;
    for (size_t i = 0; i < n; i++) {
        bytes_t val;
        if (near_covers(nc->near, k->keys[i]) &&
            near_get(nc->near, op->db, k->keys[i], now, &val)) {
            k->hit[i] = k->hitbytes.len;
            k->hitlen[i] = val.len;
            buf_append(&k->hitbytes, val.ptr, val.len);
        } else {
            k->hit[i] = SIZE_MAX - 1;
            nfetch++;
        }
    }
    if (nfetch == 0) {
        bytes_t *vals = mem_alloc((n ? n : 1) * sizeof(*vals));
        for (size_t i = 0; i < n; i++)
            vals[i] = (bytes_t){ k->hitbytes.data ? k->hitbytes.data + k->hit[i] : "", k->hitlen[i] };
        backend_result_t res = { .status = BE_OK, .values = vals, .nvalues = n };
        cb(ctx, &res);
        mem_free(vals);
        ncall_put(k);
        return 0;
    }
    /* the keys to fetch: k->keys itself when none is at hand, else a list of their slices */
    if (nfetch == n) {
        k->fetch = k->keys;
    } else {
        k->fetch = mem_alloc(nfetch * sizeof(*k->fetch));
        for (size_t i = 0, j = 0; i < n; i++)
            if (k->hit[i] == SIZE_MAX - 1)
                k->fetch[j++] = k->keys[i];
    }
    k->nfetch = nfetch;
    k->ticket = near_ticket(nc->near);
    k->sent_ms = now;
    backend_op_t op2 = *op;
    op2.flags |= BE_WITHTTL;
    op2.keys = k->fetch;
    op2.nkeys = nfetch;
    return cache_chain_submit(nc->cache, &op2, mget_done_cb, k, may_offload);
}

static int mget_covers_any(const cache_near_t *nc, const backend_op_t *op)
{
    if (nc->nprefixes == 0)
        return 1;
    for (size_t i = 0; i < op->nkeys; i++)
        if (near_covers(nc->near, op->keys[i]))
            return 1;
    return 0;
}

int cache_near_submit(cache_near_t *nc, const backend_op_t *op, backend_cb *cb, void *ctx, int may_offload, int raw)
{
    const bytes_t *keys = NULL;
    bytes_t two[2];
    size_t n = 0;

    /* reads are served and kept only while tracking is on (else they are plain reads: no PTTL either) */
    int reads = !raw && may_offload && nc->state == NEAR_ON;
    if (reads && op->code == BE_GET && !(op->flags & (BE_GETDEL | BE_SETTTL)) &&
        near_covers(nc->near, op->key))
        return near_get_op(nc, op, cb, ctx, may_offload);
    if (reads && op->code == BE_MGET && op->nkeys > 0 && mget_covers_any(nc, op))
        return near_mget_op(nc, op, cb, ctx, may_offload);

    int w = op_writes(op, &keys, &n, two);
    if (w == 0) {
        if (raw) {
            backend_submit(cache_backend(nc->cache), op, cb, ctx);
            return 0;
        }
        return cache_chain_submit(nc->cache, op, cb, ctx, may_offload);
    }
    ncall_t *k = ncall_get(nc, cb, ctx, op);
    k->write = 1;
    near_expire_some(nc->near, now_ms(nc), NEAR_EXPIRE_BUDGET);
    if (w < 0) {
        enum near_flush_cause cause = op->code == BE_FLUSH ? NEAR_FLUSH_CLIENT : NEAR_FLUSH_WRITE;
        k->flush = (int)cause + 1;
        near_flush(nc->near, cause);
    } else {
        ncall_keys(k, keys, n);
        for (size_t i = 0; i < n; i++)
            near_invalidate(nc->near, k->keys[i], 0);
    }
    if (raw) {
        backend_submit(cache_backend(nc->cache), op, write_done_cb, k);
        return 0;
    }
    return cache_chain_submit(nc->cache, op, write_done_cb, k, may_offload);
}

/* ---- tracking ------------------------------------------------------------------------------------ */

static void track_cb(void *ctx, enum backend_track_event ev, const bytes_t *keys, size_t n, const char *why)
{
    cache_near_t *nc = ctx;

    switch (ev) {
    case BE_TRACK_KEYS:
        for (size_t i = 0; i < n; i++)
            near_invalidate(nc->near, keys[i], 1);
        break;
    case BE_TRACK_ALL:
        near_flush(nc->near, NEAR_FLUSH_UPSTREAM);
        break;
    case BE_TRACK_LOST: {
        near_stats_t st;
        near_stats(nc->near, &st);
        near_flush(nc->near, NEAR_FLUSH_TRACKING);
        nc->lost++;
        if (st.entries > 0)     /* one line when something was dropped, not one per connection */
            log_notice("near cache emptied: %s, and what was read through it is no longer tracked (%zu kept)",
                       why, st.entries);
        break;
    }
    case BE_TRACK_OFF:
        near_flush(nc->near, NEAR_FLUSH_TRACKING);
        nc->lost++;
        if (nc->state != NEAR_OFF || strcmp(nc->why, why) != 0)
            log_warn("near cache emptied and off: %s; reads go to the upstream until tracking is back", why);
        nc->state = NEAR_OFF;
        snprintf(nc->why, sizeof(nc->why), "%s", why);
        break;
    case BE_TRACK_ON:
        /* reads sent before now were not tracked (broadcast mode counts from the subscription): their
         * tickets go stale */
        near_flush(nc->near, NEAR_FLUSH_TRACKING);
        if (nc->state == NEAR_OFF)
            log_notice("near cache on again: the upstream's invalidations are flowing");
        nc->state = NEAR_ON;
        nc->why[0] = '\0';
        break;
    }
}

static int near_track(cache_near_t *nc, backend_t *b, char *err, size_t errlen)
{
    backend_track_opts_t o = { .prefixes = nc->prefixes, .nprefixes = nc->nprefixes, .ping_ms = nc->ping_ms };

    nc->state = NEAR_STARTING;
    snprintf(nc->why, sizeof(nc->why), "waiting for the invalidation connection");
    if (backend_track(b, &o, track_cb, nc, err, errlen) < 0)
        return -1;
    nc->backend = b;
    return 0;
}

/* Split the prefixes option (space-separated) into nc->prefixes. */
static int near_parse_prefixes(cache_near_t *nc, const char *text, char *err, size_t errlen)
{
    nc->prefix_text = mem_strdup(text ? text : "");
    nc->nprefixes = 0;
    for (char *p = nc->prefix_text; *p != '\0';) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            break;
        char *e = p + strcspn(p, " \t");
        if (nc->nprefixes == NEAR_PREFIXES_MAX) {
            snprintf(err, errlen, "near-cache-prefixes: more than %d prefixes", NEAR_PREFIXES_MAX);
            return -1;
        }
        nc->prefixes[nc->nprefixes++] = (bytes_t){ p, (size_t)(e - p) };
        p = e;
    }
    return 0;
}

void cache_near_refilter(cache_near_t *nc)
{
    if (nc != NULL)
        near_refilter(nc->near);
}

cache_near_t *cache_near_create(cache_t *c, backend_t *b, const cache_near_opts_t *opts, char *err, size_t errlen)
{
    cache_near_t *nc = mem_calloc(1, sizeof(*nc));

    nc->cache = c;
    nc->loop = cache_loop(c);
    nc->ping_ms = opts->ping_ms;
    if (near_parse_prefixes(nc, opts->prefixes, err, errlen) < 0)
        goto out_free;
    nc->near = near_create((size_t)opts->size, (size_t)opts->max_value, opts->ttl_ms);
    near_set_prefixes(nc->near, nc->prefixes, nc->nprefixes);
    near_set_policy(nc->near, cache_profiles_near_policy, c);
    if (near_track(nc, b, err, errlen) < 0)
        goto out_free_near;
    return nc;

out_free_near:
    near_destroy(nc->near);
out_free:
    mem_free(nc->prefix_text);
    mem_free(nc);
    return NULL;
}

void cache_near_destroy(cache_near_t *nc)
{
    if (nc == NULL)
        return;
    if (nc->backend != NULL)
        backend_untrack(nc->backend);
    while (nc->free_calls != NULL) {
        ncall_t *k = nc->free_calls;
        nc->free_calls = k->next;
        buf_deinit(&k->keybytes);
        buf_deinit(&k->hitbytes);
        mem_free(k->keys);
        mem_free(k->hit);
        mem_free(k->hitlen);
        mem_free(k);
    }
    near_destroy(nc->near);
    mem_free(nc->prefix_text);
    mem_free(nc);
}

void cache_near_release(cache_near_t *nc)
{
    if (nc->backend != NULL)
        backend_untrack(nc->backend);
    nc->backend = NULL;
    nc->state = NEAR_OFF;
    snprintf(nc->why, sizeof(nc->why), "shutting down");
    near_flush(nc->near, NEAR_FLUSH_CONFIG);
}

void cache_near_reconfigure(cache_near_t *nc, const cache_near_opts_t *opts)
{
    near_configure(nc->near, (size_t)opts->size, (size_t)opts->max_value, opts->ttl_ms);
}

int cache_near_set_backend(cache_near_t *nc, backend_t *b, char *err, size_t errlen)
{
    if (nc->backend != NULL)
        backend_untrack(nc->backend);
    nc->backend = NULL;
    near_flush(nc->near, NEAR_FLUSH_CONFIG);
    if (near_track(nc, b, err, errlen) < 0) {
        nc->state = NEAR_OFF;
        snprintf(nc->why, sizeof(nc->why), "%s", err);
        return -1;
    }
    return 0;
}

/* ---- INFO, metrics ------------------------------------------------------------------------------- */

static const char *const state_names[] = { "starting", "on", "off" };

void cache_near_info(const cache_near_t *nc, buf_t *out)
{
    near_stats_t st;

    if (nc == NULL) {
        buf_printf(out, "near_cache_enabled:0\r\n");
        return;
    }
    near_stats(nc->near, &st);
    buf_printf(out,
               "near_cache_enabled:1\r\nnear_cache_state:%s\r\nnear_cache_off_reason:%s\r\n"
               "near_cache_mode:%s\r\nnear_cache_entries:%zu\r\nnear_cache_bytes:%zu\r\n"
               "near_cache_max_bytes:%zu\r\nnear_cache_hits:%llu\r\nnear_cache_misses:%llu\r\n"
               "near_cache_stored:%llu\r\nnear_cache_invalidations:%llu\r\nnear_cache_invalidated:%llu\r\n"
               "near_cache_own_writes:%llu\r\nnear_cache_races:%llu\r\nnear_cache_too_large:%llu\r\n"
               "near_cache_evictions:%llu\r\nnear_cache_expired:%llu\r\nnear_cache_tracking_lost:%llu\r\n",
               state_names[nc->state], nc->state == NEAR_ON ? "" : nc->why, nc->nprefixes ? "bcast" : "default",
               st.entries, st.bytes, st.max_bytes, st.hits, st.misses, st.stored, st.invalidations, st.invalidated,
               st.writes, st.races, st.too_large, st.evictions, st.expired, nc->lost);
    for (int i = 0; i < NEAR_FLUSH_NCAUSES; i++)
        buf_printf(out, "near_cache_flushes_%s:%llu\r\n", near_flush_cause_name((enum near_flush_cause)i),
                   st.flushes[i]);
}

void cache_near_metrics(const cache_near_t *nc, const char *cache_name, buf_t *out)
{
    near_stats_t st;

    if (nc == NULL)
        return;
    near_stats(nc->near, &st);
    buf_printf(out, "# TYPE cachetoryd_near_cache_on gauge\ncachetoryd_near_cache_on{cache=\"%s\"} %d\n", cache_name,
               nc->state == NEAR_ON);
    buf_printf(out, "# TYPE cachetoryd_near_cache_entries gauge\ncachetoryd_near_cache_entries{cache=\"%s\"} %zu\n",
               cache_name, st.entries);
    buf_printf(out, "# TYPE cachetoryd_near_cache_bytes gauge\ncachetoryd_near_cache_bytes{cache=\"%s\"} %zu\n",
               cache_name, st.bytes);
    static const char *const names[] = { "hits", "misses", "stored", "invalidations", "invalidated", "own_writes",
                                         "races", "too_large", "evictions", "expired" };
    unsigned long long v[] = { st.hits, st.misses, st.stored, st.invalidations, st.invalidated, st.writes,
                               st.races, st.too_large, st.evictions, st.expired };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        buf_printf(out, "# TYPE cachetoryd_near_cache_%s_total counter\ncachetoryd_near_cache_%s_total{cache=\"%s\"} %llu\n",
                   names[i], names[i], cache_name, v[i]);
    buf_printf(out, "# TYPE cachetoryd_near_cache_flushes_total counter\n");
    for (int i = 0; i < NEAR_FLUSH_NCAUSES; i++)
        buf_printf(out, "cachetoryd_near_cache_flushes_total{cache=\"%s\",cause=\"%s\"} %llu\n", cache_name,
                   near_flush_cause_name((enum near_flush_cause)i), st.flushes[i]);
}

void cache_near_stats_reset(cache_near_t *nc)
{
    near_stats_reset(nc->near);
    nc->lost = 0;
}
