/*
 * test_ops.c - every executed op on small random tensors, oneDNN against the
 * reference backend (odd sizes, channel counts that are not multiples of 8 or
 * 16, every dilation ISNet uses, both strides, ceil_mode, resize by sizes and
 * by scales), plus known answers that pin the reference itself to the ONNX
 * spec (its published Resize examples among them).
 */
#include "infer/backend.h"
#include "onnx_build.h"
#include "runner.h"

#include <stdlib.h>
#include <string.h>

#define TOL 2e-5

static uint64_t seed = 12345;

static void rand_fill(float *p, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++)
        p[i] = scale * ob_rand(&seed);
}

/* Adds a random conv (weights as initializers) from in to out. */
static void add_conv(struct onnx_build *b, const char *name, const char *in, const char *out,
                     int64_t C, int64_t M, int64_t k, int64_t stride, int64_t dil, int64_t group,
                     int bias)
{
    char inputs[256], wname[64], bname[64];
    int64_t wd[4] = {M, C / group, k, k}, bd[1] = {M};
    size_t nw = (size_t)(M * (C / group) * k * k);
    float *w = malloc(nw * sizeof *w), *bv = malloc((size_t)M * sizeof *bv);
    snprintf(wname, sizeof wname, "%s.w", name);
    snprintf(bname, sizeof bname, "%s.b", name);
    rand_fill(w, nw, 1.0f / (float)(k * k * C / group));
    rand_fill(bv, (size_t)M, 0.5f);
    ob_initializer(b, ob_tensor_f32(b, wname, 4, wd, w, 0, OB_RAW));
    if (bias)
        ob_initializer(b, ob_tensor_f32(b, bname, 1, bd, bv, 0, OB_TYPED));
    snprintf(inputs, sizeof inputs, "%s,%s%s%s", in, wname, bias ? "," : "", bias ? bname : "");
    Onnx__NodeProto *n = ob_node(b, "Conv", name, inputs, out);
    int64_t pad = dil * (k / 2);
    ob_attr_ints(b, n, "kernel_shape", 2, (int64_t[]){k, k});
    ob_attr_ints(b, n, "strides", 2, (int64_t[]){stride, stride});
    ob_attr_ints(b, n, "dilations", 2, (int64_t[]){dil, dil});
    ob_attr_ints(b, n, "pads", 4, (int64_t[]){pad, pad, pad, pad});
    ob_attr_int(b, n, "group", group);
    free(w);
    free(bv);
}

static double conv_case(int64_t C, int64_t M, int64_t H, int64_t W, int64_t k, int64_t s, int64_t d,
                        int64_t g, int relu, int bias)
{
    struct onnx_build b;
    size_t len;
    ob_init(&b, 15);
    ob_input(&b, "x", (int64_t[]){1, C, H, W});
    add_conv(&b, "conv", "x", relu ? "c" : "y", C, M, k, s, d, g, bias);
    if (relu)
        ob_node(&b, "Relu", "relu", "c", "y");
    ob_output(&b, "y");
    uint8_t *bytes = ob_pack(&b, &len);
    double diff = ob_compare_backends(bytes, len, seed++, NULL, NULL);
    ob_free(&b);
    if (!(diff >= 0 && diff <= TOL))
        fprintf(stderr, "  conv C%lld M%lld %lldx%lld k%lld s%lld d%lld g%lld relu%d: diff %g\n",
                (long long)C, (long long)M, (long long)H, (long long)W, (long long)k, (long long)s,
                (long long)d, (long long)g, relu, diff);
    return diff;
}

