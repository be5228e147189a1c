/*
 * backend/redis/resp3: the connections read by frames — a node's RESP3 connections (node.pool3, see
 * pool.c's opening comment) and the dedicated ones (pin.c) — and the order across the two pool sets.
 *
 * Their replies are cut into frames (resp/frame.h). A RESP3 client's forwarded command answered in RESP3
 * is relayed as it is; any other reply (the connection's own commands, a read of an encoded value, EXEC's
 * array) is turned into its RESP2 form (up_frame_walk) and read by hiredis, so that the rest of the
 * backend sees one kind of reply. A client's tasks in flight are all on connection i of one set or the
 * other (lane.c), so a task waits until the same client's earlier tasks on the other set have answered
 * (up_conn_waits): a client's commands run in its order.
 *
 * Transactions and dedicated connections of a RESP3 client. Redis answers a command inside MULTI in the
 * protocol of the connection that runs EXEC, so EXEC's array can hold RESP3 only if the whole transaction
 * runs on a RESP3 connection: a batch with a RESP3 client's forwarded command goes on the client's pool3
 * connection (redis_batch), or, on its dedicated connection, that connection says HELLO 3 first
 * (up_conn_proto_for). EXEC's frame is then split element by element: a forwarded member gets its
 * element's bytes as Redis wrote them, cachetoryd's own members (GET, SET... of encoded values) get their
 * element read as RESP2 and decoded as always. Converting RESP2 replies to RESP3 instead could not work:
 * RESP2 has lost what RESP3 says (HGETALL's map, ZSCORE's double, ZRANGE WITHSCORES's pairs). A dedicated
 * connection switches protocol only where a client needs it: HELLO 3 before a RESP3 client's forwarded
 * command (it stays RESP3 until RESET cleans it for the next client: RESET returns to RESP2, or until its
 * client, having said HELLO 2, sends a forwarded command), HELLO 2 before a subscription (pub/sub frames
 * are read as RESP2 arrays, pin.c), and never while subscribed.
 * Each reply slot records the protocol its reply comes in (up_slot_t.resp3), so the switch needs no
 * other bookkeeping.
 *
 * A cluster: every node has its RESP3 set, and a RESP3 client's forwarded commands go on the one of their
 * slot's master (route.c, route_node_conn), at index affinity % npool as on the RESP2 set, so the order
 * guard holds between the two sets of each node. A task that was redirected (MOVED / ASK) or parked came
 * back at the tail of another queue, behind tasks of its client submitted after it: the guard ignores it
 * (task_earlier), else those later tasks and the sibling's could wait for each other for ever. Its order
 * against its client's other commands is then what Redis Cluster gives any client during a slot move.
 * MULTI ... EXEC and dedicated connections of a RESP3 client stay RESP2 with a cluster (route.c, pin.c).
 */
#include "backend/redis/redis_int.h"

#include <stdlib.h>
#include <string.h>

#include "util/clock.h"

/* The pool connection of the other protocol carrying the same clients (index), or NULL. */
static up_conn_t *conn_sibling(const up_conn_t *c)
{
    if (c->dedicated || c->tracker || c->node->pool3 == NULL)
        return NULL;
    return c->resp3 ? &c->node->pool[c->index] : &c->node->pool3[c->index];
}

/* Is o a task of t's client submitted before it, still in its first queue (not redirected, not parked)? */
static int task_earlier(const up_task_t *o, const up_task_t *t)
{
    return o != NULL && o != t && o->op.affinity == t->op.affinity && o->seq < t->seq && o->redirects == 0 &&
           o->ask_waits == 0;
}

/* Is o a task of t's client submitted after it? */
static int task_later(const up_task_t *o, const up_task_t *t)
{
    return o != NULL && o != t && o->op.affinity == t->op.affinity && o->seq > t->seq;
}

/* Does connection o (NULL: none) hold a task that match says of t (running, sent or queued)? */
static int conn_holds(const up_conn_t *o, const up_task_t *t, int (*match)(const up_task_t *, const up_task_t *))
{
    if (o == NULL)
        return 0;
    if (match(o->active, t))
        return 1;
    for (const up_slot_t *s = o->slots; s != NULL; s = s->next)
        if (match(s->task, t))
            return 1;
    for (const up_task_t *q = o->tasks; q != NULL; q = q->next)
        if (match(q, t))
            return 1;
    return 0;
}

/* Must t wait: the sibling still holds a task of t's client submitted before it (sent or queued), or one
 * of them waits to go again after a CLUSTERDOWN (route.c)? */
