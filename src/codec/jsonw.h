/*
 * codec/jsonw: write JSON text exactly as Python's json.dumps does with its defaults
 * (ensure_ascii=True, separators ", " and ": ", floats as repr(), NaN / Infinity / -Infinity), so that a
 * value cachetory's Python side would render and the one cachetoryd renders are the same bytes.
 *
 * Used by the json codec (a client value is written as a JSON string) and by the msgpack and pickle
 * decoders (a stored value that is not bytes or str — an int, a list, a map — is returned as its JSON
 * text).
 */
#ifndef CACHETORYD_CODEC_JSONW_H
#define CACHETORYD_CODEC_JSONW_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* A JSON string of UTF-8 text: '"', escapes as Python (\" \\ \n \r \t \b \f, other controls and every
 * non-ASCII character as \uXXXX in lower-case hex, characters above U+FFFF as a surrogate pair), '"'.
 * Returns 0, or -1 if s is not valid UTF-8 (nothing is guaranteed about out then). */
int jsonw_string(buf_t *out, const char *s, size_t n);

/* One code point (<= 0x10FFFF) inside a string, escaped as above: the one escaper of the program (the
 * json decoder re-escapes what it reads with it). A lone surrogate, which Python's str can hold, is
 * written as its own \udxxx, as json.dumps writes it. */
void jsonw_codepoint(buf_t *out, unsigned cp);

/* A string that may not be UTF-8 (msgpack bin, pickle bytes inside a structure): each byte as the
 * code point of the same value (latin-1), so any bytes have a JSON form. */
void jsonw_latin1(buf_t *out, const char *s, size_t n);

void jsonw_int(buf_t *out, long long v);
void jsonw_uint(buf_t *out, unsigned long long v);
void jsonw_double(buf_t *out, double v);     /* Python's repr: 1.0, 0.1, 1e+16, 1e-05, NaN, Infinity */
void jsonw_bool(buf_t *out, int v);          /* true / false */
void jsonw_null(buf_t *out);                 /* null */

/* A member of an object being rendered, for folding repeated keys as a Python dict does. */
typedef struct jsonw_member {
    size_t key_off;             /* the key's comparison form, in the renderer's own key store */
    size_t key_len;
    size_t key_at;              /* offset in out of the key's text ("key": ) */
    size_t val_at;              /* offset in out of the value's text */
    size_t end;                 /* offset in out after the value */
} jsonw_member_t;

/* The object just rendered at out[obj_at..] has the members m[0..cnt), whose comparison keys are at
 * keys + key_off. If keys repeat, rebuild its text as Python's dict would be: each key once, where it
 * first appeared, with its last value. */
void jsonw_fold_repeats(buf_t *out, size_t obj_at, const jsonw_member_t *m, size_t cnt, const char *keys);

/* Between elements of an array or pairs of an object: ", "; between a key and its value: ": ". */
static inline void jsonw_sep(buf_t *out) { buf_append(out, ", ", 2); }
static inline void jsonw_colon(buf_t *out) { buf_append(out, ": ", 2); }

#endif
