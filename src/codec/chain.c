/*
 * codec/chain: parse a chain URL into layers and parameters; run the layers.
 */
#include "codec/chain.h"

#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "config.h"
#include "url.h"
#include "util/mem.h"

struct chain_ctx {
    chain_ctx_t *next;                  /* in the pool */
    void *layer_ctx[CHAIN_MAX_LAYERS];  /* each layer's codec context (or NULL) */
    buf_t tmp;                          /* intermediate results between layers */
};

struct chain {
    char *url;
    const codec_t *layers[CHAIN_MAX_LAYERS];
    int nlayers;
    codec_params_t params;
    size_t min_size;                    /* compression-min-size */
    int strict;
    chain_ctx_t *main_ctx;
    chain_ctx_t *pool;                  /* free contexts for worker threads */
    pthread_mutex_t lock;               /* guards pool */
};

static const struct {
    const char *scheme;
    const codec_t *codec;               /* NULL: the identity */
} chain_schemes[] = {
    {"null", NULL},
    {"noop", NULL},
    {"pickle", &codec_pickle},
    {"json", &codec_json},
    {"msgpack", &codec_msgpack},
    {"zlib", &codec_zlib},
    {"zstd", &codec_zstd},
    {"zstandard", &codec_zstd},
};

static int chain_has(const chain_t *ch, const codec_t *c)
{
    for (int i = 0; i < ch->nlayers; i++)
        if (ch->layers[i] == c)
            return 1;
    return 0;
}

static int parse_int(const char *s, long min, long max, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    if (!strcmp(s, "yes") || !strcmp(s, "true") || !strcmp(s, "1") || !strcmp(s, "on") || !strcmp(s, ""))
        *out = 1;
    else if (!strcmp(s, "no") || !strcmp(s, "false") || !strcmp(s, "0") || !strcmp(s, "off"))
        *out = 0;
    else
        return -1;
    return 0;
}

/* Layers from the scheme ("msgpack+zstd"), parameters from the query; every error names what it found
 * and what is accepted. */
static int chain_configure(chain_t *ch, url_t *u, size_t max_bulk, char *err, size_t errlen)
{
    char *schemes = mem_strdup(u->scheme), *save = NULL;
    const char *v;
    long n;
    int rc = -1;

    for (char *s = strtok_r(schemes, "+", &save); s != NULL; s = strtok_r(NULL, "+", &save)) {
        size_t k;
        for (k = 0; k < sizeof(chain_schemes) / sizeof(chain_schemes[0]); k++)
            if (strcmp(s, chain_schemes[k].scheme) == 0)
                break;
        if (k == sizeof(chain_schemes) / sizeof(chain_schemes[0])) {
            snprintf(err, errlen, "unknown scheme '%s'; accepted: null, noop, pickle, json, msgpack, zlib, zstd, "
                     "zstandard, joined with '+'", s);
            goto out;
        }
        if (chain_schemes[k].codec == NULL)
            continue;
        if (ch->nlayers == CHAIN_MAX_LAYERS) {
            snprintf(err, errlen, "more than %d layers", CHAIN_MAX_LAYERS);
            goto out;
        }
        ch->layers[ch->nlayers++] = chain_schemes[k].codec;
    }
    if (u->host[0] != '\0' || u->port >= 0 || (u->path[0] != '\0' && strcmp(u->path, "/") != 0) || u->user) {
        snprintf(err, errlen, "a serializer URL takes no host, port or path, only ?parameters");
        goto out;
    }

    ch->params.compression_level = -1;
    ch->params.pickle_protocol = 5;
    ch->params.max_decoded = max_bulk;
    if ((v = url_param(u, "compression-level")) != NULL) {
        long lo = chain_has(ch, &codec_zstd) ? ZSTD_minCLevel() : -1;
        long hi = chain_has(ch, &codec_zstd) ? ZSTD_maxCLevel() : 9;
        if (chain_has(ch, &codec_zlib) && chain_has(ch, &codec_zstd)) {
            lo = -1;
            hi = 9;
        }
        if (parse_int(v, lo, hi, &n) < 0) {
            snprintf(err, errlen, "compression-level '%s': must be an integer between %ld and %ld%s", v, lo, hi,
                     chain_has(ch, &codec_zstd) ? "" : " (zlib)");
            goto out;
        }
        ch->params.compression_level = (int)n;
        ch->params.level_set = 1;
    }
    if ((v = url_param(u, "compression-threads")) != NULL) {
        if (parse_int(v, 0, 200, &n) < 0) {
            snprintf(err, errlen, "compression-threads '%s': must be an integer between 0 and 200", v);
            goto out;
        }
        ch->params.compression_threads = (int)n;
    }
    if ((v = url_param(u, "pickle-protocol")) != NULL) {
        if (parse_int(v, 2, 5, &n) < 0) {
            snprintf(err, errlen, "pickle-protocol '%s': must be 2, 3, 4 or 5", v);
            goto out;
        }
        ch->params.pickle_protocol = (int)n;
    }
    if ((v = url_param(u, "compression-min-size")) != NULL) {
        long long sz;
        if (config_parse_memory(v, &sz) < 0) {
            snprintf(err, errlen, "compression-min-size '%s': must be a size in bytes (like 512 or 4kb)", v);
            goto out;
        }
        ch->min_size = (size_t)sz;
    }
    if ((v = url_param(u, "max-decoded-size")) != NULL) {
        long long sz;
        if (config_parse_memory(v, &sz) < 0 || sz < 1) {
            snprintf(err, errlen, "max-decoded-size '%s': must be a size in bytes (like 512mb), at least 1", v);
            goto out;
        }
        ch->params.max_decoded = (size_t)sz;
    }
    /* A short value is stored as it is only when it cannot be taken for the chain's output (see
     * chain_encode): that needs a last layer that can tell, by a header. A serializer cannot (the msgpack
     * int 53 is "5"). */
    if (ch->min_size > 0 && (ch->nlayers == 0 || ch->layers[ch->nlayers - 1]->sniff == NULL)) {
        snprintf(err, errlen, "compression-min-size needs a chain that ends with a compressor (zlib or zstd): "
                 "a short value stored as it is could not be told apart from a serialized one");
        goto out;
    }
    if ((v = url_param(u, "strict")) != NULL && parse_bool(v, &ch->strict) < 0) {
        snprintf(err, errlen, "strict '%s': must be yes or no", v);
        goto out;
    }
    const url_param_t *bad = url_unused_param(u);
    if (bad != NULL) {
        snprintf(err, errlen, "unknown parameter '%s'; accepted: compression-level, compression-threads, "
                 "pickle-protocol, compression-min-size, strict, max-decoded-size", bad->name);
        goto out;
    }
    rc = 0;
out:
    mem_free(schemes);
    return rc;
}

