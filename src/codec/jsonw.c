/*
 * codec/jsonw: JSON text exactly as Python's json.dumps writes it with its defaults.
 *
 * Strings follow CPython's ESCAPE_ASCII (Lib/json/encoder.py, and the C accelerator
 * c_encode_basestring_ascii): '"' and '\\' and the five control characters \b \f \n \r \t get their
 * two-character escapes; every other character outside ' '..'~' (the rest of 0x00..0x1f, 0x7f, and all
 * non-ASCII) is \u followed by four lower-case hex digits; characters above U+FFFF become a UTF-16
 * surrogate pair.
 *
 * Floats follow float.__repr__ (Python's "short" float repr, David Gay's dtoa mode 0): the shortest
 * decimal string that reads back as the same double, printed in positional notation when the decimal
 * exponent is in -4..15 (with ".0" added to integral values) and as d[.ddd]e+XX / e-XX (at least two
 * exponent digits) otherwise. json.dumps spells the special values NaN, Infinity and -Infinity.
 *
 * Everything here is reentrant: no static mutable state.
 */
#include "codec/jsonw.h"

#include "util/mem.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char jsonw_hex[] = "0123456789abcdef";

/* \uXXXX for one UTF-16 code unit. */
static void jsonw_u16(buf_t *out, unsigned u)
{
    char e[6] = { '\\', 'u', jsonw_hex[(u >> 12) & 15], jsonw_hex[(u >> 8) & 15],
                  jsonw_hex[(u >> 4) & 15], jsonw_hex[u & 15] };
    buf_append(out, e, sizeof(e));
}

/* One code point as ESCAPE_ASCII writes it (see jsonw.h). */
void jsonw_codepoint(buf_t *out, unsigned cp)
{
    char c;

    switch (cp) {
    case '"':  buf_append(out, "\\\"", 2); return;
    case '\\': buf_append(out, "\\\\", 2); return;
    case '\n': buf_append(out, "\\n", 2); return;
    case '\r': buf_append(out, "\\r", 2); return;
    case '\t': buf_append(out, "\\t", 2); return;
    case '\b': buf_append(out, "\\b", 2); return;
    case '\f': buf_append(out, "\\f", 2); return;
    default: break;
    }
    if (cp >= 0x20 && cp <= 0x7e) {
        c = (char)cp;
        buf_append(out, &c, 1);
    } else if (cp < 0x10000) {
        jsonw_u16(out, cp);
    } else {
        cp -= 0x10000;
        jsonw_u16(out, 0xd800 | (cp >> 10));
        jsonw_u16(out, 0xdc00 | (cp & 0x3ff));
    }
}

/*
 * Decode one UTF-8 sequence at s[0..n) (n >= 1) strictly, as Python's bytes.decode('utf-8') does: no
 * overlong forms, no encoded surrogates, nothing above U+10FFFF. Returns its length and sets *cp, or 0 if
 * the bytes there are not UTF-8.
 */
static size_t jsonw_utf8(const unsigned char *s, size_t n, unsigned *cp)
{
    unsigned c = s[0];

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        if (n < 2 || (s[1] & 0xc0) != 0x80)
            return 0;
        *cp = ((c & 0x1f) << 6) | (s[1] & 0x3f);
        return 2;
    }
    if (c >= 0xe0 && c <= 0xef) {
        if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
            return 0;
        if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0))
            return 0;   /* overlong, or a surrogate */
        *cp = ((c & 0x0f) << 12) | ((unsigned)(s[1] & 0x3f) << 6) | (s[2] & 0x3f);
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
            return 0;
        if ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90))
            return 0;   /* overlong, or above U+10FFFF */
        *cp = ((c & 0x07) << 18) | ((unsigned)(s[1] & 0x3f) << 12) | ((unsigned)(s[2] & 0x3f) << 6) |
              (s[3] & 0x3f);
        return 4;
    }
    return 0;
}

/*
 * Python: json.dumps(s.decode('utf-8')). A run of plain ASCII is copied in one append; anything else
 * goes through jsonw_codepoint. Returns -1 at the first byte that is not UTF-8 (out then holds a partial
 * string).
 */
int jsonw_string(buf_t *out, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    buf_reserve(out, n + 2);
    buf_append(out, "\"", 1);
    while (i < n) {
        size_t run = i;
        while (run < n && p[run] >= 0x20 && p[run] <= 0x7e && p[run] != '"' && p[run] != '\\')
            run++;
        if (run > i) {
            buf_append(out, s + i, run - i);
            i = run;
            continue;
        }
        unsigned cp;
        size_t len = jsonw_utf8(p + i, n - i, &cp);
        if (len == 0)
            return -1;
        jsonw_codepoint(out, cp);
        i += len;
    }
    buf_append(out, "\"", 1);
    return 0;
}

