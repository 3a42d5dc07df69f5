#!/usr/bin/env python3
"""Runs the black-box API tests: run.py [--bin PATH] [--timeout S] [--store sqlite|pg]
[TEST_NAME_SUBSTRING...]

--store pg (or $BGR_TEST_STORE=pg) runs them on PostgreSQL: one throw-away
PostgreSQL 15 cluster for the run (tests/common/pgserver.py), a fresh
database for every server (bgrtest.py); exit 77 (skipped) when the
PostgreSQL binaries are absent. Default: SQLite in each data directory.

Prints unittest's per-test lines, and as the very last line
"N passed, N failed" (the summary CI reads). Exit status 0 only if all pass.

Every test, and every class or module set-up and tear-down between tests,
has a time limit (--timeout, else $BGR_TEST_TIMEOUT, else 300 s; 0: none):
past it the test fails with "NAME: timed out after N s" (an exception raised
in it, so its tear-down still stops its servers). If that does not end it
within another 60 s (stuck outside Python), the run names it, kills its own
child processes and exits 1.
"""
import argparse
import os
import signal
import sys
import threading
import time
import unittest

DEFAULT_TIMEOUT = 300  # seconds per test


class TestTimeout(BaseException):
    """Raised in the main thread at a test's time limit. A BaseException, so
    that a test's own `except Exception` cannot swallow it (unittest records
    any exception from a test as an error)."""


class FixtureTimeout(Exception):
    """Raised at the limit of a class or module set-up or tear-down: unittest
    records only Exceptions from those as errors."""


class _Watch:
    """What is running now (a test, or the set-up/tear-down between tests)
    and since when; SIGALRM fires at its limit."""

    def __init__(self, limit):
        self.limit = limit
        self.label = "module set-up before the first test"
        self.in_test = False
        self.since = time.monotonic()
        self.result = None

    def arm(self, label, in_test=False):
        self.label = label
        self.in_test = in_test
        self.since = time.monotonic()
        if self.limit:
            signal.alarm(self.limit)

    def on_alarm(self, signum, frame):
        raise (TestTimeout if self.in_test else FixtureTimeout)(
            "%s: timed out after %d s" % (self.label, self.limit))

    def backstop(self, grace=60):
        """A thread: ends the run if a timed-out test did not unwind."""
        while True:
            time.sleep(min(5, grace))
            label, since = self.label, self.since
            if self.limit and time.monotonic() - since > self.limit + grace:
                r = self.result
                sys.stderr.write("%s: timed out after %d s and did not stop; killing its "
                                 "processes\n" % (label, self.limit))
                _kill_children()
                done = r.testsRun if r else 0
                bad = (len(r.failures) + len(r.errors)) if r else 0
                sys.stderr.flush()
                print("%d passed, %d failed" % (max(done - bad - 1, 0), bad + 1), flush=True)
                os._exit(1)


def _kill_children():
    """SIGKILL to this process's own children (servers, tools), by pid."""
    me = os.getpid()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == me:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass


def timed_result_class(watch):
    class TimedResult(unittest.TextTestResult):
        def startTest(self, test):
            watch.result = self
            watch.arm(test.id(), in_test=True)
            super().startTest(test)

        def stopTest(self, test):
            super().stopTest(test)
            watch.arm("set-up/tear-down after %s" % test.id())

    return TimedResult


def run_suite(suite, limit, stream=sys.stderr, grace=60):
    """Runs a unittest suite with the time limit `limit` (seconds, 0: none)
    per test and per set-up/tear-down; returns the result."""
    watch = _Watch(max(limit, 0))
    old = signal.signal(signal.SIGALRM, watch.on_alarm)
    watch.arm(watch.label)
    threading.Thread(target=watch.backstop, args=(grace,), daemon=True).start()
    try:
        return unittest.TextTestRunner(verbosity=2, stream=stream,
                                       resultclass=timed_result_class(watch)).run(suite)
    finally:
        signal.alarm(0)
        watch.limit = 0
        signal.signal(signal.SIGALRM, old)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def flatten(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from flatten(t)
        else:
            yield t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.environ.get("BGR_BIN", "build/bgremover"))
    ap.add_argument("--timeout", type=int,
                    default=int(os.environ.get("BGR_TEST_TIMEOUT") or DEFAULT_TIMEOUT),
                    help="seconds per test, and per set-up/tear-down (0: no limit)")
    ap.add_argument("--store", choices=("sqlite", "pg"),
                    default=os.environ.get("BGR_TEST_STORE") or "sqlite",
                    help="the store the servers use: SQLite (default) or PostgreSQL")
    ap.add_argument("only", nargs="*")
    args = ap.parse_args()
    os.environ["BGR_BIN"] = os.path.abspath(args.bin)
    os.environ["BGR_TEST_STORE"] = args.store
    import bgrtest
    bgrtest.BIN = os.environ["BGR_BIN"]
    bgrtest.STORE = args.store
    if args.store == "pg":
        sys.path.insert(0, os.path.join(os.path.dirname(HERE), "common"))
        import pgserver
        if not pgserver.available():
            print("skipped: --store pg needs PostgreSQL 15 (Debian: postgresql-15)")
            return 77
        pg = bgrtest.start_pg()
        sys.stderr.write("PostgreSQL %s at %s (binaries %s)\n" % (
            pg.psql("SHOW server_version")[0][0], pg.url(""), pg.bin_dir))
    try:
        return run_all(args)
    finally:
        if bgrtest.PG is not None:
            bgrtest.PG.close()


def run_all(args):
    import bgrtest
    # Every test_*.py here, in name order; each module starts its own servers.
    import importlib
    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    for fn in sorted(os.listdir(HERE)):
        if fn.startswith("test_") and fn.endswith(".py"):
            mod = importlib.import_module(fn[:-3])
            mod.BIN = bgrtest.BIN
            suite.addTests(loader.loadTestsFromModule(mod))
    if args.only:
        suite = unittest.TestSuite(t for t in flatten(suite)
                                   if any(o in t.id() for o in args.only))
    total = suite.countTestCases()
    t0 = time.time()
    result = run_suite(suite, args.timeout)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    # A module-level set-up error fails every test it would have run.
    if total and result.testsRun == 0:
        failed = total
    passed = result.testsRun - failed - len(result.skipped)
    sys.stderr.write("api tests took %.1f s\n" % (time.time() - t0))
    sys.stderr.flush()
    print("%d passed, %d failed" % (max(passed, 0), failed))
    return 0 if failed == 0 and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
