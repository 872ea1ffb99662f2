#!/bin/sh
# vm-nodes: 0:cpus=0-1,mem=1G;1:mem=1G
# vm-timeout: 180
# Huge PMD path: with THP on, a 2 MiB aligned MADV_HUGEPAGE region is
# reported with page_shift 21; with THP off the same workload gives 12.
. /opt/membalancer/vm/lib.sh
T=/sys/kernel/mm/transparent_hugepage

run_case() { # NAME THP-SETTING WANT-SHIFT
	echo "$2" > $T/enabled
	start_touch --hot-mb 8 --cold-mb 16 --thp
	anon=$(awk '/^AnonHugePages:/ {s += $2} END {print s + 0}' /proc/$TOUCH_PID/smaps)
	echo "$1: THP $2, pid=$TOUCH_PID hot=$HOT cold=$COLD AnonHugePages=${anon} kB"
	check_hot_cold "$1"
	if [ "$3" = 21 ]; then
		check "$1: huge pages mapped" [ "$anon" -ge 8192 ]
		check "$1: reports are 2 MiB (shift21=$(field shift21 "$hot"))" \
			[ "$(field shift21 "$hot")" -gt 0 -a "$(field shift12 "$hot")" -eq 0 ]
	else
		check "$1: no huge pages mapped" [ "$anon" -eq 0 ]
		check "$1: reports are 4 KiB (shift12=$(field shift12 "$hot"))" \
			[ "$(field shift12 "$hot")" -gt 0 -a "$(field shift21 "$hot")" -eq 0 ]
	fi
	stop_touch
}
run_case thp-madvise madvise 21
run_case thp-always always 21
run_case thp-never never 12
finish