static chain_ctx_t *chain_ctx_create(chain_t *ch)
{
    chain_ctx_t *ctx = mem_calloc(1, sizeof(*ctx));
    for (int i = 0; i < ch->nlayers; i++)
        if (ch->layers[i]->ctx_create)
            ctx->layer_ctx[i] = ch->layers[i]->ctx_create(&ch->params);
    buf_init(&ctx->tmp);
    return ctx;
}

static void chain_ctx_destroy(chain_t *ch, chain_ctx_t *ctx)
{
    if (ctx == NULL)
        return;
    for (int i = 0; i < ch->nlayers; i++)
        if (ch->layers[i]->ctx_destroy && ctx->layer_ctx[i])
            ch->layers[i]->ctx_destroy(ctx->layer_ctx[i]);
    buf_deinit(&ctx->tmp);
    mem_free(ctx);
}

chain_t *chain_create(const char *text, size_t max_bulk, char *err, size_t errlen)
{
    url_t u;
    char why[CODEC_ERRLEN + 64];
    chain_t *ch = mem_calloc(1, sizeof(*ch));

    if (url_parse(&u, text, why, sizeof(why)) < 0 || chain_configure(ch, &u, max_bulk, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "serializer '%s': %s", text, why);
        url_free(&u);
        mem_free(ch);
        return NULL;
    }
    url_free(&u);
    ch->url = mem_strdup(text);
    pthread_mutex_init(&ch->lock, NULL);
    ch->main_ctx = chain_ctx_create(ch);
    return ch;
}

void chain_destroy(chain_t *ch)
{
    if (ch == NULL)
        return;
    chain_ctx_destroy(ch, ch->main_ctx);
    while (ch->pool != NULL) {
        chain_ctx_t *c = ch->pool;
        ch->pool = c->next;
        chain_ctx_destroy(ch, c);
    }
    pthread_mutex_destroy(&ch->lock);
    mem_free(ch->url);
    mem_free(ch);
}

int chain_is_null(const chain_t *ch)
{
    return ch->nlayers == 0;
}

const char *chain_url(const chain_t *ch)
{
    return ch->url;
}

size_t chain_max_decoded(const chain_t *ch)
{
    return ch->params.max_decoded;
}

chain_ctx_t *chain_main_ctx(chain_t *ch)
{
    return ch->main_ctx;
}

chain_ctx_t *chain_ctx_get(chain_t *ch)
{
    pthread_mutex_lock(&ch->lock);
    chain_ctx_t *ctx = ch->pool;
    if (ctx != NULL)
        ch->pool = ctx->next;
    pthread_mutex_unlock(&ch->lock);
    return ctx ? ctx : chain_ctx_create(ch);
}

void chain_ctx_put(chain_t *ch, chain_ctx_t *ctx)
{
    pthread_mutex_lock(&ch->lock);
    ctx->next = ch->pool;
    ch->pool = ctx;
    pthread_mutex_unlock(&ch->lock);
}

/*
 * Run the layers over in[0..n), forward or backward. Results alternate between out and ctx->tmp so
 * that the last one lands in out; no layer's input is its own output buffer.
 */
