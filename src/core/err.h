/*
 * err.h - the one error convention of bgremover.
 *
 * Every fallible function returns 0 on success or a negative enum bgr_err,
 * and writes a human-readable detail into a caller-owned struct bgr_error
 * (never a global). The function that detects an error writes the message;
 * callers only propagate it. BGR_ERRORS is the single list from which the
 * enum, the stable API code names, the HTTP statuses and the default
 * messages are generated (docs/ERRORS.md is generated from it too).
 *
 * Thread-safety: everything here is reentrant.
 */
#ifndef BGR_CORE_ERR_H
#define BGR_CORE_ERR_H

#include <stdarg.h>
#include <stddef.h>

/* X(enum suffix, API code, HTTP status, default message) */
#define BGR_ERRORS(X)                                                                              \
    X(INVALID_PARAMETER, "INVALID_PARAMETER", 400, "A request parameter is invalid")               \
    X(MISSING_IMAGE, "MISSING_IMAGE", 400, "No image was given")                                   \
    X(MULTIPLE_SOURCES, "MULTIPLE_SOURCES", 400, "Give either an image file or a URL")             \
    X(INVALID_JSON, "INVALID_JSON", 400, "The request body is not valid JSON")                     \
    X(BATCH_TOO_LARGE, "BATCH_TOO_LARGE", 400, "A batch holds 1 to 20 images")                     \
    X(IMAGE_DOWNLOAD_FAILED, "IMAGE_DOWNLOAD_FAILED", 400, "The image could not be fetched")       \
    X(RESOLUTION_TOO_HIGH, "RESOLUTION_TOO_HIGH", 400, "The image has too many pixels")            \
    X(UNAUTHORIZED, "UNAUTHORIZED", 401, "Missing or invalid API key")                             \
    X(INSUFFICIENT_CREDITS, "INSUFFICIENT_CREDITS", 402, "No credits left this month")             \
    X(NOT_FOUND, "NOT_FOUND", 404, "Not found")                                                    \
    X(METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", 405, "Method not allowed")                         \
    X(FILE_TOO_LARGE, "FILE_TOO_LARGE", 413, "The image exceeds the maximum file size")            \
    X(UNSUPPORTED_FORMAT, "UNSUPPORTED_FORMAT", 415, "Unsupported or unreadable image")            \
    X(IDEMPOTENCY_KEY_REUSED, "IDEMPOTENCY_KEY_REUSED", 409,                                       \
      "This Idempotency-Key was used for another request")                                         \
    X(IDEMPOTENCY_KEY_IN_PROGRESS, "IDEMPOTENCY_KEY_IN_PROGRESS", 409,                             \
      "A request with this Idempotency-Key is still running")                                      \
    X(RATE_LIMITED, "RATE_LIMITED", 429, "Rate limit exceeded")                                    \
    X(DAILY_LIMIT_EXCEEDED, "DAILY_LIMIT_EXCEEDED", 429, "Daily limit exceeded")                   \
    X(INTERNAL, "INTERNAL_ERROR", 500, "Internal error")                                           \
    X(NOMEM, "INTERNAL_ERROR", 500, "Out of memory")                                               \
    X(IO, "INTERNAL_ERROR", 500, "I/O error")                                                      \
    X(MODEL, "INTERNAL_ERROR", 500, "The model is invalid or unsupported")                         \
    X(SHAPE, "INVALID_PARAMETER", 400, "Tensor shape mismatch")                                    \
    X(USAGE, "INVALID_PARAMETER", 400, "Invalid usage")                                            \
    X(SERVICE_BUSY, "SERVICE_BUSY", 503, "The server is busy, retry later")                        \
    X(PROCESSING_TIMEOUT, "PROCESSING_TIMEOUT", 422,                                               \
      "The image took longer than the server's processing time limit")

enum bgr_err {
    BGR_OK = 0,
#define BGR_X_ENUM(name, code, status, msg) BGR_E##name,
    BGR_E__FIRST = -1000,
    /* The X-macro expansion ends without a comma: formatted by hand. */
    /* clang-format off */
    BGR_ERRORS(BGR_X_ENUM)
#undef BGR_X_ENUM
    BGR_E__LAST
    /* clang-format on */
};

#define BGR_ERROR_MSG_MAX 512

/* Detail of the last error, owned by the caller (usually on its stack). */
struct bgr_error {
    enum bgr_err code;
    char msg[BGR_ERROR_MSG_MAX];
};

/* Stable upper-case API code ("INVALID_PARAMETER"); "INTERNAL_ERROR" for unknown values. */
const char *bgr_err_code(int err);
/* Symbolic name of the enum value ("EINVALID_PARAMETER" without the prefix). */
const char *bgr_err_name(int err);
/* HTTP status of an error code (500 for unknown values). */
int bgr_err_http_status(int err);
/* Default message of an error code. */
const char *bgr_err_default_msg(int err);

/*
 * Records code and a printf-style detail in *e (e may be NULL) and returns code,
 * so detectors can write `return bgr_error_set(e, BGR_EIO, "read %s: %s", ...)`.
 */
int bgr_error_set(struct bgr_error *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int bgr_error_vset(struct bgr_error *e, int code, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
#ifdef __clang_analyzer__
/* For clang-tidy's static analyzer only: it cannot see into err.c that the
 * setters return their code, so it would follow `return bgr_error_set(...)`
 * as a success and report the caller's unset out-parameters. */
#define bgr_error_set(e, code, ...) (bgr_error_set((e), (code), __VA_ARGS__), (code))
#define bgr_error_vset(e, code, fmt, ap) (bgr_error_vset((e), (code), (fmt), (ap)), (code))
#endif
/* Clears *e to BGR_OK and an empty message. */
void bgr_error_clear(struct bgr_error *e);
/* Prepends "prefix: " to the message already in *e (context added by a caller). */
void bgr_error_prefix(struct bgr_error *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