BGR_TEST(conv_dilations_strides_odd_sizes)
{
    static const int64_t chans[][2] = {{3, 5}, {13, 8}, {16, 13}, {5, 32}};
    static const int64_t sizes[][2] = {{13, 11}, {9, 17}, {20, 20}};
    for (int c = 0; c < 4; c++)
        for (int64_t d = 1; d <= 8; d *= 2)
            for (int64_t s = 1; s <= 2; s++) {
                const int64_t *hw = sizes[(c + d + s) % 3];
                double diff = conv_case(chans[c][0], chans[c][1], hw[0], hw[1], 3, s, d, 1,
                                        (c + (int)d) & 1, c != 1);
                BGR_CHECK(diff >= 0 && diff <= TOL);
            }
}

BGR_TEST(conv_kernels_groups_relu)
{
    BGR_CHECK(conv_case(7, 9, 11, 10, 1, 1, 1, 1, 0, 1) <= TOL);   /* 1x1 */
    BGR_CHECK(conv_case(6, 10, 12, 9, 5, 2, 1, 1, 1, 1) <= TOL);   /* 5x5 stride 2 */
    BGR_CHECK(conv_case(8, 12, 10, 11, 3, 1, 1, 2, 1, 1) <= TOL);  /* group 2 */
    BGR_CHECK(conv_case(16, 16, 9, 9, 3, 1, 2, 16, 0, 1) <= TOL);  /* depthwise */
    BGR_CHECK(conv_case(64, 64, 16, 16, 3, 1, 1, 1, 1, 1) <= TOL); /* ISNet-like */
    BGR_CHECK(conv_case(3, 64, 33, 31, 3, 2, 1, 1, 1, 1) <= TOL);  /* ISNet's first layer */
}

/* One op after a conv (so the oneDNN path sees blocked layouts). */
static double after_conv_case(int64_t C, int64_t H, int64_t W,
                              void (*add)(struct onnx_build *b, void *arg), void *arg)
{
    struct onnx_build b;
    size_t len;
    ob_init(&b, 15);
    ob_input(&b, "x", (int64_t[]){1, 3, H, W});
    add_conv(&b, "conv", "x", "c", 3, C, 3, 1, 1, 1, 1);
    add(&b, arg);
    ob_output(&b, "y");
    uint8_t *bytes = ob_pack(&b, &len);
    double diff = ob_compare_backends(bytes, len, seed++, NULL, NULL);
    ob_free(&b);
    return diff;
}

struct pool_arg {
    int64_t k, s, pad, ceil;
};

static void add_pool(struct onnx_build *b, void *arg)
{
    const struct pool_arg *p = arg;
    Onnx__NodeProto *n = ob_node(b, "MaxPool", "pool", "c", "y");
    ob_attr_ints(b, n, "kernel_shape", 2, (int64_t[]){p->k, p->k});
    ob_attr_ints(b, n, "strides", 2, (int64_t[]){p->s, p->s});
    ob_attr_ints(b, n, "pads", 4, (int64_t[]){p->pad, p->pad, p->pad, p->pad});
    ob_attr_int(b, n, "ceil_mode", p->ceil);
}

BGR_TEST(maxpool_ceil_mode_odd_sizes)
{
    static const struct pool_arg cases[] = {
        {2, 2, 0, 1}, {2, 2, 0, 0}, {3, 2, 1, 1}, {3, 2, 0, 1}, {3, 3, 1, 0}, {2, 1, 0, 1},
    };
    static const int64_t sizes[][3] = {{13, 7, 9}, {5, 5, 5}, {16, 11, 12}, {8, 1, 3}};
    for (size_t c = 0; c < BGR_ARRAY_LEN(cases); c++)
        for (int s = 0; s < 4; s++) {
            if (sizes[s][1] + 2 * cases[c].pad < cases[c].k ||
                sizes[s][2] + 2 * cases[c].pad < cases[c].k)
                continue;
            double d =
                after_conv_case(sizes[s][0], sizes[s][1], sizes[s][2], add_pool, (void *)&cases[c]);
            if (!(d >= 0 && d <= TOL))
                fprintf(stderr, "  pool case %zu size %d: %g\n", c, s, d);
            BGR_CHECK(d >= 0 && d <= TOL);
        }
}

