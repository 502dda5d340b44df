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
#include "key_table.h"
#include "verdictd/config/rule_section.h"
#include "toml_reader.h"
#include "toml_syntax.h"
#include "verdictd/base/verdict_kind.h"
#include "verdictd/config/limits.h"
#include "verdictd/config/values.h"

namespace verdictd::config {

namespace {

constexpr std::size_t kMaxFileBytes = std::size_t{16} << 20;

constexpr std::array<std::string_view, 8> kTopKeys{
    "queues", "verdict", "metrics", "control", "log", "process", "extension_host", "extensions"};

// Reads one document into a Config, collecting every problem. Each section
// is read through its key table (key_tables.cc).
class Reader {
 public:
  Reader(std::string_view file, std::vector<Diagnostic>& out) : reader_(file, out), out_(out) {}

  const SourceMap& map() const { return reader_.map(); }

  void Read(const toml::table& root, Config& config) {
    std::vector<std::string_view> top(kTopKeys.begin(), kTopKeys.end());
    for (std::string_view key : RuleSectionKeys()) top.push_back(key);
    reader_.CheckKeys(root, "", top, "the top level");
    ReadQueues(root, config);
    ReadSection(root, "verdict", VerdictKeys(), config.verdict);
    ReadSection(root, "metrics", MetricsKeys(), config.metrics);
    ReadSection(root, "control", ControlKeys(), config.control);
    ReadSection(root, "log", LogKeys(), config.log);
    ReadSection(root, "process", ProcessKeys(), config.process);
    ParseRulesSection(root, reader_.map().file(), config.rules, out_);
    ReadExtensions(root, config.extensions);
  }

 private:
  template <typename S>
  void ReadSection(const toml::table& root, std::string_view name, KeyTable<S> keys, S& out) {
    const std::vector<std::string_view> names = KeyNames(keys);
    if (const toml::table* table = reader_.Section(root, name, names)) {
      ReadKeys(reader_, *table, std::string(name), keys, out);
    }
  }

  // Calls read(table, prefix) for each table of the [[name]] array; an
  // element that is not a table is reported and read as an empty one.
  template <typename S, typename Read>
  void ReadArray(const toml::table& root, std::string_view name, KeyTable<S> keys, Read read) {
    const toml::array* array = reader_.ArrayOfTables(root, name);
    if (array == nullptr) return;
    const std::vector<std::string_view> names = KeyNames(keys);
    const std::string where = "[[" + std::string(name) + "]]";
    for (std::size_t i = 0; i < array->size(); ++i) {
      const std::string prefix = std::string(name) + "[" + std::to_string(i) + "]";
      const toml::node& element = (*array)[i];
      reader_.map().Record(prefix, reader_.Where(element.source()));
      const toml::table* table = element.as_table();
      if (table == nullptr) {
        reader_.Error(element, prefix, "a table (" + where + ")");
        read(nullptr, element, prefix);
        continue;
      }
      reader_.CheckKeys(*table, prefix, names, where);
      read(table, element, prefix);
    }
  }

  void ReadQueues(const toml::table& root, Config& config) {
    if (root.get("queues") != nullptr && root.get("queues")->is_array()) config.queues.clear();
    ReadArray(root, "queues", QueueKeys(),
              [&](const toml::table* table, const toml::node&, const std::string& prefix) {
                QueueRange range;
                if (table != nullptr) ReadKeys(reader_, *table, prefix, QueueKeys(), range);
                config.queues.push_back(std::move(range));
              });
  }

  void ReadExtensions(const toml::table& root, ExtensionsSection& out) {
    ReadSection(root, "extension_host", ExtensionHostKeys(), out);
    ReadArray(root, "extensions", ExtensionKeys(),
              [&](const toml::table* table, const toml::node& element,
                  const std::string& prefix) {
                if (table == nullptr) return;
                ExtensionEntry entry;
                if (reader_.Get(*table, prefix, "name") == nullptr) {
                  reader_.Error(element, prefix + ".name", "an extension name (name = \"...\")");
                }
                ReadKeys(reader_, *table, prefix, ExtensionKeys(), entry);
                for (const ExtensionEntry& earlier : out.chain) {
                  if (!entry.name.empty() && earlier.name == entry.name) {
                    reader_.Error(*table->get("name"), prefix + ".name",
                                  "a name not used by an earlier [[extensions]] entry");
                  }
                }
                out.chain.push_back(std::move(entry));
              });
  }

  TomlReader reader_;
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
