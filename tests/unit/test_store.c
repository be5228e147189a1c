/*
 * Unit tests for src/backend/memory/store.c and evict.c: the keyspace (set/lookup/delete/rename), expiry
 * (lazy and active, with a frozen clock), memory accounting, every eviction policy, SCAN and RANDOMKEY; the
 * "key modified" signal and the WATCH registry (watch.c) it feeds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend/memory/store.h"
#include "backend/memory/watch.h"
#include "util/clock.h"

#define T0 1700000000000LL      /* a fixed "now" (2023-11-14) */

static int setup(void **state)
{
    clock_set_ms(T0);
    *state = store_create(16);
    return 0;
}

static int teardown(void **state)
{
    store_destroy(*state);
    return 0;
}

static void set_kv(store_t *s, int db, const char *k, const char *v, long long exp)
{
    store_set(s, db, k, strlen(k), v, strlen(v), exp, 0);
}

static store_entry_t *peek(store_t *s, int db, const char *k)
{
    return store_lookup(s, db, k, strlen(k), STORE_LOOKUP_NOTOUCH | STORE_LOOKUP_NOSTATS);
}

/* The value of k as a NUL-terminated string (static buffer), or NULL. */
static const char *get_str(store_t *s, int db, const char *k)
{
    static char buf[4096];
    store_entry_t *e = peek(s, db, k);
    size_t n;
    const char *v;

    if (e == NULL)
        return NULL;
    v = store_entry_value(e, &n);
    assert_true(n < sizeof(buf));
    memcpy(buf, v, n);
    buf[n] = '\0';
    return buf;
}

static size_t cost_of(const char *k, const char *v)
{
    return store_entry_cost(strlen(k), strlen(v));
}

static char *keyname(char *buf, const char *prefix, int i)
{
    sprintf(buf, "%s:%05d", prefix, i);
    return buf;
}

/* Two arguments: buf and the length of "<prefix>:<i>" (i on 5 digits, so that keys of one prefix all
 * cost the same) written into it (filled before the callee runs,
 * whatever the order the arguments are evaluated in). */
#define KEY(buf, prefix, i) (buf), (size_t)sprintf((buf), "%s:%05d", (prefix), (i))

/* ---- basics ------------------------------------------------------------------------------------- */

static void test_set_get_delete(void **state)
{
    store_t *s = *state;

    assert_null(peek(s, 0, "a"));
    set_kv(s, 0, "a", "hello", -1);
    assert_string_equal(get_str(s, 0, "a"), "hello");
    assert_int_equal(store_dbsize(s, 0), 1);

    /* Overwrite with the same length (in place) and with other lengths (new entry). */
    set_kv(s, 0, "a", "world", -1);
    assert_string_equal(get_str(s, 0, "a"), "world");
    set_kv(s, 0, "a", "a much longer value than before", -1);
    assert_string_equal(get_str(s, 0, "a"), "a much longer value than before");
    set_kv(s, 0, "a", "", -1);
    assert_string_equal(get_str(s, 0, "a"), "");
    assert_int_equal(store_dbsize(s, 0), 1);

    /* Key bytes come back as stored. */
    size_t klen;
    const char *k = store_entry_key(peek(s, 0, "a"), &klen);
    assert_int_equal(klen, 1);
    assert_memory_equal(k, "a", 1);

    /* Databases are separate. */
    assert_null(peek(s, 1, "a"));
    set_kv(s, 1, "a", "one", -1);
    assert_string_equal(get_str(s, 1, "a"), "one");
    assert_string_equal(get_str(s, 0, "a"), "");

    assert_int_equal(store_delete(s, 0, "a", 1), 1);
    assert_int_equal(store_delete(s, 0, "a", 1), 0);
    assert_null(peek(s, 0, "a"));
    assert_string_equal(get_str(s, 1, "a"), "one");
    assert_int_equal(store_dbsize(s, 0), 0);
    assert_int_equal(store_dbsize(s, 1), 1);
}

static void test_binary_keys_and_values(void **state)
{
    store_t *s = *state;
    const char key[] = { 'k', 0, 'e', 0, 'y' };
    const char val[] = { 0, 1, 2, 0, (char)255 };
    size_t n;

    store_set(s, 0, key, sizeof(key), val, sizeof(val), -1, 0);
    store_set(s, 0, key, 1, "short", 5, -1, 0);       /* "k" alone is another key */
    store_set(s, 0, "", 0, "empty key", 9, -1, 0);
    assert_int_equal(store_dbsize(s, 0), 3);

    store_entry_t *e = store_lookup(s, 0, key, sizeof(key), 0);
    assert_non_null(e);
    const char *v = store_entry_value(e, &n);
    assert_int_equal(n, sizeof(val));
    assert_memory_equal(v, val, sizeof(val));
    e = store_lookup(s, 0, "", 0, 0);
    assert_non_null(e);
    assert_memory_equal(store_entry_value(e, &n), "empty key", 9);
    assert_int_equal(store_delete(s, 0, "", 0), 1);
    assert_int_equal(store_delete(s, 0, key, sizeof(key)), 1);
    assert_int_equal(store_dbsize(s, 0), 1);
}

/* Overwriting a key with its own value (the caller passing the entry's bytes) is safe. */
static void test_set_from_own_value(void **state)
{
    store_t *s = *state;
    size_t n;

    set_kv(s, 0, "k", "0123456789", -1);
    const char *v = store_entry_value(peek(s, 0, "k"), &n);
    store_set(s, 0, "k", 1, v, n, -1, 0);              /* same length: in place */
    assert_string_equal(get_str(s, 0, "k"), "0123456789");
    v = store_entry_value(peek(s, 0, "k"), &n);
    store_set(s, 0, "k", 1, v + 2, n - 2, -1, 0);      /* shorter: new entry copied from the old */
    assert_string_equal(get_str(s, 0, "k"), "23456789");
}

/* ---- accounting ---------------------------------------------------------------------------------- */

static void test_entry_cost_formula(void **state)
{
    (void)state;
    size_t overhead = store_entry_cost(0, 0);
    /* 32-byte header + a bucket slot + a volatile slot, on a 64-bit build. */
    if (sizeof(void *) == 8)
        assert_int_equal(overhead, 48);
    assert_int_equal(store_entry_cost(10, 1000), overhead + 1010);
    assert_int_equal(store_entry_cost(SIZE_MAX, 1), SIZE_MAX);     /* saturates */
}

static void test_used_accounting(void **state)
{
    store_t *s = *state;
    char k[32];
    size_t expect = 0;

    assert_int_equal(store_used(s), 0);
    set_kv(s, 0, "a", "12345", -1);
    expect += cost_of("a", "12345");
    assert_int_equal(store_used(s), expect);

    /* An expiry does not change the figure (its slot is charged to every key). */
    set_kv(s, 2, "b", "xyz", T0 + 10000);
    expect += cost_of("b", "xyz");
    assert_int_equal(store_used(s), expect);
    store_set_expire(s, 2, "b", 1, -1);
    assert_int_equal(store_used(s), expect);

    /* Overwrite: the difference only. */
    set_kv(s, 0, "a", "1234567890", -1);
    expect += 5;
    assert_int_equal(store_used(s), expect);
    set_kv(s, 0, "a", "1", -1);
    expect -= 9;
    assert_int_equal(store_used(s), expect);

    /* Many keys in several dbs, through growth and rehash, then all deleted: back to 0. */
    for (int i = 0; i < 20000; i++) {
        int db = i % 3;
        set_kv(s, db, keyname(k, "key", i), "some value", i % 2 ? T0 + 100000 : -1);
        expect += cost_of(k, "some value");
        if (i % 5 == 0) {
            set_kv(s, db, k, "v", -1);
            expect -= 9;
        }
    }
    assert_int_equal(store_used(s), expect);
    for (int i = 0; i < 20000; i++)
        assert_int_equal(store_delete(s, i % 3, KEY(k, "key", i)), 1);
    assert_int_equal(store_delete(s, 0, "a", 1), 1);
    assert_int_equal(store_delete(s, 2, "b", 1), 1);
    assert_int_equal(store_used(s), 0);
    for (int db = 0; db < 16; db++) {
        assert_int_equal(store_dbsize(s, db), 0);
        assert_int_equal(store_expires(s, db), 0);
    }
}