struct resize_arg {
    int64_t oh, ow; /* by sizes when > 0 */
    float sh, sw;   /* else by scales */
};

static void add_resize(struct onnx_build *b, void *arg)
{
    const struct resize_arg *r = arg;
    Onnx__NodeProto *n;
    if (r->oh > 0) {
        /* sizes through a constant shape subgraph, as ISNet builds them */
        ob_node(b, "Shape", "shape", "c", "shp");
        ob_initializer(b, ob_tensor_i64(b, "s0", 1, (int64_t[]){1}, (int64_t[]){0}, OB_RAW));
        ob_initializer(b, ob_tensor_i64(b, "s2", 1, (int64_t[]){1}, (int64_t[]){2}, OB_TYPED));
        ob_initializer(
            b, ob_tensor_i64(b, "hw", 1, (int64_t[]){2}, (int64_t[]){r->oh, r->ow}, OB_RAW));
        ob_node(b, "Slice", "slice", "shp,s0,s2", "nc");
        ob_node(b, "Concat", "cat", "nc,hw", "sizes");
        ob_attr_int(b, b->nodes[b->graph.n_node - 1], "axis", 0);
        n = ob_node(b, "Resize", "resize", "c,,,sizes", "y");
    } else {
        ob_initializer(b, ob_tensor_f32(b, "scales", 1, (int64_t[]){4},
                                        (float[]){1, 1, r->sh, r->sw}, 0, OB_RAW));
        n = ob_node(b, "Resize", "resize", "c,,scales", "y");
    }
    ob_attr_str(b, n, "mode", "linear");
    ob_attr_str(b, n, "coordinate_transformation_mode", "half_pixel");
}

BGR_TEST(resize_sizes_and_scales)
{
    static const struct resize_arg cases[] = {
        {14, 10, 0, 0},     {13, 19, 0, 0},     {4, 3, 0, 0},
        {9, 7, 0, 0},       {32, 32, 0, 0},     {0, 0, 2.0f, 2.0f},
        {0, 0, 0.5f, 0.5f}, {0, 0, 0.6f, 0.6f}, {0, 0, 1.5f, 3.0f},
    };
    for (size_t c = 0; c < BGR_ARRAY_LEN(cases); c++) {
        double d = after_conv_case(13, 8, 7, add_resize, (void *)&cases[c]);
        if (!(d >= 0 && d <= TOL))
            fprintf(stderr, "  resize case %zu: %g\n", c, d);
        BGR_CHECK(d >= 0 && d <= TOL);
    }
}

/* Concat of blocked and plain producers, Add, Sigmoid, Relu, in one chain. */
BGR_TEST(concat_add_sigmoid_chain)
{
    struct onnx_build b;
    size_t len;
    ob_init(&b, 15);
    ob_input(&b, "x", (int64_t[]){1, 3, 15, 13});
    add_conv(&b, "c1", "x", "a", 3, 16, 3, 1, 1, 1, 1);
    add_conv(&b, "c2", "x", "b", 3, 5, 3, 1, 2, 1, 1);
    ob_node(&b, "Relu", "r1", "a", "ar");
    ob_node(&b, "Sigmoid", "s0", "x", "xs");
    ob_attr_int(&b, ob_node(&b, "Concat", "cat", "ar,b,xs", "cat"), "axis", 1);
    add_conv(&b, "c3", "cat", "d", 24, 24, 3, 1, 4, 1, 1);
    ob_node(&b, "Relu", "r3", "d", "dr"); /* fused into c3 */
    ob_node(&b, "Add", "add", "dr,cat", "e");
    ob_node(&b, "Relu", "r4", "e", "er"); /* not after a conv: a real eltwise */
    add_conv(&b, "c4", "er", "f", 24, 1, 3, 1, 1, 1, 1);
    ob_node(&b, "Sigmoid", "sig", "f", "y");
    ob_output(&b, "y");
    uint8_t *bytes = ob_pack(&b, &len);
    float *ref = NULL;
    size_t n = 0;
    double d = ob_compare_backends(bytes, len, 7, &ref, &n);
    BGR_CHECK(d >= 0 && d <= TOL);
    BGR_CHECK_EQ_INT(n, 15 * 13);
    for (size_t i = 0; ref && i < n; i++)
        BGR_CHECK(ref[i] > 0 && ref[i] < 1);
    free(ref);
    ob_free(&b);
}

