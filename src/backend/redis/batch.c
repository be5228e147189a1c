/*
 * backend/redis/batch: a client's MULTI ... EXEC as one upstream transaction, on the connection the
 * batch owns (c->active) until EXEC has answered.
 *
 * Without read-modify-write members: MULTI, the members, EXEC, in one piece. With them (an update on
 * encoded values, or a check of an old value), the values they read come first: WATCH the keys,
 * database by database, and GET each; then the members run here in order over what the GETs brought
 * (the overlay follows what earlier members write, opcode by opcode: wire_op_t.follow), and MULTI sends
 * each member, a read-modify-write as the SET of the value it computed. EXEC answering nil means a
 * watched key changed: read and compute again (at most UP_TX_RETRIES times).
 *
 * Outcome: up_batch_outcome tells the interface's batch callback once (OK, or why nothing ran), before
 * any member's callback. A member refused before MULTI (WRONGTYPE of a read, a fn's error) is answered
 * at once and the others run, as in Redis. A member whose writes cannot be followed here where a later
 * member reads fails the whole batch, nothing run. The connection's database after EXEC is that of the
 * last SELECT member that ran.
 */
#include "backend/redis/redis_int.h"

#include <stdio.h>
#include <string.h>

#include "util/clock.h"
#include "util/mem.h"

/* A batch's outcome (the backend interface's batch end callback): OK, or the reason nothing ran. */
void up_batch_outcome(up_task_t *t, const char *err)
{
    backend_result_t res = { .status = err ? BE_ERR : BE_OK, .err = err };
    if (t->done)
        return;
    t->done = 1;
    if (t->cb)
        t->cb(t->ctx, &res);
}

/* Free the members of a batch that is over. */
void up_batch_free_members(up_task_t *t)
{
    for (int i = 0; i < t->nmembers; i++)
        up_task_free(t->members[i]);
    t->nmembers = 0;
}

/*
 * EXEC of a client's MULTI answered. An array: each member sent gets its element, and the connection is
 * in the database of the last SELECT member that succeeded. Answered in RESP3 (raw: the frame; resp3.c),
 * a forwarded member gets its element's bytes as Redis wrote them, the others their element read as RESP2. Anything else (the transaction aborted,
 * nothing ran): the connection stays where it was at MULTI; a null reply with read-modify-write members
 * means a key they read changed, and the batch reads and computes again.
 */
void up_batch_exec_reply(up_conn_t *c, up_task_t *t, const redisReply *r, const char *raw, size_t rawlen)
{
    int nsent = 0;
    const char *end = raw != NULL ? raw + rawlen : NULL, *p = NULL;

    for (int i = 0; i < t->nmembers; i++)
        nsent += t->members[i]->sent;
    c->db = t->db_start;
    if (r->type == REDIS_REPLY_NIL && t->pinned) {
        /* the client's own WATCH (or one of the members' reads) saw a change: Redis ran nothing, and the
         * client gets EXEC's nil, as from Redis */
        backend_result_t res = { .status = BE_NIL };
        if (!t->done) {
            t->done = 1;
            if (t->cb)
                t->cb(t->ctx, &res);
        }
        for (int i = 0; i < t->nmembers; i++)
            up_task_fail(t->members[i], "EXECABORT a watched key changed");
        up_batch_free_members(t);
        up_conn_release(c, t);
        return;
    }
    if (r->type == REDIS_REPLY_NIL && t->reads) {
        if (++t->retries > UP_TX_RETRIES) {
            up_task_fail(t, "ERR upstream: the keys kept changing during a transaction, try again");
            up_batch_free_members(t);
            up_conn_release(c, t);
            return;
        }
        up_batch_read(c, t);
        return;
    }
    if (r->type == REDIS_REPLY_ARRAY && (int)r->elements == nsent) {
        size_t e = 0;
        if (raw != NULL && raw[0] == '*')
            p = memchr(raw, '\n', rawlen);         /* the first element, after the array's header */
        if (p != NULL)
            p++;
        up_batch_outcome(t, NULL);
        for (int i = 0; i < t->nmembers; i++) {
            up_task_t *m = t->members[i];
            if (!m->sent)
                continue;               /* failed before MULTI: already answered */
            const redisReply *el = r->element[e++];
            const char *ef = p;
            if (p != NULL)
                p = up_frame_walk(p, end, NULL);
            if (m->op.code == BE_SELECT && el->type != REDIS_REPLY_ERROR)
                c->db = m->op.db2;
            if (m->kind == TASK_TX && m->op.code == BE_UPDATE) {
                if (el->type == REDIS_REPLY_ERROR) {
                    up_task_fail(m, el->str);
                } else {
                    m->txres.status = BE_OK;
                    up_task_finish(m, &m->txres);
                }
            } else if (ef != NULL && m->op.code == BE_COMMAND) {
                up_task_deliver_raw(m, ef, (size_t)(p - ef));
            } else {
                up_task_deliver(m, &m->op, el);
            }
        }
    } else {
        up_task_fail(t, r->type == REDIS_REPLY_ERROR ? r->str : "ERR upstream: unexpected reply to EXEC");
    }
    up_batch_free_members(t);
    up_conn_release(c, t);
}

