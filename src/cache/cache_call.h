/*
 * cache/cache_call.h: an op in flight through the codec chain, and the thread pool's jobs. Private to
 * cache.c (the loop thread's side) and cache_job.c (the thread pool's).
 */
#ifndef CACHETORYD_CACHE_CACHE_CALL_H
#define CACHETORYD_CACHE_CACHE_CALL_H

#include "cache/cache_int.h"

#define CACHE_ERRLEN (CODEC_ERRLEN + 64)

/* One op in flight through the cache: where its result goes. */
typedef struct call {
    struct call *next;                  /* free list */
    cache_t *cache;
    backend_cb *cb;                     /* the command's callback */
    void *ctx;
    backend_update_fn *update;          /* BE_UPDATE: the command's modify step */
    void *update_arg;
    int may_offload;
    int checked;                        /* the old value was decoded by cache_check_fn, into kept */
    int fetched;                        /* a dictionary its values named was waited for already */
    int kept_as_is;                     /* ... and is the stored value itself */
    cache_profile_t *prof;              /* the cache of every value of the op, when many is NULL */
    cache_profile_t **many;             /* or the cache of each value, in key order (into many_buf) */
    cache_profile_t **many_buf;         /* kept from call to call */
    size_t many_cap;
    buf_t kept;                         /* a decoded old value, or an update's plain result, kept until the
                                           callback (a backend may call back after other ops ran) */
} call_t;

struct cache {
    char *name;
    backend_t *backend;
    cache_profiles_t pf;                /* the default cache and the named ones: chains, default-ttl, stats */
    uv_loop_t *loop;
    size_t thread_min;                  /* offload values of this many bytes; 0 = never */
    buf_t enc;                          /* encoded values of the op being submitted */
    buf_t dec;                          /* decoded values of the result being delivered */
    buf_t upd;                          /* BE_UPDATE: the command's new value before encoding */
    buf_t tmp;                          /* one value at a time, when several are coded */
    bytes_t *vec;                       /* value slices (MSET in, MGET out) */
    size_t vec_cap;
    size_t *offs;                       /* their offsets into enc / dec while those grow */
    size_t offs_cap;
    call_t *free_calls;
    int jobs;                           /* on the thread pool */
    cache_near_t *near;                 /* the near cache, or NULL */
    cache_dict_t *dict;                 /* zstd dictionaries: trainings, storing, fetching */
    int nodict;                         /* the last decode met a dictionary the chain does not have */
    char err[CACHE_ERRLEN];
};

/* What a job knows of each of its values. */
typedef struct job_val {
    cache_profile_t *prof;              /* its cache (the counters) */
    chain_t *chain;                     /* its chain when the job was made (a reload may replace it) */
    int state;                          /* CHAIN_OUT / CHAIN_AS_IS / CHAIN_ERROR */
    int undecoded;
    unsigned long long usec;
} job_val_t;

/* A job for the thread pool: encode or decode n values it owns copies of. */
typedef struct job {
    uv_work_t work;
    call_t *call;
    int decode;                         /* 0 encode, 1 decode */
    job_val_t *val;                     /* the n values' caches, chains and outcomes */
    backend_op_t op;                    /* ENCODE: the op to submit afterwards (slices into owned) */
    backend_result_t res;               /* DECODE: the backend's result, values into owned */
    long long *ttls;                    /* DECODE: a copy of res.ttls (the backend's goes with its callback);
                                           ENCODE: of op.ttls_ms (the command's goes when it is submitted) */
    buf_t owned;                        /* the copied keys and values */
    size_t n;
    bytes_t *in;                        /* the n inputs (ptr NULL: a missing MGET value) */
    buf_t *out;                         /* the n outputs */
    char err[CACHE_ERRLEN];
} job_t;

/* The cache of k's value i. */
static inline cache_profile_t *call_prof(const call_t *k, size_t i)
{
    return k->many != NULL ? k->many[i] : k->prof;
}

static inline void call_put(call_t *k)
{
    k->next = k->cache->free_calls;
    k->cache->free_calls = k;
}

/* k's command gets err; k goes back to the free list. */
void call_fail(call_t *k, const char *err);
/* The backend answered an op with values to decode (GET family, SET ... GET, MGET). */
void cache_done_cb(void *ctx, const backend_result_t *res);
/* The check step of ops that return and change a value (SET ... GET, GETDEL, GETEX). */
int cache_check_fn(void *arg, const bytes_t *old, const char **err);

/* cache_job.c */
void job_destroy(job_t *j);
/* The result a job holds, its values pointing at the job's values (vals: room for j->n). */
backend_result_t job_result_all(const job_t *j, bytes_t *vals);
/* A decode job holding a copy of a result (its values, its TTLs), not run yet. */
job_t *job_for_result(call_t *k, const backend_result_t *res, const bytes_t *vals, size_t n);
/* Encode the values of a SET / MSET on the thread pool, then submit the op from the loop thread. */
void cache_offload_encode(cache_t *c, call_t *k, const backend_op_t *op);
/* Decode a result's values on the thread pool; the command's callback runs afterwards. */
void cache_offload_decode(cache_t *c, call_t *k, const backend_result_t *res, const bytes_t *vals, size_t n);

#endif
