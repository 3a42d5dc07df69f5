/*
 * cmd_accounts.c - `bgremover accounts`: create, list, show, change and
 * delete API accounts in a data directory, also while a server runs on it
 * (the store serialises writers across processes; the server reads keys
 * and accounts from the store on every request, so a change applies from
 * the next one).
 *
 *   accounts create --email E --plan free|pro|enterprise   prints the new id
 *   accounts list [--no-header]                            tab-separated, header row
 *   accounts show ID                                       details and counts
 *   accounts set-plan ID PLAN
 *   accounts webhook-secret ID [--rotate]                  prints the secret last
 *   accounts credits ID [--add N | --subtract N | --set N] this month's balance
 *   accounts delete ID [--yes]                             the account and all it holds
 *
 * Every subcommand takes --data-dir DIR (default $BGR_DATA_DIR, else ./data)
 * and --store URL (default $BGR_STORE; a postgresql:// URI puts the store
 * in PostgreSQL instead of DIR).
 * Only `create` makes a store where there is none; the others refuse a
 * directory without one, so a mistyped --data-dir creates nothing.
 * Machine-readable lines go to stdout; explanations to stderr.
 */
#define _GNU_SOURCE
#include "cli/cli.h"
#include "store/store.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CMD "accounts"
#define CREDITS_MAX 1000000000LL /* per change: far beyond any plan */

static void usage(FILE *f)
{
    fprintf(
        f,
        "Usage: bgremover accounts create --email EMAIL --plan PLAN [--data-dir DIR]\n"
        "       bgremover accounts list [--no-header] [--data-dir DIR]\n"
        "       bgremover accounts show ID [--data-dir DIR]\n"
        "       bgremover accounts set-plan ID PLAN [--data-dir DIR]\n"
        "       bgremover accounts webhook-secret ID [--rotate] [--data-dir DIR]\n"
        "       bgremover accounts credits ID [--add N | --subtract N | --set N] [--data-dir DIR]\n"
        "       bgremover accounts delete ID [--yes] [--data-dir DIR]\n"
        "\n"
        "Manages API accounts in the server's data directory (safe while it runs;\n"
        "changes apply from the server's next request).\n"
        "\n"
        "  create          PLAN is free, pro or enterprise. Prints the new account id.\n"
        "                  E-mails are unique (compared without case and surrounding\n"
        "                  spaces). The first `create` in a directory creates the store;\n"
        "                  every other subcommand refuses a directory without one.\n"
        "  list            one tab-separated line per account (ID, PLAN, CREATED, EMAIL)\n"
        "                  after a header row (--no-header leaves it out).\n"
        "  show            the account, this month's credits and what it holds.\n"
        "  set-plan        moves the account to another plan.\n"
        "  webhook-secret  prints the secret that signs the account's webhooks\n"
        "                  (--rotate replaces it first).\n"
        "  credits         prints this UTC month's credit balance; --add N and\n"
        "                  --subtract N change this month's allowance by N, --set N\n"
        "                  makes N credits remain. Adjustments end with the month, as\n"
        "                  the plan's allowance does; a change that would leave less\n"
        "                  than 0 is refused. Plans with unlimited credits take none.\n"
        "  delete          removes the account with its keys (refused from the next\n"
        "                  request), batches, results and their files, usage history\n"
        "                  and webhooks, after printing what it holds. Asks for the\n"
        "                  account id on a terminal; elsewhere needs --yes.\n"
        "\n"
        "      --data-dir DIR   data directory (default $BGR_DATA_DIR, else ./data)\n"
        "      --store URL      postgresql://... to use that database as the store\n"
        "                       (default $BGR_STORE, else SQLite in the data directory)\n"
        "\n"
        "Exit status: 0 done, 1 failed (unknown account, no store in DIR, e-mail\n"
        "taken, not confirmed, ...), 2 usage error.\n");
}

