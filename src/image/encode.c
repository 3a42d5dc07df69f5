/*
 * encode.c - output pixels to PNG, WebP or JPEG bytes, with an optional
 * downscale first (max_resolution). The pixels are wrapped, not copied;
 * libvips runs resize and encoder as one streamed pipeline.
 *
 * The downscale is vips_resize with Lanczos3 (it antialiases, unlike the
 * reference bilinear used on the matte), on premultiplied alpha so that
 * transparent pixels' colours do not bleed into the edge as dark fringes.
 */
#include "image/image_int.h"

/* The downscale, as lazy operations on x; intermediates go to t[]. */
static VipsImage *downscale(VipsImage *x, int tw, int th, VipsImage **t)
{
    int w = vips_image_get_width(x), h = vips_image_get_height(x);
    bool alpha = vips_image_get_bands(x) == 4;
    if (alpha) {
        if (vips_premultiply(x, &t[0], NULL))
            return NULL;
        x = t[0];
    }
    /* vips_resize gives round(size * scale): these scales land on tw x th. */
    if (vips_resize(x, &t[1], (double)tw / w, "vscale", (double)th / h, "kernel",
                    VIPS_KERNEL_LANCZOS3, NULL))
        return NULL;
    x = t[1];
    if (alpha) {
        if (vips_unpremultiply(x, &t[2], NULL))
            return NULL;
        x = t[2];
    }
    /* Round (the cast alone truncates) and clip Lanczos' overshoot. */
    if (vips_image_get_format(x) != VIPS_FORMAT_UCHAR) {
        if (vips_rint(x, &t[3], NULL) || vips_cast_uchar(t[3], &t[4], NULL))
            return NULL;
        x = t[4];
    }
    return x;
}

static int save(VipsImage *x, const struct bgr_encode_opts *o, void **buf, size_t *len)
{
    switch (o->codec) {
    case BGR_IMAGE_PNG:
        return vips_pngsave_buffer(x, buf, len, "compression", BGR_IMAGE_PNG_COMPRESSION,
                                   "bitdepth", 8, "strip", TRUE, NULL);
    case BGR_IMAGE_WEBP:
        return vips_webpsave_buffer(x, buf, len, "Q", o->quality, "strip", TRUE, NULL);
    case BGR_IMAGE_JPEG:
        return vips_jpegsave_buffer(x, buf, len, "Q", o->quality, "strip", TRUE, NULL);
    }
    return -1;
}

int bgr_image_encode(const struct bgr_pixels *img, const struct bgr_encode_opts *o,
                     struct bgr_encoded *out, struct bgr_error *err)
{
    VipsImage *t[8] = {NULL};
    void *buf = NULL;
    size_t len = 0;
    int rc = bgr_image_global_init(err);
    if (rc)
        return rc;
    BGR_ASSERT(img->data && img->width > 0 && img->height > 0);
    if (img->bands != 1 && img->bands != 3 && img->bands != 4)
        return bgr_error_set(err, BGR_EINVALID_PARAMETER, "cannot encode %d bands", img->bands);
    if (o->codec == BGR_IMAGE_JPEG && img->bands == 4)
        return bgr_error_set(err, BGR_EINVALID_PARAMETER, "JPEG has no alpha: flatten first");
    if (o->codec != BGR_IMAGE_PNG && (o->quality < 1 || o->quality > 100))
        return bgr_error_set(err, BGR_EINVALID_PARAMETER, "quality %d is not in 1..100",
                             o->quality);
    int tw = o->width ? o->width : img->width, th = o->height ? o->height : img->height;
    if (tw < 1 || th < 1 || tw > img->width || th > img->height)
        return bgr_error_set(err, BGR_EINVALID_PARAMETER, "cannot resize %dx%d to %dx%d",
                             img->width, img->height, tw, th);

    size_t size = (size_t)img->width * (size_t)img->height * (size_t)img->bands;
    t[5] = vips_image_new_from_memory(img->data, size, img->width, img->height, img->bands,
                                      VIPS_FORMAT_UCHAR);
    if (!t[5] ||
        vips_copy(t[5], &t[6], "interpretation",
                  img->bands == 1 ? VIPS_INTERPRETATION_B_W : VIPS_INTERPRETATION_sRGB, NULL)) {
        rc = bgr_image_vips_error(err, BGR_EINTERNAL, "cannot wrap pixels");
        goto out;
    }
    VipsImage *x = t[6];
    if (tw != img->width || th != img->height) {
        x = downscale(x, tw, th, t);
        if (!x) {
            rc = bgr_image_vips_error(err, BGR_EINTERNAL, "resize failed");
            goto out;
        }
    }
    if (save(x, o, &buf, &len)) {
        rc = bgr_image_vips_error(err, BGR_EINTERNAL, "encoding failed");
        goto out;
    }
    /* Our invariant: the pipeline above produced exactly the size asked. */
    BGR_ASSERT(vips_image_get_width(x) == tw && vips_image_get_height(x) == th);
    *out = (struct bgr_encoded){.data = buf, .len = len, .width = tw, .height = th};
    buf = NULL;
out:
    g_free(buf);
    bgr_image_unref_all(t, BGR_ARRAY_LEN(t));
    return rc;
}
