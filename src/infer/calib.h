/*
 * calib.h - the int8 calibration file (private to src/infer): the range of
 * every convolution input seen in fp32 runs of real photos, tied to one
 * model file by its SHA-256 and size. Text, one value per line, so that a
 * user can read what the scales come from.
 */
#ifndef BGR_INFER_CALIB_H
#define BGR_INFER_CALIB_H

#include "infer/graph.h"

/* Identity of a model file. */
struct bgr_calib_id {
    char sha256[65]; /* lower-case hex */
    uint64_t size;
};

/* Writes lo[v], hi[v] of every value with lo <= hi (others were never seen)
 * to path atomically; runs is how many runs they come from. Errors: BGR_EIO. */
int bgr_calib_write(const struct bgr_graph *g, const float *lo, const float *hi, int runs,
                    const struct bgr_calib_id *id, const char *path, struct bgr_error *err);
/* Reads path into lo/hi (g->nvals entries each, the caller's; NaN for
 * values the file does not name). Errors: BGR_EMODEL for a missing,
 * malformed or foreign file (the message says which command makes one). */
int bgr_calib_read(const struct bgr_graph *g, const char *path, const struct bgr_calib_id *id,
                   float *lo, float *hi, struct bgr_error *err);

#endif