/* Residual Add fused into the conv before it: accumulating in place into the
 * operand's buffer (ISNet's case: the operand's last reader is that conv),
 * and not in place when the operand is read again later. */
BGR_TEST(residual_add_fusion)
{
    for (int later_use = 0; later_use < 2; later_use++) {
        struct onnx_build b;
        struct bgr_graph g;
        struct bgr_error e = {0};
        size_t len;
        ob_init(&b, 15);
        ob_input(&b, "x", (int64_t[]){1, 3, 17, 15});
        add_conv(&b, "c1", "x", "hxin", 3, 16, 3, 1, 1, 1, 1);
        add_conv(&b, "c2", "hxin", "h1", 16, 16, 3, 1, 2, 1, 1);
        add_conv(&b, "c3", "h1", "h2", 16, 16, 3, 1, 1, 1, 1);
        ob_node(&b, "Relu", "r3", "h2", "h2r");
        ob_node(&b, "Add", "res", "h2r,hxin", "sum");
        if (later_use) {
            ob_attr_int(&b, ob_node(&b, "Concat", "cat", "sum,hxin", "cat"), "axis", 1);
            add_conv(&b, "c4", "cat", "y", 32, 5, 3, 1, 1, 1, 1);
        } else {
            add_conv(&b, "c4", "sum", "y", 16, 5, 3, 1, 1, 1, 1);
        }
        ob_output(&b, "y");
        uint8_t *bytes = ob_pack(&b, &len);
        BGR_REQUIRE(bgr_onnx_load(bytes, len, &g, &e) == 0);
        BGR_CHECK_EQ_INT(g.norder, 4 + later_use); /* the Add went into c3 */
        bgr_graph_release(&g);
        double d = ob_compare_backends(bytes, len, 11, NULL, NULL);
        BGR_CHECK(d >= 0 && d <= TOL);
        ob_free(&b);
    }
}

/* Concat written in place (its inputs' producers write into the output's
 * channel slices): an input read again after the Concat (by a pool and a
 * residual Add), the same input twice, a Resize output, channel counts off
 * the 16-channel blocks (copied into their slice), and a Concat output that
 * is itself a Concat input. oneDNN against the reference, fp32 and bf16. */
static void build_concats(struct onnx_build *b)
{
    ob_init(b, 15);
    ob_input(b, "x", (int64_t[]){1, 3, 20, 18});
    add_conv(b, "c1", "x", "a", 3, 16, 3, 1, 1, 1, 1);
    add_conv(b, "c2", "a", "bb", 16, 32, 3, 1, 1, 1, 1);
    Onnx__NodeProto *n = ob_node(b, "MaxPool", "p", "a", "ap");
    ob_attr_ints(b, n, "kernel_shape", 2, (int64_t[]){2, 2});
    ob_attr_ints(b, n, "strides", 2, (int64_t[]){2, 2});
    add_conv(b, "c3", "ap", "lo", 16, 16, 3, 1, 1, 1, 1);
    n = ob_node(b, "Resize", "up", "lo,,sc", "up");
    ob_attr_str(b, n, "mode", "linear");
    ob_attr_str(b, n, "coordinate_transformation_mode", "half_pixel");
    ob_initializer(b, ob_tensor_f32(b, "sc", 1, (int64_t[]){4}, (float[]){1, 1, 2, 2}, 0, OB_RAW));
    /* up (Resize), bb, a again and a: 16 + 32 + 16 + 16 channels */
    ob_attr_int(b, ob_node(b, "Concat", "cat1", "up,bb,a,a", "cat1"), "axis", 1);
    add_conv(b, "c4", "cat1", "d", 80, 16, 3, 1, 1, 1, 1);
    ob_node(b, "Relu", "r4", "d", "dr");
    ob_node(b, "Add", "res", "dr,a", "e"); /* a is read after the Concat */
    add_conv(b, "c5", "e", "odd", 16, 8, 3, 1, 2, 1, 1);
    /* cat1 nested in a second Concat; 8 channels (not a whole block) last */
    ob_attr_int(b, ob_node(b, "Concat", "cat2", "e,cat1,odd", "cat2"), "axis", 1);
    add_conv(b, "c6", "cat2", "f", 104, 1, 3, 1, 1, 1, 1);
    ob_node(b, "Sigmoid", "sig", "f", "y");
    ob_output(b, "y");
}

