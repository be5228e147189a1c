/*
 * cmd/string: the string commands. The SET family shares set_generic, the GET family get_generic, the
 * read-modify-write commands (APPEND, SETRANGE, INCR...) one BE_UPDATE each, so that the backend reads,
 * modifies and writes the key atomically.
 */
#include "cmd/cmd.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>

#include "cache/cache.h"
#include "cmd/session.h"
#include "codec/chain.h"
#include "util/clock.h"
#include "util/mem.h"

/* What set_generic / get_generic are asked to do. */
#define SET_NX      (1u << 0)
#define SET_XX      (1u << 1)
#define SET_GET     (1u << 2)
#define SET_KEEPTTL (1u << 3)
#define SET_EX      (1u << 4)
#define SET_PX      (1u << 5)
#define SET_EXAT    (1u << 6)
#define SET_PXAT    (1u << 7)
#define SET_PERSIST (1u << 8)
#define SET_EXPIRES (SET_EX | SET_PX | SET_EXAT | SET_PXAT)

/* reply variants for the callbacks */
/* How set_done_cb replies: OK or nil; the old value; 1 or 0 by whether it was set; the integer in res. */
enum { REPLY_SET_OK, REPLY_SET_OLD, REPLY_SET_INT, REPLY_INT };

/*
 * Turn an expiry argument into an absolute unix ms time, as redis's getExpireMillisecondsOrReply: the
 * number must be an integer, positive, and stay in range once scaled and offset. *rel is the relative
 * time in ms for EX / PX (an upstream is sent that, not this host's idea of when), -1 for EXAT / PXAT.
 * Returns 0, or -1 after writing the error.
 */
static int expire_parse(buf_t *out, bytes_t arg, unsigned unit, const char *cmdname, long long *at,
                        long long *rel)
{
    long long v;

    if (cmd_parse_ll(arg, &v) < 0) {
        reply_error(out, ERR_NOT_INT);
        return -1;
    }
    if (v <= 0 || ((unit & (SET_EX | SET_EXAT)) && v > LLONG_MAX / 1000)) {
        reply_errorf(out, "ERR invalid expire time in '%s' command", cmdname);
        return -1;
    }
    if (unit & (SET_EX | SET_EXAT))
        v *= 1000;
    *rel = (unit & (SET_EX | SET_PX)) ? v : -1;
    if (unit & (SET_EX | SET_PX)) {
        if (v > LLONG_MAX - clock_ms()) {
            reply_errorf(out, "ERR invalid expire time in '%s' command", cmdname);
            return -1;
        }
        v += clock_ms();
    }
    *at = v;
    return 0;
}

/*
 * Parse SET / GETEX options from argv[from]: redis 7's parseExtendedStringArgumentsOrReply. allowed is
 * the set of options the command takes. Returns 0, -1 after writing a syntax error, or -2 after writing
 * an invalid expiry's error (which GETEX gives only for a key that exists).
 */
static int set_options(buf_t *out, int argc, bytes_t *argv, int from, unsigned allowed, const char *cmdname,
                       unsigned *flags, long long *at, long long *rel)
{
    static const struct { const char *name; unsigned flag; unsigned excludes; } opts[] = {
        {"nx", SET_NX, SET_XX},
        {"xx", SET_XX, SET_NX},
        {"get", SET_GET, 0},
        {"keepttl", SET_KEEPTTL, SET_EXPIRES | SET_PERSIST},
        {"persist", SET_PERSIST, SET_EXPIRES | SET_KEEPTTL},
        {"ex", SET_EX, SET_KEEPTTL | SET_PERSIST | SET_PX | SET_EXAT | SET_PXAT},
        {"px", SET_PX, SET_KEEPTTL | SET_PERSIST | SET_EX | SET_EXAT | SET_PXAT},
        {"exat", SET_EXAT, SET_KEEPTTL | SET_PERSIST | SET_EX | SET_PX | SET_PXAT},
        {"pxat", SET_PXAT, SET_KEEPTTL | SET_PERSIST | SET_EX | SET_PX | SET_EXAT},
    };
    bytes_t expire_arg = { NULL, 0 };

    *flags = 0;
    *at = -1;
    *rel = -1;
    for (int i = from; i < argc; i++) {
        size_t k;
        for (k = 0; k < sizeof(opts) / sizeof(opts[0]); k++)
            if ((opts[k].flag & allowed) && bytes_eq_nocase(argv[i], opts[k].name))
                break;
        if (k == sizeof(opts) / sizeof(opts[0]) || (*flags & opts[k].excludes) ||
            ((opts[k].flag & SET_EXPIRES) && i + 1 >= argc)) {
            reply_error(out, ERR_SYNTAX);
            return -1;
        }
        *flags |= opts[k].flag;
        if (opts[k].flag & SET_EXPIRES)
            expire_arg = argv[++i];
    }
    if ((*flags & SET_EXPIRES) && expire_parse(out, expire_arg, *flags & SET_EXPIRES, cmdname, at, rel) < 0)
        return -2;
    return 0;
}

