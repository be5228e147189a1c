/*
 * codec/pickle_load: the safe unpickler's memory (counted against the work budget), reading of the input,
 * the stack with its MARK fence, the memo, and the opcodes that load scalars (int, float, str, bytes).
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
#include "util/hex.h"
#include "util/mem.h"

/* Opcode names, for error messages (NULL: not an opcode). */
const char *const pk_opnames[256] = {
    [OP_MARK] = "MARK", [OP_STOP] = "STOP", [OP_POP] = "POP", [OP_POP_MARK] = "POP_MARK", [OP_DUP] = "DUP",
    [OP_FLOAT] = "FLOAT", [OP_INT] = "INT", [OP_BININT] = "BININT", [OP_BININT1] = "BININT1",
    [OP_LONG] = "LONG", [OP_BININT2] = "BININT2", [OP_NONE] = "NONE", [OP_PERSID] = "PERSID",
    [OP_BINPERSID] = "BINPERSID", [OP_REDUCE] = "REDUCE", [OP_STRING] = "STRING", [OP_BINSTRING] = "BINSTRING",
    [OP_SHORT_BINSTRING] = "SHORT_BINSTRING", [OP_UNICODE] = "UNICODE", [OP_BINUNICODE] = "BINUNICODE",
    [OP_APPEND] = "APPEND", [OP_BUILD] = "BUILD", [OP_GLOBAL] = "GLOBAL", [OP_DICT] = "DICT",
    [OP_EMPTY_DICT] = "EMPTY_DICT", [OP_APPENDS] = "APPENDS", [OP_GET] = "GET", [OP_BINGET] = "BINGET",
    [OP_INST] = "INST", [OP_LONG_BINGET] = "LONG_BINGET", [OP_LIST] = "LIST", [OP_EMPTY_LIST] = "EMPTY_LIST",
    [OP_OBJ] = "OBJ", [OP_PUT] = "PUT", [OP_BINPUT] = "BINPUT", [OP_LONG_BINPUT] = "LONG_BINPUT",
    [OP_SETITEM] = "SETITEM", [OP_TUPLE] = "TUPLE", [OP_EMPTY_TUPLE] = "EMPTY_TUPLE", [OP_SETITEMS] = "SETITEMS",
    [OP_BINFLOAT] = "BINFLOAT", [OP_PROTO] = "PROTO", [OP_NEWOBJ] = "NEWOBJ", [OP_EXT1] = "EXT1",
    [OP_EXT2] = "EXT2", [OP_EXT4] = "EXT4", [OP_TUPLE1] = "TUPLE1", [OP_TUPLE2] = "TUPLE2",
    [OP_TUPLE3] = "TUPLE3", [OP_NEWTRUE] = "NEWTRUE", [OP_NEWFALSE] = "NEWFALSE", [OP_LONG1] = "LONG1",
    [OP_LONG4] = "LONG4", [OP_BINBYTES] = "BINBYTES", [OP_SHORT_BINBYTES] = "SHORT_BINBYTES",
    [OP_SHORT_BINUNICODE] = "SHORT_BINUNICODE", [OP_BINUNICODE8] = "BINUNICODE8", [OP_BINBYTES8] = "BINBYTES8",
    [OP_EMPTY_SET] = "EMPTY_SET", [OP_ADDITEMS] = "ADDITEMS", [OP_FROZENSET] = "FROZENSET",
    [OP_NEWOBJ_EX] = "NEWOBJ_EX", [OP_STACK_GLOBAL] = "STACK_GLOBAL", [OP_MEMOIZE] = "MEMOIZE",
    [OP_FRAME] = "FRAME", [OP_BYTEARRAY8] = "BYTEARRAY8", [OP_NEXT_BUFFER] = "NEXT_BUFFER",
    [OP_READONLY_BUFFER] = "READONLY_BUFFER",
};


