/*
 * Unit tests for src/codec/pickle.c: cachetory's PickleSerializer format.
 *
 * The expected bytes come from CPython 3.11 itself: tests/unit/data/pickle_vectors.py writes
 * tests/unit/data/pickle_vectors.h (pickle.dumps of bytes at protocols 2..5 for many sizes, kept as the
 * bytes around the payload; pickle.dumps of many values at protocols 0..5 with what cachetoryd must
 * return; hand-made pickles with CPython's verdict). The rest — malicious pickles, limits, prefixes,
 * mutations, threads — is built here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>

#include <cmocka.h>

#include "codec/codec.h"
#include "util/buf.h"

#include "data/pickle_vectors.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define MIB (1024u * 1024u)

/* ---- helpers --------------------------------------------------------------------------------------- */

static codec_params_t params(int proto, size_t max_decoded)
{
    codec_params_t p;
    memset(&p, 0, sizeof(p));
    p.pickle_protocol = proto;
    p.max_decoded = max_decoded;
    return p;
}

/* Hex text to bytes (malloc'd; *n receives the length). */
static unsigned char *unhex(const char *hex, size_t *n)
{
    size_t len = strlen(hex);
    unsigned char *b = malloc(len / 2 + 1);
    assert_int_equal(len % 2, 0);
    for (size_t i = 0; i < len / 2; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        b[i] = (unsigned char)v;
    }
    *n = len / 2;
    return b;
}

/* The payload of the encode vectors: keep in sync with payload() in pickle_vectors.py. */
static unsigned char *pv_payload(size_t n)
{
    unsigned char *b = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(((i * 131 + 7) >> 1) & 0xff);
    return b;
}

/* FNV-1a 64, as fnv() in pickle_vectors.py. */
static unsigned long long pv_fnv(const void *p, size_t n)
{
    const unsigned char *s = p;
    unsigned long long h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 0x100000001b3ull;
    return h;
}

static int encode(int proto, const void *in, size_t n, buf_t *out, char *err)
{
    codec_params_t p = params(proto, 512 * MIB);
    buf_reset(out);
    err[0] = '\0';
    return codec_pickle.encode(NULL, &p, in, n, out, err);
}

static int decode_max(const void *in, size_t n, size_t max, buf_t *out, char *err)
{
    codec_params_t p = params(5, max);
    buf_reset(out);
    err[0] = '\0';
    int rc = codec_pickle.decode(NULL, &p, in, n, out, err);
    if (rc != CODEC_OK) {
        assert_true(err[0] != '\0');
        assert_true(strlen(err) < CODEC_ERRLEN);
        assert_memory_equal(err, "pickle: ", 8);
    }
    return rc;
}

static int decode(const void *in, size_t n, buf_t *out, char *err)
{
    return decode_max(in, n, 512 * MIB, out, err);
}

/* Decode and expect the exact text. */
static void expect_text(const char *pk, size_t n, const char *want)
{
    buf_t out;
    char err[CODEC_ERRLEN];
    buf_init(&out);
    int rc = decode(pk, n, &out, err);
    if (rc != CODEC_OK)
        fail_msg("decode failed (%d): %s", rc, err);
    if (out.len != strlen(want) || memcmp(out.data, want, out.len) != 0)
        fail_msg("got '%.*s', want '%s'", (int)out.len, out.data ? out.data : "", want);
    buf_deinit(&out);
}

/* Decode and expect an error code, and a message containing `part` (if not NULL). */
static void expect_error(const char *pk, size_t n, int want_rc, const char *part)
{
    buf_t out;
    char err[CODEC_ERRLEN];
    buf_init(&out);
    int rc = decode(pk, n, &out, err);
    if (rc != want_rc)
        fail_msg("rc %d, want %d (%s) output '%.*s'", rc, want_rc, err, (int)(out.len > 60 ? 60 : out.len),
                 out.data ? out.data : "");
    assert_int_equal(out.len, 0);
    if (part != NULL && strstr(err, part) == NULL)
        fail_msg("message '%s' lacks '%s'", err, part);
    buf_deinit(&out);
}

#define TEXT(lit, want) expect_text(lit, sizeof(lit) - 1, want)
#define ERROR(lit, rc, part) expect_error(lit, sizeof(lit) - 1, rc, part)
#define APPEND_LIT(b, lit) buf_append(b, lit, sizeof(lit) - 1)
#define DECODE_MAX(lit, max) decode_max(lit, sizeof(lit) - 1, max, &out, err)

/* ---- encode ---------------------------------------------------------------------------------------- */

