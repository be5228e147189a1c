/*
 * cmd: the command table and the commands.
 *
 * net hands each complete command to cmd_dispatch (one of the connection hooks main gives net, with
 * cmd_session_open_cb, cmd_session_free_cb and cmd_req_recycle_cb). The commands work with what
 * cmd_setup was given — configuration, backend, cache — and with the client's session (cmd/session.h),
 * never with net's server.
 *
 * The table (cmd/table.c) is data: name, handler, arity (negative = at least -arity arguments, the name
 * included), flags, key positions, and the text COMMAND DOCS shows. cmd_dispatch() looks a command up,
 * checks arity, authentication and MULTI in one place, then calls the handler with a req_t that orders
 * its reply among the client's others.
 *
 * A handler returns CMD_DONE when it has written its whole reply; cmd_dispatch() then completes the req.
 * It returns CMD_PENDING when something else completes it: a backend callback (cmd_submit), or the
 * handler itself (EXEC).
 */
#ifndef CACHETORYD_CMD_CMD_H
#define CACHETORYD_CMD_CMD_H

#include "backend/backend.h"
#include "net/conn.h"
#include "resp/reply.h"
#include "util/buf.h"

#define CMD_DONE    0
#define CMD_PENDING 1

typedef int cmd_proc_t(req_t *r, int argc, bytes_t *argv);

/* cmd_def_t.flags */
#define CMD_WRITE     (1u << 0)
#define CMD_READONLY  (1u << 1)
#define CMD_DENYOOM   (1u << 2)
#define CMD_NOAUTH    (1u << 3)   /* allowed before AUTH */
#define CMD_FAST      (1u << 4)
#define CMD_ADMIN     (1u << 5)
#define CMD_NOQUEUE   (1u << 6)   /* runs at once inside MULTI: MULTI, EXEC, DISCARD, QUIT */

typedef struct cmd_def {
    const char *name;           /* lower case */
    cmd_proc_t *proc;
    int arity;
    unsigned flags;
    int first_key, last_key, key_step;  /* redis's legacy key positions; last -1 = to the end */
    const char *group;          /* COMMAND DOCS: "string", "generic", "connection", "server", "transactions" */
    const char *since;          /* COMMAND DOCS */
    const char *summary;        /* COMMAND DOCS */
    const char *acl;            /* COMMAND INFO categories, space separated ("@read @string @fast") */
    const struct cmd_def *subs; /* container commands (CLIENT, CONFIG...): the subcommands, names as
                                   "client|list"; NULL-named entry ends the list */
} cmd_def_t;

struct cache;
struct config;
struct server;

/* Build the lookup table and keep what the commands work with (borrowed: main owns them all); srv is
 * only handed back to net/conn.h's functions (CLIENT LIST, INFO clients). */
void cmd_setup(struct config *cfg, backend_t *b, struct cache *cache, struct server *srv);
/* A reload replaced the backend: commands from now on use b, new clients start in its default_db. */
void cmd_set_backend(backend_t *b);

/* CONFIG SET's way to change the running configuration, registered by main (cmd/config.c): next is a
 * copy of it with the new values; the hook gives every option that differs the effect a reload (SIGHUP)
 * gives it and makes next's values the running ones, all or none. 0, or -1 with the reason in err, *option
 * the option it failed on (or NULL), and nothing changed. path: the config file the daemon was started
 * with, which CONFIG REWRITE rewrites (NULL: none; borrowed until exit). */
typedef int cmd_config_apply_cb(const struct config *next, char *err, size_t errlen, const char **option,
                                void *arg);
void cmd_config_setup(cmd_config_apply_cb *apply, void *arg, const char *path);

/* The connection hooks (net/conn.h's conn_hooks_t): run one command; a client's session created and
 * freed; a req's scratch given back. cmd_req_size is conn_hooks_t.req_size. */
void cmd_dispatch(client_t *c, int argc, bytes_t *argv);
void cmd_session_open_cb(client_t *c);
void cmd_session_free_cb(client_t *c);
void cmd_req_recycle_cb(req_t *r, int destroy);
size_t cmd_req_size(void);

