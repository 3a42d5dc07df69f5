/*
 * cmd_help.c - `bgremover help [COMMAND]`: the command list, or one
 * command's own --help.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

int bgr_cmd_help(int argc, char **argv)
{
    const struct bgr_cli_command *c;
    size_t n;

    if (argc > 2)
        return bgr_cli_usage_error("help", "takes at most one command name");
    if (argc == 2 && strcmp(argv[1], "--help") != 0 && strcmp(argv[1], "-h") != 0) {
        char *sub[] = {argv[1], "--help", NULL};
        c = bgr_cli_find(argv[1]);
        if (!c)
            return bgr_cli_usage_error("help", "unknown command '%s'", argv[1]);
        if (c->fn == bgr_cmd_help)
            return bgr_cmd_help(1, sub);
        return c->fn(2, sub);
    }
    c = bgr_cli_commands(&n);
    printf("Usage: bgremover COMMAND [OPTIONS] [ARGS]\n\n"
           "Self-hosted background removal (ISNet on oneDNN).\n\nCommands:\n");
    for (size_t i = 0; i < n; i++)
        printf("  %-10s %s\n", c[i].name, c[i].summary);
    printf("\nRun 'bgremover help COMMAND' or 'bgremover COMMAND --help' for details.\n"
           "Exit status: 0 success, 1 processing error, 2 usage error, 3 nothing changed.\n");
    return BGR_EXIT_OK;
}
