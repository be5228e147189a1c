/*
 * cmd/bits: the bitmap commands on one key — GETBIT, SETBIT, BITCOUNT, BITPOS, BITFIELD, BITFIELD_RO —
 * on decoded values, with redis 7.0's semantics and error texts. (BITOP and LCS, which read several
 * keys, are in cmd/bitop.c.)
 *
 * They are cachetoryd's own because the values are stored through the codec chain: forwarded as they
 * are, they would read and change encoded bytes (README, "Passthrough"). Reads are a BE_GET that the
 * cache layer decodes; writes are a BE_UPDATE, which decodes, modifies and re-encodes atomically in the
 * backend (memory: in one step; upstream: WATCH / GET / MULTI / SET KEEPTTL / EXEC, or the command
 * itself when values are not encoded and the reply is a number).
 *
 * redis checks some arguments only after it has looked the key up (BITCOUNT and BITPOS answer a missing
 * key before they parse their range). The handlers parse everything before the read, as the arguments
 * do not outlive the handler, and keep the error to give in the order redis gives it.
 */
#include "cmd/cmd.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/session.h"
#include "util/mem.h"

#define ERR_BIT_OFFSET  "ERR bit offset is not an integer or out of range"
#define ERR_BIT_VALUE   "ERR bit is not an integer or out of range"
#define ERR_BF_TYPE     "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is."

/* ---- helpers --------------------------------------------------------------------------------------- */

static bytes_t value_of(const backend_result_t *res)
{
    return res->has_value ? res->value : (bytes_t){ "", 0 };
}

/*
 * A bit offset, as redis's getBitOffsetFromArgument: an integer (with hash, "#n" means n * bits), not
 * negative, and addressing a byte below proto-max-bulk-len (2^32 bits with the default 512mb).
 */
