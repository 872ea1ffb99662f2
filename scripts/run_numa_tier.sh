#!/bin/sh
# run_numa_tier.sh [PPID] [options...]: tiering with tiers from node
# distances (local memory first), for PPID's tree or, without PPID, every
# process; report only unless --migrate is among the options.
. "$(dirname "$0")/common.sh"
u="run_numa_tier.sh [PPID] [membalancer tier options...]"
# No argument, or options only: every process. An empty first argument (an
# unset variable, quoted) is a missing PPID, not a request for --all.
if [ $# -eq 0 ]; then
	exec "$MEMBALANCER" tier --all --tiers distance --display histogram
fi
case $1 in
-*) exec "$MEMBALANCER" tier --all --tiers distance --display histogram "$@" ;;
esac
need_ppid "$u" "$1"
ppid=$1; shift
exec "$MEMBALANCER" tier --ppid "$ppid" --tiers distance --display histogram "$@"
