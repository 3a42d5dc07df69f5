/*
 * removebg_params.c - the syntaxes of remove.bg's parameters, each parsed
 * into struct rbg_opts by a function that answers 0 or -1; the handler turns
 * -1 into remove.bg's invalid_<name> error. Values are case-insensitive
 * where remove.bg's are ("PNG", "Preview"), lengths accept "px" and "%".
 */
#include "api/removebg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void rbg_opts_init(struct rbg_opts *o)
{
    memset(o, 0, sizeof *o);
    o->size = RBG_SIZE_PREVIEW;
    (void)snprintf(o->type, sizeof o->type, "auto");
    o->type_level = 1;
    o->format = RBG_FMT_AUTO;
    o->semitransparency = true;
    o->shadow_opacity = 50;
}

/* Output pixel caps: remove.bg's documented megapixel limits. */
uint64_t rbg_size_cap(enum rbg_size s, enum rbg_format f)
{
    switch (s) {
    case RBG_SIZE_PREVIEW:
        return 250000;
    case RBG_SIZE_MEDIUM:
        return 1500000;
    case RBG_SIZE_HD:
        return 4000000;
    case RBG_SIZE_50MP:
        return 50000000;
    case RBG_SIZE_FULL:
    case RBG_SIZE_AUTO:
        break;
    }
    return f == RBG_FMT_PNG ? 10000000 : 25000000;
}

double rbg_size_credits(enum rbg_size s, uint64_t out_pixels)
{
    if (s == RBG_SIZE_PREVIEW)
        return 0.25;
    /* auto picks the highest resolution: a result that small is a preview. */
    if (s == RBG_SIZE_AUTO && out_pixels <= 250000)
        return 0.25;
    return 1.0;
}

void rbg_fit_cap(int w, int h, uint64_t cap, int *ow, int *oh)
{
    uint64_t px = (uint64_t)w * (uint64_t)h;
    if (px <= cap) {
        *ow = w;
        *oh = h;
        return;
    }
    double f = sqrt((double)cap / (double)px);
    int a = (int)floor(w * f), b = (int)floor(h * f);
    *ow = a < 1 ? 1 : a;
    *oh = b < 1 ? 1 : b;
}

struct name_val {
    const char *name;
    int v;
};

static int lookup(const char *s, const struct name_val *t, size_t n, int *out)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(s, t[i].name) == 0) {
            *out = t[i].v;
            return 0;
        }
    return -1;
}

int rbg_parse_size(const char *s, enum rbg_size *out)
{
    static const struct name_val t[] = {
        {"preview", RBG_SIZE_PREVIEW}, {"small", RBG_SIZE_PREVIEW}, {"regular", RBG_SIZE_PREVIEW},
        {"medium", RBG_SIZE_MEDIUM},   {"hd", RBG_SIZE_HD},         {"full", RBG_SIZE_FULL},
        {"4k", RBG_SIZE_FULL},         {"50mp", RBG_SIZE_50MP},     {"auto", RBG_SIZE_AUTO}};
    int v;
    if (lookup(s, t, BGR_ARRAY_LEN(t), &v))
        return -1;
    *out = (enum rbg_size)v;
    return 0;
}

int rbg_parse_format(const char *s, enum rbg_format *out)
{
    static const struct name_val t[] = {{"auto", RBG_FMT_AUTO}, {"png", RBG_FMT_PNG},
                                        {"jpg", RBG_FMT_JPG},   {"jpeg", RBG_FMT_JPG},
                                        {"webp", RBG_FMT_WEBP}, {"zip", RBG_FMT_ZIP}};
    int v;
    if (lookup(s, t, BGR_ARRAY_LEN(t), &v))
        return -1;
    *out = (enum rbg_format)v;
    return 0;
}

