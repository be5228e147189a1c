/*
 * redis:// — an upstream Redis as the backend: cachetoryd becomes a proxy, the codec chain applied on
 * the way (the cache layer does that before ops reach here).
 *
 * How: cachetoryd's own libuv streams, hiredis's reply reader (redisReader) to parse what Redis answers,
 * and a few lines of our own to write commands. Not hiredis's async API: with our own streams every
 * command produced in one turn of the loop leaves in one write per connection (a uv_check flushes), the
 * connect and command timeouts, reconnection and the handshake are ours to time, and a WATCH/MULTI/EXEC
 * sequence can own a connection while other connections carry on. Formatting a request is a few lines
 * (a multibulk of bulk strings) and needs no allocation; parsing replies (every RESP type, nested) is
 * what hiredis's reader is good at.
 *
 * Connections: a pool of upstream-pool-size connections, each pipelined (many commands in flight, the
 * replies matched in order). A client's ops always use the same connection (affinity % pool size), so
 * they reach Redis in the order the client sent them.
 *
 * Tasks: an op becomes a task queued on its connection. A plain task is one command, sent at once. A
 * transaction task (read-modify-write on encoded values, and ops that must check the old value before
 * changing it) runs WATCH + GET, computes, then MULTI + command + EXEC, retried when EXEC reports that
 * the key changed; it holds back the tasks queued after it on its connection until it is done, so that a
 * client's later commands still follow it. A batch task (a client's MULTI ... EXEC) sends MULTI, the
 * commands and EXEC in one piece; its read-modify-write members first WATCH and GET what they read,
 * database by database. A select task (a client's SELECT) answers once the database is known to exist.
 *
 * Databases: see "databases" below: a database is SELECTed alone, with nothing pipelined behind it,
 * until Redis has once said it exists; the connection's database is followed from Redis's answers
 * (a SELECT inside MULTI counts only when EXEC runs).
 *
 * Failures: a connection that fails (refused, reset, timed out) fails every task it holds with
 * "ERR upstream HOST:PORT: reason" and reconnects with backoff (50 ms doubling to upstream-retry-max).
 * While it is down, new tasks fail at once. A command that takes longer than upstream-command-timeout
 * fails the connection, so no client waits longer than that.
 */
#include "backend/backend.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "config.h"
#include "url.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/uvbuf.h"

#define UP_READ_BUF      (64 * 1024)
#define UP_TX_RETRIES    5000   /* optimistic: each round one contender wins; bounded all the same */
#define UP_RETRY_MIN_MS  50
#define UP_KNOWN_DBS     1024   /* databases below this are remembered as existing once selected */

typedef struct upstream upstream_t;
typedef struct up_conn up_conn_t;
typedef struct up_task up_task_t;

enum up_state { UP_DOWN, UP_CONNECTING, UP_HANDSHAKE, UP_READY };
enum up_kind { TASK_PLAIN, TASK_TX, TASK_BATCH, TASK_SELECT };

/* What a reply in flight is for. */
enum up_slot_kind {
    SLOT_INTERNAL,      /* AUTH / SELECT / UNWATCH / PING: an error fails the connection */
    SLOT_SELECT,        /* a SELECT of a database not yet known to exist: the connection waits for it */
    SLOT_RESULT,        /* the task's result */
    SLOT_TX_GET,        /* transaction: the GET after WATCH */
    SLOT_TX_EXEC,       /* transaction / batch: EXEC's array */
    SLOT_IGNORE,        /* WATCH, MULTI, QUEUED: only errors matter, and EXEC reports them */
};

typedef struct up_slot {
    struct up_slot *next;
    up_task_t *task;            /* NULL for internal commands */
    int kind;
    int db;                     /* SLOT_SELECT: the database selected */
    long long sent_us;
} up_slot_t;

struct up_task {
    up_task_t *next;            /* in the connection's queue */
    upstream_t *up;
    int kind;                   /* enum up_kind */
    backend_op_t op;            /* a copy; its slices point into data */
    buf_t data;                 /* owned bytes: the formatted command (plain), or the op's keys and values */
    bytes_t *slices;            /* owned slices for the op copy */
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
    int reads;                  /* TASK_BATCH: some members read-modify-write, a WATCH + GETs come first */
    int reads_left;             /* TASK_BATCH: replies to those GETs still to come */
    buf_t olds;                 /* TASK_BATCH: what the GETs brought (batch_got_values) */
    int db_start;               /* TASK_BATCH: the connection's database at MULTI */
    int created;                /* TASK_TX update: the key did not exist (BE_NEWTTL: its write sets expire_at) */
};

struct up_conn {
    upstream_t *up;
    int index;
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    uv_connect_t creq;
    uv_write_t wreq;
    uv_timer_t retry;           /* reconnection backoff */
    int state;
    int handle_open;            /* h is initialised and not yet closed */
    int writing;
    buf_t out;                  /* bytes to send */
    buf_t wbuf;                 /* bytes owned by the writes in flight, written from wbuf_off */
    size_t wbuf_off;
    size_t wchunk;              /* bytes of the uv_write in flight (util/uvbuf.h) */
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
};

struct upstream {
    backend_t base;
    uv_loop_t *loop;
    char *host;                 /* TCP host, or NULL with a unix socket */
    int port;
    struct sockaddr_storage addr;   /* the host resolved once, at start */
    char *path;                 /* unix socket path */
    char *user, *password;
    int db;
    char name[128];             /* "host:port" or the socket path, for errors */
    int npool;
    up_conn_t *pool;
    long long connect_timeout_us, command_timeout_us;
    unsigned retry_max_ms;
    uv_timer_t tick;            /* timeouts */
    uv_check_t flush;           /* one write per connection per loop turn */
    int flush_active;
    char *read_buf;
    up_slot_t *free_slots;
    up_task_t *free_tasks;      /* recycled tasks */
    int nfree_tasks;
    int destroying;             /* redis_destroy ran: handles are closing */
    int closing;                /* handles still to close before the memory goes */
    int batching;               /* inside batch(begin) */
    uint64_t batch_affinity;
    up_task_t *batch;           /* the batch being collected */
    /* INFO upstream */
    unsigned long long ncommands, nerrors, ntimeouts, nreconnects, latency_sum_us, latency_n, latency_max_us;
};

