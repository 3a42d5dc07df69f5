/*
 * be_dnnl_q.c - int8 convolutions in the oneDNN backend (precision int8).
 *
 * Which convolutions: those whose input range was calibrated (calib.c), with
 * one group and channels filling whole blocks. The first convolution (three
 * input channels, a tiny share of the work) and any that feed the output
 * through element-wise ops only (ISNet's one-channel last conv, kept fp32 as
 * in bf16) stay as they are. Everything else around them (pooling, resize,
 * concat, residual sums) stays bf16.
 *
 * Layout: oneDNN 2.6's int8 kernels (brgconv avx512_core_vnni) take nhwc
 * only; given nChw16c it picks the reference kernel, hundreds of times
 * slower (measured, see bench/README.md). So an int8 conv reads a u8/s8
 * nhwc copy of its input, made by one reorder that converts layout, type
 * and scale at once and shared by every int8 conv that reads the value, and
 * writes bf16 nhwc. oneDNN 2.6 has no int8 kernel with a bf16 destination
 * in nChw16c either, so nhwc spreads to the int8 convs' outputs, whose nhwc
 * channel slices are not dense: a Concat read only by int8 convs quantises
 * its inputs straight into the slices of one u8/s8 buffer (the value never
 * exists in bf16); any other Concat copies such inputs into its slices.
 */
#include "infer/be_dnnl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Convolutions with a smaller output stay bf16. In ISNet those are the deep,
 * dilated layers (outputs of 32x32 and 16x16 at 1024x1024 input: 64 convs,
 * 27 of 160 GMAC), whose per-tensor scale suits their channels worst and
 * whose errors the decoder upsamples over large areas. Measured on 17 photos
 * (bench/README.md): int8 everywhere, worst matte MAE 0.0113 against fp32
 * (plants-1) and 272-313 ms a run; with this bound 0.0047 and 300-306 ms. */
#define BGR_Q_MIN_SIDE 64

void bgr_dn_q_release(struct bgr_dn_q *q)
{
    free(q->s_w);
    free(q->bias);
    if (q->attr)
        dnnl_primitive_attr_destroy(q->attr);
    memset(q, 0, sizeof *q);
}

/* Whether this conv can run in int8 and the source range to use. */
static int q_eligible(const struct bgr_dnnl_be *b, const struct bgr_graph *g,
                      const struct bgr_node *nd, float *lo, float *hi)
{
    const struct bgr_conv_p *p = &nd->conv;
    int v = nd->in[0];
    if (!b->q_lo || p->group != 1 || b->act_block < 16 || p->C % b->act_block != 0)
        return 0;
    if (bgr_dn_feeds_output_only(g, nd->out, 0))
        return 0;
    if (g->vals[nd->out].dims[2] < BGR_Q_MIN_SIDE || g->vals[nd->out].dims[3] < BGR_Q_MIN_SIDE)
        return 0;
    *lo = b->q_lo[v];
    *hi = b->q_hi[v];
    /* an unknown (NaN) or empty range: nothing to scale by */
    return isfinite(*lo) && isfinite(*hi) && *hi > *lo && fmaxf(fabsf(*lo), fabsf(*hi)) > 0;
}

/* The source type and scale for a value in [lo, hi]: u8 where it is never
 * negative (after a ReLU: nearly all of ISNet), which keeps a bit of
 * resolution that s8 would spend on signs. */
static void q_scale(float lo, float hi, dnnl_data_type_t *sdt, float *s)
{
    if (lo >= 0) {
        *sdt = dnnl_u8;
        *s = 255.0f / hi;
    } else {
        *sdt = dnnl_s8;
        *s = 127.0f / fmaxf(fabsf(lo), fabsf(hi));
    }
}

int bgr_dn_q_prepare(struct bgr_dnnl_be *b, const struct bgr_graph *g, const struct bgr_node *nd,
                     struct bgr_dn_q *q, struct bgr_error *err)
{
    const struct bgr_conv_p *p = &nd->conv;
    int rc = 0;
    float lo, hi;
    dnnl_post_ops_t po = NULL;
    float *oscale = NULL;
    memset(q, 0, sizeof *q);
    if (!q_eligible(b, g, nd, &lo, &hi))
        return 0;
    q_scale(lo, hi, &q->sdt, &q->s_in);
    size_t per_oc = (size_t)(p->C * p->kh * p->kw);
    q->s_w = bgr_xmalloc((size_t)p->M * sizeof *q->s_w);
    oscale = bgr_xmalloc((size_t)p->M * sizeof *oscale);
    if (p->b)
        q->bias = bgr_xmalloc((size_t)p->M * sizeof *q->bias);
    if (bgr_dn_cached(b)) { /* the weights themselves are not loaded */
        const float *sw = bgr_wc_next(b->wc, BGR_WC_WSCALE, (size_t)p->M * sizeof *q->s_w);
        if (!sw) {
            rc = bgr_error_set(err, BGR_EMODEL, "node '%s': the weight cache does not match",
                               nd->name);
            goto out;
        }
        memcpy(q->s_w, sw, (size_t)p->M * sizeof *q->s_w);
    } else {
        for (int64_t oc = 0; oc < p->M; oc++) {
            float m = 0;
            for (size_t i = 0; i < per_oc; i++)
                m = fmaxf(m, fabsf(p->w[(size_t)oc * per_oc + i]));
            q->s_w[oc] = m > 0 ? 127.0f / m : 1.0f;
        }
        if (b->wc)
            bgr_wc_put(b->wc, BGR_WC_WSCALE, q->s_w, (size_t)p->M * sizeof *q->s_w, 1);
    }
    for (int64_t oc = 0; oc < p->M; oc++) {
        float s = q->s_in * q->s_w[oc];
        oscale[oc] = 1.0f / s;
        if (p->b)
            q->bias[oc] = p->b[oc] * s;
    }
    DN(dnnl_primitive_attr_create(&q->attr), "attributes", nd);
    DN(dnnl_primitive_attr_set_scratchpad_mode(q->attr, dnnl_scratchpad_mode_user), "attributes",
       nd);
    /* mask 2: one scale per output channel (dimension 1 of the dst) */
    DN(dnnl_primitive_attr_set_output_scales(q->attr, p->M, 1 << 1, oscale), "output scales", nd);
    if (p->relu) {
        DN(dnnl_post_ops_create(&po), "post-ops", nd);
        DN(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f), "post-ops", nd);
        DN(dnnl_primitive_attr_set_post_ops(q->attr, po), "post-ops", nd);
    }
    q->on = 1;
