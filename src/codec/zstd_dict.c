/*
 * codec/zstd_dict: zstd dictionary sets (see zstd_int.h for how threads share them), the sample of
 * written values dictionary=auto keeps, and training (ZDICT) with its evaluation.
 *
 * Dictionary IDs: ZDICT derives a trained dictionary's ID from a hash of its content (in zstd's
 * non-reserved range 32768..2^31-1), so two daemons training on different samples at once get different
 * IDs; the rare same ID with other bytes is a collision, refused by codec_zstd_dicts_add and never used
 * (a frame names its dictionary by ID only: two dictionaries under one ID would decode each other's
 * values into garbage).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zdict.h>

#include "codec/zstd_int.h"
#include "util/mem.h"
#include "util/seed.h"

/* A dictionary larger than this is refused (zstd --train makes 110 KB by default). */
#define ZSTD_DICT_MAX_BYTES (16u << 20)

/* Values shorter than this teach a dictionary nothing; longer ones are sampled by their first bytes. */
#define SAMPLE_MIN 16
#define SAMPLE_MAX (16u << 10)

/* Training needs this many samples at least (ZDICT refuses fewer than a handful; a dictionary from very
 * few values would only fit those). */
#define TRAIN_MIN_SAMPLES 32

/* A trained dictionary is used only if the held-out values take at most this share of what plain zstd
 * makes of them: a dictionary that barely helps costs memory and a dependency for nothing. */
#define TRAIN_MARGIN 0.90

/* Minimum bytes between two attempts after one that did not help (then doubled, up to x64). */
#define TRAIN_BACKOFF_MAX 64

/* ---- the set ------------------------------------------------------------------------------------- */

codec_dicts_t *codec_zstd_dicts_create(int level)
{
    codec_dicts_t *ds = mem_calloc(1, sizeof(*ds));
    ds->level = level;
    return ds;
}

static size_t dicts_n(const codec_dicts_t *ds)
{
    return __atomic_load_n(&ds->ndicts, __ATOMIC_ACQUIRE);
}

const zstd_dict_t *zstd_dict_find(const codec_dicts_t *ds, unsigned id)
{
    if (ds == NULL)
        return NULL;
    size_t n = dicts_n(ds);
    for (size_t i = 0; i < n; i++)
        if (ds->slot[i]->id == id)
            return ds->slot[i];
    return NULL;
}

const zstd_dict_t *zstd_dict_encoding(const codec_dicts_t *ds)
{
    return ds != NULL ? __atomic_load_n(&ds->encode, __ATOMIC_ACQUIRE) : NULL;
}

int codec_zstd_dicts_add(codec_dicts_t *ds, const char *bytes, size_t len, unsigned *id_out, char *err,
                         size_t errlen)
{
    /* a raw-content "dictionary" (any bytes) has no ID: frames could not name it, and anything would pass */
    unsigned id = len >= 8 ? ZSTD_getDictID_fromDict(bytes, len) : 0;
    if (id == 0) {
        snprintf(err, errlen, "not a zstd dictionary (no dictionary header with an ID; make one with zstd --train)");
        return -1;
    }
    if (len > ZSTD_DICT_MAX_BYTES) {
        snprintf(err, errlen, "larger than %u bytes: not a zstd dictionary", ZSTD_DICT_MAX_BYTES);
        return -1;
    }
    *id_out = id;
    const zstd_dict_t *have = zstd_dict_find(ds, id);
    if (have != NULL) {
        if (have->size == len && memcmp(have->bytes, bytes, len) == 0)
            return 1;
        snprintf(err, errlen, "dictionary ID %u is already used by another dictionary (an ID collision): "
                 "refused, values keep their own dictionary", id);
        return -1;
    }
    size_t n = dicts_n(ds);
    if (n == ZSTD_DICTS_MAX) {
        snprintf(err, errlen, "already %d dictionaries, the most one serializer keeps", ZSTD_DICTS_MAX);
        return -1;
    }
    ZSTD_CDict *cd = ZSTD_createCDict(bytes, len, ds->level);
    ZSTD_DDict *dd = ZSTD_createDDict(bytes, len);
    if (cd == NULL || dd == NULL) {
        snprintf(err, errlen, "damaged zstd dictionary (its tables do not load)");
        ZSTD_freeCDict(cd);
        ZSTD_freeDDict(dd);
        return -1;
    }
    zstd_dict_t *d = mem_alloc(sizeof(*d));
    *d = (zstd_dict_t){ .id = id, .size = len, .bytes = mem_alloc(len), .cdict = cd, .ddict = dd };
    memcpy(d->bytes, bytes, len);
    ds->slot[n] = d;
    __atomic_store_n(&ds->ndicts, n + 1, __ATOMIC_RELEASE);
    return 0;
}

