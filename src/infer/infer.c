/*
 * infer.c - the public face of the engine (infer.h): load = parse + prepare
 * + one backend, run = shape checks, the model's lock and the backend's run.
 */
#include "infer/infer.h"
#include "infer/backend.h"

#include <dnnl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BGR_MODEL_FILE_MAX ((size_t)1 << 30)

struct bgr_model {
    pthread_mutex_t mu; /* serialises runs: the backend owns one set of buffers */
    struct bgr_model_opts opts;
    struct bgr_graph g;
    struct bgr_ref_be *ref;
    struct bgr_dnnl_be *dn;
    struct bgr_shape in_shape, out_shape;
    size_t in_count, out_count;
};

static struct bgr_shape shape_of(const struct bgr_value *v)
{
    struct bgr_shape s = {.rank = 4};
    memcpy(s.dims, v->dims, sizeof s.dims);
    return s;
}

static void print_plan(const struct bgr_model *m)
{
    const dnnl_version_t *dv = dnnl_version();
    int counts[BGR_OP__COUNT] = {0}, fused = 0;
    for (int k = 0; k < m->g.norder; k++) {
        const struct bgr_node *nd = &m->g.nodes[m->g.order[k]];
        counts[nd->op]++;
        fused += nd->op == BGR_OP_CONV && nd->conv.relu;
    }
    size_t bytes = m->ref ? bgr_ref_be_bytes(m->ref) : bgr_dnnl_be_bytes(m->dn);
    fprintf(stderr,
            "infer: %d steps (%d Conv, %d with fused ReLU), %.2f GMAC, %zu MiB planned, "
            "backend %s, %s, oneDNN %d.%d.%d (cpu runtime %u)\n",
            m->g.norder, counts[BGR_OP_CONV], fused, m->g.macs / 1e9, bytes >> 20,
            m->opts.backend == BGR_BACKEND_REF ? "reference" : "oneDNN",
            bgr_model_precision_name(m), dv->major, dv->minor, dv->patch, dv->cpu_runtime);
}

int bgr_model_load_mem(const void *data, size_t len, const struct bgr_model_opts *opts,
                       struct bgr_model **out, struct bgr_error *err)
{
    struct bgr_model_opts def = {0};
    struct bgr_model *m = NULL;
    int rc;
    if (!opts)
        opts = &def;
    if (opts->backend != BGR_BACKEND_DNNL && opts->backend != BGR_BACKEND_REF)
        return bgr_error_set(err, BGR_EUSAGE, "unknown backend %d", (int)opts->backend);
    /* AUTO is fp32 until bf16 is measured against the parity bar; bf16 is
     * opt-in where the CPU has it natively (else oneDNN would pick slow
     * reference kernels) */
    if (opts->precision == BGR_PREC_INT8)
        return bgr_error_set(err, BGR_EMODEL, "precision int8 is not supported yet");
    if (opts->precision == BGR_PREC_BF16 && opts->backend == BGR_BACKEND_REF)
        return bgr_error_set(err, BGR_EMODEL, "the reference backend computes in fp32 only");
    if (opts->precision == BGR_PREC_BF16 && !bgr_dnnl_has_bf16())
        return bgr_error_set(err, BGR_EMODEL,
                             "bf16 needs a CPU with AVX512-BF16; this one has none");
    m = bgr_xcalloc(1, sizeof *m);
    m->opts = *opts;
    if ((rc = bgr_onnx_load(data, len, &m->g, err))) {
        free(m);
        return rc;
    }
    pthread_mutex_init(&m->mu, NULL);
    m->in_shape = shape_of(&m->g.vals[m->g.input]);
    m->out_shape = shape_of(&m->g.vals[m->g.output]);
    m->in_count = (size_t)bgr_act_count(&m->g.vals[m->g.input]);
    m->out_count = (size_t)bgr_act_count(&m->g.vals[m->g.output]);
    if (opts->backend == BGR_BACKEND_REF) {
        rc = bgr_ref_be_new(&m->g, &m->ref, err);
    } else {
        rc = bgr_dnnl_be_new(&m->g, opts->n_threads, opts->precision == BGR_PREC_BF16, &m->dn, err);
        if (rc == 0) /* the primitives hold their own copy of the weights now */
            bgr_graph_drop_consts(&m->g);
    }
    if (rc) {
        bgr_model_free(m);
        return rc;
    }
    if (opts->verbose)
        print_plan(m);
    *out = m;
    return 0;
}

int bgr_model_load_file(const char *path, const struct bgr_model_opts *opts, struct bgr_model **out,
                        struct bgr_error *err)
{
    struct bgr_buf buf;
    int rc;
    bgr_buf_init(&buf, BGR_MODEL_FILE_MAX);
    if ((rc = bgr_file_read(path, BGR_MODEL_FILE_MAX, &buf, err)))
        return rc;
    rc = bgr_model_load_mem(buf.data, buf.len, opts, out, err);
    if (rc)
        bgr_error_prefix(err, "%s", path);
    bgr_buf_release(&buf);
    return rc;
}

void bgr_model_free(struct bgr_model *m)
{
    if (!m)
        return;
    bgr_ref_be_free(m->ref);
    bgr_dnnl_be_free(m->dn);
    bgr_graph_release(&m->g);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

struct bgr_shape bgr_model_input_shape(const struct bgr_model *m)
{
    return m->in_shape;
}

struct bgr_shape bgr_model_output_shape(const struct bgr_model *m)
{
    return m->out_shape;
}

static void print_times(const double *op_ms, double total_ms)
{
    fprintf(stderr, "infer: run %.1f ms:", total_ms);
    for (int i = 0; i <= BGR_OP__COUNT; i++)
        if (op_ms[i] > 0)
            fprintf(stderr, " %s %.1f", i == BGR_OP__COUNT ? "Reorder" : bgr_op_name(i), op_ms[i]);
    fprintf(stderr, "\n");
}

int bgr_model_run(struct bgr_model *m, const float *in, size_t in_count, float *out,
                  size_t out_count, struct bgr_error *err)
{
    double op_ms[BGR_OP__COUNT + 1] = {0}, t0 = bgr_now_sec();
    int rc = 0;
    if (in_count != m->in_count)
        return bgr_error_set(err, BGR_ESHAPE, "input holds %zu floats, the model takes %zu",
                             in_count, m->in_count);
    if (out_count != m->out_count)
        return bgr_error_set(err, BGR_ESHAPE, "output holds %zu floats, the model gives %zu",
                             out_count, m->out_count);
    if (!in || !out)
        return bgr_error_set(err, BGR_EUSAGE, "NULL tensor");
    pthread_mutex_lock(&m->mu);
    if (m->ref)
        bgr_ref_be_run(m->ref, &m->g, in, out, m->opts.verbose ? op_ms : NULL);
    else
        rc = bgr_dnnl_be_run(m->dn, in, out, m->opts.verbose ? op_ms : NULL, err);
    pthread_mutex_unlock(&m->mu);
    if (m->opts.verbose && rc == 0)
        print_times(op_ms, (bgr_now_sec() - t0) * 1e3);
    return rc;
}

double bgr_model_macs(const struct bgr_model *m)
{
    return m->g.macs;
}

const char *bgr_model_precision_name(const struct bgr_model *m)
{
    return m->opts.precision == BGR_PREC_BF16 ? "bf16" : "fp32";
}
