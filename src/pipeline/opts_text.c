/*
 * opts_text.c - the one persisted form of a whole option set.
 *
 * A batch item waits in the store (and, across machines, in a shared queue)
 * between the request and the worker that runs it. Every field of struct
 * bgr_output_opts must survive that trip: an earlier version stored seven of
 * eleven fields in their own columns, and every batch item silently ran with
 * refine=none. So the store keeps one text value, written and read only
 * here, and the writer names every field.
 *
 * The form is the API's own: "name=value" pairs joined by ';', with the
 * parameter names and value syntax of POST /v1/remove, parsed by the same
 * parsers. It is readable in the database, and a value written by a newer
 * version with a field this one does not know is refused, not ignored.
 */
#include <stdio.h>
#include <string.h>

#include "pipeline/pipeline.h"

/* A new field in struct bgr_output_opts must be written and read here, and
 * set in the round-trip test (tests/unit/image/test_opts_text.c); this
 * assertion fails when the struct grows, as a reminder. */
_Static_assert(sizeof(struct bgr_output_opts) == 40,
               "struct bgr_output_opts changed: update opts_text.c and its test");

int bgr_output_opts_to_text(const struct bgr_output_opts *o, char *out, size_t n)
{
    char bg[16], margin[16];
    if (o->has_bg_color)
        (void)snprintf(bg, sizeof(bg), "#%02x%02x%02x%02x", o->bg_color.r, o->bg_color.g,
                       o->bg_color.b, o->bg_color.a);
    else
        (void)snprintf(bg, sizeof(bg), "none");
    (void)snprintf(margin, sizeof(margin), "%d%s", o->crop_margin,
                   o->crop_margin_percent ? "%" : "");
    int w = snprintf(out, n,
                     "output_format=%s;output_quality=%d;bg_color=%s;max_resolution=%s;crop=%s;"
                     "crop_margin=%s;output_type=%s;refine=%s;decontaminate=%s",
                     bgr_format_name(o->format), o->quality, bg, bgr_max_res_name(o->max_res),
                     o->crop ? "true" : "false", margin, o->mask_only ? "mask" : "cutout",
                     bgr_refine_name(o->refine), o->decontaminate ? "true" : "false");
    return w >= 0 && (size_t)w < n ? 0 : -1;
}

/* Sets one field from its text; err names the field. */
static int set_field(struct bgr_output_opts *o, const char *name, const char *value,
                     struct bgr_error *err)
{
    if (strcmp(name, "output_format") == 0)
        return bgr_parse_format(value, &o->format, err);
    if (strcmp(name, "output_quality") == 0)
        return bgr_parse_quality(value, &o->quality, err);
    if (strcmp(name, "bg_color") == 0) {
        if (strcmp(value, "none") == 0) {
            o->has_bg_color = false;
            return 0;
        }
        o->has_bg_color = true;
        return bgr_parse_color(value, &o->bg_color, err);
    }
    if (strcmp(name, "max_resolution") == 0)
        return bgr_parse_max_res(value, &o->max_res, err);
    if (strcmp(name, "crop") == 0)
        return bgr_parse_bool(value, "crop", &o->crop, err);
    if (strcmp(name, "crop_margin") == 0)
        return bgr_parse_crop_margin(value, &o->crop_margin, &o->crop_margin_percent, err);
    if (strcmp(name, "output_type") == 0)
        return bgr_parse_output_type(value, &o->mask_only, err);
    if (strcmp(name, "refine") == 0)
        return bgr_parse_refine(value, &o->refine, err);
    if (strcmp(name, "decontaminate") == 0)
        return bgr_parse_bool(value, "decontaminate", &o->decontaminate, err);
    return bgr_error_set(err, BGR_EINVALID_PARAMETER, "unknown option '%.32s'", name);
}

static int set_field_cb(void *ctx, const char *name, const char *value, struct bgr_error *err)
{
    return set_field(ctx, name, value, err);
}

int bgr_output_opts_from_text(const char *text, struct bgr_output_opts *out, struct bgr_error *err)
{
    struct bgr_output_opts o;
    bgr_output_opts_init(&o);
    if (bgr_kv_each(text, set_field_cb, &o, err)) {
        bgr_error_prefix(err, "stored options");
        return BGR_EINVALID_PARAMETER;
    }
    *out = o;
    return 0;
}
