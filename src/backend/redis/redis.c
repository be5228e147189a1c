/*
 * redis:// — an upstream Redis as the backend: cachetoryd becomes a proxy, the codec chain applied on
 * the way (the cache layer does that before ops reach here). This file is the backend interface
 * (backend.h's vtable) and the backend's life; redis_int.h maps the other files of this folder.
 *
 * How: cachetoryd's own libuv streams, hiredis's reply reader (redisReader) to parse what Redis answers,
 * and a few lines of our own to write commands. Not hiredis's async API: with our own streams every
 * command produced in one turn of the loop leaves in one write per connection (a uv_check flushes), the
 * connect and command timeouts, reconnection and the handshake are ours to time, and a WATCH/MULTI/EXEC
 * sequence can own a connection while other connections carry on. Formatting a request is a few lines
 * (a multibulk of bulk strings) and needs no allocation; parsing replies (every RESP type, nested) is
 * what hiredis's reader is good at.
 *
 * Connections (pool.c): a pool of upstream-pool-size connections, each pipelined. A client's ops in
 * flight are all on one connection (lane.c), so they reach Redis in the order the client sent them.
 *
 * Tasks (task.c): an op becomes a task queued on its connection. A plain task is one command (wire.c),
 * sent at once. A transaction task (tx.c: read-modify-write on encoded values, and ops that must check
 * the old value before changing it) runs WATCH + GET, computes, then MULTI + command + EXEC, retried when
 * EXEC reports that the key changed; it holds back the tasks queued after it on its connection until it
 * is done, so that a client's later commands still follow it. A batch task (batch.c: a client's MULTI
 * ... EXEC) sends MULTI, the commands and EXEC in one piece; its read-modify-write members first WATCH
 * and GET what they read, database by database. A select task (a client's SELECT) answers once the
 * database is known to exist.
 *
 * Databases: see "databases" in pool.c: a database is SELECTed alone, with nothing pipelined behind it,
 * until Redis has once said it exists; the connection's database is followed from Redis's answers
 * (a SELECT inside MULTI counts only when EXEC runs).
 *
 * Failures: a connection that is down fails new tasks at once with "ERR upstream HOST:PORT: reason";
 * pool.c fails what it holds and reconnects.
 */
#include "backend/redis/redis_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "url.h"
#include "util/mem.h"

void up_conn_down_error(const up_conn_t *c, char *err, size_t n)
{
    /* a cluster's node that stays down may have been replaced by a replica by now: the map is asked
     * again (at most every ROUTE_RETRY_MS) as long as commands fail for it, not only when one of its
     * reconnections fails (with backoff, up to upstream-retry-max after the promotion) */
    route_map_want(c->up);
    snprintf(err, n, "ERR upstream %s: %s", c->node->name, c->last_error[0] ? c->last_error : "not connected");
}

/* c is down: the op fails at once with its reason. */
static void fail_down(upstream_t *up, const up_conn_t *c, backend_cb *cb, void *ctx)
{
    char err[320];
    up_conn_down_error(c, err, sizeof(err));
    backend_result_t res = { .status = BE_ERR, .err = err };
    up->nerrors++;
    cb(ctx, &res);
}

/*
 * op goes on connection c: at once when nothing holds the connection back, else queued behind what does.
 * A cluster's plain commands keep their bytes (the task's data), to be sent again if Redis redirects them.
 */
