/*
 * codec/json: cachetory's JsonSerializer — json.dumps(value).encode() on write, json.loads(data) on read.
 *
 * encode: the client's bytes must be UTF-8 text (cachetory stores a Python str); they are written as one
 * JSON string, byte for byte what json.dumps(value) writes (codec/jsonw).
 *
 * decode: the stored bytes are read as Python's json.loads(bytes) reads them, and anything it refuses is
 * CODEC_EFORMAT:
 *   - the text encoding is detected as json.detect_encoding does (UTF-8, UTF-8 with a BOM, UTF-16 and
 *     UTF-32 by BOM or by the pattern of NUL bytes) and decoded with 'surrogatepass', so surrogate code
 *     points encoded in the bytes are accepted, like Python;
 *   - the grammar is the strict one of Python's scanner: whitespace is only space, tab, CR and LF; no
 *     control characters inside strings; the literals NaN, Infinity and -Infinity are values; an integer
 *     has at most 4300 digits (Python's int limit, which makes json.loads fail beyond it); nothing may
 *     follow the value but whitespace.
 * The result: a top-level JSON string gives its text as UTF-8 (escapes decoded, surrogate pairs joined;
 * a lone surrogate cannot be UTF-8, so that is CODEC_EFORMAT). Any other value gives the text
 * json.dumps(json.loads(data)) writes: ", " and ": " separators, strings re-escaped with ensure_ascii,
 * floats as repr() (1e2 -> 100.0, 1E400 -> Infinity), integers with all their digits (-0 -> 0), and for
 * an object with a repeated key the dict Python builds: the key where it first appears, with the value of
 * its last occurrence.
 *
 * Differences from Python, all on the side of refusing: nesting deeper than JSON_MAX_DEPTH (128; Python
 * goes to about 1000 before RecursionError) is CODEC_EFORMAT; the max_decoded limit is checked while
 * rendering, so an object whose repeated keys would shrink it back under the limit is still CODEC_ETOOBIG.
 *
 * How: two passes over the input. The first only validates, so a damaged value is always CODEC_EFORMAT
 * and never CODEC_ETOOBIG; the second renders straight into out. Repeated keys are rare, so objects are
 * rendered in input order while the position of each member's text in out is recorded; when the object
 * closes, its keys are sorted to find repeats, and only if there are any is its text rebuilt in place.
 * Parsing recurses, bounded by JSON_MAX_DEPTH. Memory is proportional to the input (the output, the member
 * records of the objects currently open), never to anything the input declares.
 */
#include "codec/codec.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/jsonw.h"
#include "util/hex.h"
#include "util/mem.h"

#define JSON_MAX_DEPTH      128
#define JSON_MAX_INT_DIGITS 4300    /* sys.int_info.default_max_str_digits */

/* What json_string does with the code points of a string (bits). */
#define JSON_EMIT_ESCAPED 1         /* Python's escaped JSON form, quotes included, into out */
#define JSON_EMIT_TEXT    2         /* UTF-8 text into out; a lone surrogate is an error */
#define JSON_EMIT_KEY     4         /* the comparison form of a key into keys (see json_member_t) */

/* A member of an object being rendered. */
typedef jsonw_member_t json_member_t;

typedef struct json_parser {
    const unsigned char *s; /* the input, as UTF-8 (transcoded if it was UTF-16 / UTF-32) */
    size_t n;
    size_t pos;             /* next byte to read */
    buf_t *out;             /* NULL while validating */
    size_t max;             /* max_decoded */
    int depth;              /* containers open */
    int status;             /* CODEC_OK until the first error */
    const char *why;        /* the first error */
    size_t at;              /* where it was found */
    buf_t keys;             /* keys of the members below */
    json_member_t *mem;     /* members of the objects open, as a stack */
    size_t nmem;
    size_t capmem;
    buf_t num;              /* scratch: a number's text, NUL-terminated, for strtod */
} json_parser_t;

static int json_value(json_parser_t *jp);

static int json_fail(json_parser_t *jp, const char *why)
{
    if (jp->status == CODEC_OK) {
        jp->status = CODEC_EFORMAT;
        jp->why = why;
        jp->at = jp->pos;
    }
    return -1;
}

