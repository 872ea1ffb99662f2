#!/bin/sh
# vm-nodes: 0:cpus=0-1,mem=1G;1:mem=1G
# vm-timeout: 360
# The helper module loads, the guest sees the topology, the device interface
# rejects what it must, files own their pids, and the module unloads cleanly
# at any time: idle, mid-scan of a busy process, 100 times in a row.
. /opt/membalancer/vm/lib.sh

# ---- topology ------------------------------------------------------------------
check "guest sees 2 nodes" [ -d /sys/devices/system/node/node0 -a -d /sys/devices/system/node/node1 -a ! -d /sys/devices/system/node/node2 ]
check "node 0 has the cpus" [ "$(cat /sys/devices/system/node/node0/cpulist)" = 0-1 ]
check "node 1 is memory-only" [ -z "$(cat /sys/devices/system/node/node1/cpulist)" ]
check "node 1 has memory" grep -q 'MemTotal: *[1-9]' /sys/devices/system/node/node1/meminfo

# ---- load, device --------------------------------------------------------------------
check "module loaded at boot" module_loaded
check "device is root-only (0600)" [ "$(stat -c %a $MB_DEV)" = 600 ]
check "tracepoints exist" [ -d $TR/events/membalancer/abit_access -a -d $TR/events/membalancer/abit_pass ]
check "abit_access format: pid addr page_shift node" \
	sh -c "grep -q 'field:int pid' $TR/events/membalancer/abit_access/format && grep -q 'field:unsigned long addr' $TR/events/membalancer/abit_access/format && grep -q 'field:unsigned int page_shift' $TR/events/membalancer/abit_access/format && grep -q 'field:int node' $TR/events/membalancer/abit_access/format"

# ---- interface errors -----------------------------------------------------------------
w() { sh -c "echo '$1' > $MB_DEV" 2>&1; }
expect_err() { out=$(w "$1"); case $out in *"$2"*) pass "'$1' -> $2" ;; *) fail "'$1' -> '$out', expected $2" ;; esac; }
expect_err "bogus" "Invalid argument"
expect_err "add abc" "Invalid argument"
expect_err "add -5" "Invalid argument"
expect_err "add 0" "Invalid argument"
expect_err "add 999999" "No such process"
expect_err "del 4242" "No such process"
expect_err "add 2" "Invalid argument" # kthreadd: a kernel thread
check "'add 1' / 'del 1' / 'clear' accepted" sh -c "printf 'add 1\ndel 1\nadd 1\nclear\n' > $MB_DEV"
grep -q '^nobody:' /etc/passwd || echo "nobody:x:65534:65534::/:/bin/sh" >> /etc/passwd
out=$(su nobody -s /bin/sh -c "cat $MB_DEV" 2>&1)
case $out in *membalancer_abit*"ermission denied"*) pass "non-root open refused (mode 0600)" ;; *) fail "non-root open: '$out'" ;; esac
# uid 0 without CAP_SYS_ADMIN in the initial user namespace: the open checks it.
out=$(unshare -U -r cat $MB_DEV 2>&1)
case $out in *membalancer_abit*"not permitted"*) pass "open without CAP_SYS_ADMIN -> EPERM" ;; *) fail "open in a user namespace: '$out'" ;; esac

# ---- per-file pid sets, limit ------------------------------------------------------------
start_touch --hot-mb 1 --cold-mb 1 --threads 4100
echo "  $(ls /proc/$TOUCH_PID/task | wc -l) threads [$(up)]"
# Batches of 300 "add TID" lines, one write() each (lines must not straddle writes).
exec 3> $MB_DEV
ls /proc/$TOUCH_PID/task | head -4097 > /tmp/tids
head -4096 /tmp/tids | xargs -n 300 printf 'add %s\n' >&3
err=$(echo "add $(tail -1 /tmp/tids)" 2>&1 >&3)
case $err in *"No space left"*) pass "4097th pid -> ENOSPC" ;; *) fail "4097th pid -> '$err'" ;; esac
check "status counts them" [ "$(status_field pids)" -eq 4096 ]
wait_passes 2
check "scanning 4096 targets" [ "$(status_field passes)" -gt 0 ]
exec 3>&-
sleep 0.3
check "closing the file drops its pids" [ "$(status_field pids)" -eq 0 ]
stop_touch

