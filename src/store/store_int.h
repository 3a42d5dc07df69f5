/*
 * store_int.h - internals shared by the store's source files: the
 * connection pool, statement helpers and transaction verbs. Not part of the
 * module's interface.
 */
#ifndef BGR_STORE_STORE_INT_H
#define BGR_STORE_STORE_INT_H

#include <pthread.h>

#include "store/db.h"
#include "store/store.h"

#define BGR_MAX_PLANS 16
#define BGR_RATE_BUCKETS 256
#define BGR_STMT_CACHE 16 /* statements kept prepared per connection */

/* A connection's kept statements (see bgr_st_prepare_cached). Only the
 * thread holding the connection touches it. */
struct bgr_st_conn {
    struct bgr_db *db;
    int n;
    const char *sql[BGR_STMT_CACHE]; /* the literal's address is the key */
    struct bgr_db_stmt *st[BGR_STMT_CACHE];
};

/* One account's per-minute window (in memory on SQLite: one server per
 * data dir; PostgreSQL keeps it in a table every API node shares). */
struct bgr_rate_entry {
    struct bgr_rate_entry *next;
    char account_id[BGR_ID_MAX];
    int64_t minute; /* window: UNIX minute number */
    int64_t count;
};

struct bgr_store {
    char *data_dir;
    char *db_path; /* SQLite: the file; PostgreSQL: the URL (libpq URI) */
    enum bgr_db_kind kind;
    int unreachable; /* atomic: the last contact with PostgreSQL failed (bgr_store_healthy) */
    bool created;    /* this open made the database (bgr_store_created) */
    struct bgr_plan plans[BGR_MAX_PLANS];
    size_t n_plans;
    int busy_timeout_ms;

    pthread_mutex_t pool_mu;
    pthread_cond_t pool_cv;
    struct bgr_db **conns; /* pool_size connections */
    bool *conn_busy;
    int pool_size;

    pthread_mutex_t rate_mu;
    struct bgr_rate_entry *rate[BGR_RATE_BUCKETS];

    struct bgr_st_writer *writer; /* group commit of per-request writes (commit.c) */
    struct bgr_st_conn *stmts;    /* pool_size + 1 (the writer's last) */
};

/* ---- group commit (commit.c) ------------------------------------------------
 * A write for the group commit. run executes the op's SQL on the writer's
 * connection inside a transaction shared with the other ops queued
 * meanwhile; it returns 0 or a negative enum bgr_err and must write its
 * outputs (in ctx) afresh each time: after a failed batch it runs again,
 * alone. The op lives on the caller's stack. */
enum bgr_st_lock { BGR_ST_LOCK_GLOBAL = 0, BGR_ST_LOCK_SHARED };
struct bgr_st_op {
    int (*run)(struct bgr_db *db, void *ctx, struct bgr_error *err);
    void *ctx;
    /* What the op's transaction must exclude (PostgreSQL; SQLite has one
     * writer): everything (BGR_ST_LOCK_GLOBAL: it reads then writes), or
     * only the global writers such as an account's deletion, for an op
     * whose statements are each atomic (BGR_ST_LOCK_SHARED). */
    enum bgr_st_lock lock;
    /* writer-owned */
    struct bgr_st_op *next;
    pthread_cond_t cv; /* its caller waits here */
    bool done;
    int rc;
    struct bgr_error err;
};
struct bgr_st_writer;
/* Sets the writer up on db (a connection of its own, which the writer owns
 * until bgr_st_writer_release hands it back; no write may be in flight). */
void bgr_st_writer_init(struct bgr_store *s, struct bgr_db *db);
struct bgr_db *bgr_st_writer_release(struct bgr_store *s);
/* Queues op and returns once the transaction holding it has committed (0)
 * or failed (its error, detail in *err). The caller may run the batch. */
int bgr_st_write(struct bgr_store *s, struct bgr_st_op *op, struct bgr_error *err);

/* Borrows a connection (waits for one; reconnects one that was lost, a
 * failure showing at its first statement) / gives it back. */
struct bgr_db *bgr_st_acquire(struct bgr_store *s);
void bgr_st_release(struct bgr_store *s, struct bgr_db *db);

/* Translates a database failure into BGR_EIO with "what: message", or
 * BGR_ESERVICE_BUSY when the database is unreachable (retry later). */
int bgr_st_fail(struct bgr_db *db, struct bgr_error *err, const char *what);
/* Prepares sql (BGR_EIO on failure). */
int bgr_st_prepare(struct bgr_db *db, const char *sql, struct bgr_db_stmt **st,
                   struct bgr_error *err);
