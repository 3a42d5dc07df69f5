/*
 * pipeline.c - one image through background removal: src/image decodes,
 * prepares the tensor and builds the output; src/infer predicts the matte.
 *
 * Memory per call: the decoded pixels (w*h*3 or 4), the input tensor and
 * output of the model (12 MiB and 4 MiB at 1024x1024), the matte (w*h) and
 * the composed output; refine=full adds one more tensor, an 8 MiB scratch
 * and three more outputs for its zoomed views (refine=auto: only where it
 * runs them). Each is freed as soon as the
 * next stage no longer needs it, so peak memory stays near two full-size
 * images. Nothing is shared between calls, so calls run in parallel;
 * bgr_model_run serialises the model itself.
 */
#include <glib.h>
#include <math.h>
#include <stdlib.h>

#include "image/image.h"
#include "pipeline/pipeline.h"

int bgr_pipeline_global_init(struct bgr_error *err)
{
    return bgr_image_global_init(err);
}

void bgr_result_release(struct bgr_result *res)
{
    if (!res)
        return;
    g_free(res->data); /* allocated by libvips' encoders */
    *res = (struct bgr_result){0};
}

/* The max_resolution box, long side first (0: none). */
static void max_res_box(enum bgr_max_res r, int *box_long, int *box_short)
{
    static const int boxes[][2] = {
        [BGR_MAXRES_ORIGINAL] = {0, 0},
        [BGR_MAXRES_1080P] = {1920, 1080},
        [BGR_MAXRES_720P] = {1280, 720},
        [BGR_MAXRES_480P] = {854, 480},
    };
    *box_long = boxes[r][0];
    *box_short = boxes[r][1];
}

static int check_opts(const struct bgr_output_opts *o, struct bgr_error *err)
{
    if ((unsigned)o->format > BGR_FORMAT_JPEG || (unsigned)o->max_res > BGR_MAXRES_480P)
        return bgr_error_set(err, BGR_EINVALID_PARAMETER, "invalid output options");
    if (o->crop_margin < 0 || o->crop_margin > (o->crop_margin_percent ? 100 : 10000))
        return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                             "crop_margin %d%s is out of range (0 to 10000 px or 0 to 100%%)",
                             o->crop_margin, o->crop_margin_percent ? "%" : " px");
    if (o->quality < 1 || o->quality > 100)
        return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                             "quality %d is not an integer from 1 to 100", o->quality);
    return 0;
}

/* The model's input must be 1x3xHxW and its first output 1x1xHxW. */
static int model_dims(struct bgr_model *model, int *iw, int *ih, int *ow, int *oh,
                      struct bgr_error *err)
{
    struct bgr_shape in = bgr_model_input_shape(model), out = bgr_model_output_shape(model);
    if (in.rank != 4 || in.dims[0] != 1 || in.dims[1] != 3 || in.dims[2] < 1 || in.dims[3] < 1 ||
        in.dims[2] > 8192 || in.dims[3] > 8192 || out.rank != 4 || out.dims[0] != 1 ||
        out.dims[1] != 1 || out.dims[2] < 1 || out.dims[3] < 1 || out.dims[2] > 8192 ||
        out.dims[3] > 8192)
        return bgr_error_set(err, BGR_EMODEL,
                             "the model is not a matting model (input 1x3xHxW, output 1x1xHxW)");
    *ih = (int)in.dims[2];
    *iw = (int)in.dims[3];
    *oh = (int)out.dims[2];
    *ow = (int)out.dims[3];
    return 0;
}

/* Mirrors each row of the `planes` planes of a w x h planar tensor. */
static void mirror_rows(float *t, int planes, int w, int h)
{
    for (size_t r = 0; r < (size_t)planes * (size_t)h; r++) {
        float *row = t + r * (size_t)w;
        for (int a = 0, b = w - 1; a < b; a++, b--) {
            float v = row[a];
            row[a] = row[b];
            row[b] = v;
        }
    }
}

/* Runs the model a second time on the mirrored tensor (changed) and
 * averages the un-mirrored result into output: the first test-time
 * augmentation of refine=full. *disagree: the mean |difference| of the two
 * views over the pixels either calls soft or subject (alpha > 0.05). */
