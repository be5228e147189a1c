/*
 * backend: where encoded values live — memory://, dummy://, or an upstream Redis (redis://, rediss://,
 * redis+unix://).
 *
 * The interface is asynchronous from the start. A command describes what it wants as a backend_op_t and
 * calls backend_submit() with a completion callback. The callback is called exactly once, with a result
 * that is valid only during the callback (copy what must outlive it). The memory backend calls it before
 * backend_submit() returns; an upstream backend calls it when Redis answers. Commands never know which
 * backend they talk to, and they never touch the backend's data structures.
 *
 * The op's byte slices (keys, values, pattern) need only stay valid until backend_submit() returns: a
 * backend that finishes later copies or serialises them at once.
 *
 * Each op is atomic and isolated: a multi-key op (MGET, MSET, DEL of many keys) is all-or-nothing as
 * one redis command is, and BE_UPDATE reads, modifies and writes one key with nothing in between.
 */
#ifndef CACHETORYD_BACKEND_BACKEND_H
#define CACHETORYD_BACKEND_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

typedef enum backend_opcode {
    BE_GET,         /* key [GETDEL | expire change]          -> VALUE | NIL */
    BE_SET,         /* key value [NX|XX] [expire|KEEPTTL [NEWTTL expire]] [GETOLD] -> OK | NIL (condition false);
                       GETOLD: value */
    BE_MGET,        /* keys                                  -> values (ptr NULL = missing) */
    BE_MSET,        /* keys vals [NX] [expire_at | ttls_ms]  -> OK; NX: integer 1 set all, 0 set none */
    BE_DEL,         /* keys                                  -> integer removed */
    BE_EXISTS,      /* keys (repeats count again)            -> integer */
    BE_TOUCH,       /* keys                                  -> integer */
    BE_TYPE,        /* key                                   -> integer 1 string, 0 none */
    BE_EXPIRE,      /* key expire_at (-1 = PERSIST) [NX|XX|GT|LT] -> integer 1 changed, 0 not */
    BE_TTL,         /* key [REL]                             -> integer absolute expiry ms (REL: ms left), -1 none,
                                                                -2 missing */
    BE_KEYS,        /* pattern                               -> values (the keys) */
    BE_SCAN,        /* cursor count [pattern] [type]         -> cursor, values (the keys) */
    BE_RANDOMKEY,   /*                                       -> VALUE (a key) | NIL */
    BE_RENAME,      /* key key2 [NX]                         -> OK | integer (NX) | ERR no such key */
    BE_DBSIZE,      /*                                       -> integer */
    BE_FLUSH,       /* [ALLDB]                               -> OK */
    BE_UPDATE,      /* key update-fn [argv: the native command] [NEWTTL expire_at] -> what the fn says */
    BE_COMMAND,     /* argv, forwarded as it is (passthrough) [KEYSKNOWN keys] -> resp: the reply's RESP bytes */
    BE_INFO,        /* the upstream's INFO <pattern>          -> value: its text */
    BE_SELECT,      /* db2: the database a client SELECTs     -> OK | ERR (the upstream refused it) */
} backend_opcode_t;

/* backend_op_t.flags */
#define BE_NX       (1u << 0)   /* SET / MSET / RENAME / EXPIRE: only if absent (EXPIRE: no expiry yet) */
#define BE_XX       (1u << 1)   /* SET: only if present; EXPIRE: only if it has an expiry */
#define BE_GT       (1u << 2)   /* EXPIRE: only if the new expiry is later */
#define BE_LT       (1u << 3)   /* EXPIRE: only if the new expiry is sooner */
#define BE_KEEPTTL  (1u << 4)   /* SET: keep the key's expiry */
#define BE_GETOLD   (1u << 5)   /* SET: return the previous value */
#define BE_GETDEL   (1u << 6)   /* GET: delete the key after reading */
#define BE_SETTTL   (1u << 7)   /* GET: set the expiry to expire_at (-1 = remove it), as GETEX */
#define BE_ALLDB    (1u << 8)   /* FLUSH: every database */
#define BE_TYPEFILTER (1u << 9) /* SCAN: only keys of type `type_string` (1) or of no known type (0) */
/* SET / GET (SETTTL) / EXPIRE / MSET: the client gave a relative time, rel_ms. expire_at is that time
 * from this host's clock; an upstream is sent rel_ms itself, so that a clock difference between the
 * hosts shifts no TTL. TTL: answer the milliseconds left instead of the absolute time. */
