/*
 * images.c - DELETE /v1/images/:image_id (the caller's stored result, at
 * once) and GET /v1/results/:id.:ext (serving a stored result).
 *
 * A result URL carries an unguessable id, so the URL itself is the
 * capability: no API key is needed to fetch it (as with a CDN link). Ids and
 * extensions are checked against fixed alphabets before the store is asked,
 * and the file opened is the path the store recorded, never one built from
 * the request, so no path traversal is possible. Deleted or expired results
 * are 404 at once. Caching: a strong ETag (SHA-256 of the file) and
 * "private" with max-age until expiry, so shared caches never keep a result
 * past its deletion.
 */
#include "api/api_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
    int rc = bgr_store_image_delete(api->store, ctx->acct.id, id, now, &img, &e);
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
        char path[4200];
        int fd = -1;
        if (snprintf(path, sizeof path, "%s/%s", bgr_store_data_dir(api->store), img.path) <
            (int)sizeof path)
            fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        else
            errno = ENAMETOOLONG;
        struct stat st;
        if (fd < 0) {
            /* Swept or deleted between the lookup and the open. */
            if (errno == ENOENT)
                goto not_found;
            bgr_http_reply_error(resp, BGR_EIO, NULL);
            bgr_log(BGR_LOG_ERROR, "open result %s: %s", img.id, strerror(errno));
            return;
        }
        if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            close(fd);
            bgr_http_reply_error(resp, BGR_EIO, NULL);
            return;
        }
        bgr_http_reply_fd(resp, 200, img.mime, fd, (uint64_t)st.st_size);
    }
    bgr_http_resp_header(resp, "ETag", etag);
    bgr_http_resp_header(resp, "Cache-Control", cc);
    bgr_http_resp_header(resp, "X-Content-Type-Options", "nosniff");
    return;
not_found:
    bgr_http_reply_error(resp, BGR_ENOT_FOUND,
                         "Result not found (deleted, expired or never existed)");
}
