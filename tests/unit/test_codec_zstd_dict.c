/*
 * Unit tests for zstd://?dictionary=PATH (src/codec/zstd.c, src/codec/chain.c): frames carry the
 * dictionary's ID and are standard (libzstd with the same dictionary reads them, as `zstd -D` does), frames
 * made by libzstd with the dictionary read back, frames without a dictionary still read back, a frame
 * naming another dictionary is not decoded (mixed: as stored; strict: an error) and is counted, and
 * files that are not dictionaries are refused with the file's name. Dictionaries are trained here with
 * ZDICT on a fixed, generated set of small JSON documents.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <zdict.h>
#include <zstd.h>

#include "codec/chain.h"
#include "codec/codec.h"
#include "util/buf.h"

#define NSAMPLES 1500
#define DICT_CAP 8192

typedef struct fixture {
    char path[64];              /* the dictionary file */
    char other[64];             /* a second dictionary (another ID) */
    char garbage[64];           /* not a dictionary */
    buf_t samples;              /* the documents, back to back */
    size_t sizes[NSAMPLES];
    char dict[DICT_CAP];
    size_t dict_len;
} fixture_t;

/* Document i of a set: like the values a cache holds (JSON of one user). */
static int make_doc(char *out, size_t cap, unsigned seed, int i)
{
    static const char *const cities[] = { "Paris", "Berlin", "Madrid", "Rome", "Lisbon" };
    static const char *const roles[] = { "admin", "editor", "viewer", "owner" };
    unsigned x = seed * 2654435761u + (unsigned)i * 40503u;
    return snprintf(out, cap,
                    "{\"id\": %d, \"name\": \"user%d\", \"email\": \"user%d@example.com\", \"active\": %s, "
                    "\"role\": \"%s\", \"city\": \"%s\", \"zip\": \"%05u\", \"score\": %u.%02u}",
                    i, i, i, (x & 1) ? "true" : "false", roles[(x >> 3) % 4], cities[(x >> 7) % 5],
                    (x >> 5) % 100000, (x >> 11) % 1000, (x >> 17) % 100);
}

static size_t train(fixture_t *f, unsigned seed, char *dict)
{
    buf_t s;
    size_t sizes[NSAMPLES];
    char doc[512];

    buf_init(&s);
    for (int i = 0; i < NSAMPLES; i++) {
        int n = make_doc(doc, sizeof(doc), seed, i);
        buf_append(&s, doc, (size_t)n);
        sizes[i] = (size_t)n;
    }
    size_t r = ZDICT_trainFromBuffer(dict, DICT_CAP, s.data, sizes, NSAMPLES);
    assert_false(ZDICT_isError(r));
    if (seed == 1) {
        f->samples = s;
        memcpy(f->sizes, sizes, sizeof(sizes));
    } else {
        buf_deinit(&s);
    }
    return r;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    fclose(fp);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    char other[DICT_CAP];
    int pid = (int)getpid();

    snprintf(f->path, sizeof(f->path), "/tmp/ctd-dict-%d-a", pid);
    snprintf(f->other, sizeof(f->other), "/tmp/ctd-dict-%d-b", pid);
    snprintf(f->garbage, sizeof(f->garbage), "/tmp/ctd-dict-%d-g", pid);
    f->dict_len = train(f, 1, f->dict);
    write_file(f->path, f->dict, f->dict_len);
    size_t olen = train(f, 2, other);
    assert_int_not_equal(ZDICT_getDictID(f->dict, f->dict_len), ZDICT_getDictID(other, olen));
    write_file(f->other, other, olen);
    char junk[4096];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (char)(i * 7 + 3);
    write_file(f->garbage, junk, sizeof(junk));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    unlink(f->path);
    unlink(f->other);
    unlink(f->garbage);
    buf_deinit(&f->samples);
    free(f);
    return 0;
}

static chain_t *chain_with(const char *query_fmt, const char *path)
{
    char url[256], err[512];
    snprintf(url, sizeof(url), query_fmt, path);
    chain_t *ch = chain_create(url, 1 << 20, err, sizeof(err));
    if (ch == NULL)
        fail_msg("%s: %s", url, err);
    return ch;
}

