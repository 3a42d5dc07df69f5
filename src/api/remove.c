/*
 * remove.c - POST /v1/remove: one image, synchronously.
 *
 * Accepted bodies: multipart/form-data (file part "image_file", other
 * parameters as text fields; empty fields and an empty file part count as
 * not given, as HTML forms send them), application/json (image_url, or
 * image_file_b64 as an extension), application/x-www-form-urlencoded
 * (image_url only). Exactly one image source is required. Every parameter
 * is validated before any work is queued; unknown and repeated parameters
 * are refused (400 naming the field) so a typo never silently falls back to
 * a default.
 *
 * The handler waits for the result on a thread of its own (the route is
 * BGR_ROUTE_BLOCKING: the server runs it off its event loop, so other
 * requests are not delayed); the work itself runs on the job queue, which
 * answers 503 SERVICE_BUSY when full.
 */
#include "api/api_int.h"
#include "api/removebg.h"

#include <stdlib.h>
#include <string.h>

static const char *const known_fields[] = {
    "image_url",      "image_file", "image_file_b64", "webhook_url", "output_format",
    "output_quality", "bg_color",   "max_resolution", "crop",        "output_type",
    "crop_margin",    "refine",     "decontaminate"};

static int mark_seen(struct api_remove_params *p, const char *name, struct bgr_error *err)
{
    for (size_t i = 0; i < BGR_ARRAY_LEN(known_fields); i++)
        if (strcmp(name, known_fields[i]) == 0) {
            if (p->seen & (1u << i))
                return bgr_error_set(err, BGR_EINVALID_PARAMETER, "Parameter %s given twice", name);
            p->seen |= 1u << i;
            return 0;
        }
    return bgr_error_set(err, BGR_EINVALID_PARAMETER, "Unknown parameter '%.64s'", name);
}

/* One text field (multipart or urlencoded). value is NUL-terminated. */
static int text_field(struct api_remove_params *p, const char *name, const char *value, size_t len,
                      struct bgr_error *err)
{
    int rc = mark_seen(p, name, err);
    if (rc)
        return rc;
    if (strlen(value) != len)
        return bgr_error_set(err, BGR_EINVALID_PARAMETER, "Invalid %s: contains a NUL byte", name);
    if (len == 0)
        return 0; /* empty form fields (HTML forms send them) mean "not given" */
    if (strcmp(name, "image_url") == 0) {
        p->image_url = value;
        return 0;
    }
    if (strcmp(name, "webhook_url") == 0) {
        p->webhook_url = value;
        return 0;
    }
    rc = api_opt_from_string(&p->opts, name, value, name, err);
    if (rc == 1)
        return bgr_error_set(err, BGR_EINVALID_PARAMETER, "Parameter %s is not accepted here",
                             name);
    return rc;
}

static int parse_multipart(struct bgr_arena *a, const char *content_type, const uint8_t *body,
                           size_t len, struct api_remove_params *p, struct bgr_error *err)
{
    const char *boundary;
    struct bgr_http_part *parts;
    size_t n = 0;
    int rc = bgr_http_multipart_boundary(a, content_type, &boundary, err);
    if (!rc)
        rc = bgr_http_multipart_parse(a, boundary, body, len, NULL, &parts, &n, err);
    for (size_t i = 0; !rc && i < n; i++) {
        if (strcmp(parts[i].name, "image_file") == 0) {
            rc = mark_seen(p, "image_file", err);
            /* An empty file part is what a browser sends when no file was
             * chosen: it is "not given", like an empty text field. */
            p->file = parts[i].data;
            p->file_len = parts[i].len;
            p->has_file = parts[i].len > 0;
            continue;
        }
        if (parts[i].len > 4096) {
            rc = bgr_error_set(err, BGR_EINVALID_PARAMETER, "Field %.64s is too long",
                               parts[i].name);
            break;
        }
        char *v = bgr_arena_strndup(a, (const char *)parts[i].data, parts[i].len);
        if (!v)
            return bgr_error_set(err, BGR_ENOMEM, "out of memory");
        rc = text_field(p, parts[i].name, v, parts[i].len, err);
    }
    return rc;
}

