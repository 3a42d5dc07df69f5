/*
 * onnx_load.c - turns the bytes of an .onnx file into a struct bgr_graph.
 *
 * The protobuf is decoded by protobuf-c code generated at build time from the
 * system's onnx.proto; this file only walks the decoded structs. Everything in
 * them is untrusted: every count, dimension and attribute type is checked
 * before use, and any inconsistency is BGR_EMODEL with a message that names
 * the node, op or tensor. Only the nodes the first output needs have their
 * attributes parsed and their weights converted (onnx_tensor.c), so an
 * unused side branch cannot make a model fail.
 */
#include "infer/graph.h"
#include "onnx.pb-c.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define BGR_MAX_NODES 100000

static const struct {
    const char *name;
    enum bgr_opk op;
} op_table[] = {
    {"Conv", BGR_OP_CONV},         {"Relu", BGR_OP_RELU},
    {"Sigmoid", BGR_OP_SIGMOID},   {"MaxPool", BGR_OP_MAXPOOL},
    {"Resize", BGR_OP_RESIZE},     {"Concat", BGR_OP_CONCAT},
    {"Add", BGR_OP_ADD},           {"Cast", BGR_OP_CAST},
    {"Identity", BGR_OP_IDENTITY}, {"Shape", BGR_OP_SHAPE},
    {"Slice", BGR_OP_SLICE},       {"Constant", BGR_OP_CONSTANT},
    {"Gather", BGR_OP_GATHER},     {"Unsqueeze", BGR_OP_UNSQUEEZE},
    {"Squeeze", BGR_OP_SQUEEZE},   {"Reshape", BGR_OP_RESHAPE},
    {"Mul", BGR_OP_MUL},           {"Sub", BGR_OP_SUB},
    {"Div", BGR_OP_DIV},
};

/* ---- attributes --------------------------------------------------------------- */

static const Onnx__AttributeProto *attr_find(const Onnx__NodeProto *np, const char *name)
{
    for (size_t i = 0; i < np->n_attribute; i++)
        if (np->attribute[i]->name && strcmp(np->attribute[i]->name, name) == 0)
            return np->attribute[i];
    return NULL;
}

static int attr_fail(const struct bgr_node *nd, const char *attr, const char *why,
                     struct bgr_error *err)
{
    return bgr_error_set(err, BGR_EMODEL, "node '%s' (%s): attribute %s %s", nd->name, nd->op_type,
                         attr, why);
}

/* Integer attribute; *out keeps def when absent. */
static int attr_int(const Onnx__NodeProto *np, const struct bgr_node *nd, const char *name,
                    int64_t def, int64_t *out, struct bgr_error *err)
{
    const Onnx__AttributeProto *a = attr_find(np, name);
    *out = def;
    if (!a)
        return 0;
    if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT || !a->has_i)
        return attr_fail(nd, name, "must be an integer", err);
    *out = a->i;
    return 0;
}

/* Integer-list attribute of exactly want values (or absent: filled with def). */
static int attr_ints(const Onnx__NodeProto *np, const struct bgr_node *nd, const char *name,
                     size_t want, int64_t def, int64_t *out, int *present, struct bgr_error *err)
{
    const Onnx__AttributeProto *a = attr_find(np, name);
    for (size_t i = 0; i < want; i++)
        out[i] = def;
    if (present)
        *present = a != NULL;
    if (!a)
        return 0;
    if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS)
        return attr_fail(nd, name, "must be a list of integers", err);
    if (a->n_ints != want)
        return attr_fail(nd, name,
                         want == 2 || want == 4 ? "has the wrong length (2-D only)"
                                                : "has the wrong length",
                         err);
    for (size_t i = 0; i < want; i++)
        out[i] = a->ints[i];
    return 0;
}

/* String attribute compared with the allowed values (absent = allowed[0]). */
static int attr_str_is(const Onnx__NodeProto *np, const struct bgr_node *nd, const char *name,
                       const char *const *allowed, struct bgr_error *err)
{
    const Onnx__AttributeProto *a = attr_find(np, name);
    if (!a)
        return 0;
    if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING || !a->has_s)
        return attr_fail(nd, name, "must be a string", err);
    for (int i = 0; allowed[i]; i++)
        if (a->s.len == strlen(allowed[i]) && memcmp(a->s.data, allowed[i], a->s.len) == 0)
            return 0;
    return bgr_error_set(err, BGR_EMODEL, "node '%s' (%s): %s='%.*s' is not supported", nd->name,
                         nd->op_type, name, (int)(a->s.len > 40 ? 40 : a->s.len),
                         (const char *)a->s.data);
}

