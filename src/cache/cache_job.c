/*
 * cache/cache_job: the thread pool's side of the codec chain. Values of codec-thread-min-size bytes or
 * more are encoded or decoded by a job that owns copies of them (and of the keys and TTLs the op still
 * needs); its completion, back on the loop thread, counts them in their caches and goes on with the op.
 */
#include "cache/cache_call.h"

#include <string.h>

#include "util/clock.h"
#include "util/mem.h"

static job_t *job_create(call_t *k, int decode, size_t n)
{
    job_t *j = mem_calloc(1, sizeof(*j));
    j->work.data = j;
    j->call = k;
    j->decode = decode;
    j->n = n;
    j->in = mem_calloc(n ? n : 1, sizeof(*j->in));
    j->out = mem_calloc(n ? n : 1, sizeof(*j->out));
    j->val = mem_calloc(n ? n : 1, sizeof(*j->val));
    for (size_t i = 0; i < n; i++) {
        j->val[i].prof = call_prof(k, i);
        j->val[i].chain = j->val[i].prof->chain;
    }
    buf_init(&j->owned);
    return j;
}

void job_destroy(job_t *j)
{
    for (size_t i = 0; i < j->n; i++)
        buf_deinit(&j->out[i]);
    mem_free(j->in);
    mem_free(j->out);
    mem_free(j->val);
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

/* Values of several caches: a context of each value's chain (the same one while the chain stays). */
static void job_work_cb(uv_work_t *w)
{
    job_t *j = w->data;
    chain_t *ch = NULL;
    chain_ctx_t *ctx = NULL;
    cache_job_priority();

    for (size_t i = 0; i < j->n; i++) {
        job_val_t *v = &j->val[i];
        if (j->in[i].ptr == NULL)
            continue;
        if (v->chain != ch) {
            if (ctx != NULL)
                chain_ctx_put(ch, ctx);
            ch = v->chain;
            ctx = chain_ctx_get(ch);
        }
        long long t0 = clock_us_monotonic();
        v->state = j->decode ? chain_decode(ch, ctx, j->in[i].ptr, j->in[i].len, &j->out[i], j->err, &v->undecoded)
                             : chain_encode(ch, ctx, j->in[i].ptr, j->in[i].len, &j->out[i], j->err);
        v->usec = (unsigned long long)(clock_us_monotonic() - t0);
        if (v->state == CHAIN_ERROR)
            break;
    }
    if (ctx != NULL)
        chain_ctx_put(ch, ctx);
}

/* The value i of a finished job, as it should go on. */
static bytes_t job_result(const job_t *j, size_t i)
{
    if (j->in[i].ptr == NULL || j->val[i].state != CHAIN_OUT)
        return j->in[i];
    return (bytes_t){ j->out[i].data ? j->out[i].data : "", j->out[i].len };
}

/* The result a job holds, its values pointing at the job's values (vals: room for j->n). */
backend_result_t job_result_all(const job_t *j, bytes_t *vals)
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

    c->jobs--;
    for (size_t i = 0; i < j->n; i++)
        if (!chain_is_null(j->val[i].chain))
            j->val[i].prof->stats.offloaded++;
    for (size_t i = 0; i < j->n; i++) {
        cache_stats_t *st = &j->val[i].prof->stats;
        if (j->in[i].ptr == NULL || chain_is_null(j->val[i].chain))
            continue;
        if (j->decode) {
            st->decode_usec += j->val[i].usec;
            st->undecoded += (unsigned long long)(j->val[i].undecoded != 0);
        } else {
            st->encode_usec += j->val[i].usec;
        }
        if (j->val[i].state == CHAIN_ERROR) {
            failed = 1;
            if (j->decode)
                st->decode_errors++;
            else
                st->encode_errors++;
            break;
        }
        bytes_t r = job_result(j, i);
        if (j->decode) {
            st->decodes++;
            st->decode_bytes_in += j->in[i].len;
            st->decode_bytes_out += r.len;
        } else {
            st->encodes++;
            st->encode_bytes_in += j->in[i].len;
            st->encode_bytes_out += r.len;
        }
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
void cache_offload_encode(cache_t *c, call_t *k, const backend_op_t *op)
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
    if (op->ttls_ms != NULL) {
        j->ttls = mem_alloc(nk * sizeof(*j->ttls));
        memcpy(j->ttls, op->ttls_ms, nk * sizeof(*j->ttls));
        j->op.ttls_ms = j->ttls;
    }
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
job_t *job_for_result(call_t *k, const backend_result_t *res, const bytes_t *vals, size_t n)
{
    job_t *j = job_create(k, 1, n);
    size_t *offs = mem_alloc((n ? n : 1) * sizeof(*offs));

    job_own(j, vals, j->in, n, offs);
    for (size_t i = 0; i < n; i++)
        j->val[i].state = CHAIN_AS_IS;  /* not decoded yet: job_result gives the stored value */
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
void cache_offload_decode(cache_t *c, call_t *k, const backend_result_t *res, const bytes_t *vals, size_t n)
{
    job_t *j = job_for_result(k, res, vals, n);

    c->jobs++;
    uv_queue_work(c->loop, &j->work, job_work_cb, job_after_cb);
}

