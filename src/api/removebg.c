/*
 * removebg.c - POST /v1.0/removebg, remove.bg's API v1.0 on our pipeline,
 * plans, credits, rate limits and usage (docs/REMOVEBG.md).
 *
 * Bodies: multipart/form-data (image_file and bg_image_file as file parts),
 * application/json and application/x-www-form-urlencoded (image_url or
 * image_file_b64). Every parameter is a text value; JSON booleans and
 * numbers are read as their text. Empty values and JSON null mean "not
 * given" (real clients send unset options), and unknown parameters are
 * ignored as remove.bg ignores them, so a client built for it keeps working.
 *
 * Everything that can be checked before the work is checked here, each
 * failure with remove.bg's code: the source (exactly one; downloaded here
 * for image_url, so its failure is failed_image_download), its type and
 * dimensions from the header, every parameter's syntax, roi against the
 * image, the background source. The work then runs on the job queue
 * (rbg_render), and its result is committed and charged (0.25 credits for
 * previews) in one transaction before the answer is sent.
 */
#include "api/removebg.h"
#include "api/api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "image/image.h"
#include "net/net.h"

/* Records remove.bg's code and formats the detail (a macro, so the
 * format string stays a literal the compiler checks). */
#define BAD(c_, ...) (r->code = (c_), bgr_error_set(err, BGR_EINVALID_PARAMETER, __VA_ARGS__))

/* One parameter as text (value NUL-terminated, non-empty). */
static int set_param(struct rbg_req *r, const char *name, const char *v, struct bgr_error *err)
{
    struct rbg_opts *o = &r->o;
    if (strcmp(name, "image_url") == 0) {
        r->image_url = v;
        r->n_sources++;
    } else if (strcmp(name, "image_file_b64") == 0) {
        r->b64 = v;
        r->n_sources++;
    } else if (strcmp(name, "bg_image_url") == 0) {
        r->bg_url = v;
        r->n_bg++;
    } else if (strcmp(name, "size") == 0) {
        if (rbg_parse_size(v, &o->size))
            return BAD("invalid_size",
                       "Invalid size '%.64s': expected preview, medium, hd, full, 50MP or auto", v);
    } else if (strcmp(name, "type") == 0) {
        if (rbg_parse_type(v, o->type))
            return BAD("invalid_type",
                       "Invalid type '%.64s': expected auto, person, product, animal, car, "
                       "transportation, graphic or other",
                       v);
    } else if (strcmp(name, "type_level") == 0) {
        if (rbg_parse_type_level(v, &o->type_level))
            return BAD("invalid_type_level",
                       "Invalid type_level '%.64s': expected none, 1, 2 or latest", v);
    } else if (strcmp(name, "format") == 0) {
        if (rbg_parse_format(v, &o->format))
            return BAD("invalid_format",
                       "Invalid format '%.64s': expected auto, png, jpg, webp or zip", v);
    } else if (strcmp(name, "roi") == 0) {
        if (rbg_parse_roi(v, o->roi))
            return BAD("invalid_roi",
                       "Invalid roi '%.64s': expected 'x1 y1 x2 y2' with px or %% units", v);
        o->has_roi = true;
    } else if (strcmp(name, "crop") == 0) {
        if (rbg_parse_bool(v, &o->crop))
            return BAD("invalid_crop", "Invalid crop '%.64s': expected true or false", v);
    } else if (strcmp(name, "crop_margin") == 0) {
        if (rbg_parse_margin(v, o->margin))
            return BAD("invalid_crop_margin",
                       "Invalid crop_margin '%.64s': 1, 2 or 4 values in px (at most 500) or "
                       "%% (at most 50)",
                       v);
        o->has_margin = true;
    } else if (strcmp(name, "scale") == 0) {
        if (rbg_parse_scale(v, &o->scale_pct))
            return BAD("invalid_scale", "Invalid scale '%.64s': expected original or 10%% to 100%%",
                       v);
    } else if (strcmp(name, "position") == 0) {
        if (rbg_parse_position(v, &o->has_position, &o->pos_x, &o->pos_y))
            return BAD("invalid_position",
                       "Invalid position '%.64s': expected original, center or 0%% to 100%% "
                       "(one or two values)",
                       v);
    } else if (strcmp(name, "channels") == 0) {
        if (rbg_parse_channels(v, &o->alpha_only))
            return BAD("invalid_channels", "Invalid channels '%.64s': expected rgba or alpha", v);
    } else if (strcmp(name, "bg_color") == 0) {
        if (rbg_parse_color(v, o->bg))
            return BAD("invalid_bg_color",
                       "Invalid bg_color '%.64s': expected hex (81d4fa, fff, 4 or 8 digits with "
                       "alpha) or a colour name",
                       v);
        o->has_bg_color = true;
    } else if (strcmp(name, "semitransparency") == 0) {
        if (rbg_parse_bool(v, &o->semitransparency))
            return BAD("invalid_semitransparency",
                       "Invalid semitransparency '%.64s': expected true or false", v);
    } else if (strcmp(name, "add_shadow") == 0) {
        if (rbg_parse_bool(v, &o->add_shadow))
            return BAD("invalid_add_shadow", "Invalid add_shadow '%.64s': expected true or false",
                       v);
    } else if (strcmp(name, "shadow_type") == 0 || strcmp(name, "shadow_method") == 0) {
        /* One soft drop shadow whatever the style asked (docs/REMOVEBG.md). */
        if (strcasecmp(v, "car") && strcasecmp(v, "3D") && strcasecmp(v, "drop") &&
            strcasecmp(v, "original"))
            return BAD("invalid_shadow_type",
                       "Invalid shadow_type '%.64s': expected car, 3D, drop or original", v);
    } else if (strcmp(name, "shadow_opacity") == 0) {
        if (rbg_parse_percent(v, &o->shadow_opacity))
            return BAD("invalid_shadow_opacity",
                       "Invalid shadow_opacity '%.64s': expected 0 to 100", v);
    }
    /* anything else: ignored, as remove.bg does */
    return 0;
}

