/*
 * batch2.c - does one oneDNN run at batch N cost less per view than N runs
 * at batch 1? (issue 14: the extra views of refine=auto/full in one call)
 *
 * Loads the model twice through the public engine API: the installed file
 * (batch 1) and a copy whose input declares batch N (bench/batch2/
 * onnx_batch.py; the engine builds every primitive for the declared shape,
 * so nothing in src/infer changes). Then alternates one run of each, the
 * order swapped every round, and prints per round the wall and CPU time
 * per view and the convolutions' share (the engine's per-op profile), the
 * load average, and at the end the medians and the ratio. Before timing it
 * checks that the batch-N output equals N batch-1 runs of the same inputs.
 *
 * Usage: bench_batch2 MODEL_1.onnx MODEL_N.onnx [ROUNDS [THREADS]]
 * (bench/batch2/run; THREADS 0, the default: all cores)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "infer/infer.h"

#define MAX_ROUNDS 200
#define MAX_KINDS 16

/* per-view ms of each op kind (the engine's profile), per model and round */
static const char *kind_name[MAX_KINDS];
static int n_kinds;
static double kind_ms[2][MAX_KINDS][MAX_ROUNDS];

static int kind_index(const char *op)
{
    for (int i = 0; i < n_kinds; i++)
        if (strcmp(kind_name[i], op) == 0)
            return i;
    if (n_kinds == MAX_KINDS)
        return -1;
    kind_name[n_kinds] = op; /* static strings of the engine */
    return n_kinds++;
}

static double cpu_sec(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
           ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) * 1e-6;
}

static void loadavg(char *out, size_t len)
{
    FILE *f = fopen("/proc/loadavg", "r");
    double a = -1;
    if (f) {
        if (fscanf(f, "%lf", &a) != 1)
            a = -1;
        fclose(f);
    }
    snprintf(out, len, "%.2f", a);
}

static long rss_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':')
            v = strtol(line + n + 1, NULL, 10);
    fclose(f);
    return v;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double minimum(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++)
        m = v[i] < m ? v[i] : m;
    return m;
}

static size_t count(struct bgr_shape s)
{
    size_t n = 1;
    for (int i = 0; i < s.rank; i++)
        n *= (size_t)s.dims[i];
    return n;
}

/* One timed run of model k in round r (-1: not recorded): wall and CPU ms,
 * convolution ms; every op kind's ms into kind_ms. */
static int timed(struct bgr_model *m, int k, int r, const float *in, size_t nin, float *out,
                 size_t nout, double *wall, double *cpu, double *conv_ms, struct bgr_error *err)
{
    struct bgr_op_profile prof[MAX_KINDS];
    double c0 = cpu_sec(), t0 = bgr_now_sec();
    int rc = bgr_model_run(m, in, nin, out, nout, err);
    *wall = (bgr_now_sec() - t0) * 1e3;
    *cpu = (cpu_sec() - c0) * 1e3;
    *conv_ms = 0;
    int np = bgr_model_profile(m, prof, MAX_KINDS);
    for (int i = 0; i < np && i < MAX_KINDS; i++) {
        int x = kind_index(prof[i].op);
        if (strcmp(prof[i].op, "Conv") == 0)
            *conv_ms = prof[i].ms;
        if (r >= 0 && x >= 0)
            kind_ms[k][x][r] = prof[i].ms;
    }
    return rc;
}

