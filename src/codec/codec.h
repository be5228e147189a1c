/*
 * codec: one layer of a codec chain — a serializer (json, msgpack, pickle) or a compressor (zlib, zstd)
 * with cachetory's wire format, so that cachetory (Python) and cachetoryd read each other's values.
 *
 * A codec is a table of functions over bytes. encode() turns the bytes a client wrote into the layer's
 * format; decode() turns the layer's format back into bytes. Both append to out (which the caller has
 * emptied) and never write more than the limits say.
 *
 * Contexts: compressors keep their state (ZSTD_CCtx / ZSTD_DCtx, z_stream) in a context created once
 * per thread and reused for every value (ctx_create / ctx_destroy are NULL for stateless codecs; the
 * compressors also accept a NULL ctx and then use a temporary one). A context is used by one thread at a
 * time; the functions must keep no mutable state outside it: threads with their own contexts run them
 * at once.
 *
 * Errors: encode() fails only on input the format cannot hold (json: not UTF-8). decode() tells apart
 * input that is not in its format at all or is damaged (CODEC_EFORMAT: in mixed mode the chain returns
 * the stored value as it is) from input that would decode to more than params->max_decoded bytes
 * (CODEC_ETOOBIG: always an error — a decompression bomb never gets memory; zstd also says it of a frame
 * whose window is larger than the decoder allows, see zstd.c). err receives a message for the client,
 * without the "ERR " prefix, e.g. "zstd: frame declares 1099511627776 bytes, more than the largest
 * decoded value (536870912)".
 */
#ifndef CACHETORYD_CODEC_CODEC_H
#define CACHETORYD_CODEC_CODEC_H

#include <stddef.h>

#include "util/buf.h"

#define CODEC_OK        0
#define CODEC_EFORMAT (-1)     /* not this format, or damaged */
#define CODEC_ETOOBIG (-2)     /* would decode past max_decoded */
#define CODEC_EINPUT  (-3)     /* encode: the value cannot be represented (json: invalid UTF-8) */

#define CODEC_ERRLEN 160

typedef struct codec_params {
    int compression_level;      /* zlib -1..9 (default -1 = 6); zstd ZSTD_minCLevel()..ZSTD_maxCLevel() (default 3) */
    int level_set;              /* compression-level was given (each compressor has its own default) */
    int compression_threads;    /* zstd: ZSTD_c_nbWorkers (default 0) */
    int pickle_protocol;        /* 2..5, default 5 */
    size_t max_decoded;         /* no decode produces more than this many bytes */
} codec_params_t;

typedef struct codec {
    const char *name;           /* the URL scheme: "zstd" */
    void *(*ctx_create)(const codec_params_t *p);      /* may be NULL: no context */
    void (*ctx_destroy)(void *ctx);
    int (*encode)(void *ctx, const codec_params_t *p, const char *in, size_t n, buf_t *out, char *err);
    int (*decode)(void *ctx, const codec_params_t *p, const char *in, size_t n, buf_t *out, char *err);
    /* 1 if in[0..n) may be in this format: every input decode() accepts (or refuses as CODEC_ETOOBIG)
     * passes it, so an input that fails it is surely not this codec's output. Cheap (a header check).
     * NULL: the codec cannot tell (a serializer: any bytes may be some value's encoding). */
    int (*sniff)(const char *in, size_t n);
} codec_t;

/* The codecs (one file each in src/codec/). null / noop is the identity and has no table. */
extern const codec_t codec_zlib;
extern const codec_t codec_zstd;
extern const codec_t codec_json;
extern const codec_t codec_msgpack;
extern const codec_t codec_pickle;

#endif
