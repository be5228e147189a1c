/*
 * net/conn: one client connection — its query buffer and parser, its queue of commands in flight, and
 * its output. What a command may change about the client (database, protocol, authentication, name,
 * transaction) is the command layer's session, which net only carries (client_t.session).
 *
 * net knows nothing of commands: each complete command goes to conn_hooks_t.command_cb, given at
 * server_setup, as twemproxy hands a parsed message to its recv_done. The hooks are called on the loop
 * thread: open_cb once a client is accepted (before its first command), command_cb once per command, in
 * arrival order, free_cb once when the client is freed (also for a client refused at maxclients, whose
 * session is then NULL), req_recycle_cb when a req is recycled or freed.
 *
 * Replies leave in request order. Each command gets a req_t, queued in arrival order. A command that
 * completes while it is at the head of the queue writes its reply straight into the client's output;
 * one that completes behind a slower one (an upstream command still in flight) writes into its own
 * buffer, and is copied out when everything before it is done. The memory backend always completes at
 * once, so it always takes the direct path.
 */
#ifndef CACHETORYD_NET_CONN_H
#define CACHETORYD_NET_CONN_H

#include <stddef.h>
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
    int blocking;               /* the client holds its next commands until this one completes */
    int mute;                   /* its reply is dropped: a command of a transaction the upstream refused */
    size_t at;                  /* at the head of the queue: where its reply starts in c->w.out
                                   (REQ_AT_GONE: that start was written out before it completed) */
    bytes_t reply;              /* during req_recycle_cb only: the reply as it left (empty when it was
                                   dropped, or its start went out earlier); the first byte tells an error */
    max_align_t scratch[];      /* the command layer's part, conn_hooks_t.req_size - sizeof(req_t) bytes:
                                   zeroed when the req is first allocated, then the command layer's */
};

#define REQ_AT_GONE ((size_t)-1)

/* What the layer above net is told, and asked, about connections (set by main, see the top). */
typedef struct conn_hooks {
    size_t req_size;                                        /* >= sizeof(req_t) */
    void (*open_cb)(client_t *c);                           /* accepted: set c->session */
    void (*command_cb)(client_t *c, int argc, bytes_t *argv);   /* argv valid only during the call */
    void (*free_cb)(client_t *c);                           /* the client goes: free c->session (may be NULL) */
    void (*req_recycle_cb)(req_t *r, int destroy);          /* r is done (r->reply: its reply): give back
                                                               its scratch's memory (destroy: r itself is
                                                               freed next) */
} conn_hooks_t;

/* The connection counters (INFO stats). */
typedef struct conn_stats {
    unsigned long long total_connections;       /* accepted, including refused ones */
    unsigned long long rejected_connections;    /* refused at maxclients */
    unsigned long long net_input_bytes;
    unsigned long long net_output_bytes;
    unsigned long long output_limit_disconnections;
    unsigned long long query_limit_disconnections;
    unsigned long long tls_handshakes;          /* TLS clients whose handshake completed */
    unsigned long long tls_handshake_failures;  /* ... failed or timed out */
} conn_stats_t;

#define CLIENT_CLOSE_AFTER_REPLY  (1u << 0)     /* QUIT, protocol error: close once output is written */
#define CLIENT_CLOSING            (1u << 1)     /* uv_close called or pending; no more input */
#define CLIENT_UNIX               (1u << 4)     /* connected through the unix socket */
#define CLIENT_BLOCKED            (1u << 5)     /* a command waits for the thread pool: hold the next ones */
#define CLIENT_TLS                (1u << 6)     /* connected through the TLS port (c->w.tls) */

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

    char addr[64];              /* peer "ip:port" or the socket path */
    char laddr[64];             /* local "ip:port" */
    long long ctime_ms;         /* connected at */
    long long last_ms;          /* last input, for the idle timeout */

    void *session;              /* the command layer's (conn_hooks_t.open_cb / free_cb) */
    void (*closing_cb)(client_t *c);    /* the command layer's, or NULL: called once when the client starts
                                           closing, while its commands may still be in flight (a blocking
                                           command waiting upstream is ended then, not when it answers) */
};

/* What CLIENT LIST shows of a connection that net keeps. */
typedef struct conn_facts {
    long long age_s, idle_s;    /* since connected, since its last input */
    size_t qbuf, qbuf_free;     /* query buffer in use, and free */
    size_t rbs;                 /* query buffer allocated */
    size_t omem;                /* output not yet taken by the client */
    size_t tot_mem;             /* everything the connection holds */
    int close_after_reply;      /* closes once its output is written (flag 'c') */
} conn_facts_t;

/* Accept a connection on a listener (a TLS one: tls is its context); refuses with redis's error at
 * maxclients. */
struct tls_ctx;
void conn_accept(struct server *s, uv_stream_t *listener, int is_unix, struct tls_ctx *tls);

/* The TLS clients connected now. */
unsigned conn_tls_count(const struct server *s);

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

/* The client's next commands wait until r completes (and every other command that holds them). */
void req_hold(req_t *r);

/* The command's reply is complete: release it and everything after it that is also complete. */
void req_done(req_t *r);

/* Write the replies of every client that completed commands since the last loop turn (uv_check). */
void conn_flush_pending(struct server *s);

/* The figures of c for CLIENT LIST. */
void conn_facts(const client_t *c, conn_facts_t *f);

/* The parser's pre-AUTH limits on c (resp_parser_t.authenticated): lifted once the client authenticated. */
static inline void conn_set_authenticated(client_t *c, int yes)
{
    c->parser.authenticated = yes;
}

/* The connected clients of s, newest first (then c->next), and how many there are. */
client_t *conn_first(const struct server *s);
unsigned conn_count(const struct server *s);

/* The connection counters of s, and CONFIG RESETSTAT's reset of them. */
const conn_stats_t *conn_stats(const struct server *s);
void conn_stats_reset(struct server *s);

#endif
