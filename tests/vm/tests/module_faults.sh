#!/bin/sh
# vm-nodes: 0:cpus=0-1,mem=1G
# vm-timeout: 300
# Faults around the helper module (docs/reliability.md, "Helper module and
# full nodes"):
#  - membalancer (abit sampler) is SIGKILLed: the module drops the pids its
#    file gave, scans nothing more for them, and its references (the file,
#    the BPF raw_tp link) go, so it unloads;
#  - the module is unloaded while it scans a process that is being killed,
#    in every order of kill and rmmod, with the pid given at load time or
#    through a file whose owner is killed at the same moment.
# The harness fails the run on any WARNING/BUG/Oops in the guest's kernel log.
. /opt/membalancer/vm/lib.sh
REFCNT=/sys/module/membalancer_abit/refcnt
# pass_lines PID: abit_pass events of PID in the trace buffer.
pass_lines() { grep -c "abit_pass: pid=$1 " $TR/trace; }
pass_trace_on() {
	echo 0 > $TR/tracing_on
	echo "pid == $1" > $TR/events/membalancer/abit_pass/filter
	echo 1 > $TR/events/membalancer/abit_pass/enable
	echo > $TR/trace
	echo 1 > $TR/tracing_on
}
pass_trace_off() {
	echo 0 > $TR/tracing_on
	echo 0 > $TR/events/membalancer/abit_pass/enable
	echo 0 > $TR/events/membalancer/abit_pass/filter
}
# wait_for SECONDS COMMAND...: polls every 0.1 s until COMMAND succeeds.
wait_for() {
	wf_n=$(($1 * 10)); shift; wf_i=0
	while ! "$@" && [ $wf_i -lt $wf_n ]; do sleep 0.1; wf_i=$((wf_i + 1)); done
	"$@"
}
pids_are() { [ "$(status_field pids)" = "$1" ]; }
refcnt_is() { [ "$(cat $REFCNT)" = "$1" ]; }

# ---- SIGKILL of membalancer ---------------------------------------------------------
check "module loaded, unused" refcnt_is 0
start_touch --hot-mb 8 --cold-mb 32 --nothp
membalancer trace --pid $TOUCH_PID --sampler abit --interval 200 --display json > /tmp/mb.json 2>/tmp/mb.err &
mb=$!
check "membalancer gave the module its pid" wait_for 60 pids_are 1
check "membalancer holds the module (refcnt $(cat $REFCNT): its file and BPF link)" [ "$(cat $REFCNT)" -ge 2 ]
wait_for 30 grep -q '"type":"interval"' /tmp/mb.json
check "membalancer samples through the module" grep -q '"type":"interval".*"accepted":[1-9]' /tmp/mb.json
pass_trace_on $TOUCH_PID
sleep 1
n_before=$(pass_lines $TOUCH_PID)
check "the module scans the pid ($n_before passes in 1 s)" [ "$n_before" -gt 0 ]
kill -9 $mb
wait $mb 2>/dev/null
check "pid dropped after SIGKILL of membalancer" wait_for 5 pids_are 0
echo > $TR/trace
p0=$(status_field passes)
sleep 1
p1=$(status_field passes)
n_after=$(pass_lines $TOUCH_PID)
pass_trace_off
check "no pass for the pid after the kill ($n_after in 1 s)" [ "$n_after" -eq 0 ]
check "the pass counter stopped ($p0 -> $p1)" [ "$p0" -eq "$p1" ]
check "membalancer's references are gone (refcnt $(cat $REFCNT))" wait_for 10 refcnt_is 0
check "rmmod after SIGKILL of membalancer" rmmod membalancer_abit
stop_touch
grep -v '^{' /tmp/mb.err | head -3

# ---- rmmod while scanning a process that is being killed --------------------------
# The scanner is inside a pass almost all the time (1 ms interval, no page
# budget): the kill lands mid-walk, during the process's exit or after it,
# and rmmod lands at every point of that.
# Iteration k: the pid is given at load time (pids=) or, every 4th, through a
# file whose holder is killed with the process; then kill and rmmod in the
# order and with the delay of that iteration.
N=16
ok=0 scanned=0 t0=$(up)
for k in $(seq 1 $N); do
	abit_touch --hot-mb 8 --cold-mb 56 --nothp > /tmp/touch.out &
	victim=$!
	wait_for 30 grep -q hot= /tmp/touch.out
	holder=
	if [ $((k % 4)) = 0 ]; then
		insmod $MB_KO scan_interval_ms=1 pages_per_pass=100000000 || break
		sh -c "exec 3> $MB_DEV; echo add $victim >&3; exec sleep 1000" &
		holder=$!
		wait_for 5 pids_are 1 || { fail "iteration $k: holder did not register"; break; }
	else
		insmod $MB_KO pids=$victim scan_interval_ms=1 pages_per_pass=100000000 || break
	fi
	wait_for 5 sh -c "[ \$(sed -n 's/^passes: //p' $MB_DEV) -gt 2 ]" && scanned=$((scanned + 1))
	case $((k % 3)) in
	0) kill -9 $victim $holder 2>/dev/null & rmmod_first=0 ;;
	1) kill -9 $victim $holder 2>/dev/null; rmmod_first=0 ;;
	2) rmmod_first=1 ;;
	esac
	sleep "0.0$((k % 10))"
	if [ -n "$holder" ]; then
		# The file must be closed before the module can go: kill and
		# reap the holder, then unload while the victim may still exit.
		kill -9 $holder $victim 2>/dev/null; wait $holder 2>/dev/null
		wait_for 5 refcnt_is 0
	fi
	if [ $rmmod_first = 1 ]; then
		rmmod membalancer_abit & r=$!
		kill -9 $victim 2>/dev/null
		wait $r || { fail "iteration $k: rmmod failed"; break; }
	else
		rmmod membalancer_abit || { fail "iteration $k: rmmod failed"; break; }
	fi
	wait $victim 2>/dev/null
	wait
	ok=$k
done
echo "  $N iterations in $(awk -v a=$t0 -v b=$(up) 'BEGIN {printf "%.1f", b - a}') s; scanning confirmed in $scanned"
check "$N unloads while the scanned process was being killed ($ok)" [ "$ok" -eq $N ]
check "the module was scanning in every iteration ($scanned)" [ "$scanned" -eq $N ]
check "module gone" sh -c "! grep -q '^membalancer_abit ' /proc/modules"
check "insmod after all that" insmod $MB_KO
check "device back" [ -c $MB_DEV ]
finish
