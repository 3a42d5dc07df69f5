/*
 * images.c - stored results: the row that makes a result object exist for
 * the API, and the rules of its deletion, expiry and orphans.
 *
 * The store never touches the objects themselves (src/results does): it
 * says which objects must go, and records that they went. Order of effects:
 * the object is written first (by jobs) and the row committed after, so a
 * row never points to a missing object; a crash in between leaves an
 * orphan, never a broken result. On delete the row is marked first and the
 * object removed after by the caller; until the caller reports it gone
 * (bgr_store_image_purged) the sweeper keeps offering it for removal.
 */
#define _GNU_SOURCE
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IMAGE_COLS                                                                                 \
    "id, account_id, batch_id, path, format, ext, mime, sha256, width, height, orig_width,"        \
    " orig_height, size_bytes, processing_ms, credits, created_at, expires_at, deleted_at,"        \
    " confidence, subject_x, subject_y, subject_w, subject_h"

static void read_image(struct bgr_db_stmt *st, struct bgr_image *m)
{
    memset(m, 0, sizeof(*m));
    bgr_st_col_text(st, 0, m->id, sizeof(m->id));
    bgr_st_col_text(st, 1, m->account_id, sizeof(m->account_id));
    bgr_st_col_text(st, 2, m->batch_id, sizeof(m->batch_id));
    bgr_st_col_text(st, 3, m->path, sizeof(m->path));
    /* Rows written before the results module hold "results/<key>" (the
     * path under the data directory); the key is what follows. */
    if (strncmp(m->path, "results/", 8) == 0)
        memmove(m->path, m->path + 8, strlen(m->path + 8) + 1);
    bgr_st_col_text(st, 4, m->format, sizeof(m->format));
    bgr_st_col_text(st, 5, m->ext, sizeof(m->ext));
    bgr_st_col_text(st, 6, m->mime, sizeof(m->mime));
    bgr_st_col_text(st, 7, m->sha256, sizeof(m->sha256));
    m->width = bgr_db_col_int(st, 8);
    m->height = bgr_db_col_int(st, 9);
    m->original_width = bgr_db_col_int(st, 10);
    m->original_height = bgr_db_col_int(st, 11);
    m->size_bytes = bgr_db_col_int64(st, 12);
    m->processing_ms = bgr_db_col_int64(st, 13);
    m->credits = bgr_db_col_double(st, 14);
    m->created_at_ms = bgr_db_col_int64(st, 15);
    m->expires_at_ms = bgr_db_col_int64(st, 16);
    m->deleted_at_ms = bgr_db_col_int64(st, 17);
    m->confidence = bgr_db_col_double(st, 18);
    m->subject_x = bgr_db_col_int(st, 19);
    m->subject_y = bgr_db_col_int(st, 20);
    m->subject_w = bgr_db_col_int(st, 21);
    m->subject_h = bgr_db_col_int(st, 22);
}

int bgr_st_image_read(struct bgr_db *db, const char *id, struct bgr_image *out,
                      struct bgr_error *err)
{
    struct bgr_db_stmt *st = NULL;
    int rc = bgr_st_prepare(db, "SELECT " IMAGE_COLS " FROM images WHERE id = ?", &st, err);
    if (rc)
        return rc;
    bgr_db_bind_text(st, 1, id);
    rc = bgr_db_step(st);
    if (rc == BGR_DB_ROW) {
        read_image(st, out);
        rc = 0;
    } else if (rc == BGR_DB_DONE) {
        rc = bgr_error_set(err, BGR_ENOT_FOUND, "no such image");
    } else {
        rc = bgr_st_fail(db, err, "read image");
    }
    bgr_db_finalize(st);
    return rc;
}