static int predict_mirrored(struct bgr_model *model, float *tensor, size_t in_n, int iw, int ih,
                            float *output, int ow, int oh, double *disagree, struct bgr_error *err)
{
    size_t out_n = (size_t)ow * (size_t)oh;
    float *second = malloc(out_n * sizeof(float));
    if (!second)
        return bgr_error_set(err, BGR_ENOMEM, "out of memory for the model's output");
    mirror_rows(tensor, 3, iw, ih);
    int rc = bgr_model_run(model, tensor, in_n, second, out_n, err);
    if (rc == 0) {
        double sum = 0;
        size_t cnt = 0;
        mirror_rows(second, 1, ow, oh);
        for (size_t i = 0; i < out_n; i++) {
            if (output[i] > 0.05f || second[i] > 0.05f) {
                sum += fabsf(output[i] - second[i]);
                cnt++;
            }
            output[i] = 0.5f * (output[i] + second[i]);
        }
        *disagree = cnt ? sum / (double)cnt : 0.0;
    }
    free(second);
    return rc;
}

/* The zoom-out views of refine=full (docs/QUALITY.md, round 4): the image
 * shrunk to 1/(1 + 2 ZOOM_PAD) of the model's input, centred, its edge
 * pixels replicated into the border. With more room around it the model
 * finds subjects it cuts short at full size (a plant, a mesh, a second
 * toy); 5% found less, 15-20% made the other images worse, reflected or
 * flat borders did not help. */
#define ZOOM_PAD 0.10
/* Where the zoom-out views and the plain ones differ by more than this,
 * one of them found subject that the other called background: keep the
 * larger alpha there instead of halving it. */
#define ZOOM_DISAGREE 0.25f

/* Fills the iw x ih tensor with the image resized into the cw x ch
 * rectangle at (x0, y0) and its edges replicated around it. */
static int zoomed_tensor(const struct bgr_pixels *pix, int iw, int ih, int x0, int y0, int cw,
                         int ch, float *tensor, struct bgr_error *err)
{
    size_t cplane = (size_t)cw * (size_t)ch, plane = (size_t)iw * (size_t)ih;
    float *small = malloc(3 * cplane * sizeof(float));
    if (!small)
        return bgr_error_set(err, BGR_ENOMEM, "out of memory for the model's tensors");
    bgr_image_to_tensor(pix, cw, ch, small);
    for (int c = 0; c < 3; c++) {
        for (int y = 0; y < ih; y++) {
            int sy = y < y0 ? 0 : y - y0 >= ch ? ch - 1 : y - y0;
            const float *src = small + (size_t)c * cplane + (size_t)sy * (size_t)cw;
            float *dst = tensor + (size_t)c * plane + (size_t)y * (size_t)iw;
            for (int x = 0; x < iw; x++) {
                int sx = x < x0 ? 0 : x - x0 >= cw ? cw - 1 : x - x0;
                dst[x] = src[sx];
            }
        }
    }
    free(small);
    return 0;
}

/* Adds to acc (ow x oh) the part of out (ow x oh, for an iw x ih input)
 * that covers the input rectangle (x0, y0, cw, ch), resampled bilinearly
 * (pixel centres, clamped to the rectangle) to the whole ow x oh grid. */
static void add_cropped(const float *out, int ow, int oh, int iw, int ih, int x0, int y0, int cw,
                        int ch, float *acc)
{
    double sx = (double)ow / iw, sy = (double)oh / ih;
    double rx0 = x0 * sx, ry0 = y0 * sy, rw = cw * sx, rh = ch * sy;
    for (int y = 0; y < oh; y++) {
        double fy = ry0 + (y + 0.5) * rh / oh - 0.5;
        fy = fy < ry0 ? ry0 : fy > ry0 + rh - 1 ? ry0 + rh - 1 : fy;
        int y1 = (int)fy, y2 = y1 + 1 < oh ? y1 + 1 : oh - 1;
        double dy = fy - y1;
        const float *r1 = out + (size_t)y1 * (size_t)ow, *r2 = out + (size_t)y2 * (size_t)ow;
        for (int x = 0; x < ow; x++) {
            double fx = rx0 + (x + 0.5) * rw / ow - 0.5;
            fx = fx < rx0 ? rx0 : fx > rx0 + rw - 1 ? rx0 + rw - 1 : fx;
            int x1 = (int)fx, x2 = x1 + 1 < ow ? x1 + 1 : ow - 1;
            double dx = fx - x1;
            double v = (1 - dy) * ((1 - dx) * r1[x1] + dx * r1[x2]) +
                       dy * ((1 - dx) * r2[x1] + dx * r2[x2]);
            acc[(size_t)y * (size_t)ow + (size_t)x] += (float)v;
        }
    }
}

