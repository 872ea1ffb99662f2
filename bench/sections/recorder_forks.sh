#!/usr/bin/env bash
# The recorders under a fork storm: CPU time and wake-ups of `profiler record`
# and `membalancer trace --record` (fault sampler) while the tracked tree
# (forkstorm) forks RATE short-lived children a second for SECONDS, against
# the same recorder on the same tree idle for as long just before (the
# baseline, same run). Prints one markdown section; no target (a measure for
# docs/profiler.md). Needs root (BPF, perf events).
#   MB_BIN_DIR=bin (default)  BENCH_QUICK=1: 2 s of storm instead of 5
#   FORK_RATE=2000
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
bin=${MB_BIN_DIR:-$repo/bin}
rate=${FORK_RATE:-2000}
secs=5
[ "${BENCH_QUICK:-0}" = 1 ] && secs=2
work=$(mktemp -d /tmp/mb-recforks.XXXXXX)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

# threads PID: "CPU_NS WAKEUPS" of its main thread, then of its other
# threads together: time on a CPU (schedstat) and voluntary context switches
# (each a sleep, then a wake-up).
threads() {
	local t main=(0 0) rest=(0 0) c w
	for t in /proc/"$1"/task/*; do
		c=$(cut -d' ' -f1 "$t/schedstat" 2>/dev/null) || continue
		w=$(awk '$1 == "voluntary_ctxt_switches:" { print $2 }' "$t/status" 2>/dev/null) || continue
		if [ "${t##*/}" = "$1" ]; then main=($c $w); else rest=($((rest[0] + c)) $((rest[1] + w))); fi
	done
	echo "${main[*]} ${rest[*]}"
}
now() { date +%s.%N; }
# The machine's IRQ work interrupts (/proc/interrupts IWI, all CPUs): the
# kernel's deferred work, a ring buffer's wake-up among it. -1 without them.
irq_work() { awk '$1 == "IWI:" { for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i; found = 1 }
	END { print found ? s : -1 }' /proc/interrupts; }
# report_field FILE NAME: a number of forkstorm's JSON line.
report_field() { sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p" "$1" | tail -1; }
# wait_file FILE SECONDS
wait_file() {
	local i=0
	while [ ! -s "$1" ] && [ $i -lt $(($2 * 10)) ]; do sleep 0.1; i=$((i + 1)); done
	[ -s "$1" ]
}

# measure NAME RECORDER_PID FORKSTORM_DIR: the idle baseline, then the storm;
# sets the row of NAME in $rows.
rows=""
measure() {
	local name=$1 rec=$2 dir=$3
	sleep 1  # set up, the first looks done
	local s0 t0 s1 t1 s2 t2 q0 q1 q2
	s0=$(threads "$rec"); t0=$(now); q0=$(irq_work)
	sleep "$secs"
	s1=$(threads "$rec"); t1=$(now); q1=$(irq_work)
	touch "$dir/start"
	wait_file "$dir/report" $((secs * 10 + 30)) || { echo "recorder_forks.sh: $name: the storm did not end"; exit 1; }
	sleep 1  # the events still queued at the storm's end
	s2=$(threads "$rec"); t2=$(now); q2=$(irq_work)
	local forks storm_s
	forks=$(report_field "$dir/report" children); storm_s=$(report_field "$dir/report" seconds)
	rows+=$(awk -v n="$name" -v s0="$s0" -v s1="$s1" -v s2="$s2" -v t0="$t0" -v t1="$t1" -v t2="$t2" \
		-v f="$forks" -v secs="$storm_s" -v q0="$q0" -v q1="$q1" -v q2="$q2" 'BEGIN {
		split(s0, a); split(s1, b); split(s2, c)  # main CPU, main wake-ups, others CPU, others wake-ups
		idle = t1 - t0; storm = t2 - t1
		for (i = 1; i <= 4; i++) {
			rate_idle[i] = (b[i] - a[i]) / idle
			rate_storm[i] = (c[i] - b[i]) / storm
			per_fork[i] = ((c[i] - b[i]) - rate_idle[i] * storm) / f  # beyond the idle rate
		}
		printf "| %s | %.2f ms/s, %.1f wake-ups/s | %d forks in %.2f s: %.1f ms/s, %.0f wake-ups/s |", n,
			(rate_idle[1] + rate_idle[3]) / 1e6, rate_idle[2] + rate_idle[4], f, secs,
			(rate_storm[1] + rate_storm[3]) / 1e6, rate_storm[2] + rate_storm[4]
		printf " %.1f us (%.1f + %.1f) | %.2f (%.2f + %.2f) |", (per_fork[1] + per_fork[3]) / 1e3, per_fork[1] / 1e3,
			per_fork[3] / 1e3, per_fork[2] + per_fork[4], per_fork[2], per_fork[4]
		if (q0 < 0) printf " ? |\n"
		else printf " %.2f |\n", ((q2 - q1) - (q1 - q0) / idle * storm) / f }')
	rows+=$'\n'
}

storm_args=(--rate "$rate" --duration "$secs" --child-pages 2)

# profiler record -- forkstorm: the recorder is the profiler itself.
d=$work/profiler; mkdir -p "$d"
"$bin/profiler" record --sampler fault -q -o "$d/p.prof" -- "$bin/forkstorm" "${storm_args[@]}" \
	--start-file "$d/start" --report "$d/report" > "$d/out" 2> "$d/err" &
rec=$!; pids+=("$rec")
measure "profiler record" "$rec" "$d"
fs=$(report_field "$d/report" pid); kill -TERM "$fs" 2>/dev/null; wait "$rec"

# membalancer trace --record on a forkstorm started first, with the 1 s
# interval, and with a 5 s one (the samples of an interval then fill more
# than a quarter of its ring).
for interval in 1000 5000; do
	d=$work/membalancer-$interval; mkdir -p "$d"
	"$bin/forkstorm" "${storm_args[@]}" --start-file "$d/start" --report "$d/report" > "$d/fs.out" 2>&1 &
	fs=$!; pids+=("$fs")
	"$bin/membalancer" trace --ppid "$fs" --sampler fault --interval "$interval" --display json --record "$d/m.prof" \
		> "$d/out" 2> "$d/err" &
	rec=$!; pids+=("$rec")
	wait_file "$d/out" 30 || { echo "recorder_forks.sh: membalancer did not start: $(cat "$d/err")"; exit 1; }
	measure "membalancer --record$([ "$interval" = 1000 ] || echo " --interval $interval")" "$rec" "$d"
	kill -TERM "$rec"; wait "$rec"; kill -TERM "$fs"; wait "$fs"
done

cat <<MD
## Recorders under a fork storm

\`bench/sections/recorder_forks.sh\`: the recorder (fault sampler) of a \`forkstorm\` tree,
first idle for ${secs} s (the baseline), then while it forks ${rate} children a second for
${secs} s (each writes 2 pages and exits), and 1 s after it. CPU time is the recorder's
(\`/proc/PID/task/*/schedstat\`); wake-ups are its voluntary context switches. Per fork: the
storm's less the idle rate over the same time, divided by the forks; in parentheses, the main
thread's (process events, names and maps) + the other threads' (\`profiler record\`'s sample
consumer, which reads the samples the children's page faults stream every 20 ms, woken by
them only past a quarter of the ring or, when it found the ring empty and sleeps, by the
first; \`membalancer --record\` takes its samples in its
interval loop and has none, and its samples wake nothing). IRQ work: the machine's IRQ work
interrupts (\`/proc/interrupts\` IWI, the kernel's deferred work, ring buffer wake-ups among
it; "?" where there is no such line) per fork beyond their idle rate, whoever caused them.

| recorder | idle (baseline) | storm | CPU per fork | wake-ups per fork | IRQ work per fork |
|---|---|---|---|---|---|
${rows}
MD