int bgr_st_image_insert(struct bgr_db *db, const struct bgr_account *acct,
                        const struct bgr_image *m, struct bgr_error *err)
{
    struct bgr_db_stmt *st = NULL;
    int64_t day = bgr_day_from_ms(m->created_at_ms), first, last;
    double used = 0;
    int rc;

    BGR_ASSERT(strcmp(acct->id, m->account_id) == 0);
    if (m->credits > 0 && acct->plan.monthly_credits != BGR_UNLIMITED) {
        bgr_st_month_range(day, &first, &last);
        rc = bgr_st_credits_used_exact(db, acct->id, first, last, &used, err);
        if (rc)
            return rc;
        if (used + m->credits > (double)acct->plan.monthly_credits + 1e-9)
            return bgr_store_err_credits_spent(acct, day * 86400000, err);
    }
    rc = bgr_st_prepare(db,
                        "INSERT INTO images(" IMAGE_COLS ", day)"
                        " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        &st, err);
    if (rc)
        return rc;
    bgr_db_bind_text(st, 1, m->id);
    bgr_db_bind_text(st, 2, m->account_id);
    bgr_db_bind_text(st, 3, m->batch_id);
    bgr_db_bind_text(st, 4, m->path);
    bgr_db_bind_text(st, 5, m->format);
    bgr_db_bind_text(st, 6, m->ext);
    bgr_db_bind_text(st, 7, m->mime);
    bgr_db_bind_text(st, 8, m->sha256);
    bgr_db_bind_int64(st, 9, m->width);
    bgr_db_bind_int64(st, 10, m->height);
    bgr_db_bind_int64(st, 11, m->original_width);
    bgr_db_bind_int64(st, 12, m->original_height);
    bgr_db_bind_int64(st, 13, m->size_bytes);
    bgr_db_bind_int64(st, 14, m->processing_ms);
    /* Whole charges stay INTEGER; a fractional one is stored as REAL (the
     * column's INTEGER affinity keeps a non-integral value as is). */
    if (m->credits == (double)(int64_t)m->credits)
        bgr_db_bind_int64(st, 15, (int64_t)m->credits);
    else
        bgr_db_bind_double(st, 15, m->credits);
    bgr_db_bind_int64(st, 16, m->created_at_ms);
    bgr_db_bind_int64(st, 17, m->expires_at_ms);
    bgr_db_bind_int64(st, 18, m->deleted_at_ms);
    bgr_db_bind_double(st, 19, m->confidence);
    bgr_db_bind_int64(st, 20, m->subject_x);
    bgr_db_bind_int64(st, 21, m->subject_y);
    bgr_db_bind_int64(st, 22, m->subject_w);
    bgr_db_bind_int64(st, 23, m->subject_h);
    bgr_db_bind_int64(st, 24, day);
    if (bgr_db_step(st) != BGR_DB_DONE)
        rc = bgr_st_fail(db, err, "insert image");
    bgr_db_finalize(st);
    return rc;
}

/* An account deleted (`accounts delete`) while its request ran must not
 * get a result row its deletion has missed: BGR_EUNAUTHORIZED, as its key
 * now is. Inside the caller's write transaction, which the delete's also is. */
static int account_exists(struct bgr_store *s, struct bgr_db *db, const char *id,
                          struct bgr_error *err)
{
    struct bgr_db_stmt *st = NULL;
    int rc = bgr_st_prepare_cached(s, db, "SELECT 1 FROM accounts WHERE id = ?", &st, err);
    if (rc)
        return rc;
    bgr_db_bind_text(st, 1, id);
    switch (bgr_db_step(st)) {
    case BGR_DB_ROW:
        break;
    case BGR_DB_DONE:
        rc = bgr_error_set(err, BGR_EUNAUTHORIZED, "the account was deleted");
        break;
    default:
        rc = bgr_st_fail(db, err, "check account");
    }
    bgr_st_cached_done(st);
    return rc;
}

int bgr_st_result_commit(struct bgr_store *s, struct bgr_db *db, const struct bgr_account *acct,
                         const struct bgr_image *img, const struct bgr_webhook_new *wh,
                         struct bgr_error *err)
{
    int rc = account_exists(s, db, acct->id, err);
    if (!rc)
        rc = bgr_st_image_insert(db, acct, img, err);
    if (!rc && wh)
        rc = bgr_st_outbox_insert(db, acct->id, wh, img->created_at_ms, err);
    return rc;
}

int bgr_store_image_add(struct bgr_store *s, const struct bgr_account *acct,
                        const struct bgr_image *img, const struct bgr_webhook_new *wh,
                        struct bgr_error *err)
{
    struct bgr_db *db = bgr_st_acquire(s);
    int rc = bgr_st_begin(db, err);
    if (!rc)
        rc = bgr_st_result_commit(s, db, acct, img, wh, err);
    if (!rc)
        rc = bgr_st_commit(db, err);
    bgr_st_release(s, db); /* rolls back on error */
    return rc;
}

static bool image_live(const struct bgr_image *m, int64_t now_ms)
{
    return m->deleted_at_ms == 0 && m->expires_at_ms > now_ms;
}

int bgr_store_image_get(struct bgr_store *s, const char *id, const char *account_id, int64_t now_ms,
                        struct bgr_image *out, struct bgr_error *err)
{
    struct bgr_image m = {0};
    struct bgr_db *db = bgr_st_acquire(s);
    int rc = bgr_st_image_read(db, id, &m, err);
    bgr_st_release(s, db);
    if (rc)
        return rc;
    if (!image_live(&m, now_ms) || (account_id && strcmp(account_id, m.account_id) != 0))
        return bgr_error_set(err, BGR_ENOT_FOUND, "no such image");
    *out = m;
    return 0;
}

int bgr_store_images_list(struct bgr_store *s, const char *account_id, const char *batch_id,
                          const struct bgr_image_cursor *after, int64_t now_ms,
                          struct bgr_image *out, int max, int *n, bool *more, struct bgr_error *err)
{
    struct bgr_db_stmt *st = NULL;
    int count = 0, rc;
    bool older = false;
    BGR_ASSERT(max >= 1 && max <= 1000);
    /* images_account_day narrows to the account; the sort is over its live
     * results only, which retention keeps bounded. */
    struct bgr_db *db = bgr_st_acquire(s);
    rc = bgr_st_prepare(db,
                        "SELECT " IMAGE_COLS " FROM images WHERE account_id = ?1"
                        " AND deleted_at = 0 AND expires_at > ?2 AND (?3 = '' OR batch_id = ?3)"
                        " AND (?4 < 0 OR created_at < ?4 OR (created_at = ?4 AND id < ?5))"
                        " ORDER BY created_at DESC, id DESC LIMIT ?6",
                        &st, err);
    if (rc)
        goto done;
    bgr_db_bind_text(st, 1, account_id);
    bgr_db_bind_int64(st, 2, now_ms);
    bgr_db_bind_text(st, 3, batch_id ? batch_id : "");
    bgr_db_bind_int64(st, 4, after ? after->created_at_ms : -1);
    bgr_db_bind_text(st, 5, after ? after->id : "");
    bgr_db_bind_int64(st, 6, max + 1); /* one more than asked: is there a next page? */
    while ((rc = bgr_db_step(st)) == BGR_DB_ROW) {
        if (count == max) {
            older = true;
            break;
        }
        read_image(st, &out[count++]);
    }
    if (rc != BGR_DB_ROW && rc != BGR_DB_DONE) {
        rc = bgr_st_fail(db, err, "list images");
        goto done;
    }
    rc = 0;
    *n = count;
    *more = older;
done:
    bgr_db_finalize(st);
    bgr_st_release(s, db);
    return rc;
}

static int mark_purged(struct bgr_db *db, const char *id, int64_t now_ms, struct bgr_error *err)
{
    struct bgr_db_stmt *st = NULL;
    int rc = bgr_st_prepare(db, "UPDATE images SET purged_at = ? WHERE id = ?", &st, err);
    if (rc)
        return rc;
    bgr_db_bind_int64(st, 1, now_ms > 0 ? now_ms : 1);
    bgr_db_bind_text(st, 2, id);
    if (bgr_db_step(st) != BGR_DB_DONE)
        rc = bgr_st_fail(db, err, "mark image purged");
    bgr_db_finalize(st);
    return rc;
}

int bgr_store_image_delete(struct bgr_store *s, const char *account_id, const char *id,
                           int64_t now_ms, struct bgr_image *out, struct bgr_error *err)
{
    struct bgr_image m = {0};
    struct bgr_db *db = bgr_st_acquire(s);
    struct bgr_db_stmt *st = NULL;
    int rc = bgr_st_begin(db, err);
    if (rc)
        goto out;
    rc = bgr_st_image_read(db, id, &m, err);
    if (rc)
        goto out;
    if (!image_live(&m, now_ms) || strcmp(account_id, m.account_id) != 0) {
        rc = bgr_error_set(err, BGR_ENOT_FOUND, "no such image");
        goto out;
    }
    rc = bgr_st_prepare(db, "UPDATE images SET deleted_at = ? WHERE id = ?", &st, err);
    if (rc)
        goto out;
    m.deleted_at_ms = now_ms > 0 ? now_ms : 1;
    bgr_db_bind_int64(st, 1, m.deleted_at_ms);
    bgr_db_bind_text(st, 2, id);
    if (bgr_db_step(st) != BGR_DB_DONE) {
        rc = bgr_st_fail(db, err, "delete image");
        goto out;
    }
    rc = bgr_st_commit(db, err);
out:
    bgr_db_finalize(st);
    bgr_st_release(s, db);
    if (!rc)
        *out = m;
    return rc;
}

int bgr_store_image_purged(struct bgr_store *s, const char *id, int64_t now_ms,
                           struct bgr_error *err)
{
    struct bgr_db *db = bgr_st_acquire(s);
    int rc = mark_purged(db, id, now_ms, err);
    bgr_st_release(s, db);
    return rc;
}

int bgr_store_images_to_purge(struct bgr_store *s, int64_t now_ms, int limit,
                              struct bgr_image_ref **out, size_t *n_out, struct bgr_error *err)
{
    struct bgr_image_ref *rows = NULL;
    size_t n = 0;
    int rc;
    struct bgr_db *db = bgr_st_acquire(s);
    struct bgr_db_stmt *st = NULL;

    if (limit <= 0)
        limit = 500;
    rows = bgr_xcalloc((size_t)limit, sizeof(*rows));
    rc = bgr_st_prepare(db,
                        "SELECT id, path FROM images WHERE purged_at = 0"
                        " AND (expires_at <= ? OR deleted_at != 0) LIMIT ?",
                        &st, err);
    if (rc)
        goto out;
    bgr_db_bind_int64(st, 1, now_ms);
    bgr_db_bind_int64(st, 2, limit);
    while (n < (size_t)limit) {
        int step = bgr_db_step(st);
        if (step == BGR_DB_DONE)
            break;
        if (step != BGR_DB_ROW) {
            rc = bgr_st_fail(db, err, "find expired images");
            goto out;
        }
        bgr_st_col_text(st, 0, rows[n].id, sizeof(rows[n].id));
        bgr_st_col_text(st, 1, rows[n].key, sizeof(rows[n].key));
        if (strncmp(rows[n].key, "results/", 8) == 0) /* see read_image */
            memmove(rows[n].key, rows[n].key + 8, strlen(rows[n].key + 8) + 1);
        n++;
    }
out:
    bgr_db_finalize(st);
    bgr_st_release(s, db);
    if (rc) {
        free(rows);
        return rc;
    }
    *out = rows;
    *n_out = n;
    return 0;
}

int bgr_store_image_needs_object(struct bgr_store *s, const char *id, bool *needed,
                                 struct bgr_error *err)
{
    struct bgr_db *db = bgr_st_acquire(s);
    struct bgr_db_stmt *st = NULL;
    int rc = bgr_st_prepare(db, "SELECT purged_at FROM images WHERE id = ?", &st, err);
    if (rc)
        goto out;
    bgr_db_bind_text(st, 1, id);
    switch (bgr_db_step(st)) {
    case BGR_DB_ROW:
        *needed = bgr_db_col_int64(st, 0) == 0;
        break;
    case BGR_DB_DONE:
        *needed = false; /* no row: a commit that never happened */
        break;
    default:
        rc = bgr_st_fail(db, err, "look up an image");
        break;
    }
out:
    bgr_db_finalize(st);
    bgr_st_release(s, db);
    return rc;
}

int bgr_store_err_credits_spent(const struct bgr_account *acct, int64_t now_ms,
                                struct bgr_error *err)
{
    int64_t first, last;
    char renew[11];
    long long n = (long long)acct->plan.monthly_credits;
    bgr_st_month_range(bgr_day_from_ms(now_ms), &first, &last);
    bgr_day_format(last + 1, renew);
    return bgr_error_set(err, BGR_EINSUFFICIENT_CREDITS,
                         "This month's %lld credit%s (%s plan) %s used up; %s on %s", n,
                         n == 1 ? "" : "s", acct->plan.name, n == 1 ? "is" : "are",
                         n == 1 ? "it renews" : "they renew", renew);
}
