/*
 * net/server: listeners and the periodic tasks.
 */
#include "net/server.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/conn.h"
#include "net/tls.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

static void server_connection_cb(uv_stream_t *listener, int status)
{
    server_t *s = listener->data;

    if (status < 0) {
        log_warn("accept failed: %s", uv_strerror(status));
        return;
    }
    int i = (int)((stream_handle_t *)listener - s->listeners);
    conn_accept(s, listener, listener->type == UV_NAMED_PIPE, s->listener_tls[i] ? s->tls : NULL);
}

static int server_listen_tcp(server_t *s, const char *addr, int port, int tls)
{
    struct sockaddr_storage ss;
    int rc;

    if (strchr(addr, ':') != NULL)
        rc = uv_ip6_addr(addr, port, (struct sockaddr_in6 *)&ss);
    else
        rc = uv_ip4_addr(addr, port, (struct sockaddr_in *)&ss);
    if (rc < 0) {
        log_warn("bind: '%s' is not an IPv4 or IPv6 address", addr);
        return -1;
    }
    uv_tcp_t *t = &s->listeners[s->nlisteners].tcp;
    s->listener_tls[s->nlisteners] = (unsigned char)tls;
    uv_tcp_init(s->loop, t);
    t->data = s;
    s->nlisteners++;
    rc = uv_tcp_bind(t, (const struct sockaddr *)&ss, strchr(addr, ':') ? UV_TCP_IPV6ONLY : 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)t, s->cfg->tcp_backlog, server_connection_cb);
    if (rc < 0) {
        log_warn("could not listen on %s:%d: %s", addr, port, uv_strerror(rc));
        return -1;
    }
    log_notice("listening on %s:%d%s", addr, port, tls ? " (TLS)" : "");
    return 0;
}

static int server_listen_unix(server_t *s, const char *path, int perm)
{
    uv_pipe_t *p = &s->listeners[s->nlisteners].pipe;
    int rc;

    unlink(path);       /* a stale socket from an earlier run, as redis does */
    uv_pipe_init(s->loop, p, 0);
    p->data = s;
    s->nlisteners++;
    rc = uv_pipe_bind(p, path);
    if (rc == 0 && perm > 0 && chmod(path, (mode_t)perm) < 0)
        rc = -errno;
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)p, s->cfg->tcp_backlog, server_connection_cb);
    if (rc < 0) {
        log_warn("could not listen on unix socket %s: %s", path, uv_strerror(rc));
        return -1;
    }
    log_notice("listening on unix socket %s", path);
    return 0;
}

/* Close c if its TLS handshake has taken too long, or its certificate expired; an idle client's TLS
 * buffers are given back. */
static void server_check_tls(server_t *s, client_t *c, long long now)
{
    tls_t *t = c->w.tls;

    if (!tls_handshake_done(t)) {
        if (now - c->ctime_ms > s->cfg->tls_handshake_timeout) {
            log_notice("closing client id=%llu addr=%s: TLS handshake timed out after %d ms",
                       (unsigned long long)c->id, c->addr, s->cfg->tls_handshake_timeout);
            s->stats.tls_handshake_failures++;
            conn_close(c);
        }
        return;
    }
    long long expires = tls_peer_not_after(t);
    if (now - c->last_ms >= 1000 && !c->w.writing && !stream_has_output(&c->w))
        tls_release_buffers(t);
    if (expires != 0 && now / 1000 >= expires) {
        char when[32];
        tls_format_time(expires, when, sizeof(when));
        log_notice("closing client id=%llu addr=%s: client certificate expired at %s",
                   (unsigned long long)c->id, c->addr, when);
        conn_close(c);
    }
}

/* hz times a second: the caller's background work (the backend's active expiry) and, once a second,
 * idle clients and TLS clients' deadlines. */
static void server_timer_cb(uv_timer_t *t)
{
    server_t *s = t->data;
    static unsigned ticks;
    long long now = clock_refresh();

    s->cron_cb(s->cron_arg);
    if ((s->cfg->timeout > 0 || s->tls != NULL) && ++ticks % (unsigned)s->cfg->hz == 0) {
        client_t *c = s->clients;
        while (c != NULL) {
            client_t *next = c->next;
            if (s->cfg->timeout > 0 && c->npending == 0 && now - c->last_ms > (long long)s->cfg->timeout * 1000) {
                log_verbose("closing idle client id=%llu addr=%s", (unsigned long long)c->id, c->addr);
                conn_close(c);
            } else if (c->w.tls != NULL) {
                server_check_tls(s, c, now);
            }
            c = next;
        }
    }
}

/* The listener's TLS options from cfg (pointers into cfg). */
static void server_tls_opts(const config_t *cfg, tls_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->cert = (tls_file_t){ "tls-cert-file", cfg->tls_cert_file };
    o->key = (tls_file_t){ "tls-key-file", cfg->tls_key_file };
    o->key_pass = cfg->tls_key_file_pass;
    o->ca_file = (tls_file_t){ "tls-ca-cert-file", cfg->tls_ca_cert_file };
    o->ca_dir = (tls_file_t){ "tls-ca-cert-dir", cfg->tls_ca_cert_dir };
    o->verify = cfg->tls_auth_clients == TLS_AUTH_YES        ? TLS_VERIFY_REQUIRED
                : cfg->tls_auth_clients == TLS_AUTH_OPTIONAL ? TLS_VERIFY_OPTIONAL
                                                             : TLS_VERIFY_NONE;
    o->protocols = cfg->tls_protocols;
    o->ciphers = cfg->tls_ciphers;
    o->ciphersuites = cfg->tls_ciphersuites;
    o->prefer_server_ciphers = cfg->tls_prefer_server_ciphers;
    o->session_caching = cfg->tls_session_caching;
    o->session_cache_size = cfg->tls_session_cache_size;
    o->session_cache_timeout = cfg->tls_session_cache_timeout;
}

