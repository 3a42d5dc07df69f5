/*
 * removebg_render.c - one remove.bg request's image work, run on a job
 * worker (bgr_remove_req.render) so the queue bounds it like every other
 * image and its result is committed and charged by the same transaction.
 *
 * Order, all in the pixels of the size-capped input:
 *   decode; downscale to the size's pixel cap (lanczos3, so the model and the
 *   refinement run on what is returned); matte (the shared pipeline step:
 *   refinement and edge-colour decontamination); semitransparency=false
 *   makes the matte binary; the input's own alpha multiplies in; roi clears
 *   the matte outside its box; the subject box (alpha >= 5%) must exist
 *   (unknown_foreground); crop + crop_margin set the canvas (margins may
 *   extend past the image: that area is transparent); scale and position
 *   move the subject inside the canvas; add_shadow lays a soft drop shadow
 *   under it; bg_image / bg_color go under everything; channels=alpha keeps
 *   the matte only; then the format's encoder (zip: colour JPEG + alpha
 *   PNG).
 *
 * Memory: a few full-size buffers of the capped image at a time (at most
 * 50 MP x 4 bytes each for size=50MP); each is released once the next step
 * has its own copy.
 */
#include "api/removebg.h"

#include <glib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>

#include "image/image.h"

static int vips_fail(struct bgr_error *err, const char *what)
{
    char *m = vips_error_buffer_copy();
    int rc = bgr_error_set(err, BGR_EINTERNAL, "%s failed: %s", what, m ? m : "");
    g_free(m);
    return rc;
}

/* Resamples in to w x h (lanczos3; premultiplied when it has alpha) into
 * *out (new pixels, owned by the caller). */
static int resize_pixels(const struct bgr_pixels *in, int w, int h, struct bgr_pixels *out,
                         struct bgr_error *err)
{
    VipsImage *t[5] = {0};
    VipsImage *cur;
    size_t sz = 0, n = (size_t)in->width * (size_t)in->height * (size_t)in->bands;
    int rc = 0;
    t[0] = vips_image_new_from_memory(in->data, n, in->width, in->height, in->bands,
                                      VIPS_FORMAT_UCHAR);
    if (!t[0])
        return vips_fail(err, "vips_image_new_from_memory");
    cur = t[0];
    if (in->bands == 4) {
        if (vips_premultiply(cur, &t[1], NULL)) {
            rc = vips_fail(err, "vips_premultiply");
            goto out;
        }
        cur = t[1];
    }
    if (vips_resize(cur, &t[2], (double)w / in->width, "vscale", (double)h / in->height, "kernel",
                    VIPS_KERNEL_LANCZOS3, NULL)) {
        rc = vips_fail(err, "vips_resize");
        goto out;
    }
    cur = t[2];
    if (cur->Xsize != w || cur->Ysize != h) { /* rounding: pin the exact size */
        if (vips_embed(cur, &t[3], 0, 0, w, h, "extend", VIPS_EXTEND_COPY, NULL)) {
            rc = vips_fail(err, "vips_embed");
            goto out;
        }
        cur = t[3];
    }
    if (in->bands == 4) {
        VipsImage *u = NULL;
        if (vips_unpremultiply(cur, &u, NULL) || vips_cast_uchar(u, &t[4], NULL)) {
            if (u)
                g_object_unref(u);
            rc = vips_fail(err, "vips_unpremultiply");
            goto out;
        }
        g_object_unref(u);
        cur = t[4];
    } else if (cur->BandFmt != VIPS_FORMAT_UCHAR) {
        if (vips_cast_uchar(cur, &t[4], NULL)) {
            rc = vips_fail(err, "vips_cast");
            goto out;
        }
        cur = t[4];
    }
    void *mem = vips_image_write_to_memory(cur, &sz);
    if (!mem) {
        rc = vips_fail(err, "vips_image_write_to_memory");
        goto out;
    }
    BGR_ASSERT(sz == (size_t)w * (size_t)h * (size_t)in->bands);
    *out = (struct bgr_pixels){.data = mem, .width = w, .height = h, .bands = in->bands};
out:
    for (size_t i = 0; i < BGR_ARRAY_LEN(t); i++)
        if (t[i])
            g_object_unref(t[i]);
    return rc;
}

/* Straight-alpha src-over of fg (RGBA) onto bg (RGBA) at the same place:
 * fg is replaced by the result. */
