/*
 * cache/cache_int.h: what the files of the cache module share. Private to src/cache/.
 *
 *   cache.c       the codec chain around backend ops, and the thread pool
 *   near.c        the near tier's table: decoded values, LRU, tickets (no I/O)
 *   cache_near.c  the near cache in front of the chain: serves reads, follows writes, listens to the
 *                 backend's tracking
 */
#ifndef CACHETORYD_CACHE_CACHE_INT_H
#define CACHETORYD_CACHE_CACHE_INT_H

#include "cache/cache.h"

typedef struct cache_near cache_near_t;

uv_loop_t *cache_loop(const cache_t *c);

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

#endif
