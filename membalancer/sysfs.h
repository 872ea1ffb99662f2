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

// Trims ASCII white space at both ends.
std::string trim(const std::string& s);

}  // namespace mb
