/*
 * cmd/table: the command table, lookup, dispatch, and MULTI / EXEC / DISCARD / WATCH / UNWATCH.
 */
#include "cmd/cmd.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cache/cache.h"
#include "cmd/classes.h"
#include "cmd/session.h"
#include "util/clock.h"
#include "util/mem.h"

#define R  CMD_READONLY
#define W  CMD_WRITE
#define M  CMD_DENYOOM
#define F  CMD_FAST
#define A  CMD_ADMIN
#define NA CMD_NOAUTH
#define NQ CMD_NOQUEUE

static cmd_proc_t cmd_watch, cmd_unwatch;

/* Subcommands: arity and flags are checked by cmd_dispatch; the container's handler does the work. */
static const cmd_def_t client_subs[] = {
    {"client|id", cmd_client, 2, F, 0, 0, 0, "connection", "5.0.0", "Returns the unique client ID of the connection.", "@slow @connection"},
    {"client|getname", cmd_client, 2, F, 0, 0, 0, "connection", "2.6.9", "Returns the name of the connection.", "@slow @connection"},
    {"client|setname", cmd_client, 3, F, 0, 0, 0, "connection", "2.6.9", "Sets the connection name.", "@slow @connection"},
    {"client|setinfo", cmd_client, 4, F, 0, 0, 0, "connection", "7.2.0", "Sets information specific to the client or connection.", "@slow @connection"},
    {"client|list", cmd_client, -2, A, 0, 0, 0, "connection", "2.4.0", "Lists open connections.", "@admin @slow @dangerous @connection"},
    {"client|info", cmd_client, 2, 0, 0, 0, 0, "connection", "6.2.0", "Returns information about the connection.", "@slow @connection"},
    {"client|kill", cmd_client, -3, A, 0, 0, 0, "connection", "2.4.0", "Terminates open connections.", "@admin @slow @dangerous @connection"},
    {"client|tracking", cmd_client, -3, 0, 0, 0, 0, "connection", "6.0.0", "Controls server-assisted client-side caching for the connection.", "@slow @connection"},
    {"client|trackinginfo", cmd_client, 2, 0, 0, 0, 0, "connection", "6.2.0", "Returns information about server-assisted client-side caching for the connection.", "@slow @connection"},
    {"client|getredir", cmd_client, 2, 0, 0, 0, 0, "connection", "6.0.0", "Returns the client ID to which the connection's tracking notifications are redirected.", "@slow @connection"},
    {"client|caching", cmd_client, 3, 0, 0, 0, 0, "connection", "6.0.0", "Instructs the server whether to track the keys in the next request.", "@slow @connection"},
    {"client|no-evict", cmd_client, 3, A, 0, 0, 0, "connection", "7.0.0", "Sets the client eviction mode of the connection.", "@admin @slow @dangerous @connection"},
    {"client|no-touch", cmd_client, 3, 0, 0, 0, 0, "connection", "7.2.0", "Controls whether commands sent by the client affect the LRU/LFU of accessed keys.", "@slow @connection"},
    {"client|help", cmd_client, 2, 0, 0, 0, 0, "connection", "5.0.0", "Returns helpful text about the different subcommands.", "@slow @connection"},
    {NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL},
};

static const cmd_def_t command_subs[] = {
    {"command|count", cmd_command, 2, 0, 0, 0, 0, "server", "2.8.13", "Returns a count of commands.", "@slow @connection"},
    {"command|list", cmd_command, -2, 0, 0, 0, 0, "server", "7.0.0", "Returns a list of command names.", "@slow @connection"},
    {"command|info", cmd_command, -2, 0, 0, 0, 0, "server", "2.8.13", "Returns information about one, multiple or all commands.", "@slow @connection"},
    {"command|docs", cmd_command, -2, 0, 0, 0, 0, "server", "7.0.0", "Returns documentary information about one, multiple or all commands.", "@slow @connection"},
    {"command|help", cmd_command, 2, 0, 0, 0, 0, "server", "5.0.0", "Returns helpful text about the different subcommands.", "@slow @connection"},
    {NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL},
};

static const cmd_def_t slowlog_subs[] = {
    {"slowlog|get", cmd_slowlog, -2, A, 0, 0, 0, "server", "2.2.12", "Returns the slow log's entries.", "@admin @slow @dangerous"},
    {"slowlog|len", cmd_slowlog, 2, A, 0, 0, 0, "server", "2.2.12", "Returns the number of entries in the slow log.", "@admin @slow @dangerous"},
    {"slowlog|reset", cmd_slowlog, 2, A, 0, 0, 0, "server", "2.2.12", "Clears all entries from the slow log.", "@admin @slow @dangerous"},
    {"slowlog|help", cmd_slowlog, 2, 0, 0, 0, 0, "server", "6.2.0", "Show helpful text about the different subcommands.", "@slow"},
    {NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL},
};