/* pickle.dumps(payload, protocol=P) for P = 2..5 and sizes 0 .. 1 MiB, byte for byte. */
static void test_encode_vectors(void **state)
{
    buf_t out, want;
    char err[CODEC_ERRLEN];
    buf_init(&out);
    buf_init(&want);
    for (size_t v = 0; v < NELEM(pv_encodes); v++) {
        const pv_encode_t *e = &pv_encodes[v];
        unsigned char *pay = pv_payload(e->size);
        size_t pl, sl;
        unsigned char *pre = unhex(e->prefix, &pl), *suf = unhex(e->suffix, &sl);

        buf_reset(&want);
        buf_append(&want, pre, pl);
        if (e->proto == 2) {
            for (size_t i = 0; i < e->size; i++) {          /* the latin-1 text as UTF-8 */
                if (pay[i] < 0x80) {
                    buf_append(&want, &pay[i], 1);
                } else {
                    unsigned char u[2] = { (unsigned char)(0xc0 | (pay[i] >> 6)), (unsigned char)(0x80 | (pay[i] & 0x3f)) };
                    buf_append(&want, u, 2);
                }
            }
        } else {
            buf_append(&want, pay, e->size);
        }
        buf_append(&want, suf, sl);
        assert_int_equal(want.len, e->total);

        assert_int_equal(encode(e->proto, pay, e->size, &out, err), CODEC_OK);
        if (out.len != want.len || memcmp(out.data, want.data, want.len) != 0)
            fail_msg("protocol %d, %zu bytes: %zu bytes written, CPython writes %zu", e->proto, e->size, out.len,
                     want.len);
        free(pay);
        free(pre);
        free(suf);
    }
    buf_deinit(&out);
    buf_deinit(&want);
}

/* A few values whose whole pickles are spelled out (b'', b'latin1', bytes that look like opcodes). */
static void test_encode_whole(void **state)
{
    buf_t out;
    char err[CODEC_ERRLEN];
    buf_init(&out);
    for (size_t v = 0; v < NELEM(pv_wholes); v++) {
        size_t vl, pl;
        unsigned char *val = unhex(pv_wholes[v].value, &vl), *pk = unhex(pv_wholes[v].pickle, &pl);
        assert_int_equal(encode(pv_wholes[v].proto, val, vl, &out, err), CODEC_OK);
        assert_int_equal(out.len, pl);
        assert_memory_equal(out.data, pk, pl);
        free(val);
        free(pk);
    }
    buf_deinit(&out);
}

/* The literal forms, readable: what CPython writes for b'' and b'a\xff'. */
static void test_encode_literal(void **state)
{
    buf_t out;
    char err[CODEC_ERRLEN];
    buf_init(&out);

    assert_int_equal(encode(2, "", 0, &out, err), CODEC_OK);
    assert_int_equal(out.len, 28);
    assert_memory_equal(out.data, "\x80\x02" "c__builtin__\nbytes\n" "q\x00)Rq\x01.", 28);

    assert_int_equal(encode(2, "a\xff", 2, &out, err), CODEC_OK);
    static const char v2[] = "\x80\x02" "c_codecs\nencode\n" "q\x00" "X\x03\x00\x00\x00" "a\xc3\xbf" "q\x01"
                             "X\x06\x00\x00\x00" "latin1" "q\x02" "\x86" "q\x03" "R" "q\x04" ".";
    assert_int_equal(out.len, sizeof(v2) - 1);
    assert_memory_equal(out.data, v2, sizeof(v2) - 1);

    assert_int_equal(encode(3, "ab", 2, &out, err), CODEC_OK);
    assert_int_equal(out.len, 9);
    assert_memory_equal(out.data, "\x80\x03" "C\x02" "ab" "q\x00.", 9);

    assert_int_equal(encode(4, "ab", 2, &out, err), CODEC_OK);
    assert_int_equal(out.len, 17);
    assert_memory_equal(out.data, "\x80\x04\x95\x06\x00\x00\x00\x00\x00\x00\x00" "C\x02" "ab" "\x94.", 17);

    assert_int_equal(encode(5, "", 0, &out, err), CODEC_OK);
    assert_int_equal(out.len, 15);
    assert_memory_equal(out.data, "\x80\x05\x95\x04\x00\x00\x00\x00\x00\x00\x00" "C\x00" "\x94.", 15);
    buf_deinit(&out);
}

/* 64 KiB and more: CPython writes the bytes outside any frame (and MEMOIZE STOP unframed, too short). */
static void test_encode_frame_bypass(void **state)
{
    buf_t out;
    char err[CODEC_ERRLEN];
    size_t sizes[] = { 65535, 65536 };
    buf_init(&out);
    unsigned char *pay = pv_payload(65536);
    for (int proto = 4; proto <= 5; proto++) {
        for (size_t i = 0; i < NELEM(sizes); i++) {
            size_t n = sizes[i];
            assert_int_equal(encode(proto, pay, n, &out, err), CODEC_OK);
            const unsigned char *o = (const unsigned char *)out.data;
            assert_int_equal(o[0], 0x80);
            assert_int_equal(o[1], proto);
            if (n < 65536) {
                assert_int_equal(o[2], 0x95);           /* FRAME of everything after it */
                assert_int_equal(out.len, 11 + 5 + n + 2);
                assert_int_equal(o[3] | o[4] << 8 | o[5] << 16, 5 + n + 2);
                assert_int_equal(o[11], 'B');
            } else {
                assert_int_equal(o[2], 'B');            /* BINBYTES right after PROTO */
                assert_int_equal(out.len, 2 + 5 + n + 2);
            }
            assert_memory_equal(out.data + out.len - 2, "\x94.", 2);
        }
    }
    free(pay);
    buf_deinit(&out);
}

