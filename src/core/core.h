/*
 * core.h - the public header of src/core: errors, memory, byte buffers,
 * arenas, files, hashing, time and logging. Everything else in bgremover
 * builds on this module; it depends on libc and GnuTLS (for SHA-256/HMAC)
 * only and knows nothing of images, models or HTTP.
 */
#ifndef BGR_CORE_CORE_H
#define BGR_CORE_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* ---- memory ------------------------------------------------------------
 * bgr_x* abort on exhaustion: use them only for small allocations whose size
 * we control. Anything sized by client input goes through a checked path
 * (bgr_buf with a cap, or malloc with an explicit error). */
void *bgr_xmalloc(size_t n);
void *bgr_xcalloc(size_t n, size_t size);
void *bgr_xrealloc(void *p, size_t n);
char *bgr_xstrdup(const char *s);
#define BGR_FREE_AND_NULL(p)                                                                       \
    do {                                                                                           \
        free(p);                                                                                   \
        (p) = NULL;                                                                                \
    } while (0)
#define BGR_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Assertions that stay on in release builds: for our own invariants only,
 * never for client input. */
#define BGR_ASSERT(cond) ((cond) ? (void)0 : bgr_assert_fail(#cond, __FILE__, __LINE__, __func__))
_Noreturn void bgr_assert_fail(const char *expr, const char *file, int line, const char *func);

/* ---- growable byte buffer ----------------------------------------------
 * Owns data. cap_limit (0 = none) bounds growth: appends past it fail with
 * BGR_EFILE_TOO_LARGE instead of growing, so client-sized data is bounded. */
struct bgr_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    size_t cap_limit;
};
void bgr_buf_init(struct bgr_buf *b, size_t cap_limit);
void bgr_buf_release(struct bgr_buf *b); /* frees data, keeps cap_limit */
int bgr_buf_reserve(struct bgr_buf *b, size_t extra, struct bgr_error *err);
int bgr_buf_append(struct bgr_buf *b, const void *p, size_t n, struct bgr_error *err);
int bgr_buf_appendf(struct bgr_buf *b, struct bgr_error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Hands the data to the caller (who frees it) and leaves b empty. */
uint8_t *bgr_buf_detach(struct bgr_buf *b, size_t *len);

/* ---- arena -------------------------------------------------------------
 * A bump allocator for request-scoped memory: everything is freed at once by
 * bgr_arena_release. Allocations are 16-byte aligned. Returns NULL when the
 * arena's limit (0 = none) would be exceeded or memory is exhausted. */
struct bgr_arena_block;
struct bgr_arena {
    struct bgr_arena_block *head;
    size_t used_total;
    size_t limit;
};
void bgr_arena_init(struct bgr_arena *a, size_t limit);
void *bgr_arena_alloc(struct bgr_arena *a, size_t n);
char *bgr_arena_strdup(struct bgr_arena *a, const char *s);
char *bgr_arena_strndup(struct bgr_arena *a, const char *s, size_t n);
void bgr_arena_release(struct bgr_arena *a);

/* ---- files -------------------------------------------------------------- */
/* Reads a whole file into *out (caller releases). Files over max_len bytes
 * (0 = no limit) fail with BGR_EFILE_TOO_LARGE. "-" reads stdin. */
int bgr_file_read(const char *path, size_t max_len, struct bgr_buf *out, struct bgr_error *err);
/* Writes data to path atomically: a temporary file in the same directory,
 * fsync, rename. A crash or full disk never leaves a partial file at path.
 * "-" writes stdout. */
int bgr_file_write_atomic(const char *path, const void *data, size_t len, struct bgr_error *err);
/* mkdir -p with mode 0755 for new directories. */
int bgr_mkdir_p(const char *path, struct bgr_error *err);

/* ---- hashing (GnuTLS) --------------------------------------------------- */
void bgr_sha256(const void *data, size_t len, uint8_t out[32]);
void bgr_sha256_hex(const void *data, size_t len, char out[65]);
void bgr_hmac_sha256(const void *key, size_t klen, const void *data, size_t len, uint8_t out[32]);
void bgr_hex_encode(const uint8_t *in, size_t n, char *out); /* out holds 2n+1 */
/* The value of one hex digit (either case), -1 for anything else. */
int bgr_hex_digit(char c);
/* Fills out with n bytes from the OS's CSPRNG (getrandom). Aborts if the OS
 * cannot give randomness: nothing secure can continue without it. */
void bgr_random_bytes(void *out, size_t n);
/* Constant-time comparison of two equal-length byte strings. */
bool bgr_ct_equal(const void *a, const void *b, size_t n);

/* ---- time --------------------------------------------------------------- */
int64_t bgr_now_ms(void);  /* monotonic clock, milliseconds */
int64_t bgr_wall_ms(void); /* UNIX time, milliseconds */
double bgr_now_sec(void);  /* monotonic clock, seconds, for timings */

/* ---- logging ------------------------------------------------------------
 * One line per call to stderr, prefixed with UTC time and level. Never pass
 * secrets (API keys) to it. Thread-safe (one write(2) per line). */
enum bgr_log_level { BGR_LOG_DEBUG, BGR_LOG_INFO, BGR_LOG_WARN, BGR_LOG_ERROR };
void bgr_log_set_level(enum bgr_log_level lvl);
void bgr_log(enum bgr_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
