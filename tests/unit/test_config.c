/*
 * Unit tests of config: defaults, the INI reader (every type's bounds and the exact error text with
 * file:line and the line), command-line overrides, config_parse_memory, CONFIG GET patterns, --help,
 * CONFIG SET's config_set_verbatim and config_copy_options, and CONFIG REWRITE's text and file.
 *
 * Config files are written to a mkdtemp() directory made in the group setup and removed in its
 * teardown. The shipped conf/cachetoryd.conf is found from this file's path (__FILE__), so the test
 * runs from any directory as long as the tree is where it was compiled.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "util/buf.h"

static char tmpdir[64];
static char conf_path[128];     /* tmpdir/test.conf, rewritten by each test */

/* --- helpers ----------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_config.XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(conf_path, sizeof(conf_path), "%s/test.conf", tmpdir);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    unlink(conf_path);
    return rmdir(tmpdir);
}

static void write_conf(const char *text)
{
    FILE *f = fopen(conf_path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Load text as a config file (after argv overrides, argc of them) into a fresh cfg. */
static int load_text(config_t *cfg, const char *text, int argc, char **argv, char *err, size_t errlen)
{
    write_conf(text);
    config_init(cfg);
    err[0] = '\0';
    return config_load(cfg, conf_path, argc, argv, err, errlen);
}

/* text must fail to load with exactly "<conf_path>:<line>: '<quoted>': <reason>". */
static void expect_file_error(const char *text, int line, const char *quoted, const char *reason)
{
    config_t cfg;
    char err[1024], want[1024];

    snprintf(want, sizeof(want), "%s:%d: '%s': %s", conf_path, line, quoted, reason);
    assert_int_equal(load_text(&cfg, text, 0, NULL, err, sizeof(err)), -1);
    assert_string_equal(err, want);
    config_deinit(&cfg);
}

/* text must load; returns the cfg to check (caller deinits). */
static void expect_file_ok(config_t *cfg, const char *text)
{
    char err[1024];

    if (load_text(cfg, text, 0, NULL, err, sizeof(err)) != 0)
        fail_msg("unexpected error: %s", err);
}

/* The shipped example, found from this file's path: <root>/tests/unit/test_config.c. */
static const char *example_conf_path(void)
{
    static char path[4096];
    const char *self = __FILE__;
    const char *tail = strstr(self, "tests/unit/test_config.c");

    assert_non_null(tail);
    snprintf(path, sizeof(path), "%.*sconf/cachetoryd.conf", (int)(tail - self), self);
    return path;
}

/* config_get callback collecting "name=value;" pairs. */
typedef struct collect {
    char out[4096];
    int n;
} collect_t;

static void collect_cb(void *priv, const char *name, const char *value)
{
    collect_t *c = priv;
    size_t len = strlen(c->out);

    snprintf(c->out + len, sizeof(c->out) - len, "%s=%s;", name, value);
    c->n++;
}

static const char *get(const config_t *cfg, const char *pattern, collect_t *c)
{
    memset(c, 0, sizeof(*c));
    config_get(cfg, pattern, collect_cb, c);
    return c->out;
}

/* --- defaults ---------------------------------------------------------------------------------- */

static void test_defaults(void **state)
{
    config_t cfg;
    (void)state;

    config_init(&cfg);
    assert_int_equal(cfg.nbind, 1);
    assert_string_equal(cfg.bind[0], "127.0.0.1");
    assert_null(cfg.bind[1]);
    assert_int_equal(cfg.port, 6380);
    assert_null(cfg.unixsocket);
    assert_int_equal(cfg.unixsocketperm, 0);
    assert_int_equal(cfg.maxclients, 10000);
    assert_int_equal(cfg.timeout, 0);
    assert_int_equal(cfg.tcp_keepalive, 300);
    assert_int_equal(cfg.tcp_backlog, 511);
    assert_null(cfg.requirepass);
    assert_true(cfg.proto_max_bulk_len == 512LL * 1024 * 1024);
    assert_true(cfg.client_query_buffer_limit == 1024LL * 1024 * 1024);
    assert_true(cfg.client_output_buffer_limit == 1024LL * 1024 * 1024);
    assert_null(cfg.pidfile);
    assert_int_equal(cfg.databases, 16);
    assert_string_equal(cfg.backend, "memory://");
    assert_string_equal(cfg.serializer, "null://");
    assert_true(cfg.maxmemory == 0);
    assert_int_equal(cfg.maxmemory_policy, 1);     /* STORE_ALLKEYS_LRU */
    assert_int_equal(cfg.hz, 10);
    assert_int_equal(cfg.loglevel, LOG_LEVEL_NOTICE);
    assert_null(cfg.logfile);
    config_deinit(&cfg);
    config_deinit(&cfg);        /* idempotent */
}

static void test_load_no_file(void **state)
{
    config_t cfg;
    char err[256] = "";
    (void)state;

    config_init(&cfg);
    assert_int_equal(config_load(&cfg, NULL, 0, NULL, err, sizeof(err)), 0);
    assert_int_equal(cfg.port, 6380);
    config_deinit(&cfg);
}

