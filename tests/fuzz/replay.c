/*
 * replay.c - main() for the plain (non-libFuzzer) build of a fuzz target:
 * runs LLVMFuzzerTestOneInput once on every file named on the command line
 * or found (one level deep) in a directory named there. CTest runs it on
 * the committed corpus, so every input that ever crashed stays a
 * regression test in `make test` with gcc and without sanitizers, and with
 * them in `make test-asan`.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/core.h"
#include "fuzz.h"

static int run_file(const char *path, size_t *count)
{
    struct bgr_buf b;
    struct bgr_error e = {0};
    bgr_buf_init(&b, 0);
    if (bgr_file_read(path, 64u << 20, &b, &e) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, e.msg);
        bgr_buf_release(&b);
        return -1;
    }
    LLVMFuzzerTestOneInput(b.data ? b.data : (const uint8_t *)"", b.len);
    bgr_buf_release(&b);
    (*count)++;
    return 0;
}

int main(int argc, char **argv)
{
    size_t count = 0;
    int failed = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s: not found\n", argv[i]);
            failed = 1;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            failed |= run_file(argv[i], &count) != 0;
            continue;
        }
        DIR *d = opendir(argv[i]);
        if (!d) {
            failed = 1;
            continue;
        }
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (de->d_name[0] == '.')
                continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], de->d_name);
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
                failed |= run_file(path, &count) != 0;
        }
        closedir(d);
    }
    printf("replayed %zu inputs\n", count);
    if (count == 0) {
        fprintf(stderr, "replay: no input found\n");
        return 1;
    }
    return failed;
}