/* Values written with the dictionary carry its ID, read back, and take far less room than plain zstd. */
static void test_dict_round_trip_and_ratio(void **state)
{
    fixture_t *f = *state;
    chain_t *ch = chain_with("zstd://?dictionary=%s", f->path);
    chain_t *plain = chain_with("zstd://%s", "");
    buf_t enc, dec;
    char err[CODEC_ERRLEN + 32], doc[512];
    size_t raw = 0, with = 0, without = 0;
    int undecoded;
    unsigned id = ZDICT_getDictID(f->dict, f->dict_len);

    assert_int_equal(codec_zstd_dicts_encode_id(chain_dicts(ch)), id);
    buf_init(&enc);
    buf_init(&dec);
    for (int i = 0; i < 300; i++) {
        int n = make_doc(doc, sizeof(doc), 9, i);          /* documents not in the training set */
        buf_reset(&enc);
        assert_int_equal(chain_encode(ch, chain_main_ctx(ch), doc, (size_t)n, &enc, err), CHAIN_OUT);
        assert_int_equal(ZSTD_getDictID_fromFrame(enc.data, enc.len), id);
        with += enc.len;
        raw += (size_t)n;
        buf_reset(&dec);
        assert_int_equal(chain_decode(ch, chain_main_ctx(ch), enc.data, enc.len, &dec, err, &undecoded), CHAIN_OUT);
        assert_int_equal(dec.len, (size_t)n);
        assert_memory_equal(dec.data, doc, (size_t)n);
        /* libzstd alone, given the dictionary (what `zstd -D dict -d` does), reads the frame */
        char back[512];
        ZSTD_DCtx *dc = ZSTD_createDCtx();
        size_t r = ZSTD_decompress_usingDict(dc, back, sizeof(back), enc.data, enc.len, f->dict,
                                             f->dict_len);
        ZSTD_freeDCtx(dc);
        assert_false(ZSTD_isError(r));
        assert_int_equal(r, (size_t)n);
        buf_reset(&enc);
        assert_int_equal(chain_encode(plain, chain_main_ctx(plain), doc, (size_t)n, &enc, err), CHAIN_OUT);
        without += enc.len;
    }
    /* ~180-byte documents: a dictionary makes them a fraction of their plain-zstd size */
    assert_true(with * 2 < without);
    assert_true(with * 3 < raw);
    buf_deinit(&enc);
    buf_deinit(&dec);
    chain_destroy(ch);
    chain_destroy(plain);
}

/* Frames made elsewhere: with the dictionary and a checksum (the zstd CLI's default), without any
 * dictionary (cachetory's), and streamed without a content size, all read back. */
