/*
 * store_pg.c - the PostgreSQL schema: its own versioned migrations (the
 * tables are SQLite's, with PostgreSQL's types: BIGINT for every integer,
 * DOUBLE PRECISION for fractional credits, BYTEA for hashes and bodies,
 * BIGSERIAL for row ids) and the rules for when an open may create it.
 *
 * The version lives in bgr_schema(version). Migrations run in one
 * transaction under the global advisory write lock, so API nodes and
 * workers starting together migrate once; a database from a newer
 * bgremover is refused rather than guessed at.
 */
#include "store/store_int.h"

#include <stdio.h>

/* Migration i brings the schema from version i to i + 1. Append only. */
static const char *const migrations[] = {
    /* 1: the SQLite schema as of its version 7, plus the per-minute
     * windows that every API node shares (rate_minutes) */
    "CREATE TABLE accounts(id TEXT PRIMARY KEY, email TEXT NOT NULL, plan TEXT NOT NULL,"
    " webhook_secret TEXT NOT NULL, created_at BIGINT NOT NULL);"
    "CREATE TABLE api_keys(hash BYTEA PRIMARY KEY, prefix TEXT NOT NULL,"
    " account_id TEXT NOT NULL REFERENCES accounts(id), created_at BIGINT NOT NULL,"
    " last_used_at BIGINT NOT NULL DEFAULT 0, revoked_at BIGINT NOT NULL DEFAULT 0);"
    "CREATE INDEX api_keys_prefix ON api_keys(prefix);"
    "CREATE INDEX api_keys_account ON api_keys(account_id, created_at);"
    "CREATE TABLE daily_counts(account_id TEXT NOT NULL, day BIGINT NOT NULL,"
    " n BIGINT NOT NULL, PRIMARY KEY(account_id, day));"
    "CREATE TABLE rate_minutes(account_id TEXT NOT NULL, minute BIGINT NOT NULL,"
    " n BIGINT NOT NULL, PRIMARY KEY(account_id, minute));"
    "CREATE TABLE usage(id BIGSERIAL PRIMARY KEY, account_id TEXT NOT NULL, ts BIGINT NOT NULL,"
    " day BIGINT NOT NULL, route TEXT NOT NULL, status BIGINT NOT NULL,"
    " duration_ms BIGINT NOT NULL);"
    "CREATE TABLE usage_days(account_id TEXT NOT NULL, day BIGINT NOT NULL,"
    " n BIGINT NOT NULL, PRIMARY KEY(account_id, day));"
    "CREATE TABLE images(id TEXT PRIMARY KEY, account_id TEXT NOT NULL,"
    " batch_id TEXT NOT NULL DEFAULT '', path TEXT NOT NULL, format TEXT NOT NULL,"
    " ext TEXT NOT NULL, mime TEXT NOT NULL, sha256 TEXT NOT NULL, width BIGINT NOT NULL,"
    " height BIGINT NOT NULL, orig_width BIGINT NOT NULL, orig_height BIGINT NOT NULL,"
    " size_bytes BIGINT NOT NULL, processing_ms BIGINT NOT NULL,"
    " credits DOUBLE PRECISION NOT NULL, created_at BIGINT NOT NULL, day BIGINT NOT NULL,"
    " expires_at BIGINT NOT NULL, deleted_at BIGINT NOT NULL DEFAULT 0,"
    " purged_at BIGINT NOT NULL DEFAULT 0, confidence DOUBLE PRECISION NOT NULL DEFAULT -1,"
    " subject_x BIGINT NOT NULL DEFAULT 0, subject_y BIGINT NOT NULL DEFAULT 0,"
    " subject_w BIGINT NOT NULL DEFAULT 0, subject_h BIGINT NOT NULL DEFAULT 0);"
    "CREATE INDEX images_account_day ON images(account_id, day);"
    "CREATE INDEX images_sweep ON images(purged_at, expires_at);"
    "CREATE INDEX images_created ON images(created_at);"
    "CREATE TABLE batches(id TEXT PRIMARY KEY, account_id TEXT NOT NULL,"
    " webhook_url TEXT NOT NULL DEFAULT '', total BIGINT NOT NULL,"
    " created_at BIGINT NOT NULL, finished_at BIGINT NOT NULL DEFAULT 0);"
    "CREATE TABLE batch_items(id BIGSERIAL PRIMARY KEY, batch_id TEXT NOT NULL"
    " REFERENCES batches(id), idx BIGINT NOT NULL, image_url TEXT NOT NULL,"
    " status BIGINT NOT NULL DEFAULT 0, attempts BIGINT NOT NULL DEFAULT 0,"
    " error_code TEXT NOT NULL DEFAULT '', error_message TEXT NOT NULL DEFAULT '',"
    " image_id TEXT NOT NULL DEFAULT '', processing_ms BIGINT NOT NULL DEFAULT 0,"
    " started_at BIGINT NOT NULL DEFAULT 0, finished_at BIGINT NOT NULL DEFAULT 0,"
    " opts TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX batch_items_batch ON batch_items(batch_id, idx);"
    "CREATE INDEX batch_items_status ON batch_items(status, id);"
    "CREATE TABLE outbox(id BIGSERIAL PRIMARY KEY, event_id TEXT NOT NULL UNIQUE,"
    " ref TEXT NOT NULL DEFAULT '', account_id TEXT NOT NULL, event TEXT NOT NULL,"
    " url TEXT NOT NULL, payload TEXT NOT NULL, attempts BIGINT NOT NULL DEFAULT 0,"
    " next_attempt_at BIGINT NOT NULL, status BIGINT NOT NULL DEFAULT 0,"
    " last_error TEXT NOT NULL DEFAULT '', created_at BIGINT NOT NULL);"
    "CREATE INDEX outbox_due ON outbox(status, next_attempt_at);"
    "CREATE TABLE credit_grants(id BIGSERIAL PRIMARY KEY, account_id TEXT NOT NULL,"
    " month BIGINT NOT NULL, amount BIGINT NOT NULL, created_at BIGINT NOT NULL);"
    "CREATE INDEX credit_grants_account ON credit_grants(account_id, month);"
    "CREATE TABLE idempotency(account_id TEXT NOT NULL, key TEXT NOT NULL,"
    " fingerprint BYTEA NOT NULL, state BIGINT NOT NULL, claimed_at BIGINT NOT NULL,"
    " status BIGINT NOT NULL, content_type TEXT NOT NULL, headers TEXT NOT NULL, body BYTEA,"
    " expires_at BIGINT NOT NULL, PRIMARY KEY(account_id, key));"
    "CREATE INDEX idempotency_expiry ON idempotency(expires_at);",
    /* 2: the shared job queue (queue.c): synchronous requests waiting for
     * a worker (their input in the row, or in the result storage under
     * input_key when large), and leases on batch items, so a job whose
     * worker died is taken again when its lease runs out */
    "CREATE TABLE sync_jobs(id BIGSERIAL PRIMARY KEY, account_id TEXT NOT NULL,"
    " opts TEXT NOT NULL, render TEXT NOT NULL DEFAULT '', render_spec TEXT NOT NULL DEFAULT '',"
    " webhook_url TEXT NOT NULL DEFAULT '', image_url TEXT NOT NULL DEFAULT '',"
    " credits DOUBLE PRECISION NOT NULL, input BYTEA NOT NULL, extra BYTEA,"
    " state BIGINT NOT NULL DEFAULT 0, attempts BIGINT NOT NULL DEFAULT 0,"
    " lease_until BIGINT NOT NULL DEFAULT 0, worker TEXT NOT NULL DEFAULT '',"
    " image_id TEXT NOT NULL DEFAULT '', error_code TEXT NOT NULL DEFAULT '',"
    " error_message TEXT NOT NULL DEFAULT '', outcome TEXT NOT NULL DEFAULT '',"
    " created_at BIGINT NOT NULL, claimed_at BIGINT NOT NULL DEFAULT 0,"
    " finished_at BIGINT NOT NULL DEFAULT 0, input_key TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX sync_jobs_ready ON sync_jobs(state, id);"
    "ALTER TABLE batch_items ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0;"
    "ALTER TABLE batch_items ADD COLUMN worker TEXT NOT NULL DEFAULT '';",
};

