/*
 * db.h - the store's database seam: one small statement interface that the
 * store's business rules (accounts.c, usage.c, images.c, batches.c, ...)
 * are written against once, and two engines behind it: SQLite (db_sqlite.c,
 * the embedded default) and PostgreSQL (db_pg.c, scale-out). Internal to
 * the store module.
 *
 * The interface is SQLite's statement model (prepare, bind, step, read
 * columns, reset), because the store was written in it and because it maps
 * onto libpq directly: a PostgreSQL statement executes at its first step
 * and steps through the rows of its result.
 *
 * SQL text is written once, in the dialect both engines accept: `?` and
 * `?N` placeholders (the PostgreSQL backend rewrites them to `$N`), INSERT
 * ... ON CONFLICT, CASE instead of boolean arithmetic, COALESCE, no
 * engine-specific functions. Schemas and migrations are per engine
 * (store.c, store_pg.c): column types differ, the tables do not.
 *
 * Locking is the backend's business, asked for by intent: begin_write
 * takes what makes a read-then-write transaction exact against every other
 * writer (SQLite: the database's write lock; PostgreSQL: advisory locks,
 * one global, or one per account under a shared global one).
 *
 * Thread-safety: a connection and its statements are used by one thread at
 * a time (the store's pool hands them out).
 */
#ifndef BGR_STORE_DB_H
#define BGR_STORE_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#define BGR_DB_DONE 0 /* step: no (more) rows */
#define BGR_DB_ROW 1  /* step: a row is available */
/* step and exec return -1 on failure; bgr_db_errmsg says why. */

enum bgr_db_kind { BGR_DB_SQLITE, BGR_DB_PG };

struct bgr_db;
struct bgr_db_stmt;

struct bgr_db_ops {
    int (*prepare)(struct bgr_db *db, const char *sql, struct bgr_db_stmt **st);
    /* Bound values are borrowed until the statement's next reset or
     * finalize (text and blobs are not copied). Indices start at 1. */
    void (*bind_text)(struct bgr_db_stmt *st, int i, const char *v);
    void (*bind_int64)(struct bgr_db_stmt *st, int i, int64_t v);
    void (*bind_double)(struct bgr_db_stmt *st, int i, double v);
    void (*bind_blob)(struct bgr_db_stmt *st, int i, const void *v, size_t n);
    int (*step)(struct bgr_db_stmt *st);
    /* Columns of the current row (from 0). text: NULL for SQL NULL; valid
     * until the next step, reset or finalize. */
    const char *(*col_text)(struct bgr_db_stmt *st, int i);
    int64_t (*col_int64)(struct bgr_db_stmt *st, int i);
    double (*col_double)(struct bgr_db_stmt *st, int i);
    const void *(*col_blob)(struct bgr_db_stmt *st, int i, size_t *n);
    void (*reset)(struct bgr_db_stmt *st); /* also clears the bindings */
    void (*finalize)(struct bgr_db_stmt *st);
    int (*exec)(struct bgr_db *db, const char *sql); /* one or more statements, no results */
    /* account_id: NULL = exclude every writer; "" = exclude only those
     * (NULL), for a transaction of statements that are each atomic; an id
     * = exclude that account's writers and those. */
    int (*begin_write)(struct bgr_db *db, const char *account_id);
    int64_t (*changes)(struct bgr_db *db); /* rows changed by the last statement */
    bool (*in_txn)(struct bgr_db *db);
    const char *(*errmsg)(struct bgr_db *db);
    /* The last failure was the database being unreachable (connection
     * refused or lost, server shutting down), not the statement. */
    bool (*unavailable)(struct bgr_db *db);
    /* Makes a connection usable again after it was lost; 0 or -1. */
    int (*reconnect)(struct bgr_db *db);
    void (*close)(struct bgr_db *db);
    /* The statement will run many times on this connection (the store's
     * statement cache): PostgreSQL then prepares it on the server once,
     * saving the parse and plan of every later run. */
    void (*keep)(struct bgr_db_stmt *st);
};

