/*
 * removebg_reply.c - remove.bg's response shapes: the error body
 * {"errors":[{"title","code","detail"}]} with its statuses (403 for
 * authentication, 402 credits, 429 rate limits, 400 for everything about
 * the request), the reshaping of errors that the shared hooks answer in
 * the /v1 envelope (authentication, rate limits, body caps), and
 * GET /v1.0/account.
 */
#include "api/api_int.h"
#include "api/removebg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void api_removebg_error(struct bgr_http_resp *resp, int status, const char *code, const char *title,
                        const char *detail)
{
    json_t *e = json_pack("{s:s,s:s}", "title", title, "code", code);
    if (e && detail && detail[0])
        json_object_set_new(e, "detail", json_string(detail));
    json_t *root = e ? json_pack("{s:[o]}", "errors", e) : NULL;
    char *s = root ? json_dumps(root, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(root);
    int keep_err = resp->err, retry = resp->retry_after_s;
    if (s)
        bgr_http_reply_bytes(resp, status, "application/json", s, strlen(s));
    else
        bgr_http_reply_bytes(resp, 500, "application/json",
                             "{\"errors\":[{\"title\":\"Out of memory\"}]}", 36);
    free(s);
    /* reply_bytes clears nothing but the body; keep what the logs and
     * Retry-After need. */
    resp->err = keep_err ? keep_err : BGR_EINVALID_PARAMETER;
    resp->retry_after_s = retry;
}

const char *api_removebg_title(const char *code)
{
    static const struct {
        const char *code, *title;
    } t[] = {
        {"missing_source", "No image given"},
        {"multiple_sources", "Multiple image sources given"},
        {"failed_image_download", "Failed to download image"},
        {"failed_bg_download", "Failed to download background image"},
        {"failed_to_read_image", "Failed to read image"},
        {"file_too_large", "File too large"},
        {"invalid_file_type", "Invalid file type"},
        {"resolution_too_high", "Input image has too many pixels"},
        {"invalid_image_url", "Invalid image URL"},
        {"invalid_bg_image_url", "Invalid background image URL"},
        {"invalid_bg_image", "Failed to read background image"},
        {"multiple_bg_sources", "Multiple background sources given"},
        {"invalid_roi", "Invalid roi"},
        {"roi_exceeds_bounds", "Region of interest exceeds image bounds"},
        {"roi_region_empty", "Region of interest is empty"},
        {"unknown_foreground", "Could not identify foreground in image"},
    };
    for (size_t i = 0; i < BGR_ARRAY_LEN(t); i++)
        if (strcmp(code, t[i].code) == 0)
            return t[i].title;
    /* invalid_<parameter>: "Invalid parameter value" says it all. */
    return strncmp(code, "invalid_", 8) == 0 ? "Invalid parameter value" : "Invalid request";
}

/* remove.bg's answer to one of our errors: status, code and title. */
static void map_err(int err, int *status, const char **code, const char **title)
{
    switch (err) {
    case BGR_EUNAUTHORIZED:
        *status = 403;
        *code = "auth_failed";
        *title = "Invalid API Key";
        return;
    case BGR_EINSUFFICIENT_CREDITS:
        *status = 402;
        *code = "insufficient_credits";
        *title = "Insufficient credits";
        return;
    case BGR_ERATE_LIMITED:
    case BGR_EDAILY_LIMIT_EXCEEDED:
        *status = 429;
        *code = "rate_limit_exceeded";
        *title = "Rate limit exceeded";
        return;
    case BGR_EFILE_TOO_LARGE:
        *status = 400;
        *code = "file_too_large";
        *title = "File too large";
        return;
    case BGR_EINVALID_JSON:
    case BGR_EINVALID_PARAMETER:
    case BGR_EUSAGE:
        *status = 400;
        *code = "invalid_request";
        *title = "Invalid request";
        return;
    case BGR_EUNSUPPORTED_FORMAT:
        *status = 400;
        *code = "invalid_file_type";
        *title = "Invalid file type";
        return;
    case BGR_ERESOLUTION_TOO_HIGH:
        *status = 400;
        *code = "resolution_too_high";
        *title = "Input image has too many pixels";
        return;
    case BGR_EPROCESSING_TIMEOUT: /* ours (job_timeout_s): remove.bg documents none */
        *status = 422;
        *code = "processing_timeout";
        *title = "Processing took too long";
        return;
    case BGR_EIDEMPOTENCY_KEY_REUSED:
        *status = 409;
        *code = "idempotency_key_reused";
        *title = "Idempotency key reused";
        return;
    case BGR_EIDEMPOTENCY_KEY_IN_PROGRESS:
        *status = 409;
        *code = "idempotency_key_in_progress";
        *title = "Idempotency key in progress";
        return;
    case BGR_ESERVICE_BUSY:
        *status = 503;
        *code = "service_unavailable";
        *title = "Service temporarily unavailable";
        return;
    default:
        *status = 500;
        *code = "internal_error";
        *title = "Internal server error";
        return;
    }
}

void api_removebg_reply_err(struct bgr_http_resp *resp, int err, const struct bgr_error *e)
{
    int status;
    const char *code, *title;
    map_err(err, &status, &code, &title);
    resp->err = err;
    api_removebg_error(resp, status, code, title,
                       e && e->msg[0] ? e->msg : bgr_err_default_msg(err));
}

void api_removebg_reshape(struct bgr_http_req *req, struct bgr_http_resp *resp)
{
    (void)req;
    if (!resp->err || !resp->body || resp->len < 11 || memcmp(resp->body, "{\"success\"", 10) != 0)
        return; /* a success, or already in remove.bg's shape */
    struct bgr_error e = {0};
    json_error_t je;
    json_t *root = json_loadb((const char *)resp->body, resp->len, 0, &je);
    const char *msg = json_string_value(json_object_get(json_object_get(root, "error"), "message"));
    if (msg)
        (void)snprintf(e.msg, sizeof e.msg, "%s", msg);
    api_removebg_reply_err(resp, resp->err, &e);
    json_decref(root);
}

void api_removebg_account(void *app, struct bgr_http_req *req, struct bgr_http_resp *resp)
{
    struct bgr_api *api = app;
    struct api_ctx *ctx = api_ctx_of(req);
    const struct bgr_account *a = &ctx->acct;
    struct bgr_error e = {0};
    double used = 0, remaining = 0;
    int rc = bgr_store_credits_exact(api->store, a, bgr_wall_ms(), &used, &remaining, &e);
    if (rc) {
        api_removebg_reply_err(resp, rc, &e);
        return;
    }
    /* Our plans have one monthly allowance: it is the subscription part
     * (credits left this month). remove.bg's shape has no way to say
     * "unlimited", so an unlimited plan reports 0 there and says so in the
     * extra "bgremover" object, which clients that do not know it ignore. */
    bool unlimited = remaining == BGR_UNLIMITED;
    double total = unlimited ? 0 : remaining;
    json_t *data =
        json_pack("{s:{s:{s:f,s:f,s:f,s:f},s:{s:I,s:s}},s:{s:s,s:b,s:f}}", "attributes", "credits",
                  "total", total, "subscription", total, "payg", 0.0, "enterprise", 0.0, "api",
                  "free_calls", (json_int_t)0, "sizes", "all", "bgremover", "plan", a->plan.name,
                  "unlimited", unlimited, "credits_used_this_month", used);
    json_t *root = data ? json_pack("{s:o}", "data", data) : NULL;
    char *s = root ? json_dumps(root, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(root);
    if (!s) {
        api_removebg_reply_err(resp, BGR_ENOMEM, NULL);
        return;
    }
    bgr_http_reply_bytes(resp, 200, "application/json", s, strlen(s));
    free(s);
}
