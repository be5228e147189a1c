/*
 * Unit tests for src/cache/near.c (the near tier: a bounded LRU of (db, key) values dropped by key-only
 * invalidations, with tickets against invalidation races).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cache/near.h"

#define BIG (64u << 20)     /* a max_bytes no test reaches */
#define NOW 1000000LL       /* a monotonic ms clock's value */

static bytes_t B(const char *s)
{
    return (bytes_t){ s, strlen(s) };
}

/* put with a fresh ticket, no TTL upstream */
static int put(near_t *n, int db, const char *key, const char *val)
{
    return near_put(n, near_ticket(n), db, B(key), B(val), -1, NOW);
}

/* 1 if (db, key) is held with exactly val; 0 if absent; fails the test if held with another value */
static int has(near_t *n, int db, const char *key, const char *val, long long now)
{
    bytes_t v = { NULL, 0 };
    if (!near_get(n, db, B(key), now, &v))
        return 0;
    assert_int_equal(v.len, strlen(val));
    assert_memory_equal(v.ptr, val, v.len);
    return 1;
}

static near_stats_t stats(const near_t *n)
{
    near_stats_t st;
    near_stats(n, &st);
    return st;
}

static void test_get_put_replace(void **state)
{
    near_t *n = near_create(BIG, 1024, 0);

    assert_int_equal(has(n, 0, "a", "", NOW), 0);
    assert_int_equal(put(n, 0, "a", "one"), 1);
    assert_int_equal(has(n, 0, "a", "one", NOW), 1);
    assert_int_equal(has(n, 1, "a", "one", NOW), 0);       /* another db */
    assert_int_equal(has(n, 0, "ab", "one", NOW), 0);      /* a longer key */
    assert_int_equal(stats(n).bytes, near_entry_size(1, 3));

    assert_int_equal(put(n, 0, "a", "second"), 1);         /* replaces */
    assert_int_equal(has(n, 0, "a", "second", NOW), 1);
    near_stats_t st = stats(n);
    assert_int_equal(st.entries, 1);
    assert_int_equal(st.bytes, near_entry_size(1, 6));
    assert_int_equal(st.stored, 2);
    assert_int_equal(st.hits, 2);
    assert_int_equal(st.misses, 3);

    /* an empty value is a value */
    assert_int_equal(put(n, 0, "e", ""), 1);
    assert_int_equal(has(n, 0, "e", "", NOW), 1);
    near_destroy(n);
    near_destroy(NULL);
}

static void test_same_key_two_dbs(void **state)
{
    near_t *n = near_create(BIG, 1024, 0);

    assert_int_equal(put(n, 0, "k", "zero"), 1);
    assert_int_equal(put(n, 3, "k", "three"), 1);
    assert_int_equal(put(n, 0, "other", "x"), 1);
    assert_int_equal(has(n, 0, "k", "zero", NOW), 1);
    assert_int_equal(has(n, 3, "k", "three", NOW), 1);

    near_invalidate(n, B("k"), 1);
    assert_int_equal(has(n, 0, "k", "zero", NOW), 0);
    assert_int_equal(has(n, 3, "k", "three", NOW), 0);
    assert_int_equal(has(n, 0, "other", "x", NOW), 1);
    near_stats_t st = stats(n);
    assert_int_equal(st.invalidations, 1);
    assert_int_equal(st.invalidated, 2);
    assert_int_equal(st.writes, 0);
    assert_int_equal(st.entries, 1);
    assert_int_equal(st.bytes, near_entry_size(5, 1));

    /* an own write: the same, counted apart */
    assert_int_equal(put(n, 1, "k", "one"), 1);
    near_invalidate(n, B("k"), 0);
    assert_int_equal(has(n, 1, "k", "one", NOW), 0);
    near_invalidate(n, B("absent"), 1);
    st = stats(n);
    assert_int_equal(st.invalidations, 2);
    assert_int_equal(st.invalidated, 2);
    assert_int_equal(st.writes, 1);
    near_destroy(n);
}