int server_tls_reload(server_t *s, const config_t *cfg, char *err, size_t errlen)
{
    tls_opts_t o;

    if (s->tls == NULL)
        return 0;
    server_tls_opts(cfg, &o);
    tls_ctx_t *ctx = tls_ctx_create(&o, 1, err, errlen);
    if (ctx == NULL)
        return -1;
    tls_ctx_release(s->tls);            /* connections made with it keep it until they go */
    s->tls = ctx;
    s->tls_reloads++;
    return 0;
}

long long server_tls_cert_not_after(const server_t *s)
{
    return tls_ctx_cert_not_after(s->tls);
}

int server_setup(server_t *s, uv_loop_t *loop, config_t *cfg, const conn_hooks_t *hooks, server_cron_cb *cron,
                 void *arg)
{
    memset(s, 0, sizeof(*s));
    s->loop = loop;
    s->cfg = cfg;
    s->hooks = *hooks;
    s->cron_cb = cron;
    s->cron_arg = arg;
    s->read_buf = mem_alloc(SERVER_READ_BUF);

    if (cfg->port > 0) {
        for (int i = 0; i < cfg->nbind; i++)
            if (server_listen_tcp(s, cfg->bind[i], cfg->port, 0) < 0)
                return -1;
    }
    if (cfg->tls_port > 0) {
        tls_opts_t o;
        char err[512];
        server_tls_opts(cfg, &o);
        s->tls = tls_ctx_create(&o, 1, err, sizeof(err));
        if (s->tls == NULL) {
            log_warn("TLS listener: %s", err);
            return -1;
        }
        for (int i = 0; i < cfg->nbind; i++)
            if (server_listen_tcp(s, cfg->bind[i], cfg->tls_port, 1) < 0)
                return -1;
    }
    if (cfg->unixsocket && cfg->unixsocket[0] && server_listen_unix(s, cfg->unixsocket, cfg->unixsocketperm) < 0)
        return -1;
    if (s->nlisteners == 0) {
        log_warn("nothing to listen on: set port or tls-port (and bind), or unixsocket");
        return -1;
    }
    uv_check_init(loop, &s->flush);
    s->flush.data = s;
    uv_timer_init(loop, &s->cron);
    s->cron.data = s;
    uv_timer_start(&s->cron, server_timer_cb, 1000 / (unsigned)cfg->hz, 1000 / (unsigned)cfg->hz);
    return 0;
}

static void server_handle_closed_cb(uv_handle_t *h)
{
    (void)h;
}

static void server_drain_cb(uv_timer_t *t)
{
    server_t *s = t->data;
    long long now = clock_refresh();

    if (s->nclients == 0 || now >= s->drain_deadline_ms) {
        if (s->nclients > 0)
            log_warn("shutdown: %u clients still had commands in flight after the timeout", s->nclients);
        uv_timer_stop(t);
        uv_stop(s->loop);
    }
}

void server_drain(server_t *s, unsigned timeout_ms)
{
    if (s->shutting_down)
        return;
    s->shutting_down = 1;
    for (int i = 0; i < s->nlisteners; i++)
        if (!uv_is_closing(&s->listeners[i].handle))
            uv_close(&s->listeners[i].handle, server_handle_closed_cb);
    client_t *c = s->clients;
    while (c != NULL) {
        client_t *next = c->next;
        conn_drain(c);
        c = next;
    }
    s->drain_deadline_ms = clock_refresh() + timeout_ms;
    uv_timer_init(s->loop, &s->drain);
    s->drain.data = s;
    uv_timer_start(&s->drain, server_drain_cb, 0, 20);
}

void server_teardown(server_t *s)
{
    for (int i = 0; i < s->nlisteners; i++)
        if (!uv_is_closing(&s->listeners[i].handle))
            uv_close(&s->listeners[i].handle, server_handle_closed_cb);
    if (s->cron.loop != NULL && !uv_is_closing((uv_handle_t *)&s->cron))
        uv_close((uv_handle_t *)&s->cron, server_handle_closed_cb);
    if (s->flush.loop != NULL && !uv_is_closing((uv_handle_t *)&s->flush)) {
        conn_flush_pending(s);
        uv_close((uv_handle_t *)&s->flush, server_handle_closed_cb);
    }
    while (s->clients != NULL)
        conn_close(s->clients);
    if (s->cfg->unixsocket && s->cfg->unixsocket[0])
        unlink(s->cfg->unixsocket);
}

void server_free(server_t *s)
{
    mem_free(s->read_buf);
    s->read_buf = NULL;
    tls_ctx_release(s->tls);
    s->tls = NULL;
}
