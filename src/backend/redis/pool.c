/*
 * backend/redis/pool: the upstream connections — a pool of upstream-pool-size connections to one Redis,
 * each pipelined (many commands in flight, the replies matched to their slots in order). What a TLS
 * transport (the stream under a connection) and a cluster router (several pools) build on.
 *
 * Sending: up_conn_send_* append a command to the connection's output with a slot saying what its reply
 * is for; a uv_check writes every connection's output once per loop turn. The connection's database is
 * followed command by command (see "databases" below).
 *
 * Queue: tasks that cannot go out at once (the connection is not ready, a transaction or batch owns it,
 * a SELECT is awaited) wait in c->tasks, in order; up_conn_pump sends what it can whenever that changes.
 *
 * Failures: a connection that fails (refused, reset, timed out, an error to a command of our own) fails
 * every task it holds with "ERR upstream HOST:PORT: reason", closes, and reconnects with backoff (50 ms
 * doubling to upstream-retry-max). While it is down, new tasks fail at once (redis.c). A command that
 * takes longer than upstream-command-timeout fails the connection, so no client waits longer than that.
 *
 * TLS (rediss://): the connection's stream carries a TLS session (net/stream.h). The handshake starts
 * when the first command (AUTH or PING) is flushed and those commands wait inside the stream until it
 * is done; a handshake that fails is a connection failure like a refused connect, its reason (the
 * certificate check that failed) in the error, and upstream-connect-timeout covers it.
 *
 * RESP3 (node.pool3, every node's, a cluster's too): a RESP3 client's forwarded commands (BE_RESP3) go on
 * a second set of upstream-pool-size connections, each made on first use with HELLO 3 [AUTH user pass]
 * instead of AUTH, so that Redis answers them in RESP3 itself: maps, sets, doubles, nulls, big numbers,
 * verbatim strings and attributes reach the client as Redis wrote them. hiredis 0.14's reader knows RESP2
 * only; rather than a RESP3 parser building objects to be written out again, their replies are only cut
 * into frames (resp/frame.h) and the bytes relayed: nothing is converted, so nothing can be converted
 * wrong. Other replies (HELLO, SELECT, a transaction's) are read in their RESP2 form. Connection i of both
 * sets carries the same clients (lane.c; a cluster's: affinity % npool): a task waits until the same
 * client's earlier tasks on the other set have answered (up_conn_waits), so a client's commands still run
 * in the order it sent them. A RESP3 client's MULTI ... EXEC and its dedicated connection: resp3.c.
 */
#include "backend/redis/redis_int.h"

#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

static void conn_connect(up_conn_t *c);
static void up_flush_cb(uv_check_t *h);

/* ---- slots: what each reply awaited is for, in order --------------------------------------------- */

static up_slot_t *slot_push(up_conn_t *c, up_task_t *t, int kind)
{
    upstream_t *up = c->up;
    up_slot_t *s = up->free_slots;
    if (s != NULL)
        up->free_slots = s->next;
    else
        s = mem_alloc(sizeof(*s));
    s->next = NULL;
    s->task = t;
    s->kind = kind;
    s->resp3 = c->proto3;
    s->sent_us = clock_us_monotonic();
    if (c->slots_tail)
        c->slots_tail->next = s;
    else
        c->slots = s;
    c->slots_tail = s;
    c->nslots++;
    up->ncommands++;
    return s;
}

static void slot_put(upstream_t *up, up_slot_t *s)
{
    s->next = up->free_slots;
    up->free_slots = s;
}

static void flush_schedule(upstream_t *up)
{
    if (!up->flush_active) {
        uv_check_start(&up->flush, up_flush_cb);
        up->flush_active = 1;
    }
}

/* ---- databases ----------------------------------------------------------------------------------- */

/*
 * A client starts in the URL's database (backend_t.default_db) and SELECT n reaches database n.
 *
 * Commands for many clients share a connection, so the connection SELECTs whichever database the next
 * command is for. Redis answers a SELECT of a database it does not have with an error and stays where
 * it was: pipelined behind such a SELECT, the next command would run in the wrong database. So a
 * connection SELECTs a database it has not yet seen succeed alone, and sends nothing more until Redis
 * answers (up_conn_db_ready); once one succeeded, that database is known on this connection and is
 * SELECTed in the pipeline. Known databases are forgotten when the connection is made again, and an
 * error to a pipelined SELECT (or any command of our own) fails the connection.
 */
