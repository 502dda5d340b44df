// The values of the rule language (rule_parse.cc reads them, rule_print.cc
// writes them back): the words of protocols, TCP flags, conntrack states and
// actions, and the typed getters of rule values. Problems are reported
// through the config library's TomlReader, at the node they were found at,
// in the rule language's own phrasing ("expected ..., found the string
// \"x\""), which its tests and documentation pin. Control plane: allocates.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <toml++/toml.h>

#include "toml_reader.h"
#include "verdictd/config/rule_spec.h"

namespace verdictd::config::rule_syntax {

using Reporter = TomlReader;

// Where `node` was written, as a rule records it.
SourcePosition At(const Reporter& r, const toml::node& node);

// The found part of a rule message: "the string \"x\"", "the integer 5", "true".
std::string DescribeRuleValue(const toml::node& node);

std::string Trim(std::string_view s);

// Calls fn(element) for a single value or for each element of an array.
template <typename Fn>
void ForEachValue(const toml::node& node, Fn&& fn) {
  if (const toml::array* array = node.as_array()) {
    for (const toml::node& element : *array) fn(element);
  } else {
    fn(node);
  }
}

// Each getter reports a bad value under `key` and returns nullopt.
std::optional<std::uint64_t> GetUnsigned(const toml::node& node, std::uint64_t max,
                                         const std::string& key, Reporter& r);
std::optional<bool> GetBool(const toml::node& node, const std::string& key, Reporter& r);
std::optional<std::string> GetString(const toml::node& node, const std::string& key,
                                     Reporter& r);
std::optional<double> GetPositive(const toml::node& node, const std::string& key, Reporter& r);
// An integer 0..max or a string "low-high".
std::optional<ValueRange> ParseRange(const toml::node& node, std::uint32_t max,
                                     const std::string& key, Reporter& r);
// A 32-bit value or "value/mask".
std::optional<MaskedValue> ParseMasked(const toml::node& node, const std::string& key,
                                       Reporter& r);
// "SYN,ACK": the flag bits; `ok` turns false on an unknown name.
std::optional<std::uint8_t> ParseTcpFlagList(std::string_view list, bool& ok);
// "accept", "drop", "repeat", "stop" or "queue:N"; `allow_rules` names
// "rules" too in the message (the caller handles that word).
std::optional<VerdictSpec> ParseVerdict(const toml::node& node, const std::string& key,
                                        Reporter& r, bool allow_rules = false);
std::string VerdictText(const VerdictSpec& v);
// Prefixes go to `cidrs`, "@name" references to `sets`.
void ParseAddresses(const toml::node& node, const std::string& key, std::vector<Cidr>& cidrs,
                    std::vector<std::string>& sets, Reporter& r);
// "de ad:be" -> bytes; `ok` turns false on odd or non-hex digits.
std::string HexDecode(std::string_view hex, bool& ok);

extern const std::pair<std::string_view, std::uint8_t> kProtocols[11];
extern const std::pair<std::string_view, std::uint8_t> kTcpFlags[8];
extern const std::pair<std::string_view, CtState> kCtStates[5];
extern const std::pair<std::string_view, ActionKind> kActions[8];

}  // namespace verdictd::config::rule_syntax
