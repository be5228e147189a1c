/*
 * Unit tests for resp/parse: the server-side RESP request parser.
 *
 * Every valid message is checked four ways: in one piece, every proper prefix on a fresh parser (must be
 * RESP_AGAIN, never an error, with a sane p->need), one byte at a time on one parser, and in chunks of a
 * few sizes. Inputs are copied into blocks of exactly the length given to the parser, so AddressSanitizer
 * catches a read past len. Every malformed input is checked for redis's exact error text, and for being
 * reported exactly when its last byte arrives, not before.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "resp/parse.h"
#include "util/mem.h"

/* ---------------------------------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------------------------------- */

typedef struct arg {
    const char *s;      /* expected bytes */
    size_t n;           /* expected length (bytes may contain NUL) */
} arg_t;

#define A(lit) { (lit), sizeof(lit) - 1 }
#define MSG(lit) (lit), (sizeof(lit) - 1)
#define MAX_TEST_ARGS 16

typedef struct cmd {
    size_t consumed;                /* bytes this command takes */
    size_t argc;
    arg_t argv[MAX_TEST_ARGS];
} cmd_t;

/* Limits for a test; a zero field keeps resp_parse_init's default. */
typedef struct limits {
    long long max_bulk_len;
    long max_args;
    int authenticated;              /* 1 or 0 (init's default is 0) */
} limits_t;

static const limits_t AUTH = { 0, 0, 1 };
static const limits_t UNAUTH = { 0, 0, 0 };

static void start(resp_parser_t *p, const limits_t *lim)
{
    resp_parse_init(p);
    if (lim->max_bulk_len)
        p->max_bulk_len = lim->max_bulk_len;
    if (lim->max_args)
        p->max_args = lim->max_args;
    p->authenticated = lim->authenticated;
}

/* A heap copy of exactly n bytes, so that reading buf[n] is an ASan error. */
static char *copy_of(const char *s, size_t n)
{
    char *b = mem_alloc(n ? n : 1);

    memcpy(b, s, n);
    return b;
}

static void assert_cmd(const resp_parser_t *p, const char *buf, const cmd_t *c)
{
    size_t i;

    assert_int_equal(p->consumed, c->consumed);
    assert_int_equal(p->argc, c->argc);
    for (i = 0; i < c->argc; i++) {
        assert_int_equal(p->argv[i].len, c->argv[i].n);
        assert_true(p->argv[i].off + p->argv[i].len <= c->consumed);
        if (c->argv[i].n)
            assert_memory_equal(buf + p->argv[i].off, c->argv[i].s, c->argv[i].n);
    }
}

/*
 * Feed msg to one parser growing by step bytes at a time (step 0: all at once), in a block reallocated
 * to the exact length each time. Every command must come out exactly when its last byte arrives, with
 * RESP_AGAIN (and need > bytes given) before that.
 */
static void feed_stream(const char *msg, size_t len, const cmd_t *cmds, size_t ncmds, size_t step,
                        const limits_t *lim)
{
    resp_parser_t p;
    char *buf = NULL;
    size_t have = 0, off = 0, i = 0;

    start(&p, lim);
    while (have < len) {
        size_t n = step ? step : len;

        if (n > len - have)
            n = len - have;
        buf = mem_realloc(buf, have + n);
        memcpy(buf + have, msg + have, n);
        have += n;

        for (;;) {
            int rc = resp_parse(&p, buf + off, have - off);

            if (i < ncmds && have - off >= cmds[i].consumed) {
                assert_int_equal(rc, RESP_OK);
                assert_cmd(&p, buf + off, &cmds[i]);
                off += p.consumed;
                i++;
                resp_parse_next(&p);
                continue;
            }
            assert_int_equal(rc, RESP_AGAIN);
            assert_true(p.need > have - off);
            break;
        }
    }
    assert_int_equal(i, ncmds);
    assert_int_equal(off, len);
    resp_parse_deinit(&p);
    mem_free(buf);
}

/*
 * The full check of a valid message made of ncmds pipelined commands: every proper prefix of each
 * command (on a fresh parser) is RESP_AGAIN with bytes < need <= the command's length; the command on
 * its own is RESP_OK; and the whole stream parses the same at once, byte by byte and in chunks.
 */
static void check_valid(const char *msg, size_t len, const cmd_t *cmds, size_t ncmds, const limits_t *lim)
{
    static const size_t steps[] = { 0, 1, 2, 3, 5, 7, 64 };
    size_t i, k, off = 0;

    for (i = 0; i < ncmds; i++) {
        resp_parser_t p;
        char *buf;

        for (k = 0; k < cmds[i].consumed; k++) {
            buf = copy_of(msg + off, k);
            start(&p, lim);
            assert_int_equal(resp_parse(&p, buf, k), RESP_AGAIN);
            assert_null(p.err);
            assert_true(p.need > k);
            assert_true(p.need <= cmds[i].consumed);
            /* asking again with the same bytes changes nothing */
            assert_int_equal(resp_parse(&p, buf, k), RESP_AGAIN);
            resp_parse_deinit(&p);
            mem_free(buf);
        }
        buf = copy_of(msg + off, cmds[i].consumed);
        start(&p, lim);
        assert_int_equal(resp_parse(&p, buf, cmds[i].consumed), RESP_OK);
        assert_cmd(&p, buf, &cmds[i]);
        /* a second call before resp_parse_next() returns the same command, not a rescan */
        assert_int_equal(resp_parse(&p, buf, cmds[i].consumed), RESP_OK);
        assert_cmd(&p, buf, &cmds[i]);
        resp_parse_deinit(&p);
        mem_free(buf);
        off += cmds[i].consumed;
    }
    assert_int_equal(off, len);

    for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
        feed_stream(msg, len, cmds, ncmds, steps[i], lim);
}

