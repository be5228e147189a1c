/*
 * net/http: the HTTP side of the Prometheus endpoint, on a port of its own (metrics-port, off by
 * default): GET /metrics (and GET /) answers the page that the caller's page_cb renders, anything else
 * a 404 that says where the page is. It knows nothing of what the page says.
 *
 * A deliberately small HTTP/1.x responder: one request per connection, its head read up to 8 KB, one
 * answer, then close — what a Prometheus scraper does, and nothing a client could make grow: at most
 * HTTP_MAX_CONNS connections are open (one more is closed as soon as it is accepted), and each is
 * closed HTTP_TIMEOUT_MS after it was accepted, whether its request came and its answer left or not.
 */
#ifndef CACHETORYD_NET_HTTP_H
#define CACHETORYD_NET_HTTP_H

#include <uv.h>

#include "util/buf.h"

#define HTTP_MAX_CONNS  32
#define HTTP_TIMEOUT_MS 5000                /* request read and answer written within this */
#define HTTP_SWEEP_MS   250                 /* how often the deadlines are checked */
#define HTTP_PAGE_MAX   (64u << 20)         /* a larger page is a bug: not sent */

/* Render the page into body (empty when called), on the loop thread. */
typedef void http_page_cb(buf_t *body, void *arg);

/* Listen on bind (NULL: 127.0.0.1) : port and answer with page(arg). 0, or -1 after logging why;
 * nothing when port is 0. */
int http_setup(uv_loop_t *loop, const char *bind, int port, http_page_cb *page, void *arg);
void http_teardown(void);

#endif
