/*
 * tmp_dir.h - a fresh temporary directory per test and its removal, for
 * the unit tests that work on files (store, results, jobs). Header-only;
 * the including file defines _GNU_SOURCE (nftw's FTW_PHYS) first.
 */
#ifndef BGR_TEST_TMP_DIR_H
#define BGR_TEST_TMP_DIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static inline int bgr_test_rm_one_(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

/* Removes dir and everything below it (links are not followed). */
static inline void rm_rf(const char *dir)
{
    nftw(dir, bgr_test_rm_one_, 16, FTW_DEPTH | FTW_PHYS);
}

/* A new empty directory /tmp/bgr-NAME-XXXXXX (malloc'd path; the caller
 * frees it). Aborts if none can be made: no test can run without it. */
static inline char *tmp_dir_named(const char *name)
{
    char *d = NULL;
    if (asprintf(&d, "/tmp/bgr-%s-XXXXXX", name) < 0 || !mkdtemp(d)) {
        perror("mkdtemp");
        abort();
    }
    return d;
}

#endif