static void over(uint8_t *fg, const uint8_t *bg, size_t npix)
{
    for (size_t i = 0; i < npix; i++, fg += 4, bg += 4) {
        unsigned af = fg[3], ab = bg[3];
        unsigned ar = af * 255 + ab * (255 - af); /* alpha * 255 */
        if (ar == 0) {
            fg[0] = fg[1] = fg[2] = fg[3] = 0;
            continue;
        }
        for (int c = 0; c < 3; c++)
            fg[c] = (uint8_t)((fg[c] * af * 255 + bg[c] * ab * (255 - af) + ar / 2) / ar);
        fg[3] = (uint8_t)((ar + 127) / 255);
    }
}

/* One horizontal then one vertical box pass of radius r over a w x h
 * plane (tmp is w x h scratch). */
static void box_pass(uint8_t *p, uint8_t *tmp, int w, int h, int r)
{
    unsigned div = (unsigned)(2 * r + 1);
    for (int y = 0; y < h; y++) {
        const uint8_t *row = p + (size_t)y * (size_t)w;
        unsigned s = 0;
        for (int x = -r; x <= r; x++)
            s += row[x < 0 ? 0 : x >= w ? w - 1 : x];
        for (int x = 0; x < w; x++) {
            tmp[(size_t)y * (size_t)w + (size_t)x] = (uint8_t)((s + div / 2) / div);
            int xo = x - r < 0 ? 0 : x - r, xi = x + r + 1 >= w ? w - 1 : x + r + 1;
            s += row[xi];
            s -= row[xo];
        }
    }
    for (int x = 0; x < w; x++) {
        unsigned s = 0;
        for (int y = -r; y <= r; y++)
            s += tmp[(size_t)(y < 0 ? 0 : y >= h ? h - 1 : y) * (size_t)w + (size_t)x];
        for (int y = 0; y < h; y++) {
            p[(size_t)y * (size_t)w + (size_t)x] = (uint8_t)((s + div / 2) / div);
            int yo = y - r < 0 ? 0 : y - r, yi = y + r + 1 >= h ? h - 1 : y + r + 1;
            s += tmp[(size_t)yi * (size_t)w + (size_t)x];
            s -= tmp[(size_t)yo * (size_t)w + (size_t)x];
        }
    }
}

/* A soft drop shadow under the subject of canvas (RGBA, changed): its
 * alpha blurred by three box passes (close to a Gaussian), moved down and
 * a little right, black at opacity percent. Size-relative, so previews and
 * full-size results look alike. */
static int add_shadow(struct bgr_pixels *canvas, int opacity, struct bgr_error *err)
{
    int w = canvas->width, h = canvas->height;
    size_t n = (size_t)w * (size_t)h;
    int side = w > h ? w : h;
    int r = side / 100 > 1 ? side / 100 : 1;
    int ox = r, oy = 2 * r;
    uint8_t *a = calloc(n, 1), *tmp = calloc(n, 1), *layer = NULL;
    int rc = 0;
    if (!a || !tmp) {
        rc = bgr_error_set(err, BGR_ENOMEM, "out of memory for the shadow");
        goto out;
    }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int sx = x - ox, sy = y - oy;
            a[(size_t)y * (size_t)w + (size_t)x] =
                sx >= 0 && sy >= 0 ? canvas->data[((size_t)sy * (size_t)w + (size_t)sx) * 4 + 3]
                                   : 0;
        }
    for (int i = 0; i < 3; i++)
        box_pass(a, tmp, w, h, r);
    layer = calloc(n, 4);
    if (!layer) {
        rc = bgr_error_set(err, BGR_ENOMEM, "out of memory for the shadow");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        layer[i * 4 + 3] = (uint8_t)((a[i] * (unsigned)opacity + 50) / 100);
    over(canvas->data, layer, n);
out:
    free(a);
    free(tmp);
    free(layer);
    return rc;
}

/* The background image (any readable format) resized to cover w x h with
 * its aspect kept, centred, as RGBA in *out. */
