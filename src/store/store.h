/*
 * store.h - the server's durable state: accounts, API keys, plans, rate and
 * daily limits, monthly credits, usage, stored results, batches and the
 * webhook outbox. SQLite today (one file, <data-dir>/bgremover.db, WAL mode,
 * busy_timeout, schema versioned with PRAGMA user_version); the interface
 * hides SQL so another engine could sit behind it.
 *
 * What it does not do: HTTP, JSON, image processing, outbound network. Result
 * files are written by src/jobs; the store only records them and removes
 * them on delete or expiry (it knows the data directory for that).
 *
 * Thread-safety: one struct bgr_store is shared by every thread of a process.
 * Internally it holds a small pool of SQLite connections; each call borrows
 * one for its duration. Several processes (the server and the admin CLI) may
 * open the same data directory at once: writes are serialised by SQLite's
 * file lock (BEGIN IMMEDIATE + busy_timeout), and every check-and-charge is
 * one transaction, so counts stay exact across processes and restarts.
 * The per-minute rate counters live in memory (one server per data dir).
 *
 * Time: every time-dependent call takes now_ms (UNIX ms, UTC) from the
 * caller, so tests drive the clock. Days are UTC calendar days, months UTC
 * calendar months.
 *
 * Errors: 0 or a negative enum bgr_err with detail in *err (err may be NULL).
 * SQLite failures are BGR_EIO (message names the statement's purpose, never
 * a key or secret). Out-structs are written only on success.
 */
#ifndef BGR_STORE_STORE_H
#define BGR_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "pipeline/pipeline.h" /* struct bgr_output_opts (type only; nothing linked) */

#define BGR_ID_MAX 48     /* "img_" + 22 base62, "usr_...", "batch_...", "evt_..." + NUL */
#define BGR_EMAIL_MAX 255 /* 254 octets + NUL */
#define BGR_PLAN_NAME_MAX 32
#define BGR_SECRET_MAX 80     /* "whsec_" + 64 hex + NUL */
#define BGR_KEY_MAX 64        /* "bgr_live_" + 43 base62 + NUL */
#define BGR_KEY_PREFIX_MAX 24 /* "bgr_live_" + 8 chars + NUL: what lists show */
#define BGR_URL_MAX 2048      /* longest URL we accept or store (without NUL) */
#define BGR_UNLIMITED (-1)    /* in plan fields: no limit */

/* ---- plans -------------------------------------------------------------
 * Plans are configuration, not data: the server (or CLI) hands the table to
 * the store at open; accounts name their plan. Defaults are the spec's. */
struct bgr_plan {
    char name[BGR_PLAN_NAME_MAX]; /* "free", "pro", "enterprise" */
    int64_t per_minute;           /* requests per minute (fixed UTC minute window) */
    int64_t per_day;              /* requests per UTC day, or BGR_UNLIMITED */
    int64_t max_bytes;            /* largest image (upload or download), bytes */
    int64_t retention_s;          /* results expire this long after creation */
    int64_t monthly_credits;      /* per UTC calendar month, or BGR_UNLIMITED */
};
#define BGR_PLAN_DEFAULT_COUNT 3
/* Fills out[0..2] with free, pro, enterprise as the spec defines them
 * (10/50/10 MB/24 h/50; 60/1000/25 MB/7 d/1000; 200/unl/50 MB/30 d/unl).
 * 1 MB = 1024 * 1024 bytes (the more generous reading). */
void bgr_plan_defaults(struct bgr_plan out[BGR_PLAN_DEFAULT_COUNT]);

/* ---- opening ------------------------------------------------------------ */
/* Whether bgr_store_open may create a store where there is none (no
 * <data_dir>/bgremover.db). A mistyped data directory must not silently
 * become a new, empty store: admin commands open with MUST_EXIST, the
 * server with IF_EMPTY, and only the first `accounts create` (and tests)
 * with CREATE. */
enum bgr_store_create {
    BGR_STORE_CREATE = 0, /* create it (and the directories) if missing */
    BGR_STORE_MUST_EXIST, /* no store: BGR_ENOT_FOUND, nothing created */
    BGR_STORE_IF_EMPTY,   /* create only if data_dir is missing or an empty
                           * directory; else BGR_ENOT_FOUND, nothing created */
};

struct bgr_store_opts {
    const struct bgr_plan *plans; /* NULL: bgr_plan_defaults; copied */
    size_t n_plans;
    /* NULL or "": SQLite in data_dir; "postgresql://...": that database
     * (a libpq URI), data_dir then only names local scratch. Borrowed. */
    const char *url;
    int pool_size;       /* database connections; 0 = 4 */
    int busy_timeout_ms; /* 0 = 10000 */
    int schema_version;  /* tests only: migrate no further than this; 0 = latest */
    enum bgr_store_create create;
};

struct bgr_store;

/* Opens <data_dir>/bgremover.db, creating it (with data_dir and
 * data_dir/results) when opts->create allows, and migrates the schema to
 * the current version (a database from a newer bgremover is refused with
 * BGR_EIO). opts may be NULL (BGR_STORE_CREATE). On success *out owns the
 * store: close it with bgr_store_close. Errors: BGR_ENOT_FOUND (no store
 * and opts->create forbids making one; the message names the directory),
 * BGR_EIO, BGR_EINVALID_PARAMETER (bad plan table). */
int bgr_store_open(const char *data_dir, const struct bgr_store_opts *opts, struct bgr_store **out,
                   struct bgr_error *err);
