/*
 * codec/chain: parse a chain URL into layers and parameters; run the layers. The codecs describe
 * themselves (codec.h): this file has their table and nothing else of theirs — the schemes, parameters
 * and error texts below are all read from it.
 */
#include "codec/chain.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

/*
 * Every codec, one line each, in the order "unknown scheme" lists their schemes. Parameters are listed
 * (and checked) compressors first, then serializers, each in this order.
 */
static const codec_t *const chain_codecs[] = {
    &codec_null,
    &codec_pickle,
    &codec_json,
    &codec_msgpack,
    &codec_zlib,
    &codec_zstd,
};
#define CHAIN_NCODECS (sizeof(chain_codecs) / sizeof(chain_codecs[0]))
#define CHAIN_MAX_PARAMS 32                 /* distinct codec parameters, all codecs together */

/* The chain's own parameters, after the codecs' in "unknown parameter". */
static const char chain_own_params[] = "compression-min-size, strict, max-decoded-size, dictionary, "
                                       "dictionary-size, dictionary-sample-size, dictionary-retrain-drift";

static const codec_t *chain_codec_by_scheme(const char *scheme)
{
    for (size_t k = 0; k < CHAIN_NCODECS; k++)
        for (const char *const *s = chain_codecs[k]->schemes; *s != NULL; s++)
            if (strcmp(scheme, *s) == 0)
                return chain_codecs[k];
    return NULL;
}

static int chain_has(const chain_t *ch, const codec_t *c)
{
    for (int i = 0; i < ch->nlayers; i++)
        if (ch->layers[i] == c)
            return 1;
    return 0;
}

/* The codecs' parameter rows one name each, in the order they are checked and listed: compressors
 * first, then the others, each in table order; the first row of a name stands for it. */
static size_t chain_param_names(const codec_param_t **rows, size_t max)
{
    size_t n = 0;

    for (int pass = 1; pass >= 0; pass--) {
        for (size_t k = 0; k < CHAIN_NCODECS; k++) {
            const codec_param_t *p = chain_codecs[k]->params;
            if ((chain_codecs[k]->compresses != 0) != pass || p == NULL)
                continue;
            for (; p->name != NULL; p++) {
                size_t i;
                for (i = 0; i < n && strcmp(rows[i]->name, p->name) != 0; i++)
                    ;
                if (i == n && n < max)
                    rows[n++] = p;
            }
        }
    }
    return n;
}

/* codec c's row for the parameter name, or NULL. */
static const codec_param_t *chain_codec_param(const codec_t *c, const char *name)
{
    for (const codec_param_t *p = c->params; p != NULL && p->name != NULL; p++)
        if (strcmp(p->name, name) == 0)
            return p;
    return NULL;
}

