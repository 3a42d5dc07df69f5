/*
 * cmd_bench.c - `bgremover bench`: how fast this machine runs the model, and
 * (with image arguments) the whole pipeline per image with the model loaded.
 *
 *   bgremover bench [--model NAME|PATH] [--precision P] [--runs N] [-v]
 *   bgremover bench [...] IMAGE...       per-image pipeline latency
 *   bgremover bench --png-levels IMAGE... PNG encode time and size per level
 *
 * Model alone: one warm-up run, then --runs timed runs on a fixed synthetic
 * input (the model's cost does not depend on pixel values); prints the median
 * and best time and the GFLOP/s they mean against the model's MAC count (2
 * FLOP per MAC, the usual convention). -v adds one profiled run's time per
 * op kind, with how many primitives of each kind a run executes (Reorder:
 * layout conversions).
 *
 * Images: a warm-up pass over the first image, then --runs passes over every
 * image (alternating images, so a busy spell of the shared machine spreads
 * over all of them); per image the median of each stage. The lines starting
 * "image " and "median " are what bench/compare parses: keep their shape.
 *
 * Timings go to stdout, errors to stderr. Peak RSS (getrusage) at the end.
 */
#include "cli/cli.h"
#include "models/models.h"
#include "pipeline/pipeline.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <vips/vips.h>

#define CMD "bench"
#define HELP_SHOWN 100
#define MAX_INPUT_BYTES ((size_t)512 << 20)
#define MAX_PROFILE 32

struct bench_args {
    struct bgr_cli_model_args m; /* model, model dir, model options */
    int runs, verbose, png_levels;
    struct bgr_output_opts opts; /* pipeline options: the product's defaults, --refine */
    char **images;
    int nimages;
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: bgremover bench [OPTIONS] [IMAGE...]\n\n"
            "Without IMAGE: times the model alone (ms per run, GFLOP/s).\n"
            "With IMAGE: times the whole pipeline per image, model loaded, PNG output.\n\n"
            "  -m, --model NAME|PATH   model to time (default: medium)\n"
            "  -d, --model-dir DIR     where installed models live\n"
            "      --precision P       auto (default), fp32, bf16 or int8 (int8 needs\n"
            "                          `bgremover models calibrate` once per model)\n"
            "      --backend B         dnnl (default) or ref\n"
            "  -j, --threads N         inference threads (default: all cores)\n"
            "  -n, --runs N            timed runs (default 10; 3 per image with IMAGE)\n"
            "      --refine R          with IMAGE: auto (default), none, fast or full, as remove\n"
            "      --decontaminate B   with IMAGE: true (default) or false, as remove\n"
            "      --png-levels        with IMAGE: PNG encode time and size at levels 0-9\n"
            "  -v, --verbose           per-op-kind breakdown of one profiled run\n"
            "  -h, --help              this help\n");
}