int rbg_parse_type(const char *s, char out[16])
{
    static const char *const t[] = {"auto",   "person",  "product",        "car",
                                    "animal", "graphic", "transportation", "other"};
    for (size_t i = 0; i < BGR_ARRAY_LEN(t); i++)
        if (strcasecmp(s, t[i]) == 0) {
            (void)snprintf(out, 16, "%s", t[i]);
            return 0;
        }
    return -1;
}

int rbg_parse_type_level(const char *s, int *out)
{
    static const struct name_val t[] = {{"none", 0}, {"1", 1}, {"2", 2}, {"latest", 3}};
    return lookup(s, t, BGR_ARRAY_LEN(t), out);
}

int rbg_parse_bool(const char *s, bool *out)
{
    static const struct name_val t[] = {{"true", 1}, {"false", 0}, {"1", 1}, {"0", 0}};
    int v;
    if (lookup(s, t, BGR_ARRAY_LEN(t), &v))
        return -1;
    *out = v != 0;
    return 0;
}

/* One length at *p: a finite non-negative number, then "px", "%" or
 * nothing (pixels); advances *p past it and following blanks. */
static int parse_len(const char **p, struct rbg_len *out)
{
    const char *s = *p;
    char *end;
    while (*s == ' ')
        s++;
    if (!((*s >= '0' && *s <= '9') || *s == '.'))
        return -1;
    double v = strtod(s, &end);
    if (end == s || !isfinite(v) || v < 0 || v > 1e6)
        return -1;
    s = end;
    out->pct = false;
    if (*s == '%') {
        out->pct = true;
        s++;
    } else if (strncasecmp(s, "px", 2) == 0) {
        s += 2;
    }
    if (*s && *s != ' ')
        return -1;
    while (*s == ' ')
        s++;
    out->v = v;
    *p = s;
    return 0;
}

/* Up to max lengths separated by blanks; returns how many (or -1). */
static int parse_lens(const char *s, struct rbg_len *out, int max)
{
    int n = 0;
    while (*s == ' ')
        s++;
    while (*s) {
        if (n == max || parse_len(&s, &out[n]) != 0)
            return -1;
        n++;
    }
    return n;
}

int rbg_parse_roi(const char *s, struct rbg_len out[4])
{
    struct rbg_len v[4];
    if (parse_lens(s, v, 4) != 4)
        return -1;
    for (int i = 0; i < 4; i++)
        if (v[i].pct && v[i].v > 100)
            return -1;
    memcpy(out, v, sizeof v);
    return 0;
}

int rbg_parse_margin(const char *s, struct rbg_len out[4])
{
    struct rbg_len v[4];
    int n = parse_lens(s, v, 4);
    if (n != 1 && n != 2 && n != 4)
        return -1;
    if (n == 1)
        v[1] = v[2] = v[3] = v[0];
    else if (n == 2) {
        v[2] = v[0];
        v[3] = v[1];
    }
    /* remove.bg's limits: 50% of the subject or 500 px per side. */
    for (int i = 0; i < 4; i++)
        if (v[i].v > (v[i].pct ? 50 : 500))
            return -1;
    memcpy(out, v, sizeof v);
    return 0;
}

int rbg_parse_percent(const char *s, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || (*end && strcmp(end, "%") != 0) || v < 0 || v > 100)
        return -1;
    *out = (int)v;
    return 0;
}

int rbg_parse_scale(const char *s, int *pct)
{
    if (strcasecmp(s, "original") == 0) {
        *pct = 0;
        return 0;
    }
    int v;
    size_t n = strlen(s);
    if (n < 2 || s[n - 1] != '%' || rbg_parse_percent(s, &v) != 0 || v < 10)
        return -1;
    *pct = v;
    return 0;
}

