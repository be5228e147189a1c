/*
 * cmd/passthrough: what happens to a command cachetoryd does not run itself, by its class in the table
 * generated from Redis 7.0 (cmd/classes.c, README "Passthrough"):
 *
 *   VALUE    string-family values are cachetoryd's own (cmd/string.c, cmd/bits.c): one that is not
 *            implemented is refused, never forwarded — Redis would see encoded bytes.
 *   SCRIPT   forwarded (passthrough = yes) only when Redis would see the values clients wrote: the
 *            serializer is null://, or passthrough-scripts = stored-bytes says scripts may see stored bytes.
 *   SESSION  refused: connection state and transactions would act on an upstream connection shared by
 *            many clients. Blocking commands (and XREAD ... BLOCK) and subscriptions are forwarded on a
 *            dedicated connection of the client's own (backend_pin) with an upstream and passthrough = yes,
 *            refused otherwise; WATCH pins one too (cmd/table.c).
 *   FORWARD  forwarded as they are (passthrough = yes), after a look at arguments that make some forms
 *            blocking (XREAD BLOCK) or readers of string values (SORT BY / GET).
 *   ADMIN    refused: a client of the proxy never reconfigures, stops or inspects the shared upstream.
 *
 * Without an upstream (memory://, dummy://) SCRIPT and FORWARD commands get Redis's unknown-command
 * error, as a Redis without those commands would answer; with an upstream and passthrough = no, the same
 * text followed by the setting that would forward them. A name Redis 7.0 does not know gets Redis's
 * unknown-command error in every mode: nothing unknown is forwarded.
 */
#include "cmd/cmd.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "cache/cache.h"
#include "cmd/classes.h"
#include "cmd/session.h"
#include "config.h"

static cmd_proc_t cmd_forward_proto;

/* Forwarded to the upstream as it is (passthrough = yes). */
static const cmd_def_t cmd_forward_def = {
    "passthrough", cmd_forward_proto, -1, CMD_WRITE | CMD_DENYOOM, 1, 1, 1, "cachetoryd", "0.1.0",
    "A command forwarded to the upstream as it is.", "@slow",
};

static cmd_proc_t cmd_forward_blocking;

/* A blocking command, forwarded on a dedicated upstream connection (passthrough = yes). */
static const cmd_def_t cmd_blocking_def = {
    "passthrough", cmd_forward_blocking, -1, CMD_WRITE | CMD_DENYOOM, 1, 1, 1, "cachetoryd", "0.1.0",
    "A blocking command forwarded to the upstream on a connection of the client's own.", "@slow @blocking",
};

static void blocking_done_cb(void *ctx, const backend_result_t *res)
{
    req_t *r = ctx;
    client_t *c = r->c;
    cmd_session_t *s = cmd_session(c);

    if (res->status == BE_ERR)
        reply_error(req_out(r), res->err);
    else
        buf_append(req_out(r), res->resp.ptr, res->resp.len);
    if (--s->nblocked == 0)
        cmd_session_unpin(s, PIN_BLOCK, 0);     /* handed back (kept while WATCH holds it too) */
    req_done(r);
}

/*
 * BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN / MAX, BZMPOP, WAIT, XREAD / XREADGROUP ... BLOCK:
 * on a dedicated upstream connection (the client's pin, taken now unless it holds one) for as long as it
 * waits, without the command timeout; the connection is handed back when it answers, or closed if the
 * client goes first. Inside EXEC it cannot block (Redis runs it at once there): forwarded as any other.
 */
static int cmd_forward_blocking(req_t *r, int argc, bytes_t *argv)
{
    client_t *c = r->c;
    cmd_session_t *s = cmd_session(c);
    char err[400];
    bytes_t keys[16];

    if (s->flags & SESSION_IN_EXEC)
        return cmd_forward_proto(r, argc, argv);
    if (cmd_session_pin(c, PIN_BLOCK, err, sizeof(err)) < 0) {
        reply_error(req_out(r), err);
        return CMD_DONE;
    }
    s->nblocked++;
    int n = cmd_passthrough_keys(argc, argv, keys, 16);
    backend_op_t op = { .code = BE_COMMAND, .argc = argc, .argv = argv, .keys = n >= 0 ? keys : NULL,
                        .nkeys = n >= 0 ? (size_t)n : 0, .flags = BE_BLOCKS | (n >= 0 ? BE_KEYSKNOWN : 0) };
    if (s->proto == 3)
        op.flags |= BE_RESP3;           /* BZPOPMIN's double, as Redis sends it (resp3.c) */
    if (!cmd_passthrough_writes(argc, argv))
        op.flags |= BE_READONLY;
    return cmd_submit_raw(r, &op, blocking_done_cb);
}

