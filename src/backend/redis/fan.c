/*
 * backend/redis/fan: a cluster's op that concerns several slots or every master (route.c decides which):
 *
 *   route_fan_slots    MGET, DEL, EXISTS, TOUCH (and MSET with cluster-cross-slot-writes = split) whose
 *                      keys hash to several slots: one op per slot, in parallel (Redis Cluster refuses a
 *                      multi-key command across slots even on one node), the replies put back together in
 *                      the client's key order, counts added up; the first error is the result
 *   route_fan_masters  DBSIZE, FLUSHDB / FLUSHALL, KEYS, RANDOMKEY, INFO keyspace: the same op on every
 *                      master
 *   route_scan         SCAN walks the masters one after the other, the master's rank in the cursor's high
 *                      16 bits
 *
 * The parts are ordinary ops submitted with their own callback; the fan_t gathering them is freed when
 * the last part has answered and the client's callback has run.
 */
#include "backend/redis/redis_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/mem.h"

#define ROUTE_SCAN_SHIFT      48        /* SCAN cursor: master rank << 48 | the master's own cursor */

typedef struct fan fan_t;

typedef struct fan_part {
    fan_t *f;
    size_t *idx;                /* the client's index of each of this part's keys */
    size_t n;
} fan_part_t;

struct fan {
    upstream_t *up;
    backend_opcode_t code;
    backend_cb *cb;
    void *ctx;
    int left;                   /* parts not answered yet */
    int failed;
    char err[320];
    long long sum;              /* DEL, EXISTS, TOUCH, DBSIZE, MSETNX; INFO keyspace: db0's keys */
    long long expires;          /* INFO keyspace: db0's keys with an expiry */
    int nil;                    /* SET-like parts that answered NIL */
    size_t nkeys;               /* MGET: the client's keys */
    size_t *off;                /* MGET: each value's offset in data, SIZE_MAX = missing */
    size_t *len;
    buf_t data;                 /* MGET values, KEYS names, RANDOMKEY candidates */
    size_t nvalues;             /* KEYS: names so far; RANDOMKEY: candidates */
    fan_part_t *parts;
    int nparts;
};

static void fan_free(fan_t *f)
{
    for (int i = 0; i < f->nparts; i++)
        mem_free(f->parts[i].idx);
    mem_free(f->parts);
    mem_free(f->off);
    mem_free(f->len);
    buf_deinit(&f->data);
    mem_free(f);
}

/* Every part answered: the client's result, in its key order. */
static void fan_done(fan_t *f)
{
    backend_result_t res = { .status = BE_OK };
    bytes_t *vals = NULL;

    if (f->failed) {
        res.status = BE_ERR;
        res.err = f->err;
        f->up->nerrors++;
    } else if (f->code == BE_MGET || f->code == BE_KEYS) {
        size_t n = f->code == BE_MGET ? f->nkeys : f->nvalues;
        vals = mem_calloc(n ? n : 1, sizeof(*vals));
        for (size_t i = 0; i < n; i++)
            if (f->off[i] != SIZE_MAX)
                vals[i] = (bytes_t){ f->data.data + f->off[i], f->len[i] };
        res.values = vals;
        res.nvalues = n;
    } else if (f->code == BE_RANDOMKEY) {
        if (f->nvalues == 0) {
            res.status = BE_NIL;
        } else {
            size_t pick = (size_t)rand() % f->nvalues;
            res.value = (bytes_t){ f->data.data + f->off[pick], f->len[pick] };
            res.has_value = 1;
        }
    } else if (f->code == BE_MSET && f->nil) {
        res.status = BE_NIL;
    } else if (f->code == BE_INFO) {
        /* a cluster has database 0 only: the masters' counts added up */
        buf_reset(&f->data);
        buf_append_str(&f->data, "# Keyspace\r\n");
        if (f->sum > 0)
            buf_printf(&f->data, "db0:keys=%lld,expires=%lld,avg_ttl=0\r\n", f->sum, f->expires);
        res.value = (bytes_t){ f->data.data, f->data.len };
        res.has_value = 1;
    } else {
        res.integer = f->sum;
    }
    f->cb(f->ctx, &res);
    mem_free(vals);
    fan_free(f);
}

