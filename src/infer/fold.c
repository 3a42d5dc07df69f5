/*
 * fold.c - shape inference and constant folding, one node at a time in
 * topological order. The input shape is fixed, so every shape computation in
 * the graph (Shape -> Slice -> Concat -> Cast feeding Resize sizes, in ISNet)
 * is a constant: we evaluate it here, once, and only the heavy ops remain.
 *
 * Constants are small (shape vectors, scalars) or weights; the generic
 * evaluators below handle what shape subgraphs use, with rank and size checks
 * because the graph is untrusted.
 */
#include "infer/fold.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ELEMS BGR_MAX_ELEMS
#define MAX_DIM ((int64_t)1 << 24)

static int fail(const struct bgr_node *nd, const char *why, struct bgr_error *err)
{
    return bgr_error_set(err, BGR_EMODEL, "node '%s' (%s): %s", nd->name, nd->op_type, why);
}

static int const_alloc(struct bgr_const *c, enum bgr_dtype dt, int rank, const int64_t *dims)
{
    int64_t n = 1;
    memset(c, 0, sizeof *c);
    if (rank < 0 || rank > BGR_MAX_RANK)
        return -1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0 || dims[i] > MAX_ELEMS)
            return -1;
        c->dims[i] = dims[i];
        n *= dims[i];
        if (n > MAX_ELEMS)
            return -1;
    }
    c->dt = dt, c->rank = rank, c->n = (size_t)n;
    if (dt == BGR_DT_F32)
        c->f = malloc((c->n + 1) * sizeof(float));
    else
        c->i = malloc((c->n + 1) * sizeof(int64_t));
    return c->f || c->i ? 0 : -1;
}

static int64_t ci(const struct bgr_const *c, size_t k)
{
    if (c->dt == BGR_DT_I64)
        return c->i[k];
    float f = c->f[k];
    /* float -> int conversions saturate instead of being undefined */
    if (!(f > -9.2e18f && f < 9.2e18f))
        return f > 0 ? INT64_MAX : INT64_MIN;
    return (int64_t)f;
}

static double cf(const struct bgr_const *c, size_t k)
{
    return c->dt == BGR_DT_F32 ? (double)c->f[k] : (double)c->i[k];
}

static void cset(struct bgr_const *c, size_t k, double fv, int64_t iv)
{
    if (c->dt == BGR_DT_F32)
        c->f[k] = (float)fv;
    else
        c->i[k] = iv;
}

/* Resolves input i; converts its initializer on first use. NULL if omitted. */
static int input_val(struct bgr_graph *g, struct bgr_node *nd, int i, struct bgr_value **out,
                     struct bgr_error *err)
{
    *out = NULL;
    if (i >= nd->nin || nd->in[i] < 0)
        return 0;
    int v = bgr_graph_resolve(g, nd->in[i]);
    struct bgr_value *val = &g->vals[v];
    if (val->kind == BGR_VAL_UNKNOWN && val->init) {
        int rc = bgr_onnx_tensor_convert(val->init, &val->c, val->name, err);
        if (rc)
            return rc;
        val->kind = BGR_VAL_CONST;
    }
    if (val->kind == BGR_VAL_UNKNOWN)
        return bgr_error_set(err, BGR_EMODEL, "node '%s' (%s): input '%s' has no value", nd->name,
                             nd->op_type, val->name);
    *out = val;
    return 0;
}

static int set_act(struct bgr_graph *g, struct bgr_node *nd, const int64_t d[4],
                   struct bgr_error *err)
{
    struct bgr_value *o = &g->vals[nd->out];
    int64_t n = 1;
    for (int i = 0; i < 4; i++) {
        if (d[i] < 1 || d[i] > MAX_DIM)
            return fail(nd, "output dimension out of range", err);
        n *= d[i];
        if (n > MAX_ELEMS)
            return fail(nd, "output too large", err);
        o->dims[i] = d[i];
    }
    o->kind = BGR_VAL_ACT;
    return 0;
}

