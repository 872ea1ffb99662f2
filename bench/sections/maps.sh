#!/usr/bin/env bash
# Memory maps in a profile of a process tree that maps and unmaps all the
# time: `profiler record` (fault sampler) of `churn` for SECONDS; the file's
# bytes of maps and the mappings its reader holds (bench/maps_cost), each as
# a ratio against a baseline of the same recording: every process's first
# maps written once, every distinct mapping of a process held once. Prints
# one markdown section; no target (a measure for docs/profile-format.md).
# Then the cost of a system call in a recorded process (bench/maps_syscall_cost,
# best of 5 rounds): mmap+munmap and getpid under `profiler record`, against
# the same program with no recorder (the baseline), in the same run.
# Once under each clock of maps changes (--maps-clock: fexit, tracepoints,
# sys-exit) this kernel offers. Then the recorder's CPU time while the
# recorded process mmaps (and munmaps) in a tight loop, against the same
# recorder while it calls getpid in a tight loop (the baseline, same run).
# Needs root (BPF, perf events).
#   MB_BIN_DIR=bin (default)  BENCH_QUICK=1: 2 s instead of 5
#   MAPS_CLOCKS="fexit tracepoints sys-exit" (default); "default": no
#   --maps-clock (a build from before it)
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
bin=${MB_BIN_DIR:-$repo/bin}
B=$repo/${BENCH_BUILD:-build}/bench
secs=5
[ "${BENCH_QUICK:-0}" = 1 ] && secs=2
work=$(mktemp -d /tmp/mb-maps.XXXXXX)
trap 'rm -rf "$work"' EXIT

"$bin/profiler" record --sampler fault -q -o "$work/churn.prof" -- "$bin/churn" --duration "$secs" --seed 1 \
	> "$work/out" 2> "$work/err" || { echo "maps.sh: profiler record failed: $(cat "$work/err")"; exit 1; }
"$B/maps_cost" "$work/churn.prof" > "$work/cost" 2>&1 || { echo "maps.sh: maps_cost failed: $(cat "$work/cost")"; exit 1; }
"$B/maps_syscall_cost" > "$work/alone" 2>&1 || { echo "maps.sh: maps_syscall_cost failed: $(cat "$work/alone")"; exit 1; }
# clock_flag CLOCK: the profiler's arguments for it.
clock_flag() { [ "$1" = default ] || echo "--maps-clock $1"; }
clocks=${MAPS_CLOCKS:-fexit tracepoints sys-exit}
offered=""
for c in $clocks; do
	# shellcheck disable=SC2046
	if "$bin/profiler" record --sampler fault -q $(clock_flag "$c") -o "$work/calls-$c.prof" -- "$B/maps_syscall_cost" \
		> "$work/recorded-$c" 2> "$work/err-$c"; then
		offered="$offered $c"
	fi
done
[ -n "$offered" ] || { echo "maps.sh: profiler record of maps_syscall_cost failed: $(cat "$work"/err-*)"; exit 1; }
# cpu_ns PID: time on a CPU of its threads (schedstat), not its children's.
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; }
# recorder_cpu CLOCK KIND: the recorder's CPU ms (its own threads, not the
# command's) over 2 s of `maps_syscall_cost loop KIND`, after 1 s of set-up.
recorder_cpu() {
	local rec c0 c1
	# shellcheck disable=SC2046
	"$bin/profiler" record --sampler fault -q $(clock_flag "$1") -o "$work/loop.prof" --force -- \
		"$B/maps_syscall_cost" loop "$2" 3.5 > /dev/null 2>&1 &
	rec=$!
	sleep 1
	c0=$(cpu_ns "$rec")
	sleep 2
	c1=$(cpu_ns "$rec")
	wait "$rec"
	awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.1f", (b - a) / 1e6 }'
}
val() { awk -v n="$1" '$1 == "RESULT" && $2 == n { print $3 }' "${2:-$work/cost}" | tail -1; }
ratio() { awk -v a="$(val "$1" "$work/recorded-$2")" -v b="$(val "$1" "$work/alone")" 'BEGIN { printf "%.2f", a / b }'; }
kib() { awk -v v="$1" 'BEGIN { printf "%.1f KiB", v / 1024 }'; }

cat <<MD
## Memory maps of a churning process tree

\`bench/sections/maps.sh\`: \`profiler record --sampler fault -- churn --duration ${secs} --seed 1\`
(a tree of processes that mmap, munmap and fork all the time, looked at every 0.5 s), read by
\`bench/maps_cost\`. Bytes of maps: the file's MAPS and maps-change chunks, against each process's
first maps written once (the baseline: what a recorder writes of a process that never changes its
maps). Held: the mappings the reader keeps (\`ProfileProcesses::mappings_held\`), against the distinct
mappings of each process (the baseline: each held once).

| file | maps chunks | bytes of maps | first maps of each process | ratio | mappings held | distinct | ratio |
|---|---|---|---|---|---|---|---|
| $(kib "$(val maps_file_bytes)") | $(val maps_chunks) | $(kib "$(val maps_bytes)") | $(kib "$(val maps_first_bytes)") | $(val maps_bytes_ratio) | $(val maps_held) | $(val maps_distinct) | $(val maps_held_ratio) |

\`\`\`
$(grep -v '^RESULT' "$work/cost")
\`\`\`

A system call in a recorded process (\`bench/maps_syscall_cost\`, best of 5 rounds of 200000): the
recorder times each maps change at its first system call, by one of three clocks (\`--maps-clock\`):
fexit on each maps call (where the kernel has BPF trampolines), the \`syscalls:sys_exit_<call>\`
tracepoints (\`CONFIG_FTRACE_SYSCALLS\`: every system call takes the kernel's slow exit path while
one is enabled, the program runs for the maps calls only), or the \`sys_exit\` raw tracepoint
(\`on_sys_exit\`, run at every system call's return on the machine), against the same calls with
no recorder. Clocks offered here:${offered}.

| clock | call | no recorder (ns) | under profiler record (ns) | ratio |
|---|---|---|---|---|
MD
for c in $offered; do
	echo "| $c | mmap + munmap of a page | $(val mmap_munmap_ns "$work/alone") | $(val mmap_munmap_ns "$work/recorded-$c") | $(ratio mmap_munmap_ns "$c") |"
	echo "| $c | getpid | $(val getpid_ns "$work/alone") | $(val getpid_ns "$work/recorded-$c") | $(ratio getpid_ns "$c") |"
done
first=${offered# }
first=${first%% *}
getpid_ms=$(recorder_cpu "$first" getpid)
mmap_ms=$(recorder_cpu "$first" mmap)
cat <<MD

The recorder's CPU time (\`/proc/PID/task/*/schedstat\`, its own threads) over 2 s of the recorded process
calling mmap + munmap in a tight loop (each first maps call since a look makes it look again, at
most every 20 ms), against 2 s of it calling getpid in a tight loop (no maps change), clock ${first}:

| process loops on | recorder CPU (ms in 2 s) |
|---|---|
| getpid (baseline) | ${getpid_ms} |
| mmap + munmap | ${mmap_ms} |
| ratio | $(awk -v a="$mmap_ms" -v b="$getpid_ms" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "n/a (baseline 0 ms)" }') |
MD