static void test_ticket_race(void **state)
{
    near_t *n = near_create(BIG, 1024, 0);

    uint64_t before = near_ticket(n);
    near_invalidate(n, B("k"), 1);
    uint64_t after = near_ticket(n);
    assert_true(after > before);

    assert_int_equal(near_put(n, before, 0, B("k"), B("old"), -1, NOW), 0);
    assert_int_equal(stats(n).races, 1);
    assert_int_equal(has(n, 0, "k", "old", NOW), 0);

    /* the old ticket is still good for a key in another generation bucket (most keys are) */
    int other_kept = 0;
    char key[32];
    for (int i = 0; i < 8 && !other_kept; i++) {
        snprintf(key, sizeof(key), "other:%d", i);
        other_kept = near_put(n, before, 0, B(key), B("v"), -1, NOW);
    }
    assert_int_equal(other_kept, 1);

    assert_int_equal(near_put(n, after, 0, B("k"), B("new"), -1, NOW), 1);
    assert_int_equal(has(n, 0, "k", "new", NOW), 1);

    /* an own write makes tickets stale as well */
    uint64_t t = near_ticket(n);
    near_invalidate(n, B("k"), 0);
    assert_int_equal(near_put(n, t, 0, B("k"), B("x"), -1, NOW), 0);
    assert_int_equal(has(n, 0, "k", "new", NOW), 0);   /* and the entry went */

    /* a refused race leaves an entry put from a later read alone */
    uint64_t early = near_ticket(n);
    near_invalidate(n, B("k"), 1);
    assert_int_equal(near_put(n, near_ticket(n), 0, B("k"), B("late"), -1, NOW), 1);
    assert_int_equal(near_put(n, early, 0, B("k"), B("early"), -1, NOW), 0);
    assert_int_equal(has(n, 0, "k", "late", NOW), 1);
    assert_int_equal(stats(n).races, 3);
    near_destroy(n);
}

static void test_flush_tickets(void **state)
{
    near_t *n = near_create(BIG, 1024, 0);

    assert_int_equal(put(n, 0, "a", "1"), 1);
    assert_int_equal(put(n, 2, "b", "2"), 1);
    uint64_t before = near_ticket(n);
    near_flush(n, NEAR_FLUSH_TRACKING);
    near_stats_t st = stats(n);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(st.flushes[NEAR_FLUSH_TRACKING], 1);
    assert_int_equal(st.flushes[NEAR_FLUSH_UPSTREAM], 0);
    assert_int_equal(has(n, 0, "a", "1", NOW), 0);
    assert_int_equal(has(n, 2, "b", "2", NOW), 0);

    /* every key, whatever its bucket */
    char key[32];
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "key:%d", i);
        assert_int_equal(near_put(n, before, 0, B(key), B("v"), -1, NOW), 0);
    }
    assert_int_equal(stats(n).races, 100);
    assert_int_equal(near_put(n, near_ticket(n), 0, B("a"), B("1"), -1, NOW), 1);
    assert_int_equal(has(n, 0, "a", "1", NOW), 1);

    near_flush(n, NEAR_FLUSH_CLIENT);
    near_flush(n, NEAR_FLUSH_CLIENT);
    assert_int_equal(stats(n).flushes[NEAR_FLUSH_CLIENT], 2);
    /* usable after a flush */
    assert_int_equal(put(n, 0, "c", "3"), 1);
    assert_int_equal(has(n, 0, "c", "3", NOW), 1);
    near_destroy(n);
}

static void test_max_value(void **state)
{
    near_t *n = near_create(BIG, 4, 0);

    assert_int_equal(put(n, 0, "k", "1234"), 1);
    assert_int_equal(put(n, 0, "k", "12345"), 0);
    assert_int_equal(stats(n).too_large, 1);
    /* the entry held went: the read showed it out of date */
    assert_int_equal(has(n, 0, "k", "1234", NOW), 0);
    assert_int_equal(stats(n).entries, 0);

    /* an entry bigger than max_bytes on its own is not kept, and evicts nothing */
    near_configure(n, near_entry_size(1, 4), 1024, 0);
    assert_int_equal(put(n, 0, "a", "1234"), 1);
    assert_int_equal(put(n, 0, "b", "12345"), 0);
    assert_int_equal(stats(n).too_large, 2);
    assert_int_equal(stats(n).evictions, 0);
    assert_int_equal(has(n, 0, "a", "1234", NOW), 1);
    near_destroy(n);
}