/* ---- output ------------------------------------------------------------- */

static int print_account(void *ctx, const struct bgr_account *a)
{
    char created[21];
    (void)ctx;
    bgr_time_format(a->created_at_ms, created);
    printf("%s\t%s\t%s\t%s\n", a->id, a->plan.name, created, a->email);
    return 0;
}

/* "1234", "unlimited", or a fractional balance as "12.75". */
static void credits_str(double v, char *out, size_t n)
{
    if (v == BGR_UNLIMITED)
        (void)snprintf(out, n, "unlimited");
    else if (v == floor(v))
        (void)snprintf(out, n, "%.0f", v);
    else
        (void)snprintf(out, n, "%.2f", v);
}

static void print_balance(const char *id, const struct bgr_credit_balance *b)
{
    char month[11], total[32], used[32], left[32];
    bgr_day_format(b->month_first_day, month);
    credits_str((double)b->total, total, sizeof total);
    credits_str(b->used, used, sizeof used);
    /* Whole credits remain, rounded down, as /v1/account reports them. */
    credits_str(b->remaining == BGR_UNLIMITED ? BGR_UNLIMITED : floor(b->remaining + 1e-9), left,
                sizeof left);
    printf("account      %s\n", id);
    printf("month        %.7s (UTC)\n", month);
    if (b->plan_monthly == BGR_UNLIMITED)
        printf("plan         unlimited\n");
    else
        printf("plan         %" PRId64 " a month\n", b->plan_monthly);
    printf("adjustment   %+" PRId64 "\n", b->adjustment);
    printf("total        %s\n", total);
    printf("used         %s\n", used);
    printf("remaining    %s\n", left);
}

/* One line per thing the account holds (stderr before a delete, stdout
 * for show). */
static void print_footprint(FILE *f, const struct bgr_account_footprint *fp)
{
    fprintf(f, "keys         %" PRId64 " (%" PRId64 " active)\n", fp->keys, fp->keys_active);
    fprintf(f, "batches      %" PRId64 " (%" PRId64 " items)\n", fp->batches, fp->batch_items);
    fprintf(f, "results      %" PRId64 " (%" PRId64 " files on disk)\n", fp->results,
            fp->result_files);
    fprintf(f, "usage        %" PRId64 " request records\n", fp->usage_records);
    fprintf(f, "webhooks     %" PRId64 "\n", fp->webhooks);
    fprintf(f, "adjustments  %" PRId64 " credit adjustments\n", fp->credit_adjustments);
}

/* ---- subcommands ---------------------------------------------------------- */

/* Parses a whole number of credits in [lo, CREDITS_MAX]: 0, or -1. */
static int parse_credits(const char *s, int64_t lo, int64_t *out)
{
    char *end;
    long long v;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > CREDITS_MAX)
        return -1;
    *out = v;
    return 0;
}

static int cmd_show(struct bgr_store *s, const char *id)
{
    struct bgr_account a;
    struct bgr_account_footprint fp;
    struct bgr_credit_balance b;
    struct bgr_error e = {0};
    char created[21], total[32], used[32], left[32];
    if (bgr_store_account_get(s, id, &a, &e) != 0 || bgr_store_account_footprint(s, id, &fp, &e) ||
        bgr_store_credits_balance(s, id, bgr_wall_ms(), &b, &e)) {
        bgr_cli_error(CMD, "%s", e.msg);
        return BGR_EXIT_FAIL;
    }
    bgr_time_format(a.created_at_ms, created);
    credits_str((double)b.total, total, sizeof total);
    credits_str(b.used, used, sizeof used);
    credits_str(b.remaining == BGR_UNLIMITED ? BGR_UNLIMITED : floor(b.remaining + 1e-9), left,
                sizeof left);
    printf("id           %s\n", a.id);
    printf("email        %s\n", a.email);
    printf("plan         %s\n", a.plan.name);
    printf("created      %s\n", created);
    printf("credits      %s this month (adjustment %+" PRId64 "), %s used, %s left\n", total,
           b.adjustment, used, left);
    print_footprint(stdout, &fp);
    return BGR_EXIT_OK;
}

