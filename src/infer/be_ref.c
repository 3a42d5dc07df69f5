/*
 * be_ref.c - the reference backend: the prepared graph's steps on ref.c's
 * kernels over plain NCHW fp32 tensors in one planned arena. Also the
 * lifetime analysis both backends plan from.
 */
#include "infer/backend.h"

#include <stdlib.h>
#include <string.h>

struct bgr_ref_be {
    float *arena; /* owned */
    size_t arena_size;
};

int bgr_graph_lifetimes(struct bgr_graph *g, int **ids)
{
    int n = 0;
    int *list = bgr_xmalloc(((size_t)g->nvals + 1) * sizeof *list);
    for (int v = 0; v < g->nvals; v++)
        g->vals[v].first = g->vals[v].last = -1;
    /* the graph input is live from before the first step */
    g->vals[g->input].first = 0;
    g->vals[g->input].last = 0;
    for (int k = 0; k < g->norder; k++) {
        const struct bgr_node *nd = &g->nodes[g->order[k]];
        for (int i = 0; i < nd->nin; i++) {
            struct bgr_value *v = nd->in[i] >= 0 ? &g->vals[nd->in[i]] : NULL;
            if (v && v->kind == BGR_VAL_ACT && v->last < k)
                v->last = k;
        }
        struct bgr_value *o = &g->vals[nd->out];
        o->first = k;
        if (o->last < k)
            o->last = k;
    }
    g->vals[g->output].last = g->norder; /* read after the last step */
    for (int v = 0; v < g->nvals; v++)
        if (g->vals[v].kind == BGR_VAL_ACT && g->vals[v].alias < 0 && g->vals[v].first >= 0)
            list[n++] = v;
    *ids = list;
    return n;
}

int bgr_ref_be_new(struct bgr_graph *g, struct bgr_ref_be **out, struct bgr_error *err)
{
    int *ids = NULL, n = bgr_graph_lifetimes(g, &ids);
    for (int i = 0; i < n; i++)
        g->vals[ids[i]].size = (size_t)bgr_act_count(&g->vals[ids[i]]) * sizeof(float);
    size_t total = bgr_plan_offsets(g->vals, ids, n);
    free(ids);
    if (total > BGR_MAX_ARENA)
        return bgr_error_set(err, BGR_EMODEL, "the model needs %zu MiB of activations (limit %zu)",
                             total >> 20, BGR_MAX_ARENA >> 20);
    struct bgr_ref_be *b = bgr_xcalloc(1, sizeof *b);
    b->arena_size = total;
    b->arena = aligned_alloc(64, total ? total : 64);
    if (!b->arena) {
        free(b);
        return bgr_error_set(err, BGR_ENOMEM, "reference backend: cannot allocate %zu bytes",
                             total);
    }
    *out = b;
    return 0;
}

static float *at(struct bgr_ref_be *b, const struct bgr_graph *g, int v)
{
    return (float *)((char *)b->arena + g->vals[v].offset);
}

void bgr_ref_be_run(struct bgr_ref_be *b, const struct bgr_graph *g, const float *in, float *out,
                    double *op_ms)
{
    const struct bgr_value *vi = &g->vals[g->input], *vo = &g->vals[g->output];
    memcpy(at(b, g, g->input), in, (size_t)bgr_act_count(vi) * sizeof(float));
    for (int k = 0; k < g->norder; k++) {
        const struct bgr_node *nd = &g->nodes[g->order[k]];
        const struct bgr_value *x = &g->vals[nd->in[0]], *o = &g->vals[nd->out];
        const float *src = at(b, g, nd->in[0]);
        float *dst = at(b, g, nd->out);
        size_t n = (size_t)bgr_act_count(o);
        double t0 = op_ms ? bgr_now_sec() : 0;
        switch (nd->op) {
        case BGR_OP_CONV:
            bgr_ref_conv(&nd->conv, src, x->dims,
                         nd->conv.sum_in ? at(b, g, nd->in[nd->conv.sum_in]) : NULL, dst, o->dims);
            break;
        case BGR_OP_MAXPOOL:
            bgr_ref_maxpool(&nd->pool, src, x->dims, dst, o->dims);
            break;
        case BGR_OP_RESIZE:
            bgr_ref_resize(&nd->rs, src, x->dims, dst, o->dims);
            break;
        case BGR_OP_RELU:
            bgr_ref_relu(src, dst, n);
            break;
        case BGR_OP_SIGMOID:
            bgr_ref_sigmoid(src, dst, n);
            break;
        case BGR_OP_ADD:
            bgr_ref_add(src, at(b, g, nd->in[1]), dst, n);
            break;
        case BGR_OP_CONCAT: {
            const float *srcs[BGR_MAX_INPUTS];
            int64_t sd[BGR_MAX_INPUTS][4];
            for (int i = 0; i < nd->nin; i++) {
                srcs[i] = at(b, g, nd->in[i]);
                memcpy(sd[i], g->vals[nd->in[i]].dims, sizeof sd[i]);
            }
            bgr_ref_concat(nd->nin, srcs, (const int64_t(*)[4])sd, dst, o->dims);
            break;
        }
        default:
            BGR_ASSERT(!"op not executable"); /* prepare left only these */
        }
        if (op_ms)
            op_ms[nd->op] += (bgr_now_sec() - t0) * 1e3;
    }
    memcpy(out, at(b, g, g->output), (size_t)bgr_act_count(vo) * sizeof(float));
}

size_t bgr_ref_be_bytes(const struct bgr_ref_be *b)
{
    return b->arena_size;
}

void bgr_ref_be_free(struct bgr_ref_be *b)
{
    if (!b)
        return;
    free(b->arena);
    free(b);
}
