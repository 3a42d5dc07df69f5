/*
 * plan.c - the activation memory plan: one arena per model, each tensor at a
 * fixed offset, tensors whose lifetimes (first..last step) overlap never
 * sharing bytes. Planned once at load, so a run allocates nothing.
 *
 * Greedy by decreasing size, each tensor at the lowest offset that clears
 * every already-placed tensor alive at the same time: simple, and within a
 * few per cent of optimal on conv nets (ggml-alloc and TFLite do similar).
 */
#include "infer/graph.h"

#include <stdlib.h>

#define ALIGN 64

struct item {
    size_t size;
    int id;
};

static int by_size_desc(const void *a, const void *b)
{
    const struct item *x = a, *y = b;
    if (x->size != y->size)
        return x->size < y->size ? 1 : -1;
    return x->id - y->id; /* deterministic */
}

static int overlaps_life(const struct bgr_value *a, const struct bgr_value *b)
{
    return a->first <= b->last && b->first <= a->last;
}

size_t bgr_plan_offsets(struct bgr_value *vals, const int *ids, int n)
{
    int *ord = bgr_xmalloc(((size_t)n + 1) * sizeof *ord);
    struct item *items = bgr_xmalloc(((size_t)n + 1) * sizeof *items);
    int placed = 0;
    size_t total = 0;
    for (int i = 0; i < n; i++)
        items[i] = (struct item){vals[ids[i]].size, ids[i]};
    qsort(items, (size_t)n, sizeof *items, by_size_desc);
    for (int i = 0; i < n; i++)
        ord[i] = items[i].id;
    free(items);
    for (int i = 0; i < n; i++) {
        struct bgr_value *v = &vals[ord[i]];
        size_t sz = (v->size + ALIGN - 1) / ALIGN * ALIGN;
        size_t best = (size_t)-1;
        /* candidate offsets: 0 and the end of every conflicting block */
        for (int c = -1; c < placed; c++) {
            size_t cand = 0;
            if (c >= 0) {
                const struct bgr_value *p = &vals[ord[c]];
                if (!overlaps_life(v, p))
                    continue;
                cand = (p->offset + p->size + ALIGN - 1) / ALIGN * ALIGN;
            }
            if (cand >= best)
                continue;
            int ok = 1;
            for (int k = 0; k < placed && ok; k++) {
                const struct bgr_value *p = &vals[ord[k]];
                if (overlaps_life(v, p) && cand < p->offset + p->size && p->offset < cand + sz)
                    ok = 0;
            }
            if (ok)
                best = cand;
        }
        v->offset = best;
        placed++;
        if (best + sz > total)
            total = best + sz;
    }
    free(ord);
    return total;
}
