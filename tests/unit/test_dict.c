/*
 * Unit tests for src/backend/memory/dict.c (intrusive hash table with incremental rehash) and
 * src/util/siphash.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend/memory/dict.h"
#include "util/siphash.h"

typedef struct tnode {
    dict_node_t node;
    size_t len;
    char key[24];
    int in;             /* 1 while linked in the dict under test */
    int visited;        /* scan visits */
    int drawn;          /* random draws */
} tnode_t;

#define TNODE(n) ((tnode_t *)(void *)((char *)(n) - offsetof(tnode_t, node)))

static const void *tnode_key(const dict_node_t *n, size_t *len)
{
    const tnode_t *t = TNODE(n);
    *len = t->len;
    return t->key;
}

static const uint8_t test_seed[SIPHASH_KEY_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };

static tnode_t *make_nodes(size_t n)
{
    tnode_t *v = calloc(n, sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i].len = (size_t)snprintf(v[i].key, sizeof(v[i].key), "key:%zu", i);
    return v;
}

static void add(dict_t *d, tnode_t *t)
{
    dict_add(d, &t->node);
    t->in = 1;
}

static void del(dict_t *d, tnode_t *t)
{
    dict_node_t *n = dict_unlink(d, t->key, t->len);
    assert_ptr_equal(n, &t->node);
    t->in = 0;
}

static void check_all(dict_t *d, tnode_t *v, size_t n)
{
    size_t live = 0;
    for (size_t i = 0; i < n; i++) {
        dict_node_t *f = dict_find(d, v[i].key, v[i].len);
        if (v[i].in) {
            assert_ptr_equal(f, &v[i].node);
            live++;
        } else {
            assert_null(f);
        }
    }
    assert_int_equal(dict_size(d), live);
}

/* ---- siphash ---------------------------------------------------------------------------------- */

/* The reference implementation's vectors (github.com/veorq/SipHash): key 00..0f, input 00..(len-1). */
static const uint64_t sip24_vectors[64] = {
    0x726fdb47dd0e0e31ULL, 0x74f839c593dc67fdULL, 0x0d6c8009d9a94f5aULL, 0x85676696d7fb7e2dULL,
    0xcf2794e0277187b7ULL, 0x18765564cd99a68dULL, 0xcbc9466e58fee3ceULL, 0xab0200f58b01d137ULL,
    0x93f5f5799a932462ULL, 0x9e0082df0ba9e4b0ULL, 0x7a5dbbc594ddb9f3ULL, 0xf4b32f46226bada7ULL,
    0x751e8fbc860ee5fbULL, 0x14ea5627c0843d90ULL, 0xf723ca908e7af2eeULL, 0xa129ca6149be45e5ULL,
    0x3f2acc7f57c29bdbULL, 0x699ae9f52cbe4794ULL, 0x4bc1b3f0968dd39cULL, 0xbb6dc91da77961bdULL,
    0xbed65cf21aa2ee98ULL, 0xd0f2cbb02e3b67c7ULL, 0x93536795e3a33e88ULL, 0xa80c038ccd5ccec8ULL,
    0xb8ad50c6f649af94ULL, 0xbce192de8a85b8eaULL, 0x17d835b85bbb15f3ULL, 0x2f2e6163076bcfadULL,
    0xde4daaaca71dc9a5ULL, 0xa6a2506687956571ULL, 0xad87a3535c49ef28ULL, 0x32d892fad841c342ULL,
    0x7127512f72f27cceULL, 0xa7f32346f95978e3ULL, 0x12e0b01abb051238ULL, 0x15e034d40fa197aeULL,
    0x314dffbe0815a3b4ULL, 0x027990f029623981ULL, 0xcadcd4e59ef40c4dULL, 0x9abfd8766a33735cULL,
    0x0e3ea96b5304a7d0ULL, 0xad0c42d6fc585992ULL, 0x187306c89bc215a9ULL, 0xd4a60abcf3792b95ULL,
    0xf935451de4f21df2ULL, 0xa9538f0419755787ULL, 0xdb9acddff56ca510ULL, 0xd06c98cd5c0975ebULL,
    0xe612a3cb9ecba951ULL, 0xc766e62cfcadaf96ULL, 0xee64435a9752fe72ULL, 0xa192d576b245165aULL,
    0x0a8787bf8ecb74b2ULL, 0x81b3e73d20b49b6fULL, 0x7fa8220ba3b2eceaULL, 0x245731c13ca42499ULL,
    0xb78dbfaf3a8d83bdULL, 0xea1ad565322a1a0bULL, 0x60e61c23a3795013ULL, 0x6606d7e446282b93ULL,
    0x6ca4ecb15c5f91e1ULL, 0x9f626da15c9625f3ULL, 0xe51b38608ef25f57ULL, 0x958a324ceb064572ULL,
};

