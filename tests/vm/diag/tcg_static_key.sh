#!/bin/sh
# Reproducer for the guest lockup of multi-threaded TCG (docs/vm-harness.md),
# not part of the suite: it tests qemu, not membalancer. It flips the
# sched_process_exit tracepoint's static key through tracefs (each flip patches
# the call site with text_poke_bp) while three loops fork and exit on the other
# vCPUs. Run it with
#   MB_VM_TCG_THREAD=multi tests/vm/run.sh --nodes "0:cpus=0-1,mem=1G;1:cpus=2-3,mem=1G" \
#       --script tests/vm/diag/tcg_static_key.sh --timeout 600
# and with the default thread=single: under multi the guest has soon locked up
# with CPUs trapping on int3 at do_exit; under single it finishes.
. /opt/membalancer/vm/lib.sh
for j in 1 2 3; do ( while :; do /bin/true; done ) & done
E=$TR/events/sched/sched_process_exit/enable
n=500
i=0
while [ $i -lt $n ]; do
	echo 1 > $E; echo 0 > $E
	i=$((i + 1))
	[ $((i % 50)) -eq 0 ] && echo "toggles $i at $(up)"
done
check "$n toggles without a lockup" [ $i -eq $n ]
finish