static void set_done_cb(void *ctx, const backend_result_t *res)
{
    req_t *r = ctx;
    buf_t *out = req_out(r);

    if (res->status == BE_ERR)
        reply_error(out, res->err);
    else if (cmd_scratch(r)->variant == REPLY_SET_OLD)
        res->has_value ? reply_bulk(out, res->value.ptr, res->value.len) : reply_null(out, cmd_proto(r));
    else if (cmd_scratch(r)->variant == REPLY_SET_INT)
        reply_int(out, res->status == BE_OK);
    else if (cmd_scratch(r)->variant == REPLY_INT)
        reply_int(out, res->integer);
    else if (res->status == BE_OK)
        REPLY_OK(out);
    else
        reply_null(out, cmd_proto(r));
    req_done(r);
}

/* A bulk reply's framing at most: "$", 20 digits, CRLF, and the CRLF after the value. */
#define BULK_REPLY_FRAMING 32

/*
 * proto-max-bulk-len bounds what a client can send, client-output-buffer-limit what it can be sent: a
 * value over the second could be written (by SET, or grown by APPEND / SETRANGE) but every client that
 * GETs it would be closed. Such writes are refused, with the options named. (The defaults, 512mb and
 * 1gb, never meet this; a max-decoded-size under proto-max-bulk-len is enforced by the codec chain.)
 */
const char *cmd_value_unreadable(size_t len)
{
    static char err[300];
    long long limit = cmd_ctx.cfg->client_output_buffer_limit;

    if (limit <= 0 || (unsigned long long)len + BULK_REPLY_FRAMING <= (unsigned long long)limit)
        return NULL;
    snprintf(err, sizeof(err), "ERR a value of %zu bytes could never be read back: its reply would exceed "
             "client-output-buffer-limit (%lld bytes) and close the reader; raise client-output-buffer-limit "
             "(0 = no limit) or lower proto-max-bulk-len", len, limit);
    return err;
}

/* default-ttl of key's cache: the expiry of a key written without one, relative (*rel ms) and absolute
 * (returned). Without named caches the default cache's, with no lookup. */
long long cmd_default_expiry(bytes_t key, long long *rel)
{
    int ttl = cache_default_ttl(cmd_ctx.cache, key);
    *rel = ttl > 0 ? (long long)ttl * 1000 : -1;
    return ttl > 0 ? clock_ms() + *rel : -1;
}

/* The BE_REL flag of an op whose expiry the client gave as rel ms from now (rel -1: absolute, or none). */
static unsigned rel_flag(long long rel)
{
    return rel >= 0 ? BE_REL : 0;
}

/* A write without an expiry of its own gets default-ttl. With KEEPTTL that is only for a key it creates
 * (BE_NEWTTL): an existing key keeps its expiry, or its lack of one, as in redis. */
static int set_generic(req_t *r, bytes_t key, bytes_t val, unsigned flags, long long at, long long rel,
                       int variant)
{
    const char *unreadable = cmd_value_unreadable(val.len);
    if (unreadable != NULL) {
        reply_error(req_out(r), unreadable);
        return CMD_DONE;
    }
    if (at < 0)
        at = cmd_default_expiry(key, &rel);
    backend_op_t op = {
        .code = BE_SET,
        .key = key,
        .value = val,
        .expire_at = at,
        .rel_ms = rel,
        .flags = ((flags & SET_NX) ? BE_NX : 0) | ((flags & SET_XX) ? BE_XX : 0) |
                 ((flags & SET_KEEPTTL) ? BE_KEEPTTL : 0) | ((flags & SET_GET) ? BE_GETOLD : 0) |
                 rel_flag(rel) | ((flags & SET_KEEPTTL) && at >= 0 ? BE_NEWTTL : 0),
    };
    cmd_scratch(r)->variant = variant;
    return cmd_submit(r, &op, set_done_cb);
}

