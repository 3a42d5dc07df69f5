/*
 * fuzz_http.c - the HTTP layer's parsers of client bytes (src/http):
 * multipart/form-data (boundary from Content-Type, then the body),
 * application/x-www-form-urlencoded and query strings, the JSON body
 * reader (depth check, duplicate keys), the route matcher on a request path
 * (the API's real routing table) and the X-Request-ID sanity check.
 *
 * Input: byte 0 picks the parser; for multipart the first line after it is
 * the Content-Type header and the rest the body.
 */
#include <string.h>

#include "api/api.h"
#include "fuzz.h"
#include "http/http.h"

static void check_err(int rc, const struct bgr_error *e)
{
    fuzz_check(rc < 0);
    fuzz_check(e->code == (enum bgr_err)rc);
    fuzz_check(memchr(e->msg, '\0', sizeof e->msg) != NULL);
}

static void multipart(const uint8_t *data, size_t size, bool tight)
{
    char *ct = NULL;
    const uint8_t *body;
    size_t len;
    struct bgr_arena a;
    struct bgr_error e = {0};
    bgr_arena_init(&a, 1u << 20);
    if (fuzz_split_line(data, size, &ct, &body, &len) != 0)
        goto done;
    const char *boundary;
    int rc = bgr_http_multipart_boundary(&a, ct, &boundary, &e);
    if (rc) {
        check_err(rc, &e);
        goto done;
    }
    size_t bl = strlen(boundary);
    fuzz_check(bl >= 1 && bl <= 70);
    struct bgr_multipart_limits lim = {tight ? 3 : 0, tight ? 64 : 0};
    struct bgr_http_part *parts;
    size_t n;
    rc = bgr_http_multipart_parse(&a, boundary, body, len, &lim, &parts, &n, &e);
    if (rc) {
        check_err(rc, &e);
        goto done;
    }
    fuzz_check(n <= (tight ? 3u : 32u));
    for (size_t i = 0; i < n; i++) {
        fuzz_check(parts[i].name != NULL);
        fuzz_check(parts[i].data >= body && parts[i].len <= len);
        fuzz_check((size_t)(parts[i].data - body) <= len - parts[i].len);
        if (tight)
            fuzz_check(strlen(parts[i].name) <= 64);
    }
done:
    bgr_arena_release(&a);
    free(ct);
}

static void urlencoded(const uint8_t *data, size_t size, size_t max_fields)
{
    struct bgr_arena a;
    struct bgr_error e = {0};
    struct bgr_http_field *f;
    size_t n;
    bgr_arena_init(&a, 1u << 20);
    int rc = bgr_http_urlencoded_parse(&a, (const char *)data, size, max_fields, &f, &n, &e);
    if (rc) {
        check_err(rc, &e);
    } else {
        fuzz_check(n <= max_fields);
        for (size_t i = 0; i < n; i++) {
            fuzz_check(f[i].name && f[i].value);
            fuzz_check(f[i].value[f[i].len] == '\0');
            fuzz_check(f[i].len <= size);
        }
    }
    bgr_arena_release(&a);
}

static void json_body(const uint8_t *data, size_t size)
{
    struct bgr_error e = {0};
    json_t *j = NULL;
    int rc = bgr_http_json_parse(data, size, 8, &j, &e);
    if (rc) {
        check_err(rc, &e);
        fuzz_check(j == NULL);
    } else {
        fuzz_check(j != NULL);
    }
    json_decref(j);
}

static void route(const uint8_t *data, size_t size)
{
    char *path = fuzz_strndup(data, size);
    struct bgr_arena a;
    bgr_arena_init(&a, 1u << 20);
    if (!path)
        goto done;
    size_t nroutes;
    const struct bgr_http_route *routes = bgr_api_routes(&nroutes);
    static const enum bgr_http_method methods[] = {BGR_HTTP_GET, BGR_HTTP_POST, BGR_HTTP_DELETE,
                                                   BGR_HTTP_OTHER};
    const char *params[BGR_HTTP_MAX_PARAMS];
    int np = 0, status = 0;
    unsigned allowed = 0;
    const struct bgr_http_route *r =
        bgr_http_route_match(routes, nroutes, methods[size % 4], path, &a, params, &np, &status,
                             &allowed);
    if (r) {
        fuzz_check(np >= 0 && np <= BGR_HTTP_MAX_PARAMS);
        for (int i = 0; i < np; i++) {
            /* A captured segment is one whole non-empty segment. */
            fuzz_check(params[i] && params[i][0] != '\0');
            fuzz_check(strchr(params[i], '/') == NULL);
        }
    } else {
        fuzz_check(status == 404 || status == 405);
    }
    if (bgr_http_request_id_sane(path)) {
        size_t n = strlen(path);
        fuzz_check(n >= 1 && n <= 64);
        for (size_t i = 0; i < n; i++)
            fuzz_check(strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
                              path[i]) != NULL);
    }
    (void)bgr_http_method_parse(path);
done:
    bgr_arena_release(&a);
    free(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    data++;
    size--;
    switch (sel % 6) {
    case 0:
        multipart(data, size, false);
        break;
    case 1:
        multipart(data, size, true);
        break;
    case 2:
        urlencoded(data, size, 32);
        break;
    case 3:
        urlencoded(data, size, 2);
        break;
    case 4:
        json_body(data, size);
        break;
    default:
        route(data, size);
        break;
    }
    return 0;
}
