/*
 * codec/msgpack: cachetory's MsgPackSerializer — msgpack.packb(value) on write, msgpack.unpackb(data) on
 * read.
 *
 * encode: the client's bytes as one msgpack bin (bin8 / bin16 / bin32 by length), byte for byte what
 * Python's msgpack.packb(value) writes for a bytes value (use_bin_type=True is its default). Written with
 * msgpack-c's packer. A value of 4 GiB or more has no msgpack form: CODEC_EINPUT.
 *
 * decode: exactly one msgpack object that uses all the input (trailing bytes, a truncated object, the
 * never-used type byte 0xc1: CODEC_EFORMAT).
 *   - top-level str and bin give their payload bytes as they are (a str is not checked for UTF-8, which
 *     Python's unpackb would refuse: the bytes are what the writer stored);
 *   - any other value gives the JSON text json.dumps(msgpack.unpackb(data)) writes (codec/jsonw): ints
 *     exactly, float32 widened to double as Python does (0.10000000149011612), floats as repr(), true,
 *     false, null, arrays as lists, maps as dicts — and a map with a repeated key is the dict Python
 *     builds: the key where it first appears, with the value of its last occurrence, where keys compare as
 *     in Python (1, 1.0 and true are one key; each NaN is its own key; a str never equals a bin);
 *   - map keys become JSON strings as json.dumps converts dict keys: str as it is, int 1 -> "1", float
 *     1.5 -> "1.5", true / false / nil -> "true" / "false" / "null".
 * Where Python gives no JSON text, and what cachetoryd does instead:
 *   - a bin inside an array or a map (json.dumps refuses bytes): a JSON string of its bytes as latin-1
 *     code points (jsonw_latin1), so b"\x00\xff" -> "\u0000\u00ff";
 *   - a bin map key: the same latin-1 string;
 *   - a map key that is an int, float, bool or nil: rendered as above, though unpackb's default
 *     strict_map_key=True refuses such keys (this is what unpackb(data, strict_map_key=False) gives);
 *   - a str inside a structure that is not UTF-8 (unpackb fails): CODEC_EFORMAT;
 *   - an array or a map as a map key (unhashable in Python): CODEC_EFORMAT;
 *   - ext, at any level (Python gives ExtType or Timestamp, which json.dumps refuses): CODEC_EFORMAT;
 *   - nesting deeper than MP_MAX_DEPTH (128; Python's unpacker allows 1024): CODEC_EFORMAT.
 *
 * Why a walker of our own rather than msgpack-c's unpacker: msgpack_unpack_next() allocates the element
 * array of an array or map from its declared length before the elements are there — the 5 bytes
 * "dd 01 00 00 00" (array32 of 2^24 elements) make it allocate 512 MiB and return "continue" — and it fails
 * nesting deeper than 32 (MSGPACK_EMBED_STACK_SIZE) with a "no memory" error. The walker below allocates
 * nothing from declared lengths: a length is first checked against the bytes that remain (an element is at
 * least one byte), and memory only grows with bytes actually read (the output, the member records of the
 * maps open). Like the json codec it makes two passes, one that validates everything (so damaged input is
 * always CODEC_EFORMAT, never CODEC_ETOOBIG) and one that renders; max_decoded is checked while rendering,
 * so a map whose repeated keys would shrink it back under the limit is still CODEC_ETOOBIG.
 */
#include "codec/codec.h"

#include <math.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/jsonw.h"
#include "util/mem.h"

#define MP_MAX_DEPTH 128

/* What a value is read as. */
#define MP_AS_VALUE 0
#define MP_AS_KEY   1           /* a map key: rendered as a JSON string, and its comparison form kept */

/* A member of a map being rendered. */
typedef jsonw_member_t mp_member_t;

typedef struct mp_reader {
    const unsigned char *s; /* the input */
    size_t n;
    size_t pos;             /* next byte to read */
    buf_t *out;             /* NULL while validating */
    size_t max;             /* max_decoded */
    int depth;              /* arrays and maps open */
    int status;             /* CODEC_OK until the first error */
    char why[96];           /* the first error */
    size_t at;              /* where its object starts */
    buf_t keys;             /* comparison forms of the keys of mem[] */
    mp_member_t *mem;       /* members of the maps open, as a stack */
    size_t nmem;
    size_t capmem;
} mp_reader_t;

