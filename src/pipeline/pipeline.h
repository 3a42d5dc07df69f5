/*
 * pipeline.h - one image through background removal: decode, predict the
 * matte with the model, scale it back, apply the output options, encode.
 * Shared by the CLI and the server, so both give identical results.
 *
 * The options struct is the single description of what a client may ask for;
 * the CLI and the HTTP API parse their own syntax into it.
 *
 * Thread-safety: bgr_pipeline_process may be called from several threads;
 * model runs are serialised internally on the model's mutex (one inference
 * already uses every core), decoding and encoding run in parallel.
 */
#ifndef BGR_PIPELINE_PIPELINE_H
#define BGR_PIPELINE_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "infer/infer.h"

enum bgr_format { BGR_FORMAT_PNG = 0, BGR_FORMAT_WEBP, BGR_FORMAT_JPEG };

enum bgr_max_res {
    BGR_MAXRES_ORIGINAL = 0,
    BGR_MAXRES_1080P, /* fits 1920x1080 (landscape) or 1080x1920 (portrait) */
    BGR_MAXRES_720P,  /* 1280x720 */
    BGR_MAXRES_480P,  /* 854x480 */
};

struct bgr_color {
    uint8_t r, g, b, a;
};

/* Matte refinement at full resolution (docs/QUALITY.md has the numbers). */
enum bgr_refine {
    BGR_REFINE_NONE = 0, /* the model's matte as the reference runtime makes it */
    BGR_REFINE_FAST,     /* guided filter + interior snap (default) */
    BGR_REFINE_FULL,     /* fast, on four model runs merged (the image, its
                          * mirror image, both zoomed out: three more runs),
                          * then a closed-form matting solve over hair and fur */
    BGR_REFINE_AUTO,     /* default: one model run; when the matte itself says
                          * more views would help (bgr_pipeline_auto_wants_views)
                          * full's two zoomed views (not its mirror of the plain
                          * view: three runs) and its matting solve, else fast */
};

struct bgr_output_opts {
    enum bgr_format format; /* default png */
    int quality;            /* 1..100, webp and jpeg; default 90 */
    bool has_bg_color;      /* flatten onto bg_color (jpeg without it: white) */
    struct bgr_color bg_color;
    enum bgr_max_res max_res;
    bool crop;                /* trim to the subject's bounding box */
    bool mask_only;           /* write the 8-bit matte as a grayscale PNG instead
                               * (output_type=mask) */
    int crop_margin;          /* with crop: border around the subject, clamped to the
                               * image; 0..10000 px or 0..100 percent (default 0) */
    bool crop_margin_percent; /* percent of the subject's width/height */
    enum bgr_refine refine;   /* default BGR_REFINE_AUTO */
    bool decontaminate;       /* estimate edge colours (default true) */
};

/* Limits applied while decoding untrusted bytes. */
struct bgr_decode_limits {
    uint64_t
        max_pixels; /* refuse larger images from the header, before decoding; 0 = default 50 MP */
    int max_side;   /* 0 = no limit besides max_pixels */
    int max_jpeg_scans; /* 0 = the image module's default (100) */
};

/* Per-stage timings in milliseconds (for -v and the server's metrics). */
struct bgr_timings {
    double decode_ms, preprocess_ms, infer_ms, postprocess_ms, encode_ms, total_ms;
    double refine_ms; /* refinement + decontamination (not in postprocess_ms) */
};

/* A rectangle in pixels of the output image. */
struct bgr_box {
    int x, y, width, height;
};

struct bgr_result {
    uint8_t *data; /* encoded image, owned: free with bgr_result_release */
    size_t len;
    enum bgr_format format;
    int width, height;                   /* of the output image */
    int original_width, original_height; /* after EXIF orientation */
    const char *mime;                    /* static string */
    const char *ext;                     /* "png", "webp", "jpg" (static) */
    double confidence;      /* 0..1: how far to trust the matte (bgr_pipeline_confidence) */
    enum bgr_refine refine; /* what ran: none, fast or full (auto is decided) */
    int views;              /* model runs: 1, 3 (auto's extra views) or 4 (full) */
    bool has_subject;       /* false when the matte is empty */
    struct bgr_box subject; /* the subject's bounding box in output pixels
                             * (alpha >= 5%, after crop and max_resolution) */
};

/* Default options: png, quality 90, transparent, original size, no crop. */
void bgr_output_opts_init(struct bgr_output_opts *o);

/* Parsers shared by CLI and API. Each returns 0 or BGR_EINVALID_PARAMETER
 * with a message naming what was expected. */
int bgr_parse_format(const char *s, enum bgr_format *out, struct bgr_error *err);
int bgr_parse_color(const char *s, struct bgr_color *out, struct bgr_error *err);
int bgr_parse_max_res(const char *s, enum bgr_max_res *out, struct bgr_error *err);
int bgr_parse_quality(const char *s, int *out, struct bgr_error *err);
const char *bgr_format_name(enum bgr_format f);   /* "png", "webp", "jpeg" */
const char *bgr_max_res_name(enum bgr_max_res r); /* "original", "1080p", ... */
/* "none", "fast", "full" or "auto". */
int bgr_parse_refine(const char *s, enum bgr_refine *out, struct bgr_error *err);
const char *bgr_refine_name(enum bgr_refine r);
/* true/false (also 1/0, yes/no, on/off); name is the option's, for the
 * message. */
