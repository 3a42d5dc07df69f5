/*
 * store.c - opening the store: the data directory, the SQLite connection
 * pool, schema migrations, plans; plus the small shared helpers (ids, dates,
 * statement wrappers). Accounts and keys live in accounts.c, limits and usage
 * in usage.c, results in images.c, batches in batches.c, the outbox in
 * outbox.c.
 *
 * Schema versions are applied in order, each in its own transaction, and
 * PRAGMA user_version records the last one applied; a database written by a
 * newer bgremover (higher user_version) is refused rather than guessed at.
 */
#define _GNU_SOURCE
#include "store/store_int.h"

#include <sqlite3.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Migration i brings the schema from version i to i + 1. Append only: never
 * edit a shipped entry (existing databases have run it). */
static const char *const migrations[] = {
    /* 1: accounts, keys, limits, usage, results */
    "CREATE TABLE accounts(id TEXT PRIMARY KEY, email TEXT NOT NULL, plan TEXT NOT NULL,"
    " webhook_secret TEXT NOT NULL, created_at INTEGER NOT NULL);"
    "CREATE TABLE api_keys(hash BLOB PRIMARY KEY, prefix TEXT NOT NULL,"
    " account_id TEXT NOT NULL REFERENCES accounts(id), created_at INTEGER NOT NULL,"
    " last_used_at INTEGER NOT NULL DEFAULT 0, revoked_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX api_keys_prefix ON api_keys(prefix);"
    "CREATE INDEX api_keys_account ON api_keys(account_id, created_at);"
    "CREATE TABLE daily_counts(account_id TEXT NOT NULL, day INTEGER NOT NULL,"
    " n INTEGER NOT NULL, PRIMARY KEY(account_id, day)) WITHOUT ROWID;"
    "CREATE TABLE usage(id INTEGER PRIMARY KEY, account_id TEXT NOT NULL, ts INTEGER NOT NULL,"
    " day INTEGER NOT NULL, route TEXT NOT NULL, status INTEGER NOT NULL,"
    " duration_ms INTEGER NOT NULL);"
    "CREATE INDEX usage_account_day ON usage(account_id, day);"
    "CREATE TABLE images(id TEXT PRIMARY KEY, account_id TEXT NOT NULL,"
    " batch_id TEXT NOT NULL DEFAULT '', path TEXT NOT NULL, format TEXT NOT NULL,"
    " ext TEXT NOT NULL, mime TEXT NOT NULL, sha256 TEXT NOT NULL, width INTEGER NOT NULL,"
    " height INTEGER NOT NULL, orig_width INTEGER NOT NULL, orig_height INTEGER NOT NULL,"
    " size_bytes INTEGER NOT NULL, processing_ms INTEGER NOT NULL, credits INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL, day INTEGER NOT NULL, expires_at INTEGER NOT NULL,"
    " deleted_at INTEGER NOT NULL DEFAULT 0, purged_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX images_account_day ON images(account_id, day);"
    "CREATE INDEX images_sweep ON images(purged_at, expires_at);"
    "CREATE INDEX images_created ON images(created_at);",
    /* 2: batches and the webhook outbox */
    "CREATE TABLE batches(id TEXT PRIMARY KEY, account_id TEXT NOT NULL,"
    " webhook_url TEXT NOT NULL DEFAULT '', total INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL, finished_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE batch_items(id INTEGER PRIMARY KEY, batch_id TEXT NOT NULL"
    " REFERENCES batches(id), idx INTEGER NOT NULL, image_url TEXT NOT NULL,"
    " format INTEGER NOT NULL, quality INTEGER NOT NULL, has_bg INTEGER NOT NULL,"
    " bg INTEGER NOT NULL, max_res INTEGER NOT NULL, crop INTEGER NOT NULL,"
    " mask_only INTEGER NOT NULL, status INTEGER NOT NULL DEFAULT 0,"
    " attempts INTEGER NOT NULL DEFAULT 0, error_code TEXT NOT NULL DEFAULT '',"
    " error_message TEXT NOT NULL DEFAULT '', image_id TEXT NOT NULL DEFAULT '',"
    " processing_ms INTEGER NOT NULL DEFAULT 0, started_at INTEGER NOT NULL DEFAULT 0,"
    " finished_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX batch_items_batch ON batch_items(batch_id, idx);"
    "CREATE INDEX batch_items_status ON batch_items(status, id);"
    "CREATE TABLE outbox(id INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE,"
    " ref TEXT NOT NULL DEFAULT '',"
    " account_id TEXT NOT NULL, event TEXT NOT NULL, url TEXT NOT NULL, payload TEXT NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL,"
    " status INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '',"
    " created_at INTEGER NOT NULL);"
    "CREATE INDEX outbox_due ON outbox(status, next_attempt_at);",
    /* 3: usage counted per (account, day) in the same transaction as each
     * usage row, so api_calls and /v1/usage read a few rows instead of
     * counting every request of the month */
    "CREATE TABLE usage_days(account_id TEXT NOT NULL, day INTEGER NOT NULL,"
    " n INTEGER NOT NULL, PRIMARY KEY(account_id, day)) WITHOUT ROWID;"
    "INSERT INTO usage_days(account_id, day, n)"
    " SELECT account_id, day, COUNT(*) FROM usage GROUP BY account_id, day;"
    /* nothing reads usage rows by account and day any more: the index
     * only cost a page write per commit */
    "DROP INDEX usage_account_day;",
    /* 4: a batch item's options as one value (pipeline/opts_text.c), not a
     * column per field: the columns held 7 of 11 fields and every item ran
     * with the other four zeroed. Items already stored keep what they had;
     * the fields that were never stored get today's defaults. */
    "ALTER TABLE batch_items ADD COLUMN opts TEXT NOT NULL DEFAULT '';"
    "UPDATE batch_items SET opts ="
    " 'output_format=' || CASE format WHEN 1 THEN 'webp' WHEN 2 THEN 'jpeg' ELSE 'png' END"
    " || ';output_quality=' || quality"
    " || ';bg_color=' || CASE WHEN has_bg THEN printf('#%08x', bg) ELSE 'none' END"
    " || ';max_resolution=' || CASE max_res WHEN 1 THEN '1080p' WHEN 2 THEN '720p'"
    "    WHEN 3 THEN '480p' ELSE 'original' END"
    " || ';crop=' || CASE WHEN crop THEN 'true' ELSE 'false' END"
    " || ';output_type=' || CASE WHEN mask_only THEN 'mask' ELSE 'cutout' END;"
    "ALTER TABLE batch_items DROP COLUMN format;"
    "ALTER TABLE batch_items DROP COLUMN quality;"
    "ALTER TABLE batch_items DROP COLUMN has_bg;"
    "ALTER TABLE batch_items DROP COLUMN bg;"
    "ALTER TABLE batch_items DROP COLUMN max_res;"
    "ALTER TABLE batch_items DROP COLUMN crop;"
    "ALTER TABLE batch_items DROP COLUMN mask_only;",
    /* 5: per-month credit adjustments by admins (`accounts credits`); month
     * is the first day of the UTC month. No unique index on e-mails:
     * databases from before may hold duplicates (the check is in code). */
    "CREATE TABLE credit_grants(id INTEGER PRIMARY KEY, account_id TEXT NOT NULL,"
    " month INTEGER NOT NULL, amount INTEGER NOT NULL, created_at INTEGER NOT NULL);"
    "CREATE INDEX credit_grants_account ON credit_grants(account_id, month);",
    /* 6: idempotency keys (idem.c): the request's fingerprint and, once it
     * succeeded, its answer, for 24 hours */
    "CREATE TABLE idempotency(account_id TEXT NOT NULL, key TEXT NOT NULL,"
    " fingerprint BLOB NOT NULL, state INTEGER NOT NULL, claimed_at INTEGER NOT NULL,"
    " status INTEGER NOT NULL, content_type TEXT NOT NULL, headers TEXT NOT NULL, body BLOB,"
    " expires_at INTEGER NOT NULL, PRIMARY KEY(account_id, key)) WITHOUT ROWID;"
    "CREATE INDEX idempotency_expiry ON idempotency(expires_at);",
    /* 7: the confidence score and the subject's box of each result
     * (refine=auto, docs/QUALITY.md); older rows read as unknown */
    "ALTER TABLE images ADD COLUMN confidence REAL NOT NULL DEFAULT -1;"
    "ALTER TABLE images ADD COLUMN subject_x INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE images ADD COLUMN subject_y INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE images ADD COLUMN subject_w INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE images ADD COLUMN subject_h INTEGER NOT NULL DEFAULT 0;",
};

