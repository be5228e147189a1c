/*
 * codec/zstd: cachetory's ZstdCompressor format — one standard Zstandard frame (RFC 8878) with the
 * content size in its header and no checksum, as a one-shot ZSTD_compress2() writes it (and so python-zstd's
 * zstd.compress(data, level, threads)).
 *
 * A context holds a ZSTD_CCtx and a ZSTD_DCtx, each created on first use and reused for every value
 * (ZSTD_CCtx_reset / ZSTD_DCtx_reset between values). Only the stable zstd API is used: the program links
 * against the shared libzstd, whose experimental API may change from one version to the next.
 *
 * Decoding never produces more than params->max_decoded bytes, and never lets a frame size the memory:
 *   - a frame that declares its content size (every frame cachetory or cachetoryd writes) is refused at
 *     once if that size is over the limit; otherwise it is decoded in one shot into a block of exactly
 *     that size (the one-shot decoder uses the output as its window: nothing else scales with the frame);
 *   - a frame without a content size (a streaming producer: the zstd CLI reading a pipe,
 *     ZSTD_compressStream) is streamed into an output that grows up to the limit and no further. The
 *     streaming decoder allocates the frame's window, so the window is bounded too (zstd_window_log_max).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#include <zstd_errors.h>
#include <errno.h>

#include "codec/zstd_int.h"
#include "util/mem.h"

/* cachetory's default level (ZSTD_CLEVEL_DEFAULT): used when compression-level is not given */
#define ZSTD_CODEC_DEFAULT_LEVEL 3

/*
 * Window limits for frames without a content size (see zstd_window_log_max):
 *   floor 2^23 (8 MiB): the largest window zstd picks by itself at levels up to 19 for input of unknown
 *     size, so any such frame from a standard producer decodes, whatever max-decoded-size is;
 *   ceiling 2^27 (128 MiB): zstd's own default decoder limit (ZSTD_WINDOWLOG_LIMIT_DEFAULT); frames with
 *     larger windows need --long / --memory on the zstd CLI too.
 */
#define ZSTD_CODEC_WINDOW_LOG_FLOOR 23
#define ZSTD_CODEC_WINDOW_LOG_CEIL  27

/* First output reservation of a streaming decode when the input gives no better hint (then 4 x input). */
#define ZSTD_CODEC_DECODE_MIN_GUESS 4096

typedef struct zstd_ctx {
    ZSTD_CCtx *cctx;    /* created on first encode */
    ZSTD_DCtx *dctx;    /* created on first decode */
    const ZSTD_CDict *c_dict;   /* the dictionary cctx references (NULL none) */
    int c_level;        /* compression level cctx holds, when c_params_set */
    int c_workers;      /* nbWorkers cctx holds, when c_params_set */
    int c_params_set;   /* cctx holds our parameters: a value needs only a session reset */
    int d_window_log;   /* windowLogMax dctx holds (0: not set yet) */
} zstd_ctx_t;

/* Like mem_alloc: when the C library has no memory left for a context, stop (see util/mem.h). */
static void zstd_oom(const char *what)
{
    fprintf(stderr, "cachetoryd: out of memory creating a %s\n", what);
    abort();
}

static void zstd_ctx_init(zstd_ctx_t *c)
{
    memset(c, 0, sizeof(*c));
}

static void zstd_ctx_deinit(zstd_ctx_t *c)
{
    ZSTD_freeCCtx(c->cctx);
    ZSTD_freeDCtx(c->dctx);
    zstd_ctx_init(c);
}

/* Make b's block exactly cap bytes if it is smaller (buf_reserve would round up, past our limits). */
static void zstd_buf_grow_to(buf_t *b, size_t cap)
{
    if (cap <= b->cap)
        return;
    b->data = mem_realloc(b->data, cap);
    b->cap = cap;
}

/*
 * Point cctx at level / workers with the frame options of the format (content size on, checksum off).
 * A frame made with a dictionary carries a checksum (as the zstd CLI writes them): cachetory cannot read
 * those frames anyway, and a dictionary that is not the one the frame was made with — cut short or
 * replaced upstream, under the same ID — then fails the check instead of decoding to other bytes.
 * A chain's parameters are fixed, so the parameters are set once and then only the session is reset.
 * Workers only change how the frame is computed, not its format: a libzstd built without threads
 * refuses nbWorkers >= 1, and then compresses on the calling thread.
 */