static void test_dict_reads_foreign_frames(void **state)
{
    fixture_t *f = *state;
    chain_t *ch = chain_with("zstd://?dictionary=%s", f->path);
    char doc[512], frame[1024], err[CODEC_ERRLEN + 32];
    int n = make_doc(doc, sizeof(doc), 5, 42), undecoded;
    buf_t dec;

    buf_init(&dec);
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
    ZSTD_CCtx_loadDictionary(cc, f->dict, f->dict_len);
    size_t len = ZSTD_compress2(cc, frame, sizeof(frame), doc, (size_t)n);
    assert_false(ZSTD_isError(len));
    assert_int_equal(chain_decode(ch, chain_main_ctx(ch), frame, len, &dec, err, &undecoded), CHAIN_OUT);
    assert_memory_equal(dec.data, doc, (size_t)n);

    len = ZSTD_compress(frame, sizeof(frame), doc, (size_t)n, 3);
    buf_reset(&dec);
    assert_int_equal(chain_decode(ch, chain_main_ctx(ch), frame, len, &dec, err, &undecoded), CHAIN_OUT);
    assert_memory_equal(dec.data, doc, (size_t)n);

    ZSTD_CCtx_reset(cc, ZSTD_reset_session_and_parameters);
    ZSTD_CCtx_loadDictionary(cc, f->dict, f->dict_len);
    ZSTD_inBuffer in = { doc, (size_t)n, 0 };
    ZSTD_outBuffer out = { frame, sizeof(frame), 0 };
    /* fed in two steps, as a pipe gives it: the frame cannot declare its size */
    assert_false(ZSTD_isError(ZSTD_compressStream2(cc, &out, &in, ZSTD_e_continue)));
    ZSTD_inBuffer none = { NULL, 0, 0 };
    assert_int_equal(ZSTD_compressStream2(cc, &out, &none, ZSTD_e_end), 0);
    assert_int_equal(ZSTD_getFrameContentSize(frame, out.pos), ZSTD_CONTENTSIZE_UNKNOWN);
    buf_reset(&dec);
    assert_int_equal(chain_decode(ch, chain_main_ctx(ch), frame, out.pos, &dec, err, &undecoded), CHAIN_OUT);
    assert_int_equal(dec.len, (size_t)n);
    assert_memory_equal(dec.data, doc, (size_t)n);
    /* and a plain frame right after a streamed dictionary one: the dictionary does not stick */
    len = ZSTD_compress(frame, sizeof(frame), doc, (size_t)n, 3);
    buf_reset(&dec);
    assert_int_equal(chain_decode(ch, chain_main_ctx(ch), frame, len, &dec, err, &undecoded), CHAIN_OUT);
    assert_memory_equal(dec.data, doc, (size_t)n);
    ZSTD_freeCCtx(cc);
    buf_deinit(&dec);
    chain_destroy(ch);
}

/* A frame naming a dictionary the chain lacks: returned as stored (mixed) or an error (strict), never a
 * wrong value, and counted. */
static void test_dict_unknown_id(void **state)
{
    fixture_t *f = *state;
    chain_t *ch = chain_with("zstd://?dictionary=%s", f->path);
    chain_t *strict = chain_with("zstd://?strict=yes&dictionary=%s", f->path);
    chain_t *other = chain_with("zstd://?dictionary=%s", f->other);
    char doc[512], err[CODEC_ERRLEN + 32];
    int n = make_doc(doc, sizeof(doc), 3, 7), undecoded = 0;
    buf_t enc, dec;

    buf_init(&enc);
    buf_init(&dec);
    assert_int_equal(chain_encode(other, chain_main_ctx(other), doc, (size_t)n, &enc, err), CHAIN_OUT);
    assert_int_equal(codec_zstd_dicts_unknown(chain_dicts(ch)), 0);
    assert_int_equal(chain_decode(ch, chain_main_ctx(ch), enc.data, enc.len, &dec, err, &undecoded), CHAIN_AS_IS);
    assert_int_equal(undecoded, CHAIN_UNDECODED_NODICT);
    assert_int_equal(codec_zstd_dicts_unknown(chain_dicts(ch)), 1);
    assert_int_equal(chain_decode(strict, chain_main_ctx(strict), enc.data, enc.len, &dec, err, &undecoded),
                     CHAIN_ERROR);
    assert_non_null(strstr(err, "dictionary ID"));
    /* a chain without any dictionary refuses it the same way */
    chain_t *plain = chain_with("zstd://?strict=yes%s", "");
    assert_int_equal(chain_decode(plain, chain_main_ctx(plain), enc.data, enc.len, &dec, err, &undecoded),
                     CHAIN_ERROR);
    assert_non_null(strstr(err, "does not have"));
    buf_deinit(&enc);
    buf_deinit(&dec);
    chain_destroy(ch);
    chain_destroy(strict);
    chain_destroy(other);
    chain_destroy(plain);
}

/* A dictionary cut short under the same ID (as a damaged upstream key would be): the frames made with the
 * whole one carry a checksum, and fail it, instead of decoding to other bytes. Mixed mode answers them as
 * a value whose dictionary is missing (nothing may modify them as plain bytes); strict mode says why. */
