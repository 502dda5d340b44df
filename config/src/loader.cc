#include "verdictd/config/loader.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <toml++/toml.h>

#include "checks.h"
#include "rule_section.h"
#include "suggest.h"
#include "toml_syntax.h"
#include "verdictd/base/verdict_kind.h"
#include "verdictd/config/limits.h"
#include "verdictd/config/values.h"

namespace verdictd::config {

namespace {

constexpr std::size_t kMaxFileBytes = std::size_t{16} << 20;

constexpr std::array<std::string_view, 8> kTopKeys{
    "queues", "verdict", "metrics", "control", "log", "process", "extension_host", "extensions"};
constexpr std::array<std::string_view, 8> kExtensionHostKeys{
    "directory",         "arena_concurrency", "pending_slots",    "pending_timeout_ms",
    "max_packet_bytes",  "timeout_verdict",   "overflow_verdict", "end_verdict"};
constexpr std::array<std::string_view, 5> kExtensionKeys{"name", "file", "parameters", "group",
                                                         "started"};
constexpr std::array<std::string_view, 13> kQueueKeys{
    "first",      "count",     "cpus",    "copy_mode", "copy_range",           "max_length",
    "fail_open",  "gso",       "conntrack", "uid_gid", "secctx", "receive_buffer_bytes", "receive_batch"};
constexpr std::array<std::string_view, 6> kVerdictKeys{
    "default", "unparseable", "batch_size", "flush_interval_us", "busy_poll_us", "latency_budget_us"};
constexpr std::array<std::string_view, 2> kMetricsKeys{"enabled", "listen"};
constexpr std::array<std::string_view, 2> kControlKeys{"enabled", "socket"};
constexpr std::array<std::string_view, 1> kLogKeys{"level"};
constexpr std::array<std::string_view, 1> kProcessKeys{"user"};
constexpr std::array<std::string_view, base::kVerdictKindCount> kVerdictWords =
    base::VerdictSettingWords();
constexpr std::array<std::string_view, 2> kCopyModeWords{"packet", "meta"};
constexpr std::array<std::string_view, 6> kLogWords{"trace", "debug", "info",
                                                    "warn",  "error", "off"};

std::string Join(std::string_view prefix, std::string_view name) {
  if (prefix.empty()) return std::string(name);
  std::string key(prefix);
  key += '.';
  key += name;
  return key;
}

std::string Truncate(std::string text) {
  constexpr std::size_t kMax = 60;
  if (text.size() > kMax) {
    text.resize(kMax);
    text += "...";
  }
  return text;
}

// "integer 70000", "string \"fast\"", "table" ...: the found part of a message.
std::string Describe(const toml::node& node) {
  std::ostringstream value;
  switch (node.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "string " + QuoteForMessage(node.as_string()->get());
    case toml::node_type::integer:
      return "integer " + std::to_string(node.as_integer()->get());
    case toml::node_type::floating_point:
      value << *node.as_floating_point();
      return "float " + Truncate(value.str());
    case toml::node_type::boolean:
      return node.as_boolean()->get() ? "boolean true" : "boolean false";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

std::string ChoiceList(std::span<const std::string_view> words) {
  std::string text = "one of ";
  for (std::size_t i = 0; i < words.size(); ++i) {
    if (i > 0) text += ", ";
    text += '"';
    text += words[i];
    text += '"';
  }
  return text;
}

std::string KeyList(std::span<const std::string_view> keys) {
  std::string text;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (i > 0) text += ", ";
    text += keys[i];
  }
  return text;
}

// Reads one document into a Config, collecting every problem.
class Reader {
 public:
  Reader(std::string_view file, std::vector<Diagnostic>& out) : map_(file), out_(out) {}

  const SourceMap& map() const { return map_; }

  void Read(const toml::table& root, Config& config) {
    std::vector<std::string_view> top(kTopKeys.begin(), kTopKeys.end());
    for (std::string_view key : RuleSectionKeys()) top.push_back(key);
    CheckKeys(root, "", top, "the top level");
    ReadQueues(root, config);
    if (const toml::table* t = Section(root, "verdict", kVerdictKeys)) {
      ReadVerdict(*t, "verdict", "default", config.verdict.default_verdict);
      ReadVerdict(*t, "verdict", "unparseable", config.verdict.unparseable_verdict);
      ReadInt(*t, "verdict", "batch_size", limits::kMinBatchSize, limits::kMaxBatchSize,
              config.verdict.batch_size);
      ReadInt(*t, "verdict", "flush_interval_us", 0, limits::kMaxFlushMicros,
              config.verdict.flush_interval_us);
      ReadInt(*t, "verdict", "busy_poll_us", 0, limits::kMaxBusyPollMicros,
              config.verdict.busy_poll_us);
      ReadInt(*t, "verdict", "latency_budget_us", 0, limits::kMaxLatencyBudgetMicros,
              config.verdict.latency_budget_us);
    }
    if (const toml::table* t = Section(root, "metrics", kMetricsKeys)) {
      ReadBool(*t, "metrics", "enabled", config.metrics.enabled);
      ReadText(*t, "metrics", "listen", ListenProblem, config.metrics.listen);
    }
    if (const toml::table* t = Section(root, "control", kControlKeys)) {
      ReadBool(*t, "control", "enabled", config.control.enabled);
      ReadText(*t, "control", "socket", SocketPathProblem, config.control.socket);
    }
    if (const toml::table* t = Section(root, "log", kLogKeys)) {
      ReadChoice(*t, "log", "level", kLogWords, ParseLogLevel, config.log.level);
    }
    if (const toml::table* t = Section(root, "process", kProcessKeys)) {
      ReadText(*t, "process", "user", UserProblem, config.process.user);
    }
    ParseRulesSection(root, map_.file(), config.rules, out_);
    ReadExtensions(root, config.extensions);
  }

 private:
  Position Where(const toml::source_region& source) const {
    if (source.begin.line == 0) return Position{std::string(kCommandLineName), 0, 0};
    return Position{source.path ? *source.path : map_.file(), static_cast<int>(source.begin.line),
                    static_cast<int>(source.begin.column)};
  }

  void Error(const toml::node& node, const std::string& key, std::string expected,
             std::string_view hint = {}) {
    map_.MarkBad(key);
    out_.push_back(MakeDiagnostic(Where(node.source()), key, std::move(expected),
                                  Describe(node), hint));
  }

  void CheckKeys(const toml::table& table, std::string_view prefix,
                 std::span<const std::string_view> valid, std::string_view where) {
    for (auto&& [name, node] : table) {
      if (std::find(valid.begin(), valid.end(), name.str()) != valid.end()) continue;
      const std::string key = Join(prefix, name.str());
      map_.MarkBad(key);
      const std::string nearest = NearestName(name.str(), valid);
      Diagnostic d;
      const Position at = Where(name.source());
      d.file = at.file;
      d.line = at.line;
      d.column = at.column;
      d.key = key;
      d.message = "unknown key";
      if (!nearest.empty()) d.message += "; did you mean \"" + nearest + "\"?";
      d.message += " (valid in " + std::string(where) + ": " + KeyList(valid) + ")";
      out_.push_back(std::move(d));
      (void)node;
    }
  }

  const toml::table* Section(const toml::table& root, std::string_view name,
                             std::span<const std::string_view> keys) {
    const toml::node* node = root.get(name);
    if (node == nullptr) return nullptr;
    const std::string key(name);
    map_.Record(key, Where(node->source()));
    const toml::table* table = node->as_table();
    if (table == nullptr) {
      Error(*node, key, "a table ([" + key + "])");
      return nullptr;
    }
    CheckKeys(*table, key, keys, "[" + key + "]");
    return table;
  }

  const toml::node* Get(const toml::table& table, std::string_view prefix,
                        std::string_view name) {
    const toml::node* node = table.get(name);
    if (node != nullptr) map_.Record(Join(prefix, name), Where(node->source()));
    return node;
  }

  template <typename T>
  void ReadInt(const toml::table& table, std::string_view prefix, std::string_view name,
               std::int64_t min, std::int64_t max, T& out) {
    const toml::node* node = Get(table, prefix, name);
    if (node == nullptr) return;
    const std::string expected =
        "an integer from " + std::to_string(min) + " to " + std::to_string(max);
    const auto* value = node->as_integer();
    if (value == nullptr || value->get() < min || value->get() > max) {
      Error(*node, Join(prefix, name), expected);
      return;
    }
    out = static_cast<T>(value->get());
  }

  void ReadBool(const toml::table& table, std::string_view prefix, std::string_view name,
                bool& out) {
    const toml::node* node = Get(table, prefix, name);
    if (node == nullptr) return;
    if (const auto* value = node->as_boolean()) {
      out = value->get();
    } else {
      Error(*node, Join(prefix, name), "true or false");
    }
  }

  void ReadText(const toml::table& table, std::string_view prefix, std::string_view name,
                std::string (*problem)(std::string_view), std::string& out) {
    const toml::node* node = Get(table, prefix, name);
    if (node == nullptr) return;
    const auto* value = node->as_string();
    if (value == nullptr) {
      std::string expected = problem("\x01");
      Error(*node, Join(prefix, name), expected.empty() ? "a string" : expected);
      return;
    }
    if (std::string expected = problem(value->get()); !expected.empty()) {
      Error(*node, Join(prefix, name), std::move(expected));
      return;
    }
    out = value->get();
  }

  template <typename T, typename Parse>
  void ReadChoice(const toml::table& table, std::string_view prefix, std::string_view name,
                  std::span<const std::string_view> words, Parse parse, T& out) {
    const toml::node* node = Get(table, prefix, name);
    if (node == nullptr) return;
    const auto* value = node->as_string();
    if (value != nullptr) {
      if (auto parsed = parse(value->get())) {
        out = *parsed;
        return;
      }
    }
    std::string hint;
    if (value != nullptr) {
      if (std::string nearest = NearestName(value->get(), words); !nearest.empty()) {
        hint = "did you mean \"" + nearest + "\"?";
      }
    }
    Error(*node, Join(prefix, name), ChoiceList(words), hint);
  }

  void ReadVerdict(const toml::table& table, std::string_view prefix, std::string_view name,
                   VerdictSetting& out) {
    ReadChoice(table, prefix, name, kVerdictWords, ParseVerdictSetting, out);
  }

  void ReadQueues(const toml::table& root, Config& config) {
    const toml::node* node = Get(root, "", "queues");
    if (node == nullptr) return;
    const toml::array* array = node->as_array();
    if (array == nullptr) {
      Error(*node, "queues", "an array of tables ([[queues]])");
      return;
    }
    config.queues.clear();
    for (std::size_t i = 0; i < array->size(); ++i) {
      const std::string prefix = "queues[" + std::to_string(i) + "]";
      const toml::node& element = (*array)[i];
      map_.Record(prefix, Where(element.source()));
      const toml::table* table = element.as_table();
      QueueRange range;
      if (table == nullptr) {
        Error(element, prefix, "a table ([[queues]])");
        config.queues.push_back(range);
        continue;
      }
      CheckKeys(*table, prefix, kQueueKeys, "[[queues]]");
      ReadInt(*table, prefix, "first", 0, limits::kMaxQueueNumber, range.first);
      ReadInt(*table, prefix, "count", 0, limits::kMaxQueueNumber, range.count);
      ReadCpus(*table, prefix, range.cpus);
      ReadChoice(*table, prefix, "copy_mode", kCopyModeWords, ParseCopyMode, range.copy_mode);
      ReadInt(*table, prefix, "copy_range", 0, limits::kMaxCopyRange, range.copy_range);
      ReadInt(*table, prefix, "max_length", limits::kMinMaxLength, limits::kMaxMaxLength,
              range.max_length);
      ReadBool(*table, prefix, "fail_open", range.fail_open);
      ReadBool(*table, prefix, "gso", range.gso);
      ReadBool(*table, prefix, "conntrack", range.conntrack);
      ReadBool(*table, prefix, "uid_gid", range.uid_gid);
      ReadBool(*table, prefix, "secctx", range.secctx);
      ReadInt(*table, prefix, "receive_buffer_bytes", limits::kMinReceiveBuffer,
              limits::kMaxReceiveBuffer, range.receive_buffer_bytes);
      ReadInt(*table, prefix, "receive_batch", limits::kMinReceiveBatch,
              limits::kMaxReceiveBatch, range.receive_batch);
      config.queues.push_back(std::move(range));
    }
  }

  void ReadExtensions(const toml::table& root, ExtensionsSection& out) {
    if (const toml::table* t = Section(root, "extension_host", kExtensionHostKeys)) {
      const std::string_view p = "extension_host";
      ReadText(*t, p, "directory", DirectoryProblem, out.directory);
      ReadInt(*t, p, "arena_concurrency", 1, 256, out.arena_concurrency);
      ReadInt(*t, p, "pending_slots", 1, 65535, out.pending_slots);
      ReadInt(*t, p, "pending_timeout_ms", 1, 600'000, out.pending_timeout_ms);
      ReadInt(*t, p, "max_packet_bytes", 576, 65535, out.max_packet_bytes);
      ReadVerdict(*t, p, "timeout_verdict", out.timeout_verdict);
      ReadVerdict(*t, p, "overflow_verdict", out.overflow_verdict);
      ReadVerdict(*t, p, "end_verdict", out.end_verdict);
    }
    const toml::node* node = Get(root, "", "extensions");
    if (node == nullptr) return;
    const toml::array* array = node->as_array();
    if (array == nullptr) {
      Error(*node, "extensions", "an array of tables ([[extensions]])");
      return;
    }
    for (std::size_t i = 0; i < array->size(); ++i) {
      const std::string prefix = "extensions[" + std::to_string(i) + "]";
      const toml::node& element = (*array)[i];
      map_.Record(prefix, Where(element.source()));
      const toml::table* table = element.as_table();
      if (table == nullptr) {
        Error(element, prefix, "a table ([[extensions]])");
        continue;
      }
      CheckKeys(*table, prefix, kExtensionKeys, "[[extensions]]");
      ExtensionEntry entry;
      if (Get(*table, prefix, "name") == nullptr) {
        Error(element, prefix + ".name", "an extension name (name = \"...\")");
      }
      ReadText(*table, prefix, "name", ExtensionNameProblem, entry.name);
      ReadText(*table, prefix, "file", ExtensionFileProblem, entry.file);
      ReadText(*table, prefix, "parameters", ParametersProblem, entry.parameters);
      ReadInt(*table, prefix, "group", 0, 0xffffffffLL, entry.group);
      ReadBool(*table, prefix, "started", entry.started);
      for (const ExtensionEntry& earlier : out.chain) {
        if (!entry.name.empty() && earlier.name == entry.name) {
          Error(*table->get("name"), prefix + ".name",
                "a name not used by an earlier [[extensions]] entry");
        }
      }
      out.chain.push_back(std::move(entry));
    }
  }

  void ReadCpus(const toml::table& table, const std::string& prefix, std::vector<int>& out) {
    const toml::node* node = Get(table, prefix, "cpus");
    if (node == nullptr) return;
    const std::string key = prefix + ".cpus";
    const toml::array* array = node->as_array();
    if (array == nullptr) {
      Error(*node, key, "an array of CPU numbers (e.g. [0, 1])");
      return;
    }
    for (std::size_t j = 0; j < array->size(); ++j) {
      const toml::node& element = (*array)[j];
      const std::string element_key = key + "[" + std::to_string(j) + "]";
      map_.Record(element_key, Where(element.source()));
      const auto* value = element.as_integer();
      if (value == nullptr || value->get() < 0 || value->get() > limits::kMaxCpuId) {
        Error(element, element_key,
              "a CPU number from 0 to " + std::to_string(limits::kMaxCpuId));
        continue;
      }
      out.push_back(static_cast<int>(value->get()));
    }
  }

  SourceMap map_;
  std::vector<Diagnostic>& out_;
};

// Splits "queues[1]" into ("queues", 1); a plain name gives index npos.
std::pair<std::string_view, std::size_t> SplitIndex(std::string_view segment, bool& ok) {
  ok = true;
  const auto open = segment.find('[');
  if (open == std::string_view::npos) return {segment, std::string_view::npos};
  if (segment.back() != ']') {
    ok = false;
    return {segment, 0};
  }
  const std::string_view digits = segment.substr(open + 1, segment.size() - open - 2);
  std::size_t index = 0;
  if (digits.empty() || digits.size() > 6) ok = false;
  for (char c : digits) {
    if (c < '0' || c > '9') ok = false;
    index = index * 10 + static_cast<std::size_t>(c - '0');
  }
  return {segment.substr(0, open), index};
}

Diagnostic OverrideError(std::string key, std::string message) {
  Diagnostic d;
  d.file = std::string(kCommandLineName);
  d.key = std::move(key);
  d.message = std::move(message);
  return d;
}

// Applies one "key=value" override to the document.
void ApplyOverride(toml::table& root, std::string_view assignment,
                   std::vector<Diagnostic>& out) {
  const auto equals = assignment.find('=');
  if (equals == std::string_view::npos || equals == 0) {
    out.push_back(OverrideError("", "expected key=value, found \"" + std::string(assignment) +
                                        "\""));
    return;
  }
  const std::string key(assignment.substr(0, equals));
  const std::string text(assignment.substr(equals + 1));
  toml::table value_holder;
  try {
    value_holder = toml::parse("v = " + text, kCommandLineName);
  } catch (const toml::parse_error&) {
    value_holder.insert_or_assign("v", text);  // a bare word: take it as a string
  }
  const toml::node* value = value_holder.get("v");
  if (value == nullptr || value_holder.size() != 1) {
    out.push_back(OverrideError(key, "expected one TOML value, found \"" + text + "\""));
    return;
  }

  toml::table* table = &root;
  std::string_view rest = key;
  std::string walked;
  while (true) {
    const auto dot = rest.find('.');
    const std::string_view segment = rest.substr(0, dot);
    bool ok = true;
    // Named variables, not a structured binding: clang 14 cannot capture a
    // binding in the lambdas below.
    const std::pair<std::string_view, std::size_t> split = SplitIndex(segment, ok);
    const std::string_view name = split.first;
    const std::size_t index = split.second;
    if (!ok || name.empty()) {
      out.push_back(OverrideError(key, "expected a key like verdict.default or "
                                       "queues[0].count, found \"" + key + "\""));
      return;
    }
    const bool last = dot == std::string_view::npos;
    walked = walked.empty() ? std::string(segment) : walked + "." + std::string(segment);
    if (index == std::string_view::npos) {
      if (last) {
        value->visit([&](const auto& concrete) { table->insert_or_assign(name, concrete); });
        return;
      }
      toml::node* next = table->get(name);
      if (next == nullptr) {
        next = &table->insert_or_assign(name, toml::table{}).first->second;
      }
      if (!next->is_table()) {
        out.push_back(OverrideError(key, "expected " + walked + " to be a table, found " +
                                             Describe(*next)));
        return;
      }
      table = next->as_table();
    } else {
      toml::node* next = table->get(name);
      if (next == nullptr && index == 0) {
        next = &table->insert_or_assign(name, toml::array{}).first->second;
      }
      toml::array* array = next == nullptr ? nullptr : next->as_array();
      if (array == nullptr || index > array->size()) {
        out.push_back(OverrideError(
            key, "expected an index up to " +
                     std::to_string(array == nullptr ? 0 : array->size()) + " for " +
                     std::string(name) + ", found " + std::to_string(index)));
        return;
      }
      if (last) {
        if (index == array->size()) array->push_back(toml::table{});
        value->visit([&](const auto& concrete) {
          array->replace(array->begin() + static_cast<std::ptrdiff_t>(index), concrete);
        });
        return;
      }
      if (index == array->size()) array->push_back(toml::table{});
      toml::node* element = &(*array)[index];
      if (!element->is_table()) {
        out.push_back(OverrideError(key, "expected " + walked + " to be a table, found " +
                                             Describe(*element)));
        return;
      }
      table = element->as_table();
    }
    rest = rest.substr(dot + 1);
  }
}

LoadResult LoadTable(toml::table& root, std::string_view file_name,
                     const LoadOptions& options) {
  LoadResult result;
  for (const std::string& assignment : options.overrides) {
    ApplyOverride(root, assignment, result.diagnostics);
  }
  Reader reader(file_name, result.diagnostics);
  reader.Read(root, result.config);
  CheckContradictions(result.config,
                      options.online_cpus == 0 ? OnlineCpuCount() : options.online_cpus,
                      reader.map(), result.diagnostics);
  // File order; problems without a position (command line) come last.
  std::stable_sort(result.diagnostics.begin(), result.diagnostics.end(),
                   [](const Diagnostic& a, const Diagnostic& b) {
                     const auto rank = [](const Diagnostic& d) {
                       return std::pair(d.line == 0 ? INT32_MAX : d.line, d.column);
                     };
                     return rank(a) < rank(b);
                   });
  return result;
}

}  // namespace

std::string QuoteForMessage(std::string_view text) {
  std::string quoted = "\"";
  for (char c : text.substr(0, 60)) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      quoted += '\\';
      quoted += c;
    } else if (byte < 0x20 || byte == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      quoted += "\\x";
      quoted += kHex[byte >> 4];
      quoted += kHex[byte & 15];
    } else {
      quoted += c;
    }
  }
  if (text.size() > 60) quoted += "...";
  quoted += '"';
  return quoted;
}

std::string ListenProblem(std::string_view value) {
  static const std::string kExpected =
      "an address \"host:port\" (e.g. \"127.0.0.1:9470\" or \"[::1]:9470\")";
  const auto colon = value.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return kExpected;
  const std::string_view host = value.substr(0, colon);
  const std::string_view port = value.substr(colon + 1);
  if (port.empty() || port.size() > 5) return kExpected;
  unsigned number = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return kExpected;
    number = number * 10 + static_cast<unsigned>(c - '0');
  }
  if (number == 0 || number > 65535) return kExpected;
  const bool bracketed = host.front() == '[';
  if (bracketed != (host.back() == ']') || (bracketed && host.size() < 3)) return kExpected;
  if (!bracketed && host.find(':') != std::string_view::npos) return kExpected;
  for (char c : host) {
    if (static_cast<unsigned char>(c) <= ' ' || static_cast<unsigned char>(c) >= 0x7f) {
      return kExpected;
    }
  }
  return "";
}

