/*
 * backend/redis/tracking: Redis's server-assisted client-side caching (CLIENT TRACKING), feeding the near
 * cache, over RESP2: hiredis 0.14 reads no RESP3 push, and RESP2's redirect mode needs none.
 *
 * One more connection to the server, the invalidation connection: AUTH, CLIENT ID, then SUBSCRIBE
 * __redis__:invalidate (in broadcast mode CLIENT TRACKING ON REDIRECT <its own id> BCAST PREFIX p...
 * first). Redis publishes on it the keys that change:
 *   - default mode: keys read by the pool connections, each of which says CLIENT TRACKING ON REDIRECT
 *     <that id> (again after it reconnects, and again for a new invalidation connection);
 *   - broadcast mode (near-cache-prefixes): every key under the prefixes, whoever reads it.
 * A message whose payload is null means every key (FLUSHDB / FLUSHALL).
 *
 * Sessions: a session begins each time the invalidation connection is subscribed (track->session). A
 * read is tracked when the connection it came on had its CLIENT TRACKING confirmed in the current session
 * (Redis answers in order, so that OK came before the read's reply), or, in broadcast mode, whenever a
 * session is on. The PTTL / GET pair of BE_WITHTTL needs no atomicity: both are tracked reads, so any
 * write between them brings an invalidation.
 *
 * What the cache is told (backend_track_cb): ON when subscribed; OFF with the reason when the invalidation
 * connection fails (closed, killed, its PING not answered within upstream-command-timeout, CLIENT or
 * SUBSCRIBE refused), since changes may then go untold; LOST when a pool connection whose reads were
 * tracked fails (Redis forgets a client's tracking with it); KEYS / ALL for each message. The
 * invalidation connection reconnects with the pool's backoff.
 */
#include "backend/redis/redis_int.h"

#include <stdio.h>
#include <string.h>

#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

#define TRACK_CHANNEL "__redis__:invalidate"
#define TRACK_KEYS_ON_STACK 64

/* The invalidation connection's commands, by the tag of their slot. */
enum { TAG_ID = 1, TAG_BCAST, TAG_SUBSCRIBE, TAG_PING };

typedef struct up_track {
    up_conn_t conn;                 /* the invalidation connection (conn.tracker = 1) */
    backend_track_cb *cb;           /* the cache's callback; NULL once stopped */
    void *ctx;
    char **prefixes;                /* broadcast mode's prefixes (copies), nprefixes 0: default mode */
    size_t *prefix_lens;
    size_t nprefixes;
    long long ping_us;              /* PING interval */
    long long id;                   /* CLIENT ID of the invalidation connection, 0 until known */
    unsigned long long session;     /* counts subscriptions; pool connections' track_session compare to it */
    int on;                         /* subscribed: invalidations flow */
    int stopped;                    /* untracked: nothing more is sent or told */
    int ping_inflight;
    long long ping_sent_us;
    unsigned long long messages;    /* invalidation messages received */
    unsigned long long keys;        /* keys they named */
    unsigned long long flushes;     /* messages with a null payload */
    unsigned long long losses;      /* OFF and LOST told */
    char why[200];                  /* why it is off, "" while on */
} up_track_t;

static void track_tell(up_track_t *tr, enum backend_track_event ev, const bytes_t *keys, size_t n, const char *why)
{
    if (tr->cb != NULL && !tr->stopped)
        tr->cb(tr->ctx, ev, keys, n, why);
}

up_conn_t *up_track_conn(upstream_t *up)
{
    return &up->track->conn;
}

/* One of the invalidation connection's commands, with tag on its slot. */
static void track_send(up_conn_t *c, unsigned long long tag, int argc, const bytes_t *argv)
{
    up_conn_send_argv(c, NULL, SLOT_TRACKER, -1, argc, argv);
    c->slots_tail->tag = tag;
}

