/*
 * test_refine.c - matte refinement and colour decontamination on synthetic
 * images whose right answer is known, the new option parsers, and the crop
 * margin.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"
#include "image/image.h"
#include "pipeline/pipeline.h"
#include "runner.h"
#include "synth_image.h"

static double sad_vs(const uint8_t *a, const uint8_t *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += abs(a[i] - b[i]) / 255.0;
    return s;
}

/* A soft edge over a colour edge gets sharper where the colours change:
 * a jump appears at the colour edge and the matte is closer to the true
 * (hard) one. (A guided filter aligns edges only within its window: it
 * does not move an edge that is off by more than its radius.) */
static void check_sharpens(int w, int h, int edge, double width, double gain)
{
    struct bgr_error err;
    struct bgr_pixels img = synth_two_colours(w, h, edge);
    uint8_t *m = synth_ramp(w, h, edge, width), *truth = synth_ramp(w, h, edge, 0.001);
    size_t n = (size_t)w * (size_t)h, row = (size_t)(h / 2) * (size_t)w;
    double before = sad_vs(m, truth, n);
    int jump_before = m[row + (size_t)edge - 1] - m[row + (size_t)edge];
    BGR_REQUIRE(bgr_image_refine_matte(&img, m, &err) == 0);
    int jump_after = m[row + (size_t)edge - 1] - m[row + (size_t)edge];
    BGR_CHECK(sad_vs(m, truth, n) < gain * before);
    BGR_CHECK(jump_after >= 3 * jump_before);
    /* far from the edge: exactly solid and exactly clear */
    BGR_CHECK_EQ_INT(m[row + 2], 255);
    BGR_CHECK_EQ_INT(m[row + (size_t)w - 3], 0);
    free(m);
    free(truth);
    bgr_pixels_release(&img);
}

BGR_TEST(refine_sharpens_at_colour_edge)
{
    check_sharpens(160, 120, 80, 12, 0.8);
}

/* Mid-grey over a solid subject (the model's commonest error) becomes
 * opaque inside, and a constant matte stays constant. */
BGR_TEST(refine_snaps_confident_interior)
{
    struct bgr_error err;
    int w = 120, h = 90;
    struct bgr_pixels img = synth_two_colours(w, h, w); /* all red, some texture below */
    for (size_t i = 0; i < (size_t)w * (size_t)h; i++)
        img.data[i * 3 + 1] = (uint8_t)(30 + (i * 7919) % 40);
    uint8_t *m = malloc((size_t)w * (size_t)h);
    memset(m, 170, (size_t)w * (size_t)h); /* 0.67 everywhere */
    BGR_REQUIRE(bgr_image_refine_matte(&img, m, &err) == 0);
    BGR_CHECK_EQ_INT(m[45 * w + 60], 255);
    BGR_CHECK_EQ_INT(m[0], 255);
    memset(m, 0, (size_t)w * (size_t)h);
    BGR_REQUIRE(bgr_image_refine_matte(&img, m, &err) == 0);
    int maxv = 0;
    for (size_t i = 0; i < (size_t)w * (size_t)h; i++)
        maxv = m[i] > maxv ? m[i] : maxv;
    BGR_CHECK_EQ_INT(maxv, 0);
    free(m);
    bgr_pixels_release(&img);
}

/* A crisp model edge whose colour edge lies 2 px further out (a halo of
 * subject colour in the background, a shadow): the colour fit alone would
 * spill alpha over those pixels; the pixels the model calls background
 * must stay exactly clear, and the subject side is untouched. */
BGR_TEST(refine_no_spill_past_crisp_edge)
{
    struct bgr_error err;
    int w = 160, h = 120, edge = 80;
    struct bgr_pixels img = synth_two_colours(w, h, edge + 2);
    uint8_t *m = synth_ramp(w, h, edge + 0.25, 1.0); /* one soft px, at edge */
    BGR_REQUIRE(bgr_image_refine_matte(&img, m, &err) == 0);
    int spill = 0;
    for (int y = 0; y < h; y++)
        for (int x = edge + 1; x < w; x++)
            spill = m[y * w + x] > spill ? m[y * w + x] : spill;
    BGR_CHECK_EQ_INT(spill, 0);
    BGR_CHECK_EQ_INT(m[(h / 2) * w + edge - 3], 255);
    free(m);
    bgr_pixels_release(&img);
}

