/*
 * backend/redis/wire: the opcode-to-Redis mapping (see wire.h), as one table, wire_ops[] at the end of
 * this file. Each row names the function writing the op's command and the one reading its reply; the
 * functions above it are grouped as the table is: writers first, then readers.
 *
 * Commands are formatted here, with no allocation for the common case: an argv_builder collects the
 * slices (up to 16 on the stack) and wire_put_command() writes a multibulk of bulk strings. Where Redis
 * has no single command for an op's semantics (an expiry only for a key the command creates, MSET with
 * an expiry), a short Lua script does it atomically.
 */
#include "backend/redis/wire.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/redis/redis_int.h"
#include "util/mem.h"

/* ---- writing commands ---------------------------------------------------------------------------- */

static void put_header(buf_t *out, char type, size_t n)
{
    buf_append_header(out, type, (long long)n);
}

void wire_put_command(buf_t *out, int argc, const bytes_t *argv)
{
    put_header(out, '*', (size_t)argc);
    for (int i = 0; i < argc; i++) {
        put_header(out, '$', argv[i].len);
        buf_append(out, argv[i].ptr, argv[i].len);
        buf_append(out, "\r\n", 2);
    }
}

typedef struct argv_builder {
    bytes_t small[16];
    bytes_t *v;
    int n, cap;
    char nums[4][24];
    int nnums;
} argv_builder_t;

static void ab_init(argv_builder_t *a, int need)
{
    a->n = 0;
    a->nnums = 0;
    a->cap = need;
    a->v = need <= 16 ? a->small : mem_alloc((size_t)need * sizeof(bytes_t));
}

static void ab_add(argv_builder_t *a, bytes_t b)
{
    a->v[a->n++] = b;
}

static void ab_num(argv_builder_t *a, long long v)
{
    char *p = a->nums[a->nnums++];
    ab_add(a, (bytes_t){ p, fmt_ll(p, v) });
}

/* Write the command collected and free the builder. */
static void ab_put(argv_builder_t *a, buf_t *out)
{
    wire_put_command(out, a->n, a->v);
    if (a->v != a->small)
        mem_free(a->v);
}

/* SET / GETEX's expiry: PX n, or PXAT n. */
static void ab_px(argv_builder_t *a, const backend_op_t *op)
{
    ab_add(a, (op->flags & BE_REL) ? B("PX") : B("PXAT"));
    ab_num(a, wire_expiry(op));
}

void wire_put_select(buf_t *out, int db)
{
    char num[24];
    bytes_t argv[2] = { B("SELECT"), { num, fmt_ll(num, db) } };
    wire_put_command(out, 2, argv);
}

/* SET's NX, XX and GET, from the op's flags. */
static void ab_set_options(argv_builder_t *a, const backend_op_t *op)
{
    if (op->flags & BE_NX)
        ab_add(a, B("NX"));
    if (op->flags & BE_XX)
        ab_add(a, B("XX"));
    if (op->flags & BE_GETOLD)
        ab_add(a, B("GET"));
}

/*
 * default-ttl for keys that a command creates without giving them an expiry (BE_NEWTTL): Redis has no
 * option for "this expiry if the key is new, its own otherwise", so a short script decides on EXISTS, in
 * one atomic step. The command's reply (or its error, through pcall) is the script's.
 *
 * SET ... KEEPTTL: KEYS[1] key, ARGV[1] value, ARGV[2] expire_at (ms), ARGV[3..] NX / XX / GET.
 */
static void put_set_newttl(buf_t *out, const backend_op_t *op)
{
    static const char script[] =
        "local o={} for i=4,#ARGV do o[#o+1]=ARGV[i] end "
        "if redis.call('EXISTS',KEYS[1])==1 then o[#o+1]='KEEPTTL' else o[#o+1]=ARGV[3] o[#o+1]=ARGV[2] end "
        "return redis.pcall('SET',KEYS[1],ARGV[1],unpack(o))";
    argv_builder_t a;

    ab_init(&a, 10);
    ab_add(&a, B("EVAL"));
    ab_add(&a, (bytes_t){ script, sizeof(script) - 1 });
    ab_add(&a, B("1"));
    ab_add(&a, op->key);
    ab_add(&a, op->value);
    ab_num(&a, wire_expiry(op));
    ab_add(&a, (op->flags & BE_REL) ? B("PX") : B("PXAT"));
    ab_set_options(&a, op);
    ab_put(&a, out);
}

