/*
 * be_dnnl_ops.c - one prepared graph step to oneDNN primitives, at load.
 *
 * ONNX -> oneDNN conventions handled here: dilation (ONNX 1 = dense, oneDNN
 * 0 = dense), grouped weights (goihw), MaxPool ceil_mode (ONNX's output size
 * with right padding chosen to produce it; oneDNN's max pooling never picks a
 * padded element) and Resize (oneDNN's linear resampling maps coordinates by
 * the size ratio with half-pixel centres, which is ONNX half_pixel exactly
 * when the scale equals that ratio; other scales use the reference kernel).
 */
#include "infer/be_dnnl.h"

#include <string.h>

static int out_buf(struct bgr_dnnl_be *b, const struct bgr_graph *g, const struct bgr_node *nd,
                   dnnl_primitive_desc_t pd, int k, struct bgr_error *err)
{
    int rc = 0;
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    int t = md ? bgr_dn_add_buf(b, md, k, g->vals[nd->out].last) : -1;
    if (t < 0)
        DN(dnnl_out_of_memory, "output buffer", nd);
    b->val_buf[nd->out] = t;
out:
    return rc ? rc : t;
}

static int keep_weights(struct bgr_dnnl_be *b, dnnl_memory_t m)
{
    if (b->nweights == b->cap_weights) {
        b->cap_weights = b->cap_weights ? 2 * b->cap_weights : 128;
        b->weights = bgr_xrealloc(b->weights, (size_t)b->cap_weights * sizeof(dnnl_memory_t));
    }
    b->weights[b->nweights++] = m;
    return 0;
}

/* Reorders the plain OIHW weights into the layout the convolution chose;
 * scales (one group only), when not NULL, multiplies output channel oc by
 * scales[oc] on the way (int8: the reorder rounds and saturates). */
static int load_weights(struct bgr_dnnl_be *b, const struct bgr_conv_p *p,
                        const dnnl_memory_desc_t *want, const float *scales, dnnl_memory_t *out,
                        const struct bgr_node *nd, struct bgr_error *err)
{
    int rc = 0;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_memory_desc_t user_md;
    dnnl_memory_t user = NULL, w = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t r = NULL;
    int64_t G = p->group;
    if (bgr_dn_cached(b)) { /* packed already: used in place in the mapping */
        dnnl_memory_desc_t md;
        const void *cmd = bgr_wc_next(b->wc, BGR_WC_WMD, sizeof md), *data;
        if (cmd)
            memcpy(&md, cmd, sizeof md);
        if (!cmd || !dnnl_memory_desc_equal(&md, want) ||
            !(data = bgr_wc_next(b->wc, BGR_WC_WDATA, dnnl_memory_desc_get_size(want)))) {
            rc = bgr_error_set(err, BGR_EMODEL, "node '%s': the weight cache does not match",
                               nd->name);
            goto out;
        }
        /* oneDNN never writes a convolution's weights: the read-only
         * mapping is safe to hand over */
        DN(dnnl_memory_create(&w, want, b->eng, (void *)data), "weights", nd);
        keep_weights(b, w);
        *out = w;
        w = NULL;
        goto out;
    }
    if (G == 1) {
        dnnl_dims_t d = {p->M, p->C, p->kh, p->kw};
        dnnl_memory_desc_init_by_tag(&user_md, 4, d, dnnl_f32, dnnl_oihw);
    } else {
        dnnl_dims_t d = {G, p->M / G, p->C / G, p->kh, p->kw};
        dnnl_memory_desc_init_by_tag(&user_md, 5, d, dnnl_f32, dnnl_goihw);
    }
    /* oneDNN only reads the source of a reorder */
    DN(dnnl_memory_create(&user, &user_md, b->eng, (void *)p->w), "weights", nd);
    DN(dnnl_memory_create(&w, want, b->eng, DNNL_MEMORY_ALLOCATE), "weights", nd);
    if (scales) {
        BGR_ASSERT(G == 1);
        DN(dnnl_primitive_attr_create(&attr), "attributes", nd);
        DN(dnnl_primitive_attr_set_output_scales(attr, p->M, 1 << 0, scales), "weight scales", nd);
    }
    DN(dnnl_reorder_primitive_desc_create(&pd, &user_md, b->eng, want, b->eng, attr),
       "weights reorder", nd);
    DN(dnnl_primitive_create(&r, pd), "weights reorder", nd);
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, w}};
    DN(dnnl_primitive_execute(r, b->stream, 2, a), "weights reorder", nd);
    DN(dnnl_stream_wait(b->stream), "weights reorder", nd);
    if (b->wc) { /* recorded by reference: the memory lives as long as the backend */
        void *h = NULL;
        DN(dnnl_memory_get_data_handle(w, &h), "weights", nd);
        bgr_wc_put(b->wc, BGR_WC_WMD, want, sizeof *want, 1);
        bgr_wc_put(b->wc, BGR_WC_WDATA, h, dnnl_memory_desc_get_size(want), 0);
    }
    keep_weights(b, w);
    *out = w;
    w = NULL;
