#!/usr/bin/env bash
# Time to move 95% of a hot set to the node of the CPU that uses it: the
# kernel's own NUMA balancing (kernel.numa_balancing=1, no membalancer)
# against `run_memory_balancer.sh` (numa mode, abit sampler, balancing off),
# same scenario, same guest: topology 0:cpus=0,mem=1G;1:cpus=1,mem=1G, a
# process that first-touched a 256 MiB region on node 0 (no memory policy),
# then moved to CPU 1, sweeping a 64 MiB hot range. Prints a markdown section ("## NUMA balancing"); exits
# non-zero when the guest could not run.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/numa_vs_kernel.sh" <<'GUEST'
#!/bin/sh
. /opt/membalancer/vm/lib.sh
S=/opt/membalancer/scripts
echo never > /sys/kernel/mm/transparent_hugepage/enabled
HOT=$((64 << 20))
run() { # NAME: one scenario; prints "RESULT t95_NAME seconds"
	# No memory policy (the kernel's balancing honours one): the pages land on
	# node 0 by first touch from CPU 0, then every thread moves to CPU 1.
	start_mx --size 256M --hot-size 64M --hot-offset 64M --cpu-node 0 --thp off
	hot=$(mx_field $MX_PID hot_start)
	for t in /proc/$MX_PID/task/*; do taskset -p -c 1 "${t##*/}" > /dev/null; done
	if [ "$1" = membalancer ]; then
		echo 0 > /proc/sys/kernel/numa_balancing
		$S/run_memory_balancer.sh $MX_PID --sampler abit --interval 500 --display continuous > /tmp/mb.out 2>&1 &
		mb=$!
	else
		echo 1 > /proc/sys/kernel/numa_balancing
	fi
	t=$(wait_on_node $MX_PID $hot $HOT 1 95 180)
	echo "RESULT t95_$1 $t s ($(on_node $MX_PID $hot $HOT 1) of $((HOT / 4096)) hot pages on node 1)"
	[ "$1" = membalancer ] && { kill -TERM $mb; wait $mb; }
	echo 0 > /proc/sys/kernel/numa_balancing
	stop_mx
}
run kernel
run membalancer
GUEST
"$repo/tests/vm/run.sh" --nodes "0:cpus=0,mem=1G;1:cpus=1,mem=1G" --script "$work/numa_vs_kernel.sh" \
	--timeout 600 --log "$repo/build/vm/numa_vs_kernel.log" > "$work/out" 2> "$work/err"
st=$?
if [ $st -ne 0 ]; then
	cat "$work/err" >&2; grep -v '^\[' "$work/out" | tail -20 >&2
	exit $st
fi
val() { awk -v n="$1" '$1 == "RESULT" && $2 == n { print $3 }' "$work/out" | tail -1; }
k=$(val t95_kernel) m=$(val t95_membalancer)
cat <<EOF2
## NUMA balancing: membalancer against the kernel's

Time until 95% of a 64 MiB hot set is on the node of the CPU that uses it (the process
touched its 256 MiB on node 0 from CPU 0, without a memory policy, then all its threads
were moved to CPU 1 on node 1), in one guest (qemu TCG, Debian
6.1 kernel, 2 nodes with one CPU each): first with the kernel's automatic NUMA balancing
(\`kernel.numa_balancing=1\`, no membalancer), then with it off and
\`scripts/run_memory_balancer.sh PID --sampler abit --interval 500\`. The hot pages'
nodes are read with \`move_pages\` every 0.5 s; "timeout" means not within 180 s.

| balancer | time to 95% of the hot set on node 1 |
|---|---|
| kernel NUMA balancing | ${k:-n/a} s |
| membalancer numa | ${m:-n/a} s |

\`\`\`
$(grep '^RESULT' "$work/out")
\`\`\`
EOF2
