/*
 * test_removebg_unit.c - the remove.bg drop-in's parsers and formats that
 * need no server: every parameter syntax (valid and invalid values), the
 * size caps and credit weights, base64 both ways, and the zip archive
 * (read back entry by entry, CRCs recomputed).
 */
#include <glib.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "api/removebg.h"
#include "runner.h"

BGR_TEST(size_names_caps_and_credits)
{
    enum rbg_size s;
    static const char *const preview[] = {"preview", "small", "REGULAR"};
    for (size_t i = 0; i < BGR_ARRAY_LEN(preview); i++) {
        BGR_REQUIRE(rbg_parse_size(preview[i], &s) == 0);
        BGR_CHECK_EQ_INT(s, RBG_SIZE_PREVIEW);
    }
    BGR_CHECK(rbg_parse_size("4k", &s) == 0 && s == RBG_SIZE_FULL);
    BGR_CHECK(rbg_parse_size("50MP", &s) == 0 && s == RBG_SIZE_50MP);
    BGR_CHECK(rbg_parse_size("huge", &s) == -1);
    BGR_CHECK_EQ_INT(rbg_size_cap(RBG_SIZE_PREVIEW, RBG_FMT_AUTO), 250000);
    BGR_CHECK_EQ_INT(rbg_size_cap(RBG_SIZE_HD, RBG_FMT_JPG), 4000000);
    BGR_CHECK_EQ_INT(rbg_size_cap(RBG_SIZE_FULL, RBG_FMT_PNG), 10000000);
    BGR_CHECK_EQ_INT(rbg_size_cap(RBG_SIZE_FULL, RBG_FMT_JPG), 25000000);
    BGR_CHECK_NEAR(rbg_size_credits(RBG_SIZE_PREVIEW, 1000000), 0.25, 1e-12);
    BGR_CHECK_NEAR(rbg_size_credits(RBG_SIZE_MEDIUM, 1000), 1.0, 1e-12);
    BGR_CHECK_NEAR(rbg_size_credits(RBG_SIZE_AUTO, 250000), 0.25, 1e-12);
    BGR_CHECK_NEAR(rbg_size_credits(RBG_SIZE_AUTO, 250001), 1.0, 1e-12);
    int w, h;
    rbg_fit_cap(512, 512, 250000, &w, &h);
    BGR_CHECK(w == 500 && h == 500);
    rbg_fit_cap(4000, 10, 1000, &w, &h);
    BGR_CHECK(w * h <= 1000 && w >= 1 && h >= 1);
    rbg_fit_cap(300, 200, 250000, &w, &h); /* never upscaled */
    BGR_CHECK(w == 300 && h == 200);
}

BGR_TEST(colors_hex_and_names)
{
    uint8_t c[4];
    BGR_REQUIRE(rbg_parse_color("81d4fa", c) == 0);
    BGR_CHECK(c[0] == 0x81 && c[1] == 0xd4 && c[2] == 0xfa && c[3] == 255);
    BGR_REQUIRE(rbg_parse_color("#f08", c) == 0);
    BGR_CHECK(c[0] == 0xff && c[1] == 0x00 && c[2] == 0x88 && c[3] == 255);
    BGR_REQUIRE(rbg_parse_color("f008", c) == 0);
    BGR_CHECK(c[3] == 0x88);
    BGR_REQUIRE(rbg_parse_color("11223344", c) == 0);
    BGR_CHECK(c[0] == 0x11 && c[3] == 0x44);
    BGR_REQUIRE(rbg_parse_color("green", c) == 0);
    BGR_CHECK(c[0] == 0 && c[1] == 0x80 && c[2] == 0 && c[3] == 255);
    BGR_REQUIRE(rbg_parse_color("RebeccaPurple", c) == 0);
    BGR_CHECK(c[0] == 0x66 && c[1] == 0x33 && c[2] == 0x99);
    BGR_REQUIRE(rbg_parse_color("aliceblue", c) == 0 && rbg_parse_color("yellowgreen", c) == 0);
    BGR_CHECK(c[0] == 0x9a && c[1] == 0xcd && c[2] == 0x32);
    BGR_REQUIRE(rbg_parse_color("transparent", c) == 0);
    BGR_CHECK(c[3] == 0);
    static const char *const bad[] = {"", "#", "12345", "1234567", "ggg", "notacolour", "#fff "};
    for (size_t i = 0; i < BGR_ARRAY_LEN(bad); i++)
        BGR_CHECK(rbg_parse_color(bad[i], c) == -1);
}

