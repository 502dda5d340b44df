#include "checks.h"

#include <algorithm>

#include "key_table.h"
#include "verdictd/base/verdict_kind.h"
#include "verdictd/config/limits.h"
#include "verdictd/config/loader.h"
#include "verdictd/config/values.h"

namespace verdictd::config {

namespace {

std::string_view Parent(std::string_view key) {
  const auto cut = key.find_last_of(".[");
  return cut == std::string_view::npos ? std::string_view{} : key.substr(0, cut);
}

std::string Index(std::string_view name, std::size_t i) {
  return std::string(name) + '[' + std::to_string(i) + ']';
}

}  // namespace

void SourceMap::Record(const std::string& key, Position position) {
  positions_.insert_or_assign(key, std::move(position));
}

Position SourceMap::Find(std::string_view key) const {
  while (!key.empty()) {
    if (auto it = positions_.find(key); it != positions_.end()) return it->second;
    key = Parent(key);
  }
  return Position{file_, 0, 0};
}

bool SourceMap::HasBad(std::string_view key) const {
  for (auto it = bad_.lower_bound(key); it != bad_.end() && it->starts_with(key); ++it) {
    const std::string_view rest = std::string_view(*it).substr(key.size());
    if (rest.empty() || rest.front() == '.' || rest.front() == '[') return true;
  }
  return false;
}

Diagnostic MakeDiagnostic(const Position& where, std::string key, std::string expected,
                          std::string found, std::string_view hint) {
  Diagnostic d;
  d.file = where.file;
  d.line = where.line;
  d.column = where.column;
  d.key = std::move(key);
  d.message = "expected " + expected + ", found " + found;
  if (!hint.empty()) {
    d.message += "; ";
    d.message += hint;
  }
  return d;
}

std::string QueueSpan(std::uint32_t first, std::uint32_t last) {
  return first == last ? "queue " + std::to_string(first)
                       : "queues " + std::to_string(first) + "-" + std::to_string(last);
}

void CheckContradictions(const Config& config, unsigned online_cpus, const SourceMap& map,
                         std::vector<Diagnostic>& out) {
  struct Served {
    std::size_t index;
    std::uint32_t first;
    std::uint32_t last;
  };
  std::vector<Served> served;
  if (config.queues.empty()) {
    out.push_back(MakeDiagnostic(map.Find("queues"), "queues", "at least one [[queues]] table",
                                 "none", "verdictd needs a queue to serve"));
  }
  for (std::size_t i = 0; i < config.queues.size(); ++i) {
    const std::string prefix = Index("queues", i);
    if (map.HasBad(prefix)) continue;
    const QueueRange& range = config.queues[i];
    const std::uint32_t count = QueueCount(range, online_cpus);
    const std::uint32_t last = std::uint32_t{range.first} + count - 1;
    bool ok = true;
    if (last > limits::kMaxQueueNumber) {
      const std::string key = prefix + (range.count == 0 ? ".first" : ".count");
      out.push_back(MakeDiagnostic(map.Find(key), key,
                                   "first + count - 1 to be at most 65535",
                                   QueueSpan(range.first, last),
                                   "queue numbers are 16-bit"));
      ok = false;
    }
    // Without a cpus list, workers go round-robin over the online CPUs, so
    // more queues than CPUs is allowed (CPUs then serve several queues).
    if (!range.cpus.empty() && range.cpus.size() != count) {
      const std::string key = prefix + ".cpus";
      out.push_back(MakeDiagnostic(
          map.Find(key), key,
          std::to_string(count) + " CPUs, one per queue (" +
              (range.count == 0 ? std::string("count is 0: one queue per online CPU")
                                : "count is " + std::to_string(range.count)) +
              ")",
          std::to_string(range.cpus.size()) + " CPUs"));
    }
    for (std::size_t j = 0; j < range.cpus.size(); ++j) {
      const int cpu = range.cpus[j];
      if (cpu < 0 || static_cast<unsigned>(cpu) >= online_cpus) {
        const std::string key = prefix + ".cpus" + '[' + std::to_string(j) + ']';
        out.push_back(MakeDiagnostic(
            map.Find(key), key,
            "an online CPU (0 to " + std::to_string(online_cpus - 1) + ")",
            "CPU " + std::to_string(cpu),
            "this machine has " + std::to_string(online_cpus) + " online CPUs"));
      }
    }
    if (ok) served.push_back({i, range.first, last});
  }
  for (std::size_t b = 0; b < served.size(); ++b) {
    for (std::size_t a = 0; a < b; ++a) {
      if (served[a].first <= served[b].last && served[b].first <= served[a].last) {
        const std::string key = Index("queues", served[b].index) + ".first";
        const Position other = map.Find(Index("queues", served[a].index));
        std::string where;
        if (other.line > 0) {
          where = ", at " + other.file + ":" + std::to_string(other.line) + ":" +
                  std::to_string(other.column);
        }
        out.push_back(MakeDiagnostic(
            map.Find(key), key, "queue numbers no other range serves",
            QueueSpan(served[b].first, served[b].last) + ", overlapping queues[" +
                std::to_string(served[a].index) + "] (" +
                QueueSpan(served[a].first, served[a].last) + where + ")",
            "every queue number is served by one worker; move or shrink one range"));
      }
    }
  }
  const std::pair<const char*, const VerdictSetting*> verdicts[] = {
      {"verdict.default", &config.verdict.default_verdict},
      {"verdict.unparseable", &config.verdict.unparseable_verdict}};
  for (const auto& [key, verdict] : verdicts) {
    if (!base::VerdictKindInfoOf(verdict->kind).has_target_queue || map.HasBad(key)) continue;
    for (const Served& s : served) {
      if (verdict->target_queue >= s.first && verdict->target_queue <= s.last) {
        out.push_back(MakeDiagnostic(
            map.Find(key), key, "a queue verdictd does not serve itself",
            "\"" + VerdictSettingText(*verdict) + "\", served by queues[" +
                std::to_string(s.index) + "] (" + QueueSpan(s.first, s.last) + ")",
            "packets would come back to verdictd forever"));
        break;
      }
    }
  }
}

void CheckRanges(const Config& config, const SourceMap& map, std::vector<Diagnostic>& out) {
  for (std::size_t i = 0; i < config.queues.size(); ++i) {
    CheckKeyValues(QueueKeys(), config.queues[i], Index("queues", i) + ".", map, out);
  }
  CheckKeyValues(MetricsKeys(), config.metrics, "metrics.", map, out);
  CheckKeyValues(ControlKeys(), config.control, "control.", map, out);
  CheckKeyValues(ProcessKeys(), config.process, "process.", map, out);
  CheckKeyValues(VerdictKeys(), config.verdict, "verdict.", map, out);
  CheckKeyValues(LogKeys(), config.log, "log.", map, out);
  CheckKeyValues(ExtensionHostKeys(), config.extensions, "extension_host.", map, out);
  for (std::size_t i = 0; i < config.extensions.chain.size(); ++i) {
    CheckKeyValues(ExtensionKeys(), config.extensions.chain[i], Index("extensions", i) + ".",
                   map, out);
  }
}

std::vector<Diagnostic> ValidateConfig(const Config& config, unsigned online_cpus,
                                       std::string_view origin) {
  std::vector<Diagnostic> out;
  const SourceMap map(origin);
  CheckRanges(config, map, out);
  CheckContradictions(config, online_cpus == 0 ? OnlineCpuCount() : online_cpus, map, out);
  return out;
}

}  // namespace verdictd::config
