#!/bin/sh
# vm-nodes: 0:cpus=0-1,mem=1G;1:cpus=2-3,mem=1G
# vm-timeout: 500
# Thread balancing (process mode) with the abit sampler and the scheduler's
# CPU times. A tree (a shell) runs two workloads whose memory is bound to
# node 1: A, two workers restricted to node 0's CPUs (--cpu-node 0), and B,
# one worker pinned by its user to CPU 0, and C, one worker in a cpuset cgroup
# of node 0's CPUs. A report-only run plans moves and changes nothing;
# run_process_balancer.sh moves A's workers to node 1's CPUs, leaves B's
# pinned worker alone and skips C's (the kernel would refuse the move: it
# used to be tried and counted failed); on SIGTERM every affinity it changed
# is restored. Affinities are read back from /proc/PID/task/TID/status.
. /opt/membalancer/vm/lib.sh
S=/opt/membalancer/scripts
echo never > /sys/kernel/mm/transparent_hugepage/enabled
W=/tmp/w; mkdir -p $W
allowed() { sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/$1/task/$2/status; }
last_cpu() { sed 's/.*) //' /proc/$1/task/$2/stat | cut -d' ' -f37; }
report_field() { sed -n "s/.*\"$2\":\"\{0,1\}\([^\",}]*\).*/\1/p" "$1"; }
workers() { sed -n 's/.*"threads":\[\([0-9,]*\)\].*/\1/p' "$1" | tr ',' ' '; }
# wait_allowed PID TID LIST TIMEOUT_S: until the thread's affinity is LIST.
wait_allowed() {
	i=0; while [ "$(allowed $1 $2)" != "$3" ] && [ $i -lt $(($4 * 10)) ]; do sleep 0.1; i=$((i + 1)); done
	[ "$(allowed $1 $2)" = "$3" ]
}

# C's cgroup: cpuset 0-1 (node 0's CPUs).
echo +cpuset > /sys/fs/cgroup/cgroup.subtree_control
mkdir /sys/fs/cgroup/jail && echo 0-1 > /sys/fs/cgroup/jail/cpuset.cpus
(
	sh -c 'echo $$ > /sys/fs/cgroup/jail/cgroup.procs && exec memexercise --duration 0 --size 32M --hot-size 8M \
		--threads 1 --bind-node 1 --thp off --report '$W'/c.json --ready-file '$W'/c.ready' > $W/c.out 2>&1 &
	memexercise --duration 0 --size 64M --hot-size 16M --threads 2 --cpu-node 0 --bind-node 1 --thp off \
		--report $W/a.json --ready-file $W/a.ready > $W/a.out 2>&1 &
	memexercise --duration 0 --size 32M --hot-size 8M --threads 1 --pin-cpus 0 --bind-node 1 --thp off \
		--report $W/b.json --ready-file $W/b.ready > $W/b.out 2>&1 &
	wait
) &
ROOT=$!
i=0; while ! { [ -e $W/a.ready ] && [ -e $W/b.ready ] && [ -e $W/c.ready ]; } && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
check "workloads ready" [ -e $W/a.ready ] && [ -e $W/b.ready ] && [ -e $W/c.ready ]
A=$(report_field $W/a.json pid); B=$(report_field $W/b.json pid); C=$(report_field $W/c.json pid)
set -- $(workers $W/a.json); A1=$1; A2=$2
BW=$(workers $W/b.json); CW=$(workers $W/c.json)
echo "C=$C worker $CW (allowed $(allowed $C $CW), cgroup $(cat /proc/$C/cgroup))"
check "C's worker is limited to node 0's CPUs by its cpuset" [ "$(allowed $C $CW)" = 0-1 ]
echo "root=$ROOT A=$A workers $A1 $A2 (allowed $(allowed $A $A1)), B=$B worker $BW (allowed $(allowed $B $BW))"
check "A's workers start on node 0's CPUs" [ "$(allowed $A $A1)" = 0-1 ] && [ "$(allowed $A $A2)" = 0-1 ]
check "B's worker is pinned to CPU 0" [ "$(allowed $B $BW)" = 0 ]

