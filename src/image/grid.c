/*
 * grid.c - see grid.h. Plain C loops over float planes; no libvips, so the
 * refinement costs exactly what is measured here.
 */
#include <math.h>
#include <stdlib.h>

#include "image/grid.h"

void bgr_grid_init(struct bgr_grid *g, int w, int h)
{
    BGR_ASSERT(w > 0 && h > 0);
    int s = 1;
    for (;;) {
        size_t gw = ((size_t)w + (size_t)s - 1) / (size_t)s;
        size_t gh = ((size_t)h + (size_t)s - 1) / (size_t)s;
        if (gw * gh <= BGR_GRID_MAX_PIXELS)
            break;
        s++;
    }
    *g = (struct bgr_grid){w, h, (w + s - 1) / s, (h + s - 1) / s, s};
}

int bgr_grid_radius(const struct bgr_grid *g, int full_radius)
{
    int r = (full_radius + g->s / 2) / g->s;
    return r < 1 ? 1 : r;
}

void bgr_grid_down(const struct bgr_grid *g, const uint8_t *src, int bands, int band, float *dst)
{
    int s = g->s;
    if (s == 1) {
        size_t n = (size_t)g->w * (size_t)g->h;
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)src[i * (size_t)bands + (size_t)band] * (1.0f / 255.0f);
        return;
    }
    for (int gy = 0; gy < g->gh; gy++) {
        int y0 = gy * s, y1 = y0 + s > g->h ? g->h : y0 + s;
        for (int gx = 0; gx < g->gw; gx++) {
            int x0 = gx * s, x1 = x0 + s > g->w ? g->w : x0 + s;
            unsigned sum = 0;
            for (int y = y0; y < y1; y++) {
                const uint8_t *p =
                    src + ((size_t)y * (size_t)g->w + (size_t)x0) * (size_t)bands + (size_t)band;
                for (int x = x0; x < x1; x++, p += bands)
                    sum += *p;
            }
            dst[(size_t)gy * (size_t)g->gw + (size_t)gx] =
                (float)sum / (255.0f * (float)((y1 - y0) * (x1 - x0)));
        }
    }
}

/* Horizontal box mean of each row of in into out (running sum). */
static void box_rows(const float *in, float *out, int w, int h, int r)
{
    for (int y = 0; y < h; y++) {
        const float *src = in + (size_t)y * (size_t)w;
        float *dst = out + (size_t)y * (size_t)w;
        double sum = 0;
        int hi = r < w - 1 ? r : w - 1; /* window [x - r, x + r] clipped */
        for (int x = 0; x <= hi; x++)
            sum += src[x];
        for (int x = 0; x < w; x++) {
            int lo = x - r < 0 ? 0 : x - r, top = x + r > w - 1 ? w - 1 : x + r;
            dst[x] = (float)(sum / (double)(top - lo + 1));
            if (x + r + 1 < w)
                sum += src[x + r + 1];
            if (x - r >= 0)
                sum -= src[x - r];
        }
    }
}

/* Vertical box mean of in into out, a row at a time (cache friendly): acc
 * holds the column sums of the current window. */
static void box_cols(const float *in, float *out, int w, int h, int r, double *acc)
{
    for (int x = 0; x < w; x++)
        acc[x] = 0;
    int hi = r < h - 1 ? r : h - 1;
    for (int y = 0; y <= hi; y++)
        for (int x = 0; x < w; x++)
            acc[x] += in[(size_t)y * (size_t)w + (size_t)x];
    for (int y = 0; y < h; y++) {
        int lo = y - r < 0 ? 0 : y - r, top = y + r > h - 1 ? h - 1 : y + r;
        double inv = 1.0 / (double)(top - lo + 1);
        float *dst = out + (size_t)y * (size_t)w;
        for (int x = 0; x < w; x++)
            dst[x] = (float)(acc[x] * inv);
        if (y + r + 1 < h) {
            const float *add = in + (size_t)(y + r + 1) * (size_t)w;
            for (int x = 0; x < w; x++)
                acc[x] += add[x];
        }
        if (y - r >= 0) {
            const float *sub = in + (size_t)(y - r) * (size_t)w;
            for (int x = 0; x < w; x++)
                acc[x] -= sub[x];
        }
    }
}

void bgr_grid_box(float *plane, float *tmp, double *acc, int gw, int gh, int r)
{
    box_rows(plane, tmp, gw, gh, r);
    box_cols(tmp, plane, gw, gh, r, acc);
}

int bgr_grid_planes_alloc(const struct bgr_grid *g, int n, float **planes, double **acc,
                          void **block, struct bgr_error *err)
{
    size_t np = (size_t)g->gw * (size_t)g->gh;
    /* doubles first, so both parts are aligned */
    double *d = malloc((size_t)g->gw * sizeof(double) + np * (size_t)n * sizeof(float));
    float *b = d ? (float *)(d + g->gw) : NULL;
    if (!b)
        return bgr_error_set(err, BGR_ENOMEM, "out of memory for %d refinement planes of %dx%d", n,
                             g->gw, g->gh);
    for (int i = 0; i < n; i++)
        planes[i] = b + np * (size_t)i;
    *acc = d;
    *block = d;
    return 0;
}

struct bgr_grid_tap bgr_grid_tap_at(int i, int gn, int s)
{
    if (s == 1)
        return (struct bgr_grid_tap){i, i, 0.0f};
    double c = ((double)i + 0.5) / (double)s - 0.5;
    c = c < 0 ? 0 : c > gn - 1 ? gn - 1 : c;
    int i0 = (int)floor(c);
    return (struct bgr_grid_tap){i0, i0 + 1 < gn ? i0 + 1 : i0, (float)(c - i0)};
}

void bgr_grid_taps(int n, int gn, int s, struct bgr_grid_tap *taps)
{
    for (int i = 0; i < n; i++)
        taps[i] = bgr_grid_tap_at(i, gn, s);
}
