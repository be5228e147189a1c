/*
 * cache/cache_dict: the life of zstd dictionaries around the codec chains — starting a training when a
 * chain's sample says so, storing what it made where other daemons and later runs find it, and fetching
 * the dictionaries stored values name that this daemon does not have yet.
 *
 * Where dictionaries live:
 *   - an upstream Redis: under <dictionary-key-prefix><id> (default "cachetoryd:zstd-dict:"), in the
 *     backend's default database, as the dictionary's bytes (`redis-cli --raw GET` gives a file for
 *     `zstd -D`). A trained dictionary is stored with SET NX before any value uses it: every daemon in
 *     front of that Redis can then read every value. If the key exists already with other bytes (an ID
 *     collision, or a key someone else wrote), the dictionary is not used.
 *   - memory://: in memory, and in dictionary-dir (if set) as <cache>-<id>.dict, so that a restart
 *     reuses the newest one instead of training again.
 * A value naming an ID the chain does not have makes its reader wait for one GET of that key (one per ID
 * at a time, however many readers wait); what comes back is checked (a zstd dictionary, with that ID)
 * before it is added. An ID that could not be fetched is not asked for again for 10 s: meanwhile such
 * values read as stored (mixed mode) or as an error (strict). Reads inside MULTI/EXEC and
 * read-modify-writes cannot wait: they start the fetch and answer at once (a read-modify-write refuses,
 * rather than modify bytes it cannot decode).
 *
 * A chain can be replaced by a reload while a training or a fetch is under way: completions check that
 * the chain is still one of the cache's (cache_chain_live) before touching it.
 */
#include "cache/cache_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"
#include "util/mem.h"

#define DICT_FETCHES_MAX 16         /* IDs being fetched at once; past that, readers do not wait */
#define DICT_MISSES 16              /* IDs remembered as not fetchable */
#define DICT_MISS_MS 10000          /* ... for this long */

/* A reader waiting for the dictionaries its values name: resumed when the last of them has come (or
 * could not be had). */
typedef struct dict_group {
    int pending;                /* fetches still out, plus one while cache_dict_wait adds them */
    void (*resume)(void *arg);
    void *arg;
} dict_group_t;

typedef struct dict_waiter {
    struct dict_waiter *next;
    dict_group_t *group;
} dict_waiter_t;

typedef struct dict_fetch {
    struct dict_fetch *next;
    cache_dict_t *dd;
    chain_t *ch;
    unsigned id;
    dict_waiter_t *waiters;
    char key[96];
} dict_fetch_t;

/* A training (automatic, or CACHE DICT TRAIN / LOAD) on its way: on the thread pool, then being stored. */
typedef struct dict_train {
    uv_work_t work;
    cache_dict_t *dd;
    chain_t *ch;
    codec_zstd_training_t *t;   /* NULL for LOAD */
    buf_t dict;                 /* LOAD: the dictionary given */
    unsigned id;
    double ratio;
    backend_cb *cb;             /* CACHE DICT TRAIN / LOAD: the reply; NULL for an automatic training */
    void *ctx;
    char key[96];
} dict_train_t;

struct cache_dict {
    cache_t *cache;
    char *prefix;               /* dictionary-key-prefix */
    char *dir;                  /* dictionary-dir, or NULL */
    dict_fetch_t *fetches;
    int nfetches;
    struct { unsigned id; uint64_t until; } miss[DICT_MISSES];
    int nmiss_next;
    unsigned long long fetched, fetch_failures, stored, store_failures;
};

cache_dict_t *cache_dict_create(cache_t *c)
{
    cache_dict_t *dd = mem_calloc(1, sizeof(*dd));
    dd->cache = c;
    dd->prefix = mem_strdup("cachetoryd:zstd-dict:");
    return dd;
}

void cache_dict_destroy(cache_dict_t *dd)
{
    if (dd == NULL)
        return;
    /* fetches still out belong to the backend, which is gone by now and has answered them */
    mem_free(dd->prefix);
    mem_free(dd->dir);
    mem_free(dd);
}

static int dict_upstream(const cache_dict_t *dd)
{
    return backend_forwards(cache_backend(dd->cache));
}

