/*
 * backend/redis/redis_int.h: what the files of the upstream Redis backend share — its types and the
 * functions one file calls in another. Private to src/backend/redis/; the rest of cachetoryd sees only
 * backend.h (backend_redis_create).
 *
 *   redis.c   the backend interface: submit, batch, info, idle, reconfigure, create and destroy
 *   wire.c    the opcode table: the Redis command an op becomes and how its reply maps back (wire.h)
 *   task.c    tasks: an op's copy while it is queued or in flight, and its callback called exactly once
 *   pool.c    the connections: connecting, handshake, retry and timeouts, databases (SELECT), sending
 *             commands with a slot for each reply, reading and matching replies, pumping the queue
 *   resp3.c   replies read by frames (RESP3 and dedicated connections): relayed, or read as RESP2; the
 *             order across both pool sets; a dedicated connection's protocol (HELLO 3 / HELLO 2)
 *   tx.c      one op's read-modify-write: WATCH / GET, compute, MULTI / write / EXEC, retried
 *   batch.c   a client's MULTI ... EXEC: its members' databases, their reads, the overlay that follows
 *             their writes, MULTI / members / EXEC, and EXEC's reply handed out
 *   route.c   a Redis Cluster (redis+cluster://): the slot map, routing by key slot, MOVED / ASK
 *   fan.c     a cluster's ops split by slot or sent to every master, and their replies put together
 *   tracking.c  the invalidation connection of the near cache (CLIENT TRACKING, __redis__:invalidate)
 *   pin.c     dedicated connections, one client's each (WATCH, blocking commands, pub/sub), apart from the pool
 *
 * Ownership: the upstream_t owns its connections, their slots and every task; a task is freed by the
 * file that ends it (task_free recycles it). Callbacks into the cache layer run through up_task_finish /
 * up_task_fail, exactly once per task.
 */
#ifndef CACHETORYD_BACKEND_REDIS_REDIS_INT_H
#define CACHETORYD_BACKEND_REDIS_REDIS_INT_H

#include <hiredis/hiredis.h>
#include <sys/socket.h>
#include <uv.h>

#include "backend/backend.h"
#include "backend/redis/wire.h"
#include "net/stream.h"
#include "net/tls.h"
#include "resp/frame.h"
#include "util/buf.h"

#define UP_READ_BUF      (64 * 1024)
#define UP_RESP3_BLOB_MAX  (1LL << 32)  /* a RESP3 connection's framer: the longest blob accepted */
#define UP_RESP3_COUNT_MAX (1LL << 32)  /* ... the most elements of an aggregate */
#define UP_TX_RETRIES    5000   /* optimistic: each round one contender wins; bounded all the same */
#define UP_RETRY_MIN_MS  50
#define UP_KNOWN_DBS     1024   /* databases below this are remembered as existing once selected */
#define UP_DEDICATED_IDLE_US (30LL * 1000 * 1000)  /* an idle dedicated connection is closed after this */
#define ROUTE_SLOTS      16384  /* Redis Cluster's hash slots */
#define ROUTE_MAX_MASTERS 1024
#define ROUTE_NOKEY      (-1)   /* route_op_slot: the op has no key */
#define ROUTE_MULTI      (-2)   /* ... its keys hash to several slots */

typedef struct upstream upstream_t;
typedef struct up_node up_node_t;
typedef struct up_conn up_conn_t;
typedef struct up_task up_task_t;

enum up_state { UP_DOWN, UP_CONNECTING, UP_HANDSHAKE, UP_READY };
enum up_kind { TASK_PLAIN, TASK_TX, TASK_BATCH, TASK_SELECT, TASK_PUSH };

