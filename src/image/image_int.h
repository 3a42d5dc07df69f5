/*
 * image_int.h - private helpers shared by the files of src/image (not part
 * of the module's interface).
 */
#ifndef BGR_IMAGE_IMAGE_INT_H
#define BGR_IMAGE_IMAGE_INT_H

#include <vips/vips.h>

#include "image/image.h"

/* Records a failed libvips call: code, "what: <libvips message>", and
 * clears libvips' error buffer. Returns code. */
int bgr_image_vips_error(struct bgr_error *err, int code, const char *what);

/* Drops every reference in imgs[0..n) that is not NULL. */
void bgr_image_unref_all(VipsImage **imgs, size_t n);

#endif
