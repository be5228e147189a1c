/*
 * cache: the codec chain applied around backend ops.
 *
 * On the loop thread the chain works in the cache's scratch buffers (enc for values going in, dec for
 * values coming out), which stay valid until the backend's callback returns, as the backend contract
 * asks. On the thread pool a job owns copies of its inputs and its outputs.
 */
#include "cache/cache_int.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

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
    buf_t kept;                         /* a decoded old value, or an update's plain result, kept until the
                                           callback (a backend may call back after other ops ran) */
} call_t;

struct cache {
    char *name;
    backend_t *backend;
    chain_t *chain;
    uv_loop_t *loop;
    size_t thread_min;                  /* offload values of this many bytes; 0 = never */
    cache_stats_t stats;
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
    chain_t *retired[16];               /* chains replaced by a reload, kept for jobs that still use them */
    int nretired;
    char err[CACHE_ERRLEN];
};

/* A job for the thread pool: encode or decode n values it owns copies of. */
typedef struct job {
    uv_work_t work;
    call_t *call;
    int decode;                         /* 0 encode, 1 decode */
    chain_t *chain;                     /* the chain when the job was made (a reload may replace it) */
    backend_op_t op;                    /* ENCODE: the op to submit afterwards (slices into owned) */
    backend_result_t res;               /* DECODE: the backend's result, values into owned */
    long long *ttls;                    /* DECODE: a copy of res.ttls (the backend's goes with its callback) */
    buf_t owned;                        /* the copied keys and values */
    size_t n;
    bytes_t *in;                        /* the n inputs (ptr NULL: a missing MGET value) */
    buf_t *out;                         /* the n outputs */
    int *state;                         /* CHAIN_OUT / CHAIN_AS_IS / CHAIN_ERROR per value */
    unsigned long long usec, undecoded;
    char err[CACHE_ERRLEN];
} job_t;

static void *vec_grow(void *p, size_t *cap, size_t n, size_t elem)
{
    if (n <= *cap)
        return p;
    size_t c = *cap ? *cap : 16;
    while (c < n)
        c *= 2;
    *cap = c;
    return mem_realloc(p, c * elem);
}

static call_t *call_get(cache_t *c, backend_cb *cb, void *ctx, int may_offload)
{
    call_t *k = c->free_calls;
    buf_t kept;
    if (k != NULL) {
        c->free_calls = k->next;
        kept = k->kept;
    } else {
        k = mem_alloc(sizeof(*k));
        buf_init(&kept);
    }
    memset(k, 0, sizeof(*k));
    buf_reset(&kept);
    if (kept.cap > (64u << 10))
        buf_deinit(&kept);
    k->kept = kept;
    k->cache = c;
    k->cb = cb;
    k->ctx = ctx;
    k->may_offload = may_offload;
    return k;
}

static void call_put(call_t *k)
{
    k->next = k->cache->free_calls;
    k->cache->free_calls = k;
}

static void call_fail(call_t *k, const char *err)
{
    backend_result_t res = { .status = BE_ERR, .err = err };
    k->cb(k->ctx, &res);
    call_put(k);
}

/* A value that names a zstd dictionary not here yet cannot be changed: it would be taken for plain bytes. */
static const char cache_nodict_err[] = "ERR the stored value was compressed with a zstd dictionary this daemon does "
                                       "not have: left unchanged (a dictionary stored upstream is being fetched: "
                                       "try again; INFO cache and the log say more)";

/* ---- loop-thread encode / decode, with the counters ---------------------------------------------- */

/* Encode one value into out (emptied first). Returns CHAIN_OUT (the bytes are in out), CHAIN_AS_IS, or
 * CHAIN_ERROR with c->err. */
static int cache_encode_one(cache_t *c, bytes_t v, buf_t *out)
{
    long long t0 = clock_us_monotonic();
    int rc = chain_encode(c->chain, chain_main_ctx(c->chain), v.ptr, v.len, out, c->err);

    c->stats.encode_usec += (unsigned long long)(clock_us_monotonic() - t0);
    if (rc == CHAIN_ERROR) {
        c->stats.encode_errors++;
        return rc;
    }
    c->stats.encodes++;
    c->stats.encode_bytes_in += v.len;
    c->stats.encode_bytes_out += rc == CHAIN_OUT ? out->len : v.len;
    cache_dict_after_encode(c->dict, c->chain);
    return rc;
}