static int bg_cover(const struct rbg_opts *o, int w, int h, struct bgr_pixels *out,
                    struct rbg_outcome *oc, struct bgr_error *err)
{
    struct bgr_pixels b = {0}, r = {0};
    struct bgr_image_limits il = {0, 0, 0};
    int rc = bgr_image_decode(o->bg_image, o->bg_image_len, &il, &b, NULL, err);
    if (rc) {
        oc->code = "invalid_bg_image"; /* remove.bg: the background could not be read */
        return rc;
    }
    double f = fmax((double)w / b.width, (double)h / b.height);
    int rw = (int)ceil(b.width * f - 1e-6), rh = (int)ceil(b.height * f - 1e-6);
    rw = rw < w ? w : rw;
    rh = rh < h ? h : rh;
    rc = resize_pixels(&b, rw, rh, &r, err);
    bgr_pixels_release(&b);
    if (rc)
        return rc;
    rc = bgr_pixels_alloc(out, w, h, 4, err);
    if (rc)
        goto out;
    int x0 = (rw - w) / 2, y0 = (rh - h) / 2;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const uint8_t *s =
                r.data + ((size_t)(y + y0) * (size_t)rw + (size_t)(x + x0)) * (size_t)r.bands;
            uint8_t *d = out->data + ((size_t)y * (size_t)w + (size_t)x) * 4;
            d[0] = s[0];
            d[1] = s[1];
            d[2] = s[2];
            d[3] = r.bands == 4 ? s[3] : 255;
        }
out:
    bgr_pixels_release(&r);
    return rc;
}

/* A pixel length of l along a side whose 100% is ref pixels; px values
 * are in the input's pixels and scaled by k to the capped image. */
static int len_px(const struct rbg_len *l, double ref, double k)
{
    return (int)lround(l->pct ? l->v / 100.0 * ref : l->v * k);
}

/* Builds the canvas (RGBA) holding the subject where crop, crop_margin,
 * scale and position put it; *fg receives the subject's box in it. */
static int place(const struct rbg_opts *o, const struct bgr_pixels *pix, const uint8_t *matte,
                 const struct bgr_rect *box, double k, struct bgr_pixels *canvas,
                 struct bgr_rect *fg, struct bgr_error *err)
{
    int W = pix->width, H = pix->height;
    int cx = 0, cy = 0, cw = W, ch = H;
    if (o->crop) {
        int m[4] = {0, 0, 0, 0}; /* top right bottom left */
        for (int i = 0; o->has_margin && i < 4; i++)
            m[i] = len_px(&o->margin[i], i % 2 ? box->w : box->h, k);
        cx = box->x - m[3];
        cy = box->y - m[0];
        cw = box->w + m[1] + m[3];
        ch = box->h + m[0] + m[2];
    }
    struct bgr_rect d = {box->x - cx, box->y - cy, box->w, box->h};
    bool moved = false, pos = o->scale_pct > 0;
    double px = 0.5, py = 0.5;
    if (o->scale_pct > 0) {
        double f = o->scale_pct / 100.0 * fmin((double)cw / box->w, (double)ch / box->h);
        d.w = (int)lround(box->w * f);
        d.h = (int)lround(box->h * f);
        d.w = d.w < 1 ? 1 : d.w;
        d.h = d.h < 1 ? 1 : d.h;
        moved = true;
    }
    if (o->has_position) {
        px = o->pos_x;
        py = o->pos_y;
        pos = true;
    }
    if (pos) {
        d.x = (int)lround((cw - d.w) * px);
        d.y = (int)lround((ch - d.h) * py);
        moved = true;
    }
    int rc = bgr_pixels_alloc(canvas, cw, ch, 4, err);
    if (rc)
        return rc;
    memset(canvas->data, 0, (size_t)cw * (size_t)ch * 4);
    /* The source region: the whole canvas when nothing moves (so the soft
     * surroundings of the subject stay), else the subject's box. */
    struct bgr_rect s = moved ? *box : (struct bgr_rect){cx, cy, cw, ch};
    struct bgr_pixels layer = {0}, scaled = {0};
    rc = bgr_pixels_alloc(&layer, s.w, s.h, 4, err);
    if (rc)
        return rc;
    for (int y = 0; y < s.h; y++)
        for (int x = 0; x < s.w; x++) {
            int sx = s.x + x, sy = s.y + y;
            uint8_t *q = layer.data + ((size_t)y * (size_t)s.w + (size_t)x) * 4;
            if (sx < 0 || sy < 0 || sx >= W || sy >= H) {
                q[0] = q[1] = q[2] = q[3] = 0;
                continue;
            }
            size_t i = (size_t)sy * (size_t)W + (size_t)sx;
            memcpy(q, pix->data + i * (size_t)pix->bands, 3);
            q[3] = matte[i];
        }
    const struct bgr_pixels *src = &layer;
    if (moved && (d.w != s.w || d.h != s.h)) {
        rc = resize_pixels(&layer, d.w, d.h, &scaled, err);
        if (rc)
            goto out;
        src = &scaled;
    }
    int ox = moved ? d.x : 0, oy = moved ? d.y : 0;
    for (int y = 0; y < src->height; y++) {
        int ty = oy + y;
        if (ty < 0 || ty >= ch)
            continue;
        for (int x = 0; x < src->width; x++) {
            int tx = ox + x;
            if (tx >= 0 && tx < cw)
                memcpy(canvas->data + ((size_t)ty * (size_t)cw + (size_t)tx) * 4,
                       src->data + ((size_t)y * (size_t)src->width + (size_t)x) * 4, 4);
        }
    }
    /* The subject box, clipped to the canvas. */
    int x0 = d.x < 0 ? 0 : d.x, y0 = d.y < 0 ? 0 : d.y;
    int x1 = d.x + d.w > cw ? cw : d.x + d.w, y1 = d.y + d.h > ch ? ch : d.y + d.h;
    *fg = (struct bgr_rect){x0, y0, x1 > x0 ? x1 - x0 : 0, y1 > y0 ? y1 - y0 : 0};
out:
    bgr_pixels_release(&layer);
    bgr_pixels_release(&scaled);
    return rc;
}

