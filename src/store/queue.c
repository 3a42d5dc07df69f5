/*
 * queue.c - the shared job queue, on PostgreSQL: what lets API nodes and
 * inference workers be separate processes on separate machines.
 *
 * Two kinds of job: a synchronous request (a sync_jobs row carrying the
 * input bytes and the options, written by the API node that holds the
 * client) and a batch item (its batch_items row, which the batch submit
 * wrote anyway). A worker claims the oldest ready job with
 * SELECT ... FOR UPDATE SKIP LOCKED (sync first: a client is waiting), so
 * claimers never wait on each other and never take the same job; the claim
 * sets a lease (lease_until) that the worker renews while it works. A job
 * whose lease ran out (its worker was killed or its machine lost) is ready
 * again; one whose attempts exceed the bound fails with an error instead of
 * killing workers for ever.
 *
 * Exactly once: a sync job completes only from running under the claiming
 * worker's name, in the same transaction as its result row and charge; a
 * batch item completes only from processing (batches.c). A worker that lost
 * its lease and finishes late finds nothing to complete and discards its
 * result: nothing is charged twice.
 *
 * Wake-ups: NOTIFY bgr_jobs in the transaction that adds work, NOTIFY
 * bgr_done with the job id in the one that finishes a sync job; idle
 * workers and waiting API nodes LISTEN (bgr_store_listener_*).
 */
#include "store/store_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The advisory lock of item claims ("bgr4"; db_pg.c and the exclusive
 * locks below use "bgr1" to "bgr3"). */
#define CLAIM_LOCK "1650946612"

static int need_shared(struct bgr_store *s, struct bgr_error *err)
{
    if (s->kind == BGR_DB_PG)
        return 0;
    return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                         "the job queue needs a shared store (--store postgresql://...)");
}

/* Runs statements that return no rows on one connection, in order, each
 * bound from types ('i': int64_t, 't': const char *; one letter per
 * parameter, all statements alike) and the values after it. *changes (may
 * be NULL) gets the rows the last one changed. */
static int run_writes(struct bgr_store *s, const char *const *sql, size_t n, int64_t *changes,
                      struct bgr_error *err, const char *types, ...)
{
    struct bgr_db *db;
    int rc = need_shared(s, err);
    if (rc)
        return rc;
    db = bgr_st_acquire(s);
    for (size_t k = 0; !rc && k < n; k++) {
        struct bgr_db_stmt *st = NULL;
        va_list ap;
        rc = bgr_st_prepare(db, sql[k], &st, err);
        if (rc)
            break;
        va_start(ap, types);
        for (int i = 0; types[i]; i++) {
            if (types[i] == 'i')
                bgr_db_bind_int64(st, i + 1, va_arg(ap, int64_t));
            else
                bgr_db_bind_text(st, i + 1, va_arg(ap, const char *));
        }
        va_end(ap);
        if (bgr_db_step(st) != BGR_DB_DONE)
            rc = bgr_st_fail(db, err, sql[k]);
        else if (changes)
            *changes = bgr_db_changes(db);
        bgr_db_finalize(st);
    }
    bgr_st_release(s, db);
    return rc;
}

void bgr_job_release(struct bgr_job *j)
{
    if (!j)
        return;
    free(j->opts);
    free(j->render);
    free(j->render_spec);
    free(j->webhook_url);
    free(j->image_url);
    free(j->input);
    free(j->extra);
    memset(j, 0, sizeof(*j));
}

