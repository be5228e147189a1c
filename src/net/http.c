/* net/http: the metrics endpoint's HTTP responder (see http.h). */
#include "net/http.h"

#include <stdio.h>
#include <string.h>

#include "net/stream.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

#define HTTP_HEAD_MAX 8192

typedef struct http_conn {
    uv_tcp_t tcp;
    stream_t w;                         /* the answer, sent through the one write path */
    struct http_conn *prev, *next;   /* the open connections, oldest first */
    long long deadline_ms;              /* closed then, answered or not */
    char head[HTTP_HEAD_MAX];
    size_t len;
    int answered;
} http_conn_t;

static uv_tcp_t http_listener;
static uv_timer_t http_timer;        /* closes the connections past their deadline */
static int http_on;
static http_conn_t *http_oldest, *http_newest;
static unsigned http_nconns;
static http_page_cb *http_page;
static void *http_page_arg;

static void http_closed_cb(uv_handle_t *h)
{
    http_conn_t *m = h->data;
    stream_deinit(&m->w);
    mem_free(m);
}

/* Unlink m at once (it no longer counts against the limit) and free it once its handle has closed. */
static void http_close(http_conn_t *m)
{
    if (uv_is_closing((uv_handle_t *)&m->tcp))
        return;
    if (m->prev)
        m->prev->next = m->next;
    else
        http_oldest = m->next;
    if (m->next)
        m->next->prev = m->prev;
    else
        http_newest = m->prev;
    http_nconns--;
    uv_close((uv_handle_t *)&m->tcp, http_closed_cb);
}

/* Every HTTP_SWEEP_MS: close the connections whose deadline passed (the list is in deadline order). */
static void http_sweep_cb(uv_timer_t *t)
{
    long long now = clock_refresh();
    while (http_oldest != NULL && http_oldest->deadline_ms <= now)
        http_close(http_oldest);
}

static void http_written_cb(stream_t *w, int status)
{
    http_close(w->handle->data);
}

static void http_answer(http_conn_t *m)
{
    buf_t body;
    const char *status = "200 OK";

    m->answered = 1;
    buf_init(&body);
    if (strncmp(m->head, "GET /metrics ", 13) == 0 || strncmp(m->head, "GET / ", 6) == 0)
        http_page(&body, http_page_arg);
    else {
        status = "404 Not Found";
        buf_append_str(&body, "cachetoryd: metrics are at GET /metrics\n");
    }
    buf_printf(&m->w.out, "HTTP/1.1 %s\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                        "Content-Length: %zu\r\nConnection: close\r\n\r\n", status, body.len);
    buf_append(&m->w.out, body.data, body.len);
    buf_deinit(&body);
    uv_read_stop((uv_stream_t *)&m->tcp);
    /* the page is a few hundred KB at most (fixed figures and one histogram per command) */
    if (m->w.out.len > HTTP_PAGE_MAX) {
        log_warn("metrics: a page of %zu bytes is too large to send", m->w.out.len);
        http_close(m);
        return;
    }
    /* closed once the socket took it all: at once, or when the write that took the rest ends */
    if (stream_flush(&m->w) < 0 || !m->w.writing)
        http_close(m);
}

static void http_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    http_conn_t *m = h->data;
    *buf = uv_buf_init(m->head + m->len, (unsigned)(HTTP_HEAD_MAX - 1 - m->len));
}

static void http_read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    http_conn_t *m = st->data;

    if (nread < 0) {
        http_close(m);
        return;
    }
    m->len += (size_t)nread;
    m->head[m->len] = '\0';
    if (strstr(m->head, "\r\n\r\n") || strstr(m->head, "\n\n"))
        http_answer(m);
    else if (m->len >= HTTP_HEAD_MAX - 1)
        http_close(m);           /* a head this long is no scrape */
}

/*
 * A new connection: accepted always (libuv stops accepting until we do), and at HTTP_MAX_CONNS open
 * ones closed at once — a scraper opens one; a client opening thousands, or never sending its request,
 * cannot hold more than HTTP_MAX_CONNS * ~9 KB, nor any of it past HTTP_TIMEOUT_MS.
 */
static void http_connection_cb(uv_stream_t *l, int status)
{
    if (status < 0)
        return;
    http_conn_t *m = mem_calloc(1, sizeof(*m));
    uv_tcp_init(l->loop, &m->tcp);
    m->tcp.data = m;
    stream_init(&m->w, (uv_stream_t *)&m->tcp, http_written_cb, 0, NULL);
    m->deadline_ms = clock_refresh() + HTTP_TIMEOUT_MS;
    m->prev = http_newest;
    if (http_newest)
        http_newest->next = m;
    else
        http_oldest = m;
    http_newest = m;
    http_nconns++;
    if (uv_accept(l, (uv_stream_t *)&m->tcp) < 0 || http_nconns > HTTP_MAX_CONNS ||
        uv_read_start((uv_stream_t *)&m->tcp, http_alloc_cb, http_read_cb) < 0)
        http_close(m);
}

int http_setup(uv_loop_t *loop, const char *bind, int port, http_page_cb *page, void *arg)
{
    struct sockaddr_storage ss;
    const char *addr = bind ? bind : "127.0.0.1";
    int rc;

    if (port <= 0)
        return 0;
    http_page = page;
    http_page_arg = arg;
    if (strchr(addr, ':'))
        rc = uv_ip6_addr(addr, port, (struct sockaddr_in6 *)&ss);
    else
        rc = uv_ip4_addr(addr, port, (struct sockaddr_in *)&ss);
    uv_tcp_init(loop, &http_listener);
    http_on = 1;
    if (rc == 0)
        rc = uv_tcp_bind(&http_listener, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&http_listener, 64, http_connection_cb);
    uv_timer_init(loop, &http_timer);
    uv_timer_start(&http_timer, http_sweep_cb, HTTP_SWEEP_MS, HTTP_SWEEP_MS);
    uv_unref((uv_handle_t *)&http_timer);
    if (rc < 0) {
        log_warn("could not listen for metrics on %s:%d: %s", addr, port, uv_strerror(rc));
        return -1;
    }
    log_notice("metrics on http://%s:%d/metrics", addr, port);
    return 0;
}

void http_teardown(void)
{
    if (http_on && !uv_is_closing((uv_handle_t *)&http_listener))
        uv_close((uv_handle_t *)&http_listener, NULL);
    if (http_on && !uv_is_closing((uv_handle_t *)&http_timer))
        uv_close((uv_handle_t *)&http_timer, NULL);
    while (http_oldest != NULL)
        http_close(http_oldest);
    http_on = 0;
}
