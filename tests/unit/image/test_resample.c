/*
 * test_resample.c - bit-exactness of the reference-runtime ports
 * (resample.c) against numbers produced by running the reference's own
 * JavaScript (tensorResizeBilinear, tensorHWCtoBCHW, convertFloat32ToUint8
 * from @imgly/background-removal-node 1.4.5) in node on the same inputs.
 * Inputs come from a xorshift32 generator both sides implement identically.
 */
#include <stdint.h>
#include <stdlib.h>

#include "image/image.h"
#include "runner.h"

static uint32_t rng_state;
static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static uint8_t *random_bytes(size_t n, uint32_t seed)
{
    rng_state = seed;
    uint8_t *p = malloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(rng() & 255);
    return p;
}

/* (rnd % 2001) / 2000 stored as float32, as in the JS Float32Array. */
static float *random_matte(size_t n, uint32_t seed)
{
    rng_state = seed;
    float *f = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        f[i] = (float)((double)(rng() % 2001) / 2000.0);
    return f;
}

static uint32_t fnv1a(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

static int bytes_equal(const uint8_t *got, const uint8_t *want, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (got[i] != want[i]) {
            fprintf(stderr, "  byte %zu: got %d, want %d\n", i, got[i], want[i]);
            return 0;
        }
    return 1;
}

/* Math.round's halves go up: 0.5 -> 1, 1.5 -> 2, 2.5 -> 3. */
BGR_TEST(resize_rounds_halves_up)
{
    const uint8_t src[] = {0, 1, 2, 3, 10, 20, 30, 40}; /* 4x2, 1 channel */
    const uint8_t want[] = {0,  1,  1,  2,  2,  3,  3,  3,  7,  10, 14, 17,
                            21, 24, 28, 28, 10, 15, 20, 25, 30, 35, 40, 40};
    uint8_t got[24];
    bgr_image_resize_ref(src, 4, 2, 1, 1, got, 8, 3);
    BGR_CHECK(bytes_equal(got, want, sizeof(want)));
}

BGR_TEST(resize_small_rgb_matches_js)
{
    uint8_t *src = random_bytes(5 * 3 * 3, 7);
    const uint8_t src_want[] = {231, 7,   67,  69,  255, 148, 186, 87,  175, 10,  253, 228,
                                168, 254, 69,  53,  237, 218, 60,  43,  48,  112, 83,  216,
                                156, 69,  148, 87,  250, 161, 53,  151, 170, 113, 223, 86,
                                201, 232, 165, 135, 102, 234, 76,  140, 255};
    BGR_REQUIRE(bytes_equal(src, src_want, sizeof(src_want)));
    const uint8_t want_7x4[] = {
        231, 7,   67,  115, 184, 125, 119, 183, 160, 161, 111, 183, 35,  229, 220, 100, 254,
        137, 168, 254, 69,  98,  180, 180, 72,  120, 104, 92,  91,  130, 129, 88,  200, 121,
        111, 173, 113, 193, 151, 107, 251, 138, 53,  194, 194, 77,  150, 103, 117, 144, 120,
        155, 147, 191, 147, 96,  191, 109, 148, 201, 81,  195, 208, 53,  151, 170, 96,  202,
        110, 151, 227, 120, 192, 213, 175, 144, 121, 224, 101, 124, 246, 76,  140, 255};
    const uint8_t want_2x2[] = {231, 7, 67, 98, 170, 202, 53, 194, 194, 151, 122, 191};
    const uint8_t want_3x5[] = {231, 7,   67,  147, 143, 166, 63,  253, 175, 124, 145, 158,
                                116, 99,  162, 105, 179, 161, 53,  220, 208, 110, 102, 156,
                                129, 126, 170, 53,  168, 180, 156, 197, 143, 119, 118, 223,
                                53,  151, 170, 172, 229, 139, 115, 115, 241};
    uint8_t got[7 * 4 * 3];
    bgr_image_resize_ref(src, 5, 3, 3, 3, got, 7, 4);
    BGR_CHECK(bytes_equal(got, want_7x4, sizeof(want_7x4)));
    bgr_image_resize_ref(src, 5, 3, 3, 3, got, 2, 2);
    BGR_CHECK(bytes_equal(got, want_2x2, sizeof(want_2x2)));
    bgr_image_resize_ref(src, 5, 3, 3, 3, got, 3, 5);
    BGR_CHECK(bytes_equal(got, want_3x5, sizeof(want_3x5)));
    free(src);
}

/* The whole preprocessing of a 37x23 RGBA image to the 1024x1024 tensor. */
BGR_TEST(tensor_matches_js)
{
    struct bgr_pixels img = {random_bytes(37 * 23 * 4, 12345), 37, 23, 4};
    uint8_t *rs = malloc(1024 * 1024 * 3);
    bgr_image_resize_ref(img.data, 37, 23, 4, 3, rs, 1024, 1024);
    /* JS hashes its RGBA result; rebuild that layout (alpha resized too). */
    uint8_t *rgba = malloc(1024 * 1024 * 4);
    bgr_image_resize_ref(img.data, 37, 23, 4, 4, rgba, 1024, 1024);
    BGR_CHECK_EQ_INT(fnv1a(rgba, 1024 * 1024 * 4), 1366146967u);
    for (size_t i = 0; i < 1024 * 1024; i++)
        BGR_REQUIRE(rgba[i * 4] == rs[i * 3] && rgba[i * 4 + 2] == rs[i * 3 + 2]);

    float *t = malloc(3 * 1024 * 1024 * sizeof(float));
    bgr_image_to_tensor(&img, 1024, 1024, t);
    double sum = 0;
    for (size_t i = 0; i < 3 * 1024 * 1024; i++)
        sum += t[i];
    BGR_CHECK(sum == -4782.80078125);
    BGR_CHECK(t[0] == -0.0234375f && t[1] == -0.01171875f && t[1024 * 1024] == 0.18359375f);
    BGR_CHECK(t[2 * 1024 * 1024 + 5] == 0.12109375f && t[3 * 1024 * 1024 - 1] == 0.23828125f);
    free(t);
    free(rgba);
    free(rs);
    free(img.data);
}

/* Uint8Array semantics: truncation, modulo 256, NaN -> 0. */
BGR_TEST(float_to_u8_matches_js)
{
    const float in[] = {0,     0.5f, 1,    0.999f,    0.0039215689f, 1.0039216f,
                        -0.001f, 0.1f, 0.2f, 0.3f,      0.7f,          0.123456f,
                        NAN,   1e-8f, 0.99999994f, 2.5f, -1.5f};
    const uint8_t want[] = {0, 127, 255, 254, 1, 0, 0, 25, 51, 76, 178, 31, 0, 0, 254, 125, 130};
    uint8_t got[BGR_ARRAY_LEN(in)];
    bgr_image_float_to_u8(in, BGR_ARRAY_LEN(in), got);
    BGR_CHECK(bytes_equal(got, want, sizeof(want)));
}

/* Model output to matte at the sizes a photo gives, up and down. */
BGR_TEST(matte_matches_js)
{
    struct bgr_error err;
    float *m = random_matte(64 * 64, 99);
    uint8_t u8[64 * 64], out[100 * 77];
    bgr_image_float_to_u8(m, 64 * 64, u8);
    BGR_CHECK_EQ_INT(fnv1a(u8, sizeof(u8)), 2447052722u);
    BGR_REQUIRE(bgr_image_matte_from_output(m, 64, 64, out, 37, 23, &err) == 0);
    BGR_CHECK_EQ_INT(fnv1a(out, 37 * 23), 832585185u);
    BGR_REQUIRE(bgr_image_matte_from_output(m, 64, 64, out, 100, 77, &err) == 0);
    BGR_CHECK_EQ_INT(fnv1a(out, 100 * 77), 2418841987u);
    free(m);

    float *big = random_matte(1024 * 1024, 4242);
    uint8_t *o = malloc(2000 * 1500);
    BGR_REQUIRE(bgr_image_matte_from_output(big, 1024, 1024, o, 451, 300, &err) == 0);
    BGR_CHECK_EQ_INT(fnv1a(o, 451 * 300), 4249539525u);
    BGR_REQUIRE(bgr_image_matte_from_output(big, 1024, 1024, o, 300, 451, &err) == 0);
    BGR_CHECK_EQ_INT(fnv1a(o, 300 * 451), 2066923360u);
    BGR_REQUIRE(bgr_image_matte_from_output(big, 1024, 1024, o, 2000, 1500, &err) == 0);
    BGR_CHECK_EQ_INT(fnv1a(o, 2000 * 1500), 2540384200u);
    free(o);
    free(big);
}

/* Same size is the identity (the reference resizes even then). */
BGR_TEST(resize_same_size_is_identity)
{
    uint8_t *src = random_bytes(13 * 11 * 4, 5);
    uint8_t dst[13 * 11 * 4];
    bgr_image_resize_ref(src, 13, 11, 4, 4, dst, 13, 11);
    BGR_CHECK(memcmp(src, dst, sizeof(dst)) == 0);
    free(src);
}

BGR_TEST_MAIN()