int bgr_store_job_enqueue(struct bgr_store *s, const struct bgr_job_new *jn, int64_t now_ms,
                          int64_t *id, struct bgr_error *err)
{
    struct bgr_db *db;
    struct bgr_db_stmt *st = NULL;
    int rc = need_shared(s, err);
    if (rc)
        return rc;
    db = bgr_st_acquire(s);
    rc = bgr_st_exec(db, "BEGIN", err);
    if (rc)
        goto out;
    rc = bgr_st_prepare(db,
                        "INSERT INTO sync_jobs(account_id, opts, render, render_spec, webhook_url,"
                        " image_url, credits, input, extra, created_at, input_key)"
                        " VALUES(?,?,?,?,?,?,?,?,?,?,?) RETURNING id",
                        &st, err);
    if (rc)
        goto out;
    bgr_db_bind_text(st, 1, jn->account_id);
    bgr_db_bind_text(st, 2, jn->opts ? jn->opts : "");
    bgr_db_bind_text(st, 3, jn->render ? jn->render : "");
    bgr_db_bind_text(st, 4, jn->render_spec ? jn->render_spec : "");
    bgr_db_bind_text(st, 5, jn->webhook_url ? jn->webhook_url : "");
    bgr_db_bind_text(st, 6, jn->image_url ? jn->image_url : "");
    bgr_db_bind_double(st, 7, jn->credits > 0 ? jn->credits : 1);
    bgr_db_bind_blob(st, 8, jn->input, jn->input_len);
    if (jn->extra)
        bgr_db_bind_blob(st, 9, jn->extra, jn->extra_len);
    bgr_db_bind_int64(st, 10, now_ms);
    bgr_db_bind_text(st, 11, jn->input_key ? jn->input_key : "");
    if (bgr_db_step(st) != BGR_DB_ROW) {
        rc = bgr_st_fail(db, err, "enqueue job");
        goto out;
    }
    *id = bgr_db_col_int64(st, 0);
    rc = bgr_st_exec(db, "NOTIFY bgr_jobs", err);
    if (!rc)
        rc = bgr_st_commit(db, err);
out:
    bgr_db_finalize(st);
    bgr_st_release(s, db);
    return rc;
}

static char *dup_col(struct bgr_db_stmt *st, int i)
{
    const char *v = bgr_db_col_text(st, i);
    return bgr_xstrdup(v ? v : "");
}

static void *dup_blob(struct bgr_db_stmt *st, int i, size_t *n)
{
    const void *p = bgr_db_col_blob(st, i, n);
    void *c;
    if (!p)
        return NULL;
    c = bgr_xmalloc(*n ? *n : 1);
    if (*n)
        memcpy(c, p, *n);
    return c;
}

/* Claims the oldest ready sync job. BGR_ENOT_FOUND if none. */
static int claim_sync(struct bgr_db *db, const char *worker, int64_t now_ms, int64_t lease_ms,
                      struct bgr_job *out, struct bgr_error *err)
{
    struct bgr_db_stmt *st = NULL;
    int rc = bgr_st_prepare(
        db,
        "UPDATE sync_jobs SET state = 1, attempts = attempts + 1, lease_until = ?1, worker = ?2,"
        " claimed_at = ?3 WHERE id = (SELECT id FROM sync_jobs WHERE state = 0"
        " OR (state = 1 AND lease_until < ?3) ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)"
        " RETURNING id, attempts, account_id, opts, render, render_spec, webhook_url,"
        " image_url, credits, input, extra, created_at, input_key",
        &st, err);
    if (rc)
        return rc;
    bgr_db_bind_int64(st, 1, now_ms + lease_ms);
    bgr_db_bind_text(st, 2, worker);
    bgr_db_bind_int64(st, 3, now_ms);
    switch (bgr_db_step(st)) {
    case BGR_DB_ROW:
        out->id = bgr_db_col_int64(st, 0);
        out->attempts = bgr_db_col_int(st, 1);
        bgr_st_col_text(st, 2, out->account_id, sizeof(out->account_id));
        out->opts = dup_col(st, 3);
        out->render = dup_col(st, 4);
        out->render_spec = dup_col(st, 5);
        out->webhook_url = dup_col(st, 6);
        out->image_url = dup_col(st, 7);
        out->credits = bgr_db_col_double(st, 8);
        out->input = dup_blob(st, 9, &out->input_len);
        out->extra = dup_blob(st, 10, &out->extra_len);
        out->created_at_ms = bgr_db_col_int64(st, 11);
        bgr_st_col_text(st, 12, out->input_key, sizeof(out->input_key));
        out->claimed_at_ms = now_ms;
        break;
    case BGR_DB_DONE:
        rc = bgr_error_set(err, BGR_ENOT_FOUND, "no sync job ready");
        break;
    default:
        rc = bgr_st_fail(db, err, "claim sync job");
    }
    bgr_db_finalize(st);
    return rc;
}