static void test_encode_bad_protocol(void **state)
{
    buf_t out;
    char err[CODEC_ERRLEN];
    int bad[] = { -1, 0, 1, 6, 100 };
    buf_init(&out);
    for (size_t i = 0; i < NELEM(bad); i++) {
        assert_int_equal(encode(bad[i], "a", 1, &out, err), CODEC_EINPUT);
        assert_non_null(strstr(err, "protocol"));
    }
    buf_deinit(&out);
}

/* What the encoder writes, the decoder reads back: every protocol, sizes across every boundary. */
static void test_roundtrip(void **state)
{
    buf_t enc, dec;
    char err[CODEC_ERRLEN];
    size_t sizes[] = { 0, 1, 2, 3, 4, 5, 127, 128, 255, 256, 65529, 65530, 65535, 65536, 65537, MIB + 1 };
    buf_init(&enc);
    buf_init(&dec);
    unsigned char *pay = pv_payload(MIB + 1);
    for (int proto = 2; proto <= 5; proto++) {
        for (size_t i = 0; i < NELEM(sizes); i++) {
            assert_int_equal(encode(proto, pay, sizes[i], &enc, err), CODEC_OK);
            assert_int_equal(decode(enc.data, enc.len, &dec, err), CODEC_OK);
            assert_int_equal(dec.len, sizes[i]);
            if (sizes[i])
                assert_memory_equal(dec.data, pay, sizes[i]);
        }
    }
    /* every byte value, at every protocol */
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    for (int proto = 2; proto <= 5; proto++) {
        assert_int_equal(encode(proto, all, 256, &enc, err), CODEC_OK);
        assert_int_equal(decode(enc.data, enc.len, &dec, err), CODEC_OK);
        assert_int_equal(dec.len, 256);
        assert_memory_equal(dec.data, all, 256);
    }
    free(pay);
    buf_deinit(&enc);
    buf_deinit(&dec);
}

/* ---- decode: CPython's pickles --------------------------------------------------------------------- */

static void check_decode_vector(const pv_decode_t *v, const unsigned char *pk, size_t pl, buf_t *out)
{
    char err[CODEC_ERRLEN];
    int rc = decode(pk, pl, out, err);
    if (rc != CODEC_OK)
        fail_msg("%s (protocol %d): %s", v->name, v->proto, err);
    if (v->want_json != NULL) {
        if (out->len != strlen(v->want_json) || memcmp(out->data, v->want_json, out->len) != 0)
            fail_msg("%s (protocol %d): got '%.*s', want '%s'", v->name, v->proto, (int)out->len, out->data,
                     v->want_json);
    } else if (v->want_hex != NULL) {
        size_t wl;
        unsigned char *want = unhex(v->want_hex, &wl);
        if (out->len != wl || (wl && memcmp(out->data, want, wl) != 0))
            fail_msg("%s (protocol %d): wrong bytes (%zu, want %zu)", v->name, v->proto, out->len, wl);
        free(want);
    } else {
        if (out->len != v->want_len || pv_fnv(out->data, out->len) != v->want_fnv)
            fail_msg("%s (protocol %d): wrong output (%zu bytes '%.60s...', want %zu)", v->name, v->proto, out->len,
                     out->data, v->want_len);
    }
}

/* pickle.dumps(v, protocol=P), P = 0..5: bytes, str, ints, floats, bools, None, containers. */
static void test_decode_vectors(void **state)
{
    buf_t out;
    buf_init(&out);
    for (size_t i = 0; i < NELEM(pv_decodes); i++) {
        size_t pl;
        unsigned char *pk = unhex(pv_decodes[i].pickle, &pl);
        check_decode_vector(&pv_decodes[i], pk, pl, &out);
        free(pk);
    }
    buf_deinit(&out);
}

/* The same with bytes after STOP: pickle.loads ignores them, and so do we. */
static void test_decode_trailing(void **state)
{
    buf_t out;
    buf_init(&out);
    for (size_t i = 0; i < NELEM(pv_decodes); i += 3) {
        size_t pl;
        unsigned char *pk = unhex(pv_decodes[i].pickle, &pl);
        unsigned char *more = malloc(pl + 5);
        memcpy(more, pk, pl);
        memcpy(more + pl, "\xff(]e.", 5);
        check_decode_vector(&pv_decodes[i], more, pl + 5, &out);
        free(more);
        free(pk);
    }
    TEXT("N.garbage", "null");
    buf_deinit(&out);
}

/* Every proper prefix of every valid pickle is refused (CPython: truncated), without a crash. */
static void test_decode_prefixes(void **state)
{
    buf_t out;
    char err[CODEC_ERRLEN];
    buf_init(&out);
    for (size_t i = 0; i < NELEM(pv_decodes); i++) {
        size_t pl;
        unsigned char *pk = unhex(pv_decodes[i].pickle, &pl);
        for (size_t k = 0; k < pl; k++) {
            unsigned char *cut = malloc(k ? k : 1);     /* exactly k bytes, so ASan sees any over-read */
            memcpy(cut, pk, k);
            int rc = decode(cut, k, &out, err);
            if (rc != CODEC_EFORMAT)
                fail_msg("%s (protocol %d): prefix of %zu bytes gave %d", pv_decodes[i].name, pv_decodes[i].proto,
                         k, rc);
            free(cut);
        }
        free(pk);
    }
    /* and of the encoder's pickles */
    unsigned char *pay = pv_payload(300);
    buf_t enc;
    buf_init(&enc);
    for (int proto = 2; proto <= 5; proto++) {
        assert_int_equal(encode(proto, pay, 300, &enc, err), CODEC_OK);
        for (size_t k = 0; k < enc.len; k++) {
            unsigned char *cut = malloc(k ? k : 1);
            memcpy(cut, enc.data, k);
            assert_int_equal(decode(cut, k, &out, err), CODEC_EFORMAT);
            free(cut);
        }
    }
    free(pay);
    buf_deinit(&enc);
    buf_deinit(&out);
}