static void test_siphash24_vectors(void **state)
{
    uint8_t key[16], in[64];
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)i;
    for (int i = 0; i < 64; i++)
        in[i] = (uint8_t)i;
    for (int len = 0; len < 64; len++)
        assert_true(siphash24(in, (size_t)len, key) == sip24_vectors[len]);
}

/* SipHash-1-3 with an all-zero key, cross-checked against CPython 3.11, whose bytes hash is SipHash-1-3
 * and whose key is all zeros under PYTHONHASHSEED=0:
 *   PYTHONHASHSEED=0 python3 -c 'print(hex(hash(bytes(range(n))) & (2**64-1)))'  */
static void test_siphash13_vectors(void **state)
{
    static const struct { size_t len; uint64_t h; } v[] = {
        { 1, 0x68a914128e01e473ULL },  { 3, 0x4d4c9a4a8ef6e0adULL },  { 7, 0x2f098ab0c751325aULL },
        { 8, 0xead411e67ebe2eeaULL },  { 9, 0x75927f9d95124362ULL },  { 15, 0xf30eb725bb91c9eaULL },
        { 16, 0x8972188433a5c5b7ULL }, { 17, 0x4883c49a2c009c1dULL }, { 31, 0x169739443111d49bULL },
        { 63, 0x385d3e39e5f37359ULL },
    };
    uint8_t key[16] = { 0 }, in[64];
    for (int i = 0; i < 64; i++)
        in[i] = (uint8_t)i;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        assert_true(siphash13(in, v[i].len, key) == v[i].h);
    /* The key matters. */
    key[0] = 1;
    assert_true(siphash13(in, 8, key) != 0xead411e67ebe2eeaULL);
}

/* ---- dict ------------------------------------------------------------------------------------- */

static void test_dict_basic(void **state)
{
    dict_t d;
    tnode_t *v = make_nodes(3);
    dict_pos_t pos;

    dict_init(&d, tnode_key, test_seed, 1);
    assert_int_equal(dict_size(&d), 0);
    assert_null(dict_find(&d, "key:0", 5));
    assert_null(dict_random(&d));
    assert_int_equal(dict_scan(&d, 0, NULL, NULL), 0);
    assert_int_equal(dict_locate(&d, "x", 1, &pos), 0);

    add(&d, &v[0]);
    add(&d, &v[1]);
    assert_int_equal(dict_size(&d), 2);
    assert_ptr_equal(dict_find(&d, "key:0", 5), &v[0].node);
    assert_ptr_equal(dict_find(&d, "key:1", 5), &v[1].node);
    assert_null(dict_find(&d, "key:2", 5));
    assert_null(dict_find(&d, "key:", 4));
    assert_null(dict_unlink(&d, "key:2", 5));

    /* Replace a node in place by another with the same key. */
    memcpy(v[2].key, "key:1", 5);
    v[2].len = 5;
    assert_int_equal(dict_locate(&d, "key:1", 5, &pos), 1);
    dict_replace_at(&d, &pos, &v[2].node);
    assert_ptr_equal(dict_find(&d, "key:1", 5), &v[2].node);
    assert_int_equal(dict_size(&d), 2);

    /* Remove through a position. */
    assert_int_equal(dict_locate(&d, "key:0", 5, &pos), 1);
    dict_remove_at(&d, &pos);
    assert_null(dict_find(&d, "key:0", 5));
    dict_unlink_node(&d, &v[2].node);
    assert_int_equal(dict_size(&d), 0);

    dict_clear(&d, NULL, NULL);
    assert_int_equal(dict_buckets(&d), 0);
    free(v);
}

/* Empty and binary keys are keys like any other. */
static void test_dict_binary_keys(void **state)
{
    dict_t d;
    tnode_t v[3] = { { .len = 0 }, { .len = 3 }, { .len = 4 } };
    memcpy(v[1].key, "a\0b", 3);
    memcpy(v[2].key, "a\0bc", 4);

    dict_init(&d, tnode_key, test_seed, 1);
    for (int i = 0; i < 3; i++)
        add(&d, &v[i]);
    assert_ptr_equal(dict_find(&d, "", 0), &v[0].node);
    assert_ptr_equal(dict_find(&d, "a\0b", 3), &v[1].node);
    assert_ptr_equal(dict_find(&d, "a\0bc", 4), &v[2].node);
    assert_null(dict_find(&d, "a", 1));
    dict_clear(&d, NULL, NULL);
}

