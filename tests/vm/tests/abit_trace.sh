#!/bin/sh
# vm-nodes: 0:cpus=0-1,mem=1G;1:mem=1G
# vm-timeout: 180
# The tracepoint reports the pages a process really touches: the hot range,
# not the cold one; 4 KiB pages with THP off; the node of the page; a process
# whose leader thread exited; a process after execve; skipped mappings count
# against the pass budget.
. /opt/membalancer/vm/lib.sh
echo never > /sys/kernel/mm/transparent_hugepage/enabled

run_case() { # NAME NODE ARGS...
	name=$1 node=$2; shift 2
	start_touch --hot-mb 4 --cold-mb 16 --nothp "$@"
	echo "$name: pid=$TOUCH_PID hot=$HOT cold=$COLD"
	check_hot_cold "$name"
	check "$name: 4 KiB reports only" [ "$(field shift21 "$hot")" -eq 0 ] 
	check "$name: hot pages reported on node $node ($(field nodes "$hot"))" [ "$(field nodes "$hot")" = "$node" ]
	stop_touch
}
run_case local 0
run_case bound-to-node1 1 --node 1
# The thread-group leader left with pthread_exit while another thread works:
# the leader is a zombie without an mm; the group's memory is still scanned.
run_case leader-exited 0 --leader-exit

# execve replaces the address space: the new one gets a first sweep of its
# own, so its cold range (touched once after the exec, before any pass) is
# not reported. The scanner is slowed to one pass per 3 s around the exec so
# that the trace, switched on after it, sees the first pass of the new image.
P=/sys/module/membalancer_abit/parameters/scan_interval_ms
start_touch --hot-mb 4 --cold-mb 16 --nothp --exec-on-usr1
exec 3> $MB_DEV
echo "add $TOUCH_PID" >&3
execs0=$(status_field execs)
wait_passes 4
echo 3000 > $P
wait_passes 1
kill -USR1 $TOUCH_PID
i=0; while [ "$(grep -c hot= /tmp/touch.out)" -lt 2 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
line=$(grep hot= /tmp/touch.out | sed -n 2p)
HOT=$(echo "$line" | sed -n 's/.* hot=\([^ ]*\).*/\1/p')
COLD=$(echo "$line" | sed -n 's/.* cold=\([^ ]*\).*/\1/p')
echo "exec: pid=$TOUCH_PID hot=$HOT cold=$COLD"
trace_on "$TOUCH_PID"
echo 100 > $P
wait_passes 8
check_traced_hot_cold "exec: the new image"
check "exec: counted ($execs0 -> $(status_field execs))" [ "$(status_field execs)" -eq $((execs0 + 1)) ]
stop_touch

# Skipped mappings are not free: 20000 /dev/mem pages (VM_IO|VM_PFNMAP, not
# scanned) cost a step each, so with pages_per_pass=512 the first sweep (no
# reports) lasts at least 39 passes. When they cost nothing, a pass walked all
# of them and the first sweep of this small process ended within 3 passes.
PP=/sys/module/membalancer_abit/parameters/pages_per_pass
echo 512 > $PP
echo 1 > $P
start_touch --hot-mb 1 --cold-mb 1 --nothp --special 20000
echo "special: pid=$TOUCH_PID $(grep -c ' /dev/mem' /proc/$TOUCH_PID/maps) /dev/mem mappings"
r0=$(status_field reports)
exec 3> $MB_DEV
echo "add $TOUCH_PID" >&3
wait_passes 10
check "special: 10 passes of 512 steps do not get past 20000 skipped mappings ($(( $(status_field reports) - r0 )) reports)" \
	[ "$(status_field reports)" -eq "$r0" ]
wait_passes 100
check "special: the first sweep ends, the process is reported ($(( $(status_field reports) - r0 )) reports)" \
	[ "$(status_field reports)" -gt "$r0" ]
exec 3>&-
stop_touch
echo 100 > $P
echo 65536 > $PP

# The contract with membalancer's BPF object: a raw_tp program attached to
# abit_access reads ctx[0..3] as pid, addr, page_shift, node.
start_touch --hot-mb 4 --cold-mb 4 --nothp
exec 3> $MB_DEV
echo "add $TOUCH_PID" >&3
out=$(abit_rawtp 1)
echo "$out"
exec 3>&-
check "raw_tp program attached and ran ($(field count "$out") times)" [ "$(field count "$out")" -gt 0 ]
check "raw_tp ctx[0] is the pid" [ "$(field pid "$out")" = "$TOUCH_PID" ]
addr=$(field addr "$out")
check "raw_tp ctx[1] is a user page address ($addr)" [ $((addr & 4095)) -eq 0 -a $((addr)) -gt 0 -a $((addr)) -lt $((0x800000000000)) ]
check "raw_tp ctx[2] is the page shift" [ "$(field shift "$out")" = 12 ]
check "raw_tp ctx[3] is the node" [ "$(field node "$out")" = 0 ]
stop_touch
echo "status:"; cat $MB_DEV
check "no pid left registered after close" [ "$(status_field pids)" -eq 0 ]
finish