static void conn_connect(up_conn_t *c);
static void conn_fail(up_conn_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void conn_pump(up_conn_t *c);
static void up_flush_cb(uv_check_t *h);
static void batch_read(up_conn_t *c, up_task_t *t);
static void up_closed_one(upstream_t *up);
static void batch_send(up_conn_t *c, up_task_t *t);
static void batch_got_old(up_conn_t *c, up_task_t *t);
static void batch_got_values(up_conn_t *c, up_task_t *t, const redisReply *r);
static void task_finish(up_task_t *t, const backend_result_t *res);

/* ---- writing commands ---------------------------------------------------------------------------- */

static void put_header(buf_t *out, char type, size_t n)
{
    buf_append_header(out, type, (long long)n);
}

/* One command as a RESP multibulk of bulk strings. */
static void put_command(buf_t *out, int argc, const bytes_t *argv)
{
    put_header(out, '*', (size_t)argc);
    for (int i = 0; i < argc; i++) {
        put_header(out, '$', argv[i].len);
        buf_append(out, argv[i].ptr, argv[i].len);
        buf_append(out, "\r\n", 2);
    }
}

#define B(s) ((bytes_t){ (s), sizeof(s) - 1 })

typedef struct argv_builder {
    bytes_t small[16];
    bytes_t *v;
    int n, cap;
    char nums[4][24];
    int nnums;
} argv_builder_t;

static void ab_init(argv_builder_t *a, int need)
{
    a->n = 0;
    a->nnums = 0;
    a->cap = need;
    a->v = need <= 16 ? a->small : mem_alloc((size_t)need * sizeof(bytes_t));
}

static void ab_add(argv_builder_t *a, bytes_t b)
{
    a->v[a->n++] = b;
}

static void ab_num(argv_builder_t *a, long long v)
{
    char *p = a->nums[a->nnums++];
    ab_add(a, (bytes_t){ p, fmt_ll(p, v) });
}

static void ab_free(argv_builder_t *a)
{
    if (a->v != a->small)
        mem_free(a->v);
}

/* An op's expiry as it goes upstream: the client's relative ms (BE_REL), else the absolute unix ms. */
static long long op_expiry(const backend_op_t *op)
{
    return (op->flags & BE_REL) ? op->rel_ms : op->expire_at;
}

/* SET / GETEX's expiry: PX n, or PXAT n. */
static void ab_px(argv_builder_t *a, const backend_op_t *op)
{
    ab_add(a, (op->flags & BE_REL) ? B("PX") : B("PXAT"));
    ab_num(a, op_expiry(op));
}

/* SELECT db */
static void put_select(buf_t *out, int db)
{
    char num[24];
    bytes_t argv[2] = { B("SELECT"), { num, fmt_ll(num, db) } };
    put_command(out, 2, argv);
}

/* SET's NX, XX and GET, from the op's flags. */
static void ab_set_options(argv_builder_t *a, const backend_op_t *op)
{
    if (op->flags & BE_NX)
        ab_add(a, B("NX"));
    if (op->flags & BE_XX)
        ab_add(a, B("XX"));
    if (op->flags & BE_GETOLD)
        ab_add(a, B("GET"));
}

/*
 * default-ttl for keys that a command creates without giving them an expiry (BE_NEWTTL): Redis has no
 * option for "this expiry if the key is new, its own otherwise", so a short script decides on EXISTS, in
 * one atomic step. The command's reply (or its error, through pcall) is the script's.
 *
 * SET ... KEEPTTL: KEYS[1] key, ARGV[1] value, ARGV[2] expire_at (ms), ARGV[3..] NX / XX / GET.
 */
static void put_set_newttl(buf_t *out, const backend_op_t *op)
{
    static const char script[] =
        "local o={} for i=4,#ARGV do o[#o+1]=ARGV[i] end "
        "if redis.call('EXISTS',KEYS[1])==1 then o[#o+1]='KEEPTTL' else o[#o+1]=ARGV[3] o[#o+1]=ARGV[2] end "
        "return redis.pcall('SET',KEYS[1],ARGV[1],unpack(o))";
    argv_builder_t a;

    ab_init(&a, 10);
    ab_add(&a, B("EVAL"));
    ab_add(&a, (bytes_t){ script, sizeof(script) - 1 });
    ab_add(&a, B("1"));
    ab_add(&a, op->key);
    ab_add(&a, op->value);
    ab_num(&a, op_expiry(op));
    ab_add(&a, (op->flags & BE_REL) ? B("PX") : B("PXAT"));
    ab_set_options(&a, op);
    put_command(out, a.n, a.v);
    ab_free(&a);
}

/* A native read-modify-write (APPEND, SETRANGE, the INCR family): KEYS[1] key, ARGV[1] the expiry (ms
 * from now with BE_REL, else unix ms), ARGV[2] PEXPIRE or PEXPIREAT, ARGV[3..] the command as the client
 * sent it; the expiry is set only if the key did not exist and the command did not fail. */
static void put_update_newttl(buf_t *out, const backend_op_t *op)
{
    static const char script[] =
        "local e=redis.call('EXISTS',KEYS[1]) "
        "local r=redis.pcall(unpack(ARGV,3)) "
        "if e==0 and type(r)~='table' then redis.call(ARGV[2],KEYS[1],ARGV[1]) end "
        "return r";
    argv_builder_t a;

    ab_init(&a, op->argc + 6);
    ab_add(&a, B("EVAL"));
    ab_add(&a, (bytes_t){ script, sizeof(script) - 1 });
    ab_add(&a, B("1"));
    ab_add(&a, op->key);
    ab_num(&a, op_expiry(op));
    ab_add(&a, (op->flags & BE_REL) ? B("PEXPIRE") : B("PEXPIREAT"));
    for (int i = 0; i < op->argc; i++)
        ab_add(&a, op->argv[i]);
    put_command(out, a.n, a.v);
    ab_free(&a);
}

/* The Redis command for op, into out. A few ops also read their reply by the same code. */
static void put_op(buf_t *out, const backend_op_t *op)
{
    argv_builder_t a;
    size_t k;

    switch (op->code) {
    case BE_GET:
        ab_init(&a, 4);
        if (op->flags & BE_GETDEL) {
            ab_add(&a, B("GETDEL"));
            ab_add(&a, op->key);
        } else if (op->flags & BE_SETTTL) {
            ab_add(&a, B("GETEX"));
            ab_add(&a, op->key);
            if (op->expire_at < 0)
                ab_add(&a, B("PERSIST"));
            else
                ab_px(&a, op);
        } else {
            ab_add(&a, B("GET"));
            ab_add(&a, op->key);
        }
        break;
    case BE_SET:
        if ((op->flags & BE_KEEPTTL) && (op->flags & BE_NEWTTL)) {
            put_set_newttl(out, op);
            return;
        }
        ab_init(&a, 8);
        ab_add(&a, B("SET"));
        ab_add(&a, op->key);
        ab_add(&a, op->value);
        ab_set_options(&a, op);
        if (op->flags & BE_KEEPTTL)
            ab_add(&a, B("KEEPTTL"));
        else if (op->expire_at >= 0)
            ab_px(&a, op);
        break;
    case BE_MGET:
    case BE_DEL:
    case BE_EXISTS:
    case BE_TOUCH:
        ab_init(&a, (int)op->nkeys + 1);
        ab_add(&a, op->code == BE_MGET ? B("MGET") : op->code == BE_DEL ? B("DEL")
                 : op->code == BE_EXISTS ? B("EXISTS") : B("TOUCH"));
        for (k = 0; k < op->nkeys; k++)
            ab_add(&a, op->keys[k]);
        break;
    case BE_MSET:
        if (op->expire_at >= 0) {
            /* MSET has no expiry: one script sets every key with it, atomically (MSETNX: if none exists) */
            static const char script[] =
                "local n=#KEYS "
                "if ARGV[n+2]=='1' then for i=1,n do if redis.call('EXISTS',KEYS[i])==1 then return 0 end end end "
                "for i=1,n do redis.call('SET',KEYS[i],ARGV[i],ARGV[n+3],ARGV[n+1]) end return 1";
            char nk[24];
            int len = snprintf(nk, sizeof(nk), "%zu", op->nkeys);
            ab_init(&a, (int)op->nkeys * 2 + 6);
            ab_add(&a, B("EVAL"));
            ab_add(&a, (bytes_t){ script, sizeof(script) - 1 });
            ab_add(&a, (bytes_t){ nk, (size_t)len });
            for (k = 0; k < op->nkeys; k++)
                ab_add(&a, op->keys[k]);
            for (k = 0; k < op->nkeys; k++)
                ab_add(&a, op->vals[k]);
            ab_num(&a, op_expiry(op));
            ab_add(&a, (op->flags & BE_NX) ? B("1") : B("0"));
            ab_add(&a, (op->flags & BE_REL) ? B("PX") : B("PXAT"));
            put_command(out, a.n, a.v);
            ab_free(&a);
            return;
        }
        ab_init(&a, (int)op->nkeys * 2 + 1);
        ab_add(&a, (op->flags & BE_NX) ? B("MSETNX") : B("MSET"));
        for (k = 0; k < op->nkeys; k++) {
            ab_add(&a, op->keys[k]);
            ab_add(&a, op->vals[k]);
        }
        break;
    case BE_TYPE:
        ab_init(&a, 2);
        ab_add(&a, B("TYPE"));
        ab_add(&a, op->key);
        break;
    case BE_EXPIRE:
        ab_init(&a, 4);
        if (op->expire_at < 0) {
            ab_add(&a, B("PERSIST"));
            ab_add(&a, op->key);
            break;
        }
        ab_add(&a, (op->flags & BE_REL) ? B("PEXPIRE") : B("PEXPIREAT"));
        ab_add(&a, op->key);
        ab_num(&a, op_expiry(op));
        if (op->flags & BE_NX)
            ab_add(&a, B("NX"));
        else if (op->flags & BE_XX)
            ab_add(&a, B("XX"));
        if (op->flags & BE_GT)
            ab_add(&a, B("GT"));
        else if (op->flags & BE_LT)
            ab_add(&a, B("LT"));
        break;
    case BE_TTL:
        ab_init(&a, 2);
        ab_add(&a, (op->flags & BE_REL) ? B("PTTL") : B("PEXPIRETIME"));
        ab_add(&a, op->key);
        break;
    case BE_KEYS:
        ab_init(&a, 2);
        ab_add(&a, B("KEYS"));
        ab_add(&a, op->pattern.ptr ? op->pattern : B("*"));
        break;
    case BE_SCAN: {
        char cur[24];
        int len = snprintf(cur, sizeof(cur), "%" PRIu64, op->cursor);
        ab_init(&a, 8);
        ab_add(&a, B("SCAN"));
        ab_add(&a, (bytes_t){ cur, (size_t)len });
        ab_add(&a, B("COUNT"));
        ab_num(&a, (long long)op->count);
        if (op->pattern.ptr) {
            ab_add(&a, B("MATCH"));
            ab_add(&a, op->pattern);
        }
        if (op->flags & BE_TYPEFILTER) {
            ab_add(&a, B("TYPE"));
            ab_add(&a, op->type_name);
        }
        put_command(out, a.n, a.v);     /* cur lives in this block */
        ab_free(&a);
        return;
    }
    case BE_RANDOMKEY:
        ab_init(&a, 1);
        ab_add(&a, B("RANDOMKEY"));
        break;
    case BE_RENAME:
        ab_init(&a, 3);
        ab_add(&a, (op->flags & BE_NX) ? B("RENAMENX") : B("RENAME"));
        ab_add(&a, op->key);
        ab_add(&a, op->key2);
        break;
    case BE_DBSIZE:
        ab_init(&a, 1);
        ab_add(&a, B("DBSIZE"));
        break;
    case BE_FLUSH:
        ab_init(&a, 1);
        ab_add(&a, (op->flags & BE_ALLDB) ? B("FLUSHALL") : B("FLUSHDB"));
        break;
    case BE_INFO:
        ab_init(&a, 2);
        ab_add(&a, B("INFO"));
        ab_add(&a, op->pattern);
        break;
    case BE_SELECT:
        put_select(out, op->db2);
        return;
    case BE_UPDATE:
        if (op->flags & BE_NEWTTL) {
            put_update_newttl(out, op);
            return;
        }
        /* the command as the client sent it */
        /* fall through */
    case BE_COMMAND:
    default:
        put_command(out, op->argc, op->argv);
        return;
    }
    put_command(out, a.n, a.v);
    ab_free(&a);
}

/* ---- replies ------------------------------------------------------------------------------------- */

/* A reply as RESP2 bytes, for passthrough. */
static void put_reply(buf_t *out, const redisReply *r)
{
    switch (r->type) {
    case REDIS_REPLY_STRING:
        put_header(out, '$', r->len);
        buf_append(out, r->str, r->len);
        buf_append(out, "\r\n", 2);
        break;
    case REDIS_REPLY_ARRAY:
        put_header(out, '*', r->elements);
        for (size_t i = 0; i < r->elements; i++)
            put_reply(out, r->element[i]);
        break;
    case REDIS_REPLY_INTEGER:
        buf_append_header(out, ':', r->integer);
        break;
    case REDIS_REPLY_NIL:
        buf_append(out, "$-1\r\n", 5);
        break;
    case REDIS_REPLY_STATUS:
        buf_append(out, "+", 1);
        buf_append(out, r->str, r->len);
        buf_append(out, "\r\n", 2);
        break;
    case REDIS_REPLY_ERROR:
        buf_append(out, "-", 1);
        buf_append(out, r->str, r->len);
        buf_append(out, "\r\n", 2);
        break;
    }
}

/*
 * Turn Redis's reply to op into the backend result and call the task's callback. vec is scratch for
 * array results (freed after the callback).
 */
static void deliver(up_task_t *t, const backend_op_t *op, const redisReply *r)
{
    backend_result_t res = { .status = BE_OK };
    bytes_t *vec = NULL;
    buf_t raw;

    buf_init(&raw);
    if (r->type == REDIS_REPLY_ERROR && op->code != BE_COMMAND) {
        res.status = BE_ERR;
        res.err = r->str;
        task_finish(t, &res);
        return;
    }
    switch (op->code) {
    case BE_GET:
    case BE_RANDOMKEY:
    case BE_INFO:
        if (r->type == REDIS_REPLY_STRING) {
            res.value = (bytes_t){ r->str, r->len };
            res.has_value = 1;
        } else {
            res.status = BE_NIL;
        }
        break;
    case BE_SET:
        if (op->flags & BE_GETOLD) {
            if (r->type == REDIS_REPLY_STRING) {
                res.value = (bytes_t){ r->str, r->len };
                res.has_value = 1;
            }
        } else if (r->type == REDIS_REPLY_NIL) {
            res.status = BE_NIL;
        }
        break;
    case BE_MGET:
    case BE_KEYS:
    case BE_SCAN: {
        const redisReply *arr = r;
        if (op->code == BE_SCAN) {
            if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING) {
                res.status = BE_ERR;
                res.err = "ERR upstream: unexpected reply to SCAN";
                break;
            }
            res.cursor = strtoull(r->element[0]->str, NULL, 10);
            arr = r->element[1];
        }
        if (arr->type != REDIS_REPLY_ARRAY) {
            res.status = BE_ERR;
            res.err = "ERR upstream: unexpected reply, an array was expected";
            break;
        }
        vec = mem_alloc((arr->elements ? arr->elements : 1) * sizeof(*vec));
        for (size_t i = 0; i < arr->elements; i++) {
            const redisReply *e = arr->element[i];
            vec[i] = e->type == REDIS_REPLY_STRING ? (bytes_t){ e->str, e->len } : (bytes_t){ NULL, 0 };
        }
        res.values = vec;
        res.nvalues = arr->elements;
        break;
    }
    case BE_MSET:
        res.integer = r->type == REDIS_REPLY_INTEGER ? r->integer : 1;
        break;
    case BE_TYPE:
        if (r->type == REDIS_REPLY_STATUS) {
            res.integer = strcmp(r->str, "none") != 0;
            res.value = (bytes_t){ r->str, r->len };
            res.type_known = 1;
        }
        break;
    case BE_COMMAND:
        put_reply(&raw, r);
        res.resp = (bytes_t){ raw.data, raw.len };
        break;
    case BE_UPDATE:
        if (r->type == REDIS_REPLY_STRING) {
            res.value = (bytes_t){ r->str, r->len };
            res.has_value = 1;
        } else {
            res.integer = r->integer;
        }
        break;
    default:
        res.integer = r->integer;       /* integers; OK replies leave 0 */
        break;
    }
    task_finish(t, &res);
    mem_free(vec);
    buf_deinit(&raw);
}

