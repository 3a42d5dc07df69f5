/*
 * render.c - the JSON shapes of results and batches, shared by the API's
 * responses and the webhooks so both always say the same thing.
 */
#define _GNU_SOURCE
#include "jobs/jobs_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *url_of(const char *public_url, const char *kind, const char *id, const char *ext)
{
    char *s = NULL;
    json_t *v;
    if (asprintf(&s, "%s/v1/%s/%s%s%s", public_url, kind, id, ext ? "." : "", ext ? ext : "") < 0)
        return NULL;
    v = json_string(s);
    free(s);
    return v;
}

static json_t *time_or_null(int64_t ms)
{
    char ts[21];
    if (ms <= 0)
        return json_null();
    bgr_time_format(ms, ts);
    return json_string(ts);
}

/* confidence (3 decimals; null when not known, for results stored before
 * it existed) and subject ({x, y, width, height} in output pixels, null
 * when the cutout has none). Returns nonzero on out-of-memory. */
static int put_quality(json_t *o, const struct bgr_image *m)
{
    int rc = json_object_set_new(o, "confidence",
                                 m->confidence >= 0 ? json_real(round(m->confidence * 1e3) / 1e3)
                                                    : json_null());
    rc |= json_object_set_new(o, "subject",
                              m->subject_w > 0 ? json_pack("{s:i, s:i, s:i, s:i}", "x",
                                                           m->subject_x, "y", m->subject_y, "width",
                                                           m->subject_w, "height", m->subject_h)
                                               : json_null());
    return rc;
}

/* Sets the image fields on o (spec order). Returns -1 on out-of-memory. */
static int put_image(json_t *o, const struct bgr_image *m, const char *public_url)
{
    int rc = 0;
    rc |= json_object_set_new(o, "id", json_string(m->id));
    rc |= json_object_set_new(o, "output_url", url_of(public_url, "results", m->id, m->ext));
    rc |= json_object_set_new(o, "format", json_string(m->format));
    rc |= json_object_set_new(o, "width", json_integer(m->width));
    rc |= json_object_set_new(o, "height", json_integer(m->height));
    rc |= json_object_set_new(o, "original_width", json_integer(m->original_width));
    rc |= json_object_set_new(o, "original_height", json_integer(m->original_height));
    rc |= json_object_set_new(o, "file_size_bytes", json_integer(m->size_bytes));
    rc |= json_object_set_new(o, "processing_time_ms", json_integer(m->processing_ms));
    /* 0.25 for a preview: a whole number stays an integer, as the spec shows */
    rc |= json_object_set_new(o, "credits_used",
                              m->credits == (double)(json_int_t)m->credits
                                  ? json_integer((json_int_t)m->credits)
                                  : json_real(m->credits));
    rc |= json_object_set_new(o, "expires_at", time_or_null(m->expires_at_ms));
    rc |= put_quality(o, m);
    return rc ? -1 : 0;
}

json_t *bgr_jobs_image_json(const struct bgr_image *img, const char *public_url)
{
    json_t *o = json_object();
    if (!o || put_image(o, img, public_url) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *item_json(const struct bgr_batch_item *it, const char *public_url)
{
    json_t *o = json_object();
    int rc = 0;
    if (!o)
        return NULL;
    rc |= json_object_set_new(o, "index", json_integer(it->index));
    rc |= json_object_set_new(o, "image_url", json_string(it->image_url));
    rc |= json_object_set_new(o, "status", json_string(bgr_item_status_name(it->status)));
    if (it->status == BGR_ITEM_COMPLETED && it->image.id[0]) {
        rc |= put_image(o, &it->image, public_url);
        /* The item's own timing (the same as the result's). */
        rc |= json_object_set_new(o, "processing_time_ms", json_integer(it->processing_ms));
    } else if (it->status == BGR_ITEM_FAILED) {
        json_t *e = json_pack("{s:s, s:s}", "code", it->error_code, "message", it->error_message);
        rc |= json_object_set_new(o, "error", e);
    }
    if (rc) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int bgr_jobs_batch_json(struct bgr_store *s, const char *public_url, const char *batch_id,
                        const char *account_id, json_t **out, struct bgr_error *err)
{
    struct bgr_batch b;
    struct bgr_batch_item *items = NULL;
    size_t n = 0;
    json_t *o = NULL, *results = NULL;
    int rc = bgr_store_batch_get(s, batch_id, account_id, &b, err);
    if (rc)
        return rc;
    rc = bgr_store_batch_items(s, batch_id, &items, &n, err);
    if (rc)
        return rc;
    results = json_array();
    o = json_object();
    if (!o || !results)
        goto nomem;
    for (size_t i = 0; i < n; i++)
        if (json_array_append_new(results, item_json(&items[i], public_url)) != 0)
            goto nomem;
    if (json_object_set_new(o, "batch_id", json_string(b.id)) ||
        json_object_set_new(o, "status", json_string(b.status)) ||
        json_object_set_new(o, "total_images", json_integer(b.total)) ||
        json_object_set_new(o, "completed", json_integer(b.completed)) ||
        json_object_set_new(o, "failed", json_integer(b.failed)) ||
        json_object_set_new(o, "processing", json_integer(b.processing)) ||
        json_object_set_new(o, "queued", json_integer(b.queued)) ||
        json_object_set_new(o, "created_at", time_or_null(b.created_at_ms)) ||
        json_object_set_new(o, "finished_at", time_or_null(b.finished_at_ms)) ||
        json_object_set_new(o, "poll_url", url_of(public_url, "batch", b.id, NULL)) ||
        json_object_set(o, "results", results))
        goto nomem;
    json_decref(results);
    free(items);
    *out = o;
    return 0;
nomem:
    json_decref(results);
    json_decref(o);
    free(items);
    return bgr_error_set(err, BGR_ENOMEM, "out of memory");
}
