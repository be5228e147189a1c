/*
 * cache/cache_int.h: what the files of the cache module share. Private to src/cache/.
 *
 *   cache.c       the codec chain around backend ops, and the thread pool
 *   near.c        the near tier's table: decoded values, LRU, tickets (no I/O)
 *   cache_near.c  the near cache in front of the chain: serves reads, follows writes, listens to the
 *                 backend's tracking
 *   cache_dict.c  zstd dictionaries: trainings started, stored (upstream / dictionary-dir) and fetched
 *   cache_thread.c  the thread pool threads' priority
 */
#ifndef CACHETORYD_CACHE_CACHE_INT_H
#define CACHETORYD_CACHE_CACHE_INT_H

#include "cache/cache.h"

typedef struct cache_near cache_near_t;

uv_loop_t *cache_loop(const cache_t *c);
const char *cache_name(const cache_t *c);
/* ch is one of c's chains still (a reload retires chains; completions check before touching one). */
int cache_chain_live(const cache_t *c, const chain_t *ch);
/* Work on the thread pool that shutdown must wait for (cache_jobs), up or down. */
void cache_jobs_add(cache_t *c, int delta);
/* On a thread-pool thread: take codec-thread-nice (once per thread). */
void cache_job_priority(void);

/* cache_dict.c */
typedef struct cache_dict cache_dict_t;
cache_dict_t *cache_dict_create(cache_t *c);
void cache_dict_destroy(cache_dict_t *dd);
void cache_dict_configure(cache_dict_t *dd, const char *prefix, const char *dir);
/* A chain came into use (start, reload): with memory:// and dictionary-dir, load its dictionaries. */
void cache_dict_chain_added(cache_dict_t *dd, chain_t *ch);
/* After a value was encoded with ch on the loop thread: start a training if its sample says so. */
void cache_dict_after_encode(cache_dict_t *dd, chain_t *ch);
/* Values about to be decoded with ch: if one names a dictionary ch lacks, fetch it; with can_wait, 1 when
 * resume(arg) will be called once it is there (or could not be had), 0 when there is nothing to wait for. */
int cache_dict_wait(cache_dict_t *dd, chain_t *ch, const bytes_t *vals, size_t n, int can_wait,
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

#endif