void up_track_handshake(up_conn_t *c)
{
    bytes_t argv[2] = { B("CLIENT"), B("ID") };
    c->up->track->id = 0;
    track_send(c, TAG_ID, 2, argv);
}

/* CLIENT ID answered: broadcast mode's CLIENT TRACKING on itself, then SUBSCRIBE. */
static void track_subscribe(up_conn_t *c, up_track_t *tr)
{
    if (tr->nprefixes > 0) {
        size_t argc = 6 + 2 * tr->nprefixes;
        bytes_t *argv = mem_alloc(argc * sizeof(*argv));
        char id[24];
        int len = snprintf(id, sizeof(id), "%lld", tr->id);
        argv[0] = B("CLIENT");
        argv[1] = B("TRACKING");
        argv[2] = B("ON");
        argv[3] = B("REDIRECT");
        argv[4] = (bytes_t){ id, (size_t)len };
        argv[5] = B("BCAST");
        for (size_t i = 0; i < tr->nprefixes; i++) {
            argv[6 + 2 * i] = B("PREFIX");
            argv[7 + 2 * i] = (bytes_t){ tr->prefixes[i], tr->prefix_lens[i] };
        }
        track_send(c, TAG_BCAST, (int)argc, argv);
        mem_free(argv);
    }
    bytes_t sub[2] = { B("SUBSCRIBE"), B(TRACK_CHANNEL) };
    track_send(c, TAG_SUBSCRIBE, 2, sub);
}

/* Subscribed: a session begins; the pool connections are asked to track for it. */
static void track_on(up_conn_t *c, up_track_t *tr)
{
    upstream_t *up = c->up;

    c->state = UP_READY;
    c->state_since_us = clock_us_monotonic();
    c->retry_ms = 0;
    if (c->last_error[0])
        log_notice("upstream %s invalidation connection: connected again", c->node->name);
    c->last_error[0] = '\0';
    tr->session++;
    tr->on = 1;
    tr->why[0] = '\0';
    tr->ping_inflight = 0;
    tr->ping_sent_us = c->state_since_us;
    track_tell(tr, BE_TRACK_ON, NULL, 0, NULL);
    for (int k = 0; k < up_nconns(up); k++)
        up_track_conn_ready(up_conn_at(up, k));
}

void up_track_reply(up_conn_t *c, unsigned long long tag, const redisReply *r)
{
    up_track_t *tr = c->up->track;

    if (r->type == REDIS_REPLY_ERROR) {
        up_conn_fail(c, "tracking refused: %s", r->str);
        return;
    }
    switch (tag) {
    case TAG_ID:
        if (r->type != REDIS_REPLY_INTEGER || r->integer <= 0) {
            up_conn_fail(c, "tracking refused: CLIENT ID did not answer a client id");
            return;
        }
        tr->id = r->integer;
        track_subscribe(c, tr);
        break;
    case TAG_SUBSCRIBE:
        track_on(c, tr);
        break;
    case TAG_PING:
        tr->ping_inflight = 0;
        break;
    default:                        /* TAG_BCAST: OK */
        break;
    }
}

/*
 * ["message", channel, payload] on the invalidation connection: payload is the keys (an array), or null
 * for every key. Anyone may PUBLISH to the channel: whatever the payload, the worst it does is drop
 * entries, so a payload of another shape drops them all.
 */
