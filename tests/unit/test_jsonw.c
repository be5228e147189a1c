/*
 * Unit tests for src/codec/jsonw.c: JSON text as Python's json.dumps writes it.
 *
 * The golden vectors were generated with Debian's /usr/bin/python3 (3.11): for strings
 * json.dumps(s) of s.encode('utf-8'); for bytes json.dumps(b.decode('latin-1')); for doubles
 * json.dumps(d) of the double with the given bit pattern; the invalid UTF-8 inputs are ones
 * bytes.decode('utf-8') refuses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>

#include <cmocka.h>

#include "codec/jsonw.h"

typedef struct vec {
    const char *in;
    size_t in_len;
    const char *out;
    size_t out_len;
} vec_t;

typedef struct raw {
    const char *in;
    size_t len;
} raw_t;

/* json.dumps(s) for UTF-8 strings s */
static const vec_t string_vectors[] = {
    { "", 0, "\"\"", 2 },
    { "hello", 5, "\"hello\"", 7 },
    { "a\"b", 3, "\"a\\\"b\"", 6 },
    { "back\\slash", 10, "\"back\\\\slash\"", 13 },
    { "\012\015\011\010\014", 5, "\"\\n\\r\\t\\b\\f\"", 12 },
    { "\000\001\037\177", 4, "\"\\u0000\\u0001\\u001f\\u007f\"", 26 },
    { " ~", 2, "\" ~\"", 4 },
    { "/", 1, "\"/\"", 3 },
    { "caf\303\251", 5, "\"caf\\u00e9\"", 11 },
    { "\303\277\304\200", 4, "\"\\u00ff\\u0100\"", 14 },
    { "\342\202\254", 3, "\"\\u20ac\"", 8 },
    { "\357\273\277", 3, "\"\\ufeff\"", 8 },
    { "\357\277\277", 3, "\"\\uffff\"", 8 },
    { "\360\237\230\200", 4, "\"\\ud83d\\ude00\"", 14 },
    { "\364\217\277\277", 4, "\"\\udbff\\udfff\"", 14 },
    { "\360\220\200\200", 4, "\"\\ud800\\udc00\"", 14 },
    { "mixed \303\251\360\237\230\200\"\\\000end", 18, "\"mixed \\u00e9\\ud83d\\ude00\\\"\\\\\\u0000end\"", 39 },
    { "\340\240\200", 3, "\"\\u0800\"", 8 },
    { "\355\237\277\356\200\200", 6, "\"\\ud7ff\\ue000\"", 14 },
    { "emoji \360\237\221\215\360\237\217\275", 14, "\"emoji \\ud83d\\udc4d\\ud83c\\udffd\"", 32 },
    { "tab\011here", 8, "\"tab\\there\"", 11 },
    { "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 40, "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"", 42 },
};

/* json.dumps(b.decode('latin-1')) */
static const vec_t latin1_vectors[] = {
    { "", 0, "\"\"", 2 },
    { "abc", 3, "\"abc\"", 5 },
    { "\000\377", 2, "\"\\u0000\\u00ff\"", 14 },
    { "\000\001\002\003\004\005\006\007\010\011\012\013\014\015\016\017\020\021\022\023\024\025\026\027\030\031\032\033\034\035\036\037 !\"#$%&'()*+,-./0123456789:;<=>\077@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~\177\200\201\202\203\204\205\206\207\210\211\212\213\214\215\216\217\220\221\222\223\224\225\226\227\230\231\232\233\234\235\236\237\240\241\242\243\244\245\246\247\250\251\252\253\254\255\256\257\260\261\262\263\264\265\266\267\270\271\272\273\274\275\276\277\300\301\302\303\304\305\306\307\310\311\312\313\314\315\316\317\320\321\322\323\324\325\326\327\330\331\332\333\334\335\336\337\340\341\342\343\344\345\346\347\350\351\352\353\354\355\356\357\360\361\362\363\364\365\366\367\370\371\372\373\374\375\376\377", 256, "\"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f !\\\"#$%&'()*+,-./0123456789:;<=>\077@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\\\]^_`abcdefghijklmnopqrstuvwxyz{|}~\\u007f\\u0080\\u0081\\u0082\\u0083\\u0084\\u0085\\u0086\\u0087\\u0088\\u0089\\u008a\\u008b\\u008c\\u008d\\u008e\\u008f\\u0090\\u0091\\u0092\\u0093\\u0094\\u0095\\u0096\\u0097\\u0098\\u0099\\u009a\\u009b\\u009c\\u009d\\u009e\\u009f\\u00a0\\u00a1\\u00a2\\u00a3\\u00a4\\u00a5\\u00a6\\u00a7\\u00a8\\u00a9\\u00aa\\u00ab\\u00ac\\u00ad\\u00ae\\u00af\\u00b0\\u00b1\\u00b2\\u00b3\\u00b4\\u00b5\\u00b6\\u00b7\\u00b8\\u00b9\\u00ba\\u00bb\\u00bc\\u00bd\\u00be\\u00bf\\u00c0\\u00c1\\u00c2\\u00c3\\u00c4\\u00c5\\u00c6\\u00c7\\u00c8\\u00c9\\u00ca\\u00cb\\u00cc\\u00cd\\u00ce\\u00cf\\u00d0\\u00d1\\u00d2\\u00d3\\u00d4\\u00d5\\u00d6\\u00d7\\u00d8\\u00d9\\u00da\\u00db\\u00dc\\u00dd\\u00de\\u00df\\u00e0\\u00e1\\u00e2\\u00e3\\u00e4\\u00e5\\u00e6\\u00e7\\u00e8\\u00e9\\u00ea\\u00eb\\u00ec\\u00ed\\u00ee\\u00ef\\u00f0\\u00f1\\u00f2\\u00f3\\u00f4\\u00f5\\u00f6\\u00f7\\u00f8\\u00f9\\u00fa\\u00fb\\u00fc\\u00fd\\u00fe\\u00ff\"", 1045 },
    { "\"\\", 2, "\"\\\"\\\\\"", 6 },
    { "\303\251", 2, "\"\\u00c3\\u00a9\"", 14 },
};

