/*
 * net/server: the listeners (TCP on every bind address, TLS on every bind address at tls-port, an optional
 * unix socket), the list of connected clients, and the periodic tasks: hz times a second the caller's cron
 * callback (the backend's active expiry), once a second the idle clients, the TLS clients whose handshake
 * takes too long and those whose certificate expired. What a connection's commands do is the caller's
 * too: the conn_hooks_t given to server_setup (net/conn.h).
 *
 * TLS: the listener's context (net/tls.h) is built from the tls-* options at setup, and again by
 * server_tls_reload (SIGHUP: certificate rotation). Connections keep the context they were accepted with;
 * a reload that fails changes nothing.
 */
#ifndef CACHETORYD_NET_SERVER_H
#define CACHETORYD_NET_SERVER_H

#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "net/conn.h"
#include "net/stream.h"

#define SERVER_MAX_LISTENERS (2 * CONFIG_MAX_BIND + 1)

struct tls_ctx;
#define SERVER_READ_BUF (64 * 1024)

/* Called hz times a second, before the idle clients are looked at. */
typedef void server_cron_cb(void *arg);

typedef struct server {
    uv_loop_t *loop;
    config_t *cfg;                      /* the running configuration (owned by main) */
    conn_hooks_t hooks;                 /* the command layer's, for every connection */
    server_cron_cb *cron_cb;
    void *cron_arg;
    stream_handle_t listeners[SERVER_MAX_LISTENERS];
    unsigned char listener_tls[SERVER_MAX_LISTENERS];  /* 1: listeners[i] is a TLS port */
    int nlisteners;
    struct tls_ctx *tls;                /* the TLS listener's context, or NULL without tls-port */
    unsigned long long tls_reloads;     /* successful server_tls_reload calls */
    uv_timer_t cron;                    /* hz times a second: cron_cb, client timeouts */
    uv_check_t flush;                   /* after each loop turn's I/O: write the clients in flush_list */
    client_t *flush_list;               /* clients whose replies completed outside a read batch */
    int flush_active;
    client_t *clients;                  /* doubly linked list of connected clients */
    unsigned nclients;
    uint64_t next_client_id;
    char *read_buf;                     /* shared read buffer: clients without partial input read here */
    conn_stats_t stats;
    int shutting_down;
    uv_timer_t drain;                   /* shutdown: watches the clients leave */
    long long drain_deadline_ms;
} server_t;

/* Bind and listen on every configured address; every connection is served with hooks (copied), and
 * cron(arg) runs hz times a second. 0, or -1 after logging why. */
int server_setup(server_t *s, uv_loop_t *loop, config_t *cfg, const conn_hooks_t *hooks, server_cron_cb *cron,
                 void *arg);
/* Build the TLS listener's context again from cfg's tls-* options (SIGHUP). 0 (also without a TLS
 * listener: nothing to do), or -1 with the reason in err, the running context unchanged. */
int server_tls_reload(server_t *s, const config_t *cfg, char *err, size_t errlen);

/* The TLS listener's certificate notAfter (seconds since the epoch), or 0. */
long long server_tls_cert_not_after(const server_t *s);

/* Close listeners and clients; run the loop afterwards so the close callbacks happen. */
void server_teardown(server_t *s);
/*
 * Graceful shutdown: stop accepting, let every client's commands in flight finish and their replies
 * leave, then stop the loop — or stop it after timeout_ms whatever is left.
 */
void server_drain(server_t *s, unsigned timeout_ms);

/* Free what server_setup allocated, after the loop has closed every handle. */
void server_free(server_t *s);

#endif