static int mp_value(mp_reader_t *r, int as);

static int mp_fail(mp_reader_t *r, size_t at, const char *why)
{
    if (r->status == CODEC_OK) {
        r->status = CODEC_EFORMAT;
        snprintf(r->why, sizeof(r->why), "%s", why);
        r->at = at;
    }
    return -1;
}

static int mp_check_size(mp_reader_t *r)
{
    if (r->out != NULL && r->out->len > r->max) {
        if (r->status == CODEC_OK)
            r->status = CODEC_ETOOBIG;
        return -1;
    }
    return 0;
}

/* The big-endian unsigned integer of w bytes at pos (the caller has checked they are there). */
static uint64_t mp_be(const mp_reader_t *r, size_t pos, int w)
{
    uint64_t v = 0;

    for (int i = 0; i < w; i++)
        v = v << 8 | r->s[pos + i];
    return v;
}

/* The comparison form of a numeric key (int, bool, float): numbers Python finds equal (1 == 1.0 == True,
 * 0 == -0.0 == False) get the same bytes. */
static void mp_key_int(mp_reader_t *r, int neg, uint64_t mag)
{
    unsigned char k[10];

    k[0] = 'i';
    k[1] = neg && mag != 0;
    for (int i = 0; i < 8; i++)
        k[2 + i] = (unsigned char)(mag >> (56 - 8 * i));
    buf_append(&r->keys, k, sizeof(k));
}

static void mp_key_double(mp_reader_t *r, double d)
{
    unsigned char k[1 + sizeof(double) + sizeof(size_t)];

    if (d == floor(d) && d >= -9223372036854775808.0 && d < 18446744073709551616.0) {
        if (d < 0)
            mp_key_int(r, 1, (uint64_t)-d);
        else
            mp_key_int(r, 0, (uint64_t)d);
        return;
    }
    k[0] = 'f';
    memcpy(k + 1, &d, sizeof(d));
    if (isnan(d)) {
        /* each NaN object is a key of its own: make the bytes unique with the member's index */
        k[0] = 'N';
        memcpy(k + 1 + sizeof(d), &r->nmem, sizeof(size_t));
        buf_append(&r->keys, k, sizeof(k));
        return;
    }
    buf_append(&r->keys, k, 1 + sizeof(d));
}

/* A key is rendered as a JSON string: a number or literal gets quotes around it. */
static void mp_quote(mp_reader_t *r, int as)
{
    if (as == MP_AS_KEY && r->out != NULL)
        buf_append(r->out, "\"", 1);
}

static int mp_int(mp_reader_t *r, int as, int neg, uint64_t mag)
{
    if (r->out == NULL)
        return 0;
    mp_quote(r, as);
    if (neg)
        jsonw_int(r->out, mag == 0 ? 0 : -(long long)(mag - 1) - 1);
    else
        jsonw_uint(r->out, mag);
    mp_quote(r, as);
    if (as == MP_AS_KEY)
        mp_key_int(r, neg, mag);
    return 0;
}

static int mp_signed(mp_reader_t *r, int as, int64_t v)
{
    return v < 0 ? mp_int(r, as, 1, (uint64_t)(-(v + 1)) + 1) : mp_int(r, as, 0, (uint64_t)v);
}

static int mp_double(mp_reader_t *r, int as, double d)
{
    if (r->out == NULL)
        return 0;
    mp_quote(r, as);
    jsonw_double(r->out, d);
    mp_quote(r, as);
    if (as == MP_AS_KEY)
        mp_key_double(r, d);
    return 0;
}

/* nil, true, false: the word, and for a key its comparison form (bools are the ints 0 and 1). */
static int mp_word(mp_reader_t *r, int as, int which)
{
    if (r->out == NULL)
        return 0;
    mp_quote(r, as);
    if (which < 0)
        jsonw_null(r->out);
    else
        jsonw_bool(r->out, which);
    mp_quote(r, as);
    if (as == MP_AS_KEY) {
        if (which < 0)
            buf_append(&r->keys, "n", 1);
        else
            mp_key_int(r, 0, (uint64_t)which);
    }
    return 0;
}

/* Strict UTF-8, as Python's bytes.decode('utf-8'): no overlong forms, surrogates or code points above
 * U+10FFFF. */
