/* Unit tests of src/store: schema migrations, keys, limits, credits, usage
 * buckets, result expiry and deletion, batches and crash recovery. Each test
 * works in its own temporary data directory; time is passed explicitly. */
#define _GNU_SOURCE
#include "runner.h"
#include "store/store.h"
#include "tmp_dir.h"

#include <ftw.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define DAY_MS 86400000LL
#define MIN_MS 60000LL

static char *tmp_dir(void)
{
    return tmp_dir_named("store");
}

/* 2026-02-13 12:00:00 UTC */
static int64_t t0(void)
{
    return bgr_day_from_ymd(2026, 2, 13) * DAY_MS + 12 * 3600 * 1000LL;
}

static struct bgr_store *open_store(const char *dir)
{
    struct bgr_store *s = NULL;
    struct bgr_error e = {0};
    if (bgr_store_open(dir, NULL, &s, &e) != 0)
        fprintf(stderr, "  open: %s\n", e.msg);
    return s;
}

static int64_t db_int(const char *dir, const char *sql)
{
    char path[512];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    snprintf(path, sizeof(path), "%s/bgremover.db", dir);
    if (sqlite3_open(path, &db) == SQLITE_OK && sqlite3_prepare_v2(db, sql, -1, &st, NULL) == 0 &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

BGR_TEST(migrations_fresh)
{
    char *dir = tmp_dir();
    struct bgr_store *s = open_store(dir);
    BGR_REQUIRE(s);
    BGR_CHECK_EQ_INT(db_int(dir, "PRAGMA user_version"), bgr_store_schema_version());
    BGR_CHECK(bgr_store_schema_version() >= 2);
    BGR_CHECK_EQ_INT(db_int(dir, "SELECT COUNT(*) FROM sqlite_master WHERE name='outbox'"), 1);
    {
        char p[512];
        struct stat sb;
        snprintf(p, sizeof(p), "%s/results", dir);
        BGR_CHECK(stat(p, &sb) == 0 && S_ISDIR(sb.st_mode));
    }
    bgr_store_close(s);
    BGR_CHECK_EQ_INT(db_int(dir, "SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);
    rm_rf(dir);
    free(dir);
}

/* Migration 4 turns the per-field option columns of items already queued
 * into the one text value, keeping what they had. */
BGR_TEST(migration_item_options)
{
    char *dir = tmp_dir();
    struct bgr_store_opts o = {.schema_version = 3};
    struct bgr_store *s = NULL;
    struct bgr_error e = {0};
    struct bgr_account a;
    struct bgr_batch_item *its = NULL;
    size_t n = 0;
    char p[512], sql[512];
    sqlite3 *db;

    BGR_REQUIRE(bgr_store_open(dir, &o, &s, &e) == 0);
    BGR_REQUIRE(bgr_store_account_create(s, "m@example.com", "pro", t0(), &a, &e) == 0);
    bgr_store_close(s);
    snprintf(p, sizeof(p), "%s/bgremover.db", dir);
    BGR_REQUIRE(sqlite3_open(p, &db) == SQLITE_OK);
    snprintf(sql, sizeof(sql),
             "INSERT INTO batches(id, account_id, total, created_at) VALUES('batch_m', '%s', 2, 1);"
             "INSERT INTO batch_items(batch_id, idx, image_url, format, quality, has_bg, bg,"
             " max_res, crop, mask_only) VALUES('batch_m', 0, 'http://e/1', 1, 70, 1, %lld, 2, 1,"
             " 0), ('batch_m', 1, 'http://e/2', 0, 90, 0, 0, 0, 0, 1);",
             a.id, (long long)0x102030ffLL);
    BGR_CHECK_EQ_INT(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    s = open_store(dir);
    BGR_REQUIRE(s);
    BGR_REQUIRE(bgr_store_batch_items(s, "batch_m", &its, &n, &e) == 0);
    BGR_REQUIRE(n == 2);
    BGR_CHECK_EQ_INT(its[0].opts.format, BGR_FORMAT_WEBP);
    BGR_CHECK_EQ_INT(its[0].opts.quality, 70);
    BGR_CHECK(its[0].opts.has_bg_color);
    BGR_CHECK_EQ_INT(its[0].opts.bg_color.r, 0x10);
    BGR_CHECK_EQ_INT(its[0].opts.bg_color.g, 0x20);
    BGR_CHECK_EQ_INT(its[0].opts.bg_color.b, 0x30);
    BGR_CHECK_EQ_INT(its[0].opts.bg_color.a, 0xff);
    BGR_CHECK_EQ_INT(its[0].opts.max_res, BGR_MAXRES_720P);
    BGR_CHECK(its[0].opts.crop);
    BGR_CHECK(!its[0].opts.mask_only);
    BGR_CHECK(!its[1].opts.has_bg_color);
    BGR_CHECK(its[1].opts.mask_only);
    /* never stored before: today's defaults */
    struct bgr_output_opts def;
    bgr_output_opts_init(&def);
    BGR_CHECK_EQ_INT(its[1].opts.refine, def.refine);
    BGR_CHECK_EQ_INT(its[1].opts.decontaminate, def.decontaminate);
    free(its);
    bgr_store_close(s);
    rm_rf(dir);
    free(dir);
}

BGR_TEST(migrations_existing)
{
    char *dir = tmp_dir();
    struct bgr_store_opts o = {.schema_version = 1};
    struct bgr_store *s = NULL;
    struct bgr_error e = {0};
    struct bgr_account a, b;
    struct bgr_batch bt;
    struct bgr_batch_item_new it = {.image_url = "http://example.com/a.png"};
    bgr_output_opts_init(&it.opts);

    BGR_REQUIRE(bgr_store_open(dir, &o, &s, &e) == 0);
    BGR_CHECK_EQ_INT(db_int(dir, "PRAGMA user_version"), 1);
    BGR_CHECK_EQ_INT(db_int(dir, "SELECT COUNT(*) FROM sqlite_master WHERE name='batches'"), 0);
    BGR_REQUIRE(bgr_store_account_create(s, "old@example.com", "pro", t0(), &a, &e) == 0);
    bgr_store_close(s);

    /* Reopen with the current program: version 2 applied, data kept. */
    s = open_store(dir);
    BGR_REQUIRE(s);
    BGR_CHECK_EQ_INT(db_int(dir, "PRAGMA user_version"), bgr_store_schema_version());
    BGR_CHECK_EQ_INT(bgr_store_account_get(s, a.id, &b, &e), 0);
    BGR_CHECK_STR(b.email, "old@example.com");
    BGR_CHECK_STR(b.plan.name, "pro");
    BGR_CHECK_EQ_INT(bgr_store_batch_create(s, a.id, NULL, &it, 1, 20, t0(), &bt, &e), 0);
    bgr_store_close(s);

    /* A database from a newer program is refused. */
    {
        char p[512];
        sqlite3 *db;
        snprintf(p, sizeof(p), "%s/bgremover.db", dir);
        BGR_REQUIRE(sqlite3_open(p, &db) == SQLITE_OK);
        sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL);
        sqlite3_close(db);
    }
    s = NULL;
    BGR_CHECK_EQ_INT(bgr_store_open(dir, NULL, &s, &e), BGR_EIO);
    BGR_CHECK(strstr(e.msg, "newer") != NULL);
    BGR_CHECK(s == NULL);
    rm_rf(dir);
    free(dir);
}

static bool file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    bool found;
    if (!f)
        return false;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    n = (long)fread(buf, 1, (size_t)n, f);
    fclose(f);
    found = memmem(buf, (size_t)n, needle, strlen(needle)) != NULL;
    free(buf);
    return found;
}

static int count_key(void *ctx, const struct bgr_key_info *k)
{
    int *n = ctx;
    (*n)++;
    BGR_CHECK_EQ_INT(strlen(k->prefix), 17);
    return 0;
}

BGR_TEST(keys_hash_only_lookup_revoke)
{
    char *dir = tmp_dir(), key[BGR_KEY_MAX], key2[BGR_KEY_MAX], p[512], bad[BGR_KEY_MAX];
    struct bgr_store *s = open_store(dir);
    struct bgr_error e = {0};
    struct bgr_account a, got;
    struct bgr_key_info ki, ki2;
    int n = 0;
    BGR_REQUIRE(s);
    BGR_REQUIRE(bgr_store_account_create(s, "dev@example.com", "free", t0(), &a, &e) == 0);
    BGR_CHECK(strncmp(a.id, "usr_", 4) == 0);
    BGR_CHECK(strncmp(a.webhook_secret, "whsec_", 6) == 0);
    BGR_CHECK_EQ_INT(bgr_store_key_create(s, "usr_nope", t0(), key, &ki, &e), BGR_ENOT_FOUND);
    BGR_REQUIRE(bgr_store_key_create(s, a.id, t0(), key, &ki, &e) == 0);
    BGR_REQUIRE(bgr_store_key_create(s, a.id, t0(), key2, &ki2, &e) == 0);
    BGR_CHECK(strncmp(key, "bgr_live_", 9) == 0);
    BGR_CHECK_EQ_INT(strlen(key), 9 + 43);
    BGR_CHECK(strcmp(key, key2) != 0);
    BGR_CHECK(strncmp(key, ki.prefix, strlen(ki.prefix)) == 0);

    BGR_CHECK_EQ_INT(bgr_store_key_lookup(s, key, t0(), &got, &e), 0);
    BGR_CHECK_STR(got.id, a.id);
    BGR_CHECK_STR(got.plan.name, "free");
    BGR_CHECK_EQ_INT(got.plan.per_minute, 10);

    /* Only the hash is stored: the key's random part is in no file. */
    bgr_store_close(s);
    snprintf(p, sizeof(p), "%s/bgremover.db", dir);
    BGR_CHECK(file_contains(p, ki.prefix)); /* the prefix is (sanity of the grep) */
    BGR_CHECK(!file_contains(p, key + 9));
    BGR_CHECK(!file_contains(p, key2 + 9));
    snprintf(p, sizeof(p), "%s/bgremover.db-wal", dir);
    BGR_CHECK(!file_contains(p, key + 9));
    s = open_store(dir);
    BGR_REQUIRE(s);

    /* Wrong, malformed, empty: all the same UNAUTHORIZED. */
    memcpy(bad, key, sizeof(bad));
    bad[20] = bad[20] == 'a' ? 'b' : 'a';
    BGR_CHECK_EQ_INT(bgr_store_key_lookup(s, bad, t0(), &got, &e), BGR_EUNAUTHORIZED);
    BGR_CHECK_EQ_INT(bgr_store_key_lookup(s, "bgr_live_short", t0(), &got, &e), BGR_EUNAUTHORIZED);
    BGR_CHECK_EQ_INT(bgr_store_key_lookup(s, "", t0(), &got, &e), BGR_EUNAUTHORIZED);
    BGR_CHECK_EQ_INT(bgr_store_key_lookup(s, NULL, t0(), &got, &e), BGR_EUNAUTHORIZED);

    BGR_CHECK_EQ_INT(bgr_store_key_list(s, a.id, count_key, &n, &e), 0);
    BGR_CHECK_EQ_INT(n, 2);

    /* Revoke by prefix; the other key still works; revoke is idempotent. */
    BGR_CHECK_EQ_INT(bgr_store_key_revoke(s, ki.prefix, &ki, NULL, &e), 0);
    BGR_CHECK(ki.revoked);
    BGR_CHECK_EQ_INT(bgr_store_key_lookup(s, key, t0(), &got, &e), BGR_EUNAUTHORIZED);
    BGR_CHECK_EQ_INT(bgr_store_key_lookup(s, key2, t0(), &got, &e), 0);
    BGR_CHECK_EQ_INT(bgr_store_key_revoke(s, key, NULL, NULL, &e), 0);
    BGR_CHECK_EQ_INT(bgr_store_key_revoke(s, key2, NULL, NULL, &e), 0); /* by full key */
    BGR_CHECK_EQ_INT(bgr_store_key_lookup(s, key2, t0(), &got, &e), BGR_EUNAUTHORIZED);
    BGR_CHECK_EQ_INT(bgr_store_key_revoke(s, "bgr_live_zzzzzzzz", NULL, NULL, &e), BGR_ENOT_FOUND);
    BGR_CHECK_EQ_INT(bgr_store_key_revoke(s, "nonsense", NULL, NULL, &e), BGR_ENOT_FOUND);

    /* Plan changes apply to the next lookup. */
    BGR_CHECK_EQ_INT(bgr_store_account_set_plan(s, a.id, "gold", &e), BGR_EINVALID_PARAMETER);
    BGR_CHECK_EQ_INT(bgr_store_account_set_plan(s, "usr_x", "pro", &e), BGR_ENOT_FOUND);
    BGR_CHECK_EQ_INT(bgr_store_account_set_plan(s, a.id, "enterprise", &e), 0);
    BGR_CHECK_EQ_INT(bgr_store_account_get(s, a.id, &got, &e), 0);
    BGR_CHECK_EQ_INT(got.plan.per_day, BGR_UNLIMITED);
    BGR_CHECK_EQ_INT(bgr_store_account_create(s, "no-at-sign", "free", t0(), &got, &e),
                     BGR_EINVALID_PARAMETER);
    bgr_store_close(s);
    rm_rf(dir);
    free(dir);
}

BGR_TEST(rate_minute_window)
{
    char *dir = tmp_dir();
    struct bgr_store *s = open_store(dir);
    struct bgr_error e = {0};
    struct bgr_account a;
    struct bgr_rate_status st;
    int64_t now = t0() + 15000; /* 15 s into a minute */
    BGR_REQUIRE(s);
    BGR_REQUIRE(bgr_store_account_create(s, "r@example.com", "free", now, &a, &e) == 0);
    for (int i = 0; i < 10; i++) {
        BGR_CHECK_EQ_INT(bgr_store_rate_hit(s, &a, now + i * 1000, &st, &e), 0);
        BGR_CHECK_EQ_INT(st.minute_limit, 10);
        BGR_CHECK_EQ_INT(st.minute_remaining, 9 - i);
        BGR_CHECK_EQ_INT(st.minute_reset, (t0() / MIN_MS + 1) * 60);
    }
    BGR_CHECK_EQ_INT(bgr_store_rate_hit(s, &a, now + 20000, &st, &e), BGR_ERATE_LIMITED);
    BGR_CHECK_EQ_INT(st.minute_remaining, 0);
    BGR_CHECK_EQ_INT(st.retry_after_s, 60 - 35);
    BGR_CHECK_EQ_INT(bgr_store_rate_peek(s, &a, now + 20000, &st, &e), 0);
    BGR_CHECK_EQ_INT(st.day_remaining, 40); /* refusals are not counted */
    /* The next minute opens a fresh window. */
    BGR_CHECK_EQ_INT(bgr_store_rate_hit(s, &a, t0() + MIN_MS, &st, &e), 0);
    BGR_CHECK_EQ_INT(st.minute_remaining, 9);
    bgr_store_close(s);
    rm_rf(dir);
    free(dir);
}

BGR_TEST(rate_daily_limit_persists)
{
    char *dir = tmp_dir();
    struct bgr_store *s = open_store(dir);
    struct bgr_error e = {0};
    struct bgr_account a;
    struct bgr_rate_status st;
    int64_t day0 = bgr_day_from_ymd(2026, 2, 13) * DAY_MS;
    BGR_REQUIRE(s);
    BGR_REQUIRE(bgr_store_account_create(s, "d@example.com", "free", day0, &a, &e) == 0);
    for (int i = 0; i < 50; i++) /* 10 per minute over 5 minutes */
        BGR_CHECK_EQ_INT(bgr_store_rate_hit(s, &a, day0 + (i / 10) * MIN_MS + i, &st, &e), 0);
    BGR_CHECK_EQ_INT(st.day_remaining, 0);
    /* A restart does not reset the day (the minute counter is in memory). */
    bgr_store_close(s);
    s = open_store(dir);
    BGR_REQUIRE(s);
    BGR_CHECK_EQ_INT(bgr_store_rate_hit(s, &a, day0 + 10 * MIN_MS, &st, &e),
                     BGR_EDAILY_LIMIT_EXCEEDED);
    BGR_CHECK_EQ_INT(st.retry_after_s, 86400 - 600);
    BGR_CHECK_EQ_INT(st.day_reset, day0 / 1000 + 86400);
    /* The refusal gave its minute slot back. */
    BGR_CHECK_EQ_INT(st.minute_remaining, 10);
    /* Next UTC day: open again. */
    BGR_CHECK_EQ_INT(bgr_store_rate_hit(s, &a, day0 + DAY_MS, &st, &e), 0);
    BGR_CHECK_EQ_INT(st.day_remaining, 49);
    /* Enterprise: no daily limit. */
    BGR_CHECK_EQ_INT(bgr_store_account_set_plan(s, a.id, "enterprise", &e), 0);
    BGR_CHECK_EQ_INT(bgr_store_account_get(s, a.id, &a, &e), 0);
    for (int i = 0; i < 60; i++)
        BGR_CHECK_EQ_INT(bgr_store_rate_hit(s, &a, day0 + 2 * DAY_MS + (i / 100) * MIN_MS, &st, &e),
                         0);
    BGR_CHECK_EQ_INT(st.day_remaining, BGR_UNLIMITED);
    BGR_CHECK_EQ_INT(st.minute_remaining, 140);
    bgr_store_close(s);
    rm_rf(dir);
    free(dir);
}

static void touch(const char *dir, const char *rel)
{
    char p[512];
    struct bgr_error e;
    snprintf(p, sizeof(p), "%s/%s", dir, rel);
    BGR_CHECK_EQ_INT(bgr_file_write_atomic(p, "x", 1, &e), 0);
}

static bool exists(const char *dir, const char *rel)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, rel);
    return access(p, F_OK) == 0;
}

static struct bgr_image mk_image(const struct bgr_account *a, int64_t now, int credits)
{
    struct bgr_image m = {0};
    bgr_store_new_id("img_", m.id);
    snprintf(m.account_id, sizeof(m.account_id), "%s", a->id);
    snprintf(m.path, sizeof(m.path), "results/%s.png", m.id);
    snprintf(m.format, sizeof(m.format), "png");
    snprintf(m.ext, sizeof(m.ext), "png");
    snprintf(m.mime, sizeof(m.mime), "image/png");
    m.width = m.height = m.original_width = m.original_height = 10;
    m.size_bytes = 100;
    m.processing_ms = 1000;
    m.credits = credits;
    m.created_at_ms = now;
    m.expires_at_ms = now + a->plan.retention_s * 1000;
    return m;
}

BGR_TEST(credits_charge_at_commit)
{
    char *dir = tmp_dir();
    struct bgr_store *s = open_store(dir);
    struct bgr_error e = {0};
    struct bgr_account a, ent;
    struct bgr_image m;
    int64_t used = -1, rem = -1;
    int64_t jan31 = bgr_day_from_ymd(2026, 1, 31) * DAY_MS + 23 * 3600000LL;
    int64_t feb1 = bgr_day_from_ymd(2026, 2, 1) * DAY_MS;
    BGR_REQUIRE(s);
    BGR_REQUIRE(bgr_store_account_create(s, "c@example.com", "free", jan31, &a, &e) == 0);
    BGR_CHECK_EQ_INT(bgr_store_credits(s, &a, jan31, &used, &rem, &e), 0);
    BGR_CHECK_EQ_INT(used, 0);
    BGR_CHECK_EQ_INT(rem, 50);
    for (int i = 0; i < 50; i++) {
        m = mk_image(&a, jan31 + i, 1);
        BGR_CHECK_EQ_INT(bgr_store_image_add(s, &a, &m, NULL, &e), 0);
    }
    BGR_CHECK_EQ_INT(bgr_store_credits(s, &a, jan31, &used, &rem, &e), 0);
    BGR_CHECK_EQ_INT(used, 50);
    BGR_CHECK_EQ_INT(rem, 0);
    m = mk_image(&a, jan31 + 100, 1);
    BGR_CHECK_EQ_INT(bgr_store_image_add(s, &a, &m, NULL, &e), BGR_EINSUFFICIENT_CREDITS);
    BGR_CHECK_EQ_INT(bgr_store_image_get(s, m.id, NULL, jan31 + 200, &m, &e), BGR_ENOT_FOUND);
    /* A free result (0 credits) is still allowed. */
    m = mk_image(&a, jan31 + 101, 0);
    BGR_CHECK_EQ_INT(bgr_store_image_add(s, &a, &m, NULL, &e), 0);
    /* New month: the balance is full again; last month's usage stays there. */
    BGR_CHECK_EQ_INT(bgr_store_credits(s, &a, feb1, &used, &rem, &e), 0);
    BGR_CHECK_EQ_INT(used, 0);
    BGR_CHECK_EQ_INT(rem, 50);
    m = mk_image(&a, feb1 + 5, 1);
    BGR_CHECK_EQ_INT(bgr_store_image_add(s, &a, &m, NULL, &e), 0);
    BGR_CHECK_EQ_INT(bgr_store_credits(s, &a, feb1, &used, &rem, &e), 0);
    BGR_CHECK_EQ_INT(rem, 49);
    {
        struct bgr_month_usage mu;
        BGR_CHECK_EQ_INT(bgr_store_usage_month(s, a.id, jan31, &mu, &e), 0);
        BGR_CHECK_EQ_INT(mu.images_processed, 51);
        BGR_CHECK_EQ_INT(mu.credits_used, 50);
    }
    /* Enterprise is unlimited. */
    BGR_REQUIRE(bgr_store_account_create(s, "e@example.com", "enterprise", feb1, &ent, &e) == 0);
    BGR_CHECK_EQ_INT(bgr_store_credits(s, &ent, feb1, &used, &rem, &e), 0);
    BGR_CHECK_EQ_INT(rem, BGR_UNLIMITED);
    bgr_store_close(s);
    rm_rf(dir);
    free(dir);
}

BGR_TEST(usage_buckets_across_months)
{
    char *dir = tmp_dir();
    struct bgr_store *s = open_store(dir);
    struct bgr_error e = {0};
    struct bgr_account a, other;
    struct bgr_usage_report r;
    struct bgr_month_usage mu;
    /* Requests: Jan 30 x2, Jan 31 x1, Feb 1 x3, Feb 2 x1 (Mon), Mar 1 x1.
     * Results:  Jan 31 x1 (900 ms), Feb 1 x2 (1000, 1300 ms). */
    int64_t jan30 = bgr_day_from_ymd(2026, 1, 30), feb1 = bgr_day_from_ymd(2026, 2, 1);
    int64_t days[] = {jan30, jan30, jan30 + 1, feb1,
                      feb1,  feb1,  feb1 + 1,  bgr_day_from_ymd(2026, 3, 1)};
    BGR_REQUIRE(s);
    BGR_REQUIRE(bgr_store_account_create(s, "u@example.com", "pro", jan30 * DAY_MS, &a, &e) == 0);
    BGR_REQUIRE(bgr_store_account_create(s, "o@example.com", "pro", jan30 * DAY_MS, &other, &e) ==
                0);
    for (size_t i = 0; i < BGR_ARRAY_LEN(days); i++)
        BGR_CHECK_EQ_INT(bgr_store_usage_record(s, a.id, days[i] * DAY_MS + 3600000,
                                                "POST /v1/remove", 200, 5, &e),
                         0);
    BGR_CHECK_EQ_INT(
        bgr_store_usage_record(s, other.id, feb1 * DAY_MS, "GET /v1/account", 200, 1, &e), 0);
    {
        struct bgr_image m1 = mk_image(&a, (jan30 + 1) * DAY_MS + DAY_MS - 1, 1);
        struct bgr_image m2 = mk_image(&a, feb1 * DAY_MS, 1);
        struct bgr_image m3 = mk_image(&a, feb1 * DAY_MS + 7, 1);
        m1.processing_ms = 900;
        m3.processing_ms = 1300;
        BGR_CHECK_EQ_INT(bgr_store_image_add(s, &a, &m1, NULL, &e), 0);
        BGR_CHECK_EQ_INT(bgr_store_image_add(s, &a, &m2, NULL, &e), 0);
        BGR_CHECK_EQ_INT(bgr_store_image_add(s, &a, &m3, NULL, &e), 0);
    }
    BGR_CHECK_EQ_INT(bgr_store_usage_month(s, a.id, feb1 * DAY_MS + 5, &mu, &e), 0);
    BGR_CHECK_EQ_INT(mu.api_calls, 4);
    BGR_CHECK_EQ_INT(mu.images_processed, 2);
    BGR_CHECK_EQ_INT(mu.credits_used, 2);

    /* Daily, Jan 30 .. Feb 2: 4 buckets, newest first. */
    BGR_REQUIRE(bgr_store_usage_range(s, a.id, jan30, feb1 + 1, BGR_GRAN_DAILY, &r, &e) == 0);
    BGR_REQUIRE(r.n_buckets == 4);
    BGR_CHECK_EQ_INT(r.buckets[0].start_day, feb1 + 1);
    BGR_CHECK_EQ_INT(r.buckets[0].requests, 1);
    BGR_CHECK_EQ_INT(r.buckets[1].requests, 3);
    BGR_CHECK_EQ_INT(r.buckets[1].credits, 2);
    BGR_CHECK_EQ_INT(r.buckets[2].requests, 1);
    BGR_CHECK_EQ_INT(r.buckets[2].credits, 1);
    BGR_CHECK_EQ_INT(r.buckets[3].requests, 2);
    BGR_CHECK_EQ_INT(r.total_requests, 7);
    BGR_CHECK_EQ_INT(r.total_credits, 3);
    BGR_CHECK_EQ_INT(r.total_images, 3);
    BGR_CHECK_EQ_INT(r.avg_processing_ms, (900 + 1000 + 1300 + 1) / 3);
    bgr_usage_report_release(&r);

    /* Weekly: Jan 30 (Fri) .. Feb 2 (Mon) = week of Jan 26 clipped to
     * Jan 30..Feb 1, and week of Feb 2 clipped to Feb 2. */
    BGR_REQUIRE(bgr_store_usage_range(s, a.id, jan30, feb1 + 1, BGR_GRAN_WEEKLY, &r, &e) == 0);
    BGR_REQUIRE(r.n_buckets == 2);
    BGR_CHECK_EQ_INT(r.buckets[0].start_day, feb1 + 1);
    BGR_CHECK_EQ_INT(r.buckets[0].end_day, feb1 + 1);
    BGR_CHECK_EQ_INT(r.buckets[0].requests, 1);
    BGR_CHECK_EQ_INT(r.buckets[1].start_day, jan30);
    BGR_CHECK_EQ_INT(r.buckets[1].end_day, feb1);
    BGR_CHECK_EQ_INT(r.buckets[1].requests, 6);
    BGR_CHECK_EQ_INT(r.buckets[1].credits, 3);
    bgr_usage_report_release(&r);

    /* Monthly, Jan 1 .. Mar 31. */
    BGR_REQUIRE(bgr_store_usage_range(s, a.id, bgr_day_from_ymd(2026, 1, 1),
                                      bgr_day_from_ymd(2026, 3, 31), BGR_GRAN_MONTHLY, &r,
                                      &e) == 0);
    BGR_REQUIRE(r.n_buckets == 3);
    BGR_CHECK_EQ_INT(r.buckets[0].requests, 1); /* March */
    BGR_CHECK_EQ_INT(r.buckets[1].requests, 4); /* February */
    BGR_CHECK_EQ_INT(r.buckets[1].credits, 2);
    BGR_CHECK_EQ_INT(r.buckets[1].end_day, bgr_day_from_ymd(2026, 2, 28));
    BGR_CHECK_EQ_INT(r.buckets[2].requests, 3); /* January */
    BGR_CHECK_EQ_INT(r.buckets[2].credits, 1);
    bgr_usage_report_release(&r);

    BGR_CHECK_EQ_INT(bgr_store_usage_range(s, a.id, feb1, jan30, BGR_GRAN_DAILY, &r, &e),
                     BGR_EINVALID_PARAMETER);
    BGR_CHECK_EQ_INT(bgr_store_usage_range(s, a.id, 0, 20000, BGR_GRAN_DAILY, &r, &e),
                     BGR_EINVALID_PARAMETER);
    bgr_store_close(s);
    rm_rf(dir);
    free(dir);
}

BGR_TEST(dates)
{
    int64_t d;
    char buf[21];
    struct bgr_error e;
    BGR_CHECK_EQ_INT(bgr_day_from_ymd(1970, 1, 1), 0);
    BGR_CHECK_EQ_INT(bgr_day_parse("2024-02-29", &d, &e), 0);
    bgr_day_format(d, buf);
    BGR_CHECK_STR(buf, "2024-02-29");
    BGR_CHECK_EQ_INT(bgr_day_parse("2026-02-13T10:00:00Z", &d, &e), 0);
    BGR_CHECK_EQ_INT(d, bgr_day_from_ymd(2026, 2, 13));
    BGR_CHECK_EQ_INT(bgr_day_parse("2026-02-29", &d, &e), BGR_EINVALID_PARAMETER);
    BGR_CHECK_EQ_INT(bgr_day_parse("2026-13-01", &d, &e), BGR_EINVALID_PARAMETER);
    BGR_CHECK_EQ_INT(bgr_day_parse("2026-1-01", &d, &e), BGR_EINVALID_PARAMETER);
    BGR_CHECK_EQ_INT(bgr_day_parse("2026-01-01x", &d, &e), BGR_EINVALID_PARAMETER);
    BGR_CHECK_EQ_INT(bgr_day_parse("", &d, &e), BGR_EINVALID_PARAMETER);
    bgr_time_format(bgr_day_from_ymd(2026, 2, 14) * DAY_MS + (22 * 3600 + 30 * 60) * 1000LL, buf);
    BGR_CHECK_STR(buf, "2026-02-14T22:30:00Z");
}

/* The one row of *refs (n of them) with this id, or NULL. */
static const struct bgr_image_ref *find_ref(const struct bgr_image_ref *refs, size_t n,
                                            const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(refs[i].id, id) == 0)
            return &refs[i];
    return NULL;
}