BGR_TEST(concat_in_place)
{
    struct onnx_build b;
    size_t len, n1 = 0, n2 = 0;
    struct bgr_error e = {0};
    uint64_t s = 5;
    float in[3 * 20 * 18];
    build_concats(&b);
    uint8_t *bytes = ob_pack(&b, &len);
    double d = ob_compare_backends(bytes, len, 3, NULL, NULL);
    if (!(d >= 0 && d <= TOL))
        fprintf(stderr, "  fp32 diff %g\n", d);
    BGR_CHECK(d >= 0 && d <= TOL);
    if (bgr_dnnl_has_bf16()) {
        struct bgr_model *mb = NULL, *mr = ob_load(bytes, len, BGR_BACKEND_REF, &e);
        struct bgr_model_opts o = {.precision = BGR_PREC_BF16};
        BGR_REQUIRE(mr && bgr_model_load_mem(bytes, len, &o, &mb, &e) == 0);
        for (size_t i = 0; i < BGR_ARRAY_LEN(in); i++)
            in[i] = ob_rand(&s);
        float *a = ob_run(mb, in, &n1), *r = ob_run(mr, in, &n2);
        BGR_CHECK(a && r && n1 == n2);
        double worst = 0;
        for (size_t i = 0; a && r && i < n1; i++)
            worst = fabs(a[i] - r[i]) > worst ? fabs(a[i] - r[i]) : worst;
        BGR_CHECK(worst < 2e-2);
        free(a);
        free(r);
        bgr_model_free(mb);
        bgr_model_free(mr);
    }
    ob_free(&b);
}

/* Profiling: per-kind execution counts and times of the last run. */
BGR_TEST(profile_counts)
{
    struct onnx_build b;
    size_t len, n = 0;
    struct bgr_error e = {0};
    struct bgr_op_profile p[BGR_OP__COUNT + 1];
    float in[3 * 20 * 18] = {0};
    build_concats(&b);
    uint8_t *bytes = ob_pack(&b, &len);
    for (int be = 0; be < 2; be++) {
        struct bgr_model *m = ob_load(bytes, len, be ? BGR_BACKEND_REF : BGR_BACKEND_DNNL, &e);
        BGR_REQUIRE(m);
        bgr_model_set_profiling(m, 1);
        free(ob_run(m, in, &n));
        int k = bgr_model_profile(m, p, (int)BGR_ARRAY_LEN(p)), convs = -1, cats = 0;
        BGR_CHECK(k > 0 && k <= (int)BGR_ARRAY_LEN(p));
        for (int i = 0; i < k; i++) {
            BGR_CHECK(p[i].count > 0 && p[i].ms >= 0);
            if (strcmp(p[i].op, "Conv") == 0)
                convs = p[i].count;
            if (strcmp(p[i].op, "Concat") == 0)
                cats = p[i].count;
        }
        BGR_CHECK_EQ_INT(convs, 6);
        /* reference: two concats; oneDNN: slice copies only for a's second
         * use and the nested cat1; the rest in place, the 8-channel input
         * too (last, its block padding falls in the output's padding) */
        fprintf(stderr, "  %s: %d concat executions\n", be ? "ref" : "dnnl", cats);
        BGR_CHECK_EQ_INT(cats, 2);
        BGR_CHECK(bgr_model_planned_bytes(m) > 0);
        bgr_model_free(m);
    }
    ob_free(&b);
}