/* Larger than the grid (the subsampled, interpolated path): the same. */
BGR_TEST(refine_large_image_uses_grid)
{
    check_sharpens(1600, 900, 800, 60, 0.8);
}

/* Edge pixels composited from red over green get their red back. The
 * edge is 8 px wide, as the model's are, in a 400 px image (the large
 * window, 20 px, reaches solid colour on both sides). */
BGR_TEST(decontaminate_recovers_foreground)
{
    struct bgr_error err;
    int w = 400, h = 100;
    struct bgr_pixels img = {0};
    BGR_REQUIRE(bgr_pixels_alloc(&img, w, h, 3, &err) == 0);
    uint8_t *m = synth_ramp(w, h, 200, 8);
    const double F[3] = {200, 40, 30}, B[3] = {20, 210, 40};
    for (int i = 0; i < w * h; i++) {
        double a = m[i] / 255.0;
        for (int c = 0; c < 3; c++)
            img.data[i * 3 + c] = (uint8_t)(a * F[c] + (1 - a) * B[c] + 0.5);
    }
    uint8_t opaque[3];
    memcpy(opaque, img.data + (50 * w + 5) * 3, 3);
    double before = 0, after = 0;
    int count = 0;
    for (int i = 0; i < w * h; i++)
        if (m[i] > 25 && m[i] < 230)
            for (int c = 0; c < 3; c++)
                before += fabs(img.data[i * 3 + c] - F[c]);
    BGR_REQUIRE(bgr_image_decontaminate(&img, m, &err) == 0);
    for (int i = 0; i < w * h; i++)
        if (m[i] > 25 && m[i] < 230) {
            for (int c = 0; c < 3; c++)
                after += fabs(img.data[i * 3 + c] - F[c]);
            count++;
        }
    BGR_CHECK(count > 0);
    BGR_CHECK(after < 0.2 * before); /* the photo's own colours: 1.0 */
    BGR_CHECK(memcmp(opaque, img.data + (50 * w + 5) * 3, 3) == 0); /* untouched */
    free(m);
    bgr_pixels_release(&img);
}

/* Degenerate sizes (1 px wide or high, grids of one cell) run and keep
 * constant mattes constant. */
BGR_TEST(tiny_images)
{
    static const int sizes[][2] = {{1, 1}, {2, 1}, {1, 3}, {5, 2}, {3000, 1}, {1, 700}};
    struct bgr_error err;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int w = sizes[k][0], h = sizes[k][1];
        struct bgr_pixels img = synth_two_colours(w, h, w / 2);
        uint8_t *m = malloc((size_t)w * (size_t)h);
        memset(m, 255, (size_t)w * (size_t)h);
        BGR_CHECK(bgr_image_refine_matte(&img, m, &err) == 0);
        BGR_CHECK(bgr_image_decontaminate(&img, m, &err) == 0);
        int bad = 0;
        for (size_t i = 0; i < (size_t)w * (size_t)h; i++)
            bad += m[i] != 255;
        BGR_CHECK_EQ_INT(bad, 0);
        free(m);
        bgr_pixels_release(&img);
    }
}

