/*
 * process.c - the default process function of the jobs: the real pipeline.
 * Kept apart so tests that inject their own function need not run a model.
 */
#include "jobs/jobs_int.h"

int bgr_jobs_pipeline_process(void *ctx, const void *data, size_t len,
                              const struct bgr_decode_limits *lim,
                              const struct bgr_output_opts *opts, struct bgr_result *res,
                              struct bgr_error *err)
{
    struct bgr_model *model = ctx;
    return bgr_pipeline_process(model, data, len, lim, opts, res, NULL, err);
}
