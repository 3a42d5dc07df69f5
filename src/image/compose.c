/*
 * compose.c - from decoded pixels and their matte to the output pixels:
 * final alpha, crop to the subject, flatten onto a background colour. Plain
 * C in one pass over the (cropped) output; libvips is not needed here.
 *
 * Flattening happens before any downscale (encode.c). Because the downscale
 * works on premultiplied alpha, which is linear, flattening first gives the
 * same image up to rounding, and downscaling an opaque image is cheaper.
 */
#include <string.h>

#include "image/image.h"

/* The cutout's alpha at pixel index i: the matte, times the input's own
 * alpha when it has one (rounded), so transparent input stays transparent. */
static inline uint8_t final_alpha(const struct bgr_pixels *img, const uint8_t *matte, size_t i)
{
    if (img->bands != 4)
        return matte[i];
    unsigned a = (unsigned)matte[i] * img->data[i * 4 + 3];
    return (uint8_t)((a + 127) / 255);
}

bool bgr_image_matte_bbox(const uint8_t *alpha, int w, int h, uint8_t threshold,
                          struct bgr_rect *box)
{
    int x0 = w, y0 = h, x1 = -1, y1 = -1;
    for (int y = 0; y < h; y++) {
        const uint8_t *row = alpha + (size_t)y * (size_t)w;
        int first = -1, last = -1;
        for (int x = 0; x < w; x++) {
            if (row[x] >= threshold) {
                if (first < 0)
                    first = x;
                last = x;
            }
        }
        if (first < 0)
            continue;
        if (y0 == h)
            y0 = y;
        y1 = y;
        if (first < x0)
            x0 = first;
        if (last > x1)
            x1 = last;
    }
    if (x1 < 0)
        return false;
    *box = (struct bgr_rect){.x = x0, .y = y0, .w = x1 - x0 + 1, .h = y1 - y0 + 1};
    return true;
}

/* Bounding box of the final alpha (which needs no buffer of its own). */
static bool subject_bbox(const struct bgr_pixels *img, const uint8_t *matte, struct bgr_rect *box)
{
    if (img->bands != 4)
        return bgr_image_matte_bbox(matte, img->width, img->height, BGR_IMAGE_CROP_THRESHOLD, box);
    int x0 = img->width, y0 = img->height, x1 = -1, y1 = -1;
    for (int y = 0; y < img->height; y++)
        for (int x = 0; x < img->width; x++) {
            if (final_alpha(img, matte, (size_t)y * (size_t)img->width + (size_t)x) <
                BGR_IMAGE_CROP_THRESHOLD)
                continue;
            x0 = x < x0 ? x : x0;
            x1 = x > x1 ? x : x1;
            y0 = y < y0 ? y : y0;
            y1 = y;
        }
    if (x1 < 0)
        return false;
    *box = (struct bgr_rect){.x = x0, .y = y0, .w = x1 - x0 + 1, .h = y1 - y0 + 1};
    return true;
}

/* Grows the subject box r by the crop margin on every side, clamped to the
 * w x h image. Percent margins are of the subject's own width (left, right)
 * and height (top, bottom), rounded to nearest. */
static void add_margin(struct bgr_rect *r, const struct bgr_compose_opts *o, int w, int h)
{
    if (o->margin <= 0)
        return;
    int64_t mx = o->margin, my = o->margin;
    if (o->margin_percent) {
        mx = ((int64_t)r->w * o->margin + 50) / 100;
        my = ((int64_t)r->h * o->margin + 50) / 100;
    }
    int64_t x0 = r->x - mx, y0 = r->y - my;
    int64_t x1 = (int64_t)r->x + r->w + mx, y1 = (int64_t)r->y + r->h + my; /* exclusive */
    x0 = x0 < 0 ? 0 : x0;
    y0 = y0 < 0 ? 0 : y0;
    x1 = x1 > w ? w : x1;
    y1 = y1 > h ? h : y1;
    *r = (struct bgr_rect){(int)x0, (int)y0, (int)(x1 - x0), (int)(y1 - y0)};
}

