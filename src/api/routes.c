/*
 * routes.c - the routing table of the API (data: adding an endpoint is a
 * line here and a handler), and the two hooks around every request:
 *
 *   prepare (before the body is read): authenticates the API key, counts the
 *   request against the per-minute and daily limits (refusing with 429), and
 *   sets the body cap from the account's plan, so an oversized upload is
 *   refused with 413 before it is read;
 *
 *   finish (before the response is sent): records the admitted request as
 *   usage (committed before the client sees the answer, so /v1/usage is
 *   exact at once) and adds the X-RateLimit-* headers.
 */
#include "api/api_int.h"
#include "api/removebg.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MB (1024u * 1024u)

static const struct bgr_http_route routes[] = {
    /* methods, pattern, name (metrics label), flags, max body, handler.
     * BGR_ROUTE_BLOCKING: waits for inference or a URL fetch (off the
     * server's event loop). */
    {BGR_HTTP_POST, "/v1/remove", "remove", BGR_ROUTE_AUTH | BGR_ROUTE_BLOCKING, 128 * MB,
     api_remove},
    {BGR_HTTP_POST, "/v1/remove/batch", "batch_create", BGR_ROUTE_AUTH, API_SMALL_BODY,
     api_batch_create},
    {BGR_HTTP_GET, "/v1/batch/:batch_id", "batch_get", BGR_ROUTE_AUTH, 0, api_batch_get},
    {BGR_HTTP_GET, "/v1/account", "account", BGR_ROUTE_AUTH, 0, api_account},
    {BGR_HTTP_GET, "/v1/usage", "usage", BGR_ROUTE_AUTH, 0, api_usage},
    /* remove.bg's API v1.0 (removebg*.c) */
    {BGR_HTTP_POST, "/v1.0/removebg", "removebg",
     BGR_ROUTE_AUTH | BGR_ROUTE_BLOCKING | API_ROUTE_REMOVEBG, 128 * MB, api_removebg},
    {BGR_HTTP_GET, "/v1.0/account", "removebg_account", BGR_ROUTE_AUTH | API_ROUTE_REMOVEBG, 0,
     api_removebg_account},
    {BGR_HTTP_GET, "/v1/images", "images_list", BGR_ROUTE_AUTH, 0, api_images_list},
    {BGR_HTTP_GET, "/v1/images/:image_id", "image_get", BGR_ROUTE_AUTH, 0, api_image_get},
    {BGR_HTTP_DELETE, "/v1/images/:image_id", "image_delete", BGR_ROUTE_AUTH, 0, api_image_delete},
    {BGR_HTTP_GET, "/v1/results/:file", "result", 0, 0, api_result_get},
    {BGR_HTTP_GET, "/v1/openapi.json", "openapi", 0, 0, api_openapi},
    {BGR_HTTP_GET, "/healthz", "healthz", 0, 0, api_healthz},
    {BGR_HTTP_GET, "/readyz", "readyz", 0, 0, api_readyz},
    {BGR_HTTP_GET, "/metrics", "metrics", 0, 0, api_metrics},
    /* The web page (web.c): last, so --no-web leaves exactly these out. */
    {BGR_HTTP_GET, "/", "web", 0, 0, api_web_index},
    {BGR_HTTP_GET, "/docs", "web_docs", 0, 0, api_web_docs},
    {BGR_HTTP_GET, "/web/:file", "web_asset", 0, 0, api_web_asset},
};
#define WEB_ROUTES 3

const struct bgr_http_route *bgr_api_routes_for(bool web, size_t *n)
{
    *n = BGR_ARRAY_LEN(routes) - (web ? 0 : WEB_ROUTES);
    return routes;
}

/* A worker's: operations only (it serves no API). */
static const struct bgr_http_route ops_routes[] = {
    {BGR_HTTP_GET, "/healthz", "healthz", 0, 0, api_healthz},
    {BGR_HTTP_GET, "/readyz", "readyz", 0, 0, api_readyz},
    {BGR_HTTP_GET, "/metrics", "metrics", 0, 0, api_metrics},
};

