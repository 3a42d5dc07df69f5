/*
 * image.h - the image half of background removal, on libvips: decode
 * untrusted bytes into 8-bit sRGB pixels, turn pixels into the model's input
 * tensor and the model's output into a matte exactly as the reference
 * runtime (@imgly/background-removal-node 1.4.5, dist/index.mjs) does, then
 * crop, flatten, downscale and encode the cutout.
 *
 * It knows nothing of models, HTTP or the API's option syntax: src/pipeline
 * glues it to src/infer and maps struct bgr_output_opts onto the structs
 * below. Every step is a separate function so tests can drive each one
 * without a model.
 *
 * Pixels are interleaved 8-bit, rows packed (stride = width * bands):
 * 1 band = grey/matte, 3 = RGB, 4 = RGBA (straight, not premultiplied alpha).
 *
 * Thread-safety: every function may run on several threads at once once
 * bgr_image_global_init has returned 0. libvips keeps a single error buffer
 * for the process; a failing call copies and clears it, so under concurrent
 * failures a message may carry another thread's libvips text too. Error
 * codes never depend on that text.
 */
#ifndef BGR_IMAGE_IMAGE_H
#define BGR_IMAGE_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* Initialises libvips once per process: its operation cache off (server
 * memory stays flat), loaders vips marks untrusted blocked, worker threads
 * per operation bounded (VIPS_CONCURRENCY overrides). Thread-safe and
 * idempotent; returns 0 or BGR_EINTERNAL. Every other function calls it. */
int bgr_image_global_init(struct bgr_error *err);

/* ---- pixels ------------------------------------------------------------- */

struct bgr_pixels {
    uint8_t *data; /* owned; free with bgr_pixels_release */
    int width, height;
    int bands; /* 1, 3 or 4 */
};
/* Frees data and zeroes *p; accepts NULL and an already released struct. */
void bgr_pixels_release(struct bgr_pixels *p);
/* Allocates an uninitialised w x h x bands buffer into *out (0 or BGR_ENOMEM). */
int bgr_pixels_alloc(struct bgr_pixels *out, int w, int h, int bands, struct bgr_error *err);

/* ---- decode ------------------------------------------------------------- */

#define BGR_IMAGE_DEFAULT_MAX_PIXELS 50000000ULL /* 50 MP */

struct bgr_image_limits {
    uint64_t max_pixels; /* 0 = BGR_IMAGE_DEFAULT_MAX_PIXELS */
    int max_side;        /* 0 = no limit besides max_pixels */
    int max_jpeg_scans;  /* most progressive JPEG scans; 0 = BGR_IMAGE_DEFAULT_MAX_JPEG_SCANS */
};

/* A progressive JPEG's scans are passes over the whole image: libjpeg
 * re-reads coefficients for each, about 4 ms per scan at 7000x7000, so
 * 13000 scans in a 1 MB file held a worker for 44 s. Real encoders write
 * about 10 (libjpeg's default script) and at most a few dozen. */
#define BGR_IMAGE_DEFAULT_MAX_JPEG_SCANS 100

/* What the header says, before any pixel is decoded. */
struct bgr_image_info {
    int width, height; /* after EXIF orientation (swapped for 5..8) */
    int orientation;   /* EXIF orientation 1..8 (1 when absent) */
    bool has_alpha;
    const char *format; /* static: "jpeg", "png", "webp", "gif", "tiff", "heif" */
};

/* Reads only the header of data. Refuses bytes no allowed loader claims
 * (empty, garbage, SVG, PDF, ... : BGR_EUNSUPPORTED_FORMAT) and images whose
 * header is over the limits (BGR_ERESOLUTION_TOO_HIGH). lim may be NULL. */
int bgr_image_probe(const void *data, size_t len, const struct bgr_image_limits *lim,
                    struct bgr_image_info *info, struct bgr_error *err);

/* Decodes the first frame/page of data into 8-bit sRGB: RGB (bands 3) or, if
 * the input has an alpha channel, RGBA (bands 4). The limits are checked from
 * the header first; EXIF orientation is applied; ICC profiles (CMYK included)
 * are converted to sRGB. Corrupt or truncated data fails with
 * BGR_EUNSUPPORTED_FORMAT. On success *out owns the pixels and *info (may be
 * NULL) describes the input. data is not kept. */
