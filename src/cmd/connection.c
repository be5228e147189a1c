/*
 * cmd/connection: the commands about the client's own connection and session — PING, ECHO, QUIT,
 * RESET, HELLO, AUTH, SELECT, CLIENT.
 */
#include "cmd/cmd.h"

#include <string.h>

#include "cmd/session.h"
#include "util/clock.h"
#include "util/mem.h"
#include "version.h"

/* PING [message] */
int cmd_ping(req_t *r, int argc, bytes_t *argv)
{
    if (argc > 2)
        cmd_reply_arity(req_out(r), "ping");
    else if (argc == 2)
        reply_bulk(req_out(r), argv[1].ptr, argv[1].len);
    else
        reply_status(req_out(r), "PONG");
    return CMD_DONE;
}

/* ECHO message */
int cmd_echo(req_t *r, int argc, bytes_t *argv)
{
    reply_bulk(req_out(r), argv[1].ptr, argv[1].len);
    return CMD_DONE;
}

/* QUIT */
int cmd_quit(req_t *r, int argc, bytes_t *argv)
{
    REPLY_OK(req_out(r));
    conn_close_after_reply(r->c);
    return CMD_DONE;
}

/*
 * RESET: the client's session back to a new connection's, as redis 7's RESET does for its own state —
 * MULTI discarded, the database a new client starts in (the URL's upstream), RESP2, no name, and no
 * longer authenticated when a password is set (cmd_session_reset). It is cachetoryd's session that is
 * reset: nothing reaches the upstream, whose connections other clients share (their database and
 * authentication are the backend URL's and stay so).
 */
int cmd_reset(req_t *r, int argc, bytes_t *argv)
{
    cmd_session_reset(r->c);
    reply_status(req_out(r), "RESET");
    return CMD_DONE;
}

/*
 * Authentication, as redis 7 with only its default user: with no requirepass the default user has no
 * password, any password opens it, and every client counts as authenticated — also one that connected
 * while a password was set, once a reload removes it. A client authenticated once (by AUTH, or by
 * connecting while there was no password) stays so when a reload adds a password. User names are
 * case-sensitive: "DEFAULT" is another user, which does not exist.
 */
static int auth_nopass(void)
{
    return cmd_session_nopass();
}

int cmd_auth_required(const client_t *c)
{
    return !cmd_session(c)->authenticated && !auth_nopass();
}

void cmd_auth_reconfigure(void)
{
    for (client_t *c = conn_first(cmd_ctx.srv); c != NULL; c = c->next)
        conn_set_authenticated(c, !cmd_auth_required(c));
}

static int auth_is_default_user(bytes_t user)
{
    return user.ptr == NULL || (user.len == 7 && memcmp(user.ptr, "default", 7) == 0);
}

/* Does user / pass open the default user? The password is compared with requirepass without leaking
 * where they differ through timing. user.ptr NULL: AUTH's one-argument form. */
static int auth_check(bytes_t user, bytes_t pass)
{
    const char *want = cmd_ctx.cfg->requirepass;
    size_t wn = want ? strlen(want) : 0;
    unsigned diff = (unsigned)(pass.len ^ wn);

    if (!auth_is_default_user(user))
        return 0;
    if (auth_nopass())
        return 1;
    for (size_t i = 0; i < pass.len; i++)
        diff |= (unsigned char)pass.ptr[i] ^ (unsigned char)want[i % wn];
    return diff == 0;
}

static void auth_grant(client_t *c)
{
    cmd_session(c)->authenticated = 1;
    conn_set_authenticated(c, 1);
}

/* AUTH [username] password */
int cmd_auth(req_t *r, int argc, bytes_t *argv)
{
    buf_t *out = req_out(r);

    if (argc > 3) {
        reply_error(out, ERR_SYNTAX);
        return CMD_DONE;
    }
    if (auth_nopass() && argc == 2) {
        reply_error(out, "ERR AUTH <password> called without any password configured for the default user. "
                         "Are you sure your configuration is correct?");
        return CMD_DONE;
    }
    if (!auth_check(argc == 3 ? argv[1] : (bytes_t){ NULL, 0 }, argv[argc - 1])) {
        reply_error(out, ERR_WRONGPASS);
        return CMD_DONE;
    }
    auth_grant(r->c);
    REPLY_OK(out);
    return CMD_DONE;
}

