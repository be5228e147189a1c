/*
 * backend/redis/wire: how a backend op becomes a Redis command, and how Redis's reply becomes the op's
 * result. Written once, as a table with one row per backend_opcode_t (wire.c): the function that writes
 * the op's command(s), the function that maps the reply back, and the op's other properties that the
 * upstream backend asks about (does it need a WATCH transaction, how a client's MULTI follows what it
 * writes). A new opcode is one enum line in backend.h, one row here, one case in the memory backend.
 *
 * Nothing here does I/O or keeps state: wire_put() appends RESP bytes to a buffer the caller owns;
 * wire_reply() fills a backend_result_t whose slices point into the reply or into the scratch the
 * caller gives (valid until wire_scratch_deinit()). Errors come back in the result (BE_ERR with the
 * text for the client), never as a return code.
 */
#ifndef CACHETORYD_BACKEND_REDIS_WIRE_H
#define CACHETORYD_BACKEND_REDIS_WIRE_H

#include <hiredis/hiredis.h>

#include "backend/backend.h"
#include "util/buf.h"

/* A byte slice over a string literal. */
#define B(s) ((bytes_t){ (s), sizeof(s) - 1 })

/* What a mapped result may point into besides the reply: freed by wire_scratch_deinit(). */
typedef struct wire_scratch {
    bytes_t *vec;               /* array results (MGET, KEYS, SCAN) */
    buf_t raw;                  /* BE_COMMAND: the reply as RESP bytes */
} wire_scratch_t;

/*
 * How a client's MULTI (backend/redis/batch.c) follows what member i, op, writes, where a later
 * read-modify-write member reads it. Returns NULL, or why the transaction cannot run (it then fails
 * whole, nothing run).
 */
struct up_overlay;
typedef const char *wire_follow_fn(struct up_overlay *o, int i, const backend_op_t *op);

/* wire_op_t.flags */
#define WIRE_ERROR_IS_RESULT (1u << 0)  /* an error reply is the result (passthrough), not BE_ERR */
#define WIRE_UPDATE          (1u << 1)  /* read-modify-write: a WATCH transaction unless the op carries the
                                           native command (argc > 0) */

typedef struct wire_op {
    const char *name;                   /* for messages */
    void (*put)(buf_t *out, const backend_op_t *op);   /* the Redis command(s) for op */
    void (*reply)(const backend_op_t *op, const redisReply *r, backend_result_t *res, wire_scratch_t *s);
    unsigned flags;                     /* WIRE_* */
    wire_follow_fn *follow;             /* NULL: it writes no key (or only what a conditional check saw) */
} wire_op_t;

/* The row for code, or NULL if there is none (an opcode the upstream backend does not know). */
const wire_op_t *wire_op(backend_opcode_t code);

/* The Redis command for op, into out. */
void wire_put(buf_t *out, const backend_op_t *op);

/* How many PTTL commands wire_put writes before op's own (BE_WITHTTL: one per key of a GET or MGET),
 * each with a reply of its own before op's. */
size_t wire_ttl_count(const backend_op_t *op);

/* Redis's reply r to op as the backend result: an error reply gives BE_ERR with its text, except where
 * the row says the error is the result. res's slices point into r or s. */
void wire_reply(const backend_op_t *op, const redisReply *r, backend_result_t *res, wire_scratch_t *s);

/* A hiredis reader whose nil objects read from a null array (*-1) carry integer WIRE_NIL_ARRAY, so that
 * a relayed reply writes *-1 back rather than $-1. Freed with redisReaderFree. */
#define WIRE_NIL_ARRAY 1
redisReader *wire_reader_create(void);

/* Must op run as WATCH / GET / MULTI / write / EXEC (read-modify-write on encoded values, or a check of
 * the old value before changing it)? */
int wire_needs_tx(const backend_op_t *op);

static inline void wire_scratch_init(wire_scratch_t *s)
{
    s->vec = NULL;
    buf_init(&s->raw);
}

void wire_scratch_deinit(wire_scratch_t *s);

/* One command as a RESP multibulk of bulk strings. */
void wire_put_command(buf_t *out, int argc, const bytes_t *argv);

/* SELECT db */
void wire_put_select(buf_t *out, int db);

/* An op's expiry as it goes upstream: the client's relative ms (BE_REL), else the absolute unix ms. */
static inline long long wire_expiry(const backend_op_t *op)
{
    return (op->flags & BE_REL) ? op->rel_ms : op->expire_at;
}

#endif