/* SET key value [NX | XX] [GET] [EX seconds | PX milliseconds | EXAT unix-time-seconds |
 *     PXAT unix-time-milliseconds | KEEPTTL] */
int cmd_set(req_t *r, int argc, bytes_t *argv)
{
    unsigned flags;
    long long at, rel;

    if (set_options(req_out(r), argc, argv, 3, SET_NX | SET_XX | SET_GET | SET_KEEPTTL | SET_EXPIRES, "set",
                    &flags, &at, &rel) != 0)
        return CMD_DONE;
    return set_generic(r, argv[1], argv[2], flags, at, rel, (flags & SET_GET) ? REPLY_SET_OLD : REPLY_SET_OK);
}

/* SETNX key value */
int cmd_setnx(req_t *r, int argc, bytes_t *argv)
{
    return set_generic(r, argv[1], argv[2], SET_NX, -1, -1, REPLY_SET_INT);
}

static int setex_generic(req_t *r, bytes_t *argv, unsigned unit, const char *name)
{
    long long at, rel;
    if (expire_parse(req_out(r), argv[2], unit, name, &at, &rel) < 0)
        return CMD_DONE;
    return set_generic(r, argv[1], argv[3], 0, at, rel, REPLY_SET_OK);
}

/* SETEX key seconds value */
int cmd_setex(req_t *r, int argc, bytes_t *argv)
{
    return setex_generic(r, argv, SET_EX, "setex");
}

/* PSETEX key milliseconds value */
int cmd_psetex(req_t *r, int argc, bytes_t *argv)
{
    return setex_generic(r, argv, SET_PX, "psetex");
}

/* GETSET key value */
int cmd_getset(req_t *r, int argc, bytes_t *argv)
{
    return set_generic(r, argv[1], argv[2], SET_GET, -1, -1, REPLY_SET_OLD);
}

static void get_done_cb(void *ctx, const backend_result_t *res)
{
    req_t *r = ctx;
    buf_t *out = req_out(r);

    if (res->status == BE_ERR) {
        reply_error(out, res->err);
    } else if (!res->has_value) {
        cmd_ctx.stats.cache_misses++;
        reply_null(out, cmd_proto(r));
    } else {
        cmd_ctx.stats.cache_hits++;
        reply_bulk(out, res->value.ptr, res->value.len);
    }
    req_done(r);
}

static int get_generic(req_t *r, bytes_t key, unsigned flags, long long at, long long rel)
{
    backend_op_t op = { .code = BE_GET, .key = key, .flags = flags | rel_flag(rel),
                        .expire_at = at, .rel_ms = rel };
    return cmd_submit(r, &op, get_done_cb);
}

/* GET key */
int cmd_get(req_t *r, int argc, bytes_t *argv)
{
    return get_generic(r, argv[1], 0, -1, -1);
}

/* GETDEL key */
int cmd_getdel(req_t *r, int argc, bytes_t *argv)
{
    return get_generic(r, argv[1], BE_GETDEL, -1, -1);
}

/* GETEX with an invalid expiry, its key read: nil for no key, the read's error (WRONGTYPE), else the
 * expiry's error (kept in cmd_scratch(r)->keep), in Redis's order. */
static void getex_invalid_cb(void *ctx, const backend_result_t *res)
{
    req_t *r = ctx;
    buf_t *out = req_out(r);

    if (res->status == BE_ERR)
        reply_error(out, res->err);
    else if (!res->has_value)
        reply_null(out, cmd_proto(r));
    else
        buf_append(out, cmd_scratch(r)->keep.data, cmd_scratch(r)->keep.len);
    req_done(r);
}

/* GETEX key [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | PERSIST] */
int cmd_getex(req_t *r, int argc, bytes_t *argv)
{
    unsigned flags;
    long long at, rel;

    buf_reset(&cmd_scratch(r)->keep);
    int rc = set_options(&cmd_scratch(r)->keep, argc, argv, 2, SET_EXPIRES | SET_PERSIST, "getex", &flags, &at, &rel);
    if (rc == -2) {
        backend_op_t op = { .code = BE_GET, .key = argv[1], .expire_at = -1 };
        return cmd_submit_raw(r, &op, getex_invalid_cb);    /* no decoding: only whether it is there */
    }
    if (rc < 0) {
        buf_append(req_out(r), cmd_scratch(r)->keep.data, cmd_scratch(r)->keep.len);
        return CMD_DONE;
    }
    return get_generic(r, argv[1], (flags & (SET_EXPIRES | SET_PERSIST)) ? BE_SETTTL : 0, at, rel);
}

