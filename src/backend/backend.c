/* Backend selection by URL scheme. */
#include "backend/backend.h"

#include <stdio.h>
#include <string.h>

#include "config.h"

backend_t *backend_create(const config_t *cfg, void *loop, char *err, size_t errlen)
{
    const char *url = cfg->backend;

    if (strcmp(url, "memory://") == 0 || strcmp(url, "memory:") == 0)
        return backend_memory_create(cfg);
    if (strcmp(url, "dummy://") == 0 || strcmp(url, "dummy:") == 0)
        return backend_dummy_create();
    if (strncmp(url, "redis://", 8) == 0 || strncmp(url, "redis+unix://", 13) == 0 ||
        strncmp(url, "rediss://", 9) == 0 || strncmp(url, "unix://", 7) == 0)
        return backend_redis_create(cfg, loop, err, errlen);
    snprintf(err, errlen, "backend '%s': unknown backend; use memory://, dummy://, redis://[user:password@]host:port/db "
             "or redis+unix:///path?db=N", url);
    return NULL;
}

void backend_destroy(backend_t *b)
{
    if (b != NULL)
        b->vt->destroy(b);
}
