/*
 * test_output.c - everything after the matte: the option parsers shared by
 * CLI and API, output sizing (max_resolution), crop, alpha and flattening
 * rules, and the encoders (formats, quality, downscale without fringes).
 */
#include "helpers.h"
#include "pipeline/pipeline.h"
#include "runner.h"

/* ---- parsers ------------------------------------------------------------ */

static int color_is(const char *s, int r, int g, int b, int a)
{
    struct bgr_color c;
    struct bgr_error err;
    if (bgr_parse_color(s, &c, &err) != 0) {
        fprintf(stderr, "  '%s' refused: %s\n", s, err.msg);
        return 0;
    }
    return c.r == r && c.g == g && c.b == b && c.a == a;
}

BGR_TEST(parse_color)
{
    BGR_CHECK(color_is("#fff", 255, 255, 255, 255));
    BGR_CHECK(color_is("f80", 255, 136, 0, 255));
    BGR_CHECK(color_is("#000000", 0, 0, 0, 255));
    BGR_CHECK(color_is("AbCdEf", 0xab, 0xcd, 0xef, 255));
    BGR_CHECK(color_is("#11223344", 0x11, 0x22, 0x33, 0x44));
    BGR_CHECK(color_is("ff000080", 255, 0, 0, 128));
    static const char *bad[] = {"",      "#",        "#ff",       "#ffff",      "#fffff",
                                "#ggg",  "##fff",    " #fff",     "#fff ",      "#1234567",
                                "#123456789", "0x123456", "#12 456", "red", "#-12"};
    for (size_t i = 0; i < BGR_ARRAY_LEN(bad); i++) {
        struct bgr_color c = {1, 2, 3, 4};
        struct bgr_error err;
        BGR_CHECK_EQ_INT(bgr_parse_color(bad[i], &c, &err), BGR_EINVALID_PARAMETER);
        BGR_CHECK(c.r == 1 && c.a == 4); /* untouched on error */
        BGR_CHECK(strstr(err.msg, "#RRGGBB") != NULL);
    }
    struct bgr_color c;
    struct bgr_error err;
    BGR_CHECK_EQ_INT(bgr_parse_color(NULL, &c, &err), BGR_EINVALID_PARAMETER);
}

BGR_TEST(parse_quality)
{
    static const struct {
        const char *s;
        int v;
    } good[] = {{"1", 1}, {"100", 100}, {"90", 90}, {"090", 90}, {"0001", 1}};
    for (size_t i = 0; i < BGR_ARRAY_LEN(good); i++) {
        int q = 0;
        struct bgr_error err;
        BGR_CHECK_EQ_INT(bgr_parse_quality(good[i].s, &q, &err), 0);
        BGR_CHECK_EQ_INT(q, good[i].v);
    }
    static const char *bad[] = {"0", "101", "", "-5", "+5", " 5", "5 ", "5.0", "1e2", "abc",
                                "99999999999999999999", "50%", "0x10", "000"};
    for (size_t i = 0; i < BGR_ARRAY_LEN(bad); i++) {
        int q = 7;
        struct bgr_error err;
        BGR_CHECK_EQ_INT(bgr_parse_quality(bad[i], &q, &err), BGR_EINVALID_PARAMETER);
        BGR_CHECK_EQ_INT(q, 7);
    }
    int q;
    struct bgr_error err;
    BGR_CHECK_EQ_INT(bgr_parse_quality(NULL, &q, &err), BGR_EINVALID_PARAMETER);
}

