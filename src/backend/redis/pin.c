/*
 * backend/redis/pin: dedicated upstream connections, each held by one client at a time, for what cannot
 * share a pipelined pool connection: WATCH (Redis watches keys per connection, and EXEC of anyone else's
 * transaction on it would clear them), blocking commands, subscriptions.
 *
 * A client pins a connection (redis_pin) and its ops carry the pin (backend_op_t.pin): they go on that
 * connection, in order, through the same queue, slots and handshake as a pool connection (pool.c), and
 * its MULTI ... EXEC too (redis_batch finds the pin by the client's affinity), where Redis's answer to a
 * WATCH that saw a change (EXEC's nil) is the client's. Its replies are read by frames: for a RESP3 client
 * it says HELLO 3 before the first forwarded command and answers in RESP3 from then on (resp3.c).
 *
 * The connections: at most upstream-dedicated-max (in use, being cleaned and idle together), made on
 * demand with the pool's AUTH / SELECT handshake, never reconnected (a failure loses the client's state
 * on it: the pin keeps the error, and every later op of the pin fails with it). Handed back (release 0),
 * a connection is cleaned once its queue is empty: RESET, then AUTH and SELECT of the URL's database
 * again; an error there closes it, success makes it idle for the next client. Released with close 1 (a
 * client gone while a blocking command waits) it closes at once. An idle one closes after
 * UP_DEDICATED_IDLE_US.
 *
 * Ownership: the upstream owns the connections (up->dedicated); a pin (up_pin_t) is its client's, and
 * may outlive the backend: at destroy every pin is detached (up NULL, conn NULL) and its release only
 * frees it. A connection's memory goes when its two handles (socket, retry timer) have closed.
 */
#include "backend/redis/redis_int.h"

#include <stdio.h>
#include <string.h>

#include "util/clock.h"
#include "util/mem.h"

typedef struct up_pin {
    backend_pin_t base;         /* release */
    upstream_t *up;             /* NULL once the backend is destroyed */
    up_conn_t *conn;            /* the dedicated connection, NULL once lost */
    uint64_t affinity;          /* the client's */
    struct up_pin *prev, *next; /* in up->pins */
    char lost[320];             /* why conn was lost: what the pin's ops get from then on */
} up_pin_t;

static void ded_retire(up_conn_t *c, const char *why);

static void ded_unlink(upstream_t *up, up_conn_t *c)
{
    for (up_conn_t **pp = &up->dedicated; *pp != NULL; pp = &(*pp)->ded_next) {
        if (*pp == c) {
            *pp = c->ded_next;
            c->ded_next = NULL;
            return;
        }
    }
}

static void ded_freed(up_conn_t *c)
{
    upstream_t *up = c->up;

    up_conn_deinit(c);
    mem_free(c);
    up->ded_closing--;
    if (up->destroying)
        up_closed_one(up);
}

void up_ded_handle_closed(up_conn_t *c)
{
    if (c->ded_closed && --c->ded_handles == 0)
        ded_freed(c);
}

static void ded_timer_closed_cb(uv_handle_t *h)
{
    up_ded_handle_closed(h->data);
}

static void ded_sock_closed_cb(uv_handle_t *h)
{
    up_conn_t *c = h->data;
    c->handle_open = 0;
    up_ded_handle_closed(c);
}

/* The pin holding c lets go of it (lost or handed back). */
static void ded_detach(up_conn_t *c)
{
    if (c->pin != NULL) {
        c->pin->conn = NULL;
        c->pin = NULL;
    }
    if (c->ded_state == DED_IN_USE)
        c->up->ded_in_use--;
    else if (c->ded_state == DED_IDLE)
        c->up->ded_idle--;
    c->ded_state = DED_RESETTING;
}

/*
 * Close c for good: what it still holds fails with why (quietly: closing it is no failure), its handles
 * close and its memory goes once they have.
 */