int bgr_store_schema_version(void)
{
    return (int)BGR_ARRAY_LEN(migrations);
}

void bgr_plan_defaults(struct bgr_plan out[BGR_PLAN_DEFAULT_COUNT])
{
    const int64_t mb = 1024 * 1024, day = 86400;
    out[0] = (struct bgr_plan){"free", 10, 50, 10 * mb, day, 50};
    out[1] = (struct bgr_plan){"pro", 60, 1000, 25 * mb, 7 * day, 1000};
    out[2] = (struct bgr_plan){"enterprise", 200, BGR_UNLIMITED, 50 * mb, 30 * day, BGR_UNLIMITED};
}

/* ---- helpers ------------------------------------------------------------- */

void bgr_st_copy(char *out, size_t n, const char *in)
{
    size_t l = in ? strlen(in) : 0;
    BGR_ASSERT(n > 0);
    if (l >= n)
        l = n - 1;
    if (l)
        memcpy(out, in, l);
    out[l] = 0;
}

void bgr_st_col_text(struct bgr_db_stmt *st, int i, char *out, size_t n)
{
    bgr_st_copy(out, n, bgr_db_col_text(st, i));
}

int bgr_st_fail(struct bgr_db *db, struct bgr_error *err, const char *what)
{
    if (bgr_db_unavailable(db))
        return bgr_error_set(err, BGR_ESERVICE_BUSY, "store: the database is unavailable (%s): %s",
                             what, bgr_db_errmsg(db));
    return bgr_error_set(err, BGR_EIO, "store: %s: %s", what, bgr_db_errmsg(db));
}