static void test_prefixes(void **state)
{
    near_t *n = near_create(BIG, 1024, 0);
    const bytes_t pre[] = { BYTES("user:"), BYTES("cfg\0") };

    assert_int_equal(near_covers(n, B("anything")), 1);
    assert_int_equal(put(n, 0, "user:1", "a"), 1);
    assert_int_equal(put(n, 0, "session:1", "b"), 1);

    near_set_prefixes(n, pre, 2);
    assert_int_equal(near_covers(n, B("user:1")), 1);
    assert_int_equal(near_covers(n, B("user:")), 1);
    assert_int_equal(near_covers(n, B("user")), 0);
    assert_int_equal(near_covers(n, B("session:1")), 0);
    assert_int_equal(near_covers(n, B("cfg")), 0);
    assert_int_equal(near_covers(n, (bytes_t){ "cfg\0x", 5 }), 1);
    assert_int_equal(near_covers(n, (bytes_t){ NULL, 0 }), 0);
    /* the uncovered entry went, the covered one stays */
    assert_int_equal(has(n, 0, "session:1", "b", NOW), 0);
    assert_int_equal(has(n, 0, "user:1", "a", NOW), 1);
    assert_int_equal(stats(n).reconfigured, 1);

    near_stats_t before = stats(n);
    assert_int_equal(put(n, 0, "session:2", "c"), 0);
    assert_int_equal(has(n, 0, "session:2", "c", NOW), 0);
    near_stats_t after = stats(n);
    assert_int_equal(after.stored, before.stored);
    assert_int_equal(after.races, before.races);
    assert_int_equal(after.too_large, before.too_large);
    assert_int_equal(put(n, 0, "user:2", "d"), 1);

    /* copied: the caller's array may go */
    char buf[8] = "tmp:";
    bytes_t one = { buf, 4 };
    near_set_prefixes(n, &one, 1);
    memset(buf, 'z', sizeof(buf));
    assert_int_equal(near_covers(n, B("tmp:x")), 1);
    assert_int_equal(near_covers(n, B("zzzzx")), 0);
    assert_int_equal(stats(n).entries, 0);

    /* an empty prefix covers everything; none at all as well */
    const bytes_t empty = { "", 0 };
    near_set_prefixes(n, &empty, 1);
    assert_int_equal(near_covers(n, B("x")), 1);
    near_set_prefixes(n, NULL, 0);
    assert_int_equal(near_covers(n, B("x")), 1);
    assert_int_equal(put(n, 0, "session:3", "e"), 1);
    near_destroy(n);
}

static void test_ttl(void **state)
{
    near_t *n = near_create(BIG, 1024, 0);
    uint64_t t = near_ticket(n);

    /* the key's TTL upstream */
    assert_int_equal(near_put(n, t, 0, B("k"), B("v"), 100, NOW), 1);
    assert_int_equal(has(n, 0, "k", "v", NOW + 99), 1);
    assert_int_equal(stats(n).expired, 0);
    assert_int_equal(has(n, 0, "k", "v", NOW + 100), 0);
    assert_int_equal(stats(n).expired, 1);
    assert_int_equal(stats(n).entries, 0);
    assert_int_equal(stats(n).bytes, 0);

    /* no TTL, no bound: lives */
    assert_int_equal(near_put(n, t, 0, B("forever"), B("v"), -1, NOW), 1);
    assert_int_equal(has(n, 0, "forever", "v", NOW + 1000000000LL), 1);

    /* -2 (missing upstream) and 0 are refused, and drop what was held */
    assert_int_equal(near_put(n, t, 0, B("forever"), B("v"), -2, NOW), 0);
    assert_int_equal(has(n, 0, "forever", "v", NOW), 0);
    assert_int_equal(near_put(n, t, 0, B("z"), B("v"), 0, NOW), 0);
    assert_int_equal(near_put(n, t, 0, B("z"), B("v"), -7, NOW), 0);
    assert_int_equal(has(n, 0, "z", "v", NOW), 0);
    assert_int_equal(stats(n).stored, 2);

    /* the tier's bound, smaller than the key's TTL, wins */
    near_configure(n, BIG, 1024, 50);
    assert_int_equal(near_put(n, t, 0, B("a"), B("v"), 100, NOW), 1);
    assert_int_equal(has(n, 0, "a", "v", NOW + 49), 1);
    assert_int_equal(has(n, 0, "a", "v", NOW + 50), 0);
    /* and bounds a key with no TTL */
    assert_int_equal(near_put(n, t, 0, B("b"), B("v"), -1, NOW), 1);
    assert_int_equal(has(n, 0, "b", "v", NOW + 49), 1);
    assert_int_equal(has(n, 0, "b", "v", NOW + 50), 0);
    /* the key's TTL, smaller than the bound, wins */
    assert_int_equal(near_put(n, t, 0, B("c"), B("v"), 20, NOW), 1);
    assert_int_equal(has(n, 0, "c", "v", NOW + 19), 1);
    assert_int_equal(has(n, 0, "c", "v", NOW + 20), 0);
    /* a huge TTL does not overflow into the past */
    near_configure(n, BIG, 1024, 0);
    assert_int_equal(near_put(n, t, 0, B("d"), B("v"), 9223372036854775807LL, NOW), 1);
    assert_int_equal(has(n, 0, "d", "v", NOW + 1), 1);
    assert_int_equal(stats(n).expired, 4);
    near_destroy(n);
}

