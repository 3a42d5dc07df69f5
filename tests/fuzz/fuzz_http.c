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
 * Byte 0 = 0xFE: a raw request head for the in-place check, parsed by a
 * model of libmicrohttpd 0.9.75's header parser; the check must accept
 * exactly the strictly framed heads (a differential test against an
 * independent RFC 9112 reader).
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

/* ---- the in-place check against a model of libmicrohttpd 0.9.75 ---------- */

/* One line of MHD's read buffer, as its get_next_header_line finds it: up
 * to CR LF or a bare LF (a CR alone is not a line end), the terminator
 * zeroed in place. Returns the line, or NULL when no terminator is left. */
static char *mhd_line(char *buf, size_t len, size_t *pos)
{
    for (size_t i = *pos; i < len; i++) {
        if (buf[i] == '\r' && i + 1 < len && buf[i + 1] == '\n') {
            char *line = buf + *pos;
            buf[i] = buf[i + 1] = '\0';
            *pos = i + 2;
            return line;
        }
        if (buf[i] == '\n') {
            char *line = buf + *pos;
            buf[i] = '\0';
            *pos = i + 1;
            return line;
        }
    }
    return NULL;
}

static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Independently of framing.c: is raw[0..len) a request line ending in
 * CR LF, then field lines ending in CR LF, then an empty CR LF line (then
 * anything)? rfc: as RFC 9112 wants (names are tokens, values hold no CR);
 * else only what the in-place check promises: no NUL in a field line, no
 * bare LF, no line after the first field starting with SP or HTAB. */
static bool framed(const uint8_t *raw, size_t len, bool rfc)
{
    size_t i = 0;
    bool first = true;
    while (i + 1 < len && !(raw[i] == '\r' && raw[i + 1] == '\n')) {
        if (raw[i] == '\n' || raw[i] == '\0')
            return false;
        i++;
    }
    if (i + 1 >= len)
        return false;
    for (i += 2;; first = false) {
        if (i + 1 < len && raw[i] == '\r' && raw[i + 1] == '\n')
            return true; /* the empty line */
        size_t name = i;
        if (!first && i < len && (raw[i] == ' ' || raw[i] == '\t'))
            return false;
        for (; i < len && raw[i] != ':'; i++)
            if (raw[i] == '\0' || raw[i] == '\n' || (rfc && !is_tchar(raw[i])))
                return false;
        if (i >= len || (rfc && i == name))
            return false;
        for (i++; i + 1 < len && !(raw[i] == '\r' && raw[i + 1] == '\n'); i++)
            if (raw[i] == '\0' || raw[i] == '\n' || (rfc && raw[i] == '\r'))
                return false;
        if (i + 1 >= len)
            return false;
        i += 2;
    }
}

/* data: a raw request head (and maybe more). It is parsed as MHD 0.9.75
 * does, in place in a copy (a folded field's name is moved to the second
 * half of the buffer, as MHD's pool moves it out of the read buffer), the
 * in-place check is run on what that leaves, and it must accept exactly the
 * heads framed() accepts; with the field check it must accept only heads
 * framed as the RFC wants. Skipped: heads MHD refuses itself (no request
 * line, a line without a colon), and a NUL byte in one run of line-end
 * bytes with a bare LF, which reads as CR LFs once MHD has zeroed the line
 * ends (see http.h). */
static void inplace(const uint8_t *data, size_t size)
{
    struct bgr_http_hfield f[64];
    size_t n = 0, pos = 0, moved = size;
    char *buf = malloc(2 * size + 2), *line, *last = NULL, *colon = NULL, *version;
    if (!buf)
        return;
    memcpy(buf, data, size);
    line = mhd_line(buf, size, &pos);
    if (!line || !line[0])
        goto out;
    /* the version: the last word of the request line (MHD steps back over
     * trailing spaces, then over the word) */
    version = line + strlen(line);
    while (version > line && version[-1] == ' ')
        version--;
    while (version > line && version[-1] != ' ')
        version--;
    if (version == line || !strchr(line, ' ') || memchr(data, '\0', (size_t)(version - buf)))
        goto out; /* no version, or a NUL before it: MHD's request-line parser decides */
    for (size_t i = 0; i < size;) { /* runs of NUL, CR and LF */
        bool nul = false, bare_lf = false;
        size_t j = i;
        for (; j < size && (data[j] == '\0' || data[j] == '\r' || data[j] == '\n'); j++) {
            nul |= data[j] == '\0';
            bare_lf |= data[j] == '\n' && (j == 0 || data[j - 1] != '\r');
        }
        if (nul && bare_lf)
            goto out;
        i = j > i ? j : i + 1;
    }
    for (;;) {
        if (!(line = mhd_line(buf, size, &pos)))
            goto out; /* the head is incomplete: MHD waits for more */
        if (last && (line[0] == ' ' || line[0] == '\t')) {
            /* obs-fold: MHD appends the continuation to the name, in a copy */
            char *tmp = line;
            while (*tmp == ' ' || *tmp == '\t')
                tmp++;
            size_t ll = strlen(last), tl = strlen(tmp);
            if (moved + ll + tl + 1 > 2 * size + 2)
                goto out;
            memcpy(buf + moved, last, ll);
            memcpy(buf + moved + ll, tmp, tl + 1);
            last = buf + moved;
            moved += ll + tl + 1;
            continue;
        }
        if (last) {
            if (n == BGR_ARRAY_LEN(f))
                goto out;
            f[n++] = (struct bgr_http_hfield){last, strlen(last), colon, strlen(colon)};
            last = NULL;
        }
        if (!line[0])
            break;
        if (!(colon = strchr(line, ':')))
            goto out; /* MHD answers 400 itself */
        *colon++ = '\0';
        while (*colon == ' ' || *colon == '\t')
            colon++;
        last = line;
    }
    const char *why = bgr_http_framing_inplace_check(buf, pos, version, f, n);
    fuzz_check(why == NULL || why[0] != '\0');
    fuzz_check((why == NULL) == framed(data, size, false));
    if (!why && !bgr_http_framing_check(f, n, false))
        fuzz_check(framed(data, size, true));
out:
    free(buf);
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
    if (sel == 0xFE) {
        inplace(data, size);
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