static void chain_param_bounds(const codec_param_t *p, long *lo, long *hi)
{
    *lo = p->lo;
    *hi = p->hi;
    if (p->bounds_cb != NULL)
        p->bounds_cb(lo, hi);
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

/* The names of the compressors, for a message: "zlib or zstd" ("a, b or c" for three). */
static void chain_compressor_names(buf_t *b)
{
    size_t n = 0, total = 0;

    for (size_t k = 0; k < CHAIN_NCODECS; k++)
        total += chain_codecs[k]->compresses != 0;
    buf_init(b);
    for (size_t k = 0; k < CHAIN_NCODECS; k++) {
        if (!chain_codecs[k]->compresses)
            continue;
        n++;
        buf_printf(b, "%s%s", n == 1 ? "" : n == total ? " or " : ", ", chain_codecs[k]->name);
    }
    buf_append(b, "", 1);
}

/*
 * The codecs' parameters (codec_param_t): every field at its unset value, then each parameter the URL
 * gives checked against the bounds of the layers that read it (all must accept the value; with no such
 * layer, the first codec of the table that reads it decides), in chain_param_names order.
 */
static int chain_configure_codec_params(chain_t *ch, url_t *u, char *err, size_t errlen)
{
    const codec_param_t *rows[CHAIN_MAX_PARAMS];
    size_t nrows = chain_param_names(rows, CHAIN_MAX_PARAMS);
    char *base = (char *)&ch->params;

    for (size_t k = 0; k < CHAIN_NCODECS; k++)
        for (const codec_param_t *p = chain_codecs[k]->params; p != NULL && p->name != NULL; p++)
            *(int *)(base + p->field) = p->unset;
    for (size_t r = 0; r < nrows; r++) {
        const char *v = url_param(u, rows[r]->name);
        const codec_param_t *alone = NULL, *p;
        long lo = LONG_MIN, hi = LONG_MAX, n;
        int readers = 0;

        if (v == NULL)
            continue;
        for (size_t k = 0; k < CHAIN_NCODECS; k++) {
            if (!chain_has(ch, chain_codecs[k]) || (p = chain_codec_param(chain_codecs[k], rows[r]->name)) == NULL)
                continue;
            long plo, phi;
            chain_param_bounds(p, &plo, &phi);
            lo = plo > lo ? plo : lo;
            hi = phi < hi ? phi : hi;
            alone = p;
            readers++;
        }
        if (readers == 0) {
            alone = rows[r];
            for (size_t k = 0; k < CHAIN_NCODECS; k++)
                if ((p = chain_codec_param(chain_codecs[k], rows[r]->name)) != NULL) {
                    alone = p;
                    break;
                }
            chain_param_bounds(alone, &lo, &hi);
            readers = 1;
        }
        if (parse_int(v, lo, hi, &n) < 0) {
            if (rows[r]->expect != NULL)
                snprintf(err, errlen, "%s '%s': must be %s", rows[r]->name, v, rows[r]->expect);
            else
                snprintf(err, errlen, "%s '%s': must be an integer between %ld and %ld%s", rows[r]->name, v, lo, hi,
                         readers == 1 && alone->alone_note ? alone->alone_note : "");
            return -1;
        }
        *(int *)(base + rows[r]->field) = (int)n;
        if (rows[r]->given >= 0)
            *(int *)(base + rows[r]->given) = 1;
    }
    return 0;
}

/* A size parameter (like 16kb) between lo and hi bytes into *out; v NULL leaves *out as it is. */
static int chain_size_param(const char *name, const char *v, long long lo, long long hi, size_t *out, char *err,
                            size_t errlen)
{
    long long sz;
    if (v == NULL)
        return 0;
    if (config_parse_memory(v, &sz) < 0 || sz < lo || sz > hi) {
        snprintf(err, errlen, "%s '%s': must be a size between %lld and %lld bytes (like 16kb)", name, v, lo, hi);
        return -1;
    }
    *out = (size_t)sz;
    return 0;
}

/*
 * dictionary=PATH: a zstd dictionary file for the chain's zstd layer. dictionary=auto: the chain trains
 * its own (codec.h), with dictionary-size (default 16kb: what measures best on ~1 KB documents; larger
 * ones cost CDict memory and per-value setup for little gain), dictionary-sample-size (default 4mb of
 * sampled values: ~250 times a 16 KB dictionary, above ZDICT's advice of 100) and
 * dictionary-retrain-drift (percent, default 20).
 */
static int chain_load_dictionary(chain_t *ch, url_t *u, char *err, size_t errlen)
{
    const char *v = url_param(u, "dictionary");
    const char *size = url_param(u, "dictionary-size"), *sample = url_param(u, "dictionary-sample-size");
    const char *drift = url_param(u, "dictionary-retrain-drift");
    int is_auto = v != NULL && strcmp(v, "auto") == 0;

    if (!is_auto && (size || sample || drift)) {
        snprintf(err, errlen, "%s: only with dictionary=auto (it sets how cachetoryd trains its dictionaries)",
                 size ? "dictionary-size" : sample ? "dictionary-sample-size" : "dictionary-retrain-drift");
        return -1;
    }
    if (v == NULL)
        return 0;
    if (!chain_has(ch, &codec_zstd)) {
        snprintf(err, errlen, "dictionary: only zstd:// takes a dictionary");
        return -1;
    }
    if (v[0] == '\0') {
        snprintf(err, errlen, "dictionary: give the path of a zstd dictionary file (made by zstd --train), or auto");
        return -1;
    }
    int level = ch->params.level_set ? ch->params.compression_level : 3;
    if (!is_auto) {
        ch->params.dicts = codec_zstd_dicts_load(v, level, err, errlen);
        return ch->params.dicts != NULL ? 0 : -1;
    }
    size_t dict_size = 16u << 10, sample_size = 4u << 20, pct = 20;
    if (chain_size_param("dictionary-size", size, 1024, 1 << 20, &dict_size, err, errlen) < 0 ||
        chain_size_param("dictionary-sample-size", sample, 16 << 10, 256 << 20, &sample_size, err, errlen) < 0)
        return -1;
    if (drift != NULL) {
        char *end;
        errno = 0;
        long d = strtol(drift, &end, 10);
        if (errno || end == drift || *end != '\0' || d < 1 || d > 1000) {
            snprintf(err, errlen, "dictionary-retrain-drift '%s': must be a percentage between 1 and 1000", drift);
            return -1;
        }
        pct = (size_t)d;
    }
    if (sample_size < dict_size * 8) {
        snprintf(err, errlen, "dictionary-sample-size (%zu bytes) must be at least 8 times dictionary-size (%zu): "
                 "a dictionary is learnt from many values", sample_size, dict_size);
        return -1;
    }
    ch->params.dicts = codec_zstd_dicts_create(level);
    codec_zstd_dicts_auto(ch->params.dicts, dict_size, sample_size, (double)pct / 100.0);
    return 0;
}

/* Layers from the scheme ("msgpack+zstd"), parameters from the query; every error names what it found
 * and what is accepted. */
static int chain_configure(chain_t *ch, url_t *u, size_t max_bulk, char *err, size_t errlen)
{
    char *schemes = mem_strdup(u->scheme), *save = NULL;
    const char *v;
    int rc = -1;

    for (char *s = strtok_r(schemes, "+", &save); s != NULL; s = strtok_r(NULL, "+", &save)) {
        const codec_t *c = chain_codec_by_scheme(s);
        if (c == NULL) {
            buf_t known;
            buf_init(&known);
            for (size_t k = 0; k < CHAIN_NCODECS; k++)
                for (const char *const *sc = chain_codecs[k]->schemes; *sc != NULL; sc++)
                    buf_printf(&known, "%s%s", known.len ? ", " : "", *sc);
            snprintf(err, errlen, "unknown scheme '%s'; accepted: %.*s, joined with '+'", s, (int)known.len,
                     known.data);
            buf_deinit(&known);
            goto out;
        }
        if (c->encode == NULL)
            continue;
        if (ch->nlayers == CHAIN_MAX_LAYERS) {
            snprintf(err, errlen, "more than %d layers", CHAIN_MAX_LAYERS);
            goto out;
        }
        ch->layers[ch->nlayers++] = c;
    }
    if (u->host[0] != '\0' || u->port >= 0 || (u->path[0] != '\0' && strcmp(u->path, "/") != 0) || u->user) {
        snprintf(err, errlen, "a serializer URL takes no host, port or path, only ?parameters");
        goto out;
    }

    ch->params.max_decoded = max_bulk;
    if (chain_configure_codec_params(ch, u, err, errlen) < 0)
        goto out;
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
    if (ch->min_size > 0 && (ch->nlayers == 0 || !ch->layers[ch->nlayers - 1]->compresses)) {
        buf_t names;
        chain_compressor_names(&names);
        snprintf(err, errlen, "compression-min-size needs a chain that ends with a compressor (%s): "
                 "a short value stored as it is could not be told apart from a serialized one", names.data);
        buf_deinit(&names);
        goto out;
    }
    if (chain_load_dictionary(ch, u, err, errlen) < 0)
        goto out;
    if ((v = url_param(u, "strict")) != NULL && parse_bool(v, &ch->strict) < 0) {
        snprintf(err, errlen, "strict '%s': must be yes or no", v);
        goto out;
    }
    const url_param_t *bad = url_unused_param(u);
    if (bad != NULL) {
        const codec_param_t *rows[CHAIN_MAX_PARAMS];
        size_t nrows = chain_param_names(rows, CHAIN_MAX_PARAMS);
        buf_t known;
        buf_init(&known);
        for (size_t i = 0; i < nrows; i++)
            buf_printf(&known, "%s, ", rows[i]->name);
        snprintf(err, errlen, "unknown parameter '%s'; accepted: %.*s%s", bad->name, (int)known.len,
                 known.data ? known.data : "", chain_own_params);
        buf_deinit(&known);
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
        codec_zstd_dicts_free(ch->params.dicts);
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
    codec_zstd_dicts_free(ch->params.dicts);
    mem_free(ch->url);
    mem_free(ch);
}

const codec_dicts_t *chain_dicts(const chain_t *ch)
{
    return ch->params.dicts;
}

codec_dicts_t *chain_dicts_mut(chain_t *ch)
{
    return ch->params.dicts;
}

unsigned chain_missing_dict(const chain_t *ch, const char *in, size_t n)
{
    if (ch->params.dicts == NULL || ch->nlayers == 0 || ch->layers[ch->nlayers - 1] != &codec_zstd)
        return 0;
    unsigned id = codec_zstd_frame_dict_id(in, n);
    return id != 0 && !codec_zstd_dicts_has(ch->params.dicts, id) ? id : 0;
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
static int chain_run_layers(chain_t *ch, chain_ctx_t *ctx, const codec_params_t *params, int forward, int observe,
                            const char *in, size_t n, buf_t *out, char *why);

static int chain_run(chain_t *ch, chain_ctx_t *ctx, const codec_params_t *params, int forward, const char *in,
                     size_t n, buf_t *out, char *why)
{
    /* dictionary=auto learns from what the zstd layer compresses on the loop thread (its sample is the
     * loop's alone; values large enough for the thread pool teach a small-value dictionary little) */
    int observe = forward && params->dicts != NULL && ctx == ch->main_ctx;
    return chain_run_layers(ch, ctx, params, forward, observe, in, n, out, why);
}

static int chain_run_layers(chain_t *ch, chain_ctx_t *ctx, const codec_params_t *params, int forward, int observe,
                            const char *in, size_t n, buf_t *out, char *why)
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
        if (observe && c == &codec_zstd)
            codec_zstd_dicts_observe(params->dicts, in, n, dst->len);
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
    /* In the format, but its dictionary is not here (yet): mixed mode answers the stored value, and says
     * why, so that nothing decodes it, modifies and stores it as if it were plain. */
    if (rc == CODEC_ENODICT && !ch->strict) {
        *undecoded = CHAIN_UNDECODED_NODICT;
        return CHAIN_AS_IS;
    }
    if (rc == CODEC_ENODICT) {
        snprintf(err, CODEC_ERRLEN + 32, "ERR stored value cannot be decoded: %s", why);
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