int up_track_push(up_conn_t *c, const redisReply *r)
{
    up_track_t *tr = c->up->track;

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || r->element[0]->type != REDIS_REPLY_STRING ||
        r->element[0]->len != 7 || memcmp(r->element[0]->str, "message", 7) != 0)
        return 0;
    tr->messages++;
    const redisReply *p = r->element[2];
    if (p->type == REDIS_REPLY_STRING) {
        bytes_t key = { p->str, p->len };
        tr->keys++;
        track_tell(tr, BE_TRACK_KEYS, &key, 1, NULL);
        return 1;
    }
    if (p->type != REDIS_REPLY_ARRAY) {
        tr->flushes++;
        track_tell(tr, BE_TRACK_ALL, NULL, 0, NULL);
        return 1;
    }
    bytes_t stack[TRACK_KEYS_ON_STACK];
    bytes_t *keys = p->elements <= TRACK_KEYS_ON_STACK ? stack : mem_alloc(p->elements * sizeof(*keys));
    size_t n = 0;
    for (size_t i = 0; i < p->elements; i++) {
        const redisReply *e = p->element[i];
        if (e->type != REDIS_REPLY_STRING) {
            n = SIZE_MAX;
            break;
        }
        keys[n++] = (bytes_t){ e->str, e->len };
    }
    if (n == SIZE_MAX) {
        tr->flushes++;
        track_tell(tr, BE_TRACK_ALL, NULL, 0, NULL);
    } else {
        tr->keys += n;
        track_tell(tr, BE_TRACK_KEYS, keys, n, NULL);
    }
    if (keys != stack)
        mem_free(keys);
    return 1;
}

/* Default mode: a pool connection that can take a command and lacks tracking for this session gets it.
 * Not while a transaction owns the connection (it would land inside MULTI). */
void up_track_conn_ready(up_conn_t *c)
{
    up_track_t *tr = c->up->track;

    if (c->tracker || tr->stopped || !tr->on || tr->nprefixes > 0 || c->track_sent == tr->session ||
        c->active != NULL || (c->state != UP_READY && c->state != UP_HANDSHAKE))
        return;
    char id[24];
    int len = snprintf(id, sizeof(id), "%lld", tr->id);
    bytes_t argv[5] = { B("CLIENT"), B("TRACKING"), B("ON"), B("REDIRECT"), { id, (size_t)len } };
    up_conn_send_argv(c, NULL, SLOT_TRACK, -1, 5, argv);
    c->slots_tail->tag = tr->session;
    c->track_sent = tr->session;
}

void up_track_conn_reply(up_conn_t *c, unsigned long long tag, const redisReply *r)
{
    up_track_t *tr = c->up->track;

    if (r->type == REDIS_REPLY_ERROR) {
        /* its reads are not kept; the connection itself serves on */
        log_warn("upstream %s connection %d: CLIENT TRACKING refused (%s): the near cache keeps nothing read "
                 "through it", c->node->name, c->index, r->str);
        return;
    }
    if (tag == tr->session)
        c->track_session = tag;
}

int up_track_tracked(const up_conn_t *c)
{
    const up_track_t *tr = c->up->track;
    return tr != NULL && tr->on && !tr->stopped && (tr->nprefixes > 0 || c->track_session == tr->session);
}

void up_track_conn_lost(up_conn_t *c, const char *why)
{
    up_track_t *tr = c->up->track;

    if (c->tracker) {
        int was_on = tr->on;
        tr->on = 0;
        tr->ping_inflight = 0;
        tr->id = 0;
        if (was_on || strcmp(tr->why, why) != 0) {
            snprintf(tr->why, sizeof(tr->why), "%s", why);
            tr->losses++;
            track_tell(tr, BE_TRACK_OFF, NULL, 0, tr->why);
        }
        return;
    }
    if (tr->on && c->track_session == tr->session) {
        char msg[240];
        snprintf(msg, sizeof(msg), "upstream %s connection %d: %s", c->node->name, c->index, why);
        tr->losses++;
        track_tell(tr, BE_TRACK_LOST, NULL, 0, msg);
    }
    c->track_session = c->track_sent = 0;
}

void up_track_tick(upstream_t *up, long long now_us)
{
    up_track_t *tr = up->track;
    up_conn_t *c = &tr->conn;

    if (tr->stopped)
        return;
    up_conn_tick(c, now_us);
    if (c->state == UP_READY && tr->on && !tr->ping_inflight && now_us - tr->ping_sent_us >= tr->ping_us) {
        bytes_t argv[1] = { B("PING") };
        track_send(c, TAG_PING, 1, argv);
        tr->ping_inflight = 1;
        tr->ping_sent_us = now_us;
    }
}

