/*
 * cache_profile: the named caches of a cache_t ([cache.NAME] sections) — which one a key belongs to, their
 * chains across reloads, and their INFO and metrics. See cache_int.h for the profile's life.
 *
 * Reloads never free a chain a thread-pool job may hold: a replaced chain is retired, and the retired
 * ones are freed by the next reload that finds no job running (or by the cache's end). A call waiting for
 * the backend holds a profile, not a chain: its result is decoded with the profile's chain of the moment.
 */
#include "cache/cache_int.h"

#include <stdio.h>
#include <string.h>

#include "util/mem.h"

#define CACHE_MAX_PROFILES 1024     /* names ever configured since start (64 at a time) */

static cache_profile_t *profile_create(const char *name)
{
    cache_profile_t *p = mem_calloc(1, sizeof(*p));
    p->name = mem_strdup(name);
    p->near = 1;
    return p;
}

static void profile_destroy(cache_profile_t *p)
{
    chain_destroy(p->chain);
    mem_free(p->name);
    mem_free(p->serializer);
    mem_free(p->prefixes);
    mem_free(p);
}

int cache_profiles_init(cache_profiles_t *pf, const char *name, const char *serializer, size_t max_bulk, char *err,
                        size_t errlen)
{
    chain_t *ch = chain_create(serializer, max_bulk, err, errlen);
    if (ch == NULL)
        return -1;
    memset(pf, 0, sizeof(*pf));
    cache_profile_t *p = profile_create(name);
    p->chain = ch;
    p->serializer = mem_strdup(serializer);
    p->active = 1;
    pf->v = mem_alloc(sizeof(*pf->v));
    pf->v[0] = p;
    pf->n = 1;
    pf->active = mem_alloc(sizeof(*pf->active));
    pf->active[0] = p;
    pf->nactive = 1;
    pf->all_null = chain_is_null(ch);
    return 0;
}

static void retired_free(cache_profiles_t *pf)
{
    for (size_t i = 0; i < pf->nretired; i++)
        chain_destroy(pf->retired[i]);
    pf->nretired = 0;
}

void cache_profiles_deinit(cache_profiles_t *pf)
{
    for (size_t i = 0; i < pf->n; i++)
        profile_destroy(pf->v[i]);
    retired_free(pf);
    mem_free(pf->retired);
    mem_free(pf->v);
    mem_free(pf->active);
    cache_route_destroy(pf->route);
    memset(pf, 0, sizeof(*pf));
}

static void retire(cache_profiles_t *pf, chain_t *ch)
{
    if (pf->nretired == pf->retired_cap) {
        pf->retired_cap = pf->retired_cap ? pf->retired_cap * 2 : 8;
        pf->retired = mem_realloc(pf->retired, pf->retired_cap * sizeof(*pf->retired));
    }
    pf->retired[pf->nretired++] = ch;
}

static void update_all_null(cache_profiles_t *pf)
{
    pf->all_null = 1;
    for (size_t i = 0; i < pf->nactive; i++)
        if (!chain_is_null(pf->active[i]->chain))
            pf->all_null = 0;
}

/*
 * A reload names another serializer for the default cache: new writes use it; reads decode with it too (a
 * value written with the old chain reads back as stored in mixed mode).
 */
int cache_profiles_set_serializer(cache_profiles_t *pf, const char *serializer, size_t max_bulk, int jobs, char *err,
                                  size_t errlen)
{
    chain_t *ch = chain_create(serializer, max_bulk, err, errlen);
    if (ch == NULL)
        return -1;
    if (jobs == 0)
        retired_free(pf);
    cache_profile_t *p = pf->v[0];
    retire(pf, p->chain);
    p->chain = ch;
    mem_free(p->serializer);
    p->serializer = mem_strdup(serializer);
    update_all_null(pf);
    return 0;
}