/* A native read-modify-write (APPEND, SETRANGE, the INCR family): KEYS[1] key, ARGV[1] the expiry (ms
 * from now with BE_REL, else unix ms), ARGV[2] PEXPIRE or PEXPIREAT, ARGV[3..] the command as the client
 * sent it; the expiry is set only if the key did not exist and the command did not fail. */
static void put_update_newttl(buf_t *out, const backend_op_t *op)
{
    static const char script[] =
        "local e=redis.call('EXISTS',KEYS[1]) "
        "local r=redis.pcall(unpack(ARGV,3)) "
        "if e==0 and type(r)~='table' then redis.call(ARGV[2],KEYS[1],ARGV[1]) end "
        "return r";
    argv_builder_t a;

    ab_init(&a, op->argc + 6);
    ab_add(&a, B("EVAL"));
    ab_add(&a, (bytes_t){ script, sizeof(script) - 1 });
    ab_add(&a, B("1"));
    ab_add(&a, op->key);
    ab_num(&a, wire_expiry(op));
    ab_add(&a, (op->flags & BE_REL) ? B("PEXPIRE") : B("PEXPIREAT"));
    for (int i = 0; i < op->argc; i++)
        ab_add(&a, op->argv[i]);
    ab_put(&a, out);
}

/* BE_WITHTTL: PTTL key before the read of each key (the near cache learns how long it may keep it) */
static void put_pttls(buf_t *out, const bytes_t *keys, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        bytes_t argv[2] = { B("PTTL"), keys[i] };
        wire_put_command(out, 2, argv);
    }
}

/* GET key, GETDEL key, or GETEX key PERSIST | PX(AT) n */
static void put_get(buf_t *out, const backend_op_t *op)
{
    argv_builder_t a;

    if (wire_ttl_count(op) > 0)
        put_pttls(out, &op->key, 1);
    ab_init(&a, 4);
    if (op->flags & BE_GETDEL) {
        ab_add(&a, B("GETDEL"));
        ab_add(&a, op->key);
    } else if (op->flags & BE_SETTTL) {
        ab_add(&a, B("GETEX"));
        ab_add(&a, op->key);
        if (op->expire_at < 0)
            ab_add(&a, B("PERSIST"));
        else
            ab_px(&a, op);
    } else {
        ab_add(&a, B("GET"));
        ab_add(&a, op->key);
    }
    ab_put(&a, out);
}

/* SET key value [NX|XX] [GET] [KEEPTTL | PX(AT) n]; KEEPTTL with default-ttl: the script above */
static void put_set(buf_t *out, const backend_op_t *op)
{
    argv_builder_t a;

    if ((op->flags & BE_KEEPTTL) && (op->flags & BE_NEWTTL)) {
        put_set_newttl(out, op);
        return;
    }
    ab_init(&a, 8);
    ab_add(&a, B("SET"));
    ab_add(&a, op->key);
    ab_add(&a, op->value);
    ab_set_options(&a, op);
    if (op->flags & BE_KEEPTTL)
        ab_add(&a, B("KEEPTTL"));
    else if (op->expire_at >= 0)
        ab_px(&a, op);
    ab_put(&a, out);
}

/* name key [key ...] */
static void put_key_list(buf_t *out, bytes_t name, const backend_op_t *op)
{
    argv_builder_t a;

    ab_init(&a, (int)op->nkeys + 1);
    ab_add(&a, name);
    for (size_t k = 0; k < op->nkeys; k++)
        ab_add(&a, op->keys[k]);
    ab_put(&a, out);
}

static void put_mget(buf_t *out, const backend_op_t *op)
{
    if (wire_ttl_count(op) > 0)
        put_pttls(out, op->keys, op->nkeys);
    put_key_list(out, B("MGET"), op);
}

static void put_del(buf_t *out, const backend_op_t *op)
{
    put_key_list(out, B("DEL"), op);
}

static void put_exists(buf_t *out, const backend_op_t *op)
{
    put_key_list(out, B("EXISTS"), op);
}

static void put_touch(buf_t *out, const backend_op_t *op)
{
    put_key_list(out, B("TOUCH"), op);
}

