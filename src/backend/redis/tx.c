/*
 * backend/redis/tx: one op's read-modify-write on encoded values, as a WATCH transaction on the
 * connection the task owns (c->active) until it is done:
 *
 *   WATCH key, GET key  ->  the update fn (or the check) over the old value  ->  MULTI, the write, EXEC
 *
 * EXEC answering nil means the key changed between GET and EXEC: the round starts again, at most
 * UP_TX_RETRIES times (optimistic: each round one contender wins). The fn's result (txres) is the
 * task's once EXEC ran; a fn or check that refuses ends the task with no write (UNWATCH). An error of
 * Redis comes back as the task's BE_ERR. The connection is released (up_conn_release) when the task ends.
 */
#include "backend/redis/redis_int.h"

#include <string.h>

#include "util/buf.h"

/* WATCH key, GET key, in the op's database. */
void up_tx_start(up_conn_t *c, up_task_t *t)
{
    buf_reset(&t->olds);            /* no error of this round yet */
    bytes_t watch[2] = { B("WATCH"), t->op.key };
    bytes_t get[2] = { B("GET"), t->op.key };
    up_conn_send_argv(c, t, SLOT_IGNORE, t->op.db, 2, watch);
    up_conn_send_argv(c, t, SLOT_TX_GET, t->op.db, 2, get);
}

/*
 * The write of a read-modify-write task m, computed from the old value: SET key newval KEEPTTL, or, for a
 * key the update creates (m->created) when the op carries BE_NEWTTL (default-ttl), SET key newval PXAT
 * expire_at. The WATCH makes "did not exist" still true when EXEC runs.
 */
void up_tx_send_update_write(up_conn_t *c, up_task_t *owner, const up_task_t *m, int db)
{
    char at[24];
    bytes_t set[5] = { B("SET"), m->op.key, { m->newval.data ? m->newval.data : "", m->newval.len },
                       B("KEEPTTL") };
    int n = 4;

    if (m->created && (m->op.flags & BE_NEWTTL)) {
        set[3] = (m->op.flags & BE_REL) ? B("PX") : B("PXAT");
        set[4] = (bytes_t){ at, fmt_ll(at, wire_expiry(&m->op)) };
        n = 5;
    }
    up_conn_send_argv(c, owner, SLOT_IGNORE, db, n, set);
}

/* The old value arrived: compute, then MULTI / the write / EXEC, all in one piece. */
void up_tx_got_old(up_conn_t *c, up_task_t *t, const redisReply *r)
{
    bytes_t old, *oldp = NULL;
    bytes_t unwatch[1] = { B("UNWATCH") };

    if (r->type == REDIS_REPLY_ERROR) {
        up_conn_send_argv(c, NULL, SLOT_INTERNAL, -1, 1, unwatch);
        backend_result_t res = { .status = BE_ERR, .err = r->str };
        up_task_finish(t, &res);
        return;
    }
    if (r->type == REDIS_REPLY_STRING) {
        old = (bytes_t){ r->str, r->len };
        oldp = &old;
    }
    if (t->op.code == BE_UPDATE) {
        memset(&t->txres, 0, sizeof(t->txres));
        buf_reset(&t->newval);
        t->created = oldp == NULL;
        int rc = t->op.update(t->op.update_arg, oldp, &t->newval, &t->txres);
        if (rc != 0) {
            up_conn_send_argv(c, NULL, SLOT_INTERNAL, -1, 1, unwatch);
            if (rc < 0)
                t->txres.status = BE_ERR;
            up_task_finish(t, &t->txres);
            return;
        }
        /* INCRBYFLOAT's result may point into newval, which stays with the task */
    } else if (t->op.check != NULL && oldp != NULL) {
        const char *err = NULL;
        if (t->op.check(t->op.check_arg, oldp, &err) != 0) {
            up_conn_send_argv(c, NULL, SLOT_INTERNAL, -1, 1, unwatch);
            backend_result_t res = { .status = BE_ERR, .err = err };
            up_task_finish(t, &res);
            return;
        }
    }
    bytes_t multi[1] = { B("MULTI") }, exec[1] = { B("EXEC") };
    up_conn_send_argv(c, t, SLOT_IGNORE, -1, 1, multi);
    if (t->op.code == BE_UPDATE) {
        up_tx_send_update_write(c, t, t, -1);
    } else {
        up_conn_send_op(c, t, SLOT_IGNORE, -1, &t->op);
    }
    up_conn_send_argv(c, t, SLOT_TX_EXEC, -1, 1, exec);
}

/*
 * A command of the round other than GET and EXEC failed: Redis refused the write queued inside MULTI
 * (CLUSTERDOWN while a cluster fails over, OOM, READONLY, ...), or the WATCH or MULTI. EXEC then answers
 * EXECABORT ("Transaction discarded because of previous errors"), which means nothing to a client that
 * sent one INCR or APPEND: the task fails with the first such error instead, as that command would have
 * failed sent alone. Redirections (MOVED / ASK) are route.c's and never come here.
 */
void up_tx_ignored_error(up_task_t *t, const redisReply *r)
{
    if (t->olds.len > 0)
        return;                     /* the first one says why */
    buf_append(&t->olds, r->str, r->len);
    buf_append(&t->olds, "", 1);
}

/* EXEC answered: nil, the key changed (another round); else the write's result, or the fn's. */
void up_tx_exec_reply(up_conn_t *c, up_task_t *t, const redisReply *r)
{
    if (r->type == REDIS_REPLY_NIL) {             /* the key changed between GET and EXEC: again */
        if (++t->retries > UP_TX_RETRIES) {
            up_task_fail(t, "ERR upstream: the key kept changing during a read-modify-write, try again");
            up_conn_release(c, t);
            return;
        }
        up_tx_start(c, t);
        return;
    }
    if (r->type == REDIS_REPLY_ERROR && t->olds.len > 0) {
        up_task_fail(t, t->olds.data);  /* EXECABORT: the reason Redis gave the command it refused */
    } else if (r->type != REDIS_REPLY_ARRAY || r->elements != 1) {
        up_task_fail(t, r->type == REDIS_REPLY_ERROR ? r->str : "ERR upstream: unexpected reply to EXEC");
    } else if (t->op.code == BE_UPDATE) {
        if (r->element[0]->type == REDIS_REPLY_ERROR) {
            up_task_fail(t, r->element[0]->str);
        } else {
            t->txres.status = BE_OK;
            up_task_finish(t, &t->txres);
        }
    } else {
        up_task_deliver(t, &t->op, r->element[0]);
    }
    up_conn_release(c, t);
}