/* The policy (caches by key prefix): "no:" keys are never kept, "short:" ones at most 30 ms, others as the
 * tier's ttl_ms says no more (the policy replaces it). A policy that changes its mind drops entries. */
static int policy_drops_all;

static long long policy(void *arg, bytes_t key)
{
    (void)arg;
    if (policy_drops_all || (key.len >= 3 && memcmp(key.ptr, "no:", 3) == 0))
        return -1;
    return key.len >= 6 && memcmp(key.ptr, "short:", 6) == 0 ? 30 : 0;
}

static void test_policy(void **state)
{
    near_t *n = near_create(BIG, 1024, 10);
    uint64_t t = near_ticket(n);

    assert_int_equal(put(n, 0, "no:1", "a"), 1);
    assert_int_equal(put(n, 0, "x", "b"), 1);
    policy_drops_all = 0;
    near_set_policy(n, policy, NULL);
    assert_int_equal(has(n, 0, "no:1", "a", NOW), 0);
    assert_int_equal(stats(n).reconfigured, 1);
    assert_int_equal(near_covers(n, B("no:2")), 0);
    assert_int_equal(near_covers(n, B("short:2")), 1);
    assert_int_equal(put(n, 0, "no:2", "c"), 0);
    assert_int_equal(near_put(n, t, 0, B("short:1"), B("v"), -1, NOW), 1);
    assert_int_equal(has(n, 0, "short:1", "v", NOW + 29), 1);
    assert_int_equal(has(n, 0, "short:1", "v", NOW + 30), 0);
    /* the policy's 0 is "no bound", not the tier's 10 ms */
    assert_int_equal(near_put(n, t, 0, B("long"), B("v"), -1, NOW), 1);
    assert_int_equal(has(n, 0, "long", "v", NOW + 1000), 1);
    /* prefixes still apply first */
    const bytes_t pre[] = { BYTES("short:") };
    near_set_prefixes(n, pre, 1);
    assert_int_equal(near_covers(n, B("long")), 0);
    assert_int_equal(near_covers(n, B("short:3")), 1);
    policy_drops_all = 1;
    near_refilter(n);
    assert_int_equal(stats(n).entries, 0);
    assert_int_equal(near_covers(n, B("short:3")), 0);
    policy_drops_all = 0;
    near_destroy(n);
}

