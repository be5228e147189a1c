/*
 * config: every option of cachetoryd in one table (name, section, type, bounds, default, help), read
 * from an INI file with inih and overridden from the command line (`--name value`, like redis-server).
 *
 * The table in config_table.c is the single source of truth: the parser, the defaults, the bounds,
 * CONFIG GET, CONFIG SET, CONFIG REWRITE (config_rewrite.c), --help and which options a reload changes
 * in place all read it. An error names the option (and, in a file, `file:line: 'the line': reason`)
 * and says what is accepted.
 */
#ifndef CACHETORYD_CONFIG_H
#define CACHETORYD_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#define CONFIG_MAX_BIND 16
#define CONFIG_MAX_CACHES 64            /* [cache.NAME] sections at most */
#define CONFIG_CACHE_NAME_MAX 32        /* NAME: 1..32 of A-Z a-z 0-9 _ - */

enum config_loglevel { LOG_LEVEL_DEBUG, LOG_LEVEL_VERBOSE, LOG_LEVEL_NOTICE, LOG_LEVEL_WARNING };
/* passthrough-scripts: what scripts, functions and SORT ... BY / GET get with a serializer that encodes */
enum config_passthrough_scripts { PASSTHROUGH_SCRIPTS_REFUSE, PASSTHROUGH_SCRIPTS_STORED_BYTES };

/* maxmemory-policy: what the memory backend evicts at maxmemory (its store_policy_t has these values) */
/* cluster-cross-slot-writes: MSET whose keys hash to several slots of a Redis Cluster */
enum config_cross_slot { CLUSTER_CROSS_SLOT_ERROR, CLUSTER_CROSS_SLOT_SPLIT };

/* read-from: where a cluster's read commands go */
enum config_read_from { READ_FROM_MASTER, READ_FROM_REPLICA, READ_FROM_PREFER_REPLICA };

/* tls-auth-clients: as net/tls.h's enum tls_verify */
enum config_tls_auth { TLS_AUTH_NO, TLS_AUTH_OPTIONAL, TLS_AUTH_YES };

enum config_maxmemory_policy {
    MAXMEMORY_NOEVICTION, MAXMEMORY_ALLKEYS_LRU, MAXMEMORY_VOLATILE_LRU, MAXMEMORY_ALLKEYS_LFU,
    MAXMEMORY_VOLATILE_LFU, MAXMEMORY_VOLATILE_TTL, MAXMEMORY_ALLKEYS_RANDOM, MAXMEMORY_VOLATILE_RANDOM,
};

/* A [cache.NAME] section: keys starting with one of its prefixes go to a cache of their own (config_caches.c). */
typedef struct config_cache {
    char *name;                         /* NAME ("default" is [cache]'s and reserved) */
    char *prefix;                       /* its prefixes, separated by spaces, as written; never NULL once loaded */
    char *serializer;                   /* codec chain URL; NULL: [cache]'s serializer */
    int default_ttl;                    /* seconds; -1: [cache]'s default-ttl */
    int near_cache;                     /* its keys in the near cache: 0 / 1; -1: [cache]'s near-cache */
    int near_cache_ttl;                 /* ms an entry of its keys lives at most; -1: [cache]'s */
    int line;                           /* of the section header in the file */
    int prefix_line;                    /* of its options (0: not given) */
    int serializer_line;
    int default_ttl_line;
    int near_cache_line;
    int near_cache_ttl_line;
} config_cache_t;

