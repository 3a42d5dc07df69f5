/*
 * calib.c - reading and writing the int8 calibration file (calib.h).
 *
 * Format (version 1):
 *   # comment lines
 *   bgremover-int8cal 1
 *   model sha256 <64 hex> size <bytes>
 *   runs <n>
 *   <value name> <min> <max>       one line per convolution input
 * Floats are written with 9 significant digits, enough to read back the
 * same float. Value names are the ONNX file's; a name with white space in
 * it is not written, and its conv then stays in bf16.
 */
#include "infer/calib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CALIB_MAGIC "bgremover-int8cal"
#define CALIB_MAX_BYTES ((size_t)16 << 20)
#define CALIB_HINT "run `bgremover models calibrate` for this model"

static int plain_name(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
            return 0;
    return 1;
}

int bgr_calib_write(const struct bgr_graph *g, const float *lo, const float *hi, int runs,
                    const struct bgr_calib_id *id, const char *path, struct bgr_error *err)
{
    struct bgr_buf out;
    int rc;
    bgr_buf_init(&out, CALIB_MAX_BYTES);
    rc = bgr_buf_appendf(&out, err,
                         "# int8 calibration: range of each convolution input over fp32 runs\n"
                         "# (made by `bgremover models calibrate`; the model line must match)\n"
                         "%s 1\nmodel sha256 %s size %llu\nruns %d\n",
                         CALIB_MAGIC, id->sha256, (unsigned long long)id->size, runs);
    for (int v = 0; v < g->nvals && rc == 0; v++)
        if (lo[v] <= hi[v] && g->vals[v].name && plain_name(g->vals[v].name))
            rc = bgr_buf_appendf(&out, err, "%s %.9g %.9g\n", g->vals[v].name, (double)lo[v],
                                 (double)hi[v]);
    if (rc == 0)
        rc = bgr_file_write_atomic(path, out.data, out.len, err);
    bgr_buf_release(&out);
    return rc;
}

/* Splits the next line off *p (NUL-terminating it in place); NULL at the end. */
static char *next_line(char **p)
{
    char *s = *p, *nl;
    if (!s || !*s)
        return NULL;
    nl = strchr(s, '\n');
    if (nl) {
        *nl = '\0';
        *p = nl + 1;
    } else {
        *p = NULL;
    }
    return s;
}

static int parse_float(const char *s, float *out)
{
    char *end;
    float f = strtof(s, &end);
    if (end == s || *end || !isfinite(f))
        return -1;
    *out = f;
    return 0;
}

int bgr_calib_read(const struct bgr_graph *g, const char *path, const struct bgr_calib_id *id,
                   float *lo, float *hi, struct bgr_error *err)
{
    struct bgr_buf buf;
    char *text = NULL, *p, *line, *save = NULL;
    int rc = 0, lineno = 0, state = 0;
    for (int v = 0; v < g->nvals; v++)
        lo[v] = hi[v] = NAN;
    bgr_buf_init(&buf, CALIB_MAX_BYTES);
    if (bgr_file_read(path, CALIB_MAX_BYTES, &buf, err)) {
        char why[sizeof err->msg]; /* err is rewritten below */
        (void)snprintf(why, sizeof why, "%s", err->msg);
        rc = bgr_error_set(err, BGR_EMODEL, "int8 needs the calibration file %s (%s): %s", path,
                           why, CALIB_HINT);
        goto out;
    }
    text = bgr_xmalloc(buf.len + 1);
    memcpy(text, buf.data, buf.len);
    text[buf.len] = '\0';
    p = text;
    /* state: 0 expects the magic line, 1 the model line, 2 runs, 3 values */
    while ((line = next_line(&p))) {
        lineno++;
        if (line[0] == '#' || line[0] == '\0')
            continue;
        char *w0 = strtok_r(line, " \t\r", &save), *w1 = strtok_r(NULL, " \t\r", &save);
        char *w2 = strtok_r(NULL, " \t\r", &save), *w3 = strtok_r(NULL, " \t\r", &save);
        char *w4 = strtok_r(NULL, " \t\r", &save);
        if (!w0)
            continue;
        if (state == 0) {
            if (strcmp(w0, CALIB_MAGIC) != 0 || !w1 || strcmp(w1, "1") != 0 || w2)
                goto malformed;
            state = 1;
        } else if (state == 1) {
            char size[32];
            (void)snprintf(size, sizeof size, "%llu", (unsigned long long)id->size);
            if (strcmp(w0, "model") != 0 || !w1 || strcmp(w1, "sha256") != 0 || !w2 || !w3 ||
                strcmp(w3, "size") != 0 || !w4)
                goto malformed;
            if (strcmp(w2, id->sha256) != 0 || strcmp(w4, size) != 0) {
                rc = bgr_error_set(err, BGR_EMODEL,
                                   "%s was made for another model (SHA-256 %.12s..., %s bytes; "
                                   "this one: %.12s..., %s bytes): %s",
                                   path, w2, w4, id->sha256, size, CALIB_HINT);
                goto out;
            }
            state = 2;
        } else if (state == 2) {
            if (strcmp(w0, "runs") != 0 || !w1 || w2)
                goto malformed;
            state = 3;
        } else {
            float a, b;
            int v = bgr_graph_value_find(g, w0);
            if (!w1 || !w2 || w3 || parse_float(w1, &a) || parse_float(w2, &b) || a > b)
                goto malformed;
            if (v < 0) {
                rc = bgr_error_set(err, BGR_EMODEL, "%s:%d: the model has no value '%s': %s", path,
                                   lineno, w0, CALIB_HINT);
                goto out;
            }
            lo[v] = a;
            hi[v] = b;
        }
    }
    if (state < 3)
        goto malformed;
    goto out;
malformed:
    rc = bgr_error_set(err, BGR_EMODEL, "%s:%d: not a calibration file this version reads: %s",
                       path, lineno, CALIB_HINT);
out:
    free(text);
    bgr_buf_release(&buf);
    return rc;
}