static void ded_retire(up_conn_t *c, const char *why)
{
    upstream_t *up = c->up;

    if (c->ded_closed)
        return;
    ded_detach(c);
    c->ded_closed = 1;
    c->quiet = 1;
    ded_unlink(up, c);
    up->ded_count--;
    up->ded_closing++;
    if (c->state != UP_DOWN || c->tasks != NULL || c->slots != NULL)
        up_conn_fail(c, "%s", why);     /* closes the socket; up_ded_lost finds it retired already */
    uv_timer_stop(&c->retry);
    c->ded_handles = 1 + (c->handle_open ? 1 : 0);
    if (c->handle_open && !uv_is_closing(&c->h.handle)) {
        /* not connected yet: up_conn_fail had nothing to close it for */
        c->state = UP_DOWN;
        uv_close(&c->h.handle, ded_sock_closed_cb);
    }
    uv_close((uv_handle_t *)&c->retry, ded_timer_closed_cb);
}

void up_ded_lost(up_conn_t *c, const char *err)
{
    up_pin_t *p = c->pin;
    int subscribed = c->pubsub;

    if (p != NULL)
        snprintf(p->lost, sizeof(p->lost), "%s (the dedicated connection was closed)", err);
    ded_retire(c, err);
    /* p is its client's until released: still here. A subscriber is told (it is closed, as Redis going
     * away would close it) */
    if (p != NULL && subscribed && p->base.push != NULL)
        p->base.push(p->base.push_ctx, BE_PUSH_LOST, NULL);
}

/* The pub/sub frames Redis sends a subscribed connection (RESP2): messages and the answers to
 * (un)subscribing. Anything else (an error, PING's ["pong", ...]) is the reply of a command. */
static int push_kind(const redisReply *r, int *unsub)
{
    static const char *const kinds[] = { "message", "pmessage", "smessage", "subscribe", "psubscribe",
                                         "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe" };
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 || r->element[0]->type != REDIS_REPLY_STRING)
        return 0;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (r->element[0]->len == strlen(kinds[i]) && memcmp(r->element[0]->str, kinds[i], r->element[0]->len) == 0) {
            *unsub = i >= 6;
            return 1;
        }
    }
    return 0;
}

/*
 * A pub/sub frame goes to the pin's client as it is. An unsubscribe that leaves a count of 0 may mean the
 * connection is subscribed to nothing (for SUNSUBSCRIBE, to no shard channel only): a PING behind it
 * asks Redis, which answers +PONG only when nothing is subscribed (up_ded_subcheck_reply).
 */
int up_ded_push(up_conn_t *c, const redisReply *r)
{
    int unsub = 0;

    if (!push_kind(r, &unsub))
        return 0;
    if (c->pin != NULL && c->pin->base.push != NULL) {
        backend_op_t op = { .code = BE_COMMAND };
        backend_result_t res = { .status = BE_OK };
        wire_scratch_t s;
        wire_scratch_init(&s);
        wire_reply(&op, r, &res, &s);
        c->pin->base.push(c->pin->base.push_ctx, BE_PUSH_DATA, &res.resp);
        wire_scratch_deinit(&s);
    }
    const redisReply *n = r->element[r->elements - 1];
    if (unsub && n->type == REDIS_REPLY_INTEGER && n->integer == 0 && c->state == UP_READY && c->pin != NULL) {
        bytes_t ping[1] = { B("PING") };
        up_conn_send_argv(c, NULL, SLOT_SUBCHECK, -1, 1, ping);
        c->slots_tail->tag = c->push_sent;
    }
    return 1;
}

/* +PONG: nothing is subscribed; if no SUBSCRIBE was sent since the PING, the client is told it may let
 * the connection go. ["pong", ""]: still subscribed. */
void up_ded_subcheck_reply(up_conn_t *c, unsigned long long tag, const redisReply *r)
{
    if (r->type != REDIS_REPLY_STATUS || tag != c->push_sent || c->pin == NULL)
        return;
    c->pubsub = 0;
    if (c->pin->base.push != NULL)
        c->pin->base.push(c->pin->base.push_ctx, BE_PUSH_IDLE, NULL);
}

/* Clean c for the next client: RESET (no WATCH, no subscription, database 0, no name...), then the
 * handshake's AUTH and SELECT again. Replies come back as SLOT_INTERNAL: an error fails the connection,
 * which then closes; the last OK makes it idle (up_ded_ready). */
