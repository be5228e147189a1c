/*
 * Unit tests for resp/frame: where a RESP2 / RESP3 reply ends.
 *
 * Every valid reply is scanned in one piece, as every growing prefix on one framer (RESP_FRAME_AGAIN until
 * the last byte, then RESP_FRAME_DONE at exactly its length), and followed by a second reply (the first
 * ends where it ends). Inputs are copied into blocks of exactly the length given, so AddressSanitizer
 * catches a read past it. Malformed replies are refused, and stay refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp/frame.h"

#define BLOB_MAX (512LL * 1024 * 1024)
#define COUNT_MAX (1LL << 31)

/* Replies as Redis 7 sends them (HELLO 3 for the RESP3 ones), and corner cases of the grammar. */
static const char *const valid[] = {
    "+OK\r\n",
    "-ERR unknown command 'x'\r\n",
    ":0\r\n",
    ":-9223372036854775\r\n",
    "$5\r\nhello\r\n",
    "$0\r\n\r\n",
    "$-1\r\n",
    "$4\r\na\r\nb\r\n",                                 /* CR LF inside a blob */
    "*-1\r\n",
    "*0\r\n",
    "*2\r\n$1\r\na\r\n:1\r\n",
    "*3\r\n*1\r\n*1\r\n+x\r\n$-1\r\n*0\r\n",
    "_\r\n",
    ",3.14\r\n",
    ",inf\r\n",
    "#t\r\n",
    "#f\r\n",
    "(3492890328409238509324850943850943825024385\r\n",
    "!21\r\nSYNTAX invalid syntax\r\n",
    "=15\r\ntxt:Some string\r\n",
    "%2\r\n$5\r\nfield\r\n$5\r\nvalue\r\n$1\r\nf\r\n,1.5\r\n",  /* HGETALL-like map, a double value */
    "%0\r\n",
    "~3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n",                 /* SMEMBERS */
    "*2\r\n*2\r\n$1\r\na\r\n,1\r\n*2\r\n$1\r\nb\r\n,2\r\n",    /* ZRANGE WITHSCORES in RESP3 */
    ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n",           /* a pub/sub push */
    "|1\r\n+key-popularity\r\n*2\r\n:1\r\n:2\r\n*2\r\n:2039123\r\n:9543892\r\n",  /* attribute, then the value */
    "|0\r\n:5\r\n",
    "*2\r\n|1\r\n+a\r\n+b\r\n:1\r\n:2\r\n",                      /* an attribute inside an aggregate */
    "%1\r\n+server\r\n%2\r\n+a\r\n*1\r\n_\r\n+b\r\n~0\r\n",      /* nested map / set */
};

static char *dup_exact(const char *s, size_t n)
{
    char *p = malloc(n ? n : 1);
    memcpy(p, s, n);
    return p;
}

static void check_valid(const char *s)
{
    size_t n = strlen(s);
    resp_frame_t f;

    /* whole */
    char *b = dup_exact(s, n);
    resp_frame_init(&f, BLOB_MAX, COUNT_MAX);
    if (resp_frame_scan(&f, b, n) != RESP_FRAME_DONE)
        fail_msg("not whole: %s (%s)", s, f.err);
    assert_int_equal(f.pos, n);
    free(b);

    /* growing prefixes on one framer */
    resp_frame_init(&f, BLOB_MAX, COUNT_MAX);
    for (size_t k = 0; k < n; k++) {
        b = dup_exact(s, k);
        int rc = resp_frame_scan(&f, b, k);
        free(b);
        if (rc != RESP_FRAME_AGAIN)
            fail_msg("prefix %zu of %s: %d (%s)", k, s, rc, f.err);
        assert_true(f.pos <= k);
    }
    b = dup_exact(s, n);
    assert_int_equal(resp_frame_scan(&f, b, n), RESP_FRAME_DONE);
    assert_int_equal(f.pos, n);
    free(b);

    /* followed by another reply: ends where it ends, and the next one is found after it */
    char *two = malloc(2 * n + 5);
    memcpy(two, s, n);
    memcpy(two + n, ":42\r\n", 5);
    resp_frame_init(&f, BLOB_MAX, COUNT_MAX);
    assert_int_equal(resp_frame_scan(&f, two, n + 5), RESP_FRAME_DONE);
    assert_int_equal(f.pos, n);
    resp_frame_next(&f);
    assert_int_equal(resp_frame_scan(&f, two + n, 5), RESP_FRAME_DONE);
    assert_int_equal(f.pos, 5);
    free(two);
}

static void test_valid_replies(void **state)
{
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
        check_valid(valid[i]);
}

