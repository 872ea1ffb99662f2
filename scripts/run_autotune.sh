#!/bin/sh
# run_autotune.sh PPID [options...]: observe PPID's tree, then per process
# move its threads or its memory (autotune mode), acting on the choice,
# histogram view. Add options after PPID (e.g. --observe 10).
. "$(dirname "$0")/common.sh"
u="run_autotune.sh PPID [membalancer autotune options...]"
need_ppid "$u" "${1:-}"
ppid=$1; shift
exec "$MEMBALANCER" autotune --ppid "$ppid" --migrate --display histogram "$@"
