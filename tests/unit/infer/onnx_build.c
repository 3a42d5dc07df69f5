/* onnx_build.c - see onnx_build.h. */
#include "onnx_build.h"

#include <stdlib.h>
#include <string.h>

static void *zalloc(struct onnx_build *b, size_t n)
{
    void *p = bgr_arena_alloc(&b->arena, n ? n : 1);
    BGR_ASSERT(p);
    memset(p, 0, n ? n : 1);
    return p;
}

static char *sdup(struct onnx_build *b, const char *s)
{
    return bgr_arena_strdup(&b->arena, s);
}

void ob_init(struct onnx_build *b, int64_t opset)
{
    memset(b, 0, sizeof *b);
    bgr_arena_init(&b->arena, 0);
    onnx__model_proto__init(&b->model);
    onnx__graph_proto__init(&b->graph);
    onnx__operator_set_id_proto__init(&b->opset);
    b->opset.domain = "";
    b->opset.has_version = 1;
    b->opset.version = opset;
    b->opsets[0] = &b->opset;
    b->model.has_ir_version = 1;
    b->model.ir_version = 8;
    b->model.n_opset_import = 1;
    b->model.opset_import = b->opsets;
    b->model.graph = &b->graph;
    b->graph.name = "test";
    b->graph.node = b->nodes;
    b->graph.initializer = b->inits;
    b->graph.input = b->inputs;
    b->graph.output = b->outputs;
}

void ob_free(struct onnx_build *b)
{
    bgr_arena_release(&b->arena);
}

static Onnx__ValueInfoProto *value_info(struct onnx_build *b, const char *name, const int64_t *dims)
{
    Onnx__ValueInfoProto *v = zalloc(b, sizeof *v);
    onnx__value_info_proto__init(v);
    v->name = sdup(b, name);
    if (!dims)
        return v;
    Onnx__TypeProto *tp = zalloc(b, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = zalloc(b, sizeof *tt);
    Onnx__TensorShapeProto *sh = zalloc(b, sizeof *sh);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(sh);
    sh->n_dim = 4;
    sh->dim = zalloc(b, 4 * sizeof *sh->dim);
    for (int i = 0; i < 4; i++) {
        Onnx__TensorShapeProto__Dimension *d = zalloc(b, sizeof *d);
        onnx__tensor_shape_proto__dimension__init(d);
        d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        d->dim_value = dims[i];
        sh->dim[i] = d;
    }
    tt->has_elem_type = 1;
    tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tt->shape = sh;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    v->type = tp;
    return v;
}

void ob_input(struct onnx_build *b, const char *name, const int64_t dims[4])
{
    b->inputs[b->graph.n_input++] = value_info(b, name, dims);
}

void ob_output(struct onnx_build *b, const char *name)
{
    b->outputs[b->graph.n_output++] = value_info(b, name, NULL);
}

static size_t split(struct onnx_build *b, const char *list, char ***out)
{
    size_t n = 1;
    if (!list[0]) {
        *out = NULL;
        return 0;
    }
    for (const char *p = list; *p; p++)
        n += *p == ',';
    char **v = zalloc(b, n * sizeof *v);
    const char *s = list;
    for (size_t i = 0; i < n; i++) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        v[i] = bgr_arena_strndup(&b->arena, s, len);
        s = e ? e + 1 : s + len;
    }
    *out = v;
    return n;
}

Onnx__NodeProto *ob_node(struct onnx_build *b, const char *op, const char *name, const char *inputs,
                         const char *outputs)
{
    Onnx__NodeProto *n = zalloc(b, sizeof *n);
    onnx__node_proto__init(n);
    n->op_type = sdup(b, op);
    n->name = sdup(b, name);
    n->n_input = split(b, inputs, &n->input);
    n->n_output = split(b, outputs, &n->output);
    n->attribute = zalloc(b, 16 * sizeof *n->attribute);
    BGR_ASSERT(b->graph.n_node < OB_MAX);
    b->nodes[b->graph.n_node++] = n;
    return n;
}

