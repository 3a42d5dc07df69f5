/*
 * resample.c - bit-exact ports of the reference runtime's pre- and
 * post-processing (@imgly/background-removal-node 1.4.5, dist/index.mjs:
 * tensorResizeBilinear, tensorHWCtoBCHW, convertFloat32ToUint8), so our
 * mattes can be compared with the reference's to the last bit.
 *
 * The JavaScript computes in IEEE double, left to right; this file must do
 * the same operations in the same order. It is compiled with
 * -ffp-contract=off (see CMakeLists.txt) so that no multiply-add is fused,
 * which would change low bits and, after rounding, some bytes. Its quality
 * (no half-pixel offset, no antialiasing) is the reference's, on purpose.
 */
#include <math.h>
#include <stdlib.h>

#include "image/image.h"

/* ECMAScript ToUint8: truncate toward zero, modulo 2^8; NaN and infinities
 * give 0. This is what storing a number into a Uint8Array does. */
static inline uint8_t js_to_uint8(double v)
{
    if (!isfinite(v))
        return 0;
    double m = fmod(trunc(v), 256.0);
    if (m < 0)
        m += 256.0;
    return (uint8_t)m;
}

/* Math.round: the nearest integer, halves toward +infinity. floor(v + 0.5)
 * would be wrong for 0.49999999999999994. */
static inline double js_round(double v)
{
    double f = floor(v);
    return v - f >= 0.5 ? f + 1.0 : f;
}

/* js_to_uint8(js_round(v)) for the values the resize produces: a convex
 * combination of bytes lies in [0, 255] up to rounding, where both JS steps
 * reduce to a rounded cast; anything else (never seen, but cheap to guard)
 * takes the general path. The general path's fmod made the 1024x1024x3
 * tensor cost ~38 ms; this one gives the same bytes. */
static inline uint8_t js_round_to_uint8(double v)
{
    if (v >= 0.0 && v < 255.5) {
        /* truncation is floor for v >= 0 and needs no libm call; the
         * comparison is added, not branched on: it is a coin toss per sample */
        int i = (int)v;
        return (uint8_t)(i + (int)(v - (double)i >= 0.5));
    }
    return js_to_uint8(js_round(v));
}

/* Source coordinates and weights of one output pixel along one axis. */
struct axis {
    int i1, i2;
    double d;
};

static inline struct axis axis_at(int dst, double scale, int src_len)
{
    double s = (double)dst * scale;
    double f1 = floor(s), c2 = ceil(s);
    if (f1 < 0)
        f1 = 0;
    if (c2 > src_len - 1)
        c2 = src_len - 1;
    return (struct axis){.i1 = (int)f1, .i2 = (int)c2, .d = s - f1};
}

/* The per-column coordinates are the same on every row: computed once into
 * a table when memory allows (it is small: 16 bytes a column), else on the
 * fly. Both give identical numbers. */
struct axis_table {
    struct axis *cols; /* NULL: compute on the fly */
    double scale;
    int src_len;
};

static struct axis_table axis_table_new(int dst_len, int src_len)
{
    struct axis_table t = {NULL, (double)src_len / (double)dst_len, src_len};
    t.cols = malloc((size_t)dst_len * sizeof(*t.cols));
    for (int i = 0; t.cols && i < dst_len; i++)
        t.cols[i] = axis_at(i, t.scale, src_len);
    return t;
}

static inline struct axis axis_table_at(const struct axis_table *t, int i)
{
    return t->cols ? t->cols[i] : axis_at(i, t->scale, t->src_len);
}

/* Runs EMIT for every output sample with x, y, c and the byte b_ in scope;
 * shared by the byte resize and the tensor writer so both use one
 * arithmetic: the reference's expression, term by term, in double. */
#define RESIZE_REF_LOOP(src, sw, sh, src_bands, channels, dw, dh, EMIT)                            \
    do {                                                                                           \
        struct axis_table cols_ = axis_table_new((dw), (sw));                                      \
        double scale_y_ = (double)(sh) / (double)(dh);                                             \
        size_t stride_ = (size_t)(sw) * (size_t)(src_bands);                                       \
        for (int y = 0; y < (dh); y++) {                                                           \
            struct axis ay_ = axis_at(y, scale_y_, (sh));                                          \
            const uint8_t *r1_ = (src) + (size_t)ay_.i1 * stride_;                                 \
            const uint8_t *r2_ = (src) + (size_t)ay_.i2 * stride_;                                 \
            double dy_ = ay_.d;                                                                    \
            for (int x = 0; x < (dw); x++) {                                                       \
                struct axis ax_ = axis_table_at(&cols_, x);                                        \
                double dx_ = ax_.d;                                                                \
                double w1_ = (1 - dx_) * (1 - dy_), w2_ = dx_ * (1 - dy_);                         \
                double w3_ = (1 - dx_) * dy_, w4_ = dx_ * dy_;                                     \
                size_t o1_ = (size_t)ax_.i1 * (size_t)(src_bands);                                 \
                size_t o2_ = (size_t)ax_.i2 * (size_t)(src_bands);                                 \
                for (int c = 0; c < (channels); c++) {                                             \
                    double v_ = w1_ * r1_[o1_ + c] + w2_ * r1_[o2_ + c] + w3_ * r2_[o1_ + c] +     \
                                w4_ * r2_[o2_ + c];                                                \
                    uint8_t b_ = js_round_to_uint8(v_);                                            \
                    EMIT;                                                                          \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        free(cols_.cols);                                                                          \
    } while (0)

void bgr_image_resize_ref(const uint8_t *src, int sw, int sh, int src_bands, int channels,
                          uint8_t *dst, int dw, int dh)
{
    BGR_ASSERT(sw > 0 && sh > 0 && dw > 0 && dh > 0 && channels >= 1 && channels <= src_bands);
    size_t row = (size_t)dw * (size_t)channels;
    RESIZE_REF_LOOP(src, sw, sh, src_bands, channels, dw, dh,
                    dst[(size_t)y * row + (size_t)x * (size_t)channels + (size_t)c] = b_);
}

void bgr_image_to_tensor(const struct bgr_pixels *img, int tw, int th, float *tensor)
{
    BGR_ASSERT(img->bands >= 3 && tw > 0 && th > 0);
    size_t plane = (size_t)tw * (size_t)th;
    /* (v - mean) / std with mean 128 and std 256 for every channel: exact
     * in float, as in the reference's Float32Array. */
    RESIZE_REF_LOOP(img->data, img->width, img->height, img->bands, 3, tw, th,
                    tensor[(size_t)c * plane + (size_t)y * (size_t)tw + (size_t)x] =
                        (float)(((double)b_ - 128.0) / 256.0));
}

void bgr_image_float_to_u8(const float *in, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        double v = (double)in[i] * 255.0;
        /* a sigmoid's output: truncation alone, without fmod's libm call */
        out[i] = v >= 0.0 && v < 256.0 ? (uint8_t)(int)v : js_to_uint8(v);
    }
}

int bgr_image_matte_from_output(const float *output, int ow, int oh, uint8_t *matte, int w, int h,
                                struct bgr_error *err)
{
    BGR_ASSERT(ow > 0 && oh > 0 && w > 0 && h > 0);
    size_t n = (size_t)ow * (size_t)oh;
    uint8_t *u8 = malloc(n);
    if (!u8)
        return bgr_error_set(err, BGR_ENOMEM, "out of memory for a %dx%d matte", ow, oh);
    bgr_image_float_to_u8(output, n, u8);
    bgr_image_resize_ref(u8, ow, oh, 1, 1, matte, w, h);
    free(u8);
    return 0;
}
