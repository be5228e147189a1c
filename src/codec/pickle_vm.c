/*
 * codec/pickle_vm: the safe unpickler's machine — containers (list, tuple, dict and their APPEND /
 * SETITEM), the only two callables it knows (_codecs.encode, bytes), and pk_step, which runs one opcode.
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
 * Decode: containers
 * ---------------------------------------------------------------------------------------------------- */

static int pk_hashable(const pk_obj_t *o)
{
    switch (o->type) {
    case PK_LIST: case PK_DICT: case PK_BYTEARRAY:
        return 0;
    case PK_TUPLE:
        return !(o->flags & PK_F_UNHASHABLE);
    default:
        return 1;
    }
}

/* A list or tuple of the stack from height `from` up; the stack is cut back to it. */
static int pk_build_seq(pk_dec_t *d, int type, size_t from)
{
    if (from < d->fence)
        return pk_underflow(d);
    size_t n = d->sp - from;
    if (type == PK_TUPLE && n == 0)
        return pk_push(d, &d->empty_tuple);
    pk_obj_t *o = pk_new(d, type);
    if (o == NULL)
        return -1;
    if (type == PK_TUPLE) {
        /* never grows: exactly n */
        if (pk_charge(d, n * sizeof(pk_obj_t *)) < 0)
            return -1;
        o->u.seq.v = mem_alloc(n * sizeof(pk_obj_t *));
    } else {
        size_t cap = 0;
        if (pk_reserve(d, (void **)&o->u.seq.v, &cap, n, sizeof(pk_obj_t *)) < 0)
            return -1;
    }
    for (size_t i = 0; i < n; i++) {
        o->u.seq.v[i] = d->stack[from + i];
        if (type == PK_TUPLE && !pk_hashable(o->u.seq.v[i]))
            o->flags |= PK_F_UNHASHABLE;    /* fixed for good: a tuple never changes */
    }
    o->u.seq.n = n;
    d->sp = from;
    return pk_push(d, o);
}

/* APPEND / APPENDS: stack[from..sp) appended to the list at stack[from - 1] (_pickle.c's do_append). */
static int pk_append(pk_dec_t *d, size_t from)
{
    if (from > d->sp || from <= d->fence)
        return pk_underflow(d);
    if (from == d->sp)
        return 0;                   /* nothing to append: CPython does not look at the target */
    pk_obj_t *list = d->stack[from - 1];
    if (list->type != PK_LIST)
        return pk_fail(d, CODEC_EFORMAT, "pickle: %s to a %s at offset %zu", pk_opname(d->op),
                       pk_typenames[list->type], d->op_at);
    size_t k = d->sp - from;
    size_t cap = pk_seq_cap(list->u.seq.n);
    if (pk_reserve(d, (void **)&list->u.seq.v, &cap, list->u.seq.n + k, sizeof(pk_obj_t *)) < 0)
        return -1;
    if (k > 0)
        memcpy(list->u.seq.v + list->u.seq.n, d->stack + from, k * sizeof(pk_obj_t *));
    list->u.seq.n += k;
    d->sp = from;
    return 0;
}

/*
 * Key / value pairs into dict. Keys are kept in order, duplicates included; equal keys are merged when
 * the dict is rendered (pk_dict_merge), when no more SETITEMs can come.
 */
static int pk_dict_add(pk_dec_t *d, pk_obj_t *dict, pk_obj_t **kv, size_t n)
{
    for (size_t i = 0; i < n; i += 2)
        if (!pk_hashable(kv[i]))
            return pk_fail(d, CODEC_EFORMAT, "pickle: unhashable type '%s' as a dict key (offset %zu)",
                           pk_typenames[kv[i]->type], d->op_at);
    if (n == 0)
        return 0;
    size_t cap = pk_seq_cap(dict->u.seq.n);
    if (pk_reserve(d, (void **)&dict->u.seq.v, &cap, dict->u.seq.n + n, sizeof(pk_obj_t *)) < 0)
        return -1;
    memcpy(dict->u.seq.v + dict->u.seq.n, kv, n * sizeof(pk_obj_t *));
    dict->u.seq.n += n;
    return 0;
}

