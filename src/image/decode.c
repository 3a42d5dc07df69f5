/*
 * decode.c - untrusted encoded bytes to 8-bit sRGB pixels.
 *
 * Order matters for safety: sniff the format against an allow-list, read the
 * header only (libvips loads lazily), check the size against the limits, and
 * only then decode pixels. Decoding runs with sequential access, so JPEG and
 * PNG stream through without a whole-image intermediate, and with
 * fail_on=error, so corrupt or truncated files fail instead of coming out
 * half grey. Only the first frame/page of animated or multi-page files is
 * read (the loaders' default n=1).
 *
 * Decoding always happens at full size for now; a later shrink-on-load for
 * large JPEGs goes into image_open (a "shrink" option) and nothing else.
 */
#include <string.h>

#include "image/image_int.h"

/* Loaders we accept, by libvips class name prefix (the buffer variants).
 * Anything else that libvips may read (SVG, PDF, JPEG 2000, JPEG XL, FITS,
 * Magick, ...) is refused: they are either flagged untrusted by libvips or
 * not worth their attack surface for photographs. */
static const struct {
    const char *loader;
    const char *format;
} allowed_loaders[] = {
    {"VipsForeignLoadJpeg", "jpeg"}, {"VipsForeignLoadPng", "png"}, {"VipsForeignLoadWebp", "webp"},
    {"VipsForeignLoadNsgif", "gif"}, {"VipsForeignLoadGif", "gif"}, {"VipsForeignLoadTiff", "tiff"},
    {"VipsForeignLoadHeif", "heif"},
};

static const char *allowed_format(const char *loader)
{
    for (size_t i = 0; i < BGR_ARRAY_LEN(allowed_loaders); i++) {
        size_t n = strlen(allowed_loaders[i].loader);
        if (strncmp(loader, allowed_loaders[i].loader, n) == 0)
            return allowed_loaders[i].format;
    }
    return NULL;
}

/* The format a refused libvips loader reads, as a client knows it: the
 * loader's class name is libvips' internal vocabulary and stays out of
 * messages. */
static const char *refused_format_name(const char *loader)
{
    static const struct {
        const char *loader, *name;
    } names[] = {
        {"VipsForeignLoadSvg", "SVG"},          {"VipsForeignLoadPdf", "PDF"},
        {"VipsForeignLoadJp2k", "JPEG 2000"},   {"VipsForeignLoadJxl", "JPEG XL"},
        {"VipsForeignLoadOpenexr", "OpenEXR"},  {"VipsForeignLoadPpm", "PPM/PGM/PFM"},
        {"VipsForeignLoadRad", "Radiance HDR"}, {"VipsForeignLoadFits", "FITS"},
        {"VipsForeignLoadMat", "MATLAB"},       {"VipsForeignLoadVips", "VIPS"},
        {"VipsForeignLoadCsv", "CSV"},          {"VipsForeignLoadMatrix", "matrix"},
        {"VipsForeignLoadAnalyze", "Analyze"},  {"VipsForeignLoadOpenslide", "slide"},
    };
    for (size_t i = 0; i < BGR_ARRAY_LEN(names); i++)
        if (strncmp(loader, names[i].loader, strlen(names[i].loader)) == 0)
            return names[i].name;
    return "Such"; /* "Such images are not accepted" (ImageMagick's many formats, ...) */
}

/* libpng allocates a chunk's buffer from its declared length before reading
 * it (zTXt, iTXt, iCCP, unknown chunks: Debian's libpng sets no chunk cap,
 * and libvips offers none), so a 4 KB upload declaring a 2 GB chunk made it
 * malloc 2 GB (found by fuzz_image). A chunk can never be longer than the
 * bytes that follow it: false when one claims to be, up to IEND. */
