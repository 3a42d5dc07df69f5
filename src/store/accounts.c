/*
 * accounts.c - accounts and API keys.
 *
 * A key is shown once, at creation; the database holds only its SHA-256 (so
 * a stolen database file yields no usable key) and a short display prefix
 * for lists and revocation. Keys carry 256 bits of OS randomness, so an
 * unsalted fast hash is enough: there is nothing to brute-force.
 */
#define _GNU_SOURCE /* asprintf */
#include "store/store_int.h"

#include <errno.h>
#include <unistd.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_PREFIX "bgr_live_"
#define KEY_RANDOM_CHARS 43 /* base62: 43 * 5.95 = 256 bits */
#define KEY_SHOWN_CHARS 8   /* of the random part, in the display prefix */
/* One message for a malformed, unknown or revoked key: the answer never
 * tells whether a key exists or was revoked. */
#define API_KEY_REFUSED "Invalid API key: it is not a key of this server, or it was revoked"

/* Reads the columns of ACCOUNT_SELECT. The plan's limits are resolved
 * now; monthly_credits includes the selected month's adjustments. */
static int read_account(struct bgr_store *s, struct bgr_db_stmt *st, struct bgr_account *a,
                        struct bgr_error *err)
{
    char plan[BGR_PLAN_NAME_MAX];
    int64_t adjustment;
    memset(a, 0, sizeof(*a));
    bgr_st_col_text(st, 0, a->id, sizeof(a->id));
    bgr_st_col_text(st, 1, a->email, sizeof(a->email));
    bgr_st_col_text(st, 2, plan, sizeof(plan));
    bgr_st_col_text(st, 3, a->webhook_secret, sizeof(a->webhook_secret));
    a->created_at_ms = bgr_db_col_int64(st, 4);
    adjustment = bgr_db_col_int64(st, 5);
    /* A plan removed from the config since: the account keeps its name but
     * gets the first (most restrictive, by convention free) plan's limits. */
    if (!bgr_st_plan_find(s, plan, &a->plan)) {
        a->plan = s->plans[0];
        bgr_st_copy(a->plan.name, sizeof(a->plan.name), plan);
    }
    /* Adjustments never leave the allowance negative when made, but a later
     * downgrade to a smaller plan can: then nothing is left. */
    if (a->plan.monthly_credits != BGR_UNLIMITED) {
        a->plan.monthly_credits += adjustment;
        if (a->plan.monthly_credits < 0)
            a->plan.monthly_credits = 0;
    }
    (void)err;
    return 0;
}

#define ACCOUNT_COLS "id, email, plan, webhook_secret, created_at"
/* ?1 is the month (its first day) whose credit adjustments count. */
#define ACCOUNT_SELECT                                                                             \
    "SELECT " ACCOUNT_COLS ", (SELECT COALESCE(SUM(amount), 0) FROM credit_grants g"               \
    " WHERE g.account_id = accounts.id AND g.month = ?1) FROM accounts"

static int64_t month_of(int64_t now_ms)
{
    int64_t first, last;
    bgr_st_month_range(bgr_day_from_ms(now_ms), &first, &last);
    return first;
}

static void new_secret(char out[BGR_SECRET_MAX])
{
    uint8_t r[32];
    bgr_random_bytes(r, sizeof(r));
    memcpy(out, "whsec_", 6);
    bgr_hex_encode(r, sizeof(r), out + 6);
}

/* The id and e-mail of the oldest account whose e-mail equals email
 * without case (ASCII, as SQLite's lower()). BGR_ENOT_FOUND if none. Reads
 * the accounts table only (an old schema in tests has no credit_grants). */
