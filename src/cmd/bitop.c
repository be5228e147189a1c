/*
 * cmd/bitop: the commands that read several keys — BITOP and LCS — on decoded values, with redis 7.0's
 * semantics and error texts. Like the bitmap commands (cmd/bits.c) they are cachetoryd's own, since
 * the values are stored through the codec chain. The sources are read with one BE_MGET that the cache
 * layer decodes; LCS checks the keys' types before its options, as redis does, so its option errors
 * are kept until then.
 *
 * BITOP reads its sources and writes its destination. With the memory backend the read, the
 * computation and the write complete within the handler (no thread-pool step in between), so no other
 * command runs between them, as in redis. With an upstream the sources are read with one MGET and the
 * result written with SET (or DEL) afterwards, and the client's following commands wait for the write;
 * the read and the write are not one transaction upstream (that needs a WATCH of several keys in the
 * backend), and BITOP inside MULTI is refused there for that reason.
 */
#include "cmd/cmd.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/session.h"
#include "util/mem.h"

/* ---- several keys: BITOP, LCS ----------------------------------------------------------------------- */

enum { MK_BITOP, MK_LCS };
enum { BITOP_AND, BITOP_OR, BITOP_XOR, BITOP_NOT };

/*
 * A command that reads several keys. It reads them with one MGET; with an upstream, a key MGET found
 * missing may hold another type (MGET answers nil for it), so each is asked its TYPE, one after the
 * other, to give redis's error. Then it computes, and BITOP writes its destination.
 */
typedef struct mkeys {
    req_t *r;
    int kind;                   /* MK_BITOP / MK_LCS */
    int op;                     /* BITOP_* */
    size_t n;                   /* source keys */
    buf_t keys;                 /* the source keys, then BITOP's destination */
    size_t *koff;               /* n + 1 offsets into keys */
    buf_t vals;                 /* the values read */
    size_t *voff;               /* n + 1 offsets into vals */
    unsigned char *present;     /* n: the key held a string */
    unsigned char *wrongtype;   /* n: the key holds another type (upstream: TYPE after the MGET) */
    size_t types_seen;          /* TYPE replies so far (they come in the order they were sent) */
    int pending;                /* replies of the first step still to come */
    buf_t step_err;             /* the first error of that step, kept until the last reply */
    int may_offload;            /* 0 with the memory backend: everything completes in the handler */
    int db;                     /* the client's database when the command ran: every step's */
    int in_handler;             /* the handler has not returned yet */
    int finished;               /* the reply is written (the handler frees the context) */
    /* LCS options */
    int getlen, getidx, withmatchlen;
    long long minmatchlen;
    const char *err;            /* an option error, given after the type check */
    long long result;           /* BITOP's reply */
} mkeys_t;

static bytes_t mk_key(const mkeys_t *m, size_t i)
{
    return (bytes_t){ m->keys.data + m->koff[i], m->koff[i + 1] - m->koff[i] };
}

static bytes_t mk_val(const mkeys_t *m, size_t i)
{
    return (bytes_t){ m->vals.data ? m->vals.data + m->voff[i] : "", m->voff[i + 1] - m->voff[i] };
}

static void mk_free(mkeys_t *m)
{
    buf_deinit(&m->keys);
    buf_deinit(&m->vals);
    mem_free(m->koff);
    mem_free(m->voff);
    mem_free(m->present);
    mem_free(m->wrongtype);
    buf_deinit(&m->step_err);
    mem_free(m);
}

/* The reply is written: complete the req; the context goes now, or when the handler returns. */
static void mk_finish(mkeys_t *m)
{
    req_t *r = m->r;

    m->finished = 1;
    if (!m->in_handler)
        mk_free(m);
    req_done(r);
}

static void mk_fail(mkeys_t *m, const char *err)
{
    reply_error(req_out(m->r), err);
    mk_finish(m);
}

/* The callbacks get the req; the context hangs from it (cmd_scratch(r)->keep holds its address). */
static mkeys_t *mk_of(void *ctx)
{
    mkeys_t *m;
    memcpy(&m, cmd_scratch((req_t *)ctx)->keep.data, sizeof(m));
    return m;
}

static int mk_submit(mkeys_t *m, backend_op_t *op, backend_cb *cb)
{
    return cmd_submit_opts(m->r, op, cb, m->may_offload, m->db);
}

static void mk_compute(mkeys_t *m);

/*
 * The first step: an MGET of the sources and, upstream, a TYPE of each right behind it on the same
 * connection (inside the same transaction in MULTI), since MGET reads a key of another type as missing
 * and Redis answers an error for it. Each reply calls this; the last decides.
 */