/* The store keeps the rules of deletion, expiry and orphans and touches no
 * file: it says which objects must go and records that they went (the
 * objects themselves are src/results' business, tested there and in jobs). */
BGR_TEST(images_delete_and_expiry)
{
    char *dir = tmp_dir();
    struct bgr_store *s = open_store(dir);
    struct bgr_error e = {0};
    struct bgr_account a, b;
    struct bgr_image m1, m2, got;
    struct bgr_image_ref *refs = NULL;
    size_t n = 99;
    bool needed = false;
    int64_t now = t0();
    char key1[96];
    BGR_REQUIRE(s);
    BGR_REQUIRE(bgr_store_account_create(s, "a@example.com", "free", now, &a, &e) == 0);
    BGR_REQUIRE(bgr_store_account_create(s, "b@example.com", "free", now, &b, &e) == 0);
    m1 = mk_image(&a, now, 1); /* a row as written before src/results: "results/<key>" */
    m2 = mk_image(&a, now + 1000, 1);
    snprintf(m2.path, sizeof(m2.path), "%s.png", m2.id); /* as written now: the key */
    snprintf(key1, sizeof(key1), "%s.png", m1.id);
    BGR_CHECK(strncmp(m1.id, "img_", 4) == 0 && strlen(m1.id) == 26);
    BGR_CHECK_EQ_INT(bgr_store_image_add(s, &a, &m1, NULL, &e), 0);
    BGR_CHECK_EQ_INT(bgr_store_image_add(s, &a, &m2, NULL, &e), 0);
    BGR_CHECK_EQ_INT(bgr_store_image_get(s, m1.id, NULL, now + 1, &got, &e), 0);
    BGR_CHECK_EQ_INT(got.expires_at_ms, now + 86400000LL);
    BGR_CHECK_STR(got.path, key1); /* old rows read back as the key */
    BGR_CHECK_EQ_INT(bgr_store_image_get(s, m2.id, NULL, now + 1, &got, &e), 0);
    BGR_CHECK_STR(got.path, m2.path);
    BGR_CHECK_EQ_INT(bgr_store_image_get(s, m1.id, b.id, now + 1, &got, &e), BGR_ENOT_FOUND);

    /* Delete: not by another account; then gone; twice is 404. */
    BGR_CHECK_EQ_INT(bgr_store_image_delete(s, b.id, m1.id, now + 2, &got, &e), BGR_ENOT_FOUND);
    BGR_CHECK_EQ_INT(bgr_store_image_delete(s, a.id, m1.id, now + 2, &got, &e), 0);
    BGR_CHECK_EQ_INT(got.deleted_at_ms, now + 2);
    BGR_CHECK_STR(got.path, key1);
    BGR_CHECK_EQ_INT(bgr_store_image_get(s, m1.id, NULL, now + 3, &got, &e), BGR_ENOT_FOUND);
    BGR_CHECK_EQ_INT(bgr_store_image_delete(s, a.id, m1.id, now + 3, &got, &e), BGR_ENOT_FOUND);
    BGR_CHECK_EQ_INT(bgr_store_image_delete(s, a.id, "img_unknown", now + 3, &got, &e),
                     BGR_ENOT_FOUND);

    /* The deleted result's object must go, and is offered until recorded gone. */
    BGR_CHECK_EQ_INT(bgr_store_images_to_purge(s, now + 3, 0, &refs, &n, &e), 0);
    BGR_CHECK_EQ_INT(n, 1);
    BGR_CHECK(n == 1 && strcmp(refs[0].id, m1.id) == 0 && strcmp(refs[0].key, key1) == 0);
    free(refs);
    BGR_CHECK_EQ_INT(bgr_store_image_needs_object(s, m1.id, &needed, &e), 0);
    BGR_CHECK(needed); /* not purged yet: the orphan sweep must keep it */
    BGR_CHECK_EQ_INT(bgr_store_image_purged(s, m1.id, now + 4, &e), 0);
    BGR_CHECK_EQ_INT(bgr_store_images_to_purge(s, now + 5000, 0, &refs, &n, &e), 0);
    BGR_CHECK_EQ_INT(n, 0);
    free(refs);
    BGR_CHECK_EQ_INT(bgr_store_image_needs_object(s, m1.id, &needed, &e), 0);
    BGR_CHECK(!needed);

    /* Expiry: live until expires_at, then 404 and offered for removal. */
    BGR_CHECK_EQ_INT(bgr_store_image_get(s, m2.id, NULL, m2.expires_at_ms - 1, &got, &e), 0);
    BGR_CHECK_EQ_INT(bgr_store_image_get(s, m2.id, NULL, m2.expires_at_ms, &got, &e),
                     BGR_ENOT_FOUND);
    BGR_CHECK_EQ_INT(bgr_store_images_to_purge(s, m2.expires_at_ms - 1, 0, &refs, &n, &e), 0);
    BGR_CHECK_EQ_INT(n, 0);
    free(refs);
    BGR_CHECK_EQ_INT(bgr_store_images_to_purge(s, m2.expires_at_ms, 0, &refs, &n, &e), 0);
    BGR_CHECK_EQ_INT(n, 1);
    BGR_CHECK(find_ref(refs, n, m2.id) && strcmp(find_ref(refs, n, m2.id)->key, m2.path) == 0);
    free(refs);
    BGR_CHECK_EQ_INT(bgr_store_image_purged(s, m2.id, m2.expires_at_ms, &e), 0);
    BGR_CHECK_EQ_INT(bgr_store_images_to_purge(s, m2.expires_at_ms + 1, 0, &refs, &n, &e), 0);
    BGR_CHECK_EQ_INT(n, 0);
    free(refs);

    /* Orphans: a live row needs its object; a purged row or no row does not. */
    {
        struct bgr_image m3 = mk_image(&a, now, 0);
        BGR_CHECK_EQ_INT(bgr_store_image_add(s, &a, &m3, NULL, &e), 0);
        BGR_CHECK_EQ_INT(bgr_store_image_needs_object(s, m3.id, &needed, &e), 0);
        BGR_CHECK(needed);
        BGR_CHECK_EQ_INT(bgr_store_image_needs_object(s, m2.id, &needed, &e), 0);
        BGR_CHECK(!needed);
        needed = true;
        BGR_CHECK_EQ_INT(bgr_store_image_needs_object(s, "img_orphanorphanorphan00", &needed, &e),
                         0);
        BGR_CHECK(!needed);
    }
    /* Usage history keeps expired and deleted results. */
    {
        struct bgr_month_usage mu;
        BGR_CHECK_EQ_INT(bgr_store_usage_month(s, a.id, now, &mu, &e), 0);
        BGR_CHECK_EQ_INT(mu.images_processed, 3);
    }
    bgr_store_close(s);
    rm_rf(dir);
    free(dir);
}