/* Claims the oldest ready batch item (status queued, or processing with
 * its lease run out). BGR_ENOT_FOUND if none. */
static int claim_item(struct bgr_db *db, const char *worker, int64_t now_ms, int64_t lease_ms,
                      int per_account, struct bgr_job *out, struct bgr_error *err)
{
    struct bgr_db_stmt *st = NULL;
    /* Fair between accounts: the ready item of the account with the fewest
     * items in work at this worker goes first (oldest first among equals),
     * and no account has more than per_account items in work at one worker:
     * one account's slow downloads or big batch cannot take a worker's
     * threads, while every worker process still takes its share of it. */
    int rc = bgr_st_prepare(
        db,
        "UPDATE batch_items SET status = 1, attempts = attempts + 1, started_at = ?3,"
        " lease_until = ?1, worker = ?2 WHERE id = (SELECT i.id FROM batch_items i"
        " JOIN batches b ON b.id = i.batch_id, LATERAL (SELECT COUNT(*) AS busy FROM batch_items w"
        " JOIN batches wb ON wb.id = w.batch_id WHERE wb.account_id = b.account_id"
        " AND w.status = 1 AND w.worker = ?2 AND w.lease_until >= ?3) l"
        " WHERE (i.status = 0 OR (i.status = 1 AND i.lease_until < ?3)) AND l.busy < ?4"
        " ORDER BY l.busy, i.id LIMIT 1 FOR UPDATE OF i SKIP LOCKED)"
        " RETURNING id, attempts",
        &st, err);
    if (rc)
        return rc;
    bgr_db_bind_int64(st, 1, now_ms + lease_ms);
    bgr_db_bind_text(st, 2, worker);
    bgr_db_bind_int64(st, 3, now_ms);
    bgr_db_bind_int64(st, 4, per_account > 0 ? per_account : INT32_MAX);
    switch (bgr_db_step(st)) {
    case BGR_DB_ROW:
        out->is_item = true;
        out->item_id = bgr_db_col_int64(st, 0);
        out->id = out->item_id;
        out->attempts = bgr_db_col_int(st, 1);
        break;
    case BGR_DB_DONE:
        rc = bgr_error_set(err, BGR_ENOT_FOUND, "no batch item ready");
        break;
    default:
        rc = bgr_st_fail(db, err, "claim batch item");
    }
    bgr_db_finalize(st);
    return rc;
}

int bgr_store_job_claim(struct bgr_store *s, const char *worker, int64_t now_ms, int64_t lease_ms,
                        int items_per_account, bool sync, bool items, struct bgr_job *out,
                        struct bgr_error *err)
{
    struct bgr_db *db;
    int rc = need_shared(s, err);
    if (rc)
        return rc;
    memset(out, 0, sizeof(*out));
    db = bgr_st_acquire(s);
    /* each claim is one autocommit statement: the row lock lasts only as
     * long as the UPDATE, and the lease is what keeps others off */
    rc = sync ? claim_sync(db, worker, now_ms, lease_ms, out, err)
              : bgr_error_set(err, BGR_ENOT_FOUND, "not claiming sync jobs");
    if (rc == BGR_ENOT_FOUND && items) {
        /* Item claims one at a time (an advisory lock for the claim's
         * transaction, a millisecond): the per-account count must see the
         * claim made just before, which concurrent transactions would not. */
        rc = bgr_st_exec(db, "BEGIN; SELECT pg_advisory_xact_lock(" CLAIM_LOCK ")", err);
        if (!rc)
            rc = claim_item(db, worker, now_ms, lease_ms, items_per_account, out, err);
        if (!rc)
            rc = bgr_st_commit(db, err);
    }
    bgr_st_release(s, db);
    return rc;
}