/* The statements every request runs, prepared once per connection and
 * kept (parsing them cost more than running them). sql must be a string
 * literal (its address is the cache key); db a connection of s's pool or
 * its writer. Hand the statement back with bgr_st_cached_done (reset,
 * bindings cleared: it must not keep a read snapshot open), never with
 * bgr_db_finalize. NULL is accepted. */
int bgr_st_prepare_cached(struct bgr_store *s, struct bgr_db *db, const char *sql,
                          struct bgr_db_stmt **st, struct bgr_error *err);
void bgr_st_cached_done(struct bgr_db_stmt *st);
/* A read transaction on a pool connection (BEGIN / COMMIT, kept prepared):
 * the statements between share one snapshot and one WAL read lock, where
 * each autocommit statement would take its own (fcntl calls). end also
 * commits writes made meanwhile; bgr_st_release rolls back a forgotten one. */
int bgr_st_read_begin(struct bgr_store *s, struct bgr_db *db, struct bgr_error *err);
int bgr_st_read_end(struct bgr_store *s, struct bgr_db *db, struct bgr_error *err);
/* The first column of the one row of a query without parameters, as an
 * integer (i64) and as a double (dbl); either may be NULL. */
int bgr_st_query_scalar(struct bgr_db *db, const char *sql, int64_t *i64, double *dbl,
                        struct bgr_error *err);
/* Runs a statement without results (or several). */
int bgr_st_exec(struct bgr_db *db, const char *sql, struct bgr_error *err);
/* Begins a write transaction holding the global write lock (SQLite:
 * BEGIN IMMEDIATE, waiting per busy_timeout; PostgreSQL: db.h). */
int bgr_st_begin(struct bgr_db *db, struct bgr_error *err);
/* Begins a write transaction whose reads-then-writes concern one account
 * only: on PostgreSQL it waits for that account's writers, not everyone's. */
int bgr_st_begin_account(struct bgr_db *db, const char *account_id, struct bgr_error *err);
/* Begins a write transaction of statements that are each atomic (upserts,
 * inserts): on PostgreSQL it excludes only the global writers. */
int bgr_st_begin_shared(struct bgr_db *db, struct bgr_error *err);
int bgr_st_commit(struct bgr_db *db, struct bgr_error *err);
void bgr_st_rollback(struct bgr_db *db); /* best effort, on error paths */

/* Copies column i (text, may be NULL) into out, truncating to n-1 bytes. */
void bgr_st_col_text(struct bgr_db_stmt *st, int i, char *out, size_t n);
void bgr_st_copy(char *out, size_t n, const char *in); /* bounded strcpy, NUL-terminated */

/* PostgreSQL: checks for the schema, creates it when mode allows, and
 * applies its migrations (store_pg.c). */
int bgr_st_pg_migrate(struct bgr_store *s, struct bgr_db *db, enum bgr_store_create mode,
                      struct bgr_error *err);

/* Reads one plan by name from the store's table (no locking: plans never
 * change after open). Returns false if unknown. */
bool bgr_st_plan_find(const struct bgr_store *s, const char *name, struct bgr_plan *out);

/* First and last day of the UTC month containing day. */
void bgr_st_month_range(int64_t day, int64_t *first, int64_t *last);
/* Credits charged to account in [first, last] days. */
int bgr_st_credits_used(struct bgr_db *db, const char *account_id, int64_t first, int64_t last,
                        int64_t *used, struct bgr_error *err);
/* The same as an exact sum (fractional charges are REAL rows). */
int bgr_st_credits_used_exact(struct bgr_db *db, const char *account_id, int64_t first,
                              int64_t last, double *used, struct bgr_error *err);

/* Insert of an image row with the credit check, inside the caller's
 * transaction. */
int bgr_st_image_insert(struct bgr_db *db, const struct bgr_account *acct,
                        const struct bgr_image *img, struct bgr_error *err);
/* A sync result's rows inside the caller's write transaction: the account
 * still exists (else BGR_EUNAUTHORIZED), the image row with its credit
 * check and charge, and the webhook's outbox row when wh is not NULL. */
int bgr_st_result_commit(struct bgr_store *s, struct bgr_db *db, const struct bgr_account *acct,
                         const struct bgr_image *img, const struct bgr_webhook_new *wh,
                         struct bgr_error *err);
/* Insert of an outbox row inside the caller's transaction. */
int bgr_st_outbox_insert(struct bgr_db *db, const char *account_id,
                         const struct bgr_webhook_new *wh, int64_t now_ms, struct bgr_error *err);
/* Removes data_dir/rel, a result file ("results/..."; anything else is
 * refused and counts as removed); a file already gone counts as removed. */
/* Reads an image row (any state) by id. BGR_ENOT_FOUND if none. */
int bgr_st_image_read(struct bgr_db *db, const char *id, struct bgr_image *out,
                      struct bgr_error *err);

#endif
