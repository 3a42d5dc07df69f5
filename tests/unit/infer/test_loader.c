/*
 * test_loader.c - the ONNX loader and graph passes on tiny models built here:
 * out-of-order nodes, a constant shape subgraph to fold, a side branch (with
 * an op we do not implement) to prune, Conv+Relu fusion, every way weights
 * are stored; then malformed input of every kind, which must give
 * BGR_EMODEL (or BGR_ESHAPE at run) with a useful message, never a crash.
 */
#include "infer/backend.h"
#include "onnx_build.h"
#include "runner.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const int64_t IN_DIMS[4] = {1, 3, 9, 11};

/* x -> Conv(fp16 raw weights, typed bias) -> Relu -> MaxPool(ceil) ->
 * Resize(back to the Relu's size via Shape/Slice/Concat/Cast) -> Sigmoid ->
 * Cast -> y; Relu -> Conv -> Softmax -> side (second output, pruned).
 * Nodes are added in a scrambled order. store picks typed or raw fields. */
static void build_tiny(struct onnx_build *b, enum ob_store store)
{
    uint64_t s = 99;
    float w[5 * 3 * 9], bias[5], w2[2 * 5 * 9];
    for (size_t i = 0; i < BGR_ARRAY_LEN(w); i++)
        w[i] = 0.3f * ob_rand(&s);
    for (size_t i = 0; i < BGR_ARRAY_LEN(bias); i++)
        bias[i] = 0.1f * ob_rand(&s);
    for (size_t i = 0; i < BGR_ARRAY_LEN(w2); i++)
        w2[i] = 0.3f * ob_rand(&s);
    ob_init(b, 15);
    ob_input(b, "x", IN_DIMS);
    ob_output(b, "y");
    ob_output(b, "side");
    ob_initializer(b, ob_tensor_f32(b, "w", 4, (int64_t[]){5, 3, 3, 3}, w, 1, store));
    ob_initializer(b, ob_tensor_f32(b, "b", 1, (int64_t[]){5}, bias, 0, store));
    ob_initializer(b, ob_tensor_f32(b, "w2", 4, (int64_t[]){2, 5, 3, 3}, w2, 1, store));
    ob_initializer(b, ob_tensor_i64(b, "nc", 1, (int64_t[]){2}, (int64_t[]){1, 5}, store));

    ob_node(b, "Cast", "to_float", "sig", "y");
    ob_attr_int(b, b->nodes[0], "to", 1);
    ob_node(b, "Sigmoid", "sigmoid", "up", "sig");
    Onnx__NodeProto *rs = ob_node(b, "Resize", "resize", "pool,,,sizes64", "up");
    ob_attr_str(b, rs, "mode", "linear");
    ob_attr_str(b, rs, "coordinate_transformation_mode", "half_pixel");
    ob_attr_int(b, ob_node(b, "Cast", "sizes_cast", "sizes", "sizes64"), "to", 7);
    ob_attr_int(b, ob_node(b, "Concat", "sizes_cat", "nc,hw", "sizes"), "axis", 0);
    ob_node(b, "Slice", "hw_slice", "shape,start,end", "hw");
    Onnx__NodeProto *cs = ob_node(b, "Constant", "c_start", "", "start");
    ob_attr_tensor(b, cs, "value", ob_tensor_i64(b, "", 1, (int64_t[]){1}, (int64_t[]){2}, store));
    Onnx__NodeProto *ce = ob_node(b, "Constant", "c_end", "", "end");
    ob_attr_tensor(b, ce, "value", ob_tensor_i64(b, "", 1, (int64_t[]){1}, (int64_t[]){4}, store));
    ob_node(b, "Shape", "shape", "r", "shape");
    Onnx__NodeProto *mp = ob_node(b, "MaxPool", "pool", "r", "pool");
    ob_attr_ints(b, mp, "kernel_shape", 2, (int64_t[]){2, 2});
    ob_attr_ints(b, mp, "strides", 2, (int64_t[]){2, 2});
    ob_attr_int(b, mp, "ceil_mode", 1);
    ob_node(b, "Softmax", "side_softmax", "side_conv", "side");
    ob_attr_ints(b, ob_node(b, "Conv", "side_conv", "r,w2", "side_conv"), "pads", 4,
                 (int64_t[]){1, 1, 1, 1});
    ob_node(b, "Relu", "relu", "c", "r");
    Onnx__NodeProto *cv = ob_node(b, "Conv", "conv", "x,w,b", "c");
    ob_attr_ints(b, cv, "pads", 4, (int64_t[]){1, 1, 1, 1});
    ob_attr_ints(b, cv, "kernel_shape", 2, (int64_t[]){3, 3});
}

