/* url: cachetory's URL forms, and the errors for malformed ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "url.h"

static void test_serializer_urls(void **state)
{
    url_t u;
    char err[256];

    assert_int_equal(url_parse(&u, "msgpack+zstd://?compression-level=3", err, sizeof(err)), 0);
    assert_string_equal(u.scheme, "msgpack+zstd");
    assert_string_equal(u.host, "");
    assert_int_equal(u.port, -1);
    assert_string_equal(u.path, "");
    assert_int_equal(u.nparams, 1);
    assert_string_equal(url_param(&u, "compression-level"), "3");
    assert_null(url_unused_param(&u));
    url_free(&u);

    assert_int_equal(url_parse(&u, "NULL://", err, sizeof(err)), 0);
    assert_string_equal(u.scheme, "null");
    assert_int_equal(u.nparams, 0);
    url_free(&u);
}

static void test_redis_urls(void **state)
{
    url_t u;
    char err[256];

    assert_int_equal(url_parse(&u, "redis://user:p%40ss@example.org:6379/2?a=1&b", err, sizeof(err)), 0);
    assert_string_equal(u.scheme, "redis");
    assert_string_equal(u.user, "user");
    assert_string_equal(u.password, "p@ss");
    assert_string_equal(u.host, "example.org");
    assert_int_equal(u.port, 6379);
    assert_string_equal(u.path, "/2");
    assert_string_equal(url_param(&u, "b"), "");
    assert_non_null(url_unused_param(&u));
    assert_string_equal(url_unused_param(&u)->name, "a");
    url_free(&u);

    assert_int_equal(url_parse(&u, "redis://:secret@127.0.0.1", err, sizeof(err)), 0);
    assert_null(u.user);
    assert_string_equal(u.password, "secret");
    assert_int_equal(u.port, -1);
    url_free(&u);

    assert_int_equal(url_parse(&u, "redis+unix:///run/redis/redis.sock?db=3", err, sizeof(err)), 0);
    assert_string_equal(u.scheme, "redis+unix");
    assert_string_equal(u.host, "");
    assert_string_equal(u.path, "/run/redis/redis.sock");
    assert_string_equal(url_param(&u, "db"), "3");
    url_free(&u);

    assert_int_equal(url_parse(&u, "redis://[::1]:7000/0", err, sizeof(err)), 0);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 7000);
    url_free(&u);
}

static void test_bad_urls(void **state)
{
    static const char *const bad[] = {
        "zstd", "://x", "redis://host:99999", "redis://host:12ab", "redis://[::1", "redis://host:",
        "zs td://", "zstd://?%zz=1", "zstd://?a=%0", "zstd://?=1", "redis://u%00:p@h",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        url_t u;
        char err[256] = "";
        assert_int_equal(url_parse(&u, bad[i], err, sizeof(err)), -1);
        assert_true(strlen(err) > 0);
        url_free(&u);
    }
}

static void test_last_param_wins(void **state)
{
    url_t u;
    char err[256];
    assert_int_equal(url_parse(&u, "zlib://?compression-level=1&compression-level=9", err, sizeof(err)), 0);
    assert_string_equal(url_param(&u, "compression-level"), "9");
    assert_string_equal(url_param(&u, "missing") ? "x" : "none", "none");
    url_free(&u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serializer_urls),
        cmocka_unit_test(test_redis_urls),
        cmocka_unit_test(test_bad_urls),
        cmocka_unit_test(test_last_param_wins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