/* While rendering: stop as soon as the output is past the limit (see the file comment). */
static int json_check_size(json_parser_t *jp)
{
    if (jp->out != NULL && jp->out->len > jp->max) {
        if (jp->status == CODEC_OK)
            jp->status = CODEC_ETOOBIG;
        return -1;
    }
    return 0;
}

static void json_ws(json_parser_t *jp)
{
    while (jp->pos < jp->n) {
        unsigned char c = jp->s[jp->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        jp->pos++;
    }
}

/* The 4 hex digits at s[i..i+4) as a code unit, or -1. */
static long json_hex4(const json_parser_t *jp, size_t i)
{
    long v = 0;

    if (i + 4 > jp->n)
        return -1;
    for (int k = 0; k < 4; k++) {
        int d = hex_digit(jp->s[i + k]);
        if (d < 0)
            return -1;
        v = v << 4 | d;
    }
    return v;
}

/*
 * One UTF-8 sequence at p[0..n) decoded as Python's 'surrogatepass' error handler lets through: strict
 * UTF-8, except that ED A0..BF xx gives the surrogate code point. Returns its length, or 0.
 */
static size_t json_utf8(const unsigned char *p, size_t n, unsigned *cp)
{
    unsigned c = p[0];

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        if (n < 2 || (p[1] & 0xc0) != 0x80)
            return 0;
        *cp = ((c & 0x1f) << 6) | (p[1] & 0x3f);
        return 2;
    }
    if (c >= 0xe0 && c <= 0xef) {
        if (n < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 || (c == 0xe0 && p[1] < 0xa0))
            return 0;
        *cp = ((c & 0x0f) << 12) | ((unsigned)(p[1] & 0x3f) << 6) | (p[2] & 0x3f);
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (n < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80 ||
            (c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90))
            return 0;
        *cp = ((c & 0x07) << 18) | ((unsigned)(p[1] & 0x3f) << 12) | ((unsigned)(p[2] & 0x3f) << 6) |
              (p[3] & 0x3f);
        return 4;
    }
    return 0;
}

/* cp as UTF-8; a surrogate code point gets the 3-byte form (only for the comparison form of keys and for
 * transcoded input, never for output). */
static void json_put_utf8(buf_t *b, unsigned cp)
{
    unsigned char u[4];
    size_t len;

    if (cp < 0x80) {
        u[0] = (unsigned char)cp;
        len = 1;
    } else if (cp < 0x800) {
        u[0] = (unsigned char)(0xc0 | cp >> 6);
        u[1] = (unsigned char)(0x80 | (cp & 0x3f));
        len = 2;
    } else if (cp < 0x10000) {
        u[0] = (unsigned char)(0xe0 | cp >> 12);
        u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (unsigned char)(0x80 | (cp & 0x3f));
        len = 3;
    } else {
        u[0] = (unsigned char)(0xf0 | cp >> 18);
        u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (unsigned char)(0x80 | (cp & 0x3f));
        len = 4;
    }
    buf_append(b, u, len);
}

/*
 * A string at s[pos] == '"', as Python's scanstring reads it: escapes \" \\ \/ \b \f \n \r \t \uXXXX, a
 * \uXXXX high surrogate directly followed by a \uXXXX low surrogate joined into one character, no raw
 * control characters. emit says where its code points go. Returns 0, or -1.
 */