/*
 * The full check of a malformed message: it must fail with exactly err_text when its last byte arrives
 * and not before (every proper prefix is RESP_AGAIN), fed at once or one byte at a time; and the error
 * must stick. Prefixes are all tried for short inputs and sampled for long ones.
 */
static void check_error(const char *msg, size_t len, const char *err_text, const limits_t *lim)
{
    resp_parser_t p;
    char *buf;
    size_t k, have;

    for (k = 0; k < len; k += (len > 512 ? 4099 : 1)) {
        buf = copy_of(msg, k);
        start(&p, lim);
        assert_int_equal(resp_parse(&p, buf, k), RESP_AGAIN);
        resp_parse_deinit(&p);
        mem_free(buf);
    }
    if (len > 512) {    /* the last prefix, always */
        buf = copy_of(msg, len - 1);
        start(&p, lim);
        assert_int_equal(resp_parse(&p, buf, len - 1), RESP_AGAIN);
        resp_parse_deinit(&p);
        mem_free(buf);
    }

    buf = copy_of(msg, len);
    start(&p, lim);
    assert_int_equal(resp_parse(&p, buf, len), RESP_ERROR);
    assert_non_null(p.err);
    assert_string_equal(p.err, err_text);
    assert_int_equal(p.argc, 0);
    assert_int_equal(resp_parse(&p, buf, len), RESP_ERROR);
    assert_string_equal(p.err, err_text);
    resp_parse_deinit(&p);
    mem_free(buf);

    /* one byte at a time, in one block (a realloc per byte would be quadratic for the 64 KB cases);
     * a fresh copy, since a failed inline split leaves its line partly unescaped */
    buf = copy_of(msg, len);
    start(&p, lim);
    for (have = 0; have < len; have++)
        assert_int_equal(resp_parse(&p, buf, have), RESP_AGAIN);
    assert_int_equal(resp_parse(&p, buf, len), RESP_ERROR);
    assert_string_equal(p.err, err_text);
    resp_parse_deinit(&p);
    mem_free(buf);
}

/* Build "<prefix><n copies of fill><suffix>" on the heap; *len gets its length. */
static char *make_long(const char *prefix, char fill, size_t n, const char *suffix, size_t *len)
{
    size_t a = strlen(prefix), b = strlen(suffix);
    char *s = mem_alloc(a + n + b);

    memcpy(s, prefix, a);
    memset(s + a, fill, n);
    memcpy(s + a + n, suffix, b);
    *len = a + n + b;
    return s;
}

/* ---------------------------------------------------------------------------------------------------
 * Valid input
 * ------------------------------------------------------------------------------------------------- */

static void test_init_defaults(void **state)
{
    resp_parser_t p;

    memset(&p, 0xa5, sizeof(p));        /* init must not depend on what was there */
    resp_parse_init(&p);
    assert_int_equal(p.max_bulk_len, 512LL * 1024 * 1024);
    assert_int_equal(p.max_args, INT_MAX);
    assert_int_equal(p.authenticated, 0);
    assert_null(p.argv);
    assert_int_equal(p.argc, 0);
    assert_null(p.err);
    assert_int_equal(resp_parse(&p, NULL, 0), RESP_AGAIN);
    assert_int_equal(p.need, 1);
    resp_parse_deinit(&p);
    resp_parse_deinit(&p);              /* twice is harmless */
}

static void test_multibulk(void **state)
{
    static const char msg[] = "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n";
    cmd_t c = { sizeof(msg) - 1, 3, { A("SET"), A("key"), A("value") } };
    resp_parser_t p;
    char *buf = copy_of(MSG(msg));

    check_valid(MSG(msg), &c, 1, &UNAUTH);

    /* the offsets point at the payloads in the caller's buffer */
    resp_parse_init(&p);
    assert_int_equal(resp_parse(&p, buf, sizeof(msg) - 1), RESP_OK);
    assert_int_equal(p.argv[0].off, 8);
    assert_int_equal(p.argv[1].off, 17);
    assert_int_equal(p.argv[2].off, 26);
    assert_int_equal(p.inline_cmd, 0);
    resp_parse_deinit(&p);
    mem_free(buf);
}

static void test_multibulk_long_payloads(void **state)
{
    /* a bulk longer than the chunk sizes, and a bulk length with several digits */
    char msg[256];
    char val[120];
    cmd_t c = { 0, 2, { A("ECHO") } };
    int n;

    memset(val, 'v', sizeof(val));
    n = snprintf(msg, sizeof(msg), "*2\r\n$4\r\nECHO\r\n$%zu\r\n", sizeof(val));
    memcpy(msg + n, val, sizeof(val));
    memcpy(msg + n + sizeof(val), "\r\n", 2);
    c.consumed = (size_t)n + sizeof(val) + 2;
    c.argv[1].s = val;
    c.argv[1].n = sizeof(val);
    check_valid(msg, c.consumed, &c, 1, &UNAUTH);
}

static void test_empty_bulk(void **state)
{
    static const char msg[] = "*3\r\n$3\r\nSET\r\n$0\r\n\r\n$0\r\n\r\n";
    cmd_t c = { sizeof(msg) - 1, 3, { A("SET"), A(""), A("") } };

    check_valid(MSG(msg), &c, 1, &UNAUTH);
}

static void test_binary_bulk(void **state)
{
    /* NUL, CR, LF, "\r\n", '*' and '$' inside payloads are data */
    static const char msg[] = "*2\r\n$9\r\na\0b\r\n$*\r\n\r\n$3\r\n\0\0\0\r\n";
    cmd_t c = { sizeof(msg) - 1, 2, { A("a\0b\r\n$*\r\n"), A("\0\0\0") } };

    check_valid(MSG(msg), &c, 1, &UNAUTH);
}