BGR_TEST(batch_persistence_and_recovery)
{
    char *dir = tmp_dir();
    struct bgr_store *s = open_store(dir);
    struct bgr_error e = {0};
    struct bgr_account a;
    struct bgr_batch b, got;
    struct bgr_batch_item_new items[3];
    struct bgr_batch_item *its = NULL;
    struct bgr_image m;
    int64_t *ids = NULL, now = t0();
    size_t n = 0;
    bool done = true;
    BGR_REQUIRE(s);
    BGR_REQUIRE(bgr_store_account_create(s, "b@example.com", "pro", now, &a, &e) == 0);
    memset(items, 0, sizeof(items));
    for (int i = 0; i < 3; i++)
        bgr_output_opts_init(&items[i].opts);
    items[0].image_url = "http://example.com/1.png";
    items[1].image_url = "http://example.com/2.png";
    items[1].opts.format = BGR_FORMAT_WEBP;
    items[1].opts.quality = 70;
    items[1].opts.has_bg_color = true;
    items[1].opts.bg_color = (struct bgr_color){1, 2, 3, 255};
    items[1].opts.crop = true;
    items[2].image_url = "http://example.com/3.png";
    BGR_CHECK_EQ_INT(bgr_store_batch_create(s, a.id, "http://hook", items, 0, 20, now, &b, &e),
                     BGR_EBATCH_TOO_LARGE);
    BGR_CHECK_EQ_INT(bgr_store_batch_create(s, a.id, "http://hook", items, 21, 20, now, &b, &e),
                     BGR_EBATCH_TOO_LARGE);
    BGR_REQUIRE(bgr_store_batch_create(s, a.id, "http://hook/done", items, 3, 20, now, &b, &e) ==
                0);
    BGR_CHECK(strncmp(b.id, "batch_", 6) == 0);
    BGR_CHECK_STR(b.status, "queued");

    BGR_REQUIRE(bgr_store_batch_items(s, b.id, &its, &n, &e) == 0);
    BGR_REQUIRE(n == 3);
    BGR_CHECK_STR(its[1].image_url, "http://example.com/2.png");
    BGR_CHECK_EQ_INT(its[1].opts.format, BGR_FORMAT_WEBP);
    BGR_CHECK_EQ_INT(its[1].opts.quality, 70);
    BGR_CHECK(its[1].opts.has_bg_color && its[1].opts.crop);
    BGR_CHECK_EQ_INT(its[1].opts.bg_color.g, 2);
    BGR_CHECK_EQ_INT(its[1].opts.bg_color.a, 255);
    int64_t id0 = its[0].item_id, id1 = its[1].item_id, id2 = its[2].item_id;
    free(its);

    /* Worker takes items 0 and 1, finishes 0, then the process is killed. */
    BGR_CHECK_EQ_INT(bgr_store_item_start(s, id0, now, &e), 0);
    BGR_CHECK_EQ_INT(bgr_store_item_start(s, id0, now, &e), BGR_ENOT_FOUND); /* once */
    BGR_CHECK_EQ_INT(bgr_store_item_start(s, id1, now, &e), 0);
    m = mk_image(&a, now + 10, 1);
    snprintf(m.batch_id, sizeof(m.batch_id), "%s", b.id);
    BGR_CHECK_EQ_INT(bgr_store_item_complete(s, id0, &a, &m, now + 10, &done, &e), 0);
    BGR_CHECK(!done);
    BGR_CHECK_EQ_INT(bgr_store_batch_get(s, b.id, a.id, &got, &e), 0);
    BGR_CHECK_STR(got.status, "processing");
    BGR_CHECK_EQ_INT(got.completed, 1);
    BGR_CHECK_EQ_INT(got.processing, 1);
    BGR_CHECK_EQ_INT(bgr_store_batch_get(s, b.id, "usr_other", &got, &e), BGR_ENOT_FOUND);
    bgr_store_close(s); /* "kill -9": item 1 stays processing */

    s = open_store(dir);
    BGR_REQUIRE(s);
    BGR_REQUIRE(bgr_store_items_recover(s, &ids, &n, &e) == 0);
    BGR_REQUIRE(n == 2);
    BGR_CHECK_EQ_INT(ids[0], id1);
    BGR_CHECK_EQ_INT(ids[1], id2);
    free(ids);
    BGR_CHECK_EQ_INT(bgr_store_item_start(s, id1, now, &e), 0);
    BGR_CHECK_EQ_INT(bgr_store_item_start(s, id2, now, &e), 0);
    /* A completed item cannot complete again (no double charge). */
    BGR_CHECK_EQ_INT(bgr_store_item_complete(s, id0, &a, &m, now + 20, &done, &e), BGR_ENOT_FOUND);
    BGR_CHECK_EQ_INT(
        bgr_store_item_fail(s, id1, "IMAGE_DOWNLOAD_FAILED", "HTTP 404", now + 30, &done, &e), 0);
    BGR_CHECK(!done);
    m = mk_image(&a, now + 40, 1);
    BGR_CHECK_EQ_INT(bgr_store_item_complete(s, id2, &a, &m, now + 40, &done, &e), 0);
    BGR_CHECK(done);

    BGR_CHECK_EQ_INT(bgr_store_batch_get(s, b.id, a.id, &got, &e), 0);
    BGR_CHECK_STR(got.status, "completed");
    BGR_CHECK_EQ_INT(got.completed, 2);
    BGR_CHECK_EQ_INT(got.failed, 1);
    BGR_CHECK_EQ_INT(got.finished_at_ms, now + 40);
    BGR_REQUIRE(bgr_store_batch_items(s, b.id, &its, &n, &e) == 0);
    BGR_CHECK_STR(its[1].error_code, "IMAGE_DOWNLOAD_FAILED");
    BGR_CHECK_EQ_INT(its[0].attempts, 1);
    BGR_CHECK_EQ_INT(its[1].attempts, 2);
    BGR_CHECK_STR(its[2].image.id, m.id);
    BGR_CHECK_STR(its[2].image.format, "png");
    free(its);
    {
        int64_t used = 0;
        BGR_CHECK_EQ_INT(bgr_store_credits(s, &a, now, &used, NULL, &e), 0);
        BGR_CHECK_EQ_INT(used, 2); /* exactly the completed items */
    }
    /* The batch's one webhook is in the outbox, payload to be rendered. */
    {
        struct bgr_webhook *due = NULL;
        BGR_REQUIRE(bgr_store_outbox_due(s, now + 40, 10, &due, &n, &e) == 0);
        BGR_REQUIRE(n == 1);
        BGR_CHECK_STR(due[0].event, "batch.completed");
        BGR_CHECK_STR(due[0].ref, b.id);
        BGR_CHECK_STR(due[0].url, "http://hook/done");
        BGR_CHECK_STR(due[0].payload, "");
        BGR_CHECK_EQ_INT(bgr_store_outbox_set_payload(s, due[0].row_id, "{\"x\":1}", &e), 0);
        BGR_CHECK_EQ_INT(
            bgr_store_outbox_result(s, due[0].row_id, false, now + 1000, "HTTP 500", &e), 0);
        bgr_webhook_release(&due[0]);
        free(due);
        BGR_REQUIRE(bgr_store_outbox_due(s, now + 999, 10, &due, &n, &e) == 0);
        BGR_CHECK_EQ_INT(n, 0);
        free(due);
        BGR_REQUIRE(bgr_store_outbox_due(s, now + 1000, 10, &due, &n, &e) == 0);
        BGR_REQUIRE(n == 1);
        BGR_CHECK_STR(due[0].payload, "{\"x\":1}");
        BGR_CHECK_EQ_INT(due[0].attempts, 1);
        BGR_CHECK_EQ_INT(bgr_store_outbox_result(s, due[0].row_id, true, 0, NULL, &e), 0);
        bgr_webhook_release(&due[0]);
        free(due);
        int64_t next = -1;
        BGR_CHECK_EQ_INT(bgr_store_outbox_next_due(s, &next, &e), 0);
        BGR_CHECK_EQ_INT(next, 0);
    }
    bgr_store_close(s);
    rm_rf(dir);
    free(dir);
}