/* What a reply in flight is for. */
enum up_slot_kind {
    SLOT_INTERNAL,      /* AUTH / SELECT / UNWATCH / PING: an error fails the connection */
    SLOT_SELECT,        /* a SELECT of a database not yet known to exist: the connection waits for it */
    SLOT_RESULT,        /* the task's result */
    SLOT_TX_GET,        /* transaction: the GET after WATCH */
    SLOT_TX_EXEC,       /* transaction / batch: EXEC's array */
    SLOT_IGNORE,        /* WATCH, MULTI, QUEUED, ASKING: only errors matter, and EXEC reports them */
    SLOT_MAP,           /* CLUSTER SLOTS: the slot map (route.c) */
    SLOT_TTL,           /* the PTTL before a GET / MGET with BE_WITHTTL: the task's ttls[db] (db = key index) */
    SLOT_TRACK,         /* CLIENT TRACKING ON REDIRECT on a pool connection, for tracking session tag */
    SLOT_TRACKER,       /* the invalidation connection's own commands (tracking.c), tag says which */
    SLOT_SUBCHECK,      /* a dedicated connection's PING after an unsubscribe: is it still subscribed? (pin.c) */
};

typedef struct up_slot {
    struct up_slot *next;
    up_task_t *task;            /* NULL for internal commands */
    int kind;
    int db;                     /* SLOT_SELECT: the database selected; SLOT_TTL: the key's index */
    unsigned long long tag;     /* SLOT_TRACK: the tracking session; SLOT_TRACKER: the command */
    long long sent_us;
    int resp3;                  /* its reply comes in RESP3 (the connection's protocol when it was sent) */
} up_slot_t;

struct up_task {
    up_task_t *next;            /* in the connection's queue */
    upstream_t *up;
    int kind;                   /* enum up_kind */
    backend_op_t op;            /* a copy; its slices point into data */
    buf_t data;                 /* owned bytes: the formatted command (plain), or the op's keys and values */
    bytes_t *slices;            /* owned slices for the op copy */
    long long *ttls_ms;         /* owned copy of the op's ttls_ms (MSET with per-key expiries), or NULL */
    backend_cb *cb;
    void *ctx;
    int done;                   /* the callback ran */
    int retries;
    buf_t newval;               /* TASK_TX: the value computed from the old one */
    backend_result_t txres;     /* TASK_TX: the result the update fn prepared */
    up_task_t **members;        /* TASK_BATCH: the ops, in order */
    int nmembers;
    long long queued_us;
    int sent;                   /* plain: its bytes are on the wire; batch member: it is inside MULTI */
    int pinned;                 /* TASK_BATCH: on a client's dedicated connection: EXEC's nil aborts it */
    int reads;                  /* TASK_BATCH: some members read-modify-write, a WATCH + GETs come first */
    int reads_left;             /* TASK_BATCH: replies to those GETs still to come */
    buf_t olds;                 /* TASK_BATCH: what the GETs brought (up_batch_got_values); TASK_TX: the
                                 * error Redis gave a command of this round (up_tx_ignored_error) */
    int db_start;               /* TASK_BATCH: the connection's database at MULTI */
    int created;                /* TASK_TX update: the key did not exist (BE_NEWTTL: its write sets expire_at) */
    int redirects;              /* cluster: MOVED / ASK followed so far */
    int asking;                 /* cluster: ASK: send ASKING right before it */
    int moved;                  /* cluster: a WATCH or a command inside MULTI of it was redirected */
    int ask_waits;              /* cluster: a read-modify-write told ASK waited this many times */
    int down_waits;             /* cluster: a command answered CLUSTERDOWN waited this many times */
    long long park_until_us;    /* cluster: parked (upstream.parked) until then */
    long long *ttls;            /* BE_WITHTTL: each key's PTTL as it arrives (-2 until then) */
    size_t ttls_cap;
    int tracked;                /* BE_WITHTTL: its reply came on a connection with tracking intact */
    int lane_held;              /* counted in its client's lane (lane.c) until it is freed */
    unsigned long long seq;     /* the order it was submitted in (upstream.task_seq): a pool connection's
                                 * task waits for the same client's earlier ones on the sibling (pool.c) */
};

