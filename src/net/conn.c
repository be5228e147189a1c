/*
 * net/conn: a client connection's life — accept, read and parse, hand each command to the command
 * layer (conn_hooks_t.command_cb), write, close.
 *
 * Reading: a client with no partial command reads into the server's shared 64 KB buffer; complete
 * commands are executed straight from it and only an unfinished tail is copied into the client's own
 * query buffer. An idle client therefore holds no input buffer at all, and the common case copies
 * nothing.
 *
 * Writing: the replies of one read batch accumulate in c->w.out and leave in one write, through the
 * write stream (net/stream.h: uv_try_write() first, uv_write() for the rest, in pieces below 4 GB).
 * Output above client-output-buffer-limit closes the client: one that stops reading cannot grow our
 * memory without bound.
 */
#include "net/conn.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "net/server.h"
#include "net/tls.h"
#include "resp/reply.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/uvbuf.h"

#define CLIENT_CLOSED      (1u << 8)    /* close_cb ran: the handle is gone */
#define CLIENT_PROCESSING  (1u << 9)    /* inside a read batch: flush at its end */
#define CLIENT_HAD_INPUT   (1u << 10)   /* some input arrived (a TLS hello on the plain port comes first) */
#define CLIENT_TLS_DONE    (1u << 11)   /* its TLS handshake completed */

#define QBUF_READ_MIN      (16 * 1024)
#define QBUF_READ_MAX      (4 * 1024 * 1024)
#define FREE_REQS_MAX      16

static void conn_flush(client_t *c);
static void conn_flush_pending_cb(uv_check_t *h);
static void conn_resume(client_t *c);
static void conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void conn_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void req_free(client_t *c, req_t *r)
{
    c->srv->hooks.req_recycle_cb(r, 1);
    buf_deinit(&r->out);
    mem_free(r);
}

static void conn_free(client_t *c)
{
    req_t *r;

    if (!(c->flags & CLIENT_CLOSED) || c->npending > 0 || c->in_flush_list)
        return;
    while ((r = c->free_reqs) != NULL) {
        c->free_reqs = r->next;
        req_free(c, r);
    }
    c->srv->hooks.free_cb(c);
    buf_deinit(&c->qbuf);
    stream_deinit(&c->w);
    resp_parse_deinit(&c->parser);
    mem_free(c->argv);
    mem_free(c);
}

static void conn_close_cb(uv_handle_t *h)
{
    client_t *c = h->data;
    c->flags |= CLIENT_CLOSED;
    conn_free(c);
}

