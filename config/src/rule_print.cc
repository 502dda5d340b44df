// Printing the rules part of a Config back as TOML, so that loading the
// result gives the same rules (--print-config round-trips).
#include "verdictd/config/rule_section.h"

#include <algorithm>
#include <cstdio>

#include "rule_values.h"
#include "verdictd/base/verdict_kind.h"

namespace verdictd::config {

namespace {

using rule_syntax::kActions;
using rule_syntax::kCtStates;
using rule_syntax::kTcpFlags;
using rule_syntax::VerdictText;

toml::array RangesToArray(const std::vector<ValueRange>& ranges) {
  toml::array array;
  for (const ValueRange& range : ranges) {
    if (range.low == range.high) array.push_back(static_cast<std::int64_t>(range.low));
    else array.push_back(std::to_string(range.low) + "-" + std::to_string(range.high));
  }
  return array;
}

std::string RangeText(const ValueRange& range) {
  return std::to_string(range.low) + "-" + std::to_string(range.high);
}

std::string MaskedText(const MaskedValue& m) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "0x%x/0x%x", m.value, m.mask);
  return buffer;
}

std::string FlagsText(std::uint8_t flags) {
  std::string out;
  for (auto [name, bit] : kTcpFlags) {
    if (flags & bit) out += (out.empty() ? "" : ",") + std::string(name);
  }
  return out;
}

toml::array AddressArray(const std::vector<Cidr>& cidrs, const std::vector<std::string>& sets) {
  toml::array array;
  for (const Cidr& cidr : cidrs) array.push_back(FormatCidr(cidr));
  for (const std::string& set : sets) array.push_back("@" + set);
  return array;
}

bool Printable(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

toml::table RuleToTable(const RuleSpec& rule) {
  toml::table t;
  t.insert("name", rule.name);
  if (rule.family) t.insert("family", *rule.family == 4 ? "ipv4" : "ipv6");
  if (!rule.src.empty() || !rule.src_sets.empty()) t.insert("src", AddressArray(rule.src, rule.src_sets));
  if (!rule.dst.empty() || !rule.dst_sets.empty()) t.insert("dst", AddressArray(rule.dst, rule.dst_sets));
  if (!rule.protocols.empty()) {
    toml::array array;
    for (auto p : rule.protocols) array.push_back(static_cast<std::int64_t>(p));
    t.insert("protocol", array);
  }
  if (!rule.src_ports.empty()) t.insert("src_ports", RangesToArray(rule.src_ports));
  if (!rule.dst_ports.empty()) t.insert("dst_ports", RangesToArray(rule.dst_ports));
  if (rule.tcp_flags) {
    t.insert("tcp_flags", FlagsText(static_cast<std::uint8_t>(rule.tcp_flags->value)) + "/" +
                              FlagsText(static_cast<std::uint8_t>(rule.tcp_flags->mask)));
  }
  if (rule.icmp_type) t.insert("icmp_type", static_cast<std::int64_t>(*rule.icmp_type));
  if (rule.icmp_code) t.insert("icmp_code", static_cast<std::int64_t>(*rule.icmp_code));
  for (const auto& [key, list] : {std::pair{"in_interface", &rule.in_interfaces},
                                  std::pair{"out_interface", &rule.out_interfaces}}) {
    if (list->empty()) continue;
    toml::array array;
    for (const auto& name : *list) array.push_back(name);
    t.insert(key, array);
  }
  if (rule.allow_unknown_interfaces) t.insert("allow_unknown_interfaces", true);
  if (rule.mark) t.insert("mark", MaskedText(*rule.mark));
  if (!rule.ct_states.empty()) {
    toml::array array;
    for (CtState state : rule.ct_states) {
      for (auto [name, s] : kCtStates) {
        if (s == state) array.push_back(std::string(name));
      }
    }
    t.insert("ct_state", array);
  }
  if (rule.uid) t.insert("uid", RangeText(*rule.uid));
  if (rule.gid) t.insert("gid", RangeText(*rule.gid));
  if (rule.length) t.insert("length", RangeText(*rule.length));
  if (!rule.contents.empty()) {
    toml::array array;
    for (const ContentSpec& c : rule.contents) {
      toml::table entry;
      if (c.regex) {
        entry.insert("regex", c.pattern);
      } else if (Printable(c.pattern)) {
        entry.insert("literal", c.pattern);
      } else {
        std::string hex;
        char buffer[4];
        for (unsigned char byte : c.pattern) {
          std::snprintf(buffer, sizeof buffer, "%02x", byte);
          hex += buffer;
        }
        entry.insert("hex", hex);
      }
      if (c.nocase) entry.insert("nocase", true);
      if (c.offset) entry.insert("offset", static_cast<std::int64_t>(c.offset));
      if (c.depth) entry.insert("depth", static_cast<std::int64_t>(*c.depth));
      array.push_back(std::move(entry));
    }
    t.insert("content", array);
  }
  const ActionSpec& a = rule.action;
  for (auto [name, kind] : kActions) {
    if (kind == a.kind) t.insert("action", std::string(name));
  }
  switch (a.kind) {
    case ActionKind::kQueue: t.insert("queue", static_cast<std::int64_t>(a.queue)); break;
    case ActionKind::kMark:
      t.insert("set_mark", MaskedText(a.mark));
      t.insert("then", std::string(base::VerdictKindName(a.then)));
      break;
    case ActionKind::kRateLimit:
      t.insert("rate", a.rate);
      t.insert("burst", a.burst);
      t.insert("over_limit", VerdictText(a.over_limit));
      break;
    case ActionKind::kBypass:
      t.insert("bypass_mark", MaskedText(a.mark));
      t.insert("bypass_after_packets", static_cast<std::int64_t>(a.after_packets));
      t.insert("bypass_after_bytes", static_cast<std::int64_t>(a.after_bytes));
      t.insert("bypass_via", a.via == BypassVia::kMark ? "mark" : "connmark");
      break;
    default: break;
  }
  if (rule.log) t.insert("log", true);
  return t;
}

}  // namespace

void PrintRulesSection(const RulesSection& rules, toml::table& root) {
  if (!rules.rules.empty()) {
    toml::array array;
    for (const RuleSpec& rule : rules.rules) array.push_back(RuleToTable(rule));
    root.insert_or_assign("rules", std::move(array));
  }
  if (!rules.sets.empty()) {
    toml::table sets;
    for (const PrefixSetSpec& set : rules.sets) {
      toml::table entry;
      if (!set.prefixes.empty()) entry.insert("prefixes", AddressArray(set.prefixes, {}));
      if (!set.file.empty()) entry.insert("file", set.file);
      sets.insert(set.name, std::move(entry));
    }
    root.insert_or_assign("sets", std::move(sets));
  }
  if (!rules.include_files.empty()) {
    toml::array files;
    for (const auto& path : rules.include_files) files.push_back(path);
    root.insert_or_assign("rule_files", std::move(files));
  }
  const RuleEngineSettings& e = rules.engine;
  if (e == RuleEngineSettings{}) return;  // defaults: documented in docs/rules.md
  toml::table engine;
  engine.insert("fragments", e.fragments_use_rules ? std::string("rules") : VerdictText(e.fragments));
  engine.insert("flow_table_size", static_cast<std::int64_t>(e.flow_table_size));
  engine.insert("rate_table_size", static_cast<std::int64_t>(e.rate_table_size));
  engine.insert("log_file", e.log_file);
  engine.insert("log_ring", static_cast<std::int64_t>(e.log_ring));
  engine.insert("log_rate", e.log_rate);
  root.insert_or_assign("rule_engine", std::move(engine));
}

}  // namespace verdictd::config
