// Runs fuzz inputs without libFuzzer: every file named on the command line,
// and every file in every directory named, through LLVMFuzzerTestOneInput.
// Exit 0 when all ran (a crash aborts, which is the failure); 1 when an
// argument cannot be read or no input was found at all (an empty corpus
// would prove nothing).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "fuzz_target.h"

namespace {

bool RunFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "replay: cannot read %s\n", path.c_str());
    return false;
  }
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
  // An exact-size copy, so a read past the input's end is a heap overflow
  // the sanitizers see.
  std::vector<std::uint8_t> data(bytes.begin(), bytes.end());
  LLVMFuzzerTestOneInput(data.data(), data.size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t inputs = 0;
  bool ok = true;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path arg(argv[i]);
    std::error_code error;
    if (std::filesystem::is_directory(arg, error)) {
      for (const auto& entry : std::filesystem::recursive_directory_iterator(arg)) {
        if (!entry.is_regular_file() || entry.path().filename().string().front() == '.') continue;
        ok = RunFile(entry.path()) && ok;
        ++inputs;
      }
    } else {
      ok = RunFile(arg) && ok;
      ++inputs;
    }
  }
  std::printf("replayed %zu inputs\n", inputs);
  if (inputs == 0) {
    std::fprintf(stderr, "replay: no input found in the given paths\n");
    return 1;
  }
  return ok ? 0 : 1;
}
