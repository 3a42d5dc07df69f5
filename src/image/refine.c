/*
 * refine.c - full-resolution matte refinement guided by the image: a colour
 * guided filter where the model's edge is soft, then a soft snap of
 * confident interiors (see image.h).
 *
 * Why these, by measurement with `bgremover eval` on the dev set
 * (docs/QUALITY.md): the model's matte is predicted at 1024x1024 and scaled
 * up, so its edges are placed by the model, not by the photo. A guided
 * filter (window radius r, regularisation eps) re-fits the matte, window by
 * window, as a linear function of the RGB colour, which puts soft edges
 * where the colours change: hair and fur gain the most (gradient error of
 * the hair image -62%). Larger windows or eps blur crisp edges and raise
 * SAD; smaller ones change little. Where the model's edge is already crisp
 * the filter is faded out (SOFT_SHARE below). The model also leaves
 * mid-grey inside solid subjects; pixels whose whole (2k+1)^2 neighbourhood
 * is above SNAP_FG are blended towards 1 (and those whose neighbourhood is
 * all below 0.05 towards 0) with a smooth weight, so no new edge appears.
 * Thin structures (hair, strings, the faint leaves the model half sees)
 * never fill a whole neighbourhood and keep the filtered values.
 *
 * All statistics are computed on the grid (grid.h); only the final affine
 * map q = A . I + b and the blends run per full-resolution pixel, with A, b
 * and the weights interpolated bilinearly (the fast guided filter of He and
 * Sun, 2015, when the grid is subsampled).
 *
 * Cost, one core, CPU time: 15 ms at 0.5 MP, 20 ms at 1.15 MP, 60 ms at
 * 4.6 MP (docs/QUALITY.md).
 *
 * bgr_image_refine_matte_full (refine=full) adds a closed-form matting solve (cfm.c) in the
 * soft band where the guided filter ran at half weight or more.
 */
#include <stdlib.h>
#include <string.h>

#include "image/cfm.h"
#include "image/grid.h"

/* Window radius at full resolution: 4 px for an 800 px long side (the dev
 * images), proportional above, so the window covers the same part of the
 * subject (and of the model's 1024 px prediction) at any size. */
static int refine_radius(int w, int h)
{
    int l = w > h ? w : h;
    int r = (l + 100) / 200;
    return r < 2 ? 2 : r;
}

#define REFINE_EPS 1e-3f /* of alpha per colour variance ([0,1] units) */
/* Neighbourhood all >= SNAP_FG: subject. 0.4 rather than 0.5 because the
 * model leaves 0.3-0.7 over solid subjects; on dev 0.4 keeps mean IoU
 * (0.5 lowers it by 0.003) and lowers mean SAD 1.5% more. */
#define SNAP_FG 0.4f
#define SNAP_BG (13.0f / 255) /* neighbourhood all < this: clear background */
/* The filter's weight is the share of uncertain pixels (0.05 < alpha <
 * 0.95 in the model's matte) in the window over SOFT_SHARE, capped at 1: a
 * crisp model edge (a car, a swan) keeps the model's matte, which is
 * better there than a colour fit, while a wide soft band (hair, fur) is
 * filtered. Measured on dev: total SAD of the six binary DAVIS frames +3.5%
 * without the weight, -0.6% with it; dev median SAD -11% -> -15%. */
#define SOFT_LO_U8 13
#define SOFT_LO ((float)SOFT_LO_U8 / 255)
#define SOFT_HI (242.0f / 255)
#define SOFT_SHARE 0.5f

/* Solves (S + eps I) a = c for the symmetric 3x3 S given as its six
 * entries s00 s01 s02 s11 s12 s22, by cofactors in double. eps > 0 keeps
 * it positive definite. */
