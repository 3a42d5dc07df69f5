/*
 * test_pipeline.c - bgr_pipeline_process end to end with a fake model, so
 * the wiring (shapes from the model, preprocessing, matte back to size,
 * options, result fields, timings, errors, threads) is tested without the
 * real network. The fake "segments" red: its output is 1 where the input
 * tensor's red channel is high and 0 elsewhere. The real model's parity is
 * tested by the CLI's end-to-end tests.
 *
 * This binary compiles src/pipeline's sources itself and links no
 * src/infer: the functions below are the whole model it sees.
 */
#include <pthread.h>

#include "helpers.h"
#include "pipeline/pipeline.h"
#include "runner.h"

struct bgr_model {
    int side;  /* input and output are side x side */
    int runs;  /* counted under lock */
    int fail;  /* make bgr_model_run fail */
    pthread_mutex_t lock;
};

struct bgr_shape bgr_model_input_shape(const struct bgr_model *m)
{
    return (struct bgr_shape){4, {1, 3, m->side, m->side}};
}

struct bgr_shape bgr_model_output_shape(const struct bgr_model *m)
{
    return (struct bgr_shape){4, {1, 1, m->side, m->side}};
}

int bgr_model_run(struct bgr_model *m, const float *in, size_t in_count, float *out,
                  size_t out_count, struct bgr_error *err)
{
    size_t plane = (size_t)m->side * (size_t)m->side;
    if (in_count != 3 * plane || out_count != plane)
        return bgr_error_set(err, BGR_ESHAPE, "fake model: wrong tensor sizes");
    if (m->fail)
        return bgr_error_set(err, BGR_EINTERNAL, "fake model failure");
    pthread_mutex_lock(&m->lock);
    m->runs++;
    pthread_mutex_unlock(&m->lock);
    /* Normalised red (v - 128) / 256 > 0.25 means v > 192. */
    for (size_t i = 0; i < plane; i++)
        out[i] = in[i] > 0.25f ? 1.0f : 0.0f;
    return 0;
}

/* 300x200 JPEG/PNG: blue background, red 100x80 block at (120, 60). */
static uint8_t *scene(size_t *n, const char *saver)
{
    int w = 300, h = 200;
    uint8_t *p = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            bool red = x >= 120 && x < 220 && y >= 60 && y < 140;
            uint8_t *d = p + ((size_t)y * w + x) * 3;
            d[0] = red ? 240 : 20;
            d[1] = 20;
            d[2] = red ? 20 : 230;
        }
    VipsImage *img = th_image(p, w, h, 3, VIPS_INTERPRETATION_sRGB);
    free(p);
    if (strcmp(saver, "png") == 0)
        return TH_SAVE(img, vips_pngsave_buffer, n);
    return TH_SAVE(img, vips_jpegsave_buffer, n, "Q", 95);
}

static struct bgr_model *fake_model(int side)
{
    struct bgr_model *m = calloc(1, sizeof(*m));
    m->side = side;
    pthread_mutex_init(&m->lock, NULL);
    return m;
}

