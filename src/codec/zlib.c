/*
 * codec/zlib: cachetory's ZlibCompressor format — the zlib container (RFC 1950) exactly as compress2()
 * writes it, which is also what Python's zlib.compress(data, level) writes for the values it sees.
 *
 * A context holds two z_streams, one for deflate and one for inflate (a z_stream is one or the other),
 * each set up on first use and then reset for every value, so a value costs no deflateInit/inflateInit.
 * zlib allocates through mem_calloc: memory policy is the process's, not zlib's (no Z_MEM_ERROR path).
 *
 * Decoding never produces more than params->max_decoded bytes: the output grows geometrically up to that
 * limit and no further, and one probe byte past it decides between "ends exactly here" and CODEC_ETOOBIG.
 */
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "codec/codec.h"
#include "util/mem.h"

/* First output reservation of a decode when the input gives no better hint (it is then 4 x the input). */
#define ZLIB_DECODE_MIN_GUESS 4096

typedef struct zlib_ctx {
    z_stream def;       /* deflate state; valid when def_ready */
    z_stream inf;       /* inflate state; valid when inf_ready */
    int def_level;      /* the level def was set up with */
    int def_ready;      /* deflateInit2 succeeded (deflateEnd is owed) */
    int inf_ready;      /* inflateInit succeeded (inflateEnd is owed) */
} zlib_ctx_t;

static voidpf zlib_alloc_cb(voidpf opaque, uInt items, uInt size)
{
    return mem_calloc(items, size);
}

static void zlib_free_cb(voidpf opaque, voidpf ptr)
{
    mem_free(ptr);
}

static void zlib_ctx_init(zlib_ctx_t *c)
{
    memset(c, 0, sizeof(*c));
}

static void zlib_ctx_deinit(zlib_ctx_t *c)
{
    if (c->def_ready)
        deflateEnd(&c->def);
    if (c->inf_ready)
        inflateEnd(&c->inf);
    c->def_ready = c->inf_ready = 0;
}

/* The level a chain's parameters ask for: -1 (zlib's default, = 6) unless compression-level was given. */
static int zlib_level(const codec_params_t *p)
{
    return p->level_set ? p->compression_level : Z_DEFAULT_COMPRESSION;
}

/*
 * Deflate state for level: reset the one we have, or set one up (again, if the level changed — a chain's
 * level is fixed, so in practice this happens once per context). The parameters are deflateInit's
 * (window 15, memLevel 8, default strategy), the ones compress2() and Python's zlib.compress use: the
 * same parameters give the same bytes. 0, or -1 if zlib refuses the level.
 */
