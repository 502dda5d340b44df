// The rule compiler: rule sections from arbitrary text. The input is read as
// the body of one [[rules]] table (so the fuzzer spends its time in rule
// keys rather than rediscovering TOML); whatever loads is compiled, and the
// compiler must either build a rule set or say why.
#include <cstdlib>
#include <string>

#include "fuzz_target.h"
#include "verdictd/config/loader.h"
#include "verdictd/rules/rule_set.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text = "[[rules]]\nname = \"fuzzed\"\n";
  text.append(reinterpret_cast<const char*>(data), size);
  // Rule files, set files and log files are read and written like any file:
  // the fuzzer must not wander the file system (or block on a FIFO).
  if (text.find("file") != std::string::npos) return 0;
  const verdictd::config::LoadResult loaded =
      verdictd::config::LoadConfigString(text, "fuzz.toml");
  if (!loaded.ok()) return 0;
  verdictd::rules::CompileOptions options;
  options.allow_unknown_interfaces = true;
  const verdictd::rules::CompileResult compiled = verdictd::rules::CompileConfig(loaded.config, options);
  if (compiled.rules == nullptr && compiled.diagnostics.empty()) std::abort();
  return 0;
}