# A SIGKILLed owner leaves nothing scanned.
start_touch --hot-mb 8 --cold-mb 64
sh -c "exec 3> $MB_DEV; echo add $TOUCH_PID >&3; sleep 1000" &
holder=$!
i=0; while [ "$(status_field pids)" != 1 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
check "holder registered the workload" [ "$(status_field pids)" -eq 1 ]
check "rmmod refused while a file is open" sh -c "! rmmod membalancer_abit 2>/dev/null"
kill -9 $holder; wait $holder 2>/dev/null
i=0; while [ "$(status_field pids)" != 0 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
check "SIGKILL of the owner drops its pids" [ "$(status_field pids)" -eq 0 ]

# A registered process that exits is dropped.
exec 3> $MB_DEV
echo "add $TOUCH_PID" >&3
wait_passes 1
kill -9 $TOUCH_PID; wait $TOUCH_PID 2>/dev/null
i=0; while [ "$(status_field pids)" != 0 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
check "exited process dropped" [ "$(status_field pids)" -eq 0 ]
check "exited counter" [ "$(status_field exited)" -ge 1 ]
exec 3>&-

# 20 registered processes exiting at about the same time, scanned every 1 ms.
echo 1 > /sys/module/membalancer_abit/parameters/scan_interval_ms
ex0=$(status_field exited)
exec 3> $MB_DEV
for i in $(seq 1 20); do
	abit_touch --hot-mb 2 --cold-mb 2 --nothp --duration 2 >/dev/null 2>&1 &
	echo "add $!" >&3
done
wait
i=0; while [ "$(status_field pids)" != 0 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
check "20 exited processes dropped ($(( $(status_field exited) - ex0 )))" [ "$(status_field pids)" -eq 0 -a $(( $(status_field exited) - ex0 )) -eq 20 ]
exec 3>&-

# A pid reused by a new process before the scanner saw the old one go: adding
# it again is a new target, not a no-op (the module compares processes, not
# numbers). Passes 8 s apart, so none sees the old process gone meanwhile; a
# small pid_max, so the number comes back within about 100 forks.
echo 8000 > /sys/module/membalancer_abit/parameters/scan_interval_ms
wait_passes 1
t0=$(up)
pm=$(cat /proc/sys/kernel/pid_max)
echo 400 > /proc/sys/kernel/pid_max
exec 3> $MB_DEV
sleep 1000 & old=$!
echo "add $old" >&3
kill -9 $old; wait $old 2>/dev/null
i=0; new=0
while [ $i -lt 300 ]; do
	sleep 1000 & new=$!
	[ "$new" = "$old" ] && break
	kill -9 $new; wait $new 2>/dev/null; i=$((i + 1))
done
echo $pm > /proc/sys/kernel/pid_max
echo "add $old" >&3
echo "  pid $old reused after $i forks, in $(awk -v a="$t0" -v b="$(up)" 'BEGIN { printf "%.2f", b - a }') s"
check "reused pid $old: a second target ($(status_field pids))" [ "$new" = "$old" -a "$(status_field pids)" -eq 2 ]
echo 100 > /sys/module/membalancer_abit/parameters/scan_interval_ms
wait_passes 2
check "reused pid: the old process dropped, the new one kept ($(status_field pids))" [ "$(status_field pids)" -eq 1 ]
exec 3>&-
kill -9 $new; wait $new 2>/dev/null

# ---- unload / reload -------------------------------------------------------------------------
check "rmmod" rmmod membalancer_abit
check "module gone" sh -c "! grep -q '^membalancer_abit ' /proc/modules"
check "insmod again" insmod $MB_KO
check "device back" [ -c $MB_DEV ]
check "rmmod again" rmmod membalancer_abit

# Unload mid-scan: a big busy process given at load time (pids=), tiny interval,
# huge budget, so the scanner is almost always inside a pass.
start_touch --hot-mb 64 --cold-mb 512 --nothp
t_ok=0
for d in 0.05 0.2 0.4 0.7 1.0; do
	insmod $MB_KO pids=$TOUCH_PID scan_interval_ms=1 pages_per_pass=100000000 || break
	sleep $d
	last=$(status_field last_pass_ns)
	s=$(cut -d' ' -f1 /proc/uptime)
	rmmod membalancer_abit || break
	e=$(cut -d' ' -f1 /proc/uptime)
	echo "  rmmod after ${d}s (a pass takes ${last} ns, interval 1 ms) took $(awk -v a=$s -v b=$e 'BEGIN {printf "%.2f", b - a}') s"
	t_ok=$((t_ok + 1))
done
check "5 unloads mid-scan of a busy 576 MiB process" [ "$t_ok" -eq 5 ]
# ... and while a process exits mid-scan.
insmod $MB_KO pids=$TOUCH_PID scan_interval_ms=1 pages_per_pass=100000000
sleep 0.3
kill -9 $TOUCH_PID; wait $TOUCH_PID 2>/dev/null
sleep 0.3
check "rmmod after the scanned process died mid-scan" rmmod membalancer_abit

# 100 load/unload cycles: a process given at load time and scanned every
# 1 ms in one cycle out of two, added through a file and dropped at its
# close in the others.
start_touch --hot-mb 16 --cold-mb 64 --nothp
ok=0 t0=$(up)
for i in $(seq 1 100); do
	if [ $((i % 2)) = 0 ]; then args="pids=$TOUCH_PID scan_interval_ms=1"; else args=; fi
	insmod $MB_KO $args || break
	[ -c $MB_DEV ] || break
	[ $((i % 2)) = 1 ] && { exec 3> $MB_DEV; echo "add $TOUCH_PID" >&3; exec 3>&-; }
	rmmod membalancer_abit || break
	ok=$i
done
echo "  $ok cycles in $(awk -v a=$t0 -v b=$(up) 'BEGIN {printf "%.1f", b - a}') s"
check "100 load/unload cycles ($ok)" [ "$ok" -eq 100 ]
stop_touch
insmod $MB_KO
check "loaded at the end" module_loaded
finish
