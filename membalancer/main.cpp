// membalancer: thin entry point. Options -> mode -> exit status.
#include <cstdio>
#include <exception>

#include "membalancer/error.h"
#include "membalancer/options.h"
#include "membalancer/trace.h"

int main(int argc, char** argv) {
  int status = -1;
  try {
    mb::Options opts = mb::parse_options(argc, argv, &status);
    if (status >= 0) return status;
    if (opts.info) return mb::print_info();
    if (!opts.command.empty()) return mb::run_mode(opts);
    std::fprintf(stderr, "membalancer: unknown command\n");
    return mb::kExitUsage;
  } catch (const mb::Error& e) {
    if (e.hint().empty()) std::fprintf(stderr, "membalancer: %s\n", e.what());
    else std::fprintf(stderr, "membalancer: %s (hint: %s)\n", e.what(), e.hint().c_str());
    return e.status();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "membalancer: internal error: %s\n", e.what());
    return mb::kExitSystem;
  }
}
