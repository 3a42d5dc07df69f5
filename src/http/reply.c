/*
 * reply.c - building responses: the JSON envelope of every API answer
 * ({"success":true,"data":...} / {"success":false,"error":{"code","message"}}),
 * raw bytes, files, and extra headers. The HTTP status and the code of an
 * error come from the single table of core/err.h.
 */
#include "http/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

void bgr_http_resp_release(struct bgr_http_resp *resp)
{
    BGR_FREE_AND_NULL(resp->body);
    resp->len = 0;
    if (resp->fd >= 0)
        close(resp->fd);
    resp->fd = -1;
}

int bgr_http_resp_header(struct bgr_http_resp *resp, const char *name, const char *value)
{
    int slot = -1;
    /* Ours are short and fixed; one that would be cut is refused, not sent cut. */
    if (strlen(name) >= sizeof resp->headers[0].name ||
        strlen(value) >= sizeof resp->headers[0].value)
        return BGR_EINTERNAL;
    for (int i = 0; i < resp->nheaders; i++)
        if (strcasecmp(resp->headers[i].name, name) == 0)
            slot = i;
    if (slot < 0) {
        if (resp->nheaders >= BGR_HTTP_MAX_HEADERS)
            return BGR_EINTERNAL;
        slot = resp->nheaders++;
    }
    (void)snprintf(resp->headers[slot].name, sizeof resp->headers[slot].name, "%s", name);
    (void)snprintf(resp->headers[slot].value, sizeof resp->headers[slot].value, "%s", value);
    return 0;
}

static void set_body(struct bgr_http_resp *resp, int status, const char *ctype, uint8_t *data,
                     size_t len)
{
    bgr_http_resp_release(resp);
    resp->status = status;
    (void)snprintf(resp->content_type, sizeof resp->content_type, "%s", ctype ? ctype : "");
    resp->body = data;
    resp->len = len;
}

/* Serialises an envelope; falls back to a fixed 500 body if even that fails
 * (out of memory), so a client always gets the envelope shape. */
static void set_json(struct bgr_http_resp *resp, int status, json_t *root)
{
    char *s =
        root ? json_dumps(root, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(15)) : NULL;
    json_decref(root);
    if (!s) {
        static const char fallback[] = "{\"success\":false,\"error\":{\"code\":\"INTERNAL_ERROR\","
                                       "\"message\":\"Out of memory\"}}";
        bgr_http_reply_bytes(resp, 500, "application/json", fallback, sizeof fallback - 1);
        resp->err = BGR_ENOMEM;
        return;
    }
    set_body(resp, status, "application/json", (uint8_t *)s, strlen(s));
}

void bgr_http_reply_data(struct bgr_http_resp *resp, int status, json_t *data)
{
    resp->err = 0;
    set_json(resp, status, json_pack("{s:b,s:o}", "success", 1, "data", data ? data : json_null()));
}

void bgr_http_reply_error(struct bgr_http_resp *resp, int err, const char *msg)
{
    if (err >= 0)
        err = BGR_EINTERNAL;
    resp->err = err;
    int status = bgr_err_http_status(err);
    /* Internal details never reach the client: 5xx messages are the
     * table's generic text; the detail goes to the log instead. */
    if (status >= 500 && status != 503 && msg && *msg) {
        bgr_log(BGR_LOG_ERROR, "internal error: %s", msg);
        msg = NULL;
    }
    json_t *e = json_pack("{s:s,s:s}", "code", bgr_err_code(err), "message",
                          msg && *msg ? msg : bgr_err_default_msg(err));
    set_json(resp, status, e ? json_pack("{s:b,s:o}", "success", 0, "error", e) : NULL);
}

void bgr_http_reply_bytes(struct bgr_http_resp *resp, int status, const char *content_type,
                          const void *data, size_t len)
{
    uint8_t *copy = NULL;
    if (len) {
        copy = malloc(len);
        if (!copy) {
            bgr_http_resp_release(resp);
            resp->status = 500;
            resp->err = BGR_ENOMEM;
            return;
        }
        memcpy(copy, data, len);
    }
    set_body(resp, status, content_type, copy, len);
}

void bgr_http_reply_buf(struct bgr_http_resp *resp, int status, const char *content_type,
                        struct bgr_buf *buf)
{
    size_t len = 0;
    uint8_t *d = bgr_buf_detach(buf, &len);
    set_body(resp, status, content_type, d, len);
}

void bgr_http_reply_fd(struct bgr_http_resp *resp, int status, const char *content_type, int fd,
                       uint64_t size)
{
    set_body(resp, status, content_type, NULL, 0);
    resp->fd = fd;
    resp->fd_size = size;
}
