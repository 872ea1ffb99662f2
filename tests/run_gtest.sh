#!/usr/bin/env bash
# Runs one GoogleTest binary and appends "suite passed failed skipped" to
# build/test-summary, so that `make test` can close with one total line.
# Usage: tests/run_gtest.sh SUITE BINARY [gtest args...]
set -u
suite=$1; bin=$2; shift 2
mkdir -p build
log=build/test-$suite.log
"$bin" --gtest_color=no "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
passed=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
failed=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
skipped=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
passed=${passed:-0}; failed=${failed:-0}; skipped=${skipped:-0}
# A crash leaves no totals: count it as one failure.
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "$suite $passed $failed $skipped" >> build/test-summary
exit "$status"