/* The Prometheus page (net/http.h's http_page_cb): the INFO figures, per-command latency histograms. */
void cmd_metrics_page_cb(buf_t *body, void *arg);

const cmd_def_t *cmd_lookup(bytes_t name);
/* 0 for a table row this daemon does not run with its backend (WATCH without a watching backend). */
int cmd_served(const cmd_def_t *d);

/* Must c still AUTH before running commands? Asked per command: a reload may add or remove requirepass
 * (redis's authRequired). cmd_auth_reconfigure, after requirepass changed, gives each connected client's
 * parser the pre-AUTH limits or lifts them accordingly (conn_set_authenticated). */
int cmd_auth_required(const client_t *c);
void cmd_auth_reconfigure(void);

/* Send op to the server's backend; cb completes r. Returns CMD_PENDING for the handler to return. */
int cmd_submit(req_t *r, backend_op_t *op, backend_cb *cb);
/* The same, saying whether the cache may encode / decode its values on the thread pool (0: all on this
 * thread, so that with the memory backend the op completes before this returns), and in which database
 * (-1: the client's now; a command that submits again from a callback passes the one it started in,
 * since the client may have SELECTed another meanwhile). */
int cmd_submit_opts(req_t *r, backend_op_t *op, backend_cb *cb, int may_offload, int db);
/* The same, straight to the backend: the stored bytes, no codec chain (CACHE RAWGET / RAWSET, forwarded
 * commands). An op->pin set by the caller is kept (SUBSCRIBE goes on the subscribed connection). */
int cmd_submit_raw(req_t *r, backend_op_t *op, backend_cb *cb);
/* A callback for cmd_submit_raw of a command whose reply is the upstream's as it is (res->resp): relayed, or
 * its error. */
void cmd_relay_done_cb(void *ctx, const backend_result_t *res);

/* Number parsing with redis's strictness (string2ll, strtold without spaces, no nan). 0 or -1. */
int cmd_parse_ll(bytes_t a, long long *out);
int cmd_parse_ld(bytes_t a, long double *out);

/* default-ttl of key's cache ([cache] or the [cache.NAME] of its prefix): the expiry (absolute unix ms)
 * of the key written without one, or -1; *rel the same in ms from now (an upstream is sent that). */
long long cmd_default_expiry(bytes_t key, long long *rel);
/* A read-modify-write op (BE_UPDATE) on op->key: a key it creates gets its default-ttl (BE_NEWTTL), sent
 * relative. */
void cmd_update_newttl(backend_op_t *op);

/* A backend callback for commands that reply with the result's integer (or its error). */
void cmd_int_done_cb(void *ctx, const backend_result_t *res);

/* Write "ERR wrong number of arguments for '<name>' command". */
void cmd_reply_arity(buf_t *out, const char *name);
/* A HELP subcommand's reply (CLIENT HELP, CONFIG HELP...): an array of one status line each. */
void cmd_reply_help(buf_t *out, const char *const *lines, size_t n);
#define CMD_REPLY_HELP(out, lines) cmd_reply_help((out), (lines), sizeof(lines) / sizeof((lines)[0]))
/* "ERR unknown subcommand '<sub>'. Try <CONTAINER> HELP." (container: its name as the client reads it) */
void cmd_reply_unknown_sub(buf_t *out, bytes_t sub, const char *container);
/* Write redis's "ERR unknown command '<name>', with args beginning with: ..." */
void cmd_reply_unknown(buf_t *out, int argc, bytes_t *argv);

/* cmd/passthrough.c: a command not in cmd_table, by its Redis 7.0 class — the definition that forwards
 * it to the upstream, or NULL after writing why not (unknown, wrong arity, refused) to out. noauth: the
 * client has yet to authenticate, and a known command with the right arity gets NOAUTH (Redis's order). */
