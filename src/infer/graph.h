/*
 * graph.h - the engine's private model representation, shared by the ONNX
 * loader, the graph passes, the memory planner and the two backends. Not a
 * public header: only src/infer includes it (and the infer unit tests, which
 * drive the reference kernels directly).
 *
 * Life of a model: onnx_load.c turns the protobuf into values and nodes
 * (weights stay unconverted until a kept node needs them), graph.c prunes to
 * what the first output needs, sorts topologically, folds constants and
 * infers shapes for the fixed input shape, turns Cast/Identity on activations
 * into aliases and fuses Conv+Relu. What remains is a list of steps over
 * rank-4 float activations that both backends execute in order.
 */
#ifndef BGR_INFER_GRAPH_H
#define BGR_INFER_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#define BGR_MAX_RANK 8 /* constants (shape vectors etc.) */
/* Bounds on what an (untrusted) model may ask for: elements of one tensor
 * and bytes of one run's planned activations. ISNet at 1024x1024 needs 2^25
 * elements at most and well under 1 GiB. */
#define BGR_MAX_ELEMS ((int64_t)1 << 28)
#define BGR_MAX_ARENA ((size_t)4 << 30)
#define BGR_MAX_INPUTS 64

enum bgr_dtype { BGR_DT_F32 = 0, BGR_DT_I64 };

/* A constant tensor (folded value or converted initializer). Owns f or i. */
struct bgr_const {
    enum bgr_dtype dt;
    int rank;
    int64_t dims[BGR_MAX_RANK];
    size_t n; /* element count */
    float *f;
    int64_t *i;
};

enum bgr_val_kind { BGR_VAL_UNKNOWN = 0, BGR_VAL_CONST, BGR_VAL_ACT };

/* One named tensor of the graph. */
struct bgr_value {
    char *name; /* owned */
    enum bgr_val_kind kind;
    struct bgr_const c; /* kind == CONST */
    int64_t dims[4];    /* kind == ACT: NCHW */
    int producer;       /* node index, -1 for graph input / initializer, -2 for a
                           node's secondary output (not computed), see sec_node */
    int sec_node;       /* producer == -2: the node it comes from */
    int alias;          /* value this one is an alias of (Cast/Identity), -1 if none */
    const void *init;   /* unconverted initializer (Onnx__TensorProto), loader-scoped */
    /* memory planning (per backend) */
    int first, last; /* first and last step that touch it */
    size_t size, offset;
};

enum bgr_opk {
    BGR_OP_CONV = 0,
    BGR_OP_RELU,
    BGR_OP_SIGMOID,
    BGR_OP_MAXPOOL,
    BGR_OP_RESIZE,
    BGR_OP_CONCAT,
    BGR_OP_ADD,
    /* only folded or aliased away, never executed: */
    BGR_OP_CAST,
    BGR_OP_IDENTITY,
    BGR_OP_SHAPE,
    BGR_OP_SLICE,
    BGR_OP_CONSTANT,
    BGR_OP_GATHER,
    BGR_OP_UNSQUEEZE,
    BGR_OP_SQUEEZE,
    BGR_OP_RESHAPE,
    BGR_OP_MUL,
    BGR_OP_SUB,
    BGR_OP_DIV,
    BGR_OP__COUNT
};

struct bgr_conv_p {
    int64_t M, C, kh, kw;   /* out channels, in channels (total), kernel */
    int64_t sh, sw, dh, dw; /* strides, dilations (ONNX convention: 1 = dense) */
    int64_t pt, pl, pb, pr;
    int64_t group;
    int relu;       /* fused ReLU */
    int sum_in;     /* > 0: index in the node's inputs of a tensor added after the
                       ReLU (a fused Add), 0: none */
    const float *w; /* OIHW fp32, M x C/group x kh x kw, borrowed from the weight value */
    const float *b; /* M, borrowed from the bias value, NULL = no bias */
};

struct bgr_pool_p {
    int64_t kh, kw, sh, sw, pt, pl, pb, pr;
    int ceil_mode;
};

struct bgr_resize_p {
    float scale_h, scale_w; /* output / input, as the coordinate transform uses it */
};