int rbg_parse_position(const char *s, bool *has, double *x, double *y)
{
    if (strcasecmp(s, "original") == 0) {
        *has = false;
        return 0;
    }
    if (strcasecmp(s, "center") == 0) {
        *has = true;
        *x = *y = 0.5;
        return 0;
    }
    struct rbg_len v[2];
    int n = parse_lens(s, v, 2);
    if (n < 1)
        return -1;
    if (n == 1)
        v[1] = v[0];
    for (int i = 0; i < n; i++)
        if (!v[i].pct || v[i].v > 100)
            return -1;
    *has = true;
    *x = v[0].v / 100.0;
    *y = v[1].v / 100.0;
    return 0;
}

int rbg_parse_channels(const char *s, bool *alpha_only)
{
    if (strcasecmp(s, "rgba") == 0)
        *alpha_only = false;
    else if (strcasecmp(s, "alpha") == 0)
        *alpha_only = true;
    else
        return -1;
    return 0;
}

/* CSS Color Module names (W3C), 0xRRGGBBAA. Sorted for bsearch. */
static const struct css_color {
    const char *name;
    uint32_t rgba;
} css_colors[] = {{"aliceblue", 0xf0f8ffffu},
                  {"antiquewhite", 0xfaebd7ffu},
                  {"aqua", 0x00ffffffu},
                  {"aquamarine", 0x7fffd4ffu},
                  {"azure", 0xf0ffffffu},
                  {"beige", 0xf5f5dcffu},
                  {"bisque", 0xffe4c4ffu},
                  {"black", 0x000000ffu},
                  {"blanchedalmond", 0xffebcdffu},
                  {"blue", 0x0000ffffu},
                  {"blueviolet", 0x8a2be2ffu},
                  {"brown", 0xa52a2affu},
                  {"burlywood", 0xdeb887ffu},
                  {"cadetblue", 0x5f9ea0ffu},
                  {"chartreuse", 0x7fff00ffu},
                  {"chocolate", 0xd2691effu},
                  {"coral", 0xff7f50ffu},
                  {"cornflowerblue", 0x6495edffu},
                  {"cornsilk", 0xfff8dcffu},
                  {"crimson", 0xdc143cffu},
                  {"cyan", 0x00ffffffu},
                  {"darkblue", 0x00008bffu},
                  {"darkcyan", 0x008b8bffu},
                  {"darkgoldenrod", 0xb8860bffu},
                  {"darkgray", 0xa9a9a9ffu},
                  {"darkgreen", 0x006400ffu},
                  {"darkgrey", 0xa9a9a9ffu},
                  {"darkkhaki", 0xbdb76bffu},
                  {"darkmagenta", 0x8b008bffu},
                  {"darkolivegreen", 0x556b2fffu},
                  {"darkorange", 0xff8c00ffu},
                  {"darkorchid", 0x9932ccffu},
                  {"darkred", 0x8b0000ffu},
                  {"darksalmon", 0xe9967affu},
                  {"darkseagreen", 0x8fbc8fffu},
                  {"darkslateblue", 0x483d8bffu},
                  {"darkslategray", 0x2f4f4fffu},
                  {"darkslategrey", 0x2f4f4fffu},
                  {"darkturquoise", 0x00ced1ffu},
                  {"darkviolet", 0x9400d3ffu},
                  {"deeppink", 0xff1493ffu},
                  {"deepskyblue", 0x00bfffffu},
                  {"dimgray", 0x696969ffu},
                  {"dimgrey", 0x696969ffu},
                  {"dodgerblue", 0x1e90ffffu},
                  {"firebrick", 0xb22222ffu},
                  {"floralwhite", 0xfffaf0ffu},
                  {"forestgreen", 0x228b22ffu},
                  {"fuchsia", 0xff00ffffu},
                  {"gainsboro", 0xdcdcdcffu},
                  {"ghostwhite", 0xf8f8ffffu},
                  {"gold", 0xffd700ffu},
                  {"goldenrod", 0xdaa520ffu},
                  {"gray", 0x808080ffu},
                  {"green", 0x008000ffu},
                  {"greenyellow", 0xadff2fffu},
                  {"grey", 0x808080ffu},
                  {"honeydew", 0xf0fff0ffu},
                  {"hotpink", 0xff69b4ffu},
                  {"indianred", 0xcd5c5cffu},
                  {"indigo", 0x4b0082ffu},
                  {"ivory", 0xfffff0ffu},
                  {"khaki", 0xf0e68cffu},
                  {"lavender", 0xe6e6faffu},
                  {"lavenderblush", 0xfff0f5ffu},
                  {"lawngreen", 0x7cfc00ffu},
                  {"lemonchiffon", 0xfffacdffu},
                  {"lightblue", 0xadd8e6ffu},
                  {"lightcoral", 0xf08080ffu},
                  {"lightcyan", 0xe0ffffffu},
                  {"lightgoldenrodyellow", 0xfafad2ffu},
                  {"lightgray", 0xd3d3d3ffu},
                  {"lightgreen", 0x90ee90ffu},
                  {"lightgrey", 0xd3d3d3ffu},
                  {"lightpink", 0xffb6c1ffu},
                  {"lightsalmon", 0xffa07affu},
                  {"lightseagreen", 0x20b2aaffu},
                  {"lightskyblue", 0x87cefaffu},
                  {"lightslategray", 0x778899ffu},
                  {"lightslategrey", 0x778899ffu},
                  {"lightsteelblue", 0xb0c4deffu},
                  {"lightyellow", 0xffffe0ffu},
                  {"lime", 0x00ff00ffu},
                  {"limegreen", 0x32cd32ffu},
                  {"linen", 0xfaf0e6ffu},
                  {"magenta", 0xff00ffffu},
                  {"maroon", 0x800000ffu},
                  {"mediumaquamarine", 0x66cdaaffu},
                  {"mediumblue", 0x0000cdffu},
                  {"mediumorchid", 0xba55d3ffu},
                  {"mediumpurple", 0x9370dbffu},
                  {"mediumseagreen", 0x3cb371ffu},
                  {"mediumslateblue", 0x7b68eeffu},
                  {"mediumspringgreen", 0x00fa9affu},
                  {"mediumturquoise", 0x48d1ccffu},
                  {"mediumvioletred", 0xc71585ffu},
                  {"midnightblue", 0x191970ffu},
                  {"mintcream", 0xf5fffaffu},
                  {"mistyrose", 0xffe4e1ffu},
                  {"moccasin", 0xffe4b5ffu},
                  {"navajowhite", 0xffdeadffu},
                  {"navy", 0x000080ffu},
                  {"oldlace", 0xfdf5e6ffu},
                  {"olive", 0x808000ffu},
                  {"olivedrab", 0x6b8e23ffu},
                  {"orange", 0xffa500ffu},
                  {"orangered", 0xff4500ffu},
                  {"orchid", 0xda70d6ffu},
                  {"palegoldenrod", 0xeee8aaffu},
                  {"palegreen", 0x98fb98ffu},
                  {"paleturquoise", 0xafeeeeffu},
                  {"palevioletred", 0xdb7093ffu},
                  {"papayawhip", 0xffefd5ffu},
                  {"peachpuff", 0xffdab9ffu},
                  {"peru", 0xcd853fffu},
                  {"pink", 0xffc0cbffu},
                  {"plum", 0xdda0ddffu},
                  {"powderblue", 0xb0e0e6ffu},
                  {"purple", 0x800080ffu},
                  {"rebeccapurple", 0x663399ffu},
                  {"red", 0xff0000ffu},
                  {"rosybrown", 0xbc8f8fffu},
                  {"royalblue", 0x4169e1ffu},
                  {"saddlebrown", 0x8b4513ffu},
                  {"salmon", 0xfa8072ffu},
                  {"sandybrown", 0xf4a460ffu},
                  {"seagreen", 0x2e8b57ffu},
                  {"seashell", 0xfff5eeffu},
                  {"sienna", 0xa0522dffu},
                  {"silver", 0xc0c0c0ffu},
                  {"skyblue", 0x87ceebffu},
                  {"slateblue", 0x6a5acdffu},
                  {"slategray", 0x708090ffu},
                  {"slategrey", 0x708090ffu},
                  {"snow", 0xfffafaffu},
                  {"springgreen", 0x00ff7fffu},
                  {"steelblue", 0x4682b4ffu},
                  {"tan", 0xd2b48cffu},
                  {"teal", 0x008080ffu},
                  {"thistle", 0xd8bfd8ffu},
                  {"tomato", 0xff6347ffu},
                  {"transparent", 0x00000000u},
                  {"turquoise", 0x40e0d0ffu},
                  {"violet", 0xee82eeffu},
                  {"wheat", 0xf5deb3ffu},
                  {"white", 0xffffffffu},
                  {"whitesmoke", 0xf5f5f5ffu},
                  {"yellow", 0xffff00ffu},
                  {"yellowgreen", 0x9acd32ffu}};

