/*
 * removebg_zip.c - the archive of format=zip: two entries stored without
 * compression (JPEG and PNG are compressed already), each with its CRC-32
 * (zlib's), a central directory and the end record (PKWARE APPNOTE 4.3:
 * local header, data, central header, end of central directory). No
 * ZIP64: entries and the archive stay far below 4 GiB (output caps).
 */
#include "api/removebg.h"

#include <glib.h>
#include <string.h>
#include <zlib.h>

static uint8_t *put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    return p + 2;
}

static uint8_t *put32(uint8_t *p, uint32_t v)
{
    p = put16(p, v & 0xffffu);
    return put16(p, v >> 16);
}

/* 1980-01-01 00:00: a fixed time keeps the archive reproducible. */
#define ZIP_DOS_TIME 0u
#define ZIP_DOS_DATE ((0u << 9) | (1u << 5) | 1u)

/* The fields local and central headers share, from "version needed" on. */
static uint8_t *common(uint8_t *p, uint32_t crc, uint32_t size, size_t name_len)
{
    p = put16(p, 10); /* version needed: 1.0, stored */
    p = put16(p, 0);  /* flags */
    p = put16(p, 0);  /* method: stored */
    p = put16(p, ZIP_DOS_TIME);
    p = put16(p, ZIP_DOS_DATE);
    p = put32(p, crc);
    p = put32(p, size); /* compressed */
    p = put32(p, size); /* uncompressed */
    p = put16(p, (unsigned)name_len);
    return put16(p, 0); /* extra length */
}

int rbg_zip2(const char *name1, const uint8_t *d1, size_t n1, const char *name2, const uint8_t *d2,
             size_t n2, uint8_t **out, size_t *outlen, struct bgr_error *err)
{
    const char *names[2] = {name1, name2};
    const uint8_t *data[2] = {d1, d2};
    size_t lens[2] = {n1, n2}, nl[2] = {strlen(name1), strlen(name2)};
    uint32_t crcs[2], offs[2];
    if (n1 > 0xfff00000u || n2 > 0xfff00000u || n1 + n2 > 0xfff00000u)
        return bgr_error_set(err, BGR_EINVALID_PARAMETER, "zip entries over 4 GiB");
    size_t total = 0;
    for (int i = 0; i < 2; i++)
        total += 30 + nl[i] + lens[i] + 46 + nl[i];
    total += 22;
    uint8_t *buf = g_try_malloc(total), *p = buf;
    if (!buf)
        return bgr_error_set(err, BGR_ENOMEM, "out of memory for the zip archive");
    for (int i = 0; i < 2; i++) {
        crcs[i] = (uint32_t)crc32(crc32(0L, Z_NULL, 0), data[i], (uInt)lens[i]);
        offs[i] = (uint32_t)(p - buf);
        p = put32(p, 0x04034b50u);
        p = common(p, crcs[i], (uint32_t)lens[i], nl[i]);
        memcpy(p, names[i], nl[i]);
        p += nl[i];
        memcpy(p, data[i], lens[i]);
        p += lens[i];
    }
    uint32_t cd_off = (uint32_t)(p - buf);
    for (int i = 0; i < 2; i++) {
        p = put32(p, 0x02014b50u);
        p = put16(p, 20); /* made by: 2.0, MS-DOS attributes */
        p = common(p, crcs[i], (uint32_t)lens[i], nl[i]);
        p = put16(p, 0); /* comment length */
        p = put16(p, 0); /* disk */
        p = put16(p, 0); /* internal attributes */
        p = put32(p, 0); /* external attributes */
        p = put32(p, offs[i]);
        memcpy(p, names[i], nl[i]);
        p += nl[i];
    }
    uint32_t cd_len = (uint32_t)(p - buf) - cd_off;
    p = put32(p, 0x06054b50u);
    p = put16(p, 0); /* this disk */
    p = put16(p, 0); /* disk with the directory */
    p = put16(p, 2);
    p = put16(p, 2);
    p = put32(p, cd_len);
    p = put32(p, cd_off);
    p = put16(p, 0); /* comment length */
    BGR_ASSERT((size_t)(p - buf) == total);
    *out = buf;
    *outlen = total;
    return 0;
}
