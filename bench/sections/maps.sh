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
# Needs root (BPF, perf events).
#   MB_BIN_DIR=bin (default)  BENCH_QUICK=1: 2 s instead of 5
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
"$bin/profiler" record --sampler fault -q -o "$work/calls.prof" -- "$B/maps_syscall_cost" > "$work/recorded" 2> "$work/err" ||
	{ echo "maps.sh: profiler record of maps_syscall_cost failed: $(cat "$work/err")"; exit 1; }
val() { awk -v n="$1" '$1 == "RESULT" && $2 == n { print $3 }' "${2:-$work/cost}" | tail -1; }
ratio() { awk -v a="$(val "$1" "$work/recorded")" -v b="$(val "$1" "$work/alone")" 'BEGIN { printf "%.2f", a / b }'; }
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
recorder times each maps change at its first system call (fexit on each maps call, or, where the
kernel has no BPF trampolines, \`on_sys_exit\`, run at every system call's return while it records),
against the same calls with no recorder.

| call | no recorder (ns) | under profiler record (ns) | ratio |
|---|---|---|---|
| mmap + munmap of a page | $(val mmap_munmap_ns "$work/alone") | $(val mmap_munmap_ns "$work/recorded") | $(ratio mmap_munmap_ns) |
| getpid | $(val getpid_ns "$work/alone") | $(val getpid_ns "$work/recorded") | $(ratio getpid_ns) |
MD
