/*
 * The memory backend's WATCH registry (see watch.h for the contract).
 *
 * Layout. One dict per database of watch_key nodes (the key's bytes inline, one allocation), each with a
 * doubly linked list of links, one per watcher; a link also sits in its watcher's array (its index is
 * link->idx), so that removing it from either side is O(1). A watcher watches a (db, key) at most once:
 * before adding, the shorter of the key's list and the watcher's array is searched, so a client watching
 * thousands of keys, or thousands of clients watching one key, never cost a quadratic number of steps.
 */
#include "backend/memory/watch.h"

#include <string.h>

#include "backend/memory/dict.h"
#include "backend/memory/rng.h"
#include "util/check.h"
#include "util/mem.h"
#include "util/seed.h"

typedef struct watch_link watch_link_t;

typedef struct watch_key {
    dict_node_t node;           /* in the registry's dict of its db */
    watch_link_t *links;        /* its watchers, in no order */
    size_t nlinks;              /* entries in links */
    int db;                     /* its database */
    size_t klen;                /* key bytes at data[0] */
    char data[];
} watch_key_t;

typedef struct watcher watcher_t;

struct watch_link {
    watch_key_t *key;           /* what is watched */
    watcher_t *w;               /* by whom */
    watch_link_t *prev, *next;  /* in key->links */
    size_t idx;                 /* index in w->links */
};

/* A client's watched keys: backend_watch_t's header first, then the registry's part. */
struct watcher {
    backend_watch_t base;       /* release: watcher_release_cb */
    watch_registry_t *r;        /* the registry it belongs to (outlives the backend while w lives) */
    watch_link_t **links;       /* the keys this client watches */
    size_t n, cap;
    int dirty;                  /* a watched key was touched (links then empty) */
};

struct watch_registry {
    dict_t *dbs;                /* ndb dicts of watch_key_t */
    int ndb;
    int closed;                 /* destroyed while watchers were out: freed by the last one's release */
    size_t nwatchers;           /* watcher_t alive */
    size_t nkeys;               /* watch_key_t nodes, all dbs */
    size_t nlinks;              /* links, all keys */
    uint8_t seed[SIPHASH_KEY_LEN];
};

static inline watcher_t *watcher_of(backend_watch_t *w)
{
    return (watcher_t *)(void *)w;
}

static inline const watcher_t *watcher_of_const(const backend_watch_t *w)
{
    return (const watcher_t *)(const void *)w;
}

#define KEY_OF(n) ((watch_key_t *)(void *)((char *)(n) - offsetof(watch_key_t, node)))

static const void *watch_dict_key(const dict_node_t *n, size_t *len)
{
    const watch_key_t *k = KEY_OF(n);
    *len = k->klen;
    return k->data;
}

watch_registry_t *watch_registry_create(int ndb)
{
    CHECK(ndb > 0);
    watch_registry_t *r = mem_calloc(1, sizeof(*r));
    uint64_t rng;

    r->ndb = ndb;
    r->dbs = mem_calloc((size_t)ndb, sizeof(*r->dbs));
    seed_bytes(r->seed, sizeof(r->seed));
    seed_bytes(&rng, sizeof(rng));
    for (int i = 0; i < ndb; i++)
        dict_init(&r->dbs[i], watch_dict_key, r->seed, rng_next(&rng));
    return r;
}

static void registry_free(watch_registry_t *r)
{
    CHECK(r->nkeys == 0 && r->nlinks == 0 && r->nwatchers == 0);
    for (int i = 0; i < r->ndb; i++)
        dict_clear(&r->dbs[i], NULL, NULL);
    mem_free(r->dbs);
    mem_free(r);
}

static void watcher_clear(watch_registry_t *r, watcher_t *w);

/* Clients close after the backend at shutdown: their watchers are emptied now (each pass takes every
 * watcher of one key, which frees that key at least) and freed by their own release later. */
void watch_registry_destroy(watch_registry_t *r)
{
    if (r == NULL)
        return;
    for (int i = 0; i < r->ndb; i++) {
        dict_node_t *n;
        while ((n = dict_random(&r->dbs[i])) != NULL) {
            watch_key_t *k = KEY_OF(n);
            while (k != NULL && k->links != NULL) {
                int last = k->nlinks == 1;
                watcher_clear(r, k->links->w);      /* frees k with its last link */
                if (last)
                    k = NULL;
            }
        }
    }
    if (r->nwatchers == 0)
        registry_free(r);
    else
        r->closed = 1;
}

static dict_t *get_db(watch_registry_t *r, int db)
{
    CHECK(db >= 0 && db < r->ndb);
    return &r->dbs[db];
}

/* Unlink l from its key (freeing the key when it was the last watcher) and from its watcher's array,
 * and free it. */
static void link_remove(watch_registry_t *r, watch_link_t *l)
{
    watch_key_t *k = l->key;
    watcher_t *w = l->w;

    if (l->prev != NULL)
        l->prev->next = l->next;
    else
        k->links = l->next;
    if (l->next != NULL)
        l->next->prev = l->prev;
    k->nlinks--;
    if (k->links == NULL) {
        dict_unlink_node(get_db(r, k->db), &k->node);
        mem_free(k);
        r->nkeys--;
    }
    CHECK(l->idx < w->n && w->links[l->idx] == l);
    watch_link_t *last = w->links[--w->n];
    w->links[l->idx] = last;
    last->idx = l->idx;
    r->nlinks--;
    mem_free(l);
}

