/*
 * batches.c - persisted batches and their items: the state machine
 * queued -> processing -> completed | failed, one transaction per step.
 *
 * Exactly-once: an item is completed only from "processing", in the same
 * transaction as its result row and credit charge, so a second worker (or
 * a re-run after a crash) cannot complete it twice. A crash while
 * processing leaves the row "processing"; recovery at start-up puts it
 * back to "queued" (the aborted attempt committed nothing).
 */
#include "store/store_int.h"

#include <stdlib.h>
#include <string.h>

const char *bgr_item_status_name(enum bgr_item_status st)
{
    switch (st) {
    case BGR_ITEM_QUEUED:
        return "queued";
    case BGR_ITEM_PROCESSING:
        return "processing";
    case BGR_ITEM_COMPLETED:
        return "completed";
    case BGR_ITEM_FAILED:
        return "failed";
    }
    return "unknown";
}

int bgr_store_batch_create(struct bgr_store *s, const char *account_id, const char *webhook_url,
                           const struct bgr_batch_item_new *items, size_t n, size_t max_items,
                           int64_t now_ms, struct bgr_batch *out, struct bgr_error *err)
{
    struct bgr_batch b = {0};
    struct bgr_db *db = NULL;
    struct bgr_db_stmt *st = NULL;
    int rc;

    if (n == 0 || n > max_items)
        return bgr_error_set(err, BGR_EBATCH_TOO_LARGE, "a batch holds 1 to %zu images", max_items);
    if (webhook_url && strlen(webhook_url) > BGR_URL_MAX)
        return bgr_error_set(err, BGR_EINVALID_PARAMETER, "webhook_url is too long");
    for (size_t i = 0; i < n; i++)
        if (!items[i].image_url || strlen(items[i].image_url) > BGR_URL_MAX)
            return bgr_error_set(err, BGR_EINVALID_PARAMETER, "images[%zu].image_url is invalid",
                                 i);
    bgr_store_new_id("batch_", b.id);
    bgr_st_copy(b.account_id, sizeof(b.account_id), account_id);
    bgr_st_copy(b.webhook_url, sizeof(b.webhook_url), webhook_url);
    b.status = "queued";
    b.total = b.queued = (int)n;
    b.created_at_ms = now_ms;

    db = bgr_st_acquire(s);
    rc = bgr_st_begin(db, err);
    if (rc)
        goto out;
    rc = bgr_st_prepare(db,
                        "INSERT INTO batches(id, account_id, webhook_url, total, created_at)"
                        " VALUES(?,?,?,?,?)",
                        &st, err);
    if (rc)
        goto out;
    bgr_db_bind_text(st, 1, b.id);
    bgr_db_bind_text(st, 2, b.account_id);
    bgr_db_bind_text(st, 3, b.webhook_url);
    bgr_db_bind_int64(st, 4, b.total);
    bgr_db_bind_int64(st, 5, now_ms);
    if (bgr_db_step(st) != BGR_DB_DONE) {
        rc = bgr_st_fail(db, err, "insert batch");
        goto out;
    }
    bgr_db_finalize(st);
    rc = bgr_st_prepare(
        db, "INSERT INTO batch_items(batch_id, idx, image_url, opts) VALUES(?,?,?,?)", &st, err);
    if (rc)
        goto out;
    for (size_t i = 0; i < n; i++) {
        char opts[BGR_OUTPUT_OPTS_TEXT_MAX];
        struct bgr_output_opts check;
        /* the buffer fits every option set: a failure is our bug */
        BGR_ASSERT(bgr_output_opts_to_text(&items[i].opts, opts, sizeof(opts)) == 0);
        /* store nothing a worker could not read back (e.g. quality 0) */
        rc = bgr_output_opts_from_text(opts, &check, err);
        if (rc) {
            bgr_error_prefix(err, "batch item %zu", i);
            goto out;
        }
        bgr_db_reset(st);
        bgr_db_bind_text(st, 1, b.id);
        bgr_db_bind_int64(st, 2, (int)i);
        bgr_db_bind_text(st, 3, items[i].image_url);
        bgr_db_bind_text(st, 4, opts); /* stepped below, while opts lives */
        if (bgr_db_step(st) != BGR_DB_DONE) {
            rc = bgr_st_fail(db, err, "insert batch item");
            goto out;
        }
    }
    /* shared store: the items are the queue (queue.c); wake idle workers
     * when this commits */
    if (s->kind == BGR_DB_PG)
        rc = bgr_st_exec(db, "NOTIFY bgr_jobs", err);
    if (!rc)
        rc = bgr_st_commit(db, err);
out:
    bgr_db_finalize(st);
    bgr_st_release(s, db);
    if (!rc)
        *out = b;
    return rc;
}