void conn_close(client_t *c)
{
    server_t *s = c->srv;

    if (c->flags & CLIENT_CLOSING)
        return;
    c->flags |= CLIENT_CLOSING;
    if (c->closing_cb != NULL) {
        void (*cb)(client_t *) = c->closing_cb;
        c->closing_cb = NULL;
        cb(c);
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        s->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nclients--;
    stream_read_stop(&c->w);
    stream_close_notify(&c->w);
    uv_close(&c->h.handle, conn_close_cb);
}

void conn_close_after_reply(client_t *c)
{
    c->flags |= CLIENT_CLOSE_AFTER_REPLY;
}

void conn_drain(client_t *c)
{
    if (c->flags & CLIENT_CLOSING)
        return;
    stream_read_stop(&c->w);
    c->flags |= CLIENT_CLOSE_AFTER_REPLY;
    conn_flush(c);
}

req_t *req_create(client_t *c)
{
    req_t *r = c->free_reqs;

    if (r != NULL) {
        c->free_reqs = r->next;
    } else {
        r = mem_calloc(1, c->srv->hooks.req_size);
        buf_init(&r->out);
    }
    r->next = NULL;
    r->c = c;
    r->done = 0;
    r->blocking = 0;
    r->mute = 0;
    if (c->tail) {
        c->tail->next = r;
    } else {
        c->head = r;
        r->at = c->w.out.len;
    }
    c->tail = r;
    c->npending++;
    return r;
}

/* r's reply has been released (reply: its bytes, valid during the hook only; empty: dropped). */
static void req_recycle(client_t *c, req_t *r, int depth, bytes_t reply)
{
    r->reply = reply;
    if (depth >= FREE_REQS_MAX) {
        req_free(c, r);
        return;
    }
    c->srv->hooks.req_recycle_cb(r, 0);
    r->reply = (bytes_t){ NULL, 0 };
    buf_reset(&r->out);
    buf_shrink(&r->out, 0);
    r->next = c->free_reqs;
    c->free_reqs = r;
}

/*
 * Replies that complete outside a read batch (an upstream answered) are written once per loop turn,
 * not once per reply: an upstream read of 16 pipelined replies makes one write to the client.
 */
static void conn_flush_later(client_t *c)
{
    server_t *s = c->srv;

    if (c->in_flush_list)
        return;
    c->in_flush_list = 1;
    c->flush_next = s->flush_list;
    s->flush_list = c;
    if (!s->flush_active) {
        uv_check_start(&s->flush, conn_flush_pending_cb);
        s->flush_active = 1;
    }
}

void conn_flush_pending(server_t *s)
{
    client_t *list = s->flush_list;

    s->flush_list = NULL;
    uv_check_stop(&s->flush);
    s->flush_active = 0;
    while (list != NULL) {
        client_t *c = list;
        list = c->flush_next;
        c->in_flush_list = 0;
        if (c->flags & CLIENT_CLOSING)
            conn_free(c);
        else
            conn_flush(c);
    }
}

static void conn_flush_pending_cb(uv_check_t *h)
{
    conn_flush_pending(h->data);
}

/* A command may call this before it submits work that completes it: if that work completes it at once,
 * nothing is held (req_done). */
void req_hold(req_t *r)
{
    if (!r->blocking) {
        r->blocking = 1;
        r->c->nholding++;
    }
    r->c->flags |= CLIENT_BLOCKED;
}

/*
 * Mark r complete. If it is the oldest command in flight, release it and every following command that
 * has completed too, moving their replies (written aside, in their own buffers) to the output in order.
 * Outside a read batch (a backend answered later), flush right away.
 */
void req_done(req_t *r)
{
    client_t *c = r->c;
    int nfree = 0, resume = 0;

    if (r->blocking && --c->nholding == 0) {
        /* The last command holding the others. Completed while the client's input is being processed
         * (at once, within its own dispatch): that processing goes on by itself. */
        if (c->flags & CLIENT_PROCESSING)
            c->flags &= ~CLIENT_BLOCKED;
        else
            resume = 1;
    }
    r->done = 1;
    r->blocking = 0;
    if (c->head != r) {
        if (resume && !(c->flags & CLIENT_CLOSING))
            conn_resume(c);
        return;
    }
    for (req_t *f = c->free_reqs; f != NULL && nfree < FREE_REQS_MAX; f = f->next)
        nfree++;
    while (c->head != NULL && c->head->done) {
        req_t *h = c->head;
        bytes_t reply = { NULL, 0 };
        c->head = h->next;
        if (c->head == NULL)
            c->tail = NULL;
        c->npending--;
        if (h->mute) {
            /* dropped */
        } else if (h != r) {
            /* completed behind another: its reply waited in its own buffer */
            reply = (bytes_t){ h->out.data, h->out.len };
            if (h->out.len > 0 && !(c->flags & CLIENT_CLOSING))
                buf_append(&c->w.out, h->out.data, h->out.len);
        } else if (h->at != REQ_AT_GONE && h->at <= c->w.out.len) {
            /* written straight into the output, the last thing there */
            reply = (bytes_t){ c->w.out.data + h->at, c->w.out.len - h->at };
        }
        req_recycle(c, h, nfree++, reply);
    }
    if (c->head != NULL)
        c->head->at = c->w.out.len;
    if (c->flags & CLIENT_CLOSING)
        conn_free(c);
    else if (resume)
        conn_resume(c);
    else if (!(c->flags & CLIENT_PROCESSING))
        conn_flush_later(c);
}

/* The write in flight ended: a failure closes the client; else send what came meanwhile. */
static void conn_written_cb(stream_t *w, int status)
{
    client_t *c = w->handle->data;

    if (status < 0) {
        conn_close(c);
        return;
    }
    if (!(c->flags & CLIENT_CLOSING))
        conn_flush(c);
}

static void conn_output_over_limit(client_t *c)
{
    log_notice("closing client id=%llu addr=%s: output of %zu bytes is over client-output-buffer-limit",
               (unsigned long long)c->id, c->addr, stream_pending(&c->w));
    c->srv->stats.output_limit_disconnections++;
    conn_close(c);
}

/*
 * Send c->w.out: as much as the socket takes now, the rest through uv_write. Enforces the output limit
 * and closes a client whose last reply (QUIT, protocol error) has left.
 */
static void conn_flush(client_t *c)
{
    long long limit = c->srv->cfg->client_output_buffer_limit;

    size_t before = c->w.out.len;

    if (c->flags & CLIENT_CLOSING)
        return;
    if (stream_flush(&c->w) < 0) {
        conn_close(c);
        return;
    }
    if (c->head != NULL && c->w.out.len < before)       /* the output went whole (net/stream.h) */
        c->head->at = c->head->at == before ? 0 : REQ_AT_GONE;    /* nothing of it yet, or its start left */
    if (limit > 0 && stream_pending(&c->w) > (unsigned long long)limit) {
        conn_output_over_limit(c);
        return;
    }
    if ((c->flags & CLIENT_CLOSE_AFTER_REPLY) && !c->w.writing && !stream_has_output(&c->w) && c->npending == 0)
        conn_close(c);
}

/* Give libuv room to read into: the shared buffer, or the tail of this client's partial command. */
static void conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    client_t *c = h->data;

    if (c->qbuf.len == 0) {
        *buf = uv_buf_init(c->srv->read_buf, SERVER_READ_BUF);
        return;
    }
    size_t want = QBUF_READ_MIN;
    if (c->parser.need > c->qbuf.len) {
        size_t missing = c->parser.need - c->qbuf.len;
        want = missing < QBUF_READ_MAX ? (missing > want ? missing : want) : QBUF_READ_MAX;
    }
    buf_reserve(&c->qbuf, want);
    *buf = uvbuf_piece(c->qbuf.data + c->qbuf.len, c->qbuf.cap - c->qbuf.len);
}