static inline uint8_t div255(unsigned v)
{
    return (uint8_t)((v + 127) / 255);
}

/* Writes one output pixel of `bands` bands from colour c (3 bytes) and
 * alpha a. */
static inline void put_pixel(uint8_t *d, int bands, const uint8_t *c, uint8_t a,
                             const struct bgr_compose_opts *o, const uint8_t bg[4])
{
    if (bands == 1) {
        d[0] = a;
    } else if (bands == 3) { /* opaque: over bg's colour, its alpha ignored */
        for (int k = 0; k < 3; k++)
            d[k] = div255((unsigned)c[k] * a + (unsigned)bg[k] * (255u - a));
    } else if (!o->flatten) {
        memcpy(d, c, 3);
        d[3] = a;
    } else { /* src-over onto a translucent bg, in units of 255 * 255 */
        unsigned fa = (unsigned)a * 255u, ba = (unsigned)bg[3] * (255u - a);
        unsigned sum = fa + ba;
        for (int k = 0; k < 3; k++)
            d[k] =
                sum ? (uint8_t)(((unsigned)c[k] * fa + (unsigned)bg[k] * ba + sum / 2) / sum) : 0;
        d[3] = div255(sum);
    }
}

int bgr_image_compose(const struct bgr_pixels *img, const uint8_t *matte,
                      const struct bgr_compose_opts *o, struct bgr_pixels *out,
                      struct bgr_error *err)
{
    BGR_ASSERT(img->bands == 3 || img->bands == 4);
    static const uint8_t white[4] = {255, 255, 255, 255};
    const uint8_t *bg = o->flatten ? o->bg : white;
    int bands = o->mask_only ? 1 : (o->opaque || (o->flatten && o->bg[3] == 255)) ? 3 : 4;

    struct bgr_rect r = {0, 0, img->width, img->height};
    bool empty = o->crop && !subject_bbox(img, matte, &r);
    if (empty)
        r = (struct bgr_rect){0, 0, 1, 1};
    else if (o->crop)
        add_margin(&r, o, img->width, img->height);

    int rc = bgr_pixels_alloc(out, r.w, r.h, bands, err);
    if (rc)
        return rc;
    static const uint8_t black[3] = {0, 0, 0};
    if (empty) { /* no subject: one fully transparent pixel */
        put_pixel(out->data, bands, black, 0, o, bg);
        return 0;
    }
    for (int y = 0; y < r.h; y++) {
        size_t si = (size_t)(r.y + y) * (size_t)img->width + (size_t)r.x;
        uint8_t *d = out->data + (size_t)y * (size_t)r.w * (size_t)bands;
        for (int x = 0; x < r.w; x++, si++, d += bands)
            put_pixel(d, bands, img->data + si * (size_t)img->bands, final_alpha(img, matte, si), o,
                      bg);
    }
    return 0;
}

void bgr_image_fit(int w, int h, int box_long, int box_short, int *ow, int *oh)
{
    *ow = w;
    *oh = h;
    if (box_long <= 0)
        return;
    int bw = w >= h ? box_long : box_short, bh = w >= h ? box_short : box_long;
    if (w <= bw && h <= bh)
        return; /* never upscale */
    /* Integer arithmetic, rounding to nearest: the limiting side lands
     * exactly on the box. */
    uint64_t W = (uint64_t)w, H = (uint64_t)h;
    if (W * (uint64_t)bh > H * (uint64_t)bw) { /* width limits */
        *ow = bw;
        *oh = (int)((H * (uint64_t)bw * 2 + W) / (W * 2));
    } else {
        *oh = bh;
        *ow = (int)((W * (uint64_t)bh * 2 + H) / (H * 2));
    }
    if (*ow < 1)
        *ow = 1;
    if (*oh < 1)
        *oh = 1;
}