static void test_inline(void **state)
{
    static const char msg1[] = "SET key value\r\n";
    static const char msg2[] = "PING\n";
    static const char msg3[] = "  GET\t\tkey   \r\n";
    cmd_t c1 = { sizeof(msg1) - 1, 3, { A("SET"), A("key"), A("value") } };
    cmd_t c2 = { sizeof(msg2) - 1, 1, { A("PING") } };
    cmd_t c3 = { sizeof(msg3) - 1, 2, { A("GET"), A("key") } };
    resp_parser_t p;
    char *buf = copy_of(MSG(msg1));

    check_valid(MSG(msg1), &c1, 1, &UNAUTH);
    check_valid(MSG(msg2), &c2, 1, &UNAUTH);
    check_valid(MSG(msg3), &c3, 1, &UNAUTH);

    /* unquoted arguments stay where they are */
    resp_parse_init(&p);
    assert_int_equal(resp_parse(&p, buf, sizeof(msg1) - 1), RESP_OK);
    assert_int_equal(p.inline_cmd, 1);
    assert_int_equal(p.argv[0].off, 0);
    assert_int_equal(p.argv[1].off, 4);
    assert_int_equal(p.argv[2].off, 8);
    resp_parse_deinit(&p);
    mem_free(buf);
}

static void test_inline_quoted(void **state)
{
    static const char msg[] =
        "SET \"k\\x41\\x7a\\n\\r\\t\\b\\a\\\\\\\"\" 'it\\'s \\n \"x\"' \"\" '' \"a b\"\r\n";
    cmd_t c = { sizeof(msg) - 1, 6, {
        A("SET"), A("kAz\n\r\t\b\a\\\""), A("it's \\n \"x\""), A(""), A(""), A("a b") } };

    check_valid(MSG(msg), &c, 1, &UNAUTH);
}

static void test_inline_split_quirks(void **state)
{
    /* sdssplitargs's exact rules, each checked against what redis gives */
    static const char m1[] = "a\"b c\" d\n";             /* a quote may open mid-argument */
    static const char m2[] = "\"\\xZZ\\q\\x4\" x\n";     /* bad \x is a plain 'x'; \q is 'q' */
    static const char m3[] = "\v\fa\vb\r\n";             /* \v \f separate only between arguments */
    static const char m4[] = "a\rb\r\r\n";               /* a lone \r inside the line separates */
    static const char m5[] = "'a\\b' \"\\x00\"\n";       /* '' keeps backslashes; \x00 is a NUL byte */
    static const char m6[] = "\"q\"\t'r'\n";             /* closing quote followed by a tab */
    static const char m7[] = "\"\\xfF\"\n";              /* hex digits in either case, high byte */
    cmd_t c1 = { sizeof(m1) - 1, 2, { A("ab c"), A("d") } };
    cmd_t c2 = { sizeof(m2) - 1, 2, { A("xZZqx4"), A("x") } };
    cmd_t c3 = { sizeof(m3) - 1, 1, { A("a\vb") } };
    cmd_t c4 = { sizeof(m4) - 1, 2, { A("a"), A("b") } };
    cmd_t c5 = { sizeof(m5) - 1, 2, { A("a\\b"), A("\0") } };
    cmd_t c6 = { sizeof(m6) - 1, 2, { A("q"), A("r") } };
    cmd_t c7 = { sizeof(m7) - 1, 1, { A("\xff") } };

    check_valid(MSG(m1), &c1, 1, &UNAUTH);
    check_valid(MSG(m2), &c2, 1, &UNAUTH);
    check_valid(MSG(m3), &c3, 1, &UNAUTH);
    check_valid(MSG(m4), &c4, 1, &UNAUTH);
    check_valid(MSG(m5), &c5, 1, &UNAUTH);
    check_valid(MSG(m6), &c6, 1, &UNAUTH);
    check_valid(MSG(m7), &c7, 1, &UNAUTH);
}

static void test_empty_commands(void **state)
{
    /* all of these are "nothing to run": RESP_OK with argc 0, the caller skips them */
    static const char m1[] = "*0\r\n";
    static const char m2[] = "*-1\r\n";
    static const char m3[] = "*-5\r\n";
    static const char m4[] = "\r\n";
    static const char m5[] = "\n";
    static const char m6[] = "  \t \v\r\n";
    cmd_t c1 = { 4, 0, { { NULL, 0 } } };
    cmd_t c2 = { 5, 0, { { NULL, 0 } } };
    cmd_t c3 = { 5, 0, { { NULL, 0 } } };
    cmd_t c4 = { 2, 0, { { NULL, 0 } } };
    cmd_t c5 = { 1, 0, { { NULL, 0 } } };
    cmd_t c6 = { 7, 0, { { NULL, 0 } } };

    check_valid(MSG(m1), &c1, 1, &UNAUTH);
    check_valid(MSG(m2), &c2, 1, &UNAUTH);
    check_valid(MSG(m3), &c3, 1, &UNAUTH);
    check_valid(MSG(m4), &c4, 1, &UNAUTH);
    check_valid(MSG(m5), &c5, 1, &UNAUTH);
    check_valid(MSG(m6), &c6, 1, &UNAUTH);
}

