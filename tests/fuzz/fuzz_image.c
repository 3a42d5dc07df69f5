/*
 * fuzz_image.c - image headers and decoding through our libvips wrapper
 * (src/image): bgr_image_probe, then bgr_image_decode with the pixel and
 * side limits the server applies (smaller here so that one input cannot
 * take seconds). Only the loaders the wrapper allows may claim the bytes.
 *
 * Input: the image file.
 */
#include <string.h>

#include "fuzz.h"
#include "image/image.h"

#define FUZZ_MAX_PIXELS (2u * 1000u * 1000u)
#define FUZZ_MAX_SIDE 4000

static const char *const formats[] = {"jpeg", "png", "webp", "gif", "tiff", "heif"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready = -1;
    struct bgr_error e = {0};
    if (ready < 0)
        ready = bgr_image_global_init(&e) == 0;
    fuzz_check(ready);

    struct bgr_image_limits lim = {FUZZ_MAX_PIXELS, FUZZ_MAX_SIDE, 0};
    struct bgr_image_info info;
    int rc = bgr_image_probe(data, size, &lim, &info, &e);
    if (rc) {
        fuzz_check(rc == BGR_EUNSUPPORTED_FORMAT || rc == BGR_ERESOLUTION_TOO_HIGH);
        return 0;
    }
    fuzz_check(info.width >= 1 && info.height >= 1);
    fuzz_check((uint64_t)info.width * (uint64_t)info.height <= FUZZ_MAX_PIXELS);
    fuzz_check(info.width <= FUZZ_MAX_SIDE && info.height <= FUZZ_MAX_SIDE);
    fuzz_check(info.orientation >= 1 && info.orientation <= 8);
    bool known = false;
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
        known |= info.format && strcmp(info.format, formats[i]) == 0;
    fuzz_check(known);

    struct bgr_pixels px = {0};
    struct bgr_image_info info2;
    rc = bgr_image_decode(data, size, &lim, &px, &info2, &e);
    if (rc) {
        fuzz_check(rc == BGR_EUNSUPPORTED_FORMAT || rc == BGR_ERESOLUTION_TOO_HIGH ||
                   rc == BGR_ENOMEM);
        fuzz_check(px.data == NULL);
        return 0;
    }
    fuzz_check(px.data != NULL);
    fuzz_check(px.bands == 3 || px.bands == 4);
    fuzz_check(px.width == info.width && px.height == info.height);
    /* Touch every byte: an undersized buffer shows up under ASan. */
    size_t n = (size_t)px.width * (size_t)px.height * (size_t)px.bands;
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += px.data[i];
    (void)sum;
    bgr_pixels_release(&px);
    return 0;
}
