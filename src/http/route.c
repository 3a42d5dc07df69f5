/*
 * route.c - matching a method and path against the routing table (plain
 * data in src/api), and the request-id rules.
 *
 * Patterns are compared segment by segment; ":name" captures one whole,
 * non-empty segment. No regexes, no prefix matching: a path either names a
 * route exactly or is 404. Captured values are the raw segments; handlers
 * validate them strictly (ids are checked against their own alphabets).
 */
#include "http/http.h"

#include <string.h>
#include <strings.h>

enum bgr_http_method bgr_http_method_parse(const char *s)
{
    static const struct {
        const char *name;
        enum bgr_http_method m;
    } tab[] = {{"GET", BGR_HTTP_GET},        {"HEAD", BGR_HTTP_HEAD},     {"POST", BGR_HTTP_POST},
               {"PUT", BGR_HTTP_PUT},        {"DELETE", BGR_HTTP_DELETE}, {"PATCH", BGR_HTTP_PATCH},
               {"OPTIONS", BGR_HTTP_OPTIONS}};
    for (size_t i = 0; s && i < BGR_ARRAY_LEN(tab); i++)
        if (strcmp(s, tab[i].name) == 0) /* methods are case-sensitive (RFC 9110) */
            return tab[i].m;
    return BGR_HTTP_OTHER;
}

/* Matches one pattern; on success fills params (pointing into the arena). */
static bool pattern_match(const char *pat, const char *path, struct bgr_arena *arena,
                          const char **params, int *nparams)
{
    int n = 0;
    while (*pat && *path) {
        if (*pat != '/' || *path != '/')
            return false;
        pat++;
        path++;
        size_t plen = strcspn(pat, "/"), slen = strcspn(path, "/");
        if (*pat == ':') {
            if (slen == 0 || n >= BGR_HTTP_MAX_PARAMS)
                return false;
            if (arena) {
                params[n] = bgr_arena_strndup(arena, path, slen);
                if (!params[n])
                    return false;
            }
            n++;
        } else if (plen != slen || memcmp(pat, path, plen) != 0) {
            return false;
        }
        pat += plen;
        path += slen;
    }
    if (*pat || *path)
        return false;
    *nparams = n;
    return true;
}

const struct bgr_http_route *bgr_http_route_match(const struct bgr_http_route *routes,
                                                  size_t nroutes, enum bgr_http_method method,
                                                  const char *path, struct bgr_arena *arena,
                                                  const char **params, int *nparams, int *status,
                                                  unsigned *allowed)
{
    unsigned allow = 0;
    const char *scratch[BGR_HTTP_MAX_PARAMS];
    int nscratch = 0;
    for (size_t i = 0; i < nroutes; i++) {
        if (!pattern_match(routes[i].pattern, path, NULL, scratch, &nscratch))
            continue;
        if (routes[i].methods & (unsigned)method) {
            if (!pattern_match(routes[i].pattern, path, arena, params, nparams)) {
                *status = 500;
                return NULL;
            }
            return &routes[i];
        }
        allow |= routes[i].methods;
    }
    *status = allow ? 405 : 404;
    if (allowed)
        *allowed = allow;
    *nparams = 0;
    return NULL;
}

bool bgr_http_request_id_sane(const char *s)
{
    size_t n = 0;
    if (!s)
        return false;
    for (; s[n]; n++) {
        char c = s[n];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok || n >= BGR_HTTP_REQUEST_ID_MAX)
            return false;
    }
    return n > 0;
}

void bgr_http_request_id_new(char out[BGR_HTTP_REQUEST_ID_MAX + 1])
{
    uint8_t rnd[12];
    bgr_random_bytes(rnd, sizeof rnd);
    memcpy(out, "req_", 4);
    bgr_hex_encode(rnd, sizeof rnd, out + 4);
}