static int parse_multipart(struct bgr_arena *a, const char *content_type, const uint8_t *body,
                           size_t len, struct rbg_req *r, struct bgr_error *err)
{
    const char *boundary;
    struct bgr_http_part *parts;
    size_t n;
    int rc = bgr_http_multipart_boundary(a, content_type, &boundary, err);
    if (!rc)
        rc = bgr_http_multipart_parse(a, boundary, body, len, NULL, &parts, &n, err);
    for (size_t i = 0; !rc && i < n; i++) {
        const struct bgr_http_part *p = &parts[i];
        if (p->len == 0)
            continue; /* an empty field or file part: not given */
        if (strcmp(p->name, "image_file") == 0) {
            r->file = p->data;
            r->file_len = p->len;
            r->n_sources++;
            continue;
        }
        if (strcmp(p->name, "bg_image_file") == 0) {
            r->bg_file = p->data;
            r->bg_file_len = p->len;
            r->n_bg++;
            continue;
        }
        if (p->len > 4096 && strcmp(p->name, "image_file_b64") != 0) {
            r->code = "invalid_request";
            return bgr_error_set(err, BGR_EINVALID_PARAMETER, "Field %.64s is too long", p->name);
        }
        char *v = bgr_arena_strndup(a, (const char *)p->data, p->len);
        if (!v)
            return bgr_error_set(err, BGR_ENOMEM, "out of memory");
        rc = set_param(r, p->name, v, err);
    }
    return rc;
}

static int parse_urlencoded(struct bgr_arena *a, const uint8_t *body, size_t len, struct rbg_req *r,
                            struct bgr_error *err)
{
    struct bgr_http_field *f;
    size_t n;
    int rc = bgr_http_urlencoded_parse(a, (const char *)body, len, 64, &f, &n, err);
    for (size_t i = 0; !rc && i < n; i++)
        if (f[i].len > 0)
            rc = set_param(r, f[i].name, f[i].value, err);
    return rc;
}

