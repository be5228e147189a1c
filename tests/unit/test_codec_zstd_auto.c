/*
 * Unit tests for zstd://?dictionary=auto (src/codec/zstd_dict.c, src/codec/chain.c): the sample stays
 * within its budget; a training on small alike documents gives a dictionary that new values use and that
 * beats plain zstd on values it did not see; incompressible values give none (plain zstd is kept, and
 * the next attempt waits longer); a worse recent ratio asks for a new training; two dictionaries under
 * one ID are refused; readers on other threads decode while the loop thread adds dictionaries.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zdict.h>
#include <zstd.h>

#include "codec/chain.h"
#include "codec/codec.h"
#include "util/buf.h"

#define AUTO_URL "zstd://?dictionary=auto&dictionary-size=8kb&dictionary-sample-size=128kb"

/* Document i of shape 0 (a user) or 1 (an order): values alike within a shape, unlike across. */
static int doc(char *out, size_t cap, int shape, int i)
{
    static const char *const w[] = { "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel" };
    unsigned x = (unsigned)i * 2654435761u;
    if (shape == 0)
        return snprintf(out, cap, "{\"id\": %d, \"name\": \"%s%u\", \"email\": \"user%d@example.com\", \"active\": %s, "
                        "\"roles\": [\"%s\", \"%s\"], \"settings\": {\"theme\": \"dark\", \"lang\": \"en\"}, "
                        "\"created_at\": \"2026-12-%02uT10:%02u:00Z\", \"bio\": \"%s %s %s %s %s\"}",
                        i, w[x % 8], x % 997, i, (x & 1) ? "true" : "false", w[(x >> 3) % 8], w[(x >> 6) % 8],
                        1 + (x >> 9) % 28, (x >> 14) % 60, w[(x >> 4) % 8], w[(x >> 7) % 8], w[(x >> 10) % 8],
                        w[(x >> 13) % 8], w[(x >> 16) % 8]);
    return snprintf(out, cap, "<order no=\"%u\"><line sku=\"SKU-%05u\" qty=\"%u\"/><line sku=\"SKU-%05u\" qty=\"%u\"/>"
                    "<ship via=\"%s-freight\" zone=\"Z%u\"/><total currency=\"EUR\">%u.%02u</total></order>",
                    x % 100000, (x >> 3) % 100000, 1 + (x >> 5) % 9, (x >> 7) % 100000, 1 + (x >> 11) % 9,
                    w[(x >> 13) % 8], (x >> 17) % 10, (x >> 2) % 5000, (x >> 19) % 100);
}

static chain_t *chain_new(const char *url)
{
    char err[512];
    chain_t *ch = chain_create(url, 1 << 20, err, sizeof(err));
    if (ch == NULL)
        fail_msg("%s: %s", url, err);
    return ch;
}

/* Encode documents first..first+n-1 of shape through ch on its loop-thread context; returns the encoded
 * bytes in total. */
static size_t write_docs(chain_t *ch, int shape, int first, int n)
{
    char d[1024], err[CODEC_ERRLEN + 32];
    buf_t out;
    size_t total = 0;
    buf_init(&out);
    for (int i = first; i < first + n; i++) {
        int len = doc(d, sizeof(d), shape, i);
        assert_int_equal(chain_encode(ch, chain_main_ctx(ch), d, (size_t)len, &out, err), CHAIN_OUT);
        total += out.len;
    }
    buf_deinit(&out);
    return total;
}

/* One training of ch's sample, done as the cache does it; the ID new values use afterwards. */
static unsigned train(chain_t *ch, int expect_ok)
{
    codec_dicts_t *ds = chain_dicts_mut(ch);
    char err[256];
    codec_zstd_training_t *t = codec_zstd_training_take(ds, 0, err, sizeof(err));
    if (t == NULL)
        fail_msg("take: %s", err);
    codec_zstd_training_run(t);
    const char *dict, *why;
    size_t len;
    double ratio, plain;
    int rc = codec_zstd_training_result(t, &dict, &len, &ratio, &plain, &why);
    unsigned id = 0;
    if (expect_ok) {
        if (rc != 0)
            fail_msg("training refused: %s", why);
        assert_true(ratio < plain * 0.9);
        assert_int_equal(codec_zstd_dicts_add(ds, dict, len, &id, err, sizeof(err)), 0);
    } else {
        assert_int_equal(rc, -1);
        assert_non_null(strstr(why, "does not compress better"));
    }
    codec_zstd_dicts_trained(ds, id, ratio);
    codec_zstd_training_free(t);
    return codec_zstd_dicts_encode_id(ds);
}