BGR_TEST(all_failed_batch_is_failed)
{
    char *dir = tmp_dir();
    struct bgr_store *s = open_store(dir);
    struct bgr_error e = {0};
    struct bgr_account a;
    struct bgr_batch b;
    struct bgr_batch_item_new it = {.image_url = "http://example.com/x"};
    bgr_output_opts_init(&it.opts);
    int64_t *ids = NULL;
    size_t n = 0;
    bool done = false;
    BGR_REQUIRE(s);
    BGR_REQUIRE(bgr_store_account_create(s, "f@example.com", "free", t0(), &a, &e) == 0);
    BGR_REQUIRE(bgr_store_batch_create(s, a.id, NULL, &it, 1, 20, t0(), &b, &e) == 0);
    BGR_REQUIRE(bgr_store_items_recover(s, &ids, &n, &e) == 0 && n == 1);
    BGR_CHECK_EQ_INT(bgr_store_item_start(s, ids[0], t0(), &e), 0);
    BGR_CHECK_EQ_INT(bgr_store_item_fail(s, ids[0], "UNSUPPORTED_FORMAT", "bad", t0(), &done, &e),
                     0);
    BGR_CHECK(done);
    BGR_CHECK_EQ_INT(bgr_store_batch_get(s, b.id, NULL, &b, &e), 0);
    BGR_CHECK_STR(b.status, "failed");
    {
        struct bgr_webhook *due = NULL;
        BGR_CHECK_EQ_INT(bgr_store_outbox_due(s, t0() + 1, 10, &due, &n, &e), 0);
        BGR_CHECK_EQ_INT(n, 0); /* no webhook_url, no webhook */
        free(due);
    }
    free(ids);
    bgr_store_close(s);
    rm_rf(dir);
    free(dir);
}