out:
    if (r)
        dnnl_primitive_destroy(r);
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (user)
        dnnl_memory_destroy(user);
    if (w)
        dnnl_memory_destroy(w);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    return rc;
}

static int is_ref_impl(const_dnnl_primitive_desc_t pd)
{
    const char *impl = NULL;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    return !impl || strncmp(impl, "ref", 3) == 0;
}

enum { SUM_NONE = 0, SUM_BINARY, SUM_IN_PLACE };

/* The convolution again, with the layouts the first try chose fixed and
 * post-ops: [ReLU,] then the fused Add's operand as post-op post. base:
 * the attributes to start from (int8: output scales), NULL for plain. */
static int conv_with_post(struct bgr_dnnl_be *b, const struct bgr_node *nd,
                          const dnnl_convolution_desc_t *cd, const_dnnl_primitive_attr_t base,
                          int binary, dnnl_primitive_desc_t *pd, struct bgr_error *err)
{
    int rc = 0;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd2 = NULL;
    if (base)
        DN(dnnl_primitive_attr_clone(&attr, base), "attributes", nd);
    else
        DN(dnnl_primitive_attr_create(&attr), "attributes", nd);
    DN(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "attributes", nd);
    DN(dnnl_post_ops_create(&po), "post-ops", nd);
    if (nd->conv.relu)
        DN(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f), "post-ops", nd);
    if (binary)
        DN(dnnl_post_ops_append_binary(po, dnnl_binary_add, &cd->dst_desc), "post-ops", nd);
    else
        DN(dnnl_post_ops_append_sum(po, 1.0f), "post-ops", nd);
    DN(dnnl_primitive_attr_set_post_ops(attr, po), "post-ops", nd);
    /* accepted only when it costs no slower kernel than the plain conv */
    if (dnnl_primitive_desc_create(&pd2, cd, attr, b->eng, NULL) == dnnl_success &&
        is_ref_impl(pd2) <= is_ref_impl(*pd)) {
        dnnl_primitive_desc_destroy(*pd);
        *pd = pd2;
        pd2 = NULL;
        rc = 1;
    }
out:
    if (pd2)
        dnnl_primitive_desc_destroy(pd2);
    if (po)
        dnnl_post_ops_destroy(po);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    return rc;
}

/* A fused Add. Best: oneDNN's sum post-op, accumulating into the operand's
 * own buffer when this conv is its last reader (ISNet's residuals), or into
 * the reorder temporary holding it in the conv's dst layout; next: a binary
 * post-op; else *how stays SUM_NONE and the caller adds in place after the
 * conv. *tbuf: the operand's buffer in the conv's dst layout. */
static int conv_sum(struct bgr_dnnl_be *b, const struct bgr_graph *g, const struct bgr_node *nd,
                    int k, const dnnl_convolution_desc_t *cd0, const_dnnl_primitive_attr_t base,
                    dnnl_primitive_desc_t *pd, int *tbuf, int *how, struct bgr_error *err)
{
    int rc, v = nd->in[nd->conv.sum_in];
    dnnl_convolution_desc_t cd = *cd0;
    cd.src_desc = *dnnl_primitive_desc_query_md(*pd, dnnl_query_src_md, 0);
    cd.weights_desc = *dnnl_primitive_desc_query_md(*pd, dnnl_query_weights_md, 0);
    cd.dst_desc = *dnnl_primitive_desc_query_md(*pd, dnnl_query_dst_md, 0);
    if ((rc = bgr_dn_buf_as(b, v, &cd.dst_desc, k, tbuf, nd, err)))
        return rc;
    *how = SUM_NONE;
    /* in place only into a buffer nothing reads after this conv, and not
     * into the conv's own source */
    if (*tbuf != b->val_buf[v] || (g->vals[v].last == k && v != g->output && v != nd->in[0] &&
                                   b->bufs[*tbuf].parent < 0 && !b->bufs[*tbuf].has_views)) {
        if ((rc = conv_with_post(b, nd, &cd, base, 0, pd, err)) < 0)
            return rc;
        if (rc == 1) {
            *how = SUM_IN_PLACE;
            return 0;
        }
    }
    if ((rc = conv_with_post(b, nd, &cd, base, 1, pd, err)) < 0)
        return rc;
    if (rc == 1)
        *how = SUM_BINARY;
    return 0;
}

