#!/usr/bin/env bash
# Runs one GoogleTest binary and appends "suite passed failed skipped" to
# $MB_BUILD_DIR/test-summary (default build/), so that `make test` can close
# with one total line.
# Usage: tests/run_gtest.sh SUITE BINARY [gtest args...]
# Environment (set by the Makefile):
#   MB_BUILD_DIR     where the log and the summary go (default build)
#   MB_TEST_WRAPPER  command the binary runs under (e.g. setarch -R for TSan)
#   MB_SAN_LOG_DIR   sanitized runs: the directory the sanitizers write their
#                    reports to (log_path); emptied first, and every report
#                    found there afterwards, from the test binary or any
#                    process it started, is printed and counted as a failure
set -u
suite=$1; bin=$2; shift 2
build=${MB_BUILD_DIR:-build}
mkdir -p "$build"
log=$build/test-$suite.log
san=${MB_SAN_LOG_DIR:-}
if [ -n "$san" ]; then rm -rf "$san"; mkdir -p "$san"; fi
# shellcheck disable=SC2086 # the wrapper is a command with its arguments
${MB_TEST_WRAPPER:-} "$bin" --gtest_color=no "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
passed=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
failed=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
skipped=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
passed=${passed:-0}; failed=${failed:-0}; skipped=${skipped:-0}
reports=0
if [ -n "$san" ]; then
  for r in "$san"/report.*; do
    [ -e "$r" ] || continue
    reports=$((reports + 1))
    echo "==== sanitizer report $(basename "$r") ====" | tee -a "$log"
    tee -a "$log" < "$r"
  done
  if [ "$reports" -gt 0 ]; then
    echo "$suite: $reports sanitizer report(s), each counted as a failure" | tee -a "$log"
    status=1
  fi
fi
# A crash leaves no totals: count it as one failure (unless a report explains it).
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ] && [ "$reports" -eq 0 ]; then failed=1; fi
failed=$((failed + reports))
echo "$suite $passed $failed $skipped" >> "$build/test-summary"
exit "$status"