static int account_by_email(struct bgr_db *db, const char *email, char id[BGR_ID_MAX],
                            char found[BGR_EMAIL_MAX], struct bgr_error *err)
{
    struct bgr_db_stmt *st = NULL;
    int rc = bgr_st_prepare(db,
                            "SELECT id, email FROM accounts WHERE lower(trim(email)) = lower(?)"
                            " ORDER BY created_at, id LIMIT 1",
                            &st, err);
    if (rc)
        return rc;
    bgr_db_bind_text(st, 1, email);
    rc = bgr_db_step(st);
    if (rc == BGR_DB_ROW) {
        bgr_st_col_text(st, 0, id, BGR_ID_MAX);
        bgr_st_col_text(st, 1, found, BGR_EMAIL_MAX);
        rc = 0;
    } else if (rc == BGR_DB_DONE) {
        rc = bgr_error_set(err, BGR_ENOT_FOUND, "no account with e-mail '%.254s'", email);
    } else {
        rc = bgr_st_fail(db, err, "find account by e-mail");
    }
    bgr_db_finalize(st);
    return rc;
}

static int account_read(struct bgr_store *s, struct bgr_db *db, const char *id, int64_t now_ms,
                        struct bgr_account *out, struct bgr_error *err);

/* Copies email without leading and trailing white space into out; false
 * if what is left is no plausible address. */
static bool email_trim(const char *email, char out[BGR_EMAIL_MAX])
{
    const char *b = email ? email : "", *e;
    while (*b == ' ' || *b == '\t' || *b == '\r' || *b == '\n')
        b++;
    e = b + strlen(b);
    while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
        e--;
    if (e == b || (size_t)(e - b) >= BGR_EMAIL_MAX)
        return false;
    memcpy(out, b, (size_t)(e - b));
    out[e - b] = 0;
    return strchr(out, '@') && !strpbrk(out, " \t\r\n");
}

int bgr_store_account_find_email(struct bgr_store *s, const char *email, struct bgr_account *out,
                                 struct bgr_error *err)
{
    char trimmed[BGR_EMAIL_MAX], id[BGR_ID_MAX], found[BGR_EMAIL_MAX];
    struct bgr_db *db;
    int rc;
    if (!email_trim(email, trimmed))
        return bgr_error_set(err, BGR_ENOT_FOUND, "no account with that e-mail");
    db = bgr_st_acquire(s);
    rc = account_by_email(db, trimmed, id, found, err);
    if (!rc)
        rc = account_read(s, db, id, bgr_wall_ms(), out, err);
    bgr_st_release(s, db);
    return rc;
}

int bgr_store_account_create(struct bgr_store *s, const char *email, const char *plan,
                             int64_t now_ms, struct bgr_account *out, struct bgr_error *err)
{
    struct bgr_account a = {0};
    char other_id[BGR_ID_MAX], other_email[BGR_EMAIL_MAX];
    struct bgr_db *db = NULL;
    struct bgr_db_stmt *st = NULL;
    int rc;

    if (!email_trim(email, a.email))
        return bgr_error_set(err, BGR_EINVALID_PARAMETER, "not an email address");
    rc = bgr_store_plan_get(s, plan, &a.plan, err);
    if (rc)
        return rc;
    bgr_store_new_id("usr_", a.id);
    a.id[4 + 16] = 0; /* account ids are not secrets: 16 characters suffice */
    new_secret(a.webhook_secret);
    a.created_at_ms = now_ms;

    db = bgr_st_acquire(s);
    /* The uniqueness check and the insert share the write lock, so two
     * creators (another CLI, say) cannot both pass the check. */
    rc = bgr_st_begin(db, err);
    if (rc)
        goto out;
    rc = account_by_email(db, a.email, other_id, other_email, err);
    if (rc == 0) {
        rc = bgr_error_set(err, BGR_EINVALID_PARAMETER,
                           "an account with e-mail %.254s exists already: %s (e-mails are unique,"
                           " compared without case)",
                           other_email, other_id);
        goto out;
    }
    if (rc != BGR_ENOT_FOUND)
        goto out;
    rc = bgr_st_prepare(db, "INSERT INTO accounts(" ACCOUNT_COLS ") VALUES(?,?,?,?,?)", &st, err);
    if (rc)
        goto out;
    bgr_db_bind_text(st, 1, a.id);
    bgr_db_bind_text(st, 2, a.email);
    bgr_db_bind_text(st, 3, a.plan.name);
    bgr_db_bind_text(st, 4, a.webhook_secret);
    bgr_db_bind_int64(st, 5, a.created_at_ms);
    if (bgr_db_step(st) != BGR_DB_DONE)
        rc = bgr_st_fail(db, err, "insert account");
    else
        rc = bgr_st_commit(db, err);
out:
    bgr_db_finalize(st);
    bgr_st_release(s, db); /* rolls back what did not commit */
    if (!rc)
        *out = a;
    return rc;
}

