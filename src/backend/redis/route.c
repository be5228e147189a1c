/*
 * backend/redis/route: a Redis Cluster behind the backend (redis+cluster://host:port,host:port...).
 *
 * The slot map: which master serves each of the 16384 slots, asked with CLUSTER SLOTS from any node at
 * start, again when Redis answers MOVED, when a connection to a node is lost, while commands fail because
 * their node is down (up_conn_down_error: a replica may have taken its slots over), and every
 * ROUTE_REFRESH_MS. Nodes are created as the map names them (upstream-pool-size connections each). A
 * slot not known yet goes to any node: Redis answers MOVED and the command follows it.
 *
 * Single-key ops go to their slot's master. Redirections are followed here, never shown to a client:
 * MOVED re-routes the command and updates the map; ASK sends ASKING and the command to the node named,
 * once, without changing the map. A command redirected more than ROUTE_MAX_REDIRECTS times fails. A command
 * answered CLUSTERDOWN goes again a little later (down_park).
 * Plain commands keep their bytes (the task's data) so that a redirected one is sent again as it was.
 *
 * RESP3 clients (HELLO 3): their forwarded commands go on each node's RESP3 connections (node.pool3,
 * route_node_conn) and Redis's RESP3 reply is relayed as it is (resp3.c), as with a single Redis. Why
 * not RESP2 connections and a conversion: RESP2 has lost what RESP3 says (HGETALL's map, ZSCORE's double).
 * A MOVED / ASK comes as an error frame on those connections; resp3.c hands it to up_conn_handle_reply
 * like any error (never relayed: route_redirect sees it first) and it is followed exactly as on a RESP2
 * connection, to the RESP3 set of the node named (ASK: ASKING right before it). A RESP3 client's MULTI
 * ... EXEC with a forwarded command inside runs on the RESP3 connection of its slot's master
 * (route_batch_conn), so its EXEC array is the master's own RESP3, split by element as with a single
 * Redis; dedicated connections are refused with a cluster (pin.c).
 *
 * Multi-key ops whose keys hash to several slots are split into one op per slot (fan.c): MGET, DEL,
 * EXISTS, TOUCH — not atomic across slots, as Redis Cluster itself. MSET across slots: Redis's CROSSSLOT error, or split with
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
#define ROUTE_DOWN_WAIT_MS    50        /* a command answered CLUSTERDOWN goes again after this, for at most
                                           upstream-command-timeout in all */

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