static void mk_step_done(mkeys_t *m)
{
    if (--m->pending > 0)
        return;
    if (m->step_err.len > 0) {
        mk_fail(m, m->step_err.data);
        return;
    }
    for (size_t i = 0; i < m->n; i++) {
        if (m->wrongtype[i]) {
            mk_fail(m, m->kind == MK_LCS ? "ERR The specified keys must contain string values" : ERR_WRONGTYPE);
            return;
        }
    }
    mk_compute(m);
}

static void mk_step_error(mkeys_t *m, const char *err)
{
    if (m->step_err.len == 0)
        buf_append(&m->step_err, err, strlen(err) + 1);
}

static void mk_read_cb(void *ctx, const backend_result_t *res)
{
    mkeys_t *m = mk_of(ctx);

    if (res->status == BE_ERR) {
        mk_step_error(m, res->err);
    } else if (res->nvalues != m->n) {
        mk_step_error(m, "ERR the backend answered MGET with another number of values");
    } else {
        buf_reset(&m->vals);
        for (size_t i = 0; i < m->n; i++) {
            m->voff[i] = m->vals.len;
            m->present[i] = res->values[i].ptr != NULL;
            if (m->present[i])
                buf_append(&m->vals, res->values[i].ptr, res->values[i].len);
        }
        m->voff[m->n] = m->vals.len;
    }
    mk_step_done(m);
}

static void mk_type_cb(void *ctx, const backend_result_t *res)
{
    mkeys_t *m = mk_of(ctx);
    size_t i = m->types_seen++;

    if (res->status == BE_ERR)
        mk_step_error(m, res->err);
    else if (i < m->n && res->integer && res->type_known &&
             !(res->value.len == 6 && memcmp(res->value.ptr, "string", 6) == 0))
        m->wrongtype[i] = 1;
    mk_step_done(m);
}

/* BITOP: the result of op over the sources, into out. */
static void bitop_compute(const mkeys_t *m, buf_t *out)
{
    size_t maxlen = 0;

    for (size_t i = 0; i < m->n; i++)
        if (mk_val(m, i).len > maxlen)
            maxlen = mk_val(m, i).len;
    buf_reset(out);
    buf_reserve(out, maxlen);
    out->len = maxlen;
    if (maxlen == 0)
        return;
    unsigned char *d = (unsigned char *)out->data;
    bytes_t first = mk_val(m, 0);
    memset(d, 0, maxlen);
    memcpy(d, first.ptr, first.len);
    if (m->op == BITOP_NOT) {
        for (size_t j = 0; j < maxlen; j++)
            d[j] = (unsigned char)~d[j];
        return;
    }
    for (size_t i = 1; i < m->n; i++) {
        bytes_t v = mk_val(m, i);
        const unsigned char *s = (const unsigned char *)v.ptr;
        size_t j = 0;
        /* missing bytes of a shorter source are zeros */
        switch (m->op) {
        case BITOP_AND:
            for (; j < v.len; j++)
                d[j] &= s[j];
            memset(d + j, 0, maxlen - j);
            break;
        case BITOP_OR:
            for (; j < v.len; j++)
                d[j] |= s[j];
            break;
        case BITOP_XOR:
            for (; j < v.len; j++)
                d[j] ^= s[j];
            break;
        }
    }
}

static void bitop_write_cb(void *ctx, const backend_result_t *res)
{
    mkeys_t *m = mk_of(ctx);

    if (res->status == BE_ERR) {
        mk_fail(m, res->err);
        return;
    }
    reply_int(req_out(m->r), m->result);
    mk_finish(m);
}

static void bitop_store(mkeys_t *m)
{
    buf_t result;

    buf_init(&result);
    bitop_compute(m, &result);
    m->result = (long long)result.len;
    bytes_t dest = mk_key(m, m->n);
    if (result.len == 0) {
        /* an empty result deletes the destination, as redis does */
        backend_op_t op = { .code = BE_DEL, .keys = &dest, .nkeys = 1 };
        mk_submit(m, &op, bitop_write_cb);
    } else {
        long long rel, at = cmd_default_expiry(dest, &rel);
        backend_op_t op = { .code = BE_SET, .key = dest, .value = { result.data, result.len },
                            .expire_at = at, .rel_ms = rel, .flags = at >= 0 ? BE_REL : 0 };
        mk_submit(m, &op, bitop_write_cb);
    }
    buf_deinit(&result);
}

/* One match LCS IDX reports: the ranges in a and in b. */
typedef struct lcs_range {
    uint32_t a0, a1, b0, b1;
} lcs_range_t;

/*
 * LCS by the textbook table of prefix LCS lengths, walked back from the end to collect the common
 * sequence and its contiguous matches, as redis's lcsCommand reports them (last match first).
 */