/* ---- sending: databases, reads, MULTI ... EXEC --------------------------------------------------- */

/*
 * The database each member runs in, as Redis will run them: the client's database at EXEC, changed by
 * each SELECT member still to run (one whose database Redis refused was answered already and changes
 * nothing, as in Redis). Members' op.db is set to it; SELECT members keep theirs (where they start).
 */
void up_batch_assign_dbs(up_task_t *t)
{
    int db = t->op.db;

    for (int i = 0; i < t->nmembers; i++) {
        up_task_t *m = t->members[i];
        if (m->op.code == BE_SELECT) {
            m->op.db = db;
            if (!m->done)
                db = m->op.db2;
        } else {
            m->op.db = db;
        }
    }
}

/* A key that a read-modify-write member reads, in the database it reads it from. */
typedef struct dbkey {
    int db;
    bytes_t key;
} dbkey_t;

static int dbkey_eq(int db, bytes_t a, int db2, bytes_t b)
{
    return db == db2 && a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0;
}

/*
 * The keys the batch's read-modify-write members read, each once, grouped by database (the groups in
 * the order their databases first appear): one WATCH per group.
 */
static int batch_keys(up_task_t *t, dbkey_t **keys)
{
    int n = 0;
    *keys = mem_alloc((size_t)(t->nmembers ? t->nmembers : 1) * sizeof(**keys));
    for (int i = 0; i < t->nmembers; i++) {
        const up_task_t *m = t->members[i];
        int dup = 0, at = n;
        if (m->kind != TASK_TX || m->done)
            continue;
        for (int j = 0; j < n && !dup; j++) {
            dup = dbkey_eq((*keys)[j].db, (*keys)[j].key, m->op.db, m->op.key);
            if ((*keys)[j].db == m->op.db)
                at = j + 1;     /* after the last key of its database */
        }
        if (dup)
            continue;
        memmove(*keys + at + 1, *keys + at, (size_t)(n - at) * sizeof(**keys));
        (*keys)[at] = (dbkey_t){ m->op.db, m->op.key };
        n++;
    }
    return n;
}

/*
 * WATCH the keys the batch reads, database by database, and GET each: the computation needs them. GET,
 * not MGET: a key of another type must answer WRONGTYPE to the member that reads it, not look absent
 * (the member would overwrite a hash with a string).
 */
void up_batch_read(up_conn_t *c, up_task_t *t)
{
    dbkey_t *keys;
    int n = batch_keys(t, &keys);
    bytes_t *argv = mem_alloc((size_t)(n + 1) * sizeof(*argv));

    buf_reset(&t->olds);
    t->reads_left = n;
    for (int i = 0; i < n;) {
        int j = i, db = keys[i].db;
        for (; j < n && keys[j].db == db; j++)
            argv[1 + j - i] = keys[j].key;
        argv[0] = B("WATCH");
        up_conn_send_argv(c, t, SLOT_IGNORE, db, j - i + 1, argv);
        for (; i < j; i++) {
            bytes_t get[2] = { B("GET"), keys[i].key };
            up_conn_send_argv(c, t, SLOT_TX_GET, -1, 2, get);
        }
    }
    mem_free(argv);
    mem_free(keys);
}