/* ---- tasks --------------------------------------------------------------------------------------- */

/* Tasks are recycled: a plain task per client command is the hot path. Small buffers stay with them. */
#define UP_FREE_TASKS_MAX 1024

static void task_free(up_task_t *t)
{
    upstream_t *up = t->up;

    mem_free(t->slices);
    mem_free(t->members);
    t->slices = NULL;
    t->members = NULL;
    if (up == NULL || up->nfree_tasks >= UP_FREE_TASKS_MAX || t->data.cap > 4096 || t->newval.cap > 4096 ||
        t->olds.cap > 4096) {
        buf_deinit(&t->data);
        buf_deinit(&t->newval);
        buf_deinit(&t->olds);
        mem_free(t);
        return;
    }
    t->next = up->free_tasks;
    up->free_tasks = t;
    up->nfree_tasks++;
}

/* Call the callback once; a batch's members are finished one by one by the batch. */
static void task_finish(up_task_t *t, const backend_result_t *res)
{
    if (t->done)
        return;
    t->done = 1;
    t->cb(t->ctx, res);
}

/* A batch's outcome (the backend interface's batch end callback): OK, or the reason nothing ran. */
static void batch_outcome(up_task_t *t, const char *err)
{
    backend_result_t res = { .status = err ? BE_ERR : BE_OK, .err = err };
    if (t->done)
        return;
    t->done = 1;
    if (t->cb)
        t->cb(t->ctx, &res);
}

static void task_fail(up_task_t *t, const char *err)
{
    backend_result_t res = { .status = BE_ERR, .err = err };
    if (!t->done && t->kind != TASK_BATCH && t->up != NULL)
        t->up->nerrors++;
    if (t->kind == TASK_BATCH) {
        batch_outcome(t, err);
        for (int i = 0; i < t->nmembers; i++)
            task_fail(t->members[i], err);
        return;
    }
    task_finish(t, &res);
}

/* Copy what op points at into t, so the task can outlive the caller's buffers. */
static void task_own_op(up_task_t *t, const backend_op_t *op)
{
    size_t nsl = op->nkeys * 2 + (size_t)op->argc;
    size_t *offs = mem_alloc((nsl + 8) * sizeof(*offs));
    const bytes_t *src[8] = { &op->key, &op->key2, &op->value, &op->pattern, &op->type_name };
    size_t n = 0;

    t->op = *op;
    /* lay out: key, key2, value, pattern, type_name, keys..., vals..., argv... */
    for (int i = 0; i < 5; i++) {
        offs[n++] = t->data.len;
        if (src[i]->ptr)
            buf_append(&t->data, src[i]->ptr, src[i]->len);
    }
    for (size_t i = 0; i < op->nkeys; i++) {
        offs[n++] = t->data.len;
        buf_append(&t->data, op->keys[i].ptr, op->keys[i].len);
    }
    if (op->vals) {
        for (size_t i = 0; i < op->nkeys; i++) {
            offs[n++] = t->data.len;
            buf_append(&t->data, op->vals[i].ptr, op->vals[i].len);
        }
    }
    for (int i = 0; i < op->argc; i++) {
        offs[n++] = t->data.len;
        buf_append(&t->data, op->argv[i].ptr, op->argv[i].len);
    }
    const char *base = t->data.data ? t->data.data : "";
    n = 0;
    bytes_t *dst[5] = { &t->op.key, &t->op.key2, &t->op.value, &t->op.pattern, &t->op.type_name };
    for (int i = 0; i < 5; i++, n++)
        if (src[i]->ptr)
            *dst[i] = (bytes_t){ base + offs[n], src[i]->len };
    t->slices = mem_alloc((nsl ? nsl : 1) * sizeof(*t->slices));
    bytes_t *sl = t->slices;
    for (size_t i = 0; i < op->nkeys; i++, n++)
        sl[i] = (bytes_t){ base + offs[n], op->keys[i].len };
    t->op.keys = op->keys ? sl : NULL;
    sl += op->nkeys;
    if (op->vals) {
        for (size_t i = 0; i < op->nkeys; i++, n++)
            sl[i] = (bytes_t){ base + offs[n], op->vals[i].len };
        t->op.vals = sl;
        sl += op->nkeys;
    }
    for (int i = 0; i < op->argc; i++, n++)
        sl[i] = (bytes_t){ base + offs[n], op->argv[i].len };
    t->op.argv = op->argc ? sl : NULL;
    mem_free(offs);
}

/* ---- the connection: slots, writing, reading ----------------------------------------------------- */

static up_slot_t *slot_push(up_conn_t *c, up_task_t *t, int kind)
{
    upstream_t *up = c->up;
    up_slot_t *s = up->free_slots;
    if (s != NULL)
        up->free_slots = s->next;
    else
        s = mem_alloc(sizeof(*s));
    s->next = NULL;
    s->task = t;
    s->kind = kind;
    s->sent_us = clock_us_monotonic();
    if (c->slots_tail)
        c->slots_tail->next = s;
    else
        c->slots = s;
    c->slots_tail = s;
    c->nslots++;
    up->ncommands++;
    return s;
}

static void slot_put(upstream_t *up, up_slot_t *s)
{
    s->next = up->free_slots;
    up->free_slots = s;
}

static void flush_schedule(upstream_t *up)
{
    if (!up->flush_active) {
        uv_check_start(&up->flush, up_flush_cb);
        up->flush_active = 1;
    }
}

/* ---- databases ------------------------------------------------------------------------------------ */

/*
 * A client starts in the URL's database (backend_t.default_db) and SELECT n reaches database n.
 *
 * Commands for many clients share a connection, so the connection SELECTs whichever database the next
 * command is for. Redis answers a SELECT of a database it does not have with an error and stays where
 * it was: pipelined behind such a SELECT, the next command would run in the wrong database. So a
 * connection SELECTs a database it has not yet seen succeed alone, and sends nothing more until Redis
 * answers (conn_db_ready); once one succeeded, that database is known on this connection and is
 * SELECTed in the pipeline. Known databases are forgotten when the connection is made again, and an
 * error to a pipelined SELECT (or any command of our own) fails the connection.
 */
static int db_known(const up_conn_t *c, int db)
{
    if (db == c->up->db)
        return 1;               /* the handshake selected it */
    return db >= 0 && db < UP_KNOWN_DBS && ((c->known_dbs[db / 64] >> (db % 64)) & 1);
}

static void db_learn(up_conn_t *c, int db)
{
    if (db >= 0 && db < UP_KNOWN_DBS)
        c->known_dbs[db / 64] |= 1ull << (db % 64);
}

/*
 * Can commands for client database db be sent on c now? 1 if the connection is there or the database
 * is known; otherwise a lone SELECT is sent (if none is awaited already) and 0 returned: conn_pump
 * goes on when Redis answers it.
 */
static int conn_db_ready(up_conn_t *c, int db)
{
    if (c->select_wait)
        return 0;
    if (db == c->db || db_known(c, db))
        return 1;
    put_select(&c->out, db);
    up_slot_t *s = slot_push(c, NULL, SLOT_SELECT);
    s->db = db;
    c->db_before = c->db;
    c->db = db;
    c->select_wait = 1;
    flush_schedule(c->up);
    return 0;
}

/*
 * Append a command with a slot for its reply; SELECT first when it is for another database than the
 * connection's (db -1: wherever the connection is). The caller made sure the database is known
 * (conn_db_ready).
 */
static void conn_send(up_conn_t *c, up_task_t *t, int kind, int db, void (*put)(buf_t *, const void *), const void *arg)
{
    if (db >= 0 && db != c->db) {
        put_select(&c->out, db);
        slot_push(c, NULL, SLOT_INTERNAL);
        c->db = db;
    }
    put(&c->out, arg);
    slot_push(c, t, kind);
    flush_schedule(c->up);
}