static int zstd_cctx_setup(zstd_ctx_t *c, int level, int workers, const ZSTD_CDict *dict, char *err)
{
    if (c->cctx == NULL && (c->cctx = ZSTD_createCCtx()) == NULL)
        zstd_oom("ZSTD_CCtx");
    if (c->c_params_set && c->c_level == level && c->c_workers == workers && c->c_dict == dict) {
        ZSTD_CCtx_reset(c->cctx, ZSTD_reset_session_only);
        return 0;
    }
    c->c_params_set = 0;
    ZSTD_CCtx_reset(c->cctx, ZSTD_reset_session_and_parameters);
    size_t r = ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_compressionLevel, level);
    if (!ZSTD_isError(r))
        r = ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_contentSizeFlag, 1);
    if (!ZSTD_isError(r))
        r = ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_checksumFlag, dict != NULL);
    if (ZSTD_isError(r)) {
        snprintf(err, CODEC_ERRLEN, "zstd: cannot set up the compressor (%s)", ZSTD_getErrorName(r));
        return -1;
    }
    if (workers > 0)
        (void)ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_nbWorkers, workers);
    /* a dictionary's frames carry its ID (ZSTD_c_dictIDFlag is on by default): a reader picks it by that */
    r = ZSTD_CCtx_refCDict(c->cctx, dict);
    if (ZSTD_isError(r)) {
        snprintf(err, CODEC_ERRLEN, "zstd: cannot use the dictionary (%s)", ZSTD_getErrorName(r));
        return -1;
    }
    c->c_dict = dict;
    c->c_level = level;
    c->c_workers = workers;
    c->c_params_set = 1;
    return 0;
}

/*
 * Compress in[0..n) into out as one frame, in one shot (ZSTD_compress2 knows n, so the frame header
 * carries it). The output block is ZSTD_compressBound(n) bytes, allocated exactly.
 */
static int zstd_encode_ctx(void *ctx, const codec_params_t *p, const char *in, size_t n, buf_t *out, char *err)
{
    zstd_ctx_t *c = ctx;
    int level = p->level_set ? p->compression_level : ZSTD_CODEC_DEFAULT_LEVEL;

    if (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel()) {
        snprintf(err, CODEC_ERRLEN, "zstd: compression level %d is not between %d and %d", level,
                 ZSTD_minCLevel(), ZSTD_maxCLevel());
        return CODEC_EINPUT;
    }
    size_t bound = ZSTD_compressBound(n);
    if (ZSTD_isError(bound) || bound == 0) {
        snprintf(err, CODEC_ERRLEN, "zstd: a value of %zu bytes is too large to compress", n);
        return CODEC_EINPUT;
    }
    const zstd_dict_t *d = zstd_dict_encoding(p->dicts);
    const ZSTD_CDict *dict = d != NULL ? d->cdict : NULL;
    if (zstd_cctx_setup(c, level, p->compression_threads, dict, err) < 0)
        return CODEC_EINPUT;

    zstd_buf_grow_to(out, out->len + bound);
    size_t r = ZSTD_compress2(c->cctx, out->data + out->len, bound, n ? in : NULL, n);
    if (ZSTD_isError(r)) {
        /* bound is always enough: this is a zstd failure, not a property of the value */
        c->c_params_set = 0;
        snprintf(err, CODEC_ERRLEN, "zstd: compression failed (%s)", ZSTD_getErrorName(r));
        return CODEC_EINPUT;
    }
    out->len += r;
    return CODEC_OK;
}

/*
 * windowLogMax for a limit of max_decoded bytes: what max_decoded needs (a frame cannot refer further back
 * than what it has produced), but at least ZSTD_CODEC_WINDOW_LOG_FLOOR so that ordinary streaming frames
 * of small values decode under a small limit, and at most ZSTD_CODEC_WINDOW_LOG_CEIL so that a 20-byte
 * frame cannot make the decoder reserve gigabytes. Only frames without a content size are affected: the
 * one-shot decoder used for the others allocates no window. So a decode costs at most out's limit plus
 * 2^27 bytes and two blocks of address space, of which only what the frame really produces is touched.
 */
