/*
 * cli.h - the bgremover command-line tool: a table of commands (generated
 * from commands.def) and the helpers every command uses for its messages
 * and exit statuses. Each command parses its own options with getopt_long
 * and converts them to the shared structs (pipeline options, model options)
 * so the CLI and the server mean the same thing by the same words.
 *
 * Exit statuses, for every command: 0 success, 1 a processing error (the
 * message names the file and why), 2 a usage error (the message names the
 * option and what it accepts), 3 nothing changed because it was so already
 * (the admin commands: `keys revoke` of a revoked key).
 */
#ifndef BGR_CLI_CLI_H
#define BGR_CLI_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "infer/infer.h"
#include "pipeline/pipeline.h"

enum { BGR_EXIT_OK = 0, BGR_EXIT_FAIL = 1, BGR_EXIT_USAGE = 2, BGR_EXIT_UNCHANGED = 3 };

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

/* Opens the store of the admin commands (accounts, keys) in dir, with one
 * connection. create false: a directory without a store is an error (a
 * mistyped --data-dir must not become a new, empty database); create true
 * (only the first `accounts create`) makes it and says so on stderr.
 * Returns BGR_EXIT_OK with *out set, or BGR_EXIT_FAIL after the message. */
struct bgr_store;
/* Opens the store: PostgreSQL when url (from --store, see bgr_cli_store_url)
 * is a postgresql:// URI, else SQLite in dir; create allows making it. */
int bgr_cli_store_open(const char *cmd, const char *dir, const char *url, bool create,
                       struct bgr_store **out);
/* `serve` (worker false) and `worker` (cmd_serve.c): one node of the
 * service, with the same options, configuration file and environment. */
int bgr_cli_run_node(int argc, char **argv, bool worker);
/* The store URL: flag if given, else $BGR_STORE, else NULL (SQLite). */
const char *bgr_cli_store_url(const char *flag);
/* The data directory of the admin commands: --data-dir, else
 * $BGR_DATA_DIR, else ./data (as `serve`). */
const char *bgr_cli_data_dir(const char *flag);

/* Parses a whole decimal int in [lo, hi] into *out: 0, or -1 if s is not one. */
int bgr_cli_parse_int(const char *s, int lo, int hi, int *out);

/* The model and matte options that remove, eval and bench share, as getopt
 * codes: 'm' --model, 'd' --model-dir, 'B' --backend, 'P' --precision,
 * 'j' --threads, 'R' --refine, 'D' --decontaminate. The model fields are
 * pointers into argv (not copied). Returns 0 when c is one of them and arg
 * is good, else BGR_EXIT_USAGE after reporting the bad value, or c as an
 * unknown option (bgr_cli_bad_option with argv), under cmd's name: the
 * commands pass every code they do not handle themselves here. */
struct bgr_cli_model_args {
    const char *model;     /* name or path; NULL = the default model */
    const char *model_dir; /* NULL = the default directory */
    struct bgr_model_opts mo;
};
int bgr_cli_model_option(const char *cmd, int c, const char *arg, char **argv,
                         struct bgr_cli_model_args *m, struct bgr_output_opts *o);

#endif