/* Decode one stored value into out (emptied first), giving up past budget decoded bytes
 * (CHAIN_OVER_BUDGET, not counted as a decode: the thread pool will do it). Otherwise as cache_encode_one. */
static int cache_decode_one(cache_t *c, bytes_t v, size_t budget, buf_t *out)
{
    int undecoded;
    long long t0 = clock_us_monotonic();
    int rc = chain_decode_budget(c->chain, chain_main_ctx(c->chain), v.ptr, v.len, budget, out, c->err,
                                 &undecoded);

    c->stats.decode_usec += (unsigned long long)(clock_us_monotonic() - t0);
    c->nodict = undecoded == CHAIN_UNDECODED_NODICT;
    if (c->nodict)
        cache_dict_fetch_for(c->dict, c->chain, v);
    if (rc == CHAIN_OVER_BUDGET)
        return rc;
    if (rc == CHAIN_ERROR) {
        c->stats.decode_errors++;
        return rc;
    }
    c->stats.decodes++;
    c->stats.undecoded += (unsigned long long)(undecoded != 0);
    c->stats.decode_bytes_in += v.len;
    c->stats.decode_bytes_out += rc == CHAIN_OUT ? out->len : v.len;
    return rc;
}

/*
 * Run encode (or decode) over n values into c->vec. One value is coded straight into dst; several are
 * coded one by one through c->tmp and gathered in dst, and their slices made once dst stops moving.
 * Decoding, the values may make budget bytes together (SIZE_MAX: no budget). Returns 0, -1 with c->err,
 * or -2 when the values decode to more than the budget (nothing is delivered; the stats count none).
 */
static int cache_code_all(cache_t *c, int decode, const bytes_t *vals, size_t n, buf_t *dst, size_t budget)
{
    size_t used = 0;

    c->vec = vec_grow(c->vec, &c->vec_cap, n, sizeof(*c->vec));
    c->offs = vec_grow(c->offs, &c->offs_cap, n, sizeof(*c->offs));
    buf_reset(dst);
    for (size_t i = 0; i < n; i++) {
        buf_t *out = n == 1 ? dst : &c->tmp;
        int rc = CHAIN_AS_IS;
        if (vals[i].ptr != NULL)
            rc = decode ? cache_decode_one(c, vals[i], budget == SIZE_MAX ? SIZE_MAX : budget - used, out)
                        : cache_encode_one(c, vals[i], out);
        if (rc == CHAIN_ERROR)
            return -1;
        if (rc == CHAIN_OVER_BUDGET)
            return -2;
        size_t len = rc == CHAIN_AS_IS ? vals[i].len : out->len;
        if (budget != SIZE_MAX) {
            if (len > budget - used)
                return -2;
            used += len;
        }
        if (rc == CHAIN_AS_IS) {
            c->vec[i] = vals[i];
            c->offs[i] = SIZE_MAX;
            continue;
        }
        c->offs[i] = n == 1 ? 0 : dst->len;
        c->vec[i].len = out->len;
        if (n > 1)
            buf_append(dst, out->data, out->len);
    }
    for (size_t i = 0; i < n; i++)
        if (c->offs[i] != SIZE_MAX)
            c->vec[i].ptr = dst->data ? dst->data + c->offs[i] : "";
    if (c->tmp.cap > (1u << 20))
        buf_deinit(&c->tmp);
    return 0;
}

/* ---- the thread pool ------------------------------------------------------------------------------ */

static void cache_done_cb(void *ctx, const backend_result_t *res);
static int cache_check_fn(void *arg, const bytes_t *old, const char **err);

static job_t *job_create(call_t *k, int decode, size_t n)
{
    job_t *j = mem_calloc(1, sizeof(*j));
    j->work.data = j;
    j->call = k;
    j->chain = k->cache->chain;
    j->decode = decode;
    j->n = n;
    j->in = mem_calloc(n ? n : 1, sizeof(*j->in));
    j->out = mem_calloc(n ? n : 1, sizeof(*j->out));
    j->state = mem_calloc(n ? n : 1, sizeof(*j->state));
    buf_init(&j->owned);
    return j;
}

