/*
 * test_metrics.c - src/eval's metrics on cases whose answers are known by
 * hand (and agree with /work/shared/eval/eval.py's definitions).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"
#include "runner.h"

/* A w x h matte with the rectangle [x0, x1) x [y0, y1) at v, else 0. */
static uint8_t *rect(int w, int h, int x0, int y0, int x1, int y1, uint8_t v)
{
    uint8_t *m = calloc((size_t)w * (size_t)h, 1);
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++)
            m[y * w + x] = v;
    return m;
}

BGR_TEST(identical_is_perfect)
{
    struct bgr_error err;
    struct bgr_eval_metrics m;
    uint8_t *a = rect(40, 30, 5, 5, 25, 20, 255);
    a[0] = 77; /* a soft pixel too */
    BGR_REQUIRE(bgr_eval_alpha(a, a, 40, 30, &m, &err) == 0);
    BGR_CHECK_NEAR(m.mae, 0, 0);
    BGR_CHECK_NEAR(m.mse, 0, 0);
    BGR_CHECK_NEAR(m.sad, 0, 0);
    BGR_CHECK_NEAR(m.iou, 1, 0);
    BGR_CHECK_NEAR(m.bf, 1, 0);
    BGR_CHECK_NEAR(m.grad, 0, 1e-12);
    free(a);
}

BGR_TEST(all_wrong)
{
    struct bgr_error err;
    struct bgr_eval_metrics m;
    uint8_t *p = rect(50, 20, 0, 0, 50, 20, 255), *g = rect(50, 20, 0, 0, 0, 0, 0);
    BGR_REQUIRE(bgr_eval_alpha(p, g, 50, 20, &m, &err) == 0);
    BGR_CHECK_NEAR(m.mae, 1, 1e-12);
    BGR_CHECK_NEAR(m.mse, 1, 1e-12);
    BGR_CHECK_NEAR(m.sad, 1.0, 1e-12); /* 1000 pixels / 1000 */
    BGR_CHECK_NEAR(m.iou, 0, 0);
    /* no boundary on either side (the frame is not a boundary): 1, as in
     * eval.py */
    BGR_CHECK_NEAR(m.bf, 1, 0);
    free(p);
    free(g);
}

BGR_TEST(half_alpha_errors)
{
    struct bgr_error err;
    struct bgr_eval_metrics m;
    /* 51 = 0.2 everywhere against 0: mae 0.2, mse 0.04, iou of two empties 1 */
    uint8_t *p = rect(10, 10, 0, 0, 10, 10, 51), *g = rect(10, 10, 0, 0, 0, 0, 0);
    BGR_REQUIRE(bgr_eval_alpha(p, g, 10, 10, &m, &err) == 0);
    BGR_CHECK_NEAR(m.mae, 0.2, 1e-12);
    BGR_CHECK_NEAR(m.mse, 0.04, 1e-12);
    BGR_CHECK_NEAR(m.sad, 0.02, 1e-12);
    BGR_CHECK_NEAR(m.iou, 1, 0);
    BGR_CHECK_NEAR(m.bf, 1, 0);
    /* 128 is >= 0.5, 127 is not */
    p[0] = 128;
    BGR_REQUIRE(bgr_eval_alpha(p, g, 10, 10, &m, &err) == 0);
    BGR_CHECK_NEAR(m.iou, 0, 0);
    free(p);
    free(g);
}

BGR_TEST(iou_of_shifted_squares)
{
    struct bgr_error err;
    struct bgr_eval_metrics m;
    /* 10x10 squares one pixel apart horizontally: 90 / 110 */
    uint8_t *p = rect(40, 40, 11, 10, 21, 20, 255), *g = rect(40, 40, 10, 10, 20, 20, 255);
    BGR_REQUIRE(bgr_eval_alpha(p, g, 40, 40, &m, &err) == 0);
    BGR_CHECK_NEAR(m.iou, 90.0 / 110.0, 1e-12);
    /* tolerance ceil(0.008 * 56.6) = 1 px: every boundary pixel matches */
    BGR_CHECK_NEAR(m.bf, 1, 0);
    BGR_CHECK_NEAR(m.sad, 20 / 1000.0, 1e-12);
    free(p);
    free(g);
    /* far apart: no boundary pixel within 1 px */
    p = rect(40, 40, 25, 25, 35, 35, 255);
    g = rect(40, 40, 2, 2, 12, 12, 255);
    BGR_REQUIRE(bgr_eval_alpha(p, g, 40, 40, &m, &err) == 0);
    BGR_CHECK_NEAR(m.bf, 0, 0);
    BGR_CHECK_NEAR(m.iou, 0, 0);
    free(p);
    free(g);
}