/* Asks on the terminal for the account id; true if it was typed. */
static bool confirm_on_tty(const char *id)
{
    char line[128];
    fprintf(stderr,
            "Delete account %s and all of the above? This cannot be undone.\n"
            "Type the account id to confirm: ",
            id);
    (void)fflush(stderr);
    if (!fgets(line, sizeof line, stdin))
        return false;
    line[strcspn(line, "\r\n")] = 0;
    return strcmp(line, id) == 0;
}

static int cmd_delete(struct bgr_store *s, const char *id, bool yes)
{
    struct bgr_account a;
    struct bgr_account_footprint fp;
    struct bgr_error e = {0};
    int64_t left = 0;
    if (bgr_store_account_get(s, id, &a, &e) != 0 ||
        bgr_store_account_footprint(s, id, &fp, &e) != 0) {
        bgr_cli_error(CMD, "%s", e.msg);
        return BGR_EXIT_FAIL;
    }
    fprintf(stderr, "account      %s (%s, plan %s) holds:\n", a.id, a.email, a.plan.name);
    print_footprint(stderr, &fp);
    if (!yes) {
        if (!isatty(STDIN_FILENO))
            return bgr_cli_usage_error(CMD, "delete needs --yes when stdin is not a terminal;"
                                            " nothing was deleted");
        if (!confirm_on_tty(id)) {
            bgr_cli_error(CMD, "not confirmed; nothing was deleted");
            return BGR_EXIT_FAIL;
        }
    }
    /* Counted again inside the delete's transaction: what it removed. */
    if (bgr_store_account_delete(s, id, &fp, &left, &e) != 0) {
        bgr_cli_error(CMD, "%s (nothing was deleted)", e.msg);
        return BGR_EXIT_FAIL;
    }
    printf("deleted %s (%s): %" PRId64 " keys, %" PRId64 " batches (%" PRId64 " items), %" PRId64
           " results (%" PRId64 " files), %" PRId64 " usage records, %" PRId64 " webhooks, %" PRId64
           " credit adjustments\n",
           a.id, a.email, fp.keys, fp.batches, fp.batch_items, fp.results, fp.result_files - left,
           fp.usage_records, fp.webhooks, fp.credit_adjustments);
    if (left)
        fprintf(stderr,
                "bgremover accounts: %" PRId64 " result files could not be removed now (see the"
                " messages above); a running server's sweep removes them later\n",
                left);
    return BGR_EXIT_OK;
}

static int cmd_credits(struct bgr_store *s, const char *id, const char *op, int64_t n)
{
    struct bgr_credit_balance b;
    struct bgr_error e = {0};
    int rc;
    if (!op)
        rc = bgr_store_credits_balance(s, id, bgr_wall_ms(), &b, &e);
    else
        rc = bgr_store_credits_change(s, id, strcmp(op, "subtract") == 0 ? -n : n,
                                      strcmp(op, "set") == 0, bgr_wall_ms(), &b, &e);
    if (rc) {
        bgr_cli_error(CMD, "%s", e.msg);
        return BGR_EXIT_FAIL;
    }
    if (op)
        fprintf(stderr, "bgremover accounts: credits of %s changed (%s %" PRId64 ")\n", id, op, n);
    print_balance(id, &b);
    return BGR_EXIT_OK;
}

static int cmd_webhook_secret(struct bgr_store *s, const char *id, bool rotate)
{
    struct bgr_account a;
    struct bgr_error e = {0};
    char secret[BGR_SECRET_MAX];
    if (rotate ? bgr_store_account_rotate_secret(s, id, secret, &e)
               : bgr_store_account_get(s, id, &a, &e)) {
        bgr_cli_error(CMD, "%s", e.msg);
        return BGR_EXIT_FAIL;
    }
    printf("%s\n", rotate ? secret : a.webhook_secret);
    return BGR_EXIT_OK;
}

