#!/usr/bin/env bash
# Cost of the helper module's accessed-bit scanner, next to reading the same
# pages' /proc/PID/pagemap entries from user space. One VM run (tests/vm/run.sh,
# the Debian kernel under qemu): a workload maps MB MiB (4 KiB pages, THP off),
# the module scans it whole every pass; abit_pass events give pages and time
# per pass, the scanner kthread's CPU time comes from /proc/PID/schedstat; pagemap_read reads
# the same ranges. Prints a markdown table fragment on stdout.
#   bench/abit_cost.sh [MB]        (default 256)
# Exit 77 when the VM cannot run (see tests/vm/run.sh).
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
mb=${1:-256}
[[ $mb =~ ^[0-9]+$ ]] && [ "$mb" -ge 8 ] || { echo "abit_cost.sh: MB must be a number >= 8" >&2; exit 2; }
hot=$((mb / 16)); cold=$((mb - hot))
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat > "$work/abit_cost_guest.sh" <<GUEST
#!/bin/sh
. /opt/membalancer/vm/lib.sh
echo never > /sys/kernel/mm/transparent_hugepage/enabled
start_touch --hot-mb $hot --cold-mb $cold --nothp
# Whole process in one pass, default interval.
echo 100000000 > /sys/module/membalancer_abit/parameters/pages_per_pass
echo 100 > /sys/module/membalancer_abit/parameters/scan_interval_ms
kt=
for p in /proc/[0-9]*; do [ "\$(cat \$p/comm 2>/dev/null)" = membalancer_abit ] && kt=\${p#/proc/}; done
[ -n "\$kt" ] || { echo "no scanner kthread"; exit 1; }
exec 3> \$MB_DEV
echo "add \$TOUCH_PID" >&3
wait_passes 2
echo "pid == \$TOUCH_PID" > \$TR/events/membalancer/abit_pass/filter
echo 1 > \$TR/events/membalancer/abit_pass/enable
echo > \$TR/trace
set -- \$(cut -d' ' -f1 /proc/\$kt/schedstat) \$(status_field passes)
sleep 3
set -- "\$@" \$(cut -d' ' -f1 /proc/\$kt/schedstat) \$(status_field passes)
echo "BENCH kthread_ns=\$((\$3 - \$1)) passes=\$((\$4 - \$2))"
cp \$TR/trace /tmp/trace1
echo > \$TR/trace
# Same without the TLB flush, for its share of the cost.
echo 0 > /sys/module/membalancer_abit/parameters/flush_tlb
wait_passes 1
set -- \$(cut -d' ' -f1 /proc/\$kt/schedstat) \$(status_field passes)
sleep 2
set -- "\$@" \$(cut -d' ' -f1 /proc/\$kt/schedstat) \$(status_field passes)
echo "BENCH noflush_kthread_ns=\$((\$3 - \$1)) noflush_passes=\$((\$4 - \$2))"
echo 1 > /sys/module/membalancer_abit/parameters/flush_tlb
echo 0 > \$TR/events/membalancer/abit_pass/enable
exec 3>&-
awk '/abit_pass:/ { for (i = 1; i <= NF; i++) { split(\$i, kv, "="); v[kv[1]] = kv[2] }
	n++; s += v["pages_scanned"]; a += v["pages_accessed"]; d += v["duration_ns"] }
	END { if (n) printf "BENCH abit_passes=%d abit_pages=%d abit_accessed=%d abit_ns=%d\n", n, s / n, a / n, d / n }' /tmp/trace1
awk '/abit_pass:/ { for (i = 1; i <= NF; i++) { split(\$i, kv, "="); v[kv[1]] = kv[2] }
	n++; a += v["pages_accessed"] } END { if (n) printf "BENCH noflush_accessed=%d\n", a / n }' \$TR/trace
echo "BENCH \$(pagemap_read \$TOUCH_PID 20 \$HOT \$COLD)"
stop_touch
exit 0
GUEST
chmod +x "$work/abit_cost_guest.sh"

"$repo/tests/vm/run.sh" --nodes "0:cpus=0-1,mem=1G;1:mem=1G" --script "$work/abit_cost_guest.sh" \
	--timeout 300 --log "$repo/build/vm/abit_cost.log" > "$work/out" 2> "$work/err"
st=$?
if [ $st -ne 0 ]; then
	cat "$work/err" >&2; grep -v '^\[' "$work/out" | tail -20 >&2
	echo "abit_cost.sh: VM run failed (status $st)" >&2
	exit $st
fi
kver=$(sed -n 's/^run.sh: kernel \([^,]*\),.*/\1/p' "$work/err")
accel=$(sed -n 's/^run.sh: .*accel \([a-z]*\),.*/\1/p' "$work/err")
val() { grep '^BENCH' "$work/out" | tr ' ' '\n' | sed -n "s/^$1=//p" | tail -1; }
abit_pages=$(val abit_pages) abit_ns=$(val abit_ns) abit_passes=$(val abit_passes) abit_acc=$(val abit_accessed)
kns=$(val kthread_ns) passes=$(val passes) nfkns=$(val noflush_kthread_ns) nfpasses=$(val noflush_passes) nfacc=$(val noflush_accessed)
pm_pages=$(val pages) pm_present=$(val present) pm_ns=$(val ns_per_round) pm_cpu=$(val cpu_ns_per_round)
if [ -z "$abit_pages" ] || [ -z "$pm_ns" ]; then
	echo "abit_cost.sh: no measurements in the guest output" >&2; grep -v '^\[' "$work/out" | tail -20 >&2; exit 1
fi
awk -v ap="$abit_pages" -v ans="$abit_ns" -v an="$abit_passes" -v acc="$abit_acc" -v kns="$kns" -v ps="$passes" -v nfkns="$nfkns" -v nfps="$nfpasses" -v nfacc="${nfacc:-0}" \
	-v pp="$pm_pages" -v ppr="$pm_present" -v pns="$pm_ns" -v pcpu="$pm_cpu" -v mb="$mb" -v kv="$kver" -v acl="$accel" 'BEGIN {
	cpu = ps > 0 ? kns / 1e6 / ps : 0   # ms of scanner-kthread CPU per pass (schedstat)
	nfcpu = nfps > 0 ? nfkns / 1e6 / nfps : 0
	printf "Accessed-bit scanner vs. /proc/PID/pagemap, %d MiB of 4 KiB pages, guest kernel %s under qemu (%s); %d passes measured.\n\n", mb, kv, acl, an
	printf "| | abit scanner (kernel module) | pagemap read (user space) |\n|---|---:|---:|\n"
	printf "| present pages per pass | %d | %d (of %d read) |\n", ap, ppr, pp
	printf "| time per pass (ms) | %.2f | %.2f |\n", ans / 1e6, pns / 1e6
	printf "| CPU time per pass (ms) | %.2f (scanner kthread, incl. TLB flush) | %.2f |\n", cpu, pcpu / 1e6
	printf "| CPU time per pass without TLB flush (ms) | %.2f (flush_tlb=N) | |\n", nfcpu
	printf "| pages per second | %.0f | %.0f |\n", ap / (ans / 1e9), ppr / (pns / 1e9)
	printf "| pages found accessed per pass | %d (flush_tlb=N: %d) | n/a (pagemap has no accessed bit) |\n", acc, nfacc
	printf "\nTime per pass is the page-table walk (abit_pass duration_ns); the TLB flush after it is an IPI round to every CPU, slow under TCG.\n"
	printf "\nratio: abit scanner time per page / pagemap read time per page = %.2f\n", (ans / ap) / (pns / ppr)
}'