const struct bgr_http_route *bgr_api_routes_ops(size_t *n)
{
    *n = BGR_ARRAY_LEN(ops_routes);
    return ops_routes;
}

const struct bgr_http_route *bgr_api_routes(size_t *n)
{
    return bgr_api_routes_for(true, n);
}

struct bgr_jobs *api_jobs(struct bgr_api *api)
{
    return __atomic_load_n(&api->jobs, __ATOMIC_ACQUIRE);
}

void bgr_api_set_jobs(struct bgr_api *api, struct bgr_jobs *jobs)
{
    __atomic_store_n(&api->jobs, jobs, __ATOMIC_RELEASE);
}

void api_reply_err(struct bgr_http_resp *resp, int rc, const struct bgr_error *e)
{
    bgr_http_reply_error(resp, rc, e && e->msg[0] ? e->msg : NULL);
    if (rc == BGR_ESERVICE_BUSY && resp->retry_after_s <= 0)
        resp->retry_after_s = 2;
}

bool api_id_valid(const char *s, const char *prefix)
{
    size_t p = strlen(prefix), n = 0;
    if (!s || strncmp(s, prefix, p) != 0)
        return false;
    for (s += p; s[n]; n++) {
        char c = s[n];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
            return false;
        if (n >= 40)
            return false;
    }
    return n > 0;
}

/* Extracts the token of "Authorization: Bearer TOKEN"; NULL if malformed. */
static const char *bearer_token(const char *h)
{
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return NULL;
    h += 7;
    while (*h == ' ')
        h++;
    return *h ? h : NULL;
}

/* The body cap of an authenticated request: the plan's image size plus the
 * framing its encoding needs (base64 grows by 4/3 in JSON). */
static size_t plan_body_cap(const struct bgr_http_route *route, const struct bgr_plan *plan,
                            const char *mime)
{
    if (route->handler != api_remove && route->handler != api_removebg)
        return route->max_body;
    size_t img = plan->max_bytes > 0 ? (size_t)plan->max_bytes : route->max_body;
    size_t cap;
    if (route->handler == api_removebg) {
        /* remove.bg bodies may carry a background image as well, and
         * image_file_b64 in a urlencoded form (%2B, %2F, %3D: 3 bytes). */
        if (strcmp(mime, "multipart/form-data") == 0)
            cap = 2 * img + API_FORM_SLACK;
        else if (strcmp(mime, "application/x-www-form-urlencoded") == 0)
            cap = (img + 2) / 3 * 4 * 3 + API_FORM_SLACK;
        else
            cap = (img + 2) / 3 * 4 + API_FORM_SLACK;
    } else if (strcmp(mime, "application/json") == 0)
        cap = (img + 2) / 3 * 4 + API_FORM_SLACK;
    else if (strcmp(mime, "multipart/form-data") == 0)
        cap = img + API_FORM_SLACK;
    else
        cap = API_SMALL_BODY; /* urlencoded carries no image; others are refused (415) */
    return cap < route->max_body ? cap : route->max_body;
}

/* The account's key in the HTTP layer's body budget (its per-account
 * share): a 64-bit FNV-1a hash of the account id, never 0. */
static uint64_t owner_of(const char *account_id)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)account_id; *p; p++)
        h = (h ^ *p) * 0x100000001b3ull;
    return h ? h : 1;
}

