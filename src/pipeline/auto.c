/*
 * auto.c - refine=auto's decision and the confidence score, both read from
 * the model's own float matte: no ground truth, no extra model run (the
 * view agreement term uses views that `full` ran anyway).
 *
 * Why these features: on dev, the images where `full` pays are those where
 * the model leaves a large part of the subject undecided (a plant, a mesh,
 * a second toy at mid alpha), and the images with a large error are the
 * same ones plus subjects cut by the frame or lost in a busy scene. Every
 * constant below was chosen on /work/shared/eval/dev with `bgremover eval`
 * among the variants listed in docs/QUALITY.md ("refine=auto").
 *
 * Pure functions of their arguments; thread-safe.
 */
#include <math.h>

#include "pipeline/pipeline.h"

/* Soft/undecided bands per subject pixel are capped here, so an empty or
 * tiny subject gives a finite, maximal value rather than a division by 0. */
#define BAND_CAP 4.0

void bgr_pipeline_matte_features(const float *a, int w, int h, struct bgr_matte_features *f)
{
    BGR_ASSERT(a && w > 0 && h > 0 && f);
    size_t n = (size_t)w * (size_t)h, subject = 0, soft = 0, mid = 0, ring = 0, ring_on = 0;
    for (int y = 0; y < h; y++) {
        const float *row = a + (size_t)y * (size_t)w;
        bool edge_row = y == 0 || y == h - 1;
        for (int x = 0; x < w; x++) {
            float v = row[x];
            subject += v >= 0.5f;
            soft += v > 0.05f && v < 0.95f;
            mid += v > 0.25f && v < 0.75f;
            if (edge_row || x == 0 || x == w - 1) {
                ring++;
                ring_on += v >= 0.5f;
            }
        }
    }
    double s = subject ? (double)subject : 1.0;
    f->subject = (double)subject / (double)n;
    f->soft = fmin((double)soft / s, BAND_CAP);
    f->mid = fmin((double)mid / s, BAND_CAP);
    f->border = ring ? (double)ring_on / (double)ring : 0.0;
    f->disagree = -1.0;
}

/* The undecided area (0.25 < alpha < 0.75) at or above this share of the
 * subject triggers the extra views. On dev every value from 0.08 to 0.38
 * scores the same (the three images where the views pay have 0.39 to 0.69;
 * the two at 0.29 change by under 3% either way), so the choice is about
 * time: 0.30 is the cheapest value that keeps a margin of 0.09 below the
 * lowest image that needs the views (a second toy at 0.39).
 * docs/QUALITY.md lists the variants. */
#define AUTO_MID_MIN 0.30

bool bgr_pipeline_auto_wants_views(const struct bgr_matte_features *f)
{
    return f->mid >= AUTO_MID_MIN;
}

/* Weights of the badness terms (each in [0, ~1]) in the exponent. */
#define CONF_W_SOFT 2.0
#define CONF_W_MID 3.0
#define CONF_W_BORDER 1.0
#define CONF_W_DISAGREE 5.0
/* A subject under this share of the grid counts as (partly) missing. */
#define CONF_SMALL 0.02

double bgr_pipeline_confidence(const struct bgr_matte_features *f)
{
    double bad = CONF_W_SOFT * f->soft + CONF_W_MID * f->mid + CONF_W_BORDER * f->border;
    if (f->disagree > 0)
        bad += CONF_W_DISAGREE * f->disagree;
    if (f->subject < CONF_SMALL) /* nothing or almost nothing found */
        bad += (CONF_SMALL - f->subject) / CONF_SMALL * 2.0;
    double c = exp(-bad);
    return c < 0 ? 0 : c > 1 ? 1 : c;
}