/* SETITEM / SETITEMS: pairs stack[from..sp) into the dict at stack[from - 1] (_pickle.c's do_setitems). */
static int pk_setitems(pk_dec_t *d, size_t from)
{
    if (from > d->sp || from <= d->fence)
        return pk_underflow(d);
    if (from == d->sp)
        return 0;
    if ((d->sp - from) % 2 != 0)
        return pk_fail(d, CODEC_EFORMAT, "pickle: odd number of items for %s at offset %zu", pk_opname(d->op),
                       d->op_at);
    pk_obj_t *dict = d->stack[from - 1];
    if (dict->type != PK_DICT)
        return pk_fail(d, CODEC_EFORMAT, "pickle: %s on a %s at offset %zu", pk_opname(d->op),
                       pk_typenames[dict->type], d->op_at);
    if (d->sp > from && pk_dict_add(d, dict, d->stack + from, d->sp - from) < 0)
        return -1;
    d->sp = from;
    return 0;
}

/* DICT: a new dict of the pairs above the top MARK. */
static int pk_load_dict(pk_dec_t *d)
{
    size_t from;
    if (pk_marker(d, &from) < 0)
        return -1;
    if ((d->sp - from) % 2 != 0)
        return pk_fail(d, CODEC_EFORMAT, "pickle: odd number of items for DICT at offset %zu", d->op_at);
    pk_obj_t *dict = pk_new(d, PK_DICT);
    /* an empty DICT: the stack may never have been allocated, so no pointer is made from it */
    if (dict == NULL || (d->sp > from && pk_dict_add(d, dict, d->stack + from, d->sp - from) < 0))
        return -1;
    d->sp = from;
    return pk_push(d, dict);
}

/* ----------------------------------------------------------------------------------------------------
 * Decode: the two callables of CPython's protocol 0..2 bytes
 * ---------------------------------------------------------------------------------------------------- */

static int pk_name_is(const unsigned char *s, size_t n, const char *name)
{
    return n == strlen(name) && memcmp(s, name, n) == 0;
}

/*
 * GLOBAL / STACK_GLOBAL: only _codecs.encode and builtins.bytes (__builtin__.bytes below protocol 3,
 * where Unpickler.find_class maps Python 2's module names, as CPython does).
 */
static int pk_global(pk_dec_t *d, const unsigned char *mod, size_t ml, const unsigned char *name, size_t nl)
{
    if (pk_name_is(mod, ml, "_codecs") && pk_name_is(name, nl, "encode"))
        return pk_push(d, &d->encode_fn);
    if ((pk_name_is(mod, ml, "builtins") || (d->proto < 3 && pk_name_is(mod, ml, "__builtin__"))) &&
        pk_name_is(name, nl, "bytes"))
        return pk_push(d, &d->bytes_fn);
    return pk_fail(d, CODEC_EFORMAT, "pickle: global %s.%s is not allowed (offset %zu)", pk_quote(mod, ml).s,
                   pk_quote(name, nl).s, d->op_at);
}

static int pk_load_global(pk_dec_t *d)
{
    size_t ml, nl;
    const unsigned char *mod = pk_take_line(d, &ml);
    if (mod == NULL)
        return -1;
    const unsigned char *name = pk_take_line(d, &nl);
    if (name == NULL)
        return -1;
    return pk_global(d, mod, ml, name, nl);
}

static int pk_load_stack_global(pk_dec_t *d)
{
    pk_obj_t *name = pk_pop(d);
    if (name == NULL)
        return -1;
    pk_obj_t *mod = pk_pop(d);
    if (mod == NULL)
        return -1;
    if (name->type != PK_STR || mod->type != PK_STR)
        return pk_fail(d, CODEC_EFORMAT, "pickle: STACK_GLOBAL requires str (offset %zu)", d->op_at);
    return pk_global(d, (const unsigned char *)mod->u.s.p, mod->u.s.n, (const unsigned char *)name->u.s.p,
                     name->u.s.n);
}

