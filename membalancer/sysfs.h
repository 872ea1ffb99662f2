// Reading small kernel text files (sysfs, procfs) and the list formats they use.
// Paths are relative to a root so that tests can point them at a fake tree.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mb {

// Whole file, or nullopt when it cannot be read.
std::optional<std::string> read_text_file(const std::string& path);

// "0-3,8,10-11" -> {0,1,2,3,8,10,11}. Throws UsageError naming `what` on bad text.
std::vector<int> parse_int_list(const std::string& text, const std::string& what);

// "64M", "1G", "4096", "2k": bytes. Throws UsageError naming `what`.
uint64_t parse_size(const std::string& text, const std::string& what);

// A recorder's sample ring buffer (`--ring-size`, profiler record and
// membalancer --record): its default, and a size as written ("64K", "32M")
// checked for what the kernel takes (a power of two, whole pages) up to 1G;
// else a UsageError naming `what`, the option.
inline constexpr uint32_t kDefaultSampleRingBytes = 32u << 20;
inline constexpr const char* kDefaultSampleRing = "32M";  // kDefaultSampleRingBytes as written
uint32_t parse_sample_ring_size(const std::string& text, const std::string& what);

// Trims ASCII white space at both ends.
std::string trim(const std::string& s);

}  // namespace mb
