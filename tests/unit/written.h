// What a function writes to a FILE*, as a string: the reports and charts
// under test print to a stream.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

namespace mb_test {

inline std::string written_by(const std::function<void(FILE*)>& write) {
  char* buf = nullptr;
  size_t len = 0;
  FILE* f = open_memstream(&buf, &len);
  try {
    write(f);
  } catch (...) {  // a test that expects a throw must not leak the stream
    std::fclose(f);
    std::free(buf);
    throw;
  }
  std::fclose(f);
  std::string s(buf, len);
  std::free(buf);
  return s;
}

}  // namespace mb_test