/* Hand-made pickles: accepted and refused as CPython does, except the documented differences. */
static void test_decode_edges(void **state)
{
    buf_t out, pk;
    char err[CODEC_ERRLEN];
    buf_init(&out);
    buf_init(&pk);
    for (size_t i = 0; i < NELEM(pv_edges); i++) {
        const pv_edge_t *e = &pv_edges[i];
        size_t n;
        unsigned char *b;

        buf_reset(&pk);
        b = unhex(e->pre, &n);
        buf_append(&pk, b, n);
        free(b);
        for (size_t k = 0; k < e->run_len; k++) {
            char c = (char)e->run_byte;
            buf_append(&pk, &c, 1);
        }
        b = unhex(e->post, &n);
        buf_append(&pk, b, n);
        free(b);

        char *exact = malloc(pk.len ? pk.len : 1);
        memcpy(exact, pk.data, pk.len);
        int rc = decode(exact, pk.len, &out, err);
        free(exact);
        if (!e->ok) {
            if (rc != CODEC_EFORMAT)
                fail_msg("edge %zu (%.40s%s): rc %d, want CODEC_EFORMAT; output '%.*s'", i, e->pre, e->post, rc,
                         (int)(out.len > 40 ? 40 : out.len), out.data ? out.data : "");
            continue;
        }
        if (rc != CODEC_OK)
            fail_msg("edge %zu (%.40s%s): %s", i, e->pre, e->post, err);
        if (e->want_hex != NULL) {
            unsigned char *want = unhex(e->want_hex, &n);
            if (out.len != n || (n && memcmp(out.data, want, n) != 0))
                fail_msg("edge %zu (%.40s%s): got '%.*s'", i, e->pre, e->post, (int)out.len, out.data);
            free(want);
        } else if (out.len != e->want_len || pv_fnv(out.data, out.len) != e->want_fnv) {
            fail_msg("edge %zu (%.40s%s): got %zu bytes", i, e->pre, e->post, out.len);
        }
    }
    buf_deinit(&pk);
    buf_deinit(&out);
}

/* Scalars and structures, readable. */
static void test_decode_values(void **state)
{
    TEXT("\x80\x05\x95\x0b\x00\x00\x00\x00\x00\x00\x00\x8c\x07h\xc3\xa9llo!\x94.", "h\xc3\xa9llo!");    /* str: UTF-8 */
    TEXT("\x80\x04K\x05.", "5");
    TEXT("\x80\x02\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01.", "18446744073709551616");
    TEXT("\x80\x02\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\xff.", "-18446744073709551616");
    TEXT("\x80\x02\x8a\x08\xff\xff\xff\xff\xff\xff\xff\x7f.", "9223372036854775807");
    TEXT("\x80\x02\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80.", "-9223372036854775808");
    TEXT("L99999999999999999999L\n.", "99999999999999999999");
    TEXT("I-7\n.", "-7");
    TEXT("I01\n.", "true");
    TEXT("G?\xb9\x99\x99\x99\x99\x99\x9a.", "0.1");
    TEXT("G\x7f\xf8\x00\x00\x00\x00\x00\x00.", "NaN");
    TEXT("\x88.", "true");
    TEXT("N.", "null");
    TEXT("](K\x01X\x01\x00\x00\x00" "aN\x88\x89" "e.", "[1, \"a\", null, true, false]");
    TEXT("(K\x01(K\x02tt.", "[1, [2]]");
    TEXT("}(X\x01\x00\x00\x00" "a]X\x01\x00\x00\x00" "b}u.", "{\"a\": [], \"b\": {}}");
    /* bytes inside a structure: their latin-1 text (json.dumps would raise) */
    TEXT("](C\x02\xff\x00" "C\x01\"e.", "[\"\\u00ff\\u0000\", \"\\\"\"]");
    /* dict keys as json.dumps converts them */
    TEXT("}(NK\x01\x88K\x02G?\xf8\x00\x00\x00\x00\x00\x00K\x03\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01K\x04u.",
         "{\"null\": 1, \"true\": 2, \"1.5\": 3, \"18446744073709551616\": 4}");
    /* 1, 1.0 and True are one key: the first key object stays, the last value wins */
    TEXT("}(K\x01K\x01G?\xf0\x00\x00\x00\x00\x00\x00K\x02\x88K\x03u.", "{\"1\": 3}");
    /* shared, not circular: rendered twice */
    TEXT("]q\x00K\x07" "a](h\x00h\x00" "e.", "[[7], [7]]");
}

/* ---- malicious pickles ----------------------------------------------------------------------------- */