struct racer {
    struct bgr_store *s;
    struct bgr_account a;
    int64_t now;
    int ok, refused, other;
};

static void *race_images(void *arg)
{
    struct racer *r = arg;
    for (int i = 0; i < 10; i++) {
        struct bgr_error e;
        struct bgr_image m = mk_image(&r->a, r->now + i, 1);
        int rc = bgr_store_image_add(r->s, &r->a, &m, NULL, &e);
        if (rc == 0)
            __atomic_add_fetch(&r->ok, 1, __ATOMIC_SEQ_CST);
        else if (rc == BGR_EINSUFFICIENT_CREDITS)
            __atomic_add_fetch(&r->refused, 1, __ATOMIC_SEQ_CST);
        else
            __atomic_add_fetch(&r->other, 1, __ATOMIC_SEQ_CST);
    }
    return NULL;
}

/* Eight threads (eight pooled connections, as two processes would be) race
 * for 50 credits with 80 results: exactly 50 commit. */
BGR_TEST(credits_atomic_under_concurrency)
{
    char *dir = tmp_dir();
    struct bgr_store_opts o = {.pool_size = 8};
    struct bgr_store *s = NULL;
    struct bgr_error e = {0};
    struct racer r = {0};
    pthread_t th[8];
    int64_t used = 0;
    BGR_REQUIRE(bgr_store_open(dir, &o, &s, &e) == 0);
    BGR_REQUIRE(bgr_store_account_create(s, "race@example.com", "free", t0(), &r.a, &e) == 0);
    r.s = s;
    r.now = t0();
    for (int i = 0; i < 8; i++)
        pthread_create(&th[i], NULL, race_images, &r);
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    BGR_CHECK_EQ_INT(r.ok, 50);
    BGR_CHECK_EQ_INT(r.refused, 30);
    BGR_CHECK_EQ_INT(r.other, 0);
    BGR_CHECK_EQ_INT(bgr_store_credits(s, &r.a, t0(), &used, NULL, &e), 0);
    BGR_CHECK_EQ_INT(used, 50);
    bgr_store_close(s);
    rm_rf(dir);
    free(dir);
}

/* Two processes (the server and the admin CLI, say) on one data dir: the
 * credit check-and-charge holds across them too. */
