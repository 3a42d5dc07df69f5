/*
 * onnx_tensor.c - ONNX TensorProto to struct bgr_const: fp32 for float16,
 * float and double, int64 for the integer types; raw_data (little-endian)
 * or the typed fields (fp16 bit patterns travel in int32_data). Sizes are
 * checked against the dims before anything is read; external data is
 * refused, since a model is one self-contained file. Runs once per tensor at
 * load: ISNet's 44 M fp16 weights become fp32 here.
 */
#include "infer/graph.h"
#include "onnx.pb-c.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13); /* inf / nan */
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man == 0) {
        bits = sign;
    } else { /* subnormal: normalise */
        int e = -1;
        do {
            e++;
            man <<= 1;
        } while (!(man & 0x400));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Every fp16 bit pattern's float, built once: ISNet's 44 M weights convert
 * by lookup (half_to_float's branches cost ~45 ms of a 300 ms load). */
static float half_table[65536];
static pthread_once_t half_once = PTHREAD_ONCE_INIT;

static void half_table_init(void)
{
    for (uint32_t h = 0; h < 65536; h++)
        half_table[h] = half_to_float((uint16_t)h);
}

/* ---- tensors ---------------------------------------------------------------- */

static int elem_size(int dt)
{
    switch (dt) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
        return 4;
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16:
        return 2;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
        return 8;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
        return 4;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL:
        return 1;
    default:
        return 0;
    }
}

/* Reads element k of the source (raw little-endian bytes or a typed field). */
static void read_elem(const Onnx__TensorProto *t, int dt, const uint8_t *raw, size_t k, float *fo,
                      int64_t *io)
{
    switch (dt) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: {
        float f;
        if (raw)
            memcpy(&f, raw + 4 * k, 4);
        else
            f = t->float_data[k];
        *fo = f;
        break;
    }
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: {
        uint16_t h;
        if (raw)
            memcpy(&h, raw + 2 * k, 2);
        else
            h = (uint16_t)t->int32_data[k];
        *fo = half_to_float(h);
        break;
    }
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: {
        double d;
        if (raw)
            memcpy(&d, raw + 8 * k, 8);
        else
            d = t->double_data[k];
        *fo = (float)d;
        break;
    }
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
        if (raw)
            memcpy(io, raw + 8 * k, 8);
        else
            *io = t->int64_data[k];
        break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: {
        int32_t v;
        if (raw)
            memcpy(&v, raw + 4 * k, 4);
        else
            v = t->int32_data[k];
        *io = v;
        break;
    }
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
        *io = raw ? (int8_t)raw[k] : (int8_t)t->int32_data[k];
        break;
    default: /* UINT8, BOOL */
        *io = raw ? raw[k] : (uint8_t)t->int32_data[k];
        break;
    }
}

int bgr_onnx_tensor_convert(const void *tensor_proto, struct bgr_const *out, const char *what,
                            struct bgr_error *err)
{
    const Onnx__TensorProto *t = tensor_proto;
    struct bgr_const c = {0};
    int dt = t->has_data_type ? t->data_type : 0;
    int es = elem_size(dt);
    const uint8_t *raw = NULL;
    size_t have;

    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return bgr_error_set(err, BGR_EMODEL, "tensor '%s' uses external data (not supported)",
                             what);
    if (es == 0)
        return bgr_error_set(err, BGR_EMODEL, "tensor '%s' has unsupported data type %d", what, dt);
    if (t->n_dims > BGR_MAX_RANK)
        return bgr_error_set(err, BGR_EMODEL, "tensor '%s' has rank %zu (max %d)", what, t->n_dims,
                             BGR_MAX_RANK);
    c.rank = (int)t->n_dims;
    int64_t n = 1;
    for (int i = 0; i < c.rank; i++) {
        if (t->dims[i] < 0 || t->dims[i] > BGR_MAX_ELEMS)
            return bgr_error_set(err, BGR_EMODEL, "tensor '%s' has invalid dimension %lld", what,
                                 (long long)t->dims[i]);
        c.dims[i] = t->dims[i];
        n *= t->dims[i];
        if (n > BGR_MAX_ELEMS)
            return bgr_error_set(err, BGR_EMODEL, "tensor '%s' is too large", what);
    }
    c.n = (size_t)n;
    if (t->has_raw_data) {
        raw = t->raw_data.data;
        if (t->raw_data.len != c.n * (size_t)es)
            return bgr_error_set(err, BGR_EMODEL,
                                 "tensor '%s': raw data holds %zu bytes, its dims need %zu", what,
                                 t->raw_data.len, c.n * (size_t)es);
    } else {
        switch (dt) {
        case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
            have = t->n_float_data;
            break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
            have = t->n_double_data;
            break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
            have = t->n_int64_data;
            break;
        default:
            have = t->n_int32_data;
            break;
        }
        if (have != c.n)
            return bgr_error_set(err, BGR_EMODEL, "tensor '%s' holds %zu values, its dims need %zu",
                                 what, have, c.n);
    }
    int is_float = dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ||
                   dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16 ||
                   dt == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE;
    c.dt = is_float ? BGR_DT_F32 : BGR_DT_I64;
    /* sized by the file, so a checked malloc rather than an aborting one */
    if (is_float)
        c.f = malloc((c.n ? c.n : 1) * sizeof(float));
    else
        c.i = malloc((c.n ? c.n : 1) * sizeof(int64_t));
    if (!c.f && !c.i)
        return bgr_error_set(err, BGR_ENOMEM, "tensor '%s': out of memory", what);
    /* The weights (raw fp16 or fp32, tens of millions of values) take tight
     * loops; the per-element switch below cost most of the model's parse. */
    if (raw && dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16) {
        pthread_once(&half_once, half_table_init);
        for (size_t k = 0; k < c.n; k++) {
            uint16_t h;
            memcpy(&h, raw + 2 * k, 2);
            c.f[k] = half_table[h];
        }
        *out = c;
        return 0;
    }
    if (raw && dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) {
        memcpy(c.f, raw, c.n * sizeof(float));
        *out = c;
        return 0;
    }
    for (size_t k = 0; k < c.n; k++) {
        float fv = 0;
        int64_t iv = 0;
        read_elem(t, dt, raw, k, &fv, &iv);
        if (is_float)
            c.f[k] = fv;
        else
            c.i[k] = iv;
    }
    *out = c;
    return 0;
}