/* Copies the bands of an RGBA image: 1 (alpha), 3 (RGB) or 4. */
static int take_bands(const struct bgr_pixels *in, int bands, struct bgr_pixels *out,
                      struct bgr_error *err)
{
    int rc = bgr_pixels_alloc(out, in->width, in->height, bands, err);
    if (rc)
        return rc;
    size_t n = (size_t)in->width * (size_t)in->height;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *s = in->data + i * 4;
        uint8_t *d = out->data + i * (size_t)bands;
        if (bands == 1)
            d[0] = s[3];
        else
            memcpy(d, s, (size_t)bands);
    }
    return 0;
}

static int encode(const struct bgr_pixels *p, enum bgr_image_codec codec, struct bgr_encoded *e,
                  struct bgr_error *err)
{
    struct bgr_encode_opts eo = {.codec = codec, .quality = 90};
    return bgr_image_encode(p, &eo, e, err);
}

/* The encoded result in the requested format (auto: PNG when something is
 * transparent, else JPEG, as remove.bg decides). */
static int finish(const struct rbg_opts *o, struct bgr_pixels *canvas, struct bgr_result *res,
                  struct bgr_error *err)
{
    struct bgr_pixels a = {0}, c = {0};
    struct bgr_encoded e1 = {0}, e2 = {0};
    size_t n = (size_t)canvas->width * (size_t)canvas->height;
    bool transparent = false;
    int rc = 0;
    for (size_t i = 0; i < n && !transparent; i++)
        transparent = canvas->data[i * 4 + 3] != 255;
    if (o->format == RBG_FMT_ZIP) {
        if ((rc = take_bands(canvas, 1, &a, err)) || (rc = take_bands(canvas, 3, &c, err)) ||
            (rc = encode(&c, BGR_IMAGE_JPEG, &e1, err)) ||
            (rc = encode(&a, BGR_IMAGE_PNG, &e2, err)))
            goto out;
        rc = rbg_zip2("color.jpg", e1.data, e1.len, "alpha.png", e2.data, e2.len, &res->data,
                      &res->len, err);
        if (rc)
            goto out;
        res->format = BGR_FORMAT_PNG; /* the archive has no bgr_format: see docs */
        res->mime = "application/zip";
        res->ext = "zip";
        goto out;
    }
    enum rbg_format f = o->format;
    if (o->alpha_only) {
        if ((rc = take_bands(canvas, 1, &a, err)) != 0)
            goto out;
        if (f == RBG_FMT_AUTO)
            f = RBG_FMT_JPG;     /* a matte is opaque grey */
        if (f == RBG_FMT_WEBP) { /* WebP has no grey: repeat the matte */
            if ((rc = bgr_pixels_alloc(&c, a.width, a.height, 3, err)) != 0)
                goto out;
            for (size_t i = 0; i < n; i++)
                c.data[i * 3] = c.data[i * 3 + 1] = c.data[i * 3 + 2] = a.data[i];
        }
    } else {
        if (f == RBG_FMT_AUTO)
            f = transparent ? RBG_FMT_PNG : RBG_FMT_JPG;
        if (f == RBG_FMT_JPG && transparent) { /* no alpha in JPEG: onto white */
            uint8_t *white = malloc(n * 4);
            if (!white) {
                rc = bgr_error_set(err, BGR_ENOMEM, "out of memory");
                goto out;
            }
            memset(white, 255, n * 4);
            over(canvas->data, white, n);
            free(white);
            transparent = false;
        }
        if ((rc = take_bands(canvas, transparent ? 4 : 3, &c, err)) != 0)
            goto out;
    }
    const struct bgr_pixels *src = c.data ? &c : &a;
    static const enum bgr_image_codec codecs[] = {[RBG_FMT_PNG] = BGR_IMAGE_PNG,
                                                  [RBG_FMT_JPG] = BGR_IMAGE_JPEG,
                                                  [RBG_FMT_WEBP] = BGR_IMAGE_WEBP};
    static const enum bgr_format fmts[] = {[RBG_FMT_PNG] = BGR_FORMAT_PNG,
                                           [RBG_FMT_JPG] = BGR_FORMAT_JPEG,
                                           [RBG_FMT_WEBP] = BGR_FORMAT_WEBP};
    static const char *const mimes[] = {
        [RBG_FMT_PNG] = "image/png", [RBG_FMT_JPG] = "image/jpeg", [RBG_FMT_WEBP] = "image/webp"};
    static const char *const exts[] = {
        [RBG_FMT_PNG] = "png", [RBG_FMT_JPG] = "jpg", [RBG_FMT_WEBP] = "webp"};
    if ((rc = encode(src, codecs[f], &e1, err)) != 0)
        goto out;
    res->data = e1.data;
    res->len = e1.len;
    e1 = (struct bgr_encoded){0};
    res->format = fmts[f];
    res->mime = mimes[f];
    res->ext = exts[f];
out:
    bgr_encoded_release(&e1);
    bgr_encoded_release(&e2);
    bgr_pixels_release(&a);
    bgr_pixels_release(&c);
    return rc;
}

