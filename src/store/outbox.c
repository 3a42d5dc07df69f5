/*
 * outbox.c - the persistent webhook outbox. Rows are written in the
 * transaction of the state change they announce (result committed, batch
 * finished), so an event is announced if and only if it happened; the
 * deliverer in src/jobs reads due rows and records each attempt.
 */
#include "store/store_int.h"

#include <stdlib.h>
#include <string.h>

int bgr_st_outbox_insert(struct bgr_db *db, const char *account_id,
                         const struct bgr_webhook_new *wh, int64_t now_ms, struct bgr_error *err)
{
    char id[BGR_ID_MAX];
    struct bgr_db_stmt *st = NULL;
    int rc;
    if (!wh->url || !wh->event || strlen(wh->url) > BGR_URL_MAX)
        return bgr_error_set(err, BGR_EINVALID_PARAMETER, "webhook needs a url and an event");
    if (wh->event_id)
        bgr_st_copy(id, sizeof(id), wh->event_id);
    else
        bgr_store_new_id("evt_", id);
    rc = bgr_st_prepare(db,
                        "INSERT INTO outbox(event_id, ref, account_id, event, url, payload,"
                        " next_attempt_at, created_at) VALUES(?,?,?,?,?,?,?,?)",
                        &st, err);
    if (rc)
        return rc;
    bgr_db_bind_text(st, 1, id);
    bgr_db_bind_text(st, 2, wh->ref ? wh->ref : "");
    bgr_db_bind_text(st, 3, account_id);
    bgr_db_bind_text(st, 4, wh->event);
    bgr_db_bind_text(st, 5, wh->url);
    bgr_db_bind_text(st, 6, wh->payload ? wh->payload : "");
    bgr_db_bind_int64(st, 7, now_ms);
    bgr_db_bind_int64(st, 8, now_ms);
    if (bgr_db_step(st) != BGR_DB_DONE)
        rc = bgr_st_fail(db, err, "insert webhook");
    bgr_db_finalize(st);
    return rc;
}

int bgr_store_outbox_add(struct bgr_store *s, const char *account_id,
                         const struct bgr_webhook_new *wh, int64_t now_ms, struct bgr_error *err)
{
    struct bgr_db *db = bgr_st_acquire(s);
    int rc = bgr_st_outbox_insert(db, account_id, wh, now_ms, err);
    bgr_st_release(s, db);
    return rc;
}

void bgr_webhook_release(struct bgr_webhook *w)
{
    if (!w)
        return;
    BGR_FREE_AND_NULL(w->url);
    BGR_FREE_AND_NULL(w->payload);
}

#define OUTBOX_CLAIM_MS 120000 /* > one delivery attempt (its timeout is 10 s by default) */

#define OUTBOX_COLS                                                                                \
    "id, event_id, ref, account_id, event, url, payload, attempts, next_attempt_at, status,"       \
    " last_error, created_at"

static void read_webhook(struct bgr_db_stmt *st, struct bgr_webhook *w)
{
    memset(w, 0, sizeof(*w));
    w->row_id = bgr_db_col_int64(st, 0);
    bgr_st_col_text(st, 1, w->event_id, sizeof(w->event_id));
    bgr_st_col_text(st, 2, w->ref, sizeof(w->ref));
    bgr_st_col_text(st, 3, w->account_id, sizeof(w->account_id));
    bgr_st_col_text(st, 4, w->event, sizeof(w->event));
    w->url = bgr_xstrdup(bgr_db_col_text(st, 5));
    w->payload = bgr_xstrdup(bgr_db_col_text(st, 6));
    w->attempts = bgr_db_col_int(st, 7);
    w->next_attempt_ms = bgr_db_col_int64(st, 8);
    w->status = (enum bgr_webhook_status)bgr_db_col_int(st, 9);
    bgr_st_col_text(st, 10, w->last_error, sizeof(w->last_error));
    w->created_at_ms = bgr_db_col_int64(st, 11);
}

int bgr_store_outbox_due(struct bgr_store *s, int64_t now_ms, size_t max, struct bgr_webhook **out,
                         size_t *n, struct bgr_error *err)
{
    struct bgr_webhook *v = bgr_xcalloc(max ? max : 1, sizeof(*v));
    size_t len = 0;
    struct bgr_db *db = bgr_st_acquire(s);
    struct bgr_db_stmt *st = NULL;
    /* Shared store: every node's deliverer asks, so each row it gets is
     * claimed for OUTBOX_CLAIM_MS (its next attempt moved past the time one
     * delivery can take; the result sets it for real) under a row lock the
     * others skip: each event goes out from one node, and a node that dies
     * mid-delivery leaves it due again when the claim runs out. */
    int rc = bgr_st_prepare(
        db,
        s->kind == BGR_DB_PG
            ? "UPDATE outbox SET next_attempt_at = ?3 WHERE id IN (SELECT id FROM outbox"
              " WHERE status = 0 AND next_attempt_at <= ?1 ORDER BY next_attempt_at, id"
              " LIMIT ?2 FOR UPDATE SKIP LOCKED) RETURNING " OUTBOX_COLS
            : "SELECT " OUTBOX_COLS " FROM outbox WHERE status = 0"
              " AND next_attempt_at <= ?1 ORDER BY next_attempt_at, id LIMIT ?2",
        &st, err);
    if (!rc) {
        bgr_db_bind_int64(st, 1, now_ms);
        bgr_db_bind_int64(st, 2, (int64_t)max);
        bgr_db_bind_int64(st, 3, now_ms + OUTBOX_CLAIM_MS);
    }
    while (!rc && len < max) {
        int step = bgr_db_step(st);
        if (step == BGR_DB_DONE)
            break;
        if (step != BGR_DB_ROW) {
            rc = bgr_st_fail(db, err, "read due webhooks");
            break;
        }
        read_webhook(st, &v[len++]);
    }
    bgr_db_finalize(st);
    bgr_st_release(s, db);
    if (rc) {
        for (size_t i = 0; i < len; i++)
            bgr_webhook_release(&v[i]);
        free(v);
        return rc;
    }
    *out = v;
    *n = len;
    return 0;
}