std::string SocketPathProblem(std::string_view value) {
  if (value.empty() || value.front() != '/' || value.size() > limits::kMaxSocketPath ||
      value.find('\0') != std::string_view::npos) {
    return "an absolute path of at most " + std::to_string(limits::kMaxSocketPath) + " bytes";
  }
  return "";
}

std::string DirectoryProblem(std::string_view value) {
  if (value.empty() || value.front() != '/' || value.size() > 4096 ||
      value.find('\0') != std::string_view::npos) {
    return "an absolute directory path";
  }
  return "";
}

std::string ExtensionNameProblem(std::string_view value) {
  const std::string expected =
      "an extension name (1 to 63 letters, digits, '_' or '-', not starting with '-')";
  if (value.empty() || value.size() > 63 || value.front() == '-') return expected;
  for (char c : value) {
    const bool fine = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!fine) return expected;
  }
  return "";
}

std::string ExtensionFileProblem(std::string_view value) {
  const std::string expected =
      "a file name inside [extension_host] directory (no '/', ending in \".so\"), or \"\" for "
      "NAME.so";
  if (value.empty()) return "";
  if (value.size() < 4 || value.size() > 255 || value.find('/') != std::string_view::npos ||
      value.find('\0') != std::string_view::npos || value.front() == '.' ||
      value.substr(value.size() - 3) != ".so") {
    return expected;
  }
  return "";
}