BGR_TEST(parsers)
{
    struct bgr_error err;
    enum bgr_refine r;
    bool b, mask, pct;
    int v;
    BGR_CHECK(bgr_parse_refine("none", &r, &err) == 0 && r == BGR_REFINE_NONE);
    BGR_CHECK(bgr_parse_refine("FAST", &r, &err) == 0 && r == BGR_REFINE_FAST);
    BGR_CHECK(bgr_parse_refine("full", &r, &err) == 0 && r == BGR_REFINE_FULL);
    BGR_CHECK(bgr_parse_refine("best", &r, &err) == BGR_EINVALID_PARAMETER);
    BGR_CHECK(strstr(err.msg, "auto, none, fast or full") != NULL);
    BGR_CHECK(bgr_parse_refine(NULL, &r, &err) == BGR_EINVALID_PARAMETER);
    BGR_CHECK_STR(bgr_refine_name(BGR_REFINE_FULL), "full");

    BGR_CHECK(bgr_parse_bool("true", "decontaminate", &b, &err) == 0 && b);
    BGR_CHECK(bgr_parse_bool("0", "decontaminate", &b, &err) == 0 && !b);
    BGR_CHECK(bgr_parse_bool("False", "decontaminate", &b, &err) == 0 && !b);
    BGR_CHECK(bgr_parse_bool("maybe", "decontaminate", &b, &err) == BGR_EINVALID_PARAMETER);
    BGR_CHECK(strstr(err.msg, "decontaminate") != NULL);

    BGR_CHECK(bgr_parse_output_type("mask", &mask, &err) == 0 && mask);
    BGR_CHECK(bgr_parse_output_type("cutout", &mask, &err) == 0 && !mask);
    BGR_CHECK(bgr_parse_output_type("alpha", &mask, &err) == BGR_EINVALID_PARAMETER);

    BGR_CHECK(bgr_parse_crop_margin("20", &v, &pct, &err) == 0 && v == 20 && !pct);
    BGR_CHECK(bgr_parse_crop_margin("20px", &v, &pct, &err) == 0 && v == 20 && !pct);
    BGR_CHECK(bgr_parse_crop_margin("10%", &v, &pct, &err) == 0 && v == 10 && pct);
    BGR_CHECK(bgr_parse_crop_margin("0", &v, &pct, &err) == 0 && v == 0);
    BGR_CHECK(bgr_parse_crop_margin("10000px", &v, &pct, &err) == 0 && v == 10000);
    const char *bad[] = {
        "", "px", "%", "-5", "10001", "101%", "5 px", "5em", "1e3", "10%%", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        BGR_CHECK(bgr_parse_crop_margin(bad[i], &v, &pct, &err) == BGR_EINVALID_PARAMETER);
    BGR_CHECK(bgr_parse_crop_margin(NULL, &v, &pct, &err) == BGR_EINVALID_PARAMETER);

    struct bgr_output_opts o;
    bgr_output_opts_init(&o);
    BGR_CHECK(o.refine == BGR_REFINE_AUTO && o.decontaminate && o.crop_margin == 0);
    BGR_CHECK(bgr_parse_refine("Auto", &r, &err) == 0 && r == BGR_REFINE_AUTO);
    BGR_CHECK_STR(bgr_refine_name(BGR_REFINE_AUTO), "auto");
    /* every name round-trips through the table */
    for (int k = BGR_REFINE_NONE; k <= BGR_REFINE_AUTO; k++)
        BGR_CHECK(bgr_parse_refine(bgr_refine_name((enum bgr_refine)k), &r, &err) == 0 &&
                  (int)r == k);
}

/* A 10x10 subject at (20, 20) in a 50x50 image. */
static int crop_size(int margin, bool pct, int *ow, int *oh)
{
    struct bgr_error err;
    struct bgr_pixels img = synth_two_colours(50, 50, 25), out = {0};
    uint8_t m[50 * 50] = {0};
    for (int y = 20; y < 30; y++)
        for (int x = 20; x < 30; x++)
            m[y * 50 + x] = 255;
    struct bgr_compose_opts co = {.crop = true, .margin = margin, .margin_percent = pct};
    int rc = bgr_image_compose(&img, m, &co, &out, &err);
    *ow = out.width;
    *oh = out.height;
    bgr_pixels_release(&out);
    bgr_pixels_release(&img);
    return rc;
}

BGR_TEST(crop_margin)
{
    int w, h;
    BGR_REQUIRE(crop_size(0, false, &w, &h) == 0);
    BGR_CHECK(w == 10 && h == 10);
    BGR_REQUIRE(crop_size(5, false, &w, &h) == 0);
    BGR_CHECK(w == 20 && h == 20);
    BGR_REQUIRE(crop_size(10, true, &w, &h) == 0); /* 10% of 10 px = 1 px */
    BGR_CHECK(w == 12 && h == 12);
    BGR_REQUIRE(crop_size(25, false, &w, &h) == 0); /* clamped to the image */
    BGR_CHECK(w == 50 && h == 50);
    BGR_REQUIRE(crop_size(100, true, &w, &h) == 0); /* 10 px each side */
    BGR_CHECK(w == 30 && h == 30);
}

BGR_TEST_MAIN()
