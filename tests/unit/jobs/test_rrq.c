/* Unit tests of the round-robin queue of the fetch stage (src/jobs/rrq.h):
 * turns alternate between owners whatever their backlog, the per-owner
 * cap holds, a new owner joins at the end of the round, lanes go away when
 * drained, and a large random run keeps the counts and the FIFO order of
 * each owner. */
#include "jobs/rrq.h"
#include "runner.h"

#include <stdlib.h>
#include <string.h>

static int64_t pop_ok(struct bgr_rrq *q, int cap, char *key)
{
    int64_t id = -1;
    BGR_CHECK(bgr_rrq_pop(q, cap, &id, key));
    return id;
}

BGR_TEST(alternates_between_owners)
{
    struct bgr_rrq q;
    char key[BGR_RRQ_KEY_MAX];
    bgr_rrq_init(&q);
    /* A queues 20 first, then B queues 2: B is served on the second pop,
     * not after A's 20. */
    for (int i = 0; i < 20; i++)
        bgr_rrq_push(&q, "acct_A", 100 + i);
    bgr_rrq_push(&q, "acct_B", 200);
    bgr_rrq_push(&q, "acct_B", 201);
    BGR_CHECK_EQ_INT((int)q.waiting, 22);
    BGR_CHECK_EQ_INT(pop_ok(&q, 0, key), 100);
    BGR_CHECK_STR(key, "acct_A");
    BGR_CHECK_EQ_INT(pop_ok(&q, 0, key), 200);
    BGR_CHECK_STR(key, "acct_B");
    BGR_CHECK_EQ_INT(pop_ok(&q, 0, key), 101);
    BGR_CHECK_EQ_INT(pop_ok(&q, 0, key), 201);
    /* B is drained: A alone now, in its own order */
    BGR_CHECK_EQ_INT(pop_ok(&q, 0, key), 102);
    BGR_CHECK_EQ_INT(pop_ok(&q, 0, key), 103);
    BGR_CHECK_EQ_INT((int)q.active, 6);
    bgr_rrq_release(&q);
}

BGR_TEST(cap_per_owner)
{
    struct bgr_rrq q;
    char key[BGR_RRQ_KEY_MAX];
    int64_t id;
    bgr_rrq_init(&q);
    for (int i = 0; i < 5; i++)
        bgr_rrq_push(&q, "slow", i);
    BGR_CHECK_EQ_INT(pop_ok(&q, 2, key), 0);
    BGR_CHECK_EQ_INT(pop_ok(&q, 2, key), 1);
    /* at its cap: nothing more for "slow" ... */
    BGR_CHECK(!bgr_rrq_pop(&q, 2, &id, key));
    /* ... but another owner is served at once */
    bgr_rrq_push(&q, "other", 50);
    BGR_CHECK_EQ_INT(pop_ok(&q, 2, key), 50);
    BGR_CHECK_STR(key, "other");
    BGR_CHECK(!bgr_rrq_pop(&q, 2, &id, key));
    bgr_rrq_done(&q, "slow");
    BGR_CHECK_EQ_INT(pop_ok(&q, 2, key), 2);
    BGR_CHECK_STR(key, "slow");
    BGR_CHECK_EQ_INT((int)bgr_rrq_waiting_of(&q, "slow"), 2);
    /* no cap: everything comes out */
    BGR_CHECK_EQ_INT(pop_ok(&q, 0, key), 3);
    BGR_CHECK_EQ_INT(pop_ok(&q, 0, key), 4);
    BGR_CHECK(!bgr_rrq_pop(&q, 0, &id, key));
    bgr_rrq_release(&q);
}

BGR_TEST(new_owner_joins_at_end_of_round)
{
    struct bgr_rrq q;
    char key[BGR_RRQ_KEY_MAX];
    bgr_rrq_init(&q);
    bgr_rrq_push(&q, "A", 1);
    bgr_rrq_push(&q, "A", 2);
    bgr_rrq_push(&q, "B", 10);
    bgr_rrq_push(&q, "B", 11);
    bgr_rrq_push(&q, "C", 20);
    BGR_CHECK_EQ_INT(pop_ok(&q, 0, key), 1); /* A; B is next */
    bgr_rrq_push(&q, "D", 30); /* every owner waiting gets its turn first */
    BGR_CHECK_EQ_INT(pop_ok(&q, 0, key), 10);
    BGR_CHECK_EQ_INT(pop_ok(&q, 0, key), 20);
    BGR_CHECK_EQ_INT(pop_ok(&q, 0, key), 2);
    BGR_CHECK_EQ_INT(pop_ok(&q, 0, key), 30);
    BGR_CHECK_EQ_INT(pop_ok(&q, 0, key), 11);
    bgr_rrq_release(&q);
}