int bgr_st_prepare(struct bgr_db *db, const char *sql, struct bgr_db_stmt **st,
                   struct bgr_error *err)
{
    if (bgr_db_prepare(db, sql, st) != 0) {
        *st = NULL;
        return bgr_st_fail(db, err, "prepare");
    }
    return 0;
}

int bgr_st_prepare_cached(struct bgr_store *s, struct bgr_db *db, const char *sql,
                          struct bgr_db_stmt **st, struct bgr_error *err)
{
    struct bgr_st_conn *c = NULL;
    for (int i = 0; i <= s->pool_size && !c; i++)
        if (s->stmts[i].db == db)
            c = &s->stmts[i];
    BGR_ASSERT(c != NULL); /* a connection of this store */
    for (int i = 0; i < c->n; i++) {
        if (c->sql[i] == sql) {
            *st = c->st[i];
            return 0;
        }
    }
    int rc = bgr_st_prepare(db, sql, st, err);
    if (rc || c->n == BGR_STMT_CACHE)
        return rc; /* a full cache still answers, but the statement is not kept */
    bgr_db_keep(*st);
    c->sql[c->n] = sql;
    c->st[c->n++] = *st;
    return 0;
}

void bgr_st_cached_done(struct bgr_db_stmt *st)
{
    if (!st)
        return;
    bgr_db_reset(st);
}

static const char sql_begin[] = "BEGIN", sql_commit[] = "COMMIT";

