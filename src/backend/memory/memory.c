/*
 * memory://: the backend that keeps values in cachetoryd's own memory (store/), bounded by maxmemory.
 *
 * Every op completes before memory_submit() returns, within one turn of the loop, which is what makes
 * multi-key ops and BE_UPDATE atomic and isolated here. Results point into the store where they can
 * (valid until the store next changes, which is after the callback), and into a scratch buffer when the
 * op itself removes or rewrites what it returns (GETDEL, GETEX, SET ... GET).
 */
#include "backend/backend.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "backend/memory/store.h"
#include "backend/memory/watch.h"
#include "util/glob.h"
#include "util/clock.h"
#include "util/mem.h"

typedef struct memory_backend {
    backend_t base;
    store_t *store;
    int hz;                     /* cron calls a second, for the expiry budget */
    int ndb;                    /* databases */
    bytes_t *vec;               /* result arrays (MGET, KEYS, SCAN), reused */
    size_t vec_cap;
    buf_t scratch;              /* values that must outlive the entry they came from */
    watch_registry_t *watches;  /* WATCHed keys, told of every change by the store */
} memory_backend_t;

static bytes_t *memory_vec(memory_backend_t *m, size_t n)
{
    if (n > m->vec_cap) {
        size_t cap = m->vec_cap ? m->vec_cap : 16;
        while (cap < n)
            cap *= 2;
        m->vec = mem_realloc(m->vec, cap * sizeof(*m->vec));
        m->vec_cap = cap;
    }
    return m->vec;
}

/* Copy a value into the scratch buffer, so it survives a change of the entry it lives in. */
static bytes_t memory_keep(memory_backend_t *m, const char *p, size_t n)
{
    buf_reset(&m->scratch);
    buf_append(&m->scratch, p, n);
    return (bytes_t){ m->scratch.data ? m->scratch.data : "", n };
}

/* The store's answer to a write that does not fit under maxmemory even after evicting: redis's error. */
static void memory_oom(backend_result_t *res)
{
    res->status = BE_ERR;
    res->err = "OOM command not allowed when used memory > 'maxmemory'.";
}

static int memory_expired(long long at)
{
    return at >= 0 && at <= clock_ms();
}

/* The op's check of the value it is about to return and change; on failure the op stops here. */
static int memory_check(const backend_op_t *op, const bytes_t *old, backend_result_t *res)
{
    if (op->check == NULL || op->check(op->check_arg, old, &res->err) == 0)
        return 0;
    res->status = BE_ERR;
    res->has_value = 0;
    return -1;
}

static void memory_get(memory_backend_t *m, const backend_op_t *op, backend_result_t *res)
{
    store_entry_t *e = store_lookup(m->store, op->db, op->key.ptr, op->key.len, 0);
    size_t vlen;

    if (e == NULL) {
        res->status = BE_NIL;
        return;
    }
    const char *v = store_entry_value(e, &vlen);
    res->has_value = 1;
    if (!(op->flags & (BE_GETDEL | BE_SETTTL))) {
        res->value = (bytes_t){ v, vlen };
        return;
    }
    res->value = memory_keep(m, v, vlen);
    if (memory_check(op, &res->value, res) < 0)
        return;
    if (op->flags & BE_GETDEL)
        store_delete(m->store, op->db, op->key.ptr, op->key.len);
    else if (memory_expired(op->expire_at))
        store_delete(m->store, op->db, op->key.ptr, op->key.len);
    else
        store_set_expire(m->store, op->db, op->key.ptr, op->key.len, op->expire_at);
}

