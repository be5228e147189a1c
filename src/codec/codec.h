/*
 * codec: one layer of a codec chain — a serializer (json, msgpack, pickle) or a compressor (zlib, zstd)
 * with cachetory's wire format, so that cachetory (Python) and cachetoryd read each other's values.
 *
 * A codec describes itself in one codec_t, defined in its own file (src/codec/<name>.c): the URL schemes
 * that name it, whether it compresses, the URL parameters it reads with their bounds, and its functions.
 * A new codec is that file, its extern below and one line in chain.c's table; chain.c knows no codec by
 * name and includes no codec library (a parameter no codec has read yet also adds its field to
 * codec_params_t).
 *
 * encode() turns the bytes a client wrote into the layer's format; decode() turns the layer's format
 * back into bytes. Both append to out (which the caller has emptied) and never write more than the
 * limits say.
 *
 * Contexts: compressors keep their state (ZSTD_CCtx / ZSTD_DCtx, z_stream) in a context created once
 * per thread and reused for every value (ctx_create / ctx_destroy are NULL for stateless codecs). The
 * compressors also accept a NULL ctx and then use a temporary one (codec_call_ctx, the one form of that
 * path). A context is used by one thread at a time; the functions must keep no mutable state outside
 * it: threads with their own contexts run them at once.
 *
 * Errors: encode() fails only on input the format cannot hold (json: not UTF-8). decode() tells apart
 * input that is not in its format at all or is damaged (CODEC_EFORMAT: in mixed mode the chain returns
 * the stored value as it is) from input that would decode to more than params->max_decoded bytes
 * (CODEC_ETOOBIG: always an error — a decompression bomb never gets memory; zstd also says it of a frame
 * whose window is larger than the decoder allows, see zstd.c). err receives a message for the client,
 * without the "ERR " prefix, e.g. "zstd: frame declares 1099511627776 bytes, more than the largest
 * decoded value (536870912)". As every operation: CODEC_OK (0) or a negative code (docs/CONVENTIONS.md).
 */
#ifndef CACHETORYD_CODEC_CODEC_H
#define CACHETORYD_CODEC_CODEC_H

#include <stddef.h>

#include "util/buf.h"

#define CODEC_OK        0
#define CODEC_EFORMAT (-1)     /* not this format, or damaged */
#define CODEC_ETOOBIG (-2)     /* would decode past max_decoded */
#define CODEC_EINPUT  (-3)     /* encode: the value cannot be represented (json: invalid UTF-8) */
#define CODEC_ENODICT (-4)     /* zstd: the frame names a dictionary the set does not have (yet) */

#define CODEC_ERRLEN 160

/* zstd dictionaries (zstd.c): what zstd://?dictionary= names, shared by every context of a chain. */
typedef struct codec_dicts codec_dicts_t;

typedef struct codec_params {
    int compression_level;      /* zlib -1..9 (default -1 = 6); zstd ZSTD_minCLevel()..ZSTD_maxCLevel() (default 3) */
    int level_set;              /* compression-level was given (each compressor has its own default) */
    int compression_threads;    /* zstd: ZSTD_c_nbWorkers (default 0) */
    int pickle_protocol;        /* 2..5, default 5 */
    size_t max_decoded;         /* no decode produces more than this many bytes */
    codec_dicts_t *dicts;       /* zstd: the dictionaries (dictionary=), or NULL; owned by the chain */
} codec_params_t;

/*
 * A URL parameter a codec reads: an int field of codec_params_t, checked against bounds. Several codecs
 * may read the same parameter (compression-level: zlib and zstd); a chain then accepts the values that
 * all its layers reading it accept, and a chain with no such layer the values of the first codec in
 * chain.c's table that reads it. The error for a value out of bounds is
 * "NAME 'VALUE': must be an integer between LO and HI" + alone_note, or "NAME 'VALUE': must be " + expect.
 */