static void test_pipelined(void **state)
{
    static const char msg[] =
        "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"        /* 20 bytes */
        "PING\r\n"                              /*  6 */
        "*0\r\n"                                /*  4 */
        "\r\n"                                  /*  2 */
        "ECHO \"a\\nb\"\n"                      /* 12 */
        "*1\r\n$4\r\nQUIT\r\n";                 /* 14 */
    cmd_t cmds[] = {
        { 20, 2, { A("GET"), A("k") } },
        { 6, 1, { A("PING") } },
        { 4, 0, { { NULL, 0 } } },
        { 2, 0, { { NULL, 0 } } },
        { 12, 2, { A("ECHO"), A("a\nb") } },
        { 14, 1, { A("QUIT") } },
    };

    check_valid(MSG(msg), cmds, sizeof(cmds) / sizeof(cmds[0]), &UNAUTH);
}

static void test_pipelined_offsets(void **state)
{
    /* the way a server uses it: parse, run, resp_parse_next, go on from buf + consumed */
    static const char msg[] = "*1\r\n$4\r\nPING\r\nSET a b\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\n*1\r\n$4\r\nPI";
    resp_parser_t p;
    char *buf = copy_of(MSG(msg));
    size_t len = sizeof(msg) - 1, off = 0;

    resp_parse_init(&p);
    assert_int_equal(resp_parse(&p, buf + off, len - off), RESP_OK);
    assert_int_equal(p.consumed, 14);
    assert_int_equal(p.argc, 1);
    assert_int_equal(p.argv[0].off, 8);
    off += p.consumed;
    resp_parse_next(&p);
    assert_int_equal(p.argc, 0);

    assert_int_equal(resp_parse(&p, buf + off, len - off), RESP_OK);
    assert_int_equal(p.consumed, 9);
    assert_int_equal(p.argc, 3);
    assert_int_equal(p.argv[2].off, 6);
    assert_memory_equal(buf + off + p.argv[2].off, "b", 1);
    off += p.consumed;
    resp_parse_next(&p);

    assert_int_equal(resp_parse(&p, buf + off, len - off), RESP_OK);
    assert_int_equal(p.consumed, 20);
    assert_int_equal(p.argc, 2);
    assert_int_equal(p.argv[0].off, 8);
    assert_int_equal(p.argv[1].off, 17);
    assert_memory_equal(buf + off + p.argv[1].off, "a", 1);
    off += p.consumed;
    resp_parse_next(&p);

    /* the partial fourth command: its payload is known to end at 14 */
    assert_int_equal(resp_parse(&p, buf + off, len - off), RESP_AGAIN);
    assert_int_equal(p.need, 14);
    resp_parse_deinit(&p);
    mem_free(buf);
}

static void test_limits_survive_next(void **state)
{
    static const char msg[] = "*1\r\n$3\r\nabc\r\n*1\r\n$4\r\nabcd\r\n";
    resp_parser_t p;
    char *buf = copy_of(MSG(msg));

    resp_parse_init(&p);
    p.max_bulk_len = 3;
    p.max_args = 5;
    p.authenticated = 1;
    assert_int_equal(resp_parse(&p, buf, sizeof(msg) - 1), RESP_OK);
    resp_parse_next(&p);
    assert_int_equal(p.max_bulk_len, 3);
    assert_int_equal(p.max_args, 5);
    assert_int_equal(p.authenticated, 1);
    assert_int_equal(resp_parse(&p, buf + 13, sizeof(msg) - 1 - 13), RESP_ERROR);
    assert_string_equal(p.err, "ERR Protocol error: invalid bulk length");
    resp_parse_deinit(&p);
    mem_free(buf);
}

/* redis skips the two bytes after a header's '\r' and after a payload without looking at them */
static void test_crlf_bytes_not_checked(void **state)
{
    static const char msg[] = "*2\rX$1\r\0aYZ$2\r\rbcQQ";
    cmd_t c = { sizeof(msg) - 1, 2, { A("a"), A("bc") } };

    check_valid(MSG(msg), &c, 1, &UNAUTH);
}

/* ---------------------------------------------------------------------------------------------------
 * Malformed input
 * ------------------------------------------------------------------------------------------------- */

#define E_MB_LEN     "ERR Protocol error: invalid multibulk length"
#define E_BULK_LEN   "ERR Protocol error: invalid bulk length"
#define E_QUOTES     "ERR Protocol error: unbalanced quotes in request"

static void test_bad_multibulk_count(void **state)
{
    static const char *const bad[] = {
        "*\r\n", "*abc\r\n", "*1a\r\n", "* 1\r\n", "*1 \r\n", "*+1\r\n", "*01\r\n", "*00\r\n",
        "*-0\r\n", "*-\r\n", "*--1\r\n", "*1.5\r\n",
        "*2147483648\r\n",                      /* INT_MAX + 1 */
        "*9223372036854775807\r\n",             /* LLONG_MAX */
        "*9223372036854775808\r\n",             /* overflows long long */
        "*99999999999999999999999\r\n",         /* longer than 20 characters */
        "*1\n\r\n",                             /* the line ends at '\r': "1\n" is not a number */
    };
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        check_error(bad[i], strlen(bad[i]), E_MB_LEN, &AUTH);
}

static void test_bad_bulk_length(void **state)
{
    static const char *const bad[] = {
        "*1\r\n$\r\n", "*1\r\n$-1\r\n", "*1\r\n$-0\r\n", "*1\r\n$01\r\n", "*1\r\n$+1\r\n",
        "*1\r\n$x\r\n", "*1\r\n$1 \r\n",
        "*1\r\n$536870913\r\n",                 /* 512 MB + 1 */
        "*1\r\n$1099511627776\r\n",             /* 2^40 */
        "*1\r\n$9223372036854775808\r\n",
        "*1\r\n$-9223372036854775808\r\n",
        "*2\r\n$3\r\nGET\r\n$-5\r\n",           /* in the second argument */
    };
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        check_error(bad[i], strlen(bad[i]), E_BULK_LEN, &AUTH);
}