/* MSET / MSETNX k v ...; with an expiry, a script (MSET has none) */
static void put_mset(buf_t *out, const backend_op_t *op)
{
    argv_builder_t a;
    size_t k;

    if (op->ttls_ms != NULL) {
        /* each key its own expiry (the default-ttl of its cache): ARGV vals, then ms per key (-1 none),
         * then NX */
        static const char script[] =
            "local n=#KEYS "
            "if ARGV[2*n+1]=='1' then for i=1,n do if redis.call('EXISTS',KEYS[i])==1 then return 0 end end end "
            "for i=1,n do if ARGV[n+i]=='-1' then redis.call('SET',KEYS[i],ARGV[i]) "
            "else redis.call('SET',KEYS[i],ARGV[i],'PX',ARGV[n+i]) end end return 1";
        char nk[24];
        int len = snprintf(nk, sizeof(nk), "%zu", op->nkeys);
        ab_init(&a, (int)op->nkeys * 3 + 5);
        ab_add(&a, B("EVAL"));
        ab_add(&a, (bytes_t){ script, sizeof(script) - 1 });
        ab_add(&a, (bytes_t){ nk, (size_t)len });
        for (k = 0; k < op->nkeys; k++)
            ab_add(&a, op->keys[k]);
        for (k = 0; k < op->nkeys; k++)
            ab_add(&a, op->vals[k]);
        for (k = 0; k < op->nkeys; k++)
            ab_num(&a, op->ttls_ms[k] > 0 ? op->ttls_ms[k] : -1);
        ab_add(&a, (op->flags & BE_NX) ? B("1") : B("0"));
        ab_put(&a, out);
        return;
    }
    if (op->expire_at >= 0) {
        /* MSET has no expiry: one script sets every key with it, atomically (MSETNX: if none exists) */
        static const char script[] =
            "local n=#KEYS "
            "if ARGV[n+2]=='1' then for i=1,n do if redis.call('EXISTS',KEYS[i])==1 then return 0 end end end "
            "for i=1,n do redis.call('SET',KEYS[i],ARGV[i],ARGV[n+3],ARGV[n+1]) end return 1";
        char nk[24];
        int len = snprintf(nk, sizeof(nk), "%zu", op->nkeys);
        ab_init(&a, (int)op->nkeys * 2 + 6);
        ab_add(&a, B("EVAL"));
        ab_add(&a, (bytes_t){ script, sizeof(script) - 1 });
        ab_add(&a, (bytes_t){ nk, (size_t)len });
        for (k = 0; k < op->nkeys; k++)
            ab_add(&a, op->keys[k]);
        for (k = 0; k < op->nkeys; k++)
            ab_add(&a, op->vals[k]);
        ab_num(&a, wire_expiry(op));
        ab_add(&a, (op->flags & BE_NX) ? B("1") : B("0"));
        ab_add(&a, (op->flags & BE_REL) ? B("PX") : B("PXAT"));
        ab_put(&a, out);
        return;
    }
    ab_init(&a, (int)op->nkeys * 2 + 1);
    ab_add(&a, (op->flags & BE_NX) ? B("MSETNX") : B("MSET"));
    for (k = 0; k < op->nkeys; k++) {
        ab_add(&a, op->keys[k]);
        ab_add(&a, op->vals[k]);
    }
    ab_put(&a, out);
}

/* TYPE key */
static void put_type(buf_t *out, const backend_op_t *op)
{
    bytes_t argv[2] = { B("TYPE"), op->key };
    wire_put_command(out, 2, argv);
}

/* PERSIST key, or PEXPIRE(AT) key n [NX|XX] [GT|LT] */
static void put_expire(buf_t *out, const backend_op_t *op)
{
    argv_builder_t a;

    ab_init(&a, 4);
    if (op->expire_at < 0) {
        ab_add(&a, B("PERSIST"));
        ab_add(&a, op->key);
        ab_put(&a, out);
        return;
    }
    ab_add(&a, (op->flags & BE_REL) ? B("PEXPIRE") : B("PEXPIREAT"));
    ab_add(&a, op->key);
    ab_num(&a, wire_expiry(op));
    if (op->flags & BE_NX)
        ab_add(&a, B("NX"));
    else if (op->flags & BE_XX)
        ab_add(&a, B("XX"));
    if (op->flags & BE_GT)
        ab_add(&a, B("GT"));
    else if (op->flags & BE_LT)
        ab_add(&a, B("LT"));
    ab_put(&a, out);
}

/* PTTL key (REL), or PEXPIRETIME key */
static void put_ttl(buf_t *out, const backend_op_t *op)
{
    bytes_t argv[2] = { (op->flags & BE_REL) ? B("PTTL") : B("PEXPIRETIME"), op->key };
    wire_put_command(out, 2, argv);
}

