#!/bin/bash
# Bad inputs, each run against the real binaries (docs/reliability.md, "Least
# privilege and input safety"): every one must end with status 2 and one line
# on stderr naming it, without hanging (each gets 20 s, then SIGTERM, then
# SIGKILL); a failed write of stdout (out_fails) is status 1 instead, and a
# wrapper script's bad PPID (bad_usage) ends with its usage line. Prints a line per input (status, command, message) and a summary;
# exits 1 if any input was not refused that way. Run as root from the
# repository root: MB_BIN_DIR=bin tests/bad_inputs.sh (`make bad-input-test`, in
# `make test`)
set -u
BIN=${MB_BIN_DIR:-bin}
MB=$BIN/membalancer PROF=$BIN/profiler
[ "$(id -u)" = 0 ] || { echo "bad_inputs.sh: run as root (privileged runs check their config files)" >&2; exit 1; }
D=$(mktemp -d /tmp/mb_bad_inputs.XXXXXX)
sleep 3600 & SL=$!
# A thread that is not its process's leader.
python3 -c 'import threading, time
threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()
time.sleep(3600)' & TP=$!
sleep 1
TID=$(ls /proc/$TP/task | grep -vx "$TP" | head -1)
trap 'kill $SL $TP 2>/dev/null; rm -rf "$D"' EXIT
total=0 refused=0
bad() {
	timeout -k 5 20 "$@" > /dev/null 2> "$D/err"
	local st=$? lines
	lines=$(grep -c . "$D/err")
	total=$((total + 1))
	if [ $st -eq 2 ] && [ "$lines" -eq 1 ]; then refused=$((refused + 1)); else printf 'NOT REFUSED '; fi
	printf '%s\t%s\t%s\n' "$st" "$*" "$(tail -1 "$D/err" | cut -c1-200)"
}
# bad_naming WORD COMMAND...: as bad, and the line must contain WORD (the
# option or the damage it names, not another).
bad_naming() {
	local word=$1 before=$refused
	shift
	bad "$@"
	if [ $refused -gt $before ] && ! grep -qF -- "$word" "$D/err"; then
		refused=$before
		printf 'NOT NAMING %s\n' "$word"
	fi
}
# out_fails OUT COMMAND...: stdout to OUT (/dev/full; pipe: a reader that
# leaves after a byte; closed: a pipe whose reader left before the start): the
# failed write is one line and status 1, never a silent 0.
out_fails() {
	local out=$1 st lines
	shift
	if [ "$out" = pipe ]; then
		( trap '' PIPE; timeout -k 5 20 "$@" 2> "$D/err" | head -c 1 > /dev/null; exit "${PIPESTATUS[0]}" )
	elif [ "$out" = closed ]; then
		# A FIFO opened to read and write, then to write, then its reading
		# side closed: fd 5 is a pipe with no reader, for certain.
		rm -f "$D/fifo" && mkfifo "$D/fifo"
		( exec 4<> "$D/fifo" 5> "$D/fifo" 4<&-; trap '' PIPE; timeout -k 5 20 "$@" >&5 2> "$D/err" )
	else
		timeout -k 5 20 "$@" > "$out" 2> "$D/err"
	fi
	st=$?
	lines=$(grep -c . "$D/err")
	total=$((total + 1))
	if [ $st -eq 1 ] && [ "$lines" -eq 1 ]; then refused=$((refused + 1)); else printf 'NOT REFUSED '; fi
	printf '%s\t>%s %s\t%s\n' "$st" "$out" "$*" "$(tail -1 "$D/err" | cut -c1-200)"
}
# bad_usage SCRIPT ARGS...: a wrapper script given a missing or bad PPID prints
# its usage line (the last on stderr) and exits 2 without starting membalancer.
bad_usage() {
	MEMBALANCER=false timeout -k 5 20 "$@" > /dev/null 2> "$D/err"
	local st=$?
	total=$((total + 1))
	if [ $st -eq 2 ] && tail -1 "$D/err" | grep -q "^usage: $(basename "$1") "; then
		refused=$((refused + 1))
	else
		printf 'NOT REFUSED '
	fi
	printf '%s\t%s\t%s\n' "$st" "$*" "$(tr '\n' ' ' < "$D/err" | cut -c1-200)"
}
for s in run.sh run_c.sh runt.sh runt_c.sh run_memory_balancer.sh run_memory_profiler.sh \
	run_process_balancer.sh run_process_profiler.sh run_autotune.sh; do
	bad_usage scripts/$s
	bad_usage scripts/$s ""
	bad_usage scripts/$s abc
	bad_usage scripts/$s 00 --duration 1
	bad_usage scripts/$s 010 --duration 1
	bad_usage scripts/$s 3999999 --duration 1