static void test_expected_dollar(void **state)
{
    check_error(MSG("*1\r\nX\r\n"), "ERR Protocol error: expected '$', got 'X'", &AUTH);
    check_error(MSG("*1\r\n:1\r\n"), "ERR Protocol error: expected '$', got ':'", &AUTH);
    check_error(MSG("*2\r\n$1\r\na\r\n*1\r\n"), "ERR Protocol error: expected '$', got '*'", &AUTH);
    /* redis turns CR and LF into spaces to keep the reply on one line */
    check_error(MSG("*1\r\n\r\n"), "ERR Protocol error: expected '$', got ' '", &AUTH);
    check_error(MSG("*1\r\n\n\r\n"), "ERR Protocol error: expected '$', got ' '", &AUTH);
    /* other bytes go out as they are */
    check_error(MSG("*1\r\n\xff\r\n"), "ERR Protocol error: expected '$', got '\xff'", &AUTH);
    /* a payload one byte longer than announced shifts the framing: the next "line" is "\n$1" */
    check_error(MSG("*2\r\n$1\r\nab\r\n$1\r\n"), "ERR Protocol error: expected '$', got ' '", &AUTH);
}

static void test_too_big_lines(void **state)
{
    char *s;
    size_t len;

    /* "*" + 65536 digits has no '\r' yet: waiting; one more byte and it is too big */
    s = make_long("*", '1', RESP_INLINE_MAX, "", &len);
    check_error(s, len, "ERR Protocol error: too big mbulk count string", &AUTH);
    mem_free(s);

    /* a bulk header counts from its own '$' */
    s = make_long("*1\r\n$", '1', RESP_INLINE_MAX, "", &len);
    check_error(s, len, "ERR Protocol error: too big bulk count string", &AUTH);
    mem_free(s);
    s = make_long("*2\r\n$1\r\na\r\n$", '1', RESP_INLINE_MAX, "", &len);
    check_error(s, len, "ERR Protocol error: too big bulk count string", &AUTH);
    mem_free(s);

    s = make_long("GET ", 'k', RESP_INLINE_MAX - 3, "", &len);
    check_error(s, len, "ERR Protocol error: too big inline request", &AUTH);
    mem_free(s);

    /* a line that does end within the buffer is not "too big", as in redis: an inline command of any
     * length that arrives whole is accepted, a header line that long is just not a number */
    {
        resp_parser_t p;

        s = make_long("ECHO ", 'x', 2 * RESP_INLINE_MAX, "\r\n", &len);
        resp_parse_init(&p);
        assert_int_equal(resp_parse(&p, s, len), RESP_OK);
        assert_int_equal(p.argc, 2);
        assert_int_equal(p.argv[1].len, 2 * RESP_INLINE_MAX);
        resp_parse_deinit(&p);
        mem_free(s);

        s = make_long("*", '1', 2 * RESP_INLINE_MAX, "\r\n", &len);
        resp_parse_init(&p);
        assert_int_equal(resp_parse(&p, s, len), RESP_ERROR);
        assert_string_equal(p.err, E_MB_LEN);
        resp_parse_deinit(&p);
        mem_free(s);
    }
}

static void test_unbalanced_quotes(void **state)
{
    static const char *const bad[] = {
        "SET a \"b\r\n", "SET a 'b\r\n", "SET a \"b\"c\r\n", "SET a 'b'c\r\n", "\"\n", "'\n",
        "a\"b\"c\n", "\"abc\\\"\n", "'it\\'\n", "\"x\"\"y\"\n", "\"\\\"\n",
    };
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        check_error(bad[i], strlen(bad[i]), E_QUOTES, &AUTH);
}

static void test_nul_hides_line_end(void **state)
{
    /* redis searches line ends with strchr(): a NUL before the end leaves the line incomplete */
    static const arg_t msgs[] = { A("*1\0\r\n$1\r\na\r\n"), A("*1\r\n$1\0\r\na\r\n"), A("GET a\0b\r\n") };
    size_t i;
    char *s;
    size_t len;

    for (i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
        resp_parser_t p;
        char *buf = copy_of(msgs[i].s, msgs[i].n);

        resp_parse_init(&p);
        p.authenticated = 1;
        assert_int_equal(resp_parse(&p, buf, msgs[i].n), RESP_AGAIN);
        assert_int_equal(p.need, msgs[i].n + 1);
        resp_parse_deinit(&p);
        mem_free(buf);
    }

    /* ...until more than 64 KB wait behind it (65537 bytes, the error comes with the last one) */
    s = make_long("*1", '\0', RESP_INLINE_MAX - 1, "", &len);
    check_error(s, len, "ERR Protocol error: too big mbulk count string", &AUTH);
    mem_free(s);
    s = make_long("*1\r\n$1", '\0', RESP_INLINE_MAX - 1, "", &len);
    check_error(s, len, "ERR Protocol error: too big bulk count string", &AUTH);
    mem_free(s);
    s = make_long("GET", '\0', RESP_INLINE_MAX - 2, "", &len);
    check_error(s, len, "ERR Protocol error: too big inline request", &AUTH);
    mem_free(s);
}

