#!/usr/bin/env bash
# Mover throughput and rate limit (bench/mover_cost.cpp), in a two-node qemu
# guest (tests/vm/run.sh): raw move_pages(2) at its best batch size against
# mb::Mover unthrottled, same run; then the Mover throttled for 10 s. Prints a
# markdown section ("## Mover") on stdout; exits 1 when a target is missed,
# the VM's status when it could not run (77: skipped, see tests/vm/run.sh).
#   MOVER_COST=path   the benchmark program (default build/bench/mover_cost)
#   MOVER_MB=256  MOVER_RATE_MIB=auto (64, or an eighth of raw if less)  MOVER_SECONDS=10
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
prog=${MOVER_COST:-$repo/build/bench/mover_cost}
mb=${MOVER_MB:-256} rate=${MOVER_RATE_MIB:-auto} secs=${MOVER_SECONDS:-10}
[ -x "$prog" ] || { echo "mover.sh: $prog is missing: run 'make bench-bins'" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The program goes in as the guest's only project binary (MB_VM_BIN), so
# that run.sh copies its shared libraries too (--add files get none).
mkdir -p "$work/bin"
cp "$prog" "$work/bin/mover_cost"
cat > "$work/mover_guest.sh" <<GUEST
#!/bin/sh
# Automatic NUMA balancing off: with it on, move_pages (6.1) reported ENOENT
# for most pages on the remote node, and it moves pages behind our back.
echo 0 > /proc/sys/kernel/numa_balancing
echo "BENCH nodes=\$(ls -d /sys/devices/system/node/node[0-9]* | wc -l) cpus=\$(nproc) numa_balancing=\$(cat /proc/sys/kernel/numa_balancing)"
mover_cost $mb $rate $secs
GUEST
MB_VM_BIN=$work/bin "$repo/tests/vm/run.sh" --nodes "0:cpus=0-1,mem=1G;1:mem=1G" --no-module \
	--script "$work/mover_guest.sh" --timeout 900 --log "$repo/build/vm/mover_cost.log" > "$work/out" 2> "$work/err"
st=$?
if [ $st -ne 0 ]; then
	cat "$work/err" >&2; grep -v '^\[' "$work/out" | tail -20 >&2
	echo "mover.sh: VM run failed (status $st)" >&2
	exit $st
fi
val() { awk -v n="$1" '$1 == "RESULT" && $2 == n { print $3 }' "$work/out" | tail -1; }
raw=$(val raw_best_MiB_s) ours=$(val mover_unthrottled_MiB_s) ratio=$(val mover_unthrottled_ratio)
best=$(val raw_best_batch) batch=$(val mover_batch_pages)
target=$(val throttle_target_MiB_s) thr=$(val mover_throttled_MiB_s) err=$(val mover_throttled_error_pct)
abandon=$(val mover_abandon_ms) failed=$(val mover_failed_pages)
c1=$(val call_in_place_us_batch_1) c512=$(val call_in_place_us_batch_512)
if [ -z "$ratio" ] || [ -z "$err" ]; then
	echo "mover.sh: no measurements in the guest output" >&2; grep -v '^\[' "$work/out" | tail -20 >&2; exit 1
fi
kver=$(sed -n 's/^run.sh: kernel \([^,]*\),.*/\1/p' "$work/err")
accel=$(sed -n 's/^run.sh: .*accel \([a-z]*\),.*/\1/p' "$work/err")
ok1=$(awk -v r="$ratio" 'BEGIN { print (r >= 0.90) ? "yes" : "**no**" }')
ok2=$(awk -v e="$err" 'BEGIN { print (e >= -5 && e <= 5) ? "yes" : "**no**" }')
cat <<EOF
## Mover

\`mb::Mover\` (membalancer/mover.cpp) against raw \`move_pages(2)\`, in a qemu guest with
two NUMA nodes (node 0: 2 CPUs, 1 GiB; node 1: 1 GiB, no CPUs), guest kernel $kver
($accel). bench/mover_cost.cpp touches $mb MiB of 4 KiB pages (THP off) on node 0, then:

1. **Raw baseline:** \`numa_move_pages(MPOL_MF_MOVE)\` moving parts of the region node 0 → 1 → 0
   in batches of 16, 32, … 4096 pages: round trips of a quarter of the region, three per
   size, median; the fastest batch size is kept.
2. **Unthrottled, same run:** 24 paired rounds on eighths of the region, each a round trip
   of raw \`move_pages\` at that batch size and one of the Mover with its defaults except the
   rate limit (\`rate_limit_bytes_per_s = 0\`, batch $batch pages, 1 worker; one \`submit\` per
   direction, timed to \`wait_idle\`), which of the two goes first alternating. Throughput is
   bytes moved / wall time; the ratio is the median of the rounds' ratios (the two halves of
   a round share the host's load of the moment: the build machine's other jobs make TCG's
   speed swing by 2× within seconds), throughputs are medians. Every page is checked to
   have reached its node.
3. **Throttled:** the Mover at $(awk -v t="$target" 'BEGIN { printf "%g", t }') MiB/s (64 MiB/s, or an eighth of the raw throughput when
   that is less: under TCG raw \`move_pages\` runs at tens to a couple of hundred MiB/s and slows down by
   half when the host is busy, and the rate, not the machine, must be the limit) with more than $secs s of work queued (the region back and
   forth); bytes moved (pages whose status is the target node) read after $secs s, over the
   elapsed time. Then \`abandon()\` drops the rest: $(awk -v a="$abandon" 'BEGIN { printf "%.1f", a }') ms.

Automatic NUMA balancing is switched off in the guest (\`kernel.numa_balancing = 0\`): with it
on, 6.1's \`move_pages\` reported \`ENOENT\` for most pages just moved to the CPU-less node
(their entries made NUMA-hinting, PROT_NONE, by the balancer's scan, as far as we can tell),
and it migrates pages behind the benchmark's back.

| benchmark | baseline | ours | ratio | target | met? |
|---|---|---|---|---|---|
| Mover unthrottled throughput | raw move_pages, batch $best: $(awk -v v="$raw" 'BEGIN { printf "%.1f", v }') MiB/s | Mover, batch $batch: $(awk -v v="$ours" 'BEGIN { printf "%.1f", v }') MiB/s | $(awk -v v="$ratio" 'BEGIN { printf "%.3f", v }') | ≥ 0.90 | $ok1 |
| Mover throttled for $secs s | set rate: $(awk -v v="$target" 'BEGIN { printf "%.1f", v }') MiB/s | achieved: $(awk -v v="$thr" 'BEGIN { printf "%.2f", v }') MiB/s | $(awk -v v="$err" 'BEGIN { printf "%+.2f%%", v }') | ±5% | $ok2 |

Pages that failed to move in the throttled run: ${failed:-n/a}. The fixed cost of a call
(\`move_pages\` of pages already on the target, raw output) is $(awk -v v="$c1" 'BEGIN { printf "%.0f", v }') µs, and a call of 512 such
pages $(awk -v v="$c512" 'BEGIN { printf "%.0f", v }') µs, against $(awk -v r="$raw" 'BEGIN { printf "%.0f", (r > 0) ? 2 / r * 1e3 : 0 }') ms to migrate a 512-page batch at the raw rate: the batch
size and the Mover's own work weigh little; the spread of the rounds' ratios is the host's.

### Raw output
\`\`\`
$(grep -v '^\[' "$work/out" | grep -v '^MB_VM_' | grep -v '^RESULT ' | sed '/^$/d')
\`\`\`
EOF
[ "$ok1" = yes ] && [ "$ok2" = yes ]
