/*
 * cachetoryd: a caching daemon that speaks the Redis protocol.
 *
 * main: the command line, the configuration, signals, and setup / teardown of the modules in
 * dependency order (log, backend, commands, server; the reverse on the way out).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "backend/backend.h"
#include "cache/cache.h"
#include "cmd/cmd.h"
#include "config.h"
#include "main_ping.h"
#include "net/http.h"
#include "net/server.h"
#include "url.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/clock.h"
#include "util/notify.h"
#include "version.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: cachetoryd [CONFIG-FILE] [--option value ...]\n"
            "       cachetoryd -t|--test-config [CONFIG-FILE] [--option value ...]\n"
            "       cachetoryd --ping HOST:PORT [--timeout MS] [--upstream]\n"
            "       cachetoryd -v|--version\n"
            "       cachetoryd -h|--help\n\n"
            "Options given on the command line override the file. Options:\n");
    config_print_help(f);
}

/* Make room for maxclients connections, as redis's adjustOpenFilesLimit; say so when it cannot. */
static void raise_fd_limit(int maxclients)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)maxclients + 32;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
        return;
    rlim_t old = rl.rlim_cur;
    rl.rlim_cur = want;
    if (rl.rlim_max < want)
        rl.rlim_max = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
        getrlimit(RLIMIT_NOFILE, &rl);
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        log_warn("could not raise the open files limit from %lu to %lu (%s): at most about %lu clients can "
                 "connect; raise it (ulimit -n, LimitNOFILE=) or lower maxclients",
                 (unsigned long)old, (unsigned long)want, strerror(errno), (unsigned long)rl.rlim_cur - 32);
    }
}

static server_t srv;
static backend_t *backend;              /* where values live: replaced by a reload that names another upstream */
static cache_t *cache;                  /* the codec chain in front of it */
static config_t cfg;
static const char *cfg_path;
static int cfg_argc;
static char **cfg_argv;

static int stop_now;             /* a second SIGTERM / SIGINT: stop without waiting for anything */

/* SIGTERM / SIGINT: finish what is in flight, then stop (a second signal stops at once). */
static void on_signal(uv_signal_t *h, int signum)
{
    if (srv.shutting_down) {
        log_notice("received %s again, stopping now", signum == SIGINT ? "SIGINT" : "SIGTERM");
        stop_now = 1;
        uv_stop(h->loop);
        return;
    }
    log_notice("received %s, shutting down: finishing the commands in flight", signum == SIGINT ? "SIGINT" : "SIGTERM");
    notify_send("STOPPING=1");
    server_drain(&srv, 5000);
}

typedef struct option_pair {
    char name[64];
    char *value;                    /* whole, however long (a long password, a serializer URL) */
} option_pair_t;

typedef struct option_list {
    option_pair_t v[128];
    int n;
} option_list_t;

static void collect_cb(void *priv, const char *name, const char *value)
{
    option_list_t *l = priv;
    if (l->n < 128) {
        snprintf(l->v[l->n].name, sizeof(l->v[l->n].name), "%s", name);
        l->v[l->n].value = mem_strdup(value);
        l->n++;
    }
}

static void option_list_reset(option_list_t *l)
{
    for (int i = 0; i < l->n; i++)
        mem_free(l->v[i].value);
    l->n = 0;
}

/*
 * A reload that names another upstream (or another pool size): a new backend takes the new commands at
 * once; the old one finishes what it has in flight, then goes.
 */
static backend_t *retired_backend;
static uv_timer_t retire_timer;
static long long retire_deadline_ms;

static void retire_cb(uv_timer_t *t)
{
    backend_t *old = retired_backend;
    if (old == NULL || (!backend_idle(old) && clock_refresh() < retire_deadline_ms))
        return;
    uv_timer_stop(t);
    retired_backend = NULL;
    backend_destroy(old);
}

/* The near cache's options in cfg. */
static cache_near_opts_t near_opts(const config_t *c)
{
    cache_near_opts_t o = { .size = c->near_cache_size, .max_value = c->near_cache_max_value_size,
                            .ttl_ms = c->near_cache_ttl, .prefixes = c->near_cache_prefixes, .ping_ms = 1000 };
    return o;
}