/* bytes that bytes.decode('utf-8') refuses */
static const raw_t bad_utf8[] = {
    { "\377", 1 },
    { "\300\200", 2 },
    { "\301\277", 2 },
    { "\355\240\200", 3 },
    { "\355\277\277", 3 },
    { "\364\220\200\200", 4 },
    { "\365\200\200\200", 4 },
    { "\340\237\277", 3 },
    { "\360\217\277\277", 4 },
    { "\303", 1 },
    { "\342\202", 2 },
    { "\360\237\230", 3 },
    { "\200", 1 },
    { "abc\303(", 5 },
    { "\376", 1 },
    { "ok\342(\241", 5 },
};

/* json.dumps(d) for the double with these bits */
static const struct {
    uint64_t bits;
    const char *text;
} double_vectors[] = {
    { 0x0000000000000000ULL, "0.0" },  /* 0.0 */
    { 0x8000000000000000ULL, "-0.0" },  /* -0.0 */
    { 0x3fb999999999999aULL, "0.1" },  /* 0.1 */
    { 0x3fc999999999999aULL, "0.2" },  /* 0.2 */
    { 0x3fd3333333333333ULL, "0.3" },  /* 0.3 */
    { 0x3ff0000000000000ULL, "1.0" },  /* 1.0 */
    { 0xbff0000000000000ULL, "-1.0" },  /* -1.0 */
    { 0x3ff8000000000000ULL, "1.5" },  /* 1.5 */
    { 0x4059000000000000ULL, "100.0" },  /* 100.0 */
    { 0x4341c37937e08000ULL, "1e+16" },  /* 1e+16 */
    { 0x430c6bf526340000ULL, "1000000000000000.0" },  /* 1000000000000000.0 */
    { 0x4341c37937e07fffULL, "9999999999999998.0" },  /* 9999999999999998.0 */
    { 0x3e7ad7f29abcaf48ULL, "1e-07" },  /* 1e-07 */
    { 0x3f1a36e2eb1c432dULL, "0.0001" },  /* 0.0001 */
    { 0x3ee4f8b588e368f1ULL, "1e-05" },  /* 1e-05 */
    { 0x3f1a36e2eb1c432dULL, "0.0001" },  /* 0.0001 */
    { 0x3f202e4b6ce5dc68ULL, "0.00012345" },  /* 0.00012345 */
    { 0x7e41eb2d66005835ULL, "1.5e+300" },  /* 1.5e+300 */
    { 0xfe41eb2d66005835ULL, "-1.5e+300" },  /* -1.5e+300 */
    { 0x0000000000000001ULL, "5e-324" },  /* 5e-324 */
    { 0x0010000000000000ULL, "2.2250738585072014e-308" },  /* 2.2250738585072014e-308 */
    { 0x7fefffffffffffffULL, "1.7976931348623157e+308" },  /* 1.7976931348623157e+308 */
    { 0x4340000000000000ULL, "9007199254740992.0" },  /* 9007199254740992.0 */
    { 0x4340000000000001ULL, "9007199254740994.0" },  /* 9007199254740994.0 */
    { 0x43e0000000000000ULL, "9.223372036854776e+18" },  /* 9.223372036854776e+18 */
    { 0x43f0000000000000ULL, "1.8446744073709552e+19" },  /* 1.8446744073709552e+19 */
    { 0x419d6f3454800000ULL, "123456789.125" },  /* 123456789.125 */
    { 0x3fd5555555555555ULL, "0.3333333333333333" },  /* 0.3333333333333333 */
    { 0x3fe5555555555555ULL, "0.6666666666666666" },  /* 0.6666666666666666 */
    { 0x400921fb54442d18ULL, "3.141592653589793" },  /* 3.141592653589793 */
    { 0xc005bf0a8b145769ULL, "-2.718281828459045" },  /* -2.718281828459045 */
    { 0x4480f0cf064dd592ULL, "1e+22" },  /* 1e+22 */
    { 0x44b52d02c7e14af6ULL, "1e+23" },  /* 1e+23 */
    { 0x444b1ae4d6e2ef50ULL, "1e+21" },  /* 1e+21 */
    { 0x43e56a95319d63e1ULL, "1.2345678901234567e+19" },  /* 1.2345678901234567e+19 */
    { 0x7ff8000000000000ULL, "NaN" },  /* nan */
    { 0x7ff0000000000000ULL, "Infinity" },  /* inf */
    { 0xfff0000000000000ULL, "-Infinity" },  /* -inf */
    { 0x3fe0000000000000ULL, "0.5" },  /* 0.5 */
    { 0x3fd0000000000000ULL, "0.25" },  /* 0.25 */
    { 0x3eff75104d551d69ULL, "3e-05" },  /* 3e-05 */
    { 0x4011666666666666ULL, "4.35" },  /* 4.35 */
    { 0x77f0000000000000ULL, "5.282945311356653e+269" },  /* 5.282945311356653e+269 */
    { 0x7cf0000000000000ULL, "6.386688990511104e+293" },  /* 6.386688990511104e+293 */
    { 0x0010000000000000ULL, "2.2250738585072014e-308" },  /* 2.2250738585072014e-308 */
    { 0x0010000000000000ULL, "2.2250738585072014e-308" },  /* 2.2250738585072014e-308 */
    { 0x3fb99999a0000000ULL, "0.10000000149011612" },  /* 0.10000000149011612 */
    { 0x01a56e1fc2f8f359ULL, "1e-300" },  /* 1e-300 */
    { 0x3eb0000000000000ULL, "9.5367431640625e-07" },  /* 9.5367431640625e-07 */
    { 0x3f50624dd2f1a9fcULL, "0.001" },  /* 0.001 */
    { 0x40934a456d5cfaadULL, "1234.5678" },  /* 1234.5678 */
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void assert_buf(const buf_t *b, const char *s, size_t n)
{
    if (b->len != n || (n > 0 && memcmp(b->data, s, n) != 0)) {
        print_error("expected %.*s (%zu bytes), got %.*s (%zu bytes)\n", (int)n, s, n, (int)b->len,
                    b->data ? b->data : "", b->len);
        fail();
    }
}

static void test_jsonw_string_golden(void **state)
{
    buf_t b;

    buf_init(&b);
    for (size_t i = 0; i < N(string_vectors); i++) {
        buf_reset(&b);
        assert_int_equal(jsonw_string(&b, string_vectors[i].in, string_vectors[i].in_len), 0);
        assert_buf(&b, string_vectors[i].out, string_vectors[i].out_len);
    }
    buf_deinit(&b);
}

static void test_jsonw_string_rejects_invalid_utf8(void **state)
{
    buf_t b;

    buf_init(&b);
    for (size_t i = 0; i < N(bad_utf8); i++) {
        buf_reset(&b);
        assert_int_equal(jsonw_string(&b, bad_utf8[i].in, bad_utf8[i].len), -1);
    }
    buf_deinit(&b);
}

/* Every code point (surrogates excluded) against the rule stated independently: printable ASCII as it
 * is except " and \, the five short escapes, else \uXXXX in lower case, astral as a surrogate pair. */
static void test_jsonw_string_every_code_point(void **state)
{
    buf_t b;
    char utf8[4], want[16];

    buf_init(&b);
    for (unsigned cp = 0; cp <= 0x10ffff; cp++) {
        size_t n;
        if (cp >= 0xd800 && cp <= 0xdfff)
            continue;
        if (cp < 0x80) {
            utf8[0] = (char)cp;
            n = 1;
        } else if (cp < 0x800) {
            utf8[0] = (char)(0xc0 | cp >> 6);
            utf8[1] = (char)(0x80 | (cp & 0x3f));
            n = 2;
        } else if (cp < 0x10000) {
            utf8[0] = (char)(0xe0 | cp >> 12);
            utf8[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
            utf8[2] = (char)(0x80 | (cp & 0x3f));
            n = 3;
        } else {
            utf8[0] = (char)(0xf0 | cp >> 18);
            utf8[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
            utf8[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
            utf8[3] = (char)(0x80 | (cp & 0x3f));
            n = 4;
        }
        const char *shrt = cp == '"' ? "\\\"" : cp == '\\' ? "\\\\" : cp == '\n' ? "\\n" : cp == '\r' ? "\\r" :
                           cp == '\t' ? "\\t" : cp == '\b' ? "\\b" : cp == '\f' ? "\\f" : NULL;
        if (shrt)
            snprintf(want, sizeof(want), "\"%s\"", shrt);
        else if (cp >= 0x20 && cp <= 0x7e)
            snprintf(want, sizeof(want), "\"%c\"", (char)cp);
        else if (cp < 0x10000)
            snprintf(want, sizeof(want), "\"\\u%04x\"", cp);
        else
            snprintf(want, sizeof(want), "\"\\u%04x\\u%04x\"", 0xd800 + ((cp - 0x10000) >> 10),
                     0xdc00 + ((cp - 0x10000) & 0x3ff));
        buf_reset(&b);
        assert_int_equal(jsonw_string(&b, utf8, n), 0);
        assert_buf(&b, want, strlen(want));
    }
    buf_deinit(&b);
}

static void test_jsonw_latin1_golden(void **state)
{
    buf_t b;

    buf_init(&b);
    for (size_t i = 0; i < N(latin1_vectors); i++) {
        buf_reset(&b);
        jsonw_latin1(&b, latin1_vectors[i].in, latin1_vectors[i].in_len);
        assert_buf(&b, latin1_vectors[i].out, latin1_vectors[i].out_len);
    }
    buf_deinit(&b);
}

static void test_jsonw_double_golden(void **state)
{
    buf_t b;

    buf_init(&b);
    for (size_t i = 0; i < N(double_vectors); i++) {
        double d;
        memcpy(&d, &double_vectors[i].bits, sizeof(d));
        buf_reset(&b);
        jsonw_double(&b, d);
        assert_buf(&b, double_vectors[i].text, strlen(double_vectors[i].text));
    }
    buf_deinit(&b);
}

/* Whatever the double, the text reads back as the same double and has at most 17 significant digits. */
static void test_jsonw_double_round_trips(void **state)
{
    buf_t b;
    uint64_t x = 0x9e3779b97f4a7c15ULL;

    buf_init(&b);
    for (int i = 0; i < 200000; i++) {
        double d;
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        memcpy(&d, &x, sizeof(d));
        if (d != d || d - d != 0)
            continue;   /* NaN, infinities: golden vectors */
        buf_reset(&b);
        jsonw_double(&b, d);
        buf_append(&b, "", 1);
        assert_true(strtod(b.data, NULL) == d);
        assert_true(b.len - 1 <= 24);
    }
    buf_deinit(&b);
}

static void test_jsonw_scalars(void **state)
{
    buf_t b;

    buf_init(&b);
    jsonw_int(&b, 0);
    jsonw_sep(&b);
    jsonw_int(&b, -1);
    jsonw_sep(&b);
    jsonw_int(&b, LLONG_MIN);
    jsonw_sep(&b);
    jsonw_int(&b, LLONG_MAX);
    jsonw_sep(&b);
    jsonw_uint(&b, ULLONG_MAX);
    jsonw_colon(&b);
    jsonw_bool(&b, 1);
    jsonw_sep(&b);
    jsonw_bool(&b, 0);
    jsonw_sep(&b);
    jsonw_null(&b);
    const char *want = "0, -1, -9223372036854775808, 9223372036854775807, 18446744073709551615: true, false, null";
    assert_buf(&b, want, strlen(want));
    buf_deinit(&b);
}

/* Writers append: what is already in the buffer stays. */
static void test_jsonw_appends(void **state)
{
    buf_t b;

    buf_init(&b);
    buf_append_str(&b, "[");
    assert_int_equal(jsonw_string(&b, "a", 1), 0);
    jsonw_sep(&b);
    jsonw_double(&b, 0.5);
    jsonw_sep(&b);
    jsonw_latin1(&b, "\xe9", 1);
    buf_append_str(&b, "]");
    assert_buf(&b, "[\"a\", 0.5, \"\\u00e9\"]", 20);
    buf_deinit(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jsonw_string_golden),
        cmocka_unit_test(test_jsonw_string_rejects_invalid_utf8),
        cmocka_unit_test(test_jsonw_string_every_code_point),
        cmocka_unit_test(test_jsonw_latin1_golden),
        cmocka_unit_test(test_jsonw_double_golden),
        cmocka_unit_test(test_jsonw_double_round_trips),
        cmocka_unit_test(test_jsonw_scalars),
        cmocka_unit_test(test_jsonw_appends),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
