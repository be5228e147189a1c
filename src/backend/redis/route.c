/*
 * backend/redis/route: a Redis Cluster behind the backend (redis+cluster://host:port,host:port...).
 *
 * The slot map: which master serves each of the 16384 slots, asked with CLUSTER SLOTS from any node at
 * start, again when Redis answers MOVED, when a connection to a node is lost, and every
 * ROUTE_REFRESH_MS. Nodes are created as the map names them (upstream-pool-size connections each). A
 * slot not known yet goes to any node: Redis answers MOVED and the command follows it.
 *
 * Single-key ops go to their slot's master. Redirections are followed here, never shown to a client:
 * MOVED re-routes the command and updates the map; ASK sends ASKING and the command to the node named,
 * once, without changing the map. A command redirected more than ROUTE_MAX_REDIRECTS times fails.
 * Plain commands keep their bytes (the task's data) so that a redirected one is sent again as it was.
 *
 * Multi-key ops whose keys hash to several slots are split into one op per slot (Redis Cluster refuses a
 * multi-key command across slots even on one node), sent in parallel, and their replies put back
 * together in the client's key order: MGET, DEL, EXISTS, TOUCH — not atomic across slots, as Redis
 * Cluster itself. MSET across slots: Redis's CROSSSLOT error, or split with
 * cluster-cross-slot-writes = split; MSETNX and transactions across slots always CROSSSLOT. Keyless ops
 * that concern the whole keyspace (DBSIZE, FLUSHDB / FLUSHALL, KEYS, RANDOMKEY) go to every master;
 * SCAN walks the masters one after the other, the master's rank in the high 16 bits of the cursor.
 */
#include "backend/redis/redis_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

#define ROUTE_REFRESH_MS      10000     /* the map is asked again this often anyway */
#define ROUTE_RETRY_MS        100       /* ... and at most this often when it is wanted */
#define ROUTE_MAX_REDIRECTS   5
#define ROUTE_ASK_WAIT_MS     20        /* a read-modify-write told ASK tries again after this, for at
                                           most upstream-command-timeout in all */
#define ROUTE_SCAN_SHIFT      48        /* SCAN cursor: master rank << 48 | the master's own cursor */

static const char CROSSSLOT[] = "CROSSSLOT Keys in request don't hash to the same slot";

/* ---- slots --------------------------------------------------------------------------------------- */

/* CRC16-CCITT (XMODEM: polynomial 0x1021, initial 0), as Redis Cluster's key slots use it. */
static uint16_t crc16(const char *p, size_t n)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)((unsigned char)p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

/* The slot of a key: only what is inside the first {...} counts, if that is not empty (hash tags). */
int route_keyslot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);
    if (open != NULL) {
        size_t from = (size_t)(open - key) + 1;
        const char *close = memchr(key + from, '}', len - from);
        if (close != NULL && close > key + from)
            return crc16(key + from, (size_t)(close - key - from)) & (ROUTE_SLOTS - 1);
    }
    return crc16(key, len) & (ROUTE_SLOTS - 1);
}

static int slot_of(bytes_t k)
{
    return route_keyslot(k.ptr ? k.ptr : "", k.len);
}

/*
 * The one slot every key of op hashes to: >= 0; ROUTE_NOKEY for an op without keys; ROUTE_MULTI when
 * they hash to several.
 */
int route_op_slot(const backend_op_t *op)
{
    int slot = ROUTE_NOKEY;

    if (op->key.ptr != NULL)
        slot = slot_of(op->key);
    if (op->key2.ptr != NULL) {
        int s2 = slot_of(op->key2);
        if (slot >= 0 && s2 != slot)
            return ROUTE_MULTI;
        slot = s2;
    }
    if (op->code != BE_COMMAND || (op->flags & BE_KEYSKNOWN)) {
        for (size_t i = 0; i < op->nkeys; i++) {
            int s = slot_of(op->keys[i]);
            if (slot >= 0 && s != slot)
                return ROUTE_MULTI;
            slot = s;
        }
    }
    return slot;
}

