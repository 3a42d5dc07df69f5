/*
 * infer.h - the inference engine: an ONNX model in, a float tensor in, a
 * float tensor out. It knows nothing of HTTP, image files or matting.
 *
 * Loading parses the .onnx file (protobuf-c code generated at build time from
 * the system's onnx.proto), sorts the graph topologically, folds the constant
 * shape subgraphs for the fixed input shape, prunes every node the first
 * output does not need, fuses what it can (Conv+ReLU), converts fp16 weights
 * to the compute precision once, and plans every activation buffer once. The
 * per-run path allocates nothing large.
 *
 * Two backends run the same planned graph: oneDNN (fast) and a plain C
 * reference (slow, obviously correct) that tests compare against.
 *
 * Thread-safety: bgr_model_run may be called from any thread; runs of one
 * model are serialised on its internal mutex (the model owns its planned
 * buffers, and one run already uses every core through oneDNN's threads).
 * Loading different models concurrently is safe.
 */
#ifndef BGR_INFER_INFER_H
#define BGR_INFER_INFER_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

enum bgr_backend {
    BGR_BACKEND_DNNL = 0, /* oneDNN primitives (default) */
    BGR_BACKEND_REF,      /* plain C reference implementation of every op */
};

enum bgr_precision {
    BGR_PREC_AUTO = 0, /* best the CPU supports with the accuracy we promise */
    BGR_PREC_FP32,
    BGR_PREC_BF16,
    BGR_PREC_INT8,
};

struct bgr_model_opts {
    enum bgr_backend backend;
    enum bgr_precision precision;
    int n_threads; /* 0 = all cores */
    int verbose;   /* print per-op timings to stderr after each run */
    /* 1: neither read nor write the weight cache (see below); 0 (default):
     * a model file loaded on oneDNN uses it */
    int no_cache;
};

struct bgr_model;

/* Tensor shape: up to 4 dims, NCHW for images. */
struct bgr_shape {
    int rank;
    int64_t dims[4];
};

/* Loads a model from a file / from memory (the bytes are not kept).
 * On success *out owns the model; free it with bgr_model_free.
 * Errors: BGR_EIO (file), BGR_EMODEL (malformed or truncated file, an
 * unsupported op or attribute: the message names the node and op). */
int bgr_model_load_file(const char *path, const struct bgr_model_opts *opts, struct bgr_model **out,
                        struct bgr_error *err);
int bgr_model_load_mem(const void *data, size_t len, const struct bgr_model_opts *opts,
                       struct bgr_model **out, struct bgr_error *err);
void bgr_model_free(struct bgr_model *m); /* accepts NULL */

/* The weight cache. A model file loaded on oneDNN (from a file, not from
 * memory) is loaded from its cache file next to it when there is one that
 * matches, else parsed, and the cache is then written (temporary file and
 * rename; a directory that is not writable only costs the next load the
 * parse). The cache holds the prepared graph and every weight converted to
 * the precision and packed in the layout the CPU's kernels use; the load
 * maps it (the weights are not copied) and only creates the primitives. It
 * is tied to the model file's SHA-256 (with its stat identity as a fast
 * check, re-hashing the model when that changed), this build of the engine,
 * the oneDNN version, the CPU ISA, the precision and, for int8, the
 * calibration file's bytes; its body is checksummed at every load. A cache
 * that does not match or is corrupt is never used: it is rebuilt. */
enum bgr_cache_state {
    BGR_CACHE_OFF = 0,   /* not used (no_cache, the reference backend, memory) */
    BGR_CACHE_USED,      /* loaded from the cache */
    BGR_CACHE_WRITTEN,   /* parsed, cache (re)written */
    BGR_CACHE_UNWRITTEN, /* parsed, the cache could not be written */
};
/* What the load did with the cache; *note (optional, the model's, valid
 * while it lives) says why it was not used or not written, "" when nothing
 * to say. */
enum bgr_cache_state bgr_model_cache_state(const struct bgr_model *m, const char **note);
/* The cache file of a model file for a precision (AUTO: as resolved here)
 * on this CPU for this build: path with ".onnx" replaced by
 * ".PREC.ISA.ENGINE.wcache" (ENGINE: 8 hex digits of the engine's source
 * hash, so that builds sharing a model directory keep a file each; a
 * writer keeps the 3 newest files of other builds and removes older ones).
 * Caller frees. */
char *bgr_model_cache_path(const char *model_path, enum bgr_precision prec);

/* Shapes of the (single) input and the first output. */
struct bgr_shape bgr_model_input_shape(const struct bgr_model *m);
struct bgr_shape bgr_model_output_shape(const struct bgr_model *m);

/* Runs the model. in holds in_count floats (must equal the input shape's
 * element count, else BGR_ESHAPE); out receives out_count floats (must
 * equal the output's element count). Both buffers are the caller's. */
int bgr_model_run(struct bgr_model *m, const float *in, size_t in_count, float *out,
                  size_t out_count, struct bgr_error *err);

/* Multiply-accumulate count of one run (for GFLOP/s reports). */
double bgr_model_macs(const struct bgr_model *m);
/* How many convolutions run in int8 (0 unless the precision is int8). */
int bgr_model_int8_convs(const struct bgr_model *m);
/* Human-readable name of the precision actually in use ("fp32", "bf16",
 * "int8"). */
const char *bgr_model_precision_name(const struct bgr_model *m);
/* The precision BGR_PREC_AUTO resolves to on this CPU (decided once per
 * process from what oneDNN reports): BGR_PREC_BF16 where the CPU computes
 * bf16 natively, else BGR_PREC_FP32. */
enum bgr_precision bgr_precision_auto(void);

/* int8 calibration. After bgr_model_calib_start (a model file loaded in
 * fp32 on oneDNN, else BGR_EUSAGE) every run records the least and
 * greatest value of every convolution input; bgr_model_calib_write stores
 * the ranges of all runs since as text at path (atomically): a header
 * naming the model file (read again for its SHA-256 and size), then one
 * line per value. Loading a model file with BGR_PREC_INT8 reads
 * bgr_model_calib_path(its path): a missing, malformed or mismatched file
 * is BGR_EMODEL naming `bgremover models calibrate` (int8 from memory is
 * BGR_EMODEL: there is no file to find one next to).
 * Errors of write: BGR_EUSAGE (no start, or no run since), BGR_EIO. */
int bgr_model_calib_start(struct bgr_model *m, struct bgr_error *err);
int bgr_model_calib_write(struct bgr_model *m, const char *path, struct bgr_error *err);
/* The default calibration file of a model file: path with its ".onnx"
 * suffix (if any) replaced by ".int8cal". Caller frees. */
char *bgr_model_calib_path(const char *model_path);

/* Per-operator-kind profile (bgremover bench -v). Profiling waits for each
 * primitive to finish, so a profiled run is slightly slower; off by default. */
struct bgr_op_profile {
    const char *op; /* "Conv", "MaxPool", ..., "Reorder" (layout conversions); static */
    int count;      /* executions of this kind per run */
    double ms;      /* time spent in the last profiled run */
};
void bgr_model_set_profiling(struct bgr_model *m, int on);
/* Copies up to max entries (kinds that run at all) of the last profiled run
 * into out; returns how many there are. Not safe against a concurrent run. */
int bgr_model_profile(const struct bgr_model *m, struct bgr_op_profile *out, int max);
/* Bytes the model holds for activations and scratch (planned once at load). */
size_t bgr_model_planned_bytes(const struct bgr_model *m);

#endif
