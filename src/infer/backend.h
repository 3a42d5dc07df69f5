/*
 * backend.h - the two executors of a prepared graph (private to src/infer).
 * Each plans its own activation arena at creation (sizes differ: oneDNN's
 * blocked layouts pad channels) and runs the graph's steps in order. op_ms,
 * when not NULL, accumulates milliseconds per op kind; index BGR_OP__COUNT
 * collects layout reorders.
 */
#ifndef BGR_INFER_BACKEND_H
#define BGR_INFER_BACKEND_H

#include "infer/graph.h"
#include "infer/wcache.h"

struct bgr_ref_be;
int bgr_ref_be_new(struct bgr_graph *g, struct bgr_ref_be **out, struct bgr_error *err);
void bgr_ref_be_run(struct bgr_ref_be *b, const struct bgr_graph *g, const float *in, float *out,
                    double *op_ms);
void bgr_ref_be_free(struct bgr_ref_be *b);
size_t bgr_ref_be_bytes(const struct bgr_ref_be *b); /* planned activation bytes */

/* Activation memory: an anonymous mapping, 2 MiB aligned. Fresh pages are
 * what makes a first run slower than the next (on the shared KVM guest
 * measured, the first write to 128 MiB of new memory took 300-700 ms under
 * load: the hypervisor backs each page on first touch), so a backend
 * faults its memory in at load, and a cached load does that on a second
 * thread while the primitives are created. */
struct bgr_act_mem {
    void *p;
    size_t len; /* 0: none */
};
/* Maps len bytes (rounded up to 2 MiB); BGR_ENOMEM. */
int bgr_act_mem_alloc(struct bgr_act_mem *m, size_t len, struct bgr_error *err);
/* Faults every page in, writable (the contents stay zero). Thread-safe
 * against anything but freeing m. */
void bgr_act_mem_populate(const struct bgr_act_mem *m);
void bgr_act_mem_free(struct bgr_act_mem *m); /* accepts an empty one */

struct bgr_dnnl_be;
/* How the oneDNN backend computes. */
struct bgr_dnnl_cfg {
    int n_threads; /* 0 = all cores */
    int bf16;      /* activations and weights in bf16 (only where bgr_dnnl_has_bf16()) */
    /* int8 (with bf16 set): per graph value id, the calibrated range of the
     * values that feed convolutions, NaN where unknown; NULL = no int8.
     * Borrowed for the call only. */
    const float *q_lo, *q_hi;
    /* the weight cache (wcache.h), NULL = none. Reading: every packed
     * weight comes from its mapping, which must outlive the backend (the
     * graph's conv weights are then never read); writing: every packed
     * weight is recorded, by reference to the backend's own memory, so the
     * recorder must be committed before the backend is freed. Any mismatch
     * while reading fails the creation (BGR_EMODEL). */
    struct bgr_wcache *wc;
    /* memory made beforehand for the activations and the scratchpad,
     * borrowed (must outlive the backend); used where large enough, else
     * (and when empty) the backend maps and populates its own */
    struct bgr_act_mem arena, scratch;
};

/* Reorders weights into the layouts the primitives chose and creates every
 * primitive. Afterwards the graph's constants are no longer read. */
int bgr_dnnl_be_new(struct bgr_graph *g, const struct bgr_dnnl_cfg *cfg, struct bgr_dnnl_be **out,
                    struct bgr_error *err);
/* Whether this CPU runs bf16 natively (AVX512-BF16 or later). */
int bgr_dnnl_has_bf16(void);
/* Whether this CPU has int8 dot-product instructions (AVX512-VNNI). */
int bgr_dnnl_has_vnni(void);
/* Calibration (an fp32 backend only, else -1): from now on every run widens
 * lo[v], hi[v] to the range seen at the input of each convolution; the
 * caller's arrays (graph value ids), which must outlive the backend. */
int bgr_dnnl_be_calibrate(struct bgr_dnnl_be *b, float *lo, float *hi);
/* Number of convolutions the backend runs in int8. */
int bgr_dnnl_be_int8_convs(const struct bgr_dnnl_be *b);
int bgr_dnnl_be_run(struct bgr_dnnl_be *b, const float *in, float *out, double *op_ms,
                    struct bgr_error *err);
void bgr_dnnl_be_free(struct bgr_dnnl_be *b);
size_t bgr_dnnl_be_bytes(const struct bgr_dnnl_be *b); /* activations + scratchpad */
void bgr_dnnl_be_sizes(const struct bgr_dnnl_be *b, size_t *arena, size_t *scratch);
/* Executions per run by kind (counts[BGR_OP__COUNT]: reorders); counts has
 * BGR_OP__COUNT + 1 entries, filled, not accumulated. */
void bgr_dnnl_be_counts(const struct bgr_dnnl_be *b, int *counts);

/* Fills first/last for every activation the steps touch (resolved ids) and
 * returns their ids in *ids (caller frees); the graph input and output live
 * over the whole run. */
int bgr_graph_lifetimes(struct bgr_graph *g, int **ids);

#endif