void up_submit_on(upstream_t *up, up_conn_t *c, const backend_op_t *op, backend_cb *cb, void *ctx)
{
    if (up_conn_down(c)) {
        fail_down(up, c, cb, ctx);
        return;
    }
    if (op->flags & BE_PUSHES) {            /* SUBSCRIBE...: on a dedicated connection, in its turn */
        up_task_t *t = up_task_create(up, op, cb, ctx, TASK_PUSH);
        up_lane_hold(up, t, c);
        wire_put(&t->data, op);
        up_conn_enqueue(c, t);
        up_conn_pump(c);
        return;
    }
    if (wire_needs_tx(op) || op->code == BE_SELECT) {
        /* a client's SELECT waits its turn among its commands; it answers OK at once where the database
         * is known on the connection, else when Redis has answered a SELECT of it */
        up_task_t *t = up_task_create(up, op, cb, ctx, op->code == BE_SELECT ? TASK_SELECT : TASK_TX);
        up_lane_hold(up, t, c);
        up_task_own_op(t, op);
        up_conn_enqueue(c, t);
        up_conn_pump(c);
        return;
    }
    up_task_t *t = up_task_create(up, op, cb, ctx, TASK_PLAIN);
    up_lane_hold(up, t, c);
    if (!up->cluster && c->state == UP_READY && c->active == NULL && c->tasks == NULL && !c->ded_reset_due &&
        up_conn_can_send(c, t) && up_conn_db_ready(c, op->db)) {
        if (c->dedicated)
            up_conn_proto_for(c, t);        /* HELLO 3 / HELLO 2 first if t needs the other protocol */
        up_conn_send_op(c, t, SLOT_RESULT, op->db, op);   /* the fast path: straight to the wire */
        t->sent = 1;
        return;
    }
    /* behind a transaction, a SELECT awaited, before the connection is ready, behind the client's commands
     * on the other protocol's connection, or a cluster's: keep the command's bytes */
    wire_put(&t->data, op);
    up_conn_enqueue(c, t);                  /* (a RESP3 connection not made yet: made now) */
    if (up->cluster)
        up_conn_pump(c);
}

/*
 * An op of a client holding a dedicated connection: on it, behind the client's other ops. A
 * read-modify-write of encoded values would run its own WATCH ... EXEC there, which ends the client's
 * WATCH: refused between WATCH and EXEC (inside the client's MULTI it is part of the transaction).
 */
static void submit_pinned(upstream_t *up, const backend_op_t *op, backend_cb *cb, void *ctx)
{
    char err[400];
    up_conn_t *c = up_pin_conn(up, op, err, sizeof(err));

    if (c != NULL && wire_needs_tx(op)) {
        snprintf(err, sizeof(err), "ERR %s of an encoded value between WATCH and MULTI is not supported by "
                 "cachetoryd (it would end the WATCH on the upstream); run it inside MULTI ... EXEC",
                 wire_op(op->code)->name);
        c = NULL;
    }
    if (c == NULL) {
        backend_result_t res = { .status = BE_ERR, .err = err };
        up->nerrors++;
        cb(ctx, &res);
        return;
    }
    up_submit_on(up, c, op, cb, ctx);
}

static void redis_submit(backend_t *b, const backend_op_t *op, backend_cb *cb, void *ctx)
{
    upstream_t *up = (upstream_t *)b;

    if (wire_op(op->code) == NULL) {            /* an opcode without a row in wire.c's table */
        backend_result_t res = { .status = BE_ERR, .err = "ERR upstream: this operation has no upstream form" };
        cb(ctx, &res);
        return;
    }
    if (up->batching) {
        up_conn_t *c = &up->nodes[0]->pool[up_lane(up, up->nodes[0]->pool, up->batch_affinity)];
        if (op->pin == NULL && !up->cluster && up_conn_down(c)) {
            fail_down(up, c, cb, ctx);
            return;
        }
        up_task_t *t = up_task_create(up, op, cb, ctx, wire_needs_tx(op) ? TASK_TX : TASK_PLAIN);
        up_task_own_op(t, op);
        up_task_t *bt = up->batch;
        bt->reads |= t->kind == TASK_TX;
        bt->members = mem_realloc(bt->members, (size_t)(bt->nmembers + 1) * sizeof(*bt->members));
        bt->members[bt->nmembers++] = t;
        return;
    }
    if (op->pin != NULL) {
        submit_pinned(up, op, cb, ctx);
        return;
    }
    if (up->cluster) {
        route_submit(up, op, cb, ctx);
        return;
    }
    up_node_t *n = up->nodes[0];
    if ((op->flags & BE_RESP3) && op->code == BE_COMMAND) {
        up_submit_on(up, &n->pool3[up_lane(up, n->pool3, op->affinity)], op, cb, ctx);
        return;
    }
    up_submit_on(up, &n->pool[up_lane(up, n->pool, op->affinity)], op, cb, ctx);
}

