/*
 * cmd_accounts.c - `bgremover accounts`: create, list and change API
 * accounts in a data directory, also while a server runs on it (the store
 * serialises writers across processes).
 *
 *   accounts create --email E --plan free|pro|enterprise   prints the new id
 *   accounts list                                          one line per account
 *   accounts set-plan ID PLAN
 *   accounts webhook-secret ID [--rotate]                  prints the secret last
 *
 * Every subcommand takes --data-dir DIR (default $BGR_DATA_DIR, else ./data).
 * Machine-readable lines go to stdout; explanations to stderr.
 */
#include "cli/cli.h"
#include "store/store.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "Usage: bgremover accounts create --email EMAIL --plan PLAN [--data-dir DIR]\n"
               "       bgremover accounts list [--data-dir DIR]\n"
               "       bgremover accounts set-plan ID PLAN [--data-dir DIR]\n"
               "       bgremover accounts webhook-secret ID [--rotate] [--data-dir DIR]\n"
               "\n"
               "Manages API accounts in the server's data directory (safe while it runs).\n"
               "PLAN is free, pro or enterprise. `create` prints the new account id;\n"
               "`webhook-secret` prints the secret that signs the account's webhooks\n"
               "(--rotate replaces it first).\n"
               "\n"
               "      --data-dir DIR   data directory (default $BGR_DATA_DIR, else ./data)\n");
}

static int open_store(const char *dir, struct bgr_store **s)
{
    struct bgr_store_opts o = {.pool_size = 1};
    struct bgr_error e = {0};
    if (bgr_store_open(dir, &o, s, &e) != 0) {
        bgr_cli_error("accounts", "%s", e.msg);
        return BGR_EXIT_FAIL;
    }
    return BGR_EXIT_OK;
}

static int print_account(void *ctx, const struct bgr_account *a)
{
    char created[21];
    (void)ctx;
    bgr_time_format(a->created_at_ms, created);
    printf("%-22s %-12s %s  %s\n", a->id, a->plan.name, created, a->email);
    return 0;
}

int bgr_cmd_accounts(int argc, char **argv)
{
    enum { O_EMAIL = 1, O_PLAN, O_DATA, O_ROTATE, O_HELP };
    static const struct option opts[] = {
        {"email", required_argument, NULL, O_EMAIL},   {"plan", required_argument, NULL, O_PLAN},
        {"data-dir", required_argument, NULL, O_DATA}, {"rotate", no_argument, NULL, O_ROTATE},
        {"help", no_argument, NULL, O_HELP},           {NULL, 0, NULL, 0},
    };
    const char *email = NULL, *plan = NULL, *dir = getenv("BGR_DATA_DIR"), *sub;
    struct bgr_store *s = NULL;
    struct bgr_error e = {0};
    bool rotate = false;
    int c, rc = BGR_EXIT_OK, sargc;
    char **sargv;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? BGR_EXIT_USAGE : BGR_EXIT_OK;
    }
    sub = argv[1];
    sargc = argc - 1;
    sargv = argv + 1;
    optind = 0; /* a fresh getopt scan of the subcommand's arguments */
    while ((c = getopt_long(sargc, sargv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case O_EMAIL:
            email = optarg;
            break;
        case O_PLAN:
            plan = optarg;
            break;
        case O_DATA:
            dir = optarg;
            break;
        case O_ROTATE:
            rotate = true;
            break;
        case O_HELP:
        case 'h':
            usage(stdout);
            return BGR_EXIT_OK;
        default:
            return bgr_cli_bad_option("accounts", c, sargv);
        }
    }
    if (!dir || !*dir)
        dir = "./data";
    char **pos = sargv + optind;
    int npos = sargc - optind;

    if (strcmp(sub, "create") == 0) {
        struct bgr_account a;
        if (npos)
            return bgr_cli_usage_error("accounts", "create takes no positional arguments");
        if (!email || !plan)
            return bgr_cli_usage_error("accounts", "create needs --email and --plan");
        if ((rc = open_store(dir, &s)))
            return rc;
        if (bgr_store_account_create(s, email, plan, bgr_wall_ms(), &a, &e) != 0) {
            bgr_cli_error("accounts", "%s", e.msg);
            rc = e.code == BGR_EINVALID_PARAMETER ? BGR_EXIT_USAGE : BGR_EXIT_FAIL;
        } else {
            fprintf(stderr, "created account for %s on plan %s\n", a.email, a.plan.name);
            printf("%s\n", a.id);
        }
    } else if (strcmp(sub, "list") == 0) {
        if (npos || email || plan)
            return bgr_cli_usage_error("accounts", "list takes only --data-dir");
        if ((rc = open_store(dir, &s)))
            return rc;
        if (bgr_store_account_list(s, print_account, NULL, &e) != 0) {
            bgr_cli_error("accounts", "%s", e.msg);
            rc = BGR_EXIT_FAIL;
        }
    } else if (strcmp(sub, "set-plan") == 0) {
        if (npos != 2)
            return bgr_cli_usage_error("accounts", "set-plan needs ID and PLAN");
        if ((rc = open_store(dir, &s)))
            return rc;
        if (bgr_store_account_set_plan(s, pos[0], pos[1], &e) != 0) {
            bgr_cli_error("accounts", "%s", e.msg);
            rc = e.code == BGR_EINVALID_PARAMETER ? BGR_EXIT_USAGE : BGR_EXIT_FAIL;
        } else {
            printf("%s %s\n", pos[0], pos[1]);
        }
    } else if (strcmp(sub, "webhook-secret") == 0) {
        struct bgr_account a;
        char secret[BGR_SECRET_MAX];
        if (npos != 1)
            return bgr_cli_usage_error("accounts", "webhook-secret needs ID");
        if ((rc = open_store(dir, &s)))
            return rc;
        if (rotate ? bgr_store_account_rotate_secret(s, pos[0], secret, &e)
                   : bgr_store_account_get(s, pos[0], &a, &e)) {
            bgr_cli_error("accounts", "%s", e.msg);
            rc = BGR_EXIT_FAIL;
        } else {
            printf("%s\n", rotate ? secret : a.webhook_secret);
        }
    } else {
        return bgr_cli_usage_error("accounts", "unknown subcommand '%s'", sub);
    }
    bgr_store_close(s);
    return rc;
}
