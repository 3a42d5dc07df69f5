/*
 * removebg.h - what the files of the remove.bg drop-in share (internal to
 * src/api): POST /v1.0/removebg and GET /v1.0/account answer remove.bg's
 * API v1.0 so an existing integration only changes its host name.
 *
 *   removebg.c         the handlers: request forms, sources, validation,
 *                      credits, the response and remove.bg's error shape;
 *   removebg_params.c  the parameter syntaxes (size, roi, crop_margin,
 *                      scale, position, colours with CSS names, booleans)
 *                      and base64;
 *   removebg_render.c  the work on a job worker: matte, roi, crop, scale,
 *                      position, shadow, background, channels, encoding;
 *   removebg_zip.c     the zip format's two-entry archive.
 *
 * docs/REMOVEBG.md lists every parameter and where we differ.
 */
#ifndef BGR_API_REMOVEBG_H
#define BGR_API_REMOVEBG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/core.h"
#include "infer/infer.h"
#include "pipeline/pipeline.h"

enum rbg_size {
    RBG_SIZE_PREVIEW = 0,
    RBG_SIZE_MEDIUM,
    RBG_SIZE_HD,
    RBG_SIZE_FULL,
    RBG_SIZE_50MP,
    RBG_SIZE_AUTO
};
enum rbg_format { RBG_FMT_AUTO = 0, RBG_FMT_PNG, RBG_FMT_JPG, RBG_FMT_WEBP, RBG_FMT_ZIP };

/* A length as remove.bg writes them: "30px", "30" (pixels) or "10%". */
struct rbg_len {
    double v;
    bool pct;
};

/* Every parameter of a request, parsed. Defaults are remove.bg's
 * (rbg_opts_init). */
struct rbg_opts {
    enum rbg_size size;
    char type[16];  /* the client's hint: auto, person, product, ... */
    int type_level; /* 0 = none, 1, 2, 3 = latest */
    enum rbg_format format;
    bool has_roi;
    struct rbg_len roi[4]; /* x1 y1 x2 y2 */
    bool crop;
    bool has_margin;
    struct rbg_len margin[4]; /* top right bottom left (CSS order expanded) */
    int scale_pct;            /* 10..100; 0 = original */
    bool has_position;        /* false = original (or center when scaled) */
    double pos_x, pos_y;      /* 0..1: 0 = subject at the left/top edge */
    bool alpha_only;          /* channels=alpha */
    bool has_bg_color;
    uint8_t bg[4]; /* r g b a */
    bool semitransparency;
    bool add_shadow;
    int shadow_opacity; /* 0..100 */
    /* bg_image_file / bg_image_url bytes (borrowed until the render ends) */
    const uint8_t *bg_image;
    size_t bg_image_len;
};
void rbg_opts_init(struct rbg_opts *o);

/* The output pixel cap of a size (format matters for full: PNG 10 MP). */
uint64_t rbg_size_cap(enum rbg_size s, enum rbg_format f);
/* Credits a size costs for an output of out_pixels. */
double rbg_size_credits(enum rbg_size s, uint64_t out_pixels);
/* The output size of a w x h input under cap (aspect kept, >= 1 px). */
void rbg_fit_cap(int w, int h, uint64_t cap, int *ow, int *oh);

/* ---- parameter syntaxes (removebg_params.c): 0 or -1 (bad value) ---- */
int rbg_parse_size(const char *s, enum rbg_size *out);
int rbg_parse_format(const char *s, enum rbg_format *out);
int rbg_parse_type(const char *s, char out[16]);
int rbg_parse_type_level(const char *s, int *out);
int rbg_parse_bool(const char *s, bool *out);
/* "x1 y1 x2 y2", each with px or %. */
int rbg_parse_roi(const char *s, struct rbg_len out[4]);
/* 1, 2 or 4 lengths (CSS order), expanded to top right bottom left. */
int rbg_parse_margin(const char *s, struct rbg_len out[4]);
/* "original" (0) or "10%".."100%". */
int rbg_parse_scale(const char *s, int *pct);
/* "original" (*has false), "center", "X%" or "X% Y%". */
int rbg_parse_position(const char *s, bool *has, double *x, double *y);
/* "alpha" or "rgba". */
int rbg_parse_channels(const char *s, bool *alpha_only);
/* Hex of 3, 4, 6 or 8 digits (with or without '#') or a CSS colour name. */
int rbg_parse_color(const char *s, uint8_t out[4]);
/* "0%".."100%" or a bare 0..100. */
int rbg_parse_percent(const char *s, int *out);

/* Base64 (standard or URL-safe, padding optional, whitespace and a
 * "data:...;base64," prefix skipped) into a malloc'd buffer of at most max
 * bytes: 0, -1 (not base64) or -2 (over max). */