static int bit_offset_parse(bytes_t a, int hash, int bits, uint64_t *out)
{
    long long v;
    int usehash = hash && bits > 0 && a.len > 0 && a.ptr[0] == '#';

    if (cmd_parse_ll((bytes_t){ a.ptr + usehash, a.len - (size_t)usehash }, &v) < 0)
        return -1;
    if (usehash) {
        if (v > LLONG_MAX / bits || v < LLONG_MIN / bits)
            return -1;
        v *= bits;
    }
    if (v < 0 || (v >> 3) >= cmd_ctx.cfg->proto_max_bulk_len)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

static int bit_get(const unsigned char *p, size_t len, uint64_t bit)
{
    uint64_t byte = bit >> 3;
    return byte < len ? (p[byte] >> (7 - (bit & 7))) & 1 : 0;
}

static void bit_put(unsigned char *p, uint64_t bit, int on)
{
    unsigned char mask = (unsigned char)(1u << (7 - (bit & 7)));
    if (on)
        p[bit >> 3] |= mask;
    else
        p[bit >> 3] &= (unsigned char)~mask;
}

/* Copy old into nv, zero-padded to at least len bytes. Returns 1 if it grew (or old was absent). */
static int value_grow(const bytes_t *old, buf_t *nv, size_t len)
{
    size_t oldlen = old ? old->len : 0, n = oldlen > len ? oldlen : len;

    buf_reserve(nv, n);
    if (oldlen)
        memcpy(nv->data, old->ptr, oldlen);
    if (n > oldlen)
        memset(nv->data + oldlen, 0, n - oldlen);
    nv->len = n;
    return old == NULL || n > oldlen;
}

/*
 * The arguments a handler parsed, kept in cmd_scratch(r)->keep until its callback: the numbers, and an error redis
 * would give only after looking the key up (err), or the early answer it would give then (early).
 */
typedef struct bits_args {
    long long start, end;
    int ranged;                 /* a start (and end) was given */
    int end_given;
    int isbit;                  /* BIT unit */
    int bit;                    /* BITPOS: the bit looked for */
    int zero_early;             /* BITCOUNT: negative start > end: 0 */
    const char *err;
} bits_args_t;

static bits_args_t *args_new(req_t *r)
{
    bits_args_t a = { 0 };
    buf_reset(&cmd_scratch(r)->keep);
    buf_append(&cmd_scratch(r)->keep, &a, sizeof(a));
    return (bits_args_t *)cmd_scratch(r)->keep.data;
}

static bits_args_t *args_of(req_t *r)
{
    return (bits_args_t *)cmd_scratch(r)->keep.data;
}

static int submit_get(req_t *r, bytes_t key, backend_cb *cb)
{
    backend_op_t op = { .code = BE_GET, .key = key, .expire_at = -1 };
    return cmd_submit(r, &op, cb);
}

/* Turn a [start, end] range over len units into one within it, as BITCOUNT / BITPOS / GETRANGE do. */
static void range_clamp(long long *start, long long *end, long long len)
{
    if (*start < 0)
        *start = len + *start;
    if (*end < 0)
        *end = len + *end;
    if (*start < 0)
        *start = 0;
    if (*end < 0)
        *end = 0;
    if (*end >= len)
        *end = len - 1;
}

/* Parse "BIT" / "BYTE". 0, or -1. */
static int unit_parse(bytes_t a, int *isbit)
{
    if (bytes_eq_nocase(a, "bit"))
        *isbit = 1;
    else if (bytes_eq_nocase(a, "byte"))
        *isbit = 0;
    else
        return -1;
    return 0;
}

/* ---- GETBIT, SETBIT --------------------------------------------------------------------------------- */

static void getbit_done_cb(void *ctx, const backend_result_t *res)
{
    req_t *r = ctx;
    bytes_t v = value_of(res);

    if (res->status == BE_ERR)
        reply_error(req_out(r), res->err);
    else
        reply_int(req_out(r), bit_get((const unsigned char *)v.ptr, v.len, (uint64_t)cmd_scratch(r)->aux));
    req_done(r);
}

/* GETBIT key offset */
int cmd_getbit(req_t *r, int argc, bytes_t *argv)
{
    uint64_t off;

    if (bit_offset_parse(argv[2], 0, 0, &off) < 0) {
        reply_error(req_out(r), ERR_BIT_OFFSET);
        return CMD_DONE;
    }
    cmd_scratch(r)->aux = (long long)off;
    return submit_get(r, argv[1], getbit_done_cb);
}

/* SETBIT's offset in cmd_scratch(r)->aux, the bit in cmd_scratch(r)->aux2. */
static int setbit_fn(void *arg, const bytes_t *old, buf_t *nv, backend_result_t *res)
{
    req_t *r = arg;
    uint64_t off = (uint64_t)cmd_scratch(r)->aux;
    size_t need = (size_t)(off >> 3) + 1;
    int prev = old ? bit_get((const unsigned char *)old->ptr, old->len, off) : 0;

    res->integer = prev;
    if (old != NULL && old->len >= need && prev == (int)cmd_scratch(r)->aux2)
        return 1;                       /* nothing changes */
    value_grow(old, nv, need);
    bit_put((unsigned char *)nv->data, off, (int)cmd_scratch(r)->aux2);
    return 0;
}

/* SETBIT key offset value */
int cmd_setbit(req_t *r, int argc, bytes_t *argv)
{
    uint64_t off;
    long long on;

    if (bit_offset_parse(argv[2], 0, 0, &off) < 0) {
        reply_error(req_out(r), ERR_BIT_OFFSET);
        return CMD_DONE;
    }
    if (cmd_parse_ll(argv[3], &on) < 0 || (on & ~1LL) != 0) {
        reply_error(req_out(r), ERR_BIT_VALUE);
        return CMD_DONE;
    }
    cmd_scratch(r)->aux = (long long)off;
    cmd_scratch(r)->aux2 = on;
    /* the native form: an upstream with values not encoded runs SETBIT itself (its reply is a number) */
    backend_op_t op = { .code = BE_UPDATE, .key = argv[1], .update = setbit_fn, .update_arg = r, .argc = argc,
                        .argv = argv };
    cmd_update_newttl(&op);
    return cmd_submit(r, &op, cmd_int_done_cb);
}

/* ---- BITCOUNT, BITPOS ------------------------------------------------------------------------------- */

static long long popcount(const unsigned char *p, size_t n)
{
    long long c = 0;
    size_t i = 0;

    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        c += __builtin_popcountll(w);
    }
    for (; i < n; i++)
        c += __builtin_popcount(p[i]);
    return c;
}