int bgr_image_decode(const void *data, size_t len, const struct bgr_image_limits *lim,
                     struct bgr_pixels *out, struct bgr_image_info *info, struct bgr_error *err);

/* ---- reference-runtime resampling ----------------------------------------
 * Bit-exact ports of the reference runtime's tensorResizeBilinear,
 * tensorHWCtoBCHW and convertFloat32ToUint8: bilinear with src = dst * scale
 * (no half-pixel offset, no antialiasing), weights in double, Math.round
 * (halves up) and Uint8Array stores (truncation, modulo 256). */

/* Resizes the first `channels` bands of src (sw x sh, src_bands interleaved)
 * to dst (dw x dh, `channels` interleaved). All sizes >= 1. */
void bgr_image_resize_ref(const uint8_t *src, int sw, int sh, int src_bands, int channels,
                          uint8_t *dst, int dw, int dh);

/* Resizes the RGB bands of img to tw x th as above and writes the planar
 * NCHW tensor (v - 128) / 256 into tensor (3 * tw * th floats, caller's). */
void bgr_image_to_tensor(const struct bgr_pixels *img, int tw, int th, float *tensor);

/* out[i] = ToUint8(in[i] * 255), the reference's float-to-byte conversion. */
void bgr_image_float_to_u8(const float *in, size_t n, uint8_t *out);

/* Turns the model output (ow x oh floats, caller's) into a w x h matte
 * (caller's buffer): float_to_u8, then resize_ref. Returns 0 or BGR_ENOMEM
 * (it needs an ow x oh byte scratch buffer). */
int bgr_image_matte_from_output(const float *output, int ow, int oh, uint8_t *matte, int w, int h,
                                struct bgr_error *err);

/* ---- refine and decontaminate (refine.c, decontam.c) ----------------------
 * Both work on a coefficient grid: the image itself up to 0.26 MP, above
 * that an area-averaged grid of at most 0.26 MP whose smooth results are
 * interpolated back to every pixel (grid.h). That bounds their memory
 * (about 80 bytes per grid pixel, about 21 MiB) and most of their time at
 * any size. Radii scale with the image's long side; the constants were
 * chosen by `bgremover eval` on the dev set (docs/QUALITY.md). */

/* Refines a w x h matte (img->width x img->height, changed in place) to
 * follow the image: a colour guided filter (He et al., PAMI 2013) with the
 * image as guide moves soft edges onto colour edges, then pixels deep inside
 * the confident foreground (every neighbour >= 0.4) are pushed smoothly to
 * 255 and those deep inside clear background (every neighbour < 0.05) to 0,
 * which removes the mid-grey the model leaves over solid subjects.
 * img is RGB or RGBA (alpha ignored). Errors: BGR_ENOMEM. */
int bgr_image_refine_matte(const struct bgr_pixels *img, uint8_t *matte, struct bgr_error *err);

/* refine=full's refinement: the above, then a closed-form matting solve
 * (Levin et al., PAMI 2008) over the soft band where the guided filter ran
 * at half weight or more (hair, fur), at full resolution; skipped when that
 * band exceeds 150,000 pixels (about 130 ms). Same contract. */
int bgr_image_refine_matte_full(const struct bgr_pixels *img, uint8_t *matte,
                                struct bgr_error *err);

/* Foreground colour estimation (blur-fusion, Forte and Pitie 2021): every
 * pixel with 0 < matte < 255 gets the colour the subject would have there
 * without the old background mixed in, so edges do not carry a fringe onto
 * a new background. Opaque and fully transparent pixels are untouched.
 * Changes img's RGB in place. Errors: BGR_ENOMEM. */
int bgr_image_decontaminate(struct bgr_pixels *img, const uint8_t *matte, struct bgr_error *err);

/* ---- compose -------------------------------------------------------------- */