void cmd_relay_done_cb(void *ctx, const backend_result_t *res)
{
    req_t *r = ctx;
    if (res->status == BE_ERR)
        reply_error(req_out(r), res->err);
    else
        buf_append(req_out(r), res->resp.ptr, res->resp.len);
    req_done(r);
}

/*
 * A forwarded command. A RESP3 client's (HELLO 3) asks for the upstream's RESP3 reply (BE_RESP3): a
 * single Redis answers it on a connection opened with HELLO 3 and the bytes are relayed as they are, so
 * HGETALL is a map and ZSCORE a double, as from Redis itself. The same inside MULTI ... EXEC (the
 * transaction runs on a RESP3 connection, EXEC's array split element by element) and on the client's
 * dedicated connection (WATCH, blocking commands: it says HELLO 3 first). With a cluster too: the command
 * goes on a RESP3 connection of its slot's master, MOVED / ASK followed there (backend/redis/route.c), and
 * so does a cluster's MULTI ... EXEC; dedicated connections are refused with a cluster.
 */
static int cmd_forward_proto(req_t *r, int argc, bytes_t *argv)
{
    cmd_session_t *s = cmd_session(r->c);
    bytes_t keys[16];

    if (s->proto != 3)
        return cmd_forward(r, argc, argv);
    int n = cmd_passthrough_keys(argc, argv, keys, 16);
    backend_op_t op = { .code = BE_COMMAND, .argc = argc, .argv = argv, .keys = n >= 0 ? keys : NULL,
                        .nkeys = n >= 0 ? (size_t)n : 0, .flags = BE_RESP3 | (n >= 0 ? BE_KEYSKNOWN : 0) };
    if (!cmd_passthrough_writes(argc, argv))
        op.flags |= BE_READONLY;
    return cmd_submit_raw(r, &op, cmd_relay_done_cb);
}

/* A number line ("<type><digits>\r\n") at *p, before end: its value, *p moved past it; -1 if malformed. */
static long long frame_number(const char **p, const char *end)
{
    long long v = 0;
    const char *q = *p + 1;

    if (q < end && *q == '-')
        return -1;
    for (; q < end && *q >= '0' && *q <= '9' && v < (1LL << 40); q++)
        v = v * 10 + (*q - '0');
    if (q + 1 >= end || q[0] != '\r' || q[1] != '\n' || q == *p + 1)
        return -1;
    *p = q + 2;
    return v;
}

/*
 * CLIENT LIST's sub= psub= ssub=, from the frames of the subscribed connection: Redis's answer to each
 * (un)subscription is [kind, name, count], where count is the channels and patterns now subscribed together
 * (the shard channels alone for ssubscribe / sunsubscribe). A channel subscribed twice answers with the
 * same count: the change of the count is what the kind's own number changes by. Messages change nothing.
 */
static void pubsub_count(cmd_session_t *s, const bytes_t *resp)
{
    static const struct { const char *kind; int which; } kinds[] = {
        { "subscribe", 0 }, { "unsubscribe", 0 }, { "psubscribe", 1 }, { "punsubscribe", 1 },
        { "ssubscribe", 2 }, { "sunsubscribe", 2 },
    };
    const char *p = resp->ptr, *end = resp->ptr + resp->len;

    if (resp->len < 4 || (p[0] != '*' && p[0] != '>') || frame_number(&p, end) != 3 || p >= end || *p != '$')
        return;
    long long n = frame_number(&p, end);
    if (n < 0 || n > 16 || end - p < n + 2)
        return;
    bytes_t kind = { p, (size_t)n };
    p += n + 2;
    if (p < end && *p == '$') {                     /* the name, or RESP2's null */
        long long m = p[1] == '-' ? -1 : frame_number(&p, end);
        if (m < 0)
            p = memchr(p, '\n', (size_t)(end - p));
        else
            p += m + 2;
        if (p == NULL || p >= end)
            return;
        if (m < 0)
            p++;
    } else if (p < end && *p == '_') {
        p += 3;
    }
    if (p >= end || *p != ':')
        return;
    long long count = frame_number(&p, end);
    if (count < 0)
        return;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (!bytes_eq_nocase(kind, kinds[i].kind))
            continue;
        if (kinds[i].which == 2) {
            s->nssub = (int)count;
        } else {
            int *mine = kinds[i].which == 0 ? &s->nsub : &s->npsub;
            *mine += (int)(count - (s->nsub + s->npsub));
            if (*mine < 0)
                *mine = 0;
        }
        return;
    }
}

