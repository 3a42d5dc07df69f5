/*
 * accounts.c - accounts and API keys.
 *
 * A key is shown once, at creation; the database holds only its SHA-256 (so
 * a stolen database file yields no usable key) and a short display prefix
 * for lists and revocation. Keys carry 256 bits of OS randomness, so an
 * unsalted fast hash is enough: there is nothing to brute-force.
 */
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_PREFIX "bgr_live_"
#define KEY_RANDOM_CHARS 43 /* base62: 43 * 5.95 = 256 bits */
#define KEY_SHOWN_CHARS 8   /* of the random part, in the display prefix */
/* One message for a malformed, unknown or revoked key: the answer never
 * tells whether a key exists or was revoked. */
#define API_KEY_REFUSED "Invalid API key: it is not a key of this server, or it was revoked"

static int read_account(struct bgr_store *s, sqlite3_stmt *st, struct bgr_account *a,
                        struct bgr_error *err)
{
    char plan[BGR_PLAN_NAME_MAX];
    memset(a, 0, sizeof(*a));
    bgr_st_col_text(st, 0, a->id, sizeof(a->id));
    bgr_st_col_text(st, 1, a->email, sizeof(a->email));
    bgr_st_col_text(st, 2, plan, sizeof(plan));
    bgr_st_col_text(st, 3, a->webhook_secret, sizeof(a->webhook_secret));
    a->created_at_ms = sqlite3_column_int64(st, 4);
    /* A plan removed from the config since: the account keeps its name but
     * gets the first (most restrictive, by convention free) plan's limits. */
    if (!bgr_st_plan_find(s, plan, &a->plan)) {
        a->plan = s->plans[0];
        bgr_st_copy(a->plan.name, sizeof(a->plan.name), plan);
    }
    (void)err;
    return 0;
}

#define ACCOUNT_COLS "id, email, plan, webhook_secret, created_at"

static void new_secret(char out[BGR_SECRET_MAX])
{
    uint8_t r[32];
    bgr_random_bytes(r, sizeof(r));
    memcpy(out, "whsec_", 6);
    bgr_hex_encode(r, sizeof(r), out + 6);
}

int bgr_store_account_create(struct bgr_store *s, const char *email, const char *plan,
                             int64_t now_ms, struct bgr_account *out, struct bgr_error *err)
{
    struct bgr_account a = {0};
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    size_t elen = email ? strlen(email) : 0;
    int rc;

    if (elen == 0 || elen >= BGR_EMAIL_MAX || !strchr(email, '@') || strpbrk(email, " \t\r\n"))
        return bgr_error_set(err, BGR_EINVALID_PARAMETER, "not an email address");
    rc = bgr_store_plan_get(s, plan, &a.plan, err);
    if (rc)
        return rc;
    bgr_store_new_id("usr_", a.id);
    a.id[4 + 16] = 0; /* account ids are not secrets: 16 characters suffice */
    bgr_st_copy(a.email, sizeof(a.email), email);
    new_secret(a.webhook_secret);
    a.created_at_ms = now_ms;

    db = bgr_st_acquire(s);
    rc = bgr_st_prepare(db, "INSERT INTO accounts(" ACCOUNT_COLS ") VALUES(?,?,?,?,?)", &st, err);
    if (rc)
        goto out;
    sqlite3_bind_text(st, 1, a.id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, a.email, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, a.plan.name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, a.webhook_secret, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, a.created_at_ms);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = bgr_st_fail(db, err, "insert account");
out:
    sqlite3_finalize(st);
    bgr_st_release(s, db);
    if (!rc)
        *out = a;
    return rc;
}

/* Reads account id on a borrowed connection. */
static int account_read(struct bgr_store *s, sqlite3 *db, const char *id, struct bgr_account *out,
                        struct bgr_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = bgr_st_prepare_cached(s, db, "SELECT " ACCOUNT_COLS " FROM accounts WHERE id = ?", &st,
                                   err);
    if (rc)
        goto out;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        rc = read_account(s, st, out, err);
    else if (rc == SQLITE_DONE)
        rc = bgr_error_set(err, BGR_ENOT_FOUND, "no account '%.60s'", id);
    else
        rc = bgr_st_fail(db, err, "read account");
out:
    bgr_st_cached_done(st);
    return rc;
}

