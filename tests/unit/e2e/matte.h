/*
 * matte.h - helpers shared by the end-to-end test and the parity tool: run
 * the real pipeline for a matte, decode a grayscale PNG, compare two mattes.
 */
#ifndef BGR_TEST_E2E_MATTE_H
#define BGR_TEST_E2E_MATTE_H

#include <stddef.h>
#include <stdint.h>

#include "infer/infer.h"

/* A w x h 8-bit matte; px is owned, release with e2e_matte_release. */
struct e2e_matte {
    uint8_t *px;
    int w, h;
};

/* Loads the model `bgremover remove` would (the default model in the
 * default directory, or model_arg as --model takes it) with the given backend
 * at fp32. Prints why and returns NULL when it cannot, e.g. not installed. */
struct bgr_model *e2e_load_model(const char *model_arg, enum bgr_backend backend);
/* The same at the given precision (bf16 fails where the CPU has none). */
struct bgr_model *e2e_load_model_prec(const char *model_arg, enum bgr_backend backend,
                                      enum bgr_precision prec);

/* Runs the photo at path through bgr_pipeline_process with mask_only and
 * decodes the PNG it writes. 0 or -1 (reason printed). ms: pipeline time. */
int e2e_predict(struct bgr_model *model, const char *path, struct e2e_matte *out, double *ms);

/* Decodes an image file's first band as 8 bits. 0 or -1 (reason printed). */
int e2e_load_gray(const char *path, struct e2e_matte *out);

void e2e_matte_release(struct e2e_matte *m);

/* MAE on [0,1] and IoU of (alpha >= 128) of two mattes of equal size. */
void e2e_compare(const struct e2e_matte *a, const struct e2e_matte *b, double *mae, double *iou);

#endif
