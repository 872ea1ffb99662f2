#!/usr/bin/env python3
"""`make soak`: membalancer balancing a churning process tree for a long time.

Starts bin/churn (processes, threads and memory that come and go, see
docs/memexercise.md) and membalancer on its tree (--ppid, fault sampler), and
every --sample-s seconds records membalancer's RSS, open descriptors and
threads, the occupancy of its BPF maps (tracked, task_stats, tracked_bits) next
to the live tree, and its own report. Writes OUT/samples.csv and OUT/summary.md,
prints the summary, and exits 1 when a figure is not flat (docs/reliability.md,
"Soak", says what flat means), 2 when the run itself could not be made.

Python rather than shell: it parses membalancer's JSON lines and bpftool's JSON
dumps and fits slopes. Needs root (BPF) and bpftool.
"""
import argparse
import csv
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time

PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
TICKS = os.sysconf("SC_CLK_TCK")
MAPS = ("tracked", "task_stats", "tracked_bits")
MB_TASK_EXITED = 1  # include/membalancer/records.h, enum mb_task_flags


def die(msg):
    print(f"soak: {msg}", file=sys.stderr)
    sys.exit(2)


def status_fields(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.split()
    return out


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def live_tree(root):
    """The processes under root (root included) and their threads, from /proc."""
    parent = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            pass  # gone while listing
    children = {}
    for p, pp in parent.items():
        children.setdefault(pp, []).append(p)
    procs, todo = set(), [root] if root in parent else []
    while todo:
        p = todo.pop()
        procs.add(p)
        todo.extend(children.get(p, []))
    tids = set()
    for p in procs:
        try:
            tids.update(int(t) for t in os.listdir(f"/proc/{p}/task"))
        except OSError:
            pass
    return procs, tids


def bpftool_json(*args):
    out = subprocess.run(["bpftool", "-j", *args], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def le(raw, offset, size):
    return int.from_bytes(bytes(int(b, 16) for b in raw[offset:offset + size]), "little")


def find_maps(pid):
    """Map name -> id, for the maps membalancer (pid) holds descriptors of."""
    ids = set()
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                for line in f:
                    if line.startswith("map_id:"):
                        ids.add(int(line.split()[1]))
        except OSError:
            pass
    found = {}
    for i in ids:
        name = bpftool_json("map", "show", "id", str(i)).get("name")
        if name in MAPS:
            found[name] = i
    return found


def dump_maps(ids):
    """Occupancy of the three tracking maps: tgid set, {tid: exited}, tgid set (bits)."""
    tracked = {le(e["key"], 0, 4) for e in bpftool_json("map", "dump", "id", str(ids["tracked"]))}
    tasks = {}
    # The thread table is an array: an entry is taken when its tid (offset 20)
    # is not 0; flags at offset 16 (struct mb_task_stats).
    for e in bpftool_json("map", "dump", "id", str(ids["task_stats"])):
        tid = le(e["value"], 20, 4)
        if tid:
            tasks[tid] = bool(le(e["value"], 16, 4) & MB_TASK_EXITED)
    bits = set()
    for e in bpftool_json("map", "dump", "id", str(ids["tracked_bits"])):
        word, v = le(e["key"], 0, 4), le(e["value"], 0, 8)
        while v:
            low = v & -v
            bits.add(word * 64 + low.bit_length() - 1)
            v ^= low
    return tracked, tasks, bits


class Reports(threading.Thread):
    """Reads membalancer's JSON lines: keeps the latest interval and the
    summary, sums the per-interval counts, and writes each interval's scalar
    fields to a file (the full lines are ~25 KB each)."""

    def __init__(self, stream, path):
        super().__init__(daemon=True)
        self.stream, self.path = stream, path
        self.last, self.summary = {}, None
        self.totals = {"intervals": 0, "samples": 0, "accepted": 0, "dropped": 0, "exited_processes": 0,
                       "peak_interval_pages": 0}
        self.lock = threading.Lock()

    def run(self):
        with open(self.path, "w") as out:
            for line in self.stream:
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if obj.get("type") == "summary":
                    with self.lock:
                        self.summary = obj
                    out.write(line)
                if obj.get("type") != "interval":
                    continue
                scalars = {k: v for k, v in obj.items() if not isinstance(v, (list, dict))}
                out.write(json.dumps(scalars) + "\n")
                with self.lock:
                    self.last = scalars
                    self.totals["intervals"] += 1
                    for k in ("samples", "accepted", "dropped", "exited_processes"):
                        self.totals[k] += obj.get(k, 0)
                    self.totals["peak_interval_pages"] = max(self.totals["peak_interval_pages"],
                                                             obj.get("pages_this_interval", 0))

    def snapshot(self):
        with self.lock:
            return dict(self.last), dict(self.totals)


def slope(xs, ys):
    """Least-squares slope of ys over xs (per unit of x)."""
    if len(xs) < 2:
        return 0.0
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default="bin", help="directory of membalancer and churn")
    ap.add_argument("--out", default="build/soak", help="where samples.csv and summary.md go")
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--sample-s", type=float, default=10, help="seconds between samples")
    ap.add_argument("--mode", default="autotune", choices=["trace", "process", "autotune", "numa", "tier"],
                    help="membalancer's mode (numa and tier need two memory nodes)")
    ap.add_argument("--seed", type=int, default=1, help="churn's seed")
    ap.add_argument("--churn-args", default="", help="more churn options, one string")
    args = ap.parse_args()

    if os.geteuid() != 0:
        die("needs root (BPF, perf events): run as root")
    mb_bin, churn_bin = os.path.join(args.bin, "membalancer"), os.path.join(args.bin, "churn")
    for b in (mb_bin, churn_bin):
        if not os.access(b, os.X_OK):
            die(f"{b} is missing: run 'make {b}'")
    os.makedirs(args.out, exist_ok=True)
    duration = max(1, round(args.minutes * 60))
    out = lambda name: os.path.join(args.out, name)

    # The tree outlives membalancer's --duration; it is stopped afterwards.
    churn_cmd = [churn_bin, "--duration", "0", "--seed", str(args.seed), "--stats", out("churn-stats.json"),
                 *args.churn_args.split()]
    churn = subprocess.Popen(churn_cmd, stdout=open(out("churn-final.json"), "w"), stderr=open(out("churn.err"), "w"))
    time.sleep(0.5)
    # A thread table of 1024 entries (the churn tree has about 50 live
    # threads): bpftool dumps every entry of the array each sample, about
    # 5 s for the default 16384 entries of 536 bytes.
    mb_cmd = [mb_bin, args.mode, "--ppid", str(churn.pid), "--sampler", "fault", "--interval", "1000",
              "--max-tasks", "1024", "--display", "json", "--duration", str(duration)]
    if args.mode != "trace":
        mb_cmd.append("--migrate")  # the whole mode, moves included (on one node autotune finds none)
    print(f"soak: {' '.join(churn_cmd)}\nsoak: {' '.join(mb_cmd)}\nsoak: {duration} s, a sample every "
          f"{args.sample_s:g} s, results in {args.out}/", flush=True)
    mb = subprocess.Popen(mb_cmd, stdout=subprocess.PIPE, stderr=open(out("membalancer.err"), "w"), text=True)
    reports = Reports(mb.stdout, out("membalancer-intervals.jsonl"))
    reports.start()

    def stop_all(*_):
        for p in (mb, churn):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
    signal.signal(signal.SIGINT, lambda *a: (stop_all(), die("interrupted")))

    # The first report comes after the object is loaded and the tree seeded.
    ids = {}
    for _ in range(150):
        if mb.poll() is not None:
            break
        if reports.snapshot()[1]["intervals"]:
            try:
                ids = find_maps(mb.pid)
            except (OSError, subprocess.CalledProcessError):
                ids = {}
            break
        time.sleep(0.2)
    if len(ids) != len(MAPS):
        stop_all()
        die(f"membalancer's maps {sorted(MAPS)} not found (found {sorted(ids)}); see {out('membalancer.err')}")

    rows, prev = [], None
    t0 = time.monotonic()
    cols = ["t_s", "rss_kib", "rss_anon_kib", "rss_file_kib", "fds", "threads", "cpu_s", "tree_processes", "tree_threads",
            "map_tracked", "map_task_stats", "map_task_exited", "map_tracked_bits",
            "gone_tracked", "gone_task_stats", "gone_tracked_bits",
            "stale_tracked", "stale_task_stats", "stale_tracked_bits",
            "report_tracked", "report_threads", "table_pages", "peak_interval_pages", "intervals", "samples", "accepted", "dropped",
            "exited", "churn_created", "churn_threads", "churn_alloc_mib", "churn_freed_mib"]
    csvf = open(out("samples.csv"), "w", newline="")
    writer = csv.DictWriter(csvf, fieldnames=cols)
    writer.writeheader()
    next_t = 0.0
    while mb.poll() is None:
        time.sleep(max(0.0, next_t - (time.monotonic() - t0)))
        next_t += args.sample_s
        try:
            st = status_fields(mb.pid)
            fds = len(os.listdir(f"/proc/{mb.pid}/fd"))
            cpu = cpu_seconds(mb.pid)
            procs0, tids0 = live_tree(churn.pid)
            tracked, tasks, bits = dump_maps(ids)
            procs1, tids1 = live_tree(churn.pid)
        except (OSError, subprocess.CalledProcessError):
            break  # membalancer ended between the poll and the reads
        # A key is stale when its process (thread) was gone at the previous
        # sample and still is now: exits are taken out within an interval.
        procs, tids = procs0 | procs1, tids0 | tids1
        dead = {"tracked": {k for k in tracked if k not in procs},
                "task_stats": {k for k in tasks if k not in tids},
                "tracked_bits": {k for k in bits if k not in procs}}
        stale = {m: len(dead[m] & prev[m]) if prev else 0 for m in dead}
        prev = dead
        last, totals = reports.snapshot()
        try:
            with open(out("churn-stats.json")) as f:
                cs = json.load(f)
        except (OSError, ValueError):
            cs = {}
        row = {"t_s": round(time.monotonic() - t0, 1), "rss_kib": int(st["VmRSS"][0]),
               "rss_anon_kib": int(st["RssAnon"][0]), "rss_file_kib": int(st["RssFile"][0]), "fds": fds,
               "threads": int(st["Threads"][0]), "cpu_s": round(cpu, 2),
               "tree_processes": len(procs1), "tree_threads": len(tids1),
               "map_tracked": len(tracked), "map_task_stats": len(tasks),
               "map_task_exited": sum(tasks.values()), "map_tracked_bits": len(bits),
               "gone_tracked": len(dead["tracked"]), "gone_task_stats": len(dead["task_stats"]),
               "gone_tracked_bits": len(dead["tracked_bits"]), "stale_tracked": stale["tracked"], "stale_task_stats": stale["task_stats"],
               "stale_tracked_bits": stale["tracked_bits"],
               "report_tracked": last.get("tracked_processes", ""), "report_threads": last.get("threads", ""),
               "table_pages": last.get("table_pages", ""), "peak_interval_pages": totals["peak_interval_pages"],
               "intervals": totals["intervals"],
               "samples": totals["samples"], "accepted": totals["accepted"], "dropped": totals["dropped"],
               "exited": totals["exited_processes"], "churn_created": cs.get("processes_created", ""),
               "churn_threads": cs.get("threads_created", ""),
               "churn_alloc_mib": round(cs.get("bytes_allocated", 0) / 2**20),
               "churn_freed_mib": round(cs.get("bytes_freed", 0) / 2**20)}
        rows.append(row)
        writer.writerow(row)
        csvf.flush()
        if len(rows) % max(1, round(60 / args.sample_s)) == 1:
            print(f"soak: {row['t_s']:7.0f} s  rss {row['rss_kib']} KiB  fds {fds}  threads {row['threads']}  "
                  f"tracked {len(tracked)}/{len(procs1)} live  task_stats {len(tasks)}/{len(tids1)} live  "
                  f"stale {sum(stale.values())}  table {row['table_pages']}", flush=True)
    mb_rc = mb.wait()
    reports.join(timeout=10)
    churn.send_signal(signal.SIGTERM)
    try:
        churn_rc = churn.wait(timeout=60)
    except subprocess.TimeoutExpired:
        churn.kill()
        churn_rc = churn.wait()
    csvf.close()
    try:
        with open(out("churn-final.json")) as f:
            cs = json.loads(f.read().strip().splitlines()[-1])
    except (OSError, ValueError, IndexError):
        cs = {}
    return report(args, rows, reports, mb_rc, churn_rc, cs, mb_cmd, duration, out)


def report(args, rows, reports, mb_rc, churn_rc, cs, mb_cmd, duration, out):
    failures = []
    if mb_rc != 0:
        failures.append(f"membalancer exited with status {mb_rc} (see {out('membalancer.err')})")
    if churn_rc != 0:
        failures.append(f"churn exited with status {churn_rc} (see {out('churn.err')})")
    if len(rows) < 6:
        failures.append(f"only {len(rows)} samples: too short to judge")
    summary = reports.summary or {}
    # The first third is warm-up (tables fill, allocator arenas settle).
    w = [r for r in rows if r["t_s"] >= rows[-1]["t_s"] / 3] if rows else []
    lines = []
    if w:
        t = [r["t_s"] for r in w]
        rss = [r["rss_kib"] for r in w]
        # An interval larger than any before (after a stall, say) leaves its
        # buffers' size behind: that step is a high-water mark, bounded by
        # --bpf-page-slots. A leak creeps between such steps: what counts is
        # the growth outside the sample periods in which the largest interval
        # grew by more than 10% (or in the next one: a sample taken while
        # that interval was being processed has not seen its report yet).
        peak = [r["peak_interval_pages"] for r in w]
        grew = [i for i in range(1, len(w)) if peak[i] > 1.1 * peak[i - 1]]
        steps = [(w[i]["rss_kib"] - w[i - 1]["rss_kib"], w[i]) for i in range(1, len(w))
                 if i in grew or i + 1 in grew]
        peak_kib = sum(d for d, _ in steps)
        creep = rss[-1] - rss[0] - peak_kib
        at = "".join(f", {b['peak_interval_pages']} pages at {b['t_s']:.0f} s" for _, b in steps)
        # 512 KiB or 1%: tight enough to catch 40 bytes kept per process at
        # churn's pace (13 processes/s), wide enough for allocator steps.
        limit = max(512, 0.01 * rss[0])
        if creep >= limit:
            failures.append(f"RSS grew {creep:+.0f} KiB over the last 2/3 besides new peak intervals "
                            f"(limit {limit:.0f} KiB)")
        fds = [r["fds"] for r in w]
        # Transient descriptors (a /proc file being read) may be caught open.
        if max(fds) - min(fds) > 2 or statistics.median(fds[len(fds) // 2:]) > statistics.median(fds[:len(fds) // 2]):
            failures.append(f"open descriptors not flat over the last 2/3: {min(fds)}..{max(fds)}")
        thr = [r["threads"] for r in w]
        if max(thr) != min(thr):
            failures.append(f"threads not constant over the last 2/3: {min(thr)}..{max(thr)}")
        for m in MAPS:
            n = sum(r[f"stale_{m}"] for r in rows)
            if n:
                failures.append(f"{m}: {n} stale entries (gone for a whole sample period) over the run")
        tp = [r["table_pages"] for r in w if r["table_pages"] != ""]
        if len(tp) > 2:
            tgrowth = slope(t[-len(tp):], tp) * (t[-1] - t[0])
            if tgrowth > 0.25 * statistics.fmean(tp) + 4096:
                failures.append(f"user-space page table grew {tgrowth:.0f} pages over the last 2/3")
        first, last = rows[0], rows[-1]
        lines += [
            f"membalancer: `{' '.join(mb_cmd)}`, {duration} s, exit status {mb_rc}; churn exit status {churn_rc}",
            "",
            "| figure | start | end | max | last 2/3 |",
            "|---|---|---|---|---|",
            f"| RSS (KiB) | {first['rss_kib']} | {last['rss_kib']} | {max(r['rss_kib'] for r in rows)} | "
            f"{rss[-1] - rss[0]:+d} KiB: {creep:+.0f} KiB (limit {limit:.0f}) besides {len(steps)} new peak "
            f"interval(s) ({peak_kib:+d} KiB{at}); "
            f"fitted slope {slope(t, rss) * 60:+.1f} KiB/min |",
            f"| RSS anonymous / file (KiB) | {first['rss_anon_kib']} / {first['rss_file_kib']} | "
            f"{last['rss_anon_kib']} / {last['rss_file_kib']} | {max(r['rss_anon_kib'] for r in rows)} / "
            f"{max(r['rss_file_kib'] for r in rows)} | |",
            f"| open descriptors | {first['fds']} | {last['fds']} | {max(r['fds'] for r in rows)} | "
            f"{min(fds)}..{max(fds)} |",
            f"| threads | {first['threads']} | {last['threads']} | {max(r['threads'] for r in rows)} | "
            f"{min(thr)}..{max(thr)} |",
        ]
        for m, live in (("tracked", "tree_processes"), ("task_stats", "tree_threads"),
                        ("tracked_bits", "tree_processes")):
            col = f"map_{m}"
            lines.append(f"| BPF `{m}` entries (live {live.split('_')[1]}) | {first[col]} ({first[live]}) | "
                         f"{last[col]} ({last[live]}) | {max(r[col] for r in rows)} "
                         f"({max(r[live] for r in rows)}) | gone at a sample: max {max(r['gone_' + m] for r in rows)}; "
                         f"stale: {sum(r['stale_' + m] for r in rows)} |")
        lines.append(f"| user-space table pages | {first['table_pages']} | {last['table_pages']} | "
                     f"{max((r['table_pages'] for r in rows if r['table_pages'] != ''), default='')} | "
                     f"mean {statistics.fmean(tp) if tp else 0:.0f} |")
        cpu = last["cpu_s"] / last["t_s"] * 100 if last["t_s"] else 0
        lines += ["", f"membalancer CPU: {last['cpu_s']:.0f} s over {last['t_s']:.0f} s ({cpu:.1f}% of one CPU)"]
    if summary:
        c = summary.get("counters", {})
        lines.append(f"membalancer summary: {summary.get('intervals')} intervals, {c.get('samples')} samples, "
                     f"{c.get('accepted')} accepted, dropped {summary.get('dropped')}, processes seen "
                     f"{summary.get('processes_seen')}, exited {summary.get('processes_exited')}, node queries "
                     f"{summary.get('node_queries')}")
    if cs:
        el = cs.get("elapsed_s") or 1
        lines.append(
            f"churn: {cs['processes_created']} processes ({cs['processes_created'] / el:.1f}/s), "
            f"{cs['threads_created']} threads ({cs['threads_created'] / el:.1f}/s), "
            f"{cs['bytes_allocated'] / 2**30:.1f} GiB allocated ({cs['bytes_allocated'] / 2**20 / el:.1f} MiB/s), "
            f"{cs['bytes_freed'] / 2**30:.1f} GiB freed explicitly (the rest at exit), "
            f"{cs['pages_touched']} pages touched ({cs['pages_touched'] / el:.0f}/s), "
            f"{cs['operations']} operations, failures: {cs['processes_failed']} processes, "
            f"{cs['fork_failures']} forks, {cs['op_failures']} operations")
    # About every 5 minutes (every sample when the run is short).
    step = 300 if rows and rows[-1]["t_s"] >= 1200 else 30
    lines += ["", "| t (min) | RSS (KiB) | fds | threads | tracked / live processes | task_stats / live threads "
              "| table pages | samples (total) |", "|---|---|---|---|---|---|---|---|"]
    mark = 0.0
    for i, r in enumerate(rows):
        if r["t_s"] >= mark or i == len(rows) - 1:
            lines.append(f"| {r['t_s'] / 60:.1f} | {r['rss_kib']} | {r['fds']} | {r['threads']} | "
                         f"{r['map_tracked']} / {r['tree_processes']} | {r['map_task_stats']} / {r['tree_threads']} "
                         f"| {r['table_pages']} | {r['samples']} |")
            while mark <= r["t_s"]:
                mark += step
    lines += [""] + ([f"NOT FLAT: {f}" for f in failures] or ["flat: every figure"])
    text = "\n".join(lines) + "\n"
    with open(out("summary.md"), "w") as f:
        f.write(text)
    print(text, end="")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
