#!/bin/sh
# vm-nodes: 0:cpus=0-1,mem=1G;1:mem=2G
# vm-timeout: 400
# Room for new pages is kept on the fast node only if new pages land there.
# A workload allocates 128 MB while membalancer watches, with the region
# MPOL_PREFERRED on node 1 although node 0 has room: once that growth is
# seen, (almost) no room is kept on node 0 for it (reserve_elsewhere_bytes),
# though pages are promoted there meanwhile (pages moved in are not pages
# that landed). The same workload preferring node 0: room is kept there, and
# none is reported as of no use.
. /opt/membalancer/vm/lib.sh
S=/opt/membalancer/scripts
echo never > /sys/kernel/mm/transparent_hugepage/enabled
# "RESERVE ELSEWHERE" per interval of a json run.
reserve_series() {
	grep '"type":"interval"' "$1" |
		sed 's/.*"reserve_bytes":\([0-9]*\),"reserve_withheld_bytes":[0-9]*,"reserve_elsewhere_bytes":\([0-9]*\).*/\1 \2/'
}
# After the first interval that saw the growth land elsewhere, at most 5% of
# the room kept. Some pages do land on node 0: the code and library pages
# the process maps as it starts touching (numa_maps counts them), its stack
# and heap; measured 0.1% to 1.8%, most of it in the interval the touching
# starts, when the growth is smallest.
given_up() {
	reserve_series "$1" | awk '{ if ($2 > 0) seen++; if (seen >= 2 && $1 * 20 > $2) bad++ } END { exit !(seen >= 2 && !bad) }'
}
# Room kept after the first interval (at least 1 MB: the growth is 128 MB),
# none reported as of no use.
kept() { reserve_series "$1" | awk 'NR > 1 && $1 >= 1048576 { k = 1 } $2 > 0 { bad++ } END { exit !(k && !bad) }'; }
PAGES=$((128 << 20 >> 12))
for node in 1 0; do
	rm -f /tmp/touch $MX_REPORT
	memexercise --duration 0 --report $MX_REPORT --size 128M --hot-size 16M --preferred-node $node --thp off \
		--wait-before-touch /tmp/touch > /tmp/mx.out 2>&1 &
	MX_PID=$!
	$S/runt.sh $MX_PID migrate --sampler abit --interval 500 --display json > /tmp/mb.$node.json 2>/tmp/mb.err &
	mb=$!
	sleep 2  # intervals before the growth
	touch /tmp/touch
	i=0; while ! grep -q '"pid"' $MX_REPORT 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
	region=$(mx_field $MX_PID region_start)
	[ -n "$region" ] || { cat /tmp/mx.out; fail "memexercise preferring node $node did not touch its region"; finish; }
	sleep 4  # intervals after it
	line=$(numa_line $MX_PID $region)
	kill -TERM $mb; wait $mb; st=$?
	check "node $node: membalancer exits 0 on SIGTERM (status $st)" [ $st -eq 0 ]
	stop_mx
	echo "node $node: numa_maps: $line"
	timeline /tmp/mb.$node.json
	reserve_series /tmp/mb.$node.json | tr '\n' ';'; echo
	grep -v '^{' /tmp/mb.err | head -5
	if [ $node = 1 ]; then
		n1=$(numa_pages "$line" 1); n0=$(numa_pages "$line" 0)
		promoted=$(grep '"type":"summary"' /tmp/mb.1.json |
			sed -n 's/.*"directions":{"promote":{"requested":[0-9]*,"moved":\([0-9]*\).*/\1/p')
		# Left alone, the CPUs' node 0 would have all of it: the region's
		# pages on node 0 are those membalancer promoted (numa_maps was read
		# before it stopped, so it may have moved a few more since).
		check "node 1: the region landed on node 1 ($n1 pages there, $n0 on node 0, ${promoted:-?} promoted)" \
			[ "${promoted:-0}" -gt 0 -a "$n0" -le $((${promoted:-0} + 64)) ]
		check "node 1: pages were promoted to node 0 meanwhile (${promoted:-?})" [ "${promoted:-0}" -ge 512 ]
		check "node 1: room not kept on node 0 once new pages are seen to land elsewhere" given_up /tmp/mb.1.json
	else
		n0=$(numa_pages "$line" 0)
		check "node 0: the region landed on node 0 ($n0 pages)" [ "$n0" -ge $((PAGES * 95 / 100)) ]
		check "node 0: room kept where new pages land, none given up" kept /tmp/mb.0.json
	fi
done
finish
