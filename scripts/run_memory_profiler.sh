#!/bin/sh
# run_memory_profiler.sh PPID [options...]: what numa mode would do for
# PPID's tree, histogram view; never moves anything.
. "$(dirname "$0")/common.sh"
u="run_memory_profiler.sh PPID [membalancer numa options...]"
need_ppid "$u" "${1:-}"
ppid=$1; shift
exec "$MEMBALANCER" numa --ppid "$ppid" --display histogram "$@"