static int css_cmp(const void *k, const void *e)
{
    return strcasecmp(k, ((const struct css_color *)e)->name);
}

int rbg_parse_color(const char *s, uint8_t out[4])
{
    const struct css_color *c =
        bsearch(s, css_colors, BGR_ARRAY_LEN(css_colors), sizeof css_colors[0], css_cmp);
    if (c) {
        for (int i = 0; i < 4; i++)
            out[i] = (uint8_t)(c->rgba >> (24 - 8 * i));
        return 0;
    }
    const char *h = s[0] == '#' ? s + 1 : s;
    size_t n = strlen(h);
    int d[8];
    if (n != 3 && n != 4 && n != 6 && n != 8)
        return -1;
    for (size_t i = 0; i < n; i++)
        if ((d[i] = bgr_hex_digit(h[i])) < 0)
            return -1;
    out[3] = 255;
    if (n <= 4) { /* #rgb / #rgba: each digit doubled */
        for (size_t i = 0; i < n; i++)
            out[i] = (uint8_t)(d[i] * 17);
    } else {
        for (size_t i = 0; i < n / 2; i++)
            out[i] = (uint8_t)(d[2 * i] * 16 + d[2 * i + 1]);
    }
    return 0;
}

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

int rbg_b64_decode(const char *s, size_t max, uint8_t **out, size_t *outlen)
{
    if (strncmp(s, "data:", 5) == 0) {
        const char *comma = strchr(s, ',');
        if (!comma || comma - s < 12 || strncmp(comma - 7, ";base64", 7) != 0)
            return -1;
        s = comma + 1;
    }
    size_t n = strlen(s);
    /* Not max + 3: max is SIZE_MAX for plans without a byte cap. */
    if (n / 4 * 3 > max && n / 4 * 3 - max > 3)
        return -2;
    uint8_t *d = malloc(n / 4 * 3 + 3);
    if (!d)
        return -1;
    size_t j = 0, pad = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        int v = b64val(c);
        if (v < 0 || pad)
            goto bad;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            d[j++] = (uint8_t)(acc >> bits);
        }
    }
    if (bits >= 6 || pad > 2)
        goto bad;
    if (j > max) {
        free(d);
        return -2;
    }
    *out = d;
    *outlen = j;
    return 0;
bad:
    free(d);
    return -1;
}

char *rbg_b64_encode(const uint8_t *p, size_t n, size_t *outlen)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t m = (n + 2) / 3 * 4;
    char *o = malloc(m + 1), *q = o;
    if (!o)
        return NULL;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *q++ = a[v >> 18];
        *q++ = a[(v >> 12) & 63];
        *q++ = a[(v >> 6) & 63];
        *q++ = a[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        *q++ = a[v >> 18];
        *q++ = a[(v >> 12) & 63];
        *q++ = i + 1 < n ? a[(v >> 6) & 63] : '=';
        *q++ = '=';
    }
    *q = 0;
    *outlen = m;
    return o;
}