/* ---- nodes --------------------------------------------------------------------------------------- */

static up_node_t *node_find(upstream_t *up, const char *host, int port)
{
    for (int i = 0; i < up->nnodes; i++)
        if (up->nodes[i]->host && up->nodes[i]->port == port && strcmp(up->nodes[i]->host, host) == 0)
            return up->nodes[i];
    return NULL;
}

static up_node_t *node_get(upstream_t *up, const char *host, int port)
{
    char err[160];
    up_node_t *n = node_find(up, host, port);

    if (n != NULL)
        return n;
    n = up_node_create(up, host, port, NULL, err, sizeof(err));
    if (n == NULL)
        log_warn("upstream cluster: node %s:%d: %s", host, port, err);
    else
        log_notice("upstream cluster: node %s joins (%d nodes)", n->name, up->nnodes);
    return n;
}

/* A ready node for slot (its master, or any node while the slot is not known). */
static up_node_t *slot_node(upstream_t *up, int slot)
{
    if (slot >= 0 && up->slot_node[slot] >= 0)
        return up->nodes[up->slot_node[slot]];
    for (int i = 0; i < up->nnodes; i++)
        if (up->nodes[i]->master)
            return up->nodes[i];
    return up->nodes[0];
}

up_conn_t *route_conn(upstream_t *up, int slot, uint64_t affinity)
{
    up_node_t *n = slot_node(up, slot);
    return &n->pool[affinity % (uint64_t)n->npool];
}

/* An op that only reads: with read-from, a replica may answer it. */
static int op_reads(const backend_op_t *op)
{
    switch (op->code) {
    case BE_GET:
        return !(op->flags & (BE_GETDEL | BE_SETTTL));
    case BE_MGET:
    case BE_EXISTS:
    case BE_TYPE:
    case BE_TTL:
        return 1;
    default:
        return 0;
    }
}

/* The connection for op, whose keys are in slot: the master's, or a replica's for a read with read-from. */
static up_conn_t *op_conn(upstream_t *up, int slot, const backend_op_t *op)
{
    up_conn_t *c = route_conn(up, slot, op->affinity);

    if (up->read_from != READ_FROM_MASTER && slot >= 0 && up->slot_replica[slot] >= 0 && op_reads(op)) {
        up_node_t *r = up->nodes[up->slot_replica[slot]];
        up_conn_t *rc = &r->pool[op->affinity % (uint64_t)r->npool];
        if (up->read_from == READ_FROM_REPLICA || !up_conn_down(rc))
            return rc;
    }
    return c;
}

/* The masters, ordered by the first slot each serves (SCAN walks them in this order). n = how many. */
static int masters(upstream_t *up, up_node_t **out, int max)
{
    int n = 0;
    for (int s = 0; s < ROUTE_SLOTS && n < max; s++) {
        int idx = up->slot_node[s];
        if (idx < 0)
            continue;
        int seen = 0;
        for (int i = 0; i < n && !seen; i++)
            seen = out[i] == up->nodes[idx];
        if (!seen)
            out[n++] = up->nodes[idx];
    }
    if (n == 0 && max > 0)
        out[n++] = slot_node(up, -1);
    return n;
}

/* ---- the map ------------------------------------------------------------------------------------- */

