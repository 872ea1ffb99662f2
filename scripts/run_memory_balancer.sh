#!/bin/sh
# run_memory_balancer.sh PPID [options...]: balance the memory of PPID's
# tree across NUMA nodes (numa mode), moving pages, histogram view.
. "$(dirname "$0")/common.sh"
u="run_memory_balancer.sh PPID [membalancer numa options...]"
need_ppid "$u" "${1:-}"
ppid=$1; shift
exec "$MEMBALANCER" numa --ppid "$ppid" --migrate --display histogram "$@"
