/*
 * s3_xml.c - just enough of a ListObjectsV2 response: each <Contents>'s
 * <Key> and <LastModified>, <IsTruncated> and <NextContinuationToken>.
 *
 * Why not libxml2: the response is a flat, machine-written document from a
 * server we configured, we need four element texts from it, and a parser
 * of a few dozen lines that only ever reads inside the buffer it was given
 * (no entity expansion beyond the five predefined ones and numeric
 * references, no DTDs, no allocation) is less to trust than a general XML
 * library. Element names are matched exactly; anything else is skipped.
 */
#define _GNU_SOURCE
#include "results/results_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The text between <name> and </name> in [p, end), starting the search at
 * p; NULL if absent. *tlen is the text's length, *after points past the
 * closing tag. An opening tag without its closing tag is malformed (*bad). */
static const char *element(const char *p, const char *end, const char *name, size_t *tlen,
                           const char **after, bool *bad)
{
    char open[40], close[40];
    int on = snprintf(open, sizeof open, "<%s>", name);
    int cn = snprintf(close, sizeof close, "</%s>", name);
    const char *s = memmem(p, (size_t)(end - p), open, (size_t)on), *e;
    if (!s)
        return NULL;
    s += on;
    e = memmem(s, (size_t)(end - s), close, (size_t)cn);
    if (!e) {
        *bad = true;
        return NULL;
    }
    *tlen = (size_t)(e - s);
    *after = e + cn;
    return s;
}

/* Decodes XML character data into out (n bytes, NUL-terminated); false if
 * it does not fit or holds an entity we do not know. */
static bool decode(const char *s, size_t len, char *out, size_t n)
{
    static const struct {
        const char *ent;
        char c;
    } ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        char c = s[i];
        if (c == '&') {
            size_t k, matched = 0;
            for (k = 0; k < BGR_ARRAY_LEN(ents); k++) {
                size_t el = strlen(ents[k].ent);
                if (len - i >= el && memcmp(s + i, ents[k].ent, el) == 0) {
                    c = ents[k].c;
                    matched = el;
                    break;
                }
            }
            if (!matched && len - i > 3 && s[i + 1] == '#') {
                /* &#NN; or &#xHH; : only ASCII is of use to us (keys are ASCII). */
                unsigned v = 0;
                size_t j = i + 2;
                bool hex = j < len && s[j] == 'x';
                j += hex;
                for (; j < len && s[j] != ';' && j - i < 10; j++) {
                    int d =
                        hex ? bgr_hex_digit(s[j]) : (s[j] >= '0' && s[j] <= '9' ? s[j] - '0' : -1);
                    if (d < 0)
                        return false;
                    v = v * (hex ? 16 : 10) + (unsigned)d;
                }
                if (j >= len || s[j] != ';' || v == 0 || v > 127)
                    return false;
                c = (char)v;
                matched = j + 1 - i;
            }
            if (!matched)
                return false;
            i += matched;
        } else {
            i++;
        }
        if (o + 1 >= n)
            return false;
        out[o++] = c;
    }
    out[o] = 0;
    return true;
}

int64_t bgr_s3_time_parse(const char *s, size_t len)
{
    char buf[40];
    struct tm tm;
    int y, mo, d, h, mi, sec, ms = 0, consumed = 0;
    time_t t;
    if (len >= sizeof buf)
        return -1;
    memcpy(buf, s, len);
    buf[len] = 0;
    if (sscanf(buf, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &consumed) != 6 ||
        consumed != 19)
        return -1;
    if (buf[19] == '.') {
        int digits = 0;
        const char *p = buf + 20;
        for (; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3)
                ms = ms * 10 + (*p - '0');
        for (int k = digits; k < 3; k++)
            ms *= 10;
        if (digits == 0 || strcmp(p, "Z") != 0)
            return -1;
    } else if (strcmp(buf + 19, "Z") != 0) {
        return -1;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    return (int64_t)t * 1000 + ms;
}

int bgr_s3_list_parse(const char *xml, size_t len, bgr_s3_list_entry_fn fn, void *ctx, char *next,
                      size_t n, struct bgr_error *err)
{
    const char *end = xml + len, *p = xml, *after, *t;
    size_t tl;
    bool bad = false, truncated = false;
    BGR_ASSERT(n > 0);
    next[0] = 0;
    if (!memmem(xml, len, "<ListBucketResult", 17))
        return bgr_error_set(err, BGR_EIO, "S3: the listing is not a ListBucketResult");
    while ((t = element(p, end, "Contents", &tl, &after, &bad)) != NULL) {
        const char *ce = t + tl, *ka, *ma;
        size_t kl, ml;
        const char *k = element(t, ce, "Key", &kl, &ka, &bad);
        const char *m = element(t, ce, "LastModified", &ml, &ma, &bad);
        char key[1100];
        int64_t mtime;
        if (!k || !m)
            return bgr_error_set(err, BGR_EIO, "S3: a listed object lacks its Key or LastModified");
        mtime = bgr_s3_time_parse(m, ml);
        if (mtime < 0)
            return bgr_error_set(err, BGR_EIO, "S3: unreadable LastModified in the listing");
        /* S3 keys are at most 1024 bytes; one we cannot decode is not ours. */
        if (decode(k, kl, key, sizeof key)) {
            int rc = fn(ctx, key, mtime);
            if (rc)
                return rc;
        }
        p = after;
    }
    if (bad)
        return bgr_error_set(err, BGR_EIO, "S3: malformed listing (an unclosed element)");
    t = element(xml, end, "IsTruncated", &tl, &after, &bad);
    truncated = t && tl == 4 && memcmp(t, "true", 4) == 0;
    if (truncated) {
        t = element(xml, end, "NextContinuationToken", &tl, &after, &bad);
        if (!t || tl == 0 || !decode(t, tl, next, n))
            return bgr_error_set(err, BGR_EIO,
                                 "S3: a truncated listing without a usable continuation token");
    }
    return 0;
}