/* Batch row plus item counts, on a borrowed connection. */
static int read_batch(struct bgr_db *db, const char *batch_id, struct bgr_batch *out,
                      struct bgr_error *err)
{
    struct bgr_batch b = {0};
    struct bgr_db_stmt *st = NULL;
    int rc = bgr_st_prepare(db,
                            "SELECT id, account_id, webhook_url, total, created_at, finished_at"
                            " FROM batches WHERE id = ?",
                            &st, err);
    if (rc)
        return rc;
    bgr_db_bind_text(st, 1, batch_id);
    rc = bgr_db_step(st);
    if (rc != BGR_DB_ROW) {
        rc = rc == BGR_DB_DONE ? bgr_error_set(err, BGR_ENOT_FOUND, "no such batch")
                               : bgr_st_fail(db, err, "read batch");
        goto out;
    }
    bgr_st_col_text(st, 0, b.id, sizeof(b.id));
    bgr_st_col_text(st, 1, b.account_id, sizeof(b.account_id));
    bgr_st_col_text(st, 2, b.webhook_url, sizeof(b.webhook_url));
    b.total = bgr_db_col_int(st, 3);
    b.created_at_ms = bgr_db_col_int64(st, 4);
    b.finished_at_ms = bgr_db_col_int64(st, 5);
    bgr_db_finalize(st);
    st = NULL;
    rc = bgr_st_prepare(db,
                        "SELECT status, COUNT(*) FROM batch_items WHERE batch_id = ?"
                        " GROUP BY status",
                        &st, err);
    if (rc)
        goto out;
    bgr_db_bind_text(st, 1, batch_id);
    for (;;) {
        int step = bgr_db_step(st), c;
        if (step == BGR_DB_DONE)
            break;
        if (step != BGR_DB_ROW) {
            rc = bgr_st_fail(db, err, "count batch items");
            goto out;
        }
        c = bgr_db_col_int(st, 1);
        switch (bgr_db_col_int(st, 0)) {
        case BGR_ITEM_QUEUED:
            b.queued += c;
            break;
        case BGR_ITEM_PROCESSING:
            b.processing += c;
            break;
        case BGR_ITEM_COMPLETED:
            b.completed += c;
            break;
        default:
            b.failed += c;
            break;
        }
    }
    rc = 0;
    if (b.queued == b.total)
        b.status = "queued";
    else if (b.queued + b.processing > 0)
        b.status = "processing";
    else
        b.status = b.completed > 0 ? "completed" : "failed";
    *out = b;
out:
    bgr_db_finalize(st);
    return rc;
}

int bgr_store_batch_get(struct bgr_store *s, const char *batch_id, const char *account_id,
                        struct bgr_batch *out, struct bgr_error *err)
{
    struct bgr_batch b;
    struct bgr_db *db = bgr_st_acquire(s);
    int rc = read_batch(db, batch_id, &b, err);
    bgr_st_release(s, db);
    if (rc)
        return rc;
    if (account_id && strcmp(account_id, b.account_id) != 0)
        return bgr_error_set(err, BGR_ENOT_FOUND, "no such batch");
    *out = b;
    return 0;
}

#define ITEM_COLS                                                                                  \
    "i.id, i.idx, i.batch_id, b.account_id, i.image_url, i.opts, i.status, i.attempts,"            \
    " i.error_code, i.error_message, i.image_id, i.processing_ms, i.started_at, i.finished_at"

/* One row of ITEM_COLS. Options that do not parse mean the row was written
 * by something else than this store (or a newer version): BGR_EIO naming
 * the item, rather than running it with options nobody asked for. */
