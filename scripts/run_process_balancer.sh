#!/bin/sh
# run_process_balancer.sh PPID [options...]: move the threads of PPID's tree
# to the NUMA node holding the memory they access (process mode), changing
# affinities, histogram view. Affinities are restored when it stops.
. "$(dirname "$0")/common.sh"
u="run_process_balancer.sh PPID [membalancer process options...]"
need_ppid "$u" "${1:-}"
ppid=$1; shift
exec "$MEMBALANCER" process --ppid "$ppid" --migrate --display histogram "$@"
