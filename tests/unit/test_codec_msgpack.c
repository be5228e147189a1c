/*
 * Unit tests for src/codec/msgpack.c: cachetory's MsgPackSerializer (msgpack.packb(value) /
 * msgpack.unpackb(data)).
 *
 * Golden vectors generated with Debian's /usr/bin/python3 (3.11) and python3-msgpack 1.0.3:
 *   encode: the header of msgpack.packb(bytes(n)) for a value of n bytes ((i * 7 + 3) & 255 at i);
 *   decode: for a msgpack object x: a top-level str or bin gives its bytes; anything else
 *     json.dumps(msgpack.unpackb(x, strict_map_key=False)), with bytes inside a structure (which
 *     json.dumps refuses) written as json.dumps(b.decode('latin-1')) — codec/msgpack.c documents this.
 *     Where json.dumps accepts the object directly, the generator checked it gives the same text.
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

/* value length -> the header msgpack.packb writes before the bytes */
static const struct {
    size_t n;
    const char *hdr;
    size_t hdr_len;
} encode_vectors[] = {
    { 0, "\304\000", 2 },
    { 1, "\304\001", 2 },
    { 31, "\304\037", 2 },
    { 32, "\304 ", 2 },
    { 255, "\304\377", 2 },
    { 256, "\305\001\000", 3 },
    { 65535, "\305\377\377", 3 },
    { 65536, "\306\000\001\000\000", 5 },
    { 70000, "\306\000\001\021p", 5 },
};

