/*
 * conn.c - connectivity error (Rhemann et al., "A Perceptually Motivated
 * Online Benchmark for Image Matting", CVPR 2009), in the form the Deep
 * Image Matting evaluation uses; see eval.h for the definition.
 *
 * Written from the published description, not from any implementation.
 * Two choices the description leaves open, made here on purpose:
 * - Thresholds are compared exactly, in integers: alpha v/255 >= i/10 is
 *   10 v >= 255 i. Floating-point sweeps (0:0.1:1) put some thresholds a
 *   rounding step above i/10, so a value of exactly 0.6 (153) may fall on
 *   either side depending on the tool; ours is the mathematical one.
 * - Among components of equal largest size the first in raster order is
 *   Omega. Ties only happen on synthetic inputs.
 * No trimap: the sum runs over every pixel (published numbers sum over the
 * trimap's unknown region only, so they are not comparable with ours).
 *
 * Cost: ten 8-connected labellings of the image, O(10 n) with an explicit
 * stack; memory 9 bytes per pixel.
 */
#include <stdlib.h>

#include "eval/eval.h"

#define CONN_STEPS 10 /* thresholds i / CONN_STEPS, i = 0..CONN_STEPS */

/* Marks in `omega` (1) the largest 8-connected component of the pixels with
 * mask[i] != 0; mask is consumed (set to 0 as pixels are visited). stack
 * holds n indices; lab is scratch of n uint32. */
static void largest_component(uint8_t *mask, int w, int h, uint32_t *stack, uint32_t *lab,
                              uint8_t *omega)
{
    size_t n = (size_t)w * (size_t)h, best_size = 0;
    uint32_t next = 1, best = 0;
    for (size_t i = 0; i < n; i++)
        lab[i] = 0;
    for (size_t s = 0; s < n; s++) {
        if (!mask[s])
            continue;
        size_t top = 0, size = 0;
        mask[s] = 0;
        stack[top++] = (uint32_t)s;
        while (top) {
            uint32_t i = stack[--top];
            lab[i] = next;
            size++;
            int x = (int)(i % (uint32_t)w), y = (int)(i / (uint32_t)w);
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int xx = x + dx, yy = y + dy;
                    if (xx < 0 || yy < 0 || xx >= w || yy >= h)
                        continue;
                    size_t j = (size_t)yy * (size_t)w + (size_t)xx;
                    if (mask[j]) {
                        mask[j] = 0; /* pushed once: the stack never exceeds n */
                        stack[top++] = (uint32_t)j;
                    }
                }
        }
        if (size > best_size)
            best_size = size, best = next;
        next++;
    }
    for (size_t i = 0; i < n; i++)
        omega[i] = best && lab[i] == best;
}

/* phi of one value v (0..255) at level k/10: 1 - d [d >= 0.15], with
 * d = v/255 - k/10 = (10 v - 255 k) / 2550, compared exactly in integers
 * (d >= 0.15 is 10 v - 255 k >= 382.5). */
static double phi(int v, int k)
{
    int num = 10 * v - 255 * k;
    return num >= 383 ? 1.0 - num / 2550.0 : 1.0;
}

int bgr_eval_conn(const uint8_t *pred, const uint8_t *gt, int w, int h, double *out,
                  struct bgr_error *err)
{
    BGR_ASSERT(w > 0 && h > 0);
    size_t n = (size_t)w * (size_t)h;
    if (n > UINT32_MAX)
        return bgr_error_set(err, BGR_EINVALID_PARAMETER, "%dx%d is too large", w, h);
    uint32_t *stack = malloc(2 * n * sizeof(uint32_t));
    uint8_t *bytes = malloc(3 * n);
    int rc = 0;
    if (!stack || !bytes) {
        rc = bgr_error_set(err, BGR_ENOMEM, "out of memory for the connectivity of a %dx%d matte",
                           w, h);
        goto out;
    }
    /* level: k of l = k/10 once labelled, 0xff while not yet labelled */
    uint8_t *level = bytes, *mask = bytes + n, *omega = bytes + 2 * n;
    for (size_t i = 0; i < n; i++)
        level[i] = 0xff;
    for (int k = 1; k <= CONN_STEPS; k++) {
        int t = 255 * k; /* v/255 >= k/10  <=>  10 v >= 255 k */
        for (size_t i = 0; i < n; i++)
            mask[i] = 10 * pred[i] >= t && 10 * gt[i] >= t;
        largest_component(mask, w, h, stack, stack + n, omega);
        for (size_t i = 0; i < n; i++)
            if (level[i] == 0xff && !omega[i])
                level[i] = (uint8_t)(k - 1);
    }
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        int k = level[i] == 0xff ? CONN_STEPS : level[i];
        double d = phi(pred[i], k) - phi(gt[i], k);
        sum += d < 0 ? -d : d;
    }
    *out = sum / 1000.0;
out:
    free(stack);
    free(bytes);
    return rc;
}
