/*
 * cache: the codec chain applied around backend ops.
 *
 * On the loop thread the chain works in the cache's scratch buffers (enc for values going in, dec for
 * values coming out), which stay valid until the backend's callback returns, as the backend contract
 * asks. On the thread pool a job owns copies of its inputs and its outputs (cache_job.c).
 *
 * Each value is coded with the chain of its key's cache (cache_profile.c): a call learns its keys'
 * profiles when it is submitted (the keys are gone by the time the backend answers) and keeps them,
 * one for a single key or when every key is in the same cache, else one per key.
 */
#include "cache/cache_call.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

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
    cache_profile_t **many = NULL;
    size_t many_cap = 0;
    if (k != NULL) {
        c->free_calls = k->next;
        kept = k->kept;
        many = k->many_buf;
        many_cap = k->many_cap;
    } else {
        k = mem_alloc(sizeof(*k));
        buf_init(&kept);
    }
    memset(k, 0, sizeof(*k));
    buf_reset(&kept);
    if (kept.cap > (64u << 10))
        buf_deinit(&kept);
    if (many_cap > 1024) {
        mem_free(many);
        many = NULL;
        many_cap = 0;
    }
    k->kept = kept;
    k->many_buf = many;
    k->many_cap = many_cap;
    k->cache = c;
    k->cb = cb;
    k->ctx = ctx;
    k->may_offload = may_offload;
    return k;
}

void call_fail(call_t *k, const char *err)
{
    backend_result_t res = { .status = BE_ERR, .err = err };
    k->cb(k->ctx, &res);
    call_put(k);
}

/* A value that names a zstd dictionary not here yet cannot be changed: it would be taken for plain bytes. */
static const char cache_nodict_err[] = "ERR the stored value was compressed with a zstd dictionary this daemon does "
                                       "not have, or that does not decode it: left unchanged (a dictionary stored "
                                       "upstream is being fetched: try again; INFO cache and the log say more)";

/* Learn the caches of op's keys (n of them) into k: one profile when they share it, else one per key. */
static void call_route(cache_t *c, call_t *k, const bytes_t *keys, size_t n)
{
    k->prof = cache_profile_of(&c->pf, keys[0].ptr, keys[0].len);
    k->many = NULL;
    if (c->pf.route == NULL || n < 2)
        return;
    size_t i = 1;
    while (i < n && cache_profile_of(&c->pf, keys[i].ptr, keys[i].len) == k->prof)
        i++;
    if (i == n)
        return;
    k->many_buf = vec_grow(k->many_buf, &k->many_cap, n, sizeof(*k->many_buf));
    k->many = k->many_buf;
    for (size_t j = 0; j < i; j++)
        k->many[j] = k->prof;
    for (; i < n; i++)
        k->many[i] = cache_profile_of(&c->pf, keys[i].ptr, keys[i].len);
}

/* 1 if every value of k goes through a null chain (the op can go to the backend as it is). */
static int call_all_null(const call_t *k, size_t n)
{
    if (k->many == NULL)
        return chain_is_null(k->prof->chain);
    for (size_t i = 0; i < n; i++)
        if (!chain_is_null(k->many[i]->chain))
            return 0;
    return 1;
}

/* ---- loop-thread encode / decode, with the counters ---------------------------------------------- */

/* Encode one value into out (emptied first). Returns CHAIN_OUT (the bytes are in out), CHAIN_AS_IS, or
 * CHAIN_ERROR with c->err. */
static int cache_encode_one(cache_t *c, cache_profile_t *p, bytes_t v, buf_t *out)
{
    if (chain_is_null(p->chain))        /* a null:// cache next to others in one op: not counted */
        return CHAIN_AS_IS;
    long long t0 = clock_us_monotonic();
    int rc = chain_encode(p->chain, chain_main_ctx(p->chain), v.ptr, v.len, out, c->err);

    p->stats.encode_usec += (unsigned long long)(clock_us_monotonic() - t0);
    if (rc == CHAIN_ERROR) {
        p->stats.encode_errors++;
        return rc;
    }
    p->stats.encodes++;
    p->stats.encode_bytes_in += v.len;
    p->stats.encode_bytes_out += rc == CHAIN_OUT ? out->len : v.len;
    cache_dict_after_encode(c->dict, p->chain);
    return rc;
}