/* KEYS pattern */
static void put_keys(buf_t *out, const backend_op_t *op)
{
    bytes_t argv[2] = { B("KEYS"), op->pattern.ptr ? op->pattern : B("*") };
    wire_put_command(out, 2, argv);
}

/* SCAN cursor COUNT n [MATCH pattern] [TYPE type] */
static void put_scan(buf_t *out, const backend_op_t *op)
{
    argv_builder_t a;
    char cur[24];
    int len = snprintf(cur, sizeof(cur), "%" PRIu64, op->cursor);

    ab_init(&a, 8);
    ab_add(&a, B("SCAN"));
    ab_add(&a, (bytes_t){ cur, (size_t)len });
    ab_add(&a, B("COUNT"));
    ab_num(&a, (long long)op->count);
    if (op->pattern.ptr) {
        ab_add(&a, B("MATCH"));
        ab_add(&a, op->pattern);
    }
    if (op->flags & BE_TYPEFILTER) {
        ab_add(&a, B("TYPE"));
        ab_add(&a, op->type_name);
    }
    ab_put(&a, out);
}

static void put_randomkey(buf_t *out, const backend_op_t *op)
{
    bytes_t argv[1] = { B("RANDOMKEY") };
    wire_put_command(out, 1, argv);
}

/* RENAME / RENAMENX key key2 */
static void put_rename(buf_t *out, const backend_op_t *op)
{
    bytes_t argv[3] = { (op->flags & BE_NX) ? B("RENAMENX") : B("RENAME"), op->key, op->key2 };
    wire_put_command(out, 3, argv);
}

static void put_dbsize(buf_t *out, const backend_op_t *op)
{
    bytes_t argv[1] = { B("DBSIZE") };
    wire_put_command(out, 1, argv);
}

/* FLUSHDB, or FLUSHALL (ALLDB) */
static void put_flush(buf_t *out, const backend_op_t *op)
{
    bytes_t argv[1] = { (op->flags & BE_ALLDB) ? B("FLUSHALL") : B("FLUSHDB") };
    wire_put_command(out, 1, argv);
}

/* INFO pattern */
static void put_info(buf_t *out, const backend_op_t *op)
{
    bytes_t argv[2] = { B("INFO"), op->pattern };
    wire_put_command(out, 2, argv);
}

/* SELECT db2 */
static void put_select(buf_t *out, const backend_op_t *op)
{
    wire_put_select(out, op->db2);
}

/* The command as the client sent it (passthrough, and a native read-modify-write). */
static void put_argv(buf_t *out, const backend_op_t *op)
{
    wire_put_command(out, op->argc, op->argv);
}

/* A native read-modify-write: the client's command, or with default-ttl the script above. (Without a
 * native command the update runs as a transaction, tx.c, and this row's put is not used.) */
static void put_update(buf_t *out, const backend_op_t *op)
{
    if (op->flags & BE_NEWTTL) {
        put_update_newttl(out, op);
        return;
    }
    put_argv(out, op);
}

/* ---- replies ------------------------------------------------------------------------------------- */

/* A reply as RESP2 bytes, for passthrough. */
static void put_reply(buf_t *out, const redisReply *r)
{
    switch (r->type) {
    case REDIS_REPLY_STRING:
        put_header(out, '$', r->len);
        buf_append(out, r->str, r->len);
        buf_append(out, "\r\n", 2);
        break;
    case REDIS_REPLY_ARRAY:
        put_header(out, '*', r->elements);
        for (size_t i = 0; i < r->elements; i++)
            put_reply(out, r->element[i]);
        break;
    case REDIS_REPLY_INTEGER:
        buf_append_header(out, ':', r->integer);
        break;
    case REDIS_REPLY_NIL:
        buf_append(out, r->integer == WIRE_NIL_ARRAY ? "*-1\r\n" : "$-1\r\n", 5);
        break;
    case REDIS_REPLY_STATUS:
        buf_append(out, "+", 1);
        buf_append(out, r->str, r->len);
        buf_append(out, "\r\n", 2);
        break;
    case REDIS_REPLY_ERROR:
        buf_append(out, "-", 1);
        buf_append(out, r->str, r->len);
        buf_append(out, "\r\n", 2);
        break;
    }
}

/*
 * hiredis 0.14 reads RESP2's null array (*-1) and null bulk string ($-1) as one nil object; Redis answers
 * *-1 to a BLPOP that timed out, an XREAD with nothing new, GEOPOS of a missing member (an element), and
 * a relayed reply must keep which. Its reader knows while it reads (the task's type is the array's): the
 * nil objects it makes for *-1 are marked (integer, unused by a nil, set to WIRE_NIL_ARRAY) and written
 * back as *-1.
 */