/* dst += operand, for a fused Add oneDNN could not take as a post-op. */
static int add_in_place(struct bgr_dnnl_be *b, const struct bgr_node *nd, int dbuf, int tbuf,
                        struct bgr_error *err)
{
    int rc = 0;
    dnnl_binary_desc_t bd;
    dnnl_primitive_desc_t pd = NULL;
    struct dn_exec *e;
    const dnnl_memory_desc_t *md = &b->bufs[dbuf].md;
    DN(dnnl_binary_desc_init(&bd, dnnl_binary_add, md, md, md), "binary add", nd);
    DN(dnnl_primitive_desc_create(&pd, &bd, b->attr, b->eng, NULL), "binary add", nd);
    if ((rc = bgr_dn_add_exec(b, pd, BGR_OP_ADD, 3, &e, nd, err)))
        goto out;
    e->args[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC_0, b->bufs[dbuf].mem};
    e->args[1] = (dnnl_exec_arg_t){DNNL_ARG_SRC_1, b->bufs[tbuf].mem};
    e->args[2] = (dnnl_exec_arg_t){DNNL_ARG_DST, b->bufs[dbuf].mem};
out:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return rc;
}

/* Whether value v reaches the graph's output through element-wise ops and
 * Resize only (ISNet: the last conv, a Resize to the input size, Sigmoid).
 * Such a conv writes fp32 even in a bf16 model: bf16 would round the matte
 * to steps of up to 2^-9, which alone cost 0.001 of MAE (ten times the rest
 * of bf16's error on the test photos), while the conv (one output channel)
 * costs nothing. */
int bgr_dn_feeds_output_only(const struct bgr_graph *g, int v, int depth)
{
    if (v == g->output)
        return 1;
    if (depth > 4)
        return 0;
    int used = 0;
    for (int k = 0; k < g->norder; k++) {
        const struct bgr_node *nd = &g->nodes[g->order[k]];
        for (int i = 0; i < nd->nin; i++) {
            if (nd->in[i] != v)
                continue;
            if ((nd->op != BGR_OP_SIGMOID && nd->op != BGR_OP_RELU && nd->op != BGR_OP_RESIZE) ||
                !bgr_dn_feeds_output_only(g, nd->out, depth + 1))
                return 0;
            used = 1;
        }
    }
    return used;
}

/* The convolution's descriptor: src and dst layouts as asked, weights any. */
static int conv_desc(const struct bgr_node *nd, const dnnl_memory_desc_t *src, dnnl_data_type_t wdt,
                     const dnnl_memory_desc_t *dst, dnnl_convolution_desc_t *cd,
                     struct bgr_error *err)
{
    const struct bgr_conv_p *p = &nd->conv;
    int rc = 0;
    dnnl_memory_desc_t wt, bias;
    dnnl_dims_t bd = {p->M};
    dnnl_dims_t strides = {p->sh, p->sw}, dil = {p->dh - 1, p->dw - 1};
    dnnl_dims_t pl = {p->pt, p->pl}, pr = {p->pb, p->pr};
    dnnl_memory_desc_init_by_tag(&bias, 1, bd, dnnl_f32, dnnl_a);
    if (p->group == 1) {
        dnnl_dims_t wd = {p->M, p->C, p->kh, p->kw};
        dnnl_memory_desc_init_by_tag(&wt, 4, wd, wdt, dnnl_format_tag_any);
    } else {
        dnnl_dims_t wd = {p->group, p->M / p->group, p->C / p->group, p->kh, p->kw};
        dnnl_memory_desc_init_by_tag(&wt, 5, wd, wdt, dnnl_format_tag_any);
    }
    DN(dnnl_dilated_convolution_forward_desc_init(cd, dnnl_forward_inference,
                                                  dnnl_convolution_direct, src, &wt,
                                                  p->b ? &bias : NULL, dst, strides, dil, pl, pr),
       "convolution", nd);
out:
    return rc;
}

/* The int8 try (see be_dnnl_q.c): u8/s8 nhwc source, s8 weights, bf16 nhwc
 * destination. *pd stays NULL where oneDNN offers only its reference kernel
 * (the caller then goes on in the float type). */