# Report only: the access pattern and the planned moves are shown, nothing changes.
$S/run_process_profiler.sh $ROOT --sampler abit --interval 500 --duration 5 > $W/ro.txt 2> $W/ro.err
st=$?
sed -n '/NUMA PROCESS CPU/,/^$/p' $W/ro.txt | tail -12
check "report-only run exits 0 (status $st)" [ $st -eq 0 ]
check "report-only run prints the access-pattern table" grep -q 'NUMA PROCESS CPU AND MEMORY ACCESS PATTERN' $W/ro.txt
check "report-only run plans moving A's workers to node 1" grep -q "pid $A *node 0 -> 1" $W/ro.txt
check "report-only run leaves B's pinned worker (skipped: pinned)" grep -q 'skipped: .*pinned' $W/ro.txt
check "report-only run skips C's worker (skipped: cpuset)" grep -q 'skipped: .*cpuset' $W/ro.txt
check "report-only run changed no affinity ($(allowed $A $A1), $(allowed $A $A2))" \
	[ "$(allowed $A $A1)" = 0-1 ] && [ "$(allowed $A $A2)" = 0-1 ]

# Balancing.
$S/run_process_balancer.sh $ROOT --sampler abit --interval 500 --display json --verbose > $W/mb.json 2> $W/mb.err &
mb=$!
t0=$(up)
wait_allowed $A $A1 2-3 60; r1=$?
wait_allowed $A $A2 2-3 60; r2=$?
echo "A's workers moved after $(awk -v a="$t0" -v b="$(up)" 'BEGIN { printf "%.1f", b - a }') s"
check "A's worker $A1 moved to node 1's CPUs ($(allowed $A $A1))" [ $r1 -eq 0 ]
check "A's worker $A2 moved to node 1's CPUs ($(allowed $A $A2))" [ $r2 -eq 0 ]
sleep 2
c1=$(last_cpu $A $A1); c2=$(last_cpu $A $A2)
check "A's workers run on node 1 (CPUs $c1, $c2)" [ "$c1" -ge 2 ] && [ "$c2" -ge 2 ]
check "A's idle main thread is not moved ($(allowed $A $A))" [ "$(allowed $A $A)" = 0-1 ]
check "B's user-pinned worker is left alone ($(allowed $B $BW))" [ "$(allowed $B $BW)" = 0 ]
grep '^membalancer: \(move\|skip\)' $W/mb.err | head -4 | cut -c1-220
check "--verbose explains the pinned skip" grep -q "skip tid $BW .*pinned" $W/mb.err
check "--verbose explains the cpuset skip" grep -q "skip tid $CW .*cpuset: .*its cpuset allows cpus 0-1, none of node 1's" $W/mb.err
check "C's worker keeps its cpuset's CPUs ($(allowed $C $CW))" [ "$(allowed $C $CW)" = 0-1 ]
kill -TERM $mb; wait $mb; st=$?
check "membalancer exits 0 on SIGTERM (status $st)" [ $st -eq 0 ]
tail -1 $W/mb.json | grep -o '"thread_balance":{[^}]*}' | cut -c1-300
check "affinities restored on stop ($(allowed $A $A1), $(allowed $A $A2))" \
	[ "$(allowed $A $A1)" = 0-1 ] && [ "$(allowed $A $A2)" = 0-1 ]
check "B's worker still pinned to CPU 0" [ "$(allowed $B $BW)" = 0 ]
check "summary counts 2 restored" grep -q '"type":"summary".*"restored":2,' $W/mb.json
check "summary counts 2 threads moved" grep -q '"type":"summary".*"threads_moved":2,' $W/mb.json
check "summary counts no failed move" grep -q '"type":"summary".*"move_failures":0,' $W/mb.json

kill $A $B $C 2>/dev/null; wait $ROOT 2>/dev/null
finish