/*
 * The client's dedicated connection sent a pub/sub frame: queued as a reply of its own behind the
 * client's commands in flight (so that it follows the answers before it), a RESP3 push for a RESP3 client
 * (the frame is an array: only its type byte differs). The client's output limit (client-output-buffer-
 * limit) applies, as to any reply: a subscriber that does not read is closed. Subscribed to nothing any
 * more: the connection is handed back. Lost: the client is closed, as Redis going away would close it.
 */
static void pubsub_push_cb(void *ctx, enum backend_push_event ev, const bytes_t *resp)
{
    client_t *c = ctx;
    cmd_session_t *s = cmd_session(c);

    if (ev == BE_PUSH_IDLE) {
        cmd_session_unpin(s, PIN_SUB, 0);
        return;
    }
    if (ev == BE_PUSH_LOST) {
        conn_close(c);
        return;
    }
    if (c->flags & CLIENT_CLOSING)
        return;
    pubsub_count(s, resp);
    req_t *r = cmd_req_create(c);
    buf_t *out = req_out(r);
    size_t at = out->len;
    buf_append(out, resp->ptr, resp->len);
    if (s->proto == 3 && resp->len > 0 && out->data[at] == '*')
        out->data[at] = '>';
    req_done(r);
}

/* "unsubscribe" (punsubscribe, sunsubscribe): a client subscribed to nothing, answered here as Redis
 * would: one frame per name, or one with a null name, each with a count of 0. */
static void reply_unsubscribed(req_t *r, int argc, bytes_t *argv)
{
    buf_t *out = req_out(r);
    char kind[16];
    size_t n = argv[0].len < sizeof(kind) ? argv[0].len : sizeof(kind) - 1;

    for (size_t i = 0; i < n; i++)
        kind[i] = (char)tolower((unsigned char)argv[0].ptr[i]);
    for (int i = 1; i < (argc > 1 ? argc : 2); i++) {
        if (cmd_proto(r) == 3)
            buf_append(out, ">3\r\n", 4);
        else
            reply_array(out, 3);
        reply_bulk(out, kind, n);
        if (argc > 1)
            reply_bulk(out, argv[i].ptr, argv[i].len);
        else
            reply_null(out, cmd_proto(r));
        reply_int(out, 0);
    }
}

/*
 * SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and their UNSUBSCRIBE: on the client's dedicated connection (pinned
 * by the first subscription), with no reply of their own here: what Redis answers, and the messages,
 * reach the client through pubsub_push_cb, in order. The connection is handed back once Redis says it is
 * subscribed to nothing (BE_PUSH_IDLE), or when the client goes.
 */
static int cmd_subscribe(req_t *r, int argc, bytes_t *argv)
{
    client_t *c = r->c;
    cmd_session_t *s = cmd_session(c);
    char err[400];
    int unsub = bytes_eq_nocase(argv[0], "unsubscribe") || bytes_eq_nocase(argv[0], "punsubscribe") ||
                bytes_eq_nocase(argv[0], "sunsubscribe");

    if (s->flags & SESSION_IN_EXEC) {
        reply_error(req_out(r), "ERR subscribing inside MULTI is not supported by cachetoryd");
        return CMD_DONE;
    }
    if (unsub && !(s->pin_for & PIN_SUB)) {
        reply_unsubscribed(r, argc, argv);
        return CMD_DONE;
    }
    if (cmd_session_pin(c, PIN_SUB, err, sizeof(err)) < 0) {
        reply_error(req_out(r), err);
        return CMD_DONE;
    }
    s->pin->push = pubsub_push_cb;
    s->pin->push_ctx = c;
    backend_op_t op = { .code = BE_COMMAND, .argc = argc, .argv = argv, .flags = BE_PUSHES | BE_READONLY,
                        .pin = s->pin };
    cmd_submit_raw(r, &op, cmd_relay_done_cb);     /* OK: nothing to write (an error: the client's) */
    return CMD_PENDING;
}

static const cmd_def_t cmd_subscribe_def = {
    "passthrough", cmd_subscribe, -1, 0, 0, 0, 0, "cachetoryd", "0.1.0",
    "Subscribing, on a connection to the upstream of the client's own.", "@pubsub @slow",
};

