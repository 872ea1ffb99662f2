#!/bin/sh
# vm-nodes: 0:cpus=0-1,mem=1G;1:cpus=2-3,mem=1G
# vm-timeout: 180
# A thread that sets its own affinity after membalancer moved it (its user,
# with taskset, here) keeps it: process mode moves two workers (restricted
# to node 0, memory on node 1) to node 1's CPUs; one is then pinned to CPU 1
# by hand. membalancer lets it go: it does not move it back (it is pinned now)
# and does not set its old affinity back on SIGTERM, while the other worker
# gets its original 0-1 back. Both are counted (`overridden`, `restored`).
. /opt/membalancer/vm/lib.sh
echo never > /sys/kernel/mm/transparent_hugepage/enabled
allowed() { sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/$1/task/$2/status; }
wait_allowed() {
	i=0; while [ "$(allowed $1 $2)" != "$3" ] && [ $i -lt $(($4 * 10)) ]; do sleep 0.1; i=$((i + 1)); done
	[ "$(allowed $1 $2)" = "$3" ]
}
start_mx --size 32M --hot-size 8M --threads 2 --cpu-node 0 --bind-node 1 --thp off
A=$MX_PID; set -- $(sed -n 's/.*"threads":\[\([0-9,]*\)\].*/\1/p' $MX_REPORT | tr , ' '); A1=$1; A2=$2
echo "pid $A workers $A1 $A2 ($(allowed $A $A1), $(allowed $A $A2))"
membalancer process --pid $A --migrate --cooldown 2 --sampler abit --interval 500 --display json --verbose \
	> /tmp/mb.json 2> /tmp/mb.err &
mb=$!
wait_allowed $A $A1 2-3 60; r1=$?
wait_allowed $A $A2 2-3 60; r2=$?
check "worker $A1 moved to node 1's CPUs ($(allowed $A $A1))" [ $r1 -eq 0 ]
check "worker $A2 moved to node 1's CPUs ($(allowed $A $A2))" [ $r2 -eq 0 ]
taskset -p -c 1 $A1 > /dev/null
# 8 intervals: 4 cool-downs of 2.
sleep 4
check "the worker pinned by hand stays on CPU 1 ($(allowed $A $A1))" [ "$(allowed $A $A1)" = 1 ]
grep "tid $A1" /tmp/mb.err | tail -2 | cut -c1-200
check "--verbose says it was let go" grep -q "tid $A1: its affinity was set by someone else" /tmp/mb.err
kill -TERM $mb; wait $mb; st=$?
check "membalancer exits 0 on SIGTERM (status $st)" [ $st -eq 0 ]
check "the worker pinned by hand keeps CPU 1 after the stop ($(allowed $A $A1))" [ "$(allowed $A $A1)" = 1 ]
check "the other worker is restored ($(allowed $A $A2))" [ "$(allowed $A $A2)" = 0-1 ]
tb=$(grep '"type":"summary"' /tmp/mb.json | grep -o '"thread_balance":{[^}]*}')
echo "$tb" | cut -c1-300
jnum() { echo "$tb" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
check "summary: 1 let go during the run ($(jnum overridden))" [ "$(jnum overridden)" = 1 ]
# Every other thread moved (the main thread too, when it was busy enough) is restored.
check "summary: restored = moved - let go ($(jnum restored) = $(jnum threads_moved) - 1)" \
	[ "$(jnum restored)" -eq $(($(jnum threads_moved) - 1)) ]
check "summary: none found set by others at the stop ($(jnum restore_overridden))" [ "$(jnum restore_overridden)" = 0 ]
stop_mx
finish
