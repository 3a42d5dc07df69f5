#!/usr/bin/env python3
"""Runs the black-box API tests: run.py [--bin PATH] [TEST_NAME_SUBSTRING...]

Prints unittest's per-test lines, and as the very last line
"N passed, N failed" (the summary CI reads). Exit status 0 only if all pass.
"""
import argparse
import os
import sys
import time
import unittest

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
    ap.add_argument("only", nargs="*")
    args = ap.parse_args()
    os.environ["BGR_BIN"] = os.path.abspath(args.bin)
    import bgrtest
    bgrtest.BIN = os.environ["BGR_BIN"]
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
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stderr).run(suite)
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