/* Type names as Python spells them, for error messages. */
const char *const pk_typenames[] = {
    [PK_NONE] = "NoneType", [PK_BOOL] = "bool", [PK_INT] = "int", [PK_BIGINT] = "int", [PK_FLOAT] = "float",
    [PK_STR] = "str", [PK_BYTES] = "bytes", [PK_BYTEARRAY] = "bytearray", [PK_LIST] = "list",
    [PK_TUPLE] = "tuple", [PK_DICT] = "dict", [PK_ENCODE] = "builtin_function_or_method",
    [PK_BYTES_TYPE] = "type",
};

/* Record the first error; later ones (consequences) are ignored. Returns -1 for "return pk_fail(...)". */
__attribute__((format(printf, 3, 4)))
int pk_fail(pk_dec_t *d, int rc, const char *fmt, ...)
{
    if (d->rc != 0)
        return -1;
    d->rc = rc;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->err, CODEC_ERRLEN, fmt, ap);
    va_end(ap);
    return -1;
}

const char *pk_opname(int op)
{
    return pk_opnames[op & 0xff] ? pk_opnames[op & 0xff] : "?";
}


pk_quote_t pk_quote(const unsigned char *p, size_t n)
{
    pk_quote_t q;
    size_t i;
    for (i = 0; i < n && i < 24; i++)
        q.s[i] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
    if (n > 24)
        q.s[i++] = '.', q.s[i++] = '.', q.s[i++] = '.';
    q.s[i] = '\0';
    return q;
}

/* Count size more bytes of working memory; -1 (CODEC_ETOOBIG) past the budget. */
int pk_charge(pk_dec_t *d, size_t size)
{
    if (size > d->budget - d->used)
        return pk_fail(d, CODEC_ETOOBIG, "pickle: decoding needs more than %zu bytes of working memory "
                       "(%d per byte of input)", d->budget, PK_WORK_PER_BYTE);
    d->used += size;
    return 0;
}

/* size bytes of scratch that live until the end of the decode, or NULL (error set). */
char *pk_blob(pk_dec_t *d, size_t size)
{
    if (pk_charge(d, size + sizeof(pk_blob_t)) < 0)
        return NULL;
    pk_blob_t *b = mem_alloc(sizeof(pk_blob_t) + size);
    b->next = d->blobs;
    d->blobs = b;
    return b->data;
}

/* Make room for need elements of elsize bytes in *arr (capacity *cap), geometrically. 0 or -1. */
int pk_reserve(pk_dec_t *d, void **arr, size_t *cap, size_t need, size_t elsize)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 8;
    while (nc < need)
        nc = nc <= SIZE_MAX / 2 ? nc * 2 : need;
    if (nc > SIZE_MAX / elsize || pk_charge(d, (nc - *cap) * elsize) < 0)
        return pk_fail(d, CODEC_ETOOBIG, "pickle: decoding needs more than %zu bytes of working memory",
                       d->budget);
    *arr = mem_realloc(*arr, nc * elsize);
    *cap = nc;
    return 0;
}

pk_obj_t *pk_new(pk_dec_t *d, int type)
{
    pk_chunk_t *c = d->chunks;
    if (c == NULL || c->used == PK_CHUNK_OBJS) {
        if (pk_charge(d, sizeof(*c)) < 0)
            return NULL;
        c = mem_alloc(sizeof(*c));
        c->used = 0;
        c->next = d->chunks;
        d->chunks = c;
    }
    pk_obj_t *o = &c->objs[c->used++];
    memset(o, 0, sizeof(*o));
    o->type = (unsigned char)type;
    return o;
}

void pk_dec_deinit(pk_dec_t *d)
{
    for (pk_chunk_t *c = d->chunks, *next; c != NULL; c = next) {
        next = c->next;
        for (size_t i = 0; i < c->used; i++) {
            int t = c->objs[i].type;
            if (t == PK_LIST || t == PK_TUPLE || t == PK_DICT)
                mem_free(c->objs[i].u.seq.v);
        }
        mem_free(c);
    }
    for (pk_blob_t *b = d->blobs, *next; b != NULL; b = next) {
        next = b->next;
        mem_free(b);
    }
    mem_free(d->stack);
    mem_free(d->marks);
    mem_free(d->memo);
}