BGR_TEST(tiny_model_prune_fold_fuse)
{
    struct onnx_build b;
    struct bgr_graph g;
    struct bgr_error e = {0};
    size_t len;
    build_tiny(&b, OB_RAW);
    uint8_t *bytes = ob_pack(&b, &len);
    int rc = bgr_onnx_load(bytes, len, &g, &e);
    if (rc)
        fprintf(stderr, "  %s\n", e.msg);
    BGR_REQUIRE(rc == 0);
    /* Conv(+Relu), MaxPool, Resize, Sigmoid: the shape subgraph is folded,
     * the casts are aliases, the side branch is gone */
    BGR_CHECK_EQ_INT(g.norder, 4);
    static const enum bgr_opk want[] = {BGR_OP_CONV, BGR_OP_MAXPOOL, BGR_OP_RESIZE, BGR_OP_SIGMOID};
    for (int k = 0; k < g.norder && k < 4; k++)
        BGR_CHECK_EQ_INT(g.nodes[g.order[k]].op, want[k]);
    BGR_CHECK_EQ_INT(g.nodes[g.order[0]].conv.relu, 1);
    BGR_CHECK_EQ_INT(g.macs, 5 * 9 * 11 * 3 * 9);
    BGR_CHECK_EQ_INT(g.vals[g.output].dims[2], 9);
    BGR_CHECK_EQ_INT(g.vals[g.output].dims[3], 11);
    bgr_graph_release(&g);

    float *ref = NULL;
    size_t n = 0;
    double d = ob_compare_backends(bytes, len, 5, &ref, &n);
    BGR_CHECK(d >= 0 && d <= 2e-5);
    BGR_CHECK_EQ_INT(n, 1 * 5 * 9 * 11);
    for (size_t i = 0; ref && i < n; i++)
        BGR_CHECK(ref[i] > 0 && ref[i] < 1);
    free(ref);
    ob_free(&b);
}

/* The other shape-subgraph ops: Gather, Unsqueeze, Squeeze, Mul, Div, Sub,
 * Reshape, Identity and Cast all fold; Resize then doubles H and halves W. */