/* Steps a kept statement without results. */
static int step_cached(struct bgr_store *s, struct bgr_db *db, const char *sql,
                       struct bgr_error *err)
{
    struct bgr_db_stmt *st = NULL;
    int rc = bgr_st_prepare_cached(s, db, sql, &st, err);
    if (!rc && bgr_db_step(st) != BGR_DB_DONE)
        rc = bgr_st_fail(db, err, sql);
    bgr_st_cached_done(st);
    return rc;
}

int bgr_st_read_begin(struct bgr_store *s, struct bgr_db *db, struct bgr_error *err)
{
    return step_cached(s, db, sql_begin, err);
}

int bgr_st_read_end(struct bgr_store *s, struct bgr_db *db, struct bgr_error *err)
{
    return bgr_db_in_txn(db) ? step_cached(s, db, sql_commit, err) : 0;
}

int bgr_st_query_scalar(struct bgr_db *db, const char *sql, int64_t *i64, double *dbl,
                        struct bgr_error *err)
{
    struct bgr_db_stmt *st = NULL;
    int rc = bgr_st_prepare(db, sql, &st, err);
    if (rc)
        return rc;
    if (bgr_db_step(st) == BGR_DB_ROW) {
        if (i64)
            *i64 = bgr_db_col_int64(st, 0);
        if (dbl)
            *dbl = bgr_db_col_double(st, 0);
    } else {
        rc = bgr_st_fail(db, err, sql);
    }
    bgr_db_finalize(st);
    return rc;
}

int bgr_st_exec(struct bgr_db *db, const char *sql, struct bgr_error *err)
{
    return bgr_db_exec(db, sql) == 0 ? 0 : bgr_st_fail(db, err, "exec");
}

int bgr_st_begin(struct bgr_db *db, struct bgr_error *err)
{
    return db->ops->begin_write(db, NULL) == 0 ? 0 : bgr_st_fail(db, err, "begin");
}

int bgr_st_begin_account(struct bgr_db *db, const char *account_id, struct bgr_error *err)
{
    BGR_ASSERT(account_id != NULL && account_id[0]);
    return db->ops->begin_write(db, account_id) == 0 ? 0 : bgr_st_fail(db, err, "begin");
}

int bgr_st_begin_shared(struct bgr_db *db, struct bgr_error *err)
{
    return db->ops->begin_write(db, "") == 0 ? 0 : bgr_st_fail(db, err, "begin");
}

int bgr_st_commit(struct bgr_db *db, struct bgr_error *err)
{
    return bgr_st_exec(db, "COMMIT", err);
}

void bgr_st_rollback(struct bgr_db *db)
{
    if (bgr_db_in_txn(db))
        (void)bgr_db_exec(db, "ROLLBACK");
}

bool bgr_st_plan_find(const struct bgr_store *s, const char *name, struct bgr_plan *out)
{
    for (size_t i = 0; i < s->n_plans; i++) {
        if (strcmp(s->plans[i].name, name) == 0) {
            *out = s->plans[i];
            return true;
        }
    }
    return false;
}

int bgr_store_plan_get(struct bgr_store *s, const char *name, struct bgr_plan *out,
                       struct bgr_error *err)
{
    if (!name || !bgr_st_plan_find(s, name, out))
        return bgr_error_set(err, BGR_EINVALID_PARAMETER, "unknown plan '%s'", name ? name : "");
    return 0;
}

void bgr_store_new_id(const char *prefix, char out[BGR_ID_MAX])
{
    static const char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    size_t pl = strlen(prefix), i = 0;
    BGR_ASSERT(pl + 22 < BGR_ID_MAX);
    memcpy(out, prefix, pl);
    /* 22 base62 characters = 130.9 bits. Rejection sampling (bytes >= 248
     * are dropped) keeps every character uniform. */
    while (i < 22) {
        uint8_t r[32];
        bgr_random_bytes(r, sizeof(r));
        for (size_t k = 0; k < sizeof(r) && i < 22; k++)
            if (r[k] < 248)
                out[pl + i++] = alphabet[r[k] % 62];
    }
    out[pl + 22] = 0;
}

/* ---- dates (proleptic Gregorian, UTC; days since 1970-01-01) ------------- */