static void redis_batch(backend_t *b, int begin, uint64_t affinity, backend_cb *cb, void *ctx)
{
    upstream_t *up = (upstream_t *)b;

    if (begin) {
        backend_op_t none = { .code = BE_COMMAND, .affinity = affinity };
        up->batching = 1;
        up->batch_affinity = affinity;
        up->batch = up_task_create(up, &none, NULL, NULL, TASK_BATCH);
        return;
    }
    up->batching = 0;
    up_task_t *bt = up->batch;
    up->batch = NULL;
    if (bt == NULL) {
        backend_result_t res = { .status = BE_OK };
        cb(ctx, &res);
        return;
    }
    bt->cb = cb;
    bt->ctx = ctx;
    up_conn_t *c = &up->nodes[0]->pool[up->cluster ? 0 : up_lane(up, up->nodes[0]->pool, affinity)];
    const char *why = NULL;
    char pinerr[400];
    int pinned = up_pin_batch_conn(up, affinity, &c, pinerr, sizeof(pinerr));
    if (bt->nmembers == 0 && pinned == 0) {
        up_batch_outcome(bt, NULL);
        up_task_free(bt);
        return;
    }
    /* on the client's dedicated connection even when empty: Redis tells whether a WATCHed key changed */
    bt->pinned = pinned != 0;
    bt->op.db = bt->nmembers > 0 ? bt->members[0]->op.db : up->db;
    if (pinned < 0) {
        c = NULL;
        why = pinerr;
    } else if (up->cluster) {
        c = route_batch_conn(up, bt, affinity, &why);
    } else if (pinned == 0 && up_task_wants_resp3(bt)) {
        /* a RESP3 client's forwarded command inside: EXEC's array in RESP3, on the client's RESP3
         * connection (resp3.c) */
        c = &up->nodes[0]->pool3[up_lane(up, up->nodes[0]->pool3, affinity)];
        up_conn_start(c);
    }
    if (c == NULL || up_conn_down(c)) {
        char err[400];
        if (c == NULL)
            snprintf(err, sizeof(err), "%s", why);
        else
            up_conn_down_error(c, err, sizeof(err));
        up_task_fail(bt, err);
        for (int i = 0; i < bt->nmembers; i++)
            up_task_free(bt->members[i]);
        bt->nmembers = 0;
        up_task_free(bt);
        return;
    }
    up_lane_hold(up, bt, c);
    up_conn_enqueue(c, bt);
    up_conn_pump(c);
}

/* INFO upstream's TLS lines: the settings, and the session of the first ready connection. */
static void redis_info_tls(upstream_t *up, buf_t *out)
{
    static const char *const verify[] = { "none", "optional", "required" };
    const tls_t *t = NULL;
    char expiry[32] = "";

    buf_printf(out, "upstream_tls:%s\r\n", up->tls ? "yes" : "no");
    if (up->tls == NULL)
        return;
    for (int k = 0; k < up_nconns(up) && t == NULL; k++)
        if (up_conn_at(up, k)->state == UP_READY && up_conn_at(up, k)->w.tls != NULL)
            t = up_conn_at(up, k)->w.tls;
    if (t != NULL)
        tls_format_time(tls_peer_not_after(t), expiry, sizeof(expiry));
    buf_printf(out, "upstream_tls_verify:%s\r\nupstream_tls_protocol:%s\r\nupstream_tls_cipher:%s\r\n"
               "upstream_tls_peer_cert_not_after:%s\r\n", verify[up->tls_verify], t ? tls_protocol(t) : "",
               t ? tls_cipher(t) : "", expiry);
}

/* INFO upstream's RESP3 connections, of every node (made on first use by a RESP3 client's forwarded
 * command). */