static const cmd_def_t config_subs[] = {
    {"config|get", cmd_config, -3, A, 0, 0, 0, "server", "2.0.0", "Returns the effective values of configuration parameters.", "@admin @slow @dangerous"},
    {"config|resetstat", cmd_config, 2, A, 0, 0, 0, "server", "2.0.0", "Resets the server's statistics.", "@admin @slow @dangerous"},
    {"config|set", cmd_config, -4, A, 0, 0, 0, "server", "2.0.0", "Sets configuration parameters in-flight.", "@admin @slow @dangerous"},
    {"config|rewrite", cmd_config, 2, A, 0, 0, 0, "server", "2.8.0", "Persists the effective configuration to file.", "@admin @slow @dangerous"},
    {"config|help", cmd_config, 2, 0, 0, 0, 0, "server", "5.0.0", "Returns helpful text about the different subcommands.", "@slow"},
    {NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL},
};

static const cmd_def_t cache_subs[] = {
    {"cache|rawget", cmd_cache, 3, R | A, 2, 2, 1, "cachetoryd", "0.1.0", "Returns the bytes stored for a key, not decoded.", "@admin @read @string"},
    {"cache|rawset", cmd_cache, 4, W | M | A, 2, 2, 1, "cachetoryd", "0.1.0", "Stores bytes for a key as they are, not encoded.", "@admin @write @string"},
    {"cache|dict", cmd_cache, -3, A, 0, 0, 0, "cachetoryd", "0.1.0", "Lists, describes, exports, trains or loads the serializer's zstd dictionaries.", "@admin @slow"},
    {"cache|help", cmd_cache, 2, 0, 0, 0, 0, "cachetoryd", "0.1.0", "Returns helpful text about the different subcommands.", "@slow"},
    {NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL},
};

