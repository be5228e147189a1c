/*
 * cmd/session: the command layer's context and a client's session (see cmd/session.h): created and
 * freed through net's connection hooks, reset by RESET, shown by CLIENT LIST / CLIENT INFO.
 */
#include "cmd/session.h"

#include <stdalign.h>

#include "util/mem.h"

cmd_ctx_t cmd_ctx;

_Static_assert(alignof(cmd_scratch_t) <= alignof(max_align_t), "req_t.scratch cannot hold cmd_scratch_t");

size_t cmd_req_size(void)
{
    return sizeof(req_t) + sizeof(cmd_scratch_t);
}

void cmd_set_backend(backend_t *b)
{
    cmd_ctx.backend = b;
    cmd_ctx.default_db = b->default_db;     /* for clients from now on; connected ones keep theirs */
}

req_t *cmd_req_create(client_t *c)
{
    req_t *r = req_create(c);
    cmd_scratch_t *x = cmd_scratch(r);

    x->stat = NULL;
    x->variant = 0;
    x->aux = 0;
    return r;
}

/* Also where error replies are counted (cmd/stats.c): r->reply is what r's client was sent, and a
 * non-error costs one byte compare. */
void cmd_req_recycle_cb(req_t *r, int destroy)
{
    cmd_scratch_t *x = cmd_scratch(r);
    buf_t *keep = &x->keep;

    if (r->reply.len > 0 && (r->reply.ptr[0] == '-' || r->reply.ptr[0] == '!'))
        cmd_stats_reply_error(x->stat, r->reply);
    x->stat = NULL;              /* a req net makes itself (a protocol error) has none */

    if (destroy) {
        buf_deinit(keep);
        return;
    }
    buf_reset(keep);
    buf_shrink(keep, 0);
}

int cmd_session_nopass(void)
{
    const char *pass = cmd_ctx.cfg->requirepass;
    return pass == NULL || pass[0] == '\0';
}

void cmd_session_open_cb(client_t *c)
{
    cmd_session_t *s = mem_calloc(1, sizeof(*s));

    s->proto = 2;
    s->db = cmd_ctx.default_db;
    s->authenticated = cmd_session_nopass();
    s->last_cmd = "NULL";
    c->session = s;
    conn_set_authenticated(c, s->authenticated);
}

void cmd_session_free_cb(client_t *c)
{
    cmd_session_t *s = c->session;

    if (s == NULL)
        return;
    cmd_multi_reset(s);
    mem_free(s->mqueue);
    mem_free(s->name);
    mem_free(s->lib_name);
    mem_free(s->lib_ver);
    mem_free(s);
    c->session = NULL;
}

void cmd_session_unwatch(cmd_session_t *s)
{
    backend_unwatch(s->watch);
    s->watch = NULL;
    cmd_session_unpin(s, PIN_WATCH, 0);
}

/*
 * The client starts closing while it holds a pin: handed back now rather than when its last command
 * answers, and closed, not handed back, while a blocking command waits on it (that ends the command, whose
 * reply goes nowhere; nothing can then pop what the client would never read).
 */
static void session_closing_cb(client_t *c)
{
    cmd_session_t *s = cmd_session(c);

    if (s != NULL)
        cmd_session_unpin(s, s->pin_for, s->nblocked > 0);
}

int cmd_session_pin(client_t *c, unsigned why, char *err, size_t errlen)
{
    cmd_session_t *s = cmd_session(c);

    if (s->pin == NULL && backend_pin(cmd_ctx.backend, c->id, &s->pin, err, errlen) < 0) {
        s->pin = NULL;
        return -1;
    }
    s->pin_for |= why;
    c->closing_cb = session_closing_cb;
    return 0;
}

void cmd_session_unpin(cmd_session_t *s, unsigned why, int close)
{
    if (why & PIN_SUB)
        s->nsub = s->npsub = s->nssub = 0;
    s->pin_for &= ~why;
    if (s->pin_for == 0 && s->pin != NULL) {
        backend_pin_t *p = s->pin;
        s->pin = NULL;              /* first: closing it fails what waits on it, whose callbacks come here */
        backend_unpin(p, close);
    }
}

void cmd_multi_reset(cmd_session_t *s)
{
    for (int i = 0; i < s->mcount; i++)
        mem_free(s->mqueue[i].argv);
    s->mcount = 0;
    s->flags &= ~(SESSION_MULTI | SESSION_DIRTY_EXEC);
    cmd_session_unwatch(s);
}

/*
 * RESET: MULTI discarded and nothing watched, the database a new client starts in (the URL's upstream), RESP2, no name, and
 * no longer authenticated when a password is set.
 */
void cmd_session_reset(client_t *c)
{
    cmd_session_t *s = cmd_session(c);

    cmd_multi_reset(s);
    cmd_session_unpin(s, s->pin_for, s->nblocked > 0);     /* no subscription either */
    s->db = cmd_ctx.default_db;
    s->proto = 2;
    mem_free(s->name);
    s->name = NULL;
    s->authenticated = cmd_session_nopass();
    conn_set_authenticated(c, s->authenticated);
}

void cmd_session_describe(const client_t *c, buf_t *out)
{
    const cmd_session_t *s = cmd_session(c);
    conn_facts_t f;
    char flags[16];
    int nf = 0;

    conn_facts(c, &f);
    if (s->pin_for & PIN_SUB)
        flags[nf++] = 'P';
    if (s->flags & SESSION_MULTI)
        flags[nf++] = 'x';
    if (s->pin_for & PIN_BLOCK)
        flags[nf++] = 'b';
    if (f.close_after_reply)
        flags[nf++] = 'c';
    if (c->flags & CLIENT_UNIX)
        flags[nf++] = 'U';
    if (nf == 0)
        flags[nf++] = 'N';
    flags[nf] = '\0';
    buf_printf(out,
               "id=%llu addr=%s laddr=%s fd=%d name=%s age=%lld idle=%lld flags=%s db=%d sub=%d psub=%d "
               "ssub=%d multi=%d qbuf=%zu qbuf-free=%zu argv-mem=0 multi-mem=0 rbs=%zu rbp=0 obl=0 oll=0 "
               "omem=%zu tot-mem=%zu events=r cmd=%s user=default redir=-1 resp=%d lib-name=%s lib-ver=%s\n",
               (unsigned long long)c->id, c->addr, c->laddr, -1, s->name ? s->name : "", f.age_s, f.idle_s,
               flags, s->db, s->nsub, s->npsub, s->nssub, (s->flags & SESSION_MULTI) ? s->mcount : -1, f.qbuf, f.qbuf_free, f.rbs, f.omem,
               f.tot_mem + sizeof(*s), s->last_cmd, s->proto, s->lib_name ? s->lib_name : "",
               s->lib_ver ? s->lib_ver : "");
}
