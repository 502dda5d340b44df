// A compiled, immutable rule set: the configuration's rules turned into
// lookup structures whose cost per packet does not grow with the number of
// rules for the header fields.
//
// How a packet is matched (see docs/rules.md):
//  - Five fields are indexed: source and destination address (sorted interval
//    tables per family, with a direct index on the top 16 bits), protocol
//    (a 256-entry table), source and destination port (65536-entry tables).
//    Each lookup gives an equivalence class and with it the sorted list of the
//    rules that name that field and match the value. Rules that do not name a
//    field are that field's wildcard list.
//  - The field whose (class list + wildcard list) is shortest drives the
//    search: its rules are visited in rule order, each checked against the
//    other fields (binary search in their class lists) and its remaining
//    conditions. The first that passes decides.
//  - Payload content of all rules is one Hyperscan database; it is scanned at
//    most once per packet, and only when a candidate rule with content passed
//    every header condition.
//
// Compile() runs on the control plane (allocates, may read set files); a
// RuleSet is then shared read-only by every worker's RuleEngine.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "verdictd/config/config.h"
#include "verdictd/config/diagnostic.h"
#include "verdictd/config/rule_spec.h"

namespace verdictd::rules {

class RuleSet;

struct CompileOptions {
  // Resolves an interface name to its index (0: unknown). Default: if_nametoindex.
  std::function<std::uint32_t(const std::string&)> resolve_interface;
  // Unknown interfaces are not errors for any rule (offline replay); such a
  // condition never matches.
  bool allow_unknown_interfaces = false;
  // Packets no rule matches, and packets whose headers cannot be parsed
  // (CompileConfig() takes them from [verdict] default and unparseable).
  config::VerdictSetting no_match;
  config::VerdictSetting unparseable;
};

struct CompileResult {
  std::shared_ptr<const RuleSet> rules;   // null when diagnostics is not empty
  std::vector<config::Diagnostic> diagnostics;
};

// Never throws for problems in the rules: every one becomes a diagnostic with
// the file, line, rule name and what to do.
CompileResult Compile(const config::RulesSection& section, const CompileOptions& options = {});

// Compile() of a whole configuration: its rules, with [verdict] default and
// unparseable as the no-match and unparseable verdicts.
CompileResult CompileConfig(const config::Config& config, CompileOptions options = {});

// Compile() for callers that want an exception: the message lists every
// diagnostic, one per line ("file:line:column: key: message").
class CompileError : public std::runtime_error {
 public:
  explicit CompileError(std::vector<config::Diagnostic> diagnostics);
  const std::vector<config::Diagnostic>& diagnostics() const noexcept { return diagnostics_; }

 private:
  std::vector<config::Diagnostic> diagnostics_;
};
std::shared_ptr<const RuleSet> CompileOrThrow(const config::RulesSection& section,
                                              const CompileOptions& options = {});

std::string FormatDiagnostic(const config::Diagnostic& diagnostic);

}  // namespace verdictd::rules
