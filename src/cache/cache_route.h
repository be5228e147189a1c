/*
 * cache_route: which named cache a key belongs to — the longest of the configured prefixes that the key
 * starts with (byte-wise), or none.
 *
 * Only the data structure: no I/O, no config. Built once from a list of (prefix, id) pairs, read many
 * times, replaced whole on a reload (never changed in place). The table owns copies of the prefixes.
 *
 * Lookup cost: the entries are grouped by their first byte, and within a group ordered longest first, so
 * a key is compared with the prefixes that share its first byte only, and the first match is the answer.
 *
 * Errors: cache_route_create refuses an empty prefix and a prefix given twice (NULL, with the offending
 * entries' ids in *dup_a / *dup_b, -1 for an empty one). Allocation failure aborts (util/mem.h).
 */
#ifndef CACHETORYD_CACHE_CACHE_ROUTE_H
#define CACHETORYD_CACHE_CACHE_ROUTE_H

#include <stddef.h>

#include "util/buf.h"

typedef struct cache_route cache_route_t;

typedef struct cache_route_entry {
    bytes_t prefix;             /* non-empty */
    int id;                     /* what cache_route_find returns for keys under it (>= 0) */
} cache_route_entry_t;

/* A table of the n entries (copied). NULL when a prefix is empty or given twice: *dup_a and *dup_b are
 * then the ids of the two entries with the same prefix (for an empty one both are its id). */
cache_route_t *cache_route_create(const cache_route_entry_t *e, size_t n, int *dup_a, int *dup_b);
void cache_route_destroy(cache_route_t *r);

/* The id of the longest prefix that key starts with, or -1 when none does (r NULL: -1). */
int cache_route_find(const cache_route_t *r, const char *key, size_t len);

#endif