/* Opt-in bf16 on a conv chain: within bf16's precision of the fp32 reference. */
BGR_TEST(bf16_chain_close_to_fp32)
{
    if (!bgr_dnnl_has_bf16()) {
        fprintf(stderr, "  no native bf16 on this CPU: not checked\n");
        return;
    }
    struct onnx_build b;
    struct bgr_error e = {0};
    size_t len, n1 = 0, n2 = 0;
    uint64_t s = 21;
    float in[3 * 23 * 19];
    ob_init(&b, 15);
    ob_input(&b, "x", (int64_t[]){1, 3, 23, 19});
    add_conv(&b, "c1", "x", "a", 3, 16, 3, 2, 1, 1, 1);
    ob_node(&b, "Relu", "r1", "a", "ar");
    Onnx__NodeProto *n = ob_node(&b, "MaxPool", "p", "ar", "p");
    ob_attr_ints(&b, n, "kernel_shape", 2, (int64_t[]){2, 2});
    ob_attr_ints(&b, n, "strides", 2, (int64_t[]){2, 2});
    ob_attr_int(&b, n, "ceil_mode", 1);
    add_conv(&b, "c2", "p", "c", 16, 13, 3, 1, 2, 1, 1);
    ob_node(&b, "Sigmoid", "s", "c", "y");
    ob_output(&b, "y");
    uint8_t *bytes = ob_pack(&b, &len);
    struct bgr_model *mb = NULL, *mr = ob_load(bytes, len, BGR_BACKEND_REF, &e);
    struct bgr_model_opts o = {.precision = BGR_PREC_BF16};
    BGR_REQUIRE(mr && bgr_model_load_mem(bytes, len, &o, &mb, &e) == 0);
    for (size_t i = 0; i < BGR_ARRAY_LEN(in); i++)
        in[i] = ob_rand(&s);
    float *a = ob_run(mb, in, &n1), *r = ob_run(mr, in, &n2);
    BGR_CHECK(a && r && n1 == n2);
    double worst = 0;
    for (size_t i = 0; a && r && i < n1; i++)
        worst = fabs(a[i] - r[i]) > worst ? fabs(a[i] - r[i]) : worst;
    BGR_CHECK(worst < 2e-2); /* sigmoid outputs; bf16 keeps 8 mantissa bits */
    BGR_CHECK(worst > 0);    /* and it really ran in bf16 */
    free(a);
    free(r);
    bgr_model_free(mb);
    bgr_model_free(mr);
    ob_free(&b);
}

/* ---- known answers: run on both backends ---- */

static void known(struct onnx_build *b, const int64_t in_dims[4], const float *in,
                  const float *want, size_t n_want)
{
    size_t len, no;
    uint8_t *bytes = ob_pack(b, &len);
    for (int be = 0; be < 2; be++) {
        struct bgr_error e = {0};
        struct bgr_model *m = ob_load(bytes, len, be ? BGR_BACKEND_REF : BGR_BACKEND_DNNL, &e);
        if (!m)
            fprintf(stderr, "  load: %s\n", e.msg);
        BGR_REQUIRE(m);
        BGR_CHECK_EQ_INT(bgr_model_input_shape(m).dims[3], in_dims[3]);
        float *out = ob_run(m, in, &no);
        BGR_CHECK_EQ_INT(no, n_want);
        for (size_t i = 0; out && i < no && i < n_want; i++)
            BGR_CHECK_NEAR(out[i], want[i], 1e-5);
        free(out);
        bgr_model_free(m);
    }
}

