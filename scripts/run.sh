#!/bin/sh
# run.sh PPID [migrate] [options...]: numa mode, histogram view; moves pages
# only with "migrate".
. "$(dirname "$0")/common.sh"
u="run.sh PPID [migrate] [membalancer numa options...]"
need_ppid "$u" "${1:-}"
ppid=$1; shift
m=$(migrate_flag "${1:-}") && shift
exec "$MEMBALANCER" numa --ppid "$ppid" $m --display histogram "$@"