static void job_destroy(job_t *j)
{
    for (size_t i = 0; i < j->n; i++)
        buf_deinit(&j->out[i]);
    mem_free(j->in);
    mem_free(j->out);
    mem_free(j->state);
    mem_free(j->ttls);
    buf_deinit(&j->owned);
    mem_free(j);
}

/* Copy slices into j->owned and point dst at the copies (done after all copying, as owned moves). */
static void job_own(job_t *j, const bytes_t *src, bytes_t *dst, size_t n, size_t *offs)
{
    for (size_t i = 0; i < n; i++) {
        offs[i] = j->owned.len;
        buf_append(&j->owned, src[i].ptr ? src[i].ptr : "", src[i].len);
    }
    for (size_t i = 0; i < n; i++)
        dst[i] = (bytes_t){ src[i].ptr ? j->owned.data + offs[i] : NULL, src[i].len };
}

void cache_jobs_add(cache_t *c, int delta)
{
    c->jobs += delta;
}

static void job_work_cb(uv_work_t *w)
{
    job_t *j = w->data;
    chain_t *ch = j->chain;
    cache_job_priority();
    chain_ctx_t *ctx = chain_ctx_get(ch);
    long long t0 = clock_us_monotonic();

    for (size_t i = 0; i < j->n; i++) {
        int undecoded = 0;
        if (j->in[i].ptr == NULL)
            continue;
        j->state[i] = j->decode
                          ? chain_decode(ch, ctx, j->in[i].ptr, j->in[i].len, &j->out[i], j->err, &undecoded)
                          : chain_encode(ch, ctx, j->in[i].ptr, j->in[i].len, &j->out[i], j->err);
        j->undecoded += (unsigned long long)(undecoded != 0);
        if (j->state[i] == CHAIN_ERROR)
            break;
    }
    chain_ctx_put(ch, ctx);
    j->usec = (unsigned long long)(clock_us_monotonic() - t0);
}

/* The value i of a finished job, as it should go on. */
static bytes_t job_result(const job_t *j, size_t i)
{
    if (j->in[i].ptr == NULL || j->state[i] != CHAIN_OUT)
        return j->in[i];
    return (bytes_t){ j->out[i].data ? j->out[i].data : "", j->out[i].len };
}

/* The result a job holds, its values pointing at the job's values (vals: room for j->n). */
static backend_result_t job_result_all(const job_t *j, bytes_t *vals)
{
    backend_result_t res = j->res;
    for (size_t i = 0; i < j->n; i++)
        vals[i] = job_result(j, i);
    if (res.values != NULL)
        res.values = vals;
    else
        res.value = vals[0];
    return res;
}

static void job_after_cb(uv_work_t *w, int status)
{
    job_t *j = w->data;
    call_t *k = j->call;
    cache_t *c = k->cache;
    int failed = 0;

    c->stats.offloaded += j->n;
    c->jobs--;
    for (size_t i = 0; i < j->n; i++) {
        if (j->in[i].ptr == NULL)
            continue;
        if (j->state[i] == CHAIN_ERROR) {
            failed = 1;
            break;
        }
        bytes_t r = job_result(j, i);
        if (j->decode) {
            c->stats.decodes++;
            c->stats.decode_bytes_in += j->in[i].len;
            c->stats.decode_bytes_out += r.len;
        } else {
            c->stats.encodes++;
            c->stats.encode_bytes_in += j->in[i].len;
            c->stats.encode_bytes_out += r.len;
        }
    }
    if (j->decode) {
        c->stats.decode_usec += j->usec;
        c->stats.undecoded += j->undecoded;
        c->stats.decode_errors += (unsigned long long)failed;
    } else {
        c->stats.encode_usec += j->usec;
        c->stats.encode_errors += (unsigned long long)failed;
    }
    if (status < 0 || failed) {
        call_fail(k, status < 0 ? "ERR the encoding job was cancelled" : j->err);
        job_destroy(j);
        return;
    }
    if (j->decode) {
        bytes_t *vals = mem_alloc((j->n ? j->n : 1) * sizeof(*vals));
        backend_result_t res = job_result_all(j, vals);
        k->cb(k->ctx, &res);
        call_put(k);
        mem_free(vals);
    } else {
        bytes_t *vals = mem_alloc((j->n ? j->n : 1) * sizeof(*vals));
        for (size_t i = 0; i < j->n; i++)
            vals[i] = job_result(j, i);
        if (j->op.code == BE_SET)
            j->op.value = vals[0];
        else
            j->op.vals = vals;
        if (j->op.flags & BE_GETOLD) {
            j->op.check = cache_check_fn;
            j->op.check_arg = k;
        }
        backend_submit(c->backend, &j->op, cache_done_cb, k);
        mem_free(vals);
    }
    job_destroy(j);
}