int bgr_store_account_get(struct bgr_store *s, const char *id, struct bgr_account *out,
                          struct bgr_error *err)
{
    sqlite3 *db = bgr_st_acquire(s);
    int rc = account_read(s, db, id, out, err);
    bgr_st_release(s, db);
    return rc;
}

int bgr_store_account_list(struct bgr_store *s, int (*fn)(void *ctx, const struct bgr_account *a),
                           void *ctx, struct bgr_error *err)
{
    sqlite3 *db = bgr_st_acquire(s);
    sqlite3_stmt *st = NULL;
    int rc = bgr_st_prepare(db, "SELECT " ACCOUNT_COLS " FROM accounts ORDER BY created_at, id",
                            &st, err);
    while (!rc) {
        struct bgr_account a;
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            rc = bgr_st_fail(db, err, "list accounts");
            break;
        }
        rc = read_account(s, st, &a, err);
        if (!rc)
            rc = fn(ctx, &a);
    }
    sqlite3_finalize(st);
    bgr_st_release(s, db);
    return rc;
}

/* UPDATE accounts SET <col> = value WHERE id: BGR_ENOT_FOUND if no row. */
static int update_account(struct bgr_store *s, const char *sql, const char *id, const char *value,
                          struct bgr_error *err)
{
    sqlite3 *db = bgr_st_acquire(s);
    sqlite3_stmt *st = NULL;
    int rc = bgr_st_prepare(db, sql, &st, err);
    if (rc)
        goto out;
    sqlite3_bind_text(st, 1, value, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = bgr_st_fail(db, err, "update account");
    else if (sqlite3_changes(db) == 0)
        rc = bgr_error_set(err, BGR_ENOT_FOUND, "no account '%.60s'", id);
out:
    sqlite3_finalize(st);
    bgr_st_release(s, db);
    return rc;
}

int bgr_store_account_set_plan(struct bgr_store *s, const char *id, const char *plan,
                               struct bgr_error *err)
{
    struct bgr_plan p;
    int rc = bgr_store_plan_get(s, plan, &p, err);
    if (rc)
        return rc;
    return update_account(s, "UPDATE accounts SET plan = ? WHERE id = ?", id, plan, err);
}

int bgr_store_account_rotate_secret(struct bgr_store *s, const char *id, char out[BGR_SECRET_MAX],
                                    struct bgr_error *err)
{
    char secret[BGR_SECRET_MAX];
    int rc;
    new_secret(secret);
    rc = update_account(s, "UPDATE accounts SET webhook_secret = ? WHERE id = ?", id, secret, err);
    if (!rc)
        memcpy(out, secret, sizeof(secret));
    return rc;
}

/* ---- keys ------------------------------------------------------------------ */

static bool key_well_formed(const char *key)
{
    size_t pl = strlen(KEY_PREFIX);
    if (strncmp(key, KEY_PREFIX, pl) != 0 || strlen(key) != pl + KEY_RANDOM_CHARS)
        return false;
    for (const char *p = key + pl; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
            return false;
    return true;
}

int bgr_store_key_create(struct bgr_store *s, const char *account_id, int64_t now_ms,
                         char key_out[BGR_KEY_MAX], struct bgr_key_info *info,
                         struct bgr_error *err)
{
    char key[BGR_KEY_MAX], id[BGR_ID_MAX], a[BGR_ID_MAX];
    uint8_t hash[32];
    struct bgr_key_info ki = {0};
    struct bgr_account acct;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    size_t pl = strlen(KEY_PREFIX);
    int rc = bgr_store_account_get(s, account_id, &acct, err);
    if (rc)
        return rc;
    /* Two 22-character random ids give 44 base62 characters; keep 43. */
    bgr_store_new_id("", id);
    bgr_store_new_id("", a);
    memcpy(key, KEY_PREFIX, pl);
    memcpy(key + pl, id, 22);
    memcpy(key + pl + 22, a, KEY_RANDOM_CHARS - 22);
    key[pl + KEY_RANDOM_CHARS] = 0;
    bgr_sha256(key, strlen(key), hash);
    memcpy(ki.prefix, key, pl + KEY_SHOWN_CHARS);
    ki.prefix[pl + KEY_SHOWN_CHARS] = 0;
    bgr_st_copy(ki.account_id, sizeof(ki.account_id), acct.id);
    ki.created_at_ms = now_ms;

    db = bgr_st_acquire(s);
    rc = bgr_st_prepare(db,
                        "INSERT INTO api_keys(hash, prefix, account_id, created_at)"
                        " VALUES(?,?,?,?)",
                        &st, err);
    if (rc)
        goto out;
    sqlite3_bind_blob(st, 1, hash, sizeof(hash), SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ki.prefix, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, ki.account_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now_ms);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = bgr_st_fail(db, err, "insert key");
out:
    sqlite3_finalize(st);
    bgr_st_release(s, db);
    if (!rc) {
        memcpy(key_out, key, strlen(key) + 1);
        if (info)
            *info = ki;
    }
    memset(key, 0, sizeof(key));
    return rc;
}

int bgr_store_key_lookup(struct bgr_store *s, const char *key, int64_t now_ms,
                         struct bgr_account *acct, struct bgr_error *err)
{
    uint8_t hash[32];
    sqlite3 *db;
    sqlite3_stmt *st = NULL;
    char account_id[BGR_ID_MAX];
    int64_t last_used;
    int rc, step;

    if (!key || !key_well_formed(key))
        return bgr_error_set(err, BGR_EUNAUTHORIZED, API_KEY_REFUSED);
    bgr_sha256(key, strlen(key), hash);
    db = bgr_st_acquire(s);
    rc = bgr_st_read_begin(s, db, err); /* one snapshot for the key and its account */
    if (rc)
        goto out;
    rc = bgr_st_prepare_cached(s, db,
                               "SELECT k.hash, k.revoked_at, k.last_used_at, a.id"
                               " FROM api_keys k JOIN accounts a ON a.id = k.account_id"
                               " WHERE k.hash = ?",
                               &st, err);
    if (rc)
        goto out;
    sqlite3_bind_blob(st, 1, hash, sizeof(hash), SQLITE_STATIC);
    step = sqlite3_step(st);
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        rc = bgr_st_fail(db, err, "look up key");
        goto out;
    }
    /* The index found the row by hash; comparing the stored hash again in
     * constant time keeps the decision independent of how it was found. */
    if (step != SQLITE_ROW || sqlite3_column_bytes(st, 0) != 32 ||
        !bgr_ct_equal(sqlite3_column_blob(st, 0), hash, 32) || sqlite3_column_int64(st, 1)) {
        rc = bgr_error_set(err, BGR_EUNAUTHORIZED, API_KEY_REFUSED);
        goto out;
    }
    last_used = sqlite3_column_int64(st, 2);
    bgr_st_col_text(st, 3, account_id, sizeof(account_id));
    bgr_st_cached_done(st);
    st = NULL;
    /* On the same connection: one pool round trip per authentication. */
    rc = account_read(s, db, account_id, acct, err);
    if (!rc)
        rc = bgr_st_read_end(s, db, err);
    /* Last use is bookkeeping for admins: a write at most once a minute per
     * key, and its failure (say, the CLI holds the lock) is not the client's. */
    if (!rc && now_ms - last_used >= 60000 &&
        bgr_st_prepare(db, "UPDATE api_keys SET last_used_at = ? WHERE hash = ?", &st, NULL) == 0) {
        sqlite3_bind_int64(st, 1, now_ms);
        sqlite3_bind_blob(st, 2, hash, sizeof(hash), SQLITE_STATIC);
        (void)sqlite3_step(st);
        sqlite3_finalize(st);
        st = NULL;
    }
out:
    bgr_st_cached_done(st); /* the lookup's (every other statement is finalized) */
    bgr_st_release(s, db);
    return rc;
}

static void read_key(sqlite3_stmt *st, struct bgr_key_info *k)
{
    memset(k, 0, sizeof(*k));
    bgr_st_col_text(st, 0, k->prefix, sizeof(k->prefix));
    bgr_st_col_text(st, 1, k->account_id, sizeof(k->account_id));
    k->created_at_ms = sqlite3_column_int64(st, 2);
    k->last_used_ms = sqlite3_column_int64(st, 3);
    k->revoked = sqlite3_column_int64(st, 4) != 0;
}

#define KEY_COLS "prefix, account_id, created_at, last_used_at, revoked_at, hash"

int bgr_store_key_list(struct bgr_store *s, const char *account_id,
                       int (*fn)(void *ctx, const struct bgr_key_info *k), void *ctx,
                       struct bgr_error *err)
{
    sqlite3 *db = bgr_st_acquire(s);
    sqlite3_stmt *st = NULL;
    int rc = bgr_st_prepare(db,
                            "SELECT " KEY_COLS " FROM api_keys WHERE account_id = ?"
                            " ORDER BY created_at, prefix",
                            &st, err);
    if (!rc)
        sqlite3_bind_text(st, 1, account_id, -1, SQLITE_STATIC);
    while (!rc) {
        struct bgr_key_info k;
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            rc = bgr_st_fail(db, err, "list keys");
            break;
        }
        read_key(st, &k);
        rc = fn(ctx, &k);
    }
    sqlite3_finalize(st);
    bgr_st_release(s, db);
    return rc;
}