static bool png_chunks_fit(const uint8_t *d, size_t len)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (len < 8 || memcmp(d, sig, 8) != 0)
        return true; /* not a PNG: nothing to check here */
    size_t pos = 8;
    while (len - pos >= 12) {
        uint32_t n = (uint32_t)d[pos] << 24 | (uint32_t)d[pos + 1] << 16 |
                     (uint32_t)d[pos + 2] << 8 | (uint32_t)d[pos + 3];
        if (n > len - pos - 12)
            return false;
        if (memcmp(d + pos + 4, "IEND", 4) == 0)
            break;
        pos += 12 + (size_t)n;
    }
    return true;
}

/* The number of scans (SOS markers) of a JPEG, counted by walking its
 * marker segments and skipping each scan's entropy-coded data, without
 * decoding anything: linear in the file and cheap next to one scan's
 * decoding. Stops counting past stop_after. Not a JPEG: 0. */
static unsigned jpeg_scans(const uint8_t *d, size_t len, unsigned stop_after)
{
    unsigned scans = 0;
    size_t pos = 2;
    if (len < 4 || d[0] != 0xFF || d[1] != 0xD8)
        return 0;
    while (pos + 4 <= len && scans <= stop_after) {
        if (d[pos] != 0xFF) { /* garbage between segments: libjpeg skips it too */
            pos++;
            continue;
        }
        uint8_t m = d[pos + 1];
        if (m == 0xFF || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) { /* fill, TEM, RSTn */
            pos += m == 0xFF ? 1 : 2;
            continue;
        }
        if (m == 0xD9) /* EOI */
            break;
        size_t seglen = (size_t)d[pos + 2] << 8 | d[pos + 3];
        if (seglen < 2)
            break;
        pos += 2 + seglen;
        if (m != 0xDA)
            continue;
        scans++;
        /* Entropy-coded data: runs to the next marker other than a stuffed
         * 0xFF00 or a restart marker. */
        while (pos + 1 < len && !(d[pos] == 0xFF && d[pos + 1] != 0x00 &&
                                  !(d[pos + 1] >= 0xD0 && d[pos + 1] <= 0xD7)))
            pos++;
    }
    return scans;
}

/* Opens data lazily (header only) and checks it against the limits. On
 * success *out holds a new reference the caller drops. */
static int image_open(const void *data, size_t len, const struct bgr_image_limits *lim,
                      VipsImage **out, struct bgr_image_info *info, struct bgr_error *err)
{
    int rc = bgr_image_global_init(err);
    if (rc)
        return rc;
    if (!data || len == 0)
        return bgr_error_set(err, BGR_EUNSUPPORTED_FORMAT, "the image is empty");

    const char *loader = vips_foreign_find_load_buffer(data, len);
    if (!loader) {
        vips_error_clear();
        return bgr_error_set(err, BGR_EUNSUPPORTED_FORMAT,
                             "not an image in a supported format (JPEG, PNG, WebP, GIF, "
                             "TIFF, HEIF/AVIF)");
    }
    const char *format = allowed_format(loader);
    if (!format) {
        return bgr_error_set(err, BGR_EUNSUPPORTED_FORMAT,
                             "%s images are not accepted: send JPEG, PNG, WebP, GIF, TIFF or "
                             "HEIF/AVIF",
                             refused_format_name(loader));
    }
    if (!png_chunks_fit(data, len))
        return bgr_error_set(err, BGR_EUNSUPPORTED_FORMAT, "corrupt or truncated image");
    unsigned max_scans = lim && lim->max_jpeg_scans > 0 ? (unsigned)lim->max_jpeg_scans
                                                        : BGR_IMAGE_DEFAULT_MAX_JPEG_SCANS;
    if (strcmp(format, "jpeg") == 0 && jpeg_scans(data, len, max_scans) > max_scans)
        return bgr_error_set(err, BGR_EUNSUPPORTED_FORMAT,
                             "the JPEG has more than %u progressive scans; re-save it as a "
                             "baseline JPEG",
                             max_scans);

    VipsImage *img = vips_image_new_from_buffer(data, len, "", "access", VIPS_ACCESS_SEQUENTIAL,
                                                "fail_on", VIPS_FAIL_ON_ERROR, NULL);
    if (!img)
        return bgr_image_vips_error(err, BGR_EUNSUPPORTED_FORMAT, "unreadable image header");

    int w = vips_image_get_width(img), h = vips_image_get_height(img);
    int orientation = vips_image_get_orientation(img);
    if (orientation < 1 || orientation > 8)
        orientation = 1;
    if (orientation >= 5) {
        int t = w;
        w = h;
        h = t;
    }
    uint64_t max_pixels = lim && lim->max_pixels ? lim->max_pixels : BGR_IMAGE_DEFAULT_MAX_PIXELS;
    uint64_t pixels = (uint64_t)w * (uint64_t)h;
    if (w <= 0 || h <= 0) {
        rc = bgr_error_set(err, BGR_EUNSUPPORTED_FORMAT, "image has no pixels");
        goto out;
    }
    if (pixels > max_pixels) {
        rc = bgr_error_set(err, BGR_ERESOLUTION_TOO_HIGH,
                           "image is %dx%d (%.1f MP); the limit is %.1f MP", w, h,
                           (double)pixels / 1e6, (double)max_pixels / 1e6);
        goto out;
    }
    if (lim && lim->max_side > 0 && (w > lim->max_side || h > lim->max_side)) {
        rc = bgr_error_set(err, BGR_ERESOLUTION_TOO_HIGH,
                           "image is %dx%d; the limit is %d pixels a side", w, h, lim->max_side);
        goto out;
    }
    if (info)
        *info = (struct bgr_image_info){.width = w,
                                        .height = h,
                                        .orientation = orientation,
                                        .has_alpha = vips_image_hasalpha(img) != 0,
                                        .format = format};
    *out = img;
    img = NULL;
out:
    if (img)
        g_object_unref(img);
    return rc;
}