/* Encode the values of a SET / MSET on the thread pool, then submit the op from the loop thread. */
static void cache_offload_encode(cache_t *c, call_t *k, const backend_op_t *op)
{
    size_t n = op->code == BE_SET ? 1 : op->nkeys;
    const bytes_t *vals = op->code == BE_SET ? &op->value : op->vals;
    job_t *j = job_create(k, 0, n);
    size_t nk = op->code == BE_SET ? 1 : op->nkeys;
    const bytes_t *keys = op->code == BE_SET ? &op->key : op->keys;
    bytes_t *all = mem_alloc((n + nk) * sizeof(*all));
    bytes_t *owned = mem_alloc((n + nk) * sizeof(*owned));
    size_t *offs = mem_alloc((n + nk) * sizeof(*offs));

    memcpy(all, vals, n * sizeof(*all));
    memcpy(all + n, keys, nk * sizeof(*all));
    c->jobs++;
    job_own(j, all, owned, n + nk, offs);
    memcpy(j->in, owned, n * sizeof(*owned));
    j->op = *op;
    if (op->code == BE_SET) {
        j->op.key = owned[n];
    } else {
        /* the key slices must outlive this call: keep them after the inputs in one block */
        bytes_t *keep = mem_realloc(j->in, (n + nk) * sizeof(*keep));
        memcpy(keep + n, owned + n, nk * sizeof(*keep));
        j->in = keep;
        j->op.keys = keep + n;
    }
    mem_free(all);
    mem_free(owned);
    mem_free(offs);
    uv_queue_work(c->loop, &j->work, job_work_cb, job_after_cb);
}

/* A decode job holding a copy of a result (its values, its TTLs): for the thread pool, or to wait for a
 * dictionary with. */
static job_t *job_for_result(call_t *k, const backend_result_t *res, const bytes_t *vals, size_t n)
{
    job_t *j = job_create(k, 1, n);
    size_t *offs = mem_alloc((n ? n : 1) * sizeof(*offs));

    job_own(j, vals, j->in, n, offs);
    for (size_t i = 0; i < n; i++)
        j->state[i] = CHAIN_AS_IS;      /* not decoded yet: job_result gives the stored value */
    mem_free(offs);
    j->res = *res;
    if (res->ttls != NULL) {
        j->ttls = mem_alloc((n ? n : 1) * sizeof(*j->ttls));
        memcpy(j->ttls, res->ttls, n * sizeof(*j->ttls));
        j->res.ttls = j->ttls;
    }
    return j;
}

/* Decode a result's values on the thread pool; the command's callback runs afterwards. */
static void cache_offload_decode(cache_t *c, call_t *k, const backend_result_t *res, const bytes_t *vals, size_t n)
{
    job_t *j = job_for_result(k, res, vals, n);

    c->jobs++;
    uv_queue_work(c->loop, &j->work, job_work_cb, job_after_cb);
}

/* ---- results --------------------------------------------------------------------------------------- */

/* The values a result carries that are stored values (not keys). */
static const bytes_t *result_values(const backend_result_t *res, size_t *n)
{
    if (res->status == BE_ERR) {
        *n = 0;
        return NULL;
    }
    if (res->values != NULL) {
        *n = res->nvalues;
        return res->values;
    }
    *n = res->has_value ? 1 : 0;
    return &res->value;
}

/*
 * Decode the value an op is about to return and change (SET ... GET, GETDEL, GETEX) before it changes
 * anything: a value that cannot be returned (strict mode, past max-decoded-size) is then left as it
 * was. The decoded value waits in c->vec[0] for cache_done_cb.
 */