static void redis_info_resp3(upstream_t *up, buf_t *out)
{
    int made = 0, ready = 0;
    unsigned inflight = 0;

    for (int k = 0; k < up_nconns(up); k++) {
        const up_conn_t *c = up_conn3_at(up, k);
        made += !c->starting;
        ready += c->state == UP_READY;
        inflight += c->nslots;
    }
    buf_printf(out, "upstream_resp3_connections:%d\r\nupstream_resp3_connections_ready:%d\r\n"
               "upstream_resp3_commands_in_flight:%u\r\n", made, ready, inflight);
}

static void redis_info(backend_t *b, const char *section, buf_t *out)
{
    upstream_t *up = (upstream_t *)b;
    int ready = 0;
    unsigned inflight = 0;

    if (strcmp(section, "upstream") != 0)
        return;
    for (int k = 0; k < up_nconns(up); k++) {
        ready += up_conn_at(up, k)->state == UP_READY;
        inflight += up_conn_at(up, k)->nslots;
    }
    buf_printf(out,
               "upstream_address:%s\r\nupstream_db:%d\r\nupstream_connections:%d\r\nupstream_connections_ready:%d\r\n"
               "upstream_commands_in_flight:%u\r\nupstream_commands:%llu\r\nupstream_errors:%llu\r\n"
               "upstream_timeouts:%llu\r\nupstream_reconnects:%llu\r\nupstream_latency_avg_usec:%llu\r\n"
               "upstream_latency_max_usec:%llu\r\n",
               up->name, up->db, up_nconns(up), ready, inflight, up->ncommands, up->nerrors, up->ntimeouts,
               up->nreconnects, up->latency_n ? up->latency_sum_us / up->latency_n : 0, up->latency_max_us);
    redis_info_resp3(up, out);
    redis_info_tls(up, out);
    up_ded_info(up, out);
    up_track_info(up, out);
    if (up->cluster)
        route_info(up, out);
}

static void up_free(upstream_t *up)
{
    for (int i = 0; i < up->nnodes; i++)
        up_node_free(up->nodes[i]);
    mem_free(up->nodes);
    while (up->free_tasks) {
        up_task_t *t = up->free_tasks;
        up->free_tasks = t->next;
        buf_deinit(&t->data);
        buf_deinit(&t->newval);
        buf_deinit(&t->olds);
        mem_free(t->ttls);
        mem_free(t);
    }
    while (up->free_slots) {
        up_slot_t *s = up->free_slots;
        up->free_slots = s->next;
        mem_free(s);
    }
    up_track_free(up);
    up_lane_free(up);
    buf_deinit(&up->conv);
    mem_free(up->read_buf);
    mem_free(up->slot_node);
    mem_free(up->slot_replica);
    tls_ctx_release(up->tls);
    mem_free(up->user);
    mem_free(up->password);
    mem_free(up);
}

void up_closed_one(upstream_t *up)
{
    if (--up->closing == 0)
        up_free(up);
}

static void up_timer_closed_cb(uv_handle_t *h)
{
    up_closed_one(((up_conn_t *)h->data)->up);
}

static void up_own_closed_cb(uv_handle_t *h)
{
    up_closed_one(h->data);
}

/* A pool connection at destroy: what it holds fails, its handles close (each counted in up->closing). */
static void conn_shut(upstream_t *up, up_conn_t *c)
{
    if (c->state != UP_DOWN || c->tasks != NULL)
        up_conn_fail(c, "shutting down");
    uv_timer_stop(&c->retry);
    up->closing++;
    uv_close((uv_handle_t *)&c->retry, up_timer_closed_cb);
    if (c->handle_open)
        up->closing++;          /* conn_closed_cb counts it */
}

/*
 * Fail what is still held, close every handle, and free the backend when the last one is closed (the
 * loop runs the close callbacks: at shutdown main runs it once more; after a reload it is running).
 */
