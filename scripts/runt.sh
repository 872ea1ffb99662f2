#!/bin/sh
# runt.sh PPID [migrate] [options...]: tiering (tier mode), histogram view;
# moves pages only with "migrate".
. "$(dirname "$0")/common.sh"
u="runt.sh PPID [migrate] [membalancer tier options...]"
need_ppid "$u" "${1:-}"
ppid=$1; shift
m=$(migrate_flag "${1:-}") && shift
exec "$MEMBALANCER" tier --ppid "$ppid" $m --display histogram "$@"