/* _codecs.encode(text, 'latin1'): the code points of text (all below 256) as bytes. */
static int pk_latin1_encode(pk_dec_t *d, const pk_obj_t *text)
{
    const unsigned char *s = (const unsigned char *)text->u.s.p;
    size_t n = text->u.s.n, i;

    for (i = 0; i < n && s[i] < 0x80; i++)
        ;
    if (i == n)
        return pk_push_bytes(d, PK_BYTES, s, n);     /* ASCII: the same bytes */
    char *out = pk_blob(d, n);
    if (out == NULL)
        return -1;
    size_t o = 0;
    for (i = 0; i < n;) {
        if (s[i] < 0x80) {
            out[o++] = (char)s[i++];
        } else if ((s[i] & 0xe0) == 0xc0 && s[i] <= 0xc3) {
            out[o++] = (char)(((s[i] & 0x1f) << 6) | (s[i + 1] & 0x3f));   /* U+0080..U+00FF */
            i += 2;
        } else {
            return pk_fail(d, CODEC_EFORMAT, "pickle: _codecs.encode(..., 'latin1') of a character above "
                           "U+00FF (offset %zu)", d->op_at);
        }
    }
    return pk_push_bytes(d, PK_BYTES, (const unsigned char *)out, o);
}

/* REDUCE: callable(*args), for the two forms CPython writes for bytes and nothing else. */
static int pk_load_reduce(pk_dec_t *d)
{
    pk_obj_t *args = pk_pop(d);
    if (args == NULL)
        return -1;
    pk_obj_t *fn = pk_pop(d);
    if (fn == NULL)
        return -1;
    if (fn->type == PK_ENCODE) {
        pk_obj_t *const *a = args->type == PK_TUPLE ? args->u.seq.v : NULL;
        if (a != NULL && args->u.seq.n == 2 && a[0]->type == PK_STR && a[1]->type == PK_STR &&
            a[1]->u.s.n == 6 && memcmp(a[1]->u.s.p, "latin1", 6) == 0)
            return pk_latin1_encode(d, a[0]);
        return pk_fail(d, CODEC_EFORMAT, "pickle: only _codecs.encode(str, 'latin1') is understood (offset %zu)",
                       d->op_at);
    }
    if (fn->type == PK_BYTES_TYPE) {
        if (args->type == PK_TUPLE && args->u.seq.n == 0)
            return pk_push_bytes(d, PK_BYTES, (const unsigned char *)"", 0);
        return pk_fail(d, CODEC_EFORMAT, "pickle: only bytes() with no argument is understood (offset %zu)",
                       d->op_at);
    }
    return pk_fail(d, CODEC_EFORMAT, "pickle: REDUCE of a %s at offset %zu is not allowed",
                   pk_typenames[fn->type], d->op_at);
}

/* ----------------------------------------------------------------------------------------------------
 * Decode: the machine
 * ---------------------------------------------------------------------------------------------------- */

