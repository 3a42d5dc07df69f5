/*
 * be_dnnl.c - the oneDNN backend: the prepared graph as a flat list of
 * primitive executions on one CPU engine and one in-order stream.
 *
 * At creation, in topological order, be_dnnl_ops.c creates each step's
 * primitive with "any" layouts where oneDNN may choose (conv src, weights and
 * dst; pool, resampling and concat dst) and the producer's layout where the
 * op follows its input (eltwise, binary), so tensors stay blocked (nChw16c on
 * AVX-512) from op to op; a reorder into a temporary is inserted only where a
 * consumer wants another layout. This file then plans every buffer into one
 * arena by lifetime and binds the memories, and gives all primitives one
 * shared user scratchpad: a run allocates nothing.
 *
 * Precision: fp32, or on request bf16 activations and weights (fp32 bias and
 * accumulation inside oneDNN) where oneDNN chooses layouts, converted by the
 * same reorders at the graph's input and output; int8 is bf16 with most
 * convolutions in int8 (be_dnnl_q.c). In calibration mode (fp32) a run also
 * records the range of every convolution's source.
 */
#include "infer/be_dnnl.h"

#include <dnnl_debug.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#ifdef BGR_HAVE_OPENMP
#include <omp.h>
#endif

int bgr_dn_fail(dnnl_status_t st, const char *what, const struct bgr_node *nd,
                struct bgr_error *err)
{
    if (nd)
        return bgr_error_set(err, BGR_EMODEL, "node '%s' (%s): oneDNN %s failed: %s", nd->name,
                             nd->op_type, what, dnnl_status2str(st));
    return bgr_error_set(err, BGR_EINTERNAL, "oneDNN %s failed: %s", what, dnnl_status2str(st));
}

#define HUGE_PAGE ((size_t)2 << 20) /* alignment and populate step */

int bgr_act_mem_alloc(struct bgr_act_mem *m, size_t len, struct bgr_error *err)
{
    size_t n = (len + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    memset(m, 0, sizeof *m);
    if (n == 0)
        n = HUGE_PAGE;
    /* one huge page more, to cut a 2 MiB aligned range out of it */
    char *p = mmap(NULL, n + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return bgr_error_set(err, BGR_ENOMEM, "oneDNN backend: cannot map %zu bytes", n);
    size_t head = (HUGE_PAGE - (uintptr_t)p % HUGE_PAGE) % HUGE_PAGE;
    if (head)
        munmap(p, head);
    if (HUGE_PAGE - head)
        munmap(p + head + n, HUGE_PAGE - head);
    m->p = p + head;
    m->len = n;
    /* no MADV_HUGEPAGE: with this kernel's defrag=madvise it made loads
     * 2-3x slower on the shared 2-core machine (direct compaction; measured
     * twice, see bench/README.md) */
    return 0;
}

void bgr_act_mem_populate(const struct bgr_act_mem *m)
{
#ifdef MADV_POPULATE_WRITE
    /* 2 MiB per call: the call holds the address space's lock, which the
     * other thread's mmap, munmap and mprotect (oneDNN's jit code) need */
    size_t done = 0;
    while (done < m->len && madvise((char *)m->p + done, HUGE_PAGE, MADV_POPULATE_WRITE) == 0)
        done += HUGE_PAGE;
    if (done >= m->len)
        return;
#endif
    /* kernels before 5.14: reads would map the zero page, so write; this
     * memory is not in use yet (the caller's contract) */
    for (size_t i = 0; i < m->len; i += 4096)
        ((volatile char *)m->p)[i] = 0;
}

void bgr_act_mem_free(struct bgr_act_mem *m)
{
    if (m->len)
        munmap(m->p, m->len);
    memset(m, 0, sizeof *m);
}

void bgr_dn_plain_md(dnnl_memory_desc_t *md, const int64_t d[4])
{
    dnnl_dims_t dims = {d[0], d[1], d[2], d[3]};
    dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32, dnnl_nchw);
}

int bgr_dn_add_buf(struct bgr_dnnl_be *b, const dnnl_memory_desc_t *md_in, int first, int last)
{
    dnnl_memory_desc_t md_copy = *md_in; /* md_in may point into bufs, which may move */
    const dnnl_memory_desc_t *md = &md_copy;
    if (b->nbufs == b->cap_bufs) {
        b->cap_bufs = b->cap_bufs ? 2 * b->cap_bufs : 64;
        b->bufs = bgr_xrealloc(b->bufs, (size_t)b->cap_bufs * sizeof *b->bufs);
    }
    struct dn_buf *f = &b->bufs[b->nbufs];
    memset(f, 0, sizeof *f);
    f->md = *md;
    f->first = first;
    f->last = last;
    f->parent = -1;
    for (int i = 0; i < 4 && i < md->ndims; i++)
        f->dims[i] = md->dims[i];
    if (dnnl_memory_create(&f->mem, md, b->eng, DNNL_MEMORY_NONE) != dnnl_success)
        return -1;
    return b->nbufs++;
}

int bgr_dn_add_exec(struct bgr_dnnl_be *b, dnnl_primitive_desc_t pd, int kind, int nargs,
                    struct dn_exec **out, const struct bgr_node *nd, struct bgr_error *err)
{
    int rc = 0;
    dnnl_primitive_t prim = NULL;
    dnnl_memory_t sp = NULL;
    /* pd NULL: an execution without primitive (the reference fallback) */
    const dnnl_memory_desc_t *spmd =
        pd ? dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0) : NULL;
    size_t sz = spmd ? dnnl_memory_desc_get_size(spmd) : 0;
    if (pd)
        DN(dnnl_primitive_create(&prim, pd), "primitive creation", nd);
    if (sz > 0)
        DN(dnnl_memory_create(&sp, spmd, b->eng, DNNL_MEMORY_NONE), "scratchpad", nd);
    if (sz > b->scratch_size)
        b->scratch_size = sz;
    if (b->nex == b->cap_ex) {
        b->cap_ex = b->cap_ex ? 2 * b->cap_ex : 128;
        b->ex = bgr_xrealloc(b->ex, (size_t)b->cap_ex * sizeof *b->ex);
    }
    struct dn_exec *e = &b->ex[b->nex++];
    memset(e, 0, sizeof *e);
    e->prim = prim;
    e->kind = kind;
    e->args = bgr_xcalloc((size_t)nargs + 1, sizeof *e->args);
    e->nargs = nargs;
    if (sp) {
        e->sp_mem = sp;
        e->args[nargs] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, sp};
        e->nargs++;
    }
    prim = NULL;
    sp = NULL;
    *out = e;
