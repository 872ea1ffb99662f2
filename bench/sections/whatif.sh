#!/usr/bin/env bash
# Policy quality and replay speed (profiler synth + profiler whatif +
# membalancer --sampler replay). Prints a markdown section; exits 1 when a
# target is missed: membalancer's policy >= 95% of the oracle's hit ratio on
# each trace and ratio and ahead of every other rule; replay >= 10M samples/s.
#   MB_BIN_DIR=bin (default)  WHATIF_SAMPLES=6000000
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
bin=${MB_BIN_DIR:-$repo/bin}
samples=${WHATIF_SAMPLES:-6000000}
work=$(mktemp -d /tmp/mb-whatif.XXXXXX)
trap 'rm -rf "$work"' EXIT
footprint=64M  # 16384 pages; 200K samples per 1 s interval: ~12 per page
# The cells of one seed: $work/PATTERN.FRAC$2.json, from traces
# $work/PATTERN$2.prof (kept for seed 7: the replay below reads one), of
# $footprint and $samples; the patterns, fast-tier fractions and further
# synth options are $patterns, $fracs and $synth_options.
patterns="hotset zipf phase" fracs="4 8" synth_options=""
cells() {
	local seed=$1 suffix=$2 p frac kib=$(( ${footprint%M} * 1024 ))
	for p in $patterns; do
		rm -f "$work/$p$suffix.prof"
		"$bin/profiler" synth --pattern $p --footprint $footprint --samples "$samples" --rate 200000 --seed $seed \
			$synth_options -o "$work/$p$suffix.prof" 2>/dev/null || { echo "whatif.sh: synth $p seed $seed failed"; exit 1; }
		for frac in $fracs; do
			"$bin/profiler" whatif "$work/$p$suffix.prof" --fast $((kib / frac))K --format json > "$work/$p.$frac$suffix.json" ||
				{ echo "whatif.sh: whatif $p 1:$frac seed $seed failed"; exit 1; }
		done
		[ -z "$suffix" ] || rm -f "$work/$p$suffix.prof"
	done
}
cells 7 ""
# The same cells over seeds 1-30: the expected hit ratios, which a single
# seed's table shows only with the chance of one draw.
seeds=$(seq 1 30 | grep -vx 7 | tr '\n' ' ')
export bin work footprint samples patterns fracs synth_options
export -f cells
# At most 4 at once: each holds a 384 MB trace in /tmp while it runs.
jobs=$(nproc); [ "$jobs" -le 4 ] || jobs=4
printf '%s\n' $seeds | xargs -P "$jobs" -I{} bash -c 'cells {} .s{}' ||
	{ echo "whatif.sh: the seeds' cells failed"; exit 1; }
# Sparse sampling, as on a real machine, where most pages get a sample or
# two per interval: 256 MiB (65536 pages), 3M samples (15 intervals of 200K,
# about 3 per page each); the phase change falls mid-interval. Seeds 1-30.
# Shown, not a target: the targets above are the issue's cells.
printf '%s\n' $(seq 1 30) | footprint=256M samples=3000000 xargs -P "$jobs" -I{} bash -c 'cells {} .p{}' ||
	{ echo "whatif.sh: the sparse cells failed"; exit 1; }
# The sparse traces again, with fast tiers of the whole footprint and half of
# it (seeds 1-10): room to spare, where pages seen once decide the rest.
printf '%s\n' $(seq 1 10) | footprint=256M samples=3000000 fracs="1 2" xargs -P "$jobs" -I{} bash -c 'cells {} .l{}' ||
	{ echo "whatif.sh: the large-tier cells failed"; exit 1; }
# Sparser, under a steady background: 1 GiB (262144 pages, under one sample
# each per interval), the hot set taking 60% of the samples, fast tiers of
# 1/8 and 1/16; 10 seeds. A change of pattern moves the overlap of samples
# and heat less here, the background still falling where the heat was.
printf '%s\n' $(seq 1 10) | footprint=1024M samples=3000000 patterns="hotset phase" fracs="8 16" \
	synth_options="--hot-share 0.6" xargs -P "$jobs" -I{} bash -c 'cells {} .b{}' ||
	{ echo "whatif.sh: the background cells failed"; exit 1; }
# Replay speed through the pipeline (trace mode: no policy, no migration),
# against reading the same file (cat) in the same run.
python3 - "$work" "$samples" "$bin" "$seeds" <<'PY'
import json, resource, statistics, subprocess, sys, time
work, samples, bindir, seeds = sys.argv[1], int(sys.argv[2]), sys.argv[3], [7] + [int(x) for x in sys.argv[4].split()]

