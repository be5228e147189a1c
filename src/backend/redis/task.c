/*
 * backend/redis/task: an op's life inside the upstream backend. A task holds a copy of the op (its
 * slices into the task's own bytes once up_task_own_op ran), the caller's callback, and what a
 * transaction or batch computes on the way. Its callback is called exactly once: up_task_finish and
 * up_task_fail do nothing the second time. Tasks are recycled, small buffers and all: a plain task per
 * client command is the hot path.
 */
#include "backend/redis/redis_int.h"

#include <string.h>

#include "util/mem.h"

/* Tasks are recycled: a plain task per client command is the hot path. Small buffers stay with them. */
#define UP_FREE_TASKS_MAX 1024

void up_task_free(up_task_t *t)
{
    upstream_t *up = t->up;

    if (t->lane_held && up != NULL)
        up_lane_release(t);
    mem_free(t->slices);
    mem_free(t->members);
    mem_free(t->ttls_ms);
    t->ttls_ms = NULL;
    t->slices = NULL;
    t->members = NULL;
    if (up == NULL || up->nfree_tasks >= UP_FREE_TASKS_MAX || t->data.cap > 4096 || t->newval.cap > 4096 ||
        t->olds.cap > 4096 || t->ttls_cap > 64) {
        mem_free(t->ttls);
        buf_deinit(&t->data);
        buf_deinit(&t->newval);
        buf_deinit(&t->olds);
        mem_free(t);
        return;
    }
    t->next = up->free_tasks;
    up->free_tasks = t;
    up->nfree_tasks++;
}

/* Call the callback once; a batch's members are finished one by one by the batch. */
void up_task_finish(up_task_t *t, const backend_result_t *res)
{
    if (t->done)
        return;
    t->done = 1;
    t->cb(t->ctx, res);
}

/* Fail the task with err, once; a batch: its outcome, then each member that has not answered yet. */
void up_task_fail(up_task_t *t, const char *err)
{
    backend_result_t res = { .status = BE_ERR, .err = err };
    if (!t->done && t->kind != TASK_BATCH && t->up != NULL)
        t->up->nerrors++;
    if (t->kind == TASK_BATCH) {
        up_batch_outcome(t, err);
        for (int i = 0; i < t->nmembers; i++)
            up_task_fail(t->members[i], err);
        return;
    }
    up_task_finish(t, &res);
}

/* Copy what op points at into t, so the task can outlive the caller's buffers. */
void up_task_own_op(up_task_t *t, const backend_op_t *op)
{
    size_t nsl = op->nkeys * 2 + (size_t)op->argc;
    size_t *offs = mem_alloc((nsl + 8) * sizeof(*offs));
    const bytes_t *src[8] = { &op->key, &op->key2, &op->value, &op->pattern, &op->type_name };
    size_t n = 0;

    t->op = *op;
    /* lay out: key, key2, value, pattern, type_name, keys..., vals..., argv... */
    for (int i = 0; i < 5; i++) {
        offs[n++] = t->data.len;
        if (src[i]->ptr)
            buf_append(&t->data, src[i]->ptr, src[i]->len);
    }
    for (size_t i = 0; i < op->nkeys; i++) {
        offs[n++] = t->data.len;
        buf_append(&t->data, op->keys[i].ptr, op->keys[i].len);
    }
    if (op->vals) {
        for (size_t i = 0; i < op->nkeys; i++) {
            offs[n++] = t->data.len;
            buf_append(&t->data, op->vals[i].ptr, op->vals[i].len);
        }
    }
    for (int i = 0; i < op->argc; i++) {
        offs[n++] = t->data.len;
        buf_append(&t->data, op->argv[i].ptr, op->argv[i].len);
    }
    const char *base = t->data.data ? t->data.data : "";
    n = 0;
    bytes_t *dst[5] = { &t->op.key, &t->op.key2, &t->op.value, &t->op.pattern, &t->op.type_name };
    for (int i = 0; i < 5; i++, n++)
        if (src[i]->ptr)
            *dst[i] = (bytes_t){ base + offs[n], src[i]->len };
    t->slices = mem_alloc((nsl ? nsl : 1) * sizeof(*t->slices));
    bytes_t *sl = t->slices;
    for (size_t i = 0; i < op->nkeys; i++, n++)
        sl[i] = (bytes_t){ base + offs[n], op->keys[i].len };
    t->op.keys = op->keys ? sl : NULL;
    sl += op->nkeys;
    if (op->vals) {
        for (size_t i = 0; i < op->nkeys; i++, n++)
            sl[i] = (bytes_t){ base + offs[n], op->vals[i].len };
        t->op.vals = sl;
        sl += op->nkeys;
    }
    for (int i = 0; i < op->argc; i++, n++)
        sl[i] = (bytes_t){ base + offs[n], op->argv[i].len };
    t->op.argv = op->argc ? sl : NULL;
    if (op->ttls_ms != NULL) {
        mem_free(t->ttls_ms);
        t->ttls_ms = mem_alloc((op->nkeys ? op->nkeys : 1) * sizeof(*t->ttls_ms));
        memcpy(t->ttls_ms, op->ttls_ms, op->nkeys * sizeof(*t->ttls_ms));
        t->op.ttls_ms = t->ttls_ms;
    }
    mem_free(offs);
}

up_task_t *up_task_create(upstream_t *up, const backend_op_t *op, backend_cb *cb, void *ctx, int kind)
{
    up_task_t *t = up->free_tasks;
    buf_t data, newval, olds;
    long long *ttls = NULL;
    size_t ttls_cap = 0;

    if (t != NULL) {
        up->free_tasks = t->next;
        up->nfree_tasks--;
        data = t->data;
        newval = t->newval;
        olds = t->olds;
        buf_reset(&data);
        buf_reset(&newval);
        buf_reset(&olds);
        ttls = t->ttls;
        ttls_cap = t->ttls_cap;
    } else {
        t = mem_alloc(sizeof(*t));
        buf_init(&data);
        buf_init(&newval);
        buf_init(&olds);
    }
    memset(t, 0, sizeof(*t));
    t->data = data;
    t->newval = newval;
    t->olds = olds;
    t->ttls = ttls;
    t->ttls_cap = ttls_cap;
    t->up = up;
    t->kind = kind;
    t->cb = cb;
    t->ctx = ctx;
    t->op = *op;
    t->seq = ++up->task_seq;
    if (op->flags & BE_WITHTTL) {
        size_t n = op->code == BE_MGET ? op->nkeys : 1;
        if (n > t->ttls_cap) {
            mem_free(t->ttls);
            t->ttls = mem_alloc(n * sizeof(*t->ttls));
            t->ttls_cap = n;
        }
        for (size_t i = 0; i < n; i++)
            t->ttls[i] = -2;
    }
    return t;
}

/*
 * Turn Redis's reply to op into the backend result and call the task's callback. The scratch (array
 * results, passthrough bytes) is freed after the callback.
 */
void up_task_deliver(up_task_t *t, const backend_op_t *op, const redisReply *r)
{
    backend_result_t res = { .status = BE_OK };
    wire_scratch_t s;

    wire_scratch_init(&s);
    wire_reply(op, r, &res, &s);
    if (op->flags & BE_WITHTTL) {
        res.ttls = t->ttls;
        res.tracked = t->tracked;
    }
    up_task_finish(t, &res);
    wire_scratch_deinit(&s);
}

void up_task_deliver_raw(up_task_t *t, const char *resp, size_t len)
{
    backend_result_t res = { .status = BE_OK, .resp = { resp, len } };
    up_task_finish(t, &res);
}