/* Decode one stored value into out (emptied first), giving up past budget decoded bytes
 * (CHAIN_OVER_BUDGET, not counted as a decode: the thread pool will do it). Otherwise as cache_encode_one. */
static int cache_decode_one(cache_t *c, cache_profile_t *p, bytes_t v, size_t budget, buf_t *out)
{
    c->nodict = 0;
    if (chain_is_null(p->chain))
        return CHAIN_AS_IS;
    int undecoded;
    long long t0 = clock_us_monotonic();
    int rc = chain_decode_budget(p->chain, chain_main_ctx(p->chain), v.ptr, v.len, budget, out, c->err,
                                 &undecoded);

    p->stats.decode_usec += (unsigned long long)(clock_us_monotonic() - t0);
    c->nodict = undecoded == CHAIN_UNDECODED_NODICT;
    if (c->nodict)
        cache_dict_fetch_for(c->dict, p->chain, v);
    if (rc == CHAIN_OVER_BUDGET)
        return rc;
    if (rc == CHAIN_ERROR) {
        p->stats.decode_errors++;
        return rc;
    }
    p->stats.decodes++;
    p->stats.undecoded += (unsigned long long)(undecoded != 0);
    p->stats.decode_bytes_in += v.len;
    p->stats.decode_bytes_out += rc == CHAIN_OUT ? out->len : v.len;
    return rc;
}

/*
 * Run encode (or decode) over n values of call k (each with its cache's chain) into c->vec. One value is coded straight into dst; several are
 * coded one by one through c->tmp and gathered in dst, and their slices made once dst stops moving.
 * Decoding, the values may make budget bytes together (SIZE_MAX: no budget). Returns 0, -1 with c->err,
 * or -2 when the values decode to more than the budget (nothing is delivered; the stats count none).
 */
