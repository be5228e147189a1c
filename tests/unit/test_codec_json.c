/*
 * Unit tests for src/codec/json.c: cachetory's JsonSerializer (json.dumps(value).encode() /
 * json.loads(data)).
 *
 * Golden vectors generated with Debian's /usr/bin/python3 (3.11):
 *   encode: json.dumps(s) for s = the UTF-8 text;
 *   decode: for a JSON document x, json.loads(x) if it is a str (as UTF-8), else json.dumps(json.loads(x));
 *   refused: documents json.loads refuses (or whose string result is not UTF-8-encodable).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/codec.h"

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

/* value -> json.dumps(value) */
static const vec_t encode_vectors[] = {
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

/* bytes that are not UTF-8: the json serializer refuses them */
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

/* stored document -> decoded value */
static const vec_t decode_vectors[] = {
    { "\"hello\"", 7, "hello", 5 },
    { "\"caf\\u00e9\"", 11, "caf\303\251", 5 },
    { "\"caf\303\251\"", 7, "caf\303\251", 5 },
    { "\"\\ud83d\\ude00\"", 14, "\360\237\230\200", 4 },
    { "\"\360\237\230\200\"", 6, "\360\237\230\200", 4 },
    { "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", 18, "\"\\/\010\014\012\015\011", 8 },
    { " \"x\" ", 5, "x", 1 },
    { "\"\"", 2, "", 0 },
    { "\"\\u0000\"", 8, "\000", 1 },
    { "\"\\uD83D\\uDE00\"", 14, "\360\237\230\200", 4 },
    { "{\"a\":1}", 7, "{\"a\": 1}", 8 },
    { "{\"a\": 1, \"b\": [1, 2, {\"c\": null}]}", 34, "{\"a\": 1, \"b\": [1, 2, {\"c\": null}]}", 34 },
    { "[1,2,3]", 7, "[1, 2, 3]", 9 },
    { "[]", 2, "[]", 2 },
    { "{}", 2, "{}", 2 },
    { "[[], {}, [[]]]", 14, "[[], {}, [[]]]", 14 },
    { "1.0", 3, "1.0", 3 },
    { "1e2", 3, "100.0", 5 },
    { "1E400", 5, "Infinity", 8 },
    { "-1e400", 6, "-Infinity", 9 },
    { "-0", 2, "0", 1 },
    { "-0.0", 4, "-0.0", 4 },
    { "0", 1, "0", 1 },
    { "18446744073709551615", 20, "18446744073709551615", 20 },
    { "-9223372036854775808", 20, "-9223372036854775808", 20 },
    { "123456789012345678901234567890", 30, "123456789012345678901234567890", 30 },
    { "[0.1, 1e16, 1e-7, 1.5, -0.0]", 28, "[0.1, 1e+16, 1e-07, 1.5, -0.0]", 30 },
    { "[true, false, null]", 19, "[true, false, null]", 19 },
    { "[NaN, Infinity, -Infinity]", 26, "[NaN, Infinity, -Infinity]", 26 },
    { "{\"a\":1,\"b\":2,\"a\":3}", 19, "{\"a\": 3, \"b\": 2}", 16 },
    { "{\"x\":{\"k\":1,\"k\":2},\"x\":[1]}", 27, "{\"x\": [1]}", 10 },
    { "{\"a\":1,\"\\u0061\":2}", 18, "{\"a\": 2}", 8 },
    { " \011\015\012[ 1 , 2 ]\012", 14, "[1, 2]", 6 },
    { "{\"nested\": {\"deep\": {\"deeper\": [1, [2, [3]]]}}}", 47, "{\"nested\": {\"deep\": {\"deeper\": [1, [2, [3]]]}}}", 47 },
    { "[\"\\ud800\"]", 10, "[\"\\ud800\"]", 10 },
    { "{\"\\udc00\": \"\\ud83d\\ude00\"}", 26, "{\"\\udc00\": \"\\ud83d\\ude00\"}", 26 },
    { "[\"caf\303\251\", \"\360\237\230\200\", \"\177\"]", 22, "[\"caf\\u00e9\", \"\\ud83d\\ude00\", \"\\u007f\"]", 39 },
    { "\"\\u20ac\"", 8, "\342\202\254", 3 },
    { "3.14159", 7, "3.14159", 7 },
    { "1E-7", 4, "1e-07", 5 },
    { "0.1e1", 5, "1.0", 3 },
    { "12345678901234567e3", 19, "1.2345678901234567e+19", 22 },
    { "5e-324", 6, "5e-324", 6 },
    { "1e-400", 6, "0.0", 3 },
    { "\357\273\277{\"bom\": true}", 16, "{\"bom\": true}", 13 },
    { "\377\376[\0001\000,\000 \000\"\000\351\000\"\000]\000", 18, "[1, \"\\u00e9\"]", 13 },
    { "[\0001\000,\000 \000\"\000\351\000\"\000]\000", 16, "[1, \"\\u00e9\"]", 13 },
    { "\377\376\000\000\"\000\000\000\000\366\001\000\"\000\000\000", 16, "\360\237\230\200", 4 },
    { "\000\000\000{\000\000\000\"\000\000\000b\000\000\000\"\000\000\000:\000\000\000 \000\000\0001\000\000\000}", 32, "{\"b\": 1}", 8 },
    { "[\"a\"    ,   \"b\"]", 16, "[\"a\", \"b\"]", 10 },
    { "{\"1\": 1, \"2\": 2, \"1\": 3, \"3\": 4, \"2\": 5}", 40, "{\"1\": 3, \"2\": 5, \"3\": 4}", 24 },
    { "[1,[2,[3,[4,[5]]]]]", 19, "[1, [2, [3, [4, [5]]]]]", 23 },
    { "[\"\355\240\275\355\270\200\"]", 10, "[\"\\ud83d\\ude00\"]", 16 },
    { "111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111", 300, "111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111", 300 },
    { "\0001", 2, "1", 1 },
    { "1\000", 2, "1", 1 },
};

/* documents json.loads refuses */
static const raw_t bad_docs[] = {
    { "", 0 },
    { " ", 1 },
    { "[", 1 },
    { "]", 1 },
    { "{", 1 },
    { "}", 1 },
    { "[1,]", 4 },
    { "{\"a\":1,}", 8 },
    { "{\"a\" 1}", 7 },
    { "{a:1}", 5 },
    { "{1:2}", 5 },
    { "'a'", 3 },
    { "\"abc", 4 },
    { "\"\\x\"", 4 },
    { "\"\\u12\"", 6 },
    { "\"\\u12g4\"", 8 },
    { "01", 2 },
    { "1.", 2 },
    { ".1", 2 },
    { "1e", 2 },
    { "1e+", 3 },
    { "+1", 2 },
    { "-", 1 },
    { "--1", 3 },
    { "0x10", 4 },
    { "nan", 3 },
    { "-NaN", 4 },
    { "infinity", 8 },
    { "nul", 3 },
    { "truex", 5 },
    { "true false", 10 },
    { "[1 2]", 5 },
    { "\"a\" \"b\"", 7 },
    { "\"\037\"", 3 },
    { "\"\011\"", 3 },
    { "\0141", 2 },
    { "\357\273\277\357\273\2771", 7 },
    { "\"\377\"", 3 },
    { "\"\300\200\"", 4 },
    { "\377", 1 },
    { "11111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111", 4301 },
    { "-11111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111", 4302 },
    { "\"\\ud800\"", 8 },
    { "\"\\udc00x\"", 9 },
    { "\"\355\240\200\"", 5 },
    { "[1]\000", 4 },
    { "{\"a\":1}}", 8 },
    { "[1]]", 4 },
    { "// c\0121", 6 },
    { "[1,,2]", 6 },
    { "{,}", 3 },
    { "[,]", 3 },
    { "\\u0031", 6 },
    { "[\0001\000]", 5 },
};

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define BIG ((size_t)1 << 30)

static int decode(const char *in, size_t n, size_t max, buf_t *out, char *err)
{
    codec_params_t p = { .max_decoded = max };

    buf_reset(out);
    err[0] = '\0';
    return codec_json.decode(NULL, &p, in, n, out, err);
}

static int encode(const char *in, size_t n, buf_t *out, char *err)
{
    codec_params_t p = { .max_decoded = BIG };

    buf_reset(out);
    err[0] = '\0';
    return codec_json.encode(NULL, &p, in, n, out, err);
}

static void assert_buf(const buf_t *b, const char *s, size_t n)
{
    if (b->len != n || (n > 0 && memcmp(b->data, s, n) != 0)) {
        print_error("expected %.*s (%zu bytes), got %.*s (%zu bytes)\n", (int)n, s, n, (int)b->len,
                    b->data ? b->data : "", b->len);
        fail();
    }
}

static void test_json_name(void **state)
{
    assert_string_equal(codec_json.name, "json");
}

static void test_json_encode_golden(void **state)
{
    buf_t b;
    char err[CODEC_ERRLEN];

    buf_init(&b);
    for (size_t i = 0; i < N(encode_vectors); i++) {
        assert_int_equal(encode(encode_vectors[i].in, encode_vectors[i].in_len, &b, err), CODEC_OK);
        assert_buf(&b, encode_vectors[i].out, encode_vectors[i].out_len);
    }
    buf_deinit(&b);
}

static void test_json_encode_refuses_invalid_utf8(void **state)
{
    buf_t b;
    char err[CODEC_ERRLEN];

    buf_init(&b);
    for (size_t i = 0; i < N(bad_utf8); i++) {
        assert_int_equal(encode(bad_utf8[i].in, bad_utf8[i].len, &b, err), CODEC_EINPUT);
        assert_string_equal(err, "json: the value is not valid UTF-8 text; the json serializer stores text only");
        assert_int_equal(b.len, 0);
    }
    buf_deinit(&b);
}

/* What encode writes, decode gives back. */
static void test_json_round_trip(void **state)
{
    buf_t enc, dec;
    char err[CODEC_ERRLEN];

    buf_init(&enc);
    buf_init(&dec);
    for (size_t i = 0; i < N(encode_vectors); i++) {
        assert_int_equal(encode(encode_vectors[i].in, encode_vectors[i].in_len, &enc, err), CODEC_OK);
        assert_int_equal(decode(enc.data, enc.len, BIG, &dec, err), CODEC_OK);
        assert_buf(&dec, encode_vectors[i].in, encode_vectors[i].in_len);
    }
    buf_deinit(&enc);
    buf_deinit(&dec);
}

static void test_json_decode_golden(void **state)
{
    buf_t b;
    char err[CODEC_ERRLEN];

    buf_init(&b);
    for (size_t i = 0; i < N(decode_vectors); i++) {
        int rc = decode(decode_vectors[i].in, decode_vectors[i].in_len, BIG, &b, err);
        if (rc != CODEC_OK)
            print_error("vector %zu: %s\n", i, err);
        assert_int_equal(rc, CODEC_OK);
        assert_buf(&b, decode_vectors[i].out, decode_vectors[i].out_len);
    }
    buf_deinit(&b);
}

static void test_json_decode_refuses(void **state)
{
    buf_t b;
    char err[CODEC_ERRLEN];

    buf_init(&b);
    for (size_t i = 0; i < N(bad_docs); i++) {
        int rc = decode(bad_docs[i].in, bad_docs[i].len, BIG, &b, err);
        if (rc != CODEC_EFORMAT)
            print_error("vector %zu (%.*s) gave %d\n", i, (int)bad_docs[i].len, bad_docs[i].in, rc);
        assert_int_equal(rc, CODEC_EFORMAT);
        assert_int_equal(strncmp(err, "json: not JSON (", 16), 0);
        assert_int_equal(b.len, 0);
    }
    buf_deinit(&b);
}

/* The message says what is wrong and where. */
static void test_json_error_messages(void **state)
{
    buf_t b;
    char err[CODEC_ERRLEN];

    buf_init(&b);
    assert_int_equal(decode("[1,]", 4, BIG, &b, err), CODEC_EFORMAT);
    assert_string_equal(err, "json: not JSON (expecting a value at byte 3)");
    assert_int_equal(decode("\xef\xbb\xbf[1,]", 7, BIG, &b, err), CODEC_EFORMAT);
    assert_string_equal(err, "json: not JSON (expecting a value at byte 6)");
    assert_int_equal(decode("{\"a\" 1}", 7, BIG, &b, err), CODEC_EFORMAT);
    assert_string_equal(err, "json: not JSON (expecting ':' at byte 5)");
    assert_int_equal(decode("\"\\ud800\"", 8, BIG, &b, err), CODEC_EFORMAT);
    assert_string_equal(err, "json: not JSON (a lone surrogate in a top-level string at byte 7)");
    assert_int_equal(decode("[1] x", 5, BIG, &b, err), CODEC_EFORMAT);
    assert_string_equal(err, "json: not JSON (extra data after the value at byte 4)");
    assert_int_equal(decode("[\0001\0,\0]\0", 8, BIG, &b, err), CODEC_EFORMAT);
    assert_string_equal(err, "json: not JSON (expecting a value, in text read as UTF-16)");
    assert_int_equal(decode("[\0001\0]", 5, BIG, &b, err), CODEC_EFORMAT);
    assert_string_equal(err, "json: not JSON (not UTF-16 text)");
    buf_deinit(&b);
}

/* Every proper prefix of a document that starts with [ { or " and ends with its closing character is
 * damaged: an error, never a crash or a read past the end (ASan). */
static void test_json_truncated_prefixes(void **state)
{
    buf_t b;
    char err[CODEC_ERRLEN];
    size_t tested = 0;

    buf_init(&b);
    for (size_t i = 0; i < N(decode_vectors); i++) {
        const vec_t *v = &decode_vectors[i];
        char first = v->in[0], last = v->in[v->in_len - 1];
        if (!((first == '[' && last == ']') || (first == '{' && last == '}') || (first == '"' && last == '"')))
            continue;
        for (size_t n = 0; n < v->in_len; n++) {
            /* a copy of exactly n bytes, so that ASan sees any read past the end */
            char *cut = malloc(n ? n : 1);
            memcpy(cut, v->in, n);
            assert_int_equal(decode(cut, n, BIG, &b, err), CODEC_EFORMAT);
            free(cut);
            tested++;
        }
    }
    assert_true(tested > 300);
    buf_deinit(&b);
}

static char *repeat(const char *unit, size_t times, const char *tail)
{
    size_t u = strlen(unit), t = strlen(tail);
    char *s = malloc(u * times + t + 1);
    for (size_t i = 0; i < times; i++)
        memcpy(s + i * u, unit, u);
    memcpy(s + u * times, tail, t + 1);
    return s;
}

static void test_json_deep_nesting(void **state)
{
    buf_t b;
    char err[CODEC_ERRLEN];
    char *s;

    buf_init(&b);
    /* 100000 '[' : refused without recursing 100000 deep */
    s = repeat("[", 100000, "");
    assert_int_equal(decode(s, strlen(s), BIG, &b, err), CODEC_EFORMAT);
    free(s);
    s = repeat("{\"a\":", 100000, "1");
    assert_int_equal(decode(s, strlen(s), BIG, &b, err), CODEC_EFORMAT);
    free(s);

    /* 128 levels are fine (and render as they are); 129 are not */
    char deep[2 * 129 + 1];
    memset(deep, '[', 128);
    memset(deep + 128, ']', 128);
    assert_int_equal(decode(deep, 256, BIG, &b, err), CODEC_OK);
    assert_buf(&b, deep, 256);
    memset(deep, '[', 129);
    memset(deep + 129, ']', 129);
    assert_int_equal(decode(deep, 258, BIG, &b, err), CODEC_EFORMAT);
    assert_non_null(strstr(err, "nesting deeper than 128"));
    buf_deinit(&b);
}

static void test_json_int_digit_limit(void **state)
{
    buf_t b;
    char err[CODEC_ERRLEN];
    char *s = repeat("7", 4300, "");

    buf_init(&b);
    assert_int_equal(decode(s, 4300, BIG, &b, err), CODEC_OK);
    assert_buf(&b, s, 4300);
    free(s);
    /* a float may have any number of digits: float() has no limit */
    s = repeat("1", 5000, ".5");
    assert_int_equal(decode(s, strlen(s), BIG, &b, err), CODEC_OK);
    assert_buf(&b, "Infinity", 8);
    free(s);
    buf_deinit(&b);
}

static void test_json_max_decoded(void **state)
{
    buf_t b;
    char err[CODEC_ERRLEN];
    const char *doc = "{\"a\":[1,2.50,\"x\"],\"b\":null}";
    const char *want = "{\"a\": [1, 2.5, \"x\"], \"b\": null}";
    size_t wl = strlen(want);

    buf_init(&b);
    assert_int_equal(decode(doc, strlen(doc), wl, &b, err), CODEC_OK);
    assert_buf(&b, want, wl);
    for (size_t max = 0; max < wl; max++) {
        assert_int_equal(decode(doc, strlen(doc), max, &b, err), CODEC_ETOOBIG);
        assert_int_equal(b.len, 0);
        assert_non_null(strstr(err, "largest decoded value"));
    }
    /* a top-level string: its text */
    assert_int_equal(decode("\"abc\\u00e9\"", 11, 5, &b, err), CODEC_OK);
    assert_int_equal(decode("\"abc\\u00e9\"", 11, 4, &b, err), CODEC_ETOOBIG);
    /* damaged input is EFORMAT even when the part before the damage is already too big */
    assert_int_equal(decode("[1111111111, 2, x]", 18, 3, &b, err), CODEC_EFORMAT);
    assert_int_equal(decode("\"abcdefgh", 9, 3, &b, err), CODEC_EFORMAT);
    buf_deinit(&b);
}

/* Repeated keys in a large object: Python's dict keeps the first position and the last value. */
static void test_json_many_keys(void **state)
{
    buf_t in, b, want;
    char err[CODEC_ERRLEN];
    const int n = 50000;

    buf_init(&in);
    buf_init(&b);
    buf_init(&want);
    buf_append_str(&in, "{");
    buf_append_str(&want, "{");
    for (int i = 0; i < n; i++) {
        buf_printf(&in, "%s\"k%d\":%d", i ? "," : "", i, i);
        /* every key that is a multiple of 1000 is written again below with -i */
        buf_printf(&want, "%s\"k%d\": %d", i ? ", " : "", i, i % 1000 == 0 ? -i : i);
    }
    for (int i = n - 1000; i >= 0; i -= 1000)
        buf_printf(&in, ",\"k%d\":%d", i, -i);
    buf_append_str(&in, "}");
    buf_append_str(&want, "}");
    assert_int_equal(decode(in.data, in.len, BIG, &b, err), CODEC_OK);
    assert_buf(&b, want.data, want.len);
    buf_deinit(&in);
    buf_deinit(&b);
    buf_deinit(&want);
}

/* Random damage to valid documents: an answer (either), no crash, no leak, no read past the end. */
static void test_json_mutations(void **state)
{
    buf_t b;
    char err[CODEC_ERRLEN];
    uint32_t x = 12345;

    buf_init(&b);
    for (int round = 0; round < 20; round++) {
        for (size_t i = 0; i < N(decode_vectors); i++) {
            const vec_t *v = &decode_vectors[i];
            char *m = malloc(v->in_len);
            memcpy(m, v->in, v->in_len);
            x = x * 1103515245u + 12345u;
            m[(x >> 8) % v->in_len] = (char)(x >> 20);
            int rc = decode(m, v->in_len, BIG, &b, err);
            assert_true(rc == CODEC_OK || rc == CODEC_EFORMAT);
            free(m);
        }
    }
    buf_deinit(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_name),
        cmocka_unit_test(test_json_encode_golden),
        cmocka_unit_test(test_json_encode_refuses_invalid_utf8),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_json_decode_golden),
        cmocka_unit_test(test_json_decode_refuses),
        cmocka_unit_test(test_json_error_messages),
        cmocka_unit_test(test_json_truncated_prefixes),
        cmocka_unit_test(test_json_deep_nesting),
        cmocka_unit_test(test_json_int_digit_limit),
        cmocka_unit_test(test_json_max_decoded),
        cmocka_unit_test(test_json_many_keys),
        cmocka_unit_test(test_json_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