static int conv_q_pd(struct bgr_dnnl_be *b, const struct bgr_graph *g, const struct bgr_node *nd,
                     const struct bgr_dn_q *q, dnnl_convolution_desc_t *cd,
                     dnnl_primitive_desc_t *pd, struct bgr_error *err)
{
    const struct bgr_value *x = &g->vals[nd->in[0]], *o = &g->vals[nd->out];
    dnnl_memory_desc_t src, dst;
    int rc;
    dnnl_dims_t sd = {x->dims[0], x->dims[1], x->dims[2], x->dims[3]};
    dnnl_dims_t dd = {o->dims[0], o->dims[1], o->dims[2], o->dims[3]};
    dnnl_memory_desc_init_by_tag(&src, 4, sd, q->sdt, dnnl_nhwc);
    dnnl_memory_desc_init_by_tag(&dst, 4, dd, dnnl_bf16, dnnl_nhwc);
    *pd = NULL;
    if ((rc = conv_desc(nd, &src, dnnl_s8, &dst, cd, err)))
        return rc;
    if (dnnl_primitive_desc_create(pd, cd, q->attr, b->eng, NULL) != dnnl_success) {
        *pd = NULL;
        return 0;
    }
    if (is_ref_impl(*pd)) {
        dnnl_primitive_desc_destroy(*pd);
        *pd = NULL;
    }
    return 0;
}