static void lcs_compute(mkeys_t *m)
{
    req_t *r = m->r;
    buf_t *out = req_out(r);
    bytes_t a = mk_val(m, 0), b = mk_val(m, 1);

    if (m->err != NULL) {
        mk_fail(m, m->err);
        return;
    }
    if (a.len >= UINT32_MAX - 1 || b.len >= UINT32_MAX - 1) {
        mk_fail(m, "ERR String too long for LCS");
        return;
    }
    uint32_t alen = (uint32_t)a.len, blen = (uint32_t)b.len;
    unsigned long long cells = (unsigned long long)(alen + 1ULL) * (blen + 1ULL);
    if (cells * sizeof(uint32_t) > (unsigned long long)cmd_ctx.cfg->proto_max_bulk_len) {
        mk_fail(m, "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len");
        return;
    }
    /* plain malloc: a failure is the client's error, as in redis, not the process's end */
    uint32_t *t = malloc((size_t)cells * sizeof(uint32_t));
    if (t == NULL) {
        mk_fail(m, "ERR Insufficient memory, failed allocating transient memory for LCS");
        return;
    }
#define LCS_AT(i, j) t[(size_t)(i) * (blen + 1) + (j)]
    for (uint32_t i = 0; i <= alen; i++) {
        for (uint32_t j = 0; j <= blen; j++) {
            if (i == 0 || j == 0)
                LCS_AT(i, j) = 0;
            else if (a.ptr[i - 1] == b.ptr[j - 1])
                LCS_AT(i, j) = LCS_AT(i - 1, j - 1) + 1;
            else
                LCS_AT(i, j) = LCS_AT(i - 1, j) > LCS_AT(i, j - 1) ? LCS_AT(i - 1, j) : LCS_AT(i, j - 1);
        }
    }
    uint32_t total = LCS_AT(alen, blen), idx = total;
    int walk = m->getidx || !m->getlen;
    char *seq = walk ? mem_alloc(total ? total : 1) : NULL;
    lcs_range_t *ranges = NULL;
    size_t nranges = 0, cap = 0;
    uint32_t i = alen, j = blen;
    uint32_t as = alen, ae = 0, bs = 0, be = 0;     /* as == alen: no range open */

    while (walk && i > 0 && j > 0) {
        int emit = 0;
        if (a.ptr[i - 1] == b.ptr[j - 1]) {
            seq[idx - 1] = a.ptr[i - 1];
            if (as == alen) {
                as = ae = i - 1;
                bs = be = j - 1;
            } else if (as == i && bs == j) {
                as--;
                bs--;
            } else {
                emit = 1;
            }
            if (as == 0 || bs == 0)
                emit = 1;
            idx--;
            i--;
            j--;
        } else {
            if (LCS_AT(i - 1, j) > LCS_AT(i, j - 1))
                i--;
            else
                j--;
            if (as != alen)
                emit = 1;
        }
        if (emit) {
            uint32_t len = ae - as + 1;
            if (m->getidx && (m->minmatchlen == 0 || len >= m->minmatchlen)) {
                if (nranges == cap) {
                    cap = cap ? cap * 2 : 16;
                    ranges = mem_realloc(ranges, cap * sizeof(*ranges));
                }
                ranges[nranges++] = (lcs_range_t){ as, ae, bs, be };
            }
            as = alen;
        }
    }
#undef LCS_AT
    free(t);
    if (m->getidx) {
        reply_map(out, cmd_proto(r), 2);
        reply_bulk_str(out, "matches");
        reply_array(out, nranges);
        for (size_t k = 0; k < nranges; k++) {
            reply_array(out, m->withmatchlen ? 3 : 2);
            reply_array(out, 2);
            reply_int(out, ranges[k].a0);
            reply_int(out, ranges[k].a1);
            reply_array(out, 2);
            reply_int(out, ranges[k].b0);
            reply_int(out, ranges[k].b1);
            if (m->withmatchlen)
                reply_int(out, (long long)ranges[k].a1 - ranges[k].a0 + 1);
        }
        reply_bulk_str(out, "len");
        reply_int(out, total);
    } else if (m->getlen) {
        reply_int(out, total);
    } else {
        reply_bulk(out, seq, total);
    }
    mem_free(seq);
    mem_free(ranges);
    mk_finish(m);
}

static void mk_compute(mkeys_t *m)
{
    if (m->kind == MK_LCS)
        lcs_compute(m);
    else
        bitop_store(m);
}

