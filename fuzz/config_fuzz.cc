// The configuration loader: TOML text to a Config or diagnostics. Any text
// must give one or the other, and a loaded Config must print and load again.
#include <cstdlib>
#include <string_view>

#include "fuzz_target.h"
#include "verdictd/config/loader.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  // Included rule files and set files are read like any file: the fuzzer
  // must not wander the file system (or block on a FIFO).
  if (text.find("file") != std::string_view::npos) return 0;
  const verdictd::config::LoadResult loaded =
      verdictd::config::LoadConfigString(text, "fuzz.toml");
  if (!loaded.ok()) {
    const std::string report = verdictd::config::FormatDiagnostics(loaded.diagnostics);
    if (report.empty()) std::abort();  // a refusal must say why
    return 0;
  }
  // --print-config must round-trip whatever loaded.
  const std::string printed = verdictd::config::ToToml(loaded.config);
  if (!verdictd::config::LoadConfigString(printed, "printed.toml").ok()) std::abort();
  return 0;
}
