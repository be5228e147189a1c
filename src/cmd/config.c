/*
 * cmd/config: CONFIG GET / SET / RESETSTAT / REWRITE / HELP.
 *
 * CONFIG SET follows Redis 7.0's configSetCommand: several parameter-value pairs, all or none; every
 * name is checked before any value is parsed, and the errors are Redis's ("Unknown option or number of
 * arguments for CONFIG SET - 'x'", "CONFIG SET failed (possibly related to argument 'x') - reason").
 * Only cachetoryd's own options exist: a Redis-only parameter (save, appendonly,
 * hash-max-listpack-entries...) is unknown here and never reaches an upstream. Only the options a reload
 * changes in place (config_is_live) can be set; the others are refused as needing a restart.
 *
 * The new values are parsed into a copy of the running configuration; the copy goes to the apply hook
 * main registers (cmd_config_setup), which gives them the effect a SIGHUP reload gives them and makes
 * them the running ones, or refuses them all. The command layer never reaches main: it is handed the
 * hook instead.
 */
#include "cmd/cmd.h"

#include <string.h>

#include "cache/cache.h"
#include "cmd/session.h"
#include "config.h"
#include "net/server.h"
#include "util/glob.h"
#include "util/log.h"
#include "util/mem.h"

#define CONFIG_SET_MAX_PAIRS 128        /* more pairs than options: some name is repeated or unknown */

static cmd_config_apply_cb *config_apply;   /* main's: makes a new configuration the running one */
static void *config_apply_arg;
static const char *config_path;             /* the file the daemon was started with, or NULL */

void cmd_config_setup(cmd_config_apply_cb *apply, void *arg, const char *path)
{
    config_apply = apply;
    config_apply_arg = arg;
    config_path = path;
}

typedef struct config_collect {
    buf_t items;
    size_t n;
} config_collect_t;

static void config_collect_cb(void *priv, const char *name, const char *value)
{
    config_collect_t *cc = priv;
    reply_bulk_str(&cc->items, name);
    reply_bulk_str(&cc->items, value);
    cc->n++;
}

/* Redis options that clients and tools ask for (redis-benchmark reads save and appendonly) and that
 * have one fixed value here: cachetoryd never persists. */
static const char *const config_fixed[][2] = {
    {"save", ""},
    {"appendonly", "no"},
};

static int config_glob(const char *pat, const char *name)
{
    return glob_match(pat, strlen(pat), name, strlen(name), 1);
}

/* CONFIG GET parameter [parameter ...] */
static void config_get_cmd(req_t *r, int argc, bytes_t *argv)
{
    buf_t *out = req_out(r);
    config_collect_t cc = { .n = 0 };

    buf_init(&cc.items);
    for (int i = 2; i < argc; i++) {
        char *pat = mem_strndup(argv[i].ptr, argv[i].len);
        config_get(cmd_ctx.cfg, pat, config_collect_cb, &cc);
        for (size_t k = 0; k < sizeof(config_fixed) / sizeof(config_fixed[0]); k++)
            if (config_glob(pat, config_fixed[k][0]))
                config_collect_cb(&cc, config_fixed[k][0], config_fixed[k][1]);
        mem_free(pat);
    }
    reply_map(out, cmd_proto(r), cc.n);
    buf_append(out, cc.items.data, cc.items.len);
    buf_deinit(&cc.items);
}

/*
 * CONFIG SET parameter value [parameter value ...]
 *
 * As Redis: an odd number of arguments is a syntax error; then every name is checked — the first unknown
 * one wins over any other error, else the first that cannot be set (here: needs a restart) or that is
 * given twice; then the values are parsed in order, the first bad one failing the whole call; then they
 * are applied together. Names in errors are quoted as the client wrote them.
 */