int cmd_pubsub_filter(req_t *r, const cmd_def_t *d, int argc, bytes_t *argv)
{
    cmd_session_t *s = cmd_session(r->c);
    static const char *const allowed[] = { "subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe",
                                           "sunsubscribe", "quit", "reset" };

    if (!(s->pin_for & PIN_SUB) || s->proto != 2 || (s->flags & SESSION_MULTI))
        return 0;
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
        if (bytes_eq_nocase(argv[0], allowed[i]))
            return 0;
    if (bytes_eq_nocase(argv[0], "ping") && argc <= 2) {
        /* subscribed, Redis answers ["pong", message]: asked on the connection, behind what is in flight */
        backend_op_t op = { .code = BE_COMMAND, .argc = argc, .argv = argv, .flags = BE_READONLY, .pin = s->pin };
        cmd_submit_raw(r, &op, cmd_relay_done_cb);
        return 1;
    }
    char name[64];
    size_t n = argv[0].len < sizeof(name) ? argv[0].len : sizeof(name) - 1;
    for (size_t i = 0; i < n; i++)
        name[i] = (char)tolower((unsigned char)argv[0].ptr[i]);
    name[n] = '\0';
    cmd_stats_rejected(cmd_stat_name(d, argc, argv));      /* refused before running, as Redis counts it */
    reply_errorf(req_out(r), "ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET "
                 "are allowed in this context", name);
    req_done(r);
    return 1;
}

/* Does the backend run cl's blocking form, on a dedicated connection? */
static int blocking_forwarded(void)
{
    return backend_can_pin(cmd_ctx.backend) && cmd_ctx.cfg->passthrough;
}

/* Compare a client's name (any case) with a table name (lower case), as strcmp orders them. */
static int name_cmp(bytes_t a, const char *b)
{
    size_t i;
    for (i = 0; i < a.len && b[i] != '\0'; i++) {
        int ca = tolower((unsigned char)a.ptr[i]), cb = (unsigned char)b[i];
        if (ca != cb)
            return ca - cb;
    }
    if (i < a.len)
        return 1;
    return b[i] == '\0' ? 0 : -1;
}