/*
 * Inserts and deletes interleaved over many growths: every so often the whole key set is checked,
 * and operations are made on purpose while a rehash is in progress.
 */
static void test_dict_many_rehashes(void **state)
{
    enum { N = 30000 };
    dict_t d;
    tnode_t *v = make_nodes(N);
    size_t ops_during_rehash = 0, growths = 0, last_buckets = 0;

    dict_init(&d, tnode_key, test_seed, 7);
    for (size_t i = 0; i < N; i++) {
        if (dict_is_rehashing(&d))
            ops_during_rehash++;
        add(&d, &v[i]);
        if (dict_buckets(&d) > last_buckets)
            growths++;
        last_buckets = dict_buckets(&d);
        /* Interleave: delete an older key, re-add an even older one. */
        if (i % 3 == 0 && v[i / 2].in) {
            if (dict_is_rehashing(&d))
                ops_during_rehash++;
            del(&d, &v[i / 2]);
        }
        if (i % 7 == 0 && i > 10 && !v[i / 4].in)
            add(&d, &v[i / 4]);
        /* While rehashing, every key must be found in one table or the other. */
        if (dict_is_rehashing(&d) && i % 97 == 0)
            check_all(&d, v, i + 1);
    }
    check_all(&d, v, N);
    assert_true(growths >= 10);
    assert_true(ops_during_rehash > 100);

    /* Delete everything in a scrambled order; the table shrinks as it empties. */
    size_t peak = dict_buckets(&d), shrinks_seen = 0;
    for (size_t k = 0; k < N; k++) {
        size_t i = (k * 7919) % N;          /* 7919 is prime, N is not a multiple: a permutation */
        if (v[i].in)
            del(&d, &v[i]);
        if (dict_buckets(&d) < last_buckets)
            shrinks_seen++;
        last_buckets = dict_buckets(&d);
        if (k % 1009 == 0)
            check_all(&d, v, N);
    }
    check_all(&d, v, N);
    assert_int_equal(dict_size(&d), 0);
    /* Shrinking rehashes are slow on a sparse table (at most 10 empty buckets per operation), so they
     * chain: a few of them, not one per halving. */
    assert_true(shrinks_seen >= 2);
    while (dict_rehash(&d, 100))
        ;
    assert_true(dict_buckets(&d) < peak / 100);
    dict_clear(&d, NULL, NULL);
    free(v);
}

/* dict_add_located: a key looked up and not found is added with the hash of that lookup, through
 * growths and rehashes, and after a removal made between the lookup and the add. */
static void test_dict_add_located(void **state)
{
    enum { N = 5000 };
    dict_t d;
    tnode_t *v = make_nodes(N);
    size_t during_rehash = 0;

    dict_init(&d, tnode_key, test_seed, 11);
    for (size_t i = 0; i < N; i++) {
        dict_pos_t pos;
        assert_int_equal(dict_locate(&d, v[i].key, v[i].len, &pos), 0);
        if (i % 5 == 4 && v[i - 1].in) {        /* a removal between the lookup and the add */
            dict_pos_t other;
            assert_int_equal(dict_locate(&d, v[i - 1].key, v[i - 1].len, &other), 1);
            dict_remove_at(&d, &other);
            v[i - 1].in = 0;
        }
        if (dict_is_rehashing(&d))
            during_rehash++;
        dict_add_located(&d, &v[i].node, &pos);
        v[i].in = 1;
        if (i % 113 == 0)
            check_all(&d, v, i + 1);
    }
    check_all(&d, v, N);
    assert_true(during_rehash > 10);
    dict_clear(&d, NULL, NULL);
    free(v);
}