static int zstd_window_log_max(size_t limit)
{
    int log = ZSTD_CODEC_WINDOW_LOG_FLOOR;
    while (log < ZSTD_CODEC_WINDOW_LOG_CEIL && ((size_t)1 << log) < limit)
        log++;
    return log;
}

static void zstd_dctx_setup(zstd_ctx_t *c, size_t limit)
{
    int log = zstd_window_log_max(limit);

    if (c->dctx == NULL && (c->dctx = ZSTD_createDCtx()) == NULL)
        zstd_oom("ZSTD_DCtx");
    ZSTD_DCtx_reset(c->dctx, ZSTD_reset_session_only);    /* also ends a stream an error left open */
    if (c->d_window_log != log) {
        ZSTD_DCtx_setParameter(c->dctx, ZSTD_d_windowLogMax, log);
        c->d_window_log = log;
    }
}

static int zstd_too_big(size_t limit, char *err)
{
    snprintf(err, CODEC_ERRLEN, "zstd: data decompresses to more than the largest decoded value (%zu bytes)",
             limit);
    return CODEC_ETOOBIG;
}

/* A decoder error: a window over our limit is a refusal (CODEC_ETOOBIG), anything else damage. */
static int zstd_decode_error(size_t r, int window_log, char *err)
{
    if (ZSTD_getErrorCode(r) == ZSTD_error_frameParameter_windowTooLarge) {
        snprintf(err, CODEC_ERRLEN, "zstd: frame needs a window larger than the decoder allows (%zu bytes)",
                 (size_t)1 << window_log);
        return CODEC_ETOOBIG;
    }
    snprintf(err, CODEC_ERRLEN, "zstd: data is corrupt (%s)", ZSTD_getErrorName(r));
    return CODEC_EFORMAT;
}

/*
 * The window a frame without a content size declares (RFC 8878 3.1.1.1.2: such a frame is never single
 * segment, so its Window_Descriptor follows the Frame_Header_Descriptor; the header was checked).
 */
static unsigned long long zstd_stream_window(const unsigned char *frame)
{
    unsigned wd = frame[5];
    unsigned long long base = 1ULL << (10 + (wd >> 3));
    return base + base / 8 * (wd & 7);
}

/*
 * Stream a frame without a content size into out. Output room grows from a guess (4 x the input) by
 * doubling, never past limit; when the output reaches limit, a one-byte probe tells a frame that ends
 * exactly there from one that would go on (CODEC_ETOOBIG). So out->cap <= max(its old cap, limit).
 */
static int zstd_decode_stream(zstd_ctx_t *c, size_t limit, const char *in, size_t n, buf_t *out, char *err)
{
    ZSTD_inBuffer ib = {in, n, 0};
    unsigned char probe;
    size_t base = out->len;
    size_t guess = n > SIZE_MAX / 4 ? SIZE_MAX : n * 4;

    if (guess < ZSTD_CODEC_DECODE_MIN_GUESS)
        guess = ZSTD_CODEC_DECODE_MIN_GUESS;
    for (;;) {
        size_t produced = out->len - base;
        int probing = produced == limit;
        ZSTD_outBuffer ob = {&probe, 1, 0};

        if (!probing) {
            if (out->cap == out->len) {
                size_t want = produced == 0 ? guess : produced * 2;
                if (want > limit || want < produced)
                    want = limit;
                zstd_buf_grow_to(out, base + want);
            }
            ob.dst = out->data + out->len;
            ob.size = out->cap - out->len;
            if (ob.size > limit - produced)
                ob.size = limit - produced;
        }
        size_t in_before = ib.pos;
        size_t r = ZSTD_decompressStream(c->dctx, &ob, &ib);
        if (ZSTD_isError(r))
            return zstd_decode_error(r, c->d_window_log, err);
        if (probing && ob.pos > 0)
            return zstd_too_big(limit, err);
        if (!probing)
            out->len += ob.pos;
        if (r == 0)
            break;                      /* the frame is complete and flushed */
        if (ob.pos < ob.size && (ib.pos == ib.size || ib.pos == in_before)) {
            /* room left but nothing more to decode: the frame stops before its end */
            snprintf(err, CODEC_ERRLEN, "zstd: data is truncated (the frame has no end)");
            return CODEC_EFORMAT;
        }
    }
    if (ib.pos != ib.size) {
        snprintf(err, CODEC_ERRLEN, "zstd: data after the end of the frame (%zu bytes)", ib.size - ib.pos);
        return CODEC_EFORMAT;
    }
    return CODEC_OK;
}