static int dn_conv(struct bgr_dnnl_be *b, const struct bgr_graph *g, const struct bgr_node *nd,
                   int k, struct bgr_error *err)
{
    const struct bgr_conv_p *p = &nd->conv;
    const struct bgr_value *x = &g->vals[nd->in[0]], *o = &g->vals[nd->out];
    dnnl_memory_desc_t src, bias, dst;
    dnnl_convolution_desc_t cd;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_memory_t wmem = NULL, bmem = NULL;
    struct dn_exec *e;
    struct bgr_dn_q q = {0};
    int rc = 0, sbuf, dbuf, tbuf = -1, fused = 0;
    dnnl_dims_t sd = {x->dims[0], x->dims[1], x->dims[2], x->dims[3]};
    dnnl_dims_t dd = {o->dims[0], o->dims[1], o->dims[2], o->dims[3]};
    dnnl_dims_t bd = {p->M};
    dnnl_memory_desc_init_by_tag(&bias, 1, bd, dnnl_f32, dnnl_a);
    if ((rc = bgr_dn_q_prepare(b, g, nd, &q, err)))
        goto out;
    if (q.on && (rc = conv_q_pd(b, g, nd, &q, &cd, &pd, err)))
        goto out;
    if (q.on && !pd)
        bgr_dn_q_release(&q);
    if (!q.on && b->bufs[b->val_buf[nd->in[0]]].md.data_type != b->act_dt &&
        b->bufs[b->val_buf[nd->in[0]]].md.data_type != dnnl_f32) {
        /* bgr_dn_q_concat promised this conv an int8 kernel */
        rc = bgr_error_set(err, BGR_EINTERNAL, "node '%s': no int8 kernel for a quantised source",
                           nd->name);
        goto out;
    }
    if (!pd) {
        /* blocked where the channels fill whole blocks (see act_tag), else
         * oneDNN's choice: padding 3 input or 1 output channels to a block
         * would multiply the cost of the first and last convolutions */
        dnnl_format_tag_t stag = p->C % b->act_block == 0 ? b->act_tag : dnnl_format_tag_any;
        dnnl_data_type_t ddt = b->act_dt;
        dnnl_format_tag_t dtag = p->M % b->act_block == 0 ? b->act_tag : dnnl_format_tag_any;
        if (ddt != dnnl_f32 && bgr_dn_feeds_output_only(g, nd->out, 0)) {
            /* plain too, as the output is: a blocked layout would pad ISNet's
             * one channel to 16 for the Resize and Sigmoid after it */
            ddt = dnnl_f32;
            dtag = dnnl_nchw;
            /* one channel: nhwc is the same bytes as nchw (oneDNN calls the
             * two descriptors equal), and oneDNN 2.6 has a jit kernel
             * (brgconv) for nhwc but only gemm for nchw: ISNet's last conv
             * (64 -> 1 at 512x512, bf16) took 43 ms with gemm, 6.6 with
             * brgconv (Zen 5, 2 threads); its source in nhwc comes free
             * from an int8 conv, else from a reorder */
            if (p->M == 1 && p->group == 1)
                stag = dtag = dnnl_nhwc;
        }
        dnnl_memory_desc_init_by_tag(&src, 4, sd, b->act_dt, stag);
        dnnl_memory_desc_init_by_tag(&dst, 4, dd, ddt, dtag);
        if ((rc = conv_desc(nd, &src, b->act_dt, &dst, &cd, err)))
            goto out;
        DN(dnnl_primitive_desc_create(&pd, &cd, p->relu ? b->attr_relu : b->attr, b->eng, NULL),
           "convolution", nd);
        if (is_ref_impl(pd) && b->act_tag != dnnl_format_tag_any) {
            /* no blocked kernel for this shape (fp32 with dilation 8 at
             * 32x32): oneDNN's choice of layout, a reorder around it costs
             * far less */
            dnnl_primitive_desc_destroy(pd);
            pd = NULL;
            dnnl_memory_desc_init_by_tag(&src, 4, sd, b->act_dt, dnnl_format_tag_any);
            dnnl_memory_desc_init_by_tag(
                &dst, 4, dd, ddt,
                dtag == dnnl_nchw || dtag == dnnl_nhwc ? dnnl_nchw : dnnl_format_tag_any);
            if ((rc = conv_desc(nd, &src, b->act_dt, &dst, &cd, err)))
                goto out;
            DN(dnnl_primitive_desc_create(&pd, &cd, p->relu ? b->attr_relu : b->attr, b->eng, NULL),
               "convolution", nd);
        }
    }
    if (p->sum_in &&
        (rc = conv_sum(b, g, nd, k, &cd, q.on ? q.attr : NULL, &pd, &tbuf, &fused, err)))
        goto out;
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    if (q.on)
        rc = bgr_dn_q_src(b, nd->in[0], smd, q.s_in, k, &sbuf, nd, err);
    else
        rc = bgr_dn_buf_as(b, nd->in[0], smd, k, &sbuf, nd, err);
    if (rc)
        goto out;
    if ((rc = load_weights(b, p, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0),
                           q.on ? q.s_w : NULL, &wmem, nd, err)))
        goto out;
    if (p->b) {
        void *h = NULL;
        DN(dnnl_memory_create(&bmem, &bias, b->eng, DNNL_MEMORY_ALLOCATE), "bias", nd);
        keep_weights(b, bmem);
        DN(dnnl_memory_get_data_handle(bmem, &h), "bias", nd);
        memcpy(h, q.on ? q.bias : p->b, (size_t)p->M * sizeof(float));
    }
    if (fused == SUM_IN_PLACE) { /* the operand's buffer becomes the output */
        dbuf = tbuf;
        b->val_buf[nd->out] = dbuf;
        if (b->bufs[dbuf].last < o->last)
            b->bufs[dbuf].last = o->last;
    } else if ((dbuf = out_buf(b, g, nd, pd, k, err)) < 0) {
        rc = dbuf;
        goto out;
    }
    if ((rc = bgr_dn_add_exec(b, pd, BGR_OP_CONV, 3 + (p->b != NULL) + (fused == SUM_BINARY), &e,
                              nd, err)))
        goto out;
    e->args[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC, b->bufs[sbuf].mem};
    e->args[1] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, wmem};
    e->args[2] = (dnnl_exec_arg_t){DNNL_ARG_DST, b->bufs[dbuf].mem};
    if (p->b)
        e->args[3] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, bmem};
    if (fused == SUM_BINARY)
        e->args[3 + (p->b != NULL)] = (dnnl_exec_arg_t){
            DNNL_ARG_ATTR_MULTIPLE_POST_OP(p->relu ? 1 : 0) | DNNL_ARG_SRC_1, b->bufs[tbuf].mem};
    if (b->bufs[sbuf].md.data_type == dnnl_f32) { /* calibration may scan it */
        e->cal = 1 + nd->in[0];
        e->cal_buf = sbuf;
    }
    b->n_int8 += q.on;
    if (p->sum_in && fused == SUM_NONE)
        rc = add_in_place(b, nd, dbuf, tbuf, err);
out:
    bgr_dn_q_release(&q);
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return rc;
}

/* Eltwise (Relu, Sigmoid) in the producer's layout. */
static int dn_eltwise(struct bgr_dnnl_be *b, const struct bgr_graph *g, const struct bgr_node *nd,
                      int k, struct bgr_error *err)
{
    int rc = 0, sbuf = b->val_buf[nd->in[0]], dbuf;
    dnnl_eltwise_desc_t ed;
    dnnl_primitive_desc_t pd = NULL;
    struct dn_exec *e;
    dnnl_alg_kind_t alg = nd->op == BGR_OP_RELU ? dnnl_eltwise_relu : dnnl_eltwise_logistic;
    DN(dnnl_eltwise_forward_desc_init(&ed, dnnl_forward_inference, alg, &b->bufs[sbuf].md, 0, 0),
       "eltwise", nd);
    DN(dnnl_primitive_desc_create(&pd, &ed, b->attr, b->eng, NULL), "eltwise", nd);
    if ((dbuf = out_buf(b, g, nd, pd, k, err)) < 0) {
        rc = dbuf;
        goto out;
    }
    if ((rc = bgr_dn_add_exec(b, pd, nd->op, 2, &e, nd, err)))
        goto out;
    e->args[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC, b->bufs[sbuf].mem};
    e->args[1] = (dnnl_exec_arg_t){DNNL_ARG_DST, b->bufs[dbuf].mem};
out:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return rc;
}