static void test_sticky_error(void **state)
{
    static const char bad[] = "*1\r\n$x\r\n";
    static const char good[] = "*1\r\n$4\r\nPING\r\n";
    resp_parser_t p;
    char *b = copy_of(MSG(bad)), *g = copy_of(MSG(good));
    const char *err;

    resp_parse_init(&p);
    p.authenticated = 1;
    assert_int_equal(resp_parse(&p, b, sizeof(bad) - 1), RESP_ERROR);
    err = p.err;
    assert_string_equal(err, E_BULK_LEN);

    /* more input, other input, resp_parse_next: still the same error */
    assert_int_equal(resp_parse(&p, g, sizeof(good) - 1), RESP_ERROR);
    assert_int_equal(resp_parse(&p, g, 0), RESP_ERROR);
    resp_parse_next(&p);
    assert_int_equal(resp_parse(&p, g, sizeof(good) - 1), RESP_ERROR);
    assert_ptr_equal(p.err, err);
    assert_string_equal(p.err, E_BULK_LEN);
    assert_int_equal(p.argc, 0);

    /* only a fresh start clears it */
    resp_parse_deinit(&p);
    resp_parse_init(&p);
    assert_int_equal(resp_parse(&p, g, sizeof(good) - 1), RESP_OK);
    assert_int_equal(p.argc, 1);
    resp_parse_deinit(&p);

    /* an error in the middle of a command drops the arguments already read */
    {
        static const char part[] = "*3\r\n$1\r\na\r\n$1\r\nb\r\n$x\r\n";
        char *q = copy_of(MSG(part));

        resp_parse_init(&p);
        p.authenticated = 1;
        assert_int_equal(resp_parse(&p, q, 18), RESP_AGAIN);
        assert_int_equal(p.argc, 2);
        assert_int_equal(resp_parse(&p, q, sizeof(part) - 1), RESP_ERROR);
        assert_string_equal(p.err, E_BULK_LEN);
        assert_int_equal(p.argc, 0);
        assert_int_equal(resp_parse(&p, q, sizeof(part) - 1), RESP_ERROR);
        resp_parse_deinit(&p);
        mem_free(q);
    }

    mem_free(b);
    mem_free(g);
}

static void test_unauthenticated_limits(void **state)
{
    char *s;
    size_t len;
    resp_parser_t p;

    /* 10 arguments are fine before AUTH, 11 are not */
    {
        static const char ten[] = "*10\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n"
                                  "$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n";
        cmd_t c = { sizeof(ten) - 1, 10, { A("a"), A("a"), A("a"), A("a"), A("a"),
                                           A("a"), A("a"), A("a"), A("a"), A("a") } };

        check_valid(MSG(ten), &c, 1, &UNAUTH);
    }
    check_error(MSG("*11\r\n"), "ERR Protocol error: unauthenticated multibulk length", &UNAUTH);
    check_error(MSG("*2147483647\r\n"), "ERR Protocol error: unauthenticated multibulk length", &UNAUTH);

    /* 16384-byte bulks are fine, 16385 are not */
    s = make_long("*1\r\n$16384\r\n", 'v', 16384, "\r\n", &len);
    {
        cmd_t c = { len, 1, { { s + 12, 16384 } } };

        check_valid(s, len, &c, 1, &UNAUTH);
    }
    mem_free(s);
    check_error(MSG("*1\r\n$16385\r\n"), "ERR Protocol error: unauthenticated bulk length", &UNAUTH);

    /* redis checks the absolute limits first */
    check_error(MSG("*2147483648\r\n"), E_MB_LEN, &UNAUTH);
    check_error(MSG("*1\r\n$600000000\r\n"), E_BULK_LEN, &UNAUTH);
    check_error(MSG("*1\r\n$-1\r\n"), E_BULK_LEN, &UNAUTH);

    /* once authenticated, both are fine */
    s = copy_of(MSG("*11\r\n$16385\r\n"));
    resp_parse_init(&p);
    p.authenticated = 1;
    assert_int_equal(resp_parse(&p, s, 13), RESP_AGAIN);
    assert_int_equal(p.need, 13 + 16385 + 2);
    resp_parse_deinit(&p);
    mem_free(s);

    /* redis has no pre-AUTH limit on inline commands */
    s = copy_of(MSG("a b c d e f g h i j k l\r\n"));
    resp_parse_init(&p);
    assert_int_equal(resp_parse(&p, s, 25), RESP_OK);
    assert_int_equal(p.argc, 12);
    resp_parse_deinit(&p);
    mem_free(s);
}

static void test_max_bulk_len(void **state)
{
    static const char ok[] = "*1\r\n$10\r\n0123456789\r\n";
    cmd_t c = { sizeof(ok) - 1, 1, { A("0123456789") } };
    const limits_t lim = { 10, 0, 1 };

    check_valid(MSG(ok), &c, 1, &lim);
    check_error(MSG("*1\r\n$11\r\n"), E_BULK_LEN, &lim);
    /* the default is redis's 512 MB */
    check_error(MSG("*1\r\n$536870913\r\n"), E_BULK_LEN, &AUTH);
}

static void test_max_args(void **state)
{
    static const char ok[] = "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n";
    cmd_t c = { sizeof(ok) - 1, 3, { A("a"), A("b"), A("c") } };
    const limits_t lim = { 0, 3, 1 };

    check_valid(MSG(ok), &c, 1, &lim);
    check_error(MSG("*4\r\n"), E_MB_LEN, &lim);
    /* the count still counts as invalid before the pre-AUTH check */
    {
        const limits_t lim_unauth = { 0, 3, 0 };

        check_error(MSG("*11\r\n"), E_MB_LEN, &lim_unauth);
    }
}

/* ---------------------------------------------------------------------------------------------------
 * Big inputs: need, no rescanning, no allocation for announced sizes
 * ------------------------------------------------------------------------------------------------- */