static int check_range(const struct bgr_node *nd, const char *name, const int64_t *v, int n,
                       int64_t lo, int64_t hi, struct bgr_error *err)
{
    for (int i = 0; i < n; i++)
        if (v[i] < lo || v[i] > hi)
            return attr_fail(nd, name, "is out of range", err);
    return 0;
}

static const char *const pad_modes[] = {"NOTSET", "VALID", NULL};

static int parse_conv(const Onnx__NodeProto *np, struct bgr_node *nd, struct bgr_error *err)
{
    struct bgr_conv_p *c = &nd->conv;
    int64_t k[2], s[2], d[2], p[4];
    int has_k, rc;
    if ((rc = attr_str_is(np, nd, "auto_pad", pad_modes, err)) ||
        (rc = attr_ints(np, nd, "kernel_shape", 2, 0, k, &has_k, err)) ||
        (rc = attr_ints(np, nd, "strides", 2, 1, s, NULL, err)) ||
        (rc = attr_ints(np, nd, "dilations", 2, 1, d, NULL, err)) ||
        (rc = attr_ints(np, nd, "pads", 4, 0, p, NULL, err)) ||
        (rc = attr_int(np, nd, "group", 1, &c->group, err)))
        return rc;
    if ((rc = check_range(nd, "strides", s, 2, 1, 1024, err)) ||
        (rc = check_range(nd, "dilations", d, 2, 1, 1024, err)) ||
        (rc = check_range(nd, "pads", p, 4, 0, 1024, err)) ||
        (has_k && (rc = check_range(nd, "kernel_shape", k, 2, 1, 1024, err))) ||
        (rc = check_range(nd, "group", &c->group, 1, 1, 1 << 20, err)))
        return rc;
    c->kh = has_k ? k[0] : 0; /* 0: taken from the weights */
    c->kw = has_k ? k[1] : 0;
    c->sh = s[0], c->sw = s[1], c->dh = d[0], c->dw = d[1];
    c->pt = p[0], c->pl = p[1], c->pb = p[2], c->pr = p[3];
    return 0;
}

static int parse_pool(const Onnx__NodeProto *np, struct bgr_node *nd, struct bgr_error *err)
{
    struct bgr_pool_p *q = &nd->pool;
    int64_t k[2], s[2], d[2], p[4], ceil_mode, so;
    int has_k, rc;
    if ((rc = attr_str_is(np, nd, "auto_pad", pad_modes, err)) ||
        (rc = attr_ints(np, nd, "kernel_shape", 2, 0, k, &has_k, err)) ||
        (rc = attr_ints(np, nd, "strides", 2, 1, s, NULL, err)) ||
        (rc = attr_ints(np, nd, "dilations", 2, 1, d, NULL, err)) ||
        (rc = attr_ints(np, nd, "pads", 4, 0, p, NULL, err)) ||
        (rc = attr_int(np, nd, "ceil_mode", 0, &ceil_mode, err)) ||
        (rc = attr_int(np, nd, "storage_order", 0, &so, err)))
        return rc;
    if (!has_k)
        return attr_fail(nd, "kernel_shape", "is required", err);
    if ((rc = check_range(nd, "kernel_shape", k, 2, 1, 1024, err)) ||
        (rc = check_range(nd, "strides", s, 2, 1, 1024, err)) ||
        (rc = check_range(nd, "dilations", d, 2, 1, 1, err)) ||
        (rc = check_range(nd, "ceil_mode", &ceil_mode, 1, 0, 1, err)))
        return rc;
    /* ONNX allows pads up to the kernel size minus one for pooling */
    if (p[0] >= k[0] || p[2] >= k[0] || p[1] >= k[1] || p[3] >= k[1] ||
        (rc = check_range(nd, "pads", p, 4, 0, 1024, err)))
        return rc ? rc : attr_fail(nd, "pads", "must be smaller than the kernel", err);
    q->kh = k[0], q->kw = k[1], q->sh = s[0], q->sw = s[1];
    q->pt = p[0], q->pl = p[1], q->pb = p[2], q->pr = p[3];
    q->ceil_mode = (int)ceil_mode;
    return 0;
}

