/*
 * cache/cache_int.h: what the files of the cache module share. Private to src/cache/.
 *
 *   cache.c       the codec chain around backend ops (cache_call.h: an op in flight)
 *   cache_job.c   the same on the thread pool, for large values
 *   cache_profile.c  the named caches ([cache.NAME]): each key's chain, default-ttl and counters; reloads,
 *                 INFO and metrics per cache
 *   cache_route.c the longest-prefix table that picks a key's cache (no I/O)
 *   near.c        the near tier's table: decoded values, LRU, tickets (no I/O)
 *   cache_near.c  the near cache in front of the chain: serves reads, follows writes, listens to the
 *                 backend's tracking
 *   cache_dict.c  zstd dictionaries: trainings started, stored (upstream / dictionary-dir) and fetched
 *   cache_thread.c  the thread pool threads' priority
 *   cache_call.h  cache.c's and cache_job.c's: an op in flight, a job
 */
#ifndef CACHETORYD_CACHE_CACHE_INT_H
#define CACHETORYD_CACHE_CACHE_INT_H

#include "cache/cache.h"
#include "cache/cache_route.h"

typedef struct cache_near cache_near_t;
typedef struct cache_dict cache_dict_t;

/*
 * A cache of its own for the keys under some prefixes ([cache.NAME]), or the default one ([cache], profile
 * 0, every other key): its codec chain, default-ttl and counters. One cache_t, one backend and one near
 * cache serve them all; only the chain of each value differs.
 *
 * A profile lives as long as its cache_t, even when a reload removes its section (it is then inactive:
 * no key routes to it): a call in flight across the reload still holds it, and decodes its result with
 * its chain. A section added back under the same name takes its old profile again.
 */
typedef struct cache_profile {
    char *name;                         /* "default" (profile 0), or the section's NAME */
    char *serializer;                   /* the URL chain was made from (a reload compares it) */
    chain_t *chain;
    int default_ttl;                    /* seconds, 0 = none */
    int near;                           /* its keys may be kept in the near cache */
    long long near_ttl_ms;              /* ... for this long at most (0: their TTL upstream) */
    char *prefixes;                     /* as configured, separated by spaces; NULL for profile 0 */
    int active;                         /* configured now (profile 0 always) */
    const chain_t *dict_seen;           /* the chain cache_profiles_dict_sync last told cache_dict of */
    cache_stats_t stats;
} cache_profile_t;

/* The profiles of a cache, and the table that routes keys to them. */
typedef struct cache_profiles {
    cache_profile_t **v;                /* every profile made, v[0] the default; index = route id */
    size_t n;
    cache_profile_t **active;           /* the configured ones, v[0] first, then in the file's order */
    size_t nactive;
    cache_route_t *route;               /* prefixes -> index into v; NULL without named caches (no lookup) */
    int all_null;                       /* every active profile's chain is null:// */
    chain_t **retired;                  /* chains replaced by a reload, kept for thread-pool jobs using them */
    size_t nretired;
    size_t retired_cap;
} cache_profiles_t;

/* The profile of key: the default one without named caches, at the cost of one test. */
static inline cache_profile_t *cache_profile_of(const cache_profiles_t *pf, const char *key, size_t len)
{
    if (pf->route == NULL)
        return pf->v[0];
    int id = cache_route_find(pf->route, key, len);
    return pf->v[id < 0 ? 0 : id];
}

/* Set up pf with the default profile (name, serializer). 0, or -1 with err. */
int cache_profiles_init(cache_profiles_t *pf, const char *name, const char *serializer, size_t max_bulk, char *err,
                        size_t errlen);
void cache_profiles_deinit(cache_profiles_t *pf);
/* A reload: the default profile's serializer (jobs: the codec jobs running, whose chains must stay). */
int cache_profiles_set_serializer(cache_profiles_t *pf, const char *serializer, size_t max_bulk, int jobs, char *err,
                                  size_t errlen);
/* A reload: the named caches become defs (all, or none on error). */
int cache_profiles_configure(cache_profiles_t *pf, const cache_def_t *defs, size_t n, size_t max_bulk, int jobs,
                             char *err, size_t errlen);
void cache_profiles_info(const cache_profiles_t *pf, const cache_dict_t *dd, buf_t *out);
void cache_profiles_metrics(const cache_profiles_t *pf, buf_t *out);
void cache_profiles_stats_reset(cache_profiles_t *pf);