static bool known_plan(const char *name);

/* The one subcommand that may create the store (the first account of a
 * new installation is one command); it says so when it does. */
static int cmd_create(const char *dir, const char *url, const char *email, const char *plan)
{
    struct bgr_store *s = NULL;
    struct bgr_account a;
    struct bgr_error e = {0}, e2 = {0};
    int rc;
    if (!email || !plan)
        return bgr_cli_usage_error(CMD, "create needs --email and --plan");
    if (!known_plan(plan)) /* before the store exists: a bad plan creates nothing */
        return bgr_cli_usage_error(CMD, "--plan: '%s' is not free, pro or enterprise", plan);
    if ((rc = bgr_cli_store_open(CMD, dir, url, true, &s)))
        return rc;
    if (bgr_store_account_find_email(s, email, &a, &e) == 0) {
        bgr_cli_error(CMD,
                      "an account with e-mail %s exists already: %s (e-mails are unique,"
                      " compared without case)",
                      a.email, a.id);
        rc = BGR_EXIT_FAIL;
    } else if (bgr_store_account_create(s, email, plan, bgr_wall_ms(), &a, &e) != 0) {
        bgr_cli_error(CMD, "%s", e.msg);
        /* A bad address is a usage error; an e-mail taken meanwhile (by
         * another process, after the check above) is not. */
        rc = e.code == BGR_EINVALID_PARAMETER && bgr_store_account_find_email(s, email, &a, &e2)
                 ? BGR_EXIT_USAGE
                 : BGR_EXIT_FAIL;
    } else {
        fprintf(stderr, "created account for %s on plan %s\n", a.email, a.plan.name);
        printf("%s\n", a.id);
    }
    bgr_store_close(s);
    return rc;
}

/* ---- parsing -------------------------------------------------------------- */

static bool known_plan(const char *name)
{
    struct bgr_plan p[BGR_PLAN_DEFAULT_COUNT];
    bgr_plan_defaults(p);
    for (size_t i = 0; i < BGR_PLAN_DEFAULT_COUNT; i++)
        if (strcmp(p[i].name, name) == 0)
            return true;
    return false;
}

enum {
    O_EMAIL = 1,
    O_PLAN,
    O_DATA,
    O_STORE,
    O_ROTATE,
    O_NOHEADER,
    O_ADD,
    O_SUBTRACT,
    O_SET,
    O_YES,
    O_HELP,
};
#define BIT(o) (1u << (o))

static const struct {
    const char *name;
    int npos;         /* positional arguments */
    unsigned allowed; /* options besides --data-dir and --help */
    const char *what; /* for the usage error */
} subs[] = {
    {"create", 0, BIT(O_EMAIL) | BIT(O_PLAN), "create --email EMAIL --plan PLAN"},
    {"list", 0, BIT(O_NOHEADER), "list [--no-header]"},
    {"show", 1, 0, "show ID"},
    {"set-plan", 2, 0, "set-plan ID PLAN"},
    {"webhook-secret", 1, BIT(O_ROTATE), "webhook-secret ID [--rotate]"},
    {"credits", 1, BIT(O_ADD) | BIT(O_SUBTRACT) | BIT(O_SET),
     "credits ID [--add N | --subtract N | --set N]"},
    {"delete", 1, BIT(O_YES), "delete ID [--yes]"},
};