/* Reads account id on a borrowed connection, resolved at now_ms. */
static int account_read(struct bgr_store *s, struct bgr_db *db, const char *id, int64_t now_ms,
                        struct bgr_account *out, struct bgr_error *err)
{
    struct bgr_db_stmt *st = NULL;
    int rc = bgr_st_prepare_cached(s, db, ACCOUNT_SELECT " WHERE id = ?2", &st, err);
    if (rc)
        goto out;
    bgr_db_bind_int64(st, 1, month_of(now_ms));
    bgr_db_bind_text(st, 2, id);
    rc = bgr_db_step(st);
    if (rc == BGR_DB_ROW)
        rc = read_account(s, st, out, err);
    else if (rc == BGR_DB_DONE)
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
    struct bgr_db *db = bgr_st_acquire(s);
    int rc = account_read(s, db, id, bgr_wall_ms(), out, err);
    bgr_st_release(s, db);
    return rc;
}

int bgr_store_account_list(struct bgr_store *s, int (*fn)(void *ctx, const struct bgr_account *a),
                           void *ctx, struct bgr_error *err)
{
    struct bgr_db *db = bgr_st_acquire(s);
    struct bgr_db_stmt *st = NULL;
    int rc = bgr_st_prepare(db, ACCOUNT_SELECT " ORDER BY created_at, id", &st, err);
    if (!rc)
        bgr_db_bind_int64(st, 1, month_of(bgr_wall_ms()));
    while (!rc) {
        struct bgr_account a;
        int step = bgr_db_step(st);
        if (step == BGR_DB_DONE)
            break;
        if (step != BGR_DB_ROW) {
            rc = bgr_st_fail(db, err, "list accounts");
            break;
        }
        rc = read_account(s, st, &a, err);
        if (!rc)
            rc = fn(ctx, &a);
    }
    bgr_db_finalize(st);
    bgr_st_release(s, db);
    return rc;
}