/* ----------------------------------------------------------------------------------------------------
 * Decode: reading the input
 * ---------------------------------------------------------------------------------------------------- */

/* The next k bytes, or NULL (error) if the pickle ends before them. */
const unsigned char *pk_take(pk_dec_t *d, uint64_t k)
{
    if (k > d->n - d->pos) {
        pk_fail(d, CODEC_EFORMAT, "pickle: truncated in %s at offset %zu", pk_opname(d->op), d->op_at);
        return NULL;
    }
    const unsigned char *p = d->in + d->pos;
    d->pos += (size_t)k;
    return p;
}

uint64_t pk_get_le(const unsigned char *p, int nbytes)
{
    uint64_t v = 0;
    for (int i = nbytes - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* A length of nbytes (1, 4 or 8) little-endian bytes, then that many bytes: *len and the data, or NULL. */
const unsigned char *pk_take_counted(pk_dec_t *d, int nbytes, size_t *len)
{
    const unsigned char *p = pk_take(d, (uint64_t)nbytes);
    if (p == NULL)
        return NULL;
    uint64_t k = pk_get_le(p, nbytes);
    const unsigned char *data = pk_take(d, k);
    *len = (size_t)k;
    return data;
}

/* A text argument ending in '\n' (protocol 0): the line without it, or NULL. Python reads the same way:
 * no '\n' before the end is a truncated pickle. */
const unsigned char *pk_take_line(pk_dec_t *d, size_t *len)
{
    const unsigned char *p = d->in + d->pos;
    const unsigned char *nl = memchr(p, '\n', d->n - d->pos);
    if (nl == NULL) {
        pk_fail(d, CODEC_EFORMAT, "pickle: truncated in %s at offset %zu (no end of line)", pk_opname(d->op),
                d->op_at);
        return NULL;
    }
    *len = (size_t)(nl - p);
    d->pos += *len + 1;
    return p;
}

/* ----------------------------------------------------------------------------------------------------
 * Decode: the stack, MARK and the memo
 * ---------------------------------------------------------------------------------------------------- */

int pk_push(pk_dec_t *d, pk_obj_t *o)
{
    if (o == NULL)
        return -1;
    if (pk_reserve(d, (void **)&d->stack, &d->stack_cap, d->sp + 1, sizeof(*d->stack)) < 0)
        return -1;
    d->stack[d->sp++] = o;
    return 0;
}

/* _pickle.c's Pdata_stack_underflow: the message says whether a MARK was in the way. */
int pk_underflow(pk_dec_t *d)
{
    return pk_fail(d, CODEC_EFORMAT, "pickle: %s at offset %zu (%s)",
                   d->nmarks ? "unexpected MARK found" : "stack underflow", d->op_at, pk_opname(d->op));
}

pk_obj_t *pk_pop(pk_dec_t *d)
{
    if (d->sp <= d->fence) {
        pk_underflow(d);
        return NULL;
    }
    return d->stack[--d->sp];
}

pk_obj_t *pk_top(pk_dec_t *d)
{
    if (d->sp <= d->fence) {
        pk_underflow(d);
        return NULL;
    }
    return d->stack[d->sp - 1];
}

/* Close the top MARK: the stack height it recorded, or -1 if there is none. */
int pk_marker(pk_dec_t *d, size_t *at)
{
    if (d->nmarks == 0)
        return pk_fail(d, CODEC_EFORMAT, "pickle: could not find MARK (%s at offset %zu)", pk_opname(d->op),
                       d->op_at);
    *at = d->marks[--d->nmarks];
    d->fence = d->nmarks ? d->marks[d->nmarks - 1] : 0;
    return 0;
}

/*
 * The memo is a dense array indexed by the key. CPython's pickler numbers entries 0, 1, 2..., so the keys
 * of any pickle it writes are below the number of its opcodes; a key past the input size plus 256 (a
 * BINPUT key fits below that) could only come from a hand-made pickle and is refused rather than given
 * memory that the input does not pay for.
 */
int pk_memo_put(pk_dec_t *d, uint64_t key)
{
    pk_obj_t *o = pk_top(d);
    if (o == NULL)
        return -1;
    if (key >= (uint64_t)d->n + 256)
        return pk_fail(d, CODEC_EFORMAT, "pickle: memo key %llu is out of range for a %zu-byte pickle",
                       (unsigned long long)key, d->n);
    size_t k = (size_t)key;
    size_t old = d->memo_cap;
    if (pk_reserve(d, (void **)&d->memo, &d->memo_cap, k + 1, sizeof(*d->memo)) < 0)
        return -1;
    if (d->memo_cap > old)
        memset(d->memo + old, 0, (d->memo_cap - old) * sizeof(*d->memo));
    if (d->memo[k] == NULL)
        d->memo_len++;
    d->memo[k] = o;
    return 0;
}

int pk_memo_get(pk_dec_t *d, uint64_t key)
{
    if (key >= d->memo_cap || d->memo[key] == NULL)
        return pk_fail(d, CODEC_EFORMAT, "pickle: memo value not found at index %llu (offset %zu)",
                       (unsigned long long)key, d->op_at);
    return pk_push(d, d->memo[key]);
}

/* The decimal key of PUT / GET (protocol 0): digits only. */
int pk_line_key(pk_dec_t *d, uint64_t *key)
{
    size_t len;
    const unsigned char *s = pk_take_line(d, &len);
    if (s == NULL)
        return -1;
    uint64_t v = 0;
    if (len == 0 || len > 18)
        goto bad;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            goto bad;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *key = v;
    return 0;
bad:
    return pk_fail(d, CODEC_EFORMAT, "pickle: bad memo key '%s' in %s at offset %zu", pk_quote(s, len).s,
                   pk_opname(d->op), d->op_at);
}

/* ----------------------------------------------------------------------------------------------------
 * Decode: scalars
 * ---------------------------------------------------------------------------------------------------- */

pk_obj_t *pk_new_int(pk_dec_t *d, int64_t v)
{
    pk_obj_t *o = pk_new(d, PK_INT);
    if (o != NULL)
        o->u.i = v;
    return o;
}

/*
 * A decimal number of digits s[0..n) (no sign, no leading zero unless it is "0"), negative or not, as an
 * int: an int64 when it fits, otherwise a bigint that keeps a pointer to the digits (which must outlive
 * the decode: the input or a blob).
 */
static pk_obj_t *pk_new_decimal(pk_dec_t *d, const char *s, size_t n, int neg)
{
    static const char max[] = "9223372036854775807";

    if (n < 19 || (n == 19 && memcmp(s, max, 19) <= 0)) {
        int64_t v = 0;
        for (size_t i = 0; i < n; i++)
            v = v * 10 + (s[i] - '0');
        return pk_new_int(d, neg ? -v : v);
    }
    if (neg && n == 19 && memcmp(s, "9223372036854775808", 19) == 0)
        return pk_new_int(d, INT64_MIN);
    pk_obj_t *o = pk_new(d, PK_BIGINT);
    if (o != NULL) {
        o->flags = neg ? PK_F_NEG : 0;
        o->u.s.p = s;
        o->u.s.n = n;
    }
    return o;
}

/*
 * INT and LONG (protocol 0): [-]digits, LONG with an optional trailing 'L'. CPython parses INT with
 * strtol(base 0) and falls back to int(text, 0), LONG with int(text, 0); so leading zeros mean octal or are
 * an error there, and "+", blanks and underscores are accepted. Those spellings are refused here (CPython
 * never writes them); what is accepted decodes to the same value. INT "00" / "01" (and "-0") is a bool.
 */
int pk_load_decimal(pk_dec_t *d, int is_long)
{
    size_t len;
    const unsigned char *s = pk_take_line(d, &len);
    if (s == NULL)
        return -1;
    if (len == 0)
        return pk_fail(d, CODEC_EFORMAT, "pickle: truncated in %s at offset %zu", pk_opname(d->op), d->op_at);
    if (!is_long && len == 2 && s[0] == '0' && (s[1] == '0' || s[1] == '1'))
        return pk_push(d, s[1] == '1' ? &d->yes : &d->no);
    size_t n = len;
    if (is_long && n > 0 && s[n - 1] == 'L')
        n--;
    int neg = n > 0 && s[0] == '-';
    const char *digits = (const char *)s + neg;
    size_t nd = n - (size_t)neg;
    if (nd == 0 || (digits[0] == '0' && nd > 1))
        goto bad;
    for (size_t i = 0; i < nd; i++)
        if (digits[i] < '0' || digits[i] > '9')
            goto bad;
    if (nd > PK_MAX_STR_DIGITS)
        return pk_fail(d, CODEC_EFORMAT, "pickle: %s at offset %zu has more than %d digits (Python refuses it)",
                       pk_opname(d->op), d->op_at, PK_MAX_STR_DIGITS);
    if (!is_long && len == 2 && neg && digits[0] == '0')
        return pk_push(d, &d->no);              /* strtol("-0") == 0 on a 2-character line: False */
    return pk_push(d, pk_new_decimal(d, digits, nd, neg));
bad:
    return pk_fail(d, CODEC_EFORMAT, "pickle: bad number '%s' in %s at offset %zu", pk_quote(s, len).s,
                   pk_opname(d->op), d->op_at);
}

/* Base 10^9 digits chunk[0..nc) (least significant first, nc >= 1) as decimal text in a blob; *nd
 * receives its length. NULL when the blob is over budget. */
const char *pk_chunks_decimal(pk_dec_t *d, const uint32_t *chunk, size_t nc, size_t *nd)
{
    char *out = pk_blob(d, nc * 9 + 1);
    if (out == NULL)
        return NULL;
    int k = snprintf(out, 10, "%u", chunk[nc - 1]);
    for (size_t i = nc - 1; i-- > 0;)
        k += snprintf(out + k, 10, "%09u", chunk[i]);
    *nd = (size_t)k;
    return out;
}

/*
 * Decimal digits of the magnitude mag[0..len) (little-endian bytes, at most PK_HUGE_BITS / 8 + 1 of them):
 * repeated division by 10^9. The digits go to a blob; *nd receives their count.
 */
static const char *pk_mag_to_decimal(pk_dec_t *d, const unsigned char *mag, size_t len, size_t *nd)
{
    uint32_t limb[PK_HUGE_BITS / 32 + 2];
    uint32_t chunk[PK_HUGE_BITS / 29 + 2];      /* base 10^9 digits, least significant first */
    size_t nl = (len + 3) / 4, nc = 0;

    memset(limb, 0, sizeof(limb));
    for (size_t i = 0; i < len; i++)
        limb[i / 4] |= (uint32_t)mag[i] << (8 * (i % 4));
    while (nl > 0 && limb[nl - 1] == 0)
        nl--;
    while (nl > 0) {
        uint64_t rem = 0;
        for (size_t i = nl; i-- > 0;) {
            uint64_t cur = (rem << 32) | limb[i];
            limb[i] = (uint32_t)(cur / 1000000000u);
            rem = cur % 1000000000u;
        }
        chunk[nc++] = (uint32_t)rem;
        while (nl > 0 && limb[nl - 1] == 0)
            nl--;
    }
    if (nc == 0)
        chunk[nc++] = 0;
    return pk_chunks_decimal(d, chunk, nc, nd);
}

/* LONG1 / LONG4: little-endian two's complement. */
int pk_load_binlong(pk_dec_t *d, const unsigned char *b, size_t len)
{
    if (len == 0)
        return pk_push(d, pk_new_int(d, 0));
    int neg = (b[len - 1] & 0x80) != 0;
    unsigned char ext = neg ? 0xff : 0x00;
    /* drop sign-extension bytes: the value is the same */
    while (len > 1 && b[len - 1] == ext && ((b[len - 2] & 0x80) != 0) == neg)
        len--;
    if (len <= 8) {
        uint64_t u = pk_get_le(b, (int)len);
        if (neg && len < 8)
            u |= ~(uint64_t)0 << (8 * len);
        return pk_push(d, pk_new_int(d, (int64_t)u));
    }
    if (len > PK_HUGE_BITS / 8) {
        pk_obj_t *o = pk_new(d, PK_BIGINT);     /* > 4300 digits: loads, but json.dumps refuses it */
        if (o != NULL)
            o->flags = PK_F_HUGE | (neg ? PK_F_NEG : 0);
        return pk_push(d, o);
    }
    unsigned char mag[PK_HUGE_BITS / 8 + 1];
    unsigned carry = 1;
    for (size_t i = 0; i < len; i++) {
        if (neg) {
            unsigned v = (unsigned)(unsigned char)~b[i] + carry;
            mag[i] = (unsigned char)v;
            carry = v >> 8;
        } else {
            mag[i] = b[i];
        }
    }
    size_t nd;
    const char *digits = pk_mag_to_decimal(d, mag, len, &nd);
    if (digits == NULL)
        return -1;
    pk_obj_t *o = pk_new(d, PK_BIGINT);
    if (o == NULL)
        return -1;
    o->flags = neg ? PK_F_NEG : 0;
    if (nd > PK_MAX_STR_DIGITS)
        o->flags |= PK_F_HUGE;
    o->u.s.p = digits;
    o->u.s.n = nd;
    return pk_push(d, o);
}

int pk_push_float(pk_dec_t *d, double v)
{
    pk_obj_t *o = pk_new(d, PK_FLOAT);
    if (o == NULL)
        return -1;
    o->u.f = v;
    return pk_push(d, o);
}

static int pk_ieq(const unsigned char *s, size_t n, const char *word)
{
    size_t wl = strlen(word);
    if (n != wl)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((s[i] | 0x20) != word[i])
            return 0;
    return 1;
}

/*
 * FLOAT (protocol 0): the text float() reads — [sign] digits [. digits] [e [sign] digits], or inf,
 * infinity, nan in any case — and nothing else on the line. Too large is an error (OverflowError in
 * Python), too small is 0.0, as PyOS_string_to_double does.
 */
int pk_load_float_line(pk_dec_t *d)
{
    size_t len;
    const unsigned char *s = pk_take_line(d, &len);
    if (s == NULL)
        return -1;
    if (len == 0)
        return pk_fail(d, CODEC_EFORMAT, "pickle: truncated in FLOAT at offset %zu", d->op_at);
    size_t i = 0, mant = 0;
    if (s[i] == '+' || s[i] == '-')
        i++;
    if (pk_ieq(s + i, len - i, "inf") || pk_ieq(s + i, len - i, "infinity") || pk_ieq(s + i, len - i, "nan"))
        goto parse;
    while (i < len && s[i] >= '0' && s[i] <= '9')
        i++, mant++;
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++, mant++;
    }
    if (mant == 0)
        goto bad;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t ed = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++, ed++;
        if (ed == 0)
            goto bad;
    }
    if (i != len)
        goto bad;
parse:;
    char tmp[64];
    char *text = len < sizeof(tmp) ? tmp : pk_blob(d, len + 1);
    if (text == NULL)
        return -1;
    memcpy(text, s, len);
    text[len] = '\0';
    errno = 0;
    double v = strtod(text, NULL);
    if (errno == ERANGE && fabs(v) >= 1.0)
        return pk_fail(d, CODEC_EFORMAT, "pickle: FLOAT at offset %zu is too large", d->op_at);
    return pk_push_float(d, v);
bad:
    return pk_fail(d, CODEC_EFORMAT, "pickle: bad number '%s' in FLOAT at offset %zu", pk_quote(s, len).s,
                   d->op_at);
}