/* MULTI, the members still to run (a read-modify-write as SET ... KEEPTTL of what it computed), EXEC. */
void up_batch_send(up_conn_t *c, up_task_t *t)
{
    bytes_t multi[1] = { B("MULTI") }, exec[1] = { B("EXEC") };

    up_conn_send_argv(c, t, SLOT_IGNORE, t->op.db, 1, multi);
    t->db_start = c->db;
    for (int i = 0; i < t->nmembers; i++) {
        up_task_t *m = t->members[i];
        if (m->done)
            continue;
        m->sent = 1;
        if (m->op.code == BE_SELECT)
            c->db = m->op.db2;          /* inside MULTI: it counts if EXEC runs (batch_exec_reply) */
        if (m->kind == TASK_TX && m->op.code == BE_UPDATE) {
            up_tx_send_update_write(c, t, m, -1);
        } else {
            up_conn_send_op(c, t, SLOT_IGNORE, -1, &m->op);
        }
    }
    up_conn_send_argv(c, t, SLOT_TX_EXEC, -1, 1, exec);
}

/* What the batch knows of a key as its members run in order: the stored (encoded) bytes, or absent. */
typedef struct overlay {
    int db;
    bytes_t key;
    bytes_t val;                /* ptr NULL: absent */
    const char *err;            /* not NULL: reading it gives this error (a key of another type) */
} overlay_t;

/* The keys a batch knows, as batch_got_old runs its members (the follow functions below update it). */
struct up_overlay {
    const up_task_t *t;         /* the batch */
    overlay_t *ov;
    int n, cap;
};

static overlay_t *overlay_find(const struct up_overlay *o, int db, bytes_t key)
{
    for (int i = 0; i < o->n; i++)
        if (dbkey_eq(o->ov[i].db, o->ov[i].key, db, key))
            return &o->ov[i];
    return NULL;
}

static overlay_t *overlay_set(struct up_overlay *o, int db, bytes_t key, bytes_t val)
{
    overlay_t *e = overlay_find(o, db, key);
    if (e == NULL) {
        if (o->n == o->cap) {
            o->cap = o->cap ? o->cap * 2 : 8;
            o->ov = mem_realloc(o->ov, (size_t)o->cap * sizeof(*o->ov));
        }
        e = &o->ov[o->n++];
        e->db = db;
        e->key = key;
    }
    e->val = val;
    e->err = NULL;
    return e;
}

/* The key is absent from now on, if the batch knows it. */
static void overlay_delete(struct up_overlay *o, int db, bytes_t key)
{
    if (overlay_find(o, db, key))
        overlay_set(o, db, key, (bytes_t){ NULL, 0 });
}

/* Does op's expiry (EXPIRE, GETEX) delete the key when it runs? */
static int expires_now(const backend_op_t *op)
{
    if (op->expire_at < 0)
        return 0;                       /* PERSIST */
    return (op->flags & BE_REL) ? op->rel_ms <= 0 : op->expire_at <= clock_ms();
}

/* Does a read-modify-write member after member i read key in db? */
static int later_reads(const up_task_t *t, int i, int db, bytes_t key)
{
    for (int j = i + 1; j < t->nmembers; j++) {
        const up_task_t *m = t->members[j];
        if (m->kind == TASK_TX && dbkey_eq(m->op.db, m->op.key, db, key))
            return 1;
    }
    return 0;
}

/* Is there a read-modify-write member after member i? */
static int later_reads_any(const up_task_t *t, int i)
{
    for (int j = i + 1; j < t->nmembers; j++)
        if (t->members[j]->kind == TASK_TX)
            return 1;
    return 0;
}

/* ---- following what members write (wire_op_t.follow) --------------------------------------------- */

/* SET: the key takes the value; a conditional one (NX / XX) cannot be followed where it is read later. */
const char *up_batch_follow_set(struct up_overlay *o, int i, const backend_op_t *op)
{
    if (later_reads(o->t, i, op->db, op->key) && (op->flags & (BE_NX | BE_XX)))
        return "a conditional SET";
    if (overlay_find(o, op->db, op->key))
        overlay_set(o, op->db, op->key, op->value);
    return NULL;
}

/* GETDEL, and GETEX with an expiry already past, delete the key. */
const char *up_batch_follow_get(struct up_overlay *o, int i, const backend_op_t *op)
{
    if ((op->flags & BE_GETDEL) || ((op->flags & BE_SETTTL) && expires_now(op)))
        overlay_delete(o, op->db, op->key);
    return NULL;
}

