/*
 * idem.c - the Idempotency-Key header on POST /v1/remove, POST
 * /v1/remove/batch and POST /v1.0/removebg.
 *
 * A client that did not hear an answer (a timeout, a load balancer that
 * retried) sends the same request again with the same key. The first
 * success is remembered for 24 hours and replayed as it was (status,
 * headers, body, with "Idempotent-Replayed: true"): no second job runs and
 * nothing more is charged. The same key with a different request is 409
 * IDEMPOTENCY_KEY_REUSED; a retry while the first is still running is 409
 * IDEMPOTENCY_KEY_IN_PROGRESS with Retry-After (not a wait: the first may
 * run for a minute, and a held connection helps nobody). A request that
 * failed is forgotten, so its retry runs (a 429 or 503 is worth retrying,
 * and failures are never charged).
 *
 * The rules of the key live in the store (store.h, one transaction), so
 * they hold across processes sharing a database; this file fingerprints
 * requests and moves answers in and out of responses.
 */
#include "api/api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IDEM_KEY_MAX 255
/* A claim older than this belongs to a request that died with its
 * process: far above any request's run (queue wait and four model runs). */
#define IDEM_LEASE_MS (10LL * 60 * 1000)
#define IDEM_HEADER "Idempotency-Key"

static bool key_ok(const char *k)
{
    size_t n = 0;
    for (; k[n]; n++)
        if ((unsigned char)k[n] < 0x21 || (unsigned char)k[n] > 0x7e || n >= IDEM_KEY_MAX)
            return false;
    return n > 0;
}

/* The body's hash, the same for the same form whatever boundary the client
 * drew: a retry rebuilds a multipart body with a new random boundary
 * (curl, requests, browsers), so such bodies are hashed part by part (name,
 * file name, type, bytes). Anything else, or a multipart body that does not
 * parse (its request fails and gives the key back), by its bytes. */
static void body_hash(struct bgr_http_req *req, uint8_t out[32])
{
    const char *boundary = NULL;
    struct bgr_http_part *parts = NULL;
    struct bgr_error e = {0};
    size_t n = 0;
    const uint8_t *body = req->body.data ? req->body.data : (const uint8_t *)"";
    if (strcmp(bgr_http_req_mime(req), "multipart/form-data") == 0 &&
        bgr_http_multipart_boundary(&req->arena, bgr_http_req_header(req, "Content-Type"),
                                    &boundary, &e) == 0 &&
        bgr_http_multipart_parse(&req->arena, boundary, body, req->body.len, NULL, &parts, &n,
                                 &e) == 0) {
        struct bgr_buf b;
        bgr_buf_init(&b, 1024 * 1024);
        for (size_t i = 0; i < n; i++) {
            uint8_t h[32];
            char meta[400];
            int m = snprintf(meta, sizeof meta, "%.120s%c%.120s%c%.120s%c", parts[i].name, 0,
                             parts[i].filename ? parts[i].filename : "", 0,
                             parts[i].content_type ? parts[i].content_type : "", 0);
            bgr_sha256(parts[i].data, parts[i].len, h);
            (void)bgr_buf_append(&b, meta, (size_t)m, NULL);
            (void)bgr_buf_append(&b, h, sizeof h, NULL);
        }
        bgr_sha256(b.data ? (const void *)b.data : "", b.len, out);
        bgr_buf_release(&b);
        return;
    }
    bgr_sha256(body, req->body.len, out);
}

/* SHA-256 over what makes two requests the same: the route, the body's
 * media type, the answer's form asked for (remove.bg's Accept), and the
 * body (by its hash, so the body is not copied). */
static void fingerprint(struct bgr_http_req *req, uint8_t out[32])
{
    char head[512];
    uint8_t body_hash_[32];
    const char *accept = bgr_http_req_header(req, "Accept");
    body_hash(req, body_hash_);
    int n = snprintf(head, sizeof head, "%s %s\n%.200s\n%.200s\n", req->method_str,
                     req->route->pattern, bgr_http_req_mime(req), accept ? accept : "");
    if (n < 0 || (size_t)n >= sizeof head - sizeof body_hash_)
        n = (int)(sizeof head - sizeof body_hash_ - 1);
    memcpy(head + n, body_hash_, sizeof body_hash_);
    bgr_sha256(head, (size_t)n + sizeof body_hash_, out);
}

static void reply_err(struct bgr_http_req *req, struct bgr_http_resp *resp, int err,
                      const char *msg)
{
    if (req->route->flags & API_ROUTE_REMOVEBG) {
        struct bgr_error e = {0};
        (void)snprintf(e.msg, sizeof e.msg, "%s", msg);
        api_removebg_reply_err(resp, err, &e);
    } else {
        bgr_http_reply_error(resp, err, msg);
    }
}