/* Ask for the map on a connection that is free for it (not inside a transaction), if it is wanted. */
void route_map_request(upstream_t *up)
{
    long long now = clock_us_monotonic() / 1000;

    if (!up->cluster || up->map_inflight || up->destroying)
        return;
    if (!up->map_wanted && now - up->map_at_ms < ROUTE_REFRESH_MS)
        return;
    if (now - up->map_asked_ms < ROUTE_RETRY_MS)
        return;
    for (int k = 0; k < up_nconns(up); k++) {
        up_conn_t *c = up_conn_at(up, (k + up->map_rr) % up_nconns(up));
        if (c->state != UP_READY || c->active != NULL || c->select_wait)
            continue;
        bytes_t argv[2] = { B("CLUSTER"), B("SLOTS") };
        up_conn_send_argv(c, NULL, SLOT_MAP, -1, 2, argv);
        up->map_inflight = 1;
        up->map_asked_ms = now;
        up->map_rr = (k + up->map_rr + 1) % up_nconns(up);
        return;
    }
}

static int reply_int(const redisReply *r, long long *out)
{
    if (r->type != REDIS_REPLY_INTEGER)
        return -1;
    *out = r->integer;
    return 0;
}

/*
 * CLUSTER SLOTS answered on c: [[start, end, [ip, port, id, ...], replicas...]...]. Every slot range gets
 * its master (created if new); slots missing from the answer become unknown. An empty ip is the node
 * that answered.
 */
void route_map_reply(up_conn_t *c, const redisReply *r)
{
    upstream_t *up = c->up;
    int16_t *map;
    int known = 0;

    up->map_inflight = 0;
    if (r->type != REDIS_REPLY_ARRAY) {
        log_warn("upstream cluster: CLUSTER SLOTS on %s answered %s", c->node->name,
                 r->type == REDIS_REPLY_ERROR ? r->str : "no array");
        return;
    }
    map = mem_alloc(sizeof(*map) * ROUTE_SLOTS);
    int16_t *reps = mem_alloc(sizeof(*reps) * ROUTE_SLOTS);
    for (int s = 0; s < ROUTE_SLOTS; s++)
        map[s] = reps[s] = -1;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        long long from, to, port;
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 || reply_int(e->element[0], &from) < 0 ||
            reply_int(e->element[1], &to) < 0 || from < 0 || to >= ROUTE_SLOTS || from > to)
            continue;
        const redisReply *m = e->element[2];
        if (m->type != REDIS_REPLY_ARRAY || m->elements < 2 || m->element[0]->type != REDIS_REPLY_STRING ||
            reply_int(m->element[1], &port) < 0 || port <= 0 || port > 65535)
            continue;
        const char *host = m->element[0]->len > 0 ? m->element[0]->str : c->node->host;
        if (host == NULL)
            continue;
        up_node_t *n = node_get(up, host, (int)port), *rn = NULL;
        if (n == NULL)
            continue;
        if (up->read_from != READ_FROM_MASTER && e->elements > 3) {
            /* the master's first replica, for reads */
            const redisReply *rep = e->element[3];
            long long rport;
            if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 2 && rep->element[0]->type == REDIS_REPLY_STRING &&
                rep->element[0]->len > 0 && reply_int(rep->element[1], &rport) == 0 && rport > 0 && rport <= 65535) {
                rn = node_find(up, rep->element[0]->str, (int)rport);
                if (rn == NULL) {
                    rn = node_get(up, rep->element[0]->str, (int)rport);
                    if (rn != NULL)
                        rn->readonly = 1;   /* before its connections start, at the next loop turn */
                }
            }
        }
        for (long long s = from; s <= to; s++) {
            known += map[s] < 0;
            map[s] = (int16_t)n->index;
            reps[s] = rn ? (int16_t)rn->index : -1;
        }
    }
    for (int i = 0; i < up->nnodes; i++)
        up->nodes[i]->master = 0;
    for (int s = 0; s < ROUTE_SLOTS; s++)
        if (map[s] >= 0)
            up->nodes[map[s]]->master = 1;
    if (memcmp(map, up->slot_node, sizeof(*map) * ROUTE_SLOTS) != 0) {
        up->map_changes++;
        log_verbose("upstream cluster: slot map from %s: %d slots known", c->node->name, known);
    }
    memcpy(up->slot_node, map, sizeof(*map) * ROUTE_SLOTS);
    memcpy(up->slot_replica, reps, sizeof(*reps) * ROUTE_SLOTS);
    mem_free(map);
    mem_free(reps);
    up->map_wanted = 0;
    up->map_at_ms = clock_us_monotonic() / 1000;
}

