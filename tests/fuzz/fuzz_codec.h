/*
 * fuzz_codec: the checks every codec harness (fuzz_codec_<name>.c) runs on one codec_t.
 *
 * decode, with max_decoded 64 KiB (1 MiB for one input in 32: the limit logic is the same at any size,
 * and the bombs a corpus collects cost less), on the codec's context (created once and reused, as a
 * thread does) and, for one input in 16, also on no context (a temporary one):
 *   - the result is CODEC_OK, CODEC_EFORMAT or CODEC_ETOOBIG, with a message that fits CODEC_ERRLEN on
 *     an error; CODEC_OK never gives more than max_decoded bytes;
 *   - decoding again (the same context, or none) gives the same result and bytes: no state leaks between
 *     values;
 *   - a value that decodes to L bytes (L up to 64 KiB; beyond, one input in 8) gives CODEC_ETOOBIG with a
 *     limit of L - 1, and with a limit of exactly L gives the same L bytes (compressors,
 *     FUZZ_EXACT_LIMIT) or at worst CODEC_ETOOBIG (serializers check the limit while rendering, json.c).
 * encode then decode: the input, as the client's value, encoded with data-derived parameters (level,
 * pickle protocol) must encode (json: exactly when the input is UTF-8 without surrogates) and decode back
 * to itself.
 */
#ifndef CACHETORYD_TESTS_FUZZ_CODEC_H
#define CACHETORYD_TESTS_FUZZ_CODEC_H

#include <stdint.h>
#include <string.h>

#include "codec/codec.h"
#include "fuzz.h"
#include "util/buf.h"

#define FUZZ_MAX_DECODED ((size_t)1 << 20)      /* the limit for one input in 32, and for round trips */
#define FUZZ_SMALL_DECODED ((size_t)64 << 10)   /* the limit for the others: a bomb is refused sooner */

#define FUZZ_EXACT_LIMIT 0x01   /* a limit of exactly the decoded size must decode */
#define FUZZ_UTF8_ONLY   0x02   /* encode takes only UTF-8 text (json) */

/* Strict UTF-8 as Python's bytes.decode('utf-8'): no overlong forms, no surrogates, <= U+10FFFF. */
static inline int fuzz_utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t len;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            len = 2, cp = c & 0x1f, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3, cp = c & 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i < len)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += len;
    }
    return 1;
}

static inline void fuzz_codec_check_rc(const codec_t *c, int rc, const char *err, const buf_t *out, size_t max,
                                       const char *what)
{
    /* CODEC_ENODICT: a zstd frame naming a dictionary the (empty) set does not have */
    FUZZ_CHECK(rc == CODEC_OK || rc == CODEC_EFORMAT || rc == CODEC_ETOOBIG || rc == CODEC_ENODICT,
               "%s %s: returned %d", c->name, what, rc);
    if (rc == CODEC_OK) {
        FUZZ_CHECK(out->len <= max, "%s %s: %zu bytes, more than max_decoded %zu", c->name, what, out->len, max);
    } else {
        FUZZ_CHECK(memchr(err, '\0', CODEC_ERRLEN) != NULL && err[0] != '\0', "%s %s: error %d without a message",
                   c->name, what, rc);
    }
}

static inline int fuzz_codec_decode(const codec_t *c, void *ctx, size_t max, const uint8_t *in, size_t n,
                                    buf_t *out, char *err)
{
    codec_params_t p;
    memset(&p, 0, sizeof(p));
    p.compression_level = -1;
    p.pickle_protocol = 5;
    p.max_decoded = max;
    buf_reset(out);
    err[0] = '\0';
    return c->decode(ctx, &p, (const char *)in, n, out, err);
}