/*
 * Check s[0..n) is UTF-8 as Python's decoder with "surrogatepass" reads it (what it does for BINUNICODE):
 * strict, except that encoded surrogates (ED A0..BF xx) are accepted. 1 if it is and has no surrogate,
 * 2 if it is and has one, 0 if it is not UTF-8.
 */
static int pk_utf8_check(const unsigned char *s, size_t n)
{
    int result = 1;
    size_t i = 0;

    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            if (n - i < 2 || (s[i + 1] & 0xc0) != 0x80)
                return 0;
            i += 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            if (n - i < 3 || (s[i + 1] & 0xc0) != 0x80 || (s[i + 2] & 0xc0) != 0x80)
                return 0;
            if (c == 0xe0 && s[i + 1] < 0xa0)
                return 0;
            if (c == 0xed && s[i + 1] >= 0xa0)
                result = 2;
            i += 3;
        } else if (c >= 0xf0 && c <= 0xf4) {
            if (n - i < 4 || (s[i + 1] & 0xc0) != 0x80 || (s[i + 2] & 0xc0) != 0x80 || (s[i + 3] & 0xc0) != 0x80)
                return 0;
            if ((c == 0xf0 && s[i + 1] < 0x90) || (c == 0xf4 && s[i + 1] >= 0x90))
                return 0;
            i += 4;
        } else {
            return 0;
        }
    }
    return result;
}

