/*
 * cmd/keyspace: commands on keys whatever their value — deletion, existence, expiry, iteration,
 * renaming, and the database-wide DBSIZE / FLUSHDB / FLUSHALL.
 */
#include "cmd/cmd.h"
#include "cmd/session.h"

#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/clock.h"

/* Replies with the integer the backend computed (or its error). */
void cmd_int_done_cb(void *ctx, const backend_result_t *res)
{
    req_t *r = ctx;
    if (res->status == BE_ERR)
        reply_error(req_out(r), res->err);
    else
        reply_int(req_out(r), res->integer);
    req_done(r);
}

static void ok_done_cb(void *ctx, const backend_result_t *res)
{
    req_t *r = ctx;
    if (res->status == BE_ERR)
        reply_error(req_out(r), res->err);
    else
        REPLY_OK(req_out(r));
    req_done(r);
}

static int keys_generic(req_t *r, backend_opcode_t code, int argc, bytes_t *argv)
{
    backend_op_t op = { .code = code, .keys = argv + 1, .nkeys = (size_t)argc - 1 };
    return cmd_submit(r, &op, cmd_int_done_cb);
}

/* DEL key [key ...], UNLINK key [key ...] */
int cmd_del(req_t *r, int argc, bytes_t *argv)
{
    return keys_generic(r, BE_DEL, argc, argv);
}

/* EXISTS key [key ...] */
int cmd_exists(req_t *r, int argc, bytes_t *argv)
{
    return keys_generic(r, BE_EXISTS, argc, argv);
}

/* TOUCH key [key ...] */
int cmd_touch(req_t *r, int argc, bytes_t *argv)
{
    return keys_generic(r, BE_TOUCH, argc, argv);
}

static void type_done_cb(void *ctx, const backend_result_t *res)
{
    req_t *r = ctx;
    char name[32];

    if (res->status == BE_ERR) {
        reply_error(req_out(r), res->err);
    } else if (res->type_known) {
        snprintf(name, sizeof(name), "%.*s", (int)res->value.len, res->value.ptr);
        reply_status(req_out(r), name);
    } else {
        reply_status(req_out(r), res->integer ? "string" : "none");
    }
    req_done(r);
}

/* TYPE key */
int cmd_type(req_t *r, int argc, bytes_t *argv)
{
    backend_op_t op = { .code = BE_TYPE, .key = argv[1] };
    return cmd_submit(r, &op, type_done_cb);
}

/* Units of the EXPIRE family. */
enum { EXP_SEC_REL, EXP_MS_REL, EXP_SEC_ABS, EXP_MS_ABS };

/*
 * EXPIRE key seconds [NX | XX | GT | LT] and its three siblings: redis 7's expireGenericCommand. The time
 * becomes an absolute unix ms value; a time already past deletes the key (the backend does that).
 */
static int expire_generic(req_t *r, int argc, bytes_t *argv, int unit, const char *name)
{
    buf_t *out = req_out(r);
    long long when, base = (unit == EXP_SEC_REL || unit == EXP_MS_REL) ? clock_ms() : 0;
    unsigned flags = 0;

    for (int i = 3; i < argc; i++) {
        if (bytes_eq_nocase(argv[i], "nx"))
            flags |= BE_NX;
        else if (bytes_eq_nocase(argv[i], "xx"))
            flags |= BE_XX;
        else if (bytes_eq_nocase(argv[i], "gt"))
            flags |= BE_GT;
        else if (bytes_eq_nocase(argv[i], "lt"))
            flags |= BE_LT;
        else {
            reply_errorf(out, "ERR Unsupported option %.*s", (int)(argv[i].len > 128 ? 128 : argv[i].len),
                         argv[i].ptr);
            return CMD_DONE;
        }
    }
    if ((flags & BE_NX) && (flags & (BE_XX | BE_GT | BE_LT))) {
        reply_error(out, "ERR NX and XX, GT or LT options at the same time are not compatible");
        return CMD_DONE;
    }
    if ((flags & BE_GT) && (flags & BE_LT)) {
        reply_error(out, "ERR GT and LT options at the same time are not compatible");
        return CMD_DONE;
    }
    if (cmd_parse_ll(argv[2], &when) < 0) {
        reply_error(out, ERR_NOT_INT);
        return CMD_DONE;
    }
    if (unit == EXP_SEC_REL || unit == EXP_SEC_ABS) {
        if (when > LLONG_MAX / 1000 || when < LLONG_MIN / 1000) {
            reply_errorf(out, "ERR invalid expire time in '%s' command", name);
            return CMD_DONE;
        }
        when *= 1000;
    }
    if (when > LLONG_MAX - base) {
        reply_errorf(out, "ERR invalid expire time in '%s' command", name);
        return CMD_DONE;
    }
    long long rel = when;       /* EXPIRE / PEXPIRE: an upstream is sent this, relative to its own clock */
    when += base;
    if (when < 0)
        when = 0;       /* in the past all the same: the key is deleted */
    if (base != 0)
        flags |= BE_REL;
    backend_op_t op = { .code = BE_EXPIRE, .key = argv[1], .expire_at = when, .rel_ms = rel, .flags = flags };
    return cmd_submit(r, &op, cmd_int_done_cb);
}

