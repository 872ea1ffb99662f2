#!/bin/sh
# vm-nodes: 0:cpus=0-1,mem=1G;1:mem=1G
# vm-timeout: 400
# membalancer trace --sampler abit finds a process's hot range with page-level
# precision and recall >= 95%, with transparent huge pages off and on
# (tests/integration/test_abit.cpp, run here because only a guest can load
# the helper module).
. /opt/membalancer/vm/lib.sh
echo madvise > /sys/kernel/mm/transparent_hugepage/enabled
cd /tmp
check "abit trace tests" env MB_BIN_DIR=/opt/membalancer/bin integration_tests --gtest_filter='VmAbit.*'
finish
