// A temporary directory for the unit tests' fake /proc and sysfs trees and
// config files: made with mkdtemp when constructed, removed with everything
// below it when destroyed.

#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <system_error>

namespace mb_test {

class TempTree {
 public:
  // The directory is /tmp/<prefix>_XXXXXX.
  explicit TempTree(const std::string& prefix) {
    std::string tmpl = "/tmp/" + prefix + "_XXXXXX";
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp " + tmpl);
    root_ = tmpl;
  }
  ~TempTree() {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
  TempTree(const TempTree&) = delete;
  TempTree& operator=(const TempTree&) = delete;

  const std::string& path() const { return root_; }
  // root/rel.
  std::string path(const std::string& rel) const { return (std::filesystem::path(root_) / rel).string(); }

  // Writes root/rel (making the directories above it) and returns its path.
  std::string write(const std::string& rel, const std::string& content) const {
    std::filesystem::path p = std::filesystem::path(root_) / rel;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << content;
    return p.string();
  }
  void mkdir(const std::string& rel) const { std::filesystem::create_directories(std::filesystem::path(root_) / rel); }
  // Makes root/rel a symbolic link to target (making the directories above it).
  void symlink(const std::string& target, const std::string& rel) const {
    std::filesystem::path p = std::filesystem::path(root_) / rel;
    std::filesystem::create_directories(p.parent_path());
    std::filesystem::create_symlink(target, p);
  }

 private:
  std::string root_;
};

}  // namespace mb_test