static pk_obj_t *pk_new_str(pk_dec_t *d, const char *p, size_t n, int surrogate)
{
    pk_obj_t *o = pk_new(d, PK_STR);
    if (o != NULL) {
        o->u.s.p = p;
        o->u.s.n = n;
        o->flags = surrogate ? PK_F_SURROGATE : 0;
    }
    return o;
}

/* BINUNICODE, SHORT_BINUNICODE, BINUNICODE8: UTF-8 (surrogatepass), kept in place. */
int pk_load_utf8(pk_dec_t *d, const unsigned char *s, size_t n)
{
    int ok = pk_utf8_check(s, n);
    if (ok == 0)
        return pk_fail(d, CODEC_EFORMAT, "pickle: %s at offset %zu is not UTF-8", pk_opname(d->op), d->op_at);
    return pk_push(d, pk_new_str(d, (const char *)s, n, ok == 2));
}

static size_t pk_utf8_put(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/*
 * UNICODE (protocol 0): the line in raw-unicode-escape, as CPython 3.11 decodes it: each byte is the code
 * point of its value, except "\uXXXX" and "\UXXXXXXXX" (exactly 4 / 8 hex digits, at most U+10FFFF); a
 * backslash before anything else is kept together with that character (so "\\u0041" stays as it is), and
 * a backslash at the end is kept. Converted to UTF-8 (at most 2 bytes per input byte).
 */
int pk_load_unicode_line(pk_dec_t *d)
{
    size_t len;
    const unsigned char *s = pk_take_line(d, &len);
    if (s == NULL)
        return -1;
    char *out = pk_blob(d, 2 * len + 1);
    if (out == NULL)
        return -1;
    size_t o = 0;
    int surrogate = 0;
    for (size_t i = 0; i < len;) {
        if (s[i] != '\\' || i + 1 == len) {
            o += pk_utf8_put(out + o, s[i++]);
            continue;
        }
        unsigned c = s[i + 1];
        if (c != 'u' && c != 'U') {
            out[o++] = '\\';
            o += pk_utf8_put(out + o, c);
            i += 2;
            continue;
        }
        size_t count = c == 'u' ? 4 : 8;
        uint32_t cp = 0;
        i += 2;
        for (size_t k = 0; k < count; k++, i++) {
            int h = i < len ? hex_digit(s[i]) : -1;
            if (h < 0)
                return pk_fail(d, CODEC_EFORMAT, "pickle: UNICODE at offset %zu: truncated \\%c escape",
                               d->op_at, (int)c);
            cp = (cp << 4) | (uint32_t)h;
        }
        if (cp > 0x10ffff)
            return pk_fail(d, CODEC_EFORMAT, "pickle: UNICODE at offset %zu: \\U escape out of range", d->op_at);
        if (cp >= 0xd800 && cp <= 0xdfff)
            surrogate = 1;
        o += pk_utf8_put(out + o, cp);
    }
    return pk_push(d, pk_new_str(d, out, o, surrogate));
}

/* BINSTRING, SHORT_BINSTRING: a Python 2 str, which Python 3 decodes as ASCII (its default). */
int pk_load_ascii(pk_dec_t *d, const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] >= 0x80)
            return pk_fail(d, CODEC_EFORMAT, "pickle: %s at offset %zu is not ASCII (a Python 2 str)",
                           pk_opname(d->op), d->op_at);
    return pk_push(d, pk_new_str(d, (const char *)s, n, 0));
}