/*
 * Run every complete command in buf[0..len). Returns the bytes consumed; the rest is the start of a
 * command not yet complete. A protocol error is answered (in order, after the replies before it) and
 * the client closes once that reply is out.
 */
static size_t conn_process(client_t *c, char *buf, size_t len)
{
    size_t off = 0;
    unsigned long long limit = (unsigned long long)c->srv->cfg->client_output_buffer_limit;

    while (off < len && !(c->flags & (CLIENT_CLOSING | CLIENT_CLOSE_AFTER_REPLY | CLIENT_BLOCKED))) {
        /* The output limit holds after every command, not only per batch: one read of pipelined GETs
         * of a large value could otherwise build hundreds of MB of replies before the check. */
        if (limit > 0 && stream_pending(&c->w) > limit) {
            conn_output_over_limit(c);
            return len;
        }
        int rc = resp_parse(&c->parser, buf + off, len - off);
        if (rc == RESP_AGAIN)
            break;
        if (rc == RESP_ERROR) {
            req_t *r = req_create(c);
            reply_error(req_out(r), c->parser.err);
            log_verbose("protocol error from client id=%llu addr=%s: %s", (unsigned long long)c->id,
                        c->addr, c->parser.err);
            req_done(r);
            conn_close_after_reply(c);
            return len;
        }
        size_t argc = c->parser.argc;
        if (argc > c->argv_cap) {
            c->argv_cap = argc < 8 ? 8 : argc;
            c->argv = mem_realloc(c->argv, c->argv_cap * sizeof(*c->argv));
        }
        for (size_t i = 0; i < argc; i++)
            c->argv[i] = (bytes_t){ buf + off + c->parser.argv[i].off, c->parser.argv[i].len };
        off += c->parser.consumed;
        resp_parse_next(&c->parser);
        if (argc > 0)
            c->srv->hooks.command_cb(c, (int)argc, c->argv);
    }
    return off;
}

static void conn_query_over_limit(client_t *c)
{
    log_notice("closing client id=%llu addr=%s: query buffer of %zu bytes is over client-query-buffer-limit",
               (unsigned long long)c->id, c->addr, c->qbuf.len);
    c->srv->stats.query_limit_disconnections++;
    c->flags &= ~CLIENT_PROCESSING;
    conn_close(c);
}

/* A TLS client's session failed or its handshake did (UV_EPROTO from the stream): say why, once. */
static void conn_tls_failed(client_t *c)
{
    if (!(c->flags & CLIENT_TLS_DONE)) {
        c->srv->stats.tls_handshake_failures++;
        log_notice("TLS handshake failed: client id=%llu addr=%s: %s", (unsigned long long)c->id, c->addr,
                   stream_error(&c->w));
    } else {
        log_notice("closing TLS client id=%llu addr=%s: %s", (unsigned long long)c->id, c->addr,
                   stream_error(&c->w));
    }
}

/*
 * The first bytes on the plain port are a TLS record header (handshake, version 3.x): a TLS client on the
 * wrong port. Its bytes would be read as an inline command and answered in plain text it cannot read.
 */