void bgr_store_close(struct bgr_store *s); /* accepts NULL; no call may be in flight */
/* Whether this open created the database (so callers can say so). */
bool bgr_store_created(const struct bgr_store *s);
/* The outcome of the last contact with a shared store's server (never a
 * network wait: for /readyz on an event-loop thread); always true for
 * SQLite. */
bool bgr_store_healthy(const struct bgr_store *s);
/* Whether other processes (API nodes, workers, on other machines) share
 * this store: PostgreSQL. SQLite belongs to one server process. */
bool bgr_store_shared(const struct bgr_store *s);
/* The store's location for messages: the SQLite file, or the PostgreSQL
 * URL with any password replaced by "***" (out: at least 512 bytes). */
void bgr_store_describe(const struct bgr_store *s, char *out, size_t n);

/* The data directory (owned by the store) and the schema version in use. */
const char *bgr_store_data_dir(const struct bgr_store *s);
int bgr_store_schema_version(void);
int bgr_store_pg_schema_version(void); /* PostgreSQL migrations (store_pg.c) */

/* Looks a plan up by name (case-sensitive). Errors: BGR_EINVALID_PARAMETER. */
int bgr_store_plan_get(struct bgr_store *s, const char *name, struct bgr_plan *out,
                       struct bgr_error *err);

/* ---- accounts ----------------------------------------------------------- */
struct bgr_account {
    char id[BGR_ID_MAX]; /* "usr_" + 16 base62 */
    char email[BGR_EMAIL_MAX];
    struct bgr_plan plan;                /* plan.name is the account's plan; limits resolved now */
    char webhook_secret[BGR_SECRET_MAX]; /* signs this account's webhooks */
    int64_t created_at_ms;
};

/* Creates an account with a fresh id and webhook secret. The e-mail is
 * stored without surrounding white space and must be unique, compared
 * without case (checked in the insert's write transaction, so also across
 * processes; databases from before this rule may hold duplicates, which
 * stay). Errors: BGR_EINVALID_PARAMETER (email empty/too long/without '@',
 * unknown plan, or taken: the message names the owner's id), BGR_EIO. */
int bgr_store_account_create(struct bgr_store *s, const char *email, const char *plan,
                             int64_t now_ms, struct bgr_account *out, struct bgr_error *err);
/* The (oldest) account whose e-mail equals email, trimmed and without
 * case. Errors: BGR_ENOT_FOUND, BGR_EIO. */
int bgr_store_account_find_email(struct bgr_store *s, const char *email, struct bgr_account *out,
                                 struct bgr_error *err);
/* Errors: BGR_ENOT_FOUND, BGR_EIO. The plan is resolved at the wall clock's
 * month (monthly_credits includes that month's credit adjustments). */
int bgr_store_account_get(struct bgr_store *s, const char *id, struct bgr_account *out,
                          struct bgr_error *err);
/* Calls fn once per account, oldest first; a non-zero return from fn stops
 * the walk and is returned. */
int bgr_store_account_list(struct bgr_store *s, int (*fn)(void *ctx, const struct bgr_account *a),
                           void *ctx, struct bgr_error *err);
/* Errors: BGR_ENOT_FOUND, BGR_EINVALID_PARAMETER (unknown plan), BGR_EIO. */
int bgr_store_account_set_plan(struct bgr_store *s, const char *id, const char *plan,
                               struct bgr_error *err);
/* Replaces the webhook secret with a fresh one, written to out. */
int bgr_store_account_rotate_secret(struct bgr_store *s, const char *id, char out[BGR_SECRET_MAX],
                                    struct bgr_error *err);

/* What an account holds in the store: what `accounts delete` removes. */
struct bgr_account_footprint {
    int64_t keys, keys_active;
    int64_t batches, batch_items;
    int64_t results;      /* result rows, live, expired and deleted */
    int64_t result_files; /* of those, files still on disk (not yet purged) */
    int64_t usage_records;
    int64_t webhooks; /* outbox rows, delivered or not */
    int64_t credit_adjustments;
};
/* Counts. Errors: BGR_ENOT_FOUND, BGR_EIO. */
int bgr_store_account_footprint(struct bgr_store *s, const char *id,
                                struct bgr_account_footprint *out, struct bgr_error *err);
/* Deletes the account and everything it holds, in one transaction: keys
 * (refused from the next request on: nothing caches them), batches and
 * their items (a queued item is then skipped by the workers), result rows,
 * usage history and daily counters, webhooks not yet sent, credit
 * adjustments. After the commit the result files are removed; *files_left
 * (may be NULL) counts those that could not be (the orphan sweep of a
 * running server retries them). *removed (may be NULL) is what was
 * deleted. Errors: BGR_ENOT_FOUND, BGR_EIO (nothing deleted). */
int bgr_store_account_delete(struct bgr_store *s, const char *id,
                             struct bgr_account_footprint *removed, int64_t *files_left,
                             struct bgr_error *err);

/* ---- credit adjustments -------------------------------------------------
 * The monthly allowance is the plan's; an admin adjusts one account's
 * allowance for one UTC month (`accounts credits`): adjustments add up, and
 * end with their month like the allowance (there is no carried-over
 * balance). The account's resolved plan (bgr_account.plan.monthly_credits)
 * includes the month's adjustments, so the charge at commit, /v1/account
 * and the remove.bg headers all see them. Unlimited plans take none. */
