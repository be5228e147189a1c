/*
 * backend/redis/timeout: the upstream's clock, every 50 ms (up_tick_cb): connections that take too long to
 * connect or to finish their handshake, commands that take too long to answer (not a blocking command,
 * which may wait as long as its client asked), tasks waiting too long for a connection, and a server
 * certificate that expired while connected. A connection that fails here fails what it holds (pool.c).
 */
#include "backend/redis/redis_int.h"

#include "net/tls.h"
#include "util/clock.h"

/* Is a blocking command (BE_BLOCKS, on a dedicated connection) awaiting its reply on c? It may wait as long
 * as the client asked, and what was sent behind it waits with it. */
static int conn_blocked(const up_conn_t *c)
{
    if (!c->dedicated)
        return 0;
    for (const up_slot_t *s = c->slots; s != NULL; s = s->next)
        if (s->task != NULL && (s->task->op.flags & BE_BLOCKS))
            return 1;
    return 0;
}

/* Connect and command timeouts of c, and a server certificate that expired while connected. */
void up_conn_tick(up_conn_t *c, long long now)
{
    upstream_t *up = c->up;

    if ((c->state == UP_CONNECTING || c->state == UP_HANDSHAKE) &&
        now - c->state_since_us > up->connect_timeout_us) {
        up->ntimeouts++;
        if (c->state == UP_HANDSHAKE && c->w.tls != NULL && !tls_handshake_done(c->w.tls))
            up_conn_fail(c, "TLS handshake timed out after %lld ms", up->connect_timeout_us / 1000);
        else
            up_conn_fail(c, "could not connect within %lld ms", up->connect_timeout_us / 1000);
    } else if (c->state == UP_READY && c->w.tls != NULL && up->tls_verify != TLS_VERIFY_NONE &&
               tls_peer_not_after(c->w.tls) != 0 && clock_ms() / 1000 >= tls_peer_not_after(c->w.tls)) {
        /* verified when it was made, no longer valid: made again, it fails the check */
        up_conn_fail(c, "the server's certificate expired");
    } else if (c->slots != NULL && now - c->slots->sent_us > up->command_timeout_us && !conn_blocked(c)) {
        up->ntimeouts++;
        up_conn_fail(c, "timed out after %lld ms", up->command_timeout_us / 1000);
    } else if (c->tasks != NULL && c->active == NULL && c->state != UP_READY &&
               now - c->tasks->queued_us > up->command_timeout_us) {
        up->ntimeouts++;
        up_conn_fail(c, "timed out after %lld ms waiting for a connection", up->command_timeout_us / 1000);
    }
}

/* Every 50 ms: connections that take too long to connect, commands that take too long to answer. */
void up_tick_cb(uv_timer_t *h)
{
    upstream_t *up = h->data;
    long long now = clock_us_monotonic();

    route_map_request(up);
    if (up->parked != NULL)
        route_unpark(up, 0);

    for (int k = 0; k < up_nconns(up); k++)
        up_conn_tick(up_conn_at(up, k), now);
    for (int k = 0; k < up_nconns(up); k++)
        up_conn_tick(up_conn3_at(up, k), now);
    if (up->track != NULL)
        up_track_tick(up, now);
    up_ded_tick(up, now);
}

