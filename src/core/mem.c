/*
 * mem.c - aborting allocators for small fixed sizes, the growable byte
 * buffer and the request arena.
 */
#include "core/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Noreturn void bgr_assert_fail(const char *expr, const char *file, int line, const char *func)
{
    fprintf(stderr, "bgremover: assertion failed: %s (%s:%d, %s)\n", expr, file, line, func);
    abort();
}

static _Noreturn void oom(size_t n)
{
    fprintf(stderr, "bgremover: out of memory allocating %zu bytes\n", n);
    abort();
}

void *bgr_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *bgr_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom(n * size);
    return p;
}

void *bgr_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *bgr_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = bgr_xmalloc(n);
    memcpy(d, s, n);
    return d;
}

void bgr_buf_init(struct bgr_buf *b, size_t cap_limit)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->cap_limit = cap_limit;
}

void bgr_buf_release(struct bgr_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

int bgr_buf_reserve(struct bgr_buf *b, size_t extra, struct bgr_error *err)
{
    size_t need, ncap;
    uint8_t *nd;
    if (extra > SIZE_MAX - b->len - 1)
        return bgr_error_set(err, BGR_EFILE_TOO_LARGE, "buffer size overflow");
    need = b->len + extra + 1; /* room for a terminating NUL */
    if (b->cap_limit && b->len + extra > b->cap_limit)
        return bgr_error_set(err, BGR_EFILE_TOO_LARGE, "data exceeds the limit of %zu bytes",
                             b->cap_limit);
    if (need <= b->cap)
        return 0;
    ncap = b->cap ? b->cap : 256;
    while (ncap < need)
        ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
    if (b->cap_limit && ncap > b->cap_limit + 1)
        ncap = need > b->cap_limit + 1 ? need : b->cap_limit + 1;
    nd = realloc(b->data, ncap);
    if (!nd)
        return bgr_error_set(err, BGR_ENOMEM, "out of memory growing a buffer to %zu bytes", ncap);
    b->data = nd;
    b->cap = ncap;
    return 0;
}

int bgr_buf_append(struct bgr_buf *b, const void *p, size_t n, struct bgr_error *err)
{
    int rc = bgr_buf_reserve(b, n, err);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

int bgr_buf_appendf(struct bgr_buf *b, struct bgr_error *err, const char *fmt, ...)
{
    va_list ap;
    int n, rc;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return bgr_error_set(err, BGR_EINTERNAL, "bad format");
    rc = bgr_buf_reserve(b, (size_t)n, err);
    if (rc)
        return rc;
    va_start(ap, fmt);
    (void)vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

uint8_t *bgr_buf_detach(struct bgr_buf *b, size_t *len)
{
    uint8_t *d = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return d;
}

/* ---- arena ---- */

struct bgr_arena_block {
    struct bgr_arena_block *next;
    size_t size;
    size_t used;
    _Alignas(16) unsigned char mem[];
};

#define ARENA_BLOCK_MIN (16 * 1024)

void bgr_arena_init(struct bgr_arena *a, size_t limit)
{
    a->head = NULL;
    a->used_total = 0;
    a->limit = limit;
}

void *bgr_arena_alloc(struct bgr_arena *a, size_t n)
{
    struct bgr_arena_block *blk = a->head;
    size_t rounded = (n + 15) & ~(size_t)15;
    void *p;
    if (rounded < n)
        return NULL;
    if (a->limit && (rounded > a->limit || a->used_total > a->limit - rounded))
        return NULL;
    if (!blk || blk->size - blk->used < rounded) {
        size_t size = rounded > ARENA_BLOCK_MIN ? rounded : ARENA_BLOCK_MIN;
        blk = malloc(sizeof *blk + size);
        if (!blk)
            return NULL;
        blk->size = size;
        blk->used = 0;
        blk->next = a->head;
        a->head = blk;
    }
    p = blk->mem + blk->used;
    blk->used += rounded;
    a->used_total += rounded;
    return p;
}

char *bgr_arena_strndup(struct bgr_arena *a, const char *s, size_t n)
{
    char *d = bgr_arena_alloc(a, n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

char *bgr_arena_strdup(struct bgr_arena *a, const char *s)
{
    return bgr_arena_strndup(a, s, strlen(s));
}

void bgr_arena_release(struct bgr_arena *a)
{
    struct bgr_arena_block *blk = a->head;
    while (blk) {
        struct bgr_arena_block *next = blk->next;
        free(blk);
        blk = next;
    }
    a->head = NULL;
    a->used_total = 0;
}