/* name, proc, arity, flags, first, last, step, group, since, summary, acl[, subcommands] */
const cmd_def_t cmd_table[] = {
    /* strings */
    {"get", cmd_get, 2, R | F, 1, 1, 1, "string", "1.0.0", "Returns the string value of a key.", "@read @string @fast"},
    {"set", cmd_set, -3, W | M, 1, 1, 1, "string", "1.0.0", "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", "@write @string @slow"},
    {"setnx", cmd_setnx, 3, W | M | F, 1, 1, 1, "string", "1.0.0", "Set the string value of a key only when the key doesn't exist.", "@write @string @fast"},
    {"setex", cmd_setex, 4, W | M, 1, 1, 1, "string", "2.0.0", "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.", "@write @string @slow"},
    {"psetex", cmd_psetex, 4, W | M, 1, 1, 1, "string", "2.6.0", "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.", "@write @string @slow"},
    {"getset", cmd_getset, 3, W | M | F, 1, 1, 1, "string", "1.0.0", "Returns the previous string value of a key after setting it to a new value.", "@write @string @fast"},
    {"getdel", cmd_getdel, 2, W | F, 1, 1, 1, "string", "6.2.0", "Returns the string value of a key after deleting the key.", "@write @string @fast"},
    {"getex", cmd_getex, -2, W | F, 1, 1, 1, "string", "6.2.0", "Returns the string value of a key after setting its expiration time.", "@write @string @fast"},
    {"mget", cmd_mget, -2, R | F, 1, -1, 1, "string", "1.0.0", "Atomically returns the string values of one or more keys.", "@read @string @fast"},
    {"mset", cmd_mset, -3, W | M, 1, -1, 2, "string", "1.0.1", "Atomically creates or modifies the string values of one or more keys.", "@write @string @slow"},
    {"msetnx", cmd_msetnx, -3, W | M, 1, -1, 2, "string", "1.0.1", "Atomically modifies the string values of one or more keys only when all keys don't exist.", "@write @string @slow"},
    {"append", cmd_append, 3, W | M | F, 1, 1, 1, "string", "2.0.0", "Appends a string to the value of a key. Creates the key if it doesn't exist.", "@write @string @fast"},
    {"strlen", cmd_strlen, 2, R | F, 1, 1, 1, "string", "2.2.0", "Returns the length of a string value.", "@read @string @fast"},
    {"getrange", cmd_getrange, 4, R, 1, 1, 1, "string", "2.4.0", "Returns a substring of the string stored at a key.", "@read @string @slow"},
    {"substr", cmd_getrange, 4, R, 1, 1, 1, "string", "1.0.0", "Returns a substring from a string value.", "@read @string @slow"},
    {"setrange", cmd_setrange, 4, W | M, 1, 1, 1, "string", "2.2.0", "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.", "@write @string @slow"},
    {"incr", cmd_incr, 2, W | M | F, 1, 1, 1, "string", "1.0.0", "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", "@write @string @fast"},
    {"decr", cmd_decr, 2, W | M | F, 1, 1, 1, "string", "1.0.0", "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", "@write @string @fast"},
    {"incrby", cmd_incrby, 3, W | M | F, 1, 1, 1, "string", "1.0.0", "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.", "@write @string @fast"},
    {"decrby", cmd_decrby, 3, W | M | F, 1, 1, 1, "string", "1.0.0", "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.", "@write @string @fast"},
    {"incrbyfloat", cmd_incrbyfloat, 3, W | M | F, 1, 1, 1, "string", "2.6.0", "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.", "@write @string @fast"},
    /* bitmaps (cmd/bits.c), BITOP and LCS (cmd/bitop.c) */
    {"getbit", cmd_getbit, 3, R | F, 1, 1, 1, "bitmap", "2.2.0", "Returns a bit value by offset.", "@read @bitmap @fast"},
    {"setbit", cmd_setbit, 4, W | M, 1, 1, 1, "bitmap", "2.2.0", "Sets or clears the bit at offset of the string value. Creates the key if it doesn't exist.", "@write @bitmap @slow"},
    {"bitcount", cmd_bitcount, -2, R, 1, 1, 1, "bitmap", "2.6.0", "Counts the number of set bits (population counting) in a string.", "@read @bitmap @slow"},
    {"bitpos", cmd_bitpos, -3, R, 1, 1, 1, "bitmap", "2.8.7", "Finds the first set (1) or clear (0) bit in a string.", "@read @bitmap @slow"},
    {"bitfield", cmd_bitfield, -2, W | M, 1, 1, 1, "bitmap", "3.2.0", "Performs arbitrary bitfield integer operations on strings.", "@write @bitmap @slow"},
    {"bitfield_ro", cmd_bitfield_ro, -2, R | F, 1, 1, 1, "bitmap", "6.0.0", "Performs arbitrary read-only bitfield integer operations on strings.", "@read @bitmap @fast"},
    {"bitop", cmd_bitop, -4, W | M, 2, -1, 1, "bitmap", "2.6.0", "Performs bitwise operations on multiple strings, and stores the result.", "@write @bitmap @slow"},
    {"lcs", cmd_lcs, -3, R, 1, 2, 1, "string", "7.0.0", "Finds the longest common substring.", "@read @string @slow"},
    /* keyspace */
    {"del", cmd_del, -2, W, 1, -1, 1, "generic", "1.0.0", "Deletes one or more keys.", "@keyspace @write @slow"},
    {"unlink", cmd_del, -2, W | F, 1, -1, 1, "generic", "4.0.0", "Asynchronously deletes one or more keys.", "@keyspace @write @fast"},
    {"exists", cmd_exists, -2, R | F, 1, -1, 1, "generic", "1.0.0", "Determines whether one or more keys exist.", "@keyspace @read @fast"},
    {"type", cmd_type, 2, R | F, 1, 1, 1, "generic", "1.0.0", "Determines the type of value stored at a key.", "@keyspace @read @fast"},
    {"touch", cmd_touch, -2, R | F, 1, -1, 1, "generic", "3.2.1", "Returns the number of existing keys out of those specified after updating the time they were last accessed.", "@keyspace @read @fast"},
    {"expire", cmd_expire, -3, W | F, 1, 1, 1, "generic", "1.0.0", "Sets the expiration time of a key in seconds.", "@keyspace @write @fast"},
    {"pexpire", cmd_pexpire, -3, W | F, 1, 1, 1, "generic", "2.6.0", "Sets the expiration time of a key in milliseconds.", "@keyspace @write @fast"},
    {"expireat", cmd_expireat, -3, W | F, 1, 1, 1, "generic", "1.2.0", "Sets the expiration time of a key to a Unix timestamp.", "@keyspace @write @fast"},
    {"pexpireat", cmd_pexpireat, -3, W | F, 1, 1, 1, "generic", "2.6.0", "Sets the expiration time of a key to a Unix milliseconds timestamp.", "@keyspace @write @fast"},
    {"ttl", cmd_ttl, 2, R | F, 1, 1, 1, "generic", "1.0.0", "Returns the expiration time in seconds of a key.", "@keyspace @read @fast"},
    {"pttl", cmd_pttl, 2, R | F, 1, 1, 1, "generic", "2.6.0", "Returns the expiration time in milliseconds of a key.", "@keyspace @read @fast"},
    {"expiretime", cmd_expiretime, 2, R | F, 1, 1, 1, "generic", "7.0.0", "Returns the expiration time of a key as a Unix timestamp.", "@keyspace @read @fast"},
    {"pexpiretime", cmd_pexpiretime, 2, R | F, 1, 1, 1, "generic", "7.0.0", "Returns the expiration time of a key as a Unix milliseconds timestamp.", "@keyspace @read @fast"},
    {"persist", cmd_persist, 2, W | F, 1, 1, 1, "generic", "2.2.0", "Removes the expiration time of a key.", "@keyspace @write @fast"},
    {"keys", cmd_keys, 2, R, 0, 0, 0, "generic", "1.0.0", "Returns all key names that match a pattern.", "@keyspace @read @slow @dangerous"},
    {"scan", cmd_scan, -2, R, 0, 0, 0, "generic", "2.8.0", "Iterates over the key names in the database.", "@keyspace @read @slow"},
    {"randomkey", cmd_randomkey, 1, R, 0, 0, 0, "generic", "1.0.0", "Returns a random key name from the database.", "@keyspace @read @slow"},
    {"rename", cmd_rename, 3, W, 1, 2, 1, "generic", "1.0.0", "Renames a key and overwrites the destination.", "@keyspace @write @slow"},
    {"renamenx", cmd_renamenx, 3, W | F, 1, 2, 1, "generic", "1.0.0", "Renames a key only when the target key name doesn't exist.", "@keyspace @write @fast"},
    {"dbsize", cmd_dbsize, 1, R | F, 0, 0, 0, "server", "1.0.0", "Returns the number of keys in the database.", "@keyspace @read @fast"},
    {"flushdb", cmd_flushdb, -1, W, 0, 0, 0, "server", "1.0.0", "Remove all keys from the current database.", "@keyspace @write @slow @dangerous"},
    {"flushall", cmd_flushall, -1, W, 0, 0, 0, "server", "1.0.0", "Removes all keys from all databases.", "@keyspace @write @slow @dangerous"},
    /* connection and server */
    {"ping", cmd_ping, -1, F, 0, 0, 0, "connection", "1.0.0", "Returns the server's liveliness response.", "@fast @connection"},
    {"echo", cmd_echo, 2, F, 0, 0, 0, "connection", "1.0.0", "Returns the given string.", "@fast @connection"},
    {"quit", cmd_quit, -1, NA | F | NQ, 0, 0, 0, "connection", "1.0.0", "Closes the connection.", "@fast @connection"},
    {"reset", cmd_reset, 1, NA | F | NQ, 0, 0, 0, "connection", "6.2.0", "Resets the connection.", "@fast @connection"},
    {"hello", cmd_hello, -1, NA | F, 0, 0, 0, "connection", "6.0.0", "Handshakes with the Redis server.", "@fast @connection"},
    {"auth", cmd_auth, -2, NA | F, 0, 0, 0, "connection", "1.0.0", "Authenticates the connection.", "@fast @connection"},
    {"select", cmd_select, 2, F, 0, 0, 0, "connection", "1.0.0", "Changes the selected database.", "@fast @connection"},
    {"client", cmd_client, -2, A, 0, 0, 0, "connection", "2.4.0", "A container for client connection commands.", "@slow @connection", client_subs},
    {"command", cmd_command, -1, 0, 0, 0, 0, "server", "2.8.13", "Returns detailed information about all commands.", "@slow @connection", command_subs},
    {"info", cmd_info, -1, 0, 0, 0, 0, "server", "1.0.0", "Returns information and statistics about the server.", "@slow @dangerous"},
    {"config", cmd_config, -2, A, 0, 0, 0, "server", "2.0.0", "A container for server configuration commands.", "@slow", config_subs},
    {"cluster", cmd_cluster, -2, 0, 0, 0, 0, "cluster", "3.0.0", "A container for Redis Cluster commands.", "@slow"},
    {"time", cmd_time, 1, F, 0, 0, 0, "server", "2.6.0", "Returns the server time.", "@fast"},
    {"slowlog", cmd_slowlog, -2, A, 0, 0, 0, "server", "2.2.12", "A container for slow log commands.", "@slow", slowlog_subs},
    {"cache", cmd_cache, -2, A, 0, 0, 0, "cachetoryd", "0.1.0", "A container for commands on the stored (encoded) bytes.", "@slow", cache_subs},
    /* transactions */
    {"multi", cmd_multi, 1, F | NQ, 0, 0, 0, "transactions", "1.2.0", "Starts a transaction.", "@fast @transaction"},
    {"exec", cmd_exec, 1, NQ, 0, 0, 0, "transactions", "1.2.0", "Executes all commands in a transaction.", "@slow @transaction"},
    {"discard", cmd_discard, 1, F | NQ, 0, 0, 0, "transactions", "2.0.0", "Discards a transaction.", "@fast @transaction"},
    {"watch", cmd_watch, -2, F | NQ, 1, -1, 1, "transactions", "2.2.0", "Monitors changes to keys to determine the execution of a transaction.", "@fast @transaction"},
    {"unwatch", cmd_unwatch, 1, F, 0, 0, 0, "transactions", "2.2.0", "Forgets about watched keys of a transaction.", "@fast @transaction"},
};
const int cmd_count = (int)(sizeof(cmd_table) / sizeof(cmd_table[0]));

