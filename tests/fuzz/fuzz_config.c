/*
 * fuzz_config.c - the server's config file reader (src/api/config.c):
 * "key = value" lines, comments, every option's value parser, then the
 * consistency check. Operator-written, but a malformed file must give a
 * line-numbered BGR_EUSAGE, never a crash.
 *
 * Input: the file's bytes (written to an anonymous memfd and read back by
 * path, as the server reads its file).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "api/api.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("bgr-fuzz-config", MFD_CLOEXEC);
    fuzz_check(fd >= 0);
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        fuzz_check(w > 0);
        off += (size_t)w;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);

    struct bgr_serve_config c;
    struct bgr_error e = {0};
    bgr_serve_config_init(&c);
    int rc = bgr_serve_config_load_file(&c, path, &e);
    if (rc) {
        fuzz_check(rc == BGR_EUSAGE || rc == BGR_EIO || rc == BGR_ENOMEM);
        fuzz_check(e.msg[0] != '\0');
    } else {
        rc = bgr_serve_config_check(&c, &e);
        fuzz_check(rc == 0 || rc == BGR_EUSAGE);
        fuzz_check(c.listen && c.data_dir && c.backend && c.log_level);
    }
    bgr_serve_config_release(&c);
    close(fd);
    return 0;
}