/* Python: json.dumps(b.decode('latin-1')) — what a bytes value inside a structure is rendered as. */
void jsonw_latin1(buf_t *out, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;

    buf_reserve(out, n + 2);
    buf_append(out, "\"", 1);
    for (size_t i = 0; i < n; i++)
        jsonw_codepoint(out, p[i]);
    buf_append(out, "\"", 1);
}

void jsonw_int(buf_t *out, long long v)
{
    buf_printf(out, "%lld", v);
}

void jsonw_uint(buf_t *out, unsigned long long v)
{
    buf_printf(out, "%llu", v);
}

void jsonw_bool(buf_t *out, int v)
{
    if (v)
        buf_append(out, "true", 4);
    else
        buf_append(out, "false", 5);
}

void jsonw_null(buf_t *out)
{
    buf_append(out, "null", 4);
}

/*
 * The nearest decimal of prec significant digits to v (finite, > 0) — or, where that one does not read
 * back as v, the one a unit above it (see jsonw_shortest) — into digits[] (without a point), the exponent
 * of its first digit into *exp10. Returns 1 if it reads back as v.
 */
static int jsonw_try(double v, int prec, char digits[20], int *exp10)
{
    char tmp[40];
    double back;

    /* glibc's printf is correctly rounded: this is the nearest decimal of prec digits */
    snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, v);
    char *e = strchr(tmp, 'e');
    int ex = atoi(e + 1), nd = 0;
    for (char *q = tmp; q < e; q++)
        if (*q >= '0' && *q <= '9')
            digits[nd++] = *q;
    digits[nd] = '\0';
    *exp10 = ex;
    back = strtod(tmp, NULL);
    if (back == v)
        return 1;
    if (back > v)
        return 0;
    /* one unit up in the last digit: 1.29 -> 1.30, 9.99 -> 10.0 (kept at nd digits: 1.00e+1) */
    int k = nd - 1;
    while (k >= 0 && digits[k] == '9')
        digits[k--] = '0';
    if (k < 0) {
        digits[0] = '1';
        *exp10 = ++ex;
    } else {
        digits[k]++;
    }
    snprintf(tmp, sizeof(tmp), "%c.%se%d", digits[0], digits + 1, ex);
    return strtod(tmp, NULL) == v;
}

/*
 * The shortest decimal digits that read back as v (finite, > 0), as dtoa's mode 0 finds them: digits[]
 * receives them without a point or trailing zeros, *exp10 the exponent of the first digit
 * (v = d.ddd × 10^exp10). Returns the number of digits (1..17).
 *
 * For each precision, jsonw_try tests the nearest decimal of that length. Where none reads back, it can
 * still be that another of the same length does — only where the interval of decimals that round to v is
 * lopsided: v a power of two, whose gap to the next double below is half the gap above; then the
 * candidate one unit above the nearest is the one to take, and jsonw_try tries it too. A length that
 * works makes every longer one work (the shorter decimal is one of the longer ones), so the shortest is
 * found by bisection; 17 digits always work. Most doubles that are not short decimals need 16 or 17
 * digits, so 15 is probed first.
 */
static int jsonw_shortest(double v, char digits[20], int *exp10)
{
    int lo = 1, hi = 17, have = 0;      /* the shortest is in lo..hi; digits holds the result for have */

    for (int mid = 15; lo < hi; mid = lo + (hi - lo) / 2) {
        char cand[20];
        int ex;
        if (jsonw_try(v, mid, cand, &ex)) {
            hi = mid;
            have = mid;
            memcpy(digits, cand, sizeof(cand));
            *exp10 = ex;
        } else {
            lo = mid + 1;
        }
    }
    if (have != lo && !jsonw_try(v, lo, digits, exp10))
        abort();    /* unreachable: 17 significant digits always identify a double */
    int nd = lo;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = '\0';
    return nd;
}

