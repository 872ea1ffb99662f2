#!/usr/bin/env bash
# VM harness: boots Debian's kernel under qemu with a given NUMA topology, an
# initramfs holding busybox, the project's bin/ and scripts/, the helper module
# and the test script, runs the script as root and returns its exit status.
#
#   tests/vm/run.sh --nodes "0:cpus=0-1,mem=1G;1:mem=1G" --script FILE
#                   [--timeout S] [--distance "10,20;20,10"] [--add FILE]...
#                   [--no-module] [--append KERNEL_ARGS] [--log FILE]
#
# Exit status: the script's status; 2 bad usage/spec; 77 skipped (no qemu or
# kernel, and CI is not "true"); 124 timeout; 125 the guest kernel logged a
# warning/BUG/oops/hung task/stall, or never reported an exit status.
# Env: MB_VM_ACCEL=kvm|tcg (default: probe KVM once, else tcg),
#      MB_VM_TCG_THREAD=single|multi (default single: see below),
#      MB_VM_CACHE (default tests/vm/cache), MB_VM_QEMU (qemu binary),
#      MB_VM_KEEP=1 (keep the work dir), MB_VM_BIN (the programs to copy,
#      default bin/), CI (passed to the guest).
# See docs/vm-harness.md.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${MB_VM_CACHE:-$here/cache}
export MB_VM_CACHE=$cache

die() { echo "run.sh: $*" >&2; exit 2; }
skip() {
	if [ "${CI:-}" = true ]; then echo "run.sh: FAIL (CI=true, cannot skip): $*" >&2; exit 1; fi
	echo "run.sh: SKIP: $*" >&2; exit 77
}

nodes= script= timeout=300 distance= no_module=0 append= log=
adds=()
while [ $# -gt 0 ]; do
	case $1 in
	--nodes) [ $# -ge 2 ] || die "--nodes needs a value"; nodes=$2; shift 2 ;;
	--script) [ $# -ge 2 ] || die "--script needs a value"; script=$2; shift 2 ;;
	--timeout) [ $# -ge 2 ] || die "--timeout needs a value"; timeout=$2; shift 2 ;;
	--distance) [ $# -ge 2 ] || die "--distance needs a value"; distance=$2; shift 2 ;;
	--add) [ $# -ge 2 ] || die "--add needs a value"; adds+=("$2"); shift 2 ;;
	--no-module) no_module=1; shift ;;
	--append) [ $# -ge 2 ] || die "--append needs a value"; append=$2; shift 2 ;;
	--log) [ $# -ge 2 ] || die "--log needs a value"; log=$2; shift 2 ;;
	-h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
	*) die "unknown argument '$1' (see --help)" ;;
	esac
done
[ -n "$nodes" ] || die "--nodes is required"
[ -n "$script" ] || die "--script is required"
[ -f "$script" ] || die "script '$script' not found"
[[ $timeout =~ ^[1-9][0-9]*$ ]] || die "--timeout '$timeout' is not a positive number of seconds"
for a in "${adds[@]}"; do [ -e "$a" ] || die "--add '$a' not found"; done

