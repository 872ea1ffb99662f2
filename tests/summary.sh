#!/usr/bin/env bash
# Prints each suite's counts and the plain total line "N passed, N failed".
# Usage: tests/summary.sh [SUMMARY_FILE...] (default build/test-summary); with
# several files (.ci/run: the plain and the sanitized run) the total covers all.
[ $# -gt 0 ] || set -- build/test-summary
for f in "$@"; do
  [ -f "$f" ] || { echo "$f: missing"; echo "0 passed, 1 failed"; exit 1; }
done
awk '{ printf "  %-18s %4d passed %4d failed %4d skipped\n", $1, $2, $3, $4; p += $2; x += $3; s += $4 }
     END { printf "%d passed, %d failed, %d skipped\n", p, x, s }' "$@"