BGR_TEST(lengths_roi_margin_scale_position)
{
    struct rbg_len l[4];
    BGR_REQUIRE(rbg_parse_roi("0% 10px 100% 200", l) == 0);
    BGR_CHECK(l[0].pct && !l[1].pct && l[1].v == 10 && l[2].pct && !l[3].pct && l[3].v == 200);
    BGR_CHECK(rbg_parse_roi("0 0 10", l) == -1);
    BGR_CHECK(rbg_parse_roi("0% 0% 101% 100%", l) == -1);
    BGR_CHECK(rbg_parse_roi("0 0 10 -5", l) == -1);
    BGR_CHECK(rbg_parse_roi("0 0 10 5em", l) == -1);
    /* CSS order: 1 value = all sides, 2 = vertical horizontal. */
    BGR_REQUIRE(rbg_parse_margin("30px", l) == 0);
    BGR_CHECK(l[0].v == 30 && l[1].v == 30 && l[2].v == 30 && l[3].v == 30);
    BGR_REQUIRE(rbg_parse_margin("10px 20%", l) == 0);
    BGR_CHECK(l[0].v == 10 && !l[0].pct && l[1].v == 20 && l[1].pct && l[2].v == 10 && l[3].pct);
    BGR_REQUIRE(rbg_parse_margin("1 2 3 4", l) == 0);
    BGR_CHECK(l[0].v == 1 && l[1].v == 2 && l[2].v == 3 && l[3].v == 4);
    BGR_CHECK(rbg_parse_margin("1 2 3", l) == -1);
    BGR_CHECK(rbg_parse_margin("51%", l) == -1);
    BGR_CHECK(rbg_parse_margin("501px", l) == -1);
    int pct;
    BGR_CHECK(rbg_parse_scale("original", &pct) == 0 && pct == 0);
    BGR_CHECK(rbg_parse_scale("10%", &pct) == 0 && pct == 10);
    BGR_CHECK(rbg_parse_scale("100%", &pct) == 0 && pct == 100);
    BGR_CHECK(rbg_parse_scale("9%", &pct) == -1);
    BGR_CHECK(rbg_parse_scale("50", &pct) == -1);
    bool has;
    double x, y;
    BGR_CHECK(rbg_parse_position("original", &has, &x, &y) == 0 && !has);
    BGR_CHECK(rbg_parse_position("center", &has, &x, &y) == 0 && has && x == 0.5 && y == 0.5);
    BGR_CHECK(rbg_parse_position("25%", &has, &x, &y) == 0 && x == 0.25 && y == 0.25);
    BGR_CHECK(rbg_parse_position("0% 100%", &has, &x, &y) == 0 && x == 0 && y == 1);
    BGR_CHECK(rbg_parse_position("10px", &has, &x, &y) == -1);
    BGR_CHECK(rbg_parse_position("left", &has, &x, &y) == -1);
}