static void set_const(struct bgr_graph *g, struct bgr_node *nd, struct bgr_const *c)
{
    struct bgr_value *o = &g->vals[nd->out];
    o->kind = BGR_VAL_CONST;
    o->c = *c;
    nd->folded = 1;
}

/* ---- activation ops ---------------------------------------------------------------- */

static int infer_conv(struct bgr_graph *g, struct bgr_node *nd, struct bgr_value *const *in,
                      struct bgr_error *err)
{
    struct bgr_conv_p *p = &nd->conv;
    const struct bgr_value *x = in[0], *w = in[1], *b = in[2];
    if (!w || w->kind != BGR_VAL_CONST || w->c.dt != BGR_DT_F32 || w->c.rank != 4)
        return fail(nd, "weights must be a constant float tensor of rank 4", err);
    if (b && (b->kind != BGR_VAL_CONST || b->c.dt != BGR_DT_F32 || b->c.rank != 1 ||
              b->c.dims[0] != w->c.dims[0]))
        return fail(nd, "bias must be a constant float vector of the output channels", err);
    int64_t M = w->c.dims[0], Cg = w->c.dims[1], kh = w->c.dims[2], kw = w->c.dims[3];
    if (M < 1 || Cg < 1 || kh < 1 || kw < 1 || kh > 1024 || kw > 1024)
        return fail(nd, "weights have an empty or huge dimension", err);
    if ((p->kh && p->kh != kh) || (p->kw && p->kw != kw))
        return fail(nd, "kernel_shape does not match the weights", err);
    if (x->dims[1] != Cg * p->group || M % p->group)
        return fail(nd, "channels do not match the weights and group", err);
    int64_t eh = (kh - 1) * p->dh + 1, ew = (kw - 1) * p->dw + 1;
    int64_t nh = x->dims[2] + p->pt + p->pb - eh, nw = x->dims[3] + p->pl + p->pr - ew;
    if (nh < 0 || nw < 0)
        return fail(nd, "kernel larger than the padded input", err);
    p->M = M, p->C = x->dims[1], p->kh = kh, p->kw = kw;
    p->w = w->c.f;
    p->b = b ? b->c.f : NULL;
    int64_t d[4] = {x->dims[0], M, nh / p->sh + 1, nw / p->sw + 1};
    return set_act(g, nd, d, err);
}

static int64_t pool_out(int64_t in, int64_t pb, int64_t pe, int64_t k, int64_t s, int ceil_mode)
{
    int64_t span = in + pb + pe - k;
    int64_t o = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    /* ONNX (like PyTorch) drops a last window that would start in the end padding */
    if (ceil_mode && (o - 1) * s >= in + pb)
        o--;
    return o;
}

static int infer_pool(struct bgr_graph *g, struct bgr_node *nd, const struct bgr_value *x,
                      struct bgr_error *err)
{
    const struct bgr_pool_p *p = &nd->pool;
    if (x->dims[2] + p->pt + p->pb < p->kh || x->dims[3] + p->pl + p->pr < p->kw)
        return fail(nd, "kernel larger than the padded input", err);
    int64_t d[4] = {x->dims[0], x->dims[1],
                    pool_out(x->dims[2], p->pt, p->pb, p->kh, p->sh, p->ceil_mode),
                    pool_out(x->dims[3], p->pl, p->pr, p->kw, p->sw, p->ceil_mode)};
    return set_act(g, nd, d, err);
}

