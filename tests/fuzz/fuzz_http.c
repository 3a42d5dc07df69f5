/*
 * fuzz_http.c - the HTTP layer's parsers of client bytes (src/http):
 * multipart/form-data (boundary from Content-Type, then the body),
 * application/x-www-form-urlencoded and query strings, the JSON body
 * reader (depth check, duplicate keys), the route matcher on a request path
 * (the API's real routing table) and the X-Request-ID sanity check.
 *
 * Input: byte 0 picks the parser; for multipart the first line after it is
 * the Content-Type header and the rest the body. Byte 0 = 0xFF selects the
 * framing check instead: the rest is a raw header block ("Name: value"
 * lines, CRLF or LF), split here as a lenient server would, so that what a
 * lenient parser makes of hostile framing is what the check is given.
 */
#include <string.h>
#include <strings.h>

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
    const struct bgr_http_route *r = bgr_http_route_match(routes, nroutes, methods[size % 4], path,
                                                          &a, params, &np, &status, &allowed);
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

static bool ieq(const struct bgr_http_hfield *f, const char *name)
{
    return f->name_len == strlen(name) && strncasecmp(f->name, name, f->name_len) == 0;
}

static void framing(const uint8_t *data, size_t size)
{
    struct bgr_http_hfield f[64] = {{0}};
    size_t n = 0, pos = 0;
    bool http11 = size > 0 && (data[0] & 1);
    while (pos < size && n < BGR_ARRAY_LEN(f)) {
        const uint8_t *line = data + pos;
        const uint8_t *nl = memchr(line, '\n', size - pos);
        size_t len = nl ? (size_t)(nl - line) : size - pos;
        pos += len + (nl ? 1 : 0);
        if (len && line[len - 1] == '\r')
            len--;
        const uint8_t *colon = memchr(line, ':', len);
        if (!colon)
            continue;
        size_t vstart = (size_t)(colon - line) + 1;
        while (vstart < len && (line[vstart] == ' ' || line[vstart] == '\t'))
            vstart++;
        f[n++] = (struct bgr_http_hfield){(const char *)line, (size_t)(colon - line),
                                          (const char *)line + vstart, len - vstart};
    }
    const char *why = bgr_http_framing_check(f, n, http11);
    if (why) {
        fuzz_check(why[0] != '\0');
        return;
    }
    /* Accepted: the framing is unambiguous. */
    size_t ncl = 0, nte = 0, nhost = 0;
    for (size_t i = 0; i < n; i++) {
        fuzz_check(f[i].name_len > 0);
        for (size_t k = 0; k < f[i].name_len; k++)
            fuzz_check(f[i].name[k] != ' ' && f[i].name[k] != '\t' && f[i].name[k] != '\0');
        fuzz_check(memchr(f[i].value, '\0', f[i].value_len) == NULL);
        fuzz_check(memchr(f[i].value, '\r', f[i].value_len) == NULL);
        ncl += ieq(&f[i], "Content-Length");
        nte += ieq(&f[i], "Transfer-Encoding");
        nhost += ieq(&f[i], "Host");
    }
    fuzz_check(ncl <= 1 && nte <= 1 && !(ncl && nte));
    fuzz_check(http11 ? nhost == 1 : nhost <= 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    data++;
    size--;
    if (sel == 0xFF) {
        framing(data, size);
        return 0;
    }
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