static int mp_utf8_valid(const unsigned char *p, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned c = p[i];
        size_t k;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            k = 1;
        else if (c >= 0xe0 && c <= 0xef)
            k = 2;
        else if (c >= 0xf0 && c <= 0xf4)
            k = 3;
        else
            return 0;
        if (n - i <= k)
            return 0;
        for (size_t j = 1; j <= k; j++)
            if ((p[i + j] & 0xc0) != 0x80)
                return 0;
        if ((c == 0xe0 && p[i + 1] < 0xa0) || (c == 0xed && p[i + 1] >= 0xa0) ||
            (c == 0xf0 && p[i + 1] < 0x90) || (c == 0xf4 && p[i + 1] >= 0x90))
            return 0;
        i += k + 1;
    }
    return 1;
}

/* A str (is_bin 0) or bin payload of len bytes at pos, inside a structure. */
static int mp_bytes(mp_reader_t *r, int as, int is_bin, size_t at, size_t len)
{
    const char *p = (const char *)r->s + r->pos;

    if (r->out == NULL) {
        /* checked in the first pass, so that a bad str is EFORMAT before anything is rendered; a top-level
         * str (depth 0) gives its bytes unchecked */
        if (!is_bin && r->depth > 0 && !mp_utf8_valid(r->s + r->pos, len))
            return mp_fail(r, at, "a str inside a structure is not UTF-8");
    } else {
        if (is_bin)
            jsonw_latin1(r->out, p, len);
        else if (jsonw_string(r->out, p, len) < 0)
            return mp_fail(r, at, "a str inside a structure is not UTF-8");
        if (as == MP_AS_KEY) {
            buf_append(&r->keys, is_bin ? "b" : "s", 1);
            buf_append(&r->keys, p, len);
        }
    }
    r->pos += len;
    return 0;
}

static int mp_array(mp_reader_t *r, uint64_t count)
{
    for (uint64_t i = 0; i < count; i++) {
        if (i > 0 && r->out != NULL)
            jsonw_sep(r->out);
        if (mp_value(r, MP_AS_VALUE) < 0)
            return -1;
    }
    if (r->out != NULL)
        buf_append(r->out, "]", 1);
    return 0;
}

/* Repeated keys in the map just rendered: folded as Python's dict folds them. */
static void mp_fold_repeats(mp_reader_t *r, size_t base, size_t map_at)
{
    if (r->nmem - base >= 2)     /* (fewer: r->mem may still be NULL, no offset from it) */
        jsonw_fold_repeats(r->out, map_at, r->mem + base, r->nmem - base, r->keys.data);
}

static int mp_map(mp_reader_t *r, uint64_t count)
{
    buf_t *out = r->out;
    size_t map_at = out != NULL ? out->len - 1 : 0;     /* the '{' is already written */
    size_t base = r->nmem, keys_len = r->keys.len;
    int rc = -1;

    for (uint64_t i = 0; i < count; i++) {
        mp_member_t *m = NULL;
        if (out != NULL) {
            if (i > 0)
                jsonw_sep(out);
            if (r->nmem == r->capmem) {
                r->capmem = r->capmem ? r->capmem * 2 : 16;
                r->mem = mem_realloc(r->mem, r->capmem * sizeof(*r->mem));
            }
            m = &r->mem[r->nmem++];
            m->key_at = out->len;
            m->key_off = r->keys.len;
        }
        if (mp_value(r, MP_AS_KEY) < 0)
            goto out_pop;
        if (out != NULL) {
            m = &r->mem[r->nmem - 1];
            m->key_len = r->keys.len - m->key_off;
            jsonw_colon(out);
            m->val_at = out->len;
        }
        if (mp_value(r, MP_AS_VALUE) < 0)
            goto out_pop;
        if (out != NULL)
            r->mem[r->nmem - 1].end = out->len;     /* r->mem may have moved */
    }
    if (out != NULL) {
        buf_append(out, "}", 1);
        mp_fold_repeats(r, base, map_at);
    }
    rc = 0;
out_pop:
    r->nmem = base;
    r->keys.len = keys_len;
    return rc;
}

/* Bytes needed after the type byte, checked before any is read. */
static int mp_need(mp_reader_t *r, size_t at, uint64_t len)
{
    if (len > r->n - r->pos)
        return mp_fail(r, at, "truncated");
    return 0;
}