struct bgr_credit_balance {
    int64_t month_first_day; /* the UTC month (its first day) */
    int64_t plan_monthly;    /* the plan's allowance, or BGR_UNLIMITED */
    int64_t adjustment;      /* this month's adjustments, summed */
    int64_t total;           /* plan_monthly + adjustment, or BGR_UNLIMITED */
    double used;             /* charged this month (exact: previews cost 0.25) */
    double remaining;        /* total - used (>= 0), or BGR_UNLIMITED */
};
int bgr_store_credits_balance(struct bgr_store *s, const char *id, int64_t now_ms,
                              struct bgr_credit_balance *out, struct bgr_error *err);
/* Changes now's month allowance: set false adds amount (negative
 * subtracts); set true makes the remaining balance amount (whole credits).
 * In one write transaction with the balance check, so a server charging
 * meanwhile cannot drive it below zero. *out is the new balance. Errors:
 * BGR_ENOT_FOUND, BGR_EINVALID_PARAMETER (unlimited plan; a result below
 * zero remaining: the message says what is left; nothing changed), BGR_EIO. */
int bgr_store_credits_change(struct bgr_store *s, const char *id, int64_t amount, bool set,
                             int64_t now_ms, struct bgr_credit_balance *out, struct bgr_error *err);

/* ---- API keys -----------------------------------------------------------
 * A key is "bgr_live_" + 43 base62 characters (256 bits from the OS). Only
 * its SHA-256 and a display prefix ("bgr_live_" + 8 chars) are stored, so
 * the full key exists only in the create call's output. */
struct bgr_key_info {
    char prefix[BGR_KEY_PREFIX_MAX];
    char account_id[BGR_ID_MAX];
    int64_t created_at_ms;
    int64_t last_used_ms;  /* 0 = never (updated at most once a minute) */
    bool revoked;          /* = revoked_at_ms != 0 */
    int64_t revoked_at_ms; /* 0 = active */
};

/* Creates a key for an existing account; key_out receives the full key
 * (show it once, never log it). Errors: BGR_ENOT_FOUND (account), BGR_EIO. */
int bgr_store_key_create(struct bgr_store *s, const char *account_id, int64_t now_ms,
                         char key_out[BGR_KEY_MAX], struct bgr_key_info *info,
                         struct bgr_error *err);
/* Authenticates a presented key: a malformed, unknown or revoked key is
 * BGR_EUNAUTHORIZED (one message for all, so callers leak nothing). On
 * success *acct is the key's account with its plan resolved. Lookup by hash,
 * then a constant-time comparison of the stored hash. */
int bgr_store_key_lookup(struct bgr_store *s, const char *key, int64_t now_ms,
                         struct bgr_account *acct, struct bgr_error *err);
/* Keys of one account, oldest first (prefixes only). */
int bgr_store_key_list(struct bgr_store *s, const char *account_id,
                       int (*fn)(void *ctx, const struct bgr_key_info *k), void *ctx,
                       struct bgr_error *err);
/* Revokes by full key or by display prefix. Errors: BGR_ENOT_FOUND (no
 * such key), BGR_EINVALID_PARAMETER (a prefix matching several keys: give
 * the full key). Revoking a revoked key changes nothing and succeeds with
 * *already = true (may be NULL) and info->revoked_at_ms the first time. */
int bgr_store_key_revoke(struct bgr_store *s, const char *key_or_prefix, struct bgr_key_info *info,
                         bool *already, struct bgr_error *err);

/* ---- rate limits ---------------------------------------------------------
 * Called once per authenticated request, before any work. Per-minute limit:
 * fixed window aligned to the UTC minute (in memory). Daily: UTC day,
 * persisted, exact across restarts and processes. A refused request is not
 * counted against either limit. Headers: X-RateLimit-Limit = minute_limit,
 * X-RateLimit-Remaining = minute_remaining (after this request),
 * X-RateLimit-Reset = minute_reset (UNIX seconds of the window's end); on a
 * refusal Retry-After = retry_after_s (to the window or day end). */
struct bgr_rate_status {
    int64_t minute_limit, minute_remaining, minute_reset;
    int64_t day_limit; /* BGR_UNLIMITED or the plan's */
    int64_t day_remaining, day_reset;
    int64_t retry_after_s; /* set on BGR_ERATE_LIMITED / BGR_EDAILY_LIMIT_EXCEEDED */
};
/* Counts one request. Errors: BGR_ERATE_LIMITED, BGR_EDAILY_LIMIT_EXCEEDED
 * (*st is filled in these cases too), BGR_EIO. */
int bgr_store_rate_hit(struct bgr_store *s, const struct bgr_account *acct, int64_t now_ms,
                       struct bgr_rate_status *st, struct bgr_error *err);
/* Current status without counting (for responses that skipped rate_hit). */
int bgr_store_rate_peek(struct bgr_store *s, const struct bgr_account *acct, int64_t now_ms,
                        struct bgr_rate_status *st, struct bgr_error *err);

/* ---- credits and usage ----------------------------------------------------
 * A credit is charged only when a result is committed (bgr_store_image_add
 * and bgr_store_item_complete check the month's balance and charge in the
 * same transaction): failures cost nothing, nothing is charged twice, and a
 * crash before the commit charges nothing. */

/* Credits used in now's UTC month and what is left (BGR_UNLIMITED if the
 * plan is). Cheap pre-check before work; the binding check is at commit. */
int bgr_store_credits(struct bgr_store *s, const struct bgr_account *acct, int64_t now_ms,
                      int64_t *used, int64_t *remaining, struct bgr_error *err);

/* The same exactly: charges may be fractional (remove.bg previews cost
 * 0.25), which the images table stores as REAL in its credits column.
 * bgr_store_credits reports whole credits: used rounded up, remaining down.
 * remaining is BGR_UNLIMITED (-1) on unlimited plans. */
