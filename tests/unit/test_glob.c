/*
 * Unit tests for src/util/glob.c: redis's glob syntax (KEYS, SCAN MATCH, CONFIG GET), with and without
 * nocase, binary bytes, patterns that blow up naive matchers, and every short pattern against an oracle
 * written as redis writes stringmatchlen.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/clock.h"
#include "util/glob.h"

/* ---- glob matching ------------------------------------------------------------------------------ */

static int m(const char *pat, const char *str)
{
    return glob_match(pat, strlen(pat), str, strlen(str), 0);
}

static int mi(const char *pat, const char *str)
{
    return glob_match(pat, strlen(pat), str, strlen(str), 1);
}

static void test_match_basic(void **state)
{
    (void)state;
    assert_true(m("*", "anything"));
    assert_true(m("*", ""));
    assert_true(m("", ""));
    assert_false(m("", "a"));
    assert_false(m("?", ""));
    assert_true(m("hello", "hello"));
    assert_false(m("hello", "hell"));
    assert_false(m("hell", "hello"));
    assert_true(m("h?llo", "hello"));
    assert_false(m("h?llo", "hllo"));
    assert_true(m("h*llo", "hllo"));
    assert_true(m("h*llo", "heeeeello"));
    assert_false(m("h*llo", "heeeeellox"));
    assert_true(m("a*", "a"));
    assert_false(m("a*b", "a"));
    assert_false(m("*a", ""));
    assert_true(m("*a*", "bab"));
    assert_true(m("**a**", "a"));
    assert_true(m("*?", "a"));
    assert_false(m("*?", ""));
    assert_true(m("user:*:name", "user:1234:name"));
    assert_false(m("user:*:name", "user:1234:email"));
}

static void test_match_classes(void **state)
{
    (void)state;
    assert_true(m("h[ae]llo", "hello"));
    assert_true(m("h[ae]llo", "hallo"));
    assert_false(m("h[ae]llo", "hillo"));
    assert_true(m("h[^e]llo", "hallo"));
    assert_false(m("h[^e]llo", "hello"));
    assert_true(m("h[a-b]llo", "hbllo"));
    assert_false(m("h[a-b]llo", "hcllo"));
    assert_true(m("[z-a]", "m"));                      /* reversed range */
    assert_false(m("[z-a]", "A"));
    assert_true(m("[\\]]", "]"));                      /* escaped ] in a class */
    assert_true(m("[\\-]", "-"));
    assert_false(m("[\\-]", "\\"));
    assert_true(m("[a-]", "]"));                       /* redis: "a-]" is the range ]..a */
    assert_true(m("[abc", "b"));                       /* unterminated class runs to the end */
    assert_false(m("[abc", "d"));
    assert_false(m("ab[", "abx"));
    assert_false(m("ab[", "ab"));
    assert_true(m("[]", "x") == 0);
}

static void test_match_escapes_and_case(void **state)
{
    (void)state;
    assert_true(m("h\\*llo", "h*llo"));
    assert_false(m("h\\*llo", "hello"));
    assert_true(m("\\?", "?"));
    assert_false(m("\\?", "a"));
    assert_true(m("a\\", "a\\"));                      /* trailing backslash is literal */
    assert_true(mi("HELLO", "hello"));
    assert_false(m("HELLO", "hello"));
    assert_true(mi("h[A-Z]llo", "hello"));
    assert_true(mi("h[E]llo", "hello"));
    assert_false(m("h[E]llo", "hello"));
    assert_true(mi("*O", "hello"));
    /* Binary bytes, including NUL and bytes >= 0x80. */
    assert_true(glob_match("a\0*", 3, "a\0bc", 4, 0));
    assert_false(glob_match("a\0*", 3, "a\1bc", 4, 0));
    assert_true(glob_match("[\x80-\xff]", 5, "\xc3", 1, 0));
    assert_false(glob_match("[\x80-\xff]", 5, "a", 1, 0));
}

/* Patterns that blow up naive backtracking or recursion finish fast. */
static void test_match_pathological(void **state)
{
    (void)state;
    size_t n = 20000;
    char *str = malloc(n + 2), *pat = malloc(n * 2 + 2);
    long long t = clock_us_monotonic();

    memset(str, 'a', n);
    str[n] = '\0';
    size_t p = 0;
    for (int i = 0; i < 60; i++) {
        pat[p++] = 'a';
        pat[p++] = '*';
    }
    pat[p++] = 'b';
    assert_false(glob_match(pat, p, str, n, 0));
    str[n] = 'b';
    assert_true(glob_match(pat, p, str, n + 1, 0));

    /* 40000 stars: no recursion, no stack to exhaust. */
    memset(pat, '*', 2 * n);
    assert_true(glob_match(pat, 2 * n, str, n + 1, 0));
    pat[2 * n] = 'c';
    assert_false(glob_match(pat, 2 * n + 1, str, n + 1, 0));

    /* "*?*?*?..." against a long string. */
    for (size_t i = 0; i < 2000; i++)
        pat[i] = i % 2 ? '?' : '*';
    assert_true(glob_match(pat, 2000, str, n + 1, 0));
    assert_false(glob_match(pat, 2000, str, 999, 0));

    assert_true(clock_us_monotonic() - t < 5 * 1000000);
    free(str);
    free(pat);
}

