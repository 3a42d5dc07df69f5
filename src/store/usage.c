/*
 * usage.c - rate limits, credits and usage statistics.
 *
 * Per-minute limit: a fixed window per UTC minute. On SQLite it is counted
 * in memory (the server is the only process that admits requests; a
 * restart forgets at most one minute); on PostgreSQL in a row per (account,
 * minute) that every API node increments, so two nodes behind a load
 * balancer admit the plan's limit between them, not twice. Either way
 * X-RateLimit-Reset is exact: the window's end.
 * Daily limit: a row per (account, UTC day) incremented in a write
 * transaction, so it is exact across restarts and processes.
 * Both writes per request (the daily charge here, the usage record after
 * the response is built) are group-committed by the writer (commit.c).
 * Usage: a row per admitted request (the detail) plus a counter per
 * (account, day) kept in the same transaction, which is what api_calls and
 * /v1/usage read: a month is at most 31 rows, however busy it was.
 * Credits: derived from the results table (each result row carries the
 * credits it was charged), so there is one source of truth for
 * credits_used, images_processed and the balance checked at commit.
 */
#include "store/store_int.h"

#include <math.h>

#include <stdlib.h>
#include <string.h>

static unsigned rate_bucket(const char *id)
{
    unsigned h = 2166136261u; /* FNV-1a */
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 16777619u;
    return h % BGR_RATE_BUCKETS;
}

/* The entry for account id (created on first use); caller holds rate_mu. */
static struct bgr_rate_entry *rate_entry(struct bgr_store *s, const char *id)
{
    unsigned b = rate_bucket(id);
    struct bgr_rate_entry *e;
    for (e = s->rate[b]; e; e = e->next)
        if (strcmp(e->account_id, id) == 0)
            return e;
    e = bgr_xcalloc(1, sizeof(*e));
    bgr_st_copy(e->account_id, sizeof(e->account_id), id);
    e->next = s->rate[b];
    s->rate[b] = e;
    return e;
}

struct daily_op {
    struct bgr_store *s;
    const struct bgr_account *acct;
    int64_t day;
    bool inc;
    int64_t count; /* out: today's count after the call */
    bool over;     /* out: the limit was reached before this request */
};

/* Reads today's admitted count and, when inc and below the limit, adds
 * this request: inside the writer's transaction (inc) or alone (peek). The
 * increment is one conditional upsert, so it is exact without a lock on
 * the account: two API nodes cannot both take the day's last request. */
static int daily_run(struct bgr_db *db, void *ctx, struct bgr_error *err)
{
    struct daily_op *o = ctx;
    struct bgr_db_stmt *st = NULL;
    int64_t limit = o->acct->plan.per_day == BGR_UNLIMITED ? INT64_MAX : o->acct->plan.per_day;
    int rc, step;
    o->count = 0;
    o->over = false;
    if (o->inc) {
        rc = bgr_st_prepare_cached(
            o->s, db,
            "INSERT INTO daily_counts(account_id, day, n) VALUES(?1,?2,1)"
            " ON CONFLICT(account_id, day) DO UPDATE SET n = daily_counts.n + 1"
            " WHERE daily_counts.n < ?3 RETURNING n",
            &st, err);
        if (rc)
            goto out;
        bgr_db_bind_text(st, 1, o->acct->id);
        bgr_db_bind_int64(st, 2, o->day);
        bgr_db_bind_int64(st, 3, limit);
        step = bgr_db_step(st);
        if (step == BGR_DB_ROW) {
            o->count = bgr_db_col_int64(st, 0);
            goto out;
        }
        if (step != BGR_DB_DONE) {
            rc = bgr_st_fail(db, err, "count request");
            goto out;
        }
        bgr_st_cached_done(st);
        st = NULL;
        o->over = true; /* the condition failed: the day's limit is reached */
    }
    rc = bgr_st_prepare_cached(
        o->s, db, "SELECT n FROM daily_counts WHERE account_id = ? AND day = ?", &st, err);
    if (rc)
        goto out;
    bgr_db_bind_text(st, 1, o->acct->id);
    bgr_db_bind_int64(st, 2, o->day);
    step = bgr_db_step(st);
    if (step == BGR_DB_ROW)
        o->count = bgr_db_col_int64(st, 0);
    else if (step != BGR_DB_DONE)
        rc = bgr_st_fail(db, err, "read daily count");
    if (!o->inc)
        o->over = o->count >= limit;
out:
    bgr_st_cached_done(st);
    return rc;
}

