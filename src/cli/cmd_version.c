/*
 * cmd_version.c - `bgremover version`: our version and the versions of the
 * libraries that decide results (libvips, oneDNN), for bug reports.
 *
 * oneDNN reports its version, the threading runtime it was built with and a
 * git hash that distribution builds (Debian's) leave as "N/A": the hash is
 * printed only when it is one, and the instruction set oneDNN picked on this
 * CPU is added, since it decides which kernels (and precisions) run.
 */
#include "cli/cli.h"
#include "models/models.h"

#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <string.h>
#include <vips/vips.h>

#ifndef BGR_VERSION
#define BGR_VERSION "unknown"
#endif

static const char *runtime_name(unsigned r)
{
    switch (r) {
    case DNNL_RUNTIME_NONE:
        return "none";
    case DNNL_RUNTIME_SEQ:
        return "sequential";
    case DNNL_RUNTIME_OMP:
        return "OpenMP";
    case DNNL_RUNTIME_TBB:
        return "TBB";
    case DNNL_RUNTIME_THREADPOOL:
        return "threadpool";
    default:
        return "other";
    }
}

/* The widest instruction set in isa (each one's bits include its base's). */
static const char *isa_name(unsigned isa)
{
    static const struct {
        unsigned bits;
        const char *name;
    } isas[] = {
        {dnnl_cpu_isa_avx512_core_amx, "avx512_core_amx"},
        {dnnl_cpu_isa_avx512_core_bf16, "avx512_core_bf16"},
        {dnnl_cpu_isa_avx512_core_vnni, "avx512_core_vnni"},
        {dnnl_cpu_isa_avx512_core, "avx512_core"},
        {dnnl_cpu_isa_avx2_vnni, "avx2_vnni"},
        {dnnl_cpu_isa_avx2, "avx2"},
        {dnnl_cpu_isa_avx, "avx"},
        {dnnl_cpu_isa_sse41, "sse41"},
    };
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++)
        if ((isa & isas[i].bits) == isas[i].bits)
            return isas[i].name;
    return "baseline";
}

/* A git hash is hex, 7 to 40 characters; "N/A" and "" are not. */
static bool is_git_hash(const char *h)
{
    size_t n = h ? strlen(h) : 0;
    if (n < 7 || n > 40)
        return false;
    return strspn(h, "0123456789abcdefABCDEF") == n;
}

int bgr_cmd_version(int argc, char **argv)
{
    const dnnl_version_t *d = dnnl_version();
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("Usage: bgremover version\n\nPrints the version of bgremover, libvips and oneDNN"
               " (with its\nthreading runtime, the instruction set it uses on this CPU and,\n"
               "when it was built from git, the commit).\n");
        return BGR_EXIT_OK;
    }
    if (argc > 1)
        return bgr_cli_usage_error("version", "takes no arguments");
    printf("bgremover %s\n", BGR_VERSION);
    printf("libvips %s\n", vips_version_string());
    printf("oneDNN %d.%d.%d (%s runtime, %s on this CPU", d->major, d->minor, d->patch,
           runtime_name(d->cpu_runtime), isa_name((unsigned)dnnl_get_effective_cpu_isa()));
    if (is_git_hash(d->hash))
        printf(", commit %s", d->hash);
    printf(")\n");
    printf("models from npm %s (ISNet, AGPL-3.0)\n", BGR_MODELS_NPM_PACKAGE);
    printf("License: AGPL-3.0-or-later\n");
    return BGR_EXIT_OK;
}