static void mget_done_cb(void *ctx, const backend_result_t *res)
{
    req_t *r = ctx;
    buf_t *out = req_out(r);

    if (res->status == BE_ERR) {
        reply_error(out, res->err);
    } else {
        reply_array(out, res->nvalues);
        for (size_t i = 0; i < res->nvalues; i++) {
            if (res->values[i].ptr == NULL) {
                cmd_ctx.stats.cache_misses++;
                reply_null(out, cmd_proto(r));
            } else {
                cmd_ctx.stats.cache_hits++;
                reply_bulk(out, res->values[i].ptr, res->values[i].len);
            }
        }
    }
    req_done(r);
}

/* MGET key [key ...] */
int cmd_mget(req_t *r, int argc, bytes_t *argv)
{
    backend_op_t op = { .code = BE_MGET, .keys = argv + 1, .nkeys = (size_t)argc - 1 };
    return cmd_submit(r, &op, mget_done_cb);
}

/*
 * MSET and MSETNX: keys and values interleave in argv; the backend wants them apart. The split arrays
 * are on the stack for small commands and on the heap for large ones (freed after submit: the backend
 * copies what it keeps).
 */
static int mset_generic(req_t *r, int argc, bytes_t *argv, int nx)
{
    bytes_t small[64];
    long long ttl_small[32], *ttls = NULL;
    size_t n = (size_t)(argc - 1) / 2;

    if ((argc - 1) % 2 != 0) {
        cmd_reply_arity(req_out(r), nx ? "msetnx" : "mset");
        return CMD_DONE;
    }
    for (size_t i = 0; i < n; i++) {
        const char *unreadable = cmd_value_unreadable(argv[2 + 2 * i].len);
        if (unreadable != NULL) {
            reply_error(req_out(r), unreadable);
            return CMD_DONE;
        }
    }
    bytes_t *kv = n * 2 <= 64 ? small : mem_alloc(n * 2 * sizeof(*kv));
    for (size_t i = 0; i < n; i++) {
        kv[i] = argv[1 + 2 * i];
        kv[n + i] = argv[2 + 2 * i];
    }
    /* each key its cache's default-ttl: one expiry for all when they agree (always, without named caches),
     * else one per key (still one MSET op) */
    long long rel, at = cmd_default_expiry(kv[0], &rel);
    for (size_t i = 1; i < n && ttls == NULL; i++) {
        long long rel_i;
        cmd_default_expiry(kv[i], &rel_i);
        if (rel_i != rel) {
            ttls = n <= 32 ? ttl_small : mem_alloc(n * sizeof(*ttls));
            for (size_t j = 0; j < n; j++)
                cmd_default_expiry(kv[j], &ttls[j]);
        }
    }
    backend_op_t op = { .code = BE_MSET, .keys = kv, .vals = kv + n, .nkeys = n, .ttls_ms = ttls,
                        .flags = (nx ? BE_NX : 0) | rel_flag(rel), .expire_at = at, .rel_ms = rel };
    if (ttls != NULL) {
        op.expire_at = -1;
        op.flags &= ~BE_REL;
    }
    cmd_scratch(r)->variant = nx ? REPLY_INT : REPLY_SET_OK;
    int rc = cmd_submit(r, &op, set_done_cb);
    if (kv != small)
        mem_free(kv);
    if (ttls != ttl_small)
        mem_free(ttls);
    return rc;
}

/* MSET key value [key value ...] */
int cmd_mset(req_t *r, int argc, bytes_t *argv)
{
    return mset_generic(r, argc, argv, 0);
}

/* MSETNX key value [key value ...] */
int cmd_msetnx(req_t *r, int argc, bytes_t *argv)
{
    return mset_generic(r, argc, argv, 1);
}

/*
 * CACHE RAWGET key | CACHE RAWSET key bytes | CACHE HELP: the bytes as the backend holds them, past the
 * codec chain — to look at what a serializer wrote, or to store a value another program encoded.
 */
/* The zstd dictionary with id (a decimal argument) among ds's: 0, or -1. */
static int dict_find(const codec_dicts_t *ds, bytes_t arg, codec_dict_info_t *out)
{
    long long id;

    if (cmd_parse_ll(arg, &id) < 0)
        return -1;
    for (size_t i = 0; codec_zstd_dicts_get(ds, i, out) == 0; i++)
        if ((long long)out->id == id)
            return 0;
    return -1;
}