/* Today's admitted count; increments it when inc and below the limit (a
 * group-committed write). *n receives the count after the call. */
static int daily_count(struct bgr_store *s, const struct bgr_account *acct, int64_t day, bool inc,
                       int64_t *n, bool *over, struct bgr_error *err)
{
    struct daily_op o = {s, acct, day, inc, 0, false};
    int rc;
    if (inc) {
        struct bgr_st_op op = {.run = daily_run, .ctx = &o, .lock = BGR_ST_LOCK_SHARED};
        rc = bgr_st_write(s, &op, err);
    } else {
        struct bgr_db *db = bgr_st_acquire(s);
        rc = daily_run(db, &o, err);
        bgr_st_release(s, db);
    }
    if (!rc) {
        *n = o.count;
        *over = o.over;
    }
    return rc;
}

/* The shared minute window (PostgreSQL): takes a slot when inc and one is
 * free (one statement: the row lock of the upsert makes it exact across
 * nodes), else reads the count. *used is the count after the call. */
static int minute_db(struct bgr_store *s, const struct bgr_account *acct, int64_t minute, bool inc,
                     int64_t *used, bool *over, struct bgr_error *err)
{
    struct bgr_db *db = bgr_st_acquire(s);
    struct bgr_db_stmt *st = NULL;
    int step, rc = 0;
    *over = false;
    *used = 0;
    if (inc) {
        rc = bgr_st_prepare_cached(s, db,
                                   "INSERT INTO rate_minutes(account_id, minute, n) VALUES(?,?,1)"
                                   " ON CONFLICT(account_id, minute) DO UPDATE"
                                   " SET n = rate_minutes.n + 1 WHERE rate_minutes.n < ?"
                                   " RETURNING n",
                                   &st, err);
        if (rc)
            goto out;
        bgr_db_bind_text(st, 1, acct->id);
        bgr_db_bind_int64(st, 2, minute);
        bgr_db_bind_int64(st, 3, acct->plan.per_minute);
        step = bgr_db_step(st);
        if (step == BGR_DB_ROW) {
            *used = bgr_db_col_int64(st, 0);
            bgr_st_cached_done(st);
            st = NULL;
            if (*used == 1) {
                /* a new window: the account's older ones are done with */
                rc = bgr_st_prepare_cached(
                    s, db, "DELETE FROM rate_minutes WHERE account_id = ? AND minute < ?", &st,
                    err);
                if (rc)
                    goto out;
                bgr_db_bind_text(st, 1, acct->id);
                bgr_db_bind_int64(st, 2, minute);
                if (bgr_db_step(st) != BGR_DB_DONE)
                    rc = bgr_st_fail(db, err, "drop old rate windows");
            }
            goto out;
        }
        if (step != BGR_DB_DONE) {
            rc = bgr_st_fail(db, err, "count request in minute");
            goto out;
        }
        bgr_st_cached_done(st);
        st = NULL;
        *over = true; /* the upsert's condition failed: the window is full */
    }
    rc = bgr_st_prepare_cached(
        s, db, "SELECT n FROM rate_minutes WHERE account_id = ? AND minute = ?", &st, err);
    if (rc)
        goto out;
    bgr_db_bind_text(st, 1, acct->id);
    bgr_db_bind_int64(st, 2, minute);
    step = bgr_db_step(st);
    if (step == BGR_DB_ROW)
        *used = bgr_db_col_int64(st, 0);
    else if (step != BGR_DB_DONE)
        rc = bgr_st_fail(db, err, "read minute window");
    if (!inc)
        *over = *used >= acct->plan.per_minute;
out:
    bgr_st_cached_done(st);
    bgr_st_release(s, db);
    return rc;
}

/* Gives back the slot minute_db took (the daily limit said no). */
static void minute_db_give_back(struct bgr_store *s, const char *account_id, int64_t minute,
                                int64_t *used)
{
    struct bgr_db *db = bgr_st_acquire(s);
    struct bgr_db_stmt *st = NULL;
    if (bgr_st_prepare_cached(s, db,
                              "UPDATE rate_minutes SET n = n - 1"
                              " WHERE account_id = ? AND minute = ? AND n > 0 RETURNING n",
                              &st, NULL) == 0) {
        bgr_db_bind_text(st, 1, account_id);
        bgr_db_bind_int64(st, 2, minute);
        if (bgr_db_step(st) == BGR_DB_ROW)
            *used = bgr_db_col_int64(st, 0);
    }
    bgr_st_cached_done(st);
    bgr_st_release(s, db);
}