/* The first check of zstd_decode_ctx: a standard frame's magic number (skippable frames are refused). */
static int zstd_sniff(const char *in, size_t n)
{
    const unsigned char *u = (const unsigned char *)in;
    return n >= 4 && ((uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24) ==
                     ZSTD_MAGICNUMBER;
}

/*
 * Decode in[0..n): exactly one standard frame, nothing before or after it. Checks, in order: the magic;
 * the frame header; a declared size over the limit (CODEC_ETOOBIG before anything is allocated, even if
 * the rest of the frame is damaged or missing: a bomb gets no memory); the frame's extent (its blocks
 * must end exactly at the end of the input). Then a one-shot decode into exactly the declared size, or a
 * bounded streaming decode when there is none. limit is p->max_decoded.
 */
/*
 * A frame naming a dictionary this daemon has does not decode with it: the dictionary (cut short or
 * replaced upstream) or the value is damaged. Not a value in another format that mixed mode could hand
 * back for a read-modify-write to change: the same outcome as a dictionary not here (CODEC_ENODICT).
 */
static int zstd_dict_damaged(codec_dicts_t *ds, unsigned id, char *err)
{
    if (ds != NULL)
        __atomic_add_fetch(&ds->unknown, 1, __ATOMIC_RELAXED);
    char why[64];
    snprintf(why, sizeof(why), "%s", strncmp(err, "zstd: ", 6) == 0 ? err + 6 : err);
    snprintf(err, CODEC_ERRLEN, "zstd: dictionary ID %u does not decode the value, one of them is damaged (%s)", id,
             why);
    return CODEC_ENODICT;
}

static int zstd_decode_ctx(void *ctx, const codec_params_t *p, const char *in, size_t n, buf_t *out, char *err)
{
    zstd_ctx_t *c = ctx;
    size_t limit = p->max_decoded;
    const unsigned char *u = (const unsigned char *)in;

    if (!zstd_sniff(in, n)) {
        snprintf(err, CODEC_ERRLEN, "zstd: not a zstd frame (bad magic)");
        return CODEC_EFORMAT;
    }
    unsigned long long declared = ZSTD_getFrameContentSize(in, n);
    if (declared == ZSTD_CONTENTSIZE_ERROR) {
        snprintf(err, CODEC_ERRLEN, "zstd: frame header is truncated or invalid");
        return CODEC_EFORMAT;
    }
    if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared > limit) {
        snprintf(err, CODEC_ERRLEN, "zstd: frame declares %llu bytes, more than the largest decoded value (%zu)",
                 declared, limit);
        return CODEC_ETOOBIG;
    }
    size_t extent = ZSTD_findFrameCompressedSize(in, n);
    if (ZSTD_isError(extent)) {
        snprintf(err, CODEC_ERRLEN, "zstd: frame is truncated or corrupt (%s)", ZSTD_getErrorName(extent));
        return CODEC_EFORMAT;
    }
    if (extent != n) {
        snprintf(err, CODEC_ERRLEN, "zstd: data after the end of the frame (%zu bytes)", n - extent);
        return CODEC_EFORMAT;
    }

    const ZSTD_DDict *ddict = NULL;
    unsigned id = ZSTD_getDictID_fromFrame(in, n);
    if (id != 0) {
        const zstd_dict_t *d = zstd_dict_find(p->dicts, id);
        if (d == NULL) {
            if (p->dicts != NULL)
                __atomic_add_fetch(&p->dicts->unknown, 1, __ATOMIC_RELAXED);
            snprintf(err, CODEC_ERRLEN, "zstd: the value was compressed with dictionary ID %u, which this daemon "
                     "does not have", id);
            return CODEC_ENODICT;
        }
        ddict = d->ddict;
    }

    zstd_dctx_setup(c, limit);
    if (declared == ZSTD_CONTENTSIZE_UNKNOWN) {
        ZSTD_DCtx_refDDict(c->dctx, ddict);
        int rc = zstd_decode_stream(c, limit, in, n, out, err);
        if (c->dctx != NULL)
            ZSTD_DCtx_refDDict(c->dctx, NULL);      /* the next frame may name none */
        if (rc == CODEC_EFORMAT && id != 0)
            rc = zstd_dict_damaged(p->dicts, id, err);
        /* The streaming decoder keeps its window buffer for the next frame. Past the floor that is an
         * unusual frame: give the memory back rather than keep it in every thread's context. */
        if (zstd_stream_window(u) > (1ULL << ZSTD_CODEC_WINDOW_LOG_FLOOR)) {
            ZSTD_freeDCtx(c->dctx);
            c->dctx = NULL;
            c->d_window_log = 0;
        }
        return rc;
    }

    size_t size = (size_t)declared;
    char empty;
    zstd_buf_grow_to(out, out->len + size);
    char *dst = size ? out->data + out->len : &empty;
    size_t r = ZSTD_decompress_usingDDict(c->dctx, dst, size, in, n, ddict);
    if (ZSTD_isError(r)) {
        int rc = zstd_decode_error(r, c->d_window_log, err);
        return rc == CODEC_EFORMAT && id != 0 ? zstd_dict_damaged(p->dicts, id, err) : rc;
    }
    if (r != size) {
        /* (libzstd checks this itself; an invariant worth keeping in release builds) */
        snprintf(err, CODEC_ERRLEN, "zstd: frame declares %zu bytes but holds %zu", size, r);
        return CODEC_EFORMAT;
    }
    out->len += size;
    return CODEC_OK;
}