/* Something suggests the map changed (a connection lost, a MOVED): ask for it soon. */
void route_map_want(upstream_t *up)
{
    if (up->cluster)
        up->map_wanted = 1;
}

/* ---- redirections -------------------------------------------------------------------------------- */

/* "MOVED 3999 127.0.0.1:6381" or "ASK ...": 1 (MOVED) or 2 (ASK) with slot, host and port; else 0. */
static int parse_redirect(const redisReply *r, int *slot, char *host, size_t hostlen, int *port)
{
    int kind;
    const char *p;

    if (r->type != REDIS_REPLY_ERROR)
        return 0;
    if (strncmp(r->str, "MOVED ", 6) == 0) {
        kind = 1;
        p = r->str + 6;
    } else if (strncmp(r->str, "ASK ", 4) == 0) {
        kind = 2;
        p = r->str + 4;
    } else {
        return 0;
    }
    char *end;
    long s = strtol(p, &end, 10);
    if (end == p || *end != ' ' || s < 0 || s >= ROUTE_SLOTS)
        return 0;
    p = end + 1;
    const char *colon = strrchr(p, ':');
    if (colon == NULL || colon == p || (size_t)(colon - p) >= hostlen)
        return 0;
    long pt = strtol(colon + 1, &end, 10);
    if (*end != '\0' || pt <= 0 || pt > 65535)
        return 0;
    memcpy(host, p, (size_t)(colon - p));
    host[colon - p] = '\0';
    *slot = (int)s;
    *port = (int)pt;
    return kind;
}

/*
 * Redis answered the task t's command on c with an error: if it is a redirection of a command that can
 * follow it (a plain command, or a read-modify-write at its first GET), send the command where it was
 * sent and return 1 (the task continues there, or fails after too many hops); else 0, and the error is
 * the task's as usual.
 */
