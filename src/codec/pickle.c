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
#include "util/mem.h"

/* Opcodes (Lib/pickle.py names). */
enum {
    OP_MARK = '(', OP_STOP = '.', OP_POP = '0', OP_POP_MARK = '1', OP_DUP = '2', OP_FLOAT = 'F',
    OP_INT = 'I', OP_BININT = 'J', OP_BININT1 = 'K', OP_LONG = 'L', OP_BININT2 = 'M', OP_NONE = 'N',
    OP_PERSID = 'P', OP_BINPERSID = 'Q', OP_REDUCE = 'R', OP_STRING = 'S', OP_BINSTRING = 'T',
    OP_SHORT_BINSTRING = 'U', OP_UNICODE = 'V', OP_BINUNICODE = 'X', OP_APPEND = 'a', OP_BUILD = 'b',
    OP_GLOBAL = 'c', OP_DICT = 'd', OP_EMPTY_DICT = '}', OP_APPENDS = 'e', OP_GET = 'g', OP_BINGET = 'h',
    OP_INST = 'i', OP_LONG_BINGET = 'j', OP_LIST = 'l', OP_EMPTY_LIST = ']', OP_OBJ = 'o', OP_PUT = 'p',
    OP_BINPUT = 'q', OP_LONG_BINPUT = 'r', OP_SETITEM = 's', OP_TUPLE = 't', OP_EMPTY_TUPLE = ')',
    OP_SETITEMS = 'u', OP_BINFLOAT = 'G',
    /* protocol 2 */
    OP_PROTO = 0x80, OP_NEWOBJ = 0x81, OP_EXT1 = 0x82, OP_EXT2 = 0x83, OP_EXT4 = 0x84, OP_TUPLE1 = 0x85,
    OP_TUPLE2 = 0x86, OP_TUPLE3 = 0x87, OP_NEWTRUE = 0x88, OP_NEWFALSE = 0x89, OP_LONG1 = 0x8a,
    OP_LONG4 = 0x8b,
    /* protocol 3 */
    OP_BINBYTES = 'B', OP_SHORT_BINBYTES = 'C',
    /* protocol 4 */
    OP_SHORT_BINUNICODE = 0x8c, OP_BINUNICODE8 = 0x8d, OP_BINBYTES8 = 0x8e, OP_EMPTY_SET = 0x8f,
    OP_ADDITEMS = 0x90, OP_FROZENSET = 0x91, OP_NEWOBJ_EX = 0x92, OP_STACK_GLOBAL = 0x93, OP_MEMOIZE = 0x94,
    OP_FRAME = 0x95,
    /* protocol 5 */
    OP_BYTEARRAY8 = 0x96, OP_NEXT_BUFFER = 0x97, OP_READONLY_BUFFER = 0x98,
};

/* For error messages. NULL: not an opcode. */
static const char *const pk_opnames[256] = {
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

#define PK_HIGHEST_PROTOCOL 5
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
 * Decode: objects and memory
 * ---------------------------------------------------------------------------------------------------- */

#define PK_WORK_PER_BYTE 64             /* working memory allowed per byte of input (CPython's pickles need
                                           up to about 34: a list of empty lists at protocol 5) ... */
#define PK_WORK_MIN (1u << 20)          /* ... plus this much */
#define PK_MAX_DEPTH 1000               /* CPython's recursion limit: json.dumps fails about there */
#define PK_MAX_STR_DIGITS 4300          /* sys.get_int_max_str_digits(): int <-> str refuses longer */
#define PK_HUGE_BITS 14400              /* an int this many bits wide has more than 4300 digits */
#define PK_CHUNK_OBJS 128

enum pk_type {
    PK_NONE, PK_BOOL, PK_INT, PK_BIGINT, PK_FLOAT, PK_STR, PK_BYTES, PK_BYTEARRAY,
    PK_LIST, PK_TUPLE, PK_DICT, PK_ENCODE, PK_BYTES_TYPE,
};

