/*
 * err.c - tables generated from BGR_ERRORS and the helpers that fill
 * struct bgr_error.
 */
#include "core/err.h"

#include <stdio.h>
#include <string.h>

#undef bgr_error_set /* err.h's model for the analyzer is not for the definitions */
#undef bgr_error_vset

struct err_row {
    const char *name;
    const char *code;
    int status;
    const char *msg;
};

static const struct err_row err_rows[] = {
#define BGR_X_ROW(name, code, status, msg) {#name, code, status, msg},
    BGR_ERRORS(BGR_X_ROW)
#undef BGR_X_ROW
};

static const struct err_row *err_row_of(int err)
{
    int i = err - (BGR_E__FIRST + 1);
    if (i < 0 || (size_t)i >= sizeof err_rows / sizeof err_rows[0])
        return NULL;
    return &err_rows[i];
}

const char *bgr_err_code(int err)
{
    const struct err_row *r = err_row_of(err);
    return r ? r->code : "INTERNAL_ERROR";
}

const char *bgr_err_name(int err)
{
    const struct err_row *r = err_row_of(err);
    return r ? r->name : "INTERNAL";
}

int bgr_err_http_status(int err)
{
    const struct err_row *r = err_row_of(err);
    return r ? r->status : 500;
}

const char *bgr_err_default_msg(int err)
{
    const struct err_row *r = err_row_of(err);
    return r ? r->msg : "Internal error";
}

int bgr_error_vset(struct bgr_error *e, int code, const char *fmt, va_list ap)
{
    if (e) {
        e->code = code;
        if (fmt)
            (void)vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        else
            (void)snprintf(e->msg, sizeof e->msg, "%s", bgr_err_default_msg(code));
    }
    return code;
}

int bgr_error_set(struct bgr_error *e, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bgr_error_vset(e, code, fmt, ap);
    va_end(ap);
    return code;
}

void bgr_error_clear(struct bgr_error *e)
{
    if (e) {
        e->code = BGR_OK;
        e->msg[0] = '\0';
    }
}

void bgr_error_prefix(struct bgr_error *e, const char *fmt, ...)
{
    char old[BGR_ERROR_MSG_MAX];
    size_t n;
    va_list ap;
    if (!e)
        return;
    memcpy(old, e->msg, sizeof old);
    va_start(ap, fmt);
    (void)vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    n = strlen(e->msg);
    if (n + 2 < sizeof e->msg) {
        memcpy(e->msg + n, ": ", 2);
        n += 2;
        /* truncation of the old detail is acceptable: the prefix matters most */
        memccpy(e->msg + n, old, 0, sizeof e->msg - n - 1);
        e->msg[sizeof e->msg - 1] = 0;
    }
}
