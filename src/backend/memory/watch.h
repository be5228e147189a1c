/*
 * watch: the memory backend's WATCH registry — which clients watch which (database, key), and which of
 * them saw a watched key change since (Redis's CLIENT_DIRTY_CAS).
 *
 * Each watched (db, key) is stored once, with the list of its watchers; each watcher (a client's
 * backend_watch_t) keeps an array of its links, so that both "who watches this key" (a write) and "what
 * does this client watch" (EXEC's expiry check, UNWATCH) cost what they visit. Memory is bounded by the
 * links that exist: a key node goes when its last watcher does, and a watcher that is touched is
 * unwatched at once (it can only fail its EXEC now), as Redis's touchWatchedKey does.
 *
 * Synchronous and single-threaded, like the store it listens to (store_set_notify): watch_touch is the
 * store's "key modified" signal. It never calls the store back, so the store may signal from inside any
 * of its operations. Keys that were present but already expired when WATCH ran are the caller's affair
 * (the memory backend reclaims them before watching: no watched key starts out expired).
 */
#ifndef CACHETORYD_BACKEND_MEMORY_WATCH_H
#define CACHETORYD_BACKEND_MEMORY_WATCH_H

#include <stddef.h>

#include "backend/backend.h"

typedef struct watch_registry watch_registry_t;

/* A registry for databases 0..ndb-1 (ndb >= 1). Destroying it forgets every watched key at once; the
 * watchers still out live on, watching nothing, and the registry's last bytes go with the last of them
 * (backend_unwatch). NULL is fine. */
watch_registry_t *watch_registry_create(int ndb);
void watch_registry_destroy(watch_registry_t *r);

/* Watch key in db for *w (created on first use: the caller owns it until backend_unwatch). Watching a key
 * the watcher already watches in that db does nothing. A watcher already touched (watch_dirty) records
 * nothing more: its EXEC fails whatever happens. */
void watch_add(watch_registry_t *r, backend_watch_t **w, int db, const char *key, size_t klen);

/* The store's signal: key in db was modified (written, deleted, expired, evicted, its TTL changed). Every
 * watcher of it becomes dirty and is unwatched. Cheap when nothing is watched. */
void watch_touch(watch_registry_t *r, int db, const char *key, size_t klen);

/* FLUSHDB / FLUSHALL of db, before it is emptied: every watcher of a key for which exists(priv, db, key,
 * klen) says 1 (the key is in the store, expired or not) becomes dirty, as Redis's
 * touchAllWatchedKeysInDb (a key that did not exist is not touched by a flush). The watchers are only
 * marked here (their links go with backend_unwatch). */
typedef int watch_exists_fn(void *priv, int db, const char *key, size_t klen);
void watch_touch_db(watch_registry_t *r, int db, watch_exists_fn *exists, void *priv);

/* 1 when a key w watches was touched since it was watched. NULL (nothing watched): 0. */
int watch_dirty(const backend_watch_t *w);

/* The keys w watches: their number, and the i-th one (0 <= i < count) with its database. */
size_t watch_count(const backend_watch_t *w);
const char *watch_key_at(const backend_watch_t *w, size_t i, int *db, size_t *klen);

/* backend_unwatch(w) (w->release) forgets every key w watches and frees w: UNWATCH, EXEC, DISCARD, RESET,
 * a client leaving. */

/* Watched (db, key) pairs and links (a pair watched by several clients counts once, then once per
 * client), for tests and INFO. */
size_t watch_registry_keys(const watch_registry_t *r);
size_t watch_registry_links(const watch_registry_t *r);

#endif