static int cache_check_fn(void *arg, const bytes_t *old, const char **err)
{
    call_t *k = arg;
    cache_t *c = k->cache;

    if (cache_code_all(c, 1, old, 1, &c->dec, SIZE_MAX) < 0) {
        *err = c->err;
        return -1;
    }
    if (c->nodict) {
        *err = cache_nodict_err;
        return -1;
    }
    k->checked = 1;
    k->kept_as_is = c->vec[0].ptr == old->ptr;
    if (!k->kept_as_is)
        buf_append(&k->kept, c->vec[0].ptr, c->vec[0].len);
    return 0;
}

/* A dictionary cache_done_cb waited for is there (or could not be had): decode the kept result now. */
static void cache_dict_resume_cb(void *arg)
{
    job_t *j = arg;
    bytes_t *vals = mem_alloc((j->n ? j->n : 1) * sizeof(*vals));
    backend_result_t res = job_result_all(j, vals);

    j->call->fetched = 1;
    cache_done_cb(j->call, &res);
    mem_free(vals);
    job_destroy(j);
}

/* The backend answered an op with values to decode (GET family, SET ... GET, MGET). */
static void cache_done_cb(void *ctx, const backend_result_t *res)
{
    call_t *k = ctx;
    cache_t *c = k->cache;
    size_t n, total = 0;
    const bytes_t *vals = result_values(res, &n);

    if (n == 1 && k->checked) {
        backend_result_t out = *res;
        if (!k->kept_as_is)
            out.value = (bytes_t){ k->kept.data ? k->kept.data : "", k->kept.len };
        k->cb(k->ctx, &out);
        call_put(k);
        return;
    }
    if (n == 0) {
        k->cb(k->ctx, res);
        call_put(k);
        return;
    }
    /* The thread pool takes values that decode to codec-thread-min-size bytes or more. Their stored size
     * does not tell (128 MB of zeros are 4 KB of zstd): a value stored that large goes at once, smaller
     * ones are decoded here within a budget of thread_min - 1 decoded bytes, and go if they exceed it.
     * A zstd frame declares its size, so it is sent without any work done; a zlib stream, which does
     * not, costs at most the inflating of thread_min bytes before it is sent (what a value just under
     * the threshold costs anyway), where a ratio bound (zlib's ~1032:1) would send every zlib value of
     * 64 stored bytes or more to the pool. */
    /* A value naming a dictionary not here: wait for it (one GET upstream), unless inside EXEC. */
    if (!k->fetched && chain_dicts(c->chain) != NULL) {
        size_t i = 0;
        while (i < n && (vals[i].ptr == NULL || chain_missing_dict(c->chain, vals[i].ptr, vals[i].len) == 0))
            i++;
        if (i < n) {
            job_t *j = k->may_offload ? job_for_result(k, res, vals, n) : NULL;
            if (cache_dict_wait(c->dict, c->chain, vals, n, j != NULL, cache_dict_resume_cb, j))
                return;
            if (j != NULL)
                job_destroy(j);
        }
    }
    for (size_t i = 0; i < n; i++)
        total += vals[i].len;
    int offload = k->may_offload && c->thread_min > 0;
    if (offload && total >= c->thread_min) {
        cache_offload_decode(c, k, res, vals, n);
        return;
    }
    int rc = cache_code_all(c, 1, vals, n, &c->dec, offload ? c->thread_min - 1 : SIZE_MAX);
    if (rc == -2) {
        cache_offload_decode(c, k, res, vals, n);
        return;
    }
    if (rc < 0) {
        call_fail(k, c->err);
        return;
    }
    backend_result_t out = *res;
    if (res->values != NULL)
        out.values = c->vec;
    else
        out.value = c->vec[0];
    k->cb(k->ctx, &out);
    call_put(k);
    if (c->dec.cap > (1u << 20))
        buf_deinit(&c->dec);
}

/* BE_UPDATE's modify step, wrapped: decode the old value, let the command modify it, encode the result.
 * Always on the loop thread: the backend runs it inside its atomic read-modify-write. */
