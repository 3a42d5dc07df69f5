/*
 * cli.h - the bgremover command-line tool: a table of commands (generated
 * from commands.def) and the helpers every command uses for its messages
 * and exit statuses. Each command parses its own options with getopt_long
 * and converts them to the shared structs (pipeline options, model options)
 * so the CLI and the server mean the same thing by the same words.
 *
 * Exit statuses, for every command: 0 success, 1 a processing error (the
 * message names the file and why), 2 a usage error (the message names the
 * option and what it accepts).
 */
#ifndef BGR_CLI_CLI_H
#define BGR_CLI_CLI_H

#include <stddef.h>

enum { BGR_EXIT_OK = 0, BGR_EXIT_FAIL = 1, BGR_EXIT_USAGE = 2 };

/* One prototype per line of commands.def. */
#define BGR_COMMAND(name, summary, fn) int fn(int argc, char **argv);
#include "cli/commands.def"
#undef BGR_COMMAND

struct bgr_cli_command {
    const char *name;
    const char *summary;
    int (*fn)(int argc, char **argv);
};

/* The table, in commands.def order; *n receives its length. */
const struct bgr_cli_command *bgr_cli_commands(size_t *n);
const struct bgr_cli_command *bgr_cli_find(const char *name);

/* Runs the tool: argv[0] is the program, argv[1] the command. Returns the
 * exit status. Resets getopt before the command runs, so it can be called
 * more than once in a process (tests do). */
int bgr_cli_main(int argc, char **argv);

/* "bgremover CMD: message" on stderr. */
void bgr_cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same plus a hint to run --help; returns BGR_EXIT_USAGE. */
int bgr_cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Reports what getopt_long rejected (it returned '?' or ':' with an
 * optstring starting with ':'); returns BGR_EXIT_USAGE. */
int bgr_cli_bad_option(const char *cmd, int c, char **argv);

/* Parses a whole decimal int in [lo, hi] into *out: 0, or -1 if s is not one. */
int bgr_cli_parse_int(const char *s, int lo, int hi, int *out);

#endif