static int conn_tls_on_plain_port(client_t *c, const char *p, ssize_t n)
{
    if ((c->flags & (CLIENT_HAD_INPUT | CLIENT_TLS | CLIENT_UNIX)) || n < 3 || p[0] != 0x16 || p[1] != 0x03)
        return 0;
    if (c->srv->cfg->tls_port > 0)
        log_notice("TLS handshake on the plain port from client id=%llu addr=%s: closing; TLS clients connect "
                   "to tls-port %d", (unsigned long long)c->id, c->addr, c->srv->cfg->tls_port);
    else
        log_notice("TLS handshake on the plain port from client id=%llu addr=%s: closing; this server has no "
                   "TLS listener (tls-port)", (unsigned long long)c->id, c->addr);
    return 1;
}

static void conn_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    client_t *c = stream->data;
    server_t *s = c->srv;

    if ((c->flags & (CLIENT_TLS | CLIENT_TLS_DONE)) == CLIENT_TLS && c->w.tls != NULL &&
        tls_handshake_done(c->w.tls)) {
        c->flags |= CLIENT_TLS_DONE;
        s->stats.tls_handshakes++;
    }
    if (nread < 0) {
        if (nread == UV_EPROTO && (c->flags & CLIENT_TLS)) {
            conn_tls_failed(c);
        } else if ((c->flags & (CLIENT_TLS | CLIENT_TLS_DONE)) == CLIENT_TLS) {
            /* gone before its handshake finished: a probe that only connects is not worth a log line */
            s->stats.tls_handshake_failures++;
            if (nread != UV_EOF)
                log_notice("TLS handshake failed: client id=%llu addr=%s: %s", (unsigned long long)c->id,
                           c->addr, uv_strerror((int)nread));
        }
        conn_close(c);
        return;
    }
    if (nread == 0)
        return;
    if (conn_tls_on_plain_port(c, buf->base, nread)) {
        conn_close(c);
        return;
    }
    c->flags |= CLIENT_HAD_INPUT;
    s->stats.net_input_bytes += (unsigned long long)nread;
    c->last_ms = clock_refresh();
    c->flags |= CLIENT_PROCESSING;
    if (buf->base == s->read_buf) {
        size_t used = conn_process(c, buf->base, (size_t)nread);
        if (used < (size_t)nread && !(c->flags & (CLIENT_CLOSING | CLIENT_CLOSE_AFTER_REPLY)))
            buf_append(&c->qbuf, buf->base + used, (size_t)nread - used);
    } else {
        c->qbuf.len += (size_t)nread;
        if ((long long)c->qbuf.len > s->cfg->client_query_buffer_limit) {
            conn_query_over_limit(c);
            return;
        }
        size_t used = conn_process(c, c->qbuf.data, c->qbuf.len);
        buf_consume(&c->qbuf, used);
    }
    c->flags &= ~CLIENT_PROCESSING;
    if (c->flags & CLIENT_CLOSING)
        return;
    if (c->flags & CLIENT_BLOCKED)
        stream_read_stop(&c->w);        /* input waits in the socket until the command completes */
    if (c->flags & CLIENT_CLOSE_AFTER_REPLY) {
        buf_deinit(&c->qbuf);
        stream_read_stop(&c->w);
    } else if (c->qbuf.len == 0 && c->qbuf.cap > 0) {
        buf_deinit(&c->qbuf);
    } else if ((long long)c->qbuf.len > s->cfg->client_query_buffer_limit) {
        conn_query_over_limit(c);
        return;
    }
    conn_flush(c);
}

/*
 * A command that held the client's input (its values went to the thread pool) has completed: run the
 * commands that arrived meanwhile, then read again.
 */
static void conn_resume(client_t *c)
{
    c->flags &= ~CLIENT_BLOCKED;
    c->flags |= CLIENT_PROCESSING;
    if (c->qbuf.len > 0) {
        size_t used = conn_process(c, c->qbuf.data, c->qbuf.len);
        buf_consume(&c->qbuf, used);
    }
    c->flags &= ~CLIENT_PROCESSING;
    if (c->flags & CLIENT_CLOSING)
        return;
    if (!(c->flags & (CLIENT_BLOCKED | CLIENT_CLOSE_AFTER_REPLY)))
        stream_read_start(&c->w, conn_alloc_cb, conn_read_cb);   /* TLS: delivers what it holds */
    if (c->flags & CLIENT_CLOSING)
        return;
    conn_flush(c);
}

static void conn_format_addr(const struct sockaddr_storage *ss, char *out, size_t n)
{
    char ip[64] = "?";
    int port = 0;

    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        uv_ip4_name(a, ip, sizeof(ip));
        port = ntohs(a->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(a, ip, sizeof(ip));
        port = ntohs(a->sin6_port);
    }
    snprintf(out, n, "%s:%d", ip, port);
}

