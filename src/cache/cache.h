/*
 * cache: a codec chain in front of a backend — what cachetory calls a Cache (serializer + backend).
 *
 * Commands submit backend ops through cache_submit(). Values on their way in are encoded by the chain,
 * values on their way out decoded; keys never are. Read-modify-write ops (BE_UPDATE: APPEND, INCR...)
 * decode the old value, let the command modify it, and encode the new one, inside the backend's atomic
 * step. With null:// the op goes straight to the backend.
 *
 * Values of codec-thread-min-size bytes or more are encoded and decoded on libuv's thread pool, so that
 * one large value does not stall every other client. Decoding, the size is the decoded one: a value
 * stored smaller is decoded inline within that budget and goes to the pool if it exceeds it
 * (chain_decode_budget). Read-modify-write ops and the checks of GETSET / GETDEL / GETEX decode inline. cache_submit() returns 1 when it sent the op's
 * values to the thread pool before the backend has seen the op: the caller must then hold the client's
 * following commands until the callback, so that its commands still reach the backend in order.
 */
#ifndef CACHETORYD_CACHE_CACHE_H
#define CACHETORYD_CACHE_CACHE_H

#include <uv.h>

#include "backend/backend.h"
#include "codec/chain.h"

typedef struct cache_stats {
    unsigned long long encodes;             /* values encoded */
    unsigned long long encode_bytes_in;     /* their size before encoding */
    unsigned long long encode_bytes_out;    /* their size after */
    unsigned long long encode_usec;
    unsigned long long encode_errors;       /* values the serializer refused */
    unsigned long long decodes;             /* stored values decoded */
    unsigned long long decode_bytes_in;     /* their stored size */
    unsigned long long decode_bytes_out;    /* their decoded size */
    unsigned long long decode_usec;
    unsigned long long decode_errors;       /* strict mode, or past max-decoded-size */
    unsigned long long undecoded;           /* returned as stored: not in the chain's format (mixed mode) */
    unsigned long long offloaded;           /* encodes and decodes done on the thread pool */
} cache_stats_t;

typedef struct cache cache_t;

/* The near cache (cache_near.c): decoded values of hot keys kept in this process, in front of an
 * upstream that tells which keys change. */
typedef struct cache_near_opts {
    long long size;                     /* near-cache-size: bytes at most, LRU beyond */
    long long max_value;                /* near-cache-max-value-size: longer values are not kept */
    long long ttl_ms;                   /* near-cache-ttl: an entry's life at most, 0 = its key's TTL only */
    const char *prefixes;               /* near-cache-prefixes: space-separated; NULL or "": every key */
    int ping_ms;                        /* the invalidation connection is PINGed this often */
} cache_near_opts_t;

/* A named cache ([cache.NAME]): the keys under its prefixes use its serializer and default-ttl. */
typedef struct cache_def {
    const char *name;                   /* 1..32 of A-Z a-z 0-9 _ - ; not "default" */
    const char *prefixes;               /* one or more, separated by spaces; no prefix in two caches */
    const char *serializer;             /* its codec chain URL */
    int default_ttl;                    /* seconds, 0 = none */
    int near;                           /* its keys may be kept in the near cache (when there is one) */
    long long near_ttl_ms;              /* ... for this long at most, 0 = their TTL upstream */
} cache_def_t;

cache_t *cache_create(const char *name, const char *serializer, backend_t *backend, uv_loop_t *loop,
                      size_t thread_min, size_t max_bulk, char *err, size_t errlen);
void cache_destroy(cache_t *c);
/* Nice value (0..19) a thread-pool thread takes when it first runs a codec job; process-wide. */
void cache_set_thread_nice(int nice);

/* Submit op; cb(ctx, result) exactly once. may_offload 0 keeps every codec step on this thread
 * (inside EXEC). Returns 1 if the op waits for the thread pool before reaching the backend. */
int cache_submit(cache_t *c, const backend_op_t *op, backend_cb *cb, void *ctx, int may_offload);

/* Submit op straight to the backend, past the codec chain (CACHE RAWGET / RAWSET, forwarded commands,
 * SELECT, INFO...): nothing is decoded or served from the near cache, but its writes still drop what
 * they change there. */
void cache_submit_raw(cache_t *c, const backend_op_t *op, backend_cb *cb, void *ctx);