#define BE_REL      (1u << 10)
#define BE_NEWTTL   (1u << 11)  /* UPDATE, SET with KEEPTTL: a key the op creates gets expire_at (default-ttl);
                                   a key that exists keeps its expiry. Without it expire_at is ignored there */

#define BE_KEYSKNOWN (1u << 12) /* COMMAND: keys are every key the command reads or writes, all in db */
/* GET (without GETDEL / SETTTL) and MGET: also learn each key's remaining TTL (result ttls) and whether
 * the read was tracked (result tracked), for the near cache. Only a backend that tracks (backend_track)
 * answers them; the others ignore the flag. Never inside a batch. */
#define BE_WITHTTL  (1u << 13)
#define BE_BLOCKS   (1u << 15)  /* COMMAND: it may wait as long as it says (BLPOP...): no command timeout */
#define BE_PUSHES   (1u << 16)  /* COMMAND on a pin: SUBSCRIBE and its kin. Answered OK once sent; what Redis
                                   answers to it, and the messages that follow, go to the pin's push callback */
#define BE_RESP3    (1u << 17)  /* COMMAND of a RESP3 client: answered in RESP3, as the upstream wrote it (an
                                   upstream that can: a single Redis; elsewhere RESP2) */
#define BE_READONLY (1u << 14)  /* COMMAND: it changes no key (without it, any key it names, or any key at all
                                   when they are not known, may have changed) */

typedef struct backend_result backend_result_t;

/*
 * BE_UPDATE's modify step. old is the current value (NULL if the key does not exist); the fn writes the
 * new value into newval and returns 0 to store it (the key keeps its expiry; a key it creates has none,
 * or expire_at with BE_NEWTTL), 1 to leave the key as it
 * is, or -1 after setting res->err. It fills the rest of res (integer or value) for the reply. It may
 * be called more than once (an upstream backend retries when the key changed under it) and must not
 * keep pointers to old.
 */
typedef int backend_update_fn(void *arg, const bytes_t *old, buf_t *newval, backend_result_t *res);

/*
 * A check of the current value before an op that both returns and changes it (SET ... GET, GETDEL,
 * GETEX): returns 0 to go on, or -1 after setting *err, and the op then changes nothing. The cache
 * layer decodes the old value here, so that a value it cannot return is not lost on the way.
 */
typedef int backend_check_fn(void *arg, const bytes_t *old, const char **err);

typedef struct backend_op {
    backend_opcode_t code;
    int db;                     /* database index */
    unsigned flags;             /* BE_* above */
    bytes_t key;                /* single-key ops; RENAME's source */
    bytes_t key2;               /* RENAME's destination */
    bytes_t value;              /* SET */
    const bytes_t *keys;        /* multi-key ops: nkeys keys */
    const bytes_t *vals;        /* MSET: nkeys values */
    size_t nkeys;
    long long expire_at;        /* absolute unix ms, -1 = none */
    long long rel_ms;           /* with BE_REL: the expiry as the client gave it, ms from now */
    const long long *ttls_ms;   /* MSET: one expiry per key, ms from now (-1: none), when the keys' caches
                                   have different default-ttls; NULL: expire_at / rel_ms for every key */
    int db2;                    /* BE_SELECT: the database to switch to */
    uint64_t cursor;            /* SCAN */
    size_t count;               /* SCAN COUNT hint */
    bytes_t pattern;            /* KEYS, SCAN MATCH (ptr NULL = match all) */
    int type_string;            /* SCAN TYPE: 1 "string", 0 any other type name */
    bytes_t type_name;          /* SCAN TYPE as the client wrote it */
    int argc;                   /* BE_COMMAND, and BE_UPDATE's native form (a backend that can run the */
    const bytes_t *argv;        /* command itself runs it instead of the update fn); argc 0 = none */
    uint64_t affinity;          /* ops with the same affinity (one client's) reach the backend in order */
    backend_update_fn *update;  /* BE_UPDATE */
    void *update_arg;
    backend_check_fn *check;    /* BE_SET with GETOLD, BE_GET with GETDEL / SETTTL; may be NULL */
    void *check_arg;
    struct backend_pin *pin;    /* the client's dedicated connection (backend_pin), or NULL: shared ones */
} backend_op_t;

enum backend_status { BE_OK, BE_NIL, BE_ERR };

