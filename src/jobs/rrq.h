/*
 * rrq.h - a round-robin queue of work ids by owner, with a cap on each
 * owner's work in progress. Internal to src/jobs (the fetch stage uses it
 * for batch items by account); kept free of threads and I/O so it can be
 * tested alone and reused by a queue kept elsewhere (a database queue
 * would pick "the next account after the last one served" the same way).
 *
 * Each owner with work has a lane: a FIFO of ids and a count of ids taken
 * and not yet given back (active). Lanes sit in a ring; bgr_rrq_pop serves
 * the lane after the one it served last, skipping lanes at the cap, so an
 * owner with 20 waiting ids gets one turn per round like an owner with 1,
 * and never more than `cap` at once. A new owner's lane joins just before
 * the lane served next: every owner already in the ring gets one turn
 * before it. A lane lives while it has ids waiting or active.
 *
 * Costs: push and done are O(owners) (a linear search: owners with work
 * waiting are few next to the items, and bounded by the backlog); pop is
 * O(owners) in the worst case. Not thread-safe: the caller locks.
 */
#ifndef BGR_JOBS_RRQ_H
#define BGR_JOBS_RRQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BGR_RRQ_KEY_MAX 64 /* owner keys (account ids) up to 63 bytes */

struct bgr_rrq_lane;

struct bgr_rrq {
    struct bgr_rrq_lane *cursor; /* the lane served next; NULL when no lanes */
    size_t n_lanes;
    size_t waiting; /* ids queued in all lanes */
    size_t active;  /* ids taken and not given back */
};

void bgr_rrq_init(struct bgr_rrq *q);
/* Frees every lane and the ids still queued. */
void bgr_rrq_release(struct bgr_rrq *q);

/* Appends id to owner key's lane (created at the end of the round if it
 * has none). key is copied (longer keys are cut at BGR_RRQ_KEY_MAX - 1,
 * which is above any account id). Aborts on out-of-memory (the queue is
 * bounded by its caller's backlog limit). */
void bgr_rrq_push(struct bgr_rrq *q, const char *key, int64_t id);
/* Takes the next id round-robin from a lane with fewer than cap active
 * ids (cap <= 0: no cap); counts it active and copies its owner to key
 * (BGR_RRQ_KEY_MAX bytes). False when no lane may be served now (empty,
 * or every waiting lane at its cap). */
bool bgr_rrq_pop(struct bgr_rrq *q, int cap, int64_t *id, char *key);
/* Gives back one active id of owner key (after its work ended). */
void bgr_rrq_done(struct bgr_rrq *q, const char *key);
/* Ids of owner key queued (not active); 0 for an unknown owner. */
size_t bgr_rrq_waiting_of(const struct bgr_rrq *q, const char *key);

#endif
