#!/bin/sh
# vm-nodes: 0:cpus=0,mem=1G;1:cpus=1,mem=1G
# vm-timeout: 400
# NUMA balancing: a thread pinned to CPU 1 (node 1) whose memory is on node
# 0. `run_memory_balancer.sh PPID` (numa mode, abit sampler: page nodes
# from the helper module, the thread's CPU from the scheduler) moves >= 95%
# of its hot pages to node 1; the cold pages, not hot, stay. The kernel's own
# NUMA balancing is off.
. /opt/membalancer/vm/lib.sh
S=/opt/membalancer/scripts
echo never > /sys/kernel/mm/transparent_hugepage/enabled
echo 0 > /proc/sys/kernel/numa_balancing
HOT=$((64 << 20)); SIZE=$((256 << 20))
start_mx --size 256M --hot-size 64M --hot-offset 64M --preferred-node 0 --pin-cpus 1 --thp off
hot=$(mx_field $MX_PID hot_start); region=$(mx_field $MX_PID region_start)
echo "pid=$MX_PID region=$region hot=$hot"
check "memory starts on node 0" [ "$(on_node $MX_PID $region $SIZE 0)" -ge $((SIZE / 4096 * 99 / 100)) ]
$S/run_memory_balancer.sh $MX_PID --sampler abit --interval 500 --display json > /tmp/mb.json 2>/tmp/mb.err &
mb=$!
t=$(wait_on_node $MX_PID $hot $HOT 1 95 120)
echo "hot pages 95% on node 1 after: $t s"
check "95% of the hot pages on node 1 (took $t s; $(on_node $MX_PID $hot $HOT 1) of $((HOT / 4096)))" [ "$t" != timeout ]
sleep 2
line=$(numa_line $MX_PID $region); echo "numa_maps: $line"
check "numa_maps: the hot pages on node 1 ($(numa_pages "$line" 1))" [ "$(numa_pages "$line" 1)" -ge $((HOT / 4096 * 95 / 100)) ]
check "numa_maps: the cold pages stay on node 0 ($(numa_pages "$line" 0))" \
	[ "$(numa_pages "$line" 0)" -ge $(((SIZE - HOT) / 4096 * 99 / 100)) ]
kill -TERM $mb; wait $mb; st=$?
check "membalancer exits 0 on SIGTERM (status $st)" [ $st -eq 0 ]
timeline /tmp/mb.json
grep '"type":"summary"' /tmp/mb.json | grep -o '"by_process":.*"queued_pages"'
check "summary: numa moves counted" grep -q '"type":"summary".*"numa":{"requested":[0-9]*,"moved":[1-9]' /tmp/mb.json
grep -v '^{' /tmp/mb.err | head -5
stop_mx
finish