int route_redirect(up_conn_t *c, up_task_t *t, int kind, const redisReply *r)
{
    upstream_t *up = c->up;
    char host[200], err[512];
    int slot, port, how;

    if (t == NULL)
        return 0;
    if (kind == SLOT_TX_EXEC && t->moved) {
        /* EXEC refused (EXECABORT) because a command inside MULTI was redirected */
        t->moved = 0;
        if (t->kind == TASK_TX) {
            if (c->active == t)
                c->active = NULL;
            up_conn_pump(c);
            if (++t->redirects > ROUTE_MAX_REDIRECTS) {
                up_task_fail(t, "ERR upstream cluster: the key's slot kept moving during a read-modify-write");
                up_task_free(t);
                return 1;
            }
            up_conn_t *to = route_conn(up, slot_of(t->op.key), t->op.affinity);
            up_conn_enqueue(to, t);
            up_conn_pump(to);
            return 1;
        }
        if (t->kind == TASK_BATCH) {
            redisReply again = { .type = REDIS_REPLY_ERROR };
            again.str = "TRYAGAIN upstream cluster: a slot of this transaction moved while it was sent; run it again";
            again.len = strlen(again.str);
            up_batch_exec_reply(c, t, &again);
            return 1;
        }
        return 0;
    }
    if (!(how = parse_redirect(r, &slot, host, sizeof(host), &port)))
        return 0;
    if (kind == SLOT_IGNORE && (t->kind == TASK_TX || t->kind == TASK_BATCH)) {
        /* WATCH or a command inside MULTI redirected: the GET or EXEC after it says what to do */
        up->nredirects++;
        up_node_t *n = node_get(up, host, port);
        if (how == 1 && n != NULL)
            up->slot_node[slot] = (int16_t)n->index;
        route_map_want(up);
        t->moved = 1;
        return 1;
    }
    if (kind == SLOT_TX_GET && t->kind == TASK_BATCH) {
        /* one of a transaction's reads redirected: the transaction fails with Redis's own error for a
         * slot on the move, which cluster-aware clients retry */
        up->nredirects++;
        if (how == 1) {
            up_node_t *n = node_get(up, host, port);
            if (n != NULL)
                up->slot_node[slot] = (int16_t)n->index;
        }
        route_map_want(up);
        redisReply again = { .type = REDIS_REPLY_ERROR };
        again.str = "TRYAGAIN upstream cluster: a slot of this transaction moved while it was sent; run it again";
        again.len = strlen(again.str);
        up_batch_got_values(c, t, &again);
        return 1;
    }
    if (!((kind == SLOT_RESULT && t->kind == TASK_PLAIN) || (kind == SLOT_TX_GET && t->kind == TASK_TX)))
        return 0;
    t->moved = 0;
    up->nredirects++;
    up_node_t *n = node_get(up, host, port);
    if (how == 1) {
        if (n != NULL)
            up->slot_node[slot] = (int16_t)n->index;
        route_map_want(up);
    }
    if (t->kind == TASK_TX) {
        /* the transaction owned c for its WATCH and GET, both answered now: c carries on without it */
        if (c->active == t)
            c->active = NULL;
        t->sent = 0;
        up_conn_pump(c);
        if (how == 2 && (long long)++t->ask_waits * ROUTE_ASK_WAIT_MS * 1000 <= up->command_timeout_us) {
            /* its key is on the move: WATCH ... EXEC cannot follow an ASK (ASKING counts for one command,
             * not for what MULTI queues), so it waits until the slot has moved, and MOVED tells where */
            t->park_until_us = clock_us_monotonic() + ROUTE_ASK_WAIT_MS * 1000;
            t->next = up->parked;
            up->parked = t;
            return 1;
        }
    }
    if (n == NULL || ++t->redirects > ROUTE_MAX_REDIRECTS || (how == 2 && t->kind == TASK_TX)) {
        if (n == NULL)
            snprintf(err, sizeof(err), "ERR upstream cluster: slot %d is at %s:%d, which cannot be reached", slot,
                     host, port);
        else if (how == 2)
            snprintf(err, sizeof(err), "TRYAGAIN upstream cluster: slot %d is being migrated; try again", slot);
        else
            snprintf(err, sizeof(err), "ERR upstream cluster: slot %d redirected more than %d times", slot,
                     ROUTE_MAX_REDIRECTS);
        up_task_fail(t, err);
        up_task_free(t);
        return 1;
    }
    up_conn_t *to = &n->pool[t->op.affinity % (uint64_t)n->npool];
    t->asking = how == 2;
    t->next = NULL;
    if (up_conn_down(to)) {
        snprintf(err, sizeof(err), "ERR upstream %s: %s", n->name, to->last_error[0] ? to->last_error : "not connected");
        up_task_fail(t, err);
        up_task_free(t);
        return 1;
    }
    up_conn_enqueue(to, t);
    up_conn_pump(to);
    return 1;
}

/* Every 50 ms: the read-modify-writes waiting for a slot to finish moving go again (to the slot's master
 * as the map says; MOVED corrects it). At destroy (all): they fail. */
void route_unpark(upstream_t *up, int all)
{
    long long now = clock_us_monotonic();
    up_task_t **pp = &up->parked;

    while (*pp != NULL) {
        up_task_t *t = *pp;
        if (!all && t->park_until_us > now) {
            pp = &t->next;
            continue;
        }
        *pp = t->next;
        t->next = NULL;
        if (all) {
            up_task_fail(t, "ERR upstream: shutting down");
            up_task_free(t);
            continue;
        }
        up_conn_t *to = route_conn(up, slot_of(t->op.key), t->op.affinity);
        if (up_conn_down(to)) {
            char err[320];
            snprintf(err, sizeof(err), "ERR upstream %s: %s", to->node->name,
                     to->last_error[0] ? to->last_error : "not connected");
            up_task_fail(t, err);
            up_task_free(t);
            continue;
        }
        up_conn_enqueue(to, t);
        up_conn_pump(to);
    }
}