static void test_lru_order(void **state)
{
    const size_t one = near_entry_size(2, 2);
    near_t *n = near_create(3 * one, 1024, 0);

    assert_int_equal(put(n, 0, "k1", "v1"), 1);
    assert_int_equal(put(n, 0, "k2", "v2"), 1);
    assert_int_equal(put(n, 0, "k3", "v3"), 1);
    assert_int_equal(stats(n).bytes, 3 * one);
    assert_int_equal(has(n, 0, "k1", "v1", NOW), 1);     /* k1 is now the most recent: k2 the oldest */

    assert_int_equal(put(n, 0, "k4", "v4"), 1);
    assert_int_equal(stats(n).evictions, 1);
    assert_int_equal(has(n, 0, "k2", "v2", NOW), 0);
    assert_int_equal(has(n, 0, "k1", "v1", NOW), 1);
    assert_int_equal(has(n, 0, "k3", "v3", NOW), 1);
    assert_int_equal(has(n, 0, "k4", "v4", NOW), 1);

    /* order now (oldest first): k1 k3 k4; a put of k5 evicts k1 */
    assert_int_equal(put(n, 0, "k5", "v5"), 1);
    assert_int_equal(has(n, 0, "k1", "v1", NOW), 0);
    assert_int_equal(has(n, 0, "k3", "v3", NOW), 1);

    /* an entry costing two takes the room of the two oldest: k4, k5 (k3 was just read) */
    char big[256];
    size_t big_len = 2 * one - near_entry_size(2, 0);
    assert_true(big_len < sizeof(big));
    memset(big, 'b', big_len);
    big[big_len] = '\0';
    assert_int_equal(near_entry_size(2, big_len), 2 * one);
    assert_int_equal(put(n, 0, "k6", big), 1);
    assert_int_equal(stats(n).bytes, 3 * one);
    assert_int_equal(stats(n).evictions, 4);
    assert_int_equal(has(n, 0, "k4", "v4", NOW), 0);
    assert_int_equal(has(n, 0, "k5", "v5", NOW), 0);
    assert_int_equal(has(n, 0, "k3", "v3", NOW), 1);
    assert_int_equal(has(n, 0, "k6", big, NOW), 1);

    /* replacing a key never evicts it to make room for itself */
    near_flush(n, NEAR_FLUSH_CONFIG);
    assert_int_equal(put(n, 0, "k1", "v1"), 1);
    assert_int_equal(put(n, 0, "k2", "v2"), 1);
    assert_int_equal(put(n, 0, "k3", "v3"), 1);
    assert_int_equal(put(n, 0, "k1", "w1"), 1);      /* k1 was the oldest */
    assert_int_equal(has(n, 0, "k1", "w1", NOW), 1);
    assert_int_equal(has(n, 0, "k2", "v2", NOW), 1);
    assert_int_equal(has(n, 0, "k3", "v3", NOW), 1);
    near_destroy(n);
}

/* A random workload: bytes never over max_bytes after any put, and whatever is found is the last value
 * put for its key. */
static void test_random_bound(void **state)
{
    enum { KEYS = 500, ROUNDS = 5000, MAXV = 300 };
    const size_t max_bytes = 40000;
    near_t *n = near_create(max_bytes, 200, 0);
    static char model[KEYS][MAXV + 1];
    static size_t model_len[KEYS];
    static int model_in[KEYS];
    char key[32], val[MAXV + 1];

    srand(12345);
    for (int r = 0; r < ROUNDS; r++) {
        int k = rand() % KEYS;
        size_t klen = (size_t)snprintf(key, sizeof(key), "key:%d", k);
        size_t vlen = (size_t)(rand() % (MAXV + 1));
        for (size_t i = 0; i < vlen; i++)
            val[i] = (char)(rand() & 0xff);
        int kept = near_put(n, near_ticket(n), 0, (bytes_t){ key, klen },
                            (bytes_t){ val, vlen }, -1, NOW);
        assert_int_equal(kept, vlen <= 200);
        if (kept) {
            memcpy(model[k], val, vlen);
            model_len[k] = vlen;
            model_in[k] = 1;
        } else {
            model_in[k] = 0;                          /* refused: what was held went */
        }
        near_stats_t st = stats(n);
        assert_true(st.bytes <= max_bytes);
        assert_true(st.entries * near_entry_size(0, 0) <= st.bytes);

        if (r % 7 == 0) {
            int q = rand() % KEYS;
            size_t qlen = (size_t)snprintf(key, sizeof(key), "key:%d", q);
            bytes_t got;
            if (near_get(n, 0, (bytes_t){ key, qlen }, NOW, &got)) {
                assert_true(model_in[q]);
                assert_int_equal(got.len, model_len[q]);
                assert_memory_equal(got.ptr, model[q], got.len);
            }
        }
        if (r % 101 == 0) {
            int q = rand() % KEYS;
            size_t qlen = (size_t)snprintf(key, sizeof(key), "key:%d", q);
            near_invalidate(n, (bytes_t){ key, qlen }, 1);
            model_in[q] = 0;
        }
    }
    near_stats_t st = stats(n);
    assert_true(st.evictions > 0);
    assert_true(st.entries > 0);
    /* the last thing kept is always found */
    assert_int_equal(put(n, 0, "last", "value"), 1);
    assert_int_equal(has(n, 0, "last", "value", NOW), 1);
    near_destroy(n);
}

