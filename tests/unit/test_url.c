/* url: cachetory's URL forms, and the errors for malformed ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "url.h"
#include "util/mem.h"

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

static void check_redact(const char *in, const char *want)
{
    char *r = url_redact(in);
    assert_string_equal(r, want);
    mem_free(r);
}

/* Every password in a text is hidden, however malformed the URL around it; nothing else changes. */
static void test_redact(void **state)
{
    check_redact("redis://app:S3cret@127.0.0.1:6379/0", "redis://app:***@127.0.0.1:6379/0");
    check_redact("redis://:pw@h", "redis://:***@h");
    check_redact("redis://:@h", "redis://:***@h");
    check_redact("redis://user@h:1/2", "redis://user@h:1/2");
    check_redact("redis://h:6379/0", "redis://h:6379/0");
    check_redact("memory://", "memory://");
    check_redact("zstd://?compression-level=3", "zstd://?compression-level=3");
    check_redact("", "");
    check_redact("no url here: a:b@c", "no url here: a:b@c");
    /* a password with '@', '/', '?' or '://' in it, unescaped: the URL does not parse, and is hidden all the same */
    check_redact("redis://u:p@ss@h", "redis://u:***@h");
    check_redact("redis://u:pa/ss@h:1/0", "redis://u:***@h:1/0");
    check_redact("redis://u:p?w@h", "redis://u:***@h");
    check_redact("redis://u:a://b@h", "redis://u:***@h");
    check_redact("redis://u:p%40ss@h", "redis://u:***@h");
    /* in messages: each URL, up to a quote or a space */
    check_redact("backend 'redis://a:x@h:70000/0': the port must be a number", "backend 'redis://a:***@h:70000/0': the port must be a number");
    check_redact("from 'redis://a:x@h/0' to \"redis://b:yy@k/1\" now", "from 'redis://a:***@h/0' to \"redis://b:***@k/1\" now");
    check_redact("redis://a:x@h redis://c@d redis://e:f@g", "redis://a:***@h redis://c@d redis://e:***@g");

    char small[16] = "redis://u:p@h:1";
    url_redact_in(small, sizeof(small));
    assert_string_equal(small, "redis://u:***@h");  /* cut to fit, never the password */
    char buf[64] = "x redis://u:longpassword@h y";
    url_redact_in(buf, sizeof(buf));
    assert_string_equal(buf, "x redis://u:***@h y");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serializer_urls),
        cmocka_unit_test(test_redis_urls),
        cmocka_unit_test(test_bad_urls),
        cmocka_unit_test(test_last_param_wins),
        cmocka_unit_test(test_redact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
