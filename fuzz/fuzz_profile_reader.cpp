// libFuzzer target: mb::ProfileReader (membalancer/profile_file.h) on
// arbitrary bytes written to a file, and the profiler's report built from
// whatever the reader accepts (profiler/report.h).
//
// Each input is tried twice: as it is, and (when that changes anything) with
// its header and chunk checksums recomputed, so that mutations get past the
// CRC checks and reach the chunk decoders and the report.
//
// Allowed: UsageError from the constructor (not a profile, bad header).
// Otherwise every sample and every part of info() is read; the number of
// samples streamed must equal info().samples afterwards; a second pass gives
// the same; nothing may crash, read out of bounds or throw.

#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "fuzz/fuzz_util.h"
#include "membalancer/error.h"
#include "membalancer/profile_file.h"
#include "profiler/report.h"

namespace {

uint32_t crc(const uint8_t* p, size_t n) {
  return static_cast<uint32_t>(crc32(crc32(0L, Z_NULL, 0), p, static_cast<uInt>(n)));
}

// The input with the header CRC and every chunk CRC made right, walking the
// chunks the way the reader does (docs/profile-format.md).
std::vector<uint8_t> fix_checksums(const uint8_t* data, size_t size) {
  std::vector<uint8_t> b(data, data + size);
  if (size < mb::kProfileHeaderBytes) return b;
  const size_t crc_at = offsetof(mb::ProfileHeaderDisk, header_crc);
  uint32_t h = crc(b.data(), crc_at);
  std::memcpy(b.data() + crc_at, &h, sizeof(h));
  uint64_t off = mb::kProfileHeaderBytes;
  while (off < size && size - off >= mb::kProfileChunkHeaderBytes) {
    mb::ProfileChunkHeader ch;
    std::memcpy(&ch, b.data() + off, sizeof(ch));
    const uint64_t payload = off + mb::kProfileChunkHeaderBytes;
    if (ch.bytes > size - payload) break;
    ch.crc = crc(b.data() + payload, ch.bytes);
    std::memcpy(b.data() + off, &ch, sizeof(ch));
    off = payload + ((ch.bytes + 7) & ~uint64_t{7});
  }
  return b;
}

volatile uint64_t g_sink;

// Reads every byte of a record so that ASan sees any read past the mapping.
void touch(const mb_sample& s) {
  uint64_t v = s.time_ns ^ s.tgid ^ s.tid ^ s.cpu ^ s.cpu_node ^ s.mem_node ^ s.vaddr ^ s.paddr ^ s.ip ^ s.latency ^
               s.data_source ^ s.flags ^ s.sampler;
  for (uint8_t r : s.reserved) v += r;
  g_sink = g_sink + v;
}

void read_profile(const std::string& path) {
  std::unique_ptr<mb::ProfileReader> r;
  try {
    r = std::make_unique<mb::ProfileReader>(path);
  } catch (const mb::UsageError&) {
    return;  // not a profile: fine
  } catch (const std::exception& e) {
    mb_fuzz::unexpected_exception("ProfileReader()", e);
  }
  try {
    const mb::ProfileInfo& info = r->info();
    FUZZ_CHECK(r->ok() == r->error().empty(), "ok() and error() disagree");
    FUZZ_CHECK(!r->ok() || info.complete, "a file without END chunk is ok()");
    if (!r->ok()) FUZZ_CHECK(r->error_offset() <= info.file_bytes, r->error());
    // Everything info() holds.
    uint64_t v = info.sampler.size() + info.topology.nodes.size();
    for (const auto& n : info.topology.nodes) {
      v += n.cpus.size();
      for (auto [to, d] : n.distance) v += static_cast<uint64_t>(to) + static_cast<uint64_t>(d);
    }
    for (int c = 0; c < static_cast<int>(info.topology.cpu_node.size()); ++c) v += info.topology.cpu_node[c];
    for (const auto& p : info.processes) v += p.name.size() + p.tgid + p.parent + p.event;
    for (const auto& e : info.mappings) v += e.start + e.end + e.offset + e.prot + e.path.size();
    for (const auto& c : info.maps_changes) v += c.time_ns + c.tgid + c.removed.size() + c.added.size();
    for (const auto& c : info.counters)
      for (uint64_t x : c.values) v += x;
    g_sink = g_sink + v;

    // Every sample, twice: the counts must agree with info().samples.
    uint64_t first = r->for_each_batch([](const mb_sample* s, size_t n) {
      for (size_t i = 0; i < n; ++i) touch(s[i]);
    });
    FUZZ_CHECK(first == info.samples, std::to_string(first) + " samples streamed, info says " +
                                          std::to_string(info.samples));
    uint64_t second = 0;
    auto cur = r->samples();
    const mb_sample* s;
    size_t n;
    while (cur.next(&s, &n)) second += n;
    FUZZ_CHECK(second == first, "second pass " + std::to_string(second) + " vs " + std::to_string(first));

    // Attribution and the report, from whatever was readable.
    mb::ProfileProcesses procs(info);
    uint32_t tgid = info.processes.empty() ? 0 : info.processes.front().tgid;
    for (const auto& c : info.maps_changes)
      for (uint32_t id : c.added) {
        const mb::ProfileMap& e = info.mappings[id];
        (void)mb::ProfileProcesses::mapping_kind(procs.mapping(c.tgid, e.start, c.time_ns));
        (void)mb::ProfileProcesses::mapping_kind(procs.mapping(c.tgid, e.end - 1));
      }
    g_sink = g_sink + procs.mappings_held();
    g_sink = g_sink + procs.name(tgid).size() + procs.parent(tgid);

    auto agg = std::make_unique<mb::prof::Aggregate>();
    mb::prof::aggregate_file(*r, agg.get());
    FILE* null = std::fopen("/dev/null", "w");
    // By node, process, region and page (not symbol: it would open the files
    // the profile's maps name), in every format.
    for (const char* by : {"node", "process", "region", "page"})
      for (const char* format : {"text", "csv", "json"}) {
        mb::prof::ReportOptions ro;
        ro.by = by;
        ro.format = format;
        ro.top = 5;
        mb::prof::print_report(null, *r, *agg, ro);
      }
    std::fclose(null);
  } catch (const std::exception& e) {
    mb_fuzz::unexpected_exception("reading the profile", e);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = mb_fuzz::scratch_dir() + "/input.prof";
  mb_fuzz::write_file(path, data, size);
  read_profile(path);
  std::vector<uint8_t> fixed = fix_checksums(data, size);
  if (fixed.size() == size && (size == 0 || std::memcmp(fixed.data(), data, size) != 0)) {
    mb_fuzz::write_file(path, fixed.data(), fixed.size());
    read_profile(path);
  }
  return 0;
}