static void test_need_large_bulk(void **state)
{
    static const char msg[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1000000\r\nabc";
    resp_parser_t p;
    char *buf = copy_of(MSG(msg));
    size_t hdr = sizeof(msg) - 1 - 3;   /* offset of the payload */

    resp_parse_init(&p);
    p.authenticated = 1;
    assert_int_equal(resp_parse(&p, buf, hdr - 1), RESP_AGAIN);     /* '\n' of "$1000000\r\n" missing */
    assert_int_equal(p.need, hdr);
    assert_int_equal(resp_parse(&p, buf, hdr), RESP_AGAIN);
    assert_int_equal(p.need, hdr + 1000000 + 2);
    assert_int_equal(resp_parse(&p, buf, sizeof(msg) - 1), RESP_AGAIN);
    assert_int_equal(p.need, hdr + 1000000 + 2);
    /* the two arguments already read are not allocated per byte of the big one */
    assert_true(p.argv_cap <= 16);
    resp_parse_deinit(&p);
    mem_free(buf);
}

/*
 * A 512 MB bulk arriving 64 KB at a time. The payload pages are mapped PROT_NONE, so the test crashes if
 * the parser reads a single payload byte: each call costs O(1), not a rescan. Only the header page and
 * the page with the trailing "\r\n" and a following command are readable; nothing is allocated.
 */
static void test_huge_bulk_streamed(void **state)
{
    static const char head[] = "*2\r\n$3\r\nSET\r\n$536870912\r\n";
    static const char tail[] = "\r\n*1\r\n$4\r\nPING\r\n";
    const size_t bulk = 536870912, chunk = 64 * 1024;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t hlen = sizeof(head) - 1, map_len = page + bulk + page, total, have, calls = 0;
    char *map, *buf;
    resp_parser_t p;

    map = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    assert_true(map != MAP_FAILED);
    buf = map + page - hlen;
    memcpy(buf, head, hlen);
    memcpy(map + page + bulk, tail, sizeof(tail) - 1);
    assert_int_equal(mprotect(map + page, bulk, PROT_NONE), 0);
    total = hlen + bulk + sizeof(tail) - 1;

    resp_parse_init(&p);
    p.authenticated = 1;
    for (have = 0; have < hlen + bulk + 2; have += chunk) {
        assert_int_equal(resp_parse(&p, buf, have), RESP_AGAIN);
        if (have >= hlen)
            assert_int_equal(p.need, hlen + bulk + 2);
        calls++;
    }
    assert_true(calls >= bulk / chunk);
    assert_int_equal(resp_parse(&p, buf, total), RESP_OK);
    assert_int_equal(p.argc, 2);
    assert_int_equal(p.argv[1].off, hlen);
    assert_int_equal(p.argv[1].len, bulk);
    assert_int_equal(p.consumed, hlen + bulk + 2);

    /* and the next command, right after it */
    resp_parse_next(&p);
    assert_int_equal(resp_parse(&p, buf + hlen + bulk + 2, total - (hlen + bulk + 2)), RESP_OK);
    assert_int_equal(p.argc, 1);
    assert_int_equal(p.argv[0].len, 4);
    resp_parse_deinit(&p);
    assert_int_equal(munmap(map, map_len), 0);
}

/* Lines arriving a byte at a time are searched from where the last call stopped. */
static void test_lines_resume(void **state)
{
    char *s;
    size_t len, have;
    resp_parser_t p;

    s = make_long("SET k ", 'v', 60000, "\r\n", &len);
    resp_parse_init(&p);
    for (have = 1; have < len; have++) {
        assert_int_equal(resp_parse(&p, s, have), RESP_AGAIN);
        assert_int_equal(p.pos, have);          /* examined up to here, and no further */
        assert_int_equal(p.need, have + 1);
    }
    assert_int_equal(resp_parse(&p, s, len), RESP_OK);
    assert_int_equal(p.argc, 3);
    assert_int_equal(p.argv[2].len, 60000);
    resp_parse_deinit(&p);
    mem_free(s);

    s = make_long("*1\r\n$", '9', 60000, "\r\n", &len);
    resp_parse_init(&p);
    p.authenticated = 1;
    for (have = 5; have < len - 1; have++) {
        assert_int_equal(resp_parse(&p, s, have), RESP_AGAIN);
        assert_int_equal(p.pos, have);
    }
    assert_int_equal(resp_parse(&p, s, len), RESP_ERROR);
    assert_string_equal(p.err, E_BULK_LEN);
    resp_parse_deinit(&p);
    mem_free(s);
}

/*
 * A probe for "examined bytes are not examined again": between two calls the test plants a line end in
 * bytes the parser has already searched (which the contract forbids a caller to do). A parser that
 * resumes does not see it; one that searched from the start of the line again would.
 */
static void test_examined_bytes_not_rescanned(void **state)
{
    resp_parser_t p;
    char buf[32];

    /* inline: "ECHO aaaaaaa", then a '\n' planted at 6 */
    memcpy(buf, "ECHO aaaaaaa\n", 13);
    resp_parse_init(&p);
    assert_int_equal(resp_parse(&p, buf, 12), RESP_AGAIN);
    buf[6] = '\n';
    assert_int_equal(resp_parse(&p, buf, 12), RESP_AGAIN);
    buf[6] = 'a';
    assert_int_equal(resp_parse(&p, buf, 13), RESP_OK);
    assert_int_equal(p.argc, 2);
    assert_int_equal(p.argv[1].len, 7);
    resp_parse_deinit(&p);

    /* "*N" line: "*1234", then "\r\n" planted after "*1" */
    memcpy(buf, "*1234\r\n", 7);
    resp_parse_init(&p);
    p.authenticated = 1;
    assert_int_equal(resp_parse(&p, buf, 5), RESP_AGAIN);
    memcpy(buf + 2, "\r\n", 2);
    assert_int_equal(resp_parse(&p, buf, 5), RESP_AGAIN);
    memcpy(buf + 2, "23", 2);
    assert_int_equal(resp_parse(&p, buf, 7), RESP_AGAIN);
    assert_int_equal(p.multibulk_left, 1234);
    resp_parse_deinit(&p);

    /* "$N" line: "*1\r\n$1234", then "\r\n" planted after "$1" */
    memcpy(buf, "*1\r\n$1234\r\n", 11);
    resp_parse_init(&p);
    p.authenticated = 1;
    assert_int_equal(resp_parse(&p, buf, 9), RESP_AGAIN);
    memcpy(buf + 6, "\r\n", 2);
    assert_int_equal(resp_parse(&p, buf, 9), RESP_AGAIN);
    memcpy(buf + 6, "23", 2);
    assert_int_equal(resp_parse(&p, buf, 11), RESP_AGAIN);
    assert_int_equal(p.need, 11 + 1234 + 2);
    resp_parse_deinit(&p);
}

static void test_huge_counts_do_not_allocate(void **state)
{
    static const char *const bad[] = {
        "*2147483648\r\n$1\r\na\r\n",                       /* 2^31 arguments */
        "*1\r\n$1099511627776\r\n",                         /* a 2^40-byte bulk */
        "*4294967296\r\n",
    };
    static const char max[] = "*2147483647\r\n$1\r\na\r\n$1\r\nb\r\n";
    resp_parser_t p;
    size_t i;
    char *buf;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        buf = copy_of(bad[i], strlen(bad[i]));
        resp_parse_init(&p);
        p.authenticated = 1;
        assert_int_equal(resp_parse(&p, buf, strlen(bad[i])), RESP_ERROR);
        assert_null(p.argv);
        assert_int_equal(p.argv_cap, 0);
        resp_parse_deinit(&p);
        mem_free(buf);
    }

    /* INT_MAX is a valid count: the header allocates nothing, arguments grow argv modestly */
    buf = copy_of(MSG(max));
    resp_parse_init(&p);
    p.authenticated = 1;
    assert_int_equal(resp_parse(&p, buf, 13), RESP_AGAIN);
    assert_null(p.argv);
    assert_int_equal(resp_parse(&p, buf, sizeof(max) - 1), RESP_AGAIN);
    assert_int_equal(p.argc, 2);
    assert_true(p.argv_cap >= 2 && p.argv_cap <= 16);
    assert_int_equal(p.multibulk_left, 2147483645LL);
    resp_parse_deinit(&p);
    mem_free(buf);
}

