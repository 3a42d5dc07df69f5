/*
 * matte.c - see matte.h. Decoding goes through libvips directly (not our
 * image module) so the comparison does not trust the code under test.
 */
#include "matte.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>

#include "models/models.h"
#include "pipeline/pipeline.h"

struct bgr_model *e2e_load_model(const char *model_arg, enum bgr_backend backend)
{
    return e2e_load_model_prec(model_arg, backend, BGR_PREC_FP32);
}

struct bgr_model *e2e_load_model_prec(const char *model_arg, enum bgr_backend backend,
                                      enum bgr_precision prec)
{
    struct bgr_model_opts mo = {.backend = backend, .precision = prec};
    struct bgr_model *m = NULL;
    struct bgr_error err;
    char *path = NULL;
    double t0;

    bgr_error_clear(&err);
    if (bgr_models_resolve(model_arg, NULL, &path, &err) != 0) {
        fprintf(stderr,
                "  cannot find the model: %s\n  (`make test` installs it; or run "
                "`build/bgremover models install`)\n",
                err.msg);
        return NULL;
    }
    t0 = bgr_now_sec();
    if (bgr_model_load_file(path, &mo, &m, &err) != 0) {
        fprintf(stderr, "  cannot load %s: %s\n", path, err.msg);
        free(path);
        return NULL;
    }
    fprintf(stderr, "  model %s loaded in %.0f ms (%s, %s)\n", path, (bgr_now_sec() - t0) * 1e3,
            backend == BGR_BACKEND_REF ? "ref" : "dnnl", bgr_model_precision_name(m));
    free(path);
    return m;
}

static int gray_from_image(VipsImage *img, struct e2e_matte *out, const char *what)
{
    VipsImage *band = NULL, *u8 = NULL;
    size_t len = 0;
    int rc = -1;

    if (vips_extract_band(img, &band, 0, NULL) || vips_cast_uchar(band, &u8, NULL)) {
        fprintf(stderr, "  %s: %s\n", what, vips_error_buffer());
        vips_error_clear();
        goto out;
    }
    out->px = vips_image_write_to_memory(u8, &len);
    out->w = vips_image_get_width(u8);
    out->h = vips_image_get_height(u8);
    if (!out->px || len != (size_t)out->w * (size_t)out->h) {
        fprintf(stderr, "  %s: cannot read pixels\n", what);
        g_free(out->px);
        out->px = NULL;
        goto out;
    }
    rc = 0;
out:
    if (band)
        g_object_unref(band);
    if (u8)
        g_object_unref(u8);
    return rc;
}

void e2e_matte_release(struct e2e_matte *m)
{
    g_free(m->px); /* from vips_image_write_to_memory */
    m->px = NULL;
}

int e2e_load_gray(const char *path, struct e2e_matte *out)
{
    VipsImage *img;
    int rc;
    if (bgr_pipeline_global_init(NULL) != 0)
        return -1;
    img = vips_image_new_from_file(path, NULL);
    if (!img) {
        fprintf(stderr, "  cannot read %s: %s\n", path, vips_error_buffer());
        vips_error_clear();
        return -1;
    }
    rc = gray_from_image(img, out, path);
    g_object_unref(img);
    return rc;
}

int e2e_predict(struct bgr_model *model, const char *path, struct e2e_matte *out, double *ms)
{
    struct bgr_output_opts opts;
    struct bgr_result res;
    struct bgr_timings t;
    struct bgr_error err;
    struct bgr_buf in;
    VipsImage *img;
    int rc = -1;

    bgr_error_clear(&err);
    bgr_output_opts_init(&opts);
    opts.mask_only = true;
    /* Parity is about the model's raw matte: no refinement, whatever the
     * defaults are (docs/QUALITY.md). */
    opts.refine = BGR_REFINE_NONE;
    opts.decontaminate = false;
    memset(&res, 0, sizeof res);
    if (bgr_file_read(path, 0, &in, &err) != 0) {
        fprintf(stderr, "  %s (install python3-skimage: scripts/setup --test)\n", err.msg);
        return -1;
    }
    if (bgr_pipeline_process(model, in.data, in.len, NULL, &opts, &res, &t, &err) != 0) {
        fprintf(stderr, "  %s: %s\n", path, err.msg);
        goto out;
    }
    if (ms)
        *ms = t.total_ms;
    if (res.len < 8 || memcmp(res.data, "\x89PNG", 4) != 0) {
        fprintf(stderr, "  %s: the mask is not a PNG\n", path);
        goto out;
    }
    img = vips_image_new_from_buffer(res.data, res.len, "", NULL);
    if (!img) {
        fprintf(stderr, "  %s: cannot decode the mask: %s\n", path, vips_error_buffer());
        vips_error_clear();
        goto out;
    }
    if (vips_image_get_bands(img) != 1)
        fprintf(stderr, "  %s: the mask has %d bands, expected 1\n", path,
                vips_image_get_bands(img));
    else
        rc = gray_from_image(img, out, path);
    g_object_unref(img);
out:
    bgr_buf_release(&in);
    bgr_result_release(&res);
    return rc;
}

void e2e_compare(const struct e2e_matte *a, const struct e2e_matte *b, double *mae, double *iou)
{
    size_t n = (size_t)a->w * (size_t)a->h, inter = 0, uni = 0;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        int x = a->px[i], y = b->px[i];
        sum += x > y ? x - y : y - x;
        inter += x >= 128 && y >= 128;
        uni += x >= 128 || y >= 128;
    }
    *mae = n ? sum / 255.0 / (double)n : 0;
    *iou = uni ? (double)inter / (double)uni : 1.0; /* both empty: identical */
}