static void test_flush(void **state)
{
    store_t *s = *state;
    char k[32];

    for (int i = 0; i < 3000; i++) {
        set_kv(s, 0, keyname(k, "a", i), "x", -1);
        set_kv(s, 1, keyname(k, "b", i), "yy", T0 + 5000);
        set_kv(s, 15, keyname(k, "c", i), "zzz", -1);
    }
    size_t before = store_used(s);
    size_t db1 = 0;
    for (int i = 0; i < 3000; i++)
        db1 += store_entry_cost(strlen(keyname(k, "b", i)), 2);

    store_flush(s, 1);
    assert_int_equal(store_dbsize(s, 1), 0);
    assert_int_equal(store_expires(s, 1), 0);
    assert_int_equal(store_used(s), before - db1);
    assert_int_equal(store_dbsize(s, 0), 3000);
    assert_string_equal(get_str(s, 15, "c:00007"), "zzz");
    assert_int_equal(store_expire_cycle(s, 100000), 0);    /* nothing left pointing into db 1 */

    /* The db is usable after a flush. */
    set_kv(s, 1, "again", "1", T0 + 1);
    assert_int_equal(store_expires(s, 1), 1);

    store_flush(s, -1);
    assert_int_equal(store_used(s), 0);
    for (int db = 0; db < 16; db++)
        assert_int_equal(store_dbsize(s, db), 0);
    set_kv(s, 0, "after", "flush", -1);
    assert_string_equal(get_str(s, 0, "after"), "flush");
}

/* ---- expiry ------------------------------------------------------------------------------------- */

static void test_lazy_expiry(void **state)
{
    store_t *s = *state;
    const store_stats_t *st = store_stats(s);

    set_kv(s, 0, "k1", "v", T0 + 1000);
    set_kv(s, 0, "k2", "v", T0 + 1000);
    set_kv(s, 0, "k3", "v", T0 + 1000);
    set_kv(s, 0, "k4", "v", T0 + 1000);
    set_kv(s, 0, "keep", "v", -1);
    assert_int_equal(store_expires(s, 0), 4);
    assert_int_equal(store_entry_expire(peek(s, 0, "k1")), T0 + 1000);

    clock_set_ms(T0 + 999);
    assert_non_null(peek(s, 0, "k1"));
    assert_int_equal(st->expired_keys, 0);

    /* At the expiry instant the key no longer exists. */
    clock_set_ms(T0 + 1000);
    assert_int_equal(store_dbsize(s, 0), 5);            /* not reclaimed until touched */
    assert_null(store_lookup(s, 0, "k1", 2, 0));
    assert_int_equal(st->expired_keys, 1);
    assert_int_equal(st->keyspace_misses, 1);
    assert_int_equal(store_dbsize(s, 0), 4);
    assert_null(peek(s, 0, "k1"));
    assert_int_equal(st->expired_keys, 1);              /* already gone: not counted twice */

    /* Every call that reads a key expires it lazily. */
    assert_int_equal(store_delete(s, 0, "k2", 2), 0);
    assert_int_equal(st->expired_keys, 2);
    assert_int_equal(store_set_expire(s, 0, "k3", 2, T0 + 99999), 0);
    assert_int_equal(st->expired_keys, 3);
    assert_int_equal(store_rename(s, 0, "k4", 2, "k5", 2, 0), -1);
    assert_int_equal(st->expired_keys, 4);
    assert_null(peek(s, 0, "k5"));
    assert_int_equal(store_dbsize(s, 0), 1);
    assert_int_equal(store_expires(s, 0), 0);
    assert_non_null(peek(s, 0, "keep"));
}

/* Writing a key with an expiry already in the past deletes it (as SET PXAT <past>): not an expiry. */
static void test_set_with_past_expiry(void **state)
{
    store_t *s = *state;

    set_kv(s, 0, "k", "v", T0);
    assert_null(peek(s, 0, "k"));
    assert_int_equal(store_dbsize(s, 0), 0);
    set_kv(s, 0, "k", "v", -1);
    set_kv(s, 0, "k", "other", T0 - 5);
    assert_null(peek(s, 0, "k"));
    assert_int_equal(store_dbsize(s, 0), 0);
    assert_int_equal(store_used(s), 0);
    assert_int_equal(store_stats(s)->expired_keys, 0);
}

static void test_keepttl(void **state)
{
    store_t *s = *state;

    set_kv(s, 0, "k", "v1", T0 + 5000);
    store_set(s, 0, "k", 1, "value two", 9, -1, STORE_SET_KEEPTTL);     /* new entry: moved */
    assert_string_equal(get_str(s, 0, "k"), "value two");
    assert_int_equal(store_entry_expire(peek(s, 0, "k")), T0 + 5000);
    assert_int_equal(store_expires(s, 0), 1);
    store_set(s, 0, "k", 1, "value 333", 9, T0 + 1, STORE_SET_KEEPTTL); /* expire_at ignored */
    assert_int_equal(store_entry_expire(peek(s, 0, "k")), T0 + 5000);

    /* Without KEEPTTL a write removes the expiry. */
    set_kv(s, 0, "k", "v3", -1);
    assert_int_equal(store_entry_expire(peek(s, 0, "k")), -1);
    assert_int_equal(store_expires(s, 0), 0);
    /* ... or sets a new one. */
    set_kv(s, 0, "k", "v4", T0 + 7000);
    assert_int_equal(store_entry_expire(peek(s, 0, "k")), T0 + 7000);

    /* KEEPTTL on an absent key: a plain new key. */
    store_set(s, 0, "new", 3, "x", 1, -1, STORE_SET_KEEPTTL);
    assert_int_equal(store_entry_expire(peek(s, 0, "new")), -1);

    /* KEEPTTL on an expired key: the old key is gone (counted), the new one has no expiry. */
    clock_set_ms(T0 + 7000);
    store_set(s, 0, "k", 1, "v5", 2, -1, STORE_SET_KEEPTTL);
    assert_int_equal(store_stats(s)->expired_keys, 1);
    assert_string_equal(get_str(s, 0, "k"), "v5");
    assert_int_equal(store_entry_expire(peek(s, 0, "k")), -1);
    assert_int_equal(store_expires(s, 0), 0);

    /* The moved entry's volatile slot was kept right: active expiry can still find it. */
    set_kv(s, 0, "m", "1", T0 + 8000);
    store_set(s, 0, "m", 1, "1234567", 7, -1, STORE_SET_KEEPTTL);
    store_set(s, 0, "m", 1, "12", 2, -1, STORE_SET_KEEPTTL);
    clock_set_ms(T0 + 8000);
    assert_int_equal(store_expire_cycle(s, 1000000), 1);
    assert_int_equal(store_dbsize(s, 0), 2);
}

static void test_set_expire(void **state)
{
    store_t *s = *state;

    assert_int_equal(store_set_expire(s, 0, "nope", 4, T0 + 100), 0);
    set_kv(s, 0, "k", "v", -1);
    assert_int_equal(store_set_expire(s, 0, "k", 1, T0 + 100), 1);
    assert_int_equal(store_entry_expire(peek(s, 0, "k")), T0 + 100);
    assert_int_equal(store_expires(s, 0), 1);
    assert_int_equal(store_set_expire(s, 0, "k", 1, T0 + 200), 1);     /* change */
    assert_int_equal(store_expires(s, 0), 1);
    assert_int_equal(store_set_expire(s, 0, "k", 1, -1), 1);           /* PERSIST */
    assert_int_equal(store_entry_expire(peek(s, 0, "k")), -1);
    assert_int_equal(store_expires(s, 0), 0);
    assert_int_equal(store_set_expire(s, 0, "k", 1, -1), 1);           /* persistent already */

    /* An expiry at or before now deletes, and is not counted as an expiry. */
    assert_int_equal(store_set_expire(s, 0, "k", 1, T0), 1);
    assert_null(peek(s, 0, "k"));
    assert_int_equal(store_stats(s)->expired_keys, 0);
    assert_int_equal(store_used(s), 0);
}