/* UPDATE accounts SET <col> = value WHERE id: BGR_ENOT_FOUND if no row. */
static int update_account(struct bgr_store *s, const char *sql, const char *id, const char *value,
                          struct bgr_error *err)
{
    struct bgr_db *db = bgr_st_acquire(s);
    struct bgr_db_stmt *st = NULL;
    int rc = bgr_st_prepare(db, sql, &st, err);
    if (rc)
        goto out;
    bgr_db_bind_text(st, 1, value);
    bgr_db_bind_text(st, 2, id);
    if (bgr_db_step(st) != BGR_DB_DONE)
        rc = bgr_st_fail(db, err, "update account");
    else if (bgr_db_changes(db) == 0)
        rc = bgr_error_set(err, BGR_ENOT_FOUND, "no account '%.60s'", id);
out:
    bgr_db_finalize(st);
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
    struct bgr_db *db = NULL;
    struct bgr_db_stmt *st = NULL;
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
    bgr_db_bind_blob(st, 1, hash, sizeof(hash));
    bgr_db_bind_text(st, 2, ki.prefix);
    bgr_db_bind_text(st, 3, ki.account_id);
    bgr_db_bind_int64(st, 4, now_ms);
    if (bgr_db_step(st) != BGR_DB_DONE)
        rc = bgr_st_fail(db, err, "insert key");
out:
    bgr_db_finalize(st);
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
    struct bgr_db *db;
    struct bgr_db_stmt *st = NULL;
    char account_id[BGR_ID_MAX];
    int64_t last_used;
    const void *stored = NULL;
    size_t stored_len = 0;
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
    bgr_db_bind_blob(st, 1, hash, sizeof(hash));
    step = bgr_db_step(st);
    if (step != BGR_DB_ROW && step != BGR_DB_DONE) {
        rc = bgr_st_fail(db, err, "look up key");
        goto out;
    }
    /* The index found the row by hash; comparing the stored hash again in
     * constant time keeps the decision independent of how it was found. */
    if (step == BGR_DB_ROW)
        stored = bgr_db_col_blob(st, 0, &stored_len);
    if (step != BGR_DB_ROW || stored_len != 32 || !bgr_ct_equal(stored, hash, 32) ||
        bgr_db_col_int64(st, 1)) {
        rc = bgr_error_set(err, BGR_EUNAUTHORIZED, API_KEY_REFUSED);
        goto out;
    }
    last_used = bgr_db_col_int64(st, 2);
    bgr_st_col_text(st, 3, account_id, sizeof(account_id));
    bgr_st_cached_done(st);
    st = NULL;
    /* On the same connection: one pool round trip per authentication. */
    rc = account_read(s, db, account_id, now_ms, acct, err);
    if (!rc)
        rc = bgr_st_read_end(s, db, err);
    /* Last use is bookkeeping for admins: a write at most once a minute per
     * key, and its failure (say, the CLI holds the lock) is not the client's. */
    if (!rc && now_ms - last_used >= 60000 &&
        bgr_st_prepare(db, "UPDATE api_keys SET last_used_at = ? WHERE hash = ?", &st, NULL) == 0) {
        bgr_db_bind_int64(st, 1, now_ms);
        bgr_db_bind_blob(st, 2, hash, sizeof(hash));
        (void)bgr_db_step(st);
        bgr_db_finalize(st);
        st = NULL;
    }
out:
    bgr_st_cached_done(st); /* the lookup's (every other statement is finalized) */
    bgr_st_release(s, db);
    return rc;
}

static void read_key(struct bgr_db_stmt *st, struct bgr_key_info *k)
{
    memset(k, 0, sizeof(*k));
    bgr_st_col_text(st, 0, k->prefix, sizeof(k->prefix));
    bgr_st_col_text(st, 1, k->account_id, sizeof(k->account_id));
    k->created_at_ms = bgr_db_col_int64(st, 2);
    k->last_used_ms = bgr_db_col_int64(st, 3);
    k->revoked_at_ms = bgr_db_col_int64(st, 4);
    k->revoked = k->revoked_at_ms != 0;
}

#define KEY_COLS "prefix, account_id, created_at, last_used_at, revoked_at, hash"

int bgr_store_key_list(struct bgr_store *s, const char *account_id,
                       int (*fn)(void *ctx, const struct bgr_key_info *k), void *ctx,
                       struct bgr_error *err)
{
    struct bgr_db *db = bgr_st_acquire(s);
    struct bgr_db_stmt *st = NULL;
    int rc = bgr_st_prepare(db,
                            "SELECT " KEY_COLS " FROM api_keys WHERE account_id = ?"
                            " ORDER BY created_at, prefix",
                            &st, err);
    if (!rc)
        bgr_db_bind_text(st, 1, account_id);
    while (!rc) {
        struct bgr_key_info k;
        int step = bgr_db_step(st);
        if (step == BGR_DB_DONE)
            break;
        if (step != BGR_DB_ROW) {
            rc = bgr_st_fail(db, err, "list keys");
            break;
        }
        read_key(st, &k);
        rc = fn(ctx, &k);
    }
    bgr_db_finalize(st);
    bgr_st_release(s, db);
    return rc;
}

