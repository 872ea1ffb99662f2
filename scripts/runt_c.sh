#!/bin/sh
# runt_c.sh PPID [migrate] [options...]: tiering, one row per interval;
# moves pages only with "migrate".
. "$(dirname "$0")/common.sh"
u="runt_c.sh PPID [migrate] [membalancer tier options...]"
need_ppid "$u" "${1:-}"
ppid=$1; shift
m=$(migrate_flag "${1:-}") && shift
exec "$MEMBALANCER" tier --ppid "$ppid" $m --display continuous "$@"