static const cmd_class_t *class_search(const cmd_class_t *t, int n, bytes_t name)
{
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2, c = name_cmp(name, t[mid].name);
        if (c == 0)
            return &t[mid];
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

const cmd_class_t *cmd_class_lookup(bytes_t name)
{
    if (name.len == 0 || name.len > 64)
        return NULL;
    return class_search(cmd_classes, cmd_nclasses, name);
}

const cmd_class_t *cmd_class_lookup_sub(const cmd_class_t *container, bytes_t sub)
{
    char full[160];
    size_t plen = strlen(container->name);

    if (container->subs == NULL || sub.len == 0 || plen + 1 + sub.len > sizeof(full))
        return NULL;
    memcpy(full, container->name, plen);
    full[plen] = '|';
    memcpy(full + plen + 1, sub.ptr, sub.len);
    return class_search(container->subs, container->nsubs, (bytes_t){ full, plen + 1 + sub.len });
}

/* "CONFIG SET" / "BLPOP": the command as the client would recognise it, upper case, for the messages. */
static void display_name(const cmd_class_t *cl, char *out, size_t outlen)
{
    size_t i;
    for (i = 0; cl->name[i] != '\0' && i + 1 < outlen; i++)
        out[i] = cl->name[i] == '|' ? ' ' : (char)toupper((unsigned char)cl->name[i]);
    out[i] = '\0';
}

static void refuse(buf_t *out, const cmd_class_t *cl, cmd_class_why_t why)
{
    static const char *const reasons[] = {
        [CMD_WHY_NONE] = "it is not supported",
        [CMD_WHY_BLOCKING] = "blocking commands are forwarded only to an upstream Redis with passthrough = yes, "
                             "on a connection of the client's own",
        [CMD_WHY_PUBSUB] = "subscribing is forwarded only to an upstream Redis with passthrough = yes, on a "
                           "connection of the client's own",
        [CMD_WHY_WATCH] = "WATCH would watch keys on an upstream connection that many clients share; "
                          "MULTI / EXEC are run by cachetoryd itself",
        [CMD_WHY_SESSION] = "it changes the state of the connection, and the upstream connection is shared by "
                            "many clients; cachetoryd keeps each client's own state (SELECT, HELLO, AUTH, "
                            "CLIENT SETNAME, RESET) itself",
        [CMD_WHY_CLUSTER] = "cachetoryd talks to a single Redis, not a cluster",
        [CMD_WHY_REPLICATION] = "it takes the connection over, and the upstream connection is shared by many "
                                "clients; connect to Redis directly for it",
        [CMD_WHY_ADMIN] = "server administration is not done through the proxy, whose upstream other clients "
                          "share; connect to Redis directly for it",
        [CMD_WHY_SCRIPT] = "it reads string values inside Redis, where they are stored encoded",
    };
    char name[64];

    display_name(cl, name, sizeof(name));
    reply_errorf(out, "ERR %s is refused by cachetoryd: %s", name, reasons[why]);
}

/* A script, function or SORT pattern would read values the serializer encoded. */
static void refuse_script(buf_t *out, const cmd_class_t *cl, const char *what)
{
    char name[64];

    display_name(cl, name, sizeof(name));
    reply_errorf(out, "ERR %s%s is refused by cachetoryd: it reads string values inside Redis, where serializer "
                 "%s stores them encoded; use serializer null://, or set passthrough-scripts stored-bytes to "
                 "let it see the stored bytes", name, what, chain_url(cache_chain_encoding(cmd_ctx.cache)));
}

/* Scripts may run upstream: the values there are the clients' own bytes (every cache, the named ones too,
 * is null://), or the user said it is fine. */
static int scripts_allowed(void)
{
    return cache_chain_encoding(cmd_ctx.cache) == NULL ||
           cmd_ctx.cfg->passthrough_scripts == PASSTHROUGH_SCRIPTS_STORED_BYTES;
}

/* Does a SORT BY / GET pattern read string values? It does when it has a '*' that a key name replaces,
 * unless it names a hash field ("weight_*->f"); "#" is the element itself, and a BY pattern without '*'
 * means no sorting. */
static int sort_pattern_reads_strings(bytes_t p)
{
    const char *star = memchr(p.ptr, '*', p.len);

    if (star == NULL)
        return 0;
    size_t rest = p.len - (size_t)(star - p.ptr);
    for (size_t i = 1; i + 2 < rest; i++)
        if (star[i] == '-' && star[i + 1] == '>')
            return 0;
    return 1;
}

/* SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA] [STORE dest] */
static int sort_reads_strings(int argc, bytes_t *argv)
{
    for (int i = 2; i < argc; i++) {
        if (bytes_eq_nocase(argv[i], "limit")) {
            i += 2;
        } else if (bytes_eq_nocase(argv[i], "store")) {
            i++;
        } else if ((bytes_eq_nocase(argv[i], "by") || bytes_eq_nocase(argv[i], "get")) && i + 1 < argc) {
            if (sort_pattern_reads_strings(argv[++i]))
                return 1;
        }
    }
    return 0;
}

/* XREAD [COUNT n] [BLOCK ms] STREAMS ...: the options come before STREAMS. */
static int xread_blocks(int argc, bytes_t *argv)
{
    for (int i = 1; i < argc && !bytes_eq_nocase(argv[i], "streams"); i++)
        if (bytes_eq_nocase(argv[i], "block"))
            return 1;
    return 0;
}

/* Redis's unknown-command text, with the setting that would forward the command appended. */
static void reply_not_forwarded(buf_t *out, int argc, bytes_t *argv)
{
    char msg[600];
    buf_t tmp;

    buf_init(&tmp);
    cmd_reply_unknown(&tmp, argc, argv);
    snprintf(msg, sizeof(msg), "%.*s(cachetoryd forwards it to the upstream with passthrough = yes)",
             (int)(tmp.len - 3), tmp.data + 1);
    reply_error(out, msg);
    buf_deinit(&tmp);
}

/*
 * The keys a forwarded command touches, from its key positions (first, last, step), into keys (room for
 * max): their number, or -1 when they are not known that way — keys found by the command itself
 * (movablekeys: EVAL, SORT ... STORE, ZUNIONSTORE), or keys in another database (MOVE, COPY ... DB).
 */
int cmd_passthrough_keys(int argc, const bytes_t *argv, bytes_t *keys, int max)
{
    const cmd_class_t *cl = cmd_class_lookup(argv[0]);
    int n = 0;

    if (cl != NULL && cl->subs != NULL)
        cl = argc >= 2 ? cmd_class_lookup_sub(cl, argv[1]) : NULL;
    if (cl == NULL || strstr(cl->flags, "movablekeys") != NULL || strcmp(cl->name, "move") == 0 ||
        strcmp(cl->name, "copy") == 0)
        return -1;
    if (cl->first_key <= 0)
        return 0;
    int last = cl->last_key < 0 ? argc + cl->last_key : cl->last_key;
    for (int i = cl->first_key; i <= last && i < argc; i += cl->key_step > 0 ? cl->key_step : 1) {
        if (n == max)
            return -1;
        keys[n++] = argv[i];
    }
    return n;
}

/*
 * Can the forwarded command change a key? Anything Redis does not flag "readonly" may (EVAL and FCALL carry
 * neither "readonly" nor "write": a script may write), except pub/sub (PUBLISH changes no key). A command
 * Redis 7.0 does not list is taken to write. The near cache drops what a write may have changed
 * (BE_READONLY says it need not).
 */
int cmd_passthrough_writes(int argc, const bytes_t *argv)
{
    const cmd_class_t *cl = cmd_class_lookup(argv[0]);

    if (cl != NULL && cl->subs != NULL)
        cl = argc >= 2 ? cmd_class_lookup_sub(cl, argv[1]) : NULL;
    if (cl == NULL || cl->flags == NULL)
        return 1;
    if (cl->acl != NULL && strstr(cl->acl, "@pubsub") != NULL)
        return 0;
    return strstr(cl->flags, "readonly") == NULL;
}

static int arity_ok(int arity, int argc)
{
    return arity > 0 ? argc == arity : argc >= -arity;
}

const cmd_def_t *cmd_passthrough_resolve(buf_t *out, int argc, bytes_t *argv, int noauth)
{
    const cmd_class_t *cl = cmd_class_lookup(argv[0]);
    backend_t *b = cmd_ctx.backend;

    if (cl == NULL) {
        cmd_reply_unknown(out, argc, argv);
        return NULL;
    }
    if (!arity_ok(cl->arity, argc)) {
        cmd_reply_arity(out, cl->name);
        cmd_stats_rejected(cl->name);       /* refused before running, counted as Redis does */
        return NULL;
    }
    if (cl->subs != NULL) {
        const cmd_class_t *sub = cmd_class_lookup_sub(cl, argv[1]);
        if (sub == NULL) {
            cmd_reply_unknown_sub(out, argv[1], cl->name);
            return NULL;
        }
        if (!arity_ok(sub->arity, argc)) {
            cmd_reply_arity(out, sub->name);
            cmd_stats_rejected(sub->name);
            return NULL;
        }
        cl = sub;
    }
    if (noauth) {
        reply_error(out, ERR_NOAUTH);
        cmd_stats_rejected(cl->name);
        return NULL;
    }
    switch (cl->cls) {
    case CMD_CLASS_VALUE: {
        char name[64];
        display_name(cl, name, sizeof(name));
        reply_errorf(out, "ERR %s is not implemented by cachetoryd: it reads or writes string values, which go "
                     "through the serializer, so it is never forwarded as it is", name);
        return NULL;
    }
    case CMD_CLASS_SESSION:
        if (cl->why == CMD_WHY_BLOCKING && blocking_forwarded())
            return &cmd_blocking_def;
        if (cl->why == CMD_WHY_PUBSUB && blocking_forwarded())
            return strncmp(cl->name, "pubsub", 6) == 0 ? &cmd_forward_def : &cmd_subscribe_def;
        refuse(out, cl, cl->why);
        return NULL;
    case CMD_CLASS_ADMIN:
        refuse(out, cl, cl->why);
        return NULL;
    case CMD_CLASS_SCRIPT:
    case CMD_CLASS_FORWARD:
        break;
    }
    /* the argument checks come first: a refused form is refused whatever the backend */
    if (cl->check == CMD_CHECK_XREAD_BLOCK && xread_blocks(argc, argv)) {
        if (blocking_forwarded())
            return &cmd_blocking_def;
        refuse(out, cl, CMD_WHY_BLOCKING);
        return NULL;
    }
    if (!backend_forwards(b)) {
        cmd_reply_unknown(out, argc, argv);
        return NULL;
    }
    if (!cmd_ctx.cfg->passthrough) {
        reply_not_forwarded(out, argc, argv);
        return NULL;
    }
    if (cl->cls == CMD_CLASS_SCRIPT && !scripts_allowed()) {
        refuse_script(out, cl, "");
        return NULL;
    }
    if (cl->check == CMD_CHECK_SORT_PATTERNS && !scripts_allowed() && sort_reads_strings(argc, argv)) {
        refuse_script(out, cl, " with a BY or GET pattern");
        return NULL;
    }
    return &cmd_forward_def;
}
