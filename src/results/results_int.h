/*
 * results_int.h - internals shared by the results module's files: the
 * backend table and the S3 listing parser (exposed for its unit test). Not
 * part of the module's interface.
 */
#ifndef BGR_RESULTS_RESULTS_INT_H
#define BGR_RESULTS_RESULTS_INT_H

#include <stdatomic.h>

#include "results/results.h"

/* One backend. Keys reaching these are valid (checked in results.c). */
struct bgr_results_ops {
    bool local; /* checking it costs no network round trip (bgr_results_healthy) */
    int (*check)(struct bgr_results *r, struct bgr_error *err);
    int (*put)(struct bgr_results *r, const char *key, const void *data, size_t len,
               const char *content_type, struct bgr_error *err);
    int (*open_obj)(struct bgr_results *r, const char *key, uint64_t max_bytes,
                    struct bgr_results_obj *out, struct bgr_error *err);
    int (*read)(struct bgr_results *r, const char *key, size_t max_bytes, struct bgr_buf *out,
                struct bgr_error *err);
    int (*del)(struct bgr_results *r, const char *key, struct bgr_error *err);
    int (*list)(struct bgr_results *r, int64_t now_ms, int64_t min_age_ms, bgr_results_list_fn fn,
                void *ctx, struct bgr_error *err);
    void (*close)(struct bgr_results *r);
};

struct bgr_results {
    const struct bgr_results_ops *ops;
    char *location;     /* as given (no credentials ever appear in it) */
    atomic_bool failed; /* the last request failed (bgr_results_healthy) */
    void *impl;         /* the backend's state */
};

int bgr_results_dir_open(struct bgr_results *r, const char *dir, struct bgr_error *err);
int bgr_results_s3_open(struct bgr_results *r, const char *bucket, const char *prefix,
                        const struct bgr_results_opts *o, struct bgr_error *err);

/* ---- ListObjectsV2 response (s3_xml.c) -------------------------------------- */
/* Called per <Contents> with its Key (entity-decoded) and LastModified. */
typedef int (*bgr_s3_list_entry_fn)(void *ctx, const char *key, int64_t mtime_ms);
/* Parses one ListObjectsV2 page (len bytes, need not be NUL-terminated):
 * calls fn per object, and copies NextContinuationToken into next (n
 * bytes; "" when the listing is complete: IsTruncated false). A non-zero
 * return of fn stops and is returned. Errors: BGR_EIO (malformed: a
 * missing Key or LastModified, an unterminated element, a token too long). */
int bgr_s3_list_parse(const char *xml, size_t len, bgr_s3_list_entry_fn fn, void *ctx, char *next,
                      size_t n, struct bgr_error *err);
/* "2026-12-05T15:51:40.000Z" (fraction optional) to UNIX ms; -1 if malformed. */
int64_t bgr_s3_time_parse(const char *s, size_t len);

#endif