int64_t bgr_day_from_ms(int64_t ms)
{
    int64_t d = ms / 86400000;
    if (ms % 86400000 < 0)
        d--;
    return d;
}

/* Howard Hinnant's days_from_civil algorithm (public domain description). */
int64_t bgr_day_from_ymd(int y, int m, int d)
{
    int64_t yy = (int64_t)y - (m <= 2);
    int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
    int64_t yoe = yy - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void bgr_day_to_ymd(int64_t day, int *y, int *m, int *d)
{
    int64_t z = day + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t dd = doy - (153 * mp + 2) / 5 + 1;
    int64_t mm = mp + (mp < 10 ? 3 : -9);
    *y = (int)(yoe + era * 400 + (mm <= 2));
    *m = (int)mm;
    *d = (int)dd;
}

void bgr_day_format(int64_t day, char out[11])
{
    int y, m, d;
    char tmp[64]; /* roomy: the compiler cannot bound m and d */
    bgr_day_to_ymd(day, &y, &m, &d);
    (void)snprintf(tmp, sizeof(tmp), "%04d-%02d-%02d", y % 10000, m, d);
    bgr_st_copy(out, 11, tmp);
}

void bgr_time_format(int64_t ms, char out[21])
{
    int64_t day = bgr_day_from_ms(ms);
    int64_t sec = ms / 1000 - day * 86400;
    int y, m, d;
    char tmp[96];
    if (sec < 0)
        sec = 0;
    bgr_day_to_ymd(day, &y, &m, &d);
    (void)snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02dZ", y % 10000, m, d,
                   (int)(sec / 3600), (int)(sec / 60 % 60), (int)(sec % 60));
    bgr_st_copy(out, 21, tmp);
}

static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int bgr_day_parse(const char *s, int64_t *day, struct bgr_error *err)
{
    int y, m, d, y2, m2, d2;
    if (!s || strlen(s) < 10 || s[4] != '-' || s[7] != '-' || (s[10] && s[10] != 'T'))
        goto bad;
    y = digits(s, 4);
    m = digits(s + 5, 2);
    d = digits(s + 8, 2);
    if (y < 1970 || m < 1 || m > 12 || d < 1 || d > 31)
        goto bad;
    *day = bgr_day_from_ymd(y, m, d);
    bgr_day_to_ymd(*day, &y2, &m2, &d2); /* round trip rejects 2026-02-30 */
    if (y2 != y || m2 != m || d2 != d)
        return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                             "%04d-%02d-%02d is a well-formed date, but that day does not exist", y,
                             m, d);
    return 0;
bad:
    return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                         "'%.40s' is not an ISO 8601 date such as 2026-02-01 (YYYY-MM-DD)",
                         s ? s : "");
}

void bgr_st_month_range(int64_t day, int64_t *first, int64_t *last)
{
    int y, m, d;
    bgr_day_to_ymd(day, &y, &m, &d);
    *first = bgr_day_from_ymd(y, m, 1);
    *last = (m == 12 ? bgr_day_from_ymd(y + 1, 1, 1) : bgr_day_from_ymd(y, m + 1, 1)) - 1;
}

/* ---- pool ------------------------------------------------------------------ */

struct bgr_db *bgr_st_acquire(struct bgr_store *s)
{
    struct bgr_db *db = NULL;
    pthread_mutex_lock(&s->pool_mu);
    for (;;) {
        for (int i = 0; i < s->pool_size; i++) {
            if (!s->conn_busy[i]) {
                s->conn_busy[i] = true;
                db = s->conns[i];
                break;
            }
        }
        if (db)
            break;
        pthread_cond_wait(&s->pool_cv, &s->pool_mu);
    }
    pthread_mutex_unlock(&s->pool_mu);
    /* A connection the database dropped (a restart, a fail-over) is made
     * anew here; if that fails too, its first statement reports the
     * database unavailable (BGR_ESERVICE_BUSY) and the next borrower tries
     * again. */
    if (bgr_db_unavailable(db))
        __atomic_store_n(&s->unreachable, db->ops->reconnect(db) != 0, __ATOMIC_RELAXED);
    return db;
}