static void put_op_cb(buf_t *out, const void *arg)
{
    put_op(out, arg);
}

static void put_bytes_cb(buf_t *out, const void *arg)
{
    const buf_t *b = arg;
    buf_append(out, b->data, b->len);
}

typedef struct cmdv {
    int argc;
    const bytes_t *argv;
} cmdv_t;

static void put_cmdv_cb(buf_t *out, const void *arg)
{
    const cmdv_t *v = arg;
    put_command(out, v->argc, v->argv);
}

static void conn_send_argv(up_conn_t *c, up_task_t *t, int kind, int db, int argc, const bytes_t *argv)
{
    cmdv_t v = { argc, argv };
    conn_send(c, t, kind, db, put_cmdv_cb, &v);
}

static void conn_write_cb(uv_write_t *w, int status);

/* Write the next piece of wbuf, at most UVBUF_MAX bytes. */
static void conn_write_next(up_conn_t *c)
{
    size_t n = c->wbuf.len - c->wbuf_off;

    uv_buf_t b = uvbuf_piece(c->wbuf.data + c->wbuf_off, n);
    c->wchunk = b.len;
    c->wreq.data = c;
    if (uv_write(&c->wreq, &c->h.stream, &b, 1, conn_write_cb) < 0) {
        conn_fail(c, "write failed");
        return;
    }
    c->writing = 1;
}

static void conn_write_cb(uv_write_t *w, int status)
{
    up_conn_t *c = w->data;
    c->writing = 0;
    if (status < 0) {
        buf_reset(&c->wbuf);
        c->wbuf_off = 0;
        if (c->state != UP_DOWN)
            conn_fail(c, "write failed: %s", uv_strerror(status));
        return;
    }
    c->wbuf_off += c->wchunk;
    if (c->wbuf_off < c->wbuf.len) {
        conn_write_next(c);
        return;
    }
    buf_reset(&c->wbuf);
    c->wbuf_off = 0;
    if (c->out.len > 0)
        flush_schedule(c->up);
}

static void conn_flush(up_conn_t *c)
{
    if (c->writing || c->out.len == 0 || c->state == UP_DOWN || c->state == UP_CONNECTING)
        return;
    uv_buf_t b = uvbuf_piece(c->out.data, c->out.len);
    int n = uv_try_write(&c->h.stream, &b, 1);
    if (n == UV_EAGAIN || n == UV_ENOSYS)
        n = 0;
    if (n < 0) {
        conn_fail(c, "write failed: %s", uv_strerror(n));
        return;
    }
    if ((size_t)n == c->out.len) {
        c->out.len = 0;
        return;
    }
    buf_t t = c->wbuf;
    c->wbuf = c->out;
    c->out = t;
    c->out.len = 0;
    c->wbuf_off = (size_t)n;
    conn_write_next(c);
}

static void up_flush_cb(uv_check_t *h)
{
    upstream_t *up = h->data;
    uv_check_stop(h);
    up->flush_active = 0;
    for (int i = 0; i < up->npool; i++)
        conn_flush(&up->pool[i]);
}

/* ---- transactions (WATCH / GET / MULTI / cmd / EXEC) ---------------------------------------------- */

static void tx_start(up_conn_t *c, up_task_t *t)
{
    bytes_t watch[2] = { B("WATCH"), t->op.key };
    bytes_t get[2] = { B("GET"), t->op.key };
    conn_send_argv(c, t, SLOT_IGNORE, t->op.db, 2, watch);
    conn_send_argv(c, t, SLOT_TX_GET, t->op.db, 2, get);
}

/*
 * The write of a read-modify-write task m, computed from the old value: SET key newval KEEPTTL, or, for a
 * key the update creates (m->created) when the op carries BE_NEWTTL (default-ttl), SET key newval PXAT
 * expire_at. The WATCH makes "did not exist" still true when EXEC runs.
 */
static void send_update_write(up_conn_t *c, up_task_t *owner, const up_task_t *m, int db)
{
    char at[24];
    bytes_t set[5] = { B("SET"), m->op.key, { m->newval.data ? m->newval.data : "", m->newval.len },
                       B("KEEPTTL") };
    int n = 4;

    if (m->created && (m->op.flags & BE_NEWTTL)) {
        set[3] = (m->op.flags & BE_REL) ? B("PX") : B("PXAT");
        set[4] = (bytes_t){ at, fmt_ll(at, op_expiry(&m->op)) };
        n = 5;
    }
    conn_send_argv(c, owner, SLOT_IGNORE, db, n, set);
}

/* The old value arrived: compute, then MULTI / the write / EXEC, all in one piece. */
static void tx_got_old(up_conn_t *c, up_task_t *t, const redisReply *r)
{
    bytes_t old, *oldp = NULL;
    bytes_t unwatch[1] = { B("UNWATCH") };

    if (r->type == REDIS_REPLY_ERROR) {
        conn_send_argv(c, NULL, SLOT_INTERNAL, -1, 1, unwatch);
        backend_result_t res = { .status = BE_ERR, .err = r->str };
        task_finish(t, &res);
        return;
    }
    if (r->type == REDIS_REPLY_STRING) {
        old = (bytes_t){ r->str, r->len };
        oldp = &old;
    }
    if (t->op.code == BE_UPDATE) {
        memset(&t->txres, 0, sizeof(t->txres));
        buf_reset(&t->newval);
        t->created = oldp == NULL;
        int rc = t->op.update(t->op.update_arg, oldp, &t->newval, &t->txres);
        if (rc != 0) {
            conn_send_argv(c, NULL, SLOT_INTERNAL, -1, 1, unwatch);
            if (rc < 0)
                t->txres.status = BE_ERR;
            task_finish(t, &t->txres);
            return;
        }
        /* INCRBYFLOAT's result may point into newval, which stays with the task */
    } else if (t->op.check != NULL && oldp != NULL) {
        const char *err = NULL;
        if (t->op.check(t->op.check_arg, oldp, &err) != 0) {
            conn_send_argv(c, NULL, SLOT_INTERNAL, -1, 1, unwatch);
            backend_result_t res = { .status = BE_ERR, .err = err };
            task_finish(t, &res);
            return;
        }
    }
    bytes_t multi[1] = { B("MULTI") }, exec[1] = { B("EXEC") };
    conn_send_argv(c, t, SLOT_IGNORE, -1, 1, multi);
    if (t->op.code == BE_UPDATE) {
        send_update_write(c, t, t, -1);
    } else {
        conn_send(c, t, SLOT_IGNORE, -1, put_op_cb, &t->op);
    }
    conn_send_argv(c, t, SLOT_TX_EXEC, -1, 1, exec);
}

/* The connection is free for the next queued tasks once the transaction or batch owning it is over. */
static void conn_release(up_conn_t *c, up_task_t *t)
{
    if (c->active == t)
        c->active = NULL;
    task_free(t);
    conn_pump(c);
}

/* Free the members of a batch that is over. */
static void batch_free_members(up_task_t *t)
{
    for (int i = 0; i < t->nmembers; i++)
        task_free(t->members[i]);
    t->nmembers = 0;
}

/*
 * EXEC of a client's MULTI answered. An array: each member sent gets its element, and the connection is
 * in the database of the last SELECT member that succeeded. Anything else (the transaction aborted,
 * nothing ran): the connection stays where it was at MULTI; a null reply with read-modify-write members
 * means a key they read changed, and the batch reads and computes again.
 */
static void batch_exec_reply(up_conn_t *c, up_task_t *t, const redisReply *r)
{
    int nsent = 0;

    for (int i = 0; i < t->nmembers; i++)
        nsent += t->members[i]->sent;
    c->db = t->db_start;
    if (r->type == REDIS_REPLY_NIL && t->reads) {
        if (++t->retries > UP_TX_RETRIES) {
            task_fail(t, "ERR upstream: the keys kept changing during a transaction, try again");
            batch_free_members(t);
            conn_release(c, t);
            return;
        }
        batch_read(c, t);
        return;
    }
    if (r->type == REDIS_REPLY_ARRAY && (int)r->elements == nsent) {
        size_t e = 0;
        batch_outcome(t, NULL);
        for (int i = 0; i < t->nmembers; i++) {
            up_task_t *m = t->members[i];
            if (!m->sent)
                continue;               /* failed before MULTI: already answered */
            const redisReply *el = r->element[e++];
            if (m->op.code == BE_SELECT && el->type != REDIS_REPLY_ERROR)
                c->db = m->op.db2;
            if (m->kind == TASK_TX && m->op.code == BE_UPDATE) {
                if (el->type == REDIS_REPLY_ERROR) {
                    task_fail(m, el->str);
                } else {
                    m->txres.status = BE_OK;
                    task_finish(m, &m->txres);
                }
            } else {
                deliver(m, &m->op, el);
            }
        }
    } else {
        task_fail(t, r->type == REDIS_REPLY_ERROR ? r->str : "ERR upstream: unexpected reply to EXEC");
    }
    batch_free_members(t);
    conn_release(c, t);
}

static void tx_exec_reply(up_conn_t *c, up_task_t *t, const redisReply *r)
{
    if (t->kind == TASK_BATCH) {
        batch_exec_reply(c, t, r);
        return;
    }
    if (r->type == REDIS_REPLY_NIL) {             /* the key changed between GET and EXEC: again */
        if (++t->retries > UP_TX_RETRIES) {
            task_fail(t, "ERR upstream: the key kept changing during a read-modify-write, try again");
            conn_release(c, t);
            return;
        }
        tx_start(c, t);
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 1) {
        task_fail(t, r->type == REDIS_REPLY_ERROR ? r->str : "ERR upstream: unexpected reply to EXEC");
    } else if (t->op.code == BE_UPDATE) {
        if (r->element[0]->type == REDIS_REPLY_ERROR) {
            task_fail(t, r->element[0]->str);
        } else {
            t->txres.status = BE_OK;
            task_finish(t, &t->txres);
        }
    } else {
        deliver(t, &t->op, r->element[0]);
    }
    conn_release(c, t);
}

/* ---- a client's MULTI ... EXEC ------------------------------------------------------------------- */

