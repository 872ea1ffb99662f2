#!/bin/sh
# vm-nodes: 0:cpus=0-1,mem=512M;1:mem=1G
# vm-timeout: 180
# A process whose cpuset leaves out node 0 (cpuset.mems 1): move_pages
# refuses its pages there whole (EACCES). tier (promotion to node 0) and numa
# (its CPUs are node 0's) used to plan the same hot pages every interval and
# count them failed every interval (24 600 EACCES for 8 192 pages in 6 s),
# spending the rate limit on them. Now the node is no target for that
# process: nothing is tried, the plan counts the pages `not_allowed`.
. /opt/membalancer/vm/lib.sh
echo never > /sys/kernel/mm/transparent_hugepage/enabled
echo +cpuset > /sys/fs/cgroup/cgroup.subtree_control
mkdir -p /sys/fs/cgroup/only1 && echo 1 > /sys/fs/cgroup/only1/cpuset.mems
rm -f $MX_REPORT /tmp/mx.ready
sh -c "echo \$\$ > /sys/fs/cgroup/only1/cgroup.procs && exec memexercise --duration 0 --report $MX_REPORT \
	--ready-file /tmp/mx.ready --size 32M --hot-size 8M --thp off" > /tmp/mx.out 2>&1 &
MX_PID=$!
i=0; while [ ! -e /tmp/mx.ready ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
check "memexercise ready in a cpuset of node 1 ($(sed -n 's/^Mems_allowed_list:\t//p' /proc/$MX_PID/status))" \
	[ -e /tmp/mx.ready ]
r=$(mx_field $MX_PID region_start)
for mode in tier numa; do
	extra=; [ $mode = numa ] && extra="--min-free 0"
	membalancer $mode --pid $MX_PID --migrate --sampler abit --interval 500 --duration 4 $extra \
		--display json > /tmp/$mode.json 2> /tmp/$mode.err
	st=$?
	check "$mode exits 0 (status $st)" [ $st -eq 0 ]
	sum=$(grep '"type":"summary"' /tmp/$mode.json)
	na=$(grep '"type":"interval"' /tmp/$mode.json | sed -n 's/.*"not_allowed":\([0-9]*\).*/\1/p' | awk '{s+=$1} END {print s+0}')
	echo "$mode: $(echo "$sum" | grep -o '"move_pages_calls":[0-9]*'), not_allowed over the intervals $na"
	calls=$(echo "$sum" | sed -n 's/.*"move_pages_calls":\([0-9]*\).*/\1/p')
	check "$mode: no move tried ($calls move_pages calls)" [ "$calls" = 0 ]
	check "$mode: no page failed EACCES" sh -c "! grep '\"type\":\"summary\"' /tmp/$mode.json | grep -q EACCES"
	check "$mode: the hot pages are counted not allowed ($na)" [ "$na" -ge 2048 ]
	check "$mode: the region stays on node 1" [ "$(numa_pages "$(numa_line $MX_PID $r)" 0)" -eq 0 ]
done
stop_mx
finish
