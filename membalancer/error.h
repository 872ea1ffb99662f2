// Errors users see: one line naming what is wrong, and an exit status.
//   UsageError   bad input (options, config, pids, specs)            -> status 2
//   SystemError  a missing privilege or kernel feature, or a failure -> status 1
// Both carry an optional hint: what to do about it. main() prints them.
#pragma once

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace mb {

enum ExitStatus { kExitOk = 0, kExitSystem = 1, kExitUsage = 2 };

class Error : public std::runtime_error {
 public:
  Error(int status, std::string message, std::string hint = {})
      : std::runtime_error(std::move(message)), status_(status), hint_(std::move(hint)) {}
  int status() const { return status_; }
  const std::string& hint() const { return hint_; }

 private:
  int status_;
  std::string hint_;
};

struct UsageError : Error {
  explicit UsageError(std::string message, std::string hint = {})
      : Error(kExitUsage, std::move(message), std::move(hint)) {}
};

struct SystemError : Error {
  explicit SystemError(std::string message, std::string hint = {})
      : Error(kExitSystem, std::move(message), std::move(hint)) {}
  // "what: strerror(err)"
  SystemError(const std::string& what, int err, std::string hint = {})
      : Error(kExitSystem, what + ": " + std::strerror(err), std::move(hint)) {}
};

}  // namespace mb
