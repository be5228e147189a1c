/*
 * net/server: the listeners (TCP on every bind address, an optional unix socket), the list of
 * connected clients, and the periodic tasks (active expiry, idle clients).
 */
#ifndef CACHETORYD_NET_SERVER_H
#define CACHETORYD_NET_SERVER_H

#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "net/stream.h"

typedef struct client client_t;
struct backend;
struct cache;

#define SERVER_MAX_LISTENERS (CONFIG_MAX_BIND + 1)
#define SERVER_READ_BUF (64 * 1024)

typedef struct server_stats {
    unsigned long long total_connections;       /* accepted, including refused ones */
    unsigned long long rejected_connections;    /* refused at maxclients */
    unsigned long long total_commands;
    unsigned long long net_input_bytes;
    unsigned long long net_output_bytes;
    unsigned long long output_limit_disconnections;
    unsigned long long query_limit_disconnections;
    unsigned long long cache_hits;              /* GET family and MGET values found, whatever the backend */
    unsigned long long cache_misses;            /* ... and not found */
} server_stats_t;

typedef struct server {
    uv_loop_t *loop;
    config_t *cfg;                      /* the running configuration (owned by main) */
    struct backend *backend;            /* where values live (owned by main) */
    struct cache *cache;                /* the codec chain in front of it (owned by main) */
    stream_handle_t listeners[SERVER_MAX_LISTENERS];
    int nlisteners;
    uv_timer_t cron;                    /* hz times a second: backend cron, client timeouts */
    uv_check_t flush;                   /* after each loop turn's I/O: write the clients in flush_list */
    client_t *flush_list;               /* clients whose replies completed outside a read batch */
    int flush_active;
    client_t *clients;                  /* doubly linked list of connected clients */
    unsigned nclients;
    uint64_t next_client_id;
    char *read_buf;                     /* shared read buffer: clients without partial input read here */
    long long start_ms;                 /* unix ms at start, for INFO uptime */
    int port;                           /* the TCP port actually bound (config port 0 is not allowed) */
    int default_db;                     /* a new client's database (the backend's default_db) */
    server_stats_t stats;
    int shutting_down;
    uv_timer_t drain;                   /* shutdown: watches the clients leave */
    long long drain_deadline_ms;
} server_t;

extern server_t *server;                /* the one server of this process */

/* Bind and listen on every configured address. 0, or -1 after logging why. */
int server_setup(server_t *s, uv_loop_t *loop, config_t *cfg, struct backend *b, struct cache *cache);
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