static int cache_update_fn(void *arg, const bytes_t *old, buf_t *newval, backend_result_t *res)
{
    call_t *k = arg;
    cache_t *c = k->cache;
    bytes_t dold;

    if (old != NULL) {
        int rc = cache_decode_one(c, *old, SIZE_MAX, &c->dec);
        if (rc == CHAIN_ERROR) {
            res->err = c->err;
            return -1;
        }
        if (c->nodict) {
            res->err = cache_nodict_err;
            return -1;
        }
        dold = rc == CHAIN_OUT ? (bytes_t){ c->dec.data ? c->dec.data : "", c->dec.len } : *old;
    }
    buf_reset(&c->upd);
    int rc = k->update(k->update_arg, old ? &dold : NULL, &c->upd, res);
    if (rc != 0)
        return rc;
    if (res->has_value) {
        /* INCRBYFLOAT's reply is the new value: keep it with the call, c->upd is reused */
        buf_reset(&k->kept);
        buf_append(&k->kept, res->value.ptr, res->value.len);
        res->value = (bytes_t){ k->kept.data, k->kept.len };
    }
    rc = cache_encode_one(c, (bytes_t){ c->upd.data ? c->upd.data : "", c->upd.len }, &c->enc);
    if (rc == CHAIN_ERROR) {
        res->err = c->err;
        return -1;
    }
    if (rc == CHAIN_OUT)
        buf_append(newval, c->enc.data, c->enc.len);
    else
        buf_append(newval, c->upd.data, c->upd.len);
    return 0;
}

static void cache_update_done_cb(void *ctx, const backend_result_t *res)
{
    call_t *k = ctx;
    k->cb(k->ctx, res);
    call_put(k);
}

int cache_submit(cache_t *c, const backend_op_t *op, backend_cb *cb, void *ctx, int may_offload)
{
    if (c->near != NULL)
        return cache_near_submit(c->near, op, cb, ctx, may_offload, 0);
    return cache_chain_submit(c, op, cb, ctx, may_offload);
}

void cache_submit_raw(cache_t *c, const backend_op_t *op, backend_cb *cb, void *ctx)
{
    if (c->near != NULL)
        cache_near_submit(c->near, op, cb, ctx, 0, 1);
    else
        backend_submit(c->backend, op, cb, ctx);
}

int cache_chain_submit(cache_t *c, const backend_op_t *op, backend_cb *cb, void *ctx, int may_offload)
{
    call_t *k;
    backend_op_t op2;

    if (chain_is_null(c->chain)) {
        backend_submit(c->backend, op, cb, ctx);
        return 0;
    }
    switch (op->code) {
    case BE_GET:
    case BE_MGET:
        k = call_get(c, cb, ctx, may_offload);
        if (op->flags & (BE_GETDEL | BE_SETTTL)) {
            op2 = *op;
            op2.check = cache_check_fn;
            op2.check_arg = k;
            backend_submit(c->backend, &op2, cache_done_cb, k);
        } else {
            backend_submit(c->backend, op, cache_done_cb, k);
        }
        return 0;
    case BE_UPDATE:
        k = call_get(c, cb, ctx, 0);
        k->update = op->update;
        k->update_arg = op->update_arg;
        op2 = *op;
        op2.update = cache_update_fn;
        op2.update_arg = k;
        op2.argc = 0;           /* the backend must not run the command itself on encoded values */
        op2.argv = NULL;
        backend_submit(c->backend, &op2, cache_update_done_cb, k);
        return 0;
    case BE_SET:
    case BE_MSET:
        break;
    default:
        backend_submit(c->backend, op, cb, ctx);
        return 0;
    }

    /* SET, MSET: encode the values, then submit. */
    size_t n = op->code == BE_SET ? 1 : op->nkeys, total = 0;
    const bytes_t *vals = op->code == BE_SET ? &op->value : op->vals;
    k = call_get(c, cb, ctx, may_offload);
    for (size_t i = 0; i < n; i++)
        total += vals[i].len;
    if (may_offload && c->thread_min > 0 && total >= c->thread_min) {
        cache_offload_encode(c, k, op);
        return 1;
    }
    if (cache_code_all(c, 0, vals, n, &c->enc, SIZE_MAX) < 0) {
        call_fail(k, c->err);
        return 0;
    }
    op2 = *op;
    if (op->code == BE_SET)
        op2.value = c->vec[0];
    else
        op2.vals = c->vec;
    if (op->flags & BE_GETOLD) {
        op2.check = cache_check_fn;
        op2.check_arg = k;
    }
    backend_submit(c->backend, &op2, cache_done_cb, k);
    if (c->enc.cap > (1u << 20))
        buf_deinit(&c->enc);
    return 0;
}

