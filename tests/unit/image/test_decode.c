/*
 * test_decode.c - every kind of input bgr_image_decode must take or refuse:
 * JPEG, PNG (8/16-bit, palette, grey, grey+alpha, RGBA), WebP, GIF (also
 * animated), TIFF (8/16-bit, float), HEIF/AVIF, CMYK JPEG, EXIF orientations
 * 1-8, and empty, garbage, truncated, over-limit and refused-format bytes.
 */
#include <pthread.h>

#include "helpers.h"
#include "runner.h"

/* Decodes bytes, checking success; *px is released by the caller. */
static int decode_ok(const uint8_t *b, size_t n, struct bgr_pixels *px, struct bgr_image_info *inf)
{
    struct bgr_error err = {0};
    int rc = bgr_image_decode(b, n, NULL, px, inf, &err);
    if (rc)
        fprintf(stderr, "  decode: %s: %s\n", bgr_err_name(rc), err.msg);
    return rc == 0;
}

static int decode_rc(const uint8_t *b, size_t n, const struct bgr_image_limits *lim)
{
    struct bgr_error err = {0};
    struct bgr_pixels px = {0};
    int rc = bgr_image_decode(b, n, lim, &px, NULL, &err);
    BGR_CHECK(px.data == NULL || rc == 0);
    bgr_pixels_release(&px);
    if (rc)
        BGR_CHECK(err.msg[0] != '\0');
    return rc;
}

static const uint8_t *px_at(const struct bgr_pixels *p, int x, int y)
{
    return p->data + ((size_t)y * p->width + x) * p->bands;
}

static int near(int a, int b, int tol)
{
    return abs(a - b) <= tol;
}

/* Checks that bytes decode to want: every byte within tol when tol <= 2
 * (lossless, or 16-bit rounding), else a mean absolute error under tol / 10
 * (lossy codecs move single pixels a lot around the pattern's edges). */
static void check_roundtrip(VipsImage *img, const uint8_t *want, int bands, int tol,
                            const char *format, uint8_t *bytes, size_t n)
{
    (void)img;
    struct bgr_pixels px;
    struct bgr_image_info inf;
    BGR_REQUIRE(decode_ok(bytes, n, &px, &inf));
    BGR_CHECK_STR(inf.format, format);
    BGR_CHECK_EQ_INT(px.width, 64);
    BGR_CHECK_EQ_INT(px.height, 48);
    BGR_CHECK_EQ_INT(px.bands, bands);
    BGR_CHECK_EQ_INT(inf.has_alpha, bands == 4);
    size_t count = (size_t)64 * 48 * bands, bad = 0;
    double sum = 0;
    for (size_t i = 0; i < count; i++) {
        bad += !near(px.data[i], want[i], tol);
        sum += abs(px.data[i] - want[i]);
    }
    if (tol <= 2)
        BGR_CHECK_EQ_INT(bad, 0);
    else
        BGR_CHECK_NEAR(sum / (double)count, 0, tol / 10.0);
    bgr_pixels_release(&px);
    free(bytes);
}

BGR_TEST(png_rgb_and_rgba_exact)
{
    size_t n;
    uint8_t *p3 = th_pattern(64, 48, 3), *p4 = th_pattern(64, 48, 4);
    VipsImage *i3 = th_image(p3, 64, 48, 3, VIPS_INTERPRETATION_sRGB);
    uint8_t *b = TH_SAVE(i3, vips_pngsave_buffer, &n);
    check_roundtrip(NULL, p3, 3, 0, "png", b, n);
    VipsImage *i4 = th_image(p4, 64, 48, 4, VIPS_INTERPRETATION_sRGB);
    b = TH_SAVE(i4, vips_pngsave_buffer, &n);
    check_roundtrip(NULL, p4, 4, 0, "png", b, n);
    free(p3);
    free(p4);
}