static int parse_resize(const Onnx__NodeProto *np, struct bgr_node *nd, int64_t opset,
                        struct bgr_error *err)
{
    static const char *const modes[] = {"linear", NULL};
    static const char *const ctms[] = {"half_pixel", NULL};
    int64_t v;
    int rc;
    const Onnx__AttributeProto *m = attr_find(np, "mode");
    if (opset < 11)
        return bgr_error_set(err, BGR_EMODEL, "node '%s' (Resize): opset %lld is not supported",
                             nd->name, (long long)opset);
    if ((rc = attr_str_is(np, nd, "mode", modes, err)) ||
        (rc = attr_str_is(np, nd, "coordinate_transformation_mode", ctms, err)) ||
        (rc = attr_int(np, nd, "antialias", 0, &v, err)))
        return rc;
    /* the default mode is nearest, which we do not implement */
    if (!m)
        return attr_fail(nd, "mode", "must be 'linear'", err);
    if (v != 0)
        return attr_fail(nd, "antialias", "must be 0", err);
    if (attr_find(np, "axes"))
        return attr_fail(nd, "axes", "is not supported", err);
    if ((rc = attr_int(np, nd, "exclude_outside", 0, &v, err)))
        return rc;
    if (v != 0)
        return attr_fail(nd, "exclude_outside", "must be 0", err);
    return 0;
}

/* A Constant node's value becomes a constant value right away. */
static int parse_constant(struct bgr_graph *g, const Onnx__NodeProto *np, struct bgr_node *nd,
                          struct bgr_error *err)
{
    struct bgr_value *v = &g->vals[nd->out];
    struct bgr_const c = {0};
    const Onnx__AttributeProto *a;
    int rc;
    if ((a = attr_find(np, "value")) && a->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR &&
        a->t) {
        if ((rc = bgr_onnx_tensor_convert(a->t, &c, v->name, err)))
            return rc;
    } else if ((a = attr_find(np, "value_float")) && a->has_f) {
        c.dt = BGR_DT_F32, c.n = 1, c.f = bgr_xmalloc(sizeof(float));
        c.f[0] = a->f;
    } else if ((a = attr_find(np, "value_int")) && a->has_i) {
        c.dt = BGR_DT_I64, c.n = 1, c.i = bgr_xmalloc(sizeof(int64_t));
        c.i[0] = a->i;
    } else if ((a = attr_find(np, "value_ints")) &&
               a->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS && a->n_ints <= 1 << 20) {
        c.dt = BGR_DT_I64, c.rank = 1, c.n = a->n_ints, c.dims[0] = (int64_t)a->n_ints;
        c.i = bgr_xmalloc((c.n + 1) * sizeof(int64_t));
        if (c.n) /* empty: ints may be NULL */
            memcpy(c.i, a->ints, c.n * sizeof(int64_t));
    } else if ((a = attr_find(np, "value_floats")) &&
               a->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS && a->n_floats <= 1 << 20) {
        c.dt = BGR_DT_F32, c.rank = 1, c.n = a->n_floats, c.dims[0] = (int64_t)a->n_floats;
        c.f = bgr_xmalloc((c.n + 1) * sizeof(float));
        if (c.n) /* empty: floats may be NULL */
            memcpy(c.f, a->floats, c.n * sizeof(float));
    } else {
        return attr_fail(nd, "value", "is missing or of an unsupported kind", err);
    }
    v->kind = BGR_VAL_CONST;
    v->c = c;
    nd->folded = 1;
    return 0;
}

static int parse_attrs(struct bgr_graph *g, struct bgr_node *nd, struct bgr_error *err)
{
    const Onnx__NodeProto *np = nd->proto;
    int rc = 0;
    switch (nd->op) {
    case BGR_OP_CONV:
        return parse_conv(np, nd, err);
    case BGR_OP_MAXPOOL:
        return parse_pool(np, nd, err);
    case BGR_OP_RESIZE:
        return parse_resize(np, nd, g->opset, err);
    case BGR_OP_CONSTANT:
        return parse_constant(g, np, nd, err);
    case BGR_OP_CONCAT:
        if (!attr_find(np, "axis"))
            return attr_fail(nd, "axis", "is required", err);
        return attr_int(np, nd, "axis", 0, &nd->axis, err);
    case BGR_OP_GATHER:
        return attr_int(np, nd, "axis", 0, &nd->axis, err);
    case BGR_OP_CAST:
        if (!attr_find(np, "to"))
            return attr_fail(nd, "to", "is required", err);
        return attr_int(np, nd, "to", 0, &nd->to, err);
    case BGR_OP_SHAPE:
        if ((rc = attr_int(np, nd, "start", 0, &nd->axis, err)))
            return rc;
        return attr_int(np, nd, "end", INT64_MAX, &nd->axis_end, err);
    case BGR_OP_UNSQUEEZE:
    case BGR_OP_SQUEEZE: {
        const Onnx__AttributeProto *a = attr_find(np, "axes");
        nd->n_ints = -1; /* axes come from the second input (opset 13+) or are absent */
        if (!a)
            return 0;
        if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS || a->n_ints > BGR_MAX_RANK)
            return attr_fail(nd, "axes", "must be a short list of integers", err);
        nd->n_ints = (int)a->n_ints;
        if (a->n_ints) /* an empty list has ints == NULL: memcpy from NULL is UB */
            memcpy(nd->ints, a->ints, a->n_ints * sizeof(int64_t));
        return 0;
    }
    case BGR_OP_SLICE:
        if (attr_find(np, "starts"))
            return attr_fail(nd, "starts", "(opset < 10 Slice) is not supported", err);
        return 0;
    default:
        return 0;
    }
    return 0;
}