/* The name of the cache ch belongs to, for the log and dictionary-dir's files. */
static const char *dict_name(const cache_dict_t *dd, const chain_t *ch)
{
    const char *name = cache_chain_name(dd->cache, ch);
    return name != NULL ? name : cache_name(dd->cache);
}

static void dict_key(const cache_dict_t *dd, unsigned id, char *key, size_t len)
{
    snprintf(key, len, "%s%u", dd->prefix, id);
}

/* ---- dictionary-dir -------------------------------------------------------------------------------- */

/* Write the dictionary to dir/<cache>-<id>.dict (through a temporary file and a rename: a crash leaves
 * either the whole file or none). 0, or -1 with errno. */
static int dict_dir_write(const cache_dict_t *dd, const char *name, unsigned id, const char *bytes, size_t len)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof(path), "%s/%s-%u.dict", dd->dir, name, id);
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (f == NULL)
        return -1;
    int ok = fwrite(bytes, 1, len, f) == len;
    ok = fflush(f) == 0 && ok;
    ok = fsync(fileno(f)) == 0 && ok;
    int e = errno;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) < 0) {
        e = errno ? errno : e;
        unlink(tmp);
        errno = e;
        return -1;
    }
    return 0;
}

/* Load dir's dictionaries of this cache into the chain; the newest file's (to the nanosecond: two
 * trainings may land within one second) becomes the one new values use. A file that is not a dictionary
 * is logged and skipped. */
static void dict_dir_load(cache_dict_t *dd, chain_t *ch, const char *name)
{
    codec_dicts_t *ds = chain_dicts_mut(ch);
    char want[128];
    DIR *d = opendir(dd->dir);

    if (d == NULL) {
        log_warn("dictionary-dir '%s': %s: trained dictionaries will not be kept across restarts", dd->dir,
                 strerror(errno));
        return;
    }
    snprintf(want, sizeof(want), "%s-", name);
    struct dirent *e;
    struct timespec newest = { 0, 0 };
    unsigned newest_id = 0;
    int n = 0;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        size_t w = strlen(want);
        /* <name>-<digits>.dict exactly: the files of cache "a" are not those of cache "a-b" */
        if (strncmp(e->d_name, want, w) != 0 || l < w + 6 || strcmp(e->d_name + l - 5, ".dict") != 0 ||
            strspn(e->d_name + w, "0123456789") != l - w - 5)
            continue;
        char path[4096], err[512];
        struct stat st;
        unsigned id;
        snprintf(path, sizeof(path), "%s/%s", dd->dir, e->d_name);
        if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        if (codec_zstd_dicts_add_file(ds, path, &id, err, sizeof(err)) < 0) {
            log_warn("%s: skipped", err);
            continue;
        }
        n++;
        if (st.st_mtim.tv_sec > newest.tv_sec ||
            (st.st_mtim.tv_sec == newest.tv_sec && st.st_mtim.tv_nsec >= newest.tv_nsec)) {
            newest = st.st_mtim;
            newest_id = id;
        }
    }
    closedir(d);
    if (newest_id != 0) {
        codec_zstd_dicts_use(ds, newest_id);
        log_notice("cache %s: %d zstd dictionaries from %s; new values use %u", name, n, dd->dir,
                   newest_id);
    }
}

void cache_dict_configure(cache_dict_t *dd, const char *prefix, const char *dir)
{
    mem_free(dd->prefix);
    dd->prefix = mem_strdup(prefix && *prefix ? prefix : "cachetoryd:zstd-dict:");
    mem_free(dd->dir);
    dd->dir = dir && *dir ? mem_strdup(dir) : NULL;
}

void cache_dict_chain_added(cache_dict_t *dd, chain_t *ch, const char *name)
{
    const codec_dicts_t *ds = chain_dicts(ch);
    codec_dict_stats_t st;
    codec_zstd_dicts_stats(ds, &st);
    if (ds != NULL && st.auto_train && dd->dir != NULL && !dict_upstream(dd))
        dict_dir_load(dd, ch, name);
}

