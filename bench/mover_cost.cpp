// Mover throughput against raw move_pages(2), and the rate limit's accuracy.
// Needs two NUMA nodes (run in the VM harness: bench/sections/mover.sh).
//
//   mover_cost [MB] [THROTTLE_MiB_s|auto] [THROTTLE_s]     (default 256 auto 10)
//
// A region of MB MiB of 4 KiB pages (THP off) is touched on node 0. Raw:
// parts of the region moved 0 -> 1 -> 0 with numa_move_pages(2),
// MPOL_MF_MOVE, in batches of 16..4096 pages (round trips of a quarter of the
// region, three per size, median); the best batch size is kept. Then, paired
// round by round (24 rounds on eighths of the region; which goes first
// alternates), a round trip of raw move_pages at the best batch size and one
// of mb::Mover unthrottled with its default configuration (one submit per
// direction, timed from submit to wait_idle): throughput is bytes moved /
// wall time; the ratio is the median of the rounds' ratios (a pair shares the
// host's load of the moment), throughputs are medians too. Throttled: mb::Mover at THROTTLE
// MiB/s ("auto": 64 MiB/s, or an eighth of the raw throughput measured when
// that is less, so that the rate, not the machine, is the limit: under TCG on
// a busy host move_pages slows down by half for seconds) with the
// region queued back and forth (more than THROTTLE_s of work), bytes moved
// read after THROTTLE_s, then abandon() (its latency is reported). Prints
// "RESULT name value unit" lines.
#include <numa.h>
#include <numaif.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "membalancer/mover.h"

namespace {

constexpr double MiB = 1 << 20;

struct Region {
  std::vector<void*> addrs;
  double bytes() const { return static_cast<double>(addrs.size()) * 4096; }
};

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "mover_cost: %s\n", msg.c_str());
  std::exit(1);
}

// Raw move_pages of the whole region to `node` in batches of `batch`;
// returns seconds, or dies when a page did not reach the node.
double raw_move(Region& r, int node, size_t batch) {
  std::vector<int> nodes(batch, node), status(batch);
  std::map<int, size_t> bad;  // status -> pages, for pages that did not reach `node`
  long positive = 0;
  double t0 = bench::now_s();
  for (size_t i = 0; i < r.addrs.size(); i += batch) {
    size_t n = std::min(batch, r.addrs.size() - i);
    long rc = numa_move_pages(0, n, &r.addrs[i], nodes.data(), status.data(), MPOL_MF_MOVE);
    if (rc < 0) die("move_pages: " + std::string(strerror(errno)));
    positive += rc;
    for (size_t j = 0; j < n; ++j)
      if (status[j] != node) ++bad[status[j]];
  }
  double t = bench::now_s() - t0;
  if (!bad.empty()) {
    std::string what;
    for (const auto& [st, pages] : bad)
      what += " " + (st < 0 ? mb::move_failure_name(-st) : "node" + std::to_string(st)) + "=" + std::to_string(pages);
    die("raw move_pages (batch " + std::to_string(batch) + ") left pages off node " + std::to_string(node) + ":" + what +
        " (calls returned " + std::to_string(positive) + " pages not migrated)");
  }
  return t;
}

mb::MoveRequest request(const Region& r, int node) {
  mb::MoveRequest q;
  q.pid = getpid();
  q.target_node = node;
  q.pages.reserve(r.addrs.size());
  for (void* a : r.addrs) q.pages.push_back(reinterpret_cast<uint64_t>(a));
  // Each page's source, as the daemon's plans give it: the mover then also
  // keeps its per-node flows.
  q.from.assign(r.addrs.size(), node == 0 ? 1 : 0);
  return q;
}

std::string failures(const mb::MoveCounts& c) {
  std::string s;
  for (const auto& [err, pages] : c.failed_by_errno) s += " " + mb::move_failure_name(err) + "=" + std::to_string(pages);
  return s;
}

// `m` (idle) moving the whole region to `node`; returns seconds from submit
// to idle (the request is built before the clock starts).
double mover_move(mb::Mover& m, const Region& r, int node) {
  mb::MoveRequest q = request(r, node);
  uint64_t before = m.stats().total().moved;
  double t0 = bench::now_s();
  if (!m.submit(std::move(q))) die("the mover refused the request (queue full)");
  m.wait_idle();
  double t = bench::now_s() - t0;
  mb::MoveCounts c = m.stats().total();
  if (c.moved - before != r.addrs.size())
    die("the mover moved " + std::to_string(c.moved - before) + " of " + std::to_string(r.addrs.size()) +
        " pages; failed:" + failures(c));
  return t;
}

