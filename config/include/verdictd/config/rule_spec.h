// The rules part of the configuration as written: ordered rules (name, match
// conditions, action), named prefix sets, included rule files and the rule
// engine's settings, as plain typed values with their source position.
//
// The config loader fills this (see src/rule_section.h); the rule engine
// (rules/) compiles it into lookup structures. Syntax errors (bad CIDR,
// bad port range, unknown action) are caught while parsing; what needs the
// machine or a compiler (interface names, regexes, set files) is checked when
// the rule engine compiles. Plain data: copyable, comparable.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "verdictd/base/verdict_kind.h"

namespace verdictd::config {

// Where something was written: "file:line:column".
struct SourcePosition {
  std::string file;
  int line = 0;
  int column = 0;
  // Where a rule was written does not make two configurations differ (a
  // printed configuration loads back equal although its lines moved).
  bool operator==(const SourcePosition&) const { return true; }
};

// An IPv4 or IPv6 prefix. IPv4 addresses use the first 4 bytes of `bytes`.
struct Cidr {
  std::uint8_t family = 4;  // 4 or 6
  std::uint8_t prefix_length = 0;
  std::array<std::uint8_t, 16> bytes{};  // bits past prefix_length are zero
  bool operator==(const Cidr&) const = default;
};

// An inclusive range of integers (a port range, a length range, a uid range).
struct ValueRange {
  std::uint32_t low = 0;
  std::uint32_t high = 0;
  bool operator==(const ValueRange&) const = default;
};

// A value under a mask: matches x when (x & mask) == value.
struct MaskedValue {
  std::uint32_t value = 0;
  std::uint32_t mask = 0xffffffffu;
  bool operator==(const MaskedValue&) const = default;
};

// Conntrack states a rule may ask for.
enum class CtState : std::uint8_t { kNew, kEstablished, kRelated, kReply, kUntracked };

// One payload pattern. All the patterns of a rule must be found (AND).
struct ContentSpec {
  bool regex = false;       // false: `pattern` is a literal byte string
  std::string pattern;      // literal bytes or the regular expression
  bool nocase = false;
  std::uint32_t offset = 0;  // the match starts at or after this L4 payload offset
  std::optional<std::uint32_t> depth;  // ... and ends within offset+depth bytes
  SourcePosition position;
  bool operator==(const ContentSpec&) const = default;
};

enum class ActionKind : std::uint8_t {
  kAccept,
  kDrop,
  kRepeat,
  kQueue,
  kMark,       // set mark (value/mask), then accept or repeat
  kRateLimit,  // token bucket per source address; over the rate: over_limit
  kBypass,     // accept, and mark the flow so the firewall stops queueing it
  kInspect,    // hand the packet to the extension chain (accept without one)
};

// A plain verdict as the rule engine's settings and actions name it: one of
// the project's verdict kinds (base/verdict_kind.h).
using PlainVerdict = base::VerdictKind;
struct VerdictSpec {
  PlainVerdict kind = PlainVerdict::kAccept;
  std::uint16_t queue = 0;  // kQueue only
  bool operator==(const VerdictSpec&) const = default;
};

enum class BypassVia : std::uint8_t { kConnmark, kMark };

struct ActionSpec {
  ActionKind kind = ActionKind::kAccept;
  std::uint16_t queue = 0;  // kQueue
  // kMark: the mark to set; kBypass: the (conn)mark to set.
  MaskedValue mark{1, 0xffffffffu};
  PlainVerdict then = PlainVerdict::kAccept;  // kMark: accept or repeat
  // kRateLimit: packets per second and burst per source address.
  double rate = 0;
  double burst = 0;
  VerdictSpec over_limit{PlainVerdict::kDrop, 0};
  // kBypass: bypass once a flow has passed this many packets or bytes (0 and
  // 0: at once).
  std::uint64_t after_packets = 0;
  std::uint64_t after_bytes = 0;
  BypassVia via = BypassVia::kConnmark;
  bool operator==(const ActionSpec&) const = default;
};

struct RuleSpec {
  std::string name;
  SourcePosition position;  // the [[rules]] table

  std::optional<std::uint8_t> family;  // 4 or 6
  std::vector<Cidr> src;                // any of these or of src_sets
  std::vector<std::string> src_sets;    // names of [sets.NAME]
  std::vector<Cidr> dst;
  std::vector<std::string> dst_sets;
  std::vector<std::uint8_t> protocols;  // IP protocol numbers
  std::vector<ValueRange> src_ports;
  std::vector<ValueRange> dst_ports;
  std::optional<MaskedValue> tcp_flags;  // (flags & mask) == value
  std::optional<std::uint8_t> icmp_type;  // ICMP or ICMPv6 per the packet
  std::optional<std::uint8_t> icmp_code;
  std::vector<std::string> in_interfaces;
  std::vector<std::string> out_interfaces;
  bool allow_unknown_interfaces = false;
  std::optional<MaskedValue> mark;
  std::vector<CtState> ct_states;
  std::optional<ValueRange> uid;
  std::optional<ValueRange> gid;
  std::optional<ValueRange> length;  // the packet's original length in bytes
  std::vector<ContentSpec> contents;

  ActionSpec action;
  bool log = false;

  bool operator==(const RuleSpec&) const = default;
};

// A named set of prefixes: inline, from a file (one prefix per line, `#`
// comments), or both.
struct PrefixSetSpec {
  std::string name;
  SourcePosition position;
  std::vector<Cidr> prefixes;
  std::string file;  // absolute path (resolved against the including file's
                     // directory); loaded when the rules are compiled
  bool operator==(const PrefixSetSpec&) const = default;
};

struct RuleEngineSettings {
  static constexpr std::uint32_t kDefaultFlowTableSize = 65536;
  static constexpr std::uint32_t kDefaultRateTableSize = 65536;
  static constexpr std::uint32_t kDefaultLogRing = 4096;
  static constexpr double kDefaultLogRate = 1000;

  // Non-first fragments have no L4 header: "rules" (match rules that need no
  // L4 field; false) or the given verdict.
  bool fragments_use_rules = true;
  VerdictSpec fragments{PlainVerdict::kAccept, 0};
  // No rule matching and unparseable headers take [verdict] default and
  // [verdict] unparseable.
  std::uint32_t flow_table_size = kDefaultFlowTableSize;      // per worker
  std::uint32_t rate_table_size = kDefaultRateTableSize;      // per worker
  std::string log_file = "-";  // "-": stdout
  std::uint32_t log_ring = kDefaultLogRing;  // lines buffered per worker
  double log_rate = kDefaultLogRate;         // lines per second per worker
  bool operator==(const RuleEngineSettings&) const = default;
};

struct RulesSection {
  // Inline [[rules]], in order.
  std::vector<RuleSpec> rules;
  // `rule_files = [...]` as written and resolved against the config's directory.
  std::vector<std::string> include_files;
  // The rules read from include_files (in order, after the inline rules).
  // Filled by the parser; never printed back (rule_files are).
  std::vector<RuleSpec> included_rules;
  std::vector<PrefixSetSpec> sets;           // inline [sets.NAME]
  std::vector<PrefixSetSpec> included_sets;  // [sets.NAME] of rule files
  RuleEngineSettings engine;

  bool operator==(const RulesSection&) const = default;
};

// "10.0.0.0/8", "192.0.2.1" (a /32), "2001:db8::/32". Bits past the prefix
// length are an error (the message suggests the masked prefix).
bool ParseCidr(std::string_view text, Cidr& out, std::string& error);
std::string FormatCidr(const Cidr& cidr);

}  // namespace verdictd::config