static void fake_free(struct bgr_model *m)
{
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static VipsImage *reload(const struct bgr_result *r)
{
    VipsImage *x = vips_image_new_from_buffer(r->data, r->len, "", NULL);
    if (!x)
        th_die("reload");
    return x;
}

static double pixel(VipsImage *x, int px, int py, int band)
{
    double *v = NULL;
    int n = 0;
    if (vips_getpoint(x, &v, &n, px, py, NULL))
        th_die("getpoint");
    double r = band < n ? v[band] : -1;
    g_free(v);
    return r;
}

BGR_TEST(cutout_png_default)
{
    struct bgr_model *m = fake_model(64);
    size_t n;
    uint8_t *in = scene(&n, "png");
    struct bgr_output_opts o;
    bgr_output_opts_init(&o);
    struct bgr_result r;
    struct bgr_timings t;
    struct bgr_error err = {0};
    int rc = bgr_pipeline_process(m, in, n, NULL, &o, &r, &t, &err);
    if (rc)
        fprintf(stderr, "  %s\n", err.msg);
    BGR_REQUIRE(rc == 0);
    BGR_CHECK_EQ_INT(m->runs, 1);
    BGR_CHECK(r.format == BGR_FORMAT_PNG && r.width == 300 && r.height == 200);
    BGR_CHECK(r.original_width == 300 && r.original_height == 200);
    BGR_CHECK_STR(r.mime, "image/png");
    BGR_CHECK_STR(r.ext, "png");
    BGR_CHECK(t.total_ms > 0 && t.total_ms >= t.decode_ms + t.infer_ms);
    VipsImage *x = reload(&r);
    BGR_CHECK_EQ_INT(vips_image_get_bands(x), 4);
    BGR_CHECK_EQ_INT(pixel(x, 170, 100, 3), 255); /* subject */
    BGR_CHECK_EQ_INT(pixel(x, 170, 100, 0), 240);
    BGR_CHECK_EQ_INT(pixel(x, 20, 20, 3), 0); /* background */
    g_object_unref(x);
    bgr_result_release(&r);
    BGR_CHECK(r.data == NULL);
    free(in);
    fake_free(m);
}

BGR_TEST(options_crop_jpeg_mask_max_res)
{
    struct bgr_model *m = fake_model(64);
    size_t n;
    uint8_t *in = scene(&n, "png");
    struct bgr_output_opts o;
    struct bgr_result r;
    struct bgr_error err;

    bgr_output_opts_init(&o);
    o.crop = true;
    BGR_REQUIRE(bgr_pipeline_process(m, in, n, NULL, &o, &r, NULL, &err) == 0);
    /* The block, give or take the fake's 64-pixel resolution. */
    BGR_CHECK(abs(r.width - 100) <= 6 && abs(r.height - 80) <= 6);
    BGR_CHECK(r.original_width == 300);
    bgr_result_release(&r);

    bgr_output_opts_init(&o);
    o.format = BGR_FORMAT_JPEG;
    o.max_res = BGR_MAXRES_480P; /* 300x200 is inside: unchanged */
    BGR_REQUIRE(bgr_pipeline_process(m, in, n, NULL, &o, &r, NULL, &err) == 0);
    BGR_CHECK(r.format == BGR_FORMAT_JPEG && r.width == 300 && r.height == 200);
    BGR_CHECK_STR(r.ext, "jpg");
    BGR_CHECK_STR(r.mime, "image/jpeg");
    VipsImage *x = reload(&r);
    BGR_CHECK_EQ_INT(vips_image_get_bands(x), 3);
    BGR_CHECK(pixel(x, 20, 20, 0) > 245 && pixel(x, 20, 20, 2) > 245); /* white */
    g_object_unref(x);
    bgr_result_release(&r);

    bgr_output_opts_init(&o);
    o.mask_only = true;
    o.format = BGR_FORMAT_WEBP; /* the mask is a PNG whatever the format */
    BGR_REQUIRE(bgr_pipeline_process(m, in, n, NULL, &o, &r, NULL, &err) == 0);
    BGR_CHECK(r.format == BGR_FORMAT_PNG);
    x = reload(&r);
    BGR_CHECK(vips_image_get_bands(x) == 1 && pixel(x, 170, 100, 0) == 255 &&
              pixel(x, 20, 20, 0) == 0);
    g_object_unref(x);
    bgr_result_release(&r);

    bgr_output_opts_init(&o);
    o.format = BGR_FORMAT_WEBP;
    o.has_bg_color = true;
    o.bg_color = (struct bgr_color){0, 255, 0, 255};
    BGR_REQUIRE(bgr_pipeline_process(m, in, n, NULL, &o, &r, NULL, &err) == 0);
    x = reload(&r);
    BGR_CHECK(vips_image_get_bands(x) == 3 && pixel(x, 20, 20, 1) > 240 && pixel(x, 20, 20, 0) < 15);
    g_object_unref(x);
    bgr_result_release(&r);
    free(in);
    fake_free(m);
}

/* A 2400x1600 photo under 720p becomes 1080x720; EXIF 6 turns it first. */
BGR_TEST(max_res_after_orientation)
{
    struct bgr_model *m = fake_model(32);
    int w = 2400, h = 1600;
    uint8_t *p = th_pattern(w, h, 3);
    VipsImage *img = th_image(p, w, h, 3, VIPS_INTERPRETATION_sRGB);
    vips_image_set_int(img, VIPS_META_ORIENTATION, 6);
    size_t n;
    uint8_t *in = TH_SAVE(img, vips_jpegsave_buffer, &n, "Q", 80);
    struct bgr_output_opts o;
    bgr_output_opts_init(&o);
    o.max_res = BGR_MAXRES_720P;
    struct bgr_result r;
    struct bgr_error err;
    BGR_REQUIRE(bgr_pipeline_process(m, in, n, NULL, &o, &r, NULL, &err) == 0);
    BGR_CHECK(r.original_width == 1600 && r.original_height == 2400);
    BGR_CHECK(r.width == 720 && r.height == 1080); /* portrait box 720x1280 */
    bgr_result_release(&r);
    free(in);
    free(p);
    fake_free(m);
}

BGR_TEST(errors)
{
    struct bgr_model *m = fake_model(16);
    size_t n;
    uint8_t *in = scene(&n, "jpeg");
    struct bgr_output_opts o;
    bgr_output_opts_init(&o);
    struct bgr_result r = {0};
    struct bgr_error err;
    BGR_CHECK_EQ_INT(bgr_pipeline_process(m, in, 0, NULL, &o, &r, NULL, &err),
                     BGR_EUNSUPPORTED_FORMAT);
    BGR_CHECK_EQ_INT(bgr_pipeline_process(m, in, n / 3, NULL, &o, &r, NULL, &err),
                     BGR_EUNSUPPORTED_FORMAT);
    struct bgr_decode_limits lim = {.max_pixels = 300 * 200 - 1};
    BGR_CHECK_EQ_INT(bgr_pipeline_process(m, in, n, &lim, &o, &r, NULL, &err),
                     BGR_ERESOLUTION_TOO_HIGH);
    o.quality = 0;
    BGR_CHECK_EQ_INT(bgr_pipeline_process(m, in, n, NULL, &o, &r, NULL, &err),
                     BGR_EINVALID_PARAMETER);
    bgr_output_opts_init(&o);
    m->fail = 1;
    BGR_CHECK_EQ_INT(bgr_pipeline_process(m, in, n, NULL, &o, &r, NULL, &err), BGR_EINTERNAL);
    BGR_CHECK_STR(err.msg, "fake model failure");
    BGR_CHECK(r.data == NULL);
    BGR_CHECK_EQ_INT(m->runs, 0); /* nothing reached the model but the last */
    free(in);
    fake_free(m);
}

struct worker {
    struct bgr_model *m;
    const uint8_t *in;
    size_t n;
    size_t want_len;
    const uint8_t *want;
    int failures;
};

static void *worker_main(void *v)
{
    struct worker *w = v;
    struct bgr_output_opts o;
    bgr_output_opts_init(&o);
    for (int i = 0; i < 5; i++) {
        struct bgr_result r;
        struct bgr_error err;
        if (bgr_pipeline_process(w->m, w->in, w->n, NULL, &o, &r, NULL, &err) != 0) {
            w->failures++;
            continue;
        }
        if (r.len != w->want_len || memcmp(r.data, w->want, r.len) != 0)
            w->failures++;
        bgr_result_release(&r);
    }
    return NULL;
}

/* Several threads at once give the same bytes as one. */
BGR_TEST(concurrent_calls)
{
    struct bgr_model *m = fake_model(64);
    size_t n;
    uint8_t *in = scene(&n, "jpeg");
    struct bgr_output_opts o;
    bgr_output_opts_init(&o);
    struct bgr_result ref;
    struct bgr_error err;
    BGR_REQUIRE(bgr_pipeline_process(m, in, n, NULL, &o, &ref, NULL, &err) == 0);
    struct worker ws[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        ws[i] = (struct worker){m, in, n, ref.len, ref.data, 0};
        BGR_REQUIRE(pthread_create(&th[i], NULL, worker_main, &ws[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        BGR_CHECK_EQ_INT(ws[i].failures, 0);
    }
    BGR_CHECK_EQ_INT(m->runs, 21);
    bgr_result_release(&ref);
    free(in);
    fake_free(m);
}

BGR_TEST_MAIN()