typedef struct codec_param {
    const char *name;           /* the query parameter: "compression-level" */
    size_t field;               /* offsetof(codec_params_t, ...): the int the value goes to */
    long given;                 /* offsetof an int set to 1 when the URL gives the parameter, or -1 */
    int unset;                  /* the field's value when the URL does not give it */
    long lo, hi;                /* the accepted values, unless bounds_cb is set */
    void (*bounds_cb)(long *lo, long *hi);      /* bounds known only at run time (zstd's levels), or NULL */
    const char *expect;         /* what the error says the value must be, or NULL: "an integer between" */
    const char *alone_note;     /* after that range when this codec alone sets it (" (zlib)"), or NULL */
} codec_param_t;

/* encode / decode; ctx is the codec's context (NULL for a stateless codec, or a one-off call). */
typedef int codec_fn(void *ctx, const codec_params_t *p, const char *in, size_t n, buf_t *out, char *err);

typedef struct codec {
    const char *name;           /* as messages name it: "zstd" */
    const char *const *schemes; /* the URL schemes that name it, NULL-terminated: {"zstd", "zstandard"} */
    int compresses;             /* a compressor: has sniff, and may end a chain with compression-min-size */
    const codec_param_t *params;                /* the parameters it reads, ended by a NULL name; or NULL */
    void *(*ctx_create)(const codec_params_t *p);      /* may be NULL: no context */
    void (*ctx_destroy)(void *ctx);
    codec_fn *encode;           /* NULL only for the identity (null / noop), which adds no layer */
    codec_fn *decode;
    /* 1 if in[0..n) may be in this format: every input decode() accepts (or refuses as CODEC_ETOOBIG)
     * passes it, so an input that fails it is surely not this codec's output. Cheap (a header check).
     * NULL: the codec cannot tell (a serializer: any bytes may be some value's encoding). */
    int (*sniff)(const char *in, size_t n);
} codec_t;

/* fn(ctx, ...), or, when ctx is NULL (a one-off call), fn on a temporary context made by c->ctx_create
 * and destroyed after: how a codec with a context accepts none. Returns fn's result. */
int codec_call_ctx(const codec_t *c, codec_fn *fn, void *ctx, const codec_params_t *p, const char *in, size_t n,
                   buf_t *out, char *err);

/*
 * zstd dictionaries (zstd_dict.c; zstd_int.h says how threads share a set). A set holds every dictionary
 * frames may name, and names the one new values are compressed with (none: plain zstd frames). Frames
 * that name a dictionary decode with it, frames that name none decode as plain zstd, frames that name an
 * ID the set does not have are CODEC_ENODICT ("... dictionary ID N, which this daemon does not have") and
 * counted. Dictionaries are added (never removed) and chosen by the loop thread only; any thread reads.
 */
codec_dicts_t *codec_zstd_dicts_create(int level);         /* empty; CDicts are prepared for level */
/* Read a dictionary file (made by `zstd --train`, or ZDICT) into a new set that encodes with it; NULL
 * with err ("dictionary 'PATH': ...") if it cannot be read, is larger than 16 MB, or is not a zstd
 * dictionary (it must carry a dictionary ID: frames name their dictionary by it). */
codec_dicts_t *codec_zstd_dicts_load(const char *path, int level, char *err, size_t errlen);
void codec_zstd_dicts_free(codec_dicts_t *d);              /* NULL ok */
/* Add a dictionary (bytes are copied; *id is its ID): 0 added, 1 the set has it already (same bytes),
 * -1 with err: not a dictionary, damaged, the set is full, or its ID names other bytes (a collision). */
int codec_zstd_dicts_add(codec_dicts_t *d, const char *bytes, size_t len, unsigned *id, char *err, size_t errlen);
int codec_zstd_dicts_add_file(codec_dicts_t *d, const char *path, unsigned *id, char *err, size_t errlen);
/* Compress new values with dictionary id (0: plain zstd). -1 if the set has no such dictionary. */
int codec_zstd_dicts_use(codec_dicts_t *d, unsigned id);
int codec_zstd_dicts_has(const codec_dicts_t *d, unsigned id);
unsigned codec_zstd_dicts_encode_id(const codec_dicts_t *d);    /* the ID new values use, 0 none */
size_t codec_zstd_dicts_encode_size(const codec_dicts_t *d);    /* its size in bytes */
/* Frames that named a dictionary ID the set does not have, so far. */
unsigned long long codec_zstd_dicts_unknown(const codec_dicts_t *d);
/* The ID in a zstd dictionary's header (0: not a dictionary with one). */
unsigned codec_zstd_dict_id(const char *bytes, size_t len);
/* The dictionary ID a stored zstd frame names: 0 when it names none or is not a zstd frame. */
unsigned codec_zstd_frame_dict_id(const char *in, size_t n);
/* The dictionaries of the set, for CACHE DICT: how many, and the i-th (0, or -1 past the last). */
typedef struct codec_dict_info {
    unsigned id;
    const char *bytes;          /* the dictionary, valid as long as the set */
    size_t size;
    int encodes;                /* new values are compressed with it */
} codec_dict_info_t;
size_t codec_zstd_dicts_count(const codec_dicts_t *d);
int codec_zstd_dicts_get(const codec_dicts_t *d, size_t i, codec_dict_info_t *out);

