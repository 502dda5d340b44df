// A temporary extension directory for the tests: root-owned (the tests that
// use it need root and skip otherwise), mode 0755, holding copies of the
// fixture and example extensions. Removed with its contents.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace verdictd::extensions::testing {

inline bool IsRoot() { return ::geteuid() == 0; }

class TestDir {
 public:
  TestDir() {
    char name[] = "/tmp/verdictd-ext-XXXXXX";
    path_ = ::mkdtemp(name);
    ::chmod(path_.c_str(), 0755);
  }
  ~TestDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }
  // Copies fixtures/<name>.so (or, with example, the built example).
  std::string Add(const std::string& name, bool example = false) const {
    const std::string from = std::string(example ? EXT_EXAMPLE_DIR : EXT_FIXTURE_DIR) + "/" + name + ".so";
    const std::string to = path_ + "/" + name + ".so";
    std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing);
    ::chmod(to.c_str(), 0644);
    return to;
  }

 private:
  std::string path_;
};

}  // namespace verdictd::extensions::testing