BGR_TEST(jpeg_webp_tiff_gif_heif)
{
    size_t n;
    uint8_t *p3 = th_pattern(64, 48, 3), *p4 = th_pattern(64, 48, 4);
    uint8_t *b = TH_SAVE(th_image(p3, 64, 48, 3, VIPS_INTERPRETATION_sRGB),
                         vips_jpegsave_buffer, &n, "Q", 95);
    check_roundtrip(NULL, p3, 3, 40, "jpeg", b, n);
    b = TH_SAVE(th_image(p4, 64, 48, 4, VIPS_INTERPRETATION_sRGB), vips_webpsave_buffer, &n,
                "lossless", TRUE);
    check_roundtrip(NULL, p4, 4, 0, "webp", b, n);
    b = TH_SAVE(th_image(p3, 64, 48, 3, VIPS_INTERPRETATION_sRGB), vips_webpsave_buffer, &n,
                "Q", 90);
    check_roundtrip(NULL, p3, 3, 40, "webp", b, n);
    b = TH_SAVE(th_image(p4, 64, 48, 4, VIPS_INTERPRETATION_sRGB), vips_tiffsave_buffer, &n);
    check_roundtrip(NULL, p4, 4, 0, "tiff", b, n);
    b = TH_SAVE(th_image(p3, 64, 48, 3, VIPS_INTERPRETATION_sRGB), vips_heifsave_buffer, &n,
                "compression", VIPS_FOREIGN_HEIF_COMPRESSION_AV1, "Q", 90);
    check_roundtrip(NULL, p3, 3, 60, "heif", b, n);
    b = TH_SAVE(th_image(p3, 64, 48, 3, VIPS_INTERPRETATION_sRGB), vips_heifsave_buffer, &n,
                "Q", 90);
    check_roundtrip(NULL, p3, 3, 60, "heif", b, n);
    free(p3);
    free(p4);
}

/* Height of all pages together: proves a test file really is animated. */
static int all_pages_height(const uint8_t *b, size_t n)
{
    VipsImage *x = vips_image_new_from_buffer(b, n, "", "n", -1, NULL);
    if (!x)
        th_die("load all pages");
    int h = vips_image_get_height(x);
    g_object_unref(x);
    return h;
}

/* A GIF of few colours survives its 256-colour palette exactly. */
BGR_TEST(gif_and_webp_animated_first_frame)
{
    int w = 16, h = 12;
    uint8_t *frames = calloc((size_t)w * h * 2, 4);
    for (int y = 0; y < 2 * h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *d = frames + ((size_t)y * w + x) * 4;
            int second = y >= h;
            d[0] = second ? 0 : 255; /* frame 1 red, frame 2 blue */
            d[2] = second ? 255 : 0;
            d[3] = (x < 4) ? 0 : 255; /* transparent strip */
        }
    VipsImage *anim = th_image(frames, w, 2 * h, 4, VIPS_INTERPRETATION_sRGB);
    vips_image_set_int(anim, "page-height", h);
    size_t n;
    uint8_t *b = TH_SAVE(anim, vips_gifsave_buffer, &n);
    BGR_CHECK_EQ_INT(all_pages_height(b, n), 2 * h);
    struct bgr_pixels px;
    struct bgr_image_info inf;
    BGR_REQUIRE(decode_ok(b, n, &px, &inf));
    BGR_CHECK_STR(inf.format, "gif");
    BGR_CHECK_EQ_INT(px.width, w);
    BGR_CHECK_EQ_INT(px.height, h); /* first frame only */
    BGR_REQUIRE(px.bands == 4);
    const uint8_t *c = px_at(&px, 8, 6);
    BGR_CHECK(c[0] == 255 && c[1] == 0 && c[2] == 0 && c[3] == 255);
    BGR_CHECK_EQ_INT(px_at(&px, 1, 1)[3], 0);
    bgr_pixels_release(&px);
    free(b);

    /* Animated WebP: the same two frames, lossless. */
    anim = th_image(frames, w, 2 * h, 4, VIPS_INTERPRETATION_sRGB);
    vips_image_set_int(anim, "page-height", h);
    b = TH_SAVE(anim, vips_webpsave_buffer, &n, "lossless", TRUE);
    BGR_CHECK_EQ_INT(all_pages_height(b, n), 2 * h);
    BGR_REQUIRE(decode_ok(b, n, &px, &inf));
    BGR_CHECK_STR(inf.format, "webp");
    BGR_CHECK(px.width == w && px.height == h && px.bands == 4);
    c = px_at(&px, 8, 6);
    BGR_CHECK(c[0] == 255 && c[2] == 0 && c[3] == 255);
    bgr_pixels_release(&px);
    free(b);

    VipsImage *still = th_image(frames, w, h, 4, VIPS_INTERPRETATION_sRGB);
    b = TH_SAVE(still, vips_gifsave_buffer, &n);
    BGR_REQUIRE(decode_ok(b, n, &px, &inf));
    BGR_CHECK_EQ_INT(px.height, h);
    bgr_pixels_release(&px);
    free(b);
    free(frames);
}