/* Run one opcode. 1 at STOP, 0 to go on, -1 on error. */
int pk_step(pk_dec_t *d, pk_obj_t **result)
{
    const unsigned char *p;
    size_t len = 0, from = 0;
    pk_obj_t *o;

    d->op_at = d->pos;
    if (d->pos == d->n) {
        if (d->n == 0)
            return pk_fail(d, CODEC_EFORMAT, "pickle: empty value");
        return pk_fail(d, CODEC_EFORMAT, "pickle: no STOP opcode (truncated after %zu bytes)", d->n);
    }
    d->op = d->in[d->pos++];

    switch (d->op) {
    case OP_PROTO:
        if ((p = pk_take(d, 1)) == NULL)
            return -1;
        if (p[0] > PK_HIGHEST_PROTOCOL)
            return pk_fail(d, CODEC_EFORMAT, "pickle: unsupported pickle protocol: %d", p[0]);
        d->proto = p[0];
        return 0;
    case OP_FRAME:
        /* The C unpickler only checks that the frame is all there. */
        if ((p = pk_take(d, 8)) == NULL)
            return -1;
        if (pk_get_le(p, 8) > d->n - d->pos)
            return pk_fail(d, CODEC_EFORMAT, "pickle: truncated: FRAME at offset %zu declares %llu bytes, %zu "
                           "follow", d->op_at, (unsigned long long)pk_get_le(p, 8), d->n - d->pos);
        return 0;
    case OP_STOP:
        if ((*result = pk_pop(d)) == NULL)
            return -1;
        return 1;

    case OP_MARK:
        if (pk_reserve(d, (void **)&d->marks, &d->marks_cap, d->nmarks + 1, sizeof(*d->marks)) < 0)
            return -1;
        d->marks[d->nmarks++] = d->sp;
        d->fence = d->sp;
        return 0;
    case OP_POP:
        /* _pickle.c's load_pop: an empty MARK on top is what gets popped */
        if (d->nmarks > 0 && d->marks[d->nmarks - 1] == d->sp)
            return pk_marker(d, &from);
        return pk_pop(d) ? 0 : -1;
    case OP_POP_MARK:
        if (pk_marker(d, &from) < 0)
            return -1;
        d->sp = from;
        return 0;
    case OP_DUP:
        if ((o = pk_top(d)) == NULL)
            return -1;
        return pk_push(d, o);

    case OP_PUT:
        {
            uint64_t key;
            if (pk_line_key(d, &key) < 0)
                return -1;
            return pk_memo_put(d, key);
        }
    case OP_BINPUT:
        if ((p = pk_take(d, 1)) == NULL)
            return -1;
        return pk_memo_put(d, p[0]);
    case OP_LONG_BINPUT:
        if ((p = pk_take(d, 4)) == NULL)
            return -1;
        return pk_memo_put(d, pk_get_le(p, 4));
    case OP_MEMOIZE:
        return pk_memo_put(d, d->memo_len);
    case OP_GET:
        {
            uint64_t key;
            if (pk_line_key(d, &key) < 0)
                return -1;
            return pk_memo_get(d, key);
        }
    case OP_BINGET:
        if ((p = pk_take(d, 1)) == NULL)
            return -1;
        return pk_memo_get(d, p[0]);
    case OP_LONG_BINGET:
        if ((p = pk_take(d, 4)) == NULL)
            return -1;
        return pk_memo_get(d, pk_get_le(p, 4));

    case OP_NONE:
        return pk_push(d, &d->none);
    case OP_NEWTRUE:
        return pk_push(d, &d->yes);
    case OP_NEWFALSE:
        return pk_push(d, &d->no);
    case OP_INT:
        return pk_load_decimal(d, 0);
    case OP_LONG:
        return pk_load_decimal(d, 1);
    case OP_BININT:
        if ((p = pk_take(d, 4)) == NULL)
            return -1;
        return pk_push(d, pk_new_int(d, (int32_t)(uint32_t)pk_get_le(p, 4)));
    case OP_BININT1:
        if ((p = pk_take(d, 1)) == NULL)
            return -1;
        return pk_push(d, pk_new_int(d, p[0]));
    case OP_BININT2:
        if ((p = pk_take(d, 2)) == NULL)
            return -1;
        return pk_push(d, pk_new_int(d, (int64_t)pk_get_le(p, 2)));
    case OP_LONG1:
        if ((p = pk_take_counted(d, 1, &len)) == NULL)
            return -1;
        return pk_load_binlong(d, p, len);
    case OP_LONG4:
        if ((p = pk_take(d, 4)) == NULL)
            return -1;
        if ((int32_t)(uint32_t)pk_get_le(p, 4) < 0)
            return pk_fail(d, CODEC_EFORMAT, "pickle: LONG pickle has negative byte count (offset %zu)", d->op_at);
        len = (size_t)pk_get_le(p, 4);
        if ((p = pk_take(d, len)) == NULL)
            return -1;
        return pk_load_binlong(d, p, len);
    case OP_FLOAT:
        return pk_load_float_line(d);
    case OP_BINFLOAT:
        {
            if ((p = pk_take(d, 8)) == NULL)
                return -1;
            uint64_t bits = 0;
            double v;
            for (int i = 0; i < 8; i++)
                bits = (bits << 8) | p[i];
            memcpy(&v, &bits, sizeof(v));
            return pk_push_float(d, v);
        }

    case OP_SHORT_BINUNICODE:
        if ((p = pk_take_counted(d, 1, &len)) == NULL)
            return -1;
        return pk_load_utf8(d, p, len);
    case OP_BINUNICODE:
        if ((p = pk_take_counted(d, 4, &len)) == NULL)
            return -1;
        return pk_load_utf8(d, p, len);
    case OP_BINUNICODE8:
        if ((p = pk_take_counted(d, 8, &len)) == NULL)
            return -1;
        return pk_load_utf8(d, p, len);
    case OP_UNICODE:
        return pk_load_unicode_line(d);
    case OP_SHORT_BINSTRING:
        if ((p = pk_take_counted(d, 1, &len)) == NULL)
            return -1;
        return pk_load_ascii(d, p, len);
    case OP_BINSTRING:
        if ((p = pk_take(d, 4)) == NULL)
            return -1;
        if ((int32_t)(uint32_t)pk_get_le(p, 4) < 0)
            return pk_fail(d, CODEC_EFORMAT, "pickle: BINSTRING pickle has negative byte count (offset %zu)",
                           d->op_at);
        len = (size_t)pk_get_le(p, 4);
        if ((p = pk_take(d, len)) == NULL)
            return -1;
        return pk_load_ascii(d, p, len);
    case OP_STRING:
        return pk_load_string_line(d);
    case OP_SHORT_BINBYTES:
        p = pk_take_counted(d, 1, &len);
        return pk_push_bytes(d, PK_BYTES, p, len);
    case OP_BINBYTES:
        p = pk_take_counted(d, 4, &len);
        return pk_push_bytes(d, PK_BYTES, p, len);
    case OP_BINBYTES8:
        p = pk_take_counted(d, 8, &len);
        return pk_push_bytes(d, PK_BYTES, p, len);
    case OP_BYTEARRAY8:
        p = pk_take_counted(d, 8, &len);
        return pk_push_bytes(d, PK_BYTEARRAY, p, len);

    case OP_EMPTY_LIST:
        return pk_push(d, pk_new(d, PK_LIST));
    case OP_EMPTY_DICT:
        return pk_push(d, pk_new(d, PK_DICT));
    case OP_EMPTY_TUPLE:
        return pk_push(d, &d->empty_tuple);
    case OP_LIST:
        if (pk_marker(d, &from) < 0)
            return -1;
        return pk_build_seq(d, PK_LIST, from);
    case OP_TUPLE:
        if (pk_marker(d, &from) < 0)
            return -1;
        return pk_build_seq(d, PK_TUPLE, from);
    case OP_TUPLE1: case OP_TUPLE2: case OP_TUPLE3:
        {
            size_t k = (size_t)(d->op - OP_TUPLE1 + 1);
            if (d->sp < k)
                return pk_underflow(d);
            return pk_build_seq(d, PK_TUPLE, d->sp - k);
        }
    case OP_DICT:
        return pk_load_dict(d);
    case OP_APPEND:
        return pk_append(d, d->sp ? d->sp - 1 : 0);
    case OP_APPENDS:
        if (pk_marker(d, &from) < 0)
            return -1;
        return pk_append(d, from);
    case OP_SETITEM:
        return pk_setitems(d, d->sp >= 2 ? d->sp - 2 : 0);
    case OP_SETITEMS:
        if (pk_marker(d, &from) < 0)
            return -1;
        return pk_setitems(d, from);

    case OP_GLOBAL:
        return pk_load_global(d);
    case OP_STACK_GLOBAL:
        return pk_load_stack_global(d);
    case OP_REDUCE:
        return pk_load_reduce(d);

    default:
        if (pk_opnames[d->op] != NULL)
            return pk_fail(d, CODEC_EFORMAT, "pickle: unsupported opcode 0x%02x (%s) at offset %zu", d->op,
                           pk_opnames[d->op], d->op_at);
        return pk_fail(d, CODEC_EFORMAT, "pickle: invalid opcode 0x%02x at offset %zu", d->op, d->op_at);
    }
}