/* One node: attributes parsed at load, inputs/outputs as value ids. */
struct bgr_node {
    enum bgr_opk op;
    char *name;        /* owned; "" when the file gave none */
    char *op_type;     /* owned, as in the file (for messages) */
    const void *proto; /* Onnx__NodeProto, loader-scoped */
    int nin;
    int in[BGR_MAX_INPUTS]; /* -1 for an omitted optional input */
    int out;
    int needed;                 /* reached from the first output */
    int folded;                 /* evaluated at load (constant) or turned into an alias */
    int64_t axis;               /* Concat, Gather, Shape start */
    int64_t axis_end;           /* Shape end (INT64_MAX = none) */
    int64_t to;                 /* Cast */
    int64_t ints[BGR_MAX_RANK]; /* Unsqueeze/Squeeze axes (opset < 13) */
    int n_ints;
    struct bgr_conv_p conv;
    struct bgr_pool_p pool;
    struct bgr_resize_p rs;
};

struct bgr_graph {
    struct bgr_value *vals;
    int nvals, cap_vals;
    struct bgr_node *nodes;
    int nnodes;
    int input;     /* value id of the graph input */
    int output;    /* value id of the first output (alias resolved after passes) */
    int64_t opset; /* of the default domain */
    int secondary; /* a needed secondary output (value id), -1 if none */
    int *order;    /* executable nodes in topological order */
    int norder;
    double macs;
    /* name -> value id hash table (open addressing) */
    int *hash;
    int hash_cap;
};

/* ---- graph.c ------------------------------------------------------------ */
int bgr_graph_value_find(const struct bgr_graph *g, const char *name);
int bgr_graph_value_get(struct bgr_graph *g, const char *name); /* finds or adds */
void bgr_graph_release(struct bgr_graph *g);
void bgr_const_release(struct bgr_const *c);
/* Follows aliases to the value that owns the storage. */
int bgr_graph_resolve(const struct bgr_graph *g, int v);
/* Prune, sort, fold, infer shapes, alias and fuse. Needs the loader's
 * initializer pointers still valid (it converts the ones kept nodes use). */
int bgr_graph_prepare(struct bgr_graph *g, struct bgr_error *err);
/* Marks the nodes the first output needs; fails on dangling inputs. A needed
 * secondary output is recorded in g->secondary (the loader reports it after
 * checking ops, so that an unsupported op is named first). */
int bgr_graph_mark_needed(struct bgr_graph *g, struct bgr_error *err);
/* Frees the constant data no kept node uses any more after a backend copied
 * what it needs (the reference backend still reads conv weights). */
void bgr_graph_drop_consts(struct bgr_graph *g);
int64_t bgr_act_count(const struct bgr_value *v);
const char *bgr_op_name(enum bgr_opk op);

/* ---- onnx_load.c, onnx_tensor.c ------------------------------------------ */
/* Converts an initializer / Constant tensor (Onnx__TensorProto) to *out. */
int bgr_onnx_tensor_convert(const void *tensor_proto, struct bgr_const *out, const char *what,
                            struct bgr_error *err);
/* Parses bytes into a graph and prepares it (see bgr_graph_prepare). */
int bgr_onnx_load(const void *data, size_t len, struct bgr_graph *g, struct bgr_error *err);
/* The same, releasing file (which holds data) as soon as the protobuf is
 * unpacked, so that the file's bytes and the converted weights are never in
 * memory together (88 MiB less peak RSS for ISNet medium). file may be NULL. */
int bgr_onnx_load_buf(const void *data, size_t len, struct bgr_buf *file, struct bgr_graph *g,
                      struct bgr_error *err);

/* ---- plan.c --------------------------------------------------------------- */
/* Assigns offsets to the values with size > 0 so that values whose [first,
 * last] step intervals overlap never share bytes; returns the arena size.
 * Offsets are aligned to 64 bytes. ids lists the values to plan. */
size_t bgr_plan_offsets(struct bgr_value *vals, const int *ids, int n);

/* ---- ref.c: plain C kernels over NCHW fp32 -------------------------------- */
/* sum (may be NULL) is added to the result after the bias and the ReLU. */
void bgr_ref_conv(const struct bgr_conv_p *p, const float *src, const int64_t sd[4],
                  const float *sum, float *dst, const int64_t dd[4]);
void bgr_ref_maxpool(const struct bgr_pool_p *p, const float *src, const int64_t sd[4], float *dst,
                     const int64_t dd[4]);
void bgr_ref_resize(const struct bgr_resize_p *p, const float *src, const int64_t sd[4], float *dst,
                    const int64_t dd[4]);
void bgr_ref_relu(const float *src, float *dst, size_t n);
void bgr_ref_sigmoid(const float *src, float *dst, size_t n);
void bgr_ref_add(const float *a, const float *b, float *dst, size_t n);
/* Concatenates along channels: n inputs with dims sd[i]. */
void bgr_ref_concat(int n, const float *const *src, const int64_t (*sd)[4], float *dst,
                    const int64_t dd[4]);

#endif
