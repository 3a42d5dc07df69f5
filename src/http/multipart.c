/*
 * multipart.c - a multipart/form-data parser (RFC 7578 over RFC 2046) for a
 * body already in memory (read against the route's cap).
 *
 * The body is untrusted: the parser never reads past len, bounds the number
 * of parts and the size of each part's header block, requires a name on
 * every part, and points part data into the body instead of copying it.
 * What it does not do: nested multipart/mixed, Content-Transfer-Encoding
 * (deprecated for form-data by RFC 7578), RFC 2231 "filename*".
 */
#define _GNU_SOURCE
#include "http/http.h"

#include <string.h>
#include <strings.h>

#define MAX_NAME_LEN 200

static bool is_bchar(char c)
{
    /* RFC 2046 bcharsnospace plus space (not last). */
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           strchr("'()+_,-./:=? ", c) != NULL;
}

int bgr_http_multipart_boundary(struct bgr_arena *a, const char *content_type,
                                const char **boundary, struct bgr_error *err)
{
    const char *p = content_type;
    if (!p)
        return bgr_error_set(err, BGR_EINVALID_PARAMETER, "missing Content-Type");
    while ((p = strchr(p, ';')) != NULL) {
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncasecmp(p, "boundary=", 9) != 0)
            continue;
        p += 9;
        size_t n;
        if (*p == '"') {
            p++;
            const char *q = strchr(p, '"');
            if (!q)
                return bgr_error_set(err, BGR_EINVALID_PARAMETER, "unterminated boundary");
            n = (size_t)(q - p);
        } else {
            n = strcspn(p, "; \t");
        }
        if (n < 1 || n > 70 || p[n - 1] == ' ')
            return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                                 "multipart boundary must be 1 to 70 characters");
        for (size_t i = 0; i < n; i++)
            if (!is_bchar(p[i]))
                return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                                     "bad character in multipart boundary");
        *boundary = bgr_arena_strndup(a, p, n);
        return *boundary ? 0 : bgr_error_set(err, BGR_ENOMEM, "out of memory");
    }
    return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                         "multipart/form-data without a boundary parameter");
}

/* Reads one parameter value (quoted-string or token) of Content-Disposition
 * starting at *pp; advances *pp. Returns an arena string or NULL. */
static char *param_value(struct bgr_arena *a, const char **pp, const char *end)
{
    const char *p = *pp;
    if (p < end && *p == '"') {
        p++;
        char *out = bgr_arena_alloc(a, (size_t)(end - p) + 1);
        size_t j = 0;
        if (!out)
            return NULL;
        while (p < end && *p != '"') {
            if (*p == '\\' && p + 1 < end)
                p++;
            out[j++] = *p++;
        }
        if (p >= end)
            return NULL; /* unterminated */
        out[j] = '\0';
        *pp = p + 1;
        return out;
    }
    const char *s = p;
    while (p < end && *p != ';' && *p != ' ' && *p != '\t')
        p++;
    *pp = p;
    return bgr_arena_strndup(a, s, (size_t)(p - s));
}

static int parse_disposition(struct bgr_arena *a, const char *v, const char *end,
                             struct bgr_http_part *part, struct bgr_error *err)
{
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    if ((size_t)(end - v) < 9 || strncasecmp(v, "form-data", 9) != 0)
        return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                             "multipart part is not Content-Disposition: form-data");
    v += 9;
    while (v < end) {
        while (v < end && (*v == ';' || *v == ' ' || *v == '\t'))
            v++;
        const char *k = v;
        while (v < end && *v != '=' && *v != ';')
            v++;
        size_t klen = (size_t)(v - k);
        while (klen && (k[klen - 1] == ' ' || k[klen - 1] == '\t'))
            klen--;
        if (v >= end || *v != '=')
            continue; /* a parameter without value: ignore it */
        v++;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        char *val = param_value(a, &v, end);
        if (!val)
            return bgr_error_set(err, BGR_EINVALID_PARAMETER, "bad Content-Disposition parameter");
        if (klen == 4 && strncasecmp(k, "name", 4) == 0)
            part->name = val;
        else if (klen == 8 && strncasecmp(k, "filename", 8) == 0)
            part->filename = val;
    }
    if (!part->name || !*part->name || strlen(part->name) > MAX_NAME_LEN)
        return bgr_error_set(err, BGR_EINVALID_PARAMETER, "multipart part without a valid name");
    return 0;
}

