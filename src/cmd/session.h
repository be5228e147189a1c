/*
 * cmd/session: the command layer's own state, for the files of cmd/ only (everything else goes
 * through cmd.h).
 *
 * - cmd_ctx: what the commands work with — the configuration, the backend and the cache in front of
 *   it, net's server (only ever passed back to net/conn.h's functions), the start time and the
 *   command counters. Set by cmd_setup, the backend again by cmd_set_backend after a reload; owned by
 *   main, borrowed here.
 * - cmd_session_t: what a command may change about its client — database, protocol, authentication,
 *   name, the MULTI queue, the WATCHed keys (a handle on the backend's registry, given back whenever
 *   the transaction ends, by RESET and when the client goes). Created when net accepts the client (cmd_session_open_cb), hung on
 *   client_t.session, freed with the client (cmd_session_free_cb). net never looks inside.
 * - cmd_scratch_t: what a command keeps for its callback (which form it was, parsed numbers, bytes
 *   that must outlive the handler), in the tail of every req_t (req_t.scratch), so that it costs no
 *   allocation per command. The numbers are zeroed for each command (cmd_req_create); the buffer keep
 *   is given back, and an error reply counted, when the req is recycled (cmd_req_recycle_cb).
 */
#ifndef CACHETORYD_CMD_SESSION_H
#define CACHETORYD_CMD_SESSION_H

#include "cmd/cmd.h"
#include "config.h"

struct cache;
struct server;

/* A command queued by MULTI: its arguments copied, since the query buffer moves on. */
typedef struct queued_cmd {
    int argc;
    bytes_t *argv;              /* argc slices into one block that starts at argv[0] storage */
} queued_cmd_t;

/* cmd_session_t.flags */
#define SESSION_MULTI       (1u << 0)   /* inside MULTI */
#define SESSION_DIRTY_EXEC  (1u << 1)   /* a command failed to queue: EXEC will abort */
#define SESSION_IN_EXEC     (1u << 2)   /* running EXEC's commands: nothing may wait */

typedef struct cmd_session {
    unsigned flags;             /* SESSION_* */
    int proto;                  /* 2 or 3 (HELLO) */
    int db;                     /* SELECTed database */
    int authenticated;          /* requirepass satisfied (or none set) */
    char *name;                 /* CLIENT SETNAME, or NULL */
    char *lib_name, *lib_ver;   /* CLIENT SETINFO */
    const char *last_cmd;       /* name of the last command, for CLIENT LIST */
    queued_cmd_t *mqueue;       /* MULTI: queued commands */
    int mcount, mcap;
    backend_watch_t *watch;     /* WATCHed keys (the backend's), or NULL: none */
    backend_pin_t *pin;         /* a dedicated upstream connection its ops go on (backend_pin), or NULL */
    unsigned pin_for;           /* PIN_*: what holds it; given back when nothing does */
    int nblocked;               /* blocking commands forwarded on the pin and not yet answered */
    int nsub, npsub, nssub;     /* channels, patterns and shard channels subscribed on the pin (CLIENT LIST),
                                   as Redis's (un)subscribe answers tell; 0 once PIN_SUB is let go */
} cmd_session_t;

/* cmd_session_t.pin_for */
#define PIN_WATCH   (1u << 0)   /* WATCH in proxy mode: the upstream watches the keys on that connection */
#define PIN_BLOCK   (1u << 1)   /* blocking commands (BLPOP...) are waiting on it: nblocked of them */
#define PIN_SUB     (1u << 2)   /* subscribed (SUBSCRIBE...): messages come on it, until nothing is */

typedef struct cmd_scratch {
    const char *stat;           /* the command that ran in it (cmd_call, cmd_stat_name), whose failed call
                                   an error reply is; NULL: refused before running, or a reply of no command */
    int variant;                /* which form of the command it was */
    long long aux, aux2;        /* numbers the callback needs */
    long double auxf;           /* INCRBYFLOAT's increment */
    bytes_t arg;                /* APPEND / SETRANGE: the bytes to write (into the query buffer) */
    buf_t keep;                 /* bytes kept until the callback (an upstream answers later) */
} cmd_scratch_t;

/* Counted here, whatever the backend. */
typedef struct cmd_counters {
    unsigned long long total_commands;
    unsigned long long cache_hits;      /* GET family and MGET values found */
    unsigned long long cache_misses;    /* ... and not found */
} cmd_counters_t;

typedef struct cmd_ctx {
    config_t *cfg;              /* the running configuration */
    backend_t *backend;         /* where values live (replaced by a reload: cmd_set_backend) */
    struct cache *cache;        /* the codec chain in front of it */
    struct server *srv;         /* net's, for conn_first / conn_stats */
    int default_db;             /* a new client's database (the backend's default_db) */
    long long start_ms;         /* unix ms at setup, for INFO uptime */
    cmd_counters_t stats;
} cmd_ctx_t;

extern cmd_ctx_t cmd_ctx;

static inline cmd_session_t *cmd_session(const client_t *c)
{
    return c->session;
}

static inline cmd_scratch_t *cmd_scratch(req_t *r)
{
    return (cmd_scratch_t *)(void *)r->scratch;
}

/* The RESP version of r's client (2, or 3 after HELLO 3): how its replies are written. */
static inline int cmd_proto(const req_t *r)
{
    return cmd_session(r->c)->proto;
}

/* A req for a command about to run, its scratch cleared. */
req_t *cmd_req_create(client_t *c);

/* Drop queued MULTI commands, leave MULTI and forget the watched keys (redis's discardTransaction). */
void cmd_multi_reset(cmd_session_t *s);

/* Forget the watched keys (UNWATCH, EXEC, and every cmd_multi_reset); a connection pinned for them only
 * is handed back. */
void cmd_session_unwatch(cmd_session_t *s);

/* Pin a dedicated upstream connection for why (PIN_*), the one held already if any: 0, or -1 with the
 * client's error in err. */
int cmd_session_pin(client_t *c, unsigned why, char *err, size_t errlen);

/* why no longer holds the pin; when nothing does, it is handed back (close 1: closed, something may still
 * wait on it). */
void cmd_session_unpin(cmd_session_t *s, unsigned why, int close);

/* 1 when no requirepass is set: every client counts as authenticated. */
int cmd_session_nopass(void);

/* The pin a client's ops go on: its pin, unless it is subscribed there (a RESP3 client's other commands
 * then use the shared connections: the subscribed one runs nothing but pub/sub). */
static inline backend_pin_t *cmd_session_op_pin(const cmd_session_t *s)
{
    return (s->pin_for & PIN_SUB) ? NULL : s->pin;
}

/* Back to a new connection's session (RESET). */
void cmd_session_reset(client_t *c);

/* Render CLIENT LIST's line for c into out. */
void cmd_session_describe(const client_t *c, buf_t *out);

#endif