static int zlib_deflate_setup(zlib_ctx_t *c, int level)
{
    if (c->def_ready && c->def_level == level)
        return deflateReset(&c->def) == Z_OK ? 0 : -1;
    if (c->def_ready) {
        deflateEnd(&c->def);
        c->def_ready = 0;
    }
    memset(&c->def, 0, sizeof(c->def));
    c->def.zalloc = zlib_alloc_cb;
    c->def.zfree = zlib_free_cb;
    if (deflateInit2(&c->def, level, Z_DEFLATED, MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    c->def_level = level;
    c->def_ready = 1;
    return 0;
}

static int zlib_inflate_setup(zlib_ctx_t *c)
{
    if (c->inf_ready)
        return inflateReset(&c->inf) == Z_OK ? 0 : -1;
    memset(&c->inf, 0, sizeof(c->inf));
    c->inf.zalloc = zlib_alloc_cb;
    c->inf.zfree = zlib_free_cb;
    if (inflateInit(&c->inf) != Z_OK)
        return -1;
    c->inf_ready = 1;
    return 0;
}

/* Make b's block exactly cap bytes if it is smaller (buf_reserve would round up, past our limits). */
static void zlib_buf_grow_to(buf_t *b, size_t cap)
{
    if (cap <= b->cap)
        return;
    b->data = mem_realloc(b->data, cap);
    b->cap = cap;
}

static uInt zlib_chunk(size_t n)
{
    return n > UINT_MAX ? UINT_MAX : (uInt)n;
}

/*
 * Compress in[0..n) into out as compress2(level) does (the level of p, see zlib_level): one output block of compressBound(n) bytes and
 * the same sequence of deflate() calls (Z_FINISH once all input is given), so that even level 0, whose
 * stored-block sizes depend on the output room, gives compress2's bytes. The block is allocated exactly
 * (no rounding up) and not shrunk afterwards: it is the caller's buffer, reused from value to value.
 */
static int zlib_encode_ctx(void *ctx, const codec_params_t *p, const char *in, size_t n, buf_t *out, char *err)
{
    zlib_ctx_t *c = ctx;
    z_stream *s = &c->def;
    int level = zlib_level(p);
    int rc;

    if (level < Z_DEFAULT_COMPRESSION || level > Z_BEST_COMPRESSION) {
        snprintf(err, CODEC_ERRLEN, "zlib: compression level %d is not between -1 and 9", level);
        return CODEC_EINPUT;
    }
    if (zlib_deflate_setup(c, level) < 0) {
        snprintf(err, CODEC_ERRLEN, "zlib: cannot set up the compressor (level %d)", level);
        return CODEC_EINPUT;
    }

    size_t bound = compressBound(n);
    zlib_buf_grow_to(out, out->len + bound);

    size_t in_left = n, out_left = bound;
    s->next_in = (z_const Bytef *)in;
    s->avail_in = 0;
    s->next_out = (Bytef *)out->data + out->len;
    s->avail_out = 0;
    do {
        if (s->avail_out == 0) {
            s->avail_out = zlib_chunk(out_left);
            out_left -= s->avail_out;
        }
        if (s->avail_in == 0) {
            s->avail_in = zlib_chunk(in_left);
            in_left -= s->avail_in;
        }
        rc = deflate(s, in_left ? Z_NO_FLUSH : Z_FINISH);
    } while (rc == Z_OK);
    if (rc != Z_STREAM_END) {
        /* compressBound() is documented to be enough: this is a zlib failure, not a property of the value */
        snprintf(err, CODEC_ERRLEN, "zlib: compression failed (%s)", s->msg ? s->msg : zError(rc));
        return CODEC_EINPUT;
    }
    out->len = (size_t)((char *)s->next_out - out->data);
    return CODEC_OK;
}

/*
 * The two header bytes of RFC 1950: CM 8 (deflate), CINFO <= 7 (window at most 32 KiB), FCHECK making
 * CMF*256+FLG a multiple of 31, and no preset dictionary (compress2 never writes one, and we have none).
 */
static int zlib_check_header(const unsigned char *in, size_t n, char *err)
{
    if (n < 2 || (in[0] & 0x0f) != Z_DEFLATED || (in[0] >> 4) > 7 || ((in[0] << 8) | in[1]) % 31 != 0) {
        snprintf(err, CODEC_ERRLEN, "zlib: not a zlib stream (bad header)");
        return CODEC_EFORMAT;
    }
    if (in[1] & 0x20) {
        snprintf(err, CODEC_ERRLEN, "zlib: not a zlib stream (needs a preset dictionary)");
        return CODEC_EFORMAT;
    }
    return CODEC_OK;
}

/*
 * Decompress in[0..n) into out. The stream must be exactly the input: its header valid, its Adler-32
 * right (inflate checks it), and nothing after its end. Output room grows from a guess (4 x the input)
 * by doubling, never past limit (p->max_decoded); when the output reaches limit, a one-byte probe tells
 * a stream that ends exactly there from one that would go on (CODEC_ETOOBIG). So
 * out->cap <= max(its old cap, limit).
 */
static int zlib_decode_ctx(void *ctx, const codec_params_t *p, const char *in, size_t n, buf_t *out, char *err)
{
    zlib_ctx_t *c = ctx;
    z_stream *s = &c->inf;
    size_t limit = p->max_decoded;
    unsigned char probe;
    int probing = 0, rc;

    rc = zlib_check_header((const unsigned char *)in, n, err);
    if (rc != CODEC_OK)
        return rc;
    if (zlib_inflate_setup(c) < 0) {
        snprintf(err, CODEC_ERRLEN, "zlib: cannot set up the decompressor");
        return CODEC_EFORMAT;
    }

    size_t base = out->len;             /* out is emptied by the caller; be exact if it is not */
    size_t guess = n > SIZE_MAX / 4 ? SIZE_MAX : n * 4;
    if (guess < ZLIB_DECODE_MIN_GUESS)
        guess = ZLIB_DECODE_MIN_GUESS;
    size_t in_left = n;

    s->next_in = (z_const Bytef *)in;
    s->avail_in = 0;
    s->next_out = NULL;                 /* set below, once out has a block */
    s->avail_out = 0;
    for (;;) {
        if (s->avail_in == 0 && in_left > 0) {
            s->avail_in = zlib_chunk(in_left);
            in_left -= s->avail_in;
        }
        if (s->avail_out == 0) {
            size_t produced = out->len - base;
            if (produced == limit) {
                probing = 1;
                s->next_out = &probe;
                s->avail_out = 1;
            } else {
                size_t room = out->cap - out->len;
                if (room == 0) {
                    size_t want = produced == 0 ? guess : produced * 2;
                    if (want > limit || want < produced)
                        want = limit;
                    zlib_buf_grow_to(out, base + want);
                    room = out->cap - out->len;
                }
                if (room > limit - produced)
                    room = limit - produced;
                s->next_out = (Bytef *)out->data + out->len;
                s->avail_out = zlib_chunk(room);
            }
        }

        Bytef *before = s->next_out;
        rc = inflate(s, Z_NO_FLUSH);
        if (probing) {
            if (s->avail_out == 0) {
                snprintf(err, CODEC_ERRLEN, "zlib: data decompresses to more than the largest decoded value "
                         "(%zu bytes)", limit);
                return CODEC_ETOOBIG;
            }
        } else {
            out->len += (size_t)(s->next_out - before);
        }

        if (rc == Z_STREAM_END)
            break;
        if (rc == Z_DATA_ERROR || rc == Z_NEED_DICT) {
            snprintf(err, CODEC_ERRLEN, "zlib: data is corrupt (%s)", s->msg ? s->msg : "needs a dictionary");
            return CODEC_EFORMAT;
        }
        if (rc == Z_BUF_ERROR && s->avail_in == 0 && in_left == 0) {
            /* no progress with all input given: the stream stops before its end */
            snprintf(err, CODEC_ERRLEN, "zlib: data is truncated (the stream has no end)");
            return CODEC_EFORMAT;
        }
        if (rc != Z_OK && (rc != Z_BUF_ERROR || (s->avail_in > 0 && s->avail_out > 0))) {
            /* (Z_BUF_ERROR with input and room left cannot happen; never loop on it) */
            snprintf(err, CODEC_ERRLEN, "zlib: decompression failed (%s)", s->msg ? s->msg : zError(rc));
            return CODEC_EFORMAT;
        }
    }
    size_t trailing = s->avail_in + in_left;
    if (trailing > 0) {
        snprintf(err, CODEC_ERRLEN, "zlib: data after the end of the stream (%zu bytes)", trailing);
        return CODEC_EFORMAT;
    }
    return CODEC_OK;
}

static void *zlib_ctx_create(const codec_params_t *p)
{
    zlib_ctx_t *c = mem_alloc(sizeof(*c));
    zlib_ctx_init(c);
    return c;
}

static void zlib_ctx_destroy(void *ctx)
{
    if (ctx == NULL)
        return;
    zlib_ctx_deinit(ctx);
    mem_free(ctx);
}

static int zlib_encode(void *ctx, const codec_params_t *p, const char *in, size_t n, buf_t *out, char *err)
{
    return codec_call_ctx(&codec_zlib, zlib_encode_ctx, ctx, p, in, n, out, err);
}

static int zlib_decode(void *ctx, const codec_params_t *p, const char *in, size_t n, buf_t *out, char *err)
{
    return codec_call_ctx(&codec_zlib, zlib_decode_ctx, ctx, p, in, n, out, err);
}

/* The header check zlib_decode_ctx starts with: what fails it never decodes. */
static int zlib_sniff(const char *in, size_t n)
{
    char err[CODEC_ERRLEN];
    return zlib_check_header((const unsigned char *)in, n, err) == CODEC_OK;
}

/* compression-level: -1 (zlib's default, 6) to 9. */
static const codec_param_t zlib_params[] = {
    { .name = "compression-level", .field = offsetof(codec_params_t, compression_level),
      .given = offsetof(codec_params_t, level_set), .unset = Z_DEFAULT_COMPRESSION,
      .lo = Z_DEFAULT_COMPRESSION, .hi = Z_BEST_COMPRESSION, .alone_note = " (zlib)" },
    { .name = NULL },
};

const codec_t codec_zlib = {
    .name = "zlib",
    .schemes = (const char *const[]){ "zlib", NULL },
    .compresses = 1,
    .params = zlib_params,
    .ctx_create = zlib_ctx_create,
    .ctx_destroy = zlib_ctx_destroy,
    .encode = zlib_encode,
    .decode = zlib_decode,
    .sniff = zlib_sniff,
};