/*
 * The object at pos: its header read, lengths checked against what remains, then its payload or
 * elements. as says whether it is a map key. Returns 0, or -1 with r->status set.
 */
static int mp_value(mp_reader_t *r, int as)
{
    size_t at = r->pos;
    unsigned t;
    uint64_t len;
    int w, rc;

    if (r->pos >= r->n)
        return mp_fail(r, at, "truncated");
    t = r->s[r->pos++];

    if (t <= 0x7f) {
        rc = mp_int(r, as, 0, t);
    } else if (t >= 0xe0) {
        rc = mp_signed(r, as, (int64_t)t - 256);
    } else if (t >= 0xa0 && t <= 0xbf) {
        rc = mp_need(r, at, t & 0x1f) < 0 ? -1 : mp_bytes(r, as, 0, at, t & 0x1f);
    } else if (t <= 0x9f || t == 0xdc || t == 0xdd || t == 0xde || t == 0xdf) {
        /* fixmap 8x, fixarray 9x, array16/32, map16/32 */
        int is_map = (t >= 0x80 && t <= 0x8f) || t == 0xde || t == 0xdf;
        if (t <= 0x9f) {
            len = t & 0x0f;
        } else {
            w = (t == 0xdc || t == 0xde) ? 2 : 4;
            if (mp_need(r, at, (uint64_t)w) < 0)
                return -1;
            len = mp_be(r, r->pos, w);
            r->pos += (size_t)w;
        }
        if (as == MP_AS_KEY)
            return mp_fail(r, at, is_map ? "a map as a map key" : "an array as a map key");
        /* every element is at least one byte: a length the input cannot hold is refused up front */
        if (mp_need(r, at, is_map ? 2 * len : len) < 0)
            return -1;
        if (r->depth >= MP_MAX_DEPTH)
            return mp_fail(r, at, "nesting deeper than 128 levels");
        r->depth++;
        if (r->out != NULL)
            buf_append(r->out, is_map ? "{" : "[", 1);
        rc = is_map ? mp_map(r, len) : mp_array(r, len);
        r->depth--;
    } else {
        switch (t) {
        case 0xc0: rc = mp_word(r, as, -1); break;
        case 0xc2: rc = mp_word(r, as, 0); break;
        case 0xc3: rc = mp_word(r, as, 1); break;
        case 0xc4: case 0xc5: case 0xc6:    /* bin8/16/32 */
        case 0xd9: case 0xda: case 0xdb:    /* str8/16/32 */
            w = 1 << (t >= 0xd9 ? t - 0xd9 : t - 0xc4);
            if (mp_need(r, at, (uint64_t)w) < 0)
                return -1;
            len = mp_be(r, r->pos, w);
            r->pos += (size_t)w;
            if (mp_need(r, at, len) < 0)
                return -1;
            rc = mp_bytes(r, as, t <= 0xc6, at, (size_t)len);
            break;
        case 0xca: {                        /* float32: widened as Python does */
            float f;
            uint32_t u;
            if (mp_need(r, at, 4) < 0)
                return -1;
            u = (uint32_t)mp_be(r, r->pos, 4);
            memcpy(&f, &u, sizeof(f));
            r->pos += 4;
            rc = mp_double(r, as, (double)f);
            break;
        }
        case 0xcb: {                        /* float64 */
            double d;
            uint64_t u;
            if (mp_need(r, at, 8) < 0)
                return -1;
            u = mp_be(r, r->pos, 8);
            memcpy(&d, &u, sizeof(d));
            r->pos += 8;
            rc = mp_double(r, as, d);
            break;
        }
        case 0xcc: case 0xcd: case 0xce: case 0xcf:     /* uint8..64 */
            w = 1 << (t - 0xcc);
            if (mp_need(r, at, (uint64_t)w) < 0)
                return -1;
            len = mp_be(r, r->pos, w);
            r->pos += (size_t)w;
            rc = mp_int(r, as, 0, len);
            break;
        case 0xd0: case 0xd1: case 0xd2: case 0xd3: {   /* int8..64: sign-extend */
            w = 1 << (t - 0xd0);
            if (mp_need(r, at, (uint64_t)w) < 0)
                return -1;
            uint64_t u = mp_be(r, r->pos, w);
            r->pos += (size_t)w;
            if (w < 8 && (u >> (8 * w - 1)))
                u |= ~(uint64_t)0 << (8 * w);
            int64_t v;
            memcpy(&v, &u, sizeof(v));
            rc = mp_signed(r, as, v);
            break;
        }
        case 0xc7: case 0xc8: case 0xc9:    /* ext8/16/32 */
        case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8: {    /* fixext 1..16 */
            char why[80];
            if (t >= 0xd4) {
                len = (uint64_t)1 << (t - 0xd4);
            } else {
                w = 1 << (t - 0xc7);
                if (mp_need(r, at, (uint64_t)w) < 0)
                    return -1;
                len = mp_be(r, r->pos, w);
                r->pos += (size_t)w;
            }
            if (mp_need(r, at, len + 1) < 0)
                return -1;
            snprintf(why, sizeof(why), "ext type %d, which has no JSON form", (signed char)r->s[r->pos]);
            return mp_fail(r, at, why);
        }
        default:                            /* 0xc1 */
            return mp_fail(r, at, "0xc1, which is not a msgpack type");
        }
    }
    if (rc == 0)
        rc = mp_check_size(r);
    return rc;
}