static int infer_resize(struct bgr_graph *g, struct bgr_node *nd, struct bgr_value *const *in,
                        struct bgr_error *err)
{
    const struct bgr_value *x = in[0], *scales = in[2], *sizes = in[3];
    int64_t d[4];
    if ((scales && scales->kind != BGR_VAL_CONST) || (sizes && sizes->kind != BGR_VAL_CONST))
        return fail(nd, "scales and sizes must be constant for a fixed input shape", err);
    if (sizes && sizes->c.n > 0) {
        if (sizes->c.n != 4 || sizes->c.dt != BGR_DT_I64)
            return fail(nd, "sizes must hold 4 integers", err);
        for (int i = 0; i < 4; i++)
            d[i] = sizes->c.i[i];
        if (d[0] != x->dims[0] || d[1] != x->dims[1])
            return fail(nd, "only the spatial dimensions may be resized", err);
        if (d[2] < 1 || d[3] < 1)
            return fail(nd, "sizes must be positive", err);
        nd->rs.scale_h = (float)d[2] / (float)x->dims[2];
        nd->rs.scale_w = (float)d[3] / (float)x->dims[3];
    } else if (scales && scales->c.n > 0) {
        if (scales->c.n != 4 || scales->c.dt != BGR_DT_F32)
            return fail(nd, "scales must hold 4 floats", err);
        const float *s = scales->c.f;
        if (s[0] != 1.0f || s[1] != 1.0f)
            return fail(nd, "only the spatial dimensions may be resized", err);
        if (!(s[2] > 0 && s[2] < 65536.0f && s[3] > 0 && s[3] < 65536.0f))
            return fail(nd, "scales must be positive and finite", err);
        d[0] = x->dims[0], d[1] = x->dims[1];
        d[2] = (int64_t)floorf((float)x->dims[2] * s[2]);
        d[3] = (int64_t)floorf((float)x->dims[3] * s[3]);
        nd->rs.scale_h = s[2];
        nd->rs.scale_w = s[3];
    } else {
        return fail(nd, "needs scales or sizes", err);
    }
    return set_act(g, nd, d, err);
}

static int infer_concat(struct bgr_graph *g, struct bgr_node *nd, struct bgr_value *const *in,
                        struct bgr_error *err)
{
    int64_t axis = nd->axis < 0 ? nd->axis + 4 : nd->axis;
    int64_t d[4] = {in[0]->dims[0], 0, in[0]->dims[2], in[0]->dims[3]};
    if (axis != 1)
        return fail(nd, "activations are concatenated along channels only", err);
    for (int i = 0; i < nd->nin; i++) {
        const struct bgr_value *v = in[i];
        if (!v || v->kind != BGR_VAL_ACT)
            return fail(nd, "mixes constants and activations", err);
        if (v->dims[0] != d[0] || v->dims[2] != d[2] || v->dims[3] != d[3])
            return fail(nd, "input shapes differ outside the channel axis", err);
        d[1] += v->dims[1];
    }
    return set_act(g, nd, d, err);
}

/* ---- constant evaluators ------------------------------------------------------------ */

/* The evaluators and bgr_fold_node read in[i] for every input that arity[]
 * makes required, which bgr_fold_node checks is present; the analyzer
 * cannot follow that through the table, so it reports null inputs here. */
/* NOLINTBEGIN(clang-analyzer-core.NullDereference) */

static int fold_elementwise(struct bgr_graph *g, struct bgr_node *nd, struct bgr_value *const *in,
                            struct bgr_error *err)
{
    const struct bgr_const *a = &in[0]->c, *b = nd->nin > 1 ? &in[1]->c : NULL;
    const struct bgr_const *big = a;
    struct bgr_const c;
    if (b) {
        if (a->dt != b->dt)
            return fail(nd, "operands have different types", err);
        if (b->n > a->n)
            big = b;
        if (!(a->n == b->n || a->n == 1 || b->n == 1))
            return fail(nd, "constant broadcasting beyond scalars is not supported", err);
    }
    if (const_alloc(&c, big->dt, big->rank, big->dims))
        return fail(nd, "constant too large", err);
    for (size_t k = 0; k < c.n; k++) {
        size_t ka = a->n == 1 ? 0 : k, kb = b && b->n == 1 ? 0 : k;
        double x = cf(a, ka), y = b ? cf(b, kb) : 0, r = 0;
        int64_t xi = c.dt == BGR_DT_I64 ? a->i[ka] : 0, yi = b && c.dt == BGR_DT_I64 ? b->i[kb] : 0;
        int64_t ri = 0;
        switch (nd->op) {
        case BGR_OP_ADD:
            r = x + y, ri = (int64_t)((uint64_t)xi + (uint64_t)yi);
            break;
        case BGR_OP_SUB:
            r = x - y, ri = (int64_t)((uint64_t)xi - (uint64_t)yi);
            break;
        case BGR_OP_MUL:
            r = x * y, ri = (int64_t)((uint64_t)xi * (uint64_t)yi);
            break;
        case BGR_OP_DIV:
            r = x / y;
            if (c.dt == BGR_DT_I64 && (yi == 0 || (xi == INT64_MIN && yi == -1))) {
                bgr_const_release(&c);
                return fail(nd, "integer division by zero", err);
            }
            ri = c.dt == BGR_DT_I64 ? xi / yi : 0;
            break;
        case BGR_OP_RELU:
            r = x > 0 ? x : 0, ri = xi > 0 ? xi : 0;
            break;
        default:
            r = 1.0 / (1.0 + exp(-x)), ri = 0;
            break; /* Sigmoid */
        }
        cset(&c, k, r, ri);
    }
    set_const(g, nd, &c);
    return 0;
}

