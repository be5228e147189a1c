/*
 * pickle_int: the pickle codec's insides, shared by its files and private to them (everyone else sees
 * codec_pickle in codec.h). pickle.c has the contract of the format and of the safe unpickler (read it
 * first), the encoder and the entry points; pickle_load.c the decoder's memory, input, stack, memo and
 * scalar opcodes; pickle_vm.c containers, the two callables and the opcode loop; pickle_render.c the
 * JSON rendering of the result.
 *
 * A decode's whole state is one pk_dec_t on the caller's stack: objects, blobs and arrays are counted
 * against d->budget and freed together by pk_dec_deinit. Errors: a function returning int gives 0 (or a
 * documented count) and -1 on failure, one returning a pointer NULL; either way the first failure is
 * recorded by pk_fail in d->rc (CODEC_EFORMAT or CODEC_ETOOBIG) and d->err, and later ones are ignored.
 */
#ifndef CACHETORYD_CODEC_PICKLE_INT_H
#define CACHETORYD_CODEC_PICKLE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "codec/codec.h"
#include "util/buf.h"

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

#define PK_HIGHEST_PROTOCOL 5          /* pickle.HIGHEST_PROTOCOL of CPython 3.11 */

/* Opcode names and Python's type names (enum pk_type), for error messages. */
extern const char *const pk_opnames[256];
extern const char *const pk_typenames[];

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
static inline size_t pk_seq_cap(size_t n)
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

/* Up to 24 bytes of the input for a message: printable ASCII, anything else as '?' (the message goes to a
 * client as a RESP error line, which must not hold control characters). */
typedef struct pk_quote {
    char s[28];
} pk_quote_t;

/* ---- pickle_load.c: memory, input, stack, memo, scalars ---- */
__attribute__((format(printf, 3, 4))) int pk_fail(pk_dec_t *d, int rc, const char *fmt, ...);
const char *pk_opname(int op);
pk_quote_t pk_quote(const unsigned char *p, size_t n);
int pk_charge(pk_dec_t *d, size_t size);
char *pk_blob(pk_dec_t *d, size_t size);
const char *pk_chunks_decimal(pk_dec_t *d, const uint32_t *chunk, size_t nc, size_t *nd);
int pk_reserve(pk_dec_t *d, void **arr, size_t *cap, size_t need, size_t elsize);
pk_obj_t *pk_new(pk_dec_t *d, int type);
void pk_dec_deinit(pk_dec_t *d);
const unsigned char *pk_take(pk_dec_t *d, uint64_t k);
uint64_t pk_get_le(const unsigned char *p, int nbytes);
const unsigned char *pk_take_counted(pk_dec_t *d, int nbytes, size_t *len);
const unsigned char *pk_take_line(pk_dec_t *d, size_t *len);
int pk_push(pk_dec_t *d, pk_obj_t *o);
int pk_underflow(pk_dec_t *d);
pk_obj_t *pk_pop(pk_dec_t *d);
pk_obj_t *pk_top(pk_dec_t *d);
int pk_marker(pk_dec_t *d, size_t *at);
int pk_memo_put(pk_dec_t *d, uint64_t key);
int pk_memo_get(pk_dec_t *d, uint64_t key);
int pk_line_key(pk_dec_t *d, uint64_t *key);
pk_obj_t *pk_new_int(pk_dec_t *d, int64_t v);
int pk_load_decimal(pk_dec_t *d, int is_long);
int pk_load_binlong(pk_dec_t *d, const unsigned char *b, size_t len);
int pk_push_float(pk_dec_t *d, double v);
int pk_load_float_line(pk_dec_t *d);
int pk_load_utf8(pk_dec_t *d, const unsigned char *s, size_t n);
int pk_load_unicode_line(pk_dec_t *d);
int pk_load_ascii(pk_dec_t *d, const unsigned char *s, size_t n);
int pk_load_string_line(pk_dec_t *d);
int pk_push_bytes(pk_dec_t *d, int type, const unsigned char *s, size_t n);

/* ---- pickle_vm.c: one opcode; 0 to go on, 1 at STOP with *result set, -1 on an error ---- */
int pk_step(pk_dec_t *d, pk_obj_t **result);

/* ---- pickle_render.c: a dict's equal keys merged as Python does; out within max_decoded; o's JSON text
 * appended to out (the container levels in it, or -1) ---- */
int pk_dict_merge(pk_dec_t *d, pk_obj_t *dict);
int pk_out_check(pk_dec_t *d, const buf_t *out, size_t more);
int pk_render(pk_dec_t *d, pk_obj_t *o, buf_t *out, int depth);

#endif