/* --- the example file -------------------------------------------------------------------------- */

static void test_example_conf(void **state)
{
    config_t def, cfg;
    collect_t a, b;
    char err[1024] = "";
    (void)state;

    config_init(&def);
    config_init(&cfg);
    if (config_load(&cfg, example_conf_path(), 0, NULL, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_string_equal(cfg.bind[0], "127.0.0.1");
    assert_int_equal(cfg.port, 6380);
    assert_string_equal(cfg.backend, "memory://");
    /* Every option, rendered, equals its default. */
    assert_string_equal(get(&cfg, "*", &a), get(&def, "*", &b));
    config_deinit(&def);
    config_deinit(&cfg);
}

/* Every option of the table appears, uncommented, in the example. */
static void example_has_option(void *priv, const char *name, const char *value)
{
    const char *text = priv;
    char needle[128];

    (void)value;
    snprintf(needle, sizeof(needle), "\n%s =", name);
    if (strstr(text, needle) == NULL)
        fail_msg("conf/cachetoryd.conf does not list %s", name);
}

static void test_example_conf_lists_every_option(void **state)
{
    config_t cfg;
    char text[65536];
    (void)state;

    FILE *f = fopen(example_conf_path(), "r");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    config_init(&cfg);
    config_get(&cfg, "*", example_has_option, text);
    config_deinit(&cfg);
}

/* --- parsing a file ---------------------------------------------------------------------------- */

static void test_file_all_sections(void **state)
{
    config_t cfg;
    (void)state;

    expect_file_ok(&cfg,
        "\xEF\xBB\xBF# a comment with a byte order mark before it\n"
        "port = 7000\n"                                     /* before any section: allowed */
        "[server]\n"
        "  bind = 127.0.0.1 ::1   \n"                       /* indentation is not a continuation */
        "    maxclients = 50\r\n"                           /* CRLF */
        "unixsocket = \"/tmp/cache tory.sock\"\n"
        "unixsocketperm = 0755\n"
        "requirepass = 's3cret' ; an inline comment\n"
        "proto-max-bulk-len = 2mb\n"
        "client-output-buffer-limit = 0\n"
        "databases = 1\n"
        "; another comment\n"
        "[CACHE]\n"                                         /* sections and names: any case */
        "Backend = dummy://\n"
        "serializer = zstd://?compression-level=3\n"
        "maxmemory = 100MB\n"
        "maxmemory-policy = VOLATILE-TTL\n"
        "hz = 500\n"
        "[log]\n"
        "loglevel = debug\n"
        "logfile = /var/log/c.log\n");
    assert_int_equal(cfg.port, 7000);
    assert_int_equal(cfg.nbind, 2);
    assert_string_equal(cfg.bind[0], "127.0.0.1");
    assert_string_equal(cfg.bind[1], "::1");
    assert_null(cfg.bind[2]);
    assert_int_equal(cfg.maxclients, 50);
    assert_string_equal(cfg.unixsocket, "/tmp/cache tory.sock");
    assert_int_equal(cfg.unixsocketperm, 0755);
    assert_string_equal(cfg.requirepass, "s3cret");
    assert_true(cfg.proto_max_bulk_len == 2 * 1024 * 1024);
    assert_true(cfg.client_output_buffer_limit == 0);
    assert_int_equal(cfg.databases, 1);
    assert_string_equal(cfg.backend, "dummy://");
    assert_string_equal(cfg.serializer, "zstd://?compression-level=3");
    assert_true(cfg.maxmemory == 100LL * 1024 * 1024);
    assert_int_equal(cfg.maxmemory_policy, 5);     /* STORE_VOLATILE_TTL */
    assert_int_equal(cfg.hz, 500);
    assert_int_equal(cfg.loglevel, LOG_LEVEL_DEBUG);
    assert_string_equal(cfg.logfile, "/var/log/c.log");
    config_deinit(&cfg);
}

static void test_file_empty_means_none(void **state)
{
    config_t cfg;
    char err[256];
    (void)state;

    /* Empty, quoted or not, is none; and an empty value clears one set before. */
    expect_file_ok(&cfg, "[server]\nrequirepass = \"\"\npidfile =\n[log]\nlogfile = ''\n");
    assert_null(cfg.requirepass);
    assert_null(cfg.pidfile);
    assert_null(cfg.logfile);
    assert_int_equal(config_set(&cfg, "requirepass", "x", err, sizeof(err)), 0);
    assert_string_equal(cfg.requirepass, "x");
    assert_int_equal(config_set(&cfg, "requirepass", "", err, sizeof(err)), 0);
    assert_null(cfg.requirepass);
    config_deinit(&cfg);
}

static void test_file_empty(void **state)
{
    config_t cfg;
    (void)state;

    expect_file_ok(&cfg, "");
    assert_int_equal(cfg.port, 6380);
    config_deinit(&cfg);
    expect_file_ok(&cfg, "# nothing but comments\n\n[server]\n[cache]\n[log] ; empty\n");
    assert_int_equal(cfg.port, 6380);
    config_deinit(&cfg);
}

/* A comment longer than inih's line buffer is fine; an option line that long is an error. */
static void test_file_long_lines(void **state)
{
    config_t cfg;
    char text[2048], line[600];
    (void)state;

    memset(line, 'x', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\0';
    snprintf(text, sizeof(text), "# %s\n\n[server]\nport = 7000\n", line);
    expect_file_ok(&cfg, text);
    assert_int_equal(cfg.port, 7000);
    config_deinit(&cfg);

    char err[2048];
    snprintf(text, sizeof(text), "[server]\nrequirepass = %s\n", line);
    assert_int_equal(load_text(&cfg, text, 0, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, ":2: 'requirepass = (hidden)': line is too long (at most "));
    assert_null(strstr(err, "xxx"));                /* a secret's line is quoted without its value */
    config_deinit(&cfg);
    snprintf(text, sizeof(text), "[cache]\nserializer = %s\n", line);
    assert_int_equal(load_text(&cfg, text, 0, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, ":2: 'serializer = xxx"));
    assert_non_null(strstr(err, "': line is too long (at most "));
    config_deinit(&cfg);
}

/* --- each type's bounds and error text --------------------------------------------------------- */

static void test_int_bounds(void **state)
{
    static const char *bad[] = { "-1", "65536", "abc", "1.5", "6380x", "0x10", "+5", "99999999999999999999" };
    static const char reason[] = "port must be an integer between 0 and 65535";
    config_t cfg;
    char text[128], quoted[64];
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text), "# comment\n\n[server]\nport = %s\n", bad[i]);
        snprintf(quoted, sizeof(quoted), "port = %s", bad[i]);
        expect_file_error(text, 4, quoted, reason);
    }
    expect_file_error("[server]\nport =\n", 2, "port =", reason);
    expect_file_ok(&cfg, "[server]\nport = 0\n");
    assert_int_equal(cfg.port, 0);
    config_deinit(&cfg);
    expect_file_ok(&cfg, "[server]\nport = 65535\n");
    assert_int_equal(cfg.port, 65535);
    config_deinit(&cfg);

    expect_file_error("[server]\nmaxclients = 0\n", 2, "maxclients = 0",
                      "maxclients must be an integer between 1 and 1000000");
    expect_file_error("[server]\ndatabases = 10001\n", 2, "databases = 10001",
                      "databases must be an integer between 1 and 10000");
    expect_file_error("[cache]\nhz = 501\n", 2, "hz = 501", "hz must be an integer between 1 and 500");
    expect_file_error("[server]\ntimeout = -1\n", 2, "timeout = -1",
                      "timeout must be an integer between 0 and 2147483647");
    expect_file_error("[server]\ntcp-keepalive = 2147483648\n", 2, "tcp-keepalive = 2147483648",
                      "tcp-keepalive must be an integer between 0 and 2147483647");
}

