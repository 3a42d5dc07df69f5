/*
 * copy.c - moving a one-box install up: every table of a SQLite store into
 * an empty PostgreSQL store (`bgremover store copy`), and the check that
 * the two agree (`bgremover store verify`).
 *
 * Consistency. The source must not change while it is read: the data
 * directory's server.lock (the flock `serve` holds, jobs.c) is taken, so no
 * server runs on it, and the whole read happens in one write transaction
 * (BEGIN IMMEDIATE), so an admin command that would write meanwhile waits
 * and fails instead of being lost (a key revoked during the copy must not
 * come back to life on the target). The target is written in ONE
 * transaction under the global advisory write lock, verified before its
 * COMMIT: a copy that fails anywhere leaves the target as empty as it was,
 * so it can simply be run again (a half-copied target would be refused as
 * not empty).
 *
 * Streaming. Source rows are stepped one at a time and written as
 * multi-row INSERTs of up to ROWS_PER_STATEMENT rows or STATEMENT_BYTES of
 * SQL, so memory stays flat whatever the row count; one round trip per
 * statement instead of per row is what makes 100k rows take seconds. The
 * values are SQL literals (the seam's statements take at most 32
 * parameters): integers and doubles printed exactly, text with its quotes
 * doubled (standard_conforming_strings is set on for the transaction, so a
 * backslash is just a backslash), blobs as bytea hex.
 *
 * Ids are kept (API-visible ids are text; the integer ids of usage,
 * batch_items, outbox and credit_grants are what the job queue and the
 * outbox carry), and the target's sequences are set past them. Batch items
 * left "processing" by a server that stopped mid-item are copied as
 * "queued", which is what that server's own restart would have done
 * (bgr_store_items_recover): a worker takes them.
 *
 * What it does not do: result objects (the caller copies them through the
 * object callback, src/results; the store never touches objects), and
 * PostgreSQL to SQLite.
 */
#define _GNU_SOURCE
#include "store/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/* Larger VALUES lists cost PostgreSQL more per row: bench/store_copy took
 * 2.9 s for 100k usage rows at 100 rows a statement (and at 30), 4.5 s at
 * 250, 5.7 s at 1000 (PostgreSQL 15, loopback). */
#define ROWS_PER_STATEMENT 100
#define STATEMENT_BYTES (1 << 20) /* flush a statement's SQL past this */
#define PROGRESS_MS 2000          /* at most one progress line per table this often */

/* Column kinds: T text, I integer, D double, B blob, N nullable blob (its
 * NULL flag is the extra last column of the SELECT), S a batch item's status
 * (processing is copied as queued). */
struct copy_table {
    const char *name;
    const char *cols;  /* the INSERT's column list */
    const char *kinds; /* one letter per column of cols */
    const char *order; /* primary key: the source is read in its order */
    const char *extra; /* NULL, or the SELECT's trailing NULL flag of an N column */
};

/* In foreign-key order (api_keys after accounts, batch_items after
 * batches). Index i is report->src.rows[i]. */
static const struct copy_table tables[BGR_STORE_COPY_TABLES] = {
    {"accounts", "id, email, plan, webhook_secret, created_at", "TTTTI", "id", NULL},
    {"api_keys", "hash, prefix, account_id, created_at, last_used_at, revoked_at", "BTTIII", "hash",
     NULL},
    {"credit_grants", "id, account_id, month, amount, created_at", "ITIII", "id", NULL},
    {"daily_counts", "account_id, day, n", "TII", "account_id, day", NULL},
    {"usage", "id, account_id, ts, day, route, status, duration_ms", "ITIITII", "id", NULL},
    {"usage_days", "account_id, day, n", "TII", "account_id, day", NULL},
    {"images",
     "id, account_id, batch_id, path, format, ext, mime, sha256, width, height, orig_width,"
     " orig_height, size_bytes, processing_ms, credits, created_at, day, expires_at, deleted_at,"
     " purged_at, confidence, subject_x, subject_y, subject_w, subject_h",
     "TTTTTTTTIIIIIIDIIIIIDIIII", "id", NULL},
    {"batches", "id, account_id, webhook_url, total, created_at, finished_at", "TTTIII", "id",
     NULL},
    {"batch_items",
     "id, batch_id, idx, image_url, status, attempts, error_code, error_message, image_id,"
     " processing_ms, started_at, finished_at, opts",
     "ITITSITTTIIIT", "id", NULL},
    {"outbox",
     "id, event_id, ref, account_id, event, url, payload, attempts, next_attempt_at, status,"
     " last_error, created_at",
     "ITTTTTTIIITI", "id", NULL},
    {"idempotency",
     "account_id, key, fingerprint, state, claimed_at, status, content_type, headers, body,"
     " expires_at",
     "TTBIIITTNI", "account_id, key", "body IS NULL"},
};