/* The top-level object: str and bin give their bytes, anything else its JSON text. */
static int mp_top(mp_reader_t *r, buf_t *out)
{
    unsigned t = r->s[0];

    r->pos = 0;
    r->depth = 0;
    r->out = out;
    if (out != NULL && ((t >= 0xa0 && t <= 0xbf) || (t >= 0xc4 && t <= 0xc6) || (t >= 0xd9 && t <= 0xdb))) {
        /* the first pass has checked the lengths */
        size_t hdr = t <= 0xbf ? 1 : 1 + ((size_t)1 << (t >= 0xd9 ? t - 0xd9 : t - 0xc4));
        size_t len = r->n - hdr;
        if (len > r->max) {
            r->status = CODEC_ETOOBIG;
            return -1;
        }
        buf_append(out, r->s + hdr, len);
        return 0;
    }
    if (mp_value(r, MP_AS_VALUE) < 0)
        return -1;
    if (r->pos != r->n) {
        char why[64];
        snprintf(why, sizeof(why), "%zu bytes after the object", r->n - r->pos);
        return mp_fail(r, r->pos, why);
    }
    return 0;
}

static int mp_decode(void *ctx, const codec_params_t *p, const char *in, size_t n, buf_t *out, char *err)
{
    mp_reader_t r;
    size_t out_at = out->len;

    memset(&r, 0, sizeof(r));
    buf_init(&r.keys);
    r.s = (const unsigned char *)in;
    r.n = n;
    r.max = p->max_decoded;
    if (n == 0)
        mp_fail(&r, 0, "no bytes");
    else if (mp_top(&r, NULL) == 0)
        mp_top(&r, out);

    if (r.status == CODEC_EFORMAT)
        snprintf(err, CODEC_ERRLEN, "msgpack: not msgpack (%s, at byte %zu)", r.why, r.at);
    else if (r.status == CODEC_ETOOBIG)
        snprintf(err, CODEC_ERRLEN, "msgpack: the decoded value is larger than the largest decoded value (%zu)",
                 r.max);
    if (r.status != CODEC_OK)
        out->len = out_at;
    mem_free(r.mem);
    buf_deinit(&r.keys);
    return r.status;
}

static int mp_buf_write_cb(void *data, const char *p, size_t len)
{
    buf_append(data, p, len);
    return 0;
}

/* msgpack.packb(value): one bin. */
static int mp_encode(void *ctx, const codec_params_t *p, const char *in, size_t n, buf_t *out, char *err)
{
    msgpack_packer pk;

    if (n > UINT32_MAX) {
        snprintf(err, CODEC_ERRLEN, "msgpack: a value of %zu bytes is longer than msgpack's bin32 can hold", n);
        return CODEC_EINPUT;
    }
    buf_reserve(out, n + 5);
    msgpack_packer_init(&pk, out, mp_buf_write_cb);
    msgpack_pack_bin(&pk, n);
    msgpack_pack_bin_body(&pk, in, n);
    return CODEC_OK;
}

const codec_t codec_msgpack = {
    .name = "msgpack",
    .schemes = (const char *const[]){ "msgpack", NULL },
    .encode = mp_encode,
    .decode = mp_decode,
};