static int db_known(const up_conn_t *c, int db)
{
    if (db == c->up->db)
        return 1;               /* the handshake selected it */
    return db >= 0 && db < UP_KNOWN_DBS && ((c->known_dbs[db / 64] >> (db % 64)) & 1);
}

static void db_learn(up_conn_t *c, int db)
{
    if (db >= 0 && db < UP_KNOWN_DBS)
        c->known_dbs[db / 64] |= 1ull << (db % 64);
}

/*
 * Can commands for client database db be sent on c now? 1 if the connection is there or the database
 * is known; otherwise a lone SELECT is sent (if none is awaited already) and 0 returned: conn_pump
 * goes on when Redis answers it.
 */
int up_conn_db_ready(up_conn_t *c, int db)
{
    if (c->select_wait)
        return 0;
    if (db == c->db || db_known(c, db))
        return 1;
    wire_put_select(&c->w.out, db);
    up_slot_t *s = slot_push(c, NULL, SLOT_SELECT);
    s->db = db;
    c->db_before = c->db;
    c->db = db;
    c->select_wait = 1;
    flush_schedule(c->up);
    return 0;
}

/* ---- sending ------------------------------------------------------------------------------------- */

/*
 * Append a command with a slot for its reply; SELECT first when it is for another database than the
 * connection's (db -1: wherever the connection is). The caller made sure the database is known
 * (up_conn_db_ready).
 */
static void conn_send(up_conn_t *c, up_task_t *t, int kind, int db, void (*put)(buf_t *, const void *), const void *arg)
{
    if (db >= 0 && db != c->db) {
        wire_put_select(&c->w.out, db);
        slot_push(c, NULL, SLOT_INTERNAL);
        c->db = db;
    }
    put(&c->w.out, arg);
    if (t != NULL && kind == SLOT_RESULT && (t->op.flags & BE_WITHTTL)) {
        /* wire put a PTTL per key before the read itself */
        size_t n = wire_ttl_count(&t->op);
        for (size_t i = 0; i < n; i++)
            slot_push(c, t, SLOT_TTL)->db = (int)i;
    }
    slot_push(c, t, kind);
    flush_schedule(c->up);
}

static void put_op_cb(buf_t *out, const void *arg)
{
    wire_put(out, arg);
}

static void put_bytes_cb(buf_t *out, const void *arg)
{
    const buf_t *b = arg;
    buf_append(out, b->data, b->len);
}

typedef struct cmdv {
    int argc;
    const bytes_t *argv;
} cmdv_t;

static void put_cmdv_cb(buf_t *out, const void *arg)
{
    const cmdv_t *v = arg;
    wire_put_command(out, v->argc, v->argv);
}

void up_conn_send_argv(up_conn_t *c, up_task_t *t, int kind, int db, int argc, const bytes_t *argv)
{
    cmdv_t v = { argc, argv };
    conn_send(c, t, kind, db, put_cmdv_cb, &v);
}

void up_conn_send_op(up_conn_t *c, up_task_t *t, int kind, int db, const backend_op_t *op)
{
    conn_send(c, t, kind, db, put_op_cb, op);
}

/* SUBSCRIBE and its kin on a dedicated connection: no slot, Redis's answers are pushes (up_ded_push); the
 * task is answered OK now. */
void up_conn_send_push(up_conn_t *c, up_task_t *t)
{
    backend_result_t res = { .status = BE_OK };

    buf_append(&c->w.out, t->data.data, t->data.len);
    c->up->ncommands++;
    c->pubsub = 1;
    c->push_sent++;
    flush_schedule(c->up);
    up_task_finish(t, &res);
    up_task_free(t);
}

