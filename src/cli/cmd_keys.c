/*
 * cmd_keys.c - `bgremover keys`: create, list and revoke API keys.
 *
 *   keys create --account ID     prints the new key as the last line (shown once)
 *   keys list --account ID       prefixes only: full keys are never stored
 *   keys revoke KEY_OR_PREFIX
 *
 * Every subcommand takes --data-dir DIR (default $BGR_DATA_DIR, else ./data).
 * Works while the server runs; a revoked key is refused from its next request.
 */
#include "cli/cli.h"
#include "store/store.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "Usage: bgremover keys create --account ID [--data-dir DIR]\n"
               "       bgremover keys list --account ID [--data-dir DIR]\n"
               "       bgremover keys revoke KEY_OR_PREFIX [--data-dir DIR]\n"
               "\n"
               "Manages API keys (Authorization: Bearer bgr_live_...). `create` prints the\n"
               "key as its last line; it is shown only this once (only a hash is stored).\n"
               "`list` shows prefixes; `revoke` takes a full key or a listed prefix.\n"
               "\n"
               "      --data-dir DIR   data directory (default $BGR_DATA_DIR, else ./data)\n");
}

static int print_key(void *ctx, const struct bgr_key_info *k)
{
    char created[21], used[21] = "never";
    (void)ctx;
    bgr_time_format(k->created_at_ms, created);
    if (k->last_used_ms)
        bgr_time_format(k->last_used_ms, used);
    printf("%-20s %s  last used %-20s %s\n", k->prefix, created, used,
           k->revoked ? "revoked" : "active");
    return 0;
}

int bgr_cmd_keys(int argc, char **argv)
{
    enum { O_ACCOUNT = 1, O_DATA, O_HELP };
    static const struct option opts[] = {
        {"account", required_argument, NULL, O_ACCOUNT},
        {"data-dir", required_argument, NULL, O_DATA},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *account = NULL, *dir = getenv("BGR_DATA_DIR"), *sub;
    struct bgr_store_opts so = {.pool_size = 1};
    struct bgr_store *s = NULL;
    struct bgr_error e = {0};
    int c, rc = BGR_EXIT_OK, sargc, npos;
    char **sargv, **pos;

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
        case O_ACCOUNT:
            account = optarg;
            break;
        case O_DATA:
            dir = optarg;
            break;
        case O_HELP:
        case 'h':
            usage(stdout);
            return BGR_EXIT_OK;
        default:
            return bgr_cli_bad_option("keys", c, sargv);
        }
    }
    if (!dir || !*dir)
        dir = "./data";
    pos = sargv + optind;
    npos = sargc - optind;
    if (strcmp(sub, "create") == 0 || strcmp(sub, "list") == 0) {
        if (!account || npos)
            return bgr_cli_usage_error("keys", "%s needs --account ID and nothing else", sub);
    } else if (strcmp(sub, "revoke") == 0) {
        if (npos != 1 || account)
            return bgr_cli_usage_error("keys", "revoke needs KEY_OR_PREFIX");
    } else {
        return bgr_cli_usage_error("keys", "unknown subcommand '%s'", sub);
    }
    if (bgr_store_open(dir, &so, &s, &e) != 0) {
        bgr_cli_error("keys", "%s", e.msg);
        return BGR_EXIT_FAIL;
    }
    if (strcmp(sub, "create") == 0) {
        char key[BGR_KEY_MAX];
        struct bgr_key_info ki;
        if (bgr_store_key_create(s, account, bgr_wall_ms(), key, &ki, &e) != 0) {
            bgr_cli_error("keys", "%s", e.msg);
            rc = BGR_EXIT_FAIL;
        } else {
            fprintf(stderr, "created key %s... for %s; it is shown only now:\n", ki.prefix,
                    ki.account_id);
            printf("%s\n", key);
            memset(key, 0, sizeof(key));
        }
    } else if (strcmp(sub, "list") == 0) {
        struct bgr_account a;
        if (bgr_store_account_get(s, account, &a, &e) != 0 ||
            bgr_store_key_list(s, account, print_key, NULL, &e) != 0) {
            bgr_cli_error("keys", "%s", e.msg);
            rc = BGR_EXIT_FAIL;
        }
    } else {
        struct bgr_key_info ki;
        if (bgr_store_key_revoke(s, pos[0], &ki, &e) != 0) {
            bgr_cli_error("keys", "%s", e.msg);
            rc = BGR_EXIT_FAIL;
        } else {
            printf("revoked %s (account %s)\n", ki.prefix, ki.account_id);
        }
    }
    bgr_store_close(s);
    return rc;
}
