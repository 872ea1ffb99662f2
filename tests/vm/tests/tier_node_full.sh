#!/bin/sh
# vm-nodes: 0:cpus=0-1,mem=512M;1:mem=768M;2:mem=512M
# vm-timeout: 300
# A full target node (docs/reliability.md, "Helper module and full nodes").
# Tiers {0} and {1,2}. membalancer runs in a cpuset without node 1, so the
# kernel refuses every page it moves to node 1 exactly as it does on a full
# node (the migration's page allocation on node 1 fails: move_pages ENOMEM),
# while node 1 still shows the most free memory of its tier: the policy
# would pick it every interval. Node 0 is filled below the low watermark
# (35%) with a cold region; `tier --migrate` must put its pages on node 2
# (none on node 1), count node 1's refusals, and leave node 1 waiting
# between tries rather than asking it again every interval.
. /opt/membalancer/vm/lib.sh
echo never > /sys/kernel/mm/transparent_hugepage/enabled
node_free() { sed -n 's/.*MemFree: *\([0-9]*\) kB/\1/p' /sys/devices/system/node/node$1/meminfo; }
node_total() { sed -n 's/.*MemTotal: *\([0-9]*\) kB/\1/p' /sys/devices/system/node/node$1/meminfo; }
total0=$(node_total 0)
low=$((total0 * 35 / 100))
# The cold region leaves node 0 with 30% free, below the 35% low watermark:
# about 15% of node 0 (~70 MB) goes down to reach the 45% high one, at
# 16 MB/s (8 MB per 500 ms interval): about 9 intervals of demotions, so
# node 1 is tried again when its first wait (4 intervals) ends.
cold_mb=$(( ($(node_free 0) - total0 * 30 / 100) / 1024 ))
echo "node 0: total $total0 kB, free $(node_free 0) kB; cold region $cold_mb MB"
start_mx --size ${cold_mb}M --touch-once --preferred-node 0 --thp off
r=$(mx_field $MX_PID region_start)
before=$(numa_line $MX_PID $r); echo "before: $before"
check "node 0 starts below the low watermark ($(node_free 0) < $low kB)" [ "$(node_free 0)" -lt "$low" ]

echo +cpuset > /sys/fs/cgroup/cgroup.subtree_control
mkdir -p /sys/fs/cgroup/no_node1
echo 0,2 > /sys/fs/cgroup/no_node1/cpuset.mems
check "cpuset without node 1" [ "$(cat /sys/fs/cgroup/no_node1/cpuset.mems.effective)" = "0,2" ]
fails0=$(dmesg | grep -c 'page allocation failure')
sh -c "echo \$\$ > /sys/fs/cgroup/no_node1/cgroup.procs && exec membalancer tier --pid $MX_PID --migrate \
	--tiers 0:1,2 --watermark 35:45 --rate-limit 16M --sampler abit --interval 500 --display json --duration 12" \
	> /tmp/mb.json 2> /tmp/mb.err
st=$?
check "membalancer exits 0 (status $st)" [ $st -eq 0 ]
grep -v '^{' /tmp/mb.err | head -5
after=$(numa_line $MX_PID $r); echo "after:  $after"
n1=$(numa_pages "$after" 1); n2=$(numa_pages "$after" 2)
check "cold pages went to node 2 ($n2 pages)" [ "$n2" -gt 0 ]
check "none to node 1, which refused them ($n1 pages)" [ "$n1" -eq 0 ]
check "node 0 ends above the low watermark ($(node_free 0) > $low kB)" [ "$(node_free 0)" -gt "$low" ]
echo "kernel: $(( $(dmesg | grep -c 'page allocation failure') - fails0 )) 'page allocation failure' reports (rate-limited) for node 1"

# Per interval: planned demotions, and node 1's refusals, marks and state.
grep '"type":"interval"' /tmp/mb.json | while read -r l; do
	echo "$l" | sed 's/.*"interval":\([0-9]*\),.*"demote_pages":\([0-9]*\).*/  #\1 plan -\2/' | tr -d '\n'
	echo "$l" | grep -o '"target_full":\[[^]]*\]' | sed 's/"target_full":/ /'
done
sum=$(grep '"type":"summary"' /tmp/mb.json)
n1json=$(echo "$sum" | grep -o '"target_full":\[[^]]*\]' | grep -o '{"node":1,[^}]*}')
n2json=$(echo "$sum" | grep -o '"target_full":\[[^]]*\]' | grep -o '{"node":2,[^}]*}')
demote=$(echo "$sum" | grep -o '"demote":{[^}]*}')
echo "summary: node 1 $n1json; node 2 $n2json; demote $demote"
jnum() { echo "$1" | sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p"; }
refused=$(jnum "$n1json" refused); marks=$(jnum "$n1json" marks); skipped=$(jnum "$n1json" skipped)
taken=$(jnum "$n2json" taken); moved=$(jnum "$demote" moved); redirected=$(jnum "$demote" redirected)
check "node 1's refusals counted ($refused pages)" [ "${refused:-0}" -gt 0 ]
check "node 2 took node 1's pages ($taken pages)" [ "${taken:-0}" -gt 0 ]
check "every demoted page of the region is counted as moved ($moved >= $n2)" [ "${moved:-0}" -ge "$n2" ]
check "redirected pages = pages node 2 took ($redirected = $taken)" [ "${redirected:-0}" -eq "${taken:-0}" ]
check "no demotion failed for want of room" sh -c "! echo '$demote' | grep -q ENOMEM"
# Waiting: node 1 marked full in some intervals, tried again after the
# backoff (4 intervals, then 8), never refusing in consecutive intervals
# while marked.
full_intervals=$(grep '"type":"interval"' /tmp/mb.json | grep -c '"node":1,[^}]*"full":true')
intervals=$(grep -c '"type":"interval"' /tmp/mb.json)
check "node 1 waited ($full_intervals of $intervals intervals marked full)" [ "$full_intervals" -ge 3 ]
check "node 1 tried again after its wait (marked $marks times)" [ "${marks:-0}" -ge 2 ]
check "node 1 marked at most once per wait ($marks for $intervals intervals)" [ "${marks:-0}" -le $((intervals / 4 + 1)) ]
stop_mx
finish