/*
 * Oracle: redis's stringmatchlen algorithm written recursively (as redis does it, over NUL-terminated
 * buffers), used to check glob_match on every pattern and string over small alphabets.
 */
static int oracle(const char *p, int plen, const char *s, int slen)
{
    while (plen && slen) {
        switch (p[0]) {
        case '*':
            while (plen > 1 && p[1] == '*') {
                p++;
                plen--;
            }
            if (plen == 1)
                return 1;
            while (slen) {
                if (oracle(p + 1, plen - 1, s, slen))
                    return 1;
                s++;
                slen--;
            }
            return 0;
        case '?':
            break;
        case '[': {
            int neg, match = 0;
            p++;
            plen--;
            neg = plen > 0 && p[0] == '^';
            if (neg) {
                p++;
                plen--;
            }
            for (;;) {
                if (plen == 0) {
                    p--;
                    plen++;
                    break;
                }
                if (p[0] == '\\' && plen >= 2) {
                    p++;
                    plen--;
                    if (p[0] == s[0])
                        match = 1;
                } else if (p[0] == ']') {
                    break;
                } else if (plen >= 3 && p[1] == '-') {
                    int a = (unsigned char)p[0], b = (unsigned char)p[2], c = (unsigned char)s[0];
                    if (a > b) {
                        int t = a;
                        a = b;
                        b = t;
                    }
                    if (c >= a && c <= b)
                        match = 1;
                    p += 2;
                    plen -= 2;
                } else if (p[0] == s[0]) {
                    match = 1;
                }
                p++;
                plen--;
            }
            if (neg)
                match = !match;
            if (!match)
                return 0;
            break;
        }
        case '\\':
            if (plen >= 2) {
                p++;
                plen--;
            }
            /* fall through */
        default:
            if (p[0] != s[0])
                return 0;
            break;
        }
        s++;
        slen--;
        p++;
        plen--;
        if (slen == 0) {
            while (plen && p[0] == '*') {
                p++;
                plen--;
            }
            break;
        }
    }
    return plen == 0 && slen == 0;
}

static void test_match_against_oracle(void **state)
{
    static const char palpha[] = "ab*?[]^-\\";
    static const char salpha[] = "ab-]";
    (void)state;
    char pat[8], str[8];
    unsigned long checked = 0;
    unsigned seed = 99;

    /* Every string of length 0..4 against many random patterns of length 0..7. */
    for (int pi = 0; pi < 30000; pi++) {
        seed = seed * 1103515245 + 12345;
        int plen = (int)((seed >> 16) % 8);
        for (int i = 0; i < plen; i++) {
            seed = seed * 1103515245 + 12345;
            pat[i] = palpha[(seed >> 16) % (sizeof(palpha) - 1)];
        }
        int allstars = 1;
        for (int i = 0; i < plen; i++)
            allstars &= pat[i] == '*';
        for (int slen = 0; slen <= 4; slen++) {
            int total = 1;
            for (int i = 0; i < slen; i++)
                total *= 4;
            for (int code = 0; code < total; code++) {
                int c = code;
                for (int i = 0; i < slen; i++) {
                    str[i] = salpha[c % 4];
                    c /= 4;
                }
                int want = oracle(pat, plen, str, slen);
                if (slen == 0 && allstars && plen > 0)
                    want = 1;       /* the documented difference */
                int got = glob_match(pat, (size_t)plen, str, (size_t)slen, 0);
                if (got != want) {
                    fprintf(stderr, "pattern '%.*s' string '%.*s': got %d, redis %d\n", plen, pat,
                            slen, str, got, want);
                    fail();
                }
                checked++;
            }
        }
    }
    assert_true(checked > 1000000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_basic),
        cmocka_unit_test(test_match_classes),
        cmocka_unit_test(test_match_escapes_and_case),
        cmocka_unit_test(test_match_pathological),
        cmocka_unit_test(test_match_against_oracle),
    };
    return cmocka_run_group_tests_name("glob", tests, NULL, NULL);
}