cache_t *cache_create(const char *name, const char *serializer, backend_t *backend, uv_loop_t *loop,
                      size_t thread_min, size_t max_bulk, char *err, size_t errlen)
{
    chain_t *ch = chain_create(serializer, max_bulk, err, errlen);
    if (ch == NULL)
        return NULL;
    cache_t *c = mem_calloc(1, sizeof(*c));
    c->name = mem_strdup(name);
    c->backend = backend;
    c->chain = ch;
    c->loop = loop;
    c->thread_min = thread_min;
    c->dict = cache_dict_create(c);
    buf_init(&c->enc);
    buf_init(&c->dec);
    buf_init(&c->upd);
    buf_init(&c->tmp);
    return c;
}

void cache_destroy(cache_t *c)
{
    if (c == NULL)
        return;
    cache_near_destroy(c->near);
    cache_dict_destroy(c->dict);
    while (c->free_calls != NULL) {
        call_t *k = c->free_calls;
        c->free_calls = k->next;
        buf_deinit(&k->kept);
        mem_free(k);
    }
    chain_destroy(c->chain);
    for (int i = 0; i < c->nretired; i++)
        chain_destroy(c->retired[i]);
    buf_deinit(&c->enc);
    buf_deinit(&c->dec);
    buf_deinit(&c->upd);
    buf_deinit(&c->tmp);
    mem_free(c->vec);
    mem_free(c->offs);
    mem_free(c->name);
    mem_free(c);
}

/*
 * A reload names another serializer: new writes use it; reads decode with it too (a value written with
 * the old chain reads back as stored in mixed mode). The old chain stays alive for thread-pool jobs that
 * hold it, until the cache goes (a few reloads' worth; past that the oldest is freed once no job runs).
 */
int cache_set_serializer(cache_t *c, const char *serializer, size_t max_bulk, char *err, size_t errlen)
{
    chain_t *ch = chain_create(serializer, max_bulk, err, errlen);
    if (ch == NULL)
        return -1;
    if (c->nretired == (int)(sizeof(c->retired) / sizeof(c->retired[0]))) {
        if (c->jobs > 0) {
            chain_destroy(ch);
            snprintf(err, errlen, "too many serializer changes while values are being encoded; try again");
            return -1;
        }
        for (int i = 0; i < c->nretired; i++)
            chain_destroy(c->retired[i]);
        c->nretired = 0;
    }
    c->retired[c->nretired++] = c->chain;
    c->chain = ch;
    cache_dict_chain_added(c->dict, ch);
    return 0;
}

void cache_set_backend(cache_t *c, backend_t *b)
{
    char err[256];

    c->backend = b;
    if (c->near != NULL && cache_near_set_backend(c->near, b, err, sizeof(err)) < 0)
        log_warn("near cache off: %s", err);
}

int cache_set_near(cache_t *c, const cache_near_opts_t *opts, char *err, size_t errlen)
{
    if (c->near != NULL) {
        cache_near_reconfigure(c->near, opts);
        return 0;
    }
    c->near = cache_near_create(c, c->backend, opts, err, errlen);
    return c->near != NULL ? 0 : -1;
}

void cache_release_backend(cache_t *c)
{
    if (c->near != NULL)
        cache_near_release(c->near);
}

void cache_near_section(cache_t *c, buf_t *out)
{
    cache_near_info(c->near, out);
}

int cache_jobs(const cache_t *c)
{
    return c->jobs;
}

uv_loop_t *cache_loop(const cache_t *c)
{
    return c->loop;
}

const char *cache_name(const cache_t *c)
{
    return c->name;
}

int cache_chain_live(const cache_t *c, const chain_t *ch)
{
    if (ch == c->chain)
        return 1;
    for (int i = 0; i < c->nretired; i++)
        if (c->retired[i] == ch)
            return 1;
    return 0;
}