static int parse_urlencoded(struct bgr_arena *a, const uint8_t *body, size_t len,
                            struct api_remove_params *p, struct bgr_error *err)
{
    struct bgr_http_field *f;
    size_t n = 0;
    int rc = bgr_http_urlencoded_parse(a, (const char *)body, len, 32, &f, &n, err);
    for (size_t i = 0; !rc && i < n; i++)
        rc = text_field(p, f[i].name, f[i].value, f[i].len, err);
    return rc;
}

static int parse_json(const uint8_t *body, size_t len, struct api_remove_params *p, json_t **root,
                      struct bgr_error *err)
{
    int rc = api_json_object(body, len, root, err);
    if (rc)
        return rc;
    const char *name;
    json_t *v;
    json_object_foreach(*root, name, v)
    {
        if (json_is_null(v))
            continue; /* null means "not given" */
        if (strcmp(name, "image_file") == 0)
            return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                                 "image_file is a multipart upload; in JSON use image_file_b64");
        rc = mark_seen(p, name, err);
        if (rc)
            return rc;
        if (strcmp(name, "image_url") == 0 || strcmp(name, "webhook_url") == 0 ||
            strcmp(name, "image_file_b64") == 0) {
            if (!json_is_string(v))
                return bgr_error_set(err, BGR_EINVALID_PARAMETER, "Invalid %s: expected a string",
                                     name);
            const char *s = json_string_value(v);
            if (strcmp(name, "image_url") == 0)
                p->image_url = s;
            else if (strcmp(name, "webhook_url") == 0)
                p->webhook_url = s;
            else
                p->b64 = s;
            continue;
        }
        rc = api_opt_from_json(&p->opts, name, v, name, err);
        if (rc)
            return rc;
    }
    return 0;
}

/* Decodes standard or URL-safe base64 (padding optional, whitespace
 * skipped, an optional "data:...;base64," prefix) into a malloc'd buffer of
 * at most max bytes, with the same decoder as the remove.bg route. */
static int b64_decode(const char *s, size_t max, uint8_t **out, size_t *outlen,
                      struct bgr_error *err)
{
    int rc = rbg_b64_decode(s, max, out, outlen);
    char lim[32];
    if (rc == -2)
        return bgr_error_set(err, BGR_EFILE_TOO_LARGE,
                             "The image exceeds the plan's maximum file size of %s",
                             bgr_size_text(max, lim));
    if (rc)
        return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                             "Invalid image_file_b64: not valid base64 (or a data: URI "
                             "that is not base64)");
    return 0;
}

int api_remove_parse(struct bgr_arena *a, const char *content_type, const uint8_t *body, size_t len,
                     size_t max, struct api_remove_params *p, json_t **root, uint8_t **decoded,
                     struct bgr_error *err)
{
    int rc;
    memset(p, 0, sizeof *p);
    bgr_output_opts_init(&p->opts);
    *root = NULL;
    *decoded = NULL;

    /* The "type/subtype" of Content-Type, lower-cased (as bgr_http_req_mime). */
    char mime[64] = "";
    if (content_type) {
        size_t n = strcspn(content_type, ";"), k = 0;
        while (n > 0 && (content_type[n - 1] == ' ' || content_type[n - 1] == '\t'))
            n--;
        while (k < n && (content_type[k] == ' ' || content_type[k] == '\t'))
            k++;
        if (n - k < sizeof mime)
            for (size_t j = 0; k + j < n; j++) {
                char c = content_type[k + j];
                mime[j] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
                mime[j + 1] = '\0';
            }
    }
    if (len == 0)
        return bgr_error_set(
            err, BGR_EMISSING_IMAGE,
            "No image was given: send image_file (multipart), image_file_b64 or image_url");
    if (strcmp(mime, "multipart/form-data") == 0)
        rc = parse_multipart(a, content_type, body, len, p, err);
    else if (strcmp(mime, "application/json") == 0)
        rc = parse_json(body, len, p, root, err);
    else if (strcmp(mime, "application/x-www-form-urlencoded") == 0)
        rc = parse_urlencoded(a, body, len, p, err);
    else
        rc = bgr_error_set(err, BGR_EUNSUPPORTED_FORMAT,
                           "Content-Type must be multipart/form-data, application/json or "
                           "application/x-www-form-urlencoded");
    if (rc)
        return rc;