/* Parses the header block [h, hend) of one part. */
static int parse_part_headers(struct bgr_arena *a, const char *h, const char *hend,
                              struct bgr_http_part *part, struct bgr_error *err)
{
    bool have_disp = false;
    while (h < hend) {
        const char *eol = memmem(h, (size_t)(hend - h), "\r\n", 2);
        if (!eol)
            eol = hend;
        const char *colon = memchr(h, ':', (size_t)(eol - h));
        if (!colon || colon == h)
            return bgr_error_set(err, BGR_EINVALID_PARAMETER, "malformed multipart part header");
        size_t nlen = (size_t)(colon - h);
        const char *v = colon + 1;
        while (v < eol && (*v == ' ' || *v == '\t'))
            v++;
        const char *vend = eol;
        while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t'))
            vend--;
        if (nlen == 19 && strncasecmp(h, "Content-Disposition", 19) == 0) {
            if (have_disp)
                return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                                     "multipart part with two Content-Disposition headers");
            int rc = parse_disposition(a, v, vend, part, err);
            if (rc)
                return rc;
            have_disp = true;
        } else if (nlen == 12 && strncasecmp(h, "Content-Type", 12) == 0) {
            part->content_type = bgr_arena_strndup(a, v, (size_t)(vend - v));
            if (!part->content_type)
                return bgr_error_set(err, BGR_ENOMEM, "out of memory");
        } /* other headers are ignored (RFC 7578 4.8) */
        h = eol + 2;
    }
    if (!have_disp)
        return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                             "multipart part without Content-Disposition");
    return 0;
}

/* After a delimiter: "--" ends the body; otherwise optional transport
 * padding and CRLF start the next part. Returns 1 = end, 0 = next part at
 * *pos, or an error. */
static int after_delimiter(const uint8_t *body, size_t len, size_t *pos, struct bgr_error *err)
{
    size_t p = *pos;
    if (p + 2 <= len && body[p] == '-' && body[p + 1] == '-')
        return 1;
    while (p < len && (body[p] == ' ' || body[p] == '\t'))
        p++;
    if (p + 2 > len || body[p] != '\r' || body[p + 1] != '\n')
        return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                             "malformed multipart body (no CRLF after a boundary)");
    *pos = p + 2;
    return 0;
}

int bgr_http_multipart_parse(struct bgr_arena *a, const char *boundary, const uint8_t *body,
                             size_t len, const struct bgr_multipart_limits *lim,
                             struct bgr_http_part **parts, size_t *nparts, struct bgr_error *err)
{
    size_t max_parts = lim && lim->max_parts ? lim->max_parts : 32;
    size_t max_hdr = lim && lim->max_header_bytes ? lim->max_header_bytes : 4096;
    size_t blen = strlen(boundary);
    /* delim = CRLF "--" boundary; the first one may lack the CRLF. */
    char *delim = bgr_arena_alloc(a, blen + 5);
    struct bgr_http_part *out = bgr_arena_alloc(a, max_parts * sizeof *out);
    if (!delim || !out)
        return bgr_error_set(err, BGR_ENOMEM, "out of memory");
    memcpy(delim, "\r\n--", 4);
    memcpy(delim + 4, boundary, blen + 1);
    size_t dlen = blen + 4;

    size_t pos;
    if (len >= dlen - 2 && memcmp(body, delim + 2, dlen - 2) == 0) {
        pos = dlen - 2;
    } else {
        const uint8_t *d = memmem(body, len, delim, dlen); /* after a preamble */
        if (!d)
            return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                                 "multipart body does not contain its boundary");
        pos = (size_t)(d - body) + dlen;
    }

    size_t n = 0;
    for (;;) {
        int rc = after_delimiter(body, len, &pos, err);
        if (rc < 0)
            return rc;
        if (rc == 1)
            break;
        if (n >= max_parts)
            return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                                 "too many multipart parts (at most %zu)", max_parts);
        struct bgr_http_part *part = &out[n];
        memset(part, 0, sizeof *part);
        const char *h = (const char *)body + pos;
        size_t hlen;
        if (pos + 2 <= len && body[pos] == '\r' && body[pos + 1] == '\n') {
            hlen = 0; /* no headers at all */
            pos += 2;
        } else {
            size_t window = len - pos < max_hdr + 4 ? len - pos : max_hdr + 4;
            const char *hend = memmem(h, window, "\r\n\r\n", 4);
            if (!hend)
                return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                                     "multipart part headers too long or unterminated");
            hlen = (size_t)(hend - h);
            pos += hlen + 4;
        }
        rc = parse_part_headers(a, h, h + hlen, part, err);
        if (rc)
            return rc;
        const uint8_t *d = memmem(body + pos, len - pos, delim, dlen);
        if (!d)
            return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                                 "multipart body ends without its closing boundary");
        part->data = body + pos;
        part->len = (size_t)(d - (body + pos));
        pos = (size_t)(d - body) + dlen;
        n++;
    }
    *parts = out;
    *nparts = n;
    return 0;
}