struct up_conn {
    upstream_t *up;
    up_node_t *node;            /* the server it connects to */
    int index;
    stream_handle_t h;          /* the socket; h.handle.data = this connection */
    uv_connect_t creq;
    uv_timer_t retry;           /* reconnection backoff */
    int state;
    int starting;               /* UP_DOWN only because its first connect has not started yet: tasks wait */
    int handle_open;            /* h is initialised and not yet closed */
    stream_t w;                 /* commands to send (w.out) and the write in flight (net/stream.h) */
    redisReader *reader;
    up_slot_t *slots, *slots_tail;  /* replies awaited, in order */
    unsigned nslots;
    up_task_t *tasks, *tasks_tail;  /* tasks not yet sent (behind a transaction, or before READY) */
    up_task_t *active;          /* the transaction or batch owning the connection, or NULL */
    int handshake_left;         /* AUTH / SELECT replies still awaited */
    int db;                     /* the database after every command sent so far has run */
    int db_before;              /* with select_wait: the database if the awaited SELECT fails */
    int select_wait;            /* a SLOT_SELECT is in flight: nothing else is sent until it answers */
    uint64_t known_dbs[UP_KNOWN_DBS / 64];  /* databases a SELECT succeeded for on this connection */
    long long state_since_us;
    unsigned retry_ms;
    char last_error[160];
    int tracker;                /* the near cache's invalidation connection (tracking.c), not a pool one */
    unsigned long long track_sent;      /* the tracking session a CLIENT TRACKING was sent for, 0 none */
    unsigned long long track_session;   /* ... and the one Redis confirmed: reads on it are tracked */
    /* dedicated connections (pin.c) */
    int dedicated;              /* one client's at a time, not a pool one: never reconnects */
    struct up_pin *pin;         /* dedicated: the client's pin holding it, NULL when idle or being reset */
    up_conn_t *ded_next;        /* dedicated: in up->dedicated */
    int ded_state;              /* dedicated: enum up_ded_state */
    long long ded_idle_since_us;
    int ded_closed;             /* dedicated: its handles are closing; freed when ded_handles reaches 0 */
    int ded_handles;
    int quiet;                  /* closed on purpose: no warning in the log */
    int pubsub;                 /* dedicated: SUBSCRIBE sent; pub/sub frames are pushes, not replies */
    int ded_reset_sent;         /* dedicated: its RESET is sent and not yet answered (claimable then) */
    int ded_reset_due;          /* dedicated: claimed before its RESET went: it goes once the ded_old_left */
    int ded_old_left;           /* tasks its last client queued have been sent, before the new client's */
    unsigned long long push_sent;   /* dedicated: SUBSCRIBE and its kin sent (SLOT_SUBCHECK's tag) */
    /* RESP3 connections (node.pool3): opened with HELLO 3, replies framed (resp/frame.h) and relayed as
     * they are, never parsed by hiredis */
    int resp3;
    int proto3;                 /* replies to what is sent from now on come in RESP3: a RESP3 connection, or a
                                 * dedicated one after HELLO 3 (until HELLO 2 or RESET) (resp3.c) */
    buf_t rbuf;                 /* resp3 or dedicated: bytes read, from the start of the frame being scanned */
    resp_frame_t frame;
};

enum up_ded_state { DED_IN_USE, DED_RESETTING, DED_IDLE };

/* One Redis server and the pool of connections to it: the only one, or a node of a cluster. */
struct up_node {
    upstream_t *up;
    int index;                  /* in up->nodes */
    char *host;                 /* TCP host, or NULL with a unix socket */
    int port;
    struct sockaddr_storage addr;   /* the host resolved once */
    char *path;                 /* unix socket path */
    char name[128];             /* "host:port" or the socket path, for errors */
    int npool;
    up_conn_t *pool;
    up_conn_t *pool3;           /* npool RESP3 connections, each connecting on first use (every node, a
                                 * cluster's too: route.c routes a RESP3 client's forwarded commands there) */
    int master;                 /* cluster: serves slots in the last map */
    int readonly;               /* cluster: a replica read from (READONLY in the handshake) */
    unsigned long long nerrors;     /* error replies it sent */
    unsigned long long nredirects;  /* MOVED / ASK it answered (and were followed) */
};

