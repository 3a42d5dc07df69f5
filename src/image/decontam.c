/*
 * decontam.c - foreground colour estimation for semi-transparent pixels
 * (see image.h), by blur-fusion (M. Forte and F. Pitie, "Approximate Fast
 * Foreground Colour Estimation", ICIP 2021), written here from the paper's
 * equations.
 *
 * An observed colour is I = a F + (1 - a) B. Blur-fusion estimates the
 * local foreground colour Fb as the alpha-weighted box mean of F, the local
 * background Bb as the (1 - a)-weighted mean of B, then corrects Fb by the
 * part of I that neither explains:
 *     F = Fb + a (I - a Fb - (1 - a) Bb)
 * It runs twice: with a large window (F = B = I to start) to reach into the
 * solid subject and background, then with a small one from the first
 * pass's F and Bb, which sharpens the estimate near the edge.
 *
 * Everything but that final line runs on the grid (grid.h); Fb and Bb are
 * smooth, so interpolating them to full resolution loses little, and the
 * final line uses each pixel's own colour and alpha.
 */
#include <stdlib.h>

#include "image/grid.h"

/* Window radii at full resolution: 1/20 of the long side (40 px at 800,
 * the paper's 90 px window on its ~1 MP test images) and 1/270 (3 px). */
static void decontam_radii(int w, int h, int *r1, int *r2)
{
    int l = w > h ? w : h;
    *r1 = l / 20 < 4 ? 4 : l / 20;
    *r2 = l / 270 < 1 ? 1 : l / 270;
}

enum { P_I0, P_I1, P_I2, P_A, P_BA, P_F0, P_F1, P_F2, P_B0, P_B1, P_B2, P_W, P_TMP, P_COUNT };

#define DIV_EPS 1e-5f

/* One blur-fusion pass with window radius r. On entry planes F and B hold
 * the colours to average (F: foreground, B: background); on exit F holds
 * the box means Fb and B the means Bb. When `estimate`, F instead holds the
 * corrected, clamped estimate F (and B still Bb). */
static void fusion_pass(const struct bgr_grid *g, float **pl, double *acc, int r, bool estimate)
{
    size_t n = (size_t)g->gw * (size_t)g->gh;
    const float *a = pl[P_A];
    float *ba = pl[P_BA], *w = pl[P_W], *tmp = pl[P_TMP];

    for (size_t i = 0; i < n; i++)
        ba[i] = a[i];
    bgr_grid_box(ba, tmp, acc, g->gw, g->gh, r);
    for (int c = 0; c < 3; c++) {
        float *f = pl[P_F0 + c], *b = pl[P_B0 + c];
        for (size_t i = 0; i < n; i++)
            w[i] = f[i] * a[i];
        bgr_grid_box(w, tmp, acc, g->gw, g->gh, r);
        for (size_t i = 0; i < n; i++)
            f[i] = w[i] / (ba[i] + DIV_EPS);
        for (size_t i = 0; i < n; i++)
            w[i] = b[i] * (1.0f - a[i]);
        bgr_grid_box(w, tmp, acc, g->gw, g->gh, r);
        for (size_t i = 0; i < n; i++)
            b[i] = w[i] / (1.0f - ba[i] + DIV_EPS);
        if (!estimate)
            continue;
        const float *im = pl[P_I0 + c];
        for (size_t i = 0; i < n; i++) {
            float v = f[i] + a[i] * (im[i] - a[i] * f[i] - (1.0f - a[i]) * b[i]);
            f[i] = v < 0 ? 0 : v > 1 ? 1 : v;
        }
    }
}

int bgr_image_decontaminate(struct bgr_pixels *img, const uint8_t *matte, struct bgr_error *err)
{
    BGR_ASSERT(img->bands >= 3 && img->width > 0 && img->height > 0);
    struct bgr_grid g;
    float *pl[P_COUNT];
    double *acc = NULL;
    void *block = NULL;
    struct bgr_grid_tap *tx = NULL;
    int rc, r1, r2;

    bgr_grid_init(&g, img->width, img->height);
    rc = bgr_grid_planes_alloc(&g, P_COUNT, pl, &acc, &block, err);
    if (rc)
        return rc;
    tx = malloc((size_t)img->width * sizeof *tx);
    if (!tx) {
        rc = bgr_error_set(err, BGR_ENOMEM, "out of memory for colour decontamination");
        goto out;
    }
    decontam_radii(img->width, img->height, &r1, &r2);
    size_t n = (size_t)g.gw * (size_t)g.gh;
    for (int c = 0; c < 3; c++) {
        bgr_grid_down(&g, img->data, img->bands, c, pl[P_I0 + c]);
        for (size_t i = 0; i < n; i++)
            pl[P_F0 + c][i] = pl[P_B0 + c][i] = pl[P_I0 + c][i];
    }
    bgr_grid_down(&g, matte, 1, 0, pl[P_A]);
    fusion_pass(&g, pl, acc, bgr_grid_radius(&g, r1), true);
    fusion_pass(&g, pl, acc, bgr_grid_radius(&g, r2), false);

    /* Full resolution: the final correction with each pixel's own colour. */
    bgr_grid_taps(img->width, g.gw, g.s, tx);
    for (int y = 0; y < img->height; y++) {
        struct bgr_grid_tap ty = bgr_grid_tap_at(y, g.gh, g.s);
        uint8_t *px = img->data + (size_t)y * (size_t)img->width * (size_t)img->bands;
        const uint8_t *m = matte + (size_t)y * (size_t)img->width;
        for (int x = 0; x < img->width; x++, px += img->bands) {
            if (m[x] == 255 || m[x] == 0) /* opaque: the photo; clear: unseen */
                continue;
            float al = (float)m[x] * (1.0f / 255.0f);
            for (int c = 0; c < 3; c++) {
                float fb = bgr_grid_sample(pl[P_F0 + c], g.gw, &ty, &tx[x]);
                float bb = bgr_grid_sample(pl[P_B0 + c], g.gw, &ty, &tx[x]);
                float im = (float)px[c] * (1.0f / 255.0f);
                float v = fb + al * (im - al * fb - (1.0f - al) * bb);
                v = v < 0 ? 0 : v > 1 ? 1 : v;
                px[c] = (uint8_t)(v * 255.0f + 0.5f);
            }
        }
    }
out:
    free(tx);
    free(block);
    return rc;
}