# ---- topology: "ID:cpus=A-B,mem=SIZE;ID:mem=SIZE" -> qemu arguments -----------
# size in MiB: 512M, 1G, 1.5G not allowed (integers only), 0 = memory-less node.
size_mib() {
	local s=$1
	if [[ $s =~ ^([0-9]+)([MmGg])$ ]]; then
		local n=${BASH_REMATCH[1]}
		case ${BASH_REMATCH[2]} in [Gg]) echo $((10#$n * 1024)) ;; *) echo $((10#$n)) ;; esac
	else
		return 1
	fi
}
declare -A node_cpu_lo=() node_cpu_hi=() node_mem=()
declare -A cpu_owner=()
ids=()
IFS=';' read -r -a node_specs <<< "$nodes"
[ ${#node_specs[@]} -gt 0 ] || die "--nodes: empty topology"
for spec in "${node_specs[@]}"; do
	spec=${spec// /}
	[ -n "$spec" ] || die "--nodes: empty node entry in '$nodes'"
	[[ $spec =~ ^([0-9]+):(.*)$ ]] || die "--nodes: node entry '$spec' is not ID:key=value,..."
	id=$((10#${BASH_REMATCH[1]})); rest=${BASH_REMATCH[2]}
	[ -z "${node_mem[$id]+x}" ] || die "--nodes: node $id given twice"
	node_mem[$id]=0
	[ -n "$rest" ] || die "--nodes: node $id has neither cpus nor mem"
	IFS=',' read -r -a kvs <<< "$rest"
	for kv in "${kvs[@]}"; do
		case $kv in
		cpus=*)
			v=${kv#cpus=}
			if [[ $v =~ ^([0-9]+)-([0-9]+)$ ]]; then lo=$((10#${BASH_REMATCH[1]})); hi=$((10#${BASH_REMATCH[2]}))
			elif [[ $v =~ ^([0-9]+)$ ]]; then lo=$((10#$v)); hi=$lo
			else die "--nodes: node $id: cpus '$v' is not A-B or A"; fi
			[ "$lo" -le "$hi" ] || die "--nodes: node $id: cpus '$v' is a reversed range"
			[ -z "${node_cpu_lo[$id]+x}" ] || die "--nodes: node $id: cpus given twice"
			node_cpu_lo[$id]=$lo; node_cpu_hi[$id]=$hi
			for ((c = lo; c <= hi; c++)); do
				[ -z "${cpu_owner[$c]+x}" ] || die "--nodes: cpu $c is in node ${cpu_owner[$c]} and node $id"
				cpu_owner[$c]=$id
			done ;;
		mem=*)
			m=$(size_mib "${kv#mem=}") || die "--nodes: node $id: mem '${kv#mem=}' is not a size like 512M or 1G"
			node_mem[$id]=$m ;;
		*) die "--nodes: node $id: unknown key '${kv%%=*}' (cpus=, mem=)" ;;
		esac
	done
	[ -n "${node_cpu_lo[$id]+x}" ] || [ "${node_mem[$id]}" -gt 0 ] || die "--nodes: node $id has neither cpus nor memory"
	ids+=("$id")
done
nnodes=${#ids[@]}
for ((i = 0; i < nnodes; i++)); do
	[ -n "${node_mem[$i]+x}" ] || die "--nodes: node ids must be 0..$((nnodes - 1)); node $i is missing"
done
ncpus=${#cpu_owner[@]}
[ "$ncpus" -gt 0 ] || die "--nodes: no node has cpus"
for ((c = 0; c < ncpus; c++)); do
	[ -n "${cpu_owner[$c]+x}" ] || die "--nodes: cpus must be 0..$((ncpus - 1)); cpu $c is in no node"
done
[ "$ncpus" -le 64 ] || die "--nodes: $ncpus cpus is more than 64"
total_mem=0
for ((i = 0; i < nnodes; i++)); do total_mem=$((total_mem + node_mem[$i])); done
[ "${node_mem[0]}" -ge 128 ] || die "--nodes: node 0 needs at least 128M of memory (the kernel boots from it)"
[ "$total_mem" -le 16384 ] || die "--nodes: ${total_mem}M of guest memory is more than 16G"

# Sockets: each node with CPUs gets its own socket(s) so that no socket spans
# nodes. Equal-sized, aligned CPU ranges -> one socket per node; else one per CPU.
cpu_nodes=0 per=-1 uniform=1
for ((i = 0; i < nnodes; i++)); do
	[ -n "${node_cpu_lo[$i]+x}" ] || continue
	cpu_nodes=$((cpu_nodes + 1))
	n=$((node_cpu_hi[$i] - node_cpu_lo[$i] + 1))
	[ "$per" -lt 0 ] && per=$n
	{ [ "$n" -eq "$per" ] && [ $((node_cpu_lo[$i] % per)) -eq 0 ]; } || uniform=0
done
if [ "$uniform" = 1 ]; then sockets=$cpu_nodes cores=$per; else sockets=$ncpus cores=1; fi

qnuma=()
for ((i = 0; i < nnodes; i++)); do
	arg="node,nodeid=$i"
	[ -n "${node_cpu_lo[$i]+x}" ] && arg+=",cpus=${node_cpu_lo[$i]}-${node_cpu_hi[$i]}"
	if [ "${node_mem[$i]}" -gt 0 ]; then
		qnuma+=(-object "memory-backend-ram,id=m$i,size=${node_mem[$i]}M")
		arg+=",memdev=m$i"
	fi
	qnuma+=(-numa "$arg")
done
if [ -n "$distance" ]; then
	IFS=';' read -r -a rows <<< "${distance// /}"
	[ ${#rows[@]} -eq "$nnodes" ] || die "--distance: ${#rows[@]} rows for $nnodes nodes"
	for ((i = 0; i < nnodes; i++)); do
		IFS=',' read -r -a cols <<< "${rows[$i]}"
		[ ${#cols[@]} -eq "$nnodes" ] || die "--distance: row $i has ${#cols[@]} values, expected $nnodes"
		for ((j = 0; j < nnodes; j++)); do
			d=${cols[$j]}
			[[ $d =~ ^[0-9]+$ ]] || die "--distance: row $i: '$d' is not a number"
			d=$((10#$d))
			if [ "$i" -eq "$j" ]; then
				[ "$d" -eq 10 ] || die "--distance: local distance of node $i must be 10, got $d"
			else
				{ [ "$d" -gt 10 ] && [ "$d" -le 254 ]; } || die "--distance: distance $i->$j must be 11..254, got $d"
			fi
			[ "$i" -ne "$j" ] && qnuma+=(-numa "dist,src=$i,dst=$j,val=$d")
		done
	done
fi

# ---- qemu and kernel ----------------------------------------------------------------
qemu=${MB_VM_QEMU:-$(command -v qemu-system-x86_64)}
[ -n "$qemu" ] && [ -x "$qemu" ] || skip "qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
command -v cpio >/dev/null || skip "cpio not installed"
busybox=$(command -v busybox || true)
[ -n "$busybox" ] && file -L "$busybox" 2>/dev/null | grep -q 'statically linked' || busybox=/bin/busybox
file -L "$busybox" 2>/dev/null | grep -q 'statically linked' || skip "static busybox not found (apt-get install busybox-static)"

kdir_root=$("$here/fetch-kernel.sh"); rc=$?
if [ $rc -ne 0 ] || [ ! -f "$kdir_root/vmlinuz" ]; then
	skip "Debian kernel image/headers not available (fetch-kernel.sh exit $rc)"
fi
kver=$(cat "$kdir_root/kver")
kernel=$kdir_root/vmlinuz
[ -f "$kdir_root/vmlinux" ] && kernel=$kdir_root/vmlinux

# ---- module and guest helpers (make keeps them up to date) ---------------------------
work=$cache/work.$$
mkdir -p "$work"
trap '[ -n "${MB_VM_KEEP:-}" ] || rm -rf "$work"; [ -n "${qpid:-}" ] && kill -9 "$qpid" 2>/dev/null' EXIT
ko=$repo/kernel/membalancer_abit.ko
ko_fresh() { # built for this kernel and newer than its sources
	[ -f "$ko" ] && [ -z "$(find "$repo/kernel" -maxdepth 1 \( -name '*.[ch]' -o -name Makefile \) -newer "$ko")" ] &&
		[ "$(modinfo -F vermagic "$ko" 2>/dev/null | cut -d' ' -f1)" = "$kver" ]
}
if [ "$no_module" = 0 ] && ! ko_fresh; then
	if ! make -s -C "$repo" -f "$here/vm.mk" MB_VM_STANDALONE=1 KVER="$kver" module >"$work/module.log" 2>&1; then
		cat "$work/module.log" >&2
		echo "run.sh: FAIL: building kernel/membalancer_abit.ko for $kver failed" >&2
		exit 1
	fi
fi
if ! make -s -C "$repo" -f "$here/vm.mk" MB_VM_STANDALONE=1 vm-helpers >"$work/helpers.log" 2>&1; then
	cat "$work/helpers.log" >&2
	echo "run.sh: FAIL: building the static guest helpers (tests/vm/guest/*.c) failed" >&2
	exit 1
fi

# ---- initramfs --------------------------------------------------------------------------
rootfs=$work/root
mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,lib,lib64,etc,dev,proc,sys,tmp,root,add} \
	"$rootfs"/opt/membalancer/{bin,scripts,kernel,vmtest,vm/bin}
cp "$busybox" "$rootfs/bin/busybox"
cp "$here/guest/init" "$rootfs/init"; chmod 755 "$rootfs/init"
mknod -m 600 "$rootfs/dev/console" c 5 1
mknod -m 666 "$rootfs/dev/null" c 1 3
echo "root:x:0:0:root:/root:/bin/sh" > "$rootfs/etc/passwd"
echo "root:x:0:" > "$rootfs/etc/group"
copy_libs() { # ELF files -> their shared libraries and the loader, at the same paths
	local f lib
	for f in "$@"; do
		file -L "$f" | grep -q 'dynamically linked' || continue
		ldd "$f" 2>/dev/null | awk '/=> \// {print $3} /^\t\// {print $1}' | while read -r lib; do
			[ -e "$rootfs$lib" ] && continue
			mkdir -p "$rootfs$(dirname "$lib")"
			cp -L "$lib" "$rootfs$lib"
		done
	done
}
# bash for scripts that need it (the project's scripts are bash).
extra=()
for t in bash; do
	p=$(command -v $t) && { cp -L "$p" "$rootfs/bin/$t"; extra+=("$p"); }
done
copy_libs "${extra[@]}"
shopt -s nullglob
bins=()
for f in "${MB_VM_BIN:-$repo/bin}"/*; do
	[ -f "$f" ] && [ -x "$f" ] || continue
	case $(basename "$f") in unit_tests) continue ;; esac  # integration_tests also runs in guests
	# Debug info is most of their size; the guest does not need it, except in
	# the symbolisation test's program (file:line).
	case $(basename "$f") in
	symtest* | libsymtest*.so) cp -L "$f" "$rootfs/opt/membalancer/bin/" ;;
	*) objcopy --strip-debug "$f" "$rootfs/opt/membalancer/bin/$(basename "$f")" 2>/dev/null ||
		cp -L "$f" "$rootfs/opt/membalancer/bin/" ;;
	esac
	bins+=("$f")
done
copy_libs "${bins[@]}"
[ -d "$repo/scripts" ] && cp -rL "$repo/scripts/." "$rootfs/opt/membalancer/scripts/"
cp "$here"/guest/*.sh "$rootfs/opt/membalancer/vm/" 2>/dev/null
for f in "$cache"/helpers/*; do cp "$f" "$rootfs/opt/membalancer/vm/bin/"; done
[ "$no_module" = 0 ] && cp "$repo/kernel/membalancer_abit.ko" "$rootfs/opt/membalancer/kernel/"
cp "$script" "$rootfs/opt/membalancer/vmtest/$(basename "$script")"
for a in "${adds[@]}"; do cp -rL "$a" "$rootfs/add/"; done
shopt -u nullglob
( cd "$rootfs" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1 ) > "$work/initrd.gz" \
	|| { echo "run.sh: FAIL: building the initramfs failed" >&2; exit 1; }

# ---- accelerator: KVM only if a probe shows it works here ------------------------------
accel=${MB_VM_ACCEL:-}
if [ -z "$accel" ]; then
	bootid=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null || echo none)
	probe=$cache/accel.$bootid
	if [ -f "$probe" ]; then
		accel=$(cat "$probe")
	else
		accel=tcg
		if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
			# Boot the kernel with an init that powers off at once.
			pr=$work/probe; mkdir -p "$pr/bin" "$pr/dev"
			cp "$busybox" "$pr/bin/busybox"
			printf '#!/bin/busybox sh\n/bin/busybox echo MB_KVM_OK\n/bin/busybox poweroff -f\n' > "$pr/init"; chmod 755 "$pr/init"
			mknod -m 600 "$pr/dev/console" c 5 1
			( cd "$pr" && find . | cpio -o -H newc --quiet | gzip -1 ) > "$work/probe.gz"
			if timeout -s KILL 20 "$qemu" -accel kvm -cpu host -m 256 -smp 1 -display none -nodefaults \
				-no-reboot -serial stdio -kernel "$kdir_root/vmlinuz" -initrd "$work/probe.gz" \
				-append "console=ttyS0 quiet panic=-1" </dev/null 2>/dev/null | grep -q MB_KVM_OK; then
				accel=kvm
			fi
		fi
		echo "$accel" > "$probe"
	fi
fi
# TCG runs all vCPUs in one host thread by default. With one thread per vCPU
# (thread=multi, qemu 7.2) a guest CPU can trap forever on an int3 that the
# kernel's static-key patching (text_poke_bp, which attaching or detaching a
# BPF program triggers) has already replaced: tests/vm/diag/tcg_static_key.sh
# reproduces it. One thread rules it out and is no slower on two host cores.
tcg_thread=${MB_VM_TCG_THREAD:-single}
case $tcg_thread in single|multi) ;; *) die "MB_VM_TCG_THREAD must be single or multi" ;; esac
case $accel in
kvm) cpu=host ;;
tcg) cpu=max; accel=tcg,thread=$tcg_thread ;;
*) die "MB_VM_ACCEL must be kvm or tcg" ;;
esac

# ---- boot ------------------------------------------------------------------------------------
# loglevel=5: warnings and the stack dumps that follow them reach the console
# (a hung guest never gets to dump its log). A lockup, hung task or RCU stall
# panics at once, with every CPU's backtrace, instead of idling to the timeout.
cmdline="console=ttyS0 panic=-1 loglevel=5 rdinit=/init tsc=reliable"
cmdline+=" softlockup_panic=1 softlockup_all_cpu_backtrace=1 hung_task_panic=1 sysctl.kernel.panic_on_rcu_stall=1"
[ "$no_module" = 1 ] && cmdline+=" MB_NO_MODULE=1"
[ -n "${CI:-}" ] && cmdline+=" CI=$CI"
[ -n "$append" ] && cmdline+=" $append"
[ -n "$log" ] || log=$repo/build/vm/$(basename "${script%.sh}").log
mkdir -p "$(dirname "$log")"
: > "$log"

echo "run.sh: kernel $kver, accel ${accel}, $ncpus cpus in $sockets sockets, $nnodes nodes, ${total_mem}M, script $(basename "$script")" >&2
start=$(date +%s.%N)
# The console is streamed (minus the final kernel-log dump, kept in the log).
"$qemu" -accel "$accel" -cpu "$cpu" -m "${total_mem}M" -smp "$ncpus,sockets=$sockets,cores=$cores,threads=1" \
	"${qnuma[@]}" -display none -nodefaults -no-reboot -serial stdio \
	-kernel "$kernel" -initrd "$work/initrd.gz" -append "$cmdline" \
	</dev/null > >(tr -d '\r' | tee -a "$log" | awk '/^MB_VM_DMESG_BEGIN/ {d=1} !d {print; fflush()} /^MB_VM_DMESG_END/ {d=0}') 2>&1 &
qpid=$!
timed_out=0
deadline=$(( $(date +%s) + timeout ))
while kill -0 "$qpid" 2>/dev/null; do
	if [ "$(date +%s)" -ge "$deadline" ]; then
		kill -9 "$qpid" 2>/dev/null; timed_out=1; break
	fi
	sleep 0.2
done
wait "$qpid" 2>/dev/null
qpid=
sleep 0.2 # let the console pipe drain
end=$(date +%s.%N)

# ---- verdict -------------------------------------------------------------------------------
bad_re='WARNING:|BUG:|kernel BUG|Oops|general protection fault|Kernel panic|blocked for more than|hung task|soft lockup|hard LOCKUP|rcu: INFO|self-detected stall|detected stalls|UBSAN:|refcount_t:|list_add corruption|list_del corruption|Bad page'
kmsg=$(sed -n '/^MB_VM_DMESG_BEGIN/,/^MB_VM_DMESG_END/p' "$log")
[ -n "$kmsg" ] || kmsg=$(grep -E '^\[ *[0-9]+\.[0-9]+\]' "$log") # no dump: the console's kernel lines
bad=$(grep -E "$bad_re" <<< "$kmsg" | head -20)
status=$(sed -n 's/^MB_VM_EXIT=\([0-9]*\)$/\1/p' "$log" | tail -1)
boot=$(sed -n 's/^MB_VM_SCRIPT_START uptime=\([0-9.]*\)/\1/p' "$log" | tail -1)
echo "run.sh: guest ran $(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.1f", b - a}') s wall, script started at guest uptime ${boot:-?} s; log $log" >&2
if [ -n "$bad" ]; then
	echo "run.sh: FAIL: the guest kernel log shows problems:" >&2
	sed 's/^/  /' <<< "$bad" >&2
	exit 125
fi
if [ "$timed_out" = 1 ]; then
	echo "run.sh: FAIL: timeout after ${timeout} s (qemu killed)" >&2
	exit 124
fi
if [ -z "$status" ]; then
	echo "run.sh: FAIL: the guest ended without reporting an exit status (crash or panic?)" >&2
	exit 125
fi
exit "$status"