static int parse_json(const uint8_t *body, size_t len, struct rbg_req *r, json_t **root,
                      struct bgr_error *err)
{
    int rc = api_json_object(body, len, root, err);
    if (rc)
        return rc;
    const char *name;
    json_t *v;
    json_object_foreach(*root, name, v)
    {
        char buf[64];
        const char *s = buf;
        if (json_is_null(v))
            continue;
        if (json_is_string(v))
            s = json_string_value(v);
        else if (json_is_boolean(v))
            s = json_is_true(v) ? "true" : "false";
        else if (json_is_integer(v))
            (void)snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
        else if (json_is_real(v))
            (void)snprintf(buf, sizeof buf, "%g", json_real_value(v));
        else {
            r->code = "invalid_request";
            return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                                 "Invalid %.64s: expected a string, number or boolean", name);
        }
        if (s == buf) {
            /* set_param may keep s (image_url and the like) after this loop,
             * where buf is gone: the object keeps the text instead. */
            json_t *str = json_string(buf);
            if (!str || json_object_iter_set_new(*root, json_object_key_to_iter(name), str))
                return bgr_error_set(err, BGR_ENOMEM, "out of memory");
            s = json_string_value(str);
        }
        if (!s[0])
            continue; /* "" is "not given" */
        if ((rc = set_param(r, name, s, err)) != 0)
            return rc;
    }
    return 0;
}

/* Downloads image_url or bg_image_url under the plan's size cap. */
static int fetch(struct bgr_api *api, const struct bgr_account *acct, const char *url,
                 struct bgr_buf *body, struct bgr_error *err)
{
    struct bgr_fetch_opts fo;
    bgr_fetch_opts_init(&fo);
    fo.max_bytes = (size_t)acct->plan.max_bytes;
    fo.allow_private = api->cfg && api->cfg->allow_private_urls;
    if (api->cfg && api->cfg->fetch_timeout_s > 0)
        fo.total_timeout_ms = (long)api->cfg->fetch_timeout_s * 1000;
    return bgr_net_get(url, &fo, body, NULL, err);
}

/* Checks roi against the input's w x h (pixel values must lie inside). */
static int check_roi(struct rbg_req *r, int w, int h, struct bgr_error *err)
{
    const struct rbg_len *v = r->o.roi;
    double px[4];
    for (int i = 0; i < 4; i++) {
        double ref = i % 2 ? h : w;
        if (!v[i].pct && v[i].v > ref) {
            r->code = "roi_exceeds_bounds";
            return bgr_error_set(err, BGR_EINVALID_PARAMETER, "roi lies outside the %dx%d image", w,
                                 h);
        }
        px[i] = v[i].pct ? v[i].v / 100.0 * ref : v[i].v;
    }
    if (px[2] <= px[0] || px[3] <= px[1]) {
        r->code = "roi_region_empty";
        return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                             "roi is empty: x2 must exceed x1 and y2 must exceed y1");
    }
    return 0;
}

/* Adds the success headers remove.bg sends. */
static void success_headers(struct bgr_http_resp *resp, const struct rbg_req *r,
                            const struct rbg_outcome *oc, double credits)
{
    char v[32];
    (void)snprintf(v, sizeof v, "%d", oc->width);
    bgr_http_resp_header(resp, "X-Width", v);
    (void)snprintf(v, sizeof v, "%d", oc->height);
    bgr_http_resp_header(resp, "X-Height", v);
    (void)snprintf(v, sizeof v, "%g", credits);
    bgr_http_resp_header(resp, "X-Credits-Charged", v);
    /* We detect no class: what we can say is the client's own hint, or
     * "other" (docs/REMOVEBG.md). */
    if (r->o.type_level > 0)
        bgr_http_resp_header(resp, "X-Type", strcmp(r->o.type, "auto") == 0 ? "other" : r->o.type);
    (void)snprintf(v, sizeof v, "%d", oc->fg_y);
    bgr_http_resp_header(resp, "X-Foreground-Top", v);
    (void)snprintf(v, sizeof v, "%d", oc->fg_x);
    bgr_http_resp_header(resp, "X-Foreground-Left", v);
    (void)snprintf(v, sizeof v, "%d", oc->fg_w);
    bgr_http_resp_header(resp, "X-Foreground-Width", v);
    (void)snprintf(v, sizeof v, "%d", oc->fg_h);
    bgr_http_resp_header(resp, "X-Foreground-Height", v);
    (void)snprintf(v, sizeof v, "%.3f", oc->confidence); /* ours: docs/REMOVEBG.md */
    bgr_http_resp_header(resp, "X-Confidence", v);
}