/* The sample is full after about its budget, stays within it, and a training makes new values smaller. */
static void test_auto_trains_and_uses(void **state)
{
    chain_t *ch = chain_new(AUTO_URL);
    const codec_dicts_t *ds = chain_dicts(ch);
    codec_dict_stats_t st;
    int i = 0;

    while (!codec_zstd_dicts_due(ds) && i < 5000)
        i += (int)(write_docs(ch, 0, i, 1) > 0);
    assert_true(codec_zstd_dicts_due(ds));
    codec_zstd_dicts_stats(ds, &st);
    assert_true(st.sample_bytes <= 128 * 1024);
    assert_true(st.sample_values >= 32);
    size_t before = write_docs(ch, 0, 10000, 500);
    unsigned id = train(ch, 1);
    assert_true(id >= 32768);
    size_t after = write_docs(ch, 0, 10000, 500);
    assert_true(after * 10 < before * 7);       /* the same 500 documents, 30% smaller at least */

    /* the frames name it, and read back */
    char d[1024], err[CODEC_ERRLEN + 32];
    int len = doc(d, sizeof(d), 0, 77), undecoded;
    buf_t enc, dec;
    buf_init(&enc);
    buf_init(&dec);
    assert_int_equal(chain_encode(ch, chain_main_ctx(ch), d, (size_t)len, &enc, err), CHAIN_OUT);
    assert_int_equal(ZSTD_getDictID_fromFrame(enc.data, enc.len), id);
    chain_ctx_t *ctx = chain_ctx_get(ch);
    assert_int_equal(chain_decode(ch, ctx, enc.data, enc.len, &dec, err, &undecoded), CHAIN_OUT);
    chain_ctx_put(ch, ctx);
    assert_int_equal(dec.len, (size_t)len);
    assert_memory_equal(dec.data, d, (size_t)len);
    /* another chain without it: unknown, and chain_missing_dict says which */
    chain_t *other = chain_new(AUTO_URL);
    assert_int_equal(chain_missing_dict(other, enc.data, enc.len), id);
    assert_int_equal(chain_missing_dict(ch, enc.data, enc.len), 0);
    buf_deinit(&enc);
    buf_deinit(&dec);
    chain_destroy(other);
    chain_destroy(ch);
}

/* Random bytes: the dictionary does not help, plain zstd is kept and the next attempt waits. */
static void test_auto_incompressible(void **state)
{
    chain_t *ch = chain_new(AUTO_URL);
    const codec_dicts_t *ds = chain_dicts(ch);
    char v[800], err[CODEC_ERRLEN + 32];
    uint64_t x = 88172645463325252ull;
    buf_t out;
    int i;

    buf_init(&out);
    for (i = 0; i < 5000 && !codec_zstd_dicts_due(ds); i++) {
        for (size_t k = 0; k < sizeof(v); k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            v[k] = (char)x;
        }
        assert_int_equal(chain_encode(ch, chain_main_ctx(ch), v, sizeof(v), &out, err), CHAIN_OUT);
    }
    assert_true(codec_zstd_dicts_due(ds));
    assert_int_equal(train(ch, 0), 0);
    codec_dict_stats_t st;
    codec_zstd_dicts_stats(ds, &st);
    assert_int_equal(st.trainings, 1);
    assert_int_equal(st.rejected, 1);
    assert_int_equal(st.count, 0);
    /* a full sample again is not enough: twice the bytes must come first */
    for (int k = 0; k < 170; k++)
        assert_int_equal(chain_encode(ch, chain_main_ctx(ch), v + (k % 8), sizeof(v) - 8, &out, err), CHAIN_OUT);
    assert_false(codec_zstd_dicts_due(ds));
    buf_deinit(&out);
    chain_destroy(ch);
}