int up_conn_waits(const up_conn_t *c, const up_task_t *t)
{
    if (c->up->parked != NULL && route_client_parked_before(c->up, t))
        return 1;
    return conn_holds(conn_sibling(c), t, task_earlier);
}

int up_conn_client_later(const up_conn_t *c, const up_task_t *t)
{
    return conn_holds(c, t, task_later) || conn_holds(conn_sibling(c), t, task_later);
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

/* ---- RESP3 to RESP2 ------------------------------------------------------------------------------ */

/* The length on the line at p (after its type byte); *next: where the next line starts. */
static long long frame_num(const char *p, const char *end, const char **next)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    *next = nl != NULL ? nl + 1 : end;
    return strtoll(p + 1, NULL, 10);
}

/*
 * The value at p (a whole value, as resp_frame_scan found it) written to out in RESP2, as Redis writes it
 * to a RESP2 connection where the types differ: null as $-1, a boolean as 0 / 1, a double and a big number
 * as bulk strings, a blob error as a simple one, a verbatim string without its format, a map as a flat
 * array, a set and a push as arrays; an attribute is dropped. out NULL: only skipped. Returns the end.
 */
const char *up_frame_walk(const char *p, const char *end, buf_t *out)
{
    const char *next;

    if (p >= end)
        return end;
    char t = p[0];
    long long n = frame_num(p, end, &next);
    switch (t) {
    case '$':
    case '!':
    case '=': {
        if (n < 0) {
            if (out != NULL)
                buf_append(out, "$-1\r\n", 5);
            return next;
        }
        const char *body = next;
        next = (size_t)(end - body) >= (size_t)n + 2 ? body + n + 2 : end;
        if (out == NULL || next != body + n + 2)
            return next;
        if (t == '$') {
            buf_append(out, p, (size_t)(next - p));
        } else if (t == '!') {
            buf_append(out, "-", 1);
            buf_append(out, body, (size_t)n + 2);
        } else {
            long long skip = n >= 4 && body[3] == ':' ? 4 : 0;    /* "txt:" */
            buf_append_header(out, '$', n - skip);
            buf_append(out, body + skip, (size_t)(n - skip) + 2);
        }
        return next;
    }
    case '*':
    case '~':
    case '>':
    case '%': {
        if (n < 0) {
            if (out != NULL)
                buf_append(out, "*-1\r\n", 5);
            return next;
        }
        long long k = t == '%' ? 2 * n : n;
        if (out != NULL)
            buf_append_header(out, '*', k);
        for (long long i = 0; i < k && next < end; i++)
            next = up_frame_walk(next, end, out);
        return next;
    }
    case '|':
        for (long long i = 0; i < 2 * n && next < end; i++)
            next = up_frame_walk(next, end, NULL);
        return up_frame_walk(next, end, out);
    default:
        break;
    }
    if (out == NULL)
        return next;
    if (t == '_') {
        buf_append(out, "$-1\r\n", 5);
    } else if (t == '#') {
        buf_append(out, p[1] == 't' ? ":1\r\n" : ":0\r\n", 4);
    } else if (t == ',' || t == '(') {
        size_t len = next - p >= 3 ? (size_t)(next - p) - 3 : 0;
        buf_append_header(out, '$', (long long)len);
        buf_append(out, p + 1, len + 2);
    } else {
        buf_append(out, p, (size_t)(next - p));       /* + - : are RESP2's */
    }
    return next;
}

/* The frame f[0..len) as a hiredis reply (read in its RESP2 form), or NULL: hiredis refused it. The
 * caller frees it (freeReplyObject). */
static redisReply *frame_parse(up_conn_t *c, const char *f, size_t len)
{
    buf_t *b = &c->up->conv;
    void *reply = NULL;

    buf_reset(b);
    up_frame_walk(f, f + len, b);
    if (c->reader == NULL)
        c->reader = wire_reader_create();
    int rc = redisReaderFeed(c->reader, b->data, b->len);
    buf_reset(b);
    buf_shrink(b, UP_READ_BUF);         /* hiredis has its copy: a large reply's block goes back now */
    if (rc != REDIS_OK || redisReaderGetReply(c->reader, &reply) != REDIS_OK || reply == NULL)
        return NULL;
    return reply;
}

/*
 * Is the frame about to be read a forwarded command's reply to be relayed as it is: in RESP3 (a RESP3
 * client's), or in RESP2 on a dedicated connection (Redis's bytes exactly: BLPOP's timeout is *-1, which
 * hiredis would read as a null like $-1)? Not on a subscribed connection, where a pub/sub frame may come
 * before the reply.
 */