/* The write in flight ended: a failure fails the connection; else send what came meanwhile. */
static void conn_written_cb(stream_t *w, int status)
{
    up_conn_t *c = w->handle->data;

    if (status < 0) {
        if (c->state != UP_DOWN)
            up_conn_fail(c, "write failed: %s", uv_strerror(status));
        return;
    }
    if (stream_has_output(w))
        flush_schedule(c->up);
}

void up_conn_flush(up_conn_t *c)
{
    if (c->state == UP_DOWN || c->state == UP_CONNECTING)
        return;
    int rc = stream_flush(&c->w);
    if (rc == UV_EPROTO && c->w.tls != NULL)
        up_conn_fail(c, "%s", stream_error(&c->w));
    else if (rc < 0)
        up_conn_fail(c, "write failed: %s", uv_strerror(rc));
}

static void up_flush_cb(uv_check_t *h)
{
    upstream_t *up = h->data;
    uv_check_stop(h);
    up->flush_active = 0;
    up_lane_next_turn(up);
    for (int k = 0; k < up_nconns(up); k++)
        up_conn_flush(up_conn_at(up, k));
    for (int k = 0; k < up_nconns(up); k++)
        up_conn_flush(up_conn3_at(up, k));
    if (up->track != NULL)
        up_conn_flush(up_track_conn(up));
    up_ded_flush(up);
}

/* The connection is free for the next queued tasks once the transaction or batch owning it is over. */
void up_conn_release(up_conn_t *c, up_task_t *t)
{
    if (c->active == t)
        c->active = NULL;
    up_task_free(t);
    up_conn_pump(c);
}

/* ---- dispatching tasks --------------------------------------------------------------------------- */

/*
 * Are the databases task t uses known on c (up_conn_db_ready)? A batch starts in the client's database and
 * may SELECT others: all must be known before its MULTI leaves, so that the connection's database after
 * EXEC is known too.
 */
static int task_dbs_ready(up_conn_t *c, up_task_t *t)
{
    if (t->kind == TASK_SELECT)
        return up_conn_db_ready(c, t->op.db2);
    if (!up_conn_db_ready(c, t->op.db))
        return 0;
    if (t->kind == TASK_BATCH)
        for (int i = 0; i < t->nmembers; i++)
            if (t->members[i]->op.code == BE_SELECT && !t->members[i]->done &&
                !up_conn_db_ready(c, t->members[i]->op.db2))
                return 0;
    return 1;
}

/*
 * Redis refused to SELECT database db (it has fewer databases): the task at the head of the queue
 * asked for it. A client's SELECT gets Redis's error; a batch whose SELECT member asked for it runs
 * without that member, which gets the error (as Redis runs a transaction whose SELECT fails); any other
 * task for that database fails with the error, nothing of it sent.
 */
static void conn_select_refused(up_conn_t *c, int db, const char *err)
{
    up_task_t *t = c->tasks;

    if (t == NULL)
        return;
    if (t->kind == TASK_BATCH && t->op.db != db) {
        backend_result_t res = { .status = BE_ERR, .err = err };
        for (int i = 0; i < t->nmembers; i++) {
            up_task_t *m = t->members[i];
            if (m->op.code == BE_SELECT && !m->done && m->op.db2 == db)
                up_task_finish(m, &res);
        }
        return;
    }
    if ((t->kind == TASK_SELECT ? t->op.db2 : t->op.db) != db)
        return;
    c->tasks = t->next;
    if (c->tasks == NULL)
        c->tasks_tail = NULL;
    up_task_fail(t, err);
    if (t->kind == TASK_BATCH)
        up_batch_free_members(t);
    up_task_free(t);
}

