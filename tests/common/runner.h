/*
 * runner.h - the tiny in-tree test runner. A test file defines its tests
 * with BGR_TEST(name) { ... } and ends with BGR_TEST_MAIN(). Checks record a
 * failure and go on; BGR_REQUIRE stops the current test. The last line
 * printed is "N passed, N failed" (which CI reads). `./test NAME...` runs
 * only the named tests. Each test is one function; tests share nothing.
 *
 * Each test runs in a child process of its own, with a time limit: a test
 * that hangs is killed and reported as "[ FAIL ] NAME: timed out after N s",
 * one that crashes as "[ FAIL ] NAME: killed by signal ...", and the tests
 * after it still run. The limit is BGR_TEST_TIMEOUT seconds (default 300; a
 * test file may #define its own before including this header), overridden by
 * the environment variable BGR_TEST_TIMEOUT (0: no limit). The parent runs no
 * test code, so it stays single-threaded and fork() is safe under ASan and
 * TSan. BGR_TEST_FORK=0 in the environment runs the tests in the one
 * process instead (for a debugger), and so does #define BGR_TEST_FORK 0 in
 * a test file whose tests share state on purpose (test_e2e's loaded models);
 * then a timeout ends the whole binary after naming the test.
 */
#ifndef BGR_TEST_RUNNER_H
#define BGR_TEST_RUNNER_H

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef BGR_TEST_TIMEOUT
#define BGR_TEST_TIMEOUT 300 /* seconds per test */
#endif
#ifndef BGR_TEST_FORK
#define BGR_TEST_FORK 1 /* each test in a child of its own */
#endif

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

#define BGR_TEST(name)                                                                             \
    static void test_##name(void);                                                                 \
    __attribute__((constructor)) static void register_##name(void)                                 \
    {                                                                                              \
        bgr_test_register_(#name, test_##name);                                                    \
    }                                                                                              \
    static void test_##name(void)

#define BGR_CHECK(cond)                                                                            \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "  %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);             \
            bgr_test_failed_++;                                                                    \
        }                                                                                          \
    } while (0)

