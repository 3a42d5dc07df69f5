/*
 * images.c - the caller's stored results: GET /v1/images (a page of them,
 * newest first), GET /v1/images/:image_id (one, with the very fields of the
 * POST /v1/remove response: both are built by bgr_jobs_image_json),
 * DELETE /v1/images/:image_id (at once), and GET /v1/results/:id.:ext
 * (serving a stored result).
 *
 * Everything under /v1/images is scoped to the key's account: another
 * account's id answers exactly as an unknown one (404), and a listing
 * filtered by another account's batch is empty, so ids cannot be probed.
 *
 * A result URL carries an unguessable id, so the URL itself is the
 * capability: no API key is needed to fetch it (as with a CDN link). Ids and
 * extensions are checked against fixed alphabets before the store is asked,
 * and the file opened is the path the store recorded, never one built from
 * the request, so no path traversal is possible. Deleted or expired results
 * are 404 at once. The bytes come from the results store (src/results): a
 * local directory is served zero-copy from the file, an S3 object is
 * downloaded to an unlinked spool file and served from there, so any API
 * node serves any result. Caching: a strong ETag (SHA-256 of the file) and
 * "private" with max-age until expiry, so shared caches never keep a result
 * past its deletion.
 */
#include "api/api_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The fields a stored result has beyond the POST /v1/remove response. */
static json_t *stored_image_json(const struct bgr_image *img, const char *public_url)
{
    char when[21];
    json_t *o = bgr_jobs_image_json(img, public_url);
    if (!o)
        return NULL;
    bgr_time_format(img->created_at_ms, when);
    if (json_object_set_new(o, "created_at", json_string(when)) ||
        json_object_set_new(o, "batch_id",
                            img->batch_id[0] ? json_string(img->batch_id) : json_null())) {
        json_decref(o);
        return NULL;
    }
    return o;
}

void api_image_get(void *app, struct bgr_http_req *req, struct bgr_http_resp *resp)
{
    struct bgr_api *api = app;
    struct api_ctx *ctx = api_ctx_of(req);
    struct bgr_error e = {0};
    const char *id = req->params[0];
    struct bgr_image img;
    if (!api_id_valid(id, "img_")) {
        bgr_http_reply_error(resp, BGR_ENOT_FOUND, "Image not found");
        return;
    }
    int rc = bgr_store_image_get(api->store, id, ctx->acct.id, bgr_wall_ms(), &img, &e);
    if (rc == BGR_ENOT_FOUND) {
        bgr_http_reply_error(resp, BGR_ENOT_FOUND,
                             "Image not found (deleted, expired or never "
                             "existed)");
        return;
    }
    if (rc) {
        api_reply_err(resp, rc, &e);
        return;
    }
    json_t *data = stored_image_json(&img, api->public_url);
    if (!data) {
        bgr_http_reply_error(resp, BGR_ENOMEM, NULL);
        return;
    }
    bgr_http_reply_data(resp, 200, data);
}

#define LIST_DEFAULT 20
#define LIST_MAX 100

/* A cursor is "<created_at ms>.<image id>" (opaque to clients): the last
 * result of the previous page. */