void bgr_st_release(struct bgr_store *s, struct bgr_db *db)
{
    bgr_st_rollback(db); /* a transaction never outlives the call that began it */
    pthread_mutex_lock(&s->pool_mu);
    for (int i = 0; i < s->pool_size; i++)
        if (s->conns[i] == db)
            s->conn_busy[i] = false;
    pthread_cond_signal(&s->pool_cv);
    pthread_mutex_unlock(&s->pool_mu);
}

static int open_conn(struct bgr_store *s, struct bgr_db **out, struct bgr_error *err)
{
    char msg[400];
    int rc = s->kind == BGR_DB_PG ? bgr_db_pg_open(s->db_path, out, msg, sizeof(msg))
                                  : bgr_db_sqlite_open(s->db_path, s->created, s->busy_timeout_ms,
                                                       out, msg, sizeof(msg));
    if (rc == 0)
        return 0;
    if (s->kind == BGR_DB_PG)
        return bgr_error_set(err, BGR_ESERVICE_BUSY, "store: cannot connect to PostgreSQL: %s",
                             msg);
    return bgr_error_set(err, BGR_EIO, "store: %s", msg);
}

static int migrate(struct bgr_db *db, int target, struct bgr_error *err)
{
    struct bgr_db_stmt *st = NULL;
    int rc, version;
    rc = bgr_st_begin(db, err); /* one migrator at a time across processes */
    if (rc)
        return rc;
    rc = bgr_st_prepare(db, "PRAGMA user_version", &st, err);
    if (rc)
        goto out;
    if (bgr_db_step(st) != BGR_DB_ROW) {
        rc = bgr_st_fail(db, err, "read schema version");
        goto out;
    }
    version = bgr_db_col_int(st, 0);
    bgr_db_finalize(st); /* an active statement would lock out DROP INDEX */
    st = NULL;
    if (version > bgr_store_schema_version()) {
        rc = bgr_error_set(err, BGR_EIO,
                           "store: database schema version %d is newer than this program's %d",
                           version, bgr_store_schema_version());
        goto out;
    }
    for (; version < target; version++) {
        char pragma[48];
        rc = bgr_st_exec(db, migrations[version], err);
        if (rc) {
            bgr_error_prefix(err, "migration to version %d", version + 1);
            goto out;
        }
        (void)snprintf(pragma, sizeof(pragma), "PRAGMA user_version=%d", version + 1);
        rc = bgr_st_exec(db, pragma, err);
        if (rc)
            goto out;
    }
    rc = bgr_st_commit(db, err);
out:
    bgr_db_finalize(st);
    if (rc)
        bgr_st_rollback(db);
    return rc;
}

static int check_plans(const struct bgr_plan *p, size_t n, struct bgr_error *err)
{
    if (n == 0 || n > BGR_MAX_PLANS)
        return bgr_error_set(err, BGR_EINVALID_PARAMETER, "1 to %d plans are needed",
                             BGR_MAX_PLANS);
    for (size_t i = 0; i < n; i++) {
        if (!p[i].name[0] || memchr(p[i].name, 0, BGR_PLAN_NAME_MAX) == NULL)
            return bgr_error_set(err, BGR_EINVALID_PARAMETER, "plan %zu has no name", i);
        if (p[i].per_minute < 1 || (p[i].per_day < 1 && p[i].per_day != BGR_UNLIMITED) ||
            p[i].max_bytes < 1 || p[i].retention_s < 1 ||
            (p[i].monthly_credits < 0 && p[i].monthly_credits != BGR_UNLIMITED))
            return bgr_error_set(err, BGR_EINVALID_PARAMETER, "plan %s has an invalid limit",
                                 p[i].name);
    }
    return 0;
}

