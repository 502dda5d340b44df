// Reading the rule language's TOML syntax: [[rules]], [sets.NAME],
// rule_files and [rule_engine]. Every problem becomes a Diagnostic naming
// file:line:column, the key (rules[i].key, with the rule's name) and what was
// expected. Each key of a rule has its handler in one table (kRuleKeys); the
// values are read with rule_values.h.
#include "verdictd/config/rule_section.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <span>

#include "rule_values.h"
#include "suggest.h"
#include "verdictd/base/verdict_kind.h"

namespace verdictd::config {
namespace {

using rule_syntax::At;
using rule_syntax::DescribeRuleValue;
using rule_syntax::ForEachValue;
using rule_syntax::GetBool;
using rule_syntax::GetPositive;
using rule_syntax::GetString;
using rule_syntax::GetUnsigned;
using rule_syntax::HexDecode;
using rule_syntax::kActions;
using rule_syntax::kCtStates;
using rule_syntax::kProtocols;
using rule_syntax::ParseAddresses;
using rule_syntax::ParseMasked;
using rule_syntax::ParseRange;
using rule_syntax::ParseTcpFlagList;
using rule_syntax::ParseVerdict;
using rule_syntax::Reporter;

constexpr std::string_view kSetKeys[] = {"prefixes", "file"};
constexpr std::string_view kEngineKeys[] = {"fragments",
                                            "flow_table_size", "rate_table_size", "log_file",
                                            "log_ring", "log_rate"};
constexpr std::string_view kContentKeys[] = {"literal", "hex", "regex", "nocase", "offset",
                                             "depth"};

// " (did you mean 'x'?)" for a key close to a valid one (fewer than 4
// edits, with the distance the loader's suggestions use), else "".
std::string Nearest(std::string_view key, std::span<const std::string_view> valid) {
  std::string_view best;
  std::size_t best_distance = 4;
  for (std::string_view candidate : valid) {
    const std::size_t d = EditDistance(key, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  return best.empty() ? std::string() : " (did you mean '" + std::string(best) + "'?)";
}

void ParseContent(const toml::node& node, const std::string& key, RuleSpec& rule, Reporter& r) {
  ForEachValue(node, [&](const toml::node& element) {
    ContentSpec content;
    content.position = At(r, element);
    if (auto text = element.value_exact<std::string>()) {
      content.pattern = *text;
    } else if (const toml::table* table = element.as_table()) {
      int kinds = 0;
      for (auto&& [k, value] : *table) {
        const std::string sub = key + "." + std::string(k.str());
        if (k == "literal" || k == "regex") {
          if (auto s = GetString(value, sub, r)) content.pattern = *s;
          content.regex = k == "regex";
          ++kinds;
        } else if (k == "hex") {
          bool ok = true;
          if (auto s = GetString(value, sub, r)) {
            content.pattern = HexDecode(*s, ok);
            if (!ok) r.Report(value, sub, "expected pairs of hex digits, found \"" + *s + "\"");
          }
          ++kinds;
        } else if (k == "nocase") {
          if (auto b = GetBool(value, sub, r)) content.nocase = *b;
        } else if (k == "offset") {
          if (auto v = GetUnsigned(value, 65535, sub, r)) content.offset = static_cast<std::uint32_t>(*v);
        } else if (k == "depth") {
          if (auto v = GetUnsigned(value, 65535, sub, r)) content.depth = static_cast<std::uint32_t>(*v);
        } else {
          r.Report(value, sub, "unknown key '" + std::string(k.str()) + "'" +
                                  Nearest(k.str(), kContentKeys));
        }
      }
      if (kinds != 1) {
        r.Report(element, key, "a content table needs exactly one of literal, hex or regex");
        return;
      }
    } else {
      r.Report(element, key, "expected a string or a table {literal|hex|regex, nocase, offset, depth}, found " +
                                DescribeRuleValue(element));
      return;
    }
    if (content.pattern.empty()) {
      r.Report(element, key, "empty pattern");
      return;
    }
    if (!content.regex && content.depth && *content.depth < content.pattern.size()) {
      r.Report(element, key, "depth " + std::to_string(*content.depth) +
                                " is shorter than the literal (" +
                                std::to_string(content.pattern.size()) + " bytes): it can never match");
      return;
    }
    rule.contents.push_back(std::move(content));
  });
}

// What ParseRule knows about the rule being read while its keys are handled.
struct RuleParse {
  RuleSpec& rule;
  Reporter& r;
  std::string prefix;  // "rules[2] (name)."
  std::optional<ActionKind> action;
  bool has_queue = false;
  bool has_rate = false;

  // True when the rule's action is one of `kinds`; otherwise reports that
  // key `name` does not apply (nothing is reported when the action itself is
  // missing or wrong: that has its own message).
  bool RequiresAction(const toml::node& node, std::string_view name,
                      std::initializer_list<ActionKind> kinds) {
    if (!action) return false;
    if (std::find(kinds.begin(), kinds.end(), *action) != kinds.end()) return true;
    const std::string k(name);
    r.Report(node, prefix + k, "'" + k + "' does not apply to this rule's action");
    return false;
  }
};

// Reads one key of a rule: `name` is the key, `full` its path in messages.
using RuleKeyHandler = void (*)(RuleParse& p, const toml::node& value, std::string_view name,
                                const std::string& full);
struct RuleKey {
  std::string_view name;
  RuleKeyHandler parse;
};

void ParseRuleName(RuleParse& p, const toml::node& value, std::string_view,
                   const std::string& full) {
  // The name itself was taken before the keys, to label every message.
  if (!value.is_string()) {
    p.r.Report(value, full, "expected a string, found " + DescribeRuleValue(value));
  }
}

void ParseRuleAction(RuleParse&, const toml::node&, std::string_view, const std::string&) {
  // Read before the other keys, which depend on it.
}

void ParseFamily(RuleParse& p, const toml::node& value, std::string_view,
                 const std::string& full) {
  auto text = value.value_exact<std::string>();
  if (text && (*text == "ipv4" || *text == "inet")) p.rule.family = 4;
  else if (text && (*text == "ipv6" || *text == "inet6")) p.rule.family = 6;
  else p.r.Report(value, full, "expected \"ipv4\" or \"ipv6\", found " + DescribeRuleValue(value));
}

void ParseSrc(RuleParse& p, const toml::node& value, std::string_view, const std::string& full) {
  ParseAddresses(value, full, p.rule.src, p.rule.src_sets, p.r);
}

void ParseDst(RuleParse& p, const toml::node& value, std::string_view, const std::string& full) {
  ParseAddresses(value, full, p.rule.dst, p.rule.dst_sets, p.r);
}

void ParseProtocol(RuleParse& p, const toml::node& value, std::string_view,
                   const std::string& full) {
  ForEachValue(value, [&](const toml::node& element) {
    if (auto number = element.value_exact<std::int64_t>(); number && *number >= 0 && *number <= 255) {
      p.rule.protocols.push_back(static_cast<std::uint8_t>(*number));
      return;
    }
    if (auto text = element.value_exact<std::string>()) {
      for (auto [proto_name, number] : kProtocols) {
        if (*text == proto_name) {
          p.rule.protocols.push_back(number);
          return;
        }
      }
    }
    p.r.Report(element, full, "expected a protocol name (tcp, udp, icmp, icmpv6, sctp, ...) or number 0-255, found " +
                                  DescribeRuleValue(element));
  });
}

void ParsePorts(RuleParse& p, const toml::node& value, std::string_view name,
                const std::string& full) {
  auto& ports = name == "src_ports" ? p.rule.src_ports : p.rule.dst_ports;
  ForEachValue(value, [&](const toml::node& element) {
    if (auto range = ParseRange(element, 65535, full, p.r)) ports.push_back(*range);
  });
}

void ParseTcpFlags(RuleParse& p, const toml::node& value, std::string_view,
                   const std::string& full) {
  auto text = value.value_exact<std::string>();
  bool ok = text.has_value();
  MaskedValue flags{0, 0};
  if (ok) {
    const auto slash = text->find('/');
    flags.value = *ParseTcpFlagList(std::string_view(*text).substr(0, slash), ok);
    flags.mask = slash == std::string::npos
                     ? flags.value
                     : *ParseTcpFlagList(std::string_view(*text).substr(slash + 1), ok);
  }
  if (!ok) {
    p.r.Report(value, full, "expected \"FLAGS/MASK\" of FIN,SYN,RST,PSH,ACK,URG,ECE,CWR (e.g. \"SYN/SYN,ACK\"), found " +
                                DescribeRuleValue(value));
  } else if ((flags.value & ~flags.mask) != 0) {
    p.r.Report(value, full, "contradictory flags \"" + *text + "\": a set flag is not in the mask");
  } else if (flags.mask == 0) {
    p.r.Report(value, full, "empty mask: \"" + *text + "\" would match every TCP packet");
  } else {
    p.rule.tcp_flags = flags;
  }
}

void ParseIcmp(RuleParse& p, const toml::node& value, std::string_view name,
               const std::string& full) {
  if (auto v = GetUnsigned(value, 255, full, p.r)) {
    (name == "icmp_type" ? p.rule.icmp_type : p.rule.icmp_code) = static_cast<std::uint8_t>(*v);
  }
}

void ParseInterfaces(RuleParse& p, const toml::node& value, std::string_view name,
                     const std::string& full) {
  auto& list = name == "in_interface" ? p.rule.in_interfaces : p.rule.out_interfaces;
  ForEachValue(value, [&](const toml::node& element) {
    auto text = element.value_exact<std::string>();
    if (text && !text->empty() && text->size() < 16) list.push_back(*text);
    else p.r.Report(element, full, "expected an interface name (1-15 characters), found " + DescribeRuleValue(element));
  });
}

void ParseAllowUnknown(RuleParse& p, const toml::node& value, std::string_view,
                       const std::string& full) {
  if (auto b = GetBool(value, full, p.r)) p.rule.allow_unknown_interfaces = *b;
}

void ParseMark(RuleParse& p, const toml::node& value, std::string_view, const std::string& full) {
  p.rule.mark = ParseMasked(value, full, p.r);
}

void ParseCtState(RuleParse& p, const toml::node& value, std::string_view,
                  const std::string& full) {
  ForEachValue(value, [&](const toml::node& element) {
    if (auto text = element.value_exact<std::string>()) {
      for (auto [state_name, state] : kCtStates) {
        if (*text == state_name) {
          p.rule.ct_states.push_back(state);
          return;
        }
      }
    }
    p.r.Report(element, full, "expected new, established, related, reply or untracked, found " +
                                  DescribeRuleValue(element));
  });
}

void ParseOwner(RuleParse& p, const toml::node& value, std::string_view name,
                const std::string& full) {
  auto range = ParseRange(value, 0xffffffffu, full, p.r);
  (name == "uid" ? p.rule.uid : p.rule.gid) = range;
}

void ParseLength(RuleParse& p, const toml::node& value, std::string_view,
                 const std::string& full) {
  p.rule.length = ParseRange(value, 65535, full, p.r);
}

void ParseRuleContent(RuleParse& p, const toml::node& value, std::string_view,
                      const std::string& full) {
  ParseContent(value, full, p.rule, p.r);
}

void ParseQueue(RuleParse& p, const toml::node& value, std::string_view name,
                const std::string& full) {
  if (!p.RequiresAction(value, name, {ActionKind::kQueue})) return;
  if (auto v = GetUnsigned(value, 65535, full, p.r)) {
    p.rule.action.queue = static_cast<std::uint16_t>(*v);
  }
  p.has_queue = true;
}

void ParseSetMark(RuleParse& p, const toml::node& value, std::string_view name,
                  const std::string& full) {
  const ActionKind kind = name == "set_mark" ? ActionKind::kMark : ActionKind::kBypass;
  if (!p.RequiresAction(value, name, {kind})) return;
  if (auto m = ParseMasked(value, full, p.r)) p.rule.action.mark = *m;
}

void ParseThen(RuleParse& p, const toml::node& value, std::string_view name,
               const std::string& full) {
  if (!p.RequiresAction(value, name, {ActionKind::kMark})) return;
  auto text = value.value_exact<std::string>();
  const std::optional<PlainVerdict> then = text ? base::ParseVerdictKind(*text) : std::nullopt;
  if (then == PlainVerdict::kAccept || then == PlainVerdict::kRepeat) {
    p.rule.action.then = *then;
  } else {
    p.r.Report(value, full, "expected \"accept\" or \"repeat\", found " + DescribeRuleValue(value));
  }
}

void ParseRate(RuleParse& p, const toml::node& value, std::string_view name,
               const std::string& full) {
  if (!p.RequiresAction(value, name, {ActionKind::kRateLimit})) return;
  if (auto v = GetPositive(value, full, p.r)) {
    (name == "rate" ? p.rule.action.rate : p.rule.action.burst) = *v;
  }
  p.has_rate = p.has_rate || name == "rate";
}

void ParseOverLimit(RuleParse& p, const toml::node& value, std::string_view name,
                    const std::string& full) {
  if (!p.RequiresAction(value, name, {ActionKind::kRateLimit})) return;
  if (auto v = ParseVerdict(value, full, p.r)) p.rule.action.over_limit = *v;
}

void ParseBypassAfter(RuleParse& p, const toml::node& value, std::string_view name,
                      const std::string& full) {
  if (!p.RequiresAction(value, name, {ActionKind::kBypass})) return;
  if (auto v = GetUnsigned(value, std::uint64_t{1} << 62, full, p.r)) {
    (name == "bypass_after_packets" ? p.rule.action.after_packets : p.rule.action.after_bytes) = *v;
  }
}

void ParseBypassVia(RuleParse& p, const toml::node& value, std::string_view name,
                    const std::string& full) {
  if (!p.RequiresAction(value, name, {ActionKind::kBypass})) return;
  auto text = value.value_exact<std::string>();
  if (text && *text == "connmark") p.rule.action.via = BypassVia::kConnmark;
  else if (text && *text == "mark") p.rule.action.via = BypassVia::kMark;
  else p.r.Report(value, full, "expected \"connmark\" or \"mark\", found " + DescribeRuleValue(value));
}

void ParseLog(RuleParse& p, const toml::node& value, std::string_view, const std::string& full) {
  if (auto b = GetBool(value, full, p.r)) p.rule.log = *b;
}

// Every key of a [[rules]] entry; the order is the one an unknown key's
// suggestion prefers on a tie.
constexpr RuleKey kRuleKeys[] = {
    {"name", ParseRuleName},
    {"family", ParseFamily},
    {"src", ParseSrc},
    {"dst", ParseDst},
    {"protocol", ParseProtocol},
    {"src_ports", ParsePorts},
    {"dst_ports", ParsePorts},
    {"tcp_flags", ParseTcpFlags},
    {"icmp_type", ParseIcmp},
    {"icmp_code", ParseIcmp},
    {"in_interface", ParseInterfaces},
    {"out_interface", ParseInterfaces},
    {"allow_unknown_interfaces", ParseAllowUnknown},
    {"mark", ParseMark},
    {"ct_state", ParseCtState},
    {"uid", ParseOwner},
    {"gid", ParseOwner},
    {"length", ParseLength},
    {"content", ParseRuleContent},
    {"action", ParseRuleAction},
    {"queue", ParseQueue},
    {"set_mark", ParseSetMark},
    {"then", ParseThen},
    {"rate", ParseRate},
    {"burst", ParseRate},
    {"over_limit", ParseOverLimit},
    {"bypass_after_packets", ParseBypassAfter},
    {"bypass_after_bytes", ParseBypassAfter},
    {"bypass_via", ParseBypassVia},
    {"bypass_mark", ParseSetMark},
    {"log", ParseLog},
};

const std::vector<std::string_view>& RuleKeyNames() {
  static const std::vector<std::string_view> names = [] {
    std::vector<std::string_view> list;
    for (const RuleKey& key : kRuleKeys) list.push_back(key.name);
    return list;
  }();
  return names;
}

// Which action the rule takes, read first: other keys depend on it.
std::optional<ActionKind> ParseAction(const toml::table& table, const std::string& key,
                                      const std::string& prefix, Reporter& r) {
  const toml::node* action_node = table.get("action");
  std::optional<ActionKind> action;
  if (action_node == nullptr) {
    r.Report(table, key, "missing 'action' (accept, drop, repeat, queue, mark, rate_limit, bypass)");
  } else if (auto text = action_node->value_exact<std::string>()) {
    for (auto [name, kind] : kActions) {
      if (*text == name) action = kind;
    }
    if (!action) {
      r.Report(*action_node, prefix + "action",
               "expected accept, drop, repeat, queue, mark, rate_limit or bypass, found \"" + *text +
                   "\"");
    }
  } else {
    r.Report(*action_node, prefix + "action",
             "expected a string, found " + DescribeRuleValue(*action_node));
  }
  return action;
}

void ParseRule(const toml::table& table, const std::string& key, RuleSpec& rule, Reporter& r) {
  rule.position = At(r, table);
  if (auto name = table["name"].value_exact<std::string>()) rule.name = *name;
  RuleParse p{rule, r, key + (rule.name.empty() ? "" : " (" + rule.name + ")") + ".",
              std::nullopt, false, false};
  const std::size_t errors_before = r.count();
  p.action = ParseAction(table, key, p.prefix, r);
  if (p.action) rule.action.kind = *p.action;
  if (p.action == ActionKind::kBypass) rule.action.mark = MaskedValue{1, 1};

  for (auto&& [k, value] : table) {
    const std::string name(k.str());
    const std::string full = p.prefix + name;
    const auto handler = std::find_if(std::begin(kRuleKeys), std::end(kRuleKeys),
                                      [&](const RuleKey& entry) { return entry.name == name; });
    if (handler != std::end(kRuleKeys)) {
      handler->parse(p, value, name, full);
    } else {
      r.Report(value, full, "unknown key '" + name + "'" + Nearest(name, RuleKeyNames()));
    }
  }
  if (rule.name.empty()) r.Report(table, key, "missing 'name' (every rule needs a unique name)");
  if (p.action == ActionKind::kQueue && !p.has_queue) {
    r.Report(table, p.prefix + "queue", "action \"queue\" needs 'queue = N'");
  }
  if (p.action == ActionKind::kRateLimit) {
    if (!p.has_rate) {
      r.Report(table, p.prefix + "rate", "action \"rate_limit\" needs 'rate' (packets per second)");
    }
    if (rule.action.burst == 0) rule.action.burst = rule.action.rate;
  }
  if (rule.family && r.count() == errors_before) {
    for (const auto* list : {&rule.src, &rule.dst}) {
      for (const Cidr& cidr : *list) {
        if (cidr.family != *rule.family) {
          r.Report(table, p.prefix + "family",
                   "contradiction: family ipv" + std::to_string(*rule.family) +
                       " with the ipv" + std::to_string(cidr.family) + " prefix " + FormatCidr(cidr));
        }
      }
    }
  }
}

void ParseSet(const toml::node& node, const std::string& name, const std::string& key,
              PrefixSetSpec& set, const std::filesystem::path& base, Reporter& r) {
  set.name = name;
  set.position = At(r, node);
  const toml::table* table = node.as_table();
  if (table == nullptr) {
    r.Report(node, key, "expected a table {prefixes = [...], file = \"path\"}, found " + DescribeRuleValue(node));
    return;
  }
  for (auto&& [k, value] : *table) {
    const std::string full = key + "." + std::string(k.str());
    if (k == "prefixes") {
      std::vector<std::string> names;
      ParseAddresses(value, full, set.prefixes, names, r);
      if (!names.empty()) r.Report(value, full, "sets cannot reference other sets");
    } else if (k == "file") {
      if (auto path = GetString(value, full, r)) {
        set.file = std::filesystem::absolute(base / *path).lexically_normal().string();
      }
    } else {
      r.Report(value, full, "unknown key '" + std::string(k.str()) + "'" + Nearest(k.str(), kSetKeys));
    }
  }
}

void ParseRulesAndSets(const toml::table& root, const std::string& file,
                       std::vector<RuleSpec>& rules, std::vector<PrefixSetSpec>& sets,
                       const std::filesystem::path& base, Reporter& r) {
  if (const toml::node* node = root.get("rules")) {
    const toml::array* array = node->as_array();
    if (array == nullptr || !array->is_array_of_tables()) {
      r.Report(*node, "rules", "expected an array of tables ([[rules]]), found " + DescribeRuleValue(*node));
    } else {
      for (std::size_t i = 0; i < array->size(); ++i) {
        RuleSpec rule;
        ParseRule(*(*array)[i].as_table(), "rules[" + std::to_string(i) + "]", rule, r);
        rules.push_back(std::move(rule));
      }
    }
  }
  if (const toml::node* node = root.get("sets")) {
    const toml::table* table = node->as_table();
    if (table == nullptr) {
      r.Report(*node, "sets", "expected a table of sets ([sets.NAME]), found " + DescribeRuleValue(*node));
    } else {
      for (auto&& [k, value] : *table) {
        PrefixSetSpec set;
        ParseSet(value, std::string(k.str()), "sets." + std::string(k.str()), set, base, r);
        sets.push_back(std::move(set));
      }
    }
  }
  (void)file;
}

std::filesystem::path BaseDirectory(std::string_view file) {
  if (file.empty() || file.front() == '<') return std::filesystem::current_path();
  return std::filesystem::absolute(std::filesystem::path(file)).parent_path();
}

void ParseEngine(const toml::node& node, RuleEngineSettings& engine, Reporter& r) {
  const toml::table* table = node.as_table();
  if (table == nullptr) {
    r.Report(node, "rule_engine", "expected a table, found " + DescribeRuleValue(node));
    return;
  }
  for (auto&& [k, value] : *table) {
    const std::string name(k.str());
    const std::string full = "rule_engine." + name;
    if (name == "fragments") {
      if (value.value_exact<std::string>() == std::optional<std::string>("rules")) {
        engine.fragments_use_rules = true;
      } else if (auto v = ParseVerdict(value, full, r, true)) {
        engine.fragments_use_rules = false;
        engine.fragments = *v;
      }
    } else if (name == "flow_table_size" || name == "rate_table_size" || name == "log_ring") {
      if (auto v = GetUnsigned(value, std::uint64_t{1} << 24, full, r)) {
        if (*v == 0) {
          r.Report(value, full, "expected at least 1, found 0");
        } else {
          (name == "flow_table_size" ? engine.flow_table_size
           : name == "rate_table_size" ? engine.rate_table_size
                                       : engine.log_ring) = static_cast<std::uint32_t>(*v);
        }
      }
    } else if (name == "log_file") {
      if (auto s = GetString(value, full, r)) engine.log_file = *s;
    } else if (name == "log_rate") {
      if (auto v = GetPositive(value, full, r)) engine.log_rate = *v;
    } else {
      r.Report(value, full, "unknown key '" + name + "'" + Nearest(name, kEngineKeys));
    }
  }
}

}  // namespace

void ParseRulesSection(const toml::table& root, std::string_view file, RulesSection& out,
                       std::vector<Diagnostic>& diagnostics) {
  const std::size_t first_diagnostic = diagnostics.size();
  Reporter r{std::string(file), diagnostics};
  const std::filesystem::path base = BaseDirectory(file);
  ParseRulesAndSets(root, std::string(file), out.rules, out.sets, base, r);
  if (const toml::node* node = root.get("rule_engine")) ParseEngine(*node, out.engine, r);
  if (const toml::node* node = root.get("rule_files")) {
    ForEachValue(*node, [&](const toml::node& element) {
      auto path = element.value_exact<std::string>();
      if (!path) {
        r.Report(element, "rule_files", "expected a file name, found " + DescribeRuleValue(element));
        return;
      }
      const std::string resolved = std::filesystem::absolute(base / *path).lexically_normal().string();
      out.include_files.push_back(resolved);
      toml::table included;
      if (std::ifstream probe(resolved); !probe) {
        r.Report(element, "rule_files", "cannot read rule file '" + resolved + "' (check the path and permissions)");
        return;
      }
      try {
        included = toml::parse_file(resolved);
      } catch (const toml::parse_error& error) {
        diagnostics.push_back({resolved, static_cast<int>(error.source().begin.line),
                               static_cast<int>(error.source().begin.column), "rule_files",
                               std::string(error.description())});
        return;
      } catch (const std::exception& error) {
        r.Report(element, "rule_files", "cannot read rule file '" + resolved + "': " + error.what());
        return;
      }
      Reporter inner{resolved, diagnostics};
      for (auto&& [k, value] : included) {
        if (k != "rules" && k != "sets") {
          inner.Report(value, std::string(k.str()),
                      "unknown key in a rule file (only [[rules]] and [sets.NAME] belong here)");
        }
      }
      ParseRulesAndSets(included, resolved, out.included_rules, out.included_sets,
                        std::filesystem::path(resolved).parent_path(), inner);
    });
  }

  // Names are unique (they label metrics and logs); set references resolve.
  std::map<std::string, const RuleSpec*> rule_names;
  for (const auto* list : {&out.rules, &out.included_rules}) {
    for (const RuleSpec& rule : *list) {
      if (rule.name.empty()) continue;
      auto [it, inserted] = rule_names.emplace(rule.name, &rule);
      if (!inserted) {
        diagnostics.push_back({rule.position.file, rule.position.line, rule.position.column,
                               "rules (" + rule.name + ").name",
                               "duplicate rule name '" + rule.name + "' (first at " +
                                   it->second->position.file + ":" +
                                   std::to_string(it->second->position.line) + ")"});
      }
    }
  }
  std::set<std::string> set_names;
  for (const auto* list : {&out.sets, &out.included_sets}) {
    for (const PrefixSetSpec& set : *list) {
      if (!set_names.insert(set.name).second) {
        diagnostics.push_back({set.position.file, set.position.line, set.position.column,
                               "sets." + set.name, "duplicate set name '" + set.name + "'"});
      }
    }
  }
  for (const auto* list : {&out.rules, &out.included_rules}) {
    for (const RuleSpec& rule : *list) {
      for (const auto* names : {&rule.src_sets, &rule.dst_sets}) {
        for (const std::string& name : *names) {
          if (set_names.count(name) == 0) {
            diagnostics.push_back({rule.position.file, rule.position.line, rule.position.column,
                                   "rules (" + rule.name + ")",
                                   "unknown set '@" + name + "' (define it as [sets." + name + "])"});
          }
        }
      }
    }
  }
  // Report in source order: files in the order they were read, then line, column.
  std::vector<std::string> files;
  for (std::size_t i = first_diagnostic; i < diagnostics.size(); ++i) {
    if (std::find(files.begin(), files.end(), diagnostics[i].file) == files.end()) {
      files.push_back(diagnostics[i].file);
    }
  }
  auto file_rank = [&](const std::string& f) { return std::find(files.begin(), files.end(), f) - files.begin(); };
  std::stable_sort(diagnostics.begin() + static_cast<std::ptrdiff_t>(first_diagnostic), diagnostics.end(),
                   [&](const Diagnostic& a, const Diagnostic& b) {
                     const auto fa = file_rank(a.file), fb = file_rank(b.file);
                     if (fa != fb) return fa < fb;
                     if (a.line != b.line) return a.line < b.line;
                     return a.column < b.column;
                   });
}

const std::vector<std::string_view>& RuleSectionKeys() {
  static const std::vector<std::string_view> keys{"rules", "sets", "rule_files", "rule_engine"};
  return keys;
}

}  // namespace verdictd::config