int bgr_parse_bool(const char *s, const char *name, bool *out, struct bgr_error *err);
/* output_type "cutout" (mask_only false) or "mask" (true). */
int bgr_parse_output_type(const char *s, bool *mask_only, struct bgr_error *err);
/* crop_margin "N" or "Npx" (0..10000 pixels) or "N%" (0..100 percent). */
int bgr_parse_crop_margin(const char *s, int *value, bool *percent, struct bgr_error *err);

/* The one persisted form of a whole option set (opts_text.c): every field as
 * "name=value" pairs joined by ';', in the API's names and syntax, e.g.
 * "output_format=png;output_quality=90;bg_color=none;...;decontaminate=true".
 * The store keeps batch items' options in this form and nothing else writes
 * or reads it, so no path can drop a field.
 * to_text: 0, or -1 when n is too small (BGR_OUTPUT_OPTS_TEXT_MAX always fits).
 * from_text: starts from the defaults, so a missing field keeps its default;
 * an unknown name or bad value is BGR_EINVALID_PARAMETER; *out is set only
 * on success. */
#define BGR_OUTPUT_OPTS_TEXT_MAX 256
int bgr_output_opts_to_text(const struct bgr_output_opts *o, char *out, size_t n);
int bgr_output_opts_from_text(const char *text, struct bgr_output_opts *out, struct bgr_error *err);

/* Removes the background of one encoded image (any format libvips reads).
 * model is used under its internal lock. On success *res owns the output.
 * Errors: BGR_EUNSUPPORTED_FORMAT (unreadable, empty, unknown format),
 * BGR_ERESOLUTION_TOO_HIGH (over the pixel limit, found from the header),
 * BGR_EINVALID_PARAMETER, BGR_ENOMEM, BGR_EINTERNAL. timings may be NULL. */
int bgr_pipeline_process(struct bgr_model *model, const void *data, size_t len,
                         const struct bgr_decode_limits *lim, const struct bgr_output_opts *opts,
                         struct bgr_result *res, struct bgr_timings *timings,
                         struct bgr_error *err);
void bgr_result_release(struct bgr_result *res);

struct bgr_pixels; /* image/image.h */

/* The cutout before output options: predicts pix's matte into matte
 * (pix->width x pix->height bytes, caller's), refines it as opts->refine
 * says and, with opts->decontaminate, replaces the colours of pix's
 * semi-transparent pixels by their estimated foreground colours (pix is
 * changed in place). bgr_pipeline_process runs exactly this between decode
 * and compose; `bgremover eval` uses it to score the same output. Errors as
 * bgr_pipeline_process. timings may be NULL. */
int bgr_pipeline_matte(struct bgr_model *model, struct bgr_pixels *pix,
                       const struct bgr_output_opts *opts, uint8_t *matte,
                       struct bgr_timings *timings, struct bgr_error *err);

/* ---- refine=auto and the confidence score (auto.c) ------------------------
 * Both are judged from the model's float output (the ow x oh grid, before
 * resizing), so they cost a few ms at any image size and need no ground
 * truth. docs/QUALITY.md has the measurements behind every constant. */

/* What the pipeline knows about one matte. Shares are in [0, 1]. */
struct bgr_matte_features {
    double subject;  /* share of the grid with alpha >= 0.5 */
    double soft;     /* pixels with 0.05 < alpha < 0.95, per subject pixel
                      * (the uncertain band against the subject's size;
                      * capped at 4) */
    double mid;      /* pixels with 0.25 < alpha < 0.75, per subject pixel
                      * (capped at 4): areas the model could not decide */
    double border;   /* share of the grid's outermost ring with alpha >= 0.5
                      * (a subject cut by the frame) */
    double disagree; /* mean |alpha difference| between the plain view and
                      * the other views (full: its mirror; auto: the zoomed
                      * ones) over the pixels either calls soft or subject;
                      * -1 when only one view ran */
};

/* Measures the w x h float matte a (values 0..1). disagree is set to -1. */
void bgr_pipeline_matte_features(const float *a, int w, int h, struct bgr_matte_features *f);

/* refine=auto's decision from the plain view's features: true when the
 * extra views of `full` are expected to pay (a large undecided area). */
bool bgr_pipeline_auto_wants_views(const struct bgr_matte_features *f);

/* The confidence score in [0, 1] from the final matte's features: lower
 * with a larger soft or undecided band, a subject cut by the frame, a tiny
 * or missing subject, and (where views ran) disagreement between views.
 * Never increases when any badness feature grows. */
double bgr_pipeline_confidence(const struct bgr_matte_features *f);

/* What bgr_pipeline_matte_ex decided and measured. */
struct bgr_matte_info {
    enum bgr_refine refine;          /* none, fast or full: what ran */
    int views;                       /* model runs: 1, 3 (auto, extra views) or 4 (full) */
    double confidence;               /* bgr_pipeline_confidence of the final matte */
    struct bgr_matte_features plain; /* of the first view alone */
    struct bgr_matte_features final; /* of the matte the refinement started from */
};

/* bgr_pipeline_matte that also reports *info (may be NULL). */
int bgr_pipeline_matte_ex(struct bgr_model *model, struct bgr_pixels *pix,
                          const struct bgr_output_opts *opts, uint8_t *matte,
                          struct bgr_timings *timings, struct bgr_matte_info *info,
                          struct bgr_error *err);

/* Initialises libvips once per process (thread-safe, idempotent); returns 0
 * or BGR_EINTERNAL. bgr_pipeline_process calls it itself. */
int bgr_pipeline_global_init(struct bgr_error *err);

#endif