/* ---- graph building -------------------------------------------------------------- */

static int value_define(struct bgr_graph *g, const char *name, int producer, struct bgr_error *err)
{
    int v = bgr_graph_value_get(g, name);
    struct bgr_value *val = &g->vals[v];
    if (val->producer != -1 || val->init || v == g->input)
        return bgr_error_set(err, BGR_EMODEL, "tensor '%s' is defined twice", name);
    val->producer = producer;
    return v;
}

static int parse_input(struct bgr_graph *g, const Onnx__GraphProto *gp, struct bgr_error *err)
{
    const Onnx__ValueInfoProto *in = NULL;
    for (size_t i = 0; i < gp->n_input; i++) {
        const char *nm = gp->input[i]->name;
        if (!nm)
            return bgr_error_set(err, BGR_EMODEL, "graph input %zu has no name", i);
        int v = bgr_graph_value_find(g, nm);
        if (v >= 0 && g->vals[v].init)
            continue; /* old-style models list initializers as inputs too */
        if (in)
            return bgr_error_set(err, BGR_EMODEL, "the model has more than one input");
        in = gp->input[i];
    }
    if (!in)
        return bgr_error_set(err, BGR_EMODEL, "the model has no input");
    const Onnx__TypeProto *tp = in->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type ||
        !tp->tensor_type->shape)
        return bgr_error_set(err, BGR_EMODEL, "input '%s' is not a tensor of known shape",
                             in->name);
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    if (tt->has_elem_type && tt->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return bgr_error_set(err, BGR_EMODEL, "input '%s' is not float32", in->name);
    if (tt->shape->n_dim != 4)
        return bgr_error_set(err, BGR_EMODEL, "input '%s' has rank %zu, expected 4 (NCHW)",
                             in->name, tt->shape->n_dim);
    int v = bgr_graph_value_get(g, in->name);
    int64_t n = 1;
    for (int i = 0; i < 4; i++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
        if (d->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE ||
            d->dim_value < 1 || d->dim_value > (1 << 20))
            return bgr_error_set(err, BGR_EMODEL, "input '%s' dimension %d is not a fixed size",
                                 in->name, i);
        g->vals[v].dims[i] = d->dim_value;
        n *= d->dim_value;
        if (n > BGR_MAX_ELEMS)
            return bgr_error_set(err, BGR_EMODEL, "input '%s' is too large", in->name);
    }
    g->vals[v].kind = BGR_VAL_ACT;
    g->input = v;
    return 0;
}

static int parse_node(struct bgr_graph *g, int idx, const Onnx__NodeProto *np,
                      struct bgr_error *err)
{
    struct bgr_node *nd = &g->nodes[idx];
    nd->proto = np;
    nd->name = bgr_xstrdup(np->name ? np->name : "");
    nd->op_type = bgr_xstrdup(np->op_type ? np->op_type : "");
    nd->op = BGR_OP__COUNT; /* unknown until found in the table */
    int std_domain = !np->domain || !np->domain[0] || strcmp(np->domain, "ai.onnx") == 0;
    for (size_t i = 0; std_domain && i < BGR_ARRAY_LEN(op_table); i++)
        if (strcmp(op_table[i].name, nd->op_type) == 0)
            nd->op = op_table[i].op;
    if (np->n_input > BGR_MAX_INPUTS)
        return bgr_error_set(err, BGR_EMODEL, "node '%s' (%s) has too many inputs", nd->name,
                             nd->op_type);
    if (np->n_output < 1)
        return bgr_error_set(err, BGR_EMODEL, "node '%s' (%s) has no output", nd->name,
                             nd->op_type);
    nd->nin = (int)np->n_input;
    for (int i = 0; i < nd->nin; i++)
        nd->in[i] = np->input[i][0] ? bgr_graph_value_get(g, np->input[i]) : -1;
    for (size_t i = 0; i < np->n_output; i++) {
        if (!np->output[i][0])
            continue;
        /* we compute only the first output of a node; others (MaxPool's
         * indices) are marked so that needing them fails at prune time */
        int v = value_define(g, np->output[i], i == 0 ? idx : -2, err);
        if (v < 0)
            return v;
        g->vals[v].sec_node = idx;
        if (i == 0)
            nd->out = v;
    }
    if (!np->output[0][0])
        return bgr_error_set(err, BGR_EMODEL, "node '%s' (%s) has an empty first output", nd->name,
                             nd->op_type);
    return 0;
}

