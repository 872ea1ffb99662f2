#!/usr/bin/env bash
# Prints each suite's counts and the plain total line "N passed, N failed".
f=${1:-build/test-summary}
[ -f "$f" ] || { echo "0 passed, 1 failed"; exit 1; }
awk '{ printf "  %-12s %4d passed %4d failed %4d skipped\n", $1, $2, $3, $4; p += $2; x += $3; s += $4 }
     END { printf "%d passed, %d failed, %d skipped\n", p, x, s }' "$f"