int route_slot_of(bytes_t k)
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
        slot = route_slot_of(op->key);
    if (op->key2.ptr != NULL) {
        int s2 = route_slot_of(op->key2);
        if (slot >= 0 && s2 != slot)
            return ROUTE_MULTI;
        slot = s2;
    }
    if (op->code != BE_COMMAND || (op->flags & BE_KEYSKNOWN)) {
        for (size_t i = 0; i < op->nkeys; i++) {
            int s = route_slot_of(op->keys[i]);
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

/*
 * Of node n, the connection for op: a RESP3 client's forwarded command (BE_RESP3) on the node's RESP3
 * set (pool3, made on first use with HELLO 3), so that it answers exactly what the slot's master sends a
 * HELLO 3 client; the rest on its RESP2 set. Both at index affinity % npool (no lanes on a cluster): the
 * same client's tasks on the two sets of a node are kept in order by up_conn_waits (resp3.c).
 */
up_conn_t *route_node_conn(up_node_t *n, const backend_op_t *op)
{
    up_conn_t *set = op->code == BE_COMMAND && (op->flags & BE_RESP3) && !(op->flags & BE_PUSHES) ? n->pool3 : n->pool;
    return &set[op->affinity % (uint64_t)n->npool];
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
up_conn_t *route_op_conn(upstream_t *up, int slot, const backend_op_t *op)
{
    up_conn_t *c = route_node_conn(slot_node(up, slot), op);

    if (up->read_from != READ_FROM_MASTER && slot >= 0 && up->slot_replica[slot] >= 0 && op_reads(op)) {
        up_node_t *r = up->nodes[up->slot_replica[slot]];
        up_conn_t *rc = &r->pool[op->affinity % (uint64_t)r->npool];
        if (up->read_from == READ_FROM_REPLICA || !up_conn_down(rc))
            return rc;
    }
    return c;
}

/* The masters, ordered by the first slot each serves (SCAN walks them in this order). n = how many. */
int route_masters(upstream_t *up, up_node_t **out, int max)
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

/* A command of t's transaction (a WATCH, a queued one, or EXEC) was redirected: counted, the slot map
 * told of a MOVED and asked again, and t marked: the GET or EXEC after it says what to do. */
static void redirect_noted(up_conn_t *c, up_task_t *t, int how, int slot, const char *host, int port)
{
    upstream_t *up = c->up;
    up->nredirects++;
    c->node->nredirects++;
    up_node_t *n = node_get(up, host, port);
    if (how == 1 && n != NULL)
        up->slot_node[slot] = (int16_t)n->index;
    route_map_want(up);
    t->moved = 1;
}

/* t waits in up->parked until park_until_us: behind the others, so that a client's go again in its order. */
static void park(upstream_t *up, up_task_t *t, long long until_us)
{
    up_task_t **pp = &up->parked;
    while (*pp != NULL)
        pp = &(*pp)->next;
    t->next = NULL;
    t->park_until_us = until_us;
    *pp = t;
}

/*
 * Redis's CLUSTERDOWN (the node sees the cluster as failed, or nobody serving the slot, as for a moment
 * during a failover): the command did not run. A command of one slot goes again after ROUTE_DOWN_WAIT_MS,
 * to the slot's master as the map says then, for at most upstream-command-timeout in all (then the client
 * gets the CLUSTERDOWN, as from the node). Not when a later command of the same client is already on its way
 * to that node: it may run, and the retried one would run after it; that client gets the CLUSTERDOWN at
 * once. While it waits, the same client's later commands wait for it (up_conn_waits), and it goes first on
 * its connection (route_unpark).
 */
static int down_park(up_conn_t *c, up_task_t *t, int kind, const redisReply *r)
{
    upstream_t *up = c->up;

    if (kind != SLOT_RESULT || t->kind != TASK_PLAIN || r->type != REDIS_REPLY_ERROR ||
        strncmp(r->str, "CLUSTERDOWN ", 12) != 0 || (t->op.flags & BE_WITHTTL) || c->dedicated || c->tracker ||
        route_op_slot(&t->op) < 0)
        return 0;
    if ((long long)(t->down_waits + 1) * ROUTE_DOWN_WAIT_MS * 1000 > up->command_timeout_us ||
        up_conn_client_later(c, t))
        return 0;
    t->down_waits++;
    t->asking = 0;
    route_map_want(up);
    park(up, t, clock_us_monotonic() + ROUTE_DOWN_WAIT_MS * 1000);
    return 1;
}

int route_client_parked_before(const upstream_t *up, const up_task_t *t)
{
    for (const up_task_t *p = up->parked; p != NULL; p = p->next)
        if (p->down_waits > 0 && p != t && p->op.affinity == t->op.affinity && p->seq < t->seq)
            return 1;
    return 0;
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
    if (down_park(c, t, kind, r))
        return 1;
    if (kind == SLOT_TX_EXEC && !t->moved && (how = parse_redirect(r, &slot, host, sizeof(host), &port))) {
        /* EXEC itself redirected: the slot left the node after the commands were queued, and Redis
         * discarded the transaction (it checks their keys again at EXEC). As for a queued command
         * redirected: a read-modify-write runs again where the slot is now, a client's transaction
         * fails with TRYAGAIN. Never the MOVED / ASK itself to the client. */
        redirect_noted(c, t, how, slot, host, port);
    }
    if (kind == SLOT_TX_EXEC && t->moved) {
        /* EXEC refused (EXECABORT) because a command inside MULTI was redirected, or redirected itself */
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
            up_conn_t *to = route_conn(up, route_slot_of(t->op.key), t->op.affinity);
            up_conn_enqueue(to, t);
            up_conn_pump(to);
            return 1;
        }
        if (t->kind == TASK_BATCH) {
            redisReply again = { .type = REDIS_REPLY_ERROR };
            again.str = "TRYAGAIN upstream cluster: a slot of this transaction moved while it was sent; run it again";
            again.len = strlen(again.str);
            up_batch_exec_reply(c, t, &again, NULL, 0);
            return 1;
        }
        return 0;
    }
    if (!(how = parse_redirect(r, &slot, host, sizeof(host), &port)))
        return 0;
    if (kind == SLOT_IGNORE && (t->kind == TASK_TX || t->kind == TASK_BATCH)) {
        /* WATCH or a command inside MULTI redirected: the GET or EXEC after it says what to do */
        redirect_noted(c, t, how, slot, host, port);
        return 1;
    }
    if (kind == SLOT_TX_GET && t->kind == TASK_BATCH) {
        /* one of a transaction's reads redirected: the transaction fails with Redis's own error for a
         * slot on the move, which cluster-aware clients retry */
        up->nredirects++;
        c->node->nredirects++;
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
    c->node->nredirects++;
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
            park(up, t, clock_us_monotonic() + ROUTE_ASK_WAIT_MS * 1000);
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
    up_conn_t *to = route_node_conn(n, &t->op);        /* a RESP3 one stays on RESP3 connections */
    t->asking = how == 2;
    t->next = NULL;
    if (up_conn_down(to)) {
        up_conn_down_error(to, err, sizeof(err));
        up_task_fail(t, err);
        up_task_free(t);
        return 1;
    }
    up_conn_enqueue(to, t);
    up_conn_pump(to);
    return 1;
}

/* Every 50 ms: the read-modify-writes waiting for a slot to finish moving, and the commands answered
 * CLUSTERDOWN, whose wait is over go again (to the slot's master as the map says; MOVED corrects it): a
 * command first on its connection, as it was first of its client's. At destroy (all): they fail. */
void route_unpark(upstream_t *up, int all)
{
    long long now = clock_us_monotonic();
    up_task_t **pp = &up->parked;
    int down = 0;

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
        int plain = t->kind == TASK_PLAIN;
        up_conn_t *to = plain ? route_node_conn(slot_node(up, route_op_slot(&t->op)), &t->op)
                              : route_conn(up, route_slot_of(t->op.key), t->op.affinity);
        down |= plain;
        if (up_conn_down(to)) {
            char err[320];
            up_conn_down_error(to, err, sizeof(err));
            up_task_fail(t, err);
            up_task_free(t);
            continue;
        }
        if (plain)
            up_conn_enqueue_first(to, t);
        else
            up_conn_enqueue(to, t);
        up_conn_pump(to);
    }
    /* the same clients' later commands that waited for them (up_conn_waits) may go */
    for (int k = 0; down && k < up_nconns(up); k++) {
        if (up_conn_at(up, k)->tasks != NULL)
            up_conn_pump(up_conn_at(up, k));
        if (up_conn3_at(up, k)->tasks != NULL)
            up_conn_pump(up_conn3_at(up, k));
    }
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
        route_fan_masters(up, op, cb, ctx);
        return;
    case BE_INFO:
        if (op->pattern.len == 8 && memcmp(op->pattern.ptr, "keyspace", 8) == 0) {
            route_fan_masters(up, op, cb, ctx);
            return;
        }
        break;
    case BE_SCAN:
        route_scan(up, op, cb, ctx);
        return;
    default:
        break;
    }
    int slot = route_op_slot(op);
    if (slot == ROUTE_MULTI) {
        if (op->code == BE_MGET || op->code == BE_DEL || op->code == BE_EXISTS || op->code == BE_TOUCH ||
            (op->code == BE_MSET && !(op->flags & BE_NX) && up->cross_slot_split)) {
            route_fan_slots(up, op, cb, ctx);
            return;
        }
        fail_now(up, cb, ctx, CROSSSLOT);
        return;
    }
    up_submit_on(up, route_op_conn(up, slot, op), op, cb, ctx);
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
    up_conn_t *c = route_conn(up, slot, affinity);
    /* a RESP3 client's forwarded command inside: EXEC's array in RESP3, on the node's RESP3 connection of
     * the same index (resp3.c: the order guard keeps the client's other commands around it in order) */
    return up_task_wants_resp3(bt) ? &c->node->pool3[c->index] : c;
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
        int slots = 0, ready = 0, made3 = 0, ready3 = 0;
        unsigned inflight = 0;
        for (int s = 0; s < ROUTE_SLOTS; s++)
            slots += up->slot_node[s] == n->index;
        for (int k = 0; k < n->npool; k++) {
            ready += n->pool[k].state == UP_READY;
            inflight += n->pool[k].nslots + n->pool3[k].nslots;
            made3 += !n->pool3[k].starting;
            ready3 += n->pool3[k].state == UP_READY;
        }
        buf_printf(out, "upstream_node%d:addr=%s,role=%s,slots=%d,connections=%d,ready=%d,in_flight=%u,errors=%llu,"
                   "redirects=%llu,resp3_connections=%d,resp3_ready=%d\r\n", i, n->name,
                   n->master ? "master" : n->readonly ? "replica" : "other", slots, n->npool, ready, inflight,
                   n->nerrors, n->nredirects, made3, ready3);
    }
}

