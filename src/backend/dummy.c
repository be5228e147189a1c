/*
 * dummy://: every write succeeds, nothing is stored, every read misses — cachetory's DummyBackend, handy
 * to switch caching off without touching the clients.
 */
#include "backend/backend.h"

#include "util/mem.h"

static void dummy_submit(backend_t *b, const backend_op_t *op, backend_cb *cb, void *ctx)
{
    backend_result_t res = { .status = BE_OK };

    switch (op->code) {
    case BE_GET:
    case BE_RANDOMKEY:
        res.status = BE_NIL;
        break;
    case BE_SET:
        /* XX: the key does not exist, so the condition is false; GETOLD: there was nothing. */
        res.status = (op->flags & BE_XX) ? BE_NIL : BE_OK;
        break;
    case BE_MGET: {
        bytes_t *missing = mem_calloc(op->nkeys, sizeof(*missing));    /* ptr NULL: missing */
        res.values = missing;
        res.nvalues = op->nkeys;
        cb(ctx, &res);
        mem_free(missing);
        return;
    }
    case BE_MSET:
        res.integer = 1;
        break;
    case BE_UPDATE: {
        /* Run the modify step on a missing key so the client sees what it would (INCR -> 1), then drop
         * the result. */
        buf_t scratch;
        buf_init(&scratch);
        if (op->update(op->update_arg, NULL, &scratch, &res) < 0)
            res.status = BE_ERR;
        cb(ctx, &res);
        buf_deinit(&scratch);
        return;
    }
    case BE_TTL:
        res.integer = -2;
        break;
    case BE_RENAME:
        res.status = BE_ERR;
        res.err = "ERR no such key";
        break;
    default:
        break;      /* counts are 0, SCAN ends at cursor 0, FLUSH is OK */
    }
    cb(ctx, &res);
}

static void dummy_destroy(backend_t *b)
{
    mem_free(b);
}

static const backend_vtable_t dummy_vtable = {
    .scheme = "dummy",
    .submit = dummy_submit,
    .destroy = dummy_destroy,
};

backend_t *backend_dummy_create(void)
{
    backend_t *b = mem_calloc(1, sizeof(*b));
    b->vt = &dummy_vtable;
    return b;
}