static bool cursor_parse(const char *s, struct bgr_image_cursor *c)
{
    char *end = NULL;
    if (!s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    long long ms = strtoll(s, &end, 10);
    if (errno || *end != '.' || ms < 0 || !api_id_valid(end + 1, "img_"))
        return false;
    c->created_at_ms = ms;
    (void)snprintf(c->id, sizeof c->id, "%s", end + 1);
    return true;
}

static int check_list_query(void *c, const char *name, const char *value)
{
    const char **bad = c;
    (void)value;
    if (strcmp(name, "limit") && strcmp(name, "cursor") && strcmp(name, "batch_id")) {
        *bad = name;
        return 1;
    }
    return 0;
}

void api_images_list(void *app, struct bgr_http_req *req, struct bgr_http_resp *resp)
{
    struct bgr_api *api = app;
    struct api_ctx *ctx = api_ctx_of(req);
    struct bgr_error e = {0};
    struct bgr_image *imgs = NULL;
    struct bgr_image_cursor after;
    const char *bad = NULL, *q;
    const char *batch = bgr_http_req_query(req, "batch_id");
    const char *cursor = bgr_http_req_query(req, "cursor");
    int limit = LIST_DEFAULT, n = 0, rc;
    bool more = false;
    json_t *list = NULL;

    if (bgr_http_req_query_each(req, check_list_query, &bad)) {
        rc = bgr_error_set(&e, BGR_EINVALID_PARAMETER, "Unknown parameter '%.64s'", bad);
        goto fail;
    }
    if ((q = bgr_http_req_query(req, "limit")) != NULL) {
        char *end = NULL;
        long v = strtol(q, &end, 10);
        if (!*q || *end || v < 1 || v > LIST_MAX) {
            rc = bgr_error_set(&e, BGR_EINVALID_PARAMETER,
                               "Invalid limit: expected an integer from 1 to %d", LIST_MAX);
            goto fail;
        }
        limit = (int)v;
    }
    if (batch && !api_id_valid(batch, "batch_")) {
        rc = bgr_error_set(&e, BGR_EINVALID_PARAMETER, "Invalid batch_id: expected batch_...");
        goto fail;
    }
    if (cursor && !cursor_parse(cursor, &after)) {
        rc = bgr_error_set(&e, BGR_EINVALID_PARAMETER,
                           "Invalid cursor: pass next_cursor of the previous page unchanged");
        goto fail;
    }
    imgs = malloc(sizeof *imgs * (size_t)limit);
    if (!imgs) {
        rc = bgr_error_set(&e, BGR_ENOMEM, "out of memory");
        goto fail;
    }
    rc = bgr_store_images_list(api->store, ctx->acct.id, batch, cursor ? &after : NULL,
                               bgr_wall_ms(), imgs, limit, &n, &more, &e);
    if (rc)
        goto fail;
    list = json_array();
    for (int i = 0; list && i < n; i++)
        if (json_array_append_new(list, stored_image_json(&imgs[i], api->public_url)) != 0) {
            json_decref(list);
            list = NULL;
        }
    char next[BGR_ID_MAX + 32] = "";
    if (more && n > 0)
        (void)snprintf(next, sizeof next, "%" PRId64 ".%s", imgs[n - 1].created_at_ms,
                       imgs[n - 1].id);
    json_t *data = list ? json_pack("{s:o,s:b,s:o}", "images", list, "has_more", more ? 1 : 0,
                                    "next_cursor", next[0] ? json_string(next) : json_null())
                        : NULL;
    if (!data) {
        rc = bgr_error_set(&e, BGR_ENOMEM, "out of memory");
        goto fail;
    }
    free(imgs);
    bgr_http_reply_data(resp, 200, data);
    return;
fail:
    free(imgs);
    api_reply_err(resp, rc, &e);
}

void api_image_delete(void *app, struct bgr_http_req *req, struct bgr_http_resp *resp)
{
    struct bgr_api *api = app;
    struct api_ctx *ctx = api_ctx_of(req);
    struct bgr_error e = {0};
    const char *id = req->params[0];
    struct bgr_image img;
    int64_t now = bgr_wall_ms();
    if (!api_id_valid(id, "img_")) {
        bgr_http_reply_error(resp, BGR_ENOT_FOUND, "Image not found");
        return;
    }
    int rc = bgr_jobs_image_delete(api->store, api->results, ctx->acct.id, id, now, &img, &e);
    if (rc == BGR_ENOT_FOUND) {
        bgr_http_reply_error(resp, BGR_ENOT_FOUND, "Image not found or already deleted");
        return;
    }
    if (rc) {
        api_reply_err(resp, rc, &e);
        return;
    }
    char when[21];
    bgr_time_format(img.deleted_at_ms ? img.deleted_at_ms : now, when);
    bgr_http_reply_data(resp, 200,
                        json_pack("{s:s,s:b,s:s}", "id", img.id, "deleted", 1, "deleted_at", when));
}

void api_result_get(void *app, struct bgr_http_req *req, struct bgr_http_resp *resp)
{
    struct bgr_api *api = app;
    struct bgr_error e = {0};
    const char *file = req->params[0];
    const char *dot = strrchr(file, '.');
    char id[BGR_ID_MAX];
    if (!dot || (size_t)(dot - file) >= sizeof id)
        goto not_found;
    memcpy(id, file, (size_t)(dot - file));
    id[dot - file] = '\0';
    if (!api_id_valid(id, "img_"))
        goto not_found;
    struct bgr_image img;
    int64_t now = bgr_wall_ms();
    int rc = bgr_store_image_get(api->store, id, NULL, now, &img, &e);
    if (rc == BGR_ENOT_FOUND)
        goto not_found;
    if (rc) {
        api_reply_err(resp, rc, &e);
        return;
    }
    if (strcmp(dot + 1, img.ext) != 0)
        goto not_found; /* the one URL we gave out, no aliases */

    char etag[80];
    (void)snprintf(etag, sizeof etag, "\"%s\"", img.sha256);
    int64_t max_age = (img.expires_at_ms - now) / 1000;
    char cc[64];
    (void)snprintf(cc, sizeof cc, "private, max-age=%lld", (long long)(max_age > 0 ? max_age : 0));
    const char *inm = bgr_http_req_header(req, "If-None-Match");
    if (inm && (strcmp(inm, etag) == 0 || strcmp(inm, "*") == 0)) {
        bgr_http_reply_bytes(resp, 304, NULL, NULL, 0);
    } else {
        struct bgr_results_obj obj;
        rc = bgr_results_open_obj(api->results, img.path, (uint64_t)img.size_bytes, &obj, &e);
        if (rc == BGR_ENOT_FOUND)
            goto not_found; /* swept or deleted between the lookup and the open */
        if (rc) {
            bgr_http_reply_error(resp, BGR_EIO, NULL);
            bgr_log(BGR_LOG_ERROR, "result %s: %s", img.id, e.msg);
            return;
        }
        bgr_http_reply_fd(resp, 200, img.mime, obj.fd, obj.size);
    }
    bgr_http_resp_header(resp, "ETag", etag);
    bgr_http_resp_header(resp, "Cache-Control", cc);
    bgr_http_resp_header(resp, "X-Content-Type-Options", "nosniff");
    return;
not_found:
    bgr_http_reply_error(resp, BGR_ENOT_FOUND,
                         "Result not found (deleted, expired or never existed)");
}
