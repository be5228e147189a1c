/*
 * net/metrics: the Prometheus text exposition format on an HTTP port of its own (metrics-port, off by
 * default): GET /metrics answers the same figures as INFO, with per-command latency histograms.
 *
 * A deliberately small HTTP/1.x responder: one request per connection, its head read up to 8 KB, one
 * answer, then close — what a Prometheus scraper does, and nothing a client could make grow: at most
 * METRICS_MAX_CONNS connections are open (one more is closed as soon as it is accepted), and each is
 * closed METRICS_TIMEOUT_MS after it was accepted, whether its request came and its answer left or not.
 */
#ifndef CACHETORYD_NET_METRICS_H
#define CACHETORYD_NET_METRICS_H

struct server;

#define METRICS_MAX_CONNS  32
#define METRICS_TIMEOUT_MS 5000             /* request read and answer written within this */
#define METRICS_SWEEP_MS   250              /* how often the deadlines are checked */
#define METRICS_PAGE_MAX   (64u << 20)      /* a larger page is a bug: not sent */

int metrics_setup(struct server *s);        /* 0, or -1 after logging why; nothing when metrics-port is 0 */
void metrics_teardown(struct server *s);

#endif