def run(argv):
    """Wall seconds and CPU seconds (user + system) of one child."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.monotonic()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.monotonic() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

f = f"{work}/zipf.prof"
base_wall, base_cpu = run(["cat", f])
wall, cpu = run([f"{bindir}/membalancer", "trace", "--sampler", "replay:" + f, "--speed", "max", "--display", "json"])
ok = True
names = ["membalancer", "amd-topk", "memtis", "tpp", "linux-tiering", "memtierd-age"]
rows, recovery = [], {}
for p in ["hotset", "zipf", "phase"]:
    for frac in [4, 8]:
        r = json.load(open(f"{work}/{p}.{frac}.json"))
        pol = {x["policy"]: x for x in r["policies"]}
        of = {n: pol[n]["of_oracle"] for n in names}
        best_other = max(of[n] for n in names[1:])
        near = of["membalancer"] >= 0.95
        ahead = of["membalancer"] >= best_other
        ok &= near and ahead
        rows.append(f"| {p} | 1:{frac} | {100*pol['oracle']['hit_ratio']:.1f}% | " +
                    " | ".join(("**%.2f%%**" if n == "membalancer" else "%.2f%%") % (100 * of[n]) for n in names) +
                    f" | {'yes' if near else '**no**'} | " +
                    ("yes" if ahead else f"**no** ({100 * (of['membalancer'] - best_other):+.2f})") + " |")
        if p == "phase":
            acc, orc = r["accesses"], pol["oracle"]["hits"]
            change = len(acc) // 2
            for n in names:
                h = pol[n]["hits"]
                k = next((i - change for i in range(change, len(acc)) if orc[i] and h[i] >= 0.9 * orc[i]), None)
                recovery.setdefault(n, []).append("never" if k is None else str(k + 1))
# Over the seeds: membalancer minus each other rule, in points of the
# oracle's hit ratio (mean and standard error of the paired differences),
# and the seeds where membalancer served the most accesses of all; and
# each rule's pages moved (promoted + demoted), the cost a real mover pays
# for a placement, shown apart because the model charges nothing for it.
def shares(path):
    pol = {x["policy"]: x for x in json.load(open(path))["policies"]}
    return ({n: 100 * pol[n]["of_oracle"] for n in names},
            {n: pol[n]["promoted_pages"] + pol[n]["demoted_pages"] for n in names + ["oracle"]})
def over_seeds(paths, patterns=("hotset", "zipf", "phase"), fracs=(4, 8)):
    """Rows of the seeds table and of the pages-moved table for the cells,
    paths(p, frac) giving each cell's JSON files; and whether membalancer
    is ahead of every rule in all of them."""
    seed_rows, move_rows, all_ahead = [], [], True
    for p in patterns:
        for frac in fracs:
            both = [shares(f) for f in paths(p, frac)]
            runs = [b[0] for b in both]
            move_rows.append(f"| {p} | 1:{frac} | " +
                             " | ".join(f"{statistics.mean(b[1][n] for b in both):.0f}" for n in names + ["oracle"]) +
                             " |")
            cols, verdicts = [], []
            for n in names[1:]:
                d = [r["membalancer"] - r[n] for r in runs]
                mean, se = statistics.mean(d), statistics.stdev(d) / len(d) ** 0.5
                cols.append(f"{mean:+.4f} ± {se:.4f}")
                verdicts.append("ahead" if mean > 2 * se else "behind" if mean < -2 * se else "level")
            first = sum(r["membalancer"] > max(r[n] for n in names[1:]) for r in runs)
            verdict = "behind" if "behind" in verdicts else "level" if "level" in verdicts else "ahead"
            all_ahead &= verdict == "ahead"
            seed_rows.append(f"| {p} | 1:{frac} | " + " | ".join(cols) + f" | {first} of {len(runs)} | " +
                             ("yes" if verdict == "ahead" else f"**no** ({verdict} with " +
                              ", ".join(n for n, v in zip(names[1:], verdicts) if v != "ahead") + ")") + " |")
    return seed_rows, move_rows, all_ahead
seed_rows, move_rows, expected_ok = over_seeds(
    lambda p, frac: [f"{work}/{p}.{frac}.json"] + [f"{work}/{p}.{frac}.s{s}.json" for s in seeds[1:]])
sparse_rows, sparse_moves, _ = over_seeds(lambda p, frac: [f"{work}/{p}.{frac}.p{s}.json" for s in range(1, 31)])
large_rows, large_moves, _ = over_seeds(lambda p, frac: [f"{work}/{p}.{frac}.l{s}.json" for s in range(1, 11)],
                                       fracs=(1, 2))
background_rows, background_moves, _ = over_seeds(
    lambda p, frac: [f"{work}/{p}.{frac}.b{s}.json" for s in range(1, 11)], ("hotset", "phase"), (8, 16))
# CPU time: the machine may be shared (CI, other runs); wall time is shown too.
rate, rate_wall = samples / cpu, samples / wall
base = samples / max(base_cpu, 1e-9)
ok &= rate >= 10e6 and expected_ok
print("## Policy quality (what-if) and replay speed\n")
print(f"`bench/sections/whatif.sh`: `profiler synth` traces of a 64 MiB footprint (16384 pages), {samples} samples at"
      " 200K per 1 s interval (about 12 per page per interval), seed 7: GUPS with a hot set (10% of the pages take 90%"
      " of the samples), Zipf with skew 0.99, and the hot set moving halfway (phase). `profiler whatif` at a fast tier"
      " of 1/4 and 1/8 of the footprint, pages starting where first touch put them, moves limited to 200 MiB/s. The"
      " oracle holds each interval's hottest pages knowing its counts, with no migration cost (an upper bound).")
print("Columns: each policy's fast-tier hit ratio as a share of the oracle's. Target: membalancer ≥ 95% of the"
      " oracle and ahead of every other rule.\n")
print("| trace | fast:total | oracle hit ratio | " + " | ".join(names) + " | ≥ 95%? | ahead? |")
print("|---|---|---|" + "---|" * len(names) + "---|---|")
print("\n".join(rows))
print("\nAfter the phase change, intervals until a policy's hit ratio is back to 90% of the oracle's (1:4, 1:8): " +
      "; ".join(f"{n} {', '.join(v)}" for n, v in recovery.items()) + ".\n")
print(f"Over seeds 1 to {len(seeds)} (the same traces and sizes): membalancer's hit ratio minus each other rule's, in"
      " points of the oracle's (positive: membalancer ahead), mean ± standard error of the per-seed differences;"
      " the seeds where membalancer served more accesses than every other rule; and whether it is ahead of every"
      " rule in expectation (mean above two standard errors; within them: level).\n")
def tables(seed_rows, moves_intro, move_rows):
    """The seeds table and, after moves_intro, the pages-moved table."""
    print("| trace | fast:total | " + " | ".join(f"vs {n}" for n in names[1:]) + " | first | ahead of all? |")
    print("|---|---|" + "---|" * (len(names) - 1) + "---|---|")
    print("\n".join(seed_rows) + "\n")
    print(moves_intro + "\n")
    print("| trace | fast:total | " + " | ".join(names) + " | oracle |")
    print("|---|---|" + "---|" * (len(names) + 1))
    print("\n".join(move_rows) + "\n")
tables(seed_rows, f"Pages moved (promoted + demoted), mean over the {len(seeds)} seeds: the migrations a real mover would"
       " pay for each placement (the model above charges nothing for them). The oracle's: the fewest moves to each"
       " interval's best placement, keeping in place what it can; what its hit ratio costs.", move_rows)
print("Sparse sampling, as on a real machine: 256 MiB (65536 pages), 3000000 samples at 200K per 1 s interval (about"
      " 3 per page per interval, 15 intervals; the phase change falls in the middle of interval 8), fast tiers of 64"
      " and 32 MiB, seeds 1 to 30, the same columns. Shown, not a target (the targets are the cells above).\n")
tables(sparse_rows, "Pages moved there, mean over the 30 seeds:", sparse_moves)
print("The same sparse traces with a fast tier as large as the footprint and half of it (256 and 128 MiB), seeds 1"
      " to 10: the fast tier has room to spare, and what a rule does with pages seen once decides the rest (the"
      " oracle, knowing each interval's pages, serves every access at 1:1). Shown, not a target.\n")
tables(large_rows, "Pages moved there, mean over the 10 seeds:", large_moves)
print("Sparser, under a steady background: 1 GiB (262144 pages), 3000000 samples at 200K per interval (under one"
      " per page per interval), the hot set (a tenth of the pages) taking 60% of the samples, fast tiers of 128 and"
      " 64 MiB, seeds 1 to 10. The samples outside the hot set still fall where the old heat was, so a change of"
      " pattern lowers the overlap of samples and heat less than above. Shown, not a target.\n")
tables(background_rows, "Pages moved there, mean over the 10 seeds:", background_moves)
print(f"Replay through the pipeline (`membalancer trace --sampler replay:FILE --speed max`, no migration) of the"
      f" zipf trace, per CPU second: **{rate/1e6:.1f}M samples/s** (target ≥ 10M: "
      f"{'met' if rate >= 10e6 else '**not met**'}; {rate_wall/1e6:.1f}M per wall second on this machine as it was"
      f" loaded); baseline, same run: reading the file with `cat`, {base/1e6:.1f}M samples per CPU second.")
sys.exit(0 if ok else 1)
PY