/* Tables with BIGSERIAL ids on PostgreSQL: their sequences continue after
 * the copied ids. */
static const char *const serial_tables[] = {"usage", "credit_grants", "batch_items", "outbox"};

const char *bgr_store_copy_table_name(int i)
{
    BGR_ASSERT(i >= 0 && i < BGR_STORE_COPY_TABLES);
    return tables[i].name;
}

/* ---- small helpers ------------------------------------------------------- */

static int query_i64(struct bgr_db *db, const char *sql, int64_t *out, struct bgr_error *err)
{
    return bgr_st_query_scalar(db, sql, out, NULL, err);
}

static int query_double(struct bgr_db *db, const char *sql, double *out, struct bgr_error *err)
{
    return bgr_st_query_scalar(db, sql, NULL, out, err);
}

static void progress(const struct bgr_store_copy_opts *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void progress(const struct bgr_store_copy_opts *o, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    if (!o || !o->progress)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    o->progress(o->progress_ctx, line);
}

/* ---- the numbers both sides must agree on -------------------------------- */

/* Reads the counts and totals of one store (inside the caller's
 * transaction). Batch items are counted by status with processing folded
 * into queued, as the copy writes them. */
static int read_counts(struct bgr_db *db, struct bgr_store_copy_counts *c, struct bgr_error *err)
{
    char sql[160];
    int rc = 0;
    memset(c, 0, sizeof(*c));
    for (int i = 0; i < BGR_STORE_COPY_TABLES && !rc; i++) {
        (void)snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s", tables[i].name);
        rc = query_i64(db, sql, &c->rows[i], err);
    }
    if (!rc)
        rc = query_double(db, "SELECT COALESCE(SUM(credits), 0) FROM images", &c->credits, err);
    if (!rc)
        rc = query_i64(db, "SELECT COALESCE(SUM(n), 0) FROM usage_days", &c->requests, err);
    if (!rc)
        rc = query_i64(db, "SELECT COALESCE(SUM(n), 0) FROM daily_counts", &c->daily, err);
    if (!rc)
        rc = query_i64(db, "SELECT COALESCE(SUM(amount), 0) FROM credit_grants", &c->granted, err);
    if (!rc)
        rc = query_i64(db, "SELECT COUNT(*) FROM api_keys WHERE revoked_at = 0", &c->keys_active,
                       err);
    if (!rc)
        rc = query_i64(db, "SELECT COUNT(*) FROM api_keys WHERE revoked_at != 0", &c->keys_revoked,
                       err);
    if (!rc)
        rc = query_i64(db, "SELECT COUNT(*) FROM images WHERE purged_at = 0", &c->live_images, err);
    if (!rc)
        rc = query_i64(db, "SELECT COUNT(*) FROM batch_items WHERE status IN (0, 1)",
                       &c->items[BGR_ITEM_QUEUED], err);
    if (!rc)
        rc = query_i64(db, "SELECT COUNT(*) FROM batch_items WHERE status = 2",
                       &c->items[BGR_ITEM_COMPLETED], err);
    if (!rc)
        rc = query_i64(db, "SELECT COUNT(*) FROM batch_items WHERE status = 3",
                       &c->items[BGR_ITEM_FAILED], err);
    return rc;
}

/* Appends "what: source A, target B" to msg for each number that differs;
 * returns how many did. */
static int compare_counts(const struct bgr_store_copy_counts *a,
                          const struct bgr_store_copy_counts *b, char *msg, size_t n)
{
    int bad = 0;
    size_t len = strlen(msg);
#define BGR_CMP_I(label, field)                                                                    \
    do {                                                                                           \
        if (a->field != b->field) {                                                                \
            bad++;                                                                                 \
            if (len < n)                                                                           \
                len += (size_t)snprintf(msg + len, n - len, "%s%s: source %lld, target %lld",      \
                                        bad > 1 ? "; " : "", label, (long long)a->field,           \
                                        (long long)b->field);                                      \
        }                                                                                          \
    } while (0)
    for (int i = 0; i < BGR_STORE_COPY_TABLES; i++)
        BGR_CMP_I(tables[i].name, rows[i]);
    BGR_CMP_I("SUM(usage_days.n)", requests);
    BGR_CMP_I("SUM(daily_counts.n)", daily);
    BGR_CMP_I("SUM(credit_grants.amount)", granted);
    BGR_CMP_I("active api_keys", keys_active);
    BGR_CMP_I("revoked api_keys", keys_revoked);
    BGR_CMP_I("live images", live_images);
    BGR_CMP_I("queued batch_items", items[BGR_ITEM_QUEUED]);
    BGR_CMP_I("completed batch_items", items[BGR_ITEM_COMPLETED]);
    BGR_CMP_I("failed batch_items", items[BGR_ITEM_FAILED]);
#undef BGR_CMP_I
    /* Charges are multiples of 0.25 (exact in binary), so the sums are
     * exact whatever order each engine adds them in. */
    if (a->credits != b->credits) {
        bad++;
        if (len < n)
            (void)snprintf(msg + len, n - len, "%sSUM(images.credits): source %.17g, target %.17g",
                           bad > 1 ? "; " : "", a->credits, b->credits);
    }
    return bad;
}

/* ---- opening both sides -------------------------------------------------- */

struct copy_ctx {
    struct bgr_store *src, *dst;
    struct bgr_db *sdb, *ddb;
    int lock_fd;
    char where[512]; /* the target, password hidden */
};

/* Takes <data_dir>/server.lock as `serve` does (jobs.c), without waiting. */
static int lock_source(struct copy_ctx *c, const char *data_dir, struct bgr_error *err)
{
    char *path = NULL;
    if (asprintf(&path, "%s/server.lock", data_dir) < 0)
        return bgr_error_set(err, BGR_ENOMEM, "store copy: out of memory");
    c->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (c->lock_fd < 0) {
        int rc =
            bgr_error_set(err, BGR_EIO, "store copy: cannot open %s: %s", path, strerror(errno));
        free(path);
        return rc;
    }
    free(path);
    if (flock(c->lock_fd, LOCK_EX | LOCK_NB) != 0)
        return bgr_error_set(err, BGR_EIO,
                             "a bgremover server is using %s (it holds server.lock): stop it"
                             " first, so that nothing changes while the store is copied",
                             data_dir);
    return 0;
}

static void copy_close(struct copy_ctx *c)
{
    /* Releasing rolls back: the source was only read, and an uncommitted
     * copy leaves the target as it was. */
    if (c->sdb)
        bgr_st_release(c->src, c->sdb);
    if (c->ddb)
        bgr_st_release(c->dst, c->ddb);
    bgr_store_close(c->src);
    bgr_store_close(c->dst);
    if (c->lock_fd >= 0)
        close(c->lock_fd); /* releases the flock */
    memset(c, 0, sizeof(*c));
    c->lock_fd = -1;
}

/* Opens the SQLite store in data_dir (it must exist) and the PostgreSQL
 * store at url (created there when the database is empty, create), locks
 * the source and begins a transaction on each. */
static int copy_open(struct copy_ctx *c, const char *data_dir, const char *url, bool create,
                     struct bgr_error *err)
{
    struct bgr_store_opts so = {.pool_size = 1, .create = BGR_STORE_MUST_EXIST};
    struct bgr_store_opts to = {
        .url = url, .pool_size = 1, .create = create ? BGR_STORE_IF_EMPTY : BGR_STORE_MUST_EXIST};
    int rc;
    memset(c, 0, sizeof(*c));
    c->lock_fd = -1;
    if (!url || !bgr_db_is_pg_url(url))
        return bgr_error_set(
            err, BGR_EUSAGE,
            "the target must be a PostgreSQL store (postgresql://...), not '%.200s'",
            url ? url : "");
    rc = bgr_store_open(data_dir, &so, &c->src, err);
    if (rc)
        return rc;
    rc = lock_source(c, data_dir, err);
    if (!rc)
        rc = bgr_store_open(data_dir, &to, &c->dst, err);
    if (rc)
        return rc;
    bgr_store_describe(c->dst, c->where, sizeof(c->where));
    c->sdb = bgr_st_acquire(c->src);
    c->ddb = bgr_st_acquire(c->dst);
    /* Writers of the source wait (busy_timeout) and then fail, rather than
     * change what is being copied. */
    rc = bgr_st_begin(c->sdb, err);
    if (rc) {
        bgr_error_prefix(err, "locking the source store for reading");
        return rc;
    }
    rc = bgr_st_begin(c->ddb, err);
    if (!rc)
        rc = bgr_st_exec(c->ddb,
                         "SET LOCAL standard_conforming_strings = on;"
                         " SET LOCAL client_encoding = 'UTF8'",
                         err);
    return rc;
}

/* ---- writing rows ---------------------------------------------------------- */

static int append_text(struct bgr_buf *b, const char *s, struct bgr_error *err)
{
    int rc = bgr_buf_append(b, "'", 1, err);
    while (!rc && s && *s) {
        const char *q = strchr(s, '\'');
        size_t n = q ? (size_t)(q - s) + 1 : strlen(s);
        rc = bgr_buf_append(b, s, n, err);
        if (!rc && q)
            rc = bgr_buf_append(b, "'", 1, err); /* '' is a quote inside a literal */
        s += n;
    }
    return rc ? rc : bgr_buf_append(b, "'", 1, err);
}

static int append_blob(struct bgr_buf *b, const uint8_t *p, size_t n, struct bgr_error *err)
{
    static const char hex[] = "0123456789abcdef";
    int rc = bgr_buf_reserve(b, 2 * n + 5, err);
    if (rc)
        return rc;
    rc = bgr_buf_append(b, "'\\x", 3, err);
    for (size_t i = 0; i < n && !rc; i++) {
        char two[2] = {hex[p[i] >> 4], hex[p[i] & 15]};
        rc = bgr_buf_append(b, two, 2, err);
    }
    return rc ? rc : bgr_buf_append(b, "'", 1, err);
}

static int append_double(struct bgr_buf *b, double v, struct bgr_error *err)
{
    if (isnan(v))
        return bgr_buf_appendf(b, err, "'NaN'::float8");
    if (isinf(v))
        return bgr_buf_appendf(b, err, "'%sInfinity'::float8", v < 0 ? "-" : "");
    return bgr_buf_appendf(b, err, "%.17g", v); /* round-trips exactly */
}

/* Appends the current source row as "(v1, v2, ...)". */
static int append_row(struct bgr_buf *b, const struct copy_table *t, struct bgr_db_stmt *st,
                      int64_t *requeued, struct bgr_error *err)
{
    int n = (int)strlen(t->kinds), rc = bgr_buf_append(b, "(", 1, err);
    for (int i = 0; i < n && !rc; i++) {
        if (i)
            rc = bgr_buf_append(b, ", ", 2, err);
        if (rc)
            break;
        switch (t->kinds[i]) {
        case 'T':
            rc = append_text(b, bgr_db_col_text(st, i), err);
            break;
        case 'I':
            rc = bgr_buf_appendf(b, err, "%lld", (long long)bgr_db_col_int64(st, i));
            break;
        case 'S': {
            int64_t v = bgr_db_col_int64(st, i);
            if (v == BGR_ITEM_PROCESSING) {
                v = BGR_ITEM_QUEUED;
                (*requeued)++;
            }
            rc = bgr_buf_appendf(b, err, "%lld", (long long)v);
            break;
        }
        case 'D':
            rc = append_double(b, bgr_db_col_double(st, i), err);
            break;
        case 'N': /* NULL when the trailing "IS NULL" column says so */
        case 'B': {
            size_t len = 0;
            const void *p = bgr_db_col_blob(st, i, &len);
            BGR_ASSERT(t->kinds[i] == 'B' || t->extra != NULL);
            if (t->kinds[i] == 'N' && bgr_db_col_int64(st, n))
                rc = bgr_buf_append(b, "NULL", 4, err);
            else /* an empty blob is not NULL: SQLite gives no pointer for it */
                rc = append_blob(b, p, p ? len : 0, err);
            break;
        }
        default:
            BGR_ASSERT(!"unknown column kind");
        }
    }
    return rc ? rc : bgr_buf_append(b, ")", 1, err);
}

/* Sends the INSERT collected in b (if it holds rows) and starts the next. */
static int flush_insert(struct copy_ctx *c, const struct copy_table *t, struct bgr_buf *b,
                        int *rows_in_stmt, struct bgr_error *err)
{
    int rc = 0;
    if (*rows_in_stmt) {
        rc = bgr_buf_append(b, "", 1, err); /* the NUL */
        if (!rc && bgr_db_exec(c->ddb, (const char *)b->data) != 0)
            rc = bgr_error_set(err, BGR_EIO, "store copy: writing %s rows to %s: %s", t->name,
                               c->where, bgr_db_errmsg(c->ddb));
    }
    b->len = 0;
    *rows_in_stmt = 0;
    if (!rc)
        rc = bgr_buf_appendf(b, err, "INSERT INTO %s(%s) VALUES ", t->name, t->cols);
    return rc;
}

static int copy_table(struct copy_ctx *c, const struct copy_table *t, int64_t total,
                      const struct bgr_store_copy_opts *o, int64_t *copied, int64_t *requeued,
                      struct bgr_error *err)
{
    struct bgr_db_stmt *st = NULL;
    struct bgr_buf b;
    char *sql = NULL;
    int rc, rows_in_stmt = 0;
    int64_t n = 0, last = bgr_now_ms();

    bgr_buf_init(&b, 0);
    if (asprintf(&sql, "SELECT %s%s%s FROM %s ORDER BY %s", t->cols, t->extra ? ", " : "",
                 t->extra ? t->extra : "", t->name, t->order) < 0) {
        sql = NULL;
        rc = bgr_error_set(err, BGR_ENOMEM, "store copy: out of memory");
        goto out;
    }
    rc = bgr_st_prepare(c->sdb, sql, &st, err);
    if (!rc)
        rc = flush_insert(c, t, &b, &rows_in_stmt, err);
    while (!rc) {
        int step = bgr_db_step(st);
        if (step == BGR_DB_DONE)
            break;
        if (step != BGR_DB_ROW) {
            rc = bgr_st_fail(c->sdb, err, "reading the source");
            break;
        }
        if (rows_in_stmt)
            rc = bgr_buf_append(&b, ",", 1, err);
        if (!rc)
            rc = append_row(&b, t, st, requeued, err);
        if (rc)
            break;
        rows_in_stmt++;
        n++;
        if (rows_in_stmt >= ROWS_PER_STATEMENT || b.len >= STATEMENT_BYTES) {
            rc = flush_insert(c, t, &b, &rows_in_stmt, err);
            if (!rc && bgr_now_ms() - last >= PROGRESS_MS) {
                last = bgr_now_ms();
                progress(o, "%s: %lld of %lld rows", t->name, (long long)n, (long long)total);
            }
        }
    }
    if (!rc)
        rc = flush_insert(c, t, &b, &rows_in_stmt, err);
    if (!rc)
        progress(o, "%s: %lld copied", t->name, (long long)n);
    *copied = n;
out:
    bgr_db_finalize(st);
    bgr_buf_release(&b);
    free(sql);
    return rc;
}

/* Refuses a target that holds anything: a copy merges nothing. */
static int check_empty(struct copy_ctx *c, struct bgr_error *err)
{
    char sql[128], held[512] = "";
    size_t len = 0;
    int rc = 0;
    for (int i = 0; i <= BGR_STORE_COPY_TABLES && !rc; i++) {
        const char *name = i < BGR_STORE_COPY_TABLES ? tables[i].name : "sync_jobs";
        int64_t rows = 0;
        (void)snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s", name);
        rc = query_i64(c->ddb, sql, &rows, err);
        if (!rc && rows && len < sizeof(held))
            len += (size_t)snprintf(held + len, sizeof(held) - len, "%s%s %lld", len ? ", " : "",
                                    name, (long long)rows);
    }
    if (!rc && len)
        rc = bgr_error_set(err, BGR_EINVALID_PARAMETER,
                           "the target %s is not empty (%s rows): store copy writes only into an"
                           " empty store, it never merges; give a new database",
                           c->where, held);
    return rc;
}

static int set_sequences(struct copy_ctx *c, struct bgr_error *err)
{
    char sql[256];
    int rc = 0;
    for (size_t i = 0; i < BGR_ARRAY_LEN(serial_tables) && !rc; i++) {
        /* is_called false: the next id handed out is MAX(id) + 1 */
        (void)snprintf(sql, sizeof(sql),
                       "SELECT setval(pg_get_serial_sequence('%s', 'id'),"
                       " COALESCE(MAX(id), 0) + 1, false) FROM %s",
                       serial_tables[i], serial_tables[i]);
        rc = bgr_st_exec(c->ddb, sql, err);
    }
    return rc;
}

/* Offers every live result object (a row not purged) to o->object. */
static int offer_objects(struct copy_ctx *c, const struct bgr_store_copy_opts *o,
                         struct bgr_store_copy_report *r, struct bgr_error *err)
{
    struct bgr_db_stmt *st = NULL;
    int rc = bgr_st_prepare(c->sdb,
                            "SELECT path, size_bytes, sha256, mime FROM images WHERE purged_at = 0"
                            " ORDER BY id",
                            &st, err);
    while (!rc) {
        char key[256];
        int step = bgr_db_step(st);
        if (step == BGR_DB_DONE)
            break;
        if (step != BGR_DB_ROW) {
            rc = bgr_st_fail(c->sdb, err, "listing result objects");
            break;
        }
        bgr_st_col_text(st, 0, key, sizeof(key));
        /* Rows written before the results module hold "results/<key>"
         * (see images.c: read_image). */
        if (strncmp(key, "results/", 8) == 0)
            memmove(key, key + 8, strlen(key + 8) + 1);
        rc = o->object(o->object_ctx, key, bgr_db_col_text(st, 3), bgr_db_col_int64(st, 1),
                       bgr_db_col_text(st, 2), err);
        if (!rc)
            r->objects++;
    }
    bgr_db_finalize(st);
    return rc;
}

/* ---- the two verbs --------------------------------------------------------- */

int bgr_store_copy(const char *data_dir, const char *url, const struct bgr_store_copy_opts *o,
                   struct bgr_store_copy_report *out, struct bgr_error *err)
{
    struct bgr_store_copy_report r;
    struct copy_ctx c;
    char msg[BGR_ERROR_MSG_MAX] = "";
    int rc;

    memset(&r, 0, sizeof(r));
    rc = copy_open(&c, data_dir, url, true, err);
    if (!rc)
        rc = check_empty(&c, err);
    if (!rc)
        rc = read_counts(c.sdb, &r.src, err);
    if (rc)
        goto out;
    progress(o, "copying %s/bgremover.db to %s", data_dir, c.where);
    if (o && o->object) {
        progress(o, "result objects: %lld live", (long long)r.src.live_images);
        rc = offer_objects(&c, o, &r, err);
        if (rc)
            goto out;
    }
    for (int i = 0; i < BGR_STORE_COPY_TABLES && !rc; i++) {
        int64_t n = 0;
        rc = copy_table(&c, &tables[i], r.src.rows[i], o, &n, &r.items_requeued, err);
    }
    if (!rc)
        rc = set_sequences(&c, err);
    if (!rc)
        rc = read_counts(c.ddb, &r.dst, err);
    if (rc)
        goto out;
    if (compare_counts(&r.src, &r.dst, msg, sizeof(msg))) {
        rc = bgr_error_set(err, BGR_EIO,
                           "store copy: the target does not match the source (%s); nothing was"
                           " committed",
                           msg);
        goto out;
    }
    rc = bgr_st_commit(c.ddb, err);
    if (!rc)
        progress(o, "verified and committed: counts and totals match");
out:
    copy_close(&c);
    if (!rc && out)
        *out = r;
    return rc;
}

int bgr_store_copy_verify(const char *data_dir, const char *url, struct bgr_store_copy_report *out,
                          struct bgr_error *err)
{
    struct bgr_store_copy_report r;
    struct copy_ctx c;
    char msg[BGR_ERROR_MSG_MAX] = "";
    int rc;

    memset(&r, 0, sizeof(r));
    rc = copy_open(&c, data_dir, url, false, err);
    if (!rc)
        rc = read_counts(c.sdb, &r.src, err);
    if (!rc)
        rc = read_counts(c.ddb, &r.dst, err);
    if (!rc && compare_counts(&r.src, &r.dst, msg, sizeof(msg)))
        rc = bgr_error_set(err, BGR_EIO, "%s does not match %s/bgremover.db: %s", c.where, data_dir,
                           msg);
    copy_close(&c);
    if (out)
        *out = r; /* the numbers, also on a mismatch */
    return rc;
}