/* The profile named name among pf's (active or not), or NULL. */
static ssize_t profile_find(const cache_profiles_t *pf, const char *name)
{
    for (size_t i = 1; i < pf->n; i++)
        if (strcmp(pf->v[i]->name, name) == 0)
            return (ssize_t)i;
    return -1;
}

/*
 * Make defs the named caches. First everything that can fail — the new chains, the new route table — is
 * built aside; only then is anything changed. A def's profile is the one of its name if there is one
 * (it keeps its counters, and its chain when the serializer is the same), else a new one.
 */
int cache_profiles_configure(cache_profiles_t *pf, const cache_def_t *defs, size_t n, size_t max_bulk, int jobs,
                             char *err, size_t errlen)
{
    ssize_t *slot = mem_alloc((n ? n : 1) * sizeof(*slot));
    chain_t **fresh = mem_calloc(n ? n : 1, sizeof(*fresh));
    cache_route_entry_t *ent = NULL;
    size_t nent = 0, added = 0, cap = 0;
    cache_route_t *route = NULL;
    int rc = -1;

    for (size_t i = 0; i < n; i++) {
        slot[i] = profile_find(pf, defs[i].name);
        if (slot[i] < 0)
            slot[i] = (ssize_t)(pf->n + added++);
        if (slot[i] >= CACHE_MAX_PROFILES) {
            snprintf(err, errlen, "[cache.%s]: more than %d cache names since the start; restart to add more",
                     defs[i].name, CACHE_MAX_PROFILES);
            goto out;
        }
        const cache_profile_t *old = (size_t)slot[i] < pf->n ? pf->v[slot[i]] : NULL;
        if (old == NULL || strcmp(old->serializer, defs[i].serializer) != 0) {
            char why[512];
            fresh[i] = chain_create(defs[i].serializer, max_bulk, why, sizeof(why));
            if (fresh[i] == NULL) {
                snprintf(err, errlen, "[cache.%s] serializer: %s", defs[i].name, why);
                goto out;
            }
        }
        for (const char *p = defs[i].prefixes; *p != '\0';) {
            p += strspn(p, " \t");
            size_t m = strcspn(p, " \t");
            if (m == 0)
                break;
            if (nent == cap) {
                cap = cap ? cap * 2 : 16;
                ent = mem_realloc(ent, cap * sizeof(*ent));
            }
            ent[nent++] = (cache_route_entry_t){ { p, m }, (int)slot[i] };
            p += m;
        }
    }
    int a = -1, b = -1;
    if (n > 0 && (route = cache_route_create(ent, nent, &a, &b)) == NULL) {
        const char *na = "?", *nb = "?";
        for (size_t i = 0; i < n; i++) {
            if (slot[i] == a)
                na = defs[i].name;
            if (slot[i] == b)
                nb = defs[i].name;
        }
        if (a == b)
            snprintf(err, errlen, "[cache.%s]: no prefix, or an empty one", na);
        else
            snprintf(err, errlen, "[cache.%s] and [cache.%s] have a prefix in common", na, nb);
        goto out;
    }

    /* commit */
    if (jobs == 0)
        retired_free(pf);
    if (added > 0)
        pf->v = mem_realloc(pf->v, (pf->n + added) * sizeof(*pf->v));
    for (size_t i = 0; i < n; i++)
        if ((size_t)slot[i] >= pf->n)
            pf->v[slot[i]] = profile_create(defs[i].name);
    pf->n += added;
    for (size_t i = 1; i < pf->n; i++)
        pf->v[i]->active = 0;
    pf->active = mem_realloc(pf->active, (n + 1) * sizeof(*pf->active));
    pf->nactive = 1;
    for (size_t i = 0; i < n; i++) {
        cache_profile_t *p = pf->v[slot[i]];
        if (fresh[i] != NULL) {
            if (p->chain != NULL)
                retire(pf, p->chain);
            p->chain = fresh[i];
            fresh[i] = NULL;
            mem_free(p->serializer);
            p->serializer = mem_strdup(defs[i].serializer);
        }
        mem_free(p->prefixes);
        p->prefixes = mem_strdup(defs[i].prefixes);
        p->default_ttl = defs[i].default_ttl;
        p->near = defs[i].near;
        p->near_ttl_ms = defs[i].near_ttl_ms;
        p->active = 1;
        pf->active[pf->nactive++] = p;
    }
    cache_route_destroy(pf->route);
    pf->route = route;
    route = NULL;
    update_all_null(pf);
    rc = 0;
out:
    for (size_t i = 0; i < n; i++)
        chain_destroy(fresh[i]);
    cache_route_destroy(route);
    mem_free(fresh);
    mem_free(slot);
    mem_free(ent);
    return rc;
}