done
bad_usage scripts/run_numa_tier.sh "" --duration 1
bad_usage scripts/run_numa_tier.sh 3999999 --duration 1
bad "$MB" trace --pid -1 --duration 1
bad "$MB" trace --pid 0
bad "$MB" trace --pid 4194305 --duration 1
bad "$MB" trace --pid 99999999999
bad "$MB" trace --pid 12abc
bad_naming "leading zero" "$MB" trace --pid 010 --duration 1
bad "$MB" trace --pid 3999999 --duration 1
bad "$MB" trace --ppid "" --duration 1
bad "$MB" trace --pid $SL --duration 1 --max-tasks 0
bad_naming "--bpf-page-slots" "$MB" trace --pid $SL --duration 1 --bpf-page-slots 1073741824
bad "$MB" trace --pid $SL --duration 1 --max-tasks -1
bad "$MB" trace --pid $SL --duration 1 --max-processes 0
bad "$MB" trace --pid $SL --duration 1 --ibs-period 0
bad "$MB" trace --pid $SL --duration 1 --pebs-period 0
bad_naming "--sampler abit" "$MB" trace --all --duration 1 --sampler abit
bad_naming "multiple of 16" "$MB" trace --pid $SL --duration 1 --ibs-period 100
bad_naming --ibs-period "$MB" trace --pid $SL --duration 1 --sampler fault --ibs-period 4096
bad_naming --pebs-period "$MB" numa --pid $SL --duration 1 --sampler ibs --pebs-period 500
bad "$MB" trace --pid $SL --duration 1 --max-ranges -1
bad "$MB" trace --pid $SL --duration inf --interval 10 --max-pages 0
bad "$MB" trace --pid $SL --duration nan
bad "$MB" trace --pid $SL --duration 1e308
bad "$MB" trace --pid $SL --max-pages 99999999999999999999T
bad "$MB" trace --pid $SL --max-pages 16777216T
bad "$MB" trace --pid $SL --region-size 0
bad "$MB" trace --pid $SL --region-size -4K
bad "$MB" trace --cgroup /nonexistent --duration 1
bad "$MB" trace --cgroup /etc/passwd --duration 1
bad "$MB" trace --cgroup /tmp --duration 1
bad "$MB" trace --cgroup "" --duration 1
bad "$MB" trace --pid $SL --record $D --duration 1
bad "$MB" trace --pid $SL --record /nonexistent/dir/x.prof --duration 1
bad_naming --record "$MB" trace --pid $SL --record "" --duration 1
ln -s $D/target $D/link; bad "$MB" trace --pid $SL --record $D/link --duration 1 --force
touch $D/exists; bad "$MB" trace --pid $SL --record $D/exists --duration 1
bad "$MB" trace --pid $SL --record /dev/null --duration 1 --force
bad "$MB" trace --pid $SL --duration 1 --force
bad "$MB" --info trace --pid $SL --duration 1
mkdir $D/realdir; ln -s $D/realdir $D/linkdir; bad "$MB" trace --pid $SL --record $D/linkdir/x.prof --duration 1 --force
mkfifo $D/fifo; bad "$MB" trace --pid $SL --record $D/fifo --duration 1 --force
bad "$MB" trace --pid $SL --sampler replay: --duration 1
bad "$MB" trace --sampler replay:/nonexistent --duration 1
bad "$MB" trace --sampler replay:/etc/passwd --duration 1
bad "$MB" trace --sampler replay:$D --duration 1
bad "$MB" tier --pid $SL --tiers 0:7 --duration 1
bad "$MB" tier --pid $SL --tiers 0:0 --duration 1
bad_naming "named twice in tier 0" "$MB" tier --pid $SL --tiers 0,0:1 --duration 1
bad "$MB" tier --pid $SL --tiers ,: --duration 1
bad "$MB" tier --pid $SL --tiers 99999999999:1 --duration 1
# inf left no page hot, unsaid.
bad_naming --min-heat "$MB" numa --pid $SL --min-heat inf --duration 1
bad_naming --min-heat "$MB" numa --pid $SL --min-heat 0 --duration 1
bad_naming "--watermark 30" "$MB" tier --pid $SL --watermark 30 --duration 1
bad "$MB" tier --pid $SL --tiers -1:0 --duration 1
bad "$MB" numa --pid $SL --min-free 99999999999T --duration 1
bad "$MB" numa --pid $SL --rate-limit -1 --duration 1
bad "$MB" numa --pid $SL --move-workers 0 --duration 1
bad "$MB" autotune --pid $SL --reevaluate -1 --duration 1
bad "$MB" autotune --pid $SL --observe -1 --duration 1
bad "$MB" process --pid $SL --load-max nan --duration 1
bad "$MB" process --pid $SL --load-max 1e999 --duration 1
bad "$MB" process --pid $SL --max-move-share -5 --duration 1
bad "$MB" process --pid $SL --cooldown -1 --duration 1
bad "$MB" trace --pid "$TID" --duration 1
bad_naming "kernel thread" "$MB" process --pid 2 --migrate --duration 1
bad "$MB" --config /etc/shadow trace --pid $SL --duration 1
bad "$MB" --config /dev/zero trace --pid $SL --duration 1
printf '[trace]\ninterval = 250\n' > $D/cfg.toml; chmod 666 $D/cfg.toml; bad "$MB" --config $D/cfg.toml trace --pid $SL --duration 1
# An unknown key is an error in another command's section too (only its values are left out).
printf '[numa]\nbogus = 1\n' > $D/other.toml; bad_naming numa.bogus "$MB" --config $D/other.toml trace --pid $SL --duration 1
printf '[autotune]\nobserve = []\n' > $D/empty.toml; bad "$MB" --config $D/empty.toml autotune --pid $SL --duration 1
# An empty name read no file at all: the options meant for it were left out unsaid.
bad_naming --config "$MB" --config "" trace --pid $SL --duration 1
bad_naming bogus "$PROF" bogus
bad "$PROF" record --pid 0 -o $D/a.prof
bad "$PROF" record --pid -5 -o $D/a.prof
bad "$PROF" record --pid 3999999 -o $D/a.prof --duration 1
bad "$PROF" record --pid $SL -o $D --duration 1
bad "$PROF" record --pid $SL -o "" --duration 1
bad "$PROF" record --pid $SL -o $D/exists --duration 1
bad "$PROF" record --pid $SL -o $D/link --force --duration 1
bad "$PROF" record --pid $SL -o $D/fifo --force --duration 1
bad "$PROF" record --pid $SL -o /dev/null --force --duration 1
bad "$PROF" record --pid $SL -o $D/x.prof --ring-size 0 --duration 1
bad_naming --cpu-clock-period "$PROF" record --pid $SL -o $D/x.prof --sampler fault --cpu-clock-period 50 --duration 1
bad_naming --cpu-clock-period "$PROF" record --pid $SL -o $D/x.prof --cpu-clock-period 50 --duration 1
bad "$PROF" record --pid $SL -o $D/x.prof --ring-size 3M --duration 1
bad_naming --ring-size "$PROF" record --pid $SL -o $D/x.prof --ring-size 2G --duration 1
# membalancer's --record takes the same --ring-size, from a config file too, and only with --record.
bad_naming --ring-size "$MB" trace --pid $SL --record $D/r.prof --ring-size 0 --duration 1
bad_naming --ring-size "$MB" numa --pid $SL --record $D/r.prof --ring-size 3M --duration 1
bad_naming --ring-size "$MB" trace --pid $SL --record $D/r.prof --ring-size 2K --duration 1
bad_naming --ring-size "$MB" tier --pid $SL --record $D/r.prof --ring-size 2G --duration 1
bad_naming --ring-size "$MB" trace --pid $SL --record $D/r.prof --ring-size lots --duration 1
bad_naming --ring-size "$MB" trace --pid $SL --ring-size 64K --duration 1
printf '[trace]\nring-size = "5K"\n' > $D/ring.toml; bad_naming --ring-size "$MB" --config $D/ring.toml trace --pid $SL --record $D/r.prof --duration 1
bad_naming --maps-clock "$PROF" record --pid $SL -o $D/x.prof --maps-clock fast --duration 1
bad "$PROF" record --cgroup /nonexistent -o $D/x.prof --duration 1
bad "$PROF" record -o $D/x.prof --duration 1 -- /nonexistent/cmd
bad "$PROF" report /nonexistent
bad "$PROF" report $D
bad "$PROF" report /dev/zero
bad "$PROF" report /etc/passwd
bad "$PROF" report $D/fifo
bad "$PROF" heatmap /nonexistent -o $D/h.svg
bad_naming "leading zero" "$PROF" heatmap $D/s.prof --pid 010 -o $D/h.svg
bad "$PROF" heatmap /etc/passwd -o $D/h.txt
bad "$PROF" synth --pattern zipf --footprint 0 --samples 10 -o $D/z.prof
bad "$PROF" synth --pattern zipf --footprint 99999999999T --samples 10 -o $D/z.prof
bad "$PROF" synth --pattern zipf --footprint 1G --samples -1 -o $D/z.prof
bad "$PROF" synth --pattern hotset --footprint 1M --hot-size 2M --samples 10 -o $D/z.prof
bad "$PROF" synth --pattern hotset --footprint 1M --hot-size 0 --samples 10 -o $D/z.prof
bad "$PROF" synth --pattern zipf --footprint 1M --samples 10 -o $D/link --force
bad "$PROF" synth --pattern zipf --footprint 1M --samples 10 -o $D/exists
bad "$PROF" whatif /nonexistent
bad "$PROF" whatif $D/exists --fast 0
bad "$PROF" whatif $D/exists --sweep 0:1:0
bad "$MB" trace --pid $SL --duration inf
bad "$MB" trace --pid $SL --duration 1e10
python3 -c 'import os,time
p=os.fork()
if p == 0: os._exit(0)
print(p, flush=True); time.sleep(30)' > $D/zpid & ZP=$!; sleep 1; Z=$(cat $D/zpid)
bad "$MB" trace --ppid $Z --duration 1
kill $ZP; wait $ZP 2>/dev/null
chmod 644 $D/cfg.toml; chown 65534 $D/cfg.toml; bad "$MB" --config $D/cfg.toml trace --pid $SL --duration 1
mkdir $D/open; chmod 777 $D/open; printf '[trace]\ninterval = 250\n' > $D/open/c.toml; bad "$MB" --config $D/open/c.toml trace --pid $SL --duration 1
printf 'root:$6$secret:1:0:::\n' > $D/shadowlike; bad "$MB" --config $D/shadowlike trace --pid $SL --duration 1
bad "$PROF" record -o $D/y.prof -- no-such-command-mb
bad "$PROF" record -o $D/y.prof -- /etc
"$PROF" synth --pattern gups --footprint 1M --samples 1000 -o $D/s.prof 2>/dev/null
bad "$PROF" heatmap $D/s.prof -o $D/h.svg --pid -1
bad "$PROF" report $D/s.prof --top 0
bad "$PROF" report $D/s.prof --region 3K
bad "$PROF" whatif $D/s.prof --fast 0
bad "$PROF" whatif $D/s.prof --rate-limit 5Q
bad "$PROF" whatif $D/s.prof --sweep 1M:1T:1K
bad "$PROF" whatif $D/s.prof --sweep 1M:2M:1M --jobs 0
bad "$PROF" whatif $D/s.prof --jobs 2
# A list naming no policy ran every one; --force without -o replaced nothing; pid 0 drew every process.
bad_naming --policy "$PROF" whatif $D/s.prof --fast 256K --policy ""
bad_naming --policy "$PROF" whatif $D/s.prof --fast 256K --policy ,
bad_naming --force "$PROF" whatif $D/s.prof --fast 256K --force
bad_naming --pid "$PROF" heatmap $D/s.prof -o $D/h0.svg --pid 0
# An empty -o is a name given, refused as empty (whatif took it for none and wrote nothing).
bad_naming "-o: only a --sweep" "$PROF" whatif $D/s.prof --fast 256K -o ""
bad_naming "-o: the output file name is empty" "$PROF" whatif $D/s.prof --sweep 256K:512K:256K -o ""
bad_naming "-o: the output file name is empty" "$PROF" heatmap $D/s.prof -o ""
bad_naming "-o: the output file name is empty" "$PROF" synth --pattern gups --footprint 1M --samples 10 -o ""
bad_naming --sweep "$PROF" whatif $D/s.prof --sweep 1:16777215T:8388608T
bad_naming --sweep "$PROF" whatif $D/s.prof --sweep 1:2:1
bad_naming --sweep "$PROF" whatif $D/s.prof --sweep ""
bad_naming --fast "$PROF" whatif $D/s.prof --sweep 1M:2M:1M --fast 1M
bad_naming --fast "$PROF" whatif $D/s.prof --fast 8388608T
bad_naming --tiers "$PROF" whatif $D/s.prof --tiers 4194304T,1T
bad_naming --tiers "$PROF" whatif $D/s.prof --tiers 1K
"$PROF" synth --pattern gups --footprint 64M --samples 100000 -o $D/big.prof 2>/dev/null
cp $D/big.prof $D/cut.prof; truncate -s -1000 $D/cut.prof
bad_naming offset "$PROF" whatif $D/cut.prof --fast 16M
bad_naming offset "$PROF" whatif $D/cut.prof --sweep 16M:32M:16M
# Cut inside the first sample chunk: nothing precedes the damage, which is still named.
head -c 100000 $D/big.prof > $D/cut0.prof
bad_naming offset "$PROF" whatif $D/cut0.prof --fast 16M
bad_naming offset "$PROF" heatmap $D/cut0.prof -o $D/cut0.svg
bad_naming nan "$PROF" record --pid $SL -o $D/n.prof --duration nan
bad_naming 18446744073709551616 "$PROF" synth --pattern gups --footprint 1M --samples 10 --seed 18446744073709551616 -o $D/q.prof
bad_naming 99999999999999999999 "$PROF" synth --pattern gups --footprint 1M --samples 99999999999999999999 -o $D/q.prof
bad_naming 1.0000001 "$PROF" synth --pattern hotset --footprint 1M --samples 10 --hot-share 1.0000001 -o $D/q.prof
bad_naming --skew "$PROF" synth --pattern zipf --footprint 1M --samples 10 --skew nan -o $D/q.prof
bad_naming --thp-split "$PROF" synth --pattern gups --footprint 4M --samples 10 --thp-split 0.5 -o $D/q.prof
bad_naming --thp "$PROF" synth --pattern gups --footprint 4M --samples 10 --thp 1.5 -o $D/q.prof
bad_naming "2 MiB range" "$PROF" synth --pattern gups --footprint 1M --samples 10 --thp 0.5 -o $D/q.prof
out_fails /dev/full "$PROF" report $D/s.prof
out_fails /dev/full "$PROF" whatif $D/s.prof --fast 256K
out_fails /dev/full "$PROF" whatif $D/s.prof --sweep 256K:512K:256K --format json
out_fails pipe "$PROF" report $D/big.prof --by page --top 100000 --format csv
out_fails closed "$PROF" report $D/big.prof
out_fails closed "$PROF" whatif $D/big.prof --fast 256K
out_fails closed "$PROF" whatif $D/big.prof --sweep 256K:1M:256K
# A full disk: one line, status 1, and no partial file left behind.
mkdir $D/tiny && mount -t tmpfs -o size=64k tmpfs $D/tiny
trap 'umount $D/tiny 2>/dev/null; kill $SL $TP 2>/dev/null; rm -rf "$D"' EXIT
left_none() {
	total=$((total + 1))
	if [ -e "$1" ]; then printf 'NOT REFUSED left behind: %s\n' "$1"; else refused=$((refused + 1)); fi
}
out_fails /dev/null "$PROF" synth --pattern gups --footprint 1M --samples 100000 -o $D/tiny/s.prof
left_none $D/tiny/s.prof
out_fails /dev/null "$PROF" heatmap $D/big.prof -o $D/tiny/h.svg
left_none $D/tiny/h.svg
umount $D/tiny
bad "$MB" trace --sampler replay:$D/s.prof --record $D/r.prof
bad "$MB" tier --sampler replay:$D/s.prof --migrate
bad "$MB" trace --pid $SL --sampler replay:$D/s.prof --cgroup /sys/fs/cgroup
bad_naming "not a process of the recording" "$MB" trace --sampler replay:$D/s.prof --pid 5 --speed max
bad_naming "not a process of the recording" "$MB" trace --sampler replay:$D/s.prof --ppid 5 --speed max
echo "bad_inputs.sh: $total inputs, $refused refused with one line and status 2 (1 for a failed write), $((total - refused)) not"
# In `make test`: one line of the run's summary (tests/summary.sh), each input a test.
[ -z "${MB_BUILD_DIR:-}" ] || echo "bad-inputs $refused $((total - refused)) 0" >> "$MB_BUILD_DIR/test-summary"
[ $refused -eq $total ]