/*
 * STRING (protocol 0, a Python 2 str): a quoted literal with the escapes of bytes literals (as
 * PyBytes_DecodeEscape reads them: unknown escapes kept, \x needs two hex digits, a trailing backslash is
 * an error), then decoded as ASCII.
 */
int pk_load_string_line(pk_dec_t *d)
{
    size_t len;
    const unsigned char *s = pk_take_line(d, &len);
    if (s == NULL)
        return -1;
    if (len < 2 || s[0] != s[len - 1] || (s[0] != '\'' && s[0] != '"'))
        return pk_fail(d, CODEC_EFORMAT, "pickle: the STRING opcode argument must be quoted (offset %zu)",
                       d->op_at);
    s++;
    len -= 2;
    char *out = pk_blob(d, len + 1);
    if (out == NULL)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        unsigned c = s[i++];
        if (c == '\\') {
            if (i == len)
                return pk_fail(d, CODEC_EFORMAT, "pickle: STRING at offset %zu: trailing \\", d->op_at);
            unsigned e = s[i++];
            switch (e) {
            case '\\': c = '\\'; break;
            case '\'': c = '\''; break;
            case '"': c = '"'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 't': c = '\t'; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 'v': c = '\v'; break;
            case 'a': c = '\a'; break;
            case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7':
                c = e - '0';
                for (int k = 0; k < 2 && i < len && s[i] >= '0' && s[i] <= '7'; k++)
                    c = c * 8 + (s[i++] - '0');
                break;
            case 'x': {
                int h1 = i + 1 < len ? hex_digit(s[i]) : -1;
                int h2 = i + 1 < len ? hex_digit(s[i + 1]) : -1;
                if (h1 < 0 || h2 < 0)
                    return pk_fail(d, CODEC_EFORMAT, "pickle: STRING at offset %zu: invalid \\x escape", d->op_at);
                c = (unsigned)(h1 * 16 + h2);
                i += 2;
                break;
            }
            default:
                c = '\\';       /* kept, and the character after it is read again */
                i--;
                break;
            }
        }
        if (c >= 0x80)
            return pk_fail(d, CODEC_EFORMAT, "pickle: STRING at offset %zu is not ASCII (a Python 2 str)",
                           d->op_at);
        out[o++] = (char)c;
    }
    return pk_push(d, pk_new_str(d, out, o, 0));
}

int pk_push_bytes(pk_dec_t *d, int type, const unsigned char *s, size_t n)
{
    if (s == NULL)
        return -1;
    pk_obj_t *o = pk_new(d, type);
    if (o == NULL)
        return -1;
    o->u.s.p = (const char *)s;
    o->u.s.n = n;
    return pk_push(d, o);
}

