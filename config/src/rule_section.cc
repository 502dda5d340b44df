// Placeholder until the rule engine defines the rule language: accepts only
// `[rules] include = ["file", ...]`.
#include "rule_section.h"

namespace verdictd::config {

void ParseRulesSection(const toml::table& root, std::string_view file, RulesSection& out,
                       std::vector<Diagnostic>& diagnostics) {
  const toml::node* rules = root.get("rules");
  if (rules == nullptr) return;
  const toml::table* table = rules->as_table();
  if (table == nullptr) {
    diagnostics.push_back({std::string(file), static_cast<int>(rules->source().begin.line),
                           static_cast<int>(rules->source().begin.column), "rules",
                           "expected a table"});
    return;
  }
  if (const toml::array* include = (*table)["include"].as_array()) {
    for (const toml::node& entry : *include) {
      if (auto path = entry.value<std::string>()) out.include_files.push_back(*path);
    }
  }
}

void PrintRulesSection(const RulesSection& rules, toml::table& root) {
  if (rules.include_files.empty()) return;
  toml::array include;
  for (const auto& path : rules.include_files) include.push_back(path);
  root.insert_or_assign("rules", toml::table{{"include", include}});
}

const std::vector<std::string_view>& RuleSectionKeys() {
  static const std::vector<std::string_view> keys{"rules"};
  return keys;
}

}  // namespace verdictd::config
