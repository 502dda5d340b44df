// Reads, validates and prints verdictd's configuration file (TOML).
//
// Loading never stops at the first problem: every error in the file is
// returned as a Diagnostic (file:line:column, key, expected, found), so one
// run of `verdictd --check-config` shows them all. The one exception is TOML
// syntax: the parser stops at the first syntax error, which is then the only
// diagnostic.
//
// Control-plane code: these functions allocate, never throw for problems in
// the input (only std::bad_alloc), and are safe to call from any thread (they
// share no state).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "verdictd/config/config.h"
#include "verdictd/config/diagnostic.h"

namespace verdictd::config {

struct LoadOptions {
  // CPUs the checks assume are online (CPU ids 0..online_cpus-1); 0 asks the
  // system. Tests pass a fixed number so that results do not depend on the host.
  unsigned online_cpus = 0;
  // Command-line overrides "key=value", applied over the file before
  // validation, in order. key is a dotted path ("verdict.default",
  // "queues[0].count"); value is a TOML value, or a bare word taken as a string
  // ("verdict.default=drop"). Diagnostics about them name "<command line>".
  std::vector<std::string> overrides;
};

struct LoadResult {
  Config config;                        // meaningful only when ok()
  std::vector<Diagnostic> diagnostics;  // every problem found, in file order
  bool ok() const { return diagnostics.empty(); }
};

// The file name used in diagnostics about defaults and overrides.
inline constexpr std::string_view kDefaultsName = "<defaults>";
inline constexpr std::string_view kCommandLineName = "<command line>";

// Reads `path` and loads it. A file that cannot be read is one diagnostic.
LoadResult LoadConfigFile(const std::string& path, const LoadOptions& options = {});
// Loads TOML text; `file_name` is what diagnostics call it.
LoadResult LoadConfigString(std::string_view text, std::string_view file_name,
                            const LoadOptions& options = {});
// The embedded defaults plus `options.overrides` (the service without a file).
LoadResult LoadDefaults(const LoadOptions& options = {});

// Cross-field checks (overlapping queue ranges, CPUs that are not online,
// verdicts that loop back into verdictd's own queues) for a Config that was
// built in code rather than loaded. Loading runs these itself.
std::vector<Diagnostic> ValidateConfig(const Config& config, unsigned online_cpus,
                                       std::string_view origin = kCommandLineName);

// One diagnostic per line, each ending in '\n'.
std::string FormatDiagnostics(const std::vector<Diagnostic>& diagnostics);

// The whole configuration, defaults included, as a commented TOML document.
// Loading the result gives back an equal Config.
std::string ToToml(const Config& config);

// How many queues (and workers) `range` has: count, or one per online CPU
// when count is 0.
std::uint32_t QueueCount(const QueueRange& range, unsigned online_cpus) noexcept;

// sysconf(_SC_NPROCESSORS_ONLN), at least 1.
unsigned OnlineCpuCount() noexcept;

}  // namespace verdictd::config