std::string ParametersProblem(std::string_view value) {
  if (value.size() > 4096) return "a parameter string of at most 4096 bytes";
  for (char c : value) {
    if (static_cast<unsigned char>(c) < 0x20) return "a parameter string without control characters";
  }
  return "";
}

std::string UserProblem(std::string_view value) {
  const std::string expected = "a user name (letters, digits, '.', '_', '-'; at most " +
                               std::to_string(limits::kMaxUserName) +
                               " bytes) or \"\" to keep the starting user";
  if (value.size() > limits::kMaxUserName || (!value.empty() && value.front() == '-')) {
    return expected;
  }
  for (char c : value) {
    const bool fine = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!fine) return expected;
  }
  return "";
}

std::uint32_t QueueCount(const QueueRange& range, unsigned online_cpus) noexcept {
  return range.count != 0 ? range.count : std::max(1u, online_cpus);
}

unsigned OnlineCpuCount() noexcept {
  const long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  return cpus > 0 ? static_cast<unsigned>(cpus) : 1u;
}

LoadResult LoadConfigString(std::string_view text, std::string_view file_name,
                            const LoadOptions& options) {
  toml::table root;
  LoadResult result;
  result.diagnostics = ParseTomlDocument(text, file_name, root);
  if (!result.diagnostics.empty()) return result;
  return LoadTable(root, file_name, options);
}

LoadResult LoadDefaults(const LoadOptions& options) {
  toml::table root;
  return LoadTable(root, kDefaultsName, options);
}

LoadResult LoadConfigFile(const std::string& path, const LoadOptions& options) {
  std::ifstream in(path, std::ios::binary);
  auto fail = [&](std::string message) {
    LoadResult result;
    Diagnostic d;
    d.file = path;
    d.message = std::move(message);
    result.diagnostics.push_back(std::move(d));
    return result;
  };
  if (!in) return fail("cannot open the file: " + std::string(std::strerror(errno)));
  std::string text;
  char buffer[65536];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    text.append(buffer, static_cast<std::size_t>(in.gcount()));
    if (text.size() > kMaxFileBytes) return fail("the file is larger than 16 MiB");
  }
  if (in.bad()) return fail("cannot read the file");
  return LoadConfigString(text, path, options);
}

std::string FormatDiagnostics(const std::vector<Diagnostic>& diagnostics) {
  std::string text;
  for (const Diagnostic& d : diagnostics) {
    text += d.ToString();
    text += '\n';
  }
  return text;
}

}  // namespace verdictd::config
