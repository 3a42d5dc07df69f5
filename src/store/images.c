/*
 * images.c - stored results: the row that makes a result file exist for
 * the API, its deletion and its expiry.
 *
 * Order of effects: the file is written first (by jobs, atomically) and the
 * row committed after, so a row never points to a missing file; a crash in
 * between leaves an orphan file, never a broken result. On delete the row is
 * marked first and the file removed after; a failed removal is retried by
 * the sweeper (purged_at stays 0 until the file is gone).
 */
#define _GNU_SOURCE
#include "store/store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define IMAGE_COLS                                                                                 \
    "id, account_id, batch_id, path, format, ext, mime, sha256, width, height, orig_width,"        \
    " orig_height, size_bytes, processing_ms, credits, created_at, expires_at, deleted_at"

static void read_image(sqlite3_stmt *st, struct bgr_image *m)
{
    memset(m, 0, sizeof(*m));
    bgr_st_col_text(st, 0, m->id, sizeof(m->id));
    bgr_st_col_text(st, 1, m->account_id, sizeof(m->account_id));
    bgr_st_col_text(st, 2, m->batch_id, sizeof(m->batch_id));
    bgr_st_col_text(st, 3, m->path, sizeof(m->path));
    bgr_st_col_text(st, 4, m->format, sizeof(m->format));
    bgr_st_col_text(st, 5, m->ext, sizeof(m->ext));
    bgr_st_col_text(st, 6, m->mime, sizeof(m->mime));
    bgr_st_col_text(st, 7, m->sha256, sizeof(m->sha256));
    m->width = sqlite3_column_int(st, 8);
    m->height = sqlite3_column_int(st, 9);
    m->original_width = sqlite3_column_int(st, 10);
    m->original_height = sqlite3_column_int(st, 11);
    m->size_bytes = sqlite3_column_int64(st, 12);
    m->processing_ms = sqlite3_column_int64(st, 13);
    m->credits = sqlite3_column_double(st, 14);
    m->created_at_ms = sqlite3_column_int64(st, 15);
    m->expires_at_ms = sqlite3_column_int64(st, 16);
    m->deleted_at_ms = sqlite3_column_int64(st, 17);
}

int bgr_st_image_read(sqlite3 *db, const char *id, struct bgr_image *out, struct bgr_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = bgr_st_prepare(db, "SELECT " IMAGE_COLS " FROM images WHERE id = ?", &st, err);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        read_image(st, out);
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        rc = bgr_error_set(err, BGR_ENOT_FOUND, "no such image");
    } else {
        rc = bgr_st_fail(db, err, "read image");
    }
    sqlite3_finalize(st);
    return rc;
}

int bgr_st_image_insert(sqlite3 *db, const struct bgr_account *acct, const struct bgr_image *m,
                        struct bgr_error *err)
{
    sqlite3_stmt *st = NULL;
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
            return bgr_error_set(err, BGR_EINSUFFICIENT_CREDITS,
                                 "all %lld credits of this month are used",
                                 (long long)acct->plan.monthly_credits);
    }
    rc = bgr_st_prepare(db,
                        "INSERT INTO images(" IMAGE_COLS ", day)"
                        " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        &st, err);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, m->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, m->account_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, m->batch_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, m->path, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, m->format, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, m->ext, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, m->mime, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, m->sha256, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 9, m->width);
    sqlite3_bind_int(st, 10, m->height);
    sqlite3_bind_int(st, 11, m->original_width);
    sqlite3_bind_int(st, 12, m->original_height);
    sqlite3_bind_int64(st, 13, m->size_bytes);
    sqlite3_bind_int64(st, 14, m->processing_ms);
    /* Whole charges stay INTEGER; a fractional one is stored as REAL (the
     * column's INTEGER affinity keeps a non-integral value as is). */
    if (m->credits == (double)(int64_t)m->credits)
        sqlite3_bind_int64(st, 15, (int64_t)m->credits);
    else
        sqlite3_bind_double(st, 15, m->credits);
    sqlite3_bind_int64(st, 16, m->created_at_ms);
    sqlite3_bind_int64(st, 17, m->expires_at_ms);
    sqlite3_bind_int64(st, 18, m->deleted_at_ms);
    sqlite3_bind_int64(st, 19, day);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = bgr_st_fail(db, err, "insert image");
    sqlite3_finalize(st);
    return rc;
}

int bgr_store_image_add(struct bgr_store *s, const struct bgr_account *acct,
                        const struct bgr_image *img, const struct bgr_webhook_new *wh,
                        struct bgr_error *err)
{
    sqlite3 *db = bgr_st_acquire(s);
    int rc = bgr_st_begin(db, err);
    if (!rc)
        rc = bgr_st_image_insert(db, acct, img, err);
    if (!rc && wh)
        rc = bgr_st_outbox_insert(db, acct->id, wh, img->created_at_ms, err);
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
    sqlite3 *db = bgr_st_acquire(s);
    int rc = bgr_st_image_read(db, id, &m, err);
    bgr_st_release(s, db);
    if (rc)
        return rc;
    if (!image_live(&m, now_ms) || (account_id && strcmp(account_id, m.account_id) != 0))
        return bgr_error_set(err, BGR_ENOT_FOUND, "no such image");
    *out = m;
    return 0;
}