int bgr_store_key_revoke(struct bgr_store *s, const char *key_or_prefix, struct bgr_key_info *info,
                         bool *already, struct bgr_error *err)
{
    bool was = false;
    struct bgr_db *db;
    struct bgr_db_stmt *st = NULL;
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
            bgr_db_bind_blob(st, 1, hash, sizeof(hash));
    } else {
        rc = bgr_st_prepare(db, "SELECT " KEY_COLS " FROM api_keys WHERE prefix = ?", &st, err);
        if (!rc)
            bgr_db_bind_text(st, 1, key_or_prefix);
    }
    while (!rc) {
        int step = bgr_db_step(st);
        if (step == BGR_DB_DONE)
            break;
        if (step != BGR_DB_ROW) {
            rc = bgr_st_fail(db, err, "find key");
            break;
        }
        if (++n == 1) {
            read_key(st, &k);
            size_t hl = 0;
            const void *h = bgr_db_col_blob(st, 5, &hl);
            if (hl == 32)
                memcpy(found_hash, h, 32);
            else
                rc = bgr_error_set(err, BGR_EIO, "store: corrupt key row");
        }
    }
    bgr_db_finalize(st);
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
    was = k.revoked;
    if (!k.revoked) {
        rc = bgr_st_prepare(db, "UPDATE api_keys SET revoked_at = ? WHERE hash = ?", &st, err);
        if (rc)
            goto out;
        k.revoked_at_ms = bgr_wall_ms();
        bgr_db_bind_int64(st, 1, k.revoked_at_ms);
        bgr_db_bind_blob(st, 2, found_hash, 32);
        if (bgr_db_step(st) != BGR_DB_DONE) {
            rc = bgr_st_fail(db, err, "revoke key");
            goto out;
        }
        k.revoked = true;
    }
    rc = bgr_st_commit(db, err);
out:
    bgr_db_finalize(st);
    bgr_st_release(s, db);
    if (!rc && info)
        *info = k;
    if (!rc && already)
        *already = was;
    return rc;
}

/* ---- deleting an account ------------------------------------------------------ */

/* Runs a counting query with ?1 = id; its first one or two columns go to
 * *a and *b (b may be NULL). */
static int count_rows(struct bgr_db *db, const char *sql, const char *id, int64_t *a, int64_t *b,
                      struct bgr_error *err)
{
    struct bgr_db_stmt *st = NULL;
    int rc = bgr_st_prepare(db, sql, &st, err);
    if (rc)
        return rc;
    bgr_db_bind_text(st, 1, id);
    if (bgr_db_step(st) == BGR_DB_ROW) {
        *a = bgr_db_col_int64(st, 0);
        if (b)
            *b = bgr_db_col_int64(st, 1);
    } else {
        rc = bgr_st_fail(db, err, "count account rows");
    }
    bgr_db_finalize(st);
    return rc;
}

/* Counts what account id holds, on db (inside the caller's transaction). */
static int footprint(struct bgr_db *db, const char *id, struct bgr_account_footprint *f,
                     struct bgr_error *err)
{
    int rc;
    memset(f, 0, sizeof(*f));
    rc = count_rows(db,
                    "SELECT COUNT(*), COALESCE(SUM(CASE WHEN revoked_at = 0 THEN 1 ELSE 0 END), 0) "
                    "FROM api_keys"
                    " WHERE account_id = ?1",
                    id, &f->keys, &f->keys_active, err);
    if (!rc)
        rc = count_rows(db, "SELECT COUNT(*) FROM batches WHERE account_id = ?1", id, &f->batches,
                        NULL, err);
    if (!rc)
        rc = count_rows(db,
                        "SELECT COUNT(*) FROM batch_items WHERE batch_id IN"
                        " (SELECT id FROM batches WHERE account_id = ?1)",
                        id, &f->batch_items, NULL, err);
    if (!rc)
        rc = count_rows(db,
                        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN purged_at = 0 THEN 1 ELSE 0 END), "
                        "0) FROM images"
                        " WHERE account_id = ?1",
                        id, &f->results, &f->result_files, err);
    /* usage has no index by account alone (nothing else reads it so): an
     * admin's delete may scan it, the request path never does */
    if (!rc)
        rc = count_rows(db, "SELECT COUNT(*) FROM usage WHERE account_id = ?1", id,
                        &f->usage_records, NULL, err);
    if (!rc)
        rc = count_rows(db, "SELECT COUNT(*) FROM outbox WHERE account_id = ?1", id, &f->webhooks,
                        NULL, err);
    if (!rc)
        rc = count_rows(db, "SELECT COUNT(*) FROM credit_grants WHERE account_id = ?1", id,
                        &f->credit_adjustments, NULL, err);
    return rc;
}

