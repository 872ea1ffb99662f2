#!/usr/bin/env bash
# make demo: tiering for real. On a host with at least two NUMA nodes that
# have memory, scripts/demo_tiering.sh runs here (fast: the first node with
# CPUs; slow: a CPU-less node if there is one, else another node). Otherwise
# the VM harness boots a guest with a fast node (CPUs, 1 GiB) and a
# memory-only node (2 GiB), the helper module loaded, and runs it there.
# Needs root.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ "$(id -u)" -ne 0 ]; then
	echo "make demo: needs root (BPF programs, move_pages of another process)" >&2
	exit 1
fi
mem_nodes=() cpu_nodes=() cpuless=()
for d in /sys/devices/system/node/node[0-9]*; do
	[ -e "$d/meminfo" ] || continue
	n=${d##*node}
	total=$(sed -n 's/.*MemTotal: *\([0-9]*\) kB/\1/p' "$d/meminfo")
	[ "${total:-0}" -gt 0 ] || continue
	mem_nodes+=("$n")
	if [ -n "$(tr -d '\n' < "$d/cpulist")" ]; then cpu_nodes+=("$n"); else cpuless+=("$n"); fi
done
if [ ${#mem_nodes[@]} -ge 2 ] && [ ${#cpu_nodes[@]} -ge 1 ]; then
	fast=${cpu_nodes[0]}
	slow=${cpuless[0]:-}
	if [ -z "$slow" ]; then for n in "${mem_nodes[@]}"; do [ "$n" != "$fast" ] && { slow=$n; break; }; done; fi
	echo "make demo: $(( ${#mem_nodes[@]} )) NUMA nodes here: fast node $fast, slow node $slow"
	exec "$here/demo_tiering.sh" "$fast" "$slow" 20
fi
echo "make demo: one NUMA node here; booting a VM with a fast node 0 (2 CPUs, 1 GiB) and a memory-only node 1 (2 GiB)"
exec "$here/../tests/vm/run.sh" --nodes "0:cpus=0-1,mem=1G;1:mem=2G" --script "$here/demo_tiering.sh" --timeout 300