/* Marks (z = -1) every pixel of z that belongs to an 8-connected region of
 * z >= 0.5 sharing no pixel with m >= 0.5, and the soft pixels (0 < z < 0.5)
 * next to no accepted region: the zoomed views may extend a subject the
 * plain views found (a plant's leaves, a mesh) but not invent one of their
 * own (buildings behind a figure, which they do when the scene is shrunk). */
static int attached_subject(const float *m, float *z, int w, int h, struct bgr_error *err)
{
    size_t n = (size_t)w * (size_t)h;
    uint8_t *keep = calloc(n, 1); /* 1: accepted region, 2: region seen */
    size_t *stack = malloc(n * sizeof *stack);
    int rc = 0;
    if (!keep || !stack) {
        rc = bgr_error_set(err, BGR_ENOMEM, "out of memory for the zoomed views");
        goto out;
    }
    for (size_t s0 = 0; s0 < n; s0++) {
        if (keep[s0] || z[s0] < 0.5f)
            continue;
        /* one region: collect it, note whether it touches m's subject */
        size_t top = 0, first = 0, len = 0;
        bool touches = false;
        stack[top++] = s0;
        keep[s0] = 2;
        while (top > first) {
            size_t i = stack[first++];
            len++;
            touches |= m[i] >= 0.5f;
            int x = (int)(i % (size_t)w), y = (int)(i / (size_t)w);
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int xx = x + dx, yy = y + dy;
                    if (xx < 0 || yy < 0 || xx >= w || yy >= h)
                        continue;
                    size_t j = (size_t)yy * (size_t)w + (size_t)xx;
                    if (!keep[j] && z[j] >= 0.5f) {
                        keep[j] = 2;
                        stack[top++] = j;
                    }
                }
        }
        /* stack[0..len) holds the region (breadth-first, never popped) */
        for (size_t k = 0; k < len; k++)
            keep[stack[k]] = touches ? 1 : 3;
    }
    for (size_t i = 0; i < n; i++) {
        if (keep[i] == 3) {
            z[i] = -1.0f;
        } else if (keep[i] == 0 && z[i] > 0.0f) {
            /* a soft pixel: kept when an accepted region is within 2 px */
            int x = (int)(i % (size_t)w), y = (int)(i / (size_t)w);
            bool near = false;
            for (int dy = -2; dy <= 2 && !near; dy++)
                for (int dx = -2; dx <= 2 && !near; dx++) {
                    int xx = x + dx, yy = y + dy;
                    near = xx >= 0 && yy >= 0 && xx < w && yy < h &&
                           keep[(size_t)yy * (size_t)w + (size_t)xx] == 1;
                }
            if (!near)
                z[i] = -1.0f;
        }
    }
out:
    free(keep);
    free(stack);
    return rc;
}

/* Runs the model on the zoomed-out image and (nviews 2) on its mirror image
 * and merges their mean z into output (the mean m of the plain views, changed
 * in place): (m + z) / 2 where they agree within ZOOM_DISAGREE, max(m, z)
 * where they do not. *changed: the mean |m - z| over the pixels either
 * calls soft or subject, before the merge. One or two more model runs. */