static void solve3(const double s[6], const double c[3], float a[3])
{
    double m00 = s[0] + REFINE_EPS, m01 = s[1], m02 = s[2];
    double m11 = s[3] + REFINE_EPS, m12 = s[4], m22 = s[5] + REFINE_EPS;
    double c00 = m11 * m22 - m12 * m12, c01 = m02 * m12 - m01 * m22, c02 = m01 * m12 - m02 * m11;
    double c11 = m00 * m22 - m02 * m02, c12 = m01 * m02 - m00 * m12, c22 = m00 * m11 - m01 * m01;
    double det = m00 * c00 + m01 * c01 + m02 * c02;
    if (det <= 1e-18) { /* cannot happen with eps > 0; stay safe */
        a[0] = a[1] = a[2] = 0;
        return;
    }
    double inv = 1.0 / det;
    a[0] = (float)((c00 * c[0] + c01 * c[1] + c02 * c[2]) * inv);
    a[1] = (float)((c01 * c[0] + c11 * c[1] + c12 * c[2]) * inv);
    a[2] = (float)((c02 * c[0] + c12 * c[1] + c22 * c[2]) * inv);
}

/* Grid planes. Guide colours and their box means; the matte and its mean
 * (later b); colour/matte covariances (later A); the colour covariance
 * matrix (later the blend and snap weights); the model's matte; scratch. */
/* clang-format off */
enum {
    P_I0, P_I1, P_I2, P_M0, P_M1, P_M2, P_P, P_MP, P_C0, P_C1, P_C2,
    P_V00, P_V01, P_V02, P_V11, P_V12, P_V22, P_RAW, P_TMP, P_COUNT
};
/* clang-format on */

/* The guided filter on the grid: leaves the box-averaged coefficients in
 * P_C0..2 (A) and P_MP (b), and the filtered grid matte in P_P. */
static void guided_filter(const struct bgr_grid *g, float **pl, double *acc, int r)
{
    size_t n = (size_t)g->gw * (size_t)g->gh;
    int gw = g->gw, gh = g->gh;
    float *tmp = pl[P_TMP];

    for (int c = 0; c < 3; c++) {
        for (size_t i = 0; i < n; i++) {
            pl[P_M0 + c][i] = pl[P_I0 + c][i];
            pl[P_C0 + c][i] = pl[P_I0 + c][i] * pl[P_P][i];
        }
        bgr_grid_box(pl[P_M0 + c], tmp, acc, gw, gh, r);
        bgr_grid_box(pl[P_C0 + c], tmp, acc, gw, gh, r);
    }
    static const int vi[6][3] = {{P_V00, 0, 0}, {P_V01, 0, 1}, {P_V02, 0, 2},
                                 {P_V11, 1, 1}, {P_V12, 1, 2}, {P_V22, 2, 2}};
    for (int k = 0; k < 6; k++) {
        float *v = pl[vi[k][0]];
        const float *x = pl[P_I0 + vi[k][1]], *y = pl[P_I0 + vi[k][2]];
        for (size_t i = 0; i < n; i++)
            v[i] = x[i] * y[i];
        bgr_grid_box(v, tmp, acc, gw, gh, r);
    }
    for (size_t i = 0; i < n; i++)
        pl[P_MP][i] = pl[P_P][i];
    bgr_grid_box(pl[P_MP], tmp, acc, gw, gh, r);

    for (size_t i = 0; i < n; i++) {
        double m[3] = {pl[P_M0][i], pl[P_M1][i], pl[P_M2][i]}, mp = pl[P_MP][i];
        double s[6], cv[3];
        for (int k = 0; k < 6; k++)
            s[k] = pl[vi[k][0]][i] - m[vi[k][1]] * m[vi[k][2]];
        for (int c = 0; c < 3; c++)
            cv[c] = pl[P_C0 + c][i] - m[c] * mp;
        float a[3];
        solve3(s, cv, a);
        for (int c = 0; c < 3; c++)
            pl[P_C0 + c][i] = a[c];
        pl[P_MP][i] = (float)(mp - a[0] * m[0] - a[1] * m[1] - a[2] * m[2]);
    }
    for (int c = 0; c < 3; c++)
        bgr_grid_box(pl[P_C0 + c], tmp, acc, gw, gh, r);
    bgr_grid_box(pl[P_MP], tmp, acc, gw, gh, r);
    for (size_t i = 0; i < n; i++)
        pl[P_P][i] = pl[P_C0][i] * pl[P_I0][i] + pl[P_C1][i] * pl[P_I1][i] +
                     pl[P_C2][i] * pl[P_I2][i] + pl[P_MP][i];
}