int bgr_store_outbox_result(struct bgr_store *s, int64_t row_id, bool delivered,
                            int64_t next_attempt_ms, const char *error, struct bgr_error *err)
{
    struct bgr_db *db = bgr_st_acquire(s);
    struct bgr_db_stmt *st = NULL;
    int status = delivered             ? BGR_WH_DELIVERED
                 : next_attempt_ms > 0 ? BGR_WH_PENDING
                                       : BGR_WH_FAILED;
    int rc = bgr_st_prepare(db,
                            "UPDATE outbox SET attempts = attempts + 1, status = ?,"
                            " next_attempt_at = ?, last_error = ? WHERE id = ?",
                            &st, err);
    if (rc)
        goto out;
    bgr_db_bind_int64(st, 1, status);
    bgr_db_bind_int64(st, 2, next_attempt_ms);
    bgr_db_bind_text(st, 3, error ? error : "");
    bgr_db_bind_int64(st, 4, row_id);
    if (bgr_db_step(st) != BGR_DB_DONE)
        rc = bgr_st_fail(db, err, "record webhook attempt");
out:
    bgr_db_finalize(st);
    bgr_st_release(s, db);
    return rc;
}

int bgr_store_outbox_set_payload(struct bgr_store *s, int64_t row_id, const char *payload,
                                 struct bgr_error *err)
{
    struct bgr_db *db = bgr_st_acquire(s);
    struct bgr_db_stmt *st = NULL;
    int rc =
        bgr_st_prepare(db, "UPDATE outbox SET payload = ? WHERE id = ? AND payload = ''", &st, err);
    if (rc)
        goto out;
    bgr_db_bind_text(st, 1, payload);
    bgr_db_bind_int64(st, 2, row_id);
    if (bgr_db_step(st) != BGR_DB_DONE)
        rc = bgr_st_fail(db, err, "store webhook payload");
out:
    bgr_db_finalize(st);
    bgr_st_release(s, db);
    return rc;
}

int bgr_store_outbox_get(struct bgr_store *s, const char *event_id, struct bgr_webhook *out,
                         struct bgr_error *err)
{
    struct bgr_db *db = bgr_st_acquire(s);
    struct bgr_db_stmt *st = NULL;
    int rc = bgr_st_prepare(db, "SELECT " OUTBOX_COLS " FROM outbox WHERE event_id = ?", &st, err);
    if (rc)
        goto out;
    bgr_db_bind_text(st, 1, event_id);
    rc = bgr_db_step(st);
    if (rc == BGR_DB_ROW) {
        read_webhook(st, out);
        rc = 0;
    } else {
        rc = rc == BGR_DB_DONE ? bgr_error_set(err, BGR_ENOT_FOUND, "no such webhook")
                               : bgr_st_fail(db, err, "read webhook");
    }
out:
    bgr_db_finalize(st);
    bgr_st_release(s, db);
    return rc;
}

int bgr_store_outbox_next_due(struct bgr_store *s, int64_t *next_ms, struct bgr_error *err)
{
    struct bgr_db *db = bgr_st_acquire(s);
    struct bgr_db_stmt *st = NULL;
    int rc = bgr_st_prepare(db,
                            "SELECT COALESCE(MIN(next_attempt_at), 0) FROM outbox"
                            " WHERE status = 0",
                            &st, err);
    if (rc)
        goto out;
    if (bgr_db_step(st) == BGR_DB_ROW)
        *next_ms = bgr_db_col_int64(st, 0);
    else
        rc = bgr_st_fail(db, err, "next webhook");
out:
    bgr_db_finalize(st);
    bgr_st_release(s, db);
    return rc;
}

int bgr_store_outbox_unclaim(struct bgr_store *s, const int64_t *row_ids, size_t n, int64_t now_ms,
                             struct bgr_error *err)
{
    struct bgr_db *db;
    struct bgr_db_stmt *st = NULL;
    int rc = 0;
    if (s->kind != BGR_DB_PG || n == 0)
        return 0; /* SQLite's read claims nothing */
    db = bgr_st_acquire(s);
    rc = bgr_st_prepare(db, "UPDATE outbox SET next_attempt_at = ? WHERE id = ? AND status = 0",
                        &st, err);
    for (size_t i = 0; !rc && i < n; i++) {
        bgr_db_bind_int64(st, 1, now_ms);
        bgr_db_bind_int64(st, 2, row_ids[i]);
        if (bgr_db_step(st) != BGR_DB_DONE)
            rc = bgr_st_fail(db, err, "unclaim webhook");
        bgr_db_reset(st);
    }
    bgr_db_finalize(st);
    bgr_st_release(s, db);
    return rc;
}
