#include "toml_reader.h"

#include <algorithm>
#include <sstream>

#include "suggest.h"
#include "verdictd/config/limits.h"
#include "verdictd/config/loader.h"

namespace verdictd::config {

namespace {

std::string Truncate(std::string text) {
  constexpr std::size_t kMax = 60;
  if (text.size() > kMax) {
    text.resize(kMax);
    text += "...";
  }
  return text;
}

}  // namespace

std::string Join(std::string_view prefix, std::string_view name) {
  if (prefix.empty()) return std::string(name);
  std::string key(prefix);
  key += '.';
  key += name;
  return key;
}

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

std::string TomlQuote(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out = "\"";
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20 || byte == 0x7f) {
      out += "\\u00";
      out += kHex[byte >> 4];
      out += kHex[byte & 15];
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

Position TomlReader::Where(const toml::source_region& source) const {
  if (source.begin.line == 0) return Position{std::string(kCommandLineName), 0, 0};
  return Position{source.path ? *source.path : map_.file(), static_cast<int>(source.begin.line),
                  static_cast<int>(source.begin.column)};
}

void TomlReader::Error(const toml::node& node, const std::string& key, std::string expected,
                       std::string_view hint) {
  map_.MarkBad(key);
  out_.push_back(
      MakeDiagnostic(Where(node.source()), key, std::move(expected), Describe(node), hint));
}

void TomlReader::Report(const toml::node& node, std::string key, std::string message) {
  const Position at = Where(node.source());
  out_.push_back(Diagnostic{at.file, at.line, at.column, std::move(key), std::move(message)});
}

void TomlReader::CheckKeys(const toml::table& table, std::string_view prefix,
                           std::span<const std::string_view> valid, std::string_view where) {
  for (auto&& [name, node] : table) {
    (void)node;
    if (std::find(valid.begin(), valid.end(), name.str()) != valid.end()) continue;
    const std::string key = Join(prefix, name.str());
    map_.MarkBad(key);
    const std::string nearest = NearestName(name.str(), valid);
    std::string message = "unknown key";
    if (!nearest.empty()) message += "; did you mean \"" + nearest + "\"?";
    message += " (valid in " + std::string(where) + ": " + KeyList(valid) + ")";
    const Position at = Where(name.source());
    out_.push_back(Diagnostic{at.file, at.line, at.column, key, std::move(message)});
  }
}

const toml::table* TomlReader::Section(const toml::table& root, std::string_view name,
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

const toml::node* TomlReader::Get(const toml::table& table, std::string_view prefix,
                                  std::string_view name) {
  const toml::node* node = table.get(name);
  if (node != nullptr) map_.Record(Join(prefix, name), Where(node->source()));
  return node;
}

const toml::array* TomlReader::ArrayOfTables(const toml::table& root, std::string_view name) {
  const toml::node* node = Get(root, "", name);
  if (node == nullptr) return nullptr;
  const toml::array* array = node->as_array();
  if (array == nullptr) {
    Error(*node, std::string(name), "an array of tables ([[" + std::string(name) + "]])");
  }
  return array;
}

bool TomlReader::ReadInt(const toml::table& table, std::string_view prefix,
                         std::string_view name, std::int64_t min, std::int64_t max,
                         std::int64_t& out) {
  const toml::node* node = Get(table, prefix, name);
  if (node == nullptr) return false;
  const auto* value = node->as_integer();
  if (value == nullptr || value->get() < min || value->get() > max) {
    Error(*node, Join(prefix, name),
          "an integer from " + std::to_string(min) + " to " + std::to_string(max));
    return false;
  }
  out = value->get();
  return true;
}

void TomlReader::ReadBool(const toml::table& table, std::string_view prefix,
                          std::string_view name, bool& out) {
  const toml::node* node = Get(table, prefix, name);
  if (node == nullptr) return;
  if (const auto* value = node->as_boolean()) {
    out = value->get();
  } else {
    Error(*node, Join(prefix, name), "true or false");
  }
}

void TomlReader::ReadText(const toml::table& table, std::string_view prefix,
                          std::string_view name, std::string (*problem)(std::string_view),
                          std::string& out) {
  const toml::node* node = Get(table, prefix, name);
  if (node == nullptr) return;
  const auto* value = node->as_string();
  if (value == nullptr) {
    // A value no check accepts ("\x01") yields what the key expects in words.
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

void TomlReader::ChoiceError(const toml::node& node, const std::string& key,
                             std::span<const std::string_view> words, std::string_view found,
                             bool is_string) {
  std::string hint;
  if (is_string) {
    if (std::string nearest = NearestName(found, words); !nearest.empty()) {
      hint = "did you mean \"" + nearest + "\"?";
    }
  }
  Error(node, key, ChoiceList(words), hint);
}

void TomlReader::ReadCpus(const toml::table& table, const std::string& prefix,
                          std::string_view name, std::vector<int>& out) {
  const toml::node* node = Get(table, prefix, name);
  if (node == nullptr) return;
  const std::string key = Join(prefix, name);
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
      Error(element, element_key, "a CPU number from 0 to " + std::to_string(limits::kMaxCpuId));
      continue;
    }
    out.push_back(static_cast<int>(value->get()));
  }
}

}  // namespace verdictd::config