/* CACHE DICT TRAIN / LOAD answered: the ID new values use now, or why not. */
static void dict_done_cb(void *ctx, const backend_result_t *res)
{
    req_t *r = ctx;
    if (res->status == BE_ERR)
        reply_error(req_out(r), res->err);
    else
        reply_int(req_out(r), res->integer);
    req_done(r);
}

/* CACHE DICT LIST | INFO id | EXPORT id | TRAIN [size] | LOAD id bytes: the zstd dictionaries of the
 * serializer (zstd://?dictionary=): look at them, export one, train one now (dictionary=auto), or add one
 * (stored where trained ones are) that new values then use. */
static int cache_dict(req_t *r, int argc, bytes_t *argv)
{
    buf_t *out = req_out(r);
    codec_dict_info_t d;
    char name[64];
    const char *which = NULL;           /* CACHE <name>: a named cache's, else the default cache's */

    if (argc >= 5 && bytes_eq_nocase(argv[argc - 2], "cache")) {
        bytes_t n = argv[argc - 1];
        if (n.len >= sizeof(name)) {
            reply_error(out, "ERR no such cache (INFO cache lists them)");
            return CMD_DONE;
        }
        memcpy(name, n.ptr, n.len);
        name[n.len] = '\0';
        which = memchr(n.ptr, '\0', n.len) == NULL ? name : "";
        argc -= 2;
    }
    chain_t *ch = cache_chain_named(cmd_ctx.cache, which);
    if (ch == NULL) {
        reply_error(out, "ERR no such cache (INFO cache lists them)");
        return CMD_DONE;
    }
    const codec_dicts_t *ds = chain_dicts(ch);

    if (argc == 3 && bytes_eq_nocase(argv[2], "list")) {
        reply_array(out, codec_zstd_dicts_count(ds));
        for (size_t i = 0; codec_zstd_dicts_get(ds, i, &d) == 0; i++)
            reply_int(out, d.id);
        return CMD_DONE;
    }
    if (argc == 4 && (bytes_eq_nocase(argv[2], "info") || bytes_eq_nocase(argv[2], "export"))) {
        if (dict_find(ds, argv[3], &d) < 0) {
            reply_error(out, "ERR no such dictionary (CACHE DICT LIST lists them)");
            return CMD_DONE;
        }
        if (bytes_eq_nocase(argv[2], "export")) {
            reply_bulk(out, d.bytes, d.size);
            return CMD_DONE;
        }
        reply_map(out, cmd_proto(r), 3);
        reply_bulk_str(out, "id");
        reply_int(out, d.id);
        reply_bulk_str(out, "size");
        reply_int(out, (long long)d.size);
        reply_bulk_str(out, "encodes");
        reply_int(out, d.encodes);
        return CMD_DONE;
    }
    if (argc <= 4 && bytes_eq_nocase(argv[2], "train")) {
        long long size = 0;
        if (argc == 4 && (cmd_parse_ll(argv[3], &size) < 0 || size < 1024 || size > (1 << 20))) {
            reply_error(out, "ERR dictionary size must be an integer between 1024 and 1048576 (bytes)");
            return CMD_DONE;
        }
        cache_dict_command(cmd_ctx.cache, which, 0, (bytes_t){ NULL, 0 }, (size_t)size, dict_done_cb, r);
        return CMD_PENDING;
    }
    if (argc == 5 && bytes_eq_nocase(argv[2], "load")) {
        long long id;
        if (cmd_parse_ll(argv[3], &id) < 0 || id < 1 || id > 0xffffffffLL ||
            codec_zstd_dict_id(argv[4].ptr, argv[4].len) != (unsigned)id) {
            reply_error(out, "ERR CACHE DICT LOAD <id> <bytes>: <bytes> must be a zstd dictionary whose header "
                             "carries the ID <id>");
            return CMD_DONE;
        }
        cache_dict_command(cmd_ctx.cache, which, 1, argv[4], 0, dict_done_cb, r);
        return CMD_PENDING;
    }
    reply_error(out, "ERR syntax error: CACHE DICT LIST | INFO <id> | EXPORT <id> | TRAIN [<size>] | LOAD <id> <bytes>, "
                     "then CACHE <name> for a named cache's");
    return CMD_DONE;
}

