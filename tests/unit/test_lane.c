/*
 * Unit tests for src/backend/redis/lane.c: which pool connection a client's op goes on. Checked against
 * a plain model (an array of every client's count and connection) through random holds and releases, so
 * that the table's growth and its deletion by backward shift keep every client where its tasks are.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend/redis/redis_int.h"

#define NPOOL 4

static up_conn_t conns[NPOOL];

static void setup_up(upstream_t *up)
{
    memset(up, 0, sizeof(*up));
    up->npool = NPOOL;
    memset(conns, 0, sizeof(conns));
    for (int i = 0; i < NPOOL; i++) {
        conns[i].index = i;
        conns[i].state = UP_READY;
    }
}

static void test_sticky_while_in_flight(void **state)
{
    (void)state;
    upstream_t up;
    up_task_t a = { 0 }, b = { 0 };

    setup_up(&up);
    a.up = b.up = &up;
    a.op.affinity = b.op.affinity = 7;
    assert_int_equal(up_lane(&up, conns, 7), 0);            /* the turn's */
    up_lane_hold(&up, &a, &conns[0]);
    up_lane_next_turn(&up);
    assert_int_equal(up_lane(&up, conns, 7), 0);            /* in flight: stays */
    assert_int_equal(up_lane(&up, conns, 8), 1);            /* another client: this turn's */
    up_lane_hold(&up, &b, &conns[0]);
    up_lane_release(&a);
    assert_int_equal(up_lane(&up, conns, 7), 0);            /* b still in flight */
    up_lane_release(&b);
    assert_int_equal(up_lane(&up, conns, 7), 1);            /* nothing in flight: free again */
    assert_int_equal(up.lane_used, 0);
    up_lane_free(&up);
}

static void test_skips_a_connection_that_is_down(void **state)
{
    (void)state;
    upstream_t up;

    setup_up(&up);
    conns[0].state = UP_DOWN;
    conns[1].state = UP_DOWN;
    assert_int_equal(up_lane(&up, conns, 3), 2);
    for (int i = 0; i < NPOOL; i++)
        conns[i].state = UP_DOWN;
    assert_int_equal(up_lane(&up, conns, 3), 0);            /* all down: the turn's, to fail at once */
    up_lane_free(&up);
}

static void test_not_on_dedicated_or_cluster(void **state)
{
    (void)state;
    upstream_t up;
    up_conn_t ded = { 0 };
    up_task_t t = { 0 };

    setup_up(&up);
    t.up = &up;
    t.op.affinity = 5;
    ded.dedicated = 1;
    up_lane_hold(&up, &t, &ded);
    assert_int_equal(t.lane_held, 0);
    up.cluster = 1;
    up_lane_hold(&up, &t, &conns[2]);
    assert_int_equal(t.lane_held, 0);
    assert_int_equal(up.lane_used, 0);
    up_lane_free(&up);
}

#define CLIENTS 3000
#define TASKS   20000

static void test_random_against_a_model(void **state)
{
    (void)state;
    static up_task_t tasks[TASKS];
    static int inflight[CLIENTS], where[CLIENTS];
    int live[TASKS], nlive = 0;
    upstream_t up;
    unsigned seed = 12345;

    setup_up(&up);
    memset(inflight, 0, sizeof(inflight));
    for (int step = 0; step < 400000; step++) {
        seed = seed * 1103515245u + 12345u;
        unsigned r = seed >> 8;
        if (nlive < TASKS && (nlive == 0 || r % 100 < 52)) {
            /* clustered affinities (many collide in the table), and a few far apart */
            int cl = (int)(r % CLIENTS);
            uint64_t aff = cl % 7 == 0 ? (uint64_t)cl << 40 : (uint64_t)cl;
            int idx = up_lane(&up, conns, aff);
            if (inflight[cl] > 0)
                assert_int_equal(idx, where[cl]);
            int slot = -1;
            for (int i = 0; i < TASKS; i++)
                if (!tasks[(step + i) % TASKS].lane_held && tasks[(step + i) % TASKS].up == NULL) {
                    slot = (step + i) % TASKS;
                    break;
                }
            assert_true(slot >= 0);
            up_task_t *t = &tasks[slot];
            memset(t, 0, sizeof(*t));
            t->up = &up;
            t->op.affinity = aff;
            t->retries = cl;                    /* the model's client, kept with the task */
            up_lane_hold(&up, t, &conns[idx]);
            assert_int_equal(t->lane_held, 1);
            where[cl] = idx;
            inflight[cl]++;
            live[nlive++] = slot;
        } else {
            int k = (int)(r % (unsigned)nlive);
            up_task_t *t = &tasks[live[k]];
            up_lane_release(t);
            inflight[t->retries]--;
            t->up = NULL;
            live[k] = live[--nlive];
        }
        if (step % 4000 == 0) {
            up_lane_next_turn(&up);
            /* every client with tasks in flight is found where they are */
            size_t n = 0;
            for (int cl = 0; cl < CLIENTS; cl++)
                n += inflight[cl] > 0;
            assert_int_equal(up.lane_used, n);
        }
    }
    while (nlive > 0) {
        up_task_t *t = &tasks[live[--nlive]];
        up_lane_release(t);
        t->up = NULL;
    }
    assert_int_equal(up.lane_used, 0);
    up_lane_free(&up);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sticky_while_in_flight),
        cmocka_unit_test(test_skips_a_connection_that_is_down),
        cmocka_unit_test(test_not_on_dedicated_or_cluster),
        cmocka_unit_test(test_random_against_a_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
