/*
 * commit.c - group commit: the per-request writes (the daily-limit charge,
 * the usage record) share transactions. Whoever finds the writer idle
 * becomes the leader: it takes every op queued so far (its own included),
 * runs them in one transaction on the writer's connection, and wakes their
 * callers after the COMMIT; the first op queued meanwhile is then woken to
 * lead the next batch. Nobody hands work to a thread of its own, so an
 * uncontended write costs no context switch, and a contended one costs one
 * sleep and one wake-up however many writes share the commit.
 *
 * Why: one write transaction per request meant as many BEGIN IMMEDIATE as
 * requests, with the pool's connections fighting over SQLite's write lock
 * (a loser sleeps in the busy handler for whole milliseconds) and a WAL
 * that grew by a few pages per request. Batched, N requests share one lock
 * acquisition, one set of dirty pages and one commit.
 *
 * Durability is unchanged: a caller returns only after the COMMIT that
 * contains its write (WAL, synchronous=NORMAL: durable across kill -9), so
 * what a response reports is committed before it is sent. Exactness is
 * unchanged: the ops of a batch run one after the other inside the write
 * lock, each seeing the ones before it, and other processes (the admin CLI)
 * are serialised by the same file lock as before.
 *
 * Checkpoints: the leader runs them, after its batch's COMMIT and before
 * the next batch, when the WAL has grown past CKPT_FRAMES. No frame is
 * appended meanwhile, so the checkpoint can complete and the next write
 * starts the WAL over. (Checkpointing from another connection while batches
 * go on was tried: it never completes under load, and the WAL grew by
 * hundreds of MB in seconds.) The threshold is 4x SQLite's default: the
 * same few pages are rewritten by every batch, so a checkpoint costs about
 * the same however many frames it folds, and there are 4x fewer of them.
 * The pool's connections keep SQLite's automatic one for their rare writes.
 *
 * PostgreSQL has no writer: its server does group commit itself (WAL
 * flushes shared by concurrent COMMITs), and several connections may write
 * at once, so bgr_st_write runs the op on a pool connection in its own
 * transaction, under the lock the op asks for.
 *
 * Failure isolation: when a batch fails (an op's SQL error, or the COMMIT),
 * it is rolled back and each of its ops is retried alone in a transaction
 * of its own, so one bad op fails only its own caller. An op's run function
 * therefore writes its outputs afresh on every call (it may run twice).
 */
#include "store/store_int.h"

#include <sqlite3.h>

#include <stdlib.h>
#include <string.h>

#define BATCH_MAX 512    /* ops per transaction: bounds the time the lock is held */
#define CKPT_FRAMES 4000 /* WAL frames that call for a checkpoint (16 MB of 4 KB pages) */

struct bgr_st_writer {
    pthread_mutex_t mu;
    struct bgr_st_op *head, *tail; /* queued, not yet taken by a leader */
    bool busy;                     /* a leader is running a batch */
    struct bgr_db *db;             /* the writer's own connection (not the pool's) */
    int wal_frames;                /* WAL size after the last commit (leader only) */
};

