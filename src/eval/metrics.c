/*
 * metrics.c - see eval.h. Each metric follows eval.py's definition line for
 * line (binarisation at >= 0.5, 4-neighbour boundaries with edge padding,
 * disk dilation of radius ceil(0.008 * diagonal), Gaussian-derivative
 * kernels normalised to a unit step response), so the two tools agree to
 * rounding; tests/unit/eval checks them on cases with known answers.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"

/* Foreground pixels with a 4-neighbour in the background; the image border
 * is not a boundary (eval.py pads with the edge). */
static size_t boundary(const uint8_t *bin, int w, int h, uint8_t *out)
{
    size_t n = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * (size_t)w + (size_t)x;
            bool b =
                bin[i] && ((x > 0 && !bin[i - 1]) || (x < w - 1 && !bin[i + 1]) ||
                           (y > 0 && !bin[i - (size_t)w]) || (y < h - 1 && !bin[i + (size_t)w]));
            out[i] = b;
            n += b;
        }
    return n;
}

/* Disk dilation of radius r: every set pixel stamps the rows
 * |dx| <= floor(sqrt(r^2 - dy^2)). */
static void dilate(const uint8_t *b, int w, int h, int r, uint8_t *out)
{
    memset(out, 0, (size_t)w * (size_t)h);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            if (!b[(size_t)y * (size_t)w + (size_t)x])
                continue;
            for (int dy = -r; dy <= r; dy++) {
                int yy = y + dy;
                if (yy < 0 || yy >= h)
                    continue;
                int span = (int)floor(sqrt((double)(r * r - dy * dy)));
                int x0 = x - span < 0 ? 0 : x - span, x1 = x + span >= w ? w - 1 : x + span;
                memset(out + (size_t)yy * (size_t)w + (size_t)x0, 1, (size_t)(x1 - x0) + 1);
            }
        }
}

static size_t count_and(const uint8_t *a, const uint8_t *b, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += a[i] && b[i];
    return c;
}

/* Boundary F of two binary masks; scratch is 4 * w * h bytes. */
static double boundary_f(const uint8_t *pb, const uint8_t *gb, int w, int h, uint8_t *scratch)
{
    size_t n = (size_t)w * (size_t)h;
    uint8_t *bp = scratch, *bg = scratch + n, *dp = scratch + 2 * n, *dg = scratch + 3 * n;
    int r = (int)ceil(BGR_EVAL_BF_TOL * hypot((double)h, (double)w));
    size_t np = boundary(pb, w, h, bp), ng = boundary(gb, w, h, bg);
    if (np == 0 && ng == 0)
        return 1.0;
    if (np == 0 || ng == 0)
        return 0.0;
    dilate(bg, w, h, r, dg);
    dilate(bp, w, h, r, dp);
    double prec = (double)count_and(bp, dg, n) / (double)np;
    double rec = (double)count_and(bg, dp, n) / (double)ng;
    return prec + rec == 0 ? 0.0 : 2.0 * prec * rec / (prec + rec);
}

#define GRAD_SIGMA 1.4
#define GRAD_HALF 5 /* ceil(3 * sigma) */

static void grad_kernels(double g[2 * GRAD_HALF + 1], double dg[2 * GRAD_HALF + 1])
{
    double gs = 0, ds = 0;
    for (int i = 0; i <= 2 * GRAD_HALF; i++) {
        double x = i - GRAD_HALF;
        g[i] = exp(-x * x / (2 * GRAD_SIGMA * GRAD_SIGMA));
        gs += g[i];
    }
    for (int i = 0; i <= 2 * GRAD_HALF; i++) {
        double x = i - GRAD_HALF;
        g[i] /= gs;
        dg[i] = -x * g[i] / (GRAD_SIGMA * GRAD_SIGMA);
        ds += fabs(dg[i]);
    }
    for (int i = 0; i <= 2 * GRAD_HALF; i++)
        dg[i] /= ds / 2.0; /* unit response to a unit step */
}

/* out[j] = sum_t k[HALF - t] in[clamp(j + t)] along rows (horizontal) or
 * columns: eval.py's convolution with edge padding. */
static void conv(const double *in, double *out, int w, int h, const double *k, bool horizontal)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double s = 0;
            for (int t = -GRAD_HALF; t <= GRAD_HALF; t++) {
                int xx = x, yy = y;
                if (horizontal)
                    xx = x + t < 0 ? 0 : x + t >= w ? w - 1 : x + t;
                else
                    yy = y + t < 0 ? 0 : y + t >= h ? h - 1 : y + t;
                s += k[GRAD_HALF - t] * in[(size_t)yy * (size_t)w + (size_t)xx];
            }
            out[(size_t)y * (size_t)w + (size_t)x] = s;
        }
}

int bgr_eval_grad_mag(const uint8_t *a, int w, int h, double *out, struct bgr_error *err)
{
    size_t n = (size_t)w * (size_t)h;
    double *p = calloc(3 * n, sizeof(double)); /* zeroed: quiets a false maybe-uninitialized */
    if (!p)
        return bgr_error_set(err, BGR_ENOMEM, "out of memory for a %dx%d gradient", w, h);
    double *t = p + n, *gx = p + 2 * n, g[2 * GRAD_HALF + 1], dg[2 * GRAD_HALF + 1];
    grad_kernels(g, dg);
    for (size_t i = 0; i < n; i++)
        p[i] = a[i] / 255.0;
    conv(p, t, w, h, dg, true);
    conv(t, gx, w, h, g, false);
    conv(p, t, w, h, dg, false);
    conv(t, out, w, h, g, true); /* gy */
    for (size_t i = 0; i < n; i++)
        out[i] = sqrt(gx[i] * gx[i] + out[i] * out[i]);
    free(p);
    return 0;
}

