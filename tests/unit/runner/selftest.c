/* Tests for the test runner itself (run by check.sh, not directly: two of
 * them fail on purpose). `hangs` never returns and leaves a process of its
 * own behind, whose pid it writes to $BGR_SELFTEST_PIDFILE, so the check
 * can see that the timeout ended both; `terminated` dies by a signal (SIGTERM,
 * which no sanitizer intercepts); the tests around them must still run. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define BGR_TEST_TIMEOUT 2 /* this binary's own limit, far below the default */
#include "runner.h"

static int shared_counter; /* each test sees its initial value: tests share nothing */

BGR_TEST(passes_first)
{
    shared_counter++;
    BGR_CHECK_EQ_INT(shared_counter, 1);
}

BGR_TEST(hangs)
{
    pid_t helper = fork();
    BGR_REQUIRE(helper >= 0);
    if (helper == 0) {
        for (;;)
            pause();
    }
    const char *pidfile = getenv("BGR_SELFTEST_PIDFILE");
    if (pidfile) {
        FILE *f = fopen(pidfile, "w");
        BGR_REQUIRE(f != NULL);
        fprintf(f, "%d\n", (int)helper);
        BGR_CHECK(fclose(f) == 0);
    }
    for (;;)
        pause();
}

BGR_TEST(terminated)
{
    kill(getpid(), SIGTERM);
    pause();
}

BGR_TEST(passes_last)
{
    shared_counter++;
    BGR_CHECK_EQ_INT(shared_counter, 1);
}

BGR_TEST_MAIN()