/* Puts a remembered answer into resp as it was first sent. */
static void replay(struct bgr_http_resp *resp, const struct bgr_idem_response *r)
{
    bgr_http_reply_bytes(resp, r->status, r->content_type, r->body, r->len);
    for (const char *line = r->headers; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        const char *colon = memchr(line, ':', len);
        if (colon && (size_t)(colon - line) < sizeof resp->headers[0].name) {
            char name[sizeof resp->headers[0].name], value[sizeof resp->headers[0].value];
            size_t vlen = len - (size_t)(colon - line) - 1;
            (void)snprintf(name, sizeof name, "%.*s", (int)(colon - line), line);
            if (vlen && colon[1] == ' ') {
                colon++;
                vlen--;
            }
            (void)snprintf(value, sizeof value, "%.*s", (int)vlen, colon + 1);
            (void)bgr_http_resp_header(resp, name, value);
        }
        line = nl ? nl + 1 : NULL;
    }
    (void)bgr_http_resp_header(resp, "Idempotent-Replayed", "true");
}

bool api_idem_begin(struct bgr_api *api, struct bgr_http_req *req, struct bgr_http_resp *resp)
{
    struct api_ctx *ctx = api_ctx_of(req);
    const char *key = bgr_http_req_header(req, IDEM_HEADER);
    struct bgr_idem_response r = {0};
    struct bgr_error e = {0};
    enum bgr_idem_state state;
    uint8_t fp[32];

    if (!key)
        return true;
    if (!key_ok(key)) {
        reply_err(req, resp, BGR_EINVALID_PARAMETER,
                  "Invalid Idempotency-Key: expected 1 to 255 visible ASCII characters "
                  "(a UUID, say)");
        return false;
    }
    fingerprint(req, fp);
    int rc = bgr_store_idem_claim(api->store, ctx->acct.id, key, fp, bgr_wall_ms(), IDEM_LEASE_MS,
                                  &state, &r, &e);
    if (rc) {
        reply_err(req, resp, rc, e.msg);
        return false;
    }
    switch (state) {
    case BGR_IDEM_NEW:
        ctx->idem_key = bgr_arena_strdup(&req->arena, key);
        if (!ctx->idem_key) { /* cannot remember it: give the key back, answer 500 */
            (void)bgr_store_idem_release(api->store, ctx->acct.id, key, &e);
            reply_err(req, resp, BGR_ENOMEM, "out of memory");
            return false;
        }
        return true;
    case BGR_IDEM_REPLAY:
        replay(resp, &r);
        bgr_idem_response_release(&r);
        return false;
    case BGR_IDEM_REUSED:
        reply_err(req, resp, BGR_EIDEMPOTENCY_KEY_REUSED,
                  "This Idempotency-Key was used within the last 24 hours for a different "
                  "request: use a new key for a new request");
        return false;
    case BGR_IDEM_IN_PROGRESS:
        reply_err(req, resp, BGR_EIDEMPOTENCY_KEY_IN_PROGRESS,
                  "A request with this Idempotency-Key is still running: retry after a "
                  "moment to get its answer");
        (void)bgr_http_resp_header(resp, "Retry-After", "1");
        return false;
    }
    return true;
}

void api_idem_end(struct bgr_api *api, struct bgr_http_req *req, const struct bgr_http_resp *resp)
{
    struct api_ctx *ctx = api_ctx_of(req);
    struct bgr_error e = {0};
    if (!ctx || !ctx->idem_key)
        return;
    int rc;
    if (resp->status >= 200 && resp->status < 300 && resp->fd < 0) {
        /* the handler's headers (the rate-limit ones are added later, and
         * are the retry's own) */
        struct bgr_buf h;
        bgr_buf_init(&h, 64 * 1024);
        for (int i = 0; i < resp->nheaders; i++) {
            char line[sizeof resp->headers[0].name + sizeof resp->headers[0].value + 4];
            int n = snprintf(line, sizeof line, "%s: %s\n", resp->headers[i].name,
                             resp->headers[i].value);
            (void)bgr_buf_append(&h, line, (size_t)n, NULL);
        }
        (void)bgr_buf_append(&h, "", 1, NULL);
        struct bgr_idem_response r = {.status = resp->status,
                                      .headers = (char *)h.data,
                                      .body = resp->body,
                                      .len = resp->len};
        (void)snprintf(r.content_type, sizeof r.content_type, "%s", resp->content_type);
        rc =
            bgr_store_idem_complete(api->store, ctx->acct.id, ctx->idem_key, bgr_wall_ms(), &r, &e);
        bgr_buf_release(&h);
    } else {
        rc = bgr_store_idem_release(api->store, ctx->acct.id, ctx->idem_key, &e);
    }
    /* The answer itself is right; a retry would then run again (release)
     * or wait out the lease (complete): logged, not sent. */
    if (rc)
        bgr_log(BGR_LOG_ERROR, "idempotency key (rid=%s): %s", req->request_id, e.msg);
    ctx->idem_key = NULL;
}