int rbg_render(void *vctx, struct bgr_model *model, const void *data, size_t len,
               const struct bgr_decode_limits *lim, struct bgr_result *res, struct bgr_error *err)
{
    struct rbg_render_ctx *ctx = vctx;
    struct rbg_opts opts;
    const struct rbg_opts *o = &opts;
    struct bgr_pixels pix = {0}, tmp = {0}, canvas = {0}, bg = {0};
    struct bgr_image_info info;
    uint8_t *matte = NULL;
    struct bgr_rect box, fg;
    int rc;

    if (!model)
        return bgr_error_set(err, BGR_EINTERNAL, "the remove.bg route needs the model");
    if (rbg_opts_from_spec(ctx->spec, &opts, err) != 0) {
        bgr_error_prefix(err, "render");
        return BGR_EINTERNAL; /* written by rbg_opts_to_spec: never the client's fault */
    }
    opts.bg_image = ctx->bg_image;
    opts.bg_image_len = ctx->bg_image_len;
    struct bgr_image_limits il = {lim ? lim->max_pixels : 0, lim ? lim->max_side : 0,
                                  lim ? lim->max_jpeg_scans : 0};
    rc = bgr_image_decode(data, len, &il, &pix, &info, err);
    if (rc) {
        ctx->out.code =
            rc == BGR_ERESOLUTION_TOO_HIGH ? "resolution_too_high" : "failed_to_read_image";
        return rc;
    }
    int W = pix.width, H = pix.height;
    rbg_fit_cap(info.width, info.height, rbg_size_cap(o->size, o->format), &W, &H);
    if (W != pix.width || H != pix.height) {
        if ((rc = resize_pixels(&pix, W, H, &tmp, err)) != 0)
            goto out;
        bgr_pixels_release(&pix);
        pix = tmp;
        tmp = (struct bgr_pixels){0};
    }
    double k = (double)W / info.width; /* input pixels -> capped pixels */

    size_t n = (size_t)W * (size_t)H;
    matte = malloc(n);
    if (!matte) {
        rc = bgr_error_set(err, BGR_ENOMEM, "out of memory for a %dx%d matte", W, H);
        goto out;
    }
    struct bgr_output_opts po;
    bgr_output_opts_init(&po);
    po.mask_only = o->alpha_only;
    struct bgr_matte_info mi;
    if ((rc = bgr_pipeline_matte_ex(model, &pix, &po, matte, NULL, &mi, err)) != 0)
        goto out;
    ctx->out.confidence = mi.confidence; /* X-Confidence */
    for (size_t i = 0; i < n; i++) {
        unsigned a = matte[i];
        if (!o->semitransparency)
            a = a >= 128 ? 255 : 0;
        if (pix.bands == 4)
            a = (a * pix.data[i * 4 + 3] + 127) / 255;
        matte[i] = (uint8_t)a;
    }
    if (o->has_roi) {
        int x1 = len_px(&o->roi[0], W, k), y1 = len_px(&o->roi[1], H, k);
        int x2 = len_px(&o->roi[2], W, k), y2 = len_px(&o->roi[3], H, k);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                if (x < x1 || x >= x2 || y < y1 || y >= y2)
                    matte[(size_t)y * (size_t)W + (size_t)x] = 0;
    }
    if (!bgr_image_matte_bbox(matte, W, H, BGR_IMAGE_CROP_THRESHOLD, &box)) {
        ctx->out.code = "unknown_foreground";
        rc = bgr_error_set(err, BGR_EINVALID_PARAMETER,
                           "Could not identify foreground in image (or in the roi).");
        goto out;
    }
    if ((rc = place(o, &pix, matte, &box, k, &canvas, &fg, err)) != 0)
        goto out;
    bgr_pixels_release(&pix);
    BGR_FREE_AND_NULL(matte);
    if (!o->alpha_only) {
        if (o->add_shadow && (rc = add_shadow(&canvas, o->shadow_opacity, err)) != 0)
            goto out;
        size_t cn = (size_t)canvas.width * (size_t)canvas.height;
        if (o->bg_image) {
            if ((rc = bg_cover(o, canvas.width, canvas.height, &bg, &ctx->out, err)) != 0)
                goto out;
            over(canvas.data, bg.data, cn);
        } else if (o->has_bg_color) {
            for (size_t i = 0; i < cn; i++) {
                uint8_t c[4] = {o->bg[0], o->bg[1], o->bg[2], o->bg[3]};
                over(canvas.data + i * 4, c, 1);
            }
        }
    }
    if ((rc = finish(o, &canvas, res, err)) != 0)
        goto out;
    res->width = canvas.width;
    res->height = canvas.height;
    res->original_width = info.width;
    res->original_height = info.height;
    ctx->out.width = canvas.width;
    ctx->out.height = canvas.height;
    ctx->out.fg_x = fg.x;
    ctx->out.fg_y = fg.y;
    ctx->out.fg_w = fg.w;
    ctx->out.fg_h = fg.h;
    res->confidence = mi.confidence;
    res->refine = mi.refine;
    res->has_subject = fg.w > 0 && fg.h > 0;
    res->subject = (struct bgr_box){fg.x, fg.y, fg.w, fg.h};
out:
    free(matte);
    bgr_pixels_release(&pix);
    bgr_pixels_release(&tmp);
    bgr_pixels_release(&canvas);
    bgr_pixels_release(&bg);
    return rc;
}

const char *rbg_code_known(const char *code)
{
    /* every code rbg_render sets (the render's failures, not the route's) */
    static const char *const codes[] = {"resolution_too_high", "failed_to_read_image",
                                        "unknown_foreground", "invalid_bg_image"};
    for (size_t i = 0; i < BGR_ARRAY_LEN(codes); i++)
        if (strcmp(codes[i], code) == 0)
            return codes[i];
    return NULL;
}

int rbg_render_queued(const char *spec, const void *extra, size_t extra_len,
                      struct bgr_model *model, const void *data, size_t len,
                      const struct bgr_decode_limits *lim, struct bgr_result *res, char *outcome,
                      size_t outcome_len, struct bgr_error *err)
{
    struct rbg_render_ctx ctx = {.bg_image = extra, .bg_image_len = extra_len};
    int rc;
    if (strlen(spec) >= sizeof ctx.spec)
        return bgr_error_set(err, BGR_EINTERNAL, "render: the job's spec is too long");
    memcpy(ctx.spec, spec, strlen(spec) + 1);
    rc = rbg_render(&ctx, model, data, len, lim, res, err);
    if (rc && ctx.out.code && outcome_len)
        (void)snprintf(outcome, outcome_len, "%s", ctx.out.code);
    return rc;
}