static void check_error(const char *s, size_t n, long long blob_max, long long count_max, const char *why)
{
    resp_frame_t f;
    char *b = dup_exact(s, n);
    resp_frame_init(&f, blob_max, count_max);
    int rc = resp_frame_scan(&f, b, n);
    if (rc != RESP_FRAME_ERROR)
        fail_msg("accepted (%d): %.*s", rc, (int)(n > 60 ? 60 : n), s);
    if (strstr(f.err, why) == NULL)
        fail_msg("%.*s: '%s', expected '%s'", (int)(n > 60 ? 60 : n), s, f.err, why);
    /* it sticks */
    assert_int_equal(resp_frame_scan(&f, b, n), RESP_FRAME_ERROR);
    resp_frame_next(&f);
    assert_int_equal(resp_frame_scan(&f, b, n), RESP_FRAME_ERROR);
    free(b);
}

static void test_malformed(void **state)
{
    check_error("?x\r\n", 4, BLOB_MAX, COUNT_MAX, "unknown reply type");
    check_error(":12a\r\n", 6, BLOB_MAX, COUNT_MAX, "integer");
    check_error("#x\r\n", 4, BLOB_MAX, COUNT_MAX, "boolean");
    check_error("$-2\r\n", 5, BLOB_MAX, COUNT_MAX, "blob length");
    check_error("!-1\r\n", 5, BLOB_MAX, COUNT_MAX, "blob length");
    check_error("$?\r\n", 4, BLOB_MAX, COUNT_MAX, "blob length");            /* streamed: never sent by Redis */
    check_error("*?\r\n", 4, BLOB_MAX, COUNT_MAX, "aggregate count");
    check_error("%-1\r\n", 5, BLOB_MAX, COUNT_MAX, "aggregate count");
    check_error("$3\r\nabcXY", 9, BLOB_MAX, COUNT_MAX, "CRLF");
    check_error("+a\rb\r\n", 6, BLOB_MAX, COUNT_MAX, "no LF");
    check_error("$100\r\n", 6, 99, COUNT_MAX, "longer than allowed");
    check_error("*100\r\n", 6, BLOB_MAX, 99, "more elements");
    check_error("*99999999999999999999\r\n", 23, BLOB_MAX, COUNT_MAX, "aggregate count");

    /* nesting: RESP_FRAME_DEPTH levels are fine, one more is not */
    char deep[(RESP_FRAME_DEPTH + 1) * 4 + 8];
    size_t n = 0;
    for (int i = 0; i < RESP_FRAME_DEPTH; i++) {
        memcpy(deep + n, "*1\r\n", 4);
        n += 4;
    }
    memcpy(deep + n, ":1\r\n", 4);
    resp_frame_t f;
    char *b = dup_exact(deep, n + 4);
    resp_frame_init(&f, BLOB_MAX, COUNT_MAX);
    assert_int_equal(resp_frame_scan(&f, b, n + 4), RESP_FRAME_DONE);
    free(b);
    memcpy(deep + n, "*1\r\n:1\r\n", 8);
    check_error(deep, n + 8, BLOB_MAX, COUNT_MAX, "nested too deep");

    /* a line that never ends is refused once it is too long to be one */
    size_t big = RESP_FRAME_LINE_MAX + 10;
    char *line = malloc(big);
    memset(line, 'a', big);
    line[0] = '+';
    resp_frame_init(&f, BLOB_MAX, COUNT_MAX);
    assert_int_equal(resp_frame_scan(&f, line, 100), RESP_FRAME_AGAIN);
    assert_int_equal(resp_frame_scan(&f, line, big), RESP_FRAME_ERROR);
    assert_non_null(strstr(f.err, "too long"));
    free(line);
}

/* A big blob arrives in pieces: the framer waits inside it without looking at its bytes again. */
static void test_blob_in_pieces(void **state)
{
    size_t payload = 1 << 20;
    char head[32];
    int hn = snprintf(head, sizeof(head), "$%zu\r\n", payload);
    size_t n = (size_t)hn + payload + 2;
    char *b = malloc(n);
    memcpy(b, head, (size_t)hn);
    memset(b + hn, 'x', payload);
    memcpy(b + hn + payload, "\r\n", 2);
    resp_frame_t f;
    resp_frame_init(&f, BLOB_MAX, COUNT_MAX);
    for (size_t k = 0; k < n; k += 4093) {
        assert_int_equal(resp_frame_scan(&f, b, k), RESP_FRAME_AGAIN);
        if (k >= (size_t)hn)
            assert_int_equal(f.pos, (size_t)hn);     /* past the header, not into the payload */
    }
    assert_int_equal(resp_frame_scan(&f, b, n - 1), RESP_FRAME_AGAIN);
    assert_int_equal(resp_frame_scan(&f, b, n), RESP_FRAME_DONE);
    assert_int_equal(f.pos, n);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_replies),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_blob_in_pieces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