uv_loop_t *cache_loop(const cache_t *c);
const char *cache_name(const cache_t *c);
/* Work on the thread pool that shutdown must wait for (cache_jobs), up or down. */
void cache_jobs_add(cache_t *c, int delta);
/* On a thread-pool thread: take codec-thread-nice (once per thread). */
void cache_job_priority(void);
/* The default cache and the named ones (cache_profile.c). */
struct cache_profiles *cache_profiles(cache_t *c);
/* ch is one of c's chains still, a profile's or a retired one kept for jobs (a reload retires chains;
 * completions check before touching one). */
int cache_chain_live(cache_t *c, const chain_t *ch);
/* The name of the cache whose chain ch is now, or NULL (retired by a reload). */
const char *cache_chain_name(cache_t *c, const chain_t *ch);
/* Chains that came into use since the last call (start, reload) are told to cache_dict_chain_added. */
void cache_profiles_dict_sync(cache_t *c);

/* cache_dict.c */
cache_dict_t *cache_dict(cache_t *c);
cache_dict_t *cache_dict_create(cache_t *c);
void cache_dict_destroy(cache_dict_t *dd);
void cache_dict_configure(cache_dict_t *dd, const char *prefix, const char *dir);
/* Chain ch of the cache called name came into use (start, reload): with memory:// and dictionary-dir, load
 * that cache's dictionaries. */
void cache_dict_chain_added(cache_dict_t *dd, chain_t *ch, const char *name);
/* After a value was encoded with ch on the loop thread: start a training if its sample says so. */
void cache_dict_after_encode(cache_dict_t *dd, chain_t *ch);
/* Values about to be decoded, value i with chs[i]: fetch the dictionaries they name that their chains lack;
 * with can_wait, 1 when resume(arg) will be called once all of them are there (or could not be had), 0
 * when there is nothing to wait for. */
int cache_dict_wait(cache_dict_t *dd, chain_t *const *chs, const bytes_t *vals, size_t n, int can_wait,
                    void (*resume)(void *), void *arg);
/* v did not decode for want of a dictionary, in a step that cannot wait: fetch it for the next time. */
void cache_dict_fetch_for(cache_dict_t *dd, chain_t *ch, bytes_t v);
void cache_dict_train(cache_dict_t *dd, chain_t *ch, size_t dict_size, backend_cb *cb, void *ctx);
void cache_dict_load(cache_dict_t *dd, chain_t *ch, bytes_t bytes, backend_cb *cb, void *ctx);
void cache_dict_info(const cache_dict_t *dd, buf_t *out);

/* The op through the codec chain (what cache_submit does without a near cache). */
int cache_chain_submit(cache_t *c, const backend_op_t *op, backend_cb *cb, void *ctx, int may_offload);

/* The near cache of c with opts, tracking backend b: NULL with err when b cannot track. */
cache_near_t *cache_near_create(cache_t *c, backend_t *b, const cache_near_opts_t *opts, char *err, size_t errlen);
void cache_near_destroy(cache_near_t *nc);
/* Stop tracking the backend (it is about to go); the near cache is emptied and keeps nothing more. */
void cache_near_release(cache_near_t *nc);
/* A reload: the sizes and the TTL bound (near-cache and near-cache-prefixes need a restart). */
void cache_near_reconfigure(cache_near_t *nc, const cache_near_opts_t *opts);
/* The backend was replaced: track the new one (everything kept is dropped). 0, or -1 with err (the near
 * cache is then off). */
int cache_near_set_backend(cache_near_t *nc, backend_t *b, char *err, size_t errlen);
/* op through the near cache: raw 0, through the chain then (cache_chain_submit); raw 1, straight to the
 * backend (the stored bytes: nothing is served from or kept in the near cache, writes still drop what
 * they change). Returns what cache_chain_submit returns. */
int cache_near_submit(cache_near_t *nc, const backend_op_t *op, backend_cb *cb, void *ctx, int may_offload, int raw);
void cache_near_info(const cache_near_t *nc, buf_t *out);
void cache_near_metrics(const cache_near_t *nc, const char *cache_name, buf_t *out);
void cache_near_stats_reset(cache_near_t *nc);
/* The caches' near settings changed (a reload): drop the entries of keys no longer kept. NULL ok. */
void cache_near_refilter(cache_near_t *nc);
/* near.c's policy: -1 for a key whose cache keeps nothing near, else its cache's near-cache-ttl. */
long long cache_profiles_near_policy(void *arg, bytes_t key);
/* c's near cache, or NULL. */
cache_near_t *cache_near_of(cache_t *c);

#endif
