/*
 * cmd/info: what the server tells about itself — COMMAND (the table), INFO (redis's sections and field
 * names), TIME (CONFIG is cmd/config.c).
 */
#include "cmd/cmd.h"

#include <malloc.h>
#if defined(__SANITIZE_ADDRESS__)
/* sanitizer/allocator_interface.h's, not installed with every compiler */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cache/cache.h"
#include "cmd/classes.h"
#include "cmd/session.h"
#include "net/server.h"
#include "net/tls.h"
#include "util/glob.h"
#include "url.h"
#include "util/clock.h"
#include "util/mem.h"
#include "version.h"

/* ---- COMMAND ------------------------------------------------------------------------------------- */

/*
 * What COMMAND lists is what a client can run here: the table's commands (cmd_table), and in proxy mode
 * (an upstream and passthrough = yes) the Redis 7.0 commands forwarded to it (cmd/classes.c). Whether a
 * command is forwarded is asked of cmd_passthrough_resolve itself, with the command's name and enough
 * placeholder arguments for its arity, so that COMMAND never disagrees with what running it does (a
 * SCRIPT-class command is listed only when scripts may run upstream). Forms refused for their arguments
 * (XREAD ... BLOCK, SORT ... BY pattern) do not take the command out of the list: other forms run.
 * A forwarded container (OBJECT, XINFO...) is listed when one of its subcommands is, with those
 * subcommands.
 */

static size_t count_words(const char *s)
{
    size_t n = 0;
    for (const char *p = s; p && *p;) {
        while (*p == ' ')
            p++;
        if (*p == '\0')
            break;
        n++;
        while (*p && *p != ' ')
            p++;
    }
    return n;
}

/* A set (RESP3) or array of status replies, one per space-separated word of s. */
static void reply_words(buf_t *out, int proto, const char *s)
{
    reply_set(out, proto, count_words(s));
    for (const char *p = s; p && *p;) {
        while (*p == ' ')
            p++;
        if (*p == '\0')
            break;
        const char *e = p;
        while (*e && *e != ' ')
            e++;
        buf_append(out, "+", 1);
        buf_append(out, p, (size_t)(e - p));
        buf_append(out, "\r\n", 2);
        p = e;
    }
}

static int command_proxying(void)
{
    return backend_forwards(cmd_ctx.backend) && cmd_ctx.cfg->passthrough;
}

/* Is the Redis 7.0 command (or subcommand "container|sub") cl forwarded as the client would send it? */
static int class_forwarded(const cmd_class_t *cl)
{
    bytes_t argv[16];
    char name[64];
    int argc = cl->arity < 0 ? -cl->arity : cl->arity;
    const char *bar = strchr(cl->name, '|');
    buf_t scratch;

    if (argc < 1 || argc > 16)
        return 0;
    if (bar != NULL) {
        snprintf(name, sizeof(name), "%.*s", (int)(bar - cl->name), cl->name);
        argv[0] = (bytes_t){ name, strlen(name) };
        argv[1] = (bytes_t){ bar + 1, strlen(bar + 1) };
    } else {
        argv[0] = (bytes_t){ cl->name, strlen(cl->name) };
    }
    for (int i = bar ? 2 : 1; i < argc; i++)
        argv[i] = BYTES("0");
    buf_init(&scratch);
    const cmd_def_t *d = cmd_passthrough_resolve(&scratch, argc, argv, 0);
    buf_deinit(&scratch);
    return d != NULL;
}

/* A top-level row of cmd_classes listed by COMMAND here: forwarded, and not one the table runs. */
static int class_listed(const cmd_class_t *cl)
{
    if (!command_proxying() || cmd_lookup((bytes_t){ cl->name, strlen(cl->name) }) != NULL)
        return 0;
    if (cl->subs == NULL)
        return class_forwarded(cl);
    for (int i = 0; i < cl->nsubs; i++)
        if (class_forwarded(&cl->subs[i]))
            return 1;
    return 0;
}

/* COMMAND INFO's entry for a forwarded command: redis 7's ten fields from the class table (no tips, no key
 * specs: the legacy key positions say where the keys are). */
static void command_info_class(buf_t *out, int proto, const cmd_class_t *cl)
{
    reply_array(out, 10);
    reply_bulk_str(out, cl->name);
    reply_int(out, cl->arity);
    reply_words(out, proto, cl->flags);
    reply_int(out, cl->first_key);
    reply_int(out, cl->last_key);
    reply_int(out, cl->key_step);
    reply_words(out, proto, cl->acl);
    reply_array(out, 0);
    reply_array(out, 0);
    size_t n = 0;
    for (int i = 0; i < cl->nsubs; i++)
        n += class_forwarded(&cl->subs[i]);
    reply_array(out, n);
    for (int i = 0; i < cl->nsubs; i++)
        if (class_forwarded(&cl->subs[i]))
            command_info_class(out, proto, &cl->subs[i]);
}

/* COMMAND INFO's entry: name, arity, flags, first key, last key, step, ACL categories, tips, key specs,
 * subcommands — redis 7's ten fields. */