    int sources = (p->has_file ? 1 : 0) + (p->b64 ? 1 : 0) + (p->image_url ? 1 : 0);
    if (sources == 0)
        return bgr_error_set(
            err, BGR_EMISSING_IMAGE,
            "No image was given: send image_file (multipart), image_file_b64 or image_url");
    if (sources > 1)
        return bgr_error_set(err, BGR_EMULTIPLE_SOURCES,
                             "Give either an uploaded image or image_url, not both");
    if (p->image_url && (rc = api_check_url(p->image_url, "image_url", err)) != 0)
        return rc;
    if (p->webhook_url && (rc = api_check_url(p->webhook_url, "webhook_url", err)) != 0)
        return rc;
    if ((rc = api_opts_check(&p->opts, "", err)) != 0)
        return rc;
    if (p->b64) {
        size_t decoded_len = 0;
        if ((rc = b64_decode(p->b64, max, decoded, &decoded_len, err)) != 0)
            return rc;
        p->file = *decoded;
        p->file_len = decoded_len;
        p->has_file = true;
    }
    if (p->has_file && p->file_len == 0)
        return bgr_error_set(err, BGR_EMISSING_IMAGE, "The uploaded image is empty");
    if (p->has_file && p->file_len > max) {
        char got[32], lim[32];
        return bgr_error_set(err, BGR_EFILE_TOO_LARGE,
                             "The image (%s) exceeds the plan's maximum file size of %s",
                             bgr_size_text(p->file_len, got), bgr_size_text(max, lim));
    }
    return 0;
}

void api_remove(void *app, struct bgr_http_req *req, struct bgr_http_resp *resp)
{
    struct bgr_api *api = app;
    struct api_ctx *ctx = api_ctx_of(req);
    struct api_remove_params p;
    struct bgr_error e = {0};
    json_t *root = NULL;
    uint8_t *decoded = NULL;
    size_t max = ctx->acct.plan.max_bytes > 0 ? (size_t)ctx->acct.plan.max_bytes : SIZE_MAX;

    if (!api_idem_begin(api, req, resp))
        return; /* answered: replayed, or the key refused */
    int rc = api_remove_parse(&req->arena, bgr_http_req_header(req, "Content-Type"), req->body.data,
                              req->body.len, max, &p, &root, &decoded, &e);
    if (rc)
        goto fail;
    /* This handler runs on a thread of its own: resolving is allowed. */
    if (p.webhook_url && (rc = api_check_webhook_dest(api, p.webhook_url, true, &e)) != 0)
        goto fail;

    struct bgr_jobs *jobs = api_jobs(api);
    if (!jobs) {
        rc = bgr_error_set(&e, BGR_ESERVICE_BUSY, "The model is still loading, retry shortly");
        resp->retry_after_s = 5;
        goto fail;
    }
    struct bgr_remove_req rr = {
        .acct = &ctx->acct,
        .data = p.has_file ? p.file : NULL,
        .len = p.has_file ? p.file_len : 0,
        .image_url = p.image_url,
        .opts = p.opts,
        .webhook_url = p.webhook_url,
    };
    struct bgr_image img;
    rc = bgr_jobs_remove(jobs, &rr, &img, &e);
    if (rc) {
        if (rc == BGR_EUNSUPPORTED_FORMAT || rc == BGR_ERESOLUTION_TOO_HIGH ||
            rc == BGR_EINTERNAL || rc == BGR_ENOMEM)
            bgr_http_metrics_image(api->metrics, false);
        goto fail;
    }
    bgr_http_metrics_image(api->metrics, true);
    json_t *data = bgr_jobs_image_json(&img, api->public_url);
    if (!data) {
        rc = bgr_error_set(&e, BGR_ENOMEM, "out of memory");
        goto fail;
    }
    bgr_http_reply_data(resp, 200, data);
    goto done;
fail:
    api_reply_err(resp, rc, &e);
done:
    json_decref(root);
    free(decoded);
}
