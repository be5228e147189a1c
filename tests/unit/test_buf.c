/* buf: the growable buffer, and the number formatting that replies and upstream commands use. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "util/buf.h"

static void check_ll(long long v)
{
    char got[FMT_LL_MAX], want[32];
    size_t n = fmt_ll(got, v);
    int wn = snprintf(want, sizeof(want), "%lld", v);

    assert_int_equal(n, (size_t)wn);
    assert_memory_equal(got, want, n);
}

static void test_fmt_ll(void **state)
{
    long long edge[] = { 0, 1, -1, 9, 10, -10, 99, 100, 12345, -987654321, INT_MAX, INT_MIN,
                         (long long)INT_MAX + 1, LLONG_MAX, LLONG_MIN, LLONG_MIN + 1 };
    for (size_t i = 0; i < sizeof(edge) / sizeof(edge[0]); i++)
        check_ll(edge[i]);
    /* every power of ten and its neighbours, both signs */
    for (long long p = 1; p <= LLONG_MAX / 10; p *= 10) {
        for (long long d = -1; d <= 1; d++) {
            check_ll(p + d);
            check_ll(-(p + d));
        }
    }
}

static void test_append_header(void **state)
{
    buf_t b;
    buf_init(&b);
    buf_append_header(&b, '*', 3);
    buf_append_header(&b, '$', 0);
    buf_append_header(&b, ':', -42);
    buf_append_header(&b, '$', 1234567890123LL);
    const char want[] = "*3\r\n$0\r\n:-42\r\n$1234567890123\r\n";
    assert_int_equal(b.len, sizeof(want) - 1);
    assert_memory_equal(b.data, want, b.len);
    buf_deinit(&b);
}

static void test_append_and_consume(void **state)
{
    buf_t b;
    buf_init(&b);
    for (int i = 0; i < 1000; i++)
        buf_append(&b, "0123456789", 10);
    assert_int_equal(b.len, 10000);
    buf_consume(&b, 9995);
    assert_int_equal(b.len, 5);
    assert_memory_equal(b.data, "56789", 5);
    buf_printf(&b, "%s-%d", "x", 7);
    assert_int_equal(b.len, 8);
    assert_memory_equal(b.data, "56789x-7", 8);
    buf_deinit(&b);
    assert_int_equal(b.len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fmt_ll),
        cmocka_unit_test(test_append_header),
        cmocka_unit_test(test_append_and_consume),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
