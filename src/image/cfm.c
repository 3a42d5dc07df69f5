/*
 * cfm.c - closed-form matting in a band (see cfm.h), written from the
 * paper's equations.
 *
 * Within a 3x3 window k the matte is assumed affine in the colour I; the
 * cost of that assumption over all windows is alpha^T L alpha with
 *   L_ij = sum_{k : i, j in w_k} (delta_ij - (1 + (I_i - mu_k)^T
 *          (Sigma_k + eps/9 U)^-1 (I_j - mu_k)) / 9),
 * mu_k and Sigma_k the window's colour mean and covariance. L couples only
 * pixels at most two apart, so each band pixel's row is a 5x5 stencil. With
 * the pixels outside the band fixed, the minimiser of alpha^T L alpha +
 * lambda |alpha_B - prior_B|^2 over the band B solves
 *   (L_BB + lambda U) alpha_B = lambda prior_B - L_BF alpha_F,
 * symmetric positive definite for lambda > 0; we run Jacobi-preconditioned
 * conjugate gradients from alpha_B = prior_B.
 *
 * Memory, over the band's bounding box grown by 2 px: 21 bytes per pixel
 * (colour and alpha planes, band index); plus about 250 bytes per band pixel
 * (stencil values and neighbour indices, CG vectors).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "image/cfm.h"

#define ST 25 /* 5 x 5 stencil, slot (dy + 2) * 5 + (dx + 2) */

/* Inverse of the symmetric 3x3 matrix m (m00 m01 m02 m11 m12 m22) into
 * inv (same layout); m is positive definite here (covariance + eps). */
static void inv3(const double m[6], double inv[6])
{
    double c00 = m[3] * m[5] - m[4] * m[4], c01 = m[2] * m[4] - m[1] * m[5];
    double c02 = m[1] * m[4] - m[2] * m[3], c11 = m[0] * m[5] - m[2] * m[2];
    double c12 = m[1] * m[2] - m[0] * m[4], c22 = m[0] * m[3] - m[1] * m[1];
    double det = m[0] * c00 + m[1] * c01 + m[2] * c02;
    double k = det > 1e-300 ? 1.0 / det : 0.0;
    inv[0] = c00 * k, inv[1] = c01 * k, inv[2] = c02 * k;
    inv[3] = c11 * k, inv[4] = c12 * k, inv[5] = c22 * k;
}

/* Adds window (cx, cy)'s part of L to the stencils of its band pixels.
 * col[c] are the colour planes (w wide, values in [0,1]). */
static void add_window(const float *const col3[3], int w, const int32_t *idx, float *coef, int cx,
                       int cy, double eps)
{
    double col[9][3], mu[3] = {0, 0, 0}, s[6] = {0, 0, 0, 0, 0, 0};
    int32_t u[9];
    bool any = false;
    for (int k = 0; k < 9; k++) {
        u[k] = idx[(size_t)(cy + k / 3 - 1) * (size_t)w + (size_t)(cx + k % 3 - 1)];
        any |= u[k] >= 0;
    }
    if (!any) /* most windows: check before any arithmetic */
        return;
    for (int k = 0; k < 9; k++) {
        size_t i = (size_t)(cy + k / 3 - 1) * (size_t)w + (size_t)(cx + k % 3 - 1);
        for (int c = 0; c < 3; c++) {
            col[k][c] = col3[c][i];
            mu[c] += col[k][c] / 9.0;
        }
    }
    for (int k = 0; k < 9; k++) {
        double d0 = col[k][0] - mu[0], d1 = col[k][1] - mu[1], d2 = col[k][2] - mu[2];
        col[k][0] = d0, col[k][1] = d1, col[k][2] = d2; /* now I - mu */
        s[0] += d0 * d0 / 9, s[1] += d0 * d1 / 9, s[2] += d0 * d2 / 9;
        s[3] += d1 * d1 / 9, s[4] += d1 * d2 / 9, s[5] += d2 * d2 / 9;
    }
    s[0] += eps / 9, s[3] += eps / 9, s[5] += eps / 9;
    double inv[6], v[9][3];
    inv3(s, inv);
    for (int k = 0; k < 9; k++) {
        const double *d = col[k];
        v[k][0] = inv[0] * d[0] + inv[1] * d[1] + inv[2] * d[2];
        v[k][1] = inv[1] * d[0] + inv[3] * d[1] + inv[4] * d[2];
        v[k][2] = inv[2] * d[0] + inv[4] * d[1] + inv[5] * d[2];
    }
    for (int a = 0; a < 9; a++) {
        if (u[a] < 0)
            continue;
        float *row = coef + (size_t)u[a] * ST;
        for (int b = 0; b < 9; b++) {
            double val =
                (a == b) -
                (1.0 + col[a][0] * v[b][0] + col[a][1] * v[b][1] + col[a][2] * v[b][2]) / 9.0;
            int dy = b / 3 - a / 3, dx = b % 3 - a % 3;
            row[(dy + 2) * 5 + dx + 2] += (float)val;
        }
    }
}