static void test_memory_bounds(void **state)
{
    config_t cfg;
    (void)state;

    expect_file_error("[server]\nproto-max-bulk-len = 1000000\n", 2, "proto-max-bulk-len = 1000000",
                      "proto-max-bulk-len must be a size such as 100mb (units b, k, kb, m, mb, g, gb) "
                      "between 1mb and 2gb");
    expect_file_error("[server]\nproto-max-bulk-len = 3gb\n", 2, "proto-max-bulk-len = 3gb",
                      "proto-max-bulk-len must be a size such as 100mb (units b, k, kb, m, mb, g, gb) "
                      "between 1mb and 2gb");
    expect_file_ok(&cfg, "[server]\nproto-max-bulk-len = 1mb\nclient-query-buffer-limit = 1048576\n");
    assert_true(cfg.proto_max_bulk_len == 1048576);
    assert_true(cfg.client_query_buffer_limit == 1048576);
    config_deinit(&cfg);
    expect_file_error("[cache]\nmaxmemory = -1\n", 2, "maxmemory = -1",
                      "maxmemory must be a size such as 100mb (units b, k, kb, m, mb, g, gb) of at least 0");
    expect_file_error("[cache]\nmaxmemory = 10xb\n", 2, "maxmemory = 10xb",
                      "maxmemory must be a size such as 100mb (units b, k, kb, m, mb, g, gb) of at least 0");
    expect_file_error("[server]\nclient-query-buffer-limit = 1kb\n", 2, "client-query-buffer-limit = 1kb",
                      "client-query-buffer-limit must be a size such as 100mb (units b, k, kb, m, mb, g, gb) "
                      "of at least 1mb");
}

static void test_octal_bounds(void **state)
{
    static const char reason[] = "unixsocketperm must be an octal file mode between 0 and 777";
    config_t cfg;
    collect_t c;
    (void)state;

    expect_file_error("[server]\nunixsocketperm = 800\n", 2, "unixsocketperm = 800", reason);
    expect_file_error("[server]\nunixsocketperm = 1000\n", 2, "unixsocketperm = 1000", reason);
    expect_file_error("[server]\nunixsocketperm = rwx\n", 2, "unixsocketperm = rwx", reason);
    expect_file_ok(&cfg, "[server]\nunixsocketperm = 700\n");
    assert_int_equal(cfg.unixsocketperm, 0700);
    assert_string_equal(get(&cfg, "unixsocketperm", &c), "unixsocketperm=700;");
    config_deinit(&cfg);
}