struct backend_result {
    enum backend_status status;
    long long integer;          /* counts, 0/1, TTL */
    bytes_t value;              /* GET, SET GETOLD, RANDOMKEY, UPDATE; has_value says if present */
    int has_value;
    const bytes_t *values;      /* MGET (ptr NULL = missing), KEYS, SCAN */
    size_t nvalues;
    uint64_t cursor;            /* SCAN */
    const char *err;            /* BE_ERR: the full error text for the client ("ERR ...", "OOM ...") */
    bytes_t resp;               /* BE_COMMAND: the reply, as RESP bytes */
    int type_known;             /* BE_TYPE: value holds the type's name ("hash"...) */
    const long long *ttls;      /* BE_WITHTTL: each key's milliseconds left (-1 none, -2 missing or not
                                   known), in key order; NULL when not learnt */
    int tracked;                /* BE_WITHTTL: the read was made under tracking that is still intact: a
                                   change to its keys from now on will be told to the track callback */
};

typedef void backend_cb(void *ctx, const backend_result_t *res);

/*
 * Tracking (Redis's server-assisted client-side caching), for the near cache. What the backend tells the
 * track callback, on the loop thread:
 *   BE_TRACK_ON    invalidations flow: reads from now on may come back tracked
 *   BE_TRACK_OFF   tracking is lost or uncertain (why says how): whatever was read before may have changed
 *                  without a word; nothing is tracked until BE_TRACK_ON
 *   BE_TRACK_KEYS  these keys changed (in some database: invalidations name no database)
 *   BE_TRACK_ALL   every key may have changed (FLUSHDB / FLUSHALL upstream)
 *   BE_TRACK_LOST  some reads made before are no longer tracked (why: a connection they came on failed),
 *                  so any of them may change without a word; tracking goes on for new reads
 * keys are valid only during the call.
 */
enum backend_track_event { BE_TRACK_ON, BE_TRACK_OFF, BE_TRACK_KEYS, BE_TRACK_ALL, BE_TRACK_LOST };
typedef void backend_track_cb(void *ctx, enum backend_track_event ev, const bytes_t *keys, size_t nkeys,
                              const char *why);

typedef struct backend_track_opts {
    const bytes_t *prefixes;    /* BCAST mode with these prefixes (every change to a key under them is
                                   told); nprefixes 0: default mode (the keys this daemon read) */
    size_t nprefixes;
    int ping_ms;                /* how often the invalidation connection is checked with PING */
} backend_track_opts_t;

typedef struct backend backend_t;
struct config;

/* A client's dedicated upstream connection (backend_pin), the backend's own: the ops that carry it
 * (backend_op_t.pin) go on that connection, in order, and on no other. Opaque to the caller but for its
 * release function, which works also once the backend was destroyed (clients close after the backend at
 * shutdown): close 0 hands the connection back to be cleaned (RESET) and reused, 1 closes it (a blocking
 * command still waits on it), and frees the pin either way. */
typedef struct backend_pin backend_pin_t;

/*
 * What a pin's push callback is told, on the loop thread: BE_PUSH_DATA, a pub/sub frame Redis sent on the
 * pinned connection (a message, or the answer to a SUBSCRIBE / UNSUBSCRIBE of the client's: resp is the
 * RESP2 array, valid only during the call); BE_PUSH_IDLE, the connection is subscribed to nothing any more,
 * and no SUBSCRIBE is on its way; BE_PUSH_LOST, the subscribed connection was lost (no more messages).
 */
enum backend_push_event { BE_PUSH_DATA, BE_PUSH_IDLE, BE_PUSH_LOST };
typedef void backend_push_cb(void *ctx, enum backend_push_event ev, const bytes_t *resp);

struct backend_pin {
    void (*release)(backend_pin_t *p, int close);
    backend_push_cb *push;      /* set by the caller before a BE_PUSHES op, with push_ctx; NULL: none */
    void *push_ctx;
};

/* A client's watched keys (WATCH), the backend's own: created by the first backend_watch, given back by
 * backend_unwatch. Opaque to the caller but for its release function, which lets it go back even after
 * the backend was destroyed (clients close after the backend at shutdown): the backend's watcher starts
 * with this header, and what the release needs outlives the backend until the last watcher is gone. */
typedef struct backend_watch backend_watch_t;
struct backend_watch {
    void (*release)(backend_watch_t *w);    /* forget the keys and free w */
};

/* What a backend that keeps the values itself (memory://) tells about them; all 0 for the others. */
typedef struct backend_stats {
    int local;                          /* 1: the figures below are this process's own */
    size_t used_memory;                 /* bytes the stored keys and values count for */
    size_t maxmemory;                   /* their limit, 0 = none */
    unsigned long long expired_keys, evicted_keys, keyspace_hits, keyspace_misses;
} backend_stats_t;

