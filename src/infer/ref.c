/*
 * ref.c - the reference implementation of every executed op: plain loops
 * over NCHW fp32, written to be obviously what the ONNX operator spec says
 * rather than fast. The oneDNN backend is tested against these, and
 * BGR_BACKEND_REF runs whole graphs on them (slowly).
 */
#include "infer/graph.h"

#include <math.h>
#include <string.h>

void bgr_ref_conv(const struct bgr_conv_p *p, const float *src, const int64_t sd[4],
                  const float *sum, float *dst, const int64_t dd[4])
{
    int64_t N = sd[0], H = sd[2], W = sd[3], OH = dd[2], OW = dd[3];
    int64_t Mg = p->M / p->group, Cg = p->C / p->group;
    for (int64_t n = 0; n < N; n++)
        for (int64_t m = 0; m < p->M; m++) {
            float *o = dst + (n * p->M + m) * OH * OW;
            int64_t g = m / Mg;
            float bias = p->b ? p->b[m] : 0.0f;
            for (int64_t i = 0; i < OH * OW; i++)
                o[i] = bias;
            for (int64_t c = 0; c < Cg; c++) {
                const float *x = src + (n * p->C + g * Cg + c) * H * W;
                const float *w = p->w + ((m * Cg + c) * p->kh) * p->kw;
                for (int64_t ky = 0; ky < p->kh; ky++)
                    for (int64_t kx = 0; kx < p->kw; kx++) {
                        float wv = w[ky * p->kw + kx];
                        for (int64_t oy = 0; oy < OH; oy++) {
                            int64_t iy = oy * p->sh - p->pt + ky * p->dh;
                            if (iy < 0 || iy >= H)
                                continue;
                            for (int64_t ox = 0; ox < OW; ox++) {
                                int64_t ix = ox * p->sw - p->pl + kx * p->dw;
                                if (ix >= 0 && ix < W)
                                    o[oy * OW + ox] += wv * x[iy * W + ix];
                            }
                        }
                    }
            }
            if (p->relu)
                for (int64_t i = 0; i < OH * OW; i++)
                    o[i] = o[i] > 0 ? o[i] : 0;
            if (sum) {
                const float *a = sum + (n * p->M + m) * OH * OW;
                for (int64_t i = 0; i < OH * OW; i++)
                    o[i] += a[i];
            }
        }
}

void bgr_ref_maxpool(const struct bgr_pool_p *p, const float *src, const int64_t sd[4], float *dst,
                     const int64_t dd[4])
{
    int64_t H = sd[2], W = sd[3], OH = dd[2], OW = dd[3];
    for (int64_t nc = 0; nc < sd[0] * sd[1]; nc++) {
        const float *x = src + nc * H * W;
        float *o = dst + nc * OH * OW;
        for (int64_t oy = 0; oy < OH; oy++)
            for (int64_t ox = 0; ox < OW; ox++) {
                float mx = -INFINITY; /* padding never wins */
                for (int64_t ky = 0; ky < p->kh; ky++) {
                    int64_t iy = oy * p->sh - p->pt + ky;
                    if (iy < 0 || iy >= H)
                        continue;
                    for (int64_t kx = 0; kx < p->kw; kx++) {
                        int64_t ix = ox * p->sw - p->pl + kx;
                        if (ix >= 0 && ix < W && x[iy * W + ix] > mx)
                            mx = x[iy * W + ix];
                    }
                }
                o[oy * OW + ox] = mx;
            }
    }
}

/* half_pixel source coordinate, clamped to the input as onnxruntime does */
static void lin_coord(int64_t o, float scale, int64_t in, int64_t *i0, int64_t *i1, float *frac)
{
    float s = ((float)o + 0.5f) / scale - 0.5f;
    if (s < 0)
        s = 0;
    if (s > (float)(in - 1))
        s = (float)(in - 1);
    *i0 = (int64_t)s;
    *i1 = *i0 + 1 < in ? *i0 + 1 : in - 1;
    *frac = s - (float)*i0;
}

void bgr_ref_resize(const struct bgr_resize_p *p, const float *src, const int64_t sd[4], float *dst,
                    const int64_t dd[4])
{
    int64_t H = sd[2], W = sd[3], OH = dd[2], OW = dd[3];
    for (int64_t nc = 0; nc < sd[0] * sd[1]; nc++) {
        const float *x = src + nc * H * W;
        float *o = dst + nc * OH * OW;
        for (int64_t oy = 0; oy < OH; oy++) {
            int64_t y0, y1;
            float fy;
            lin_coord(oy, p->scale_h, H, &y0, &y1, &fy);
            for (int64_t ox = 0; ox < OW; ox++) {
                int64_t x0, x1;
                float fx;
                lin_coord(ox, p->scale_w, W, &x0, &x1, &fx);
                float top = x[y0 * W + x0] * (1 - fx) + x[y0 * W + x1] * fx;
                float bot = x[y1 * W + x0] * (1 - fx) + x[y1 * W + x1] * fx;
                o[oy * OW + ox] = top * (1 - fy) + bot * fy;
            }
        }
    }
}

void bgr_ref_relu(const float *src, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = src[i] > 0 ? src[i] : 0;
}

void bgr_ref_sigmoid(const float *src, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = 1.0f / (1.0f + expf(-src[i]));
}

void bgr_ref_add(const float *a, const float *b, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = a[i] + b[i];
}

void bgr_ref_concat(int n, const float *const *src, const int64_t (*sd)[4], float *dst,
                    const int64_t dd[4])
{
    size_t plane = (size_t)(dd[2] * dd[3]);
    for (int64_t b = 0; b < dd[0]; b++) {
        float *o = dst + (size_t)(b * dd[1]) * plane;
        for (int i = 0; i < n; i++) {
            size_t len = (size_t)sd[i][1] * plane;
            memcpy(o, src[i] + (size_t)b * len, len * sizeof(float));
            o += len;
        }
    }
}
