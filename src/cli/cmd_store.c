/*
 * cmd_store.c - `bgremover store`: moving a one-box install (SQLite in the
 * data directory) to PostgreSQL.
 *
 *   store copy --from DATA_DIR --to postgresql://... [--results DEST]
 *   store verify --from DATA_DIR --to postgresql://...
 *
 * The tables are the store's business (src/store/copy.c: one transaction
 * on the target, verified before its commit); this file adds the result
 * objects, which only src/results touches: with --results each live
 * object is read from the source location, written to DEST, read back and
 * checked by size and SHA-256, before any row is written. Progress goes to
 * stderr, the summary to stdout.
 */
#define _GNU_SOURCE
#include "cli/cli.h"
#include "results/results.h"
#include "store/store.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_NAMED 10 /* missing or damaged source objects named one by one */

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: bgremover store copy --from DATA_DIR --to postgresql://... [--results DEST]\n"
            "                            [--from-results LOCATION]\n"
            "       bgremover store verify --from DATA_DIR --to postgresql://...\n"
            "\n"
            "Moves a one-box install to PostgreSQL. `copy` copies every table of the SQLite\n"
            "store in DATA_DIR (accounts, key hashes, plans, credit adjustments, usage\n"
            "history, result records, batches, webhook outbox, idempotency keys) into an\n"
            "empty PostgreSQL database, keeping every id, then compares row counts and\n"
            "totals (credits charged, requests counted, credits granted, keys active and\n"
            "revoked) and commits only if they match: a copy that fails leaves the target\n"
            "empty, so it can be run again. A target holding any rows is refused.\n"
            "\n"
            "Stop the server first: the copy refuses a data directory whose server is\n"
            "running, and admin commands wait for it. Batch items the server left in\n"
            "progress are copied as queued; a worker on the new store takes them.\n"
            "\n"
            "      --from DATA_DIR        the data directory of the SQLite store\n"
            "      --to URL               the PostgreSQL database (a libpq URI); the store's\n"
            "                             tables are created there if it holds none\n"
            "      --results DEST         also copy the result objects of live results (a\n"
            "                             directory or s3://BUCKET/PREFIX, with the S3\n"
            "                             settings of `serve`), each checked by size and\n"
            "                             SHA-256; without it they stay where they are, and\n"
            "                             the new servers need --results DATA_DIR/results\n"
            "      --from-results LOCATION  where the objects are now (default\n"
            "                             DATA_DIR/results; as given to serve's --results)\n"
            "\n"
            "`verify` compares the same numbers again (before the new servers change them).\n"
            "\n"
            "Exit status: 0 copied and verified (or they match), 1 failed (no store in\n"
            "DATA_DIR, a server running on it, a target not empty, a mismatch: the message\n"
            "gives the numbers), 2 usage error.\n");
}

static void on_progress(void *ctx, const char *line)
{
    (void)ctx;
    fprintf(stderr, "bgremover store: %s\n", line);
}

/* ---- result objects --------------------------------------------------------- */

struct objects {
    struct bgr_results *from, *to;
    int64_t copied, bytes, missing, damaged;
    int64_t last_ms;
};

static bool same_sha(const void *data, size_t len, const char *want)
{
    char hex[65];
    bgr_sha256_hex(data, len, hex);
    return want && strcmp(hex, want) == 0;
}

/* The copy's object callback: source -> DEST, read back, checked. A source
 * object that is missing or differs from its row is reported and counted
 * (the install is copied as it is), a copy that does not read back the
 * same stops everything. */
