/*
 * net/conn: one client connection — its query buffer and parser, its queue of commands in flight, its
 * output, and its session state (protocol version, database, authentication, transaction).
 *
 * Replies leave in request order. Each command gets a req_t, queued in arrival order. A command that
 * completes while it is at the head of the queue writes its reply straight into the client's output;
 * one that completes behind a slower one (an upstream command still in flight) writes into its own
 * buffer, and is copied out when everything before it is done. The memory backend always completes at
 * once, so it always takes the direct path.
 */
#ifndef CACHETORYD_NET_CONN_H
#define CACHETORYD_NET_CONN_H

#include <stdint.h>
#include <uv.h>

#include "net/stream.h"
#include "resp/parse.h"
#include "util/buf.h"

struct server;
typedef struct client client_t;
typedef struct req req_t;

struct req {
    req_t *next;                /* next in the client's queue, or in its free list */
    client_t *c;                /* the client that sent the command */
    buf_t out;                  /* the reply, when it completes behind another command */
    int done;                   /* completed, waiting for the ones before it */
    int variant;                /* for the command's callback: which form of the command it was */
    long long aux, aux2;        /* for the command's callback: numbers it needs */
    long double auxf;           /* INCRBYFLOAT's increment */
    bytes_t arg;                /* APPEND / SETRANGE: the bytes to write (into the query buffer) */
    int blocking;               /* the client holds its next commands until this one completes */
    int mute;                   /* its reply is dropped: a command of a transaction the upstream refused */
    buf_t keep;                 /* bytes the command keeps until its callback (an upstream answers later) */
};

/* A command queued by MULTI: its arguments copied, since the query buffer moves on. */
typedef struct queued_cmd {
    int argc;
    bytes_t *argv;              /* argc slices into one block that starts at argv[0] storage */
} queued_cmd_t;

#define CLIENT_CLOSE_AFTER_REPLY  (1u << 0)     /* QUIT, protocol error: close once output is written */
#define CLIENT_CLOSING            (1u << 1)     /* uv_close called or pending; no more input */
#define CLIENT_MULTI              (1u << 2)     /* inside MULTI */
#define CLIENT_DIRTY_EXEC         (1u << 3)     /* a command failed to queue: EXEC will abort */
#define CLIENT_UNIX               (1u << 4)     /* connected through the unix socket */
#define CLIENT_BLOCKED            (1u << 5)     /* a command waits for the thread pool: hold the next ones */
#define CLIENT_IN_EXEC            (1u << 6)     /* running EXEC's commands: nothing may wait */

struct client {
    stream_handle_t h;          /* first: the libuv handle, h.handle.data = this client */
    struct server *srv;
    client_t *prev, *next;      /* the server's client list */
    client_t *flush_next;       /* in the server's flush list */
    int in_flush_list;
    uint64_t id;
    unsigned flags;             /* CLIENT_* */

    buf_t qbuf;                 /* input not yet parsed (a partial command), from qbuf.data[0] */
    resp_parser_t parser;
    bytes_t *argv;              /* the current command's arguments (into the query bytes) */
    size_t argv_cap;

    stream_t w;                 /* replies ready to send (w.out) and the write in flight (net/stream.h) */

    req_t *head, *tail;         /* commands in flight, in request order */
    req_t *free_reqs;           /* recycled req_t */
    unsigned npending;
    unsigned nholding;          /* commands in flight that hold the next ones (req_hold) */

    int proto;                  /* 2 or 3 (HELLO) */
    int db;                     /* SELECTed database */
    int authenticated;          /* requirepass satisfied (or none set) */
    char *name;                 /* CLIENT SETNAME, or NULL */
    char *lib_name, *lib_ver;   /* CLIENT SETINFO */
    char addr[64];              /* peer "ip:port" or the socket path */
    char laddr[64];             /* local "ip:port" */
    long long ctime_ms;         /* connected at */
    long long last_ms;          /* last input, for the idle timeout */
    const char *last_cmd;       /* name of the last command, for CLIENT LIST */

    queued_cmd_t *mqueue;       /* MULTI: queued commands */
    int mcount, mcap;
};

/* Accept a connection on a listener; refuses with redis's error at maxclients. */
void conn_accept(struct server *s, uv_stream_t *listener, int is_unix);

/* Close a client: stop reading, drop its output, free it once libuv is done and no command of it is in
 * flight. Safe to call more than once. */
void conn_close(client_t *c);

/* Close after the replies already queued are written (QUIT). */
void conn_close_after_reply(client_t *c);

/* Shutting down: read no more, finish the commands in flight, write their replies, then close. */
void conn_drain(client_t *c);

/* A req for the command about to run, queued at the tail. */
req_t *req_create(client_t *c);

/* The buffer a command writes its reply into (the client's output when it is at the head). */
static inline buf_t *req_out(req_t *r)
{
    return r->c->head == r && !r->mute ? &r->c->w.out : &r->out;
}

static inline int req_proto(const req_t *r)
{
    return r->c->proto;
}

/* The client's next commands wait until r completes (and every other command that holds them). */
void req_hold(req_t *r);

/* The command's reply is complete: release it and everything after it that is also complete. */
void req_done(req_t *r);

/* Write the replies of every client that completed commands since the last loop turn (uv_check). */
void conn_flush_pending(struct server *s);

/* Render CLIENT LIST's line for c into out. */
void conn_describe(const client_t *c, buf_t *out);

#endif