/*
 * The database each member runs in, as Redis will run them: the client's database at EXEC, changed by
 * each SELECT member still to run (one whose database Redis refused was answered already and changes
 * nothing, as in Redis). Members' op.db is set to it; SELECT members keep theirs (where they start).
 */
static void batch_assign_dbs(up_task_t *t)
{
    int db = t->op.db;

    for (int i = 0; i < t->nmembers; i++) {
        up_task_t *m = t->members[i];
        if (m->op.code == BE_SELECT) {
            m->op.db = db;
            if (!m->done)
                db = m->op.db2;
        } else {
            m->op.db = db;
        }
    }
}

/* A key that a read-modify-write member reads, in the database it reads it from. */
typedef struct dbkey {
    int db;
    bytes_t key;
} dbkey_t;

static int dbkey_eq(int db, bytes_t a, int db2, bytes_t b)
{
    return db == db2 && a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0;
}

/*
 * The keys the batch's read-modify-write members read, each once, grouped by database (the groups in
 * the order their databases first appear): one WATCH per group.
 */
static int batch_keys(up_task_t *t, dbkey_t **keys)
{
    int n = 0;
    *keys = mem_alloc((size_t)(t->nmembers ? t->nmembers : 1) * sizeof(**keys));
    for (int i = 0; i < t->nmembers; i++) {
        const up_task_t *m = t->members[i];
        int dup = 0, at = n;
        if (m->kind != TASK_TX || m->done)
            continue;
        for (int j = 0; j < n && !dup; j++) {
            dup = dbkey_eq((*keys)[j].db, (*keys)[j].key, m->op.db, m->op.key);
            if ((*keys)[j].db == m->op.db)
                at = j + 1;     /* after the last key of its database */
        }
        if (dup)
            continue;
        memmove(*keys + at + 1, *keys + at, (size_t)(n - at) * sizeof(**keys));
        (*keys)[at] = (dbkey_t){ m->op.db, m->op.key };
        n++;
    }
    return n;
}

/*
 * WATCH the keys the batch reads, database by database, and GET each: the computation needs them. GET,
 * not MGET: a key of another type must answer WRONGTYPE to the member that reads it, not look absent
 * (the member would overwrite a hash with a string).
 */
static void batch_read(up_conn_t *c, up_task_t *t)
{
    dbkey_t *keys;
    int n = batch_keys(t, &keys);
    bytes_t *argv = mem_alloc((size_t)(n + 1) * sizeof(*argv));

    buf_reset(&t->olds);
    t->reads_left = n;
    for (int i = 0; i < n;) {
        int j = i, db = keys[i].db;
        for (; j < n && keys[j].db == db; j++)
            argv[1 + j - i] = keys[j].key;
        argv[0] = B("WATCH");
        conn_send_argv(c, t, SLOT_IGNORE, db, j - i + 1, argv);
        for (; i < j; i++) {
            bytes_t get[2] = { B("GET"), keys[i].key };
            conn_send_argv(c, t, SLOT_TX_GET, -1, 2, get);
        }
    }
    mem_free(argv);
    mem_free(keys);
}

/* MULTI, the members still to run (a read-modify-write as SET ... KEEPTTL of what it computed), EXEC. */
static void batch_send(up_conn_t *c, up_task_t *t)
{
    bytes_t multi[1] = { B("MULTI") }, exec[1] = { B("EXEC") };

    conn_send_argv(c, t, SLOT_IGNORE, t->op.db, 1, multi);
    t->db_start = c->db;
    for (int i = 0; i < t->nmembers; i++) {
        up_task_t *m = t->members[i];
        if (m->done)
            continue;
        m->sent = 1;
        if (m->op.code == BE_SELECT)
            c->db = m->op.db2;          /* inside MULTI: it counts if EXEC runs (batch_exec_reply) */
        if (m->kind == TASK_TX && m->op.code == BE_UPDATE) {
            send_update_write(c, t, m, -1);
        } else {
            conn_send(c, t, SLOT_IGNORE, -1, put_op_cb, &m->op);
        }
    }
    conn_send_argv(c, t, SLOT_TX_EXEC, -1, 1, exec);
}

/* What the batch knows of a key as its members run in order: the stored (encoded) bytes, or absent. */
typedef struct overlay {
    int db;
    bytes_t key;
    bytes_t val;                /* ptr NULL: absent */
    const char *err;            /* not NULL: reading it gives this error (a key of another type) */
} overlay_t;

static overlay_t *overlay_find(overlay_t *ov, int n, int db, bytes_t key)
{
    for (int i = 0; i < n; i++)
        if (dbkey_eq(ov[i].db, ov[i].key, db, key))
            return &ov[i];
    return NULL;
}

static overlay_t *overlay_set(overlay_t **ov, int *n, int *cap, int db, bytes_t key, bytes_t val)
{
    overlay_t *o = overlay_find(*ov, *n, db, key);
    if (o == NULL) {
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 8;
            *ov = mem_realloc(*ov, (size_t)*cap * sizeof(**ov));
        }
        o = &(*ov)[(*n)++];
        o->db = db;
        o->key = key;
    }
    o->val = val;
    o->err = NULL;
    return o;
}

/*
 * Follow RENAME / RENAMENX src dst where a later member reads one of them: dst takes src's value (or
 * its other type), src goes. Returns -1 when the outcome depends on what the batch did not read: src's
 * value, or whether dst exists for RENAMENX.
 */
static int overlay_rename(overlay_t **ov, int *n, int *cap, const backend_op_t *op)
{
    overlay_t *src = overlay_find(*ov, *n, op->db, op->key);
    overlay_t *dst = overlay_find(*ov, *n, op->db, op->key2);

    if (src == NULL)
        return -1;
    if (src->val.ptr == NULL && src->err == NULL)
        return 0;                       /* ERR no such key: nothing changes */
    if (dbkey_eq(op->db, op->key, op->db, op->key2))
        return 0;
    if (op->flags & BE_NX) {
        if (dst == NULL)
            return -1;
        if (dst->val.ptr != NULL || dst->err != NULL)
            return 0;                   /* RENAMENX onto an existing key does nothing */
    }
    bytes_t val = src->val;
    const char *err = src->err;
    overlay_set(ov, n, cap, op->db, op->key2, val)->err = err;
    overlay_set(ov, n, cap, op->db, op->key, (bytes_t){ NULL, 0 });
    return 0;
}

/* Does op's expiry (EXPIRE, GETEX) delete the key when it runs? */
static int expires_now(const backend_op_t *op)
{
    if (op->expire_at < 0)
        return 0;                       /* PERSIST */
    return (op->flags & BE_REL) ? op->rel_ms <= 0 : op->expire_at <= clock_ms();
}

/* Does a read-modify-write member after member i read key in db? */
static int later_reads(const up_task_t *t, int i, int db, bytes_t key)
{
    for (int j = i + 1; j < t->nmembers; j++) {
        const up_task_t *m = t->members[j];
        if (m->kind == TASK_TX && dbkey_eq(m->op.db, m->op.key, db, key))
            return 1;
    }
    return 0;
}

/* What batch_read's GETs brought, kept in t->olds in key order: a tag, a length, the bytes. */
enum { OLD_ABSENT, OLD_VALUE, OLD_ERROR };

/* One GET of batch_read answered: keep what it said. */
static void batch_got_values(up_conn_t *c, up_task_t *t, const redisReply *r)
{
    char tag = r->type == REDIS_REPLY_STRING ? OLD_VALUE : r->type == REDIS_REPLY_ERROR ? OLD_ERROR : OLD_ABSENT;
    size_t len = tag == OLD_ABSENT ? 0 : r->len;

    buf_append(&t->olds, &tag, 1);
    buf_append(&t->olds, &len, sizeof(len));
    if (tag != OLD_ABSENT) {
        buf_append(&t->olds, r->str, len);
        buf_append(&t->olds, "", 1);            /* an error text is used as a C string */
    }
    if (--t->reads_left == 0)
        batch_got_old(c, t);
}

/*
 * The values arrived: run the members in order over them, as Redis would inside the transaction. Writes
 * of earlier members are followed (SET, MSET, DEL, GETDEL, EXPIRE / GETEX that delete, RENAME, and the
 * read-modify-writes themselves); a member that changes a later-read key in a way that cannot be followed
 * here (a conditional SET or EXPIRE, MSETNX, FLUSH, a forwarded command on it or of unknown keys) makes
 * the whole transaction fail, with nothing run.
 */