void cache_set_dict_store(cache_t *c, const char *key_prefix, const char *dir)
{
    cache_dict_configure(c->dict, key_prefix, dir);
    cache_dict_chain_added(c->dict, c->chain);
}

void cache_dict_command(cache_t *c, int load, bytes_t bytes, size_t dict_size, backend_cb *cb, void *ctx)
{
    if (load)
        cache_dict_load(c->dict, c->chain, bytes, cb, ctx);
    else
        cache_dict_train(c->dict, c->chain, dict_size, cb, ctx);
}

backend_t *cache_backend(cache_t *c)
{
    return c->backend;
}

const chain_t *cache_chain(const cache_t *c)
{
    return c->chain;
}

void cache_stats_reset(cache_t *c)
{
    memset(&c->stats, 0, sizeof(c->stats));
    if (c->near != NULL)
        cache_near_stats_reset(c->near);
}

void cache_metrics(cache_t *c, buf_t *out)
{
    const cache_stats_t *s = &c->stats;
    static const char *const names[] = { "encodes", "encode_bytes_in", "encode_bytes_out", "decodes",
                                         "decode_bytes_in", "decode_bytes_out", "values_undecoded",
                                         "decode_errors", "encode_errors", "offloaded" };
    unsigned long long v[] = { s->encodes, s->encode_bytes_in, s->encode_bytes_out, s->decodes, s->decode_bytes_in,
                               s->decode_bytes_out, s->undecoded, s->decode_errors, s->encode_errors, s->offloaded };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        buf_printf(out, "# TYPE cachetoryd_cache_%s_total counter\ncachetoryd_cache_%s_total{cache=\"%s\"} %llu\n",
                   names[i], names[i], c->name, v[i]);
    cache_near_metrics(c->near, c->name, out);
}

void cache_info(cache_t *c, buf_t *out)
{
    const cache_stats_t *s = &c->stats;
    double ratio = s->encode_bytes_in ? (double)s->encode_bytes_out / (double)s->encode_bytes_in : 1.0;

    buf_printf(out,
               "cache_name:%s\r\ncache_serializer:%s\r\ncache_encodes:%llu\r\ncache_encode_bytes_in:%llu\r\n"
               "cache_encode_bytes_out:%llu\r\ncache_encode_ratio:%.4f\r\ncache_encode_usec:%llu\r\n"
               "cache_encode_errors:%llu\r\ncache_decodes:%llu\r\ncache_decode_bytes_in:%llu\r\n"
               "cache_decode_bytes_out:%llu\r\ncache_decode_usec:%llu\r\ncache_decode_errors:%llu\r\n"
               "cache_values_undecoded:%llu\r\ncache_offloaded:%llu\r\n",
               c->name, chain_url(c->chain), s->encodes, s->encode_bytes_in, s->encode_bytes_out, ratio,
               s->encode_usec, s->encode_errors, s->decodes, s->decode_bytes_in, s->decode_bytes_out,
               s->decode_usec, s->decode_errors, s->undecoded, s->offloaded);
    codec_dict_stats_t d;
    codec_zstd_dicts_stats(chain_dicts(c->chain), &d);
    buf_printf(out, "cache_zstd_dictionary_id:%u\r\ncache_zstd_dictionary_size:%zu\r\n"
               "cache_zstd_unknown_dictionary_frames:%llu\r\ncache_zstd_dictionaries:%zu\r\n"
               "cache_zstd_dictionary_auto:%d\r\ncache_zstd_dictionary_training:%d\r\n"
               "cache_zstd_dictionary_trainings:%llu\r\ncache_zstd_dictionary_trainings_unused:%llu\r\n"
               "cache_zstd_dictionary_sample_values:%zu\r\ncache_zstd_dictionary_sample_bytes:%zu\r\n"
               "cache_zstd_dictionary_trained_ratio:%.4f\r\ncache_zstd_dictionary_recent_ratio:%.4f\r\n",
               d.encode_id, d.encode_size, d.unknown, d.count, d.auto_train, d.training, d.trainings, d.rejected,
               d.sample_values, d.sample_bytes, d.trained_ratio, d.recent_ratio);
    cache_dict_info(c->dict, out);
}