/*
 * Make the [cache.NAME] sections of c the named caches, each with [cache]'s serializer and default-ttl
 * (the running ones) where it sets none. 0, or -1 with err ("path:line: [cache.docs] serializer: ...",
 * URLs redacted) and the caches unchanged.
 */
static int apply_caches(const config_t *c, char *err, size_t errlen)
{
    cache_def_t defs[CONFIG_MAX_CACHES];
    char why[384];

    for (int i = 0; i < c->ncaches; i++) {
        const config_cache_t *cc = &c->caches[i];
        defs[i] = (cache_def_t){ .name = cc->name, .prefixes = cc->prefix, .serializer = config_cache_serializer(&cfg, cc),
                                 .default_ttl = config_cache_default_ttl(&cfg, cc), .near = config_cache_near(&cfg, cc),
                                 .near_ttl_ms = config_cache_near_ttl(&cfg, cc) };
    }
    if (cache_configure(cache, defs, (size_t)c->ncaches, (size_t)cfg.proto_max_bulk_len, why, sizeof(why)) == 0)
        return 0;
    url_redact_in(why, sizeof(why));
    snprintf(err, errlen, "%s", why);
    for (int i = 0; i < c->ncaches && cfg_path != NULL; i++) {
        const config_cache_t *cc = &c->caches[i];
        size_t n = strlen(cc->name);
        if (strncmp(why, "[cache.", 7) == 0 && strncmp(why + 7, cc->name, n) == 0 && why[7 + n] == ']')
            snprintf(err, errlen, "%s:%d: %s", cfg_path, cc->serializer_line ? cc->serializer_line : cc->line, why);
    }
    return -1;
}

/* Error messages of a reload name the URLs: redacted, as everywhere they are shown. */
static int reload_backend(const config_t *next, char *err, size_t errlen)
{
    if (!backend_forwards(backend) || !backend_url_forwards(next->backend)) {
        snprintf(err, errlen, "backend changed from '%s' to '%s': this needs a restart", cfg.backend, next->backend);
        url_redact_in(err, errlen);
        return -1;
    }
    if (retired_backend != NULL) {
        snprintf(err, errlen, "the previous upstream is still finishing its commands; reload again shortly");
        return -1;
    }
    backend_t *nb = backend_create(next, srv.loop, err, errlen);
    if (nb == NULL)
        return -1;
    retired_backend = backend;
    backend = nb;
    cmd_set_backend(nb);                    /* new clients start in its database; connected ones keep theirs */
    cache_set_backend(cache, nb);
    retire_deadline_ms = clock_refresh() + next->upstream_command_timeout + 1000;
    if (retire_timer.loop == NULL)
        uv_timer_init(srv.loop, &retire_timer);
    uv_timer_start(&retire_timer, retire_cb, 20, 20);
    return 0;
}

/*
 * upstream-password-file's content when the running backend was made. A reload reads the file again and
 * makes a new backend when it changed (a rotated secret), so that new connections authenticate with the
 * new password; a changed path needs a restart, as for any option that is not live.
 */
static char *password_seen;

static int str_same(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

static char *password_now(const config_t *c)
{
    char why[512];
    if (c->upstream_password_file == NULL || c->upstream_password_file[0] == '\0')
        return NULL;
    return backend_read_password_file(c->upstream_password_file, why, sizeof(why));
}

static int password_changed(const config_t *next)
{
    if (!str_same(cfg.upstream_password_file, next->upstream_password_file))
        return 0;
    char *now = password_now(next);
    int changed = now != NULL && (password_seen == NULL || strcmp(now, password_seen) != 0);
    mem_free(now);
    return changed;
}

/* An option's value as a log line may show it: URLs redacted, secrets not at all. A new string. */
static char *reload_shown(const char *name, const char *value)
{
    return config_is_secret(name) ? mem_strdup("(hidden)") : url_redact(value);
}

/* apply_options flags */
#define APPLY_ATOMIC 0x1        /* all or none: a step that fails undoes the ones before and nothing changes */
#define APPLY_TLS    0x2        /* build the TLS context again even if no tls-* option changed (the files
                                   named may have: certificate rotation) */