/* Send what the connection can: plain tasks at once, one transaction or batch at a time. */
void up_conn_pump(up_conn_t *c)
{
    if (c->ded_reset_due && c->ded_old_left == 0 && c->state == UP_READY && c->active == NULL &&
        !c->select_wait) {
        up_ded_reset_due(c);        /* the next client's tasks wait for the clean-up (pin.c) */
        return;
    }
    if (c->up->track != NULL && !c->dedicated && !c->resp3)
        up_track_conn_ready(c);
    while (c->state == UP_READY && c->active == NULL && c->tasks != NULL && !up_conn_waits(c, c->tasks) &&
           task_dbs_ready(c, c->tasks)) {
        if (c->ded_reset_due && c->ded_old_left-- == 0) {
            c->ded_old_left = 0;
            up_ded_reset_due(c);    /* the last client's tasks are out: the clean-up, then the next's */
            return;
        }
        up_task_t *t = c->tasks;
        c->tasks = t->next;
        if (c->tasks == NULL)
            c->tasks_tail = NULL;
        t->next = NULL;
        if (c->dedicated)
            up_conn_proto_for(c, t);        /* HELLO 3 / HELLO 2 first if t needs the other protocol */
        if (t->kind == TASK_SELECT) {
            backend_result_t res = { .status = BE_OK };
            up_task_finish(t, &res);
            up_task_free(t);
        } else if (t->kind == TASK_PLAIN) {
            /* its bytes were formatted when it was queued */
            if (t->asking) {            /* a cluster's ASK: the command right behind ASKING */
                bytes_t argv[1] = { B("ASKING") };
                up_conn_send_argv(c, NULL, SLOT_IGNORE, -1, 1, argv);
            }
            conn_send(c, t, SLOT_RESULT, t->op.db, put_bytes_cb, &t->data);
            t->sent = 1;
        } else if (t->kind == TASK_PUSH) {
            up_conn_send_push(c, t);
        } else if (t->kind == TASK_TX) {
            c->active = t;
            up_tx_start(c, t);
        } else {
            c->active = t;
            up_batch_assign_dbs(t);
            if (t->reads)
                up_batch_read(c, t);
            else
                up_batch_send(c, t);
        }
    }
    if (c->dedicated)
        up_ded_pumped(c);
}

void up_conn_enqueue(up_conn_t *c, up_task_t *t)
{
    t->queued_us = clock_us_monotonic();
    if (c->tasks_tail)
        c->tasks_tail->next = t;
    else
        c->tasks = t;
    c->tasks_tail = t;
    if (c->resp3)
        up_conn_start(c);       /* a RESP3 connection is made on first use (a redirected task's too) */
}

void up_conn_enqueue_first(up_conn_t *c, up_task_t *t)
{
    t->queued_us = clock_us_monotonic();
    t->next = c->tasks;
    c->tasks = t;
    if (c->tasks_tail == NULL)
        c->tasks_tail = t;
    if (c->resp3)
        up_conn_start(c);
}

/* Redis's reply r to the command at the head of c's slots; on a RESP3 connection r says only whether it
 * is an error (and its text), and raw[0..rawlen) is the reply itself. */