/* After most keys go, the table shrinks to a size in proportion to what is left. */
static void test_dict_shrink(void **state)
{
    enum { N = 10000 };
    dict_t d;
    tnode_t *v = make_nodes(N);

    dict_init(&d, tnode_key, test_seed, 3);
    for (size_t i = 0; i < N; i++)
        add(&d, &v[i]);
    while (dict_rehash(&d, 100))
        ;
    assert_true(dict_buckets(&d) >= N);
    for (size_t i = 10; i < N; i++)
        del(&d, &v[i]);
    while (dict_rehash(&d, 100))
        ;
    /* One more removal can start the last shrink. */
    del(&d, &v[0]);
    while (dict_rehash(&d, 100))
        ;
    assert_true(dict_buckets(&d) <= 16);
    check_all(&d, v, N);
    dict_clear(&d, NULL, NULL);
    free(v);
}

static void visit_cb(void *priv, dict_node_t *n)
{
    (void)priv;
    TNODE(n)->visited++;
}

/* Scan while the table grows (keys added between steps): every key present from start to end is
 * returned at least once. */
static void test_dict_scan_growing(void **state)
{
    enum { STABLE = 500, EXTRA = 40000 };
    dict_t d;
    tnode_t *v = make_nodes(STABLE + EXTRA);
    size_t next = STABLE, steps = 0, rehashing_steps = 0;
    uint64_t cursor = 0;

    dict_init(&d, tnode_key, test_seed, 5);
    for (size_t i = 0; i < STABLE; i++)
        add(&d, &v[i]);
    do {
        cursor = dict_scan(&d, cursor, visit_cb, NULL);
        if (dict_is_rehashing(&d))
            rehashing_steps++;
        for (int k = 0; k < 60 && next < STABLE + EXTRA; k++)
            add(&d, &v[next++]);
        steps++;
        assert_true(steps < 1000000);
    } while (cursor != 0);
    for (size_t i = 0; i < STABLE; i++)
        assert_true(v[i].visited >= 1);
    assert_true(dict_buckets(&d) >= 8192);
    assert_true(rehashing_steps > 0);
    dict_clear(&d, NULL, NULL);
    free(v);
}

/* Scan while the table shrinks (other keys deleted between steps). */
static void test_dict_scan_shrinking(void **state)
{
    enum { STABLE = 300, OTHER = 30000 };
    dict_t d;
    tnode_t *v = make_nodes(STABLE + OTHER);
    size_t next = STABLE, rehashing_steps = 0;
    uint64_t cursor = 0;

    dict_init(&d, tnode_key, test_seed, 9);
    for (size_t i = 0; i < STABLE + OTHER; i++)
        add(&d, &v[i]);
    size_t start_buckets = dict_buckets(&d);
    do {
        cursor = dict_scan(&d, cursor, visit_cb, NULL);
        if (dict_is_rehashing(&d))
            rehashing_steps++;
        for (int k = 0; k < 200 && next < STABLE + OTHER; k++)
            del(&d, &v[next++]);
    } while (cursor != 0);
    for (size_t i = 0; i < STABLE; i++)
        assert_true(v[i].visited >= 1);
    while (dict_rehash(&d, 100))
        ;
    assert_true(dict_buckets(&d) < start_buckets / 8);
    assert_true(rehashing_steps > 0);
    dict_clear(&d, NULL, NULL);
    free(v);
}

/* Grow and shrink back and forth during a single scan; a plain scan of a quiet table visits each key
 * exactly once. */
static void test_dict_scan_mixed(void **state)
{
    enum { STABLE = 200, OTHER = 20000 };
    dict_t d;
    tnode_t *v = make_nodes(STABLE + OTHER);
    uint64_t cursor = 0;
    size_t step = 0;

    dict_init(&d, tnode_key, test_seed, 11);
    for (size_t i = 0; i < STABLE; i++)
        add(&d, &v[i]);

    /* Quiet table: exactly once. */
    do {
        cursor = dict_scan(&d, cursor, visit_cb, NULL);
    } while (cursor != 0);
    for (size_t i = 0; i < STABLE; i++)
        assert_int_equal(v[i].visited, 1);

    for (size_t i = 0; i < STABLE; i++)
        v[i].visited = 0;
    do {
        cursor = dict_scan(&d, cursor, visit_cb, NULL);
        /* Phases of 40 steps: fill the others in, then take them all out. */
        int phase = (int)((step / 40) % 2);
        for (size_t k = 0; k < 500; k++) {
            tnode_t *t = &v[STABLE + (step * 500 + k) % OTHER];
            if (phase == 0 && !t->in)
                add(&d, t);
            else if (phase == 1 && t->in)
                del(&d, t);
        }
        step++;
        assert_true(step < 1000000);
    } while (cursor != 0);
    for (size_t i = 0; i < STABLE; i++)
        assert_true(v[i].visited >= 1);
    dict_clear(&d, NULL, NULL);
    free(v);
}

