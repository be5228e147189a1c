#include "net/metrics.h"

#include <stdio.h>
#include <string.h>

#include "backend/backend.h"
#include "cache/cache.h"
#include "cmd/cmd.h"
#include "net/server.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

#define METRICS_HEAD_MAX 8192

typedef struct metrics_conn {
    uv_tcp_t tcp;
    uv_write_t wreq;
    struct metrics_conn *prev, *next;   /* the open connections, oldest first */
    long long deadline_ms;              /* closed then, answered or not */
    char head[METRICS_HEAD_MAX];
    size_t len;
    buf_t out;
    int answered;
} metrics_conn_t;

static uv_tcp_t metrics_listener;
static uv_timer_t metrics_timer;        /* closes the connections past their deadline */
static int metrics_on;
static metrics_conn_t *metrics_oldest, *metrics_newest;
static unsigned metrics_nconns;

static void metrics_closed_cb(uv_handle_t *h)
{
    metrics_conn_t *m = h->data;
    buf_deinit(&m->out);
    mem_free(m);
}

/* Unlink m at once (it no longer counts against the limit) and free it once its handle has closed. */
static void metrics_close(metrics_conn_t *m)
{
    if (uv_is_closing((uv_handle_t *)&m->tcp))
        return;
    if (m->prev)
        m->prev->next = m->next;
    else
        metrics_oldest = m->next;
    if (m->next)
        m->next->prev = m->prev;
    else
        metrics_newest = m->prev;
    metrics_nconns--;
    uv_close((uv_handle_t *)&m->tcp, metrics_closed_cb);
}

/* Every METRICS_SWEEP_MS: close the connections whose deadline passed (the list is in deadline order). */
static void metrics_sweep_cb(uv_timer_t *t)
{
    long long now = clock_refresh();
    while (metrics_oldest != NULL && metrics_oldest->deadline_ms <= now)
        metrics_close(metrics_oldest);
}

static void metrics_written_cb(uv_write_t *w, int status)
{
    metrics_close(w->data);
}

/* "name value" lines; the INFO fields as gauges and counters. */
static void metrics_render(server_t *s, buf_t *b)
{
    backend_stats_t bs;
    size_t *db_keys = mem_calloc((size_t)s->cfg->databases, sizeof(*db_keys));

    backend_stats(s->backend, &bs, db_keys, s->cfg->databases);

    buf_printf(b, "# HELP cachetoryd_up 1 while the daemon serves.\n# TYPE cachetoryd_up gauge\ncachetoryd_up 1\n");
    buf_printf(b, "# TYPE cachetoryd_uptime_seconds gauge\ncachetoryd_uptime_seconds %lld\n",
               (clock_ms() - s->start_ms) / 1000);
    buf_printf(b, "# TYPE cachetoryd_connected_clients gauge\ncachetoryd_connected_clients %u\n", s->nclients);
    buf_printf(b, "# TYPE cachetoryd_connections_received_total counter\ncachetoryd_connections_received_total %llu\n",
               s->stats.total_connections);
    buf_printf(b, "# TYPE cachetoryd_rejected_connections_total counter\ncachetoryd_rejected_connections_total %llu\n",
               s->stats.rejected_connections);
    buf_printf(b, "# TYPE cachetoryd_commands_processed_total counter\ncachetoryd_commands_processed_total %llu\n",
               s->stats.total_commands);
    buf_printf(b, "# TYPE cachetoryd_net_input_bytes_total counter\ncachetoryd_net_input_bytes_total %llu\n",
               s->stats.net_input_bytes);
    buf_printf(b, "# TYPE cachetoryd_net_output_bytes_total counter\ncachetoryd_net_output_bytes_total %llu\n",
               s->stats.net_output_bytes);
    if (bs.local) {
        buf_printf(b, "# TYPE cachetoryd_memory_used_bytes gauge\ncachetoryd_memory_used_bytes %zu\n", bs.used_memory);
        buf_printf(b, "# TYPE cachetoryd_memory_max_bytes gauge\ncachetoryd_memory_max_bytes %zu\n", bs.maxmemory);
        buf_printf(b, "# TYPE cachetoryd_expired_keys_total counter\ncachetoryd_expired_keys_total %llu\n", bs.expired_keys);
        buf_printf(b, "# TYPE cachetoryd_evicted_keys_total counter\ncachetoryd_evicted_keys_total %llu\n", bs.evicted_keys);
        buf_printf(b, "# TYPE cachetoryd_keyspace_hits_total counter\ncachetoryd_keyspace_hits_total %llu\n", bs.keyspace_hits);
        buf_printf(b, "# TYPE cachetoryd_keyspace_misses_total counter\ncachetoryd_keyspace_misses_total %llu\n", bs.keyspace_misses);
        buf_printf(b, "# TYPE cachetoryd_db_keys gauge\n");
        for (int db = 0; db < s->cfg->databases; db++)
            if (db_keys[db] > 0)
                buf_printf(b, "cachetoryd_db_keys{db=\"%d\"} %zu\n", db, db_keys[db]);
    }
    mem_free(db_keys);
    buf_printf(b, "# TYPE cachetoryd_cache_hits_total counter\ncachetoryd_cache_hits_total %llu\n", s->stats.cache_hits);
    buf_printf(b, "# TYPE cachetoryd_cache_misses_total counter\ncachetoryd_cache_misses_total %llu\n", s->stats.cache_misses);
    cache_metrics(s->cache, b);
    cmd_stats_prometheus(b);
}