static void test_configure_shrinks(void **state)
{
    const size_t one = near_entry_size(3, 3);
    near_t *n = near_create(10 * one, 1024, 0);
    char key[8];

    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "k%02d", i);
        assert_int_equal(near_put(n, near_ticket(n), 0, B(key), B("vvv"), -1, NOW), 1);
    }
    assert_int_equal(has(n, 0, "k00", "vvv", NOW), 1);    /* k00 the most recent: k01 the oldest */
    near_configure(n, 4 * one, 1024, 0);
    near_stats_t st = stats(n);
    assert_int_equal(st.entries, 4);
    assert_int_equal(st.bytes, 4 * one);
    assert_int_equal(st.max_bytes, 4 * one);
    assert_int_equal(st.evictions, 6);
    /* the four most recent stay: k00, k09, k08, k07 */
    assert_int_equal(has(n, 0, "k00", "vvv", NOW), 1);
    assert_int_equal(has(n, 0, "k09", "vvv", NOW), 1);
    assert_int_equal(has(n, 0, "k08", "vvv", NOW), 1);
    assert_int_equal(has(n, 0, "k07", "vvv", NOW), 1);
    assert_int_equal(has(n, 0, "k06", "vvv", NOW), 0);
    assert_int_equal(has(n, 0, "k01", "vvv", NOW), 0);

    /* a smaller max_value drops the longer values, not counted as evictions */
    assert_int_equal(put(n, 0, "k00", "v"), 1);
    near_configure(n, 4 * one, 2, 0);
    st = stats(n);
    assert_int_equal(st.entries, 1);
    assert_int_equal(st.evictions, 6);
    assert_int_equal(st.reconfigured, 3);
    assert_int_equal(has(n, 0, "k00", "v", NOW), 1);

    /* max_bytes 0: nothing kept */
    near_configure(n, 0, 1024, 0);
    assert_int_equal(stats(n).entries, 0);
    assert_int_equal(put(n, 0, "k", "v"), 0);
    near_destroy(n);
}

static void test_expire_some(void **state)
{
    near_t *n = near_create(BIG, 1024, 0);
    uint64_t t = near_ticket(n);
    char key[32];

    /* 100 entries that expire at NOW+10, then 50 that never do (the 50 are newer: nearer the head) */
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "short:%d", i);
        assert_int_equal(near_put(n, t, 0, B(key), B("v"), 10, NOW), 1);
    }
    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof(key), "long:%d", i);
        assert_int_equal(near_put(n, t, 0, B(key), B("v"), -1, NOW), 1);
    }
    assert_int_equal(near_expire_some(n, NOW + 9, 1000), 0);
    assert_int_equal(near_expire_some(n, NOW + 10, 0), 0);
    assert_int_equal(near_expire_some(n, NOW + 10, 30), 30);
    assert_int_equal(stats(n).entries, 120);
    assert_int_equal(stats(n).expired, 30);
    assert_int_equal(near_expire_some(n, NOW + 10, 30), 30);
    assert_int_equal(near_expire_some(n, NOW + 10, 1000), 40);
    assert_int_equal(stats(n).entries, 50);
    assert_int_equal(near_expire_some(n, NOW + 10, 1000), 0);

    /* expired entries behind (newer than) a run of live ones are reached by later calls */
    near_flush(n, NEAR_FLUSH_CONFIG);
    t = near_ticket(n);
    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof(key), "long:%d", i);
        assert_int_equal(near_put(n, t, 0, B(key), B("v"), -1, NOW), 1);
    }
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof(key), "short:%d", i);
        assert_int_equal(near_put(n, t, 0, B(key), B("v"), 10, NOW), 1);
    }
    size_t total = 0;
    for (int call = 0; call < 10; call++) {
        size_t d = near_expire_some(n, NOW + 10, 10);
        assert_true(d <= 10);
        total += d;
    }
    assert_int_equal(total, 20);
    assert_int_equal(stats(n).entries, 50);

    /* the sweep's place survives the entries under it going */
    near_flush(n, NEAR_FLUSH_CONFIG);              /* the sweep starts at the tail again */
    t = near_ticket(n);
    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof(key), "long:%d", i);
        assert_int_equal(near_put(n, t, 0, B(key), B("v"), -1, NOW), 1);
    }
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof(key), "short:%d", i);
        assert_int_equal(near_put(n, t, 0, B(key), B("v"), 10, NOW), 1);
    }
    assert_int_equal(near_expire_some(n, NOW, 55), 0);       /* the hand is now on short:5 */
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "short:%d", i);
        near_invalidate(n, B(key), 1);
    }
    assert_int_equal(has(n, 0, "short:15", "v", NOW), 1);   /* to the head */
    total = 0;
    for (int call = 0; call < 20; call++)
        total += near_expire_some(n, NOW + 10, 7);
    assert_int_equal(total, 10);
    assert_int_equal(stats(n).entries, 50);
    near_destroy(n);
}