BGR_TEST(enums_and_booleans)
{
    enum rbg_format f;
    BGR_CHECK(rbg_parse_format("JPEG", &f) == 0 && f == RBG_FMT_JPG);
    BGR_CHECK(rbg_parse_format("zip", &f) == 0 && f == RBG_FMT_ZIP);
    BGR_CHECK(rbg_parse_format("gif", &f) == -1);
    char type[16];
    BGR_CHECK(rbg_parse_type("Person", type) == 0 && strcmp(type, "person") == 0);
    BGR_CHECK(rbg_parse_type("spaceship", type) == -1);
    int lvl;
    BGR_CHECK(rbg_parse_type_level("latest", &lvl) == 0 && lvl == 3);
    BGR_CHECK(rbg_parse_type_level("3", &lvl) == -1);
    bool b;
    BGR_CHECK(rbg_parse_bool("TRUE", &b) == 0 && b);
    BGR_CHECK(rbg_parse_bool("0", &b) == 0 && !b);
    BGR_CHECK(rbg_parse_bool("yes", &b) == -1);
    BGR_CHECK(rbg_parse_channels("alpha", &b) == 0 && b);
    BGR_CHECK(rbg_parse_channels("rgb", &b) == -1);
    int p;
    BGR_CHECK(rbg_parse_percent("80%", &p) == 0 && p == 80);
    BGR_CHECK(rbg_parse_percent("101", &p) == -1);
    struct rbg_opts o;
    rbg_opts_init(&o);
    BGR_CHECK(o.size == RBG_SIZE_PREVIEW && o.semitransparency && o.type_level == 1 &&
              o.shadow_opacity == 50 && strcmp(o.type, "auto") == 0);
}