int bgr_store_job_renew(struct bgr_store *s, const char *worker, int64_t until_ms,
                        struct bgr_error *err)
{
    static const char *const sql[] = {
        "UPDATE sync_jobs SET lease_until = ? WHERE worker = ? AND state = 1",
        "UPDATE batch_items SET lease_until = ? WHERE worker = ? AND status = 1",
    };
    return run_writes(s, sql, BGR_ARRAY_LEN(sql), NULL, err, "it", until_ms, worker);
}

/* Moves sync job id from running under worker to state, in the caller's
 * transaction, and notifies the waiting API node. BGR_ENOT_FOUND when the
 * job is no longer this worker's (its lease ran out and another took it,
 * or the client gave up). */
static int finish_row(struct bgr_db *db, int64_t id, const char *worker, int state,
                      const char *image_id, const char *code, const char *msg, const char *outcome,
                      int64_t now_ms, struct bgr_error *err)
{
    struct bgr_db_stmt *st = NULL;
    char payload[32];
    int rc = bgr_st_prepare(db,
                            "UPDATE sync_jobs SET state = ?, image_id = ?, error_code = ?,"
                            " error_message = ?, outcome = ?, finished_at = ?, input = ''::bytea,"
                            " extra = NULL WHERE id = ? AND worker = ? AND state = 1",
                            &st, err);
    if (rc)
        return rc;
    bgr_db_bind_int64(st, 1, state);
    bgr_db_bind_text(st, 2, image_id ? image_id : "");
    bgr_db_bind_text(st, 3, code ? code : "");
    bgr_db_bind_text(st, 4, msg ? msg : "");
    bgr_db_bind_text(st, 5, outcome ? outcome : "");
    bgr_db_bind_int64(st, 6, now_ms);
    bgr_db_bind_int64(st, 7, id);
    bgr_db_bind_text(st, 8, worker);
    if (bgr_db_step(st) != BGR_DB_DONE)
        rc = bgr_st_fail(db, err, "finish job");
    else if (bgr_db_changes(db) == 0)
        rc = bgr_error_set(err, BGR_ENOT_FOUND, "job %lld is no longer this worker's",
                           (long long)id);
    bgr_db_finalize(st);
    if (rc)
        return rc;
    (void)snprintf(payload, sizeof(payload), "%lld", (long long)id);
    rc = bgr_st_prepare(db, "SELECT pg_notify('bgr_done', ?)", &st, err);
    if (rc)
        return rc;
    bgr_db_bind_text(st, 1, payload);
    if (bgr_db_step(st) != BGR_DB_ROW)
        rc = bgr_st_fail(db, err, "notify job done");
    bgr_db_finalize(st);
    return rc;
}

int bgr_store_job_complete(struct bgr_store *s, int64_t id, const char *worker,
                           const struct bgr_account *acct, const struct bgr_image *img,
                           const struct bgr_webhook_new *wh, struct bgr_error *err)
{
    struct bgr_db *db;
    int rc = need_shared(s, err);
    if (rc)
        return rc;
    db = bgr_st_acquire(s);
    rc = bgr_st_begin(db, err);
    /* the job first: a worker that lost its lease writes nothing */
    if (!rc)
        rc = finish_row(db, id, worker, BGR_JOB_DONE, img->id, NULL, NULL, NULL, img->created_at_ms,
                        err);
    if (!rc)
        rc = bgr_st_result_commit(s, db, acct, img, wh, err);
    if (!rc)
        rc = bgr_st_commit(db, err);
    bgr_st_release(s, db); /* rolls back on error */
    return rc;
}