static void test_malicious_code(void **state)
{
    ERROR("cos\nsystem\n(Vtouch /tmp/pwned\ntR.", CODEC_EFORMAT, "global os.system is not allowed");
    ERROR("\x80\x02" "cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.", CODEC_EFORMAT,
          "global posix.system is not allowed");
    ERROR("\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x02id\x85R.", CODEC_EFORMAT, "global os.system is not allowed");
    ERROR("cbuiltins\neval\n(V__import__('os')\ntR.", CODEC_EFORMAT, "global builtins.eval");
    ERROR("\x80\x02}N\x8c\x01" "a\x86" "b.", CODEC_EFORMAT, "unsupported opcode 0x62 (BUILD) at offset 8");
    ERROR("(cos\nsystem\nVid\no.", CODEC_EFORMAT, "global os.system");
    ERROR("(K\x01o.", CODEC_EFORMAT, "unsupported opcode 0x6f (OBJ)");
    ERROR("(ios\nsystem\nVid\n.", CODEC_EFORMAT, "unsupported opcode 0x69 (INST)");
    ERROR("N)\x81.", CODEC_EFORMAT, "unsupported opcode 0x81 (NEWOBJ)");
    ERROR("N)}\x92.", CODEC_EFORMAT, "unsupported opcode 0x92 (NEWOBJ_EX)");
    ERROR("P1\n.", CODEC_EFORMAT, "unsupported opcode 0x50 (PERSID)");
    ERROR("NQ.", CODEC_EFORMAT, "unsupported opcode 0x51 (BINPERSID)");
    ERROR("\x82\x01.", CODEC_EFORMAT, "unsupported opcode 0x82 (EXT1)");
    ERROR("\x8f.", CODEC_EFORMAT, "unsupported opcode 0x8f (EMPTY_SET)");
    ERROR("\x97.", CODEC_EFORMAT, "unsupported opcode 0x97 (NEXT_BUFFER)");
    ERROR("\xff.", CODEC_EFORMAT, "invalid opcode 0xff at offset 0");
    /* the allowed callables, misused */
    ERROR("c_codecs\nencode\n(Vabc\nVrot13\ntR.", CODEC_EFORMAT, "only _codecs.encode(str, 'latin1')");
    ERROR("cbuiltins\nbytes\n(I1000000000\ntR.", CODEC_EFORMAT, "only bytes() with no argument");
    ERROR("\x80\x03" "c__builtin__\nbytes\n)R.", CODEC_EFORMAT, "global __builtin__.bytes");     /* as CPython */
    ERROR("K\x01)R.", CODEC_EFORMAT, "REDUCE of a int");
    ERROR("c_codecs\nencode\n.", CODEC_EFORMAT, "builtin_function_or_method cannot be rendered");
    ERROR("](c_codecs\nencode\ne.", CODEC_EFORMAT, "cannot be rendered");
}

static void test_malicious_lengths(void **state)
{
    ERROR("\x8e\x00\x00\x00\x00\x00\x00\x00\x10" "abc.", CODEC_EFORMAT, "truncated in BINBYTES8");     /* 2^60 */
    ERROR("\x8e\xff\xff\xff\xff\xff\xff\xff\xff" "abc.", CODEC_EFORMAT, "truncated in BINBYTES8");
    ERROR("\x8d\xff\xff\xff\xff\xff\xff\xff\x7f" "abc.", CODEC_EFORMAT, "truncated in BINUNICODE8");
    ERROR("\x96\x00\x00\x00\x00\x00\x00\x00\x01" "abc.", CODEC_EFORMAT, "truncated in BYTEARRAY8");
    ERROR("\x95\x00\x00\x00\x00\x00\x00\x00\x40" "N.", CODEC_EFORMAT, "FRAME at offset 0 declares");
    ERROR("B\xff\xff\xff\xff" "abc.", CODEC_EFORMAT, "truncated in BINBYTES at offset 0");
    ERROR("X\xff\xff\xff\x7f" "abc.", CODEC_EFORMAT, "truncated in BINUNICODE");
    ERROR("\x8b\xff\xff\xff\x7f" "abc.", CODEC_EFORMAT, "truncated in LONG4");
    ERROR("\x8b\xff\xff\xff\xff" "abc.", CODEC_EFORMAT, "negative byte count");
    ERROR("T\xff\xff\xff\x7f" "abc.", CODEC_EFORMAT, "truncated in BINSTRING");
    ERROR("\x8a\xff" "abc.", CODEC_EFORMAT, "truncated in LONG1");
    ERROR("Nr\xff\xff\xff\x7f.", CODEC_EFORMAT, "memo key 2147483647 is out of range");
    ERROR("Np99999999999999\n.", CODEC_EFORMAT, "out of range");
    ERROR("Nj\xff\xff\xff\xff.", CODEC_EFORMAT, "memo value not found at index 4294967295");
    ERROR("", CODEC_EFORMAT, "empty");
    ERROR("N", CODEC_EFORMAT, "no STOP opcode");
    ERROR("\x80\x06N.", CODEC_EFORMAT, "unsupported pickle protocol: 6");
}

static buf_t *repeat(buf_t *b, const char *s, size_t n, size_t times)
{
    for (size_t i = 0; i < times; i++)
        buf_append(b, s, n);
    return b;
}