void route_metrics(upstream_t *up, buf_t *out)
{
    buf_printf(out, "# TYPE cachetoryd_upstream_redirects_total counter\ncachetoryd_upstream_redirects_total %llu\n"
               "# TYPE cachetoryd_upstream_cluster_map_changes_total counter\n"
               "cachetoryd_upstream_cluster_map_changes_total %llu\n", up->nredirects, up->map_changes);
    static const char *const metric[5] = { "cachetoryd_upstream_node_slots", "cachetoryd_upstream_node_connections_ready",
                                           "cachetoryd_upstream_node_in_flight", "cachetoryd_upstream_node_errors_total",
                                           "cachetoryd_upstream_node_redirects_total" };
    for (int m = 0; m < 5; m++) {
        buf_printf(out, "# TYPE %s %s\n", metric[m], m < 3 ? "gauge" : "counter");
        for (int i = 0; i < up->nnodes; i++) {
            up_node_t *n = up->nodes[i];
            long long v = 0;
            if (m == 0) {
                for (int s = 0; s < ROUTE_SLOTS; s++)
                    v += up->slot_node[s] == n->index;
            } else if (m == 3) {
                v = (long long)n->nerrors;
            } else if (m == 4) {
                v = (long long)n->nredirects;
            }
            for (int k = 0; (m == 1 || m == 2) && k < n->npool; k++)
                v += m == 1 ? n->pool[k].state == UP_READY : (long long)(n->pool[k].nslots + n->pool3[k].nslots);
            buf_printf(out, "%s{node=\"%s\",role=\"%s\"} %lld\n", metric[m], n->name,
                       n->master ? "master" : n->readonly ? "replica" : "other", v);
        }
    }
}
