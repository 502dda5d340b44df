// Parses and prints the rules part of the configuration file. Owned by the
// rule engine's authors; the config loader calls these for the `rules` and
// `sets` keys so that one file and one error report cover everything.
#pragma once

#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "verdictd/config/diagnostic.h"
#include "verdictd/config/rule_spec.h"

namespace verdictd::config {

// `root` is the whole document; reads only the keys the rules section owns
// (see RuleSectionKeys()) and appends every problem to `diagnostics`.
void ParseRulesSection(const toml::table& root, std::string_view file, RulesSection& out,
                       std::vector<Diagnostic>& diagnostics);

// Writes `rules` back into `root` so that parsing the result gives `rules` again.
void PrintRulesSection(const RulesSection& rules, toml::table& root);

// Top-level keys owned by the rules section (the loader treats the rest).
const std::vector<std::string_view>& RuleSectionKeys();

}  // namespace verdictd::config