static void bitcount_done_cb(void *ctx, const backend_result_t *res)
{
    req_t *r = ctx;
    buf_t *out = req_out(r);
    const bits_args_t *a = args_of(r);
    bytes_t v = value_of(res);
    const unsigned char *p = (const unsigned char *)v.ptr;

    if (res->status == BE_ERR) {
        reply_error(out, res->err);
    } else if (!res->has_value || a->zero_early) {
        reply_int(out, 0);
    } else if (a->err != NULL) {
        reply_error(out, a->err);
    } else if (!a->ranged) {
        reply_int(out, popcount(p, v.len));
    } else {
        long long start = a->start, end = a->end, len = (long long)v.len * (a->isbit ? 8 : 1);
        range_clamp(&start, &end, len);
        if (start > end) {
            reply_int(out, 0);
        } else if (!a->isbit) {
            reply_int(out, popcount(p + start, (size_t)(end - start + 1)));
        } else {
            /* whole bytes between the edges, the edge bytes bit by bit */
            long long n = 0, sb = start >> 3, eb = end >> 3;
            if (sb == eb) {
                for (long long b = start; b <= end; b++)
                    n += bit_get(p, v.len, (uint64_t)b);
            } else {
                for (long long b = start; b < (sb + 1) * 8; b++)
                    n += bit_get(p, v.len, (uint64_t)b);
                n += popcount(p + sb + 1, (size_t)(eb - sb - 1));
                for (long long b = eb * 8; b <= end; b++)
                    n += bit_get(p, v.len, (uint64_t)b);
            }
            reply_int(out, n);
        }
    }
    req_done(r);
}

/* BITCOUNT key [start end [BYTE | BIT]] */
int cmd_bitcount(req_t *r, int argc, bytes_t *argv)
{
    bits_args_t *a = args_new(r);

    if (argc == 4 || argc == 5) {
        a->ranged = 1;
        if (cmd_parse_ll(argv[2], &a->start) < 0 || cmd_parse_ll(argv[3], &a->end) < 0)
            a->err = ERR_NOT_INT;
        else if (a->start < 0 && a->end < 0 && a->start > a->end)
            a->zero_early = 1;
        else if (argc == 5 && unit_parse(argv[4], &a->isbit) < 0)
            a->err = ERR_SYNTAX;
    } else if (argc != 2) {
        a->err = ERR_SYNTAX;
    }
    return submit_get(r, argv[1], bitcount_done_cb);
}

/* The first bit equal to bit in bits [from, to] of p, or -1. */
static long long bit_find(const unsigned char *p, size_t len, int bit, long long from, long long to)
{
    long long b = from;
    unsigned char skip = bit ? 0x00 : 0xff;    /* bytes that cannot hold it */

    while (b <= to && (b & 7) != 0) {
        if (bit_get(p, len, (uint64_t)b) == bit)
            return b;
        b++;
    }
    while (b + 7 <= to && p[b >> 3] == skip)
        b += 8;
    for (; b <= to; b++)
        if (bit_get(p, len, (uint64_t)b) == bit)
            return b;
    return -1;
}

static void bitpos_done_cb(void *ctx, const backend_result_t *res)
{
    req_t *r = ctx;
    buf_t *out = req_out(r);
    const bits_args_t *a = args_of(r);
    bytes_t v = value_of(res);

    if (res->status == BE_ERR) {
        reply_error(out, res->err);
    } else if (!res->has_value) {
        reply_int(out, a->bit ? -1 : 0);        /* an endless run of zeros */
    } else if (a->err != NULL) {
        reply_error(out, a->err);
    } else {
        long long len = (long long)v.len, start = 0, end = len - 1, from, to;
        if (a->ranged) {
            long long units = a->isbit ? len * 8 : len;
            start = a->start;
            end = a->end_given ? a->end : units - 1;
            range_clamp(&start, &end, units);
        }
        if (start > end) {
            reply_int(out, -1);
        } else {
            from = a->isbit ? start : start * 8;
            to = a->isbit ? end : end * 8 + 7;
            long long pos = bit_find((const unsigned char *)v.ptr, v.len, a->bit, from, to);
            /* no clear bit: past the end of the value, unless the client gave the end */
            if (pos < 0 && a->bit == 0 && !a->end_given)
                pos = to + 1;
            reply_int(out, pos);
        }
    }
    req_done(r);
}