static void memory_set(memory_backend_t *m, const backend_op_t *op, backend_result_t *res)
{
    /* a plain SET needs no lookup of its own: store_set finds the key once */
    store_entry_t *e = NULL;
    if (op->flags & (BE_GETOLD | BE_NX | BE_XX))
        e = store_lookup(m->store, op->db, op->key.ptr, op->key.len,
                         (op->flags & BE_GETOLD) ? 0 : STORE_LOOKUP_NOTOUCH | STORE_LOOKUP_NOSTATS);

    if (e != NULL && (op->flags & BE_GETOLD)) {
        size_t vlen;
        const char *v = store_entry_value(e, &vlen);
        res->value = memory_keep(m, v, vlen);
        res->has_value = 1;
        if (memory_check(op, &res->value, res) < 0)
            return;
    }
    if ((op->flags & BE_NX && e != NULL) || (op->flags & BE_XX && e == NULL)) {
        res->status = BE_NIL;
        return;
    }
    /* KEEPTTL: an existing key keeps its expiry; a new one gets expire_at only with BE_NEWTTL. Charged
     * the difference from the value replaced; an absolute time already past deletes the key (as redis
     * does) and needs no room. */
    long long at = (op->flags & BE_KEEPTTL) && !(op->flags & BE_NEWTTL) ? -1 : op->expire_at;
    if (store_set(m->store, op->db, op->key.ptr, op->key.len, op->value.ptr, op->value.len, at,
                  (op->flags & BE_KEEPTTL) ? STORE_SET_KEEPTTL : 0) == STORE_OOM)
        memory_oom(res);
}

/* MSET / MSETNX: all or nothing, charged the sum of the differences. */
static void memory_mset(memory_backend_t *m, const backend_op_t *op, backend_result_t *res)
{
    long long *ats = NULL;
    if (op->ttls_ms != NULL) {      /* each key its own expiry: ms from now, to this host's clock */
        long long now = clock_ms();
        ats = mem_alloc((op->nkeys ? op->nkeys : 1) * sizeof(*ats));
        for (size_t i = 0; i < op->nkeys; i++)
            ats[i] = op->ttls_ms[i] >= 0 ? now + op->ttls_ms[i] : -1;
    }
    int rc = store_mset(m->store, op->db, op->keys, op->vals, op->nkeys, op->expire_at, ats,
                        (op->flags & BE_NX) != 0);
    mem_free(ats);

    if (rc == STORE_OOM)
        memory_oom(res);
    else
        res->integer = rc;
}

static void memory_mget(memory_backend_t *m, const backend_op_t *op, backend_result_t *res)
{
    bytes_t *v = memory_vec(m, op->nkeys);

    for (size_t i = 0; i < op->nkeys; i++) {
        store_entry_t *e = store_lookup(m->store, op->db, op->keys[i].ptr, op->keys[i].len, 0);
        if (e == NULL) {
            v[i] = (bytes_t){ NULL, 0 };
            continue;
        }
        v[i].ptr = store_entry_value(e, &v[i].len);
    }
    res->values = v;
    res->nvalues = op->nkeys;
}

static void memory_count(memory_backend_t *m, const backend_op_t *op, backend_result_t *res)
{
    long long n = 0;
    for (size_t i = 0; i < op->nkeys; i++) {
        const bytes_t *k = &op->keys[i];
        if (op->code == BE_DEL)
            n += store_delete(m->store, op->db, k->ptr, k->len);
        else
            n += store_lookup(m->store, op->db, k->ptr, k->len,
                              op->code == BE_TOUCH ? 0 : STORE_LOOKUP_NOTOUCH) != NULL;
    }
    res->integer = n;
}

/* EXPIRE family and PERSIST, with redis 7's NX / XX / GT / LT: a key without an expiry counts as an
 * infinite TTL for GT and LT. */
static void memory_expire(memory_backend_t *m, const backend_op_t *op, backend_result_t *res)
{
    store_entry_t *e = store_lookup(m->store, op->db, op->key.ptr, op->key.len, STORE_LOOKUP_NOTOUCH | STORE_LOOKUP_NOSTATS);
    unsigned f = op->flags;

    res->integer = 0;
    if (e == NULL)
        return;
    long long cur = store_entry_expire(e);
    long long at = op->expire_at;
    if (at < 0) {                                   /* PERSIST */
        if (cur >= 0)
            res->integer = store_set_expire(m->store, op->db, op->key.ptr, op->key.len, -1);
        return;
    }
    if ((f & BE_NX && cur >= 0) || (f & BE_XX && cur < 0))
        return;
    if ((f & BE_GT) && (cur < 0 || at <= cur))
        return;
    if ((f & BE_LT) && cur >= 0 && at >= cur)
        return;
    if (memory_expired(at))
        res->integer = store_delete(m->store, op->db, op->key.ptr, op->key.len);
    else
        res->integer = store_set_expire(m->store, op->db, op->key.ptr, op->key.len, at);
}

