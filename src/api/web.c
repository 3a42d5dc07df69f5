/*
 * web.c - the web page served by `bgremover serve` itself: GET / (try the
 * API, batch files, account and usage, stored results), GET /docs (the API
 * reference rendered from /v1/openapi.json) and GET /web/:file (their
 * scripts, styles and icon).
 *
 * The files are web/ of the repository, embedded at build time
 * (embed_dir.cmake): nothing is read from disk or fetched at run time, and
 * a request can only name one of the embedded files (looked up by exact
 * name in the table, never used as a path).
 *
 * The page is a client of the public API with the user's own key, so it
 * can do nothing the key could not; it needs no privilege here. What this
 * file adds is the browser-side hardening of every page response: a strict
 * Content-Security-Policy (scripts, styles and connections to this origin
 * only, no inline code; images also from blob:/data: URLs the page makes
 * from results; no framing), nosniff, no referrer. Caching: a strong ETag
 * (the file's SHA-256) with "no-cache", so a browser revalidates and gets a
 * new page as soon as the binary changes.
 *
 * `--no-web` (config key `web`) leaves these routes out of the table
 * altogether (bgr_api_routes_for), so an API-only server answers them as
 * any unknown path.
 */
#include "api/api_int.h"

#include <stdio.h>
#include <string.h>

#define CSP                                                                                        \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "        \
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "                 \
    "frame-ancestors 'none'"

/* The security headers of every page response (and of its 304s and 404s). */
static void security_headers(struct bgr_http_resp *resp)
{
    _Static_assert(sizeof CSP <= sizeof resp->headers[0].value, "CSP fits a header slot");
    bgr_http_resp_header(resp, "Content-Security-Policy", CSP);
    bgr_http_resp_header(resp, "X-Content-Type-Options", "nosniff");
    bgr_http_resp_header(resp, "Referrer-Policy", "no-referrer");
    bgr_http_resp_header(resp, "X-Frame-Options", "DENY");
}

static const char *mime_of(const char *name)
{
    static const struct {
        const char *ext, *mime;
    } tab[] = {{".html", "text/html; charset=utf-8"},
               {".mjs", "text/javascript; charset=utf-8"},
               {".css", "text/css; charset=utf-8"},
               {".svg", "image/svg+xml"}};
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < BGR_ARRAY_LEN(tab); i++)
        if (strcmp(dot, tab[i].ext) == 0)
            return tab[i].mime;
    return "application/octet-stream";
}

const struct api_web_file *api_web_find(const char *name)
{
    for (size_t i = 0; name && i < api_web_nfiles; i++)
        if (strcmp(api_web_files[i].name, name) == 0)
            return &api_web_files[i];
    return NULL;
}

static void serve(struct bgr_http_req *req, struct bgr_http_resp *resp, const char *name)
{
    const struct api_web_file *f = api_web_find(name);
    char etag[72];
    if (!f) {
        bgr_http_reply_error(resp, BGR_ENOT_FOUND, "No such file");
        security_headers(resp);
        return;
    }
    (void)snprintf(etag, sizeof etag, "\"%.64s\"", f->sha256);
    const char *inm = bgr_http_req_header(req, "If-None-Match");
    if (inm && strcmp(inm, etag) == 0)
        bgr_http_reply_bytes(resp, 304, NULL, NULL, 0);
    else
        bgr_http_reply_bytes(resp, 200, mime_of(f->name), f->data, f->len);
    bgr_http_resp_header(resp, "ETag", etag);
    bgr_http_resp_header(resp, "Cache-Control", "no-cache");
    security_headers(resp);
}

void api_web_index(void *app, struct bgr_http_req *req, struct bgr_http_resp *resp)
{
    (void)app;
    serve(req, resp, "index.html");
}

void api_web_docs(void *app, struct bgr_http_req *req, struct bgr_http_resp *resp)
{
    (void)app;
    serve(req, resp, "docs.html");
}

void api_web_asset(void *app, struct bgr_http_req *req, struct bgr_http_resp *resp)
{
    (void)app;
    serve(req, resp, req->params[0]);
}
