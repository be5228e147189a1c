/*
 * codec/chain: a codec chain named by a URL — "msgpack+zstd://?compression-level=3" — applied left to
 * right on write and right to left on read, with cachetory's schemes and parameters and cachetoryd's own:
 *
 *   compression-level     zlib -1..9 (default -1 = 6), zstd its whole range (default 3)
 *   compression-threads   zstd worker threads (default 0)
 *   pickle-protocol       2..5 (default 5)
 *   compression-min-size  values shorter than this are stored as they are, unless they could be taken for
 *                         encoded ones (see chain_encode); default 0: always encode
 *   strict                yes: a stored value that does not decode is an error; no (default): it is
 *                         returned as it is ("mixed mode": values written before cachetoryd still read)
 *   max-decoded-size      no value decodes to more than this (default: proto-max-bulk-len)
 *   dictionary            zstd: a dictionary file (zstd --train), or auto: trained from the values written
 *   dictionary-size, dictionary-sample-size, dictionary-retrain-drift   how auto trains (chain.c)
 *
 * Encoding and decoding are reentrant: each thread brings its own chain_ctx_t (codec contexts such as
 * ZSTD_CCtx, reused from value to value). The loop thread keeps one; the thread pool takes them from a
 * pool that grows to the number of worker threads.
 */
#ifndef CACHETORYD_CODEC_CHAIN_H
#define CACHETORYD_CODEC_CHAIN_H

#include <stddef.h>

#include "codec/codec.h"
#include "util/buf.h"

#define CHAIN_MAX_LAYERS 8

/* chain_encode / chain_decode results */
#define CHAIN_OUT     0     /* the result is in out */
#define CHAIN_AS_IS   1     /* the result is the input itself (null chain, below compression-min-size, or a
                               stored value not in the chain's format in mixed mode) */
#define CHAIN_ERROR (-1)    /* err holds the client's message, with its "ERR " prefix */
#define CHAIN_OVER_BUDGET 2
/* chain_decode's *undecoded: 1 not in the chain's format; CHAIN_UNDECODED_NODICT in it, but compressed
 * with a zstd dictionary the chain does not have (yet): the stored value must not be taken for a plain one */
#define CHAIN_UNDECODED_NODICT 2 /* chain_decode_budget: the value decodes to more than the budget (out empty) */

typedef struct chain chain_t;
typedef struct chain_ctx chain_ctx_t;

/* Parse url; max_bulk is the default of max-decoded-size. NULL with err on a bad URL. */
chain_t *chain_create(const char *url, size_t max_bulk, char *err, size_t errlen);
void chain_destroy(chain_t *ch);

int chain_is_null(const chain_t *ch);           /* no layer: values pass as they are */
const char *chain_url(const chain_t *ch);
/* The zstd dictionaries of the chain (zstd://?dictionary=), or NULL (codec.h: codec_zstd_dicts_*). */
const codec_dicts_t *chain_dicts(const chain_t *ch);
/* The same, to add dictionaries and train (the loop thread only). */
codec_dicts_t *chain_dicts_mut(chain_t *ch);
/* The dictionary ID a stored value's zstd frame names when the chain ends with zstd and has no such
 * dictionary (0 otherwise): what must be fetched before the value can be decoded. */
unsigned chain_missing_dict(const chain_t *ch, const char *in, size_t n);
size_t chain_max_decoded(const chain_t *ch);

/* Contexts: the loop thread's own, or one from the pool for a worker thread (get / put, thread-safe). */
chain_ctx_t *chain_main_ctx(chain_t *ch);
chain_ctx_t *chain_ctx_get(chain_t *ch);
void chain_ctx_put(chain_t *ch, chain_ctx_t *ctx);

/* Encode in[0..n) for storing. err needs CODEC_ERRLEN + 32 bytes. */
int chain_encode(chain_t *ch, chain_ctx_t *ctx, const char *in, size_t n, buf_t *out, char *err);

/* Decode a stored value. *undecoded is set to 1 when the value was returned as it is because it is not
 * in the chain's format (mixed mode). */
int chain_decode(chain_t *ch, chain_ctx_t *ctx, const char *in, size_t n, buf_t *out, char *err, int *undecoded);

/* As chain_decode, but give up with CHAIN_OVER_BUDGET as soon as a layer would produce more than budget
 * bytes: the work done is bounded by the budget, whatever the stored value declares or holds. Any other
 * answer is chain_decode's. (A zstd frame that declares its size is refused at once; zlib, which declares
 * none, is inflated up to the budget.) The cache decodes on the loop thread within codec-thread-min-size
 * this way, and sends a value over the budget to the thread pool. */
int chain_decode_budget(chain_t *ch, chain_ctx_t *ctx, const char *in, size_t n, size_t budget, buf_t *out,
                        char *err, int *undecoded);

#endif