/* EXPIRE key seconds [NX | XX | GT | LT] */
int cmd_expire(req_t *r, int argc, bytes_t *argv)
{
    return expire_generic(r, argc, argv, EXP_SEC_REL, "expire");
}

/* PEXPIRE key milliseconds [NX | XX | GT | LT] */
int cmd_pexpire(req_t *r, int argc, bytes_t *argv)
{
    return expire_generic(r, argc, argv, EXP_MS_REL, "pexpire");
}

/* EXPIREAT key unix-time-seconds [NX | XX | GT | LT] */
int cmd_expireat(req_t *r, int argc, bytes_t *argv)
{
    return expire_generic(r, argc, argv, EXP_SEC_ABS, "expireat");
}

/* PEXPIREAT key unix-time-milliseconds [NX | XX | GT | LT] */
int cmd_pexpireat(req_t *r, int argc, bytes_t *argv)
{
    return expire_generic(r, argc, argv, EXP_MS_ABS, "pexpireat");
}

/* PERSIST key */
int cmd_persist(req_t *r, int argc, bytes_t *argv)
{
    backend_op_t op = { .code = BE_EXPIRE, .key = argv[1], .expire_at = -1 };
    return cmd_submit(r, &op, cmd_int_done_cb);
}

enum { TTL_SEC, TTL_MS, TTL_ABS_SEC, TTL_ABS_MS };

/* The backend gives the absolute expiry, or for TTL and PTTL the ms left (-1 none, -2 no key); each
 * command shows it its way. */
static void ttl_done_cb(void *ctx, const backend_result_t *res)
{
    req_t *r = ctx;
    long long at = res->integer, v;

    if (res->status == BE_ERR) {
        reply_error(req_out(r), res->err);
        req_done(r);
        return;
    }
    if (at < 0) {
        v = at;
    } else {
        /* seconds rounded to the nearest, as (at + 500) / 1000 without its overflow near LLONG_MAX */
        switch (cmd_scratch(r)->variant) {
        case TTL_SEC:                                   /* ms left */
        case TTL_ABS_SEC: v = at / 1000 + (at % 1000 >= 500); break;
        default: v = at; break;
        }
    }
    reply_int(req_out(r), v);
    req_done(r);
}

static int ttl_generic(req_t *r, bytes_t key, int variant)
{
    backend_op_t op = { .code = BE_TTL, .key = key,
                        .flags = (variant == TTL_SEC || variant == TTL_MS) ? BE_REL : 0 };
    cmd_scratch(r)->variant = variant;
    return cmd_submit(r, &op, ttl_done_cb);
}

/* TTL key */
int cmd_ttl(req_t *r, int argc, bytes_t *argv)
{
    return ttl_generic(r, argv[1], TTL_SEC);
}

/* PTTL key */
int cmd_pttl(req_t *r, int argc, bytes_t *argv)
{
    return ttl_generic(r, argv[1], TTL_MS);
}

/* EXPIRETIME key */
int cmd_expiretime(req_t *r, int argc, bytes_t *argv)
{
    return ttl_generic(r, argv[1], TTL_ABS_SEC);
}

/* PEXPIRETIME key */
int cmd_pexpiretime(req_t *r, int argc, bytes_t *argv)
{
    return ttl_generic(r, argv[1], TTL_ABS_MS);
}

static void keys_done_cb(void *ctx, const backend_result_t *res)
{
    req_t *r = ctx;
    buf_t *out = req_out(r);

    if (res->status == BE_ERR) {
        reply_error(out, res->err);
        req_done(r);
        return;
    }
    if (cmd_scratch(r)->variant) {                       /* SCAN: [cursor, keys] */
        char cur[24];
        reply_array(out, 2);
        reply_bulk(out, cur, (size_t)snprintf(cur, sizeof(cur), "%" PRIu64, res->cursor));
    }
    reply_array(out, res->nvalues);
    for (size_t i = 0; i < res->nvalues; i++)
        reply_bulk(out, res->values[i].ptr, res->values[i].len);
    req_done(r);
}

/* KEYS pattern */
int cmd_keys(req_t *r, int argc, bytes_t *argv)
{
    int all = argv[1].len == 1 && argv[1].ptr[0] == '*';
    backend_op_t op = { .code = BE_KEYS, .pattern = all ? (bytes_t){ NULL, 0 } : argv[1] };
    cmd_scratch(r)->variant = 0;
    return cmd_submit(r, &op, keys_done_cb);
}

/*
 * A SCAN cursor as redis 7's parseScanCursorOrReply reads it, with strtoul: optional '+' or '-' then
 * decimal digits, the value taken modulo 2^64 when negative ("-1" is 18446744073709551615); "" is 0; a
 * leading space, no digits after a sign, other text after the digits, or a magnitude over 2^64 - 1 is
 * an invalid cursor. The argument stops at a NUL byte, as redis's C string does. 0, or -1.
 */