int bgr_store_account_footprint(struct bgr_store *s, const char *id,
                                struct bgr_account_footprint *out, struct bgr_error *err)
{
    struct bgr_account a;
    struct bgr_account_footprint f;
    struct bgr_db *db = bgr_st_acquire(s);
    int rc = bgr_st_read_begin(s, db, err); /* one snapshot for all counts */
    if (!rc)
        rc = account_read(s, db, id, bgr_wall_ms(), &a, err);
    if (!rc)
        rc = footprint(db, id, &f, err);
    if (!rc)
        rc = bgr_st_read_end(s, db, err);
    bgr_st_release(s, db);
    if (!rc)
        *out = f;
    return rc;
}

/* Children before parents: api_keys and batch_items reference accounts and
 * batches (foreign keys are on). */
static const char *const delete_sql[] = {
    "DELETE FROM api_keys WHERE account_id = ?1",
    "DELETE FROM batch_items WHERE batch_id IN (SELECT id FROM batches WHERE account_id = ?1)",
    "DELETE FROM batches WHERE account_id = ?1",
    "DELETE FROM images WHERE account_id = ?1",
    "DELETE FROM usage WHERE account_id = ?1",
    "DELETE FROM usage_days WHERE account_id = ?1",
    "DELETE FROM daily_counts WHERE account_id = ?1",
    "DELETE FROM outbox WHERE account_id = ?1",
    "DELETE FROM credit_grants WHERE account_id = ?1",
    "DELETE FROM idempotency WHERE account_id = ?1",
    "DELETE FROM accounts WHERE id = ?1",
};

/* Removes a deleted account's result object from the default results
 * directory (<data-dir>/results): rows hold its key ("<id>.<ext>"; older
 * rows "results/<key>"). The store otherwise never touches result objects
 * (src/results owns them); an account delete runs from the admin command,
 * which has no results store open, so objects elsewhere (--results DIR or
 * s3://) are left to the server's orphan sweep, which removes objects no
 * row owns once they are an hour old. A name that is not a plain key is
 * never used as a path. */
static bool remove_result_object(struct bgr_store *s, const char *key)
{
    char *path = NULL;
    bool ok;
    if (strncmp(key, "results/", 8) == 0)
        key += 8;
    if (!key[0] || strchr(key, '/') || strstr(key, ".."))
        return true;
    if (asprintf(&path, "%s/results/%s", s->data_dir, key) < 0)
        return false;
    ok = unlink(path) == 0 || errno == ENOENT;
    if (!ok)
        bgr_log(BGR_LOG_WARN, "store: cannot remove %s: %s", path, strerror(errno));
    free(path);
    return ok;
}

/* The paths of account id's result files still on disk: *paths (malloc'd
 * array of malloc'd strings) and *n. */
