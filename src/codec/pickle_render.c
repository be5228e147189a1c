/*
 * codec/pickle_render: the unpickled result as json.dumps writes it (bytes as latin-1 text), with
 * Python's dict semantics for equal keys, within max_decoded and without rendering a shared object twice.
 * See pickle.c for the contract and pickle_int.h for how errors come back.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"
#include "codec/jsonw.h"
#include "codec/pickle_int.h"
#include "util/mem.h"

/* ----------------------------------------------------------------------------------------------------
 * Render: json.dumps
 * ---------------------------------------------------------------------------------------------------- */

/*
 * A dict key reduced to what Python's == compares: numbers by value across bool, int and float (an
 * integral float is the int it equals), str by content, None; NaN only equals itself (the same object).
 */
enum { PK_K_NONE, PK_K_INT, PK_K_BIGPOS, PK_K_BIGNEG, PK_K_FLOAT, PK_K_NAN, PK_K_STR };

typedef struct pk_key {
    int kind;               /* PK_K_* */
    uint64_t v;             /* PK_K_INT: the int64; PK_K_FLOAT: the bits; PK_K_NAN: the object's address */
    const char *p;          /* PK_K_BIG*: decimal digits; PK_K_STR: UTF-8 */
    size_t len;
    size_t idx;             /* the pair's position in the dict */
} pk_key_t;

