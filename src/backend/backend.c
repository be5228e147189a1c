/* Backend selection by URL scheme, and the wrappers of the optional vtable entries. */
#include "backend/backend.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "url.h"
#include "util/mem.h"

static int url_is_upstream(const char *url)
{
    return strncmp(url, "redis://", 8) == 0 || strncmp(url, "redis+unix://", 13) == 0 ||
           strncmp(url, "rediss://", 9) == 0 || strncmp(url, "unix://", 7) == 0 ||
           strncmp(url, "rediss+unix://", 14) == 0 || strncmp(url, "redis+cluster://", 16) == 0 ||
           strncmp(url, "rediss+cluster://", 17) == 0;
}

int backend_url_forwards(const char *url)
{
    return url_is_upstream(url);
}

char *backend_read_password_file(const char *path, char *err, size_t errlen)
{
    char buf[4098];
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "upstream-password-file '%s': %s", path, strerror(errno));
        return NULL;
    }
    size_t n = fread(buf, 1, sizeof(buf), f);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        snprintf(err, errlen, "upstream-password-file '%s': cannot be read", path);
        return NULL;
    }
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    const char *why = n == 0 ? "is empty" : n > 4096 ? "is longer than 4096 bytes"
                    : memchr(buf, '\0', n) || memchr(buf, '\n', n) || memchr(buf, '\r', n)
                        ? "holds a NUL byte or a line break: the password is the file's one line" : NULL;
    if (why != NULL) {
        snprintf(err, errlen, "upstream-password-file '%s' %s", path, why);
        return NULL;
    }
    return mem_strndup(buf, n);
}

/* The error of a backend that could not be created quotes its URL: redacted here, for every backend. */
backend_t *backend_create(const config_t *cfg, void *loop, char *err, size_t errlen)
{
    const char *url = cfg->backend;
    backend_t *b;

    if (strcmp(url, "memory://") == 0 || strcmp(url, "memory:") == 0)
        return backend_memory_create(cfg);
    if (strcmp(url, "dummy://") == 0 || strcmp(url, "dummy:") == 0)
        return backend_dummy_create();
    if (url_is_upstream(url)) {
        b = backend_redis_create(cfg, loop, err, errlen);
        if (b == NULL)
            url_redact_in(err, errlen);
        return b;
    }
    /* without "://", only the scheme: what follows may be a password in a form too malformed to redact */
    char *shown = strstr(url, "://") ? url_redact(url) : mem_strndup(url, strcspn(url, ":") + 1);
    snprintf(err, errlen, "backend '%s%s': unknown backend; use memory://, dummy://, "
             "redis://[user:password@]host:port/db, rediss:// (TLS) or redis+unix:///path?db=N", shown,
             strstr(url, "://") || url[strlen(shown)] == '\0' ? "" : "...");
    mem_free(shown);
    return NULL;
}

void backend_destroy(backend_t *b)
{
    if (b != NULL)
        b->vt->destroy(b);
}

int backend_info(backend_t *b, const char *section, buf_t *out)
{
    if (b->vt->info == NULL)
        return -1;
    b->vt->info(b, section, out);
    return 0;
}

void backend_cron(backend_t *b)
{
    if (b->vt->cron != NULL)
        b->vt->cron(b);
}

void backend_reconfigure(backend_t *b, const config_t *cfg)
{
    if (b->vt->reconfigure != NULL)
        b->vt->reconfigure(b, cfg);
}

int backend_idle(backend_t *b)
{
    return b->vt->idle == NULL || b->vt->idle(b);
}

int backend_over_limit(backend_t *b)
{
    return b->vt->over_limit != NULL && b->vt->over_limit(b);
}

int backend_batch_begin(backend_t *b, uint64_t affinity)
{
    if (b->vt->batch == NULL)
        return 0;
    b->vt->batch(b, 1, affinity, NULL, NULL);
    return 1;
}

void backend_batch_end(backend_t *b, uint64_t affinity, backend_cb *cb, void *ctx)
{
    b->vt->batch(b, 0, affinity, cb, ctx);
}

void backend_stats(backend_t *b, backend_stats_t *st, size_t *db_keys, int ndb)
{
    memset(st, 0, sizeof(*st));
    if (db_keys != NULL)
        memset(db_keys, 0, (size_t)ndb * sizeof(*db_keys));
    if (b->vt->stats != NULL)
        b->vt->stats(b, st, db_keys, ndb);
}

void backend_stats_reset(backend_t *b)
{
    if (b->vt->stats_reset != NULL)
        b->vt->stats_reset(b);
}

void backend_metrics(backend_t *b, buf_t *out)
{
    if (b->vt->metrics != NULL)
        b->vt->metrics(b, out);
}

int backend_track(backend_t *b, const backend_track_opts_t *opts, backend_track_cb *cb, void *ctx, char *err,
                  size_t errlen)
{
    if (b->vt->track == NULL) {
        snprintf(err, errlen, "the near cache needs an upstream Redis (redis://, rediss:// or redis+unix://), "
                              "not %s://", b->vt->scheme);
        return -1;
    }
    return b->vt->track(b, opts, cb, ctx, err, errlen);
}

void backend_untrack(backend_t *b)
{
    char err[8];
    if (b->vt->track != NULL)
        b->vt->track(b, NULL, NULL, NULL, err, sizeof(err));
}