static void test_argv_growth(void **state)
{
    resp_parser_t p;
    char *buf, *w;
    size_t i, n;

    /* 100 arguments: 16, 32, 64, then exactly 100 (never more than the count) */
    buf = mem_alloc(16 + 100 * 7);
    w = buf + sprintf(buf, "*100\r\n");
    for (i = 0; i < 100; i++)
        w += sprintf(w, "$1\r\n%c\r\n", (int)('a' + i % 26));
    n = (size_t)(w - buf);
    resp_parse_init(&p);
    p.authenticated = 1;
    assert_int_equal(resp_parse(&p, buf, n), RESP_OK);
    assert_int_equal(p.argc, 100);
    assert_int_equal(p.argv_cap, 100);
    for (i = 0; i < 100; i++) {
        assert_int_equal(p.argv[i].len, 1);
        assert_int_equal(buf[p.argv[i].off], 'a' + i % 26);
    }
    /* kept for the next command */
    resp_parse_next(&p);
    assert_non_null(p.argv);
    assert_int_equal(p.argv_cap, 100);
    resp_parse_deinit(&p);
    mem_free(buf);

    /* a very wide command's argv is given back afterwards */
    buf = mem_alloc(16 + 5000 * 7);
    w = buf + sprintf(buf, "*5000\r\n");
    for (i = 0; i < 5000; i++)
        w += sprintf(w, "$1\r\nx\r\n");
    n = (size_t)(w - buf);
    resp_parse_init(&p);
    p.authenticated = 1;
    assert_int_equal(resp_parse(&p, buf, n), RESP_OK);
    assert_int_equal(p.argc, 5000);
    assert_int_equal(p.argv_cap, 5000);
    resp_parse_next(&p);
    assert_null(p.argv);
    assert_int_equal(p.argv_cap, 0);
    resp_parse_deinit(&p);
    mem_free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_defaults),
        cmocka_unit_test(test_multibulk),
        cmocka_unit_test(test_multibulk_long_payloads),
        cmocka_unit_test(test_empty_bulk),
        cmocka_unit_test(test_binary_bulk),
        cmocka_unit_test(test_inline),
        cmocka_unit_test(test_inline_quoted),
        cmocka_unit_test(test_inline_split_quirks),
        cmocka_unit_test(test_empty_commands),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_pipelined_offsets),
        cmocka_unit_test(test_limits_survive_next),
        cmocka_unit_test(test_crlf_bytes_not_checked),
        cmocka_unit_test(test_bad_multibulk_count),
        cmocka_unit_test(test_bad_bulk_length),
        cmocka_unit_test(test_expected_dollar),
        cmocka_unit_test(test_too_big_lines),
        cmocka_unit_test(test_unbalanced_quotes),
        cmocka_unit_test(test_nul_hides_line_end),
        cmocka_unit_test(test_sticky_error),
        cmocka_unit_test(test_unauthenticated_limits),
        cmocka_unit_test(test_max_bulk_len),
        cmocka_unit_test(test_max_args),
        cmocka_unit_test(test_need_large_bulk),
        cmocka_unit_test(test_huge_bulk_streamed),
        cmocka_unit_test(test_lines_resume),
        cmocka_unit_test(test_examined_bytes_not_rescanned),
        cmocka_unit_test(test_huge_counts_do_not_allocate),
        cmocka_unit_test(test_argv_growth),
    };

    return cmocka_run_group_tests_name("resp_parse", tests, NULL, NULL);
}