int bgr_store_credits_exact(struct bgr_store *s, const struct bgr_account *acct, int64_t now_ms,
                            double *used, double *remaining, struct bgr_error *err);

/* BGR_EINSUFFICIENT_CREDITS with the message every path gives when the
 * month's credits are spent: how many the month had (the plan's allowance
 * with this month's adjustments), and the day they renew
 * (the first of the next UTC month after now_ms). */
int bgr_store_err_credits_spent(const struct bgr_account *acct, int64_t now_ms,
                                struct bgr_error *err);

/* ---- idempotency keys ----------------------------------------------------
 * A client's Idempotency-Key on a POST that does work: a retry with the same
 * key and the same request (fingerprint: a SHA-256 the API layer computes)
 * within BGR_IDEM_TTL_MS gets the first answer again and runs nothing; the
 * same key with another request is refused. One row per (account, key). */
#define BGR_IDEM_TTL_MS (24LL * 3600 * 1000)
enum bgr_idem_state {
    BGR_IDEM_NEW,         /* claimed: run the request, then complete or release */
    BGR_IDEM_REPLAY,      /* done before: *replay holds the answer */
    BGR_IDEM_REUSED,      /* the key was used for another request */
    BGR_IDEM_IN_PROGRESS, /* the same request is running now (claimed under lease_ms ago) */
};
/* A remembered answer. Owned: release with bgr_idem_response_release. */
struct bgr_idem_response {
    int status;
    char content_type[80];
    char *headers; /* "Name: value\n" lines */
    uint8_t *body;
    size_t len;
};
void bgr_idem_response_release(struct bgr_idem_response *r);
/* Decides, in one write transaction, what a request with this key may do
 * (*state). A row past its expiry counts as absent; a running row claimed
 * lease_ms or more ago (its process died) is taken over as NEW. *replay is
 * set only for BGR_IDEM_REPLAY. Errors: BGR_EIO. */
int bgr_store_idem_claim(struct bgr_store *s, const char *account_id, const char *key,
                         const uint8_t fingerprint[32], int64_t now_ms, int64_t lease_ms,
                         enum bgr_idem_state *state, struct bgr_idem_response *replay,
                         struct bgr_error *err);
/* The claimed request succeeded: remember its answer for BGR_IDEM_TTL_MS. */
int bgr_store_idem_complete(struct bgr_store *s, const char *account_id, const char *key,
                            int64_t now_ms, const struct bgr_idem_response *r,
                            struct bgr_error *err);
/* The claimed request failed: forget the key, so a retry runs again. */
int bgr_store_idem_release(struct bgr_store *s, const char *account_id, const char *key,
                           struct bgr_error *err);
/* Removes expired keys; *n_removed may be NULL. */
int bgr_store_idem_sweep(struct bgr_store *s, int64_t now_ms, int *n_removed,
                         struct bgr_error *err);

/* Records one authenticated request that was admitted (passed rate_hit):
 * route like "POST /v1/remove", the HTTP status sent, duration in ms.
 * These rows are api_calls and /v1/usage "requests". */
int bgr_store_usage_record(struct bgr_store *s, const char *account_id, int64_t now_ms,
                           const char *route, int http_status, int64_t duration_ms,
                           struct bgr_error *err);

struct bgr_month_usage {
    int64_t images_processed; /* results committed this UTC month (deleted ones too) */
    int64_t credits_used;
    int64_t api_calls; /* usage records this month */
};
int bgr_store_usage_month(struct bgr_store *s, const char *account_id, int64_t now_ms,
                          struct bgr_month_usage *out, struct bgr_error *err);

/* Days are integers: days since 1970-01-01 (UTC). */
enum bgr_granularity { BGR_GRAN_DAILY = 0, BGR_GRAN_WEEKLY, BGR_GRAN_MONTHLY };
struct bgr_usage_bucket {
    int64_t start_day, end_day; /* inclusive, clipped to the requested range */
    int64_t requests, credits, images;
};
struct bgr_usage_report {
    int64_t start_day, end_day; /* inclusive */
    int64_t total_requests, total_credits, total_images;
    int64_t avg_processing_ms;        /* mean over the range's results, rounded; 0 if none */
    struct bgr_usage_bucket *buckets; /* newest first, every bucket of the range (zeros too) */
    size_t n_buckets;
};
/* Weekly buckets are ISO weeks (Monday..Sunday), monthly buckets calendar
 * months, both clipped to [start_day, end_day]. Errors:
 * BGR_EINVALID_PARAMETER (start after end, range over 3660 days), BGR_EIO.
 * On success release *out with bgr_usage_report_release. */
int bgr_store_usage_range(struct bgr_store *s, const char *account_id, int64_t start_day,
                          int64_t end_day, enum bgr_granularity g, struct bgr_usage_report *out,
                          struct bgr_error *err);
void bgr_usage_report_release(struct bgr_usage_report *r);

/* Date helpers. bgr_day_parse accepts "YYYY-MM-DD" and an ISO 8601 date-time
 * whose date part is that ("2026-02-13T10:00:00Z": the time is ignored);
 * impossible dates (2026-02-30) are BGR_EINVALID_PARAMETER. */
int64_t bgr_day_from_ms(int64_t ms);
int64_t bgr_day_from_ymd(int y, int m, int d);
void bgr_day_to_ymd(int64_t day, int *y, int *m, int *d);
void bgr_day_format(int64_t day, char out[11]); /* "YYYY-MM-DD" */
int bgr_day_parse(const char *s, int64_t *day, struct bgr_error *err);
/* UTC ISO 8601 with seconds, "2026-02-14T22:30:00Z". */
void bgr_time_format(int64_t ms, char out[21]);

