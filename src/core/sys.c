/*
 * sys.c - files, hashing, randomness, clocks and logging: the thin layer
 * between bgremover and the OS (and GnuTLS for the digests).
 */
#define _GNU_SOURCE
#include "core/core.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int bgr_file_read(const char *path, size_t max_len, struct bgr_buf *out, struct bgr_error *err)
{
    int fd, rc = 0;
    bool is_stdin = strcmp(path, "-") == 0;
    bgr_buf_init(out, 0); /* the cap is checked below, so one byte past it can be seen */
    fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bgr_error_set(err, BGR_EIO, "cannot open %s: %s", path, strerror(errno));
    for (;;) {
        ssize_t n;
        rc = bgr_buf_reserve(out, 64 * 1024, err);
        if (rc)
            goto out;
        n = read(fd, out->data + out->len, out->cap - out->len - 1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = bgr_error_set(err, BGR_EIO, "cannot read %s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        out->len += (size_t)n;
        if (max_len && out->len > max_len) {
            rc = bgr_error_set(err, BGR_EFILE_TOO_LARGE, "%s is larger than %zu bytes", path,
                               max_len);
            goto out;
        }
    }
    rc = bgr_buf_reserve(out, 0, err); /* an empty file still gets a NUL-terminated buffer */
    if (!rc)
        out->data[out->len] = 0;
out:
    if (!is_stdin)
        close(fd);
    if (rc)
        bgr_buf_release(out);
    return rc;
}

static int write_all(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int bgr_file_write_atomic(const char *path, const void *data, size_t len, struct bgr_error *err)
{
    char tmp[4096];
    int fd, rc = 0;
    if (strcmp(path, "-") == 0) {
        if (write_all(STDOUT_FILENO, data, len))
            return bgr_error_set(err, BGR_EIO, "cannot write stdout: %s", strerror(errno));
        return 0;
    }
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= sizeof tmp)
        return bgr_error_set(err, BGR_EIO, "path too long: %s", path);
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return bgr_error_set(err, BGR_EIO, "cannot create %s: %s", path, strerror(errno));
    if (write_all(fd, data, len) || fsync(fd)) {
        rc = bgr_error_set(err, BGR_EIO, "cannot write %s: %s", path, strerror(errno));
        close(fd);
        unlink(tmp);
        return rc;
    }
    if (fchmod(fd, 0644) || close(fd)) {
        rc = bgr_error_set(err, BGR_EIO, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return rc;
    }
    if (rename(tmp, path)) {
        rc = bgr_error_set(err, BGR_EIO, "cannot rename to %s: %s", path, strerror(errno));
        unlink(tmp);
    }
    return rc;
}

int bgr_mkdir_p(const char *path, struct bgr_error *err)
{
    char tmp[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof tmp)
        return bgr_error_set(err, BGR_EIO, "bad directory path");
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(tmp, 0755) && errno != EEXIST)
            return bgr_error_set(err, BGR_EIO, "cannot create %s: %s", tmp, strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0755) && errno != EEXIST)
        return bgr_error_set(err, BGR_EIO, "cannot create %s: %s", tmp, strerror(errno));
    return 0;
}

void bgr_sha256(const void *data, size_t len, uint8_t out[32])
{
    int rc = gnutls_hash_fast(GNUTLS_DIG_SHA256, data, len, out);
    BGR_ASSERT(rc == 0);
}

void bgr_hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * n] = 0;
}

int bgr_kv_each(const char *text,
                int (*fn)(void *ctx, const char *name, const char *value, struct bgr_error *err),
                void *ctx, struct bgr_error *err)
{
    char pair[256];
    for (const char *p = text; p && *p;) {
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char *eq;
        if (len == 0 || len >= sizeof pair)
            return bgr_error_set(err, BGR_EINVALID_PARAMETER, "malformed entry at offset %zu",
                                 (size_t)(p - text));
        memcpy(pair, p, len);
        pair[len] = 0;
        eq = strchr(pair, '=');
        if (!eq)
            return bgr_error_set(err, BGR_EINVALID_PARAMETER, "'%.32s' has no value", pair);
        *eq = 0;
        int rc = fn(ctx, pair, eq + 1, err);
        if (rc)
            return rc;
        p = end ? end + 1 : NULL;
    }
    return 0;
}

const char *bgr_size_text(uint64_t bytes, char out[32])
{
    const uint64_t kb = 1024, mb = 1024 * 1024;
    if (bytes >= mb && bytes % mb == 0)
        (void)snprintf(out, 32, "%llu MB", (unsigned long long)(bytes / mb));
    else if (bytes >= mb)
        (void)snprintf(out, 32, "%.1f MB", (double)bytes / (double)mb);
    else if (bytes >= kb)
        (void)snprintf(out, 32, "%llu KB", (unsigned long long)((bytes + kb / 2) / kb));
    else
        (void)snprintf(out, 32, "%llu bytes", (unsigned long long)bytes);
    return out;
}

int bgr_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void bgr_sha256_hex(const void *data, size_t len, char out[65])
{
    uint8_t d[32];
    bgr_sha256(data, len, d);
    bgr_hex_encode(d, 32, out);
}

void bgr_hmac_sha256(const void *key, size_t klen, const void *data, size_t len, uint8_t out[32])
{
    int rc = gnutls_hmac_fast(GNUTLS_MAC_SHA256, key, klen, data, len, out);
    BGR_ASSERT(rc == 0);
}

void bgr_random_bytes(void *out, size_t n)
{
    uint8_t *p = out;
    while (n) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "bgremover: getrandom failed: %s\n", strerror(errno));
            abort();
        }
        p += got;
        n -= (size_t)got;
    }
}

bool bgr_ct_equal(const void *a, const void *b, size_t n)
{
    const volatile uint8_t *x = a, *y = b;
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= x[i] ^ y[i];
    return acc == 0;
}

int64_t bgr_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double bgr_now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int64_t bgr_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static enum bgr_log_level log_level = BGR_LOG_INFO;

void bgr_log_set_level(enum bgr_log_level lvl)
{
    log_level = lvl;
}

void bgr_log(enum bgr_log_level lvl, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    char line[2048];
    struct timespec ts;
    struct tm tm;
    size_t n;
    va_list ap;
    if (lvl < log_level)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof line - n, ".%03ldZ %s ", ts.tv_nsec / 1000000,
                          names[lvl]);
    va_start(ap, fmt);
    (void)vsnprintf(line + n, sizeof line - n, fmt, ap);
    va_end(ap);
    n = strlen(line);
    if (n >= sizeof line - 1)
        n = sizeof line - 2;
    line[n++] = '\n';
    (void)!write(STDERR_FILENO, line, n);
}