BGR_TEST(shape_subgraph_ops_fold)
{
    struct onnx_build b;
    struct bgr_graph g;
    struct bgr_error e = {0};
    size_t len;
    ob_init(&b, 13);
    ob_input(&b, "x", (int64_t[]){1, 2, 6, 8});
    ob_node(&b, "Shape", "shape", "x", "s"); /* [1,2,6,8] */
    ob_initializer(&b, ob_tensor_i64(&b, "i2", 0, NULL, (int64_t[]){2}, OB_RAW));
    ob_initializer(&b, ob_tensor_i64(&b, "im1", 1, (int64_t[]){1}, (int64_t[]){-1}, OB_TYPED));
    ob_initializer(&b, ob_tensor_i64(&b, "two", 0, NULL, (int64_t[]){2}, OB_RAW));
    ob_initializer(&b, ob_tensor_i64(&b, "ax0", 1, (int64_t[]){1}, (int64_t[]){0}, OB_RAW));
    ob_initializer(&b, ob_tensor_i64(&b, "shp", 1, (int64_t[]){1}, (int64_t[]){-1}, OB_RAW));
    ob_initializer(&b, ob_tensor_i64(&b, "zero", 0, NULL, (int64_t[]){0}, OB_RAW));
    ob_node(&b, "Gather", "gh", "s,i2", "h");        /* 6, a scalar */
    ob_node(&b, "Mul", "mul", "h,two", "h2");        /* 12 */
    ob_node(&b, "Unsqueeze", "uh", "h2,ax0", "h2v"); /* [12] */
    ob_node(&b, "Gather", "gw", "s,im1", "wv");      /* [8] */
    ob_node(&b, "Div", "div", "wv,two", "w2");       /* [4] */
    ob_node(&b, "Sub", "sub", "w2,zero", "w3");      /* [4] */
    ob_node(&b, "Identity", "id", "w3", "w4");
    Onnx__NodeProto *sl = ob_node(&b, "Slice", "nc", "s,zero1,two1", "nc");
    ob_initializer(&b, ob_tensor_i64(&b, "zero1", 1, (int64_t[]){1}, (int64_t[]){0}, OB_RAW));
    ob_initializer(&b, ob_tensor_i64(&b, "two1", 1, (int64_t[]){1}, (int64_t[]){2}, OB_RAW));
    (void)sl;
    ob_attr_int(&b, ob_node(&b, "Concat", "cat", "nc,h2v,w4", "sz4"), "axis", 0);
    ob_node(&b, "Reshape", "rs", "sz4,shp", "sz5");
    ob_node(&b, "Unsqueeze", "u2", "sz5,ax0", "sz6"); /* [1,4] */
    ob_node(&b, "Squeeze", "sq", "sz6,ax0", "sz7");   /* [4] */
    ob_attr_int(&b, ob_node(&b, "Cast", "cf", "sz7", "szf"), "to", 1);
    ob_attr_int(&b, ob_node(&b, "Cast", "ci", "szf", "sizes"), "to", 7);
    ob_attr_str(&b, ob_node(&b, "Resize", "resize", "x,,,sizes", "y"), "mode", "linear");
    ob_output(&b, "y");
    uint8_t *bytes = ob_pack(&b, &len);
    int rc = bgr_onnx_load(bytes, len, &g, &e);
    if (rc)
        fprintf(stderr, "  %s\n", e.msg);
    BGR_REQUIRE(rc == 0);
    BGR_CHECK_EQ_INT(g.norder, 1);
    BGR_CHECK_EQ_INT(g.vals[g.output].dims[1], 2);
    BGR_CHECK_EQ_INT(g.vals[g.output].dims[2], 12);
    BGR_CHECK_EQ_INT(g.vals[g.output].dims[3], 4);
    bgr_graph_release(&g);
    BGR_CHECK(ob_compare_backends(bytes, len, 1, NULL, NULL) <= 2e-5);
    ob_free(&b);
}

/* Raw and typed storage give the same model. */
BGR_TEST(tiny_model_typed_fields)
{
    struct onnx_build b1, b2;
    size_t l1, l2, n1 = 0, n2 = 0;
    float *o1 = NULL, *o2 = NULL;
    build_tiny(&b1, OB_RAW);
    build_tiny(&b2, OB_TYPED);
    uint8_t *p1 = ob_pack(&b1, &l1), *p2 = ob_pack(&b2, &l2);
    BGR_CHECK(ob_compare_backends(p1, l1, 3, &o1, &n1) >= 0);
    BGR_CHECK(ob_compare_backends(p2, l2, 3, &o2, &n2) >= 0);
    BGR_CHECK(n1 == n2 && n1 > 0);
    BGR_CHECK(o1 && o2 && memcmp(o1, o2, n1 * sizeof *o1) == 0);
    free(o1);
    free(o2);
    ob_free(&b1);
    ob_free(&b2);
}

/* Loads bytes with the reference backend; returns rc and the message. */
static int try_load(const uint8_t *bytes, size_t len, struct bgr_error *e)
{
    struct bgr_model *m = NULL;
    struct bgr_model_opts o = {.backend = BGR_BACKEND_REF};
    bgr_error_clear(e);
    int rc = bgr_model_load_mem(bytes, len, &o, &m, e);
    bgr_model_free(m);
    return rc;
}

static void expect_model_error(struct onnx_build *b, const char *needle)
{
    struct bgr_error e;
    size_t len;
    uint8_t *bytes = ob_pack(b, &len);
    int rc = try_load(bytes, len, &e);
    BGR_CHECK_EQ_INT(rc, BGR_EMODEL);
    if (!strstr(e.msg, needle)) {
        fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", e.msg, needle);
        BGR_CHECK(0);
    }
}