static redisReplyObjectFunctions nil_marking_fns;
static void *(*create_nil_base)(const redisReadTask *);

static void *create_nil_marked(const redisReadTask *task)
{
    redisReply *r = create_nil_base(task);
    if (r != NULL && task->type == REDIS_REPLY_ARRAY)
        r->integer = WIRE_NIL_ARRAY;
    return r;
}

redisReader *wire_reader_create(void)
{
    redisReader *r = redisReaderCreate();

    if (r == NULL)
        return NULL;
    if (create_nil_base == NULL) {          /* hiredis's own functions, with createNil wrapped */
        nil_marking_fns = *r->fn;
        create_nil_base = r->fn->createNil;
        nil_marking_fns.createNil = create_nil_marked;
    }
    r->fn = &nil_marking_fns;
    return r;
}

/* A bulk string is the value; anything else (nil) is BE_NIL. GET, RANDOMKEY, INFO. */
static void reply_value(const backend_op_t *op, const redisReply *r, backend_result_t *res, wire_scratch_t *s)
{
    if (r->type == REDIS_REPLY_STRING) {
        res->value = (bytes_t){ r->str, r->len };
        res->has_value = 1;
    } else {
        res->status = BE_NIL;
    }
}

/* GETOLD: the old value, if any; else OK, or nil when NX / XX did not hold. */
static void reply_set(const backend_op_t *op, const redisReply *r, backend_result_t *res, wire_scratch_t *s)
{
    if (op->flags & BE_GETOLD) {
        if (r->type == REDIS_REPLY_STRING) {
            res->value = (bytes_t){ r->str, r->len };
            res->has_value = 1;
        }
    } else if (r->type == REDIS_REPLY_NIL) {
        res->status = BE_NIL;
    }
}

/* An array of bulk strings (nil: missing) as values. */
static void reply_array(const redisReply *arr, backend_result_t *res, wire_scratch_t *s)
{
    if (arr->type != REDIS_REPLY_ARRAY) {
        res->status = BE_ERR;
        res->err = "ERR upstream: unexpected reply, an array was expected";
        return;
    }
    s->vec = mem_alloc((arr->elements ? arr->elements : 1) * sizeof(*s->vec));
    for (size_t i = 0; i < arr->elements; i++) {
        const redisReply *e = arr->element[i];
        s->vec[i] = e->type == REDIS_REPLY_STRING ? (bytes_t){ e->str, e->len } : (bytes_t){ NULL, 0 };
    }
    res->values = s->vec;
    res->nvalues = arr->elements;
}

/* MGET, KEYS */
static void reply_values(const backend_op_t *op, const redisReply *r, backend_result_t *res, wire_scratch_t *s)
{
    reply_array(r, res, s);
}

/* SCAN: [cursor, [keys]] */
static void reply_scan(const backend_op_t *op, const redisReply *r, backend_result_t *res, wire_scratch_t *s)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING) {
        res->status = BE_ERR;
        res->err = "ERR upstream: unexpected reply to SCAN";
        return;
    }
    res->cursor = strtoull(r->element[0]->str, NULL, 10);
    reply_array(r->element[1], res, s);
}

/* MSET answers OK (1: all set), MSETNX and the script 1 or 0. */
static void reply_mset(const backend_op_t *op, const redisReply *r, backend_result_t *res, wire_scratch_t *s)
{
    res->integer = r->type == REDIS_REPLY_INTEGER ? r->integer : 1;
}

/* TYPE: 1 for any type but none, and its name. */
static void reply_type(const backend_op_t *op, const redisReply *r, backend_result_t *res, wire_scratch_t *s)
{
    if (r->type == REDIS_REPLY_STATUS) {
        res->integer = strcmp(r->str, "none") != 0;
        res->value = (bytes_t){ r->str, r->len };
        res->type_known = 1;
    }
}

/* Passthrough: the reply itself, as RESP bytes. */
static void reply_resp(const backend_op_t *op, const redisReply *r, backend_result_t *res, wire_scratch_t *s)
{
    put_reply(&s->raw, r);
    res->resp = (bytes_t){ s->raw.data, s->raw.len };
}

