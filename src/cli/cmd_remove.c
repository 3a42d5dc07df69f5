/*
 * cmd_remove.c - `bgremover remove INPUT...`: the pipeline on files.
 *
 * Where results go (decided here, documented in --help and the README):
 *   - one input, -o FILE          FILE; the format follows FILE's extension
 *                                 (.png .webp .jpg .jpeg) unless --format says
 *   - -o DIR (an existing directory, a path ending in '/', or any -o with
 *     several inputs)             DIR/NAME.EXT, DIR created if needed
 *   - -o -  or input - without -o stdout (one input only)
 *   - no -o                       NAME.out.EXT next to the input
 *                                 (NAME.mask.png with --mask)
 * NAME is the input's file name without its extension ("stdin" for -), EXT
 * the format's (png, webp, jpg). Two inputs that would write the same file
 * are an error for the second, never a silent overwrite.
 *
 * Every option is checked before the model is loaded, so a usage error costs
 * nothing; a failing input is reported and the others still run.
 *
 * What goes where: images to their files (or stdout with -o -); with --json
 * one JSON object per input on stdout and nothing else; progress and errors
 * on stderr (progress: a live line on a terminal, one line per file when
 * stderr is redirected, nothing with --quiet; errors always).
 */
#define _GNU_SOURCE
#include "cli/cli.h"
#include "models/models.h"
#include "pipeline/pipeline.h"

#include <getopt.h>
#include <glib.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CMD "remove"
/* Inputs larger than this are refused before decoding (the server has its
 * own, smaller, limit from its configuration). */
#define MAX_INPUT_BYTES ((size_t)512 << 20)

enum out_mode { OUT_BESIDE, OUT_FILE, OUT_DIR, OUT_STDOUT };

struct remove_args {
    struct bgr_output_opts opts;
    struct bgr_cli_model_args m; /* model, model dir, model options */
    const char *output;
    bool format_given;
    const char *mask_flag; /* the flag that asked for the mask, for messages */
    bool crop_margin_given;
    bool json;  /* --json: one object per input on stdout */
    bool quiet; /* --quiet: no progress (errors still go to stderr) */
    int verbose;
    enum out_mode mode;
    char **inputs;
    int ninputs;
};

static void usage(FILE *f)
{
    fprintf(
        f, "Usage: bgremover remove INPUT... [OPTIONS]\n\n"
           "Removes the background of each INPUT and writes a cutout with alpha. Accepted\n"
           "inputs: JPEG, PNG, WebP, GIF (first frame), TIFF and HEIF/AVIF, recognised by\n"
           "their content; - reads stdin. Other formats (SVG, PDF, BMP, RAW, ...) are\n"
           "refused.\n\n"
           "Output:\n"
           "  -o, --output PATH       one input: the output file (- for stdout); its extension\n"
           "                          picks the format unless --format is given.\n"
           "                          A directory (existing, ending in /, or with several\n"
           "                          inputs): writes DIR/NAME.EXT there, creating DIR.\n"
           "                          Default: NAME.out.EXT next to each input (stdout for -).\n"
           "  -f, --format F          png (RGBA, default), webp (RGBA) or jpeg (flattened)\n"
           "  -q, --quality N         1-100 for webp and jpeg (default 90)\n"
           "  -b, --bg-color HEX      flatten onto #RGB, #RRGGBB or #RRGGBBAA (# optional);\n"
           "                          jpeg without it is flattened onto white\n"
           "  -r, --max-resolution R  original (default), 1080p, 720p or 480p: fit within\n"
           "                          1920x1080, 1280x720, 854x480 (portrait: turned); no upscale\n"
           "  -c, --crop              trim to the subject's bounding box\n"
           "  -k, --mask              write the 8-bit matte as a grayscale PNG instead\n"
           "                          (default name NAME.mask.png; always PNG, as in the\n"
           "                          API: --format is ignored, with a note)\n"
           "      --output-type T     cutout (default) or mask (the same as --mask)\n"
           "      --crop-margin M     needs --crop: keep M pixels (20 or 20px, up to 10000) or\n"
           "                          M percent of the subject's size (10%%, up to 100%%)\n"
           "                          around the subject, within the image\n\n"
           "Quality (docs/QUALITY.md):\n"
           "      --refine R          auto (default), none, fast or full. none: the model's\n"
           "                          raw matte; fast: guided filter and interior clean-up\n"
           "                          at full resolution; full: fast on four model runs\n"
           "                          merged (the image, its mirror and both zoomed out),\n"
           "                          then a matting solve over hair and fur, about four\n"
           "                          times the model time; auto: one run, then full only\n"
           "                          where the matte leaves much of the subject undecided\n"
           "      --decontaminate B   true (default) or false: estimate the subject's colour\n"
           "                          in semi-transparent edge pixels (removes colour fringe)\n\n"
           "Model:\n"
           "  -m, --model NAME|PATH   medium (default), small, or an .onnx file\n"
           "  -d, --model-dir DIR     where installed models live (see 'bgremover models')\n"
           "      --backend B         dnnl (default) or ref (plain C, slow, for checking)\n"
           "      --precision P       auto (default: bf16 where the CPU has it, else fp32),\n"
           "                          fp32, bf16 or int8 (needs 'bgremover models calibrate')\n"
           "  -j, --threads N         threads for inference (default: all cores)\n\n"
           "Reporting:\n"
           "      --json              one JSON object per input on stdout (input, output,\n"
           "                          width, height, subject, confidence, refine,\n"
           "                          timings_ms, or error); not with -o -\n"
           "      --quiet             no progress on stderr (errors are still printed)\n"
           "  -v, --verbose           print model load time, precision and per-stage timings\n"
           "                          (twice: per-operator timings too)\n"
           "  -h, --help              show this help\n\n"
           "Exit status: 0 all inputs done, 1 some input failed (each is reported with the\n"
           "reason; the others are still processed), 2 usage error.\n");
}