static int rate_common(struct bgr_store *s, const struct bgr_account *acct, int64_t now_ms,
                       bool inc, struct bgr_rate_status *st, struct bgr_error *err)
{
    int64_t minute = now_ms / 60000, day = bgr_day_from_ms(now_ms), used, dcount = 0;
    const struct bgr_plan *p = &acct->plan;
    struct bgr_rate_status r = {0};
    bool minute_over, day_over = false;
    int rc = 0;

    r.minute_limit = p->per_minute;
    r.minute_reset = (minute + 1) * 60;
    r.day_limit = p->per_day;
    r.day_reset = (day + 1) * 86400;

    /* Reserve a slot in the minute window first (cheap), then the daily
     * count (a transaction); give the slot back if the day says no. */
    struct bgr_rate_entry *e = NULL;
    if (s->kind == BGR_DB_PG) {
        rc = minute_db(s, acct, minute, inc, &used, &minute_over, err);
        if (rc)
            return rc;
    } else {
        pthread_mutex_lock(&s->rate_mu);
        e = rate_entry(s, acct->id);
        if (e->minute != minute) {
            e->minute = minute;
            e->count = 0;
        }
        minute_over = e->count >= p->per_minute;
        if (inc && !minute_over)
            e->count++;
        used = e->count;
        pthread_mutex_unlock(&s->rate_mu);
    }

    rc = daily_count(s, acct, day, inc && !minute_over, &dcount, &day_over, err);
    if (rc) {
        day_over = true; /* gives the minute slot back below */
    } else if (inc && day_over) {
        rc = bgr_error_set(err, BGR_EDAILY_LIMIT_EXCEEDED, "daily limit of %lld requests reached",
                           (long long)p->per_day);
    } else if (inc && minute_over) {
        rc = bgr_error_set(err, BGR_ERATE_LIMITED, "rate limit of %lld requests per minute",
                           (long long)p->per_minute);
    }
    if (inc && !minute_over && day_over && !e) {
        minute_db_give_back(s, acct->id, minute, &used);
    } else if (inc && !minute_over && day_over) {
        pthread_mutex_lock(&s->rate_mu);
        if (e->minute == minute && e->count > 0)
            e->count--;
        used = e->count;
        pthread_mutex_unlock(&s->rate_mu);
    }
    r.minute_remaining = p->per_minute - used > 0 ? p->per_minute - used : 0;
    r.day_remaining = p->per_day == BGR_UNLIMITED ? BGR_UNLIMITED
                      : p->per_day - dcount > 0   ? p->per_day - dcount
                                                  : 0;
    if (rc == BGR_ERATE_LIMITED)
        r.retry_after_s = r.minute_reset - now_ms / 1000;
    else if (rc == BGR_EDAILY_LIMIT_EXCEEDED)
        r.retry_after_s = r.day_reset - now_ms / 1000;
    if (r.retry_after_s < 0)
        r.retry_after_s = 0;
    if (!rc || rc == BGR_ERATE_LIMITED || rc == BGR_EDAILY_LIMIT_EXCEEDED)
        *st = r;
    return rc;
}

int bgr_store_rate_hit(struct bgr_store *s, const struct bgr_account *acct, int64_t now_ms,
                       struct bgr_rate_status *st, struct bgr_error *err)
{
    return rate_common(s, acct, now_ms, true, st, err);
}

int bgr_store_rate_peek(struct bgr_store *s, const struct bgr_account *acct, int64_t now_ms,
                        struct bgr_rate_status *st, struct bgr_error *err)
{
    return rate_common(s, acct, now_ms, false, st, err);
}

/* ---- credits ---------------------------------------------------------------- */

int bgr_st_credits_used(struct bgr_db *db, const char *account_id, int64_t first, int64_t last,
                        int64_t *used, struct bgr_error *err)
{
    double u = 0;
    int rc = bgr_st_credits_used_exact(db, account_id, first, last, &u, err);
    if (rc == 0)
        *used = (int64_t)ceil(u - 1e-9); /* a started credit counts as used */
    return rc;
}

