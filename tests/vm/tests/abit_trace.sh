#!/bin/sh
# vm-nodes: 0:cpus=0-1,mem=1G;1:mem=1G
# vm-timeout: 180
# The tracepoint reports the pages a process really touches: the hot range,
# not the cold one; 4 KiB pages with THP off; the node of the page.
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
