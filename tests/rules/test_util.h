// Compiles rules written as TOML for the tests.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "verdictd/config/rule_section.h"
#include "verdictd/rules/rule_set.h"

namespace verdictd::rules::testing {

inline config::RulesSection ParseSection(std::string_view text, std::vector<config::Diagnostic>& diagnostics,
                                         std::string file = "test.toml") {
  config::RulesSection section;
  toml::table table = toml::parse(text, file);
  config::ParseRulesSection(table, file, section, diagnostics);
  return section;
}

inline std::string Joined(const std::vector<config::Diagnostic>& diagnostics) {
  std::string out;
  for (const auto& d : diagnostics) out += FormatDiagnostic(d) + "\n";
  return out;
}

inline std::shared_ptr<const RuleSet> CompileText(std::string_view text, CompileOptions options = {}) {
  std::vector<config::Diagnostic> diagnostics;
  config::RulesSection section = ParseSection(text, diagnostics);
  EXPECT_TRUE(diagnostics.empty()) << Joined(diagnostics);
  CompileResult result = Compile(section, options);
  EXPECT_TRUE(result.diagnostics.empty()) << Joined(result.diagnostics);
  return result.rules;
}

}  // namespace verdictd::rules::testing