/* BITPOS key bit [start [end [BYTE | BIT]]] */
int cmd_bitpos(req_t *r, int argc, bytes_t *argv)
{
    bits_args_t *a = args_new(r);
    long long bit;

    if (cmd_parse_ll(argv[2], &bit) < 0) {
        reply_error(req_out(r), ERR_NOT_INT);
        return CMD_DONE;
    }
    if (bit != 0 && bit != 1) {
        reply_error(req_out(r), "ERR The bit argument must be 1 or 0.");
        return CMD_DONE;
    }
    a->bit = (int)bit;
    if (argc >= 4 && argc <= 6) {
        a->ranged = 1;
        if (cmd_parse_ll(argv[3], &a->start) < 0)
            a->err = ERR_NOT_INT;
        else if (argc == 6 && unit_parse(argv[5], &a->isbit) < 0)
            a->err = ERR_SYNTAX;
        else if (argc >= 5 && cmd_parse_ll(argv[4], &a->end) < 0)
            a->err = ERR_NOT_INT;
        a->end_given = argc >= 5;
    } else if (argc != 3) {
        a->err = ERR_SYNTAX;
    }
    return submit_get(r, argv[1], bitpos_done_cb);
}

/* ---- BITFIELD, BITFIELD_RO -------------------------------------------------------------------------- */

enum { BF_GET, BF_SET, BF_INCRBY };
enum { BF_WRAP, BF_SAT, BF_FAIL };

typedef struct bf_op {
    uint64_t offset;
    int64_t arg;                /* SET's value, INCRBY's increment */
    int opcode, overflow, bits, sign;
    long long reply;            /* filled when run */
    int nil;                    /* OVERFLOW FAIL hit: a nil reply */
} bf_op_t;

typedef struct bf_ops {
    int n;
    int readonly;               /* only GETs */
    uint64_t highest;           /* the last bit a SET / INCRBY writes */
    bf_op_t op[];
} bf_ops_t;

static uint64_t bf_get_unsigned(const unsigned char *p, size_t len, uint64_t off, int bits)
{
    uint64_t v = 0;
    for (int i = 0; i < bits; i++)
        v = (v << 1) | (uint64_t)bit_get(p, len, off + (uint64_t)i);
    return v;
}

static int64_t bf_get_signed(const unsigned char *p, size_t len, uint64_t off, int bits)
{
    uint64_t u = bf_get_unsigned(p, len, off, bits);
    if (bits < 64 && (u & ((uint64_t)1 << (bits - 1))))
        u |= UINT64_MAX << bits;           /* sign-extend */
    return (int64_t)u;
}

static void bf_put(unsigned char *p, uint64_t off, int bits, uint64_t v)
{
    for (int i = 0; i < bits; i++)
        bit_put(p, off + (uint64_t)i, (int)((v >> (bits - 1 - i)) & 1));
}

/*
 * value + incr in an unsigned field of bits (< 64) bits: 0 if it fits (*out the sum), else 1 (above) or
 * -1 (below) with *out what WRAP or SAT make of it.
 */
static int bf_unsigned_add(uint64_t value, int64_t incr, int bits, int overflow, uint64_t *out)
{
    uint64_t max = ((uint64_t)1 << bits) - 1;
    int dir = 0;

    if (value > max || (incr > 0 && (uint64_t)incr > max - value))
        dir = 1;
    else if (incr < 0 && (uint64_t)0 - (uint64_t)incr > value)
        dir = -1;
    if (dir == 0 || overflow == BF_WRAP)
        *out = (value + (uint64_t)incr) & max;
    else
        *out = dir > 0 ? max : 0;
    return dir;
}

/*
 * The same for a signed field of bits (<= 64) bits. The limits are redis's to the letter, including
 * its distances to them taken modulo 2^64: a SET of a value far below the minimum (-5e18 into an i63)
 * wraps the distance to the maximum negative, so redis reports it as an overflow, which SAT turns into
 * the maximum. The sum is taken modulo 2^64 before wrapping.
 */
static int bf_signed_add(int64_t value, int64_t incr, int bits, int overflow, int64_t *out)
{
    int64_t max = bits == 64 ? INT64_MAX : (int64_t)(((uint64_t)1 << (bits - 1)) - 1), min = -max - 1;
    int64_t maxincr = (int64_t)((uint64_t)max - (uint64_t)value);
    int64_t minincr = (int64_t)((uint64_t)min - (uint64_t)value);
    int dir = 0;

    if (value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr))
        dir = 1;
    else if (value < min || (bits != 64 && incr < minincr) || (value < 0 && incr < 0 && incr < minincr))
        dir = -1;
    if (dir == 0 || overflow == BF_WRAP) {
        uint64_t c = (uint64_t)value + (uint64_t)incr;
        if (bits < 64) {
            uint64_t mask = UINT64_MAX << bits;
            c = (c & ((uint64_t)1 << (bits - 1))) ? c | mask : c & ~mask;
        }
        *out = (int64_t)c;
    } else {
        *out = dir > 0 ? max : min;
    }
    return dir;
}