int bgr_st_credits_used_exact(struct bgr_db *db, const char *account_id, int64_t first,
                              int64_t last, double *used, struct bgr_error *err)
{
    struct bgr_db_stmt *st = NULL;
    int rc = bgr_st_prepare(db,
                            "SELECT COALESCE(SUM(credits), 0) FROM images"
                            " WHERE account_id = ? AND day BETWEEN ? AND ?",
                            &st, err);
    if (rc)
        return rc;
    bgr_db_bind_text(st, 1, account_id);
    bgr_db_bind_int64(st, 2, first);
    bgr_db_bind_int64(st, 3, last);
    if (bgr_db_step(st) == BGR_DB_ROW)
        *used = bgr_db_col_double(st, 0);
    else
        rc = bgr_st_fail(db, err, "sum credits");
    bgr_db_finalize(st);
    return rc;
}

int bgr_store_credits(struct bgr_store *s, const struct bgr_account *acct, int64_t now_ms,
                      int64_t *used, int64_t *remaining, struct bgr_error *err)
{
    int64_t first, last, u = 0;
    struct bgr_db *db = bgr_st_acquire(s);
    int rc;
    bgr_st_month_range(bgr_day_from_ms(now_ms), &first, &last);
    rc = bgr_st_credits_used(db, acct->id, first, last, &u, err);
    bgr_st_release(s, db);
    if (rc)
        return rc;
    if (used)
        *used = u;
    if (remaining)
        *remaining = acct->plan.monthly_credits == BGR_UNLIMITED ? BGR_UNLIMITED
                     : acct->plan.monthly_credits > u            ? acct->plan.monthly_credits - u
                                                                 : 0;
    return 0;
}

int bgr_store_credits_exact(struct bgr_store *s, const struct bgr_account *acct, int64_t now_ms,
                            double *used, double *remaining, struct bgr_error *err)
{
    int64_t first, last;
    double u = 0;
    struct bgr_db *db = bgr_st_acquire(s);
    bgr_st_month_range(bgr_day_from_ms(now_ms), &first, &last);
    int rc = bgr_st_credits_used_exact(db, acct->id, first, last, &u, err);
    bgr_st_release(s, db);
    if (rc)
        return rc;
    if (used)
        *used = u;
    if (remaining) {
        double total = (double)acct->plan.monthly_credits;
        *remaining = acct->plan.monthly_credits == BGR_UNLIMITED ? BGR_UNLIMITED
                     : total > u                                 ? total - u
                                                                 : 0;
    }
    return 0;
}

/* ---- usage ------------------------------------------------------------------ */

/* SUM(credits) rounded up, in SQL both engines accept (SQLite's ceil() is
 * optional). CAST truncates on SQLite and rounds on PostgreSQL; adding one
 * when the sum is above the cast gives the ceiling either way. */
#define CREDITS_CEIL                                                                               \
    "COALESCE(CAST(SUM(credits) AS BIGINT) + CASE WHEN SUM(credits) > CAST(SUM(credits) AS "       \
    "BIGINT)"                                                                                      \
    " THEN 1 ELSE 0 END, 0)"

struct usage_op {
    struct bgr_store *s;
    const char *account_id, *route;
    int64_t now_ms, duration_ms;
    int http_status;
};

/* The usage row and its day's counter, in the writer's transaction. */
static int usage_run(struct bgr_db *db, void *ctx, struct bgr_error *err)
{
    const struct usage_op *o = ctx;
    int64_t day = bgr_day_from_ms(o->now_ms);
    struct bgr_db_stmt *st = NULL;
    int rc =
        bgr_st_prepare_cached(o->s, db,
                              "INSERT INTO usage(account_id, ts, day, route, status, duration_ms)"
                              " VALUES(?,?,?,?,?,?)",
                              &st, err);
    if (rc)
        goto out;
    bgr_db_bind_text(st, 1, o->account_id);
    bgr_db_bind_int64(st, 2, o->now_ms);
    bgr_db_bind_int64(st, 3, day);
    bgr_db_bind_text(st, 4, o->route ? o->route : "");
    bgr_db_bind_int64(st, 5, o->http_status);
    bgr_db_bind_int64(st, 6, o->duration_ms);
    if (bgr_db_step(st) != BGR_DB_DONE) {
        rc = bgr_st_fail(db, err, "record usage");
        goto out;
    }
    bgr_st_cached_done(st);
    rc = bgr_st_prepare_cached(o->s, db,
                               "INSERT INTO usage_days(account_id, day, n) VALUES(?,?,1)"
                               " ON CONFLICT(account_id, day) DO UPDATE SET n = usage_days.n + 1",
                               &st, err);
    if (rc)
        goto out;
    bgr_db_bind_text(st, 1, o->account_id);
    bgr_db_bind_int64(st, 2, day);
    if (bgr_db_step(st) != BGR_DB_DONE)
        rc = bgr_st_fail(db, err, "count usage");
out:
    bgr_st_cached_done(st);
    return rc;
}