static const char *const pk_typenames[] = {
    [PK_NONE] = "NoneType", [PK_BOOL] = "bool", [PK_INT] = "int", [PK_BIGINT] = "int", [PK_FLOAT] = "float",
    [PK_STR] = "str", [PK_BYTES] = "bytes", [PK_BYTEARRAY] = "bytearray", [PK_LIST] = "list",
    [PK_TUPLE] = "tuple", [PK_DICT] = "dict", [PK_ENCODE] = "builtin_function_or_method",
    [PK_BYTES_TYPE] = "type",
};

#define PK_F_ACTIVE     0x01    /* list / tuple / dict being rendered: meeting it again is a cycle */
#define PK_F_SURROGATE  0x02    /* str holding a lone surrogate (accepted as Python does, not renderable) */
#define PK_F_HUGE       0x04    /* int of more than 4300 digits (no digits kept) */
#define PK_F_NEG        0x08    /* bigint: negative */
#define PK_F_UNHASHABLE 0x10    /* tuple holding a list, dict, bytearray or unhashable tuple */
#define PK_F_MERGED     0x20    /* dict whose equal keys have been merged */

/*
 * A Python object. Objects are immutable once the pickle is read, so an object's JSON text is the same
 * wherever it is referenced: the first rendering is remembered as a range of the output (out_off,
 * out_len), and later references copy it from there — a memo bomb costs a memcpy per reference, not a
 * rendering of the whole subtree (and of every float in it) again.
 */
typedef struct pk_obj pk_obj_t;
struct pk_obj {
    unsigned char type;             /* enum pk_type */
    unsigned char flags;            /* PK_F_* */
    uint16_t height;                /* containers, once rendered: levels of containers, itself included */
    size_t out_off, out_len;        /* its JSON text in the output; out_len 0: not rendered yet */
    union {
        int64_t i;                  /* PK_BOOL (0 / 1), PK_INT */
        double f;                   /* PK_FLOAT */
        struct {
            const char *p;          /* PK_STR (UTF-8), PK_BYTES, PK_BYTEARRAY; PK_BIGINT: decimal digits */
            size_t n;
        } s;
        struct {
            pk_obj_t **v;           /* PK_LIST, PK_TUPLE; PK_DICT: key, value, key, value... (heap:
                                       n for a tuple, pk_seq_cap(n) for a list or dict) */
            size_t n;
        } seq;
    } u;
};

/* The allocated length of a list's or dict's array of n: what pk_reserve grows it to. */
static size_t pk_seq_cap(size_t n)
{
    size_t cap = 0;
    while (cap < n)
        cap = cap ? cap * 2 : 8;
    return cap;
}

typedef struct pk_chunk {
    struct pk_chunk *next;
    size_t used;
    pk_obj_t objs[PK_CHUNK_OBJS];
} pk_chunk_t;

typedef struct pk_blob {
    struct pk_blob *next;
    char data[];
} pk_blob_t;

typedef struct pk_dec {
    const unsigned char *in;        /* the pickle */
    size_t n;                       /* its length */
    size_t pos;                     /* next byte to read */
    size_t op_at;                   /* offset of the opcode being run (messages) */
    int op;                         /* that opcode */
    int proto;                      /* last PROTO seen (0 before): names are mapped from Python 2 below 3 */

    pk_obj_t **stack;               /* the machine's stack (heap) */
    size_t sp, stack_cap;
    size_t *marks;                  /* stack heights at each open MARK (heap) */
    size_t nmarks, marks_cap;
    size_t fence;                   /* nothing at or below this height can be popped: the top MARK */
    pk_obj_t **memo;                /* dense memo, indexed by memo key; NULL: no entry (heap) */
    size_t memo_cap;
    size_t memo_len;                /* entries set: the key MEMOIZE uses, as in _pickle.c */

    pk_chunk_t *chunks;             /* object arena */
    pk_blob_t *blobs;               /* decoded text, digits */
    size_t used;                    /* bytes allocated so far ... */
    size_t budget;                  /* ... and the most allowed */
    size_t max_out;                 /* params->max_decoded */

    pk_obj_t none, yes, no;         /* shared immutable values */
    pk_obj_t empty_tuple;
    pk_obj_t encode_fn, bytes_fn;   /* _codecs.encode, builtins.bytes */

    int rc;                         /* first error (CODEC_EFORMAT, CODEC_ETOOBIG), 0 while none */
    char *err;                      /* its message (CODEC_ERRLEN) */
} pk_dec_t;