/* 16-bit PNG and TIFF: v * 257 must come back as v. */
BGR_TEST(sixteen_bit_png_and_tiff)
{
    int w = 64, h = 48;
    uint8_t *p4 = th_pattern(w, h, 4);
    uint16_t *p16 = malloc((size_t)w * h * 4 * 2);
    for (size_t i = 0; i < (size_t)w * h * 4; i++)
        p16[i] = (uint16_t)(p4[i] * 257);
    for (int bands = 3; bands <= 4; bands++) {
        VipsImage *m = vips_image_new_from_memory_copy(p16, (size_t)w * h * 4 * 2, w, h, 4,
                                                        VIPS_FORMAT_USHORT);
        VipsImage *e = NULL, *i16 = NULL;
        BGR_REQUIRE(m && !vips_extract_band(m, &e, 0, "n", bands, NULL));
        BGR_REQUIRE(!vips_copy(e, &i16, "interpretation", VIPS_INTERPRETATION_RGB16, NULL));
        g_object_unref(m);
        g_object_unref(e);
        g_object_ref(i16);
        size_t n, nt;
        uint8_t *b = TH_SAVE(i16, vips_pngsave_buffer, &n);
        uint8_t *bt = TH_SAVE(i16, vips_tiffsave_buffer, &nt);
        uint8_t *want = malloc((size_t)w * h * bands);
        for (size_t i = 0; i < (size_t)w * h; i++)
            memcpy(want + i * bands, p4 + i * 4, bands);
        check_roundtrip(NULL, want, bands, 1, "png", b, n);
        check_roundtrip(NULL, want, bands, 1, "tiff", bt, nt);
        free(want);
    }
    free(p16);
    free(p4);
}

/* 16-bit RGBA with an ICC profile: colour goes through the profile, alpha
 * is scaled on its own (30000 / 65535 -> 117), not clipped to 255. */
BGR_TEST(sixteen_bit_alpha_with_profile)
{
    int w = 16, h = 8;
    uint8_t *p = th_pattern(w, h, 3);
    VipsImage *rgb = th_image(p, w, h, 3, VIPS_INTERPRETATION_sRGB), *p16 = NULL, *rgba = NULL;
    BGR_REQUIRE(!vips_icc_transform(rgb, &p16, "srgb", "input_profile", "srgb", "depth", 16,
                                    NULL));
    BGR_REQUIRE(vips_image_get_format(p16) == VIPS_FORMAT_USHORT &&
                vips_image_get_typeof(p16, VIPS_META_ICC_NAME));
    BGR_REQUIRE(!vips_bandjoin_const1(p16, &rgba, 30000, NULL));
    g_object_unref(rgb);
    g_object_unref(p16);
    size_t n;
    uint8_t *b = TH_SAVE(rgba, vips_pngsave_buffer, &n);
    struct bgr_pixels px;
    BGR_REQUIRE(decode_ok(b, n, &px, NULL));
    BGR_REQUIRE(px.bands == 4);
    int bad = 0;
    for (int i = 0; i < w * h; i++) {
        bad += px.data[i * 4 + 3] != 117;
        for (int c = 0; c < 3; c++)
            bad += !near(px.data[i * 4 + c], p[i * 3 + c], 2);
    }
    BGR_CHECK_EQ_INT(bad, 0);
    bgr_pixels_release(&px);
    free(b);
    free(p);
}

