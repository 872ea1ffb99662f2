#!/bin/sh
# vm-nodes: 0:cpus=0-1,mem=1G;1:mem=2G
# vm-timeout: 400
# Free room in the fast tier serves no access: a 32 MB warm range on node 1,
# each page read once every 4 s, is never hot (the abit sampler sees a page
# once in 8 intervals of 500 ms: heat about 1, under --min-heat 2), yet
# `runt.sh PPID migrate` brings it to node 0, which is nearly empty, as
# free-room promotions. The 224 MB populated once and never touched again stay
# on node 1: the helper module's first sweep of the process reports none of
# the bits that populating it set.
. /opt/membalancer/vm/lib.sh
S=/opt/membalancer/scripts
echo never > /sys/kernel/mm/transparent_hugepage/enabled
echo 262144 > /sys/module/membalancer_abit/parameters/pages_per_pass  # the whole region every pass
WARM=$((32 << 20)); SIZE=$((256 << 20))
start_mx --size 256M --hot-size 32M --per-page --sweep-period 4 --preferred-node 1 --thp off
warm=$(mx_field $MX_PID hot_start); region=$(mx_field $MX_PID region_start)
echo "pid=$MX_PID region=$region warm=$warm"
check "workload starts on node 1 ($(on_node $MX_PID $warm $WARM 1) warm pages)" \
	[ "$(on_node $MX_PID $warm $WARM 1)" -ge $((WARM / 4096 * 99 / 100)) ]
$S/runt.sh $MX_PID migrate --sampler abit --interval 500 --display json > /tmp/mb.json 2>/tmp/mb.err &
mb=$!
t=$(wait_on_node $MX_PID $warm $WARM 0 95 60)
echo "warm range 95% on node 0 after: $t s"
check "95% of the warm range on node 0 (took $t s; $(on_node $MX_PID $warm $WARM 0) of $((WARM / 4096)) pages)" \
	[ "$t" != timeout ]
sleep 3  # more intervals: the cold rest must still not move
line=$(numa_line $MX_PID $region)
echo "numa_maps: $line"
cold_pages=$(((SIZE - WARM) / 4096)); n1=$(numa_pages "$line" 1)
check "numa_maps: the cold rest stays on node 1 ($n1 of $cold_pages pages)" [ "$n1" -ge $((cold_pages * 99 / 100)) ]
kill -TERM $mb; wait $mb; st=$?
check "membalancer exits 0 on SIGTERM (status $st)" [ $st -eq 0 ]
timeline /tmp/mb.json
grep '"type":"summary"' /tmp/mb.json | grep -o '"by_process":.*"queued_pages"'
check "summary: the pages moved as free-room promotions" \
	grep -q '"type":"summary".*"direction":"promote","reason":"free-room","requested":[0-9]*,"moved":[1-9]' /tmp/mb.json
grep -v '^{' /tmp/mb.err | head -5
stop_mx
finish