/* Record the first error; later ones (consequences) are ignored. Returns -1 for "return pk_fail(...)". */
__attribute__((format(printf, 3, 4)))
static int pk_fail(pk_dec_t *d, int rc, const char *fmt, ...)
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

static const char *pk_opname(int op)
{
    return pk_opnames[op & 0xff] ? pk_opnames[op & 0xff] : "?";
}

/* Up to 24 bytes of the input for a message: printable ASCII, anything else as '?' (the message goes to a
 * client as a RESP error line, which must not hold control characters). */
typedef struct pk_quote {
    char s[28];
} pk_quote_t;

static pk_quote_t pk_quote(const unsigned char *p, size_t n)
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
static int pk_charge(pk_dec_t *d, size_t size)
{
    if (size > d->budget - d->used)
        return pk_fail(d, CODEC_ETOOBIG, "pickle: decoding needs more than %zu bytes of working memory "
                       "(%d per byte of input)", d->budget, PK_WORK_PER_BYTE);
    d->used += size;
    return 0;
}

/* size bytes of scratch that live until the end of the decode, or NULL (error set). */
static char *pk_blob(pk_dec_t *d, size_t size)
{
    if (pk_charge(d, size + sizeof(pk_blob_t)) < 0)
        return NULL;
    pk_blob_t *b = mem_alloc(sizeof(pk_blob_t) + size);
    b->next = d->blobs;
    d->blobs = b;
    return b->data;
}

/* Make room for need elements of elsize bytes in *arr (capacity *cap), geometrically. 0 or -1. */
static int pk_reserve(pk_dec_t *d, void **arr, size_t *cap, size_t need, size_t elsize)
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

static pk_obj_t *pk_new(pk_dec_t *d, int type)
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

static void pk_dec_deinit(pk_dec_t *d)
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
static const unsigned char *pk_take(pk_dec_t *d, uint64_t k)
{
    if (k > d->n - d->pos) {
        pk_fail(d, CODEC_EFORMAT, "pickle: truncated in %s at offset %zu", pk_opname(d->op), d->op_at);
        return NULL;
    }
    const unsigned char *p = d->in + d->pos;
    d->pos += (size_t)k;
    return p;
}