static int json_string(json_parser_t *jp, int emit)
{
    buf_t *out = jp->out;

    jp->pos++;
    if (emit & JSON_EMIT_ESCAPED)
        buf_append(out, "\"", 1);
    for (;;) {
        size_t run = jp->pos;
        while (run < jp->n && jp->s[run] >= 0x20 && jp->s[run] < 0x7f && jp->s[run] != '"' && jp->s[run] != '\\')
            run++;
        if (run > jp->pos) {
            /* printable ASCII is the same in all three forms */
            if (emit & (JSON_EMIT_ESCAPED | JSON_EMIT_TEXT))
                buf_append(out, jp->s + jp->pos, run - jp->pos);
            if (emit & JSON_EMIT_KEY)
                buf_append(&jp->keys, jp->s + jp->pos, run - jp->pos);
            jp->pos = run;
        }
        if (jp->pos >= jp->n)
            return json_fail(jp, "unterminated string");

        unsigned c = jp->s[jp->pos], cp;
        if (c == '"') {
            jp->pos++;
            break;
        }
        if (c < 0x20)
            return json_fail(jp, "control character in a string");
        if (c == '\\') {
            if (jp->pos + 1 >= jp->n)
                return json_fail(jp, "unterminated string");
            switch (jp->s[jp->pos + 1]) {
            case '"':  cp = '"'; break;
            case '\\': cp = '\\'; break;
            case '/':  cp = '/'; break;
            case 'b':  cp = '\b'; break;
            case 'f':  cp = '\f'; break;
            case 'n':  cp = '\n'; break;
            case 'r':  cp = '\r'; break;
            case 't':  cp = '\t'; break;
            case 'u': {
                long u = json_hex4(jp, jp->pos + 2);
                if (u < 0)
                    return json_fail(jp, "invalid \\uXXXX escape");
                cp = (unsigned)u;
                jp->pos += 4;
                if (cp >= 0xd800 && cp <= 0xdbff && jp->pos + 2 + 6 <= jp->n &&
                    jp->s[jp->pos + 2] == '\\' && jp->s[jp->pos + 3] == 'u') {
                    long lo = json_hex4(jp, jp->pos + 4);
                    if (lo >= 0xdc00 && lo <= 0xdfff) {
                        cp = 0x10000 + ((cp - 0xd800) << 10) + ((unsigned)lo - 0xdc00);
                        jp->pos += 6;
                    }
                }
                break;
            }
            default:
                return json_fail(jp, "invalid escape in a string");
            }
            jp->pos += 2;
        } else {
            size_t len = json_utf8(jp->s + jp->pos, jp->n - jp->pos, &cp);
            if (len == 0)
                return json_fail(jp, "bytes that are not UTF-8 in a string");
            jp->pos += len;
        }
        if (emit & JSON_EMIT_ESCAPED)
            jsonw_codepoint(out, cp);
        if (emit & JSON_EMIT_TEXT) {
            if (cp >= 0xd800 && cp <= 0xdfff)
                return json_fail(jp, "a lone surrogate in a top-level string");
            json_put_utf8(out, cp);
        }
        if (emit & JSON_EMIT_KEY)
            json_put_utf8(&jp->keys, cp);
    }
    if (emit & JSON_EMIT_ESCAPED)
        buf_append(out, "\"", 1);
    return 0;
}

static int json_isdigit(const json_parser_t *jp, size_t i)
{
    return i < jp->n && jp->s[i] >= '0' && jp->s[i] <= '9';
}

/*
 * A number, as Python's _match_number reads it: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)? — a '.'
 * or an 'e' not followed by what it needs is left for the caller, which then fails on it, as Python
 * does. With a fraction or an exponent it is a float (float(text), rendered by repr), else an int
 * (rendered with its digits; -0 is 0).
 */
static int json_number(json_parser_t *jp)
{
    size_t start = jp->pos, digits;
    int is_float = 0;

    if (jp->s[jp->pos] == '-')
        jp->pos++;
    if (!json_isdigit(jp, jp->pos))
        return json_fail(jp, "expecting a value");
    if (jp->s[jp->pos] == '0')
        jp->pos++;
    else
        while (json_isdigit(jp, jp->pos))
            jp->pos++;
    digits = jp->pos - start - (jp->s[start] == '-');
    if (jp->pos < jp->n && jp->s[jp->pos] == '.' && json_isdigit(jp, jp->pos + 1)) {
        jp->pos += 2;
        while (json_isdigit(jp, jp->pos))
            jp->pos++;
        is_float = 1;
    }
    if (jp->pos < jp->n && (jp->s[jp->pos] == 'e' || jp->s[jp->pos] == 'E')) {
        size_t e = jp->pos + 1;
        if (e < jp->n && (jp->s[e] == '+' || jp->s[e] == '-'))
            e++;
        if (json_isdigit(jp, e)) {
            while (json_isdigit(jp, e))
                e++;
            jp->pos = e;
            is_float = 1;
        }
    }
    if (!is_float && digits > JSON_MAX_INT_DIGITS) {
        jp->pos = start;
        return json_fail(jp, "an integer with more than 4300 digits (Python's int conversion limit)");
    }
    if (jp->out == NULL)
        return 0;

    size_t len = jp->pos - start;
    if (!is_float) {
        if (len == 2 && jp->s[start] == '-' && jp->s[start + 1] == '0')
            buf_append(jp->out, "0", 1);
        else
            buf_append(jp->out, jp->s + start, len);
        return 0;
    }
    buf_reset(&jp->num);
    buf_append(&jp->num, jp->s + start, len);
    buf_append(&jp->num, "", 1);
    jsonw_double(jp->out, strtod(jp->num.data, NULL));
    return 0;
}