static void ded_reset(up_conn_t *c)
{
    upstream_t *up = c->up;
    bytes_t reset[1] = { B("RESET") };

    c->state = UP_HANDSHAKE;
    c->state_since_us = clock_us_monotonic();
    c->handshake_left = 0;
    up_conn_send_argv(c, NULL, SLOT_INTERNAL, -1, 1, reset);
    c->ded_reset_sent = 1;
    c->proto3 = 0;                  /* RESET returns to RESP2: what follows is answered in it */
    c->handshake_left++;
    c->db = 0;
    up_conn_send_auth(c);
    if (up->db != 0) {
        char num[16];
        int len = snprintf(num, sizeof(num), "%d", up->db);
        bytes_t argv[2] = { B("SELECT"), { num, (size_t)len } };
        up_conn_send_argv(c, NULL, SLOT_INTERNAL, -1, 2, argv);
        c->handshake_left++;
        c->db = up->db;
    }
}

void up_ded_reset_due(up_conn_t *c)
{
    c->ded_reset_due = 0;
    ded_reset(c);
}

void up_ded_pumped(up_conn_t *c)
{
    if (c->ded_state == DED_RESETTING && !c->ded_closed && c->state == UP_READY && c->active == NULL &&
        c->tasks == NULL && !c->select_wait)
        ded_reset(c);
}

void up_ded_ready(up_conn_t *c)
{
    if (c->ded_reset_sent) {        /* RESET answered, after any pub/sub frame of the client before */
        c->ded_reset_sent = 0;
        c->pubsub = 0;
    }
    if (c->ded_state != DED_RESETTING || c->ded_closed || c->nslots != 0 || c->tasks != NULL)
        return;
    c->ded_state = DED_IDLE;
    c->pubsub = 0;                  /* RESET ended the subscriptions, and its answer came after their frames */
    c->ded_idle_since_us = clock_us_monotonic();
    c->up->ded_idle++;
}

static void pin_release(backend_pin_t *bp, int close)
{
    up_pin_t *p = (up_pin_t *)bp;
    up_conn_t *c = p->conn;

    if (p->up != NULL) {
        if (p->prev != NULL)
            p->prev->next = p->next;
        else
            p->up->pins = p->next;
        if (p->next != NULL)
            p->next->prev = p->prev;
    }
    if (p->up != NULL && c != NULL) {
        ded_detach(c);
        /* not yet connected (a WATCH ... UNWATCH pipelined at once): what it queued still runs */
        if (close || up_conn_down(c))
            ded_retire(c, "closed: its client went away");
        else
            up_ded_pumped(c);           /* cleaned now, or once what is queued on it has run */
    }
    mem_free(p);
}

static up_conn_t *ded_create(upstream_t *up)
{
    up_conn_t *c = mem_calloc(1, sizeof(*c));

    c->dedicated = 1;
    up_conn_init(c, up->nodes[0], (int)(up->ded_created % 100000));
    c->ded_next = up->dedicated;
    up->dedicated = c;
    up->ded_count++;
    up->ded_created++;
    return c;
}