static void config_set_cmd(req_t *r, int argc, bytes_t *argv)
{
    buf_t *out = req_out(r);
    int npairs = (argc - 2) / 2;
    char *names[CONFIG_SET_MAX_PAIRS] = { 0 };
    const char *canon[CONFIG_SET_MAX_PAIRS] = { 0 };
    const char *unknown = NULL, *err_arg = NULL, *errstr = NULL;
    char reason[512];
    config_t next;
    int i, copied = 0;

    if (argc % 2 != 0) {
        reply_error(out, "ERR syntax error");
        return;
    }
    /* Past CONFIG_SET_MAX_PAIRS (more than the table has options) some name among the first ones is
     * repeated or unknown: the checks below stop the call before the rest is needed. */
    if (npairs > CONFIG_SET_MAX_PAIRS)
        npairs = CONFIG_SET_MAX_PAIRS;
    for (i = 0; i < npairs; i++) {
        bytes_t a = argv[2 + 2 * i];
        names[i] = mem_strndup(a.ptr, a.len);
        canon[i] = memchr(a.ptr, '\0', a.len) == NULL ? config_canonical_name(names[i]) : NULL;
        if (canon[i] == NULL) {
            if (unknown == NULL && err_arg == NULL)
                unknown = names[i];
            continue;
        }
        if (unknown != NULL || err_arg != NULL)
            continue;
        if (!config_is_live(canon[i])) {
            snprintf(reason, sizeof(reason), "can't set immutable config: %s needs a restart "
                     "(set it in the config file, then restart)", canon[i]);
            errstr = reason;
            err_arg = names[i];
            continue;
        }
        for (int j = 0; j < i; j++) {
            if (canon[j] == canon[i]) {
                errstr = "duplicate parameter";
                err_arg = names[i];
                break;
            }
        }
    }
    if (unknown != NULL || err_arg != NULL)
        goto err;

    config_copy_options(&next, cmd_ctx.cfg);
    copied = 1;
    for (i = 0; i < npairs; i++) {
        bytes_t v = argv[3 + 2 * i];
        if (memchr(v.ptr, '\0', v.len) != NULL) {
            snprintf(reason, sizeof(reason), "%s cannot contain a NUL byte", canon[i]);
            goto bad_value;
        }
        char *value = mem_strndup(v.ptr, v.len);
        int rc = config_set_verbatim(&next, canon[i], value, reason, sizeof(reason));
        mem_free(value);
        if (rc < 0)
            goto bad_value;
    }
    const char *failed = NULL;
    if (config_apply == NULL) {
        snprintf(reason, sizeof(reason), "the running configuration cannot change");
        err_arg = names[0];
        errstr = reason;
        goto err;
    }
    if (config_apply(&next, reason, sizeof(reason), &failed, config_apply_arg) < 0) {
        err_arg = failed != NULL ? failed : names[0];
        for (i = 0; i < npairs && failed != NULL; i++)     /* as the client wrote it */
            if (canon[i] == config_canonical_name(failed))
                err_arg = names[i];
        errstr = reason;
        goto err;
    }
    REPLY_OK(out);
    goto out;

bad_value:
    err_arg = names[i];
    errstr = reason;
err:
    if (unknown != NULL)
        reply_errorf(out, "ERR Unknown option or number of arguments for CONFIG SET - '%s'", unknown);
    else
        reply_errorf(out, "ERR CONFIG SET failed (possibly related to argument '%s') - %s", err_arg, errstr);
out:
    if (copied)
        config_deinit(&next);
    for (i = 0; i < CONFIG_SET_MAX_PAIRS; i++)
        mem_free(names[i]);
}

/* CONFIG REWRITE: the file the daemon was started with, changed to give the running options. */
static void config_rewrite_cmd(req_t *r)
{
    char err[512];

    if (config_path == NULL) {
        reply_error(req_out(r), "ERR The server is running without a config file");
        return;
    }
    if (config_rewrite(cmd_ctx.cfg, config_path, err, sizeof(err)) < 0) {
        log_warn("CONFIG REWRITE failed: %s", err);
        reply_errorf(req_out(r), "ERR Rewriting config file: %s", err);
        return;
    }
    log_notice("CONFIG REWRITE executed with success.");
    REPLY_OK(req_out(r));
}

/* CONFIG GET parameter [parameter ...] | SET parameter value [...] | RESETSTAT | REWRITE | HELP */
int cmd_config(req_t *r, int argc, bytes_t *argv)
{
    buf_t *out = req_out(r);

    if (bytes_eq_nocase(argv[1], "get") && argc >= 3) {
        config_get_cmd(r, argc, argv);
    } else if (bytes_eq_nocase(argv[1], "set") && argc >= 4) {
        config_set_cmd(r, argc, argv);
    } else if (bytes_eq_nocase(argv[1], "rewrite") && argc == 2) {
        config_rewrite_cmd(r);
    } else if (bytes_eq_nocase(argv[1], "resetstat") && argc == 2) {
        memset(&cmd_ctx.stats, 0, sizeof(cmd_ctx.stats));
        conn_stats_reset(cmd_ctx.srv);
        backend_stats_reset(cmd_ctx.backend);
        cache_stats_reset(cmd_ctx.cache);
        cmd_stats_reset();
        REPLY_OK(out);
    } else {
        static const char *const help[] = {
            "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET <pattern>", "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>", "    Set the configuration <directive> to <value>.",
            "RESETSTAT", "    Reset statistics reported by the INFO command.",
            "REWRITE", "    Rewrite the configuration file.",
        };
        CMD_REPLY_HELP(out, help);
    }
    return CMD_DONE;
}