int bgr_store_usage_record(struct bgr_store *s, const char *account_id, int64_t now_ms,
                           const char *route, int http_status, int64_t duration_ms,
                           struct bgr_error *err)
{
    struct usage_op o = {s, account_id, route, now_ms, duration_ms, http_status};
    struct bgr_st_op op = {.run = usage_run, .ctx = &o, .lock = BGR_ST_LOCK_SHARED};
    return bgr_st_write(s, &op, err);
}

/* One aggregate row: SELECT <agg> ... bound (account, first, last). */
static int agg3(struct bgr_store *s, struct bgr_db *db, const char *sql, const char *account_id,
                int64_t first, int64_t last, int64_t *a, int64_t *b, struct bgr_error *err)
{
    struct bgr_db_stmt *st = NULL;
    int rc = bgr_st_prepare_cached(s, db, sql, &st, err);
    if (rc)
        return rc;
    bgr_db_bind_text(st, 1, account_id);
    bgr_db_bind_int64(st, 2, first);
    bgr_db_bind_int64(st, 3, last);
    if (bgr_db_step(st) == BGR_DB_ROW) {
        *a = bgr_db_col_int64(st, 0);
        if (b)
            *b = bgr_db_col_int64(st, 1);
    } else {
        rc = bgr_st_fail(db, err, "aggregate usage");
    }
    bgr_st_cached_done(st);
    return rc;
}

int bgr_store_usage_month(struct bgr_store *s, const char *account_id, int64_t now_ms,
                          struct bgr_month_usage *out, struct bgr_error *err)
{
    struct bgr_month_usage u = {0};
    int64_t first, last;
    struct bgr_db *db = bgr_st_acquire(s);
    int rc;
    bgr_st_month_range(bgr_day_from_ms(now_ms), &first, &last);
    rc = bgr_st_read_begin(s, db, err); /* both numbers from one snapshot */
    /* Whole credits, a started one counted (charges may be fractional). */
    if (!rc)
        rc = agg3(s, db,
                  "SELECT COUNT(*), " CREDITS_CEIL " FROM images"
                  " WHERE account_id = ? AND day BETWEEN ? AND ?",
                  account_id, first, last, &u.images_processed, &u.credits_used, err);
    if (!rc)
        rc = agg3(s, db,
                  "SELECT COALESCE(SUM(n), 0) FROM usage_days"
                  " WHERE account_id = ? AND day BETWEEN ? AND ?",
                  account_id, first, last, &u.api_calls, NULL, err);
    if (!rc)
        rc = bgr_st_read_end(s, db, err);
    bgr_st_release(s, db);
    if (!rc)
        *out = u;
    return rc;
}

/* The bucket start of day for granularity g (Monday for weeks, the 1st for
 * months); 1970-01-01 was a Thursday. */
static int64_t bucket_start(int64_t day, enum bgr_granularity g)
{
    int64_t first, last;
    switch (g) {
    case BGR_GRAN_WEEKLY: {
        int64_t dow = ((day + 3) % 7 + 7) % 7; /* 0 = Monday */
        return day - dow;
    }
    case BGR_GRAN_MONTHLY:
        bgr_st_month_range(day, &first, &last);
        return first;
    default:
        return day;
    }
}

static int64_t bucket_end(int64_t day, enum bgr_granularity g)
{
    int64_t first, last;
    switch (g) {
    case BGR_GRAN_WEEKLY:
        return bucket_start(day, g) + 6;
    case BGR_GRAN_MONTHLY:
        bgr_st_month_range(day, &first, &last);
        return last;
    default:
        return day;
    }
}