/* A dedicated connection for the client of affinity: an idle one, or a new one while under the limit. */
int redis_pin(backend_t *b, uint64_t affinity, backend_pin_t **out, char *err, size_t errlen)
{
    upstream_t *up = (upstream_t *)b;
    up_conn_t *c = NULL;

    if (up->cluster) {
        snprintf(err, errlen, "ERR dedicated upstream connections are not available with a Redis Cluster "
                 "upstream");
        return -1;
    }
    up_conn_t *cleaning = NULL;
    for (up_conn_t *d = up->dedicated; d != NULL && c == NULL; d = d->ded_next) {
        if (d->ded_state == DED_IDLE && d->state == UP_READY)
            c = d;
        else if (d->ded_state == DED_RESETTING && !d->ded_closed && cleaning == NULL)
            cleaning = d;
    }
    if (c != NULL) {
        up->ded_idle--;
    } else if (up->ded_count < up->ded_max) {
        c = ded_create(up);
    } else if (cleaning != NULL) {
        /* all in use but one being cleaned (a client that just ended its WATCH, say): its RESET is sent,
         * or goes once what its last client queued has gone (ded_reset_due, ded_old_left); what this
         * client sends queues behind it until the clean-up has answered */
        c = cleaning;
        if (!c->ded_reset_sent) {
            c->ded_reset_due = 1;
            c->ded_old_left = 0;
            for (const up_task_t *t = c->tasks; t != NULL; t = t->next)
                c->ded_old_left++;
        }
    } else {
        up->ded_refused++;
        if (up->ded_max == 0)
            snprintf(err, errlen, "ERR dedicated upstream connections are disabled (upstream-dedicated-max 0): "
                     "WATCH, blocking commands and subscriptions need one");
        else
            snprintf(err, errlen, "ERR all %d dedicated upstream connections are in use (upstream-dedicated-max): "
                     "WATCH, blocking commands and subscriptions hold one each until they end; try again later",
                     up->ded_max);
        return -1;
    }
    up_pin_t *p = mem_calloc(1, sizeof(*p));
    p->base.release = pin_release;
    p->up = up;
    p->conn = c;
    p->affinity = affinity;
    p->next = up->pins;
    if (up->pins != NULL)
        up->pins->prev = p;
    up->pins = p;
    c->pin = p;
    c->ded_state = DED_IN_USE;
    up->ded_in_use++;
    *out = &p->base;
    return 0;
}

up_conn_t *up_pin_conn(upstream_t *up, const backend_op_t *op, char *err, size_t errlen)
{
    up_pin_t *p = (up_pin_t *)op->pin;

    if (p->up != up) {
        snprintf(err, errlen, "ERR the upstream changed (reload) while this client held a dedicated connection");
        return NULL;
    }
    if (p->conn == NULL) {
        snprintf(err, errlen, "%s", p->lost[0] ? p->lost : "ERR the dedicated upstream connection was closed");
        return NULL;
    }
    return p->conn;
}

int up_pin_batch_conn(upstream_t *up, uint64_t affinity, up_conn_t **c, char *err, size_t errlen)
{
    for (up_pin_t *p = up->pins; p != NULL; p = p->next) {
        if (p->affinity != affinity)
            continue;
        backend_op_t op = { .pin = &p->base };
        *c = up_pin_conn(up, &op, err, errlen);
        return *c != NULL ? 1 : -1;
    }
    return 0;
}

void up_ded_tick(upstream_t *up, long long now_us)
{
    up_conn_t *next;

    for (up_conn_t *c = up->dedicated; c != NULL; c = next) {
        next = c->ded_next;             /* a timeout may retire c */
        if (c->ded_state == DED_IDLE && now_us - c->ded_idle_since_us > UP_DEDICATED_IDLE_US)
            ded_retire(c, "closed: idle");
        else
            up_conn_tick(c, now_us);
    }
}

void up_ded_flush(upstream_t *up)
{
    for (up_conn_t *c = up->dedicated; c != NULL; c = c->ded_next)
        up_conn_flush(c);
}

void up_ded_info(upstream_t *up, buf_t *out)
{
    buf_printf(out,
               "upstream_dedicated_max:%d\r\nupstream_dedicated_in_use:%d\r\nupstream_dedicated_idle:%d\r\n"
               "upstream_dedicated_open:%d\r\nupstream_dedicated_created:%llu\r\nupstream_dedicated_refused:%llu\r\n",
               up->ded_max, up->ded_in_use, up->ded_idle, up->ded_count, up->ded_created, up->ded_refused);
}

void up_ded_destroy(upstream_t *up)
{
    for (up_pin_t *p = up->pins; p != NULL; p = p->next) {
        p->up = NULL;                   /* its client releases it later: only freed then */
        if (!p->lost[0])
            snprintf(p->lost, sizeof(p->lost), "ERR upstream %s: shutting down", up->name);
    }
    up->pins = NULL;
    while (up->dedicated != NULL) {
        up_conn_t *c = up->dedicated;
        ded_retire(c, "shutting down");
    }
}