/* Run one SET / INCRBY on the value in nv; 1 if it changed the field. */
static int bf_run_write(bf_op_t *o, unsigned char *p, size_t len)
{
    int dir;

    o->nil = 0;
    if (o->sign) {
        int64_t old = bf_get_signed(p, len, o->offset, o->bits), nv;
        dir = o->opcode == BF_INCRBY ? bf_signed_add(old, o->arg, o->bits, o->overflow, &nv)
                                     : bf_signed_add(o->arg, 0, o->bits, o->overflow, &nv);
        if (dir != 0 && o->overflow == BF_FAIL) {
            o->nil = 1;
            return 0;
        }
        o->reply = o->opcode == BF_INCRBY ? nv : old;
        bf_put(p, o->offset, o->bits, (uint64_t)nv);
        return nv != old;
    }
    uint64_t old = bf_get_unsigned(p, len, o->offset, o->bits), nv;
    dir = o->opcode == BF_INCRBY ? bf_unsigned_add(old, o->arg, o->bits, o->overflow, &nv)
                                 : bf_unsigned_add((uint64_t)o->arg, 0, o->bits, o->overflow, &nv);
    if (dir != 0 && o->overflow == BF_FAIL) {
        o->nil = 1;
        return 0;
    }
    o->reply = (long long)(o->opcode == BF_INCRBY ? nv : old);
    bf_put(p, o->offset, o->bits, nv);
    return nv != old;
}

static void bf_run_get(bf_op_t *o, const unsigned char *p, size_t len)
{
    o->nil = 0;
    o->reply = o->sign ? bf_get_signed(p, len, o->offset, o->bits)
                       : (long long)bf_get_unsigned(p, len, o->offset, o->bits);
}

static void bf_reply(req_t *r, const bf_ops_t *ops)
{
    buf_t *out = req_out(r);
    reply_array(out, (size_t)ops->n);
    for (int i = 0; i < ops->n; i++) {
        if (ops->op[i].nil)
            reply_null(out, cmd_proto(r));
        else
            reply_int(out, ops->op[i].reply);
    }
}

static void bitfield_read_cb(void *ctx, const backend_result_t *res)
{
    req_t *r = ctx;
    bf_ops_t *ops = (bf_ops_t *)cmd_scratch(r)->keep.data;
    bytes_t v = value_of(res);

    if (res->status == BE_ERR) {
        reply_error(req_out(r), res->err);
    } else {
        for (int i = 0; i < ops->n; i++)
            bf_run_get(&ops->op[i], (const unsigned char *)v.ptr, v.len);
        bf_reply(r, ops);
    }
    req_done(r);
}

/* The write form: grow the value to the last bit written, then run the ops in order. */
static int bitfield_fn(void *arg, const bytes_t *old, buf_t *nv, backend_result_t *res)
{
    req_t *r = arg;
    bf_ops_t *ops = (bf_ops_t *)cmd_scratch(r)->keep.data;
    int changed = value_grow(old, nv, (size_t)(ops->highest >> 3) + 1);

    for (int i = 0; i < ops->n; i++) {
        bf_op_t *o = &ops->op[i];
        if (o->opcode == BF_GET)
            bf_run_get(o, (const unsigned char *)nv->data, nv->len);
        else
            changed |= bf_run_write(o, (unsigned char *)nv->data, nv->len);
    }
    return changed ? 0 : 1;
}

static void bitfield_write_cb(void *ctx, const backend_result_t *res)
{
    req_t *r = ctx;
    if (res->status == BE_ERR)
        reply_error(req_out(r), res->err);
    else
        bf_reply(r, (const bf_ops_t *)cmd_scratch(r)->keep.data);
    req_done(r);
}

/* i1..i64, u1..u63; case as redis: 'i' or 'u' only. */
static int bf_type_parse(bytes_t a, int *sign, int *bits)
{
    long long n;

    if (a.len < 2 || (a.ptr[0] != 'i' && a.ptr[0] != 'u'))
        return -1;
    *sign = a.ptr[0] == 'i';
    if (cmd_parse_ll((bytes_t){ a.ptr + 1, a.len - 1 }, &n) < 0 || n < 1 || n > (*sign ? 64 : 63))
        return -1;
    *bits = (int)n;
    return 0;
}