static Onnx__AttributeProto *attr(struct onnx_build *b, Onnx__NodeProto *n, const char *name,
                                  Onnx__AttributeProto__AttributeType type)
{
    Onnx__AttributeProto *a = zalloc(b, sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = sdup(b, name);
    a->has_type = 1;
    a->type = type;
    BGR_ASSERT(n->n_attribute < 16);
    n->attribute[n->n_attribute++] = a;
    return a;
}

void ob_attr_int(struct onnx_build *b, Onnx__NodeProto *n, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = 1;
    a->i = v;
}

void ob_attr_ints(struct onnx_build *b, Onnx__NodeProto *n, const char *name, int count,
                  const int64_t *v)
{
    Onnx__AttributeProto *a = attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    a->n_ints = (size_t)count;
    a->ints = zalloc(b, (size_t)count * sizeof *a->ints);
    memcpy(a->ints, v, (size_t)count * sizeof *a->ints);
}

void ob_attr_str(struct onnx_build *b, Onnx__NodeProto *n, const char *name, const char *v)
{
    Onnx__AttributeProto *a = attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    a->has_s = 1;
    a->s.data = (uint8_t *)sdup(b, v);
    a->s.len = strlen(v);
}

void ob_attr_float(struct onnx_build *b, Onnx__NodeProto *n, const char *name, float v)
{
    Onnx__AttributeProto *a = attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    a->has_f = 1;
    a->f = v;
}

void ob_attr_tensor(struct onnx_build *b, Onnx__NodeProto *n, const char *name,
                    Onnx__TensorProto *t)
{
    Onnx__AttributeProto *a = attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
    a->t = t;
}

static uint16_t float_to_half(float f)
{
    /* round-to-nearest-even, normal range only: test weights are small */
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, e = (x >> 23) & 0xff, m = x & 0x7fffff;
    if (e < 113)
        return (uint16_t)sign; /* flush tiny values to zero */
    uint32_t h = ((e - 112) << 10) | (m >> 13), rest = m & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
        h++;
    return (uint16_t)(sign | h);
}

static Onnx__TensorProto *tensor(struct onnx_build *b, const char *name, int rank,
                                 const int64_t *dims, size_t *n)
{
    Onnx__TensorProto *t = zalloc(b, sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = sdup(b, name);
    t->n_dims = (size_t)rank;
    t->dims = zalloc(b, (size_t)rank * sizeof *t->dims);
    *n = 1;
    for (int i = 0; i < rank; i++) {
        t->dims[i] = dims[i];
        *n *= (size_t)dims[i];
    }
    t->has_data_type = 1;
    return t;
}

Onnx__TensorProto *ob_tensor_f32(struct onnx_build *b, const char *name, int rank,
                                 const int64_t *dims, const float *data, int fp16,
                                 enum ob_store store)
{
    size_t n;
    Onnx__TensorProto *t = tensor(b, name, rank, dims, &n);
    t->data_type =
        fp16 ? ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16 : ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    if (store == OB_RAW) {
        t->has_raw_data = 1;
        t->raw_data.len = n * (fp16 ? 2 : 4);
        t->raw_data.data = zalloc(b, t->raw_data.len);
        for (size_t i = 0; i < n; i++) {
            if (fp16) {
                uint16_t h = float_to_half(data[i]);
                memcpy(t->raw_data.data + 2 * i, &h, 2);
            } else {
                memcpy(t->raw_data.data + 4 * i, &data[i], 4);
            }
        }
    } else if (fp16) { /* fp16 bit patterns travel in int32_data */
        t->n_int32_data = n;
        t->int32_data = zalloc(b, n * sizeof *t->int32_data);
        for (size_t i = 0; i < n; i++)
            t->int32_data[i] = float_to_half(data[i]);
    } else {
        t->n_float_data = n;
        t->float_data = zalloc(b, n * sizeof *t->float_data);
        memcpy(t->float_data, data, n * sizeof *data);
    }
    return t;
}

Onnx__TensorProto *ob_tensor_i64(struct onnx_build *b, const char *name, int rank,
                                 const int64_t *dims, const int64_t *data, enum ob_store store)
{
    size_t n;
    Onnx__TensorProto *t = tensor(b, name, rank, dims, &n);
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    if (store == OB_RAW) {
        t->has_raw_data = 1;
        t->raw_data.len = n * 8;
        t->raw_data.data = zalloc(b, n * 8);
        memcpy(t->raw_data.data, data, n * 8);
    } else {
        t->n_int64_data = n;
        t->int64_data = zalloc(b, n * 8);
        memcpy(t->int64_data, data, n * 8);
    }
    return t;
}

void ob_initializer(struct onnx_build *b, Onnx__TensorProto *t)
{
    BGR_ASSERT(b->graph.n_initializer < OB_MAX);
    b->inits[b->graph.n_initializer++] = t;
}

uint8_t *ob_pack(struct onnx_build *b, size_t *len)
{
    size_t n = onnx__model_proto__get_packed_size(&b->model);
    uint8_t *p = zalloc(b, n);
    *len = onnx__model_proto__pack(&b->model, p);
    return p;
}

/* ---- helpers shared by the infer tests ---- */
#include <math.h>
#include <stdio.h>

float ob_rand(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*s >> 40) & 0xffffff) / (float)0x800000 - 1.0f;
}

