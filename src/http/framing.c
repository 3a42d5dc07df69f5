/*
 * framing.c - strict HTTP/1.1 message framing (RFC 9112), checked on the
 * header fields of a request before it is routed.
 *
 * Why: when a proxy in front of us and libmicrohttpd disagree on where a
 * request ends, the rest of one request is read as another (request
 * smuggling). libmicrohttpd 0.9.75 (Debian 12) tolerates what RFC 9112 says
 * a server must reject or may reject: two Content-Length fields (it takes
 * one of them), Content-Length with Transfer-Encoding, a field name with
 * whitespace before the colon (kept as part of the name, so
 * "Transfer-Encoding : chunked" is not framing to MHD but may be to a
 * proxy), a NUL byte inside a value (the C string stops there), obs-fold
 * continuation lines, bare LF line ends, and a missing or repeated Host. It
 * offers no option to refuse them all. Two checks run on every request
 * before it is routed, and the server answers 400 with "Connection: close"
 * when either fails:
 * - bgr_http_framing_check on the fields MHD parsed (counts, names, values);
 * - bgr_http_framing_inplace_check on the header block MHD parsed in place,
 *   which proves that the fields are all the block held: MHD hides a NUL
 *   inside a value, a folded line and a bare LF from its API, but not from
 *   the layout of its buffer (see http.h).
 *
 * What is checked is only what decides framing or routing; other fields
 * are the handlers' business. Pure functions, no state: fuzzed in
 * tests/fuzz/fuzz_http.c.
 */
#include "http/http.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

/* RFC 9110 tchar: the characters of a token (a field name). */
static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool name_is(const struct bgr_http_hfield *f, const char *name)
{
    size_t n = strlen(name);
    return f->name_len == n && strncasecmp(f->name, name, n) == 0;
}

static bool all_digits(const char *s, size_t n)
{
    if (n == 0 || n > 19) /* 19 digits: below UINT64_MAX, no overflow to check later */
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

const char *bgr_http_framing_check(const struct bgr_http_hfield *f, size_t n, bool http11)
{
    size_t ncl = 0, nte = 0, nhost = 0;
    const struct bgr_http_hfield *te = NULL;
    for (size_t i = 0; i < n; i++) {
        if (f[i].name_len == 0)
            return "a header field has an empty name";
        for (size_t k = 0; k < f[i].name_len; k++)
            if (!is_tchar((unsigned char)f[i].name[k]))
                return "a header field name holds whitespace or a control character";
        for (size_t k = 0; k < f[i].value_len; k++) {
            unsigned char c = (unsigned char)f[i].value[k];
            if (c == '\0' || c == '\r' || c == '\n')
                return "a header field value holds NUL, CR or LF";
        }
        if (name_is(&f[i], "Content-Length")) {
            ncl++;
            if (!all_digits(f[i].value, f[i].value_len))
                return "Content-Length is not a single decimal number";
        } else if (name_is(&f[i], "Transfer-Encoding")) {
            nte++;
            te = &f[i];
        } else if (name_is(&f[i], "Host")) {
            nhost++;
        }
    }
    if (ncl > 1)
        return "more than one Content-Length";
    if (nte && ncl)
        return "both Content-Length and Transfer-Encoding";
    if (nte > 1)
        return "more than one Transfer-Encoding";
    if (te && (!http11 || te->value_len != 7 || strncasecmp(te->value, "chunked", 7) != 0))
        return "Transfer-Encoding other than a single \"chunked\" on HTTP/1.1";
    if (http11 && nhost != 1)
        return nhost ? "more than one Host" : "no Host header";
    if (nhost > 1)
        return "more than one Host";
    return NULL;
}

/* ---- the header block as libmicrohttpd 0.9.75 left it ---------------------- */

/* p in [lo, hi), compared as addresses: a relocated field name lies in
 * another part of MHD's memory pool, and C only orders pointers into one
 * object. */
static bool inside(const char *p, const char *lo, const char *hi)
{
    return (uintptr_t)p >= (uintptr_t)lo && (uintptr_t)p < (uintptr_t)hi;
}

const char *bgr_http_framing_inplace_check(const char *block, size_t block_len, const char *version,
                                           const struct bgr_http_hfield *f, size_t n)
{
    const char *end = block + block_len, *p;
    if (!version || !inside(version, block, end))
        return "the request line is malformed";
    p = version + strnlen(version, (size_t)(end - version));
    /* the request line's CR LF, both zeroed */
    if (end - p < 2 || p[0] || p[1])
        return "a line ends in a bare LF (CRLF is required)";
    p += 2;
    for (size_t i = 0; i < n; i++) {
        const char *k = f[i].name, *v = f[i].value, *colon;
        if (!inside(k, block, end))
            return "a header field is folded onto the next line (obs-fold)";
        if (k != p)
            return "a header field value holds a NUL byte";
        if (f[i].name_len >= (size_t)(end - k))
            return "the header block is malformed";
        colon = k + f[i].name_len;
        if (*colon || !inside(v, colon + 1, end - 1) || (size_t)(end - v) - 2 < f[i].value_len)
            return "the header block is malformed";
        for (const char *q = colon + 1; q < v; q++)
            if (*q != ' ' && *q != '\t')
                return "the header block is malformed";
        /* v[value_len] ends the C string: the line's CR, or a NUL the
         * client sent; v[value_len + 1] is the LF, or what followed */
        if (v[f[i].value_len + 1])
            return "a header field value holds a NUL byte, or a line ends in a bare LF";
        p = v + f[i].value_len + 2;
    }
    if (end - p != 2 || p[0] || p[1])
        return "the header block does not end in an empty line of CRLF";
    return NULL;
}