static void test_dict_random(void **state)
{
    enum { N = 100, DRAWS = 100000 };
    dict_t d;
    tnode_t *v = make_nodes(N);

    dict_init(&d, tnode_key, test_seed, 13);
    for (size_t i = 0; i < N; i++)
        add(&d, &v[i]);
    for (int k = 0; k < DRAWS; k++) {
        dict_node_t *n = dict_random(&d);
        assert_non_null(n);
        assert_true(TNODE(n)->in);
        TNODE(n)->drawn++;
    }
    /* Fair enough: every key is drawn, none hogs the draws (chains make it uneven, not absurdly so). */
    for (size_t i = 0; i < N; i++) {
        assert_true(v[i].drawn > DRAWS / N / 5);
        assert_true(v[i].drawn < DRAWS / N * 5);
    }

    /* While rehashing too. */
    tnode_t *w = make_nodes(N + 1);
    for (size_t i = 0; i < N; i++)
        del(&d, &v[i]);
    w[N].len = (size_t)snprintf(w[N].key, sizeof(w[N].key), "other");
    for (size_t i = 0; i < 4; i++)
        add(&d, &w[i]);
    for (int k = 0; k < 1000; k++) {
        dict_node_t *n = dict_random(&d);
        assert_true(n == &w[0].node || n == &w[1].node || n == &w[2].node || n == &w[3].node);
    }
    dict_clear(&d, NULL, NULL);
    free(v);
    free(w);
}

static void test_dict_sample(void **state)
{
    enum { N = 1000 };
    dict_t d;
    tnode_t *v = make_nodes(N);
    dict_node_t *out[16];

    dict_init(&d, tnode_key, test_seed, 17);
    assert_int_equal(dict_sample(&d, out, 5), 0);
    for (size_t i = 0; i < N; i++) {
        add(&d, &v[i]);
        size_t n = dict_sample(&d, out, 5);
        assert_true(n >= 1 && n <= 5);
        for (size_t k = 0; k < n; k++)
            assert_true(TNODE(out[k])->in);
    }
    for (int k = 0; k < 1000; k++) {
        size_t n = dict_sample(&d, out, 16);
        assert_int_equal(n, 16);
        for (size_t j = 0; j < n; j++)
            TNODE(out[j])->drawn++;
    }
    size_t seen = 0;
    for (size_t i = 0; i < N; i++)
        seen += v[i].drawn > 0;
    assert_true(seen > N / 2);
    dict_clear(&d, NULL, NULL);
    free(v);
}

static size_t freed;

static void count_free_cb(void *priv, dict_node_t *n)
{
    assert_ptr_equal(priv, &freed);
    assert_null(n->next);
    TNODE(n)->in = 0;
    freed++;
}

static void test_dict_clear(void **state)
{
    enum { N = 5000 };
    dict_t d;
    tnode_t *v = make_nodes(N);

    dict_init(&d, tnode_key, test_seed, 19);
    for (size_t i = 0; i < N; i++)
        add(&d, &v[i]);
    assert_true(dict_is_rehashing(&d) || dict_buckets(&d) > 0);
    freed = 0;
    dict_clear(&d, count_free_cb, &freed);
    assert_int_equal(freed, N);
    assert_int_equal(dict_size(&d), 0);
    assert_int_equal(dict_buckets(&d), 0);
    assert_false(dict_is_rehashing(&d));
    /* Usable again. */
    add(&d, &v[0]);
    check_all(&d, v, N);
    dict_clear(&d, NULL, NULL);
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_siphash24_vectors),
        cmocka_unit_test(test_siphash13_vectors),
        cmocka_unit_test(test_dict_basic),
        cmocka_unit_test(test_dict_binary_keys),
        cmocka_unit_test(test_dict_many_rehashes),
        cmocka_unit_test(test_dict_shrink),
        cmocka_unit_test(test_dict_add_located),
        cmocka_unit_test(test_dict_scan_growing),
        cmocka_unit_test(test_dict_scan_shrinking),
        cmocka_unit_test(test_dict_scan_mixed),
        cmocka_unit_test(test_dict_random),
        cmocka_unit_test(test_dict_sample),
        cmocka_unit_test(test_dict_clear),
    };
    return cmocka_run_group_tests_name("dict", tests, NULL, NULL);
}