static void batch_got_old(up_conn_t *c, up_task_t *t)
{
    dbkey_t *keys;
    int nkeys = batch_keys(t, &keys), nov = 0, cap = 0;
    overlay_t *ov = NULL;
    const char *bail = NULL;
    size_t off = 0;

    for (int i = 0; i < nkeys && off + 1 + sizeof(size_t) <= t->olds.len; i++) {
        char tag = t->olds.data[off];
        size_t len;
        memcpy(&len, t->olds.data + off + 1, sizeof(len));
        off += 1 + sizeof(len);
        bytes_t v = tag == OLD_ABSENT ? (bytes_t){ NULL, 0 } : (bytes_t){ t->olds.data + off, len };
        off += tag == OLD_ABSENT ? 0 : len + 1;
        if (tag == OLD_ERROR)
            overlay_set(&ov, &nov, &cap, keys[i].db, keys[i].key, (bytes_t){ NULL, 0 })->err = v.ptr;
        else
            overlay_set(&ov, &nov, &cap, keys[i].db, keys[i].key, v);
    }
    for (int i = 0; i < t->nmembers && bail == NULL; i++) {
        up_task_t *m = t->members[i];
        const backend_op_t *op = &m->op;
        m->sent = 0;
        if (m->done)
            continue;
        if (m->kind == TASK_TX) {
            overlay_t *o = overlay_find(ov, nov, op->db, op->key);
            bytes_t *old = o && o->val.ptr ? &o->val : NULL;
            if (o != NULL && o->err != NULL) {
                backend_result_t res = { .status = BE_ERR, .err = o->err };
                task_finish(m, &res);           /* WRONGTYPE, as Redis answers this one; the others run */
                continue;
            }
            if (op->code == BE_UPDATE) {
                memset(&m->txres, 0, sizeof(m->txres));
                buf_reset(&m->newval);
                m->created = old == NULL;
                int rc = op->update(op->update_arg, old, &m->newval, &m->txres);
                if (rc < 0) {
                    m->txres.status = BE_ERR;
                    task_finish(m, &m->txres);      /* as Redis: this one fails, the others run */
                } else if (rc > 0) {
                    task_finish(m, &m->txres);
                } else {
                    overlay_set(&ov, &nov, &cap, op->db, op->key,
                                (bytes_t){ m->newval.data ? m->newval.data : "", m->newval.len });
                }
                continue;
            }
            const char *err = NULL;
            if (op->check && old && op->check(op->check_arg, old, &err) != 0) {
                backend_result_t res = { .status = BE_ERR, .err = err };
                task_finish(m, &res);
                continue;
            }
        }
        /* follow what this member writes, where a later member may read it */
        switch (op->code) {
        case BE_SET:
            if (later_reads(t, i, op->db, op->key) && (op->flags & (BE_NX | BE_XX)))
                bail = "a conditional SET";
            else if (overlay_find(ov, nov, op->db, op->key))
                overlay_set(&ov, &nov, &cap, op->db, op->key, op->value);
            break;
        case BE_GET:
            if (((op->flags & BE_GETDEL) || ((op->flags & BE_SETTTL) && expires_now(op))) &&
                overlay_find(ov, nov, op->db, op->key))
                overlay_set(&ov, &nov, &cap, op->db, op->key, (bytes_t){ NULL, 0 });
            break;
        case BE_EXPIRE:
            if (!later_reads(t, i, op->db, op->key))
                break;
            if (op->expire_at >= 0 && (op->flags & (BE_NX | BE_XX | BE_GT | BE_LT)))
                bail = "a conditional EXPIRE";      /* whether it applies depends on the key's TTL */
            else if (expires_now(op))
                overlay_set(&ov, &nov, &cap, op->db, op->key, (bytes_t){ NULL, 0 });
            break;
        case BE_MSET:
            for (size_t k = 0; k < op->nkeys; k++) {
                if (!overlay_find(ov, nov, op->db, op->keys[k]))
                    continue;
                if ((op->flags & BE_NX) && later_reads(t, i, op->db, op->keys[k]))
                    bail = "MSETNX";
                else
                    overlay_set(&ov, &nov, &cap, op->db, op->keys[k], op->vals[k]);
            }
            break;
        case BE_DEL:
            for (size_t k = 0; k < op->nkeys; k++)
                if (overlay_find(ov, nov, op->db, op->keys[k]))
                    overlay_set(&ov, &nov, &cap, op->db, op->keys[k], (bytes_t){ NULL, 0 });
            break;
        case BE_RENAME:
            if (later_reads(t, i, op->db, op->key) || later_reads(t, i, op->db, op->key2))
                bail = overlay_rename(&ov, &nov, &cap, op) < 0 ? "RENAME" : NULL;
            break;
        case BE_COMMAND:
            if (op->flags & BE_KEYSKNOWN) {         /* the keys it touches: do later members read one? */
                for (size_t k = 0; k < op->nkeys && bail == NULL; k++)
                    if (later_reads(t, i, op->db, op->keys[k]))
                        bail = "a forwarded command";
                break;
            }
            /* it may touch any key: as FLUSH */
            /* fall through */
        case BE_FLUSH:
            for (int j = i + 1; j < t->nmembers && bail == NULL; j++)
                if (t->members[j]->kind == TASK_TX)
                    bail = op->code == BE_FLUSH ? "FLUSHDB / FLUSHALL" : "a forwarded command";
            break;
        default:
            break;
        }
    }
    mem_free(keys);
    mem_free(ov);
    if (bail != NULL) {
        char err[300];
        bytes_t unwatch[1] = { B("UNWATCH") };
        snprintf(err, sizeof(err), "ERR upstream: in this transaction %s changes a key that a later "
                 "read-modify-write on encoded values reads; split the transaction or use null://", bail);
        conn_send_argv(c, NULL, SLOT_INTERNAL, -1, 1, unwatch);
        task_fail(t, err);
        batch_free_members(t);
        conn_release(c, t);
        return;
    }
    batch_send(c, t);
}

/* ---- dispatching tasks --------------------------------------------------------------------------- */

/*
 * Are the databases task t uses known on c (conn_db_ready)? A batch starts in the client's database and
 * may SELECT others: all must be known before its MULTI leaves, so that the connection's database after
 * EXEC is known too.
 */
static int task_dbs_ready(up_conn_t *c, up_task_t *t)
{
    if (t->kind == TASK_SELECT)
        return conn_db_ready(c, t->op.db2);
    if (!conn_db_ready(c, t->op.db))
        return 0;
    if (t->kind == TASK_BATCH)
        for (int i = 0; i < t->nmembers; i++)
            if (t->members[i]->op.code == BE_SELECT && !t->members[i]->done &&
                !conn_db_ready(c, t->members[i]->op.db2))
                return 0;
    return 1;
}

/*
 * Redis refused to SELECT database db (it has fewer databases): the task at the head of the queue
 * asked for it. A client's SELECT gets Redis's error; a batch whose SELECT member asked for it runs
 * without that member, which gets the error (as Redis runs a transaction whose SELECT fails); any other
 * task for that database fails with the error, nothing of it sent.
 */
static void conn_select_refused(up_conn_t *c, int db, const char *err)
{
    up_task_t *t = c->tasks;

    if (t == NULL)
        return;
    if (t->kind == TASK_BATCH && t->op.db != db) {
        backend_result_t res = { .status = BE_ERR, .err = err };
        for (int i = 0; i < t->nmembers; i++) {
            up_task_t *m = t->members[i];
            if (m->op.code == BE_SELECT && !m->done && m->op.db2 == db)
                task_finish(m, &res);
        }
        return;
    }
    if ((t->kind == TASK_SELECT ? t->op.db2 : t->op.db) != db)
        return;
    c->tasks = t->next;
    if (c->tasks == NULL)
        c->tasks_tail = NULL;
    task_fail(t, err);
    if (t->kind == TASK_BATCH)
        batch_free_members(t);
    task_free(t);
}

/* Send what the connection can: plain tasks at once, one transaction or batch at a time. */
static void conn_pump(up_conn_t *c)
{
    while (c->state == UP_READY && c->active == NULL && c->tasks != NULL && task_dbs_ready(c, c->tasks)) {
        up_task_t *t = c->tasks;
        c->tasks = t->next;
        if (c->tasks == NULL)
            c->tasks_tail = NULL;
        t->next = NULL;
        if (t->kind == TASK_SELECT) {
            backend_result_t res = { .status = BE_OK };
            task_finish(t, &res);
            task_free(t);
        } else if (t->kind == TASK_PLAIN) {
            /* its bytes were formatted when it was queued */
            conn_send(c, t, SLOT_RESULT, t->op.db, put_bytes_cb, &t->data);
            t->sent = 1;
        } else if (t->kind == TASK_TX) {
            c->active = t;
            tx_start(c, t);
        } else {
            c->active = t;
            batch_assign_dbs(t);
            if (t->reads)
                batch_read(c, t);
            else
                batch_send(c, t);
        }
    }
}

static void conn_enqueue(up_conn_t *c, up_task_t *t)
{
    t->queued_us = clock_us_monotonic();
    if (c->tasks_tail)
        c->tasks_tail->next = t;
    else
        c->tasks = t;
    c->tasks_tail = t;
}

static void conn_handle_reply(up_conn_t *c, redisReply *r)
{
    upstream_t *up = c->up;
    up_slot_t *s = c->slots;

    if (s == NULL) {
        conn_fail(c, "a reply came for no command");
        return;
    }
    c->slots = s->next;
    if (c->slots == NULL)
        c->slots_tail = NULL;
    c->nslots--;
    long long lat = clock_us_monotonic() - s->sent_us;
    up->latency_sum_us += (unsigned long long)lat;
    up->latency_n++;
    if ((unsigned long long)lat > up->latency_max_us)
        up->latency_max_us = (unsigned long long)lat;
    if (r->type == REDIS_REPLY_ERROR)
        up->nerrors++;

    up_task_t *t = s->task;
    int kind = s->kind, sdb = s->db;
    slot_put(up, s);
    switch (kind) {
    case SLOT_INTERNAL:
        if (r->type == REDIS_REPLY_ERROR) {
            /* AUTH, SELECT, PING of the handshake, or a pipelined SELECT / UNWATCH: the connection is not
             * in the state the commands behind it expect */
            conn_fail(c, "%s", r->str);
            return;
        }
        if (c->state == UP_HANDSHAKE && --c->handshake_left == 0) {
            if (c->last_error[0])
                log_notice("upstream %s connection %d: connected again", up->name, c->index);
            c->last_error[0] = '\0';
            c->state = UP_READY;
            c->retry_ms = 0;
            conn_pump(c);
        }
        break;
    case SLOT_RESULT:
        deliver(t, &t->op, r);
        task_free(t);
        break;
    case SLOT_SELECT:
        c->select_wait = 0;
        if (r->type == REDIS_REPLY_ERROR) {
            c->db = c->db_before;           /* Redis stays where it was */
            conn_select_refused(c, sdb, r->str);
        } else {
            db_learn(c, sdb);
        }
        conn_pump(c);
        break;
    case SLOT_TX_GET:
        if (t->kind == TASK_BATCH) {
            batch_got_values(c, t, r);
            break;
        }
        tx_got_old(c, t, r);
        if (t->done)
            conn_release(c, t);
        break;
    case SLOT_TX_EXEC:
        tx_exec_reply(c, t, r);
        break;
    default:
        break;
    }
}

static void conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    up_conn_t *c = h->data;
    *buf = uv_buf_init(c->up->read_buf, UP_READ_BUF);
}

static void conn_read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    up_conn_t *c = st->data;
    void *reply;

    if (nread < 0) {
        conn_fail(c, "%s", nread == UV_EOF ? "connection closed by the server" : uv_strerror((int)nread));
        return;
    }
    if (redisReaderFeed(c->reader, buf->base, (size_t)nread) != REDIS_OK) {
        conn_fail(c, "protocol error: %s", c->reader->errstr);
        return;
    }
    while (c->state != UP_DOWN) {
        if (redisReaderGetReply(c->reader, &reply) != REDIS_OK) {
            conn_fail(c, "protocol error: %s", c->reader->errstr);
            return;
        }
        if (reply == NULL)
            break;
        conn_handle_reply(c, reply);
        freeReplyObject(reply);
    }
}