out:
    if (prim)
        dnnl_primitive_destroy(prim);
    if (sp)
        dnnl_memory_destroy(sp);
    return rc;
}

int bgr_dn_add_reorder(struct bgr_dnnl_be *b, int src, const dnnl_memory_desc_t *want,
                       const_dnnl_primitive_attr_t attr, int k, int *out, const struct bgr_node *nd,
                       struct bgr_error *err)
{
    int rc = 0, t;
    dnnl_primitive_desc_t pd = NULL;
    struct dn_exec *e;
    DN(dnnl_reorder_primitive_desc_create(&pd, &b->bufs[src].md, b->eng, want, b->eng, attr),
       "reorder", nd);
    if ((t = bgr_dn_add_buf(b, want, k, k)) < 0)
        DN(dnnl_out_of_memory, "buffer", nd);
    if ((rc = bgr_dn_add_exec(b, pd, BGR_OP__COUNT, 2, &e, nd, err)))
        goto out;
    e->args[0] = (dnnl_exec_arg_t){DNNL_ARG_FROM, b->bufs[src].mem};
    e->args[1] = (dnnl_exec_arg_t){DNNL_ARG_TO, b->bufs[t].mem};
    *out = t;
out:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return rc;
}

int bgr_dn_buf_as(struct bgr_dnnl_be *b, int v, const dnnl_memory_desc_t *want, int k, int *out,
                  const struct bgr_node *nd, struct bgr_error *err)
{
    int src = b->val_buf[v];
    BGR_ASSERT(src >= 0);
    if (dnnl_memory_desc_equal(&b->bufs[src].md, want)) {
        *out = src;
        return 0;
    }
    return bgr_dn_add_reorder(b, src, want, b->attr, k, out, nd, err);
}