/* ---- training ---------------------------------------------------------------------------------------- */

static void dict_train_free(dict_train_t *tr)
{
    codec_zstd_training_free(tr->t);
    buf_deinit(&tr->dict);
    mem_free(tr);
}

static void dict_train_reply(dict_train_t *tr, unsigned id, const char *err)
{
    if (tr->cb == NULL)
        return;
    backend_result_t res = { .status = err ? BE_ERR : BE_OK, .err = err, .integer = id };
    tr->cb(tr->ctx, &res);
}

/* The end of a training or LOAD: the dictionary (stored where it must be) goes into the chain and new
 * values use it, or nothing changes and err says why. */
static void dict_train_end(dict_train_t *tr, const char *err)
{
    cache_dict_t *dd = tr->dd;
    char why[CODEC_ERRLEN + 128];
    unsigned id = 0;

    if (!cache_chain_live(dd->cache, tr->ch)) {
        dict_train_reply(tr, 0, "ERR the serializer changed while the dictionary was being made: not used");
        dict_train_free(tr);
        return;
    }
    codec_dicts_t *ds = chain_dicts_mut(tr->ch);
    if (err == NULL) {
        int rc = codec_zstd_dicts_add(ds, tr->dict.data, tr->dict.len, &id, why, sizeof(why));
        if (rc < 0) {
            id = 0;
            char msg[CODEC_ERRLEN + 160];
            snprintf(msg, sizeof(msg), "ERR zstd dictionary: %s", why);
            log_warn("cache %s: %s", dict_name(dd, tr->ch), msg + 4);
            dict_train_reply(tr, 0, msg);
        } else {
            log_notice("cache %s: zstd dictionary %u (%zu bytes)%s; new values use it", dict_name(dd, tr->ch), id,
                       tr->dict.len, tr->t ? " trained" : " loaded");
            dict_train_reply(tr, id, NULL);
        }
    } else {
        dict_train_reply(tr, 0, err);
    }
    if (tr->t != NULL)
        codec_zstd_dicts_trained(ds, id, tr->ratio);
    else if (id != 0)
        codec_zstd_dicts_use(ds, id);
    dict_train_free(tr);
}

static void dict_store_get_cb(void *arg, const backend_result_t *res)
{
    dict_train_t *tr = arg;
    char msg[256];

    if (res->status == BE_OK && res->has_value && res->value.len == tr->dict.len &&
        memcmp(res->value.ptr, tr->dict.data, tr->dict.len) == 0) {
        dict_train_end(tr, NULL);       /* another daemon stored the same dictionary */
        return;
    }
    tr->dd->store_failures++;
    if (res->status == BE_ERR)
        snprintf(msg, sizeof(msg), "ERR zstd dictionary %u not stored upstream (%s): not used", tr->id, res->err);
    else
        snprintf(msg, sizeof(msg), "ERR zstd dictionary %u not used: the upstream key %s holds other bytes (an ID "
                 "collision, or a key written by something else)", tr->id, tr->key);
    log_warn("cache %s: %s", dict_name(tr->dd, tr->ch), msg + 4);
    dict_train_end(tr, msg);
}

static void dict_store_set_cb(void *arg, const backend_result_t *res)
{
    dict_train_t *tr = arg;
    char msg[256];

    if (res->status == BE_OK) {
        tr->dd->stored++;
        dict_train_end(tr, NULL);
        return;
    }
    if (res->status == BE_NIL) {
        /* the key exists: the same dictionary (fine) or other bytes under the same ID (refused) */
        backend_op_t op = { .code = BE_GET, .db = cache_backend(tr->dd->cache)->default_db,
                            .key = { tr->key, strlen(tr->key) }, .expire_at = -1 };
        backend_submit(cache_backend(tr->dd->cache), &op, dict_store_get_cb, tr);
        return;
    }
    tr->dd->store_failures++;
    snprintf(msg, sizeof(msg), "ERR zstd dictionary %u not stored upstream (%s): not used, values stay readable by "
             "every daemon", tr->id, res->err);
    log_warn("cache %s: %s", dict_name(tr->dd, tr->ch), msg + 4);
    dict_train_end(tr, msg);
}