void up_conn_handle_reply(up_conn_t *c, const redisReply *r, const char *raw, size_t rawlen)
{
    upstream_t *up = c->up;
    up_slot_t *s = c->slots;

    if (s == NULL) {
        up_conn_fail(c, "a reply came for no command");
        return;
    }
    c->slots = s->next;
    if (c->slots == NULL)
        c->slots_tail = NULL;
    c->nslots--;
    long long lat = clock_us_monotonic() - s->sent_us;
    up->latency_sum_us += (unsigned long long)lat;
    up->latency_n++;
    if ((unsigned long long)lat > up->latency_max_us)
        up->latency_max_us = (unsigned long long)lat;
    if (r->type == REDIS_REPLY_ERROR) {
        up->nerrors++;
        c->node->nerrors++;
    }

    up_task_t *t = s->task;
    int kind = s->kind, sdb = s->db;
    unsigned long long tag = s->tag;
    slot_put(up, s);
    if (up->cluster && (r->type == REDIS_REPLY_ERROR || (t != NULL && t->moved)) && route_redirect(c, t, kind, r))
        return;
    switch (kind) {
    case SLOT_INTERNAL:
        if (r->type == REDIS_REPLY_ERROR) {
            /* AUTH, SELECT, PING of the handshake, or a pipelined SELECT / UNWATCH: the connection is not
             * in the state the commands behind it expect */
            up_conn_fail(c, "%s", r->str);
            return;
        }
        if (c->state == UP_HANDSHAKE && --c->handshake_left == 0 && !c->tracker) {
            if (c->last_error[0])
                log_notice("upstream %s connection %d: connected again", c->node->name, c->index);
            c->last_error[0] = '\0';
            c->state = UP_READY;
            c->retry_ms = 0;
            if (c->dedicated)
                up_ded_ready(c);        /* first: one cleaned and handed back becomes idle, not reset again */
            up_conn_pump(c);
            route_map_request(up);
        }
        break;
    case SLOT_MAP:
        route_map_reply(c, r);
        break;
    case SLOT_TTL:
        if (t->ttls != NULL && (size_t)sdb < t->ttls_cap)
            t->ttls[sdb] = r->type == REDIS_REPLY_INTEGER ? r->integer : -2;
        break;
    case SLOT_TRACK:
        up_track_conn_reply(c, tag, r);
        break;
    case SLOT_TRACKER:
        up_track_reply(c, tag, r);
        break;
    case SLOT_SUBCHECK:
        up_ded_subcheck_reply(c, tag, r);
        break;
    case SLOT_RESULT:
        if (t->op.flags & BE_WITHTTL)
            t->tracked = up_track_tracked(c);
        if (raw != NULL)
            up_task_deliver_raw(t, raw, rawlen);
        else
            up_task_deliver(t, &t->op, r);
        up_task_free(t);
        break;
    case SLOT_SELECT:
        c->select_wait = 0;
        if (r->type == REDIS_REPLY_ERROR) {
            c->db = c->db_before;           /* Redis stays where it was */
            conn_select_refused(c, sdb, r->str);
        } else {
            db_learn(c, sdb);
        }
        up_conn_pump(c);
        break;
    case SLOT_TX_GET:
        if (t->kind == TASK_BATCH) {
            up_batch_got_values(c, t, r);
            break;
        }
        up_tx_got_old(c, t, r);
        if (t->done)
            up_conn_release(c, t);
        break;
    case SLOT_IGNORE:
        if (t != NULL && t->kind == TASK_TX && r->type == REDIS_REPLY_ERROR)
            up_tx_ignored_error(t, r);
        break;
    case SLOT_TX_EXEC:
        if (t->kind == TASK_BATCH)
            up_batch_exec_reply(c, t, r, raw, rawlen);
        else
            up_tx_exec_reply(c, t, r);
        break;
    default:
        break;
    }
}

static void conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    up_conn_t *c = h->data;
    *buf = uv_buf_init(c->up->read_buf, UP_READ_BUF);
}

static void conn_read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    up_conn_t *c = st->data;
    void *reply;

    if (nread < 0) {
        if (nread == UV_EPROTO && c->w.tls != NULL)
            up_conn_fail(c, "%s", stream_error(&c->w));
        else
            up_conn_fail(c, "%s", nread == UV_EOF ? "connection closed by the server" : uv_strerror((int)nread));
        return;
    }
    if (c->resp3 || c->dedicated) {         /* read by frames (resp3.c) */
        up_conn_read_resp3(c, buf->base, (size_t)nread);
        return;
    }
    if (redisReaderFeed(c->reader, buf->base, (size_t)nread) != REDIS_OK) {
        up_conn_fail(c, "protocol error: %s", c->reader->errstr);
        return;
    }
    while (c->state != UP_DOWN) {
        if (redisReaderGetReply(c->reader, &reply) != REDIS_OK) {
            up_conn_fail(c, "protocol error: %s", c->reader->errstr);
            return;
        }
        if (reply == NULL)
            break;
        if ((c->tracker && up_track_push(c, reply)) || (c->pubsub && up_ded_push(c, reply))) {
            freeReplyObject(reply);
            continue;
        }
        up_conn_handle_reply(c, reply, NULL, 0);
        freeReplyObject(reply);
    }
    if (c->state != UP_DOWN)
        up_conn_wake_sibling(c);
}

/* ---- connection lifecycle ------------------------------------------------------------------------ */

static void conn_closed_cb(uv_handle_t *h)
{
    up_conn_t *c = h->data;
    c->handle_open = 0;
    if (c->dedicated)
        up_ded_handle_closed(c);
    else if (c->up->destroying)
        up_closed_one(c->up);
}