BGR_TEST(credits_atomic_across_processes)
{
    char *dir = tmp_dir();
    struct bgr_store *s = open_store(dir);
    struct bgr_error e = {0};
    struct bgr_account a;
    int ok = 0, status = 0;
    int64_t used = 0;
    pid_t child;
    BGR_REQUIRE(s);
    BGR_REQUIRE(bgr_store_account_create(s, "p@example.com", "free", t0(), &a, &e) == 0);
    bgr_store_close(s);
    child = fork();
    BGR_REQUIRE(child >= 0);
    s = open_store(dir); /* each process its own connections, opened after fork */
    if (!s)
        _exit(200);
    for (int i = 0; i < 40; i++) {
        struct bgr_image m = mk_image(&a, t0() + i, 1);
        if (bgr_store_image_add(s, &a, &m, NULL, &e) == 0)
            ok++;
        else if (e.code != BGR_EINSUFFICIENT_CREDITS && child == 0)
            _exit(201);
    }
    if (child == 0) {
        bgr_store_close(s);
        _exit(ok); /* the child's count of successes */
    }
    BGR_REQUIRE(waitpid(child, &status, 0) == child && WIFEXITED(status));
    BGR_CHECK(WEXITSTATUS(status) <= 40);
    BGR_CHECK_EQ_INT(ok + WEXITSTATUS(status), 50);
    BGR_CHECK_EQ_INT(bgr_store_credits(s, &a, t0(), &used, NULL, &e), 0);
    BGR_CHECK_EQ_INT(used, 50);
    bgr_store_close(s);
    rm_rf(dir);
    free(dir);
}

/* Group commit (issue 4): threads of two processes charge the daily limit
 * and record usage at once; the writes share transactions, yet exactly
 * per_day requests are admitted and every admitted one is counted once, in
 * the usage rows, the per-day counters and the month's api_calls. */
struct usage_racer {
    struct bgr_store *s;
    struct bgr_account a;
    int admitted, refused, other;
};

static void *race_usage(void *arg)
{
    struct usage_racer *r = arg;
    for (int i = 0; i < 100; i++) {
        struct bgr_error e;
        struct bgr_rate_status st;
        int rc = bgr_store_rate_hit(r->s, &r->a, t0() + i, &st, &e);
        if (rc == 0 &&
            bgr_store_usage_record(r->s, r->a.id, t0() + i, "GET /v1/account", 200, 1, &e) == 0)
            __atomic_add_fetch(&r->admitted, 1, __ATOMIC_SEQ_CST);
        else if (rc == BGR_EDAILY_LIMIT_EXCEEDED)
            __atomic_add_fetch(&r->refused, 1, __ATOMIC_SEQ_CST);
        else
            __atomic_add_fetch(&r->other, 1, __ATOMIC_SEQ_CST);
    }
    return NULL;
}

BGR_TEST(usage_group_commit_exact)
{
    char *dir = tmp_dir();
    struct bgr_plan plan = {"t", 1000000, 500, 1 << 20, 3600, 10};
    struct bgr_store_opts o = {.plans = &plan, .n_plans = 1};
    struct bgr_store *s = NULL;
    struct bgr_error e = {0};
    struct usage_racer r = {0};
    struct bgr_month_usage mu;
    struct bgr_usage_report rep;
    pthread_t th[6];
    int status = 0;
    BGR_REQUIRE(bgr_store_open(dir, &o, &s, &e) == 0);
    BGR_REQUIRE(bgr_store_account_create(s, "g@example.com", "t", t0(), &r.a, &e) == 0);
    bgr_store_close(s);
    pid_t child = fork();
    BGR_REQUIRE(child >= 0);
    BGR_REQUIRE(bgr_store_open(dir, &o, &s, &e) == 0); /* after fork: its own connections */
    r.s = s;
    for (int i = 0; i < 6; i++)
        pthread_create(&th[i], NULL, race_usage, &r);
    for (int i = 0; i < 6; i++)
        pthread_join(th[i], NULL);
    if (child == 0) {
        bgr_store_close(s);
        _exit(r.other ? 1 : 0);
    }
    BGR_REQUIRE(waitpid(child, &status, 0) == child && WIFEXITED(status));
    BGR_CHECK_EQ_INT(WEXITSTATUS(status), 0); /* no error in the child either */
    BGR_CHECK_EQ_INT(r.other, 0);
    BGR_CHECK_EQ_INT(db_int(dir, "SELECT COUNT(*) FROM usage"), 500);
    BGR_CHECK_EQ_INT(db_int(dir, "SELECT SUM(n) FROM usage_days"), 500);
    BGR_CHECK_EQ_INT(db_int(dir, "SELECT SUM(n) FROM daily_counts"), 500);
    BGR_CHECK_EQ_INT(bgr_store_usage_month(s, r.a.id, t0(), &mu, &e), 0);
    BGR_CHECK_EQ_INT(mu.api_calls, 500);
    BGR_REQUIRE(bgr_store_usage_range(s, r.a.id, bgr_day_from_ms(t0()) - 3, bgr_day_from_ms(t0()),
                                      BGR_GRAN_DAILY, &rep, &e) == 0);
    BGR_CHECK_EQ_INT(rep.total_requests, 500);
    BGR_CHECK_EQ_INT(rep.n_buckets, 4);
    BGR_CHECK_EQ_INT(rep.buckets[0].requests, 500);
    bgr_usage_report_release(&rep);
    bgr_store_close(s);
    rm_rf(dir);
    free(dir);
}