/* Parse the subcommands into cmd_scratch(r)->keep. Returns the ops, or NULL after writing the error. */
static bf_ops_t *bitfield_parse(req_t *r, int argc, bytes_t *argv)
{
    int overflow = BF_WRAP;
    bf_ops_t head = { .n = 0, .readonly = 1, .highest = 0 };

    buf_reset(&cmd_scratch(r)->keep);
    buf_append(&cmd_scratch(r)->keep, &head, sizeof(head));
    for (int j = 2; j < argc; j++) {
        int more = argc - j - 1, opcode;
        bf_op_t o = { 0 };
        if (bytes_eq_nocase(argv[j], "get") && more >= 2) {
            opcode = BF_GET;
        } else if (bytes_eq_nocase(argv[j], "set") && more >= 3) {
            opcode = BF_SET;
        } else if (bytes_eq_nocase(argv[j], "incrby") && more >= 3) {
            opcode = BF_INCRBY;
        } else if (bytes_eq_nocase(argv[j], "overflow") && more >= 1) {
            j++;
            if (bytes_eq_nocase(argv[j], "wrap")) {
                overflow = BF_WRAP;
            } else if (bytes_eq_nocase(argv[j], "sat")) {
                overflow = BF_SAT;
            } else if (bytes_eq_nocase(argv[j], "fail")) {
                overflow = BF_FAIL;
            } else {
                reply_error(req_out(r), "ERR Invalid OVERFLOW type specified");
                return NULL;
            }
            continue;
        } else {
            reply_error(req_out(r), ERR_SYNTAX);
            return NULL;
        }
        if (bf_type_parse(argv[j + 1], &o.sign, &o.bits) < 0) {
            reply_error(req_out(r), ERR_BF_TYPE);
            return NULL;
        }
        if (bit_offset_parse(argv[j + 2], 1, o.bits, &o.offset) < 0) {
            reply_error(req_out(r), ERR_BIT_OFFSET);
            return NULL;
        }
        if (opcode != BF_GET) {
            long long v;
            bf_ops_t *h = (bf_ops_t *)cmd_scratch(r)->keep.data;
            h->readonly = 0;
            if (h->highest < o.offset + (uint64_t)o.bits - 1)
                h->highest = o.offset + (uint64_t)o.bits - 1;
            if (cmd_parse_ll(argv[j + 3], &v) < 0) {
                reply_error(req_out(r), ERR_NOT_INT);
                return NULL;
            }
            o.arg = v;
        }
        o.opcode = opcode;
        o.overflow = overflow;
        buf_append(&cmd_scratch(r)->keep, &o, sizeof(o));
        ((bf_ops_t *)cmd_scratch(r)->keep.data)->n++;
        j += opcode == BF_GET ? 2 : 3;
    }
    return (bf_ops_t *)cmd_scratch(r)->keep.data;
}

static int bitfield_generic(req_t *r, int argc, bytes_t *argv, int ro)
{
    bf_ops_t *ops = bitfield_parse(r, argc, argv);

    if (ops == NULL)
        return CMD_DONE;
    if (ops->readonly)
        return submit_get(r, argv[1], bitfield_read_cb);
    if (ro) {
        reply_error(req_out(r), "ERR BITFIELD_RO only supports the GET subcommand");
        return CMD_DONE;
    }
    /* no native form: the reply is an array, which a BE_UPDATE result cannot carry */
    backend_op_t op = { .code = BE_UPDATE, .key = argv[1], .update = bitfield_fn, .update_arg = r };
    cmd_update_newttl(&op);
    return cmd_submit(r, &op, bitfield_write_cb);
}

/* BITFIELD key [GET type offset | [OVERFLOW WRAP | SAT | FAIL] SET type offset value |
 *     [OVERFLOW WRAP | SAT | FAIL] INCRBY type offset increment ...] */
int cmd_bitfield(req_t *r, int argc, bytes_t *argv)
{
    return bitfield_generic(r, argc, argv, 0);
}

/* BITFIELD_RO key [GET type offset ...] */
int cmd_bitfield_ro(req_t *r, int argc, bytes_t *argv)
{
    return bitfield_generic(r, argc, argv, 1);
}