static void test_rename(void **state)
{
    store_t *s = *state;
    const store_stats_t *st = store_stats(s);

    set_kv(s, 0, "src", "value", T0 + 3000);
    assert_int_equal(store_rename(s, 0, "src", 3, "a longer destination", 20, 0), 1);
    assert_null(peek(s, 0, "src"));
    assert_string_equal(get_str(s, 0, "a longer destination"), "value");
    assert_int_equal(store_entry_expire(peek(s, 0, "a longer destination")), T0 + 3000);
    assert_int_equal(store_expires(s, 0), 1);
    assert_int_equal(store_used(s), cost_of("a longer destination", "value"));

    /* Missing source. */
    assert_int_equal(store_rename(s, 0, "src", 3, "x", 1, 0), -1);

    /* dst replaced (losing its own expiry), unless nx. */
    set_kv(s, 0, "d", "old", T0 + 99999);
    set_kv(s, 0, "p", "persistent", -1);
    assert_int_equal(store_rename(s, 0, "p", 1, "d", 1, 1), 0);
    assert_string_equal(get_str(s, 0, "d"), "old");
    assert_string_equal(get_str(s, 0, "p"), "persistent");
    assert_int_equal(store_rename(s, 0, "p", 1, "d", 1, 0), 1);
    assert_string_equal(get_str(s, 0, "d"), "persistent");
    assert_int_equal(store_entry_expire(peek(s, 0, "d")), -1);
    assert_int_equal(store_expires(s, 0), 1);
    assert_int_equal(store_dbsize(s, 0), 2);

    /* Renaming a key to itself. */
    assert_int_equal(store_rename(s, 0, "d", 1, "d", 1, 0), 1);
    assert_int_equal(store_rename(s, 0, "d", 1, "d", 1, 1), 0);
    assert_string_equal(get_str(s, 0, "d"), "persistent");

    /* An expired dst does not block RENAMENX. */
    set_kv(s, 0, "e", "soon", T0 + 10);
    clock_set_ms(T0 + 10);
    assert_int_equal(store_rename(s, 0, "d", 1, "e", 1, 1), 1);
    assert_int_equal(st->expired_keys, 1);
    assert_string_equal(get_str(s, 0, "e"), "persistent");

    /* The renamed key still expires, actively too (its volatile slot points to the new entry). */
    clock_set_ms(T0 + 3000);
    assert_int_equal(store_expire_cycle(s, 1000000), 1);
    assert_null(peek(s, 0, "a longer destination"));
    assert_int_equal(store_dbsize(s, 0), 1);
    assert_int_equal(store_used(s), cost_of("e", "persistent"));
}

static void test_stats(void **state)
{
    store_t *s = *state;
    const store_stats_t *st = store_stats(s);

    set_kv(s, 0, "k", "v", -1);
    assert_non_null(store_lookup(s, 0, "k", 1, 0));
    assert_non_null(store_lookup(s, 0, "k", 1, 0));
    assert_null(store_lookup(s, 0, "x", 1, 0));
    /* NOTOUCH (TYPE, TTL, EXISTS) counts as Redis's LOOKUP_NOTOUCH does; NOSTATS (a write's lookup) not */
    assert_non_null(store_lookup(s, 0, "k", 1, STORE_LOOKUP_NOTOUCH));
    assert_null(store_lookup(s, 0, "x", 1, STORE_LOOKUP_NOTOUCH));
    assert_non_null(store_lookup(s, 0, "k", 1, STORE_LOOKUP_NOTOUCH | STORE_LOOKUP_NOSTATS));
    assert_null(store_lookup(s, 0, "x", 1, STORE_LOOKUP_NOSTATS));
    assert_int_equal(st->keyspace_hits, 3);
    assert_int_equal(st->keyspace_misses, 2);
    store_stats_reset(s);
    assert_int_equal(st->keyspace_hits, 0);
    assert_int_equal(st->keyspace_misses, 0);
}

/* ---- active expiry ------------------------------------------------------------------------------ */

static void test_expire_cycle_all(void **state)
{
    store_t *s = *state;
    char k[32];

    for (int i = 0; i < 1000; i++) {
        set_kv(s, 0, keyname(k, "vol", i), "v", T0 + 1000 + i % 7);
        set_kv(s, 3, keyname(k, "vol", i), "v", T0 + 1000);
        set_kv(s, 0, keyname(k, "persist", i), "v", -1);
    }
    set_kv(s, 3, "later", "v", T0 + 5000);
    assert_int_equal(store_expire_cycle(s, 1000000), 0);       /* nothing due yet */

    clock_set_ms(T0 + 2000);
    /* All expired: every draw is 100% expired, so the cycle goes on until the dbs are clean. */
    assert_int_equal(store_expire_cycle(s, 10 * 1000000), 2000);
    assert_int_equal(store_stats(s)->expired_keys, 2000);
    assert_int_equal(store_dbsize(s, 0), 1000);
    assert_int_equal(store_dbsize(s, 3), 1);
    assert_int_equal(store_expires(s, 0), 0);
    assert_int_equal(store_expires(s, 3), 1);
    assert_non_null(peek(s, 3, "later"));
}

/* With few expired keys a cycle stops early (<= 25% of a draw expired); repeated cycles still get
 * them all. */
static void test_expire_cycle_sparse(void **state)
{
    store_t *s = *state;
    char k[32];

    for (int i = 0; i < 2000; i++)
        set_kv(s, 0, keyname(k, "k", i), "v", i % 10 == 0 ? T0 + 100 : T0 + 1000000);
    clock_set_ms(T0 + 100);
    size_t first = store_expire_cycle(s, 1000000);
    assert_true(first < 200);
    size_t total = first;
    for (int round = 0; round < 100000 && total < 200; round++)
        total += store_expire_cycle(s, 1000000);
    assert_int_equal(total, 200);
    assert_int_equal(store_expires(s, 0), 1800);
    assert_int_equal(store_stats(s)->expired_keys, 200);
}

/* A tiny budget: progress each call, but not everything at once; dbs take turns. */
static void test_expire_cycle_budget(void **state)
{
    store_t *s = *state;
    char k[32];

    for (int i = 0; i < 100000; i++)
        set_kv(s, i % 2, keyname(k, "k", i), "v", T0 + 1);
    clock_set_ms(T0 + 1);
    size_t r1 = store_expire_cycle(s, 1);
    assert_true(r1 >= 1 && r1 < 100000);
    size_t d0 = store_dbsize(s, 0), d1 = store_dbsize(s, 1);
    assert_true(d0 < 50000 || d1 < 50000);
    /* Calls rotate over the dbs, so both shrink over a few calls. */
    for (int i = 0; i < 4; i++)
        store_expire_cycle(s, 1);
    assert_true(store_dbsize(s, 0) < 50000);
    assert_true(store_dbsize(s, 1) < 50000);
    assert_int_equal(store_expire_cycle(s, 0), 0);
    while (store_expires(s, 0) + store_expires(s, 1) > 0)
        store_expire_cycle(s, 1000000);
    assert_int_equal(store_stats(s)->expired_keys, 100000);
    assert_int_equal(store_used(s), 0);
}

/* ---- scan / random ------------------------------------------------------------------------------ */

typedef struct seen {
    int n;
    unsigned char *hits;        /* per key index */
    int expired_emitted;
} seen_t;

static void seen_cb(void *priv, const store_entry_t *e)
{
    seen_t *sn = priv;
    size_t klen;
    const char *k = store_entry_key(e, &klen);
    char buf[32];

    if (store_entry_expire(e) >= 0 && store_entry_expire(e) <= clock_ms())
        sn->expired_emitted++;
    assert_true(klen < sizeof(buf));
    memcpy(buf, k, klen);
    buf[klen] = '\0';
    int i = atoi(strchr(buf, ':') + 1);
    assert_true(i >= 0 && i < sn->n);
    if (sn->hits[i] < 255)
        sn->hits[i]++;
}

static void test_scan_skips_and_reclaims_expired(void **state)
{
    store_t *s = *state;
    char k[32];
    seen_t sn = { .n = 1000, .hits = calloc(1000, 1) };

    for (int i = 0; i < 1000; i++)
        set_kv(s, 0, keyname(k, "k", i), "v", i % 10 == 0 ? T0 + 50 : -1);
    clock_set_ms(T0 + 50);
    uint64_t cursor = 0;
    int calls = 0;
    do {
        cursor = store_scan(s, 0, cursor, 10, seen_cb, &sn);
        calls++;
    } while (cursor != 0);
    assert_true(calls > 10);
    for (int i = 0; i < 1000; i++) {
        if (i % 10 == 0)
            assert_int_equal(sn.hits[i], 0);
        else
            assert_true(sn.hits[i] >= 1);
    }
    assert_int_equal(sn.expired_emitted, 0);
    assert_int_equal(store_dbsize(s, 0), 900);
    assert_int_equal(store_stats(s)->expired_keys, 100);
    assert_int_equal(store_scan(s, 5, 0, 10, seen_cb, &sn), 0);    /* empty db */
    free(sn.hits);
}