/* Snap weight of one side: 1 where the whole (2k+1)^2 neighbourhood passes
 * the test, box-blurred over k/2 so it fades in smoothly. */
static void snap_weight(const struct bgr_grid *g, const float *q, bool fg, float *out, float *tmp,
                        double *acc, int k)
{
    size_t n = (size_t)g->gw * (size_t)g->gh;
    for (size_t i = 0; i < n; i++)
        out[i] = (fg ? q[i] >= SNAP_FG : q[i] < SNAP_BG) ? 1.0f : 0.0f;
    bgr_grid_box(out, tmp, acc, g->gw, g->gh, k);
    for (size_t i = 0; i < n; i++)
        out[i] = out[i] >= 1.0f - 1e-6f ? 1.0f : 0.0f;
    int soft = k / 2 < 1 ? 1 : k / 2;
    bgr_grid_box(out, tmp, acc, g->gw, g->gh, soft);
}

/* `fast`: see the top of the file. soft (NULL, or w x h bytes, caller's)
 * receives the guided filter's weight per pixel (0..255). */
static int refine_fast(const struct bgr_pixels *img, uint8_t *matte, uint8_t *soft,
                       struct bgr_error *err)
{
    BGR_ASSERT(img->bands >= 3 && img->width > 0 && img->height > 0);
    struct bgr_grid g;
    float *pl[P_COUNT];
    double *acc = NULL;
    void *block = NULL;
    struct bgr_grid_tap *tx = NULL;
    int rc;

    bgr_grid_init(&g, img->width, img->height);
    rc = bgr_grid_planes_alloc(&g, P_COUNT, pl, &acc, &block, err);
    if (rc)
        return rc;
    tx = malloc((size_t)img->width * sizeof *tx);
    if (!tx) {
        rc = bgr_error_set(err, BGR_ENOMEM, "out of memory for matte refinement");
        goto out;
    }
    int r = bgr_grid_radius(&g, refine_radius(img->width, img->height));
    for (int c = 0; c < 3; c++)
        bgr_grid_down(&g, img->data, img->bands, c, pl[P_I0 + c]);
    bgr_grid_down(&g, matte, 1, 0, pl[P_P]);
    size_t n = (size_t)g.gw * (size_t)g.gh;
    memcpy(pl[P_RAW], pl[P_P], n * sizeof(float));
    guided_filter(&g, pl, acc, r);
    /* The colour covariance planes are free now: the filter's weight, then
     * the snap weights from the blended grid matte. */
    float *ws = pl[P_V02], *wf = pl[P_V00], *wb = pl[P_V01];
    for (size_t i = 0; i < n; i++)
        ws[i] = pl[P_RAW][i] > SOFT_LO && pl[P_RAW][i] < SOFT_HI ? 1.0f : 0.0f;
    bgr_grid_box(ws, pl[P_TMP], acc, g.gw, g.gh, r);
    for (size_t i = 0; i < n; i++) {
        ws[i] = ws[i] / SOFT_SHARE > 1.0f ? 1.0f : ws[i] / SOFT_SHARE;
        pl[P_P][i] = ws[i] * pl[P_P][i] + (1.0f - ws[i]) * pl[P_RAW][i];
    }
    snap_weight(&g, pl[P_P], true, wf, pl[P_TMP], acc, r);
    snap_weight(&g, pl[P_P], false, wb, pl[P_TMP], acc, r);