BGR_TEST(lanes_freed_when_drained)
{
    struct bgr_rrq q;
    char key[BGR_RRQ_KEY_MAX];
    bgr_rrq_init(&q);
    bgr_rrq_push(&q, "A", 1);
    bgr_rrq_push(&q, "B", 2);
    BGR_CHECK_EQ_INT((int)q.n_lanes, 2);
    BGR_CHECK_EQ_INT(pop_ok(&q, 1, key), 1);
    /* empty but active: the lane stays (it holds the cap count) */
    BGR_CHECK_EQ_INT((int)q.n_lanes, 2);
    bgr_rrq_done(&q, "A");
    BGR_CHECK_EQ_INT((int)q.n_lanes, 1);
    BGR_CHECK_EQ_INT(pop_ok(&q, 1, key), 2);
    bgr_rrq_done(&q, key);
    BGR_CHECK_EQ_INT((int)q.n_lanes, 0);
    BGR_CHECK(q.cursor == NULL);
    BGR_CHECK_EQ_INT((int)(q.waiting + q.active), 0);
    /* usable again after being emptied */
    bgr_rrq_push(&q, "A", 3);
    BGR_CHECK_EQ_INT(pop_ok(&q, 1, key), 3);
    bgr_rrq_done(&q, "A");
    bgr_rrq_release(&q);
}

/* Random pushes, pops and dones over 7 owners with cap 2: the counts
 * always add up, no owner ever has more than 2 active, each owner's ids
 * come out in push order, and a pop fails exactly when no owner with
 * work waiting is under its cap. */
BGR_TEST(random_run_keeps_invariants)
{
    enum { OWNERS = 7, CAP = 2, STEPS = 20000 };
    struct bgr_rrq q;
    int64_t next_push[OWNERS] = {0}, next_pop[OWNERS] = {0};
    int active[OWNERS] = {0};
    size_t waiting = 0, act = 0;
    unsigned seed = 12345;
    bgr_rrq_init(&q);
    for (int step = 0; step < STEPS; step++) {
        int r = (int)(rand_r(&seed) % 10);
        int o = (int)(rand_r(&seed) % OWNERS);
        char key[BGR_RRQ_KEY_MAX], name[8];
        snprintf(name, sizeof name, "o%d", o);
        if (r < 4) {
            bgr_rrq_push(&q, name, (int64_t)o * 1000000 + next_push[o]++);
            waiting++;
        } else if (r < 7) {
            int64_t id;
            bool any = false;
            for (int k = 0; k < OWNERS; k++)
                any = any || (next_push[k] > next_pop[k] && active[k] < CAP);
            if (bgr_rrq_pop(&q, CAP, &id, key)) {
                int who = atoi(key + 1);
                BGR_CHECK(any);
                BGR_CHECK_EQ_INT(id, (int64_t)who * 1000000 + next_pop[who]++);
                active[who]++;
                BGR_CHECK(active[who] <= CAP);
                waiting--;
                act++;
            } else {
                BGR_CHECK(!any);
            }
        } else if (active[o] > 0) {
            bgr_rrq_done(&q, name);
            active[o]--;
            act--;
        }
        BGR_CHECK_EQ_INT((int)q.waiting, (int)waiting);
        BGR_CHECK_EQ_INT((int)q.active, (int)act);
    }
    bgr_rrq_release(&q);
}

/* Fairness in numbers: owner A has 100 waiting, owners B..E one each,
 * pushed after A's. With a cap of 2, each of B..E is served within the
 * first 5 pops. */
BGR_TEST(small_owners_not_behind_a_big_one)
{
    struct bgr_rrq q;
    char key[BGR_RRQ_KEY_MAX];
    int served_small = 0;
    bgr_rrq_init(&q);
    for (int i = 0; i < 100; i++)
        bgr_rrq_push(&q, "A", i);
    bgr_rrq_push(&q, "B", 1000);
    bgr_rrq_push(&q, "C", 1001);
    bgr_rrq_push(&q, "D", 1002);
    bgr_rrq_push(&q, "E", 1003);
    for (int i = 0; i < 6; i++) {
        int64_t id;
        if (!bgr_rrq_pop(&q, 2, &id, key))
            break;
        if (id >= 1000)
            served_small++;
    }
    BGR_CHECK_EQ_INT(served_small, 4);
    bgr_rrq_release(&q);
}

BGR_TEST_MAIN()