/* ---- the public face (cache.h) ------------------------------------------------------------------ */

int cache_set_serializer(cache_t *c, const char *serializer, size_t max_bulk, char *err, size_t errlen)
{
    cache_profiles_t *pf = cache_profiles(c);
    if (cache_profiles_set_serializer(pf, serializer, max_bulk, cache_jobs(c), err, errlen) < 0)
        return -1;
    cache_profiles_dict_sync(c);
    return 0;
}

void cache_set_default_ttl(cache_t *c, int seconds)
{
    cache_profiles_t *pf = cache_profiles(c);
    pf->v[0]->default_ttl = seconds;
}

void cache_set_default_near(cache_t *c, int on, long long ttl_ms)
{
    cache_profile_t *p = cache_profiles(c)->v[0];
    p->near = on;
    p->near_ttl_ms = ttl_ms;
    cache_near_refilter(cache_near_of(c));
}

long long cache_profiles_near_policy(void *arg, bytes_t key)
{
    const cache_profile_t *p = cache_profile_of(cache_profiles(arg), key.ptr, key.len);
    return p->near ? p->near_ttl_ms : -1;
}

int cache_configure(cache_t *c, const cache_def_t *defs, size_t n, size_t max_bulk, char *err, size_t errlen)
{
    cache_profiles_t *pf = cache_profiles(c);
    if (cache_profiles_configure(pf, defs, n, max_bulk, cache_jobs(c), err, errlen) < 0)
        return -1;
    cache_profiles_dict_sync(c);
    cache_near_refilter(cache_near_of(c));
    return 0;
}

void cache_profiles_dict_sync(cache_t *c)
{
    cache_profiles_t *pf = cache_profiles(c);
    for (size_t i = 0; i < pf->nactive; i++) {
        cache_profile_t *p = pf->active[i];
        if (p->dict_seen != p->chain) {
            p->dict_seen = p->chain;
            cache_dict_chain_added(cache_dict(c), p->chain, p->name);
        }
    }
}

int cache_chain_live(cache_t *c, const chain_t *ch)
{
    cache_profiles_t *pf = cache_profiles(c);
    for (size_t i = 0; i < pf->n; i++)
        if (pf->v[i]->chain == ch)
            return 1;
    for (size_t i = 0; i < pf->nretired; i++)
        if (pf->retired[i] == ch)
            return 1;
    return 0;
}

const char *cache_chain_name(cache_t *c, const chain_t *ch)
{
    cache_profiles_t *pf = cache_profiles(c);
    for (size_t i = 0; i < pf->n; i++)
        if (pf->v[i]->chain == ch)
            return pf->v[i]->name;
    return NULL;
}

chain_t *cache_chain_named(cache_t *c, const char *name)
{
    cache_profiles_t *pf = cache_profiles(c);
    if (name == NULL)
        return pf->v[0]->chain;
    for (size_t i = 0; i < pf->nactive; i++)
        if (strcmp(pf->active[i]->name, name) == 0)
            return pf->active[i]->chain;
    return NULL;
}

size_t cache_count(cache_t *c)
{
    cache_profiles_t *pf = cache_profiles(c);
    return pf->nactive;
}