/* The first live tls-* option that differs between the two lists (same options, same order), or NULL. */
static const char *tls_option_changed(const option_list_t *a, const option_list_t *b)
{
    for (int i = 0; i < a->n && i < b->n; i++)
        if (strncmp(a->v[i].name, "tls-", 4) == 0 && config_is_live(a->v[i].name) &&
            strcmp(a->v[i].value, b->v[i].value) != 0)
            return config_canonical_name(a->v[i].name);
    return NULL;
}

/*
 * Make next's options the running ones (cfg), each with its effect: the serializer becomes the default
 * cache's chain, requirepass is asked of clients from now on, the TLS listener gets a new context, the
 * log its level and file, the backend its limits and timeouts (maxmemory, upstream-*), the near cache
 * its sizes, the codec threads their nice value, the default cache its default-ttl; the rest is read
 * from cfg where it is used. An option that needs a restart is logged and keeps its running value. The
 * shared path of a reload (SIGHUP) and of CONFIG SET; who names it in the log ("reload", "CONFIG SET").
 *
 * Without APPLY_ATOMIC (reload) a step that fails is logged and its options keep their running values;
 * the others change. With it (CONFIG SET) the steps that can fail run first — the log file is opened,
 * the serializer built, the TLS context built — and the first that fails undoes those before it: -1,
 * with the reason in err, *option the option it was about, and nothing changed. The [cache.NAME]
 * sections are the caller's (apply_caches), after this.
 */
static int apply_options(const config_t *next, unsigned flags, const char *who, char *err, size_t errlen,
                         const char **option)
{
    static option_list_t before, after;
    int atomic = (flags & APPLY_ATOMIC) != 0;
    int serializer_kept = 0, tls_kept = 0, serializer_changed;

    option_list_reset(&before);
    option_list_reset(&after);
    config_get_raw(&cfg, "*", collect_cb, &before);
    config_get_raw(next, "*", collect_cb, &after);
    *option = NULL;

    if (atomic && next->logfile != NULL && next->logfile[0] != '\0' &&
        (cfg.logfile == NULL || strcmp(cfg.logfile, next->logfile) != 0)) {
        FILE *f = fopen(next->logfile, "a");
        if (f == NULL) {
            snprintf(err, errlen, "cannot open logfile '%s': %s", next->logfile, strerror(errno));
            *option = "logfile";
            return -1;
        }
        fclose(f);
    }
    serializer_changed = strcmp(cfg.serializer, next->serializer) != 0;
    if (serializer_changed &&
        cache_set_serializer(cache, next->serializer, (size_t)cfg.proto_max_bulk_len, err, errlen) < 0) {
        url_redact_in(err, errlen);
        if (atomic) {
            *option = "serializer";
            return -1;
        }
        log_warn("%s: %s", who, err);
        serializer_kept = 1;
    }
    const char *tls_changed = tls_option_changed(&before, &after);
    if (cfg.tls_port > 0 && next->tls_port == cfg.tls_port && ((flags & APPLY_TLS) || tls_changed != NULL)) {
        if (server_tls_reload(&srv, next, err, errlen) < 0) {
            if (atomic) {
                char ignored[256];
                if (serializer_changed)     /* the running chain was built once: it builds again */
                    cache_set_serializer(cache, cfg.serializer, (size_t)cfg.proto_max_bulk_len, ignored,
                                         sizeof(ignored));
                *option = tls_changed;
                return -1;
            }
            log_warn("%s: %s; the TLS listener keeps its previous certificate", who, err);
            tls_kept = 1;
        } else {
            log_notice("%s: TLS certificate and settings reloaded", who);
        }
    }
    for (int i = 0; i < before.n && i < after.n; i++) {
        const char *name = after.v[i].name;
        if (strcmp(before.v[i].value, after.v[i].value) == 0)
            continue;
        if (tls_kept && strncmp(name, "tls-", 4) == 0 && config_is_live(name))
            continue;
        if (serializer_kept && strcmp(name, "serializer") == 0)
            continue;
        char *was = reload_shown(name, before.v[i].value);
        char *now = reload_shown(name, after.v[i].value);
        if (!config_is_live(name)) {
            log_warn("%s: %s changed from '%s' to '%s': this needs a restart", who, name, was, now);
        } else if (config_set_verbatim(&cfg, name, after.v[i].value, err, errlen) < 0) {
            url_redact_in(err, errlen);     /* not reached: the value was rendered from a parsed one */
            log_warn("%s: %s", who, err);
        } else {
            log_notice("%s: %s is now '%s'", who, name, now);
            if (strcmp(name, "requirepass") == 0)
                cmd_auth_reconfigure();
        }
        mem_free(was);
        mem_free(now);
    }
    cache_set_default_ttl(cache, cfg.default_ttl);
    cache_set_default_near(cache, cfg.near_cache, cfg.near_cache_ttl);
    if (log_setup(cfg.loglevel, cfg.logfile) < 0)
        log_warn("%s: cannot open logfile '%s': %s", who, cfg.logfile, strerror(errno));
    backend_reconfigure(backend, &cfg);
    if (cache_near_on(cache)) {
        cache_near_opts_t no = near_opts(&cfg);
        cache_set_near(cache, &no, err, errlen);    /* on already: the sizes and the TTL bound */
    }
    cache_set_thread_nice(cfg.codec_thread_nice);
    return 0;
}

