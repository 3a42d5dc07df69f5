/*
 * onnx_build.h - builds tiny ONNX models in tests with the protobuf-c structs
 * generated from onnx.proto, packed to bytes as a real file would be. All
 * memory comes from the builder's arena and goes with onnx_build_free.
 */
#ifndef BGR_TEST_ONNX_BUILD_H
#define BGR_TEST_ONNX_BUILD_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "onnx.pb-c.h"

#define OB_MAX 64

struct onnx_build {
    struct bgr_arena arena;
    Onnx__ModelProto model;
    Onnx__GraphProto graph;
    Onnx__OperatorSetIdProto opset;
    Onnx__OperatorSetIdProto *opsets[1];
    Onnx__NodeProto *nodes[OB_MAX];
    Onnx__TensorProto *inits[OB_MAX];
    Onnx__ValueInfoProto *inputs[OB_MAX], *outputs[OB_MAX];
};

enum ob_store { OB_RAW = 0, OB_TYPED };

void ob_init(struct onnx_build *b, int64_t opset);
void ob_free(struct onnx_build *b);
/* A float input of the given NCHW shape. */
void ob_input(struct onnx_build *b, const char *name, const int64_t dims[4]);
void ob_output(struct onnx_build *b, const char *name);
/* inputs and outputs are comma-separated names ("x,,w" leaves one out). */
Onnx__NodeProto *ob_node(struct onnx_build *b, const char *op, const char *name, const char *inputs,
                         const char *outputs);
void ob_attr_int(struct onnx_build *b, Onnx__NodeProto *n, const char *name, int64_t v);
void ob_attr_ints(struct onnx_build *b, Onnx__NodeProto *n, const char *name, int count,
                  const int64_t *v);
void ob_attr_str(struct onnx_build *b, Onnx__NodeProto *n, const char *name, const char *v);
void ob_attr_float(struct onnx_build *b, Onnx__NodeProto *n, const char *name, float v);
/* Tensors (initializers, or a Constant node's value with ob_attr_tensor). */
Onnx__TensorProto *ob_tensor_f32(struct onnx_build *b, const char *name, int rank,
                                 const int64_t *dims, const float *data, int fp16,
                                 enum ob_store store);
Onnx__TensorProto *ob_tensor_i64(struct onnx_build *b, const char *name, int rank,
                                 const int64_t *dims, const int64_t *data, enum ob_store store);
void ob_initializer(struct onnx_build *b, Onnx__TensorProto *t);
void ob_attr_tensor(struct onnx_build *b, Onnx__NodeProto *n, const char *name,
                    Onnx__TensorProto *t);
/* Serialises the model; the bytes live in the arena. */
uint8_t *ob_pack(struct onnx_build *b, size_t *len);

#endif

/* ---- helpers shared by the infer tests ---- */
#include "infer/infer.h"

/* Deterministic uniform floats in [-1, 1). */
float ob_rand(uint64_t *state);
/* Loads bytes with the given backend (verbose off); NULL on failure with *err set. */
struct bgr_model *ob_load(const uint8_t *bytes, size_t len, enum bgr_backend be,
                          struct bgr_error *err);
/* Runs the model on in (its element count must match); returns a malloc'd output. */
float *ob_run(struct bgr_model *m, const float *in, size_t *n_out);
/* Loads bytes on both backends, runs random input (seeded), and returns the
 * largest |oneDNN - reference| relative to 1 + max |reference|; -1 on any
 * failure (message on stderr). *ref_out (optional) receives the reference
 * output, malloc'd. */
double ob_compare_backends(const uint8_t *bytes, size_t len, uint64_t seed, float **ref_out,
                           size_t *n_out);