/* y = (L_BB + lambda U) x over the band. */
static void apply(const float *coef, const int32_t *nbr, double lambda, const double *x, double *y,
                  size_t nu)
{
    for (size_t u = 0; u < nu; u++) {
        const float *c = coef + u * ST;
        const int32_t *j = nbr + u * ST;
        double s = lambda * x[u];
        for (int k = 0; k < ST; k++)
            if (j[k] >= 0)
                s += c[k] * x[j[k]];
        y[u] = s;
    }
}

static double dot(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

int bgr_image_cfm_solve(const float *const col[3], int w, int h, const uint8_t *band, float *alpha,
                        const struct bgr_cfm_params *p, int *iters, struct bgr_error *err)
{
    BGR_ASSERT(w > 0 && h > 0 && p->lambda > 0);
    int it = 0;
    size_t n = (size_t)w * (size_t)h, nu = 0;
    int32_t *idx = malloc(n * sizeof *idx), *nbr = NULL, *pix = NULL;
    float *coef = NULL;
    double *vec = NULL;
    int rc = 0;
    if (!idx)
        goto nomem;
    for (size_t i = 0; i < n; i++)
        idx[i] = band[i] && nu < INT32_MAX ? (int32_t)nu++ : -1;
    if (nu == 0)
        goto out;
    coef = calloc(nu * ST, sizeof *coef);
    nbr = malloc(nu * ST * sizeof *nbr);
    pix = malloc(nu * sizeof *pix);
    vec = malloc(6 * nu * sizeof *vec); /* x, b, diag, r, z (then q), p */
    if (!coef || !nbr || !pix || !vec)
        goto nomem;
    for (int y = 1; y + 1 < h; y++)
        for (int x = 1; x + 1 < w; x++)
            add_window(col, w, idx, coef, x, y, p->eps);

    double *x = vec, *b = vec + nu, *diag = vec + 2 * nu, *r = vec + 3 * nu, *z = vec + 4 * nu,
           *pd = vec + 5 * nu;
    for (size_t i = 0; i < n; i++) {
        if (idx[i] < 0)
            continue;
        size_t u = (size_t)idx[i];
        int py = (int)(i / (size_t)w), px = (int)(i % (size_t)w);
        pix[u] = (int32_t)i;
        x[u] = alpha[i];
        b[u] = p->lambda * x[u];
        diag[u] = coef[u * ST + 12] + p->lambda;
        for (int k = 0; k < ST; k++) {
            int yy = py + k / 5 - 2, xx = px + k % 5 - 2;
            nbr[u * ST + (size_t)k] = -1;
            if (yy < 0 || xx < 0 || yy >= h || xx >= w)
                continue;
            size_t j = (size_t)yy * (size_t)w + (size_t)xx;
            if (idx[j] >= 0)
                nbr[u * ST + (size_t)k] = idx[j];
            else /* a fixed pixel: its term moves to the right-hand side */
                b[u] -= coef[u * ST + (size_t)k] * alpha[j];
        }
    }
    apply(coef, nbr, p->lambda, x, r, nu);
    for (size_t u = 0; u < nu; u++) {
        r[u] = b[u] - r[u];
        z[u] = r[u] / diag[u];
        pd[u] = z[u];
    }
    double rz = dot(r, z, nu), stop = p->tol * p->tol * dot(b, b, nu);
    for (it = 0; it < p->max_iter && dot(r, r, nu) > stop; it++) {
        double *q = z; /* z is recomputed from r below */
        apply(coef, nbr, p->lambda, pd, q, nu);
        double pq = dot(pd, q, nu);
        if (!(pq > 0))
            break;
        double a = rz / pq;
        for (size_t u = 0; u < nu; u++) {
            x[u] += a * pd[u];
            r[u] -= a * q[u];
        }
        for (size_t u = 0; u < nu; u++)
            z[u] = r[u] / diag[u];
        double rz2 = dot(r, z, nu), beta = rz2 / rz;
        rz = rz2;
        for (size_t u = 0; u < nu; u++)
            pd[u] = z[u] + beta * pd[u];
    }
    for (size_t u = 0; u < nu; u++) {
        alpha[pix[u]] = (float)(x[u] < 0 ? 0 : x[u] > 1 ? 1 : x[u]);
    }
    goto out;
nomem:
    rc = bgr_error_set(err, BGR_ENOMEM, "out of memory for a matting solve of %dx%d", w, h);
out:
    if (iters)
        *iters = it;
    free(idx);
    free(nbr);
    free(pix);
    free(coef);
    free(vec);
    return rc;
}

/* One axis of a square dilation: out = 1 where in has a 1 within d steps
 * (stride st, count m lines of len elements, line stride ls). */
static void dilate_axis(const uint8_t *in, uint8_t *out, int len, int m, size_t st, size_t ls,
                        int d)
{
    for (int l = 0; l < m; l++) {
        const uint8_t *a = in + (size_t)l * ls;
        uint8_t *o = out + (size_t)l * ls;
        int cnt = 0;
        for (int k = 0; k < d && k < len; k++)
            cnt += a[(size_t)k * st];
        for (int k = 0; k < len; k++) {
            if (k + d < len)
                cnt += a[(size_t)(k + d) * st];
            if (k - d - 1 >= 0)
                cnt -= a[(size_t)(k - d - 1) * st];
            o[(size_t)k * st] = cnt > 0;
        }
    }
}

int bgr_image_cfm_band_of(const uint8_t *matte, int w, int h, int lo, int hi, int dil,
                          uint8_t *band, struct bgr_error *err)
{
    size_t n = (size_t)w * (size_t)h;
    uint8_t *tmp = malloc(n);
    if (!tmp)
        return bgr_error_set(err, BGR_ENOMEM, "out of memory for a %dx%d band", w, h);
    for (size_t i = 0; i < n; i++)
        band[i] = matte[i] > lo && matte[i] < hi;
    dilate_axis(band, tmp, w, h, 1, (size_t)w, dil);
    dilate_axis(tmp, band, h, w, (size_t)w, 1, dil);
    free(tmp);
    return 0;
}

int bgr_image_cfm_band(const struct bgr_pixels *img, const uint8_t *band, uint8_t *matte,
                       const struct bgr_cfm_params *p, int *iters, struct bgr_error *err)
{
    BGR_ASSERT(img->bands >= 3);
    int w = img->width, h = img->height, x0 = w, y0 = h, x1 = -1, y1 = -1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if (band[(size_t)y * (size_t)w + (size_t)x]) {
                x0 = x < x0 ? x : x0, x1 = x > x1 ? x : x1;
                y0 = y < y0 ? y : y0, y1 = y > y1 ? y : y1;
            }
    if (iters)
        *iters = 0;
    if (x1 < 0)
        return 0;
    /* Only the band's bounding box grown by 2 px matters: every window that
     * touches a band pixel, and every fixed pixel coupled to one, lies
     * within 2 px of it. The result is the same as on the whole image. */
    x0 = x0 - 2 < 0 ? 0 : x0 - 2, y0 = y0 - 2 < 0 ? 0 : y0 - 2;
    x1 = x1 + 2 >= w ? w - 1 : x1 + 2, y1 = y1 + 2 >= h ? h - 1 : y1 + 2;
    int cw = x1 - x0 + 1, ch = y1 - y0 + 1;
    size_t n = (size_t)cw * (size_t)ch;
    float *f = malloc(4 * n * sizeof *f);
    uint8_t *cb = calloc(n, 1); /* zeroed: quiets a false maybe-uninitialized */
    int rc = 0;
    if (!f || !cb) {
        rc = bgr_error_set(err, BGR_ENOMEM, "out of memory for a matting solve of %dx%d", cw, ch);
        goto out;
    }
    const float *col[3] = {f, f + n, f + 2 * n};
    float *alpha = f + 3 * n;
    for (int y = 0; y < ch; y++)
        for (int x = 0; x < cw; x++) {
            size_t i = (size_t)y * (size_t)cw + (size_t)x;
            size_t j = (size_t)(y + y0) * (size_t)w + (size_t)(x + x0);
            for (int c = 0; c < 3; c++)
                f[(size_t)c * n + i] =
                    img->data[j * (size_t)img->bands + (size_t)c] * (1.0f / 255.0f);
            alpha[i] = matte[j] * (1.0f / 255.0f);
            cb[i] = band[j];
        }
    rc = bgr_image_cfm_solve(col, cw, ch, cb, alpha, p, iters, err);
    for (int y = 0; rc == 0 && y < ch; y++)
        for (int x = 0; x < cw; x++) {
            size_t i = (size_t)y * (size_t)cw + (size_t)x;
            if (cb[i])
                matte[(size_t)(y + y0) * (size_t)w + (size_t)(x + x0)] =
                    (uint8_t)(alpha[i] * 255.0f + 0.5f);
        }
out:
    free(f);
    free(cb);
    return rc;
}
