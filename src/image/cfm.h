/*
 * cfm.h - private to src/image: a closed-form matting solve (Levin,
 * Lischinski and Weiss, PAMI 2008) restricted to a band of pixels, at full
 * resolution. Used by refine.c.
 */
#ifndef BGR_IMAGE_CFM_H
#define BGR_IMAGE_CFM_H

#include "image/image.h"

struct bgr_cfm_params {
    double eps;    /* regulariser of each 3x3 window's colour covariance */
    double lambda; /* weight of (alpha - prior)^2 per band pixel */
    int max_iter;  /* conjugate-gradient iterations at most */
    double tol;    /* stop when |residual| <= tol |rhs| */
};

/* Re-solves the pixels with band[i] != 0 of the w x h matte (img->width x
 * img->height, changed in place): minimises alpha^T L alpha +
 * lambda sum_band (alpha - matte)^2, with L the matting Laplacian of img's
 * RGB over 3x3 windows and every pixel outside the band held at its matte
 * value. band, img and matte are the caller's. *iters (may be NULL) gets the
 * iterations run. Errors: BGR_ENOMEM. */
int bgr_image_cfm_band(const struct bgr_pixels *img, const uint8_t *band, uint8_t *matte,
                       const struct bgr_cfm_params *p, int *iters, struct bgr_error *err);

/* The same on float planes: col[0..2] the w x h colour planes in [0,1],
 * alpha (w x h, [0,1]) the prior in, the result out (band pixels only). */
int bgr_image_cfm_solve(const float *const col[3], int w, int h, const uint8_t *band, float *alpha,
                        const struct bgr_cfm_params *p, int *iters, struct bgr_error *err);

/* The band of a w x h matte: pixels with lo < matte < hi, dilated by a
 * (2 dil + 1)^2 square, into band (w * h bytes, caller's: 1 in, 0 out).
 * Returns BGR_ENOMEM or 0. */
int bgr_image_cfm_band_of(const uint8_t *matte, int w, int h, int lo, int hi, int dil,
                          uint8_t *band, struct bgr_error *err);

#endif