struct upstream {
    backend_t base;
    uv_loop_t *loop;
    char *user, *password;
    int db;
    char name[128];             /* "host:port" or the socket path (one node), the seeds (a cluster) */
    tls_ctx_t *tls;             /* rediss://: the client side's context (certificates, verification) */
    int tls_verify;             /* enum tls_verify, for INFO */
    up_node_t **nodes;          /* the servers: one, or a cluster's nodes as they are discovered */
    int nnodes;
    /* cluster (route.c) */
    int cluster;                /* redis+cluster://, rediss+cluster:// */
    int cross_slot_split;       /* cluster-cross-slot-writes = split */
    int16_t *slot_node;         /* ROUTE_SLOTS entries: the index of the slot's master, -1 unknown */
    int16_t *slot_replica;      /* with read-from: a replica of the slot's master, -1 none */
    int read_from;              /* enum config_read_from */
    int map_inflight;           /* a CLUSTER SLOTS is awaited */
    int map_wanted;             /* ask for the map again soon */
    long long map_at_ms, map_asked_ms;  /* monotonic: last map received, last asked */
    int map_rr;                 /* the connection the next CLUSTER SLOTS goes to */
    unsigned long long map_changes, nredirects;
    up_task_t *parked;          /* read-modify-writes waiting for their slot to finish moving, commands
                                 * answered CLUSTERDOWN waiting to go again (route.c), oldest first */
    int npool;                  /* connections per node */
    long long connect_timeout_us, command_timeout_us;
    unsigned retry_max_ms;
    uv_timer_t tick;            /* timeouts */
    uv_check_t flush;           /* one write per connection per loop turn */
    int flush_active;
    char *read_buf;
    buf_t conv;                 /* a frame in its RESP2 form, for hiredis to read (resp3.c) */
    up_slot_t *free_slots;
    up_task_t *free_tasks;      /* recycled tasks */
    int nfree_tasks;
    int armed;                  /* the nodes' handles are on the loop (up_nodes_arm) */
    int destroying;             /* redis_destroy ran: handles are closing */
    int closing;                /* handles still to close before the memory goes */
    int batching;               /* inside batch(begin) */
    uint64_t batch_affinity;
    up_task_t *batch;           /* the batch being collected */
    struct up_track *track;     /* the near cache's tracking (tracking.c), or NULL */
    unsigned long long task_seq;    /* tasks submitted (up_task_t.seq) */
    /* lanes (lane.c): the pool connection of each client with tasks in flight */
    struct up_lane_slot *lanes;
    size_t lane_cap, lane_used;
    int lane_turn;              /* where a client with nothing in flight goes this loop turn */
    /* dedicated connections (pin.c) */
    up_conn_t *dedicated;       /* every dedicated connection not closing: in use, being reset, idle */
    struct up_pin *pins;        /* every pin its clients hold, with a connection or one lost */
    int ded_max;                /* upstream-dedicated-max */
    int ded_count, ded_in_use, ded_idle;
    int ded_closing;            /* closing, not yet freed */
    unsigned long long ded_created, ded_refused;
    /* INFO upstream */
    unsigned long long ncommands, nerrors, ntimeouts, nreconnects, latency_sum_us, latency_n, latency_max_us;
};

/* Every connection of every node: k from 0 to up_nconns(up) - 1. */
static inline int up_nconns(const upstream_t *up)
{
    return up->nnodes * up->npool;
}

static inline up_conn_t *up_conn_at(const upstream_t *up, int k)
{
    return &up->nodes[k / up->npool]->pool[k % up->npool];
}