/* The literal lit at pos, written as it is. */
static int json_literal(json_parser_t *jp, const char *lit)
{
    size_t len = strlen(lit);

    if (jp->n - jp->pos < len || memcmp(jp->s + jp->pos, lit, len) != 0)
        return json_fail(jp, "expecting a value");
    if (jp->out != NULL)
        buf_append(jp->out, lit, len);
    jp->pos += len;
    return 0;
}

static int json_array(json_parser_t *jp)
{
    jp->pos++;
    if (jp->out != NULL)
        buf_append(jp->out, "[", 1);
    json_ws(jp);
    if (jp->pos < jp->n && jp->s[jp->pos] == ']') {
        jp->pos++;
        if (jp->out != NULL)
            buf_append(jp->out, "]", 1);
        return 0;
    }
    for (;;) {
        if (json_value(jp) < 0)
            return -1;
        json_ws(jp);
        if (jp->pos >= jp->n)
            return json_fail(jp, "unterminated array");
        if (jp->s[jp->pos] == ']') {
            jp->pos++;
            break;
        }
        if (jp->s[jp->pos] != ',')
            return json_fail(jp, "expecting ',' or ']'");
        jp->pos++;
        json_ws(jp);
        if (jp->out != NULL)
            jsonw_sep(jp->out);
    }
    if (jp->out != NULL)
        buf_append(jp->out, "]", 1);
    return 0;
}

/* Repeated keys in the object just rendered: folded as Python's dict folds them. */
static void json_fold_repeats(json_parser_t *jp, size_t base, size_t obj_at)
{
    if (jp->nmem - base >= 2)
        jsonw_fold_repeats(jp->out, obj_at, jp->mem + base, jp->nmem - base, jp->keys.data);
}

static int json_object(json_parser_t *jp)
{
    buf_t *out = jp->out;
    size_t obj_at = out != NULL ? out->len : 0;
    size_t base = jp->nmem, keys_len = jp->keys.len;
    int rc = -1;

    jp->pos++;
    if (out != NULL)
        buf_append(out, "{", 1);
    json_ws(jp);
    if (jp->pos < jp->n && jp->s[jp->pos] == '}') {
        jp->pos++;
        if (out != NULL)
            buf_append(out, "}", 1);
        return 0;
    }
    for (;;) {
        json_member_t *m = NULL;
        if (jp->pos >= jp->n || jp->s[jp->pos] != '"') {
            json_fail(jp, "expecting a property name in double quotes");
            goto out_pop;
        }
        if (out != NULL) {
            if (jp->nmem == jp->capmem) {
                jp->capmem = jp->capmem ? jp->capmem * 2 : 16;
                jp->mem = mem_realloc(jp->mem, jp->capmem * sizeof(*jp->mem));
            }
            m = &jp->mem[jp->nmem++];
            m->key_at = out->len;
            m->key_off = jp->keys.len;
        }
        if (json_string(jp, out != NULL ? JSON_EMIT_ESCAPED | JSON_EMIT_KEY : 0) < 0)
            goto out_pop;
        json_ws(jp);
        if (jp->pos >= jp->n || jp->s[jp->pos] != ':') {
            json_fail(jp, "expecting ':'");
            goto out_pop;
        }
        jp->pos++;
        json_ws(jp);
        if (m != NULL) {
            jsonw_colon(out);
            m->key_len = jp->keys.len - m->key_off;
            m->val_at = out->len;
        }
        if (json_value(jp) < 0)
            goto out_pop;
        if (out != NULL)
            jp->mem[jp->nmem - 1].end = out->len;   /* jp->mem may have moved */
        json_ws(jp);
        if (jp->pos >= jp->n) {
            json_fail(jp, "unterminated object");
            goto out_pop;
        }
        if (jp->s[jp->pos] == '}') {
            jp->pos++;
            break;
        }
        if (jp->s[jp->pos] != ',') {
            json_fail(jp, "expecting ',' or '}'");
            goto out_pop;
        }
        jp->pos++;
        json_ws(jp);
        if (out != NULL)
            jsonw_sep(out);
    }
    if (out != NULL) {
        buf_append(out, "}", 1);
        json_fold_repeats(jp, base, obj_at);
    }
    rc = 0;
out_pop:
    jp->nmem = base;
    jp->keys.len = keys_len;
    return rc;
}

