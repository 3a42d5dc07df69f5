/*
 * fuzz.h - what every fuzz target shares. A target is one function,
 * LLVMFuzzerTestOneInput, fed by libFuzzer (BGR_FUZZ builds, clang) or by
 * replay.c (every build: replays the committed seed corpus under CTest).
 * Targets must not leak, must not write outside $TMPDIR and must treat a
 * refused input as success: only a crash, a sanitizer report or a broken
 * invariant (BGR_ASSERT / fuzz_check) is a finding.
 */
#ifndef BGR_FUZZ_FUZZ_H
#define BGR_FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property the code under test promises; abort() so that libFuzzer and
 * replay both stop on it with the input saved. */
#define fuzz_check(cond)                                                                    \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "%s:%d: fuzz_check failed: %s\n", __FILE__, __LINE__, #cond);   \
            abort();                                                                        \
        }                                                                                   \
    } while (0)

/* Splits data at the first '\n': *head gets a malloc'd NUL-terminated copy of
 * the first line (caller frees), *rest and *rest_len the bytes after it. Returns
 * 0, or -1 when out of memory. */
static inline int fuzz_split_line(const uint8_t *data, size_t size, char **head,
                                  const uint8_t **rest, size_t *rest_len)
{
    size_t n = 0;
    while (n < size && data[n] != '\n')
        n++;
    *head = malloc(n + 1);
    if (!*head)
        return -1;
    for (size_t i = 0; i < n; i++)
        (*head)[i] = (char)data[i];
    (*head)[n] = '\0';
    *rest = data + (n < size ? n + 1 : n);
    *rest_len = n < size ? size - n - 1 : 0;
    return 0;
}

/* A NUL-terminated malloc'd copy of data (embedded NULs kept, so the string
 * may look shorter than size, as it would to C code after a decoder). */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return NULL;
    for (size_t i = 0; i < size; i++)
        s[i] = (char)data[i];
    s[size] = '\0';
    return s;
}

#endif
