#!/bin/sh
# vm-nodes: 0:cpus=0-1,mem=1G;1:cpus=2-3,mem=1G
# vm-timeout: 600
# autotune with the abit sampler and the scheduler's CPU times.
# 1. Memory concentrated on one node, threads elsewhere: two workers
#    restricted to node 0's CPUs, memory bound to node 1. autotune chooses to
#    move the threads; they end on node 1's CPUs and are restored on SIGTERM.
# 2. The opposite: threads spread over both nodes (workers pinned to CPUs 0,
#    1 and 2: two on node 0, one on node 1), memory preferring node 1. The
#    threads cannot all go to node 1 (3 active threads, 2 CPUs there), so
#    autotune chooses to move the memory: numa placement takes the hot range
#    to node 0, where most of the CPU time is (numa_maps).
. /opt/membalancer/vm/lib.sh
S=/opt/membalancer/scripts
echo never > /sys/kernel/mm/transparent_hugepage/enabled
allowed() { sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/$1/task/$2/status; }
workers() { sed -n 's/.*"threads":\[\([0-9,]*\)\].*/\1/p' $MX_REPORT | tr ',' ' '; }
wait_allowed() {
	i=0; while [ "$(allowed $1 $2)" != "$3" ] && [ $i -lt $(($4 * 10)) ]; do sleep 0.1; i=$((i + 1)); done
	[ "$(allowed $1 $2)" = "$3" ]
}
decision() { grep -o "\"decisions\":\[[^]]*\]" "$1" | tail -1; }
# Every distinct decision of a run, in order (what a failure needs explained).
decisions() { grep -o "\"decisions\":\[[^]]*\]" "$1" | uniq | cut -c1-300; }

# ---- 1: threads ----
start_mx --size 64M --hot-size 16M --threads 2 --cpu-node 0 --bind-node 1 --thp off
set -- $(workers); W1=$1; W2=$2
echo "pid=$MX_PID workers $W1 $W2 (allowed $(allowed $MX_PID $W1))"
$S/run_autotune.sh $MX_PID --sampler abit --interval 500 --observe 4 --display json > /tmp/at1.json 2> /tmp/at1.err &
mb=$!
wait_allowed $MX_PID $W1 2-3 90; r1=$?
wait_allowed $MX_PID $W2 2-3 30; r2=$?
decisions /tmp/at1.json
check "autotune chose to move the threads" grep -q "\"pid\":$MX_PID,\"choice\":\"threads\"" /tmp/at1.json
check "worker $W1 moved to node 1's CPUs ($(allowed $MX_PID $W1))" [ $r1 -eq 0 ]
check "worker $W2 moved to node 1's CPUs ($(allowed $MX_PID $W2))" [ $r2 -eq 0 ]
check "no page was moved" [ "$(grep -c '"numa":{"requested":[1-9]' /tmp/at1.json)" -eq 0 ]
kill -TERM $mb; wait $mb; st=$?
check "membalancer exits 0 on SIGTERM (status $st)" [ $st -eq 0 ]
check "affinities restored ($(allowed $MX_PID $W1), $(allowed $MX_PID $W2))" \
	[ "$(allowed $MX_PID $W1)" = 0-1 ] && [ "$(allowed $MX_PID $W2)" = 0-1 ]
stop_mx

# ---- 2: memory ----
HOT=$((16 << 20))
start_mx --size 64M --hot-size 16M --threads 3 --pin-cpus 0,1,2 --preferred-node 1 --thp off
hot=$(mx_field $MX_PID hot_start); region=$(mx_field $MX_PID region_start)
echo "pid=$MX_PID hot=$hot: $(on_node $MX_PID $hot $HOT 1) hot pages on node 1"
check "the hot range starts on node 1" [ "$(on_node $MX_PID $hot $HOT 1)" -ge $((HOT / 4096 * 99 / 100)) ]
$S/run_autotune.sh $MX_PID --sampler abit --interval 500 --observe 4 --display json > /tmp/at2.json 2> /tmp/at2.err &
mb=$!
t=$(wait_on_node $MX_PID $hot $HOT 0 90 120)
decisions /tmp/at2.json
echo "hot range 90% on node 0 after: $t s"
check "autotune chose to move the memory" grep -q "\"pid\":$MX_PID,\"choice\":\"memory\"" /tmp/at2.json
check "90% of the hot range moved to node 0 (took $t s)" [ "$t" != timeout ]
line=$(numa_line $MX_PID $region)
echo "numa_maps: $line"
check "numa_maps: the hot range is on node 0 ($(numa_pages "$line" 0) pages)" \
	[ "$(numa_pages "$line" 0)" -ge $((HOT / 4096 * 90 / 100)) ]
check "no thread was moved" [ "$(grep -c '"threads_moved":[1-9]' /tmp/at2.json)" -eq 0 ]
kill -TERM $mb; wait $mb; st=$?
check "membalancer exits 0 on SIGTERM (status $st)" [ $st -eq 0 ]
grep -v '^{' /tmp/at2.err | head -3
stop_mx
finish