static int predict_zoomed(struct bgr_model *model, const struct bgr_pixels *pix, int iw, int ih,
                          float *output, int ow, int oh, int nviews, double *changed,
                          struct bgr_error *err)
{
    size_t in_n = (size_t)3 * (size_t)iw * (size_t)ih, out_n = (size_t)ow * (size_t)oh;
    int cw = (int)lround(iw / (1.0 + 2.0 * ZOOM_PAD));
    int ch = (int)lround(ih / (1.0 + 2.0 * ZOOM_PAD));
    int x0 = (iw - cw) / 2, y0 = (ih - ch) / 2;
    float *tensor = malloc(in_n * sizeof(float));
    float *out = malloc(out_n * sizeof(float));
    float *acc = calloc(out_n, sizeof(float)); /* sum of the two views */
    int rc = 0;
    if (!tensor || !out || !acc) {
        rc = bgr_error_set(err, BGR_ENOMEM, "out of memory for the model's tensors");
        goto out;
    }
    rc = zoomed_tensor(pix, iw, ih, x0, y0, cw, ch, tensor, err);
    if (rc == 0)
        rc = bgr_model_run(model, tensor, in_n, out, out_n, err);
    if (rc)
        goto out;
    add_cropped(out, ow, oh, iw, ih, x0, y0, cw, ch, acc);
    if (nviews == 2) {
        mirror_rows(tensor, 3, iw, ih);
        rc = bgr_model_run(model, tensor, in_n, out, out_n, err);
        if (rc)
            goto out;
        mirror_rows(out, 1, ow, oh);
        add_cropped(out, ow, oh, iw, ih, x0, y0, cw, ch, acc);
        for (size_t i = 0; i < out_n; i++)
            acc[i] /= 2.0f;
    }
    double sum = 0;
    size_t cnt = 0;
    for (size_t i = 0; i < out_n; i++)
        if (output[i] > 0.05f || acc[i] > 0.05f) {
            sum += fabsf(output[i] - acc[i]);
            cnt++;
        }
    *changed = cnt ? sum / (double)cnt : 0.0;
    if ((rc = attached_subject(output, acc, ow, oh, err)))
        goto out;
    for (size_t i = 0; i < out_n; i++) {
        float m = output[i], z = acc[i];
        if (z < 0) /* subject only the zoomed views see, not touching the plain views' */
            continue;
        output[i] = fabsf(z - m) <= ZOOM_DISAGREE ? (m + z) / 2.0f : fmaxf(m, z);
    }
out:
    free(tensor);
    free(out);
    free(acc);
    return rc;
}

/* Predicts the w x h matte of pix into matte (caller's). mode FULL merges
 * the model on pix, on its mirror image and on both zoomed out (four model
 * runs); AUTO does that only when the first run's features ask for it.
 * Fills info's refine (FULL when the views ran, else mode with AUTO read as
 * FAST), views, plain, final and confidence. */
static int predict(struct bgr_model *model, const struct bgr_pixels *pix, enum bgr_refine mode,
                   uint8_t *matte, struct bgr_timings *tm, struct bgr_matte_info *info,
                   struct bgr_error *err)
{
    int iw = 0, ih = 0, ow = 0, oh = 0;
    float *tensor = NULL, *output = NULL;
    int rc = model_dims(model, &iw, &ih, &ow, &oh, err);
    if (rc)
        return rc;
    size_t in_n = (size_t)3 * (size_t)iw * (size_t)ih, out_n = (size_t)ow * (size_t)oh;
    tensor = malloc(in_n * sizeof(float));
    output = malloc(out_n * sizeof(float));
    if (!tensor || !output) {
        rc = bgr_error_set(err, BGR_ENOMEM, "out of memory for the model's tensors");
        goto out;
    }
    double t0 = bgr_now_sec();
    bgr_image_to_tensor(pix, iw, ih, tensor);
    double t1 = bgr_now_sec();
    rc = bgr_model_run(model, tensor, in_n, output, out_n, err);
    if (rc)
        goto out;
    bgr_pipeline_matte_features(output, ow, oh, &info->plain);
    bool tta = mode == BGR_REFINE_FULL ||
               (mode == BGR_REFINE_AUTO && bgr_pipeline_auto_wants_views(&info->plain));
    /* auto's extra views are the two zoomed ones, without full's mirror of
     * the plain view: on the dev images auto picks, that mirror changed SAD
     * by under 1% for a third of the cost (docs/QUALITY.md, "refine=auto").
     * The agreement term of the score is then plain view against zoomed. */
    bool mirror = tta && mode == BGR_REFINE_FULL;
    double disagree = -1.0, changed = -1.0;
    if (mirror)
        rc = predict_mirrored(model, tensor, in_n, iw, ih, output, ow, oh, &disagree, err);
    if (rc)
        goto out;
    BGR_FREE_AND_NULL(tensor);
    if (tta)
        rc = predict_zoomed(model, pix, iw, ih, output, ow, oh, 2, &changed, err);
    if (rc)
        goto out;
    if (tta && !mirror)
        disagree = changed;
    info->refine = tta ? BGR_REFINE_FULL : mode == BGR_REFINE_AUTO ? BGR_REFINE_FAST : mode;
    info->views = 1 + (tta ? 2 : 0) + (mirror ? 1 : 0);
    if (tta)
        bgr_pipeline_matte_features(output, ow, oh, &info->final);
    else
        info->final = info->plain;
    info->final.disagree = disagree;
    info->confidence = bgr_pipeline_confidence(&info->final);
    double t2 = bgr_now_sec();
    rc = bgr_image_matte_from_output(output, ow, oh, matte, pix->width, pix->height, err);
    tm->preprocess_ms = (t1 - t0) * 1e3;
    tm->infer_ms = (t2 - t1) * 1e3;
    tm->postprocess_ms = (bgr_now_sec() - t2) * 1e3;
out:
    free(tensor);
    free(output);
    return rc;
}