BGR_TEST(boundary_f_partial)
{
    struct bgr_error err;
    struct bgr_eval_metrics m;
    /* 100x100, tolerance ceil(1.13) = 2 px. GT: the left half (columns
     * 0..49) is foreground, its boundary is column 49 (100 px). Prediction:
     * a 10x10 square at columns 48..57, rows 0..9: its boundary is 36 px, of
     * which those within 2 px of column 49 are columns 48..51 of its
     * outline: columns 48 (10 px), 49, 50, 51 (top and bottom: rows 0 and
     * 9, and the frame edge row 0 is not a boundary, so row 9 only: 3 px) =
     * 13. GT boundary pixels within 2 px of the prediction's: rows 0..11 of
     * column 49 = 12. */
    uint8_t *g = rect(100, 100, 0, 0, 50, 100, 255), *p = rect(100, 100, 48, 0, 58, 10, 255);
    BGR_REQUIRE(bgr_eval_alpha(p, g, 100, 100, &m, &err) == 0);
    /* prediction boundary: column 48 (10) + column 57 (10) + row 9 columns
     * 49..56 (8) = 28 px; matched: column 48 (10) + row 9 columns 49..51 (3) */
    double prec = 13.0 / 28.0, rec = 12.0 / 100.0;
    BGR_CHECK_NEAR(m.bf, 2 * prec * rec / (prec + rec), 1e-12);
    free(g);
    free(p);
}

BGR_TEST(gradient_of_a_step_is_one)
{
    struct bgr_error err;
    int w = 32, h = 16;
    uint8_t *a = rect(w, h, 16, 0, 32, 16, 255);
    double *g = malloc(sizeof(double) * (size_t)(w * h));
    BGR_REQUIRE(bgr_eval_grad_mag(a, w, h, g, &err) == 0);
    double peak = 0;
    for (int x = 0; x < w; x++)
        peak = g[8 * w + x] > peak ? g[8 * w + x] : peak;
    /* the derivative kernel is normalised to a unit step response */
    BGR_CHECK_NEAR(peak, 1.0, 0.02);
    BGR_CHECK_NEAR(g[8 * w + 2], 0, 1e-12); /* flat far from the step */
    /* gradient error of the step against a flat matte: sum of g^2 / 1000 */
    struct bgr_eval_metrics m;
    uint8_t *flat = rect(w, h, 0, 0, 0, 0, 0);
    BGR_REQUIRE(bgr_eval_alpha(a, flat, w, h, &m, &err) == 0);
    double s = 0;
    for (int i = 0; i < w * h; i++)
        s += g[i] * g[i];
    BGR_CHECK_NEAR(m.grad, s / 1000, 1e-12);
    BGR_CHECK(m.grad > 0);
    free(a);
    free(flat);
    free(g);
}

BGR_TEST(composite_error)
{
    uint8_t img[4 * 3], fg[4 * 3];
    uint8_t ga[4] = {255, 255, 0, 0}, pa[4] = {255, 255, 0, 0};
    memset(img, 200, sizeof img);
    memcpy(fg, img, sizeof fg);
    BGR_CHECK_NEAR(bgr_eval_composite(fg, 3, pa, img, 3, ga, 2, 2), 0, 0);
    /* colours of transparent pixels do not count */
    fg[2 * 3] = 0;
    BGR_CHECK_NEAR(bgr_eval_composite(fg, 3, pa, img, 3, ga, 2, 2), 0, 0);
    /* one opaque pixel's red 200 -> 100: over black and white both 100/255;
     * averaged over 4 pixels x 3 channels x 2 backgrounds */
    fg[0] = 100;
    BGR_CHECK_NEAR(bgr_eval_composite(fg, 3, pa, img, 3, ga, 2, 2), 2 * 100.0 / 255 / 24, 1e-12);
    /* a white image fully kept where GT is empty: black 1, white 0 */
    uint8_t white[3] = {255, 255, 255}, one = 255, zero = 0;
    BGR_CHECK_NEAR(bgr_eval_composite(white, 3, &one, white, 3, &zero, 1, 1), 0.5, 1e-12);
}

BGR_TEST(median)
{
    double v[] = {5, 1, 4, 2, 3};
    BGR_CHECK_NEAR(bgr_eval_median(v, 5), 3, 0);
    double u[] = {10, 1, 4, 2};
    BGR_CHECK_NEAR(bgr_eval_median(u, 4), 3, 0);
    BGR_CHECK_NEAR(bgr_eval_median(u, 0), 0, 0);
}

BGR_TEST_MAIN()