static void command_info_one(buf_t *out, int proto, const cmd_def_t *d)
{
    const char *flags[8];
    size_t nf = 0;

    if (d->flags & CMD_WRITE)
        flags[nf++] = "write";
    if (d->flags & CMD_READONLY)
        flags[nf++] = "readonly";
    if (d->flags & CMD_DENYOOM)
        flags[nf++] = "denyoom";
    if (d->flags & CMD_ADMIN)
        flags[nf++] = "admin";
    if (d->flags & CMD_NOAUTH)
        flags[nf++] = "no_auth";
    if (d->flags & CMD_FAST)
        flags[nf++] = "fast";
    reply_array(out, 10);
    reply_bulk_str(out, d->name);
    reply_int(out, d->arity);
    reply_set(out, proto, nf);
    for (size_t i = 0; i < nf; i++)
        reply_status(out, flags[i]);
    reply_int(out, d->first_key);
    reply_int(out, d->last_key);
    reply_int(out, d->key_step);
    reply_words(out, proto, d->acl);
    reply_array(out, 0);
    reply_array(out, 0);
    size_t n = 0;
    for (const cmd_def_t *sub = d->subs; sub != NULL && sub->name != NULL; sub++)
        n++;
    reply_array(out, n);
    for (const cmd_def_t *sub = d->subs; sub != NULL && sub->name != NULL; sub++)
        command_info_one(out, proto, sub);
}

static void command_docs_one(buf_t *out, int proto, const cmd_def_t *d)
{
    reply_bulk_str(out, d->name);
    reply_map(out, proto, 3);
    reply_bulk_str(out, "summary");
    reply_bulk_str(out, d->summary);
    reply_bulk_str(out, "since");
    reply_bulk_str(out, d->since);
    reply_bulk_str(out, "group");
    reply_bulk_str(out, d->group);
}

/* A forwarded command's docs: its group (the class table keeps no summary; redis leaves out a field it
 * has no text for). */
static void command_docs_class(buf_t *out, int proto, const cmd_class_t *cl)
{
    reply_bulk_str(out, cl->name);
    reply_map(out, proto, 1);
    reply_bulk_str(out, "group");
    reply_bulk_str(out, cl->group);
}

/* The commands COMMAND lists, as table rows and class rows (listed[] marks the class rows), their number. */
static size_t command_listed(unsigned char *listed)
{
    size_t n = 0;
    for (int i = 0; i < cmd_count; i++)
        n += (size_t)cmd_served(&cmd_table[i]);
    for (int i = 0; i < cmd_nclasses; i++) {
        listed[i] = (unsigned char)class_listed(&cmd_classes[i]);
        n += listed[i];
    }
    return n;
}

/* One name of COMMAND INFO / DOCS: the table's row, or a forwarded command's; 0 if neither. */
static int command_find(bytes_t name, const cmd_def_t **d, const cmd_class_t **cl)
{
    *d = cmd_lookup(name);
    *cl = NULL;
    if (*d != NULL && cmd_served(*d))
        return 1;
    *d = NULL;
    const cmd_class_t *c = cmd_class_lookup(name);
    if (c != NULL && class_listed(c)) {
        *cl = c;
        return 1;
    }
    return 0;
}

/* COMMAND LIST's names, as Redis 7 lists them (every command and every subcommand, "container|sub"),
 * filtered: FILTERBY MODULE (none here), ACLCAT (a category of the command's), PATTERN (a glob, any case). */
enum { LIST_ALL, LIST_MODULE, LIST_ACLCAT, LIST_PATTERN };
typedef struct command_list {
    int kind;
    bytes_t arg;
    buf_t names;                    /* the bulk strings */
    size_t n;
} command_list_t;

static int acl_has(const char *acl, bytes_t cat)
{
    for (const char *p = acl; p && *p;) {
        while (*p == ' ')
            p++;
        size_t w = strcspn(p, " ");
        if (w == cat.len + 1 && p[0] == '@' && strncasecmp(p + 1, cat.ptr, cat.len) == 0)
            return 1;
        p += w;
    }
    return 0;
}

static void command_list_add(command_list_t *l, const char *name, const char *acl)
{
    if (l->kind == LIST_MODULE || (l->kind == LIST_ACLCAT && !acl_has(acl, l->arg)) ||
        (l->kind == LIST_PATTERN && !glob_match(l->arg.ptr, l->arg.len, name, strlen(name), 1)))
        return;
    reply_bulk_str(&l->names, name);
    l->n++;
}

