/*
 * codec: what every codec shares (see codec.h): the temporary context of a one-off call.
 */
#include "codec/codec.h"

int codec_call_ctx(const codec_t *c, codec_fn *fn, void *ctx, const codec_params_t *p, const char *in, size_t n,
                   buf_t *out, char *err)
{
    if (ctx != NULL)
        return fn(ctx, p, in, n, out, err);
    void *tmp = c->ctx_create(p);
    int rc = fn(tmp, p, in, n, out, err);
    c->ctx_destroy(tmp);
    return rc;
}