/* stored object -> decoded value */
static const vec_t decode_vectors[] = {
    { "\304\000", 2, "", 0 },
    { "\304\005\000\377bin", 7, "\000\377bin", 5 },
    { "\246str \303\251", 7, "str \303\251", 6 },
    { "\240", 1, "", 0 },
    { "\305\001,xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 303, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 300 },
    { "\331(yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy", 42, "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy", 40 },
    { "\000", 1, "0", 1 },
    { "\177", 1, "127", 3 },
    { "\377", 1, "-1", 2 },
    { "\340", 1, "-32", 3 },
    { "\320\337", 2, "-33", 3 },
    { "\314\377", 2, "255", 3 },
    { "\316\000\001\000\000", 5, "65536", 5 },
    { "\317\377\377\377\377\377\377\377\377", 9, "18446744073709551615", 20 },
    { "\323\200\000\000\000\000\000\000\000", 9, "-9223372036854775808", 20 },
    { "\317\200\000\000\000\000\000\000\000", 9, "9223372036854775808", 19 },
    { "\321\377\177", 3, "-129", 4 },
    { "\313\077\271\231\231\231\231\231\232", 9, "0.1", 3 },
    { "\313CA\303y7\340\200\000", 9, "1e+16", 5 },
    { "\313>z\327\362\232\274\257H", 9, "1e-07", 5 },
    { "\313\077\370\000\000\000\000\000\000", 9, "1.5", 3 },
    { "\313\200\000\000\000\000\000\000\000", 9, "-0.0", 4 },
    { "\313\177\370\000\000\000\000\000\000", 9, "NaN", 3 },
    { "\313\177\360\000\000\000\000\000\000", 9, "Infinity", 8 },
    { "\312=\314\314\315", 5, "0.10000000149011612", 19 },
    { "\303", 1, "true", 4 },
    { "\302", 1, "false", 5 },
    { "\300", 1, "null", 4 },
    { "\220", 1, "[]", 2 },
    { "\200", 1, "{}", 2 },
    { "\226\001\241a\300\303\313\077\370\000\000\000\000\000\000\222\002\221\003", 19, "[1, \"a\", null, true, 1.5, [2, [3]]]", 35 },
    { "\202\241a\001\241b\223\001\002\201\241c\300", 13, "{\"a\": 1, \"b\": [1, 2, {\"c\": null}]}", 34 },
    { "\201\246nested\201\244deep\201\246deeper\222\001\222\002\221\003", 28, "{\"nested\": {\"deep\": {\"deeper\": [1, [2, [3]]]}}}", 47 },
    { "\334\000\024\000\001\002\003\004\005\006\007\010\011\012\013\014\015\016\017\020\021\022\023", 23, "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]", 70 },
    { "\336\000\021\2410\000\2411\001\2412\002\2413\003\2414\004\2415\005\2416\006\2417\007\2418\010\2419\011\24210\012\24211\013\24212\014\24213\015\24214\016\24215\017\24216\020", 61, "{\"0\": 0, \"1\": 1, \"2\": 2, \"3\": 3, \"4\": 4, \"5\": 5, \"6\": 6, \"7\": 7, \"8\": 8, \"9\": 9, \"10\": 10, \"11\": 11, \"12\": 12, \"13\": 13, \"14\": 14, \"15\": 15, \"16\": 16}", 150 },
    { "\223\304\002\000\377\245caf\303\251\244\360\237\230\200", 16, "[\"\\u0000\\u00ff\", \"caf\\u00e9\", \"\\ud83d\\ude00\"]", 45 },
    { "\203\001\241t\313\077\370\000\000\000\000\000\000\241x\300\241n", 18, "{\"1\": \"t\", \"1.5\": \"x\", \"null\": \"n\"}", 35 },
    { "\203\241a\001\241b\002\241a\003", 10, "{\"a\": 3, \"b\": 2}", 16 },
    { "\203\001\241a\303\241b\313\077\360\000\000\000\000\000\000\241c", 18, "{\"1\": \"c\"}", 10 },
    { "\202\303\241a\001\241b", 7, "{\"true\": \"b\"}", 13 },
    { "\204\000\241z\302\241f\313\200\000\000\000\000\000\000\000\241m\313\000\000\000\000\000\000\000\000\241p", 29, "{\"0\": \"p\"}", 10 },
    { "\202\313\177\370\000\000\000\000\000\000\001\313\177\370\000\000\000\000\000\000\002", 21, "{\"NaN\": 1, \"NaN\": 2}", 20 },
    { "\202\241a\001\304\001a\002", 8, "{\"a\": 1, \"a\": 2}", 16 },
    { "\204\317\377\377\377\377\377\377\377\377\001\323\200\000\000\000\000\000\000\000\002\313C\340\000\000\000\000\000\000\003\317\200\000\000\000\000\000\000\000\004", 41, "{\"18446744073709551615\": 1, \"-9223372036854775808\": 2, \"9.223372036854776e+18\": 4}", 82 },
    { "\201\304\001\377\001", 5, "{\"\\u00ff\": 1}", 13 },
    { "\202\377\001\313\277\360\000\000\000\000\000\000\002", 13, "{\"-1\": 2}", 9 },
    { "\225\313\077\271\231\231\231\231\231\232\313CA\303y7\340\200\000\313>z\327\362\232\274\257H\313\077\370\000\000\000\000\000\000\313\200\000\000\000\000\000\000\000", 46, "[0.1, 1e+16, 1e-07, 1.5, -0.0]", 30 },
    { "\315\000\005", 3, "5", 1 },
    { "\323\377\377\377\377\377\377\377\377", 9, "-1", 2 },
    { "\320\200", 2, "-128", 4 },
    { "\321\200\000", 3, "-32768", 6 },
    { "\322\200\000\000\000", 5, "-2147483648", 11 },
    { "\334\000\001\300", 4, "[null]", 6 },
    { "\335\000\000\000\001\303", 6, "[true]", 6 },
    { "\337\000\000\000\001\241k\302", 8, "{\"k\": false}", 12 },
    { "\331\003abc", 5, "abc", 3 },
    { "\332\000\003abc", 6, "abc", 3 },
    { "\333\000\000\000\003abc", 8, "abc", 3 },
    { "\305\000\002hi", 5, "hi", 2 },
    { "\306\000\000\000\002hi", 7, "hi", 2 },
    { "\242\377\376", 3, "\377\376", 2 },
};

/* not one complete object, or an object with no JSON form */
static const raw_t bad_objects[] = {
    { "", 0 },
    { "\301", 1 },
    { "\001\002", 2 },
    { "\300\300", 2 },
    { "\335\377\377\377\377", 5 },
    { "\337\377\377\377\377", 5 },
    { "\335\001\000\000\000\300\300", 7 },
    { "\324\001\000", 3 },
    { "\221\324\001\000", 4 },
    { "\326\377\000\000\000\001", 6 },
    { "\307\000\005", 3 },
    { "\310\000\001\005\000", 5 },
    { "\311\000\000\000\000\005", 6 },
    { "\201\221\001\001", 4 },
    { "\201\200\001", 3 },
    { "\221\242\377\376", 4 },
    { "\201\242\377\376\001", 5 },
    { "\221\243\355\240\200", 5 },
    { "\304\005abc", 5 },
    { "\333\377\377\377\377ab", 7 },
    { "\222\001", 2 },
    { "\201\241a", 3 },
    { "\221\301", 2 },
    { "\312\000\000", 3 },
};

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define BIG ((size_t)1 << 30)

static int decode(const char *in, size_t n, size_t max, buf_t *out, char *err)
{
    codec_params_t p = { .max_decoded = max };

    buf_reset(out);
    err[0] = '\0';
    return codec_msgpack.decode(NULL, &p, in, n, out, err);
}

static void assert_buf(const buf_t *b, const char *s, size_t n)
{
    if (b->len != n || (n > 0 && memcmp(b->data, s, n) != 0)) {
        print_error("expected %.*s (%zu bytes), got %.*s (%zu bytes)\n", (int)n, s, n, (int)b->len,
                    b->data ? b->data : "", b->len);
        fail();
    }
}

static void test_msgpack_name(void **state)
{
    assert_string_equal(codec_msgpack.name, "msgpack");
}

/* bin8 / bin16 / bin32 at the lengths where the format changes, as Python writes them; decoding gives
 * the value back. */
static void test_msgpack_encode_golden(void **state)
{
    buf_t enc, dec;
    char err[CODEC_ERRLEN];
    codec_params_t p = { .max_decoded = BIG };

    buf_init(&enc);
    buf_init(&dec);
    for (size_t i = 0; i < N(encode_vectors); i++) {
        size_t n = encode_vectors[i].n, h = encode_vectors[i].hdr_len;
        char *v = malloc(n ? n : 1);
        for (size_t k = 0; k < n; k++)
            v[k] = (char)((k * 7 + 3) & 255);
        buf_reset(&enc);
        assert_int_equal(codec_msgpack.encode(NULL, &p, v, n, &enc, err), CODEC_OK);
        assert_int_equal(enc.len, h + n);
        assert_memory_equal(enc.data, encode_vectors[i].hdr, h);
        if (n)
            assert_memory_equal(enc.data + h, v, n);
        assert_int_equal(decode(enc.data, enc.len, BIG, &dec, err), CODEC_OK);
        assert_buf(&dec, v, n);
        free(v);
    }
    buf_deinit(&enc);
    buf_deinit(&dec);
}

static void test_msgpack_decode_golden(void **state)
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

static void test_msgpack_decode_refuses(void **state)
{
    buf_t b;
    char err[CODEC_ERRLEN];

    buf_init(&b);
    for (size_t i = 0; i < N(bad_objects); i++) {
        int rc = decode(bad_objects[i].in, bad_objects[i].len, BIG, &b, err);
        if (rc != CODEC_EFORMAT)
            print_error("vector %zu gave %d\n", i, rc);
        assert_int_equal(rc, CODEC_EFORMAT);
        assert_int_equal(strncmp(err, "msgpack: not msgpack (", 22), 0);
        assert_int_equal(b.len, 0);
    }
    buf_deinit(&b);
}

static void test_msgpack_error_messages(void **state)
{
    buf_t b;
    char err[CODEC_ERRLEN];

    buf_init(&b);
    assert_int_equal(decode("\xd4\x05\x00", 3, BIG, &b, err), CODEC_EFORMAT);
    assert_string_equal(err, "msgpack: not msgpack (ext type 5, which has no JSON form, at byte 0)");
    assert_int_equal(decode("\x01\x02\x03", 3, BIG, &b, err), CODEC_EFORMAT);
    assert_string_equal(err, "msgpack: not msgpack (2 bytes after the object, at byte 1)");
    assert_int_equal(decode("\x92\x01", 2, BIG, &b, err), CODEC_EFORMAT);
    assert_string_equal(err, "msgpack: not msgpack (truncated, at byte 0)");
    assert_int_equal(decode("\x81\x90\x01", 3, BIG, &b, err), CODEC_EFORMAT);
    assert_string_equal(err, "msgpack: not msgpack (an array as a map key, at byte 1)");
    buf_deinit(&b);
}

/* msgpack is self-delimiting: every proper prefix of an object is incomplete. */
static void test_msgpack_truncated_prefixes(void **state)
{
    buf_t b;
    char err[CODEC_ERRLEN];
    size_t tested = 0;

    buf_init(&b);
    for (size_t i = 0; i < N(decode_vectors); i++) {
        const vec_t *v = &decode_vectors[i];
        for (size_t n = 0; n < v->in_len; n++) {
            char *cut = malloc(n ? n : 1);      /* exactly n bytes, so ASan sees reads past the end */
            memcpy(cut, v->in, n);
            assert_int_equal(decode(cut, n, BIG, &b, err), CODEC_EFORMAT);
            free(cut);
            tested++;
        }
    }
    assert_true(tested > 500);
    buf_deinit(&b);
}

/* Declared lengths far beyond the input are refused before anything is allocated for them (msgpack-c's
 * own unpacker would reserve 32 bytes per declared element). */
static void test_msgpack_huge_declared_lengths(void **state)
{
    static const raw_t cases[] = {
        { "\xdd\xff\xff\xff\xff", 5 },                  /* array32 of 2^32 - 1 */
        { "\xdf\xff\xff\xff\xff", 5 },                  /* map32 */
        { "\xdb\xff\xff\xff\xff", 5 },                  /* str32 */
        { "\xc6\xff\xff\xff\xff", 5 },                  /* bin32 */
        { "\xc9\xff\xff\xff\xff\x01", 6 },              /* ext32 */
        { "\x91\xdd\x01\x00\x00\x00\xc0\xc0\xc0", 9 },  /* array32 of 2^24 inside an array, 3 elements there */
        { "\xde\xff\xff\xa1k\x01", 6 },                 /* map16 of 65535, one pair there */
    };
    buf_t b;
    char err[CODEC_ERRLEN];

    buf_init(&b);
    for (size_t i = 0; i < N(cases); i++) {
        assert_int_equal(decode(cases[i].in, cases[i].len, BIG, &b, err), CODEC_EFORMAT);
        assert_true(b.cap < 4096);
    }
    buf_deinit(&b);
}

static void test_msgpack_deep_nesting(void **state)
{
    buf_t b;
    char err[CODEC_ERRLEN];
    char *s = malloc(200001);

    buf_init(&b);
    /* 100000 fixarray-of-1 around nil: refused without recursing 100000 deep */
    memset(s, 0x91, 100000);
    s[100000] = (char)0xc0;
    assert_int_equal(decode(s, 100001, BIG, &b, err), CODEC_EFORMAT);
    /* maps: {"a": {"a": ...}} */
    for (int i = 0; i < 50000; i++)
        memcpy(s + 3 * i, "\x81\xa1\x61", 3);
    s[150000] = (char)0xc0;
    assert_int_equal(decode(s, 150001, BIG, &b, err), CODEC_EFORMAT);
    assert_non_null(strstr(err, "nesting deeper than 128"));

    /* 128 levels decode; 129 do not */
    memset(s, 0x91, 128);
    s[128] = (char)0xc0;
    assert_int_equal(decode(s, 129, BIG, &b, err), CODEC_OK);
    assert_int_equal(b.len, 128 + 4 + 128);
    assert_memory_equal(b.data + 128, "null", 4);
    memset(s, 0x91, 129);
    s[129] = (char)0xc0;
    assert_int_equal(decode(s, 130, BIG, &b, err), CODEC_EFORMAT);
    free(s);
    buf_deinit(&b);
}

static void test_msgpack_max_decoded(void **state)
{
    buf_t b;
    char err[CODEC_ERRLEN];
    char bin[103];

    buf_init(&b);
    /* a top-level bin of 100 bytes */
    bin[0] = (char)0xc4;
    bin[1] = 100;
    memset(bin + 2, 'z', 100);
    assert_int_equal(decode(bin, 102, 100, &b, err), CODEC_OK);
    assert_int_equal(b.len, 100);
    assert_int_equal(decode(bin, 102, 99, &b, err), CODEC_ETOOBIG);
    assert_int_equal(b.len, 0);
    assert_non_null(strstr(err, "largest decoded value (99)"));
    /* ...with a byte after it: damaged, whatever the limit */
    bin[102] = 0;
    assert_int_equal(decode(bin, 103, 10, &b, err), CODEC_EFORMAT);

    /* a structure: [1, "ab", null] renders as 15 bytes */
    const char *arr = "\x93\x01\xa2\x61\x62\xc0";
    assert_int_equal(decode(arr, 6, 15, &b, err), CODEC_OK);
    assert_buf(&b, "[1, \"ab\", null]", 15);
    for (size_t max = 0; max < 15; max++)
        assert_int_equal(decode(arr, 6, max, &b, err), CODEC_ETOOBIG);
    /* damaged (truncated) is EFORMAT even with a tiny limit */
    assert_int_equal(decode(arr, 5, 1, &b, err), CODEC_EFORMAT);

    /* a 5-byte array32 header expanding to many nils is bounded by the limit, not by memory */
    char *many = malloc(5 + 100000);
    memcpy(many, "\xdd\x00\x01\x86\xa0", 5);        /* 100000 */
    memset(many + 5, 0xc0, 100000);
    assert_int_equal(decode(many, 100005, 1000, &b, err), CODEC_ETOOBIG);
    assert_int_equal(decode(many, 100005, BIG, &b, err), CODEC_OK);
    assert_int_equal(b.len, 2 + 100000 * 4 + 99999 * 2);
    free(many);
    buf_deinit(&b);
}

/* Random damage to valid objects: an answer (any), no crash, no leak, no read past the end. */
static void test_msgpack_mutations(void **state)
{
    buf_t b;
    char err[CODEC_ERRLEN];
    uint32_t x = 777;

    buf_init(&b);
    for (int round = 0; round < 40; round++) {
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
        cmocka_unit_test(test_msgpack_name),
        cmocka_unit_test(test_msgpack_encode_golden),
        cmocka_unit_test(test_msgpack_decode_golden),
        cmocka_unit_test(test_msgpack_decode_refuses),
        cmocka_unit_test(test_msgpack_error_messages),
        cmocka_unit_test(test_msgpack_truncated_prefixes),
        cmocka_unit_test(test_msgpack_huge_declared_lengths),
        cmocka_unit_test(test_msgpack_deep_nesting),
        cmocka_unit_test(test_msgpack_max_decoded),
        cmocka_unit_test(test_msgpack_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