/* What INFO shows of a set (all 0 for NULL). */
typedef struct codec_dict_stats {
    size_t count;                       /* dictionaries held */
    unsigned encode_id;                 /* new values use it (0: plain zstd) */
    size_t encode_size;
    unsigned long long unknown;         /* frames naming an ID not held */
    int auto_train, training;           /* dictionary=auto; a training is under way */
    unsigned long long trainings;       /* finished, whatever came of them */
    unsigned long long rejected;        /* ... that did not give a dictionary worth using */
    size_t sample_values, sample_bytes; /* the sample the next training will use */
    double trained_ratio;               /* the encode dictionary's ratio on held-out values at training */
    double recent_ratio;                /* the ratio of the last window of writes with it (0: none yet) */
} codec_dict_stats_t;
void codec_zstd_dicts_stats(const codec_dicts_t *d, codec_dict_stats_t *st);

/*
 * dictionary=auto. codec_zstd_dicts_auto makes a set train its own dictionaries: every value the zstd
 * layer compresses on the loop thread is offered to codec_zstd_dicts_observe (a sample bounded by
 * sample_size bytes, and the ratio of recent writes). codec_zstd_dicts_due says a training should start:
 * the sample is full and there is no dictionary yet, or the recent ratio is worse than the ratio at
 * training by more than drift (a fraction), or an earlier attempt did not help and enough new values
 * came since (the wait doubles each time, up to 64 samples' worth). The caller then takes the sample
 * (codec_zstd_training_take: copies it, empties the set's, marks a training under way), runs
 * codec_zstd_training_run on any thread (ZDICT on 3/4 of the values, judged on the other 1/4 against
 * plain zstd: kept only if it saves 10% or more), and ends it on the loop thread with
 * codec_zstd_dicts_trained (id: the dictionary it added and new values should use; 0: nothing came of
 * it). Nothing here does I/O: storing a dictionary where others can find it is the cache's business.
 */
void codec_zstd_dicts_auto(codec_dicts_t *d, size_t dict_size, size_t sample_size, double drift);
void codec_zstd_dicts_observe(codec_dicts_t *d, const char *in, size_t n, size_t out_len);
int codec_zstd_dicts_due(const codec_dicts_t *d);
typedef struct codec_zstd_training codec_zstd_training_t;
/* dict_size 0: the set's dictionary-size. NULL with err when too few values were sampled, a training
 * is under way, or the set is full. */
codec_zstd_training_t *codec_zstd_training_take(codec_dicts_t *d, size_t dict_size, char *err, size_t errlen);
void codec_zstd_training_run(codec_zstd_training_t *t);
/* 0: a dictionary worth using (dict, len); -1: none, why says why. The ratios are on the held-out values. */
int codec_zstd_training_result(const codec_zstd_training_t *t, const char **dict, size_t *len, double *ratio,
                               double *plain_ratio, const char **why);
void codec_zstd_training_free(codec_zstd_training_t *t);
void codec_zstd_dicts_trained(codec_dicts_t *d, unsigned id, double ratio);

/* The codecs, one file each in src/codec/ (for chain.c's table, and for tests that run one alone). */
extern const codec_t codec_null;        /* null / noop: the identity */
extern const codec_t codec_zlib;
extern const codec_t codec_zstd;
extern const codec_t codec_json;
extern const codec_t codec_msgpack;
extern const codec_t codec_pickle;

#endif