static inline int fuzz_codec_same(const buf_t *a, const buf_t *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* The checks above, on one input. ctx is the codec's long-lived context (NULL if it has none). */
static inline void fuzz_codec_run(const codec_t *c, void *ctx, int flags, const uint8_t *data, size_t n)
{
    uint64_t h = fuzz_hash(data, n);
    char err[CODEC_ERRLEN];
    buf_t out, again;
    int rc, rc2;

    buf_init(&out);
    buf_init(&again);

    /* in a block of exactly n bytes, so that ASan sees a read past the end */
    uint8_t *in = malloc(n ? n : 1);
    memcpy(in, data, n);

    /* Mostly the long-lived context (as the server runs); one input in 16 also without one, which makes
     * a compressor set up and free a whole temporary context (slow, and rare in the server). */
    int no_ctx = (h & 15) == 0;
    void *first = ctx, *second = no_ctx ? NULL : ctx;
    size_t max = ((h >> 24) & 31) == 0 ? FUZZ_MAX_DECODED : FUZZ_SMALL_DECODED;
    rc = fuzz_codec_decode(c, first, max, in, n, &out, err);
    fuzz_codec_check_rc(c, rc, err, &out, max, "decode");

    rc2 = fuzz_codec_decode(c, second, max, in, n, &again, err);
    fuzz_codec_check_rc(c, rc2, err, &again, max, "decode again");
    FUZZ_CHECK(rc == rc2 && (rc != CODEC_OK || fuzz_codec_same(&out, &again)),
               "%s: decoding twice gave %d (%zu bytes) then %d (%zu bytes)", c->name, rc, out.len, rc2, again.len);

    /* the limit at the exact size: always for small values, one in 8 for big ones (each costs a decode of
     * up to 1 MiB, and inputs that expand that much are many in a corpus: compression bombs) */
    if (rc == CODEC_OK && (out.len <= ((size_t)64 << 10) || ((h >> 20) & 7) == 0)) {
        size_t len = out.len;
        rc2 = fuzz_codec_decode(c, ctx, len, in, n, &again, err);
        fuzz_codec_check_rc(c, rc2, err, &again, len, "decode with max_decoded = its size");
        if (flags & FUZZ_EXACT_LIMIT)
            FUZZ_CHECK(rc2 == CODEC_OK, "%s: %zu bytes do not decode with max_decoded %zu: %d %s", c->name, len,
                       len, rc2, err);
        else
            FUZZ_CHECK(rc2 == CODEC_OK || rc2 == CODEC_ETOOBIG, "%s: %d at max_decoded = its size %zu", c->name,
                       rc2, len);
        FUZZ_CHECK(rc2 != CODEC_OK || fuzz_codec_same(&out, &again), "%s: other bytes with max_decoded %zu",
                   c->name, len);
        if (len > 0) {
            rc2 = fuzz_codec_decode(c, ctx, len - 1, in, n, &again, err);
            fuzz_codec_check_rc(c, rc2, err, &again, len - 1, "decode with max_decoded = its size - 1");
            FUZZ_CHECK(rc2 == CODEC_ETOOBIG, "%s: %zu bytes with max_decoded %zu gave %d, not CODEC_ETOOBIG (%s)",
                       c->name, len, len - 1, rc2, err);
        }
    }

    /* the input as a client's value: encode, decode, compare */
    codec_params_t pe;
    memset(&pe, 0, sizeof(pe));
    pe.max_decoded = FUZZ_MAX_DECODED;
    pe.pickle_protocol = 2 + (int)((h >> 8) % 4);
    /* a chain's level is fixed, so a context keeps its compressor set up for it; a new level makes it set
     * up again (zlib: deflateEnd + deflateInit2, 256 KiB zeroed): only one input in 8 asks for one */
    pe.level_set = ((h >> 12) & 7) == 0;
    pe.compression_level = strcmp(c->name, "zstd") == 0 ? (int)((h >> 16) % 15) - 5 : (int)((h >> 16) % 11) - 1;
    buf_reset(&out);
    err[0] = '\0';
    rc = c->encode(no_ctx ? NULL : ctx, &pe, (const char *)in, n, &out, err);
    if (flags & FUZZ_UTF8_ONLY) {
        int valid = fuzz_utf8_valid(in, n);
        FUZZ_CHECK(rc == (valid ? CODEC_OK : CODEC_EINPUT), "%s encode: %d for %s input", c->name, rc,
                   valid ? "UTF-8" : "non-UTF-8");
    } else {
        FUZZ_CHECK(rc == CODEC_OK, "%s encode: %d (%s)", c->name, rc, err);
    }
    if (rc == CODEC_OK) {
        rc2 = fuzz_codec_decode(c, ctx, FUZZ_MAX_DECODED, (const uint8_t *)out.data, out.len,
                                &again, err);
        FUZZ_CHECK(rc2 == CODEC_OK, "%s: own encoding of %zu bytes (level %d%s, protocol %d) does not decode: %d %s",
                   c->name, n, pe.compression_level, pe.level_set ? "" : " unset", pe.pickle_protocol, rc2, err);
        FUZZ_CHECK(again.len == n && (n == 0 || memcmp(again.data, in, n) == 0),
                   "%s: round trip of %zu bytes (level %d%s, protocol %d) gave %zu other bytes", c->name, n,
                   pe.compression_level, pe.level_set ? "" : " unset", pe.pickle_protocol, again.len);
        /* and exactly n bytes is enough room for it */
        rc2 = fuzz_codec_decode(c, ctx, n, (const uint8_t *)out.data, out.len, &again, err);
        FUZZ_CHECK(rc2 == CODEC_OK && again.len == n, "%s: own encoding of %zu bytes needs more room: %d %s",
                   c->name, n, rc2, err);
    }

    free(in);
    buf_deinit(&out);
    buf_deinit(&again);
}

#endif