/* ---- fan-out: an op split by slot or sent to every master ---------------------------------------- */

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
static void fan_by_slot(upstream_t *up, const backend_op_t *op, backend_cb *cb, void *ctx)
{
    int *slots = mem_alloc(op->nkeys * sizeof(*slots));
    int *order = mem_alloc(op->nkeys * sizeof(*order));     /* distinct slots, in first-seen order */
    int nslots = 0;

    for (size_t i = 0; i < op->nkeys; i++) {
        slots[i] = slot_of(op->keys[i]);
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
            k++;
        }
        backend_op_t part = *op;
        part.keys = keys;
        part.vals = vals;
        part.nkeys = p->n;
        up_submit_on(up, op_conn(up, order[g], op), &part, fan_part_cb, p);
    }
    mem_free(keys);
    mem_free(vals);
    mem_free(slots);
    mem_free(order);
}

/* A keyless op about the whole keyspace: the same op on every master. */
static void fan_to_masters(upstream_t *up, const backend_op_t *op, backend_cb *cb, void *ctx)
{
    up_node_t *ms[ROUTE_MAX_MASTERS];
    int n = masters(up, ms, ROUTE_MAX_MASTERS);
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

static void scan_masters(upstream_t *up, const backend_op_t *op, backend_cb *cb, void *ctx)
{
    up_node_t *ms[ROUTE_MAX_MASTERS];
    int n = masters(up, ms, ROUTE_MAX_MASTERS);
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

/* ---- submitting ---------------------------------------------------------------------------------- */

static void fail_now(upstream_t *up, backend_cb *cb, void *ctx, const char *err)
{
    backend_result_t res = { .status = BE_ERR, .err = err };
    up->nerrors++;
    cb(ctx, &res);
}

/* The cluster's submit: route op by its keys' slot, split it, or send it to every master. */
void route_submit(upstream_t *up, const backend_op_t *op, backend_cb *cb, void *ctx)
{
    switch (op->code) {
    case BE_SELECT:
        if (op->db2 != 0) {
            fail_now(up, cb, ctx, "ERR SELECT is not allowed in cluster mode");
        } else {
            backend_result_t res = { .status = BE_OK };
            cb(ctx, &res);
        }
        return;
    case BE_DBSIZE:
    case BE_FLUSH:
    case BE_KEYS:
    case BE_RANDOMKEY:
        fan_to_masters(up, op, cb, ctx);
        return;
    case BE_INFO:
        if (op->pattern.len == 8 && memcmp(op->pattern.ptr, "keyspace", 8) == 0) {
            fan_to_masters(up, op, cb, ctx);
            return;
        }
        break;
    case BE_SCAN:
        scan_masters(up, op, cb, ctx);
        return;
    default:
        break;
    }
    int slot = route_op_slot(op);
    if (slot == ROUTE_MULTI) {
        if (op->code == BE_MGET || op->code == BE_DEL || op->code == BE_EXISTS || op->code == BE_TOUCH ||
            (op->code == BE_MSET && !(op->flags & BE_NX) && up->cross_slot_split)) {
            fan_by_slot(up, op, cb, ctx);
            return;
        }
        fail_now(up, cb, ctx, CROSSSLOT);
        return;
    }
    up_submit_on(up, op_conn(up, slot, op), op, cb, ctx);
}

/*
 * The connection a client's MULTI ... EXEC runs on: its members' keys must share one slot (Redis
 * Cluster runs a transaction on one node, and refuses keys of several slots in it). NULL and err set
 * if they do not.
 */
up_conn_t *route_batch_conn(upstream_t *up, const up_task_t *bt, uint64_t affinity, const char **err)
{
    int slot = ROUTE_NOKEY;

    for (int i = 0; i < bt->nmembers; i++) {
        const backend_op_t *op = &bt->members[i]->op;
        int s = route_op_slot(op);
        if (op->code == BE_SELECT && op->db2 != 0) {
            *err = "ERR SELECT is not allowed in cluster mode";
            return NULL;
        }
        if (s == ROUTE_MULTI || (s >= 0 && slot >= 0 && s != slot) ||
            op->code == BE_KEYS || op->code == BE_SCAN || op->code == BE_DBSIZE || op->code == BE_FLUSH ||
            op->code == BE_RANDOMKEY) {
            *err = s == ROUTE_MULTI || s >= 0 ? CROSSSLOT
                                              : "ERR upstream cluster: a command about every key (KEYS, SCAN, "
                                                "DBSIZE, FLUSHDB, RANDOMKEY) cannot run inside MULTI on a cluster";
            return NULL;
        }
        if (s >= 0)
            slot = s;
    }
    return route_conn(up, slot, affinity);
}

/* ---- INFO ---------------------------------------------------------------------------------------- */

void route_info(upstream_t *up, buf_t *out)
{
    int known = 0;
    for (int s = 0; s < ROUTE_SLOTS; s++)
        known += up->slot_node[s] >= 0;
    buf_printf(out, "upstream_cluster:yes\r\nupstream_cluster_nodes:%d\r\nupstream_cluster_slots_known:%d\r\n"
               "upstream_cluster_map_changes:%llu\r\nupstream_redirects:%llu\r\n",
               up->nnodes, known, up->map_changes, up->nredirects);
    for (int i = 0; i < up->nnodes; i++) {
        up_node_t *n = up->nodes[i];
        int slots = 0, ready = 0;
        unsigned inflight = 0;
        for (int s = 0; s < ROUTE_SLOTS; s++)
            slots += up->slot_node[s] == n->index;
        for (int k = 0; k < n->npool; k++) {
            ready += n->pool[k].state == UP_READY;
            inflight += n->pool[k].nslots;
        }
        buf_printf(out, "upstream_node%d:addr=%s,role=%s,slots=%d,connections=%d,ready=%d,in_flight=%u\r\n", i,
                   n->name, n->master ? "master" : n->readonly ? "replica" : "other", slots, n->npool, ready,
                   inflight);
    }
}

void route_metrics(upstream_t *up, buf_t *out)
{
    buf_printf(out, "# TYPE cachetoryd_upstream_redirects_total counter\ncachetoryd_upstream_redirects_total %llu\n"
               "# TYPE cachetoryd_upstream_cluster_map_changes_total counter\n"
               "cachetoryd_upstream_cluster_map_changes_total %llu\n", up->nredirects, up->map_changes);
    const char *metric[3] = { "cachetoryd_upstream_node_slots", "cachetoryd_upstream_node_connections_ready",
                              "cachetoryd_upstream_node_in_flight" };
    for (int m = 0; m < 3; m++) {
        buf_printf(out, "# TYPE %s gauge\n", metric[m]);
        for (int i = 0; i < up->nnodes; i++) {
            up_node_t *n = up->nodes[i];
            long long v = 0;
            if (m == 0) {
                for (int s = 0; s < ROUTE_SLOTS; s++)
                    v += up->slot_node[s] == n->index;
            }
            for (int k = 0; m > 0 && k < n->npool; k++)
                v += m == 1 ? n->pool[k].state == UP_READY : (long long)n->pool[k].nslots;
            buf_printf(out, "%s{node=\"%s\",role=\"%s\"} %lld\n", metric[m], n->name,
                       n->master ? "master" : n->readonly ? "replica" : "other", v);
        }
    }
}
