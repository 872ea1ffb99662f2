#!/bin/bash
# Runs the libFuzzer targets one after another (what `make fuzz` and
# `make fuzz-long` call; docs/fuzzing.md).
#   fuzz/run.sh short|long SECONDS TARGET...
# short: each target starts from a fresh copy of fuzz/corpus/TARGET in
#        $FUZZ_DIR/corpus/TARGET (nothing is written into the repository).
# long:  the corpus lives in $FUZZ_DIR/corpus-long/TARGET and grows from run
#        to run; the committed seeds are added to it each time.
# Logs go to $FUZZ_DIR/logs/TARGET.log, crash/leak/timeout/oom inputs to
# $FUZZ_DIR/artifacts/TARGET/. Exit status 1 when any target failed.
set -u
mode=${1:?usage: run.sh short|long SECONDS TARGET...}
seconds=${2:?usage: run.sh short|long SECONDS TARGET...}
shift 2
cd "$(dirname "$0")/.."
FUZZ_DIR=${FUZZ_DIR:-build/fuzz}

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# tmpfs when there is one: the targets write a file or a tree per input.
tmp_base=${TMPDIR:-/tmp}
[ -z "${TMPDIR:-}" ] && [ -w /dev/shm ] && tmp_base=/dev/shm

failed=()
start_all=$SECONDS
for t in "$@"; do
  bin=$FUZZ_DIR/bin/fuzz_$t
  [ -x "$bin" ] || { echo "fuzz: $bin is missing (make fuzz-build)"; failed+=("$t"); continue; }
  if [ "$mode" = long ]; then
    corpus=$FUZZ_DIR/corpus-long/$t
    mkdir -p "$corpus"
  else
    corpus=$FUZZ_DIR/corpus/$t
    rm -rf "$corpus"
    mkdir -p "$corpus"
  fi
  [ -d fuzz/corpus/$t ] && cp -p fuzz/corpus/$t/* "$corpus"/ 2>/dev/null
  artifacts=$FUZZ_DIR/artifacts/$t
  mkdir -p "$artifacts" "$FUZZ_DIR/logs"
  log=$FUZZ_DIR/logs/$t.log
  dict=()
  [ -f fuzz/dict/$t.dict ] && dict=(-dict=fuzz/dict/$t.dict)
  # The target's scratch files (removed here too: a crash skips its own cleanup).
  tmp=$(mktemp -d "$tmp_base/mb_fuzz_run.XXXXXX")
  t0=$SECONDS
  TMPDIR=$tmp "$bin" "$corpus" "${dict[@]}" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1
  rc=$?
  rm -rf "$tmp"
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  units=$(ls "$corpus" | wc -l)
  if [ $rc -eq 0 ]; then
    printf 'fuzz %-15s ok      %4ds %9s runs, %s, corpus %s\n' "$t" $((SECONDS - t0)) "${execs:-?}" "${cov:-cov: ?}" "$units"
  else
    printf 'fuzz %-15s FAILED  %4ds (exit %d), log %s\n' "$t" $((SECONDS - t0)) $rc "$log"
    grep -aE 'FUZZ FINDING|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|SUMMARY:|Test unit written|==[0-9]+== ?ERROR' "$log" | head -20 | sed 's/^/    /'
    failed+=("$t")
  fi
done
echo "fuzz: ${#failed[@]} of $# target(s) failed$([ ${#failed[@]} -gt 0 ] && echo ": ${failed[*]}") ($((SECONDS - start_all)) s)"
[ ${#failed[@]} -eq 0 ]
