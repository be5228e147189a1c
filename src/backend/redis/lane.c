/*
 * backend/redis/lane: which pool connection of a single Redis a client's op goes on.
 *
 * A client's ops must reach Redis in its order, so while it has any in flight (sent or queued) they all
 * go where the first went. A client with nothing in flight may go anywhere: its earlier commands have
 * all been answered. Those go on the connection of the loop turn (up->lane_turn, the next one each turn
 * the connections are flushed), so that at pipeline 1 — every client waiting for its answer before it
 * sends again — what a turn reads from many clients leaves in one write on one connection instead of
 * one per connection: fewer system calls, and with TLS fewer records, per command. A pipelining client
 * stays on its connection as long as it keeps commands in flight. A client with nothing in flight also
 * passes over a connection that is down (reconnecting) when another is up.
 *
 * The clients with tasks in flight are counted in an open-addressing table (linear probing, deletion by
 * backward shift, so no tombstones): client affinity -> connection index, tasks. A task counts from its
 * submission (up_lane_hold) to its free (up_task_free). Batches (MULTI ... EXEC) count as one task.
 * Dedicated connections, the tracking connection and a cluster's nodes do not use lanes.
 */
#include "backend/redis/redis_int.h"

#include <string.h>

#include "util/mem.h"

#define LANE_MIN 64

struct up_lane_slot {
    uint64_t affinity;
    unsigned n;                 /* tasks in flight; 0: the slot is free */
    int index;                  /* the pool connection they are on */
};

static size_t lane_home(const upstream_t *up, uint64_t affinity)
{
    return (size_t)((affinity * 0x9E3779B97F4A7C15ull) >> 32) & (up->lane_cap - 1);
}

static struct up_lane_slot *lane_find(const upstream_t *up, uint64_t affinity)
{
    if (up->lane_cap == 0)
        return NULL;
    for (size_t i = lane_home(up, affinity);; i = (i + 1) & (up->lane_cap - 1)) {
        struct up_lane_slot *s = &up->lanes[i];
        if (s->n == 0)
            return NULL;
        if (s->affinity == affinity)
            return s;
    }
}

int up_lane(const upstream_t *up, const up_conn_t *set, uint64_t affinity)
{
    const struct up_lane_slot *s = lane_find(up, affinity);

    if (s != NULL)
        return s->index;
    /* free to go anywhere: past a connection that is down (reconnecting after a failure) */
    for (int k = 0; k < up->npool; k++) {
        int i = (up->lane_turn + k) % up->npool;
        if (!up_conn_down(&set[i]))
            return i;
    }
    return up->lane_turn;
}

static void lane_put(upstream_t *up, uint64_t affinity, int index, unsigned n)
{
    size_t i = lane_home(up, affinity);
    while (up->lanes[i].n != 0)
        i = (i + 1) & (up->lane_cap - 1);
    up->lanes[i] = (struct up_lane_slot){ affinity, n, index };
}

static void lane_grow(upstream_t *up)
{
    struct up_lane_slot *old = up->lanes;
    size_t oldcap = up->lane_cap;

    up->lane_cap = oldcap ? oldcap * 2 : LANE_MIN;
    up->lanes = mem_calloc(up->lane_cap, sizeof(*up->lanes));
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].n != 0)
            lane_put(up, old[i].affinity, old[i].index, old[i].n);
    mem_free(old);
}

void up_lane_hold(upstream_t *up, up_task_t *t, const up_conn_t *c)
{
    if (up->cluster || c->dedicated || c->tracker)
        return;
    struct up_lane_slot *s = lane_find(up, t->op.affinity);
    if (s != NULL) {
        s->n++;
    } else {
        if ((up->lane_used + 1) * 2 > up->lane_cap)
            lane_grow(up);
        lane_put(up, t->op.affinity, c->index, 1);
        up->lane_used++;
    }
    t->lane_held = 1;
}

void up_lane_release(up_task_t *t)
{
    upstream_t *up = t->up;
    struct up_lane_slot *s = lane_find(up, t->op.affinity);

    t->lane_held = 0;
    if (s == NULL || --s->n > 0)
        return;
    /* backward shift: each later slot of the run moves into the hole unless it is already at or after
     * its home, counting cyclically from the hole */
    size_t mask = up->lane_cap - 1, hole = (size_t)(s - up->lanes);
    for (size_t j = (hole + 1) & mask; up->lanes[j].n != 0; j = (j + 1) & mask) {
        size_t home = lane_home(up, up->lanes[j].affinity);
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            up->lanes[hole] = up->lanes[j];
            hole = j;
        }
    }
    up->lanes[hole].n = 0;
    up->lane_used--;
}

void up_lane_next_turn(upstream_t *up)
{
    if (++up->lane_turn >= up->npool)
        up->lane_turn = 0;
}

void up_lane_free(upstream_t *up)
{
    mem_free(up->lanes);
    up->lanes = NULL;
    up->lane_cap = up->lane_used = 0;
}
