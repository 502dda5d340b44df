// Internals shared by the loader and the validator: where each key was
// written, and diagnostic construction.
#pragma once

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "verdictd/config/config.h"
#include "verdictd/config/diagnostic.h"

namespace verdictd::config {

struct Position {
  std::string file;
  int line = 0;
  int column = 0;
};

// Key path ("queues[1].cpus[0]") -> where it was written. Lookups fall back
// to the nearest recorded parent, then to the document as a whole.
class SourceMap {
 public:
  explicit SourceMap(std::string_view file) : file_(file) {}
  void Record(const std::string& key, Position position);
  Position Find(std::string_view key) const;
  void MarkBad(const std::string& key) { bad_.insert(key); }
  // True when `key` or anything under it had a diagnostic of its own.
  bool HasBad(std::string_view key) const;
  const std::string& file() const { return file_; }

 private:
  std::string file_;
  std::map<std::string, Position, std::less<>> positions_;
  std::set<std::string, std::less<>> bad_;
};

Diagnostic MakeDiagnostic(const Position& where, std::string key, std::string expected,
                          std::string found, std::string_view hint = {});

// Cross-field checks; `map` supplies positions and says which keys already
// failed (their ranges are skipped to avoid knock-on errors).
void CheckContradictions(const Config& config, unsigned online_cpus, const SourceMap& map,
                         std::vector<Diagnostic>& out);
// Value ranges, for a Config built in code (the loader checks them as it reads).
void CheckRanges(const Config& config, const SourceMap& map, std::vector<Diagnostic>& out);

// Checks of the string-valued keys; each returns what was expected, or ""
// when `value` is fine.
std::string ListenProblem(std::string_view value);
std::string SocketPathProblem(std::string_view value);
std::string UserProblem(std::string_view value);
std::string QuoteForMessage(std::string_view text);

std::string QueueSpan(std::uint32_t first, std::uint32_t last);

}  // namespace verdictd::config