BGR_TEST(parse_format_and_max_res)
{
    static const struct {
        const char *s;
        enum bgr_format f;
    } good[] = {{"png", BGR_FORMAT_PNG},   {"PNG", BGR_FORMAT_PNG},   {"Webp", BGR_FORMAT_WEBP},
                {"jpeg", BGR_FORMAT_JPEG}, {"JPG", BGR_FORMAT_JPEG}, {"jpg", BGR_FORMAT_JPEG}};
    struct bgr_error err;
    for (size_t i = 0; i < BGR_ARRAY_LEN(good); i++) {
        enum bgr_format f = BGR_FORMAT_PNG;
        BGR_CHECK_EQ_INT(bgr_parse_format(good[i].s, &f, &err), 0);
        BGR_CHECK_EQ_INT(f, good[i].f);
    }
    static const char *bad[] = {"gif", "", "png ", "jpe", "image/png", NULL};
    for (size_t i = 0; i < BGR_ARRAY_LEN(bad); i++) {
        enum bgr_format f;
        BGR_CHECK_EQ_INT(bgr_parse_format(bad[i], &f, &err), BGR_EINVALID_PARAMETER);
    }
    BGR_CHECK_STR(bgr_format_name(BGR_FORMAT_PNG), "png");
    BGR_CHECK_STR(bgr_format_name(BGR_FORMAT_WEBP), "webp");
    BGR_CHECK_STR(bgr_format_name(BGR_FORMAT_JPEG), "jpeg");

    static const struct {
        const char *s;
        enum bgr_max_res r;
    } res[] = {{"original", BGR_MAXRES_ORIGINAL},
               {"1080p", BGR_MAXRES_1080P},
               {"720P", BGR_MAXRES_720P},
               {"480p", BGR_MAXRES_480P}};
    for (size_t i = 0; i < BGR_ARRAY_LEN(res); i++) {
        enum bgr_max_res r = BGR_MAXRES_ORIGINAL;
        BGR_CHECK_EQ_INT(bgr_parse_max_res(res[i].s, &r, &err), 0);
        BGR_CHECK_EQ_INT(r, res[i].r);
    }
    static const char *bad_res[] = {"1080", "4k", "", "360p", "orig", NULL};
    for (size_t i = 0; i < BGR_ARRAY_LEN(bad_res); i++) {
        enum bgr_max_res r;
        BGR_CHECK_EQ_INT(bgr_parse_max_res(bad_res[i], &r, &err), BGR_EINVALID_PARAMETER);
    }
}

BGR_TEST(output_opts_defaults)
{
    struct bgr_output_opts o;
    memset(&o, 0xff, sizeof(o));
    bgr_output_opts_init(&o);
    BGR_CHECK_EQ_INT(o.format, BGR_FORMAT_PNG);
    BGR_CHECK_EQ_INT(o.quality, 90);
    BGR_CHECK(!o.has_bg_color && !o.crop && !o.mask_only);
    BGR_CHECK_EQ_INT(o.max_res, BGR_MAXRES_ORIGINAL);
}

/* ---- sizing ------------------------------------------------------------- */

static int fits(int w, int h, int bl, int bs, int ew, int eh)
{
    int ow, oh;
    bgr_image_fit(w, h, bl, bs, &ow, &oh);
    if (ow != ew || oh != eh) {
        fprintf(stderr, "  %dx%d in %dx%d: got %dx%d, want %dx%d\n", w, h, bl, bs, ow, oh, ew, eh);
        return 0;
    }
    return 1;
}

