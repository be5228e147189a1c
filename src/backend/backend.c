/* Backend selection by URL scheme. */
#include "backend/backend.h"

#include <stdio.h>
#include <string.h>

#include "config.h"
#include "url.h"
#include "util/mem.h"

/* The error of a backend that could not be created quotes its URL: redacted here, for every backend. */
backend_t *backend_create(const config_t *cfg, void *loop, char *err, size_t errlen)
{
    const char *url = cfg->backend;
    backend_t *b;

    if (strcmp(url, "memory://") == 0 || strcmp(url, "memory:") == 0)
        return backend_memory_create(cfg);
    if (strcmp(url, "dummy://") == 0 || strcmp(url, "dummy:") == 0)
        return backend_dummy_create();
    if (strncmp(url, "redis://", 8) == 0 || strncmp(url, "redis+unix://", 13) == 0 ||
        strncmp(url, "rediss://", 9) == 0 || strncmp(url, "unix://", 7) == 0) {
        b = backend_redis_create(cfg, loop, err, errlen);
        if (b == NULL)
            url_redact_in(err, errlen);
        return b;
    }
    /* without "://", only the scheme: what follows may be a password in a form too malformed to redact */
    char *shown = strstr(url, "://") ? url_redact(url) : mem_strndup(url, strcspn(url, ":") + 1);
    snprintf(err, errlen, "backend '%s%s': unknown backend; use memory://, dummy://, "
             "redis://[user:password@]host:port/db or redis+unix:///path?db=N", shown,
             strstr(url, "://") || url[strlen(shown)] == '\0' ? "" : "...");
    mem_free(shown);
    return NULL;
}

void backend_destroy(backend_t *b)
{
    if (b != NULL)
        b->vt->destroy(b);
}