static int result_paths(struct bgr_db *db, const char *id, char ***paths, size_t *n,
                        struct bgr_error *err)
{
    struct bgr_db_stmt *st = NULL;
    char **v = NULL;
    size_t k = 0, cap = 0;
    int rc = bgr_st_prepare(db, "SELECT path FROM images WHERE account_id = ?1 AND purged_at = 0",
                            &st, err);
    if (!rc)
        bgr_db_bind_text(st, 1, id);
    while (!rc) {
        int step = bgr_db_step(st);
        if (step == BGR_DB_DONE)
            break;
        if (step != BGR_DB_ROW) {
            rc = bgr_st_fail(db, err, "list result files");
            break;
        }
        if (k == cap) {
            cap = cap ? cap * 2 : 64;
            v = bgr_xrealloc(v, cap * sizeof(*v));
        }
        v[k++] = bgr_xstrdup(bgr_db_col_text(st, 0));
    }
    bgr_db_finalize(st);
    *paths = v;
    *n = k;
    return rc;
}

int bgr_store_account_delete(struct bgr_store *s, const char *id,
                             struct bgr_account_footprint *removed, int64_t *files_left,
                             struct bgr_error *err)
{
    struct bgr_account a;
    struct bgr_account_footprint f;
    struct bgr_db *db = bgr_st_acquire(s);
    struct bgr_db_stmt *st = NULL;
    char **paths = NULL;
    size_t npaths = 0;
    int64_t left = 0;
    int rc = bgr_st_begin(db, err);
    if (rc)
        goto out;
    rc = account_read(s, db, id, bgr_wall_ms(), &a, err);
    if (!rc)
        rc = footprint(db, id, &f, err);
    if (!rc)
        rc = result_paths(db, id, &paths, &npaths, err);
    for (size_t i = 0; !rc && i < BGR_ARRAY_LEN(delete_sql); i++) {
        rc = bgr_st_prepare(db, delete_sql[i], &st, err);
        if (rc)
            break;
        bgr_db_bind_text(st, 1, id);
        if (bgr_db_step(st) != BGR_DB_DONE)
            rc = bgr_st_fail(db, err, "delete account");
        bgr_db_finalize(st);
        st = NULL;
    }
    if (!rc)
        rc = bgr_st_commit(db, err);
    if (rc)
        goto out;
    /* Committed: no row refers to the files any more, so a file left here
     * (an unlink failed) is an orphan the server's sweep removes later. */
    for (size_t i = 0; i < npaths; i++)
        if (!remove_result_object(s, paths[i]))
            left++;
out:
    bgr_db_finalize(st);
    bgr_st_release(s, db); /* rolls back what did not commit */
    for (size_t i = 0; i < npaths; i++)
        free(paths[i]);
    free(paths);
    if (!rc && removed)
        *removed = f;
    if (!rc && files_left)
        *files_left = left;
    return rc;
}

/* ---- credit adjustments -------------------------------------------------------- */

/* The balance of account id in now's month, on db. */
static int balance_read(struct bgr_store *s, struct bgr_db *db, const char *id, int64_t now_ms,
                        struct bgr_credit_balance *out, struct bgr_error *err)
{
    struct bgr_account a = {0};
    struct bgr_plan p;
    struct bgr_credit_balance b = {0};
    int64_t first, last;
    struct bgr_db_stmt *st = NULL;
    int rc = account_read(s, db, id, now_ms, &a, err);
    if (rc)
        return rc;
    bgr_st_month_range(bgr_day_from_ms(now_ms), &first, &last);
    b.month_first_day = first;
    if (!bgr_st_plan_find(s, a.plan.name, &p))
        p = s->plans[0]; /* as read_account does */
    b.plan_monthly = p.monthly_credits;
    rc = bgr_st_prepare(db,
                        "SELECT COALESCE(SUM(amount), 0) FROM credit_grants"
                        " WHERE account_id = ?1 AND month = ?2",
                        &st, err);
    if (rc)
        return rc;
    bgr_db_bind_text(st, 1, id);
    bgr_db_bind_int64(st, 2, first);
    if (bgr_db_step(st) == BGR_DB_ROW)
        b.adjustment = bgr_db_col_int64(st, 0);
    else
        rc = bgr_st_fail(db, err, "sum credit adjustments");
    bgr_db_finalize(st);
    if (!rc)
        rc = bgr_st_credits_used_exact(db, id, first, last, &b.used, err);
    if (rc)
        return rc;
    if (b.plan_monthly == BGR_UNLIMITED) {
        b.total = BGR_UNLIMITED;
        b.remaining = BGR_UNLIMITED;
    } else {
        b.total = a.plan.monthly_credits; /* plan + adjustment, never below 0 */
        b.remaining = (double)b.total > b.used ? (double)b.total - b.used : 0;
    }
    *out = b;
    return 0;
}

