/*
 * graph.c - the passes that turn a loaded ONNX graph into steps to execute:
 * mark what the first output needs (dropping ISNet's side outputs), sort it
 * topologically (Kahn; the file's order is not topological), then in that
 * order fold every node whose inputs are constant for the fixed input shape
 * (fold.c), infer activation shapes, turn Cast/Identity on activations into
 * aliases (we compute in fp32 throughout) and fuse Conv+Relu and the Add of
 * a residual connection into the Conv before it.
 *
 * Everything here works on untrusted structure: cycles, dangling inputs,
 * constant operands where activations are expected and the reverse are all
 * BGR_EMODEL naming the node, never an assert.
 */
#include "infer/graph.h"
#include "infer/fold.h"

#include <stdlib.h>
#include <string.h>

static const char *const op_names[BGR_OP__COUNT] = {
    "Conv",    "Relu",     "Sigmoid", "MaxPool", "Resize",   "Concat", "Add",
    "Cast",    "Identity", "Shape",   "Slice",   "Constant", "Gather", "Unsqueeze",
    "Squeeze", "Reshape",  "Mul",     "Sub",     "Div",
};

const char *bgr_op_name(enum bgr_opk op)
{
    return op < BGR_OP__COUNT ? op_names[op] : "?";
}

/* ---- value table --------------------------------------------------------------- */

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

int bgr_graph_value_find(const struct bgr_graph *g, const char *name)
{
    if (!g->hash_cap)
        return -1;
    for (uint32_t i = hash_str(name);; i++) {
        int v = g->hash[i & (uint32_t)(g->hash_cap - 1)];
        if (v < 0)
            return -1;
        if (strcmp(g->vals[v].name, name) == 0)
            return v;
    }
}

static void hash_insert(struct bgr_graph *g, int v)
{
    for (uint32_t i = hash_str(g->vals[v].name);; i++) {
        int *slot = &g->hash[i & (uint32_t)(g->hash_cap - 1)];
        if (*slot < 0) {
            *slot = v;
            return;
        }
    }
}

int bgr_graph_value_get(struct bgr_graph *g, const char *name)
{
    int v = bgr_graph_value_find(g, name);
    if (v >= 0)
        return v;
    if (g->nvals == g->cap_vals) {
        g->cap_vals = g->cap_vals ? 2 * g->cap_vals : 64;
        g->vals = bgr_xrealloc(g->vals, (size_t)g->cap_vals * sizeof *g->vals);
    }
    if (2 * (g->nvals + 1) > g->hash_cap) { /* keep the load factor under 1/2 */
        free(g->hash);
        g->hash_cap = g->hash_cap ? 2 * g->hash_cap : 256;
        g->hash = bgr_xmalloc((size_t)g->hash_cap * sizeof *g->hash);
        for (int i = 0; i < g->hash_cap; i++)
            g->hash[i] = -1;
        for (int i = 0; i < g->nvals; i++)
            hash_insert(g, i);
    }
    v = g->nvals++;
    memset(&g->vals[v], 0, sizeof g->vals[v]);
    g->vals[v].name = bgr_xstrdup(name);
    g->vals[v].producer = -1;
    g->vals[v].alias = -1;
    hash_insert(g, v);
    return v;
}

int bgr_graph_resolve(const struct bgr_graph *g, int v)
{
    while (v >= 0 && g->vals[v].alias >= 0)
        v = g->vals[v].alias;
    return v;
}

void bgr_const_release(struct bgr_const *c)
{
    BGR_FREE_AND_NULL(c->f);
    BGR_FREE_AND_NULL(c->i);
}

void bgr_graph_drop_consts(struct bgr_graph *g)
{
    for (int i = 0; i < g->nvals; i++)
        bgr_const_release(&g->vals[i].c);
    for (int i = 0; i < g->nnodes; i++)
        g->nodes[i].conv.w = g->nodes[i].conv.b = NULL;
}

void bgr_graph_release(struct bgr_graph *g)
{
    for (int i = 0; i < g->nvals; i++) {
        free(g->vals[i].name);
        bgr_const_release(&g->vals[i].c);
    }
    for (int i = 0; i < g->nnodes; i++) {
        free(g->nodes[i].name);
        free(g->nodes[i].op_type);
    }
    free(g->vals);
    free(g->nodes);
    free(g->order);
    free(g->hash);
    memset(g, 0, sizeof *g);
}

int64_t bgr_act_count(const struct bgr_value *v)
{
    return v->dims[0] * v->dims[1] * v->dims[2] * v->dims[3];
}