static int read_item(struct bgr_db *db, struct bgr_db_stmt *st, struct bgr_batch_item *it,
                     struct bgr_error *err)
{
    memset(it, 0, sizeof(*it));
    it->item_id = bgr_db_col_int64(st, 0);
    it->index = bgr_db_col_int(st, 1);
    bgr_st_col_text(st, 2, it->batch_id, sizeof(it->batch_id));
    bgr_st_col_text(st, 3, it->account_id, sizeof(it->account_id));
    bgr_st_col_text(st, 4, it->image_url, sizeof(it->image_url));
    struct bgr_error perr = {0};
    if (bgr_output_opts_from_text(bgr_db_col_text(st, 5), &it->opts, &perr))
        return bgr_error_set(err, BGR_EIO, "store: batch item %lld: %s", (long long)it->item_id,
                             perr.msg);
    it->status = (enum bgr_item_status)bgr_db_col_int(st, 6);
    it->attempts = bgr_db_col_int(st, 7);
    bgr_st_col_text(st, 8, it->error_code, sizeof(it->error_code));
    bgr_st_col_text(st, 9, it->error_message, sizeof(it->error_message));
    bgr_st_col_text(st, 10, it->image.id, sizeof(it->image.id));
    it->processing_ms = bgr_db_col_int64(st, 11);
    it->started_at_ms = bgr_db_col_int64(st, 12);
    it->finished_at_ms = bgr_db_col_int64(st, 13);
    if (it->image.id[0]) {
        char id[BGR_ID_MAX];
        memcpy(id, it->image.id, sizeof(id));
        if (bgr_st_image_read(db, id, &it->image, NULL) != 0)
            memcpy(it->image.id, id, sizeof(id)); /* keep the id even if the row is odd */
    }
    return 0;
}

int bgr_store_batch_items(struct bgr_store *s, const char *batch_id, struct bgr_batch_item **items,
                          size_t *n, struct bgr_error *err)
{
    struct bgr_batch_item *v = NULL;
    size_t len = 0, cap = 0;
    struct bgr_db *db = bgr_st_acquire(s);
    struct bgr_db_stmt *st = NULL;
    int rc = bgr_st_prepare(db,
                            "SELECT " ITEM_COLS " FROM batch_items i JOIN batches b"
                            " ON b.id = i.batch_id WHERE i.batch_id = ? ORDER BY i.idx",
                            &st, err);
    if (!rc)
        bgr_db_bind_text(st, 1, batch_id);
    while (!rc) {
        int step = bgr_db_step(st);
        if (step == BGR_DB_DONE)
            break;
        if (step != BGR_DB_ROW) {
            rc = bgr_st_fail(db, err, "read batch items");
            break;
        }
        if (len == cap) {
            cap = cap ? cap * 2 : 8;
            v = bgr_xrealloc(v, cap * sizeof(*v));
        }
        rc = read_item(db, st, &v[len], err);
        if (!rc)
            len++;
    }
    bgr_db_finalize(st);
    bgr_st_release(s, db);
    if (rc) {
        free(v);
        return rc;
    }
    *items = v;
    *n = len;
    return 0;
}

int bgr_store_item_get(struct bgr_store *s, int64_t item_id, struct bgr_batch_item *out,
                       struct bgr_error *err)
{
    struct bgr_db *db = bgr_st_acquire(s);
    struct bgr_db_stmt *st = NULL;
    int rc = bgr_st_prepare(db,
                            "SELECT " ITEM_COLS " FROM batch_items i JOIN batches b"
                            " ON b.id = i.batch_id WHERE i.id = ?",
                            &st, err);
    if (rc)
        goto out;
    bgr_db_bind_int64(st, 1, item_id);
    rc = bgr_db_step(st);
    if (rc == BGR_DB_ROW) {
        rc = read_item(db, st, out, err);
    } else {
        rc = rc == BGR_DB_DONE ? bgr_error_set(err, BGR_ENOT_FOUND, "no such batch item")
                               : bgr_st_fail(db, err, "read batch item");
    }
out:
    bgr_db_finalize(st);
    bgr_st_release(s, db);
    return rc;
}