BGR_TEST(base64_round_trip)
{
    uint8_t data[256];
    for (int i = 0; i < 256; i++)
        data[i] = (uint8_t)(i * 7 + 3);
    for (size_t n = 0; n < 10; n++) {
        size_t elen;
        char *e = rbg_b64_encode(data, n, &elen);
        BGR_REQUIRE(e != NULL);
        BGR_CHECK_EQ_INT(elen, (n + 2) / 3 * 4);
        uint8_t *d = NULL;
        size_t dlen = 99;
        BGR_REQUIRE(rbg_b64_decode(e, 1000, &d, &dlen) == 0);
        BGR_CHECK_EQ_INT(dlen, n);
        BGR_CHECK(n == 0 || memcmp(d, data, n) == 0);
        free(d);
        free(e);
    }
    uint8_t *d = NULL;
    size_t dlen;
    BGR_REQUIRE(rbg_b64_decode("data:image/png;base64,aGk=", 10, &d, &dlen) == 0);
    BGR_CHECK(dlen == 2 && d[0] == 'h' && d[1] == 'i');
    free(d);
    BGR_CHECK(rbg_b64_decode("a!b=", 10, &d, &dlen) == -1);
    BGR_CHECK(rbg_b64_decode("aGk=aGk=", 10, &d, &dlen) == -1); /* data after padding */
    BGR_CHECK(rbg_b64_decode("aGVsbG8gd29ybGQ=", 4, &d, &dlen) == -2);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static unsigned rd16(const uint8_t *p)
{
    return (unsigned)p[0] | (unsigned)p[1] << 8;
}

BGR_TEST(zip_two_stored_entries)
{
    const uint8_t a[] = "colour bytes", b[] = "alpha";
    uint8_t *z = NULL;
    size_t n = 0;
    struct bgr_error e = {0};
    BGR_REQUIRE(rbg_zip2("color.jpg", a, sizeof a - 1, "alpha.png", b, sizeof b - 1, &z, &n, &e) ==
                0);
    /* End record: 2 entries, the central directory where it says. */
    const uint8_t *end = z + n - 22;
    BGR_CHECK_EQ_INT(rd32(end), 0x06054b50u);
    BGR_CHECK_EQ_INT(rd16(end + 10), 2);
    uint32_t cd = rd32(end + 16);
    const char *names[2] = {"color.jpg", "alpha.png"};
    const uint8_t *data[2] = {a, b};
    size_t lens[2] = {sizeof a - 1, sizeof b - 1};
    const uint8_t *c = z + cd;
    for (int i = 0; i < 2; i++) {
        BGR_REQUIRE(rd32(c) == 0x02014b50u);
        unsigned nl = rd16(c + 28);
        BGR_CHECK(nl == strlen(names[i]) && memcmp(c + 46, names[i], nl) == 0);
        const uint8_t *lh = z + rd32(c + 42);
        BGR_REQUIRE(rd32(lh) == 0x04034b50u);
        BGR_CHECK_EQ_INT(rd16(lh + 8), 0); /* stored */
        BGR_CHECK_EQ_INT(rd32(lh + 18), lens[i]);
        const uint8_t *body = lh + 30 + rd16(lh + 26) + rd16(lh + 28);
        BGR_CHECK(memcmp(body, data[i], lens[i]) == 0);
        BGR_CHECK_EQ_INT(rd32(lh + 14), (uint32_t)crc32(0L, data[i], (uInt)lens[i]));
        BGR_CHECK_EQ_INT(rd32(c + 16), rd32(lh + 14));
        c += 46 + nl;
    }
    BGR_CHECK(c == end);
    g_free(z);
}

/* The render job's spec: every field survives the trip (see
 * removebg_spec.c), and a bad spec is refused, leaving the output alone. */
static void check_spec_round_trip(const struct rbg_opts *o)
{
    char spec[RBG_SPEC_MAX];
    struct rbg_opts back;
    struct bgr_error e = {0};
    BGR_REQUIRE(rbg_opts_to_spec(o, spec, sizeof spec) == 0);
    memset(&back, 0x5a, sizeof back);
    BGR_REQUIRE(rbg_opts_from_spec(spec, &back, &e) == 0);
    BGR_CHECK(back.bg_image == NULL && back.bg_image_len == 0);
    back.bg_image = o->bg_image;
    back.bg_image_len = o->bg_image_len;
    if (memcmp(o, &back, sizeof back) != 0)
        fprintf(stderr, "  lost in: %s\n", spec);
    BGR_CHECK(memcmp(o, &back, sizeof back) == 0);
}

BGR_TEST(spec_round_trip)
{
    struct rbg_opts o;
    rbg_opts_init(&o);
    check_spec_round_trip(&o);
    o.size = RBG_SIZE_50MP;
    snprintf(o.type, sizeof o.type, "product");
    o.type_level = 3;
    o.format = RBG_FMT_ZIP;
    o.has_roi = true;
    o.roi[0] = (struct rbg_len){0.1, true};
    o.roi[1] = (struct rbg_len){12, false};
    o.roi[2] = (struct rbg_len){99.5, true};
    o.roi[3] = (struct rbg_len){1.0 / 3.0, false};
    o.crop = true;
    o.has_margin = true;
    o.margin[0] = (struct rbg_len){30, false};
    o.margin[1] = (struct rbg_len){10, true};
    o.margin[2] = (struct rbg_len){0, false};
    o.margin[3] = (struct rbg_len){2.25, true};
    o.scale_pct = 55;
    o.has_position = true;
    o.pos_x = 0.123456789012345678;
    o.pos_y = 1;
    o.alpha_only = true;
    o.has_bg_color = true;
    o.bg[0] = 1;
    o.bg[1] = 0xfe;
    o.bg[2] = 0x80;
    o.bg[3] = 0x7f;
    o.semitransparency = false;
    o.add_shadow = true;
    o.shadow_opacity = 100;
    o.bg_image = (const uint8_t *)"x";
    o.bg_image_len = 1;
    check_spec_round_trip(&o);
}

BGR_TEST(spec_refuses_bad_text)
{
    static const char *const bad[] = {
        "",
        "size=0",
        "v=2;size=0",
        "v=1;size=9",
        "v=1;nope=1",
        "v=1;crop",
        "v=1;roi=1,2,3",
        "v=1;bg=12345",
        "v=1;scale=101",
        "v=1;;",
        "v=1;position=0.5",
        "v=1;type="
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct rbg_opts o, before;
        struct bgr_error e = {0};
        memset(&o, 0x33, sizeof o);
        before = o;
        BGR_CHECK_EQ_INT(rbg_opts_from_spec(bad[i], &o, &e), BGR_EINVALID_PARAMETER);
        BGR_CHECK(memcmp(&o, &before, sizeof o) == 0);
    }
}

BGR_TEST_MAIN()