static void test_dict_damaged_is_never_a_wrong_value(void **state)
{
    fixture_t *f = *state;
    char cut[96], doc[512], err[CODEC_ERRLEN + 32];
    snprintf(cut, sizeof(cut), "%s-cut", f->path);
    write_file(cut, f->dict, f->dict_len - 100);
    chain_t *whole = chain_with("zstd://?dictionary=%s", f->path);
    chain_t *mixed = chain_with("zstd://?dictionary=%s", cut);
    chain_t *strict = chain_with("zstd://?strict=yes&dictionary=%s", cut);
    unlink(cut);
    buf_t enc, dec;
    buf_init(&enc);
    buf_init(&dec);
    int bad = 0;
    for (int i = 0; i < 50; i++) {
        int n = make_doc(doc, sizeof(doc), 1, i), undecoded = 0;
        assert_int_equal(chain_encode(whole, chain_main_ctx(whole), doc, (size_t)n, &enc, err), CHAIN_OUT);
        assert_true(ZSTD_getFrameContentSize(enc.data, enc.len) == (unsigned long long)n);
        int rc = chain_decode(mixed, chain_main_ctx(mixed), enc.data, enc.len, &dec, err, &undecoded);
        if (rc == CHAIN_OUT) {
            /* a value that only uses the dictionary's first part decodes right, or not at all */
            assert_int_equal(dec.len, (size_t)n);
            assert_memory_equal(dec.data, doc, (size_t)n);
            continue;
        }
        bad++;
        assert_int_equal(rc, CHAIN_AS_IS);
        assert_int_equal(undecoded, CHAIN_UNDECODED_NODICT);
        assert_int_equal(chain_decode(strict, chain_main_ctx(strict), enc.data, enc.len, &dec, err, &undecoded),
                         CHAIN_ERROR);
        assert_non_null(strstr(err, "damaged"));
    }
    assert_true(bad > 25);
    buf_deinit(&enc);
    buf_deinit(&dec);
    chain_destroy(whole);
    chain_destroy(mixed);
    chain_destroy(strict);
}

static void expect_refused(const char *url, const char *want)
{
    char err[512];
    chain_t *ch = chain_create(url, 1 << 20, err, sizeof(err));
    if (ch != NULL)
        fail_msg("%s was accepted", url);
    if (strstr(err, want) == NULL)
        fail_msg("%s: error '%s' lacks '%s'", url, err, want);
}

/* Files that are not dictionaries, and dictionaries where none can be used. */
static void test_dict_refused(void **state)
{
    fixture_t *f = *state;
    char url[256], damaged[96];

    snprintf(url, sizeof(url), "zstd://?dictionary=%s", f->garbage);
    expect_refused(url, "not a zstd dictionary");
    expect_refused(url, f->garbage);
    expect_refused("zstd://?dictionary=/nonexistent/dict", "/nonexistent/dict");
    expect_refused("zstd://?dictionary=", "path of a zstd dictionary");
    expect_refused("zstd://?dictionary-size=16kb", "only with dictionary=auto");
    expect_refused("zstd://?dictionary=auto&dictionary-size=1", "dictionary-size '1'");
    expect_refused("zstd://?dictionary=auto&dictionary-sample-size=64kb", "at least 8 times");
    expect_refused("zstd://?dictionary=auto&dictionary-retrain-drift=0", "percentage");
    expect_refused("zlib://?dictionary=auto", "only zstd");
    snprintf(url, sizeof(url), "zlib://?dictionary=%s", f->path);
    expect_refused(url, "only zstd");
    /* the dictionary's header and ID kept, its entropy tables overwritten */
    snprintf(damaged, sizeof(damaged), "%s-damaged", f->path);
    char bad[DICT_CAP];
    memcpy(bad, f->dict, f->dict_len);
    memset(bad + 8, 0xff, 64);
    write_file(damaged, bad, f->dict_len);
    snprintf(url, sizeof(url), "zstd://?dictionary=%s", damaged);
    expect_refused(url, "damaged zstd dictionary");
    unlink(damaged);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dict_round_trip_and_ratio),
        cmocka_unit_test(test_dict_reads_foreign_frames),
        cmocka_unit_test(test_dict_unknown_id),
        cmocka_unit_test(test_dict_damaged_is_never_a_wrong_value),
        cmocka_unit_test(test_dict_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