/* 100000 nested MARKs: as in CPython, open MARKs under the result are fine; 100000 nested lists are not
 * renderable (json.dumps: RecursionError). Memory stays proportional to the input. */
static void test_malicious_nesting(void **state)
{
    buf_t pk;
    buf_init(&pk);

    repeat(&pk, "(", 1, 100000);
    buf_append(&pk, "].", 2);
    expect_text(pk.data, pk.len, "[]");

    buf_reset(&pk);
    repeat(&pk, "(", 1, 100000);
    buf_append(&pk, ".", 1);
    expect_error(pk.data, pk.len, CODEC_EFORMAT, "unexpected MARK found");

    buf_reset(&pk);
    repeat(&pk, "(", 1, 100000);
    repeat(&pk, "l", 1, 100000);
    buf_append(&pk, ".", 1);
    expect_error(pk.data, pk.len, CODEC_EFORMAT, "nested deeper than 1000 levels");

    buf_reset(&pk);
    repeat(&pk, "](", 2, 100000);
    repeat(&pk, "e", 1, 100000);
    buf_append(&pk, ".", 1);
    expect_error(pk.data, pk.len, CODEC_EFORMAT, "nested deeper than 1000 levels");

    /* 1000 levels render; 1001 do not */
    buf_reset(&pk);
    repeat(&pk, "(", 1, 1001);
    repeat(&pk, "t", 1, 1001);
    buf_append(&pk, ".", 1);
    expect_error(pk.data, pk.len, CODEC_EFORMAT, "nested deeper");
    buf_reset(&pk);
    repeat(&pk, "(", 1, 1000);
    repeat(&pk, "t", 1, 1000);
    buf_append(&pk, ".", 1);
    {
        buf_t out;
        char err[CODEC_ERRLEN];
        buf_init(&out);
        assert_int_equal(decode(pk.data, pk.len, &out, err), CODEC_OK);
        assert_int_equal(out.len, 2 * 1000);
        buf_deinit(&out);
    }

    /* a 600-level list D, then (D, X) where X is D inside 500 more lists: D alone renders, but at depth
     * 501 it goes past 1000 levels, even though its text is copied from its first rendering */
    buf_reset(&pk);
    repeat(&pk, "(", 1, 599);
    buf_append(&pk, "]", 1);
    repeat(&pk, "l", 1, 599);
    APPEND_LIT(&pk, "q\x00");
    repeat(&pk, "(", 1, 500);
    APPEND_LIT(&pk, "h\x00");
    repeat(&pk, "l", 1, 500);
    APPEND_LIT(&pk, "\x86.");
    expect_error(pk.data, pk.len, CODEC_EFORMAT, "nested deeper than 1000 levels");
    pk.len -= 2;
    APPEND_LIT(&pk, "0h\x00h\x00\x86.");        /* (D, D) instead: fine */
    {
        buf_t out;
        char err[CODEC_ERRLEN];
        buf_init(&out);
        assert_int_equal(decode(pk.data, pk.len, &out, err), CODEC_OK);
        assert_int_equal(out.len, 1 + 1200 + 2 + 1200 + 1);     /* [D, D], D = "[[...]]" 600 deep */
        buf_deinit(&out);
    }

    /* a tuple key 100000 deep: refused, not recursed into */
    buf_reset(&pk);
    buf_append(&pk, "}", 1);
    repeat(&pk, "(", 1, 100000);
    repeat(&pk, "t", 1, 100000);
    buf_append(&pk, "K\x01s.", 4);
    expect_error(pk.data, pk.len, CODEC_EFORMAT, "dict key of type tuple");
    buf_deinit(&pk);
}

/* A list that contains itself, directly or not: json.dumps says "Circular reference detected". */
static void test_malicious_cycles(void **state)
{
    buf_t pk;
    buf_init(&pk);
    ERROR("]q\x00h\x00" "a.", CODEC_EFORMAT, "circular reference");
    ERROR("}q\x00X\x01\x00\x00\x00" "ah\x00s.", CODEC_EFORMAT, "circular reference");
    ERROR("]q\x00h\x00\x85" "a.", CODEC_EFORMAT, "circular reference");            /* L = [(L,)] */
    ERROR("]q\x00]q\x01h\x00" "aa.", CODEC_EFORMAT, "circular reference");       /* A = [B], B = [A] */
    TEXT("]q\x00]q\x01h\x00" "ah\x01h\x00" "a.", "[[], []]");                      /* shared, no cycle */
    TEXT("](]q\x00" "e.", "[[]]");                                                  /* no cycle */
    /* appended to itself 100000 times */
    buf_append(&pk, "]q\x00(", 4);
    repeat(&pk, "h\x00", 2, 100000);
    buf_append(&pk, "e.", 2);
    expect_error(pk.data, pk.len, CODEC_EFORMAT, "circular reference");
    buf_deinit(&pk);
}

/*
 * Memo bomb: L0 = [0, 1, ..., 9], L(i+1) = [Li] * 50, 10 levels: a 2.5 KiB pickle whose JSON would be
 * 50^10 elements. The output stops at max_decoded, quickly.
 */