/* Adds per-day counts from `sql` (rows: day, a, b) into the buckets. */
static int fold_days(struct bgr_db *db, const char *sql, const char *account_id,
                     struct bgr_usage_report *r, enum bgr_granularity g, int which,
                     struct bgr_error *err)
{
    struct bgr_db_stmt *st = NULL;
    int rc = bgr_st_prepare(db, sql, &st, err);
    if (rc)
        return rc;
    bgr_db_bind_text(st, 1, account_id);
    bgr_db_bind_int64(st, 2, r->start_day);
    bgr_db_bind_int64(st, 3, r->end_day);
    for (;;) {
        int step = bgr_db_step(st);
        if (step == BGR_DB_DONE)
            break;
        if (step != BGR_DB_ROW) {
            rc = bgr_st_fail(db, err, "usage by day");
            break;
        }
        int64_t day = bgr_db_col_int64(st, 0);
        int64_t a = bgr_db_col_int64(st, 1), b = bgr_db_col_int64(st, 2);
        int64_t bs = bucket_start(day, g);
        /* Buckets are newest first: find by start (at most ~3660, linear is fine). */
        for (size_t i = 0; i < r->n_buckets; i++) {
            struct bgr_usage_bucket *k = &r->buckets[i];
            if (bucket_start(k->start_day, g) != bs)
                continue;
            if (which == 0) {
                k->requests += a;
            } else {
                k->images += a;
                k->credits += b;
            }
            break;
        }
    }
    bgr_db_finalize(st);
    return rc;
}

int bgr_store_usage_range(struct bgr_store *s, const char *account_id, int64_t start_day,
                          int64_t end_day, enum bgr_granularity g, struct bgr_usage_report *out,
                          struct bgr_error *err)
{
    struct bgr_usage_report r = {0};
    struct bgr_db *db = NULL;
    int64_t sum_ms = 0;
    size_t n = 0;
    int rc;

    if (start_day > end_day)
        return bgr_error_set(err, BGR_EINVALID_PARAMETER, "start_date is after end_date");
    if (end_day - start_day > 3660)
        return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                             "start_date to end_date spans more than 10 years (3660 days): "
                             "ask for a shorter range");
    r.start_day = start_day;
    r.end_day = end_day;
    for (int64_t d = start_day; d <= end_day; d = bucket_end(d, g) + 1)
        n++;
    r.buckets = bgr_xcalloc(n, sizeof(*r.buckets));
    r.n_buckets = n;
    /* Newest first, clipped to the range. */
    {
        size_t i = n;
        for (int64_t d = start_day; d <= end_day; d = bucket_end(d, g) + 1) {
            struct bgr_usage_bucket *k = &r.buckets[--i];
            k->start_day = d;
            k->end_day = bucket_end(d, g) < end_day ? bucket_end(d, g) : end_day;
        }
    }
    db = bgr_st_acquire(s);
    rc = fold_days(db,
                   "SELECT day, n, 0 FROM usage_days WHERE account_id = ? AND day BETWEEN ? AND ?",
                   account_id, &r, g, 0, err);
    if (!rc)
        rc = fold_days(db,
                       "SELECT day, COUNT(*), " CREDITS_CEIL " FROM images"
                       " WHERE account_id = ? AND day BETWEEN ? AND ? GROUP BY day",
                       account_id, &r, g, 1, err);
    if (!rc)
        rc = agg3(s, db,
                  "SELECT COALESCE(SUM(processing_ms), 0), COUNT(*) FROM images"
                  " WHERE account_id = ? AND day BETWEEN ? AND ?",
                  account_id, start_day, end_day, &sum_ms, &r.total_images, err);
    bgr_st_release(s, db);
    if (rc) {
        bgr_usage_report_release(&r);
        return rc;
    }
    for (size_t i = 0; i < r.n_buckets; i++) {
        r.total_requests += r.buckets[i].requests;
        r.total_credits += r.buckets[i].credits;
    }
    r.avg_processing_ms = r.total_images ? (sum_ms + r.total_images / 2) / r.total_images : 0;
    *out = r;
    return 0;
}

void bgr_usage_report_release(struct bgr_usage_report *r)
{
    if (!r)
        return;
    BGR_FREE_AND_NULL(r->buckets);
    r->n_buckets = 0;
}