static void conn_retry_cb(uv_timer_t *t)
{
    up_conn_t *c = t->data;
    if (c->handle_open) {           /* still closing: try again shortly */
        uv_timer_start(&c->retry, conn_retry_cb, 10, 0);
        return;
    }
    c->up->nreconnects++;
    conn_connect(c);
}

static void conn_start_cb(uv_timer_t *t)
{
    conn_connect(t->data);
}

/* A connection's memory; no handle yet (conn_arm puts its timer on the loop). */
static void conn_setup(up_conn_t *c, up_node_t *node, int index, int resp3)
{
    c->up = node->up;
    c->node = node;
    c->index = index;
    c->resp3 = resp3;
    buf_init(&c->rbuf);
    stream_init(&c->w, &c->h.stream, conn_written_cb, 0, NULL);
    c->starting = 1;                /* tasks wait for it */
    c->state_since_us = clock_us_monotonic();
}

/* Its timer on the loop: connect once the loop runs (not for --test-config); RESP3: at up_conn_start. */
static void conn_arm(up_conn_t *c)
{
    uv_timer_init(c->up->loop, &c->retry);
    c->retry.data = c;
    if (!c->resp3)
        uv_timer_start(&c->retry, conn_start_cb, 0, 0);
}

void up_conn_init(up_conn_t *c, up_node_t *node, int index)
{
    conn_setup(c, node, index, 0);
    conn_arm(c);
}

/* The nodes so far put their timers on the loop, later ones (route.c) at once: a backend whose creation
 * fails frees its nodes with no handle to close (a reload that fails leaves nothing on the loop). */
void up_nodes_arm(upstream_t *up)
{
    up->armed = 1;
    for (int k = 0; k < up_nconns(up); k++) {
        conn_arm(up_conn_at(up, k));
        conn_arm(up_conn3_at(up, k));
    }
}

void up_conn_start(up_conn_t *c)
{
    if (c->starting && !uv_is_active((uv_handle_t *)&c->retry))
        uv_timer_start(&c->retry, conn_start_cb, 0, 0);
}

void up_conn_deinit(up_conn_t *c)
{
    stream_deinit(&c->w);
    buf_deinit(&c->rbuf);
}

/*
 * A node: its address resolved now (a name like localhost too, as redis resolves its replication master;
 * a cluster's nodes come as addresses from CLUSTER SLOTS), and its pool, whose connections connect once
 * the loop runs.
 */
up_node_t *up_node_create(upstream_t *up, const char *host, int port, const char *path, char *err, size_t errlen)
{
    up_node_t *n = mem_calloc(1, sizeof(*n));

    n->up = up;
    if (path != NULL) {
        n->path = mem_strdup(path);
        snprintf(n->name, sizeof(n->name), "%s", path);
    } else {
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai = NULL;
        char ports[16];
        snprintf(ports, sizeof(ports), "%d", port);
        int gai = getaddrinfo(host, ports, &hints, &ai);
        if (gai != 0 || ai == NULL) {
            snprintf(err, errlen, "cannot resolve '%s': %s", host, gai ? gai_strerror(gai) : "no address");
            mem_free(n);
            return NULL;
        }
        memcpy(&n->addr, ai->ai_addr, ai->ai_addrlen);
        freeaddrinfo(ai);
        n->host = mem_strdup(host);
        n->port = port;
        snprintf(n->name, sizeof(n->name), "%s:%d", host, port);
    }
    n->index = up->nnodes;
    up->nodes = mem_realloc(up->nodes, (size_t)(up->nnodes + 1) * sizeof(*up->nodes));
    up->nodes[up->nnodes++] = n;
    n->npool = up->npool;
    n->pool = mem_calloc((size_t)n->npool, sizeof(*n->pool));
    n->pool3 = mem_calloc((size_t)n->npool, sizeof(*n->pool3));
    for (int i = 0; i < n->npool; i++) {
        conn_setup(&n->pool[i], n, i, 0);
        conn_setup(&n->pool3[i], n, i, 1);          /* connects on first use */
        if (up->armed) {
            conn_arm(&n->pool[i]);
            conn_arm(&n->pool3[i]);
        }
    }
    return n;
}