typedef struct config {
    /* [server] */
    char *bind[CONFIG_MAX_BIND + 1];    /* addresses to listen on ("127.0.0.1 ::1"): numeric IPv4/IPv6,
                                           1 to CONFIG_MAX_BIND of them, NULL-terminated */
    int nbind;                          /* entries in bind */
    int port;                           /* TCP port; 0 = no TCP listener */
    char *unixsocket;                   /* path of a unix socket to listen on, or NULL */
    int unixsocketperm;                 /* its mode (octal in the file, e.g. 700), 0 = leave as created */
    int maxclients;                     /* connected clients at most */
    int timeout;                        /* close a client idle this many seconds; 0 = never */
    int tcp_keepalive;                  /* SO_KEEPALIVE interval in seconds; 0 = off */
    int tcp_backlog;                    /* listen() backlog */
    char *requirepass;                  /* password for AUTH, or NULL */
    long long proto_max_bulk_len;       /* largest bulk argument, bytes */
    long long client_query_buffer_limit;/* largest unprocessed input of one client, bytes */
    long long client_output_buffer_limit;/* largest pending output of one client, bytes; 0 = none */
    char *pidfile;                      /* write the pid here, or NULL */
    int databases;                      /* number of databases (SELECT 0..n-1) */
    int slowlog_log_slower_than;        /* microseconds; -1 = off */
    int slowlog_max_len;                /* SLOWLOG entries kept */
    int metrics_port;                   /* Prometheus HTTP port, 0 = off */
    char *metrics_bind;                 /* its address */

    /* [cache] */
    char *backend;                      /* backend URL: memory://, dummy://, redis://... */
    char *serializer;                   /* codec chain URL, e.g. null:// or zstd://?compression-level=3 */
    int default_ttl;                    /* seconds given to keys written without a TTL, 0 = none */
    long long codec_thread_min_size;    /* values this large are encoded / decoded on the thread pool; 0 = never */
    int codec_thread_nice;              /* nice value of pool threads while they run codec jobs */
    long long maxmemory;                /* memory:// limit in bytes, 0 = none */
    int maxmemory_policy;               /* enum config_maxmemory_policy */
    int hz;                             /* background tasks (active expiry) per second */
    int near_cache;                     /* the near cache in front of an upstream */
    long long near_cache_size;          /* its memory, bytes */
    long long near_cache_max_value_size;/* longer values are not kept */
    int near_cache_ttl;                 /* ms an entry lives at most, 0 = its key's TTL */
    char *near_cache_prefixes;          /* space-separated prefixes (broadcast mode), or NULL */
    char *dictionary_key_prefix;        /* upstream keys of trained zstd dictionaries: prefix + ID */
    char *dictionary_dir;               /* memory://: where trained dictionaries are kept, or NULL / "" */
    config_cache_t caches[CONFIG_MAX_CACHES];   /* [cache.NAME] sections, in file order */
    int ncaches;

    /* [upstream] */
    int upstream_pool_size;             /* connections to a redis:// backend */
    int upstream_dedicated_max;         /* connections held by one client each (WATCH, blocking, pub/sub) */
    int upstream_connect_timeout;       /* ms */
    int upstream_command_timeout;       /* ms */
    int upstream_retry_max;             /* ms, the longest reconnection backoff */
    char *upstream_password_file;       /* the upstream's password is this file's content, or NULL / "" */
    int passthrough;                    /* forward the commands of other types to the upstream */
    int passthrough_scripts;            /* enum config_passthrough_scripts */
    int cluster_cross_slot_writes;      /* enum config_cross_slot */
    int read_from;                      /* enum config_read_from */

    /* [tls] the TLS listener (redis.conf's names) */
    int tls_port;                       /* 0 = none */
    char *tls_cert_file;                /* PEM certificate (chain) it presents */
    char *tls_key_file;                 /* its private key */
    char *tls_key_file_pass;            /* the key's pass phrase, or NULL */
    char *tls_ca_cert_file;             /* CAs for client certificates */
    char *tls_ca_cert_dir;              /* the same as a hashed directory */
    int tls_auth_clients;               /* enum config_tls_auth */
    char *tls_protocols;                /* "TLSv1.2 TLSv1.3" */
    char *tls_ciphers;                  /* TLS <= 1.2 cipher list, or NULL for OpenSSL's default */
    char *tls_ciphersuites;             /* TLS 1.3 cipher suites, or NULL */
    int tls_prefer_server_ciphers;
    int tls_session_caching;
    int tls_session_cache_size;         /* sessions kept */
    int tls_session_cache_timeout;      /* seconds */
    int tls_handshake_timeout;          /* ms a client has to finish its handshake */

    /* [log] */
    int loglevel;                       /* enum config_loglevel */
    char *logfile;                      /* NULL or "" = stderr */
} config_t;

/* Fill cfg with the defaults. Strings in cfg are heap copies owned by cfg: config_deinit frees them.
 * String options set to none (the empty value) are NULL; backend and serializer are never NULL. */
void config_init(config_t *cfg);
void config_deinit(config_t *cfg);

/* On a cfg set up by config_init: read path (NULL: none, keep the defaults), then apply argv
 * overrides: a sequence of "--name value" pairs (names as in the file, e.g. --port 7000 --maxmemory
 * 100mb), which win over the file. In the file an option may appear under its own [section] or before
 * any section; an unknown option or section, an option under another section, an option given twice
 * (in the file, or on the command line) are errors. [cache.NAME] sections (file only) take prefix,
 * serializer and default-ttl; a missing or empty prefix, a prefix in two sections, a bad NAME, another
 * option there are errors too. Reading stops at the first error and returns -1 with a message in err:
 *   "config.conf:12: 'port = x': port must be an integer between 0 and 65535"
 *   "--port 'x': port must be an integer between 0 and 65535"   "--port: missing value"
 * cfg may be partly updated then. */
int config_load(config_t *cfg, const char *path, int argc, char **argv, char *err, size_t errlen);