/* ---- results (images) ---------------------------------------------------- */
struct bgr_image {
    char id[BGR_ID_MAX]; /* "img_" + 22 base62 (131 bits): the URL is the capability */
    char account_id[BGR_ID_MAX];
    char batch_id[BGR_ID_MAX]; /* "" for a sync request */
    /* The result's key in the results store (src/results): "<id>.<ext>".
     * Rows written before that module hold "results/<id>.<ext>" and are
     * read back as the key. */
    char path[96];
    char format[8]; /* "png", "webp", "jpeg" */
    char ext[8];    /* "png", "webp", "jpg" */
    char mime[40];
    char sha256[65]; /* of the file: strong ETag */
    int width, height, original_width, original_height;
    int64_t size_bytes;
    int64_t processing_ms;
    double credits; /* charged for this result (1; 0.25 for a remove.bg preview) */
    int64_t created_at_ms, expires_at_ms;
    int64_t deleted_at_ms; /* 0 = live */
    double confidence;     /* 0..1 from the pipeline; -1 = not known (older rows) */
    int subject_x, subject_y, subject_w, subject_h; /* output pixels; w 0 = none */
};

/* Fresh random id with the given prefix ("img_", "batch_", "evt_"). */
void bgr_store_new_id(const char *prefix, char out[BGR_ID_MAX]);

/* Commits a result whose object already exists under img->path (written
 * atomically by the caller): checks acct's month credit balance and charges
 * img->credits in the same transaction. Optionally adds a webhook to the
 * outbox in that transaction (wh may be NULL). Errors:
 * BGR_EINSUFFICIENT_CREDITS (nothing written; the caller removes its object),
 * BGR_EUNAUTHORIZED (the account was deleted meanwhile; nothing written),
 * BGR_EIO. */
struct bgr_webhook_new;
int bgr_store_image_add(struct bgr_store *s, const struct bgr_account *acct,
                        const struct bgr_image *img, const struct bgr_webhook_new *wh,
                        struct bgr_error *err);
/* A live result (not deleted, not expired at now_ms). account_id may be
 * NULL (any owner: the result URL is a capability). Errors: BGR_ENOT_FOUND. */
int bgr_store_image_get(struct bgr_store *s, const char *id, const char *account_id, int64_t now_ms,
                        struct bgr_image *out, struct bgr_error *err);
/* Deletes acct's live result: marks it deleted (deleted_at = now), so its
 * URL is dead once this returns. The object is the caller's to remove
 * (then bgr_store_image_purged); until then the sweeper offers it
 * (bgr_store_images_to_purge). Unknown, another account's, already deleted
 * or expired: BGR_ENOT_FOUND. */
int bgr_store_image_delete(struct bgr_store *s, const char *account_id, const char *id,
                           int64_t now_ms, struct bgr_image *out, struct bgr_error *err);
/* Where a listing of results resumes: strictly older than this (created_at,
 * then id, both descending). */
struct bgr_image_cursor {
    int64_t created_at_ms;
    char id[BGR_ID_MAX];
};
/* Lists account_id's live results (not deleted, not expired at now_ms),
 * newest first (created_at, then id, descending), optionally only those of
 * batch_id (NULL or "" = all), starting after *after (NULL = the newest).
 * Fills out[0..*n) with at most max (1..1000) and sets *more when older ones
 * follow. Errors: BGR_EIO. */
int bgr_store_images_list(struct bgr_store *s, const char *account_id, const char *batch_id,
                          const struct bgr_image_cursor *after, int64_t now_ms,
                          struct bgr_image *out, int max, int *n, bool *more,
                          struct bgr_error *err);

/* Records that result id's object is gone (purged_at = now_ms). */
int bgr_store_image_purged(struct bgr_store *s, const char *id, int64_t now_ms,
                           struct bgr_error *err);

/* A result whose object must go: its id and key (bgr_image.path). */
struct bgr_image_ref {
    char id[BGR_ID_MAX];
    char key[96];
};
/* The rule of expiry: results expired at now_ms, and deleted ones, whose
 * objects are not yet recorded gone; at most `limit` (0 = 500). On success
 * *out (caller frees) holds *n of them. The caller removes each object and
 * then calls bgr_store_image_purged. Errors: BGR_EIO. */
int bgr_store_images_to_purge(struct bgr_store *s, int64_t now_ms, int limit,
                              struct bgr_image_ref **out, size_t *n, struct bgr_error *err);
/* The rule of orphans: whether an object named for result id is still
 * needed, i.e. a row exists and is not purged. An object no row owns comes
 * from a commit that never happened (a crash, a refused credit) or a purge
 * whose removal failed; the caller removes it once it is old enough that no
 * commit can still be under way. Errors: BGR_EIO (then keep the object). */
int bgr_store_image_needs_object(struct bgr_store *s, const char *id, bool *needed,
                                 struct bgr_error *err);

/* ---- batches -------------------------------------------------------------- */
enum bgr_item_status {
    BGR_ITEM_QUEUED = 0,
    BGR_ITEM_PROCESSING,
    BGR_ITEM_COMPLETED,
    BGR_ITEM_FAILED,
};
const char *bgr_item_status_name(enum bgr_item_status st); /* "queued", ... */

struct bgr_batch_item_new {
    const char *image_url; /* borrowed; checked by the caller (<= BGR_URL_MAX) */
    struct bgr_output_opts opts;
};