/* Turn the near cache on (the backend must track: an upstream Redis), or when it is on already apply
 * opts' sizes and TTL bound (a reload). 0, or -1 with err. */
int cache_set_near(cache_t *c, const cache_near_opts_t *opts, char *err, size_t errlen);
/* The backend is about to be destroyed: the near cache stops tracking it (cache_destroy after the backend
 * is gone touches it no more). */
void cache_release_backend(cache_t *c);
/* INFO near_cache's fields ("near_cache_enabled:0" when off). */
void cache_near_section(cache_t *c, buf_t *out);

/* Where trained zstd dictionaries are kept (cache_dict.c): under key_prefix<id> upstream, and with
 * memory:// in dir (NULL or "": nowhere), whose dictionaries are loaded now. */
void cache_set_dict_store(cache_t *c, const char *key_prefix, const char *dir);
/* CACHE DICT TRAIN (load 0; dict_size 0: the serializer's dictionary-size) or LOAD (load 1, bytes: a
 * dictionary) for the cache called name (NULL: the default one): cb once, with integer = the dictionary's
 * ID that new values now use, or BE_ERR. -1 (and no cb) when no cache has that name. */
int cache_dict_command(cache_t *c, const char *name, int load, bytes_t bytes, size_t dict_size, backend_cb *cb,
                       void *ctx);

/* Append the cache's INFO fields. */
void cache_info(cache_t *c, buf_t *out);
void cache_stats_reset(cache_t *c);
void cache_metrics(cache_t *c, buf_t *out);        /* Prometheus lines */
backend_t *cache_backend(cache_t *c);
/* The codec chain new values of the default cache are written with (chain_is_null, chain_url). */
const chain_t *cache_chain(const cache_t *c);
/* Codec jobs (encodes / decodes) on the thread pool whose completion has not run on the loop yet;
 * shutdown waits for 0. */
int cache_jobs(const cache_t *c);
/* reload: ops from now on go to b (the near cache tracks b, and drops what it kept) */
void cache_set_backend(cache_t *c, backend_t *b);
/* Replace the codec chain of the default cache (SIGHUP). 0, or -1 with err and the chain unchanged. */
int cache_set_serializer(cache_t *c, const char *serializer, size_t max_bulk, char *err, size_t errlen);
/* The default cache's default-ttl (seconds, 0 = none). */
void cache_set_default_ttl(cache_t *c, int seconds);
/* Whether the default cache's keys may be kept in the near cache, and for how long at most (ms, 0 = their
 * TTL upstream); a named cache has its own (cache_def_t). Both are on (1, 0) until set. */
void cache_set_default_near(cache_t *c, int on, long long ttl_ms);
/* 1 if c has a near cache (cache_set_near made one). */
int cache_near_on(const cache_t *c);

/*
 * Caches by key prefix. A key goes to the named cache with the longest prefix it starts with (byte-wise),
 * others to the default cache. Each value of an op is encoded and decoded with its own key's chain; a
 * multi-key op stays one backend op whatever caches its keys are in. Without named caches a key costs no
 * lookup.
 *
 * cache_configure makes defs the named caches, at start and on a reload: a cache whose serializer changed
 * gets a new chain (values on the thread pool finish with the old one), prefixes and default-ttl apply to
 * the commands from now on, caches not in defs take no more keys. All or nothing: 0, or -1 with err naming
 * the cache ("[cache.docs] serializer: ...") and nothing changed.
 */
int cache_configure(cache_t *c, const cache_def_t *defs, size_t n, size_t max_bulk, char *err, size_t errlen);
/* The caches configured now: 0 is the default one, then the named ones in defs' order. */
size_t cache_count(cache_t *c);
const char *cache_name_at(cache_t *c, size_t i);                /* NULL past the last */
const chain_t *cache_chain_at(cache_t *c, size_t i);            /* NULL past the last */
/* The chain of the cache called name now (NULL: the default one), or NULL when there is none. */
chain_t *cache_chain_named(cache_t *c, const char *name);
/* The chain and the default-ttl (seconds, 0 = none) of key's cache. */
const chain_t *cache_chain_for(cache_t *c, bytes_t key);
int cache_default_ttl(cache_t *c, bytes_t key);
/* A chain that encodes (not null://) among the caches configured now, or NULL when every one is null://
 * (scripts then see the clients' own bytes upstream). */
const chain_t *cache_chain_encoding(cache_t *c);

#endif