/* The serializer and default-ttl of cache section cc, with [cache]'s where it gives none. */
const char *config_cache_serializer(const config_t *cfg, const config_cache_t *cc);
int config_cache_default_ttl(const config_t *cfg, const config_cache_t *cc);
/* Its near-cache (0 / 1) and near-cache-ttl (ms), with [cache]'s where it gives none. */
int config_cache_near(const config_t *cfg, const config_cache_t *cc);
int config_cache_near_ttl(const config_t *cfg, const config_cache_t *cc);
/* 1 if some cache keeps its keys in the near cache: [cache]'s near-cache, or a section's near-cache = yes. */
int config_near_wanted(const config_t *cfg);
/* 1 if a and b have the same [cache.NAME] sections, in the same order, with the same settings as
 * written (a reload compares them; lines do not count). */
int config_caches_equal(const config_t *a, const config_t *b);
/* Move src's [cache.NAME] sections into dst (dst's go; src has none after). */
void config_caches_take(config_t *dst, config_t *src);

/* Set one option by name from text, as in the file (one pair of surrounding quotes is removed).
 * 0, or -1 with the reason in err ("unknown option 'prot'", "port must be ...") and cfg unchanged. */
int config_set(config_t *cfg, const char *name, const char *value, char *err, size_t errlen);

/* CONFIG SET's config_set: value as the client sent it (no quotes removed); a line break in it is
 * refused. 0, or -1 with the reason in err and cfg unchanged. */
int config_set_verbatim(config_t *cfg, const char *name, const char *value, char *err, size_t errlen);

/* 1 if name (any case) is an option of the table. */
int config_exists(const char *name);
/* The table's spelling of the option named name (any case), or NULL. */
const char *config_canonical_name(const char *name);

/* A deep copy of src's options into dst (not set up before; config_deinit it after). The [cache.NAME]
 * sections are not copied: dst has none. CONFIG SET changes the copy, then makes it the running one. */
void config_copy_options(config_t *dst, const config_t *src);

/*
 * CONFIG REWRITE. config_rewrite_text: the text of a config file (old, oldlen bytes; NULL / 0 for none)
 * changed so that loading it gives cfg's options: the line of an option whose value in the file differs
 * from cfg's is replaced by "name = value"; an option the file does not set and whose value in cfg is
 * not its default is added after the last option line of its [section] (the section is added at the end
 * when the file has none). Every other line (comments, blank lines, [cache.NAME] sections, lines it does
 * not understand) stays as it was, in its place. Values are written as they are, secrets included (it is
 * the config file). The new text is appended to out (a buf_t).
 * config_rewrite: the same on the file at path, written atomically (a temporary file in the same
 * directory, then rename; a symbolic link is followed, the file's mode is kept; a missing file is
 * created). 0, or -1 with the reason in err ("config.conf: cannot write: ...") and the file unchanged.
 */
struct buf;
void config_rewrite_text(const config_t *cfg, const char *old, size_t oldlen, struct buf *out);
int config_rewrite(const config_t *cfg, const char *path, char *err, size_t errlen);

/* Call fn for every option whose name matches the glob pattern (util/glob.h, nocase), with the value
 * rendered as CONFIG GET shows it: sizes as a plain byte count, unixsocketperm in octal, names for
 * enums, "" for none, bind as a space-joined list, URLs with their password redacted (url_redact:
 * "redis://app:***@host:6379/0"). Only the options of the table exist: a name redis has and cachetoryd
 * does not (save, appendonly...) matches nothing, as an unknown name does in redis.
 * config_get_raw shows URLs as they are: for comparing two configurations, never for display. */
typedef void config_get_fn(void *priv, const char *name, const char *value);
void config_get(const config_t *cfg, const char *pattern, config_get_fn *fn, void *priv);
void config_get_raw(const config_t *cfg, const char *pattern, config_get_fn *fn, void *priv);

/* 1 for an option whose value is a secret (requirepass): CONFIG GET shows it, as redis does to an
 * authenticated client, but logs never do. */
int config_is_secret(const char *name);

/* 1 for an option a reload (SIGHUP) or CONFIG SET changes in place, 0 for one that needs a restart (or no option):
 * the CONFIG_LIVE flag of its row. */
int config_is_live(const char *name);

/* The name of value for an enum option: config_enum_name("maxmemory-policy", 1) is "allkeys-lru";
 * NULL if option is not an enum option or value none of its values. */
const char *config_enum_name(const char *option, int value);

/* Write the option list with defaults and help, for --help. */
void config_print_help(FILE *f);

/* "100mb" -> 104857600, as redis's memtoll: b, k (1000), kb (1024), m, mb, g, gb; case-insensitive.
 * Returns 0 or -1 if malformed or out of range. */
int config_parse_memory(const char *s, long long *out);

#endif