void up_node_free(up_node_t *n)
{
    for (int i = 0; i < n->npool; i++) {
        up_conn_deinit(&n->pool[i]);
        up_conn_deinit(&n->pool3[i]);
    }
    mem_free(n->pool);
    mem_free(n->pool3);
    mem_free(n->host);
    mem_free(n->path);
    mem_free(n);
}

/*
 * The connection failed: fail everything it holds, close it, and schedule a reconnection. Callbacks
 * run after the connection's lists are detached, so a callback that submits again finds it down and
 * fails at once.
 */
void up_conn_fail(up_conn_t *c, const char *fmt, ...)
{
    upstream_t *up = c->up;
    char why[160], err[320];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    snprintf(err, sizeof(err), "ERR upstream %s: %s", c->node->name, why);
    /* one warning when a working connection fails, and when the reason changes; not one per retry */
    if (!c->quiet && (c->state == UP_READY || strcmp(c->last_error, why) != 0)) {
        if (c->tracker)
            log_warn("upstream %s invalidation connection: %s", c->node->name, why);
        else
            log_warn("upstream %s connection %d: %s", c->node->name, c->index, why);
    }
    snprintf(c->last_error, sizeof(c->last_error), "%s", why);

    up_slot_t *slots = c->slots;
    up_task_t *tasks = c->tasks, *active = c->active;
    c->slots = c->slots_tail = NULL;
    c->nslots = 0;
    c->tasks = c->tasks_tail = NULL;
    c->active = NULL;
    if (up->track != NULL && !c->dedicated && !c->resp3)
        up_track_conn_lost(c, why);
    c->state = UP_DOWN;
    c->starting = 0;
    c->select_wait = 0;
    buf_reset(&c->w.out);
    if (c->handle_open && !uv_is_closing(&c->h.handle))
        uv_close(&c->h.handle, conn_closed_cb);
    if (c->reader) {
        redisReaderFree(c->reader);
        c->reader = NULL;
    }
    buf_reset(&c->rbuf);
    if (!up->destroying)
        route_map_want(up);     /* a cluster's node gone: a replica may be taking over its slots */
    if (c->dedicated) {
        up_ded_lost(c, err);        /* never made again: its client's state went with it */
    } else {
        c->retry_ms = c->retry_ms ? c->retry_ms * 2 : UP_RETRY_MIN_MS;
        if (c->retry_ms > up->retry_max_ms)
            c->retry_ms = up->retry_max_ms;
        uv_timer_start(&c->retry, conn_retry_cb, c->retry_ms, 0);
    }

    /* Fail each task once: a task may own several slots, and the active one no slot at all yet. */
    while (slots != NULL) {
        up_slot_t *s = slots;
        slots = s->next;
        up_task_t *t = s->task;
        if (s->kind == SLOT_MAP)
            up->map_inflight = 0;       /* asked again elsewhere */
        int kind = s->kind;
        slot_put(up, s);
        if (t == NULL || t == active || kind == SLOT_TTL)
            continue;               /* a PTTL's task is freed with its read's slot, which follows */
        if (!t->done)
            up_task_fail(t, err);
        /* a plain task's last slot is its only one */
        up_task_free(t);
    }
    if (active != NULL) {
        up_task_fail(active, err);
        for (int i = 0; i < active->nmembers; i++)
            up_task_free(active->members[i]);
        active->nmembers = 0;
        up_task_free(active);
    }
    while (tasks != NULL) {
        up_task_t *t = tasks;
        tasks = t->next;
        up_task_fail(t, err);
        for (int i = 0; i < t->nmembers; i++)
            up_task_free(t->members[i]);
        t->nmembers = 0;
        up_task_free(t);
    }
    if (!up->destroying)
        up_conn_wake_sibling(c);
}