/* Store tr->dict where it must be before a value uses it, then end. */
static void dict_store(dict_train_t *tr)
{
    cache_dict_t *dd = tr->dd;
    tr->id = codec_zstd_dict_id(tr->dict.data, tr->dict.len);
    if (dict_upstream(dd)) {
        dict_key(dd, tr->id, tr->key, sizeof(tr->key));
        backend_op_t op = { .code = BE_SET, .db = cache_backend(dd->cache)->default_db, .flags = BE_NX,
                            .key = { tr->key, strlen(tr->key) }, .value = { tr->dict.data, tr->dict.len },
                            .expire_at = -1 };
        backend_submit(cache_backend(dd->cache), &op, dict_store_set_cb, tr);
        return;
    }
    if (dd->dir != NULL && dict_dir_write(dd, dict_name(dd, tr->ch), tr->id, tr->dict.data, tr->dict.len) < 0) {
        dd->store_failures++;
        /* memory:// values die with the daemon: the dictionary is still usable, only not kept */
        log_warn("cache %s: zstd dictionary %u not written to dictionary-dir '%s' (%s): it will not survive a "
                 "restart", dict_name(dd, tr->ch), tr->id, dd->dir, strerror(errno));
    } else if (dd->dir != NULL) {
        dd->stored++;
    }
    dict_train_end(tr, NULL);
}

static void dict_train_work_cb(uv_work_t *w)
{
    dict_train_t *tr = w->data;
    cache_job_priority();
    codec_zstd_training_run(tr->t);
}

static void dict_train_after_cb(uv_work_t *w, int status)
{
    dict_train_t *tr = w->data;
    cache_dict_t *dd = tr->dd;
    const char *dict, *why;
    size_t len;
    double plain;
    char msg[CODEC_ERRLEN + 300];

    cache_jobs_add(dd->cache, -1);
    if (status < 0 || codec_zstd_training_result(tr->t, &dict, &len, &tr->ratio, &plain, &why) < 0) {
        snprintf(msg, sizeof(msg), "ERR no zstd dictionary: %s", status < 0 ? "the training was cancelled" : why);
        log_notice("cache %s: %s", dict_name(dd, tr->ch), msg + 4);
        dict_train_end(tr, msg);
        return;
    }
    log_notice("cache %s: zstd dictionary trained: ratio %.3f against %.3f for plain zstd on held-out values",
               dict_name(dd, tr->ch), tr->ratio, plain);
    buf_append(&tr->dict, dict, len);
    dict_store(tr);
}

static void dict_train_start(cache_dict_t *dd, chain_t *ch, size_t dict_size, backend_cb *cb, void *ctx)
{
    char err[256], msg[300];
    codec_zstd_training_t *t = codec_zstd_training_take(chain_dicts_mut(ch), dict_size, err, sizeof(err));
    if (t == NULL) {
        if (cb != NULL) {
            snprintf(msg, sizeof(msg), "ERR %s", err);
            backend_result_t res = { .status = BE_ERR, .err = msg };
            cb(ctx, &res);
        }
        return;
    }
    dict_train_t *tr = mem_calloc(1, sizeof(*tr));
    tr->work.data = tr;
    tr->dd = dd;
    tr->ch = ch;
    tr->t = t;
    tr->cb = cb;
    tr->ctx = ctx;
    buf_init(&tr->dict);
    cache_jobs_add(dd->cache, 1);
    uv_queue_work(cache_loop(dd->cache), &tr->work, dict_train_work_cb, dict_train_after_cb);
}

void cache_dict_after_encode(cache_dict_t *dd, chain_t *ch)
{
    if (codec_zstd_dicts_due(chain_dicts(ch)))
        dict_train_start(dd, ch, 0, NULL, NULL);
}

void cache_dict_train(cache_dict_t *dd, chain_t *ch, size_t dict_size, backend_cb *cb, void *ctx)
{
    codec_dict_stats_t st;
    codec_zstd_dicts_stats(chain_dicts(ch), &st);
    if (chain_dicts(ch) == NULL || !st.auto_train) {
        backend_result_t res = { .status = BE_ERR, .err = "ERR the serializer does not train dictionaries: use "
                                                          "zstd://?dictionary=auto" };
        cb(ctx, &res);
        return;
    }
    dict_train_start(dd, ch, dict_size, cb, ctx);
}