int bgr_store_items_recover(struct bgr_store *s, int64_t **ids, size_t *n, struct bgr_error *err)
{
    int64_t *v = NULL;
    size_t len = 0, cap = 0;
    struct bgr_db *db = bgr_st_acquire(s);
    struct bgr_db_stmt *st = NULL;
    int rc = bgr_st_begin(db, err);
    if (rc)
        goto out;
    rc = bgr_st_exec(db, "UPDATE batch_items SET status = 0 WHERE status = 1", err);
    if (rc)
        goto out;
    rc = bgr_st_prepare(db,
                        "SELECT i.id FROM batch_items i JOIN batches b ON b.id = i.batch_id"
                        " WHERE i.status = 0 ORDER BY b.created_at, i.batch_id, i.idx",
                        &st, err);
    while (!rc) {
        int step = bgr_db_step(st);
        if (step == BGR_DB_DONE)
            break;
        if (step != BGR_DB_ROW) {
            rc = bgr_st_fail(db, err, "list queued items");
            break;
        }
        if (len == cap) {
            cap = cap ? cap * 2 : 64;
            v = bgr_xrealloc(v, cap * sizeof(*v));
        }
        v[len++] = bgr_db_col_int64(st, 0);
    }
    bgr_db_finalize(st);
    st = NULL;
    if (!rc)
        rc = bgr_st_commit(db, err);
out:
    bgr_db_finalize(st);
    bgr_st_release(s, db);
    if (rc) {
        free(v);
        return rc;
    }
    *ids = v;
    *n = len;
    return 0;
}

/* Status and batch of an item, on the caller's connection. */
static int item_state(struct bgr_db *db, int64_t item_id, int *status, char batch_id[BGR_ID_MAX],
                      struct bgr_error *err)
{
    struct bgr_db_stmt *st = NULL;
    int rc = bgr_st_prepare(db, "SELECT status, batch_id FROM batch_items WHERE id = ?", &st, err);
    if (rc)
        return rc;
    bgr_db_bind_int64(st, 1, item_id);
    rc = bgr_db_step(st);
    if (rc == BGR_DB_ROW) {
        *status = bgr_db_col_int(st, 0);
        bgr_st_col_text(st, 1, batch_id, BGR_ID_MAX);
        rc = 0;
    } else {
        rc = rc == BGR_DB_DONE ? bgr_error_set(err, BGR_ENOT_FOUND, "no such batch item")
                               : bgr_st_fail(db, err, "read item state");
    }
    bgr_db_finalize(st);
    return rc;
}

int bgr_store_item_start(struct bgr_store *s, int64_t item_id, int64_t now_ms,
                         struct bgr_error *err)
{
    struct bgr_db *db = bgr_st_acquire(s);
    struct bgr_db_stmt *st = NULL;
    int rc = bgr_st_prepare(db,
                            "UPDATE batch_items SET status = 1, attempts = attempts + 1,"
                            " started_at = ? WHERE id = ? AND status = 0",
                            &st, err);
    if (rc)
        goto out;
    bgr_db_bind_int64(st, 1, now_ms);
    bgr_db_bind_int64(st, 2, item_id);
    if (bgr_db_step(st) != BGR_DB_DONE)
        rc = bgr_st_fail(db, err, "start item");
    else if (bgr_db_changes(db) == 0)
        rc = bgr_error_set(err, BGR_ENOT_FOUND, "item %lld is not queued", (long long)item_id);
out:
    bgr_db_finalize(st);
    bgr_st_release(s, db);
    return rc;
}

/* After an item finished: if none of its batch is open, stamp the batch
 * and queue its webhook. Inside the caller's transaction. */
static int maybe_finish_batch(struct bgr_db *db, const char *batch_id, int64_t now_ms, bool *done,
                              struct bgr_error *err)
{
    struct bgr_batch b = {0};
    int rc = read_batch(db, batch_id, &b, err);
    *done = false;
    if (rc || b.queued + b.processing > 0 || b.finished_at_ms)
        return rc;
    *done = true;
    {
        struct bgr_db_stmt *st = NULL;
        rc = bgr_st_prepare(db, "UPDATE batches SET finished_at = ? WHERE id = ?", &st, err);
        if (rc)
            return rc;
        bgr_db_bind_int64(st, 1, now_ms > 0 ? now_ms : 1);
        bgr_db_bind_text(st, 2, batch_id);
        if (bgr_db_step(st) != BGR_DB_DONE)
            rc = bgr_st_fail(db, err, "finish batch");
        bgr_db_finalize(st);
    }
    if (!rc && b.webhook_url[0]) {
        struct bgr_webhook_new wh = {
            .url = b.webhook_url, .event = "batch.completed", .payload = "", .ref = batch_id};
        rc = bgr_st_outbox_insert(db, b.account_id, &wh, now_ms, err);
    }
    return rc;
}