/* Grey, grey+alpha and palette PNGs come out as RGB(A). */
BGR_TEST(grey_grey_alpha_palette_png)
{
    int w = 64, h = 48;
    uint8_t *g = malloc((size_t)w * h * 2);
    for (int i = 0; i < w * h; i++) {
        g[i * 2] = (uint8_t)(i % 251);
        g[i * 2 + 1] = (uint8_t)(i % 7 * 40);
    }
    uint8_t *g1 = malloc((size_t)w * h);
    for (int i = 0; i < w * h; i++)
        g1[i] = g[i * 2];
    uint8_t *want3 = malloc((size_t)w * h * 3), *want4 = malloc((size_t)w * h * 4);
    for (int i = 0; i < w * h; i++) {
        memset(want3 + i * 3, g[i * 2], 3);
        memset(want4 + i * 4, g[i * 2], 3);
        want4[i * 4 + 3] = g[i * 2 + 1];
    }
    size_t n;
    uint8_t *b = TH_SAVE(th_image(g1, w, h, 1, VIPS_INTERPRETATION_B_W), vips_pngsave_buffer, &n);
    check_roundtrip(NULL, want3, 3, 0, "png", b, n);
    b = TH_SAVE(th_image(g, w, h, 2, VIPS_INTERPRETATION_B_W), vips_pngsave_buffer, &n);
    check_roundtrip(NULL, want4, 4, 0, "png", b, n);

    /* Palette: four flat colours quantise exactly. */
    uint8_t *pal = malloc((size_t)w * h * 3);
    static const uint8_t colours[4][3] = {{255, 0, 0}, {0, 128, 0}, {0, 0, 255}, {250, 250, 10}};
    for (int i = 0; i < w * h; i++)
        memcpy(pal + i * 3, colours[(i % w) / 16], 3);
    b = TH_SAVE(th_image(pal, w, h, 3, VIPS_INTERPRETATION_sRGB), vips_pngsave_buffer, &n,
                "palette", TRUE, "dither", 0.0);
    BGR_CHECK(b[25] == 3); /* IHDR colour type: indexed */
    check_roundtrip(NULL, pal, 3, 2, "png", b, n);
    free(pal);
    free(want3);
    free(want4);
    free(g1);
    free(g);
}

/* Float TIFF (scRGB, linear 0..1) converts to sRGB 8-bit. */
BGR_TEST(float_tiff)
{
    int w = 8, h = 4;
    float *f = malloc(sizeof(float) * w * h * 3);
    for (int i = 0; i < w * h * 3; i++)
        f[i] = (i % 3 == 0) ? 1.0f : (i % 3 == 1) ? 0.0f : 0.2140f; /* 0.214 linear ~ 128 sRGB */
    VipsImage *m = vips_image_new_from_memory_copy(f, sizeof(float) * w * h * 3, w, h, 3,
                                                    VIPS_FORMAT_FLOAT);
    VipsImage *x = NULL;
    BGR_REQUIRE(m && !vips_copy(m, &x, "interpretation", VIPS_INTERPRETATION_scRGB, NULL));
    g_object_unref(m);
    size_t n;
    uint8_t *b = TH_SAVE(x, vips_tiffsave_buffer, &n);
    struct bgr_pixels px;
    BGR_REQUIRE(decode_ok(b, n, &px, NULL));
    BGR_REQUIRE(px.bands == 3);
    const uint8_t *c = px_at(&px, 3, 2);
    BGR_CHECK(near(c[0], 255, 1) && near(c[1], 0, 1) && near(c[2], 128, 3));
    bgr_pixels_release(&px);
    free(b);

    /* With alpha: linear float alpha 0.5 is 128. */
    VipsImage *rgba = NULL, *m4 = vips_image_new_from_memory_copy(f, sizeof(float) * w * h * 3, w,
                                                                  h, 3, VIPS_FORMAT_FLOAT);
    BGR_REQUIRE(m4 && !vips_bandjoin_const1(m4, &x, 0.5, NULL));
    BGR_REQUIRE(!vips_copy(x, &rgba, "interpretation", VIPS_INTERPRETATION_scRGB, NULL));
    g_object_unref(m4);
    g_object_unref(x);
    b = TH_SAVE(rgba, vips_tiffsave_buffer, &n);
    BGR_REQUIRE(decode_ok(b, n, &px, NULL));
    BGR_REQUIRE(px.bands == 4);
    c = px_at(&px, 3, 2);
    BGR_CHECK(near(c[0], 255, 1) && near(c[2], 128, 3) && c[3] == 128);
    bgr_pixels_release(&px);
    free(b);
    free(f);
}

