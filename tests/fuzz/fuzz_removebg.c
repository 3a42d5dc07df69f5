/*
 * fuzz_removebg.c - the remove.bg drop-in's parsers of client bytes
 * (src/api/removebg.c, removebg_params.c): every parameter syntax (size,
 * format, type, type_level, booleans, roi, crop_margin, scale, position,
 * channels, colours with CSS names, percentages), base64 both ways, and
 * the POST /v1.0/removebg body in all three encodings (rbg_parse_request:
 * multipart, JSON, urlencoded; sources, URL syntax).
 *
 * Input: byte 0 picks the parser (low nibble) and, for base64 and the
 * request, the byte cap (high bits); for the request the first line after
 * it is the Content-Type header, the rest the body; for the others the
 * rest is the parameter's text.
 */
#include <math.h>
#include <string.h>

#include "api/api_int.h"
#include "api/removebg.h"
#include "fuzz.h"

static const size_t caps[] = {SIZE_MAX, 0, 12, 1u << 20};

static void check_len(const struct rbg_len *l)
{
    fuzz_check(isfinite(l->v) && l->v >= 0);
    if (l->pct)
        fuzz_check(l->v <= 100);
}

/* One parameter's text through its parser, with the promises each makes. */
static void param(uint8_t which, const char *s)
{
    enum rbg_size sz;
    enum rbg_format fmt;
    char type[16];
    int n;
    bool b, has;
    double x, y;
    struct rbg_len l[4];
    uint8_t c[4];
    switch (which) {
    case 0:
        if (rbg_parse_size(s, &sz) == 0)
            fuzz_check(sz >= RBG_SIZE_PREVIEW && sz <= RBG_SIZE_AUTO);
        break;
    case 1:
        if (rbg_parse_format(s, &fmt) == 0)
            fuzz_check(fmt >= RBG_FMT_AUTO && fmt <= RBG_FMT_ZIP);
        break;
    case 2:
        if (rbg_parse_type(s, type) == 0)
            fuzz_check(memchr(type, '\0', sizeof type) != NULL);
        if (rbg_parse_type_level(s, &n) == 0)
            fuzz_check(n >= 0 && n <= 3);
        (void)rbg_parse_bool(s, &b);
        (void)rbg_parse_channels(s, &b);
        break;
    case 3:
        if (rbg_parse_roi(s, l) == 0)
            for (int i = 0; i < 4; i++)
                check_len(&l[i]);
        break;
    case 4:
        if (rbg_parse_margin(s, l) == 0)
            for (int i = 0; i < 4; i++) {
                check_len(&l[i]);
                fuzz_check(l[i].v <= (l[i].pct ? 50 : 500));
            }
        break;
    case 5:
        if (rbg_parse_scale(s, &n) == 0)
            fuzz_check(n == 0 || (n >= 10 && n <= 100));
        if (rbg_parse_percent(s, &n) == 0)
            fuzz_check(n >= 0 && n <= 100);
        break;
    case 6:
        if (rbg_parse_position(s, &has, &x, &y) == 0 && has)
            fuzz_check(x >= 0 && x <= 1 && y >= 0 && y <= 1);
        break;
    default:
        (void)rbg_parse_color(s, c);
        break;
    }
}

/* Decoding any text within max; encoding the bytes and decoding them back
 * gives them again. */
static void base64(const uint8_t *data, size_t size, size_t max)
{
    char *s = fuzz_strndup(data, size);
    uint8_t *d = NULL, *d2 = NULL;
    char *enc = NULL;
    size_t n = 0, n2 = 0, elen = 0;
    if (!s)
        return;
    int rc = rbg_b64_decode(s, max, &d, &n);
    fuzz_check(rc == 0 || rc == -1 || (rc == -2 && max != SIZE_MAX));
    if (rc == 0)
        fuzz_check(n <= max);
    enc = rbg_b64_encode(data, size, &elen);
    if (enc) {
        fuzz_check(elen == strlen(enc) && elen % 4 == 0);
        fuzz_check(rbg_b64_decode(enc, SIZE_MAX, &d2, &n2) == 0);
        fuzz_check(n2 == size && (size == 0 || memcmp(d2, data, size) == 0));
    }
    free(d2);
    free(enc);
    free(d);
    free(s);
}

static void request(const uint8_t *data, size_t size, size_t max)
{
    char *ct = NULL;
    const uint8_t *body;
    size_t len;
    struct bgr_arena a;
    struct bgr_error e = {0};
    struct rbg_req r;
    json_t *root = NULL;
    uint8_t *decoded = NULL;
    bgr_arena_init(&a, 1u << 20);
    if (fuzz_split_line(data, size, &ct, &body, &len) != 0)
        goto done;
    /* The "type/subtype" of Content-Type, lower-cased (as bgr_http_req_mime). */
    char mime[64] = "";
    size_t n = strcspn(ct, ";"), k = 0;
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    while (k < n && (ct[k] == ' ' || ct[k] == '\t'))
        k++;
    if (n - k < sizeof mime)
        for (size_t j = 0; k + j < n; j++) {
            char c = ct[k + j];
            mime[j] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
            mime[j + 1] = '\0';
        }
    int rc = rbg_parse_request(&a, ct[0] ? ct : NULL, mime, body, len, &r, &root, &e);
    if (rc) {
        fuzz_check(rc < 0 && e.code == (enum bgr_err)rc);
        fuzz_check(memchr(e.msg, '\0', sizeof e.msg) != NULL);
        goto done;
    }
    /* Exactly one source, at most one background. */
    fuzz_check(r.n_sources == 1 && r.n_bg <= 1);
    fuzz_check((r.file ? 1 : 0) + (r.image_url ? 1 : 0) + (r.b64 ? 1 : 0) == 1);
    fuzz_check(!(r.n_bg && r.o.has_bg_color));
    if (r.file)
        fuzz_check(r.file_len >= 1 && r.file_len <= len);
    if (r.b64) {
        size_t dn = 0;
        int b = rbg_b64_decode(r.b64, max, &decoded, &dn);
        fuzz_check(b == 0 || b == -1 || (b == -2 && max != SIZE_MAX));
        if (b == 0)
            fuzz_check(dn <= max);
    }
done:
    json_decref(root);
    free(decoded);
    bgr_arena_release(&a);
    free(ct);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    data++;
    size--;
    uint8_t which = sel & 0x0f;
    size_t max = caps[(sel >> 4) & 3];
    if (which < 8) {
        char *s = fuzz_strndup(data, size);
        if (s)
            param(which, s);
        free(s);
    } else if (which < 10) {
        base64(data, size, max);
    } else {
        request(data, size, max);
    }
    return 0;
}
