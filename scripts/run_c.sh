#!/bin/sh
# run_c.sh PPID [migrate] [options...]: numa mode, one row per interval;
# moves pages only with "migrate".
. "$(dirname "$0")/common.sh"
u="run_c.sh PPID [migrate] [membalancer numa options...]"
need_ppid "$u" "${1:-}"
ppid=$1; shift
m=$(migrate_flag "${1:-}") && shift
exec "$MEMBALANCER" numa --ppid "$ppid" $m --display continuous "$@"
