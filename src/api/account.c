/*
 * account.c - GET /v1/account (plan, limits, credits, this month's usage)
 * and GET /v1/usage (totals and buckets over a date range).
 *
 * Unlimited plan values (enterprise daily limit and credits) are JSON null.
 * Counts come from the store's committed records; the request being
 * answered is recorded after its response is built, so it is not part of
 * its own numbers.
 */
#include "api/api_int.h"

#include <string.h>

static json_t *limit_json(int64_t v)
{
    return v == BGR_UNLIMITED ? json_null() : json_integer((json_int_t)v);
}

void api_account(void *app, struct bgr_http_req *req, struct bgr_http_resp *resp)
{
    struct bgr_api *api = app;
    struct api_ctx *ctx = api_ctx_of(req);
    const struct bgr_account *a = &ctx->acct;
    struct bgr_error e = {0};
    int64_t now = bgr_wall_ms(), remaining;
    struct bgr_month_usage mu;
    /* One read: the balance follows from the month's whole credits used
     * (bgr_store_credits' arithmetic), so the two numbers always agree. */
    int rc = bgr_store_usage_month(api->store, a->id, now, &mu, &e);
    if (rc) {
        api_reply_err(resp, rc, &e);
        return;
    }
    remaining = a->plan.monthly_credits == BGR_UNLIMITED ? BGR_UNLIMITED
                : a->plan.monthly_credits > mu.credits_used
                    ? a->plan.monthly_credits - mu.credits_used
                    : 0;
    json_t *data = json_pack(
        "{s:s,s:s,s:s,s:o,s:o,s:{s:I,s:o},s:{s:I,s:I,s:I}}", "id", a->id, "email", a->email, "plan",
        a->plan.name, "credits_remaining", limit_json(remaining), "credits_total",
        limit_json(a->plan.monthly_credits), "rate_limit", "requests_per_minute",
        (json_int_t)a->plan.per_minute, "daily_limit", limit_json(a->plan.per_day),
        "usage_this_month", "images_processed", (json_int_t)mu.images_processed, "credits_used",
        (json_int_t)mu.credits_used, "api_calls", (json_int_t)mu.api_calls);
    bgr_http_reply_data(resp, 200, data);
}

static int day_param(struct bgr_http_req *req, const char *name, int64_t def, int64_t *out,
                     struct bgr_error *err)
{
    const char *v = bgr_http_req_query(req, name);
    if (!v) {
        *out = def;
        return 0;
    }
    struct bgr_error e = {0};
    if (bgr_day_parse(v, out, &e) != 0)
        return bgr_error_set(err, BGR_EINVALID_PARAMETER, "Invalid %s: %s", name, e.msg);
    return 0;
}

struct query_check {
    const char *bad;
};

static int check_query_name(void *c, const char *name, const char *value)
{
    struct query_check *q = c;
    (void)value;
    if (strcmp(name, "start_date") && strcmp(name, "end_date") && strcmp(name, "granularity")) {
        q->bad = name;
        return 1;
    }
    return 0;
}

void api_usage(void *app, struct bgr_http_req *req, struct bgr_http_resp *resp)
{
    struct bgr_api *api = app;
    struct api_ctx *ctx = api_ctx_of(req);
    struct bgr_error e = {0};
    struct bgr_usage_report rep = {0};
    int64_t today = bgr_day_from_ms(bgr_wall_ms()), start, end;
    int y, m, d;
    bgr_day_to_ymd(today, &y, &m, &d);
    enum bgr_granularity g = BGR_GRAN_DAILY;
    const char *gname = "daily";
    struct query_check qc = {NULL};
    int rc;

    if (bgr_http_req_query_each(req, check_query_name, &qc)) {
        rc = bgr_error_set(&e, BGR_EINVALID_PARAMETER, "Unknown parameter '%.64s'", qc.bad);
        goto fail;
    }
    if ((rc = day_param(req, "start_date", bgr_day_from_ymd(y, m, 1), &start, &e)) != 0 ||
        (rc = day_param(req, "end_date", today, &end, &e)) != 0)
        goto fail;
    const char *gq = bgr_http_req_query(req, "granularity");
    if (gq) {
        if (strcmp(gq, "daily") == 0)
            g = BGR_GRAN_DAILY;
        else if (strcmp(gq, "weekly") == 0)
            g = BGR_GRAN_WEEKLY;
        else if (strcmp(gq, "monthly") == 0)
            g = BGR_GRAN_MONTHLY;
        else {
            rc = bgr_error_set(&e, BGR_EINVALID_PARAMETER,
                               "Invalid granularity: expected daily, weekly or monthly");
            goto fail;
        }
        gname = gq;
    }
    if (start > end) {
        rc = bgr_error_set(&e, BGR_EINVALID_PARAMETER, "start_date is after end_date");
        goto fail;
    }
    rc = bgr_store_usage_range(api->store, ctx->acct.id, start, end, g, &rep, &e);
    if (rc)
        goto fail;

    char sday[11], eday[11];
    bgr_day_format(rep.start_day, sday);
    bgr_day_format(rep.end_day, eday);
    json_t *buckets = json_array();
    for (size_t i = 0; buckets && i < rep.n_buckets; i++) {
        const struct bgr_usage_bucket *b = &rep.buckets[i];
        char bs[11], be[11];
        bgr_day_format(b->start_day, bs);
        bgr_day_format(b->end_day, be);
        json_t *o = g == BGR_GRAN_DAILY
                        ? json_pack("{s:s,s:I,s:I}", "date", bs, "requests",
                                    (json_int_t)b->requests, "credits", (json_int_t)b->credits)
                        : json_pack("{s:s,s:s,s:I,s:I}", "date", bs, "end_date", be, "requests",
                                    (json_int_t)b->requests, "credits", (json_int_t)b->credits);
        json_array_append_new(buckets, o);
    }
    json_t *data =
        json_pack("{s:{s:s,s:s},s:s,s:I,s:I,s:I,s:o}", "period", "start", sday, "end", eday,
                  "granularity", gname, "total_requests", (json_int_t)rep.total_requests,
                  "total_credits_used", (json_int_t)rep.total_credits, "avg_processing_time_ms",
                  (json_int_t)rep.avg_processing_ms, gname, buckets);
    bgr_usage_report_release(&rep);
    bgr_http_reply_data(resp, 200, data);
    return;
fail:
    api_reply_err(resp, rc, &e);
}
