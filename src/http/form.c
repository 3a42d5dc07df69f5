/*
 * form.c - application/x-www-form-urlencoded bodies (and query strings) and
 * JSON bodies. Both parse untrusted bytes: every size is bounded by the
 * caller's body cap, the field count and nesting depth by explicit limits.
 */
#include "http/http.h"

#include <string.h>

/* Decodes s[0..n) into a new arena string; *outlen excludes the NUL. */
static int url_decode(struct bgr_arena *a, const char *s, size_t n, char **out, size_t *outlen,
                      struct bgr_error *err)
{
    char *d = bgr_arena_alloc(a, n + 1);
    size_t j = 0;
    if (!d)
        return bgr_error_set(err, BGR_ENOMEM, "form too large to decode");
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            d[j++] = ' ';
        } else if (s[i] == '%') {
            int hi = i + 2 < n ? bgr_hex_digit(s[i + 1]) : -1;
            int lo = i + 2 < n ? bgr_hex_digit(s[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return bgr_error_set(err, BGR_EINVALID_PARAMETER, "bad %%-escape in form data");
            d[j++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            d[j++] = s[i];
        }
    }
    d[j] = '\0';
    *out = d;
    *outlen = j;
    return 0;
}

int bgr_http_urlencoded_parse(struct bgr_arena *a, const char *s, size_t len, size_t max_fields,
                              struct bgr_http_field **out, size_t *nout, struct bgr_error *err)
{
    size_t count = 0, cap = 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '&')
            cap++;
    cap++;
    if (cap > max_fields && max_fields)
        cap = max_fields + 1;
    struct bgr_http_field *f = bgr_arena_alloc(a, cap * sizeof *f);
    if (!f)
        return bgr_error_set(err, BGR_ENOMEM, "form too large");
    size_t pos = 0;
    while (pos < len) {
        size_t end = pos;
        while (end < len && s[end] != '&')
            end++;
        if (end > pos) { /* empty pairs ("a=1&&b=2") are skipped */
            if (max_fields && count >= max_fields)
                return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                                     "too many form fields (at most %zu)", max_fields);
            size_t eq = pos;
            while (eq < end && s[eq] != '=')
                eq++;
            char *name, *value;
            size_t nlen, vlen;
            int rc = url_decode(a, s + pos, eq - pos, &name, &nlen, err);
            if (!rc)
                rc = url_decode(a, s + (eq < end ? eq + 1 : end), eq < end ? end - eq - 1 : 0,
                                &value, &vlen, err);
            if (rc)
                return rc;
            if (nlen == 0 || strlen(name) != nlen)
                return bgr_error_set(err, BGR_EINVALID_PARAMETER, "bad form field name");
            f[count++] = (struct bgr_http_field){name, value, vlen};
        }
        pos = end + 1;
    }
    *out = f;
    *nout = count;
    return 0;
}

/* Nesting depth of JSON text, scanning outside strings only. Returns the
 * maximum depth, or -1 at an unterminated string (jansson reports it). */
static int json_depth(const uint8_t *p, size_t n)
{
    int depth = 0, max = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"')
            in_str = true;
        else if (c == '[' || c == '{') {
            if (++depth > max)
                max = depth;
        } else if (c == ']' || c == '}')
            depth--;
    }
    return max;
}

int bgr_http_json_parse(const uint8_t *body, size_t len, int max_depth, json_t **out,
                        struct bgr_error *err)
{
    if (len == 0)
        return bgr_error_set(err, BGR_EINVALID_JSON, "The request body is empty");
    int depth = json_depth(body, len);
    if (max_depth > 0 && depth > max_depth)
        return bgr_error_set(err, BGR_EINVALID_JSON, "JSON nested deeper than %d levels",
                             max_depth);
    json_error_t je;
    json_t *root = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return bgr_error_set(err, BGR_EINVALID_JSON, "Invalid JSON at line %d, column %d: %s",
                             je.line, je.column, je.text);
    *out = root;
    return 0;
}