int bgr_image_probe(const void *data, size_t len, const struct bgr_image_limits *lim,
                    struct bgr_image_info *info, struct bgr_error *err)
{
    VipsImage *img = NULL;
    int rc = image_open(data, len, lim, &img, info, err);
    if (img)
        g_object_unref(img);
    return rc;
}

/* The value of an opaque alpha in img's sample format. */
static double alpha_max(VipsImage *img)
{
    switch (vips_image_get_format(img)) {
    case VIPS_FORMAT_USHORT:
    case VIPS_FORMAT_SHORT:
        return 65535.0;
    case VIPS_FORMAT_UINT:
    case VIPS_FORMAT_INT:
        return 4294967295.0;
    case VIPS_FORMAT_FLOAT:
    case VIPS_FORMAT_DOUBLE: /* linear float files (TIFF, EXR) store 0..1 */
        return vips_image_guess_interpretation(img) == VIPS_INTERPRETATION_scRGB ? 1.0 : 255.0;
    default:
        return 255.0;
    }
}

/* Builds the lazy conversion of img to 8-bit sRGB with 3 or 4 bands
 * (t[0..11] collect the intermediate references for the caller to drop).
 * Returns the last image, or NULL with a libvips error. */
static VipsImage *to_srgb8(VipsImage *img, VipsImage **t)
{
    VipsImage *x = img, *alpha = NULL;
    int bands = vips_image_get_bands(img);
    /* Alpha is split off first and scaled on its own: colour management
     * must not touch it, and its range depends on the input's depth. */
    if (vips_image_hasalpha(img)) {
        if (vips_extract_band(img, &t[0], 0, "n", bands - 1, NULL) ||
            vips_extract_band(img, &t[1], bands - 1, NULL) ||
            vips_linear1(t[1], &t[2], 255.0 / alpha_max(img), 0.0, NULL) ||
            vips_rint(t[2], &t[3], NULL) || vips_cast_uchar(t[3], &t[4], NULL))
            return NULL;
        x = t[0];
        alpha = t[4];
    }
    /* An embedded profile (CMYK from Photoshop, Adobe RGB, Display P3, ...)
     * is honoured, as the reference's decoder (sharp) does. A broken profile
     * falls back to libvips' defaults rather than refusing the image. */
    if (vips_image_get_typeof(x, VIPS_META_ICC_NAME) &&
        vips_image_guess_interpretation(x) != VIPS_INTERPRETATION_LABS) {
        if (vips_icc_transform(x, &t[5], "srgb", "embedded", TRUE, "intent", VIPS_INTENT_PERCEPTUAL,
                               "depth", 8, NULL) == 0)
            x = t[5];
        else
            vips_error_clear();
    }
    if (vips_image_guess_interpretation(x) != VIPS_INTERPRETATION_sRGB ||
        vips_image_get_format(x) != VIPS_FORMAT_UCHAR) {
        if (vips_colourspace(x, &t[6], VIPS_INTERPRETATION_sRGB, NULL))
            return NULL;
        x = t[6];
    }
    /* Formats colourspace leaves alone (float or 16-bit already "sRGB"). */
    if (vips_image_get_format(x) != VIPS_FORMAT_UCHAR) {
        if (vips_cast_uchar(x, &t[7], NULL))
            return NULL;
        x = t[7];
    }
    bands = vips_image_get_bands(x);
    if (bands < 3) { /* one grey band colourspace kept: replicate it */
        VipsImage *g[3] = {x, x, x};
        if (vips_bandjoin(g, &t[8], 3, NULL))
            return NULL;
        x = t[8];
    } else if (bands > 3) {
        if (vips_extract_band(x, &t[9], 0, "n", 3, NULL))
            return NULL;
        x = t[9];
    }
    if (alpha) {
        if (vips_bandjoin2(x, alpha, &t[10], NULL))
            return NULL;
        x = t[10];
    }
    return x;
}