/*
 * Lookup: open addressing over lower-cased names, built once at startup. A command name longer than
 * any in the table cannot match, so it is rejected before hashing.
 */
#define CMD_SLOTS 256
#define CMD_NAME_MAX 16
static const cmd_def_t *cmd_slots[CMD_SLOTS];

static unsigned cmd_hash(const char *p, size_t n)
{
    unsigned h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)tolower((unsigned char)p[i])) * 16777619u;
    return h;
}

void cmd_setup(config_t *cfg, backend_t *b, struct cache *cache, struct server *srv)
{
    cmd_ctx.cfg = cfg;
    cmd_ctx.cache = cache;
    cmd_ctx.srv = srv;
    cmd_ctx.start_ms = clock_refresh();
    cmd_set_backend(b);
    for (int i = 0; i < cmd_count; i++) {
        unsigned h = cmd_hash(cmd_table[i].name, strlen(cmd_table[i].name)) % CMD_SLOTS;
        while (cmd_slots[h] != NULL)
            h = (h + 1) % CMD_SLOTS;
        cmd_slots[h] = &cmd_table[i];
    }
}

const cmd_def_t *cmd_lookup(bytes_t name)
{
    if (name.len == 0 || name.len > CMD_NAME_MAX)
        return NULL;
    for (unsigned h = cmd_hash(name.ptr, name.len) % CMD_SLOTS; cmd_slots[h] != NULL; h = (h + 1) % CMD_SLOTS) {
        const cmd_def_t *d = cmd_slots[h];
        if (strlen(d->name) == name.len && strncasecmp(d->name, name.ptr, name.len) == 0)
            return d;
    }
    return NULL;
}