BGR_TEST(fit_every_max_res)
{
    /* 4:3 landscape and portrait in each box. */
    BGR_CHECK(fits(4000, 3000, 1920, 1080, 1440, 1080));
    BGR_CHECK(fits(4000, 3000, 1280, 720, 960, 720));
    BGR_CHECK(fits(4000, 3000, 854, 480, 640, 480));
    BGR_CHECK(fits(3000, 4000, 1920, 1080, 1080, 1440));
    BGR_CHECK(fits(3000, 4000, 1280, 720, 720, 960));
    BGR_CHECK(fits(3000, 4000, 854, 480, 480, 640));
    /* 16:9: 854x480 is not exactly 16:9, so height limits (853.3 -> 853). */
    BGR_CHECK(fits(3840, 2160, 1920, 1080, 1920, 1080));
    BGR_CHECK(fits(3840, 2160, 1280, 720, 1280, 720));
    BGR_CHECK(fits(3840, 2160, 854, 480, 853, 480));
    BGR_CHECK(fits(2160, 3840, 854, 480, 480, 853));
    /* Wide panorama: width limits. */
    BGR_CHECK(fits(6000, 1000, 1920, 1080, 1920, 320));
    BGR_CHECK(fits(1000, 6000, 1920, 1080, 320, 1920));
    /* Square counts as landscape; rounding to nearest. */
    BGR_CHECK(fits(2000, 2000, 1920, 1080, 1080, 1080));
    BGR_CHECK(fits(1999, 1000, 854, 480, 854, 427));  /* 427.2 */
    BGR_CHECK(fits(1000, 1999, 854, 480, 427, 854));
    BGR_CHECK(fits(2001, 1000, 854, 480, 854, 427));  /* 426.79 */
    /* Never upscale; never below 1 px. */
    BGR_CHECK(fits(800, 600, 1920, 1080, 800, 600));
    BGR_CHECK(fits(800, 600, 854, 480, 640, 480));
    BGR_CHECK(fits(854, 480, 854, 480, 854, 480));
    BGR_CHECK(fits(1080, 1920, 1920, 1080, 1080, 1920));
    BGR_CHECK(fits(1, 1, 854, 480, 1, 1));
    BGR_CHECK(fits(100000, 1, 1920, 1080, 1920, 1));
    BGR_CHECK(fits(1, 100000, 854, 480, 1, 854));
    /* original */
    BGR_CHECK(fits(9000, 5000, 0, 0, 9000, 5000));
}

/* ---- crop and compose ----------------------------------------------------- */

BGR_TEST(bbox_threshold_and_empty)
{
    uint8_t m[10 * 8] = {0};
    struct bgr_rect r = {-1, -1, -1, -1};
    BGR_CHECK(!bgr_image_matte_bbox(m, 10, 8, BGR_IMAGE_CROP_THRESHOLD, &r));
    BGR_CHECK(r.x == -1); /* untouched */
    m[2 * 10 + 3] = BGR_IMAGE_CROP_THRESHOLD - 1; /* below: not subject */
    BGR_CHECK(!bgr_image_matte_bbox(m, 10, 8, BGR_IMAGE_CROP_THRESHOLD, &r));
    m[2 * 10 + 3] = BGR_IMAGE_CROP_THRESHOLD;
    m[5 * 10 + 7] = 255;
    m[4 * 10 + 1] = 100;
    BGR_REQUIRE(bgr_image_matte_bbox(m, 10, 8, BGR_IMAGE_CROP_THRESHOLD, &r));
    BGR_CHECK(r.x == 1 && r.y == 2 && r.w == 7 && r.h == 4);
    uint8_t full[6] = {255, 255, 255, 255, 255, 255};
    BGR_REQUIRE(bgr_image_matte_bbox(full, 3, 2, 13, &r));
    BGR_CHECK(r.x == 0 && r.y == 0 && r.w == 3 && r.h == 2);
}

/* 4x3 RGB image with a matte whose subject is the 2x2 block at (1,1). */
static void small_scene(struct bgr_pixels *img, uint8_t matte[12], int bands)
{
    struct bgr_error err;
    BGR_ASSERT(bgr_pixels_alloc(img, 4, 3, bands, &err) == 0);
    for (int i = 0; i < 12; i++) {
        img->data[i * bands] = (uint8_t)(10 * i);
        img->data[i * bands + 1] = 200;
        img->data[i * bands + 2] = 0;
        if (bands == 4)
            img->data[i * bands + 3] = 128;
        matte[i] = 0;
    }
    matte[1 * 4 + 1] = 255;
    matte[1 * 4 + 2] = 128;
    matte[2 * 4 + 1] = 64;
    matte[2 * 4 + 2] = 255;
}

static int compose(const struct bgr_pixels *img, const uint8_t *m, struct bgr_compose_opts o,
                   struct bgr_pixels *out)
{
    struct bgr_error err;
    int rc = bgr_image_compose(img, m, &o, out, &err);
    if (rc)
        fprintf(stderr, "  compose: %s\n", err.msg);
    return rc == 0;
}