/* COMMAND [COUNT | INFO [name ...] | DOCS [name ...] | LIST [FILTERBY ...] | HELP] */
int cmd_command(req_t *r, int argc, bytes_t *argv)
{
    buf_t *out = req_out(r);
    int proto = cmd_proto(r);
    unsigned char *listed = mem_calloc((size_t)cmd_nclasses + 1, 1);
    size_t total = command_listed(listed);
    const cmd_def_t *d;
    const cmd_class_t *cl;

    if (argc == 1 || (bytes_eq_nocase(argv[1], "info") && argc == 2)) {
        reply_array(out, total);
        for (int i = 0; i < cmd_count; i++)
            if (cmd_served(&cmd_table[i]))
                command_info_one(out, proto, &cmd_table[i]);
        for (int i = 0; i < cmd_nclasses; i++)
            if (listed[i])
                command_info_class(out, proto, &cmd_classes[i]);
    } else if (bytes_eq_nocase(argv[1], "count") && argc == 2) {
        reply_int(out, (long long)total);
    } else if (bytes_eq_nocase(argv[1], "list") && (argc == 2 || argc == 5)) {
        command_list_t l = { .kind = LIST_ALL };
        if (argc == 5) {
            if (!bytes_eq_nocase(argv[2], "filterby")) {
                reply_error(out, "ERR syntax error");
                goto done;
            }
            l.kind = bytes_eq_nocase(argv[3], "module") ? LIST_MODULE : bytes_eq_nocase(argv[3], "aclcat") ? LIST_ACLCAT
                   : bytes_eq_nocase(argv[3], "pattern") ? LIST_PATTERN : -1;
            if (l.kind < 0) {
                reply_error(out, "ERR syntax error");
                goto done;
            }
            l.arg = argv[4];
        }
        buf_init(&l.names);
        for (int i = 0; i < cmd_count; i++) {
            const cmd_def_t *t = &cmd_table[i];
            if (!cmd_served(t))
                continue;
            command_list_add(&l, t->name, t->acl);
            for (const cmd_def_t *sub = t->subs; sub != NULL && sub->name != NULL; sub++)
                command_list_add(&l, sub->name, sub->acl);
        }
        for (int i = 0; i < cmd_nclasses; i++) {
            if (!listed[i])
                continue;
            command_list_add(&l, cmd_classes[i].name, cmd_classes[i].acl);
            for (int k = 0; k < cmd_classes[i].nsubs; k++)
                if (class_forwarded(&cmd_classes[i].subs[k]))
                    command_list_add(&l, cmd_classes[i].subs[k].name, cmd_classes[i].subs[k].acl);
        }
        reply_array(out, l.n);
        buf_append(out, l.names.data, l.names.len);
        buf_deinit(&l.names);
    } else if (bytes_eq_nocase(argv[1], "list")) {
        reply_error(out, "ERR syntax error");
    } else if (bytes_eq_nocase(argv[1], "info")) {
        reply_array(out, (size_t)argc - 2);
        for (int i = 2; i < argc; i++) {
            if (!command_find(argv[i], &d, &cl))
                reply_null_array(out, proto);
            else if (d != NULL)
                command_info_one(out, proto, d);
            else
                command_info_class(out, proto, cl);
        }
    } else if (bytes_eq_nocase(argv[1], "docs")) {
        if (argc == 2) {
            reply_map(out, proto, total);
            for (int i = 0; i < cmd_count; i++)
                if (cmd_served(&cmd_table[i]))
                    command_docs_one(out, proto, &cmd_table[i]);
            for (int i = 0; i < cmd_nclasses; i++)
                if (listed[i])
                    command_docs_class(out, proto, &cmd_classes[i]);
        } else {
            size_t n = 0;
            for (int i = 2; i < argc; i++)
                n += (size_t)command_find(argv[i], &d, &cl);
            reply_map(out, proto, n);
            for (int i = 2; i < argc; i++) {
                if (!command_find(argv[i], &d, &cl))
                    continue;
                if (d != NULL)
                    command_docs_one(out, proto, d);
                else
                    command_docs_class(out, proto, cl);
            }
        }
    } else {
        static const char *const help[] = {
            "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "(no subcommand)", "    Return details about all commands.",
            "COUNT", "    Return the total number of commands.",
            "DOCS [<command-name> ...]", "    Return documentary information about commands.",
            "INFO [<command-name> ...]", "    Return details about the given commands, or all of them.",
            "LIST [FILTERBY (MODULE <module-name>|ACLCAT <category>|PATTERN <pattern>)]",
            "    Return a list of all commands in this Redis server.",
        };
        CMD_REPLY_HELP(out, help);
    }
done:
    mem_free(listed);
    return CMD_DONE;
}

/* Is the upstream a Redis Cluster (redis+cluster://, rediss+cluster://)? */
static int info_upstream_is_cluster(void)
{
    const char *u = cmd_ctx.cfg->backend;
    return u != NULL && (strncmp(u, "redis+cluster://", 16) == 0 || strncmp(u, "rediss+cluster://", 17) == 0);
}

/* ---- CLUSTER ------------------------------------------------------------------------------------- */

/*
 * CLUSTER <subcommand>: clients probe it to learn whether they talk to a cluster. cachetoryd shows a
 * standalone server (INFO cluster_enabled:0), so it answers as a Redis with cluster support disabled —
 * Redis's unknown-subcommand and arity errors first, then "This instance has cluster support disabled" —
 * and cluster-aware clients fall back to a single node. In front of a Redis Cluster (redis+cluster://)
 * the command is refused by its class, as before: cachetoryd routes the slots itself.
 */
int cmd_cluster(req_t *r, int argc, bytes_t *argv)
{
    buf_t *out = req_out(r);
    const cmd_class_t *cl = cmd_class_lookup(argv[0]);
    const cmd_class_t *sub = cl != NULL ? cmd_class_lookup_sub(cl, argv[1]) : NULL;

    if (sub == NULL)
        cmd_reply_unknown_sub(out, argv[1], "cluster");
    else if (sub->arity > 0 ? argc != sub->arity : argc < -sub->arity)
        cmd_reply_arity(out, sub->name);
    else if (!info_upstream_is_cluster() || cmd_passthrough_resolve(out, argc, argv, 0) != NULL)
        reply_error(out, "ERR This instance has cluster support disabled");
    return CMD_DONE;
}

/* ---- INFO ---------------------------------------------------------------------------------------- */

/*
 * The sections, in Redis 7's order, cachetoryd's own (TLS, Cache, Near_cache, Upstream) before Keyspace.
 * INFO with no argument, or "default", gives those marked in_default; "all" and "everything" give every
 * one (cachetoryd has no module sections, so the two are the same); several names give their union.
 */
