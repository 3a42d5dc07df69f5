/*
 * removebg_spec.c - the one serialised form of a remove.bg render's options
 * (struct rbg_opts), which is what a job carries to the worker that renders
 * it.
 *
 * The render used to read the handler's rbg_opts through a pointer to the
 * HTTP thread's stack: fine in one process, impossible for a worker in
 * another. Like the /v1 options (pipeline/opts_text.c) the whole set goes
 * as one value written and read only here, every field named, so no path
 * can drop one. The background image's bytes are not options: they travel
 * beside the spec (rbg_render_ctx).
 *
 * Form: "v=1;" then "name=value" pairs joined by ';'. Enumerations are
 * their numbers (an internal form, versioned by v), lengths "N" or "N%",
 * doubles with 17 significant digits (exact through strtod).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/removebg.h"

/* A new field of struct rbg_opts must be written and read here and set
 * in the round-trip test (tests/unit/removebg); this fails when it grows. */
_Static_assert(sizeof(struct rbg_opts) == 224,
               "struct rbg_opts changed: update removebg_spec.c and its test");

static int put_len(char *out, size_t n, const struct rbg_len *l)
{
    return snprintf(out, n, "%.17g%s", l->v, l->pct ? "%" : "");
}

int rbg_opts_to_spec(const struct rbg_opts *o, char *out, size_t n)
{
    char roi[4][40], margin[4][40];
    for (int i = 0; i < 4; i++) {
        put_len(roi[i], sizeof roi[i], &o->roi[i]);
        put_len(margin[i], sizeof margin[i], &o->margin[i]);
    }
    int w = snprintf(
        out, n,
        "v=1;size=%d;type=%s;type_level=%d;format=%d;has_roi=%d;roi=%s,%s,%s,%s;crop=%d;"
        "has_margin=%d;margin=%s,%s,%s,%s;scale=%d;has_position=%d;position=%.17g,%.17g;"
        "alpha_only=%d;has_bg=%d;bg=%02x%02x%02x%02x;semitransparency=%d;shadow=%d;"
        "shadow_opacity=%d",
        (int)o->size, o->type, o->type_level, (int)o->format, o->has_roi, roi[0], roi[1], roi[2],
        roi[3], o->crop, o->has_margin, margin[0], margin[1], margin[2], margin[3], o->scale_pct,
        o->has_position, o->pos_x, o->pos_y, o->alpha_only, o->has_bg_color, o->bg[0], o->bg[1],
        o->bg[2], o->bg[3], o->semitransparency, o->add_shadow, o->shadow_opacity);
    return w >= 0 && (size_t)w < n ? 0 : -1;
}

static bool get_int(const char *s, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = (int)v;
    return true;
}

static bool get_bool(const char *s, bool *out)
{
    int v;
    if (!get_int(s, 0, 1, &v))
        return false;
    *out = v == 1;
    return true;
}

static bool get_double(const char *s, char stop, const char **rest, double *out)
{
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    if (errno || end == s)
        return false;
    *rest = end;
    return *end == stop || (stop == 0 && *end == 0);
}

/* "a,b,c,d" of lengths ("12.5" or "10%"). */
static bool get_lens(const char *s, struct rbg_len out[4])
{
    for (int i = 0; i < 4; i++) {
        char *end;
        errno = 0;
        out[i].v = strtod(s, &end);
        if (errno || end == s)
            return false;
        out[i].pct = *end == '%';
        if (out[i].pct)
            end++;
        if (*end != (i < 3 ? ',' : 0))
            return false;
        s = end + 1;
    }
    return true;
}

static bool set_field(struct rbg_opts *o, const char *k, const char *v)
{
    int i;
    const char *rest;
    if (strcmp(k, "v") == 0)
        return strcmp(v, "1") == 0;
    if (strcmp(k, "size") == 0 && get_int(v, RBG_SIZE_PREVIEW, RBG_SIZE_AUTO, &i)) {
        o->size = (enum rbg_size)i;
        return true;
    }
    if (strcmp(k, "type") == 0 && strlen(v) < sizeof o->type) {
        (void)snprintf(o->type, sizeof o->type, "%s", v);
        return true;
    }
    if (strcmp(k, "type_level") == 0)
        return get_int(v, 0, 3, &o->type_level);
    if (strcmp(k, "format") == 0 && get_int(v, RBG_FMT_AUTO, RBG_FMT_ZIP, &i)) {
        o->format = (enum rbg_format)i;
        return true;
    }
    if (strcmp(k, "has_roi") == 0)
        return get_bool(v, &o->has_roi);
    if (strcmp(k, "roi") == 0)
        return get_lens(v, o->roi);
    if (strcmp(k, "crop") == 0)
        return get_bool(v, &o->crop);
    if (strcmp(k, "has_margin") == 0)
        return get_bool(v, &o->has_margin);
    if (strcmp(k, "margin") == 0)
        return get_lens(v, o->margin);
    if (strcmp(k, "scale") == 0)
        return get_int(v, 0, 100, &o->scale_pct);
    if (strcmp(k, "has_position") == 0)
        return get_bool(v, &o->has_position);
    if (strcmp(k, "position") == 0)
        return get_double(v, ',', &rest, &o->pos_x) && get_double(rest + 1, 0, &rest, &o->pos_y);
    if (strcmp(k, "alpha_only") == 0)
        return get_bool(v, &o->alpha_only);
    if (strcmp(k, "has_bg") == 0)
        return get_bool(v, &o->has_bg_color);
    if (strcmp(k, "bg") == 0) {
        if (strlen(v) != 8)
            return false;
        for (int j = 0; j < 4; j++) {
            int hi = bgr_hex_digit(v[2 * j]), lo = bgr_hex_digit(v[2 * j + 1]);
            if (hi < 0 || lo < 0)
                return false;
            o->bg[j] = (uint8_t)(hi * 16 + lo);
        }
        return true;
    }
    if (strcmp(k, "semitransparency") == 0)
        return get_bool(v, &o->semitransparency);
    if (strcmp(k, "shadow") == 0)
        return get_bool(v, &o->add_shadow);
    if (strcmp(k, "shadow_opacity") == 0)
        return get_int(v, 0, 100, &o->shadow_opacity);
    return false;
}

static int set_field_cb(void *ctx, const char *name, const char *value, struct bgr_error *err)
{
    if (!set_field(ctx, name, value))
        return bgr_error_set(err, BGR_EINVALID_PARAMETER, "bad or unknown %.32s", name);
    return 0;
}

int rbg_opts_from_spec(const char *spec, struct rbg_opts *out, struct bgr_error *err)
{
    struct rbg_opts o;
    rbg_opts_init(&o);
    if (!spec || strncmp(spec, "v=1;", 4) != 0)
        return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                             "remove.bg job spec: not a version 1 spec");
    if (bgr_kv_each(spec, set_field_cb, &o, err)) {
        bgr_error_prefix(err, "remove.bg job spec");
        return BGR_EINVALID_PARAMETER;
    }
    *out = o;
    return 0;
}