void bgr_api_prepare(void *app, struct bgr_http_req *req, struct bgr_http_resp *resp)
{
    struct bgr_api *api = app;
    if (!(req->route->flags & BGR_ROUTE_AUTH))
        return;
    struct api_ctx *ctx = bgr_arena_alloc(&req->arena, sizeof *ctx);
    if (!ctx) {
        bgr_http_reply_error(resp, BGR_ENOMEM, NULL);
        return;
    }
    memset(ctx, 0, sizeof *ctx);
    req->user = ctx;

    struct bgr_error e = {0};
    const char *key = bearer_token(bgr_http_req_header(req, "Authorization"));
    if (!key && (req->route->flags & API_ROUTE_REMOVEBG)) {
        key = bgr_http_req_header(req, "X-Api-Key");
        if (!key || !key[0]) {
            resp->err = BGR_EUNAUTHORIZED;
            api_removebg_error(resp, 403, "auth_failed", "Missing API Key",
                               "Send your API key in the X-Api-Key header");
            return;
        }
    }
    if (!key) {
        bgr_http_reply_error(resp, BGR_EUNAUTHORIZED,
                             "Missing API key: send Authorization: Bearer bgr_live_...");
        return;
    }
    int64_t now = bgr_wall_ms();
    int rc = bgr_store_key_lookup(api->store, key, now, &ctx->acct, &e);
    if (rc) {
        api_reply_err(resp, rc, &e);
        return;
    }
    ctx->authed = true;
    req->authed = true;
    req->budget_owner = owner_of(ctx->acct.id);
    rc = bgr_store_rate_hit(api->store, &ctx->acct, now, &ctx->rate, &e);
    if (rc) {
        api_reply_err(resp, rc, &e);
        resp->retry_after_s = (int)(ctx->rate.retry_after_s > 0 ? ctx->rate.retry_after_s : 1);
        return;
    }
    ctx->admitted = true;
    req->body_cap = plan_body_cap(req->route, &ctx->acct.plan, bgr_http_req_mime(req));
    if (ctx->acct.plan.max_bytes > 0 &&
        (req->route->handler == api_remove || req->route->handler == api_removebg))
        req->body_limit_shown = (uint64_t)ctx->acct.plan.max_bytes;
}

void bgr_api_finish(void *app, struct bgr_http_req *req, struct bgr_http_resp *resp)
{
    struct bgr_api *api = app;
    struct api_ctx *ctx = api_ctx_of(req);
    if (req->route && (req->route->flags & API_ROUTE_REMOVEBG))
        api_removebg_reshape(req, resp);
    if (!ctx || !ctx->authed)
        return;
    api_idem_end(api, req, resp); /* the final answer, before the rate headers */
    if (ctx->admitted) {
        char label[64];
        struct bgr_error e = {0};
        (void)snprintf(label, sizeof label, "%s %s", req->method_str,
                       req->route ? req->route->pattern : "-");
        int64_t now = bgr_wall_ms();
        if (bgr_store_usage_record(api->store, ctx->acct.id, now, label, resp->status,
                                   bgr_now_ms() - req->start_ms, &e) != 0)
            bgr_log(BGR_LOG_ERROR, "usage record failed (rid=%s): %s", req->request_id, e.msg);
    }
    char v[32];
    (void)snprintf(v, sizeof v, "%lld", (long long)ctx->rate.minute_limit);
    bgr_http_resp_header(resp, "X-RateLimit-Limit", v);
    (void)snprintf(v, sizeof v, "%lld",
                   (long long)(ctx->rate.minute_remaining > 0 ? ctx->rate.minute_remaining : 0));
    bgr_http_resp_header(resp, "X-RateLimit-Remaining", v);
    (void)snprintf(v, sizeof v, "%lld", (long long)ctx->rate.minute_reset);
    bgr_http_resp_header(resp, "X-RateLimit-Reset", v);
    /* The daily limit as well (the web page shows both); absent when the
     * plan's is unlimited. */
    if (ctx->rate.day_limit != BGR_UNLIMITED && ctx->rate.day_limit > 0) {
        (void)snprintf(v, sizeof v, "%lld", (long long)ctx->rate.day_limit);
        bgr_http_resp_header(resp, "X-RateLimit-Daily-Limit", v);
        (void)snprintf(v, sizeof v, "%lld",
                       (long long)(ctx->rate.day_remaining > 0 ? ctx->rate.day_remaining : 0));
        bgr_http_resp_header(resp, "X-RateLimit-Daily-Remaining", v);
    }
}

const struct bgr_jobs_render *bgr_api_renders(size_t *n)
{
    static const struct bgr_jobs_render renders[] = {
        {RBG_RENDER_NAME, rbg_render_queued},
    };
    *n = BGR_ARRAY_LEN(renders);
    return renders;
}