/* Any value at pos (whitespace before it already skipped). */
static int json_value(json_parser_t *jp)
{
    int rc;

    if (jp->pos >= jp->n)
        return json_fail(jp, "expecting a value");
    switch (jp->s[jp->pos]) {
    case '"':
        rc = json_string(jp, jp->out != NULL ? JSON_EMIT_ESCAPED : 0);
        break;
    case '[':
    case '{':
        if (jp->depth >= JSON_MAX_DEPTH)
            return json_fail(jp, "nesting deeper than 128 levels");
        jp->depth++;
        rc = jp->s[jp->pos] == '[' ? json_array(jp) : json_object(jp);
        jp->depth--;
        break;
    case 'n': rc = json_literal(jp, "null"); break;
    case 't': rc = json_literal(jp, "true"); break;
    case 'f': rc = json_literal(jp, "false"); break;
    case 'N': rc = json_literal(jp, "NaN"); break;
    case 'I': rc = json_literal(jp, "Infinity"); break;
    case '-':
        if (jp->pos + 1 < jp->n && jp->s[jp->pos + 1] == 'I') {
            rc = json_literal(jp, "-Infinity");
            break;
        }
        /* fall through */
    default:
        rc = json_number(jp);
        break;
    }
    if (rc == 0)
        rc = json_check_size(jp);
    return rc;
}

/*
 * json.detect_encoding: "utf-8", "utf-8-sig" (a BOM to skip), or a UTF-16 / UTF-32 flavour (bytes per
 * unit in *width, byte order in *big, *bom set when the decoder strips a BOM).
 */
static int json_detect(const unsigned char *s, size_t n, int *width, int *big, int *bom)
{
    *bom = 0;
    if (n >= 4 && ((s[0] == 0 && s[1] == 0 && s[2] == 0xfe && s[3] == 0xff) ||
                   (s[0] == 0xff && s[1] == 0xfe && s[2] == 0 && s[3] == 0))) {
        *width = 4, *big = s[0] == 0, *bom = 1;
        return 1;
    }
    if (n >= 2 && ((s[0] == 0xfe && s[1] == 0xff) || (s[0] == 0xff && s[1] == 0xfe))) {
        *width = 2, *big = s[0] == 0xfe, *bom = 1;
        return 1;
    }
    if (n >= 4) {
        if (s[0] == 0) {
            *width = s[1] ? 2 : 4, *big = 1;
            return 1;
        }
        if (s[1] == 0) {
            *width = s[2] || s[3] ? 2 : 4, *big = 0;
            return 1;
        }
    } else if (n == 2) {
        if (s[0] == 0 || s[1] == 0) {
            *width = 2, *big = s[0] == 0;
            return 1;
        }
    }
    *width = 1;
    return 0;
}

/*
 * UTF-16 / UTF-32 input decoded as Python's codec with 'surrogatepass' (a valid pair joined, a lone
 * surrogate kept), re-encoded as UTF-8 into b with surrogates in their 3-byte form, which json_utf8
 * reads back. Returns 0, or -1 where Python's decoder fails (a partial unit, a code point above
 * U+10FFFF).
 */