static int fold_cast(struct bgr_graph *g, struct bgr_node *nd, const struct bgr_const *a,
                     struct bgr_error *err)
{
    enum bgr_dtype dt;
    struct bgr_const c;
    switch (nd->to) {
    case 1:
    case 10:
    case 11:
    case 16:
        dt = BGR_DT_F32;
        break;
    case 2:
    case 3:
    case 4:
    case 5:
    case 6:
    case 7:
    case 9:
    case 12:
    case 13:
        dt = BGR_DT_I64;
        break;
    default:
        return fail(nd, "unsupported target type", err);
    }
    if (const_alloc(&c, dt, a->rank, a->dims))
        return fail(nd, "constant too large", err);
    for (size_t k = 0; k < c.n; k++)
        cset(&c, k, cf(a, k), nd->to == 9 ? ci(a, k) != 0 : ci(a, k));
    set_const(g, nd, &c);
    return 0;
}

static int fold_shape(struct bgr_graph *g, struct bgr_node *nd, const struct bgr_value *x,
                      struct bgr_error *err)
{
    int rank = x->kind == BGR_VAL_ACT ? 4 : x->c.rank;
    const int64_t *dims = x->kind == BGR_VAL_ACT ? x->dims : x->c.dims;
    int64_t s = nd->axis, e = nd->axis_end;
    struct bgr_const c;
    if (s < 0)
        s += rank;
    if (e < 0)
        e += rank;
    s = s < 0 ? 0 : s > rank ? rank : s;
    e = e < 0 ? 0 : e > rank ? rank : e;
    int64_t n = e > s ? e - s : 0;
    if (const_alloc(&c, BGR_DT_I64, 1, &n))
        return fail(nd, "bad shape", err);
    for (int64_t k = 0; k < n; k++)
        c.i[k] = dims[s + k];
    set_const(g, nd, &c);
    return 0;
}

static int fold_slice(struct bgr_graph *g, struct bgr_node *nd, struct bgr_value *const *in,
                      struct bgr_error *err)
{
    const struct bgr_const *a = &in[0]->c;
    int64_t dim = a->rank == 1 ? a->dims[0] : 0;
    struct bgr_const c;
    if (a->rank != 1)
        return fail(nd, "only 1-D constants can be sliced", err);
    for (int i = 1; i < 5; i++)
        if (in[i] && (in[i]->c.dt != BGR_DT_I64 || in[i]->c.n != 1))
            return fail(nd, "starts/ends/axes/steps must be single integers", err);
    if (!in[1] || !in[2])
        return fail(nd, "needs starts and ends", err);
    int64_t st = in[1]->c.i[0], en = in[2]->c.i[0], step = in[4] ? in[4]->c.i[0] : 1;
    if (in[3] && in[3]->c.i[0] != 0 && in[3]->c.i[0] != -1)
        return fail(nd, "axis out of range", err);
    if (step == 0)
        return fail(nd, "step must not be 0", err);
    if (st < 0)
        st = st < -dim ? 0 : st + dim;
    if (en < 0)
        en = en < -dim ? -1 : en + dim;
    if (step > 0) {
        st = st > dim ? dim : st;
        en = en > dim ? dim : en < 0 ? 0 : en;
    } else {
        st = st > dim - 1 ? dim - 1 : st;
        en = en > dim - 1 ? dim - 1 : en;
    }
    int64_t n = step > 0 ? (en > st ? (en - st + step - 1) / step : 0)
                         : (st > en ? (st - en + (-step) - 1) / (-step) : 0);
    if (const_alloc(&c, a->dt, 1, &n))
        return fail(nd, "bad slice", err);
    for (int64_t k = 0; k < n; k++)
        cset(&c, (size_t)k, cf(a, (size_t)(st + k * step)), ci(a, (size_t)(st + k * step)));
    set_const(g, nd, &c);
    return 0;
}