/* EXPIRE with a time already past deletes the key; a conditional one depends on the key's TTL. */
const char *up_batch_follow_expire(struct up_overlay *o, int i, const backend_op_t *op)
{
    if (!later_reads(o->t, i, op->db, op->key))
        return NULL;
    if (op->expire_at >= 0 && (op->flags & (BE_NX | BE_XX | BE_GT | BE_LT)))
        return "a conditional EXPIRE";      /* whether it applies depends on the key's TTL */
    if (expires_now(op))
        overlay_set(o, op->db, op->key, (bytes_t){ NULL, 0 });
    return NULL;
}

/* MSET: each key takes its value; MSETNX sets all or none, which depends on keys not read. */
const char *up_batch_follow_mset(struct up_overlay *o, int i, const backend_op_t *op)
{
    for (size_t k = 0; k < op->nkeys; k++) {
        if (!overlay_find(o, op->db, op->keys[k]))
            continue;
        if ((op->flags & BE_NX) && later_reads(o->t, i, op->db, op->keys[k]))
            return "MSETNX";
        overlay_set(o, op->db, op->keys[k], op->vals[k]);
    }
    return NULL;
}

const char *up_batch_follow_del(struct up_overlay *o, int i, const backend_op_t *op)
{
    for (size_t k = 0; k < op->nkeys; k++)
        overlay_delete(o, op->db, op->keys[k]);
    return NULL;
}

/*
 * RENAME / RENAMENX src dst where a later member reads one of them: dst takes src's value (or its other
 * type), src goes. It cannot be followed when the outcome depends on what the batch did not read: src's
 * value, or whether dst exists for RENAMENX.
 */
const char *up_batch_follow_rename(struct up_overlay *o, int i, const backend_op_t *op)
{
    if (!later_reads(o->t, i, op->db, op->key) && !later_reads(o->t, i, op->db, op->key2))
        return NULL;

    overlay_t *src = overlay_find(o, op->db, op->key);
    overlay_t *dst = overlay_find(o, op->db, op->key2);

    if (src == NULL)
        return "RENAME";
    if (src->val.ptr == NULL && src->err == NULL)
        return NULL;                    /* ERR no such key: nothing changes */
    if (dbkey_eq(op->db, op->key, op->db, op->key2))
        return NULL;
    if (op->flags & BE_NX) {
        if (dst == NULL)
            return "RENAME";
        if (dst->val.ptr != NULL || dst->err != NULL)
            return NULL;                /* RENAMENX onto an existing key does nothing */
    }
    bytes_t val = src->val;
    const char *err = src->err;
    overlay_set(o, op->db, op->key2, val)->err = err;
    overlay_set(o, op->db, op->key, (bytes_t){ NULL, 0 });
    return NULL;
}

/* FLUSHDB / FLUSHALL: every key goes, read or not. */
const char *up_batch_follow_flush(struct up_overlay *o, int i, const backend_op_t *op)
{
    return later_reads_any(o->t, i) ? "FLUSHDB / FLUSHALL" : NULL;
}

/* A forwarded command: the keys it touches if they are known, else it may touch any key (as FLUSH). */
const char *up_batch_follow_command(struct up_overlay *o, int i, const backend_op_t *op)
{
    if (op->flags & BE_KEYSKNOWN) {
        for (size_t k = 0; k < op->nkeys; k++)
            if (later_reads(o->t, i, op->db, op->keys[k]))
                return "a forwarded command";
        return NULL;
    }
    return later_reads_any(o->t, i) ? "a forwarded command" : NULL;
}

/* ---- reading, computing -------------------------------------------------------------------------- */

/* What up_batch_read's GETs brought, kept in t->olds in key order: a tag, a length, the bytes. */
enum { OLD_ABSENT, OLD_VALUE, OLD_ERROR };

/*
 * The values arrived: run the members in order over them, as Redis would inside the transaction. Writes
 * of earlier members are followed (each opcode's wire_op_t.follow: SET, MSET, DEL, GETDEL, EXPIRE /
 * GETEX that delete, RENAME, and the read-modify-writes themselves); a member that changes a later-read
 * key in a way that cannot be followed here (a conditional SET or EXPIRE, MSETNX, FLUSH, a forwarded
 * command on it or of unknown keys) makes the whole transaction fail, with nothing run.
 */