int codec_zstd_dicts_use(codec_dicts_t *ds, unsigned id)
{
    const zstd_dict_t *d = NULL;
    if (id != 0 && (d = zstd_dict_find(ds, id)) == NULL)
        return -1;
    __atomic_store_n(&ds->encode, (zstd_dict_t *)d, __ATOMIC_RELEASE);
    ds->win_in = ds->win_out = 0;
    ds->drifted = 0;
    ds->trained_ratio = 0;          /* not known (loaded, not trained here): the first window sets it */
    return 0;
}

int codec_zstd_dicts_has(const codec_dicts_t *ds, unsigned id)
{
    return zstd_dict_find(ds, id) != NULL;
}

/* Read path whole into *data (at most ZSTD_DICT_MAX_BYTES). 0, or -1 with err. */
static int dict_read_file(const char *path, char **data, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "%s", strerror(errno));
        return -1;
    }
    buf_t b;
    buf_init(&b);
    char chunk[8192];
    size_t got;
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (b.len + got > ZSTD_DICT_MAX_BYTES) {
            snprintf(err, errlen, "larger than %u bytes: not a zstd dictionary", ZSTD_DICT_MAX_BYTES);
            fclose(f);
            buf_deinit(&b);
            return -1;
        }
        buf_append(&b, chunk, got);
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        snprintf(err, errlen, "read error");
        buf_deinit(&b);
        return -1;
    }
    *data = b.data;
    *len = b.len;
    return 0;
}

int codec_zstd_dicts_add_file(codec_dicts_t *ds, const char *path, unsigned *id, char *err, size_t errlen)
{
    char *data = NULL, why[200];
    size_t len = 0;
    int rc = dict_read_file(path, &data, &len, why, sizeof(why));
    if (rc == 0)
        rc = codec_zstd_dicts_add(ds, data ? data : "", len, id, why, sizeof(why));
    mem_free(data);
    if (rc < 0)
        snprintf(err, errlen, "dictionary '%s': %s", path, why);
    return rc;
}

codec_dicts_t *codec_zstd_dicts_load(const char *path, int level, char *err, size_t errlen)
{
    codec_dicts_t *ds = codec_zstd_dicts_create(level);
    unsigned id;
    if (codec_zstd_dicts_add_file(ds, path, &id, err, errlen) < 0) {
        codec_zstd_dicts_free(ds);
        return NULL;
    }
    codec_zstd_dicts_use(ds, id);
    return ds;
}

static void sampler_empty(zstd_sampler_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        mem_free(s->data[i]);
    s->n = 0;
    s->bytes = 0;
    s->seen = 0;
}

void codec_zstd_dicts_free(codec_dicts_t *ds)
{
    if (ds == NULL)
        return;
    for (size_t i = 0; i < ds->ndicts; i++) {
        ZSTD_freeCDict(ds->slot[i]->cdict);
        ZSTD_freeDDict(ds->slot[i]->ddict);
        mem_free(ds->slot[i]->bytes);
        mem_free(ds->slot[i]);
    }
    sampler_empty(&ds->sampler);
    mem_free(ds->sampler.data);
    mem_free(ds->sampler.len);
    mem_free(ds);
}