/* Every RESP3 connection (node.pool3) of every node: k from 0 to up_nconns(up) - 1. */
static inline up_conn_t *up_conn3_at(const upstream_t *up, int k)
{
    return &up->nodes[k / up->npool]->pool3[k % up->npool];
}

/* Down, and not about to try: commands for it fail at once. */
static inline int up_conn_down(const up_conn_t *c)
{
    return c->state == UP_DOWN && !c->starting;
}

/* ---- lane.c ---- */

/* The connection of set (a node's pool or pool3) for an op of the client of affinity, as an index: the
 * one its tasks in flight are on, else this loop turn's (or the next one up). */
int up_lane(const upstream_t *up, const up_conn_t *set, uint64_t affinity);
/* t, just put on pool connection c, counts for its client until up_task_free (nothing on a cluster, a
 * dedicated or the tracking connection). */
void up_lane_hold(upstream_t *up, up_task_t *t, const up_conn_t *c);
void up_lane_release(up_task_t *t);
/* The connections were flushed: clients with nothing in flight go to the next one. */
void up_lane_next_turn(upstream_t *up);
void up_lane_free(upstream_t *up);

/* ---- redis.c ---- */

/* One of the handles closed by the backend's destroy is gone; the last one frees the backend. */
void up_closed_one(upstream_t *up);
/* "ERR upstream HOST:PORT: why it is down", for a command that cannot be sent on c; on a cluster, the
 * slot map is wanted again (the slots of a node that is down may have moved to one of its replicas). */
void up_conn_down_error(const up_conn_t *c, char *err, size_t n);
/* Submit op on connection c (redis_submit once the connection is chosen; the cluster's parts too). */
void up_submit_on(upstream_t *up, up_conn_t *c, const backend_op_t *op, backend_cb *cb, void *ctx);


/* ---- task.c ---- */

up_task_t *up_task_create(upstream_t *up, const backend_op_t *op, backend_cb *cb, void *ctx, int kind);
/* Recycle t (its members are not freed: up_batch_free_members). */
void up_task_free(up_task_t *t);
/* Copy what op points at into t, so the task can outlive the caller's buffers. */
void up_task_own_op(up_task_t *t, const backend_op_t *op);
/* Call the task's callback with res, once (later calls do nothing). */
void up_task_finish(up_task_t *t, const backend_result_t *res);
/* Fail the task with err (a batch: its outcome, then each member). */
void up_task_fail(up_task_t *t, const char *err);
/* Redis's reply r to the op: mapped (wire_reply), then the callback. */
void up_task_deliver(up_task_t *t, const backend_op_t *op, const redisReply *r);
/* A RESP3 connection's reply to a forwarded command: its bytes, as they are. */
void up_task_deliver_raw(up_task_t *t, const char *resp, size_t len);

/* ---- pool.c ---- */

/* Set up connection index of node; it connects once the loop runs (nothing happens for --test-config).
 * Commands submitted meanwhile wait for it. */
void up_conn_init(up_conn_t *c, up_node_t *node, int index);
/* A node for host:port (resolved now) or a unix socket path, with its pool: added to up->nodes. NULL
 * with a message in err if the host does not resolve. */