typedef struct memory_collect {
    memory_backend_t *m;
    const backend_op_t *op;
    size_t n;
} memory_collect_t;

static void memory_collect_cb(void *priv, const store_entry_t *e)
{
    memory_collect_t *c = priv;
    const backend_op_t *op = c->op;
    size_t klen;
    const char *k = store_entry_key(e, &klen);

    if (op->pattern.ptr != NULL && !glob_match(op->pattern.ptr, op->pattern.len, k, klen, 0))
        return;
    if ((op->flags & BE_TYPEFILTER) && !op->type_string)
        return;                                     /* every key here is a string */
    bytes_t *v = memory_vec(c->m, c->n + 1);
    v[c->n++] = (bytes_t){ k, klen };
}

static void memory_keys(memory_backend_t *m, const backend_op_t *op, backend_result_t *res)
{
    memory_collect_t c = { m, op, 0 };

    if (op->code == BE_KEYS) {
        uint64_t cur = 0;
        do
            cur = store_scan(m->store, op->db, cur, 1024, memory_collect_cb, &c);
        while (cur != 0);
    } else {
        res->cursor = store_scan(m->store, op->db, op->cursor, op->count ? op->count : 10,
                                 memory_collect_cb, &c);
    }
    res->values = m->vec;
    res->nvalues = c.n;
}

static void memory_update(memory_backend_t *m, const backend_op_t *op, backend_result_t *res)
{
    store_entry_t *e = store_lookup(m->store, op->db, op->key.ptr, op->key.len, 0);
    bytes_t old;
    buf_t *nv = &m->scratch;

    if (e != NULL)
        old.ptr = store_entry_value(e, &old.len);
    buf_reset(nv);
    int rc = op->update(op->update_arg, e ? &old : NULL, nv, res);
    if (rc < 0) {
        res->status = BE_ERR;
        return;
    }
    if (rc > 0)
        return;
    /* an existing key keeps its expiry; a key created here gets expire_at with BE_NEWTTL (default-ttl) */
    if (store_set(m->store, op->db, op->key.ptr, op->key.len, nv->data ? nv->data : "", nv->len,
                  (op->flags & BE_NEWTTL) ? op->expire_at : -1, STORE_SET_KEEPTTL) == STORE_OOM)
        memory_oom(res);
}

/* Is key in db stored, expired or not (what a flush touches, as redis's touchAllWatchedKeysInDb)? */
static int memory_exists_cb(void *priv, int db, const char *key, size_t klen)
{
    return store_peek(priv, db, key, klen) != NULL;
}

/* FLUSHDB (db) / FLUSHALL (-1): the watchers of keys that are there go dirty first, then the store is
 * emptied (which gives no signal per key). */
static void memory_flush(memory_backend_t *m, int db)
{
    for (int i = db < 0 ? 0 : db; i < (db < 0 ? m->ndb : db + 1); i++)
        watch_touch_db(m->watches, i, memory_exists_cb, m->store);
    store_flush(m->store, db);
}

