/*
 * backend/redis/resp3: the RESP3 connections of a node (node.pool3) — see pool.c's opening comment.
 *
 * Their replies are cut into frames (resp/frame.h) and relayed as they are; connection i of the RESP2 set
 * and of the RESP3 set carry the same clients (affinity % npool), so a task waits until the same client's
 * earlier tasks on the other set have answered (up_conn_waits): a client's commands run in its order.
 */
#include "backend/redis/redis_int.h"

#include <string.h>

#include "util/clock.h"

/* The pool connection of the other protocol carrying the same clients (index), or NULL. */
static up_conn_t *conn_sibling(const up_conn_t *c)
{
    if (c->dedicated || c->tracker || c->node->pool3 == NULL)
        return NULL;
    return c->resp3 ? &c->node->pool[c->index] : &c->node->pool3[c->index];
}

static int task_earlier(const up_task_t *o, const up_task_t *t)
{
    return o != NULL && o != t && o->op.affinity == t->op.affinity && o->seq < t->seq;
}

/* Must t wait: the sibling still holds a task of t's client submitted before it (sent or queued)? */
int up_conn_waits(const up_conn_t *c, const up_task_t *t)
{
    const up_conn_t *o = conn_sibling(c);

    if (o == NULL || (o->slots == NULL && o->tasks == NULL && o->active == NULL))
        return 0;
    if (task_earlier(o->active, t))
        return 1;
    for (const up_slot_t *s = o->slots; s != NULL; s = s->next)
        if (task_earlier(s->task, t))
            return 1;
    for (const up_task_t *q = o->tasks; q != NULL; q = q->next)
        if (task_earlier(q, t))
            return 1;
    return 0;
}

/* c answered or failed: the sibling's tasks waiting for it may go. */
void up_conn_wake_sibling(up_conn_t *c)
{
    up_conn_t *o = conn_sibling(c);
    if (o != NULL && o->tasks != NULL)
        up_conn_pump(o);
}

int up_conn_can_send(up_conn_t *c, up_task_t *t)
{
    return !up_conn_waits(c, t);
}

/* One reply of a RESP3 connection: its bytes, and for the slot an error-or-not reply with the text. */
static void conn_handle_frame(up_conn_t *c, const char *f, size_t len)
{
    redisReply r = { .type = REDIS_REPLY_STATUS, .str = "" };
    char err[256];

    if (f[0] == '-' || f[0] == '!') {
        const char *p = f + 1, *end = f + len - 2;         /* a simple error: the line */
        if (f[0] == '!') {                                  /* a blob error: after its length's line */
            const char *nl = memchr(f, '\n', len);
            p = nl != NULL ? nl + 1 : end;
        }
        size_t n = p < end ? (size_t)(end - p) : 0;
        if (n >= sizeof(err))
            n = sizeof(err) - 1;
        memcpy(err, p, n);
        err[n] = '\0';
        r.type = REDIS_REPLY_ERROR;
        r.str = err;
        r.len = n;
    }
    up_conn_handle_reply(c, &r, f, len);
}

/* What a RESP3 connection read: cut into frames (resp/frame.h), each relayed as it is. A push frame is
 * nobody's reply (none is asked for on these connections): dropped. */
void up_conn_read_resp3(up_conn_t *c, const char *p, size_t n)
{
    size_t off = 0;

    buf_append(&c->rbuf, p, n);
    while (c->state != UP_DOWN && off < c->rbuf.len) {
        int rc = resp_frame_scan(&c->frame, c->rbuf.data + off, c->rbuf.len - off);
        if (rc == RESP_FRAME_AGAIN)
            break;
        if (rc == RESP_FRAME_ERROR) {
            up_conn_fail(c, "%s", c->frame.err);
            return;
        }
        const char *f = c->rbuf.data + off;
        size_t len = c->frame.pos;
        off += len;
        resp_frame_next(&c->frame);
        if (f[0] != '>')
            conn_handle_frame(c, f, len);
    }
    if (c->state == UP_DOWN)
        return;                     /* up_conn_fail emptied the buffer */
    buf_consume(&c->rbuf, off);
    if (c->rbuf.len == 0)
        buf_shrink(&c->rbuf, UP_READ_BUF);
    up_conn_wake_sibling(c);
}