up_node_t *up_node_create(upstream_t *up, const char *host, int port, const char *path, char *err, size_t errlen);
/* Free a node's memory, once its handles are closed. */
void up_node_free(up_node_t *n);
/* backend_redis_create succeeded: its nodes' connections go on the loop, and every node's made later. */
void up_nodes_arm(upstream_t *up);
/* A RESP3 connection not yet started: connect now (commands submitted meanwhile wait for it). */
void up_conn_start(up_conn_t *c);
/* Free what up_conn_init allocated, once the connection's handles are closed. */
void up_conn_deinit(up_conn_t *c);
/* Every 50 ms: connect and command timeouts, expired server certificates (data = the upstream). */
void up_tick_cb(uv_timer_t *h);
/* Fail everything the connection holds with "ERR upstream NAME: reason", close it, reconnect later. */
void up_conn_fail(up_conn_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Can commands for database db be sent on c now? 0: a lone SELECT is on its way, the pump goes on later. */
int up_conn_db_ready(up_conn_t *c, int db);
/* Append a command with a slot of kind for its reply (SELECT first if db >= 0 is not the connection's). */
void up_conn_send_argv(up_conn_t *c, up_task_t *t, int kind, int db, int argc, const bytes_t *argv);
/* AUTH [user] password of the URL, as an internal command of the handshake (nothing without a password). */
void up_conn_send_auth(up_conn_t *c);
/* The same with op's command (wire_put). */
void up_conn_send_op(up_conn_t *c, up_task_t *t, int kind, int db, const backend_op_t *op);
/* May t go on c now, or must it wait for its client's earlier tasks on the pool of the other protocol? */
int up_conn_can_send(up_conn_t *c, up_task_t *t);
/* resp3.c: must t wait on c for an earlier task of its client on the sibling connection (the other
 * protocol's set)? */
int up_conn_waits(const up_conn_t *c, const up_task_t *t);
/* c answered or failed: its sibling's tasks that waited for it may go. */
void up_conn_wake_sibling(up_conn_t *c);
/* What a connection read by frames (a RESP3 one, a dedicated one) read: handled reply by reply. */
void up_conn_read_resp3(up_conn_t *c, const char *p, size_t n);
/* The RESP3 value at p written to out in its RESP2 form (out NULL: skipped); returns where it ends. */
const char *up_frame_walk(const char *p, const char *end, buf_t *out);
/* Does t need Redis's RESP3 answer (a RESP3 client's forwarded command, or a batch holding one)? */
int up_task_wants_resp3(const up_task_t *t);
/* t is about to go on dedicated connection c: HELLO 3 or HELLO 2 first if t needs the other protocol. */
void up_conn_proto_for(up_conn_t *c, const up_task_t *t);
/* pool.c: one reply for the connection's oldest slot (raw: its bytes on a RESP3 connection, else NULL). */
void up_conn_handle_reply(up_conn_t *c, const redisReply *r, const char *raw, size_t rawlen);
/* Queue t behind the connection's other tasks. */
void up_conn_enqueue(up_conn_t *c, up_task_t *t);
/* The same at the head of c's queue (a task that was first in its client's order, going again). */
void up_conn_enqueue_first(up_conn_t *c, up_task_t *t);
/* resp3.c: does c, or the connection of the other protocol beside it, hold a task of t's client submitted
 * after t (running, sent or queued)? */
int up_conn_client_later(const up_conn_t *c, const up_task_t *t);
/* route.c: is a command of t's client submitted before t waiting to go again after a CLUSTERDOWN? */
int route_client_parked_before(const upstream_t *up, const up_task_t *t);
/* Send what the connection can: plain tasks at once, one transaction or batch at a time. */
void up_conn_pump(up_conn_t *c);
/* The transaction or batch t owning c is over: free it and pump the tasks behind it. */
void up_conn_release(up_conn_t *c, up_task_t *t);

/* ---- route.c ---- */

int route_keyslot(const char *key, size_t len);
int route_slot_of(bytes_t key);
/* The connection for op, whose keys are in slot: its master's, or a replica's for a read (read-from). */
up_conn_t *route_op_conn(upstream_t *up, int slot, const backend_op_t *op);
/* The masters, ordered by the first slot each serves; how many (at most max). */
int route_masters(upstream_t *up, up_node_t **out, int max);
/* The one slot of op's keys, ROUTE_NOKEY or ROUTE_MULTI. */
int route_op_slot(const backend_op_t *op);
/* The connection for slot (ROUTE_NOKEY: any node) and a client's affinity. */
up_conn_t *route_conn(upstream_t *up, int slot, uint64_t affinity);
/* Of node n, the connection for t's op: in pool3 for a RESP3 client's forwarded command, else in pool. */
up_conn_t *route_node_conn(up_node_t *n, const backend_op_t *op);
/* The cluster's submit: by slot, split by slot, or to every master. */
void route_submit(upstream_t *up, const backend_op_t *op, backend_cb *cb, void *ctx);
/* The connection a MULTI ... EXEC runs on, or NULL with err (keys of several slots). */
up_conn_t *route_batch_conn(upstream_t *up, const up_task_t *bt, uint64_t affinity, const char **err);
/* Redis answered t's command with an error: a MOVED / ASK is followed (1), else 0. */
int route_redirect(up_conn_t *c, up_task_t *t, int kind, const redisReply *r);
/* Ask for the slot map when wanted (and at most every 100 ms), or every 10 s. */
void route_map_request(upstream_t *up);
void route_map_reply(up_conn_t *c, const redisReply *r);
void route_map_want(upstream_t *up);
void route_info(upstream_t *up, buf_t *out);
void route_metrics(upstream_t *up, buf_t *out);
/* Send the parked read-modify-writes whose wait is over (all: fail every one, at destroy). */
void route_unpark(upstream_t *up, int all);

/* ---- fan.c ---- */

void route_fan_slots(upstream_t *up, const backend_op_t *op, backend_cb *cb, void *ctx);
void route_fan_masters(upstream_t *up, const backend_op_t *op, backend_cb *cb, void *ctx);
void route_scan(upstream_t *up, const backend_op_t *op, backend_cb *cb, void *ctx);

/* ---- tracking.c ---- */

/* The invalidation connection's handshake, after AUTH: CLIENT ID, then (tracking.c) the rest. */
void up_track_handshake(up_conn_t *c);
/* A reply to one of its own commands (SLOT_TRACKER, tag). */
void up_track_reply(up_conn_t *c, unsigned long long tag, const redisReply *r);
/* An invalidation message on the invalidation connection: handled, 1; any other reply: 0. */
int up_track_push(up_conn_t *c, const redisReply *r);
/* A pool connection able to take commands: CLIENT TRACKING on it if it lacks it (default mode). */
void up_track_conn_ready(up_conn_t *c);
/* The reply to a pool connection's CLIENT TRACKING. */
void up_track_conn_reply(up_conn_t *c, unsigned long long tag, const redisReply *r);
/* Connection c failed (pool or invalidation connection): what was read under its tracking is uncertain. */
void up_track_conn_lost(up_conn_t *c, const char *why);
/* Is a read answered on c now tracked? */
int up_track_tracked(const up_conn_t *c);
/* The invalidation connection. */
up_conn_t *up_track_conn(upstream_t *up);
/* Every tick: the invalidation connection's PING and its timeouts. */
void up_track_tick(upstream_t *up, long long now_us);
void up_track_info(upstream_t *up, buf_t *out);
/* Stop tracking for good: nothing more is told, the invalidation connection closes (its handles stay for
 * destroy to close). */
void up_track_stop(upstream_t *up);
void up_track_free(upstream_t *up);
int redis_track(backend_t *b, const backend_track_opts_t *opts, backend_track_cb *cb, void *ctx, char *err,
                size_t errlen);

/* ---- pin.c ---- */

int redis_pin(backend_t *b, uint64_t affinity, backend_pin_t **p, char *err, size_t errlen);
/* The dedicated connection of op's pin, or NULL with the reason in err (it was lost, another backend's). */
up_conn_t *up_pin_conn(upstream_t *up, const backend_op_t *op, char *err, size_t errlen);
/* The client of affinity's MULTI ... EXEC: 0, it holds no pin; 1, it goes on *c, the pin's connection; -1,
 * the pin lost its connection (err says why). */
int up_pin_batch_conn(upstream_t *up, uint64_t affinity, up_conn_t **c, char *err, size_t errlen);
/* A dedicated connection failed (up_conn_fail): its pin loses it and it closes. */
void up_ded_lost(up_conn_t *c, const char *err);
/* A dedicated connection's handle closed (conn_closed_cb). */
void up_ded_handle_closed(up_conn_t *c);
/* A dedicated connection's handshake or RESET is answered: READY; one being reset becomes idle. */
void up_ded_ready(up_conn_t *c);
/* Nothing holds c back any more (pump): a dedicated one handed back is reset now. */
/* A connection claimed before its RESET went (ded_reset_due): send it now, ahead of the queue. */
void up_ded_reset_due(up_conn_t *c);
void up_ded_pumped(up_conn_t *c);
void up_ded_tick(upstream_t *up, long long now_us);
/* A reply on a subscribed dedicated connection: a pub/sub frame goes to its pin's push callback, 1; else 0. */
int up_ded_push(up_conn_t *c, const redisReply *r);
/* The reply to SLOT_SUBCHECK's PING (tag: push_sent when it was sent). */
void up_ded_subcheck_reply(up_conn_t *c, unsigned long long tag, const redisReply *r);
/* Queue the bytes of a TASK_PUSH task on c (no reply slot). */
void up_conn_send_push(up_conn_t *c, up_task_t *t);
void up_ded_flush(upstream_t *up);
void up_ded_info(upstream_t *up, buf_t *out);
/* At destroy: every dedicated connection closes, their pins are detached (released later, freed then). */
void up_ded_destroy(upstream_t *up);

/* ---- pool.c (for tracking.c) ---- */

/* Timeouts of one connection, every tick. */
void up_conn_tick(up_conn_t *c, long long now_us);
/* Write what c has to send (the uv_check does it for every pool connection; the invalidation one too). */
void up_conn_flush(up_conn_t *c);

/* ---- tx.c ---- */

/* WATCH key, GET key: the first round of a read-modify-write. */
void up_tx_start(up_conn_t *c, up_task_t *t);
/* The GET answered: compute, then MULTI / write / EXEC (or finish: the fn or check said so). */
void up_tx_got_old(up_conn_t *c, up_task_t *t, const redisReply *r);
/* EXEC answered: the result, or another round if the key changed. */
void up_tx_exec_reply(up_conn_t *c, up_task_t *t, const redisReply *r);
/* Redis answered one of the round's WATCH / MULTI / write with error r (not a redirection): kept, for
 * EXEC's EXECABORT to be reported as that error. */
void up_tx_ignored_error(up_task_t *t, const redisReply *r);
/* The write of read-modify-write m (SET key newval KEEPTTL, or with its expiry for a key it creates). */
void up_tx_send_update_write(up_conn_t *c, up_task_t *owner, const up_task_t *m, int db);

/* ---- batch.c ---- */

/* The batch's outcome, once: OK, or the reason nothing ran. */
void up_batch_outcome(up_task_t *t, const char *err);
void up_batch_free_members(up_task_t *t);
/* The database each member runs in, as Redis will run them. */
void up_batch_assign_dbs(up_task_t *t);
/* WATCH and GET what the read-modify-write members read. */
void up_batch_read(up_conn_t *c, up_task_t *t);
/* MULTI, the members still to run, EXEC. */
void up_batch_send(up_conn_t *c, up_task_t *t);
/* One of up_batch_read's GETs answered (the last one runs the members over the values). */
void up_batch_got_values(up_conn_t *c, up_task_t *t, const redisReply *r);
/* EXEC of the batch answered (raw: its RESP3 frame, for forwarded members' elements as they are; or NULL). */
void up_batch_exec_reply(up_conn_t *c, up_task_t *t, const redisReply *r, const char *raw, size_t rawlen);

/* How a batch follows each opcode's writes (wire_op_t.follow). */
wire_follow_fn up_batch_follow_get, up_batch_follow_set, up_batch_follow_mset, up_batch_follow_del,
    up_batch_follow_expire, up_batch_follow_rename, up_batch_follow_flush, up_batch_follow_command;

#endif