/* ---- needed set and order ---------------------------------------------------------- */

int bgr_graph_mark_needed(struct bgr_graph *g, struct bgr_error *err)
{
    int *stack = bgr_xmalloc((size_t)(g->nvals + 1) * sizeof *stack);
    int *seen = bgr_xcalloc((size_t)g->nvals + 1, sizeof *seen);
    int sp = 0, rc = 0;
    stack[sp++] = g->output;
    seen[g->output] = 1;
    g->secondary = -1;
    while (sp > 0) {
        int v = stack[--sp];
        const struct bgr_value *val = &g->vals[v];
        int prod = val->producer;
        if (prod == -2) {
            if (g->secondary < 0)
                g->secondary = v;
            prod = val->sec_node;
        }
        if (prod < 0) {
            if (!val->init && v != g->input && val->kind != BGR_VAL_CONST) {
                rc = bgr_error_set(err, BGR_EMODEL,
                                   "tensor '%s' is used but no node, initializer or input "
                                   "defines it",
                                   val->name);
                goto out;
            }
            continue;
        }
        struct bgr_node *nd = &g->nodes[prod];
        nd->needed = 1;
        for (int i = 0; i < nd->nin; i++) {
            int u = nd->in[i];
            if (u >= 0 && !seen[u]) {
                seen[u] = 1;
                stack[sp++] = u;
            }
        }
    }
out:
    free(stack);
    free(seen);
    return rc;
}

/* Kahn's algorithm over the needed nodes; ties keep the file's order. */
static int topo_sort(struct bgr_graph *g, struct bgr_error *err)
{
    int n = g->nnodes, rc = 0, head = 0, tail = 0;
    int *indeg = bgr_xcalloc((size_t)n + 1, sizeof *indeg);
    int *start = bgr_xcalloc((size_t)n + 2, sizeof *start);
    int *edges = NULL, *fill = NULL, nedges = 0;
    int *queue = bgr_xmalloc(((size_t)n + 1) * sizeof *queue);
    /* edges producer -> consumer, in CSR form */
    for (int j = 0; j < n; j++) {
        if (!g->nodes[j].needed)
            continue;
        for (int i = 0; i < g->nodes[j].nin; i++) {
            int u = g->nodes[j].in[i];
            int p = u >= 0 ? g->vals[u].producer : -1;
            if (p >= 0) {
                start[p + 1]++;
                indeg[j]++;
                nedges++;
            }
        }
    }
    for (int p = 0; p < n; p++)
        start[p + 1] += start[p];
    edges = bgr_xmalloc(((size_t)nedges + 1) * sizeof *edges);
    fill = bgr_xmalloc(((size_t)n + 1) * sizeof *fill);
    memcpy(fill, start, (size_t)n * sizeof *fill);
    for (int j = 0; j < n; j++) {
        if (!g->nodes[j].needed)
            continue;
        for (int i = 0; i < g->nodes[j].nin; i++) {
            int u = g->nodes[j].in[i];
            int p = u >= 0 ? g->vals[u].producer : -1;
            if (p >= 0)
                edges[fill[p]++] = j;
        }
    }
    int needed = 0;
    for (int j = 0; j < n; j++) {
        if (g->nodes[j].needed) {
            needed++;
            if (indeg[j] == 0)
                queue[tail++] = j;
        }
    }
    while (head < tail) {
        int p = queue[head++];
        for (int e = start[p]; e < start[p + 1]; e++)
            if (--indeg[edges[e]] == 0)
                queue[tail++] = edges[e];
    }
    if (tail != needed) {
        int culprit = 0;
        for (int j = 0; j < n; j++)
            if (g->nodes[j].needed && indeg[j] > 0) {
                culprit = j;
                break;
            }
        rc = bgr_error_set(err, BGR_EMODEL, "the graph has a cycle through node '%s' (%s)",
                           g->nodes[culprit].name, g->nodes[culprit].op_type);
        goto out;
    }
    g->order = queue;
    g->norder = tail;
    queue = NULL;
out:
    free(indeg);
    free(start);
    free(edges);
    free(fill);
    free(queue);
    return rc;
}

/* ---- fusion and bookkeeping ---------------------------------------------------------- */

/* Conv followed by Relu, where the Conv's result feeds nothing else and is
 * not the graph output, becomes one Conv with a ReLU post-op. */