void cmd_reply_arity(buf_t *out, const char *name)
{
    reply_errorf(out, "ERR wrong number of arguments for '%s' command", name);
}

void cmd_reply_help(buf_t *out, const char *const *lines, size_t n)
{
    reply_array(out, n);
    for (size_t i = 0; i < n; i++)
        reply_status(out, lines[i]);
}

void cmd_reply_unknown_sub(buf_t *out, bytes_t sub, const char *container)
{
    char upper[64];
    size_t i;

    for (i = 0; container[i] && i < sizeof(upper) - 1; i++)
        upper[i] = (char)toupper((unsigned char)container[i]);
    upper[i] = '\0';
    reply_errorf(out, "ERR unknown subcommand '%.*s'. Try %s HELP.", (int)(sub.len > 128 ? 128 : sub.len), sub.ptr,
                 upper);
}

/* "ERR unknown command 'x', with args beginning with: 'a' 'b' " — redis 7 quotes at most 128 bytes of
 * each part and stops at the text's room. */
void cmd_reply_unknown(buf_t *out, int argc, bytes_t *argv)
{
    char msg[512];
    size_t n = 0;

    n += (size_t)snprintf(msg, sizeof(msg), "ERR unknown command '%.*s', with args beginning with: ",
                          (int)(argv[0].len > 128 ? 128 : argv[0].len), argv[0].ptr);
    for (int i = 1; i < argc && n < sizeof(msg) - 1; i++)
        n += (size_t)snprintf(msg + n, sizeof(msg) - n, "'%.*s' ",
                              (int)(argv[i].len > 128 ? 128 : argv[i].len), argv[i].ptr);
    reply_error(out, msg);
}

static int cmd_arity_ok(const cmd_def_t *d, int argc)
{
    return d->arity > 0 ? argc == d->arity : argc >= -d->arity;
}

/* The subcommand of container d named by arg ("list" finds "client|list"), or NULL. */
static const cmd_def_t *cmd_lookup_sub(const cmd_def_t *d, bytes_t arg)
{
    size_t plen = strlen(d->name) + 1;
    for (const cmd_def_t *s = d->subs; s->name != NULL; s++)
        if (strlen(s->name) - plen == arg.len && strncasecmp(s->name + plen, arg.ptr, arg.len) == 0)
            return s;
    return NULL;
}

/* WATCH / UNWATCH run here only over a backend that watches keys (memory://) or gives a client a dedicated
 * connection (an upstream); elsewhere they are refused by their class */
int cmd_served(const cmd_def_t *d)
{
    backend_t *b = cmd_ctx.backend;
    return !((d->proc == cmd_watch || d->proc == cmd_unwatch) && !backend_can_watch(b) && !backend_can_pin(b));
}

/*
 * Check argv against the table: redis's errors for a wrong number of arguments and an unknown
 * subcommand of a container cachetoryd runs. A command not in the table, and a subcommand not in its
 * container's list that Redis has (CONFIG SET, CLIENT TRACKING...), go by their class
 * (cmd_passthrough_resolve): forwarded, or refused — unknown command or wrong arity first, then NOAUTH
 * when noauth says the client has yet to authenticate, then the class's own refusal. Authentication of a
 * command in the table is checked by the caller (cmd_dispatch), after this. Returns the definition to
 * run, or NULL after writing the error to out (a wrong number of arguments of a command in the table is
 * its rejected call, as Redis counts it; an unknown command or subcommand is no command's).
 */