#define BGR_REQUIRE(cond)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "  %s:%d: requirement failed: %s\n", __FILE__, __LINE__, #cond);       \
            bgr_test_failed_++;                                                                    \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define BGR_CHECK_EQ_INT(a, b)                                                                     \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_) {                                                                            \
            fprintf(stderr, "  %s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, #a,    \
                    #b, a_, b_);                                                                   \
            bgr_test_failed_++;                                                                    \
        }                                                                                          \
    } while (0)

#define BGR_CHECK_STR(a, b)                                                                        \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                                   \
            fprintf(stderr, "  %s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__, a_ ? a_ : "(null)", \
                    b_ ? b_ : "(null)");                                                           \
            bgr_test_failed_++;                                                                    \
        }                                                                                          \
    } while (0)

#define BGR_CHECK_NEAR(a, b, tol)                                                                  \
    do {                                                                                           \
        double a_ = (double)(a), b_ = (double)(b);                                                 \
        if (!(fabs(a_ - b_) <= (tol))) {                                                           \
            fprintf(stderr, "  %s:%d: |%s - %s| <= %g failed: %g vs %g\n", __FILE__, __LINE__, #a, \
                    #b, (double)(tol), a_, b_);                                                    \
            bgr_test_failed_++;                                                                    \
        }                                                                                          \
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

static inline double bgr_test_now_(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* In-process mode only: the message the SIGALRM handler writes (prepared
 * before the test starts, since the handler may only call write/_exit). */
static char bgr_test_timeout_msg_[512];
static void bgr_test_on_alarm_(int sig)
{
    (void)sig;
    ssize_t r = write(2, bgr_test_timeout_msg_, strlen(bgr_test_timeout_msg_));
    (void)r;
    _exit(1);
}

/* Runs one test in-process (fork_it 0) or in a child of its own, waiting at
 * most `timeout` seconds (0: no limit). Returns 1 if it passed; on failure
 * writes why into why[] (empty when the checks themselves failed). */
static inline int bgr_test_run_one_(const struct bgr_test_case *t, int fork_it, unsigned timeout,
                                    int passed, int failed, char *why, size_t why_len)
{
    why[0] = 0;
    bgr_test_failed_ = 0;
    if (!fork_it) {
        snprintf(bgr_test_timeout_msg_, sizeof bgr_test_timeout_msg_,
                 "[ FAIL ] %s: timed out after %u s\n%d passed, %d failed\n", t->name, timeout,
                 passed, failed + 1);
        signal(SIGALRM, bgr_test_on_alarm_);
        alarm(timeout);
        t->fn();
        alarm(0);
        return bgr_test_failed_ == 0;
    }
    sigset_t chld, old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &old); /* so sigtimedwait sees the child's exit */
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, why_len, "fork: %s", strerror(errno));
        sigprocmask(SIG_SETMASK, &old, NULL);
        return 0;
    }
    if (pid == 0) {
        setpgid(0, 0); /* its own group: a timeout kills what it started too */
        sigprocmask(SIG_SETMASK, &old, NULL);
        t->fn();
        fflush(stdout);
        exit(bgr_test_failed_ ? 1 : 0); /* exit, not _exit: leak checkers run */
    }
    setpgid(pid, pid);
    double deadline = bgr_test_now_() + timeout;
    int status = 0;
    pid_t r;
    while ((r = waitpid(pid, &status, WNOHANG)) == 0) {
        double left = deadline - bgr_test_now_();
        if (timeout && left <= 0) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            snprintf(why, why_len, "timed out after %u s", timeout);
            break;
        }
        /* Wake on SIGCHLD (any child: then check again), or at the deadline. */
        struct timespec ts = {1, 0};
        if (timeout)
            ts = (struct timespec){(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
        sigtimedwait(&chld, NULL, &ts);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (why[0])
        return 0;
    if (r < 0) {
        snprintf(why, why_len, "waitpid: %s", strerror(errno));
        return 0;
    }
    if (WIFSIGNALED(status)) {
        snprintf(why, why_len, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
        return 0;
    }
    if (WEXITSTATUS(status) > 1)
        snprintf(why, why_len, "exited with status %d", WEXITSTATUS(status));
    return WEXITSTATUS(status) == 0;
}

/* The per-test limit: $BGR_TEST_TIMEOUT if set (0: none), else the
 * binary's BGR_TEST_TIMEOUT. */
static inline unsigned bgr_test_timeout_(void)
{
    const char *env = getenv("BGR_TEST_TIMEOUT");
    if (env && *env) {
        char *end;
        unsigned long v = strtoul(env, &end, 10);
        if (*end == 0 && v <= 86400)
            return (unsigned)v;
        fprintf(stderr, "BGR_TEST_TIMEOUT=%s: not a number of seconds; using %u\n", env,
                (unsigned)BGR_TEST_TIMEOUT);
    }
    return BGR_TEST_TIMEOUT;
}

#define BGR_TEST_MAIN()                                                                            \
    int main(int argc, char **argv)                                                                \
    {                                                                                              \
        int passed = 0, failed = 0;                                                                \
        unsigned timeout = bgr_test_timeout_();                                                    \
        const char *fork_env = getenv("BGR_TEST_FORK");                                            \
        int fork_it = fork_env && *fork_env ? strcmp(fork_env, "0") != 0 : BGR_TEST_FORK;          \
        for (int i = 0; i < bgr_ntests_; i++) {                                                    \
            char why[256];                                                                         \
            if (!bgr_test_selected_(argc, argv, bgr_tests_[i].name))                               \
                continue;                                                                          \
            fprintf(stderr, "[ RUN  ] %s\n", bgr_tests_[i].name);                                  \
            double t0_ = bgr_test_now_();                                                          \
            if (bgr_test_run_one_(&bgr_tests_[i], fork_it, timeout, passed, failed, why,           \
                                  sizeof why)) {                                                   \
                passed++;                                                                          \
                fprintf(stderr, "[  OK  ] %s (%.2f s)\n", bgr_tests_[i].name,                      \
                        bgr_test_now_() - t0_);                                                    \
            } else {                                                                               \
                failed++;                                                                          \
                fprintf(stderr, "[ FAIL ] %s%s%s (%.2f s)\n", bgr_tests_[i].name,                  \
                        why[0] ? ": " : "", why, bgr_test_now_() - t0_);                           \
            }                                                                                      \
        }                                                                                          \
        printf("%d passed, %d failed\n", passed, failed);                                          \
        return failed ? 1 : 0;                                                                     \
    }

/* Registers a unit-test binary built from the given sources with CTest:
 * see tests/unit/core/CMakeLists.txt for the CMake side. */

#endif