/* Whether dir is missing or an empty directory (only "." and ".."). */
static bool dir_new_or_empty(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    bool empty = true;
    if (!d)
        return errno == ENOENT;
    while (empty && (de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            empty = false;
    closedir(d);
    return empty;
}

/* Decides whether the open may go on: sets s->created when there is no
 * database yet and opts allow making one, else explains. */
static int check_exists(struct bgr_store *s, enum bgr_store_create mode, struct bgr_error *err)
{
    struct stat sb;
    if (stat(s->db_path, &sb) == 0)
        return 0;
    if (errno != ENOENT)
        return bgr_error_set(err, BGR_EIO, "store: cannot read %s: %s", s->db_path,
                             strerror(errno));
    if (mode == BGR_STORE_MUST_EXIST)
        return bgr_error_set(err, BGR_ENOT_FOUND,
                             "no bgremover store in %s (no bgremover.db there): check --data-dir,"
                             " or create the store with the first `bgremover accounts create`",
                             s->data_dir);
    if (mode == BGR_STORE_IF_EMPTY && !dir_new_or_empty(s->data_dir))
        return bgr_error_set(err, BGR_ENOT_FOUND,
                             "%s holds no bgremover store (no bgremover.db) and is not empty:"
                             " check --data-dir, or pass --init to create a store there",
                             s->data_dir);
    s->created = true;
    return 0;
}

/* SQLite's memory statistics take a process-wide mutex on every
 * allocation, which the server's threads then queue on; nothing reads them.
 * Only possible before SQLite initialises (later it is a harmless no-op). */
static void sqlite_setup(void)
{
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

/* Where the store lives: opts->url (PostgreSQL) or the SQLite file in
 * data_dir; sets kind and db_path. */
static int locate(struct bgr_store *s, const char *data_dir, const char *url, struct bgr_error *err)
{
    if (url && *url) {
        if (!bgr_db_is_pg_url(url))
            return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                                 "store: '%.200s' is not a store URL: give postgresql://... (a"
                                 " libpq URI), or nothing for SQLite in the data directory",
                                 url);
        s->kind = BGR_DB_PG;
        s->db_path = bgr_xstrdup(url);
        return 0;
    }
    s->kind = BGR_DB_SQLITE;
    if (asprintf(&s->db_path, "%s/bgremover.db", data_dir) < 0) {
        s->db_path = NULL;
        return bgr_error_set(err, BGR_ENOMEM, "store: out of memory");
    }
    return 0;
}

int bgr_store_open(const char *data_dir, const struct bgr_store_opts *opts, struct bgr_store **out,
                   struct bgr_error *err)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    struct bgr_store_opts defaults = {0};
    struct bgr_plan def_plans[BGR_PLAN_DEFAULT_COUNT];
    struct bgr_store *s;
    char *results = NULL;
    struct bgr_db *wdb = NULL;
    int rc, target;

    pthread_once(&once, sqlite_setup);
    if (!opts)
        opts = &defaults;
    if (!opts->plans) {
        bgr_plan_defaults(def_plans);
        defaults.plans = def_plans;
        defaults.n_plans = BGR_PLAN_DEFAULT_COUNT;
    }
    rc = check_plans(opts->plans ? opts->plans : defaults.plans,
                     opts->plans ? opts->n_plans : defaults.n_plans, err);
    if (rc)
        return rc;
    target = opts->schema_version > 0 && opts->schema_version < bgr_store_schema_version()
                 ? opts->schema_version
                 : bgr_store_schema_version();

    s = bgr_xcalloc(1, sizeof(*s));
    s->n_plans = opts->plans ? opts->n_plans : defaults.n_plans;
    memcpy(s->plans, opts->plans ? opts->plans : defaults.plans, s->n_plans * sizeof(s->plans[0]));
    s->busy_timeout_ms = opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : 10000;
    s->pool_size = opts->pool_size > 0 ? opts->pool_size : 4;
    s->data_dir = bgr_xstrdup(data_dir);
    pthread_mutex_init(&s->pool_mu, NULL);
    pthread_cond_init(&s->pool_cv, NULL);
    pthread_mutex_init(&s->rate_mu, NULL);
    s->conns = bgr_xcalloc((size_t)s->pool_size, sizeof(struct bgr_db *));
    s->conn_busy = bgr_xcalloc((size_t)s->pool_size, sizeof(*s->conn_busy));
    s->stmts = bgr_xcalloc((size_t)s->pool_size + 1, sizeof(*s->stmts));

    rc = locate(s, data_dir, opts->url, err);
    if (rc)
        goto out;
    if (s->kind == BGR_DB_PG) {
        /* The schema's existence decides, not a file: see store_pg.c. */
        for (int i = 0; i < s->pool_size; i++) {
            rc = open_conn(s, &s->conns[i], err);
            if (rc)
                goto out;
            s->stmts[i].db = s->conns[i];
        }
        rc = bgr_st_pg_migrate(s, s->conns[0], opts->create, err);
        goto out; /* no writer: bgr_st_write runs ops on the pool (commit.c) */
    }
    if (asprintf(&results, "%s/results", data_dir) < 0) {
        results = NULL;
        rc = bgr_error_set(err, BGR_ENOMEM, "store: out of memory");
        goto out;
    }
    rc = check_exists(s, opts->create, err);
    if (rc)
        goto out;
    rc = bgr_mkdir_p(results, err);
    if (rc)
        goto out;
    for (int i = 0; i < s->pool_size; i++) {
        rc = open_conn(s, &s->conns[i], err);
        if (rc)
            goto out;
        s->stmts[i].db = s->conns[i];
    }
    rc = migrate(s->conns[0], target, err);
    if (!rc)
        rc = open_conn(s, &wdb, err);
    if (!rc) {
        bgr_st_writer_init(s, wdb);
        s->stmts[s->pool_size].db = wdb;
    }
out:
    free(results);
    if (rc) {
        bgr_store_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

void bgr_store_close(struct bgr_store *s)
{
    if (!s)
        return;
    struct bgr_db *wdb = bgr_st_writer_release(s); /* NULL when it never started */
    for (int i = 0; s->stmts && i <= s->pool_size; i++)
        for (int k = 0; k < s->stmts[i].n; k++)
            bgr_db_finalize(s->stmts[i].st[k]); /* else sqlite3_close would refuse */
    bgr_db_close(wdb);
    for (int i = 0; s->conns && i < s->pool_size; i++)
        bgr_db_close(s->conns[i]);
    for (int b = 0; b < BGR_RATE_BUCKETS; b++) {
        struct bgr_rate_entry *e = s->rate[b];
        while (e) {
            struct bgr_rate_entry *next = e->next;
            free(e);
            e = next;
        }
    }
    pthread_mutex_destroy(&s->pool_mu);
    pthread_cond_destroy(&s->pool_cv);
    pthread_mutex_destroy(&s->rate_mu);
    free(s->conns);
    free(s->conn_busy);
    free(s->stmts);
    free(s->data_dir);
    free(s->db_path);
    free(s);
}

bool bgr_store_created(const struct bgr_store *s)
{
    return s->created;
}

const char *bgr_store_data_dir(const struct bgr_store *s)
{
    return s->data_dir;
}

bool bgr_store_healthy(const struct bgr_store *s)
{
    return !__atomic_load_n(&s->unreachable, __ATOMIC_RELAXED);
}

bool bgr_store_shared(const struct bgr_store *s)
{
    return s->kind == BGR_DB_PG;
}

void bgr_store_describe(const struct bgr_store *s, char *out, size_t n)
{
    /* postgresql://user:secret@host/db: the password stays out of logs */
    const char *at = strchr(s->db_path, '@'), *scheme = strstr(s->db_path, "://");
    const char *colon = s->kind == BGR_DB_PG && scheme ? strchr(scheme + 3, ':') : NULL;
    if (colon && at && colon < at)
        (void)snprintf(out, n, "%.*s:***%s", (int)(colon - s->db_path), s->db_path, at);
    else
        (void)snprintf(out, n, "%s", s->db_path);
}