static void conn_connect_cb(uv_connect_t *req, int status)
{
    up_conn_t *c = req->data;
    upstream_t *up = c->up;

    if (c->state != UP_CONNECTING)
        return;                     /* timed out meanwhile */
    if (status < 0) {
        up_conn_fail(c, "%s", uv_strerror(status));
        return;
    }
    if (c->node->host)
        uv_tcp_nodelay(&c->h.tcp, 1);
    if (up->tls != NULL)
        stream_set_tls(&c->w, tls_create(up->tls, c->node->host));
    if (c->resp3 || c->dedicated) {
        buf_reset(&c->rbuf);
        resp_frame_init(&c->frame, UP_RESP3_BLOB_MAX, UP_RESP3_COUNT_MAX);
    }
    c->reader = wire_reader_create();       /* framed connections: for the replies read as RESP2 */
    c->proto3 = c->resp3;
    c->state = UP_HANDSHAKE;
    c->state_since_us = clock_us_monotonic();
    c->handshake_left = 0;
    c->db = 0;
    c->select_wait = 0;
    memset(c->known_dbs, 0, sizeof(c->known_dbs));   /* a new server may have other databases */
    if (c->resp3) {
        /* HELLO 3, authenticated in the same command (HELLO's AUTH needs a user name: "default") */
        bytes_t argv[5] = { B("HELLO"), B("3"), B("AUTH"), { up->user ? up->user : "default",
                            up->user ? strlen(up->user) : 7 }, { up->password, up->password ? strlen(up->password) : 0 } };
        up_conn_send_argv(c, NULL, SLOT_INTERNAL, -1, up->password ? 5 : 2, argv);
        c->handshake_left++;
    } else {
        up_conn_send_auth(c);
    }
    if (c->tracker) {           /* the near cache's invalidation connection: its own handshake */
        up_track_handshake(c);
        stream_read_start(&c->w, conn_alloc_cb, conn_read_cb);
        return;
    }
    if (c->node->readonly) {    /* a cluster replica serving reads (read-from) */
        bytes_t argv[1] = { B("READONLY") };
        up_conn_send_argv(c, NULL, SLOT_INTERNAL, -1, 1, argv);
        c->handshake_left++;
    }
    /* SELECT the URL's database (or answer PING, so that READY always means "Redis answered") */
    if (up->db != 0) {
        char num[16];
        int len = snprintf(num, sizeof(num), "%d", up->db);
        bytes_t argv[2] = { B("SELECT"), { num, (size_t)len } };
        up_conn_send_argv(c, NULL, SLOT_INTERNAL, -1, 2, argv);
    } else {
        bytes_t argv[1] = { B("PING") };
        up_conn_send_argv(c, NULL, SLOT_INTERNAL, -1, 1, argv);
    }
    c->db = up->db;
    c->handshake_left++;
    c->track_sent = c->track_session = 0;
    if (up->track != NULL && !c->dedicated && !c->resp3)
        up_track_conn_ready(c);     /* pipelined: the reads behind it are tracked once Redis says OK */
    stream_read_start(&c->w, conn_alloc_cb, conn_read_cb);
}

void up_conn_send_auth(up_conn_t *c)
{
    upstream_t *up = c->up;

    if (up->password == NULL)
        return;
    bytes_t argv[3] = { B("AUTH"), { up->user ? up->user : "", up->user ? strlen(up->user) : 0 },
                        { up->password, strlen(up->password) } };
    if (!up->user)
        argv[1] = argv[2];
    up_conn_send_argv(c, NULL, SLOT_INTERNAL, -1, up->user ? 3 : 2, argv);
    c->handshake_left++;
}

static void conn_connect(up_conn_t *c)
{
    upstream_t *up = c->up;
    int rc;

    c->starting = 0;
    c->state = UP_CONNECTING;
    c->state_since_us = clock_us_monotonic();
    stream_discard(&c->w);
    c->creq.data = c;
    if (c->node->path) {
        uv_pipe_init(up->loop, &c->h.pipe, 0);
        c->h.handle.data = c;
        c->handle_open = 1;
        uv_pipe_connect(&c->creq, &c->h.pipe, c->node->path, conn_connect_cb);
        return;
    }
    uv_tcp_init(up->loop, &c->h.tcp);
    c->h.handle.data = c;
    c->handle_open = 1;
    rc = uv_tcp_connect(&c->creq, &c->h.tcp, (const struct sockaddr *)&c->node->addr, conn_connect_cb);
    if (rc < 0)
        up_conn_fail(c, "cannot connect: %s", uv_strerror(rc));
}
