/*
 * rrq.c - the round-robin queue of rrq.h: a ring of lanes, one per owner,
 * each a growable FIFO of ids.
 */
#include "jobs/rrq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

struct bgr_rrq_lane {
    struct bgr_rrq_lane *prev, *next; /* the ring */
    char key[BGR_RRQ_KEY_MAX];
    int64_t *ids; /* FIFO ring of cap slots */
    size_t head, len, cap;
    int active;
};

void bgr_rrq_init(struct bgr_rrq *q)
{
    memset(q, 0, sizeof(*q));
}

static void lane_free(struct bgr_rrq_lane *l)
{
    free(l->ids);
    free(l);
}

void bgr_rrq_release(struct bgr_rrq *q)
{
    struct bgr_rrq_lane *l = q->cursor;
    for (size_t i = 0; i < q->n_lanes; i++) {
        struct bgr_rrq_lane *next = l->next;
        lane_free(l);
        l = next;
    }
    memset(q, 0, sizeof(*q));
}

static struct bgr_rrq_lane *find(const struct bgr_rrq *q, const char *key)
{
    struct bgr_rrq_lane *l = q->cursor;
    for (size_t i = 0; i < q->n_lanes; i++, l = l->next)
        if (strncmp(l->key, key, BGR_RRQ_KEY_MAX - 1) == 0)
            return l;
    return NULL;
}

/* Unlinks and frees a lane with nothing waiting or active. */
static void drop_lane(struct bgr_rrq *q, struct bgr_rrq_lane *l)
{
    BGR_ASSERT(l->len == 0 && l->active == 0);
    if (q->n_lanes == 1) {
        q->cursor = NULL;
    } else {
        l->prev->next = l->next;
        l->next->prev = l->prev;
        if (q->cursor == l)
            q->cursor = l->next;
    }
    q->n_lanes--;
    lane_free(l);
}

void bgr_rrq_push(struct bgr_rrq *q, const char *key, int64_t id)
{
    struct bgr_rrq_lane *l = find(q, key);
    if (!l) {
        l = bgr_xcalloc(1, sizeof(*l));
        (void)snprintf(l->key, sizeof(l->key), "%s", key);
        if (!q->cursor) {
            l->prev = l->next = l;
            q->cursor = l;
        } else { /* just before the cursor: the end of the current round */
            l->next = q->cursor;
            l->prev = q->cursor->prev;
            l->prev->next = l;
            q->cursor->prev = l;
        }
        q->n_lanes++;
    }
    if (l->len == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        int64_t *v = bgr_xcalloc(cap, sizeof(*v));
        for (size_t i = 0; i < l->len; i++)
            v[i] = l->ids[(l->head + i) % l->cap];
        free(l->ids);
        l->ids = v;
        l->cap = cap;
        l->head = 0;
    }
    l->ids[(l->head + l->len) % l->cap] = id;
    l->len++;
    q->waiting++;
}

bool bgr_rrq_pop(struct bgr_rrq *q, int cap, int64_t *id, char *key)
{
    struct bgr_rrq_lane *l = q->cursor;
    for (size_t i = 0; i < q->n_lanes; i++, l = l->next) {
        if (l->len == 0 || (cap > 0 && l->active >= cap))
            continue;
        *id = l->ids[l->head];
        l->head = (l->head + 1) % l->cap;
        l->len--;
        l->active++;
        q->waiting--;
        q->active++;
        memcpy(key, l->key, BGR_RRQ_KEY_MAX);
        q->cursor = l->next; /* the next owner goes next */
        return true;
    }
    return false;
}

void bgr_rrq_done(struct bgr_rrq *q, const char *key)
{
    struct bgr_rrq_lane *l = find(q, key);
    BGR_ASSERT(l && l->active > 0); /* only what pop handed out comes back */
    l->active--;
    q->active--;
    if (l->len == 0 && l->active == 0)
        drop_lane(q, l);
}

size_t bgr_rrq_waiting_of(const struct bgr_rrq *q, const char *key)
{
    const struct bgr_rrq_lane *l = find(q, key);
    return l ? l->len : 0;
}