static int dn_add(struct bgr_dnnl_be *b, const struct bgr_graph *g, const struct bgr_node *nd,
                  int k, struct bgr_error *err)
{
    int rc = 0, s0 = b->val_buf[nd->in[0]], s1, dbuf;
    dnnl_binary_desc_t bd;
    dnnl_primitive_desc_t pd = NULL;
    struct dn_exec *e;
    /* both operands in the first one's layout: the fast kernels want that */
    if ((rc = bgr_dn_buf_as(b, nd->in[1], &b->bufs[s0].md, k, &s1, nd, err)))
        goto out;
    DN(dnnl_binary_desc_init(&bd, dnnl_binary_add, &b->bufs[s0].md, &b->bufs[s1].md,
                             &b->bufs[s0].md),
       "binary add", nd);
    DN(dnnl_primitive_desc_create(&pd, &bd, b->attr, b->eng, NULL), "binary add", nd);
    if ((dbuf = out_buf(b, g, nd, pd, k, err)) < 0) {
        rc = dbuf;
        goto out;
    }
    if ((rc = bgr_dn_add_exec(b, pd, BGR_OP_ADD, 3, &e, nd, err)))
        goto out;
    e->args[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC_0, b->bufs[s0].mem};
    e->args[1] = (dnnl_exec_arg_t){DNNL_ARG_SRC_1, b->bufs[s1].mem};
    e->args[2] = (dnnl_exec_arg_t){DNNL_ARG_DST, b->bufs[dbuf].mem};
out:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return rc;
}

static int dn_pool(struct bgr_dnnl_be *b, const struct bgr_graph *g, const struct bgr_node *nd,
                   int k, struct bgr_error *err)
{
    const struct bgr_pool_p *p = &nd->pool;
    const struct bgr_value *x = &g->vals[nd->in[0]], *o = &g->vals[nd->out];
    int rc = 0, sbuf = b->val_buf[nd->in[0]], dbuf;
    dnnl_memory_desc_t dst;
    dnnl_pooling_desc_t qd;
    dnnl_primitive_desc_t pd = NULL;
    struct dn_exec *e;
    dnnl_dims_t dd = {o->dims[0], o->dims[1], o->dims[2], o->dims[3]};
    /* right padding that makes oneDNN's floor formula give ONNX's size; a
     * negative value means the last rows are unused, which 0 expresses */
    int64_t rb = (o->dims[2] - 1) * p->sh + p->kh - x->dims[2] - p->pt;
    int64_t rr = (o->dims[3] - 1) * p->sw + p->kw - x->dims[3] - p->pl;
    dnnl_dims_t strides = {p->sh, p->sw}, kernel = {p->kh, p->kw};
    dnnl_dims_t pl = {p->pt, p->pl}, pr = {rb > 0 ? rb : 0, rr > 0 ? rr : 0};
    dnnl_memory_desc_init_by_tag(&dst, 4, dd, b->act_dt, dnnl_format_tag_any);
    DN(dnnl_pooling_forward_desc_init(&qd, dnnl_forward_inference, dnnl_pooling_max,
                                      &b->bufs[sbuf].md, &dst, strides, kernel, pl, pr),
       "max pooling", nd);
    DN(dnnl_primitive_desc_create(&pd, &qd, b->attr, b->eng, NULL), "max pooling", nd);
    if ((dbuf = out_buf(b, g, nd, pd, k, err)) < 0) {
        rc = dbuf;
        goto out;
    }
    if ((rc = bgr_dn_add_exec(b, pd, BGR_OP_MAXPOOL, 2, &e, nd, err)))
        goto out;
    e->args[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC, b->bufs[sbuf].mem};
    e->args[1] = (dnnl_exec_arg_t){DNNL_ARG_DST, b->bufs[dbuf].mem};
out:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return rc;
}