/* Keys present for the whole scan are all returned, while the keyspace grows and then shrinks. */
static void test_scan_across_resizes(void **state)
{
    store_t *s = *state;
    char k[32];
    enum { STABLE = 300, OTHER = 20000 };
    seen_t sn = { .n = STABLE + OTHER, .hits = calloc(STABLE + OTHER, 1) };
    int next = STABLE, step = 0;
    uint64_t cursor = 0;

    for (int i = 0; i < STABLE; i++)
        set_kv(s, 0, keyname(k, "k", i), "v", -1);
    do {
        cursor = store_scan(s, 0, cursor, 5, seen_cb, &sn);
        if (step < 60) {
            for (int j = 0; j < 300 && next < STABLE + OTHER; j++)
                set_kv(s, 0, keyname(k, "k", next++), "v", -1);
        } else {
            for (int j = 0; j < 300 && next > STABLE; j++)
                store_delete(s, 0, KEY(k, "k", --next));
        }
        step++;
        assert_true(step < 1000000);
    } while (cursor != 0);
    for (int i = 0; i < STABLE; i++)
        assert_true(sn.hits[i] >= 1);
    free(sn.hits);
}

static void test_random(void **state)
{
    store_t *s = *state;
    char k[32];
    int hits[50] = { 0 };

    assert_null(store_random(s, 0));
    for (int i = 0; i < 50; i++)
        set_kv(s, 0, keyname(k, "k", i), "v", -1);
    for (int i = 0; i < 50; i++)
        set_kv(s, 0, keyname(k, "x", i), "v", T0 + 10);
    clock_set_ms(T0 + 10);
    for (int r = 0; r < 5000; r++) {
        store_entry_t *e = store_random(s, 0);
        assert_non_null(e);
        size_t klen;
        const char *key = store_entry_key(e, &klen);
        assert_true(key[0] == 'k');                     /* never an expired one */
        char buf[32];
        memcpy(buf, key, klen);
        buf[klen] = '\0';
        hits[atoi(buf + 2)]++;
    }
    for (int i = 0; i < 50; i++)
        assert_true(hits[i] > 0);
    assert_true(store_stats(s)->expired_keys > 0);

    /* Only expired keys: NULL, and they are reclaimed on the way. */
    store_flush(s, 0);
    store_stats_reset(s);
    for (int i = 0; i < 30; i++)
        set_kv(s, 1, keyname(k, "x", i), "v", T0 + 20);
    clock_set_ms(T0 + 20);
    assert_null(store_random(s, 1));
    assert_int_equal(store_dbsize(s, 1), 0);
    assert_int_equal(store_stats(s)->expired_keys, 30);
}

/* ---- eviction ----------------------------------------------------------------------------------- */

/* Fill db 0 with n keys "<prefix>:<i>" of value vlen, expiring at exp (-1 = none). */
static void fill(store_t *s, const char *prefix, int n, size_t vlen, long long exp)
{
    char k[32], v[256];
    memset(v, 'v', sizeof(v));
    assert_true(vlen <= sizeof(v));
    for (int i = 0; i < n; i++) {
        keyname(k, prefix, i);
        store_set(s, 0, k, strlen(k), v, vlen, exp, 0);
    }
}

static int count_present(store_t *s, const char *prefix, int n)
{
    char k[32];
    int c = 0;
    for (int i = 0; i < n; i++)
        c += peek(s, 0, keyname(k, prefix, i)) != NULL;
    return c;
}

static void test_no_limit(void **state)
{
    store_t *s = *state;
    fill(s, "k", 100, 10, -1);
    assert_int_equal(store_maxmemory(s), 0);
    assert_int_equal(store_make_room(s, SIZE_MAX), 0);
    assert_int_equal(store_dbsize(s, 0), 100);
}

static void test_noeviction(void **state)
{
    store_t *s = *state;

    fill(s, "k", 100, 10, -1);
    store_set_limit(s, store_used(s) + 100, STORE_NOEVICTION);
    assert_int_equal(store_policy(s), STORE_NOEVICTION);
    assert_int_equal(store_maxmemory(s), store_used(s) + 100);
    assert_int_equal(store_make_room(s, 100), 0);
    assert_int_equal(store_make_room(s, 101), -1);
    assert_int_equal(store_dbsize(s, 0), 100);
    assert_int_equal(store_stats(s)->evicted_keys, 0);
}

/* A request larger than the whole limit fails without evicting anything. */
static void test_needed_beyond_limit(void **state)
{
    store_t *s = *state;

    fill(s, "k", 100, 10, -1);
    store_set_limit(s, store_used(s), STORE_ALLKEYS_LRU);
    assert_int_equal(store_make_room(s, store_used(s) + 1), -1);
    assert_int_equal(store_dbsize(s, 0), 100);
    assert_int_equal(store_stats(s)->evicted_keys, 0);
}

/* LRU evicts keys not touched for a while, not the hot ones; NOTOUCH lookups do not count as use. */
static void test_allkeys_lru(void **state)
{
    store_t *s = *state;
    char k[32], val[100];
    size_t c = store_entry_cost(strlen("cold:00000"), 100);

    memset(val, 'n', sizeof(val));

    store_set_limit(s, 0, STORE_ALLKEYS_LRU);
    fill(s, "cold", 200, 100, -1);
    clock_set_ms(T0 + 100000);
    for (int i = 0; i < 10; i++)
        assert_non_null(store_lookup(s, 0, KEY(k, "cold", 100 + i), 0));
    /* Peeking at the others does not save them. */
    for (int i = 0; i < 100; i++)
        assert_non_null(peek(s, 0, keyname(k, "cold", i)));

    store_set_limit(s, store_used(s), STORE_ALLKEYS_LRU);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(store_make_room(s, c), 0);
        store_set(s, 0, KEY(k, "new", i), val, 100, -1, 0);
        assert_true(store_used(s) <= store_maxmemory(s));
    }
    for (int i = 0; i < 10; i++)
        assert_non_null(peek(s, 0, keyname(k, "cold", 100 + i)));
    assert_int_equal(count_present(s, "new", 50), 50);
    assert_int_equal(store_stats(s)->evicted_keys, 50);
}

/* Exact LRU order on a keyspace small enough that every key is a candidate. */
static void test_lru_order_small(void **state)
{
    store_t *s = *state;

    store_set_limit(s, 0, STORE_ALLKEYS_LRU);
    set_kv(s, 0, "a", "1", -1);
    clock_set_ms(T0 + 10000);
    set_kv(s, 0, "b", "1", -1);
    clock_set_ms(T0 + 20000);
    set_kv(s, 0, "c", "1", -1);
    clock_set_ms(T0 + 30000);
    assert_non_null(store_lookup(s, 0, "a", 1, 0));    /* a is now the most recent */
    store_set_limit(s, store_used(s), STORE_ALLKEYS_LRU);
    assert_int_equal(store_make_room(s, 1), 0);
    assert_null(peek(s, 0, "b"));
    assert_int_equal(store_make_room(s, cost_of("c", "1") + 1), 0);
    assert_null(peek(s, 0, "c"));
    assert_non_null(peek(s, 0, "a"));
}

static void test_allkeys_lfu(void **state)
{
    store_t *s = *state;
    char k[32];
    size_t c = store_entry_cost(strlen("k:00000"), 50);

    store_set_limit(s, 0, STORE_ALLKEYS_LFU);
    fill(s, "k", 200, 50, -1);
    for (int r = 0; r < 50; r++)
        for (int i = 0; i < 10; i++)
            assert_non_null(store_lookup(s, 0, KEY(k, "k", 100 + i), 0));
    store_set_limit(s, store_used(s), STORE_ALLKEYS_LFU);
    assert_int_equal(store_make_room(s, 40 * c), 0);
    assert_int_equal(store_stats(s)->evicted_keys, 40);
    for (int i = 0; i < 10; i++)
        assert_non_null(peek(s, 0, keyname(k, "k", 100 + i)));
    assert_int_equal(count_present(s, "k", 200), 160);
}

/* The LFU counter decays with idle time: a key used a lot long ago loses to a fresh one. */
static void test_lfu_decay(void **state)
{
    store_t *s = *state;

    store_set_limit(s, 0, STORE_ALLKEYS_LFU);
    set_kv(s, 0, "old", "1", -1);
    for (int i = 0; i < 1000; i++)
        store_lookup(s, 0, "old", 3, 0);
    clock_set_ms(T0 + 30 * 60000);                      /* 30 idle minutes: counter - 30 */
    set_kv(s, 0, "fresh", "1", -1);                     /* LFU_INIT_VAL */
    store_set_limit(s, store_used(s), STORE_ALLKEYS_LFU);
    assert_int_equal(store_make_room(s, 1), 0);
    assert_null(peek(s, 0, "old"));
    assert_non_null(peek(s, 0, "fresh"));
}

