/*
 * test_e2e.c - the whole pipeline on real photos with the real medium model
 * (oneDNN, fp32), against the mattes the reference runtime produced
 * (tests/data/golden, made by scripts/make-golden). Bar from the issue: per
 * image MAE <= 0.002 and IoU at 0.5 >= 0.995. The photos are Debian's
 * python3-skimage samples, so a fresh machine can get them.
 *
 * bf16 (AUTO where the CPU has native bf16): the same photos, against the
 * golden mattes with the bf16 bar (MAE <= 0.003) and against our own fp32
 * matte (MAE <= 0.001: the rounding bf16 adds, whatever the pipeline does
 * around the model). Checked only where the CPU computes bf16 natively.
 *
 * The model is found as `bgremover remove` finds it; if it is not installed
 * the tests fail and say to run `bgremover models install` (`make test` does).
 */
#include <stdio.h>
#include <stdlib.h>

#include "matte.h"
#include "pipeline/pipeline.h"
/* The tests share the models loaded by the first of them (two loads, not
 * twelve): run them in one process, not a child each. */
#define BGR_TEST_FORK 0
#include "runner.h"

#define PHOTOS "/usr/lib/python3/dist-packages/skimage/data"
#define MAX_MAE 0.002
#define MIN_IOU 0.995
#define MAX_MAE_BF16 0.003
/* bf16 against our own fp32 matte: measured at most 0.00044 on these photos;
 * rounding the output itself to bf16 (the last conv, Resize and Sigmoid run
 * in fp32 for this) would put it near 0.0018 */
#define MAX_MAE_BF16_VS_FP32 0.001

static struct bgr_model *model, *model16;
static int model_tried, model16_tried;

static void check_photo(const char *name)
{
    struct e2e_matte ours = {0}, gold = {0};
    char photo[512], golden[512];
    double mae = 1, iou = 0, ms = 0;

    if (!model_tried) {
        model_tried = 1;
        model = e2e_load_model(NULL, BGR_BACKEND_DNNL);
    }
    BGR_REQUIRE(model != NULL);
    snprintf(photo, sizeof photo, "%s/%s.png", PHOTOS, name);
    snprintf(golden, sizeof golden, "%s/%s.png", BGR_GOLDEN_DIR, name);
    BGR_REQUIRE(e2e_load_gray(golden, &gold) == 0);
    BGR_REQUIRE(e2e_predict(model, photo, &ours, &ms) == 0);
    BGR_CHECK_EQ_INT(ours.w, gold.w);
    BGR_CHECK_EQ_INT(ours.h, gold.h);
    if (ours.w == gold.w && ours.h == gold.h) {
        e2e_compare(&ours, &gold, &mae, &iou);
        fprintf(stderr, "  %-16s %4dx%-4d MAE %.6f  IoU %.6f  (%.0f ms)\n", name, ours.w, ours.h,
                mae, iou, ms);
        BGR_CHECK(mae <= MAX_MAE);
        BGR_CHECK(iou >= MIN_IOU);
    }
    e2e_matte_release(&ours);
    e2e_matte_release(&gold);
}

static void check_bf16(const char *name)
{
    struct e2e_matte ours = {0}, fp = {0}, gold = {0};
    char photo[512], golden[512];
    double mae = 1, iou = 0, mae32 = 1, iou32 = 0, ms = 0;

    if (bgr_precision_auto() != BGR_PREC_BF16) {
        fprintf(stderr, "  no native bf16 on this CPU: not checked\n");
        return;
    }
    if (!model_tried) {
        model_tried = 1;
        model = e2e_load_model(NULL, BGR_BACKEND_DNNL);
    }
    if (!model16_tried) {
        model16_tried = 1;
        model16 = e2e_load_model_prec(NULL, BGR_BACKEND_DNNL, BGR_PREC_BF16);
    }
    BGR_REQUIRE(model != NULL && model16 != NULL);
    snprintf(photo, sizeof photo, "%s/%s.png", PHOTOS, name);
    snprintf(golden, sizeof golden, "%s/%s.png", BGR_GOLDEN_DIR, name);
    BGR_REQUIRE(e2e_load_gray(golden, &gold) == 0);
    BGR_REQUIRE(e2e_predict(model16, photo, &ours, &ms) == 0);
    BGR_REQUIRE(e2e_predict(model, photo, &fp, NULL) == 0);
    BGR_REQUIRE(ours.w == gold.w && ours.h == gold.h && ours.w == fp.w && ours.h == fp.h);
    e2e_compare(&ours, &gold, &mae, &iou);
    e2e_compare(&ours, &fp, &mae32, &iou32);
    fprintf(stderr, "  %-16s bf16: golden MAE %.6f IoU %.6f, fp32 MAE %.6f IoU %.6f (%.0f ms)\n",
            name, mae, iou, mae32, iou32, ms);
    BGR_CHECK(mae <= MAX_MAE_BF16);
    BGR_CHECK(iou >= MIN_IOU);
    BGR_CHECK(mae32 <= MAX_MAE_BF16_VS_FP32);
    e2e_matte_release(&ours);
    e2e_matte_release(&fp);
    e2e_matte_release(&gold);
}

BGR_TEST(bf16_astronaut)
{
    check_bf16("astronaut");
}
BGR_TEST(bf16_chelsea)
{
    check_bf16("chelsea");
}
BGR_TEST(bf16_coffee)
{
    check_bf16("coffee");
}
BGR_TEST(bf16_motorcycle_left)
{
    check_bf16("motorcycle_left");
}

BGR_TEST(astronaut)
{
    check_photo("astronaut");
}
BGR_TEST(chelsea)
{
    check_photo("chelsea");
}
BGR_TEST(coffee)
{
    check_photo("coffee");
}
BGR_TEST(motorcycle_left)
{
    check_photo("motorcycle_left");
}

/* Frees the model after the last test so leak checkers see a clean exit. */
__attribute__((destructor)) static void free_model(void)
{
    bgr_model_free(model);
    bgr_model_free(model16);
}

BGR_TEST_MAIN()