/* SQLite calls this after each commit on the writer's connection; being
 * installed, it also turns that connection's automatic checkpoint off. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    struct bgr_st_writer *w = arg;
    (void)db;
    (void)name;
    w->wal_frames = frames;
    return SQLITE_OK;
}

/* The leader's checkpoint, between batches (see the top of the file). */
static void maybe_checkpoint(struct bgr_st_writer *w)
{
    if (w->wal_frames < CKPT_FRAMES)
        return;
    w->wal_frames = 0;
    sqlite3 *h = bgr_db_sqlite_handle(w->db);
    int rc = sqlite3_wal_checkpoint_v2(h, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
        bgr_log(BGR_LOG_WARN, "store: checkpoint failed: %s", sqlite3_errmsg(h));
}

/* Runs ops [0, n) in one transaction. 0 when all committed. */
static int run_batch(struct bgr_db *db, struct bgr_st_op **ops, size_t n)
{
    struct bgr_error e = {0};
    int rc = bgr_st_begin(db, &e);
    for (size_t i = 0; !rc && i < n; i++)
        rc = ops[i]->run(db, ops[i]->ctx, &e);
    if (!rc)
        rc = bgr_st_commit(db, &e);
    if (rc)
        bgr_st_rollback(db);
    return rc;
}

/* One op in a transaction of its own; its result in op->rc, op->err. */
static void run_alone(struct bgr_db *db, struct bgr_st_op *op)
{
    op->rc = bgr_st_begin(db, &op->err);
    if (!op->rc)
        op->rc = op->run(db, op->ctx, &op->err);
    if (!op->rc)
        op->rc = bgr_st_commit(db, &op->err);
    if (op->rc)
        bgr_st_rollback(db);
}

/* The leader's turn: called with w->mu held and w->busy set; returns with
 * w->mu held, the batch's ops done and their callers woken. */
static void lead(struct bgr_st_writer *w)
{
    struct bgr_st_op *batch[BATCH_MAX];
    size_t n = 0;
    while (w->head && n < BATCH_MAX) {
        batch[n++] = w->head;
        w->head = w->head->next;
    }
    if (!w->head)
        w->tail = NULL;
    pthread_mutex_unlock(&w->mu);

    if (n == 1 || run_batch(w->db, batch, n) != 0) {
        for (size_t i = 0; i < n; i++)
            run_alone(w->db, batch[i]);
    } else {
        for (size_t i = 0; i < n; i++)
            batch[i]->rc = 0;
    }
    maybe_checkpoint(w);

    pthread_mutex_lock(&w->mu);
    for (size_t i = 0; i < n; i++) {
        batch[i]->done = true;
        pthread_cond_signal(&batch[i]->cv);
    }
    w->busy = false;
    if (w->head) /* its caller leads the next batch */
        pthread_cond_signal(&w->head->cv);
}

void bgr_st_writer_init(struct bgr_store *s, struct bgr_db *db)
{
    struct bgr_st_writer *w = bgr_xcalloc(1, sizeof(*w));
    pthread_mutex_init(&w->mu, NULL);
    w->db = db;
    sqlite3_wal_hook(bgr_db_sqlite_handle(db), wal_hook, w);
    s->writer = w;
}

struct bgr_db *bgr_st_writer_release(struct bgr_store *s)
{
    struct bgr_st_writer *w = s->writer;
    struct bgr_db *db;
    if (!w)
        return NULL;
    BGR_ASSERT(!w->busy && !w->head); /* no call may be in flight at close */
    pthread_mutex_destroy(&w->mu);
    db = w->db;
    free(w);
    s->writer = NULL;
    return db;
}

/* PostgreSQL: the op alone on a pool connection (see the top). */
static int write_direct(struct bgr_store *s, struct bgr_st_op *op, struct bgr_error *err)
{
    struct bgr_db *db = bgr_st_acquire(s);
    int rc = op->lock == BGR_ST_LOCK_SHARED ? bgr_st_begin_shared(db, err) : bgr_st_begin(db, err);
    if (!rc)
        rc = op->run(db, op->ctx, err);
    if (!rc)
        rc = bgr_st_commit(db, err);
    bgr_st_release(s, db); /* rolls back what did not commit */
    return rc;
}

int bgr_st_write(struct bgr_store *s, struct bgr_st_op *op, struct bgr_error *err)
{
    struct bgr_st_writer *w = s->writer;
    BGR_ASSERT(op->run != NULL);
    if (!w)
        return write_direct(s, op, err);
    op->next = NULL;
    op->done = false;
    op->rc = 0;
    memset(&op->err, 0, sizeof(op->err));
    pthread_cond_init(&op->cv, NULL);
    pthread_mutex_lock(&w->mu);
    if (w->tail)
        w->tail->next = op;
    else
        w->head = op;
    w->tail = op;
    while (!op->done) {
        if (!w->busy) {
            w->busy = true;
            lead(w);
        } else {
            pthread_cond_wait(&op->cv, &w->mu);
        }
    }
    pthread_mutex_unlock(&w->mu);
    pthread_cond_destroy(&op->cv);
    if (op->rc && err)
        *err = op->err;
    return op->rc;
}