static void redis_destroy(backend_t *b)
{
    upstream_t *up = (upstream_t *)b;

    up->destroying = 1;
    up->closing = 1;            /* held until every close below is issued */
    if (up->track != NULL)
        up_track_stop(up);      /* nothing more is told: the pool's connections go next */
    route_unpark(up, 1);
    up_ded_destroy(up);
    for (int k = 0; k < up_nconns(up); k++) {
        conn_shut(up, up_conn_at(up, k));
        conn_shut(up, up_conn3_at(up, k));
    }
    if (up->track != NULL) {
        up_conn_t *c = up_track_conn(up);
        up->closing++;
        uv_close((uv_handle_t *)&c->retry, up_timer_closed_cb);
        if (c->handle_open)
            up->closing++;
    }
    up->closing += 2 + up->ded_closing;     /* each dedicated connection still closing: ded_freed */
    uv_close((uv_handle_t *)&up->tick, up_own_closed_cb);
    uv_close((uv_handle_t *)&up->flush, up_own_closed_cb);
    up_closed_one(up);
}

/* Nothing in flight or queued: a backend replaced by a reload can go. */
static int redis_idle(backend_t *b)
{
    upstream_t *up = (upstream_t *)b;
    for (int k = 0; k < up_nconns(up); k++)
        if (up_conn_at(up, k)->nslots || up_conn_at(up, k)->tasks || up_conn_at(up, k)->active)
            return 0;
    for (int k = 0; k < up_nconns(up); k++)
        if (up_conn3_at(up, k)->nslots || up_conn3_at(up, k)->tasks || up_conn3_at(up, k)->active)
            return 0;
    if (up->track != NULL && up_track_conn(up)->nslots)
        return 0;
    if (up->ded_in_use > 0 || up->pins != NULL)
        return 0;                   /* its clients' dedicated connections: they end with them */
    return up->parked == NULL;
}

/* A reload changes the timeouts and the backoff of the running connections. */
static void redis_reconfigure(backend_t *b, const config_t *cfg)
{
    upstream_t *up = (upstream_t *)b;
    up->connect_timeout_us = (long long)cfg->upstream_connect_timeout * 1000;
    up->command_timeout_us = (long long)cfg->upstream_command_timeout * 1000;
    up->retry_max_ms = (unsigned)cfg->upstream_retry_max;
}

/* Prometheus: the upstream's counters, and with a cluster the redirects and each node's state. */
static void redis_metrics(backend_t *b, buf_t *out)
{
    upstream_t *up = (upstream_t *)b;
    int ready = 0;

    for (int k = 0; k < up_nconns(up); k++)
        ready += up_conn_at(up, k)->state == UP_READY;
    buf_printf(out, "# TYPE cachetoryd_upstream_commands_total counter\ncachetoryd_upstream_commands_total %llu\n"
               "# TYPE cachetoryd_upstream_errors_total counter\ncachetoryd_upstream_errors_total %llu\n"
               "# TYPE cachetoryd_upstream_timeouts_total counter\ncachetoryd_upstream_timeouts_total %llu\n"
               "# TYPE cachetoryd_upstream_reconnects_total counter\ncachetoryd_upstream_reconnects_total %llu\n"
               "# TYPE cachetoryd_upstream_connections_ready gauge\ncachetoryd_upstream_connections_ready %d\n",
               up->ncommands, up->nerrors, up->ntimeouts, up->nreconnects, ready);
    if (up->cluster)
        route_metrics(up, out);
}

static const backend_vtable_t redis_vtable = {
    .metrics = redis_metrics,
    .track = redis_track,
    .reconfigure = redis_reconfigure,
    .idle = redis_idle,
    .scheme = "redis",
    .submit = redis_submit,
    .info = redis_info,
    .destroy = redis_destroy,
    .batch = redis_batch,
    .pin = redis_pin,
    .forwards = 1,
};

static int parse_bool(const char *v, int *out)
{
    if (strcasecmp(v, "yes") == 0 || strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0)
        *out = 1;
    else if (strcasecmp(v, "no") == 0 || strcasecmp(v, "false") == 0 || strcmp(v, "0") == 0)
        *out = 0;
    else
        return -1;
    return 0;
}

#define SSL_PARAMS "ssl_cert_reqs, ssl_ca_certs, ssl_ca_path, ssl_certfile, ssl_keyfile, ssl_check_hostname"