/* CMYK JPEG (no profile: libvips' default CMYK profile) becomes sRGB. */
BGR_TEST(cmyk_jpeg)
{
    int w = 32, h = 16;
    uint8_t *p = calloc((size_t)w * h, 4);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *d = p + ((size_t)y * w + x) * 4;
            if (x >= 16) { /* right half: magenta + yellow = red; left: paper white */
                d[1] = 255;
                d[2] = 255;
            }
        }
    size_t n;
    uint8_t *b = TH_SAVE(th_image(p, w, h, 4, VIPS_INTERPRETATION_CMYK), vips_jpegsave_buffer,
                         &n, "Q", 95);
    struct bgr_pixels px;
    struct bgr_image_info inf;
    BGR_REQUIRE(decode_ok(b, n, &px, &inf));
    BGR_CHECK_EQ_INT(px.bands, 3);
    BGR_CHECK_EQ_INT(inf.has_alpha, 0);
    const uint8_t *white = px_at(&px, 4, 8), *red = px_at(&px, 28, 8);
    BGR_CHECK(white[0] > 230 && white[1] > 230 && white[2] > 230);
    BGR_CHECK(red[0] > 180 && red[1] < 80 && red[2] < 80);
    bgr_pixels_release(&px);
    free(b);
    free(p);

    /* CMYK with its profile embedded (libvips' built-in CMYK profile, as a
     * Photoshop export would carry its own): decoded through that profile. */
    uint8_t *rgb = calloc((size_t)w * h, 3);
    for (int i = 0; i < w * h; i++) {
        uint8_t *d = rgb + i * 3;
        d[0] = 220;
        d[1] = (i % w) < 16 ? 220 : 30;
        d[2] = (i % w) < 16 ? 220 : 30;
    }
    VipsImage *srgb = th_image(rgb, w, h, 3, VIPS_INTERPRETATION_sRGB), *cmyk = NULL;
    BGR_REQUIRE(!vips_icc_transform(srgb, &cmyk, "cmyk", "input_profile", "srgb", NULL));
    g_object_unref(srgb);
    BGR_REQUIRE(vips_image_get_typeof(cmyk, VIPS_META_ICC_NAME) && vips_image_get_bands(cmyk) == 4);
    b = TH_SAVE(cmyk, vips_jpegsave_buffer, &n, "Q", 95);
    BGR_REQUIRE(decode_ok(b, n, &px, &inf));
    BGR_CHECK_EQ_INT(px.bands, 3);
    const uint8_t *l = px_at(&px, 4, 8), *r = px_at(&px, 28, 8);
    BGR_CHECK(near(l[0], 220, 12) && near(l[1], 220, 12) && near(l[2], 220, 12));
    BGR_CHECK(near(r[0], 220, 20) && r[1] < 70 && r[2] < 70);
    bgr_pixels_release(&px);
    free(b);
    free(rgb);
}

/* A 32x16 JPEG with a white 8x8 corner block at stored (0,0), saved with
 * each EXIF orientation: width/height swap for 5-8 and the block lands in
 * the displayed corner the orientation says. */
BGR_TEST(exif_orientations)
{
    /* Corner of the block after orientation: 0 TL, 1 TR, 2 BR, 3 BL. */
    static const int corner[9] = {0, 0, 1, 2, 3, 0, 1, 2, 3};
    int w = 32, h = 16;
    uint8_t *p = calloc((size_t)w * h, 3);
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 8; x++)
            memset(p + ((size_t)y * w + x) * 3, 255, 3);
    for (int o = 1; o <= 8; o++) {
        VipsImage *img = th_image(p, w, h, 3, VIPS_INTERPRETATION_sRGB);
        vips_image_set_int(img, VIPS_META_ORIENTATION, o);
        size_t n;
        uint8_t *b = TH_SAVE(img, vips_jpegsave_buffer, &n, "Q", 95);
        struct bgr_image_info inf;
        struct bgr_error err;
        BGR_REQUIRE(bgr_image_probe(b, n, NULL, &inf, &err) == 0);
        BGR_CHECK_EQ_INT(inf.orientation, o);
        struct bgr_pixels px;
        BGR_REQUIRE(decode_ok(b, n, &px, &inf));
        int ww = o >= 5 ? h : w, hh = o >= 5 ? w : h;
        BGR_CHECK_EQ_INT(px.width, ww);
        BGR_CHECK_EQ_INT(px.height, hh);
        BGR_CHECK_EQ_INT(inf.width, ww);
        BGR_CHECK_EQ_INT(inf.height, hh);
        int cx[4] = {2, ww - 3, ww - 3, 2}, cy[4] = {2, 2, hh - 3, hh - 3};
        for (int k = 0; k < 4; k++) {
            int lum = px_at(&px, cx[k], cy[k])[1];
            if (k == corner[o] ? lum < 200 : lum > 50) {
                fprintf(stderr, "  orientation %d: corner %d has %d\n", o, k, lum);
                bgr_test_failed_++;
            }
        }
        bgr_pixels_release(&px);
        free(b);
    }
    free(p);
}

