#!/usr/bin/env python3
"""Checks run.py's per-test time limit (CTest: api_runner_timeout): a test
that hangs fails naming itself with "timed out after N s" and its tear-down
still runs; a hanging class set-up is named too; the other tests still run;
a test stuck where the exception cannot reach it (here: one that swallows
it and goes on sleeping) ends the whole run, named, with exit status 1.
Needs no server and no model."""
import io
import os
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run  # noqa: E402

torn_down = []


class Hangs(unittest.TestCase):
    def tearDown(self):
        torn_down.append(self.id())

    def test_a_passes(self):
        pass

    def test_b_hangs(self):
        time.sleep(3600)

    def test_c_passes(self):
        pass


class HangingSetUp(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        time.sleep(3600)

    def test_never_runs(self):
        pass


class Stubborn(unittest.TestCase):
    def test_swallows(self):
        while True:
            try:
                time.sleep(3600)
            except BaseException:
                pass


def main():
    if sys.argv[1:] == ["stubborn"]:  # the child of the last check
        suite = unittest.TestLoader().loadTestsFromTestCase(Stubborn)
        run.run_suite(suite, 1, grace=2)
        return 0
    failures = []

    def check(cond, what):
        print("[  OK  ] " if cond else "[ FAIL ] ", what, sep="", file=sys.stderr)
        if not cond:
            failures.append(what)

    loader = unittest.TestLoader()
    suite = unittest.TestSuite([loader.loadTestsFromTestCase(Hangs),
                                loader.loadTestsFromTestCase(HangingSetUp)])
    out = io.StringIO()
    result = run.run_suite(suite, 1, stream=out)
    text = out.getvalue()
    errors = "\n".join(tb for _, tb in result.errors)
    check("Hangs.test_b_hangs: timed out after 1 s" in errors, "hanging test named")
    check(any("setUpClass" in str(t) and "HangingSetUp" in str(t) and "timed out after 1 s" in tb
              for t, tb in result.errors), "hanging class set-up named")
    check(len(result.errors) == 2 and not result.failures, "two errors, no failures")
    check(result.testsRun == 3, "the other tests ran (%d run)" % result.testsRun)
    check(any(t.endswith("test_b_hangs") for t in torn_down), "tear-down ran after the timeout")

    t0 = time.monotonic()
    p = subprocess.run([sys.executable, os.path.abspath(__file__), "stubborn"],
                       capture_output=True, text=True, timeout=120)
    check(p.returncode == 1, "a test that does not stop ends the run (status %d)" % p.returncode)
    check("test_swallows: timed out after 1 s and did not stop" in p.stderr,
          "and names itself")
    check(p.stdout.strip().splitlines()[-1:] == ["0 passed, 1 failed"], "summary line")
    if failures:
        sys.stderr.write(text + errors + p.stderr + p.stdout)
    print("%d passed, %d failed (%.1f s)" % (8 - len(failures), len(failures),
                                             time.monotonic() - t0))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