static int dn_resize(struct bgr_dnnl_be *b, const struct bgr_graph *g, const struct bgr_node *nd,
                     int k, struct bgr_error *err)
{
    const struct bgr_value *x = &g->vals[nd->in[0]], *o = &g->vals[nd->out];
    int rc = 0, sbuf = b->val_buf[nd->in[0]], dbuf;
    dnnl_memory_desc_t dst;
    dnnl_resampling_desc_t rd;
    dnnl_primitive_desc_t pd = NULL;
    struct dn_exec *e;
    dnnl_dims_t dd = {o->dims[0], o->dims[1], o->dims[2], o->dims[3]};
    int exact = (float)o->dims[2] / (float)x->dims[2] == nd->rs.scale_h &&
                (float)o->dims[3] / (float)x->dims[3] == nd->rs.scale_w;
    if (!exact) { /* reference kernel on plain NCHW */
        dnnl_memory_desc_t plain;
        bgr_dn_plain_md(&plain, x->dims);
        if ((rc = bgr_dn_buf_as(b, nd->in[0], &plain, k, &sbuf, nd, err)))
            goto out;
        bgr_dn_plain_md(&plain, o->dims);
        if ((dbuf = bgr_dn_add_buf(b, &plain, k, o->last)) < 0)
            DN(dnnl_out_of_memory, "output buffer", nd);
        b->val_buf[nd->out] = dbuf;
        if ((rc = bgr_dn_add_exec(b, NULL, BGR_OP_RESIZE, 0, &e, nd, err)))
            goto out;
        e->node = nd, e->fb_src = sbuf, e->fb_dst = dbuf;
        goto out;
    }
    /* the source's data type: fp32 stays fp32 on the way to the output */
    dnnl_memory_desc_init_by_tag(&dst, 4, dd, b->bufs[sbuf].md.data_type, dnnl_format_tag_any);
    DN(dnnl_resampling_forward_desc_init(&rd, dnnl_forward_inference, dnnl_resampling_linear, NULL,
                                         &b->bufs[sbuf].md, &dst),
       "resampling", nd);
    DN(dnnl_primitive_desc_create(&pd, &rd, b->attr, b->eng, NULL), "resampling", nd);
    if ((dbuf = out_buf(b, g, nd, pd, k, err)) < 0) {
        rc = dbuf;
        goto out;
    }
    if ((rc = bgr_dn_add_exec(b, pd, BGR_OP_RESIZE, 2, &e, nd, err)))
        goto out;
    e->args[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC, b->bufs[sbuf].mem};
    e->args[1] = (dnnl_exec_arg_t){DNNL_ARG_DST, b->bufs[dbuf].mem};
out:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return rc;
}

/* Whether buffer c can be the view of channels [coff, coff + C) of the
 * Concat output buffer p: the layout oneDNN gives that channel slice (a
 * submemory) must be the child's own dense layout shifted by a byte
 * offset, which holds for batch 1 and channel offsets on block boundaries.
 * *poff: the byte offset. */
static int view_fits(const struct bgr_dnnl_be *b, int c, int p, int64_t coff, size_t *poff)
{
    const dnnl_memory_desc_t *cm = &b->bufs[c].md, *pm = &b->bufs[p].md;
    dnnl_memory_desc_t sub;
    dnnl_dims_t offs = {0, coff, 0, 0};
    if (cm->ndims != 4 || pm->ndims != 4 || cm->dims[0] != 1 || cm->data_type != pm->data_type ||
        cm->format_kind != dnnl_blocked || pm->format_kind != dnnl_blocked || cm->offset0 != 0)
        return 0;
    if (dnnl_memory_desc_init_submemory(&sub, pm, cm->dims, offs) != dnnl_success)
        return 0;
    *poff = (size_t)sub.offset0 * dnnl_data_type_size(sub.data_type);
    sub.offset0 = 0;
    /* with batch 1 the batch stride is never applied */
    sub.format_desc.blocking.strides[0] = cm->format_desc.blocking.strides[0];
    memcpy(sub.padded_offsets, cm->padded_offsets, sizeof sub.padded_offsets);
    return dnnl_memory_desc_equal(&sub, cm);
}

/* Concat without copies where it can: each input's producer writes straight
 * into its channel slice of the output (its buffer becomes a view into the
 * output's, see struct dn_buf). An input that cannot be a view (another
 * layout, the graph input, already a view or holding views, unaligned
 * channels) is copied into its slice by a reorder; only when the output
 * layout has no usable slices at all does a concat primitive run. */