BGR_TEST(random_bytes_refused)
{
    uint64_t s = 4242;
    struct bgr_error e;
    uint8_t buf[2048];
    BGR_CHECK_EQ_INT(try_load(NULL, 0, &e), BGR_EMODEL);
    for (int it = 0; it < 300; it++) {
        size_t len = 1 + (size_t)((ob_rand(&s) + 1.0f) * 1000.0f);
        for (size_t i = 0; i < len; i++)
            buf[i] = (uint8_t)((ob_rand(&s) + 1.0f) * 128.0f);
        BGR_CHECK_EQ_INT(try_load(buf, len, &e), BGR_EMODEL);
    }
}

BGR_TEST(truncated_everywhere)
{
    struct onnx_build b;
    struct bgr_error e;
    size_t len;
    build_tiny(&b, OB_RAW);
    uint8_t *bytes = ob_pack(&b, &len);
    int loaded = 0;
    for (size_t cut = 0; cut < len; cut++) {
        struct bgr_model *m = NULL;
        struct bgr_model_opts o = {.backend = BGR_BACKEND_REF};
        int rc = bgr_model_load_mem(bytes, cut, &o, &m, &e);
        /* a cut at a field boundary can leave a valid smaller model, which
         * must still load and run; anything else is a clean refusal */
        if (rc == 0) {
            loaded++;
            float in[3 * 9 * 11] = {0}, *out;
            size_t n;
            out = ob_run(m, in, &n);
            BGR_CHECK(out != NULL);
            free(out);
        } else {
            BGR_CHECK_EQ_INT(rc, BGR_EMODEL);
        }
        bgr_model_free(m);
    }
    BGR_CHECK(loaded < 3);
    ob_free(&b);
}

/* Random byte changes to a valid model: every load either succeeds (and
 * the model runs) or is a clean refusal. A cheap in-tree fuzz pass;
 * BGR_INFER_MUTATIONS=N (and BGR_INFER_SEED) run a longer one. */
BGR_TEST(mutated_models)
{
    struct onnx_build b;
    struct bgr_error e;
    size_t len;
    const char *env_n = getenv("BGR_INFER_MUTATIONS"), *env_s = getenv("BGR_INFER_SEED");
    long iters = env_n ? strtol(env_n, NULL, 10) : 400;
    uint64_t s = env_s ? strtoull(env_s, NULL, 10) : 777;
    build_tiny(&b, OB_RAW);
    const uint8_t *orig = ob_pack(&b, &len);
    uint8_t *bytes = malloc(len);
    int loaded = 0;
    BGR_REQUIRE(bytes);
    for (long it = 0; it < iters; it++) {
        memcpy(bytes, orig, len);
        int nmut = 1 + it % 4;
        for (int k = 0; k < nmut; k++) {
            size_t at = (size_t)((ob_rand(&s) + 1.0f) * 0.5f * (float)len) % len;
            bytes[at] = (uint8_t)((ob_rand(&s) + 1.0f) * 128.0f);
        }
        struct bgr_model *m = NULL;
        struct bgr_model_opts o = {.backend = it & 1 ? BGR_BACKEND_REF : BGR_BACKEND_DNNL};
        int rc = bgr_model_load_mem(bytes, len, &o, &m, &e);
        if (rc == 0) {
            struct bgr_shape is = bgr_model_input_shape(m);
            size_t n = (size_t)(is.dims[0] * is.dims[1] * is.dims[2] * is.dims[3]), no = 0;
            float *in = calloc(n, sizeof *in), *out = in ? ob_run(m, in, &no) : NULL;
            BGR_CHECK(out != NULL);
            free(in);
            free(out);
            loaded++;
        } else if (rc != BGR_EMODEL && rc != BGR_ENOMEM) {
            fprintf(stderr, "  mutation %ld: rc %d: %s\n", it, rc, e.msg);
            BGR_CHECK(0);
        }
        bgr_model_free(m);
    }
    fprintf(stderr, "  %d of %ld mutated models still loaded\n", loaded, iters);
    free(bytes);
    ob_free(&b);
}