static int client_name_ok(bytes_t name)
{
    for (size_t i = 0; i < name.len; i++)
        if (name.ptr[i] < '!' || name.ptr[i] > '~')
            return 0;
    return 1;
}

static void client_set_name(cmd_session_t *s, bytes_t name)
{
    mem_free(s->name);
    s->name = name.len ? mem_strndup(name.ptr, name.len) : NULL;
}

/* HELLO [protover [AUTH username password] [SETNAME clientname]] */
int cmd_hello(req_t *r, int argc, bytes_t *argv)
{
    client_t *c = r->c;
    cmd_session_t *s = cmd_session(c);
    buf_t *out = req_out(r);
    long long ver = s->proto;
    bytes_t name = { NULL, 0 };
    int auth_at = 0;

    if (argc >= 2) {
        if (cmd_parse_ll(argv[1], &ver) < 0) {
            reply_error(out, "ERR Protocol version is not an integer or out of range");
            return CMD_DONE;
        }
        if (ver < 2 || ver > 3) {
            reply_error(out, "NOPROTO unsupported protocol version");
            return CMD_DONE;
        }
    }
    for (int i = 2; i < argc; i++) {
        int more = argc - i - 1;
        if (bytes_eq_nocase(argv[i], "auth") && more >= 2) {
            auth_at = i;
            i += 2;
        } else if (bytes_eq_nocase(argv[i], "setname") && more >= 1) {
            name = argv[++i];
            if (!client_name_ok(name)) {
                reply_error(out, "ERR Client names cannot contain spaces, newlines or special characters.");
                return CMD_DONE;
            }
        } else {
            reply_errorf(out, "ERR Syntax error in HELLO option '%.*s'", (int)(argv[i].len > 128 ? 128 : argv[i].len),
                         argv[i].ptr);
            return CMD_DONE;
        }
    }
    if (auth_at) {
        if (!auth_check(argv[auth_at + 1], argv[auth_at + 2])) {
            reply_error(out, ERR_WRONGPASS);
            return CMD_DONE;
        }
        auth_grant(c);
    }
    if (cmd_auth_required(c)) {
        reply_error(out, "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
                         "HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and "
                         "select the RESP protocol version at the same time");
        return CMD_DONE;
    }
    if (name.ptr != NULL)
        client_set_name(s, name);
    s->proto = (int)ver;
    reply_map(out, s->proto, 7);
    reply_bulk_str(out, "server");
    reply_bulk_str(out, "redis");
    reply_bulk_str(out, "version");
    reply_bulk_str(out, CACHETORYD_REDIS_VERSION);
    reply_bulk_str(out, "proto");
    reply_int(out, s->proto);
    reply_bulk_str(out, "id");
    reply_int(out, (long long)c->id);
    reply_bulk_str(out, "mode");
    reply_bulk_str(out, "standalone");
    reply_bulk_str(out, "role");
    reply_bulk_str(out, "master");
    reply_bulk_str(out, "modules");
    reply_array(out, 0);
    return CMD_DONE;
}

static void select_done_cb(void *ctx, const backend_result_t *res)
{
    req_t *r = ctx;

    if (res->status == BE_ERR) {
        reply_error(req_out(r), res->err);
    } else {
        cmd_session(r->c)->db = (int)cmd_scratch(r)->aux;
        REPLY_OK(req_out(r));
    }
    req_done(r);
}

/* SELECT index */
int cmd_select(req_t *r, int argc, bytes_t *argv)
{
    long long db;

    if (cmd_parse_ll(argv[1], &db) < 0) {
        reply_error(req_out(r), ERR_NOT_INT);
        return CMD_DONE;
    }
    if (db < INT32_MIN || db > INT32_MAX) {
        reply_error(req_out(r), "ERR value is out of range, value must between -2147483648 and 2147483647");
        return CMD_DONE;
    }
    if (db < 0 || db >= cmd_ctx.cfg->databases) {
        reply_error(req_out(r), "ERR DB index is out of range");
        return CMD_DONE;
    }
    if (!backend_forwards(cmd_ctx.backend)) {
        cmd_session(r->c)->db = (int)db;
        REPLY_OK(req_out(r));
        return CMD_DONE;
    }
    /* An upstream may have fewer databases than `databases`: it decides (backend BE_SELECT), and the
     * client's next commands wait for the answer, since the database they are for depends on it. */
    backend_op_t op = { .code = BE_SELECT, .db2 = (int)db };
    cmd_scratch(r)->aux = db;
    req_hold(r);                /* before: the backend may answer at once, and r is then done */
    return cmd_submit_raw(r, &op, select_done_cb);
}