static int dn_concat(struct bgr_dnnl_be *b, const struct bgr_graph *g, const struct bgr_node *nd,
                     int k, struct bgr_error *err)
{
    int rc = 0, dbuf, sb[BGR_MAX_INPUTS];
    size_t poff[BGR_MAX_INPUTS];
    dnnl_memory_desc_t mds[BGR_MAX_INPUTS];
    dnnl_primitive_desc_t pd = NULL;
    struct dn_exec *e;
    int64_t coff = 0;
    int can_view = g->vals[nd->out].dims[0] == 1;
    for (int i = 0; i < nd->nin; i++) {
        sb[i] = b->val_buf[nd->in[i]];
        mds[i] = b->bufs[sb[i]].md;
    }
    DN(dnnl_concat_primitive_desc_create(&pd, NULL, nd->nin, 1, mds, b->attr, b->eng), "concat",
       nd);
    if ((dbuf = out_buf(b, g, nd, pd, k, err)) < 0) {
        rc = dbuf;
        goto out;
    }
    /* every slice must be addressable as a submemory for the copy path too */
    for (int i = 0; i < nd->nin && can_view; i++) {
        dnnl_memory_desc_t sub;
        dnnl_dims_t offs = {0, coff, 0, 0};
        can_view = dnnl_memory_desc_init_submemory(&sub, &b->bufs[dbuf].md, mds[i].dims, offs) ==
                   dnnl_success;
        coff += mds[i].dims[1];
    }
    if (!can_view) {
        if ((rc = bgr_dn_add_exec(b, pd, BGR_OP_CONCAT, nd->nin + 1, &e, nd, err)))
            goto out;
        for (int i = 0; i < nd->nin; i++)
            e->args[i] = (dnnl_exec_arg_t){DNNL_ARG_MULTIPLE_SRC + i, b->bufs[sb[i]].mem};
        e->args[nd->nin] = (dnnl_exec_arg_t){DNNL_ARG_DST, b->bufs[dbuf].mem};
        goto out;
    }
    coff = 0;
    for (int i = 0; i < nd->nin; i++) {
        struct dn_buf *c = &b->bufs[sb[i]];
        if (sb[i] != b->in_buf && c->parent < 0 && !c->has_views &&
            view_fits(b, sb[i], dbuf, coff, &poff[i])) {
            c->parent = dbuf;
            c->poff = poff[i];
            b->bufs[dbuf].has_views = 1;
        } else { /* a reorder into the slice, seen through a submemory */
            dnnl_memory_desc_t sub;
            dnnl_dims_t offs = {0, coff, 0, 0};
            dnnl_primitive_desc_t rpd = NULL;
            int t;
            DN(dnnl_memory_desc_init_submemory(&sub, &b->bufs[dbuf].md, mds[i].dims, offs),
               "concat slice", nd);
            if ((t = bgr_dn_add_buf(b, &sub, k, k)) < 0)
                DN(dnnl_out_of_memory, "concat slice", nd);
            b->bufs[t].parent = dbuf; /* the submemory carries the offset itself */
            b->bufs[dbuf].has_views = 1;
            DN(dnnl_reorder_primitive_desc_create(&rpd, &mds[i], b->eng, &sub, b->eng, b->attr),
               "concat slice copy", nd);
            rc = bgr_dn_add_exec(b, rpd, BGR_OP_CONCAT, 2, &e, nd, err);
            dnnl_primitive_desc_destroy(rpd);
            if (rc)
                goto out;
            e->args[0] = (dnnl_exec_arg_t){DNNL_ARG_FROM, b->bufs[sb[i]].mem};
            e->args[1] = (dnnl_exec_arg_t){DNNL_ARG_TO, b->bufs[t].mem};
        }
        coff += mds[i].dims[1];
    }
out:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return rc;
}

int bgr_dn_step(struct bgr_dnnl_be *b, const struct bgr_graph *g, const struct bgr_node *nd, int k,
                struct bgr_error *err)
{
    switch (nd->op) {
    case BGR_OP_CONV:
        return dn_conv(b, g, nd, k, err);
    case BGR_OP_RELU:
    case BGR_OP_SIGMOID:
        return dn_eltwise(b, g, nd, k, err);
    case BGR_OP_ADD:
        return dn_add(b, g, nd, k, err);
    case BGR_OP_MAXPOOL:
        return dn_pool(b, g, nd, k, err);
    case BGR_OP_RESIZE:
        return dn_resize(b, g, nd, k, err);
    case BGR_OP_CONCAT: {
        int rc = bgr_dn_q_concat(b, g, nd, k, err);
        return rc == 1 ? dn_concat(b, g, nd, k, err) : rc;
    }
    default:
        return bgr_error_set(err, BGR_EINTERNAL, "node '%s': %s is not executable", nd->name,
                             nd->op_type);
    }
}