static void test_volatile_lru(void **state)
{
    store_t *s = *state;
    size_t c = store_entry_cost(strlen("vol:00000"), 20);

    store_set_limit(s, 0, STORE_VOLATILE_LRU);
    fill(s, "persist", 100, 20, -1);
    fill(s, "vol", 50, 20, T0 + 1000000);
    store_set_limit(s, store_used(s), STORE_VOLATILE_LRU);
    assert_int_equal(store_make_room(s, 20 * c), 0);
    assert_int_equal(count_present(s, "persist", 100), 100);
    assert_int_equal(count_present(s, "vol", 50), 30);
    assert_int_equal(store_expires(s, 0), 30);
    /* More than the volatile keys can free: they all go, then -1; persistent keys stay. */
    assert_int_equal(store_make_room(s, 60 * c), -1);
    assert_int_equal(count_present(s, "vol", 50), 0);
    assert_int_equal(count_present(s, "persist", 100), 100);
    assert_int_equal(store_stats(s)->evicted_keys, 50);
    assert_int_equal(store_make_room(s, 50 * c), 0);     /* fits in what was freed */
    assert_int_equal(store_make_room(s, 50 * c + 1), -1); /* nothing evictable */
}

static void test_volatile_lfu(void **state)
{
    store_t *s = *state;
    char k[32];

    store_set_limit(s, 0, STORE_VOLATILE_LFU);
    fill(s, "persist", 50, 20, -1);
    fill(s, "vol", 100, 20, T0 + 1000000);
    for (int r = 0; r < 50; r++)
        for (int i = 0; i < 5; i++)
            store_lookup(s, 0, KEY(k, "vol", i), 0);
    store_set_limit(s, store_used(s), STORE_VOLATILE_LFU);
    assert_int_equal(store_make_room(s, 30 * store_entry_cost(strlen("vol:00000"), 20)), 0);
    assert_int_equal(count_present(s, "persist", 50), 50);
    assert_int_equal(count_present(s, "vol", 5), 5);      /* the frequently used ones */
    assert_true(count_present(s, "vol", 100) <= 75);
}

/* volatile-ttl evicts the soonest-expiring keys (exactly, when all volatile keys are sampled). */
static void test_volatile_ttl(void **state)
{
    store_t *s = *state;
    static const int order[5] = { 3, 1, 4, 0, 2 };    /* insertion order scrambled */
    char k[32];

    store_set_limit(s, 0, STORE_VOLATILE_TTL);
    fill(s, "persist", 5, 10, -1);
    for (int j = 0; j < 5; j++)
        set_kv(s, 0, keyname(k, "ttl", order[j]), "v", T0 + 1000 * (order[j] + 1));
    store_set_limit(s, store_used(s), STORE_VOLATILE_TTL);
    assert_int_equal(store_make_room(s, cost_of("ttl:00000", "v") + 1), 0);
    assert_null(peek(s, 0, "ttl:00000"));
    assert_null(peek(s, 0, "ttl:00001"));
    assert_non_null(peek(s, 0, "ttl:00002"));
    assert_non_null(peek(s, 0, "ttl:00003"));
    assert_non_null(peek(s, 0, "ttl:00004"));
    assert_int_equal(count_present(s, "persist", 5), 5);
    assert_int_equal(store_stats(s)->evicted_keys, 2);
}

/* With many volatile keys, sampling makes it approximate, but clearly biased to the soonest. */
static void test_volatile_ttl_many(void **state)
{
    store_t *s = *state;
    char k[32];
    int ranksum = 0, evicted = 0;

    store_set_limit(s, 0, STORE_VOLATILE_TTL);
    for (int i = 0; i < 100; i++)   /* key i expires (i+1) seconds from now */
        set_kv(s, 0, keyname(k, "t", (i * 37) % 100), "v", T0 + 1000 * ((i * 37) % 100 + 1));
    store_set_limit(s, store_used(s), STORE_VOLATILE_TTL);
    assert_int_equal(store_make_room(s, 10 * cost_of("t:00010", "v")), 0);
    for (int i = 0; i < 100; i++) {
        if (peek(s, 0, keyname(k, "t", i)) == NULL) {
            ranksum += i;
            evicted++;
        }
    }
    assert_true(evicted >= 10 && evicted <= 11);
    assert_true(ranksum / evicted < 40);       /* random choice would average 49.5 */
}

static void test_allkeys_random(void **state)
{
    store_t *s = *state;
    size_t c = store_entry_cost(strlen("k:00000"), 30);

    fill(s, "k", 100, 30, -1);
    store_set_limit(s, store_used(s), STORE_ALLKEYS_RANDOM);
    assert_int_equal(store_make_room(s, 25 * c), 0);
    assert_true(store_used(s) + 25 * c <= store_maxmemory(s));
    assert_true(store_stats(s)->evicted_keys >= 25 && store_stats(s)->evicted_keys <= 26);
}

static void test_volatile_random(void **state)
{
    store_t *s = *state;
    size_t c = store_entry_cost(strlen("vol:00000"), 30);

    fill(s, "persist", 100, 30, -1);
    fill(s, "vol", 20, 30, T0 + 100000);
    store_set_limit(s, store_used(s), STORE_VOLATILE_RANDOM);
    assert_int_equal(store_make_room(s, 10 * c), 0);
    assert_int_equal(count_present(s, "persist", 100), 100);
    assert_int_equal(count_present(s, "vol", 20), 10);
    assert_int_equal(store_make_room(s, 30 * c), -1);
    assert_int_equal(count_present(s, "vol", 20), 0);
    assert_int_equal(count_present(s, "persist", 100), 100);
}

/* Expired keys met while making room are removed first, and counted as expired, not evicted. */
static void test_evict_prefers_expired(void **state)
{
    store_t *s = *state;

    store_set_limit(s, 0, STORE_VOLATILE_LRU);
    fill(s, "persist", 20, 10, -1);
    fill(s, "gone", 10, 10, T0 + 5);
    clock_set_ms(T0 + 5);
    store_set_limit(s, store_used(s), STORE_VOLATILE_LRU);
    assert_int_equal(store_make_room(s, 3 * store_entry_cost(strlen("gone:00000"), 10)), 0);
    assert_int_equal(store_stats(s)->expired_keys, 3);
    assert_int_equal(store_stats(s)->evicted_keys, 0);
}

/* Under every policy, make_room + set never leaves used above maxmemory, whatever the sizes. */
static void test_limit_holds_all_policies(void **state)
{
    static const store_policy_t policies[] = {
        STORE_ALLKEYS_LRU, STORE_VOLATILE_LRU, STORE_ALLKEYS_LFU, STORE_VOLATILE_LFU,
        STORE_VOLATILE_TTL, STORE_ALLKEYS_RANDOM, STORE_VOLATILE_RANDOM,
    };
    char k[32], v[600];
    memset(v, 'x', sizeof(v));
    (void)state;

    for (size_t p = 0; p < sizeof(policies) / sizeof(policies[0]); p++) {
        store_t *s = store_create(4);
        unsigned seed = 12345;
        int refused = 0;
        store_set_limit(s, 64 * 1024, policies[p]);
        for (int i = 0; i < 5000; i++) {
            seed = seed * 1103515245 + 12345;
            size_t vlen = (seed >> 8) % sizeof(v);
            int db = (int)((seed >> 20) % 4);
            long long exp = (seed >> 4) % 3 ? T0 + 1000 + (seed >> 12) % 100000 : -1;
            keyname(k, "k", (int)((seed >> 3) % 3000));
            if (i % 7 == 0)
                store_lookup(s, db, k, strlen(k), 0);
            if (store_make_room(s, store_entry_cost(strlen(k), vlen)) < 0) {
                refused++;
                continue;
            }
            store_set(s, db, k, strlen(k), v, vlen, exp, 0);
            assert_true(store_used(s) <= store_maxmemory(s));
        }
        assert_true(store_stats(s)->evicted_keys > 0);
        if (policies[p] == STORE_ALLKEYS_LRU || policies[p] == STORE_ALLKEYS_LFU ||
            policies[p] == STORE_ALLKEYS_RANDOM)
            assert_int_equal(refused, 0);
        /* Delete what is left: accounting returns to zero. */
        for (int db = 0; db < 4; db++) {
            for (int i = 0; i < 3000; i++)
                store_delete(s, db, KEY(k, "k", i));
            assert_int_equal(store_dbsize(s, db), 0);
        }
        assert_int_equal(store_used(s), 0);
        store_destroy(s);
    }
}

/*
 * The eviction pool holds entry pointers across calls: entries moved (overwritten with another size),
 * renamed, deleted, expired or flushed meanwhile must not leave it dangling (ASan would catch it).
 */