/* Alpha at or above this (5% of 255, rounded up) counts as subject for crop. */
#define BGR_IMAGE_CROP_THRESHOLD 13

struct bgr_rect {
    int x, y, w, h;
};

/* Bounding box of the pixels with alpha >= threshold in a w x h matte.
 * Returns true and sets *box, or false (box untouched) when none is. */
bool bgr_image_matte_bbox(const uint8_t *alpha, int w, int h, uint8_t threshold,
                          struct bgr_rect *box);

struct bgr_compose_opts {
    bool crop;  /* trim to the bbox of the final alpha (threshold above) */
    int margin; /* with crop: extra border around the subject, clamped
                 * to the image: pixels, or percent of the subject's
                 * width (left/right) and height (top/bottom) */
    bool margin_percent;
    bool mask_only; /* output the final alpha as 1 band (flatten ignored) */
    bool flatten;   /* composite src-over onto bg */
    uint8_t bg[4];  /* r, g, b, a of the background when flatten */
    bool opaque;    /* output must have no alpha (JPEG): the bg's alpha is
                     * ignored, and without flatten white is used */
};

/* Builds the output pixels of a cutout from img (RGB/RGBA) and its matte
 * (img->width x img->height). The final alpha is matte * input alpha / 255
 * (rounded), so transparent input stays transparent. Bands of *out: 1 for
 * mask_only; 3 when opaque or flattened onto an opaque bg; else 4 (bg alpha
 * < 255 gives src-over: a = a_fg + a_bg (1 - a_fg)). With crop and no
 * subject the result is 1x1 with alpha 0 (flattened like any pixel).
 * On success *out owns new pixels. Errors: BGR_ENOMEM. */
int bgr_image_compose(const struct bgr_pixels *img, const uint8_t *matte,
                      const struct bgr_compose_opts *o, struct bgr_pixels *out,
                      struct bgr_error *err);

/* The subject's bounding box (final alpha >= BGR_IMAGE_CROP_THRESHOLD) in
 * the coordinates of the image bgr_image_compose builds with the same
 * arguments (offset by the crop origin when o->crop). Returns false, box
 * untouched, when there is no subject. */
bool bgr_image_subject_box(const struct bgr_pixels *img, const uint8_t *matte,
                           const struct bgr_compose_opts *o, struct bgr_rect *box);

/* Size of w x h fitted into a box_long x box_short box (turned 90 degrees
 * for portrait, h > w), aspect kept, rounded to nearest, >= 1 px, never
 * larger than w x h. box_long == 0 means no box. */
void bgr_image_fit(int w, int h, int box_long, int box_short, int *ow, int *oh);

/* ---- encode ------------------------------------------------------------- */

enum bgr_image_codec { BGR_IMAGE_PNG = 0, BGR_IMAGE_WEBP, BGR_IMAGE_JPEG };

/* PNG zlib level. Measured on two cutouts (0.4 and 1.6 MP RGBA): 4 encodes
 * 10-25% faster than libpng's default 6 for files 1-2% larger; 3 and 1 save
 * little more time for files up to 6% larger. */
#define BGR_IMAGE_PNG_COMPRESSION 4

struct bgr_encode_opts {
    enum bgr_image_codec codec;
    int quality;       /* 1..100 for webp and jpeg */
    int width, height; /* output size (<= input; 0 = input's): lanczos3
                        * on premultiplied alpha */
};

struct bgr_encoded {
    uint8_t *data; /* owned; free with bgr_encoded_release */
    size_t len;
    int width, height;
};
void bgr_encoded_release(struct bgr_encoded *e); /* accepts NULL */

/* Downscales img (1, 3 or 4 bands) if asked and encodes it without
 * metadata: PNG 8-bit grey/RGB/RGBA, WebP RGB/RGBA, JPEG grey/RGB (4 bands
 * are refused for JPEG: compose with opaque first). Errors:
 * BGR_EINVALID_PARAMETER, BGR_ENOMEM, BGR_EINTERNAL. */
int bgr_image_encode(const struct bgr_pixels *img, const struct bgr_encode_opts *o,
                     struct bgr_encoded *out, struct bgr_error *err);

#endif
