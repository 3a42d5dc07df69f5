/*
 * helpers.h - builders shared by the image tests: synthetic images made
 * with libvips in memory and encoded on the fly, so no fixture files are
 * needed. Every helper aborts the test binary on a libvips failure (a broken
 * test set-up, not a finding).
 */
#ifndef BGR_TEST_IMAGE_HELPERS_H
#define BGR_TEST_IMAGE_HELPERS_H

#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>

#include "image/image.h"

static inline void th_die(const char *what)
{
    fprintf(stderr, "test set-up failed: %s: %s\n", what, vips_error_buffer());
    abort();
}

/* Wraps a copy of w x h x bands bytes as a VipsImage with interpretation. */
static inline VipsImage *th_image(const uint8_t *px, int w, int h, int bands,
                                  VipsInterpretation interp)
{
    struct bgr_error e;
    if (bgr_image_global_init(&e))
        th_die("init");
    VipsImage *m = vips_image_new_from_memory_copy(px, (size_t)w * h * bands, w, h, bands,
                                                   VIPS_FORMAT_UCHAR);
    VipsImage *out = NULL;
    if (!m || vips_copy(m, &out, "interpretation", interp, NULL))
        th_die("wrap");
    g_object_unref(m);
    return out;
}

/* A deterministic RGB(A) test pattern: a gradient with a square. */
static inline uint8_t *th_pattern(int w, int h, int bands)
{
    uint8_t *p = malloc((size_t)w * h * bands);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *d = p + ((size_t)y * w + x) * bands;
            d[0] = (uint8_t)(x * 255 / (w > 1 ? w - 1 : 1));
            if (bands > 1)
                d[1] = (uint8_t)(y * 255 / (h > 1 ? h - 1 : 1));
            if (bands > 2)
                d[2] = (x > w / 4 && x < w / 2 && y > h / 4 && y < h / 2) ? 255 : 40;
            if (bands > 3)
                d[3] = (uint8_t)(1 + (x + y) * 7 % 255); /* never 0: lossless WebP would drop the colour */
        }
    return p;
}

/* Encodes img with a vips *save_buffer operation by name and options;
 * returns malloc'd bytes. Drops the reference to img. */
#define TH_SAVE(img, saver, lenp, ...)                                                     \
    ({                                                                                     \
        void *b_ = NULL;                                                                   \
        size_t n_ = 0;                                                                     \
        if (saver((img), &b_, &n_, ##__VA_ARGS__, NULL))                                   \
            th_die(#saver);                                                                \
        g_object_unref(img);                                                               \
        uint8_t *c_ = malloc(n_);                                                          \
        memcpy(c_, b_, n_);                                                                \
        g_free(b_);                                                                        \
        *(lenp) = n_;                                                                      \
        c_;                                                                                \
    })

#endif
