#!/bin/sh
# vm-nodes: 0:cpus=0-1,mem=1G;1:mem=1G
# vm-timeout: 400
# The foundation's privileged integration tests, on Debian's 6.1 kernel: the
# same BPF object (built against the build machine's BTF) with the fault
# sampler.
. /opt/membalancer/vm/lib.sh
cd /tmp
check "integration tests on $(uname -r)" env MB_BIN_DIR=/opt/membalancer/bin integration_tests --gtest_filter='-VmAbit.*'
finish