/*
 * A backend's functions. Only submit and destroy are required; every other entry may be NULL, and is
 * called through its backend_* wrapper below, which says what a NULL entry means. Nothing else calls
 * the table.
 */
typedef struct backend_vtable {
    const char *scheme;
    void (*submit)(backend_t *b, const backend_op_t *op, backend_cb *cb, void *ctx);
    void (*info)(backend_t *b, const char *section, buf_t *out);    /* append INFO fields, may be NULL */
    void (*cron)(backend_t *b);                                     /* background work, hz times a second */
    /* MULTI/EXEC: ops submitted between begin and end run as one transaction; may be NULL (ops are
     * atomic already). At end, cb(ctx, res) tells the transaction's outcome exactly once, before the
     * callbacks of the ops still to answer: BE_OK, it ran (each op's result follows), BE_ERR with
     * the reason nothing ran (each op then fails with it), or BE_NIL: on the client's dedicated
     * connection, Redis aborted it because a key the client WATCHed changed (each op then fails). */
    void (*batch)(backend_t *b, int begin, uint64_t affinity, backend_cb *cb, void *ctx);
    int forwards;                       /* 1: can run BE_COMMAND and native BE_UPDATE (an upstream) */
    int (*over_limit)(backend_t *b);    /* 1 if it is over its memory limit even after evicting: a
                                           write is then refused before it runs or is queued (redis's
                                           denyoom; the size of the incoming value is not counted, the
                                           write itself answers OOM if its stored size does not fit);
                                           may be NULL */
    void (*destroy)(backend_t *b);
    void (*reconfigure)(backend_t *b, const struct config *cfg);   /* reload: timeouts, maxmemory; may be NULL */
    int (*idle)(backend_t *b);          /* nothing in flight (a replaced backend can go); may be NULL */
    /* Fill st (zeroed by the caller), and db_keys[0..ndb) with the keys of each database when db_keys
     * is not NULL; may be NULL (nothing kept here). */
    void (*stats)(backend_t *b, backend_stats_t *st, size_t *db_keys, int ndb);
    void (*stats_reset)(backend_t *b);  /* CONFIG RESETSTAT: the counters in stats back to 0; may be NULL */
    void (*metrics)(backend_t *b, buf_t *out);  /* Prometheus lines of its own (an upstream's); may be NULL */
    /* Start tracking with opts, telling cb(ctx, ...) (backend_track_cb); opts NULL: stop (no call after
     * it returns). 0, or -1 with err when the backend cannot track; may be NULL (it cannot). */
    int (*track)(backend_t *b, const backend_track_opts_t *opts, backend_track_cb *cb, void *ctx, char *err,
                 size_t errlen);
    /* WATCH, Redis's optimistic locking, for a backend that sees every write (memory://): watch key in db
     * for *w (created on first use), say whether a watched key was touched since (EXEC; a key that expired
     * since counts); w's release forgets them all. Synchronous. NULL: the backend cannot watch (the
     * command layer refuses WATCH). */
    void (*watch)(backend_t *b, backend_watch_t **w, int db, bytes_t key);
    int (*watch_touched)(backend_t *b, backend_watch_t *w);
    /* A dedicated connection for the client of affinity (its MULTI ... EXEC, backend_batch, goes there too):
     * 0 with *p, or -1 with err (the client's error: none left, none allowed). NULL: the backend has none
     * (its connections are the client's already, or it has none). */
    int (*pin)(backend_t *b, uint64_t affinity, backend_pin_t **p, char *err, size_t errlen);
} backend_vtable_t;

struct backend {
    const backend_vtable_t *vt;
    int default_db;             /* the database a new client starts in: the URL's for an upstream, else 0 */
};

struct config;

/* Create the backend named by cfg->backend. NULL with a message in err for a bad URL. */
backend_t *backend_create(const struct config *cfg, void *loop, char *err, size_t errlen);

static inline void backend_submit(backend_t *b, const backend_op_t *op, backend_cb *cb, void *ctx)
{
    b->vt->submit(b, op, cb, ctx);
}

void backend_destroy(backend_t *b);

/* 1 if the backend can run BE_COMMAND and a native BE_UPDATE (an upstream), else 0. */
static inline int backend_forwards(const backend_t *b)
{
    return b->vt->forwards;
}