int bgr_pipeline_matte_ex(struct bgr_model *model, struct bgr_pixels *pix,
                          const struct bgr_output_opts *opts, uint8_t *matte,
                          struct bgr_timings *timings, struct bgr_matte_info *info,
                          struct bgr_error *err)
{
    BGR_ASSERT(model && pix && opts && matte);
    struct bgr_timings tm = {0};
    struct bgr_matte_info mi = {0};
    if ((unsigned)opts->refine > BGR_REFINE_AUTO)
        return bgr_error_set(err, BGR_EINVALID_PARAMETER, "invalid refine option");
    int rc = predict(model, pix, opts->refine, matte, &tm, &mi, err);
    if (rc)
        return rc;
    double t0 = bgr_now_sec();
    if (mi.refine == BGR_REFINE_FAST)
        rc = bgr_image_refine_matte(pix, matte, err);
    else if (mi.refine == BGR_REFINE_FULL)
        rc = bgr_image_refine_matte_full(pix, matte, err);
    if (rc == 0 && opts->decontaminate && !opts->mask_only) /* colours unused for a mask */
        rc = bgr_image_decontaminate(pix, matte, err);
    if (rc)
        return rc;
    if (timings) {
        timings->preprocess_ms = tm.preprocess_ms;
        timings->infer_ms = tm.infer_ms;
        timings->postprocess_ms = tm.postprocess_ms;
        timings->refine_ms = (bgr_now_sec() - t0) * 1e3;
    }
    if (info)
        *info = mi;
    return 0;
}

int bgr_pipeline_matte(struct bgr_model *model, struct bgr_pixels *pix,
                       const struct bgr_output_opts *opts, uint8_t *matte,
                       struct bgr_timings *timings, struct bgr_error *err)
{
    return bgr_pipeline_matte_ex(model, pix, opts, matte, timings, NULL, err);
}

/* The subject's box in the pixels of the encoded output: the composed
 * image's box scaled by the encoder's resize. */
static bool output_subject(const struct bgr_pixels *pix, const uint8_t *matte,
                           const struct bgr_compose_opts *co, int cw, int ch, int ew, int eh,
                           struct bgr_box *box)
{
    struct bgr_rect r;
    if (!bgr_image_subject_box(pix, matte, co, &r))
        return false;
    double sx = (double)ew / cw, sy = (double)eh / ch;
    int x0 = (int)floor(r.x * sx), y0 = (int)floor(r.y * sy);
    int x1 = (int)ceil((r.x + r.w) * sx), y1 = (int)ceil((r.y + r.h) * sy);
    x1 = x1 > ew ? ew : x1;
    y1 = y1 > eh ? eh : y1;
    *box = (struct bgr_box){x0, y0, x1 - x0 > 0 ? x1 - x0 : 1, y1 - y0 > 0 ? y1 - y0 : 1};
    return true;
}

