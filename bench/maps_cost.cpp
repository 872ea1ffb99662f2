// What a profile's memory maps cost (bench/sections/maps.sh): the bytes of
// its MAPS chunks in the file, and the mappings its reader holds, each
// against a baseline of the same file: each process's first maps written
// once (the least any recorder writes), and each distinct mapping of a
// process held once.
// Usage: maps_cost FILE
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <tuple>

#include "membalancer/profile_file.h"

using namespace mb;

namespace {

struct ChunkBytes {
  uint64_t maps_bytes = 0, maps_chunks = 0;  // MAPS chunks (and maps changes), headers and padding included
  uint64_t first_bytes = 0;                  // the first MAPS chunk of each process
};

// Walks the chunk headers (docs/profile-format.md).
ChunkBytes chunk_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  ChunkBytes c;
  std::set<uint32_t> seen;
  for (size_t off = kProfileHeaderBytes; off + kProfileChunkHeaderBytes <= data.size();) {
    ProfileChunkHeader ch;
    std::memcpy(&ch, data.data() + off, sizeof ch);
    const uint64_t total = kProfileChunkHeaderBytes + ((ch.bytes + 7) & ~uint64_t{7});
    if (ch.type == kChunkMaps || ch.type == kChunkMapsChange) {
      c.maps_bytes += total, ++c.maps_chunks;
      uint32_t tgid = 0;
      std::memcpy(&tgid, data.data() + off + kProfileChunkHeaderBytes + 8, sizeof tgid);
      if (ch.type == kChunkMaps && seen.insert(tgid).second) c.first_bytes += total;
    }
    off += total;
  }
  return c;
}

// Each process's distinct mappings (what holding each once costs).
uint64_t distinct_mappings(const ProfileInfo& info) {
  std::set<std::pair<uint32_t, uint32_t>> d;  // (tgid, mapping)
  for (const ProfileMapsChange& c : info.maps_changes)
    for (uint32_t id : c.added) d.insert({c.tgid, id});
  return d.size();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: maps_cost FILE\n");
    return 2;
  }
  const ChunkBytes c = chunk_bytes(argv[1]);
  ProfileReader r(argv[1]);
  const uint64_t held = ProfileProcesses(r.info()).mappings_held(), distinct = distinct_mappings(r.info());
  std::printf("%s: %" PRIu64 " bytes, %zu processes, %" PRIu64 " maps chunks (%" PRIu64 " bytes; first of each process %" PRIu64
              " bytes), %" PRIu64 " mappings held (%" PRIu64 " distinct)\n",
              argv[1], r.info().file_bytes, r.info().processes.size(), c.maps_chunks, c.maps_bytes, c.first_bytes, held,
              distinct);
  std::printf("RESULT maps_file_bytes %" PRIu64 " bytes\n", r.info().file_bytes);
  std::printf("RESULT maps_chunks %" PRIu64 " chunks\n", c.maps_chunks);
  std::printf("RESULT maps_bytes %" PRIu64 " bytes\n", c.maps_bytes);
  std::printf("RESULT maps_first_bytes %" PRIu64 " bytes\n", c.first_bytes);
  std::printf("RESULT maps_bytes_ratio %.3f x\n", c.first_bytes ? double(c.maps_bytes) / double(c.first_bytes) : 0.0);
  std::printf("RESULT maps_held %" PRIu64 " mappings\n", held);
  std::printf("RESULT maps_distinct %" PRIu64 " mappings\n", distinct);
  std::printf("RESULT maps_held_ratio %.3f x\n", distinct ? double(held) / double(distinct) : 0.0);
  return 0;
}