static int fold_concat(struct bgr_graph *g, struct bgr_node *nd, struct bgr_value *const *in,
                       struct bgr_error *err)
{
    const struct bgr_const *a = &in[0]->c;
    int rank = a->rank;
    int64_t axis = nd->axis < 0 ? nd->axis + rank : nd->axis;
    int64_t dims[BGR_MAX_RANK];
    struct bgr_const c;
    if (axis < 0 || axis >= rank)
        return fail(nd, "axis out of range", err);
    memcpy(dims, a->dims, sizeof dims);
    dims[axis] = 0;
    for (int i = 0; i < nd->nin; i++) {
        const struct bgr_const *b = &in[i]->c;
        if (b->rank != rank || b->dt != a->dt)
            return fail(nd, "inputs differ in rank or type", err);
        for (int j = 0; j < rank; j++)
            if (j != axis && b->dims[j] != a->dims[j])
                return fail(nd, "inputs differ outside the axis", err);
        dims[axis] += b->dims[axis];
    }
    if (const_alloc(&c, a->dt, rank, dims))
        return fail(nd, "constant too large", err);
    size_t outer = 1, inner = 1, pos = 0;
    for (int j = 0; j < axis; j++)
        outer *= (size_t)dims[j];
    for (int j = (int)axis + 1; j < rank; j++)
        inner *= (size_t)dims[j];
    for (size_t o = 0; o < outer; o++)
        for (int i = 0; i < nd->nin; i++) {
            const struct bgr_const *b = &in[i]->c;
            size_t len = (size_t)b->dims[axis] * inner;
            for (size_t k = 0; k < len; k++, pos++)
                cset(&c, pos, cf(b, o * len + k), ci(b, o * len + k));
        }
    set_const(g, nd, &c);
    return 0;
}

static int fold_gather(struct bgr_graph *g, struct bgr_node *nd, struct bgr_value *const *in,
                       struct bgr_error *err)
{
    const struct bgr_const *a = &in[0]->c, *idx = &in[1]->c;
    struct bgr_const c;
    if (a->rank != 1 || (nd->axis != 0 && nd->axis != -1))
        return fail(nd, "only 1-D constants along axis 0 can be gathered", err);
    if (idx->dt != BGR_DT_I64)
        return fail(nd, "indices must be integers", err);
    if (const_alloc(&c, a->dt, idx->rank, idx->dims))
        return fail(nd, "constant too large", err);
    for (size_t k = 0; k < c.n; k++) {
        int64_t j = idx->i[k] < 0 ? idx->i[k] + a->dims[0] : idx->i[k];
        if (j < 0 || j >= a->dims[0]) {
            bgr_const_release(&c);
            return fail(nd, "index out of range", err);
        }
        cset(&c, k, cf(a, (size_t)j), ci(a, (size_t)j));
    }
    set_const(g, nd, &c);
    return 0;
}