int bgr_store_job_fail(struct bgr_store *s, int64_t id, const char *worker, const char *code,
                       const char *msg, const char *outcome, int64_t now_ms, struct bgr_error *err)
{
    struct bgr_db *db;
    int rc = need_shared(s, err);
    if (rc)
        return rc;
    db = bgr_st_acquire(s);
    rc = bgr_st_exec(db, "BEGIN", err);
    if (!rc)
        rc = finish_row(db, id, worker, BGR_JOB_FAILED, NULL, code, msg, outcome, now_ms, err);
    if (!rc)
        rc = bgr_st_commit(db, err);
    bgr_st_release(s, db);
    return rc;
}

int bgr_store_job_state(struct bgr_store *s, int64_t id, struct bgr_job_state *out,
                        struct bgr_error *err)
{
    struct bgr_db *db;
    struct bgr_db_stmt *st = NULL;
    int rc = need_shared(s, err);
    if (rc)
        return rc;
    memset(out, 0, sizeof(*out));
    db = bgr_st_acquire(s);
    rc = bgr_st_prepare(db,
                        "SELECT state, image_id, error_code, error_message, outcome, attempts,"
                        " claimed_at FROM sync_jobs WHERE id = ?",
                        &st, err);
    if (!rc) {
        bgr_db_bind_int64(st, 1, id);
        switch (bgr_db_step(st)) {
        case BGR_DB_ROW:
            out->state = bgr_db_col_int(st, 0);
            bgr_st_col_text(st, 1, out->image_id, sizeof(out->image_id));
            bgr_st_col_text(st, 2, out->error_code, sizeof(out->error_code));
            bgr_st_col_text(st, 3, out->error_message, sizeof(out->error_message));
            bgr_st_col_text(st, 4, out->outcome, sizeof(out->outcome));
            out->attempts = bgr_db_col_int(st, 5);
            out->claimed_at_ms = bgr_db_col_int64(st, 6);
            break;
        case BGR_DB_DONE:
            rc = bgr_error_set(err, BGR_ENOT_FOUND, "no job %lld", (long long)id);
            break;
        default:
            rc = bgr_st_fail(db, err, "read job");
        }
    }
    bgr_db_finalize(st);
    bgr_st_release(s, db);
    return rc;
}

int bgr_store_job_forget(struct bgr_store *s, int64_t id, bool only_queued, struct bgr_error *err)
{
    const char *sql = only_queued ? "DELETE FROM sync_jobs WHERE id = ? AND state = 0"
                                  : "DELETE FROM sync_jobs WHERE id = ?";
    int64_t n = 0;
    int rc = run_writes(s, &sql, 1, &n, err, "i", id);
    if (!rc && only_queued && n == 0)
        rc = bgr_error_set(err, BGR_ENOT_FOUND, "job %lld is not queued", (long long)id);
    return rc;
}

int bgr_store_job_sweep(struct bgr_store *s, int64_t older_than_ms, int *n_removed,
                        struct bgr_error *err)
{
    /* finished jobs whose API node never came back for them (it died) */
    const char *sql = "DELETE FROM sync_jobs WHERE state >= 2 AND finished_at < ?";
    int64_t n = 0;
    int rc = run_writes(s, &sql, 1, &n, err, "i", older_than_ms);
    if (!rc && n_removed)
        *n_removed = (int)n;
    return rc;
}