int bgr_pipeline_process(struct bgr_model *model, const void *data, size_t len,
                         const struct bgr_decode_limits *lim, const struct bgr_output_opts *opts,
                         struct bgr_result *res, struct bgr_timings *timings, struct bgr_error *err)
{
    BGR_ASSERT(model && opts && res);
    struct bgr_timings tm = {0};
    struct bgr_pixels pix = {0}, outpix = {0};
    struct bgr_encoded enc = {0};
    uint8_t *matte = NULL;
    double t0 = bgr_now_sec();

    int rc = check_opts(opts, err);
    if (rc)
        goto out;
    struct bgr_image_limits il = {lim ? lim->max_pixels : 0, lim ? lim->max_side : 0,
                                  lim ? lim->max_jpeg_scans : 0};
    struct bgr_image_info info;
    rc = bgr_image_decode(data, len, &il, &pix, &info, err);
    if (rc)
        goto out;
    tm.decode_ms = (bgr_now_sec() - t0) * 1e3;

    matte = malloc((size_t)pix.width * (size_t)pix.height);
    if (!matte) {
        rc = bgr_error_set(err, BGR_ENOMEM, "out of memory for a %dx%d matte", pix.width,
                           pix.height);
        goto out;
    }
    struct bgr_matte_info mi = {0};
    rc = bgr_pipeline_matte_ex(model, &pix, opts, matte, &tm, &mi, err);
    if (rc)
        goto out;

    double t1 = bgr_now_sec();
    struct bgr_compose_opts co = {
        .crop = opts->crop,
        .margin = opts->crop_margin,
        .margin_percent = opts->crop_margin_percent,
        .mask_only = opts->mask_only,
        .flatten = opts->has_bg_color,
        .bg = {opts->bg_color.r, opts->bg_color.g, opts->bg_color.b, opts->bg_color.a},
        .opaque = opts->format == BGR_FORMAT_JPEG && !opts->mask_only,
    };
    rc = bgr_image_compose(&pix, matte, &co, &outpix, err);
    if (rc)
        goto out;
    int box_long, box_short, ew, eh;
    max_res_box(opts->max_res, &box_long, &box_short);
    bgr_image_fit(outpix.width, outpix.height, box_long, box_short, &ew, &eh);
    struct bgr_box subject = {0};
    bool has_subject =
        output_subject(&pix, matte, &co, outpix.width, outpix.height, ew, eh, &subject);
    bgr_pixels_release(&pix);
    BGR_FREE_AND_NULL(matte);
    tm.postprocess_ms += (bgr_now_sec() - t1) * 1e3;

    double t2 = bgr_now_sec();
    /* The mask is always a grayscale PNG, whatever format was asked. */
    enum bgr_format fmt = opts->mask_only ? BGR_FORMAT_PNG : opts->format;
    static const enum bgr_image_codec codecs[] = {
        [BGR_FORMAT_PNG] = BGR_IMAGE_PNG,
        [BGR_FORMAT_WEBP] = BGR_IMAGE_WEBP,
        [BGR_FORMAT_JPEG] = BGR_IMAGE_JPEG,
    };
    struct bgr_encode_opts eo = {
        .codec = codecs[fmt], .quality = opts->quality, .width = ew, .height = eh};
    rc = bgr_image_encode(&outpix, &eo, &enc, err);
    if (rc)
        goto out;
    tm.encode_ms = (bgr_now_sec() - t2) * 1e3;

    static const char *const mimes[] = {"image/png", "image/webp", "image/jpeg"};
    static const char *const exts[] = {"png", "webp", "jpg"};
    *res = (struct bgr_result){.data = enc.data,
                               .len = enc.len,
                               .format = fmt,
                               .width = enc.width,
                               .height = enc.height,
                               .original_width = info.width,
                               .original_height = info.height,
                               .mime = mimes[fmt],
                               .ext = exts[fmt],
                               .confidence = mi.confidence,
                               .refine = mi.refine,
                               .views = mi.views,
                               .has_subject = has_subject,
                               .subject = subject};
    enc = (struct bgr_encoded){0};
    tm.total_ms = (bgr_now_sec() - t0) * 1e3;
    if (timings)
        *timings = tm;
out:
    bgr_encoded_release(&enc);
    bgr_pixels_release(&outpix);
    bgr_pixels_release(&pix);
    free(matte);
    return rc;
}