int bgr_image_decode(const void *data, size_t len, const struct bgr_image_limits *lim,
                     struct bgr_pixels *out, struct bgr_image_info *info, struct bgr_error *err)
{
    VipsImage *img = NULL, *t[14] = {NULL};
    struct bgr_image_info inf = {0};
    void *mem = NULL;
    int rc = image_open(data, len, lim, &img, &inf, err);
    if (rc)
        goto out;

    VipsImage *x = to_srgb8(img, t);
    if (!x) {
        rc = bgr_image_vips_error(err, BGR_EUNSUPPORTED_FORMAT, "cannot convert image to sRGB");
        goto out;
    }
    if (inf.orientation != 1) {
        /* Rotation needs random access: materialise the (sequential) decode
         * first, then rotate that copy. */
        if (!(t[11] = vips_image_copy_memory(x)) || vips_autorot(t[11], &t[12], NULL)) {
            rc = bgr_image_vips_error(err, BGR_EUNSUPPORTED_FORMAT, "corrupt or truncated image");
            goto out;
        }
        x = t[12];
    }
    size_t size = 0;
    mem = vips_image_write_to_memory(x, &size);
    if (!mem) {
        rc = bgr_image_vips_error(err, BGR_EUNSUPPORTED_FORMAT, "corrupt or truncated image");
        goto out;
    }
    int w = vips_image_get_width(x), h = vips_image_get_height(x), b = vips_image_get_bands(x);
    BGR_ASSERT((b == 3 || b == 4) && size == (size_t)w * (size_t)h * (size_t)b);
    if (w != inf.width || h != inf.height) { /* the limits were checked on the header's size */
        rc = bgr_error_set(err, BGR_EUNSUPPORTED_FORMAT,
                           "image decodes to %dx%d but its header says %dx%d", w, h, inf.width,
                           inf.height);
        goto out;
    }
    inf.has_alpha = b == 4;
    *out = (struct bgr_pixels){.data = mem, .width = w, .height = h, .bands = b};
    mem = NULL;
    if (info)
        *info = inf;
out:
    g_free(mem);
    bgr_image_unref_all(t, BGR_ARRAY_LEN(t));
    if (img)
        g_object_unref(img);
    return rc;
}