int bgr_store_queue_depth(struct bgr_store *s, int64_t now_ms, int64_t *sync_ready,
                          int64_t *items_ready, struct bgr_error *err)
{
    struct bgr_db *db;
    struct bgr_db_stmt *st = NULL;
    int rc = need_shared(s, err);
    if (rc)
        return rc;
    db = bgr_st_acquire(s);
    rc = bgr_st_prepare(db,
                        "SELECT (SELECT COUNT(*) FROM sync_jobs WHERE state = 0"
                        " OR (state = 1 AND lease_until < ?1)),"
                        " (SELECT COUNT(*) FROM batch_items WHERE status = 0"
                        " OR (status = 1 AND lease_until < ?1))",
                        &st, err);
    if (!rc) {
        bgr_db_bind_int64(st, 1, now_ms);
        if (bgr_db_step(st) == BGR_DB_ROW) {
            *sync_ready = bgr_db_col_int64(st, 0);
            *items_ready = bgr_db_col_int64(st, 1);
        } else {
            rc = bgr_st_fail(db, err, "queue depth");
        }
    }
    bgr_db_finalize(st);
    bgr_st_release(s, db);
    return rc;
}

/* ---- notifications ---------------------------------------------------------- */

struct bgr_store_listener {
    struct bgr_store *s;
    char channel[32];
    struct bgr_db *db; /* NULL while the database is away */
};

static int listen_conn(struct bgr_store_listener *l, struct bgr_error *err)
{
    char msg[400];
    if (bgr_db_pg_open(l->s->db_path, &l->db, msg, sizeof(msg)) != 0)
        return bgr_error_set(err, BGR_ESERVICE_BUSY, "store: cannot connect to PostgreSQL: %s",
                             msg);
    if (bgr_db_pg_listen(l->db, l->channel) != 0) {
        int rc = bgr_st_fail(l->db, err, "listen");
        bgr_db_close(l->db);
        l->db = NULL;
        return rc;
    }
    return 0;
}

int bgr_store_listener_open(struct bgr_store *s, const char *channel,
                            struct bgr_store_listener **out, struct bgr_error *err)
{
    struct bgr_store_listener *l;
    int rc = need_shared(s, err);
    if (rc)
        return rc;
    l = bgr_xcalloc(1, sizeof(*l));
    l->s = s;
    bgr_st_copy(l->channel, sizeof(l->channel), channel);
    rc = listen_conn(l, err);
    if (rc) {
        free(l);
        return rc;
    }
    *out = l;
    return 0;
}

int bgr_store_listener_wait(struct bgr_store_listener *l, int timeout_ms, char *payload, size_t n)
{
    struct bgr_error e;
    int rc;
    payload[0] = 0;
    if (!l->db) {
        /* Away: try again now; whatever was notified meanwhile is lost, so
         * a reconnect counts as a wake-up (the caller re-reads the state). */
        if (listen_conn(l, &e) == 0) {
            __atomic_store_n(&l->s->unreachable, 0, __ATOMIC_RELAXED);
            return 1;
        }
        __atomic_store_n(&l->s->unreachable, 1, __ATOMIC_RELAXED);
        usleep((useconds_t)timeout_ms * 1000);
        return -1;
    }
    rc = bgr_db_pg_wait(l->db, timeout_ms, payload, n);
    __atomic_store_n(&l->s->unreachable, rc < 0, __ATOMIC_RELAXED);
    if (rc < 0) {
        bgr_log(BGR_LOG_WARN, "store: lost the notification connection: %s", bgr_db_errmsg(l->db));
        bgr_db_close(l->db);
        l->db = NULL;
    }
    return rc;
}

void bgr_store_listener_close(struct bgr_store_listener *l)
{
    if (!l)
        return;
    bgr_db_close(l->db);
    free(l);
}

/* ---- one node at a time ------------------------------------------------------- */

/* The first advisory-lock key of these locks ("bgr3"; db_pg.c uses
 * "bgr1" and "bgr2" for the write locks). */
#define EXCLUSIVE_CLASS "1650946611"

struct bgr_store_exclusive {
    struct bgr_db *db; /* holds the session's advisory lock; NULL on SQLite */
};