static void test_pool_survives_changes(void **state)
{
    store_t *s = *state;
    char k[32], k2[32];
    size_t c = store_entry_cost(strlen("k:00000"), 20);

    store_set_limit(s, 0, STORE_ALLKEYS_LRU);
    fill(s, "k", 200, 20, -1);
    store_set_limit(s, store_used(s), STORE_ALLKEYS_LRU);
    assert_int_equal(store_make_room(s, c), 0);            /* fills the pool */
    for (int i = 0; i < 200; i += 4)
        store_set(s, 0, KEY(k, "k", i), "a different length", 18, -1, 0);
    for (int i = 1; i < 200; i += 4)
        store_delete(s, 0, KEY(k, "k", i));
    for (int i = 2; i < 200; i += 4)
        store_rename(s, 0, KEY(k, "k", i), KEY(k2, "r", i), 0);
    for (int i = 3; i < 200; i += 8)
        store_set_expire(s, 0, KEY(k, "k", i), T0 + 1);
    clock_set_ms(T0 + 1);
    for (int i = 0; i < 20; i++)
        assert_int_equal(store_make_room(s, 20 * c), 0);
    store_flush(s, 0);
    fill(s, "n", 50, 20, -1);
    assert_int_equal(store_make_room(s, store_maxmemory(s) - store_used(s) + c), 0);

    /* A policy switch empties the pool; volatile policies drop candidates that lost their TTL. */
    store_set_limit(s, store_maxmemory(s), STORE_VOLATILE_LRU);
    fill(s, "v", 50, 20, T0 + 100000);
    assert_int_equal(store_make_room(s, store_maxmemory(s) - store_used(s) + c), 0);
    for (int i = 0; i < 50; i++)
        store_set_expire(s, 0, KEY(k, "v", i), -1);
    assert_int_equal(store_make_room(s, store_maxmemory(s) - store_used(s) + c), -1);
}

/* ---- writes under the limit: charged the difference, never evicting their own key ------------------ */

/* With noeviction and the store full, an overwrite of the same size, or a smaller one, is accepted; a
 * larger one answers STORE_OOM and leaves the key as it was (value and expiry). */
static void test_overwrite_charged_difference(void **state)
{
    store_t *s = *state;
    char big[3000];

    memset(big, 'b', sizeof(big));
    store_set(s, 0, "k", 1, big, 2000, T0 + 5000, 0);
    set_kv(s, 0, "other", "v", -1);
    store_set_limit(s, store_used(s), STORE_NOEVICTION);
    assert_int_equal(store_set(s, 0, "k", 1, big, 2000, -1, STORE_SET_KEEPTTL), 0);
    assert_int_equal(store_set(s, 0, "k", 1, big, 1999, -1, STORE_SET_KEEPTTL), 0);
    assert_int_equal(store_set(s, 0, "k", 1, big, 2000, -1, STORE_SET_KEEPTTL), 0);
    assert_int_equal(store_used(s), store_maxmemory(s));
    assert_int_equal(store_set(s, 0, "k", 1, big, 2001, -1, 0), STORE_OOM);
    assert_int_equal(store_set(s, 0, "new", 3, "", 0, -1, 0), STORE_OOM);
    store_entry_t *e = peek(s, 0, "k");
    size_t vlen;
    assert_non_null(e);
    store_entry_value(e, &vlen);
    assert_int_equal(vlen, 2000);
    assert_int_equal(store_entry_expire(e), T0 + 5000);
    /* a past expiry deletes, which needs no room */
    assert_int_equal(store_set(s, 0, "k", 1, big, 3000, T0, 0), 0);
    assert_null(peek(s, 0, "k"));
    assert_int_equal(store_stats(s)->evicted_keys, 0);
}

/* volatile-ttl: growing the key with the shortest TTL evicts the other volatile key, not itself, and
 * keeps its TTL; when it is the only volatile key the write fails and changes nothing. */
static void test_write_never_evicts_own_key_ttl(void **state)
{
    store_t *s = *state;
    char v[3000];

    memset(v, 'a', sizeof(v));
    store_set(s, 0, "a", 1, v, 1000, T0 + 100000, 0);
    store_set(s, 0, "b", 1, v, 1000, T0 + 900000, 0);
    store_set(s, 0, "p", 1, v, 500, -1, 0);
    store_set_limit(s, store_used(s) + 100, STORE_VOLATILE_TTL);
    assert_int_equal(store_set(s, 0, "a", 1, v, 1100, -1, STORE_SET_KEEPTTL), 0);     /* fits */
    assert_int_equal(store_stats(s)->evicted_keys, 0);
    assert_int_equal(store_set(s, 0, "a", 1, v, 1500, -1, STORE_SET_KEEPTTL), 0);     /* evicts b */
    assert_int_equal(store_stats(s)->evicted_keys, 1);
    assert_null(peek(s, 0, "b"));
    assert_int_equal(store_entry_expire(peek(s, 0, "a")), T0 + 100000);
    assert_int_equal(store_set(s, 0, "a", 1, v, 2500, -1, STORE_SET_KEEPTTL), STORE_OOM);
    assert_int_equal(store_stats(s)->evicted_keys, 1);
    store_entry_t *e = peek(s, 0, "a");
    size_t vlen;
    store_entry_value(e, &vlen);
    assert_int_equal(vlen, 1500);
    assert_int_equal(store_entry_expire(e), T0 + 100000);
    assert_non_null(peek(s, 0, "p"));
}

/* Every policy: a key written repeatedly while the store is full is never its own victim, whether it
 * is the oldest, least used, or drawn at random; the limit holds throughout. */
static void test_write_never_evicts_own_key_all_policies(void **state)
{
    static const store_policy_t policies[] = {
        STORE_ALLKEYS_LRU, STORE_ALLKEYS_LFU, STORE_ALLKEYS_RANDOM,
        STORE_VOLATILE_LRU, STORE_VOLATILE_LFU, STORE_VOLATILE_TTL, STORE_VOLATILE_RANDOM,
    };
    char v[500], k[32];

    (void)state;
    memset(v, 'x', sizeof(v));
    for (size_t p = 0; p < sizeof(policies) / sizeof(policies[0]); p++) {
        store_t *s = store_create(2);
        int grew_by_evicting = 0;
        store_set_limit(s, 20 * store_entry_cost(7, 200), policies[p]);
        for (int round = 0; round < 200; round++) {
            /* "target" has the shortest TTL and is never read: the best victim by LRU, LFU and TTL, so
             * other writes evict it often (then it is written anew), but its own writes never do */
            size_t len = 100 + (size_t)(round % 20) * 10;
            if (peek(s, 0, "target") == NULL)
                assert_int_equal(store_set(s, 0, "target", 6, v, 100, T0 + 1000, 0), 0);
            else                                                /* shrinks: always fits */
                assert_int_equal(store_set(s, 0, "target", 6, v, 100, -1, STORE_SET_KEEPTTL), 0);
            assert_int_equal(store_set(s, round % 2, KEY(k, "k", round), v, 200, T0 + 5000 + round, 0), 0);
            unsigned long long evicted = store_stats(s)->evicted_keys;
            assert_int_equal(store_set(s, 0, "target", 6, v, len + 150, -1, STORE_SET_KEEPTTL), 0);
            grew_by_evicting += store_stats(s)->evicted_keys > evicted;
            store_entry_t *e = peek(s, 0, "target");
            assert_non_null(e);
            assert_int_equal(store_entry_expire(e), T0 + 1000);
            assert_true(store_used(s) <= store_maxmemory(s));
        }
        assert_true(store_stats(s)->evicted_keys > 100);
        assert_true(grew_by_evicting > 10);
        store_destroy(s);
    }
}