static void memory_submit(backend_t *b, const backend_op_t *op, backend_cb *cb, void *ctx)
{
    memory_backend_t *m = (memory_backend_t *)b;
    backend_result_t res = { .status = BE_OK };

    switch (op->code) {
    case BE_GET:
        memory_get(m, op, &res);
        break;
    case BE_SET:
        memory_set(m, op, &res);
        break;
    case BE_MGET:
        memory_mget(m, op, &res);
        break;
    case BE_MSET:
        memory_mset(m, op, &res);
        break;
    case BE_DEL:
    case BE_EXISTS:
    case BE_TOUCH:
        memory_count(m, op, &res);
        break;
    case BE_TYPE:
        res.integer = store_lookup(m->store, op->db, op->key.ptr, op->key.len, STORE_LOOKUP_NOTOUCH) != NULL;
        break;
    case BE_EXPIRE:
        memory_expire(m, op, &res);
        break;
    case BE_TTL: {
        store_entry_t *e = store_lookup(m->store, op->db, op->key.ptr, op->key.len, STORE_LOOKUP_NOTOUCH);
        res.integer = e ? store_entry_expire(e) : -2;
        if (res.integer >= 0 && (op->flags & BE_REL))
            res.integer = res.integer > clock_ms() ? res.integer - clock_ms() : 0;
        break;
    }
    case BE_KEYS:
    case BE_SCAN:
        memory_keys(m, op, &res);
        break;
    case BE_RANDOMKEY: {
        store_entry_t *e = store_random(m->store, op->db);
        if (e == NULL) {
            res.status = BE_NIL;
            break;
        }
        res.value.ptr = store_entry_key(e, &res.value.len);
        res.has_value = 1;
        break;
    }
    case BE_RENAME: {
        if (op->key.len == op->key2.len && memcmp(op->key.ptr, op->key2.ptr, op->key.len) == 0) {
            /* redis: renaming a key onto itself is OK (RENAMENX: 0) if it exists */
            if (store_lookup(m->store, op->db, op->key.ptr, op->key.len, STORE_LOOKUP_NOTOUCH | STORE_LOOKUP_NOSTATS) == NULL) {
                res.status = BE_ERR;
                res.err = "ERR no such key";
            }
            break;
        }
        int rc = store_rename(m->store, op->db, op->key.ptr, op->key.len, op->key2.ptr, op->key2.len,
                              (op->flags & BE_NX) != 0);
        if (rc == STORE_OOM) {
            memory_oom(&res);
        } else if (rc < 0) {
            res.status = BE_ERR;
            res.err = "ERR no such key";
        }
        res.integer = rc > 0;
        break;
    }
    case BE_DBSIZE:
        res.integer = (long long)store_dbsize(m->store, op->db);
        break;
    case BE_FLUSH:
        memory_flush(m, (op->flags & BE_ALLDB) ? -1 : op->db);
        break;
    case BE_UPDATE:
        memory_update(m, op, &res);
        break;
    case BE_SELECT:             /* every database below `databases` exists (the command checked) */
        break;
    case BE_COMMAND:
    case BE_INFO:
        res.status = BE_ERR;
        res.err = "ERR this command needs an upstream backend (redis://)";
        break;
    }
    cb(ctx, &res);
}

static void memory_info(backend_t *b, const char *section, buf_t *out)
{
    memory_backend_t *m = (memory_backend_t *)b;
    const store_stats_t *st = store_stats(m->store);

    if (strcmp(section, "stats") == 0) {
        buf_printf(out, "expired_keys:%llu\r\nevicted_keys:%llu\r\nkeyspace_hits:%llu\r\nkeyspace_misses:%llu\r\n",
                   st->expired_keys, st->evicted_keys, st->keyspace_hits, st->keyspace_misses);
    } else if (strcmp(section, "memory") == 0) {
        buf_printf(out, "used_memory_dataset:%zu\r\nmaxmemory:%zu\r\nmaxmemory_policy:%s\r\n",
                   store_used(m->store), store_maxmemory(m->store), store_policy_name(store_policy(m->store)));
    } else if (strcmp(section, "keyspace") == 0) {
        for (int db = 0; db < m->ndb; db++) {
            size_t keys = store_dbsize(m->store, db);
            if (keys > 0)
                buf_printf(out, "db%d:keys=%zu,expires=%zu,avg_ttl=0\r\n", db, keys, store_expires(m->store, db));
        }
    }
}

static void memory_cron(backend_t *b)
{
    memory_backend_t *m = (memory_backend_t *)b;
    /* redis's budget: a quarter of each cron period at most. */
    store_expire_cycle(m->store, 1000000LL / m->hz / 4);
}

/* Over the limit even after evicting (only possible once the limit was lowered: writes never go over). */
static int memory_over_limit(backend_t *b)
{
    return store_make_room(((memory_backend_t *)b)->store, 0) < 0;
}