BGR_TEST(compose_alpha_and_crop)
{
    struct bgr_pixels img, out;
    uint8_t m[12];
    small_scene(&img, m, 3);
    BGR_REQUIRE(compose(&img, m, (struct bgr_compose_opts){0}, &out));
    BGR_CHECK(out.width == 4 && out.height == 3 && out.bands == 4);
    for (int i = 0; i < 12; i++) {
        BGR_CHECK_EQ_INT(out.data[i * 4], 10 * i);
        BGR_CHECK_EQ_INT(out.data[i * 4 + 3], m[i]);
    }
    bgr_pixels_release(&out);

    BGR_REQUIRE(compose(&img, m, (struct bgr_compose_opts){.crop = true}, &out));
    BGR_CHECK(out.width == 2 && out.height == 2 && out.bands == 4);
    BGR_CHECK_EQ_INT(out.data[0], 50); /* pixel (1,1) */
    BGR_CHECK_EQ_INT(out.data[3], 255);
    BGR_CHECK_EQ_INT(out.data[3 * 4], 100); /* pixel (2,2) */
    bgr_pixels_release(&out);

    BGR_REQUIRE(compose(&img, m, (struct bgr_compose_opts){.crop = true, .mask_only = true}, &out));
    BGR_CHECK(out.width == 2 && out.height == 2 && out.bands == 1);
    BGR_CHECK(out.data[0] == 255 && out.data[1] == 128 && out.data[2] == 64 && out.data[3] == 255);
    bgr_pixels_release(&out);
    bgr_pixels_release(&img);
}

/* The input's own alpha multiplies the matte, and crop sees the product. */
BGR_TEST(compose_keeps_input_alpha)
{
    struct bgr_pixels img, out;
    uint8_t m[12];
    small_scene(&img, m, 4); /* input alpha 128 everywhere */
    img.data[(2 * 4 + 2) * 4 + 3] = 10; /* (2,2): 255 * 10 / 255 = 10 < 13 */
    BGR_REQUIRE(compose(&img, m, (struct bgr_compose_opts){0}, &out));
    BGR_CHECK_EQ_INT(out.data[(1 * 4 + 1) * 4 + 3], 128); /* 255 * 128 / 255 */
    BGR_CHECK_EQ_INT(out.data[(1 * 4 + 2) * 4 + 3], 64);  /* 128 * 128 / 255 = 64.25 */
    BGR_CHECK_EQ_INT(out.data[(2 * 4 + 1) * 4 + 3], 32);  /* 64 * 128 / 255 = 32.13 */
    BGR_CHECK_EQ_INT(out.data[(2 * 4 + 2) * 4 + 3], 10);
    BGR_CHECK_EQ_INT(out.data[0 + 3], 0);
    bgr_pixels_release(&out);
    BGR_REQUIRE(compose(&img, m, (struct bgr_compose_opts){.crop = true}, &out));
    BGR_CHECK(out.width == 2 && out.height == 2); /* (2,2) is under the threshold, (1,2) not */
    bgr_pixels_release(&out);
    BGR_REQUIRE(compose(&img, m, (struct bgr_compose_opts){.mask_only = true}, &out));
    BGR_CHECK(out.bands == 1 && out.data[1 * 4 + 2] == 64);
    bgr_pixels_release(&out);
    bgr_pixels_release(&img);
}