static int scan_parse_cursor(bytes_t a, uint64_t *out)
{
    size_t i = 0, n = a.len;
    int neg = 0;
    uint64_t v = 0;

    if (memchr(a.ptr, '\0', n) != NULL)
        n = (size_t)((const char *)memchr(a.ptr, '\0', n) - a.ptr);
    if (n == 0) {
        *out = 0;
        return 0;
    }
    if (isspace((unsigned char)a.ptr[0]))
        return -1;
    if (a.ptr[0] == '+' || a.ptr[0] == '-')
        neg = a.ptr[i++] == '-';
    if (i == n || !isdigit((unsigned char)a.ptr[i]))
        return -1;
    for (; i < n && isdigit((unsigned char)a.ptr[i]); i++) {
        unsigned d = (unsigned)(a.ptr[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (i != n)
        return -1;
    *out = neg ? (uint64_t)0 - v : v;
    return 0;
}

/* SCAN cursor [MATCH pattern] [COUNT count] [TYPE type] */
int cmd_scan(req_t *r, int argc, bytes_t *argv)
{
    backend_op_t op = { .code = BE_SCAN, .count = 10 };
    buf_t *out = req_out(r);

    if (scan_parse_cursor(argv[1], &op.cursor) < 0) {
        reply_error(out, "ERR invalid cursor");
        return CMD_DONE;
    }
    for (int i = 2; i < argc; i += 2) {
        if (i + 1 >= argc) {
            reply_error(out, ERR_SYNTAX);
            return CMD_DONE;
        }
        if (bytes_eq_nocase(argv[i], "count")) {
            long long n;
            if (cmd_parse_ll(argv[i + 1], &n) < 0) {
                reply_error(out, ERR_NOT_INT);
                return CMD_DONE;
            }
            if (n < 1) {
                reply_error(out, ERR_SYNTAX);
                return CMD_DONE;
            }
            op.count = (size_t)n;
        } else if (bytes_eq_nocase(argv[i], "match")) {
            int all = argv[i + 1].len == 1 && argv[i + 1].ptr[0] == '*';
            op.pattern = all ? (bytes_t){ NULL, 0 } : argv[i + 1];
        } else if (bytes_eq_nocase(argv[i], "type")) {
            op.flags |= BE_TYPEFILTER;
            op.type_string = bytes_eq_nocase(argv[i + 1], "string");
            op.type_name = argv[i + 1];
        } else {
            reply_error(out, ERR_SYNTAX);
            return CMD_DONE;
        }
    }
    cmd_scratch(r)->variant = 1;
    return cmd_submit(r, &op, keys_done_cb);
}

static void randomkey_done_cb(void *ctx, const backend_result_t *res)
{
    req_t *r = ctx;
    if (res->status == BE_ERR)
        reply_error(req_out(r), res->err);
    else if (!res->has_value)
        reply_null(req_out(r), cmd_proto(r));
    else
        reply_bulk(req_out(r), res->value.ptr, res->value.len);
    req_done(r);
}

/* RANDOMKEY */
int cmd_randomkey(req_t *r, int argc, bytes_t *argv)
{
    backend_op_t op = { .code = BE_RANDOMKEY };
    return cmd_submit(r, &op, randomkey_done_cb);
}

/* RENAME key newkey */
int cmd_rename(req_t *r, int argc, bytes_t *argv)
{
    backend_op_t op = { .code = BE_RENAME, .key = argv[1], .key2 = argv[2] };
    return cmd_submit(r, &op, ok_done_cb);
}

/* RENAMENX key newkey */
int cmd_renamenx(req_t *r, int argc, bytes_t *argv)
{
    backend_op_t op = { .code = BE_RENAME, .key = argv[1], .key2 = argv[2], .flags = BE_NX };
    return cmd_submit(r, &op, cmd_int_done_cb);
}

/* DBSIZE */
int cmd_dbsize(req_t *r, int argc, bytes_t *argv)
{
    backend_op_t op = { .code = BE_DBSIZE };
    return cmd_submit(r, &op, cmd_int_done_cb);
}

static int flush_generic(req_t *r, int argc, bytes_t *argv, unsigned flags)
{
    /* ASYNC and SYNC are accepted; freeing is immediate either way. */
    if (argc > 2 || (argc == 2 && !bytes_eq_nocase(argv[1], "async") && !bytes_eq_nocase(argv[1], "sync"))) {
        reply_error(req_out(r), ERR_SYNTAX);
        return CMD_DONE;
    }
    backend_op_t op = { .code = BE_FLUSH, .flags = flags };
    return cmd_submit(r, &op, ok_done_cb);
}

/* FLUSHDB [ASYNC | SYNC] */
int cmd_flushdb(req_t *r, int argc, bytes_t *argv)
{
    return flush_generic(r, argc, argv, 0);
}

/* FLUSHALL [ASYNC | SYNC] */
int cmd_flushall(req_t *r, int argc, bytes_t *argv)
{
    return flush_generic(r, argc, argv, BE_ALLDB);
}
