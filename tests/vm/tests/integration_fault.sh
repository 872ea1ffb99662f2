#!/bin/sh
# vm-nodes: 0:cpus=0-1,mem=1G;1:mem=1G
# vm-timeout: 600
# The foundation's privileged integration tests, on Debian's 6.1 kernel: the
# same BPF object (built against the build machine's BTF) with the fault
# sampler. The page-migration faults of tests/integration/test_faults.cpp
# need this VM's two memory nodes: here they must run, not skip.
. /opt/membalancer/vm/lib.sh
cd /tmp
env MB_BIN_DIR=/opt/membalancer/bin integration_tests --gtest_filter='-VmAbit.*' > /tmp/integ.out 2>&1
st=$?
cat /tmp/integ.out
check "integration tests on $(uname -r) (status $st)" [ $st -eq 0 ]
check "page-migration faults ran" sh -c "! grep -qE 'SKIPPED \] Faults\.(PagesVanish|SigtermDuringPage)' /tmp/integ.out"
# This kernel has BPF trampolines: the recorder times maps changes by fexit
# on the maps calls, not by the raw tracepoint every system call pays for.
/opt/membalancer/bin/profiler record -v --sampler fault -q -o /tmp/fexit.prof -- /opt/membalancer/bin/symtest main 0.1 > /tmp/fexit.out 2>&1
grep 'maps changes timed by' /tmp/fexit.out
check "maps changes timed by fexit" grep -q 'maps changes timed by fexit on the maps calls' /tmp/fexit.out
finish