static void test_stats(void **state)
{
    near_t *n = near_create(BIG, 8, 0);

    assert_int_equal(put(n, 0, "a", "1"), 1);
    assert_int_equal(has(n, 0, "a", "1", NOW), 1);
    assert_int_equal(has(n, 0, "b", "1", NOW), 0);
    assert_int_equal(put(n, 0, "b", "123456789"), 0);
    uint64_t t = near_ticket(n);
    near_invalidate(n, B("a"), 1);
    assert_int_equal(near_put(n, t, 0, B("a"), B("1"), -1, NOW), 0);
    near_invalidate(n, B("x"), 0);
    near_flush(n, NEAR_FLUSH_WRITE);

    near_stats_t st = stats(n);
    assert_int_equal(st.hits, 1);
    assert_int_equal(st.misses, 1);
    assert_int_equal(st.stored, 1);
    assert_int_equal(st.too_large, 1);
    assert_int_equal(st.races, 1);
    assert_int_equal(st.invalidations, 1);
    assert_int_equal(st.invalidated, 1);
    assert_int_equal(st.writes, 1);
    assert_int_equal(st.flushes[NEAR_FLUSH_WRITE], 1);
    assert_int_equal(st.max_bytes, BIG);

    assert_int_equal(put(n, 0, "c", "3"), 1);
    near_stats_reset(n);
    st = stats(n);
    assert_int_equal(st.hits + st.misses + st.stored + st.too_large + st.races, 0);
    assert_int_equal(st.invalidations + st.invalidated + st.writes + st.evictions + st.expired, 0);
    for (int c = 0; c < NEAR_FLUSH_NCAUSES; c++)
        assert_int_equal(st.flushes[c], 0);
    assert_int_equal(st.entries, 1);                  /* not counters */
    assert_int_equal(st.bytes, near_entry_size(1, 1));
    assert_int_equal(st.max_bytes, BIG);
    assert_int_equal(st.buckets, 1024);

    assert_string_equal(near_flush_cause_name(NEAR_FLUSH_UPSTREAM), "upstream");
    assert_string_equal(near_flush_cause_name(NEAR_FLUSH_TRACKING), "tracking");
    assert_string_equal(near_flush_cause_name(NEAR_FLUSH_CLIENT), "client");
    assert_string_equal(near_flush_cause_name(NEAR_FLUSH_WRITE), "write");
    assert_string_equal(near_flush_cause_name(NEAR_FLUSH_CONFIG), "config");
    near_destroy(n);
}