/* MSET: charged the sum of the differences, all or nothing, duplicates counted conservatively. */
static void test_mset_accounting(void **state)
{
    store_t *s = *state;
    char v[2000];
    bytes_t keys[3], vals[3];

    memset(v, 'm', sizeof(v));
    store_set(s, 0, "a", 1, v, 1000, -1, 0);
    store_set(s, 0, "b", 1, v, 500, -1, 0);
    store_set_limit(s, store_used(s) + 10, STORE_NOEVICTION);
    size_t used = store_used(s);

    keys[0] = BYTES("a"), vals[0] = (bytes_t){ v, 500 };
    keys[1] = BYTES("b"), vals[1] = (bytes_t){ v, 1000 };               /* net 0 */
    assert_int_equal(store_mset(s, 0, keys, vals, 2, -1, NULL, 0), 1);
    assert_int_equal(store_used(s), used);
    keys[0] = BYTES("a"), vals[0] = (bytes_t){ v, 1 };
    keys[1] = BYTES("c"), vals[1] = (bytes_t){ v, 400 };                /* -499 + 449 */
    assert_int_equal(store_mset(s, 0, keys, vals, 2, -1, NULL, 0), 1);
    assert_int_equal(store_used(s), used - 50);
    keys[0] = BYTES("b"), vals[0] = (bytes_t){ v, 1 };
    keys[1] = BYTES("d"), vals[1] = (bytes_t){ v, 1100 };               /* -999 + 1149: 150 > 60 */
    assert_int_equal(store_mset(s, 0, keys, vals, 2, -1, NULL, 0), STORE_OOM);
    assert_int_equal(store_used(s), used - 50);
    assert_null(peek(s, 0, "d"));
    assert_int_equal(strlen(get_str(s, 0, "b")), 1000);
    /* the pins of a failed MSET are gone: the keys can be evicted again */
    store_set_limit(s, store_maxmemory(s), STORE_ALLKEYS_LRU);
    assert_int_equal(store_make_room(s, store_maxmemory(s)), 0);
    assert_int_equal(store_used(s), 0);
    /* a key given twice is charged both values */
    store_set_limit(s, 3 * store_entry_cost(1, 1000) - 1, STORE_NOEVICTION);
    keys[0] = BYTES("x"), vals[0] = (bytes_t){ v, 1000 };
    keys[1] = BYTES("y"), vals[1] = (bytes_t){ v, 1000 };
    keys[2] = BYTES("x"), vals[2] = (bytes_t){ v, 1000 };
    assert_int_equal(store_mset(s, 0, keys, vals, 3, -1, NULL, 0), STORE_OOM);
    assert_int_equal(store_mset(s, 0, keys, vals, 2, -1, NULL, 1), 1);
    assert_int_equal(store_mset(s, 0, keys + 1, vals + 1, 2, -1, NULL, 1), 0);  /* nx: y exists */
    assert_int_equal(store_dbsize(s, 0), 2);
}

/* An MSET that pins almost every key evicts the one left (sampling meets only pinned keys). */
static void test_mset_pins_most_keys(void **state)
{
    static const store_policy_t policies[] = { STORE_ALLKEYS_LRU, STORE_ALLKEYS_RANDOM, STORE_VOLATILE_TTL,
                                               STORE_VOLATILE_RANDOM };
    char k[64][32], v[100];
    bytes_t keys[64], vals[64];

    (void)state;
    memset(v, 'p', sizeof(v));
    for (size_t p = 0; p < sizeof(policies) / sizeof(policies[0]); p++) {
        store_t *s = store_create(1);
        for (int i = 0; i < 64; i++) {
            sprintf(k[i], "key:%05d", i);
            keys[i] = (bytes_t){ k[i], strlen(k[i]) };
            vals[i] = (bytes_t){ v, 50 };
            store_set(s, 0, k[i], strlen(k[i]), v, 50, T0 + 1000 + i, 0);
        }
        store_set(s, 0, "spare", 5, v, 100, T0 + 5000, 0);
        store_set_limit(s, store_used(s), policies[p]);
        for (int i = 0; i < 64; i++)
            vals[i].len = 51;                                   /* +64 bytes: "spare" must go */
        assert_int_equal(store_mset(s, 0, keys, vals, 64, T0 + 2000, NULL, 0), 1);
        assert_null(peek(s, 0, "spare"));
        assert_int_equal(store_dbsize(s, 0), 64);
        assert_int_equal(store_stats(s)->evicted_keys, 1);
        for (int i = 0; i < 64; i++)
            vals[i].len = 53;                                   /* nothing left to evict */
        assert_int_equal(store_mset(s, 0, keys, vals, 64, T0 + 2000, NULL, 0), STORE_OOM);
        assert_int_equal(store_dbsize(s, 0), 64);
        assert_true(store_used(s) <= store_maxmemory(s));
        store_destroy(s);
    }
}

/* RENAME to a longer new name is charged the difference (never evicting src); onto an existing key it
 * always fits. */
static void test_rename_accounting(void **state)
{
    store_t *s = *state;

    set_kv(s, 0, "src", "value", T0 + 1000);
    set_kv(s, 0, "dst", "other", -1);
    store_set_limit(s, store_used(s), STORE_VOLATILE_TTL);
    assert_int_equal(store_rename(s, 0, "src", 3, "longer", 6, 0), STORE_OOM);
    assert_string_equal(get_str(s, 0, "src"), "value");
    assert_int_equal(store_rename(s, 0, "src", 3, "dst", 3, 0), 1);
    assert_int_equal(store_rename(s, 0, "dst", 3, "longer", 6, 0), 1);  /* room freed by dst's old value */
    assert_int_equal(store_entry_expire(peek(s, 0, "longer")), T0 + 1000);
    assert_int_equal(store_stats(s)->evicted_keys, 0);
    store_set_limit(s, store_used(s), STORE_ALLKEYS_LRU);
    set_kv(s, 0, "x", "", -1);                                            /* evicts "longer" */
    assert_null(peek(s, 0, "longer"));
    /* x alone, and 10 bytes free: a name 17 bytes longer would need x itself evicted */
    assert_int_equal(store_rename(s, 0, "x", 1, "a much longer name", 18, 0), STORE_OOM);
    assert_non_null(peek(s, 0, "x"));
    assert_int_equal(store_rename(s, 0, "x", 1, "a longer", 8, 0), 1);
}

