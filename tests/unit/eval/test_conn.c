/*
 * test_conn.c - connectivity error (src/eval/conn.c) on tiny mattes. Each
 * expected value is worked out in the comment above its check, from the
 * definition in eval.h: levels l = k/10, phi = 1 - d when d = x - l >= 0.15.
 */
#include <stdint.h>
#include <stdlib.h>

#include "eval/eval.h"
#include "runner.h"

static double conn(const uint8_t *p, const uint8_t *g, int w, int h)
{
    struct bgr_error err;
    double c = -1;
    bgr_error_clear(&err);
    if (bgr_eval_conn(p, g, w, h, &c, &err) != 0)
        return -1;
    return c;
}

BGR_TEST(identical_is_zero)
{
    const uint8_t a[6] = {0, 40, 128, 200, 255, 255};
    BGR_CHECK_NEAR(conn(a, a, 3, 2), 0, 0);
    const uint8_t z[4] = {0};
    BGR_CHECK_NEAR(conn(z, z, 2, 2), 0, 0);
}

BGR_TEST(missed_pixel)
{
    /* g = 1 1 1, p = 1 1 0. t = 0.1: Omega = {0, 1}; pixel 2 gets l = 0 and
     * keeps it. Pixels 0 and 1 are never cut off: l = 1, d = 0 for both.
     * Pixel 2: phi_p = 1 (d = 0), phi_g = 1 - 1 = 0. Error 1 / 1000. */
    const uint8_t g[3] = {255, 255, 255}, p[3] = {255, 255, 0};
    BGR_CHECK_NEAR(conn(p, g, 3, 1), 0.001, 1e-12);
}

BGR_TEST(exact_threshold)
{
    /* g = 1 1, p = 1 0.2 (51). 0.2 >= 0.2 holds exactly, so pixel 1 stays in
     * Omega up to t = 0.2 and gets l = 0.2 at t = 0.3. phi_p = 1 (d = 0),
     * phi_g = 1 - 0.8 = 0.2: error 0.8 / 1000. (Read as just below its
     * threshold, as a floating-point sweep may, it would get l = 0.1:
     * phi_p = 1, phi_g = 0.1, error 0.9 / 1000.) */
    const uint8_t g[2] = {255, 255}, p[2] = {255, 51};
    BGR_CHECK_NEAR(conn(p, g, 2, 1), 0.0008, 1e-12);
}

BGR_TEST(level_from_a_soft_ground_truth)
{
    /* g = 1 1 / 1 1 with g(1,1) = 128 (0.50196), p = 1 0 / 0 1 (3 x 2:
     * last column 0 in p, 1 in g).
     * p:  255   0   0     g: 255 255 255
     *       0 255   0        255 128 255
     * t = 0.1 .. 0.5: the two p = 1 pixels touch diagonally (8-connected):
     * one component, Omega; the four p = 0 pixels get l = 0 at t = 0.1:
     * phi_p = 1, phi_g = 0, 4 in all. t = 0.6: g(1,1) drops out and gets
     * l = 0.5: phi_p = 1 - 0.5, phi_g = 1 (d = 0.002 < 0.15): 0.5. Pixel
     * (0,0) is never cut off: 0. Error 4.5 / 1000. With 4-connectivity
     * (1,1) would be cut off at t = 0.1 (l = 0: phi_p = 0,
     * phi_g = 1 - 128/255) and the error would be 4.498 / 1000. */
    const uint8_t p[6] = {255, 0, 0, 0, 255, 0}, g[6] = {255, 255, 255, 255, 128, 255};
    BGR_CHECK_NEAR(conn(p, g, 3, 2), 0.0045, 1e-12);
}

BGR_TEST(largest_component_wins)
{
    /* p = 1 0 1 1 0, g = 0.50196 1 1 1 1. t = 0.1: components {0} and
     * {2, 3}; Omega = {2, 3}. Pixels 0, 1, 4 get l = 0. Pixel 0:
     * phi_p = 0, phi_g = 1 - 128/255; pixels 1 and 4: phi_p = 1, phi_g = 0.
     * Pixels 2, 3: l = 1, 0. Error (2 + 1 - 128/255) / 1000. */
    const uint8_t p[5] = {255, 0, 255, 255, 0}, g[5] = {128, 255, 255, 255, 255};
    BGR_CHECK_NEAR(conn(p, g, 5, 1), (3.0 - 128.0 / 255.0) / 1000.0, 1e-12);
}

BGR_TEST(small_differences_cost_nothing)
{
    /* phi ignores d < 0.15: p = 0.1 (26) over g = 0 everywhere. t = 0.1:
     * the mask is empty, every pixel gets l = 0; d_p = 0.102 < 0.15:
     * phi_p = phi_g = 1. Error 0. At 0.2 (51): 10 * 51 = 510 >= 383, so
     * phi_p = 0.8 and the error is 0.2 per pixel. */
    uint8_t p[4] = {26, 26, 26, 26};
    const uint8_t g[4] = {0};
    BGR_CHECK_NEAR(conn(p, g, 2, 2), 0, 0);
    for (int i = 0; i < 4; i++)
        p[i] = 51;
    BGR_CHECK_NEAR(conn(p, g, 2, 2), 0.0008, 1e-12);
}

BGR_TEST(alpha_metrics_fill_conn)
{
    struct bgr_error err;
    struct bgr_eval_metrics m;
    const uint8_t g[3] = {255, 255, 255}, p[3] = {255, 255, 0};
    BGR_REQUIRE(bgr_eval_alpha(p, g, 3, 1, &m, &err) == 0);
    BGR_CHECK_NEAR(m.conn, 0.001, 1e-12);
}

BGR_TEST_MAIN()