static const cmd_def_t *cmd_resolve(buf_t *out, int argc, bytes_t *argv, int noauth)
{
    const cmd_def_t *d = cmd_lookup(argv[0]);

    if (d != NULL && !cmd_served(d))
        d = NULL;
    if (d == NULL)
        return cmd_passthrough_resolve(out, argc, argv, noauth);
    if (!cmd_arity_ok(d, argc)) {
        cmd_reply_arity(out, d->name);
        cmd_stats_rejected(d->name);
        return NULL;
    }
    if (d->subs != NULL && argc >= 2) {
        const cmd_def_t *sub = cmd_lookup_sub(d, argv[1]);
        if (sub == NULL && cmd_class_lookup(argv[0]) != NULL)     /* CONFIG SET, CLIENT TRACKING... */
            return cmd_passthrough_resolve(out, argc, argv, noauth);
        if (sub == NULL) {
            cmd_reply_unknown_sub(out, argv[1], d->name);
            return NULL;
        }
        if (!cmd_arity_ok(sub, argc)) {
            cmd_reply_arity(out, sub->name);
            cmd_stats_rejected(sub->name);
            return NULL;
        }
        d = sub;
    }
    return d;
}

/* MULTI: a copy of the command, to run at EXEC. */
static void cmd_multi_queue(cmd_session_t *s, int argc, bytes_t *argv)
{
    size_t bytes = 0;

    if (s->mcount == s->mcap) {
        s->mcap = s->mcap ? s->mcap * 2 : 8;
        s->mqueue = mem_realloc(s->mqueue, (size_t)s->mcap * sizeof(*s->mqueue));
    }
    for (int i = 0; i < argc; i++)
        bytes += argv[i].len;
    /* One block: the slice array, then the bytes. */
    char *block = mem_alloc((size_t)argc * sizeof(bytes_t) + bytes);
    bytes_t *v = (bytes_t *)block;
    char *p = block + (size_t)argc * sizeof(bytes_t);
    for (int i = 0; i < argc; i++) {
        memcpy(p, argv[i].ptr, argv[i].len);
        v[i] = (bytes_t){ p, argv[i].len };
        p += argv[i].len;
    }
    s->mqueue[s->mcount++] = (queued_cmd_t){ argc, v };
}

/*
 * The name a command is counted and shown by (INFO commandstats, CLIENT LIST's cmd=): its table row's,
 * and for one forwarded to the upstream (the definitions named "passthrough") its Redis 7.0 name from
 * the classes' table ("hset", "object|encoding"), as Redis itself would count it.
 */
const char *cmd_stat_name(const cmd_def_t *d, int argc, const bytes_t *argv)
{
    if (strcmp(d->name, "passthrough") != 0)
        return d->name;
    const cmd_class_t *cl = cmd_class_lookup(argv[0]);
    if (cl != NULL && cl->subs != NULL && argc >= 2) {
        const cmd_class_t *sub = cmd_class_lookup_sub(cl, argv[1]);
        cl = sub != NULL ? sub : cl;
    }
    return cl != NULL ? cl->name : d->name;
}

/* Run a command that passed the checks, in its req r. */
static void cmd_call(client_t *c, req_t *r, const cmd_def_t *d, int argc, bytes_t *argv)
{
    long long t0 = clock_us_monotonic();
    const char *name = cmd_stat_name(d, argc, argv);

    cmd_session(c)->last_cmd = name;
    cmd_scratch(r)->stat = name;
    cmd_ctx.stats.total_commands++;
    if (d->proc(r, argc, argv) == CMD_DONE)
        req_done(r);
    cmd_stats_record(c, name, argc, argv, clock_us_monotonic() - t0);
}

/* Is the backend over its memory limit even after evicting? Asked before a write runs or is queued in
 * MULTI, as redis refuses denyoom commands up front. The arguments' size is not counted: what a write
 * costs is known only once the codec has run (a compressed value may take a thousandth of it), so the
 * backend charges the stored size when the write runs. */
static int cmd_over_limit(void)
{
    return backend_over_limit(cmd_ctx.backend);
}

/*
 * Every command passes here: lookup, arity, authentication, MULTI queueing, then the handler. Errors
 * found here are redis's, in redis's order; inside MULTI they also doom the transaction.
 */
void cmd_dispatch(client_t *c, int argc, bytes_t *argv)
{
    cmd_session_t *s = cmd_session(c);
    req_t *r = cmd_req_create(c);
    int noauth = cmd_auth_required(c);
    const cmd_def_t *d = cmd_resolve(req_out(r), argc, argv, noauth);
    const char *refuse = NULL;

    if (d != NULL && noauth && !(d->flags & CMD_NOAUTH))
        refuse = ERR_NOAUTH;
    else if (d != NULL && (d->flags & CMD_DENYOOM) && cmd_over_limit())
        refuse = ERR_OOM;
    if (refuse != NULL) {
        reply_error(req_out(r), refuse);
        cmd_stats_rejected(cmd_stat_name(d, argc, argv));
    }
    if (d == NULL || refuse != NULL) {
        if (s->flags & SESSION_MULTI)
            s->flags |= SESSION_DIRTY_EXEC;
        req_done(r);
        return;
    }
    if (cmd_pubsub_filter(r, d, argc, argv))
        return;                         /* subscribed (RESP2): Redis's error, or PING's pub/sub answer */
    if ((s->flags & SESSION_MULTI) && !(d->flags & CMD_NOQUEUE)) {
        cmd_multi_queue(s, argc, argv);
        REPLY_QUEUED(req_out(r));
        req_done(r);
        return;
    }
    cmd_call(c, r, d, argc, argv);
}