/* The common head of every backend's connection and statement. */
struct bgr_db {
    const struct bgr_db_ops *ops;
    enum bgr_db_kind kind;
};
struct bgr_db_stmt {
    struct bgr_db *db;
};

/* Opens a connection. url NULL: SQLite file path (create: may create the
 * file); else a libpq URI. On failure *out is NULL and msg holds why. */
int bgr_db_sqlite_open(const char *path, bool create, int busy_timeout_ms, struct bgr_db **out,
                       char *msg, size_t msg_len);
int bgr_db_pg_open(const char *url, struct bgr_db **out, char *msg, size_t msg_len);
/* Whether url names a PostgreSQL database (postgresql:// or postgres://). */
bool bgr_db_is_pg_url(const char *url);
/* PostgreSQL notifications, on a connection kept for them: LISTEN on
 * channel (lower-case letters and '_'), then wait up to timeout_ms for one
 * (1, its payload copied into payload; 0 none came; -1 the connection was
 * lost: reconnect and LISTEN again). */
int bgr_db_pg_listen(struct bgr_db *db, const char *channel);
int bgr_db_pg_wait(struct bgr_db *db, int timeout_ms, char *payload, size_t n);
/* The SQLite handle of a SQLite connection (its WAL hook and checkpoints,
 * commit.c); NULL for other engines. */
struct sqlite3 *bgr_db_sqlite_handle(struct bgr_db *db);

static inline int bgr_db_prepare(struct bgr_db *db, const char *sql, struct bgr_db_stmt **st)
{
    return db->ops->prepare(db, sql, st);
}
static inline void bgr_db_bind_text(struct bgr_db_stmt *st, int i, const char *v)
{
    st->db->ops->bind_text(st, i, v);
}
static inline void bgr_db_bind_int64(struct bgr_db_stmt *st, int i, int64_t v)
{
    st->db->ops->bind_int64(st, i, v);
}
static inline void bgr_db_bind_double(struct bgr_db_stmt *st, int i, double v)
{
    st->db->ops->bind_double(st, i, v);
}
static inline void bgr_db_bind_blob(struct bgr_db_stmt *st, int i, const void *v, size_t n)
{
    st->db->ops->bind_blob(st, i, v, n);
}
static inline int bgr_db_step(struct bgr_db_stmt *st)
{
    return st->db->ops->step(st);
}
static inline const char *bgr_db_col_text(struct bgr_db_stmt *st, int i)
{
    return st->db->ops->col_text(st, i);
}
static inline int64_t bgr_db_col_int64(struct bgr_db_stmt *st, int i)
{
    return st->db->ops->col_int64(st, i);
}
static inline int bgr_db_col_int(struct bgr_db_stmt *st, int i)
{
    return (int)st->db->ops->col_int64(st, i);
}
static inline double bgr_db_col_double(struct bgr_db_stmt *st, int i)
{
    return st->db->ops->col_double(st, i);
}
static inline const void *bgr_db_col_blob(struct bgr_db_stmt *st, int i, size_t *n)
{
    return st->db->ops->col_blob(st, i, n);
}
static inline void bgr_db_reset(struct bgr_db_stmt *st)
{
    st->db->ops->reset(st);
}
/* Accepts NULL. */
static inline void bgr_db_finalize(struct bgr_db_stmt *st)
{
    if (st)
        st->db->ops->finalize(st);
}
static inline int bgr_db_exec(struct bgr_db *db, const char *sql)
{
    return db->ops->exec(db, sql);
}
static inline int64_t bgr_db_changes(struct bgr_db *db)
{
    return db->ops->changes(db);
}
static inline bool bgr_db_in_txn(struct bgr_db *db)
{
    return db->ops->in_txn(db);
}
static inline const char *bgr_db_errmsg(struct bgr_db *db)
{
    return db->ops->errmsg(db);
}
static inline bool bgr_db_unavailable(struct bgr_db *db)
{
    return db->ops->unavailable(db);
}
static inline void bgr_db_keep(struct bgr_db_stmt *st)
{
    st->db->ops->keep(st);
}
/* Accepts NULL. */
static inline void bgr_db_close(struct bgr_db *db)
{
    if (db)
        db->ops->close(db);
}

#endif
