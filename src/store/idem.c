/*
 * idem.c - idempotency keys: one row per (account, key) that remembers the
 * request's fingerprint and, once it succeeded, the answer to replay.
 *
 * The rules (store.h, "idempotency keys") are decided here in one write
 * transaction, so two requests with the same key that arrive at once (on
 * one node or, with a shared database, on two) cannot both run: the second
 * finds the first's row. A row whose request never finished (the process
 * died) is taken over once its claim is older than the lease.
 *
 * This file does not decide what is worth remembering (the API layer
 * completes a row for a success and releases it otherwise).
 */
#include "store/store_int.h"

#include <stdlib.h>
#include <string.h>

enum { IDEM_RUNNING = 0, IDEM_DONE = 1 };

void bgr_idem_response_release(struct bgr_idem_response *r)
{
    if (!r)
        return;
    free(r->headers);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

/* Copies the stored answer of a done row (columns 3..6 of the claim's
 * SELECT) into *out. */
static void read_answer(struct bgr_db_stmt *st, struct bgr_idem_response *out)
{
    size_t len = 0;
    const void *body = bgr_db_col_blob(st, 6, &len);
    const char *h = bgr_db_col_text(st, 5);
    memset(out, 0, sizeof(*out));
    out->status = bgr_db_col_int(st, 3);
    bgr_st_col_text(st, 4, out->content_type, sizeof(out->content_type));
    out->headers = bgr_xstrdup(h ? h : "");
    out->body = bgr_xmalloc(len ? len : 1);
    if (len)
        memcpy(out->body, body, len);
    out->len = len;
}

int bgr_store_idem_claim(struct bgr_store *s, const char *account_id, const char *key,
                         const uint8_t fingerprint[32], int64_t now_ms, int64_t lease_ms,
                         enum bgr_idem_state *state, struct bgr_idem_response *replay,
                         struct bgr_error *err)
{
    struct bgr_db *db = bgr_st_acquire(s);
    struct bgr_db_stmt *st = NULL;
    enum bgr_idem_state got = BGR_IDEM_NEW;
    bool take = true; /* insert or take over the row */
    int rc = bgr_st_begin(db, err);
    if (rc)
        goto out;
    rc = bgr_st_prepare(db,
                        "SELECT fingerprint, state, claimed_at, status, content_type, headers,"
                        " body, expires_at FROM idempotency WHERE account_id = ? AND key = ?",
                        &st, err);
    if (rc)
        goto out;
    bgr_db_bind_text(st, 1, account_id);
    bgr_db_bind_text(st, 2, key);
    int step = bgr_db_step(st);
    if (step == BGR_DB_ROW && bgr_db_col_int64(st, 7) > now_ms) {
        size_t fl = 0;
        const void *fp = bgr_db_col_blob(st, 0, &fl);
        bool same = fl == 32 && memcmp(fp, fingerprint, 32) == 0;
        int row_state = bgr_db_col_int(st, 1);
        take = false;
        if (!same) {
            got = BGR_IDEM_REUSED;
        } else if (row_state == IDEM_DONE) {
            got = BGR_IDEM_REPLAY;
            read_answer(st, replay);
        } else if (bgr_db_col_int64(st, 2) + lease_ms > now_ms) {
            got = BGR_IDEM_IN_PROGRESS;
        } else {
            take = true; /* its request died with its process: run it again */
        }
    } else if (step != BGR_DB_ROW && step != BGR_DB_DONE) {
        rc = bgr_st_fail(db, err, "read idempotency key");
        goto out;
    }
    bgr_db_finalize(st);
    st = NULL;
    if (take) {
        /* new, expired, or abandoned: this request holds the key now */
        rc = bgr_st_prepare(db,
                            "INSERT INTO idempotency(account_id, key, fingerprint, state,"
                            " claimed_at, status, content_type, headers, body, expires_at)"
                            " VALUES(?,?,?,0,?,0,'','',NULL,?)"
                            " ON CONFLICT(account_id, key) DO UPDATE SET"
                            " fingerprint = excluded.fingerprint, state = 0,"
                            " claimed_at = excluded.claimed_at, status = 0, content_type = '',"
                            " headers = '', body = NULL, expires_at = excluded.expires_at",
                            &st, err);
        if (rc)
            goto out;
        bgr_db_bind_text(st, 1, account_id);
        bgr_db_bind_text(st, 2, key);
        bgr_db_bind_blob(st, 3, fingerprint, 32);
        bgr_db_bind_int64(st, 4, now_ms);
        /* a running row lives as long as a done one would (24 h), so the
         * sweeper never removes a key under a request still running */
        bgr_db_bind_int64(st, 5, now_ms + BGR_IDEM_TTL_MS);
        if (bgr_db_step(st) != BGR_DB_DONE) {
            rc = bgr_st_fail(db, err, "claim idempotency key");
            goto out;
        }
    }
    rc = bgr_st_commit(db, err);
out:
    bgr_db_finalize(st);
    if (rc) {
        bgr_st_rollback(db);
        if (got == BGR_IDEM_REPLAY)
            bgr_idem_response_release(replay);
    }
    bgr_st_release(s, db);
    if (!rc)
        *state = got;
    return rc;
}

int bgr_store_idem_complete(struct bgr_store *s, const char *account_id, const char *key,
                            int64_t now_ms, const struct bgr_idem_response *r,
                            struct bgr_error *err)
{
    struct bgr_db *db = bgr_st_acquire(s);
    struct bgr_db_stmt *st = NULL;
    int rc = bgr_st_prepare(db,
                            "UPDATE idempotency SET state = 1, status = ?, content_type = ?,"
                            " headers = ?, body = ?, expires_at = ?"
                            " WHERE account_id = ? AND key = ? AND state = 0",
                            &st, err);
    if (rc)
        goto out;
    bgr_db_bind_int64(st, 1, r->status);
    bgr_db_bind_text(st, 2, r->content_type);
    bgr_db_bind_text(st, 3, r->headers ? r->headers : "");
    bgr_db_bind_blob(st, 4, r->body ? (const void *)r->body : "", r->len);
    bgr_db_bind_int64(st, 5, now_ms + BGR_IDEM_TTL_MS);
    bgr_db_bind_text(st, 6, account_id);
    bgr_db_bind_text(st, 7, key);
    if (bgr_db_step(st) != BGR_DB_DONE)
        rc = bgr_st_fail(db, err, "complete idempotency key");
out:
    bgr_db_finalize(st);
    bgr_st_release(s, db);
    return rc;
}

int bgr_store_idem_release(struct bgr_store *s, const char *account_id, const char *key,
                           struct bgr_error *err)
{
    struct bgr_db *db = bgr_st_acquire(s);
    struct bgr_db_stmt *st = NULL;
    int rc = bgr_st_prepare(db,
                            "DELETE FROM idempotency WHERE account_id = ? AND key = ?"
                            " AND state = 0",
                            &st, err);
    if (!rc) {
        bgr_db_bind_text(st, 1, account_id);
        bgr_db_bind_text(st, 2, key);
        if (bgr_db_step(st) != BGR_DB_DONE)
            rc = bgr_st_fail(db, err, "release idempotency key");
    }
    bgr_db_finalize(st);
    bgr_st_release(s, db);
    return rc;
}

int bgr_store_idem_sweep(struct bgr_store *s, int64_t now_ms, int *n_removed, struct bgr_error *err)
{
    struct bgr_db *db = bgr_st_acquire(s);
    struct bgr_db_stmt *st = NULL;
    int rc = bgr_st_prepare(db, "DELETE FROM idempotency WHERE expires_at <= ?", &st, err);
    if (!rc) {
        bgr_db_bind_int64(st, 1, now_ms);
        if (bgr_db_step(st) != BGR_DB_DONE)
            rc = bgr_st_fail(db, err, "sweep idempotency keys");
        else if (n_removed)
            *n_removed = bgr_db_changes(db);
    }
    bgr_db_finalize(st);
    bgr_st_release(s, db);
    return rc;
}
