#!/bin/sh
# run_process_profiler.sh PPID [options...]: per node, the share of PPID's
# tree's CPU time and memory accesses, and the thread moves process mode
# would make; never changes an affinity.
. "$(dirname "$0")/common.sh"
u="run_process_profiler.sh PPID [membalancer process options...]"
need_ppid "$u" "${1:-}"
ppid=$1; shift
exec "$MEMBALANCER" process --ppid "$ppid" --display histogram "$@"
