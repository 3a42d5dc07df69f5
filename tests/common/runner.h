/*
 * runner.h - the tiny in-tree test runner. A test file defines its tests
 * with BGR_TEST(name) { ... } and ends with BGR_TEST_MAIN(). Checks record a
 * failure and go on; BGR_REQUIRE stops the current test. The last line
 * printed is "N passed, N failed" (which CI reads). `./test NAME...` runs
 * only the named tests. Each test is one function; tests share nothing.
 */
#ifndef BGR_TEST_RUNNER_H
#define BGR_TEST_RUNNER_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*bgr_test_fn)(void);
struct bgr_test_case {
    const char *name;
    bgr_test_fn fn;
};

#define BGR_TEST_MAX 512
static struct bgr_test_case bgr_tests_[BGR_TEST_MAX];
static int bgr_ntests_;
static int bgr_test_failed_; /* failures in the current test */

static inline void bgr_test_register_(const char *name, bgr_test_fn fn)
{
    if (bgr_ntests_ < BGR_TEST_MAX)
        bgr_tests_[bgr_ntests_++] = (struct bgr_test_case){name, fn};
}

#define BGR_TEST(name)                                                           \
    static void test_##name(void);                                               \
    __attribute__((constructor)) static void register_##name(void)               \
    {                                                                            \
        bgr_test_register_(#name, test_##name);                                  \
    }                                                                            \
    static void test_##name(void)

#define BGR_CHECK(cond)                                                          \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "  %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            bgr_test_failed_++;                                                  \
        }                                                                        \
    } while (0)

#define BGR_REQUIRE(cond)                                                        \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "  %s:%d: requirement failed: %s\n", __FILE__, __LINE__, #cond); \
            bgr_test_failed_++;                                                  \
            return;                                                              \
        }                                                                        \
    } while (0)

#define BGR_CHECK_EQ_INT(a, b)                                                   \
    do {                                                                         \
        long long a_ = (long long)(a), b_ = (long long)(b);                      \
        if (a_ != b_) {                                                          \
            fprintf(stderr, "  %s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, #a, \
                    #b, a_, b_);                                                 \
            bgr_test_failed_++;                                                  \
        }                                                                        \
    } while (0)

#define BGR_CHECK_STR(a, b)                                                      \
    do {                                                                         \
        const char *a_ = (a), *b_ = (b);                                         \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                 \
            fprintf(stderr, "  %s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__,   \
                    a_ ? a_ : "(null)", b_ ? b_ : "(null)");                     \
            bgr_test_failed_++;                                                  \
        }                                                                        \
    } while (0)

#define BGR_CHECK_NEAR(a, b, tol)                                                \
    do {                                                                         \
        double a_ = (double)(a), b_ = (double)(b);                               \
        if (!(fabs(a_ - b_) <= (tol))) {                                         \
            fprintf(stderr, "  %s:%d: |%s - %s| <= %g failed: %g vs %g\n", __FILE__, __LINE__, \
                    #a, #b, (double)(tol), a_, b_);                              \
            bgr_test_failed_++;                                                  \
        }                                                                        \
    } while (0)

static inline int bgr_test_selected_(int argc, char **argv, const char *name)
{
    if (argc <= 1)
        return 1;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return 1;
    return 0;
}

#define BGR_TEST_MAIN()                                                          \
    int main(int argc, char **argv)                                              \
    {                                                                            \
        int passed = 0, failed = 0;                                              \
        for (int i = 0; i < bgr_ntests_; i++) {                                  \
            if (!bgr_test_selected_(argc, argv, bgr_tests_[i].name))             \
                continue;                                                        \
            bgr_test_failed_ = 0;                                                \
            fprintf(stderr, "[ RUN  ] %s\n", bgr_tests_[i].name);                \
            bgr_tests_[i].fn();                                                  \
            if (bgr_test_failed_) {                                              \
                failed++;                                                        \
                fprintf(stderr, "[ FAIL ] %s\n", bgr_tests_[i].name);            \
            } else {                                                             \
                passed++;                                                        \
                fprintf(stderr, "[  OK  ] %s\n", bgr_tests_[i].name);            \
            }                                                                    \
        }                                                                        \
        printf("%d passed, %d failed\n", passed, failed);                        \
        return failed ? 1 : 0;                                                   \
    }

/* Registers a unit-test binary built from the given sources with CTest:
 * see tests/unit/core/CMakeLists.txt for the CMake side. */

#endif
