#include "verdictd/rules/rule_stats.h"

#include <algorithm>

#include "verdictd/rules/engine.h"

namespace verdictd::rules {

void RuleStats::Register(const RuleEngine* engine) {
  std::lock_guard lock(mutex_);
  engines_.push_back(engine);
}

void RuleStats::Unregister(const RuleEngine* engine) {
  std::lock_guard lock(mutex_);
  std::erase(engines_, engine);
  AddEngine(*engine, retired_rules_, retired_events_);
}

void RuleStats::AddEngine(const RuleEngine& engine, std::map<std::string, Totals>& rules,
                          std::map<std::string, std::uint64_t>& events) const {
  for (std::size_t r = 0; r < engine.rule_count(); ++r) {
    Totals& totals = rules[engine.rule_name(r)];
    totals.hits += engine.rule_counter(r).hits.value();
    totals.bytes += engine.rule_counter(r).bytes.value();
  }
  const EngineCounters& c = engine.counters();
  const std::pair<const char*, const base::RelaxedCounter*> list[] = {
      {"packets", &c.packets},
      {"unparseable", &c.unparseable},
      {"fragment", &c.fragments},
      {"no_match", &c.no_match},
      {"content_scan", &c.content_scans},
      {"content_scan_copied", &c.content_scan_copies},
      {"rate_limited", &c.rate_limited},
      {"bypass_marked", &c.bypass_marked},
      {"bypass_via_mark", &c.bypass_via_mark},
      {"bypass_via_connmark", &c.bypass_via_connmark},
      {"flow_eviction", &c.flow_evictions},
      {"rate_eviction", &c.rate_evictions},
      {"log_queued", &c.log_queued},
      {"log_dropped_full", &c.log_dropped_full},
      {"log_dropped_rate", &c.log_dropped_rate},
  };
  for (auto [name, counter] : list) events[name] += counter->value();
}

std::map<std::string, RuleStats::Totals> RuleStats::RuleTotals() const {
  std::lock_guard lock(mutex_);
  auto rules = retired_rules_;
  auto events = retired_events_;
  for (const RuleEngine* engine : engines_) AddEngine(*engine, rules, events);
  return rules;
}

std::map<std::string, std::uint64_t> RuleStats::EventTotals() const {
  std::lock_guard lock(mutex_);
  auto rules = retired_rules_;
  auto events = retired_events_;
  for (const RuleEngine* engine : engines_) AddEngine(*engine, rules, events);
  return events;
}

std::vector<prometheus::MetricFamily> RuleStats::Collect() const {
  std::map<std::string, Totals> rules;
  std::map<std::string, std::uint64_t> events;
  {
    std::lock_guard lock(mutex_);
    rules = retired_rules_;
    events = retired_events_;
    for (const RuleEngine* engine : engines_) AddEngine(*engine, rules, events);
  }
  auto counter_family = [](const char* name, const char* help) {
    prometheus::MetricFamily family;
    family.name = name;
    family.help = help;
    family.type = prometheus::MetricType::Counter;
    return family;
  };
  auto sample = [](const char* label, const std::string& value, std::uint64_t count) {
    prometheus::ClientMetric metric;
    metric.label.push_back({label, value});
    metric.counter.value = static_cast<double>(count);
    return metric;
  };
  auto hits = counter_family("verdictd_rule_hits_total", "Packets decided by each rule.");
  auto bytes = counter_family("verdictd_rule_bytes_total", "Bytes of the packets decided by each rule.");
  for (const auto& [name, totals] : rules) {
    hits.metric.push_back(sample("rule", name, totals.hits));
    bytes.metric.push_back(sample("rule", name, totals.bytes));
  }
  auto engine = counter_family("verdictd_rules_events_total",
                               "Rule engine events: unparseable packets, fragments, content scans, "
                               "rate limits, bypassed flows, log lines queued and dropped.");
  for (const auto& [name, count] : events) engine.metric.push_back(sample("event", name, count));
  return {std::move(hits), std::move(bytes), std::move(engine)};
}

}  // namespace verdictd::rules
