/*
 * be_dnnl.h - shared state of the oneDNN backend's two files (private):
 * be_dnnl.c owns the lifecycle, the memory plan and the run loop;
 * be_dnnl_ops.c creates each step's primitives at load.
 */
#ifndef BGR_INFER_BE_DNNL_H
#define BGR_INFER_BE_DNNL_H

#include "infer/backend.h"

#include <dnnl.h>

/* one planned buffer: a graph activation or a reorder temporary */
struct dn_buf {
    dnnl_memory_desc_t md;
    dnnl_memory_t mem; /* owned; its handle points into the arena after planning */
    int first, last;   /* step interval it must survive */
    int64_t dims[4];   /* logical NCHW dims, for the reference fallback */
    /* A Concat input written in place: this buffer is a view poff bytes
     * into buffer parent (the Concat's output) and is not planned by
     * itself; -1 for a buffer of its own. A buffer with views must never be
     * accumulated into in place (the views' values may still be alive). */
    int parent;
    size_t poff;
    int has_views;
};

/* one execution: a primitive with its arguments, or the reference resize */
struct dn_exec {
    dnnl_primitive_t prim; /* owned; NULL: reference resize fallback */
    int nargs;
    dnnl_exec_arg_t *args;       /* owned array; the memories belong to bufs/weights */
    dnnl_memory_t sp_mem;        /* owned, this primitive's view of the shared scratchpad */
    int kind;                    /* enum bgr_opk, or BGR_OP__COUNT for reorders */
    const struct bgr_node *node; /* fallback only (graph outlives the backend) */
    int fb_src, fb_dst;          /* fallback buffers */
    /* calibration: 1 + the graph value whose range buffer cal_buf holds
     * before this execution (a convolution's fp32 source), 0 = none */
    int cal, cal_buf;
};

struct bgr_dnnl_be {
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    dnnl_primitive_attr_t attr;      /* user scratchpad */
    dnnl_primitive_attr_t attr_relu; /* user scratchpad + ReLU post-op */
    struct dn_buf *bufs;
    int nbufs, cap_bufs;
    int *val_buf; /* graph value id -> buffer index, -1 if none */
    struct dn_exec *ex;
    int nex, cap_ex;
    dnnl_memory_t *weights; /* owned weight and bias memories */
    int nweights, cap_weights;
    /* activations and the shared scratchpad: the caller's (cfg) or owned */
    struct bgr_act_mem arena_own, scratch_own, arena_cfg, scratch_cfg;
    void *arena, *scratch; /* where they are bound */
    size_t arena_size, scratch_size;
    int in_buf, out_buf;
    dnnl_memory_t user_out; /* owned, handle set per run */
    int out_reordered;      /* the last execution writes user_out */
    int n_threads;
    /* data type of activations and weights where oneDNN chooses layouts
     * (f32 or bf16); the reorders at the graph's input and output convert */
    dnnl_data_type_t act_dt;
    /* layout of convolution activations whose channels are a multiple of
     * act_block: nChw16c (AVX-512) or nChw8c (AVX2), where a channel slice
     * at a block boundary is a dense tensor of its own, so Concat inputs can
     * be written in place (oneDNN 2.6 picks nhwc given "any", whose slices
     * only reference kernels can write); dnnl_format_tag_any (act_block 1)
     * leaves it to oneDNN */
    dnnl_format_tag_t act_tag;
    int act_block;
    /* int8 (be_dnnl_q.c): calibrated ranges per value (borrowed, set only
     * while the backend is built), the buffer holding each value's
     * quantised copy (-1 none), and how many convolutions run in int8 */
    const float *q_lo, *q_hi;
    int *qbuf;
    int n_int8;
    /* the weight cache while the backend is built (borrowed), NULL = none */
    struct bgr_wcache *wc;
    /* calibration (fp32): the caller's per-value ranges, NULL = off */
    float *cal_lo, *cal_hi;
};

int bgr_dn_fail(dnnl_status_t st, const char *what, const struct bgr_node *nd,
                struct bgr_error *err);
