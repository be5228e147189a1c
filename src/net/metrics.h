/*
 * net/metrics: the Prometheus text exposition format on an HTTP port of its own (metrics-port, off by
 * default): GET /metrics answers the same figures as INFO, with per-command latency histograms.
 *
 * A deliberately small HTTP/1.x responder: one request per connection, its head read up to 8 KB, one
 * answer, then close — what a Prometheus scraper does, and nothing a client could make grow.
 */
#ifndef CACHETORYD_NET_METRICS_H
#define CACHETORYD_NET_METRICS_H

struct server;

int metrics_setup(struct server *s);        /* 0, or -1 after logging why; nothing when metrics-port is 0 */
void metrics_teardown(struct server *s);

#endif