const char *cache_name_at(cache_t *c, size_t i)
{
    cache_profiles_t *pf = cache_profiles(c);
    return i < pf->nactive ? pf->active[i]->name : NULL;
}

const chain_t *cache_chain_at(cache_t *c, size_t i)
{
    cache_profiles_t *pf = cache_profiles(c);
    return i < pf->nactive ? pf->active[i]->chain : NULL;
}

const chain_t *cache_chain_for(cache_t *c, bytes_t key)
{
    cache_profiles_t *pf = cache_profiles(c);
    return cache_profile_of(pf, key.ptr, key.len)->chain;
}

int cache_default_ttl(cache_t *c, bytes_t key)
{
    cache_profiles_t *pf = cache_profiles(c);
    return cache_profile_of(pf, key.ptr, key.len)->default_ttl;
}

const chain_t *cache_chain_encoding(cache_t *c)
{
    cache_profiles_t *pf = cache_profiles(c);
    for (size_t i = 0; i < pf->nactive; i++)
        if (!chain_is_null(pf->active[i]->chain))
            return pf->active[i]->chain;
    return NULL;
}

void cache_profiles_stats_reset(cache_profiles_t *pf)
{
    for (size_t i = 0; i < pf->n; i++)
        memset(&pf->v[i]->stats, 0, sizeof(pf->v[i]->stats));
}

static double encode_ratio(const cache_stats_t *s)
{
    return s->encode_bytes_in ? (double)s->encode_bytes_out / (double)s->encode_bytes_in : 1.0;
}

/* The prefixes of p for INFO: separated by '|', each byte other than A-Z a-z 0-9 : _ . * / - as %XX, so that the
 * list reads back unambiguously whatever the prefixes hold (',' '|' '=' spaces, binary). */
static void info_prefixes(buf_t *out, const char *prefixes)
{
    int first = 1;

    for (const char *p = prefixes; *p != '\0';) {
        p += strspn(p, " \t");
        size_t m = strcspn(p, " \t");
        if (m == 0)
            break;
        if (!first)
            buf_append(out, "|", 1);
        first = 0;
        for (size_t i = 0; i < m; i++) {
            unsigned char ch = (unsigned char)p[i];
            if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                strchr(":_.*/-", ch) != NULL)
                buf_append(out, p + i, 1);
            else
                buf_printf(out, "%%%02X", ch);
        }
        p += m;
    }
}

/*
 * INFO cache: today's fields describe the default cache (so that nothing reading them breaks), then one
 * line per named cache, as INFO keyspace's "db0:keys=1,expires=0".
 */