#define DN(call, what, nd)                                                                         \
    do {                                                                                           \
        dnnl_status_t st_ = (call);                                                                \
        if (st_ != dnnl_success) {                                                                 \
            rc = bgr_dn_fail(st_, what, nd, err);                                                  \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

/* Adds a buffer of layout md alive over steps [first, last]; -1 on failure. */
int bgr_dn_add_buf(struct bgr_dnnl_be *b, const dnnl_memory_desc_t *md, int first, int last);
/* Creates pd's primitive (none when pd is NULL) and appends it with room for nargs arguments plus
 * the scratchpad; fills *e. pd stays the caller's. */
int bgr_dn_add_exec(struct bgr_dnnl_be *b, dnnl_primitive_desc_t pd, int kind, int nargs,
                    struct dn_exec **e, const struct bgr_node *nd, struct bgr_error *err);
/* Appends a reorder of buffer src into a new buffer of layout want (alive
 * at step k only; the caller may extend it) with attr (scales, scratchpad);
 * *out is the new buffer. */
int bgr_dn_add_reorder(struct bgr_dnnl_be *b, int src, const dnnl_memory_desc_t *want,
                       const_dnnl_primitive_attr_t attr, int k, int *out, const struct bgr_node *nd,
                       struct bgr_error *err);
/* Buffer holding value v in layout want, adding a reorder before step k when
 * the producer's layout differs. */
int bgr_dn_buf_as(struct bgr_dnnl_be *b, int v, const dnnl_memory_desc_t *want, int k, int *out,
                  const struct bgr_node *nd, struct bgr_error *err);
void bgr_dn_plain_md(dnnl_memory_desc_t *md, const int64_t d[4]);
/* Whether the backend reads its packed weights from the cache. */
static inline int bgr_dn_cached(const struct bgr_dnnl_be *b)
{
    return b->wc && !bgr_wc_writing(b->wc);
}
/* be_dnnl_ops.c: the primitives of one step. */
int bgr_dn_step(struct bgr_dnnl_be *b, const struct bgr_graph *g, const struct bgr_node *nd, int k,
                struct bgr_error *err);
/* Whether value v reaches the graph output through Relu, Sigmoid and Resize only. */
int bgr_dn_feeds_output_only(const struct bgr_graph *g, int v, int depth);

/* be_dnnl_q.c: how one convolution runs in int8. Activations are quantised
 * per tensor (q = x * s_in, u8 when the calibrated minimum is >= 0, else
 * s8), weights per output channel (q = w * s_w[oc], s8); the conv's output
 * scales 1 / (s_in * s_w[oc]) bring the s32 accumulator back to real units
 * in a bf16 destination. */
struct bgr_dn_q {
    int on;                     /* 0: this conv stays in the backend's float type */
    dnnl_data_type_t sdt;       /* dnnl_u8 or dnnl_s8 */
    float s_in;                 /* source scale */
    float *s_w;                 /* M weight scales, owned */
    float *bias;                /* M, in accumulator units (oneDNN 2.x adds the bias
                                 * before the output scales); owned, NULL = none */
    dnnl_primitive_attr_t attr; /* scratchpad, output scales, [ReLU]; owned */
};
/* Decides whether nd runs in int8 and fills *q (q->on = 0 when not). */
int bgr_dn_q_prepare(struct bgr_dnnl_be *b, const struct bgr_graph *g, const struct bgr_node *nd,
                     struct bgr_dn_q *q, struct bgr_error *err);
void bgr_dn_q_release(struct bgr_dn_q *q); /* accepts an untouched (zeroed) q */
/* A Concat whose readers all run in int8: each input is quantised straight
 * into its channel slice of one u8/s8 nhwc buffer, which then is the value
 * (no bf16 copy of it exists). 1 when it does not apply (dn_concat then). */
int bgr_dn_q_concat(struct bgr_dnnl_be *b, const struct bgr_graph *g, const struct bgr_node *nd,
                    int k, struct bgr_error *err);
/* The buffer holding value v quantised by scale into layout want (u8/s8),
 * made by a reorder before step k, or the one an earlier conv made. */
int bgr_dn_q_src(struct bgr_dnnl_be *b, int v, const dnnl_memory_desc_t *want, float scale, int k,
                 int *out, const struct bgr_node *nd, struct bgr_error *err);

#endif