static void fuse_conv_relu(struct bgr_graph *g)
{
    int *uses = bgr_xcalloc((size_t)g->nvals + 1, sizeof *uses);
    int out = bgr_graph_resolve(g, g->output);
    for (int k = 0; k < g->norder; k++) {
        const struct bgr_node *nd = &g->nodes[g->order[k]];
        if (nd->folded) /* a folded Shape reads only the shape, which fusion keeps */
            continue;
        for (int i = 0; i < nd->nin; i++)
            if (nd->in[i] >= 0)
                uses[bgr_graph_resolve(g, nd->in[i])]++;
    }
    for (int k = 0; k < g->norder; k++) {
        struct bgr_node *r = &g->nodes[g->order[k]];
        if (r->op != BGR_OP_RELU)
            continue;
        int x = bgr_graph_resolve(g, r->in[0]);
        int p = g->vals[x].producer;
        if (p < 0 || g->nodes[p].op != BGR_OP_CONV || g->nodes[p].conv.relu || uses[x] != 1 ||
            x == out)
            continue;
        g->nodes[p].conv.relu = 1;
        r->folded = 1;
        g->vals[r->out].alias = x;
    }
    free(uses);
}

/* Add(Conv(...), t), where the Conv's result feeds only the Add and t is
 * computed before the Conv runs, becomes a Conv that adds t after its ReLU
 * (oneDNN's binary post-op): ISNet's residual connections, one memory pass
 * fewer each. */
static void fuse_conv_add(struct bgr_graph *g)
{
    int *uses = bgr_xcalloc((size_t)g->nvals + 1, sizeof *uses);
    int *pos = bgr_xmalloc(((size_t)g->nnodes + 1) * sizeof *pos);
    int out = bgr_graph_resolve(g, g->output);
    for (int k = 0; k < g->norder; k++) {
        const struct bgr_node *nd = &g->nodes[g->order[k]];
        pos[g->order[k]] = k;
        if (nd->folded)
            continue;
        for (int i = 0; i < nd->nin; i++)
            if (nd->in[i] >= 0)
                uses[bgr_graph_resolve(g, nd->in[i])]++;
    }
    for (int k = 0; k < g->norder; k++) {
        struct bgr_node *a = &g->nodes[g->order[k]];
        if (a->op != BGR_OP_ADD || a->folded)
            continue;
        for (int j = 0; j < 2; j++) {
            int x = bgr_graph_resolve(g, a->in[j]), t = bgr_graph_resolve(g, a->in[1 - j]);
            int p = g->vals[x].producer, q = g->vals[t].producer;
            if (p < 0 || x == t || x == out || uses[x] != 1)
                continue;
            struct bgr_node *c = &g->nodes[p];
            if (c->op != BGR_OP_CONV || c->folded || c->conv.sum_in || c->nin >= BGR_MAX_INPUTS ||
                (q >= 0 && pos[q] >= pos[p]))
                continue;
            c->conv.sum_in = c->nin;
            c->in[c->nin++] = t;
            a->folded = 1;
            g->vals[a->out].alias = x;
            break;
        }
    }
    free(uses);
    free(pos);
}

int bgr_graph_prepare(struct bgr_graph *g, struct bgr_error *err)
{
    int rc;
    if ((rc = topo_sort(g, err)))
        return rc;
    for (int k = 0; k < g->norder; k++) {
        struct bgr_node *nd = &g->nodes[g->order[k]];
        if (nd->folded) /* Constant, done by the loader */
            continue;
        if ((rc = bgr_fold_node(g, nd, err)))
            return rc;
    }
    int out = bgr_graph_resolve(g, g->output);
    if (g->vals[out].kind != BGR_VAL_ACT)
        return bgr_error_set(err, BGR_EMODEL, "output '%s' does not depend on the input",
                             g->vals[g->output].name);
    fuse_conv_relu(g);
    fuse_conv_add(g);
    out = bgr_graph_resolve(g, g->output);
    /* keep only the nodes that execute */
    int n = 0;
    g->macs = 0;
    for (int k = 0; k < g->norder; k++) {
        struct bgr_node *nd = &g->nodes[g->order[k]];
        if (nd->folded)
            continue;
        for (int i = 0; i < nd->nin; i++)
            nd->in[i] = bgr_graph_resolve(g, nd->in[i]);
        if (nd->op == BGR_OP_CONV) {
            const struct bgr_value *o = &g->vals[nd->out];
            g->macs += (double)bgr_act_count(o) * (double)nd->conv.C / (double)nd->conv.group *
                       (double)(nd->conv.kh * nd->conv.kw);
        }
        g->order[n++] = g->order[k];
    }
    g->norder = n;
    g->output = out;
    return 0;
}