static int copy_object(void *ctx, const char *key, const char *mime, int64_t size,
                       const char *sha256, struct bgr_error *err)
{
    struct objects *o = ctx;
    struct bgr_buf data, back;
    int rc;

    bgr_buf_init(&data, 0);
    bgr_buf_init(&back, 0);
    rc = bgr_results_read(o->from, key, 0, &data, err);
    if (rc == BGR_ENOT_FOUND) {
        if (o->missing++ < MAX_NAMED)
            fprintf(stderr,
                    "bgremover store: warning: result %s is missing in %s (its record is copied;"
                    " downloading it fails, as it does today)\n",
                    key, bgr_results_location(o->from));
        rc = 0;
        goto out;
    }
    if (rc)
        goto out;
    if ((int64_t)data.len != size || !same_sha(data.data, data.len, sha256)) {
        if (o->damaged++ < MAX_NAMED)
            fprintf(stderr,
                    "bgremover store: warning: result %s in %s differs from its record (%zu"
                    " bytes, the record says %lld): copied as it is\n",
                    key, bgr_results_location(o->from), data.len, (long long)size);
    }
    rc = bgr_results_put(o->to, key, data.data, data.len, mime && *mime ? mime : NULL, err);
    if (!rc)
        rc = bgr_results_read(o->to, key, 0, &back, err);
    if (!rc && (back.len != data.len || memcmp(back.data, data.data, data.len) != 0)) {
        char want[65];
        bgr_sha256_hex(data.data, data.len, want);
        rc = bgr_error_set(err, BGR_EIO,
                           "result %s reads back from %s as %zu bytes, not the %zu bytes with"
                           " SHA-256 %s that were written",
                           key, bgr_results_location(o->to), back.len, data.len, want);
    }
    if (rc) {
        bgr_error_prefix(err, "copying result %s", key);
        goto out;
    }
    o->copied++;
    o->bytes += (int64_t)data.len;
    if (bgr_now_ms() - o->last_ms >= 2000) {
        o->last_ms = bgr_now_ms();
        fprintf(stderr, "bgremover store: result objects: %lld copied (%.1f MB)\n",
                (long long)o->copied, (double)o->bytes / 1e6);
    }
out:
    bgr_buf_release(&data);
    bgr_buf_release(&back);
    return rc;
}

/* Whether two locations are one directory (copying onto itself). */
static bool same_dir(const char *a, const char *b)
{
    char ra[PATH_MAX], rb[PATH_MAX];
    if (strncmp(a, "s3://", 5) == 0 || strncmp(b, "s3://", 5) == 0)
        return strcmp(a, b) == 0;
    return realpath(a, ra) && realpath(b, rb) && strcmp(ra, rb) == 0;
}

static int open_objects(const char *from, const char *to, struct objects *o)
{
    struct bgr_results_opts ro;
    struct bgr_error e = {0};
    struct stat sb;
    bgr_results_opts_init(&ro);
    if (strncmp(from, "s3://", 5) != 0 && (stat(from, &sb) != 0 || !S_ISDIR(sb.st_mode))) {
        bgr_cli_error("store",
                      "%s is not a directory: where are the result objects? (give"
                      " --from-results LOCATION as the server's --results had it)",
                      from);
        return BGR_EXIT_FAIL;
    }
    if (same_dir(from, to))
        return bgr_cli_usage_error("store",
                                   "--results %s is where the objects are already: leave it out"
                                   " and start the new servers with --results %s",
                                   to, from);
    if (bgr_results_open(from, &ro, &o->from, &e) != 0 ||
        bgr_results_open(to, &ro, &o->to, &e) != 0 || bgr_results_check(o->to, &e) != 0) {
        bgr_cli_error("store", "%s", e.msg);
        return BGR_EXIT_FAIL;
    }
    return BGR_EXIT_OK;
}

/* ---- output ------------------------------------------------------------------ */

static void print_counts(const struct bgr_store_copy_report *r)
{
    const struct bgr_store_copy_counts *c = &r->dst;
    for (int i = 0; i < BGR_STORE_COPY_TABLES; i++)
        printf("  %-14s %lld\n", bgr_store_copy_table_name(i), (long long)c->rows[i]);
    printf("  totals: %.17g credits charged, %lld requests counted, %lld credits granted,"
           " %lld keys active, %lld revoked, %lld live results\n",
           c->credits, (long long)c->requests, (long long)c->granted, (long long)c->keys_active,
           (long long)c->keys_revoked, (long long)c->live_images);
}

