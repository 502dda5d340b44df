#include "verdictd/rules/engine.h"

#include <hs/hs.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <stdexcept>

#include "compiled.h"
#include "scan_guard.h"
#include "verdictd/base/clock.h"
#include "verdictd/base/verdict_kind.h"
#include "verdictd/rules/rule_log.h"
#include "verdictd/rules/rule_stats.h"

namespace verdictd::rules {

// A bypass flow: the 5-tuple in a canonical order so both directions share it.
struct RuleEngine::FlowEntry {
  std::array<std::uint8_t, 16> a{};
  std::array<std::uint8_t, 16> b{};
  std::uint16_t port_a = 0;
  std::uint16_t port_b = 0;
  std::uint8_t family = 0;  // 0: free
  std::uint8_t protocol = 0;
  bool marked = false;
  std::uint32_t rule = 0;
  std::uint64_t packets = 0;
  std::uint64_t bytes = 0;
  std::uint64_t last_seen = 0;
};

struct RuleEngine::RateEntry {
  std::array<std::uint8_t, 16> src{};
  std::uint32_t rule = 0;
  std::uint8_t family = 0;  // 0: free
  double tokens = 0;
  std::int64_t last_ns = 0;
};

namespace {

constexpr std::size_t kWays = 4;

std::size_t RoundUpPow2(std::size_t n) {
  std::size_t size = kWays;
  while (size < n) size <<= 1;
  return size;
}

std::uint64_t Mix(std::uint64_t h) noexcept {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

std::uint64_t HashBytes(const std::uint8_t* p, std::size_t n, std::uint64_t seed) noexcept {
  std::uint64_t h = seed;
  for (std::size_t i = 0; i + 8 <= n; i += 8) {
    std::uint64_t word;
    std::memcpy(&word, p + i, 8);
    h = Mix(h ^ word);
  }
  return h;
}

queueio::Verdict ToVerdict(const config::VerdictSetting& setting) noexcept {
  return queueio::Verdict::Of(setting.kind, setting.target_queue);
}

queueio::Verdict ToVerdict(const config::VerdictSpec& spec) noexcept {
  return queueio::Verdict::Of(spec.kind, spec.queue);
}

// The rules of the interval holding an address (see FieldIndex).
std::span<const std::uint32_t> LookupV4(const FieldIndex& field, const std::uint8_t* bytes) noexcept {
  const std::uint32_t addr = (static_cast<std::uint32_t>(bytes[0]) << 24) |
                             (static_cast<std::uint32_t>(bytes[1]) << 16) |
                             (static_cast<std::uint32_t>(bytes[2]) << 8) | bytes[3];
  const std::uint32_t top = addr >> (32 - field.index_bits);
  const std::uint32_t* starts = field.starts4.data();
  std::uint32_t lo = field.top[top];
  lo = lo == 0 ? 0 : lo - 1;
  std::uint32_t hi = field.top[top + 1];
  // The last interval whose start <= addr lies in [lo, hi).
  while (hi - lo > 1) {
    const std::uint32_t mid = (lo + hi) / 2;
    if (starts[mid] <= addr) lo = mid;
    else hi = mid;
  }
  return field.IntervalIds(lo);
}

std::span<const std::uint32_t> LookupV6(const FieldIndex& field, const std::uint8_t* bytes) noexcept {
  std::uint64_t high = 0, low = 0;
  for (int i = 0; i < 8; ++i) high = (high << 8) | bytes[i];
  for (int i = 8; i < 16; ++i) low = (low << 8) | bytes[i];
  const auto top = static_cast<std::uint32_t>(high >> (64 - field.index_bits));
  const std::uint64_t* starts = field.starts6.data();
  std::uint32_t lo = field.top[top];
  lo = lo == 0 ? 0 : lo - 1;
  std::uint32_t hi = field.top[top + 1];
  while (hi - lo > 1) {
    const std::uint32_t mid = (lo + hi) / 2;
    const std::uint64_t sh = starts[2 * mid], sl = starts[2 * mid + 1];
    if (sh < high || (sh == high && sl <= low)) lo = mid;
    else hi = mid;
  }
  return field.IntervalIds(lo);
}

bool Contains(std::span<const std::uint32_t> sorted, std::uint32_t rule) noexcept {
  return std::binary_search(sorted.begin(), sorted.end(), rule);
}

std::uint8_t CtBits(const queueio::PacketView& packet) noexcept {
  using config::CtState;
  auto bit = [](CtState s) { return static_cast<std::uint8_t>(1u << static_cast<int>(s)); };
  if (!packet.has_ct) return bit(CtState::kUntracked);
  switch (packet.ct_info) {
    case queueio::CtInfo::kNew: return bit(CtState::kNew);
    case queueio::CtInfo::kEstablished: return bit(CtState::kEstablished);
    case queueio::CtInfo::kRelated: return bit(CtState::kRelated);
    case queueio::CtInfo::kEstablishedReply: return bit(CtState::kEstablished) | bit(CtState::kReply);
    case queueio::CtInfo::kRelatedReply: return bit(CtState::kRelated) | bit(CtState::kReply);
    default: return bit(CtState::kUntracked);
  }
}

bool InRanges(const std::uint16_t* low, const std::uint16_t* high, int count, const PacketFields& f,
              std::uint16_t port) noexcept {
  if (!f.has_ports) return false;
  for (int i = 0; i < count; ++i) {
    if (port >= low[i] && port <= high[i]) return true;
  }
  return false;
}

bool InRange(const Range32& range, std::uint32_t value) noexcept {
  return value >= range.low && value <= range.high;
}

bool AnyEquals(const std::vector<std::uint32_t>& list, std::uint32_t value) noexcept {
  for (std::uint32_t x : list) {
    if (x == value && x != 0) return true;
  }
  return false;
}


}  // namespace

int OnPatternMatch(unsigned id, unsigned long long, unsigned long long, unsigned, void* context) {
  auto* engine = static_cast<RuleEngine*>(context);
  engine->pattern_seen_[id] = engine->scan_generation_;
  return 0;
}

RuleEngine::RuleEngine(std::shared_ptr<const RuleSet> rules, LogRing* log,
                       std::shared_ptr<RuleStats> stats)
    : rules_(std::move(rules)),
      log_(log),
      rule_counters_(new RuleCounter[rules_->rules.size() + 1]),
      stats_(std::move(stats)) {
  if (rules_->database) {
    if (hs_alloc_scratch(rules_->database.get(), &scratch_) != HS_SUCCESS) {
      throw std::runtime_error("cannot allocate the content-scan scratch space (out of memory?)");
    }
    pattern_seen_.assign(rules_->pattern_count, 0);
    scan_copy_ = std::make_unique<std::uint8_t[]>(kMaxScanBytes + kScanSlack);
  }
  flows_.resize(RoundUpPow2(rules_->settings.flow_table_size));
  rates_.resize(RoundUpPow2(rules_->settings.rate_table_size));
  log_tokens_ = rules_->settings.log_rate;
  if (stats_) stats_->Register(this);
}

RuleEngine::~RuleEngine() {
  if (stats_) stats_->Unregister(this);
  if (scratch_ != nullptr) hs_free_scratch(scratch_);
}

std::size_t RuleEngine::rule_count() const noexcept { return rules_->rules.size(); }
const std::string& RuleEngine::rule_name(std::size_t rule) const noexcept {
  return rules_->rules[rule].name;
}

bool RuleEngine::ContentMatches(std::span<const std::uint32_t> patterns,
                                const queueio::PacketView& packet,
                                const PacketFields& fields) noexcept {
  if (!scanned_) {
    scanned_ = true;
    if (++scan_generation_ == 0) {  // wrapped: forget every old stamp
      std::fill(pattern_seen_.begin(), pattern_seen_.end(), 0);
      scan_generation_ = 1;
    }
    counters_.content_scans.Add();
    const std::uint8_t* data = packet.payload.data() + fields.payload_offset;
    const std::size_t length = std::min<std::size_t>(fields.payload_length, kMaxScanBytes);
    if (ScanMayCrossPage(data, length)) {
      // About 1 payload in 64 ends this close to a page end (scan_guard.h).
      counters_.content_scan_copies.Add();
      std::memcpy(scan_copy_.get(), data, length);
      data = scan_copy_.get();
    }
    hs_scan(rules_->database.get(), reinterpret_cast<const char*>(data),
            static_cast<unsigned>(length), 0, scratch_, &OnPatternMatch, this);
  }
  for (std::uint32_t id : patterns) {
    if (pattern_seen_[id] != scan_generation_) return false;
  }
  return true;
}

std::int32_t RuleEngine::Match(const queueio::PacketView& packet, const PacketFields& f,
                               bool fragment) noexcept {
  const RuleSet& set = *rules_;
  const bool v4 = f.family == 4;
  // Logical fields: src, dst, proto, sport, dport.
  const Field field_of[5] = {v4 ? kSrc4 : kSrc6, v4 ? kDst4 : kDst6, kProto, kSrcPort, kDstPort};
  const std::uint8_t bit_of[5] = {kLogicalSrc, kLogicalDst, kLogicalProto, kLogicalSrcPort,
                                  kLogicalDstPort};
  std::span<const std::uint32_t> specific[5];
  std::uint8_t used = 0;
  int best = -1;
  std::size_t best_size = set.all_rules.size();
  for (int g = 0; g < 5; ++g) {
    const FieldIndex& field = set.fields[field_of[g]];
    if (!field.used) continue;
    used |= bit_of[g];
    switch (g) {
      case 0: specific[g] = v4 ? LookupV4(field, f.src.data()) : LookupV6(field, f.src.data()); break;
      case 1: specific[g] = v4 ? LookupV4(field, f.dst.data()) : LookupV6(field, f.dst.data()); break;
      case 2: specific[g] = field.ClassIds(field.table[f.protocol]); break;
      case 3: specific[g] = field.ClassIds(field.table[f.has_ports ? f.src_port : 65536]); break;
      default: specific[g] = field.ClassIds(field.table[f.has_ports ? f.dst_port : 65536]); break;
    }
    const std::size_t size = specific[g].size() + field.wildcard.size();
    if (size < best_size || best < 0) {
      best_size = size;
      best = g;
    }
  }
  std::span<const std::uint32_t> first = set.all_rules;
  std::span<const std::uint32_t> second;
  if (best >= 0) {
    first = specific[best];
    second = set.fields[field_of[best]].wildcard;
    used &= static_cast<std::uint8_t>(~bit_of[best]);
  }
  scanned_ = false;
  std::size_t i = 0, j = 0;
  while (i < first.size() || j < second.size()) {
    std::uint32_t r;
    if (j >= second.size() || (i < first.size() && first[i] < second[j])) r = first[i++];
    else r = second[j++];
    const HotRule& hot = set.hot[r];
    if (hot.has_proto && !(hot.proto_bits[f.protocol / 64] & (std::uint64_t{1} << (f.protocol % 64)))) continue;
    if (hot.src_port_ranges != 0 && !InRanges(hot.src_low, hot.src_high, hot.src_port_ranges, f, f.src_port)) continue;
    if (hot.dst_port_ranges != 0 && !InRanges(hot.dst_low, hot.dst_high, hot.dst_port_ranges, f, f.dst_port)) continue;
    const std::uint8_t check = hot.constrains & used;
    if (check != 0) {
      bool ok = true;
      for (int g = 0; g < 5 && ok; ++g) {
        if (check & bit_of[g]) ok = Contains(specific[g], r);
      }
      if (!ok) continue;
    }
    if (!hot.residual) return static_cast<std::int32_t>(r);
    const CompiledRule& rule = set.rules[r];
    if (rule.residual) {
      if (rule.family != 0 && rule.family != f.family) continue;
      if (rule.needs_l4 && fragment) continue;
      if (rule.has_tcp_flags &&
          (!f.has_tcp_flags || (f.tcp_flags & rule.tcp_flags_mask) != rule.tcp_flags_value)) {
        continue;
      }
      if (rule.has_icmp_type && (!f.has_icmp || f.icmp_type != rule.icmp_type)) continue;
      if (rule.has_icmp_code && (!f.has_icmp || f.icmp_code != rule.icmp_code)) continue;
      if (!rule.in_interfaces.empty() && !AnyEquals(rule.in_interfaces, packet.indev)) continue;
      if (!rule.out_interfaces.empty() && !AnyEquals(rule.out_interfaces, packet.outdev)) continue;
      if (rule.has_mark && (packet.mark & rule.mark_mask) != rule.mark_value) continue;
      if (rule.ct_states != 0 && (rule.ct_states & CtBits(packet)) == 0) continue;
      if (rule.has_uid && (!packet.has_uid || !InRange(rule.uid, packet.uid))) continue;
      if (rule.has_gid && (!packet.has_gid || !InRange(rule.gid, packet.gid))) continue;
      if (rule.has_length) {
        const std::uint32_t length = packet.original_length != 0
                                         ? packet.original_length
                                         : static_cast<std::uint32_t>(packet.payload.size());
        if (!InRange(rule.length, length)) continue;
      }
      if (!rule.patterns.empty() && (fragment || !ContentMatches(rule.patterns, packet, f))) continue;
    }
    return static_cast<std::int32_t>(r);
  }
  return -1;
}

RuleEngine::RateEntry& RuleEngine::RateSlot(std::size_t rule, std::uint8_t family,
                                             const std::array<std::uint8_t, 16>& src,
                                             bool& found) noexcept {
  const std::uint64_t h = Mix(HashBytes(src.data(), 16, rule * 0x9e3779b97f4a7c15ULL + family));
  RateEntry* bucket = &rates_[(h & (rates_.size() - 1)) & ~(kWays - 1)];
  RateEntry* victim = bucket;
  for (std::size_t w = 0; w < kWays; ++w) {
    RateEntry& e = bucket[w];
    if (e.family == family && e.rule == rule && e.src == src) {
      found = true;
      return e;
    }
    if (e.family == 0 || (victim->family != 0 && e.last_ns < victim->last_ns)) victim = &e;
  }
  found = false;
  return *victim;
}

bool RuleEngine::RateAllows(std::size_t rule, const PacketFields& f, std::int64_t now_ns) noexcept {
  const Action& a = rules_->rules[rule].action;
  bool found = false;
  RateEntry* entry = &RateSlot(rule, f.family, f.src, found);
  if (!found) {
    if (entry->family != 0) counters_.rate_evictions.Add(); else ++rates_used_;
    entry->family = f.family;
    entry->rule = static_cast<std::uint32_t>(rule);
    entry->src = f.src;
    entry->tokens = a.burst;
    entry->last_ns = now_ns;
  }
  const double elapsed = static_cast<double>(now_ns - entry->last_ns) * 1e-9;
  if (elapsed > 0) entry->tokens = std::min(a.burst, entry->tokens + elapsed * a.rate);
  entry->last_ns = now_ns;
  if (entry->tokens >= 1.0) {
    entry->tokens -= 1.0;
    return true;
  }
  return false;
}

RuleEngine::FlowEntry& RuleEngine::FlowSlot(std::size_t rule, const FlowEntry& key,
                                             bool& found) noexcept {
  std::uint64_t h = HashBytes(key.a.data(), 16, key.protocol ^ (rule << 8));
  h = HashBytes(key.b.data(), 16, h ^ (static_cast<std::uint64_t>(key.port_a) << 16 | key.port_b));
  FlowEntry* bucket = &flows_[(h & (flows_.size() - 1)) & ~(kWays - 1)];
  FlowEntry* victim = bucket;
  for (std::size_t w = 0; w < kWays; ++w) {
    FlowEntry& e = bucket[w];
    if (e.family == key.family && e.rule == rule && e.protocol == key.protocol &&
        e.port_a == key.port_a && e.port_b == key.port_b && e.a == key.a && e.b == key.b) {
      found = true;
      return e;
    }
    if (e.family == 0 || (victim->family != 0 && e.last_seen < victim->last_seen)) victim = &e;
  }
  found = false;
  return *victim;
}

void RuleEngine::TakeStateFrom(const RuleEngine& previous) noexcept {
  if (&previous == this) return;
  const RuleSet& old_rules = *previous.rules_;
  // The rule index of an old entry's rule here, or -1 when it is gone or now
  // does something else (its state would mean nothing to the new action).
  auto carried = [&](std::uint32_t old_rule, config::ActionKind kind) -> std::int32_t {
    if (old_rule >= old_rules.rules.size()) return -1;
    const std::int32_t rule = previous.rules_ == rules_
                                  ? static_cast<std::int32_t>(old_rule)
                                  : rules_->FindRule(old_rules.rules[old_rule].name);
    if (rule < 0 || rules_->rules[static_cast<std::size_t>(rule)].action.kind != kind) return -1;
    return rule;
  };
  // Entries are never freed, only replaced: an unused table stays empty and
  // need not be scanned (rules without rate limits or bypass).
  for (const RateEntry& old : previous.rates_used_ == 0 ? std::span<const RateEntry>()
                                                         : std::span(previous.rates_)) {
    if (old.family == 0) continue;
    const std::int32_t rule = carried(old.rule, config::ActionKind::kRateLimit);
    if (rule < 0) continue;
    bool found = false;
    RateEntry& entry = RateSlot(static_cast<std::size_t>(rule), old.family, old.src, found);
    if (!found && entry.family != 0 && entry.last_ns > old.last_ns) continue;  // keep the newer
    if (entry.family == 0) ++rates_used_;
    entry = old;
    entry.rule = static_cast<std::uint32_t>(rule);
    entry.tokens = std::min(old.tokens, rules_->rules[static_cast<std::size_t>(rule)].action.burst);
  }
  for (const FlowEntry& old : previous.flows_used_ == 0 ? std::span<const FlowEntry>()
                                                         : std::span(previous.flows_)) {
    if (old.family == 0) continue;
    const std::int32_t rule = carried(old.rule, config::ActionKind::kBypass);
    if (rule < 0) continue;
    bool found = false;
    FlowEntry& entry = FlowSlot(static_cast<std::size_t>(rule), old, found);
    if (!found && entry.family != 0 && entry.last_seen > old.last_seen) continue;
    if (entry.family == 0) ++flows_used_;
    entry = old;
    entry.rule = static_cast<std::uint32_t>(rule);
  }
  // The flow table's clock goes on, so carried entries age with the new ones.
  sequence_ = std::max(sequence_, previous.sequence_);
}

bool RuleEngine::BypassNow(std::size_t rule, const queueio::PacketView& packet,
                           const PacketFields& f) noexcept {
  const Action& a = rules_->rules[rule].action;
  FlowEntry key;
  key.family = f.family;
  key.protocol = f.protocol;
  const bool forward = std::memcmp(f.src.data(), f.dst.data(), 16) < 0 ||
                       (f.src == f.dst && f.src_port <= f.dst_port);
  key.a = forward ? f.src : f.dst;
  key.b = forward ? f.dst : f.src;
  key.port_a = f.has_ports ? (forward ? f.src_port : f.dst_port) : 0;
  key.port_b = f.has_ports ? (forward ? f.dst_port : f.src_port) : 0;
  bool found = false;
  FlowEntry* entry = &FlowSlot(rule, key, found);
  if (!found) {
    if (entry->family != 0) counters_.flow_evictions.Add(); else ++flows_used_;
    key.rule = static_cast<std::uint32_t>(rule);
    *entry = key;
  }
  entry->last_seen = sequence_;
  entry->packets += 1;
  entry->bytes += packet.original_length != 0 ? packet.original_length : packet.payload.size();
  if (entry->marked) return true;
  const bool now = (a.after_packets == 0 && a.after_bytes == 0) ||
                   (a.after_packets != 0 && entry->packets >= a.after_packets) ||
                   (a.after_bytes != 0 && entry->bytes >= a.after_bytes);
  if (now) {
    entry->marked = true;
    counters_.bypass_marked.Add();
    // By the mechanism the verdict really uses (a connmark rule falls back to
    // the mark where the kernel lacks nf_conntrack_netlink, see build_policy.h).
    if (a.via == config::BypassVia::kMark) counters_.bypass_via_mark.Add();
    else counters_.bypass_via_connmark.Add();
  }
  return now;
}

queueio::Verdict RuleEngine::Apply(std::size_t rule, const queueio::PacketView& packet,
                                   const PacketFields& f, std::int64_t& now_ns) noexcept {
  const Action& a = rules_->rules[rule].action;
  queueio::Verdict v;
  switch (a.kind) {
    case config::ActionKind::kAccept: break;
    case config::ActionKind::kDrop: v.kind = queueio::VerdictKind::kDrop; break;
    case config::ActionKind::kRepeat: v.kind = queueio::VerdictKind::kRepeat; break;
    case config::ActionKind::kQueue: v = queueio::Verdict::ToQueue(a.queue); break;
    case config::ActionKind::kMark:
      v.kind = a.then == config::PlainVerdict::kRepeat ? queueio::VerdictKind::kRepeat
                                                       : queueio::VerdictKind::kAccept;
      v.set_mark = true;
      v.mark = (packet.mark & ~a.mark_mask) | a.mark_value;
      break;
    case config::ActionKind::kRateLimit:
      if (now_ns == 0) now_ns = static_cast<std::int64_t>(base::MonotonicNanos());
      if (!RateAllows(rule, f, now_ns)) {
        counters_.rate_limited.Add();
        v = ToVerdict(a.over_limit);
      }
      break;
    case config::ActionKind::kInspect:
      break;  // accept; RuleDecider hands the packet to the chain
    case config::ActionKind::kBypass:
      if (BypassNow(rule, packet, f)) {
        if (a.via == config::BypassVia::kMark) {
          v.set_mark = true;
          v.mark = (packet.mark & ~a.mark_mask) | a.mark_value;
        } else {
          // The kernel sets the whole connmark from NFQA_CT; we cannot read
          // the old one (no conntrack info without nf_conntrack_netlink).
          v.set_connmark = true;
          v.connmark = a.mark_value;
        }
      }
      break;
  }
  return v;
}

void RuleEngine::Log(std::size_t rule, const queueio::PacketView& packet, const PacketFields& f,
                     const queueio::Verdict& verdict, std::int64_t& now_ns) noexcept {
  const double rate = rules_->settings.log_rate;
  if (now_ns == 0) now_ns = static_cast<std::int64_t>(base::MonotonicNanos());
  if (log_last_ns_ != 0) {
    log_tokens_ = std::min(rate, log_tokens_ + static_cast<double>(now_ns - log_last_ns_) * 1e-9 * rate);
  }
  log_last_ns_ = now_ns;
  if (log_tokens_ < 1.0) {
    counters_.log_dropped_rate.Add();
    return;
  }
  log_tokens_ -= 1.0;
  LogRecord record;
  record.time_ns = packet.has_timestamp ? packet.timestamp_ns
                                        : static_cast<std::int64_t>(base::RealtimeNanos());
  record.queue = packet.queue_num;
  record.family = f.family;
  record.protocol = f.protocol;
  record.has_ports = f.has_ports;
  record.src_port = f.src_port;
  record.dst_port = f.dst_port;
  record.length = packet.original_length != 0 ? packet.original_length
                                              : static_cast<std::uint32_t>(packet.payload.size());
  record.src = f.src;
  record.dst = f.dst;
  record.action = rules_->rules[rule].action.kind == config::ActionKind::kBypass &&
                          (verdict.set_mark || verdict.set_connmark)
                      ? "bypass"
                      : base::VerdictKindName(verdict.kind);
  const std::string& name = rules_->rules[rule].name;
  const std::size_t n = std::min(name.size(), record.rule.size() - 1);
  std::memcpy(record.rule.data(), name.data(), n);
  record.rule[n] = '\0';
  if (log_->Push(record)) counters_.log_queued.Add();
  else counters_.log_dropped_full.Add();
}

Decision RuleEngine::Decide(const queueio::PacketView& packet, std::int64_t now_ns) noexcept {
  ++sequence_;
  counters_.packets.Add();
  PacketFields fields;
  const HeaderStatus status = ParseHeaders(packet.payload, fields);
  Decision decision;
  const config::RuleEngineSettings& settings = rules_->settings;
  bool fragment = false;
  switch (status) {
    case HeaderStatus::kOk: break;
    case HeaderStatus::kFragment:
      counters_.fragments.Add();
      fragment = true;
      if (!settings.fragments_use_rules) {
        decision.verdict = ToVerdict(settings.fragments);
        decision.reason = DecisionReason::kFragment;
        return decision;
      }
      break;
    default:
      counters_.unparseable.Add();
      decision.verdict = ToVerdict(rules_->unparseable);
      decision.reason = DecisionReason::kUnparseable;
      return decision;
  }
  const std::int32_t rule = Match(packet, fields, fragment);
  if (rule < 0) {
    counters_.no_match.Add();
    decision.verdict = ToVerdict(rules_->no_match);
    return decision;
  }
  decision.rule = rule;
  decision.reason = DecisionReason::kRule;
  decision.verdict = Apply(static_cast<std::size_t>(rule), packet, fields, now_ns);
  decision.inspect = rules_->rules[rule].action.kind == config::ActionKind::kInspect;
  RuleCounter& counter = rule_counters_[rule];
  counter.hits.Add();
  counter.bytes.Add(packet.original_length != 0 ? packet.original_length : packet.payload.size());
  if (rules_->rules[rule].log && log_ != nullptr) {
    Log(static_cast<std::size_t>(rule), packet, fields, decision.verdict, now_ns);
  }
  return decision;
}

}  // namespace verdictd::rules