/* A context for n source keys at argv[first..], and dest (BITOP) after them. */
static mkeys_t *mk_create(req_t *r, int kind, bytes_t *src, size_t n, const bytes_t *dest)
{
    mkeys_t *m = mem_calloc(1, sizeof(*m));

    m->r = r;
    m->kind = kind;
    m->db = cmd_session(r->c)->db;
    buf_reset(&cmd_scratch(r)->keep);
    buf_append(&cmd_scratch(r)->keep, &m, sizeof(m));
    m->n = n;
    buf_init(&m->keys);
    buf_init(&m->vals);
    m->koff = mem_alloc((n + 2) * sizeof(*m->koff));
    m->voff = mem_calloc(n + 1, sizeof(*m->voff));
    m->present = mem_calloc(n ? n : 1, 1);
    m->wrongtype = mem_calloc(n ? n : 1, 1);
    buf_init(&m->step_err);
    for (size_t i = 0; i < n; i++) {
        m->koff[i] = m->keys.len;
        buf_append(&m->keys, src[i].ptr, src[i].len);
    }
    m->koff[n] = m->keys.len;
    if (dest != NULL)
        buf_append(&m->keys, dest->ptr, dest->len);
    m->koff[n + 1] = m->keys.len;
    if (m->keys.data == NULL)
        buf_reserve(&m->keys, 1);
    /* memory backend: read, compute and write in this one call, with nothing in between */
    m->may_offload = backend_forwards(cmd_ctx.backend);
    return m;
}

/*
 * Start m: MGET the sources. When it completes within this call (memory backend), the context is freed
 * here; otherwise the last callback frees it. hold: the client's next commands wait for the reply
 * (BITOP upstream, so that they see its write).
 */
static int mk_start(mkeys_t *m, bytes_t *src, int hold)
{
    req_t *r = m->r;
    backend_op_t op = { .code = BE_MGET, .keys = src, .nkeys = m->n };
    int types = backend_forwards(cmd_ctx.backend);

    m->in_handler = 1;
    m->pending = 1 + (types ? (int)m->n : 0);
    mk_submit(m, &op, mk_read_cb);
    for (size_t i = 0; types && i < m->n; i++) {
        backend_op_t t = { .code = BE_TYPE, .key = src[i] };
        mk_submit(m, &t, mk_type_cb);
    }
    m->in_handler = 0;
    if (m->finished) {
        mk_free(m);
        return CMD_PENDING;
    }
    if (hold) {
        req_hold(r);
    }
    return CMD_PENDING;
}

/* BITOP AND | OR | XOR | NOT destkey key [key ...] */
int cmd_bitop(req_t *r, int argc, bytes_t *argv)
{
    int op;

    if (bytes_eq_nocase(argv[1], "and"))
        op = BITOP_AND;
    else if (bytes_eq_nocase(argv[1], "or"))
        op = BITOP_OR;
    else if (bytes_eq_nocase(argv[1], "xor"))
        op = BITOP_XOR;
    else if (bytes_eq_nocase(argv[1], "not"))
        op = BITOP_NOT;
    else {
        reply_error(req_out(r), ERR_SYNTAX);
        return CMD_DONE;
    }
    if (op == BITOP_NOT && argc != 4) {
        reply_error(req_out(r), "ERR BITOP NOT must be called with a single source key.");
        return CMD_DONE;
    }
    if (backend_forwards(cmd_ctx.backend) && (cmd_session(r->c)->flags & SESSION_IN_EXEC)) {
        /* the write would land after the transaction's other commands */
        reply_error(req_out(r), "ERR BITOP inside MULTI is not supported by cachetoryd with a redis:// backend: "
                                "its result could not be written inside the transaction; run it outside MULTI");
        return CMD_DONE;
    }
    mkeys_t *m = mk_create(r, MK_BITOP, argv + 3, (size_t)argc - 3, &argv[2]);
    m->op = op;
    return mk_start(m, argv + 3, backend_forwards(cmd_ctx.backend));
}

/* LCS key1 key2 [LEN] [IDX] [MINMATCHLEN min-match-len] [WITHMATCHLEN] */
int cmd_lcs(req_t *r, int argc, bytes_t *argv)
{
    mkeys_t *m = mk_create(r, MK_LCS, argv + 1, 2, NULL);

    for (int j = 3; j < argc && m->err == NULL; j++) {
        if (bytes_eq_nocase(argv[j], "idx")) {
            m->getidx = 1;
        } else if (bytes_eq_nocase(argv[j], "len")) {
            m->getlen = 1;
        } else if (bytes_eq_nocase(argv[j], "withmatchlen")) {
            m->withmatchlen = 1;
        } else if (bytes_eq_nocase(argv[j], "minmatchlen") && j + 1 < argc) {
            if (cmd_parse_ll(argv[j + 1], &m->minmatchlen) < 0)
                m->err = ERR_NOT_INT;
            else if (m->minmatchlen < 0)
                m->minmatchlen = 0;
            j++;
        } else {
            m->err = ERR_SYNTAX;
        }
    }
    if (m->err == NULL && m->getlen && m->getidx)
        m->err = "ERR If you want both the length and indexes, please just use IDX.";
    return mk_start(m, argv + 1, 0);
}
