/*
 * codec/zstd_int: what zstd.c (frames) and zstd_dict.c (dictionary sets, sampling, training) share.
 *
 * A dictionary set is read by every thread (any encode or decode) and changed by one (the loop thread):
 * dictionaries are only ever appended, into slots that never move, and published by storing ndicts
 * with release order after the slot is filled; the one new values use is an atomic pointer. Nothing in
 * a set is freed before the set is (the chain's end, once no thread-pool job uses the chain), so a
 * reader that loaded a dictionary pointer may use it for as long as its encode or decode runs.
 */
#ifndef CACHETORYD_CODEC_ZSTD_INT_H
#define CACHETORYD_CODEC_ZSTD_INT_H

#include <stddef.h>
#include <stdint.h>
#include <zstd.h>

#include "codec/codec.h"

/* Dictionaries a set holds at most: every one stays readable until the daemon stops (a value may name
 * any), so training stops when the set is full. 64 x (16 KB + its prepared tables) is a few MB. */
#define ZSTD_DICTS_MAX 64

/* One dictionary, prepared once for compressing (at the chain's level) and for decompressing. */
typedef struct zstd_dict {
    unsigned id;                /* its dictionary ID, as frames name it */
    size_t size;                /* bytes of the dictionary */
    char *bytes;                /* the dictionary itself (CACHE DICT EXPORT, storing it) */
    ZSTD_CDict *cdict;
    ZSTD_DDict *ddict;
} zstd_dict_t;

/*
 * dictionary=auto's sample of the values written: a reservoir bounded in bytes. Until it holds budget
 * bytes every value is kept; then the k-th value seen replaces a random one with probability n/k (so
 * the sample stays a uniform draw from everything written since it was emptied), as long as the
 * replacement keeps the total within the budget. Loop thread only.
 */
typedef struct zstd_sampler {
    size_t budget;              /* dictionary-sample-size */
    size_t bytes;               /* held */
    size_t n, cap;              /* samples held, room for */
    char **data;
    size_t *len;
    unsigned long long seen;    /* values offered since the last emptying */
    uint64_t rng;               /* xorshift64 state */
} zstd_sampler_t;

struct codec_dicts {
    int level;                  /* the chain's compression level: CDicts are prepared for it */
    zstd_dict_t *slot[ZSTD_DICTS_MAX];
    size_t ndicts;              /* atomic (release / acquire): slots below it are filled */
    zstd_dict_t *encode;        /* atomic: what new values are compressed with, NULL plain zstd */
    unsigned long long unknown; /* atomic: frames naming an ID not here */

    /* dictionary=auto; the rest is the loop thread's */
    int auto_train;
    size_t dict_size;           /* dictionary-size */
    double drift;               /* dictionary-retrain-drift: retrain when recent ratio > trained x (1 + drift) */
    zstd_sampler_t sampler;
    int training;               /* a training (or the storing of its result) is under way */
    double trained_ratio;       /* the encode dictionary's ratio on held-out samples when it was trained */
    unsigned long long win_in, win_out;     /* zstd input / output bytes since the window began */
    double recent_ratio;        /* the last full window's ratio (0: none yet) */
    int drifted;                /* the last window was worse than trained_ratio allows */
    unsigned long long since_try;   /* bytes offered since the last training ended */
    unsigned long long wait_bytes;  /* ... needed before the next attempt after one that did not help */
    unsigned long long trainings, rejected;
};

/* zstd_dict.c, for zstd.c: the dictionary frames name id, and the one new values use (NULL: none). */
const zstd_dict_t *zstd_dict_find(const codec_dicts_t *ds, unsigned id);
const zstd_dict_t *zstd_dict_encoding(const codec_dicts_t *ds);

#endif