/* Drop every link of w, keeping w (its dirty flag stays). */
static void watcher_clear(watch_registry_t *r, watcher_t *w)
{
    while (w->n > 0)
        link_remove(r, w->links[w->n - 1]);
    mem_free(w->links);
    w->links = NULL;
    w->cap = 0;
}

/* backend_watch_t.release */
static void watcher_release_cb(backend_watch_t *bw)
{
    watcher_t *w = watcher_of(bw);
    watch_registry_t *r = w->r;

    watcher_clear(r, w);
    mem_free(w);
    r->nwatchers--;
    if (r->closed && r->nwatchers == 0)
        registry_free(r);
}

void watch_add(watch_registry_t *r, backend_watch_t **wp, int db, const char *key, size_t klen)
{
    dict_t *d = get_db(r, db);

    if (*wp == NULL) {
        watcher_t *nw = mem_calloc(1, sizeof(*nw));
        nw->base.release = watcher_release_cb;
        nw->r = r;
        r->nwatchers++;
        *wp = &nw->base;
    }
    watcher_t *w = watcher_of(*wp);
    CHECK(w->r == r);
    if (w->dirty)
        return;
    dict_node_t *n = dict_find(d, key, klen);
    watch_key_t *k = n ? KEY_OF(n) : NULL;
    if (k != NULL) {
        if (k->nlinks <= w->n) {
            for (watch_link_t *l = k->links; l != NULL; l = l->next)
                if (l->w == w)
                    return;
        } else {
            for (size_t i = 0; i < w->n; i++)
                if (w->links[i]->key == k)
                    return;
        }
    } else {
        k = mem_alloc(sizeof(*k) + klen);
        k->node.next = NULL;
        k->links = NULL;
        k->nlinks = 0;
        k->db = db;
        k->klen = klen;
        if (klen)
            memcpy(k->data, key, klen);
        dict_add(d, &k->node);
        r->nkeys++;
    }
    if (w->n == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 4;
        w->links = mem_realloc(w->links, w->cap * sizeof(*w->links));
    }
    watch_link_t *l = mem_alloc(sizeof(*l));
    l->key = k;
    l->w = w;
    l->prev = NULL;
    l->next = k->links;
    if (k->links != NULL)
        k->links->prev = l;
    k->links = l;
    k->nlinks++;
    l->idx = w->n;
    w->links[w->n++] = l;
    r->nlinks++;
}

/*
 * Each watcher of the key is marked and unwatched. Each watcher has one link on this key, so clearing
 * the watcher of link l frees l and links on other keys, never the next link of this list (saved first);
 * the key node itself goes with its last link.
 */
void watch_touch(watch_registry_t *r, int db, const char *key, size_t klen)
{
    if (r->nkeys == 0)
        return;
    dict_node_t *n = dict_find(get_db(r, db), key, klen);
    if (n == NULL)
        return;
    watch_link_t *l = KEY_OF(n)->links;
    while (l != NULL) {
        watch_link_t *next = l->next;
        watcher_t *w = l->w;
        w->dirty = 1;
        watcher_clear(r, w);
        l = next;
    }
}

typedef struct touch_db_ctx {
    watch_exists_fn *exists;
    void *priv;
} touch_db_ctx_t;

/* Marks only: dict_scan's callback must leave the dict as it is. */
static void touch_db_cb(void *priv, dict_node_t *n)
{
    touch_db_ctx_t *c = priv;
    watch_key_t *k = KEY_OF(n);

    if (!c->exists(c->priv, k->db, k->data, k->klen))
        return;
    for (watch_link_t *l = k->links; l != NULL; l = l->next)
        l->w->dirty = 1;
}

void watch_touch_db(watch_registry_t *r, int db, watch_exists_fn *exists, void *priv)
{
    dict_t *d = get_db(r, db);
    touch_db_ctx_t c = { exists, priv };
    uint64_t cursor = 0;

    if (dict_size(d) == 0)
        return;
    do
        cursor = dict_scan(d, cursor, touch_db_cb, &c);
    while (cursor != 0);
}

int watch_dirty(const backend_watch_t *w)
{
    return w != NULL && watcher_of_const(w)->dirty;
}

size_t watch_count(const backend_watch_t *w)
{
    return w != NULL ? watcher_of_const(w)->n : 0;
}

const char *watch_key_at(const backend_watch_t *bw, size_t i, int *db, size_t *klen)
{
    const watcher_t *w = watcher_of_const(bw);

    CHECK(i < w->n);
    const watch_key_t *k = w->links[i]->key;
    *db = k->db;
    *klen = k->klen;
    return k->data;
}

size_t watch_registry_keys(const watch_registry_t *r)
{
    return r->nkeys;
}

size_t watch_registry_links(const watch_registry_t *r)
{
    return r->nlinks;
}