int cmd_cache(req_t *r, int argc, bytes_t *argv)
{
    if (bytes_eq_nocase(argv[1], "dict"))
        return cache_dict(r, argc, argv);
    if (bytes_eq_nocase(argv[1], "rawget")) {
        backend_op_t op = { .code = BE_GET, .key = argv[2], .expire_at = -1 };
        return cmd_submit_raw(r, &op, get_done_cb);
    }
    if (bytes_eq_nocase(argv[1], "rawset")) {
        backend_op_t op = { .code = BE_SET, .key = argv[2], .value = argv[3], .expire_at = -1 };
        cmd_scratch(r)->variant = REPLY_SET_OK;
        return cmd_submit_raw(r, &op, set_done_cb);
    }
    static const char *const help[] = {
        "CACHE <subcommand> [<arg> ...]. Subcommands are:",
        "RAWGET <key>", "    Return the bytes stored for <key>, as the serializer wrote them.",
        "RAWSET <key> <bytes>", "    Store <bytes> for <key> as they are, without encoding them.",
        "DICT LIST", "    List the IDs of the serializer's zstd dictionaries (zstd://?dictionary=).",
        "DICT INFO <id>", "    Return a dictionary's ID, size, and whether new values are compressed with it.",
        "DICT EXPORT <id>", "    Return a dictionary's bytes (for zstd -D, or Python's zstandard module).",
        "DICT TRAIN [<size>]", "    Train a dictionary now from the values sampled (dictionary=auto); return its ID.",
        "DICT LOAD <id> <bytes>", "    Add a dictionary (stored as trained ones are); new values use it. Return its ID.",
        "DICT ... CACHE <name>", "    The same for the named cache <name> ([cache.<name>]) instead of the default one.",
    };
    CMD_REPLY_HELP(req_out(r), help);
    return CMD_DONE;
}

/* ---- read-modify-write ---------------------------------------------------------------------------- */

static void update_done_cb(void *ctx, const backend_result_t *res)
{
    req_t *r = ctx;
    buf_t *out = req_out(r);

    if (res->status == BE_ERR)
        reply_error(out, res->err);
    else if (res->has_value)
        reply_bulk(out, res->value.ptr, res->value.len);
    else
        reply_int(out, res->integer);
    req_done(r);
}

/*
 * A read-modify-write op. argv is the command itself: a backend that can run it (an upstream, with
 * values not encoded) sends it as it is; otherwise the backend runs fn atomically. An upstream may call
 * fn after this returns, so the bytes fn reads (the scratch's arg) are copied into the req first. A key
 * the op creates gets default-ttl (BE_NEWTTL); an existing key keeps its expiry.
 */
void cmd_update_newttl(backend_op_t *op)
{
    op->expire_at = cmd_default_expiry(op->key, &op->rel_ms);
    if (op->expire_at >= 0)
        op->flags |= BE_NEWTTL | BE_REL;
}

static int update_generic(req_t *r, int argc, bytes_t *argv, backend_update_fn *fn, void *arg)
{
    backend_op_t op = { .code = BE_UPDATE, .key = argv[1], .update = fn, .update_arg = arg, .argc = argc,
                        .argv = argv };
    cmd_scratch_t *x = cmd_scratch(r);

    cmd_update_newttl(&op);
    if (backend_forwards(cmd_ctx.backend) && x->arg.ptr != NULL) {
        buf_reset(&x->keep);
        buf_append(&x->keep, x->arg.ptr, x->arg.len);
        x->arg.ptr = x->keep.data ? x->keep.data : "";
    }
    return cmd_submit(r, &op, update_done_cb);
}

/*
 * Any other command, with passthrough = yes and an upstream: sent as it is, its reply relayed. The keys
 * it touches go with it when they are known, so that a transaction can tell whether it changes a key a
 * later read-modify-write reads.
 */
int cmd_forward(req_t *r, int argc, bytes_t *argv)
{
    bytes_t keys[16];
    int n = cmd_passthrough_keys(argc, argv, keys, 16);
    backend_op_t op = { .code = BE_COMMAND, .argc = argc, .argv = argv, .keys = n >= 0 ? keys : NULL,
                        .nkeys = n >= 0 ? (size_t)n : 0, .flags = n >= 0 ? BE_KEYSKNOWN : 0 };
    if (!cmd_passthrough_writes(argc, argv))
        op.flags |= BE_READONLY;
    return cmd_submit_raw(r, &op, cmd_relay_done_cb);
}

static long long max_string_len(void)
{
    return cmd_ctx.cfg->proto_max_bulk_len;
}