static void test_binary_and_empty_keys(void **state)
{
    near_t *n = near_create(BIG, 1024, 0);
    const bytes_t k1 = { "a\0b", 3 }, k2 = { "a\0c", 3 }, k3 = { "a", 1 };
    const bytes_t v1 = { "x\0y", 3 };
    const bytes_t empty = { NULL, 0 }, empty2 = { "", 0 };
    uint64_t t = near_ticket(n);
    bytes_t got;

    assert_int_equal(near_put(n, t, 0, k1, v1, -1, NOW), 1);
    assert_int_equal(near_put(n, t, 0, k3, B("short"), -1, NOW), 1);
    assert_int_equal(near_get(n, 0, k1, NOW, &got), 1);
    assert_int_equal(got.len, 3);
    assert_memory_equal(got.ptr, "x\0y", 3);
    assert_int_equal(near_get(n, 0, k2, NOW, &got), 0);
    assert_int_equal(near_get(n, 0, k3, NOW, &got), 1);
    assert_memory_equal(got.ptr, "short", 5);

    assert_int_equal(near_put(n, t, 0, empty, B("for empty"), -1, NOW), 1);
    assert_int_equal(near_get(n, 0, empty2, NOW, &got), 1);
    assert_int_equal(got.len, 9);
    assert_memory_equal(got.ptr, "for empty", 9);
    assert_int_equal(near_put(n, t, 1, empty2, empty, -1, NOW), 1);
    assert_int_equal(near_get(n, 1, empty, NOW, &got), 1);
    assert_int_equal(got.len, 0);

    near_invalidate(n, k1, 1);
    assert_int_equal(near_get(n, 0, k1, NOW, &got), 0);
    assert_int_equal(near_get(n, 0, k3, NOW, &got), 1);
    near_invalidate(n, empty, 1);
    assert_int_equal(near_get(n, 0, empty2, NOW, &got), 0);
    assert_int_equal(near_get(n, 1, empty2, NOW, &got), 0);
    assert_int_equal(stats(n).invalidated, 3);
    assert_int_equal(stats(n).entries, 1);
    near_destroy(n);
}

static void test_growth(void **state)
{
    enum { N = 20000 };
    near_t *n = near_create(BIG, 1024, 0);
    uint64_t t = near_ticket(n);
    char key[32], val[32];
    bytes_t got;

    assert_int_equal(stats(n).buckets, 1024);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "key:%d", i);
        snprintf(val, sizeof(val), "val:%d", i * 7);
        assert_int_equal(near_put(n, t, i % 3, B(key), B(val), -1, NOW), 1);
        assert_true(stats(n).buckets >= stats(n).entries);
        if (i % 1000 == 999) {              /* lookups stay right across each doubling */
            for (int j = 0; j <= i; j += 97) {
                snprintf(key, sizeof(key), "key:%d", j);
                snprintf(val, sizeof(val), "val:%d", j * 7);
                assert_int_equal(has(n, j % 3, key, val, NOW), 1);
                assert_int_equal(has(n, (j + 1) % 3, key, val, NOW), 0);
            }
        }
    }
    assert_int_equal(stats(n).entries, N);
    assert_int_equal(stats(n).buckets, 32768);
    assert_int_equal(stats(n).evictions, 0);
    for (int i = 0; i < N; i += 2) {
        snprintf(key, sizeof(key), "key:%d", i);
        near_invalidate(n, B(key), 1);
    }
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "key:%d", i);
        snprintf(val, sizeof(val), "val:%d", i * 7);
        assert_int_equal(near_get(n, i % 3, B(key), NOW, &got), i % 2);
        if (i % 2) {
            assert_int_equal(got.len, strlen(val));
            assert_memory_equal(got.ptr, val, got.len);
        }
    }
    assert_int_equal(stats(n).entries, N / 2);
    assert_int_equal(stats(n).invalidated, N / 2);
    near_destroy(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_put_replace),
        cmocka_unit_test(test_same_key_two_dbs),
        cmocka_unit_test(test_ticket_race),
        cmocka_unit_test(test_flush_tickets),
        cmocka_unit_test(test_max_value),
        cmocka_unit_test(test_prefixes),
        cmocka_unit_test(test_ttl),
        cmocka_unit_test(test_policy),
        cmocka_unit_test(test_lru_order),
        cmocka_unit_test(test_random_bound),
        cmocka_unit_test(test_configure_shrinks),
        cmocka_unit_test(test_expire_some),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_binary_and_empty_keys),
        cmocka_unit_test(test_growth),
    };
    return cmocka_run_group_tests_name("near", tests, NULL, NULL);
}