static void batch_got_old(up_conn_t *c, up_task_t *t)
{
    dbkey_t *keys;
    int nkeys = batch_keys(t, &keys);
    struct up_overlay o = { .t = t };
    const char *bail = NULL;
    size_t off = 0;

    for (int i = 0; i < nkeys && off + 1 + sizeof(size_t) <= t->olds.len; i++) {
        char tag = t->olds.data[off];
        size_t len;
        memcpy(&len, t->olds.data + off + 1, sizeof(len));
        off += 1 + sizeof(len);
        bytes_t v = tag == OLD_ABSENT ? (bytes_t){ NULL, 0 } : (bytes_t){ t->olds.data + off, len };
        off += tag == OLD_ABSENT ? 0 : len + 1;
        if (tag == OLD_ERROR)
            overlay_set(&o, keys[i].db, keys[i].key, (bytes_t){ NULL, 0 })->err = v.ptr;
        else
            overlay_set(&o, keys[i].db, keys[i].key, v);
    }
    for (int i = 0; i < t->nmembers && bail == NULL; i++) {
        up_task_t *m = t->members[i];
        const backend_op_t *op = &m->op;
        m->sent = 0;
        if (m->done)
            continue;
        if (m->kind == TASK_TX) {
            overlay_t *e = overlay_find(&o, op->db, op->key);
            bytes_t *old = e && e->val.ptr ? &e->val : NULL;
            if (e != NULL && e->err != NULL) {
                backend_result_t res = { .status = BE_ERR, .err = e->err };
                up_task_finish(m, &res);        /* WRONGTYPE, as Redis answers this one; the others run */
                continue;
            }
            if (op->code == BE_UPDATE) {
                memset(&m->txres, 0, sizeof(m->txres));
                buf_reset(&m->newval);
                m->created = old == NULL;
                int rc = op->update(op->update_arg, old, &m->newval, &m->txres);
                if (rc < 0) {
                    m->txres.status = BE_ERR;
                    up_task_finish(m, &m->txres);   /* as Redis: this one fails, the others run */
                } else if (rc > 0) {
                    up_task_finish(m, &m->txres);
                } else {
                    overlay_set(&o, op->db, op->key, (bytes_t){ m->newval.data ? m->newval.data : "", m->newval.len });
                }
                continue;
            }
            const char *err = NULL;
            if (op->check && old && op->check(op->check_arg, old, &err) != 0) {
                backend_result_t res = { .status = BE_ERR, .err = err };
                up_task_finish(m, &res);
                continue;
            }
        }
        /* follow what this member writes, where a later member may read it */
        wire_follow_fn *follow = wire_op(op->code)->follow;
        if (follow != NULL)
            bail = follow(&o, i, op);
    }
    mem_free(keys);
    mem_free(o.ov);
    if (bail != NULL) {
        char err[300];
        bytes_t unwatch[1] = { B("UNWATCH") };
        snprintf(err, sizeof(err), "ERR upstream: in this transaction %s changes a key that a later "
                 "read-modify-write on encoded values reads; split the transaction or use null://", bail);
        up_conn_send_argv(c, NULL, SLOT_INTERNAL, -1, 1, unwatch);
        up_task_fail(t, err);
        up_batch_free_members(t);
        up_conn_release(c, t);
        return;
    }
    up_batch_send(c, t);
}

/* One GET of up_batch_read answered: keep what it said. */
void up_batch_got_values(up_conn_t *c, up_task_t *t, const redisReply *r)
{
    char tag = r->type == REDIS_REPLY_STRING ? OLD_VALUE : r->type == REDIS_REPLY_ERROR ? OLD_ERROR : OLD_ABSENT;
    size_t len = tag == OLD_ABSENT ? 0 : r->len;

    buf_append(&t->olds, &tag, 1);
    buf_append(&t->olds, &len, sizeof(len));
    if (tag != OLD_ABSENT) {
        buf_append(&t->olds, r->str, len);
        buf_append(&t->olds, "", 1);            /* an error text is used as a C string */
    }
    if (--t->reads_left == 0)
        batch_got_old(c, t);
}
