/*
 * opts.c - the output options shared by the CLI and the API: defaults and
 * the parsers of their string forms. Parsers accept exactly the documented
 * syntax (case-insensitive names, no surrounding junk) and name what they
 * expected in the error.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "pipeline/pipeline.h"

void bgr_output_opts_init(struct bgr_output_opts *o)
{
    *o = (struct bgr_output_opts){.format = BGR_FORMAT_PNG,
                                  .quality = 90,
                                  .has_bg_color = false,
                                  .bg_color = {255, 255, 255, 255},
                                  .max_res = BGR_MAXRES_ORIGINAL,
                                  .crop = false,
                                  .mask_only = false,
                                  .crop_margin = 0,
                                  .crop_margin_percent = false,
                                  .refine = BGR_REFINE_FAST,
                                  .decontaminate = true};
}

/* Client text is echoed into messages only when short and printable. */
static const char *shown(const char *s)
{
    if (!s)
        return "(none)";
    size_t n = 0;
    for (; s[n]; n++)
        if (n >= 32 || !isprint((unsigned char)s[n]))
            return "(value)";
    return s;
}

int bgr_parse_format(const char *s, enum bgr_format *out, struct bgr_error *err)
{
    static const struct {
        const char *name;
        enum bgr_format f;
    } names[] = {{"png", BGR_FORMAT_PNG},
                 {"webp", BGR_FORMAT_WEBP},
                 {"jpeg", BGR_FORMAT_JPEG},
                 {"jpg", BGR_FORMAT_JPEG}};
    for (size_t i = 0; s && i < BGR_ARRAY_LEN(names); i++)
        if (strcasecmp(s, names[i].name) == 0) {
            *out = names[i].f;
            return 0;
        }
    return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                         "invalid format '%s': expected png, webp or jpeg", shown(s));
}

int bgr_parse_color(const char *s, struct bgr_color *out, struct bgr_error *err)
{
    const char *h = s && s[0] == '#' ? s + 1 : s;
    size_t n = h ? strlen(h) : 0;
    int v[8];
    if (n != 3 && n != 6 && n != 8)
        goto bad;
    for (size_t i = 0; i < n; i++)
        if ((v[i] = bgr_hex_digit(h[i])) < 0)
            goto bad;
    if (n == 3) { /* #RGB: each digit doubled, #f80 = #ff8800 */
        *out = (struct bgr_color){(uint8_t)(v[0] * 17), (uint8_t)(v[1] * 17), (uint8_t)(v[2] * 17),
                                  255};
    } else {
        *out = (struct bgr_color){(uint8_t)(v[0] * 16 + v[1]), (uint8_t)(v[2] * 16 + v[3]),
                                  (uint8_t)(v[4] * 16 + v[5]),
                                  n == 8 ? (uint8_t)(v[6] * 16 + v[7]) : 255};
    }
    return 0;
bad:
    return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                         "invalid colour '%s': expected #RGB, #RRGGBB or #RRGGBBAA in hex",
                         shown(s));
}

int bgr_parse_max_res(const char *s, enum bgr_max_res *out, struct bgr_error *err)
{
    static const struct {
        const char *name;
        enum bgr_max_res r;
    } names[] = {{"original", BGR_MAXRES_ORIGINAL},
                 {"1080p", BGR_MAXRES_1080P},
                 {"720p", BGR_MAXRES_720P},
                 {"480p", BGR_MAXRES_480P}};
    for (size_t i = 0; s && i < BGR_ARRAY_LEN(names); i++)
        if (strcasecmp(s, names[i].name) == 0) {
            *out = names[i].r;
            return 0;
        }
    return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                         "invalid max_resolution '%s': expected original, 1080p, 720p or 480p",
                         shown(s));
}

int bgr_parse_quality(const char *s, int *out, struct bgr_error *err)
{
    int v = 0;
    size_t n = 0;
    /* Digits only: no sign, spaces, fraction or exponent. Leading zeros are
     * harmless ("090"); the value is capped while reading, so long inputs
     * cannot overflow. */
    for (; s && s[n]; n++) {
        if (s[n] < '0' || s[n] > '9')
            goto bad;
        v = v * 10 + (s[n] - '0');
        if (v > 100)
            goto bad;
    }
    if (n == 0 || v < 1)
        goto bad;
    *out = v;
    return 0;
bad:
    return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                         "invalid quality '%s': expected an integer from 1 to 100", shown(s));
}

const char *bgr_format_name(enum bgr_format f)
{
    switch (f) {
    case BGR_FORMAT_PNG:
        return "png";
    case BGR_FORMAT_WEBP:
        return "webp";
    case BGR_FORMAT_JPEG:
        return "jpeg";
    }
    return "png";
}

int bgr_parse_refine(const char *s, enum bgr_refine *out, struct bgr_error *err)
{
    static const char *const names[] = {
        [BGR_REFINE_NONE] = "none", [BGR_REFINE_FAST] = "fast", [BGR_REFINE_FULL] = "full"};
    for (size_t i = 0; s && i < BGR_ARRAY_LEN(names); i++)
        if (strcasecmp(s, names[i]) == 0) {
            *out = (enum bgr_refine)i;
            return 0;
        }
    return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                         "invalid refine '%s': expected none, fast or full", shown(s));
}

const char *bgr_refine_name(enum bgr_refine r)
{
    return r == BGR_REFINE_NONE ? "none" : r == BGR_REFINE_FULL ? "full" : "fast";
}

int bgr_parse_bool(const char *s, const char *name, bool *out, struct bgr_error *err)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    for (size_t i = 0; s && i < BGR_ARRAY_LEN(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return bgr_error_set(err, BGR_EINVALID_PARAMETER, "invalid %s '%s': expected true or false",
                         name, shown(s));
}

int bgr_parse_output_type(const char *s, bool *mask_only, struct bgr_error *err)
{
    if (s && strcasecmp(s, "cutout") == 0) {
        *mask_only = false;
        return 0;
    }
    if (s && strcasecmp(s, "mask") == 0) {
        *mask_only = true;
        return 0;
    }
    return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                         "invalid output_type '%s': expected cutout or mask", shown(s));
}

int bgr_parse_crop_margin(const char *s, int *value, bool *percent, struct bgr_error *err)
{
    int v = 0;
    size_t n = 0;
    bool pct = false;
    /* Digits, then nothing, "px" or "%". Capped while reading. */
    for (; s && s[n] >= '0' && s[n] <= '9'; n++) {
        v = v * 10 + (s[n] - '0');
        if (v > 10000)
            goto bad;
    }
    if (n == 0)
        goto bad;
    if (s[n] == '%' && s[n + 1] == 0)
        pct = true;
    else if (s[n] != 0 && strcasecmp(s + n, "px") != 0)
        goto bad;
    if (pct && v > 100)
        goto bad;
    *value = v;
    *percent = pct;
    return 0;
bad:
    return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                         "invalid crop_margin '%s': expected pixels (0 to 10000, e.g. 20 or "
                         "20px) or a percentage of the subject's size (0%% to 100%%)",
                         shown(s));
}