static int parse_args(int argc, char **argv, struct bench_args *a)
{
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'},
        {"model-dir", required_argument, NULL, 'd'},
        {"precision", required_argument, NULL, 'P'},
        {"backend", required_argument, NULL, 'B'},
        {"threads", required_argument, NULL, 'j'},
        {"runs", required_argument, NULL, 'n'},
        {"png-levels", no_argument, NULL, 'L'},
        {"verbose", no_argument, NULL, 'v'},
        {"refine", required_argument, NULL, 'R'},
        {"decontaminate", required_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    a->runs = -1;
    bgr_output_opts_init(&a->opts);
    while ((c = getopt_long(argc, argv, ":m:d:j:n:vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (bgr_cli_parse_int(optarg, 1, 100000, &a->runs))
                return bgr_cli_usage_error(CMD, "--runs: '%s' is not a number from 1 to 100000",
                                           optarg);
            break;
        case 'L':
            a->png_levels = 1;
            break;
        case 'v':
            a->verbose++;
            break;
        case 'h':
            usage(stdout);
            return HELP_SHOWN;
        default: {
            int r = bgr_cli_model_option(CMD, c, optarg, argv, &a->m, &a->opts);
            if (r)
                return r;
            break;
        }
        }
    }
    a->images = argv + optind;
    a->nimages = argc - optind;
    if (a->png_levels && a->nimages == 0)
        return bgr_cli_usage_error(CMD, "--png-levels needs at least one IMAGE");
    if (a->runs < 0)
        a->runs = a->nimages ? 3 : 10;
    return 0;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

/* Median of v[0..n) (sorts v). */
static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; /* Linux reports KiB */
}

/* VmRSS and VmHWM (peak) of this process in MiB, from /proc (Linux). */
static void rss_now(double *rss, double *hwm)
{
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");
    *rss = *hwm = 0;
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        long kib;
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            *rss = (double)kib / 1024.0;
        else if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
            *hwm = (double)kib / 1024.0;
    }
    (void)fclose(f);
}

static int load_model(const struct bench_args *a, struct bgr_model **m)
{
    struct bgr_error err;
    char *path = NULL;
    double t0;
    bgr_error_clear(&err);
    if (bgr_models_resolve(a->m.model, a->m.model_dir, &path, &err)) {
        bgr_cli_error(CMD, "%s", err.msg);
        return BGR_EXIT_FAIL;
    }
    t0 = bgr_now_sec();
    if (bgr_model_load_file(path, &a->m.mo, m, &err)) {
        bgr_cli_error(CMD, "%s", err.msg);
        free(path);
        return BGR_EXIT_FAIL;
    }
    double load_ms = (bgr_now_sec() - t0) * 1e3, rss, hwm;
    rss_now(&rss, &hwm);
    printf("model %s: %.2f GMAC (%.1f GFLOP) per run, %s, backend %s, loaded in %.0f ms, "
           "%zu MiB planned; RSS after load %.0f MiB (peak so far %.0f)\n",
           path, bgr_model_macs(*m) / 1e9, 2 * bgr_model_macs(*m) / 1e9,
           bgr_model_precision_name(*m), a->m.mo.backend == BGR_BACKEND_REF ? "ref" : "dnnl",
           load_ms, bgr_model_planned_bytes(*m) >> 20, rss, hwm);
    if (bgr_model_int8_convs(*m) > 0) /* the rest stays bf16: see bench/README.md */
        printf("int8: %d convolutions in int8, the others in bf16/fp32\n",
               bgr_model_int8_convs(*m));
    free(path);
    return 0;
}

static void print_profile(struct bgr_model *m)
{
    struct bgr_op_profile p[MAX_PROFILE];
    int n = bgr_model_profile(m, p, MAX_PROFILE);
    double total = 0;
    if (n > MAX_PROFILE)
        n = MAX_PROFILE;
    for (int i = 0; i < n; i++)
        total += p[i].ms;
    printf("per op kind (one profiled run, %.1f ms):\n", total);
    for (int i = 0; i < n; i++)
        printf("  %-10s %4d x  %8.1f ms  %5.1f%%\n", p[i].op, p[i].count, p[i].ms,
               total > 0 ? 100 * p[i].ms / total : 0);
}

/* The model alone on a fixed pseudo-random input in the range the
 * preprocessing produces. */
static int bench_model(const struct bench_args *a, struct bgr_model *m)
{
    struct bgr_shape is = bgr_model_input_shape(m), os = bgr_model_output_shape(m);
    size_t in_n = 1, out_n = 1;
    float *in, *out;
    double *ms = bgr_xcalloc((size_t)a->runs, sizeof *ms), best, first_ms = 0;
    struct bgr_error err;
    uint32_t seed = 12345;
    int rc = 0;
    for (int i = 0; i < is.rank; i++)
        in_n *= (size_t)is.dims[i];
    for (int i = 0; i < os.rank; i++)
        out_n *= (size_t)os.dims[i];
    in = bgr_xmalloc(in_n * sizeof *in);
    out = bgr_xmalloc(out_n * sizeof *out);
    for (size_t i = 0; i < in_n; i++) {
        seed = seed * 1664525u + 1013904223u;
        in[i] = (float)(seed >> 8) / (float)(1u << 24) - 0.5f;
    }
    bgr_error_clear(&err);
    for (int r = -1; r < a->runs && rc == 0; r++) { /* r = -1: warm-up */
        double t0 = bgr_now_sec();
        rc = bgr_model_run(m, in, in_n, out, out_n, &err);
        if (r >= 0)
            ms[r] = (bgr_now_sec() - t0) * 1e3;
        else
            first_ms = (bgr_now_sec() - t0) * 1e3;
    }
    if (rc) {
        bgr_cli_error(CMD, "run: %s", err.msg);
        goto out;
    }
    best = ms[0];
    for (int r = 1; r < a->runs; r++)
        best = ms[r] < best ? ms[r] : best;
    double med = median(ms, a->runs);
    printf("model alone: %d runs, median %.1f ms, min %.1f ms: %.0f GFLOP/s (median), %.0f "
           "(best)\n",
           a->runs, med, best, 2 * bgr_model_macs(m) / (med * 1e6),
           2 * bgr_model_macs(m) / (best * 1e6));
    /* The untimed warm-up is the process's first run: what a one-shot
     * `bgremover remove` pays (issue 14 asks for it within 10% of warm). */
    printf("first run %.1f ms: %+.1f%% against the median\n", first_ms,
           med > 0 ? 100 * (first_ms - med) / med : 0);
    if (a->verbose) {
        bgr_model_set_profiling(m, 1);
        rc = bgr_model_run(m, in, in_n, out, out_n, &err);
        bgr_model_set_profiling(m, 0);
        if (rc)
            bgr_cli_error(CMD, "run: %s", err.msg);
        else
            print_profile(m);
    }
out:
    free(in);
    free(out);
    free(ms);
    return rc ? BGR_EXIT_FAIL : BGR_EXIT_OK;
}

#define NSTAGES 7

static void stages_of(const struct bgr_timings *t, double *v)
{
    v[0] = t->decode_ms, v[1] = t->preprocess_ms, v[2] = t->infer_ms;
    v[3] = t->postprocess_ms, v[4] = t->refine_ms, v[5] = t->encode_ms, v[6] = t->total_ms;
}

/* The pipeline per image; t[(i * runs + r) * NSTAGES + s]. */
static int bench_images(const struct bench_args *a, struct bgr_model *m)
{
    int n = a->nimages, rc = 0;
    struct bgr_buf *in = bgr_xcalloc((size_t)n, sizeof *in);
    double *t = bgr_xcalloc((size_t)n * (size_t)a->runs * NSTAGES, sizeof *t);
    double *col = bgr_xcalloc((size_t)(n > a->runs ? n : a->runs), sizeof *col);
    double *med = bgr_xcalloc((size_t)n * NSTAGES, sizeof *med);
    struct bgr_result *res = bgr_xcalloc((size_t)n, sizeof *res);
    const struct bgr_output_opts *opts = &a->opts;
    struct bgr_error err;
    static const char *names[NSTAGES] = {"decode", "preprocess", "inference", "postprocess",
                                         "refine", "encode",     "total"};
    bgr_error_clear(&err);
    for (int i = 0; i < n && rc == 0; i++) {
        bgr_buf_init(&in[i], MAX_INPUT_BYTES);
        if ((rc = bgr_file_read(a->images[i], MAX_INPUT_BYTES, &in[i], &err)))
            bgr_cli_error(CMD, "%s", err.msg);
    }
    for (int r = -1; r < a->runs && rc == 0; r++) {
        for (int i = 0; i < n && rc == 0; i++) {
            struct bgr_timings tm;
            if (r < 0 && i > 0) /* warm-up: the first image once */
                break;
            bgr_result_release(&res[i]);
            rc = bgr_pipeline_process(m, in[i].data, in[i].len, NULL, opts, &res[i], &tm, &err);
            if (rc)
                bgr_cli_error(CMD, "%s: %s", a->images[i], err.msg);
            else if (r >= 0)
                stages_of(&tm, &t[((size_t)i * (size_t)a->runs + (size_t)r) * NSTAGES]);
        }
    }
    if (rc)
        goto out;
    for (int i = 0; i < n; i++) {
        for (int s = 0; s < NSTAGES; s++) {
            for (int r = 0; r < a->runs; r++)
                col[r] = t[((size_t)i * (size_t)a->runs + (size_t)r) * NSTAGES + (size_t)s];
            med[i * NSTAGES + s] = median(col, a->runs);
        }
        const double *v = &med[i * NSTAGES];
        printf("image %s %dx%d: %.1f ms (decode %.1f, preprocess %.1f, inference %.1f, "
               "postprocess %.1f, refine %.1f, encode %.1f), png %zu bytes\n",
               a->images[i], res[i].original_width, res[i].original_height, v[6], v[0], v[1], v[2],
               v[3], v[4], v[5], res[i].len);
    }
    printf("median over %d images (%d runs each; refine %s, decontaminate %s):", n, a->runs,
           bgr_refine_name(opts->refine), opts->decontaminate ? "true" : "false");
    for (int s = 0; s < NSTAGES; s++) {
        for (int i = 0; i < n; i++)
            col[i] = med[i * NSTAGES + s];
        double x = median(col, n);
        printf(" %s %.1f ms%s", names[s], x, s + 1 < NSTAGES ? "," : "\n");
    }
out:
    for (int i = 0; i < n; i++) {
        bgr_buf_release(&in[i]);
        bgr_result_release(&res[i]);
    }
    free(in);
    free(t);
    free(col);
    free(med);
    free(res);
    return rc ? BGR_EXIT_FAIL : BGR_EXIT_OK;
}

/* Re-encodes each image's cutout (decoded from the pipeline's PNG) at every
 * PNG compression level, the way the image module saves PNGs. */
static int bench_png_levels(const struct bench_args *a, struct bgr_model *m)
{
    struct bgr_error err;
    int rc = 0;
    bgr_error_clear(&err);
    printf("png level:     ");
    for (int l = 0; l <= 9; l++)
        printf(" %12d", l);
    printf("\n");
    for (int i = 0; i < a->nimages && rc == 0; i++) {
        struct bgr_buf in;
        struct bgr_result res = {0};
        VipsImage *img = NULL, *mem = NULL;
        bgr_buf_init(&in, MAX_INPUT_BYTES);
        if ((rc = bgr_file_read(a->images[i], MAX_INPUT_BYTES, &in, &err)) ||
            (rc = bgr_pipeline_process(m, in.data, in.len, NULL, &a->opts, &res, NULL, &err))) {
            bgr_cli_error(CMD, "%s: %s", a->images[i], err.msg);
        } else if (!(img = vips_image_new_from_buffer(res.data, res.len, "", NULL)) ||
                   !(mem = vips_image_copy_memory(img))) {
            bgr_cli_error(CMD, "%s: cannot decode the cutout: %s", a->images[i],
                          vips_error_buffer());
            vips_error_clear();
            rc = BGR_EINTERNAL;
        } else {
            printf("%s %dx%d\n  ms:          ", a->images[i], res.width, res.height);
            size_t sizes[10];
            for (int l = 0; l <= 9; l++) {
                double ms[3];
                for (int r = 0; r < 3; r++) {
                    void *buf = NULL;
                    size_t len = 0;
                    double t0 = bgr_now_sec();
                    if (vips_pngsave_buffer(mem, &buf, &len, "compression", l, NULL)) {
                        vips_error_clear();
                        len = 0;
                    }
                    ms[r] = (bgr_now_sec() - t0) * 1e3;
                    sizes[l] = len;
                    g_free(buf);
                }
                printf(" %12.1f", median(ms, 3));
            }
            printf("\n  bytes:       ");
            for (int l = 0; l <= 9; l++)
                printf(" %12zu", sizes[l]);
            printf("\n");
        }
        if (mem)
            g_object_unref(mem);
        if (img)
            g_object_unref(img);
        bgr_result_release(&res);
        bgr_buf_release(&in);
    }
    return rc ? BGR_EXIT_FAIL : BGR_EXIT_OK;
}

int bgr_cmd_bench(int argc, char **argv)
{
    struct bench_args a;
    struct bgr_model *m = NULL;
    int rc;
    memset(&a, 0, sizeof a);
    rc = parse_args(argc, argv, &a);
    if (rc)
        return rc == HELP_SHOWN ? BGR_EXIT_OK : rc;
    if ((rc = load_model(&a, &m)))
        return rc;
    if (a.png_levels)
        rc = bench_png_levels(&a, m);
    else if (a.nimages)
        rc = bench_images(&a, m);
    else
        rc = bench_model(&a, m);
    printf("peak RSS %.0f MiB\n", peak_rss_mib());
    bgr_model_free(m);
    return rc;
}
