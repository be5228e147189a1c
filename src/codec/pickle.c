/*
 * codec/pickle: cachetory's PickleSerializer format — pickle.dumps(value, protocol=P) and pickle.loads().
 *
 * Encode. A client value is a Python bytes object, written byte for byte as CPython 3.11's C pickler
 * (Modules/_pickle.c) writes one at protocol P (params->pickle_protocol, 2..5):
 *
 *   3      PROTO 3, SHORT_BINBYTES (< 256 bytes) or BINBYTES, BINPUT 0, STOP
 *   4, 5   PROTO P, then SHORT_BINBYTES / BINBYTES / BINBYTES8, MEMOIZE, STOP inside one FRAME. A value of
 *          64 KiB or more (FRAME_SIZE_TARGET) bypasses the frame: the pickler commits the frame it has
 *          (still empty here, so nothing is written), writes the BINBYTES header and the data unframed, and
 *          the MEMOIZE STOP that follow are a frame shorter than FRAME_SIZE_MIN (4), which is never framed.
 *   2      bytes did not exist in protocol 2, so CPython writes _codecs.encode(value.decode('latin1'),
 *          'latin1'): GLOBAL '_codecs\nencode', BINPUT 0, BINUNICODE <the latin-1 text as UTF-8>, BINPUT 1,
 *          BINUNICODE 'latin1', BINPUT 2, TUPLE2, BINPUT 3, REDUCE, BINPUT 4, STOP; and b'' as
 *          GLOBAL '__builtin__\nbytes', BINPUT 0, EMPTY_TUPLE, REDUCE, BINPUT 1, STOP.
 *
 * Decode. A small pickle machine that understands the data opcodes of protocols 0 to 5 — bytes, str,
 * int, float, bool, None, list, tuple, dict, the memo, MARK, POP, DUP, FRAME — and, of everything that
 * calls code, exactly the two forms above (which are also what protocols 0 and 1 write for bytes). Any
 * other global, REDUCE of anything else, BUILD, INST, OBJ, NEWOBJ, PERSID, extension codes, sets and
 * out-of-band buffers are refused (CODEC_EFORMAT: in mixed mode the stored value is returned as it is).
 * Where it accepts a pickle it does what CPython 3.11's C unpickler does: the stack and its MARK fence,
 * memo numbering (MEMOIZE uses the number of memo entries), bytes after STOP ignored, objects left under
 * the result ignored, dict keys that are equal in Python (1, 1.0 and True) merged — first key, last
 * value — and FRAME only checked for its length. What it refuses although CPython accepts it (none of
 * it is ever written by CPython's pickler): number and memo-key spellings other than CPython's (INT
 * "+1", "010", "1 "; LONG "1_000"), APPEND / SETITEM into anything but a list / dict (bytearray.extend,
 * list.__setitem__), _codecs.encode with arguments other than (str, 'latin1'), bytes() with arguments,
 * memo keys larger than the pickle could number (input size + 256), str holding a lone surrogate.
 *
 * The result: bytes (and bytearray) give their bytes, str its UTF-8; anything else its JSON text as
 * json.dumps(pickle.loads(x)) writes it (codec/jsonw): tuples as arrays, dict keys str / int / float /
 * bool / None converted as json.dumps does. Where json.dumps would fail, decoding fails (CODEC_EFORMAT):
 * a circular structure, nesting deeper than 1000 levels (CPython's recursion limit), an int of more
 * than 4300 digits (sys.get_int_max_str_digits()), a key of another type. One deliberate difference:
 * bytes inside a structure are rendered as a JSON string of their latin-1 text (as the msgpack codec
 * renders bin), where json.dumps raises TypeError.
 *
 * Bounds. Declared lengths are checked against the bytes present before anything is read or allocated.
 * Strings and bytes point into the input; what the machine allocates (objects, stack, marks, memo,
 * container arrays, decoded text) is counted and limited to PK_WORK_PER_BYTE times the input plus
 * PK_WORK_MIN (CODEC_ETOOBIG past it), so no pickle gets more memory than a fixed multiple of its own
 * size. The rendered text never grows past params->max_decoded (CODEC_ETOOBIG). Time is bounded too:
 * each opcode does work proportional to the input that built its operands (dict keys are merged once
 * per dict, by sorting; tuple hashability is settled when the tuple is built), and an object referenced
 * again is not rendered again but copied from its first rendering, so a memo bomb — one list referenced
 * 50 times at each of ten levels — costs memcpy time up to max_decoded.
 *
 * Reentrant: a decode's whole state is a pk_dec_t on the caller's stack; no static mutable state.
 *
 * Files: this one (the encoder, the entry points, the codec's description); the decoder in pickle_load.c,
 * pickle_vm.c and pickle_render.c, which share pickle_int.h.
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

#define PK_FRAME_SIZE_TARGET 65536u     /* _pickle.c: data this large bypasses the frame */
#define PK_FRAME_HEADER_SIZE 9