unsigned codec_zstd_dicts_encode_id(const codec_dicts_t *ds)
{
    const zstd_dict_t *d = zstd_dict_encoding(ds);
    return d != NULL ? d->id : 0;
}

size_t codec_zstd_dicts_encode_size(const codec_dicts_t *ds)
{
    const zstd_dict_t *d = zstd_dict_encoding(ds);
    return d != NULL ? d->size : 0;
}

unsigned long long codec_zstd_dicts_unknown(const codec_dicts_t *ds)
{
    return ds != NULL ? __atomic_load_n(&ds->unknown, __ATOMIC_RELAXED) : 0;
}

size_t codec_zstd_dicts_count(const codec_dicts_t *ds)
{
    return ds != NULL ? dicts_n(ds) : 0;
}

int codec_zstd_dicts_get(const codec_dicts_t *ds, size_t i, codec_dict_info_t *out)
{
    if (ds == NULL || i >= dicts_n(ds))
        return -1;
    const zstd_dict_t *d = ds->slot[i];
    out->id = d->id;
    out->bytes = d->bytes;
    out->size = d->size;
    out->encodes = d == zstd_dict_encoding(ds);
    return 0;
}

void codec_zstd_dicts_stats(const codec_dicts_t *ds, codec_dict_stats_t *st)
{
    memset(st, 0, sizeof(*st));
    if (ds == NULL)
        return;
    st->count = dicts_n(ds);
    st->encode_id = codec_zstd_dicts_encode_id(ds);
    st->encode_size = codec_zstd_dicts_encode_size(ds);
    st->unknown = codec_zstd_dicts_unknown(ds);
    st->auto_train = ds->auto_train;
    st->training = ds->training;
    st->trainings = ds->trainings;
    st->rejected = ds->rejected;
    st->sample_values = ds->sampler.n;
    st->sample_bytes = ds->sampler.bytes;
    st->trained_ratio = ds->encode != NULL ? ds->trained_ratio : 0;
    st->recent_ratio = ds->recent_ratio;
}

unsigned codec_zstd_dict_id(const char *bytes, size_t len)
{
    return len >= 8 ? ZSTD_getDictID_fromDict(bytes, len) : 0;
}

/* The dictionary ID a zstd frame names (0: none, or not a zstd frame). */
unsigned codec_zstd_frame_dict_id(const char *in, size_t n)
{
    if (n < 4 || ZSTD_getFrameContentSize(in, n) == ZSTD_CONTENTSIZE_ERROR)
        return 0;
    return ZSTD_getDictID_fromFrame(in, n);
}

/* ---- dictionary=auto: sampling and when to train --------------------------------------------------- */

void codec_zstd_dicts_auto(codec_dicts_t *ds, size_t dict_size, size_t sample_size, double drift)
{
    ds->auto_train = 1;
    ds->dict_size = dict_size;
    ds->drift = drift;
    ds->sampler.budget = sample_size;
    seed_bytes(&ds->sampler.rng, sizeof(ds->sampler.rng));
    ds->sampler.rng |= 1;
    ds->wait_bytes = sample_size;
}

static uint64_t sampler_rand(zstd_sampler_t *s)
{
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    return s->rng;
}

static void sampler_offer(zstd_sampler_t *s, const char *in, size_t n)
{
    if (n < SAMPLE_MIN)
        return;
    if (n > SAMPLE_MAX)
        n = SAMPLE_MAX;
    s->seen++;
    size_t slot;
    if (s->bytes + n <= s->budget) {
        if (s->n == s->cap) {
            s->cap = s->cap ? s->cap * 2 : 256;
            s->data = mem_realloc(s->data, s->cap * sizeof(*s->data));
            s->len = mem_realloc(s->len, s->cap * sizeof(*s->len));
        }
        slot = s->n++;
        s->data[slot] = NULL;
        s->len[slot] = 0;
    } else {
        if (s->n == 0 || sampler_rand(s) % s->seen >= s->n)
            return;
        slot = (size_t)(sampler_rand(s) % s->n);
        if (s->bytes - s->len[slot] + n > s->budget)
            return;
    }
    s->bytes -= s->len[slot];
    s->data[slot] = mem_realloc(s->data[slot], n);
    memcpy(s->data[slot], in, n);
    s->len[slot] = n;
    s->bytes += n;
}