/* CLIENT LIST [TYPE normal] [ID id ...]: one line per client. */
static void client_list(req_t *r, int argc, bytes_t *argv)
{
    buf_t text;
    buf_init(&text);

    if (argc == 2) {
        for (client_t *c = conn_first(cmd_ctx.srv); c != NULL; c = c->next)
            cmd_session_describe(c, &text);
    } else if (argc == 4 && bytes_eq_nocase(argv[2], "type")) {
        if (bytes_eq_nocase(argv[3], "normal")) {
            for (client_t *c = conn_first(cmd_ctx.srv); c != NULL; c = c->next)
                cmd_session_describe(c, &text);
        } else if (!bytes_eq_nocase(argv[3], "master") && !bytes_eq_nocase(argv[3], "replica") &&
                   !bytes_eq_nocase(argv[3], "pubsub")) {
            reply_errorf(req_out(r), "ERR Unknown client type '%.*s'", (int)argv[3].len, argv[3].ptr);
            buf_deinit(&text);
            return;
        }
    } else if (argc >= 4 && bytes_eq_nocase(argv[2], "id")) {
        for (int i = 3; i < argc; i++) {
            long long id;
            if (cmd_parse_ll(argv[i], &id) < 0 || id <= 0) {
                reply_error(req_out(r), "ERR Invalid client ID");
                buf_deinit(&text);
                return;
            }
            for (client_t *c = conn_first(cmd_ctx.srv); c != NULL; c = c->next)
                if (c->id == (uint64_t)id)
                    cmd_session_describe(c, &text);
        }
    } else {
        reply_error(req_out(r), ERR_SYNTAX);
        buf_deinit(&text);
        return;
    }
    reply_verbatim(req_out(r), cmd_proto(r), text.data ? text.data : "", text.len);
    buf_deinit(&text);
}

/* CLIENT KILL ID id | CLIENT KILL ip:port (the old form) */
static void client_kill(req_t *r, int argc, bytes_t *argv)
{
    buf_t *out = req_out(r);

    if (argc == 3) {
        for (client_t *c = conn_first(cmd_ctx.srv); c != NULL; c = c->next) {
            if (strlen(c->addr) == argv[2].len && memcmp(c->addr, argv[2].ptr, argv[2].len) == 0) {
                REPLY_OK(out);
                if (c == r->c)
                    conn_close_after_reply(c);
                else
                    conn_close(c);
                return;
            }
        }
        reply_error(out, "ERR No such client");
        return;
    }
    /* The filter form: every filter given must match; SKIPME yes (the default) spares the caller. */
    long long id = 0, maxage = 0;
    bytes_t addr = { NULL, 0 }, laddr = { NULL, 0 }, user = { NULL, 0 };
    int skipme = 1, type_ok = 1;
    for (int i = 2; i < argc; i += 2) {
        bytes_t v = i + 1 < argc ? argv[i + 1] : (bytes_t){ NULL, 0 };
        if (v.ptr == NULL) {
            reply_error(out, ERR_SYNTAX);
            return;
        }
        if (bytes_eq_nocase(argv[i], "id")) {
            if (cmd_parse_ll(v, &id) < 0 || id <= 0) {
                reply_error(out, "ERR client-id should be greater than 0");
                return;
            }
        } else if (bytes_eq_nocase(argv[i], "addr")) {
            addr = v;
        } else if (bytes_eq_nocase(argv[i], "laddr")) {
            laddr = v;
        } else if (bytes_eq_nocase(argv[i], "user")) {
            user = v;
        } else if (bytes_eq_nocase(argv[i], "maxage")) {
            if (cmd_parse_ll(v, &maxage) < 0) {
                reply_error(out, ERR_NOT_INT);
                return;
            }
        } else if (bytes_eq_nocase(argv[i], "type")) {
            if (bytes_eq_nocase(v, "normal"))
                type_ok = 1;
            else if (bytes_eq_nocase(v, "master") || bytes_eq_nocase(v, "replica") || bytes_eq_nocase(v, "slave") ||
                     bytes_eq_nocase(v, "pubsub"))
                type_ok = 0;
            else {
                reply_errorf(out, "ERR Unknown client type '%.*s'", (int)(v.len > 128 ? 128 : v.len), v.ptr);
                return;
            }
        } else if (bytes_eq_nocase(argv[i], "skipme")) {
            if (bytes_eq_nocase(v, "yes"))
                skipme = 1;
            else if (bytes_eq_nocase(v, "no"))
                skipme = 0;
            else {
                reply_error(out, ERR_SYNTAX);
                return;
            }
        } else {
            reply_error(out, ERR_SYNTAX);
            return;
        }
    }
    long long killed = 0, now = clock_ms();
    client_t *c = conn_first(cmd_ctx.srv);
    while (c != NULL && type_ok) {
        client_t *next = c->next;
        int match = (id == 0 || c->id == (uint64_t)id) &&
                    (addr.ptr == NULL || (strlen(c->addr) == addr.len && !memcmp(c->addr, addr.ptr, addr.len))) &&
                    (laddr.ptr == NULL || (strlen(c->laddr) == laddr.len && !memcmp(c->laddr, laddr.ptr, laddr.len))) &&
                    (user.ptr == NULL || bytes_eq_nocase(user, "default")) &&
                    (maxage == 0 || (now - c->ctime_ms) / 1000 >= maxage) && !(skipme && c == r->c);
        if (match) {
            killed++;
            if (c == r->c)
                conn_close_after_reply(c);
            else
                conn_close(c);
        }
        c = next;
    }
    reply_int(out, killed);
}