static int frame_relayed(const up_conn_t *c)
{
    const up_slot_t *s = c->slots;
    return s != NULL && (s->resp3 || c->dedicated) && !c->pubsub && s->kind == SLOT_RESULT && s->task != NULL &&
           s->task->op.code == BE_COMMAND;
}

/* A relayed reply: its bytes, and for the slot an error-or-not reply with the text. */
static void conn_relay_frame(up_conn_t *c, const char *f, size_t len)
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

/*
 * One frame of a connection read by frames. A push is nobody's reply: on a subscribed dedicated
 * connection it is a pub/sub frame (pin.c), elsewhere none is asked for (dropped). A batch's EXEC answered
 * in RESP3 gets its frame too, to be split among the members (up_batch_exec_reply).
 */
static int conn_frame(up_conn_t *c, const char *f, size_t len)
{
    if (frame_relayed(c)) {
        conn_relay_frame(c, f, len);
        return 0;
    }
    if (f[0] == '>' && !c->pubsub)
        return 0;
    redisReply *r = frame_parse(c, f, len);
    if (r == NULL) {
        up_conn_fail(c, "protocol error: %s", c->reader != NULL && c->reader->err ? c->reader->errstr :
                     "a reply hiredis cannot read");
        return -1;
    }
    if (c->pubsub && up_ded_push(c, r)) {
        freeReplyObject(r);
        return 0;
    }
    const up_slot_t *s = c->slots;
    int whole = f[0] != '>' && s != NULL && s->resp3 && s->kind == SLOT_TX_EXEC && s->task != NULL &&
                s->task->kind == TASK_BATCH;
    if (f[0] != '>')
        up_conn_handle_reply(c, r, whole ? f : NULL, whole ? len : 0);
    freeReplyObject(r);
    return 0;
}

/* What a connection read by frames (a RESP3 one, a dedicated one) read: cut into frames, each handled. */
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
        if (conn_frame(c, f, len) < 0)
            return;
    }
    if (c->state == UP_DOWN)
        return;                     /* up_conn_fail emptied the buffer */
    buf_consume(&c->rbuf, off);
    if (c->rbuf.len == 0)
        buf_shrink(&c->rbuf, UP_READ_BUF);
    up_conn_wake_sibling(c);
}

/* ---- a dedicated connection's protocol ----------------------------------------------------------- */

/* The protocol of Redis's answer t needs relayed as it is: 3 for a RESP3 client's forwarded command, 2 for
 * a RESP2 client's (a dedicated connection relays it: frame_relayed), 0 for anything else; a batch: 3 if
 * a member not yet answered needs it, else 2 if one needs that. */
static int task_relay_proto(const up_task_t *t)
{
    if (t->kind == TASK_BATCH) {
        int p = 0;
        for (int i = 0; i < t->nmembers && p != 3; i++) {
            int m = t->members[i]->done ? 0 : task_relay_proto(t->members[i]);
            if (m > p)
                p = m;
        }
        return p;
    }
    if (t->op.code != BE_COMMAND || (t->op.flags & BE_PUSHES))
        return 0;
    return (t->op.flags & BE_RESP3) ? 3 : 2;
}

/* Does t need Redis's RESP3 answer: a RESP3 client's forwarded command, or a batch holding one? */
int up_task_wants_resp3(const up_task_t *t)
{
    return task_relay_proto(t) == 3;
}

/* t is about to go on dedicated connection c: HELLO 3 first for a RESP3 client's forwarded command (not
 * while subscribed: RESP2's subscribed mode refuses HELLO), HELLO 2 first for a subscription, and HELLO 2
 * first for a RESP2 client's forwarded command on a connection a RESP3 client's left in RESP3 (a client
 * that said HELLO 2 while holding it: its replies must come in RESP2 from then on, as from Redis). */
void up_conn_proto_for(up_conn_t *c, const up_task_t *t)
{
    static const bytes_t hello3[2] = { B("HELLO"), B("3") }, hello2[2] = { B("HELLO"), B("2") };

    if (t->kind == TASK_PUSH) {
        if (!c->proto3)
            return;
        c->proto3 = 0;                  /* its answer, and what follows, in RESP2 */
        up_conn_send_argv(c, NULL, SLOT_INTERNAL, -1, 2, hello2);
        return;
    }
    int want = c->pubsub ? 0 : task_relay_proto(t);
    if ((want == 3 && !c->proto3) || (want == 2 && c->proto3)) {
        c->proto3 = want == 3;
        up_conn_send_argv(c, NULL, SLOT_INTERNAL, -1, 2, c->proto3 ? hello3 : hello2);
    }
}