static int json_transcode(const unsigned char *s, size_t n, int width, int big, int bom, buf_t *b)
{
    size_t i = bom ? (size_t)width : 0;

    if (n % (size_t)width != 0)
        return -1;
    buf_reserve(b, n);
    while (i < n) {
        unsigned cp;
        if (width == 4) {
            cp = big ? (unsigned)s[i] << 24 | (unsigned)s[i + 1] << 16 | (unsigned)s[i + 2] << 8 | s[i + 3]
                     : (unsigned)s[i + 3] << 24 | (unsigned)s[i + 2] << 16 | (unsigned)s[i + 1] << 8 | s[i];
            if (cp > 0x10ffff)
                return -1;
            i += 4;
        } else {
            cp = big ? (unsigned)s[i] << 8 | s[i + 1] : (unsigned)s[i + 1] << 8 | s[i];
            i += 2;
            if (cp >= 0xd800 && cp <= 0xdbff && i + 2 <= n) {
                unsigned lo = big ? (unsigned)s[i] << 8 | s[i + 1] : (unsigned)s[i + 1] << 8 | s[i];
                if (lo >= 0xdc00 && lo <= 0xdfff) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    i += 2;
                }
            }
        }
        json_put_utf8(b, cp);
    }
    return 0;
}

/* One pass over the whole input: validating (out NULL) or rendering. */
static int json_pass(json_parser_t *jp, buf_t *out)
{
    jp->pos = 0;
    jp->depth = 0;
    jp->out = out;
    json_ws(jp);
    if (out != NULL && jp->pos < jp->n && jp->s[jp->pos] == '"') {
        if (json_string(jp, JSON_EMIT_TEXT) < 0)
            return -1;
        if (out->len > jp->max) {
            jp->status = CODEC_ETOOBIG;
            return -1;
        }
    } else if (json_value(jp) < 0) {
        return -1;
    }
    json_ws(jp);
    if (jp->pos != jp->n)
        return json_fail(jp, "extra data after the value");
    return 0;
}

static int json_decode(void *ctx, const codec_params_t *p, const char *in, size_t n, buf_t *out, char *err)
{
    json_parser_t jp;
    buf_t utf8;
    size_t out_at = out->len;
    int width, big, bom;
    size_t skipped = 0;     /* a UTF-8 BOM: error positions count it */

    memset(&jp, 0, sizeof(jp));
    buf_init(&jp.keys);
    buf_init(&jp.num);
    buf_init(&utf8);
    jp.max = p->max_decoded;
    jp.s = (const unsigned char *)in;
    jp.n = n;
    if (json_detect(jp.s, n, &width, &big, &bom)) {
        if (json_transcode(jp.s, n, width, big, bom, &utf8) < 0) {
            snprintf(err, CODEC_ERRLEN, "json: not JSON (not UTF-%d text)", width * 8);
            jp.status = CODEC_EFORMAT;
            goto out_free;
        }
        jp.s = (const unsigned char *)utf8.data;
        jp.n = utf8.len;
    } else if (n >= 3 && memcmp(in, "\xef\xbb\xbf", 3) == 0) {
        jp.s += 3;
        jp.n -= 3;
        skipped = 3;
    }

    if (json_pass(&jp, NULL) == 0)
        json_pass(&jp, out);
    if (jp.status == CODEC_EFORMAT && width > 1)
        snprintf(err, CODEC_ERRLEN, "json: not JSON (%s, in text read as UTF-%d)", jp.why, width * 8);
    else if (jp.status == CODEC_EFORMAT)
        snprintf(err, CODEC_ERRLEN, "json: not JSON (%s at byte %zu)", jp.why, jp.at + skipped);
    else if (jp.status == CODEC_ETOOBIG)
        snprintf(err, CODEC_ERRLEN, "json: the decoded value is larger than the largest decoded value (%zu)",
                 jp.max);
out_free:
    if (jp.status != CODEC_OK)
        out->len = out_at;
    mem_free(jp.mem);
    buf_deinit(&jp.keys);
    buf_deinit(&jp.num);
    buf_deinit(&utf8);
    return jp.status;
}

/* json.dumps(value): the value must be UTF-8 text. */
static int json_encode(void *ctx, const codec_params_t *p, const char *in, size_t n, buf_t *out, char *err)
{
    size_t out_at = out->len;

    if (jsonw_string(out, in, n) < 0) {
        out->len = out_at;
        snprintf(err, CODEC_ERRLEN, "json: the value is not valid UTF-8 text; the json serializer stores text only");
        return CODEC_EINPUT;
    }
    return CODEC_OK;
}

const codec_t codec_json = {
    .name = "json",
    .schemes = (const char *const[]){ "json", NULL },
    .encode = json_encode,
    .decode = json_decode,
};