// Part k (mod n) of n equal parts of r.
Region slice(const Region& r, size_t k, size_t n) {
  size_t len = r.addrs.size() / n, first = (k % n) * len;
  Region s;
  s.addrs.assign(r.addrs.begin() + static_cast<long>(first), r.addrs.begin() + static_cast<long>(first + len));
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  size_t mb = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 256;
  bool throttle_auto = argc <= 2 || std::string(argv[2]) == "auto";
  double throttle_mib = throttle_auto ? 64 : std::strtod(argv[2], nullptr);
  double throttle_s = argc > 3 ? std::strtod(argv[3], nullptr) : 10;
  if (mb < 8 || throttle_mib <= 0 || throttle_s <= 0)
    die("usage: mover_cost [MB >= 8] [THROTTLE_MiB_s|auto] [THROTTLE_s]");
  if (numa_available() < 0 || numa_max_node() < 1)
    die("needs two NUMA nodes, this system has " + std::to_string(numa_available() < 0 ? 1 : numa_max_node() + 1) +
        " (run it in the VM: bench/sections/mover.sh)");

  size_t len = mb << 20;
  void* mem = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) die("mmap " + std::to_string(mb) + " MiB: " + strerror(errno));
  madvise(mem, len, MADV_NOHUGEPAGE);
  Region r;
  for (size_t off = 0; off < len; off += 4096) {
    static_cast<volatile char*>(mem)[off] = 1;
    r.addrs.push_back(static_cast<char*>(mem) + off);
  }
  raw_move(r, 0, 4096);  // everything on node 0 to start
  std::printf("region: %zu MiB, %zu pages of 4 KiB, nodes 0 <-> 1\n", mb, r.addrs.size());

  // 1. Raw move_pages, batch size sweep: a round trip of a quarter of the
  // region per size, three passes over the sizes; median per size.
  const size_t sweep_passes = 3, sweep_parts = 4;
  std::vector<size_t> sizes;
  for (size_t b = 16; b <= 4096; b *= 2) sizes.push_back(b);
  std::vector<std::vector<double>> sweep(sizes.size());
  size_t part = 0;
  for (size_t p = 0; p < sweep_passes; ++p)
    for (size_t i = 0; i < sizes.size(); ++i) {
      Region s = slice(r, part++, sweep_parts);
      double t = raw_move(s, 1, sizes[i]) + raw_move(s, 0, sizes[i]);
      sweep[i].push_back(2 * s.bytes() / t / MiB);
    }
  size_t best = 0;
  double best_rate = 0;
  std::printf("raw move_pages, round trips of %zu MiB, median of %zu per batch size:\n", mb / sweep_parts,
              sweep_passes);
  for (size_t i = 0; i < sizes.size(); ++i) {
    double rate = bench::median(sweep[i]);
    std::printf("  batch %5zu: %8.1f MiB/s\n", sizes[i], rate);
    bench::result(("raw_MiB_s_batch_" + std::to_string(sizes[i])).c_str(), rate, "MiB/s");
    if (rate > best_rate) best_rate = rate, best = sizes[i];
  }
  bench::result("raw_best_batch", static_cast<double>(best), "pages");

  // Fixed cost of a call: move_pages of pages already on the target node
  // (nothing to copy; the kernel still prepares and finishes a migration).
  for (size_t b : {size_t{1}, size_t{512}, size_t{4096}}) {
    Region s = slice(r, 0, r.addrs.size() / b);
    std::vector<double> ts;
    for (int i = 0; i < 15; ++i) ts.push_back(raw_move(s, 0, b));
    double us = bench::median(ts) * 1e6;
    std::printf("call with %4zu pages already on node 0: %8.1f us\n", b, us);
    bench::result(("call_in_place_us_batch_" + std::to_string(b)).c_str(), us, "us");
  }

  // 2. Same run, paired: raw at the best batch vs. the mover unthrottled, a
  // round trip of an eighth of the region each, which goes first alternating.
  mb::MoverConfig uncfg;
  uncfg.rate_limit_bytes_per_s = 0;
  mb::Mover um(uncfg);
  const int rounds = 24;
  const size_t parts = 8;
  std::vector<double> raw_rates, mover_rates, ratios;
  for (int i = 0; i < rounds; ++i) {
    Region s = slice(r, static_cast<size_t>(i), parts);
    double tr = 0, tm = 0;
    if (i % 2 == 0) {
      tr = raw_move(s, 1, best) + raw_move(s, 0, best);
      tm = mover_move(um, s, 1) + mover_move(um, s, 0);
    } else {
      tm = mover_move(um, s, 1) + mover_move(um, s, 0);
      tr = raw_move(s, 1, best) + raw_move(s, 0, best);
    }
    raw_rates.push_back(2 * s.bytes() / tr / MiB);
    mover_rates.push_back(2 * s.bytes() / tm / MiB);
    ratios.push_back(tr / tm);
    std::printf("round %2d (%s first, %zu MiB): raw (batch %zu) %6.1f MiB/s, mover (batch %zu, %d worker) %6.1f MiB/s,"
                " ratio %.3f\n",
                i + 1, i % 2 ? "mover" : "raw", mb / parts, best, raw_rates.back(), uncfg.batch_pages, uncfg.workers,
                mover_rates.back(), ratios.back());
  }
  double raw = bench::median(raw_rates), ours = bench::median(mover_rates);
  mb::MoverStats us = um.stats();
  std::printf("mover: %llu calls, %.2f s in move_pages, failed:%s\n", static_cast<unsigned long long>(us.calls),
              us.total().busy_s, failures(us.total()).empty() ? " none" : failures(us.total()).c_str());
  bench::result("raw_best_MiB_s", raw, "MiB/s");
  bench::result("mover_unthrottled_MiB_s", ours, "MiB/s");
  bench::result("mover_batch_pages", static_cast<double>(uncfg.batch_pages), "pages");
  bench::result("mover_unthrottled_ratio", bench::median(ratios), "x");
  if (throttle_auto && raw / 8 < throttle_mib) throttle_mib = std::max(1.0, std::floor(raw / 8));

  // 3. Throttled: the region back and forth, more work queued than the rate
  // allows in throttle_s; bytes moved after throttle_s.
  mb::MoverConfig tcfg;
  tcfg.rate_limit_bytes_per_s = static_cast<uint64_t>(throttle_mib * MiB);
  mb::Mover m(tcfg);
  size_t passes = static_cast<size_t>(throttle_mib * throttle_s * MiB / r.bytes()) + 2;
  std::vector<mb::MoveRequest> reqs;
  for (size_t p = 0; p < passes; ++p) reqs.push_back(request(r, p % 2 ? 0 : 1));
  double t0 = bench::now_s();
  for (auto& q : reqs)
    if (!m.submit(std::move(q))) die("the throttled mover refused a request (queue full)");
  std::this_thread::sleep_until(std::chrono::steady_clock::now() + std::chrono::duration<double>(throttle_s));
  mb::MoverStats s = m.stats();
  double elapsed = bench::now_s() - t0;
  double a0 = bench::now_s();
  m.abandon();
  double abandon_ms = (bench::now_s() - a0) * 1e3;
  mb::MoveCounts c = s.total();
  double achieved = static_cast<double>(c.bytes_moved) / elapsed / MiB;
  std::printf("throttled at %.1f MiB/s: %.1f MiB moved in %.2f s = %.2f MiB/s (%llu calls, %.2f s waiting for tokens,"
              " %.2f s in move_pages); abandon() took %.1f ms; failed:%s\n",
              throttle_mib, c.bytes_moved / MiB, elapsed, achieved, static_cast<unsigned long long>(s.calls),
              s.throttled_s, c.busy_s, abandon_ms, failures(c).empty() ? " none" : failures(c).c_str());
  bench::result("throttle_target_MiB_s", throttle_mib, "MiB/s");
  bench::result("mover_throttled_MiB_s", achieved, "MiB/s");
  bench::result("mover_throttled_error_pct", (achieved / throttle_mib - 1) * 100, "%");
  bench::result("mover_abandon_ms", abandon_ms, "ms");
  bench::result("mover_failed_pages", static_cast<double>(c.failed()), "pages");
  munmap(mem, len);
  return 0;
}