/* No subject: a defined 1x1 image, transparent or the background. */
BGR_TEST(crop_without_subject)
{
    struct bgr_pixels img, out;
    uint8_t m[12] = {0};
    small_scene(&img, m, 3);
    memset(m, 12, sizeof(m)); /* everything just under the threshold */
    BGR_REQUIRE(compose(&img, m, (struct bgr_compose_opts){.crop = true}, &out));
    BGR_CHECK(out.width == 1 && out.height == 1 && out.bands == 4 && out.data[3] == 0);
    bgr_pixels_release(&out);
    BGR_REQUIRE(compose(&img, m, (struct bgr_compose_opts){.crop = true, .opaque = true}, &out));
    BGR_CHECK(out.width == 1 && out.bands == 3 && out.data[0] == 255 && out.data[1] == 255 &&
              out.data[2] == 255);
    bgr_pixels_release(&out);
    BGR_REQUIRE(compose(&img, m,
                        (struct bgr_compose_opts){.crop = true, .flatten = true, .bg = {1, 2, 3, 255}},
                        &out));
    BGR_CHECK(out.bands == 3 && out.data[0] == 1 && out.data[1] == 2 && out.data[2] == 3);
    bgr_pixels_release(&out);
    BGR_REQUIRE(compose(&img, m, (struct bgr_compose_opts){.crop = true, .mask_only = true}, &out));
    BGR_CHECK(out.width == 1 && out.bands == 1 && out.data[0] == 0);
    bgr_pixels_release(&out);

    /* And it encodes. */
    struct bgr_encoded enc;
    struct bgr_error err;
    BGR_REQUIRE(compose(&img, m, (struct bgr_compose_opts){.crop = true}, &out));
    BGR_CHECK_EQ_INT(bgr_image_encode(&out, &(struct bgr_encode_opts){BGR_IMAGE_WEBP, 90, 0, 0},
                                      &enc, &err),
                     0);
    BGR_CHECK(enc.width == 1 && enc.height == 1 && enc.len > 0);
    bgr_encoded_release(&enc);
    bgr_pixels_release(&out);
    bgr_pixels_release(&img);
}

/* JPEG output: flattened on white by default, on the colour if given. */
BGR_TEST(flatten_rules)
{
    struct bgr_pixels img, out;
    uint8_t m[3] = {0, 255, 128};
    struct bgr_error err;
    BGR_REQUIRE(bgr_pixels_alloc(&img, 3, 1, 3, &err) == 0);
    memset(img.data, 0, 9); /* black */
    img.data[6] = 200;      /* pixel 2: (200, 0, 0) */
    BGR_REQUIRE(compose(&img, m, (struct bgr_compose_opts){.opaque = true}, &out));
    BGR_REQUIRE(out.bands == 3);
    BGR_CHECK(out.data[0] == 255 && out.data[1] == 255 && out.data[2] == 255); /* white */
    BGR_CHECK(out.data[3] == 0 && out.data[4] == 0 && out.data[5] == 0);       /* subject */
    /* 200 * 128/255 + 255 * 127/255 = 227.4; 0 + 127 = 127.0 */
    BGR_CHECK(out.data[6] == 227 && out.data[7] == 127 && out.data[8] == 127);
    bgr_pixels_release(&out);

    /* Opaque colour on PNG: 3 bands. JPEG ignores the colour's alpha. */
    BGR_REQUIRE(compose(&img, m, (struct bgr_compose_opts){.flatten = true, .bg = {0, 255, 0, 255}},
                        &out));
    BGR_CHECK(out.bands == 3 && out.data[0] == 0 && out.data[1] == 255 && out.data[4] == 0);
    bgr_pixels_release(&out);
    BGR_REQUIRE(compose(&img, m,
                        (struct bgr_compose_opts){.flatten = true, .opaque = true,
                                                  .bg = {0, 0, 255, 0}},
                        &out));
    BGR_CHECK(out.bands == 3 && out.data[2] == 255 && out.data[5] == 0);
    bgr_pixels_release(&out);

    /* Translucent colour on PNG/WebP: src-over, alpha kept. */
    BGR_REQUIRE(compose(&img, m, (struct bgr_compose_opts){.flatten = true, .bg = {0, 0, 100, 128}},
                        &out));
    BGR_REQUIRE(out.bands == 4);
    BGR_CHECK(out.data[0] == 0 && out.data[2] == 100 && out.data[3] == 128); /* bg only */
    BGR_CHECK(out.data[4] == 0 && out.data[6] == 0 && out.data[7] == 255);   /* fg only */
    /* a = 128/255 + 128/255 * 127/255 = 0.752 -> 192; red = 200 * 0.502 / 0.752 = 133.5;
     * blue = 100 * 0.25 / 0.752 = 33.2 */
    BGR_CHECK_EQ_INT(out.data[11], 192);
    BGR_CHECK(abs(out.data[8] - 134) <= 1 && abs(out.data[10] - 33) <= 1);
    bgr_pixels_release(&out);
    bgr_pixels_release(&img);
}