static void metrics_answer(metrics_conn_t *m)
{
    server_t *s = server;
    buf_t body;
    const char *status = "200 OK";

    m->answered = 1;
    buf_init(&body);
    if (strncmp(m->head, "GET /metrics ", 13) == 0 || strncmp(m->head, "GET / ", 6) == 0)
        metrics_render(s, &body);
    else {
        status = "404 Not Found";
        buf_append_str(&body, "cachetoryd: metrics are at GET /metrics\n");
    }
    buf_printf(&m->out, "HTTP/1.1 %s\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                        "Content-Length: %zu\r\nConnection: close\r\n\r\n", status, body.len);
    buf_append(&m->out, body.data, body.len);
    buf_deinit(&body);
    uv_read_stop((uv_stream_t *)&m->tcp);
    /* the page is a few hundred KB at most (fixed figures and one histogram per command): far below
     * the unsigned int of a libuv buffer */
    if (m->out.len > METRICS_PAGE_MAX) {
        log_warn("metrics: a page of %zu bytes is too large to send", m->out.len);
        metrics_close(m);
        return;
    }
    uv_buf_t wb = uv_buf_init(m->out.data, (unsigned)m->out.len);
    m->wreq.data = m;
    if (uv_write(&m->wreq, (uv_stream_t *)&m->tcp, &wb, 1, metrics_written_cb) < 0)
        metrics_close(m);
}

static void metrics_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    metrics_conn_t *m = h->data;
    *buf = uv_buf_init(m->head + m->len, (unsigned)(METRICS_HEAD_MAX - 1 - m->len));
}

static void metrics_read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    metrics_conn_t *m = st->data;

    if (nread < 0) {
        metrics_close(m);
        return;
    }
    m->len += (size_t)nread;
    m->head[m->len] = '\0';
    if (strstr(m->head, "\r\n\r\n") || strstr(m->head, "\n\n"))
        metrics_answer(m);
    else if (m->len >= METRICS_HEAD_MAX - 1)
        metrics_close(m);           /* a head this long is no scrape */
}

/*
 * A new connection: accepted always (libuv stops accepting until we do), and at METRICS_MAX_CONNS open
 * ones closed at once — a scraper opens one; a client opening thousands, or never sending its request,
 * cannot hold more than METRICS_MAX_CONNS * ~9 KB, nor any of it past METRICS_TIMEOUT_MS.
 */
static void metrics_connection_cb(uv_stream_t *l, int status)
{
    if (status < 0)
        return;
    metrics_conn_t *m = mem_calloc(1, sizeof(*m));
    uv_tcp_init(l->loop, &m->tcp);
    m->tcp.data = m;
    buf_init(&m->out);
    m->deadline_ms = clock_refresh() + METRICS_TIMEOUT_MS;
    m->prev = metrics_newest;
    if (metrics_newest)
        metrics_newest->next = m;
    else
        metrics_oldest = m;
    metrics_newest = m;
    metrics_nconns++;
    if (uv_accept(l, (uv_stream_t *)&m->tcp) < 0 || metrics_nconns > METRICS_MAX_CONNS ||
        uv_read_start((uv_stream_t *)&m->tcp, metrics_alloc_cb, metrics_read_cb) < 0)
        metrics_close(m);
}

int metrics_setup(server_t *s)
{
    struct sockaddr_storage ss;
    const char *addr = s->cfg->metrics_bind ? s->cfg->metrics_bind : "127.0.0.1";
    int rc;

    if (s->cfg->metrics_port <= 0)
        return 0;
    if (strchr(addr, ':'))
        rc = uv_ip6_addr(addr, s->cfg->metrics_port, (struct sockaddr_in6 *)&ss);
    else
        rc = uv_ip4_addr(addr, s->cfg->metrics_port, (struct sockaddr_in *)&ss);
    uv_tcp_init(s->loop, &metrics_listener);
    metrics_on = 1;
    if (rc == 0)
        rc = uv_tcp_bind(&metrics_listener, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&metrics_listener, 64, metrics_connection_cb);
    uv_timer_init(s->loop, &metrics_timer);
    uv_timer_start(&metrics_timer, metrics_sweep_cb, METRICS_SWEEP_MS, METRICS_SWEEP_MS);
    uv_unref((uv_handle_t *)&metrics_timer);
    if (rc < 0) {
        log_warn("could not listen for metrics on %s:%d: %s", addr, s->cfg->metrics_port, uv_strerror(rc));
        return -1;
    }
    log_notice("metrics on http://%s:%d/metrics", addr, s->cfg->metrics_port);
    return 0;
}

void metrics_teardown(server_t *s)
{
    if (metrics_on && !uv_is_closing((uv_handle_t *)&metrics_listener))
        uv_close((uv_handle_t *)&metrics_listener, NULL);
    if (metrics_on && !uv_is_closing((uv_handle_t *)&metrics_timer))
        uv_close((uv_handle_t *)&metrics_timer, NULL);
    while (metrics_oldest != NULL)
        metrics_close(metrics_oldest);
    metrics_on = 0;
}