enum {
    INFO_SERVER, INFO_CLIENTS, INFO_MEMORY, INFO_PERSISTENCE, INFO_STATS, INFO_REPLICATION, INFO_CPU,
    INFO_COMMANDSTATS, INFO_ERRORSTATS, INFO_LATENCYSTATS, INFO_CLUSTER, INFO_TLS, INFO_CACHE, INFO_NEAR, INFO_UPSTREAM,
    INFO_KEYSPACE, INFO_NSECTIONS
};

static const struct {
    const char *name;           /* as INFO takes it (any case) */
    const char *title;          /* its "# Title" line */
    int in_default;
} info_sections[INFO_NSECTIONS] = {
    [INFO_SERVER] = { "server", "Server", 1 },
    [INFO_CLIENTS] = { "clients", "Clients", 1 },
    [INFO_MEMORY] = { "memory", "Memory", 1 },
    [INFO_PERSISTENCE] = { "persistence", "Persistence", 1 },
    [INFO_STATS] = { "stats", "Stats", 1 },
    [INFO_REPLICATION] = { "replication", "Replication", 1 },
    [INFO_CPU] = { "cpu", "CPU", 1 },
    [INFO_COMMANDSTATS] = { "commandstats", "Commandstats", 0 },
    [INFO_ERRORSTATS] = { "errorstats", "Errorstats", 1 },            /* in Redis 7.0's default too */
    [INFO_LATENCYSTATS] = { "latencystats", "Latencystats", 0 },
    [INFO_CLUSTER] = { "cluster", "Cluster", 1 },
    [INFO_TLS] = { "tls", "TLS", 1 },
    [INFO_CACHE] = { "cache", "Cache", 1 },
    [INFO_NEAR] = { "near_cache", "Near_cache", 1 },
    [INFO_UPSTREAM] = { "upstream", "Upstream", 1 },
    [INFO_KEYSPACE] = { "keyspace", "Keyspace", 1 },
};

#define INFO_BIT(sec) (1u << (sec))

/* The sections INFO's arguments ask for, as a mask of INFO_BIT()s. */
static unsigned info_mask(int argc, bytes_t *argv)
{
    unsigned mask = 0, all = INFO_BIT(INFO_NSECTIONS) - 1, def = 0;

    for (int k = 0; k < INFO_NSECTIONS; k++)
        if (info_sections[k].in_default)
            def |= INFO_BIT(k);
    if (argc < 2)
        return def;
    for (int i = 1; i < argc; i++) {
        if (bytes_eq_nocase(argv[i], "all") || bytes_eq_nocase(argv[i], "everything"))
            mask |= all;
        else if (bytes_eq_nocase(argv[i], "default"))
            mask |= def;
        for (int k = 0; k < INFO_NSECTIONS; k++)
            if (bytes_eq_nocase(argv[i], info_sections[k].name))
                mask |= INFO_BIT(k);
    }
    return mask;
}

static void info_human(char *buf, size_t n, double bytes)
{
    const char *units = "BKMGTP";
    int u = 0;
    while (bytes >= 1024 && u < 5) {
        bytes /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, n, "%.0fB", bytes);
    else
        snprintf(buf, n, "%.2f%c", bytes, units[u]);
}

static size_t info_rss(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0, rss = 0;
    if (f == NULL)
        return 0;
    if (fscanf(f, "%lu %lu", &pages, &rss) != 2)
        rss = 0;
    fclose(f);
    return rss * (size_t)sysconf(_SC_PAGESIZE);
}

/*
 * The bytes the C library's allocator has handed out and not had back, over all its arenas (the codec
 * threads allocate in arenas of their own): redis's zmalloc_used_memory, the denominator of its
 * mem_fragmentation_ratio. glibc tells it only through malloc_info's XML, whose closing totals give the
 * arenas' system bytes and free chunks, and the mmapped chunks. AddressSanitizer's allocator replaces
 * glibc's in a sanitizer build, and tells it directly. 0 when unknown (another C library).
 */
static size_t info_heap_used(void)
{
#if defined(__SANITIZE_ADDRESS__)
    return __sanitizer_get_current_allocated_bytes();
#elif defined(__GLIBC__)
    char *xml = NULL;
    size_t len = 0, used = 0;
    FILE *f = open_memstream(&xml, &len);
    unsigned long long fast = 0, rest = 0, mmap_size = 0, cnt = 0, system = 0;

    if (f == NULL)
        return 0;
    malloc_info(0, f);
    fclose(f);
    /* after the last </heap>: <total type="fast" .../><total type="rest" .../><total type="mmap" .../>
     * <system type="current" size="..."/> */
    const char *p = xml ? strstr(xml, "</heap>") : NULL;
    for (const char *q = p; q != NULL; q = strstr(q + 1, "</heap>"))
        p = q;
    if (p != NULL && sscanf(p, "</heap> <total type=\"fast\" count=\"%llu\" size=\"%llu\"/> "
                               "<total type=\"rest\" count=\"%llu\" size=\"%llu\"/> "
                               "<total type=\"mmap\" count=\"%llu\" size=\"%llu\"/> "
                               "<system type=\"current\" size=\"%llu\"/>",
                            &cnt, &fast, &cnt, &rest, &cnt, &mmap_size, &system) == 7 &&
        system >= fast + rest)
        used = (size_t)(system - fast - rest + mmap_size);
    free(xml);
    return used;
#else
    return 0;
#endif
}