static uint64_t pk_get_le(const unsigned char *p, int nbytes)
{
    uint64_t v = 0;
    for (int i = nbytes - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* A length of nbytes (1, 4 or 8) little-endian bytes, then that many bytes: *len and the data, or NULL. */
static const unsigned char *pk_take_counted(pk_dec_t *d, int nbytes, size_t *len)
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
static const unsigned char *pk_take_line(pk_dec_t *d, size_t *len)
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

static int pk_push(pk_dec_t *d, pk_obj_t *o)
{
    if (o == NULL)
        return -1;
    if (pk_reserve(d, (void **)&d->stack, &d->stack_cap, d->sp + 1, sizeof(*d->stack)) < 0)
        return -1;
    d->stack[d->sp++] = o;
    return 0;
}

/* _pickle.c's Pdata_stack_underflow: the message says whether a MARK was in the way. */
static int pk_underflow(pk_dec_t *d)
{
    return pk_fail(d, CODEC_EFORMAT, "pickle: %s at offset %zu (%s)",
                   d->nmarks ? "unexpected MARK found" : "stack underflow", d->op_at, pk_opname(d->op));
}

static pk_obj_t *pk_pop(pk_dec_t *d)
{
    if (d->sp <= d->fence) {
        pk_underflow(d);
        return NULL;
    }
    return d->stack[--d->sp];
}

static pk_obj_t *pk_top(pk_dec_t *d)
{
    if (d->sp <= d->fence) {
        pk_underflow(d);
        return NULL;
    }
    return d->stack[d->sp - 1];
}

/* Close the top MARK: the stack height it recorded, or -1 if there is none. */
static int pk_marker(pk_dec_t *d, size_t *at)
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
static int pk_memo_put(pk_dec_t *d, uint64_t key)
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

static int pk_memo_get(pk_dec_t *d, uint64_t key)
{
    if (key >= d->memo_cap || d->memo[key] == NULL)
        return pk_fail(d, CODEC_EFORMAT, "pickle: memo value not found at index %llu (offset %zu)",
                       (unsigned long long)key, d->op_at);
    return pk_push(d, d->memo[key]);
}

/* The decimal key of PUT / GET (protocol 0): digits only. */
static int pk_line_key(pk_dec_t *d, uint64_t *key)
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

static pk_obj_t *pk_new_int(pk_dec_t *d, int64_t v)
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
static int pk_load_decimal(pk_dec_t *d, int is_long)
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
    char *out = pk_blob(d, nc * 9 + 1);
    if (out == NULL)
        return NULL;
    int k = snprintf(out, 10, "%u", chunk[nc - 1]);
    for (size_t i = nc - 1; i-- > 0;)
        k += snprintf(out + k, 10, "%09u", chunk[i]);
    *nd = (size_t)k;
    return out;
}

/* LONG1 / LONG4: little-endian two's complement. */
static int pk_load_binlong(pk_dec_t *d, const unsigned char *b, size_t len)
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

static int pk_push_float(pk_dec_t *d, double v)
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
static int pk_load_float_line(pk_dec_t *d)
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
static int pk_load_utf8(pk_dec_t *d, const unsigned char *s, size_t n)
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

static int pk_hex(unsigned c)
{
    if (c >= '0' && c <= '9')
        return (int)(c - '0');
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return (int)(c - 'a' + 10);
    return -1;
}

/*
 * UNICODE (protocol 0): the line in raw-unicode-escape, as CPython 3.11 decodes it: each byte is the code
 * point of its value, except "\uXXXX" and "\UXXXXXXXX" (exactly 4 / 8 hex digits, at most U+10FFFF); a
 * backslash before anything else is kept together with that character (so "\\u0041" stays as it is), and
 * a backslash at the end is kept. Converted to UTF-8 (at most 2 bytes per input byte).
 */
static int pk_load_unicode_line(pk_dec_t *d)
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
            int h = i < len ? pk_hex(s[i]) : -1;
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
static int pk_load_ascii(pk_dec_t *d, const unsigned char *s, size_t n)
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
static int pk_load_string_line(pk_dec_t *d)
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
                int h1 = i + 1 < len ? pk_hex(s[i]) : -1;
                int h2 = i + 1 < len ? pk_hex(s[i + 1]) : -1;
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

static int pk_push_bytes(pk_dec_t *d, int type, const unsigned char *s, size_t n)
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
static int pk_step(pk_dec_t *d, pk_obj_t **result)
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
    char *out = pk_blob(d, nc * 9 + 1);
    if (out == NULL)
        return NULL;
    int k = snprintf(out, 10, "%u", chunk[nc - 1]);
    for (size_t i = nc - 1; i-- > 0;)
        k += snprintf(out + k, 10, "%09u", chunk[i]);
    *nd = (size_t)k;
    return out;
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
static int pk_dict_merge(pk_dec_t *d, pk_obj_t *dict)
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

static int pk_out_check(pk_dec_t *d, const buf_t *out, size_t more)
{
    if (out->len > d->max_out || more > d->max_out - out->len)
        return pk_fail(d, CODEC_ETOOBIG, "pickle: decoded value is larger than the largest decoded value (%zu)",
                       d->max_out);
    return 0;
}

static int pk_render(pk_dec_t *d, pk_obj_t *o, buf_t *out, int depth);

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
static int pk_render(pk_dec_t *d, pk_obj_t *o, buf_t *out, int depth)
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
