#!/bin/sh
# demo_tiering.sh [FAST SLOW [SECONDS]]: the tiering demo `make demo` runs
# (in a VM, or on a host with two NUMA nodes): memexercise's 64 MiB hot set
# starts on the SLOW node; `runt.sh PPID migrate` moves it to the FAST node
# while the histogram view shows the accesses shift; then one summary line.
# Needs root. Defaults: FAST 0, SLOW 1, 30 seconds.
set -u
fast=${1:-0}; slow=${2:-1}; secs=${3:-30}
here=$(cd "$(dirname "$0")" && pwd)
bin=$here/../bin
scripts=$here; [ -x "$scripts/runt.sh" ] || scripts=/opt/membalancer/scripts  # the VM runs a copy elsewhere
[ -x "$bin/memexercise" ] || bin=$(dirname "$(command -v memexercise)")
work=$(mktemp -d /tmp/mbdemo.XXXXXX)
sampler=auto
[ -e /dev/membalancer_abit ] && sampler=abit  # sees every hot page, on any CPU
# The hot set is the whole resident region (--no-cold-touch), so its
# numa_maps line says where the hot set is.
"$bin/memexercise" --size 256M --hot-size 64M --no-cold-touch --preferred-node "$slow" --thp off \
	--duration 0 --report "$work/mx.json" --ready-file "$work/ready" > "$work/mx.out" 2>&1 &
mx=$!
trap 'kill $mx 2>/dev/null; rm -rf "$work"' EXIT INT TERM
i=0; while [ ! -e "$work/ready" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
[ -e "$work/ready" ] || { cat "$work/mx.out"; echo "demo: the workload did not start" >&2; exit 1; }
region=$(sed -n 's/.*"region_start":"0x\([^"]*\)".*/\1/p' "$work/mx.json")
hot_pages=$((64 << 8))
# on NODE: pages of the hot set on NODE now.
on() { v=$(grep "^$region " /proc/$mx/numa_maps | tr ' ' '\n' | sed -n "s/^N$1=//p"); echo "${v:-0}"; }
before=$(on "$fast")
echo "demo: pid $mx, 64 MiB hot set on node $slow ($(on "$slow") pages there, $before on node $fast); tiers $fast:$slow, sampler $sampler"
start=$(cut -d' ' -f1 /proc/uptime)
# Note the first moment 95% of the hot set is on the fast node.
( while :; do
	if [ "$(on "$fast")" -ge $((hot_pages * 95 / 100)) ]; then
		awk -v a="$start" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.1f\n", b - a }' > "$work/t95"
		exit 0
	fi
	sleep 0.5
done ) &
watch=$!
"$scripts/runt.sh" "$mx" migrate --tiers "$fast:$slow" --sampler "$sampler" --interval 1000 --duration "$secs" --top 3
kill $watch 2>/dev/null
after=$(on "$fast")
share=$(awk -v a="$after" -v h="$hot_pages" 'BEGIN { printf "%.1f", 100 * a / h }')
t95=$(cat "$work/t95" 2>/dev/null || echo "not within ${secs} s")
echo "demo: ${share}% of the hot set is on the fast node $fast (it started on node $slow); pages there went from $before to $after ($(( (after - before) / 256 )) MiB moved); 95% reached after ${t95}${t95:+ s}" | sed 's/ s s$/ s/'