BGR_TEST(cycle_and_missing_input)
{
    struct onnx_build b;
    ob_init(&b, 15);
    ob_input(&b, "x", IN_DIMS);
    ob_node(&b, "Add", "a1", "x,q", "p");
    ob_node(&b, "Relu", "r1", "p", "q");
    ob_output(&b, "q");
    expect_model_error(&b, "cycle");
    ob_free(&b);

    ob_init(&b, 15);
    ob_input(&b, "x", IN_DIMS);
    ob_node(&b, "Add", "a1", "x,ghost", "y");
    ob_output(&b, "y");
    expect_model_error(&b, "ghost");
    ob_free(&b);

    ob_init(&b, 15);
    ob_input(&b, "x", IN_DIMS);
    ob_node(&b, "Relu", "r1", "x", "y");
    ob_node(&b, "Relu", "r2", "x", "y");
    ob_output(&b, "y");
    expect_model_error(&b, "defined twice");
    ob_free(&b);

    ob_init(&b, 15);
    ob_input(&b, "x", IN_DIMS);
    ob_node(&b, "Relu", "r1", "x", "y");
    ob_output(&b, "nowhere");
    expect_model_error(&b, "nowhere");
    ob_free(&b);
}

BGR_TEST(unsupported_op_named)
{
    struct onnx_build b;
    ob_init(&b, 15);
    ob_input(&b, "x", IN_DIMS);
    ob_node(&b, "Relu", "r", "x", "r");
    ob_node(&b, "DynamicQuantizeLinear", "dq", "r", "y,ys,yz");
    ob_output(&b, "y");
    expect_model_error(&b, "DynamicQuantizeLinear");
    ob_free(&b);

    ob_init(&b, 15);
    ob_input(&b, "x", IN_DIMS);
    ob_attr_str(&b, ob_node(&b, "Resize", "rs", "x,,,", "y"), "mode", "cubic");
    ob_output(&b, "y");
    expect_model_error(&b, "cubic");
    ob_free(&b);

    /* a secondary output (MaxPool's indices) is not computed */
    ob_init(&b, 15);
    ob_input(&b, "x", IN_DIMS);
    ob_attr_ints(&b, ob_node(&b, "MaxPool", "mp", "x", "p,idx"), "kernel_shape", 2,
                 (int64_t[]){2, 2});
    ob_node(&b, "Relu", "r", "idx", "y");
    ob_output(&b, "y");
    expect_model_error(&b, "secondary");
    ob_free(&b);
}