/* Output reorder (if needed), memory plan, arena and scratchpad binding. */
static int dn_finish(struct bgr_dnnl_be *b, const struct bgr_graph *g, struct bgr_error *err)
{
    int rc = 0, n = b->nbufs;
    dnnl_memory_desc_t plain;
    dnnl_primitive_desc_t pd = NULL;
    struct bgr_value *items = NULL;
    int *ids = NULL;
    b->out_buf = b->val_buf[g->output];
    BGR_ASSERT(b->out_buf >= 0);
    bgr_dn_plain_md(&plain, g->vals[g->output].dims);
    DN(dnnl_memory_create(&b->user_out, &plain, b->eng, DNNL_MEMORY_NONE), "output memory", NULL);
    if (!dnnl_memory_desc_equal(&b->bufs[b->out_buf].md, &plain)) {
        struct dn_exec *e;
        DN(dnnl_reorder_primitive_desc_create(&pd, &b->bufs[b->out_buf].md, b->eng, &plain, b->eng,
                                              b->attr),
           "output reorder", NULL);
        if ((rc = bgr_dn_add_exec(b, pd, BGR_OP__COUNT, 2, &e, NULL, err)))
            goto out;
        e->args[0] = (dnnl_exec_arg_t){DNNL_ARG_FROM, b->bufs[b->out_buf].mem};
        e->args[1] = (dnnl_exec_arg_t){DNNL_ARG_TO, b->user_out};
        b->out_reordered = 1;
    }
    items = bgr_xcalloc((size_t)n + 1, sizeof *items);
    ids = bgr_xmalloc(((size_t)n + 1) * sizeof *ids);
    int nplan = 0;
    for (int i = 0; i < n; i++) {
        items[i].first = b->bufs[i].first;
        items[i].last = b->bufs[i].last;
        items[i].size = dnnl_memory_desc_get_size(&b->bufs[i].md);
    }
    /* a Concat's output lives from its first input's production to its own
     * last use: views never nest (a buffer with views is never a view) */
    for (int i = 0; i < n; i++) {
        int p = b->bufs[i].parent;
        if (p < 0)
            continue;
        BGR_ASSERT(b->bufs[p].parent < 0);
        if (items[i].first < items[p].first)
            items[p].first = items[i].first;
        if (items[i].last > items[p].last)
            items[p].last = items[i].last;
    }
    for (int i = 0; i < n; i++)
        if (b->bufs[i].parent < 0)
            ids[nplan++] = i;
    b->arena_size = bgr_plan_offsets(items, ids, nplan);
    if (b->arena_size > BGR_MAX_ARENA) {
        rc = bgr_error_set(err, BGR_EMODEL, "the model needs %zu MiB of activations (limit %zu)",
                           b->arena_size >> 20, BGR_MAX_ARENA >> 20);
        goto out;
    }
    /* the caller's memory where it is large enough (a cached load made it
     * from the sizes recorded in the cache), else our own, faulted in now
     * so that the first run costs what every other run does */
    if (b->arena_cfg.len >= b->arena_size) {
        b->arena = b->arena_cfg.p;
    } else {
        if ((rc = bgr_act_mem_alloc(&b->arena_own, b->arena_size, err)))
            goto out;
        bgr_act_mem_populate(&b->arena_own);
        b->arena = b->arena_own.p;
    }
    if (b->scratch_cfg.len >= b->scratch_size) {
        b->scratch = b->scratch_cfg.p;
    } else {
        if ((rc = bgr_act_mem_alloc(&b->scratch_own, b->scratch_size, err)))
            goto out;
        bgr_act_mem_populate(&b->scratch_own);
        b->scratch = b->scratch_own.p;
    }
    for (int i = 0; i < n; i++) {
        int p = b->bufs[i].parent;
        size_t off = p < 0 ? items[i].offset : items[p].offset + b->bufs[i].poff;
        DN(dnnl_memory_set_data_handle(b->bufs[i].mem, (char *)b->arena + off), "binding", NULL);
    }
    for (int i = 0; i < b->nex; i++)
        if (b->ex[i].sp_mem)
            DN(dnnl_memory_set_data_handle(b->ex[i].sp_mem, b->scratch), "binding", NULL);
out:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    free(items);
    free(ids);
    return rc;
}

/* The blocked layout of the CPU's vector width (AVX-512: 16 floats, AVX2:
 * 8), which its jit kernels take natively; measured on ISNet (Zen 5, 2
 * cores): 6% faster than oneDNN's nhwc choice in bf16, 3% in fp32, and it
 * lets Concat inputs be written in place. */
static dnnl_format_tag_t act_tag_for_cpu(void)
{
    unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
    if ((isa & (unsigned)dnnl_cpu_isa_avx512_core) == (unsigned)dnnl_cpu_isa_avx512_core)
        return dnnl_nChw16c;
    if ((isa & (unsigned)dnnl_cpu_isa_avx2) == (unsigned)dnnl_cpu_isa_avx2)
        return dnnl_nChw8c;
    return dnnl_format_tag_any;
}