static int cache_code_all(cache_t *c, const call_t *k, int decode, const bytes_t *vals, size_t n, buf_t *dst,
                          size_t budget)
{
    size_t used = 0;

    c->vec = vec_grow(c->vec, &c->vec_cap, n, sizeof(*c->vec));
    c->offs = vec_grow(c->offs, &c->offs_cap, n, sizeof(*c->offs));
    buf_reset(dst);
    for (size_t i = 0; i < n; i++) {
        buf_t *out = n == 1 ? dst : &c->tmp;
        int rc = CHAIN_AS_IS;
        if (vals[i].ptr != NULL)
            rc = decode ? cache_decode_one(c, call_prof(k, i), vals[i], budget == SIZE_MAX ? SIZE_MAX : budget - used, out)
                        : cache_encode_one(c, call_prof(k, i), vals[i], out);
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
int cache_check_fn(void *arg, const bytes_t *old, const char **err)
{
    call_t *k = arg;
    cache_t *c = k->cache;

    c->nodict = 0;
    if (cache_code_all(c, k, 1, old, 1, &c->dec, SIZE_MAX) < 0) {
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

/* 1 if one of k's values names a zstd dictionary its chain does not have. */
static int cache_dict_missing(const call_t *k, const bytes_t *vals, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const chain_t *ch = call_prof(k, i)->chain;
        if (vals[i].ptr != NULL && chain_dicts(ch) != NULL && chain_missing_dict(ch, vals[i].ptr, vals[i].len) != 0)
            return 1;
    }
    return 0;
}

/* The dictionaries cache_done_cb waited for (or could not be had): decode the kept result now. */
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
void cache_done_cb(void *ctx, const backend_result_t *res)
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
    /* Values naming dictionaries not here: wait for them (one GET upstream each), unless inside EXEC. */
    if (!k->fetched && cache_dict_missing(k, vals, n)) {
        job_t *j = k->may_offload ? job_for_result(k, res, vals, n) : NULL;
        chain_t **chs = mem_alloc(n * sizeof(*chs));
        for (size_t i = 0; i < n; i++)
            chs[i] = call_prof(k, i)->chain;
        int waiting = cache_dict_wait(c->dict, chs, vals, n, j != NULL, cache_dict_resume_cb, j);
        mem_free(chs);
        if (waiting)
            return;
        if (j != NULL)
            job_destroy(j);
    }
    for (size_t i = 0; i < n; i++)
        total += vals[i].len;
    int offload = k->may_offload && c->thread_min > 0;
    if (offload && total >= c->thread_min) {
        cache_offload_decode(c, k, res, vals, n);
        return;
    }
    int rc = cache_code_all(c, k, 1, vals, n, &c->dec, offload ? c->thread_min - 1 : SIZE_MAX);
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
        int rc = cache_decode_one(c, k->prof, *old, SIZE_MAX, &c->dec);
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
    rc = cache_encode_one(c, k->prof, (bytes_t){ c->upd.data ? c->upd.data : "", c->upd.len }, &c->enc);
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

/* The keys of an op that the chain codes values of (GET, MGET, SET, MSET, UPDATE), or 0 for the others. */
static size_t coded_keys(const backend_op_t *op, const bytes_t **keys)
{
    switch (op->code) {
    case BE_GET:
    case BE_SET:
    case BE_UPDATE:
        *keys = &op->key;
        return 1;
    case BE_MGET:
    case BE_MSET:
        *keys = op->keys;
        return op->nkeys;
    default:
        return 0;
    }
}

int cache_chain_submit(cache_t *c, const backend_op_t *op, backend_cb *cb, void *ctx, int may_offload)
{
    call_t *k;
    backend_op_t op2;
    const bytes_t *keys;
    size_t nkeys;

    if (c->pf.all_null || (nkeys = coded_keys(op, &keys)) == 0) {
        backend_submit(c->backend, op, cb, ctx);
        return 0;
    }
    k = call_get(c, cb, ctx, op->code == BE_UPDATE ? 0 : may_offload);
    call_route(c, k, keys, nkeys);
    if (call_all_null(k, nkeys)) {      /* keys of null:// caches only: as the op is */
        call_put(k);
        backend_submit(c->backend, op, cb, ctx);
        return 0;
    }
    switch (op->code) {
    case BE_GET:
    case BE_MGET:
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
        k->update = op->update;
        k->update_arg = op->update_arg;
        op2 = *op;
        op2.update = cache_update_fn;
        op2.update_arg = k;
        op2.argc = 0;           /* the backend must not run the command itself on encoded values */
        op2.argv = NULL;
        backend_submit(c->backend, &op2, cache_update_done_cb, k);
        return 0;
    default:        /* SET, MSET */
        break;
    }

    /* SET, MSET: encode the values, then submit. */
    size_t n = op->code == BE_SET ? 1 : op->nkeys, total = 0;
    const bytes_t *vals = op->code == BE_SET ? &op->value : op->vals;
    for (size_t i = 0; i < n; i++)
        total += vals[i].len;
    if (may_offload && c->thread_min > 0 && total >= c->thread_min) {
        cache_offload_encode(c, k, op);
        return 1;
    }
    if (cache_code_all(c, k, 0, vals, n, &c->enc, SIZE_MAX) < 0) {
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
    cache_t *c = mem_calloc(1, sizeof(*c));
    if (cache_profiles_init(&c->pf, name, serializer, max_bulk, err, errlen) < 0) {
        mem_free(c);
        return NULL;
    }
    c->name = mem_strdup(name);
    c->backend = backend;
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
        mem_free(k->many_buf);
        mem_free(k);
    }
    cache_profiles_deinit(&c->pf);
    buf_deinit(&c->enc);
    buf_deinit(&c->dec);
    buf_deinit(&c->upd);
    buf_deinit(&c->tmp);
    mem_free(c->vec);
    mem_free(c->offs);
    mem_free(c->name);
    mem_free(c);
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

int cache_near_on(const cache_t *c)
{
    return c->near != NULL;
}

cache_near_t *cache_near_of(cache_t *c)
{
    return c->near;
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

cache_profiles_t *cache_profiles(cache_t *c)
{
    return &c->pf;
}

cache_dict_t *cache_dict(cache_t *c)
{
    return c->dict;
}

backend_t *cache_backend(cache_t *c)
{
    return c->backend;
}

const chain_t *cache_chain(const cache_t *c)
{
    return c->pf.v[0]->chain;
}

void cache_stats_reset(cache_t *c)
{
    cache_profiles_stats_reset(&c->pf);
    if (c->near != NULL)
        cache_near_stats_reset(c->near);
}

void cache_metrics(cache_t *c, buf_t *out)
{
    cache_profiles_metrics(&c->pf, out);
    cache_near_metrics(c->near, c->name, out);
}

/* INFO cache: the default cache's fields, then a line per named cache (cache_profile.c). */
void cache_info(cache_t *c, buf_t *out)
{
    cache_profiles_info(&c->pf, c->dict, out);
}