static int append_fn(void *arg, const bytes_t *old, buf_t *nv, backend_result_t *res)
{
    const bytes_t *add = arg;
    size_t oldlen = old ? old->len : 0;

    if ((long long)(oldlen + add->len) > max_string_len()) {
        res->err = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";
        return -1;
    }
    if ((res->err = cmd_value_unreadable(oldlen + add->len)) != NULL)
        return -1;
    buf_reserve(nv, oldlen + add->len);
    if (old)
        buf_append(nv, old->ptr, old->len);
    buf_append(nv, add->ptr, add->len);
    res->integer = (long long)nv->len;
    return 0;
}

/* APPEND key value */
int cmd_append(req_t *r, int argc, bytes_t *argv)
{
    cmd_scratch(r)->arg = argv[2];
    return update_generic(r, argc, argv, append_fn, &cmd_scratch(r)->arg);
}

/* SETRANGE's arguments travel in the req's scratch: offset in aux, the bytes in arg. */
static int setrange_fn(void *arg, const bytes_t *old, buf_t *nv, backend_result_t *res)
{
    const cmd_scratch_t *a = arg;
    size_t oldlen = old ? old->len : 0;
    long long offset = a->aux;

    if (a->arg.len == 0) {            /* nothing to write: report the length, create nothing */
        res->integer = (long long)oldlen;
        return 1;
    }
    if (offset > max_string_len() - (long long)a->arg.len) {
        res->err = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";
        return -1;
    }
    size_t end = (size_t)offset + a->arg.len;
    size_t len = end > oldlen ? end : oldlen;
    if ((res->err = cmd_value_unreadable(len)) != NULL)
        return -1;
    buf_reserve(nv, len);
    if (old)
        memcpy(nv->data, old->ptr, oldlen);
    if ((size_t)offset > oldlen)
        memset(nv->data + oldlen, 0, (size_t)offset - oldlen);
    memcpy(nv->data + offset, a->arg.ptr, a->arg.len);
    nv->len = len;
    res->integer = (long long)len;
    return 0;
}

/* SETRANGE key offset value */
int cmd_setrange(req_t *r, int argc, bytes_t *argv)
{
    if (cmd_parse_ll(argv[2], &cmd_scratch(r)->aux) < 0) {
        reply_error(req_out(r), ERR_NOT_INT);
        return CMD_DONE;
    }
    if (cmd_scratch(r)->aux < 0) {
        reply_error(req_out(r), "ERR offset is out of range");
        return CMD_DONE;
    }
    cmd_scratch(r)->arg = argv[3];
    return update_generic(r, argc, argv, setrange_fn, cmd_scratch(r));
}

static int incr_fn(void *arg, const bytes_t *old, buf_t *nv, backend_result_t *res)
{
    long long by = *(const long long *)arg, cur = 0;

    if (old != NULL && cmd_parse_ll(*old, &cur) < 0) {
        res->err = ERR_NOT_INT;
        return -1;
    }
    if ((by < 0 && cur < 0 && by < LLONG_MIN - cur) || (by > 0 && cur > 0 && by > LLONG_MAX - cur)) {
        res->err = ERR_OVERFLOW;
        return -1;
    }
    cur += by;
    buf_printf(nv, "%lld", cur);
    res->integer = cur;
    return 0;
}

static int incr_generic(req_t *r, int argc, bytes_t *argv, long long by)
{
    cmd_scratch(r)->aux = by;
    cmd_scratch(r)->arg = (bytes_t){ NULL, 0 };
    return update_generic(r, argc, argv, incr_fn, &cmd_scratch(r)->aux);
}

/* INCR key */
int cmd_incr(req_t *r, int argc, bytes_t *argv)
{
    return incr_generic(r, argc, argv, 1);
}

/* DECR key */
int cmd_decr(req_t *r, int argc, bytes_t *argv)
{
    return incr_generic(r, argc, argv, -1);
}

/* INCRBY key increment */
int cmd_incrby(req_t *r, int argc, bytes_t *argv)
{
    long long by;
    if (cmd_parse_ll(argv[2], &by) < 0) {
        reply_error(req_out(r), ERR_NOT_INT);
        return CMD_DONE;
    }
    return incr_generic(r, argc, argv, by);
}

/* DECRBY key decrement */
int cmd_decrby(req_t *r, int argc, bytes_t *argv)
{
    long long by;
    if (cmd_parse_ll(argv[2], &by) < 0) {
        reply_error(req_out(r), ERR_NOT_INT);
        return CMD_DONE;
    }
    if (by == LLONG_MIN) {
        reply_error(req_out(r), "ERR decrement would overflow");
        return CMD_DONE;
    }
    return incr_generic(r, argc, argv, -by);
}