static int item_finish(struct bgr_store *s, int64_t item_id, const struct bgr_account *acct,
                       const struct bgr_image *img, const char *code, const char *msg,
                       int64_t now_ms, bool *batch_done, struct bgr_error *err)
{
    char batch_id[BGR_ID_MAX];
    struct bgr_db *db = bgr_st_acquire(s);
    struct bgr_db_stmt *st = NULL;
    int status = 0, rc = bgr_st_begin(db, err);
    bool done = false;
    if (rc)
        goto out;
    rc = item_state(db, item_id, &status, batch_id, err);
    if (rc)
        goto out;
    if (status != BGR_ITEM_PROCESSING) {
        rc = bgr_error_set(err, BGR_ENOT_FOUND, "item %lld is not processing", (long long)item_id);
        goto out;
    }
    if (img) {
        rc = bgr_st_image_insert(db, acct, img, err);
        if (rc)
            goto out;
    }
    rc = bgr_st_prepare(db,
                        "UPDATE batch_items SET status = ?, error_code = ?, error_message = ?,"
                        " image_id = ?, processing_ms = ?, finished_at = ? WHERE id = ?",
                        &st, err);
    if (rc)
        goto out;
    bgr_db_bind_int64(st, 1, img ? BGR_ITEM_COMPLETED : BGR_ITEM_FAILED);
    bgr_db_bind_text(st, 2, img ? "" : code);
    bgr_db_bind_text(st, 3, img ? "" : msg);
    bgr_db_bind_text(st, 4, img ? img->id : "");
    bgr_db_bind_int64(st, 5, img ? img->processing_ms : 0);
    bgr_db_bind_int64(st, 6, now_ms);
    bgr_db_bind_int64(st, 7, item_id);
    if (bgr_db_step(st) != BGR_DB_DONE) {
        rc = bgr_st_fail(db, err, "finish item");
        goto out;
    }
    rc = maybe_finish_batch(db, batch_id, now_ms, &done, err);
    if (!rc)
        rc = bgr_st_commit(db, err);
out:
    bgr_db_finalize(st);
    bgr_st_release(s, db);
    if (!rc && batch_done)
        *batch_done = done;
    return rc;
}

int bgr_store_item_complete(struct bgr_store *s, int64_t item_id, const struct bgr_account *acct,
                            const struct bgr_image *img, int64_t now_ms, bool *batch_done,
                            struct bgr_error *err)
{
    BGR_ASSERT(img);
    return item_finish(s, item_id, acct, img, NULL, NULL, now_ms, batch_done, err);
}

int bgr_store_item_fail(struct bgr_store *s, int64_t item_id, const char *code, const char *msg,
                        int64_t now_ms, bool *batch_done, struct bgr_error *err)
{
    return item_finish(s, item_id, NULL, NULL, code ? code : "INTERNAL_ERROR", msg ? msg : "",
                       now_ms, batch_done, err);
}

int bgr_store_recent_processing_ms(struct bgr_store *s, int n, int64_t *mean_ms,
                                   struct bgr_error *err)
{
    struct bgr_db *db = bgr_st_acquire(s);
    struct bgr_db_stmt *st = NULL;
    int rc = bgr_st_prepare(db,
                            "SELECT COALESCE(AVG(processing_ms), 0) FROM (SELECT processing_ms"
                            " FROM images ORDER BY created_at DESC LIMIT ?) AS recent",
                            &st, err);
    if (rc)
        goto out;
    bgr_db_bind_int64(st, 1, n > 0 ? n : 20);
    if (bgr_db_step(st) == BGR_DB_ROW)
        *mean_ms = (int64_t)(bgr_db_col_double(st, 0) + 0.5);
    else
        rc = bgr_st_fail(db, err, "recent processing times");
out:
    bgr_db_finalize(st);
    bgr_st_release(s, db);
    return rc;
}
