# Helpers for guest test scripts (busybox sh). Source with
#   . /opt/membalancer/vm/lib.sh
# Every failed check prints "FAIL: ..." and counts; finish() exits 1 if any did.
MB_FAILS=0
MB_DEV=/dev/membalancer_abit
MB_KO=/opt/membalancer/kernel/membalancer_abit.ko
TR=/sys/kernel/tracing

up() { cut -d' ' -f1 /proc/uptime; }
fail() { echo "FAIL [$(up)]: $*"; MB_FAILS=$((MB_FAILS + 1)); }
pass() { echo "ok [$(up)]: $*"; }
# check DESCRIPTION COMMAND...: passes if the command succeeds.
check() { d=$1; shift; if "$@"; then pass "$d"; else fail "$d"; fi; }
finish() {
	if [ "$MB_FAILS" -eq 0 ]; then echo "ALL OK"; exit 0; fi
	echo "$MB_FAILS check(s) failed"; exit 1
}
# A value from the module's status text: status_field passes
status_field() { cat $MB_DEV | sed -n "s/^$1: //p"; }
module_loaded() { grep -q '^membalancer_abit ' /proc/modules; }
# Waits until the scanner has done N more passes (max ~10 s).
wait_passes() {
	want=$(( $(status_field passes) + $1 )); i=0
	while [ "$(status_field passes)" -lt "$want" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
}
# Starts abit_touch ARGS in the background; sets TOUCH_PID HOT COLD (ranges a-b).
start_touch() {
	rm -f /tmp/touch.out
	abit_touch "$@" > /tmp/touch.out &
	TOUCH_PID=$!
	i=0; while ! grep -q hot= /tmp/touch.out 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
	HOT=$(sed -n 's/.* hot=\([^ ]*\).*/\1/p' /tmp/touch.out)
	COLD=$(sed -n 's/.* cold=\([^ ]*\).*/\1/p' /tmp/touch.out)
	[ -n "$HOT" ] || { fail "abit_touch $* did not start"; finish; }
}
stop_touch() { kill "$TOUCH_PID" 2>/dev/null; wait "$TOUCH_PID" 2>/dev/null; }
# trace_on PID: enable membalancer:abit_access for PID only, empty buffer.
trace_on() {
	echo 0 > $TR/tracing_on
	echo 8192 > $TR/buffer_size_kb
	echo "pid == $1" > $TR/events/membalancer/abit_access/filter
	echo 1 > $TR/events/membalancer/abit_access/enable
	echo > $TR/trace
	echo 1 > $TR/tracing_on
}
trace_off() {
	echo 0 > $TR/tracing_on
	echo 0 > $TR/events/membalancer/abit_access/enable
	echo 0 > $TR/events/membalancer/abit_access/filter
}
# field NAME LINE: the value of NAME=value in LINE
field() { echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
# check_hot_cold NAME: registers $TOUCH_PID with the module, traces its first
# 8 passes and checks that the hot range is covered and the cold one is not.
# The cold range was touched once, populating it, before the pid was added:
# the first sweep clears those bits without reporting them (a module that
# reported them would cover the whole cold range). Sets $hot and $cold to the
# abit_count result lines for further checks.
check_hot_cold() {
	trace_on "$TOUCH_PID"
	exec 3> $MB_DEV
	echo "add $TOUCH_PID" >&3
	wait_passes 8
	check_traced_hot_cold "$1"
}

# check_traced_hot_cold LABEL: the second half of check_hot_cold, for a case
# that added the pid (fd 3) and switched the trace on itself.
check_traced_hot_cold() {
	trace_off
	exec 3>&-
	res=$(abit_count "$HOT" "$COLD" < $TR/trace)
	echo "$res"
	hot=$(echo "$res" | sed -n 1p); cold=$(echo "$res" | sed -n 2p)
	pages=$(field pages "$hot"); covered=$(field covered "$hot")
	check "$1: hot range covered ($covered of $pages pages)" [ "$covered" -ge $((pages * 95 / 100)) ]
	check "$1: cold range not reported ($(field covered "$cold") pages)" [ "$(field covered "$cold")" -le 8 ]
}

# ---- memexercise workloads and page placement (memory-balancing tests) ----
MX_REPORT=/tmp/mx.json
# start_mx ARGS...: starts memexercise ARGS in the background (runs until
# killed), waits until every process of its tree has reported (with
# --spawn-after: until the first one has); sets MX_PID.
start_mx() {
	rm -f $MX_REPORT /tmp/mx.ready
	memexercise --duration 0 --report $MX_REPORT --ready-file /tmp/mx.ready "$@" > /tmp/mx.out 2>&1 &
	MX_PID=$!
	case " $* " in *" --spawn-after "*) ready="grep -q pid $MX_REPORT" ;; *) ready="test -e /tmp/mx.ready" ;; esac
	i=0; while ! $ready 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
	$ready 2>/dev/null || { cat /tmp/mx.out; fail "memexercise $* did not get ready"; finish; }
}
stop_mx() { kill "$MX_PID" 2>/dev/null; wait "$MX_PID" 2>/dev/null; }
# mx_field PID NAME: a field of the report line of process PID (quotes removed).
mx_field() { grep "\"pid\":$1," $MX_REPORT | sed -n "s/.*\"$2\":\"\{0,1\}\([^\",}]*\).*/\1/p"; }
# mx_pids: every pid of the memexercise tree, in report order.
mx_pids() { sed -n 's/.*"pid":\([0-9]*\),.*/\1/p' $MX_REPORT; }
# numa_line PID 0xADDR: the numa_maps line of the mapping starting at ADDR.
numa_line() { grep "^$(echo "$2" | sed 's/^0x//') " /proc/$1/numa_maps; }
# numa_pages "LINE" NODE: pages on NODE in a numa_maps line (0 if none).
numa_pages() { v=$(echo "$1" | tr ' ' '\n' | sed -n "s/^N$2=//p"); echo "${v:-0}"; }
# on_node PID 0xSTART BYTES NODE: pages of the range on NODE (move_pages).
on_node() { node_range "$1" "$2" "$3" | tr ' ' '\n' | sed -n "s/^n$4=//p"; }
# wait_on_node PID 0xSTART BYTES NODE PCT TIMEOUT_S: waits until PCT% of the
# range is on NODE; prints the seconds it took, or "timeout".
wait_on_node() {
	t0=$(up); pages=$(($3 / 4096))
	while :; do
		n=$(on_node "$1" "$2" "$3" "$4")
		if [ "$n" -ge $((pages * $5 / 100)) ]; then
			awk -v a="$t0" -v b="$(up)" 'BEGIN { printf "%.1f\n", b - a }'; return 0
		fi
		if awk -v a="$t0" -v b="$(up)" -v t="$6" 'BEGIN { exit !(b - a > t) }'; then echo timeout; return 1; fi
		sleep 0.5
	done
}
# timeline FILE: one line per interval of a membalancer json run: time,
# planned promotions/demotions/numa moves, pages moved so far.
timeline() {
	grep '"type":"interval"' "$1" | sed 's/.*"interval":\([0-9]*\),"time_s":\([0-9.]*\).*"promote_pages":\([0-9]*\),"demote_pages":\([0-9]*\),"numa_pages":\([0-9]*\).*"promote":{"requested":[0-9]*,"moved":\([0-9]*\).*"demote":{"requested":[0-9]*,"moved":\([0-9]*\).*"numa":{"requested":[0-9]*,"moved":\([0-9]*\).*/  #\1 t=\2s plan +\3 -\4 ~\5 moved +\6 -\7 ~\8/'
}