/* The sample is full when one more typical value would not fit. */
static int sampler_full(const zstd_sampler_t *s)
{
    return s->n >= TRAIN_MIN_SAMPLES && s->bytes + s->bytes / s->n > s->budget;
}

void codec_zstd_dicts_observe(codec_dicts_t *ds, const char *in, size_t n, size_t out_len)
{
    if (!ds->auto_train)
        return;
    sampler_offer(&ds->sampler, in, n);
    ds->since_try += n;
    if (ds->encode == NULL)
        return;
    ds->win_in += n;
    ds->win_out += out_len;
    if (ds->win_in >= ds->sampler.budget) {
        ds->recent_ratio = (double)ds->win_out / (double)ds->win_in;
        if (ds->trained_ratio == 0)     /* a dictionary loaded (dictionary-dir, LOAD): this is its ratio */
            ds->trained_ratio = ds->recent_ratio;
        ds->drifted = ds->recent_ratio > ds->trained_ratio * (1.0 + ds->drift);
        ds->win_in = ds->win_out = 0;
    }
}

int codec_zstd_dicts_due(const codec_dicts_t *ds)
{
    if (ds == NULL || !ds->auto_train || ds->training || !sampler_full(&ds->sampler))
        return 0;
    if (dicts_n(ds) == ZSTD_DICTS_MAX)
        return 0;
    if (ds->encode != NULL && !ds->drifted)
        return 0;
    return ds->since_try >= ds->wait_bytes;
}

/* ---- training ---------------------------------------------------------------------------------------- */

struct codec_zstd_training {
    int level;
    size_t dict_cap;
    buf_t samples;              /* the training samples, end to end */
    size_t *sizes;
    unsigned n;
    buf_t held;                 /* held-out samples, for the evaluation */
    size_t *held_sizes;
    unsigned nheld;
    buf_t dict;                 /* the result */
    double ratio, plain_ratio;
    int accepted;
    char why[200];
};

codec_zstd_training_t *codec_zstd_training_take(codec_dicts_t *ds, size_t dict_size, char *err, size_t errlen)
{
    zstd_sampler_t *s = &ds->sampler;

    if (ds->training) {
        snprintf(err, errlen, "a dictionary is being trained already");
        return NULL;
    }
    if (s->n < TRAIN_MIN_SAMPLES) {
        snprintf(err, errlen, "not enough values sampled to train a dictionary (%zu of at least %d, each %d bytes or "
                 "longer): write more values first", s->n, TRAIN_MIN_SAMPLES, SAMPLE_MIN);
        return NULL;
    }
    if (dicts_n(ds) == ZSTD_DICTS_MAX) {
        snprintf(err, errlen, "already %d dictionaries, the most one serializer keeps", ZSTD_DICTS_MAX);
        return NULL;
    }
    codec_zstd_training_t *t = mem_calloc(1, sizeof(*t));
    t->level = ds->level;
    t->dict_cap = dict_size ? dict_size : ds->dict_size;
    buf_init(&t->samples);
    buf_init(&t->held);
    buf_init(&t->dict);
    t->sizes = mem_alloc(s->n * sizeof(*t->sizes));
    t->held_sizes = mem_alloc(s->n * sizeof(*t->held_sizes));
    /* every fourth value is held out: the dictionary is judged on values it was not made from */
    for (size_t i = 0; i < s->n; i++) {
        if (i % 4 == 3) {
            buf_append(&t->held, s->data[i], s->len[i]);
            t->held_sizes[t->nheld++] = s->len[i];
        } else {
            buf_append(&t->samples, s->data[i], s->len[i]);
            t->sizes[t->n++] = s->len[i];
        }
    }
    ds->training = 1;
    sampler_empty(s);
    ds->since_try = 0;
    return t;
}