static void test_malicious_memo_bomb(void **state)
{
    buf_t pk, out;
    char err[CODEC_ERRLEN];
    buf_init(&pk);
    buf_init(&out);
    APPEND_LIT(&pk, "\x80\x02](K\x00K\x01K\x02K\x03K\x04K\x05K\x06K\x07K\x08K\x09" "eq\x00");
    for (int level = 1; level <= 10; level++) {
        char get[2] = { 'h', (char)(level - 1) };
        char put[2] = { 'q', (char)level };
        buf_append(&pk, "](", 2);
        repeat(&pk, get, 2, 50);
        buf_append(&pk, "e", 1);
        buf_append(&pk, put, 2);
    }
    buf_append(&pk, ".", 1);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(decode_max(pk.data, pk.len, 4 * MIB, &out, err), CODEC_ETOOBIG);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_non_null(strstr(err, "larger than the largest decoded value (4194304)"));
    assert_int_equal(out.len, 0);
    assert_true(t1.tv_sec - t0.tv_sec < 5);

    /* floats: each is rendered once (float repr is slow), then copied */
    buf_reset(&pk);
    APPEND_LIT(&pk, "\x80\x02](G?\xf1\x99\x99\x99\x99\x99\x9aG@\x01\x99\x99\x99\x99\x99\x9a" "eq\x00");
    for (int level = 1; level <= 10; level++) {
        char get[2] = { 'h', (char)(level - 1) };
        char put[2] = { 'q', (char)level };
        buf_append(&pk, "](", 2);
        repeat(&pk, get, 2, 50);
        buf_append(&pk, "e", 1);
        buf_append(&pk, put, 2);
    }
    buf_append(&pk, ".", 1);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(decode_max(pk.data, pk.len, 64 * MIB, &out, err), CODEC_ETOOBIG);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec < 5);
    assert_int_equal(decode_max(pk.data, 40 + 5 * 104 + 1, 64 * MIB, &out, err), CODEC_EFORMAT);   /* cut */
    pk.len = 40 + 3 * 104;
    buf_append(&pk, ".", 1);       /* three levels: 2 * 50^3 floats */
    assert_int_equal(decode_max(pk.data, pk.len, 64 * MIB, &out, err), CODEC_OK);
    assert_memory_equal(out.data, "[[[[1.1, 2.2], [1.1, 2.2]", 25);
    size_t len = 10;                /* "[1.1, 2.2]" */
    for (int level = 1; level <= 3; level++)
        len = 2 + 50 * len + 49 * 2;
    assert_int_equal(out.len, len);

    /* the same structure, two levels: small enough, rendered in full */
    buf_reset(&pk);
    APPEND_LIT(&pk, "](K\x01K\x02" "eq\x00](h\x00h\x00" "eq\x01](h\x01h\x01h\x01" "e.");
    expect_text(pk.data, pk.len, "[[[1, 2], [1, 2]], [[1, 2], [1, 2]], [[1, 2], [1, 2]]]");

    /* a dict set 100000 times with the same key, then referenced 100000 times: merged once */
    buf_reset(&pk);
    buf_append(&pk, "}q\x00(", 4);
    repeat(&pk, "K\x01K\x02", 4, 100000);
    buf_append(&pk, "u](", 3);
    repeat(&pk, "h\x00", 2, 100000);
    buf_append(&pk, "e.", 2);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(decode(pk.data, pk.len, &out, err), CODEC_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(out.len, 2 + 100000 * 10 - 2);        /* [{"1": 2}, {"1": 2}, ...] */
    assert_memory_equal(out.data, "[{\"1\": 2}, {\"1\": 2}, ", 21);
    assert_true(t1.tv_sec - t0.tv_sec < 5);
    buf_deinit(&pk);
    buf_deinit(&out);
}

/* max_decoded: the result never grows past it, whatever its type. */
static void test_max_decoded(void **state)
{
    buf_t out, enc;
    char err[CODEC_ERRLEN];
    buf_init(&out);
    buf_init(&enc);
    unsigned char *pay = pv_payload(1000);
    for (int proto = 2; proto <= 5; proto++) {
        assert_int_equal(encode(proto, pay, 1000, &enc, err), CODEC_OK);
        assert_int_equal(decode_max(enc.data, enc.len, 1000, &out, err), CODEC_OK);
        assert_int_equal(out.len, 1000);
        assert_int_equal(decode_max(enc.data, enc.len, 999, &out, err), CODEC_ETOOBIG);
        assert_int_equal(out.len, 0);
    }
    /* str */
    assert_int_equal(DECODE_MAX("\x8c\x03" "abc.", 3), CODEC_OK);
    assert_int_equal(DECODE_MAX("\x8c\x03" "abc.", 2), CODEC_ETOOBIG);
    /* JSON: "[1, 2]" is 6 bytes */
    assert_int_equal(DECODE_MAX("(K\x01K\x02l.", 6), CODEC_OK);
    assert_int_equal(DECODE_MAX("(K\x01K\x02l.", 5), CODEC_ETOOBIG);
    /* a str inside a structure is checked before it is written */
    assert_int_equal(DECODE_MAX("(X\x05\x00\x00\x00" "abcdel.", 8), CODEC_ETOOBIG);
    assert_int_equal(DECODE_MAX("(X\x05\x00\x00\x00" "abcdel.", 9), CODEC_OK);
    /* scalars too */
    assert_int_equal(DECODE_MAX("J\xff\xff\xff\x7f.", 10), CODEC_OK);      /* 2147483647 */
    assert_int_equal(DECODE_MAX("J\xff\xff\xff\x7f.", 9), CODEC_ETOOBIG);
    assert_int_equal(DECODE_MAX("N.", 3), CODEC_ETOOBIG);
    free(pay);
    buf_deinit(&out);
    buf_deinit(&enc);
}