int bgr_cmd_store(int argc, char **argv)
{
    enum { O_FROM = 1, O_TO, O_RESULTS, O_FROM_RESULTS, O_HELP };
    static const struct option opts[] = {
        {"from", required_argument, NULL, O_FROM},
        {"to", required_argument, NULL, O_TO},
        {"results", required_argument, NULL, O_RESULTS},
        {"from-results", required_argument, NULL, O_FROM_RESULTS},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *from = NULL, *to = NULL, *dest = NULL, *from_results = NULL, *sub;
    char *dflt_results = NULL;
    struct objects objs = {0};
    struct bgr_store_copy_opts co = {0};
    struct bgr_store_copy_report r;
    struct bgr_error e = {0};
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
        case O_FROM:
            from = optarg;
            break;
        case O_TO:
            to = optarg;
            break;
        case O_RESULTS:
            dest = optarg;
            break;
        case O_FROM_RESULTS:
            from_results = optarg;
            break;
        case O_HELP:
        case 'h':
            usage(stdout);
            return BGR_EXIT_OK;
        default:
            return bgr_cli_bad_option("store", c, sargv);
        }
    }
    if (strcmp(sub, "copy") != 0 && strcmp(sub, "verify") != 0)
        return bgr_cli_usage_error("store", "unknown subcommand '%s' (copy or verify)", sub);
    if (optind < sargc)
        return bgr_cli_usage_error("store", "unexpected argument '%s'", sargv[optind]);
    if (!from || !*from || !to || !*to)
        return bgr_cli_usage_error("store", "%s needs --from DATA_DIR and --to postgresql://...",
                                   sub);
    if (strncmp(to, "postgresql://", 13) != 0 && strncmp(to, "postgres://", 11) != 0)
        return bgr_cli_usage_error("store",
                                   "--to takes a PostgreSQL URI (postgresql://...), not"
                                   " '%.200s'",
                                   to);
    if (strcmp(sub, "verify") == 0 && (dest || from_results))
        return bgr_cli_usage_error("store", "--results and --from-results are for copy");
    if (from_results && !dest)
        return bgr_cli_usage_error("store", "--from-results goes with --results DEST");

    if (strcmp(sub, "verify") == 0) {
        if (bgr_store_copy_verify(from, to, &r, &e) != 0) {
            bgr_cli_error("store", "%s", e.msg);
            return BGR_EXIT_FAIL;
        }
        printf("%s/bgremover.db and the PostgreSQL store match:\n", from);
        print_counts(&r);
        return BGR_EXIT_OK;
    }

    if (dest) {
        if (!from_results) {
            if (asprintf(&dflt_results, "%s/results", from) < 0) {
                bgr_cli_error("store", "out of memory");
                return BGR_EXIT_FAIL;
            }
            from_results = dflt_results;
        }
        rc = open_objects(from_results, dest, &objs);
        if (rc)
            goto out;
        objs.last_ms = bgr_now_ms();
        co.object = copy_object;
        co.object_ctx = &objs;
    }
    co.progress = on_progress;
    if (bgr_store_copy(from, to, &co, &r, &e) != 0) {
        bgr_cli_error("store", "%s", e.msg);
        rc = BGR_EXIT_FAIL;
        goto out;
    }
    printf("copied %s/bgremover.db to the PostgreSQL store, verified:\n", from);
    print_counts(&r);
    if (r.items_requeued)
        printf("%lld batch item%s in progress when the server stopped %s copied as queued: a"
               " worker on the new store takes %s\n",
               (long long)r.items_requeued, r.items_requeued == 1 ? "" : "s",
               r.items_requeued == 1 ? "was" : "were", r.items_requeued == 1 ? "it" : "them");
    if (dest) {
        printf("result objects: %lld of %lld copied to %s, each read back and checked (size and"
               " SHA-256), %.1f MB\n",
               (long long)objs.copied, (long long)r.objects, bgr_results_location(objs.to),
               (double)objs.bytes / 1e6);
        if (objs.missing || objs.damaged)
            printf("warning: %lld result object%s missing and %lld damaged in %s already"
                   " (named on stderr); their records were copied as they are\n",
                   (long long)objs.missing, objs.missing == 1 ? " was" : "s were",
                   (long long)objs.damaged, bgr_results_location(objs.from));
        printf("start the servers of the new store with --results %s\n", dest);
    } else {
        printf("result objects were not copied: the %lld live ones stay in %s/results. Start the"
               " servers of the new store with --results %s/results (or a copy of it), or run the"
               " copy with --results DEST\n",
               (long long)r.src.live_images, from, from);
    }
out:
    bgr_results_close(objs.from);
    bgr_results_close(objs.to);
    free(dflt_results);
    return rc;
}