/* Refuse a client over maxclients as redis does: the error, then close. Best effort, never blocks. */
static void conn_refuse(client_t *c)
{
    static const char msg[] = "-ERR max number of clients reached\r\n";
    uv_buf_t b = uv_buf_init((char *)msg, sizeof(msg) - 1);

    uv_try_write(&c->h.stream, &b, 1);
    c->flags |= CLIENT_CLOSING;
    uv_close(&c->h.handle, conn_close_cb);
}

void conn_accept(server_t *s, uv_stream_t *listener, int is_unix, tls_ctx_t *tls)
{
    client_t *c = mem_calloc(1, sizeof(*c));

    c->srv = s;
    c->h.handle.data = c;
    stream_init(&c->w, &c->h.stream, conn_written_cb, 1, &s->stats.net_output_bytes);
    if (is_unix)
        uv_pipe_init(s->loop, &c->h.pipe, 0);
    else
        uv_tcp_init(s->loop, &c->h.tcp);
    c->h.handle.data = c;
    s->stats.total_connections++;
    if (uv_accept(listener, &c->h.stream) < 0) {
        c->flags |= CLIENT_CLOSING;
        uv_close(&c->h.handle, conn_close_cb);
        return;
    }
    if (s->nclients >= (unsigned)s->cfg->maxclients) {
        s->stats.rejected_connections++;
        if (tls != NULL) {              /* its hello expects TLS: no plain-text error */
            c->flags |= CLIENT_CLOSING;
            uv_close(&c->h.handle, conn_close_cb);
            return;
        }
        conn_refuse(c);
        return;
    }
    if (tls != NULL) {
        stream_set_tls(&c->w, tls_create(tls, NULL));
        c->flags |= CLIENT_TLS;
    }
    if (is_unix) {
        c->flags |= CLIENT_UNIX;
        snprintf(c->addr, sizeof(c->addr), "%s:0", s->cfg->unixsocket ? s->cfg->unixsocket : "");
        snprintf(c->laddr, sizeof(c->laddr), "%s:0", s->cfg->unixsocket ? s->cfg->unixsocket : "");
    } else {
        struct sockaddr_storage ss;
        int len = sizeof(ss);
        uv_tcp_nodelay(&c->h.tcp, 1);
        if (s->cfg->tcp_keepalive > 0)
            uv_tcp_keepalive(&c->h.tcp, 1, (unsigned)s->cfg->tcp_keepalive);
        if (uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &len) == 0)
            conn_format_addr(&ss, c->addr, sizeof(c->addr));
        len = sizeof(ss);
        if (uv_tcp_getsockname(&c->h.tcp, (struct sockaddr *)&ss, &len) == 0)
            conn_format_addr(&ss, c->laddr, sizeof(c->laddr));
    }
    c->id = ++s->next_client_id;
    resp_parse_init(&c->parser);
    c->parser.max_bulk_len = s->cfg->proto_max_bulk_len;
    c->ctime_ms = c->last_ms = clock_ms();
    s->hooks.open_cb(c);
    c->next = s->clients;
    if (s->clients)
        s->clients->prev = c;
    s->clients = c;
    s->nclients++;
    if (stream_read_start(&c->w, conn_alloc_cb, conn_read_cb) < 0)
        conn_close(c);
}

void conn_facts(const client_t *c, conn_facts_t *f)
{
    long long now = clock_ms();

    f->age_s = (now - c->ctime_ms) / 1000;
    f->idle_s = (now - c->last_ms) / 1000;
    f->qbuf = c->qbuf.len;
    f->qbuf_free = c->qbuf.cap - c->qbuf.len;
    f->rbs = c->qbuf.cap;
    f->omem = c->w.out.len + c->w.wbuf.len;
    f->tot_mem = sizeof(*c) + c->qbuf.cap + c->w.out.cap + c->w.wbuf.cap + c->w.tout.cap;
    f->close_after_reply = (c->flags & CLIENT_CLOSE_AFTER_REPLY) != 0;
}

client_t *conn_first(const server_t *s)
{
    return s->clients;
}

unsigned conn_count(const server_t *s)
{
    return s->nclients;
}

unsigned conn_tls_count(const server_t *s)
{
    unsigned n = 0;
    for (const client_t *c = s->clients; c != NULL; c = c->next)
        if (c->flags & CLIENT_TLS)
            n++;
    return n;
}

const conn_stats_t *conn_stats(const server_t *s)
{
    return &s->stats;
}

void conn_stats_reset(server_t *s)
{
    memset(&s->stats, 0, sizeof(s->stats));
}
