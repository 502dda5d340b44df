// The per-worker side of the rule engine: decides one packet against a
// compiled RuleSet and carries the worker's own state (Hyperscan scratch,
// rate-limit buckets, bypass flow table, per-rule counters).
//
// One RuleEngine per worker, used only on that worker's thread. The
// constructor allocates everything (control plane, may throw); Decide() is
// noexcept, takes no lock, allocates nothing and makes no syscall except a
// vDSO clock read when a rate-limit rule matches without a time given.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "verdictd/base/relaxed_counter.h"
#include "verdictd/queueio/packet.h"
#include "verdictd/queueio/verdict.h"
#include "verdictd/rules/packet_headers.h"
#include "verdictd/rules/rule_set.h"

struct hs_scratch;

namespace verdictd::rules {

class LogRing;
class RuleStats;

// Why a packet got its verdict.
enum class DecisionReason : std::uint8_t { kRule, kNoMatch, kUnparseable, kFragment };

struct Decision {
  queueio::Verdict verdict;
  std::int32_t rule = -1;  // index of the deciding rule, -1 for none
  DecisionReason reason = DecisionReason::kNoMatch;
  bool inspect = false;  // action "inspect": the extension chain decides
};

// Events the engine counts per worker (single writer, read at scrape).
struct alignas(64) EngineCounters {
  base::RelaxedCounter packets;
  base::RelaxedCounter unparseable;      // truncated, bad lengths, not IP
  base::RelaxedCounter fragments;        // non-first fragments
  base::RelaxedCounter no_match;
  base::RelaxedCounter content_scans;
  base::RelaxedCounter content_scan_copies;  // ... scanned from a copy (near a page end)
  base::RelaxedCounter rate_limited;     // over the rate: got over_limit
  base::RelaxedCounter bypass_marked;    // flows handed to the firewall
  base::RelaxedCounter bypass_via_mark;      // ... of them through the packet mark
  base::RelaxedCounter bypass_via_connmark;  // ... of them through the connmark
  base::RelaxedCounter flow_evictions;   // bypass flows pushed out of the table
  base::RelaxedCounter rate_evictions;   // rate buckets pushed out of the table
  base::RelaxedCounter log_queued;
  base::RelaxedCounter log_dropped_full;
  base::RelaxedCounter log_dropped_rate;
};

struct RuleCounter {
  base::RelaxedCounter hits;
  base::RelaxedCounter bytes;
};

class RuleEngine {
 public:
  // `log` (may be null) is this worker's log ring; `stats` (may be null) sums
  // this engine's counters into the metrics until the engine is destroyed.
  RuleEngine(std::shared_ptr<const RuleSet> rules, LogRing* log = nullptr,
             std::shared_ptr<RuleStats> stats = nullptr);
  ~RuleEngine();
  RuleEngine(const RuleEngine&) = delete;
  RuleEngine& operator=(const RuleEngine&) = delete;

  // `now_ns`: CLOCK_MONOTONIC time for rate limits (0: read it when needed).
  Decision Decide(const queueio::PacketView& packet, std::int64_t now_ns = 0) noexcept;

  const RuleSet& rules() const noexcept { return *rules_; }
  std::size_t rule_count() const noexcept;
  const std::string& rule_name(std::size_t rule) const noexcept;
  // A reload's new engine takes over the state of the worker's previous one
  // (same thread): rate-limit buckets and bypass flows of the rules that
  // still exist under the same name with the same kind of action, so a
  // reload neither hands every source a fresh burst nor sends bypassed flows
  // back through inspection. Tokens are capped at the new burst. Costs one
  // name lookup per occupied entry of the old tables; no allocation.
  void TakeStateFrom(const RuleEngine& previous) noexcept;

  const EngineCounters& counters() const noexcept { return counters_; }
  const RuleCounter& rule_counter(std::size_t rule) const noexcept { return rule_counters_[rule]; }

 private:
  struct FlowEntry;
  struct RateEntry;
  std::int32_t Match(const queueio::PacketView& packet, const PacketFields& fields,
                     bool fragment) noexcept;
  bool ContentMatches(std::span<const std::uint32_t> patterns, const queueio::PacketView& packet,
                      const PacketFields& fields) noexcept;
  queueio::Verdict Apply(std::size_t rule, const queueio::PacketView& packet,
                         const PacketFields& fields, std::int64_t& now_ns) noexcept;
  bool RateAllows(std::size_t rule, const PacketFields& fields, std::int64_t now_ns) noexcept;
  // The entry of (rule, key) or, when absent, the slot to put it in (free or
  // least recently used); `found` says which.
  RateEntry& RateSlot(std::size_t rule, std::uint8_t family, const std::array<std::uint8_t, 16>& src,
                      bool& found) noexcept;
  FlowEntry& FlowSlot(std::size_t rule, const FlowEntry& key, bool& found) noexcept;
  bool BypassNow(std::size_t rule, const queueio::PacketView& packet,
                 const PacketFields& fields) noexcept;
  void Log(std::size_t rule, const queueio::PacketView& packet, const PacketFields& fields,
           const queueio::Verdict& verdict, std::int64_t& now_ns) noexcept;

  std::shared_ptr<const RuleSet> rules_;
  hs_scratch* scratch_ = nullptr;
  std::vector<std::uint32_t> pattern_seen_;  // scan generation that found each pattern
  std::uint32_t scan_generation_ = 0;
  bool scanned_ = false;
  // Where a payload that ends near a page end is scanned (scan_guard.h).
  std::unique_ptr<std::uint8_t[]> scan_copy_;
  std::vector<FlowEntry> flows_;
  std::vector<RateEntry> rates_;
  std::uint64_t sequence_ = 0;  // packets decided: the flow table's clock
  std::size_t rates_used_ = 0;  // occupied entries (never freed, only replaced)
  std::size_t flows_used_ = 0;
  LogRing* log_;
  double log_tokens_ = 0;
  std::int64_t log_last_ns_ = 0;
  EngineCounters counters_;
  std::unique_ptr<RuleCounter[]> rule_counters_;
  std::shared_ptr<RuleStats> stats_;

  friend int OnPatternMatch(unsigned id, unsigned long long from, unsigned long long to,
                            unsigned flags, void* context);
};

}  // namespace verdictd::rules