/* Format as redis's ld2string(LD_STR_HUMAN): %.17Lf, then trailing zeros and a bare point trimmed. */
static int ld_format(char *buf, size_t n, long double v)
{
    int len = snprintf(buf, n, "%.17Lf", v);
    if (len < 0 || (size_t)len >= n)
        return -1;
    if (strchr(buf, '.') != NULL) {
        while (len > 0 && buf[len - 1] == '0')
            len--;
        if (len > 0 && buf[len - 1] == '.')
            len--;
    }
    buf[len] = '\0';
    if (strcmp(buf, "-0") == 0) {
        strcpy(buf, "0");
        len = 1;
    }
    return len;
}

/* arg: the req, with the increment in auxf, or aux 1 if it is not a number (an error only now: Redis
 * checks the key's type and value first). */
static int incrbyfloat_fn(void *arg, const bytes_t *old, buf_t *nv, backend_result_t *res)
{
    req_t *r = arg;
    long double by = cmd_scratch(r)->auxf, cur = 0;
    char tmp[5 * 1024 + 32];

    if ((old != NULL && cmd_parse_ld(*old, &cur) < 0) || cmd_scratch(r)->aux) {
        res->err = ERR_NOT_FLOAT;
        return -1;
    }
    cur += by;
    if (isnan(cur) || isinf(cur)) {
        res->err = "ERR increment would produce NaN or Infinity";
        return -1;
    }
    int len = ld_format(tmp, sizeof(tmp), cur);
    if (len < 0) {
        res->err = ERR_NOT_FLOAT;
        return -1;
    }
    buf_append(nv, tmp, (size_t)len);
    res->value = (bytes_t){ nv->data, nv->len };
    res->has_value = 1;
    return 0;
}

/* INCRBYFLOAT key increment */
int cmd_incrbyfloat(req_t *r, int argc, bytes_t *argv)
{
    cmd_scratch(r)->aux = cmd_parse_ld(argv[2], &cmd_scratch(r)->auxf) < 0;
    cmd_scratch(r)->arg = (bytes_t){ NULL, 0 };
    return update_generic(r, argc, argv, incrbyfloat_fn, r);
}

/* ---- reads of part of a value --------------------------------------------------------------------- */

static void strlen_done_cb(void *ctx, const backend_result_t *res)
{
    req_t *r = ctx;
    if (res->status == BE_ERR)
        reply_error(req_out(r), res->err);
    else
        reply_int(req_out(r), res->has_value ? (long long)res->value.len : 0);
    req_done(r);
}

/* STRLEN key */
int cmd_strlen(req_t *r, int argc, bytes_t *argv)
{
    backend_op_t op = { .code = BE_GET, .key = argv[1], .expire_at = -1 };
    return cmd_submit(r, &op, strlen_done_cb);
}

static void getrange_done_cb(void *ctx, const backend_result_t *res)
{
    req_t *r = ctx;
    buf_t *out = req_out(r);
    long long start = cmd_scratch(r)->aux, end = cmd_scratch(r)->aux2;
    long long len = res->has_value ? (long long)res->value.len : 0;

    if (res->status == BE_ERR) {
        reply_error(out, res->err);
        req_done(r);
        return;
    }
    /* redis 7's getrangeCommand, step by step */
    if (start < 0 && end < 0 && start > end) {
        reply_bulk(out, "", 0);
        req_done(r);
        return;
    }
    if (start < 0)
        start = len + start;
    if (end < 0)
        end = len + end;
    if (start < 0)
        start = 0;
    if (end < 0)
        end = 0;
    if (end >= len)
        end = len - 1;
    if (len == 0 || start > end)
        reply_bulk(out, "", 0);
    else
        reply_bulk(out, res->value.ptr + start, (size_t)(end - start + 1));
    req_done(r);
}

/* GETRANGE key start end */
int cmd_getrange(req_t *r, int argc, bytes_t *argv)
{
    if (cmd_parse_ll(argv[2], &cmd_scratch(r)->aux) < 0 || cmd_parse_ll(argv[3], &cmd_scratch(r)->aux2) < 0) {
        reply_error(req_out(r), ERR_NOT_INT);
        return CMD_DONE;
    }
    backend_op_t op = { .code = BE_GET, .key = argv[1], .expire_at = -1 };
    return cmd_submit(r, &op, getrange_done_cb);
}