/* Removes data_dir/rel; a file already gone counts as removed. */
static bool remove_file(struct bgr_store *s, const char *rel)
{
    char *path = NULL;
    bool ok;
    /* Paths are written by us ("results/<id>.<ext>"); refuse anything else
     * so a corrupt row cannot delete outside the results directory. */
    if (strncmp(rel, "results/", 8) != 0 || strstr(rel, ".."))
        return true;
    if (asprintf(&path, "%s/%s", s->data_dir, rel) < 0)
        return false;
    ok = unlink(path) == 0 || errno == ENOENT;
    if (!ok)
        bgr_log(BGR_LOG_WARN, "store: cannot remove %s: %s", path, strerror(errno));
    free(path);
    return ok;
}

static int mark_purged(sqlite3 *db, const char *id, int64_t now_ms, struct bgr_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = bgr_st_prepare(db, "UPDATE images SET purged_at = ? WHERE id = ?", &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, now_ms > 0 ? now_ms : 1);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = bgr_st_fail(db, err, "mark image purged");
    sqlite3_finalize(st);
    return rc;
}

int bgr_store_image_delete(struct bgr_store *s, const char *account_id, const char *id,
                           int64_t now_ms, struct bgr_image *out, struct bgr_error *err)
{
    struct bgr_image m = {0};
    sqlite3 *db = bgr_st_acquire(s);
    sqlite3_stmt *st = NULL;
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
    sqlite3_bind_int64(st, 1, m.deleted_at_ms);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = bgr_st_fail(db, err, "delete image");
        goto out;
    }
    rc = bgr_st_commit(db, err);
    if (rc)
        goto out;
    /* Committed: the URL is dead now. Remove the bytes; if that fails the
     * sweeper retries (purged_at stays 0). */
    if (remove_file(s, m.path))
        (void)mark_purged(db, m.id, now_ms, NULL);
out:
    sqlite3_finalize(st);
    bgr_st_release(s, db);
    if (!rc)
        *out = m;
    return rc;
}

int bgr_store_images_sweep(struct bgr_store *s, int64_t now_ms, int limit, int *n_purged,
                           struct bgr_error *err)
{
    struct {
        char id[BGR_ID_MAX];
        char path[96];
    } *rows = NULL;
    int n = 0, purged = 0, rc;
    sqlite3 *db = bgr_st_acquire(s);
    sqlite3_stmt *st = NULL;

    if (limit <= 0)
        limit = 500;
    rows = bgr_xcalloc((size_t)limit, sizeof(*rows));
    rc = bgr_st_prepare(db,
                        "SELECT id, path FROM images WHERE purged_at = 0"
                        " AND (expires_at <= ? OR deleted_at != 0) LIMIT ?",
                        &st, err);
    if (rc)
        goto out;
    sqlite3_bind_int64(st, 1, now_ms);
    sqlite3_bind_int(st, 2, limit);
    while (n < limit) {
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            rc = bgr_st_fail(db, err, "find expired images");
            goto out;
        }
        bgr_st_col_text(st, 0, rows[n].id, sizeof(rows[n].id));
        bgr_st_col_text(st, 1, rows[n].path, sizeof(rows[n].path));
        n++;
    }
    sqlite3_finalize(st);
    st = NULL;
    for (int i = 0; i < n && !rc; i++) {
        if (!remove_file(s, rows[i].path))
            continue;
        rc = mark_purged(db, rows[i].id, now_ms, err);
        if (!rc)
            purged++;
    }
out:
    sqlite3_finalize(st);
    bgr_st_release(s, db);
    free(rows);
    if (!rc && n_purged)
        *n_purged = purged;
    return rc;
}

/* Whether results/<name> belongs to a live (not purged) row. */
static bool owned(sqlite3 *db, const char *name)
{
    char id[BGR_ID_MAX];
    const char *dot = strchr(name, '.');
    size_t n = dot ? (size_t)(dot - name) : strlen(name);
    sqlite3_stmt *st = NULL;
    bool yes = true; /* when in doubt, keep */
    if (strstr(name, ".tmp.") || strncmp(name, "img_", 4) != 0 || n >= sizeof(id))
        return false;
    memcpy(id, name, n);
    id[n] = 0;
    if (bgr_st_prepare(db, "SELECT purged_at FROM images WHERE id = ?", &st, NULL) != 0)
        return true;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    switch (sqlite3_step(st)) {
    case SQLITE_ROW:
        yes = sqlite3_column_int64(st, 0) == 0;
        break;
    case SQLITE_DONE:
        yes = false;
        break;
    default:
        break;
    }
    sqlite3_finalize(st);
    return yes;
}

int bgr_store_orphans_sweep(struct bgr_store *s, int64_t now_ms, int64_t min_age_ms, int *n_removed,
                            struct bgr_error *err)
{
    char *dir = NULL;
    DIR *d;
    struct dirent *de;
    sqlite3 *db;
    int removed = 0;
    if (asprintf(&dir, "%s/results", s->data_dir) < 0)
        return bgr_error_set(err, BGR_ENOMEM, "out of memory");
    d = opendir(dir);
    if (!d) {
        int rc = bgr_error_set(err, BGR_EIO, "store: cannot list %s: %s", dir, strerror(errno));
        free(dir);
        return rc;
    }
    db = bgr_st_acquire(s);
    while ((de = readdir(d)) != NULL) {
        struct stat sb;
        if (de->d_name[0] == '.' &&
            (de->d_name[1] == 0 || (de->d_name[1] == '.' && de->d_name[2] == 0)))
            continue;
        if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode))
            continue;
        if (now_ms - (int64_t)sb.st_mtime * 1000 < min_age_ms || owned(db, de->d_name))
            continue;
        if (unlinkat(dirfd(d), de->d_name, 0) == 0)
            removed++;
    }
    bgr_st_release(s, db);
    closedir(d);
    free(dir);
    if (n_removed)
        *n_removed = removed;
    return 0;
}
