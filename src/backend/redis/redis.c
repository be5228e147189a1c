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
 * Connections (pool.c): a pool of upstream-pool-size connections, each pipelined. A client's ops always
 * use the same connection (affinity % pool size), so they reach Redis in the order the client sent them.
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

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "url.h"
#include "util/mem.h"

static void redis_submit(backend_t *b, const backend_op_t *op, backend_cb *cb, void *ctx)
{
    upstream_t *up = (upstream_t *)b;
    up_conn_t *c = &up->pool[up->batching ? up->batch_affinity % (uint64_t)up->npool
                                          : op->affinity % (uint64_t)up->npool];

    if (wire_op(op->code) == NULL) {            /* an opcode without a row in wire.c's table */
        backend_result_t res = { .status = BE_ERR, .err = "ERR upstream: this operation has no upstream form" };
        cb(ctx, &res);
        return;
    }
    if (c->state == UP_DOWN) {
        char err[320];
        snprintf(err, sizeof(err), "ERR upstream %s: %s", up->name, c->last_error[0] ? c->last_error : "not connected");
        backend_result_t res = { .status = BE_ERR, .err = err };
        up->nerrors++;
        cb(ctx, &res);
        return;
    }
    if (up->batching) {
        up_task_t *t = up_task_create(up, op, cb, ctx, wire_needs_tx(op) ? TASK_TX : TASK_PLAIN);
        up_task_own_op(t, op);
        up_task_t *bt = up->batch;
        bt->reads |= t->kind == TASK_TX;
        bt->members = mem_realloc(bt->members, (size_t)(bt->nmembers + 1) * sizeof(*bt->members));
        bt->members[bt->nmembers++] = t;
        return;
    }
    if (wire_needs_tx(op) || op->code == BE_SELECT) {
        /* a client's SELECT waits its turn among its commands; it answers OK at once where the database
         * is known on the connection, else when Redis has answered a SELECT of it */
        up_task_t *t = up_task_create(up, op, cb, ctx, op->code == BE_SELECT ? TASK_SELECT : TASK_TX);
        up_task_own_op(t, op);
        up_conn_enqueue(c, t);
        up_conn_pump(c);
        return;
    }
    up_task_t *t = up_task_create(up, op, cb, ctx, TASK_PLAIN);
    if (c->state == UP_READY && c->active == NULL && c->tasks == NULL && up_conn_db_ready(c, op->db)) {
        up_conn_send_op(c, t, SLOT_RESULT, op->db, op);   /* the fast path: straight to the wire */
        t->sent = 1;
        return;
    }
    /* behind a transaction, a SELECT awaited, or before the connection is ready: keep the command's bytes */
    wire_put(&t->data, op);
    up_conn_enqueue(c, t);
}

