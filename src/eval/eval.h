/*
 * eval.h - cutout quality metrics against a ground-truth alpha matte, the
 * same figures as the reviewers' /work/shared/eval/eval.py (docs/QUALITY.md
 * defines each): MAE, MSE, SAD/1000, IoU at 0.5, boundary F-measure,
 * gradient error, plus a connectivity error (conn.c) and a composite error
 * that also counts colour fringes.
 *
 * Mattes are 8-bit, w x h, row-major, 0 = background, 255 = foreground,
 * read as value / 255. Nothing is resized: callers check sizes. Pure
 * functions of their inputs; thread-safe.
 */
#ifndef BGR_EVAL_EVAL_H
#define BGR_EVAL_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

struct bgr_eval_metrics {
    double mae, mse, sad; /* sad = sum |p - g| / 1000 */
    double iou;           /* of p >= 0.5 and g >= 0.5; 1 when both empty */
    double bf;            /* boundary F-measure of those binary masks */
    double grad;          /* sum (|grad p| - |grad g|)^2 / 1000, sigma 1.4 */
    double conn;          /* connectivity error / 1000, see bgr_eval_conn */
    double comp;          /* composite error, see bgr_eval_composite */
    double fringe;        /* edge colour error, see bgr_eval_fringe */
};

/* Boundary tolerance of eval.py: ceil(0.008 * image diagonal) pixels. */
#define BGR_EVAL_BF_TOL 0.008

/* MAE, MSE, SAD, IoU, BF, gradient and connectivity error of pred against
 * gt (both w x h). Errors: BGR_ENOMEM (it needs a few w x h scratch planes).
 * comp is left 0. */
int bgr_eval_alpha(const uint8_t *pred, const uint8_t *gt, int w, int h, struct bgr_eval_metrics *m,
                   struct bgr_error *err);

/* Composite error: the cutout (colours fg, 3 bands, and alpha pred) and
 * the ground truth (the original image's colours img, 3 bands, with alpha
 * gt) are each composited over plain black and over plain white; the result
 * is the mean absolute difference over both backgrounds, every pixel and
 * channel, in [0,1]. A colour fringe (old background left in edge colours)
 * and a wrong alpha both raise it. */
double bgr_eval_composite(const uint8_t *fg, int fg_bands, const uint8_t *pred, const uint8_t *img,
                          int img_bands, const uint8_t *gt, int w, int h);

/* Edge colour error: over the pixels that are truly semi-transparent
 * (0 < gt < 255) and that the cutout shows (pred > 0), the mean of
 * pred/255 * |fg - truth| / 255 over the three channels: how far the
 * visible colour of edge pixels is from the subject's true colour (the
 * fringe). Returns -1 when there is no such pixel (binary ground truth).
 * Meaningful only where the true subject colours are known
 * (`eval --synthetic`). */
double bgr_eval_fringe(const uint8_t *fg, int fg_bands, const uint8_t *pred, const uint8_t *gt,
                       const uint8_t *truth, int truth_bands, int w, int h);

/* Connectivity error (Rhemann et al. 2009, as in the Deep Image Matting
 * evaluation) of pred against gt, both w x h, into *out. For thresholds
 * t_i = i/10, i = 1..10: Omega_i is the largest 8-connected component of
 * (p >= t_i and g >= t_i); each pixel not yet given a level and not in
 * Omega_i gets l = t_(i-1); pixels never given one get l = 1. With
 * d = x - l, phi(x) = 1 - d when d >= 0.15, else 1; the error is
 * sum |phi(p) - phi(g)| / 1000 over all pixels (no trimap). Thresholds are
 * compared exactly (conn.c says why). Errors: BGR_ENOMEM. */
int bgr_eval_conn(const uint8_t *pred, const uint8_t *gt, int w, int h, double *out,
                  struct bgr_error *err);

/* Gradient magnitude of a w x h matte (values / 255) by Gaussian-derivative
 * filters (sigma 1.4, edge-replicated borders) into out (w * h doubles,
 * caller's). Errors: BGR_ENOMEM. Exposed for tests. */
int bgr_eval_grad_mag(const uint8_t *a, int w, int h, double *out, struct bgr_error *err);

/* Median of n values (sorts v in place); 0 for n == 0. */
double bgr_eval_median(double *v, size_t n);

/* Spearman's rank correlation of x and y (n pairs; ties get their mean
 * rank), in [-1, 1]; 0 when n < 2 or either side is constant. Errors are
 * impossible; it allocates 2 n doubles and size_t (aborts on exhaustion). */
double bgr_eval_spearman(const double *x, const double *y, size_t n);

#endif