static void fan_keep(fan_t *f, size_t i, const bytes_t *v)
{
    if (v->ptr == NULL) {
        f->off[i] = SIZE_MAX;
        return;
    }
    f->off[i] = f->data.len;
    f->len[i] = v->len;
    buf_append(&f->data, v->ptr, v->len);
}

/* One more value to keep (KEYS, RANDOMKEY): grows off/len as needed. */
static void fan_push(fan_t *f, const bytes_t *v)
{
    if ((f->nvalues & (f->nvalues - 1)) == 0 || f->nvalues == 0) {
        size_t cap = f->nvalues ? f->nvalues * 2 : 16;
        f->off = mem_realloc(f->off, cap * sizeof(*f->off));
        f->len = mem_realloc(f->len, cap * sizeof(*f->len));
    }
    fan_keep(f, f->nvalues++, v);
}

static void fan_part_cb(void *ctx, const backend_result_t *res)
{
    fan_part_t *p = ctx;
    fan_t *f = p->f;

    if (res->status == BE_ERR) {
        if (!f->failed)
            snprintf(f->err, sizeof(f->err), "%s", res->err ? res->err : "ERR upstream cluster: a part failed");
        f->failed = 1;
    } else if (res->status == BE_NIL) {
        f->nil = 1;
    } else if (f->code == BE_MGET) {
        for (size_t i = 0; i < p->n && i < res->nvalues; i++)
            fan_keep(f, p->idx[i], &res->values[i]);
    } else if (f->code == BE_KEYS) {
        for (size_t i = 0; i < res->nvalues; i++)
            fan_push(f, &res->values[i]);
    } else if (f->code == BE_RANDOMKEY) {
        if (res->has_value)
            fan_push(f, &res->value);
    } else if (f->code == BE_INFO) {
        if (res->has_value) {
            char line[256];
            size_t n = res->value.len < sizeof(line) - 1 ? res->value.len : sizeof(line) - 1;
            memcpy(line, res->value.ptr, n);
            line[n] = '\0';
            const char *db0 = strstr(line, "db0:keys=");
            long long k = 0, e = 0;
            if (db0 != NULL && sscanf(db0, "db0:keys=%lld,expires=%lld", &k, &e) == 2) {
                f->sum += k;
                f->expires += e;
            }
        }
    } else {
        f->sum += res->integer;
    }
    if (--f->left == 0)
        fan_done(f);
}

static fan_t *fan_create(upstream_t *up, const backend_op_t *op, backend_cb *cb, void *ctx, int nparts)
{
    fan_t *f = mem_calloc(1, sizeof(*f));
    f->up = up;
    f->code = op->code;
    f->cb = cb;
    f->ctx = ctx;
    f->nparts = nparts;
    f->left = nparts;
    f->parts = mem_calloc((size_t)nparts, sizeof(*f->parts));
    buf_init(&f->data);
    for (int i = 0; i < nparts; i++)
        f->parts[i].f = f;
    return f;
}

/*
 * op's keys hash to several slots: one op per slot, in parallel. The parts' keys (and MSET's values)
 * are copied into the tasks' command bytes as they are submitted, so the arrays here are temporary.
 */