out:
    if (po)
        dnnl_post_ops_destroy(po);
    free(oscale);
    if (rc)
        bgr_dn_q_release(q);
    return rc;
}

int bgr_dn_q_src(struct bgr_dnnl_be *b, int v, const dnnl_memory_desc_t *want, float scale, int k,
                 int *out, const struct bgr_node *nd, struct bgr_error *err)
{
    int rc = 0, src = b->val_buf[v], t = b->qbuf[v];
    dnnl_primitive_attr_t attr = NULL;
    BGR_ASSERT(src >= 0);
    /* one copy per value: the scale is the value's, so every reader agrees */
    if (t >= 0 && dnnl_memory_desc_equal(&b->bufs[t].md, want)) {
        if (b->bufs[t].last < k)
            b->bufs[t].last = k;
        *out = t;
        return 0;
    }
    DN(dnnl_primitive_attr_create(&attr), "attributes", nd);
    DN(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "attributes", nd);
    DN(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &scale), "output scales", nd);
    if ((rc = bgr_dn_add_reorder(b, src, want, attr, k, &t, nd, err)))
        goto out;
    b->qbuf[v] = t;
    *out = t;
out:
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    return rc;
}

/* Whether every reader of v is a convolution that takes it as its source
 * and runs in int8 (so nothing needs v in bf16). */
static int read_by_int8_only(const struct bgr_dnnl_be *b, const struct bgr_graph *g, int v)
{
    int n = 0;
    float lo, hi;
    if (v == g->output)
        return 0;
    for (int k = 0; k < g->norder; k++) {
        const struct bgr_node *nd = &g->nodes[g->order[k]];
        for (int i = 0; i < nd->nin; i++) {
            if (nd->in[i] != v)
                continue;
            if (nd->op != BGR_OP_CONV || i != 0 || !q_eligible(b, g, nd, &lo, &hi))
                return 0;
            n++;
        }
    }
    return n > 0;
}

int bgr_dn_q_concat(struct bgr_dnnl_be *b, const struct bgr_graph *g, const struct bgr_node *nd,
                    int k, struct bgr_error *err)
{
    const struct bgr_value *o = &g->vals[nd->out];
    int rc = 0, t;
    dnnl_data_type_t sdt;
    float s;
    int64_t coff = 0;
    dnnl_memory_desc_t md;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_dims_t dd = {o->dims[0], o->dims[1], o->dims[2], o->dims[3]};
    if (!b->q_lo || o->dims[0] != 1 || !read_by_int8_only(b, g, nd->out))
        return 1;
    q_scale(b->q_lo[nd->out], b->q_hi[nd->out], &sdt, &s);
    dnnl_memory_desc_init_by_tag(&md, 4, dd, sdt, dnnl_nhwc);
    if ((t = bgr_dn_add_buf(b, &md, k, o->last)) < 0)
        DN(dnnl_out_of_memory, "buffer", nd);
    DN(dnnl_primitive_attr_create(&attr), "attributes", nd);
    DN(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "attributes", nd);
    DN(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &s), "output scales", nd);
    for (int i = 0; i < nd->nin; i++) {
        int sb = b->val_buf[nd->in[i]], ts;
        dnnl_memory_desc_t sub, smd = b->bufs[sb].md;
        dnnl_dims_t offs = {0, coff, 0, 0};
        dnnl_primitive_desc_t pd = NULL;
        struct dn_exec *e;
        DN(dnnl_memory_desc_init_submemory(&sub, &b->bufs[t].md, smd.dims, offs), "concat slice",
           nd);
        if ((ts = bgr_dn_add_buf(b, &sub, k, k)) < 0)
            DN(dnnl_out_of_memory, "concat slice", nd);
        b->bufs[ts].parent = t; /* the submemory carries the offset itself */
        b->bufs[t].has_views = 1;
        DN(dnnl_reorder_primitive_desc_create(&pd, &smd, b->eng, &sub, b->eng, attr),
           "quantising concat", nd);
        rc = bgr_dn_add_exec(b, pd, BGR_OP_CONCAT, 2, &e, nd, err);
        dnnl_primitive_desc_destroy(pd);
        if (rc)
            goto out;
        e->args[0] = (dnnl_exec_arg_t){DNNL_ARG_FROM, b->bufs[sb].mem};
        e->args[1] = (dnnl_exec_arg_t){DNNL_ARG_TO, b->bufs[ts].mem};
        coff += smd.dims[1];
    }
    /* the value exists only quantised: its readers find it as their copy */
    b->val_buf[nd->out] = b->qbuf[nd->out] = t;
out:
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    return rc;
}

int bgr_dnnl_has_vnni(void)
{
    unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
    return (isa & (unsigned)dnnl_cpu_isa_avx512_core_vnni) ==
           (unsigned)dnnl_cpu_isa_avx512_core_vnni;
}

int bgr_dnnl_be_int8_convs(const struct bgr_dnnl_be *b)
{
    return b->n_int8;
}
