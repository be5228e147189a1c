/*
 * config_caches: the [cache.NAME] sections of the file — caches chosen by key prefix.
 *
 *   [cache.sessions]
 *   prefix = sess: session:
 *   serializer = zlib://
 *   default-ttl = 3600
 *   near-cache = no
 *
 * A section takes prefix (required: one or more prefixes separated by spaces), serializer, default-ttl,
 * near-cache and near-cache-ttl (all default to [cache]'s, resolved when they are used, so that a reload
 * of [cache] reaches the sections that do not set their own). config.c's reader hands us each section header
 * (config_caches_open) and each name = value under one (config_caches_set), and asks at the end whether
 * every section got its prefix (config_caches_check); errors come back as a reason that config.c turns
 * into "file:line: 'the line': reason". Values are checked by the same rows of the option table as
 * [cache]'s own serializer and default-ttl (config_parse_option).
 *
 * A prefix may belong to one section only: two sections claiming the same keys would make the cache of
 * a key depend on the order of the file. The longest matching prefix wins, so "doc:" and "doc:big:" in
 * two sections is fine.
 */
#include "config_table.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "util/mem.h"

/* The options a [cache.NAME] section takes, for the messages. */
#define CACHE_SECTION_TAKES "a [cache.NAME] section takes prefix, serializer, default-ttl, near-cache and near-cache-ttl"