int main(int argc, char **argv)
{
    struct bgr_model_opts opts = {0};
    struct bgr_model *m[2] = {NULL, NULL};
    struct bgr_error err = {0};
    float *in[2] = {NULL, NULL}, *out[2] = {NULL, NULL};
    size_t nin[2], nout[2];
    int rc = 1, batch = 0, rounds = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 8;
    static double wall[2][MAX_ROUNDS], cpu[2][MAX_ROUNDS], conv[2][MAX_ROUNDS];
    char la[32];
    opts.n_threads = argc > 4 ? (int)strtol(argv[4], NULL, 10) : 0;
    if (argc < 3 || argc > 5 || rounds < 1 || rounds > MAX_ROUNDS || opts.n_threads < 0) {
        fprintf(stderr, "usage: %s MODEL_1.onnx MODEL_N.onnx [ROUNDS 1-%d [THREADS]]\n", argv[0],
                MAX_ROUNDS);
        return 2;
    }
    for (int k = 0; k < 2; k++) {
        double t0 = bgr_now_sec();
        if (bgr_model_load_file(argv[1 + k], &opts, &m[k], &err)) {
            fprintf(stderr, "%s: %s\n", argv[1 + k], err.msg);
            goto out;
        }
        struct bgr_shape si = bgr_model_input_shape(m[k]), so = bgr_model_output_shape(m[k]);
        nin[k] = count(si);
        nout[k] = count(so);
        in[k] = calloc(nin[k], sizeof(float));
        out[k] = calloc(nout[k], sizeof(float));
        if (!in[k] || !out[k])
            goto out;
        bgr_model_set_profiling(m[k], 1);
        printf("%s: input %lldx%lldx%lldx%lld, %s, threads %d (0: all cores), loaded in %.0f ms, "
               "%zu MiB planned (activations + scratchpad), RSS now %ld MiB\n",
               argv[1 + k], (long long)si.dims[0], (long long)si.dims[1], (long long)si.dims[2],
               (long long)si.dims[3], bgr_model_precision_name(m[k]), opts.n_threads,
               (bgr_now_sec() - t0) * 1e3, bgr_model_planned_bytes(m[k]) >> 20,
               rss_kib("VmRSS") >> 10);
    }
    batch = (int)bgr_model_input_shape(m[1]).dims[0];
    if (nin[1] != nin[0] * (size_t)batch || nout[1] != nout[0] * (size_t)batch ||
        bgr_model_input_shape(m[0]).dims[0] != 1) {
        fprintf(stderr, "the two models must differ in the batch size only (first one 1)\n");
        goto out;
    }
    /* views: a smooth pattern (a photo's statistics matter little to the
     * time, but not all-zero), different per view, in the normalised range */
    for (size_t i = 0; i < nin[1]; i++)
        in[1][i] = (float)(sin((double)i * 1e-3) +
                           0.5 * cos((double)(i / 1024) * 7e-3 + (double)(i / nin[0])));
    /* correctness: the batch-N output equals N batch-1 runs */
    double wa, ca, cv, maxd = 0;
    if (bgr_model_run(m[1], in[1], nin[1], out[1], nout[1], &err))
        goto fail;
    for (int v = 0; v < batch; v++) {
        memcpy(in[0], in[1] + (size_t)v * nin[0], nin[0] * sizeof(float));
        if (bgr_model_run(m[0], in[0], nin[0], out[0], nout[0], &err))
            goto fail;
        for (size_t i = 0; i < nout[0]; i++) {
            double d = fabs((double)out[0][i] - (double)out[1][(size_t)v * nout[0] + i]);
            maxd = d > maxd ? d : maxd;
        }
    }
    printf("batch %d output against %d batch-1 runs: max |diff| %.3g\n", batch, batch, maxd);
    if (timed(m[1], 1, -1, in[1], nin[1], out[1], nout[1], &wa, &ca, &cv, &err))
        goto fail; /* second warm-up of the batch-N model */
    printf("per view, ms: wall, CPU (user+sys of the process), Conv (profile); load avg\n");
    for (int r = 0; r < rounds; r++) {
        loadavg(la, sizeof la);
        for (int j = 0; j < 2; j++) {
            int k = (r + j) % 2; /* batch 1 first in even rounds */
            if (timed(m[k], k, r, in[k], nin[k], out[k], nout[k], &wall[k][r], &cpu[k][r],
                      &conv[k][r], &err))
                goto fail;
            int n = k ? batch : 1;
            wall[k][r] /= n;
            cpu[k][r] /= n;
            conv[k][r] /= n;
            for (int x = 0; x < n_kinds; x++)
                kind_ms[k][x][r] /= n;
        }
        printf("round %2d (load %s): N=1 %7.1f %7.1f %7.1f | N=%d %7.1f %7.1f %7.1f | N=%d/N=1 "
               "wall %.3f\n",
               r + 1, la, wall[0][r], cpu[0][r], conv[0][r], batch, wall[1][r], cpu[1][r],
               conv[1][r], batch, wall[1][r] / wall[0][r]);
        fflush(stdout);
    }
    loadavg(la, sizeof la);
    /* rounds where both runs had their threads on a core throughout (CPU
     * time at least 90% of threads x wall): the machine was quiet enough
     * for that round to measure the engine rather than the scheduler */
    int threads = opts.n_threads ? opts.n_threads : (int)sysconf(_SC_NPROCESSORS_ONLN), nq = 0;
    double qr[MAX_ROUNDS];
    for (int r = 0; r < rounds; r++)
        if (cpu[0][r] >= 0.9 * threads * wall[0][r] && cpu[1][r] >= 0.9 * threads * wall[1][r])
            qr[nq++] = wall[1][r] / wall[0][r];
    double qmed = nq ? median(qr, nq) : 0; /* sorts qr */
    double bw0 = minimum(wall[0], rounds), bw1 = minimum(wall[1], rounds);
    double mw0 = median(wall[0], rounds), mw1 = median(wall[1], rounds);
    double mc0 = median(cpu[0], rounds), mc1 = median(cpu[1], rounds);
    double mv0 = median(conv[0], rounds), mv1 = median(conv[1], rounds);
    printf("median of %d rounds, per view: wall N=1 %.1f ms, N=%d %.1f ms (ratio %.3f); best "
           "N=1 %.1f, N=%d %.1f (ratio %.3f)\n",
           rounds, mw0, batch, mw1, mw1 / mw0, bw0, batch, bw1, bw1 / bw0);
    printf("  CPU N=1 %.1f ms, N=%d %.1f ms (ratio %.3f); Conv N=1 %.1f ms, N=%d %.1f ms (ratio "
           "%.3f)\n",
           mc0, batch, mc1, mc1 / mc0, mv0, batch, mv1, mv1 / mv0);
    if (nq)
        printf("  rounds on full cores (CPU >= 0.9 x %d threads x wall): %d, N=%d/N=1 wall ratio "
               "median %.3f (%.3f-%.3f)\n",
               threads, nq, batch, qmed, qr[0], qr[nq - 1]);
    else
        printf("  rounds on full cores (CPU >= 0.9 x %d threads x wall): none\n", threads);
    printf("  per op kind, median per view (ms): N=1 / N=%d\n", batch);
    for (int x = 0; x < n_kinds; x++)
        printf("    %-8s %8.1f / %8.1f\n", kind_name[x], median(kind_ms[0][x], rounds),
               median(kind_ms[1][x], rounds));
    printf("planned: N=1 %zu MiB, N=%d %zu MiB; peak RSS %ld MiB (both models); load avg at "
           "the end %s\n",
           bgr_model_planned_bytes(m[0]) >> 20, batch, bgr_model_planned_bytes(m[1]) >> 20,
           rss_kib("VmHWM") >> 10, la);
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "run: %s\n", err.msg);
out:
    for (int k = 0; k < 2; k++) {
        bgr_model_free(m[k]);
        free(in[k]);
        free(out[k]);
    }
    return rc;
}