/* ---- encode ------------------------------------------------------------- */

static VipsImage *load(const struct bgr_encoded *e)
{
    VipsImage *x = vips_image_new_from_buffer(e->data, e->len, "", NULL);
    if (!x)
        th_die("reload");
    return x;
}

BGR_TEST(encode_formats_roundtrip)
{
    struct bgr_pixels img = {th_pattern(64, 48, 4), 64, 48, 4};
    struct bgr_encoded e;
    struct bgr_error err;
    BGR_REQUIRE(bgr_image_encode(&img, &(struct bgr_encode_opts){BGR_IMAGE_PNG, 90, 0, 0}, &e,
                                 &err) == 0);
    BGR_CHECK(e.width == 64 && e.height == 48 && e.len > 8 && memcmp(e.data, "\x89PNG", 4) == 0);
    struct bgr_pixels back;
    BGR_REQUIRE(bgr_image_decode(e.data, e.len, NULL, &back, NULL, &err) == 0);
    BGR_CHECK(back.bands == 4 && memcmp(back.data, img.data, 64 * 48 * 4) == 0);
    bgr_pixels_release(&back);
    VipsImage *x = load(&e);
    BGR_CHECK_EQ_INT(vips_image_get_format(x), VIPS_FORMAT_UCHAR);
    BGR_CHECK(!vips_image_get_typeof(x, VIPS_META_EXIF_NAME));
    g_object_unref(x);
    bgr_encoded_release(&e);

    BGR_REQUIRE(bgr_image_encode(&img, &(struct bgr_encode_opts){BGR_IMAGE_WEBP, 90, 0, 0}, &e,
                                 &err) == 0);
    BGR_CHECK(memcmp(e.data, "RIFF", 4) == 0 && memcmp(e.data + 8, "WEBP", 4) == 0);
    x = load(&e);
    BGR_CHECK_EQ_INT(vips_image_get_bands(x), 4);
    g_object_unref(x);
    bgr_encoded_release(&e);

    /* JPEG: no alpha, so 4 bands are refused; quality changes the size. */
    BGR_CHECK_EQ_INT(bgr_image_encode(&img, &(struct bgr_encode_opts){BGR_IMAGE_JPEG, 90, 0, 0},
                                      &e, &err),
                     BGR_EINVALID_PARAMETER);
    struct bgr_pixels rgb = {th_pattern(64, 48, 3), 64, 48, 3};
    struct bgr_encoded lo, hi;
    BGR_REQUIRE(bgr_image_encode(&rgb, &(struct bgr_encode_opts){BGR_IMAGE_JPEG, 10, 0, 0}, &lo,
                                 &err) == 0);
    BGR_REQUIRE(bgr_image_encode(&rgb, &(struct bgr_encode_opts){BGR_IMAGE_JPEG, 100, 0, 0}, &hi,
                                 &err) == 0);
    BGR_CHECK(lo.data[0] == 0xff && lo.data[1] == 0xd8 && lo.len < hi.len);
    x = load(&hi);
    BGR_CHECK_EQ_INT(vips_image_get_bands(x), 3);
    g_object_unref(x);
    bgr_encoded_release(&lo);
    bgr_encoded_release(&hi);
    BGR_CHECK_EQ_INT(bgr_image_encode(&rgb, &(struct bgr_encode_opts){BGR_IMAGE_WEBP, 0, 0, 0}, &e,
                                      &err),
                     BGR_EINVALID_PARAMETER);
    BGR_CHECK_EQ_INT(bgr_image_encode(&rgb, &(struct bgr_encode_opts){BGR_IMAGE_PNG, 90, 65, 48},
                                      &e, &err),
                     BGR_EINVALID_PARAMETER); /* no upscale */

    /* The mask: a one-band grey PNG. */
    struct bgr_pixels grey = {th_pattern(64, 48, 1), 64, 48, 1};
    BGR_REQUIRE(bgr_image_encode(&grey, &(struct bgr_encode_opts){BGR_IMAGE_PNG, 90, 32, 24}, &e,
                                 &err) == 0);
    x = load(&e);
    BGR_CHECK(vips_image_get_bands(x) == 1 && vips_image_get_width(x) == 32 &&
              vips_image_get_height(x) == 24);
    BGR_CHECK(e.data[25] == 0); /* IHDR colour type: greyscale */
    g_object_unref(x);
    bgr_encoded_release(&e);
    bgr_pixels_release(&grey);
    bgr_pixels_release(&rgb);
    bgr_pixels_release(&img);
}