static int chain_run(chain_t *ch, chain_ctx_t *ctx, const codec_params_t *params, int forward, const char *in,
                     size_t n, buf_t *out, char *why)
{
    int nl = ch->nlayers;
    buf_t *bufs[2];
    /* with nl layers, layer i writes to bufs[(nl - 1 - i) % 2] so that the last writes to out */
    bufs[0] = out;
    bufs[1] = &ctx->tmp;
    for (int step = 0; step < nl; step++) {
        int li = forward ? step : nl - 1 - step;
        const codec_t *c = ch->layers[li];
        buf_t *dst = bufs[(nl - 1 - step) % 2];
        buf_reset(dst);
        int rc = forward ? c->encode(ctx->layer_ctx[li], params, in, n, dst, why)
                         : c->decode(ctx->layer_ctx[li], params, in, n, dst, why);
        if (rc != CODEC_OK)
            return rc;
        in = dst->data ? dst->data : "";
        n = dst->len;
        /* Writing, every layer's output but the last is what a layer decodes to when reading: it must
         * fit max-decoded-size, or the value could be stored and never read back. */
        if (forward && step < nl - 1 && n > params->max_decoded) {
            snprintf(why, CODEC_ERRLEN, "%s makes %zu bytes of it, more than max-decoded-size (%zu)",
                     c->name, n, params->max_decoded);
            return CODEC_ETOOBIG;
        }
    }
    if (ctx->tmp.cap > (1u << 20))
        buf_deinit(&ctx->tmp);      /* do not keep a big intermediate buffer per thread */
    return CODEC_OK;
}

/*
 * compression-min-size: a value shorter than min_size is stored as it is, unless it could be taken for
 * the chain's output. Reading cannot know how a value was written, so it decodes whatever decodes; a
 * short value stored as it is must therefore never decode. The last layer's sniff (the compressor's
 * header check: zlib's two header bytes, zstd's magic number) is passed by every value that decodes (or
 * is refused as too big), so a short value that fails it is stored as it is and reads back as it is; a
 * short value that passes it (zlib.compress(b"secret"), a zstd frame, or 1 in ~2000 random strings) is
 * encoded like a long one and reads back as itself through the decoder. Every value the chain writes
 * thus reads back exactly, and what is stored encoded is always in cachetory's format. (cachetory itself
 * has no compression-min-size: a short value stored as it is cannot be read by cachetory in any case.)
 */
int chain_encode(chain_t *ch, chain_ctx_t *ctx, const char *in, size_t n, buf_t *out, char *err)
{
    char why[CODEC_ERRLEN];

    if (ch->nlayers == 0)
        return CHAIN_AS_IS;
    if (n < ch->min_size && !ch->layers[ch->nlayers - 1]->sniff(in, n))
        return CHAIN_AS_IS;
    if (n > ch->params.max_decoded) {
        snprintf(err, CODEC_ERRLEN + 32, "ERR value of %zu bytes is larger than max-decoded-size (%zu): it "
                 "could not be read back", n, ch->params.max_decoded);
        return CHAIN_ERROR;
    }
    why[0] = '\0';
    if (chain_run(ch, ctx, &ch->params, 1, in, n, out, why) != CODEC_OK) {
        snprintf(err, CODEC_ERRLEN + 32, "ERR value refused by the serializer: %s", why);
        return CHAIN_ERROR;
    }
    return CHAIN_OUT;
}

int chain_decode(chain_t *ch, chain_ctx_t *ctx, const char *in, size_t n, buf_t *out, char *err, int *undecoded)
{
    return chain_decode_budget(ch, ctx, in, n, SIZE_MAX, out, err, undecoded);
}

int chain_decode_budget(chain_t *ch, chain_ctx_t *ctx, const char *in, size_t n, size_t budget, buf_t *out,
                        char *err, int *undecoded)
{
    char why[CODEC_ERRLEN];
    codec_params_t params = ch->params;

    *undecoded = 0;
    if (ch->nlayers == 0)
        return CHAIN_AS_IS;
    /* Within the budget, every layer stops at budget bytes as it would at max-decoded-size: a decode that
     * stops there (CODEC_ETOOBIG) is over the budget, anything else is the value's real answer, since a
     * decoder that fails or ends before a limit does the same under a larger one. */
    int limited = budget < params.max_decoded;
    if (limited)
        params.max_decoded = budget;
    why[0] = '\0';
    int rc = chain_run(ch, ctx, &params, 0, in, n, out, why);
    if (rc == CODEC_OK)
        return CHAIN_OUT;
    if (rc == CODEC_ETOOBIG && limited) {
        buf_reset(out);
        return CHAIN_OVER_BUDGET;
    }
    if (rc == CODEC_ETOOBIG) {
        snprintf(err, CODEC_ERRLEN + 32, "ERR stored value decodes past max-decoded-size: %s", why);
        return CHAIN_ERROR;
    }
    /* Not in the chain's format: written as it is (below compression-min-size, or before cachetoryd). */
    if (!ch->strict || n < ch->min_size) {
        *undecoded = 1;
        return CHAIN_AS_IS;
    }
    snprintf(err, CODEC_ERRLEN + 32, "ERR stored value is not in the serializer's format (strict): %s", why);
    return CHAIN_ERROR;
}
