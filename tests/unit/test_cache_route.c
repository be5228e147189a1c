/*
 * Unit tests for src/cache/cache_route.c (longest-prefix routing of keys to named caches).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cache/cache_route.h"

static bytes_t B(const char *s)
{
    return (bytes_t){ s, strlen(s) };
}

static int find(const cache_route_t *r, const char *key)
{
    return cache_route_find(r, key, strlen(key));
}

static void test_longest_prefix_wins(void **state)
{
    cache_route_entry_t e[] = { { B("doc:"), 1 }, { B("doc:big:"), 2 }, { B("sess:"), 3 }, { B("d"), 4 } };
    int a = -9, b = -9;
    cache_route_t *r = cache_route_create(e, 4, &a, &b);

    assert_non_null(r);
    assert_int_equal(find(r, "doc:1"), 1);
    assert_int_equal(find(r, "doc:big:1"), 2);
    assert_int_equal(find(r, "doc:big:"), 2);
    assert_int_equal(find(r, "doc:bi"), 1);
    assert_int_equal(find(r, "doc"), 4);
    assert_int_equal(find(r, "d"), 4);
    assert_int_equal(find(r, "sess:x"), 3);
    assert_int_equal(find(r, "sess"), -1);
    assert_int_equal(find(r, "other"), -1);
    assert_int_equal(find(r, ""), -1);
    assert_int_equal(cache_route_find(NULL, "doc:1", 5), -1);
    cache_route_destroy(r);
}

/* byte-wise: binary prefixes and keys, bytes >= 0x80, case matters */
static void test_binary_bytes(void **state)
{
    cache_route_entry_t e[] = { { { "\xff\x00", 2 }, 7 }, { { "\xff", 1 }, 8 }, { B("A"), 9 } };
    int a, b;
    cache_route_t *r = cache_route_create(e, 3, &a, &b);

    assert_non_null(r);
    assert_int_equal(cache_route_find(r, "\xff\x00z", 3), 7);
    assert_int_equal(cache_route_find(r, "\xff\x01", 2), 8);
    assert_int_equal(cache_route_find(r, "a", 1), -1);
    assert_int_equal(cache_route_find(r, "Ab", 2), 9);
    cache_route_destroy(r);
}

static void test_duplicate_and_empty_refused(void **state)
{
    cache_route_entry_t e[] = { { B("x:"), 0 }, { B("y:"), 1 }, { B("x:"), 2 } };
    int a = -9, b = -9;

    assert_null(cache_route_create(e, 3, &a, &b));
    assert_int_equal(a, 0);
    assert_int_equal(b, 2);
    cache_route_entry_t z[] = { { B("x:"), 0 }, { B(""), 5 } };
    assert_null(cache_route_create(z, 2, &a, &b));
    assert_int_equal(a, 5);
    assert_int_equal(b, 5);
}

static void test_empty_table(void **state)
{
    int a, b;
    cache_route_t *r = cache_route_create(NULL, 0, &a, &b);

    assert_non_null(r);
    assert_int_equal(find(r, "anything"), -1);
    cache_route_destroy(r);
}

/* many prefixes: every key finds the longest one, as a linear scan does */
static void test_against_linear_scan(void **state)
{
    enum { N = 300 };
    char text[N][8];
    cache_route_entry_t e[N];
    int a, b;

    srand(7);
    for (int i = 0; i < N; i++) {
        int len = 1 + i % 5;
        for (int j = 0; j < len; j++)
            text[i][j] = (char)('a' + (i * 7 + j * 3) % 3 + (j == 0 ? i % 2 : 0));
        /* make them unique: the last byte carries i */
        text[i][len] = (char)('0' + i % 10);
        text[i][len + 1] = (char)('0' + i / 10 % 10);
        text[i][len + 2] = (char)('0' + i / 100);
        e[i] = (cache_route_entry_t){ { text[i], (size_t)len + 3 }, i };
    }
    cache_route_t *r = cache_route_create(e, N, &a, &b);
    assert_non_null(r);
    for (int t = 0; t < 5000; t++) {
        char key[12];
        size_t klen = (size_t)(rand() % 11);
        for (size_t j = 0; j < klen; j++)
            key[j] = "abcd0123"[rand() % 8];
        if (t % 3 == 0) {       /* often a key that starts with one of the prefixes */
            const cache_route_entry_t *p = &e[rand() % N];
            klen = p->prefix.len + (size_t)(rand() % 3);
            memcpy(key, p->prefix.ptr, p->prefix.len);
        }
        int want = -1;
        size_t best = 0;
        for (int i = 0; i < N; i++)
            if (e[i].prefix.len <= klen && e[i].prefix.len > best && memcmp(e[i].prefix.ptr, key, e[i].prefix.len) == 0) {
                best = e[i].prefix.len;
                want = e[i].id;
            }
        assert_int_equal(cache_route_find(r, key, klen), want);
    }
    cache_route_destroy(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_longest_prefix_wins),
        cmocka_unit_test(test_binary_bytes),
        cmocka_unit_test(test_duplicate_and_empty_refused),
        cmocka_unit_test(test_empty_table),
        cmocka_unit_test(test_against_linear_scan),
    };
    return cmocka_run_group_tests_name("cache_route", tests, NULL, NULL);
}