int bgr_cmd_accounts(int argc, char **argv)
{
    static const struct option opts[] = {
        {"email", required_argument, NULL, O_EMAIL},
        {"plan", required_argument, NULL, O_PLAN},
        {"data-dir", required_argument, NULL, O_DATA},
        {"store", required_argument, NULL, O_STORE},
        {"rotate", no_argument, NULL, O_ROTATE},
        {"no-header", no_argument, NULL, O_NOHEADER},
        {"add", required_argument, NULL, O_ADD},
        {"subtract", required_argument, NULL, O_SUBTRACT},
        {"set", required_argument, NULL, O_SET},
        {"yes", no_argument, NULL, O_YES},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *email = NULL, *plan = NULL, *dir = NULL, *url = NULL, *sub, *credit_op = NULL;
    struct bgr_store *s = NULL;
    struct bgr_error e = {0};
    unsigned given = 0;
    int64_t credits = 0;
    int c, rc = BGR_EXIT_OK, sargc, si = -1;
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
        case O_STORE:
            url = optarg;
            break;
        case O_ADD:
        case O_SUBTRACT:
        case O_SET:
            if (credit_op)
                return bgr_cli_usage_error(CMD, "give one of --add, --subtract and --set");
            credit_op = c == O_ADD ? "add" : c == O_SUBTRACT ? "subtract" : "set";
            if (parse_credits(optarg, c == O_SET ? 0 : 1, &credits))
                return bgr_cli_usage_error(CMD, "--%s: '%s' is not a whole number from %d to %lld",
                                           credit_op, optarg, c == O_SET ? 0 : 1, CREDITS_MAX);
            break;
        case O_ROTATE:
        case O_NOHEADER:
        case O_YES:
            break;
        case O_HELP:
        case 'h':
            usage(stdout);
            return BGR_EXIT_OK;
        default:
            return bgr_cli_bad_option(CMD, c, sargv);
        }
        if (c > 0 && c < 32)
            given |= BIT(c);
    }
    dir = bgr_cli_data_dir(dir);
    url = bgr_cli_store_url(url);
    char **pos = sargv + optind;
    int npos = sargc - optind;

    for (size_t i = 0; i < BGR_ARRAY_LEN(subs); i++)
        if (strcmp(sub, subs[i].name) == 0)
            si = (int)i;
    if (si < 0)
        return bgr_cli_usage_error(CMD, "unknown subcommand '%s'", sub);
    if (npos != subs[si].npos || (given & ~(subs[si].allowed | BIT(O_DATA) | BIT(O_STORE))))
        return bgr_cli_usage_error(CMD, "usage: accounts %s [--data-dir DIR]", subs[si].what);

    if (strcmp(sub, "create") == 0)
        return cmd_create(dir, url, email, plan);
    if ((rc = bgr_cli_store_open(CMD, dir, url, false, &s)))
        return rc;
    if (strcmp(sub, "list") == 0) {
        if (!(given & BIT(O_NOHEADER)))
            printf("ID\tPLAN\tCREATED\tEMAIL\n");
        if (bgr_store_account_list(s, print_account, NULL, &e) != 0) {
            bgr_cli_error(CMD, "%s", e.msg);
            rc = BGR_EXIT_FAIL;
        }
    } else if (strcmp(sub, "show") == 0) {
        rc = cmd_show(s, pos[0]);
    } else if (strcmp(sub, "set-plan") == 0) {
        if (bgr_store_account_set_plan(s, pos[0], pos[1], &e) != 0) {
            bgr_cli_error(CMD, "%s", e.msg);
            rc = e.code == BGR_EINVALID_PARAMETER ? BGR_EXIT_USAGE : BGR_EXIT_FAIL;
        } else {
            printf("%s %s\n", pos[0], pos[1]);
        }
    } else if (strcmp(sub, "webhook-secret") == 0) {
        rc = cmd_webhook_secret(s, pos[0], given & BIT(O_ROTATE));
    } else if (strcmp(sub, "credits") == 0) {
        rc = cmd_credits(s, pos[0], credit_op, credits);
    } else {
        rc = cmd_delete(s, pos[0], given & BIT(O_YES));
    }
    bgr_store_close(s);
    return rc;
}