struct bgr_batch {
    char id[BGR_ID_MAX]; /* "batch_" + 22 base62 */
    char account_id[BGR_ID_MAX];
    char webhook_url[BGR_URL_MAX + 1]; /* "" if none */
    /* "queued" (none started), "processing", "completed" (all finished, at
     * least one succeeded) or "failed" (all finished, none succeeded). */
    const char *status; /* static string */
    int total, queued, processing, completed, failed;
    int64_t created_at_ms, finished_at_ms; /* 0 until finished */
};

struct bgr_batch_item {
    int64_t item_id; /* store-wide, stable: what the job queue carries */
    int index;       /* position in the request, 0-based */
    char batch_id[BGR_ID_MAX];
    char account_id[BGR_ID_MAX];
    char image_url[BGR_URL_MAX + 1];
    struct bgr_output_opts opts;
    enum bgr_item_status status;
    int attempts;        /* times a worker started it */
    char error_code[32]; /* API code of a failure, "" otherwise */
    char error_message[256];
    struct bgr_image image; /* the result when completed (image.id "" otherwise) */
    int64_t processing_ms;
    int64_t started_at_ms, finished_at_ms;
};

/* Persists a batch and its 1..n items (all queued) in one transaction, so it
 * is durable before the 202 is sent. Errors: BGR_EBATCH_TOO_LARGE (n == 0 or
 * over max_items), BGR_EIO. *out is the new batch. */
int bgr_store_batch_create(struct bgr_store *s, const char *account_id, const char *webhook_url,
                           const struct bgr_batch_item_new *items, size_t n, size_t max_items,
                           int64_t now_ms, struct bgr_batch *out, struct bgr_error *err);
/* account_id NULL = any owner (jobs); another account's batch: BGR_ENOT_FOUND. */
int bgr_store_batch_get(struct bgr_store *s, const char *batch_id, const char *account_id,
                        struct bgr_batch *out, struct bgr_error *err);
/* All items of a batch in request order; *items (malloc'd array, caller
 * frees with free()) and *n. */
int bgr_store_batch_items(struct bgr_store *s, const char *batch_id, struct bgr_batch_item **items,
                          size_t *n, struct bgr_error *err);
int bgr_store_item_get(struct bgr_store *s, int64_t item_id, struct bgr_batch_item *out,
                       struct bgr_error *err);

/* Crash recovery, called once at server start before workers run: items
 * left "processing" go back to "queued"; then every queued item id, oldest
 * batch first, is written to *ids (malloc'd, caller frees). */
int bgr_store_items_recover(struct bgr_store *s, int64_t **ids, size_t *n, struct bgr_error *err);
/* queued -> processing (attempts + 1). BGR_ENOT_FOUND if the item is not
 * queued (already taken or finished: the caller skips it). */
int bgr_store_item_start(struct bgr_store *s, int64_t item_id, int64_t now_ms,
                         struct bgr_error *err);
/* processing -> completed, in one transaction with the result row (credit
 * check and charge as bgr_store_image_add) and, when this was the batch's
 * last open item, the batch's finish time and (if it has a webhook_url) a
 * batch.completed outbox row whose payload is rendered at delivery, from
 * committed state (struct bgr_webhook.ref = the batch id, payload "").
 * *batch_done (may be NULL) tells whether the batch finished.
 * Errors: BGR_EINSUFFICIENT_CREDITS (nothing written: the caller then
 * fails the item), BGR_ENOT_FOUND (item not processing), BGR_EIO. */
int bgr_store_item_complete(struct bgr_store *s, int64_t item_id, const struct bgr_account *acct,
                            const struct bgr_image *img, int64_t now_ms, bool *batch_done,
                            struct bgr_error *err);
/* processing -> failed with an API error code and message; the batch
 * finishes as above when this was its last open item. */
int bgr_store_item_fail(struct bgr_store *s, int64_t item_id, const char *code, const char *msg,
                        int64_t now_ms, bool *batch_done, struct bgr_error *err);
/* Mean processing_ms of the last `n` results (sync and batch); 0 if none. */
int bgr_store_recent_processing_ms(struct bgr_store *s, int n, int64_t *mean_ms,
                                   struct bgr_error *err);

/* ---- the shared job queue (PostgreSQL; queue.c) ------------------------------
 * Synchronous requests from API nodes without workers, and batch items,
 * claimed by workers anywhere under renewable leases. SQLite stores answer
 * BGR_EINVALID_PARAMETER: one process needs no queue in a database. */
enum { BGR_JOB_QUEUED = 0, BGR_JOB_RUNNING = 1, BGR_JOB_DONE = 2, BGR_JOB_FAILED = 3 };
struct bgr_job_new {
    const char *account_id;
    const char *opts;        /* bgr_output_opts_to_text */
    const char *render;      /* "" or the name of a render the workers know */
    const char *render_spec; /* that render's options, serialised */
    const void *input;       /* the image (borrowed), or */
    size_t input_len;
    const char *input_key; /* the result storage's object holding it (NULL: input) */
    const void *extra;     /* a render's second input (NULL = none) */
    size_t extra_len;
    const char *webhook_url; /* NULL = none */
    const char *image_url;   /* for the image.failed payload only */
    double credits;          /* charged for the result; 0 = 1 */
};
/* A claimed job (strings and buffers owned: bgr_job_release). */
struct bgr_job {
    int64_t id; /* sync_jobs id, or the batch item's id */
    bool is_item;
    int64_t item_id;
    int attempts; /* this claim included */
    char account_id[BGR_ID_MAX];
    char *opts, *render, *render_spec, *webhook_url, *image_url;
    char input_key[80]; /* "" or where the input is (bgr_job_new.input_key; BGR_RESULTS_KEY_MAX) */
    void *input, *extra;
    size_t input_len, extra_len;
    double credits;
    int64_t created_at_ms, claimed_at_ms; /* enqueued (by the API node's clock), claimed */
};
void bgr_job_release(struct bgr_job *j);
struct bgr_job_state {
    int state; /* BGR_JOB_* */
    int attempts;
    int64_t claimed_at_ms; /* the last claim (0: never claimed) */
    char image_id[BGR_ID_MAX];
    char error_code[64];
    char error_message[512];
    char outcome[64]; /* a render's own error code (remove.bg's) */
};
/* Adds a sync job and wakes a worker (NOTIFY bgr_jobs). */
int bgr_store_job_enqueue(struct bgr_store *s, const struct bgr_job_new *j, int64_t now_ms,
                          int64_t *id, struct bgr_error *err);
