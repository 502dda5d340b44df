// The one TOML reader every section of the file is read with: typed getters
// that record where each key was written and turn every problem into a
// Diagnostic (file:line:column, key, "expected ..., found ..."), and the
// unknown-key check with its nearest-key suggestion. Control plane: it
// allocates and never throws for problems in the input.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "checks.h"
#include "verdictd/config/config.h"
#include "verdictd/config/diagnostic.h"

namespace verdictd::config {

// "queues[0]" + "count" -> "queues[0].count"; an empty prefix gives the name.
std::string Join(std::string_view prefix, std::string_view name);

// The found part of a message: "integer 70000", "string \"fast\"", "a table".
std::string Describe(const toml::node& node);

// "one of \"a\", \"b\"" and "a, b": the expected part of choice and key messages.
std::string ChoiceList(std::span<const std::string_view> words);
std::string KeyList(std::span<const std::string_view> keys);

// A TOML basic string ("..."), escaped: how values are printed.
std::string TomlQuote(std::string_view text);

class TomlReader {
 public:
  TomlReader(std::string_view file, std::vector<Diagnostic>& out) : map_(file), out_(out) {}

  const SourceMap& map() const { return map_; }
  SourceMap& map() { return map_; }
  std::size_t count() const { return out_.size(); }

  // Where `source` begins; nodes from a command-line override have no line.
  Position Where(const toml::source_region& source) const;

  // "expected <expected>, found <what node is>[; hint]", and `key` is
  // remembered as bad so that the cross-field checks skip it.
  void Error(const toml::node& node, const std::string& key, std::string expected,
             std::string_view hint = {});
  // A message written whole by the caller, at `node`.
  void Report(const toml::node& node, std::string key, std::string message);

  // One "unknown key" diagnostic per key of `table` not in `valid`.
  void CheckKeys(const toml::table& table, std::string_view prefix,
                 std::span<const std::string_view> valid, std::string_view where);
  // root[name] as a table whose keys are checked against `keys`; nullptr when
  // absent or not a table (then reported).
  const toml::table* Section(const toml::table& root, std::string_view name,
                             std::span<const std::string_view> keys);
  // table[name], its position recorded; nullptr when absent.
  const toml::node* Get(const toml::table& table, std::string_view prefix,
                        std::string_view name);
  // root[name] as an array of tables ([[name]]); nullptr when absent or not
  // an array (then reported).
  const toml::array* ArrayOfTables(const toml::table& root, std::string_view name);

  // Each getter leaves `out` alone when the key is absent or wrong.
  bool ReadInt(const toml::table& table, std::string_view prefix, std::string_view name,
               std::int64_t min, std::int64_t max, std::int64_t& out);
  void ReadBool(const toml::table& table, std::string_view prefix, std::string_view name,
                bool& out);
  void ReadText(const toml::table& table, std::string_view prefix, std::string_view name,
                std::string (*problem)(std::string_view), std::string& out);
  // A word of `words`, turned into a value by `parse`; a near miss is named.
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
    ChoiceError(*node, Join(prefix, name), words, value ? value->get() : std::string_view{},
                value != nullptr);
  }
  void ReadCpus(const toml::table& table, const std::string& prefix, std::string_view name,
                std::vector<int>& out);

 private:
  void ChoiceError(const toml::node& node, const std::string& key,
                   std::span<const std::string_view> words, std::string_view found,
                   bool is_string);

  SourceMap map_;
  std::vector<Diagnostic>& out_;
};

}  // namespace verdictd::config