/* Unsqueeze, Squeeze, Reshape, Identity: same data, new dims. */
static int fold_reshape(struct bgr_graph *g, struct bgr_node *nd, struct bgr_value *const *in,
                        struct bgr_error *err)
{
    const struct bgr_const *a = &in[0]->c;
    int64_t dims[BGR_MAX_RANK], axes[BGR_MAX_RANK];
    int rank = 0, naxes = nd->n_ints > 0 ? nd->n_ints : 0;
    struct bgr_const c;
    memcpy(axes, nd->ints, sizeof axes);
    if ((nd->op == BGR_OP_UNSQUEEZE || nd->op == BGR_OP_SQUEEZE) && nd->n_ints < 0 && in[1]) {
        if (in[1]->c.dt != BGR_DT_I64 || in[1]->c.n > BGR_MAX_RANK)
            return fail(nd, "axes must be a short integer list", err);
        naxes = (int)in[1]->c.n;
        memcpy(axes, in[1]->c.i, (size_t)naxes * sizeof *axes);
    }
    if (nd->op == BGR_OP_UNSQUEEZE) {
        rank = a->rank + naxes;
        if (rank > BGR_MAX_RANK)
            return fail(nd, "rank too large", err);
        int mark[BGR_MAX_RANK] = {0}, src = 0;
        for (int k = 0; k < naxes; k++) {
            int64_t ax = axes[k] < 0 ? axes[k] + rank : axes[k];
            if (ax < 0 || ax >= rank || mark[ax])
                return fail(nd, "bad axes", err);
            mark[ax] = 1;
        }
        for (int j = 0; j < rank; j++)
            dims[j] = mark[j] ? 1 : a->dims[src++];
    } else if (nd->op == BGR_OP_SQUEEZE) {
        int mark[BGR_MAX_RANK] = {0};
        for (int k = 0; k < naxes; k++) {
            int64_t ax = axes[k] < 0 ? axes[k] + a->rank : axes[k];
            if (ax < 0 || ax >= a->rank || a->dims[ax] != 1)
                return fail(nd, "bad axes", err);
            mark[ax] = 1;
        }
        for (int j = 0; j < a->rank; j++)
            if (!(naxes ? mark[j] : a->dims[j] == 1))
                dims[rank++] = a->dims[j];
    } else if (nd->op == BGR_OP_RESHAPE) {
        const struct bgr_const *s = in[1] ? &in[1]->c : NULL;
        int64_t prod = 1, infer = -1;
        if (!s || s->dt != BGR_DT_I64 || s->n > BGR_MAX_RANK)
            return fail(nd, "shape must be a short integer list", err);
        rank = (int)s->n;
        for (int j = 0; j < rank; j++) {
            dims[j] = s->i[j] == 0 && j < a->rank ? a->dims[j] : s->i[j];
            if (dims[j] == -1 && infer < 0)
                infer = j;
            else if (dims[j] < 0 || dims[j] > MAX_ELEMS || (prod *= dims[j]) > MAX_ELEMS)
                return fail(nd, "bad shape", err);
        }
        if (infer >= 0)
            dims[infer] = prod ? (int64_t)a->n / prod : 0;
        if ((infer >= 0 ? dims[infer] * prod : prod) != (int64_t)a->n)
            return fail(nd, "shape does not match the element count", err);
    } else { /* Identity */
        rank = a->rank;
        memcpy(dims, a->dims, sizeof dims);
    }
    if (const_alloc(&c, a->dt, rank, dims) || c.n != a->n) {
        bgr_const_release(&c);
        return fail(nd, "bad shape", err);
    }
    for (size_t k = 0; k < c.n; k++)
        cset(&c, k, cf(a, k), ci(a, k));
    set_const(g, nd, &c);
    return 0;
}

/* ---- dispatch -------------------------------------------------------------------------- */

static const struct {
    int lo, hi;
} arity[BGR_OP__COUNT] = {
    [BGR_OP_CONV] = {2, 3},    [BGR_OP_RELU] = {1, 1},      [BGR_OP_SIGMOID] = {1, 1},
    [BGR_OP_MAXPOOL] = {1, 1}, [BGR_OP_RESIZE] = {1, 4},    [BGR_OP_CONCAT] = {1, BGR_MAX_INPUTS},
    [BGR_OP_ADD] = {2, 2},     [BGR_OP_CAST] = {1, 1},      [BGR_OP_IDENTITY] = {1, 1},
    [BGR_OP_SHAPE] = {1, 1},   [BGR_OP_SLICE] = {3, 5},     [BGR_OP_CONSTANT] = {0, 0},
    [BGR_OP_GATHER] = {2, 2},  [BGR_OP_UNSQUEEZE] = {1, 2}, [BGR_OP_SQUEEZE] = {1, 2},
    [BGR_OP_RESHAPE] = {2, 2}, [BGR_OP_MUL] = {2, 2},       [BGR_OP_SUB] = {2, 2},
    [BGR_OP_DIV] = {2, 2},
};

