/*
 * store_int.h - internals shared by the store's source files: the
 * connection pool, statement helpers and transaction verbs. Not part of the
 * module's interface.
 */
#ifndef BGR_STORE_STORE_INT_H
#define BGR_STORE_STORE_INT_H

#include <pthread.h>
#include <sqlite3.h>

#include "store/store.h"

#define BGR_MAX_PLANS 16
#define BGR_RATE_BUCKETS 256

/* One account's per-minute window (in memory: one server per data dir). */
struct bgr_rate_entry {
    struct bgr_rate_entry *next;
    char account_id[BGR_ID_MAX];
    int64_t minute; /* window: UNIX minute number */
    int64_t count;
};

struct bgr_store {
    char *data_dir;
    char *db_path;
    struct bgr_plan plans[BGR_MAX_PLANS];
    size_t n_plans;
    int busy_timeout_ms;

    pthread_mutex_t pool_mu;
    pthread_cond_t pool_cv;
    sqlite3 **conns; /* pool_size connections */
    bool *conn_busy;
    int pool_size;

    pthread_mutex_t rate_mu;
    struct bgr_rate_entry *rate[BGR_RATE_BUCKETS];
};

/* Borrows a connection (waits for one) / gives it back. */
sqlite3 *bgr_st_acquire(struct bgr_store *s);
void bgr_st_release(struct bgr_store *s, sqlite3 *db);

/* Translates a SQLite failure into BGR_EIO with "what: sqlite message". */
int bgr_st_fail(sqlite3 *db, struct bgr_error *err, const char *what);
/* Prepares sql (BGR_EIO on failure). */
int bgr_st_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, struct bgr_error *err);
/* Runs a statement without results (or several, via sqlite3_exec). */
int bgr_st_exec(sqlite3 *db, const char *sql, struct bgr_error *err);
/* BEGIN IMMEDIATE (takes the write lock now, waiting per busy_timeout). */
int bgr_st_begin(sqlite3 *db, struct bgr_error *err);
int bgr_st_commit(sqlite3 *db, struct bgr_error *err);
void bgr_st_rollback(sqlite3 *db); /* best effort, on error paths */

/* Copies column i (text, may be NULL) into out, truncating to n-1 bytes. */
void bgr_st_col_text(sqlite3_stmt *st, int i, char *out, size_t n);
void bgr_st_copy(char *out, size_t n, const char *in); /* bounded strcpy, NUL-terminated */

/* Reads one plan by name from the store's table (no locking: plans never
 * change after open). Returns false if unknown. */
bool bgr_st_plan_find(const struct bgr_store *s, const char *name, struct bgr_plan *out);

/* First and last day of the UTC month containing day. */
void bgr_st_month_range(int64_t day, int64_t *first, int64_t *last);
/* Credits charged to account in [first, last] days. */
int bgr_st_credits_used(sqlite3 *db, const char *account_id, int64_t first, int64_t last,
                        int64_t *used, struct bgr_error *err);
/* The same as an exact sum (fractional charges are REAL rows). */
int bgr_st_credits_used_exact(sqlite3 *db, const char *account_id, int64_t first, int64_t last,
                              double *used, struct bgr_error *err);

/* Insert of an image row with the credit check, inside the caller's
 * transaction. */
int bgr_st_image_insert(sqlite3 *db, const struct bgr_account *acct, const struct bgr_image *img,
                        struct bgr_error *err);
/* Insert of an outbox row inside the caller's transaction. */
int bgr_st_outbox_insert(sqlite3 *db, const char *account_id, const struct bgr_webhook_new *wh,
                         int64_t now_ms, struct bgr_error *err);
/* Reads an image row (any state) by id. BGR_ENOT_FOUND if none. */
int bgr_st_image_read(sqlite3 *db, const char *id, struct bgr_image *out, struct bgr_error *err);

#endif