/* Values unlike those the dictionary was made from: the recent ratio drifts and a training is due. */
static void test_auto_drift(void **state)
{
    chain_t *ch = chain_new(AUTO_URL);
    const codec_dicts_t *ds = chain_dicts(ch);
    int i = 0;

    while (!codec_zstd_dicts_due(ds) && i < 5000)
        write_docs(ch, 0, i++, 1);
    unsigned first = train(ch, 1);
    assert_int_not_equal(first, 0);
    write_docs(ch, 0, 20000, 600);              /* the same shape: no drift */
    assert_false(codec_zstd_dicts_due(ds));
    for (i = 0; i < 5000 && !codec_zstd_dicts_due(ds); i++)
        write_docs(ch, 1, i, 1);
    assert_true(codec_zstd_dicts_due(ds));
    unsigned second = train(ch, 1);
    assert_int_not_equal(second, first);
    assert_int_equal(codec_zstd_dicts_count(ds), 2);
    chain_destroy(ch);
}

/* A dictionary loaded (dictionary-dir at start, CACHE DICT LOAD) has no ratio of its own: the first window
 * of values gives it one instead of counting as drift (every restart trained one more dictionary). */
static void test_loaded_dictionary_is_not_drift(void **state)
{
    chain_t *ch = chain_new(AUTO_URL);
    int i = 0;
    while (!codec_zstd_dicts_due(chain_dicts(ch)) && i < 5000)
        write_docs(ch, 0, i++, 1);
    unsigned id = train(ch, 1);
    codec_dict_info_t info;
    assert_int_equal(codec_zstd_dicts_get(chain_dicts(ch), 0, &info), 0);

    chain_t *again = chain_new(AUTO_URL);                /* a restart */
    codec_dicts_t *ds = chain_dicts_mut(again);
    unsigned got;
    char err[256];
    assert_int_equal(codec_zstd_dicts_add(ds, info.bytes, info.size, &got, err, sizeof(err)), 0);
    assert_int_equal(codec_zstd_dicts_use(ds, got), 0);
    assert_int_equal(got, id);
    write_docs(again, 0, 30000, 1500);          /* well past a window, the same shape */
    assert_false(codec_zstd_dicts_due(ds));
    codec_dict_stats_t st;
    codec_zstd_dicts_stats(ds, &st);
    assert_true(st.trained_ratio > 0 && st.trained_ratio < 0.5);
    chain_destroy(again);
    chain_destroy(ch);
}

/* A dictionary made with a given ID from documents of shape. */
static size_t dict_with_id(char *out, size_t cap, unsigned id, int shape)
{
    buf_t s;
    size_t sizes[400];
    char d[1024];
    buf_init(&s);
    for (int i = 0; i < 400; i++) {
        int n = doc(d, sizeof(d), shape, i);
        buf_append(&s, d, (size_t)n);
        sizes[i] = (size_t)n;
    }
    ZDICT_params_t p = { .compressionLevel = 3, .dictID = id };
    size_t r = ZDICT_finalizeDictionary(out, cap, s.data, s.len > 4096 ? 4096 : s.len, s.data, sizes, 400, p);
    assert_false(ZDICT_isError(r));
    buf_deinit(&s);
    return r;
}