/* 40 hex characters, random, fixed for the life of the process: INFO's run_id (redis's). */
static const char *info_run_id(void)
{
    static char id[41];

    if (id[0] == '\0') {
        unsigned char raw[20];
        FILE *f = fopen("/dev/urandom", "rb");
        size_t got = f ? fread(raw, 1, sizeof(raw), f) : 0;
        if (f != NULL)
            fclose(f);
        for (size_t i = got; i < sizeof(raw); i++)      /* no /dev/urandom: time and pid, still unique */
            raw[i] = (unsigned char)((unsigned long long)clock_us_monotonic() >> (i % 8 * 8) ^ (unsigned)getpid() * i);
        for (size_t i = 0; i < sizeof(raw); i++)
            snprintf(id + 2 * i, 3, "%02x", raw[i]);
    }
    return id;
}

/* The line "name:value\r\n" of an INFO text, appended to out if it is there. */
static void info_copy_field(buf_t *out, const char *text, size_t len, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = text, *end = text + len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl + 1 : end;
        if ((size_t)(eol - p) > n && memcmp(p, name, n) == 0 && p[n] == ':') {
            buf_append(out, p, (size_t)(eol - p));
            if (nl == NULL)
                buf_append(out, "\r\n", 2);
            return;
        }
        p = eol;
    }
}

static void info_section(buf_t *t, int sec)
{
    if (t->len > 0)
        buf_append(t, "\r\n", 2);
    buf_printf(t, "# %s\r\n", info_sections[sec].title);
}

/* The upstream's answers an INFO waits for (proxy mode), NULL where not asked or not arrived. */
typedef struct info_upstream {
    const backend_result_t *stats;      /* its INFO stats */
    const backend_result_t *keyspace;   /* its INFO keyspace */
} info_upstream_t;

/*
 * Render the sections of mask into t. What the keyspace holds — its keys, and in Stats expired_keys,
 * evicted_keys, keyspace_hits and keyspace_misses — is the upstream's in proxy mode: cachetoryd keeps no
 * keys there, so those fields are copied from the upstream's own INFO (up); cachetoryd's reads through the
 * proxy are cache_hits / cache_misses (# Cache). With a cluster upstream the four Stats fields are left
 * out: one node's counters are not the cluster's. Everything else is cachetoryd's own process.
 */