int bgr_store_exclusive_try(struct bgr_store *s, const char *name,
                            struct bgr_store_exclusive **lock, struct bgr_error *err)
{
    struct bgr_db *db = NULL;
    struct bgr_db_stmt *st = NULL;
    char msg[400];
    int rc = 0;
    *lock = NULL;
    if (s->kind != BGR_DB_PG) {
        *lock = bgr_xcalloc(1, sizeof(**lock));
        return 0;
    }
    if (bgr_db_pg_open(s->db_path, &db, msg, sizeof(msg)) != 0)
        return bgr_error_set(err, BGR_ESERVICE_BUSY, "store: cannot connect to PostgreSQL: %s",
                             msg);

    rc = bgr_st_prepare(db, "SELECT pg_try_advisory_lock(" EXCLUSIVE_CLASS ", hashtext(?))", &st,
                        err);
    if (!rc) {
        bgr_db_bind_text(st, 1, name);
        if (bgr_db_step(st) != BGR_DB_ROW)
            rc = bgr_st_fail(db, err, "try lock");
        else if (bgr_db_col_int64(st, 0)) {
            *lock = bgr_xcalloc(1, sizeof(**lock));
            (*lock)->db = db;
            db = NULL;
        }
    }
    bgr_db_finalize(st);
    bgr_db_close(db); /* not taken: nothing held */
    return rc;
}

void bgr_store_exclusive_release(struct bgr_store_exclusive *lock)
{
    if (!lock)
        return;
    bgr_db_close(lock->db); /* ending the session releases the lock */
    free(lock);
}

int bgr_store_job_workers(struct bgr_store *s, char ***names, size_t *n, struct bgr_error *err)
{
    struct bgr_db *db;
    struct bgr_db_stmt *st = NULL;
    size_t cap = 0;
    int rc = need_shared(s, err);
    *names = NULL;
    *n = 0;
    if (rc)
        return rc;
    db = bgr_st_acquire(s);
    rc =
        bgr_st_prepare(db,
                       "SELECT DISTINCT worker FROM sync_jobs WHERE state = 1 UNION"
                       " SELECT DISTINCT worker FROM batch_items WHERE status = 1 AND worker != ''",
                       &st, err);
    while (!rc) {
        int step = bgr_db_step(st);
        if (step == BGR_DB_DONE)
            break;
        if (step != BGR_DB_ROW) {
            rc = bgr_st_fail(db, err, "list workers");
            break;
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            *names = bgr_xrealloc(*names, cap * sizeof(**names));
        }
        (*names)[(*n)++] = dup_col(st, 0);
    }
    bgr_db_finalize(st);
    bgr_st_release(s, db);
    return rc;
}

int bgr_store_job_expire_worker(struct bgr_store *s, const char *worker, struct bgr_error *err)
{
    static const char *const sql[] = {
        "UPDATE sync_jobs SET lease_until = 0 WHERE worker = ? AND state = 1",
        "UPDATE batch_items SET lease_until = 0 WHERE worker = ? AND status = 1",
    };
    static const char *const wake = "NOTIFY bgr_jobs";
    int rc = run_writes(s, sql, BGR_ARRAY_LEN(sql), NULL, err, "t", worker);
    return rc ? rc : run_writes(s, &wake, 1, NULL, err, "");
}

int bgr_store_job_abandon(struct bgr_store *s, int64_t id, const char *code, const char *msg,
                          int64_t now_ms, struct bgr_error *err)
{
    /* its worker then finds it no longer running: it commits nothing */
    const char *sql = "UPDATE sync_jobs SET state = 3, error_code = ?, error_message = ?,"
                      " finished_at = ?, input = ''::bytea, extra = NULL"
                      " WHERE id = ? AND state < 2";
    int64_t n = 0;
    int rc = run_writes(s, &sql, 1, &n, err, "ttii", code, msg, now_ms, id);
    if (!rc && n == 0)
        rc = bgr_error_set(err, BGR_ENOT_FOUND, "job %lld finished already", (long long)id);
    return rc;
}