/* "on" / "off" as CLIENT's switches take them: 1, 0, or -1 after writing Redis's syntax error. */
static int client_switch(buf_t *out, bytes_t arg)
{
    if (bytes_eq_nocase(arg, "on"))
        return 1;
    if (bytes_eq_nocase(arg, "off"))
        return 0;
    reply_error(out, "ERR syntax error");
    return -1;
}

/*
 * The client-side caching subcommands. cachetoryd has no server-assisted client-side caching (its near
 * cache is its own, in front of the upstream), so no connection is ever in tracking mode, and each
 * subcommand answers what Redis answers a connection that is not:
 *   TRACKING OFF      OK (it is off); TRACKING ON: refused, saying so — the client would wait for
 *                     invalidation messages that never come and serve stale values;
 *   TRACKINGINFO      flags "off", redirect -1, no prefixes;
 *   GETREDIR          -1;
 *   CACHING yes|no    Redis's own error for a connection not in tracking mode.
 */
static void client_tracking(req_t *r, int argc, bytes_t *argv)
{
    buf_t *out = req_out(r);
    bytes_t sub = argv[1];

    if (bytes_eq_nocase(sub, "tracking")) {
        int on = client_switch(out, argv[2]);
        if (on == 1)
            reply_error(out, "ERR CLIENT TRACKING ON is not supported by cachetoryd: it sends no invalidation "
                             "messages, so a client-side cache would keep stale values; connect to Redis "
                             "directly for it");
        else if (on == 0)
            REPLY_OK(out);
    } else if (bytes_eq_nocase(sub, "trackinginfo")) {
        reply_map(out, cmd_proto(r), 3);
        reply_bulk_str(out, "flags");
        reply_set(out, cmd_proto(r), 1);
        reply_bulk_str(out, "off");
        reply_bulk_str(out, "redirect");
        reply_int(out, -1);
        reply_bulk_str(out, "prefixes");
        reply_array(out, 0);
    } else if (bytes_eq_nocase(sub, "getredir")) {
        reply_int(out, -1);
    } else {
        reply_error(out, "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN "
                         "or OPTOUT mode enabled");
    }
}

/* CLIENT ID | SETNAME | GETNAME | SETINFO | LIST | KILL | INFO | TRACKING | TRACKINGINFO | GETREDIR | CACHING |
 * NO-EVICT | NO-TOUCH | HELP */
