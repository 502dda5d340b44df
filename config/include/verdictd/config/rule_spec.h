// The rules section of the configuration as written: names, conditions and
// actions as plain values with their source position. The rule engine
// (service/rules) compiles these; this header only describes them.
#pragma once

#include <string>
#include <vector>

namespace verdictd::config {

struct RulesSection {
  std::vector<std::string> include_files;  // rule files read in order after the inline rules
  bool operator==(const RulesSection&) const = default;
};

}  // namespace verdictd::config