static int name_ok(const char *s, size_t n)
{
    if (n == 0 || n > CONFIG_CACHE_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
            return 0;
    return 1;
}

static config_cache_t *find_section(config_t *cfg, const char *name, size_t n)
{
    for (int i = 0; i < cfg->ncaches; i++)
        if (strlen(cfg->caches[i].name) == n && memcmp(cfg->caches[i].name, name, n) == 0)
            return &cfg->caches[i];
    return NULL;
}

int config_caches_open(config_t *cfg, const char *section, size_t n, int line, char *reason, size_t rlen)
{
    if (n < 6 || strncasecmp(section, "cache.", 6) != 0)
        return 0;
    const char *name = section + 6;
    size_t nlen = n - 6;
    if (!name_ok(name, nlen)) {
        snprintf(reason, rlen, "bad cache name '%.*s': a cache name is 1 to %d characters of A-Z, a-z, 0-9, "
                 "'_' and '-'", (int)(nlen > 40 ? 40 : nlen), name, CONFIG_CACHE_NAME_MAX);
        return -1;
    }
    if (nlen == 7 && strncasecmp(name, "default", 7) == 0) {
        snprintf(reason, rlen, "the cache name 'default' is reserved: it is [cache]'s, set its options there");
        return -1;
    }
    config_cache_t *cc = find_section(cfg, name, nlen);
    if (cc != NULL) {
        snprintf(reason, rlen, "[cache.%s] is already at line %d: give each cache one section", cc->name, cc->line);
        return -1;
    }
    if (cfg->ncaches == CONFIG_MAX_CACHES) {
        snprintf(reason, rlen, "too many [cache.NAME] sections (at most %d)", CONFIG_MAX_CACHES);
        return -1;
    }
    cc = &cfg->caches[cfg->ncaches++];
    memset(cc, 0, sizeof(*cc));
    cc->name = mem_strndup(name, nlen);
    cc->default_ttl = -1;
    cc->near_cache = -1;
    cc->near_cache_ttl = -1;
    cc->line = line;
    return 1;
}

/* The section that claims prefix p (n bytes) among cfg's, other than skip's, or NULL. */
static const config_cache_t *prefix_owner(const config_t *cfg, const char *p, size_t n, const config_cache_t *skip)
{
    for (int i = 0; i < cfg->ncaches; i++) {
        const config_cache_t *cc = &cfg->caches[i];
        if (cc == skip || cc->prefix == NULL)
            continue;
        for (const char *q = cc->prefix; *q != '\0';) {
            q += strspn(q, " \t");
            size_t m = strcspn(q, " \t");
            if (m == n && memcmp(q, p, n) == 0)
                return cc;
            q += m;
        }
    }
    return NULL;
}

/* Check a prefix list of section cc: non-empty, no prefix twice here or in another section. */
static int prefix_check(const config_t *cfg, const config_cache_t *cc, const char *text, char *reason, size_t rlen)
{
    int count = 0;

    for (const char *p = text; *p != '\0';) {
        p += strspn(p, " \t");
        size_t n = strcspn(p, " \t");
        if (n == 0)
            break;
        count++;
        for (const char *q = text; q < p;) {
            q += strspn(q, " \t");
            size_t m = strcspn(q, " \t");
            if (q < p && m == n && memcmp(q, p, n) == 0) {
                snprintf(reason, rlen, "prefix '%.*s' is given twice in [cache.%s]", (int)(n > 64 ? 64 : n), p,
                         cc->name);
                return -1;
            }
            q += m;
        }
        const config_cache_t *other = prefix_owner(cfg, p, n, cc);
        if (other != NULL) {
            snprintf(reason, rlen, "prefix '%.*s' of [cache.%s] is also in [cache.%s] (line %d): a prefix belongs "
                     "to one cache only", (int)(n > 64 ? 64 : n), p, cc->name, other->name, other->prefix_line);
            return -1;
        }
        p += n;
    }
    if (count == 0) {
        snprintf(reason, rlen, "prefix of [cache.%s] must be one or more key prefixes separated by spaces "
                 "(e.g. prefix = sess: session:)", cc->name);
        return -1;
    }
    return 0;
}

int config_caches_set(config_t *cfg, const char *section, const char *name, const char *value, int line,
                      char *reason, size_t rlen)
{
    config_cache_t *cc = find_section(cfg, section + 6, strlen(section + 6));
    int *seen;
    int rc = -1;

    if (cc == NULL) {       /* not reached: config_caches_open saw every header */
        snprintf(reason, rlen, "no section [%s]", section);
        return -1;
    }
    if (strcasecmp(name, "prefix") == 0) {
        seen = &cc->prefix_line;
    } else if (strcasecmp(name, "serializer") == 0) {
        seen = &cc->serializer_line;
    } else if (strcasecmp(name, "default-ttl") == 0) {
        seen = &cc->default_ttl_line;
    } else if (strcasecmp(name, "near-cache") == 0) {
        seen = &cc->near_cache_line;
    } else if (strcasecmp(name, "near-cache-ttl") == 0) {
        seen = &cc->near_cache_ttl_line;
    } else {
        const char *home = config_option_section(name);
        if (home != NULL && strcmp(home, "cache") == 0)
            snprintf(reason, rlen, "'%s' is not a per-cache option: it applies to all caches, set it in [cache]; "
                     CACHE_SECTION_TAKES, name);
        else if (home != NULL)
            snprintf(reason, rlen, "'%s' belongs in [%s], not in a cache section; " CACHE_SECTION_TAKES, name, home);
        else
            snprintf(reason, rlen, "unknown option '%s' in [cache.%s]: " CACHE_SECTION_TAKES, name, cc->name);
        return -1;
    }
    if (*seen != 0) {
        snprintf(reason, rlen, "%s is already set at line %d", name, *seen);
        return -1;
    }
    char *v = config_unquote(value);
    if (seen == &cc->prefix_line) {
        if (prefix_check(cfg, cc, v, reason, rlen) == 0) {
            cc->prefix = v;
            v = NULL;
            rc = 0;
        }
    } else {
        long long num;
        char *str = NULL;
        const char *opt = seen == &cc->serializer_line    ? "serializer"
                          : seen == &cc->default_ttl_line ? "default-ttl"
                          : seen == &cc->near_cache_line  ? "near-cache"
                                                          : "near-cache-ttl";
        rc = config_parse_option(opt, v, &num, &str, reason, rlen);
        if (rc == 0 && seen == &cc->serializer_line)
            cc->serializer = str;
        else if (rc == 0 && seen == &cc->default_ttl_line)
            cc->default_ttl = (int)num;
        else if (rc == 0 && seen == &cc->near_cache_line)
            cc->near_cache = (int)num;
        else if (rc == 0)
            cc->near_cache_ttl = (int)num;
    }
    mem_free(v);
    if (rc == 0)
        *seen = line;
    return rc;
}

int config_caches_check(const config_t *cfg, int *line, char *reason, size_t rlen)
{
    for (int i = 0; i < cfg->ncaches; i++) {
        const config_cache_t *cc = &cfg->caches[i];
        if (cc->prefix == NULL) {
            *line = cc->line;
            snprintf(reason, rlen, "[cache.%s] has no prefix: say which keys go to it (prefix = one or more key "
                     "prefixes separated by spaces)", cc->name);
            return -1;
        }
    }
    return 0;
}

void config_caches_deinit(config_t *cfg)
{
    for (int i = 0; i < cfg->ncaches; i++) {
        mem_free(cfg->caches[i].name);
        mem_free(cfg->caches[i].prefix);
        mem_free(cfg->caches[i].serializer);
    }
    memset(cfg->caches, 0, sizeof(cfg->caches));
    cfg->ncaches = 0;
}

const char *config_cache_serializer(const config_t *cfg, const config_cache_t *cc)
{
    return cc->serializer != NULL ? cc->serializer : cfg->serializer;
}

int config_cache_default_ttl(const config_t *cfg, const config_cache_t *cc)
{
    return cc->default_ttl >= 0 ? cc->default_ttl : cfg->default_ttl;
}

int config_cache_near(const config_t *cfg, const config_cache_t *cc)
{
    return cc->near_cache >= 0 ? cc->near_cache : cfg->near_cache;
}

int config_cache_near_ttl(const config_t *cfg, const config_cache_t *cc)
{
    return cc->near_cache_ttl >= 0 ? cc->near_cache_ttl : cfg->near_cache_ttl;
}

int config_near_wanted(const config_t *cfg)
{
    for (int i = 0; i < cfg->ncaches; i++)
        if (cfg->caches[i].near_cache == 1)
            return 1;
    return cfg->near_cache;
}

static int str_eq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

int config_caches_equal(const config_t *a, const config_t *b)
{
    if (a->ncaches != b->ncaches)
        return 0;
    for (int i = 0; i < a->ncaches; i++) {
        const config_cache_t *x = &a->caches[i], *y = &b->caches[i];
        if (!str_eq(x->name, y->name) || !str_eq(x->prefix, y->prefix) || !str_eq(x->serializer, y->serializer) ||
            x->default_ttl != y->default_ttl || x->near_cache != y->near_cache ||
            x->near_cache_ttl != y->near_cache_ttl)
            return 0;
    }
    return 1;
}

void config_caches_take(config_t *dst, config_t *src)
{
    config_caches_deinit(dst);
    memcpy(dst->caches, src->caches, sizeof(dst->caches));
    dst->ncaches = src->ncaches;
    memset(src->caches, 0, sizeof(src->caches));
    src->ncaches = 0;
}