/* Compressed bytes of the held-out values, with cdict (or plain zstd when NULL). */
static size_t training_measure(codec_zstd_training_t *t, ZSTD_CCtx *cctx, const ZSTD_CDict *cdict, buf_t *tmp)
{
    size_t total = 0, off = 0;
    for (unsigned i = 0; i < t->nheld; i++) {
        size_t n = t->held_sizes[i];
        size_t bound = ZSTD_compressBound(n);
        buf_reserve(tmp, bound);
        size_t r = cdict ? ZSTD_compress_usingCDict(cctx, tmp->data, bound, t->held.data + off, n, cdict)
                         : ZSTD_compressCCtx(cctx, tmp->data, bound, t->held.data + off, n, t->level);
        total += ZSTD_isError(r) ? n : r;
        off += n;
    }
    return total;
}

void codec_zstd_training_run(codec_zstd_training_t *t)
{
    buf_reserve(&t->dict, t->dict_cap);
    size_t r = ZDICT_trainFromBuffer(t->dict.data, t->dict_cap, t->samples.data, t->sizes, t->n);
    if (ZDICT_isError(r)) {
        snprintf(t->why, sizeof(t->why), "training failed on %u values (%s)", t->n, ZDICT_getErrorName(r));
        return;
    }
    t->dict.len = r;
    ZSTD_CDict *cd = ZSTD_createCDict(t->dict.data, t->dict.len, t->level);
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    if (cd == NULL || cctx == NULL) {
        snprintf(t->why, sizeof(t->why), "the trained dictionary does not load");
        ZSTD_freeCDict(cd);
        ZSTD_freeCCtx(cctx);
        return;
    }
    buf_t tmp;
    buf_init(&tmp);
    size_t with = training_measure(t, cctx, cd, &tmp);
    size_t plain = training_measure(t, cctx, NULL, &tmp);
    buf_deinit(&tmp);
    ZSTD_freeCDict(cd);
    ZSTD_freeCCtx(cctx);
    double raw = (double)(t->held.len ? t->held.len : 1);
    t->ratio = (double)with / raw;
    t->plain_ratio = (double)plain / raw;
    if ((double)with > (double)plain * TRAIN_MARGIN) {
        snprintf(t->why, sizeof(t->why), "the trained dictionary does not compress better than plain zstd by "
                 "%.0f%% (ratio %.3f against %.3f on %u held-out values): kept %s", (1 - TRAIN_MARGIN) * 100,
                 t->ratio, t->plain_ratio, t->nheld, "the dictionary used before, if any");
        return;
    }
    t->accepted = 1;
}

int codec_zstd_training_result(const codec_zstd_training_t *t, const char **dict, size_t *len, double *ratio,
                               double *plain_ratio, const char **why)
{
    *ratio = t->ratio;
    *plain_ratio = t->plain_ratio;
    *why = t->why;
    *dict = t->dict.data;
    *len = t->dict.len;
    return t->accepted ? 0 : -1;
}

void codec_zstd_training_free(codec_zstd_training_t *t)
{
    if (t == NULL)
        return;
    buf_deinit(&t->samples);
    buf_deinit(&t->held);
    buf_deinit(&t->dict);
    mem_free(t->sizes);
    mem_free(t->held_sizes);
    mem_free(t);
}

void codec_zstd_dicts_trained(codec_dicts_t *ds, unsigned id, double ratio)
{
    ds->training = 0;
    ds->trainings++;
    if (id != 0 && codec_zstd_dicts_use(ds, id) == 0) {
        ds->trained_ratio = ratio;
        ds->wait_bytes = ds->sampler.budget;
        return;
    }
    /* nothing better came of it: wait longer before the next attempt on the same kind of values */
    ds->rejected++;
    if (ds->wait_bytes < (unsigned long long)ds->sampler.budget * TRAIN_BACKOFF_MAX)
        ds->wait_bytes *= 2;
    ds->drifted = 0;
}