int bgr_eval_alpha(const uint8_t *pred, const uint8_t *gt, int w, int h, struct bgr_eval_metrics *m,
                   struct bgr_error *err)
{
    BGR_ASSERT(w > 0 && h > 0);
    size_t n = (size_t)w * (size_t)h;
    double *gp = malloc(2 * n * sizeof(double));
    uint8_t *bins = malloc(6 * n);
    int rc = 0;
    if (!gp || !bins) {
        rc = bgr_error_set(err, BGR_ENOMEM, "out of memory for the metrics of a %dx%d matte", w, h);
        goto out;
    }
    double sad = 0, sq = 0;
    size_t inter = 0, uni = 0;
    uint8_t *pb = bins, *gb = bins + n;
    for (size_t i = 0; i < n; i++) {
        double d = (pred[i] - gt[i]) / 255.0;
        sad += fabs(d);
        sq += d * d;
        pb[i] = pred[i] >= 128; /* >= 0.5 of 255 */
        gb[i] = gt[i] >= 128;
        inter += pb[i] && gb[i];
        uni += pb[i] || gb[i];
    }
    *m = (struct bgr_eval_metrics){.mae = sad / (double)n,
                                   .mse = sq / (double)n,
                                   .sad = sad / 1000.0,
                                   .iou = uni ? (double)inter / (double)uni : 1.0};
    m->bf = boundary_f(pb, gb, w, h, bins + 2 * n);
    rc = bgr_eval_grad_mag(pred, w, h, gp, err);
    if (rc == 0)
        rc = bgr_eval_grad_mag(gt, w, h, gp + n, err);
    if (rc)
        goto out;
    double ge = 0;
    for (size_t i = 0; i < n; i++)
        ge += (gp[i] - gp[n + i]) * (gp[i] - gp[n + i]);
    m->grad = ge / 1000.0;
    rc = bgr_eval_conn(pred, gt, w, h, &m->conn, err);
out:
    free(gp);
    free(bins);
    return rc;
}

double bgr_eval_composite(const uint8_t *fg, int fg_bands, const uint8_t *pred, const uint8_t *img,
                          int img_bands, const uint8_t *gt, int w, int h)
{
    size_t n = (size_t)w * (size_t)h;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        double ap = pred[i] / 255.0, ag = gt[i] / 255.0;
        for (int c = 0; c < 3; c++) {
            double f = fg[i * (size_t)fg_bands + (size_t)c] / 255.0;
            double o = img[i * (size_t)img_bands + (size_t)c] / 255.0;
            /* over black: a F; over white: a F + (1 - a) */
            double black = fabs(ap * f - ag * o);
            double white = fabs(ap * f + (1 - ap) - (ag * o + (1 - ag)));
            sum += black + white;
        }
    }
    return sum / (6.0 * (double)n);
}

double bgr_eval_fringe(const uint8_t *fg, int fg_bands, const uint8_t *pred, const uint8_t *gt,
                       const uint8_t *truth, int truth_bands, int w, int h)
{
    size_t n = (size_t)w * (size_t)h, count = 0;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (pred[i] == 0 || gt[i] == 0 || gt[i] == 255)
            continue;
        double d = 0;
        for (int c = 0; c < 3; c++)
            d += fabs((double)fg[i * (size_t)fg_bands + (size_t)c] -
                      (double)truth[i * (size_t)truth_bands + (size_t)c]);
        sum += pred[i] / 255.0 * d / (3 * 255.0);
        count++;
    }
    return count ? sum / (double)count : -1.0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bgr_eval_median(double *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static const double *rank_key; /* qsort has no context argument */

static int cmp_by_key(const void *a, const void *b)
{
    double x = rank_key[*(const size_t *)a], y = rank_key[*(const size_t *)b];
    return x < y ? -1 : x > y;
}

/* Ranks 1..n of v into r, ties sharing their mean rank. Not thread-safe
 * (rank_key); eval is single-threaded. */
static void ranks(const double *v, size_t n, double *r, size_t *idx)
{
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    rank_key = v;
    qsort(idx, n, sizeof *idx, cmp_by_key);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && v[idx[j + 1]] == v[idx[i]])
            j++;
        for (size_t k = i; k <= j; k++)
            r[idx[k]] = 0.5 * (double)(i + j) + 1.0;
        i = j + 1;
    }
}

double bgr_eval_spearman(const double *x, const double *y, size_t n)
{
    if (n < 2)
        return 0;
    double *rx = bgr_xcalloc(n, sizeof *rx), *ry = bgr_xcalloc(n, sizeof *ry);
    size_t *idx = bgr_xcalloc(n, sizeof *idx);
    ranks(x, n, rx, idx);
    ranks(y, n, ry, idx);
    double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
    for (size_t i = 0; i < n; i++)
        mx += rx[i], my += ry[i];
    mx /= (double)n, my /= (double)n;
    for (size_t i = 0; i < n; i++) {
        sxy += (rx[i] - mx) * (ry[i] - my);
        sxx += (rx[i] - mx) * (rx[i] - mx);
        syy += (ry[i] - my) * (ry[i] - my);
    }
    free(rx);
    free(ry);
    free(idx);
    return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : 0;
}