/* ---- connection lifecycle ------------------------------------------------------------------------ */

static void conn_closed_cb(uv_handle_t *h)
{
    up_conn_t *c = h->data;
    c->handle_open = 0;
    if (c->up->destroying)
        up_closed_one(c->up);
}

static void conn_retry_cb(uv_timer_t *t)
{
    up_conn_t *c = t->data;
    if (c->handle_open) {           /* still closing: try again shortly */
        uv_timer_start(&c->retry, conn_retry_cb, 10, 0);
        return;
    }
    c->up->nreconnects++;
    conn_connect(c);
}

static void conn_start_cb(uv_timer_t *t)
{
    conn_connect(t->data);
}

/*
 * The connection failed: fail everything it holds, close it, and schedule a reconnection. Callbacks
 * run after the connection's lists are detached, so a callback that submits again finds it down and
 * fails at once.
 */
static void conn_fail(up_conn_t *c, const char *fmt, ...)
{
    upstream_t *up = c->up;
    char why[160], err[320];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    snprintf(err, sizeof(err), "ERR upstream %s: %s", up->name, why);
    /* one warning when a working connection fails, and when the reason changes; not one per retry */
    if (c->state == UP_READY || strcmp(c->last_error, why) != 0)
        log_warn("upstream %s connection %d: %s", up->name, c->index, why);
    snprintf(c->last_error, sizeof(c->last_error), "%s", why);

    up_slot_t *slots = c->slots;
    up_task_t *tasks = c->tasks, *active = c->active;
    c->slots = c->slots_tail = NULL;
    c->nslots = 0;
    c->tasks = c->tasks_tail = NULL;
    c->active = NULL;
    c->state = UP_DOWN;
    c->select_wait = 0;
    c->out.len = 0;
    if (c->handle_open && !uv_is_closing(&c->h.handle))
        uv_close(&c->h.handle, conn_closed_cb);
    if (c->reader) {
        redisReaderFree(c->reader);
        c->reader = NULL;
    }
    c->retry_ms = c->retry_ms ? c->retry_ms * 2 : UP_RETRY_MIN_MS;
    if (c->retry_ms > up->retry_max_ms)
        c->retry_ms = up->retry_max_ms;
    uv_timer_start(&c->retry, conn_retry_cb, c->retry_ms, 0);

    /* Fail each task once: a task may own several slots, and the active one no slot at all yet. */
    while (slots != NULL) {
        up_slot_t *s = slots;
        slots = s->next;
        up_task_t *t = s->task;
        slot_put(up, s);
        if (t == NULL || t == active)
            continue;
        if (!t->done)
            task_fail(t, err);
        /* a plain task's last slot is its only one */
        task_free(t);
    }
    if (active != NULL) {
        task_fail(active, err);
        for (int i = 0; i < active->nmembers; i++)
            task_free(active->members[i]);
        active->nmembers = 0;
        task_free(active);
    }
    while (tasks != NULL) {
        up_task_t *t = tasks;
        tasks = t->next;
        task_fail(t, err);
        for (int i = 0; i < t->nmembers; i++)
            task_free(t->members[i]);
        t->nmembers = 0;
        task_free(t);
    }
}

static void conn_connect_cb(uv_connect_t *req, int status)
{
    up_conn_t *c = req->data;
    upstream_t *up = c->up;

    if (c->state != UP_CONNECTING)
        return;                     /* timed out meanwhile */
    if (status < 0) {
        conn_fail(c, "%s", uv_strerror(status));
        return;
    }
    if (up->host)
        uv_tcp_nodelay(&c->h.tcp, 1);
    c->reader = redisReaderCreate();
    c->state = UP_HANDSHAKE;
    c->state_since_us = clock_us_monotonic();
    c->handshake_left = 0;
    c->db = 0;
    c->select_wait = 0;
    memset(c->known_dbs, 0, sizeof(c->known_dbs));   /* a new server may have other databases */
    if (up->password) {
        bytes_t argv[3] = { B("AUTH"), { up->user ? up->user : "", up->user ? strlen(up->user) : 0 },
                            { up->password, strlen(up->password) } };
        if (up->user) {
            conn_send_argv(c, NULL, SLOT_INTERNAL, -1, 3, argv);
        } else {
            argv[1] = argv[2];
            conn_send_argv(c, NULL, SLOT_INTERNAL, -1, 2, argv);
        }
        c->handshake_left++;
    }
    /* SELECT the URL's database (or answer PING, so that READY always means "Redis answered") */
    if (up->db != 0) {
        char num[16];
        int len = snprintf(num, sizeof(num), "%d", up->db);
        bytes_t argv[2] = { B("SELECT"), { num, (size_t)len } };
        conn_send_argv(c, NULL, SLOT_INTERNAL, -1, 2, argv);
    } else {
        bytes_t argv[1] = { B("PING") };
        conn_send_argv(c, NULL, SLOT_INTERNAL, -1, 1, argv);
    }
    c->db = up->db;
    c->handshake_left++;
    uv_read_start(&c->h.stream, conn_alloc_cb, conn_read_cb);
}

static void conn_connect(up_conn_t *c)
{
    upstream_t *up = c->up;
    int rc;

    c->state = UP_CONNECTING;
    c->state_since_us = clock_us_monotonic();
    c->writing = 0;
    buf_reset(&c->out);
    buf_reset(&c->wbuf);
    c->wbuf_off = 0;
    c->creq.data = c;
    if (up->path) {
        uv_pipe_init(up->loop, &c->h.pipe, 0);
        c->h.handle.data = c;
        c->handle_open = 1;
        uv_pipe_connect(&c->creq, &c->h.pipe, up->path, conn_connect_cb);
        return;
    }
    uv_tcp_init(up->loop, &c->h.tcp);
    c->h.handle.data = c;
    c->handle_open = 1;
    rc = uv_tcp_connect(&c->creq, &c->h.tcp, (const struct sockaddr *)&up->addr, conn_connect_cb);
    if (rc < 0)
        conn_fail(c, "cannot connect: %s", uv_strerror(rc));
}

/* Every 50 ms: connections that take too long to connect, commands that take too long to answer. */
static void up_tick_cb(uv_timer_t *h)
{
    upstream_t *up = h->data;
    long long now = clock_us_monotonic();

    for (int i = 0; i < up->npool; i++) {
        up_conn_t *c = &up->pool[i];
        if ((c->state == UP_CONNECTING || c->state == UP_HANDSHAKE) &&
            now - c->state_since_us > up->connect_timeout_us) {
            up->ntimeouts++;
            conn_fail(c, "could not connect within %lld ms", up->connect_timeout_us / 1000);
        } else if (c->slots != NULL && now - c->slots->sent_us > up->command_timeout_us) {
            up->ntimeouts++;
            conn_fail(c, "timed out after %lld ms", up->command_timeout_us / 1000);
        } else if (c->tasks != NULL && c->active == NULL && c->state != UP_READY &&
                   now - c->tasks->queued_us > up->command_timeout_us) {
            up->ntimeouts++;
            conn_fail(c, "timed out after %lld ms waiting for a connection", up->command_timeout_us / 1000);
        }
    }
}

/* ---- the backend interface ----------------------------------------------------------------------- */

static up_task_t *task_create(upstream_t *up, const backend_op_t *op, backend_cb *cb, void *ctx, int kind)
{
    up_task_t *t = up->free_tasks;
    buf_t data, newval, olds;

    if (t != NULL) {
        up->free_tasks = t->next;
        up->nfree_tasks--;
        data = t->data;
        newval = t->newval;
        olds = t->olds;
        buf_reset(&data);
        buf_reset(&newval);
        buf_reset(&olds);
    } else {
        t = mem_alloc(sizeof(*t));
        buf_init(&data);
        buf_init(&newval);
        buf_init(&olds);
    }
    memset(t, 0, sizeof(*t));
    t->data = data;
    t->newval = newval;
    t->olds = olds;
    t->up = up;
    t->kind = kind;
    t->cb = cb;
    t->ctx = ctx;
    t->op = *op;
    return t;
}

static int op_needs_tx(const backend_op_t *op)
{
    return (op->code == BE_UPDATE && op->argc == 0) || op->check != NULL;
}

static void redis_submit(backend_t *b, const backend_op_t *op, backend_cb *cb, void *ctx)
{
    upstream_t *up = (upstream_t *)b;
    up_conn_t *c = &up->pool[up->batching ? up->batch_affinity % (uint64_t)up->npool
                                          : op->affinity % (uint64_t)up->npool];

    if (c->state == UP_DOWN) {
        char err[320];
        snprintf(err, sizeof(err), "ERR upstream %s: %s", up->name, c->last_error[0] ? c->last_error : "not connected");
        backend_result_t res = { .status = BE_ERR, .err = err };
        up->nerrors++;
        cb(ctx, &res);
        return;
    }
    if (up->batching) {
        up_task_t *t = task_create(up, op, cb, ctx, op_needs_tx(op) ? TASK_TX : TASK_PLAIN);
        task_own_op(t, op);
        up_task_t *bt = up->batch;
        bt->reads |= t->kind == TASK_TX;
        bt->members = mem_realloc(bt->members, (size_t)(bt->nmembers + 1) * sizeof(*bt->members));
        bt->members[bt->nmembers++] = t;
        return;
    }
    if (op_needs_tx(op) || op->code == BE_SELECT) {
        /* a client's SELECT waits its turn among its commands; it answers OK at once where the database
         * is known on the connection, else when Redis has answered a SELECT of it */
        up_task_t *t = task_create(up, op, cb, ctx, op->code == BE_SELECT ? TASK_SELECT : TASK_TX);
        task_own_op(t, op);
        conn_enqueue(c, t);
        conn_pump(c);
        return;
    }
    up_task_t *t = task_create(up, op, cb, ctx, TASK_PLAIN);
    if (c->state == UP_READY && c->active == NULL && c->tasks == NULL && conn_db_ready(c, op->db)) {
        conn_send(c, t, SLOT_RESULT, op->db, put_op_cb, op);   /* the fast path: straight to the wire */
        t->sent = 1;
        return;
    }
    /* behind a transaction, a SELECT awaited, or before the connection is ready: keep the command's bytes */
    put_op(&t->data, op);
    conn_enqueue(c, t);
}

