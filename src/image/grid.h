/*
 * grid.h - private helpers of refine.c and decontam.c: the coefficient grid
 * (the image itself up to BGR_GRID_MAX_PIXELS, else an area-averaged
 * subsampling of it), float planes on that grid, a box mean, and bilinear
 * interpolation of grid planes back to full resolution.
 *
 * Planes are row-major floats, gw x gh, values in [0,1] for colours and
 * alpha. Nothing here allocates except bgr_grid_planes_alloc.
 */
#ifndef BGR_IMAGE_GRID_H
#define BGR_IMAGE_GRID_H

#include "image/image.h"

/* 0.26 MP: a 1 MP grid scored the same on the dev set (gradient error
 * 2.708 vs 2.723, SAD within 0.2%) at 3-4x the time. */
#define BGR_GRID_MAX_PIXELS ((size_t)1 << 18)

struct bgr_grid {
    int w, h;   /* full resolution */
    int gw, gh; /* grid: ceil(w / s) x ceil(h / s) */
    int s;      /* subsampling factor, >= 1 (1: the grid is the image) */
};

/* Picks the smallest s that keeps the grid within BGR_GRID_MAX_PIXELS. */
void bgr_grid_init(struct bgr_grid *g, int w, int h);

/* A full-resolution radius (pixels) in grid pixels, at least 1. */
int bgr_grid_radius(const struct bgr_grid *g, int full_radius);

/* Area average of band `band` of an interleaved 8-bit w x h image with
 * `bands` bands onto the grid, scaled to [0,1]. Edge blocks average the
 * pixels they have. */
void bgr_grid_down(const struct bgr_grid *g, const uint8_t *src, int bands, int band, float *dst);

/* In-place box mean of a gw x gh plane over a (2r+1)^2 window; windows are
 * clipped at the borders and divided by the pixels they hold. tmp (gw * gh
 * floats) and acc (gw doubles) are the caller's scratch. Sums run in double,
 * so the running sums do not drift. */
void bgr_grid_box(float *plane, float *tmp, double *acc, int gw, int gh, int r);

/* Allocates, in one block, n planes of gw x gh floats (planes[i]) and the
 * gw doubles bgr_grid_box needs (*acc). *block owns all of it: free() it.
 * Returns 0 or BGR_ENOMEM. */
int bgr_grid_planes_alloc(const struct bgr_grid *g, int n, float **planes, double **acc,
                          void **block, struct bgr_error *err);

/* Bilinear sampling of grid planes at full-resolution pixel centres:
 * grid coordinate (x + 0.5) / s - 0.5, clamped. With s == 1 it is the
 * identity. */
struct bgr_grid_tap {
    int i0, i1;
    float t; /* weight of i1 */
};
/* The tap of full-resolution index i on an axis of gn grid pixels. */
struct bgr_grid_tap bgr_grid_tap_at(int i, int gn, int s);
/* Fills taps[0..n) for a full-resolution axis of n pixels. */
void bgr_grid_taps(int n, int gn, int s, struct bgr_grid_tap *taps);

static inline float bgr_grid_sample(const float *plane, int gw, const struct bgr_grid_tap *ty,
                                    const struct bgr_grid_tap *tx)
{
    const float *r0 = plane + (size_t)ty->i0 * (size_t)gw;
    const float *r1 = plane + (size_t)ty->i1 * (size_t)gw;
    float a = r0[tx->i0] + (r0[tx->i1] - r0[tx->i0]) * tx->t;
    float b = r1[tx->i0] + (r1[tx->i1] - r1[tx->i0]) * tx->t;
    return a + (b - a) * ty->t;
}

#endif