/* Python: repr(v), with json.dumps's spellings of the non-finite values. */
void jsonw_double(buf_t *out, double v)
{
    char digits[20];
    char text[40];
    int ex, nd, len = 0;

    if (isnan(v)) {
        buf_append(out, "NaN", 3);
        return;
    }
    if (isinf(v)) {
        if (v < 0)
            buf_append(out, "-Infinity", 9);
        else
            buf_append(out, "Infinity", 8);
        return;
    }
    if (signbit(v)) {
        text[len++] = '-';
        v = -v;
    }
    if (v == 0) {
        memcpy(text + len, "0.0", 3);
        buf_append(out, text, (size_t)len + 3);
        return;
    }
    nd = jsonw_shortest(v, digits, &ex);

    if (ex < -4 || ex >= 16) {
        /* d[.ddd]e+XX */
        text[len++] = digits[0];
        if (nd > 1) {
            text[len++] = '.';
            memcpy(text + len, digits + 1, (size_t)nd - 1);
            len += nd - 1;
        }
        len += snprintf(text + len, sizeof(text) - (size_t)len, "e%c%02d", ex < 0 ? '-' : '+', ex < 0 ? -ex : ex);
    } else if (ex < 0) {
        /* 0.000ddd */
        text[len++] = '0';
        text[len++] = '.';
        for (int i = -1; i > ex; i--)
            text[len++] = '0';
        memcpy(text + len, digits, (size_t)nd);
        len += nd;
    } else {
        /* ddd.ddd, or ddd000.0 */
        for (int i = 0; i <= ex; i++)
            text[len++] = i < nd ? digits[i] : '0';
        text[len++] = '.';
        if (nd > ex + 1) {
            memcpy(text + len, digits + ex + 1, (size_t)(nd - ex - 1));
            len += nd - ex - 1;
        } else {
            text[len++] = '0';
        }
    }
    buf_append(out, text, (size_t)len);
}

/* Rewrite the object rendered at out[obj_at..]: member i keeps its place and takes the value of member
 * take[i]; take[i] == SIZE_MAX drops it (a later repeat of an earlier key). */
static void jsonw_object_rewrite(buf_t *out, size_t obj_at, const jsonw_member_t *m, size_t cnt, const size_t *take)
{
    size_t len = out->len - obj_at;
    char *old = mem_alloc(len ? len : 1);
    int first = 1;

    memcpy(old, out->data + obj_at, len);
    out->len = obj_at;
    buf_append(out, "{", 1);
    for (size_t i = 0; i < cnt; i++) {
        if (take[i] == SIZE_MAX)
            continue;
        if (!first)
            jsonw_sep(out);
        first = 0;
        const jsonw_member_t *v = &m[take[i]];
        buf_append(out, old + (m[i].key_at - obj_at), m[i].val_at - m[i].key_at);
        buf_append(out, old + (v->val_at - obj_at), v->end - v->val_at);
    }
    buf_append(out, "}", 1);
    mem_free(old);
}

typedef struct jsonw_keyref {
    const char *key;
    size_t len;
    size_t ord;                 /* the member's position in its object */
} jsonw_keyref_t;

static int jsonw_keyref_cmp(const void *a, const void *b)
{
    const jsonw_keyref_t *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = n > 0 ? memcmp(x->key, y->key, n) : 0;

    if (c != 0)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->ord < y->ord ? -1 : x->ord > y->ord;
}

static int jsonw_keyref_same(const jsonw_keyref_t *x, const jsonw_keyref_t *y)
{
    return x->len == y->len && (x->len == 0 || memcmp(x->key, y->key, x->len) == 0);
}

void jsonw_fold_repeats(buf_t *out, size_t obj_at, const jsonw_member_t *m, size_t cnt, const char *keys)
{
    size_t nrep = 0;
    jsonw_keyref_t *ref;
    size_t *take;           /* for each member: the member whose value it gets, or SIZE_MAX: dropped */

    if (cnt < 2)
        return;
    if (keys == NULL)       /* every key empty: the key buffer was never allocated */
        keys = "";
    ref = mem_alloc(cnt * sizeof(*ref));
    for (size_t i = 0; i < cnt; i++) {
        ref[i].key = keys + m[i].key_off;
        ref[i].len = m[i].key_len;
        ref[i].ord = i;
    }
    qsort(ref, cnt, sizeof(*ref), jsonw_keyref_cmp);
    for (size_t i = 1; i < cnt; i++)
        if (jsonw_keyref_same(&ref[i], &ref[i - 1]))
            nrep++;
    if (nrep == 0) {
        mem_free(ref);
        return;
    }
    take = mem_alloc(cnt * sizeof(*take));
    for (size_t i = 0; i < cnt;) {
        size_t j = i + 1;
        while (j < cnt && jsonw_keyref_same(&ref[j], &ref[i]))
            j++;
        /* ref[i..j) are one key, in input order */
        take[ref[i].ord] = ref[j - 1].ord;
        for (size_t k = i + 1; k < j; k++)
            take[ref[k].ord] = SIZE_MAX;
        i = j;
    }
    jsonw_object_rewrite(out, obj_at, m, cnt, take);
    mem_free(take);
    mem_free(ref);
}