/*
 * CONFIG SET (cmd_config_apply_cb): next's live options become the running ones, as a reload would make
 * them, all or none. The [cache.NAME] sections are made again from the running ones, since those that
 * set no serializer, default-ttl or near-cache-ttl of their own take [cache]'s.
 */
static int config_set_cb(const config_t *next, char *err, size_t errlen, const char **option, void *arg)
{
    if (apply_options(next, APPLY_ATOMIC, "CONFIG SET", err, errlen, option) < 0)
        return -1;
    if (cfg.ncaches > 0 && apply_caches(&cfg, err, errlen) < 0)
        log_warn("CONFIG SET: %s; the [cache.NAME] sections keep their running configuration", err);
    return 0;
}

/*
 * SIGHUP: read the configuration again. An invalid file changes nothing. Options that can change
 * while clients stay connected change (apply_options); the others are logged as needing a restart. The
 * values are compared raw (a backend whose password alone changed is another backend) and logged
 * redacted.
 */
static void on_reload(uv_signal_t *h, int signum)
{
    config_t next;
    char err[512];
    const char *option;

    notify_send("RELOADING=1");
    config_init(&next);
    if (config_load(&next, cfg_path, cfg_argc, cfg_argv, err, sizeof(err)) < 0) {
        log_warn("reload: %s; the running configuration is unchanged", err);
        config_deinit(&next);
        notify_send("READY=1");
        return;
    }
    int new_password = password_changed(&next);
    if (strcmp(cfg.backend, next.backend) != 0 || cfg.upstream_pool_size != next.upstream_pool_size || new_password) {
        if (reload_backend(&next, err, sizeof(err)) < 0) {
            char *kept = url_redact(cfg.backend);
            log_warn("reload: %s; the upstream stays '%s'", err, kept);
            mem_free(kept);
            /* the rest of the file applies; the backend options are the running ones (no second message) */
            char n[16], why[256];
            snprintf(n, sizeof(n), "%d", cfg.upstream_pool_size);
            config_set(&next, "backend", cfg.backend, why, sizeof(why));
            config_set(&next, "upstream-pool-size", n, why, sizeof(why));
        } else {
            if (new_password)
                log_notice("reload: upstream-password-file changed: new upstream connections use the new password");
            mem_free(password_seen);
            password_seen = password_now(&next);
            char *shown = url_redact(next.backend);
            log_notice("reload: backend is now '%s' with %d connections", shown, next.upstream_pool_size);
            mem_free(shown);
            config_set(&cfg, "backend", next.backend, err, sizeof(err));
            char n[16];
            snprintf(n, sizeof(n), "%d", next.upstream_pool_size);
            config_set(&cfg, "upstream-pool-size", n, err, sizeof(err));
        }
    }
    apply_options(&next, APPLY_TLS, "reload", err, sizeof(err), &option);
    /* the named caches: their own settings, or [cache]'s new ones they inherit */
    if (apply_caches(&next, err, sizeof(err)) < 0) {
        log_warn("reload: %s; the [cache.NAME] sections keep their running configuration", err);
    } else if (!config_caches_equal(&cfg, &next)) {
        config_caches_take(&cfg, &next);
        log_notice("reload: [cache.NAME] sections applied (%d named caches)", cfg.ncaches);
        if (config_near_wanted(&cfg) && !cache_near_on(cache))
            log_warn("reload: a [cache.NAME] section's near-cache = yes needs a restart: there is no near cache now");
    }
    config_deinit(&next);
    log_notice("configuration reloaded");
    notify_send("READY=1");
}