static int dn_attrs(struct bgr_dnnl_be *b, struct bgr_error *err)
{
    int rc = 0;
    dnnl_post_ops_t po = NULL;
    DN(dnnl_primitive_attr_create(&b->attr), "attributes", NULL);
    DN(dnnl_primitive_attr_set_scratchpad_mode(b->attr, dnnl_scratchpad_mode_user), "attributes",
       NULL);
    DN(dnnl_primitive_attr_create(&b->attr_relu), "attributes", NULL);
    DN(dnnl_primitive_attr_set_scratchpad_mode(b->attr_relu, dnnl_scratchpad_mode_user),
       "attributes", NULL);
    DN(dnnl_post_ops_create(&po), "post-ops", NULL);
    DN(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f), "post-ops", NULL);
    DN(dnnl_primitive_attr_set_post_ops(b->attr_relu, po), "post-ops", NULL);
out:
    if (po)
        dnnl_post_ops_destroy(po);
    return rc;
}

int bgr_dnnl_be_new(struct bgr_graph *g, const struct bgr_dnnl_cfg *cfg, struct bgr_dnnl_be **out,
                    struct bgr_error *err)
{
    struct bgr_dnnl_be *b = bgr_xcalloc(1, sizeof *b);
    int rc = 0, *ids = NULL, n_threads = cfg->n_threads;
    dnnl_memory_desc_t md;
    /* calibration scans fp32 sources; int8 keeps the rest in bf16 */
    BGR_ASSERT(!cfg->q_lo || cfg->bf16);
    b->n_threads = n_threads;
    b->act_dt = cfg->bf16 ? dnnl_bf16 : dnnl_f32;
    b->q_lo = cfg->q_lo;
    b->q_hi = cfg->q_hi;
    b->wc = cfg->wc;
    b->arena_cfg = cfg->arena;
    b->scratch_cfg = cfg->scratch;
    b->act_tag = act_tag_for_cpu();
    b->act_block = b->act_tag == dnnl_nChw16c ? 16 : b->act_tag == dnnl_nChw8c ? 8 : 1;
#ifdef BGR_HAVE_OPENMP
    if (n_threads > 0) /* OpenMP's thread count is per calling thread */
        omp_set_num_threads(n_threads);
#endif
    DN(dnnl_engine_create(&b->eng, dnnl_cpu, 0), "engine creation", NULL);
    DN(dnnl_stream_create(&b->stream, b->eng, dnnl_stream_default_flags), "stream creation", NULL);
    if ((rc = dn_attrs(b, err)))
        goto out;
    bgr_graph_lifetimes(g, &ids);
    b->val_buf = bgr_xmalloc(((size_t)g->nvals + 1) * sizeof *b->val_buf);
    b->qbuf = bgr_xmalloc(((size_t)g->nvals + 1) * sizeof *b->qbuf);
    for (int v = 0; v < g->nvals; v++)
        b->val_buf[v] = b->qbuf[v] = -1;
    bgr_dn_plain_md(&md, g->vals[g->input].dims);
    b->in_buf = bgr_dn_add_buf(b, &md, g->vals[g->input].first, g->vals[g->input].last);
    if (b->in_buf < 0)
        DN(dnnl_out_of_memory, "input memory", NULL);
    b->val_buf[g->input] = b->in_buf;
    for (int k = 0; k < g->norder; k++)
        if ((rc = bgr_dn_step(b, g, &g->nodes[g->order[k]], k, err)))
            goto out;
    if ((rc = dn_finish(b, g, err)))
        goto out;
    b->q_lo = b->q_hi = NULL; /* borrowed for the build only */
    b->wc = NULL;
    *out = b;
    b = NULL;
out:
    free(ids);
    bgr_dnnl_be_free(b);
    return rc;
}

/* Calibration: widens the recorded range of e's source value by what its
 * buffer holds now (every earlier execution has finished). Blocked
 * layouts' padding holds zeros, which only widens a range to 0. */