static void redis_batch(backend_t *b, int begin, uint64_t affinity, backend_cb *cb, void *ctx)
{
    upstream_t *up = (upstream_t *)b;

    if (begin) {
        backend_op_t none = { .code = BE_COMMAND };
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
    if (bt->nmembers == 0) {
        up_batch_outcome(bt, NULL);
        up_task_free(bt);
        return;
    }
    up_conn_t *c = &up->pool[affinity % (uint64_t)up->npool];
    bt->op.db = bt->members[0]->op.db;
    if (c->state == UP_DOWN) {
        char err[320];
        snprintf(err, sizeof(err), "ERR upstream %s: %s", up->name, c->last_error[0] ? c->last_error : "not connected");
        up_task_fail(bt, err);
        for (int i = 0; i < bt->nmembers; i++)
            up_task_free(bt->members[i]);
        bt->nmembers = 0;
        up_task_free(bt);
        return;
    }
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
    for (int i = 0; i < up->npool && t == NULL; i++)
        if (up->pool[i].state == UP_READY && up->pool[i].w.tls != NULL)
            t = up->pool[i].w.tls;
    if (t != NULL)
        tls_format_time(tls_peer_not_after(t), expiry, sizeof(expiry));
    buf_printf(out, "upstream_tls_verify:%s\r\nupstream_tls_protocol:%s\r\nupstream_tls_cipher:%s\r\n"
               "upstream_tls_peer_cert_not_after:%s\r\n", verify[up->tls_verify], t ? tls_protocol(t) : "",
               t ? tls_cipher(t) : "", expiry);
}

static void redis_info(backend_t *b, const char *section, buf_t *out)
{
    upstream_t *up = (upstream_t *)b;
    int ready = 0;
    unsigned inflight = 0;

    if (strcmp(section, "upstream") != 0)
        return;
    for (int i = 0; i < up->npool; i++) {
        ready += up->pool[i].state == UP_READY;
        inflight += up->pool[i].nslots;
    }
    buf_printf(out,
               "upstream_address:%s\r\nupstream_db:%d\r\nupstream_connections:%d\r\nupstream_connections_ready:%d\r\n"
               "upstream_commands_in_flight:%u\r\nupstream_commands:%llu\r\nupstream_errors:%llu\r\n"
               "upstream_timeouts:%llu\r\nupstream_reconnects:%llu\r\nupstream_latency_avg_usec:%llu\r\n"
               "upstream_latency_max_usec:%llu\r\n",
               up->name, up->db, up->npool, ready, inflight, up->ncommands, up->nerrors, up->ntimeouts,
               up->nreconnects, up->latency_n ? up->latency_sum_us / up->latency_n : 0, up->latency_max_us);
    redis_info_tls(up, out);
}

static void up_free(upstream_t *up)
{
    for (int i = 0; i < up->npool; i++)
        up_conn_deinit(&up->pool[i]);
    while (up->free_tasks) {
        up_task_t *t = up->free_tasks;
        up->free_tasks = t->next;
        buf_deinit(&t->data);
        buf_deinit(&t->newval);
        buf_deinit(&t->olds);
        mem_free(t);
    }
    while (up->free_slots) {
        up_slot_t *s = up->free_slots;
        up->free_slots = s->next;
        mem_free(s);
    }
    mem_free(up->pool);
    mem_free(up->read_buf);
    tls_ctx_release(up->tls);
    mem_free(up->host);
    mem_free(up->path);
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

/*
 * Fail what is still held, close every handle, and free the backend when the last one is closed (the
 * loop runs the close callbacks: at shutdown main runs it once more; after a reload it is running).
 */
static void redis_destroy(backend_t *b)
{
    upstream_t *up = (upstream_t *)b;

    up->destroying = 1;
    up->closing = 1;            /* held until every close below is issued */
    for (int i = 0; i < up->npool; i++) {
        up_conn_t *c = &up->pool[i];
        if (c->state != UP_DOWN)
            up_conn_fail(c, "shutting down");
        uv_timer_stop(&c->retry);
        up->closing++;
        uv_close((uv_handle_t *)&c->retry, up_timer_closed_cb);
        if (c->handle_open)
            up->closing++;      /* conn_closed_cb counts it */
    }
    up->closing += 2;
    uv_close((uv_handle_t *)&up->tick, up_own_closed_cb);
    uv_close((uv_handle_t *)&up->flush, up_own_closed_cb);
    up_closed_one(up);
}

/* Nothing in flight or queued: a backend replaced by a reload can go. */
static int redis_idle(backend_t *b)
{
    upstream_t *up = (upstream_t *)b;
    for (int i = 0; i < up->npool; i++)
        if (up->pool[i].nslots || up->pool[i].tasks || up->pool[i].active)
            return 0;
    return 1;
}

/* A reload changes the timeouts and the backoff of the running connections. */
static void redis_reconfigure(backend_t *b, const config_t *cfg)
{
    upstream_t *up = (upstream_t *)b;
    up->connect_timeout_us = (long long)cfg->upstream_connect_timeout * 1000;
    up->command_timeout_us = (long long)cfg->upstream_command_timeout * 1000;
    up->retry_max_ms = (unsigned)cfg->upstream_retry_max;
}

static const backend_vtable_t redis_vtable = {
    .reconfigure = redis_reconfigure,
    .idle = redis_idle,
    .scheme = "redis",
    .submit = redis_submit,
    .info = redis_info,
    .destroy = redis_destroy,
    .batch = redis_batch,
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
backend_t *backend_redis_create(const config_t *cfg, void *loopv, char *err, size_t errlen)
{
    url_t u;
    char why[256];
    upstream_t *up = NULL;
    long db = 0;
    tls_opts_t tls_opts;
    tls_ctx_t *tls = NULL;

    if (url_parse(&u, cfg->backend, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "backend: %s", why);
        url_free(&u);
        return NULL;
    }
    if (strcmp(u.scheme, "rediss+unix") == 0) {
        snprintf(err, errlen, "backend '%s': TLS over a unix socket is not supported: use redis+unix://",
                 cfg->backend);
        goto fail;
    }
    int is_tls = strcmp(u.scheme, "rediss") == 0;
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
    up->tls = tls;
    up->tls_verify = is_tls ? tls_opts.verify : TLS_VERIFY_NONE;
    tls = NULL;
    up->loop = loopv;
    if (is_unix) {
        up->path = mem_strdup(u.path);
        snprintf(up->name, sizeof(up->name), "%s", u.path);
    } else {
        /* Resolved once, at start (a name like localhost too), as redis resolves its replication master. */
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai = NULL;
        char port[16];
        up->port = u.port >= 0 ? u.port : 6379;
        snprintf(port, sizeof(port), "%d", up->port);
        int gai = getaddrinfo(u.host, port, &hints, &ai);
        if (gai != 0 || ai == NULL) {
            snprintf(err, errlen, "backend '%s': cannot resolve '%s': %s", cfg->backend, u.host,
                     gai ? gai_strerror(gai) : "no address");
            tls_ctx_release(up->tls);
            mem_free(up);
            goto fail;
        }
        memcpy(&up->addr, ai->ai_addr, ai->ai_addrlen);
        freeaddrinfo(ai);
        up->host = mem_strdup(u.host);
        snprintf(up->name, sizeof(up->name), "%s:%d", up->host, up->port);
    }
    up->user = u.user ? mem_strdup(u.user) : NULL;
    up->password = u.password ? mem_strdup(u.password) : NULL;
    up->db = (int)db;
    up->base.default_db = up->db;
    up->npool = cfg->upstream_pool_size;
    up->connect_timeout_us = (long long)cfg->upstream_connect_timeout * 1000;
    up->command_timeout_us = (long long)cfg->upstream_command_timeout * 1000;
    up->retry_max_ms = (unsigned)cfg->upstream_retry_max;
    up->read_buf = mem_alloc(UP_READ_BUF);
    up->pool = mem_calloc((size_t)up->npool, sizeof(*up->pool));
    url_free(&u);

    uv_timer_init(up->loop, &up->tick);
    up->tick.data = up;
    uv_timer_start(&up->tick, up_tick_cb, 50, 50);
    uv_check_init(up->loop, &up->flush);
    up->flush.data = up;
    for (int i = 0; i < up->npool; i++)
        up_conn_init(&up->pool[i], up, i);
    return &up->base;
fail:
    tls_ctx_release(tls);
    url_free(&u);
    return NULL;
}
