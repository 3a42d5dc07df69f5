/*
 * The persisted form of the output options: every field survives the trip
 * (the bug it replaces dropped four of eleven), defaults come back for
 * missing fields, and stored text from elsewhere is refused clearly.
 */
#include <string.h>

#include "pipeline/pipeline.h"
#include "runner.h"

static void check_round_trip(const struct bgr_output_opts *o)
{
    char text[BGR_OUTPUT_OPTS_TEXT_MAX];
    struct bgr_output_opts back;
    struct bgr_error err = {0};
    BGR_REQUIRE(bgr_output_opts_to_text(o, text, sizeof(text)) == 0);
    memset(&back, 0xa5, sizeof(back));
    BGR_REQUIRE(bgr_output_opts_from_text(text, &back, &err) == 0);
    if (memcmp(o, &back, sizeof(back)) != 0)
        fprintf(stderr, "  lost in: %s\n", text);
    BGR_CHECK(memcmp(o, &back, sizeof(back)) == 0);
}

BGR_TEST(defaults_round_trip)
{
    struct bgr_output_opts o;
    bgr_output_opts_init(&o);
    check_round_trip(&o);
}

/* Each field set away from its default, one at a time and all together:
 * a field the text form forgot comes back as its default and fails here. */
BGR_TEST(every_field_round_trips)
{
    struct bgr_output_opts all, one;
    bgr_output_opts_init(&all);
    all.format = BGR_FORMAT_WEBP;
    all.quality = 37;
    all.has_bg_color = true;
    all.bg_color = (struct bgr_color){1, 2, 254, 128};
    all.max_res = BGR_MAXRES_720P;
    all.crop = true;
    all.mask_only = true;
    all.crop_margin = 12;
    all.crop_margin_percent = true;
    all.refine = BGR_REFINE_FULL;
    all.decontaminate = false;
    check_round_trip(&all);

    bgr_output_opts_init(&one);
    one.format = BGR_FORMAT_JPEG;
    check_round_trip(&one);
    bgr_output_opts_init(&one);
    one.quality = 1;
    check_round_trip(&one);
    bgr_output_opts_init(&one);
    one.has_bg_color = true;
    one.bg_color = (struct bgr_color){0, 0, 0, 255};
    check_round_trip(&one);
    bgr_output_opts_init(&one);
    one.max_res = BGR_MAXRES_480P;
    check_round_trip(&one);
    bgr_output_opts_init(&one);
    one.crop = true;
    one.crop_margin = 10000;
    check_round_trip(&one);
    bgr_output_opts_init(&one);
    one.mask_only = true;
    check_round_trip(&one);
    bgr_output_opts_init(&one);
    one.refine = BGR_REFINE_NONE;
    check_round_trip(&one);
    bgr_output_opts_init(&one);
    one.decontaminate = false;
    check_round_trip(&one);
}

BGR_TEST(missing_fields_are_defaults)
{
    struct bgr_output_opts o, def;
    struct bgr_error err = {0};
    bgr_output_opts_init(&def);
    BGR_REQUIRE(bgr_output_opts_from_text("", &o, &err) == 0);
    BGR_CHECK(memcmp(&o, &def, sizeof(o)) == 0);
    BGR_REQUIRE(bgr_output_opts_from_text("output_quality=50", &o, &err) == 0);
    BGR_CHECK_EQ_INT(o.quality, 50);
    BGR_CHECK_EQ_INT(o.refine, def.refine);
    BGR_CHECK(o.decontaminate);
}

BGR_TEST(bad_text_is_refused)
{
    static const char *const bad[] = {
        "output_format=gif",   "colour=#fff", "output_quality",
        "output_quality=0",    "refine=best", ";",
        "output_format=png;;", "crop=maybe",  "bg_color=#12345",
        "crop_margin=-1",      "=png",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct bgr_output_opts o;
        struct bgr_error err = {0};
        memset(&o, 0x5a, sizeof(o));
        unsigned char before[sizeof(o)];
        memcpy(before, &o, sizeof(o));
        BGR_CHECK_EQ_INT(bgr_output_opts_from_text(bad[i], &o, &err), BGR_EINVALID_PARAMETER);
        BGR_CHECK(err.msg[0] != 0);
        BGR_CHECK(memcmp(before, &o, sizeof(o)) == 0); /* untouched on failure */
    }
}

BGR_TEST(short_buffer_fails)
{
    struct bgr_output_opts o;
    char small[16];
    bgr_output_opts_init(&o);
    BGR_CHECK_EQ_INT(bgr_output_opts_to_text(&o, small, sizeof(small)), -1);
}

BGR_TEST_MAIN()