static void *zstd_ctx_create(const codec_params_t *p)
{
    zstd_ctx_t *c = mem_alloc(sizeof(*c));
    zstd_ctx_init(c);
    return c;
}

static void zstd_ctx_destroy(void *ctx)
{
    if (ctx == NULL)
        return;
    zstd_ctx_deinit(ctx);
    mem_free(ctx);
}

static int zstd_encode(void *ctx, const codec_params_t *p, const char *in, size_t n, buf_t *out, char *err)
{
    return codec_call_ctx(&codec_zstd, zstd_encode_ctx, ctx, p, in, n, out, err);
}

static int zstd_decode(void *ctx, const codec_params_t *p, const char *in, size_t n, buf_t *out, char *err)
{
    return codec_call_ctx(&codec_zstd, zstd_decode_ctx, ctx, p, in, n, out, err);
}

/* The levels this libzstd accepts (negative ones are the fast modes): ZSTD_minCLevel()..ZSTD_maxCLevel(). */
static void zstd_level_bounds_cb(long *lo, long *hi)
{
    *lo = ZSTD_minCLevel();
    *hi = ZSTD_maxCLevel();
}

/* compression-level: the library's whole range (3 when not given); compression-threads: 0..200 workers. */
static const codec_param_t zstd_params[] = {
    { .name = "compression-level", .field = offsetof(codec_params_t, compression_level),
      .given = offsetof(codec_params_t, level_set), .unset = -1, .bounds_cb = zstd_level_bounds_cb },
    { .name = "compression-threads", .field = offsetof(codec_params_t, compression_threads), .given = -1,
      .unset = 0, .lo = 0, .hi = 200 },
    { .name = NULL },
};

const codec_t codec_zstd = {
    .name = "zstd",
    .schemes = (const char *const[]){ "zstd", "zstandard", NULL },
    .compresses = 1,
    .params = zstd_params,
    .ctx_create = zstd_ctx_create,
    .ctx_destroy = zstd_ctx_destroy,
    .encode = zstd_encode,
    .decode = zstd_decode,
    .sniff = zstd_sniff,
};