/* The answer: the bytes, or {"data":{"result_b64",...}} when the client
 * accepts JSON (and not images first). */
static void reply_result(struct bgr_http_req *req, struct bgr_http_resp *resp,
                         const struct rbg_outcome *oc, const uint8_t *data, size_t len,
                         const char *mime)
{
    const char *accept = bgr_http_req_header(req, "Accept");
    if (!accept || !strstr(accept, "application/json")) {
        bgr_http_reply_bytes(resp, 200, mime, data, len);
        return;
    }
    size_t blen;
    char *b64 = rbg_b64_encode(data, len, &blen);
    json_t *root = b64 ? json_pack("{s:{s:s%,s:i,s:i,s:i,s:i}}", "data", "result_b64", b64, blen,
                                   "foreground_top", oc->fg_y, "foreground_left", oc->fg_x,
                                   "foreground_width", oc->fg_w, "foreground_height", oc->fg_h)
                       : NULL;
    free(b64);
    char *s = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (!s) {
        api_removebg_reply_err(resp, BGR_ENOMEM, NULL);
        return;
    }
    bgr_http_reply_bytes(resp, 200, "application/json", s, strlen(s));
    free(s);
}

/* remove.bg's code for an error that came from the work or a download. */
static const char *work_code(int rc, bool from_url)
{
    switch (rc) {
    case BGR_EIMAGE_DOWNLOAD_FAILED:
        return from_url ? "failed_image_download" : "failed_to_read_image";
    case BGR_EUNSUPPORTED_FORMAT:
        return "failed_to_read_image";
    case BGR_ERESOLUTION_TOO_HIGH:
        return "resolution_too_high";
    case BGR_EFILE_TOO_LARGE:
        return "file_too_large";
    default:
        return NULL; /* mapped by status */
    }
}

int rbg_parse_request(struct bgr_arena *a, const char *content_type, const char *mime,
                      const uint8_t *body, size_t len, struct rbg_req *r, json_t **root,
                      struct bgr_error *err)
{
    int rc = 0;
    memset(r, 0, sizeof *r);
    rbg_opts_init(&r->o);
    *root = NULL;

    if (len == 0)
        ; /* no parameters: missing_source below */
    else if (strcmp(mime, "multipart/form-data") == 0)
        rc = parse_multipart(a, content_type, body, len, r, err);
    else if (strcmp(mime, "application/json") == 0)
        rc = parse_json(body, len, r, root, err);
    else if (strcmp(mime, "application/x-www-form-urlencoded") == 0)
        rc = parse_urlencoded(a, body, len, r, err);
    else {
        r->code = "invalid_request";
        rc = bgr_error_set(err, BGR_EINVALID_PARAMETER,
                           "Content-Type must be multipart/form-data, application/json or "
                           "application/x-www-form-urlencoded");
    }
    if (rc)
        return rc;
    if (r->n_sources == 0) {
        r->code = "missing_source";
        return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                             "No image given: send image_file, image_file_b64 or image_url");
    }
    if (r->n_sources > 1) {
        r->code = "multiple_sources";
        return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                             "Multiple image sources given: send only one of image_file, "
                             "image_file_b64 and image_url");
    }
    if (r->n_bg > 1) {
        r->code = "multiple_bg_sources";
        return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                             "Give only one of bg_image_file, bg_image_url and bg_color");
    }
    if (r->n_bg && r->o.has_bg_color) {
        r->code = "multiple_bg_sources";
        return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                             "Give only one of bg_image_file, bg_image_url and bg_color");
    }
    if (r->image_url && api_check_url(r->image_url, "image_url", err) != 0) {
        r->code = "invalid_image_url";
        return BGR_EINVALID_PARAMETER;
    }
    if (r->bg_url && api_check_url(r->bg_url, "bg_image_url", err) != 0) {
        r->code = "invalid_bg_image_url";
        return BGR_EINVALID_PARAMETER;
    }
    return 0;
}

