#!/bin/sh
# vm-nodes: 0:cpus=0-1,mem=1G;1:cpus=2-3,mem=1G
# vm-timeout: 400
# Process mode and a worker thread that execs. A's two workers, restricted to
# node 0's CPUs (--cpu-node 0) with their memory bound to node 1, are moved
# to node 1's CPUs; then the first worker execs (memexercise --fault
# thread-exec: a memexercise with a 4 KiB region, one idle worker). The
# kernel gives it the leader's id (A) and it keeps the affinity membalancer
# set; the other worker and the leader die in the exec. membalancer follows
# it: what it holds for the worker moves to A, the new program's worker
# (which inherits those CPUs) is taken on, and on SIGTERM both get the
# worker's original affinity back (0-1), not the dead leader's nor none.
. /opt/membalancer/vm/lib.sh
S=/opt/membalancer/scripts
echo never > /sys/kernel/mm/transparent_hugepage/enabled
W=/tmp/w; mkdir -p $W
allowed() { sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/$1/task/$2/status; }
report_field() { sed -n "s/.*\"$2\":\"\{0,1\}\([^\",}]*\).*/\1/p" "$1"; }
workers() { sed -n 's/.*"threads":\[\([0-9,]*\)\].*/\1/p' "$1" | tr ',' ' '; }
wait_allowed() {
	i=0; while [ "$(allowed $1 $2)" != "$3" ] && [ $i -lt $(($4 * 10)) ]; do sleep 0.1; i=$((i + 1)); done
	[ "$(allowed $1 $2)" = "$3" ]
}
tasks() { ls /proc/$1/task | tr '\n' ' '; }
# The last interval object's thread_balance field NAME.
last_interval() { grep '"type":"interval"' $W/mb.json | tail -1 | sed -n "s/.*\"thread_balance\":{.*\"$1\":\([0-9]*\).*/\1/p"; }

(
	memexercise --duration 0 --size 64M --hot-size 16M --threads 2 --cpu-node 0 --bind-node 1 --thp off \
		--fault thread-exec --fault-after $W/go --report $W/a.json --ready-file $W/a.ready > $W/a.out 2>&1 &
	wait
) &
ROOT=$!
i=0; while [ ! -e $W/a.ready ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
check "workload ready" [ -e $W/a.ready ]
A=$(report_field $W/a.json pid)
set -- $(workers $W/a.json); A1=$1; A2=$2
echo "root=$ROOT A=$A workers $A1 $A2 (allowed $(allowed $A $A1), leader $(allowed $A $A))"
check "A's threads start on node 0's CPUs" [ "$(allowed $A $A)" = 0-1 ] && [ "$(allowed $A $A1)" = 0-1 ]

$S/run_process_balancer.sh $ROOT --sampler abit --interval 500 --display json --verbose > $W/mb.json 2> $W/mb.err &
mb=$!
wait_allowed $A $A1 2-3 60; r1=$?
wait_allowed $A $A2 2-3 60; r2=$?
check "A's workers moved to node 1's CPUs ($(allowed $A $A1), $(allowed $A $A2))" [ $r1 -eq 0 ] && [ $r2 -eq 0 ]
check "A's idle leader is not moved ($(allowed $A $A))" [ "$(allowed $A $A)" = 0-1 ]

# Worker A1 execs: afterwards A's threads are A (A1 renumbered) and the new
# program's worker.
touch $W/go
i=0; while { [ -d /proc/$A/task/$A1 ] || [ "$(ls /proc/$A/task | wc -l)" -ne 2 ]; } && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
NW=$(ls /proc/$A/task | grep -v "^$A\$")
echo "after the exec: $(tr '\0' ' ' < /proc/$A/cmdline); tasks $(tasks $A); A $(allowed $A $A), new worker $NW $(allowed $A $NW)"
check "the worker exec'd: A runs the new program" grep -q -- '--size.4K' /proc/$A/cmdline
check "A1 and A2 are gone, A and one new worker left" [ ! -d /proc/$A/task/$A1 ] && [ ! -d /proc/$A/task/$A2 ] && [ -n "$NW" ]
check "the exec'd thread (now $A) kept the CPUs membalancer gave it ($(allowed $A $A))" [ "$(allowed $A $A)" = 2-3 ]
check "the new program's worker inherited them ($(allowed $A $NW))" [ "$(allowed $A $NW)" = 2-3 ]
# Four intervals: the exec event, then the other worker's absence taken as
# its exit (one interval later), the new worker taken on.
sleep 2.5
echo "last interval: affinities_held $(last_interval affinities_held), moved_exited $(last_interval moved_exited)"
check "membalancer holds A and the new worker (affinities_held $(last_interval affinities_held))" [ "$(last_interval affinities_held)" = 2 ]
check "the worker that died in the exec counts as moved and exited ($(last_interval moved_exited))" \
	[ "$(last_interval moved_exited)" = 1 ]

kill -TERM $mb; wait $mb; st=$?
check "membalancer exits 0 on SIGTERM (status $st)" [ $st -eq 0 ]
tail -1 $W/mb.json | grep -o '"thread_balance":{[^}]*}' | cut -c1-300
check "A's affinity restored to its worker's original ($(allowed $A $A))" [ "$(allowed $A $A)" = 0-1 ]
check "the new worker's restored too ($(allowed $A $NW))" [ "$(allowed $A $NW)" = 0-1 ]
check "summary counts 2 restored, none gone" grep -q '"type":"summary".*"restored":2,"restore_gone":0,' $W/mb.json
grep 'membalancer: \(move\|restor\)' $W/mb.err | head -4 | cut -c1-200

kill $A 2>/dev/null; wait $ROOT 2>/dev/null
finish