static void info_render(buf_t *t, unsigned mask, const info_upstream_t *up)
{
    const cmd_ctx_t *s = &cmd_ctx;
    const conn_stats_t *ns = conn_stats(s->srv);
    int forwards = backend_forwards(s->backend);
    long long now = clock_ms();
    char h1[32], h2[32];
    cmd_stats_instant_t inst;

    cmd_stats_instant(&inst);
    if (mask & INFO_BIT(INFO_SERVER)) {
        struct utsname un;
        char *backend = url_redact(s->cfg->backend);
        uname(&un);
        info_section(t, INFO_SERVER);
        buf_printf(t,
                   "redis_version:%s\r\ncachetoryd_version:%s\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\n"
                   "redis_mode:standalone\r\nos:%s %s %s\r\narch_bits:%d\r\nmultiplexing_api:libuv\r\n"
                   "libuv_version:%s\r\nprocess_id:%d\r\nrun_id:%s\r\ntcp_port:%d\r\nserver_time_usec:%lld\r\n"
                   "uptime_in_seconds:%lld\r\nuptime_in_days:%lld\r\nhz:%d\r\nconfigured_hz:%d\r\nbackend:%s\r\n",
                   CACHETORYD_REDIS_VERSION, CACHETORYD_VERSION, un.sysname, un.release, un.machine,
                   (int)(sizeof(void *) * 8), uv_version_string(), (int)getpid(), info_run_id(), s->cfg->port,
                   now * 1000, (now - s->start_ms) / 1000, (now - s->start_ms) / 86400000, s->cfg->hz,
                   s->cfg->hz, backend);
        mem_free(backend);
    }
    if (mask & INFO_BIT(INFO_CLIENTS)) {
        /* no client blocks (blocking commands are refused) and none tracks keys (CLIENT TRACKING ON is) */
        info_section(t, INFO_CLIENTS);
        buf_printf(t, "connected_clients:%u\r\nmaxclients:%d\r\nblocked_clients:0\r\ntracking_clients:0\r\n",
                   conn_count(s->srv), s->cfg->maxclients);
    }
    if (mask & INFO_BIT(INFO_MEMORY)) {
        backend_stats_t bs;
        backend_stats(s->backend, &bs, NULL, 0);
        size_t used = bs.used_memory, rss = info_rss(), heap = info_heap_used();
        size_t peak = inst.used_memory_peak > used ? inst.used_memory_peak : used;
        info_section(t, INFO_MEMORY);
        info_human(h1, sizeof(h1), (double)used);
        info_human(h2, sizeof(h2), (double)rss);
        buf_printf(t, "used_memory:%zu\r\nused_memory_human:%s\r\nused_memory_rss:%zu\r\nused_memory_rss_human:%s\r\n",
                   used, h1, rss, h2);
        info_human(h1, sizeof(h1), (double)peak);
        buf_printf(t, "used_memory_peak:%zu\r\nused_memory_peak_human:%s\r\n", peak, h1);
        info_human(h1, sizeof(h1), (double)s->cfg->maxmemory);
        buf_printf(t, "maxmemory_human:%s\r\n", h1);
        if (backend_info(s->backend, "memory", t) < 0 || forwards)
            /* proxy mode: cachetoryd holds no keys, so evicts none; the upstream's limit is its own INFO's */
            buf_printf(t, "maxmemory:%lld\r\nmaxmemory_policy:%s\r\n", forwards ? 0LL : s->cfg->maxmemory,
                       forwards ? "noeviction" : config_enum_name("maxmemory-policy", s->cfg->maxmemory_policy));
        /* redis's ratio: the process's resident bytes over what its allocator has handed out */
        buf_printf(t, "allocator_allocated:%zu\r\nmem_fragmentation_ratio:%.2f\r\nmem_fragmentation_bytes:%lld\r\n"
                   "mem_allocator:libc\r\n", heap, heap ? (double)rss / (double)heap : 0.0,
                   heap ? (long long)rss - (long long)heap : 0LL);
    }
    if (mask & INFO_BIT(INFO_PERSISTENCE)) {
        /* cachetoryd never writes its keys to disk */
        info_section(t, INFO_PERSISTENCE);
        buf_printf(t, "loading:0\r\nasync_loading:0\r\nrdb_changes_since_last_save:0\r\nrdb_bgsave_in_progress:0\r\n"
                   "rdb_last_save_time:%lld\r\nrdb_last_bgsave_status:ok\r\nrdb_last_bgsave_time_sec:-1\r\n"
                   "aof_enabled:0\r\naof_rewrite_in_progress:0\r\naof_rewrite_scheduled:0\r\n"
                   "aof_last_rewrite_time_sec:-1\r\naof_last_bgrewrite_status:ok\r\naof_last_write_status:ok\r\n",
                   s->start_ms / 1000);
    }
    if (mask & INFO_BIT(INFO_STATS)) {
        info_section(t, INFO_STATS);
        buf_printf(t,
                   "total_connections_received:%llu\r\ntotal_commands_processed:%llu\r\ninstantaneous_ops_per_sec:%lld\r\n"
                   "total_net_input_bytes:%llu\r\ntotal_net_output_bytes:%llu\r\ninstantaneous_input_kbps:%.2f\r\n"
                   "instantaneous_output_kbps:%.2f\r\nrejected_connections:%llu\r\n"
                   "client_query_buffer_limit_disconnections:%llu\r\nclient_output_buffer_limit_disconnections:%llu\r\n",
                   ns->total_connections, s->stats.total_commands, inst.ops_per_sec, ns->net_input_bytes,
                   ns->net_output_bytes, inst.input_kbps, inst.output_kbps, ns->rejected_connections,
                   ns->query_limit_disconnections, ns->output_limit_disconnections);
        if (!forwards) {
            if (backend_info(s->backend, "stats", t) < 0)
                buf_append_str(t, "expired_keys:0\r\nevicted_keys:0\r\nkeyspace_hits:0\r\nkeyspace_misses:0\r\n");
        } else if (up != NULL && up->stats != NULL && up->stats->status != BE_ERR && up->stats->has_value) {
            static const char *const fields[] = { "expired_keys", "evicted_keys", "keyspace_hits", "keyspace_misses" };
            for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
                info_copy_field(t, up->stats->value.ptr, up->stats->value.len, fields[i]);
        }
        /* unexpected_error_replies counts errors a replica sends its primary: none here */
        buf_printf(t, "unexpected_error_replies:0\r\ntotal_error_replies:%llu\r\n", cmd_stats_error_replies());
    }
    if (mask & INFO_BIT(INFO_REPLICATION)) {
        /* a primary with no replicas: cachetoryd does not replicate (a proxy's upstream may, in its own INFO) */
        info_section(t, INFO_REPLICATION);
        buf_printf(t, "role:master\r\nconnected_slaves:0\r\nmaster_failover_state:no-failover\r\nmaster_replid:%s\r\n"
                   "master_replid2:0000000000000000000000000000000000000000\r\nmaster_repl_offset:0\r\n"
                   "second_repl_offset:-1\r\nrepl_backlog_active:0\r\nrepl_backlog_size:0\r\n"
                   "repl_backlog_first_byte_offset:0\r\nrepl_backlog_histlen:0\r\n", info_run_id());
    }
    if (mask & INFO_BIT(INFO_CPU)) {
        struct rusage self, children, thread;
        getrusage(RUSAGE_SELF, &self);
        getrusage(RUSAGE_CHILDREN, &children);
#ifdef RUSAGE_THREAD
        getrusage(RUSAGE_THREAD, &thread);      /* INFO runs on the loop thread: the main thread */
#else
        thread = self;
#endif
        info_section(t, INFO_CPU);
        buf_printf(t, "used_cpu_sys:%ld.%06ld\r\nused_cpu_user:%ld.%06ld\r\nused_cpu_sys_children:%ld.%06ld\r\n"
                   "used_cpu_user_children:%ld.%06ld\r\nused_cpu_sys_main_thread:%ld.%06ld\r\n"
                   "used_cpu_user_main_thread:%ld.%06ld\r\n",
                   (long)self.ru_stime.tv_sec, (long)self.ru_stime.tv_usec, (long)self.ru_utime.tv_sec,
                   (long)self.ru_utime.tv_usec, (long)children.ru_stime.tv_sec, (long)children.ru_stime.tv_usec,
                   (long)children.ru_utime.tv_sec, (long)children.ru_utime.tv_usec, (long)thread.ru_stime.tv_sec,
                   (long)thread.ru_stime.tv_usec, (long)thread.ru_utime.tv_sec, (long)thread.ru_utime.tv_usec);
    }
    if (mask & INFO_BIT(INFO_COMMANDSTATS)) {
        info_section(t, INFO_COMMANDSTATS);
        cmd_stats_info(t, 0);
    }
    if (mask & INFO_BIT(INFO_ERRORSTATS)) {
        info_section(t, INFO_ERRORSTATS);
        cmd_stats_errors_info(t);
    }
    if (mask & INFO_BIT(INFO_LATENCYSTATS)) {
        info_section(t, INFO_LATENCYSTATS);
        cmd_stats_info(t, 1);
    }
    if (mask & INFO_BIT(INFO_CLUSTER)) {
        /* clients see a standalone server, also in front of a cluster: cachetoryd routes the slots itself */
        info_section(t, INFO_CLUSTER);
        buf_append_str(t, "cluster_enabled:0\r\n");
    }
    if (mask & INFO_BIT(INFO_TLS)) {
        char expiry[32];
        info_section(t, INFO_TLS);
        tls_format_time(server_tls_cert_not_after(s->srv), expiry, sizeof(expiry));
        buf_printf(t,
                   "tls_port:%d\r\ntls_cert_file:%s\r\ntls_cert_not_after:%s\r\ntls_auth_clients:%s\r\n"
                   "tls_protocols:%s\r\ntls_connected_clients:%u\r\ntls_handshakes:%llu\r\n"
                   "tls_handshake_failures:%llu\r\ntls_reloads:%llu\r\n",
                   s->cfg->tls_port, s->cfg->tls_port && s->cfg->tls_cert_file ? s->cfg->tls_cert_file : "", expiry,
                   config_enum_name("tls-auth-clients", s->cfg->tls_auth_clients),
                   s->cfg->tls_protocols ? s->cfg->tls_protocols : "", conn_tls_count(s->srv), ns->tls_handshakes,
                   ns->tls_handshake_failures, s->srv->tls_reloads);
    }
    if (mask & INFO_BIT(INFO_CACHE)) {
        info_section(t, INFO_CACHE);
        buf_printf(t, "cache_hits:%llu\r\ncache_misses:%llu\r\n", s->stats.cache_hits, s->stats.cache_misses);
        cache_info(s->cache, t);
    }
    if (mask & INFO_BIT(INFO_NEAR)) {
        info_section(t, INFO_NEAR);
        cache_near_section(s->cache, t);
    }
    if (forwards && (mask & INFO_BIT(INFO_UPSTREAM))) {
        info_section(t, INFO_UPSTREAM);
        backend_info(s->backend, "upstream", t);
    }
    if (mask & INFO_BIT(INFO_KEYSPACE)) {
        info_section(t, INFO_KEYSPACE);
        if (!forwards) {
            backend_info(s->backend, "keyspace", t);
        } else if (up != NULL && up->keyspace != NULL) {
            const backend_result_t *res = up->keyspace;
            if (res->status == BE_ERR) {
                buf_printf(t, "upstream_error:%s\r\n", res->err);
            } else if (res->has_value) {
                /* its lines after its own "# Keyspace" header */
                const char *p = res->value.ptr, *end = p + res->value.len;
                if (res->value.len > 0 && p[0] == '#') {
                    const char *nl = memchr(p, '\n', res->value.len);
                    p = nl ? nl + 1 : end;
                }
                buf_append(t, p, (size_t)(end - p));
            }
        }
    }
}

