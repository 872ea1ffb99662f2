#!/usr/bin/env bash
# make demo: a built-in workload (bin/memexercise: a 256 MiB region per
# process with a 32 MiB hot range, two threads, two child processes) traced by
# `membalancer trace` with the best sampler this machine offers, for a few
# seconds. membalancer starts first so it sees the workload from its first
# touch. Needs root (BPF).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# From the repository: ../bin; installed: the binaries are on PATH.
if [ -z "${BIN:-}" ]; then
  if [ -x "$here/../bin/membalancer" ]; then BIN="$here/../bin"; else BIN=$(dirname "$(command -v membalancer)"); fi
fi
DURATION=${DEMO_DURATION:-6}
if [ "$(id -u)" -ne 0 ]; then
  echo "make demo: needs root (BPF programs and perf events)" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'kill $wl 2>/dev/null || true; rm -rf "$work"' EXIT

"$BIN/memexercise" --size 256M --hot-size 32M --threads 2 --children 2 \
  --wait-before-touch "$work/start" --duration $((DURATION + 2)) &
wl=$!
"$BIN/membalancer" trace --ppid "$wl" --duration "$DURATION" --interval 1000 \
  --display continuous --top 3 &
mb=$!
sleep 1
touch "$work/start"
wait "$mb"
wait "$wl" || true