int bgr_store_key_revoke(struct bgr_store *s, const char *key_or_prefix, struct bgr_key_info *info,
                         struct bgr_error *err)
{
    sqlite3 *db;
    sqlite3_stmt *st = NULL;
    struct bgr_key_info k = {0};
    uint8_t hash[32], found_hash[32];
    bool full = key_well_formed(key_or_prefix);
    int rc, n = 0;

    if (!full && (strlen(key_or_prefix) >= BGR_KEY_PREFIX_MAX ||
                  strncmp(key_or_prefix, KEY_PREFIX, strlen(KEY_PREFIX)) != 0))
        return bgr_error_set(err, BGR_ENOT_FOUND, "no such key (give the key or its prefix)");
    db = bgr_st_acquire(s);
    rc = bgr_st_begin(db, err);
    if (rc)
        goto out;
    if (full) {
        bgr_sha256(key_or_prefix, strlen(key_or_prefix), hash);
        rc = bgr_st_prepare(db, "SELECT " KEY_COLS " FROM api_keys WHERE hash = ?", &st, err);
        if (!rc)
            sqlite3_bind_blob(st, 1, hash, sizeof(hash), SQLITE_STATIC);
    } else {
        rc = bgr_st_prepare(db, "SELECT " KEY_COLS " FROM api_keys WHERE prefix = ?", &st, err);
        if (!rc)
            sqlite3_bind_text(st, 1, key_or_prefix, -1, SQLITE_STATIC);
    }
    while (!rc) {
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            rc = bgr_st_fail(db, err, "find key");
            break;
        }
        if (++n == 1) {
            read_key(st, &k);
            if (sqlite3_column_bytes(st, 5) == 32)
                memcpy(found_hash, sqlite3_column_blob(st, 5), 32);
            else
                rc = bgr_error_set(err, BGR_EIO, "store: corrupt key row");
        }
    }
    sqlite3_finalize(st);
    st = NULL;
    if (rc)
        goto out;
    if (n == 0) {
        rc = bgr_error_set(err, BGR_ENOT_FOUND, "no such key");
        goto out;
    }
    if (n > 1) {
        rc = bgr_error_set(err, BGR_EINVALID_PARAMETER,
                           "%d keys share that prefix: give the full key", n);
        goto out;
    }
    if (!k.revoked) {
        rc = bgr_st_prepare(db, "UPDATE api_keys SET revoked_at = ? WHERE hash = ?", &st, err);
        if (rc)
            goto out;
        sqlite3_bind_int64(st, 1, bgr_wall_ms());
        sqlite3_bind_blob(st, 2, found_hash, 32, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = bgr_st_fail(db, err, "revoke key");
            goto out;
        }
        k.revoked = true;
    }
    rc = bgr_st_commit(db, err);
out:
    sqlite3_finalize(st);
    bgr_st_release(s, db);
    if (!rc && info)
        *info = k;
    return rc;
}