int bgr_store_pg_schema_version(void)
{
    return (int)BGR_ARRAY_LEN(migrations);
}

static int query_int(struct bgr_db *db, const char *sql, int64_t *out, struct bgr_error *err)
{
    return bgr_st_query_scalar(db, sql, out, NULL, err);
}

int bgr_st_pg_migrate(struct bgr_store *s, struct bgr_db *db, enum bgr_store_create mode,
                      struct bgr_error *err)
{
    char where[512], sql[96];
    int64_t has_schema = 0, n_tables = 0, version = 0;
    int target = bgr_store_pg_schema_version();
    int rc = bgr_st_begin(db, err); /* one migrator at a time, across machines */
    if (rc)
        return rc;
    bgr_store_describe(s, where, sizeof(where));
    rc = query_int(db,
                   "SELECT COUNT(*) FROM information_schema.tables"
                   " WHERE table_schema = current_schema() AND table_name = 'bgr_schema'",
                   &has_schema, err);
    if (!rc && !has_schema)
        rc = query_int(db,
                       "SELECT COUNT(*) FROM information_schema.tables"
                       " WHERE table_schema = current_schema()",
                       &n_tables, err);
    if (rc)
        goto out;
    if (!has_schema) {
        if (mode == BGR_STORE_MUST_EXIST) {
            rc = bgr_error_set(err, BGR_ENOT_FOUND,
                               "no bgremover store in %s: check --store, or create it with"
                               " `bgremover serve --init` or the first `bgremover accounts"
                               " create`",
                               where);
            goto out;
        }
        if (mode == BGR_STORE_IF_EMPTY && n_tables > 0) {
            rc = bgr_error_set(err, BGR_ENOT_FOUND,
                               "%s holds other tables (%lld) and no bgremover store: check"
                               " --store, or pass --init to create the store there",
                               where, (long long)n_tables);
            goto out;
        }
        rc = bgr_st_exec(db,
                         "CREATE TABLE bgr_schema(version BIGINT NOT NULL);"
                         " INSERT INTO bgr_schema(version) VALUES(0)",
                         err);
        if (rc)
            goto out;
        s->created = true;
    }
    rc = query_int(db, "SELECT version FROM bgr_schema", &version, err);
    if (rc)
        goto out;
    if (version > target) {
        rc = bgr_error_set(err, BGR_EIO,
                           "store: %s has schema version %lld, newer than this program's %d", where,
                           (long long)version, target);
        goto out;
    }
    for (; version < target; version++) {
        rc = bgr_st_exec(db, migrations[version], err);
        if (rc) {
            bgr_error_prefix(err, "migration to PostgreSQL schema version %lld",
                             (long long)version + 1);
            goto out;
        }
        (void)snprintf(sql, sizeof(sql), "UPDATE bgr_schema SET version = %lld",
                       (long long)version + 1);
        rc = bgr_st_exec(db, sql, err);
        if (rc)
            goto out;
    }
    rc = bgr_st_commit(db, err);
out:
    bgr_st_rollback(db);
    return rc;
}