static int dn_cal_scan(struct bgr_dnnl_be *b, const struct dn_exec *e, struct bgr_error *err)
{
    int rc = 0, v = e->cal - 1;
    void *p = NULL;
    const struct dn_buf *f = &b->bufs[e->cal_buf];
    BGR_ASSERT(f->md.data_type == dnnl_f32);
    DN(dnnl_stream_wait(b->stream), "stream wait", NULL);
    DN(dnnl_memory_get_data_handle(f->mem, &p), "binding", NULL);
    size_t n = dnnl_memory_desc_get_size(&f->md) / sizeof(float);
    const float *x = p;
    float lo = b->cal_lo[v], hi = b->cal_hi[v];
    for (size_t i = 0; i < n; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    b->cal_lo[v] = lo;
    b->cal_hi[v] = hi;
out:
    return rc;
}

int bgr_dnnl_be_run(struct bgr_dnnl_be *b, const float *in, float *out, double *op_ms,
                    struct bgr_error *err)
{
    int rc = 0;
    const struct dn_buf *bi = &b->bufs[b->in_buf], *bo = &b->bufs[b->out_buf];
    void *p = NULL;
#ifdef BGR_HAVE_OPENMP
    if (b->n_threads > 0)
        omp_set_num_threads(b->n_threads);
#endif
    /* the input buffer is plain NCHW: a copy binds the caller's data */
    DN(dnnl_memory_get_data_handle(bi->mem, &p), "input binding", NULL);
    memcpy(p, in, dnnl_memory_desc_get_size(&bi->md));
    DN(dnnl_memory_set_data_handle(b->user_out, out), "output binding", NULL);
    for (int i = 0; i < b->nex; i++) {
        const struct dn_exec *e = &b->ex[i];
        if (e->cal && b->cal_lo && (rc = dn_cal_scan(b, e, err)))
            goto out;
        double t0 = op_ms ? bgr_now_sec() : 0;
        if (e->prim) {
            DN(dnnl_primitive_execute(e->prim, b->stream, e->nargs, e->args), "execution", NULL);
        } else {
            void *s = NULL, *d = NULL;
            DN(dnnl_stream_wait(b->stream), "stream wait", NULL);
            DN(dnnl_memory_get_data_handle(b->bufs[e->fb_src].mem, &s), "binding", NULL);
            DN(dnnl_memory_get_data_handle(b->bufs[e->fb_dst].mem, &d), "binding", NULL);
            bgr_ref_resize(&e->node->rs, s, b->bufs[e->fb_src].dims, d, b->bufs[e->fb_dst].dims);
        }
        if (op_ms) {
            DN(dnnl_stream_wait(b->stream), "stream wait", NULL);
            op_ms[e->kind] += (bgr_now_sec() - t0) * 1e3;
        }
    }
    DN(dnnl_stream_wait(b->stream), "stream wait", NULL);
    if (!b->out_reordered) { /* the output buffer is plain NCHW already */
        DN(dnnl_memory_get_data_handle(bo->mem, &p), "output binding", NULL);
        memcpy(out, p, dnnl_memory_desc_get_size(&bo->md));
    }
out:
    return rc;
}

int bgr_dnnl_be_calibrate(struct bgr_dnnl_be *b, float *lo, float *hi)
{
    if (b->act_dt != dnnl_f32)
        return -1;
    b->cal_lo = lo;
    b->cal_hi = hi;
    return 0;
}

size_t bgr_dnnl_be_bytes(const struct bgr_dnnl_be *b)
{
    return b->arena_size + b->scratch_size;
}

void bgr_dnnl_be_sizes(const struct bgr_dnnl_be *b, size_t *arena, size_t *scratch)
{
    *arena = b->arena_size;
    *scratch = b->scratch_size;
}

void bgr_dnnl_be_counts(const struct bgr_dnnl_be *b, int *counts)
{
    memset(counts, 0, (BGR_OP__COUNT + 1) * sizeof *counts);
    for (int i = 0; i < b->nex; i++)
        counts[b->ex[i].kind]++;
}

int bgr_dnnl_has_bf16(void)
{
    /* ISA values are bit sets: every ISA with native bf16 contains these */
    return ((unsigned)dnnl_get_effective_cpu_isa() & (unsigned)dnnl_cpu_isa_avx512_core_bf16) ==
           (unsigned)dnnl_cpu_isa_avx512_core_bf16;
}

void bgr_dnnl_be_free(struct bgr_dnnl_be *b)
{
    if (!b)
        return;
    for (int i = 0; i < b->nex; i++) {
        if (b->ex[i].prim)
            dnnl_primitive_destroy(b->ex[i].prim);
        if (b->ex[i].sp_mem)
            dnnl_memory_destroy(b->ex[i].sp_mem);
        free(b->ex[i].args);
    }
    for (int i = 0; i < b->nbufs; i++)
        if (b->bufs[i].mem)
            dnnl_memory_destroy(b->bufs[i].mem);
    for (int i = 0; i < b->nweights; i++)
        dnnl_memory_destroy(b->weights[i]);
    if (b->user_out)
        dnnl_memory_destroy(b->user_out);
    if (b->attr)
        dnnl_primitive_attr_destroy(b->attr);
    if (b->attr_relu)
        dnnl_primitive_attr_destroy(b->attr_relu);
    if (b->stream)
        dnnl_stream_destroy(b->stream);
    if (b->eng)
        dnnl_engine_destroy(b->eng);
    bgr_act_mem_free(&b->arena_own);
    bgr_act_mem_free(&b->scratch_own);
    free(b->ex);
    free(b->bufs);
    free(b->weights);
    free(b->val_buf);
    free(b->qbuf);
    free(b);
}