/* Lowering the limit evicts nothing until store_make_room(s, 0), which evicts down to it. */
static void test_make_room_zero_after_lowering(void **state)
{
    store_t *s = *state;

    fill(s, "k", 100, 10, -1);
    size_t used = store_used(s);
    store_set_limit(s, used, STORE_NOEVICTION);
    assert_int_equal(store_make_room(s, 0), 0);
    store_set_limit(s, used / 2, STORE_NOEVICTION);
    assert_int_equal(store_make_room(s, 0), -1);
    assert_int_equal(store_dbsize(s, 0), 100);
    store_set_limit(s, used / 2, STORE_ALLKEYS_RANDOM);
    assert_int_equal(store_make_room(s, 0), 0);
    assert_true(store_used(s) <= used / 2);
    assert_int_equal(store_stats(s)->evicted_keys, 100 - store_dbsize(s, 0));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

/* ---- the "key modified" signal and the WATCH registry ------------------------------------------- */

typedef struct notified {
    int n;
    int db[64];
    char key[64][16];
} notified_t;

static void record_cb(void *ctx, int db, const char *key, size_t klen)
{
    notified_t *r = ctx;
    assert_true(r->n < 64 && klen < 16);
    r->db[r->n] = db;
    memcpy(r->key[r->n], key, klen);
    r->key[r->n][klen] = '\0';
    r->n++;
}

/* How many signals since the last call, and was key (in db) among them. */
static int signalled(notified_t *r, int db, const char *key)
{
    int found = 0;
    for (int i = 0; i < r->n; i++)
        if (r->db[i] == db && strcmp(r->key[i], key) == 0)
            found = 1;
    r->n = 0;
    return found;
}

static void test_notify_every_change(void **state)
{
    store_t *s = *state;
    notified_t r = { 0 };
    bytes_t keys[2] = { { "m1", 2 }, { "m2", 2 } }, vals[2] = { { "1", 1 }, { "2", 1 } };

    store_set_notify(s, record_cb, &r);
    set_kv(s, 3, "k", "v", -1);
    assert_true(signalled(&r, 3, "k"));
    set_kv(s, 3, "k", "v", -1);                     /* the same value is a write too */
    assert_true(signalled(&r, 3, "k"));
    assert_non_null(store_lookup(s, 3, "k", 1, 0)); /* reads say nothing */
    assert_int_equal(r.n, 0);
    assert_int_equal(store_set_expire(s, 3, "k", 1, -1), 1);    /* no expiry to remove: no change */
    assert_int_equal(r.n, 0);
    assert_int_equal(store_set_expire(s, 3, "k", 1, T0 + 5000), 1);
    assert_true(signalled(&r, 3, "k"));
    assert_int_equal(store_set_expire(s, 3, "k", 1, -1), 1);
    assert_true(signalled(&r, 3, "k"));
    assert_int_equal(store_rename(s, 3, "k", 1, "k", 1, 0), 1);  /* onto itself: nothing changes */
    assert_int_equal(r.n, 0);
    assert_int_equal(store_rename(s, 3, "k", 1, "j", 1, 0), 1);
    assert_true(signalled(&r, 3, "k"));
    set_kv(s, 3, "a", "1", -1);
    r.n = 0;
    assert_int_equal(store_rename(s, 3, "a", 1, "j", 1, 0), 1);
    int src = 0, dst = 0;
    for (int i = 0; i < r.n; i++) {
        src |= strcmp(r.key[i], "a") == 0;
        dst |= strcmp(r.key[i], "j") == 0;
    }
    assert_true(src && dst);
    r.n = 0;
    assert_int_equal(store_delete(s, 3, "nope", 4), 0);
    assert_int_equal(r.n, 0);
    assert_int_equal(store_delete(s, 3, "j", 1), 1);
    assert_true(signalled(&r, 3, "j"));
    assert_int_equal(store_mset(s, 5, keys, vals, 2, -1, NULL, 0), 1);
    assert_int_equal(r.n, 2);
    r.n = 0;
    assert_int_equal(store_mset(s, 5, keys, vals, 2, -1, NULL, 1), 0);     /* NX refused: nothing */
    assert_int_equal(r.n, 0);
    set_kv(s, 5, "m1", "v", T0 - 1);                /* a past expiry deletes */
    assert_true(signalled(&r, 5, "m1"));
    store_flush(s, -1);                             /* flushes give no per-key signal */
    assert_int_equal(r.n, 0);
    store_set_notify(s, NULL, NULL);
}

static void test_notify_expiry_and_eviction(void **state)
{
    store_t *s = *state;
    notified_t r = { 0 };

    store_set_notify(s, record_cb, &r);
    set_kv(s, 0, "lazy", "v", T0 + 10);
    set_kv(s, 0, "active", "v", T0 + 10);
    r.n = 0;
    clock_set_ms(T0 + 10);
    assert_null(store_lookup(s, 0, "lazy", 4, STORE_LOOKUP_NOTOUCH));
    assert_true(signalled(&r, 0, "lazy"));
    assert_int_equal(store_expire_cycle(s, 100000), 1);
    assert_true(signalled(&r, 0, "active"));
    clock_set_ms(T0);

    store_set_limit(s, store_entry_cost(1, 10) * 3, STORE_ALLKEYS_LRU);
    set_kv(s, 1, "a", "0123456789", -1);
    set_kv(s, 1, "b", "0123456789", -1);
    set_kv(s, 1, "c", "0123456789", -1);
    r.n = 0;
    set_kv(s, 1, "d", "0123456789", -1);            /* evicts one of a, b, c */
    assert_int_equal(r.n, 2);
    assert_string_equal(r.key[1], "d");
    assert_true(strcmp(r.key[0], "a") == 0 || strcmp(r.key[0], "b") == 0 || strcmp(r.key[0], "c") == 0);
    assert_null(store_peek(s, 1, r.key[0], 1));
    store_set_notify(s, NULL, NULL);
}

static void test_peek_has_no_side_effect(void **state)
{
    store_t *s = *state;

    set_kv(s, 0, "k", "v", T0 + 10);
    clock_set_ms(T0 + 20);
    const store_entry_t *e = store_peek(s, 0, "k", 1);
    assert_non_null(e);
    assert_true(store_entry_expired(e));
    assert_int_equal(store_dbsize(s, 0), 1);
    assert_int_equal(store_stats(s)->expired_keys, 0);
    assert_int_equal(store_stats(s)->keyspace_hits + store_stats(s)->keyspace_misses, 0);
    assert_null(store_peek(s, 0, "x", 1));
    clock_set_ms(T0);
}

static void touch_cb(void *ctx, int db, const char *key, size_t klen)
{
    watch_touch(ctx, db, key, klen);
}

static int exists_cb(void *priv, int db, const char *key, size_t klen)
{
    return store_peek(priv, db, key, klen) != NULL;
}

static void test_watch_registry(void **state)
{
    store_t *s = *state;
    watch_registry_t *wr = watch_registry_create(16);
    backend_watch_t *a = NULL, *b = NULL, *c = NULL;

    store_set_notify(s, touch_cb, wr);
    watch_add(wr, &a, 0, "k", 1);
    watch_add(wr, &a, 0, "k", 1);                   /* once per (db, key) */
    watch_add(wr, &a, 1, "k", 1);
    watch_add(wr, &b, 0, "k", 1);
    watch_add(wr, &c, 2, "x", 1);
    assert_int_equal(watch_registry_keys(wr), 3);
    assert_int_equal(watch_registry_links(wr), 4);
    assert_int_equal(watch_count(a), 2);

    set_kv(s, 3, "k", "v", -1);                     /* another db: nothing */
    assert_false(watch_dirty(a) || watch_dirty(b) || watch_dirty(c));
    set_kv(s, 1, "k", "v", -1);                     /* a's (1, k) */
    assert_true(watch_dirty(a));
    assert_false(watch_dirty(b));
    assert_int_equal(watch_count(a), 0);            /* a touched watcher is unwatched at once */
    assert_int_equal(watch_registry_keys(wr), 2);
    watch_add(wr, &a, 5, "z", 1);                   /* dirty: records nothing more */
    assert_int_equal(watch_count(a), 0);

    /* a flush touches the keys that exist, only */
    set_kv(s, 2, "other", "v", -1);
    watch_touch_db(wr, 2, exists_cb, s);
    assert_false(watch_dirty(c));
    set_kv(s, 0, "k", "v", -1);
    assert_true(watch_dirty(b));
    backend_unwatch(b);
    b = NULL;
    watch_add(wr, &b, 0, "k", 1);
    assert_false(watch_dirty(b));
    watch_touch_db(wr, 0, exists_cb, s);
    assert_true(watch_dirty(b));

    int db;
    size_t klen;
    assert_int_equal(watch_count(c), 1);
    assert_memory_equal(watch_key_at(c, 0, &db, &klen), "x", 1);
    assert_int_equal(db, 2);
    backend_unwatch(a);
    backend_unwatch(b);
    assert_int_equal(watch_registry_keys(wr), 1);
    /* destroyed with a watcher out (a client closing after the backend): c is emptied, freed later */
    store_set_notify(s, NULL, NULL);
    watch_registry_destroy(wr);
    assert_int_equal(watch_count(c), 0);
    backend_unwatch(c);
}

static void test_watch_many(void **state)
{
    store_t *s = *state;
    watch_registry_t *wr = watch_registry_create(1);
    backend_watch_t *w[40] = { NULL };
    char k[16];

    store_set_notify(s, touch_cb, wr);
    for (int i = 0; i < 2000; i++) {
        int n = snprintf(k, sizeof(k), "k%d", i);
        watch_add(wr, &w[0], 0, k, (size_t)n);
    }
    for (int j = 1; j < 40; j++) {
        watch_add(wr, &w[j], 0, "k7", 2);
        watch_add(wr, &w[j], 0, "hot", 3);
    }
    assert_int_equal(watch_registry_keys(wr), 2001);
    assert_int_equal(watch_registry_links(wr), 2000 + 39 * 2);
    set_kv(s, 0, "k7", "v", -1);
    for (int j = 0; j < 40; j++)
        assert_true(watch_dirty(w[j]));
    assert_int_equal(watch_registry_keys(wr), 0);
    assert_int_equal(watch_registry_links(wr), 0);
    for (int j = 0; j < 40; j++)
        backend_unwatch(w[j]);
    store_set_notify(s, NULL, NULL);
    watch_registry_destroy(wr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_set_get_delete),
        T(test_binary_keys_and_values),
        T(test_set_from_own_value),
        T(test_entry_cost_formula),
        T(test_used_accounting),
        T(test_flush),
        T(test_lazy_expiry),
        T(test_set_with_past_expiry),
        T(test_keepttl),
        T(test_set_expire),
        T(test_rename),
        T(test_stats),
        T(test_expire_cycle_all),
        T(test_expire_cycle_sparse),
        T(test_expire_cycle_budget),
        T(test_scan_skips_and_reclaims_expired),
        T(test_scan_across_resizes),
        T(test_random),
        T(test_no_limit),
        T(test_noeviction),
        T(test_needed_beyond_limit),
        T(test_allkeys_lru),
        T(test_lru_order_small),
        T(test_allkeys_lfu),
        T(test_lfu_decay),
        T(test_volatile_lru),
        T(test_volatile_lfu),
        T(test_volatile_ttl),
        T(test_volatile_ttl_many),
        T(test_allkeys_random),
        T(test_volatile_random),
        T(test_evict_prefers_expired),
        T(test_limit_holds_all_policies),
        T(test_pool_survives_changes),
        T(test_overwrite_charged_difference),
        T(test_write_never_evicts_own_key_ttl),
        T(test_write_never_evicts_own_key_all_policies),
        T(test_mset_accounting),
        T(test_mset_pins_most_keys),
        T(test_rename_accounting),
        T(test_make_room_zero_after_lowering),
        T(test_notify_every_change),
        T(test_notify_expiry_and_eviction),
        T(test_peek_has_no_side_effect),
        T(test_watch_registry),
        T(test_watch_many),
    };
    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