static void redis_batch(backend_t *b, int begin, uint64_t affinity, backend_cb *cb, void *ctx)
{
    upstream_t *up = (upstream_t *)b;

    if (begin) {
        backend_op_t none = { .code = BE_COMMAND };
        up->batching = 1;
        up->batch_affinity = affinity;
        up->batch = task_create(up, &none, NULL, NULL, TASK_BATCH);
        return;
    }
    up->batching = 0;
    up_task_t *bt = up->batch;
    up->batch = NULL;
    if (bt == NULL) {
        backend_result_t res = { .status = BE_OK };
        cb(ctx, &res);
        return;
    }
    bt->cb = cb;
    bt->ctx = ctx;
    if (bt->nmembers == 0) {
        batch_outcome(bt, NULL);
        task_free(bt);
        return;
    }
    up_conn_t *c = &up->pool[affinity % (uint64_t)up->npool];
    bt->op.db = bt->members[0]->op.db;
    if (c->state == UP_DOWN) {
        char err[320];
        snprintf(err, sizeof(err), "ERR upstream %s: %s", up->name, c->last_error[0] ? c->last_error : "not connected");
        task_fail(bt, err);
        for (int i = 0; i < bt->nmembers; i++)
            task_free(bt->members[i]);
        bt->nmembers = 0;
        task_free(bt);
        return;
    }
    conn_enqueue(c, bt);
    conn_pump(c);
}

static void redis_info(backend_t *b, const char *section, buf_t *out)
{
    upstream_t *up = (upstream_t *)b;
    int ready = 0;
    unsigned inflight = 0;

    if (strcmp(section, "upstream") != 0)
        return;
    for (int i = 0; i < up->npool; i++) {
        ready += up->pool[i].state == UP_READY;
        inflight += up->pool[i].nslots;
    }
    buf_printf(out,
               "upstream_address:%s\r\nupstream_db:%d\r\nupstream_connections:%d\r\nupstream_connections_ready:%d\r\n"
               "upstream_commands_in_flight:%u\r\nupstream_commands:%llu\r\nupstream_errors:%llu\r\n"
               "upstream_timeouts:%llu\r\nupstream_reconnects:%llu\r\nupstream_latency_avg_usec:%llu\r\n"
               "upstream_latency_max_usec:%llu\r\n",
               up->name, up->db, up->npool, ready, inflight, up->ncommands, up->nerrors, up->ntimeouts,
               up->nreconnects, up->latency_n ? up->latency_sum_us / up->latency_n : 0, up->latency_max_us);
}


static void up_free(upstream_t *up)
{
    for (int i = 0; i < up->npool; i++) {
        buf_deinit(&up->pool[i].out);
        buf_deinit(&up->pool[i].wbuf);
    }
    while (up->free_tasks) {
        up_task_t *t = up->free_tasks;
        up->free_tasks = t->next;
        buf_deinit(&t->data);
        buf_deinit(&t->newval);
        buf_deinit(&t->olds);
        mem_free(t);
    }
    while (up->free_slots) {
        up_slot_t *s = up->free_slots;
        up->free_slots = s->next;
        mem_free(s);
    }
    mem_free(up->pool);
    mem_free(up->read_buf);
    mem_free(up->host);
    mem_free(up->path);
    mem_free(up->user);
    mem_free(up->password);
    mem_free(up);
}

/* One of the handles closed by redis_destroy is gone; the last one frees the backend. */
static void up_closed_one(upstream_t *up)
{
    if (--up->closing == 0)
        up_free(up);
}

static void up_timer_closed_cb(uv_handle_t *h)
{
    up_closed_one(((up_conn_t *)h->data)->up);
}

static void up_own_closed_cb(uv_handle_t *h)
{
    up_closed_one(h->data);
}

/*
 * Fail what is still held, close every handle, and free the backend when the last one is closed (the
 * loop runs the close callbacks: at shutdown main runs it once more; after a reload it is running).
 */
static void redis_destroy(backend_t *b)
{
    upstream_t *up = (upstream_t *)b;

    up->destroying = 1;
    up->closing = 1;            /* held until every close below is issued */
    for (int i = 0; i < up->npool; i++) {
        up_conn_t *c = &up->pool[i];
        if (c->state != UP_DOWN)
            conn_fail(c, "shutting down");
        uv_timer_stop(&c->retry);
        up->closing++;
        uv_close((uv_handle_t *)&c->retry, up_timer_closed_cb);
        if (c->handle_open)
            up->closing++;      /* conn_closed_cb counts it */
    }
    up->closing += 2;
    uv_close((uv_handle_t *)&up->tick, up_own_closed_cb);
    uv_close((uv_handle_t *)&up->flush, up_own_closed_cb);
    up_closed_one(up);
}

/* Nothing in flight or queued: a backend replaced by a reload can go. */
static int redis_idle(backend_t *b)
{
    upstream_t *up = (upstream_t *)b;
    for (int i = 0; i < up->npool; i++)
        if (up->pool[i].nslots || up->pool[i].tasks || up->pool[i].active)
            return 0;
    return 1;
}

/* A reload changes the timeouts and the backoff of the running connections. */
static void redis_reconfigure(backend_t *b, const config_t *cfg)
{
    upstream_t *up = (upstream_t *)b;
    up->connect_timeout_us = (long long)cfg->upstream_connect_timeout * 1000;
    up->command_timeout_us = (long long)cfg->upstream_command_timeout * 1000;
    up->retry_max_ms = (unsigned)cfg->upstream_retry_max;
}

static const backend_vtable_t redis_vtable = {
    .reconfigure = redis_reconfigure,
    .idle = redis_idle,
    .scheme = "redis",
    .submit = redis_submit,
    .info = redis_info,
    .destroy = redis_destroy,
    .batch = redis_batch,
    .forwards = 1,
};

/* redis://[user:password@]host[:port][/db] or redis+unix:///path[?db=N]. */
backend_t *backend_redis_create(const config_t *cfg, void *loopv, char *err, size_t errlen)
{
    url_t u;
    char why[256];
    upstream_t *up = NULL;
    long db = 0;

    if (url_parse(&u, cfg->backend, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "backend: %s", why);
        url_free(&u);
        return NULL;
    }
    if (strcmp(u.scheme, "rediss") == 0) {
        snprintf(err, errlen, "backend '%s': TLS is not supported yet; use redis:// (on a trusted network or "
                 "through a TLS tunnel) or redis+unix://", cfg->backend);
        goto fail;
    }
    int is_unix = strcmp(u.scheme, "redis+unix") == 0 || strcmp(u.scheme, "unix") == 0;
    const char *dbs = url_param(&u, "db");
    if (!is_unix && u.path[0] && strcmp(u.path, "/") != 0)
        dbs = u.path + 1;
    if (dbs != NULL) {
        char *end;
        db = strtol(dbs, &end, 10);
        if (*dbs == '\0' || *end != '\0' || db < 0 || db > 1000000) {
            snprintf(err, errlen, "backend '%s': the database must be a number (redis://host:port/N or ?db=N)",
                     cfg->backend);
            goto fail;
        }
    }
    const url_param_t *bad = url_unused_param(&u);
    if (bad != NULL) {
        snprintf(err, errlen, "backend '%s': unknown parameter '%s' (accepted: db)", cfg->backend, bad->name);
        goto fail;
    }
    if (is_unix ? u.path[0] == '\0' : u.host[0] == '\0') {
        snprintf(err, errlen, "backend '%s': %s", cfg->backend,
                 is_unix ? "no socket path (redis+unix:///path/to/redis.sock)" : "no host (redis://host:6379/0)");
        goto fail;
    }

    up = mem_calloc(1, sizeof(*up));
    up->base.vt = &redis_vtable;
    up->loop = loopv;
    if (is_unix) {
        up->path = mem_strdup(u.path);
        snprintf(up->name, sizeof(up->name), "%s", u.path);
    } else {
        /* Resolved once, at start (a name like localhost too), as redis resolves its replication master. */
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai = NULL;
        char port[16];
        up->port = u.port >= 0 ? u.port : 6379;
        snprintf(port, sizeof(port), "%d", up->port);
        int gai = getaddrinfo(u.host, port, &hints, &ai);
        if (gai != 0 || ai == NULL) {
            snprintf(err, errlen, "backend '%s': cannot resolve '%s': %s", cfg->backend, u.host,
                     gai ? gai_strerror(gai) : "no address");
            mem_free(up);
            goto fail;
        }
        memcpy(&up->addr, ai->ai_addr, ai->ai_addrlen);
        freeaddrinfo(ai);
        up->host = mem_strdup(u.host);
        snprintf(up->name, sizeof(up->name), "%s:%d", up->host, up->port);
    }
    up->user = u.user ? mem_strdup(u.user) : NULL;
    up->password = u.password ? mem_strdup(u.password) : NULL;
    up->db = (int)db;
    up->base.default_db = up->db;
    up->npool = cfg->upstream_pool_size;
    up->connect_timeout_us = (long long)cfg->upstream_connect_timeout * 1000;
    up->command_timeout_us = (long long)cfg->upstream_command_timeout * 1000;
    up->retry_max_ms = (unsigned)cfg->upstream_retry_max;
    up->read_buf = mem_alloc(UP_READ_BUF);
    up->pool = mem_calloc((size_t)up->npool, sizeof(*up->pool));
    url_free(&u);

    uv_timer_init(up->loop, &up->tick);
    up->tick.data = up;
    uv_timer_start(&up->tick, up_tick_cb, 50, 50);
    uv_check_init(up->loop, &up->flush);
    up->flush.data = up;
    for (int i = 0; i < up->npool; i++) {
        up_conn_t *c = &up->pool[i];
        c->up = up;
        c->index = i;
        buf_init(&c->out);
        buf_init(&c->wbuf);
        uv_timer_init(up->loop, &c->retry);
        c->retry.data = c;
        /* connect once the loop runs (nothing happens for --test-config) */
        uv_timer_start(&c->retry, conn_start_cb, 0, 0);
    }
    return &up->base;
fail:
    url_free(&u);
    return NULL;
}