static void test_enum_values(void **state)
{
    (void)state;

    expect_file_error("[cache]\nmaxmemory-policy = lru\n", 2, "maxmemory-policy = lru",
                      "maxmemory-policy must be one of noeviction, allkeys-lru, volatile-lru, allkeys-lfu, "
                      "volatile-lfu, volatile-ttl, allkeys-random, volatile-random");
    expect_file_error("[log]\nloglevel = info\n", 2, "loglevel = info",
                      "loglevel must be one of debug, verbose, notice, warning");
}

static void test_url_values(void **state)
{
    config_t cfg;
    (void)state;

    expect_file_error("[cache]\nbackend = memory\n", 2, "backend = memory",
                      "backend must be a URL such as memory://");
    expect_file_error("[cache]\nbackend =\n", 2, "backend =", "backend must be a URL such as memory://");
    expect_file_error("[cache]\nserializer = ://x\n", 2, "serializer = ://x",
                      "serializer must be a URL such as null://");
    expect_file_ok(&cfg, "[cache]\nbackend = redis://10.0.0.1:6379/2\n");
    assert_string_equal(cfg.backend, "redis://10.0.0.1:6379/2");
    config_deinit(&cfg);
}

static void test_bind_values(void **state)
{
    static const char reason[] = "bind must be 1 to 16 IPv4 or IPv6 addresses separated by spaces";
    config_t cfg;
    collect_t c;
    char text[1100], quoted[1024];
    (void)state;

    expect_file_error("[server]\nbind = localhost\n", 2, "bind = localhost", reason);
    expect_file_error("[server]\nbind = 127.0.0.1 300.1.1.1\n", 2, "bind = 127.0.0.1 300.1.1.1", reason);
    expect_file_error("[server]\nbind =\n", 2, "bind =", reason);

    /* 16 addresses fit, 17 do not. */
    strcpy(quoted, "bind =");
    for (int i = 1; i <= 16; i++)
        snprintf(quoted + strlen(quoted), sizeof(quoted) - strlen(quoted), " 10.0.0.%d", i);
    snprintf(text, sizeof(text), "[server]\n%s\n", quoted);
    expect_file_ok(&cfg, text);
    assert_int_equal(cfg.nbind, 16);
    assert_string_equal(cfg.bind[15], "10.0.0.16");
    assert_null(cfg.bind[16]);
    config_deinit(&cfg);
    strcat(quoted, " 10.0.0.17");
    snprintf(text, sizeof(text), "[server]\n%s\n", quoted);
    expect_file_error(text, 2, quoted, reason);

    expect_file_ok(&cfg, "[server]\nbind = \"0.0.0.0  ::\"\n");
    assert_int_equal(cfg.nbind, 2);
    assert_string_equal(get(&cfg, "bind", &c), "bind=0.0.0.0 ::;");
    config_deinit(&cfg);
}

/* --- structural errors ------------------------------------------------------------------------- */

static void test_unknown_option(void **state)
{
    (void)state;

    expect_file_error("# cachetoryd\n[server]\nprot = 6380\n", 3, "prot = 6380", "unknown option 'prot'");
    expect_file_error("save = 900 1\n", 1, "save = 900 1", "unknown option 'save'");
}

static void test_wrong_section(void **state)
{
    (void)state;

    expect_file_error("[server]\nport = 1\n[cache]\nport = 2\n", 4, "port = 2",
                      "port belongs in [server], not [cache]");
    expect_file_error("[log]\nmaxmemory = 1gb\n", 2, "maxmemory = 1gb",
                      "maxmemory belongs in [cache], not [log]");
}

static void test_unknown_section(void **state)
{
    (void)state;

    expect_file_error("[server]\nport = 1\n\n[sever]\nmaxclients = 5\n", 4, "[sever]",
                      "unknown section 'sever' (expected [server], [cache], [upstream] or [log])");
    expect_file_error("[server\n", 1, "[server", "a section header must end with ']'");
    expect_file_error("[server] port = 1\n", 1, "[server] port = 1",
                      "nothing but a comment may follow a section header");
}

static void test_duplicate(void **state)
{
    (void)state;

    expect_file_error("[server]\nport = 1\nmaxclients = 5\nport = 1\n", 4, "port = 1",
                      "port is already set at line 2");
    /* Before any section and again in its section is still twice. */
    expect_file_error("hz = 20\n[cache]\nHZ = 30\n", 3, "HZ = 30", "hz is already set at line 1");
}

static void test_syntax_errors(void **state)
{
    static const char reason[] = "expected 'name = value', a [section] or a comment";
    (void)state;

    expect_file_error("[server]\nport 6380\n", 2, "port 6380", reason);               /* redis.conf style */
    expect_file_error("[server]\nbind ::1\n", 2, "bind ::1", reason);
    expect_file_error("[server]\n= 6380\n", 2, "= 6380", reason);
    expect_file_error("[server]\nport: 6380\n", 2, "port: 6380", reason);
}