/* Render and send INFO's reply for r (scratch aux: the mask), with what the upstream answered. */
static void info_reply(req_t *r, const info_upstream_t *up)
{
    buf_t t;

    buf_init(&t);
    info_render(&t, (unsigned)cmd_scratch(r)->aux, up);
    reply_verbatim(req_out(r), cmd_proto(r), t.data ? t.data : "", t.len);
    buf_deinit(&t);
}

static void info_keyspace_done_cb(void *ctx, const backend_result_t *res)
{
    req_t *r = ctx;
    cmd_scratch_t *sc = cmd_scratch(r);
    backend_result_t stats = { .status = BE_OK };
    info_upstream_t up = { .keyspace = res };

    if (sc->aux2) {             /* the stats' text asked first, kept */
        stats.has_value = 1;
        stats.value = (bytes_t){ sc->keep.data ? sc->keep.data : "", sc->keep.len };
        up.stats = &stats;
    }
    info_reply(r, &up);
    req_done(r);
}

/* The upstream's INFO stats arrived: keep it, then ask for its keyspace if INFO shows it. */
static void info_stats_done_cb(void *ctx, const backend_result_t *res)
{
    req_t *r = ctx;
    cmd_scratch_t *sc = cmd_scratch(r);

    if ((sc->aux & INFO_BIT(INFO_KEYSPACE)) && !(r->c->flags & CLIENT_CLOSING)) {
        buf_reset(&sc->keep);
        if (res->status != BE_ERR && res->has_value) {
            buf_append(&sc->keep, res->value.ptr, res->value.len);
            sc->aux2 = 1;
        }
        backend_op_t op = { .code = BE_INFO, .pattern = BYTES("keyspace") };
        cmd_submit_raw(r, &op, info_keyspace_done_cb);
        return;
    }
    info_upstream_t up = { .stats = res };
    info_reply(r, &up);
    req_done(r);
}

/* INFO [section ...]: redis's sections and field names, so existing tools read them. */
int cmd_info(req_t *r, int argc, bytes_t *argv)
{
    unsigned mask = info_mask(argc, argv);
    cmd_scratch_t *sc = cmd_scratch(r);

    sc->aux = mask;
    if (backend_forwards(cmd_ctx.backend)) {
        /* the keyspace is the upstream's: ask it, and reply when it answers */
        if ((mask & INFO_BIT(INFO_STATS)) && !info_upstream_is_cluster()) {
            backend_op_t op = { .code = BE_INFO, .pattern = BYTES("stats") };
            return cmd_submit_raw(r, &op, info_stats_done_cb);
        }
        if (mask & INFO_BIT(INFO_KEYSPACE)) {
            backend_op_t op = { .code = BE_INFO, .pattern = BYTES("keyspace") };
            return cmd_submit_raw(r, &op, info_keyspace_done_cb);
        }
    }
    info_reply(r, NULL);
    return CMD_DONE;
}

