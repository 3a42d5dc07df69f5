/*
 * synth_image.h - synthetic images with known edges for the image and
 * quality tests (header-only; each test binary includes it once).
 */
#ifndef BGR_TEST_SYNTH_IMAGE_H
#define BGR_TEST_SYNTH_IMAGE_H

#include <stdlib.h>

#include "image/image.h"

/* w x h RGB: red left of column edge, blue from it on. Aborts when out of
 * memory (tests only). Release with bgr_pixels_release. */
static inline struct bgr_pixels synth_two_colours(int w, int h, int edge)
{
    struct bgr_pixels p = {0};
    struct bgr_error err;
    if (bgr_pixels_alloc(&p, w, h, 3, &err) != 0)
        abort();
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *d = p.data + ((size_t)y * (size_t)w + (size_t)x) * 3;
            d[0] = x < edge ? 220 : 20;
            d[1] = 30;
            d[2] = x < edge ? 20 : 230;
        }
    return p;
}

/* The model's typical soft edge as a w x h matte: 255 left of c - width/2,
 * 0 right of c + width/2, linear between. The caller frees it. */
static inline uint8_t *synth_ramp(int w, int h, double c, double width)
{
    uint8_t *m = malloc((size_t)w * (size_t)h);
    if (!m)
        abort();
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double v = 0.5 - ((double)x + 0.5 - c) / width;
            v = v < 0 ? 0 : v > 1 ? 1 : v;
            m[y * w + x] = (uint8_t)(v * 255 + 0.5);
        }
    return m;
}

#endif