/* Claims the oldest ready job, leased to worker until now_ms + lease_ms:
 * (if sync) sync jobs first, then (if items) batch items, fairly between accounts
 * and at most items_per_account (0: no cap) in work per account.
 * BGR_ENOT_FOUND when there is none. */
int bgr_store_job_claim(struct bgr_store *s, const char *worker, int64_t now_ms, int64_t lease_ms,
                        int items_per_account, bool sync, bool items, struct bgr_job *out,
                        struct bgr_error *err);
/* Fails a sync job that is queued or running (the client was answered at
 * the job's ceiling): its worker will commit nothing. BGR_ENOT_FOUND if it
 * finished already. */
int bgr_store_job_abandon(struct bgr_store *s, int64_t id, const char *code, const char *msg,
                          int64_t now_ms, struct bgr_error *err);
/* Extends the lease of every job worker holds to until_ms. */
int bgr_store_job_renew(struct bgr_store *s, const char *worker, int64_t until_ms,
                        struct bgr_error *err);
/* Sync job done: the result row (the account still existing, the credit
 * check and charge, the webhook's outbox row: as bgr_store_image_add) in the transaction that
 * marks the job done and notifies bgr_done. BGR_ENOT_FOUND: the job is no
 * longer worker's (nothing written). */
int bgr_store_job_complete(struct bgr_store *s, int64_t id, const char *worker,
                           const struct bgr_account *acct, const struct bgr_image *img,
                           const struct bgr_webhook_new *wh, struct bgr_error *err);
/* Sync job failed with an API error code and message (outcome: a render's
 * own code, or NULL). */
int bgr_store_job_fail(struct bgr_store *s, int64_t id, const char *worker, const char *code,
                       const char *msg, const char *outcome, int64_t now_ms, struct bgr_error *err);
int bgr_store_job_state(struct bgr_store *s, int64_t id, struct bgr_job_state *out,
                        struct bgr_error *err);
/* Deletes a sync job (only_queued: only if no worker took it yet, else
 * BGR_ENOT_FOUND). */
int bgr_store_job_forget(struct bgr_store *s, int64_t id, bool only_queued, struct bgr_error *err);
/* Deletes finished sync jobs older than older_than_ms that no API node
 * came back for. */
int bgr_store_job_sweep(struct bgr_store *s, int64_t older_than_ms, int *n_removed,
                        struct bgr_error *err);
/* The names of the workers holding jobs now (owned: free each and the
 * array), and the expiry of every lease one of them holds (a worker known
 * to be dead: its jobs are ready at once, and idle workers are woken). */
int bgr_store_job_workers(struct bgr_store *s, char ***names, size_t *n, struct bgr_error *err);
int bgr_store_job_expire_worker(struct bgr_store *s, const char *worker, struct bgr_error *err);
/* Jobs ready to claim now (sync, batch items). */
int bgr_store_queue_depth(struct bgr_store *s, int64_t now_ms, int64_t *sync_ready,
                          int64_t *items_ready, struct bgr_error *err);

/* One node at a time (shared store): tries to take the named exclusive
 * lock (a PostgreSQL advisory lock on a connection of its own, so a node
 * that dies lets go). *lock is NULL when another node holds it. SQLite has
 * one server: always granted. Release with bgr_store_exclusive_release. */
struct bgr_store_exclusive;
int bgr_store_exclusive_try(struct bgr_store *s, const char *name,
                            struct bgr_store_exclusive **lock, struct bgr_error *err);
void bgr_store_exclusive_release(struct bgr_store_exclusive *lock); /* accepts NULL */

/* Notifications: a connection of its own that LISTENs on channel
 * ("bgr_jobs": work was added; "bgr_done": payload = a finished sync job's
 * id). wait returns 1 with the payload (or "" after a reconnect, when
 * notifications may have been missed: re-read the state), 0 on timeout,
 * -1 while the database is away (having waited timeout_ms). One thread
 * uses a listener. */
struct bgr_store_listener;
int bgr_store_listener_open(struct bgr_store *s, const char *channel,
                            struct bgr_store_listener **out, struct bgr_error *err);
int bgr_store_listener_wait(struct bgr_store_listener *l, int timeout_ms, char *payload, size_t n);
void bgr_store_listener_close(struct bgr_store_listener *l); /* accepts NULL */

/* ---- webhook outbox --------------------------------------------------------
 * Rows are added in the same transaction as the state they report, then
 * delivered (and retried) by src/jobs. A restart loses none. */
enum bgr_webhook_status { BGR_WH_PENDING = 0, BGR_WH_DELIVERED, BGR_WH_FAILED };

