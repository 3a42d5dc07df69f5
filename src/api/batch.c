/*
 * batch.c - POST /v1/remove/batch (1..20 image URLs, persisted and queued,
 * answered 202 at once) and GET /v1/batch/:batch_id (status and per-item
 * results of one of the caller's batches).
 *
 * Batch-level output options are defaults that each item may override; the
 * batch's webhook_url receives one batch.completed event. Unknown fields
 * are refused as in /v1/remove.
 */
#include "api/api_int.h"

#include <stdio.h>
#include <string.h>

static int parse_item(json_t *it, size_t i, const struct bgr_output_opts *defaults,
                      struct bgr_batch_item_new *out, struct bgr_error *err)
{
    char field[64];
    if (!json_is_object(it))
        return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                             "Invalid images[%zu]: expected an object with image_url", i);
    out->opts = *defaults;
    out->image_url = NULL;
    const char *name;
    json_t *v;
    json_object_foreach(it, name, v)
    {
        (void)snprintf(field, sizeof field, "images[%zu].%.32s", i, name);
        if (json_is_null(v))
            continue;
        if (strcmp(name, "image_url") == 0) {
            if (!json_is_string(v))
                return bgr_error_set(err, BGR_EINVALID_PARAMETER, "Invalid %s: expected a string",
                                     field);
            out->image_url = json_string_value(v);
            int rc = api_check_url(out->image_url, field, err);
            if (rc)
                return rc;
        } else if (api_is_opt(name)) {
            int rc = api_opt_from_json(&out->opts, name, v, field, err);
            if (rc)
                return rc;
        } else {
            return bgr_error_set(err, BGR_EINVALID_PARAMETER, "Unknown parameter '%s'", field);
        }
    }
    if (!out->image_url)
        return bgr_error_set(err, BGR_EINVALID_PARAMETER, "Missing images[%zu].image_url", i);
    (void)snprintf(field, sizeof field, "images[%zu].", i);
    return api_opts_check(&out->opts, field, err);
}

int api_batch_parse(const uint8_t *body, size_t len, json_t **root, const char **webhook_url,
                    struct bgr_batch_item_new items[BGR_BATCH_MAX_ITEMS], size_t *nitems,
                    struct bgr_error *err)
{
    json_t *images = NULL;
    struct bgr_output_opts defaults;
    bgr_output_opts_init(&defaults);
    *webhook_url = NULL;
    *nitems = 0;
    int rc = api_json_object(body, len, root, err);
    if (rc)
        return rc;
    const char *name;
    json_t *v;
    json_object_foreach(*root, name, v)
    {
        if (json_is_null(v))
            continue;
        if (strcmp(name, "images") == 0) {
            images = v;
        } else if (strcmp(name, "webhook_url") == 0) {
            if (!json_is_string(v))
                return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                                     "Invalid webhook_url: expected a string");
            *webhook_url = json_string_value(v);
            if ((rc = api_check_url(*webhook_url, "webhook_url", err)) != 0)
                return rc;
        } else if (api_is_opt(name)) {
            if ((rc = api_opt_from_json(&defaults, name, v, name, err)) != 0)
                return rc;
        } else {
            return bgr_error_set(err, BGR_EINVALID_PARAMETER, "Unknown parameter '%.64s'", name);
        }
    }
    if (!images || !json_is_array(images))
        return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                             "Invalid images: expected an array of 1 to %d objects with image_url",
                             BGR_BATCH_MAX_ITEMS);
    size_t n = json_array_size(images);
    if (n == 0 || n > BGR_BATCH_MAX_ITEMS)
        return bgr_error_set(err, BGR_EBATCH_TOO_LARGE, "A batch holds 1 to %d images, not %zu",
                             BGR_BATCH_MAX_ITEMS, n);
    for (size_t i = 0; i < n; i++)
        if ((rc = parse_item(json_array_get(images, i), i, &defaults, &items[i], err)) != 0)
            return rc;
    *nitems = n;
    return 0;
}

void api_batch_create(void *app, struct bgr_http_req *req, struct bgr_http_resp *resp)
{
    struct bgr_api *api = app;
    struct api_ctx *ctx = api_ctx_of(req);
    struct bgr_error e = {0};
    json_t *root = NULL;
    const char *webhook_url = NULL;
    struct bgr_batch_item_new items[BGR_BATCH_MAX_ITEMS];
    size_t n = 0;
    int rc;

    if (!api_idem_begin(api, req, resp))
        return; /* answered: replayed, or the key refused */
    if (strcmp(bgr_http_req_mime(req), "application/json") != 0) {
        rc = bgr_error_set(&e, BGR_EUNSUPPORTED_FORMAT, "Content-Type must be application/json");
        goto fail;
    }
    rc = api_batch_parse(req->body.data, req->body.len, &root, &webhook_url, items, &n, &e);
    if (rc)
        goto fail;
    /* On the event loop: literal addresses only, no DNS here. */
    if (webhook_url && (rc = api_check_webhook_dest(api, webhook_url, false, &e)) != 0)
        goto fail;

    struct bgr_jobs *jobs = api_jobs(api);
    if (!jobs) {
        rc = bgr_error_set(&e, BGR_ESERVICE_BUSY, "The model is still loading, retry shortly");
        resp->retry_after_s = 5;
        goto fail;
    }
    struct bgr_batch b;
    int64_t est = 0;
    rc = bgr_jobs_batch_submit(jobs, &ctx->acct, webhook_url, items, n, &b, &est, &e);
    if (rc)
        goto fail;
    char poll[600];
    (void)snprintf(poll, sizeof poll, "%s/v1/batch/%s", api->public_url, b.id);
    /* "processing" as in the spec: the items are in the worker pool's hands;
     * GET /v1/batch reports finer states ("queued" until one starts). */
    bgr_http_reply_data(resp, 202,
                        json_pack("{s:s,s:i,s:s,s:I,s:s}", "batch_id", b.id, "total_images",
                                  b.total, "status", "processing", "estimated_time_ms",
                                  (json_int_t)est, "poll_url", poll));
    goto done;
fail:
    api_reply_err(resp, rc, &e);
done:
    json_decref(root);
}

void api_batch_get(void *app, struct bgr_http_req *req, struct bgr_http_resp *resp)
{
    struct bgr_api *api = app;
    struct api_ctx *ctx = api_ctx_of(req);
    struct bgr_error e = {0};
    const char *id = req->params[0];
    if (!api_id_valid(id, "batch_")) {
        bgr_http_reply_error(resp, BGR_ENOT_FOUND, "Batch not found");
        return;
    }
    json_t *data = NULL;
    int rc = bgr_jobs_batch_json(api->store, api->public_url, id, ctx->acct.id, &data, &e);
    if (rc == BGR_ENOT_FOUND) {
        bgr_http_reply_error(resp, BGR_ENOT_FOUND, "Batch not found");
        return;
    }
    if (rc) {
        api_reply_err(resp, rc, &e);
        return;
    }
    bgr_http_reply_data(resp, 200, data);
}