static const char *format_ext(enum bgr_format f)
{
    return f == BGR_FORMAT_JPEG ? "jpg" : f == BGR_FORMAT_WEBP ? "webp" : "png";
}

/* The format an output file name implies: 1 and *f set for a known
 * extension, 0 for no extension, -1 for an extension we cannot write. */
static int format_from_name(const char *path, enum bgr_format *f)
{
    const char *base = strrchr(path, '/');
    const char *dot = strrchr(base ? base + 1 : path, '.');
    if (!dot || dot == (base ? base + 1 : path))
        return 0;
    if (strcasecmp(dot, ".png") == 0)
        *f = BGR_FORMAT_PNG;
    else if (strcasecmp(dot, ".webp") == 0)
        *f = BGR_FORMAT_WEBP;
    else if (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0)
        *f = BGR_FORMAT_JPEG;
    else
        return -1;
    return 1;
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* parse_args' answer when --help was asked (and printed): exit 0, do nothing. */
#define HELP_SHOWN 100

/* Parses argv into *a. Returns 0, HELP_SHOWN, or BGR_EXIT_USAGE (message
 * printed). */
static int parse_args(int argc, char **argv, struct remove_args *a)
{
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'},
        {"format", required_argument, NULL, 'f'},
        {"quality", required_argument, NULL, 'q'},
        {"bg-color", required_argument, NULL, 'b'},
        {"max-resolution", required_argument, NULL, 'r'},
        {"crop", no_argument, NULL, 'c'},
        {"mask", no_argument, NULL, 'k'},
        {"output-type", required_argument, NULL, 'T'},
        {"crop-margin", required_argument, NULL, 'M'},
        {"refine", required_argument, NULL, 'R'},
        {"json", no_argument, NULL, 'J'},
        {"quiet", no_argument, NULL, 'Q'},
        {"decontaminate", required_argument, NULL, 'D'},
        {"model", required_argument, NULL, 'm'},
        {"model-dir", required_argument, NULL, 'd'},
        {"backend", required_argument, NULL, 'B'},
        {"precision", required_argument, NULL, 'P'},
        {"threads", required_argument, NULL, 'j'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct bgr_error err;
    int c, stdin_inputs = 0;

    bgr_error_clear(&err);
    while ((c = getopt_long(argc, argv, ":o:f:q:b:r:ckm:d:j:vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'o':
            a->output = optarg;
            break;
        case 'f':
            if (bgr_parse_format(optarg, &a->opts.format, &err))
                return bgr_cli_usage_error(CMD, "--format: %s", err.msg);
            a->format_given = true;
            break;
        case 'q':
            if (bgr_parse_quality(optarg, &a->opts.quality, &err))
                return bgr_cli_usage_error(CMD, "--quality: %s", err.msg);
            break;
        case 'b':
            if (bgr_parse_color(optarg, &a->opts.bg_color, &err))
                return bgr_cli_usage_error(CMD, "--bg-color: %s", err.msg);
            a->opts.has_bg_color = true;
            break;
        case 'r':
            if (bgr_parse_max_res(optarg, &a->opts.max_res, &err))
                return bgr_cli_usage_error(CMD, "--max-resolution: %s", err.msg);
            break;
        case 'c':
            a->opts.crop = true;
            break;
        case 'k':
            a->opts.mask_only = true;
            a->mask_flag = "--mask";
            break;
        case 'T':
            if (bgr_parse_output_type(optarg, &a->opts.mask_only, &err))
                return bgr_cli_usage_error(CMD, "--output-type: %s", err.msg);
            a->mask_flag = a->opts.mask_only ? "--output-type mask" : NULL;
            break;
        case 'M':
            if (bgr_parse_crop_margin(optarg, &a->opts.crop_margin, &a->opts.crop_margin_percent,
                                      &err))
                return bgr_cli_usage_error(CMD, "--crop-margin: %s", err.msg);
            a->crop_margin_given = true;
            break;
        case 'J':
            a->json = true;
            break;
        case 'Q':
            a->quiet = true;
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
    a->inputs = argv + optind;
    a->ninputs = argc - optind;
    if (a->ninputs == 0)
        return bgr_cli_usage_error(CMD, "no input given (a file, or - for stdin)");
    for (int i = 0; i < a->ninputs; i++)
        stdin_inputs += strcmp(a->inputs[i], "-") == 0;
    if (stdin_inputs > 1)
        return bgr_cli_usage_error(CMD, "stdin (-) can be read only once");
    if (a->crop_margin_given && !a->opts.crop)
        return bgr_cli_usage_error(CMD, "--crop-margin applies only with --crop (add --crop, "
                                        "or drop --crop-margin)");
    /* As the API: a mask is always a grayscale PNG, whatever format was
     * asked; said once here rather than refused, so the two agree. */
    if (a->opts.mask_only && a->format_given && a->opts.format != BGR_FORMAT_PNG && !a->quiet)
        fprintf(stderr,
                "bgremover " CMD ": note: %s writes a grayscale PNG; --format %s is ignored\n",
                a->mask_flag ? a->mask_flag : "--mask", bgr_format_name(a->opts.format));
    if (a->verbose > 1)
        a->m.mo.verbose = 1;

    if (a->output && !*a->output)
        return bgr_cli_usage_error(CMD, "-o: empty path");
    if (!a->output) {
        a->mode = OUT_BESIDE;
        if (stdin_inputs && a->ninputs > 1)
            return bgr_cli_usage_error(CMD, "with several inputs, reading stdin needs -o DIR");
        if (stdin_inputs)
            a->mode = OUT_STDOUT;
    } else if (strcmp(a->output, "-") == 0) {
        if (a->ninputs > 1)
            return bgr_cli_usage_error(CMD, "-o -: several inputs cannot all go to stdout");
        a->mode = OUT_STDOUT;
    } else if (a->ninputs > 1 || is_dir(a->output) || a->output[strlen(a->output) - 1] == '/') {
        a->mode = OUT_DIR;
    } else {
        a->mode = OUT_FILE;
        if (!a->format_given && !a->opts.mask_only) {
            int k = format_from_name(a->output, &a->opts.format);
            if (k < 0)
                return bgr_cli_usage_error(CMD,
                                           "-o %s: unknown extension (use .png, .webp, .jpg or "
                                           "give --format png|webp|jpeg)",
                                           a->output);
        }
    }
    if (a->json && a->mode == OUT_STDOUT)
        return bgr_cli_usage_error(CMD, "--json writes its report to stdout: give -o FILE or "
                                        "-o DIR for the image");
    return 0;
}

/* NAME of an input: its file name without the last extension. */
static void input_stem(const char *input, char *out, size_t len)
{
    const char *base = strrchr(input, '/');
    const char *dot;
    size_t n;
    if (strcmp(input, "-") == 0) {
        (void)snprintf(out, len, "stdin");
        return;
    }
    base = base ? base + 1 : input;
    dot = strrchr(base, '.');
    n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    (void)snprintf(out, len, "%.*s", (int)n, base);
}

/* The output path of input i, malloc'd. */
static char *output_path(const struct remove_args *a, const char *input)
{
    char stem[1024], *path = NULL;
    const char *ext = a->opts.mask_only ? "png" : format_ext(a->opts.format);
    size_t n;
    input_stem(input, stem, sizeof stem);
    switch (a->mode) {
    case OUT_STDOUT:
        return bgr_xstrdup("-");
    case OUT_FILE:
        return bgr_xstrdup(a->output);
    case OUT_DIR:
        n = strlen(a->output);
        if (asprintf(&path, "%s%s%s.%s", a->output, a->output[n - 1] == '/' ? "" : "/", stem, ext) <
            0)
            path = NULL;
        break;
    case OUT_BESIDE: {
        const char *slash = strrchr(input, '/');
        int dirlen = slash ? (int)(slash - input + 1) : 0;
        if (asprintf(&path, "%.*s%s.%s.%s", dirlen, input, stem, a->opts.mask_only ? "mask" : "out",
                     ext) < 0)
            path = NULL;
        break;
    }
    }
    if (!path) {
        fprintf(stderr, "bgremover: out of memory\n");
        abort();
    }
    return path;
}

static void print_timings(const char *in, const char *out, const struct bgr_result *r,
                          const struct bgr_timings *t)
{
    fprintf(stderr,
            "%s -> %s: %dx%d -> %dx%d %s, %zu bytes; decode %.1f ms, preprocess %.1f ms, "
            "inference %.1f ms, postprocess %.1f ms, refine %.1f ms, encode %.1f ms, "
            "total %.1f ms\n",
            in, strcmp(out, "-") == 0 ? "stdout" : out, r->original_width, r->original_height,
            r->width, r->height, r->mime, r->len, t->decode_ms, t->preprocess_ms, t->infer_ms,
            t->postprocess_ms, t->refine_ms, t->encode_ms, t->total_ms);
}

/* A JSON string of a file name that may not be UTF-8 (invalid bytes become
 * U+FFFD, so the line stays valid JSON). New reference. */
static json_t *json_path(const char *path)
{
    char *valid = g_utf8_make_valid(path, -1);
    json_t *j = json_string(valid);
    g_free(valid);
    return j;
}

/* Prints one --json line: the result of input (res, t) or its error. */
static void print_json(const char *input, const char *out, const struct bgr_result *res,
                       const struct bgr_timings *t, int rc, const struct bgr_error *err)
{
    json_t *o = json_object();
    json_object_set_new(o, "input", json_path(strcmp(input, "-") == 0 ? "-" : input));
    if (rc) {
        json_object_set_new(o, "output", json_null());
        json_object_set_new(o, "error",
                            json_pack("{s:s, s:s}", "code", bgr_err_code(rc), "message", err->msg));
    } else {
        json_object_set_new(o, "output", json_path(out));
        json_object_set_new(o, "width", json_integer(res->width));
        json_object_set_new(o, "height", json_integer(res->height));
        json_object_set_new(o, "format", json_string(bgr_format_name(res->format)));
        json_object_set_new(o, "bytes", json_integer((json_int_t)res->len));
        json_object_set_new(o, "subject",
                            res->has_subject
                                ? json_pack("{s:i, s:i, s:i, s:i}", "x", res->subject.x, "y",
                                            res->subject.y, "width", res->subject.width, "height",
                                            res->subject.height)
                                : json_null());
        /* three decimals: more would promise a precision the score lacks */
        json_object_set_new(o, "confidence", json_real(round(res->confidence * 1e3) / 1e3));
        json_object_set_new(o, "refine", json_string(bgr_refine_name(res->refine)));
        json_object_set_new(o, "model_runs", json_integer(res->views));
        json_object_set_new(
            o, "timings_ms",
            json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "decode",
                      round(t->decode_ms * 10) / 10, "preprocess",
                      round(t->preprocess_ms * 10) / 10, "inference", round(t->infer_ms * 10) / 10,
                      "postprocess", round(t->postprocess_ms * 10) / 10, "refine",
                      round(t->refine_ms * 10) / 10, "encode", round(t->encode_ms * 10) / 10,
                      "total", round(t->total_ms * 10) / 10));
    }
    char *line = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(10));
    if (line) {
        fputs(line, stdout);
        fputc('\n', stdout);
        (void)fflush(stdout); /* a pipeline reads each line as it comes */
        free(line);
    }
    json_decref(o);
}

/* Progress on stderr: a live line on a terminal, one line per file when
 * stderr is redirected. */
struct progress {
    bool on, tty, live; /* live: a \r line is on the screen */
    int total, done;
    double t0;
};

static void fmt_secs(double s, char *buf, size_t len)
{
    long v = lround(s);
    if (v >= 3600)
        (void)snprintf(buf, len, "%ld:%02ld:%02ld", v / 3600, v / 60 % 60, v % 60);
    else
        (void)snprintf(buf, len, "%ld:%02ld", v / 60, v % 60);
}

/* Clears the live line before anything else is written to stderr. */
static void progress_clear(struct progress *p)
{
    if (p->live) {
        fputs("\r\033[K", stderr);
        p->live = false;
    }
}

/* Called before input i starts (name) and once after the last one (NULL). */
static void progress_show(struct progress *p, const char *name)
{
    if (!p->on || !p->tty)
        return;
    char el[32], left[48] = "";
    double e = bgr_now_sec() - p->t0;
    fmt_secs(e, el, sizeof el);
    if (p->done > 0 && p->done < p->total) {
        char l[24];
        fmt_secs(e / p->done * (p->total - p->done), l, sizeof l);
        (void)snprintf(left, sizeof left, ", about %s left", l);
    }
    progress_clear(p);
    if (name) {
        size_t n = strlen(name); /* the end of a long path says more than its start */
        fprintf(stderr, "[%d/%d] %s elapsed%s  %s%s", p->done, p->total, el, left,
                n > 60 ? "..." : "", n > 60 ? name + n - 57 : name);
        p->live = true;
    } else {
        fprintf(stderr, "%d of %d done in %s\n", p->done, p->total, el);
    }
    (void)fflush(stderr);
}

/* After input i: on a redirected stderr, one line for it. */
static void progress_line(struct progress *p, const char *input, const char *out,
                          const struct bgr_result *res, double secs, bool ok)
{
    p->done++;
    if (!p->on || p->tty || !ok)
        return;
    fprintf(stderr, "[%d/%d] %s -> %s (%.2f s, refine %s, confidence %.2f)\n", p->done, p->total,
            input, strcmp(out, "-") == 0 ? "stdout" : out, secs, bgr_refine_name(res->refine),
            res->confidence);
}

/* Reads, processes and writes one input. Returns 0 or -1 (reported). */
static int process_one(struct bgr_model *model, const struct remove_args *a, const char *input,
                       const char *out, struct progress *pg)
{
    struct bgr_decode_limits lim = {0, 0, 0};
    struct bgr_result res;
    struct bgr_timings t = {0};
    struct bgr_error err;
    struct bgr_buf in;
    const char *shown = strcmp(input, "-") == 0 ? "stdin" : input;
    double t0 = bgr_now_sec();
    int rc;

    memset(&res, 0, sizeof res);
    bgr_error_clear(&err);
    progress_show(pg, shown);
    rc = bgr_file_read(input, MAX_INPUT_BYTES, &in, &err);
    if (rc)
        goto fail;
    rc = bgr_pipeline_process(model, in.data, in.len, &lim, &a->opts, &res, &t, &err);
    bgr_buf_release(&in);
    if (rc)
        goto fail;
    if (a->mode != OUT_STDOUT) { /* the parent directory may not exist yet */
        char *dir = bgr_xstrdup(out), *slash = strrchr(dir, '/');
        if (slash && slash != dir) {
            *slash = 0;
            rc = bgr_mkdir_p(dir, &err);
        }
        free(dir);
        if (rc)
            goto fail;
    }
    rc = bgr_file_write_atomic(out, res.data, res.len, &err);
    if (rc)
        goto fail;
    progress_clear(pg);
    if (a->verbose)
        print_timings(shown, out, &res, &t);
    if (a->json)
        print_json(input, out, &res, &t, 0, &err);
    progress_line(pg, shown, out, &res, bgr_now_sec() - t0, true);
    bgr_result_release(&res);
    return 0;
fail:
    bgr_result_release(&res);
    progress_clear(pg);
    bgr_cli_error(CMD, "%s: %s", shown, err.msg);
    if (a->json)
        print_json(input, out, NULL, NULL, rc, &err);
    progress_line(pg, shown, out, NULL, 0, false);
    return -1;
}

/* Resolves and loads the model; prints why not on failure. */
static int load_model(const struct remove_args *a, struct bgr_model **model)
{
    struct bgr_error err;
    char *path = NULL;
    double t0;
    int rc;

    bgr_error_clear(&err);
    rc = bgr_models_resolve(a->m.model, a->m.model_dir, &path, &err);
    if (rc) {
        bgr_cli_error(CMD, "%s", err.msg);
        return rc == BGR_EUSAGE ? BGR_EXIT_USAGE : BGR_EXIT_FAIL;
    }
    t0 = bgr_now_sec();
    rc = bgr_model_load_file(path, &a->m.mo, model, &err);
    if (rc) {
        if (strstr(err.msg, path)) /* the engine named the file already */
            bgr_cli_error(CMD, "%s", err.msg);
        else
            bgr_cli_error(CMD, "model %s: %s", path, err.msg);
        free(path);
        return BGR_EXIT_FAIL;
    }
    if (a->verbose)
        fprintf(stderr, "model %s: loaded in %.1f ms, backend %s, precision %s\n", path,
                (bgr_now_sec() - t0) * 1e3, a->m.mo.backend == BGR_BACKEND_REF ? "ref" : "dnnl",
                bgr_model_precision_name(*model));
    free(path);
    return 0;
}

/* Starts libvips (~20 ms: codec modules, its thread pool) on a thread of
 * its own while the model loads, so a one-photo run does not pay for both
 * in turn. Its outcome is seen again, with its message, by the pipeline's
 * own call to the same once-only initialisation. */
static void *warm_codecs(void *arg)
{
    (void)arg;
    struct bgr_error err;
    bgr_error_clear(&err);
    (void)bgr_pipeline_global_init(&err);
    return NULL;
}

int bgr_cmd_remove(int argc, char **argv)
{
    struct remove_args a;
    struct bgr_model *model = NULL;
    char **outs = NULL;
    int rc, failed = 0;

    memset(&a, 0, sizeof a);
    bgr_output_opts_init(&a.opts);
    rc = parse_args(argc, argv, &a);
    if (rc)
        return rc == HELP_SHOWN ? BGR_EXIT_OK : rc;
    pthread_t warm;
    bool warming = pthread_create(&warm, NULL, warm_codecs, NULL) == 0;
    rc = load_model(&a, &model);
    if (warming)
        pthread_join(warm, NULL);
    if (rc)
        return rc;
    outs = bgr_xcalloc((size_t)a.ninputs, sizeof *outs);
    /* A lone input gets no progress: its own run is the whole wait, and
     * the terminal shows nothing else until it ends anyway. */
    struct progress pg = {.on = !a.quiet && a.ninputs > 1,
                          .tty = isatty(STDERR_FILENO) == 1,
                          .total = a.ninputs,
                          .t0 = bgr_now_sec()};
    for (int i = 0; i < a.ninputs; i++) {
        int clash = -1;
        outs[i] = output_path(&a, a.inputs[i]);
        for (int j = 0; j < i && clash < 0; j++)
            if (outs[j] && strcmp(outs[i], outs[j]) == 0)
                clash = j;
        if (clash >= 0) {
            struct bgr_error err;
            bgr_error_set(&err, BGR_EINVALID_PARAMETER,
                          "its output %s would overwrite the result of %s; skipped", outs[i],
                          a.inputs[clash]);
            progress_clear(&pg);
            bgr_cli_error(CMD, "%s: %s", a.inputs[i], err.msg);
            if (a.json)
                print_json(a.inputs[i], outs[i], NULL, NULL, BGR_EINVALID_PARAMETER, &err);
            BGR_FREE_AND_NULL(outs[i]);
            pg.done++;
            failed++;
            continue;
        }
        if (process_one(model, &a, a.inputs[i], outs[i], &pg) != 0)
            failed++;
    }
    progress_show(&pg, NULL);
    if (failed && a.ninputs > 1)
        bgr_cli_error(CMD, "%d of %d inputs failed", failed, a.ninputs);
    for (int i = 0; i < a.ninputs; i++)
        free(outs[i]);
    free(outs);
    bgr_model_free(model);
    return failed ? BGR_EXIT_FAIL : BGR_EXIT_OK;
}