int cmd_client(req_t *r, int argc, bytes_t *argv)
{
    client_t *c = r->c;
    cmd_session_t *s = cmd_session(c);
    buf_t *out = req_out(r);
    bytes_t sub = argv[1];

    if (bytes_eq_nocase(sub, "id") && argc == 2) {
        reply_int(out, (long long)c->id);
    } else if (bytes_eq_nocase(sub, "getname") && argc == 2) {
        s->name ? reply_bulk_str(out, s->name) : reply_null(out, s->proto);
    } else if (bytes_eq_nocase(sub, "setname") && argc == 3) {
        if (!client_name_ok(argv[2])) {
            reply_error(out, "ERR Client names cannot contain spaces, newlines or special characters.");
        } else {
            client_set_name(s, argv[2]);
            REPLY_OK(out);
        }
    } else if (bytes_eq_nocase(sub, "setinfo") && argc == 4) {
        char **field = bytes_eq_nocase(argv[2], "lib-name") ? &s->lib_name
                       : bytes_eq_nocase(argv[2], "lib-ver") ? &s->lib_ver : NULL;
        if (field == NULL) {
            reply_errorf(out, "ERR Unrecognized option '%.*s'", (int)(argv[2].len > 128 ? 128 : argv[2].len),
                         argv[2].ptr);
        } else if (!client_name_ok(argv[3])) {
            reply_errorf(out, "ERR %s cannot contain spaces, newlines or special characters.",
                         field == &s->lib_name ? "lib-name" : "lib-ver");
        } else {
            mem_free(*field);
            *field = argv[3].len ? mem_strndup(argv[3].ptr, argv[3].len) : NULL;
            REPLY_OK(out);
        }
    } else if (bytes_eq_nocase(sub, "list")) {
        client_list(r, argc, argv);
    } else if (bytes_eq_nocase(sub, "info") && argc == 2) {
        buf_t text;
        buf_init(&text);
        cmd_session_describe(c, &text);
        reply_verbatim(out, s->proto, text.data, text.len);
        buf_deinit(&text);
    } else if (bytes_eq_nocase(sub, "kill") && argc >= 3) {
        client_kill(r, argc, argv);
    } else if (bytes_eq_nocase(sub, "tracking") || bytes_eq_nocase(sub, "trackinginfo") ||
               bytes_eq_nocase(sub, "getredir") || bytes_eq_nocase(sub, "caching")) {
        client_tracking(r, argc, argv);
    } else if (bytes_eq_nocase(sub, "no-evict") && argc == 3) {
        /* Redis exempts the client from maxmemory-clients eviction; cachetoryd evicts no client for the
         * memory clients use (its output-buffer limits apply to every client, as Redis's apply even with
         * NO-EVICT), so either setting is already what it asks: accepted */
        if (client_switch(out, argv[2]) >= 0)
            REPLY_OK(out);
    } else if (bytes_eq_nocase(sub, "no-touch") && argc == 3) {
        /* OFF is how every connection reads here; ON would need reads that leave the keys' LRU/LFU alone,
         * which neither the memory store nor the shared upstream connections can do for one client */
        int on = client_switch(out, argv[2]);
        if (on == 1)
            reply_error(out, "ERR CLIENT NO-TOUCH ON is not supported by cachetoryd: reads still update the "
                             "keys' LRU/LFU access time");
        else if (on == 0)
            REPLY_OK(out);
    } else {
        static const char *const help[] = {
            "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "CACHING (YES|NO)", "    Only in tracking mode, which cachetoryd does not support.",
            "GETNAME", "    Return the name of the current connection.",
            "GETREDIR", "    Return the ID tracking notifications are redirected to: always -1 here.",
            "ID", "    Return the ID of the current connection.",
            "INFO", "    Return information about the current client connection.",
            "KILL <ip:port> | ID <client-id> [ID ...]", "    Kill connections.",
            "LIST [TYPE normal] [ID <id> [<id> ...]]", "    Return information about client connections.",
            "NO-EVICT (ON|OFF)", "    Accepted: cachetoryd never evicts clients.",
            "NO-TOUCH (ON|OFF)", "    OFF only: reads update the keys' LRU/LFU access time.",
            "SETINFO <LIB-NAME|LIB-VER> <value>", "    Set client library name or version.",
            "SETNAME <name>", "    Assign the name <name> to the current connection.",
            "TRACKING (ON|OFF) [...]", "    OFF only: cachetoryd has no server-assisted client-side caching.",
            "TRACKINGINFO", "    Return tracking information: always off here.",
        };
        CMD_REPLY_HELP(out, help);
    }
    return CMD_DONE;
}