/* ---- TIME ---------------------------------------------------------------------------------------- */

/* TIME */
int cmd_time(req_t *r, int argc, bytes_t *argv)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    reply_array(req_out(r), 2);
    reply_bulk_ll(req_out(r), (long long)tv.tv_sec);
    reply_bulk_ll(req_out(r), (long long)tv.tv_usec);
    return CMD_DONE;
}

/* ---- the Prometheus page ------------------------------------------------------------------------- */

/* "name value" lines: the INFO fields as gauges and counters, then the cache's and the commands'. */
void cmd_metrics_page_cb(buf_t *b, void *arg)
{
    const cmd_ctx_t *s = &cmd_ctx;
    const conn_stats_t *ns = conn_stats(s->srv);
    backend_stats_t bs;
    size_t *db_keys = mem_calloc((size_t)s->cfg->databases, sizeof(*db_keys));

    backend_stats(s->backend, &bs, db_keys, s->cfg->databases);
    buf_printf(b, "# HELP cachetoryd_up 1 while the daemon serves.\n# TYPE cachetoryd_up gauge\ncachetoryd_up 1\n");
    buf_printf(b, "# TYPE cachetoryd_uptime_seconds gauge\ncachetoryd_uptime_seconds %lld\n",
               (clock_ms() - s->start_ms) / 1000);
    buf_printf(b, "# TYPE cachetoryd_connected_clients gauge\ncachetoryd_connected_clients %u\n", conn_count(s->srv));
    buf_printf(b, "# TYPE cachetoryd_connections_received_total counter\ncachetoryd_connections_received_total %llu\n",
               ns->total_connections);
    buf_printf(b, "# TYPE cachetoryd_rejected_connections_total counter\ncachetoryd_rejected_connections_total %llu\n",
               ns->rejected_connections);
    buf_printf(b, "# TYPE cachetoryd_commands_processed_total counter\ncachetoryd_commands_processed_total %llu\n",
               s->stats.total_commands);
    buf_printf(b, "# TYPE cachetoryd_net_input_bytes_total counter\ncachetoryd_net_input_bytes_total %llu\n",
               ns->net_input_bytes);
    buf_printf(b, "# TYPE cachetoryd_net_output_bytes_total counter\ncachetoryd_net_output_bytes_total %llu\n",
               ns->net_output_bytes);
    if (s->cfg->tls_port > 0) {
        buf_printf(b, "# TYPE cachetoryd_tls_connected_clients gauge\ncachetoryd_tls_connected_clients %u\n",
                   conn_tls_count(s->srv));
        buf_printf(b, "# TYPE cachetoryd_tls_handshakes_total counter\ncachetoryd_tls_handshakes_total %llu\n",
                   ns->tls_handshakes);
        buf_printf(b, "# TYPE cachetoryd_tls_handshake_failures_total counter\n"
                   "cachetoryd_tls_handshake_failures_total %llu\n", ns->tls_handshake_failures);
        buf_printf(b, "# HELP cachetoryd_tls_cert_not_after_seconds When the TLS listener's certificate expires.\n"
                   "# TYPE cachetoryd_tls_cert_not_after_seconds gauge\ncachetoryd_tls_cert_not_after_seconds %lld\n",
                   server_tls_cert_not_after(s->srv));
    }
    if (bs.local) {
        buf_printf(b, "# TYPE cachetoryd_memory_used_bytes gauge\ncachetoryd_memory_used_bytes %zu\n", bs.used_memory);
        buf_printf(b, "# TYPE cachetoryd_memory_max_bytes gauge\ncachetoryd_memory_max_bytes %zu\n", bs.maxmemory);
        buf_printf(b, "# TYPE cachetoryd_expired_keys_total counter\ncachetoryd_expired_keys_total %llu\n", bs.expired_keys);
        buf_printf(b, "# TYPE cachetoryd_evicted_keys_total counter\ncachetoryd_evicted_keys_total %llu\n", bs.evicted_keys);
        buf_printf(b, "# TYPE cachetoryd_keyspace_hits_total counter\ncachetoryd_keyspace_hits_total %llu\n", bs.keyspace_hits);
        buf_printf(b, "# TYPE cachetoryd_keyspace_misses_total counter\ncachetoryd_keyspace_misses_total %llu\n", bs.keyspace_misses);
        buf_printf(b, "# TYPE cachetoryd_db_keys gauge\n");
        for (int db = 0; db < s->cfg->databases; db++)
            if (db_keys[db] > 0)
                buf_printf(b, "cachetoryd_db_keys{db=\"%d\"} %zu\n", db, db_keys[db]);
    }
    mem_free(db_keys);
    buf_printf(b, "# TYPE cachetoryd_cache_hits_total counter\ncachetoryd_cache_hits_total %llu\n", s->stats.cache_hits);
    buf_printf(b, "# TYPE cachetoryd_cache_misses_total counter\ncachetoryd_cache_misses_total %llu\n", s->stats.cache_misses);
    cache_metrics(s->cache, b);
    backend_metrics(s->backend, b);
    cmd_stats_prometheus(b);
}