void route_fan_slots(upstream_t *up, const backend_op_t *op, backend_cb *cb, void *ctx)
{
    int *slots = mem_alloc(op->nkeys * sizeof(*slots));
    int *order = mem_alloc(op->nkeys * sizeof(*order));     /* distinct slots, in first-seen order */
    int nslots = 0;

    for (size_t i = 0; i < op->nkeys; i++) {
        slots[i] = route_slot_of(op->keys[i]);
        int j;
        for (j = 0; j < nslots && order[j] != slots[i]; j++)
            ;
        if (j == nslots)
            order[nslots++] = slots[i];
    }
    fan_t *f = fan_create(up, op, cb, ctx, nslots);
    if (op->code == BE_MGET) {
        f->nkeys = op->nkeys;
        f->off = mem_alloc(op->nkeys * sizeof(*f->off));
        f->len = mem_calloc(op->nkeys, sizeof(*f->len));
        for (size_t i = 0; i < op->nkeys; i++)
            f->off[i] = SIZE_MAX;
    }
    bytes_t *keys = mem_alloc(op->nkeys * sizeof(*keys));
    bytes_t *vals = op->vals ? mem_alloc(op->nkeys * sizeof(*vals)) : NULL;
    long long *ttls = op->ttls_ms ? mem_alloc(op->nkeys * sizeof(*ttls)) : NULL;
    for (int g = 0; g < nslots; g++) {
        fan_part_t *p = &f->parts[g];
        p->idx = mem_alloc(op->nkeys * sizeof(*p->idx));
        for (size_t i = 0; i < op->nkeys; i++) {
            if (slots[i] != order[g])
                continue;
            keys[p->n] = op->keys[i];
            if (vals)
                vals[p->n] = op->vals[i];
            p->idx[p->n++] = i;
        }
    }
    /* submitted after every part is set up: a part may answer at once (a node down) */
    for (int g = 0; g < nslots; g++) {
        fan_part_t *p = &f->parts[g];
        size_t k = 0;
        for (size_t i = 0; i < op->nkeys; i++) {
            if (slots[i] != order[g])
                continue;
            keys[k] = op->keys[i];
            if (vals)
                vals[k] = op->vals[i];
            if (ttls)
                ttls[k] = op->ttls_ms[i];
            k++;
        }
        backend_op_t part = *op;
        part.keys = keys;
        part.vals = vals;
        part.ttls_ms = ttls;
        part.nkeys = p->n;
        up_submit_on(up, route_op_conn(up, order[g], op), &part, fan_part_cb, p);
    }
    mem_free(keys);
    mem_free(vals);
    mem_free(ttls);
    mem_free(slots);
    mem_free(order);
}

/* A keyless op about the whole keyspace: the same op on every master. */
void route_fan_masters(upstream_t *up, const backend_op_t *op, backend_cb *cb, void *ctx)
{
    up_node_t *ms[ROUTE_MAX_MASTERS];
    int n = route_masters(up, ms, ROUTE_MAX_MASTERS);
    fan_t *f = fan_create(up, op, cb, ctx, n);

    for (int i = 0; i < n; i++)
        up_submit_on(up, &ms[i]->pool[op->affinity % (uint64_t)ms[i]->npool], op, fan_part_cb, &f->parts[i]);
}

/* ---- SCAN across masters ------------------------------------------------------------------------- */

typedef struct scan_ctx {
    backend_cb *cb;
    void *ctx;
    int rank;                   /* of the master scanned */
    int nmasters;
} scan_ctx_t;

static void scan_cb(void *ctx, const backend_result_t *res)
{
    scan_ctx_t *s = ctx;
    backend_result_t out = *res;

    if (res->status == BE_OK) {
        if (res->cursor >> ROUTE_SCAN_SHIFT) {
            out.status = BE_ERR;
            out.err = "ERR upstream cluster: a node's SCAN cursor is too large to combine";
        } else if (res->cursor != 0) {
            out.cursor = ((uint64_t)s->rank << ROUTE_SCAN_SHIFT) | res->cursor;
        } else {
            out.cursor = s->rank + 1 < s->nmasters ? (uint64_t)(s->rank + 1) << ROUTE_SCAN_SHIFT : 0;
        }
    }
    s->cb(s->ctx, &out);
    mem_free(s);
}

void route_scan(upstream_t *up, const backend_op_t *op, backend_cb *cb, void *ctx)
{
    up_node_t *ms[ROUTE_MAX_MASTERS];
    int n = route_masters(up, ms, ROUTE_MAX_MASTERS);
    int rank = (int)(op->cursor >> ROUTE_SCAN_SHIFT);

    if (rank >= n) {
        backend_result_t res = { .status = BE_ERR, .err = "ERR invalid cursor" };
        cb(ctx, &res);
        return;
    }
    scan_ctx_t *s = mem_alloc(sizeof(*s));
    *s = (scan_ctx_t){ cb, ctx, rank, n };
    backend_op_t part = *op;
    part.cursor = op->cursor & (((uint64_t)1 << ROUTE_SCAN_SHIFT) - 1);
    up_submit_on(up, &ms[rank]->pool[op->affinity % (uint64_t)ms[rank]->npool], &part, scan_cb, s);
}