/* ----------------------------------------------------------------------------------------------------
 * Encode
 * ---------------------------------------------------------------------------------------------------- */

static void pk_put_le(unsigned char *p, uint64_t v, int nbytes)
{
    for (int i = 0; i < nbytes; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* The opcode and length of a bytes object of n bytes: SHORT_BINBYTES, BINBYTES or BINBYTES8. */
static size_t pk_bytes_header(unsigned char *h, uint64_t n)
{
    if (n < 256) {
        h[0] = OP_SHORT_BINBYTES;
        h[1] = (unsigned char)n;
        return 2;
    }
    if (n <= 0xffffffffu) {
        h[0] = OP_BINBYTES;
        pk_put_le(h + 1, n, 4);
        return 5;
    }
    h[0] = OP_BINBYTES8;
    pk_put_le(h + 1, n, 8);
    return 9;
}

/* Protocols 3 to 5: the bytes object itself. */
static int pk_encode_binbytes(int proto, const char *in, size_t n, buf_t *out, char *err)
{
    unsigned char h[PK_FRAME_HEADER_SIZE + 16];
    size_t hl = 0;
    unsigned char bh[9];
    size_t bhl = pk_bytes_header(bh, n);

    if (proto == 3 && bhl == 9) {
        snprintf(err, CODEC_ERRLEN, "pickle: protocol 3 cannot hold a value of 4 GiB or more (use 4 or 5)");
        return CODEC_EINPUT;
    }
    h[hl++] = OP_PROTO;
    h[hl++] = (unsigned char)proto;
    if (proto >= 4 && n < PK_FRAME_SIZE_TARGET) {
        /* header, data, MEMOIZE, STOP: always at least FRAME_SIZE_MIN (4) bytes, so always framed */
        h[hl++] = OP_FRAME;
        pk_put_le(h + hl, bhl + n + 2, 8);
        hl += 8;
    }
    memcpy(h + hl, bh, bhl);
    hl += bhl;

    buf_reserve(out, hl + n + 3);
    buf_append(out, h, hl);
    buf_append(out, in, n);
    if (proto >= 4)
        buf_append(out, "\x94.", 2);            /* MEMOIZE STOP */
    else
        buf_append(out, "q\x00.", 3);           /* BINPUT 0, STOP */
    return CODEC_OK;
}

/* Protocol 2: _codecs.encode(value.decode('latin1'), 'latin1'), or bytes() for b''. */
static int pk_encode_v2(const char *in, size_t n, buf_t *out, char *err)
{
    static const char empty[] = "\x80\x02" "c__builtin__\nbytes\n" "q\x00" ")" "R" "q\x01" ".";
    static const char head[] = "\x80\x02" "c_codecs\nencode\n" "q\x00";
    static const char tail[] = "q\x01" "X\x06\x00\x00\x00" "latin1" "q\x02" "\x86" "q\x03" "R" "q\x04" ".";
    const unsigned char *s = (const unsigned char *)in;
    size_t high = 0;

    if (n == 0) {
        buf_append(out, empty, sizeof(empty) - 1);
        return CODEC_OK;
    }
    for (size_t i = 0; i < n; i++)
        high += s[i] >> 7;
    uint64_t tl = (uint64_t)n + high;           /* UTF-8 length of the latin-1 text */
    if (tl > 0xffffffffu) {
        snprintf(err, CODEC_ERRLEN, "pickle: protocol 2 cannot hold a value whose text is 4 GiB or more");
        return CODEC_EINPUT;
    }
    unsigned char x[5] = { OP_BINUNICODE };
    pk_put_le(x + 1, tl, 4);

    buf_reserve(out, sizeof(head) - 1 + 5 + (size_t)tl + sizeof(tail) - 1);
    buf_append(out, head, sizeof(head) - 1);
    buf_append(out, x, 5);
    for (size_t i = 0; i < n;) {
        size_t run = i;
        while (run < n && s[run] < 0x80)
            run++;
        buf_append(out, s + i, run - i);
        i = run;
        if (i < n) {
            unsigned char u[2] = { (unsigned char)(0xc0 | (s[i] >> 6)), (unsigned char)(0x80 | (s[i] & 0x3f)) };
            buf_append(out, u, 2);
            i++;
        }
    }
    buf_append(out, tail, sizeof(tail) - 1);
    return CODEC_OK;
}

static int pickle_encode(void *ctx, const codec_params_t *p, const char *in, size_t n, buf_t *out, char *err)
{
    int proto = p->pickle_protocol;

    if (proto < 2 || proto > PK_HIGHEST_PROTOCOL) {
        snprintf(err, CODEC_ERRLEN, "pickle: protocol %d is not supported (2, 3, 4 or 5)", proto);
        return CODEC_EINPUT;
    }
    if (proto == 2)
        return pk_encode_v2(in, n, out, err);
    return pk_encode_binbytes(proto, in, n, out, err);
}

/* ----------------------------------------------------------------------------------------------------
 * Decode: entry point
 * ---------------------------------------------------------------------------------------------------- */

static void pk_dec_init(pk_dec_t *d, const codec_params_t *p, const char *in, size_t n, char *err)
{
    memset(d, 0, sizeof(*d));
    d->in = (const unsigned char *)in;
    d->n = n;
    d->max_out = p->max_decoded;
    d->budget = n > (SIZE_MAX - PK_WORK_MIN) / PK_WORK_PER_BYTE ? SIZE_MAX : PK_WORK_MIN + n * PK_WORK_PER_BYTE;
    d->err = err;
    d->none.type = PK_NONE;
    d->yes.type = PK_BOOL;
    d->yes.u.i = 1;
    d->no.type = PK_BOOL;
    d->empty_tuple.type = PK_TUPLE;
    d->encode_fn.type = PK_ENCODE;
    d->bytes_fn.type = PK_BYTES_TYPE;
}

static int pickle_decode(void *ctx, const codec_params_t *p, const char *in, size_t n, buf_t *out, char *err)
{
    pk_dec_t d;
    pk_obj_t *result = NULL;
    int step;

    pk_dec_init(&d, p, in, n, err);
    while ((step = pk_step(&d, &result)) == 0)
        ;
    if (step > 0) {
        switch (result->type) {
        case PK_BYTES: case PK_BYTEARRAY:
            if (pk_out_check(&d, out, result->u.s.n) == 0)
                buf_append(out, result->u.s.p, result->u.s.n);
            break;
        case PK_STR:
            if (result->flags & PK_F_SURROGATE)
                pk_fail(&d, CODEC_EFORMAT, "pickle: a str with a lone surrogate cannot be returned");
            else if (pk_out_check(&d, out, result->u.s.n) == 0)
                buf_append(out, result->u.s.p, result->u.s.n);
            break;
        default:
            if (pk_render(&d, result, out, 0) >= 0)
                pk_out_check(&d, out, 0);
            break;
        }
    }
    pk_dec_deinit(&d);
    if (d.rc != 0)
        buf_reset(out);
    return d.rc;
}

/* pickle-protocol: the protocol values are written at, 2..5 (5 when not given). */
static const codec_param_t pickle_params[] = {
    { .name = "pickle-protocol", .field = offsetof(codec_params_t, pickle_protocol), .given = -1, .unset = 5,
      .lo = 2, .hi = 5, .expect = "2, 3, 4 or 5" },
    { .name = NULL },
};

const codec_t codec_pickle = {
    .name = "pickle",
    .schemes = (const char *const[]){ "pickle", NULL },
    .params = pickle_params,
    .encode = pickle_encode,
    .decode = pickle_decode,
};