/* 1 if url names a backend that forwards (an upstream), whatever the rest of it says: the one kind of
 * backend a reload can replace while clients stay connected. */
int backend_url_forwards(const char *url);

/* The upstream password kept in file path (upstream-password-file: a mounted secret): its content without
 * one trailing newline, a new string; NULL with err naming the file when it cannot be read, is empty, is
 * longer than 4096 bytes or holds a NUL or a line break inside. */
char *backend_read_password_file(const char *path, char *err, size_t errlen);

/* Append the fields of INFO section ("memory", "stats", "keyspace", "upstream"...) to out. 0, or -1 when
 * the backend reports no INFO at all (then out is unchanged: the caller shows its defaults). */
int backend_info(backend_t *b, const char *section, buf_t *out);

/* Background work (active expiry), hz times a second. Nothing for a backend without any. */
void backend_cron(backend_t *b);

/* A reload changed cfg: timeouts, backoff, maxmemory and its policy take effect. */
void backend_reconfigure(backend_t *b, const struct config *cfg);

/* 1 when nothing is in flight or queued (a backend replaced by a reload can then go). */
int backend_idle(backend_t *b);

/* 1 if the backend is over its memory limit even after evicting (a denyoom write is then refused). */
int backend_over_limit(backend_t *b);

/*
 * MULTI / EXEC. backend_batch_begin returns 1 when the ops submitted with this affinity until
 * backend_batch_end run as one transaction, whose outcome backend_batch_end then tells cb exactly once
 * (see vtable batch), or 0 when the backend has no batches (its ops are atomic already): nothing to end,
 * and backend_batch_end is not to be called.
 */
int backend_batch_begin(backend_t *b, uint64_t affinity);
void backend_batch_end(backend_t *b, uint64_t affinity, backend_cb *cb, void *ctx);

/* The backend's figures (zeroed first): see backend_stats_t; db_keys as vtable stats, may be NULL. */
void backend_stats(backend_t *b, backend_stats_t *st, size_t *db_keys, int ndb);
void backend_stats_reset(backend_t *b);

/* Append the backend's own Prometheus series (an upstream's connections, a cluster's nodes) to out. */
void backend_metrics(backend_t *b, buf_t *out);

/* Tracking for the near cache (vtable track): 0, or -1 with err ("needs an upstream Redis" for a backend
 * without it). backend_untrack stops it: no callback after it returns. */
int backend_track(backend_t *b, const backend_track_opts_t *opts, backend_track_cb *cb, void *ctx, char *err,
                  size_t errlen);
void backend_untrack(backend_t *b);

/*
 * WATCH (vtable watch). backend_can_watch: 1 when the backend watches keys itself. backend_watch adds
 * key in db to *w (only where backend_can_watch); backend_watch_touched is 1 when a key of w was
 * modified (written, deleted, expired, evicted, flushed) since it was watched, 0 for w NULL;
 * backend_unwatch forgets w's keys and frees w (NULL is fine), also once the backend is gone. A backend
 * that is replaced by a reload cannot watch, so w always belongs to the running backend while it lives.
 */
static inline int backend_can_watch(const backend_t *b)
{
    return b->vt->watch != NULL;
}

static inline void backend_watch(backend_t *b, backend_watch_t **w, int db, bytes_t key)
{
    b->vt->watch(b, w, db, key);
}

static inline int backend_watch_touched(backend_t *b, backend_watch_t *w)
{
    return w != NULL && b->vt->watch_touched(b, w);
}

static inline void backend_unwatch(backend_watch_t *w)
{
    if (w != NULL)
        w->release(w);
}

/*
 * Dedicated connections (vtable pin). backend_can_pin: 1 when the backend has them (an upstream). The
 * pin is the caller's until backend_unpin, which hands the connection back (close 0) or closes it
 * (close 1: a command may still be waiting on it); NULL is fine.
 */
static inline int backend_can_pin(const backend_t *b)
{
    return b->vt->pin != NULL;
}

static inline int backend_pin(backend_t *b, uint64_t affinity, backend_pin_t **p, char *err, size_t errlen)
{
    return b->vt->pin(b, affinity, p, err, errlen);
}

static inline void backend_unpin(backend_pin_t *p, int close)
{
    if (p != NULL)
        p->release(p, close);
}

/* The concrete backends (backend/memory.c, backend/dummy.c). */
backend_t *backend_memory_create(const struct config *cfg);
backend_t *backend_dummy_create(void);
backend_t *backend_redis_create(const struct config *cfg, void *loop, char *err, size_t errlen);

#endif
