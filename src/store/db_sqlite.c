/*
 * db_sqlite.c - the SQLite engine behind db.h: a thin veneer over the
 * sqlite3 statement API, which db.h mirrors. The embedded default: one
 * file in the data directory, WAL mode.
 */
#include "store/db.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sq_db {
    struct bgr_db base;
    sqlite3 *h;
};
struct sq_stmt {
    struct bgr_db_stmt base;
    sqlite3_stmt *h;
};

static sqlite3 *H(struct bgr_db *db)
{
    return ((struct sq_db *)db)->h;
}
static sqlite3_stmt *S(struct bgr_db_stmt *st)
{
    return ((struct sq_stmt *)st)->h;
}

static int sq_prepare(struct bgr_db *db, const char *sql, struct bgr_db_stmt **out)
{
    sqlite3_stmt *h = NULL;
    *out = NULL;
    if (sqlite3_prepare_v2(H(db), sql, -1, &h, NULL) != SQLITE_OK)
        return -1;
    struct sq_stmt *st = bgr_xcalloc(1, sizeof(*st));
    st->base.db = db;
    st->h = h;
    *out = &st->base;
    return 0;
}

static void sq_bind_text(struct bgr_db_stmt *st, int i, const char *v)
{
    sqlite3_bind_text(S(st), i, v, -1, SQLITE_STATIC);
}
static void sq_bind_int64(struct bgr_db_stmt *st, int i, int64_t v)
{
    sqlite3_bind_int64(S(st), i, v);
}
static void sq_bind_double(struct bgr_db_stmt *st, int i, double v)
{
    sqlite3_bind_double(S(st), i, v);
}
static void sq_bind_blob(struct bgr_db_stmt *st, int i, const void *v, size_t n)
{
    sqlite3_bind_blob64(S(st), i, v ? v : "", n, SQLITE_STATIC);
}

static int sq_step(struct bgr_db_stmt *st)
{
    int rc = sqlite3_step(S(st));
    return rc == SQLITE_ROW ? BGR_DB_ROW : rc == SQLITE_DONE ? BGR_DB_DONE : -1;
}

static const char *sq_col_text(struct bgr_db_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(S(st), i);
}
static int64_t sq_col_int64(struct bgr_db_stmt *st, int i)
{
    return sqlite3_column_int64(S(st), i);
}
static double sq_col_double(struct bgr_db_stmt *st, int i)
{
    return sqlite3_column_double(S(st), i);
}
static const void *sq_col_blob(struct bgr_db_stmt *st, int i, size_t *n)
{
    const void *p = sqlite3_column_blob(S(st), i);
    *n = (size_t)sqlite3_column_bytes(S(st), i); /* after the blob, as SQLite asks */
    return p;
}

static void sq_reset(struct bgr_db_stmt *st)
{
    sqlite3_reset(S(st));
    sqlite3_clear_bindings(S(st));
}
static void sq_finalize(struct bgr_db_stmt *st)
{
    sqlite3_finalize(S(st));
    free(st);
}

static int sq_exec(struct bgr_db *db, const char *sql)
{
    return sqlite3_exec(H(db), sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

/* The database's one write lock serialises every writer, across
 * processes too, so there is nothing finer to take per account. */
static int sq_begin_write(struct bgr_db *db, const char *account_id)
{
    (void)account_id;
    return sq_exec(db, "BEGIN IMMEDIATE");
}

static int64_t sq_changes(struct bgr_db *db)
{
    return sqlite3_changes(H(db));
}
static bool sq_in_txn(struct bgr_db *db)
{
    return !sqlite3_get_autocommit(H(db));
}
static const char *sq_errmsg(struct bgr_db *db)
{
    return sqlite3_errmsg(H(db));
}
static bool sq_unavailable(struct bgr_db *db)
{
    (void)db;
    return false; /* a file is never "unreachable": its errors are I/O errors */
}
static int sq_reconnect(struct bgr_db *db)
{
    (void)db;
    return 0;
}
static void sq_close(struct bgr_db *db)
{
    sqlite3_close(H(db));
    free(db);
}

static void sq_keep(struct bgr_db_stmt *st)
{
    (void)st; /* a prepared sqlite3_stmt is kept already */
}

static const struct bgr_db_ops sq_ops = {
    .prepare = sq_prepare,
    .bind_text = sq_bind_text,
    .bind_int64 = sq_bind_int64,
    .bind_double = sq_bind_double,
    .bind_blob = sq_bind_blob,
    .step = sq_step,
    .col_text = sq_col_text,
    .col_int64 = sq_col_int64,
    .col_double = sq_col_double,
    .col_blob = sq_col_blob,
    .reset = sq_reset,
    .finalize = sq_finalize,
    .exec = sq_exec,
    .begin_write = sq_begin_write,
    .changes = sq_changes,
    .in_txn = sq_in_txn,
    .errmsg = sq_errmsg,
    .unavailable = sq_unavailable,
    .reconnect = sq_reconnect,
    .close = sq_close,
    .keep = sq_keep,
};

int bgr_db_sqlite_open(const char *path, bool create, int busy_timeout_ms, struct bgr_db **out,
                       char *msg, size_t msg_len)
{
    sqlite3 *h = NULL;
    *out = NULL;
    /* Only an open that decided to create the store may (a database
     * deleted meanwhile is an error, not a new empty store). */
    int rc = sqlite3_open_v2(
        path, &h, SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX,
        NULL);
    if (rc != SQLITE_OK) {
        (void)snprintf(msg, msg_len, "cannot open %s: %s", path,
                       h ? sqlite3_errmsg(h) : "out of memory");
        sqlite3_close(h);
        return -1;
    }
    sqlite3_busy_timeout(h, busy_timeout_ms);
    /* WAL: readers never block the writer; NORMAL sync is durable across a
     * process crash (kill -9), the case the server must survive. */
    if (sqlite3_exec(h,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                     " PRAGMA foreign_keys=ON;",
                     NULL, NULL, NULL) != SQLITE_OK) {
        (void)snprintf(msg, msg_len, "%s: %s", path, sqlite3_errmsg(h));
        sqlite3_close(h);
        return -1;
    }
    struct sq_db *db = bgr_xcalloc(1, sizeof(*db));
    db->base.ops = &sq_ops;
    db->base.kind = BGR_DB_SQLITE;
    db->h = h;
    *out = &db->base;
    return 0;
}

struct sqlite3 *bgr_db_sqlite_handle(struct bgr_db *db)
{
    return db && db->kind == BGR_DB_SQLITE ? H(db) : NULL;
}