static int pk_key_cmp(const void *a, const void *b)
{
    const pk_key_t *x = a, *y = b;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    if (x->v != y->v)
        return x->v < y->v ? -1 : 1;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    int c = x->len ? memcmp(x->p, y->p, x->len) : 0;
    if (c != 0)
        return c;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* The exact decimal digits of an integral |v| >= 2^63 (at most 309): m * 2^e in base 10^9. */
static const char *pk_float_digits(pk_dec_t *d, double v, size_t *nd)
{
    uint32_t chunk[40];     /* 2^1024 < 10^309: 35 chunks of 9 digits */
    size_t nc = 0;
    int e;
    double m = frexp(fabs(v), &e);      /* |v| = m * 2^e, 0.5 <= m < 1 */
    uint64_t mant = (uint64_t)ldexp(m, 53);
    e -= 53;
    while (mant) {
        chunk[nc++] = (uint32_t)(mant % 1000000000u);
        mant /= 1000000000u;
    }
    while (e > 0) {
        int sh = e > 29 ? 29 : e;
        uint64_t carry = 0;
        for (size_t i = 0; i < nc; i++) {
            uint64_t cur = ((uint64_t)chunk[i] << sh) + carry;
            chunk[i] = (uint32_t)(cur % 1000000000u);
            carry = cur / 1000000000u;
        }
        while (carry) {
            chunk[nc++] = (uint32_t)(carry % 1000000000u);
            carry /= 1000000000u;
        }
        e -= sh;
    }
    return pk_chunks_decimal(d, chunk, nc, nd);
}

static int pk_bad_key(pk_dec_t *d, const pk_obj_t *k)
{
    return pk_fail(d, CODEC_EFORMAT, "pickle: json.dumps refuses a dict key of type %s (keys must be str, int, "
                   "float, bool or None)", pk_typenames[k->type]);
}

static int pk_key_of(pk_dec_t *d, pk_obj_t *k, pk_key_t *key)
{
    memset(key, 0, sizeof(*key));
    switch (k->type) {
    case PK_NONE:
        key->kind = PK_K_NONE;
        return 0;
    case PK_BOOL: case PK_INT:
        key->kind = PK_K_INT;
        key->v = (uint64_t)k->u.i;
        return 0;
    case PK_BIGINT:
        if (k->flags & PK_F_HUGE)
            return pk_fail(d, CODEC_EFORMAT, "pickle: an int of more than %d digits (json.dumps refuses it)",
                           PK_MAX_STR_DIGITS);
        key->kind = k->flags & PK_F_NEG ? PK_K_BIGNEG : PK_K_BIGPOS;
        key->p = k->u.s.p;
        key->len = k->u.s.n;
        return 0;
    case PK_FLOAT: {
        double f = k->u.f;
        if (isnan(f)) {
            key->kind = PK_K_NAN;
            key->v = (uint64_t)(uintptr_t)k;
        } else if (isinf(f) || f != floor(f)) {
            key->kind = PK_K_FLOAT;
            memcpy(&key->v, &f, sizeof(f));
        } else if (f >= -9223372036854775808.0 && f < 9223372036854775808.0) {
            key->kind = PK_K_INT;
            key->v = (uint64_t)(int64_t)f;
        } else {
            key->kind = f < 0 ? PK_K_BIGNEG : PK_K_BIGPOS;
            if ((key->p = pk_float_digits(d, f, &key->len)) == NULL)
                return -1;
        }
        return 0;
    }
    case PK_STR:
        key->kind = PK_K_STR;
        key->p = k->u.s.p;
        key->len = k->u.s.n;
        return 0;
    default:
        return pk_bad_key(d, k);
    }
}

/*
 * Python dict semantics for the pairs as they were set: one entry per distinct key, in the order each
 * key was first set, holding that first key object and the last value set for it. Done once per dict (in
 * place), by sorting the keys: O(n log n) whatever the keys are.
 */
int pk_dict_merge(pk_dec_t *d, pk_obj_t *dict)
{
    size_t m = dict->u.seq.n / 2;
    pk_obj_t **kv = dict->u.seq.v;

    dict->flags |= PK_F_MERGED;
    if (m < 2)
        return 0;
    if (pk_charge(d, m * (sizeof(pk_key_t) + sizeof(size_t))) < 0)
        return -1;
    pk_key_t *keys = mem_alloc(m * sizeof(*keys));
    size_t *take = mem_alloc(m * sizeof(*take));
    int rc = 0;
    for (size_t i = 0; i < m && rc == 0; i++) {
        rc = pk_key_of(d, kv[2 * i], &keys[i]);
        keys[i].idx = i;
        take[i] = SIZE_MAX;
    }
    if (rc == 0) {
        qsort(keys, m, sizeof(*keys), pk_key_cmp);
        for (size_t i = 0; i < m;) {
            size_t j = i + 1;
            while (j < m && keys[j].kind == keys[i].kind && keys[j].v == keys[i].v && keys[j].len == keys[i].len &&
                   (keys[i].len == 0 || memcmp(keys[j].p, keys[i].p, keys[i].len) == 0))
                j++;
            take[keys[i].idx] = keys[j - 1].idx;    /* first key, last value */
            i = j;
        }
        size_t o = 0;
        for (size_t i = 0; i < m; i++) {
            if (take[i] == SIZE_MAX)
                continue;
            kv[2 * o] = kv[2 * i];
            kv[2 * o + 1] = kv[2 * take[i] + 1];
            o++;
        }
        dict->u.seq.n = 2 * o;
    }
    mem_free(keys);
    mem_free(take);
    return rc;
}

int pk_out_check(pk_dec_t *d, const buf_t *out, size_t more)
{
    if (out->len > d->max_out || more > d->max_out - out->len)
        return pk_fail(d, CODEC_ETOOBIG, "pickle: decoded value is larger than the largest decoded value (%zu)",
                       d->max_out);
    return 0;
}


/* The height of a container's contents, rendered: -1 on error. */
static int pk_render_container(pk_dec_t *d, pk_obj_t *o, buf_t *out, int depth)
{
    int dict = o->type == PK_DICT, height = 0;

    if (o->flags & PK_F_ACTIVE)
        return pk_fail(d, CODEC_EFORMAT, "pickle: circular reference (json.dumps refuses it)");
    if (depth >= PK_MAX_DEPTH)
        return pk_fail(d, CODEC_EFORMAT, "pickle: nested deeper than %d levels (json.dumps refuses it)",
                       PK_MAX_DEPTH);
    if (dict && !(o->flags & PK_F_MERGED) && pk_dict_merge(d, o) < 0)
        return -1;

    o->flags |= PK_F_ACTIVE;
    buf_append(out, dict ? "{" : "[", 1);
    for (size_t i = 0; i < o->u.seq.n; i += dict ? 2 : 1) {
        if (i > 0)
            jsonw_sep(out);
        if (dict) {
            /* a key as json.dumps converts it: str as it is, numbers, bools and None as their JSON, quoted */
            pk_obj_t *k = o->u.seq.v[i];
            int t = k->type;
            if (t != PK_STR && t != PK_NONE && t != PK_BOOL && t != PK_INT && t != PK_BIGINT && t != PK_FLOAT)
                return pk_bad_key(d, k);
            if (t != PK_STR)
                buf_append(out, "\"", 1);
            if (pk_render(d, k, out, depth + 1) < 0)
                return -1;
            if (t != PK_STR)
                buf_append(out, "\"", 1);
            jsonw_colon(out);
        }
        int h = pk_render(d, o->u.seq.v[i + (size_t)dict], out, depth + 1);
        if (h < 0 || pk_out_check(d, out, 0) < 0)
            return -1;
        if (h > height)
            height = h;
    }
    buf_append(out, dict ? "}" : "]", 1);
    o->flags &= (unsigned char)~PK_F_ACTIVE;
    return height;
}

/*
 * Append o's JSON text (json.dumps, but bytes as latin-1 text). Returns the number of container levels
 * in it (0 for a scalar), or -1 on error. depth: containers around it.
 */
int pk_render(pk_dec_t *d, pk_obj_t *o, buf_t *out, int depth)
{
    int height = 0;

    if (o->out_len > 0) {
        /* rendered before: the same text again (it is already in out, so no more than out holds) */
        if (depth + o->height > PK_MAX_DEPTH)
            return pk_fail(d, CODEC_EFORMAT, "pickle: nested deeper than %d levels (json.dumps refuses it)",
                           PK_MAX_DEPTH);
        if (pk_out_check(d, out, o->out_len) < 0)
            return -1;
        buf_reserve(out, o->out_len);
        memcpy(out->data + out->len, out->data + o->out_off, o->out_len);
        out->len += o->out_len;
        return o->height;
    }

    size_t off = out->len;
    switch (o->type) {
    case PK_NONE:
        jsonw_null(out);
        break;
    case PK_BOOL:
        jsonw_bool(out, (int)o->u.i);
        break;
    case PK_INT:
        jsonw_int(out, (long long)o->u.i);
        break;
    case PK_BIGINT:
        if (o->flags & PK_F_HUGE)
            return pk_fail(d, CODEC_EFORMAT, "pickle: an int of more than %d digits (json.dumps refuses it)",
                           PK_MAX_STR_DIGITS);
        if (pk_out_check(d, out, o->u.s.n + 1) < 0)
            return -1;
        if (o->flags & PK_F_NEG)
            buf_append(out, "-", 1);
        buf_append(out, o->u.s.p, o->u.s.n);
        break;
    case PK_FLOAT:
        jsonw_double(out, o->u.f);
        break;
    case PK_STR:
        if (o->flags & PK_F_SURROGATE)
            return pk_fail(d, CODEC_EFORMAT, "pickle: a str with a lone surrogate cannot be returned");
        if (pk_out_check(d, out, o->u.s.n + 2) < 0)
            return -1;
        if (jsonw_string(out, o->u.s.p, o->u.s.n) < 0)  /* checked when loaded: cannot happen */
            return pk_fail(d, CODEC_EFORMAT, "pickle: a str that is not UTF-8");
        break;
    case PK_BYTES: case PK_BYTEARRAY:
        /* not json.dumps (TypeError there): the msgpack codec's rendering of bin */
        if (pk_out_check(d, out, o->u.s.n + 2) < 0)
            return -1;
        jsonw_latin1(out, o->u.s.p, o->u.s.n);
        break;
    case PK_LIST: case PK_TUPLE: case PK_DICT:
        if ((height = pk_render_container(d, o, out, depth)) < 0)
            return -1;
        height++;
        break;
    default:
        return pk_fail(d, CODEC_EFORMAT, "pickle: a %s cannot be rendered (json.dumps refuses it)",
                       pk_typenames[o->type]);
    }
    o->out_off = off;
    o->out_len = out->len - off;
    o->height = (uint16_t)height;
    return height;
}