BGR_TEST(known_resize_onnx_examples)
{
    /* ONNX operator tests resize_upsample_scales_linear and
     * resize_downsample_scales_linear (the second takes the scale path) */
    struct onnx_build b;
    static const float up_in[] = {1, 2, 3, 4};
    static const float up_want[] = {1,   1.25, 1.75, 2,   1.5, 1.75, 2.25, 2.5,
                                    2.5, 2.75, 3.25, 3.5, 3,   3.25, 3.75, 4};
    ob_init(&b, 13);
    ob_input(&b, "x", (int64_t[]){1, 1, 2, 2});
    ob_initializer(&b,
                   ob_tensor_f32(&b, "sc", 1, (int64_t[]){4}, (float[]){1, 1, 2, 2}, 0, OB_TYPED));
    ob_attr_str(&b, ob_node(&b, "Resize", "r", "x,,sc", "y"), "mode", "linear");
    ob_output(&b, "y");
    known(&b, (int64_t[]){1, 1, 2, 2}, up_in, up_want, 16);
    ob_free(&b);

    static const float down_in[] = {1, 2, 3, 4, 5, 6, 7, 8};
    static const float down_want[] = {2.6666665f, 4.3333331f};
    ob_init(&b, 13);
    ob_input(&b, "x", (int64_t[]){1, 1, 2, 4});
    ob_initializer(
        &b, ob_tensor_f32(&b, "sc", 1, (int64_t[]){4}, (float[]){1, 1, 0.6f, 0.6f}, 0, OB_RAW));
    ob_attr_str(&b, ob_node(&b, "Resize", "r", "x,,sc", "y"), "mode", "linear");
    ob_output(&b, "y");
    known(&b, (int64_t[]){1, 1, 2, 4}, down_in, down_want, 2);
    ob_free(&b);
}

BGR_TEST(known_maxpool_ceil_and_conv_window)
{
    struct onnx_build b;
    static const float in[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    static const float pool_want[] = {5, 6, 8, 9};
    ob_init(&b, 15);
    ob_input(&b, "x", (int64_t[]){1, 1, 3, 3});
    Onnx__NodeProto *n = ob_node(&b, "MaxPool", "p", "x", "y");
    ob_attr_ints(&b, n, "kernel_shape", 2, (int64_t[]){2, 2});
    ob_attr_ints(&b, n, "strides", 2, (int64_t[]){2, 2});
    ob_attr_int(&b, n, "ceil_mode", 1);
    ob_output(&b, "y");
    known(&b, (int64_t[]){1, 1, 3, 3}, in, pool_want, 4);
    ob_free(&b);

    /* all-ones 3x3 kernel, pad 1, on ones: the count of in-bounds taps,
     * minus 1 through the bias, then ReLU */
    static const float ones[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    static const float win[16] = {3, 5, 5, 3, 5, 8, 8, 5, 5, 8, 8, 5, 3, 5, 5, 3};
    float w[9];
    for (int i = 0; i < 9; i++)
        w[i] = 1;
    ob_init(&b, 15);
    ob_input(&b, "x", (int64_t[]){1, 1, 4, 4});
    ob_initializer(&b, ob_tensor_f32(&b, "w", 4, (int64_t[]){1, 1, 3, 3}, w, 1, OB_TYPED));
    ob_initializer(&b, ob_tensor_f32(&b, "b", 1, (int64_t[]){1}, (float[]){-1}, 1, OB_RAW));
    n = ob_node(&b, "Conv", "c", "x,w,b", "c");
    ob_attr_ints(&b, n, "pads", 4, (int64_t[]){1, 1, 1, 1});
    ob_node(&b, "Relu", "r", "c", "y");
    ob_output(&b, "y");
    known(&b, (int64_t[]){1, 1, 4, 4}, ones, win, 16);
    ob_free(&b);
}

BGR_TEST_MAIN()
