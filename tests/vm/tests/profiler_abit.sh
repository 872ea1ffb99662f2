#!/bin/sh
# vm-nodes: 0:cpus=0-1,mem=1G;1:mem=1G
# vm-timeout: 400
# profiler record --sampler abit (the helper module's accessed bits): the
# report's hottest regions are memexercise's hot range, on the node its
# memory is bound to, attributed to its pid; the heatmap renders.
. /opt/membalancer/vm/lib.sh
echo never > /sys/kernel/mm/transparent_hugepage/enabled
B=/opt/membalancer/bin
cd /tmp
rm -f /tmp/ab.prof /tmp/ab.rep /tmp/ab.png
$B/profiler record --sampler abit --duration 10 -q -o /tmp/ab.prof -- \
	$B/memexercise --size 64M --hot-offset 16M --hot-size 8M --thp off --bind-node 1 \
	--duration 0 --report /tmp/ab.rep
st=$?
check "profiler record exits 0 (status $st)" [ "$st" -eq 0 ]
cat /tmp/ab.rep
pid=$(sed -n 's/.*"pid":\([0-9]*\),.*/\1/p' /tmp/ab.rep)
hot=$(sed -n 's/.*"hot_start":"\(0x[0-9a-f]*\)".*/\1/p' /tmp/ab.rep)
[ -n "$pid" ] && [ -n "$hot" ] || { fail "memexercise did not report"; finish; }
$B/profiler report /tmp/ab.prof
$B/profiler report --by region --top 4 --format csv /tmp/ab.prof > /tmp/regions.csv
st=$?
check "profiler report exits 0 (status $st)" [ "$st" -eq 0 ]
cat /tmp/regions.csv
n=0
# rank,pid,name,start,end,accesses,share_pct,pages,node,mapping
for line in $(sed 1d /tmp/regions.csv); do
	rpid=$(echo "$line" | cut -d, -f2); start=$(echo "$line" | cut -d, -f4); node=$(echo "$line" | cut -d, -f9)
	check "region $start belongs to memexercise ($rpid)" [ "$rpid" = "$pid" ]
	check "region $start lies in the hot range $hot+8M" [ $((start)) -ge $((hot)) -a $((start)) -lt $((hot + 8388608)) ]
	check "region $start is on node 1 ($node)" [ "$node" = 1 ]
	n=$((n + 1))
done
check "four hottest regions listed ($n)" [ "$n" -eq 4 ]
$B/profiler heatmap /tmp/ab.prof -o /tmp/ab.png
check "heatmap written" [ -s /tmp/ab.png ]
finish