/* A native read-modify-write: INCRBYFLOAT answers a bulk string (the value), the others an integer. */
static void reply_update(const backend_op_t *op, const redisReply *r, backend_result_t *res, wire_scratch_t *s)
{
    if (r->type == REDIS_REPLY_STRING) {
        res->value = (bytes_t){ r->str, r->len };
        res->has_value = 1;
    } else {
        res->integer = r->integer;
    }
}

/* Integers; OK replies leave 0. */
static void reply_integer(const backend_op_t *op, const redisReply *r, backend_result_t *res, wire_scratch_t *s)
{
    res->integer = r->integer;
}

/* ---- the table ----------------------------------------------------------------------------------- */

/* One row per opcode, indexed by it. An opcode without a row is refused by redis_submit (an error to
 * the client, not a crash): add the row with the enum line. */
static const wire_op_t wire_ops[] = {
    [BE_GET]       = { "GET",       put_get,       reply_value,   0,                    up_batch_follow_get },
    [BE_SET]       = { "SET",       put_set,       reply_set,     0,                    up_batch_follow_set },
    [BE_MGET]      = { "MGET",      put_mget,      reply_values,  0,                    NULL },
    [BE_MSET]      = { "MSET",      put_mset,      reply_mset,    0,                    up_batch_follow_mset },
    [BE_DEL]       = { "DEL",       put_del,       reply_integer, 0,                    up_batch_follow_del },
    [BE_EXISTS]    = { "EXISTS",    put_exists,    reply_integer, 0,                    NULL },
    [BE_TOUCH]     = { "TOUCH",     put_touch,     reply_integer, 0,                    NULL },
    [BE_TYPE]      = { "TYPE",      put_type,      reply_type,    0,                    NULL },
    [BE_EXPIRE]    = { "EXPIRE",    put_expire,    reply_integer, 0,                    up_batch_follow_expire },
    [BE_TTL]       = { "TTL",       put_ttl,       reply_integer, 0,                    NULL },
    [BE_KEYS]      = { "KEYS",      put_keys,      reply_values,  0,                    NULL },
    [BE_SCAN]      = { "SCAN",      put_scan,      reply_scan,    0,                    NULL },
    [BE_RANDOMKEY] = { "RANDOMKEY", put_randomkey, reply_value,   0,                    NULL },
    [BE_RENAME]    = { "RENAME",    put_rename,    reply_integer, 0,                    up_batch_follow_rename },
    [BE_DBSIZE]    = { "DBSIZE",    put_dbsize,    reply_integer, 0,                    NULL },
    [BE_FLUSH]     = { "FLUSH",     put_flush,     reply_integer, 0,                    up_batch_follow_flush },
    [BE_UPDATE]    = { "UPDATE",    put_update,    reply_update,  WIRE_UPDATE,          NULL },
    [BE_COMMAND]   = { "COMMAND",   put_argv,      reply_resp,    WIRE_ERROR_IS_RESULT, up_batch_follow_command },
    [BE_INFO]      = { "INFO",      put_info,      reply_value,   0,                    NULL },
    [BE_SELECT]    = { "SELECT",    put_select,    reply_integer, 0,                    NULL },
};

#define WIRE_NOPS (sizeof(wire_ops) / sizeof(wire_ops[0]))

const wire_op_t *wire_op(backend_opcode_t code)
{
    if ((size_t)code >= WIRE_NOPS || wire_ops[code].put == NULL)
        return NULL;
    return &wire_ops[code];
}

size_t wire_ttl_count(const backend_op_t *op)
{
    if (!(op->flags & BE_WITHTTL))
        return 0;
    if (op->code == BE_MGET)
        return op->nkeys;
    return op->code == BE_GET && !(op->flags & (BE_GETDEL | BE_SETTTL)) ? 1 : 0;
}

void wire_put(buf_t *out, const backend_op_t *op)
{
    wire_ops[op->code].put(out, op);
}

void wire_reply(const backend_op_t *op, const redisReply *r, backend_result_t *res, wire_scratch_t *s)
{
    const wire_op_t *w = &wire_ops[op->code];

    if (r->type == REDIS_REPLY_ERROR && !(w->flags & WIRE_ERROR_IS_RESULT)) {
        res->status = BE_ERR;
        res->err = r->str;
        return;
    }
    w->reply(op, r, res, s);
}

int wire_needs_tx(const backend_op_t *op)
{
    return ((wire_ops[op->code].flags & WIRE_UPDATE) && op->argc == 0) || op->check != NULL;
}

void wire_scratch_deinit(wire_scratch_t *s)
{
    mem_free(s->vec);
    s->vec = NULL;
    buf_deinit(&s->raw);
}
