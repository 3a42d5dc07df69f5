/*
 * main.c - the bgremover executable: everything lives in bgr_cli so tests
 * can link it; this file only hands over to the command table.
 */
#include "cli/cli.h"

int main(int argc, char **argv)
{
    return bgr_cli_main(argc, argv);
}
