#!/bin/sh
# vm-nodes: 0:cpus=0-1,mem=1G;1:mem=2G
# vm-timeout: 500
# Demotion: the tracked tree fills node 0 past the low watermark with cold
# pages (touched once, never sampled again) while its hot set sits on node 1.
# `runt.sh PPID migrate`: cold pages go down, the hot set comes up, and node
# 0 ends with more free memory than the low watermark.
. /opt/membalancer/vm/lib.sh
S=/opt/membalancer/scripts
echo never > /sys/kernel/mm/transparent_hugepage/enabled
node_free() { sed -n 's/.*MemFree: *\([0-9]*\) kB/\1/p' /sys/devices/system/node/node$1/meminfo; }
node_total() { sed -n 's/.*MemTotal: *\([0-9]*\) kB/\1/p' /sys/devices/system/node/node$1/meminfo; }
total0=$(node_total 0); low=$((total0 * 5 / 100)); high=$((total0 * 10 / 100))
HOT=$((64 << 20))
# The cold process leaves about 24 MB free on node 0 (below the low watermark).
cold_mb=$(( ($(node_free 0) - 24 * 1024) / 1024 ))
echo "node 0: total ${total0} kB, free $(node_free 0) kB, watermarks low ${low} high ${high} kB; cold ${cold_mb} MB"
rm -f /tmp/cold.json /tmp/hot.json /tmp/cold.ready /tmp/hot.ready
( memexercise --size ${cold_mb}M --touch-once --preferred-node 0 --thp off --duration 0 \
	--report /tmp/cold.json --ready-file /tmp/cold.ready &
  memexercise --size 64M --hot-size 64M --preferred-node 1 --thp off --duration 0 \
	--report /tmp/hot.json --ready-file /tmp/hot.ready &
  wait ) &
tree=$!
i=0; while [ ! -e /tmp/cold.ready -o ! -e /tmp/hot.ready ] && [ $i -lt 900 ]; do sleep 0.2; i=$((i + 1)); done
check "both workloads ready" [ -e /tmp/cold.ready -a -e /tmp/hot.ready ]
cold=$(cat /tmp/cold.ready); hotp=$(cat /tmp/hot.ready)
cregion=$(sed -n 's/.*"region_start":"\([^"]*\)".*/\1/p' /tmp/cold.json)
hstart=$(sed -n 's/.*"hot_start":"\([^"]*\)".*/\1/p' /tmp/hot.json)
free_before=$(node_free 0)
echo "cold pid $cold region $cregion; hot pid $hotp hot $hstart; node 0 free ${free_before} kB"
check "node 0 starts below the low watermark (${free_before} < ${low} kB)" [ "$free_before" -lt "$low" ]
before=$(numa_line $cold $cregion); echo "cold numa_maps before: $before"

$S/runt.sh $tree migrate --sampler abit --interval 500 --watermark 5:10 --display json > /tmp/mb.json 2>/tmp/mb.err &
mb=$!
t=$(wait_on_node $hotp $hstart $HOT 0 95 120)
echo "hot set 95% on node 0 after: $t s"
check "the hot set comes up: 95% on node 0 (took $t s; $(on_node $hotp $hstart $HOT 0) of $((HOT / 4096)) pages)" [ "$t" != timeout ]
sleep 3
after=$(numa_line $cold $cregion); echo "cold numa_maps after:  $after"
down=$(( $(numa_pages "$after" 1) - $(numa_pages "$before" 1) ))
check "cold pages went down to node 1 ($down pages)" [ "$down" -gt 0 ]
# Promoting the hot set takes node 0 below the watermark again; the next
# watermark check demotes more. Wait for it rather than read one moment.
i=0; while [ "$(node_free 0)" -le "$low" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
free_after=$(node_free 0)
check "node 0 ends above the low watermark (${free_after} > ${low} kB, after $((i / 10)) s more)" [ "$free_after" -gt "$low" ]
kill -TERM $mb; wait $mb; st=$?
check "membalancer exits 0 on SIGTERM (status $st)" [ $st -eq 0 ]
timeline /tmp/mb.json
grep '"type":"summary"' /tmp/mb.json | grep -o '"by_process":.*"queued_pages"'
check "summary: demotions moved, counting never-sampled pages" grep -q '"type":"summary".*"demote":{"requested":[0-9]*,"moved":[1-9]' /tmp/mb.json
check "never-sampled pages were demoted" grep -q '"unsampled_demoted":[1-9]' /tmp/mb.json
grep -v '^{' /tmp/mb.err | head -5
kill $cold $hotp $tree 2>/dev/null; wait
finish