void api_removebg(void *app, struct bgr_http_req *req, struct bgr_http_resp *resp)
{
    struct bgr_api *api = app;
    struct api_ctx *ctx = api_ctx_of(req);
    struct rbg_req r = {0};
    struct bgr_error e = {0};
    json_t *root = NULL;
    uint8_t *decoded = NULL;
    struct bgr_buf dl = {0}, bgdl = {0};
    struct bgr_image img = {0};
    struct bgr_buf out = {0};
    size_t max = ctx->acct.plan.max_bytes > 0 ? (size_t)ctx->acct.plan.max_bytes : SIZE_MAX;
    if (!api_idem_begin(api, req, resp))
        return; /* answered: replayed, or the key refused */
    int rc =
        rbg_parse_request(&req->arena, bgr_http_req_header(req, "Content-Type"),
                          bgr_http_req_mime(req), req->body.data, req->body.len, &r, &root, &e);
    if (rc)
        goto fail;

    /* The image's bytes. */
    if (r.b64) {
        size_t n = 0;
        int b = rbg_b64_decode(r.b64, max, &decoded, &n);
        if (b == -2) {
            r.code = "file_too_large";
            char lim[32];
            rc = bgr_error_set(&e, BGR_EFILE_TOO_LARGE,
                               "The image exceeds the plan's maximum file size of %s",
                               bgr_size_text(max, lim));
            goto fail;
        }
        if (b != 0 || n == 0) {
            r.code = "failed_to_read_image";
            rc = bgr_error_set(&e, BGR_EINVALID_PARAMETER, "image_file_b64 is not valid base64");
            goto fail;
        }
        r.file = decoded;
        r.file_len = n;
    } else if (r.image_url) {
        if ((rc = fetch(api, &ctx->acct, r.image_url, &dl, &e)) != 0) {
            r.code = rc == BGR_EFILE_TOO_LARGE ? "file_too_large" : "failed_image_download";
            goto fail;
        }
        r.file = dl.data;
        r.file_len = dl.len;
    }
    if (r.file_len > max) {
        char got[32], lim[32];
        r.code = "file_too_large";
        rc = bgr_error_set(&e, BGR_EFILE_TOO_LARGE,
                           "The image (%s) exceeds the plan's maximum file size of %s",
                           bgr_size_text(r.file_len, got), bgr_size_text(max, lim));
        goto fail;
    }
    struct bgr_image_info info;
    if ((rc = bgr_image_probe(r.file, r.file_len, NULL, &info, &e)) != 0) {
        r.code = rc == BGR_ERESOLUTION_TOO_HIGH ? "resolution_too_high" : "invalid_file_type";
        goto fail;
    }
    if (r.o.has_roi && (rc = check_roi(&r, info.width, info.height, &e)) != 0)
        goto fail;
    if (r.bg_url) {
        if ((rc = fetch(api, &ctx->acct, r.bg_url, &bgdl, &e)) != 0) {
            r.code = "failed_bg_download";
            goto fail;
        }
        r.bg_file = bgdl.data;
        r.bg_file_len = bgdl.len;
    }
    if (r.bg_file) {
        struct bgr_image_info bi;
        if ((rc = bgr_image_probe(r.bg_file, r.bg_file_len, NULL, &bi, &e)) != 0) {
            r.code = r.bg_url ? "failed_bg_download" : "invalid_bg_image";
            goto fail;
        }
        r.o.bg_image = r.bg_file;
        r.o.bg_image_len = r.bg_file_len;
    }

    /* Credits follow the output size remove.bg would return. */
    int ow, oh;
    rbg_fit_cap(info.width, info.height, rbg_size_cap(r.o.size, r.o.format), &ow, &oh);
    double credits = rbg_size_credits(r.o.size, (uint64_t)ow * (uint64_t)oh);

    struct bgr_jobs *jobs = api_jobs(api);
    if (!jobs) {
        rc = bgr_error_set(&e, BGR_ESERVICE_BUSY, "The model is still loading, retry shortly");
        resp->retry_after_s = 5;
        goto fail;
    }
    struct rbg_render_ctx rctx = {.bg_image = r.o.bg_image, .bg_image_len = r.o.bg_image_len};
    char outcome[64] = ""; /* the render's code when a worker elsewhere ran it */
    /* the buffer fits every option set: a failure is our bug */
    BGR_ASSERT(rbg_opts_to_spec(&r.o, rctx.spec, sizeof rctx.spec) == 0);
    struct bgr_remove_req rr = {
        .acct = &ctx->acct,
        .data = r.file,
        .len = r.file_len,
        .render = rbg_render,
        .render_ctx = &rctx,
        .render_name = RBG_RENDER_NAME,
        .render_spec = rctx.spec,
        .render_extra = r.o.bg_image,
        .render_extra_len = r.o.bg_image_len,
        .outcome = outcome,
        .outcome_len = sizeof outcome,
        .credits = credits,
    };
    bgr_output_opts_init(&rr.opts);
    rc = bgr_jobs_remove(jobs, &rr, &img, &e);
    if (rc) {
        r.code = rctx.out.code ? rctx.out.code : rbg_code_known(outcome);
        if (!r.code)
            r.code = work_code(rc, r.image_url != NULL);
        if (rc != BGR_EINSUFFICIENT_CREDITS && rc != BGR_ESERVICE_BUSY)
            bgr_http_metrics_image(api->metrics, false);
        goto fail;
    }
    bgr_http_metrics_image(api->metrics, true);
    /* What the headers report comes from the committed result, which is
     * all there is when a worker in another process rendered it. */
    rctx.out.width = img.width;
    rctx.out.height = img.height;
    rctx.out.fg_x = img.subject_x;
    rctx.out.fg_y = img.subject_y;
    rctx.out.fg_w = img.subject_w;
    rctx.out.fg_h = img.subject_h;
    rctx.out.confidence = img.confidence;
    /* The committed result file is the answer (so what was charged is
     * exactly what is sent). */
    bgr_buf_release(&out);
    if ((rc = bgr_results_read(api->results, img.path, (size_t)img.size_bytes, &out, &e)) != 0)
        goto fail;
    /* remove.bg keeps nothing, and this route never tells the client the
     * result's id, so it could neither fetch nor delete a stored copy: the
     * copy goes now. The row stays, deleted, as the record of the charge
     * (usage and credits count it, as any deleted /v1 result). Should the
     * delete fail, the sweeper removes the file at the plan's expiry. */
    struct bgr_image gone;
    struct bgr_error de = {0};
    if (bgr_jobs_image_delete(api->store, api->results, ctx->acct.id, img.id, bgr_wall_ms(), &gone,
                              &de) != 0)
        bgr_log(BGR_LOG_WARN, "removebg: dropping result %s failed: %s", img.id, de.msg);
    success_headers(resp, &r, &rctx.out, img.credits);
    reply_result(req, resp, &rctx.out, out.data, out.len, img.mime);
    goto done;
fail:
    if (r.code) {
        resp->err = rc;
        api_removebg_error(resp, 400, r.code, api_removebg_title(r.code), e.msg);
    } else {
        api_removebg_reply_err(resp, rc, &e);
        if (rc == BGR_ESERVICE_BUSY && resp->retry_after_s <= 0)
            resp->retry_after_s = 2;
    }
done:
    bgr_buf_release(&out);
    bgr_buf_release(&dl);
    bgr_buf_release(&bgdl);
    json_decref(root);
    free(decoded);
}