/*
 * rediss://'s parameters, as redis-py names them, into o (pointing into u). Verification is on by default,
 * against the system's CAs unless ssl_ca_certs / ssl_ca_path are given; the host name is checked too.
 * ssl_cert_reqs=optional is Python's CERT_OPTIONAL: on a client it checks the server's certificate as
 * required does, since a server always presents one.
 */
static int parse_ssl_params(url_t *u, const char *url, tls_opts_t *o, char *err, size_t errlen)
{
    const char *v;

    memset(o, 0, sizeof(*o));
    o->verify = TLS_VERIFY_REQUIRED;
    o->check_hostname = 1;
    if ((v = url_param(u, "ssl_cert_reqs")) != NULL) {
        if (strcasecmp(v, "required") == 0 || strcasecmp(v, "cert_required") == 0)
            o->verify = TLS_VERIFY_REQUIRED;
        else if (strcasecmp(v, "optional") == 0 || strcasecmp(v, "cert_optional") == 0)
            o->verify = TLS_VERIFY_OPTIONAL;
        else if (strcasecmp(v, "none") == 0 || strcasecmp(v, "cert_none") == 0)
            o->verify = TLS_VERIFY_NONE;
        else {
            snprintf(err, errlen, "backend '%s': ssl_cert_reqs must be required, optional or none", url);
            return -1;
        }
    }
    if ((v = url_param(u, "ssl_check_hostname")) != NULL && parse_bool(v, &o->check_hostname) < 0) {
        snprintf(err, errlen, "backend '%s': ssl_check_hostname must be yes or no", url);
        return -1;
    }
    o->ca_file = (tls_file_t){ "ssl_ca_certs", url_param(u, "ssl_ca_certs") };
    o->ca_dir = (tls_file_t){ "ssl_ca_path", url_param(u, "ssl_ca_path") };
    o->cert = (tls_file_t){ "ssl_certfile", url_param(u, "ssl_certfile") };
    o->key = (tls_file_t){ "ssl_keyfile", url_param(u, "ssl_keyfile") };
    return 0;
}

/* redis://[user:password@]host[:port][/db], rediss://...?ssl_... (TLS) or redis+unix:///path[?db=N]. */
/*
 * redis+cluster://[user:password@]host:port,host:port...[?params]: the seed nodes after the first, as
 * "host:port" strings in *seeds (NULL-terminated, mem_free each and the array), and the URL with the first
 * seed only, for url_parse (a new string). A URL of another scheme: a copy of it, no seeds.
 */
static char *cluster_seeds(const char *url, char ***seeds)
{
    const char *sep = strstr(url, "://");
    *seeds = mem_calloc(1, sizeof(**seeds));
    if (sep == NULL || (strncmp(url, "redis+cluster://", 16) != 0 && strncmp(url, "rediss+cluster://", 17) != 0))
        return mem_strdup(url);
    const char *auth = sep + 3, *end = auth + strcspn(auth, "/?");
    const char *at = NULL;
    for (const char *p = auth; p < end; p++)
        if (*p == '@')
            at = p;
    const char *hosts = at ? at + 1 : auth;
    const char *comma = memchr(hosts, ',', (size_t)(end - hosts));
    if (comma == NULL)
        return mem_strdup(url);
    int n = 0;
    for (const char *p = comma; p < end;) {
        const char *q = p + 1, *next = memchr(q, ',', (size_t)(end - q));
        if (next == NULL)
            next = end;
        *seeds = mem_realloc(*seeds, (size_t)(n + 2) * sizeof(**seeds));
        (*seeds)[n] = mem_alloc((size_t)(next - q) + 1);
        memcpy((*seeds)[n], q, (size_t)(next - q));
        (*seeds)[n][next - q] = '\0';
        (*seeds)[++n] = NULL;
        p = next;
    }
    size_t head = (size_t)(comma - url), tail = strlen(end);
    char *first = mem_alloc(head + tail + 1);
    memcpy(first, url, head);
    memcpy(first + head, end, tail + 1);
    return first;
}

static void free_seeds(char **seeds)
{
    for (int i = 0; seeds && seeds[i]; i++)
        mem_free(seeds[i]);
    mem_free(seeds);
}