/* Deterministic mutations of valid pickles: never a crash, an over-read or an unbounded result. */
static void test_mutations(void **state)
{
    buf_t out, pk;
    char err[CODEC_ERRLEN];
    uint64_t x = 0x9e3779b97f4a7c15ull;
    static const unsigned char interesting[] = { '(', ')', '.', '0', '1', '2', 'R', 'a', 'e', 'h', 'l', 'q', 's',
                                                 't', 'u', ']', '}', 0x85, 0x86, 0x87, 0x8a, 0x8b, 0x94, 0x95,
                                                 0x00, 0x7f, 0x80, 0xff };
    buf_init(&out);
    buf_init(&pk);
    for (int round = 0; round < 20000; round++) {
        const pv_decode_t *v = &pv_decodes[round % NELEM(pv_decodes)];
        size_t pl;
        unsigned char *orig = unhex(v->pickle, &pl);
        buf_reset(&pk);
        buf_append(&pk, orig, pl);
        free(orig);
        int edits = 1 + (int)(round % 4);
        for (int e = 0; e < edits && pk.len > 0; e++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            size_t at = (size_t)(x % pk.len);
            unsigned char c = (x >> 32) & 1 ? interesting[(x >> 40) % sizeof(interesting)] : (unsigned char)(x >> 48);
            switch ((x >> 56) % 4) {
            case 0: pk.data[at] = (char)c; break;                               /* replace */
            case 1: buf_append(&pk, "", 1); memmove(pk.data + at + 1, pk.data + at, pk.len - at - 1);
                    pk.data[at] = (char)c; break;                               /* insert */
            case 2: memmove(pk.data + at, pk.data + at + 1, pk.len - at - 1); pk.len--; break;     /* delete */
            default: pk.len = at; break;                                        /* cut */
            }
        }
        char *exact = malloc(pk.len ? pk.len : 1);
        memcpy(exact, pk.data, pk.len);
        int rc = decode_max(exact, pk.len, 64 * 1024, &out, err);
        free(exact);
        assert_true(rc == CODEC_OK || rc == CODEC_EFORMAT || rc == CODEC_ETOOBIG);
        assert_true(out.len <= 64 * 1024);
        if (rc != CODEC_OK)
            assert_int_equal(out.len, 0);
    }
    buf_deinit(&pk);
    buf_deinit(&out);
}

/* No shared state: decoding and encoding from several threads at once give the same results. */
static void *thread_main(void *arg)
{
    buf_t out, enc;
    char err[CODEC_ERRLEN];
    long bad = 0;
    buf_init(&out);
    buf_init(&enc);
    for (int rep = 0; rep < 3; rep++) {
        for (size_t i = (size_t)(uintptr_t)arg; i < NELEM(pv_decodes); i += 2) {
            const pv_decode_t *v = &pv_decodes[i];
            size_t pl;
            unsigned char *pk = unhex(v->pickle, &pl);
            codec_params_t p = params(5, 512 * MIB);
            buf_reset(&out);
            if (codec_pickle.decode(NULL, &p, (const char *)pk, pl, &out, err) != CODEC_OK)
                bad++;
            else if (v->want_json && (out.len != strlen(v->want_json) || memcmp(out.data, v->want_json, out.len)))
                bad++;
            else if (!v->want_json && !v->want_hex && pv_fnv(out.data, out.len) != v->want_fnv)
                bad++;
            free(pk);
            p.pickle_protocol = 2 + (int)(i % 4);
            buf_reset(&enc);
            if (codec_pickle.encode(NULL, &p, v->pickle, strlen(v->pickle), &enc, err) != CODEC_OK)
                bad++;
        }
    }
    buf_deinit(&out);
    buf_deinit(&enc);
    return (void *)(intptr_t)bad;
}

static void test_threads(void **state)
{
    pthread_t t[4];
    for (uintptr_t i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, thread_main, (void *)(i % 2)), 0);
    for (int i = 0; i < 4; i++) {
        void *bad;
        assert_int_equal(pthread_join(t[i], &bad), 0);
        assert_int_equal((intptr_t)bad, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_vectors),
        cmocka_unit_test(test_encode_whole),
        cmocka_unit_test(test_encode_literal),
        cmocka_unit_test(test_encode_frame_bypass),
        cmocka_unit_test(test_encode_bad_protocol),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_decode_vectors),
        cmocka_unit_test(test_decode_trailing),
        cmocka_unit_test(test_decode_prefixes),
        cmocka_unit_test(test_decode_edges),
        cmocka_unit_test(test_decode_values),
        cmocka_unit_test(test_malicious_code),
        cmocka_unit_test(test_malicious_lengths),
        cmocka_unit_test(test_malicious_nesting),
        cmocka_unit_test(test_malicious_cycles),
        cmocka_unit_test(test_malicious_memo_bomb),
        cmocka_unit_test(test_max_decoded),
        cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
