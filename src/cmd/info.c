/*
 * cmd/info: what the server tells about itself — COMMAND (the table), INFO (redis's sections and field
 * names), TIME (CONFIG is cmd/config.c).
 */
#include "cmd/cmd.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cache/cache.h"
#include "cmd/session.h"
#include "net/server.h"
#include "net/tls.h"
#include "util/glob.h"
#include "url.h"
#include "util/clock.h"
#include "util/mem.h"
#include "version.h"

/* ---- COMMAND ------------------------------------------------------------------------------------- */

static size_t count_words(const char *s)
{
    size_t n = 0;
    for (const char *p = s; *p; p++)
        if (*p == '@')
            n++;
    return n;
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
    reply_set(out, proto, count_words(d->acl));
    for (const char *p = d->acl; (p = strchr(p, '@')) != NULL;) {
        const char *e = strchr(p, ' ');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        buf_append(out, "+", 1);
        buf_append(out, p, n);
        buf_append(out, "\r\n", 2);
        p += n;
    }
    reply_array(out, 0);
    reply_array(out, 0);
    reply_array(out, 0);
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

/* COMMAND [COUNT | INFO [name ...] | DOCS [name ...] | LIST | HELP] */
int cmd_command(req_t *r, int argc, bytes_t *argv)
{
    buf_t *out = req_out(r);
    int proto = cmd_proto(r);

    if (argc == 1) {
        reply_array(out, (size_t)cmd_count);
        for (int i = 0; i < cmd_count; i++)
            command_info_one(out, proto, &cmd_table[i]);
    } else if (bytes_eq_nocase(argv[1], "count") && argc == 2) {
        reply_int(out, cmd_count);
    } else if (bytes_eq_nocase(argv[1], "list") && argc == 2) {
        reply_array(out, (size_t)cmd_count);
        for (int i = 0; i < cmd_count; i++)
            reply_bulk_str(out, cmd_table[i].name);
    } else if (bytes_eq_nocase(argv[1], "info")) {
        if (argc == 2) {
            reply_array(out, (size_t)cmd_count);
            for (int i = 0; i < cmd_count; i++)
                command_info_one(out, proto, &cmd_table[i]);
        } else {
            reply_array(out, (size_t)argc - 2);
            for (int i = 2; i < argc; i++) {
                const cmd_def_t *d = cmd_lookup(argv[i]);
                d ? command_info_one(out, proto, d) : reply_null_array(out, proto);
            }
        }
    } else if (bytes_eq_nocase(argv[1], "docs")) {
        size_t n = 0;
        if (argc == 2) {
            reply_map(out, proto, (size_t)cmd_count);
            for (int i = 0; i < cmd_count; i++)
                command_docs_one(out, proto, &cmd_table[i]);
        } else {
            for (int i = 2; i < argc; i++)
                n += cmd_lookup(argv[i]) != NULL;
            reply_map(out, proto, n);
            for (int i = 2; i < argc; i++) {
                const cmd_def_t *d = cmd_lookup(argv[i]);
                if (d != NULL)
                    command_docs_one(out, proto, d);
            }
        }
    } else {
        static const char *const help[] = {
            "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "(no subcommand)", "    Return details about all commands.",
            "COUNT", "    Return the total number of commands.",
            "DOCS [<command-name> ...]", "    Return documentary information about commands.",
            "INFO [<command-name> ...]", "    Return details about the given commands, or all of them.",
            "LIST", "    Return a list of all commands.",
        };
        CMD_REPLY_HELP(out, help);
    }
    return CMD_DONE;
}

/* ---- INFO ---------------------------------------------------------------------------------------- */

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

static int info_wants(int argc, bytes_t *argv, const char *section, int in_default)
{
    if (argc < 2)
        return in_default;
    for (int i = 1; i < argc; i++) {
        if (bytes_eq_nocase(argv[i], section) || bytes_eq_nocase(argv[i], "all") ||
            bytes_eq_nocase(argv[i], "everything") || (in_default && bytes_eq_nocase(argv[i], "default")))
            return 1;
    }
    return 0;
}

static void info_section(buf_t *t, const char *name)
{
    if (t->len > 0)
        buf_append(t, "\r\n", 2);
    buf_printf(t, "# %s\r\n", name);
}

/* The upstream's "INFO keyspace" arrived: its lines after its own "# Keyspace" header complete ours. */
static void info_keyspace_done_cb(void *ctx, const backend_result_t *res)
{
    req_t *r = ctx;
    buf_t *t = &cmd_scratch(r)->keep;

    if (res->status == BE_ERR) {
        buf_printf(t, "upstream_error:%s\r\n", res->err);
    } else if (res->has_value) {
        const char *p = res->value.ptr, *end = p + res->value.len;
        if (res->value.len > 0 && p[0] == '#') {
            const char *nl = memchr(p, '\n', res->value.len);
            p = nl ? nl + 1 : end;
        }
        buf_append(t, p, (size_t)(end - p));
    }
    reply_verbatim(req_out(r), cmd_proto(r), t->data ? t->data : "", t->len);
    req_done(r);
}

/* INFO [section ...]: redis's sections and field names, so existing tools read them. */
int cmd_info(req_t *r, int argc, bytes_t *argv)
{
    const cmd_ctx_t *s = &cmd_ctx;
    const conn_stats_t *ns = conn_stats(s->srv);
    buf_t t;
    long long now = clock_ms();
    char h1[32], h2[32];

    buf_init(&t);
    if (info_wants(argc, argv, "server", 1)) {
        struct utsname un;
        char *backend = url_redact(s->cfg->backend);
        uname(&un);
        info_section(&t, "Server");
        buf_printf(&t,
                   "redis_version:%s\r\ncachetoryd_version:%s\r\nredis_mode:standalone\r\nos:%s %s %s\r\n"
                   "arch_bits:%d\r\nmultiplexing_api:libuv\r\nlibuv_version:%s\r\nprocess_id:%d\r\n"
                   "tcp_port:%d\r\nserver_time_usec:%lld\r\nuptime_in_seconds:%lld\r\nuptime_in_days:%lld\r\n"
                   "hz:%d\r\nbackend:%s\r\n",
                   CACHETORYD_REDIS_VERSION, CACHETORYD_VERSION, un.sysname, un.release, un.machine,
                   (int)(sizeof(void *) * 8), uv_version_string(), (int)getpid(), s->cfg->port, now * 1000,
                   (now - s->start_ms) / 1000, (now - s->start_ms) / 86400000, s->cfg->hz, backend);
        mem_free(backend);
    }
    if (info_wants(argc, argv, "clients", 1)) {
        info_section(&t, "Clients");
        buf_printf(&t, "connected_clients:%u\r\nmaxclients:%d\r\nblocked_clients:0\r\ntracking_clients:0\r\n",
                   conn_count(s->srv), s->cfg->maxclients);
    }
    if (info_wants(argc, argv, "memory", 1)) {
        backend_stats_t bs;
        backend_stats(s->backend, &bs, NULL, 0);
        size_t used = bs.used_memory, rss = info_rss();
        info_section(&t, "Memory");
        info_human(h1, sizeof(h1), (double)used);
        info_human(h2, sizeof(h2), (double)rss);
        buf_printf(&t, "used_memory:%zu\r\nused_memory_human:%s\r\nused_memory_rss:%zu\r\nused_memory_rss_human:%s\r\n",
                   used, h1, rss, h2);
        info_human(h1, sizeof(h1), (double)s->cfg->maxmemory);
        buf_printf(&t, "maxmemory_human:%s\r\n", h1);
        if (backend_info(s->backend, "memory", &t) < 0)
            buf_printf(&t, "maxmemory:%lld\r\n", s->cfg->maxmemory);
    }
    if (info_wants(argc, argv, "stats", 1)) {
        info_section(&t, "Stats");
        buf_printf(&t,
                   "total_connections_received:%llu\r\ntotal_commands_processed:%llu\r\n"
                   "total_net_input_bytes:%llu\r\ntotal_net_output_bytes:%llu\r\nrejected_connections:%llu\r\n"
                   "client_query_buffer_limit_disconnections:%llu\r\nclient_output_buffer_limit_disconnections:%llu\r\n",
                   ns->total_connections, s->stats.total_commands, ns->net_input_bytes, ns->net_output_bytes,
                   ns->rejected_connections, ns->query_limit_disconnections, ns->output_limit_disconnections);
        if (backend_info(s->backend, "stats", &t) < 0)
            buf_append_str(&t, "expired_keys:0\r\nevicted_keys:0\r\nkeyspace_hits:0\r\nkeyspace_misses:0\r\n");
    }
    if (info_wants(argc, argv, "commandstats", 0)) {
        info_section(&t, "Commandstats");
        cmd_stats_info(&t, 0);
    }
    if (info_wants(argc, argv, "latencystats", 0)) {
        info_section(&t, "Latencystats");
        cmd_stats_info(&t, 1);
    }
    if (info_wants(argc, argv, "tls", 1)) {
        char expiry[32];
        info_section(&t, "TLS");
        tls_format_time(server_tls_cert_not_after(s->srv), expiry, sizeof(expiry));
        buf_printf(&t,
                   "tls_port:%d\r\ntls_cert_file:%s\r\ntls_cert_not_after:%s\r\ntls_auth_clients:%s\r\n"
                   "tls_protocols:%s\r\ntls_connected_clients:%u\r\ntls_handshakes:%llu\r\n"
                   "tls_handshake_failures:%llu\r\ntls_reloads:%llu\r\n",
                   s->cfg->tls_port, s->cfg->tls_port && s->cfg->tls_cert_file ? s->cfg->tls_cert_file : "", expiry,
                   config_enum_name("tls-auth-clients", s->cfg->tls_auth_clients),
                   s->cfg->tls_protocols ? s->cfg->tls_protocols : "", conn_tls_count(s->srv), ns->tls_handshakes,
                   ns->tls_handshake_failures, s->srv->tls_reloads);
    }
    if (info_wants(argc, argv, "cache", 1)) {
        info_section(&t, "Cache");
        buf_printf(&t, "cache_hits:%llu\r\ncache_misses:%llu\r\n", s->stats.cache_hits, s->stats.cache_misses);
        cache_info(s->cache, &t);
    }
    if (info_wants(argc, argv, "near_cache", 1)) {
        info_section(&t, "Near_cache");
        cache_near_section(s->cache, &t);
    }
    if (backend_forwards(s->backend) && info_wants(argc, argv, "upstream", 1)) {
        info_section(&t, "Upstream");
        backend_info(s->backend, "upstream", &t);
    }
    if (info_wants(argc, argv, "keyspace", 1)) {
        info_section(&t, "Keyspace");
        if (backend_forwards(s->backend)) {
            /* the keyspace is the upstream's: ask it, and reply when it answers */
            buf_deinit(&cmd_scratch(r)->keep);
            cmd_scratch(r)->keep = t;
            backend_op_t op = { .code = BE_INFO, .pattern = BYTES("keyspace") };
            return cmd_submit_raw(r, &op, info_keyspace_done_cb);
        }
        backend_info(s->backend, "keyspace", &t);
    }
    reply_verbatim(req_out(r), cmd_proto(r), t.data ? t.data : "", t.len);
    buf_deinit(&t);
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
