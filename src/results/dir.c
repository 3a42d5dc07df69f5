/*
 * dir.c - the directory backend: <dir>/<key>, one file per result.
 *
 * A write is temp file + fsync + rename (bgr_file_write_atomic) and then an
 * fsync of the directory, so once put returns the name survives a power
 * cut, and a reader never sees a partial file. Temporary files are named
 * "<key>.tmp.XXXXXX"; a crash can leave one, and listing removes those old
 * enough that no write can still be going on. Files are opened with
 * O_NOFOLLOW: a symlink planted in the directory is never served.
 */
#define _GNU_SOURCE
#include "results/results_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct dir_impl {
    char *path;
};

static const char *dir_of(struct bgr_results *r)
{
    return ((struct dir_impl *)r->impl)->path;
}

static int dir_check(struct bgr_results *r, struct bgr_error *err)
{
    if (access(dir_of(r), W_OK | X_OK) != 0)
        return bgr_error_set(err, BGR_EIO, "results: directory %s is not writable: %s", dir_of(r),
                             strerror(errno));
    return 0;
}

static int dir_put(struct bgr_results *r, const char *key, const void *data, size_t len,
                   const char *content_type, struct bgr_error *err)
{
    char path[4200];
    int rc, dfd;
    (void)content_type;
    (void)snprintf(path, sizeof path, "%s/%s", dir_of(r), key);
    rc = bgr_file_write_atomic(path, data, len, err);
    if (rc)
        return rc;
    /* The rename is durable only once the directory is. */
    dfd = open(dir_of(r), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0)
        rc = bgr_error_set(err, BGR_EIO, "results: cannot sync %s: %s", dir_of(r), strerror(errno));
    if (dfd >= 0)
        close(dfd);
    if (rc)
        unlink(path);
    return rc;
}

static int dir_open_obj(struct bgr_results *r, const char *key, uint64_t max_bytes,
                        struct bgr_results_obj *out, struct bgr_error *err)
{
    char path[4200];
    struct stat st;
    int fd;
    (void)snprintf(path, sizeof path, "%s/%s", dir_of(r), key);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return bgr_error_set(err, BGR_ENOT_FOUND, "results: no object %s", key);
        return bgr_error_set(err, BGR_EIO, "results: cannot open %s: %s", path, strerror(errno));
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return bgr_error_set(err, BGR_EIO, "results: %s is not a regular file", path);
    }
    if (max_bytes && (uint64_t)st.st_size > max_bytes) {
        close(fd);
        return bgr_error_set(err, BGR_EFILE_TOO_LARGE, "results: %s is larger than expected", key);
    }
    out->fd = fd;
    out->size = (uint64_t)st.st_size;
    return 0;
}

static int dir_read(struct bgr_results *r, const char *key, size_t max_bytes, struct bgr_buf *out,
                    struct bgr_error *err)
{
    struct bgr_results_obj o;
    int rc = dir_open_obj(r, key, max_bytes, &o, err);
    size_t got = 0;
    if (rc)
        return rc;
    rc = bgr_buf_reserve(out, (size_t)o.size, err);
    while (!rc && got < o.size) {
        ssize_t n = pread(o.fd, out->data + got, (size_t)o.size - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            rc = bgr_error_set(err, BGR_EIO, "results: cannot read %s: %s", key,
                               n < 0 ? strerror(errno) : "file shrank");
        else
            got += (size_t)n;
    }
    close(o.fd);
    if (!rc)
        out->len = got;
    else
        bgr_buf_release(out);
    return rc;
}

static int dir_del(struct bgr_results *r, const char *key, struct bgr_error *err)
{
    char path[4200];
    (void)snprintf(path, sizeof path, "%s/%s", dir_of(r), key);
    if (unlink(path) != 0 && errno != ENOENT)
        return bgr_error_set(err, BGR_EIO, "results: cannot remove %s: %s", path, strerror(errno));
    return 0;
}

static int dir_list(struct bgr_results *r, int64_t now_ms, int64_t min_age_ms,
                    bgr_results_list_fn fn, void *ctx, struct bgr_error *err)
{
    DIR *d = opendir(dir_of(r));
    struct dirent *de;
    int rc = 0;
    if (!d)
        return bgr_error_set(err, BGR_EIO, "results: cannot list %s: %s", dir_of(r),
                             strerror(errno));
    while (!rc && (de = readdir(d)) != NULL) {
        struct stat sb;
        int64_t mtime_ms;
        if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode))
            continue;
        mtime_ms = (int64_t)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000;
        if (now_ms - mtime_ms < min_age_ms)
            continue;
        if (strstr(de->d_name, ".tmp.")) {
            /* Debris of a write interrupted by a crash. */
            if (unlinkat(dirfd(d), de->d_name, 0) != 0 && errno != ENOENT)
                bgr_log(BGR_LOG_WARN, "results: cannot remove %s/%s: %s", dir_of(r), de->d_name,
                        strerror(errno));
            continue;
        }
        if (bgr_results_key_valid(de->d_name))
            rc = fn(ctx, de->d_name, mtime_ms);
    }
    closedir(d);
    return rc;
}

static void dir_close(struct bgr_results *r)
{
    struct dir_impl *d = r->impl;
    if (d)
        free(d->path);
    free(d);
}

static const struct bgr_results_ops dir_ops = {
    .local = true,
    .check = dir_check,
    .put = dir_put,
    .open_obj = dir_open_obj,
    .read = dir_read,
    .del = dir_del,
    .list = dir_list,
    .close = dir_close,
};

int bgr_results_dir_open(struct bgr_results *r, const char *dir, struct bgr_error *err)
{
    struct dir_impl *d;
    size_t n = strlen(dir);
    int rc;
    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (n >= 4000)
        return bgr_error_set(err, BGR_EUSAGE, "results: directory path too long");
    d = bgr_xcalloc(1, sizeof(*d));
    d->path = bgr_xmalloc(n + 1);
    memcpy(d->path, dir, n);
    d->path[n] = 0;
    rc = bgr_mkdir_p(d->path, err);
    if (rc) {
        free(d->path);
        free(d);
        return rc;
    }
    r->impl = d;
    r->ops = &dir_ops;
    return 0;
}
