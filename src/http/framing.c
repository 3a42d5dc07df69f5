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
 * continuation lines, and a missing or repeated Host. It offers no option
 * to refuse them all, so the server hands every field it parsed, with its
 * exact length, to bgr_http_framing_check and answers 400 with
 * "Connection: close" when the check fails.
 *
 * What is checked is only what decides framing or routing; other fields
 * are the handlers' business. Pure function, no state: fuzzed in
 * tests/fuzz/fuzz_http.c.
 */
#include "http/http.h"

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
