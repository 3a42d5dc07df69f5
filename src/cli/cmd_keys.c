/*
 * cmd_keys.c - `bgremover keys`: create, list and revoke API keys.
 *
 *   keys create --account ID     prints the new key as the last line (shown once)
 *   keys list --account ID       prefixes only (full keys are never stored);
 *                                tab-separated, header row
 *   keys revoke KEY_OR_PREFIX    exit 3 if it was revoked already
 *
 * Every subcommand takes --data-dir DIR (default $BGR_DATA_DIR, else ./data)
 * and --store URL (default $BGR_STORE)
 * and refuses a directory without a store (create one with `bgremover
 * accounts create`). Works while the server runs; a revoked key is refused
 * from its next request (the server caches no keys).
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
               "       bgremover keys list --account ID [--no-header] [--data-dir DIR]\n"
               "       bgremover keys revoke KEY_OR_PREFIX [--data-dir DIR]\n"
               "\n"
               "Manages API keys (Authorization: Bearer bgr_live_...). `create` prints the\n"
               "key as its last line; it is shown only this once (only a hash is stored).\n"
               "`list` prints one tab-separated line per key (PREFIX, CREATED, LAST_USED,\n"
               "STATUS, REVOKED) after a header row (--no-header leaves it out); `revoke`\n"
               "takes a full key or a listed prefix, and refuses the key from the server's\n"
               "next request.\n"
               "\n"
               "      --data-dir DIR   data directory (default $BGR_DATA_DIR, else ./data)\n"
               "      --store URL      postgresql://... to use that database as the store\n"
               "                       (default $BGR_STORE, else SQLite in the data directory)\n"
               "\n"
               "Exit status: 0 done, 1 failed (unknown account or key, a prefix shared by\n"
               "several keys, no store in DIR), 2 usage error, 3 the key was revoked\n"
               "already (nothing changed).\n");
}

static int print_key(void *ctx, const struct bgr_key_info *k)
{
    char created[21], used[21] = "never", revoked[21] = "-";
    (void)ctx;
    bgr_time_format(k->created_at_ms, created);
    if (k->last_used_ms)
        bgr_time_format(k->last_used_ms, used);
    if (k->revoked_at_ms)
        bgr_time_format(k->revoked_at_ms, revoked);
    printf("%s\t%s\t%s\t%s\t%s\n", k->prefix, created, used, k->revoked ? "revoked" : "active",
           revoked);
    return 0;
}

int bgr_cmd_keys(int argc, char **argv)
{
    enum { O_ACCOUNT = 1, O_DATA, O_STORE, O_NOHEADER, O_HELP };
    static const struct option opts[] = {
        {"account", required_argument, NULL, O_ACCOUNT},
        {"data-dir", required_argument, NULL, O_DATA},
        {"store", required_argument, NULL, O_STORE},
        {"no-header", no_argument, NULL, O_NOHEADER},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *account = NULL, *dir = NULL, *url = NULL, *sub;
    struct bgr_store *s = NULL;
    struct bgr_error e = {0};
    bool no_header = false;
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
        case O_STORE:
            url = optarg;
            break;
        case O_NOHEADER:
            no_header = true;
            break;
        case O_HELP:
        case 'h':
            usage(stdout);
            return BGR_EXIT_OK;
        default:
            return bgr_cli_bad_option("keys", c, sargv);
        }
    }
    dir = bgr_cli_data_dir(dir);
    url = bgr_cli_store_url(url);
    pos = sargv + optind;
    npos = sargc - optind;
    if (strcmp(sub, "create") == 0 || strcmp(sub, "list") == 0) {
        if (!account || npos)
            return bgr_cli_usage_error("keys", "%s needs --account ID and nothing else", sub);
        if (no_header && strcmp(sub, "list") != 0)
            return bgr_cli_usage_error("keys", "--no-header is for list");
    } else if (strcmp(sub, "revoke") == 0) {
        if (npos != 1 || account || no_header)
            return bgr_cli_usage_error("keys", "revoke needs KEY_OR_PREFIX");
    } else {
        return bgr_cli_usage_error("keys", "unknown subcommand '%s'", sub);
    }
    if ((rc = bgr_cli_store_open("keys", dir, url, false, &s)))
        return rc;
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
        if (bgr_store_account_get(s, account, &a, &e) != 0) {
            bgr_cli_error("keys", "%s", e.msg);
            rc = BGR_EXIT_FAIL;
        } else {
            if (!no_header)
                printf("PREFIX\tCREATED\tLAST_USED\tSTATUS\tREVOKED\n");
            if (bgr_store_key_list(s, account, print_key, NULL, &e) != 0) {
                bgr_cli_error("keys", "%s", e.msg);
                rc = BGR_EXIT_FAIL;
            }
        }
    } else {
        struct bgr_key_info ki;
        bool already = false;
        char when[21];
        if (bgr_store_key_revoke(s, pos[0], &ki, &already, &e) != 0) {
            if (e.code == BGR_ENOT_FOUND)
                bgr_cli_error("keys",
                              "no key matches '%.64s' (give the full key or a prefix"
                              " that `keys list` shows)",
                              pos[0]);
            else
                bgr_cli_error("keys", "%s", e.msg);
            rc = BGR_EXIT_FAIL;
        } else if (already) {
            bgr_time_format(ki.revoked_at_ms, when);
            bgr_cli_error("keys",
                          "key %s... (account %s) was already revoked on %s; nothing changed",
                          ki.prefix, ki.account_id, when);
            rc = BGR_EXIT_UNCHANGED;
        } else {
            printf("revoked %s (account %s)\n", ki.prefix, ki.account_id);
        }
    }
    bgr_store_close(s);
    return rc;
}
