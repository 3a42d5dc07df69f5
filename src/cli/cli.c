/*
 * cli.c - dispatch through the command table and the shared message helpers.
 */
#define _GNU_SOURCE
#include "cli/cli.h"
#include "store/store.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct bgr_cli_command commands[] = {
#define BGR_COMMAND(name, summary, fn) {#name, summary, fn},
#include "cli/commands.def"
#undef BGR_COMMAND
};

const struct bgr_cli_command *bgr_cli_commands(size_t *n)
{
    *n = sizeof commands / sizeof commands[0];
    return commands;
}

const struct bgr_cli_command *bgr_cli_find(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

void bgr_cli_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "bgremover%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int bgr_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "bgremover%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'bgremover %s%s--help' for more information.\n", cmd ? cmd : "",
            cmd ? " " : "");
    return BGR_EXIT_USAGE;
}

int bgr_cli_bad_option(const char *cmd, int c, char **argv)
{
    /* getopt_long has advanced optind past the offending word; for a short
     * option optopt holds its letter, for a long one argv[optind - 1]. */
    const char *word = optind > 0 ? argv[optind - 1] : "?";
    if (c == ':')
        return bgr_cli_usage_error(cmd, "option %s needs a value", word);
    if (optopt && strncmp(word, "--", 2) != 0)
        return bgr_cli_usage_error(cmd, "unknown option -%c", optopt);
    return bgr_cli_usage_error(cmd, "unknown option %s", word);
}

int bgr_cli_store_open(const char *cmd, const char *dir, const char *url, bool create,
                       struct bgr_store **out)
{
    struct bgr_store_opts o = {
        .url = url, .pool_size = 1, .create = create ? BGR_STORE_CREATE : BGR_STORE_MUST_EXIST};
    struct bgr_error e = {0};
    if (bgr_store_open(dir, &o, out, &e) != 0) {
        bgr_cli_error(cmd, "%s", e.msg);
        return BGR_EXIT_FAIL;
    }
    if (bgr_store_created(*out)) {
        char where[512];
        bgr_store_describe(*out, where, sizeof(where));
        fprintf(stderr, "bgremover %s: created a new bgremover store in %s\n", cmd, where);
    }
    return BGR_EXIT_OK;
}

const char *bgr_cli_store_url(const char *flag)
{
    const char *env = getenv("BGR_STORE");
    if (flag && *flag)
        return flag;
    return env && *env ? env : NULL;
}

const char *bgr_cli_data_dir(const char *flag)
{
    const char *env = getenv("BGR_DATA_DIR");
    if (flag && *flag)
        return flag;
    return env && *env ? env : "./data";
}

int bgr_cli_parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

static void usage(FILE *f)
{
    size_t n;
    const struct bgr_cli_command *c = bgr_cli_commands(&n);
    fprintf(f, "Usage: bgremover COMMAND [OPTIONS] [ARGS]\n\n"
               "Self-hosted background removal (ISNet on oneDNN).\n\nCommands:\n");
    for (size_t i = 0; i < n; i++)
        fprintf(f, "  %-10s %s\n", c[i].name, c[i].summary);
    fprintf(f, "\nRun 'bgremover COMMAND --help' for the options of a command.\n"
               "Exit status: 0 success, 1 processing error, 2 usage error, 3 nothing changed.\n");
}

int bgr_cli_main(int argc, char **argv)
{
    const struct bgr_cli_command *c;
    const char *name;

    if (argc < 2) {
        usage(stderr);
        return BGR_EXIT_USAGE;
    }
    name = argv[1];
    if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0) {
        usage(stdout);
        return BGR_EXIT_OK;
    }
    if (strcmp(name, "-V") == 0 || strcmp(name, "--version") == 0)
        name = "version";
    c = bgr_cli_find(name);
    if (!c)
        return bgr_cli_usage_error(NULL, "unknown command '%s' (see 'bgremover help')", name);
    optind = 0; /* GNU getopt: fully reinitialise for this command */
    opterr = 0; /* we word the messages ourselves */
    return c->fn(argc - 1, argv + 1);
}

int bgr_cli_model_option(const char *cmd, int c, const char *arg, char **argv,
                         struct bgr_cli_model_args *m, struct bgr_output_opts *o)
{
    struct bgr_error err;
    bgr_error_clear(&err);
    switch (c) {
    case 'm':
        m->model = arg;
        return 0;
    case 'd':
        m->model_dir = arg;
        return 0;
    case 'B':
        if (strcmp(arg, "dnnl") == 0)
            m->mo.backend = BGR_BACKEND_DNNL;
        else if (strcmp(arg, "ref") == 0)
            m->mo.backend = BGR_BACKEND_REF;
        else
            return bgr_cli_usage_error(cmd, "--backend: '%s' is not dnnl or ref", arg);
        return 0;
    case 'P':
        /* int8 is a name the engine knows; it refuses it at load (exit 1)
         * without a calibration file or VNNI: a processing error, not usage. */
        if (strcmp(arg, "auto") == 0)
            m->mo.precision = BGR_PREC_AUTO;
        else if (strcmp(arg, "fp32") == 0)
            m->mo.precision = BGR_PREC_FP32;
        else if (strcmp(arg, "bf16") == 0)
            m->mo.precision = BGR_PREC_BF16;
        else if (strcmp(arg, "int8") == 0)
            m->mo.precision = BGR_PREC_INT8;
        else
            return bgr_cli_usage_error(cmd, "--precision: '%s' is not auto, fp32, bf16 or int8",
                                       arg);
        return 0;
    case 'j':
        if (bgr_cli_parse_int(arg, 1, 1024, &m->mo.n_threads))
            return bgr_cli_usage_error(cmd, "--threads: '%s' is not a number from 1 to 1024", arg);
        return 0;
    case 'R':
        if (bgr_parse_refine(arg, &o->refine, &err))
            return bgr_cli_usage_error(cmd, "--refine: %s", err.msg);
        return 0;
    case 'D':
        if (bgr_parse_bool(arg, "decontaminate", &o->decontaminate, &err))
            return bgr_cli_usage_error(cmd, "--decontaminate: %s", err.msg);
        return 0;
    default:
        return bgr_cli_bad_option(cmd, c, argv);
    }
}
