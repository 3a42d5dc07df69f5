/*
 * fuzz_onnx.c - the ONNX loader (src/infer: protobuf-c decode, graph
 * checks, shape inference, planning) on arbitrary bytes. Models come from
 * the operator's disk, not from clients, but a truncated download or a
 * hostile file must fail with BGR_EMODEL, never crash. The plain C
 * reference backend is used: the loader is shared, and it plans without
 * JIT-compiling anything.
 *
 * Input: the model file.
 */
#include "fuzz.h"
#include "infer/infer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bgr_model_opts o = {.backend = BGR_BACKEND_REF, .precision = BGR_PREC_FP32,
                               .n_threads = 1};
    struct bgr_model *m = NULL;
    struct bgr_error e = {0};
    int rc = bgr_model_load_mem(data, size, &o, &m, &e);
    if (rc) {
        fuzz_check(rc == BGR_EMODEL || rc == BGR_ENOMEM);
        fuzz_check(m == NULL);
        fuzz_check(e.msg[0] != '\0');
        return 0;
    }
    struct bgr_shape in = bgr_model_input_shape(m);
    struct bgr_shape out = bgr_model_output_shape(m);
    fuzz_check(in.rank >= 1 && in.rank <= 4);
    fuzz_check(out.rank >= 1 && out.rank <= 4);
    bgr_model_free(m);
    return 0;
}