/* A start that ends before serving (an error, or --test-config): what was made goes; rc is the exit status. */
static int start_end(uv_loop_t *loop, int rc)
{
    cache_destroy(cache);
    backend_destroy(backend);
    uv_run(loop, UV_RUN_DEFAULT);          /* the backend's handles close */
    uv_loop_close(loop);
    config_deinit(&cfg);
    return rc;
}

/* hz times a second, from the server's timer: the backend's background work (active expiry). */
static void cron_cb(void *arg)
{
    backend_cron(backend);
}

static int write_pidfile(const char *path)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "%d\n", (int)getpid());
    return fclose(f);
}

/*
 * A second signal while codec jobs still run: nothing that a job uses may be freed, and the process
 * cannot even return from main (libuv's exit handler joins the pool threads, which would wait for the
 * jobs). Leave the files a restart needs gone and exit at once; the kernel takes the memory back. The
 * commands of those jobs get no reply, like every command of a process stopped mid-way.
 */
static void exit_with_jobs_running(int jobs)
{
    log_warn("shutdown: stopping now with %d codec jobs still running; their commands get no reply", jobs);
    if (cfg.pidfile && cfg.pidfile[0])
        unlink(cfg.pidfile);
    if (cfg.unixsocket && cfg.unixsocket[0])
        unlink(cfg.unixsocket);
    log_notice("bye");
    log_teardown();
    _exit(0);
}