static int build_graph(struct bgr_graph *g, const Onnx__ModelProto *mp, struct bgr_error *err)
{
    const Onnx__GraphProto *gp = mp->graph;
    int rc;
    g->input = g->output = -1;
    g->opset = 0;
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
        if ((!o->domain || !o->domain[0] || strcmp(o->domain, "ai.onnx") == 0) && o->has_version)
            g->opset = o->version;
    }
    if (!gp)
        return bgr_error_set(err, BGR_EMODEL, "the file holds no graph");
    if (gp->n_node > BGR_MAX_NODES)
        return bgr_error_set(err, BGR_EMODEL, "the graph has too many nodes (%zu)", gp->n_node);
    if (gp->n_output < 1 || !gp->output[0]->name)
        return bgr_error_set(err, BGR_EMODEL, "the graph has no output");
    for (size_t i = 0; i < gp->n_initializer; i++) {
        const Onnx__TensorProto *t = gp->initializer[i];
        if (!t->name || !t->name[0])
            return bgr_error_set(err, BGR_EMODEL, "initializer %zu has no name", i);
        int v = value_define(g, t->name, -1, err);
        if (v < 0)
            return v;
        g->vals[v].init = t;
    }
    if ((rc = parse_input(g, gp, err)))
        return rc;
    g->nodes = bgr_xcalloc(gp->n_node ? gp->n_node : 1, sizeof *g->nodes);
    g->nnodes = (int)gp->n_node;
    for (int i = 0; i < g->nnodes; i++)
        if ((rc = parse_node(g, i, gp->node[i], err)))
            return rc;
    g->output = bgr_graph_value_find(g, gp->output[0]->name);
    if (g->output < 0)
        return bgr_error_set(err, BGR_EMODEL, "output '%s' is not produced by any node",
                             gp->output[0]->name);
    if ((rc = bgr_graph_mark_needed(g, err)))
        return rc;
    for (int i = 0; i < g->nnodes; i++) {
        struct bgr_node *nd = &g->nodes[i];
        if (!nd->needed)
            continue;
        if (nd->op == BGR_OP__COUNT)
            return bgr_error_set(
                err, BGR_EMODEL, "node '%s': unsupported op %s%s%s", nd->name,
                gp->node[i]->domain && gp->node[i]->domain[0] ? gp->node[i]->domain : "",
                gp->node[i]->domain && gp->node[i]->domain[0] ? ":" : "", nd->op_type);
    }
    if (g->secondary >= 0) {
        const struct bgr_node *nd = &g->nodes[g->vals[g->secondary].sec_node];
        return bgr_error_set(err, BGR_EMODEL,
                             "node '%s' (%s): output '%s' is a secondary output (not supported)",
                             nd->name, nd->op_type, g->vals[g->secondary].name);
    }
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i].needed && (rc = parse_attrs(g, &g->nodes[i], err)))
            return rc;
    return bgr_graph_prepare(g, err);
}

int bgr_onnx_load(const void *data, size_t len, struct bgr_graph *g, struct bgr_error *err)
{
    return bgr_onnx_load_buf(data, len, NULL, g, err);
}

int bgr_onnx_load_buf(const void *data, size_t len, struct bgr_buf *file, struct bgr_graph *g,
                      struct bgr_error *err)
{
    Onnx__ModelProto *mp = NULL;
    int rc;
    memset(g, 0, sizeof *g);
    if (!data || len == 0)
        return bgr_error_set(err, BGR_EMODEL, "the model file is empty");
    mp = onnx__model_proto__unpack(NULL, len, data);
    /* protobuf-c copied every field: the file's bytes are not read again */
    if (file)
        bgr_buf_release(file);
    if (!mp)
        return bgr_error_set(err, BGR_EMODEL,
                             "the model is not a valid ONNX protobuf (malformed or truncated)");
    rc = build_graph(g, mp, err);
    /* the protobuf dies here: drop every pointer into it */
    for (int i = 0; i < g->nvals; i++)
        g->vals[i].init = NULL;
    for (int i = 0; i < g->nnodes; i++)
        g->nodes[i].proto = NULL;
    onnx__model_proto__free_unpacked(mp, NULL);
    if (rc)
        bgr_graph_release(g);
    return rc;
}