struct bgr_webhook_new {
    const char *url;      /* target, checked by net at delivery */
    const char *event;    /* "image.completed", "image.failed", "batch.completed" */
    const char *payload;  /* the full JSON body {"event","created_at","data"} */
    const char *event_id; /* "evt_..." (the idempotency key); NULL = generate */
    const char *ref;      /* NULL, or what a late-rendered payload is about */
};

struct bgr_webhook {
    int64_t row_id;
    char event_id[BGR_ID_MAX];
    char ref[BGR_ID_MAX];  /* batch.completed: the batch id (payload rendered late) */
    int64_t created_at_ms; /* when the event happened */
    char account_id[BGR_ID_MAX];
    char event[32];
    char *url;     /* malloc'd, freed by bgr_webhook_release */
    char *payload; /* malloc'd */
    int attempts;
    int64_t next_attempt_ms;
    enum bgr_webhook_status status;
    char last_error[256];
};
void bgr_webhook_release(struct bgr_webhook *w); /* frees url and payload */

/* Adds a pending webhook due now. */
int bgr_store_outbox_add(struct bgr_store *s, const char *account_id,
                         const struct bgr_webhook_new *wh, int64_t now_ms, struct bgr_error *err);
/* Up to max pending webhooks due at now_ms, oldest due first: *out
 * (malloc'd array; release each then free the array), *n. */
int bgr_store_outbox_due(struct bgr_store *s, int64_t now_ms, size_t max, struct bgr_webhook **out,
                         size_t *n, struct bgr_error *err);
/* Records an attempt: delivered, or failed with next_attempt_ms (> 0:
 * pending again then; 0: given up, status failed). */
int bgr_store_outbox_result(struct bgr_store *s, int64_t row_id, bool delivered,
                            int64_t next_attempt_ms, const char *error, struct bgr_error *err);
int bgr_store_outbox_get(struct bgr_store *s, const char *event_id, struct bgr_webhook *out,
                         struct bgr_error *err);
/* Stores the payload of a row added with an empty one (rendered late), so
 * every retry sends the same bytes. */
int bgr_store_outbox_set_payload(struct bgr_store *s, int64_t row_id, const char *payload,
                                 struct bgr_error *err);
/* Earliest next_attempt_ms of a pending webhook; 0 if none. */
/* Gives back rows read by bgr_store_outbox_due that will not be attempted
 * now (their destination busy): due again at now_ms, for any node. */
int bgr_store_outbox_unclaim(struct bgr_store *s, const int64_t *row_ids, size_t n, int64_t now_ms,
                             struct bgr_error *err);
int bgr_store_outbox_next_due(struct bgr_store *s, int64_t *next_ms, struct bgr_error *err);

/* ---- moving a SQLite store to PostgreSQL (copy.c) ------------------------
 * `bgremover store copy`: every table of the SQLite store in data_dir into
 * the empty PostgreSQL store at url (created there if the database holds no
 * tables), ids kept; then the numbers below are compared and the target is
 * committed only if they match, so a failed copy leaves it empty. The
 * source's server.lock is taken (no server may run on it) and its database
 * held in one transaction (admin writes meanwhile wait, then fail). */
#define BGR_STORE_COPY_TABLES 11
/* The numbers a copy must carry over exactly, of one side. */
struct bgr_store_copy_counts {
    int64_t rows[BGR_STORE_COPY_TABLES]; /* per table, bgr_store_copy_table_name(i) */
    double credits;                      /* SUM(images.credits) */
    int64_t requests;                    /* SUM(usage_days.n) */
    int64_t daily;                       /* SUM(daily_counts.n) */
    int64_t granted;                     /* SUM(credit_grants.amount) */
    int64_t keys_active, keys_revoked;
    int64_t live_images; /* result rows not purged: their objects are needed */
    int64_t items[4];    /* batch items by enum bgr_item_status; processing counts as queued */
};
struct bgr_store_copy_report {
    struct bgr_store_copy_counts src, dst;
    int64_t items_requeued; /* batch items left processing, copied as queued */
    int64_t objects;        /* result objects offered to opts->object */
};
struct bgr_store_copy_opts {
    /* NULL, or called once per live result object (a row not purged: key,
     * its MIME type, the row's size and sha256 hex) before any row is
     * written; a non-zero
     * return (a negative enum bgr_err, detail in err) stops the copy with
     * the target left empty. The store never touches objects itself. */
    int (*object)(void *ctx, const char *key, const char *mime, int64_t size_bytes,
                  const char *sha256, struct bgr_error *err);
    void *object_ctx;
    /* NULL, or one line of progress (no newline). */
    void (*progress)(void *ctx, const char *line);
    void *progress_ctx;
};
const char *bgr_store_copy_table_name(int i); /* "accounts", ... */
/* opts may be NULL. Errors: BGR_EUSAGE (url is not postgresql://...),
 * BGR_ENOT_FOUND (no store in data_dir; a database holding other tables),
 * BGR_EINVALID_PARAMETER (the target holds rows: the message names the
 * tables), BGR_EIO (server.lock held, a database error, or a mismatch: the
 * message gives the numbers of both sides), BGR_ESERVICE_BUSY. *out is
 * written on success. */
int bgr_store_copy(const char *data_dir, const char *url, const struct bgr_store_copy_opts *opts,
                   struct bgr_store_copy_report *out, struct bgr_error *err);
/* Compares the same numbers again (`bgremover store verify`), e.g. before
 * the new servers start: BGR_EIO with the differences on a mismatch. *out
 * (may be NULL) gets the numbers also then. */
int bgr_store_copy_verify(const char *data_dir, const char *url, struct bgr_store_copy_report *out,
                          struct bgr_error *err);

#endif