/* MULTI */
int cmd_multi(req_t *r, int argc, bytes_t *argv)
{
    cmd_session_t *s = cmd_session(r->c);

    if (s->flags & SESSION_MULTI) {
        reply_error(req_out(r), "ERR MULTI calls can not be nested");
        return CMD_DONE;
    }
    s->flags |= SESSION_MULTI;
    REPLY_OK(req_out(r));
    return CMD_DONE;
}

/* DISCARD */
int cmd_discard(req_t *r, int argc, bytes_t *argv)
{
    if (!(cmd_session(r->c)->flags & SESSION_MULTI)) {
        reply_error(req_out(r), "ERR DISCARD without MULTI");
        return CMD_DONE;
    }
    cmd_multi_reset(cmd_session(r->c));
    REPLY_OK(req_out(r));
    return CMD_DONE;
}

/*
 * WATCH key [key ...]: the backend watches each key in the client's database until the transaction ends
 * (EXEC, DISCARD), UNWATCH, RESET or the client goes; EXEC then fails (a null reply) if any was modified
 * since. Not queued inside MULTI, where it is an error that does not doom the transaction (as Redis).
 */
static int cmd_watch(req_t *r, int argc, bytes_t *argv)
{
    cmd_session_t *s = cmd_session(r->c);

    if (s->flags & SESSION_MULTI) {
        reply_error(req_out(r), "ERR WATCH inside MULTI is not allowed");
        return CMD_DONE;
    }
    if (!backend_can_watch(cmd_ctx.backend)) {
        /* an upstream: Redis watches them, on the client's dedicated connection, where everything the client
         * sends goes until the transaction ends (EXEC, DISCARD, UNWATCH, RESET or the client goes) */
        char err[400];
        if (cmd_session_pin(r->c, PIN_WATCH, err, sizeof(err)) < 0) {
            reply_error(req_out(r), err);
            return CMD_DONE;
        }
        /* in the client's protocol: a RESP3 client's WATCH does not turn its connection back to RESP2 */
        backend_op_t op = { .code = BE_COMMAND, .argc = argc, .argv = argv,
                            .flags = BE_READONLY | (s->proto == 3 ? BE_RESP3 : 0) };
        return cmd_submit_raw(r, &op, cmd_relay_done_cb);
    }
    for (int i = 1; i < argc; i++)
        backend_watch(cmd_ctx.backend, &s->watch, s->db, argv[i]);
    REPLY_OK(req_out(r));
    return CMD_DONE;
}

/* UNWATCH */
static int cmd_unwatch(req_t *r, int argc, bytes_t *argv)
{
    cmd_session_unwatch(cmd_session(r->c));
    REPLY_OK(req_out(r));
    return CMD_DONE;
}

/*
 * The upstream's answer to a client's transaction (backend batch end): EXEC's array header, with the
 * queued commands' replies to follow; the upstream's error (EXECABORT: it refused a command when it
 * was queued) as the one reply to EXEC, the commands' own replies dropped, as Redis answers.
 */
static void exec_outcome_cb(void *ctx, const backend_result_t *res)
{
    req_t *r = ctx;

    if (res->status != BE_OK) {
        if (res->status == BE_NIL)          /* Redis aborted it: a key the client WATCHed changed */
            reply_null_array(req_out(r), cmd_proto(r));
        else
            reply_error(req_out(r), res->err);
        req_t *m = r->next;
        for (long long i = 0; i < cmd_scratch(r)->aux && m != NULL; i++, m = m->next) {
            m->mute = 1;
            buf_reset(&m->out);         /* answered already (refused before the upstream saw it) */
        }
    } else {
        reply_array(req_out(r), (size_t)cmd_scratch(r)->aux);
    }
    req_done(r);
}

/*
 * EXEC: aborted (a null reply) when a WATCHed key was modified since it was watched, or expired since;
 * otherwise the array header, then each queued command as a command of its own, so their replies follow
 * in order. With the memory backend they all complete within this call: nothing else runs in between,
 * which is what makes the transaction atomic and isolated. A backend with batches (an upstream) runs
 * them as one transaction and tells how it went before their replies (exec_outcome_cb).
 */