    bgr_grid_taps(img->width, g.gw, g.s, tx);
    for (int y = 0; y < img->height; y++) {
        struct bgr_grid_tap ty = bgr_grid_tap_at(y, g.gh, g.s);
        const uint8_t *px = img->data + (size_t)y * (size_t)img->width * (size_t)img->bands;
        uint8_t *m = matte + (size_t)y * (size_t)img->width;
        for (int x = 0; x < img->width; x++, px += img->bands) {
            const struct bgr_grid_tap *t = &tx[x];
            float q = bgr_grid_sample(pl[P_C0], g.gw, &ty, t) * px[0] +
                      bgr_grid_sample(pl[P_C1], g.gw, &ty, t) * px[1] +
                      bgr_grid_sample(pl[P_C2], g.gw, &ty, t) * px[2];
            q = q * (1.0f / 255.0f) + bgr_grid_sample(pl[P_MP], g.gw, &ty, t);
            q = q < 0 ? 0 : q > 1 ? 1 : q;
            float s = bgr_grid_sample(ws, g.gw, &ty, t);
            if (soft)
                soft[(size_t)y * (size_t)img->width + (size_t)x] = (uint8_t)(s * 255.0f + 0.5f);
            /* Where the model says background (raw <= SOFT_LO) the colour
             * fit would spill alpha across the edge into the old
             * background; there the filter's weight falls twice as fast
             * (0 below a soft share of SOFT_SHARE / 2), so only wide soft
             * bands (hair, fur) grow outwards. Measured on dev: SAD lower
             * on 14 of 14 images, gradient error unchanged (mean 2.728 ->
             * 2.726); keeping the raw matte there outright lowers SAD more
             * but raises the hair image's gradient error by 22%. */
            if (m[x] <= SOFT_LO_U8)
                s = s > 0.5f ? 2.0f * s - 1.0f : 0.0f;
            q = s * q + (1.0f - s) * (float)m[x] * (1.0f / 255.0f);
            float f = bgr_grid_sample(wf, g.gw, &ty, t), b = bgr_grid_sample(wb, g.gw, &ty, t);
            float a = q * (1.0f - f - b) + f;
            a = a < 0 ? 0 : a > 1 ? 1 : a;
            m[x] = (uint8_t)(a * 255.0f + 0.5f);
        }
    }
out:
    free(tx);
    free(block);
    return rc;
}

/* The band solve of refine=full (cfm.h): pixels within CFM_DIL px (per 800
 * px of long side) of a soft pixel of the refined matte, where the guided
 * filter's weight is at least CFM_SOFT (its window held a quarter or more
 * of uncertain pixels: hair, fur, not a crisp edge). Constants by `eval` on
 * dev (docs/QUALITY.md): lambda 0.01 moved edges too far (median SAD +4%),
 * 1 changed little; without the soft-weight gate all six binary DAVIS
 * frames lost (SAD +1 to +17%); eps 1e-6 scored as 1e-5. */
#define CFM_DIL 3
#define CFM_SOFT 128 /* of 255 */
/* The solve costs about 1 us of CPU per band pixel, and the band grows
 * with the photo: 65k pixels on the 0.5 MP hair image (+60 ms), about 9x
 * that at 4.6 MP (+565 ms, more than the model run). Above this many band
 * pixels the solve is skipped and `fast`'s matte stays: a cost bound, not a
 * quality choice. */
#define CFM_MAX_BAND 150000
static const struct bgr_cfm_params cfm_params = {
    .eps = 1e-5, .lambda = 0.1, .max_iter = 200, .tol = 1e-3};

int bgr_image_refine_matte(const struct bgr_pixels *img, uint8_t *matte, struct bgr_error *err)
{
    return refine_fast(img, matte, NULL, err);
}

int bgr_image_refine_matte_full(const struct bgr_pixels *img, uint8_t *matte, struct bgr_error *err)
{
    int w = img->width, h = img->height, l = w > h ? w : h;
    size_t n = (size_t)w * (size_t)h;
    uint8_t *soft = malloc(2 * n), *band = soft ? soft + n : NULL;
    if (!soft)
        return bgr_error_set(err, BGR_ENOMEM, "out of memory for matte refinement");
    int rc = refine_fast(img, matte, soft, err);
    int dil = CFM_DIL * l / 800;
    if (rc == 0)
        rc = bgr_image_cfm_band_of(matte, w, h, SOFT_LO_U8, 242, dil < 1 ? 1 : dil, band, err);
    if (rc == 0) {
        size_t nb = 0;
        for (size_t i = 0; i < n; i++) {
            band[i] = band[i] && soft[i] >= CFM_SOFT;
            nb += band[i];
        }
        if (nb <= CFM_MAX_BAND)
            rc = bgr_image_cfm_band(img, band, matte, &cfm_params, NULL, err);
    }
    free(soft);
    return rc;
}