BGR_TEST(bad_tensors_and_attributes)
{
    struct onnx_build b;
    float w[27] = {0};
    Onnx__TensorProto *t;

    /* raw data shorter than the dims say */
    ob_init(&b, 15);
    ob_input(&b, "x", IN_DIMS);
    t = ob_tensor_f32(&b, "w", 4, (int64_t[]){1, 3, 3, 3}, w, 0, OB_RAW);
    t->raw_data.len -= 4;
    ob_initializer(&b, t);
    ob_node(&b, "Conv", "c", "x,w", "y");
    ob_output(&b, "y");
    expect_model_error(&b, "raw data");
    ob_free(&b);

    /* external data */
    ob_init(&b, 15);
    ob_input(&b, "x", IN_DIMS);
    t = ob_tensor_f32(&b, "w", 4, (int64_t[]){1, 3, 3, 3}, w, 0, OB_RAW);
    t->has_data_location = 1;
    t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    ob_initializer(&b, t);
    ob_node(&b, "Conv", "c", "x,w", "y");
    ob_output(&b, "y");
    expect_model_error(&b, "external");
    ob_free(&b);

    /* strides given as one integer instead of a list */
    ob_init(&b, 15);
    ob_input(&b, "x", IN_DIMS);
    ob_initializer(&b, ob_tensor_f32(&b, "w", 4, (int64_t[]){1, 3, 3, 3}, w, 0, OB_RAW));
    ob_attr_int(&b, ob_node(&b, "Conv", "c", "x,w", "y"), "strides", 2);
    ob_output(&b, "y");
    expect_model_error(&b, "strides");
    ob_free(&b);

    /* kernel larger than the input */
    float big[3 * 13 * 13] = {0};
    ob_init(&b, 15);
    ob_input(&b, "x", IN_DIMS);
    ob_initializer(&b, ob_tensor_f32(&b, "w", 4, (int64_t[]){1, 3, 13, 13}, big, 0, OB_RAW));
    ob_node(&b, "Conv", "c", "x,w", "y");
    ob_output(&b, "y");
    expect_model_error(&b, "kernel larger");
    ob_free(&b);

    /* weights with the wrong channel count */
    ob_init(&b, 15);
    ob_input(&b, "x", IN_DIMS);
    ob_initializer(&b, ob_tensor_f32(&b, "w", 4, (int64_t[]){3, 1, 3, 3}, w, 0, OB_RAW));
    ob_node(&b, "Conv", "c", "x,w", "y");
    ob_output(&b, "y");
    expect_model_error(&b, "channels");
    ob_free(&b);

    /* Add of activations with different shapes */
    ob_init(&b, 15);
    ob_input(&b, "x", IN_DIMS);
    ob_attr_ints(&b, ob_node(&b, "MaxPool", "mp", "x", "p"), "kernel_shape", 2, (int64_t[]){2, 2});
    ob_node(&b, "Add", "a", "x,p", "y");
    ob_output(&b, "y");
    expect_model_error(&b, "same shape");
    ob_free(&b);

    /* an input of unknown size */
    ob_init(&b, 15);
    ob_input(&b, "x", IN_DIMS);
    b.inputs[0]->type->tensor_type->shape->dim[2]->value_case =
        ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
    b.inputs[0]->type->tensor_type->shape->dim[2]->dim_param = "height";
    ob_node(&b, "Relu", "r", "x", "y");
    ob_output(&b, "y");
    expect_model_error(&b, "fixed size");
    ob_free(&b);

    /* a Gather index out of range in a shape subgraph */
    ob_init(&b, 15);
    ob_input(&b, "x", IN_DIMS);
    ob_node(&b, "Shape", "s", "x", "s");
    ob_initializer(&b, ob_tensor_i64(&b, "i", 1, (int64_t[]){1}, (int64_t[]){7}, OB_RAW));
    ob_node(&b, "Gather", "g", "s,i", "gi");
    ob_attr_str(&b, ob_node(&b, "Resize", "rs", "x,,,gi", "y"), "mode", "linear");
    ob_output(&b, "y");
    expect_model_error(&b, "index out of range");
    ob_free(&b);
}