/* Migration 3 counts the usage rows an older database already holds. */
BGR_TEST(usage_days_backfilled)
{
    char *dir = tmp_dir();
    struct bgr_store_opts o = {.schema_version = 2};
    struct bgr_store *s = NULL;
    struct bgr_error e = {0};
    struct bgr_account a;
    struct bgr_month_usage mu;
    char path[512], sql[256];
    sqlite3 *db = NULL;
    BGR_REQUIRE(bgr_store_open(dir, &o, &s, &e) == 0);
    BGR_REQUIRE(bgr_store_account_create(s, "m@example.com", "pro", t0(), &a, &e) == 0);
    bgr_store_close(s);
    snprintf(path, sizeof(path), "%s/bgremover.db", dir);
    BGR_REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
    for (int i = 0; i < 7; i++) {
        snprintf(sql, sizeof(sql),
                 "INSERT INTO usage(account_id, ts, day, route, status, duration_ms)"
                 " VALUES('%s', %lld, %lld, 'GET /v1/account', 200, 1)",
                 a.id, (long long)t0(), (long long)bgr_day_from_ms(t0()));
        BGR_CHECK_EQ_INT(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    }
    sqlite3_close(db);
    s = open_store(dir);
    BGR_REQUIRE(s);
    BGR_CHECK_EQ_INT(bgr_store_usage_month(s, a.id, t0(), &mu, &e), 0);
    BGR_CHECK_EQ_INT(mu.api_calls, 7);
    BGR_CHECK_EQ_INT(bgr_store_usage_record(s, a.id, t0(), "GET /v1/usage", 200, 1, &e), 0);
    BGR_CHECK_EQ_INT(bgr_store_usage_month(s, a.id, t0(), &mu, &e), 0);
    BGR_CHECK_EQ_INT(mu.api_calls, 8);
    bgr_store_close(s);
    rm_rf(dir);
    free(dir);
}

/* ---- admin: opening modes, unique e-mails, revoke, credits, delete -------- */

BGR_TEST(open_modes_create_nothing_by_mistake)
{
    char *dir = tmp_dir(), sub[600], p[700];
    struct bgr_store_opts must = {.create = BGR_STORE_MUST_EXIST};
    struct bgr_store_opts if_empty = {.create = BGR_STORE_IF_EMPTY};
    struct bgr_store *s = NULL;
    struct bgr_error e = {0};

    /* MUST_EXIST: a missing directory is an error naming it; nothing made. */
    snprintf(sub, sizeof(sub), "%s/typo", dir);
    BGR_CHECK_EQ_INT(bgr_store_open(sub, &must, &s, &e), BGR_ENOT_FOUND);
    BGR_CHECK(s == NULL);
    BGR_CHECK(strstr(e.msg, sub) != NULL);
    BGR_CHECK(access(sub, F_OK) != 0);
    /* ... and so is an existing directory without a store. */
    BGR_CHECK_EQ_INT(bgr_store_open(dir, &must, &s, &e), BGR_ENOT_FOUND);
    snprintf(p, sizeof(p), "%s/bgremover.db", dir);
    BGR_CHECK(access(p, F_OK) != 0);

    /* IF_EMPTY: a non-empty directory without a store is refused... */
    touch(dir, "something.txt");
    BGR_CHECK_EQ_INT(bgr_store_open(dir, &if_empty, &s, &e), BGR_ENOT_FOUND);
    BGR_CHECK(strstr(e.msg, "--init") != NULL);
    BGR_CHECK(access(p, F_OK) != 0);
    BGR_CHECK(!exists(dir, "results"));
    /* ... a new one is created, and says so; the next open finds it. */
    BGR_REQUIRE(bgr_store_open(sub, &if_empty, &s, &e) == 0);
    BGR_CHECK(bgr_store_created(s));
    bgr_store_close(s);
    s = NULL;
    BGR_REQUIRE(bgr_store_open(sub, &must, &s, &e) == 0);
    BGR_CHECK(!bgr_store_created(s));
    bgr_store_close(s);
    s = NULL;
    /* CREATE (the default) makes one anywhere. */
    BGR_REQUIRE(bgr_store_open(dir, NULL, &s, &e) == 0);
    BGR_CHECK(bgr_store_created(s));
    bgr_store_close(s);
    rm_rf(dir);
    free(dir);
}

BGR_TEST(emails_unique_without_case)
{
    char *dir = tmp_dir(), p[512];
    struct bgr_store *s = open_store(dir);
    struct bgr_error e = {0};
    struct bgr_account a, b, got;
    sqlite3 *db;
    BGR_REQUIRE(s);
    BGR_REQUIRE(bgr_store_account_create(s, "  Dup@Example.com\t", "pro", t0(), &a, &e) == 0);
    BGR_CHECK_STR(a.email, "Dup@Example.com"); /* stored trimmed */
    BGR_CHECK_EQ_INT(bgr_store_account_create(s, "dup@example.COM", "free", t0(), &b, &e),
                     BGR_EINVALID_PARAMETER);
    BGR_CHECK(strstr(e.msg, a.id) != NULL);
    BGR_CHECK_EQ_INT(bgr_store_account_find_email(s, " DUP@example.com ", &got, &e), 0);
    BGR_CHECK_STR(got.id, a.id);
    BGR_CHECK_EQ_INT(bgr_store_account_find_email(s, "other@example.com", &got, &e),
                     BGR_ENOT_FOUND);
    BGR_CHECK_EQ_INT(bgr_store_account_create(s, "   ", "free", t0(), &b, &e),
                     BGR_EINVALID_PARAMETER);
    bgr_store_close(s);

    /* A database from before the rule may hold duplicates: it still opens,
     * lists, and finds the oldest; new duplicates stay refused. */
    snprintf(p, sizeof(p), "%s/bgremover.db", dir);
    BGR_REQUIRE(sqlite3_open(p, &db) == SQLITE_OK);
    BGR_CHECK_EQ_INT(
        sqlite3_exec(db,
                     "INSERT INTO accounts(id, email, plan, webhook_secret, created_at)"
                     " VALUES('usr_olddup', 'dup@example.com', 'free', 'whsec_x', 9e15)",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    s = open_store(dir);
    BGR_REQUIRE(s);
    BGR_CHECK_EQ_INT(bgr_store_account_find_email(s, "dup@example.com", &got, &e), 0);
    BGR_CHECK_STR(got.id, a.id);
    BGR_CHECK_EQ_INT(bgr_store_account_get(s, "usr_olddup", &got, &e), 0);
    BGR_CHECK_EQ_INT(bgr_store_account_create(s, "DUP@example.com", "free", t0(), &b, &e),
                     BGR_EINVALID_PARAMETER);
    bgr_store_close(s);
    rm_rf(dir);
    free(dir);
}

BGR_TEST(revoke_twice_says_so)
{
    char *dir = tmp_dir(), key[BGR_KEY_MAX];
    struct bgr_store *s = open_store(dir);
    struct bgr_error e = {0};
    struct bgr_account a;
    struct bgr_key_info ki, first, again;
    bool already = true;
    BGR_REQUIRE(s);
    BGR_REQUIRE(bgr_store_account_create(s, "rv@example.com", "free", t0(), &a, &e) == 0);
    BGR_REQUIRE(bgr_store_key_create(s, a.id, t0(), key, &ki, &e) == 0);
    BGR_CHECK_EQ_INT(ki.revoked_at_ms, 0);
    BGR_CHECK_EQ_INT(bgr_store_key_revoke(s, key, &first, &already, &e), 0);
    BGR_CHECK(!already);
    BGR_CHECK(first.revoked && first.revoked_at_ms > 0);
    BGR_CHECK_EQ_INT(bgr_store_key_revoke(s, ki.prefix, &again, &already, &e), 0);
    BGR_CHECK(already);
    BGR_CHECK_EQ_INT(again.revoked_at_ms, first.revoked_at_ms); /* the first revocation's */
    bgr_store_close(s);
    rm_rf(dir);
    free(dir);
}

BGR_TEST(credit_adjustments_per_month)
{
    char *dir = tmp_dir(), key[BGR_KEY_MAX];
    struct bgr_store *s = open_store(dir);
    struct bgr_error e = {0};
    struct bgr_account a, got, ent;
    struct bgr_key_info ki;
    struct bgr_credit_balance b;
    struct bgr_image m;
    int64_t now = t0(), next_month = bgr_day_from_ymd(2026, 3, 1) * DAY_MS + 1000;
    BGR_REQUIRE(s);
    BGR_REQUIRE(bgr_store_account_create(s, "cr@example.com", "free", now, &a, &e) == 0);
    BGR_REQUIRE(bgr_store_key_create(s, a.id, now, key, &ki, &e) == 0);
    BGR_CHECK_EQ_INT(bgr_store_credits_balance(s, a.id, now, &b, &e), 0);
    BGR_CHECK_EQ_INT(b.plan_monthly, 50);
    BGR_CHECK_EQ_INT(b.adjustment, 0);
    BGR_CHECK_EQ_INT(b.total, 50);

    /* +10: the account, as a request sees it, has 60 this month, and the
     * charge at commit allows exactly 60. */
    BGR_CHECK_EQ_INT(bgr_store_credits_change(s, a.id, 10, false, now, &b, &e), 0);
    BGR_CHECK_EQ_INT(b.total, 60);
    BGR_CHECK(b.remaining == 60);
    BGR_CHECK_EQ_INT(bgr_store_key_lookup(s, key, now, &got, &e), 0);
    BGR_CHECK_EQ_INT(got.plan.monthly_credits, 60);
    for (int i = 0; i < 60; i++) {
        m = mk_image(&got, now + i, 1);
        BGR_CHECK_EQ_INT(bgr_store_image_add(s, &got, &m, NULL, &e), 0);
    }
    m = mk_image(&got, now + 100, 1);
    BGR_CHECK_EQ_INT(bgr_store_image_add(s, &got, &m, NULL, &e), BGR_EINSUFFICIENT_CREDITS);

    /* Nothing left: subtracting is refused and changes nothing; adding
     * works; --set makes exactly N remain. */
    BGR_CHECK_EQ_INT(bgr_store_credits_change(s, a.id, -1, false, now, &b, &e),
                     BGR_EINVALID_PARAMETER);
    BGR_CHECK(strstr(e.msg, "0 left") != NULL);
    BGR_CHECK_EQ_INT(bgr_store_credits_balance(s, a.id, now, &b, &e), 0);
    BGR_CHECK_EQ_INT(b.total, 60);
    BGR_CHECK_EQ_INT(bgr_store_credits_change(s, a.id, 5, true, now, &b, &e), 0);
    BGR_CHECK_EQ_INT(b.total, 65);
    BGR_CHECK(b.remaining == 5);
    BGR_CHECK_EQ_INT(bgr_store_credits_change(s, a.id, 0, true, now, &b, &e), 0);
    BGR_CHECK(b.remaining == 0);
    BGR_CHECK_EQ_INT(bgr_store_credits_change(s, a.id, -3, true, now, &b, &e),
                     BGR_EINVALID_PARAMETER);

    /* Adjustments end with their month, as the allowance does. */
    BGR_CHECK_EQ_INT(bgr_store_credits_balance(s, a.id, next_month, &b, &e), 0);
    BGR_CHECK_EQ_INT(b.adjustment, 0);
    BGR_CHECK_EQ_INT(b.total, 50);
    BGR_CHECK(b.used == 0);
    BGR_CHECK_EQ_INT(bgr_store_key_lookup(s, key, next_month, &got, &e), 0);
    BGR_CHECK_EQ_INT(got.plan.monthly_credits, 50);

    /* A downgrade below the adjusted allowance leaves nothing, not less. */
    BGR_CHECK_EQ_INT(bgr_store_credits_change(s, a.id, -40, false, next_month, &b, &e), 0);
    BGR_CHECK_EQ_INT(b.total, 10);
    BGR_CHECK_EQ_INT(bgr_store_account_set_plan(s, a.id, "pro", &e), 0);
    BGR_CHECK_EQ_INT(bgr_store_credits_balance(s, a.id, next_month, &b, &e), 0);
    BGR_CHECK_EQ_INT(b.total, 960);

    /* Unlimited plans take none; unknown accounts are not found. */
    BGR_REQUIRE(bgr_store_account_create(s, "ent@example.com", "enterprise", now, &ent, &e) == 0);
    BGR_CHECK_EQ_INT(bgr_store_credits_change(s, ent.id, 5, false, now, &b, &e),
                     BGR_EINVALID_PARAMETER);
    BGR_CHECK_EQ_INT(bgr_store_credits_balance(s, ent.id, now, &b, &e), 0);
    BGR_CHECK_EQ_INT(b.total, BGR_UNLIMITED);
    BGR_CHECK_EQ_INT(bgr_store_credits_change(s, "usr_nope", 5, false, now, &b, &e),
                     BGR_ENOT_FOUND);
    bgr_store_close(s);
    rm_rf(dir);
    free(dir);
}

BGR_TEST(account_delete_removes_everything)
{
    char *dir = tmp_dir(), key[BGR_KEY_MAX], okey[BGR_KEY_MAX];
    struct bgr_store *s = open_store(dir);
    struct bgr_error e = {0};
    struct bgr_account a, other, got;
    struct bgr_key_info ki;
    struct bgr_account_footprint fp, removed;
    struct bgr_image m1, m2, mo, tmp;
    struct bgr_rate_status rs;
    struct bgr_batch bt;
    struct bgr_batch_item_new it = {.image_url = "http://example.com/a.png"};
    bgr_output_opts_init(&it.opts);
    struct bgr_webhook_new wh = {
        .url = "http://example.com/hook", .event = "image.completed", .payload = "{}"};
    struct bgr_credit_balance b;
    int64_t now = t0(), left = -1;
    BGR_REQUIRE(s);
    BGR_REQUIRE(bgr_store_account_create(s, "del@example.com", "pro", now, &a, &e) == 0);
    BGR_REQUIRE(bgr_store_account_create(s, "keep@example.com", "pro", now, &other, &e) == 0);
    BGR_REQUIRE(bgr_store_key_create(s, a.id, now, key, &ki, &e) == 0);
    BGR_REQUIRE(bgr_store_key_create(s, a.id, now, okey, &ki, &e) == 0);
    BGR_REQUIRE(bgr_store_key_revoke(s, okey, NULL, NULL, &e) == 0);
    BGR_REQUIRE(bgr_store_key_create(s, other.id, now, okey, &ki, &e) == 0);
    m1 = mk_image(&a, now, 1);
    m2 = mk_image(&a, now + 1, 1);
    mo = mk_image(&other, now, 1);
    touch(dir, m1.path);
    touch(dir, m2.path);
    touch(dir, mo.path);
    BGR_REQUIRE(bgr_store_image_add(s, &a, &m1, &wh, &e) == 0);
    BGR_REQUIRE(bgr_store_image_add(s, &a, &m2, NULL, &e) == 0);
    BGR_REQUIRE(bgr_store_image_add(s, &other, &mo, NULL, &e) == 0);
    /* a deleted result: its row stays; its object goes with the next sweep
     * (the store only marks it), or with the account */
    BGR_REQUIRE(bgr_store_image_delete(s, a.id, m2.id, now + 2, &tmp, &e) == 0);
    BGR_REQUIRE(bgr_store_rate_hit(s, &a, now, &rs, &e) == 0);
    BGR_REQUIRE(bgr_store_batch_create(s, a.id, NULL, &it, 1, 20, now, &bt, &e) == 0);
    BGR_REQUIRE(bgr_store_usage_record(s, a.id, now, "GET /v1/account", 200, 1, &e) == 0);
    BGR_REQUIRE(bgr_store_usage_record(s, a.id, now, "GET /v1/usage", 200, 1, &e) == 0);
    BGR_REQUIRE(bgr_store_usage_record(s, other.id, now, "GET /v1/usage", 200, 1, &e) == 0);
    BGR_REQUIRE(bgr_store_credits_change(s, a.id, 7, false, now, &b, &e) == 0);

    BGR_CHECK_EQ_INT(bgr_store_account_footprint(s, a.id, &fp, &e), 0);
    BGR_CHECK_EQ_INT(fp.keys, 2);
    BGR_CHECK_EQ_INT(fp.keys_active, 1);
    BGR_CHECK_EQ_INT(fp.batches, 1);
    BGR_CHECK_EQ_INT(fp.batch_items, 1);
    BGR_CHECK_EQ_INT(fp.results, 2);
    BGR_CHECK_EQ_INT(fp.result_files, 2);
    BGR_CHECK_EQ_INT(fp.usage_records, 2);
    BGR_CHECK_EQ_INT(fp.webhooks, 1);
    BGR_CHECK_EQ_INT(fp.credit_adjustments, 1);

    BGR_CHECK_EQ_INT(bgr_store_account_delete(s, a.id, &removed, &left, &e), 0);
    BGR_CHECK(memcmp(&removed, &fp, sizeof(fp)) == 0);
    BGR_CHECK_EQ_INT(left, 0);
    BGR_CHECK(!exists(dir, m1.path));
    BGR_CHECK(!exists(dir, m2.path));
    BGR_CHECK_EQ_INT(bgr_store_key_lookup(s, key, now, &got, &e), BGR_EUNAUTHORIZED);
    BGR_CHECK_EQ_INT(bgr_store_account_get(s, a.id, &got, &e), BGR_ENOT_FOUND);
    BGR_CHECK_EQ_INT(bgr_store_image_get(s, m1.id, NULL, now + 3, &tmp, &e), BGR_ENOT_FOUND);
    BGR_CHECK_EQ_INT(bgr_store_batch_get(s, bt.id, NULL, &bt, &e), BGR_ENOT_FOUND);
    BGR_CHECK_EQ_INT(db_int(dir, "SELECT COUNT(*) FROM usage_days"), 1); /* other's */
    BGR_CHECK_EQ_INT(db_int(dir, "SELECT COUNT(*) FROM daily_counts"), 0);
    BGR_CHECK_EQ_INT(db_int(dir, "SELECT COUNT(*) FROM outbox"), 0);
    BGR_CHECK_EQ_INT(db_int(dir, "SELECT COUNT(*) FROM credit_grants"), 0);
    /* A request that authenticated before the delete cannot commit after it. */
    tmp = mk_image(&a, now + 5, 1);
    touch(dir, tmp.path);
    BGR_CHECK_EQ_INT(bgr_store_image_add(s, &a, &tmp, NULL, &e), BGR_EUNAUTHORIZED);
    BGR_CHECK_EQ_INT(db_int(dir, "SELECT COUNT(*) FROM images WHERE account_id != (SELECT id"
                                 " FROM accounts)"),
                     0);
    BGR_CHECK_EQ_INT(bgr_store_account_delete(s, a.id, &removed, &left, &e), BGR_ENOT_FOUND);
    BGR_CHECK_EQ_INT(bgr_store_account_footprint(s, a.id, &fp, &e), BGR_ENOT_FOUND);

    /* The other account is untouched. */
    BGR_CHECK_EQ_INT(bgr_store_key_lookup(s, okey, now, &got, &e), 0);
    BGR_CHECK(exists(dir, mo.path));
    BGR_CHECK_EQ_INT(bgr_store_account_footprint(s, other.id, &fp, &e), 0);
    BGR_CHECK_EQ_INT(fp.results, 1);
    BGR_CHECK_EQ_INT(fp.usage_records, 1);
    bgr_store_close(s);
    rm_rf(dir);
    free(dir);
}

/* Idempotency keys: claim, replay, reuse, in progress, abandoned claims,
 * release, expiry. */
BGR_TEST(idempotency_keys)
{
    char *dir = tmp_dir();
    struct bgr_store *s = open_store(dir);
    struct bgr_error e = {0};
    struct bgr_account a, b;
    enum bgr_idem_state st;
    struct bgr_idem_response r = {0};
    uint8_t fp1[32], fp2[32];
    int64_t now = t0(), lease = 600000;
    int n = 0;
    BGR_REQUIRE(s);
    memset(fp1, 1, sizeof fp1);
    memset(fp2, 2, sizeof fp2);
    BGR_REQUIRE(bgr_store_account_create(s, "i@example.com", "pro", now, &a, &e) == 0);
    BGR_REQUIRE(bgr_store_account_create(s, "j@example.com", "pro", now, &b, &e) == 0);

    BGR_REQUIRE(bgr_store_idem_claim(s, a.id, "k1", fp1, now, lease, &st, &r, &e) == 0);
    BGR_CHECK_EQ_INT(st, BGR_IDEM_NEW);
    /* while it runs: the same request waits, another is refused */
    BGR_REQUIRE(bgr_store_idem_claim(s, a.id, "k1", fp1, now + 5, lease, &st, &r, &e) == 0);
    BGR_CHECK_EQ_INT(st, BGR_IDEM_IN_PROGRESS);
    BGR_REQUIRE(bgr_store_idem_claim(s, a.id, "k1", fp2, now + 5, lease, &st, &r, &e) == 0);
    BGR_CHECK_EQ_INT(st, BGR_IDEM_REUSED);
    /* keys are per account */
    BGR_REQUIRE(bgr_store_idem_claim(s, b.id, "k1", fp2, now + 5, lease, &st, &r, &e) == 0);
    BGR_CHECK_EQ_INT(st, BGR_IDEM_NEW);

    struct bgr_idem_response done = {
        .status = 200, .headers = "X-A: 1\n", .body = (uint8_t *)"{}", .len = 2};
    snprintf(done.content_type, sizeof done.content_type, "application/json");
    BGR_REQUIRE(bgr_store_idem_complete(s, a.id, "k1", now + 10, &done, &e) == 0);
    BGR_REQUIRE(bgr_store_idem_claim(s, a.id, "k1", fp1, now + 20, lease, &st, &r, &e) == 0);
    BGR_CHECK_EQ_INT(st, BGR_IDEM_REPLAY);
    BGR_CHECK_EQ_INT(r.status, 200);
    BGR_CHECK_STR(r.content_type, "application/json");
    BGR_CHECK_STR(r.headers, "X-A: 1\n");
    BGR_CHECK(r.len == 2 && memcmp(r.body, "{}", 2) == 0);
    bgr_idem_response_release(&r);
    BGR_REQUIRE(bgr_store_idem_claim(s, a.id, "k1", fp2, now + 20, lease, &st, &r, &e) == 0);
    BGR_CHECK_EQ_INT(st, BGR_IDEM_REUSED);

    /* a failed request gives its key back */
    BGR_REQUIRE(bgr_store_idem_claim(s, a.id, "k2", fp1, now, lease, &st, &r, &e) == 0);
    BGR_REQUIRE(bgr_store_idem_release(s, a.id, "k2", &e) == 0);
    BGR_REQUIRE(bgr_store_idem_claim(s, a.id, "k2", fp2, now + 1, lease, &st, &r, &e) == 0);
    BGR_CHECK_EQ_INT(st, BGR_IDEM_NEW);
    /* a claim whose process died is taken over after the lease */
    BGR_REQUIRE(bgr_store_idem_claim(s, a.id, "k2", fp2, now + 1 + lease, lease, &st, &r, &e) == 0);
    BGR_CHECK_EQ_INT(st, BGR_IDEM_NEW);
    /* after 24 hours a key is free again, and the sweeper removes it */
    int64_t later = now + 20 + BGR_IDEM_TTL_MS + 1;
    BGR_REQUIRE(bgr_store_idem_claim(s, a.id, "k1", fp2, later, lease, &st, &r, &e) == 0);
    BGR_CHECK_EQ_INT(st, BGR_IDEM_NEW);
    BGR_REQUIRE(bgr_store_idem_sweep(s, later + BGR_IDEM_TTL_MS + lease, &n, &e) == 0);
    BGR_CHECK_EQ_INT(n, 3);
    bgr_store_close(s);
    rm_rf(dir);
    free(dir);
}

BGR_TEST_MAIN()
