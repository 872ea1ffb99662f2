#!/usr/bin/env bash
# Runs the VM suite: every tests/vm/tests/*.sh in its own VM (topology and
# options from its header comments), then the harness self-tests. Appends
# "vm passed failed skipped" to build/test-summary. Used by `make vm-test`.
#
# Header comments a guest test may carry:
#   # vm-nodes: 0:cpus=0-1,mem=1G;1:mem=1G     (required)
#   # vm-distance: 10,20;20,10
#   # vm-timeout: 180
#   # vm-append: KERNEL_ARGS
#   # vm-add: FILE [FILE...]                   (repo-relative; lands in /add/)
#   # vm-no-module
# Env: VM_TESTS="name1 name2" runs only those (basename without .sh).
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"
mkdir -p build/vm
passed=0 failed=0 skipped=0 failures=()

record() { # NAME STATUS SECONDS
	case $2 in
	0) passed=$((passed + 1)); echo "vm: PASS $1 ($3 s)" ;;
	77) skipped=$((skipped + 1)); echo "vm: SKIP $1" ;;
	*) failed=$((failed + 1)); failures+=("$1"); echo "vm: FAIL $1 (status $2, $3 s; log build/vm/$1.log)" ;;
	esac
}
want() { [ -z "${VM_TESTS:-}" ] || [[ " $VM_TESTS " == *" $1 "* ]]; }
header() { sed -n "s/^# $1:[[:space:]]*//p" "$2" | head -1; }

for t in tests/vm/tests/*.sh; do
	name=$(basename "$t" .sh)
	want "$name" || continue
	args=(--script "$t" --log "build/vm/$name.log")
	nodes=$(header vm-nodes "$t")
	if [ -z "$nodes" ]; then record "$name" 2 0; echo "  $t has no '# vm-nodes:' header"; continue; fi
	args+=(--nodes "$nodes")
	v=$(header vm-distance "$t"); [ -n "$v" ] && args+=(--distance "$v")
	v=$(header vm-timeout "$t"); [ -n "$v" ] && args+=(--timeout "$v")
	v=$(header vm-append "$t"); [ -n "$v" ] && args+=(--append "$v")
	for v in $(header vm-add "$t"); do args+=(--add "$v"); done
	grep -q '^# vm-no-module' "$t" && args+=(--no-module)
	echo "vm: ---- $name"
	start=$SECONDS
	tests/vm/run.sh "${args[@]}"
	st=$?
	record "$name" "$st" $((SECONDS - start))
	# Without qemu or the kernel every test skips the same way: stop here.
	[ "$st" = 77 ] && [ "$skipped" = 1 ] && [ "$passed$failed" = 00 ] && skip_all=1 && break
done

# ---- harness self-tests (host side) ------------------------------------------------
expect() { # NAME WANT-STATUS run.sh-args...
	local name=$1 want=$2; shift 2
	want "$name" || return 0
	[ "${skip_all:-0}" = 1 ] && { record "$name" 77 0; return; }
	echo "vm: ---- $name (expects status $want)"
	local start=$SECONDS
	tests/vm/run.sh "$@" > "build/vm/$name.out" 2>&1
	local st=$?
	tail -3 "build/vm/$name.out" | sed 's/^/  /'
	if [ "$st" = 77 ]; then record "$name" 77 0
	elif [ "$st" = "$want" ]; then record "$name" 0 $((SECONDS - start))
	else record "$name" 1 $((SECONDS - start)); fi
}
sdir=$(mktemp -d)
printf '#!/bin/sh\necho "exiting with 3"\nexit 3\n' > "$sdir/exit3.sh"
printf '#!/bin/sh\necho "WARNING: CPU: 0 PID: 1 at harness-selftest:1 injected" > /dev/kmsg\nexit 0\n' > "$sdir/warn.sh"
printf '#!/bin/sh\nsleep 1000\n' > "$sdir/hang.sh"
printf '#!/bin/sh\nexit 0\n' > "$sdir/ok.sh"
expect harness_exit_status 3 --nodes "0:cpus=0-1,mem=512M" --script "$sdir/exit3.sh" --no-module --timeout 120 --log build/vm/harness_exit_status.log
expect harness_guest_warning 125 --nodes "0:cpus=0-1,mem=512M" --script "$sdir/warn.sh" --no-module --timeout 120 --log build/vm/harness_guest_warning.log
expect harness_timeout 124 --nodes "0:cpus=0-1,mem=512M" --script "$sdir/hang.sh" --no-module --timeout 20 --log build/vm/harness_timeout.log
for spec in "0:cpus=0-1,mem=1G;0:mem=1G" "0:cpus=0-1,mem=1G;2:mem=1G" "0:cpus=0-1,mem=1X" "0:cpus=1-0,mem=1G" \
	"0:cpus=0-1,mem=1G;1:cpus=1-2,mem=1G" "0:mem=1G" "0:cpus=0-1,mem=1G;1:" "0:cpus=0-1,mem=1G,color=red"; do
	n=$((${n:-0} + 1))
	expect "harness_bad_spec_$n" 2 --nodes "$spec" --script "$sdir/ok.sh"
done
expect harness_bad_distance 2 --nodes "0:cpus=0-1,mem=1G;1:mem=1G" --distance "10,20;20,11" --script "$sdir/ok.sh"
rm -rf "$sdir"

mkdir -p build
echo "vm $passed $failed $skipped" >> build/test-summary
echo "vm: $passed passed, $failed failed, $skipped skipped${failures:+ (failed: ${failures[*]})}"
[ "$failed" = 0 ]