int cmd_exec(req_t *r, int argc, bytes_t *argv)
{
    client_t *c = r->c;
    cmd_session_t *s = cmd_session(c);

    if (!(s->flags & SESSION_MULTI)) {
        reply_error(req_out(r), "ERR EXEC without MULTI");
        return CMD_DONE;
    }
    if (s->flags & SESSION_DIRTY_EXEC) {
        cmd_multi_reset(s);
        reply_error(req_out(r), "EXECABORT Transaction discarded because of previous errors.");
        return CMD_DONE;
    }
    if (backend_watch_touched(cmd_ctx.backend, s->watch)) {
        cmd_multi_reset(s);
        reply_null_array(req_out(r), cmd_proto(r));
        return CMD_DONE;
    }
    /* nothing watched from here: the transaction's own writes touch no one of ours (a dedicated upstream
     * connection stays until the transaction is on it: Redis checks the WATCH there) */
    backend_unwatch(s->watch);
    s->watch = NULL;
    queued_cmd_t *q = s->mqueue;
    int n = s->mcount;
    s->mqueue = NULL;
    s->mcount = s->mcap = 0;
    s->flags &= ~SESSION_MULTI;
    backend_t *b = cmd_ctx.backend;
    int batched = backend_batch_begin(b, c->id);
    if (!batched) {
        reply_array(req_out(r), (size_t)n);
        req_done(r);
    }
    cmd_scratch(r)->aux = n;
    s->flags |= SESSION_IN_EXEC;
    for (int i = 0; i < n; i++) {
        if (!(c->flags & CLIENT_CLOSING)) {
            req_t *qr = cmd_req_create(c);
            const cmd_def_t *qd = cmd_resolve(req_out(qr), q[i].argc, q[i].argv, 0);
            if (qd != NULL)
                cmd_call(c, qr, qd, q[i].argc, q[i].argv);
            else
                req_done(qr);
        }
        mem_free(q[i].argv);
    }
    s->flags &= ~SESSION_IN_EXEC;
    if (batched)
        backend_batch_end(b, c->id, exec_outcome_cb, r);
    cmd_session_unpin(s, PIN_WATCH, 0);     /* handed back once EXEC has run on it */
    mem_free(q);
    return CMD_PENDING;
}

int cmd_submit(req_t *r, backend_op_t *op, backend_cb *cb)
{
    return cmd_submit_opts(r, op, cb, 1, -1);
}

int cmd_submit_opts(req_t *r, backend_op_t *op, backend_cb *cb, int may_offload, int db)
{
    client_t *c = r->c;
    const cmd_session_t *s = cmd_session(c);

    op->db = db >= 0 ? db : s->db;
    op->affinity = c->id;
    op->pin = cmd_session_op_pin(s);
    if (cache_submit(cmd_ctx.cache, op, cb, r, may_offload && !(s->flags & SESSION_IN_EXEC))) {
        /* its values went to the thread pool: the client's next commands wait for it */
        req_hold(r);
    }
    return CMD_PENDING;
}

int cmd_submit_raw(req_t *r, backend_op_t *op, backend_cb *cb)
{
    op->db = cmd_session(r->c)->db;
    op->affinity = r->c->id;
    if (op->pin == NULL)                /* a command that must go on the pin (SUBSCRIBE...) names it */
        op->pin = cmd_session_op_pin(cmd_session(r->c));
    cache_submit_raw(cmd_ctx.cache, op, cb, r);
    return CMD_PENDING;
}

/* string2ll's rules: optional '-', digits, no leading zeros, no spaces, fits in long long. */
int cmd_parse_ll(bytes_t a, long long *out)
{
    const char *p = a.ptr;
    size_t n = a.len, i = 0;
    int neg = 0;
    unsigned long long v = 0;

    if (n == 0 || n > 20)
        return -1;
    if (n == 1 && p[0] == '0') {
        *out = 0;
        return 0;
    }
    if (p[0] == '-') {
        neg = 1;
        i = 1;
        if (n == 1)
            return -1;
    }
    if (p[i] < '1' || p[i] > '9')
        return -1;
    for (; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        if (v > (ULLONG_MAX - (unsigned)(p[i] - '0')) / 10)
            return -1;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    if (neg) {
        if (v > (unsigned long long)LLONG_MAX + 1)
            return -1;
        *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
    } else {
        if (v > (unsigned long long)LLONG_MAX)
            return -1;
        *out = (long long)v;
    }
    return 0;
}

/* As redis's string2ld: strtold over the whole text, no leading space, not nan, no overflow. */
int cmd_parse_ld(bytes_t a, long double *out)
{
    char tmp[5 * 1024 + 1];
    char *end;

    if (a.len == 0 || a.len >= sizeof(tmp))
        return -1;
    memcpy(tmp, a.ptr, a.len);
    tmp[a.len] = '\0';
    if (isspace((unsigned char)tmp[0]))
        return -1;
    errno = 0;
    long double v = strtold(tmp, &end);
    if ((size_t)(end - tmp) != a.len || (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || v == 0)) ||
        isnan(v))
        return -1;
    *out = v;
    return 0;
}
