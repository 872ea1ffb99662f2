#!/bin/sh
# vm-nodes: 0:cpus=0,mem=1G;1:cpus=1,mem=1G
# vm-timeout: 400
# Least privilege on Debian's kernel (docs/reliability.md): once set up,
# `numa --migrate` keeps CAP_SYS_PTRACE and, on kernels that refuse bpf()
# map calls without it (before 5.19 with unprivileged BPF disabled), CAP_BPF;
# in every thread, the mover's workers included; nothing else in the
# bounding set; no_new_privs. With that it still moves the hot pages.
. /opt/membalancer/vm/lib.sh
echo never > /sys/kernel/mm/transparent_hugepage/enabled
echo 0 > /proc/sys/kernel/numa_balancing
HOT=$((32 << 20))
start_mx --size 128M --hot-size 32M --preferred-node 0 --pin-cpus 1 --thp off
hot=$(mx_field $MX_PID hot_start)
membalancer numa --pid $MX_PID --migrate --move-workers 2 --sampler abit --interval 500 --display json \
	--verbose > /tmp/mb.json 2>/tmp/mb.err &
mb=$!
i=0; while ! grep -q 'capabilities kept after setup' /tmp/mb.err && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
kept=$(sed -n 's/.*capabilities kept after setup: //p' /tmp/mb.err)
unpriv=$(cat /proc/sys/kernel/unprivileged_bpf_disabled)
echo "kernel $(uname -r), unprivileged_bpf_disabled=$unpriv; kept: $kept"
want_names="CAP_SYS_PTRACE"; want=0000000000080000
ver=$(uname -r | awk -F. '{ print $1 * 100 + $2 }')
if [ "$unpriv" != 0 ] && [ "$ver" -lt 519 ]; then want_names="CAP_SYS_PTRACE, CAP_BPF"; want=0000008000080000; fi
check "kept $want_names" [ "$kept" = "$want_names" ]
tasks=$(ls /proc/$mb/task | wc -l)
check "the mover's 2 workers run ($tasks threads)" [ "$tasks" -ge 3 ]
for t in /proc/$mb/task/*; do
	f() { sed -n "s/^$1:[[:space:]]*//p" $t/status; }
	check "thread ${t##*/}: CapEff $(f CapEff) CapPrm $(f CapPrm) CapBnd $(f CapBnd) NoNewPrivs $(f NoNewPrivs)" \
		[ "$(f CapEff)" = $want -a "$(f CapPrm)" = $want -a "$(f CapBnd)" = $want -a "$(f NoNewPrivs)" = 1 ]
done
t=$(wait_on_node $MX_PID $hot $HOT 1 90 120)
check "90% of the hot pages moved to node 1 with what was kept (took $t s)" [ "$t" != timeout ]
kill -TERM $mb; wait $mb; st=$?
check "membalancer exits 0 on SIGTERM (status $st)" [ $st -eq 0 ]
grep -v '^{' /tmp/mb.err | grep -v '^  ' | head -5
stop_mx
finish