void cache_dict_load(cache_dict_t *dd, chain_t *ch, bytes_t bytes, backend_cb *cb, void *ctx)
{
    char why[256], msg[320];
    codec_dicts_t *probe;

    if (chain_dicts(ch) == NULL) {
        backend_result_t res = { .status = BE_ERR, .err = "ERR the serializer has no zstd dictionaries: use "
                                                          "zstd://?dictionary=auto (or =PATH)" };
        cb(ctx, &res);
        return;
    }
    /* check it whole before storing it anywhere: a set of its own takes it or says why not */
    probe = codec_zstd_dicts_create(3);
    unsigned id;
    int rc = codec_zstd_dicts_add(probe, bytes.ptr, bytes.len, &id, why, sizeof(why));
    codec_zstd_dicts_free(probe);
    if (rc < 0) {
        snprintf(msg, sizeof(msg), "ERR zstd dictionary: %s", why);
        backend_result_t res = { .status = BE_ERR, .err = msg };
        cb(ctx, &res);
        return;
    }
    dict_train_t *tr = mem_calloc(1, sizeof(*tr));
    tr->dd = dd;
    tr->ch = ch;
    tr->cb = cb;
    tr->ctx = ctx;
    buf_init(&tr->dict);
    buf_append(&tr->dict, bytes.ptr, bytes.len);
    dict_store(tr);
}

/* ---- fetching the dictionaries stored values name ---------------------------------------------------- */

static int dict_missed(cache_dict_t *dd, unsigned id)
{
    uint64_t now = uv_now(cache_loop(dd->cache));
    for (int i = 0; i < DICT_MISSES; i++)
        if (dd->miss[i].id == id && dd->miss[i].until > now)
            return 1;
    return 0;
}

static void dict_group_done(dict_group_t *g)
{
    if (--g->pending > 0)
        return;
    void (*resume)(void *) = g->resume;
    void *arg = g->arg;
    mem_free(g);
    resume(arg);
}

static void dict_fetch_cb(void *arg, const backend_result_t *res)
{
    dict_fetch_t *f = arg;
    cache_dict_t *dd = f->dd;
    char why[256];
    const char *fail = NULL;

    if (res->status == BE_ERR) {
        snprintf(why, sizeof(why), "%s", res->err);
        fail = why;
    } else if (!res->has_value) {
        fail = "no such key";
    } else if (codec_zstd_dict_id(res->value.ptr, res->value.len) != f->id) {
        fail = "not a zstd dictionary with that ID (truncated or replaced?)";
    } else if (cache_chain_live(dd->cache, f->ch)) {
        unsigned id;
        if (codec_zstd_dicts_add(chain_dicts_mut(f->ch), res->value.ptr, res->value.len, &id, why, sizeof(why)) < 0)
            fail = why;
    }
    if (fail != NULL) {
        dd->fetch_failures++;
        dd->miss[dd->nmiss_next].id = f->id;
        dd->miss[dd->nmiss_next].until = uv_now(cache_loop(dd->cache)) + DICT_MISS_MS;
        dd->nmiss_next = (dd->nmiss_next + 1) % DICT_MISSES;
        log_warn("cache %s: zstd dictionary %u from upstream key %s: %s; values that use it are not decoded",
                 dict_name(dd, f->ch), f->id, f->key, fail);
    } else {
        dd->fetched++;
        log_notice("cache %s: zstd dictionary %u fetched from upstream key %s", dict_name(dd, f->ch), f->id, f->key);
    }
    for (dict_fetch_t **p = &dd->fetches; *p != NULL; p = &(*p)->next)
        if (*p == f) {
            *p = f->next;
            break;
        }
    dd->nfetches--;
    while (f->waiters != NULL) {
        dict_waiter_t *w = f->waiters;
        f->waiters = w->next;
        dict_group_done(w->group);
        mem_free(w);
    }
    mem_free(f);
}