/* "host:port" or "[v6]:port" (port default 6379) into host (a new string) and *port. 0, or -1. */
static int split_hostport(const char *s, char **host, int *port)
{
    const char *colon = strrchr(s, ':');
    const char *h = s, *he;

    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL)
            return -1;
        h = s + 1;
        he = close;
        colon = close[1] == ':' ? close + 1 : NULL;
        if (close[1] != '\0' && colon == NULL)
            return -1;
    } else {
        he = colon ? colon : s + strlen(s);
    }
    *port = 6379;
    if (colon != NULL) {
        char *e;
        long p = strtol(colon + 1, &e, 10);
        if (colon[1] == '\0' || *e != '\0' || p <= 0 || p > 65535)
            return -1;
        *port = (int)p;
    }
    if (he == h)
        return -1;
    *host = mem_alloc((size_t)(he - h) + 1);
    memcpy(*host, h, (size_t)(he - h));
    (*host)[he - h] = '\0';
    return 0;
}

backend_t *backend_redis_create(const config_t *cfg, void *loopv, char *err, size_t errlen)
{
    url_t u;
    char why[256];
    upstream_t *up = NULL;
    long db = 0;
    tls_opts_t tls_opts;
    tls_ctx_t *tls = NULL;
    char **seeds = NULL;
    char *first = cluster_seeds(cfg->backend, &seeds);
    int rc = url_parse(&u, first, why, sizeof(why));

    mem_free(first);
    if (rc < 0) {
        free_seeds(seeds);
        snprintf(err, errlen, "backend: %s", why);
        url_free(&u);
        return NULL;
    }
    if (strcmp(u.scheme, "rediss+unix") == 0) {
        snprintf(err, errlen, "backend '%s': TLS over a unix socket is not supported: use redis+unix://",
                 cfg->backend);
        goto fail;
    }
    int is_cluster = strcmp(u.scheme, "redis+cluster") == 0 || strcmp(u.scheme, "rediss+cluster") == 0;
    int is_tls = strcmp(u.scheme, "rediss") == 0 || strcmp(u.scheme, "rediss+cluster") == 0;
    int is_unix = strcmp(u.scheme, "redis+unix") == 0 || strcmp(u.scheme, "unix") == 0;
    if (!is_tls) {
        for (int i = 0; i < u.nparams; i++) {
            if (strncmp(u.params[i].name, "ssl_", 4) == 0) {
                snprintf(err, errlen, "backend '%s': parameter '%s': ssl_* parameters need rediss:// (TLS)",
                         cfg->backend, u.params[i].name);
                goto fail;
            }
        }
    } else if (parse_ssl_params(&u, cfg->backend, &tls_opts, err, errlen) < 0) {
        goto fail;
    }
    const char *dbs = url_param(&u, "db");
    if (!is_unix && u.path[0] && strcmp(u.path, "/") != 0)
        dbs = u.path + 1;
    if (dbs != NULL) {
        char *end;
        db = strtol(dbs, &end, 10);
        if (*dbs == '\0' || *end != '\0' || db < 0 || db > 1000000) {
            snprintf(err, errlen, "backend '%s': the database must be a number (redis://host:port/N or ?db=N)",
                     cfg->backend);
            goto fail;
        }
    }
    if (is_cluster && db != 0) {
        snprintf(err, errlen, "backend '%s': a Redis Cluster has database 0 only", cfg->backend);
        goto fail;
    }
    const url_param_t *bad = url_unused_param(&u);
    if (bad != NULL) {
        snprintf(err, errlen, "backend '%s': unknown parameter '%s' (accepted: db%s)", cfg->backend, bad->name,
                 is_tls ? ", " SSL_PARAMS : "");
        goto fail;
    }
    if (is_unix ? u.path[0] == '\0' : u.host[0] == '\0') {
        snprintf(err, errlen, "backend '%s': %s", cfg->backend,
                 is_unix ? "no socket path (redis+unix:///path/to/redis.sock)" : "no host (redis://host:6379/0)");
        goto fail;
    }

    if (is_tls) {
        /* the files are read now (a bad one stops the start), the server checked at each connection */
        tls = tls_ctx_create(&tls_opts, 0, why, sizeof(why));
        if (tls == NULL) {
            snprintf(err, errlen, "backend '%s': %s", cfg->backend, why);
            goto fail;
        }
    }

    up = mem_calloc(1, sizeof(*up));
    up->base.vt = &redis_vtable;
    up->loop = loopv;
    up->tls = tls;
    up->tls_verify = is_tls ? tls_opts.verify : TLS_VERIFY_NONE;
    tls = NULL;
    up->user = u.user ? mem_strdup(u.user) : NULL;
    up->password = u.password ? mem_strdup(u.password) : NULL;
    if (cfg->upstream_password_file != NULL && cfg->upstream_password_file[0] != '\0') {
        if (up->password != NULL) {
            snprintf(err, errlen, "backend '%s': a password in the URL and upstream-password-file: give it in one "
                     "place", cfg->backend);
            up_free(up);
            goto fail;
        }
        if ((up->password = backend_read_password_file(cfg->upstream_password_file, why, sizeof(why))) == NULL) {
            snprintf(err, errlen, "%s", why);
            up_free(up);
            goto fail;
        }
    }
    up->db = (int)db;
    up->base.default_db = up->db;
    up->npool = cfg->upstream_pool_size;
    up->connect_timeout_us = (long long)cfg->upstream_connect_timeout * 1000;
    up->command_timeout_us = (long long)cfg->upstream_command_timeout * 1000;
    up->retry_max_ms = (unsigned)cfg->upstream_retry_max;
    up->ded_max = cfg->upstream_dedicated_max;
    up->read_buf = mem_alloc(UP_READ_BUF);
    /* Resolved once, at start (a name like localhost too), as redis resolves its replication master. */
    up_node_t *n = up_node_create(up, is_unix ? NULL : u.host, u.port >= 0 ? u.port : 6379, is_unix ? u.path : NULL,
                                  why, sizeof(why));
    if (n == NULL) {
        snprintf(err, errlen, "backend '%s': %s", cfg->backend, why);
        up_free(up);                    /* no handle was initialised yet (up_nodes_arm) */
        goto fail;
    }
    snprintf(up->name, sizeof(up->name), "%s", n->name);
    if (is_cluster) {
        up->cluster = 1;
        up->cross_slot_split = cfg->cluster_cross_slot_writes == CLUSTER_CROSS_SLOT_SPLIT;
        up->read_from = cfg->read_from;
        up->slot_node = mem_alloc(ROUTE_SLOTS * sizeof(*up->slot_node));
        up->slot_replica = mem_alloc(ROUTE_SLOTS * sizeof(*up->slot_replica));
        for (int i = 0; i < ROUTE_SLOTS; i++)
            up->slot_node[i] = up->slot_replica[i] = -1;
        for (int i = 0; seeds[i] != NULL; i++) {
            char *host;
            int port;
            if (split_hostport(seeds[i], &host, &port) < 0) {
                snprintf(err, errlen, "backend '%s': seed '%s' is not host:port", cfg->backend, seeds[i]);
                up_free(up);
                goto fail;
            }
            up_node_t *sn = up_node_create(up, host, port, NULL, why, sizeof(why));
            mem_free(host);
            if (sn == NULL) {
                snprintf(err, errlen, "backend '%s': %s", cfg->backend, why);
                up_free(up);
                goto fail;
            }
            size_t l = strlen(up->name);
            snprintf(up->name + l, sizeof(up->name) - l, ",%s", sn->name);
        }
    }
    free_seeds(seeds);
    seeds = NULL;
    url_free(&u);
    up_nodes_arm(up);
    uv_timer_init(up->loop, &up->tick);
    up->tick.data = up;
    uv_timer_start(&up->tick, up_tick_cb, 50, 50);
    uv_check_init(up->loop, &up->flush);
    up->flush.data = up;
    return &up->base;
fail:
    free_seeds(seeds);
    tls_ctx_release(tls);
    url_free(&u);
    return NULL;
}