int bgr_store_credits_balance(struct bgr_store *s, const char *id, int64_t now_ms,
                              struct bgr_credit_balance *out, struct bgr_error *err)
{
    struct bgr_db *db = bgr_st_acquire(s);
    int rc = bgr_st_read_begin(s, db, err);
    if (!rc)
        rc = balance_read(s, db, id, now_ms, out, err);
    if (!rc)
        rc = bgr_st_read_end(s, db, err);
    bgr_st_release(s, db);
    return rc;
}

#define CREDITS_CHANGE_MAX 1000000000000LL /* far beyond any plan; keeps sums exact */

int bgr_store_credits_change(struct bgr_store *s, const char *id, int64_t amount, bool set,
                             int64_t now_ms, struct bgr_credit_balance *out, struct bgr_error *err)
{
    struct bgr_credit_balance b;
    struct bgr_db *db;
    struct bgr_db_stmt *st = NULL;
    int64_t delta, unclamped, used_whole;
    int rc;

    if (amount < -CREDITS_CHANGE_MAX || amount > CREDITS_CHANGE_MAX || (set && amount < 0))
        return bgr_error_set(err, BGR_EINVALID_PARAMETER, "credit amount out of range");
    db = bgr_st_acquire(s);
    rc = bgr_st_begin(db, err); /* the check and the change under the write lock */
    if (!rc)
        rc = balance_read(s, db, id, now_ms, &b, err);
    if (rc)
        goto out;
    if (b.plan_monthly == BGR_UNLIMITED) {
        rc = bgr_error_set(err, BGR_EINVALID_PARAMETER,
                           "%.60s is on a plan with unlimited credits: nothing to change", id);
        goto out;
    }
    unclamped = b.plan_monthly + b.adjustment; /* a downgrade may have made it negative */
    /* Remaining is reported in whole credits, rounded down, so setting it to
     * N counts a started credit (a 0.25 preview) as used. */
    used_whole = (int64_t)ceil(b.used - 1e-9);
    delta = set ? amount + used_whole - unclamped : amount;
    if ((double)(unclamped + delta) - b.used < -1e-9) {
        rc = bgr_error_set(err, BGR_EINVALID_PARAMETER,
                           "cannot subtract %lld credits: %.60s has %lld left this month"
                           " (nothing changed)",
                           (long long)-delta, id, (long long)floor(b.remaining + 1e-9));
        goto out;
    }
    if (delta != 0) {
        rc = bgr_st_prepare(db,
                            "INSERT INTO credit_grants(account_id, month, amount, created_at)"
                            " VALUES(?,?,?,?)",
                            &st, err);
        if (rc)
            goto out;
        bgr_db_bind_text(st, 1, id);
        bgr_db_bind_int64(st, 2, b.month_first_day);
        bgr_db_bind_int64(st, 3, delta);
        bgr_db_bind_int64(st, 4, now_ms);
        if (bgr_db_step(st) != BGR_DB_DONE) {
            rc = bgr_st_fail(db, err, "adjust credits");
            goto out;
        }
        bgr_db_finalize(st);
        st = NULL;
    }
    rc = balance_read(s, db, id, now_ms, &b, err);
    if (!rc)
        rc = bgr_st_commit(db, err);
out:
    bgr_db_finalize(st);
    bgr_st_release(s, db);
    if (!rc)
        *out = b;
    return rc;
}