void up_track_info(upstream_t *up, buf_t *out)
{
    const up_track_t *tr = up->track;
    int tracked = 0;

    if (tr == NULL) {
        buf_printf(out, "upstream_tracking:off\r\n");
        return;
    }
    for (int k = 0; k < up_nconns(up); k++)
        tracked += up_track_tracked(up_conn_at(up, k));
    buf_printf(out,
               "upstream_tracking:%s\r\nupstream_tracking_mode:%s\r\nupstream_tracking_client_id:%lld\r\n"
               "upstream_tracking_connections:%d\r\nupstream_tracking_messages:%llu\r\n"
               "upstream_tracking_keys:%llu\r\nupstream_tracking_flushes:%llu\r\nupstream_tracking_losses:%llu\r\n"
               "upstream_tracking_last_error:%s\r\n",
               tr->on ? "on" : "off", tr->nprefixes ? "bcast" : "default", tr->id, tracked, tr->messages, tr->keys,
               tr->flushes, tr->losses, tr->conn.last_error);
}

/* Stop for good: nothing more is told, the connection closes and does not come back. */
void up_track_stop(upstream_t *up)
{
    up_track_t *tr = up->track;
    up_conn_t *c = &tr->conn;

    tr->cb = NULL;
    tr->stopped = 1;
    tr->on = 0;
    if (c->state != UP_DOWN)
        up_conn_fail(c, "tracking stopped");
    uv_timer_stop(&c->retry);
}

void up_track_free(upstream_t *up)
{
    up_track_t *tr = up->track;

    if (tr == NULL)
        return;
    up_conn_deinit(&tr->conn);
    for (size_t i = 0; i < tr->nprefixes; i++)
        mem_free(tr->prefixes[i]);
    mem_free(tr->prefixes);
    mem_free(tr->prefix_lens);
    mem_free(tr);
    up->track = NULL;
}

int redis_track(backend_t *b, const backend_track_opts_t *opts, backend_track_cb *cb, void *ctx, char *err,
                size_t errlen)
{
    upstream_t *up = (upstream_t *)b;

    if (opts == NULL) {
        if (up->track != NULL && !up->track->stopped)
            up_track_stop(up);
        return 0;
    }
    if (up->cluster) {
        snprintf(err, errlen, "the near cache does not work in front of a Redis Cluster (redis+cluster://)");
        return -1;
    }
    if (up->track != NULL) {
        snprintf(err, errlen, "the upstream is tracked already");
        return -1;
    }
    up_track_t *tr = mem_calloc(1, sizeof(*tr));
    tr->cb = cb;
    tr->ctx = ctx;
    tr->ping_us = (long long)(opts->ping_ms > 0 ? opts->ping_ms : 1000) * 1000;
    tr->nprefixes = opts->nprefixes;
    tr->prefixes = mem_calloc(tr->nprefixes ? tr->nprefixes : 1, sizeof(*tr->prefixes));
    tr->prefix_lens = mem_calloc(tr->nprefixes ? tr->nprefixes : 1, sizeof(*tr->prefix_lens));
    for (size_t i = 0; i < tr->nprefixes; i++) {
        tr->prefixes[i] = mem_alloc(opts->prefixes[i].len + 1);
        memcpy(tr->prefixes[i], opts->prefixes[i].ptr, opts->prefixes[i].len);
        tr->prefixes[i][opts->prefixes[i].len] = '\0';
        tr->prefix_lens[i] = opts->prefixes[i].len;
    }
    snprintf(tr->why, sizeof(tr->why), "connecting");
    up->track = tr;
    up_conn_init(&tr->conn, up->nodes[0], -1);
    tr->conn.tracker = 1;
    return 0;
}