const cmd_def_t *cmd_passthrough_resolve(buf_t *out, int argc, bytes_t *argv, int noauth);
/* The keys a forwarded command touches, by its key positions: their number (at most max), or -1. */
int cmd_passthrough_keys(int argc, const bytes_t *argv, bytes_t *keys, int max);
/* 1 if the forwarded command may change a key (not flagged readonly by Redis; not pub/sub). */
int cmd_passthrough_writes(int argc, const bytes_t *argv);
/* A RESP2 client subscribed through a dedicated connection may only (un)subscribe, PING, QUIT and RESET,
 * as on Redis: 1 when r was answered here (Redis's error for any other command, PING forwarded for its
 * ["pong", ...] answer), 0 to run the command as usual. */
int cmd_pubsub_filter(req_t *r, const cmd_def_t *d, int argc, bytes_t *argv);

/* NULL if a string value of len bytes can be stored, or the client's error when it could never be read
 * back: its GET reply would exceed client-output-buffer-limit and close the reader. Every command that
 * writes a value checks it (the message is in a static buffer, valid until the next call). */
const char *cmd_value_unreadable(size_t len);

/* The handlers, by file. */
cmd_proc_t cmd_get, cmd_set, cmd_setnx, cmd_setex, cmd_psetex, cmd_getset, cmd_getdel, cmd_getex,
    cmd_mget, cmd_mset, cmd_msetnx, cmd_append, cmd_strlen, cmd_getrange, cmd_setrange, cmd_incr,
    cmd_decr, cmd_incrby, cmd_decrby, cmd_incrbyfloat;
cmd_proc_t cmd_getbit, cmd_setbit, cmd_bitcount, cmd_bitpos, cmd_bitfield, cmd_bitfield_ro, cmd_bitop, cmd_lcs;
cmd_proc_t cmd_del, cmd_exists, cmd_type, cmd_touch, cmd_expire, cmd_pexpire, cmd_expireat,
    cmd_pexpireat, cmd_ttl, cmd_pttl, cmd_expiretime, cmd_pexpiretime, cmd_persist, cmd_keys, cmd_scan,
    cmd_randomkey, cmd_rename, cmd_renamenx, cmd_dbsize, cmd_flushdb, cmd_flushall;
cmd_proc_t cmd_ping, cmd_echo, cmd_quit, cmd_reset, cmd_hello, cmd_auth, cmd_select, cmd_client, cmd_command,
    cmd_info, cmd_config, cmd_time, cmd_cluster;
cmd_proc_t cmd_multi, cmd_exec, cmd_discard;
cmd_proc_t cmd_cache, cmd_forward, cmd_slowlog;

/* cmd/stats.c: INFO commandstats / latencystats, SLOWLOG. Commands are counted by name (cmd_stat_name: a
 * string of a table, whose address is the key). */
const char *cmd_stat_name(const cmd_def_t *d, int argc, const bytes_t *argv);
void cmd_stats_record(const client_t *c, const char *name, int argc, bytes_t *argv, long long usec);
void cmd_stats_rejected(const char *name);
/* An error reply left (reply: its bytes, '-' or '!' first): counted in total_error_replies and by its
 * code, and as a failed call of name, the command that ran (NULL: refused before running, or no command). */
void cmd_stats_reply_error(const char *name, bytes_t reply);
unsigned long long cmd_stats_error_replies(void);
/* INFO errorstats' lines */
void cmd_stats_errors_info(buf_t *out);
void cmd_stats_info(buf_t *out, int latency);
void cmd_stats_reset(void);
void cmd_stats_prometheus(buf_t *out);
/* INFO stats' instantaneous rates (redis's: 16 samples of 100 ms) and the highest used_memory sampled.
 * cmd_stats_tick takes a sample when a period has passed (every command calls it). */
typedef struct cmd_stats_instant {
    long long ops_per_sec;
    double input_kbps, output_kbps;
    size_t used_memory_peak;
} cmd_stats_instant_t;
void cmd_stats_tick(void);
void cmd_stats_instant(cmd_stats_instant_t *out);

/* For COMMAND: the table. */
extern const cmd_def_t cmd_table[];
extern const int cmd_count;

#endif
