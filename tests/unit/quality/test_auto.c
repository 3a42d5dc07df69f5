/*
 * test_auto.c - refine=auto's decision, the confidence score and the
 * subject's box on synthetic mattes whose answer is known: a crisp subject
 * needs no extra views and earns a high score; a subject left at mid alpha
 * asks for them and scores low; the score stays in [0, 1] and never rises
 * when a badness feature grows. Also Spearman's correlation (eval).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"
#include "image/image.h"
#include "pipeline/pipeline.h"
#include "runner.h"
#include "synth_image.h"

#define W 128
#define H 128

/* A disc of radius r at the centre: alpha 1 inside, a linear edge of
 * `soft` pixels, 0 outside; pixels within `grey` of the centre are set to
 * `grey_alpha` (an undecided part of the subject). */
static float *disc(float r, float soft, float grey, float grey_alpha)
{
    float *a = malloc(sizeof(float) * W * H);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            float d = hypotf(x - W / 2.0f + 0.5f, y - H / 2.0f + 0.5f);
            float v = soft > 0 ? (r + soft / 2 - d) / soft : (d <= r ? 1.0f : 0.0f);
            v = v < 0 ? 0 : v > 1 ? 1 : v;
            if (d < grey)
                v = grey_alpha;
            a[y * W + x] = v;
        }
    return a;
}

static void features(const float *a, struct bgr_matte_features *f)
{
    bgr_pipeline_matte_features(a, W, H, f);
}

BGR_TEST(features_of_known_mattes)
{
    struct bgr_matte_features f;
    float *crisp = disc(30, 0, 0, 0);
    features(crisp, &f);
    BGR_CHECK(fabs(f.subject - M_PI * 30 * 30 / (W * H)) < 0.01);
    BGR_CHECK(f.soft == 0 && f.mid == 0 && f.border == 0);
    BGR_CHECK(f.disagree == -1);
    free(crisp);

    /* everything at 0.5: all subject, all undecided */
    float *grey = malloc(sizeof(float) * W * H);
    for (int i = 0; i < W * H; i++)
        grey[i] = 0.5f;
    features(grey, &f);
    BGR_CHECK(f.subject == 1 && f.soft == 1 && f.mid == 1 && f.border == 1);
    free(grey);

    /* empty: no subject, bands capped rather than divided by zero */
    float *empty = calloc(W * H, sizeof(float));
    features(empty, &f);
    BGR_CHECK(f.subject == 0 && f.soft == 0 && f.mid == 0 && f.border == 0);
    for (int i = 0; i < W; i++) /* a faint haze only */
        empty[i] = 0.3f;
    features(empty, &f);
    BGR_CHECK(f.subject == 0 && f.mid == 4 && f.soft == 4);
    free(empty);

    /* a subject filling the left third of the frame touches the border */
    float *cut = calloc(W * H, sizeof(float));
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W / 3; x++)
            cut[y * W + x] = 1;
    features(cut, &f);
    BGR_CHECK(f.border > 0.3 && f.border < 0.6);
    free(cut);
}

BGR_TEST(auto_decision)
{
    struct bgr_matte_features f;
    /* a crisp subject, and one with a normal soft edge (hair-like, 3 px):
     * one model run is enough */
    float *a = disc(30, 0, 0, 0);
    features(a, &f);
    BGR_CHECK(!bgr_pipeline_auto_wants_views(&f));
    free(a);
    a = disc(50, 3, 0, 0);
    features(a, &f);
    BGR_CHECK(!bgr_pipeline_auto_wants_views(&f));
    free(a);
    /* half the subject left at alpha 0.5 (a plant the model half sees) */
    a = disc(50, 3, 35, 0.5f);
    features(a, &f);
    BGR_CHECK(bgr_pipeline_auto_wants_views(&f));
    free(a);
    /* the same disc with its centre at 0.9 is decided: no views */
    a = disc(50, 3, 35, 0.9f);
    features(a, &f);
    BGR_CHECK(!bgr_pipeline_auto_wants_views(&f));
    free(a);
    /* nothing found: the extra views could only add subject that touches
     * the plain view's, and there is none */
    a = calloc(W * H, sizeof(float));
    features(a, &f);
    BGR_CHECK(!bgr_pipeline_auto_wants_views(&f));
    free(a);
    /* the threshold itself, on features directly: monotonic in mid */
    struct bgr_matte_features g = {.subject = 0.2, .soft = 0.1, .border = 0, .disagree = -1};
    bool seen = false;
    for (double m = 0; m <= 1.0; m += 0.01) {
        g.mid = m;
        bool w = bgr_pipeline_auto_wants_views(&g);
        BGR_CHECK(!seen || w); /* once on, stays on as mid grows */
        seen |= w;
    }
    BGR_CHECK(seen);
}