BGR_TEST(wrong_tensor_sizes_at_run)
{
    struct onnx_build b;
    struct bgr_error e = {0};
    size_t len;
    build_tiny(&b, OB_RAW);
    uint8_t *bytes = ob_pack(&b, &len);
    for (int be = 0; be < 2; be++) {
        struct bgr_model *m = ob_load(bytes, len, be ? BGR_BACKEND_REF : BGR_BACKEND_DNNL, &e);
        BGR_REQUIRE(m);
        float in[3 * 9 * 11 + 1] = {0}, out[5 * 9 * 11 + 1];
        BGR_CHECK_EQ_INT(bgr_model_run(m, in, 3 * 9 * 11 - 1, out, 5 * 9 * 11, &e), BGR_ESHAPE);
        BGR_CHECK(strstr(e.msg, "input") != NULL);
        BGR_CHECK_EQ_INT(bgr_model_run(m, in, 3 * 9 * 11 + 1, out, 5 * 9 * 11, &e), BGR_ESHAPE);
        BGR_CHECK_EQ_INT(bgr_model_run(m, in, 3 * 9 * 11, out, 5 * 9 * 11 + 1, &e), BGR_ESHAPE);
        BGR_CHECK_EQ_INT(bgr_model_run(m, in, 3 * 9 * 11, out, 5 * 9 * 11, &e), 0);
        BGR_CHECK_STR(bgr_model_precision_name(m), "fp32");
        bgr_model_free(m);
    }
    /* int8 loads a file (its calibration file lies next to it: test_int8.c);
     * bf16 only on oneDNN with native support */
    struct bgr_model *m = NULL;
    struct bgr_model_opts o = {.precision = BGR_PREC_INT8};
    BGR_CHECK_EQ_INT(bgr_model_load_mem(bytes, len, &o, &m, &e), BGR_EMODEL);
    BGR_CHECK(m == NULL);
    o = (struct bgr_model_opts){.precision = BGR_PREC_BF16, .backend = BGR_BACKEND_REF};
    BGR_CHECK_EQ_INT(bgr_model_load_mem(bytes, len, &o, &m, &e), BGR_EMODEL);
    o.backend = BGR_BACKEND_DNNL;
    if (bgr_dnnl_has_bf16()) {
        BGR_CHECK_EQ_INT(bgr_model_load_mem(bytes, len, &o, &m, &e), 0);
        BGR_CHECK_STR(m ? bgr_model_precision_name(m) : NULL, "bf16");
        bgr_model_free(m);
        m = NULL;
    } else {
        BGR_CHECK_EQ_INT(bgr_model_load_mem(bytes, len, &o, &m, &e), BGR_EMODEL);
    }
    /* AUTO: what this CPU does best (bf16 where native), fp32 on the reference */
    o = (struct bgr_model_opts){.precision = BGR_PREC_AUTO};
    BGR_CHECK_EQ_INT(bgr_model_load_mem(bytes, len, &o, &m, &e), 0);
    BGR_CHECK_STR(m ? bgr_model_precision_name(m) : NULL,
                  bgr_precision_auto() == BGR_PREC_BF16 ? "bf16" : "fp32");
    BGR_CHECK_EQ_INT(bgr_precision_auto(), bgr_dnnl_has_bf16() ? BGR_PREC_BF16 : BGR_PREC_FP32);
    bgr_model_free(m);
    m = NULL;
    o.backend = BGR_BACKEND_REF;
    BGR_CHECK_EQ_INT(bgr_model_load_mem(bytes, len, &o, &m, &e), 0);
    BGR_CHECK_STR(m ? bgr_model_precision_name(m) : NULL, "fp32");
    bgr_model_free(m);
    m = NULL;
    BGR_CHECK_EQ_INT(bgr_model_load_file("/nonexistent/model.onnx", NULL, &m, &e), BGR_EIO);
    ob_free(&b);
}

struct thread_arg {
    struct bgr_model *m;
    const float *in;
    float out[5 * 9 * 11];
    int rc;
};

static void *run_thread(void *p)
{
    struct thread_arg *a = p;
    struct bgr_error e;
    for (int i = 0; i < 20 && a->rc == 0; i++)
        a->rc = bgr_model_run(a->m, a->in, 3 * 9 * 11, a->out, 5 * 9 * 11, &e);
    return NULL;
}

/* Runs of one model from several threads are serialised and all correct. */
BGR_TEST(runs_from_threads)
{
    struct onnx_build b;
    struct bgr_error e = {0};
    size_t len, n = 0;
    uint64_t s = 8;
    float in[3 * 9 * 11];
    build_tiny(&b, OB_RAW);
    uint8_t *bytes = ob_pack(&b, &len);
    struct bgr_model *m = ob_load(bytes, len, BGR_BACKEND_DNNL, &e);
    BGR_REQUIRE(m);
    for (size_t i = 0; i < BGR_ARRAY_LEN(in); i++)
        in[i] = ob_rand(&s);
    float *want = ob_run(m, in, &n);
    BGR_REQUIRE(want);
    struct thread_arg args[4];
    pthread_t th[4];
    for (int t = 0; t < 4; t++) {
        args[t] = (struct thread_arg){.m = m, .in = in};
        BGR_CHECK(pthread_create(&th[t], NULL, run_thread, &args[t]) == 0);
    }
    for (int t = 0; t < 4; t++) {
        pthread_join(th[t], NULL);
        BGR_CHECK_EQ_INT(args[t].rc, 0);
        BGR_CHECK(memcmp(args[t].out, want, n * sizeof *want) == 0);
    }
    free(want);
    bgr_model_free(m);
    ob_free(&b);
}

BGR_TEST_MAIN()
