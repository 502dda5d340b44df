// The compiled rule set's data (private to rules/). Immutable after
// Compile(); read concurrently by every worker's RuleEngine.
#pragma once

#include <hs/hs.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "verdictd/config/rule_spec.h"
#include "verdictd/rules/rule_set.h"

namespace verdictd::rules {

// Indexed fields. Address fields have one table per family.
enum Field : int { kSrc4, kDst4, kSrc6, kDst6, kProto, kSrcPort, kDstPort, kFieldCount };
// Logical fields a rule constrains (address fields count once for both families).
enum LogicalField : std::uint8_t {
  kLogicalSrc = 1 << 0,
  kLogicalDst = 1 << 1,
  kLogicalProto = 1 << 2,
  kLogicalSrcPort = 1 << 3,
  kLogicalDstPort = 1 << 4,
};

// Maps a field value to an equivalence class, and a class to the sorted ids
// of the rules that name the field and match it.
struct FieldIndex {
  bool used = false;  // some rule names this field
  std::vector<std::uint32_t> wildcard;  // rules that do not name it (sorted)
  std::vector<std::uint32_t> class_begin;  // class c: ids[class_begin[c], class_begin[c+1])
  std::vector<std::uint32_t> ids;

  // Address fields: sorted interval starts (v4: one word; v6: two words per
  // start, high then low) and each interval's rule list; top[h] is the first
  // interval whose start's top `index_bits` bits are >= h (2^index_bits + 1
  // entries), so a lookup binary-searches only one small bucket. index_bits
  // grows with the number of intervals.
  struct IntervalList {
    std::uint32_t count = 0;
    std::uint32_t value = 0;  // count 1: the rule itself; otherwise an offset into ids
  };
  int index_bits = 12;
  std::vector<std::uint32_t> top;
  std::vector<std::uint32_t> starts4;
  std::vector<std::uint64_t> starts6;
  std::vector<IntervalList> interval_lists;

  std::span<const std::uint32_t> IntervalIds(std::size_t interval) const noexcept {
    const IntervalList& list = interval_lists[interval];
    if (list.count == 1) return {&list.value, 1};
    return {ids.data() + list.value, list.count};
  }
  // Protocol (256) and port (65536 + 1 for "no port") tables.
  std::vector<std::uint32_t> table;

  std::span<const std::uint32_t> ClassIds(std::uint32_t c) const noexcept {
    return {ids.data() + class_begin[c], ids.data() + class_begin[c + 1]};
  }
};

struct Action {
  config::ActionKind kind = config::ActionKind::kAccept;
  std::uint16_t queue = 0;
  std::uint32_t mark_value = 0;
  std::uint32_t mark_mask = 0;
  config::PlainVerdict then = config::PlainVerdict::kAccept;
  double rate = 0;   // tokens per nanosecond * 1e9 (per second)
  double burst = 0;
  config::VerdictSpec over_limit;
  std::uint64_t after_packets = 0;
  std::uint64_t after_bytes = 0;
  config::BypassVia via = config::BypassVia::kConnmark;
};

struct Range32 {
  std::uint32_t low = 0;
  std::uint32_t high = 0;
};

struct CompiledRule {
  std::string name;
  config::SourcePosition position;
  std::uint8_t constrains = 0;  // LogicalField bits
  std::uint8_t family = 0;      // 0: any
  bool needs_l4 = false;        // ports, flags or ICMP: fragments cannot match
  bool has_tcp_flags = false;
  std::uint8_t tcp_flags_mask = 0;
  std::uint8_t tcp_flags_value = 0;
  bool has_icmp_type = false;
  bool has_icmp_code = false;
  std::uint8_t icmp_type = 0;
  std::uint8_t icmp_code = 0;
  std::vector<std::uint32_t> in_interfaces;  // resolved indexes (0: unknown, never matches)
  std::vector<std::uint32_t> out_interfaces;
  bool has_mark = false;
  std::uint32_t mark_value = 0;
  std::uint32_t mark_mask = 0;
  std::uint8_t ct_states = 0;  // bit per config::CtState; 0: not asked
  bool has_uid = false, has_gid = false, has_length = false;
  Range32 uid, gid, length;
  std::vector<std::uint32_t> patterns;  // Hyperscan ids that must all be found
  Action action;
  bool log = false;
  bool residual = false;  // any condition beyond the indexed fields
};

// What candidate checks touch first, one cache line per rule: protocol and
// ports are checked here directly (no list lookups); addresses go through
// the address classes' rule lists.
struct alignas(64) HotRule {
  static constexpr int kInlineRanges = 3;
  std::uint8_t constrains = 0;  // LogicalField bits that need a list lookup (addresses)
  bool residual = false;        // see CompiledRule
  bool has_proto = false;
  std::uint8_t src_port_ranges = 0;  // 0: any
  std::uint8_t dst_port_ranges = 0;
  bool port_lists = false;  // more ranges than fit inline: use the field lists
  std::uint16_t src_low[kInlineRanges] = {}, src_high[kInlineRanges] = {};
  std::uint16_t dst_low[kInlineRanges] = {}, dst_high[kInlineRanges] = {};
  std::uint64_t proto_bits[4] = {};
};

struct HsDatabaseDeleter {
  void operator()(hs_database_t* db) const noexcept { hs_free_database(db); }
};

class RuleSet {
 public:
  std::vector<CompiledRule> rules;
  std::vector<HotRule> hot;
  std::array<FieldIndex, kFieldCount> fields;
  std::vector<std::uint32_t> all_rules;  // 0..n-1, for sets that index nothing
  std::unique_ptr<hs_database_t, HsDatabaseDeleter> database;
  std::uint32_t pattern_count = 0;
  config::RuleEngineSettings settings;
  config::VerdictSetting no_match;
  config::VerdictSetting unparseable;
  std::size_t prefix_count = 0;  // prefixes in the address tables, for reports
  // Rule names (unique) to indexes: how a reload's engine finds the rule an
  // old engine's rate bucket or flow entry belonged to.
  std::unordered_map<std::string_view, std::uint32_t> rule_by_name;

  // The index of the rule named `name`, -1 when there is none. No allocation.
  std::int32_t FindRule(std::string_view name) const noexcept {
    const auto it = rule_by_name.find(name);
    return it == rule_by_name.end() ? -1 : static_cast<std::int32_t>(it->second);
  }
};

}  // namespace verdictd::rules
