/*
 * config_table: one row per option of cachetoryd (see config_table.h), and the names of the enum
 * options' values. config.c reads the rows; nothing here runs.
 */
#include "config_table.h"

#include <limits.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

/* --- enums ------------------------------------------------------------------------------------- */

/* The name of value v in names (n entries), or NULL past the last. */
static const char *enum_name(const char *const *names, size_t n, int v)
{
    return v >= 0 && (size_t)v < n ? names[v] : NULL;
}

/* The value whose name is s (any case): 0 with *out set, or -1. */
static int enum_parse(const char *const *names, size_t n, const char *s, int *out)
{
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(s, names[i]) == 0) {
            *out = (int)i;
            return 0;
        }
    }
    return -1;
}

/* The config_enum_t of PREFIX_names: PREFIX_enum, through the two functions above. */
#define CONFIG_ENUM_OF(prefix)                                                                              \
    static const char *prefix##_name(int v)                                                                \
    {                                                                                                      \
        return enum_name(prefix##_names, sizeof(prefix##_names) / sizeof(prefix##_names[0]), v);          \
    }                                                                                                      \
    static int prefix##_parse(const char *s, int *out)                                                     \
    {                                                                                                      \
        return enum_parse(prefix##_names, sizeof(prefix##_names) / sizeof(prefix##_names[0]), s, out);    \
    }                                                                                                      \
    static const config_enum_t prefix##_enum = { prefix##_parse, prefix##_name }

static const char *const loglevel_names[] = {
    [LOG_LEVEL_DEBUG] = "debug",
    [LOG_LEVEL_VERBOSE] = "verbose",
    [LOG_LEVEL_NOTICE] = "notice",
    [LOG_LEVEL_WARNING] = "warning",
};

CONFIG_ENUM_OF(loglevel);

static const char *const passthrough_scripts_names[] = {
    [PASSTHROUGH_SCRIPTS_REFUSE] = "refuse",
    [PASSTHROUGH_SCRIPTS_STORED_BYTES] = "stored-bytes",
};

CONFIG_ENUM_OF(passthrough_scripts);

/* maxmemory-policy, as redis spells them. The memory backend's store_policy_t has the same values
 * (backend/memory/policy.c checks it at compile time). */
static const char *const policy_names[] = {
    [MAXMEMORY_NOEVICTION] = "noeviction",
    [MAXMEMORY_ALLKEYS_LRU] = "allkeys-lru",
    [MAXMEMORY_VOLATILE_LRU] = "volatile-lru",
    [MAXMEMORY_ALLKEYS_LFU] = "allkeys-lfu",
    [MAXMEMORY_VOLATILE_LFU] = "volatile-lfu",
    [MAXMEMORY_VOLATILE_TTL] = "volatile-ttl",
    [MAXMEMORY_ALLKEYS_RANDOM] = "allkeys-random",
    [MAXMEMORY_VOLATILE_RANDOM] = "volatile-random",
};

CONFIG_ENUM_OF(policy);

static const char *const cross_slot_names[] = {
    [CLUSTER_CROSS_SLOT_ERROR] = "error",
    [CLUSTER_CROSS_SLOT_SPLIT] = "split",
};

CONFIG_ENUM_OF(cross_slot);

static const char *const read_from_names[] = {
    [READ_FROM_MASTER] = "master",
    [READ_FROM_REPLICA] = "replica",
    [READ_FROM_PREFER_REPLICA] = "prefer-replica",
};

CONFIG_ENUM_OF(read_from);

static const char *const tls_auth_names[] = {
    [TLS_AUTH_NO] = "no",
    [TLS_AUTH_OPTIONAL] = "optional",
    [TLS_AUTH_YES] = "yes",
};

CONFIG_ENUM_OF(tls_auth);

/* --- the table --------------------------------------------------------------------------------- */

#define F(field) offsetof(config_t, field)

/* One row per option, in the order CONFIG GET and --help list them. */
const config_option_t config_options[] = {
    /* name, section, type, field, min, max, enum, default, help, flags */
    { "bind", "server", CONFIG_ADDRLIST, F(bind), 0, 0, NULL, "127.0.0.1",
      "IPv4/IPv6 addresses to listen on, separated by spaces (0.0.0.0 or :: for all)" },
    { "port", "server", CONFIG_INT, F(port), 0, 65535, NULL, "6380",
      "TCP port to listen on; 0 = no TCP listener" },
    { "unixsocket", "server", CONFIG_STRING, F(unixsocket), 0, 0, NULL, "",
      "path of a unix socket to listen on too; empty = none" },
    { "unixsocketperm", "server", CONFIG_OCTAL, F(unixsocketperm), 0, 0777, NULL, "0",
      "mode of the unix socket, in octal (e.g. 700); 0 = leave as created" },
    { "maxclients", "server", CONFIG_INT, F(maxclients), 1, 1000000, NULL, "10000",
      "connected clients at most; further connections are refused" },
    { "timeout", "server", CONFIG_INT, F(timeout), 0, INT_MAX, NULL, "0",
      "close a client idle this many seconds; 0 = never", CONFIG_LIVE },
    { "tcp-keepalive", "server", CONFIG_INT, F(tcp_keepalive), 0, INT_MAX, NULL, "300",
      "TCP keepalive interval in seconds; 0 = off", CONFIG_LIVE },
    { "tcp-backlog", "server", CONFIG_INT, F(tcp_backlog), 0, INT_MAX, NULL, "511",
      "listen() backlog (the kernel caps it at net.core.somaxconn)" },
    { "requirepass", "server", CONFIG_STRING, F(requirepass), 0, 0, NULL, "",
      "password clients must give with AUTH; empty = no password", CONFIG_LIVE },
    { "proto-max-bulk-len", "server", CONFIG_MEMORY, F(proto_max_bulk_len), MB, 2 * GB, NULL, "512mb",
      "largest bulk string a client may send" },
    { "client-query-buffer-limit", "server", CONFIG_MEMORY, F(client_query_buffer_limit), MB, LLONG_MAX,
      NULL, "1gb", "largest unprocessed input of one client; beyond it the client is closed", CONFIG_LIVE },
    /* 1gb: twice proto-max-bulk-len, so that the reply of the largest value a client may write (and a few
     * others pipelined with it) fits; a write whose reply would not fit is refused (cmd_value_unreadable) */
    { "client-output-buffer-limit", "server", CONFIG_MEMORY, F(client_output_buffer_limit), 0, LLONG_MAX,
      NULL, "1gb", "largest pending output of one client; beyond it the client is closed; 0 = unlimited. "
      "Writes of values whose reply would exceed it are refused", CONFIG_LIVE },
    { "pidfile", "server", CONFIG_STRING, F(pidfile), 0, 0, NULL, "",
      "write the process id to this file; empty = none" },
    { "slowlog-log-slower-than", "server", CONFIG_INT, F(slowlog_log_slower_than), -1, INT_MAX, NULL, "10000",
      "log commands that take this many microseconds or more in SLOWLOG; -1 = off, 0 = every command", CONFIG_LIVE },
    { "slowlog-max-len", "server", CONFIG_INT, F(slowlog_max_len), 0, 1000000, NULL, "128",
      "entries kept by SLOWLOG", CONFIG_LIVE },
    { "metrics-port", "server", CONFIG_INT, F(metrics_port), 0, 65535, NULL, "0",
      "serve Prometheus metrics over HTTP on this port (GET /metrics); 0 = off" },
    { "metrics-bind", "server", CONFIG_STRING, F(metrics_bind), 0, 0, NULL, "127.0.0.1",
      "address the metrics port listens on" },
    { "databases", "server", CONFIG_INT, F(databases), 1, 10000, NULL, "16",
      "number of databases (SELECT 0 to databases-1)" },

    { "backend", "cache", CONFIG_URL, F(backend), 0, 0, NULL, "memory://",
      "where values are kept: memory://, dummy:// (caching off) or redis://host:port/db" },
    { "serializer", "cache", CONFIG_URL, F(serializer), 0, 0, NULL, "null://",
      "codec chain applied to values, e.g. null:// or zstd://?compression-level=3", CONFIG_LIVE },
    { "default-ttl", "cache", CONFIG_INT, F(default_ttl), 0, INT_MAX, NULL, "0",
      "seconds to live of keys written without a TTL (SET, MSET and their kin), and of keys that INCR, APPEND, "
      "SETRANGE... or SET ... KEEPTTL create; 0 = they live until deleted or evicted", CONFIG_LIVE },
    { "codec-thread-min-size", "cache", CONFIG_MEMORY, F(codec_thread_min_size), 0, LLONG_MAX, NULL, "64kb",
      "values at least this large are encoded and decoded on the thread pool, so that one big value does "
      "not stall other clients; 0 = always on the loop thread" },
    { "codec-thread-nice", "cache", CONFIG_INT, F(codec_thread_nice), 0, 19, NULL, "10",
      "nice value of the thread-pool threads while they encode and decode, so that big values do not take "
      "CPU from the event loop serving the other clients; 0 = same priority as the loop", CONFIG_LIVE },
    { "maxmemory", "cache", CONFIG_MEMORY, F(maxmemory), 0, LLONG_MAX, NULL, "0",
      "memory:// limit; keys are evicted by maxmemory-policy beyond it; 0 = no limit", CONFIG_LIVE },
    { "maxmemory-policy", "cache", CONFIG_ENUM, F(maxmemory_policy), 0, 0, &policy_enum, "allkeys-lru",
      "which keys to evict when maxmemory is reached", CONFIG_LIVE },
    { "near-cache", "cache", CONFIG_BOOL, F(near_cache), 0, 1, NULL, "no",
      "keep decoded values of the keys read in this process, in front of an upstream Redis, kept exact by "
      "Redis's invalidation messages (CLIENT TRACKING); needs a redis://, rediss:// or redis+unix:// backend" },
    { "near-cache-size", "cache", CONFIG_MEMORY, F(near_cache_size), 0, LLONG_MAX, NULL, "64mb",
      "memory the near cache may use (keys, values and per-entry overhead); least recently used entries go "
      "beyond it", CONFIG_LIVE },
    { "near-cache-max-value-size", "cache", CONFIG_MEMORY, F(near_cache_max_value_size), 0, LLONG_MAX, NULL,
      "64kb", "values longer than this (decoded) are not kept in the near cache", CONFIG_LIVE },
    { "near-cache-ttl", "cache", CONFIG_INT, F(near_cache_ttl), 0, INT_MAX, NULL, "0",
      "milliseconds a near cache entry lives at most; 0 = as long as its key upstream (its TTL) and until "
      "an invalidation", CONFIG_LIVE },
    { "near-cache-prefixes", "cache", CONFIG_STRING, F(near_cache_prefixes), 0, 0, NULL, "",
      "keep only keys with one of these prefixes (separated by spaces), tracked in Redis's broadcast mode: "
      "every change under them is told; empty = any key, tracked as it is read" },
    { "dictionary-key-prefix", "cache", CONFIG_STRING, F(dictionary_key_prefix), 0, 0, NULL,
      "cachetoryd:zstd-dict:", "zstd dictionaries trained with zstd://?dictionary=auto are stored upstream under "
      "this prefix followed by their ID, where every cachetoryd in front of that Redis finds them" },
    { "dictionary-dir", "cache", CONFIG_STRING, F(dictionary_dir), 0, 0, NULL, "",
      "with memory://, a directory where trained zstd dictionaries are written, and read at start so that a "
      "restart reuses them; empty = kept in memory only" },
    { "hz", "cache", CONFIG_INT, F(hz), 1, 500, NULL, "10",
      "background tasks (active expiry) per second" },

    { "upstream-pool-size", "upstream", CONFIG_INT, F(upstream_pool_size), 1, 256, NULL, "4",
      "connections to a redis:// backend; each carries many commands at once (pipelined)" },
    { "upstream-dedicated-max", "upstream", CONFIG_INT, F(upstream_dedicated_max), 0, 65536, NULL, "64",
      "most connections to a redis:// backend held by one client each, apart from the pool: from WATCH to "
      "EXEC, for a blocking command, while subscribed; 0 = none (those commands are refused)" },
    { "upstream-connect-timeout", "upstream", CONFIG_INT, F(upstream_connect_timeout), 1, 600000, NULL, "1000",
      "milliseconds to wait for a connection to the upstream before giving up and retrying", CONFIG_LIVE },
    { "upstream-command-timeout", "upstream", CONFIG_INT, F(upstream_command_timeout), 1, 600000, NULL, "2000",
      "milliseconds an upstream command may take; then it fails with an error and the connection is renewed",
      CONFIG_LIVE },
    { "upstream-retry-max", "upstream", CONFIG_INT, F(upstream_retry_max), 1, 600000, NULL, "2000",
      "longest wait between reconnection attempts, in milliseconds (the wait doubles from 50 ms)", CONFIG_LIVE },
    { "upstream-password-file", "upstream", CONFIG_STRING, F(upstream_password_file), 0, 0, NULL, "",
      "a file whose content is the upstream's password (a mounted secret), instead of one in the backend URL: "
      "read at start and again on SIGHUP (a changed password reconnects); empty = none" },
    { "passthrough", "upstream", CONFIG_BOOL, F(passthrough), 0, 1, NULL, "no",
      "forward the commands of other types (hashes, lists, sets, streams...) to the upstream as they are; "
      "string values always go through the serializer, and connection, blocking and admin commands are never "
      "forwarded (README, Passthrough)", CONFIG_LIVE },
    { "passthrough-scripts", "upstream", CONFIG_ENUM, F(passthrough_scripts), 0, 0, &passthrough_scripts_enum,
      "refuse", "with passthrough and a serializer other than null://: refuse EVAL, EVALSHA, FCALL (and _RO), "
      "SCRIPT / FUNCTION and SORT ... BY / GET patterns, which read string values inside Redis (refuse), or "
      "forward them, the scripts then seeing the stored, encoded bytes (stored-bytes)", CONFIG_LIVE },

    { "cluster-cross-slot-writes", "upstream", CONFIG_ENUM, F(cluster_cross_slot_writes), 0, 0, &cross_slot_enum,
      "error", "with a redis+cluster:// backend, an MSET whose keys hash to several slots: Redis's CROSSSLOT "
      "error (error), or one MSET per slot, not atomic across them (split)" },
    { "read-from", "upstream", CONFIG_ENUM, F(read_from), 0, 0, &read_from_enum, "master",
      "with a redis+cluster:// backend, where reads (GET, MGET, EXISTS, TTL, TYPE) go: the slot's master, a "
      "replica of it (replica: errors while it is down), or a replica while one is up (prefer-replica); "
      "a replica may not have the latest writes yet" },

    /* The TLS listener: everything but tls-port is re-read by a reload (SIGHUP), which builds a new TLS
     * context from these rows (certificate rotation); a reload that fails keeps the previous one. */
    { "tls-port", "tls", CONFIG_INT, F(tls_port), 0, 65535, NULL, "0",
      "TCP port of the TLS listener, on the bind addresses; 0 = none (port and tls-port may both be open)" },
    { "tls-cert-file", "tls", CONFIG_STRING, F(tls_cert_file), 0, 0, NULL, "",
      "PEM certificate (with its chain) the TLS listener presents", CONFIG_LIVE },
    { "tls-key-file", "tls", CONFIG_STRING, F(tls_key_file), 0, 0, NULL, "",
      "PEM private key of tls-cert-file", CONFIG_LIVE },
    { "tls-key-file-pass", "tls", CONFIG_STRING, F(tls_key_file_pass), 0, 0, NULL, "",
      "pass phrase of an encrypted tls-key-file", CONFIG_LIVE },
    { "tls-ca-cert-file", "tls", CONFIG_STRING, F(tls_ca_cert_file), 0, 0, NULL, "",
      "PEM file of the CAs client certificates must come from", CONFIG_LIVE },
    { "tls-ca-cert-dir", "tls", CONFIG_STRING, F(tls_ca_cert_dir), 0, 0, NULL, "",
      "directory of such CAs, by subject hash (openssl rehash)", CONFIG_LIVE },
    { "tls-auth-clients", "tls", CONFIG_ENUM, F(tls_auth_clients), 0, 0, &tls_auth_enum, "yes",
      "clients must present a certificate from those CAs (yes), may (optional), or are not asked (no)",
      CONFIG_LIVE },
    { "tls-protocols", "tls", CONFIG_STRING, F(tls_protocols), 0, 0, NULL, "TLSv1.2 TLSv1.3",
      "TLS versions accepted, separated by spaces (TLSv1 TLSv1.1 TLSv1.2 TLSv1.3)", CONFIG_LIVE },
    { "tls-ciphers", "tls", CONFIG_STRING, F(tls_ciphers), 0, 0, NULL, "",
      "ciphers for TLS 1.2 and below, in OpenSSL's syntax; empty = OpenSSL's default", CONFIG_LIVE },
    { "tls-ciphersuites", "tls", CONFIG_STRING, F(tls_ciphersuites), 0, 0, NULL, "",
      "cipher suites for TLS 1.3, in OpenSSL's syntax; empty = OpenSSL's default", CONFIG_LIVE },
    { "tls-prefer-server-ciphers", "tls", CONFIG_BOOL, F(tls_prefer_server_ciphers), 0, 1, NULL, "no",
      "choose the cipher by this server's order rather than the client's", CONFIG_LIVE },
    { "tls-session-caching", "tls", CONFIG_BOOL, F(tls_session_caching), 0, 1, NULL, "yes",
      "let clients resume TLS sessions (a cheaper handshake when they reconnect)", CONFIG_LIVE },
    { "tls-session-cache-size", "tls", CONFIG_INT, F(tls_session_cache_size), 1, INT_MAX, NULL, "20480",
      "TLS sessions kept for resumption", CONFIG_LIVE },
    { "tls-session-cache-timeout", "tls", CONFIG_INT, F(tls_session_cache_timeout), 1, INT_MAX, NULL, "300",
      "seconds a TLS session can be resumed", CONFIG_LIVE },
    { "tls-handshake-timeout", "tls", CONFIG_INT, F(tls_handshake_timeout), 1, 600000, NULL, "10000",
      "milliseconds a client has to finish its TLS handshake; then it is closed", CONFIG_LIVE },

    { "loglevel", "log", CONFIG_ENUM, F(loglevel), 0, 0, &loglevel_enum, "notice",
      "least important messages that are logged", CONFIG_LIVE },
    { "logfile", "log", CONFIG_STRING, F(logfile), 0, 0, NULL, "",
      "file to append the log to; empty = standard error", CONFIG_LIVE },
};

#undef F

const size_t config_noptions = sizeof(config_options) / sizeof(config_options[0]);
_Static_assert(sizeof(config_options) / sizeof(config_options[0]) <= CONFIG_MAX_OPTIONS,
               "more options than CONFIG_MAX_OPTIONS");

const char *const config_sections[] = { "server", "cache", "upstream", "tls", "log" };
const size_t config_nsections = sizeof(config_sections) / sizeof(config_sections[0]);