int bgr_fold_node(struct bgr_graph *g, struct bgr_node *nd, struct bgr_error *err)
{
    struct bgr_value *in[BGR_MAX_INPUTS] = {0};
    int all_const = 1, rc;
    BGR_ASSERT(nd->op < BGR_OP__COUNT);
    if (nd->nin < arity[nd->op].lo || nd->nin > arity[nd->op].hi)
        return fail(nd, "wrong number of inputs", err);
    /* inputs past the required ones are optional only for these ops */
    int optional_from = nd->op == BGR_OP_CONV || nd->op == BGR_OP_RESIZE ||
                                nd->op == BGR_OP_SLICE || nd->op == BGR_OP_UNSQUEEZE ||
                                nd->op == BGR_OP_SQUEEZE
                            ? arity[nd->op].lo
                            : nd->nin;
    for (int i = 0; i < nd->nin; i++) {
        if ((rc = input_val(g, nd, i, &in[i], err)))
            return rc;
        if (!in[i] && i < optional_from)
            return fail(nd, "a required input is missing", err);
        if (in[i] && in[i]->kind != BGR_VAL_CONST)
            all_const = 0;
    }
    if (nd->op == BGR_OP_SHAPE)
        return fold_shape(g, nd, in[0], err);
    if (all_const) {
        switch (nd->op) {
        case BGR_OP_ADD:
        case BGR_OP_SUB:
        case BGR_OP_MUL:
        case BGR_OP_DIV:
        case BGR_OP_RELU:
        case BGR_OP_SIGMOID:
            return fold_elementwise(g, nd, in, err);
        case BGR_OP_CAST:
            return fold_cast(g, nd, &in[0]->c, err);
        case BGR_OP_SLICE:
            return fold_slice(g, nd, in, err);
        case BGR_OP_CONCAT:
            return fold_concat(g, nd, in, err);
        case BGR_OP_GATHER:
            return fold_gather(g, nd, in, err);
        case BGR_OP_UNSQUEEZE:
        case BGR_OP_SQUEEZE:
        case BGR_OP_RESHAPE:
        case BGR_OP_IDENTITY:
            return fold_reshape(g, nd, in, err);
        default:
            return fail(nd, "constant input is not supported", err);
        }
    }
    if (in[0]->kind != BGR_VAL_ACT && nd->op != BGR_OP_CONCAT)
        return fail(nd, "the first input must be an activation", err);
    switch (nd->op) {
    case BGR_OP_CAST:
    case BGR_OP_IDENTITY:
        /* activations stay fp32 whatever the file casts them to: an alias */
        g->vals[nd->out].alias = bgr_graph_resolve(g, nd->in[0]);
        nd->folded = 1;
        return 0;
    case BGR_OP_CONV:
        return infer_conv(g, nd, in, err);
    case BGR_OP_MAXPOOL:
        return infer_pool(g, nd, in[0], err);
    case BGR_OP_RESIZE:
        return infer_resize(g, nd, in, err);
    case BGR_OP_CONCAT:
        return infer_concat(g, nd, in, err);
    case BGR_OP_RELU:
    case BGR_OP_SIGMOID:
        return set_act(g, nd, in[0]->dims, err);
    case BGR_OP_ADD:
        if (in[1]->kind != BGR_VAL_ACT || memcmp(in[0]->dims, in[1]->dims, sizeof in[0]->dims))
            return fail(nd, "operands must be activations of the same shape", err);
        return set_act(g, nd, in[0]->dims, err);
    default:
        return fail(nd, "is only supported on constants", err);
    }
}
/* NOLINTEND(clang-analyzer-core.NullDereference) */