BGR_TEST(empty_garbage_refused_formats)
{
    static const uint8_t zero[1] = {0};
    BGR_CHECK_EQ_INT(decode_rc(zero, 0, NULL), BGR_EUNSUPPORTED_FORMAT);
    BGR_CHECK_EQ_INT(decode_rc(NULL, 0, NULL), BGR_EUNSUPPORTED_FORMAT);
    uint8_t junk[4096];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(i * 131 + 7);
    BGR_CHECK_EQ_INT(decode_rc(junk, sizeof(junk), NULL), BGR_EUNSUPPORTED_FORMAT);
    static const char text[] = "hello, this is not an image\n";
    BGR_CHECK_EQ_INT(decode_rc((const uint8_t *)text, sizeof(text) - 1, NULL),
                     BGR_EUNSUPPORTED_FORMAT);
    static const char svg[] = "<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\" "
                              "width=\"10\" height=\"10\"><rect width=\"10\" height=\"10\"/></svg>";
    BGR_CHECK_EQ_INT(decode_rc((const uint8_t *)svg, sizeof(svg) - 1, NULL),
                     BGR_EUNSUPPORTED_FORMAT);
    static const char pdf[] = "%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n";
    BGR_CHECK_EQ_INT(decode_rc((const uint8_t *)pdf, sizeof(pdf) - 1, NULL),
                     BGR_EUNSUPPORTED_FORMAT);
    /* PPM is readable by libvips but not on our list. */
    static const char ppm[] = "P6\n2 2\n255\n\xff\0\0\0\xff\0\0\0\xff\xff\xff\xff";
    BGR_CHECK_EQ_INT(decode_rc((const uint8_t *)ppm, sizeof(ppm) - 1, NULL),
                     BGR_EUNSUPPORTED_FORMAT);
    /* Just a signature. */
    static const uint8_t sig[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    BGR_CHECK_EQ_INT(decode_rc(sig, sizeof(sig), NULL), BGR_EUNSUPPORTED_FORMAT);
}

/* Noise compresses badly, so a cut lands in the middle of the pixel data. */
BGR_TEST(truncated_png_and_jpeg)
{
    int w = 256, h = 256;
    uint8_t *p = malloc((size_t)w * h * 3);
    uint32_t s = 1;
    for (size_t i = 0; i < (size_t)w * h * 3; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (uint8_t)(s >> 24);
    }
    size_t n;
    uint8_t *png = TH_SAVE(th_image(p, w, h, 3, VIPS_INTERPRETATION_sRGB), vips_pngsave_buffer, &n);
    BGR_CHECK_EQ_INT(decode_rc(png, n, NULL), 0);
    BGR_CHECK_EQ_INT(decode_rc(png, n / 2, NULL), BGR_EUNSUPPORTED_FORMAT);
    BGR_CHECK_EQ_INT(decode_rc(png, 40, NULL), BGR_EUNSUPPORTED_FORMAT);
    free(png);
    uint8_t *jpg = TH_SAVE(th_image(p, w, h, 3, VIPS_INTERPRETATION_sRGB), vips_jpegsave_buffer,
                           &n, "Q", 90);
    BGR_CHECK_EQ_INT(decode_rc(jpg, n, NULL), 0);
    BGR_CHECK_EQ_INT(decode_rc(jpg, n / 2, NULL), BGR_EUNSUPPORTED_FORMAT);
    BGR_CHECK_EQ_INT(decode_rc(jpg, 300, NULL), BGR_EUNSUPPORTED_FORMAT);
    free(jpg);
    free(p);
}

static uint32_t crc32_png(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return c ^ 0xffffffffu;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* A hand-made PNG whose IHDR claims w x h RGB, with a tiny IDAT and IEND. */
static size_t huge_png(uint8_t *b, uint32_t w, uint32_t h)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    static const uint8_t idat[] = {0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01};
    size_t n = 0;
    memcpy(b, sig, 8);
    n = 8;
    put32(b + n, 13);
    memcpy(b + n + 4, "IHDR", 4);
    put32(b + n + 8, w);
    put32(b + n + 12, h);
    b[n + 16] = 8; /* bit depth */
    b[n + 17] = 2; /* RGB */
    b[n + 18] = b[n + 19] = b[n + 20] = 0;
    put32(b + n + 21, crc32_png(b + n + 4, 17));
    n += 25;
    put32(b + n, sizeof(idat));
    memcpy(b + n + 4, "IDAT", 4);
    memcpy(b + n + 8, idat, sizeof(idat));
    put32(b + n + 8 + sizeof(idat), crc32_png(b + n + 4, 4 + sizeof(idat)));
    n += 12 + sizeof(idat);
    put32(b + n, 0);
    memcpy(b + n + 4, "IEND", 4);
    put32(b + n + 8, crc32_png(b + n + 4, 4));
    return n + 12;
}

BGR_TEST(huge_header_refused_before_decoding)
{
    uint8_t b[128];
    size_t n = huge_png(b, 30000, 30000);
    struct bgr_image_info inf;
    struct bgr_error err;
    BGR_CHECK_EQ_INT(bgr_image_probe(b, n, NULL, &inf, &err), BGR_ERESOLUTION_TOO_HIGH);
    BGR_CHECK(strstr(err.msg, "30000x30000") != NULL);
    BGR_CHECK_EQ_INT(decode_rc(b, n, NULL), BGR_ERESOLUTION_TOO_HIGH);
    /* Just over and just under the default 50 MP. */
    n = huge_png(b, 10000, 5001);
    BGR_CHECK_EQ_INT(decode_rc(b, n, NULL), BGR_ERESOLUTION_TOO_HIGH);
    n = huge_png(b, 10000, 5000);
    BGR_CHECK_EQ_INT(bgr_image_probe(b, n, NULL, &inf, &err), 0);
    BGR_CHECK(inf.width == 10000 && inf.height == 5000 && !inf.has_alpha);
    BGR_CHECK_STR(inf.format, "png");
    /* Caller's limits: pixels and side. */
    struct bgr_image_limits small = {.max_pixels = 1000};
    n = huge_png(b, 40, 30);
    BGR_CHECK_EQ_INT(decode_rc(b, n, &small), BGR_ERESOLUTION_TOO_HIGH);
    struct bgr_image_limits side = {.max_side = 39};
    BGR_CHECK_EQ_INT(decode_rc(b, n, &side), BGR_ERESOLUTION_TOO_HIGH);
    side.max_side = 40;
    BGR_CHECK_EQ_INT(bgr_image_probe(b, n, &side, &inf, &err), 0);
}

/* Orientation swaps the sides before the side limit is checked. */
BGR_TEST(limits_apply_after_orientation)
{
    uint8_t *p = th_pattern(40, 20, 3);
    VipsImage *img = th_image(p, 40, 20, 3, VIPS_INTERPRETATION_sRGB);
    vips_image_set_int(img, VIPS_META_ORIENTATION, 6);
    size_t n;
    uint8_t *b = TH_SAVE(img, vips_jpegsave_buffer, &n);
    struct bgr_image_info inf;
    struct bgr_error err;
    BGR_REQUIRE(bgr_image_probe(b, n, NULL, &inf, &err) == 0);
    BGR_CHECK(inf.width == 20 && inf.height == 40);
    free(b);
    free(p);
}

struct thread_arg {
    const uint8_t *good, *bad;
    size_t good_n, bad_n;
    const uint8_t *want;
    int failures;
};

static void *decode_thread(void *v)
{
    struct thread_arg *a = v;
    for (int i = 0; i < 20; i++) {
        struct bgr_pixels px = {0};
        struct bgr_error err;
        if (bgr_image_decode(a->good, a->good_n, NULL, &px, NULL, &err) != 0 ||
            memcmp(px.data, a->want, 64 * 48 * 4) != 0)
            a->failures++;
        bgr_pixels_release(&px);
        if (bgr_image_decode(a->bad, a->bad_n, NULL, &px, NULL, &err) != BGR_EUNSUPPORTED_FORMAT)
            a->failures++;
    }
    return NULL;
}

BGR_TEST(concurrent_decodes)
{
    uint8_t *p = th_pattern(64, 48, 4);
    size_t n;
    uint8_t *b = TH_SAVE(th_image(p, 64, 48, 4, VIPS_INTERPRETATION_sRGB), vips_pngsave_buffer, &n);
    struct thread_arg args[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct thread_arg){b, b, n, n / 2, p, 0};
        BGR_REQUIRE(pthread_create(&th[i], NULL, decode_thread, &args[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        BGR_CHECK_EQ_INT(args[i].failures, 0);
    }
    free(b);
    free(p);
}

BGR_TEST_MAIN()