/* Fetch id for ch unless it is on its way or known missing; g (if not NULL) then waits for it too. 1 if
 * g waits, 0 if not (nothing to wait for). */
static int dict_fetch(cache_dict_t *dd, chain_t *ch, unsigned id, dict_group_t *g)
{
    dict_fetch_t *f;

    if (!dict_upstream(dd) || dict_missed(dd, id))
        return 0;
    for (f = dd->fetches; f != NULL; f = f->next)
        if (f->id == id && f->ch == ch)
            break;
    if (f == NULL) {
        if (dd->nfetches == DICT_FETCHES_MAX)
            return 0;
        f = mem_calloc(1, sizeof(*f));
        f->dd = dd;
        f->ch = ch;
        f->id = id;
        dict_key(dd, id, f->key, sizeof(f->key));
        f->next = dd->fetches;
        dd->fetches = f;
        dd->nfetches++;
        backend_op_t op = { .code = BE_GET, .db = cache_backend(dd->cache)->default_db,
                            .key = { f->key, strlen(f->key) }, .expire_at = -1 };
        backend_submit(cache_backend(dd->cache), &op, dict_fetch_cb, f);
        /* the backend may have answered at once (it failed): f is gone then */
        for (dict_fetch_t *h = dd->fetches; h != NULL; h = h->next)
            if (h == f)
                goto added;
        return 0;
    }
added:
    if (g == NULL)
        return 0;
    dict_waiter_t *w = mem_alloc(sizeof(*w));
    w->group = g;
    g->pending++;
    w->next = f->waiters;
    f->waiters = w;
    return 1;
}

int cache_dict_wait(cache_dict_t *dd, chain_t *const *chs, const bytes_t *vals, size_t n, int can_wait,
                    void (*resume)(void *), void *arg)
{
    dict_group_t *g = NULL;
    int waits = 0;

    if (can_wait) {
        g = mem_alloc(sizeof(*g));
        *g = (dict_group_t){ 1, resume, arg };
    }
    for (size_t i = 0; i < n; i++) {
        if (vals[i].ptr == NULL)
            continue;
        unsigned id = chain_missing_dict(chs[i], vals[i].ptr, vals[i].len);
        if (id != 0)
            waits |= dict_fetch(dd, chs[i], id, g);
    }
    if (g == NULL)
        return 0;
    if (!waits) {
        mem_free(g);
        return 0;
    }
    /* the fetches may all have ended by now (a backend that answers at once): the last one resumes */
    if (--g->pending == 0) {
        mem_free(g);
        return 0;
    }
    return 1;
}

void cache_dict_fetch_for(cache_dict_t *dd, chain_t *ch, bytes_t v)
{
    unsigned id = chain_missing_dict(ch, v.ptr, v.len);
    if (id != 0)
        dict_fetch(dd, ch, id, NULL);
}

void cache_dict_info(const cache_dict_t *dd, buf_t *out)
{
    buf_printf(out, "cache_zstd_dictionaries_fetched:%llu\r\ncache_zstd_dictionary_fetch_failures:%llu\r\n"
               "cache_zstd_dictionaries_stored:%llu\r\ncache_zstd_dictionary_store_failures:%llu\r\n",
               dd->fetched, dd->fetch_failures, dd->stored, dd->store_failures);
}

/* ---- the public face (cache.h) ------------------------------------------------------------------- */

void cache_set_dict_store(cache_t *c, const char *key_prefix, const char *dir)
{
    cache_dict_configure(cache_dict(c), key_prefix, dir);
    cache_profiles_dict_sync(c);
}

int cache_dict_command(cache_t *c, const char *name, int load, bytes_t bytes, size_t dict_size, backend_cb *cb,
                       void *ctx)
{
    chain_t *ch = cache_chain_named(c, name);
    if (ch == NULL)
        return -1;
    if (load)
        cache_dict_load(cache_dict(c), ch, bytes, cb, ctx);
    else
        cache_dict_train(cache_dict(c), ch, dict_size, cb, ctx);
    return 0;
}