struct bgr_model *ob_load(const uint8_t *bytes, size_t len, enum bgr_backend be,
                          struct bgr_error *err)
{
    struct bgr_model_opts o = {.backend = be, .precision = BGR_PREC_FP32};
    struct bgr_model *m = NULL;
    if (bgr_model_load_mem(bytes, len, &o, &m, err))
        return NULL;
    return m;
}

static size_t count(struct bgr_shape s)
{
    size_t n = 1;
    for (int i = 0; i < s.rank; i++)
        n *= (size_t)s.dims[i];
    return n;
}

float *ob_run(struct bgr_model *m, const float *in, size_t *n_out)
{
    struct bgr_error e = {0};
    size_t ni = count(bgr_model_input_shape(m)), no = count(bgr_model_output_shape(m));
    float *out = calloc(no, sizeof *out);
    if (bgr_model_run(m, in, ni, out, no, &e)) {
        fprintf(stderr, "  run failed: %s\n", e.msg);
        free(out);
        return NULL;
    }
    *n_out = no;
    return out;
}

double ob_compare_backends(const uint8_t *bytes, size_t len, uint64_t seed, float **ref_out,
                           size_t *n_out)
{
    struct bgr_error e = {0};
    struct bgr_model *md = ob_load(bytes, len, BGR_BACKEND_DNNL, &e), *mr = NULL;
    float *in = NULL, *od = NULL, *orf = NULL;
    double worst = -1, mag = 0;
    size_t nd = 0, nr = 0;
    if (!md) {
        fprintf(stderr, "  oneDNN load failed: %s\n", e.msg);
        goto out;
    }
    if (!(mr = ob_load(bytes, len, BGR_BACKEND_REF, &e))) {
        fprintf(stderr, "  reference load failed: %s\n", e.msg);
        goto out;
    }
    size_t ni = count(bgr_model_input_shape(md));
    in = malloc(ni * sizeof *in);
    for (size_t i = 0; i < ni; i++)
        in[i] = ob_rand(&seed);
    if (!(od = ob_run(md, in, &nd)) || !(orf = ob_run(mr, in, &nr)) || nd != nr)
        goto out;
    worst = 0;
    for (size_t i = 0; i < nr; i++)
        if (fabs(orf[i]) > mag)
            mag = fabs(orf[i]);
    for (size_t i = 0; i < nr; i++) {
        double d = fabs((double)od[i] - (double)orf[i]) / (1.0 + mag);
        if (!(d <= worst)) /* NaN counts as worst */
            worst = d != d ? 1e30 : d;
    }
    if (ref_out) {
        *ref_out = orf;
        orf = NULL;
        *n_out = nr;
    }
out:
    free(in);
    free(od);
    free(orf);
    bgr_model_free(md);
    bgr_model_free(mr);
    return worst;
}