/* A reload: maxmemory and its policy take effect (evicting, if need be, as writes come). */
static void memory_reconfigure(backend_t *b, const config_t *cfg)
{
    store_set_limit(((memory_backend_t *)b)->store, (size_t)cfg->maxmemory, (store_policy_t)cfg->maxmemory_policy);
}

static void memory_stats(backend_t *b, backend_stats_t *st, size_t *db_keys, int ndb)
{
    memory_backend_t *m = (memory_backend_t *)b;
    const store_stats_t *ss = store_stats(m->store);

    st->local = 1;
    st->used_memory = store_used(m->store);
    st->maxmemory = store_maxmemory(m->store);
    st->expired_keys = ss->expired_keys;
    st->evicted_keys = ss->evicted_keys;
    st->keyspace_hits = ss->keyspace_hits;
    st->keyspace_misses = ss->keyspace_misses;
    for (int db = 0; db_keys != NULL && db < ndb && db < m->ndb; db++)
        db_keys[db] = store_dbsize(m->store, db);
}

static void memory_stats_reset(backend_t *b)
{
    store_stats_reset(((memory_backend_t *)b)->store);
}

/* The store's "key modified" signal, for WATCH. */
static void memory_modified_cb(void *ctx, int db, const char *key, size_t klen)
{
    watch_touch(ctx, db, key, klen);
}

/*
 * WATCH key: a key that is stored but already expired is reclaimed first (a lookup), before it is watched,
 * so that its deletion touches no one and no watched key starts out expired. Redis 7.0 keeps such a key
 * and flags the watch instead; either way the key counts as absent, and only writing it, not its
 * reclaiming, fails the EXEC.
 */
static void memory_watch(backend_t *b, backend_watch_t **w, int db, bytes_t key)
{
    memory_backend_t *m = (memory_backend_t *)b;

    (void)store_lookup(m->store, db, key.ptr, key.len, STORE_LOOKUP_NOTOUCH | STORE_LOOKUP_NOSTATS);
    watch_add(m->watches, w, db, key.ptr, key.len);
}

/* Touched since WATCH, or expired since (redis 7.0's isWatchedKeyExpired: a key whose TTL passed fails the
 * EXEC even if nothing reclaimed it yet); looked at without changing anything. */
static int memory_watch_touched(backend_t *b, backend_watch_t *w)
{
    memory_backend_t *m = (memory_backend_t *)b;

    if (watch_dirty(w))
        return 1;
    for (size_t i = 0; i < watch_count(w); i++) {
        int db;
        size_t klen;
        const char *key = watch_key_at(w, i, &db, &klen);
        const store_entry_t *e = store_peek(m->store, db, key, klen);
        if (e != NULL && store_entry_expired(e))
            return 1;
    }
    return 0;
}

static void memory_destroy(backend_t *b)
{
    memory_backend_t *m = (memory_backend_t *)b;
    store_set_notify(m->store, NULL, NULL);
    watch_registry_destroy(m->watches);
    store_destroy(m->store);
    mem_free(m->vec);
    buf_deinit(&m->scratch);
    mem_free(m);
}

static const backend_vtable_t memory_vtable = {
    .scheme = "memory",
    .submit = memory_submit,
    .info = memory_info,
    .cron = memory_cron,
    .over_limit = memory_over_limit,
    .destroy = memory_destroy,
    .reconfigure = memory_reconfigure,
    .stats = memory_stats,
    .stats_reset = memory_stats_reset,
    .watch = memory_watch,
    .watch_touched = memory_watch_touched,
};

backend_t *backend_memory_create(const config_t *cfg)
{
    memory_backend_t *m = mem_calloc(1, sizeof(*m));
    m->base.vt = &memory_vtable;
    m->store = store_create(cfg->databases);
    store_set_limit(m->store, (size_t)cfg->maxmemory, (store_policy_t)cfg->maxmemory_policy);
    m->hz = cfg->hz > 0 ? cfg->hz : 10;
    m->ndb = cfg->databases;
    m->watches = watch_registry_create(cfg->databases);
    store_set_notify(m->store, memory_modified_cb, m->watches);
    buf_init(&m->scratch);
    return &m->base;
}
