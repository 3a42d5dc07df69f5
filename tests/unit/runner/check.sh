#!/bin/sh
# check.sh SELFTEST - checks the per-test time limit of tests/common/runner.h
# with selftest.c's binary: a hanging test is named with "timed out after N s"
# (the binary's limit, then the environment's), the process it started is
# gone too, a test killed by a signal is named, and the other tests still
# run; with BGR_TEST_FORK=0 a hang still names itself and ends the binary.
set -u
bin=$1
# The limits and the mode below are this check's own, whatever the caller's
# environment says (make test-asan sets BGR_TEST_TIMEOUT).
unset BGR_TEST_TIMEOUT BGR_TEST_FORK
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "[  OK  ] $1" >&2; }
bad() { fail=$((fail + 1)); echo "[ FAIL ] $1" >&2; }
has() { # LABEL FILE FIXED-STRING
    if grep -qF -- "$3" "$2"; then ok "$1"; else bad "$1: no \"$3\" in:" && sed 's/^/    /' "$2" >&2; fi
}

# 1. Default mode, the binary's own limit (2 s).
BGR_SELFTEST_PIDFILE=$tmp/helper.pid "$bin" >"$tmp/out1" 2>&1
rc=$?
[ "$rc" = 1 ] && ok "exit status 1 when tests fail" || bad "exit status $rc, expected 1"
has "hang named with the binary's limit" "$tmp/out1" "[ FAIL ] hangs: timed out after 2 s"
has "signal named" "$tmp/out1" "[ FAIL ] terminated: killed by signal 15"
has "test before ran" "$tmp/out1" "[  OK  ] passes_first"
has "test after ran, state not shared" "$tmp/out1" "[  OK  ] passes_last"
has "summary line" "$tmp/out1" "2 passed, 2 failed"
if [ -s "$tmp/helper.pid" ]; then
    helper=$(cat "$tmp/helper.pid")
    gone=0
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        kill -0 "$helper" 2>/dev/null || { gone=1; break; }
        sleep 0.2
    done
    [ $gone = 1 ] && ok "the hung test's own child was killed too" ||
        { bad "process $helper the hung test started is still running"; kill -9 "$helper"; }
else
    bad "the hanging test wrote no helper pid"
fi

# 2. The environment overrides the binary's limit; selecting one test.
BGR_TEST_TIMEOUT=1 "$bin" hangs >"$tmp/out2" 2>&1
has "environment limit" "$tmp/out2" "[ FAIL ] hangs: timed out after 1 s"
has "only the selected test" "$tmp/out2" "0 passed, 1 failed"

# 3. In-process mode: the hang still names itself and ends the binary.
rm -f "$tmp/helper.pid"
BGR_SELFTEST_PIDFILE=$tmp/helper.pid BGR_TEST_FORK=0 BGR_TEST_TIMEOUT=1 "$bin" passes_first hangs \
    passes_last >"$tmp/out3" 2>&1
rc=$?
# Without a child per test nothing kills what the test started: we do.
[ -s "$tmp/helper.pid" ] && kill -9 "$(cat "$tmp/helper.pid")" 2>/dev/null
[ "$rc" = 1 ] && ok "in-process: exit status 1" || bad "in-process: exit status $rc, expected 1"
has "in-process: hang named" "$tmp/out3" "[ FAIL ] hangs: timed out after 1 s"
has "in-process: summary" "$tmp/out3" "1 passed, 1 failed"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
