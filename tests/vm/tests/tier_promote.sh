#!/bin/sh
# vm-nodes: 0:cpus=0-1,mem=1G;1:mem=2G
# vm-timeout: 500
# Tiering on a fast node with CPUs and a memory-only node: a process maps
# 512 MB on node 1 and keeps touching a 64 MB hot range; `runt.sh PPID
# migrate` with the abit sampler brings >= 95% of the hot range to node 0
# while the cold rest stays on node 1. A child forked after membalancer
# started is balanced too. A report-only run moves nothing.
. /opt/membalancer/vm/lib.sh
S=/opt/membalancer/scripts
echo never > /sys/kernel/mm/transparent_hugepage/enabled
# The scanner's budget covers both processes' 640 MB every pass: with the
# default (65536 entries shared by the targets) the parent's 512 MB region is
# visited every fourth pass once the child exists, its hot pages are reported
# about once per interval and their heat hovers at the hot floor (2): whether
# they count as hot then depends on how fast the guest runs.
echo 262144 > /sys/module/membalancer_abit/parameters/pages_per_pass
HOT=$((64 << 20)); SIZE=$((512 << 20)); CHILD_HOT=$((16 << 20))
start_mx --size 512M --hot-size 64M --child-size 128M --preferred-node 1 --thp off \
	--children 1 --spawn-after /tmp/spawn
hot=$(mx_field $MX_PID hot_start); region=$(mx_field $MX_PID region_start)
echo "pid=$MX_PID region=$region hot=$hot"
check "workload starts on node 1 ($(on_node $MX_PID $hot $HOT 1) hot pages)" \
	[ "$(on_node $MX_PID $hot $HOT 1)" -ge $((HOT / 4096 * 99 / 100)) ]

# Report only: the plan is shown, nothing moves.
$S/runt.sh $MX_PID --sampler abit --interval 500 --duration 4 --display json > /tmp/report_only.json 2>/tmp/report_only.err
check "report-only run exits 0" [ $? -eq 0 ]
check "report-only run planned promotions" grep -q '"promote_pages":[1-9]' /tmp/report_only.json
check "report-only run moved nothing ($(on_node $MX_PID $hot $HOT 0) hot pages on node 0)" \
	[ "$(on_node $MX_PID $hot $HOT 0)" -eq 0 ]

# Balancing: runt.sh PPID migrate.
$S/runt.sh $MX_PID migrate --sampler abit --interval 500 --display json > /tmp/mb.json 2>/tmp/mb.err &
mb=$!
sleep 1
touch /tmp/spawn  # the child is forked now, after membalancer started
t=$(wait_on_node $MX_PID $hot $HOT 0 95 90)
echo "hot range 95% on node 0 after: $t s"
check "95% of the hot range on node 0 (took $t s; $(on_node $MX_PID $hot $HOT 0) of $((HOT / 4096)) pages)" [ "$t" != timeout ]
i=0; while [ "$(mx_pids | wc -l)" -lt 2 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
child=$(mx_pids | sed -n 2p)
chot=$(mx_field "$child" hot_start)
echo "child=$child hot=$chot"
tc=$(wait_on_node "$child" "$chot" $CHILD_HOT 0 95 90)
check "the child forked after the start is balanced too (took $tc s)" [ "$tc" != timeout ]
sleep 2
line=$(numa_line $MX_PID $region)
echo "numa_maps: $line"
cold_pages=$(((SIZE - HOT) / 4096)); n0=$(numa_pages "$line" 0); n1=$(numa_pages "$line" 1)
check "numa_maps: the hot range on node 0 ($n0 pages, hot range $((HOT / 4096)))" [ "$n0" -ge $((HOT / 4096 * 95 / 100)) ]
check "numa_maps: the cold rest stays on node 1 ($n1 of $cold_pages pages)" [ "$n1" -ge $((cold_pages * 99 / 100)) ]
kill -TERM $mb; wait $mb; st=$?
timeline /tmp/mb.json
grep '"type":"summary"' /tmp/mb.json | grep -o '"by_process":.*"queued_pages"'
check "membalancer exits 0 on SIGTERM (status $st)" [ $st -eq 0 ]
tail -1 /tmp/mb.json | cut -c1-600
check "summary counts the moved pages" grep -q '"type":"summary".*"promote":{"requested":[0-9]*,"moved":[1-9]' /tmp/mb.json
grep -v '^{' /tmp/mb.err | head -5
stop_mx
finish