void cache_profiles_info(const cache_profiles_t *pf, const cache_dict_t *dd, buf_t *out)
{
    const cache_profile_t *d = pf->v[0];
    const cache_stats_t *s = &d->stats;

    buf_printf(out,
               "cache_name:%s\r\ncache_serializer:%s\r\ncache_encodes:%llu\r\ncache_encode_bytes_in:%llu\r\n"
               "cache_encode_bytes_out:%llu\r\ncache_encode_ratio:%.4f\r\ncache_encode_usec:%llu\r\n"
               "cache_encode_errors:%llu\r\ncache_decodes:%llu\r\ncache_decode_bytes_in:%llu\r\n"
               "cache_decode_bytes_out:%llu\r\ncache_decode_usec:%llu\r\ncache_decode_errors:%llu\r\n"
               "cache_values_undecoded:%llu\r\ncache_offloaded:%llu\r\n",
               d->name, chain_url(d->chain), s->encodes, s->encode_bytes_in, s->encode_bytes_out, encode_ratio(s),
               s->encode_usec, s->encode_errors, s->decodes, s->decode_bytes_in, s->decode_bytes_out,
               s->decode_usec, s->decode_errors, s->undecoded, s->offloaded);
    codec_dict_stats_t z;
    codec_zstd_dicts_stats(chain_dicts(d->chain), &z);
    buf_printf(out, "cache_zstd_dictionary_id:%u\r\ncache_zstd_dictionary_size:%zu\r\n"
               "cache_zstd_unknown_dictionary_frames:%llu\r\ncache_zstd_dictionaries:%zu\r\n"
               "cache_zstd_dictionary_auto:%d\r\ncache_zstd_dictionary_training:%d\r\n"
               "cache_zstd_dictionary_trainings:%llu\r\ncache_zstd_dictionary_trainings_unused:%llu\r\n"
               "cache_zstd_dictionary_sample_values:%zu\r\ncache_zstd_dictionary_sample_bytes:%zu\r\n"
               "cache_zstd_dictionary_trained_ratio:%.4f\r\ncache_zstd_dictionary_recent_ratio:%.4f\r\n",
               z.encode_id, z.encode_size, z.unknown, z.count, z.auto_train, z.training, z.trainings, z.rejected,
               z.sample_values, z.sample_bytes, z.trained_ratio, z.recent_ratio);
    cache_dict_info(dd, out);
    buf_printf(out, "cache_named_caches:%zu\r\n", pf->nactive - 1);
    for (size_t i = 1; i < pf->nactive; i++) {
        const cache_profile_t *p = pf->active[i];
        s = &p->stats;
        buf_printf(out, "cache_%s:serializer=%s,prefixes=", p->name, chain_url(p->chain));
        info_prefixes(out, p->prefixes);
        buf_printf(out, ",default_ttl=%d,near_cache=%d,near_cache_ttl=%lld,encodes=%llu,encode_bytes_in=%llu,encode_bytes_out=%llu,"
                   "encode_ratio=%.4f,encode_errors=%llu,decodes=%llu,decode_bytes_in=%llu,decode_bytes_out=%llu,"
                   "decode_errors=%llu,values_undecoded=%llu,offloaded=%llu",
                   p->default_ttl, p->near, p->near_ttl_ms, s->encodes, s->encode_bytes_in, s->encode_bytes_out, encode_ratio(s),
                   s->encode_errors, s->decodes, s->decode_bytes_in, s->decode_bytes_out, s->decode_errors,
                   s->undecoded, s->offloaded);
        if (chain_dicts(p->chain) != NULL) {
            codec_zstd_dicts_stats(chain_dicts(p->chain), &z);
            buf_printf(out, ",zstd_dictionary_id=%u,zstd_dictionaries=%zu,zstd_unknown_dictionary_frames=%llu,"
                       "zstd_dictionary_training=%d,zstd_dictionary_trainings=%llu,"
                       "zstd_dictionary_trainings_unused=%llu,zstd_dictionary_trained_ratio=%.4f", z.encode_id,
                       z.count, z.unknown, z.training, z.trainings, z.rejected, z.trained_ratio);
        }
        buf_printf(out, "\r\n");
    }
}

/* Prometheus: one series per cache (label cache="NAME"), each metric's TYPE line once. */
void cache_profiles_metrics(const cache_profiles_t *pf, buf_t *out)
{
    static const char *const names[] = { "encodes", "encode_bytes_in", "encode_bytes_out", "decodes",
                                         "decode_bytes_in", "decode_bytes_out", "values_undecoded",
                                         "decode_errors", "encode_errors", "offloaded" };
    for (size_t m = 0; m < sizeof(names) / sizeof(names[0]); m++) {
        buf_printf(out, "# TYPE cachetoryd_cache_%s_total counter\n", names[m]);
        for (size_t i = 0; i < pf->nactive; i++) {
            const cache_stats_t *s = &pf->active[i]->stats;
            unsigned long long v[] = { s->encodes, s->encode_bytes_in, s->encode_bytes_out, s->decodes,
                                       s->decode_bytes_in, s->decode_bytes_out, s->undecoded, s->decode_errors,
                                       s->encode_errors, s->offloaded };
            buf_printf(out, "cachetoryd_cache_%s_total{cache=\"%s\"} %llu\n", names[m], pf->active[i]->name, v[m]);
        }
    }
}