int rbg_b64_decode(const char *s, size_t max, uint8_t **out, size_t *outlen);
/* Standard base64 with padding, malloc'd and NUL-terminated; NULL on
 * out-of-memory. */
char *rbg_b64_encode(const uint8_t *p, size_t n, size_t *outlen);

/* ---- the request (removebg.c) ---- */

/* A POST /v1.0/removebg request's parameters and sources, parsed. Strings
 * and file bytes point into the body, the arena or the JSON root. */
struct rbg_req {
    struct rbg_opts o;
    const char *image_url, *b64, *bg_url;
    const uint8_t *file, *bg_file;
    size_t file_len, bg_file_len;
    int n_sources, n_bg;
    const char *code; /* remove.bg code of the first error */
};

/* Parses a body (multipart/form-data, JSON or urlencoded by mime, the
 * lower-cased type/subtype of content_type) into *r and checks what needs
 * no work: exactly one source, at most one background, the URLs' syntax.
 * Split from the handler so the fuzz target drives the very code the
 * server runs. The caller owns *root (json_decref), set or not. Errors:
 * BGR_EINVALID_PARAMETER with r->code set, those of the body parsers. */
int rbg_parse_request(struct bgr_arena *a, const char *content_type, const char *mime,
                      const uint8_t *body, size_t len, struct rbg_req *r, json_t **root,
                      struct bgr_error *err);

/* ---- rendering on a worker (removebg_render.c) ---- */

/* What the render reports back to the handler (written on the worker,
 * read by the handler after bgr_jobs_remove returns). */
struct rbg_outcome {
    int width, height;          /* of the result */
    int fg_x, fg_y, fg_w, fg_h; /* the subject's box in the result */
    const char *code;           /* remove.bg error code of a render failure, or NULL */
    double confidence;          /* the pipeline's score, sent as X-Confidence */
};

/* ---- the job's spec (removebg_spec.c) ---- */

/* The whole of an rbg_opts but its borrowed background bytes, as one text
 * value ("v=1;size=0;..."): what a render job carries, so a worker in any
 * process renders exactly what was asked. to_spec: 0, or -1 when n is too
 * small (RBG_SPEC_MAX always fits). from_spec: starts from rbg_opts_init;
 * anything malformed or unknown is BGR_EINVALID_PARAMETER and leaves *out
 * untouched; bg_image is NULL in the result. */
#define RBG_SPEC_MAX 512
int rbg_opts_to_spec(const struct rbg_opts *o, char *out, size_t n);
int rbg_opts_from_spec(const char *spec, struct rbg_opts *out, struct bgr_error *err);

/* What a render job carries: the spec, the background image's bytes
 * (borrowed until the render ends), and room for its outcome. */
struct rbg_render_ctx {
    char spec[RBG_SPEC_MAX];
    const uint8_t *bg_image;
    size_t bg_image_len;
    struct rbg_outcome out;
};

/* The name of the render below among the workers' renders
 * (bgr_api_renders), for requests queued to other processes. */
#define RBG_RENDER_NAME "removebg"
/* The same render in the form a worker of a shared queue runs it
 * (bgr_jobs_render_fn): the spec and background image from the job. */
int rbg_render_queued(const char *spec, const void *extra, size_t extra_len,
                      struct bgr_model *model, const void *data, size_t len,
                      const struct bgr_decode_limits *lim, struct bgr_result *res, char *outcome,
                      size_t outcome_len, struct bgr_error *err);
/* The static string of a remove.bg error code a render may report (code
 * as text from a worker), or NULL if it is none of them. */
const char *rbg_code_known(const char *code);

/* The bgr_remove_req.render function: ctx is a struct rbg_render_ctx.
 * res->data is g_malloc'd (bgr_result_release frees it). Errors: those of
 * the pipeline, BGR_EINVALID_PARAMETER with out.code set (no foreground,
 * unreadable background image), BGR_ENOMEM. */
int rbg_render(void *ctx, struct bgr_model *model, const void *data, size_t len,
               const struct bgr_decode_limits *lim, struct bgr_result *res, struct bgr_error *err);

/* ---- zip (removebg_zip.c) ---- */

/* A zip archive of two stored (uncompressed) entries, the layout remove.bg
 * gives format=zip: "color.jpg" then "alpha.png". *out is g_malloc'd.
 * Errors: BGR_ENOMEM, BGR_EINVALID_PARAMETER (an entry over 4 GiB). */
int rbg_zip2(const char *name1, const uint8_t *d1, size_t n1, const char *name2, const uint8_t *d2,
             size_t n2, uint8_t **out, size_t *outlen, struct bgr_error *err);

#endif