/* Downscale lands on exactly the asked size, for awkward ratios too. */
BGR_TEST(encode_downscale_sizes)
{
    static const int sizes[][4] = {{451, 300, 117, 78},  {300, 451, 78, 117}, {1000, 3, 999, 3},
                                   {97, 89, 1, 1},       {640, 480, 320, 240}, {853, 480, 852, 479},
                                   {2001, 1000, 854, 427}};
    for (size_t i = 0; i < BGR_ARRAY_LEN(sizes); i++) {
        int w = sizes[i][0], h = sizes[i][1];
        for (int bands = 3; bands <= 4; bands++) {
            struct bgr_pixels img = {th_pattern(w, h, bands), w, h, bands};
            struct bgr_encoded e;
            struct bgr_error err;
            int rc = bgr_image_encode(
                &img, &(struct bgr_encode_opts){BGR_IMAGE_PNG, 90, sizes[i][2], sizes[i][3]}, &e,
                &err);
            BGR_CHECK_EQ_INT(rc, 0);
            if (rc == 0) {
                VipsImage *x = load(&e);
                BGR_CHECK_EQ_INT(vips_image_get_width(x), sizes[i][2]);
                BGR_CHECK_EQ_INT(vips_image_get_height(x), sizes[i][3]);
                g_object_unref(x);
                bgr_encoded_release(&e);
            }
            bgr_pixels_release(&img);
        }
    }
}

/* Red subject on the left, transparent *black* on the right: a
 * non-premultiplied downscale would darken the edge; ours keeps it red. */
BGR_TEST(downscale_has_no_dark_fringe)
{
    int w = 64, h = 16;
    struct bgr_pixels img;
    struct bgr_error err;
    BGR_REQUIRE(bgr_pixels_alloc(&img, w, h, 4, &err) == 0);
    for (int i = 0; i < w * h; i++) {
        uint8_t *d = img.data + i * 4;
        bool left = (i % w) < 33;
        d[0] = left ? 255 : 0;
        d[1] = d[2] = 0;
        d[3] = left ? 255 : 0;
    }
    struct bgr_encoded e;
    BGR_REQUIRE(bgr_image_encode(&img, &(struct bgr_encode_opts){BGR_IMAGE_PNG, 90, 16, 4}, &e,
                                 &err) == 0);
    struct bgr_pixels back;
    BGR_REQUIRE(bgr_image_decode(e.data, e.len, NULL, &back, NULL, &err) == 0);
    int partial = 0;
    for (int x = 0; x < 16; x++) {
        const uint8_t *p = back.data + (2 * 16 + x) * 4;
        if (p[3] > 8 && p[3] < 247) {
            partial++;
            BGR_CHECK(p[0] >= 250); /* still pure red where partly covered */
        }
        if (p[3] >= 8)
            BGR_CHECK(p[0] >= 240);
    }
    BGR_CHECK(partial >= 1);
    bgr_pixels_release(&back);
    bgr_encoded_release(&e);
    bgr_pixels_release(&img);
}

BGR_TEST_MAIN()