/* Two dictionaries under one ID: the second is refused; the first again is "already there". */
static void test_id_collision(void **state)
{
    codec_dicts_t *ds = codec_zstd_dicts_create(3);
    char a[8192], b[8192], err[256];
    size_t la = dict_with_id(a, sizeof(a), 40000, 0), lb = dict_with_id(b, sizeof(b), 40000, 1);
    unsigned id;

    assert_int_equal(codec_zstd_dicts_add(ds, a, la, &id, err, sizeof(err)), 0);
    assert_int_equal(id, 40000);
    assert_int_equal(codec_zstd_dicts_add(ds, b, lb, &id, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "collision"));
    assert_int_equal(codec_zstd_dicts_add(ds, a, la, &id, err, sizeof(err)), 1);
    assert_int_equal(codec_zstd_dicts_add(ds, "not a dictionary", 16, &id, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a zstd dictionary"));
    assert_int_equal(codec_zstd_dicts_count(ds), 1);
    assert_int_equal(codec_zstd_dicts_use(ds, 12345), -1);
    codec_zstd_dicts_free(ds);
}

/* ---- readers on other threads while dictionaries are added ----------------------------------------- */

#define NDICT 24

typedef struct race {
    chain_t *ch;
    buf_t frames[NDICT];        /* frame k: document k compressed with dictionary k */
    int docs[NDICT];
    int published;              /* atomic: dictionaries added so far */
    int failures;               /* atomic */
} race_t;

static void *race_reader(void *arg)
{
    race_t *r = arg;
    chain_ctx_t *ctx = chain_ctx_get(r->ch);
    char err[CODEC_ERRLEN + 32], want[1024];
    buf_t out;
    buf_init(&out);
    for (int round = 0; round < 4000; round++) {
        int n = __atomic_load_n(&r->published, __ATOMIC_ACQUIRE);
        if (n == 0)
            continue;
        int k = round % n, undecoded;
        int len = doc(want, sizeof(want), 0, r->docs[k]);
        if (chain_decode(r->ch, ctx, r->frames[k].data, r->frames[k].len, &out, err, &undecoded) != CHAIN_OUT ||
            out.len != (size_t)len || memcmp(out.data, want, (size_t)len) != 0)
            __atomic_add_fetch(&r->failures, 1, __ATOMIC_RELAXED);
    }
    buf_deinit(&out);
    chain_ctx_put(r->ch, ctx);
    return NULL;
}

static void test_readers_while_adding(void **state)
{
    static race_t r;
    char err[256], d[1024];
    pthread_t th[2];

    memset(&r, 0, sizeof(r));
    r.ch = chain_new("zstd://?dictionary=auto");
    codec_dicts_t *ds = chain_dicts_mut(r.ch);
    /* frames made beforehand with each dictionary, by libzstd directly */
    char dicts[NDICT][8192];
    size_t dlen[NDICT];
    for (int k = 0; k < NDICT; k++) {
        dlen[k] = dict_with_id(dicts[k], sizeof(dicts[k]), 50000 + (unsigned)k, k % 2);
        r.docs[k] = 1000 + k;
        int len = doc(d, sizeof(d), 0, r.docs[k]);
        ZSTD_CCtx *cc = ZSTD_createCCtx();
        buf_init(&r.frames[k]);
        buf_reserve(&r.frames[k], ZSTD_compressBound((size_t)len));
        size_t fl = ZSTD_compress_usingDict(cc, r.frames[k].data, ZSTD_compressBound((size_t)len), d, (size_t)len,
                                            dicts[k], dlen[k], 3);
        assert_false(ZSTD_isError(fl));
        r.frames[k].len = fl;
        ZSTD_freeCCtx(cc);
    }
    for (int t = 0; t < 2; t++)
        assert_int_equal(pthread_create(&th[t], NULL, race_reader, &r), 0);
    for (int k = 0; k < NDICT; k++) {
        unsigned id;
        assert_int_equal(codec_zstd_dicts_add(ds, dicts[k], dlen[k], &id, err, sizeof(err)), 0);
        codec_zstd_dicts_use(ds, id);
        __atomic_store_n(&r.published, k + 1, __ATOMIC_RELEASE);
    }
    for (int t = 0; t < 2; t++)
        pthread_join(th[t], NULL);
    assert_int_equal(r.failures, 0);
    for (int k = 0; k < NDICT; k++)
        buf_deinit(&r.frames[k]);
    chain_destroy(r.ch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auto_trains_and_uses),
        cmocka_unit_test(test_auto_incompressible),
        cmocka_unit_test(test_auto_drift),
        cmocka_unit_test(test_loaded_dictionary_is_not_drift),
        cmocka_unit_test(test_id_collision),
        cmocka_unit_test(test_readers_while_adding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
