/*
 * results.c - the module's front: parses the location, picks the backend,
 * checks every key before a backend sees it, and keeps the health flag.
 */
#include "results/results_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void bgr_results_opts_init(struct bgr_results_opts *o)
{
    memset(o, 0, sizeof(*o));
}

/* S3 bucket names: 3 to 63 of [a-z0-9.-], starting and ending alphanumeric. */
static bool bucket_valid(const char *b, size_t n)
{
    if (n < 3 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = b[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && !((c == '.' || c == '-') && i > 0 && i + 1 < n))
            return false;
    }
    return true;
}

/* Prefixes we accept are path segments of characters that need no
 * percent-encoding (libcurl signs the path as written): no "." or ".."
 * segments, no empty segments. */
static bool prefix_valid(const char *p)
{
    const char *seg = p;
    if (strlen(p) > 200)
        return false;
    for (const char *c = p;; c++) {
        if (*c == '/' || *c == 0) {
            size_t n = (size_t)(c - seg);
            if (n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
                return false;
            if (*c == 0)
                return true;
            seg = c + 1;
            continue;
        }
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_' || *c == '.'))
            return false;
    }
}

static int open_s3(struct bgr_results *r, const char *loc, const struct bgr_results_opts *o,
                   struct bgr_error *err)
{
    const char *b = loc + 5, *slash = strchr(b, '/');
    size_t bn = slash ? (size_t)(slash - b) : strlen(b);
    char bucket[64], prefix[256] = "";
    if (!bucket_valid(b, bn))
        return bgr_error_set(err, BGR_EUSAGE,
                             "results: '%s' does not name a valid S3 bucket (s3://BUCKET/PREFIX, "
                             "bucket: 3 to 63 of a-z 0-9 . -)",
                             loc);
    memcpy(bucket, b, bn);
    bucket[bn] = 0;
    if (slash) {
        const char *p = slash + 1;
        size_t pn = strlen(p);
        while (pn && p[pn - 1] == '/')
            pn--;
        if (pn >= sizeof(prefix) - 1)
            return bgr_error_set(err, BGR_EUSAGE, "results: the S3 prefix is too long");
        memcpy(prefix, p, pn);
        prefix[pn] = 0;
        if (pn && !prefix_valid(prefix))
            return bgr_error_set(err, BGR_EUSAGE,
                                 "results: S3 prefix '%s' must be path segments of A-Z a-z 0-9 "
                                 "- _ . (no empty, '.' or '..' segments)",
                                 prefix);
        if (pn) {
            prefix[pn] = '/'; /* fits: pn < sizeof - 1 */
            prefix[pn + 1] = 0;
        }
    }
    return bgr_results_s3_open(r, bucket, prefix, o, err);
}

int bgr_results_open(const char *location, const struct bgr_results_opts *o,
                     struct bgr_results **out, struct bgr_error *err)
{
    struct bgr_results_opts defaults;
    struct bgr_results *r;
    int rc;
    if (!o) {
        bgr_results_opts_init(&defaults);
        o = &defaults;
    }
    if (!location || !location[0])
        return bgr_error_set(err, BGR_EUSAGE, "results: empty location");
    r = bgr_xcalloc(1, sizeof(*r));
    r->location = bgr_xstrdup(location);
    atomic_init(&r->failed, false);
    if (strncmp(location, "s3://", 5) == 0)
        rc = open_s3(r, location, o, err);
    else if (strstr(location, "://"))
        rc = bgr_error_set(err, BGR_EUSAGE,
                           "results: unsupported location '%s' (a directory or s3://BUCKET/PREFIX)",
                           location);
    else
        rc = bgr_results_dir_open(r, location, err);
    if (rc) {
        free(r->location);
        free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void bgr_results_close(struct bgr_results *r)
{
    if (!r)
        return;
    if (r->ops)
        r->ops->close(r);
    free(r->location);
    free(r);
}

const char *bgr_results_location(const struct bgr_results *r)
{
    return r->location;
}

bool bgr_results_healthy(struct bgr_results *r)
{
    struct bgr_error e;
    if (!atomic_load(&r->failed))
        return true;
    /* A directory is checked again at once (one access(2)); a remote store
     * only by bgr_results_check, which may wait on the network. */
    return r->ops->local && bgr_results_check(r, &e) == 0;
}

/* Records the outcome of a request for bgr_results_healthy. */
static int note(struct bgr_results *r, int rc)
{
    if (rc == 0 || rc == BGR_ENOT_FOUND || rc == BGR_EFILE_TOO_LARGE)
        atomic_store(&r->failed, false);
    else if (rc == BGR_EIO)
        atomic_store(&r->failed, true);
    return rc;
}

static bool id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

bool bgr_results_key_valid(const char *key)
{
    const char *dot = key ? strchr(key, '.') : NULL;
    size_t n = key ? strlen(key) : 0;
    if (!dot || dot == key || n >= BGR_RESULTS_KEY_MAX || dot[1] == 0 || strlen(dot + 1) > 8)
        return false;
    for (const char *c = key; c < dot; c++)
        if (!id_char(*c))
            return false;
    for (const char *c = dot + 1; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')))
            return false;
    return true;
}

int bgr_results_key_make(const char *id, const char *ext, char out[BGR_RESULTS_KEY_MAX],
                         struct bgr_error *err)
{
    char k[BGR_RESULTS_KEY_MAX];
    int n = snprintf(k, sizeof k, "%s.%s", id, ext);
    if (n < 0 || (size_t)n >= sizeof k || !bgr_results_key_valid(k))
        return bgr_error_set(err, BGR_EINVALID_PARAMETER, "results: not a result name: '%s.%s'", id,
                             ext);
    memcpy(out, k, (size_t)n + 1);
    return 0;
}

bool bgr_results_key_id(const char *key, char *id, size_t n)
{
    size_t len;
    if (!bgr_results_key_valid(key))
        return false;
    len = (size_t)(strchr(key, '.') - key);
    if (len >= n)
        return false;
    memcpy(id, key, len);
    id[len] = 0;
    return true;
}

static int bad_key(const char *key, struct bgr_error *err)
{
    return bgr_error_set(err, BGR_EINVALID_PARAMETER, "results: not a result name: '%.80s'",
                         key ? key : "(null)");
}

int bgr_results_check(struct bgr_results *r, struct bgr_error *err)
{
    return note(r, r->ops->check(r, err));
}

int bgr_results_put(struct bgr_results *r, const char *key, const void *data, size_t len,
                    const char *content_type, struct bgr_error *err)
{
    if (!bgr_results_key_valid(key))
        return bad_key(key, err);
    return note(r, r->ops->put(r, key, data, len, content_type, err));
}

int bgr_results_open_obj(struct bgr_results *r, const char *key, uint64_t max_bytes,
                         struct bgr_results_obj *out, struct bgr_error *err)
{
    if (!bgr_results_key_valid(key))
        return bad_key(key, err);
    return note(r, r->ops->open_obj(r, key, max_bytes, out, err));
}

int bgr_results_read(struct bgr_results *r, const char *key, size_t max_bytes, struct bgr_buf *out,
                     struct bgr_error *err)
{
    bgr_buf_init(out, max_bytes);
    if (!bgr_results_key_valid(key))
        return bad_key(key, err);
    return note(r, r->ops->read(r, key, max_bytes, out, err));
}

int bgr_results_delete(struct bgr_results *r, const char *key, struct bgr_error *err)
{
    if (!bgr_results_key_valid(key))
        return bad_key(key, err);
    return note(r, r->ops->del(r, key, err));
}

int bgr_results_list(struct bgr_results *r, int64_t now_ms, int64_t min_age_ms,
                     bgr_results_list_fn fn, void *ctx, struct bgr_error *err)
{
    int rc = r->ops->list(r, now_ms, min_age_ms, fn, ctx, err);
    /* A stop by the callback says nothing about the store. */
    return rc == 0 || rc == BGR_EIO ? note(r, rc) : rc;
}
