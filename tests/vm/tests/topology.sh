#!/bin/sh
# vm-nodes: 0:cpus=0-1,mem=512M;1:cpus=2-3,mem=512M;2:mem=512M
# vm-distance: 10,20,40;20,10,40;40,40,10
# vm-no-module
# vm-timeout: 120
# vm-add: tests/vm/guest/abit_count.c
# vm-append: mb_test_arg=1
# The harness builds the topology it is asked for: two CPU nodes, a memory-only
# node, the distance matrix; --no-module leaves the module out.
. /opt/membalancer/vm/lib.sh
N=/sys/devices/system/node
check "3 nodes online ($(cat $N/online))" [ "$(cat $N/online)" = 0-2 ]
check "node0 cpus 0-1" [ "$(cat $N/node0/cpulist)" = 0-1 ]
check "node1 cpus 2-3" [ "$(cat $N/node1/cpulist)" = 2-3 ]
check "node2 memory-only" [ -z "$(cat $N/node2/cpulist)" ]
check "node0 distances" [ "$(cat $N/node0/distance)" = "10 20 40" ]
check "node2 distances" [ "$(cat $N/node2/distance)" = "40 40 10" ]
check "cpus 0,1 share a package, 2 another" [ "$(cat /sys/devices/system/cpu/cpu1/topology/physical_package_id)" = "$(cat /sys/devices/system/cpu/cpu0/topology/physical_package_id)" -a "$(cat /sys/devices/system/cpu/cpu2/topology/physical_package_id)" != "$(cat /sys/devices/system/cpu/cpu0/topology/physical_package_id)" ]
for i in 0 1 2; do
	kb=$(sed -n 's/.*MemTotal: *\([0-9]*\) kB/\1/p' $N/node$i/meminfo)
	check "node$i has ~512M ($kb kB)" [ "$kb" -gt 400000 ]
done
check "no module with --no-module" [ ! -e /dev/membalancer_abit ]
check "mounts: tracefs debugfs cgroup2 /tmp" sh -c "grep -q ' /sys/kernel/tracing tracefs' /proc/mounts && grep -q ' /sys/kernel/debug debugfs' /proc/mounts && grep -q ' /sys/fs/cgroup cgroup2' /proc/mounts && grep -q ' /tmp tmpfs' /proc/mounts"
check "bash available" bash -c 'true'
check "--add file in /add/" [ -f /add/abit_count.c ]
check "--append reaches the kernel command line" grep -q mb_test_arg=1 /proc/cmdline
check "guest helpers on PATH" which abit_touch
echo "bin: $(ls /opt/membalancer/bin | tr '\n' ' ')"
for b in /opt/membalancer/bin/*; do
	[ -x "$b" ] || continue
	check "$(basename $b) starts (shared libraries present)" sh -c "$b --help >/dev/null 2>&1; [ \$? -ne 127 ]"
done
finish