static void close_walk_cb(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

int main(int argc, char **argv)
{
    char err[512];
    const char *path = NULL;
    int argi = 1, test_only = 0;

    /* a probe: no config, no log (main_ping.h); a config file before it (an image's ENTRYPOINT) is ignored */
    int ping_at = argc > 1 && strcmp(argv[1], "--ping") == 0 ? 1 :
                  argc > 2 && argv[1][0] != '-' && strcmp(argv[2], "--ping") == 0 ? 2 : 0;
    if (ping_at > 0)
        return main_ping(argc - ping_at, argv + ping_at);
    config_init(&cfg);
    /* -t / --test-config may stand anywhere: take it out before the options are read */
    for (int i = 1, j = 1; i < argc; i++) {
        if (strcmp(argv[i], "-t") == 0 || strcmp(argv[i], "--test-config") == 0)
            test_only = 1;
        else
            argv[j++] = argv[i];
        if (i == argc - 1)
            argc = j;
    }
    for (; argi < argc; argi++) {
        const char *a = argv[argi];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0) {
            printf("cachetoryd %s (redis protocol %s)\n", CACHETORYD_VERSION, CACHETORYD_REDIS_VERSION);
            return 0;
        } else if (strcmp(a, "-t") == 0 || strcmp(a, "--test-config") == 0) {
            test_only = 1;
        } else if (a[0] != '-' && path == NULL) {
            path = a;
        } else {
            break;
        }
    }
    cfg_path = path;
    cfg_argc = argc - argi;
    cfg_argv = argv + argi;
    if (config_load(&cfg, path, argc - argi, argv + argi, err, sizeof(err)) < 0) {
        fprintf(stderr, "cachetoryd: %s\n", err);
        config_deinit(&cfg);
        return 1;
    }
    uv_loop_t *loop = uv_default_loop();
    backend = backend_create(&cfg, loop, err, sizeof(err));
    password_seen = password_now(&cfg);
    if (backend == NULL) {
        fprintf(stderr, "cachetoryd: %s\n", err);
        config_deinit(&cfg);
        return 1;
    }
    cache_set_thread_nice(cfg.codec_thread_nice);
    cache = cache_create("default", cfg.serializer, backend, loop, (size_t)cfg.codec_thread_min_size,
                                  (size_t)cfg.proto_max_bulk_len, err, sizeof(err));
    if (cache == NULL) {
        url_redact_in(err, sizeof(err));       /* config_load and backend_create redact their own */
        fprintf(stderr, "cachetoryd: %s\n", err);
        backend_destroy(backend);
        config_deinit(&cfg);
        return 1;
    }
    cache_set_dict_store(cache, cfg.dictionary_key_prefix, cfg.dictionary_dir);
    cache_set_default_ttl(cache, cfg.default_ttl);
    if (apply_caches(&cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "cachetoryd: %s\n", err);
        return start_end(loop, 1);
    }
    cache_set_default_near(cache, cfg.near_cache, cfg.near_cache_ttl);
    if (config_near_wanted(&cfg)) {
        cache_near_opts_t no = near_opts(&cfg);
        if (cache_set_near(cache, &no, err, sizeof(err)) < 0) {
            fprintf(stderr, "cachetoryd: near-cache: %s\n", err);
            return start_end(loop, 1);
        }
    }
    if (test_only) {
        printf("cachetoryd: configuration %s is valid\n", path ? path : "(defaults)");
        return start_end(loop, 0);
    }
    if (log_setup(cfg.loglevel, cfg.logfile) < 0) {
        fprintf(stderr, "cachetoryd: cannot open logfile '%s': %s\n", cfg.logfile, strerror(errno));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit(cfg.maxclients);
    cmd_setup(&cfg, backend, cache, &srv);
    cmd_config_setup(config_set_cb, NULL, cfg_path);

    /* net hands every command to cmd, which works with the backend through the cache; net knows neither */
    conn_hooks_t hooks = {
        .req_size = cmd_req_size(),
        .open_cb = cmd_session_open_cb,
        .command_cb = cmd_dispatch,
        .free_cb = cmd_session_free_cb,
        .req_recycle_cb = cmd_req_recycle_cb,
    };
    if (server_setup(&srv, loop, &cfg, &hooks, cron_cb, NULL) < 0 ||
        http_setup(loop, cfg.metrics_bind, cfg.metrics_port, cmd_metrics_page_cb, NULL) < 0) {
        http_teardown();
        server_teardown(&srv);
        uv_run(loop, UV_RUN_NOWAIT);
        cache_destroy(cache);
        backend_destroy(backend);
        config_deinit(&cfg);
        return 1;
    }
    if (cfg.pidfile && cfg.pidfile[0] && write_pidfile(cfg.pidfile) < 0)
        log_warn("could not write pidfile %s: %s", cfg.pidfile, strerror(errno));

    uv_signal_t sigint, sigterm, sighup;
    uv_signal_init(loop, &sigint);
    uv_signal_init(loop, &sigterm);
    uv_signal_init(loop, &sighup);
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_start(&sighup, on_reload, SIGHUP);
    notify_send("READY=1");
    char *shown = url_redact(cfg.backend);
    log_notice("cachetoryd %s ready, backend %s, pid %d", CACHETORYD_VERSION, shown, (int)getpid());
    mem_free(shown);

    uv_run(loop, UV_RUN_DEFAULT);

    /* Teardown in dependency order: values still on the thread pool come back first (they go on to
     * the backend), then the backend fails what it still holds (its callbacks reach the cache and the
     * clients, still alive), then the clients and listeners close, then the loop, then the cache.
     * A codec job cannot be stopped in the middle of a value, and it uses the cache's chain: the wait
     * is for the jobs, however many loop turns that takes (each is bounded by proto-max-bulk-len). */
    if (cache_jobs(cache) > 0 && !stop_now)
        log_notice("shutdown: waiting for %d codec jobs on the thread pool", cache_jobs(cache));
    while (cache_jobs(cache) > 0 && !stop_now)
        uv_run(loop, UV_RUN_ONCE);
    if (cache_jobs(cache) > 0)
        exit_with_jobs_running(cache_jobs(cache));
    if (retired_backend != NULL) {
        uv_timer_stop(&retire_timer);
        backend_destroy(retired_backend);
    }
    cache_release_backend(cache);          /* the near cache stops listening to it */
    backend_destroy(backend);
    http_teardown();
    server_teardown(&srv);
    uv_walk(loop, close_walk_cb, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    server_free(&srv);
    if (cfg.pidfile && cfg.pidfile[0])
        unlink(cfg.pidfile);
    cache_destroy(cache);
    config_deinit(&cfg);
    mem_free(password_seen);
    log_notice("bye");
    log_teardown();
    return 0;
}