/* Reading stops at the first error: what follows it is neither reported nor applied. */
static void test_first_error_stops(void **state)
{
    config_t cfg;
    char err[1024], want[1024];
    (void)state;

    assert_int_equal(load_text(&cfg, "[server]\nport = x\nmaxclients = 7\nbogus = 1\n", 0, NULL, err,
                               sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:2: 'port = x': port must be an integer between 0 and 65535", conf_path);
    assert_string_equal(err, want);
    assert_int_equal(cfg.maxclients, 10000);
    config_deinit(&cfg);
}

static void test_missing_file(void **state)
{
    config_t cfg;
    char err[512], path[256], want[512];
    (void)state;

    snprintf(path, sizeof(path), "%s/nonexistent.conf", tmpdir);
    snprintf(want, sizeof(want), "%s: cannot open: No such file or directory", path);
    config_init(&cfg);
    assert_int_equal(config_load(&cfg, path, 0, NULL, err, sizeof(err)), -1);
    assert_string_equal(err, want);
    config_deinit(&cfg);
}

/* --- command line ------------------------------------------------------------------------------ */

static void test_argv_overrides_file(void **state)
{
    config_t cfg;
    char err[512];
    char *argv[] = { "--port", "7001", "--MAXMEMORY", "100mb", "--requirepass", "\"p w\"" };
    (void)state;

    assert_int_equal(load_text(&cfg, "[server]\nport = 7000\n[cache]\nmaxmemory = 1gb\n", 6, argv, err,
                               sizeof(err)), 0);
    assert_int_equal(cfg.port, 7001);
    assert_true(cfg.maxmemory == 100LL * 1024 * 1024);
    assert_string_equal(cfg.requirepass, "p w");
    config_deinit(&cfg);

    /* Without a file. */
    config_init(&cfg);
    assert_int_equal(config_load(&cfg, NULL, 2, argv, err, sizeof(err)), 0);
    assert_int_equal(cfg.port, 7001);
    config_deinit(&cfg);
}

static void expect_argv_error(int argc, char **argv, const char *want)
{
    config_t cfg;
    char err[512] = "";

    config_init(&cfg);
    assert_int_equal(config_load(&cfg, NULL, argc, argv, err, sizeof(err)), -1);
    assert_string_equal(err, want);
    config_deinit(&cfg);
}

static void test_argv_errors(void **state)
{
    (void)state;

    char *a1[] = { "--port", "abc" };
    expect_argv_error(2, a1, "--port 'abc': port must be an integer between 0 and 65535");
    char *a2[] = { "--hz", "20", "--port" };
    expect_argv_error(3, a2, "--port: missing value");
    char *a3[] = { "--prot", "1" };
    expect_argv_error(2, a3, "--prot '1': unknown option 'prot'");
    char *a4[] = { "port", "1" };
    expect_argv_error(2, a4, "'port': expected --name value");
    char *a5[] = { "--", "1" };
    expect_argv_error(2, a5, "'--': expected --name value");
    char *a6[] = { "--port", "1", "--port", "2" };
    expect_argv_error(4, a6, "--port '2': port is already given on the command line");
    char *a7[] = { "--maxmemory-policy", "lru" };
    expect_argv_error(2, a7, "--maxmemory-policy 'lru': maxmemory-policy must be one of noeviction, "
                      "allkeys-lru, volatile-lru, allkeys-lfu, volatile-lfu, volatile-ttl, allkeys-random, "
                      "volatile-random");
}

/* A file error is reported before the command line is looked at. */
static void test_file_error_before_argv(void **state)
{
    config_t cfg;
    char err[512], want[512];
    char *argv[] = { "--port", "abc" };
    (void)state;

    assert_int_equal(load_text(&cfg, "[cache]\nhz = 0\n", 2, argv, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:2: 'hz = 0': hz must be an integer between 1 and 500", conf_path);
    assert_string_equal(err, want);
    config_deinit(&cfg);
}

/* --- config_set -------------------------------------------------------------------------------- */

static void test_set_unchanged_on_error(void **state)
{
    config_t cfg;
    char err[256];
    (void)state;

    config_init(&cfg);
    assert_int_equal(config_set(&cfg, "bind", "10.0.0.1 nope", err, sizeof(err)), -1);
    assert_int_equal(cfg.nbind, 1);
    assert_string_equal(cfg.bind[0], "127.0.0.1");
    assert_int_equal(config_set(&cfg, "backend", "nope", err, sizeof(err)), -1);
    assert_string_equal(cfg.backend, "memory://");
    assert_int_equal(config_set(&cfg, "port", "1x", err, sizeof(err)), -1);
    assert_int_equal(cfg.port, 6380);
    assert_int_equal(config_set(&cfg, "nope", "1", err, sizeof(err)), -1);
    assert_string_equal(err, "unknown option 'nope'");
    assert_int_equal(config_set(&cfg, "bind", "::1", err, sizeof(err)), 0);
    assert_string_equal(cfg.bind[0], "::1");
    config_deinit(&cfg);
}

/* --- config_parse_memory ----------------------------------------------------------------------- */

static void test_parse_memory(void **state)
{
    static const struct {
        const char *s;
        long long want;
    } good[] = {
        { "0", 0 }, { "1", 1 }, { "1b", 1 }, { "1k", 1000 }, { "1kb", 1024 }, { "1K", 1000 }, { "1KB", 1024 },
        { "5m", 5000000 }, { "5mb", 5LL * 1024 * 1024 }, { "1g", 1000000000 }, { "1GB", 1024LL * 1024 * 1024 },
        { "100mb", 104857600 }, { "9223372036854775807", LLONG_MAX }, { "8589934591gb", 8589934591LL << 30 },
    };
    static const char *bad[] = {
        "", "junk", "mb", "-1", "-1mb", "+1", " 1", "1 ", "1 mb", "1.5gb", "1kbb", "1t", "0x10",
        "9223372036854775808", "99999999999999999999", "8589934592gb", "9223372036854775807k",
    };
    long long v;
    (void)state;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        v = -1;
        if (config_parse_memory(good[i].s, &v) != 0 || v != good[i].want)
            fail_msg("'%s' gave %lld, want %lld", good[i].s, v, good[i].want);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = 42;
        if (config_parse_memory(bad[i], &v) != -1 || v != 42)
            fail_msg("'%s' was accepted", bad[i]);
    }
}

/* --- CONFIG GET -------------------------------------------------------------------------------- */

static void test_config_get(void **state)
{
    config_t cfg;
    collect_t c, c2;
    char err[256];
    (void)state;

    config_init(&cfg);
    assert_string_equal(get(&cfg, "maxmemory", &c), "maxmemory=0;");
    assert_string_equal(get(&cfg, "MAXMEMORY", &c), "maxmemory=0;");
    assert_string_equal(get(&cfg, "maxmemory*", &c), "maxmemory=0;maxmemory-policy=allkeys-lru;");
    assert_string_equal(get(&cfg, "save", &c), "");
    assert_int_equal(c.n, 0);
    assert_string_equal(get(&cfg, "appendonly", &c), "");
    get(&cfg, "*", &c);
    assert_int_equal(c.n, 60);
    assert_string_equal(get(&cfg, "?ort", &c), "port=6380;");
    assert_string_equal(get(&cfg, "[pq]ort", &c), "port=6380;");
    assert_string_equal(get(&cfg, "[^p]ort", &c), "");
    assert_string_equal(get(&cfg, "*-policy", &c), "maxmemory-policy=allkeys-lru;");
    assert_string_equal(get(&cfg, "proto-max-bulk-len", &c), "proto-max-bulk-len=536870912;");
    assert_string_equal(get(&cfg, "client-*-limit", &c),
                        "client-query-buffer-limit=1073741824;client-output-buffer-limit=1073741824;");
    assert_string_equal(get(&cfg, "requirepass", &c), "requirepass=;");
    assert_string_equal(get(&cfg, "bind", &c), "bind=127.0.0.1;");
    assert_string_equal(get(&cfg, "log*", &c), "loglevel=notice;logfile=;");
    assert_string_equal(get(&cfg, "port\\", &c), "");        /* a trailing backslash is literal */
    assert_string_equal(get(&cfg, "h\\z", &c), "hz=10;");
    assert_string_equal(get(&cfg, "[g-i]z", &c), "hz=10;");
    assert_string_equal(get(&cfg, "hz[", &c), "");
    assert_string_equal(get(&cfg, "[h", &c), "");
    assert_string_equal(get(&cfg, "h[z", &c), "hz=10;");       /* unterminated set: to the end */
    assert_string_equal(get(&cfg, "h[^a-y", &c), "hz=10;");
    assert_string_equal(get(&cfg, "*[h]z", &c), "hz=10;");
    assert_string_equal(get(&cfg, "*e*o*", &c), "timeout=0;client-output-buffer-limit=1073741824;metrics-port=0;"
                        "maxmemory=0;maxmemory-policy=allkeys-lru;upstream-pool-size=4;"
                        "upstream-connect-timeout=1000;upstream-command-timeout=2000;upstream-password-file=;"
                        "cluster-cross-slot-writes=error;read-from=master;tls-session-caching=yes;"
                        "tls-session-cache-size=20480;tls-session-cache-timeout=300;tls-handshake-timeout=10000;");
    assert_string_equal(get(&cfg, "p**t", &c), "port=6380;");
    assert_string_equal(get(&cfg, "**", &c), get(&cfg, "*", &c2));
    assert_string_equal(get(&cfg, "", &c), "");
    /* Many stars: linear time, not exponential (this would take minutes if it backtracked fully). */
    assert_string_equal(get(&cfg, "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", &c), "");

    assert_int_equal(config_set(&cfg, "bind", "127.0.0.1 ::1", err, sizeof(err)), 0);
    assert_int_equal(config_set(&cfg, "maxmemory", "1kb", err, sizeof(err)), 0);
    assert_int_equal(config_set(&cfg, "maxmemory-policy", "noeviction", err, sizeof(err)), 0);
    assert_string_equal(get(&cfg, "bind", &c), "bind=127.0.0.1 ::1;");
    assert_string_equal(get(&cfg, "maxmemory*", &c), "maxmemory=1024;maxmemory-policy=noeviction;");
    config_deinit(&cfg);
}

/* --- help -------------------------------------------------------------------------------------- */

static void test_print_help(void **state)
{
    char *text = NULL;
    size_t len = 0;
    (void)state;

    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    config_print_help(f);
    fclose(f);
    assert_non_null(strstr(text, "[server]\n  --bind <addresses>  (default: 127.0.0.1)\n      IPv4/IPv6"));
    assert_non_null(strstr(text, "  --port <integer 0..65535>  (default: 6380)\n"));
    assert_non_null(strstr(text, "  --unixsocket <text>  (default: none)\n"));
    assert_non_null(strstr(text, "  --proto-max-bulk-len <size 1mb..2gb>  (default: 512mb)\n"));
    assert_non_null(strstr(text, "  --maxmemory-policy <noeviction|allkeys-lru|"));
    assert_non_null(strstr(text, "\n[log]\n  --loglevel <debug|verbose|notice|warning>  (default: notice)\n"));
    free(text);
}

/* --- CONFIG SET and CONFIG REWRITE --------------------------------------------------------------- */

static void test_set_verbatim(void **state)
{
    config_t cfg;
    char err[256];
    collect_t c;
    (void)state;

    config_init(&cfg);
    assert_int_equal(config_set_verbatim(&cfg, "requirepass", "\"quoted\"", err, sizeof(err)), 0);
    assert_string_equal(cfg.requirepass, "\"quoted\"");       /* as sent: no quotes removed */
    assert_int_equal(config_set_verbatim(&cfg, "REQUIREPASS", "a\nb", err, sizeof(err)), -1);
    assert_string_equal(err, "requirepass cannot contain a line break");
    assert_string_equal(cfg.requirepass, "\"quoted\"");
    assert_int_equal(config_set_verbatim(&cfg, "maxmemory", "lots", err, sizeof(err)), -1);
    assert_string_equal(get(&cfg, "maxmemory", &c), "maxmemory=0;");
    assert_int_equal(config_set_verbatim(&cfg, "nosuch", "1", err, sizeof(err)), -1);
    assert_string_equal(err, "unknown option 'nosuch'");
    assert_true(config_exists("MaxMemory"));
    assert_false(config_exists("hash-max-listpack-entries"));
    assert_string_equal(config_canonical_name("MAXMEMORY"), "maxmemory");
    assert_null(config_canonical_name("save"));
    config_deinit(&cfg);
}

static void test_copy_options(void **state)
{
    config_t cfg, copy;
    char err[256];
    collect_t a, b;
    (void)state;

    expect_file_ok(&cfg, "[server]\nbind = 127.0.0.1 ::1\nrequirepass = pw\n[cache.docs]\nprefix = doc:\n");
    config_copy_options(&copy, &cfg);
    assert_int_equal(copy.ncaches, 0);
    assert_string_equal(get(&copy, "*", &a), get(&cfg, "*", &b));
    assert_int_equal(config_set(&copy, "requirepass", "other", err, sizeof(err)), 0);
    assert_int_equal(config_set(&copy, "bind", "0.0.0.0", err, sizeof(err)), 0);
    assert_string_equal(cfg.requirepass, "pw");                 /* the copy owns its strings */
    assert_string_equal(cfg.bind[1], "::1");
    config_deinit(&copy);
    assert_int_equal(cfg.ncaches, 1);
    config_deinit(&cfg);
}

/* The rewrite of old for cfg, as a new string (free it). */
static char *rewrite(const config_t *cfg, const char *old)
{
    buf_t out;
    buf_init(&out);
    config_rewrite_text(cfg, old, old ? strlen(old) : 0, &out);
    buf_append(&out, "", 1);
    char *s = strdup(out.data);
    buf_deinit(&out);
    return s;
}

static const char rw_conf[] =
    "# top comment\n"
    "timeout = 5\n"                         /* before any section */
    "\n"
    "[server]\n"
    "  port = 7000 ; inline\n"
    "requirepass = \"  spaced  \"\n"
    "\n"
    "; about the cache\n"
    "[cache]\n"
    "maxmemory = 100mb\n"
    "serializer = zlib://\n"
    "[cache.docs]\n"
    "prefix = doc:\n"
    "default-ttl = 60\n"
    "[log]\r\n"
    "loglevel = warning\r\n";

static void test_rewrite_unchanged(void **state)
{
    config_t cfg;
    (void)state;

    expect_file_ok(&cfg, rw_conf);
    char *s = rewrite(&cfg, rw_conf);
    assert_string_equal(s, rw_conf);                /* 100mb is 104857600: the line stays */
    free(s);
    config_deinit(&cfg);
}

static void test_rewrite_changes(void **state)
{
    config_t cfg;
    char err[256];
    (void)state;

    expect_file_ok(&cfg, rw_conf);
    assert_int_equal(config_set(&cfg, "timeout", "9", err, sizeof(err)), 0);
    assert_int_equal(config_set(&cfg, "port", "7001", err, sizeof(err)), 0);
    assert_int_equal(config_set(&cfg, "maxmemory", "3145728", err, sizeof(err)), 0);
    assert_int_equal(config_set(&cfg, "default-ttl", "30", err, sizeof(err)), 0);
    assert_int_equal(config_set(&cfg, "loglevel", "debug", err, sizeof(err)), 0);
    assert_int_equal(config_set(&cfg, "slowlog-max-len", "7", err, sizeof(err)), 0);
    assert_int_equal(config_set(&cfg, "upstream-retry-max", "900", err, sizeof(err)), 0);
    assert_int_equal(config_set_verbatim(&cfg, "requirepass", "'q'", err, sizeof(err)), 0);
    char *s = rewrite(&cfg, rw_conf);
    assert_string_equal(s,
        "# top comment\n"
        "timeout = 9\n"
        "\n"
        "[server]\n"
        "port = 7001 ; inline\n"
        "requirepass = \"'q'\"\n"
        "slowlog-max-len = 7\n"
        "\n"
        "; about the cache\n"
        "[cache]\n"
        "maxmemory = 3mb\n"
        "serializer = zlib://\n"
        "default-ttl = 30\n"
        "[cache.docs]\n"
        "prefix = doc:\n"
        "default-ttl = 60\n"
        "[log]\r\n"
        "loglevel = debug\r\n"
        "\n"
        "[upstream]\n"
        "upstream-retry-max = 900\n");
    /* and it loads back to the same options */
    config_t back;
    collect_t a, b;
    expect_file_ok(&back, s);
    assert_string_equal(get(&back, "*", &a), get(&cfg, "*", &b));
    assert_int_equal(back.ncaches, 1);
    config_deinit(&back);
    free(s);
    config_deinit(&cfg);
}

static void test_rewrite_no_file(void **state)
{
    config_t cfg;
    char err[256];
    (void)state;

    config_init(&cfg);
    char *s = rewrite(&cfg, NULL);
    assert_string_equal(s, "");                     /* all defaults: nothing to write */
    free(s);
    assert_int_equal(config_set(&cfg, "tls-protocols", "", err, sizeof(err)), 0);
    assert_int_equal(config_set(&cfg, "backend", "redis://u:secret@h:6379/1", err, sizeof(err)), 0);
    s = rewrite(&cfg, "[server]");                  /* no newline at the end */
    assert_string_equal(s, "[server]\n\n[cache]\nbackend = redis://u:secret@h:6379/1\n\n[tls]\ntls-protocols = \n");
    free(s);
    config_deinit(&cfg);
}

static void test_rewrite_file(void **state)
{
    config_t cfg;
    char err[256], link[256], text[256];
    (void)state;

    expect_file_ok(&cfg, "[server]\ntimeout = 1\n");
    assert_int_equal(config_set(&cfg, "timeout", "2", err, sizeof(err)), 0);
    snprintf(link, sizeof(link), "%s/link.conf", tmpdir);
    assert_int_equal(symlink(conf_path, link), 0);
    assert_int_equal(config_rewrite(&cfg, link, err, sizeof(err)), 0);
    FILE *f = fopen(conf_path, "r");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    assert_string_equal(text, "[server]\ntimeout = 2\n");
    char target[256];
    ssize_t tn = readlink(link, target, sizeof(target) - 1);
    assert_true(tn > 0);                            /* still a link */
    unlink(link);
    snprintf(link, sizeof(link), "%s/nodir/x.conf", tmpdir);
    assert_int_equal(config_rewrite(&cfg, link, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cannot write"));
    config_deinit(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_load_no_file),
        cmocka_unit_test(test_example_conf),
        cmocka_unit_test(test_example_conf_lists_every_option),
        cmocka_unit_test(test_file_all_sections),
        cmocka_unit_test(test_file_empty_means_none),
        cmocka_unit_test(test_file_empty),
        cmocka_unit_test(test_file_long_lines),
        cmocka_unit_test(test_int_bounds),
        cmocka_unit_test(test_memory_bounds),
        cmocka_unit_test(test_octal_bounds),
        cmocka_unit_test(test_enum_values),
        cmocka_unit_test(test_url_values),
        cmocka_unit_test(test_bind_values),
        cmocka_unit_test(test_unknown_option),
        cmocka_unit_test(test_wrong_section),
        cmocka_unit_test(test_unknown_section),
        cmocka_unit_test(test_duplicate),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_first_error_stops),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_argv_overrides_file),
        cmocka_unit_test(test_argv_errors),
        cmocka_unit_test(test_file_error_before_argv),
        cmocka_unit_test(test_set_unchanged_on_error),
        cmocka_unit_test(test_parse_memory),
        cmocka_unit_test(test_config_get),
        cmocka_unit_test(test_print_help),
        cmocka_unit_test(test_set_verbatim),
        cmocka_unit_test(test_copy_options),
        cmocka_unit_test(test_rewrite_unchanged),
        cmocka_unit_test(test_rewrite_changes),
        cmocka_unit_test(test_rewrite_no_file),
        cmocka_unit_test(test_rewrite_file),
    };
    return cmocka_run_group_tests_name("config", tests, group_setup, group_teardown);
}