BGR_TEST(confidence_range_and_order)
{
    struct bgr_matte_features f;
    float *crisp = disc(30, 0, 0, 0), *soft = disc(30, 6, 0, 0), *grey = disc(50, 3, 35, 0.5f);
    features(crisp, &f);
    double c_crisp = bgr_pipeline_confidence(&f);
    features(soft, &f);
    double c_soft = bgr_pipeline_confidence(&f);
    features(grey, &f);
    double c_grey = bgr_pipeline_confidence(&f);
    BGR_CHECK(c_crisp > 0.9 && c_crisp <= 1);
    BGR_CHECK(c_soft < c_crisp && c_grey < c_soft && c_grey >= 0);
    BGR_CHECK(c_grey < 0.3);
    /* views that disagree lower the score */
    features(crisp, &f);
    f.disagree = 0.0;
    double agree = bgr_pipeline_confidence(&f);
    f.disagree = 0.2;
    BGR_CHECK(bgr_pipeline_confidence(&f) < agree);
    free(crisp);
    free(soft);
    free(grey);
    /* nothing found: low */
    float *empty = calloc(W * H, sizeof(float));
    features(empty, &f);
    BGR_CHECK(bgr_pipeline_confidence(&f) < 0.2);
    free(empty);

    /* over a grid of features: always in [0, 1], never higher when one
     * badness feature grows or the subject shrinks */
    static const double v[] = {0, 0.01, 0.05, 0.1, 0.3, 0.6, 1, 2, 4};
    size_t nv = sizeof v / sizeof v[0];
    int bad_range = 0, bad_order = 0;
    for (size_t i = 0; i < nv; i++)
        for (size_t j = 0; j < nv; j++)
            for (size_t k = 0; k < nv; k++)
                for (size_t d = 0; d < nv; d++) {
                    struct bgr_matte_features b = {.subject = v[i] / 4,
                                                   .soft = v[j],
                                                   .mid = v[k],
                                                   .border = v[d] / 4,
                                                   .disagree = v[d] / 4};
                    double c = bgr_pipeline_confidence(&b);
                    bad_range += !(c >= 0 && c <= 1);
                    struct bgr_matte_features m = b;
                    m.soft += 0.1;
                    bad_order += bgr_pipeline_confidence(&m) > c;
                    m = b, m.mid += 0.1;
                    bad_order += bgr_pipeline_confidence(&m) > c;
                    m = b, m.border += 0.1;
                    bad_order += bgr_pipeline_confidence(&m) > c;
                    m = b, m.disagree += 0.1;
                    bad_order += bgr_pipeline_confidence(&m) > c;
                    m = b, m.subject *= 0.5;
                    bad_order += bgr_pipeline_confidence(&m) > c;
                }
    BGR_CHECK_EQ_INT(bad_range, 0);
    BGR_CHECK_EQ_INT(bad_order, 0);
}

BGR_TEST(subject_box)
{
    struct bgr_pixels img = synth_two_colours(50, 40, 25);
    uint8_t m[50 * 40] = {0};
    struct bgr_rect r;
    struct bgr_compose_opts co = {0};
    BGR_CHECK(!bgr_image_subject_box(&img, m, &co, &r));
    for (int y = 10; y < 20; y++)
        for (int x = 20; x < 35; x++)
            m[y * 50 + x] = 200;
    m[5 * 50 + 5] = 12; /* under the 5% threshold: not subject */
    BGR_REQUIRE(bgr_image_subject_box(&img, m, &co, &r));
    BGR_CHECK(r.x == 20 && r.y == 10 && r.w == 15 && r.h == 10);
    co.crop = true; /* the cropped image starts at the subject */
    BGR_REQUIRE(bgr_image_subject_box(&img, m, &co, &r));
    BGR_CHECK(r.x == 0 && r.y == 0 && r.w == 15 && r.h == 10);
    co.margin = 4; /* 4 px of margin on each side, clamped to the image */
    BGR_REQUIRE(bgr_image_subject_box(&img, m, &co, &r));
    BGR_CHECK(r.x == 4 && r.y == 4 && r.w == 15 && r.h == 10);
    co.margin = 15;
    BGR_REQUIRE(bgr_image_subject_box(&img, m, &co, &r));
    BGR_CHECK(r.x == 15 && r.y == 10 && r.w == 15 && r.h == 10);
    bgr_pixels_release(&img);
}

BGR_TEST(spearman)
{
    double x[] = {1, 2, 3, 4, 5}, up[] = {10, 20, 30, 40, 50}, down[] = {5, 4, 3, 2, 1};
    double sq[] = {1, 4, 9, 16, 25}, flat[] = {7, 7, 7, 7, 7};
    BGR_CHECK(fabs(bgr_eval_spearman(x, up, 5) - 1) < 1e-12);
    BGR_CHECK(fabs(bgr_eval_spearman(x, sq, 5) - 1) < 1e-12); /* ranks, not values */
    BGR_CHECK(fabs(bgr_eval_spearman(x, down, 5) + 1) < 1e-12);
    BGR_CHECK(bgr_eval_spearman(x, flat, 5) == 0);
    BGR_CHECK(bgr_eval_spearman(x, up, 1) == 0);
    /* ties share their mean rank: x ranks 1.5 1.5 3 4, y 1 2 3 4 */
    double tx[] = {1, 1, 2, 3}, ty[] = {1, 2, 3, 4};
    BGR_CHECK(fabs(bgr_eval_spearman(tx, ty, 4) - 0.9486832980505138) < 1e-9);
}

BGR_TEST_MAIN()
